/* Mandates, payments and step-up end to end: a real `agentclear serve` child on a fresh
 * PostgreSQL database, over HTTP, with real keys, real user-signed documents and real RFC 9421
 * agent signatures.
 * - A mandate is registered (user-signed, no operator token), replayed, refused with another
 *   document under its id; GET shows its spend and headroom.
 * - Payments settle (201, transfer, evidence when the server has a log), replay (200, the same
 *   answer), and refuse another request under the same id (payment_exists).
 * - The concurrency property: 64 concurrent signed payments against a mandate whose total cap
 *   admits exactly k: exactly k settle, every run; the wallet, the mandate's recorded spend and the
 *   settled rows agree.
 * - Step-up: confirm (the hold is posted), a replayed confirmation (already decided), a
 *   confirmation for another payment (mismatch), decline (the hold is voided), and expiry (a
 *   second server with stepup-ttl 2 voids the hold by itself).
 * - Revocation racing with payments (binding and mandate): no payment sent after the
 *   revocation's acknowledgement settles.
 * - Every bad input of the issue answers its 4xx problem code and moves no money.
 * - After a restart everything is still there (replay answers, spend).
 * - The evidence export of it all passes the auditor's offline replay (`agentclear audit replay`,
 *   with --db against the live ledger). */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include <cbor.h>

#include "protocol/binding.h"
#include "protocol/buf.h"
#include "protocol/evidence.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"
#include "protocol/replay.h"
#include "risk/reasons.h"
#include "protocol/sig.h"
#include "protocol/stepup.h"
#include "tests/support/agentsig.h"
#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define TOKEN "e2e-http-payments-operator-token"
#define READY_MS 30000
#define DAY 86400LL

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];
static char keys_env[1100]; /* AGENTCLEAR_KEYS_DIR=<tmp>/keys: checkpoints are signed */
static EVP_PKEY *alice1, *bob1, *shop1, *llm1, *agent1, *agent2, *agent3;

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *call_tok(const char *method, const char *path, const char *json, int want,
                        const char *token)
{
    return ac_test_api_call(&http, method, path, token, json, want);
}

static json_t *call(const char *method, const char *path, const char *json, int want)
{
    return call_tok(method, path, json, want, TOKEN);
}

static void problem_tok(const char *method, const char *path, const char *json, int status,
                        const char *code, const char *token)
{
    ac_test_api_refused(&http, method, path, token, json, status, code);
}

static long long sql_int(const char *q)
{
    return ac_test_sql_int(db_url, q);
}

/* The answer's "evidence" {seq, leaf_hash} names the stored record of this kind about this
 * payment: the leaf hash is the stored leaf, and the record decodes to what was decided. */
static void check_evidence(const json_t *ev, const char *kind, const char *payment,
                           long long amount, const char *mandate_jws)
{
    if (!json_is_object(ev)) fail_msg("no evidence for %s", payment);
    struct ac_ev_record r;
    ac_test_payflow_evidence(db_url, ev, &r);
    assert_string_equal(ac_ev_kind_name(r.kind), kind);
    assert_string_equal(r.body.payment, payment);
    if (amount >= 0) {
        assert_true(r.body.amount.present);
        assert_int_equal(r.body.amount.value, amount);
    }
    if (mandate_jws) {
        uint8_t h[32];
        assert_int_equal(ac_ev_doc_hash(mandate_jws, strlen(mandate_jws), h), 0);
        assert_true(r.body.mandate.present);
        assert_memory_equal(r.body.mandate.hash, h, 32);
    }
    if (strcmp(kind, "payment.settle") == 0 || strcmp(kind, "payment.step_up") == 0) {
        assert_true(r.body.request.present); /* the agent's signed request, verbatim */
        assert_true(r.body.request.base_len > 0);
        assert_int_equal(r.body.ntransfers, 1);
    }
    ac_ev_record_clear(&r);
}

/* Balances of an account in base units (scale 2 strings converted). */
struct bal {
    long long dp, dpo, cp, cpo;
};

static struct bal balance(const char *account)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/accounts/%s", account);
    json_t *j = call("GET", path, NULL, 200);
    struct bal b = {ac_test_cents(ac_test_jstr(j, "debits_pending")),
                    ac_test_cents(ac_test_jstr(j, "debits_posted")),
                    ac_test_cents(ac_test_jstr(j, "credits_pending")),
                    ac_test_cents(ac_test_jstr(j, "credits_posted"))};
    json_decref(j);
    return b;
}

static void same_balance(const char *account, struct bal want, const char *what)
{
    struct bal b = balance(account);
    if (b.dp != want.dp || b.dpo != want.dpo || b.cp != want.cp || b.cpo != want.cpo)
        fail_msg("%s: %s moved (debits %lld/%lld, was %lld/%lld)", what, account, b.dp, b.dpo,
                 want.dp, want.dpo);
}

/* ---- signed payment requests ------------------------------------------------------------------
 */

/* Send body as POST /v1/payments signed by agent on connection c (NULL: the shared one). */
static int pay_raw(struct ac_test_http *c, EVP_PKEY *agent, const char *body,
                   struct ac_test_http_resp *r)
{
    return ac_test_signed_post(c ? c : &http, srv.port, agent, "/v1/payments", body, r);
}

/* A payment that must answer `want`; returns the JSON body. */
static json_t *pay(EVP_PKEY *agent, const char *id, const char *mandate, const char *payee,
                   const char *value, int want)
{
    char *body = ac_test_pay_body(id, mandate, payee, "CNY", value, NULL);
    struct ac_test_http_resp r;
    int st = pay_raw(NULL, agent, body, &r);
    if (st != want) fail_msg("payment %s: expected %d, got %d: %s", id, want, st, r.body);
    json_t *j = ac_test_http_json(&r);
    ac_test_http_resp_free(&r);
    free(body);
    if (j == NULL) fail_msg("payment %s: not json", id);
    return j;
}

/* A payment that must be denied with `reason` among the reasons. */
static void pay_denied(EVP_PKEY *agent, const char *id, const char *mandate, const char *payee,
                       const char *cur, const char *value, const char *reason)
{
    char *body = ac_test_pay_body(id, mandate, payee, cur, value, NULL);
    struct ac_test_http_resp r;
    pay_raw(NULL, agent, body, &r);
    json_t *j = ac_test_api_problem(&r, 422, "payment_denied", id);
    json_t *rs = json_object_get(j, "reasons");
    int found = 0;
    for (size_t i = 0; i < json_array_size(rs); i++)
        if (strcmp(json_string_value(json_array_get(rs, i)), reason) == 0) found = 1;
    if (!found) fail_msg("payment %s: reason %s missing: %s", id, reason, r.body);
    assert_string_equal(ac_test_jstr(json_object_get(j, "payment"), "status"), "denied");
    check_evidence(json_object_get(json_object_get(j, "payment"), "evidence"), "payment.deny", id,
                   -1, NULL);
    json_decref(j);
    ac_test_http_resp_free(&r);
    free(body);
}

static void pay_problem(EVP_PKEY *agent, const char *body, int status, const char *code)
{
    struct ac_test_http_resp r;
    pay_raw(NULL, agent, body, &r);
    json_decref(ac_test_api_problem(&r, status, code, body));
    ac_test_http_resp_free(&r);
}

/* Register a mandate document (reference stolen), expecting `want`. */
static json_t *register_mandate(EVP_PKEY *key, json_t *payload, int want)
{
    char *body = ac_test_signed_body(key, AC_MANDATE_TYP, payload);
    json_t *j = call_tok("POST", "/v1/mandates", body, want, NULL);
    free(body);
    return j;
}

static json_t *mandate_get(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/mandates/%s", id);
    return call("GET", path, NULL, 200);
}

/* The mandate's recorded total spend (base units) and uses. */
static long long mandate_spent(const char *id, long long *uses, long long *held)
{
    json_t *j = mandate_get(id);
    json_t *total = json_object_get(json_object_get(j, "spend"), "total");
    long long v = ac_test_cents(ac_test_jstr(json_object_get(total, "spent"), "value"));
    if (held) *held = ac_test_cents(ac_test_jstr(json_object_get(total, "held"), "value"));
    if (uses) *uses = json_integer_value(json_object_get(json_object_get(j, "spend"), "uses"));
    json_decref(j);
    return v;
}

static void revoke_mandate(const char *id, EVP_PKEY *key, const char *user, int want)
{
    json_t *p = json_pack("{s:i, s:s, s:s, s:I}", "ver", 1, "mandate", id, "iss", user, "iat",
                          (json_int_t)ac_test_now_s());
    char *body = ac_test_signed_body(key, AC_MANDATE_REVOCATION_TYP, p);
    char path[128];
    snprintf(path, sizeof path, "/v1/mandates/%s/revoke", id);
    json_decref(call_tok("POST", path, body, want, NULL));
    free(body);
}

/* ---- setup of the world -----------------------------------------------------------------------
 */

static void register_binding(const char *id, EVP_PKEY *agent, const char *agent_id)
{
    ac_test_payflow_binding(&http, id, alice1, "alice", agent, agent_id);
}

static void world(void)
{
    ac_test_payflow_parties(&http, TOKEN, alice1, bob1, shop1, llm1);
    json_decref(call("POST", "/v1/ledger/accounts",
                     "{\"accounts\":[{\"id\":\"bank:cny\",\"asset\":\"CNY\"},"
                     "{\"id\":\"user:alice:cny\",\"asset\":\"CNY\",\"owner\":\"alice\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]},"
                     "{\"id\":\"merchant:shop:cny\",\"asset\":\"CNY\",\"owner\":\"shop\"},"
                     "{\"id\":\"merchant:llm:cny\",\"asset\":\"CNY\",\"owner\":\"llm\"}]}",
                     200));
    json_decref(call("POST", "/v1/ledger/transfers",
                     "{\"transfers\":[{\"id\":\"fund-alice\",\"debit_account\":\"bank:cny\","
                     "\"credit_account\":\"user:alice:cny\",\"amount\":\"100000.00\","
                     "\"asset\":\"CNY\"}]}",
                     200));
    register_binding("b1", agent1, "agent-a");
}

/* ---- mandates ----------------------------------------------------------------------------------
 */

static void mandates(void **st)
{
    (void)st;
    json_t *p = ac_test_mandate_payload("m1", "alice", "agent-a", "shop", "CNY", "50.00", "L5");
    json_object_set_new(p, "caps", json_pack("{s:s, s:s}", "day", "300.00", "total", "1000.00"));
    char *body = ac_test_signed_body(alice1, AC_MANDATE_TYP, json_incref(p));
    json_t *j = call_tok("POST", "/v1/mandates", body, 201, NULL);
    assert_string_equal(ac_test_jstr(j, "id"), "m1");
    assert_string_equal(ac_test_jstr(j, "user"), "alice");
    assert_string_equal(ac_test_jstr(j, "status"), "active");
    assert_string_equal(ac_test_jstr(j, "signed_by"), ac_test_kid(alice1));
    assert_string_equal(ac_test_jstr(json_object_get(j, "mandate"), "max_per_tx"), "50.00");
    json_t *head = json_object_get(j, "headroom");
    assert_string_equal(ac_test_jstr(json_object_get(head, "day"), "value"), "300.00");
    assert_string_equal(ac_test_jstr(json_object_get(head, "total"), "value"), "1000.00");
    assert_null(json_object_get(head, "week"));
    json_decref(j);
    /* the same document again: 200; another document under the id: 409 */
    json_decref(call_tok("POST", "/v1/mandates", body, 200, NULL));
    free(body);
    json_object_set_new(p, "max_per_tx", json_string("60.00"));
    body = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    problem_tok("POST", "/v1/mandates", body, 409, "mandate_exists", NULL);
    free(body);
    assert_int_equal(sql_int("select count(*) from ac_mandates"), 1);
    problem_tok("GET", "/v1/mandates/m1", NULL, 401, "unauthorized", NULL);
    problem_tok("GET", "/v1/mandates/nope", NULL, 404, "mandate_unknown", TOKEN);
}

/* ---- payments ----------------------------------------------------------------------------------
 */

static void payments(void **st)
{
    (void)st;
    struct bal a0 = balance("user:alice:cny"), s0 = balance("merchant:shop:cny");
    json_t *j = pay(agent1, "p1", "m1", "shop", "12.34", 201);
    assert_string_equal(ac_test_jstr(j, "status"), "settled");
    json_t *dec = json_object_get(j, "decision");
    assert_string_equal(ac_test_jstr(dec, "verdict"), "allow");
    assert_string_equal(ac_test_jstr(dec, "autonomy"), "L5");
    assert_int_equal(json_array_size(json_object_get(dec, "reasons")), 0);
    assert_string_equal(ac_test_jstr(json_object_get(j, "amount"), "value"), "12.34");
    assert_string_equal(ac_test_jstr(j, "payee"), "shop");
    assert_string_equal(ac_test_jstr(j, "mandate"), "m1");
    char transfer[80];
    snprintf(transfer, sizeof transfer, "%s", ac_test_jstr(j, "transfer"));
    assert_true(strlen(transfer) > 3);
    json_t *mj = mandate_get("m1");
    char *m1_jws = strdup(ac_test_jstr(mj, "jws"));
    json_decref(mj);
    check_evidence(json_object_get(j, "evidence"), "payment.settle", "p1", 1234, m1_jws);
    json_decref(j);
    struct bal a1 = balance("user:alice:cny"), s1 = balance("merchant:shop:cny");
    assert_int_equal(a1.dpo - a0.dpo, 1234);
    assert_int_equal(s1.cpo - s0.cpo, 1234);
    /* the transfer is in the ledger */
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/transfers/%s", transfer);
    j = call("GET", path, NULL, 200);
    assert_string_equal(ac_test_jstr(j, "debit_account"), "user:alice:cny");
    assert_string_equal(ac_test_jstr(j, "credit_account"), "merchant:shop:cny");
    json_decref(j);
    /* the same request again: the original answer, nothing moves */
    j = pay(agent1, "p1", "m1", "shop", "12.34", 200);
    assert_string_equal(ac_test_jstr(j, "status"), "settled");
    assert_string_equal(ac_test_jstr(j, "transfer"), transfer);
    check_evidence(json_object_get(j, "evidence"), "payment.settle", "p1", 1234, m1_jws);
    free(m1_jws);
    json_decref(j);
    same_balance("user:alice:cny", a1, "replay");
    /* another request under the same id */
    char *body = ac_test_pay_body("p1", "m1", "shop", "CNY", "12.35", NULL);
    pay_problem(agent1, body, 409, "payment_exists");
    free(body);
    same_balance("user:alice:cny", a1, "payment_exists");
    /* GET (operator) */
    j = call("GET", "/v1/payments/p1", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "status"), "settled");
    assert_string_equal(ac_test_jstr(j, "user"), "alice");
    assert_string_equal(ac_test_jstr(j, "agent"), "agent-a");
    assert_string_equal(ac_test_jstr(j, "binding"), "b1");
    json_decref(j);
    problem_tok("GET", "/v1/payments/nope", NULL, 404, "payment_unknown", TOKEN);
    /* the mandate's spend */
    long long uses;
    assert_int_equal(mandate_spent("m1", &uses, NULL), 1234);
    assert_int_equal(uses, 1);
}

/* ---- the concurrency property -----------------------------------------------------------------
 */

#define NCONC 64
#define KCAP 10

struct conc {
    pthread_barrier_t *bar;
    const char *mandate;
    int run, i;
    int status;
    char code[64];
};

static void *conc_thread(void *arg)
{
    struct conc *c = arg;
    char id[64];
    snprintf(id, sizeof id, "c%d-%d", c->run, c->i);
    char *body = ac_test_pay_body(id, c->mandate, "shop", "CNY", "3.00", NULL);
    struct ac_test_http conn;
    ac_test_http_init(&conn, "127.0.0.1", srv.port, 60000);
    static _Thread_local char hdrs[16384];
    ac_test_agent_headers(agent1, srv.port, "POST", "/v1/payments", body, hdrs, sizeof hdrs);
    pthread_barrier_wait(c->bar);
    struct ac_test_http_resp r;
    c->status = ac_test_http_request(&conn, "POST", "/v1/payments", hdrs, body, strlen(body), &r);
    json_t *j = ac_test_http_json(&r);
    snprintf(c->code, sizeof c->code, "%s",
             j ? ac_test_jstr(j, c->status == 201 ? "status" : "code") : "");
    json_decref(j);
    ac_test_http_resp_free(&r);
    ac_test_http_close(&conn);
    free(body);
    return NULL;
}

static void concurrency(void **st)
{
    (void)st;
    for (int run = 0; run < 3; run++) {
        char mid[32];
        snprintf(mid, sizeof mid, "mc%d", run);
        json_t *p = ac_test_mandate_payload(mid, "alice", "agent-a", "shop", "CNY", "5.00", "L5");
        char cap[16];
        snprintf(cap, sizeof cap, "%d.00", 3 * KCAP); /* exactly KCAP payments of 3.00 */
        json_object_set_new(p, "caps", json_pack("{s:s}", "total", cap));
        json_decref(register_mandate(alice1, p, 201));
        struct bal a0 = balance("user:alice:cny");
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, NCONC);
        pthread_t th[NCONC];
        struct conc cs[NCONC];
        for (int i = 0; i < NCONC; i++) {
            cs[i] = (struct conc){.bar = &bar, .mandate = mid, .run = run, .i = i};
            assert_int_equal(pthread_create(&th[i], NULL, conc_thread, &cs[i]), 0);
        }
        for (int i = 0; i < NCONC; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        int settled = 0, denied = 0;
        for (int i = 0; i < NCONC; i++) {
            if (cs[i].status == 201 && strcmp(cs[i].code, "settled") == 0)
                settled++;
            else if (cs[i].status == 422 && strcmp(cs[i].code, "payment_denied") == 0)
                denied++;
            else
                fail_msg("run %d payment %d: %d %s", run, i, cs[i].status, cs[i].code);
        }
        assert_int_equal(settled, KCAP);
        assert_int_equal(denied, NCONC - KCAP);
        struct bal a1 = balance("user:alice:cny");
        assert_int_equal(a1.dpo - a0.dpo, 300 * KCAP);
        assert_int_equal(a1.dp, a0.dp);
        long long uses, held;
        assert_int_equal(mandate_spent(mid, &uses, &held), 300 * KCAP);
        assert_int_equal(uses, KCAP);
        assert_int_equal(held, 0);
        char q[160];
        snprintf(q, sizeof q,
                 "select count(*) from ac_payments where mandate_id = '%s' and status = 'settled'",
                 mid);
        assert_int_equal(sql_int(q), KCAP);
        snprintf(q, sizeof q,
                 "select count(*) from ac_payments where mandate_id = '%s' and status = 'denied' "
                 "and reasons = 'cap_total_exceeded'",
                 mid);
        assert_int_equal(sql_int(q), NCONC - KCAP);
    }
}

/* ---- step-up ------------------------------------------------------------------------------------
 */

/* A step-up payment of value under mandate mid: returns the payment answer (201, pending). */
static json_t *stepup_payment(const char *id, const char *mid, const char *value)
{
    json_t *j = pay(agent1, id, mid, "shop", value, 201);
    assert_string_equal(ac_test_jstr(j, "status"), "pending_confirmation");
    assert_string_equal(ac_test_jstr(json_object_get(j, "decision"), "verdict"), "step_up");
    json_t *az = json_object_get(j, "authorization");
    if (az == NULL) fail_msg("no authorization in %s", id);
    assert_string_equal(ac_test_jstr(az, "status"), "pending");
    assert_int_equal(strlen(ac_test_jstr(az, "id")), 25); /* az_ + 22 base64url (128 bits) */
    check_evidence(json_object_get(j, "evidence"), "payment.step_up", id, -1, NULL);
    return j;
}

/* POST /v1/authorizations/{az}/{action} with the confirmation signed by key over p. */
static struct ac_test_http_resp answer(const char *az, const char *action, EVP_PKEY *key, json_t *p)
{
    char *body = ac_test_signed_body(key, AC_CONFIRMATION_TYP, p);
    char path[160];
    snprintf(path, sizeof path, "/v1/authorizations/%s/%s", az, action);
    struct ac_test_http_resp r;
    ac_test_http_api(&http, "POST", path, NULL, body, &r);
    free(body);
    return r;
}

static void stepup(void **st)
{
    (void)st;
    json_t *p = ac_test_mandate_payload("ms", "alice", "agent-a", "shop", "CNY", "50.00", "L4");
    json_object_set_new(p, "step_up_above", json_string("5.00"));
    json_decref(register_mandate(alice1, p, 201));
    struct bal a0 = balance("user:alice:cny");

    /* below the threshold: settles */
    json_decref(pay(agent1, "s0", "ms", "shop", "5.00", 201));
    /* above: held, with a challenge */
    json_t *j = stepup_payment("s1", "ms", "8.00");
    json_t *az = json_object_get(j, "authorization");
    json_t *ch = json_object_get(az, "challenge");
    char az1[64];
    snprintf(az1, sizeof az1, "%s", ac_test_jstr(az, "id"));
    assert_string_equal(ac_test_jstr(ch, "authorization"), az1);
    assert_string_equal(ac_test_jstr(json_object_get(ch, "payment"), "payer"), "alice");
    assert_string_equal(
        ac_test_jstr(json_object_get(json_object_get(ch, "payment"), "amount"), "value"), "8.00");
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "decision"), "reasons")),
                     1);
    struct bal a1 = balance("user:alice:cny");
    assert_int_equal(a1.dp - a0.dp, 800);
    assert_int_equal(a1.dpo - a0.dpo, 500);
    long long held;
    mandate_spent("ms", NULL, &held);
    assert_int_equal(held, 800);
    char path[160];
    snprintf(path, sizeof path, "/v1/authorizations/%s", az1);
    json_t *g = call_tok("GET", path, NULL, 200, NULL);
    assert_string_equal(ac_test_jstr(g, "status"), "pending");
    assert_string_equal(ac_test_jstr(g, "payment"), "s1");
    json_decref(g);

    /* a confirmation signed by someone else's key, and one posted to the wrong endpoint */
    struct ac_test_http_resp r =
        answer(az1, "confirm", bob1, ac_test_confirmation_payload(ch, "confirm"));
    json_decref(ac_test_api_problem(&r, 401, "jws_key_unknown", "bob's confirmation"));
    ac_test_http_resp_free(&r);
    r = answer(az1, "decline", alice1, ac_test_confirmation_payload(ch, "confirm"));
    json_decref(ac_test_api_problem(&r, 400, "confirmation_invalid", "confirm sent to decline"));
    ac_test_http_resp_free(&r);
    same_balance("user:alice:cny", a1, "refused confirmations");

    /* confirm: the hold is posted */
    json_t *conf1 = ac_test_confirmation_payload(ch, "confirm");
    r = answer(az1, "confirm", alice1, json_incref(conf1));
    if (r.status != 200) fail_msg("confirm: %d %s", r.status, r.body);
    json_t *c = ac_test_http_json(&r);
    assert_string_equal(ac_test_jstr(json_object_get(c, "payment"), "status"), "settled");
    assert_string_equal(ac_test_jstr(json_object_get(c, "authorization"), "status"), "confirmed");
    check_evidence(json_object_get(json_object_get(c, "authorization"), "evidence"),
                   "payment.confirm", "s1", 800, NULL);
    json_decref(c);
    ac_test_http_resp_free(&r);
    struct bal a2 = balance("user:alice:cny");
    assert_int_equal(a2.dp, a0.dp);
    assert_int_equal(a2.dpo - a0.dpo, 1300);
    long long spent = mandate_spent("ms", NULL, &held);
    assert_int_equal(spent, 1300);
    assert_int_equal(held, 0);
    /* replayed: already decided, settles nothing more */
    r = answer(az1, "confirm", alice1, json_incref(conf1));
    json_decref(
        ac_test_api_problem(&r, 409, "authorization_already_decided", "replayed confirmation"));
    ac_test_http_resp_free(&r);
    same_balance("user:alice:cny", a2, "replayed confirmation");

    /* a second step-up; the first one's confirmation does not answer it */
    json_t *j2 = stepup_payment("s2", "ms", "9.00");
    json_t *az2o = json_object_get(j2, "authorization");
    char az2[64];
    snprintf(az2, sizeof az2, "%s", ac_test_jstr(az2o, "id"));
    struct bal a3 = balance("user:alice:cny");
    r = answer(az2, "confirm", alice1, json_incref(conf1));
    json_decref(
        ac_test_api_problem(&r, 422, "authorization_mismatch", "confirmation for another payment"));
    ac_test_http_resp_free(&r);
    /* its own id but the other payment's nonce and digest */
    json_t *forged = json_incref(conf1);
    json_object_set_new(forged, "authorization", json_string(az2));
    r = answer(az2, "confirm", alice1, forged);
    json_decref(ac_test_api_problem(&r, 422, "authorization_mismatch", "other payment's nonce"));
    ac_test_http_resp_free(&r);
    same_balance("user:alice:cny", a3, "mismatched confirmations");
    /* decline: the hold is voided, the spend released */
    r = answer(az2, "decline", alice1,
               ac_test_confirmation_payload(json_object_get(az2o, "challenge"), "decline"));
    if (r.status != 200) fail_msg("decline: %d %s", r.status, r.body);
    c = ac_test_http_json(&r);
    assert_string_equal(ac_test_jstr(json_object_get(c, "payment"), "status"), "declined");
    assert_string_equal(ac_test_jstr(json_object_get(c, "authorization"), "status"), "declined");
    check_evidence(json_object_get(json_object_get(c, "authorization"), "evidence"),
                   "payment.decline", "s2", 900, NULL);
    json_decref(c);
    ac_test_http_resp_free(&r);
    same_balance("user:alice:cny", a2, "declined");
    spent = mandate_spent("ms", NULL, &held);
    assert_int_equal(spent, 1300);
    assert_int_equal(held, 0);
    json_t *pg = call("GET", "/v1/payments/s2", NULL, 200);
    assert_string_equal(ac_test_jstr(pg, "status"), "declined");
    json_decref(pg);
    pg = pay(agent1, "s2", "ms", "shop", "9.00", 200); /* the agent's view: as it stands now */
    assert_string_equal(ac_test_jstr(pg, "status"), "declined");
    assert_string_equal(ac_test_jstr(json_object_get(pg, "authorization"), "status"), "declined");
    json_decref(pg);
    /* the declined one cannot be confirmed afterwards */
    r = answer(az2, "confirm", alice1,
               ac_test_confirmation_payload(json_object_get(az2o, "challenge"), "confirm"));
    json_decref(
        ac_test_api_problem(&r, 409, "authorization_already_decided", "confirm after decline"));
    ac_test_http_resp_free(&r);
    same_balance("user:alice:cny", a2, "confirm after decline");
    problem_tok("GET", "/v1/authorizations/az_nope", NULL, 404, "authorization_unknown", NULL);
    json_decref(conf1);
    json_decref(j);
    json_decref(j2);
}

/* ---- bad input ----------------------------------------------------------------------------------
 */

static void bad_input(void **st)
{
    (void)st;
    struct bal a0 = balance("user:alice:cny");
    long long mandates0 = sql_int("select count(*) from ac_mandates");
    /* mandates: malformed, forged signature, someone else's key, bad payload, unknown asset,
     * expired */
    problem_tok("POST", "/v1/mandates", "{\"jws\":\"abc\"}", 400, "jws_malformed", NULL);
    problem_tok("POST", "/v1/mandates", "{\"jwt\":\"abc\"}", 400, "json_schema", NULL);
    json_t *p = ac_test_mandate_payload("mx", "alice", "agent-a", "shop", "CNY", "5.00", "L5");
    char *jws = ac_test_sign_doc(alice1, AC_MANDATE_TYP, p, NULL);
    char *dot = strrchr(jws, '.');
    dot[1] = dot[1] == 'A' ? 'B' : 'A'; /* the signature no longer verifies */
    char *body = ac_test_jws_body(jws);
    problem_tok("POST", "/v1/mandates", body, 401, "jws_bad_signature", NULL);
    free(body);
    free(jws);
    body = ac_test_signed_body(bob1, AC_MANDATE_TYP, json_incref(p)); /* iss alice, bob's key */
    problem_tok("POST", "/v1/mandates", body, 401, "jws_key_unknown", NULL);
    free(body);
    json_t *q = json_deep_copy(p);
    json_object_set_new(q, "surprise", json_true());
    body = ac_test_signed_body(alice1, AC_MANDATE_TYP, q);
    problem_tok("POST", "/v1/mandates", body, 400, "mandate_invalid", NULL);
    free(body);
    q = json_deep_copy(p);
    json_object_set_new(q, "asset", json_string("XYZ"));
    body = ac_test_signed_body(alice1, AC_MANDATE_TYP, q);
    problem_tok("POST", "/v1/mandates", body, 404, "asset_unknown", NULL);
    free(body);
    q = json_deep_copy(p);
    json_object_set_new(q, "nbf", json_integer(ac_test_now_s() - 100));
    json_object_set_new(q, "exp", json_integer(ac_test_now_s() - 10));
    body = ac_test_signed_body(alice1, AC_MANDATE_TYP, q);
    problem_tok("POST", "/v1/mandates", body, 422, "mandate_expired", NULL);
    free(body);
    body = ac_test_signed_body(alice1, AC_BINDING_TYP,
                               json_incref(p)); /* a mandate signed as a binding */
    problem_tok("POST", "/v1/mandates", body, 400, "mandate_invalid", NULL);
    free(body);
    json_decref(p);
    assert_int_equal(sql_int("select count(*) from ac_mandates"), mandates0);

    /* payments: shape, amounts, unknowns, unsigned */
    long long pays0 = sql_int("select count(*) from ac_payments");
    pay_problem(agent1, "{\"id\":\"x1\"}", 400, "json_schema");
    pay_problem(agent1,
                "{\"id\":\"x1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{"
                "\"currency\":\"CNY\",\"value\":\"1.234\"}}",
                400, "amount_precision");
    pay_problem(agent1,
                "{\"id\":\"x1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{"
                "\"currency\":\"CNY\",\"value\":\"-1\"}}",
                400, "amount_negative");
    pay_problem(agent1,
                "{\"id\":\"x1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{"
                "\"currency\":\"CNY\",\"value\":\"0\"}}",
                400, "amount_zero");
    pay_problem(agent1,
                "{\"id\":\"x1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{"
                "\"currency\":\"CNY\",\"value\":1}}",
                400, "json_schema");
    pay_problem(agent1,
                "{\"id\":\"x 1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{"
                "\"currency\":\"CNY\",\"value\":\"1\"}}",
                400, "id_invalid");
    pay_problem(agent1,
                "{\"id\":\"x1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"op\":\"steal\","
                "\"amount\":{\"currency\":\"CNY\",\"value\":\"1\"}}",
                400, "parameter_invalid");
    /* a top-up is never half a pair: POST /v1/topups, not a fiat-only payment */
    pay_problem(agent1,
                "{\"id\":\"x1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"op\":\"topup\","
                "\"amount\":{\"currency\":\"CNY\",\"value\":\"1\"}}",
                400, "parameter_invalid");
    pay_problem(agent1,
                "{\"id\":\"x1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{"
                "\"currency\":\"EUR\",\"value\":\"1\"}}",
                404, "asset_unknown");
    body = ac_test_pay_body("x1", "nope", "shop", "CNY", "1.00", NULL);
    pay_problem(agent1, body, 404, "mandate_unknown");
    free(body);
    body = ac_test_pay_body("x1", "m1", "nobody", "CNY", "1.00", NULL);
    pay_problem(agent1, body, 404, "merchant_unknown");
    free(body);
    body = ac_test_pay_body("x1", "m1", "shop", "CNY", "1.00", NULL);
    struct ac_test_http_resp r;
    ac_test_http_request(&http, "POST", "/v1/payments", "Content-Type: application/json\r\n", body,
                         strlen(body), &r);
    json_decref(ac_test_api_problem(&r, 401, "sig_missing", "unsigned payment"));
    ac_test_http_resp_free(&r);
    /* an unbound key */
    pay_problem(agent3, body, 401, "sig_key_unknown");
    free(body);
    assert_int_equal(sql_int("select count(*) from ac_payments"), pays0);

    /* decided and denied, with their reasons and an evidence record when the log exists */
    pay_denied(agent1, "x2", "m1", "shop", "USD", "1.00", "asset_mismatch");
    pay_denied(agent1, "x3", "m1", "shop", "CNY", "50.01", "amount_above_max_per_tx");
    pay_denied(agent1, "x4", "m1", "llm", "CNY", "1.00", "payee_not_allowed");
    /* a day cap: 300.00; spend it up to 299.00 then ask 1.01 more */
    long long day = 0;
    for (int i = 0; day < 29900 - 5000; i++) {
        char id[32];
        snprintf(id, sizeof id, "d%d", i);
        json_decref(pay(agent1, id, "m1", "shop", "50.00", 201));
        day += 5000;
    }
    json_t *mj = mandate_get("m1");
    long long day_spent = ac_test_cents(ac_test_jstr(
        json_object_get(json_object_get(json_object_get(mj, "spend"), "day"), "spent"), "value"));
    json_decref(mj);
    char left[32];
    snprintf(left, sizeof left, "%lld.%02lld", (30000 - day_spent) / 100,
             (30000 - day_spent) % 100);
    struct bal a1 = balance("user:alice:cny");
    char over[32];
    snprintf(over, sizeof over, "%lld.%02lld", (30000 - day_spent + 1) / 100,
             (30000 - day_spent + 1) % 100);
    pay_denied(agent1, "x5", "m1", "shop", "CNY", over, "cap_day_exceeded");
    same_balance("user:alice:cny", a1, "cap_day_exceeded");
    /* exactly at the cap: allowed */
    json_decref(pay(agent1, "x6", "m1", "shop", left, 201));
    a1 = balance("user:alice:cny");
    pay_denied(agent1, "x7", "m1", "shop", "CNY", "0.01", "cap_day_exceeded");
    /* use after revoke */
    json_t *rp = ac_test_mandate_payload("mr", "alice", "agent-a", "shop", "CNY", "5.00", "L5");
    json_decref(register_mandate(alice1, rp, 201));
    revoke_mandate("mr", bob1, "alice", 401); /* not alice's key */
    revoke_mandate("mr", alice1, "alice", 200);
    revoke_mandate("mr", alice1, "alice", 200); /* idempotent */
    json_t *mg = mandate_get("mr");
    assert_string_equal(ac_test_jstr(mg, "status"), "revoked");
    json_decref(mg);
    pay_denied(agent1, "x8", "mr", "shop", "CNY", "1.00", "mandate_revoked");
    /* use after expiry */
    json_t *ep = ac_test_mandate_payload("me", "alice", "agent-a", "shop", "CNY", "5.00", "L5");
    int64_t exp = ac_test_now_s() + 2;
    json_object_set_new(ep, "exp", json_integer(exp));
    json_decref(register_mandate(alice1, ep, 201));
    while (ac_test_now_s() < exp + 1)
        usleep(200000);
    pay_denied(agent1, "x9", "me", "shop", "CNY", "1.00", "mandate_expired");
    same_balance("user:alice:cny", a1, "denied payments");
    /* a denied payment replays as denied */
    pay_denied(agent1, "x8", "mr", "shop", "CNY", "1.00", "mandate_revoked");
    (void)a0;
}

/* ---- revocation racing with payments ------------------------------------------------------------
 */

#define NRACE 4

static atomic_int race_stop;
static _Atomic long long ack_ns; /* CLOCK_MONOTONIC of the revocation's acknowledgement, 0 before */

struct racer {
    EVP_PKEY *agent;
    const char *mandate;
    const char *prefix;
    int n;
    int settled_after_ack;
    int settled;
    long long settled_cents;
    int other;
    char other_what[256];
};

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *racer_thread(void *arg)
{
    struct racer *x = arg;
    struct ac_test_http conn;
    ac_test_http_init(&conn, "127.0.0.1", srv.port, 60000);
    for (int i = 0; !atomic_load(&race_stop) && i < 2000; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%d", x->prefix, i);
        char *body = ac_test_pay_body(id, x->mandate, "shop", "CNY", "0.01", NULL);
        struct ac_test_http_resp r;
        long long acked_before = atomic_load(&ack_ns);
        int st = pay_raw(&conn, x->agent, body, &r);
        json_t *j = ac_test_http_json(&r);
        if (st == 201 && strcmp(ac_test_jstr(j, "status"), "settled") == 0) {
            x->settled++;
            x->settled_cents += 1;
            if (acked_before) x->settled_after_ack++;
        } else if (!(st == 422 && strcmp(ac_test_jstr(j, "code"), "payment_denied") == 0) &&
                   !(st == 401 && strcmp(ac_test_jstr(j, "code"), "binding_revoked") == 0)) {
            x->other++;
            snprintf(x->other_what, sizeof x->other_what, "%d %s", st, r.body);
        }
        json_decref(j);
        ac_test_http_resp_free(&r);
        free(body);
        x->n++;
    }
    ac_test_http_close(&conn);
    return NULL;
}

/* Run NRACE payers against mandate `mid` with `agent` while `revoke` runs on this thread. */
static void race(EVP_PKEY *agent, const char *mid, const char *prefix, void (*revoke)(void))
{
    struct bal a0 = balance("user:alice:cny");
    atomic_store(&race_stop, 0);
    atomic_store(&ack_ns, 0);
    pthread_t th[NRACE];
    struct racer xs[NRACE];
    char prefixes[NRACE][32];
    for (int i = 0; i < NRACE; i++) {
        snprintf(prefixes[i], sizeof prefixes[i], "%s%d", prefix, i);
        xs[i] = (struct racer){.agent = agent, .mandate = mid, .prefix = prefixes[i]};
        assert_int_equal(pthread_create(&th[i], NULL, racer_thread, &xs[i]), 0);
    }
    usleep(300000);
    revoke();
    atomic_store(&ack_ns, mono_ns()); /* the revocation is acknowledged */
    usleep(500000);
    atomic_store(&race_stop, 1);
    long long settled = 0;
    for (int i = 0; i < NRACE; i++) {
        pthread_join(th[i], NULL);
        if (xs[i].other) fail_msg("racer %d: unexpected answer %s", i, xs[i].other_what);
        assert_int_equal(xs[i].settled_after_ack, 0);
        settled += xs[i].settled_cents;
    }
    struct bal a1 = balance("user:alice:cny");
    assert_int_equal(a1.dpo - a0.dpo, settled);
    char q[200];
    snprintf(q, sizeof q,
             "select count(*) from ac_payments where mandate_id = '%s' and status = 'settled'",
             mid);
    assert_int_equal(sql_int(q), settled);
}

static void revoke_b2(void)
{
    json_t *p = ac_test_revocation_payload("b2", "alice", ac_test_now_s());
    char *body = ac_test_signed_body(alice1, AC_REVOCATION_TYP, p);
    json_decref(call_tok("POST", "/v1/bindings/b2/revoke", body, 200, NULL));
    free(body);
}

static void revoke_mrace(void)
{
    revoke_mandate("mrace", alice1, "alice", 200);
}

static void revocation_race(void **st)
{
    (void)st;
    register_binding("b2", agent2, "agent-b");
    json_t *p = ac_test_mandate_payload("mb2", "alice", "agent-b", "shop", "CNY", "5.00", "L5");
    json_decref(register_mandate(alice1, p, 201));
    race(agent2, "mb2", "rb", revoke_b2);
    p = ac_test_mandate_payload("mrace", "alice", "agent-a", "shop", "CNY", "5.00", "L5");
    json_decref(register_mandate(alice1, p, 201));
    race(agent1, "mrace", "rm", revoke_mrace);
}

/* ---- expiry (a server with a 2-second challenge) ------------------------------------------------
 */

static void expiry(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 20000), 0);
    static struct ac_test_server shortttl; /* static: the support library keeps its env copies */
    const char *env[] = {"AGENTCLEAR_STEPUP_TTL=2", keys_env, "AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    assert_int_equal(
        ac_test_server_start(&shortttl, "payments_short_ttl", db_url, TOKEN, env, READY_MS), 0);
    unsigned port = srv.port;
    srv.port = shortttl.port; /* the helpers sign for srv.port */
    ac_test_http_init(&http, "127.0.0.1", shortttl.port, 20000);
    struct bal a0 = balance("user:alice:cny");
    json_t *j = stepup_payment("e1", "ms", "7.00");
    json_t *az = json_object_get(j, "authorization");
    char path[160];
    snprintf(path, sizeof path, "/v1/authorizations/%s", ac_test_jstr(az, "id"));
    json_t *conf = ac_test_confirmation_payload(json_object_get(az, "challenge"), "confirm");
    /* nobody confirms: the server voids the hold by itself */
    int expired = 0;
    for (int i = 0; i < 300 && !expired; i++) {
        json_t *g = call_tok("GET", path, NULL, 200, NULL);
        expired = strcmp(ac_test_jstr(g, "status"), "expired") == 0;
        json_decref(g);
        if (!expired) usleep(100000);
    }
    assert_true(expired);
    json_t *pg = call("GET", "/v1/payments/e1", NULL, 200);
    assert_string_equal(ac_test_jstr(pg, "status"), "expired");
    json_decref(pg);
    json_t *ag = call_tok("GET", path, NULL, 200, NULL);
    check_evidence(json_object_get(ag, "evidence"), "payment.expire", "e1", 700, NULL);
    json_decref(ag);
    same_balance("user:alice:cny", a0, "expired hold");
    long long held;
    mandate_spent("ms", NULL, &held);
    assert_int_equal(held, 0);
    struct ac_test_http_resp r = answer(ac_test_jstr(az, "id"), "confirm", alice1, conf);
    json_decref(ac_test_api_problem(&r, 410, "authorization_expired", "confirm after expiry"));
    ac_test_http_resp_free(&r);
    same_balance("user:alice:cny", a0, "confirm after expiry");
    json_decref(j);
    /* back to the normal server */
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&shortttl, 20000), 0);
    srv.port = port;
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
}

/* ---- restart
 * ------------------------------------------------------------------------------------- */

static void restart_keeps_everything(void **st)
{
    (void)st;
    long long spent = mandate_spent("m1", NULL, NULL);
    struct bal a0 = balance("user:alice:cny");
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 20000), 0);
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    assert_int_equal(mandate_spent("m1", NULL, NULL), spent);
    json_t *j = pay(agent1, "p1", "m1", "shop", "12.34", 200); /* the original answer */
    assert_string_equal(ac_test_jstr(j, "status"), "settled");
    json_decref(j);
    char *body = ac_test_pay_body("p1", "m1", "shop", "CNY", "1.00", NULL);
    pay_problem(agent1, body, 409, "payment_exists");
    free(body);
    pay_denied(agent1, "x8", "mr", "shop", "CNY", "1.00", "mandate_revoked");
    same_balance("user:alice:cny", a0, "restart");
    /* and still works */
    json_decref(pay(agent1, "after-restart", "m1", "llm", "1.00", 422));
}

/* The rows ac_nonces holds for the nonce in the signed headers h (Signature-Input's nonce="...";
 * our signer's nonces are base64url, nothing to quote). */
static long long nonce_rows(const char *h)
{
    const char *p = strstr(h, "nonce=\"");
    assert_non_null(p);
    p += strlen("nonce=\"");
    const char *e = strchr(p, '"');
    assert_non_null(e);
    char q[512];
    snprintf(q, sizeof q, "select count(*) from ac_nonces where nonce = '%.*s'", (int)(e - p), p);
    return ac_test_sql_int(db_url, q);
}

/* Send the signed headers h with body on c; with code, the answer must be that 401 problem. */
static int send_signed(struct ac_test_http *c, const char *h, const char *body, const char *code)
{
    struct ac_test_http_resp r;
    int st = ac_test_http_request(c, "POST", "/v1/payments", h, body, strlen(body), &r);
    if (code) json_decref(ac_test_api_problem(&r, 401, code, body));
    ac_test_http_resp_free(&r);
    return st;
}

/* A payment's nonce is recorded with its batch (the sequencer); the nonce of a payment refused
 * before the sequencer, by the nonce writer. Once the server restarted, with nothing of its
 * replay cache's memory left but what its sequencer loaded from the table, neither request
 * executes when sent again: the first is refused as a replay; so is the second, although what
 * refused it at first (its mandate did not exist) has changed meanwhile. */
static void nonces_outlive_a_restart(void **st)
{
    (void)st;
    char *ok_body = ac_test_pay_body("nonce-1", "m1", "shop", "CNY", "0.01", NULL);
    char *late_body = ac_test_pay_body("nonce-2", "m-late", "shop", "CNY", "0.01", NULL);
    static char h_ok[16384], h_late[16384];
    ac_test_agent_headers(agent1, srv.port, "POST", "/v1/payments", ok_body, h_ok, sizeof h_ok);
    ac_test_agent_headers(agent1, srv.port, "POST", "/v1/payments", late_body, h_late,
                          sizeof h_late);
    /* one more with an Idempotency-Key (not covered by the signature) */
    char *idem_body = ac_test_pay_body("nonce-3", "m1", "shop", "CNY", "0.01", NULL);
    static char h_idem[16384];
    ac_test_agent_headers(agent1, srv.port, "POST", "/v1/payments", idem_body, h_idem,
                          sizeof h_idem);
    strcat(h_idem, "Idempotency-Key: nonce-k3\r\n");
    int st_idem = send_signed(&http, h_idem, idem_body, NULL);
    if (st_idem != 201 && st_idem != 422) fail_msg("payment nonce-3: %d", st_idem);
    /* through the sequencer: settled, or denied by m1's caps, either way decided there */
    int st_ok = send_signed(&http, h_ok, ok_body, NULL);
    if (st_ok != 201 && st_ok != 422) fail_msg("payment nonce-1: %d", st_ok);
    assert_int_equal(nonce_rows(h_ok), 1); /* committed with it */
    /* refused before the sequencer (no such mandate): its nonce is queued for the writer */
    assert_int_equal(send_signed(&http, h_late, late_body, NULL), 404);
    for (int i = 0; i < 100 && nonce_rows(h_late) == 0; i++)
        usleep(50000);
    assert_int_equal(nonce_rows(h_late), 1);
    /* the mandate it named exists now */
    json_t *p = ac_test_mandate_payload("m-late", "alice", "agent-a", "shop", "CNY", "50.00", "L5");
    json_decref(register_mandate(alice1, p, 201));
    /* again, same process: memory refuses both */
    send_signed(&http, h_ok, ok_body, "sig_replayed");
    send_signed(&http, h_late, late_body, "sig_replayed");
    /* a new process: its sequencer loaded the live nonces into the replay cache on becoming
     * leader, so memory refuses all three before anything else (sent with the Host they were
     * signed for: the restarted server listens on another port) */
    unsigned signed_port = srv.port;
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 20000), 0);
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    struct ac_test_http old;
    ac_test_http_init(&old, "127.0.0.1", srv.port, 20000);
    old.host_port = signed_port;
    send_signed(&old, h_ok, ok_body, "sig_replayed");
    send_signed(&old, h_late, late_body, "sig_replayed");
    /* the key's stored answer is not shown to a replay either */
    send_signed(&old, h_idem, idem_body, "sig_replayed");
    ac_test_http_close(&old);
    /* freshly signed with the same key: the stored answer */
    ac_test_agent_headers(agent1, srv.port, "POST", "/v1/payments", idem_body, h_idem,
                          sizeof h_idem);
    strcat(h_idem, "Idempotency-Key: nonce-k3\r\n");
    struct ac_test_http_resp ir;
    assert_int_equal(ac_test_http_request(&http, "POST", "/v1/payments", h_idem, idem_body,
                                          strlen(idem_body), &ir),
                     st_idem);
    char replayed[16];
    assert_int_equal(ac_test_http_header(&ir, "Idempotent-Replayed", replayed, sizeof replayed), 1);
    assert_string_equal(replayed, "true");
    ac_test_http_resp_free(&ir);
    free(idem_body);
    struct ac_test_http_resp m;
    assert_int_equal(ac_test_http_request(&http, "GET", "/metrics", NULL, NULL, 0, &m), 200);
    /* memory knew them (loaded: at least these three), so nothing reached the sequencer */
    const char *loaded = strstr(m.body, "\nagentclear_nonces_loaded_total ");
    if (loaded == NULL || atoll(loaded + strlen("\nagentclear_nonces_loaded_total ")) < 3 ||
        strstr(m.body, "\nagentclear_nonces_replayed_total 0\n") == NULL)
        fail_msg("metrics: want agentclear_nonces_loaded_total >= 3 and "
                 "agentclear_nonces_replayed_total 0 in:\n%s",
                 m.body);
    ac_test_http_resp_free(&m);
    assert_int_equal(sql_int("select count(*) from ac_payments where id = 'nonce-1'"), 1);
    assert_int_equal(sql_int("select count(*) from ac_payments where id = 'nonce-2'"), 0);
    /* what refused them was the nonce: freshly signed, the second settles now */
    json_decref(pay(agent1, "nonce-2", "m-late", "shop", "0.01", 201));
    free(ok_body);
    free(late_body);
}

/* ---- mandates scoped by the payee's category ---------------------------------------------------
 */

/* A mandate that admits payees by their registered category only: the server decides with the
 * payee's category (llm: llm-inference; shop: books) and records it, so the auditor recomputes
 * these decisions too (audit_replay: none is "not recomputable"). */
static void category_scope(void **st)
{
    (void)st;
    json_t *p = ac_test_mandate_payload("mcat", "alice", "agent-a", "shop", "CNY", "50.00", "L5");
    json_object_set_new(p, "payees", json_pack("{s:[s]}", "categories", "llm-inference"));
    json_decref(register_mandate(alice1, p, 201));
    p = ac_test_mandate_payload("mcat3", "alice", "agent-a", "shop", "CNY", "50.00", "L3");
    json_object_set_new(p, "payees", json_pack("{s:[s]}", "categories", "llm-inference"));
    json_decref(register_mandate(alice1, p, 201));
    /* in scope by category: settles, and the record carries the category it was decided with */
    json_t *j = pay(agent1, "pc1", "mcat", "llm", "2.00", 201);
    assert_string_equal(ac_test_jstr(j, "status"), "settled");
    struct ac_ev_record r;
    ac_test_payflow_evidence(db_url, json_object_get(j, "evidence"), &r);
    assert_string_equal(ac_ev_kind_name(r.kind), "payment.settle");
    assert_non_null(r.body.category);
    assert_string_equal(r.body.category, "llm-inference");
    ac_ev_record_clear(&r);
    json_decref(j);
    /* another category: denied */
    pay_denied(agent1, "pc2", "mcat", "shop", "CNY", "2.00", "payee_not_allowed");
    /* L3: a payee admitted only by its category steps up */
    j = pay(agent1, "pc3", "mcat3", "llm", "2.00", 201);
    assert_string_equal(ac_test_jstr(j, "status"), "pending_confirmation");
    check_evidence(json_object_get(j, "evidence"), "payment.step_up", "pc3", 200, NULL);
    json_decref(j);
}

/* Rewrite an export, re-encoding one record validly and re-chaining every later one (prev
 * recomputed); documents, keys and checkpoints are copied as they are. category 0: the first
 * payment.deny whose reason is a risk reason gets another risk reason; 1: payment pc1's settle
 * record says the payee's category is "books". *seq: the tampered record. 0 or -1. */
static int tamper_decision(const uint8_t *in, size_t n, struct ac_buf *out, uint64_t *seq,
                           int category)
{
    size_t off = 0;
    int done = 0;
    uint8_t prev[32];
    while (off < n) {
        struct cbor_load_result res;
        cbor_item_t *it = cbor_load(in + off, n - off, &res);
        if (it == NULL) return -1;
        size_t used = res.read;
        struct cbor_pair *pr =
            cbor_isa_map(it) && cbor_map_size(it) == 1 ? cbor_map_handle(it) : NULL;
        int is_rec = pr && cbor_isa_string(pr[0].key) && cbor_string_length(pr[0].key) == 6 &&
                     memcmp(cbor_string_handle(pr[0].key), "record", 6) == 0 &&
                     cbor_isa_bytestring(pr[0].value);
        struct ac_ev_record r;
        char err[200];
        if (!is_rec ||
            ac_ev_record_decode(cbor_bytestring_handle(pr[0].value),
                                cbor_bytestring_length(pr[0].value), &r, err, sizeof err) != 0) {
            if (is_rec) {
                cbor_decref(&it);
                return -1;
            }
            ac_buf_add(out, in + off, used);
        } else {
            const char *swapped[1];
            int touch = done;
            if (!done && category && r.kind == AC_EV_PAYMENT_SETTLE &&
                strcmp(r.body.payment, "pc1") == 0) {
                r.body.category = "books";
                *seq = r.seq;
                done = touch = 1;
            } else if (!done && !category && r.kind == AC_EV_PAYMENT_DENY && r.body.nreasons == 1 &&
                       ac_reason_from_code(r.body.reasons[0]) != AC_RR__COUNT) {
                swapped[0] = strcmp(r.body.reasons[0], "cap_day_exceeded") == 0
                                 ? "payee_not_allowed"
                                 : "cap_day_exceeded";
                r.body.reasons = swapped;
                *seq = r.seq;
                done = touch = 1;
            } else if (done) {
                memcpy(r.prev, prev, 32);
            }
            if (touch) {
                uint8_t *enc;
                size_t len;
                if (ac_ev_record_encode(&r, &enc, &len, err, sizeof err) != 0) {
                    ac_ev_record_clear(&r);
                    cbor_decref(&it);
                    return -1;
                }
                ac_ev_record_hash(enc, len, prev);
                ac_replay_export_record(out, enc, len);
                free(enc);
            } else {
                ac_buf_add(out, in + off, used);
            }
            ac_ev_record_clear(&r);
        }
        cbor_decref(&it);
        off += used;
    }
    return done && !out->oom ? 0 : -1;
}

/* Everything the tests decided is in the evidence log, and an auditor's offline replay of the
 * export verifies it: chain, checkpoints, every user-signed document, every agent request
 * signature against its binding's key, and the transfers against the live ledger. */
static void audit_replay(void **st)
{
    (void)st;
    ac_test_payflow_wait_sealed(db_url);
    /* one record per decision: per payment decided, per step-up answered or expired */
    assert_int_equal(sql_int("select count(*) from ac_evidence where kind in ('payment.settle', "
                             "'payment.step_up', 'payment.deny')"),
                     sql_int("select count(*) from ac_payments"));
    assert_int_equal(sql_int("select count(*) from ac_evidence where kind in ('payment.confirm', "
                             "'payment.decline', 'payment.expire')"),
                     sql_int("select count(*) from ac_authorizations where status <> 'pending'"));
    assert_int_equal(sql_int("select count(*) from ac_payments p where not exists (select 1 from "
                             "ac_evidence e where e.seq = p.evidence_seq and e.payment_id = p.id)"),
                     0);
    ac_test_payflow_export_replay(db_url); /* writes export.bin and audit_replay.log */
    char file[1100];
    snprintf(file, sizeof file, "%s/export.bin", ac_test_tmpdir());

    /* every decision recomputed with the risk engine: each payment decided by risk or refused by
     * the ledger, each step-up answer (confirm, decline with or without reasons) is accounted
     * for, and all recompute, those under mandates scoped by category (category_scope) too */
    char logf[1100];
    snprintf(logf, sizeof logf, "%s/audit_replay.log", ac_test_tmpdir());
    char *log = ac_test_read_file(logf, NULL);
    assert_non_null(log);
    const char *line = strstr(log, "replay: decisions: ");
    assert_non_null(line);
    unsigned long long rec = 0, led = 0, usr = 0, nrc = 0;
    assert_int_equal(sscanf(line,
                            "replay: decisions: %llu recomputed with the risk engine and equal, "
                            "%llu ledger refusals (risk let them through), %llu declined by the "
                            "user, %llu not recomputable",
                            &rec, &led, &usr, &nrc),
                     4);
    long long decided = sql_int("select count(*) from ac_evidence where kind in ('payment.settle', "
                                "'payment.step_up', 'payment.deny', 'payment.confirm', "
                                "'payment.decline')");
    assert_true(rec > 0);
    assert_int_equal(nrc, 0);
    assert_int_equal((long long)(rec + led + usr), decided);
    assert_int_equal((long long)led, sql_int("select count(*) from ac_payments where status = "
                                             "'failed'"));
    free(log);

    /* a denial's reason changed and the rest of the chain re-linked: the recomputed decision
     * differs, and the replay fails at that record, before the checkpoint that covers it */
    size_t n = 0;
    uint8_t *buf = (uint8_t *)ac_test_read_file(file, &n);
    assert_non_null(buf);
    struct ac_buf t = {0};
    uint64_t seq = 0;
    assert_int_equal(tamper_decision(buf, n, &t, &seq, 0), 0);
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/export-tampered.bin", ac_test_tmpdir());
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t.p, 1, t.len, f), t.len);
    fclose(f);
    ac_buf_free(&t);
    free(buf);
    char *rep2[] = {(char *)ac_test_binary(), "audit", "replay", bad, NULL};
    assert_int_equal(ac_test_run("audit_replay_tampered", rep2, 300000), 1);
    snprintf(logf, sizeof logf, "%s/audit_replay_tampered.log", ac_test_tmpdir());
    log = ac_test_read_file(logf, NULL);
    assert_non_null(log);
    char want[200];
    snprintf(want, sizeof want, "FAILED at record #%llu: decision mismatch: recorded deny [",
             (unsigned long long)seq);
    if (strstr(log, want) == NULL) fail_msg("tampered replay: want \"%s\" in:\n%s", want, log);
    assert_non_null(strstr(log, "], recomputed deny ["));
    free(log);

    /* the payee's category in a payment record changed (and the chain re-linked): the decision
     * recomputed with it is a denial, not the recorded allow */
    buf = (uint8_t *)ac_test_read_file(file, &n);
    assert_non_null(buf);
    assert_int_equal(tamper_decision(buf, n, &t, &seq, 1), 0);
    f = fopen(bad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t.p, 1, t.len, f), t.len);
    fclose(f);
    ac_buf_free(&t);
    free(buf);
    assert_int_equal(ac_test_run("audit_replay_category", rep2, 300000), 1);
    snprintf(logf, sizeof logf, "%s/audit_replay_category.log", ac_test_tmpdir());
    log = ac_test_read_file(logf, NULL);
    assert_non_null(log);
    snprintf(want, sizeof want,
             "FAILED at record #%llu: decision mismatch: recorded allow [], recomputed deny "
             "[payee_not_allowed]",
             (unsigned long long)seq);
    if (strstr(log, want) == NULL) fail_msg("category: want \"%s\" in:\n%s", want, log);
    free(log);
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
    EVP_PKEY **keys[] = {&alice1, &bob1, &shop1, &llm1, &agent1, &agent2, &agent3};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        *keys[i] = ac_sig_keygen(i == 4 ? AC_SIG_ES256 : AC_SIG_ED25519);
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_http_payments"));
    /* a server signing key, so that checkpoints are signed and the log can be audited */
    char dir[1024], keyfile[1100];
    snprintf(dir, sizeof dir, "%s/keys", ac_test_tmpdir());
    snprintf(keyfile, sizeof keyfile, "--out=%s/server.jwk", dir);
    char *kg[] = {(char *)ac_test_binary(), "keygen", keyfile, "--alg=ed25519", NULL};
    if (mkdir(dir, 0700) != 0 || ac_test_run("keygen", kg, 30000) != 0) return -1;
    snprintf(keys_env, sizeof keys_env, "AGENTCLEAR_KEYS_DIR=%s", dir);
    const char *env[] = {keys_env, "AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    if (ac_test_server_start(&srv, "http_payments", db_url, TOKEN, env, READY_MS) != 0) return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    world();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_server_kill(&srv);
    EVP_PKEY *keys[] = {alice1, bob1, shop1, llm1, agent1, agent2, agent3};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mandates),
        cmocka_unit_test(payments),
        cmocka_unit_test(concurrency),
        cmocka_unit_test(stepup),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(revocation_race),
        cmocka_unit_test(expiry),
        cmocka_unit_test(category_scope),
        cmocka_unit_test(restart_keeps_everything),
        cmocka_unit_test(nonces_outlive_a_restart),
        cmocka_unit_test(audit_replay),
        cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
