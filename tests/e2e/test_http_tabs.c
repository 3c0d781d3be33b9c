/* Micropayment tabs end to end: a real `agentclear serve` child on a fresh PostgreSQL database,
 * over HTTP, with real keys, a user-signed mandate, an agent-signed (RFC 9421) tab opening,
 * agent-signed voucher JWS and merchant-signed settlements.
 * - Opening holds the amount (a pending transfer user -> merchant) and counts against the
 *   mandate's caps; a replay answers the tab again, another request under the id is tab_exists;
 *   a tab over the mandate's per-transaction cap is tab_denied, one the wallet cannot cover gets
 *   the ledger's code, one under a mandate without the micropay op is tab_denied.
 * - Settling ever-higher vouchers posts exactly the deltas; the tab keeps holding the rest.
 * - Every refusal has its own code and moves nothing: voucher above the hold, sequence not
 *   increasing, cumulative not increasing, the same voucher again, a voucher of another tab,
 *   signed by another key (another agent's bound key too), tampered, malformed, in another
 *   currency; a settle by another merchant, by an agent, unsigned; settle after close.
 * - Close posts the final voucher and voids the rest; the mandate's spend then counts exactly
 *   what was settled (the unused hold is released).
 * - Expiry: a tab left open past its expiry is voided by the server (tab_expired afterwards).
 * - Concurrency: many threads settle vouchers of one tab at once; the settled total is the
 *   highest accepted voucher and the ledger moved exactly that.
 * - A restart keeps the tabs (settled total, replay detection).
 * - Reading: GET /v1/tabs/{id}, users' and merchants' tab lists page by page.
 * - The evidence export passes the auditor's replay, vouchers re-verified. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "protocol/evidence.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"
#include "protocol/sig.h"
#include "protocol/voucher.h"
#include "tests/support/agentsig.h"
#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/npm.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define TOKEN "e2e-http-tabs-operator-token"
#define READY_MS 30000

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];
static char keys_env[1100];
static EVP_PKEY *alice1, *shop1, *llm1, *agent1, *agent2, *stranger;

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *call(const char *method, const char *path, const char *json, int want)
{
    return ac_test_api_call(&http, method, path, TOKEN, json, want);
}

static long long sql_int(const char *q)
{
    return ac_test_sql_int(db_url, q);
}

static long long acct_of(const char *account, const char *member)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/accounts/%s", account);
    json_t *j = call("GET", path, NULL, 200);
    long long v = ac_test_cents(ac_test_jstr(j, member));
    json_decref(j);
    return v;
}

/* credits_posted - debits_posted */
static long long posted(const char *account)
{
    return acct_of(account, "credits_posted") - acct_of(account, "debits_posted");
}

static char *open_body(const char *id, const char *mandate, const char *payee, const char *value,
                       long long expires_in)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:I}", "id", id, "mandate", mandate,
                          "payee", payee, "amount", "currency", "CNY", "value", value, "expires_in",
                          (json_int_t)expires_in);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* POST /v1/tabs signed by key; fails unless the status is want; the JSON answer. */
static json_t *open_tab_as(EVP_PKEY *key, const char *id, const char *mandate, const char *payee,
                           const char *value, long long expires_in, int want)
{
    char *body = open_body(id, mandate, payee, value, expires_in);
    struct ac_test_http_resp r;
    int st = ac_test_signed_post(&http, srv.port, key, "/v1/tabs", body, &r);
    if (st != want) fail_msg("tab %s: expected %d, got %d: %s", id, want, st, r.body);
    json_t *j = ac_test_http_json(&r);
    ac_test_http_resp_free(&r);
    free(body);
    if (j == NULL) fail_msg("tab %s: not json", id);
    return j;
}

static json_t *open_tab(const char *id, const char *payee, const char *value, int want)
{
    return open_tab_as(agent1, id, "m1", payee, value, 3600, want);
}

/* The voucher body {"voucher": jws} (close: NULL jws gives {}). */
static char *voucher_body(const char *jws)
{
    json_t *o = jws ? json_pack("{s:s}", "voucher", jws) : json_object();
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* POST /v1/tabs/{tab}/<what> signed by key with voucher jws; the status; *out the answer. */
static int post_voucher(EVP_PKEY *key, const char *tab, const char *what, const char *jws,
                        struct ac_test_http *c, json_t **out, char *text, size_t cap)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/tabs/%s/%s", tab, what);
    char *body = voucher_body(jws);
    struct ac_test_http_resp r;
    int st = ac_test_signed_post(c, srv.port, key, path, body, &r);
    if (out) *out = ac_test_http_json(&r);
    if (text) snprintf(text, cap, "%s", r.body ? r.body : "");
    ac_test_http_resp_free(&r);
    free(body);
    return st;
}

static char *voucher(EVP_PKEY *key, const char *tab, long long seq, long long cents)
{
    char *v = ac_voucher_sign(key, tab, seq, "CNY", cents, 2);
    assert_non_null(v);
    return v;
}

/* Settle (close=0) or close with voucher (seq, cents) signed by agent1; must answer 200. */
static json_t *settle_ok(const char *tab, const char *what, long long seq, long long cents)
{
    char *v = seq ? voucher(agent1, tab, seq, cents) : NULL;
    json_t *j = NULL;
    char text[1024];
    int st = post_voucher(shop1, tab, what, v, &http, &j, text, sizeof text);
    if (st != 200) fail_msg("%s %s seq %lld: %d %s", what, tab, seq, st, text);
    free(v);
    return j;
}

/* A settle or close of tab with body jws by key, refused with status/code. */
static void refused(EVP_PKEY *key, const char *tab, const char *what, const char *jws, int status,
                    const char *code)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/tabs/%s/%s", tab, what);
    char *body = voucher_body(jws);
    struct ac_test_http_resp r;
    ac_test_signed_post(&http, srv.port, key, path, body, &r);
    json_decref(ac_test_api_problem(&r, status, code, body));
    ac_test_http_resp_free(&r);
    free(body);
}

static void refused_v(const char *tab, long long seq, long long cents, int status, const char *code)
{
    char *v = voucher(agent1, tab, seq, cents);
    refused(shop1, tab, "settle", v, status, code);
    free(v);
}

static json_t *get_tab(const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/tabs/%s", id);
    return call("GET", path, NULL, 200);
}

static long long amount_of(const json_t *o, const char *member)
{
    return ac_test_cents(ac_test_jstr(json_object_get(o, member), "value"));
}

/* The stored evidence record an answer names, of kind `kind` about tab. */
static void check_evidence(const json_t *o, const char *kind, const char *tab)
{
    const json_t *ev = json_object_get(o, "evidence");
    if (!json_is_object(ev)) fail_msg("no evidence for %s %s", kind, tab);
    struct ac_ev_record r;
    ac_test_payflow_evidence(db_url, ev, &r);
    assert_string_equal(ac_ev_kind_name(r.kind), kind);
    assert_string_equal(r.body.tab, tab);
    ac_ev_record_clear(&r);
}

/* ---- the world ------------------------------------------------------------------------------- */

static void register_mandate(const char *id, const char *ops, const char *total_cap)
{
    json_t *p = ac_test_mandate_payload(id, "alice", "agent-a", "shop", "CNY", "50.00", "L5");
    json_object_set_new(p, "payees", json_pack("{s:[s, s]}", "merchants", "shop", "llm"));
    if (ops) json_object_set_new(p, "ops", json_pack("[s]", ops));
    if (total_cap) json_object_set_new(p, "caps", json_pack("{s:s}", "total", total_cap));
    char *body = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    json_decref(ac_test_api_call(&http, "POST", "/v1/mandates", NULL, body, 201));
    free(body);
}

static void world(void)
{
    ac_test_payflow_parties(&http, TOKEN, alice1, NULL, shop1, llm1);
    json_decref(call("POST", "/v1/ledger/accounts",
                     "{\"accounts\":[{\"id\":\"bank:cny\",\"asset\":\"CNY\"},"
                     "{\"id\":\"user:alice:cny\",\"asset\":\"CNY\",\"owner\":\"alice\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]},"
                     "{\"id\":\"merchant:shop:cny\",\"asset\":\"CNY\",\"owner\":\"shop\"},"
                     "{\"id\":\"merchant:llm:cny\",\"asset\":\"CNY\",\"owner\":\"llm\"}]}",
                     200));
    json_decref(call("POST", "/v1/ledger/transfers",
                     "{\"transfers\":[{\"id\":\"fund-alice\",\"debit_account\":\"bank:cny\","
                     "\"credit_account\":\"user:alice:cny\",\"amount\":\"500.00\","
                     "\"asset\":\"CNY\"}]}",
                     200));
    ac_test_payflow_binding(&http, "b1", alice1, "alice", agent1, "agent-a");
    ac_test_payflow_binding(&http, "b2", alice1, "alice", agent2, "agent-b");
    register_mandate("m1", NULL, NULL);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void open_settle_close(void **st)
{
    (void)st;
    long long a0 = posted("user:alice:cny"), s0 = posted("merchant:shop:cny");
    long long pend0 = acct_of("user:alice:cny", "debits_pending");
    json_t *t = open_tab("t1", "shop", "10.00", 201);
    assert_string_equal(ac_test_jstr(t, "status"), "open");
    assert_int_equal(amount_of(t, "hold"), 1000);
    assert_int_equal(amount_of(t, "held"), 1000);
    assert_string_equal(ac_test_jstr(json_object_get(t, "decision"), "verdict"), "allow");
    check_evidence(t, "tab.open", "t1");
    assert_int_equal(acct_of("user:alice:cny", "debits_pending") - pend0, 1000);
    /* the hold counts against the mandate's spend */
    json_t *m = call("GET", "/v1/mandates/m1", NULL, 200);
    json_t *total = json_object_get(json_object_get(m, "spend"), "total");
    assert_int_equal(ac_test_cents(ac_test_jstr(json_object_get(total, "held"), "value")), 1000);
    json_decref(m);
    /* replay and conflict */
    json_t *again = open_tab("t1", "shop", "10.00", 200);
    assert_string_equal(ac_test_jstr(again, "id"), "t1");
    assert_string_equal(ac_test_jstr(again, "status"), "open");
    json_decref(again);
    json_decref(open_tab("t1", "shop", "11.00", 409));
    json_decref(t);

    /* three vouchers, each settled: the deltas move */
    json_t *s = settle_ok("t1", "settle", 1, 100);
    assert_int_equal(amount_of(s, "amount"), 100);
    assert_int_equal(amount_of(s, "settled"), 100);
    assert_string_equal(ac_test_jstr(s, "status"), "open");
    check_evidence(s, "tab.settle", "t1");
    json_decref(s);
    json_decref(settle_ok("t1", "settle", 2, 250));
    s = settle_ok("t1", "settle", 5, 400); /* sequence numbers may skip */
    assert_int_equal(amount_of(s, "amount"), 150);
    json_decref(s);
    assert_int_equal(posted("merchant:shop:cny") - s0, 400);
    assert_int_equal(a0 - posted("user:alice:cny"), 400);
    assert_int_equal(acct_of("user:alice:cny", "debits_pending") - pend0, 600);
    t = get_tab("t1");
    assert_int_equal(amount_of(t, "settled"), 400);
    assert_int_equal(amount_of(t, "held"), 600);
    assert_int_equal(json_integer_value(json_object_get(t, "last_seq")), 5);
    assert_int_equal(json_array_size(json_object_get(t, "settlements")), 3);
    json_decref(t);

    /* close with the final voucher: posts 1.00 more, voids the rest */
    s = settle_ok("t1", "close", 6, 500);
    assert_int_equal(amount_of(s, "amount"), 100);
    assert_int_equal(amount_of(s, "released"), 500);
    assert_string_equal(ac_test_jstr(s, "status"), "closed");
    check_evidence(s, "tab.close", "t1");
    json_decref(s);
    assert_int_equal(posted("merchant:shop:cny") - s0, 500);
    assert_int_equal(a0 - posted("user:alice:cny"), 500);
    assert_int_equal(acct_of("user:alice:cny", "debits_pending"), pend0);
    /* the mandate's spend: 5.00 spent, nothing held */
    m = call("GET", "/v1/mandates/m1", NULL, 200);
    total = json_object_get(json_object_get(m, "spend"), "total");
    assert_int_equal(ac_test_cents(ac_test_jstr(json_object_get(total, "held"), "value")), 0);
    assert_int_equal(ac_test_cents(ac_test_jstr(json_object_get(total, "spent"), "value")), 500);
    json_decref(m);
    /* settle after close */
    refused_v("t1", 7, 600, 409, "tab_closed");
    refused(shop1, "t1", "close", NULL, 409, "tab_closed");
    assert_int_equal(posted("merchant:shop:cny") - s0, 500);
}

/* A signed POST with an Idempotency-Key; the response in *r (freed by the caller). */
static int keyed(EVP_PKEY *key, const char *path, const char *body, const char *idem,
                 struct ac_test_http_resp *r)
{
    static char hdrs[16384];
    ac_test_agent_headers(key, srv.port, "POST", path, body, hdrs, sizeof hdrs);
    size_t n = strlen(hdrs);
    snprintf(hdrs + n, sizeof hdrs - n, "Idempotency-Key: %s\r\n", idem);
    return ac_test_http_request(&http, "POST", path, hdrs, body, strlen(body), r);
}

/* The answer and its replay under one Idempotency-Key: same status and bytes, the header on the
 * replay only. */
static void same_keyed(struct ac_test_http_resp *a, struct ac_test_http_resp *b)
{
    char v[16];
    assert_int_equal(b->status, a->status);
    assert_false(ac_test_http_header(a, "Idempotent-Replayed", v, sizeof v));
    assert_true(ac_test_http_header(b, "Idempotent-Replayed", v, sizeof v));
    assert_string_equal(v, "true");
    assert_int_equal(b->body_len, a->body_len);
    assert_memory_equal(b->body, a->body, a->body_len);
    ac_test_http_resp_free(a);
    ac_test_http_resp_free(b);
}

/* Open, settle and close under Idempotency-Keys: the answers read what their batch wrote (on the
 * sequencer's connection, server/idem.h); each replay is the same bytes and moves nothing. */
static void idempotency_keys(void **st)
{
    (void)st;
    struct ac_test_http_resp a, b;
    char *body = open_body("t-keyed", "m1", "shop", "3.00", 3600);
    assert_int_equal(keyed(agent1, "/v1/tabs", body, "tab-open-k", &a), 201);
    assert_int_equal(keyed(agent1, "/v1/tabs", body, "tab-open-k", &b), 201);
    same_keyed(&a, &b);
    free(body);
    long long s0 = posted("merchant:shop:cny"), ev0 = sql_int("select count(*) from ac_evidence");
    char *v = voucher(agent1, "t-keyed", 1, 120);
    body = voucher_body(v);
    assert_int_equal(keyed(shop1, "/v1/tabs/t-keyed/settle", body, "tab-settle-k", &a), 200);
    assert_int_equal(keyed(shop1, "/v1/tabs/t-keyed/settle", body, "tab-settle-k", &b), 200);
    same_keyed(&a, &b);
    assert_int_equal(posted("merchant:shop:cny") - s0, 120);
    free(body);
    free(v);
    body = voucher_body(NULL);
    assert_int_equal(keyed(shop1, "/v1/tabs/t-keyed/close", body, "tab-close-k", &a), 200);
    assert_int_equal(keyed(shop1, "/v1/tabs/t-keyed/close", body, "tab-close-k", &b), 200);
    same_keyed(&a, &b);
    free(body);
    assert_int_equal(posted("merchant:shop:cny") - s0, 120);
    assert_int_equal(sql_int("select count(*) from ac_evidence") - ev0, 2); /* settle, close */
}

static void voucher_refusals(void **st)
{
    (void)st;
    json_decref(open_tab("t2", "shop", "5.00", 201));
    json_decref(open_tab("t3", "shop", "5.00", 201));
    json_decref(settle_ok("t2", "settle", 3, 100));
    long long s0 = posted("merchant:shop:cny");
    /* above the hold */
    refused_v("t2", 4, 501, 422, "voucher_exceeds_hold");
    /* sequence not increasing (lower, and equal with another amount) */
    refused_v("t2", 2, 200, 409, "voucher_not_monotonic");
    refused_v("t2", 3, 200, 409, "voucher_not_monotonic");
    /* cumulative not increasing */
    refused_v("t2", 4, 100, 409, "voucher_not_monotonic");
    refused_v("t2", 4, 50, 409, "voucher_not_monotonic");
    /* the settled voucher again: the same text */
    char *v3 = voucher(agent1, "t2", 3, 100);
    refused(shop1, "t2", "settle", v3, 409, "voucher_replayed");
    /* a voucher of another tab */
    refused(shop1, "t3", "settle", v3, 422, "voucher_tab_mismatch");
    free(v3);
    /* signed by a key that is not the tab's bound agent key: another agent's bound key, a key
     * nobody registered */
    char *vb = voucher(agent2, "t2", 4, 200);
    refused(shop1, "t2", "settle", vb, 422, "voucher_signature_invalid");
    free(vb);
    vb = voucher(stranger, "t2", 4, 200);
    refused(shop1, "t2", "settle", vb, 422, "voucher_signature_invalid");
    free(vb);
    /* tampered: agent1's voucher for 2.00 with the payload of 4.00 */
    char *good = voucher(agent1, "t2", 4, 200), *other = voucher(agent1, "t2", 4, 400);
    char *d1 = strchr(good, '.'), *d2 = strchr(other, '.');
    char *s1 = strrchr(good, '.'), *s2 = strrchr(other, '.');
    char forged[4096];
    snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(d1 - good), good, (int)(s2 - d2), d2, s1);
    refused(shop1, "t2", "settle", forged, 422, "voucher_signature_invalid");
    (void)s2;
    /* malformed, another currency, another typ, unsigned "none" */
    refused(shop1, "t2", "settle", "not.a.jws", 400, "voucher_invalid");
    refused(shop1, "t2", "settle", "", 400, "voucher_invalid");
    char *usd = ac_voucher_sign(agent1, "t2", 4, "USD", 200, 2);
    refused(shop1, "t2", "settle", usd, 422, "voucher_currency_mismatch");
    free(usd);
    json_t *p = ac_voucher_payload("t2", 4, "CNY", 200, 2);
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    char *wrongtyp = ac_jws_sign(agent1, ac_test_kid(agent1), "agentclear-mandate+jws",
                                 (uint8_t *)text, strlen(text));
    refused(shop1, "t2", "settle", wrongtyp, 400, "voucher_invalid");
    free(wrongtyp);
    free(text);
    refused(shop1, "t2", "settle", NULL, 400, "json_schema"); /* settle needs a voucher */
    /* the payee only, and merchants only */
    refused(llm1, "t2", "settle", good, 403, "tab_not_payee");
    struct ac_test_http_resp r;
    char *body = voucher_body(good);
    ac_test_signed_post(&http, srv.port, agent1, "/v1/tabs/t2/settle", body, &r);
    assert_true(r.status == 401 || r.status == 403);
    ac_test_http_resp_free(&r);
    ac_test_signed_post(&http, srv.port, NULL, "/v1/tabs/t2/settle", body, &r);
    assert_int_equal(r.status, 401);
    ac_test_http_resp_free(&r);
    free(body);
    refused(shop1, "nope", "settle", good, 404, "tab_unknown");
    /* nothing moved */
    assert_int_equal(posted("merchant:shop:cny"), s0);
    json_t *t = get_tab("t2");
    assert_int_equal(amount_of(t, "settled"), 100);
    json_decref(t);
    /* and the genuine voucher still goes through */
    char answer[1024];
    json_t *ok = NULL;
    int code = post_voucher(shop1, "t2", "settle", good, &http, &ok, answer, sizeof answer);
    if (code != 200) fail_msg("the genuine voucher: %d %s", code, answer);
    assert_int_equal(amount_of(ok, "amount"), 100);
    json_decref(ok);
    assert_int_equal(posted("merchant:shop:cny") - s0, 100);
    free(good);
    free(other);
}

/* With AC_NPM_DIR (ops/test): a voucher signed by npm jose is settled by the server. */
static void jose_voucher(void **st)
{
    (void)st;
    if (getenv("AC_NPM_DIR") == NULL || !*getenv("AC_NPM_DIR")) {
        if (getenv("AC_REQUIRE_NPM") && strcmp(getenv("AC_REQUIRE_NPM"), "1") == 0)
            fail_msg("AC_REQUIRE_NPM=1 but AC_NPM_DIR is not set");
        skip();
    }
    json_decref(open_tab("tj", "shop", "2.00", 201));
    json_t *in = json_pack("{s:o, s:{s:s, s:s}, s:o}", "jwk", ac_jwk_export_private(agent1),
                           "header", "kid", ac_test_kid(agent1), "typ", AC_VOUCHER_TYP, "payload",
                           ac_voucher_payload("tj", 1, "CNY", 125, 2));
    int code = -1;
    json_t *out = ac_npm_json("sign-jws.mjs", in, &code);
    json_decref(in);
    assert_int_equal(code, 0);
    json_t *j = NULL;
    char text[1024];
    int st2 =
        post_voucher(shop1, "tj", "settle", ac_test_jstr(out, "jws"), &http, &j, text, sizeof text);
    if (st2 != 200) fail_msg("jose voucher: %d %s", st2, text);
    assert_int_equal(amount_of(j, "amount"), 125);
    json_decref(j);
    json_decref(out);
}

static void denied_tabs(void **st)
{
    (void)st;
    long long pend0 = acct_of("user:alice:cny", "debits_pending");
    /* over max_per_tx (50.00) */
    json_t *j = open_tab("t4", "shop", "60.00", 422);
    assert_string_equal(ac_test_jstr(j, "code"), "tab_denied");
    assert_string_equal(ac_test_jstr(json_object_get(j, "tab"), "status"), "denied");
    json_decref(j);
    /* a mandate without the micropay op */
    register_mandate("mp", "purchase", NULL);
    j = open_tab_as(agent1, "t5", "mp", "shop", "1.00", 3600, 422);
    assert_string_equal(ac_test_jstr(j, "code"), "tab_denied");
    json_decref(j);
    /* the wallet cannot cover the hold */
    json_t *p =
        ac_test_mandate_payload("mbig2", "alice", "agent-a", "shop", "CNY", "9000.00", "L5");
    char *body = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    json_decref(ac_test_api_call(&http, "POST", "/v1/mandates", NULL, body, 201));
    free(body);
    j = open_tab_as(agent1, "t6", "mbig2", "shop", "5000.00", 3600, 422);
    assert_string_equal(ac_test_jstr(j, "code"), "exceeds_credits");
    json_decref(j);
    /* bad input */
    j = open_tab_as(agent1, "t7", "m1", "shop", "0.00", 3600, 400);
    assert_string_equal(ac_test_jstr(j, "code"), "amount_zero");
    json_decref(j);
    j = open_tab_as(agent1, "t7", "m1", "shop", "1.00", 0, 400);
    assert_string_equal(ac_test_jstr(j, "code"), "parameter_invalid");
    json_decref(j);
    j = open_tab_as(agent1, "t7", "nomandate", "shop", "1.00", 60, 404);
    assert_string_equal(ac_test_jstr(j, "code"), "mandate_unknown");
    json_decref(j);
    j = open_tab_as(shop1, "t7", "m1", "shop", "1.00", 60, 401);
    json_decref(j);
    /* a denied tab holds nothing and cannot be settled */
    assert_int_equal(acct_of("user:alice:cny", "debits_pending"), pend0);
    refused_v("t4", 1, 100, 409, "tab_not_open");
}

static void expiry(void **st)
{
    (void)st;
    long long pend0 = acct_of("user:alice:cny", "debits_pending");
    json_decref(open_tab_as(agent1, "t8", "m1", "shop", "3.00", 1, 201));
    assert_int_equal(acct_of("user:alice:cny", "debits_pending") - pend0, 300);
    int expired = 0;
    for (int i = 0; i < 100 && !expired; i++) {
        expired = sql_int("select count(*) from ac_tabs where id = 't8' and status = 'expired'");
        if (!expired) usleep(100000);
    }
    assert_true(expired);
    assert_int_equal(acct_of("user:alice:cny", "debits_pending"), pend0);
    refused_v("t8", 1, 100, 410, "tab_expired");
    assert_int_equal(sql_int("select count(*) from ac_evidence where kind = 'tab.expire' and "
                             "payment_id = 't8'"),
                     1);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

#define CONC_THREADS 6
#define CONC_VOUCHERS 60

static char *conc_v[CONC_VOUCHERS];
static _Atomic int conc_next, conc_ok, conc_monotonic, conc_other;
static _Atomic long long conc_posted;

static void *conc_worker(void *arg)
{
    (void)arg;
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 20000);
    for (;;) {
        int i = atomic_fetch_add(&conc_next, 1);
        if (i >= CONC_VOUCHERS) break;
        json_t *j = NULL;
        int st = post_voucher(shop1, "tc", "settle", conc_v[i], &c, &j, NULL, 0);
        if (st == 200) {
            atomic_fetch_add(&conc_ok, 1);
            atomic_fetch_add(&conc_posted, amount_of(j, "amount"));
        } else if (st == 409 && strcmp(ac_test_jstr(j, "code"), "voucher_not_monotonic") == 0) {
            atomic_fetch_add(&conc_monotonic, 1);
        } else {
            atomic_fetch_add(&conc_other, 1);
        }
        json_decref(j);
    }
    ac_test_http_close(&c);
    return NULL;
}

static void concurrent_settles(void **st)
{
    (void)st;
    long long s0 = posted("merchant:shop:cny");
    json_decref(open_tab("tc", "shop", "20.00", 201));
    for (int i = 0; i < CONC_VOUCHERS; i++)
        conc_v[i] = voucher(agent1, "tc", i + 1, (i + 1) * 10);
    pthread_t th[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, conc_worker, NULL), 0);
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(conc_other, 0);
    assert_int_equal(conc_ok + conc_monotonic, CONC_VOUCHERS);
    assert_true(conc_ok >= 1);
    json_t *t = get_tab("tc");
    long long settled = amount_of(t, "settled");
    json_decref(t);
    /* the answers' deltas add up to the settled total, which the ledger moved exactly */
    assert_int_equal(conc_posted, settled);
    assert_int_equal(posted("merchant:shop:cny") - s0, settled);
    assert_int_equal(sql_int("select count(*) from ac_tab_settlements where tab_id = 'tc'"),
                     conc_ok);
    /* the highest voucher always ends up settled (the last one in is above any other) */
    assert_int_equal(sql_int("select last_seq from ac_tabs where id = 'tc'"), CONC_VOUCHERS);
    assert_int_equal(posted("merchant:shop:cny") - s0, CONC_VOUCHERS * 10);
    for (int i = 0; i < CONC_VOUCHERS; i++)
        free(conc_v[i]);
}

static void restart_keeps_tabs(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 20000), 0);
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    /* t2 settled voucher 4 (2.00) last: replays and order survive */
    char *v = voucher(agent1, "t2", 4, 200);
    refused(shop1, "t2", "settle", v, 409, "voucher_replayed");
    free(v);
    refused_v("t2", 4, 300, 409, "voucher_not_monotonic");
    json_t *s = settle_ok("t2", "settle", 9, 350);
    assert_int_equal(amount_of(s, "amount"), 150);
    json_decref(s);
    s = settle_ok("t2", "close", 0, 0); /* no voucher: void the rest */
    assert_int_equal(amount_of(s, "amount"), 0);
    assert_int_equal(amount_of(s, "released"), 150);
    json_decref(s);
    json_decref(open_tab("t1", "shop", "10.00", 200));
}

/* ---- reading --------------------------------------------------------------------------------- */

static void reading(void **st)
{
    (void)st;
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "rd%d", i);
        json_decref(open_tab(id, i % 2 ? "llm" : "shop", "0.50", 201));
    }
    PGconn *c = PQconnectdb(db_url);
    const char *bases[] = {"/v1/users/alice/tabs", "/v1/merchants/shop/tabs"};
    const char *sqls[] = {"select id from ac_tabs where user_id = 'alice' order by seq desc",
                          "select id from ac_tabs where payee = 'shop' order by seq desc"};
    for (int b = 0; b < 2; b++) {
        PGresult *want = PQexec(c, sqls[b]);
        int nwant = PQntuples(want), seen = 0;
        assert_true(nwant > 3);
        char cursor[128] = "";
        for (int pages = 0; pages < 100; pages++) {
            char path[300];
            snprintf(path, sizeof path, "%s?limit=3%s%s", bases[b], cursor[0] ? "&cursor=" : "",
                     cursor);
            json_t *j = call("GET", path, NULL, 200);
            json_t *data = json_object_get(j, "data");
            for (size_t i = 0; i < json_array_size(data); i++, seen++)
                assert_string_equal(ac_test_jstr(json_array_get(data, i), "id"),
                                    PQgetvalue(want, seen, 0));
            json_t *next = json_object_get(j, "next_cursor");
            if (next == NULL) {
                json_decref(j);
                break;
            }
            snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
            json_decref(j);
        }
        assert_int_equal(seen, nwant);
        PQclear(want);
    }
    PQfinish(c);
    ac_test_api_refused(&http, "GET", "/v1/users/alice/tabs?cursor=cDE6NQ", TOKEN, NULL, 400,
                        "parameter_invalid");
    ac_test_api_refused(&http, "GET", "/v1/users/alice/tabs?limit=0", TOKEN, NULL, 400,
                        "parameter_invalid");
    ac_test_api_refused(&http, "GET", "/v1/users/nobody/tabs", TOKEN, NULL, 404, "user_unknown");
    ac_test_api_refused(&http, "GET", "/v1/merchants/nobody/tabs", TOKEN, NULL, 404,
                        "merchant_unknown");
    ac_test_api_refused(&http, "GET", "/v1/tabs/nope", TOKEN, NULL, 404, "tab_unknown");
    ac_test_api_refused(&http, "GET", "/v1/tabs/t1", NULL, NULL, 401, "unauthorized");
}

static void audit_replay(void **st)
{
    (void)st;
    ac_test_payflow_wait_sealed(db_url);
    assert_int_equal(sql_int("select count(*) from ac_evidence where kind like 'tab.%'"),
                     sql_int("select count(*) from ac_tabs") +
                         sql_int("select count(*) from ac_tab_settlements"));
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
    EVP_PKEY **keys[] = {&alice1, &shop1, &llm1, &agent1, &agent2, &stranger};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        *keys[i] = ac_sig_keygen(i == 2 || i == 4 ? AC_SIG_ES256 : AC_SIG_ED25519);
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_http_tabs"));
    char dir[1024], keyfile[1100];
    snprintf(dir, sizeof dir, "%s/keys", ac_test_tmpdir());
    snprintf(keyfile, sizeof keyfile, "--out=%s/server.jwk", dir);
    char *kg[] = {(char *)ac_test_binary(), "keygen", keyfile, "--alg=ed25519", NULL};
    if (mkdir(dir, 0700) != 0 || ac_test_run("keygen", kg, 30000) != 0) return -1;
    snprintf(keys_env, sizeof keys_env, "AGENTCLEAR_KEYS_DIR=%s", dir);
    const char *env[] = {keys_env, "AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    if (ac_test_server_start(&srv, "http_tabs", db_url, TOKEN, env, READY_MS) != 0) return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    world();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    ac_test_server_kill(&srv);
    EVP_PKEY *keys[] = {alice1, shop1, llm1, agent1, agent2, stranger};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_settle_close),
        cmocka_unit_test(idempotency_keys),
        cmocka_unit_test(voucher_refusals),
        cmocka_unit_test(jose_voucher),
        cmocka_unit_test(denied_tabs),
        cmocka_unit_test(expiry),
        cmocka_unit_test(concurrent_settles),
        cmocka_unit_test(restart_keeps_tabs),
        cmocka_unit_test(reading),
        cmocka_unit_test(audit_replay),
        cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
