/* The answers of the API that the other end-to-end suites do not reach, against a real server:
 *
 * - the JWKS lists the configured Ed25519 and P-256 keys, current first, with kid/alg/use/nbf/exp;
 * - assets: create (201), the same again (200, same body), another scale (409 asset_exists), an
 *   invalid code (400 asset_invalid), read (200), read unknown (404 asset_unknown);
 * - accounts: create (200), replay (replayed:true), the same id with other fields (409
 *   account_exists with per-account results; the new account beside it is created), a
 *   request-level rejection (400 id_invalid with a pointer, nothing created), an owner;
 * - a sticky transfer failure reads back as status "failed" with its code;
 * - generic answers: 401 on a read without a token, 413 for a body on a GET, 414 for an overlong
 *   target (instance: the path truncated), 415 for a non-JSON body; every answer carries
 *   Cache-Control: no-store; a path with raw bytes answers 404 with them percent-encoded;
 * - 405 carries Allow with the path's methods, a 401 WWW-Authenticate naming Bearer (operator
 *   routes) or Signature (signed routes, with Accept-Signature).
 *
 * With AC_HTTP_LOG set (ops/test) these responses are also checked against docs/openapi.yaml by
 * tests/conformance/npm/validate-responses.mjs, so that every operation of the document is
 * exercised by a real server. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/server.h"

#define TOKEN "e2e-api-surface-operator-token"

static struct ac_test_server srv;
static struct ac_test_http http;
static char keys_dir[1024];

/* One request; fails unless the status is `want` and Cache-Control is no-store. Returns the
 * parsed body (caller decrefs). */
static json_t *call_h(const char *method, const char *path, const char *headers, const char *body,
                      int want)
{
    struct ac_test_http_resp r;
    int st = ac_test_http_request(&http, method, path, headers, body, body ? strlen(body) : 0, &r);
    if (st != want)
        fail_msg("%s %.80s: expected %d, got %d (%s) %s", method, path, want, st, r.err, r.body);
    char cc[64];
    ac_test_http_header(&r, "Cache-Control", cc, sizeof cc);
    if (strcmp(cc, "no-store") != 0) fail_msg("%s %.80s: Cache-Control '%s'", method, path, cc);
    json_t *j = ac_test_http_json(&r);
    if (j == NULL) fail_msg("%s %.80s: body is not json: %s", method, path, r.body);
    ac_test_http_resp_free(&r);
    return j;
}

static json_t *call(const char *method, const char *path, const char *json, int want)
{
    return call_h(method, path,
                  json ? "Authorization: Bearer " TOKEN "\r\nContent-Type: application/json\r\n"
                       : "Authorization: Bearer " TOKEN "\r\n",
                  json, want);
}

/* Assert a problem with this code (and status member equal to the HTTP status `want`). */
static void expect_problem(json_t *j, int want, const char *code, const char *what)
{
    if (strcmp(ac_test_jstr(j, "code"), code) != 0)
        fail_msg("%s: expected code %s, got '%s'", what, code, ac_test_jstr(j, "code"));
    if (json_integer_value(json_object_get(j, "status")) != want)
        fail_msg("%s: status member is not %d", what, want);
    char type[96];
    snprintf(type, sizeof type, "urn:agentclear:error:%s", code);
    if (strcmp(ac_test_jstr(j, "type"), type) != 0)
        fail_msg("%s: type '%s'", what, ac_test_jstr(j, "type"));
}

/* ---- keys ------------------------------------------------------------------------------------ */

static void jwks_lists_the_configured_keys(void **state)
{
    (void)state;
    json_t *j = call_h("GET", "/.well-known/agentclear/keys", NULL, NULL, 200);
    json_t *keys = json_object_get(j, "keys");
    assert_int_equal(json_array_size(keys), 2);
    int okp = 0, ec = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *k = json_array_get(keys, i);
        assert_string_equal(ac_test_jstr(k, "use"), "sig");
        assert_int_equal(strlen(ac_test_jstr(k, "kid")), 43);
        assert_null(json_object_get(k, "d")); /* never the private part */
        json_int_t nbf = json_integer_value(json_object_get(k, "nbf"));
        json_int_t exp = json_integer_value(json_object_get(k, "exp"));
        assert_true(nbf > 0 && exp > nbf);
        if (strcmp(ac_test_jstr(k, "kty"), "OKP") == 0) {
            okp++;
            assert_string_equal(ac_test_jstr(k, "alg"), "EdDSA");
            assert_string_equal(ac_test_jstr(k, "crv"), "Ed25519");
        } else {
            ec++;
            assert_string_equal(ac_test_jstr(k, "kty"), "EC");
            assert_string_equal(ac_test_jstr(k, "alg"), "ES256");
            assert_string_equal(ac_test_jstr(k, "crv"), "P-256");
            assert_int_equal(strlen(ac_test_jstr(k, "y")), 43);
        }
    }
    assert_int_equal(okp, 1);
    assert_int_equal(ec, 1);
    /* the current key (the valid one with the latest nbf: the P-256 key made second, with a later
     * nbf) comes first */
    assert_string_equal(ac_test_jstr(json_array_get(keys, 0), "kty"), "EC");
    json_decref(j);
}

/* ---- assets ---------------------------------------------------------------------------------- */

static void assets_create_replay_conflict_read(void **state)
{
    (void)state;
    json_t *j = call("POST", "/v1/ledger/assets", "{\"code\":\"USD\",\"scale\":2}", 201);
    assert_string_equal(ac_test_jstr(j, "code"), "USD");
    assert_int_equal(json_integer_value(json_object_get(j, "scale")), 2);
    json_decref(j);
    j = call("POST", "/v1/ledger/assets", "{\"code\":\"USD\",\"scale\":2}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "scale")), 2);
    json_decref(j);
    j = call("POST", "/v1/ledger/assets", "{\"code\":\"USD\",\"scale\":3}", 409);
    expect_problem(j, 409, "asset_exists", "another scale");
    json_decref(j);
    j = call("POST", "/v1/ledger/assets", "{\"code\":\"usd\",\"scale\":2}", 400);
    expect_problem(j, 400, "asset_invalid", "lower-case code");
    json_decref(j);
    j = call("POST", "/v1/ledger/assets", "{\"code\":\"EUR\",\"scale\":19}", 400);
    expect_problem(j, 400, "asset_invalid", "scale 19");
    json_decref(j);
    j = call("GET", "/v1/ledger/assets/USD", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "code"), "USD");
    assert_int_equal(json_integer_value(json_object_get(j, "scale")), 2);
    json_decref(j);
    j = call("GET", "/v1/ledger/assets/EUR", NULL, 404);
    expect_problem(j, 404, "asset_unknown", "unknown asset");
    json_decref(j);
}

/* ---- accounts -------------------------------------------------------------------------------- */

static void accounts_create_replay_conflict(void **state)
{
    (void)state;
    const char *two = "{\"accounts\":[{\"id\":\"s-a\",\"asset\":\"USD\",\"owner\":\"user:s\"},"
                      "{\"id\":\"s-b\",\"asset\":\"USD\",\"flags\":[\"debits_must_not_exceed_"
                      "credits\"]}]}";
    json_t *j = call("POST", "/v1/ledger/accounts", two, 200);
    json_t *res = json_object_get(j, "results");
    assert_int_equal(json_array_size(res), 2);
    assert_string_equal(ac_test_jstr(json_array_get(res, 0), "status"), "ok");
    assert_null(json_object_get(json_array_get(res, 0), "replayed"));
    json_decref(j);

    j = call("POST", "/v1/ledger/accounts", two, 200);
    res = json_object_get(j, "results");
    for (size_t i = 0; i < 2; i++)
        assert_true(json_is_true(json_object_get(json_array_get(res, i), "replayed")));
    json_decref(j);

    /* s-a again with another owner: account_exists; s-c beside it is created */
    j = call("POST", "/v1/ledger/accounts",
             "{\"accounts\":[{\"id\":\"s-c\",\"asset\":\"USD\"},"
             "{\"id\":\"s-a\",\"asset\":\"USD\",\"owner\":\"user:t\"}]}",
             409);
    expect_problem(j, 409, "account_exists", "changed account");
    res = json_object_get(j, "results");
    assert_int_equal(json_array_size(res), 2);
    assert_string_equal(ac_test_jstr(json_array_get(res, 0), "status"), "ok");
    assert_string_equal(ac_test_jstr(json_array_get(res, 1), "status"), "failed");
    assert_string_equal(ac_test_jstr(json_array_get(res, 1), "code"), "account_exists");
    json_decref(j);
    json_decref(call("GET", "/v1/ledger/accounts/s-c", NULL, 200));

    /* a request-level rejection names the item and creates nothing */
    j = call("POST", "/v1/ledger/accounts",
             "{\"accounts\":[{\"id\":\"s-d\",\"asset\":\"USD\"},{\"id\":\"bad id\",\"asset\":"
             "\"USD\"}]}",
             400);
    expect_problem(j, 400, "id_invalid", "bad account id");
    assert_string_equal(ac_test_jstr(j, "pointer"), "/accounts/1");
    json_decref(j);
    j = call("GET", "/v1/ledger/accounts/s-d", NULL, 404);
    expect_problem(j, 404, "account_unknown", "s-d after a rejected request");
    json_decref(j);

    j = call("GET", "/v1/ledger/accounts/s-a", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "owner"), "user:s");
    assert_string_equal(ac_test_jstr(j, "debits_posted"), "0.00");
    json_decref(j);
    j = call("GET", "/v1/ledger/accounts/s-b", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "owner"), "");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "flags"), 0)),
                        "debits_must_not_exceed_credits");
    json_decref(j);
}

/* ---- transfers ------------------------------------------------------------------------------- */

static void sticky_failure_reads_back(void **state)
{
    (void)state;
    /* s-b may not go below zero: the transfer fails for lack of funds, and the failure is
     * recorded under its id */
    json_t *j =
        call("POST", "/v1/ledger/transfers",
             "{\"transfers\":[{\"id\":\"s-t1\",\"debit_account\":\"s-b\",\"credit_account\":"
             "\"s-a\",\"amount\":\"1.00\",\"asset\":\"USD\"}]}",
             422);
    expect_problem(j, 422, "exceeds_credits", "overdraft");
    json_decref(j);
    j = call("GET", "/v1/ledger/transfers/s-t1", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "status"), "failed");
    assert_string_equal(ac_test_jstr(j, "code"), "exceeds_credits");
    assert_null(json_object_get(j, "amount"));
    json_decref(j);
}

/* ---- generic answers ------------------------------------------------------------------------- */

static void generic_answers(void **state)
{
    (void)state;
    json_t *j = call_h("GET", "/v1/ledger/assets/USD", NULL, NULL, 401);
    expect_problem(j, 401, "unauthorized", "read without a token");
    json_decref(j);
    j = call_h("GET", "/healthz", "Content-Type: application/json\r\n", "{}", 413);
    expect_problem(j, 413, "body_too_large", "a body on GET /healthz");
    json_decref(j);
    j = call_h("POST", "/v1/ledger/assets",
               "Authorization: Bearer " TOKEN "\r\nContent-Type: text/plain\r\n",
               "{\"code\":\"GBP\",\"scale\":2}", 415);
    expect_problem(j, 415, "unsupported_media_type", "text/plain body");
    json_decref(j);
    char path[700] = "/v1/ledger/accounts/";
    memset(path + strlen(path), 'a', 600);
    path[620] = '\0';
    j = call("GET", path, NULL, 414);
    expect_problem(j, 414, "uri_too_long", "overlong target");
    /* the instance is the path, truncated to its first 64 bytes */
    assert_int_equal(strlen(ac_test_jstr(j, "instance")), 64);
    assert_memory_equal(ac_test_jstr(j, "instance"), path, 64);
    json_decref(j);
    /* bytes that are not printable ASCII reach the instance percent-encoded */
    j = call_h("GET", "/v1/\xff\x01x", NULL, NULL, 404);
    expect_problem(j, 404, "not_found", "a path with raw bytes");
    assert_string_equal(ac_test_jstr(j, "instance"), "/v1/%FF%01x");
    json_decref(j);
}

/* The header `name` of one answer to method path (no body), which must have status `want`. */
static void header_of(const char *method, const char *path, const char *headers, int want,
                      const char *name, char *out, size_t cap)
{
    struct ac_test_http_resp r;
    int st = ac_test_http_request(&http, method, path, headers, NULL, 0, &r);
    if (st != want) fail_msg("%s %s: expected %d, got %d %s", method, path, want, st, r.body);
    if (!ac_test_http_header(&r, name, out, cap))
        fail_msg("%s %s: no %s header", method, path, name);
    ac_test_http_resp_free(&r);
}

/* 405 lists the route's methods in Allow; each 401 names its scheme in WWW-Authenticate. */
static void allow_and_challenges(void **state)
{
    (void)state;
    char v[256];
    header_of("DELETE", "/v1/ledger/transfers", NULL, 405, "Allow", v, sizeof v);
    assert_string_equal(v, "POST");
    header_of("PUT", "/v1/whoami", NULL, 405, "Allow", v, sizeof v);
    assert_string_equal(v, "GET, POST");
    header_of("POST", "/v1/users/alice", "Authorization: Bearer " TOKEN "\r\n", 405, "Allow", v,
              sizeof v);
    assert_string_equal(v, "GET");
    header_of("GET", "/v1/ledger/assets/USD", NULL, 401, "WWW-Authenticate", v, sizeof v);
    assert_string_equal(v, "Bearer realm=\"agentclear\"");
    header_of("GET", "/v1/users/alice", "Authorization: Bearer wrong\r\n", 401, "WWW-Authenticate",
              v, sizeof v);
    assert_string_equal(v, "Bearer realm=\"agentclear\"");
    header_of("GET", "/v1/whoami", NULL, 401, "WWW-Authenticate", v, sizeof v);
    assert_string_equal(v, "Signature realm=\"agentclear\"");
    header_of("GET", "/v1/whoami", NULL, 401, "Accept-Signature", v, sizeof v);
    assert_string_equal(v, "sig1=(\"@method\" \"@target-uri\");created;expires;tag=\"agentclear\"");
    /* other statuses carry neither */
    struct ac_test_http_resp r;
    ac_test_http_request(&http, "GET", "/v1/nothing", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    assert_false(ac_test_http_header(&r, "Allow", v, sizeof v));
    assert_false(ac_test_http_header(&r, "WWW-Authenticate", v, sizeof v));
    ac_test_http_resp_free(&r);
}

/* ---- main ------------------------------------------------------------------------------------ */

static int keygen(const char *file, const char *alg, const char *nbf)
{
    char out[1200], a[32], n[48];
    snprintf(out, sizeof out, "--out=%s/%s", keys_dir, file);
    snprintf(a, sizeof a, "--alg=%s", alg);
    snprintf(n, sizeof n, "--nbf=%s", nbf);
    char *argv[] = {(char *)ac_test_binary(), "keygen", out, a, n, "--valid-days=2", NULL};
    return ac_test_run(file, argv, 30000);
}

int main(void)
{
    const char *url = ac_test_fresh_db("agentclear_e2e_api_surface");
    snprintf(keys_dir, sizeof keys_dir, "%s/keys", ac_test_tmpdir());
    if (mkdir(keys_dir, 0700) != 0) {
        fprintf(stderr, "cannot create %s\n", keys_dir);
        return 1;
    }
    /* two keys valid now; the P-256 one has the later nbf, so it is the current key */
    char now1[24], now2[24];
    long long t = (long long)time(NULL);
    snprintf(now1, sizeof now1, "%lld", t - 120);
    snprintf(now2, sizeof now2, "%lld", t - 60);
    if (keygen("k1.jwk", "ed25519", now1) != 0 || keygen("k2.jwk", "es256", now2) != 0) return 1;
    char env_keys[1100];
    snprintf(env_keys, sizeof env_keys, "AGENTCLEAR_KEYS_DIR=%s", keys_dir);
    const char *env[] = {env_keys, NULL};
    if (ac_test_server_start(&srv, "api-surface", url, TOKEN, env, 30000) != 0) return 1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 10000);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jwks_lists_the_configured_keys),
        cmocka_unit_test(assets_create_replay_conflict_read),
        cmocka_unit_test(accounts_create_replay_conflict),
        cmocka_unit_test(sticky_failure_reads_back),
        cmocka_unit_test(generic_answers),
        cmocka_unit_test(allow_and_challenges),
    };
    int failures = cmocka_run_group_tests(tests, NULL, NULL);
    ac_test_http_close(&http);
    ac_test_server_stop(&srv, 10000);
    return ac_test_e2e_finish(failures);
}
