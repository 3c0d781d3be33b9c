/* A Jepsen-style bank test against a real server process: 32 client threads, each with its own
 * keep-alive connection, post random transfers at the same time for a bounded time -- payments
 * to one hot merchant, transfers between users, refunds, batches of independent transfers,
 * linked chains (some that must fail), token top-ups across two assets, two-phase holds that are
 * posted (fully or partly), voided or left open, balancing transfers, and replays. Many of them
 * must fail for lack of funds. Every answer is recorded; then:
 *
 * - every request was answered (no transport error, no 5xx) and the shape of every answer is
 *   right (per-transfer results; replays answer the original amount);
 * - money is conserved per asset, and each account's four balances equal exactly what the
 *   acknowledged transfers imply (a model replayed from the answers);
 * - no account with debits_must_not_exceed_credits has debits above its credits;
 * - every acknowledged transfer exists (GET) with the same accounts, amount and pending state;
 *   no failed one exists, except as the recorded sticky failure with the same code;
 * - `agentclear ledger check` exits 0.
 *
 * Seeds are fixed; the interleaving is not, so the invariants, not the outcomes, are checked. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "protocol/amount.h"
#include "tests/support/httpc.h"
#include "tests/support/server.h"

#define TOKEN "e2e-bank-operator-token"
#define THREADS 32
#define USERS 8
#define RUN_MS 8000
#define MAX_REQ_PER_THREAD 300
#define MIN_REQ_PER_THREAD 25
#define MAX_RECS (MAX_REQ_PER_THREAD * 2 + 4)
#define CHECKERS 8

static struct ac_test_server srv;
static char db_url[1024];

/* ---- accounts -------------------------------------------------------------------------------- */

enum { CNY, TOK };
static const char *const asset_code[] = {"CNY", "TOK"};
static const unsigned asset_scale[] = {2, 0};

#define N_ACCTS (2 * USERS + 4)
static char acct_id[N_ACCTS][16];
static int acct_asset[N_ACCTS];
static int acct_flagged[N_ACCTS];
enum { A_BANK = 2 * USERS, A_MERCHANT, A_TBANK, A_PROVIDER };
/* 0..USERS-1: users' CNY accounts; USERS..2*USERS-1: their TOK accounts */

#define USER_FUNDS 100000 /* 1000.00 CNY each */
#define TOKEN_FUNDS 1000000

/* ---- what the clients did -------------------------------------------------------------------- */

enum kind { K_SIMPLE, K_PENDING, K_POST, K_VOID, K_BALANCING };

struct rec {
    char id[32];
    int kind;
    int debit, credit; /* account indexes (for post/void: those of the pending transfer) */
    int asset;
    int64_t asked; /* requested amount; -1: none given (post/void of the full amount) */
    int linked;    /* member of a linked chain (flag set or chain end) */
    int pending;   /* index (same thread) of the pending transfer, for post/void */
    int replay_of; /* >= 0: this request repeats rec[replay_of] (same id and fields) */
    /* the answer */
    int answered; /* 1 when the server answered this item */
    int ok;
    int replayed;
    int64_t amount; /* resolved amount when ok */
    char code[40];
};

struct client {
    int n; /* thread number */
    unsigned long long rng;
    struct ac_test_http http;
    struct rec *recs;
    int nrec;
    int requests;
    char problem[512]; /* first protocol violation seen, "" when none */
};

static struct client clients[THREADS];
static pthread_barrier_t start_line;
static long long run_until;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned long long next_rand(struct client *c)
{
    /* xorshift64*: fixed seeds, so each thread's sequence of intentions is reproducible */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static int64_t rnd(struct client *c, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next_rand(c) % (unsigned long long)(hi - lo + 1));
}

static void problem(struct client *c, const char *fmt, const char *a, const char *b)
{
    if (c->problem[0] == '\0') snprintf(c->problem, sizeof c->problem, fmt, a, b);
}

static struct rec *new_rec(struct client *c, int kind, int debit, int credit, int asset,
                           int64_t asked)
{
    struct rec *r = &c->recs[c->nrec];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "k%d-%d", c->n, c->nrec);
    r->kind = kind;
    r->debit = debit;
    r->credit = credit;
    r->asset = asset;
    r->asked = asked;
    r->pending = -1;
    r->replay_of = -1;
    c->nrec++;
    return r;
}

/* The JSON of one transfer item. */
static void item_json(const struct rec *r, const struct client *c, char *out, size_t cap)
{
    char amt[AC_AMOUNT_STR_MAX];
    const char *flags = "";
    char extra[160] = "";
    int n = 0;
    switch (r->kind) {
    case K_PENDING:
        flags = "\"pending\"";
        break;
    case K_BALANCING:
        flags = "\"balancing_debit\"";
        break;
    case K_POST:
        flags = "\"post_pending\"";
        break;
    case K_VOID:
        flags = "\"void_pending\"";
        break;
    default:
        break;
    }
    int linked_flag = r->linked == 1; /* 2: the end of the chain, without the flag */
    if (r->kind == K_POST || r->kind == K_VOID) {
        n = snprintf(out, cap, "{\"id\":\"%s\",\"pending_id\":\"%s\",\"asset\":\"%s\"", r->id,
                     c->recs[r->pending].id, asset_code[r->asset]);
    } else {
        n = snprintf(out, cap,
                     "{\"id\":\"%s\",\"debit_account\":\"%s\",\"credit_account\":\"%s\","
                     "\"asset\":\"%s\"",
                     r->id, acct_id[r->debit], acct_id[r->credit], asset_code[r->asset]);
    }
    if (r->asked >= 0)
        n += snprintf(out + n, cap - (size_t)n, ",\"amount\":\"%s\"",
                      ac_amount_format(r->asked, asset_scale[r->asset], amt));
    if (flags[0] || linked_flag)
        snprintf(extra, sizeof extra, ",\"flags\":[%s%s%s]", flags,
                 flags[0] && linked_flag ? "," : "", linked_flag ? "\"linked\"" : "");
    snprintf(out + n, cap - (size_t)n, "%s}", extra);
}

/* POST the items recs[first..first+count) as one request and record every answer. */
static void post(struct client *c, int first, int count)
{
    char body[4096];
    int n = snprintf(body, sizeof body, "{\"transfers\":[");
    for (int i = 0; i < count; i++) {
        char item[1024];
        item_json(&c->recs[first + i], c, item, sizeof item);
        n += snprintf(body + n, sizeof body - (size_t)n, "%s%s", i ? "," : "", item);
    }
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    struct ac_test_http_resp resp;
    int st = ac_test_http_api(&c->http, "POST", "/v1/ledger/transfers", TOKEN, body, &resp);
    c->requests++;
    json_t *j = st ? ac_test_http_json(&resp) : NULL;
    json_t *results = json_object_get(j, "results");
    char stbuf[16];
    snprintf(stbuf, sizeof stbuf, "%d", st);
    if (st == 0 || st >= 500) {
        problem(c, "a request was not answered normally (status %s): %s", stbuf,
                st ? resp.body : resp.err);
    } else if (!json_is_array(results) || json_array_size(results) != (size_t)count) {
        problem(c, "answer %s without one result per transfer: %s", stbuf, resp.body);
    } else {
        for (int i = 0; i < count; i++) {
            struct rec *r = &c->recs[first + i];
            json_t *it = json_array_get(results, (size_t)i);
            const char *id = json_string_value(json_object_get(it, "id"));
            const char *status = json_string_value(json_object_get(it, "status"));
            if (id == NULL || strcmp(id, r->id) != 0 || status == NULL) {
                problem(c, "result for the wrong id or without status: %s (%s)", resp.body, r->id);
                continue;
            }
            r->answered = 1;
            r->ok = strcmp(status, "ok") == 0;
            r->replayed = json_is_true(json_object_get(it, "replayed"));
            if (r->ok) {
                const char *a = json_string_value(json_object_get(it, "amount"));
                if (a == NULL || ac_amount_parse(a, asset_scale[r->asset], &r->amount) != AC_EC_OK)
                    problem(c, "ok result without a valid amount: %s%s", resp.body, "");
            } else {
                const char *code = json_string_value(json_object_get(it, "code"));
                snprintf(r->code, sizeof r->code, "%s", code ? code : "");
            }
        }
        /* 200 exactly when every transfer is ok */
        int all_ok = 1;
        for (int i = 0; i < count; i++)
            all_ok &= c->recs[first + i].ok;
        if ((st == 200) != all_ok)
            problem(c, "status %s does not fit the results: %s", stbuf, resp.body);
    }
    json_decref(j);
    ac_test_http_resp_free(&resp);
}

static int user(struct client *c)
{
    return (int)rnd(c, 0, USERS - 1);
}

static int other_user(struct client *c, int u)
{
    return (u + (int)rnd(c, 1, USERS - 1)) % USERS;
}

static void one_round(struct client *c)
{
    int u = user(c);
    int64_t roll = rnd(c, 0, 99);
    int first = c->nrec;
    if (roll < 30) { /* pay the hot merchant */
        new_rec(c, K_SIMPLE, u, A_MERCHANT, CNY, rnd(c, 1, 15000));
        post(c, first, 1);
    } else if (roll < 42) { /* two independent transfers in one request */
        int v = other_user(c, u);
        new_rec(c, K_SIMPLE, u, v, CNY, rnd(c, 1, 20000));
        new_rec(c, K_SIMPLE, u, A_MERCHANT, CNY, rnd(c, 1, 8000));
        post(c, first, 2);
    } else if (roll < 52) { /* the merchant refunds */
        new_rec(c, K_SIMPLE, A_MERCHANT, u, CNY, rnd(c, 1, 10000));
        post(c, first, 1);
    } else if (roll < 60) { /* token top-up: fiat to the provider, tokens to the user, linked */
        int64_t x = rnd(c, 100, 9000);
        struct rec *a = new_rec(c, K_SIMPLE, u, A_MERCHANT, CNY, x);
        a->linked = 1;
        struct rec *b = new_rec(c, K_SIMPLE, A_PROVIDER, USERS + u, TOK, x * 10);
        b->linked = 2;
        post(c, first, 2);
    } else if (roll < 65) { /* spend tokens */
        new_rec(c, K_SIMPLE, USERS + u, A_PROVIDER, TOK, rnd(c, 1, 50000));
        post(c, first, 1);
    } else if (roll < 70) { /* a chain whose second leg may not be covered */
        int v = other_user(c, u);
        int64_t x = rnd(c, 1, 5000);
        struct rec *a = new_rec(c, K_SIMPLE, u, v, CNY, x);
        a->linked = 1;
        struct rec *b = new_rec(c, K_SIMPLE, v, A_MERCHANT, CNY, x + rnd(c, 0, 60000));
        b->linked = 2;
        post(c, first, 2);
    } else if (roll < 84) { /* a hold, then post all / post part / void / leave it */
        int64_t x = rnd(c, 1, 12000);
        struct rec *p = new_rec(c, K_PENDING, u, A_MERCHANT, CNY, x);
        post(c, first, 1);
        if (!p->ok) return;
        int pi = first;
        int64_t what = rnd(c, 0, 9);
        struct rec *f = NULL;
        if (what < 4)
            f = new_rec(c, K_POST, u, A_MERCHANT, CNY, -1);
        else if (what < 7)
            f = new_rec(c, K_POST, u, A_MERCHANT, CNY, rnd(c, 1, x));
        else if (what < 9)
            f = new_rec(c, K_VOID, u, A_MERCHANT, CNY, -1);
        if (f == NULL) return;
        f->pending = pi;
        post(c, pi + 1, 1);
        if (!f->ok) problem(c, "post/void of our own open hold %s failed: %s", f->id, f->code);
    } else if (roll < 92) { /* sweep what the balance allows, up to a maximum */
        new_rec(c, K_BALANCING, u, A_MERCHANT, CNY, rnd(c, 1, 5000));
        post(c, first, 1);
    } else { /* repeat one of our earlier successful simple transfers */
        int cand = -1;
        for (int tries = 0; tries < 8 && cand < 0 && first > 0; tries++) {
            int k = (int)rnd(c, 0, first - 1);
            struct rec *o = &c->recs[k];
            if (o->ok && o->kind == K_SIMPLE && !o->linked && o->replay_of < 0) cand = k;
        }
        if (cand < 0) return;
        struct rec *o = &c->recs[cand];
        struct rec *r = new_rec(c, K_SIMPLE, o->debit, o->credit, o->asset, o->asked);
        memmove(r->id, o->id, sizeof r->id);
        r->replay_of = cand;
        post(c, first, 1);
        if (!r->ok || !r->replayed || r->amount != o->amount)
            problem(c, "replay of %s did not answer the original (ok, replayed, same amount)%s",
                    o->id, "");
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    pthread_barrier_wait(&start_line);
    /* until the time is up (but at least MIN_REQ_PER_THREAD requests, however slow the build) or
     * the request budget is spent */
    while (c->requests < MAX_REQ_PER_THREAD && c->nrec + 2 < MAX_RECS &&
           (mono_ms() < run_until || c->requests < MIN_REQ_PER_THREAD) && c->problem[0] == '\0')
        one_round(c);
    ac_test_http_close(&c->http);
    return NULL;
}

/* ---- verification ---------------------------------------------------------------------------- */

struct checker {
    int from, to; /* clients[from..to) */
    unsigned port;
    char problem[512];
    long checked;
};

static int sticky(const char *code)
{
    return strcmp(code, "exceeds_credits") == 0 || strcmp(code, "exceeds_debits") == 0 ||
           strcmp(code, "pending_expired") == 0;
}

/* The pending state the answers imply for pending transfer index k of client c. */
static const char *expected_pstate(const struct client *c, int k)
{
    for (int i = k + 1; i < c->nrec; i++) {
        const struct rec *r = &c->recs[i];
        if (r->pending == k && r->ok) return r->kind == K_POST ? "posted" : "voided";
    }
    return "pending";
}

static void *checker_main(void *arg)
{
    struct checker *k = arg;
    struct ac_test_http h;
    ac_test_http_init(&h, "127.0.0.1", k->port, 30000);
    for (int ci = k->from; ci < k->to && k->problem[0] == '\0'; ci++) {
        const struct client *c = &clients[ci];
        for (int i = 0; i < c->nrec && k->problem[0] == '\0'; i++) {
            const struct rec *r = &c->recs[i];
            if (r->replay_of >= 0 || !r->answered) continue;
            char path[96];
            snprintf(path, sizeof path, "/v1/ledger/transfers/%s", r->id);
            struct ac_test_http_resp resp;
            int st = ac_test_http_api(&h, "GET", path, TOKEN, NULL, &resp);
            json_t *j = st ? ac_test_http_json(&resp) : NULL;
            const char *status = json_string_value(json_object_get(j, "status"));
            const char *code = json_string_value(json_object_get(j, "code"));
            char why[200] = "";
            if (r->ok) {
                const char *a = json_string_value(json_object_get(j, "amount"));
                const char *d = json_string_value(json_object_get(j, "debit_account"));
                const char *cr = json_string_value(json_object_get(j, "credit_account"));
                int64_t amount = -1;
                if (a) ac_amount_parse(a, asset_scale[r->asset], &amount);
                if (st != 200 || status == NULL || strcmp(status, "ok") != 0)
                    snprintf(why, sizeof why, "acknowledged ok but not found as ok");
                else if (amount != r->amount)
                    snprintf(why, sizeof why, "amount %lld, acknowledged %lld", (long long)amount,
                             (long long)r->amount);
                else if (!d || !cr || strcmp(d, acct_id[r->debit]) ||
                         strcmp(cr, acct_id[r->credit]))
                    snprintf(why, sizeof why, "other accounts than requested");
                else if (r->kind == K_PENDING) {
                    const char *ps = json_string_value(json_object_get(j, "pending_state"));
                    const char *want = expected_pstate(c, i);
                    if (ps == NULL || strcmp(ps, want) != 0)
                        snprintf(why, sizeof why, "pending_state %s, expected %s",
                                 ps ? ps : "(none)", want);
                }
            } else if (sticky(r->code)) {
                if (st != 200 || status == NULL || strcmp(status, "failed") != 0 || code == NULL ||
                    strcmp(code, r->code) != 0)
                    snprintf(why, sizeof why, "sticky failure %s not recorded as such", r->code);
            } else if (st != 404) {
                snprintf(why, sizeof why, "failed with %s but exists", r->code);
            }
            if (why[0])
                snprintf(k->problem, sizeof k->problem, "transfer %s: %s (GET: %d %.200s)", r->id,
                         why, st, resp.body);
            k->checked++;
            json_decref(j);
            ac_test_http_resp_free(&resp);
        }
    }
    ac_test_http_close(&h);
    return NULL;
}

struct bal {
    int64_t dp, dpo, cp, cpo;
};

static struct bal get_balance(struct ac_test_http *h, int a)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/ledger/accounts/%s", acct_id[a]);
    struct ac_test_http_resp resp;
    int st = ac_test_http_api(h, "GET", path, TOKEN, NULL, &resp);
    if (st != 200) fail_msg("GET account %s: %d %s", acct_id[a], st, resp.body);
    json_t *j = ac_test_http_json(&resp);
    struct bal b;
    const char *names[] = {"debits_pending", "debits_posted", "credits_pending", "credits_posted"};
    int64_t *f[] = {&b.dp, &b.dpo, &b.cp, &b.cpo};
    for (int i = 0; i < 4; i++) {
        const char *s = json_string_value(json_object_get(j, names[i]));
        if (s == NULL || ac_amount_parse(s, asset_scale[acct_asset[a]], f[i]) != AC_EC_OK)
            fail_msg("account %s: bad %s in %s", acct_id[a], names[i], resp.body);
    }
    json_decref(j);
    ac_test_http_resp_free(&resp);
    return b;
}

/* ---- the test -------------------------------------------------------------------------------- */

static void api_ok(struct ac_test_http *h, const char *method, const char *path, const char *json)
{
    struct ac_test_http_resp r;
    int st = ac_test_http_api(h, method, path, TOKEN, json, &r);
    if (st != 200 && st != 201) fail_msg("%s %s: %d %s\n%.300s", method, path, st, r.body, json);
    ac_test_http_resp_free(&r);
}

static void setup_ledger(struct ac_test_http *h)
{
    api_ok(h, "POST", "/v1/ledger/assets", "{\"code\":\"CNY\",\"scale\":2}");
    api_ok(h, "POST", "/v1/ledger/assets", "{\"code\":\"TOK\",\"scale\":0}");
    for (int i = 0; i < USERS; i++) {
        snprintf(acct_id[i], sizeof acct_id[i], "k-u%d", i);
        acct_asset[i] = CNY;
        snprintf(acct_id[USERS + i], sizeof acct_id[i], "k-t%d", i);
        acct_asset[USERS + i] = TOK;
        acct_flagged[i] = acct_flagged[USERS + i] = 1;
    }
    snprintf(acct_id[A_BANK], sizeof acct_id[0], "k-bank");
    snprintf(acct_id[A_MERCHANT], sizeof acct_id[0], "k-merchant");
    snprintf(acct_id[A_TBANK], sizeof acct_id[0], "k-tbank");
    snprintf(acct_id[A_PROVIDER], sizeof acct_id[0], "k-provider");
    acct_asset[A_BANK] = acct_asset[A_MERCHANT] = CNY;
    acct_asset[A_TBANK] = acct_asset[A_PROVIDER] = TOK;
    acct_flagged[A_MERCHANT] = acct_flagged[A_PROVIDER] = 1;
    char body[8192];
    int n = snprintf(body, sizeof body, "{\"accounts\":[");
    for (int a = 0; a < N_ACCTS; a++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s{\"id\":\"%s\",\"asset\":\"%s\"%s}",
                      a ? "," : "", acct_id[a], asset_code[acct_asset[a]],
                      acct_flagged[a] ? ",\"flags\":[\"debits_must_not_exceed_credits\"]" : "");
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    api_ok(h, "POST", "/v1/ledger/accounts", body);
    n = snprintf(body, sizeof body, "{\"transfers\":[");
    for (int i = 0; i < USERS; i++)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "{\"id\":\"fund-%d\",\"debit_account\":\"k-bank\",\"credit_account\":"
                      "\"%s\",\"amount\":\"%d.%02d\",\"asset\":\"CNY\"},",
                      i, acct_id[i], USER_FUNDS / 100, USER_FUNDS % 100);
    snprintf(body + n, sizeof body - (size_t)n,
             "{\"id\":\"fund-tok\",\"debit_account\":\"k-tbank\",\"credit_account\":"
             "\"k-provider\",\"amount\":\"%d\",\"asset\":\"TOK\"}]}",
             TOKEN_FUNDS);
    api_ok(h, "POST", "/v1/ledger/transfers", body);
}

static void bank(void **state)
{
    (void)state;
    struct ac_test_http h;
    ac_test_http_init(&h, "127.0.0.1", srv.port, 30000);
    setup_ledger(&h);

    /* the load */
    pthread_t th[THREADS];
    assert_int_equal(pthread_barrier_init(&start_line, NULL, THREADS + 1), 0);
    for (int i = 0; i < THREADS; i++) {
        struct client *c = &clients[i];
        memset(c, 0, sizeof *c);
        c->n = i;
        c->rng = 0x9E3779B97F4A7C15ULL ^ (unsigned long long)(i + 1) * 0x100000001B3ULL;
        c->recs = calloc(MAX_RECS, sizeof *c->recs);
        assert_non_null(c->recs);
        ac_test_http_init(&c->http, "127.0.0.1", srv.port, 30000);
        assert_int_equal(pthread_create(&th[i], NULL, client_main, c), 0);
    }
    run_until = mono_ms() + RUN_MS;
    long long t0 = mono_ms();
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    long long t1 = mono_ms();
    pthread_barrier_destroy(&start_line);

    long requests = 0, items = 0, ok = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        struct client *c = &clients[i];
        if (c->problem[0]) fail_msg("client %d: %s", i, c->problem);
        requests += c->requests;
        for (int k = 0; k < c->nrec; k++) {
            if (!c->recs[k].answered) fail_msg("client %d: %s got no answer", i, c->recs[k].id);
            items++;
            c->recs[k].ok ? ok++ : failed++;
        }
    }
    fprintf(stderr, "bank: %ld requests, %ld transfers (%ld ok, %ld failed) in %lld ms\n", requests,
            items, ok, failed, t1 - t0);
    /* the mix must have exercised both outcomes, or the test proves little */
    if (ok == 0 || failed == 0) fail_msg("%ld ok and %ld failed: the mix is broken", ok, failed);

    /* the model: balances implied by the acknowledged transfers */
    struct bal want[N_ACCTS];
    memset(want, 0, sizeof want);
    want[A_BANK].dpo = (int64_t)USERS * USER_FUNDS;
    for (int i = 0; i < USERS; i++)
        want[i].cpo = USER_FUNDS;
    want[A_TBANK].dpo = TOKEN_FUNDS;
    want[A_PROVIDER].cpo = TOKEN_FUNDS;
    for (int i = 0; i < THREADS; i++) {
        const struct client *c = &clients[i];
        for (int k = 0; k < c->nrec; k++) {
            const struct rec *r = &c->recs[k];
            if (!r->ok || r->replay_of >= 0) continue;
            if (r->replayed) fail_msg("%s: a first attempt answered as replayed", r->id);
            switch (r->kind) {
            case K_SIMPLE:
            case K_BALANCING:
                if (r->kind == K_SIMPLE ? r->amount != r->asked
                                        : (r->amount <= 0 || r->amount > r->asked))
                    fail_msg("%s: resolved amount %lld for asked %lld", r->id, (long long)r->amount,
                             (long long)r->asked);
                want[r->debit].dpo += r->amount;
                want[r->credit].cpo += r->amount;
                break;
            case K_PENDING:
                want[r->debit].dp += r->amount;
                want[r->credit].cp += r->amount;
                break;
            case K_POST:
            case K_VOID: {
                const struct rec *p = &c->recs[r->pending];
                int64_t expect = r->asked >= 0 ? r->asked : p->amount;
                if (r->amount != expect)
                    fail_msg("%s: %s amount %lld, expected %lld", r->id,
                             r->kind == K_POST ? "post" : "void", (long long)r->amount,
                             (long long)expect);
                want[p->debit].dp -= p->amount;
                want[p->credit].cp -= p->amount;
                if (r->kind == K_POST) {
                    want[p->debit].dpo += r->amount;
                    want[p->credit].cpo += r->amount;
                }
                break;
            }
            }
        }
    }
    /* what the server holds */
    int64_t net[2] = {0, 0}, dp[2] = {0, 0}, cp[2] = {0, 0}, held[2] = {0, 0};
    for (int a = 0; a < N_ACCTS; a++) {
        struct bal b = get_balance(&h, a);
        if (b.dp != want[a].dp || b.dpo != want[a].dpo || b.cp != want[a].cp ||
            b.cpo != want[a].cpo)
            fail_msg("account %s: dp/dpo/cp/cpo %lld/%lld/%lld/%lld, the acknowledged transfers "
                     "imply %lld/%lld/%lld/%lld",
                     acct_id[a], (long long)b.dp, (long long)b.dpo, (long long)b.cp,
                     (long long)b.cpo, (long long)want[a].dp, (long long)want[a].dpo,
                     (long long)want[a].cp, (long long)want[a].cpo);
        if (acct_flagged[a] && b.dp + b.dpo > b.cpo)
            fail_msg("account %s has debits %lld above its credits %lld", acct_id[a],
                     (long long)(b.dp + b.dpo), (long long)b.cpo);
        int as = acct_asset[a];
        dp[as] += b.dp;
        cp[as] += b.cp;
        if (a != A_BANK && a != A_TBANK) {
            net[as] += b.cpo - b.dpo;
            held[as] += b.dp;
        }
    }
    /* conservation: the funded accounts together still hold exactly what was paid in */
    assert_int_equal(net[CNY], (int64_t)USERS * USER_FUNDS);
    assert_int_equal(net[TOK], TOKEN_FUNDS);
    assert_int_equal(dp[CNY], cp[CNY]);
    assert_int_equal(dp[TOK], cp[TOK]);
    fprintf(stderr, "bank: conserved; %lld.%02lld CNY still held in open holds\n",
            (long long)held[CNY] / 100, (long long)held[CNY] % 100);

    /* every answer against what GET says */
    pthread_t ck[CHECKERS];
    struct checker chk[CHECKERS];
    for (int i = 0; i < CHECKERS; i++) {
        chk[i] = (struct checker){
            .from = i * THREADS / CHECKERS, .to = (i + 1) * THREADS / CHECKERS, .port = srv.port};
        assert_int_equal(pthread_create(&ck[i], NULL, checker_main, &chk[i]), 0);
    }
    long checked = 0;
    for (int i = 0; i < CHECKERS; i++)
        pthread_join(ck[i], NULL);
    for (int i = 0; i < CHECKERS; i++) {
        if (chk[i].problem[0]) fail_msg("%s", chk[i].problem);
        checked += chk[i].checked;
    }
    fprintf(stderr, "bank: %ld transfers checked by GET\n", checked);
    ac_test_http_close(&h);

    char arg[1100], a0[1024], a1[] = "ledger", a2[] = "check";
    snprintf(arg, sizeof arg, "--database-url=%s", db_url);
    snprintf(a0, sizeof a0, "%s", ac_test_binary());
    char *argv[] = {a0, a1, a2, arg, NULL};
    assert_int_equal(ac_test_run("ledger-check", argv, 60000), 0);

    if (!ac_test_server_alive(&srv)) fail_msg("the server died (status %d)", srv.exit_status);
    if (ac_test_server_log_has_sanitizer_report(&srv)) {
        ac_test_server_dump_log(&srv, 20000);
        fail_msg("sanitizer report in the server log");
    }
    for (int i = 0; i < THREADS; i++)
        free(clients[i].recs);
}

static int setup(void **state)
{
    (void)state;
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_bank"));
    return ac_test_server_start(&srv, "bank", db_url, TOKEN, NULL, 30000);
}

static int teardown(void **state)
{
    (void)state;
    ac_test_server_stop(&srv, 15000);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bank),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
