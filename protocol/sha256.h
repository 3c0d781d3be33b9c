/* protocol/sha256.h -- SHA-256 for hot paths. OpenSSL's implementation (with the CPU's SHA
 * extensions where it has them), the algorithm fetched once per process and one context kept per
 * thread: OpenSSL 3's one-shot SHA256() and EVP_Digest(EVP_sha256()) look the algorithm up in the
 * provider (under a lock) and allocate a context on every call, which was 3-4% of the server's
 * CPU under load. Should OpenSSL fail (no memory for a context), libsodium's portable SHA-256
 * computes the same digest, so these never fail. Thread-safe. */
#ifndef AC_SHA256_H
#define AC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define AC_SHA256_LEN 32

struct ac_sha256_part {
    const void *p;
    size_t n;
};

/* out = SHA-256(p[0..n)) */
void ac_sha256(const void *p, size_t n, uint8_t out[AC_SHA256_LEN]);
/* out = SHA-256 of the concatenation of parts[0..n) */
void ac_sha256v(const struct ac_sha256_part *parts, size_t n, uint8_t out[AC_SHA256_LEN]);

/* For tests: 1 when this thread hashes with OpenSSL (0: the fallback); and the fallback itself,
 * libsodium's portable SHA-256. */
int ac_sha256_uses_openssl(void);
void ac_sha256v_portable(const struct ac_sha256_part *parts, size_t n, uint8_t out[AC_SHA256_LEN]);

#endif
