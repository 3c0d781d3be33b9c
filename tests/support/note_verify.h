/* tests/support/note_verify.h -- an independent C2SP signed-note and tlog-checkpoint verifier,
 * written from the specs with OpenSSL alone (no code from protocol/note.c or protocol/b64.c), to
 * cross-check the production verifier and the evidence log's checkpoints. */
#ifndef AC_TEST_NOTE_VERIFY_H
#define AC_TEST_NOTE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

struct ac_ind_key {
    char name[256];
    uint32_t id;
    uint8_t pub[32];
};

/* standard base64 with padding -> bytes; -1 when malformed */
long ac_ind_b64(const char *s, size_t n, uint8_t *out, size_t cap);
/* "name+hex8+base64(0x01||pub)"; the key ID is derived and compared. 0 or -1. */
int ac_ind_parse_vkey(const char *v, struct ac_ind_key *k);
/* Verify note[0..n) against one key. Returns 1 (a matching signature verifies and none fails),
 * 0 otherwise; *text_len gets the length of the signed text. */
int ac_ind_verify(const char *note, size_t n, const struct ac_ind_key *k, size_t *text_len);
/* tlog-checkpoint body: origin, size without leading zeros, base64 root of 32 bytes. 0 or -1. */
int ac_ind_checkpoint(const char *t, size_t n, char *origin, size_t ocap, uint64_t *size,
                      uint8_t root[32]);

#endif
