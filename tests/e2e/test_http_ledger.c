/* The ledger API end to end: a real `agentclear serve` child process on a fresh PostgreSQL
 * database, spoken to over HTTP/1.1.
 *
 * - Every kind of rejected request answers the right status, application/problem+json and the
 *   right "code", and writes nothing: the accounts it names keep their balances and no transfer
 *   id of the request exists afterwards.
 * - Idempotent replay, transfer_exists_different, sticky failures (transfer_id_failed).
 * - Two-phase transfers: pending, post, void, partial post, the post/void error cases, expiry
 *   (timeout 1 s; posting afterwards answers pending_expired and the hold is released).
 * - Linked chains roll back as one; balancing transfers move what the balance allows.
 * - All of that is evidence: the server signs checkpoints, and `agentclear audit replay --db` of
 *   its export recomputes every account and every transfer (ledger.account, ledger.transfer
 *   records; the expired hold released by its recorded timeout) and finds the live ledger equal.
 * - /metrics names the request counter and the commit histogram.
 * - The database goes away (a proxy in front of PostgreSQL is cut): writes answer 503 with
 *   Retry-After and a retryable code, never 500 and never a hang; /readyz answers 503; after the
 *   proxy is restored the server is ready again within a bound, transfers succeed, and what was
 *   acknowledged before the cut is there exactly once.
 * - SIGTERM stops the server cleanly (exit 0, no sanitizer report). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "protocol/amount.h"
#include "tests/support/api.h"
#include "tests/support/httpc.h"
#include "tests/support/payflow.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define TOKEN "e2e-http-ledger-operator-token"
#define READY_MS 30000

static struct ac_test_server srv;
static struct ac_test_http http;
static char db_url[1024];

/* ---- helpers --------------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int api_on(struct ac_test_http *c, const char *method, const char *path, const char *json,
                  struct ac_test_http_resp *r)
{
    return ac_test_http_api(c, method, path, TOKEN, json, r);
}

/* method path [json] with the operator token on c: see ac_test_api_call(). */
static json_t *call_on(struct ac_test_http *c, const char *method, const char *path,
                       const char *json, int want)
{
    return ac_test_api_call(c, method, path, TOKEN, json, want);
}

static json_t *call(const char *method, const char *path, const char *json, int want)
{
    return call_on(&http, method, path, json, want);
}

static const json_t *result_at(const json_t *j, size_t i)
{
    const json_t *it = json_array_get(json_object_get(j, "results"), i);
    if (it == NULL) fail_msg("no results[%zu] in the answer", i);
    return it;
}

static int64_t units(const char *s)
{
    int64_t v = 0;
    if (s[0] == '-') { /* balances are never negative; a '-' would be a bug worth seeing */
        fail_msg("negative amount '%s'", s);
    }
    if (ac_amount_parse(s, 2, &v) != AC_EC_OK) fail_msg("cannot parse amount '%s'", s);
    return v;
}

struct bal {
    int64_t dp, dpo, cp, cpo;
};

static struct bal balance_on(struct ac_test_http *c, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/accounts/%s", id);
    json_t *j = call_on(c, "GET", path, NULL, 200);
    struct bal b = {
        units(ac_test_jstr(j, "debits_pending")), units(ac_test_jstr(j, "debits_posted")),
        units(ac_test_jstr(j, "credits_pending")), units(ac_test_jstr(j, "credits_posted"))};
    json_decref(j);
    return b;
}

static struct bal balance(const char *id)
{
    return balance_on(&http, id);
}

static void assert_bal(const char *id, int64_t dp, int64_t dpo, int64_t cp, int64_t cpo)
{
    struct bal b = balance(id);
    if (b.dp != dp || b.dpo != dpo || b.cp != cp || b.cpo != cpo)
        fail_msg("account %s: debits pending/posted %lld/%lld credits pending/posted %lld/%lld, "
                 "expected %lld/%lld %lld/%lld",
                 id, (long long)b.dp, (long long)b.dpo, (long long)b.cp, (long long)b.cpo,
                 (long long)dp, (long long)dpo, (long long)cp, (long long)cpo);
}

static void assert_same_bal(const char *id, struct bal was)
{
    assert_bal(id, was.dp, was.dpo, was.cp, was.cpo);
}

/* The transfer id does not exist: GET answers 404 not_found. */
static void assert_no_transfer_on(struct ac_test_http *c, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/transfers/%s", id);
    struct ac_test_http_resp r;
    api_on(c, "GET", path, NULL, &r);
    char what[200];
    snprintf(what, sizeof what, "GET transfer %s (must not exist)", id);
    json_decref(ac_test_api_problem(&r, 404, "not_found", what));
    ac_test_http_resp_free(&r);
}

static void assert_no_transfer(const char *id)
{
    assert_no_transfer_on(&http, id);
}

static json_t *get_transfer_on(struct ac_test_http *c, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/ledger/transfers/%s", id);
    return call_on(c, "GET", path, NULL, 200);
}

static json_t *get_transfer(const char *id)
{
    return get_transfer_on(&http, id);
}

/* POST one transfer (JSON object text) and return the parsed answer; asserts the status. */
static json_t *transfer1_on(struct ac_test_http *c, const char *item, int want)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"transfers\":[%s]}", item);
    return call_on(c, "POST", "/v1/ledger/transfers", body, want);
}

static json_t *transfer1(const char *item, int want)
{
    return transfer1_on(&http, item, want);
}

/* POST one transfer that must fail at apply time with `code` (status `want`). */
static void transfer_fails(const char *item, int want, const char *code)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"transfers\":[%s]}", item);
    struct ac_test_http_resp r;
    api_on(&http, "POST", "/v1/ledger/transfers", body, &r);
    json_t *j = ac_test_api_problem(&r, want, code, item);
    const json_t *it = result_at(j, 0);
    if (strcmp(ac_test_jstr(it, "status"), "failed") != 0 ||
        strcmp(ac_test_jstr(it, "code"), code) != 0)
        fail_msg("%s: results[0] is not failed/%s: %s", item, code, r.body);
    json_decref(j);
    ac_test_http_resp_free(&r);
}

static void assert_ok_result(const json_t *j, size_t i, const char *amount, int replayed)
{
    const json_t *it = result_at(j, i);
    char *dump = json_dumps(j, JSON_COMPACT);
    if (strcmp(ac_test_jstr(it, "status"), "ok") != 0 ||
        (amount && strcmp(ac_test_jstr(it, "amount"), amount)) ||
        json_is_true(json_object_get(it, "replayed")) != replayed)
        fail_msg("results[%zu]: expected ok amount %s%s, got %s", i, amount ? amount : "(any)",
                 replayed ? " replayed" : "", dump);
    free(dump);
}

static void create_asset_on(struct ac_test_http *c, const char *code, int scale)
{
    char body[128];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"scale\":%d}", code, scale);
    struct ac_test_http_resp r;
    int st = api_on(c, "POST", "/v1/ledger/assets", body, &r);
    if (st != 201 && st != 200) fail_msg("create asset %s: %d %s", code, st, r.body);
    ac_test_http_resp_free(&r);
}

/* {"id":..,"asset":..[,"flags":["debits_must_not_exceed_credits"]]} each, all must be ok. */
static void create_accounts_on(struct ac_test_http *c, const char *items)
{
    char body[4096];
    snprintf(body, sizeof body, "{\"accounts\":[%s]}", items);
    json_decref(call_on(c, "POST", "/v1/ledger/accounts", body, 200));
}

#define FLAGGED ",\"flags\":[\"debits_must_not_exceed_credits\"]"

static void fund(const char *tid, const char *to, const char *amount)
{
    char item[256];
    snprintf(item, sizeof item,
             "{\"id\":\"%s\",\"debit_account\":\"h-bank\",\"credit_account\":\"%s\","
             "\"amount\":\"%s\",\"asset\":\"CNY\"}",
             tid, to, amount);
    json_decref(transfer1(item, 200));
}

static void assert_no_sanitizer_report(struct ac_test_server *s)
{
    if (ac_test_server_log_has_sanitizer_report(s)) {
        ac_test_server_dump_log(s, 20000);
        fail_msg("the server log of %s holds a sanitizer report", s->name);
    }
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_http_ledger"));
    /* a server signing key, so that checkpoints are signed and the ledger API can be audited */
    static char keys_env[1100];
    char dir[1024], keyfile[1100];
    snprintf(dir, sizeof dir, "%s/keys", ac_test_tmpdir());
    snprintf(keyfile, sizeof keyfile, "--out=%s/server.jwk", dir);
    char *kg[] = {(char *)ac_test_binary(), "keygen", keyfile, "--alg=ed25519", NULL};
    if (mkdir(dir, 0700) != 0 || ac_test_run("keygen", kg, 30000) != 0) return -1;
    snprintf(keys_env, sizeof keys_env, "AGENTCLEAR_KEYS_DIR=%s", dir);
    const char *env[] = {keys_env, "AGENTCLEAR_CHECKPOINT_MS=200", NULL};
    if (ac_test_server_start(&srv, "http_ledger", db_url, TOKEN, env, READY_MS) != 0) return -1;
    ac_test_http_init(&http, "127.0.0.1", srv.port, 20000);
    create_asset_on(&http, "CNY", 2);
    create_asset_on(&http, "USD", 2);
    create_accounts_on(&http, "{\"id\":\"h-a\",\"asset\":\"CNY\"},"
                              "{\"id\":\"h-b\",\"asset\":\"CNY\",\"owner\":\"merchant-1\"},"
                              "{\"id\":\"h-usd\",\"asset\":\"USD\"},"
                              "{\"id\":\"h-bank\",\"asset\":\"CNY\"},"
                              "{\"id\":\"h-merchant\",\"asset\":\"CNY\"},"
                              "{\"id\":\"h-payer\",\"asset\":\"CNY\"" FLAGGED "},"
                              "{\"id\":\"h-exp\",\"asset\":\"CNY\"" FLAGGED "},"
                              "{\"id\":\"h-empty\",\"asset\":\"CNY\"" FLAGGED "},"
                              "{\"id\":\"h-bal\",\"asset\":\"CNY\"" FLAGGED "},"
                              "{\"id\":\"h-l1\",\"asset\":\"CNY\"" FLAGGED "},"
                              "{\"id\":\"h-l2\",\"asset\":\"CNY\"" FLAGGED "}");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ac_test_http_close(&http);
    ac_test_server_kill(&srv);
    return 0;
}

/* ---- rejected requests write nothing --------------------------------------------------------- */

#define OK_ITEM(id)                                                                                \
    "{\"id\":\"" id "\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\",\"amount\":\"1.00\"," \
    "\"asset\":\"CNY\"}"
#define ITEM(id, amount, asset)                                                                    \
    "{\"id\":\"" id "\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\",\"amount\":\"" amount \
    "\",\"asset\":\"" asset "\"}"

enum hdr { H_OK, H_NO_AUTH, H_BAD_AUTH, H_BASIC_AUTH, H_TEXT };

struct reject {
    const char *name;
    const char *method, *path;
    enum hdr hdr;
    const char *body; /* NULL: built (the oversize body) */
    int status;
    const char *code;
    const char *pointer; /* expected "pointer" member, or NULL */
    const char *ids[3];  /* transfer ids named by the request: none may exist afterwards */
};

/* One rejected request per entry reads better than one field per line. */
/* clang-format off */
#define T "/v1/ledger/transfers"
static const struct reject rejects[] = {
    {"unknown asset", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-asset-ok") "," ITEM("r-asset", "1.00", "XYZ") "]}",
     404, "asset_unknown", "/transfers/1/asset", {"r-asset-ok", "r-asset"}},
    {"zero amount", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-zero-ok") "," ITEM("r-zero", "0.00", "CNY") "]}",
     400, "amount_zero", "/transfers/1/amount", {"r-zero-ok", "r-zero"}},
    {"negative amount", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-neg-ok") "," ITEM("r-neg", "-1.00", "CNY") "]}",
     400, "amount_negative", "/transfers/1/amount", {"r-neg-ok", "r-neg"}},
    {"overflowing amount", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-ovf-ok") "," ITEM("r-ovf", "92233720368547758.08", "CNY") "]}",
     400, "amount_overflow", "/transfers/1/amount", {"r-ovf-ok", "r-ovf"}},
    {"too many decimals", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-prec-ok") "," ITEM("r-prec", "1.001", "CNY") "]}",
     400, "amount_precision", "/transfers/1/amount", {"r-prec-ok", "r-prec"}},
    {"amount not a decimal string", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-syn-ok") "," ITEM("r-syn", "1e3", "CNY") "]}",
     400, "amount_syntax", "/transfers/1/amount", {"r-syn-ok", "r-syn"}},
    {"amount as a json number", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-num-ok") ",{\"id\":\"r-num\",\"debit_account\":\"h-a\","
     "\"credit_account\":\"h-b\",\"amount\":1.0,\"asset\":\"CNY\"}]}",
     400, "json_schema", NULL, {"r-num-ok", "r-num"}},
    {"unknown member", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-mem-ok") ",{\"id\":\"r-mem\",\"debit_account\":\"h-a\","
     "\"credit_account\":\"h-b\",\"amount\":\"1.00\",\"asset\":\"CNY\",\"memo\":\"x\"}]}",
     400, "json_schema", NULL, {"r-mem-ok", "r-mem"}},
    {"malformed json", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-json-ok") ",{\"id\":\"r-json\"",
     400, "json_invalid", NULL, {"r-json-ok", "r-json"}},
    {"duplicate keys", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-dup-ok") ",{\"id\":\"r-dup\",\"debit_account\":\"h-a\","
     "\"credit_account\":\"h-b\",\"amount\":\"1.00\",\"amount\":\"2.00\",\"asset\":\"CNY\"}]}",
     400, "json_invalid", NULL, {"r-dup-ok", "r-dup"}},
    {"not an object", "POST", T, H_OK,
     "[" OK_ITEM("r-arr") "]",
     400, "json_schema", NULL, {"r-arr"}},
    {"empty batch", "POST", T, H_OK,
     "{\"transfers\":[]}",
     400, "batch_empty", NULL, {NULL}},
    {"invalid transfer id", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-id-ok") "," ITEM("bad id!", "1.00", "CNY") "]}",
     400, "id_invalid", "/transfers/1/id", {"r-id-ok"}},
    {"invalid account id", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-acid-ok") ",{\"id\":\"r-acid\",\"debit_account\":\"h a\","
     "\"credit_account\":\"h-b\",\"amount\":\"1.00\",\"asset\":\"CNY\"}]}",
     400, "id_invalid", "/transfers/1/debit_account", {"r-acid-ok", "r-acid"}},
    {"unknown flag", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-flag-ok") ",{\"id\":\"r-flag\",\"debit_account\":\"h-a\","
     "\"credit_account\":\"h-b\",\"amount\":\"1.00\",\"asset\":\"CNY\",\"flags\":[\"bogus\"]}]}",
     400, "flags_invalid", "/transfers/1/flags", {"r-flag-ok", "r-flag"}},
    {"open linked chain", "POST", T, H_OK,
     "{\"transfers\":[{\"id\":\"r-open-1\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\","
     "\"amount\":\"1.00\",\"asset\":\"CNY\",\"flags\":[\"linked\"]},{\"id\":\"r-open-2\","
     "\"debit_account\":\"h-a\",\"credit_account\":\"h-b\",\"amount\":\"1.00\",\"asset\":\"CNY\","
     "\"flags\":[\"linked\"]}]}",
     400, "linked_chain_open", "/transfers/1/flags", {"r-open-1", "r-open-2"}},
    {"timeout out of range", "POST", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-tmo-ok") ",{\"id\":\"r-tmo\",\"debit_account\":\"h-a\","
     "\"credit_account\":\"h-b\",\"amount\":\"1.00\",\"asset\":\"CNY\",\"flags\":[\"pending\"],"
     "\"timeout\":-1}]}",
     400, "timeout_invalid", "/transfers/1/timeout", {"r-tmo-ok", "r-tmo"}},
    {"oversize body", "POST", T, H_OK,
     NULL,
     413, "body_too_large", NULL, {"r-big"}},
    {"wrong content type", "POST", T, H_TEXT,
     "{\"transfers\":[" OK_ITEM("r-ctype") "]}",
     415, "unsupported_media_type", NULL, {"r-ctype"}},
    {"missing bearer token", "POST", T, H_NO_AUTH,
     "{\"transfers\":[" OK_ITEM("r-noauth") "]}",
     401, "unauthorized", NULL, {"r-noauth"}},
    {"wrong bearer token", "POST", T, H_BAD_AUTH,
     "{\"transfers\":[" OK_ITEM("r-badauth") "]}",
     401, "unauthorized", NULL, {"r-badauth"}},
    {"basic instead of bearer", "POST", T, H_BASIC_AUTH,
     "{\"transfers\":[" OK_ITEM("r-basic") "]}",
     401, "unauthorized", NULL, {"r-basic"}},
    {"unknown route", "POST", "/v1/ledger/transfer", H_OK,
     "{\"transfers\":[" OK_ITEM("r-route") "]}",
     404, "not_found", NULL, {"r-route"}},
    {"wrong method", "PUT", T, H_OK,
     "{\"transfers\":[" OK_ITEM("r-method") "]}",
     405, "method_not_allowed", NULL, {"r-method"}},
};
#undef T
/* clang-format on */

/* A valid transfer r-big padded with blanks to one byte over the 4 MiB limit: only the size is
 * wrong, so a missing limit would show up as a written transfer. */
static char *oversize_body(size_t *len)
{
    const char *head = "{\"transfers\":[" OK_ITEM("r-big") "]";
    size_t n = 4u * 1024 * 1024 + 1;
    char *b = malloc(n + 1);
    assert_non_null(b);
    size_t hl = strlen(head);
    memcpy(b, head, hl);
    memset(b + hl, ' ', n - hl - 1);
    b[n - 1] = '}';
    b[n] = '\0';
    *len = n;
    return b;
}

static void rejected_requests_write_nothing(void **state)
{
    (void)state;
    const char *accts[] = {"h-a", "h-b", "h-usd"};
    struct bal before[3];
    for (int i = 0; i < 3; i++)
        before[i] = balance(accts[i]);
    for (size_t k = 0; k < sizeof rejects / sizeof rejects[0]; k++) {
        const struct reject *c = &rejects[k];
        char hdr[256];
        switch (c->hdr) {
        case H_OK:
            snprintf(hdr, sizeof hdr,
                     "Authorization: Bearer " TOKEN "\r\nContent-Type: application/json\r\n");
            break;
        case H_NO_AUTH:
            snprintf(hdr, sizeof hdr, "Content-Type: application/json\r\n");
            break;
        case H_BAD_AUTH:
            snprintf(hdr, sizeof hdr,
                     "Authorization: Bearer " TOKEN "x\r\n"
                     "Content-Type: application/json\r\n");
            break;
        case H_BASIC_AUTH:
            snprintf(hdr, sizeof hdr,
                     "Authorization: Basic ZTJlOnRva2Vu\r\n"
                     "Content-Type: application/json\r\n");
            break;
        case H_TEXT:
            snprintf(hdr, sizeof hdr,
                     "Authorization: Bearer " TOKEN "\r\nContent-Type: text/plain\r\n");
            break;
        }
        size_t len;
        char *big = NULL;
        const char *body = c->body;
        if (body == NULL)
            body = big = oversize_body(&len);
        else
            len = strlen(body);
        struct ac_test_http_resp r;
        ac_test_http_request(&http, c->method, c->path, hdr, body, len, &r);
        free(big);
        json_t *j = ac_test_api_problem(&r, c->status, c->code, c->name);
        if (c->pointer && strcmp(ac_test_jstr(j, "pointer"), c->pointer) != 0)
            fail_msg("%s: pointer '%s', expected '%s'", c->name, ac_test_jstr(j, "pointer"),
                     c->pointer);
        if (strcmp(ac_test_jstr(j, "instance"), c->path) != 0)
            fail_msg("%s: instance '%s', expected '%s'", c->name, ac_test_jstr(j, "instance"),
                     c->path);
        json_decref(j);
        ac_test_http_resp_free(&r);
        for (int i = 0; i < 3; i++)
            assert_same_bal(accts[i], before[i]);
        for (int i = 0; i < 3 && c->ids[i]; i++)
            assert_no_transfer(c->ids[i]);
    }
    /* and the valid half of those requests is itself fine: the rejections were about the rest */
    json_t *j = transfer1(OK_ITEM("r-control"), 200);
    assert_ok_result(j, 0, "1.00", 0);
    json_decref(j);
    assert_bal("h-a", before[0].dp, before[0].dpo + 100, before[0].cp, before[0].cpo);
}

/* Outcomes decided when the transfer is applied, not at parse time: a per-transfer result, and
 * these failures are not recorded (the id stays free). */
static void apply_time_failures_write_nothing(void **state)
{
    (void)state;
    struct bal a = balance("h-a"), b = balance("h-b"), u = balance("h-usd");
    transfer_fails("{\"id\":\"r-unknown\",\"debit_account\":\"h-nobody\",\"credit_account\":"
                   "\"h-b\",\"amount\":\"1.00\",\"asset\":\"CNY\"}",
                   404, "account_unknown");
    transfer_fails("{\"id\":\"r-mismatch\",\"debit_account\":\"h-a\",\"credit_account\":"
                   "\"h-usd\",\"amount\":\"1.00\",\"asset\":\"CNY\"}",
                   422, "asset_mismatch");
    transfer_fails("{\"id\":\"r-same\",\"debit_account\":\"h-a\",\"credit_account\":\"h-a\","
                   "\"amount\":\"1.00\",\"asset\":\"CNY\"}",
                   422, "accounts_same");
    transfer_fails("{\"id\":\"r-timeout\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\","
                   "\"amount\":\"1.00\",\"asset\":\"CNY\",\"timeout\":5}",
                   400, "timeout_invalid");
    assert_same_bal("h-a", a);
    assert_same_bal("h-b", b);
    assert_same_bal("h-usd", u);
    assert_no_transfer("r-unknown");
    assert_no_transfer("r-mismatch");
    assert_no_transfer("r-same");
    assert_no_transfer("r-timeout");
    /* a non-sticky failure leaves the id free for a correct transfer */
    json_t *j = transfer1(ITEM("r-same", "0.50", "CNY"), 200);
    assert_ok_result(j, 0, "0.50", 0);
    json_decref(j);
}

/* GET of things that are not there, and unknown accounts. */
static void reads_of_missing_things(void **state)
{
    (void)state;
    struct ac_test_http_resp r;
    api_on(&http, "GET", "/v1/ledger/accounts/h-nobody", NULL, &r);
    json_decref(ac_test_api_problem(&r, 404, "account_unknown", "GET unknown account"));
    ac_test_http_resp_free(&r);
    api_on(&http, "GET", "/v1/ledger/accounts/bad!id", NULL, &r);
    json_decref(ac_test_api_problem(&r, 404, "not_found", "GET invalid account id"));
    ac_test_http_resp_free(&r);
    api_on(&http, "GET", "/v1/ledger/assets/XYZ", NULL, &r);
    json_decref(ac_test_api_problem(&r, 404, "asset_unknown", "GET unknown asset"));
    ac_test_http_resp_free(&r);
    ac_test_http_api(&http, "GET", "/v1/ledger/accounts/h-a", NULL, NULL, &r);
    json_decref(ac_test_api_problem(&r, 401, "unauthorized", "GET account without token"));
    ac_test_http_resp_free(&r);
    assert_no_transfer("never-posted");
    json_t *h = call("GET", "/healthz", NULL, 200);
    assert_string_equal(ac_test_jstr(h, "status"), "ok");
    json_decref(h);
}

/* ---- idempotency ----------------------------------------------------------------------------- */

static void idempotent_replay(void **state)
{
    (void)state;
    const char *item = "{\"id\":\"idem-1\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\","
                       "\"amount\":\"2.25\",\"asset\":\"CNY\",\"code\":7}";
    json_t *j = transfer1(item, 200);
    assert_ok_result(j, 0, "2.25", 0);
    char created[64];
    snprintf(created, sizeof created, "%s", ac_test_jstr(result_at(j, 0), "created_at"));
    json_decref(j);
    struct bal a = balance("h-a"), b = balance("h-b");
    /* the same id with the same fields: the original answer, marked replayed, nothing moves */
    for (int i = 0; i < 2; i++) {
        j = transfer1(item, 200);
        assert_ok_result(j, 0, "2.25", 1);
        assert_string_equal(ac_test_jstr(result_at(j, 0), "created_at"), created);
        json_decref(j);
    }
    assert_same_bal("h-a", a);
    assert_same_bal("h-b", b);
    /* the same id with other fields: 409, nothing moves */
    const char *other[] = {
        "{\"id\":\"idem-1\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\","
        "\"amount\":\"2.26\",\"asset\":\"CNY\",\"code\":7}",
        "{\"id\":\"idem-1\",\"debit_account\":\"h-b\",\"credit_account\":\"h-a\","
        "\"amount\":\"2.25\",\"asset\":\"CNY\",\"code\":7}",
        "{\"id\":\"idem-1\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\","
        "\"amount\":\"2.25\",\"asset\":\"CNY\",\"code\":8}",
    };
    for (size_t i = 0; i < 3; i++)
        transfer_fails(other[i], 409, "transfer_exists_different");
    assert_same_bal("h-a", a);
    assert_same_bal("h-b", b);
    json_t *t = get_transfer("idem-1");
    assert_string_equal(ac_test_jstr(t, "status"), "ok");
    assert_string_equal(ac_test_jstr(t, "amount"), "2.25");
    assert_string_equal(ac_test_jstr(t, "debit_account"), "h-a");
    assert_string_equal(ac_test_jstr(t, "credit_account"), "h-b");
    assert_int_equal(json_integer_value(json_object_get(t, "code")), 7);
    json_decref(t);

    /* a replay inside a batch with a new transfer: one replayed, one new */
    j = call("POST", "/v1/ledger/transfers",
             "{\"transfers\":[{\"id\":\"idem-1\",\"debit_account\":\"h-a\",\"credit_account\":"
             "\"h-b\",\"amount\":\"2.25\",\"asset\":\"CNY\",\"code\":7}," ITEM("idem-2", "0.75",
                                                                               "CNY") "]}",
             200);
    assert_ok_result(j, 0, "2.25", 1);
    assert_ok_result(j, 1, "0.75", 0);
    json_decref(j);
    assert_bal("h-a", a.dp, a.dpo + 75, a.cp, a.cpo);

    /* a sticky failure: exceeds_credits is recorded, and the id cannot be used again, not even
     * with fields that would now succeed */
    const char *greedy = "{\"id\":\"sticky-1\",\"debit_account\":\"h-empty\",\"credit_account\":"
                         "\"h-b\",\"amount\":\"5.00\",\"asset\":\"CNY\"}";
    transfer_fails(greedy, 422, "exceeds_credits");
    t = get_transfer("sticky-1");
    assert_string_equal(ac_test_jstr(t, "status"), "failed");
    assert_string_equal(ac_test_jstr(t, "code"), "exceeds_credits");
    json_decref(t);
    fund("fund-empty", "h-empty", "10.00");
    struct bal e = balance("h-empty");
    b = balance("h-b");
    transfer_fails(greedy, 409, "transfer_id_failed");
    transfer_fails("{\"id\":\"sticky-1\",\"debit_account\":\"h-empty\",\"credit_account\":"
                   "\"h-b\",\"amount\":\"1.00\",\"asset\":\"CNY\"}",
                   409, "transfer_id_failed");
    assert_same_bal("h-empty", e);
    assert_same_bal("h-b", b);
}

/* ---- two-phase transfers ------------------------------------------------------------------- */

#define PENDING(id, amount, timeout)                                                               \
    "{\"id\":\"" id "\",\"debit_account\":\"h-payer\",\"credit_account\":\"h-merchant\","          \
    "\"amount\":\"" amount "\",\"asset\":\"CNY\",\"flags\":[\"pending\"],\"timeout\":" timeout "}"
#define POST_FULL(id, pid)                                                                         \
    "{\"id\":\"" id "\",\"pending_id\":\"" pid "\",\"asset\":\"CNY\",\"flags\":[\"post_pending\"]" \
    "}"
#define POST_AMT(id, pid, amount)                                                                  \
    "{\"id\":\"" id "\",\"pending_id\":\"" pid "\",\"amount\":\"" amount "\",\"asset\":\"CNY\","   \
    "\"flags\":[\"post_pending\"]}"
#define VOID(id, pid)                                                                              \
    "{\"id\":\"" id "\",\"pending_id\":\"" pid "\",\"asset\":\"CNY\",\"flags\":[\"void_pending\"]" \
    "}"

static void expect_pending_state(const char *id, const char *st)
{
    json_t *t = get_transfer(id);
    if (strcmp(ac_test_jstr(t, "pending_state"), st) != 0)
        fail_msg("transfer %s: pending_state '%s', expected '%s'", id,
                 ac_test_jstr(t, "pending_state"), st);
    json_decref(t);
}

static void pending_post_void(void **state)
{
    (void)state;
    fund("fund-payer", "h-payer", "100.00");
    struct bal m0 = balance("h-merchant");
    assert_bal("h-payer", 0, 0, 0, 10000);

    /* hold 30, post it all */
    json_t *j = transfer1(PENDING("p-1", "30.00", "0"), 200);
    assert_ok_result(j, 0, "30.00", 0);
    json_decref(j);
    assert_bal("h-payer", 3000, 0, 0, 10000);
    assert_bal("h-merchant", m0.dp, m0.dpo, m0.cp + 3000, m0.cpo);
    expect_pending_state("p-1", "pending");
    j = transfer1(POST_FULL("p-1-post", "p-1"), 200);
    assert_ok_result(j, 0, "30.00", 0);
    json_decref(j);
    assert_bal("h-payer", 0, 3000, 0, 10000);
    assert_bal("h-merchant", m0.dp, m0.dpo, m0.cp, m0.cpo + 3000);
    expect_pending_state("p-1", "posted");
    transfer_fails(POST_FULL("p-1-post2", "p-1"), 422, "pending_already_posted");
    transfer_fails(VOID("p-1-void", "p-1"), 422, "pending_already_posted");

    /* hold 20, void it */
    json_decref(transfer1(PENDING("p-2", "20.00", "0"), 200));
    assert_bal("h-payer", 2000, 3000, 0, 10000);
    j = transfer1(VOID("p-2-void", "p-2"), 200);
    assert_ok_result(j, 0, "20.00", 0);
    json_decref(j);
    assert_bal("h-payer", 0, 3000, 0, 10000);
    expect_pending_state("p-2", "voided");
    transfer_fails(POST_FULL("p-2-post", "p-2"), 422, "pending_already_voided");

    /* hold 40, post 15: the other 25 go back */
    json_decref(transfer1(PENDING("p-3", "40.00", "0"), 200));
    transfer_fails(POST_AMT("p-3-over", "p-3", "40.01"), 422, "pending_amount_exceeded");
    j = transfer1(POST_AMT("p-3-post", "p-3", "15.00"), 200);
    assert_ok_result(j, 0, "15.00", 0);
    json_decref(j);
    assert_bal("h-payer", 0, 4500, 0, 10000);
    assert_bal("h-merchant", m0.dp, m0.dpo, m0.cp, m0.cpo + 4500);
    expect_pending_state("p-3", "posted");

    /* holds count against the flag: 55 left, a 50 hold fits, a further 10 does not */
    json_decref(transfer1(PENDING("p-4", "50.00", "0"), 200));
    transfer_fails(PENDING("p-5", "10.00", "0"), 422, "exceeds_credits");
    transfer_fails("{\"id\":\"p-6\",\"debit_account\":\"h-payer\",\"credit_account\":"
                   "\"h-merchant\",\"amount\":\"10.00\",\"asset\":\"CNY\"}",
                   422, "exceeds_credits");
    json_decref(transfer1(VOID("p-4-void", "p-4"), 200));
    j = transfer1("{\"id\":\"p-7\",\"debit_account\":\"h-payer\",\"credit_account\":"
                  "\"h-merchant\",\"amount\":\"10.00\",\"asset\":\"CNY\"}",
                  200);
    json_decref(j);
    assert_bal("h-payer", 0, 5500, 0, 10000);

    /* post/void errors */
    transfer_fails(POST_FULL("p-x1", "p-nothing"), 404, "pending_not_found");
    transfer_fails(POST_FULL("p-x2", "p-7"), 422, "pending_not_pending");
    json_decref(transfer1(PENDING("p-8", "1.00", "0"), 200));
    transfer_fails("{\"id\":\"p-x3\",\"pending_id\":\"p-8\",\"debit_account\":\"h-a\","
                   "\"asset\":\"CNY\",\"flags\":[\"post_pending\"]}",
                   422, "pending_field_mismatch");
    json_decref(transfer1(VOID("p-8-void", "p-8"), 200));
    assert_no_transfer("p-x1");
    assert_no_transfer("p-x2");
    assert_no_transfer("p-x3");
    assert_bal("h-payer", 0, 5500, 0, 10000);
    /* a post is idempotent like any transfer */
    j = transfer1(POST_AMT("p-3-post", "p-3", "15.00"), 200);
    assert_ok_result(j, 0, "15.00", 1);
    json_decref(j);
    assert_bal("h-payer", 0, 5500, 0, 10000);
}

static void pending_expires(void **state)
{
    (void)state;
    fund("fund-exp", "h-exp", "10.00");
    struct bal m0 = balance("h-merchant");
    json_decref(transfer1("{\"id\":\"e-1\",\"debit_account\":\"h-exp\",\"credit_account\":"
                          "\"h-merchant\",\"amount\":\"8.00\",\"asset\":\"CNY\","
                          "\"flags\":[\"pending\"],\"timeout\":1}",
                          200));
    assert_bal("h-exp", 800, 0, 0, 1000);
    json_t *t = get_transfer("e-1");
    assert_int_equal(json_integer_value(json_object_get(t, "timeout")), 1);
    json_decref(t);
    sleep_ms(2100);
    transfer_fails("{\"id\":\"e-1-post\",\"pending_id\":\"e-1\",\"asset\":\"CNY\","
                   "\"flags\":[\"post_pending\"]}",
                   422, "pending_expired");
    /* the hold is released, nothing was posted, and the expiry is recorded */
    assert_bal("h-exp", 0, 0, 0, 1000);
    assert_bal("h-merchant", m0.dp, m0.dpo, m0.cp, m0.cpo);
    expect_pending_state("e-1", "expired");
    t = get_transfer("e-1-post");
    assert_string_equal(ac_test_jstr(t, "status"), "failed");
    assert_string_equal(ac_test_jstr(t, "code"), "pending_expired");
    json_decref(t);
    transfer_fails("{\"id\":\"e-1-void\",\"pending_id\":\"e-1\",\"asset\":\"CNY\","
                   "\"flags\":[\"void_pending\"]}",
                   422, "pending_expired");
    /* the released funds are spendable */
    json_decref(transfer1("{\"id\":\"e-2\",\"debit_account\":\"h-exp\",\"credit_account\":"
                          "\"h-merchant\",\"amount\":\"10.00\",\"asset\":\"CNY\"}",
                          200));
    assert_bal("h-exp", 0, 1000, 0, 1000);
}

/* ---- linked chains and balancing ----------------------------------------------------------- */

static void linked_chain_rolls_back(void **state)
{
    (void)state;
    fund("fund-l1", "h-l1", "5.00");
    struct bal l1 = balance("h-l1"), l2 = balance("h-l2"), m = balance("h-merchant");
    const char *chain =
        "{\"transfers\":["
        "{\"id\":\"l-1\",\"debit_account\":\"h-l1\",\"credit_account\":\"h-l2\",\"amount\":"
        "\"5.00\",\"asset\":\"CNY\",\"flags\":[\"linked\"]},"
        "{\"id\":\"l-2\",\"debit_account\":\"h-l2\",\"credit_account\":\"h-merchant\",\"amount\":"
        "\"3.00\",\"asset\":\"CNY\",\"flags\":[\"linked\"]},"
        "{\"id\":\"l-3\",\"debit_account\":\"h-l2\",\"credit_account\":\"h-merchant\",\"amount\":"
        "\"2.01\",\"asset\":\"CNY\"},"
        "{\"id\":\"l-4\",\"debit_account\":\"h-a\",\"credit_account\":\"h-b\",\"amount\":"
        "\"0.10\",\"asset\":\"CNY\"}]}";
    struct ac_test_http_resp r;
    api_on(&http, "POST", "/v1/ledger/transfers", chain, &r);
    /* the top-level code is the first failure by position (handler contract); the cause is in
     * the failing member's result */
    json_t *j = ac_test_api_problem(&r, 422, "linked_event_failed", "linked chain");
    ac_test_http_resp_free(&r);
    const char *want[] = {"linked_event_failed", "linked_event_failed", "exceeds_credits", NULL};
    for (size_t i = 0; i < 3; i++) {
        const json_t *it = result_at(j, i);
        assert_string_equal(ac_test_jstr(it, "status"), "failed");
        assert_string_equal(ac_test_jstr(it, "code"), want[i]);
    }
    assert_ok_result(j, 3, "0.10", 0); /* the independent transfer after the chain went through */
    json_decref(j);
    assert_same_bal("h-l1", l1);
    assert_same_bal("h-l2", l2);
    assert_same_bal("h-merchant", m);
    assert_no_transfer("l-1");
    assert_no_transfer("l-2");
    json_t *t = get_transfer("l-3"); /* the failing member's sticky failure is recorded */
    assert_string_equal(ac_test_jstr(t, "status"), "failed");
    assert_string_equal(ac_test_jstr(t, "code"), "exceeds_credits");
    json_decref(t);

    /* the same chain that fits goes through as one */
    j = call("POST", "/v1/ledger/transfers",
             "{\"transfers\":["
             "{\"id\":\"l-5\",\"debit_account\":\"h-l1\",\"credit_account\":\"h-l2\",\"amount\":"
             "\"5.00\",\"asset\":\"CNY\",\"flags\":[\"linked\"]},"
             "{\"id\":\"l-6\",\"debit_account\":\"h-l2\",\"credit_account\":\"h-merchant\","
             "\"amount\":\"3.00\",\"asset\":\"CNY\",\"flags\":[\"linked\"]},"
             "{\"id\":\"l-7\",\"debit_account\":\"h-l2\",\"credit_account\":\"h-merchant\","
             "\"amount\":\"2.00\",\"asset\":\"CNY\"}]}",
             200);
    for (size_t i = 0; i < 3; i++)
        assert_ok_result(j, i, NULL, 0);
    json_decref(j);
    assert_bal("h-l1", 0, l1.dpo + 500, 0, l1.cpo);
    assert_bal("h-l2", 0, l2.dpo + 500, 0, l2.cpo + 500);
    assert_bal("h-merchant", m.dp, m.dpo, m.cp, m.cpo + 500);
}

static void balancing_transfer(void **state)
{
    (void)state;
    fund("fund-bal", "h-bal", "7.00");
    struct bal m = balance("h-merchant");
    const char *sweep = "{\"id\":\"%s\",\"debit_account\":\"h-bal\",\"credit_account\":"
                        "\"h-merchant\",\"amount\":\"100.00\",\"asset\":\"CNY\","
                        "\"flags\":[\"balancing_debit\"]}";
    char item[512];
    snprintf(item, sizeof item, sweep, "b-1");
    json_t *j = transfer1(item, 200);
    assert_ok_result(j, 0, "7.00", 0); /* what the balance allowed, not what was asked */
    json_decref(j);
    json_t *t = get_transfer("b-1");
    assert_string_equal(ac_test_jstr(t, "amount"), "7.00");
    json_decref(t);
    assert_bal("h-bal", 0, 700, 0, 700);
    assert_bal("h-merchant", m.dp, m.dpo, m.cp, m.cpo + 700);
    snprintf(item, sizeof item, sweep, "b-2");
    transfer_fails(item, 422, "exceeds_credits");
    assert_bal("h-bal", 0, 700, 0, 700);
    /* replay of the first sweep answers the resolved amount */
    snprintf(item, sizeof item, sweep, "b-1");
    j = transfer1(item, 200);
    assert_ok_result(j, 0, "7.00", 1);
    json_decref(j);
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void metrics_exposed(void **state)
{
    (void)state;
    struct ac_test_http_resp r;
    int st = ac_test_http_request(&http, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(st, 200);
    char ct[128];
    ac_test_http_header(&r, "Content-Type", ct, sizeof ct);
    if (strncmp(ct, "text/plain", 10) != 0) fail_msg("metrics content type '%s'", ct);
    const char *need[] = {
        "# TYPE agentclear_http_requests_total counter",
        "agentclear_http_requests_total{route=\"POST /v1/ledger/transfers\",status=\"200\"}",
        "agentclear_http_requests_total{route=\"POST /v1/ledger/transfers\",status=\"422\"}",
        "agentclear_http_requests_total{route=\"unmatched\",status=\"404\"}",
        "# TYPE agentclear_commit_seconds histogram",
        "agentclear_commit_seconds_bucket{le=\"+Inf\"}",
        "agentclear_commit_seconds_count",
        "agentclear_leader 1",
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (strstr(r.body, need[i]) == NULL) fail_msg("/metrics lacks '%s':\n%s", need[i], r.body);
    /* batches were committed, so the commit histogram counted them */
    const char *cnt = strstr(r.body, "agentclear_commit_seconds_count");
    const char *sp = cnt ? strchr(cnt, ' ') : NULL;
    if (sp == NULL || atoll(sp + 1) <= 0) fail_msg("commit histogram is empty:\n%s", r.body);
    ac_test_http_resp_free(&r);
}

/* ---- the database goes away ------------------------------------------------------------------ */

struct down {
    char url[1024], purl[1100];
    struct ac_test_proxy *proxy;
    struct ac_test_server s;
    struct ac_test_http c;
};

static void down_start(struct down *d, const char *dbname)
{
    memset(d, 0, sizeof *d);
    snprintf(d->url, sizeof d->url, "%s", ac_test_fresh_db(dbname));
    d->proxy = ac_test_proxy_start(d->url, d->purl, sizeof d->purl);
    assert_non_null(d->proxy);
    if (ac_test_server_start(&d->s, dbname, d->purl, TOKEN, NULL, READY_MS) != 0)
        fail_msg("server on the proxy did not start");
    /* long enough to tell "answers slowly" from "hangs"; a hang fails with status 0 */
    ac_test_http_init(&d->c, "127.0.0.1", d->s.port, 15000);
    create_asset_on(&d->c, "CNY", 2);
    create_accounts_on(&d->c,
                       "{\"id\":\"d-a\",\"asset\":\"CNY\"},{\"id\":\"d-b\",\"asset\":\"CNY\"}");
}

static void down_finish(struct down *d)
{
    if (!ac_test_server_alive(&d->s)) {
        ac_test_server_dump_log(&d->s, 20000);
        fail_msg("the server died (exit status %d)", d->s.exit_status);
    }
    assert_no_sanitizer_report(&d->s);
    ac_test_http_close(&d->c);
    ac_test_server_kill(&d->s);
    ac_test_proxy_stop(d->proxy);
}

static const char *d_item(char *buf, size_t cap, const char *id, const char *amount)
{
    snprintf(buf, cap,
             "{\"id\":\"%s\",\"debit_account\":\"d-a\",\"credit_account\":\"d-b\",\"amount\":"
             "\"%s\",\"asset\":\"CNY\"}",
             id, amount);
    return buf;
}

/* A 503 with Retry-After and one of the retryable codes -- never a 500, never a hang. */
static void expect_unavailable(struct ac_test_http_resp *r, const char *what, const char *codes)
{
    if (r->status != 503)
        fail_msg("%s while the database is down: expected 503, got %d (%s) %s", what, r->status,
                 r->err, r->body);
    char ra[32];
    if (!ac_test_http_header(r, "Retry-After", ra, sizeof ra) || ra[0] < '0' || ra[0] > '9')
        fail_msg("%s: 503 without a usable Retry-After ('%s')", what, ra);
    json_t *j = ac_test_http_json(r);
    const char *code = j ? ac_test_jstr(j, "code") : "";
    char needle[64];
    snprintf(needle, sizeof needle, " %s ", code);
    if (code[0] == '\0' || strstr(codes, needle) == NULL)
        fail_msg("%s: code '%s' is not one of%s", what, code, codes);
    json_decref(j);
}

static int wait_ready_on(struct ac_test_http *c, int ms)
{
    long long deadline = mono_ms() + ms;
    while (mono_ms() < deadline) {
        struct ac_test_http_resp r;
        int st = ac_test_http_request(c, "GET", "/readyz", NULL, NULL, 0, &r);
        ac_test_http_resp_free(&r);
        if (st == 200) return 1;
        sleep_ms(100);
    }
    return 0;
}

static const char *const WRITE_CODES = " db_unavailable batch_failed not_leader ";

static void database_down_and_back(void **state)
{
    (void)state;
    struct down d;
    down_start(&d, "e2e_http_ledger_down");
    char item[512], body[600];
    json_t *j = transfer1_on(&d.c, d_item(item, sizeof item, "d-pre", "2.50"), 200);
    assert_ok_result(j, 0, "2.50", 0);
    json_decref(j);

    ac_test_proxy_cut(d.proxy);
    assert_int_equal(ac_test_proxy_connections(d.proxy), 0);
    /* writes fail fast with a retryable answer, however many times we try */
    const char *cut_ids[] = {"d-cut-0", "d-cut-1", "d-cut-2"};
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "{\"transfers\":[%s]}",
                 d_item(item, sizeof item, cut_ids[i], "1.00"));
        struct ac_test_http_resp r;
        api_on(&d.c, "POST", "/v1/ledger/transfers", body, &r);
        expect_unavailable(&r, "POST transfer", WRITE_CODES);
        ac_test_http_resp_free(&r);
    }
    struct ac_test_http_resp r;
    ac_test_http_request(&d.c, "GET", "/readyz", NULL, NULL, 0, &r);
    expect_unavailable(&r, "GET /readyz", " db_unavailable not_leader ");
    ac_test_http_resp_free(&r);
    api_on(&d.c, "GET", "/v1/ledger/accounts/d-a", NULL, &r);
    expect_unavailable(&r, "GET account", " db_unavailable ");
    ac_test_http_resp_free(&r);
    api_on(&d.c, "GET", "/v1/ledger/transfers/d-pre", NULL, &r);
    expect_unavailable(&r, "GET transfer", " db_unavailable ");
    ac_test_http_resp_free(&r);
    json_decref(call_on(&d.c, "GET", "/healthz", NULL, 200)); /* the process itself is fine */

    ac_test_proxy_restore(d.proxy);
    if (!wait_ready_on(&d.c, 20000)) {
        ac_test_server_dump_log(&d.s, 20000);
        fail_msg("/readyz did not answer 200 within 20 s of the database coming back");
    }
    j = transfer1_on(&d.c, d_item(item, sizeof item, "d-post", "4.00"), 200);
    assert_ok_result(j, 0, "4.00", 0);
    json_decref(j);

    /* acknowledged before the cut: there, once, and a replay changes nothing */
    j = get_transfer_on(&d.c, "d-pre");
    assert_string_equal(ac_test_jstr(j, "status"), "ok");
    assert_string_equal(ac_test_jstr(j, "amount"), "2.50");
    json_decref(j);
    assert_int_equal(ac_test_sql_int(d.url, "select count(*) from ac_transfers where id = 'd-pre'"),
                     1);
    j = transfer1_on(&d.c, d_item(item, sizeof item, "d-pre", "2.50"), 200);
    assert_ok_result(j, 0, "2.50", 1);
    json_decref(j);
    /* the retryable failures are retried with the same ids: each ends up there exactly once */
    for (int i = 0; i < 3; i++) {
        char q[160];
        snprintf(q, sizeof q, "select count(*) from ac_transfers where id = '%s'", cut_ids[i]);
        long long existed = ac_test_sql_int(d.url, q); /* a 503 promises nothing either way */
        j = transfer1_on(&d.c, d_item(item, sizeof item, cut_ids[i], "1.00"), 200);
        assert_ok_result(j, 0, "1.00", existed == 1);
        json_decref(j);
    }
    assert_int_equal(ac_test_sql_int(d.url, "select count(*) from ac_transfers where id in "
                                            "('d-cut-0', 'd-cut-1', 'd-cut-2')"),
                     3);
    struct bal a = balance_on(&d.c, "d-a");
    assert_int_equal(a.dpo, 250 + 300 + 400);
    assert_int_equal(a.dp, 0);
    down_finish(&d);
}

/* The database goes away while nothing is written, and comes back. The server notices the dead
 * writer session by itself (agentclear_leader drops to 0), and once /readyz says 200 again the
 * next transfer succeeds at the first attempt: a server that answers "ready" can write. */
static void database_down_while_idle(void **state)
{
    (void)state;
    struct down d;
    down_start(&d, "e2e_http_ledger_idle");
    char item[512];
    json_decref(transfer1_on(&d.c, d_item(item, sizeof item, "i-pre", "1.00"), 200));

    ac_test_proxy_cut(d.proxy);
    struct ac_test_http_resp r;
    ac_test_http_request(&d.c, "GET", "/readyz", NULL, NULL, 0, &r);
    expect_unavailable(&r, "GET /readyz", " db_unavailable not_leader ");
    ac_test_http_resp_free(&r);
    /* With nothing written, the server must still notice that its writer session is gone and
     * stop claiming the lease (which PostgreSQL released with the session): bounded wait. */
    long long deadline = mono_ms() + 10000;
    int leader = 1;
    while (leader && mono_ms() < deadline) {
        ac_test_http_request(&d.c, "GET", "/metrics", NULL, NULL, 0, &r);
        if (r.status != 200) fail_msg("GET /metrics while the database is down: %d", r.status);
        leader = strstr(r.body, "\nagentclear_leader 1\n") != NULL;
        ac_test_http_resp_free(&r);
        if (leader) sleep_ms(100);
    }
    if (leader) fail_msg("10 s into the outage, the server still reports agentclear_leader 1");
    ac_test_proxy_restore(d.proxy);
    if (!wait_ready_on(&d.c, 20000)) {
        ac_test_server_dump_log(&d.s, 20000);
        fail_msg("/readyz did not answer 200 within 20 s of the database coming back");
    }
    char body[600];
    snprintf(body, sizeof body, "{\"transfers\":[%s]}",
             d_item(item, sizeof item, "i-post", "2.00"));
    api_on(&d.c, "POST", "/v1/ledger/transfers", body, &r);
    if (r.status != 200) {
        char got[512];
        snprintf(got, sizeof got, "%d %s", r.status, r.body);
        ac_test_http_resp_free(&r);
        ac_test_server_dump_log(&d.s, 20000);
        fail_msg("first transfer after /readyz answered 200 again: expected 200, got %s", got);
    }
    ac_test_http_resp_free(&r);
    assert_int_equal(ac_test_sql_int(d.url, "select count(*) from ac_transfers where id in "
                                            "('i-pre', 'i-post')"),
                     2);
    down_finish(&d);
}

/* ---- shutdown -------------------------------------------------------------------------------- */

static void sigterm_stops_cleanly(void **state)
{
    (void)state;
    /* a keep-alive connection is open, which must not keep the server from stopping */
    json_decref(call("GET", "/healthz", NULL, 200));
    ac_test_payflow_stop_cleanly(&srv, 15000);
    char arg[1100];
    snprintf(arg, sizeof arg, "--database-url=%s", db_url);
    char a0[1024], a1[] = "ledger", a2[] = "check";
    snprintf(a0, sizeof a0, "%s", ac_test_binary());
    char *argv[] = {a0, a1, a2, arg, NULL};
    assert_int_equal(ac_test_run("ledger-check", argv, 30000), 0);
}

/* Everything the tests above did through the ledger API -- accounts, plain, pending, posted,
 * partially posted, voided and expired transfers, linked chains, balancing transfers, refused and
 * replayed requests -- is in the evidence log, and the auditor's replay of the export recomputes
 * the live ledger exactly: every account created by a record, every transfer of the ledger
 * recorded once. */
static void ledger_api_is_evidence(void **state)
{
    (void)state;
    ac_test_payflow_wait_sealed(db_url);
    assert_true(ac_test_sql_int(db_url, "select count(*) from ac_evidence where kind = "
                                        "'ledger.transfer'") > 0);
    ac_test_payflow_export_replay(db_url); /* audit replay --db must exit 0 */
    char logf[1100], want[300];
    snprintf(logf, sizeof logf, "%s/audit_replay.log", ac_test_tmpdir());
    char *log = ac_test_read_file(logf, NULL);
    assert_non_null(log);
    long long na = ac_test_sql_int(db_url, "select count(*) from ac_accounts"),
              nt = ac_test_sql_int(db_url, "select count(*) from ac_transfers"),
              nx = ac_test_sql_int(db_url, "select count(*) from ac_transfers where pstate = 4");
    assert_true(nx >= 1); /* pending_expires */
    snprintf(want, sizeof want,
             "replay: ledger: %lld accounts (%lld created by ledger.account records), %lld "
             "transfers applied, %lld holds expired by their timeout",
             na, na, nt, nx);
    if (strstr(log, want) == NULL) fail_msg("want \"%s\" in:\n%s", want, log);
    snprintf(want, sizeof want, "all %lld accounts of the ledger created by records", na);
    if (strstr(log, want) == NULL) fail_msg("want \"%s\" in:\n%s", want, log);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rejected_requests_write_nothing),
        cmocka_unit_test(apply_time_failures_write_nothing),
        cmocka_unit_test(reads_of_missing_things),
        cmocka_unit_test(idempotent_replay),
        cmocka_unit_test(pending_post_void),
        cmocka_unit_test(pending_expires),
        cmocka_unit_test(linked_chain_rolls_back),
        cmocka_unit_test(balancing_transfer),
        cmocka_unit_test(ledger_api_is_evidence),
        cmocka_unit_test(metrics_exposed),
        cmocka_unit_test(database_down_and_back),
        cmocka_unit_test(database_down_while_idle),
        cmocka_unit_test(sigterm_stops_cleanly),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
