#include "tests/support/agentsig.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "protocol/b64.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/runtime.h"
#include "tests/support/identity.h"

struct hdrs {
    const char *runtime, *digest;
};

static const char *hdr(void *ctx, const char *lname)
{
    const struct hdrs *h = ctx;
    if (strcmp(lname, "agent-runtime") == 0) return h->runtime;
    if (strcmp(lname, "content-digest") == 0) return h->digest;
    return NULL;
}

void ac_test_agent_headers(EVP_PKEY *key, unsigned port, const char *method, const char *path,
                           const char *body, char *out, size_t cap)
{
    uint8_t d[AC_RUNTIME_DIGEST_LEN];
    char runtime[AC_RUNTIME_HEADER_MAX + 1], digest[256] = "", authority[64], kid[64];
    if (ac_runtime_digest(AC_TEST_SW, AC_TEST_MODEL, AC_TEST_ENV, d) != AC_EC_OK ||
        ac_runtime_header(d, runtime, sizeof runtime) < 0)
        fail_msg("runtime digest");
    size_t blen = body ? strlen(body) : 0;
    if (body &&
        ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)body, blen, digest, sizeof digest) <= 0)
        fail_msg("content digest");
    snprintf(authority, sizeof authority, "127.0.0.1:%u", port);
    snprintf(kid, sizeof kid, "%s", ac_test_kid(key));
    char p[2048];
    snprintf(p, sizeof p, "%s", path);
    char *q = strchr(p, '?');
    if (q) *q++ = '\0';
    struct hdrs h = {runtime, body ? digest : NULL};
    struct ac_http_request req = {.method = method,
                                  .scheme = "http",
                                  .authority = authority,
                                  .path = p,
                                  .query = q,
                                  .has_body = blen > 0,
                                  .header = hdr,
                                  .header_ctx = &h};
    const char *comps_body[] = {"@method", "@target-uri", "agent-runtime", "content-digest", NULL};
    const char *comps[] = {"@method", "@target-uri", "agent-runtime", NULL};
    uint8_t rnd[16];
    char nonce[32];
    if (RAND_bytes(rnd, sizeof rnd) != 1) fail_msg("RAND_bytes");
    ac_b64_encode(rnd, sizeof rnd, nonce, 1);
    int64_t now = (int64_t)time(NULL);
    struct ac_httpsig_sign_opts o = {.label = "sig1",
                                     .components = blen ? comps_body : comps,
                                     .keyid = kid,
                                     .created = now,
                                     .expires = now + 60,
                                     .nonce = nonce,
                                     .tag = "agentclear",
                                     .with_alg = 1};
    char si[4096], sg[512];
    enum ac_ec ec = ac_httpsig_sign(key, &req, &o, si, sizeof si, sg, sizeof sg);
    if (ec != AC_EC_OK) fail_msg("ac_httpsig_sign: %s", ac_ec_code(ec));
    int n =
        snprintf(out, cap, "Agent-Runtime: %s\r\n%s%s%s%sSignature-Input: %s\r\nSignature: %s\r\n",
                 runtime, body ? "Content-Type: application/json\r\n" : "",
                 body ? "Content-Digest: " : "", body ? digest : "", body ? "\r\n" : "", si, sg);
    if (n < 0 || (size_t)n >= cap) fail_msg("header buffer too small");
}

json_t *ac_test_mandate_payload(const char *id, const char *user, const char *agent,
                                const char *merchant, const char *asset, const char *max_per_tx,
                                const char *autonomy)
{
    int64_t now = (int64_t)time(NULL);
    json_t *p = json_pack("{s:i, s:s, s:s, s:[s], s:[s,s,s], s:{s:[s]}, s:s, s:s, s:I, s:I, s:s}",
                          "ver", 1, "id", id, "iss", user, "agents", agent, "ops", "purchase",
                          "topup", "micropay", "payees", "merchants", merchant, "asset", asset,
                          "max_per_tx", max_per_tx, "nbf", (json_int_t)(now - 60), "exp",
                          (json_int_t)(now + 30 * 86400), "autonomy", autonomy);
    if (p == NULL) fail_msg("json_pack failed");
    return p;
}

char *ac_test_jws_body(const char *jws)
{
    json_t *o = json_pack("{s:s}", "jws", jws);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) fail_msg("json_dumps failed");
    return s;
}

json_t *ac_test_confirmation_payload(const json_t *ch, const char *decision)
{
    json_t *p =
        json_pack("{s:i, s:O, s:O, s:O, s:s, s:I}", "ver", 1, "authorization",
                  json_object_get(ch, "authorization"), "nonce", json_object_get(ch, "nonce"),
                  "payment_digest", json_object_get(ch, "payment_digest"), "decision", decision,
                  "iat", (json_int_t)time(NULL));
    if (p == NULL) fail_msg("confirmation payload: challenge lacks members");
    return p;
}
