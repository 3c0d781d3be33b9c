/* Identity end to end: a real `agentclear serve` child on a fresh PostgreSQL database, over HTTP,
 * with real keys and real signatures.
 * - The operator registers users and merchants (and more keys); replays answer 200; conflicts 409.
 * - A user-signed binding is registered without an operator token, read back (operator), replayed;
 *   the runtime digest in the answer is the Agent-Runtime header value of the binding's runtime.
 * - Every kind of bad input answers its problem+json code (never a 5xx) and writes nothing.
 * - A user-signed revocation revokes it (200, revoked_at); again: the same answer.
 * - After a restart, principals, binding and revocation are all still there, unchanged.
 * - SIGTERM stops the server cleanly, without a sanitizer report. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/jose.h"
#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define TOKEN "e2e-http-identity-operator-token"
#define READY_MS 30000
#define DAY 86400LL

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];
static EVP_PKEY *alice1, *alice2, *alice3, *bob1, *shop1, *agent1, *agent2, *stranger;

/* ---- helpers --------------------------------------------------------------------------------- */

/* method path [json] with or without the operator token; fails unless the status is `want`. */
static json_t *call_tok(const char *method, const char *path, const char *json, int want,
                        const char *token)
{
    return ac_test_api_call(&http, method, path, token, json, want);
}

static json_t *call(const char *method, const char *path, const char *json, int want)
{
    return call_tok(method, path, json, want, TOKEN);
}

/* Expect a problem+json with this status and code. */
static void problem_tok(const char *method, const char *path, const char *json, int status,
                        const char *code, const char *token)
{
    struct ac_test_http_resp r;
    ac_test_http_api(&http, method, path, token, json, &r);
    char what[600];
    snprintf(what, sizeof what, "%s %s%s%.400s", method, path, json ? " with " : "",
             json ? json : "");
    json_decref(ac_test_api_problem(&r, status, code, what));
    ac_test_http_resp_free(&r);
}

static void problem(const char *method, const char *path, const char *json, int status,
                    const char *code)
{
    problem_tok(method, path, json, status, code, TOKEN);
}

/* Identity rows of all five tables. */
static long long identity_rows(void)
{
    return ac_test_sql_int(
        db_url, "select (select count(*) from ac_users) + (select count(*) from ac_merchants) + "
                "(select count(*) from ac_principal_keys) + (select count(*) from ac_bindings) "
                "+ (select count(*) from ac_binding_revocations)");
}

static char *jwk_text(EVP_PKEY *k)
{
    return ac_test_jwk_text(k);
}

/* {"jws": "<jws>"} (malloc'd) */
static char *jws_body(const char *jws)
{
    json_t *o = json_pack("{s:s}", "jws", jws);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* A binding signed by `key` (kid: its thumbprint, or `kid`) over `p` (reference stolen). */
static char *signed_doc(EVP_PKEY *key, const char *typ, json_t *p, const char *kid)
{
    char *jws = ac_test_sign_doc(key, typ, p, kid);
    json_decref(p);
    char *body = jws_body(jws);
    free(jws);
    return body;
}

static json_t *binding_payload(const char *id, const char *user, EVP_PKEY *agent)
{
    return ac_test_binding_payload(id, user, "agent-a", agent, now_s() - 10, now_s() + 30 * DAY);
}

/* POST /v1/bindings must fail with (status, code) and write nothing. */
static void bad_binding(const char *body, int status, const char *code)
{
    long long before = identity_rows();
    problem_tok("POST", "/v1/bindings", body, status, code, NULL);
    if (identity_rows() != before) fail_msg("a refused binding (%s) wrote rows", code);
}

static void bad_revocation(const char *path, const char *body, int status, const char *code)
{
    long long before = identity_rows();
    problem_tok("POST", path, body, status, code, NULL);
    if (identity_rows() != before) fail_msg("a refused revocation (%s) wrote rows", code);
}

/* ---- principals ------------------------------------------------------------------------------ */

static void principals(void **st)
{
    (void)st;
    char *a1 = jwk_text(alice1), *a2 = jwk_text(alice2), *a3 = jwk_text(alice3),
         *b1 = jwk_text(bob1), *s1 = jwk_text(shop1), *x = jwk_text(stranger);
    char body[8192];
    snprintf(body, sizeof body, "{\"id\":\"alice\",\"keys\":[%s,%s]}", a1, a2);
    json_t *j = call("POST", "/v1/users", body, 201);
    assert_string_equal(ac_test_jstr(j, "id"), "alice");
    json_t *keys = json_object_get(j, "keys");
    assert_int_equal(json_array_size(keys), 2);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(alice1, kid), 0);
    assert_string_equal(ac_test_jstr(json_array_get(keys, 0), "kid"), kid);
    assert_string_equal(ac_test_jstr(json_array_get(keys, 0), "alg"), "EdDSA");
    assert_int_equal(ac_jwk_thumbprint(alice2, kid), 0);
    assert_string_equal(ac_test_jstr(json_array_get(keys, 1), "kid"), kid);
    assert_string_equal(ac_test_jstr(json_array_get(keys, 1), "alg"), "ES256");
    json_decref(j);
    /* replay: 200, same answer; other keys under the same id: 409 */
    json_decref(call("POST", "/v1/users", body, 200));
    snprintf(body, sizeof body, "{\"id\":\"alice\",\"keys\":[%s]}", x);
    problem("POST", "/v1/users", body, 409, "principal_exists");
    snprintf(body, sizeof body, "{\"id\":\"bob\",\"keys\":[%s]}", b1);
    json_decref(call("POST", "/v1/users", body, 201));
    /* more keys */
    snprintf(body, sizeof body, "{\"jwk\":%s}", a3);
    json_decref(call("POST", "/v1/users/alice/keys", body, 201));
    j = call("POST", "/v1/users/alice/keys", body, 200);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 3);
    json_decref(j);
    problem("POST", "/v1/users/bob/keys", body, 409, "key_exists");
    problem("POST", "/v1/users/nobody/keys", body, 404, "user_unknown");
    j = call("GET", "/v1/users/alice", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 3);
    assert_string_equal(ac_test_jstr(j, "status"), "active");
    json_decref(j);
    problem("GET", "/v1/users/nobody", NULL, 404, "user_unknown");

    /* merchants */
    snprintf(body, sizeof body,
             "{\"id\":\"shop\",\"name\":\"The Shop\",\"category\":\"llm-inference\",\"keys\":[%s]}",
             s1);
    j = call("POST", "/v1/merchants", body, 201);
    assert_string_equal(ac_test_jstr(j, "name"), "The Shop");
    assert_string_equal(ac_test_jstr(j, "category"), "llm-inference");
    json_decref(j);
    json_decref(call("POST", "/v1/merchants", body, 200));
    snprintf(body, sizeof body,
             "{\"id\":\"shop\",\"name\":\"Other\",\"category\":\"llm-inference\",\"keys\":[%s]}",
             s1);
    problem("POST", "/v1/merchants", body, 409, "principal_exists");
    j = call("GET", "/v1/merchants/shop", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 1);
    json_decref(j);
    problem("GET", "/v1/merchants/nobody", NULL, 404, "merchant_unknown");
    snprintf(body, sizeof body, "{\"jwk\":%s}", a1);
    problem("POST", "/v1/merchants/shop/keys", body, 409, "key_exists");

    /* bad input, each writing nothing */
    long long rows = identity_rows();
    struct {
        const char *path, *fmt, *code;
        int status;
    } bad[] = {
        {"/v1/users", "{\"id\":\"carol\",\"keys\":[%s]", "json_invalid", 400},
        {"/v1/users", "{\"id\":\"carol\",\"keys\":%s}", "json_schema", 400},
        {"/v1/users", "{\"id\":\"carol\",\"keys\":[%s],\"x\":1}", "json_schema", 400},
        {"/v1/users", "{\"id\":\"carol\",\"keys\":[]}%.0s", "json_schema", 400},
        {"/v1/users", "{\"id\":\"ca rol\",\"keys\":[%s]}", "id_invalid", 400},
        {"/v1/users", "{\"id\":\"carol\",\"keys\":[%s,%s]}", "parameter_invalid", 400},
        {"/v1/users", "{\"id\":\"carol\",\"keys\":[{\"kty\":\"RSA\"}]}%.0s", "jwk_invalid", 400},
        {"/v1/users", "{\"id\":\"carol\",\"keys\":[\"%.0s\"]}", "jwk_invalid", 400},
        {"/v1/users", "{\"id\":\"carol\",\"keys\":[%s]}", "key_exists", 409}, /* alice's key */
        {"/v1/merchants", "{\"id\":\"m2\",\"name\":\"\",\"category\":\"c\",\"keys\":[%s]}",
         "parameter_invalid", 400},
        {"/v1/merchants", "{\"id\":\"m2\",\"name\":\"N\",\"category\":\"a b\",\"keys\":[%s]}",
         "parameter_invalid", 400},
        {"/v1/merchants", "{\"id\":\"m2\",\"name\":\"N\\u0001\",\"category\":\"c\",\"keys\":[%s]}",
         "parameter_invalid", 400},
        {"/v1/merchants", "{\"id\":\"m2\",\"category\":\"c\",\"keys\":[%s]}", "json_schema", 400},
        {"/v1/users/alice/keys", "{\"jwk\":[%s]}", "jwk_invalid", 400},
        {"/v1/users/alice/keys", "{\"key\":%s}", "json_schema", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *arg = i == 8 ? a1 : x;
        snprintf(body, sizeof body, bad[i].fmt, arg, arg);
        problem("POST", bad[i].path, body, bad[i].status, bad[i].code);
    }
    /* a private jwk is refused */
    json_t *priv = ac_jwk_export_private(stranger);
    char *ptext = json_dumps(priv, JSON_COMPACT);
    snprintf(body, sizeof body, "{\"id\":\"carol\",\"keys\":[%s]}", ptext);
    problem("POST", "/v1/users", body, 400, "jwk_invalid");
    free(ptext);
    json_decref(priv);
    /* 17 keys */
    char *big = malloc(64 * 1024);
    strcpy(big, "{\"id\":\"carol\",\"keys\":[");
    for (int i = 0; i < 17; i++) {
        EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
        char *t = jwk_text(k);
        strcat(big, i ? "," : "");
        strcat(big, t);
        free(t);
        EVP_PKEY_free(k);
    }
    strcat(big, "]}");
    problem("POST", "/v1/users", big, 409, "keys_limit");
    free(big);
    /* no operator token */
    snprintf(body, sizeof body, "{\"id\":\"carol\",\"keys\":[%s]}", x);
    problem_tok("POST", "/v1/users", body, 401, "unauthorized", NULL);
    problem_tok("GET", "/v1/users/alice", NULL, 401, "unauthorized", "wrong-token");
    assert_int_equal(identity_rows(), rows);
    free(a1);
    free(a2);
    free(a3);
    free(b1);
    free(s1);
    free(x);
}

/* ---- bindings -------------------------------------------------------------------------------- */

static char *b1_body; /* the registered binding's request body */

static void bindings(void **st)
{
    (void)st;
    json_t *p = binding_payload("b1", "alice", agent1);
    json_int_t iat = json_integer_value(json_object_get(p, "iat"));
    b1_body = signed_doc(alice2, AC_BINDING_TYP, p, NULL);
    long long rows = identity_rows();
    json_t *j = call_tok("POST", "/v1/bindings", b1_body, 201, NULL);
    assert_int_equal(identity_rows(), rows + 1);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_string_equal(ac_test_jstr(j, "id"), "b1");
    assert_string_equal(ac_test_jstr(j, "user"), "alice");
    assert_string_equal(ac_test_jstr(j, "agent"), "agent-a");
    assert_int_equal(ac_jwk_thumbprint(agent1, kid), 0);
    assert_string_equal(ac_test_jstr(j, "agent_keyid"), kid);
    assert_int_equal(ac_jwk_thumbprint(alice2, kid), 0);
    assert_string_equal(ac_test_jstr(j, "signed_by"), kid);
    assert_string_equal(ac_test_jstr(j, "status"), "active");
    assert_string_equal(ac_test_jstr(j, "max_autonomy"), "L3");
    assert_int_equal(json_integer_value(json_object_get(j, "iat")), iat);
    assert_int_equal(json_integer_value(json_object_get(j, "nbf")), iat);
    assert_int_equal(json_integer_value(json_object_get(j, "exp")), iat + 10 + 30 * DAY);
    json_t *rt = json_object_get(j, "runtime");
    assert_string_equal(ac_test_jstr(rt, "software"), AC_TEST_SW);
    assert_string_equal(ac_test_jstr(rt, "model"), AC_TEST_MODEL);
    assert_string_equal(ac_test_jstr(rt, "environment"), AC_TEST_ENV);
    uint8_t d[AC_RUNTIME_DIGEST_LEN];
    char hdr[AC_RUNTIME_HEADER_MAX + 1];
    assert_int_equal(ac_runtime_digest(AC_TEST_SW, AC_TEST_MODEL, AC_TEST_ENV, d), AC_EC_OK);
    assert_true(ac_runtime_header(d, hdr, sizeof hdr) > 0);
    assert_string_equal(ac_test_jstr(j, "runtime_digest"), hdr);
    json_t *sent = json_loads(b1_body, 0, NULL);
    assert_string_equal(ac_test_jstr(j, "jws"), ac_test_jstr(sent, "jws"));
    json_decref(sent);
    /* the agent JWK is the agent's key */
    EVP_PKEY *back = NULL;
    assert_int_equal(ac_jwk_import_public(json_object_get(j, "agent_jwk"), &back, NULL), AC_EC_OK);
    assert_int_equal(EVP_PKEY_eq(back, agent1), 1);
    EVP_PKEY_free(back);
    assert_null(json_object_get(j, "revoked_at"));
    json_decref(j);
    /* replay: 200, nothing written */
    j = call_tok("POST", "/v1/bindings", b1_body, 200, NULL);
    assert_string_equal(ac_test_jstr(j, "id"), "b1");
    json_decref(j);
    assert_int_equal(identity_rows(), rows + 1);
    /* GET: operator only */
    j = call("GET", "/v1/bindings/b1", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "status"), "active");
    assert_string_equal(ac_test_jstr(j, "runtime_digest"), hdr);
    json_decref(j);
    problem_tok("GET", "/v1/bindings/b1", NULL, 401, "unauthorized", NULL);
    problem("GET", "/v1/bindings/nope", NULL, 404, "binding_unknown");
}

static void binding_bad_input(void **st)
{
    (void)st;
    char kid_alice1[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(alice1, kid_alice1), 0);
    /* body shape */
    bad_binding("{\"jws\":", 400, "json_invalid");
    bad_binding("{\"jws\":5}", 400, "json_schema");
    bad_binding("{\"jws\":\"a.b.c\",\"x\":1}", 400, "json_schema");
    bad_binding("[]", 400, "json_schema");
    /* the JWS layer */
    bad_binding("{\"jws\":\"not a jws\"}", 400, "jws_malformed");
    bad_binding("{\"jws\":\"a.b\\u0000.c\"}", 400, "json_invalid"); /* no NUL in json text */
    {
        json_t *p = binding_payload("bn", "alice", agent2);
        char *text = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        const char *h = "{\"alg\":\"none\",\"typ\":\"agentclear-binding+jws\"}";
        char hb[200], *pb = malloc(ac_b64_enc_len(strlen(text)));
        ac_b64_encode((const uint8_t *)h, strlen(h), hb, 1);
        ac_b64_encode((const uint8_t *)text, strlen(text), pb, 1);
        char *jws = malloc(strlen(hb) + strlen(pb) + 100);
        sprintf(jws, "%s.%s.", hb, pb);
        char *body = jws_body(jws);
        bad_binding(body, 400, "jws_alg_unsupported");
        free(body);
        free(jws);
        free(pb);
        free(text);
    }
    /* the payload */
    json_t *p = binding_payload("bn", "alice", agent2);
    json_object_del(p, "exp");
    char *body = signed_doc(alice1, AC_BINDING_TYP, p, NULL);
    bad_binding(body, 400, "binding_invalid");
    free(body);
    p = binding_payload("bn", "alice", agent2);
    json_object_set_new(p, "extra", json_true());
    body = signed_doc(alice1, AC_BINDING_TYP, p, NULL);
    bad_binding(body, 400, "binding_invalid");
    free(body);
    p = binding_payload("bn", "alice", agent2);
    json_object_set_new(
        p, "cnf",
        json_pack("{s:{s:s, s:s, s:s}}", "jwk", "kty", "OKP", "crv", "Ed25519", "x", "short"));
    body = signed_doc(alice1, AC_BINDING_TYP, p, NULL);
    bad_binding(body, 400, "jwk_invalid");
    free(body);
    body = signed_doc(alice1, AC_REVOCATION_TYP, binding_payload("bn", "alice", agent2), NULL);
    bad_binding(body, 400, "binding_invalid"); /* wrong typ */
    free(body);
    /* who signed it */
    body = signed_doc(alice1, AC_BINDING_TYP, binding_payload("bn", "nobody", agent2), NULL);
    bad_binding(body, 404, "user_unknown");
    free(body);
    body = signed_doc(bob1, AC_BINDING_TYP, binding_payload("bn", "alice", agent2), NULL);
    bad_binding(body, 401, "jws_key_unknown"); /* bob's key, alice's binding */
    free(body);
    body = signed_doc(stranger, AC_BINDING_TYP, binding_payload("bn", "alice", agent2), NULL);
    bad_binding(body, 401, "jws_key_unknown"); /* a key nobody registered */
    free(body);
    body = signed_doc(stranger, AC_BINDING_TYP, binding_payload("bn", "alice", agent2), kid_alice1);
    bad_binding(body, 401, "jws_bad_signature"); /* alice's kid, another key's signature */
    free(body);
    /* times */
    p = ac_test_binding_payload("bn", "alice", "agent-a", agent2, now_s() - 10 * DAY, now_s() - 60);
    body = signed_doc(alice1, AC_BINDING_TYP, p, NULL);
    bad_binding(body, 401, "binding_expired");
    free(body);
    p = ac_test_binding_payload("bn", "alice", "agent-a", agent2, now_s() + 3600,
                                now_s() + 2 * DAY);
    body = signed_doc(alice1, AC_BINDING_TYP, p, NULL);
    bad_binding(body, 400, "binding_invalid");
    free(body);
    /* conflicts: the id is taken, the agent key is bound, the agent key is a merchant's */
    body = signed_doc(alice1, AC_BINDING_TYP, binding_payload("b1", "alice", agent2), NULL);
    bad_binding(body, 409, "binding_exists");
    free(body);
    body = signed_doc(alice1, AC_BINDING_TYP, binding_payload("bn", "alice", agent1), NULL);
    bad_binding(body, 409, "agent_key_bound");
    free(body);
    body = signed_doc(alice1, AC_BINDING_TYP, binding_payload("bn", "alice", shop1), NULL);
    bad_binding(body, 409, "key_exists");
    free(body);
    /* a binding larger than the route allows */
    char *huge = malloc(200 * 1024);
    memset(huge, 'a', 200 * 1024 - 1);
    huge[200 * 1024 - 1] = 0;
    body = jws_body(huge);
    bad_binding(body, 413, "body_too_large");
    free(body);
    free(huge);
    problem("GET", "/v1/bindings/b%20x", NULL, 404, "not_found");
}

static void revocation(void **st)
{
    (void)st;
    char *body;
    /* bad input first */
    body = signed_doc(alice1, AC_REVOCATION_TYP, ac_test_revocation_payload("b2", "alice", now_s()),
                      NULL);
    bad_revocation("/v1/bindings/b1/revoke", body, 400, "revocation_invalid"); /* path differs */
    bad_revocation("/v1/bindings/b2/revoke", body, 404, "binding_unknown");
    free(body);
    body =
        signed_doc(bob1, AC_REVOCATION_TYP, ac_test_revocation_payload("b1", "bob", now_s()), NULL);
    bad_revocation("/v1/bindings/b1/revoke", body, 400, "revocation_invalid"); /* not bob's */
    free(body);
    body = signed_doc(bob1, AC_REVOCATION_TYP, ac_test_revocation_payload("b1", "alice", now_s()),
                      NULL);
    bad_revocation("/v1/bindings/b1/revoke", body, 401, "jws_key_unknown");
    free(body);
    char kid_alice3[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(alice3, kid_alice3), 0);
    body = signed_doc(stranger, AC_REVOCATION_TYP,
                      ac_test_revocation_payload("b1", "alice", now_s()), kid_alice3);
    bad_revocation("/v1/bindings/b1/revoke", body, 401, "jws_bad_signature");
    free(body);
    body = signed_doc(alice1, AC_BINDING_TYP, ac_test_revocation_payload("b1", "alice", now_s()),
                      NULL);
    bad_revocation("/v1/bindings/b1/revoke", body, 400, "revocation_invalid"); /* typ */
    free(body);
    body = signed_doc(alice1, AC_REVOCATION_TYP,
                      ac_test_revocation_payload("b1", "alice", now_s() + 3600), NULL);
    bad_revocation("/v1/bindings/b1/revoke", body, 400, "revocation_invalid"); /* future iat */
    free(body);
    bad_revocation("/v1/bindings/b1/revoke", "{\"jws\":\"x.y\"}", 400, "jws_malformed");
    json_t *j = call("GET", "/v1/bindings/b1", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "status"), "active");
    json_decref(j);

    /* any key of the user revokes (alice3 was added after the binding was signed by alice2) */
    body = signed_doc(alice3, AC_REVOCATION_TYP, ac_test_revocation_payload("b1", "alice", now_s()),
                      NULL);
    long long rows = identity_rows();
    j = call_tok("POST", "/v1/bindings/b1/revoke", body, 200, NULL);
    assert_string_equal(ac_test_jstr(j, "status"), "revoked");
    char revoked_at[64];
    snprintf(revoked_at, sizeof revoked_at, "%s", ac_test_jstr(j, "revoked_at"));
    assert_true(strlen(revoked_at) > 0);
    assert_string_equal(ac_test_jstr(json_object_get(j, "revocation"), "signed_by"), kid_alice3);
    json_decref(j);
    assert_int_equal(identity_rows(), rows + 1);
    assert_int_equal(
        ac_test_sql_int(db_url,
                        "select count(*) from ac_binding_revocations where binding_id = 'b1'"),
        1);
    /* again, and with another revocation: the same answer, nothing written */
    j = call_tok("POST", "/v1/bindings/b1/revoke", body, 200, NULL);
    assert_string_equal(ac_test_jstr(j, "revoked_at"), revoked_at);
    json_decref(j);
    free(body);
    body = signed_doc(alice1, AC_REVOCATION_TYP, ac_test_revocation_payload("b1", "alice", now_s()),
                      NULL);
    j = call_tok("POST", "/v1/bindings/b1/revoke", body, 200, NULL);
    assert_string_equal(ac_test_jstr(j, "revoked_at"), revoked_at);
    assert_string_equal(ac_test_jstr(json_object_get(j, "revocation"), "signed_by"), kid_alice3);
    json_decref(j);
    free(body);
    assert_int_equal(identity_rows(), rows + 1);
    j = call("GET", "/v1/bindings/b1", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "status"), "revoked");
    assert_string_equal(ac_test_jstr(j, "revoked_at"), revoked_at);
    json_decref(j);
    /* the replay of the binding still answers 200 (revoked) */
    j = call_tok("POST", "/v1/bindings", b1_body, 200, NULL);
    assert_string_equal(ac_test_jstr(j, "status"), "revoked");
    json_decref(j);
    /* the agent key is free again: a new binding of it is accepted */
    body = signed_doc(alice1, AC_BINDING_TYP, binding_payload("b2", "alice", agent1), NULL);
    j = call_tok("POST", "/v1/bindings", body, 201, NULL);
    assert_string_equal(ac_test_jstr(j, "status"), "active");
    json_decref(j);
    free(body);
}

static void restart_keeps_everything(void **st)
{
    (void)st;
    json_t *u0 = call("GET", "/v1/users/alice", NULL, 200);
    json_t *m0 = call("GET", "/v1/merchants/shop", NULL, 200);
    json_t *b0 = call("GET", "/v1/bindings/b1", NULL, 200);
    json_t *c0 = call("GET", "/v1/bindings/b2", NULL, 200);
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 15000), 0);
    assert_false(ac_test_server_log_has_sanitizer_report(&srv));
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    json_t *u1 = call("GET", "/v1/users/alice", NULL, 200);
    json_t *m1 = call("GET", "/v1/merchants/shop", NULL, 200);
    json_t *b1 = call("GET", "/v1/bindings/b1", NULL, 200);
    json_t *c1 = call("GET", "/v1/bindings/b2", NULL, 200);
    assert_true(json_equal(u0, u1));
    assert_true(json_equal(m0, m1));
    assert_true(json_equal(b0, b1));
    assert_true(json_equal(c0, c1));
    assert_string_equal(ac_test_jstr(b1, "status"), "revoked");
    json_decref(u0);
    json_decref(u1);
    json_decref(m0);
    json_decref(m1);
    json_decref(b0);
    json_decref(b1);
    json_decref(c0);
    json_decref(c1);
    long long rows = identity_rows();
    json_decref(call_tok("POST", "/v1/bindings", b1_body, 200, NULL));
    assert_int_equal(identity_rows(), rows);
    assert_true(
        ac_test_server_log_has(&srv, "2 users, 1 merchants, 5 keys, 2 bindings (1 revoked)"));
}

static void sigterm_stops_cleanly(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_payflow_stop_cleanly(&srv, 15000);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **st)
{
    (void)st;
    EVP_PKEY **keys[] = {&alice1, &alice2, &alice3, &bob1, &shop1, &agent1, &agent2, &stranger};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        *keys[i] = ac_sig_keygen(i % 3 == 1 ? AC_SIG_ES256 : AC_SIG_ED25519);
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_http_identity"));
    if (ac_test_server_start(&srv, "http_identity", db_url, TOKEN, NULL, READY_MS) != 0) return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_server_kill(&srv);
    EVP_PKEY *keys[] = {alice1, alice2, alice3, bob1, shop1, agent1, agent2, stranger};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    free(b1_body);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(principals),
        cmocka_unit_test(bindings),
        cmocka_unit_test(binding_bad_input),
        cmocka_unit_test(revocation),
        cmocka_unit_test(restart_keeps_everything),
        cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
