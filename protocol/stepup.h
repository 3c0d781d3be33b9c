/* protocol/stepup.h -- step-up: the challenge the server issues when a payment needs the user's
 * confirmation, and the user's signed answer (confirm or decline).
 *
 * The challenge (rendered canonically, RFC 8785 form; docs/mandates.md has an example):
 *   {"authorization": id, "exp": s, "iat": s, "nonce": 43 base64url chars (32 random bytes),
 *    "payment": {"agent": agent id, "amount": {"currency": asset, "value": decimal},
 *                "mandate": id, "op": "purchase"|"topup"|"micropay",
 *                "order_digest": text (optional), "payee": merchant id, "payer": user id,
 *                "purpose": text (optional)},
 *    "payment_digest": base64url(SHA-256(canonical "payment" object)), "ver": 1}
 *
 * The answer is a compact JWS, typ "agentclear-confirmation+jws", kid = the thumbprint of a key
 * of the payer, payload
 *   {"ver": 1, "authorization": id, "nonce": the challenge's nonce,
 *    "payment_digest": the challenge's payment digest, "decision": "confirm"|"decline",
 *    "iat": unix seconds}
 * A wallet should recompute payment_digest from the payment it displayed rather than copy it.
 *
 * Everything here is pure: the nonce's random bytes and the clock are inputs. */
#ifndef AC_STEPUP_H
#define AC_STEPUP_H

#include <stdint.h>

#include <jansson.h>

#include "protocol/amount.h"
#include "protocol/errors.h"
#include "protocol/jdoc.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"

#define AC_CONFIRMATION_TYP "agentclear-confirmation+jws"
#define AC_STEPUP_VERSION 1
/* Random bytes in a nonce, and its base64url length. */
#define AC_STEPUP_NONCE_BYTES 32
#define AC_STEPUP_NONCE_LEN 43
/* A SHA-256 digest in base64url. */
#define AC_STEPUP_DIGEST_LEN 43
/* Sizes (with the NUL) of the free-text members. purpose: no control characters;
 * order_digest: printable ASCII without spaces (e.g. "sha-256=:…:"). */
#define AC_STEPUP_PURPOSE_SIZE 256
#define AC_STEPUP_ORDER_SIZE 128
/* Allowed clock skew for a confirmation's iat (seconds). */
#define AC_STEPUP_SKEW_S 300

struct ac_stepup_challenge {
    char authorization[AC_ID_MAX + 1];
    /* the payment */
    char payer[AC_ID_MAX + 1]; /* user id */
    char agent[AC_ID_MAX + 1]; /* agent id */
    char payee[AC_ID_MAX + 1]; /* merchant id */
    char mandate[AC_ID_MAX + 1];
    enum ac_op op;
    char asset[AC_ASSET_MAX + 1];
    unsigned scale; /* the asset's scale; the value is rendered with exactly this many decimals */
    int64_t amount; /* base units, > 0 */
    char purpose[AC_STEPUP_PURPOSE_SIZE];    /* "" when none */
    char order_digest[AC_STEPUP_ORDER_SIZE]; /* "" when none */
    /* the challenge */
    char nonce[AC_STEPUP_NONCE_LEN + 1];
    int64_t iat, exp; /* unix seconds, 1 <= iat < exp <= AC_MANDATE_TIME_MAX */
};

enum ac_stepup_decision {
    AC_STEPUP_CONFIRM = 1,
    AC_STEPUP_DECLINE = 2,
};

struct ac_stepup_confirmation {
    char authorization[AC_ID_MAX + 1];
    char nonce[AC_STEPUP_NONCE_LEN + 1];
    char payment_digest[AC_STEPUP_DIGEST_LEN + 1];
    enum ac_stepup_decision decision;
    int64_t iat;
};

/* Encode AC_STEPUP_NONCE_BYTES random bytes (the caller draws them, e.g. RAND_bytes) as a nonce. */
void ac_stepup_nonce_encode(const uint8_t raw[AC_STEPUP_NONCE_BYTES],
                            char out[AC_STEPUP_NONCE_LEN + 1]);

/* 1 when every field of c is valid (ids, op, asset, amount > 0 and formattable at scale <=
 * AC_SCALE_MAX, texts, nonce of 43 base64url characters, 1 <= iat < exp <= AC_MANDATE_TIME_MAX),
 * else 0. */
int ac_stepup_challenge_valid(const struct ac_stepup_challenge *c);

/* The challenge as a JSON object (format above, payment_digest included). A new reference, or
 * NULL when !ac_stepup_challenge_valid(c) or out of memory. */
json_t *ac_stepup_challenge_to_json(const struct ac_stepup_challenge *c);

/* The canonical text of the challenge (what the server returns and stores). malloc'd, or NULL as
 * ac_stepup_challenge_to_json. */
char *ac_stepup_challenge_render(const struct ac_stepup_challenge *c);

/* base64url(SHA-256(canonical payment object)) into out. 0, or -1 when the challenge is invalid
 * or on failure (out then ""). */
int ac_stepup_payment_digest(const struct ac_stepup_challenge *c,
                             char out[AC_STEPUP_DIGEST_LEN + 1]);

/* Parse a challenge object (as produced by ac_stepup_challenge_to_json): strict, unknown members
 * refused, the scale taken from the number of decimals of the amount value, and payment_digest
 * recomputed and compared. Returns AC_EC_OK with *out filled, or AC_EC_JSON_SCHEMA with err set
 * and *out zeroed. */
enum ac_ec ac_stepup_challenge_parse(const json_t *j, struct ac_stepup_challenge *out,
                                     struct ac_doc_err *err);

/* Header check of a parsed confirmation JWS (typ AC_CONFIRMATION_TYP, thumbprint kid, JSON object
 * payload). AC_EC_OK, or AC_EC_CONFIRMATION_INVALID with *detail set. No signature check: the
 * caller verifies it against a key registered to the challenge's payer. */
enum ac_ec ac_stepup_confirmation_jws_check(const struct ac_jws *jws, const char **detail);

/* Validate a confirmation payload. AC_EC_OK with *out filled, or AC_EC_CONFIRMATION_INVALID with
 * err set and *out zeroed. */
enum ac_ec ac_stepup_confirmation_parse(const json_t *payload, struct ac_stepup_confirmation *out,
                                        struct ac_doc_err *err);

/* The payload object of a confirmation (for wallets, the CLI and tests). New reference, or NULL
 * when a field is invalid or out of memory. */
json_t *ac_stepup_confirmation_to_json(const struct ac_stepup_confirmation *c);

/* Check a (signature-verified, parsed) confirmation against the challenge it answers, at now_us.
 * In this order:
 *   AC_EC_AUTHORIZATION_MISMATCH  other authorization id, other nonce, or a payment_digest that
 *                                 is not the challenge's payment (a confirmation for another
 *                                 payment, or for details the user did not see);
 *   AC_EC_AUTHORIZATION_EXPIRED   now_us >= exp (the exp second itself is expired);
 *   AC_EC_CONFIRMATION_INVALID    iat before the challenge's iat - AC_STEPUP_SKEW_S, or after
 *                                 now + AC_STEPUP_SKEW_S;
 *   AC_EC_OK                      it answers this challenge; conf->decision says how.
 * Secrets are compared in constant time. *detail (may be NULL) gets a short explanation. Whether
 * the authorization was already decided is the caller's state, not this function's. */
enum ac_ec ac_stepup_confirmation_check(const struct ac_stepup_confirmation *conf,
                                        const struct ac_stepup_challenge *ch, int64_t now_us,
                                        const char **detail);

#endif
