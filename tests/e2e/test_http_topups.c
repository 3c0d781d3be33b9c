/* Token top-ups end to end: a real `agentclear serve` child on a fresh PostgreSQL database, over
 * HTTP, with real keys, user-signed mandates, merchant-signed (RFC 9421) price lists and
 * agent-signed top-ups.
 * - Prices: a merchant publishes versions of its price list (evidence `price.publish`); the same
 *   version again is a replay, other prices under it price_version_exists, an older one
 *   price_version_old, another merchant's signature price_not_owner; every version stays readable.
 * - A top-up moves fiat user -> provider and tokens provider -> user at the published price as
 *   one linked pair, recorded as a `topup` evidence record with both transfers and the version.
 * - The pair is atomic: a provider whose token account cannot pay -> neither leg moves.
 * - The checks every agent money request opens with (POST /v1/payments, /v1/tabs, /v1/topups)
 *   answer the first fault in a fixed order, with its code, pointer and detail.
 * - Versions: a price change between two top-ups; a stale version is price_version_stale, an
 *   unknown one price_version_unknown, a pair the version does not list price_not_listed, an
 *   amount that buys no token topup_tokens_zero; rounding is floor.
 * - Idempotent by id; mandate caps count the fiat amount; step-up holds both legs (confirm posts
 *   both, decline voids both); reading by id and per user / merchant in cursor pages; a restart
 *   keeps versions and top-ups.
 * - The evidence export passes `agentclear audit replay --db` with every token amount
 *   recomputed; a tampered token amount fails it at that record. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cbor.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "protocol/buf.h"
#include "protocol/evidence.h"
#include "protocol/mandate.h"
#include "protocol/replay.h"
#include "protocol/sig.h"
#include "protocol/stepup.h"
#include "tests/support/agentsig.h"
#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define TOKEN "e2e-http-topups-operator-token"
#define READY_MS 30000

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];
static char keys_env[1100];
static EVP_PKEY *alice1, *shop1, *llm1, *agent1;

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *call(const char *method, const char *path, const char *json, int want)
{
    return ac_test_api_call(&http, method, path, TOKEN, json, want);
}

static long long sql_int(const char *q)
{
    return ac_test_sql_int(db_url, q);
}

/* A decimal string as the API formats it (exactly the asset's scale of decimals) in base units:
 * "12.34" -> 1234 at scale 2, "1000" -> 1000 at scale 0. */
static long long units(const char *s)
{
    int neg = *s == '-';
    long long v = 0;
    for (s += neg; *s; s++)
        if (*s != '.') v = v * 10 + (*s - '0');
    return neg ? -v : v;
}

/* credits_posted - debits_posted of a ledger account, in base units. */
static long long posted(const char *account)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/accounts/%s", account);
    json_t *j = call("GET", path, NULL, 200);
    const char *cp = ac_test_jstr(j, "credits_posted"), *dp = ac_test_jstr(j, "debits_posted");
    long long v = units(cp) - units(dp);
    json_decref(j);
    return v;
}

static long long pending_debits(const char *account)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/accounts/%s", account);
    json_t *j = call("GET", path, NULL, 200);
    long long v = units(ac_test_jstr(j, "debits_pending"));
    json_decref(j);
    return v;
}

/* A signed request (PUT or POST) by key; the status, the answer in *out (parsed, may be NULL). */
static int signed_req(EVP_PKEY *key, const char *method, const char *path, const char *body,
                      json_t **out)
{
    static char hdrs[16384];
    ac_test_agent_headers(key, srv.port, method, path, body, hdrs, sizeof hdrs);
    struct ac_test_http_resp r;
    int st = ac_test_http_request(&http, method, path, hdrs, body, strlen(body), &r);
    *out = ac_test_http_json(&r);
    ac_test_http_resp_free(&r);
    return st;
}

static char *price_body(long long version, const char *fiat, const char *tokens,
                        const char *fiat2_usd, const char *tokens2)
{
    json_t *a = json_pack("[{s:{s:s, s:s}, s:{s:s, s:s}}]", "fiat", "currency", "CNY", "value",
                          fiat, "tokens", "currency", "TOK", "value", tokens);
    if (fiat2_usd)
        json_array_append_new(a, json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "fiat", "currency",
                                           "USD", "value", fiat2_usd, "tokens", "currency", "TOK",
                                           "value", tokens2));
    json_t *o = json_pack("{s:I, s:o}", "version", (json_int_t)version, "prices", a);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* PUT the prices of merchant signed by key; must answer want. Returns the answer. */
static json_t *publish(EVP_PKEY *key, const char *merchant, const char *body, int want)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/merchants/%s/prices", merchant);
    json_t *j = NULL;
    int st = signed_req(key, "PUT", path, body, &j);
    if (st != want) {
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        fail_msg("PUT %s: expected %d, got %d: %s", path, want, st, t ? t : "(not json)");
    }
    if (j == NULL) fail_msg("PUT %s: not json", path);
    return j;
}

static void publish_refused(EVP_PKEY *key, const char *merchant, const char *body, int status,
                            const char *code)
{
    json_t *j = publish(key, merchant, body, status);
    assert_string_equal(ac_test_jstr(j, "code"), code);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
    json_decref(j);
}

static char *topup_body(const char *id, const char *mandate, const char *provider, const char *cur,
                        const char *value, const char *tok, long long version)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:I}", "id", id, "mandate", mandate,
                          "provider", provider, "amount", "currency", cur, "value", value,
                          "token_asset", tok, "price_version", (json_int_t)version);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* A top-up of value CNY in TOK by agent1 that must answer want. */
static json_t *topup(const char *id, const char *mandate, const char *provider, const char *value,
                     long long version, int want)
{
    char *body = topup_body(id, mandate, provider, "CNY", value, "TOK", version);
    json_t *j = NULL;
    int st = signed_req(agent1, "POST", "/v1/topups", body, &j);
    if (st != want) {
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        fail_msg("topup %s: expected %d, got %d: %s", id, want, st, t ? t : "(not json)");
    }
    free(body);
    if (j == NULL) fail_msg("topup %s: not json", id);
    return j;
}

static void topup_refused(const char *id, const char *mandate, const char *provider,
                          const char *cur, const char *value, const char *tok, long long version,
                          int status, const char *code)
{
    char *body = topup_body(id, mandate, provider, cur, value, tok, version);
    json_t *j = NULL;
    int st = signed_req(agent1, "POST", "/v1/topups", body, &j);
    if (st != status || j == NULL || strcmp(ac_test_jstr(j, "code"), code) != 0) {
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        fail_msg("topup %s: expected %d %s, got %d: %s", id, status, code, st,
                 t ? t : "(not json)");
    }
    json_decref(j);
    free(body);
}

static long long tokens_of(const json_t *t)
{
    return atoll(ac_test_jstr(json_object_get(t, "tokens"), "value"));
}

/* ---- the checks of an agent's money request, in order ---------------------------------------- */

/* POST /v1/payments, /v1/tabs and /v1/topups open alike (server/paydoc.c): each case has two or
 * more faults and the answer must name the first in the documented order (ids, the endpoint's own
 * members, currency, amount, mandate, payee), with its code, pointer and detail. */
static void request_checks_in_order(void **st)
{
    (void)st;
    static const struct {
        const char *path, *body;
        int status;
        const char *code, *pointer, *detail; /* NULL: absent */
    } v[] = {
        /* POST /v1/payments */
        {"/v1/payments", "{\"id\":\"p1\"}", 400, "json_schema", NULL,
         "Object item not found: mandate"},
        {"/v1/payments",
         "{\"id\":\"p 1\",\"mandate\":\"m 1\",\"payee\":\"s p\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"op\":\"nope\"}",
         400, "id_invalid", "/id", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m 1\",\"payee\":\"s p\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"}}",
         400, "id_invalid", "/mandate", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m1\",\"payee\":\"s p\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"op\":\"nope\"}",
         400, "id_invalid", "/payee", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"op\":\"nope\"}",
         400, "parameter_invalid", "/op", "op must be purchase, topup or micropay"},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"op\":\"topup\"}",
         400, "parameter_invalid", "/op",
         "a top-up is made with POST /v1/topups (fiat and tokens move as one pair)"},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"purpose\":\"a\\u0001b\",\"order_digest\":\"a b\"}",
         400, "parameter_invalid", "/purpose",
         "purpose must be 1-255 bytes of text without control characters"},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"order_digest\":\"a b\"}",
         400, "parameter_invalid", "/order_digest",
         "order_digest must be 1-127 printable ASCII characters without spaces"},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"order_digest\":7}",
         400, "parameter_invalid", "/order_digest",
         "order_digest must be 1-127 printable ASCII characters without spaces"},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"c\",\"value\":\"x\"}}",
         400, "asset_invalid", "/amount/currency", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"XYZ\",\"value\":\"x\"}}",
         404, "asset_unknown", "/amount/currency", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1.234\"}}",
         400, "amount_precision", "/amount/value", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"0.00\"}}",
         400, "amount_zero", "/amount/value", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1.00\"}}",
         404, "mandate_unknown", "/mandate", NULL},
        {"/v1/payments",
         "{\"id\":\"p1\",\"mandate\":\"m1\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1.00\"}}",
         404, "merchant_unknown", "/payee", NULL},
        /* POST /v1/tabs */
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"CNY\","
         "\"value\":\"1.00\"}}",
         400, "json_schema", NULL, "Object item not found: expires_in"},
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m1\",\"payee\":\"s p\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"expires_in\":0}",
         400, "id_invalid", "/payee", NULL},
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"expires_in\":0}",
         400, "parameter_invalid", "/expires_in", "expires_in must be 1 to 2592000 seconds"},
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m1\",\"payee\":\"shop\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"expires_in\":2592001}",
         400, "parameter_invalid", "/expires_in", "expires_in must be 1 to 2592000 seconds"},
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"XYZ\",\"value\":\"x\"},\"expires_in\":60}",
         404, "asset_unknown", "/amount/currency", NULL},
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"0\"},\"expires_in\":60}",
         400, "amount_zero", "/amount/value", NULL},
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m-none\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1\"},\"expires_in\":60}",
         404, "mandate_unknown", "/mandate", NULL},
        {"/v1/tabs",
         "{\"id\":\"t1\",\"mandate\":\"m1\",\"payee\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1\"},\"expires_in\":60}",
         404, "merchant_unknown", "/payee", NULL},
        /* POST /v1/topups */
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"llm\",\"amount\":{\"currency\":\"CNY\","
         "\"value\":\"1\"},\"token_asset\":\"TOK\",\"price_version\":1,\"x\":1}",
         400, "json_schema", NULL, "1 object item(s) left unpacked: x"},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"l m\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"token_asset\":\"t\",\"price_version\":0}",
         400, "id_invalid", "/provider", NULL},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"llm\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"token_asset\":\"t\",\"price_version\":0}",
         400, "parameter_invalid", "/price_version", "price_version must be a positive integer"},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"llm\",\"amount\":{\"currency\":\"c\","
         "\"value\":\"x\"},\"token_asset\":\"t\",\"price_version\":1}",
         400, "asset_invalid", "/amount/currency", NULL},
        /* the token's code is checked before the currency is looked up */
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"llm\",\"amount\":{\"currency\":\"XYZ\","
         "\"value\":\"x\"},\"token_asset\":\"t\",\"price_version\":1}",
         400, "asset_invalid", "/token_asset", NULL},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"llm\",\"amount\":{\"currency\":\"XYZ\","
         "\"value\":\"x\"},\"token_asset\":\"NOPE\",\"price_version\":1}",
         404, "asset_unknown", "/amount/currency", NULL},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"llm\",\"amount\":{\"currency\":\"CNY\","
         "\"value\":\"x\"},\"token_asset\":\"NOPE\",\"price_version\":1}",
         404, "asset_unknown", "/token_asset", NULL},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m-none\",\"provider\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"0\"},\"token_asset\":\"TOK\",\"price_version\":1}",
         400, "amount_zero", "/amount/value", NULL},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m-none\",\"provider\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1\"},\"token_asset\":\"TOK\",\"price_version\":99}",
         404, "mandate_unknown", "/mandate", NULL},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"nobody\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1\"},\"token_asset\":\"TOK\",\"price_version\":99}",
         404, "merchant_unknown", "/provider", NULL},
        {"/v1/topups",
         "{\"id\":\"u1\",\"mandate\":\"m1\",\"provider\":\"llm\",\"amount\":{\"currency\":"
         "\"CNY\",\"value\":\"1\"},\"token_asset\":\"TOK\",\"price_version\":99}",
         404, "price_version_unknown", "/price_version", NULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        json_t *j = NULL;
        int got = signed_req(agent1, "POST", v[i].path, v[i].body, &j);
        const char *code = j ? json_string_value(json_object_get(j, "code")) : NULL;
        const char *ptr = j ? json_string_value(json_object_get(j, "pointer")) : NULL;
        const char *detail = j ? json_string_value(json_object_get(j, "detail")) : NULL;
        int same = got == v[i].status && code && strcmp(code, v[i].code) == 0 &&
                   (v[i].pointer ? ptr && strcmp(ptr, v[i].pointer) == 0 : ptr == NULL) &&
                   (v[i].detail ? detail && strcmp(detail, v[i].detail) == 0 : detail == NULL);
        if (!same) {
            char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
            fail_msg("case %zu %s: expected %d %s %s, got %d: %s", i, v[i].path, v[i].status,
                     v[i].code, v[i].pointer ? v[i].pointer : "-", got, t ? t : "(not json)");
        }
        json_decref(j);
    }
    /* nothing of it reached the ledger */
    assert_int_equal(sql_int("select count(*) from ac_payments where id in ('p1', 'u1')"), 0);
    assert_int_equal(sql_int("select count(*) from ac_tabs where id = 't1'"), 0);
}

/* ---- the world ------------------------------------------------------------------------------- */

static void register_mandate(const char *id, const char *max_per_tx, const char *total_cap,
                             const char *step_up_above)
{
    json_t *p = ac_test_mandate_payload(id, "alice", "agent-a", "llm", "CNY", max_per_tx,
                                        step_up_above ? "L4" : "L5");
    json_object_set_new(p, "payees", json_pack("{s:[s, s]}", "merchants", "shop", "llm"));
    json_object_set_new(p, "ops", json_pack("[s]", "topup"));
    if (total_cap) json_object_set_new(p, "caps", json_pack("{s:s}", "total", total_cap));
    if (step_up_above) json_object_set_new(p, "step_up_above", json_string(step_up_above));
    char *body = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    json_decref(ac_test_api_call(&http, "POST", "/v1/mandates", NULL, body, 201));
    free(body);
}

static void world(void)
{
    ac_test_payflow_parties(&http, TOKEN, alice1, NULL, shop1, llm1);
    json_decref(call("POST", "/v1/ledger/assets", "{\"code\":\"TOK\",\"scale\":0}", 201));
    json_decref(call("POST", "/v1/ledger/assets", "{\"code\":\"TOK2\",\"scale\":0}", 201));
    /* llm issues its tokens: its token account may go negative (no balance flag); shop's token
     * account must be funded first (debits_must_not_exceed_credits) and is not */
    json_decref(call("POST", "/v1/ledger/accounts",
                     "{\"accounts\":[{\"id\":\"bank:cny\",\"asset\":\"CNY\"},"
                     "{\"id\":\"user:alice:cny\",\"asset\":\"CNY\",\"owner\":\"alice\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]},"
                     "{\"id\":\"user:alice:tok\",\"asset\":\"TOK\",\"owner\":\"alice\"},"
                     "{\"id\":\"merchant:llm:cny\",\"asset\":\"CNY\",\"owner\":\"llm\"},"
                     "{\"id\":\"merchant:llm:tok\",\"asset\":\"TOK\",\"owner\":\"llm\"},"
                     "{\"id\":\"merchant:shop:cny\",\"asset\":\"CNY\",\"owner\":\"shop\"},"
                     "{\"id\":\"merchant:shop:tok\",\"asset\":\"TOK\",\"owner\":\"shop\","
                     "\"flags\":[\"debits_must_not_exceed_credits\"]}]}",
                     200));
    json_decref(call("POST", "/v1/ledger/transfers",
                     "{\"transfers\":[{\"id\":\"fund-alice\",\"debit_account\":\"bank:cny\","
                     "\"credit_account\":\"user:alice:cny\",\"amount\":\"1000.00\","
                     "\"asset\":\"CNY\"}]}",
                     200));
    ac_test_payflow_binding(&http, "b1", alice1, "alice", agent1, "agent-a");
    register_mandate("m1", "100.00", NULL, NULL);
}

/* ---- prices ---------------------------------------------------------------------------------- */

static void prices(void **st)
{
    (void)st;
    char *v1 = price_body(1, "1.00", "1000", NULL, NULL);
    json_t *j = publish(llm1, "llm", v1, 201);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    json_t *p0 = json_array_get(json_object_get(j, "prices"), 0);
    assert_string_equal(ac_test_jstr(json_object_get(p0, "fiat"), "value"), "1.00");
    assert_string_equal(ac_test_jstr(json_object_get(p0, "tokens"), "value"), "1000");
    struct ac_ev_record r;
    ac_test_payflow_evidence(db_url, json_object_get(j, "evidence"), &r);
    assert_string_equal(ac_ev_kind_name(r.kind), "price.publish");
    assert_string_equal(r.body.payee, "llm");
    assert_string_equal(r.body.ref, "1");
    assert_true(r.body.request.has_body);
    assert_int_equal(r.body.request.body_len, strlen(v1));
    assert_memory_equal(r.body.request.body, v1, strlen(v1));
    assert_string_equal(r.body.request.keyid, ac_test_kid(llm1));
    ac_ev_record_clear(&r);
    /* the same version again: the original answer */
    json_t *again = publish(llm1, "llm", v1, 200);
    assert_true(json_equal(j, again));
    json_decref(again);
    json_decref(j);
    /* other prices under the version; an older version after a newer one */
    char *other = price_body(1, "1.00", "999", NULL, NULL);
    publish_refused(llm1, "llm", other, 409, "price_version_exists");
    free(other);
    /* another merchant's signature; an agent's */
    publish_refused(shop1, "llm", v1, 403, "price_not_owner");
    json_t *aj = NULL;
    int s = signed_req(agent1, "PUT", "/v1/merchants/llm/prices", v1, &aj);
    assert_true(s == 401 || s == 403);
    json_decref(aj);
    /* bad bodies, nothing published */
    const char *bad[][2] = {
        {"{\"version\":2}", "price_invalid"},
        {"{\"version\":0,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"1\"},"
         "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}]}",
         "price_invalid"},
        {"{\"version\":2,\"prices\":[]}", "price_invalid"},
        {"{\"version\":2,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"1\"},"
         "\"tokens\":{\"currency\":\"CNY\",\"value\":\"1\"}}]}",
         "price_invalid"},
        {"{\"version\":2,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"0.00\"},"
         "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}]}",
         "price_invalid"},
        {"{\"version\":2,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"1\"},"
         "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1.5\"}}]}",
         "amount_precision"},
        {"{\"version\":2,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"-1\"},"
         "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}]}",
         "price_invalid"},
        {"{\"version\":2.5,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"1\"},"
         "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}]}",
         "price_invalid"},
        {"{\"version\":2,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"1\"},"
         "\"tokens\":{\"currency\":\"XYZ\",\"value\":\"1\"}}]}",
         "asset_unknown"},
        {"{\"version\":2,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"1\"},"
         "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"},\"x\":1}]}",
         "price_invalid"},
        {"{\"version\":2,\"version\":3}", "json_invalid"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b =
            publish(llm1, "llm", bad[i][0], bad[i][1][0] == 'a' && bad[i][1][1] == 's' ? 404 : 400);
        if (strcmp(ac_test_jstr(b, "code"), bad[i][1]) != 0)
            fail_msg("bad price body %zu: want %s, got %s", i, bad[i][1], ac_test_jstr(b, "code"));
        json_decref(b);
    }
    assert_int_equal(sql_int("select count(*) from ac_price_versions where merchant_id = 'llm'"),
                     1);
    /* reading: the list and one version; unknown ones */
    j = call("GET", "/v1/merchants/llm/prices", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "current")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "versions")), 1);
    json_decref(j);
    json_decref(call("GET", "/v1/merchants/llm/prices/1", NULL, 200));
    ac_test_api_refused(&http, "GET", "/v1/merchants/llm/prices/7", TOKEN, NULL, 404,
                        "price_version_unknown");
    ac_test_api_refused(&http, "GET", "/v1/merchants/llm/prices/x", TOKEN, NULL, 400,
                        "parameter_invalid");
    ac_test_api_refused(&http, "GET", "/v1/merchants/nobody/prices", TOKEN, NULL, 404,
                        "merchant_unknown");
    ac_test_api_refused(&http, "GET", "/v1/merchants/llm/prices", NULL, NULL, 401, "unauthorized");
    j = call("GET", "/v1/merchants/shop/prices", NULL, 200);
    assert_true(json_is_null(json_object_get(j, "current")));
    json_decref(j);
    free(v1);
}

/* ---- top-ups --------------------------------------------------------------------------------- */

static void topup_settles(void **st)
{
    (void)st;
    long long a0 = posted("user:alice:cny"), l0 = posted("merchant:llm:cny");
    long long at0 = posted("user:alice:tok"), lt0 = posted("merchant:llm:tok");
    json_t *j = topup("t1", "m1", "llm", "10.00", 1, 201);
    assert_string_equal(ac_test_jstr(j, "status"), "settled");
    assert_string_equal(ac_test_jstr(j, "provider"), "llm");
    assert_string_equal(ac_test_jstr(j, "user"), "alice");
    assert_int_equal(tokens_of(j), 10000);
    json_t *price = json_object_get(j, "price");
    assert_int_equal(json_integer_value(json_object_get(price, "version")), 1);
    assert_string_equal(ac_test_jstr(json_object_get(price, "tokens"), "value"), "1000");
    assert_int_equal(a0 - posted("user:alice:cny"), 1000);
    assert_int_equal(posted("merchant:llm:cny") - l0, 1000);
    assert_int_equal(posted("user:alice:tok") - at0, 10000);
    assert_int_equal(lt0 - posted("merchant:llm:tok"), 10000);
    /* the evidence: one topup record with the linked pair and the version */
    struct ac_ev_record r;
    ac_test_payflow_evidence(db_url, json_object_get(j, "evidence"), &r);
    assert_string_equal(ac_ev_kind_name(r.kind), "topup");
    assert_string_equal(r.body.payment, "t1");
    assert_string_equal(r.body.payee, "llm");
    assert_string_equal(r.body.ref, "1");
    assert_int_equal(r.body.decision, AC_EV_ALLOW);
    assert_int_equal(r.body.amount.value, 1000);
    assert_int_equal(r.body.ntransfers, 2);
    assert_string_equal(r.body.transfers[0].debit, "user:alice:cny");
    assert_string_equal(r.body.transfers[0].credit, "merchant:llm:cny");
    assert_int_equal(r.body.transfers[0].amount, 1000);
    assert_int_equal(r.body.transfers[0].flags, 0x01); /* linked to the next */
    assert_string_equal(r.body.transfers[1].debit, "merchant:llm:tok");
    assert_string_equal(r.body.transfers[1].credit, "user:alice:tok");
    assert_int_equal(r.body.transfers[1].amount, 10000);
    assert_string_equal(r.body.transfers[1].id, ac_test_jstr(j, "token_transfer"));
    assert_true(r.body.request.has_body);
    ac_ev_record_clear(&r);
    /* the same request again: the original answer, nothing moves; another request: refused */
    json_t *again = topup("t1", "m1", "llm", "10.00", 1, 200);
    assert_true(json_equal(j, again));
    json_decref(again);
    topup_refused("t1", "m1", "llm", "CNY", "11.00", "TOK", 1, 409, "payment_exists");
    assert_int_equal(posted("user:alice:tok") - at0, 10000);
    /* read back */
    again = call("GET", "/v1/topups/t1", NULL, 200);
    assert_true(json_equal(j, again));
    json_decref(again);
    ac_test_api_refused(&http, "GET", "/v1/topups/nope", TOKEN, NULL, 404, "topup_unknown");
    json_decref(j);
}

/* A signed request with an Idempotency-Key; the response in *r (freed by the caller). */
static int keyed(EVP_PKEY *key, const char *method, const char *path, const char *body,
                 const char *idem, struct ac_test_http_resp *r)
{
    static char hdrs[16384];
    ac_test_agent_headers(key, srv.port, method, path, body, hdrs, sizeof hdrs);
    size_t n = strlen(hdrs);
    snprintf(hdrs + n, sizeof hdrs - n, "Idempotency-Key: %s\r\n", idem);
    return ac_test_http_request(&http, method, path, hdrs, body, strlen(body), r);
}

static int replayed(const struct ac_test_http_resp *r)
{
    char v[16];
    return ac_test_http_header(r, "Idempotent-Replayed", v, sizeof v) && strcmp(v, "true") == 0;
}

/* Top-ups and price lists under an Idempotency-Key: their answers read what the batch wrote (on
 * the sequencer's connection, server/idem.h); the replay is the same bytes and moves nothing. */
static void idempotency_keys(void **st)
{
    (void)st;
    /* a price version published again under a key (the version exists: 200), then replayed */
    char *v1 = price_body(1, "1.00", "1000", NULL, NULL);
    struct ac_test_http_resp a, b;
    assert_int_equal(keyed(llm1, "PUT", "/v1/merchants/llm/prices", v1, "prices-k1", &a), 200);
    assert_false(replayed(&a));
    assert_int_equal(keyed(llm1, "PUT", "/v1/merchants/llm/prices", v1, "prices-k1", &b), 200);
    assert_true(replayed(&b));
    assert_int_equal(b.body_len, a.body_len);
    assert_memory_equal(b.body, a.body, a.body_len);
    ac_test_http_resp_free(&a);
    ac_test_http_resp_free(&b);
    /* a top-up under a key: settled once; the replay answers the same bytes */
    long long at0 = posted("user:alice:tok"), ev0 = sql_int("select count(*) from ac_evidence");
    char *body = topup_body("t-keyed", "m1", "llm", "CNY", "1.00", "TOK", 1);
    assert_int_equal(keyed(agent1, "POST", "/v1/topups", body, "topup-k1", &a), 201);
    assert_false(replayed(&a));
    assert_int_equal(keyed(agent1, "POST", "/v1/topups", body, "topup-k1", &b), 201);
    assert_true(replayed(&b));
    assert_int_equal(b.body_len, a.body_len);
    assert_memory_equal(b.body, a.body, a.body_len);
    assert_int_equal(posted("user:alice:tok") - at0, 1000);
    assert_int_equal(sql_int("select count(*) from ac_evidence") - ev0, 1);
    ac_test_http_resp_free(&a);
    ac_test_http_resp_free(&b);
    free(body);
    free(v1);
}

/* The provider's token account cannot pay: neither leg moves, the top-up is failed. */
static void pair_atomic(void **st)
{
    (void)st;
    char *v1 = price_body(1, "1.00", "100", NULL, NULL);
    json_decref(publish(shop1, "shop", v1, 201));
    free(v1);
    long long a0 = posted("user:alice:cny"), s0 = posted("merchant:shop:cny");
    long long at0 = posted("user:alice:tok"), st0 = posted("merchant:shop:tok");
    json_t *j = topup("t-atomic", "m1", "shop", "5.00", 1, 422);
    assert_string_equal(ac_test_jstr(j, "code"), "exceeds_credits");
    json_t *t = json_object_get(j, "topup");
    assert_string_equal(ac_test_jstr(t, "status"), "failed");
    assert_int_equal(posted("user:alice:cny"), a0);
    assert_int_equal(posted("merchant:shop:cny"), s0);
    assert_int_equal(posted("user:alice:tok"), at0);
    assert_int_equal(posted("merchant:shop:tok"), st0);
    json_decref(j);
    assert_int_equal(sql_int("select count(*) from ac_transfers where debit_account = "
                             "'user:alice:cny' and credit_account = 'merchant:shop:cny'"),
                     0);
    /* funded by the operator, a new top-up goes through */
    json_decref(call("POST", "/v1/ledger/accounts",
                     "{\"accounts\":[{\"id\":\"mint:tok\",\"asset\":\"TOK\"}]}", 200));
    json_decref(call("POST", "/v1/ledger/transfers",
                     "{\"transfers\":[{\"id\":\"mint-shop\",\"debit_account\":\"mint:tok\","
                     "\"credit_account\":\"merchant:shop:tok\",\"amount\":\"1000\","
                     "\"asset\":\"TOK\"}]}",
                     200));
    j = topup("t-atomic-2", "m1", "shop", "5.00", 1, 201);
    assert_int_equal(tokens_of(j), 500);
    json_decref(j);
    assert_int_equal(posted("merchant:shop:tok") - st0, 500);
}

static void versions(void **st)
{
    (void)st;
    /* the price changes between two top-ups */
    char *v2 = price_body(2, "1.00", "1500", NULL, NULL);
    json_decref(publish(llm1, "llm", v2, 201));
    free(v2);
    /* an old version again with its own prices is still a replay; never current again */
    char *v1 = price_body(1, "1.00", "1000", NULL, NULL);
    json_decref(publish(llm1, "llm", v1, 200));
    free(v1);
    long long at0 = posted("user:alice:tok"), a0 = posted("user:alice:cny");
    topup_refused("t-stale", "m1", "llm", "CNY", "10.00", "TOK", 1, 409, "price_version_stale");
    topup_refused("t-unknown", "m1", "llm", "CNY", "10.00", "TOK", 99, 404,
                  "price_version_unknown");
    assert_int_equal(posted("user:alice:tok"), at0);
    assert_int_equal(posted("user:alice:cny"), a0);
    json_t *j = topup("t2", "m1", "llm", "10.00", 2, 201);
    assert_int_equal(tokens_of(j), 15000);
    json_decref(j);
    /* the stale top-up's id was not used up: at the current version it goes through */
    j = topup("t-stale", "m1", "llm", "1.00", 2, 201);
    assert_int_equal(tokens_of(j), 1500);
    json_decref(j);
    assert_int_equal(posted("user:alice:tok") - at0, 16500);
    /* rounding down: 3.00 CNY buy 1000 TOK, so 0.01 buys 3 (3.33...) and 0.02 buys 6 (6.66...);
     * in USD 1.00 buys 1 TOK, so 0.99 buys none */
    char *v3 = price_body(3, "3.00", "1000", "1.00", "1");
    json_decref(publish(llm1, "llm", v3, 201));
    free(v3);
    j = topup("t-r1", "m1", "llm", "0.01", 3, 201);
    assert_int_equal(tokens_of(j), 3);
    json_decref(j);
    j = topup("t-r2", "m1", "llm", "0.02", 3, 201);
    assert_int_equal(tokens_of(j), 6);
    json_decref(j);
    topup_refused("t-zero", "m1", "llm", "USD", "0.99", "TOK", 3, 422, "topup_tokens_zero");
    topup_refused("t-nl", "m1", "llm", "CNY", "1.00", "TOK2", 3, 422, "price_not_listed");
    /* a version older than the current one: refused; shop: 1, then 5, then 3 */
    char *s5 = price_body(5, "1.00", "100", NULL, NULL),
         *s3 = price_body(3, "1.00", "100", NULL, NULL);
    json_decref(publish(shop1, "shop", s5, 201));
    publish_refused(shop1, "shop", s3, 409, "price_version_old");
    free(s5);
    free(s3);
    topup_refused("t-s", "m1", "shop", "CNY", "1.00", "TOK", 4, 404, "price_version_unknown");
    /* bad input */
    topup_refused("bad id!", "m1", "llm", "CNY", "1.00", "TOK", 3, 400, "id_invalid");
    topup_refused("t-b", "m1", "llm", "CNY", "0.00", "TOK", 3, 400, "amount_zero");
    topup_refused("t-b", "m1", "llm", "CNY", "1.001", "TOK", 3, 400, "amount_precision");
    topup_refused("t-b", "m1", "llm", "CNY", "1.00", "NOPE", 3, 404, "asset_unknown");
    topup_refused("t-b", "m1", "nobody", "CNY", "1.00", "TOK", 3, 404, "merchant_unknown");
    topup_refused("t-b", "nope", "llm", "CNY", "1.00", "TOK", 3, 404, "mandate_unknown");
    topup_refused("t-b", "m1", "llm", "CNY", "1.00", "TOK", 0, 400, "parameter_invalid");
    json_t *e = NULL;
    assert_int_equal(signed_req(agent1, "POST", "/v1/topups", "{\"id\":\"t-b\"}", &e), 400);
    assert_string_equal(ac_test_jstr(e, "code"), "json_schema");
    json_decref(e);
    /* a merchant cannot top up */
    char *body = topup_body("t-b", "m1", "llm", "CNY", "1.00", "TOK", 3);
    assert_true(signed_req(llm1, "POST", "/v1/topups", body, &e) >= 400);
    json_decref(e);
    free(body);
    assert_int_equal(sql_int("select count(*) from ac_payments where id = 't-b'"), 0);
}

/* A mandate's caps count the fiat amount (the tokens are not money of the mandate's asset). */
static void caps_in_fiat(void **st)
{
    (void)st;
    register_mandate("mc", "100.00", "20.00", NULL);
    json_decref(topup("tc1", "mc", "llm", "15.00", 3, 201)); /* 5000 TOK */
    json_t *j = topup("tc2", "mc", "llm", "6.00", 3, 422);
    assert_string_equal(ac_test_jstr(j, "code"), "payment_denied");
    assert_string_equal(ac_test_jstr(json_object_get(j, "topup"), "status"), "denied");
    json_decref(j);
    json_decref(topup("tc3", "mc", "llm", "5.00", 3, 201));
    j = call("GET", "/v1/mandates/mc", NULL, 200);
    json_t *total = json_object_get(json_object_get(j, "spend"), "total");
    assert_int_equal(ac_test_cents(ac_test_jstr(json_object_get(total, "spent"), "value")), 2000);
    json_decref(j);
    /* a purchase-only mandate cannot top up */
    json_t *p = ac_test_mandate_payload("mp", "alice", "agent-a", "llm", "CNY", "100.00", "L5");
    json_object_set_new(p, "ops", json_pack("[s]", "purchase"));
    char *body = ac_test_signed_body(alice1, AC_MANDATE_TYP, p);
    json_decref(ac_test_api_call(&http, "POST", "/v1/mandates", NULL, body, 201));
    free(body);
    j = topup("tp1", "mp", "llm", "1.00", 3, 422);
    assert_string_equal(ac_test_jstr(j, "code"), "payment_denied");
    json_decref(j);
}

static json_t *answer(const json_t *t, const char *decision, int want)
{
    json_t *az = json_object_get(t, "authorization");
    char *conf = ac_test_signed_body(
        alice1, AC_CONFIRMATION_TYP,
        ac_test_confirmation_payload(json_object_get(az, "challenge"), decision));
    char path[160];
    snprintf(path, sizeof path, "/v1/authorizations/%s/%s", ac_test_jstr(az, "id"), decision);
    json_t *j = ac_test_api_call(&http, "POST", path, NULL, conf, want);
    free(conf);
    return j;
}

/* Above the threshold both legs are held; confirming posts both, declining voids both. */
static void stepup_holds_both_legs(void **st)
{
    (void)st;
    register_mandate("ms", "100.00", NULL, "5.00");
    long long a0 = posted("user:alice:cny"), at0 = posted("user:alice:tok");
    long long lt0 = posted("merchant:llm:tok");
    long long ap0 = pending_debits("user:alice:cny"), lp0 = pending_debits("merchant:llm:tok");
    json_t *j = topup("ts1", "ms", "llm", "9.00", 3, 201); /* 3000 TOK */
    assert_string_equal(ac_test_jstr(j, "status"), "pending_confirmation");
    assert_int_equal(pending_debits("user:alice:cny") - ap0, 900);
    assert_int_equal(pending_debits("merchant:llm:tok") - lp0, 3000);
    struct ac_ev_record r;
    ac_test_payflow_evidence(db_url, json_object_get(j, "evidence"), &r);
    assert_string_equal(ac_ev_kind_name(r.kind), "topup");
    assert_int_equal(r.body.decision, AC_EV_STEP_UP);
    assert_int_equal(r.body.ntransfers, 2);
    assert_int_equal(r.body.transfers[0].flags, 0x03); /* linked, pending */
    assert_int_equal(r.body.transfers[1].flags, 0x02);
    ac_ev_record_clear(&r);
    json_decref(answer(j, "confirm", 200));
    json_decref(j);
    j = call("GET", "/v1/topups/ts1", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "status"), "settled");
    json_decref(j);
    assert_int_equal(a0 - posted("user:alice:cny"), 900);
    assert_int_equal(posted("user:alice:tok") - at0, 3000);
    assert_int_equal(lt0 - posted("merchant:llm:tok"), 3000);
    assert_int_equal(pending_debits("user:alice:cny"), ap0);
    assert_int_equal(pending_debits("merchant:llm:tok"), lp0);
    /* declined: both holds voided, nothing moved */
    j = topup("ts2", "ms", "llm", "6.00", 3, 201);
    assert_string_equal(ac_test_jstr(j, "status"), "pending_confirmation");
    json_decref(answer(j, "decline", 200));
    json_decref(j);
    assert_int_equal(a0 - posted("user:alice:cny"), 900);
    assert_int_equal(posted("user:alice:tok") - at0, 3000);
    assert_int_equal(pending_debits("user:alice:cny"), ap0);
    assert_int_equal(pending_debits("merchant:llm:tok"), lp0);
    /* one left pending across the restart (restart_keeps_everything confirms it) */
    j = topup("ts3", "ms", "llm", "6.00", 3, 201);
    assert_string_equal(ac_test_jstr(j, "status"), "pending_confirmation");
    json_decref(j);
}

/* ---- reading --------------------------------------------------------------------------------- */

static void walk(const char *base, int limit, const char *sql)
{
    PGconn *c = PQconnectdb(db_url);
    PGresult *want = PQexec(c, sql);
    assert_int_equal(PQresultStatus(want), PGRES_TUPLES_OK);
    int nwant = PQntuples(want), seen = 0;
    assert_true(nwant > limit);
    char cursor[256] = "";
    for (int pages = 0; pages < 1000; pages++) {
        char path[512];
        snprintf(path, sizeof path, "%s?limit=%d%s%s", base, limit, cursor[0] ? "&cursor=" : "",
                 cursor);
        json_t *j = call("GET", path, NULL, 200);
        json_t *data = json_object_get(j, "data");
        for (size_t i = 0; i < json_array_size(data); i++, seen++) {
            assert_true(seen < nwant);
            json_t *t = json_array_get(data, i);
            assert_string_equal(ac_test_jstr(t, "id"), PQgetvalue(want, seen, 0));
            assert_non_null(json_object_get(t, "tokens"));
            assert_non_null(json_object_get(t, "price"));
        }
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
    PQfinish(c);
}

static void reading(void **st)
{
    (void)st;
    walk("/v1/users/alice/topups", 3,
         "select id from ac_payments where user_id = 'alice' and op = 'topup' order by seq desc");
    walk("/v1/merchants/llm/topups", 4,
         "select id from ac_payments where payee = 'llm' and op = 'topup' order by seq desc");
    ac_test_api_refused(&http, "GET", "/v1/users/alice/topups?cursor=cDE6NQ", TOKEN, NULL, 400,
                        "parameter_invalid");
    ac_test_api_refused(&http, "GET", "/v1/users/alice/topups?limit=0", TOKEN, NULL, 400,
                        "parameter_invalid");
    ac_test_api_refused(&http, "GET", "/v1/users/nobody/topups", TOKEN, NULL, 404, "user_unknown");
    ac_test_api_refused(&http, "GET", "/v1/merchants/nobody/topups", TOKEN, NULL, 404,
                        "merchant_unknown");
    /* a top-up is also a payment (op topup) of the user */
    json_t *j = call("GET", "/v1/payments/t1", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "op"), "topup");
    json_decref(j);
    /* token balances */
    j = call("GET", "/v1/users/alice/balances", NULL, 200);
    json_t *bs = json_object_get(j, "balances");
    int found = 0;
    for (size_t i = 0; i < json_array_size(bs); i++)
        if (strcmp(ac_test_jstr(json_array_get(bs, i), "account"), "user:alice:tok") == 0) {
            found = 1;
            assert_int_equal(
                atoll(ac_test_jstr(json_object_get(json_array_get(bs, i), "posted"), "value")),
                posted("user:alice:tok"));
        }
    assert_true(found);
    json_decref(j);
    /* the tokens alice holds are exactly what her settled top-ups bought */
    assert_int_equal(posted("user:alice:tok"),
                     sql_int("select coalesce(sum(t.token_amount), 0) from ac_topups t join "
                             "ac_payments p on p.id = t.id where p.status = 'settled' and "
                             "p.user_id = 'alice'"));
}

static void restart_keeps_everything(void **st)
{
    (void)st;
    ac_test_http_close(&http);
    assert_int_equal(ac_test_server_stop(&srv, 20000), 0);
    assert_int_equal(ac_test_server_restart(&srv, READY_MS), 0);
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    json_decref(topup("t1", "m1", "llm", "10.00", 1, 200)); /* replay */
    topup_refused("t-after", "m1", "llm", "CNY", "1.00", "TOK", 2, 409, "price_version_stale");
    json_t *j = topup("t-after", "m1", "llm", "3.00", 3, 201);
    assert_int_equal(tokens_of(j), 1000);
    json_decref(j);
    /* the step-up left pending before the restart still holds both legs: confirm it */
    long long at0 = posted("user:alice:tok");
    j = call("GET", "/v1/topups/ts3", NULL, 200);
    assert_string_equal(ac_test_jstr(j, "status"), "pending_confirmation");
    json_decref(answer(j, "confirm", 200));
    json_decref(j);
    assert_int_equal(posted("user:alice:tok") - at0, 2000);
}

/* ---- audit ----------------------------------------------------------------------------------- */

/* Rewrite an export: the first settled topup record's token amount + 1, re-encoded validly, and
 * every later record re-chained. *seq: the tampered record. 0 or -1. */
static int tamper_tokens(const uint8_t *in, size_t n, struct ac_buf *out, uint64_t *seq)
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
            struct ac_ev_transfer tr[2];
            int touch = done;
            if (!done && r.kind == AC_EV_TOPUP && r.body.decision == AC_EV_ALLOW &&
                r.body.ntransfers == 2) {
                memcpy(tr, r.body.transfers, sizeof tr);
                tr[1].amount += 1;
                r.body.transfers = tr;
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

static void audit_replay(void **st)
{
    (void)st;
    ac_test_payflow_wait_sealed(db_url);
    assert_int_equal(sql_int("select count(*) from ac_evidence where kind = 'price.publish'"),
                     sql_int("select count(*) from ac_price_versions"));
    long long topups = sql_int("select count(*) from ac_evidence where kind = 'topup'");
    assert_true(topups > 0);
    ac_test_payflow_export_replay(db_url);
    char logf[1100];
    snprintf(logf, sizeof logf, "%s/audit_replay.log", ac_test_tmpdir());
    char *log = ac_test_read_file(logf, NULL);
    assert_non_null(log);
    const char *line = strstr(log, "replay: top-ups: ");
    assert_non_null(line);
    long long n = -1;
    assert_int_equal(sscanf(line, "replay: top-ups: %lld token amounts recomputed", &n), 1);
    assert_int_equal(n, topups);
    line = strstr(log, "replay: decisions: ");
    assert_non_null(line);
    unsigned long long rec = 0, led = 0, usr = 0, nrc = 0;
    assert_int_equal(sscanf(line,
                            "replay: decisions: %llu recomputed with the risk engine and equal, "
                            "%llu ledger refusals (risk let them through), %llu declined by the "
                            "user, %llu not recomputable",
                            &rec, &led, &usr, &nrc),
                     4);
    assert_int_equal(nrc, 0);
    assert_int_equal((long long)led, sql_int("select count(*) from ac_payments where status = "
                                             "'failed'"));
    free(log);

    /* a token amount changed and the rest of the chain re-linked: the replay fails there */
    char file[1100], bad[1100];
    snprintf(file, sizeof file, "%s/export.bin", ac_test_tmpdir());
    size_t len = 0;
    uint8_t *buf = (uint8_t *)ac_test_read_file(file, &len);
    assert_non_null(buf);
    struct ac_buf t = {0};
    uint64_t seq = 0;
    assert_int_equal(tamper_tokens(buf, len, &t, &seq), 0);
    free(buf);
    snprintf(bad, sizeof bad, "%s/export-tampered.bin", ac_test_tmpdir());
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t.p, 1, t.len, f), t.len);
    fclose(f);
    ac_buf_free(&t);
    char *rep[] = {(char *)ac_test_binary(), "audit", "replay", bad, NULL};
    assert_int_equal(ac_test_run("audit_replay_tampered", rep, 300000), 1);
    snprintf(logf, sizeof logf, "%s/audit_replay_tampered.log", ac_test_tmpdir());
    log = ac_test_read_file(logf, NULL);
    assert_non_null(log);
    char want[200];
    snprintf(want, sizeof want, "FAILED at record #%llu: token amount mismatch: recorded ",
             (unsigned long long)seq);
    if (strstr(log, want) == NULL) fail_msg("tampered replay: want \"%s\" in:\n%s", want, log);
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
    EVP_PKEY **keys[] = {&alice1, &shop1, &llm1, &agent1};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        *keys[i] = ac_sig_keygen(i == 2 ? AC_SIG_ES256 : AC_SIG_ED25519);
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_http_topups"));
    char dir[1024], keyfile[1100];
    snprintf(dir, sizeof dir, "%s/keys", ac_test_tmpdir());
    snprintf(keyfile, sizeof keyfile, "--out=%s/server.jwk", dir);
    char *kg[] = {(char *)ac_test_binary(), "keygen", keyfile, "--alg=ed25519", NULL};
    if (mkdir(dir, 0700) != 0 || ac_test_run("keygen", kg, 30000) != 0) return -1;
    snprintf(keys_env, sizeof keys_env, "AGENTCLEAR_KEYS_DIR=%s", dir);
    const char *env[] = {keys_env, "AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    if (ac_test_server_start(&srv, "http_topups", db_url, TOKEN, env, READY_MS) != 0) return -1;
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
        cmocka_unit_test(prices),        cmocka_unit_test(request_checks_in_order),
        cmocka_unit_test(topup_settles), cmocka_unit_test(idempotency_keys),
        cmocka_unit_test(pair_atomic),   cmocka_unit_test(versions),
        cmocka_unit_test(caps_in_fiat),  cmocka_unit_test(stepup_holds_both_legs),
        cmocka_unit_test(reading),       cmocka_unit_test(restart_keeps_everything),
        cmocka_unit_test(audit_replay),  cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
