/* SHA-256 with one fetched algorithm and a context per thread. See sha256.h. */
#include "protocol/sha256.h"

#include <pthread.h>

#include <openssl/evp.h>
#include <sodium.h>

static EVP_MD *sha256_md;
static pthread_key_t ctx_key;
static int ctx_key_ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void ctx_free(void *c)
{
    EVP_MD_CTX_free(c);
}

static void init(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    ctx_key_ok = pthread_key_create(&ctx_key, ctx_free) == 0;
}

/* this thread's context (freed when the thread exits), or NULL */
static EVP_MD_CTX *thread_ctx(void)
{
    if (pthread_once(&once, init) != 0 || sha256_md == NULL || !ctx_key_ok) return NULL;
    EVP_MD_CTX *c = pthread_getspecific(ctx_key);
    if (c != NULL) return c;
    if ((c = EVP_MD_CTX_new()) == NULL) return NULL;
    if (pthread_setspecific(ctx_key, c) != 0) {
        EVP_MD_CTX_free(c);
        return NULL;
    }
    return c;
}

void ac_sha256v(const struct ac_sha256_part *parts, size_t n, uint8_t out[AC_SHA256_LEN])
{
    EVP_MD_CTX *c = thread_ctx();
    unsigned len = 0;
    int ok = c != NULL && EVP_DigestInit_ex2(c, sha256_md, NULL) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(c, parts[i].p, parts[i].n) == 1;
    if (ok && EVP_DigestFinal_ex(c, out, &len) == 1 && len == AC_SHA256_LEN) return;
    ac_sha256v_portable(parts, n, out);
}

void ac_sha256v_portable(const struct ac_sha256_part *parts, size_t n, uint8_t out[AC_SHA256_LEN])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++)
        crypto_hash_sha256_update(&st, parts[i].p, parts[i].n);
    crypto_hash_sha256_final(&st, out);
}

int ac_sha256_uses_openssl(void)
{
    return thread_ctx() != NULL;
}

void ac_sha256(const void *p, size_t n, uint8_t out[AC_SHA256_LEN])
{
    struct ac_sha256_part part = {p, n};
    ac_sha256v(&part, 1, out);
}
