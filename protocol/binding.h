/* protocol/binding.h -- user-signed documents of the agent runtime identity: the binding of an
 * agent key to an agent, a user and a runtime, and its revocation. docs/identity.md is the
 * reference for both formats.
 *
 * A binding is a compact JWS (EdDSA or ES256) with the protected header
 *     {"alg": ..., "kid": <RFC 7638 thumbprint of the signing user key>, "typ":
 *     "agentclear-binding+jws"}
 * and the payload (a JSON object; no other member is allowed)
 *     ver           1
 *     id            the binding id, chosen by the client (ac_id_valid)
 *     iss           the user id (ac_id_valid)
 *     sub           the agent id (ac_id_valid)
 *     cnf           {"jwk": <the agent's public JWK>}             (RFC 7800, as AP2 does)
 *     runtime       {"software": "sha-256:<hex>", "model": "...", "environment": "sha-256:<hex>"}
 *                   (protocol/runtime.h)
 *     max_autonomy  "L0" .. "L5"
 *     iat           issued at, unix seconds
 *     nbf           optional, not before, unix seconds, iat <= nbf < exp (absent: iat)
 *     exp           expiry, unix seconds, iat < exp <= iat + AC_BINDING_MAX_LIFETIME
 *
 * A revocation is a compact JWS with typ "agentclear-revocation+jws", kid the thumbprint of any
 * key of the same user, and the payload {"ver": 1, "binding": <id>, "iss": <user id>, "iat": n}.
 *
 * Parsing checks the form only: it neither verifies the signature (the caller looks the user key
 * up by iss and kid and calls ac_jws_verify on doc->jws) nor compares times with a clock (see
 * ac_binding_check_time). */
#ifndef AC_BINDING_H
#define AC_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "protocol/amount.h"
#include "protocol/errors.h"
#include "protocol/jose.h"
#include "protocol/runtime.h"

#define AC_BINDING_TYP "agentclear-binding+jws"
#define AC_REVOCATION_TYP "agentclear-revocation+jws"
#define AC_BINDING_VERSION 1
/* Longest lifetime of a binding (exp - iat): 366 days. */
#define AC_BINDING_MAX_LIFETIME (366LL * 86400)
/* Latest time a document may carry (iat, nbf, exp): 9999-12-31T23:59:59Z. */
#define AC_BINDING_TIME_MAX 253402300799LL
/* How far ahead of the server's clock iat may lie (seconds). */
#define AC_BINDING_CLOCK_SKEW 300
/* Highest autonomy level (L5). */
#define AC_AUTONOMY_MAX 5
/* "sha-256:" + 64 hex digits */
#define AC_RUNTIME_HEXDIGEST_LEN 72

/* A parsed binding. Owned by the struct; release with ac_binding_clear. */
struct ac_binding_doc {
    struct ac_jws jws;                           /* the parsed JWS (verify against the user key) */
    char user_kid[AC_JWK_THUMBPRINT_SIZE];       /* header kid */
    char id[AC_ID_MAX + 1];                      /* binding id */
    char user_id[AC_ID_MAX + 1];                 /* iss */
    char agent_id[AC_ID_MAX + 1];                /* sub */
    EVP_PKEY *agent_key;                         /* cnf.jwk, one reference held */
    char agent_kid[AC_JWK_THUMBPRINT_SIZE];      /* its RFC 7638 thumbprint */
    char software[AC_RUNTIME_HEXDIGEST_LEN + 1]; /* runtime.software */
    char model[AC_RUNTIME_MODEL_MAX + 1];        /* runtime.model */
    char environment[AC_RUNTIME_HEXDIGEST_LEN + 1]; /* runtime.environment */
    uint8_t runtime_digest[AC_RUNTIME_DIGEST_LEN];  /* computed (protocol/runtime.h) */
    int max_autonomy;                               /* 0..5 */
    int64_t iat, nbf, exp;                          /* unix seconds; nbf = iat when absent */
    int has_nbf;                                    /* nbf was present in the payload */
};

/* Parse a compact binding JWS of len bytes. Returns AC_EC_OK with *out filled, or
 * AC_EC_JWS_MALFORMED / AC_EC_JWS_ALG_UNSUPPORTED (the JWS layer, see ac_jws_parse),
 * AC_EC_BINDING_INVALID (typ, kid or a payload member missing, of the wrong type, malformed, or
 * an unknown payload member), AC_EC_JWK_INVALID (cnf.jwk), or AC_EC_INTERNAL. *detail (optional)
 * gets a short static explanation. On failure *out is cleared. */
enum ac_ec ac_binding_parse(const char *compact, size_t len, struct ac_binding_doc *out,
                            const char **detail);

/* Release what a parsed binding owns and zero it. Accepts a zeroed struct. */
void ac_binding_clear(struct ac_binding_doc *b);

/* Check a binding's times against now (unix seconds) at registration: AC_EC_BINDING_EXPIRED
 * when exp <= now, AC_EC_BINDING_INVALID when iat lies more than AC_BINDING_CLOCK_SKEW ahead,
 * else AC_EC_OK. (A binding whose nbf lies ahead may be registered; it resolves with its nbf.) */
enum ac_ec ac_binding_check_time(const struct ac_binding_doc *b, int64_t now, const char **detail);

/* A parsed revocation. Release with ac_revocation_clear. */
struct ac_revocation_doc {
    struct ac_jws jws;
    char user_kid[AC_JWK_THUMBPRINT_SIZE]; /* header kid */
    char binding_id[AC_ID_MAX + 1];
    char user_id[AC_ID_MAX + 1]; /* iss */
    int64_t iat;
};

/* Parse a compact revocation JWS. Returns AC_EC_OK, the JWS layer's codes, AC_EC_REVOCATION_INVALID
 * (typ, kid or payload), or AC_EC_INTERNAL; *out is cleared on failure. */
enum ac_ec ac_revocation_parse(const char *compact, size_t len, struct ac_revocation_doc *out,
                               const char **detail);

void ac_revocation_clear(struct ac_revocation_doc *r);


/* 1 when s has the form of an RFC 7638 SHA-256 thumbprint: 43 characters of base64url. */
int ac_keyid_valid(const char *s);

#endif
