/* Independent npm clients against the real server (issue 3, "Conformance"): a running
 * `agentclear serve` child on a fresh database accepts what http-message-signatures and jose
 * produce, sent exactly as they print it (tests/conformance/npm/README.md).
 *
 * - The operator registers user alice with an Ed25519 and a P-256 key.
 * - jose (sign-jws.mjs) signs two bindings, EdDSA with the Ed25519 key and ES256 with the P-256
 *   key, each of an agent key of the same kind; POST /v1/bindings answers 201 for both.
 * - http-message-signatures (sign-request.mjs) signs GET and POST-with-body requests to
 *   /v1/whoami, with and without a query, covering "@target-uri" or "@authority" "@path"
 *   "@query", with each agent key; the server answers 200 with the agent's binding, and the
 *   signature base it reports equals the one the library signed, byte for byte. The same request
 *   sent twice answers sig_replayed. A merchant request (P-256, no Agent-Runtime) is accepted.
 * - jose signs a revocation (ES256, with the user's other key); POST /v1/bindings/{id}/revoke
 *   answers 200, and the next npm-signed request of that agent answers binding_revoked.
 * Exit 77 without AC_NPM_DIR (run by hand), failure with AC_REQUIRE_NPM=1 (ops/test). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/jose.h"
#include "protocol/runtime.h"
#include "protocol/sig.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/npm.h"
#include "tests/support/server.h"

#define TOKEN "e2e-npm-server-token"
#define READY_MS 30000
#define DAY 86400LL

static struct ac_test_server srv;
static struct ac_test_http http;
static EVP_PKEY *user_ed, *user_p256, *agent_ed, *agent_p256, *shop;
static char runtime_hdr[AC_RUNTIME_HEADER_MAX + 1];

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- jose ------------------------------------------------------------------------------------ */

/* A compact JWS made by jose: key's private JWK, kid = its thumbprint, typ, the payload's exact
 * text. malloc'd. */
static char *jose_sign(EVP_PKEY *key, const char *typ, const json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    json_t *in = json_pack("{s:o, s:{s:s, s:s}, s:s}", "jwk", ac_jwk_export_private(key), "header",
                           "kid", ac_test_kid(key), "typ", typ, "payload_text", text);
    free(text);
    assert_non_null(in);
    int st = -1;
    json_t *out = ac_npm_json("sign-jws.mjs", in, &st);
    json_decref(in);
    if (out == NULL || st != 0) fail_msg("sign-jws.mjs failed (%d)", st);
    json_t *ph = json_object_get(out, "protected_header");
    assert_string_equal(jstr(ph, "alg"), ac_sig_key_alg(key) == AC_SIG_ED25519 ? "EdDSA" : "ES256");
    char *jws = strdup(jstr(out, "jws"));
    json_decref(out);
    return jws;
}

/* POST path {"jws": jws} without a token; expects `want`, returns the answer. */
static json_t *post_jws(const char *path, const char *jws, int want)
{
    json_t *o = json_pack("{s:s}", "jws", jws);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct ac_test_http_resp r;
    int st = ac_test_http_api(&http, "POST", path, NULL, body, &r);
    free(body);
    if (st != want) fail_msg("POST %s: expected %d, got %d %s", path, want, st, r.body);
    json_t *j = ac_test_http_json(&r);
    ac_test_http_resp_free(&r);
    assert_non_null(j);
    return j;
}

/* ---- http-message-signatures ----------------------------------------------------------------- */

struct signed_req {
    char method[16];
    char target[512]; /* path and query of the printed url */
    char headers[8192];
    char *base; /* the library's signature base */
};

/* Sign method url [body] with key (agent-runtime header when agent), target "uri" or "split". */
static void npm_sign(EVP_PKEY *key, int agent, const char *method, const char *url,
                     const char *body, const char *target, struct signed_req *out)
{
    json_t *in = json_pack("{s:o, s:s, s:s, s:{}, s:s}", "jwk", ac_jwk_export_private(key),
                           "method", method, "url", url, "headers", "target", target);
    assert_non_null(in);
    json_t *h = json_object_get(in, "headers");
    if (agent)
        json_object_set_new(h, "agent-runtime", json_string(runtime_hdr));
    else /* the profile's components minus agent-runtime */
        json_object_set_new(
            in, "components",
            strcmp(target, "uri") == 0
                ? json_pack("[s, s]", "@method", "@target-uri")
                : json_pack("[s, s, s, s]", "@method", "@authority", "@path", "@query"));
    if (body) {
        json_object_set_new(h, "content-type", json_string("application/json"));
        json_object_set_new(in, "body", json_string(body));
        if (!agent)
            json_array_append_new(json_object_get(in, "components"), json_string("content-digest"));
    }
    int st = -1;
    json_t *o = ac_npm_json("sign-request.mjs", in, &st);
    json_decref(in);
    if (o == NULL || st != 0) fail_msg("sign-request.mjs failed (%d)", st);
    /* send exactly what it printed: the method, the url's path and query, every header */
    snprintf(out->method, sizeof out->method, "%s", jstr(o, "method"));
    const char *u = jstr(o, "url");
    const char *p = strstr(u, "://");
    assert_non_null(p);
    p = strchr(p + 3, '/');
    assert_non_null(p);
    snprintf(out->target, sizeof out->target, "%s", p);
    size_t n = 0;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(o, "headers"), name, v)
    {
        assert_true(json_is_string(v));
        n += (size_t)snprintf(out->headers + n, sizeof out->headers - n, "%s: %s\r\n", name,
                              json_string_value(v));
        assert_true(n < sizeof out->headers);
    }
    out->base = strdup(jstr(o, "signature_base"));
    json_decref(o);
}

static int send_signed(const struct signed_req *s, const char *body, struct ac_test_http_resp *r)
{
    return ac_test_http_request(&http, s->method, s->target, s->headers, body,
                                body ? strlen(body) : 0, r);
}

/* The answer is the result for this request: principal, binding (agents), the library's base. */
static void expect_whoami(struct ac_test_http_resp *r, const struct signed_req *s,
                          const char *binding, const char *what)
{
    if (r->status != 200) fail_msg("%s: expected 200, got %d %s", what, r->status, r->body);
    json_t *j = ac_test_http_json(r);
    assert_non_null(j);
    if (binding) {
        assert_string_equal(jstr(j, "principal"), "agent");
        assert_string_equal(jstr(j, "binding_id"), binding);
        assert_string_equal(jstr(j, "user_id"), "alice");
    } else {
        assert_string_equal(jstr(j, "principal"), "merchant");
        assert_string_equal(jstr(j, "merchant_id"), "shop");
    }
    const char *b64 = jstr(j, "signature_base");
    uint8_t *base = malloc(strlen(b64) + 1);
    size_t blen = 0;
    assert_int_equal(ac_b64_decode(b64, strlen(b64), base, &blen, 0), 0);
    if (blen != strlen(s->base) || memcmp(base, s->base, blen) != 0)
        fail_msg("%s: the server's base differs from the library's\n--- server\n%.*s\n--- npm\n%s",
                 what, (int)blen, (const char *)base, s->base);
    free(base);
    json_decref(j);
}

static void expect_code(struct ac_test_http_resp *r, int status, const char *code, const char *what)
{
    json_t *j = ac_test_http_json(r);
    if (r->status != status || j == NULL || strcmp(jstr(j, "code"), code) != 0)
        fail_msg("%s: expected %d %s, got %d %s", what, status, code, r->status, r->body);
    json_decref(j);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void jose_bindings(void **st)
{
    (void)st;
    char *u1 = ac_test_jwk_text(user_ed), *u2 = ac_test_jwk_text(user_p256),
         *m = ac_test_jwk_text(shop);
    char body[4096];
    snprintf(body, sizeof body, "{\"id\":\"alice\",\"keys\":[%s,%s]}", u1, u2);
    struct ac_test_http_resp r;
    assert_int_equal(ac_test_http_api(&http, "POST", "/v1/users", TOKEN, body, &r), 201);
    ac_test_http_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"id\":\"shop\",\"name\":\"Shop\",\"category\":\"5734\",\"keys\":[%s]}", m);
    assert_int_equal(ac_test_http_api(&http, "POST", "/v1/merchants", TOKEN, body, &r), 201);
    ac_test_http_resp_free(&r);
    free(u1);
    free(u2);
    free(m);

    struct {
        const char *id;
        EVP_PKEY *user, *agent;
    } b[] = {{"npm-ed", user_ed, agent_ed}, {"npm-p256", user_p256, agent_p256}};
    for (size_t i = 0; i < 2; i++) {
        json_t *p = ac_test_binding_payload(b[i].id, "alice", "agent-npm", b[i].agent, now_s() - 5,
                                            now_s() + 30 * DAY);
        char *jws = jose_sign(b[i].user, AC_BINDING_TYP, p);
        json_decref(p);
        json_t *j = post_jws("/v1/bindings", jws, 201);
        assert_string_equal(jstr(j, "id"), b[i].id);
        assert_string_equal(jstr(j, "signed_by"), ac_test_kid(b[i].user));
        assert_string_equal(jstr(j, "agent_keyid"), ac_test_kid(b[i].agent));
        assert_string_equal(jstr(j, "runtime_digest"), runtime_hdr);
        assert_string_equal(jstr(j, "jws"), jws); /* kept verbatim */
        json_decref(j);
        free(jws);
    }
}

static void hms_requests(void **st)
{
    (void)st;
    static const char *const body = "{\"amount\":{\"currency\":\"CNY\",\"value\":\"12.34\"}}";
    struct {
        const char *method, *pathq, *body;
    } shapes[] = {
        {"GET", "/v1/whoami", NULL},
        {"GET", "/v1/whoami?page=2&note=a%20b", NULL},
        {"POST", "/v1/whoami", body},
        {"POST", "/v1/whoami?mandate=m-1", body},
    };
    const char *targets[] = {"uri", "split"};
    struct {
        EVP_PKEY *k;
        const char *binding;
    } agents[] = {{agent_ed, "npm-ed"}, {agent_p256, "npm-p256"}};
    int n = 0;
    for (size_t a = 0; a < 2; a++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (size_t t = 0; t < 2; t++) {
                char url[256], what[160];
                snprintf(url, sizeof url, "http://127.0.0.1:%u%s", srv.port, shapes[s].pathq);
                snprintf(what, sizeof what, "%s %s %s, %s", agents[a].binding, shapes[s].method,
                         shapes[s].pathq, targets[t]);
                struct signed_req sr;
                npm_sign(agents[a].k, 1, shapes[s].method, url, shapes[s].body, targets[t], &sr);
                assert_string_equal(sr.target, shapes[s].pathq);
                struct ac_test_http_resp r;
                send_signed(&sr, shapes[s].body, &r);
                expect_whoami(&r, &sr, agents[a].binding, what);
                ac_test_http_resp_free(&r);
                if (s == 2 && t == 0) { /* the same request again */
                    send_signed(&sr, shapes[s].body, &r);
                    expect_code(&r, 401, "sig_replayed", what);
                    ac_test_http_resp_free(&r);
                }
                free(sr.base);
                n++;
            }
    fprintf(stderr, "http-message-signatures: %d signed requests accepted by the server\n", n);
    /* a merchant's request, P-256, GET and POST */
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/whoami", srv.port);
    struct signed_req sr;
    struct ac_test_http_resp r;
    npm_sign(shop, 0, "GET", url, NULL, "uri", &sr);
    send_signed(&sr, NULL, &r);
    expect_whoami(&r, &sr, NULL, "merchant GET");
    ac_test_http_resp_free(&r);
    free(sr.base);
    npm_sign(shop, 0, "POST", url, body, "split", &sr);
    send_signed(&sr, body, &r);
    expect_whoami(&r, &sr, NULL, "merchant POST");
    ac_test_http_resp_free(&r);
    free(sr.base);
}

static void jose_revocation(void **st)
{
    (void)st;
    /* signed by the user's other key (P-256) than the one that signed the binding */
    json_t *p = ac_test_revocation_payload("npm-ed", "alice", now_s());
    char *jws = jose_sign(user_p256, AC_REVOCATION_TYP, p);
    json_decref(p);
    json_t *j = post_jws("/v1/bindings/npm-ed/revoke", jws, 200);
    assert_string_equal(jstr(j, "status"), "revoked");
    assert_string_equal(jstr(json_object_get(j, "revocation"), "signed_by"),
                        ac_test_kid(user_p256));
    assert_string_equal(jstr(json_object_get(j, "revocation"), "jws"), jws);
    json_decref(j);
    free(jws);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/whoami", srv.port);
    struct signed_req sr;
    struct ac_test_http_resp r;
    npm_sign(agent_ed, 1, "GET", url, NULL, "uri", &sr);
    send_signed(&sr, NULL, &r);
    expect_code(&r, 401, "binding_revoked", "npm-signed request after the revocation");
    ac_test_http_resp_free(&r);
    free(sr.base);
    /* the other binding is unaffected */
    npm_sign(agent_p256, 1, "GET", url, NULL, "uri", &sr);
    send_signed(&sr, NULL, &r);
    expect_whoami(&r, &sr, "npm-p256", "the other binding");
    ac_test_http_resp_free(&r);
    free(sr.base);
    assert_false(ac_test_server_log_has_sanitizer_report(&srv));
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **st)
{
    (void)st;
    user_ed = ac_sig_keygen(AC_SIG_ED25519);
    user_p256 = ac_sig_keygen(AC_SIG_ES256);
    agent_ed = ac_sig_keygen(AC_SIG_ED25519);
    agent_p256 = ac_sig_keygen(AC_SIG_ES256);
    shop = ac_sig_keygen(AC_SIG_ES256);
    uint8_t d[AC_RUNTIME_DIGEST_LEN];
    if (ac_runtime_digest(AC_TEST_SW, AC_TEST_MODEL, AC_TEST_ENV, d) != AC_EC_OK ||
        ac_runtime_header(d, runtime_hdr, sizeof runtime_hdr) < 0)
        return -1;
    const char *url = ac_test_fresh_db("ac_test_npm_server");
    if (ac_test_server_start(&srv, "npm-server", url, TOKEN, NULL, READY_MS) != 0) return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    int rc = ac_test_server_stop(&srv, 15000);
    EVP_PKEY *keys[] = {user_ed, user_p256, agent_ed, agent_p256, shop};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    ac_npm_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jose_bindings),
        cmocka_unit_test(hms_requests),
        cmocka_unit_test(jose_revocation),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
