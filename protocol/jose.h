/* protocol/jose.h -- the JOSE layer for user-signed documents (bindings, mandates, revocations,
 * confirmations): JWK import/export (RFC 7517/7518/8037) for Ed25519 and P-256 keys, RFC 7638
 * thumbprints (agentclear's key id format), and JWS compact serialization (RFC 7515) with the
 * algorithms "EdDSA" (RFC 8037, Ed25519 only) and "ES256".
 *
 * Nothing here takes the key from the document: a JWS is verified against a key the caller looked
 * up itself, and header members such as "jwk", "jku" or "x5c" are ignored. Every input is bounded
 * (AC_JWK_MAX_TEXT, AC_JWS_MAX_LEN). Failures are reported as AC_EC_* codes from errors.def; the
 * optional `detail` out-parameters receive a short static lowercase explanation (never NULL when
 * set, never to be freed). */
#ifndef AC_JOSE_H
#define AC_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "protocol/errors.h"
#include "protocol/sig.h"

/* Largest JWK accepted as text (bytes). */
#define AC_JWK_MAX_TEXT 4096
/* Largest compact JWS accepted or produced (bytes, without a terminating NUL). */
#define AC_JWS_MAX_LEN 65536
/* An RFC 7638 SHA-256 thumbprint in base64url: 43 characters, plus the NUL. */
#define AC_JWK_THUMBPRINT_LEN 43
#define AC_JWK_THUMBPRINT_SIZE (AC_JWK_THUMBPRINT_LEN + 1)

/* ---- JWK import ------------------------------------------------------------------------------ */

/* Import a public key from a parsed JWK object: {"kty":"OKP","crv":"Ed25519","x":…} or
 * {"kty":"EC","crv":"P-256","x":…,"y":…}. Coordinates must be canonical unpadded base64url of
 * exactly 32 bytes; an Ed25519 x must decode to a point on the curve that is not of small order;
 * an EC point must be on the curve. A private member "d" is rejected, as are other kty/crv values,
 * an OKP "y", an "alg" other than the one the key fits, and a "use" other than "sig". Other
 * members ("kid", "key_ops", …) are ignored as RFC 7517 §4 requires.
 * Returns AC_EC_OK and stores a new key in *out (the caller frees it with EVP_PKEY_free), or
 * AC_EC_JWK_INVALID (AC_EC_INTERNAL when OpenSSL fails for lack of memory) leaving *out NULL. */
enum ac_ec ac_jwk_import_public(const json_t *jwk, EVP_PKEY **out, const char **detail);

/* As ac_jwk_import_public, from at most AC_JWK_MAX_TEXT bytes of JSON text (need not be
 * NUL-terminated), parsed with JSON_REJECT_DUPLICATES; the text must be one JSON object. */
enum ac_ec ac_jwk_import_public_text(const char *text, size_t len, EVP_PKEY **out,
                                     const char **detail);

/* Import a key pair from a private JWK (the public form plus "d", 32 bytes). "x" (and "y") must
 * match the public key derived from "d"; for P-256, d must lie in [1, n-1]. Meant for the CLI and
 * tests. Same return and ownership rules as ac_jwk_import_public. Decoded secret bytes are wiped.
 */
enum ac_ec ac_jwk_import_private(const json_t *jwk, EVP_PKEY **out, const char **detail);

/* As ac_jwk_import_private, from at most AC_JWK_MAX_TEXT bytes of JSON text. */
enum ac_ec ac_jwk_import_private_text(const char *text, size_t len, EVP_PKEY **out,
                                      const char **detail);

/* ---- JWK export and thumbprint --------------------------------------------------------------- */

/* The public JWK of an Ed25519 or P-256 key (public or private): a new object with exactly the
 * RFC 7638 required members (crv, kty, x[, y]). Returns a new reference, or NULL for another kind
 * of key or on allocation failure. */
json_t *ac_jwk_export_public(EVP_PKEY *key);

/* The canonical text of the public JWK: the RFC 7638 form, members in lexicographic order, no
 * whitespace, e.g. {"crv":"Ed25519","kty":"OKP","x":"…"}. Returns a malloc'd NUL-terminated
 * string (free with free()), or NULL as ac_jwk_export_public. */
char *ac_jwk_public_text(EVP_PKEY *key);

/* The private JWK (public members plus "d") of an Ed25519 or P-256 private key. Returns a new
 * reference, or NULL for a public-only key, another kind of key or on allocation failure. The
 * object holds the secret: the caller must not log it and should release it promptly. */
json_t *ac_jwk_export_private(EVP_PKEY *key);

/* RFC 7638 thumbprint (SHA-256 over the canonical public JWK, base64url without padding) into
 * out. This is agentclear's key id. Returns 0, or -1 for an unsupported key (out then holds ""). */
int ac_jwk_thumbprint(EVP_PKEY *key, char out[AC_JWK_THUMBPRINT_SIZE]);

/* ---- JWS compact serialization --------------------------------------------------------------- */

/* A parsed compact JWS. Everything is owned by the struct and released by ac_jws_clear. */
struct ac_jws {
    enum ac_sig_alg alg; /* from "alg": AC_SIG_ED25519 ("EdDSA") or AC_SIG_ES256 */
    const char *kid;     /* "kid" or NULL; borrowed from header */
    const char *typ;     /* "typ" or NULL; borrowed from header */
    json_t *header;      /* the decoded protected header (an object) */
    uint8_t *payload;    /* decoded payload bytes, followed by a NUL not counted in len */
    size_t payload_len;
    json_t *payload_json; /* the payload when it is one JSON object without duplicate
                             members, else NULL */
    char *signing_input;  /* ASCII(header_b64 '.' payload_b64), NUL-terminated */
    size_t signing_input_len;
    uint8_t sig[AC_SIG_MAX]; /* the raw signature (64 bytes for both algorithms) */
    size_t sig_len;
};

/* Parse a compact JWS "h.p.s" of at most AC_JWS_MAX_LEN bytes (need not be NUL-terminated).
 * Checks: exactly two dots; each part canonical unpadded base64url; header a JSON object with no
 * duplicate members; "alg" a string, "EdDSA" or "ES256"; "kid", "typ", "cty" strings when present;
 * no "crit" and no "b64" member (no extension is understood, RFC 7515 §4.1.11, RFC 7797); a
 * 64-byte signature. The signature is not checked here (see ac_jws_verify).
 * Returns AC_EC_OK with *out filled; AC_EC_JWS_ALG_UNSUPPORTED for another "alg" (including
 * "none"); AC_EC_JWS_MALFORMED for anything else wrong; AC_EC_INTERNAL on allocation failure. On
 * failure *out is left cleared (ac_jws_clear on it is harmless). */
enum ac_ec ac_jws_parse(const char *compact, size_t len, struct ac_jws *out, const char **detail);

/* Verify a parsed JWS against a public (or private) key. The header's alg must fit the key and
 * ac_sig_verify over the signing input must return 1. Returns AC_EC_OK, or AC_EC_JWS_BAD_SIGNATURE
 * (also for an alg that does not fit the key, and for a NULL key or jws). Changes nothing. */
enum ac_ec ac_jws_verify(const struct ac_jws *jws, EVP_PKEY *key);

/* Release everything a parsed JWS owns and zero it. Accepts NULL and a zeroed struct. */
void ac_jws_clear(struct ac_jws *jws);

/* Sign payload_len bytes of payload with a private Ed25519 or P-256 key. The protected header is
 * {"alg":…[,"kid":kid][,"typ":typ]} in that order, compact; alg follows from the key; kid and typ
 * (NUL-terminated UTF-8) may be NULL. Returns the compact JWS as a malloc'd NUL-terminated string
 * (free with free()), or NULL when the key cannot sign, kid/typ are not valid UTF-8, the result
 * would exceed AC_JWS_MAX_LEN, or on allocation failure. */
char *ac_jws_sign(EVP_PKEY *key, const char *kid, const char *typ, const uint8_t *payload,
                  size_t payload_len);

#endif
