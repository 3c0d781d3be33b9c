/* Signed requests end to end against a real `agentclear serve` child process on a fresh database,
 * with real keys, real signatures and the identity registered through the HTTP API (nothing is
 * mocked: the operator registers the user, the user signs the binding with ac_jws_sign, the
 * binding is POSTed to /v1/bindings).
 *
 * - /v1/whoami without a signature answers 401 sig_missing with WWW-Authenticate: Signature, a
 *   malformed one 400 sig_malformed, a well-formed one by a key the server does not know 401
 *   sig_key_unknown (the output of `agentclear sign`, the binary, sent as it prints it); the
 *   operator's bearer token does not authenticate a signed route.
 * - With the binding registered: the same `agentclear sign` request answers 200 with the
 *   binding, user, agent, runtime digest and key id; the result's signature base and signature
 *   verify offline with the agent's public key; sending it again answers sig_replayed. A POST
 *   with a body (Content-Digest) and a P-256 agent key are accepted as well.
 * - One byte changed in the signature, the body or the runtime, and a missing Agent-Runtime,
 *   each answer their own code; a user key is not a request key (sig_key_unknown).
 * - Replay across a restart: a request accepted by the server, which is then stopped and started
 *   again (its memory is gone; the nonce lives in PostgreSQL), answers sig_replayed.
 * - Bindings: expired (binding_expired) and not yet valid (binding_not_yet_valid).
 * - Revocation: the request after the revocation's 200 answers binding_revoked. And a race:
 *   threads send signed requests while the revocation is posted; every request sent after the
 *   revocation's 200 arrived (client-side monotonic timestamps) answers 401 binding_revoked,
 *   every request answers either 200 or binding_revoked.
 * - Merchant keys: GET and POST requests signed by a merchant's P-256 and Ed25519 keys answer the
 *   merchant's result.
 * - SIGTERM while threads send signed requests (some suspended on the nonce batch writer): exit 0
 *   without a sanitizer report; and once more when idle.
 *
 * The server runs with a public URL (AGENTCLEAR_PUBLIC_URL), so @target-uri does not depend on the
 * port, which changes when the server restarts. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/runtime.h"
#include "protocol/sig.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"

#define TOKEN "e2e-signed-requests-token"
#define READY_MS 30000
#define PUBLIC "http://signed.agentclear.test"
#define DAY 86400LL

static struct ac_test_server srv;
static char keyfile[1024];
static EVP_PKEY *agent_a;   /* from `agentclear keygen` (keyfile): binding b-main */
static EVP_PKEY *agent_p;   /* P-256: binding b-p256 */
static EVP_PKEY *agent_r;   /* binding b-race */
static EVP_PKEY *agent_x;   /* binding b-exp, expires a few seconds after registration */
static EVP_PKEY *agent_n;   /* binding b-nbf, valid from tomorrow */
static EVP_PKEY *alice;     /* the user's key */
static EVP_PKEY *shop_p256; /* merchant keys */
static EVP_PKEY *shop_ed;
static char runtime_hdr[AC_RUNTIME_HEADER_MAX + 1]; /* the bindings' runtime digest, as a header */
static uint8_t runtime_digest[AC_RUNTIME_DIGEST_LEN];
static int64_t exp_x; /* b-exp's exp */

/* ---- helpers --------------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The code of a problem body, or "" (static buffer per call site is not needed: copies out). */
static void code_of(const struct ac_test_http_resp *r, char *out, size_t cap)
{
    json_t *j = ac_test_http_json(r);
    snprintf(out, cap, "%s", j ? jstr(j, "code") : "");
    json_decref(j);
}

static void expect_code(struct ac_test_http_resp *r, int status, const char *code, const char *what)
{
    if (r->status != status)
        fail_msg("%s: expected %d %s, got %d %s", what, status, code, r->status, r->body);
    char c[64];
    code_of(r, c, sizeof c);
    if (strcmp(c, code) != 0) fail_msg("%s: expected %s: %s", what, code, r->body);
}

/* Run argv, stdout into out. Returns the exit code or -1. */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* `agentclear sign --format headers` (the binary) for GET PUBLIC<path> with the bindings'
 * runtime given as software/model/environment -> header lines for httpc. */
static void cli_sign(const char *path, char *lines, size_t cap)
{
    static char out[16384];
    char url[512];
    snprintf(url, sizeof url, "%s%s", PUBLIC, path);
    char *argv[] = {(char *)ac_test_binary(),
                    "sign",
                    "--key",
                    keyfile,
                    "--url",
                    url,
                    "--software",
                    AC_TEST_SW,
                    "--model",
                    AC_TEST_MODEL,
                    "--environment",
                    AC_TEST_ENV,
                    "--format",
                    "headers",
                    NULL};
    assert_int_equal(run_capture(argv, out, sizeof out), 0);
    size_t n = 0;
    for (char *p = out; *p;) {
        char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) n += (size_t)snprintf(lines + n, cap - n, "%.*s\r\n", (int)len, p);
        p += len + (e ? 1 : 0);
    }
    assert_true(n > 0 && n < cap);
    assert_non_null(strstr(lines, "Agent-Runtime: "));
    assert_non_null(strstr(lines, runtime_hdr));
}

/* In-process signing (protocol/httpsig.h, the same code `agentclear sign` uses). */
struct hctx {
    const char *runtime, *digest;
};

static const char *hget(void *ctx, const char *lname)
{
    struct hctx *h = ctx;
    if (strcmp(lname, "agent-runtime") == 0) return h->runtime;
    if (strcmp(lname, "content-digest") == 0) return h->digest;
    return NULL;
}

/* Sign method PUBLIC<target> [body] with key: header lines (Agent-Runtime when runtime is not
 * NULL, Content-Type and Content-Digest with a body, Signature-Input, Signature) into out.
 * Thread-safe; returns 0, or -1 when signing failed. */
static int sign_req(EVP_PKEY *key, const char *runtime, const char *method, const char *target,
                    const char *body, char *out, size_t cap)
{
    char path[512], digest[AC_DIGEST_HEADER_MAX + 1] = "", kid[AC_JWK_THUMBPRINT_SIZE];
    snprintf(path, sizeof path, "%s", target);
    char *q = strchr(path, '?');
    if (q) *q++ = '\0';
    size_t blen = body ? strlen(body) : 0;
    if (blen &&
        ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)body, blen, digest, sizeof digest) < 0)
        return -1;
    struct hctx h = {runtime, blen ? digest : NULL};
    struct ac_http_request req = {.method = method,
                                  .scheme = "http",
                                  .authority = PUBLIC + 7,
                                  .path = path,
                                  .query = q,
                                  .has_body = blen > 0,
                                  .header = hget,
                                  .header_ctx = &h};
    const char *comps[5];
    size_t nc = 0;
    comps[nc++] = "@method";
    comps[nc++] = "@target-uri";
    if (blen) comps[nc++] = "content-digest";
    if (runtime) comps[nc++] = "agent-runtime";
    comps[nc] = NULL;
    uint8_t rnd[16];
    char nonce[32], si[1024], sig[256];
    if (RAND_bytes(rnd, sizeof rnd) != 1 || ac_jwk_thumbprint(key, kid) != 0) return -1;
    ac_b64_encode(rnd, sizeof rnd, nonce, 1);
    int64_t created = now_s();
    struct ac_httpsig_sign_opts so = {.label = "sig1",
                                      .components = comps,
                                      .keyid = kid,
                                      .created = created,
                                      .expires = created + 60,
                                      .nonce = nonce,
                                      .tag = "agentclear",
                                      .with_alg = 1};
    if (ac_httpsig_sign(key, &req, &so, si, sizeof si, sig, sizeof sig) != AC_EC_OK) return -1;
    int n =
        snprintf(out, cap, "%s%s%s%s%s%s%sSignature-Input: %s\r\nSignature: %s\r\n",
                 runtime ? "Agent-Runtime: " : "", runtime ? runtime : "", runtime ? "\r\n" : "",
                 blen ? "Content-Type: application/json\r\n" : "", blen ? "Content-Digest: " : "",
                 blen ? digest : "", blen ? "\r\n" : "", si, sig);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Sign and send; the answer in *r (caller frees). */
static int signed_call(struct ac_test_http *c, EVP_PKEY *key, const char *runtime,
                       const char *method, const char *target, const char *body,
                       struct ac_test_http_resp *r)
{
    char h[4096];
    assert_int_equal(sign_req(key, runtime, method, target, body, h, sizeof h), 0);
    return ac_test_http_request(c, method, target, h, body, body ? strlen(body) : 0, r);
}

static struct ac_test_http conn(void)
{
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 20000);
    return c;
}

/* POST (operator token when token is not NULL) and expect `want`; returns the parsed answer. */
static json_t *post(const char *path, const char *json, const char *token, int want)
{
    struct ac_test_http c = conn();
    struct ac_test_http_resp r;
    int st = ac_test_http_api(&c, "POST", path, token, json, &r);
    if (st != want) fail_msg("POST %s: expected %d, got %d %s", path, want, st, r.body);
    json_t *j = ac_test_http_json(&r);
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    if (j == NULL) fail_msg("POST %s: the answer is not json", path);
    return j;
}

/* {"jws": "<jws>"} (malloc'd), signed by alice over p (reference stolen). */
static char *alice_signed(const char *typ, json_t *p)
{
    char *jws = ac_test_sign_doc(alice, typ, p, NULL);
    json_decref(p);
    json_t *o = json_pack("{s:s}", "jws", jws);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    free(jws);
    return s;
}

/* Register binding `id` of agent key k for alice (the user's own signature, no operator token). */
static void register_binding(const char *id, EVP_PKEY *k, int64_t iat, int64_t nbf, int64_t exp)
{
    json_t *p = ac_test_binding_payload(id, "alice", id, k, iat, exp);
    if (nbf) json_object_set_new(p, "nbf", json_integer(nbf));
    char *body = alice_signed(AC_BINDING_TYP, p);
    json_t *j = post("/v1/bindings", body, NULL, 201);
    free(body);
    assert_string_equal(jstr(j, "id"), id);
    assert_string_equal(jstr(j, "runtime_digest"), runtime_hdr);
    assert_string_equal(jstr(j, "agent_keyid"), ac_test_kid(k));
    json_decref(j);
}

/* Revoke binding id; returns when the 200 arrived. */
static void revoke_binding(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/bindings/%s/revoke", id);
    char *body = alice_signed(AC_REVOCATION_TYP, ac_test_revocation_payload(id, "alice", now_s()));
    json_t *j = post(path, body, NULL, 200);
    free(body);
    assert_string_equal(jstr(j, "status"), "revoked");
    json_decref(j);
}

/* Check a 200 answer of /v1/whoami for an agent of binding `binding` with key k, and re-verify
 * the signature offline from the result alone (with the agent's public key). */
static void expect_agent(struct ac_test_http_resp *r, const char *binding, EVP_PKEY *k,
                         const char *alg)
{
    if (r->status != 200) fail_msg("expected 200 for %s, got %d %s", binding, r->status, r->body);
    json_t *j = ac_test_http_json(r);
    assert_non_null(j);
    assert_string_equal(jstr(j, "principal"), "agent");
    assert_string_equal(jstr(j, "binding_id"), binding);
    assert_string_equal(jstr(j, "user_id"), "alice");
    assert_string_equal(jstr(j, "agent_id"), binding); /* the tests name agents after bindings */
    assert_string_equal(jstr(j, "key_id"), ac_test_kid(k));
    assert_string_equal(jstr(j, "alg"), alg);
    assert_int_equal(json_integer_value(json_object_get(j, "max_autonomy")), 3);
    char rd[64];
    ac_b64_encode(runtime_digest, sizeof runtime_digest, rd, 0);
    assert_string_equal(jstr(j, "runtime_digest"), rd);
    const char *b64base = jstr(j, "signature_base"), *b64sig = jstr(j, "signature");
    uint8_t *base = malloc(strlen(b64base) + 1), sig[AC_SIG_MAX + 8];
    size_t blen = 0, slen = 0;
    assert_int_equal(ac_b64_decode(b64base, strlen(b64base), base, &blen, 0), 0);
    assert_int_equal(ac_b64_decode(b64sig, strlen(b64sig), sig, &slen, 0), 0);
    /* the base ends with the signature parameters exactly as sent, no trailing newline */
    assert_true(blen > 0 && base[blen - 1] != '\n');
    assert_int_equal(ac_sig_verify(k, ac_sig_key_alg(k), base, blen, sig, slen), 1);
    base[0] ^= 1; /* and it is this base that was signed */
    assert_int_equal(ac_sig_verify(k, ac_sig_key_alg(k), base, blen, sig, slen), 0);
    free(base);
    json_decref(j);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void unsigned_and_unknown(void **st)
{
    (void)st;
    struct ac_test_http c = conn();
    struct ac_test_http_resp r;
    ac_test_http_request(&c, "GET", "/v1/whoami", NULL, NULL, 0, &r);
    expect_code(&r, 401, "sig_missing", "unsigned");
    char v[256];
    assert_true(ac_test_http_header(&r, "WWW-Authenticate", v, sizeof v));
    assert_string_equal(v, "Signature realm=\"agentclear\"");
    ac_test_http_resp_free(&r);
    /* the operator's token is not a signature */
    ac_test_http_api(&c, "GET", "/v1/whoami", TOKEN, NULL, &r);
    expect_code(&r, 401, "sig_missing", "bearer token on a signed route");
    ac_test_http_resp_free(&r);
    ac_test_http_request(&c, "POST", "/v1/whoami",
                         "Signature-Input: sig1=(\"@method\";created=1\r\nSignature: x\r\n", "{}",
                         2, &r);
    expect_code(&r, 400, "sig_malformed", "malformed");
    ac_test_http_resp_free(&r);
    char lines[16384];
    cli_sign("/v1/whoami", lines, sizeof lines);
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_code(&r, 401, "sig_key_unknown", "key not registered");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    assert_false(ac_test_server_log_has_sanitizer_report(&srv));
}

static void register_identity(void **st)
{
    (void)st;
    char *a = ac_test_jwk_text(alice), *m1 = ac_test_jwk_text(shop_p256),
         *m2 = ac_test_jwk_text(shop_ed);
    char body[4096];
    snprintf(body, sizeof body, "{\"id\":\"alice\",\"keys\":[%s]}", a);
    json_decref(post("/v1/users", body, TOKEN, 201));
    snprintf(body, sizeof body,
             "{\"id\":\"shop\",\"name\":\"Shop\",\"category\":\"llm-inference\",\"keys\":[%s,%s]}",
             m1, m2);
    json_decref(post("/v1/merchants", body, TOKEN, 201));
    free(a);
    free(m1);
    free(m2);
    int64_t t = now_s();
    register_binding("b-main", agent_a, t - 10, 0, t + 30 * DAY);
    register_binding("b-p256", agent_p, t - 10, 0, t + 30 * DAY);
    register_binding("b-race", agent_r, t - 10, 0, t + 30 * DAY);
    exp_x = t + 4;
    register_binding("b-exp", agent_x, t - 10, 0, exp_x);
    register_binding("b-nbf", agent_n, t - 10, t + DAY, t + 30 * DAY);
}

static void agent_requests(void **st)
{
    (void)st;
    struct ac_test_http c = conn();
    struct ac_test_http_resp r;
    /* the binary's output, sent as printed: accepted; again: replayed */
    char lines[16384];
    cli_sign("/v1/whoami", lines, sizeof lines);
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_agent(&r, "b-main", agent_a, "ed25519");
    ac_test_http_resp_free(&r);
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_code(&r, 401, "sig_replayed", "the same request again");
    ac_test_http_resp_free(&r);
    /* a POST with a body and a query; a P-256 agent key */
    signed_call(&c, agent_a, runtime_hdr, "POST", "/v1/whoami?x=1", "{\"hello\":\"world\"}", &r);
    expect_agent(&r, "b-main", agent_a, "ed25519");
    ac_test_http_resp_free(&r);
    signed_call(&c, agent_p, runtime_hdr, "GET", "/v1/whoami", NULL, &r);
    expect_agent(&r, "b-p256", agent_p, "ecdsa-p256-sha256");
    ac_test_http_resp_free(&r);
    signed_call(&c, agent_p, runtime_hdr, "POST", "/v1/whoami", "[1,2,3]", &r);
    expect_agent(&r, "b-p256", agent_p, "ecdsa-p256-sha256");
    ac_test_http_resp_free(&r);

    /* runtime mismatch: another runtime, correctly signed */
    uint8_t other[AC_RUNTIME_DIGEST_LEN];
    char other_hdr[AC_RUNTIME_HEADER_MAX + 1];
    assert_int_equal(ac_runtime_digest(AC_TEST_SW, "another-model", AC_TEST_ENV, other), AC_EC_OK);
    assert_true(ac_runtime_header(other, other_hdr, sizeof other_hdr) > 0);
    signed_call(&c, agent_a, other_hdr, "GET", "/v1/whoami", NULL, &r);
    expect_code(&r, 401, "runtime_mismatch", "another runtime");
    ac_test_http_resp_free(&r);
    /* no Agent-Runtime at all */
    signed_call(&c, agent_a, NULL, "GET", "/v1/whoami", NULL, &r);
    expect_code(&r, 401, "runtime_missing", "no runtime");
    ac_test_http_resp_free(&r);

    /* one byte changed: the signature, the body, the target */
    char h[4096];
    assert_int_equal(sign_req(agent_a, runtime_hdr, "POST", "/v1/whoami", "{\"a\":1}", h, sizeof h),
                     0);
    char *s = strstr(h, "Signature: sig1=:") + strlen("Signature: sig1=:");
    s[3] = s[3] == 'A' ? 'B' : 'A';
    ac_test_http_request(&c, "POST", "/v1/whoami", h, "{\"a\":1}", 7, &r);
    expect_code(&r, 401, "sig_invalid", "a byte of the signature");
    ac_test_http_resp_free(&r);
    assert_int_equal(sign_req(agent_a, runtime_hdr, "POST", "/v1/whoami", "{\"a\":1}", h, sizeof h),
                     0);
    ac_test_http_request(&c, "POST", "/v1/whoami", h, "{\"a\":2}", 7, &r);
    expect_code(&r, 401, "digest_mismatch", "a byte of the body");
    ac_test_http_resp_free(&r);
    assert_int_equal(sign_req(agent_a, runtime_hdr, "GET", "/v1/whoami?p=1", NULL, h, sizeof h), 0);
    ac_test_http_request(&c, "GET", "/v1/whoami?p=2", h, NULL, 0, &r);
    expect_code(&r, 401, "sig_invalid", "a byte of the target");
    ac_test_http_resp_free(&r);
    /* a user key signs documents, not requests */
    signed_call(&c, alice, runtime_hdr, "GET", "/v1/whoami", NULL, &r);
    expect_code(&r, 401, "sig_key_unknown", "a user key");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
}

static void replay_across_restart(void **st)
{
    (void)st;
    char lines[16384];
    cli_sign("/v1/whoami", lines, sizeof lines);
    struct ac_test_http c = conn();
    struct ac_test_http_resp r;
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_agent(&r, "b-main", agent_a, "ed25519");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    /* a new process: nothing of the replay cache's memory survives */
    assert_int_equal(ac_test_server_stop(&srv, 15000), 0);
    assert_false(ac_test_server_log_has_sanitizer_report(&srv));
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    c = conn();
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_code(&r, 401, "sig_replayed", "the same request after a restart");
    ac_test_http_resp_free(&r);
    /* and a fresh request is fine (the registry was reloaded) */
    cli_sign("/v1/whoami", lines, sizeof lines);
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_agent(&r, "b-main", agent_a, "ed25519");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
}

static void binding_times(void **st)
{
    (void)st;
    struct ac_test_http c = conn();
    struct ac_test_http_resp r;
    signed_call(&c, agent_n, runtime_hdr, "GET", "/v1/whoami", NULL, &r);
    expect_code(&r, 401, "binding_not_yet_valid", "a binding valid from tomorrow");
    ac_test_http_resp_free(&r);
    while (now_s() < exp_x) /* the server reads the same clock */
        usleep(100 * 1000);
    signed_call(&c, agent_x, runtime_hdr, "GET", "/v1/whoami", NULL, &r);
    expect_code(&r, 401, "binding_expired", "an expired binding");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
}

static void merchant_requests(void **st)
{
    (void)st;
    struct ac_test_http c = conn();
    struct ac_test_http_resp r;
    struct {
        EVP_PKEY *k;
        const char *method, *target, *body, *alg;
    } cases[] = {
        {shop_p256, "GET", "/v1/whoami", NULL, "ecdsa-p256-sha256"},
        {shop_p256, "POST", "/v1/whoami", "{\"order\":\"o-1\"}", "ecdsa-p256-sha256"},
        {shop_ed, "GET", "/v1/whoami?page=2", NULL, "ed25519"},
        {shop_ed, "POST", "/v1/whoami", "{}", "ed25519"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        signed_call(&c, cases[i].k, NULL, cases[i].method, cases[i].target, cases[i].body, &r);
        if (r.status != 200) fail_msg("merchant case %zu: %d %s", i, r.status, r.body);
        json_t *j = ac_test_http_json(&r);
        assert_string_equal(jstr(j, "principal"), "merchant");
        assert_string_equal(jstr(j, "merchant_id"), "shop");
        assert_string_equal(jstr(j, "key_id"), ac_test_kid(cases[i].k));
        assert_string_equal(jstr(j, "alg"), cases[i].alg);
        assert_null(json_object_get(j, "binding_id"));
        assert_null(json_object_get(j, "runtime_digest"));
        json_decref(j);
        ac_test_http_resp_free(&r);
    }
    /* merchant requests are replay-protected too */
    char h[4096];
    assert_int_equal(sign_req(shop_ed, NULL, "GET", "/v1/whoami", NULL, h, sizeof h), 0);
    ac_test_http_request(&c, "GET", "/v1/whoami", h, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    ac_test_http_resp_free(&r);
    ac_test_http_request(&c, "GET", "/v1/whoami", h, NULL, 0, &r);
    expect_code(&r, 401, "sig_replayed", "a merchant's request again");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
}

static void revoked_binding(void **st)
{
    (void)st;
    struct ac_test_http c = conn();
    struct ac_test_http_resp r;
    signed_call(&c, agent_a, runtime_hdr, "GET", "/v1/whoami", NULL, &r);
    expect_agent(&r, "b-main", agent_a, "ed25519");
    ac_test_http_resp_free(&r);
    revoke_binding("b-main");
    /* the very next request */
    signed_call(&c, agent_a, runtime_hdr, "GET", "/v1/whoami", NULL, &r);
    expect_code(&r, 401, "binding_revoked", "right after the revocation");
    char v[256];
    assert_true(ac_test_http_header(&r, "WWW-Authenticate", v, sizeof v));
    assert_string_equal(v, "Signature realm=\"agentclear\"");
    ac_test_http_resp_free(&r);
    /* the binary's request too */
    char lines[16384];
    cli_sign("/v1/whoami", lines, sizeof lines);
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_code(&r, 401, "binding_revoked", "agentclear sign after the revocation");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
}

/* ---- the revocation race --------------------------------------------------------------------- */

#define RACE_THREADS 4
#define RACE_MAX 20000 /* requests per thread, at most */
#define RACE_AFTER 5   /* requests each thread must send after the acknowledgement */

struct race_rec {
    double sent; /* monotonic seconds just before the first byte was written */
    int status;
    int revoked; /* the answer was 401 binding_revoked */
};

struct race_thread {
    pthread_t th;
    struct race_rec *recs;
    _Atomic size_t n;
    _Atomic size_t ok;
    int sign_failed;
    char other[256]; /* the first answer that was neither 200 nor binding_revoked */
};

static struct race_thread racers[RACE_THREADS];
static _Atomic int race_stop;
static _Atomic uint64_t race_ack_bits; /* the acknowledgement time, as double bits; 0: not yet */

static double race_ack(void)
{
    uint64_t b = atomic_load(&race_ack_bits);
    double d;
    memcpy(&d, &b, sizeof d);
    return b ? d : 0;
}

static void *racer(void *arg)
{
    struct race_thread *t = arg;
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 20000);
    while (!atomic_load(&race_stop) && atomic_load(&t->n) < RACE_MAX) {
        char h[4096];
        if (sign_req(agent_r, runtime_hdr, "GET", "/v1/whoami", NULL, h, sizeof h) != 0) {
            t->sign_failed = 1;
            break;
        }
        struct ac_test_http_resp r;
        size_t i = atomic_load(&t->n);
        t->recs[i].sent = mono();
        ac_test_http_request(&c, "GET", "/v1/whoami", h, NULL, 0, &r);
        t->recs[i].status = r.status;
        char code[64] = "";
        if (r.status == 401) code_of(&r, code, sizeof code);
        t->recs[i].revoked = r.status == 401 && strcmp(code, "binding_revoked") == 0;
        if (r.status == 200) atomic_fetch_add(&t->ok, 1);
        if (r.status != 200 && !t->recs[i].revoked && t->other[0] == '\0')
            snprintf(t->other, sizeof t->other, "%d %.200s", r.status, r.body ? r.body : "");
        ac_test_http_resp_free(&r);
        atomic_store(&t->n, i + 1);
    }
    ac_test_http_close(&c);
    return NULL;
}

/* Requests of thread t sent after the acknowledgement at ack. */
static size_t sent_after(struct race_thread *t, double ack)
{
    size_t n = atomic_load(&t->n), k = 0;
    for (size_t i = 0; i < n; i++)
        k += t->recs[i].sent > ack;
    return k;
}

static void revocation_race(void **st)
{
    (void)st;
    for (int i = 0; i < RACE_THREADS; i++) {
        racers[i].recs = calloc(RACE_MAX, sizeof *racers[i].recs);
        assert_non_null(racers[i].recs);
        assert_int_equal(pthread_create(&racers[i].th, NULL, racer, &racers[i]), 0);
    }
    /* every thread has been accepted twice: the binding is live under load */
    double deadline = mono() + 60;
    for (;;) {
        int ready = 1;
        for (int i = 0; i < RACE_THREADS; i++)
            ready &= atomic_load(&racers[i].ok) >= 2 || atomic_load(&racers[i].n) >= RACE_MAX;
        if (ready || mono() > deadline) break;
        usleep(1000);
    }
    revoke_binding("b-race");
    double ack = mono();
    uint64_t bits;
    memcpy(&bits, &ack, sizeof bits);
    atomic_store(&race_ack_bits, bits);
    /* let every thread send a few more */
    deadline = mono() + 60;
    for (;;) {
        int done = 1;
        for (int i = 0; i < RACE_THREADS; i++)
            done &=
                sent_after(&racers[i], ack) >= RACE_AFTER || atomic_load(&racers[i].n) >= RACE_MAX;
        if (done || mono() > deadline) break;
        usleep(1000);
    }
    atomic_store(&race_stop, 1);
    size_t total = 0, before_ok = 0, after = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        struct race_thread *t = &racers[i];
        pthread_join(t->th, NULL);
        assert_false(t->sign_failed);
        if (t->other[0])
            fail_msg("thread %d: an answer other than 200 or binding_revoked: %s", i, t->other);
        assert_true(atomic_load(&t->ok) >= 2);
        size_t n = atomic_load(&t->n);
        assert_true(n < RACE_MAX);
        for (size_t k = 0; k < n; k++) {
            const struct race_rec *rec = &t->recs[k];
            if (rec->sent > race_ack()) {
                after++;
                if (!rec->revoked)
                    fail_msg("thread %d, request %zu: sent %.6f s after the revocation's 200, "
                             "answered %d",
                             i, k, rec->sent - race_ack(), rec->status);
            } else if (rec->status == 200) {
                before_ok++;
            }
        }
        assert_true(sent_after(t, ack) >= RACE_AFTER);
        total += n;
        free(t->recs);
    }
    fprintf(stderr,
            "revocation race: %zu requests by %d threads, %zu accepted before the "
            "acknowledgement, %zu sent after it (all binding_revoked)\n",
            total, RACE_THREADS, before_ok, after);
}

/* SIGTERM while signed requests are in flight (some suspended on the nonce writer): the server
 * answers or closes them and exits 0, without a sanitizer report. */
static _Atomic int load_stop;
static _Atomic unsigned load_ok;

static void *load(void *arg)
{
    (void)arg;
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 20000);
    c.retry_stale = 0;
    while (!atomic_load(&load_stop)) {
        char h[4096];
        if (sign_req(agent_p, runtime_hdr, "GET", "/v1/whoami", NULL, h, sizeof h) != 0) break;
        struct ac_test_http_resp r;
        int st = ac_test_http_request(&c, "GET", "/v1/whoami", h, NULL, 0, &r);
        ac_test_http_resp_free(&r);
        if (st == 200) atomic_fetch_add(&load_ok, 1);
        if (st == 0) break; /* the server went away */
    }
    ac_test_http_close(&c);
    return NULL;
}

static void sigterm_under_load(void **st)
{
    (void)st;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, load, NULL), 0);
    double deadline = mono() + 60;
    while (atomic_load(&load_ok) < 20 && mono() < deadline)
        usleep(1000);
    assert_true(atomic_load(&load_ok) >= 20);
    int rc = ac_test_server_stop(&srv, 15000);
    atomic_store(&load_stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    if (rc != 0 || ac_test_server_log_has_sanitizer_report(&srv)) {
        ac_test_server_dump_log(&srv, 20000);
        fail_msg("SIGTERM under load: exit status %d (expected 0 and no sanitizer report)",
                 srv.exit_status);
    }
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
}

static void sigterm_stops_cleanly(void **st)
{
    (void)st;
    ac_test_payflow_stop_cleanly(&srv, 15000);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static EVP_PKEY *load_keyfile(const char *path)
{
    size_t len;
    char *text = ac_test_read_file(path, &len);
    EVP_PKEY *k = NULL;
    const char *detail;
    if (text == NULL || ac_jwk_import_private_text(text, len, &k, &detail) != AC_EC_OK) k = NULL;
    free(text);
    return k;
}

static int setup(void **st)
{
    (void)st;
    const char *url = ac_test_fresh_db("ac_test_signed_requests");
    char db_url[1024];
    snprintf(db_url, sizeof db_url, "%s", url);
    snprintf(keyfile, sizeof keyfile, "%s/agent.jwk", ac_test_tmpdir());
    char outarg[1100];
    snprintf(outarg, sizeof outarg, "--out=%s", keyfile);
    char *kg[] = {(char *)ac_test_binary(), "keygen", outarg, NULL};
    if (ac_test_run("keygen", kg, 30000) != 0) return -1;
    if ((agent_a = load_keyfile(keyfile)) == NULL) return -1;
    agent_p = ac_sig_keygen(AC_SIG_ES256);
    agent_r = ac_sig_keygen(AC_SIG_ED25519);
    agent_x = ac_sig_keygen(AC_SIG_ED25519);
    agent_n = ac_sig_keygen(AC_SIG_ED25519);
    alice = ac_sig_keygen(AC_SIG_ED25519);
    shop_p256 = ac_sig_keygen(AC_SIG_ES256);
    shop_ed = ac_sig_keygen(AC_SIG_ED25519);
    if (ac_runtime_digest(AC_TEST_SW, AC_TEST_MODEL, AC_TEST_ENV, runtime_digest) != AC_EC_OK ||
        ac_runtime_header(runtime_digest, runtime_hdr, sizeof runtime_hdr) < 0)
        return -1;
    const char *env[] = {"AGENTCLEAR_PUBLIC_URL=" PUBLIC, NULL};
    return ac_test_server_start(&srv, "signed", db_url, TOKEN, env, READY_MS);
}

static int teardown(void **st)
{
    (void)st;
    ac_test_server_kill(&srv);
    EVP_PKEY *keys[] = {agent_a, agent_p, agent_r, agent_x, agent_n, alice, shop_p256, shop_ed};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unsigned_and_unknown), cmocka_unit_test(register_identity),
        cmocka_unit_test(agent_requests),       cmocka_unit_test(replay_across_restart),
        cmocka_unit_test(binding_times),        cmocka_unit_test(merchant_requests),
        cmocka_unit_test(revoked_binding),      cmocka_unit_test(revocation_race),
        cmocka_unit_test(sigterm_under_load),   cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
