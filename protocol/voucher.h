/* protocol/voucher.h -- micropayment tab vouchers (docs/merchant-api.md, "Vouchers").
 *
 * A voucher is a compact JWS (RFC 7515) signed by the agent with the key its binding names
 * (EdDSA or ES256, protocol/jose.h), protected header {"alg", "kid": the agent key's RFC 7638
 * thumbprint, "typ": "agentclear-voucher+jws"}, payload one JSON object with exactly
 *
 *     {"ver": 1, "tab": "<tab id>", "seq": <1..2^53-1>,
 *      "cumulative": {"currency": "<asset>", "value": "<decimal at the asset's scale>"}}
 *
 * "cumulative" is everything the agent owes on the tab so far (not the increment); "seq" numbers
 * the vouchers of a tab. Both only grow: the merchant settles the highest voucher it holds and
 * the server posts the difference to what was settled before. The payload is not canonicalised:
 * the JWS text itself is what is verified, settled and referenced by hash in the evidence. */
#ifndef AC_VOUCHER_H
#define AC_VOUCHER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "protocol/amount.h"
#include "protocol/errors.h"
#include "protocol/jdoc.h"
#include "protocol/jose.h"

#define AC_VOUCHER_TYP "agentclear-voucher+jws"
#define AC_VOUCHER_VERSION 1
#define AC_VOUCHER_SEQ_MAX 9007199254740991LL /* 2^53 - 1: exact in every JSON reader */
/* Longest voucher accepted (bytes of compact JWS text). */
#define AC_VOUCHER_MAX_LEN 2048

struct ac_voucher {
    char tab[AC_ID_MAX + 1];
    int64_t seq;
    char asset[AC_ASSET_MAX + 1];
    int64_t cumulative; /* base units at the asset's scale, >= 0 */
    char kid[AC_JWK_THUMBPRINT_SIZE];
};

/* Parse the voucher text compact[0..len) (at most AC_VOUCHER_MAX_LEN bytes) for a tab whose asset
 * is `asset` at `scale`: the JWS structure, the header (typ, thumbprint kid), the payload's
 * members and types. The signature is NOT checked: the caller verifies *jws (kept when jws is not
 * NULL; ac_jws_clear it) with ac_voucher_verify. Returns AC_EC_OK with *out filled;
 * AC_EC_VOUCHER_CURRENCY_MISMATCH when the payload's currency is a valid code other than asset;
 * AC_EC_VOUCHER_INVALID with err (pointer into the payload, static detail) for anything else;
 * AC_EC_INTERNAL when out of memory. On failure *jws is cleared. */
enum ac_ec ac_voucher_parse(const char *compact, size_t len, const char *asset, unsigned scale,
                            struct ac_voucher *out, struct ac_jws *jws, struct ac_doc_err *err);

/* Verify a parsed voucher JWS with the agent key: AC_EC_OK, or AC_EC_VOUCHER_SIGNATURE_INVALID
 * (also for a NULL key, or an alg that does not fit it). */
enum ac_ec ac_voucher_verify(const struct ac_jws *jws, EVP_PKEY *agent_key);

/* The payload object of a voucher (tests, the benchmark, clients). New reference or NULL. */
json_t *ac_voucher_payload(const char *tab, int64_t seq, const char *asset, int64_t cumulative,
                           unsigned scale);

/* Sign a voucher with the agent's private key (kid: its thumbprint, computed here). malloc'd
 * compact JWS, or NULL on failure. */
char *ac_voucher_sign(EVP_PKEY *agent_key, const char *tab, int64_t seq, const char *asset,
                      int64_t cumulative, unsigned scale);

#endif
