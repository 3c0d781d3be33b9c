/* protocol/sig.h -- raw signature primitives shared by JWS (RFC 7515/8037) and HTTP message
 * signatures (RFC 9421): Ed25519 and ECDSA P-256 with SHA-256, signatures on the wire as raw
 * bytes (Ed25519: 64 bytes; ECDSA: r||s, 32+32 bytes; OpenSSL's DER is converted here). */
#ifndef AC_SIG_H
#define AC_SIG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

enum ac_sig_alg {
    AC_SIG_NONE = 0,
    AC_SIG_ED25519 = 1, /* JWS "EdDSA", RFC 9421 "ed25519" */
    AC_SIG_ES256 = 2,   /* JWS "ES256", RFC 9421 "ecdsa-p256-sha256" */
};

#define AC_SIG_MAX 64

/* The algorithm a key fits: AC_SIG_ED25519 for an Ed25519 key, AC_SIG_ES256 for a P-256 key,
 * AC_SIG_NONE otherwise. */
enum ac_sig_alg ac_sig_key_alg(EVP_PKEY *key);

/* Verify a raw signature over msg. Returns 1 only when the signature is valid for key under alg;
 * 0 for a bad signature, a wrong length, or an alg that does not fit the key; never < 0.
 * Ed25519 signatures are verified with libsodium (about 1.5x OpenSSL 3.0's speed; see sig.c),
 * which accepts nothing that OpenSSL's Ed25519 verify refuses. Thread-safe. */
int ac_sig_verify(EVP_PKEY *key, enum ac_sig_alg alg, const uint8_t *msg, size_t msglen,
                  const uint8_t *sig, size_t siglen);

/* Sign msg with a private key; writes the raw signature (64 bytes for both algorithms) to sig
 * and its length to *siglen. Returns 0, or -1 on failure (sig then unspecified). */
int ac_sig_sign(EVP_PKEY *key, const uint8_t *msg, size_t msglen, uint8_t sig[AC_SIG_MAX],
                size_t *siglen);

/* Generate a fresh key pair for alg. Returns NULL on failure. */
EVP_PKEY *ac_sig_keygen(enum ac_sig_alg alg);

#endif
