/* protocol/note.h -- C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 (signature
 * type 0x01), and C2SP transparency-log checkpoints (https://c2sp.org/tlog-checkpoint).
 *
 * A signed note is a text ending in '\n', a blank line, and one or more signature lines
 *     "\u2014 <key name> base64(4-byte big-endian key ID || 64-byte Ed25519 signature)\n"
 * Key ID = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4].
 * Key strings follow the Go reference implementation (golang.org/x/mod/sumdb/note):
 *     verifier key  "<name>+<8 hex key ID>+base64(0x01 || 32-byte public key)"
 *     signer key    "PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x01 || 32-byte private seed)"
 *
 * A checkpoint is the text of a note: "<origin>\n<decimal tree size>\n<base64 root hash>\n"
 * followed by optional non-empty extension lines. */
#ifndef AC_NOTE_H
#define AC_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "protocol/merkle.h"

/* ac_note_open() refuses notes with more signature lines than this (the spec requires at least
 * 16 to be accepted) and signatures longer than AC_NOTE_MAX_SIG_LEN bytes (key ID included;
 * room for post-quantum signatures of other, unknown keys). */
#define AC_NOTE_MAX_SIGS 100
#define AC_NOTE_MAX_SIG_LEN 8192

enum ac_note_status {
    AC_NOTE_OK = 0,
    AC_NOTE_ENOMEM,      /* an allocation or the crypto library failed */
    AC_NOTE_EARG,        /* invalid argument: bad text to sign, no signers, NULL pointers */
    AC_NOTE_EMALFORMED,  /* not a well-formed signed note */
    AC_NOTE_EUNVERIFIED, /* no signature from any of the given keys */
    AC_NOTE_EBADSIG,     /* a signature from a given key does not verify */
};

/* Short lowercase description. Never NULL. */
const char *ac_note_strerror(enum ac_note_status st);

/* ==== rules ================================================================================== */

/* 1 when name[0..len) is a valid key name: non-empty, valid UTF-8, no control characters, no
 * Unicode white space, no '+'. 0 otherwise. */
int ac_note_name_valid(const char *name, size_t len);

/* 1 when text[0..len) may be signed: non-empty, ends with '\n', valid UTF-8, and no control
 * characters (below U+0020) other than '\n'. 0 otherwise. */
int ac_note_text_valid(const char *text, size_t len);

/* Key ID of an Ed25519 key: first 4 bytes, big-endian, of
 * SHA-256(name || 0x0A || 0x01 || pub). Returns 0, or -1 when hashing fails (*id unchanged). */
int ac_note_key_id(const char *name, size_t len, const uint8_t pub[32], uint32_t *id);

/* ==== verifier keys ========================================================================== */

struct ac_note_verifier;

/* Parse a verifier key string "name+hexid+base64(0x01||pub)" (exactly len bytes, no trailing
 * newline). The key ID must be 8 hex digits and match the one computed from name and key.
 * Returns a new verifier (free with ac_note_verifier_free), or NULL when malformed, of another
 * signature type, mismatched or out of memory. */
struct ac_note_verifier *ac_note_verifier_parse(const char *s, size_t len);

/* Verifier for an Ed25519 key (public or private; only the public half is kept) under the
 * NUL-terminated name. key is not retained. Returns NULL when the name is invalid, the key is
 * not Ed25519 or an allocation fails. */
struct ac_note_verifier *ac_note_verifier_from_key(const char *name, EVP_PKEY *key);

/* The verifier key string, malloc'd and NUL-terminated (caller frees), or NULL on OOM. */
char *ac_note_verifier_format(const struct ac_note_verifier *v);

/* The key name (NUL-terminated, owned by v) and key ID. */
const char *ac_note_verifier_name(const struct ac_note_verifier *v);
uint32_t ac_note_verifier_key_id(const struct ac_note_verifier *v);

/* Release v; NULL is a no-op. */
void ac_note_verifier_free(struct ac_note_verifier *v);

/* ==== signer keys ============================================================================ */

struct ac_note_signer;

/* Signer for an Ed25519 private key under the NUL-terminated name. Takes its own reference to
 * key (the caller keeps and frees theirs). Returns NULL when the name is invalid, the key is not
 * an Ed25519 private key or an allocation fails. */
struct ac_note_signer *ac_note_signer_new(const char *name, EVP_PKEY *key);

/* Parse a signer key string "PRIVATE+KEY+name+hexid+base64(0x01||seed)" (exactly len bytes).
 * The key ID must match the derived public key. Returns NULL when malformed, mismatched or out of
 * memory. The decoded seed is wiped from the stack before returning. */
struct ac_note_signer *ac_note_signer_parse(const char *s, size_t len);

/* The signer key string (contains the private key): malloc'd, NUL-terminated, caller frees (and
 * should wipe); NULL on failure. */
char *ac_note_signer_format(const struct ac_note_signer *s);

/* A verifier for the signer's public key (free with ac_note_verifier_free), or NULL on OOM. */
struct ac_note_verifier *ac_note_signer_verifier(const struct ac_note_signer *s);

/* The key name (owned by s) and key ID. */
const char *ac_note_signer_name(const struct ac_note_signer *s);
uint32_t ac_note_signer_key_id(const struct ac_note_signer *s);

/* Release s; NULL is a no-op. */
void ac_note_signer_free(struct ac_note_signer *s);

/* ==== signing and opening ==================================================================== */

/* Sign text[0..len) with each of signers[0..n) (n >= 1) and build the note: the text, a blank
 * line, one signature line per signer in the given order. *out is malloc'd and NUL-terminated
 * (caller frees), *outlen its length. Returns AC_NOTE_OK; AC_NOTE_EARG when the text is not
 * valid (see ac_note_text_valid) or there is no signer; AC_NOTE_ENOMEM when signing or an
 * allocation fails. On error *out is NULL. */
enum ac_note_status ac_note_sign(const char *text, size_t len,
                                 const struct ac_note_signer *const *signers, size_t n, char **out,
                                 size_t *outlen);

/* Parse note[0..len) and verify it against verifiers[0..nv). Signatures whose (name, key ID) match
 * no verifier are ignored. Returns AC_NOTE_OK only when at least one matching signature verifies
 * and every matching signature verifies; then *text_len (if not NULL) is the length of the signed
 * text, which is note[0..*text_len). verified, if not NULL, has nv entries and is set to 1 for each
 * verifier with a valid signature, 0 otherwise. Errors: AC_NOTE_EMALFORMED (not valid UTF-8,
 * control characters, no blank line, bad signature line, more than AC_NOTE_MAX_SIGS lines),
 * AC_NOTE_EUNVERIFIED (no matching signature), AC_NOTE_EBADSIG (a matching signature fails). */
enum ac_note_status ac_note_open(const char *note, size_t len,
                                 const struct ac_note_verifier *const *verifiers, size_t nv,
                                 size_t *text_len, uint8_t *verified);

/* ==== checkpoints ============================================================================ */

/* The fields of a checkpoint body. Strings are (pointer, length) pairs, not NUL-terminated:
 * after ac_checkpoint_parse() they point into the parsed text (borrowed: keep it alive). */
struct ac_checkpoint {
    const char *origin; /* the log's origin line, without '\n' */
    size_t origin_len;
    uint64_t size; /* tree size */
    uint8_t root[AC_MERKLE_HASH_LEN];
    const char *ext; /* zero or more extension lines, each ending in '\n'; NULL when ext_len 0 */
    size_t ext_len;
};

/* Parse a checkpoint body (the text of a note, e.g. from ac_note_open) strictly: non-empty
 * origin line; tree size in decimal without sign or leading zeros ("0" for the empty tree) that
 * fits in uint64_t; root hash in canonical padded base64 of exactly 32 bytes; then only
 * non-empty extension lines; text ends with '\n'; valid UTF-8, no control characters other
 * than '\n'. Returns 0 and fills *cp, or -1 (and *cp is unspecified). */
int ac_checkpoint_parse(const char *text, size_t len, struct ac_checkpoint *cp);

/* Build the checkpoint body from *cp, with the same rules as the parser (so parse(format(cp))
 * gives cp back). Returns a malloc'd NUL-terminated string (caller frees) and sets *len (if not
 * NULL), or NULL when a field breaks the rules or an allocation fails. */
char *ac_checkpoint_format(const struct ac_checkpoint *cp, size_t *len);

#endif
