/* RFC 9530 Content-Digest with sha-256 and sha-512. */
#include "protocol/digest.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "protocol/sfv.h"
#include "protocol/sha256.h"

static const struct {
    const char *key;
    unsigned bit;
    size_t len;
} algs_tab[] = {
    {"sha-256", AC_DIGEST_SHA256, 32},
    {"sha-512", AC_DIGEST_SHA512, 64},
};

/* One-shot hash; returns 0 or -1. */
static int hash(unsigned bit, const uint8_t *body, size_t blen, uint8_t *md)
{
    static const uint8_t empty[1] = {0};
    if (body == NULL) body = empty; /* blen is 0 then */
    if (bit == AC_DIGEST_SHA256) {
        ac_sha256(body, blen, md);
        return 0;
    }
    unsigned mdlen = 0;
    return EVP_Digest(body, blen, md, &mdlen, EVP_sha512(), NULL) == 1 ? 0 : -1;
}

enum ac_ec ac_digest_verify(const char *hdr, size_t hlen, const uint8_t *body, size_t blen)
{
    if (hdr == NULL) return AC_EC_DIGEST_MISSING;
    if (body == NULL && blen != 0) return AC_EC_INTERNAL;
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    struct ac_sfv_dict d;
    enum ac_ec ec = AC_EC_OK;
    int rc = ac_sfv_parse_dict(hdr, hlen, &a, &d);
    if (rc == AC_SFV_ENOMEM) {
        ec = AC_EC_INTERNAL;
        goto out;
    }
    if (rc != AC_SFV_OK) {
        ec = AC_EC_DIGEST_MALFORMED;
        goto out;
    }
    /* shape first, so that a malformed header is reported as such even beside a mismatch */
    int supported = 0;
    for (size_t i = 0; i < sizeof algs_tab / sizeof algs_tab[0]; i++) {
        const struct ac_sfv_dict_entry *e = ac_sfv_dict_get(&d, algs_tab[i].key);
        if (e == NULL) continue;
        if (e->value.bare.type != AC_SFV_BYTES || e->value.bare.len != algs_tab[i].len) {
            ec = AC_EC_DIGEST_MALFORMED;
            goto out;
        }
        supported++;
    }
    if (supported == 0) {
        ec = AC_EC_DIGEST_MALFORMED;
        goto out;
    }
    for (size_t i = 0; i < sizeof algs_tab / sizeof algs_tab[0]; i++) {
        const struct ac_sfv_dict_entry *e = ac_sfv_dict_get(&d, algs_tab[i].key);
        if (e == NULL) continue;
        uint8_t md[EVP_MAX_MD_SIZE];
        if (hash(algs_tab[i].bit, body, blen, md) != 0) {
            ec = AC_EC_INTERNAL;
            goto out;
        }
        if (CRYPTO_memcmp(md, e->value.bare.str, algs_tab[i].len) != 0) {
            ec = AC_EC_DIGEST_MISMATCH;
            goto out;
        }
    }
out:
    ac_sfv_arena_release(&a);
    return ec;
}

long ac_digest_header(unsigned algs, const uint8_t *body, size_t blen, char *out, size_t cap)
{
    if (algs == 0 || (algs & ~(AC_DIGEST_SHA256 | AC_DIGEST_SHA512)) != 0) return -1;
    if (body == NULL && blen != 0) return -1;
    uint8_t md[2][EVP_MAX_MD_SIZE];
    struct ac_sfv_dict_entry e[2];
    struct ac_sfv_dict d = {e, 0};
    memset(e, 0, sizeof e);
    for (size_t i = 0; i < sizeof algs_tab / sizeof algs_tab[0]; i++) {
        if (!(algs & algs_tab[i].bit)) continue;
        if (hash(algs_tab[i].bit, body, blen, md[d.n]) != 0) return -1;
        e[d.n].key = algs_tab[i].key;
        e[d.n].value.bare.type = AC_SFV_BYTES;
        e[d.n].value.bare.str = (const char *)md[d.n];
        e[d.n].value.bare.len = algs_tab[i].len;
        d.n++;
    }
    return ac_sfv_ser_dict(&d, out, cap);
}
