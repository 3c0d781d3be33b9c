#include "protocol/sig.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>

enum ac_sig_alg ac_sig_key_alg(EVP_PKEY *key)
{
    if (key == NULL) return AC_SIG_NONE;
    if (EVP_PKEY_is_a(key, "ED25519")) return AC_SIG_ED25519;
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) == 1 &&
            strcmp(group, "prime256v1") == 0)
            return AC_SIG_ES256;
    }
    return AC_SIG_NONE;
}

/* raw r||s (32+32) -> DER; returns DER length or 0 */
static size_t raw_to_der(const uint8_t *raw, uint8_t *der, size_t cap)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *ss = BN_bin2bn(raw + 32, 32, NULL);
    size_t n = 0;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
        r = ss = NULL; /* owned by s now */
        int len = i2d_ECDSA_SIG(s, NULL);
        if (len > 0 && (size_t)len <= cap) {
            uint8_t *p = der;
            n = (size_t)i2d_ECDSA_SIG(s, &p);
        }
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    return n;
}

/* ---- the per-thread cache of Ed25519 verification contexts ------------------------------------
 * A slot holds a reference on its key, so the pointer cannot be reused for another key while
 * the slot lives; keys are immutable, so a context initialised for one stays valid for it. */

#define VCACHE_SLOTS 8

struct vcache {
    struct {
        EVP_PKEY *key;
        EVP_MD_CTX *ctx;
    } s[VCACHE_SLOTS];
    unsigned next; /* the slot replaced next (round robin) */
};

static pthread_key_t vcache_key;
static int vcache_ok;
static pthread_once_t vcache_once = PTHREAD_ONCE_INIT;

static void vslot_clear(struct vcache *c, unsigned i)
{
    EVP_MD_CTX_free(c->s[i].ctx);
    EVP_PKEY_free(c->s[i].key);
    c->s[i].ctx = NULL;
    c->s[i].key = NULL;
}

static void vcache_free(void *p)
{
    struct vcache *c = p;
    for (unsigned i = 0; i < VCACHE_SLOTS; i++)
        vslot_clear(c, i);
    free(c);
}

static void vcache_init(void)
{
    vcache_ok = pthread_key_create(&vcache_key, vcache_free) == 0;
}

/* This thread's cache, or NULL (then the caller verifies without one). */
static struct vcache *vcache_get(void)
{
    if (pthread_once(&vcache_once, vcache_init) != 0 || !vcache_ok) return NULL;
    struct vcache *c = pthread_getspecific(vcache_key);
    if (c == NULL && (c = calloc(1, sizeof *c)) != NULL &&
        pthread_setspecific(vcache_key, c) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

/* Ed25519: NULL digest, one-shot only. */
static int ed25519_verify(EVP_PKEY *key, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                          size_t siglen)
{
    struct vcache *c = vcache_get();
    unsigned i = 0;
    if (c != NULL) {
        while (i < VCACHE_SLOTS && c->s[i].key != key)
            i++;
        if (i == VCACHE_SLOTS) { /* a key not seen lately: set a context up in the next slot */
            i = c->next;
            c->next = (c->next + 1) % VCACHE_SLOTS;
            vslot_clear(c, i);
            EVP_MD_CTX *ctx = EVP_MD_CTX_new();
            if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1 ||
                EVP_PKEY_up_ref(key) != 1) {
                EVP_MD_CTX_free(ctx);
                return 0;
            }
            c->s[i].ctx = ctx;
            c->s[i].key = key;
        }
        int ok = EVP_DigestVerify(c->s[i].ctx, sig, siglen, msg, msglen) == 1;
        if (!ok) vslot_clear(c, i); /* a context is not reused after a failure */
        return ok;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

int ac_sig_verify(EVP_PKEY *key, enum ac_sig_alg alg, const uint8_t *msg, size_t msglen,
                  const uint8_t *sig, size_t siglen)
{
    if (alg == AC_SIG_NONE || ac_sig_key_alg(key) != alg || siglen != 64) return 0;
    if (alg == AC_SIG_ED25519) return ed25519_verify(key, msg, msglen, sig, siglen) ? 1 : 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) return 0;
    int ok = 0;
    {
        uint8_t der[80];
        size_t dlen = raw_to_der(sig, der, sizeof der);
        ok = dlen > 0 && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(ctx, der, dlen, msg, msglen) == 1;
    }
    EVP_MD_CTX_free(ctx);
    return ok ? 1 : 0;
}

int ac_sig_sign(EVP_PKEY *key, const uint8_t *msg, size_t msglen, uint8_t sig[AC_SIG_MAX],
                size_t *siglen)
{
    enum ac_sig_alg alg = ac_sig_key_alg(key);
    if (alg == AC_SIG_NONE) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) return -1;
    int rc = -1;
    if (alg == AC_SIG_ED25519) {
        size_t n = AC_SIG_MAX;
        if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
            EVP_DigestSign(ctx, sig, &n, msg, msglen) == 1 && n == 64) {
            *siglen = n;
            rc = 0;
        }
    } else {
        uint8_t der[80];
        size_t n = sizeof der;
        if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
            EVP_DigestSign(ctx, der, &n, msg, msglen) == 1) {
            const uint8_t *p = der;
            ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)n);
            if (s) {
                const BIGNUM *r, *ss;
                ECDSA_SIG_get0(s, &r, &ss);
                if (BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(ss, sig + 32, 32) == 32) {
                    *siglen = 64;
                    rc = 0;
                }
                ECDSA_SIG_free(s);
            }
        }
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

EVP_PKEY *ac_sig_keygen(enum ac_sig_alg alg)
{
    if (alg == AC_SIG_ED25519) return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (alg == AC_SIG_ES256) return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return NULL;
}
