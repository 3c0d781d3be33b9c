/* C2SP signed notes (Ed25519) and tlog checkpoints. See note.h. */
#include "protocol/note.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "protocol/b64.h"
#include "protocol/buf.h"
#include "protocol/sha256.h"
#include "protocol/sig.h"

#define SIG_TYPE_ED25519 0x01
#define ED25519_LEN 32
#define ED25519_SIG_LEN 64
/* "\u2014 " -- EM DASH and a space, the start of every signature line */
static const char sig_prefix[] = "\xe2\x80\x94 ";
#define SIG_PREFIX_LEN 4

const char *ac_note_strerror(enum ac_note_status st)
{
    switch (st) {
    case AC_NOTE_OK:
        return "ok";
    case AC_NOTE_ENOMEM:
        return "out of memory or crypto failure";
    case AC_NOTE_EARG:
        return "invalid argument";
    case AC_NOTE_EMALFORMED:
        return "malformed signed note";
    case AC_NOTE_EUNVERIFIED:
        return "no signature from a known key";
    case AC_NOTE_EBADSIG:
        return "invalid signature from a known key";
    }
    return "unknown status";
}

/* ==== text rules ============================================================================= */

/* Valid UTF-8 without control characters other than '\n' (the note-wide rule). */
static int chars_valid(const char *t, size_t n)
{
    const uint8_t *s = (const uint8_t *)t;
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        if (ac_utf8_next(s, n, &i, &cp) != 0) return 0;
        if (cp < 0x20 && cp != '\n') return 0;
    }
    return 1;
}

/* Unicode White_Space, as Go's unicode.IsSpace (the reference implementation's name rule). */
static int is_space(uint32_t cp)
{
    switch (cp) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000:
        return 1;
    }
    return cp >= 0x2000 && cp <= 0x200a;
}

int ac_note_name_valid(const char *name, size_t len)
{
    if (!name || len == 0) return 0;
    const uint8_t *s = (const uint8_t *)name;
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        if (ac_utf8_next(s, len, &i, &cp) != 0) return 0;
        if (cp < 0x20 || cp == '+' || is_space(cp)) return 0;
    }
    return 1;
}

int ac_note_text_valid(const char *text, size_t len)
{
    return text && len > 0 && text[len - 1] == '\n' && chars_valid(text, len);
}

int ac_note_key_id(const char *name, size_t len, const uint8_t pub[32], uint32_t *id)
{
    static const uint8_t sep[2] = {'\n', SIG_TYPE_ED25519};
    uint8_t h[32];
    const struct ac_sha256_part parts[] = {{name, len}, {sep, 2}, {pub, ED25519_LEN}};
    ac_sha256v(parts, 3, h);
    *id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    return 0;
}

/* ==== keys =================================================================================== */

/* What verifiers and signers share: a name, a key ID and an Ed25519 key. */
struct key {
    char *name;
    size_t name_len;
    uint32_t id;
    uint8_t pub[ED25519_LEN];
    EVP_PKEY *pkey;
};

struct ac_note_verifier {
    struct key k;
};

struct ac_note_signer {
    struct key k;
};

static void key_clear(struct key *k)
{
    free(k->name);
    EVP_PKEY_free(k->pkey);
}

/* Fill k from a name and a raw public key; builds its own EVP_PKEY. Returns 0 or -1 (k then
 * holds nothing to free). */
static int key_init_pub(struct key *k, const char *name, size_t name_len,
                        const uint8_t pub[ED25519_LEN])
{
    memset(k, 0, sizeof *k);
    if (!ac_note_name_valid(name, name_len)) return -1;
    if (ac_note_key_id(name, name_len, pub, &k->id) != 0) return -1;
    k->name = malloc(name_len + 1);
    k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, ED25519_LEN);
    if (!k->name || !k->pkey) {
        key_clear(k);
        memset(k, 0, sizeof *k);
        return -1;
    }
    memcpy(k->name, name, name_len);
    k->name[name_len] = '\0';
    k->name_len = name_len;
    memcpy(k->pub, pub, ED25519_LEN);
    return 0;
}

static int parse_hex32(const char *s, size_t n, uint32_t *out)
{
    if (n != 8) return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Split "name+hex+b64" (the common tail of both key strings) and decode the key bytes into
 * raw[ED25519_LEN] after checking the type byte. Returns 0 or -1. */
static int split_key(const char *s, size_t len, const char **name, size_t *name_len, uint32_t *id,
                     uint8_t raw[ED25519_LEN])
{
    const char *p1 = memchr(s, '+', len);
    if (!p1) return -1;
    const char *p2 = memchr(p1 + 1, '+', len - (size_t)(p1 + 1 - s));
    if (!p2) return -1;
    const char *b64 = p2 + 1;
    size_t b64_len = len - (size_t)(b64 - s);
    /* base64 of 33 bytes is 44 characters; the alphabet has '+', so no further split */
    if (b64_len != 44) return -1;
    uint8_t buf[44 * 3 / 4 + 3];
    size_t n = 0;
    int rc = -1;
    if (parse_hex32(p1 + 1, (size_t)(p2 - p1 - 1), id) == 0 &&
        ac_b64_decode(b64, b64_len, buf, &n, 0) == 0 && n == 1 + ED25519_LEN &&
        buf[0] == SIG_TYPE_ED25519) {
        memcpy(raw, buf + 1, ED25519_LEN);
        *name = s;
        *name_len = (size_t)(p1 - s);
        rc = 0;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

/* "name+hexid+base64(0x01||raw)", malloc'd; prefix is prepended (may be ""). */
static char *format_key(const char *prefix, const struct key *k, const uint8_t raw[ED25519_LEN])
{
    uint8_t kb[1 + ED25519_LEN];
    char b64[64];
    kb[0] = SIG_TYPE_ED25519;
    memcpy(kb + 1, raw, ED25519_LEN);
    ac_b64_encode(kb, sizeof kb, b64, 0);
    size_t n = strlen(prefix) + k->name_len + 1 + 8 + 1 + strlen(b64) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s%s+%08" PRIx32 "+%s", prefix, k->name, k->id, b64);
    OPENSSL_cleanse(kb, sizeof kb);
    OPENSSL_cleanse(b64, sizeof b64);
    return out;
}

struct ac_note_verifier *ac_note_verifier_parse(const char *s, size_t len)
{
    if (!s) return NULL;
    const char *name;
    size_t name_len;
    uint32_t id;
    uint8_t pub[ED25519_LEN];
    if (split_key(s, len, &name, &name_len, &id, pub) != 0) return NULL;
    struct ac_note_verifier *v = malloc(sizeof *v);
    if (!v) return NULL;
    if (key_init_pub(&v->k, name, name_len, pub) != 0 || v->k.id != id) {
        key_clear(&v->k);
        free(v);
        return NULL;
    }
    return v;
}

/* The raw public key of an Ed25519 EVP_PKEY. */
static int raw_pub(EVP_PKEY *key, uint8_t pub[ED25519_LEN])
{
    size_t n = ED25519_LEN;
    if (ac_sig_key_alg(key) != AC_SIG_ED25519) return -1;
    return EVP_PKEY_get_raw_public_key(key, pub, &n) == 1 && n == ED25519_LEN ? 0 : -1;
}

struct ac_note_verifier *ac_note_verifier_from_key(const char *name, EVP_PKEY *key)
{
    uint8_t pub[ED25519_LEN];
    if (!name || raw_pub(key, pub) != 0) return NULL;
    struct ac_note_verifier *v = malloc(sizeof *v);
    if (!v) return NULL;
    if (key_init_pub(&v->k, name, strlen(name), pub) != 0) {
        free(v);
        return NULL;
    }
    return v;
}

char *ac_note_verifier_format(const struct ac_note_verifier *v)
{
    return format_key("", &v->k, v->k.pub);
}

const char *ac_note_verifier_name(const struct ac_note_verifier *v)
{
    return v->k.name;
}

uint32_t ac_note_verifier_key_id(const struct ac_note_verifier *v)
{
    return v->k.id;
}

void ac_note_verifier_free(struct ac_note_verifier *v)
{
    if (!v) return;
    key_clear(&v->k);
    free(v);
}

struct ac_note_signer *ac_note_signer_new(const char *name, EVP_PKEY *key)
{
    uint8_t pub[ED25519_LEN];
    size_t n = 0;
    /* a private key reports its raw private length; a public-only key fails here */
    if (!name || raw_pub(key, pub) != 0 || EVP_PKEY_get_raw_private_key(key, NULL, &n) != 1 ||
        n != ED25519_LEN)
        return NULL;
    struct ac_note_signer *s = malloc(sizeof *s);
    if (!s) return NULL;
    if (key_init_pub(&s->k, name, strlen(name), pub) != 0) {
        free(s);
        return NULL;
    }
    /* swap the public-only key for a reference to the private one */
    if (EVP_PKEY_up_ref(key) != 1) {
        key_clear(&s->k);
        free(s);
        return NULL;
    }
    EVP_PKEY_free(s->k.pkey);
    s->k.pkey = key;
    return s;
}

struct ac_note_signer *ac_note_signer_parse(const char *str, size_t len)
{
    static const char pfx[] = "PRIVATE+KEY+";
    const size_t pfx_len = sizeof pfx - 1;
    if (!str || len < pfx_len || memcmp(str, pfx, pfx_len) != 0) return NULL;
    const char *name;
    size_t name_len;
    uint32_t id;
    uint8_t seed[ED25519_LEN];
    if (split_key(str + pfx_len, len - pfx_len, &name, &name_len, &id, seed) != 0) return NULL;
    struct ac_note_signer *s = NULL;
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, ED25519_LEN);
    OPENSSL_cleanse(seed, sizeof seed);
    char *nm = malloc(name_len + 1);
    if (key && nm) {
        memcpy(nm, name, name_len);
        nm[name_len] = '\0';
        s = ac_note_signer_new(nm, key);
        if (s && (s->k.name_len != name_len || s->k.id != id)) {
            ac_note_signer_free(s);
            s = NULL;
        }
    }
    free(nm);
    EVP_PKEY_free(key);
    return s;
}

char *ac_note_signer_format(const struct ac_note_signer *s)
{
    uint8_t seed[ED25519_LEN];
    size_t n = ED25519_LEN;
    if (EVP_PKEY_get_raw_private_key(s->k.pkey, seed, &n) != 1 || n != ED25519_LEN) return NULL;
    char *out = format_key("PRIVATE+KEY+", &s->k, seed);
    OPENSSL_cleanse(seed, sizeof seed);
    return out;
}

struct ac_note_verifier *ac_note_signer_verifier(const struct ac_note_signer *s)
{
    struct ac_note_verifier *v = malloc(sizeof *v);
    if (!v) return NULL;
    if (key_init_pub(&v->k, s->k.name, s->k.name_len, s->k.pub) != 0) {
        free(v);
        return NULL;
    }
    return v;
}

const char *ac_note_signer_name(const struct ac_note_signer *s)
{
    return s->k.name;
}

uint32_t ac_note_signer_key_id(const struct ac_note_signer *s)
{
    return s->k.id;
}

void ac_note_signer_free(struct ac_note_signer *s)
{
    if (!s) return;
    key_clear(&s->k);
    free(s);
}

/* ==== signing and opening ==================================================================== */

/* base64 of 4 + 64 bytes: 92 characters */
#define SIG_B64_LEN 92

enum ac_note_status ac_note_sign(const char *text, size_t len,
                                 const struct ac_note_signer *const *signers, size_t n, char **out,
                                 size_t *outlen)
{
    if (!out) return AC_NOTE_EARG;
    *out = NULL;
    if (!ac_note_text_valid(text, len) || !signers || n == 0) return AC_NOTE_EARG;
    size_t total = len + 1 + 1;
    for (size_t i = 0; i < n; i++) {
        if (!signers[i]) return AC_NOTE_EARG;
        total += SIG_PREFIX_LEN + signers[i]->k.name_len + 1 + SIG_B64_LEN + 1;
    }
    char *buf = malloc(total);
    if (!buf) return AC_NOTE_ENOMEM;
    memcpy(buf, text, len);
    size_t o = len;
    buf[o++] = '\n';
    for (size_t i = 0; i < n; i++) {
        const struct key *k = &signers[i]->k;
        uint8_t sig[4 + AC_SIG_MAX];
        size_t siglen = 0;
        sig[0] = (uint8_t)(k->id >> 24);
        sig[1] = (uint8_t)(k->id >> 16);
        sig[2] = (uint8_t)(k->id >> 8);
        sig[3] = (uint8_t)k->id;
        if (ac_sig_sign(k->pkey, (const uint8_t *)text, len, sig + 4, &siglen) != 0 ||
            siglen != ED25519_SIG_LEN) {
            free(buf);
            return AC_NOTE_ENOMEM;
        }
        memcpy(buf + o, sig_prefix, SIG_PREFIX_LEN);
        o += SIG_PREFIX_LEN;
        memcpy(buf + o, k->name, k->name_len);
        o += k->name_len;
        buf[o++] = ' ';
        o += ac_b64_encode(sig, 4 + ED25519_SIG_LEN, buf + o, 0);
        buf[o++] = '\n';
    }
    buf[o] = '\0';
    *out = buf;
    if (outlen) *outlen = o;
    return AC_NOTE_OK;
}

/* One parsed signature line. */
struct sigline {
    const char *name;
    size_t name_len;
    uint32_t id;
    const uint8_t *sig; /* the signature, key ID stripped; points into the caller's buffer */
    size_t sig_len;
};

/* Room to decode the base64 of AC_NOTE_MAX_SIG_LEN bytes (ac_b64_decode wants n*3/4+3). */
#define SIG_B64_MAX ((AC_NOTE_MAX_SIG_LEN + 2) / 3 * 4)
#define SIG_RAW_CAP (SIG_B64_MAX / 4 * 3 + 3)

/* Parse "— name base64" at line[0..len) (len excludes the '\n'), decoding into raw
 * (SIG_RAW_CAP bytes). Returns 0 or -1. */
static int parse_sigline(const char *line, size_t len, struct sigline *sl, uint8_t *raw)
{
    if (len < SIG_PREFIX_LEN || memcmp(line, sig_prefix, SIG_PREFIX_LEN) != 0) return -1;
    line += SIG_PREFIX_LEN;
    len -= SIG_PREFIX_LEN;
    const char *sp = memchr(line, ' ', len);
    if (!sp) return -1;
    sl->name = line;
    sl->name_len = (size_t)(sp - line);
    const char *b64 = sp + 1;
    size_t b64_len = len - sl->name_len - 1;
    if (!ac_note_name_valid(sl->name, sl->name_len)) return -1;
    /* at least 5 decoded bytes (key ID and a signature); at most AC_NOTE_MAX_SIG_LEN */
    if (b64_len < 8 || b64_len > SIG_B64_MAX) return -1;
    size_t n = 0;
    if (ac_b64_decode(b64, b64_len, raw, &n, 0) != 0 || n < 5 || n > AC_NOTE_MAX_SIG_LEN) return -1;
    sl->id = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 | raw[3];
    sl->sig = raw + 4;
    sl->sig_len = n - 4;
    return 0;
}

enum ac_note_status ac_note_open(const char *note, size_t len,
                                 const struct ac_note_verifier *const *verifiers, size_t nv,
                                 size_t *text_len, uint8_t *verified)
{
    if (!note || (!verifiers && nv)) return AC_NOTE_EARG;
    if (verified) memset(verified, 0, nv);
    if (!chars_valid(note, len)) return AC_NOTE_EMALFORMED;
    /* the text ends at the last blank line: find the last "\n\n" */
    size_t split = len;
    for (size_t i = len; i >= 2; i--)
        if (note[i - 1] == '\n' && note[i - 2] == '\n') {
            split = i - 2;
            break;
        }
    if (split == len) return AC_NOTE_EMALFORMED;
    size_t tlen = split + 1; /* the text keeps its final '\n' */
    const char *sigs = note + split + 2;
    size_t slen = len - split - 2;
    if (slen == 0 || sigs[slen - 1] != '\n') return AC_NOTE_EMALFORMED;

    uint8_t *raw = malloc(SIG_RAW_CAP);
    if (!raw) return AC_NOTE_ENOMEM;
    enum ac_note_status st = AC_NOTE_OK;
    size_t lines = 0, good = 0;
    for (size_t p = 0; p < slen && st == AC_NOTE_OK;) {
        const char *nl = memchr(sigs + p, '\n', slen - p);
        size_t ll = (size_t)(nl - (sigs + p));
        struct sigline sl;
        if (++lines > AC_NOTE_MAX_SIGS || parse_sigline(sigs + p, ll, &sl, raw) != 0) {
            st = AC_NOTE_EMALFORMED;
            break;
        }
        p += ll + 1;
        for (size_t j = 0; j < nv; j++) {
            const struct key *k = &verifiers[j]->k;
            if (k->id != sl.id || k->name_len != sl.name_len ||
                memcmp(k->name, sl.name, sl.name_len) != 0)
                continue;
            if (ac_sig_verify(k->pkey, AC_SIG_ED25519, (const uint8_t *)note, tlen, sl.sig,
                              sl.sig_len) != 1) {
                st = AC_NOTE_EBADSIG;
                break;
            }
            good++;
            if (verified) verified[j] = 1;
        }
    }
    free(raw);
    if (st == AC_NOTE_OK && good == 0) st = AC_NOTE_EUNVERIFIED;
    if (st != AC_NOTE_OK) {
        if (verified) memset(verified, 0, nv);
        return st;
    }
    if (text_len) *text_len = tlen;
    return AC_NOTE_OK;
}

/* ==== checkpoints ============================================================================ */

/* base64 of 32 bytes: 44 characters */
#define ROOT_B64_LEN 44

int ac_checkpoint_parse(const char *text, size_t len, struct ac_checkpoint *cp)
{
    if (!cp || !ac_note_text_valid(text, len)) return -1;
    const char *end = text + len, *p = text;
    /* origin */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == p) return -1;
    cp->origin = p;
    cp->origin_len = (size_t)(nl - p);
    p = nl + 1;
    /* tree size */
    if (p == end || !(nl = memchr(p, '\n', (size_t)(end - p)))) return -1;
    size_t dl = (size_t)(nl - p);
    if (dl == 0 || dl > 20 || (dl > 1 && p[0] == '0')) return -1;
    uint64_t size = 0;
    for (size_t i = 0; i < dl; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (size > (UINT64_MAX - d) / 10) return -1;
        size = size * 10 + d;
    }
    cp->size = size;
    p = nl + 1;
    /* root hash */
    if (p == end || !(nl = memchr(p, '\n', (size_t)(end - p)))) return -1;
    uint8_t root[ROOT_B64_LEN * 3 / 4 + 3];
    size_t rn = 0;
    if ((size_t)(nl - p) != ROOT_B64_LEN || ac_b64_decode(p, ROOT_B64_LEN, root, &rn, 0) != 0 ||
        rn != AC_MERKLE_HASH_LEN)
        return -1;
    memcpy(cp->root, root, AC_MERKLE_HASH_LEN);
    p = nl + 1;
    /* extension lines: each non-empty (the text ends with '\n', so "\n\n" or a leading '\n'
     * is the only way to get an empty one) */
    if (p < end && p[0] == '\n') return -1;
    for (const char *q = p; q + 1 < end; q++)
        if (q[0] == '\n' && q[1] == '\n') return -1;
    cp->ext = p < end ? p : NULL;
    cp->ext_len = (size_t)(end - p);
    return 0;
}

char *ac_checkpoint_format(const struct ac_checkpoint *cp, size_t *len)
{
    if (!cp || !cp->origin || (cp->ext_len && !cp->ext)) return NULL;
    char size[24], root[ROOT_B64_LEN + 1];
    int sl = snprintf(size, sizeof size, "%" PRIu64, cp->size);
    ac_b64_encode(cp->root, AC_MERKLE_HASH_LEN, root, 0);
    size_t n = cp->origin_len + 1 + (size_t)sl + 1 + ROOT_B64_LEN + 1 + cp->ext_len;
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    memcpy(out + o, cp->origin, cp->origin_len);
    o += cp->origin_len;
    out[o++] = '\n';
    memcpy(out + o, size, (size_t)sl);
    o += (size_t)sl;
    out[o++] = '\n';
    memcpy(out + o, root, ROOT_B64_LEN);
    o += ROOT_B64_LEN;
    out[o++] = '\n';
    if (cp->ext_len) memcpy(out + o, cp->ext, cp->ext_len);
    o += cp->ext_len;
    out[o] = '\0';
    /* the rules live in one place: the result must parse back to exactly these fields (this also
     * catches a '\n' inside the origin and malformed extension lines) */
    struct ac_checkpoint back;
    if (ac_checkpoint_parse(out, o, &back) != 0 || back.origin_len != cp->origin_len ||
        memcmp(back.origin, cp->origin, cp->origin_len) != 0 || back.size != cp->size ||
        memcmp(back.root, cp->root, AC_MERKLE_HASH_LEN) != 0 || back.ext_len != cp->ext_len ||
        (cp->ext_len && memcmp(back.ext, cp->ext, cp->ext_len) != 0)) {
        free(out);
        return NULL;
    }
    if (len) *len = o;
    return out;
}
