/* keys/keyring.h -- the server's own signing keys, with rotation.
 *
 * A key file is one private JWK (RFC 7517/8037/7518, Ed25519 or P-256) with added members:
 *   "kid" -- the RFC 7638 thumbprint of the public key (checked on load),
 *   "alg" -- "EdDSA" or "ES256", "use" -- "sig",
 *   "nbf", "exp" -- the validity window, unix seconds, nbf < exp (a key is valid for
 *                   nbf <= now < exp).
 * Files are made by `agentclear keygen` (ac_keyfile_create) with mode 0600; a file that group or
 * others may access (mode & 077) is refused on load.
 *
 * Rotation: at time `now`, the current signing key is the valid key with the latest nbf (ties:
 * the later loaded); every other key that is valid now is a "previous" key, kept so that what it
 * signed still verifies. Expired keys are never used, exported or accepted. Keys whose nbf lies in
 * the future are published in the JWKS ahead of time (so verifiers learn them before they sign)
 * but neither sign nor verify yet.
 *
 * Domain separation: every signature made through this module covers a purpose tag. The signed
 * bytes are "agentclear/v1/" || purpose || 0x00 || msg, where purpose is 1..AC_SIGN_PURPOSE_MAX
 * bytes of [a-z0-9._-] (e.g. "checkpoint", "receipt"). A signature for one purpose therefore never
 * verifies for another, and never collides with a JWS or RFC 9421 signing input.
 *
 * A keyring is filled once (single thread) and read-only afterwards: the query functions may then
 * be called from any number of threads. Nothing here ever logs or prints key material. */
#ifndef AC_KEYRING_H
#define AC_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "protocol/jose.h"
#include "protocol/sig.h"

/* Most keys one keyring holds. */
#define AC_KEYRING_MAX 32
/* Longest purpose tag (bytes). */
#define AC_SIGN_PURPOSE_MAX 64
/* The fixed prefix of every purpose-tagged signing input. */
#define AC_SIGN_PREFIX "agentclear/v1/"

/* One server key. Owned by its keyring. */
struct ac_server_key {
    EVP_PKEY *pkey;                   /* private key */
    enum ac_sig_alg alg;              /* AC_SIG_ED25519 or AC_SIG_ES256 */
    char kid[AC_JWK_THUMBPRINT_SIZE]; /* RFC 7638 thumbprint */
    int64_t nbf;                      /* valid from (unix seconds, inclusive) */
    int64_t exp;                      /* valid until (unix seconds, exclusive) */
};

struct ac_keyring;

/* ---- key files ------------------------------------------------------------------------------- */

/* The key file object of a private key: the private JWK plus "kid", "alg", "use", "nbf", "exp".
 * Returns a new reference (holding the secret: never log it), or NULL for a public-only or
 * unsupported key, nbf >= exp, or on allocation failure. */
json_t *ac_keyfile_json(EVP_PKEY *key, int64_t nbf, int64_t exp);

/* Write a new key file at path: created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600 (an existing
 * file is never overwritten), written in full and fsync'd. Returns 0, or -1 with a short message
 * in err (then no file is left behind, except when path existed already: it is untouched). */
int ac_keyfile_create(const char *path, EVP_PKEY *key, int64_t nbf, int64_t exp, char *err,
                      size_t errlen);

/* ---- the keyring ------------------------------------------------------------------------------
 */

/* A new empty keyring, or NULL on allocation failure. */
struct ac_keyring *ac_keyring_new(void);

/* Free a keyring and its keys. Accepts NULL. */
void ac_keyring_free(struct ac_keyring *kr);

/* Add a private key with its window; the keyring takes its own reference (EVP_PKEY_up_ref), the
 * caller keeps theirs. Returns 0, or -1 with a message in err for a public-only or unsupported
 * key, nbf >= exp, a kid already in the ring, a full ring, or allocation failure (ring unchanged).
 */
int ac_keyring_add(struct ac_keyring *kr, EVP_PKEY *key, int64_t nbf, int64_t exp, char *err,
                   size_t errlen);

/* Load one key file into the ring. Refused (-1, ring unchanged, message in err naming the file
 * but never its contents): not a regular file, a symlink, mode & 077 != 0 (group/world access),
 * larger than AC_JWK_MAX_TEXT, not a valid private JWK, missing or non-integer nbf/exp,
 * nbf >= exp, a "kid" that is not the key's thumbprint, or as ac_keyring_add. Returns 0. */
int ac_keyring_load_file(struct ac_keyring *kr, const char *path, char *err, size_t errlen);

/* Load every "*.jwk" or "*.json" file of a directory (sorted by name; other names, including
 * dot-files, are skipped) with ac_keyring_load_file. All or nothing: on the first failure returns
 * -1 with the message in err and the ring is as it was before the call. Returns the number of
 * keys loaded (0 for a directory without key files). */
int ac_keyring_load_dir(struct ac_keyring *kr, const char *dir, char *err, size_t errlen);

/* Number of keys in the ring (whatever their window). */
size_t ac_keyring_count(const struct ac_keyring *kr);

/* The current signing key at `now` (see the header comment), or NULL when no key is valid. The
 * pointer stays valid as long as the keyring. */
const struct ac_server_key *ac_keyring_current(const struct ac_keyring *kr, int64_t now);

/* The key with this kid if it is valid at `now` (current or previous), else NULL. kid is compared
 * in constant time per entry. */
const struct ac_server_key *ac_keyring_find(const struct ac_keyring *kr, const char *kid,
                                            int64_t now);

/* The public JWKS at `now`: {"keys":[{kty,crv,x[,y],kid,alg,use:"sig",nbf,exp}, ...]} with every
 * key not yet expired (exp > now), current key first, then by nbf descending. Never contains "d".
 * Returns a new reference, or NULL on allocation failure. A NULL keyring gives {"keys":[]}. */
json_t *ac_keyring_jwks(const struct ac_keyring *kr, int64_t now);

/* ---- purpose-tagged signatures ----------------------------------------------------------------
 */

/* Sign "agentclear/v1/" || purpose || 0x00 || msg with a private key. Writes the raw signature
 * (64 bytes) and its length. Returns 0, or -1 for an invalid purpose, a key that cannot sign, or
 * an OpenSSL failure. */
int ac_sign_purpose(EVP_PKEY *key, const char *purpose, const uint8_t *msg, size_t msglen,
                    uint8_t sig[AC_SIG_MAX], size_t *siglen);

/* Verify a signature made by ac_sign_purpose. Returns 1 only when sig is valid for key over the
 * same purpose and msg; 0 otherwise (bad signature, other purpose, invalid purpose, alg that does
 * not fit the key). */
int ac_verify_purpose(EVP_PKEY *key, const char *purpose, const uint8_t *msg, size_t msglen,
                      const uint8_t *sig, size_t siglen);

/* Sign with the current key at `now` (ac_sign_purpose); copies its kid into kid_out. Returns 0,
 * or -1 when no key is current or signing fails (kid_out then ""). */
int ac_keyring_sign(const struct ac_keyring *kr, int64_t now, const char *purpose,
                    const uint8_t *msg, size_t msglen, uint8_t sig[AC_SIG_MAX], size_t *siglen,
                    char kid_out[AC_JWK_THUMBPRINT_SIZE]);

/* Verify a purpose-tagged signature by the key `kid`, which must be valid at `now`. Returns 1
 * only for a valid signature; 0 otherwise (unknown or expired kid included). */
int ac_keyring_verify(const struct ac_keyring *kr, int64_t now, const char *kid,
                      const char *purpose, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                      size_t siglen);

#endif
