/* Refunds and reading end to end: a real `agentclear serve` child on a fresh PostgreSQL database,
 * over HTTP, with real keys, user-signed mandates, RFC 9421 agent-signed payments and
 * merchant-signed refunds.
 * - A full refund moves the money back (merchant wallet -> user wallet), is recorded as a
 *   `refund` evidence record carrying the merchant's signed request, and shows on the payment.
 * - Partial refunds add up to the amount paid; one base unit more is refused
 *   (refund_exceeds_payment) and moves nothing.
 * - A replay answers the original refund (200), another request under the id is refund_exists;
 *   a refund signed by another merchant, by an agent, or unsigned is refused; so is one of a
 *   denied or a step-up-pending payment; a merchant short of funds gets the ledger's code.
 * - A refund gives the mandate's caps nothing back.
 * - After a restart the refunds are still counted (replay, the remaining amount).
 * - Reading: pages of a user's and a merchant's payments cover every payment exactly once, newest
 *   first; a tampered cursor or a bad limit is 400 parameter_invalid; balances are exact.
 * - The evidence export passes the auditor's replay (`agentclear audit replay --db`). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/evidence.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"
#include "protocol/sig.h"
#include "protocol/stepup.h"
#include "tests/support/agentsig.h"
#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define TOKEN "e2e-http-refunds-operator-token"
#define READY_MS 30000
#define DAY 86400LL

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];
static char keys_env[1100];
static EVP_PKEY *alice1, *shop1, *llm1, *agent1;

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

/* credits_posted - debits_posted of a ledger account, in base units (the ledger API). */
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

/* ---- signed requests ------------------------------------------------------------------------- */

/* POST path with body signed by key (NULL: unsigned). Returns the status. */
static int signed_post(EVP_PKEY *key, const char *path, const char *body,
                       struct ac_test_http_resp *r)
{
    return ac_test_signed_post(&http, srv.port, key, path, body, r);
}

static json_t *pay(const char *id, const char *mandate, const char *payee, const char *value,
                   int want)
{
    char *body = ac_test_pay_body(id, mandate, payee, "CNY", value, NULL);
    struct ac_test_http_resp r;
    int st = signed_post(agent1, "/v1/payments", body, &r);
    if (st != want) fail_msg("payment %s: expected %d, got %d: %s", id, want, st, r.body);
    json_t *j = ac_test_http_json(&r);
    ac_test_http_resp_free(&r);
    free(body);
    if (j == NULL) fail_msg("payment %s: not json", id);
    return j;
}

static char *refund_body(const char *id, const char *cur, const char *value, const char *reason)
{
    json_t *o =
        json_pack("{s:s, s:{s:s, s:s}}", "id", id, "amount", "currency", cur, "value", value);
    if (reason) json_object_set_new(o, "reason", json_string(reason));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* A refund of payment by the merchant key `key` that must answer `want`; the JSON answer. */
static json_t *refund(EVP_PKEY *key, const char *payment, const char *id, const char *value,
                      int want)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/payments/%s/refunds", payment);
    char *body = refund_body(id, "CNY", value, "returned");
    struct ac_test_http_resp r;
    int st = signed_post(key, path, body, &r);
    if (st != want) fail_msg("refund %s: expected %d, got %d: %s", id, want, st, r.body);
    json_t *j = ac_test_http_json(&r);
    ac_test_http_resp_free(&r);
    free(body);
    if (j == NULL) fail_msg("refund %s: not json", id);
    return j;
}

static void refund_problem(EVP_PKEY *key, const char *payment, const char *body, int status,
                           const char *code)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/payments/%s/refunds", payment);
    struct ac_test_http_resp r;
    signed_post(key, path, body, &r);
    json_decref(ac_test_api_problem(&r, status, code, body));
    ac_test_http_resp_free(&r);
}

static void refund_refused(EVP_PKEY *key, const char *payment, const char *id, const char *value,
                           int status, const char *code)
{
    char *body = refund_body(id, "CNY", value, NULL);
    refund_problem(key, payment, body, status, code);
    free(body);
}

/* The payment's "refunded" value in base units (GET /v1/payments/{id}). */
static long long refunded(const char *payment)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/payments/%s", payment);
    json_t *j = call("GET", path, NULL, 200);
    long long v = ac_test_cents(ac_test_jstr(json_object_get(j, "refunded"), "value"));
    json_decref(j);
    return v;
}

/* The answer's evidence names a stored `refund` record about payment, of amount, with the
 * merchant's request and the transfer merchant -> user. */
static void check_refund_evidence(const json_t *o, const char *payment, const char *refund_id,
                                  long long amount, const char *payee)
{
    const json_t *ev = json_object_get(o, "evidence");
    if (!json_is_object(ev)) fail_msg("no evidence for refund %s", refund_id);
    struct ac_ev_record r;
    ac_test_payflow_evidence(db_url, ev, &r);
    assert_string_equal(ac_ev_kind_name(r.kind), "refund");
    assert_string_equal(r.body.payment, payment);
    assert_string_equal(r.body.ref, refund_id);
    assert_string_equal(r.body.payee, payee);
    assert_string_equal(r.body.user, "alice");
    assert_int_equal(r.body.amount.value, amount);
    assert_true(r.body.request.present);
    assert_true(r.body.request.base_len > 0);
    assert_string_equal(r.body.request.keyid, ac_test_kid(payee[0] == 's' ? shop1 : llm1));
    assert_int_equal(r.body.ntransfers, 1);
    assert_int_equal(r.body.transfers[0].amount, amount);
    char debit[80];
    snprintf(debit, sizeof debit, "merchant:%s:cny", payee);
    assert_string_equal(r.body.transfers[0].debit, debit);
    assert_string_equal(r.body.transfers[0].credit, "user:alice:cny");
    ac_ev_record_clear(&r);
}

/* ---- the world ------------------------------------------------------------------------------- */

static void register_mandate(const char *id, const char *max_per_tx, const char *total_cap,
                             const char *step_up_above)
{
    json_t *p = ac_test_mandate_payload(id, "alice", "agent-a", "shop", "CNY", max_per_tx,
                                        step_up_above ? "L4" : "L5");
    json_object_set_new(p, "payees", json_pack("{s:[s, s]}", "merchants", "shop", "llm"));
    if (total_cap) json_object_set_new(p, "caps", json_pack("{s:s}", "total", total_cap));
    if (step_up_above) json_object_set_new(p, "step_up_above", json_string(step_up_above));
    char *body = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    json_decref(call_tok("POST", "/v1/mandates", body, 201, NULL));
    free(body);
}

static void world(void)
{
    ac_test_payflow_parties(&http, TOKEN, alice1, NULL, shop1, llm1);
    json_decref(call("POST", "/v1/ledger/accounts",
                     "{\"accounts\":[{\"id\":\"bank:cny\",\"asset\":\"CNY\"},"
                     "{\"id\":\"user:alice:cny\",\"asset\":\"CNY\",\"owner\":\"alice\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]},"
                     "{\"id\":\"user:alice:usd\",\"asset\":\"USD\",\"owner\":\"alice\"},"
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
    register_mandate("m1", "50.00", NULL, NULL);
}

/* ---- refunds --------------------------------------------------------------------------------- */

static void full_refund(void **st)
{
    (void)st;
    json_decref(pay("p1", "m1", "shop", "10.00", 201));
    long long a0 = posted("user:alice:cny"), s0 = posted("merchant:shop:cny");
    json_t *j = refund(shop1, "p1", "r1", "10.00", 201);
    assert_string_equal(ac_test_jstr(j, "id"), "r1");
    assert_string_equal(ac_test_jstr(j, "payment"), "p1");
    assert_string_equal(ac_test_jstr(j, "payee"), "shop");
    assert_string_equal(ac_test_jstr(j, "user"), "alice");
    assert_string_equal(ac_test_jstr(j, "reason"), "returned");
    assert_string_equal(ac_test_jstr(json_object_get(j, "amount"), "value"), "10.00");
    check_refund_evidence(j, "p1", "r1", 1000, "shop");
    /* the transfer is in the ledger, merchant -> user */
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/transfers/%s", ac_test_jstr(j, "transfer"));
    json_t *t = call("GET", path, NULL, 200);
    assert_string_equal(ac_test_jstr(t, "debit_account"), "merchant:shop:cny");
    assert_string_equal(ac_test_jstr(t, "credit_account"), "user:alice:cny");
    json_decref(t);
    json_decref(j);
    assert_int_equal(posted("user:alice:cny") - a0, 1000);
    assert_int_equal(s0 - posted("merchant:shop:cny"), 1000);
    assert_int_equal(refunded("p1"), 1000);
    /* nothing left to refund */
    refund_refused(shop1, "p1", "r1x", "0.01", 422, "refund_exceeds_payment");
    assert_int_equal(posted("user:alice:cny") - a0, 1000);
}

static void partial_refunds_and_replay(void **st)
{
    (void)st;
    json_decref(pay("p2", "m1", "shop", "10.00", 201));
    long long a0 = posted("user:alice:cny");
    json_t *first = refund(shop1, "p2", "r2a", "4.00", 201);
    json_decref(refund(shop1, "p2", "r2b", "6.00", 201));
    assert_int_equal(refunded("p2"), 1000);
    /* one base unit more than what was paid */
    refund_refused(shop1, "p2", "r2c", "0.01", 422, "refund_exceeds_payment");
    assert_int_equal(posted("user:alice:cny") - a0, 1000);
    /* the same request again: the original answer, nothing moves */
    json_t *again = refund(shop1, "p2", "r2a", "4.00", 200);
    assert_true(json_equal(first, again));
    json_decref(again);
    json_decref(first);
    /* another request under the id */
    refund_refused(shop1, "p2", "r2a", "3.00", 409, "refund_exists");
    assert_int_equal(posted("user:alice:cny") - a0, 1000);
    assert_int_equal(refunded("p2"), 1000);
    /* the list, oldest first */
    json_t *l = call("GET", "/v1/payments/p2/refunds", NULL, 200);
    json_t *rs = json_object_get(l, "refunds");
    assert_int_equal(json_array_size(rs), 2);
    assert_string_equal(ac_test_jstr(json_array_get(rs, 0), "id"), "r2a");
    assert_string_equal(ac_test_jstr(json_array_get(rs, 1), "id"), "r2b");
    json_decref(l);
    problem_tok("GET", "/v1/payments/p2/refunds", NULL, 401, "unauthorized", NULL);
    problem_tok("GET", "/v1/payments/nope/refunds", NULL, 404, "payment_unknown", TOKEN);
    assert_int_equal(sql_int("select count(*) from ac_refunds where payment_id = 'p2'"), 2);
}

static void refused(void **st)
{
    (void)st;
    json_decref(pay("p3", "m1", "shop", "5.00", 201));
    long long a0 = posted("user:alice:cny"), s0 = posted("merchant:shop:cny");
    /* another merchant */
    refund_refused(llm1, "p3", "r3", "1.00", 403, "refund_not_payee");
    /* an agent's signature on a merchant route, and no signature at all */
    char *body = refund_body("r3", "CNY", "1.00", NULL);
    struct ac_test_http_resp r;
    signed_post(agent1, "/v1/payments/p3/refunds", body, &r);
    assert_true(r.status == 401 || r.status == 403);
    ac_test_http_resp_free(&r);
    signed_post(NULL, "/v1/payments/p3/refunds", body, &r);
    assert_int_equal(r.status, 401);
    ac_test_http_resp_free(&r);
    free(body);
    /* bad input */
    body = refund_body("r3", "USD", "1.00", NULL);
    refund_problem(shop1, "p3", body, 422, "refund_currency_mismatch");
    free(body);
    refund_refused(shop1, "p3", "r3", "0.00", 400, "amount_zero");
    refund_refused(shop1, "p3", "r3", "1.001", 400, "amount_precision");
    refund_refused(shop1, "p3", "bad id!", "1.00", 400, "id_invalid");
    refund_refused(shop1, "nope", "r3", "1.00", 404, "payment_unknown");
    refund_problem(shop1, "p3", "{\"id\":\"r3\"}", 400, "json_schema");
    refund_problem(shop1, "p3",
                   "{\"id\":\"r3\",\"amount\":{\"currency\":\"CNY\",\"value\":\"1\"},"
                   "\"extra\":1}",
                   400, "json_schema");
    /* a denied payment (over max_per_tx) and a step-up still pending */
    json_decref(pay("p4", "m1", "shop", "60.00", 422));
    refund_refused(shop1, "p4", "r4", "1.00", 409, "payment_not_refundable");
    register_mandate("ms", "50.00", NULL, "5.00");
    json_t *j = pay("p5", "ms", "shop", "20.00", 201);
    assert_string_equal(ac_test_jstr(j, "status"), "pending_confirmation");
    refund_refused(shop1, "p5", "r5", "1.00", 409, "payment_not_refundable");
    /* nothing moved, nothing recorded */
    assert_int_equal(posted("user:alice:cny"), a0);
    assert_int_equal(posted("merchant:shop:cny"), s0);
    /* once alice confirms, the payment is settled and can be refunded */
    json_t *az = json_object_get(j, "authorization");
    char *conf = ac_test_signed_body(
        alice1, AC_CONFIRMATION_TYP,
        ac_test_confirmation_payload(json_object_get(az, "challenge"), "confirm"));
    char path[160];
    snprintf(path, sizeof path, "/v1/authorizations/%s/confirm", ac_test_jstr(az, "id"));
    json_decref(call_tok("POST", path, conf, 200, NULL));
    free(conf);
    json_decref(j);
    json_decref(refund(shop1, "p5", "r5", "20.00", 201));
    assert_int_equal(refunded("p5"), 2000);
    assert_int_equal(posted("user:alice:cny"), a0); /* paid 20.00, refunded 20.00 */
    assert_int_equal(posted("merchant:shop:cny"), s0);
    assert_int_equal(sql_int("select count(*) from ac_refunds where id in ('r3', 'r4')"), 0);
    assert_int_equal(refunded("p3"), 0);
}

static void merchant_short_of_funds(void **st)
{
    (void)st;
    json_decref(pay("p6", "m1", "llm", "5.00", 201));
    /* the merchant pays its balance out */
    json_decref(
        call("POST", "/v1/ledger/transfers",
             "{\"transfers\":[{\"id\":\"llm-payout\",\"debit_account\":\"merchant:llm:cny\","
             "\"credit_account\":\"bank:cny\",\"amount\":\"5.00\",\"asset\":\"CNY\"}]}",
             200));
    long long a0 = posted("user:alice:cny");
    refund_refused(llm1, "p6", "r6", "5.00", 422, "exceeds_credits");
    assert_int_equal(posted("user:alice:cny"), a0);
    assert_int_equal(refunded("p6"), 0);
    /* funded again, the same refund id goes through */
    json_decref(
        call("POST", "/v1/ledger/transfers",
             "{\"transfers\":[{\"id\":\"llm-fund\",\"debit_account\":\"bank:cny\","
             "\"credit_account\":\"merchant:llm:cny\",\"amount\":\"5.00\",\"asset\":\"CNY\"}]}",
             200));
    json_t *j = refund(llm1, "p6", "r6", "5.00", 201);
    check_refund_evidence(j, "p6", "r6", 500, "llm");
    json_decref(j);
    assert_int_equal(posted("user:alice:cny") - a0, 500);
    assert_int_equal(posted("merchant:llm:cny"), 0);
}

/* Caps limit what the agent spent on the user's behalf: a refund gives nothing back. */
static void caps_not_restored(void **st)
{
    (void)st;
    register_mandate("mc", "50.00", "20.00", NULL);
    json_decref(pay("pc1", "mc", "shop", "20.00", 201));
    json_decref(refund(shop1, "pc1", "rc1", "20.00", 201));
    json_t *m = call("GET", "/v1/mandates/mc", NULL, 200);
    json_t *total = json_object_get(json_object_get(m, "spend"), "total");
    assert_int_equal(ac_test_cents(ac_test_jstr(json_object_get(total, "spent"), "value")), 2000);
    json_decref(m);
    json_t *j = pay("pc2", "mc", "shop", "0.01", 422);
    assert_string_equal(ac_test_jstr(j, "code"), "payment_denied");
    json_decref(j);
}

static void restart_keeps_refunds(void **st)
{
    (void)st;
    long long a0 = posted("user:alice:cny");
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 20000), 0);
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    json_decref(refund(shop1, "p2", "r2a", "4.00", 200));
    refund_refused(shop1, "p2", "r2a", "3.00", 409, "refund_exists");
    refund_refused(shop1, "p2", "r2d", "0.01", 422, "refund_exceeds_payment");
    json_decref(pay("p7", "m1", "shop", "3.00", 201));
    json_decref(refund(shop1, "p7", "r7", "1.00", 201));
    assert_int_equal(posted("user:alice:cny") - a0, -200);
    assert_int_equal(refunded("p7"), 100);
}

/* ---- reading --------------------------------------------------------------------------------- */

/* Walk every page of path with limit; the ids in order must be exactly those of sql (newest
 * first). */
static void walk_pages(const char *base, int limit, const char *sql)
{
    PGconn *c = PQconnectdb(db_url);
    PGresult *want = PQexec(c, sql);
    assert_int_equal(PQresultStatus(want), PGRES_TUPLES_OK);
    int nwant = PQntuples(want);
    assert_true(nwant > limit); /* more than one page */
    int seen = 0, pages = 0;
    char cursor[256] = "";
    for (;;) {
        char path[512];
        snprintf(path, sizeof path, "%s?limit=%d%s%s", base, limit, cursor[0] ? "&cursor=" : "",
                 cursor);
        json_t *j = call("GET", path, NULL, 200);
        json_t *data = json_object_get(j, "data");
        pages++;
        for (size_t i = 0; i < json_array_size(data); i++, seen++) {
            if (seen >= nwant) fail_msg("%s: more payments than the database holds", base);
            assert_string_equal(ac_test_jstr(json_array_get(data, i), "id"),
                                PQgetvalue(want, seen, 0));
        }
        json_t *next = json_object_get(j, "next_cursor");
        if (next == NULL) {
            json_decref(j);
            break;
        }
        assert_int_equal(json_array_size(data), limit);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(j);
        if (pages > 1000) fail_msg("%s: no end", base);
    }
    assert_int_equal(seen, nwant);
    assert_int_equal(pages, (nwant + limit - 1) / limit);
    PQclear(want);
    PQfinish(c);
}

static void reading(void **st)
{
    (void)st;
    char id[32];
    for (int i = 0; i < 7; i++) {
        snprintf(id, sizeof id, "rd%d", i);
        json_decref(pay(id, "m1", i % 2 ? "llm" : "shop", "0.50", 201));
    }
    walk_pages("/v1/users/alice/payments", 3,
               "select id from ac_payments where user_id = 'alice' order by seq desc");
    walk_pages("/v1/merchants/shop/payments", 4,
               "select id from ac_payments where payee = 'shop' order by seq desc");
    walk_pages("/v1/merchants/llm/payments", 2,
               "select id from ac_payments where payee = 'llm' order by seq desc");
    /* default limit, and the payment object shows its refunds */
    json_t *j = call("GET", "/v1/users/alice/payments", NULL, 200);
    assert_true(json_array_size(json_object_get(j, "data")) == 20 ||
                json_object_get(j, "next_cursor") == NULL);
    json_decref(j);
    /* tampered cursors and bad limits */
    j = call("GET", "/v1/users/alice/payments?limit=1", NULL, 200);
    char good[128];
    snprintf(good, sizeof good, "%s", ac_test_jstr(j, "next_cursor"));
    json_decref(j);
    assert_true(good[0] != '\0');
    char tampered[160], path[300];
    snprintf(tampered, sizeof tampered, "%s", good);
    tampered[0] = tampered[0] == 'A' ? 'B' : 'A'; /* "p1:" no longer */
    const char *bad_cursors[] = {
        tampered,  "%21%21%21", "cDE6",   "cDE6MA",
        "cDE6LTE", "cDE6YWJj",  "eDE6NQ", "cDE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5"};
    /* cDE6 "p1:", cDE6MA "p1:0", cDE6LTE "p1:-1", cDE6YWJj "p1:abc", eDE6NQ "x1:5", and a seq
     * beyond int64 */
    for (size_t i = 0; i < sizeof bad_cursors / sizeof *bad_cursors; i++) {
        snprintf(path, sizeof path, "/v1/users/alice/payments?cursor=%s", bad_cursors[i]);
        problem_tok("GET", path, NULL, 400, "parameter_invalid", TOKEN);
    }
    const char *bad_limits[] = {"0", "101", "abc", "-1", "", "05"};
    for (size_t i = 0; i < sizeof bad_limits / sizeof *bad_limits; i++) {
        snprintf(path, sizeof path, "/v1/merchants/shop/payments?limit=%s", bad_limits[i]);
        problem_tok("GET", path, NULL, 400, "parameter_invalid", TOKEN);
    }
    problem_tok("GET", "/v1/users/nobody/payments", NULL, 404, "user_unknown", TOKEN);
    problem_tok("GET", "/v1/merchants/nobody/payments", NULL, 404, "merchant_unknown", TOKEN);
    problem_tok("GET", "/v1/users/alice/payments", NULL, 401, "unauthorized", NULL);
    problem_tok("GET", "/v1/users/nobody/balances", NULL, 404, "user_unknown", TOKEN);
    /* a merchant with no payment: an empty last page */
    j = call("GET", "/v1/merchants/llm/payments?limit=100", NULL, 200);
    assert_null(json_object_get(j, "next_cursor"));
    json_decref(j);
}

static void balances(void **st)
{
    (void)st;
    json_t *j = call("GET", "/v1/users/alice/balances", NULL, 200);
    json_t *bs = json_object_get(j, "balances");
    assert_int_equal(json_array_size(bs), 2); /* cny and usd; not bank:cny, not merchants */
    assert_string_equal(ac_test_jstr(json_array_get(bs, 0), "account"), "user:alice:cny");
    assert_string_equal(ac_test_jstr(json_array_get(bs, 1), "account"), "user:alice:usd");
    long long cny =
        ac_test_cents(ac_test_jstr(json_object_get(json_array_get(bs, 0), "posted"), "value"));
    assert_int_equal(cny, posted("user:alice:cny"));
    /* exact: funded 1000.00, minus every settled payment, plus every refund */
    long long want = 100000 -
                     sql_int("select coalesce(sum(amount), 0) from ac_payments where "
                             "user_id = 'alice' and status = 'settled'") +
                     sql_int("select coalesce(sum(amount), 0) from ac_refunds");
    assert_int_equal(cny, want);
    assert_string_equal(ac_test_jstr(json_object_get(json_array_get(bs, 0), "posted"), "currency"),
                        "CNY");
    json_decref(j);
    j = call("GET", "/v1/merchants/shop/balances", NULL, 200);
    bs = json_object_get(j, "balances");
    assert_int_equal(json_array_size(bs), 1);
    long long shop =
        ac_test_cents(ac_test_jstr(json_object_get(json_array_get(bs, 0), "posted"), "value"));
    assert_int_equal(shop, sql_int("select coalesce(sum(amount), 0) from ac_payments where payee = "
                                   "'shop' and status = 'settled'") -
                               sql_int("select coalesce(sum(amount), 0) from ac_refunds where "
                                       "merchant_id = 'shop'"));
    json_decref(j);
}

static void audit_replay(void **st)
{
    (void)st;
    ac_test_payflow_wait_sealed(db_url);
    assert_int_equal(sql_int("select count(*) from ac_evidence where kind = 'refund'"),
                     sql_int("select count(*) from ac_refunds"));
    assert_int_equal(sql_int("select count(*) from ac_refunds r where not exists (select 1 from "
                             "ac_evidence e where e.seq = r.evidence_seq and e.payment_id = "
                             "r.payment_id)"),
                     0);
    ac_test_payflow_export_replay(db_url);
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
    EVP_PKEY **keys[] = {&alice1, &shop1, &llm1, &agent1};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        *keys[i] = ac_sig_keygen(i == 2 ? AC_SIG_ES256 : AC_SIG_ED25519);
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_http_refunds"));
    char dir[1024], keyfile[1100];
    snprintf(dir, sizeof dir, "%s/keys", ac_test_tmpdir());
    snprintf(keyfile, sizeof keyfile, "--out=%s/server.jwk", dir);
    char *kg[] = {(char *)ac_test_binary(), "keygen", keyfile, "--alg=ed25519", NULL};
    if (mkdir(dir, 0700) != 0 || ac_test_run("keygen", kg, 30000) != 0) return -1;
    snprintf(keys_env, sizeof keys_env, "AGENTCLEAR_KEYS_DIR=%s", dir);
    const char *env[] = {keys_env, "AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    if (ac_test_server_start(&srv, "http_refunds", db_url, TOKEN, env, READY_MS) != 0) return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    world();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_server_kill(&srv);
    EVP_PKEY *keys[] = {alice1, shop1, llm1, agent1};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_refund),       cmocka_unit_test(partial_refunds_and_replay),
        cmocka_unit_test(refused),           cmocka_unit_test(merchant_short_of_funds),
        cmocka_unit_test(caps_not_restored), cmocka_unit_test(restart_keeps_refunds),
        cmocka_unit_test(reading),           cmocka_unit_test(balances),
        cmocka_unit_test(audit_replay),      cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
