/* libFuzzer harness for RFC 9421 signatures and RFC 9530 digests against a fixed request.
 * Input: "<Signature-Input>\n<Signature>\n<Content-Digest>" (missing parts are absent fields).
 * Beyond "no crash, no leak": a base that builds has exactly base_len bytes and ends with the
 * @signature-params line; and whatever component set was accepted, re-signing it with a fixed
 * key must give headers that parse, rebuild and verify. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NH 8

struct hdrs {
    const char *name[NH];
    const char *value[NH];
};

static const char *lookup(void *ctx, const char *lname)
{
    const struct hdrs *h = ctx;
    for (size_t i = 0; i < NH && h->name[i] != NULL; i++)
        if (strcmp(h->name[i], lname) == 0) return h->value[i];
    return NULL;
}

static EVP_PKEY *fixed_key(void)
{
    static EVP_PKEY *k;
    if (k == NULL) {
        static const uint8_t seed[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                         12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                         23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
        k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
        if (k == NULL) abort();
    }
    return k;
}

/* next '\n'-separated part of [*p, end) as a malloc'd string, or NULL when there is none */
static char *part(const uint8_t **p, const uint8_t *end)
{
    if (*p > end) return NULL;
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *stop = nl ? nl : end;
    size_t n = (size_t)(stop - *p);
    char *s = malloc(n + 1);
    if (s == NULL) abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end + 1;
    return s;
}

/* re-sign the accepted component set and check the signer/verifier agree */
static void resign(const struct ac_httpsig *hs, const struct ac_http_request *req)
{
    const char *comps[AC_HTTPSIG_MAX_COMPONENTS + 1];
    for (size_t i = 0; i < hs->ncomps; i++)
        comps[i] = hs->comps[i].id;
    comps[hs->ncomps] = NULL;
    struct ac_httpsig_sign_opts o = {.label = hs->label,
                                     .components = comps,
                                     .keyid = hs->keyid ? hs->keyid : "k",
                                     .created = hs->has_created ? hs->created : 0,
                                     .expires = hs->has_expires ? hs->expires : 0,
                                     .nonce = hs->nonce,
                                     .tag = hs->tag,
                                     .with_alg = 1};
    static char si[2 * AC_SFV_MAX_INPUT + 256], sg[256];
    enum ac_ec ec = ac_httpsig_sign(fixed_key(), req, &o, si, sizeof si, sg, sizeof sg);
    if (ec == AC_EC_PARAMETER_INVALID) return; /* e.g. the output exceeds a field's size cap */
    if (ec != AC_EC_OK) abort();
    struct ac_httpsig v;
    ec = ac_httpsig_parse(&v, si, sg, NULL);
    if (ec == AC_EC_SIG_MALFORMED && strlen(si) > AC_SFV_MAX_INPUT) return;
    if (ec != AC_EC_OK) abort();
    if (ac_httpsig_base(&v, req) != AC_EC_OK) abort();
    /* same components over the same request: only the parameter line may differ */
    size_t lines = hs->base_len - hs->params_len;
    if (v.base_len - v.params_len != lines || memcmp(v.base, hs->base, lines) != 0) abort();
    if (ac_httpsig_verify(&v, fixed_key()) != AC_EC_OK) abort();
    ac_httpsig_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *si = part(&p, end), *sg = part(&p, end), *cd = part(&p, end);

    static const char body[] = "{\"amount\":{\"currency\":\"CNY\",\"value\":\"12.34\"}}";
    enum ac_ec dec =
        ac_digest_verify(cd, cd ? strlen(cd) : 0, (const uint8_t *)body, sizeof body - 1);
    if (dec != AC_EC_OK && dec != AC_EC_DIGEST_MISSING && dec != AC_EC_DIGEST_MALFORMED &&
        dec != AC_EC_DIGEST_MISMATCH && dec != AC_EC_INTERNAL)
        abort();

    struct hdrs h = {
        {"content-digest", "agent-runtime", "content-type", "date", "example-dict", "cache-status",
         "x-empty", NULL},
        {cd, "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", "application/json",
         "Tue, 20 Apr 2021 02:07:55 GMT", "a=1, b=(x y);z, c", "Cache;hit, other", "", NULL},
    };
    if (cd == NULL) h.name[0] = "x-no-digest";
    struct ac_http_request req = {.method = "POST",
                                  .scheme = "https",
                                  .authority = "Pay.Example.com:443",
                                  .path = "/v1/payments",
                                  .query = "a=1&b=%20x+y&a=2&c&d=%C3%A9%FF",
                                  .has_body = 1,
                                  .header = lookup,
                                  .header_ctx = &h};
    struct ac_httpsig_policy pol;
    ac_httpsig_policy_agentclear(&pol);

    static const char *const tags[] = {"agentclear", NULL};
    for (int t = 0; t < 2; t++) {
        struct ac_httpsig hs;
        enum ac_ec ec = ac_httpsig_parse(&hs, si, sg, tags[t]);
        if (ec == AC_EC_OK) {
            if (hs.ncomps > AC_HTTPSIG_MAX_COMPONENTS || hs.params_line == NULL ||
                hs.label == NULL || (hs.sig == NULL && hs.siglen != 0))
                abort();
            (void)ac_httpsig_check_policy(&hs, &req, &pol, hs.has_created ? hs.created : 0);
            ec = ac_httpsig_base(&hs, &req);
            if (ec == AC_EC_OK) {
                static const char last[] = "\"@signature-params\": ";
                if (strlen(hs.base) != hs.base_len) abort();
                if (hs.base_len < hs.params_len + sizeof last - 1 ||
                    memcmp(hs.base + hs.base_len - hs.params_len - (sizeof last - 1), last,
                           sizeof last - 1) != 0)
                    abort();
                (void)ac_httpsig_verify(&hs, fixed_key());
                resign(&hs, &req);
            } else if (hs.base != NULL) {
                abort();
            }
        } else if (hs.arena.head != NULL || hs.label != NULL) {
            abort(); /* failures release everything */
        }
        ac_httpsig_free(&hs);
    }
    free(si);
    free(sg);
    free(cd);
    return 0;
}
