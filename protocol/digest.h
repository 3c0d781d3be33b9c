/* protocol/digest.h -- RFC 9530 Content-Digest: verify a body against the header, produce the
 * header for a body. Supported algorithms: sha-256 and sha-512 (RFC 9530 §5, "Active"); every
 * other key of the Dictionary is ignored. */
#ifndef AC_DIGEST_H
#define AC_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/errors.h"

/* Bit set of algorithms for ac_digest_header(). */
#define AC_DIGEST_SHA256 1u
#define AC_DIGEST_SHA512 2u

/* Longest header value ac_digest_header() writes (both algorithms), excluding the NUL. */
#define AC_DIGEST_HEADER_MAX 160u

/* Verify the Content-Digest field value hdr (hlen bytes, not necessarily NUL-terminated) against
 * body (blen bytes; body may be NULL when blen is 0).
 * Returns:
 *   AC_EC_OK               at least one supported algorithm is present and every supported one
 *                          present matches (compared in constant time);
 *   AC_EC_DIGEST_MISSING   hdr is NULL;
 *   AC_EC_DIGEST_MALFORMED the value is not an RFC 8941 Dictionary (or over its size cap), a
 *                          supported key does not hold a Byte Sequence of the algorithm's
 *                          length, or no supported algorithm is present;
 *   AC_EC_DIGEST_MISMATCH  a supported digest differs from the body's;
 *   AC_EC_INTERNAL         out of memory or a hash failure.
 * Parameters on members are ignored. Nothing is retained after the call. */
enum ac_ec ac_digest_verify(const char *hdr, size_t hlen, const uint8_t *body, size_t blen);

/* Write the Content-Digest value for body with the algorithms in algs (AC_DIGEST_SHA256 and/or
 * AC_DIGEST_SHA512; sha-256 first when both), e.g. "sha-512=:...:", NUL-terminated, into out
 * (cap bytes; AC_DIGEST_HEADER_MAX + 1 always suffice). Returns the length excluding the NUL,
 * or -1 when algs is empty or has unknown bits, the buffer is too small, or hashing fails. */
long ac_digest_header(unsigned algs, const uint8_t *body, size_t blen, char *out, size_t cap);

#endif
