/* Crash consistency: 16 client threads post transfers (unique ids: single transfers, batches of
 * three independent transfers, linked pairs) as fast as the server answers; after ~3 s the
 * server is SIGKILLed mid-load and restarted on the same database. Then:
 *
 * - every transfer acknowledged (200, status ok) before the kill is there exactly once, with its
 *   amount: GET through the restarted server, and a count straight from PostgreSQL;
 * - a request that got no answer was applied entirely or not at all (a command is never split
 *   across batches, and a batch is one transaction): all of its transfers exist, or none;
 * - re-posting every unanswered request with the same fields now answers ok, "replayed" exactly
 *   for the transfers that had been committed: idempotency closes the gap;
 * - afterwards every transfer exists once, the balances add up, `agentclear ledger check` exits 0.
 * Timing only bounds the run; nothing depends on how fast the server is. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "protocol/amount.h"
#include "tests/support/httpc.h"
#include "tests/support/server.h"

#define TOKEN "e2e-crash-operator-token"
#define THREADS 16
#define MERCHANTS 4
#define CHECKERS 8

static struct ac_test_server srv;
static char db_url[1024];

struct req {
    char ids[3][24];
    int64_t amounts[3];
    char body[640];
    int n;          /* transfers in the request */
    int status;     /* HTTP status, 0 = no answer */
    int existed[3]; /* after the restart, before re-posting: 1 when committed */
};

struct client {
    int n;
    unsigned long long rng;
    struct ac_test_http http;
    struct req *reqs; /* grown by the client thread; read by main after the join */
    int nreq, cap;
    char problem[512];
};

static struct client clients[THREADS];
static atomic_int stop_flag;
static atomic_long acked;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static unsigned long long next_rand(struct client *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static int64_t rnd(struct client *c, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next_rand(c) % (unsigned long long)(hi - lo + 1));
}

static void build(struct client *c, struct req *r)
{
    int64_t roll = rnd(c, 0, 9);
    r->n = roll < 6 ? 1 : 2 + (roll >= 8); /* 60% single, 20% linked pair, 20% batch of three */
    int linked = r->n == 2;
    for (int i = 0; i < r->n; i++)
        r->amounts[i] = rnd(c, 1, 999);
    if (linked) r->amounts[1] = r->amounts[0];
    int n = snprintf(r->body, sizeof r->body, "{\"transfers\":[");
    for (int i = 0; i < r->n; i++) {
        snprintf(r->ids[i], sizeof r->ids[i], "c%d-%d-%d", c->n, c->nreq, i);
        char amt[AC_AMOUNT_STR_MAX];
        ac_amount_format(r->amounts[i], 2, amt);
        /* a linked pair goes source -> holder -> merchant; the holder (flagged) is covered by
         * the first leg only, so the pair is only consistent as one */
        const char *debit = linked && i == 1 ? "c-holder" : "c-src";
        char credit[16];
        if (linked && i == 0)
            snprintf(credit, sizeof credit, "c-holder");
        else
            snprintf(credit, sizeof credit, "c-m%d", (int)rnd(c, 0, MERCHANTS - 1));
        n += snprintf(r->body + n, sizeof r->body - (size_t)n,
                      "%s{\"id\":\"%s\",\"debit_account\":\"%s\",\"credit_account\":\"%s\","
                      "\"amount\":\"%s\",\"asset\":\"CNY\"%s}",
                      i ? "," : "", r->ids[i], debit, credit, amt,
                      linked && i == 0 ? ",\"flags\":[\"linked\"]" : "");
    }
    snprintf(r->body + n, sizeof r->body - (size_t)n, "]}");
}

/* 1 when the answer is a 200 with every transfer ok (and not replayed: ids are new). */
static int all_ok(const struct ac_test_http_resp *resp, const struct req *r, int want_replayed[3],
                  char *why, size_t cap)
{
    json_t *j = ac_test_http_json(resp);
    json_t *res = json_object_get(j, "results");
    int good = resp->status == 200 && json_array_size(res) == (size_t)r->n;
    for (int i = 0; good && i < r->n; i++) {
        json_t *it = json_array_get(res, (size_t)i);
        const char *id = json_string_value(json_object_get(it, "id"));
        const char *st = json_string_value(json_object_get(it, "status"));
        const char *a = json_string_value(json_object_get(it, "amount"));
        int64_t amount = -1;
        if (a) ac_amount_parse(a, 2, &amount);
        int rep = json_is_true(json_object_get(it, "replayed"));
        good = id && strcmp(id, r->ids[i]) == 0 && st && strcmp(st, "ok") == 0 &&
               amount == r->amounts[i] && rep == (want_replayed ? want_replayed[i] : 0);
    }
    if (!good) snprintf(why, cap, "%d %.300s", resp->status, resp->body);
    json_decref(j);
    return good;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    while (!atomic_load(&stop_flag)) {
        if (c->nreq == c->cap) {
            int nc = c->cap ? 2 * c->cap : 256;
            struct req *g = realloc(c->reqs, (size_t)nc * sizeof *g);
            if (g == NULL) {
                snprintf(c->problem, sizeof c->problem, "out of memory");
                break;
            }
            c->reqs = g;
            c->cap = nc;
        }
        struct req *r = &c->reqs[c->nreq];
        memset(r, 0, sizeof *r);
        build(c, r);
        c->nreq++;
        struct ac_test_http_resp resp;
        r->status =
            ac_test_http_api(&c->http, "POST", "/v1/ledger/transfers", TOKEN, r->body, &resp);
        char why[400];
        if (r->status != 0 && !all_ok(&resp, r, NULL, why, sizeof why) && !c->problem[0])
            snprintf(c->problem, sizeof c->problem, "request %s: answered %s", r->ids[0], why);
        if (r->status == 200) atomic_fetch_add(&acked, r->n);
        ac_test_http_resp_free(&resp);
        if (r->status == 0) break; /* the server is gone: at most one unanswered request */
    }
    ac_test_http_close(&c->http);
    return NULL;
}

/* ---- PostgreSQL straight ------------------------------------------------------------------ */

struct idlist {
    char *s; /* "{a,b,c}" */
    size_t len, cap;
    long n;
};

static void idlist_add(struct idlist *l, const char *id)
{
    size_t need = l->len + strlen(id) + 3;
    if (need > l->cap) {
        l->cap = need * 2 + 4096;
        l->s = realloc(l->s, l->cap);
        assert_non_null(l->s);
    }
    l->len += (size_t)sprintf(l->s + l->len, "%s%s", l->n ? "," : "{", id);
    l->n++;
}

/* Close the array literal; returns it. */
static const char *idlist_done(struct idlist *l)
{
    idlist_add(l, ""); /* makes room (and adds a trailing ",", or "{" when empty) */
    l->n--;
    l->s[l->len - 1] = '}';
    if (l->n == 0) snprintf(l->s, l->cap, "{}");
    return l->s;
}

static PGresult *q_ids(PGconn *c, const char *sql, const char *arr)
{
    const char *v[] = {arr};
    PGresult *r = PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    return r;
}

static int exists_in(PGresult *r, const char *id)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, 0), id) == 0) return 1;
    return 0;
}

/* ---- GET through the restarted server ------------------------------------------------------- */

struct checker {
    int from, to;
    char problem[512];
    long checked;
};

static void *checker_main(void *arg)
{
    struct checker *k = arg;
    struct ac_test_http h;
    ac_test_http_init(&h, "127.0.0.1", srv.port, 30000);
    for (int ci = k->from; ci < k->to && !k->problem[0]; ci++) {
        const struct client *c = &clients[ci];
        for (int q = 0; q < c->nreq && !k->problem[0]; q++) {
            const struct req *r = &c->reqs[q];
            if (r->status != 200) continue;
            for (int i = 0; i < r->n; i++) {
                char path[96];
                snprintf(path, sizeof path, "/v1/ledger/transfers/%s", r->ids[i]);
                struct ac_test_http_resp resp;
                int st = ac_test_http_api(&h, "GET", path, TOKEN, NULL, &resp);
                json_t *j = ac_test_http_json(&resp);
                const char *s = json_string_value(json_object_get(j, "status"));
                const char *a = json_string_value(json_object_get(j, "amount"));
                int64_t amount = -1;
                if (a) ac_amount_parse(a, 2, &amount);
                if (st != 200 || !s || strcmp(s, "ok") != 0 || amount != r->amounts[i])
                    snprintf(k->problem, sizeof k->problem,
                             "acknowledged transfer %s (amount %lld) after the restart: %d %.200s",
                             r->ids[i], (long long)r->amounts[i], st, resp.body);
                k->checked++;
                json_decref(j);
                ac_test_http_resp_free(&resp);
            }
        }
    }
    ac_test_http_close(&h);
    return NULL;
}

/* ---- the test -------------------------------------------------------------------------------- */

static void api_ok(struct ac_test_http *h, const char *path, const char *json)
{
    struct ac_test_http_resp r;
    int st = ac_test_http_api(h, "POST", path, TOKEN, json, &r);
    if (st != 200 && st != 201) fail_msg("POST %s: %d %s", path, st, r.body);
    ac_test_http_resp_free(&r);
}

static void ledger_check(void)
{
    char arg[1100], a0[1024], a1[] = "ledger", a2[] = "check";
    snprintf(arg, sizeof arg, "--database-url=%s", db_url);
    snprintf(a0, sizeof a0, "%s", ac_test_binary());
    char *argv[] = {a0, a1, a2, arg, NULL};
    assert_int_equal(ac_test_run("ledger-check", argv, 60000), 0);
}

static void crash_and_restart(void **state)
{
    (void)state;
    struct ac_test_http h;
    ac_test_http_init(&h, "127.0.0.1", srv.port, 30000);
    api_ok(&h, "/v1/ledger/assets", "{\"code\":\"CNY\",\"scale\":2}");
    char accts[1024];
    int n = snprintf(accts, sizeof accts,
                     "{\"accounts\":[{\"id\":\"c-src\",\"asset\":\"CNY\"},{\"id\":\"c-holder\","
                     "\"asset\":\"CNY\",\"flags\":[\"debits_must_not_exceed_credits\"]}");
    for (int i = 0; i < MERCHANTS; i++)
        n += snprintf(accts + n, sizeof accts - (size_t)n, ",{\"id\":\"c-m%d\",\"asset\":\"CNY\"}",
                      i);
    snprintf(accts + n, sizeof accts - (size_t)n, "]}");
    api_ok(&h, "/v1/ledger/accounts", accts);
    ac_test_http_close(&h);

    /* load, then the kill */
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        struct client *c = &clients[i];
        memset(c, 0, sizeof *c);
        c->n = i;
        c->rng = 0xD1B54A32D192ED03ULL ^ (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
        ac_test_http_init(&c->http, "127.0.0.1", srv.port, 20000);
        c->http.retry_stale = 0; /* know exactly which requests got no answer */
        assert_int_equal(pthread_create(&th[i], NULL, client_main, c), 0);
    }
    long long t0 = mono_ms();
    /* ~3 s of load; a slow build gets up to 15 s to acknowledge something worth checking */
    while (mono_ms() - t0 < 3000 || (atomic_load(&acked) < 100 && mono_ms() - t0 < 15000))
        sleep_ms(20);
    ac_test_server_kill(&srv);
    long long t_kill = mono_ms();
    sleep_ms(200); /* the clients see the dead server for a moment */
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    long answered = 0, unanswered = 0, acked_transfers = 0;
    for (int i = 0; i < THREADS; i++) {
        struct client *c = &clients[i];
        if (c->problem[0]) fail_msg("client %d: %s", i, c->problem);
        for (int q = 0; q < c->nreq; q++) {
            if (c->reqs[q].status == 200) {
                answered++;
                acked_transfers += c->reqs[q].n;
            } else {
                unanswered++;
            }
        }
    }
    fprintf(stderr,
            "crash: killed after %lld ms; %ld requests acknowledged (%ld transfers), %ld "
            "without an answer\n",
            t_kill - t0, answered, acked_transfers, unanswered);
    if (acked_transfers == 0) fail_msg("nothing was acknowledged before the kill");
    if (ac_test_server_log_has_sanitizer_report(&srv)) {
        ac_test_server_dump_log(&srv, 20000);
        fail_msg("sanitizer report in the log of the killed server");
    }

    /* the same database, a new process */
    long long t_restart = mono_ms();
    if (ac_test_server_restart(&srv, 30000) != 0) fail_msg("the server did not come back");
    fprintf(stderr, "crash: ready again %lld ms after the restart\n", mono_ms() - t_restart);

    PGconn *pg = PQconnectdb(db_url);
    if (PQstatus(pg) != CONNECTION_OK) fail_msg("connect: %s", PQerrorMessage(pg));
    struct idlist ack = {0}, unk = {0};
    for (int i = 0; i < THREADS; i++)
        for (int q = 0; q < clients[i].nreq; q++)
            for (int k = 0; k < clients[i].reqs[q].n; k++)
                idlist_add(clients[i].reqs[q].status == 200 ? &ack : &unk,
                           clients[i].reqs[q].ids[k]);
    long n_ack = ack.n, n_unk = unk.n;
    const char *ack_arr = idlist_done(&ack);
    const char *unk_arr = idlist_done(&unk);

    /* acknowledged: every one there, exactly once */
    PGresult *r = q_ids(
        pg, "select count(*), count(distinct id) from ac_transfers where id = any($1::text[])",
        ack_arr);
    if (atol(PQgetvalue(r, 0, 0)) != n_ack || atol(PQgetvalue(r, 0, 1)) != n_ack)
        fail_msg("of %ld acknowledged transfers, PostgreSQL holds %s rows (%s distinct ids)", n_ack,
                 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
    r = q_ids(pg, "select count(*) from ac_transfer_failures where id = any($1::text[])", ack_arr);
    assert_int_equal(atol(PQgetvalue(r, 0, 0)), 0);
    PQclear(r);
    pthread_t ck[CHECKERS];
    struct checker chk[CHECKERS];
    for (int i = 0; i < CHECKERS; i++) {
        chk[i] =
            (struct checker){.from = i * THREADS / CHECKERS, .to = (i + 1) * THREADS / CHECKERS};
        assert_int_equal(pthread_create(&ck[i], NULL, checker_main, &chk[i]), 0);
    }
    long checked = 0;
    for (int i = 0; i < CHECKERS; i++)
        pthread_join(ck[i], NULL);
    for (int i = 0; i < CHECKERS; i++) {
        if (chk[i].problem[0]) fail_msg("%s", chk[i].problem);
        checked += chk[i].checked;
    }
    assert_int_equal(checked, n_ack);

    /* unanswered: all of a request or none of it */
    r = q_ids(pg, "select id from ac_transfers where id = any($1::text[])", unk_arr);
    long committed_unanswered = 0;
    for (int i = 0; i < THREADS; i++)
        for (int q = 0; q < clients[i].nreq; q++) {
            struct req *rq = &clients[i].reqs[q];
            if (rq->status == 200) continue;
            int have = 0;
            for (int k = 0; k < rq->n; k++)
                have += rq->existed[k] = exists_in(r, rq->ids[k]);
            if (have != 0 && have != rq->n)
                fail_msg("request %s (%d transfers) is partly committed: %d of them", rq->ids[0],
                         rq->n, have);
            committed_unanswered += have;
        }
    PQclear(r);
    fprintf(stderr, "crash: %ld of %ld unanswered transfers had been committed\n",
            committed_unanswered, n_unk);

    /* idempotency closes the gap: re-post every unanswered request with the same fields */
    ac_test_http_init(&h, "127.0.0.1", srv.port, 30000);
    for (int i = 0; i < THREADS; i++)
        for (int q = 0; q < clients[i].nreq; q++) {
            struct req *rq = &clients[i].reqs[q];
            if (rq->status == 200) continue;
            struct ac_test_http_resp resp;
            ac_test_http_api(&h, "POST", "/v1/ledger/transfers", TOKEN, rq->body, &resp);
            char why[400];
            if (!all_ok(&resp, rq, rq->existed, why, sizeof why))
                fail_msg("re-posting %s (committed before: %d): %s", rq->ids[0], rq->existed[0],
                         why);
            ac_test_http_resp_free(&resp);
        }

    /* now everything is there once, and the money adds up */
    struct idlist all = {0};
    int64_t total = 0;
    for (int i = 0; i < THREADS; i++)
        for (int q = 0; q < clients[i].nreq; q++) {
            struct req *rq = &clients[i].reqs[q];
            for (int k = 0; k < rq->n; k++) {
                idlist_add(&all, rq->ids[k]);
                if (!(rq->n == 2 && k == 1)) total += rq->amounts[k]; /* 2nd leg: not from src */
            }
        }
    long n_all = all.n;
    r = q_ids(pg, "select count(*) from ac_transfers where id = any($1::text[])",
              idlist_done(&all));
    assert_int_equal(atol(PQgetvalue(r, 0, 0)), n_all);
    PQclear(r);
    r = PQexec(pg, "select debits_posted from ac_accounts where id = 'c-src'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(atoll(PQgetvalue(r, 0, 0)), total);
    PQclear(r);
    r = PQexec(pg, "select debits_posted = credits_posted from ac_accounts where id = 'c-holder'");
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    PQfinish(pg);
    free(ack.s);
    free(unk.s);
    free(all.s);
    ac_test_http_close(&h);
    ledger_check();
    if (ac_test_server_log_has_sanitizer_report(&srv)) {
        ac_test_server_dump_log(&srv, 20000);
        fail_msg("sanitizer report in the log of the restarted server");
    }
    for (int i = 0; i < THREADS; i++)
        free(clients[i].reqs);
}

static int setup(void **state)
{
    (void)state;
    snprintf(db_url, sizeof db_url, "%s", ac_test_fresh_db("e2e_crash"));
    return ac_test_server_start(&srv, "crash", db_url, TOKEN, NULL, 30000);
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
        cmocka_unit_test(crash_and_restart),
    };
    return ac_test_e2e_finish(cmocka_run_group_tests(tests, setup, teardown));
}
