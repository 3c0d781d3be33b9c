/* protocol/runtime.h -- the agent runtime digest ("agent runtime identity").
 *
 * A binding names the runtime an agent key may be used from: the software digest, the model
 * identifier and the environment digest. Their digest is
 *
 *     SHA-256( "agentclear-runtime/v1" LF software LF model LF environment )
 *
 * over the UTF-8 bytes, where software and environment are "sha-256:" followed by 64 lowercase
 * hex digits and model is 1..128 printable ASCII characters (0x20..0x7e). No field can contain
 * LF, so the encoding is unambiguous.
 *
 * Every signed agent request carries it in the `Agent-Runtime` header, an RFC 8941 Dictionary
 * in the shape of RFC 9530 Content-Digest:   agent-runtime: sha-256=:<base64 of 32 bytes>:
 * and covers that header with its RFC 9421 signature. */
#ifndef AC_RUNTIME_H
#define AC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/errors.h"

#define AC_RUNTIME_DIGEST_LEN 32
#define AC_RUNTIME_MODEL_MAX 128
/* "sha-256=:" + 44 base64 + ":" */
#define AC_RUNTIME_HEADER_MAX 64

/* 1 when s is "sha-256:" + 64 lowercase hex digits. */
int ac_runtime_hexdigest_valid(const char *s);
/* 1 when s is 1..128 characters of 0x20..0x7e. */
int ac_runtime_model_valid(const char *s);

/* Compute the runtime digest. Returns AC_EC_OK, AC_EC_BINDING_INVALID when a field is malformed
 * (see above), or AC_EC_INTERNAL. */
enum ac_ec ac_runtime_digest(const char *software, const char *model, const char *environment,
                             uint8_t out[AC_RUNTIME_DIGEST_LEN]);

/* The header value for a digest, NUL-terminated ("sha-256=:...:"). Returns its length, or -1
 * when cap is too small (AC_RUNTIME_HEADER_MAX + 1 always suffices). */
long ac_runtime_header(const uint8_t d[AC_RUNTIME_DIGEST_LEN], char *out, size_t cap);

/* Parse an Agent-Runtime field value (len bytes). Returns AC_EC_OK and the digest,
 * AC_EC_RUNTIME_MISSING when v is NULL, AC_EC_RUNTIME_MALFORMED when it is not a Dictionary with
 * a sha-256 Byte Sequence of 32 bytes, or AC_EC_INTERNAL. Other keys are ignored. */
enum ac_ec ac_runtime_header_parse(const char *v, size_t len, uint8_t out[AC_RUNTIME_DIGEST_LEN]);

#endif
