/* Signed requests end to end against a real `agentclear serve` child process on a fresh database.
 *
 * What runs now:
 * - /v1/whoami without a signature answers 401 sig_missing (problem+json), a malformed one 400
 *   sig_malformed, a well-formed one by a key the server does not know 401 sig_key_unknown (the
 *   output of `agentclear sign`, the binary, sent as it prints it); never a 5xx.
 * - The operator routes are unaffected (a bearer token does not authenticate a signed route).
 *
 * What needs the identity registry (keys/registry.*, POST /v1/bindings), which lands separately:
 * registering a user and a binding for an agent key over HTTP, then a signed request accepted,
 * its replay refused (also after a server restart), and the same after the binding's revocation
 * (binding_revoked). The test probes for the route and reports that part as skipped, with the
 * reason, until it exists; register_binding() below is the one place to fill in. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/support/httpc.h"
#include "tests/support/server.h"

#define TOKEN "e2e-signed-requests-token"
#define READY_MS 30000

static struct ac_test_server srv;
static char keyfile[1024];

static void expect_code(struct ac_test_http_resp *r, int status, const char *code, const char *what)
{
    if (r->status != status)
        fail_msg("%s: expected %d %s, got %d %s", what, status, code, r->status, r->body);
    json_t *j = ac_test_http_json(r);
    const char *c = j ? json_string_value(json_object_get(j, "code")) : NULL;
    if (c == NULL || strcmp(c, code) != 0) fail_msg("%s: expected %s: %s", what, code, r->body);
    json_decref(j);
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

/* `agentclear sign --format headers` for GET url -> header lines for httpc. */
static void sign_headers(const char *url, char *lines, size_t cap)
{
    static char out[16384];
    char *argv[] = {(char *)ac_test_binary(),
                    "sign",
                    "--key",
                    keyfile,
                    "--url",
                    (char *)url,
                    "--runtime",
                    "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:",
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
}

static void unsigned_and_unknown(void **st)
{
    (void)st;
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 10000);
    struct ac_test_http_resp r;
    ac_test_http_request(&c, "GET", "/v1/whoami", NULL, NULL, 0, &r);
    expect_code(&r, 401, "sig_missing", "unsigned");
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
    char url[128], lines[16384];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/whoami", srv.port);
    sign_headers(url, lines, sizeof lines);
    ac_test_http_request(&c, "GET", "/v1/whoami", lines, NULL, 0, &r);
    expect_code(&r, 401, "sig_key_unknown", "key not registered");
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    assert_false(ac_test_server_log_has_sanitizer_report(&srv));
}

/* Register a user, then a binding of the agent key in keyfile with the runtime above, through the
 * HTTP API. Returns 0 when done, or -1 with the reason in why when the API is not there yet. */
static int register_binding(char *why, size_t cap)
{
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 10000);
    struct ac_test_http_resp r;
    int st = ac_test_http_api(&c, "POST", "/v1/bindings", TOKEN, "{}", &r);
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    if (st == 404 || st == 405) {
        snprintf(why, cap,
                 "POST /v1/bindings is not in this build (the identity registry, "
                 "keys/registry.*, lands separately)");
        return -1;
    }
    /* The registry exists: fill in the user registration and the user-signed binding JWS here
     * (docs/identity.md, binding format). */
    snprintf(why, cap, "binding registration over HTTP is not written yet in this test");
    return -1;
}

static void registered_binding(void **st)
{
    (void)st;
    char why[256];
    if (register_binding(why, sizeof why) != 0) {
        fprintf(stderr, "SKIPPED (binding part): %s\n", why);
        skip();
    }
    /* With a binding: accepted, replay refused, refused after restart, binding_revoked. */
}

static int setup(void **st)
{
    (void)st;
    const char *url = ac_test_fresh_db("ac_test_signed_requests");
    snprintf(keyfile, sizeof keyfile, "%s/agent.jwk", ac_test_tmpdir());
    char outarg[1100];
    snprintf(outarg, sizeof outarg, "--out=%s", keyfile);
    char *kg[] = {(char *)ac_test_binary(), "keygen", outarg, NULL};
    if (ac_test_run("keygen", kg, 30000) != 0) return -1;
    return ac_test_server_start(&srv, "signed", url, TOKEN, NULL, READY_MS);
}

static int teardown(void **st)
{
    (void)st;
    int rc = ac_test_server_stop(&srv, 10000);
    if (rc != 0) fprintf(stderr, "server exit %d\n", rc);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unsigned_and_unknown),
        cmocka_unit_test(registered_binding),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
