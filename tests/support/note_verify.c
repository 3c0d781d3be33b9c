#include "tests/support/note_verify.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* ---- an independent verifier ------------------------------------------------------------------
 * Written from the C2SP signed-note and tlog-checkpoint specs with OpenSSL alone (no code from
 * protocol/note.c or protocol/b64.c), to cross-check the production verifier and the evidence
 * log's checkpoints (protocol/evidence.h). Deliberately plain: standard base64 through
 * EVP_DecodeBlock, key ID = SHA-256(name || 0x0A || 0x01 || pub)[:4] big-endian, Ed25519 over
 * the note text (which ends in '\n' and excludes the blank separator line). */

/* standard base64 with padding -> bytes; -1 when malformed */
long ac_ind_b64(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok) return -1;
    }
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (len < 0) return -1;
    if (s[n - 1] == '=') len--;
    if (s[n - 2] == '=') len--;
    return len;
}

/* "name+hex8+base64(0x01||pub)" */
int ac_ind_parse_vkey(const char *v, struct ac_ind_key *k)
{
    const char *p1 = strchr(v, '+');
    if (p1 == NULL || p1 == v || (size_t)(p1 - v) >= sizeof k->name) return -1;
    const char *p2 = strchr(p1 + 1, '+');
    if (p2 == NULL || p2 - p1 - 1 != 8) return -1;
    memcpy(k->name, v, (size_t)(p1 - v));
    k->name[p1 - v] = '\0';
    char hexid[9];
    memcpy(hexid, p1 + 1, 8);
    hexid[8] = '\0';
    char *end;
    unsigned long id = strtoul(hexid, &end, 16);
    if (*end != '\0') return -1;
    uint8_t raw[48];
    if (ac_ind_b64(p2 + 1, strlen(p2 + 1), raw, sizeof raw) != 33 || raw[0] != 0x01) return -1;
    memcpy(k->pub, raw + 1, 32);
    /* the key ID is derived, not trusted */
    uint8_t h[32];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    const uint8_t nl_type[2] = {0x0a, 0x01};
    unsigned hn;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, k->name, strlen(k->name)) == 1 &&
             EVP_DigestUpdate(c, nl_type, 2) == 1 && EVP_DigestUpdate(c, k->pub, 32) == 1 &&
             EVP_DigestFinal_ex(c, h, &hn) == 1;
    EVP_MD_CTX_free(c);
    if (!ok) return -1;
    k->id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    return k->id == id ? 0 : -1;
}

static int ac_ind_ed25519_ok(const uint8_t pub[32], const uint8_t *msg, size_t n,
                             const uint8_t *sig)
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = pk && c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(c, sig, 64, msg, n) == 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    return ok;
}

/* Verify note[0..n) against one key. Returns 1 (a matching signature verifies and none fails),
 * 0 otherwise; *text_len gets the length of the signed text. */
int ac_ind_verify(const char *note, size_t n, const struct ac_ind_key *k, size_t *text_len)
{
    /* UTF-8 is not re-validated here beyond "no control characters but \n": the specs' notes
     * and ours are ASCII apart from the em dash. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)note[i] < 0x20 && note[i] != '\n') return 0;
    if (n < 2 || note[n - 1] != '\n') return 0;
    /* the text ends at the last blank line */
    size_t sep = 0;
    int found = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (note[i] == '\n' && note[i + 1] == '\n') sep = i, found = 1;
    if (!found) return 0;
    *text_len = sep + 1;
    int good = 0;
    const char *p = note + sep + 2, *end = note + n;
    static const char dash[] = "\xe2\x80\x94 ";
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || (size_t)(nl - p) < 4 || memcmp(p, dash, 4) != 0) return 0;
        const char *name = p + 4, *sp = memchr(name, ' ', (size_t)(nl - name));
        if (sp == NULL) return 0;
        uint8_t sig[128];
        long sl = ac_ind_b64(sp + 1, (size_t)(nl - sp - 1), sig, sizeof sig);
        if (sl < 5) return 0;
        uint32_t id =
            (uint32_t)sig[0] << 24 | (uint32_t)sig[1] << 16 | (uint32_t)sig[2] << 8 | sig[3];
        if ((size_t)(sp - name) == strlen(k->name) && memcmp(name, k->name, strlen(k->name)) == 0 &&
            id == k->id) {
            if (sl != 68 || !ac_ind_ed25519_ok(k->pub, (const uint8_t *)note, *text_len, sig + 4))
                return 0; /* a known key's signature that fails: reject the note */
            good = 1;
        }
        p = nl + 1;
    }
    return good;
}

/* tlog-checkpoint body: origin, size without leading zeros, base64 root of 32 bytes */
int ac_ind_checkpoint(const char *t, size_t n, char *origin, size_t ocap, uint64_t *size,
                      uint8_t root[32])
{
    const char *l1 = memchr(t, '\n', n);
    if (l1 == NULL || l1 == t || (size_t)(l1 - t) >= ocap) return -1;
    memcpy(origin, t, (size_t)(l1 - t));
    origin[l1 - t] = '\0';
    const char *l2s = l1 + 1, *l2 = memchr(l2s, '\n', (size_t)(t + n - l2s));
    if (l2 == NULL || l2 == l2s || (l2s[0] == '0' && l2 - l2s > 1)) return -1;
    uint64_t v = 0;
    for (const char *c = l2s; c < l2; c++) {
        if (*c < '0' || *c > '9' || v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    *size = v;
    const char *l3s = l2 + 1, *l3 = memchr(l3s, '\n', (size_t)(t + n - l3s));
    uint8_t r[48];
    if (l3 == NULL || ac_ind_b64(l3s, (size_t)(l3 - l3s), r, sizeof r) != 32) return -1;
    memcpy(root, r, 32);
    return 0;
}
