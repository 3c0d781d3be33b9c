/* protocol/b64.h -- base64 (RFC 4648 §4) and base64url without padding (§5, as JOSE uses). */
#ifndef AC_B64_H
#define AC_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encoded length including the terminating NUL. */
size_t ac_b64_enc_len(size_t n);

/* Encode n bytes into out (ac_b64_enc_len(n) bytes), NUL-terminated. Returns the string length.
 * url=0: standard alphabet with '=' padding. url=1: base64url, no padding. */
size_t ac_b64_encode(const uint8_t *in, size_t n, char *out, int url);

/* Decode a string of length n. url=0: standard alphabet, padding required when the length is not
 * a multiple of 4. url=1: base64url alphabet, padding forbidden. Non-canonical trailing bits are
 * rejected so each byte string has exactly one encoding. out must hold n*3/4+3 bytes.
 * Returns 0 and sets *outlen, or -1 on any malformed input (out contents then unspecified). */
int ac_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen, int url);

#endif
