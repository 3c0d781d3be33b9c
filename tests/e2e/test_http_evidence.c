/* The evidence log over HTTP: a real `agentclear serve` child on a database whose log was begun
 * through an in-process sequencer (bindings, a payment with a transfer: tests/support/evfix.h)
 * with the same server key, then continued by the server (a binding over HTTP).
 * - the latest checkpoint (text/plain) verifies with the log key; so do stored ones by size;
 * - every record served (operator) decodes to the leaf served, and its inclusion proof verifies
 *   against the checkpoint's root (protocol/merkle.h); consistency proofs verify;
 * - the payment's dispute bundle verifies with `agentclear audit bundle` (the real binary), and
 *   a changed byte makes it fail;
 * - bad input answers its code, never a 5xx; records need the operator token.
 * - mandate documents in bundles: runs once the payments migration's ac_mandates exists. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "keys/keyring.h"
#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/merkle.h"
#include "protocol/sig.h"
#include "tests/support/evfix.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/server.h"

#define TOKEN "e2e-http-evidence-operator-token"

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];
static EVP_PKEY *server_key, *ukey;
static char *vkey;

static int get(const char *path, const char *token, struct ac_test_http_resp *r)
{
    return ac_test_http_api(&http, "GET", path, token, NULL, r);
}

static json_t *get_json(const char *path, int want)
{
    struct ac_test_http_resp r;
    int st = get(path, TOKEN, &r);
    if (st != want) fail_msg("GET %s: %d, expected %d: %s", path, st, want, r.body);
    json_t *j = ac_test_http_json(&r);
    if (j == NULL) fail_msg("GET %s: not json: %s", path, r.body);
    ac_test_http_resp_free(&r);
    return j;
}

static void expect_code(const char *path, const char *token, int status, const char *code)
{
    struct ac_test_http_resp r;
    int st = get(path, token, &r);
    if (st != status) fail_msg("GET %s: %d, expected %d: %s", path, st, status, r.body);
    json_t *j = ac_test_http_json(&r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), code);
    json_decref(j);
    ac_test_http_resp_free(&r);
}

/* The latest checkpoint, verified; waits until it covers at least `size` records. */
static void latest_checkpoint(uint64_t size, struct ac_ev_checkpoint *cp, char **note)
{
    for (int i = 0; i < 300; i++) {
        struct ac_test_http_resp r;
        int st = get("/v1/evidence/checkpoint", NULL, &r);
        if (st == 200) {
            char ct[128];
            ac_test_http_header(&r, "Content-Type", ct, sizeof ct);
            assert_string_equal(ct, "text/plain; charset=utf-8");
            char err[200];
            assert_int_equal(ac_ev_checkpoint_verify(r.body, r.body_len, vkey, strlen(vkey),
                                                     AC_EVFIX_ORIGIN, cp, err, sizeof err),
                             0);
            if (cp->size >= size) {
                *note = strdup(r.body);
                ac_test_http_resp_free(&r);
                return;
            }
            ac_ev_checkpoint_clear(cp);
        }
        ac_test_http_resp_free(&r);
        usleep(100000);
    }
    fail_msg("no checkpoint of %llu records", (unsigned long long)size);
}

static int setup(void **st)
{
    (void)st;
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("ac_e2e_evidence"));
    server_key = ac_sig_keygen(AC_SIG_ED25519);
    ukey = ac_sig_keygen(AC_SIG_ED25519);
    /* begin the log in process */
    struct ac_evfix f;
    ac_evfix_start(&f, db_url, server_key, 1000, 200);
    vkey = strdup(f.vkey);
    assert_int_equal(ac_evfix_user(&f, "u1", ukey), AC_EC_OK);
    assert_int_equal(ac_evfix_binding(&f, "b0", "u1", ukey, NULL, NULL), AC_EC_OK);
    assert_int_equal(ac_evfix_binding(&f, "b1", "u1", ukey, NULL, NULL), AC_EC_OK);
    const char *acc[] = {"wallet:u1", "shop"};
    assert_int_equal(ac_evfix_accounts(&f, acc, 2), AC_EC_OK);
    assert_int_equal(ac_evfix_pay(&f, "p1", "t1", "wallet:u1", "shop", 1234, "u1", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_pay(&f, "p1", "t2", "shop", "wallet:u1", 34, "u1", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_wait_checkpoint(db_url, 5, 15000), 5); /* 2 is ledger.account */
    ac_evfix_stop(&f);
    /* the server, with the same key and origin */
    char keys_dir[1024], file[1100], err[200];
    snprintf(keys_dir, sizeof keys_dir, "%s/keys", ac_test_tmpdir());
    mkdir(keys_dir, 0700);
    snprintf(file, sizeof file, "%s/server.jwk", keys_dir);
    int64_t now = (int64_t)time(NULL);
    if (ac_keyfile_create(file, server_key, now - 3600, now + 30 * 86400, err, sizeof err) != 0)
        fail_msg("%s", err);
    char e1[1100], e2[200];
    snprintf(e1, sizeof e1, "AGENTCLEAR_KEYS_DIR=%s", keys_dir);
    snprintf(e2, sizeof e2, "AGENTCLEAR_EVIDENCE_ORIGIN=%s", AC_EVFIX_ORIGIN);
    const char *env[] = {e1, e2, "AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    if (ac_test_server_start(&srv, "evidence", db_url, TOKEN, env, 30000) != 0) return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 10000);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_server_stop(&srv, 10000);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(ukey);
    free(vkey);
    return 0;
}

static uint8_t *unhex(const char *s, size_t n)
{
    uint8_t *p = malloc(n);
    assert_int_equal(ac_test_unhex(s, p, n), (long)n);
    return p;
}

static void records_and_proofs(void **st)
{
    (void)st;
    /* the server continues the log: a binding over HTTP (the user's signature is the authority) */
    EVP_PKEY *agent = ac_sig_keygen(AC_SIG_ED25519);
    int64_t now = (int64_t)time(NULL);
    json_t *p = ac_test_binding_payload("b2", "u1", "agent-b2", agent, now - 60, now + 86400);
    char *jws = ac_test_sign_doc(ukey, AC_BINDING_TYP, p, NULL);
    json_decref(p);
    json_t *body = json_pack("{s:s}", "jws", jws);
    char *text = json_dumps(body, JSON_COMPACT);
    struct ac_test_http_resp r;
    assert_int_equal(ac_test_http_api(&http, "POST", "/v1/bindings", NULL, text, &r), 201);
    ac_test_http_resp_free(&r);
    free(text);
    json_decref(body);
    EVP_PKEY_free(agent);

    struct ac_ev_checkpoint cp;
    char *note;
    latest_checkpoint(6, &cp, &note);
    assert_int_equal(cp.size, 6);
    for (uint64_t seq = 0; seq < cp.size; seq++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/evidence/%llu", (unsigned long long)seq);
        json_t *j = get_json(path, 200);
        const char *rec64 = json_string_value(json_object_get(j, "record"));
        uint8_t *rec = malloc(strlen(rec64));
        size_t n = strlen(rec64);
        assert_int_equal(ac_b64_decode(rec64, strlen(rec64), rec, &n, 0), 0);
        assert_true(n > 0);
        uint8_t leaf[32];
        ac_ev_leaf_hash(rec, n, leaf);
        uint8_t *served = unhex(json_string_value(json_object_get(j, "leaf")), 32);
        assert_memory_equal(served, leaf, 32);
        assert_int_equal(json_integer_value(json_object_get(j, "tree_size")), cp.size);
        assert_string_equal(json_string_value(json_object_get(j, "checkpoint")), note);
        json_t *pr = json_object_get(j, "proof");
        size_t pn = json_array_size(pr);
        uint8_t proof[AC_MERKLE_MAX_PROOF][32];
        for (size_t i = 0; i < pn; i++) {
            uint8_t *h = unhex(json_string_value(json_array_get(pr, i)), 32);
            memcpy(proof[i], h, 32);
            free(h);
        }
        assert_int_equal(ac_merkle_verify_inclusion(seq, cp.size, leaf, (const uint8_t(*)[32])proof,
                                                    pn, cp.root),
                         1);
        const char *kind = json_string_value(json_object_get(json_object_get(j, "view"), "kind"));
        assert_string_equal(kind, seq == 2               ? "ledger.account"
                                  : seq == 3 || seq == 4 ? "refund"
                                                         : "binding.register");
        free(served);
        free(rec);
        json_decref(j);
    }
    /* a stored checkpoint by size, and consistency from it to the latest */
    struct ac_test_http_resp r4;
    assert_int_equal(get("/v1/evidence/checkpoint/5", NULL, &r4), 200);
    struct ac_ev_checkpoint cp4;
    char err[200];
    assert_int_equal(ac_ev_checkpoint_verify(r4.body, r4.body_len, vkey, strlen(vkey), NULL, &cp4,
                                             err, sizeof err),
                     0);
    ac_test_http_resp_free(&r4);
    json_t *c = get_json("/v1/evidence/consistency?from=5&to=6", 200);
    json_t *pr = json_object_get(c, "proof");
    uint8_t proof[AC_MERKLE_MAX_PROOF][32];
    for (size_t i = 0; i < json_array_size(pr); i++) {
        uint8_t *h = unhex(json_string_value(json_array_get(pr, i)), 32);
        memcpy(proof[i], h, 32);
        free(h);
    }
    assert_int_equal(ac_merkle_verify_consistency(5, 6, cp4.root, cp.root,
                                                  (const uint8_t(*)[32])proof, json_array_size(pr)),
                     1);
    json_decref(c);
    /* the record with ?size= */
    json_t *j = get_json("/v1/evidence/1?size=5", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "tree_size")), 5);
    json_decref(j);
    ac_ev_checkpoint_clear(&cp4);
    ac_ev_checkpoint_clear(&cp);
    free(note);
    free(jws);
}

static void bad_input(void **st)
{
    (void)st;
    expect_code("/v1/evidence/0", NULL, 401, "unauthorized");
    expect_code("/v1/evidence/999", TOKEN, 404, "evidence_unknown");
    expect_code("/v1/evidence/abc", TOKEN, 400, "parameter_invalid");
    expect_code("/v1/evidence/01", TOKEN, 400, "parameter_invalid");
    expect_code("/v1/evidence/0?size=0", TOKEN, 400, "parameter_invalid");
    /* a size no checkpoint has (3 could be sealed by the timer when the machine is slow) */
    expect_code("/v1/evidence/0?size=999999", TOKEN, 404, "checkpoint_unknown");
    expect_code("/v1/evidence/checkpoint/0", NULL, 400, "parameter_invalid");
    expect_code("/v1/evidence/checkpoint/999", NULL, 404, "checkpoint_unknown");
    expect_code("/v1/evidence/consistency?from=0&to=1", NULL, 400, "parameter_invalid");
    expect_code("/v1/evidence/consistency?from=2", NULL, 400, "parameter_invalid");
    expect_code("/v1/evidence/consistency?from=3&to=2", NULL, 400, "parameter_invalid");
    expect_code("/v1/evidence/consistency?from=1&to=999", NULL, 404, "checkpoint_unknown");
    expect_code("/v1/payments/nope/evidence", TOKEN, 404, "evidence_unknown");
    expect_code("/v1/payments/p1/evidence", NULL, 401, "unauthorized");
}

static int audit_bundle(const char *name, const char *file)
{
    char k[600];
    snprintf(k, sizeof k, "--log-key=%s", vkey);
    char *argv[] = {(char *)ac_test_binary(), "audit", "bundle", (char *)file, k, NULL};
    return ac_test_run(name, argv, 60000);
}

static void dispute_bundle(void **st)
{
    (void)st;
    struct ac_test_http_resp r;
    assert_int_equal(get("/v1/payments/p1/evidence", TOKEN, &r), 200);
    char ct[64];
    ac_test_http_header(&r, "Content-Type", ct, sizeof ct);
    assert_string_equal(ct, "application/cbor");
    char file[1100];
    snprintf(file, sizeof file, "%s/p1.cbor", ac_test_tmpdir());
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(r.body, 1, r.body_len, f), r.body_len);
    fclose(f);
    assert_int_equal(audit_bundle("bundle-ok", file), 0);
    /* one changed byte in the middle */
    r.body[r.body_len / 2] ^= 1;
    f = fopen(file, "wb");
    assert_int_equal(fwrite(r.body, 1, r.body_len, f), r.body_len);
    fclose(f);
    assert_int_equal(audit_bundle("bundle-bad", file), 1);
    ac_test_http_resp_free(&r);
}

/* TODO(payments): mandate JWS in bundles come from ac_mandates (sql/0007, the payments change),
 * looked up by the docref id through ac_evidence_documents(). This runs once that table exists:
 * a mandate row's JWS must be returned as a document candidate. */
static void mandate_documents(void **st)
{
    (void)st;
    if (ac_evfix_sql_int(db_url, "select count(*) from pg_class where relname = 'ac_mandates'") ==
        0)
        skip();
    long long n =
        ac_evfix_sql_int(db_url, "select count(*) from ac_mandates m where exists (select 1 from "
                                 "ac_evidence_documents(array[m.id]) d where d = m.jws)");
    long long all = ac_evfix_sql_int(db_url, "select count(*) from ac_mandates");
    assert_int_equal(n, all);
}

int main(void)
{
    ac_test_db_url();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_and_proofs),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(dispute_bundle),
        cmocka_unit_test(mandate_documents),
    };
    int failures = cmocka_run_group_tests(tests, setup, teardown);
    if (srv.pid > 0 && ac_test_server_log_has_sanitizer_report(&srv)) failures++;
    return ac_test_e2e_finish(failures);
}
