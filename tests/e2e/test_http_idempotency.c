/* Idempotency-Key end to end (server/idem.h, docs/merchant-api.md "Idempotency"): a real
 * `agentclear serve` child on a fresh PostgreSQL database, over HTTP, with real keys and
 * RFC 9421 agent-signed payments.
 * - A replay (same key, same body, a fresh signature) answers the original status and body byte
 *   for byte with `Idempotent-Replayed: true`; no money moves twice, no evidence is added.
 * - The same key with another body: 422 idempotency_key_reused, nothing moves.
 * - Many threads sending the same key at once: exactly one effect; the others 409
 *   idempotency_in_flight (with Retry-After) or the replay.
 * - A duplicate sent the instant the answer arrives is the replay, not 409.
 * - Keys that are too long, hold spaces or control bytes, or come twice: 400.
 * - Two callers (two agents; the operator) with the same key are independent.
 * - The key survives a restart of the server.
 * - A batch that fails to commit (the database refuses it: a trigger injected for one key)
 *   leaves neither the payment nor the key; the same key then runs the request.
 * - Operator, registry and document routes: a sequencer-decided 4xx is kept and replayed, a 400
 *   of syntax is not (the corrected request runs under the same key); a user registration and a
 *   mandate (whose answers read what their batch wrote) replay byte for byte.
 * - Records older than the retention are swept. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "protocol/mandate.h"
#include "protocol/sig.h"
#include "tests/support/agentsig.h"
#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define TOKEN "e2e-http-idempotency-operator-token"
#define READY_MS 30000
#define THREADS 8

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];
static EVP_PKEY *alice1, *shop1, *llm1, *agent1, *agent2, *bob1, *bobs_agent;

static long long sql_int(const char *q)
{
    return ac_test_sql_int(db_url, q);
}

static json_t *call(const char *method, const char *path, const char *json, int want)
{
    return ac_test_api_call(&http, method, path, TOKEN, json, want);
}

static long long posted(const char *account)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/accounts/%s", account);
    json_t *j = call("GET", path, NULL, 200);
    long long v = ac_test_cents(ac_test_jstr(j, "credits_posted")) -
                  ac_test_cents(ac_test_jstr(j, "debits_posted"));
    json_decref(j);
    return v;
}

static long long evidence_count(void)
{
    return sql_int("select count(*) from ac_evidence");
}

/* POST path with body signed by key (NULL: unsigned), with header line `extra` ("" or
 * "Idempotency-Key: k\r\n"), on connection c. Returns the status. */
static int post_on(struct ac_test_http *c, EVP_PKEY *key, const char *path, const char *body,
                   const char *extra, struct ac_test_http_resp *r)
{
    char hdrs[16384];
    if (key)
        ac_test_agent_headers(key, srv.port, "POST", path, body, hdrs, sizeof hdrs);
    else
        snprintf(hdrs, sizeof hdrs, "Content-Type: application/json\r\n");
    size_t n = strlen(hdrs);
    snprintf(hdrs + n, sizeof hdrs - n, "%s", extra);
    return ac_test_http_request(c, "POST", path, hdrs, body, strlen(body), r);
}

static int post(EVP_PKEY *key, const char *path, const char *body, const char *idem,
                struct ac_test_http_resp *r)
{
    char extra[400] = "";
    if (idem) snprintf(extra, sizeof extra, "Idempotency-Key: %s\r\n", idem);
    return post_on(&http, key, path, body, extra, r);
}

/* An operator POST with an Idempotency-Key. */
static int op_post(const char *path, const char *json, const char *idem,
                   struct ac_test_http_resp *r)
{
    char hdrs[600];
    snprintf(hdrs, sizeof hdrs,
             "Authorization: Bearer " TOKEN "\r\nContent-Type: application/json\r\n"
             "Idempotency-Key: %s\r\n",
             idem);
    return ac_test_http_request(&http, "POST", path, hdrs, json, strlen(json), r);
}

static int replayed(const struct ac_test_http_resp *r)
{
    char v[16];
    return ac_test_http_header(r, "Idempotent-Replayed", v, sizeof v) && strcmp(v, "true") == 0;
}

static void expect_problem(struct ac_test_http_resp *r, int status, const char *code)
{
    json_decref(ac_test_api_problem(r, status, code, "idempotency"));
}

/* The original answer and its replay: same status, same bytes, the header only on the replay. */
static void same_answer(const struct ac_test_http_resp *first, const struct ac_test_http_resp *again)
{
    assert_int_equal(again->status, first->status);
    assert_false(replayed(first));
    assert_true(replayed(again));
    assert_int_equal(again->body_len, first->body_len);
    assert_memory_equal(again->body, first->body, first->body_len);
}

static char *pay_body(const char *id, const char *mandate, const char *value)
{
    return ac_test_pay_body(id, mandate, "shop", "CNY", value, NULL);
}

/* ---- the world ------------------------------------------------------------------------------- */

static void register_mandate_of(EVP_PKEY *user_key, const char *user, const char *id,
                               const char *agent)
{
    json_t *p = ac_test_mandate_payload(id, user, agent, "shop", "CNY", "50.00", "L5");
    char *body = ac_test_signed_body(user_key, AC_MANDATE_TYP, p);
    json_decref(ac_test_api_call(&http, "POST", "/v1/mandates", NULL, body, 201));
    free(body);
}

static void register_mandate(const char *id, const char *agent)
{
    json_t *p = ac_test_mandate_payload(id, "alice", agent, "shop", "CNY", "50.00", "L5");
    char *body = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    json_decref(ac_test_api_call(&http, "POST", "/v1/mandates", NULL, body, 201));
    free(body);
}

static void world(void)
{
    ac_test_payflow_parties(&http, TOKEN, alice1, bob1, shop1, llm1);
    json_decref(call("POST", "/v1/ledger/accounts",
                     "{\"accounts\":[{\"id\":\"bank:cny\",\"asset\":\"CNY\"},"
                     "{\"id\":\"user:alice:cny\",\"asset\":\"CNY\",\"owner\":\"alice\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]},"
                     "{\"id\":\"user:bob:cny\",\"asset\":\"CNY\",\"owner\":\"bob\"},"
                     "{\"id\":\"merchant:shop:cny\",\"asset\":\"CNY\",\"owner\":\"shop\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]},"
                     "{\"id\":\"merchant:llm:cny\",\"asset\":\"CNY\",\"owner\":\"llm\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]}]}",
                     200));
    json_decref(call("POST", "/v1/ledger/transfers",
                     "{\"transfers\":[{\"id\":\"fund-alice\",\"debit_account\":\"bank:cny\","
                     "\"credit_account\":\"user:alice:cny\",\"amount\":\"1000.00\","
                     "\"asset\":\"CNY\"}]}",
                     200));
    ac_test_payflow_binding(&http, "b1", alice1, "alice", agent1, "agent-a");
    ac_test_payflow_binding(&http, "b2", alice1, "alice", agent2, "agent-b");
    register_mandate("m1", "agent-a");
    register_mandate("m2", "agent-b");
    /* bob names his agent as alice named hers: agent ids are chosen by their users */
    ac_test_payflow_binding(&http, "b-bob", bob1, "bob", bobs_agent, "agent-a");
    register_mandate_of(bob1, "bob", "m-bob", "agent-a");
}

/* ---- payments -------------------------------------------------------------------------------- */

static void replay_moves_nothing(void **st)
{
    (void)st;
    char *body = pay_body("p1", "m1", "10.00");
    long long a0 = posted("user:alice:cny"), s0 = posted("merchant:shop:cny");
    long long e0 = evidence_count();
    struct ac_test_http_resp first, again;
    assert_int_equal(post(agent1, "/v1/payments", body, "key-p1", &first), 201);
    assert_int_equal(posted("user:alice:cny"), a0 - 1000);
    assert_int_equal(evidence_count(), e0 + 1);
    assert_int_equal(sql_int("select count(*) from ac_idempotency where key = 'key-p1' and "
                             "caller = 'agent:alice/agent-a' and path = '/v1/payments' and status = 201"),
                     1);
    for (int i = 0; i < 2; i++) { /* a fresh signature each time, the same key and body */
        assert_int_equal(post(agent1, "/v1/payments", body, "key-p1", &again), 201);
        same_answer(&first, &again);
        ac_test_http_resp_free(&again);
    }
    assert_int_equal(posted("user:alice:cny"), a0 - 1000);
    assert_int_equal(posted("merchant:shop:cny"), s0 + 1000);
    assert_int_equal(evidence_count(), e0 + 1);
    assert_int_equal(sql_int("select count(*) from ac_payments where id = 'p1'"), 1);
    ac_test_http_resp_free(&first);
    free(body);
}

static void other_body_is_422(void **st)
{
    (void)st;
    long long a0 = posted("user:alice:cny"), e0 = evidence_count();
    char *body = pay_body("p1-other", "m1", "10.00");
    struct ac_test_http_resp r;
    post(agent1, "/v1/payments", body, "key-p1", &r);
    expect_problem(&r, 422, "idempotency_key_reused");
    ac_test_http_resp_free(&r);
    free(body);
    /* a denied payment is the sequencer's decision: kept and replayed */
    body = pay_body("p-denied", "m1", "60.00");
    struct ac_test_http_resp first, again;
    assert_int_equal(post(agent1, "/v1/payments", body, "key-denied", &first), 422);
    assert_int_equal(post(agent1, "/v1/payments", body, "key-denied", &again), 422);
    same_answer(&first, &again);
    ac_test_http_resp_free(&first);
    ac_test_http_resp_free(&again);
    free(body);
    assert_int_equal(posted("user:alice:cny"), a0);
    assert_int_equal(evidence_count(), e0 + 1); /* the denial's record, once */
    assert_int_equal(sql_int("select count(*) from ac_payments where id = 'p1-other'"), 0);
}

static void bad_keys_are_400(void **st)
{
    (void)st;
    char *body = pay_body("p-bad", "m1", "1.00");
    char long_key[300];
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    char extra[800];
    const char *bad[] = {long_key, "two words", "tab\tkey", "caf\xc3\xa9"};
    long long a0 = posted("user:alice:cny");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(extra, sizeof extra, "Idempotency-Key: %s\r\n", bad[i]);
        struct ac_test_http_resp r;
        post_on(&http, agent1, "/v1/payments", body, extra, &r);
        expect_problem(&r, 400, "idempotency_key_invalid");
        ac_test_http_resp_free(&r);
    }
    struct ac_test_http_resp r;
    post_on(&http, agent1, "/v1/payments", body, "Idempotency-Key: a\r\nIdempotency-Key: b\r\n",
            &r);
    expect_problem(&r, 400, "idempotency_key_invalid");
    ac_test_http_resp_free(&r);
    /* 255 characters is the longest key */
    long_key[255] = '\0';
    assert_int_equal(post(agent1, "/v1/payments", body, long_key, &r), 201);
    ac_test_http_resp_free(&r);
    assert_int_equal(posted("user:alice:cny"), a0 - 100);
    free(body);
}

static void callers_are_independent(void **st)
{
    (void)st;
    long long a0 = posted("user:alice:cny");
    char *b1 = pay_body("p-a", "m1", "2.00"), *b2 = pay_body("p-b", "m2", "3.00");
    struct ac_test_http_resp r1, r2;
    assert_int_equal(post(agent1, "/v1/payments", b1, "shared-key", &r1), 201);
    assert_int_equal(post(agent2, "/v1/payments", b2, "shared-key", &r2), 201);
    assert_false(replayed(&r1));
    assert_false(replayed(&r2));
    ac_test_http_resp_free(&r1);
    ac_test_http_resp_free(&r2);
    assert_int_equal(posted("user:alice:cny"), a0 - 500);
    /* bob's agent has the same agent id as alice's agent1 ("agent-a"), and the same key: still
     * another caller (the scope names the user too), so its payment runs */
    char *b3 = pay_body("p-bob", "m-bob", "1.00");
    assert_int_equal(post(bobs_agent, "/v1/payments", b3, "shared-key", &r1), 201);
    assert_false(replayed(&r1));
    ac_test_http_resp_free(&r1);
    assert_int_equal(posted("user:bob:cny"), -100);
    free(b3);
    /* the operator's key of the same name on its own route */
    assert_int_equal(op_post("/v1/ledger/transfers",
                             "{\"transfers\":[{\"id\":\"t-shared\",\"debit_account\":\"bank:cny\","
                             "\"credit_account\":\"user:alice:cny\",\"amount\":\"1.00\","
                             "\"asset\":\"CNY\"}]}",
                             "shared-key", &r1),
                     200);
    assert_false(replayed(&r1));
    ac_test_http_resp_free(&r1);
    assert_int_equal(posted("user:alice:cny"), a0 - 400);
    free(b1);
    free(b2);
}

struct racer {
    pthread_t th;
    const char *body;
    char hdrs[16384];
    struct ac_test_http_resp r;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 20000);
    ac_test_http_request(&c, "POST", "/v1/payments", x->hdrs, x->body, strlen(x->body), &x->r);
    ac_test_http_close(&c);
    return NULL;
}

static void concurrent_duplicates(void **st)
{
    (void)st;
    long long a0 = posted("user:alice:cny"), e0 = evidence_count();
    char *body = pay_body("p-race", "m1", "7.00");
    static struct racer rs[THREADS];
    for (int i = 0; i < THREADS; i++) { /* signed up front: each its own nonce */
        rs[i].body = body;
        ac_test_agent_headers(agent1, srv.port, "POST", "/v1/payments", body, rs[i].hdrs,
                              sizeof rs[i].hdrs);
        size_t n = strlen(rs[i].hdrs);
        snprintf(rs[i].hdrs + n, sizeof rs[i].hdrs - n, "Idempotency-Key: race-key\r\n");
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&rs[i].th, NULL, race, &rs[i]), 0);
    int fresh = 0, replays = 0, busy = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(rs[i].th, NULL);
        struct ac_test_http_resp *r = &rs[i].r;
        if (r->status == 201 && !replayed(r)) {
            fresh++;
        } else if (r->status == 201) {
            replays++;
        } else {
            char ra[16];
            assert_true(ac_test_http_header(r, "Retry-After", ra, sizeof ra));
            expect_problem(r, 409, "idempotency_in_flight");
            busy++;
        }
    }
    assert_int_equal(fresh, 1);
    assert_int_equal(fresh + replays + busy, THREADS);
    for (int i = 0; i < THREADS; i++)
        ac_test_http_resp_free(&rs[i].r);
    /* once it is done, everyone gets the replay */
    struct ac_test_http_resp r;
    assert_int_equal(post(agent1, "/v1/payments", body, "race-key", &r), 201);
    assert_true(replayed(&r));
    ac_test_http_resp_free(&r);
    assert_int_equal(posted("user:alice:cny"), a0 - 700);
    assert_int_equal(evidence_count(), e0 + 1);
    free(body);
}

/* A duplicate sent the moment the answer arrives, on another open connection, is the replay,
 * never 409: the key is released when the answer is queued, not when libmicrohttpd has finished
 * sending it. The duplicate's headers are signed before the first request goes out, so that it
 * follows the answer as closely as a client can. */
static void duplicate_right_after_answer(void **st)
{
    (void)st;
    struct ac_test_http c2;
    struct ac_test_http_resp r;
    ac_test_http_init(&c2, "127.0.0.1", srv.port, 20000);
    assert_int_equal(ac_test_http_request(&c2, "GET", "/healthz", "", NULL, 0, &r), 200);
    ac_test_http_resp_free(&r);
    long long a0 = posted("user:alice:cny"), e0 = evidence_count();
    enum { ROUNDS = 200 };
    static char hdrs[16384];
    for (int i = 0; i < ROUNDS; i++) {
        char id[32], key[48];
        snprintf(id, sizeof id, "p-next-%d", i);
        snprintf(key, sizeof key, "next-key-%d", i);
        char *body = pay_body(id, "m1", "0.01");
        ac_test_agent_headers(agent1, srv.port, "POST", "/v1/payments", body, hdrs, sizeof hdrs);
        size_t n = strlen(hdrs);
        snprintf(hdrs + n, sizeof hdrs - n, "Idempotency-Key: %s\r\n", key);
        struct ac_test_http_resp first, again;
        assert_int_equal(post(agent1, "/v1/payments", body, key, &first), 201);
        assert_int_equal(
            ac_test_http_request(&c2, "POST", "/v1/payments", hdrs, body, strlen(body), &again),
            201);
        same_answer(&first, &again);
        ac_test_http_resp_free(&first);
        ac_test_http_resp_free(&again);
        free(body);
    }
    ac_test_http_close(&c2);
    assert_int_equal(posted("user:alice:cny"), a0 - ROUNDS);
    assert_int_equal(evidence_count(), e0 + ROUNDS);
}

static void failed_batch_leaves_no_key(void **st)
{
    (void)st;
    /* the database refuses the key's record: the whole batch (payment, evidence, key) fails */
    ac_test_sql(db_url,
                     "create function idem_fail() returns trigger language plpgsql as $$ begin "
                     "raise exception 'injected failure'; end $$; "
                     "create trigger idem_fail before insert on ac_idempotency for each row "
                     "when (new.key = 'doomed') execute function idem_fail()");
    long long a0 = posted("user:alice:cny"), e0 = evidence_count();
    char *body = pay_body("p-doomed", "m1", "4.00");
    struct ac_test_http_resp r;
    int stt = post(agent1, "/v1/payments", body, "doomed", &r);
    assert_true(stt == 503);
    ac_test_http_resp_free(&r);
    assert_int_equal(sql_int("select count(*) from ac_idempotency where key = 'doomed'"), 0);
    assert_int_equal(sql_int("select count(*) from ac_payments where id = 'p-doomed'"), 0);
    ac_test_sql(db_url, "drop trigger idem_fail on ac_idempotency");
    /* the sequencer reloads; then the same key runs the request, once */
    int got = 0;
    for (int i = 0; i < 100 && got != 201; i++) {
        got = post(agent1, "/v1/payments", body, "doomed", &r);
        if (got != 201) usleep(100000);
        else assert_false(replayed(&r));
        ac_test_http_resp_free(&r);
    }
    assert_int_equal(got, 201);
    assert_int_equal(posted("user:alice:cny"), a0 - 400);
    assert_int_equal(evidence_count(), e0 + 1);
    free(body);
}

/* ---- other routes ---------------------------------------------------------------------------- */

static void operator_and_document_routes(void **st)
{
    (void)st;
    struct ac_test_http_resp first, again;
    /* a 400 of syntax is not kept: the corrected request runs under the same key */
    op_post("/v1/ledger/transfers", "{\"transfers\":[]}", "op-k1", &first);
    expect_problem(&first, 400, "batch_empty");
    ac_test_http_resp_free(&first);
    const char *over = "{\"transfers\":[{\"id\":\"t-over\",\"debit_account\":\"merchant:llm:cny\","
                       "\"credit_account\":\"bank:cny\",\"amount\":\"1.00\",\"asset\":\"CNY\"}]}";
    /* the sequencer's refusal (exceeds_credits) is kept and replayed */
    assert_int_equal(op_post("/v1/ledger/transfers", over, "op-k1", &first), 422);
    assert_int_equal(op_post("/v1/ledger/transfers", over, "op-k1", &again), 422);
    same_answer(&first, &again);
    ac_test_http_resp_free(&first);
    ac_test_http_resp_free(&again);
    /* a registration: its answer reads the registry's view of its own batch */
    EVP_PKEY *carol = ac_sig_keygen(AC_SIG_ED25519);
    char *k = ac_test_jwk_text(carol);
    char body[4096];
    snprintf(body, sizeof body, "{\"id\":\"carol\",\"keys\":[%s]}", k);
    free(k);
    assert_int_equal(op_post("/v1/users", body, "user-carol", &first), 201);
    assert_int_equal(op_post("/v1/users", body, "user-carol", &again), 201);
    same_answer(&first, &again);
    ac_test_http_resp_free(&first);
    ac_test_http_resp_free(&again);
    EVP_PKEY_free(carol);
    /* a mandate (no caller but the document's signer: scope "anonymous"): its answer reads the
     * row its batch wrote */
    json_t *p = ac_test_mandate_payload("m-idem", "alice", "agent-a", "shop", "CNY", "5.00", "L5");
    char *doc = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    assert_int_equal(post(NULL, "/v1/mandates", doc, "mandate-key", &first), 201);
    assert_int_equal(post(NULL, "/v1/mandates", doc, "mandate-key", &again), 201);
    same_answer(&first, &again);
    ac_test_http_resp_free(&first);
    ac_test_http_resp_free(&again);
    free(doc);
    assert_int_equal(sql_int("select count(*) from ac_idempotency where caller = 'anonymous' and "
                             "key = 'mandate-key'"),
                     1);
}

static void survives_restart(void **st)
{
    (void)st;
    char *body = pay_body("p-restart", "m1", "1.50");
    struct ac_test_http_resp first, again;
    assert_int_equal(post(agent1, "/v1/payments", body, "restart-key", &first), 201);
    long long a0 = posted("user:alice:cny"), e0 = evidence_count();
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 20000), 0);
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    int got = 0;
    for (int i = 0; i < 100 && got != 201; i++) { /* until the sequencer leads again */
        got = post(agent1, "/v1/payments", body, "restart-key", &again);
        if (got != 201) {
            ac_test_http_resp_free(&again);
            usleep(100000);
        }
    }
    same_answer(&first, &again);
    ac_test_http_resp_free(&first);
    ac_test_http_resp_free(&again);
    assert_int_equal(posted("user:alice:cny"), a0);
    assert_int_equal(evidence_count(), e0);
    free(body);
}

static void old_records_are_swept(void **st)
{
    (void)st;
    ac_test_sql(db_url,
                     "insert into ac_idempotency (caller, method, path, key, fingerprint, status, "
                     "content_type, body, created_us) values ('operator', 'POST', "
                     "'/v1/ledger/transfers', 'ancient', decode(repeat('00', 32), 'hex'), 200, "
                     "'application/json', '{}', 1)");
    int gone = 0;
    for (int i = 0; i < 100 && !gone; i++) {
        gone = sql_int("select count(*) from ac_idempotency where key = 'ancient'") == 0;
        if (!gone) usleep(100000);
    }
    assert_true(gone);
    /* the young ones stay */
    assert_true(sql_int("select count(*) from ac_idempotency where key = 'key-p1'") == 1);
}

static void sigterm_stops_cleanly(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_payflow_stop_cleanly(&srv, 20000);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **st)
{
    (void)st;
    EVP_PKEY **keys[] = {&alice1, &shop1, &llm1, &agent1, &agent2, &bob1, &bobs_agent};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        *keys[i] = ac_sig_keygen(i == 2 ? AC_SIG_ES256 : AC_SIG_ED25519);
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_http_idempotency"));
    const char *env[] = {"AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    if (ac_test_server_start(&srv, "http_idempotency", db_url, TOKEN, env, READY_MS) != 0)
        return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    world();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_server_kill(&srv);
    EVP_PKEY *keys[] = {alice1, shop1, llm1, agent1, agent2, bob1, bobs_agent};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replay_moves_nothing),
        cmocka_unit_test(other_body_is_422),
        cmocka_unit_test(bad_keys_are_400),
        cmocka_unit_test(callers_are_independent),
        cmocka_unit_test(concurrent_duplicates),
        cmocka_unit_test(duplicate_right_after_answer),
        cmocka_unit_test(failed_batch_leaves_no_key),
        cmocka_unit_test(operator_and_document_routes),
        cmocka_unit_test(survives_restart),
        cmocka_unit_test(old_records_are_swept),
        cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
