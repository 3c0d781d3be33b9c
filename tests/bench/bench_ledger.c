/* tests/bench/bench_ledger.c -- throughput and latency of the real sequencer, durable commits.
 *
 * usage: bench_ledger [-s seconds] [-w warmup_s] [-c clients] [-a accounts] [-b max_batch]
 *                     [-S spread,hot] [database-url]
 * The URL defaults to AGENTCLEAR_DATABASE_URL. The program migrates the database, creates the
 * asset BENCH, one funding account, one hot merchant and `accounts` payers (debits must not
 * exceed credits), funds every payer, then for each scenario runs `clients` threads. Each client
 * is an HTTP worker with one request in flight: it submits one command of one transfer
 * (ac_seq_submit with a done callback), waits for the callback, and repeats.
 *   spread: random payer -> another random payer
 *   hot:    random payer -> the one merchant (the micropayment case)
 * The sequencer runs as `agentclear serve` runs it: with the domain and its evidence log (signed
 * checkpoints, default cadence), so every transfer gets its ledger.transfer record in the same
 * transaction (docs/evidence.md); -E runs it without a domain (no evidence), for comparison.
 * After a warm-up, completions inside a fixed window are counted. Latency is submit -> done
 * callback -> client awake (what a suspended HTTP request would see), every sample kept and
 * sorted, so p50/p99 are exact. Sequencer figures (batch size, commit latency) are the change of
 * ac_seq_stats() over the same window; its commit histogram has coarse buckets, so those
 * quantiles are bucket upper bounds and the average is exact. CPU use over the window is given
 * for the whole bench process, for the sequencer thread alone, and for the PostgreSQL server's
 * processes (from /proc, when the server runs on this machine), in % of one core and in
 * microseconds per transfer: steadier than throughput on a machine shared with other work.
 *
 * Output, one figure a line, stable for scripts (ops/bench greps it):
 *   agentclear_<scenario>_tps 41234
 *   agentclear_<scenario>_p50_ms 1.93
 *   ...
 * Exit status: 0, or 1 when setup failed or any transfer did not succeed. */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "keys/keyring.h"
#include "keys/registry.h"
#include "ledger/db.h"
#include "ledger/domain.h"
#include "ledger/evlog.h"
#include "ledger/migrations.h"
#include "ledger/sequencer.h"
#include "protocol/sig.h"

#define ASSET "BENCH"
#define FUND_ID "bench-fund"
#define MERCHANT_ID "bench-merchant"
#define PAYER_FUNDS INT64_C(1000000000) /* base units each payer gets per run */
#define SETUP_CHUNK 1000                /* accounts / funding transfers per setup command */
#define ASSET_SCALE 2

enum scenario { SC_SPREAD, SC_HOT };
static const char *const scenario_names[] = {"spread", "hot"};

struct opts {
    const char *url;
    double seconds, warmup;
    int clients;
    int accounts;
    size_t max_batch;
    int run[2]; /* which scenarios */
    int evidence;
    int serial; /* -P */
};

static unsigned scales[SETUP_CHUNK]; /* ASSET_SCALE each: the scale of every transfer's asset */

/* ---- time ------------------------------------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until_ns(int64_t t)
{
    for (;;) {
        int64_t d = t - now_ns();
        if (d <= 0) return;
        struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (user + system) of a task from /proc/<path>/stat, or -1 when unreadable (another
 * machine's PostgreSQL, or no procfs). */
static double proc_cpu_seconds(const char *path)
{
    char fn[128], buf[1024];
    snprintf(fn, sizeof fn, "/proc/%s/stat", path);
    FILE *f = fopen(fn, "r");
    if (f == NULL) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL) return -1;
    unsigned long long ut = 0, stm = 0;
    /* fields after the name: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stm) != 2)
        return -1;
    return (double)(ut + stm) / (double)sysconf(_SC_CLK_TCK);
}

/* xorshift64*: per-thread, cheap, good enough to pick accounts */
static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

/* ---- shared run state ------------------------------------------------------------------------ */

static struct ac_sequencer *seq;
static unsigned run_id; /* makes transfer ids unique across runs on one database */
static int n_payers;
static enum scenario cur_scenario;
static _Atomic int stop_flag;
static _Atomic int64_t win_start, win_end; /* completions in [start, end) are counted */
static char seq_task[32]; /* "self/task/<tid>" of the sequencer thread, "" if unknown */
static PGconn *mon;       /* monitoring connection: PostgreSQL server processes' CPU */

static void payer_id(char *out, size_t cap, int i)
{
    snprintf(out, cap, "bench-p-%06d", i);
}

/* ---- one client = one HTTP worker with one request in flight --------------------------------- */

struct client {
    pthread_t th;
    unsigned idx;
    uint64_t rng, seq;
    struct ac_transfer_req req;
    struct ac_transfer_result res;
    struct ac_cmd cmd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    /* results inside the window */
    uint32_t *lat_us;
    size_t nlat, caplat;
    uint64_t failed, refused;
    enum ac_ec first_error;
};

/* Runs on the sequencer thread. Signals after unlocking, so the woken client does not block at
 * once on a mutex the sequencer still holds (a second futex wake per completion: measured 9.3 vs
 * 7.2 us of sequencer CPU per transfer, 25.4k vs 28.9k transfers/s on a quiet machine). The client
 * may then see `done` and exit before the signal is sent: run_scenario() passes a barrier through
 * the sequencer before it frees the clients. */
static void on_done(struct ac_cmd *c)
{
    struct client *cl = c->cls;
    pthread_mutex_lock(&cl->mu);
    cl->done = 1;
    pthread_mutex_unlock(&cl->mu);
    pthread_cond_signal(&cl->cv);
}

static void record(struct client *cl, uint32_t us)
{
    if (cl->nlat == cl->caplat) {
        size_t nc = cl->caplat ? cl->caplat * 2 : 4096;
        uint32_t *p = realloc(cl->lat_us, nc * sizeof *p);
        if (p == NULL) {
            fprintf(stderr, "bench: out of memory\n");
            exit(1);
        }
        cl->lat_us = p;
        cl->caplat = nc;
    }
    cl->lat_us[cl->nlat++] = us;
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct ac_transfer_req *r = &cl->req;
    while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        memset(r, 0, sizeof *r);
        cl->seq++;
        /* uuid-shaped (36 characters), as real clients send */
        snprintf(r->id, sizeof r->id, "%08x-%04x-%04x-%04x-%012llx", run_id, (unsigned)cur_scenario,
                 cl->idx & 0xffffu, (unsigned)((cl->seq >> 48) & 0xffffu),
                 (unsigned long long)(cl->seq & UINT64_C(0xffffffffffff)));
        int payer = (int)(rnd(&cl->rng) % (uint64_t)n_payers);
        payer_id(r->debit, sizeof r->debit, payer);
        if (cur_scenario == SC_HOT) {
            snprintf(r->credit, sizeof r->credit, "%s", MERCHANT_ID);
        } else {
            int other = (int)(rnd(&cl->rng) % (uint64_t)(n_payers - 1));
            if (other >= payer) other++;
            payer_id(r->credit, sizeof r->credit, other);
        }
        snprintf(r->asset, sizeof r->asset, "%s", ASSET);
        r->amount = 1;

        memset(&cl->cmd, 0, sizeof cl->cmd);
        cl->cmd.kind = AC_CMD_TRANSFERS;
        cl->cmd.n = 1;
        cl->cmd.transfers = r;
        cl->cmd.results = &cl->res;
        cl->cmd.scales = scales;
        cl->cmd.done = on_done;
        cl->cmd.cls = cl;
        cl->done = 0;

        int64_t t0 = now_ns();
        enum ac_ec ec = ac_seq_submit(seq, &cl->cmd);
        if (ec != AC_EC_OK) {
            int64_t t = now_ns();
            if (t >= atomic_load(&win_start) && t < atomic_load(&win_end)) cl->refused++;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        pthread_mutex_lock(&cl->mu);
        while (!cl->done)
            pthread_cond_wait(&cl->cv, &cl->mu);
        pthread_mutex_unlock(&cl->mu);
        int64_t t1 = now_ns();
        if (t1 < atomic_load(&win_start) || t1 >= atomic_load(&win_end)) continue;
        if (cl->cmd.status != AC_EC_OK || cl->res.ec != AC_EC_OK) {
            if (cl->failed++ == 0)
                cl->first_error = cl->cmd.status != AC_EC_OK ? cl->cmd.status : cl->res.ec;
            continue;
        }
        int64_t us = (t1 - t0) / 1000;
        record(cl, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
    }
    return NULL;
}

/* ---- sequencer statistics over the window ---------------------------------------------------- */

struct snap {
    double seq_cpu, pg_cpu; /* -1 when unknown */
    uint64_t batches, items, failed;
    uint64_t commit_count, commit_sum_micro;
    uint64_t commit[AC_HIST_MAX_BUCKETS + 1];
    uint64_t batch[AC_HIST_MAX_BUCKETS + 1];
};

/* CPU seconds of every process of the PostgreSQL cluster that pg_stat_activity lists (backends,
 * WAL writer, checkpointer, ...), when it runs on this machine; else -1. Processes that exit in
 * between are missed, which is fine: the sequencer's session lives through the run. */
static double pg_cpu_seconds(void)
{
    if (mon == NULL) return -1;
    PGresult *r = PQexec(mon, "select pid from pg_stat_activity");
    double sum = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(r); i++) {
            double v = proc_cpu_seconds(PQgetvalue(r, i, 0));
            if (v >= 0) sum = (sum < 0 ? 0 : sum) + v;
        }
    }
    PQclear(r);
    return sum;
}

static void take_snap(struct snap *s)
{
    s->seq_cpu = seq_task[0] ? proc_cpu_seconds(seq_task) : -1;
    s->pg_cpu = pg_cpu_seconds();
    struct ac_seq_stats *st = ac_seq_stats(seq);
    s->batches = atomic_load(&st->batches_committed);
    s->items = atomic_load(&st->items_committed);
    s->failed = atomic_load(&st->batches_failed);
    s->commit_count = atomic_load(&st->commit_seconds.count);
    s->commit_sum_micro = atomic_load(&st->commit_seconds.sum_micro);
    for (size_t i = 0; i <= AC_HIST_MAX_BUCKETS; i++) {
        s->commit[i] = atomic_load(&st->commit_seconds.counts[i]);
        s->batch[i] = atomic_load(&st->batch_items.counts[i]);
    }
}

/* quantile of the difference of two bucket snapshots: the upper bound of the bucket holding it
 * (twice the last bound for the +Inf bucket) */
static double delta_quantile(const struct ac_hist *h, const uint64_t *a, const uint64_t *b,
                             double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= h->nbounds; i++)
        total += b[i] - a[i];
    if (total == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)total), acc = 0;
    if (want == 0) want = 1;
    for (size_t i = 0; i <= h->nbounds; i++) {
        acc += b[i] - a[i];
        if (acc >= want) return i < h->nbounds ? h->bounds[i] : 2 * h->bounds[h->nbounds - 1];
    }
    return 2 * h->bounds[h->nbounds - 1];
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank quantile of sorted samples, in ms */
static double sample_q_ms(const uint32_t *v, size_t n, double q)
{
    if (n == 0) return 0;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k == 0) k = 1;
    if (k > n) k = n;
    return v[k - 1] / 1000.0;
}

/* ---- a scenario ------------------------------------------------------------------------------ */

static int run_scenario(const struct opts *o, enum scenario sc)
{
    const char *name = scenario_names[sc];
    struct client *cls = calloc((size_t)o->clients, sizeof *cls);
    if (cls == NULL) return -1;
    cur_scenario = sc;
    atomic_store(&stop_flag, 0);
    int64_t t_launch = now_ns();
    int64_t ws = t_launch + (int64_t)(o->warmup * 1e9);
    int64_t we = ws + (int64_t)(o->seconds * 1e9);
    atomic_store(&win_start, ws);
    atomic_store(&win_end, we);
    for (int i = 0; i < o->clients; i++) {
        struct client *cl = &cls[i];
        cl->idx = (unsigned)i;
        cl->rng = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(i + 1) ^ (uint64_t)t_launch;
        if (cl->rng == 0) cl->rng = 1;
        pthread_mutex_init(&cl->mu, NULL);
        pthread_cond_init(&cl->cv, NULL);
        if (pthread_create(&cl->th, NULL, client_main, cl) != 0) {
            fprintf(stderr, "bench: cannot start client %d\n", i);
            exit(1);
        }
    }
    struct snap a, b;
    sleep_until_ns(ws);
    take_snap(&a);
    double cpu0 = cpu_seconds();
    sleep_until_ns(we);
    take_snap(&b);
    double cpu1 = cpu_seconds();
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < o->clients; i++)
        pthread_join(cls[i].th, NULL);
    /* done callbacks run one after another on the sequencer thread: once this empty command has
     * completed, no on_done is still touching a client */
    struct ac_cmd barrier = {.kind = AC_CMD_TRANSFERS, .n = 0};
    ac_seq_run(seq, &barrier);

    size_t n = 0;
    uint64_t failed = 0, refused = 0;
    enum ac_ec first_error = AC_EC_OK;
    for (int i = 0; i < o->clients; i++) {
        n += cls[i].nlat;
        failed += cls[i].failed;
        refused += cls[i].refused;
        if (first_error == AC_EC_OK && cls[i].failed) first_error = cls[i].first_error;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof *all);
    if (all == NULL) return -1;
    size_t k = 0;
    uint64_t sum_us = 0;
    for (int i = 0; i < o->clients; i++) {
        memcpy(all + k, cls[i].lat_us, cls[i].nlat * sizeof *all);
        k += cls[i].nlat;
        for (size_t j = 0; j < cls[i].nlat; j++)
            sum_us += cls[i].lat_us[j];
        free(cls[i].lat_us);
        pthread_mutex_destroy(&cls[i].mu);
        pthread_cond_destroy(&cls[i].cv);
    }
    qsort(all, n, sizeof *all, cmp_u32);

    struct ac_seq_stats *st = ac_seq_stats(seq);
    double secs = (double)(we - ws) / 1e9;
    uint64_t batches = b.batches - a.batches, items = b.items - a.items;
    uint64_t ccount = b.commit_count - a.commit_count;
    printf("agentclear_%s_clients %d\n", name, o->clients);
    printf("agentclear_%s_seconds %.1f\n", name, secs);
    printf("agentclear_%s_transfers %zu\n", name, n);
    printf("agentclear_%s_tps %.0f\n", name, (double)n / secs);
    printf("agentclear_%s_p50_ms %.2f\n", name, sample_q_ms(all, n, 0.50));
    printf("agentclear_%s_p90_ms %.2f\n", name, sample_q_ms(all, n, 0.90));
    printf("agentclear_%s_p99_ms %.2f\n", name, sample_q_ms(all, n, 0.99));
    printf("agentclear_%s_max_ms %.2f\n", name, n ? all[n - 1] / 1000.0 : 0.0);
    printf("agentclear_%s_mean_ms %.2f\n", name, n ? (double)sum_us / (double)n / 1000.0 : 0.0);
    printf("agentclear_%s_batches %llu\n", name, (unsigned long long)batches);
    printf("agentclear_%s_avg_batch %.1f\n", name, batches ? (double)items / (double)batches : 0.0);
    printf("agentclear_%s_batch_p99 %.0f\n", name,
           delta_quantile(&st->batch_items, a.batch, b.batch, 0.99));
    printf("agentclear_%s_commit_avg_ms %.2f\n", name,
           ccount ? (double)(b.commit_sum_micro - a.commit_sum_micro) / (double)ccount / 1e3 : 0.0);
    printf("agentclear_%s_commit_p50_ms %.1f\n", name,
           1e3 * delta_quantile(&st->commit_seconds, a.commit, b.commit, 0.50));
    printf("agentclear_%s_commit_p99_ms %.1f\n", name,
           1e3 * delta_quantile(&st->commit_seconds, a.commit, b.commit, 0.99));
    printf("agentclear_%s_batches_failed %llu\n", name, (unsigned long long)(b.failed - a.failed));
    printf("agentclear_%s_errors %llu\n", name, (unsigned long long)failed);
    printf("agentclear_%s_refused %llu\n", name, (unsigned long long)refused);
    /* CPU use over the window, in % of one core (the machine has nproc * 100) */
    printf("agentclear_%s_bench_cpu_pct %.0f\n", name, 100.0 * (cpu1 - cpu0) / secs);
    /* and per transfer: steadier than throughput on a machine shared with other work */
    if (n)
        printf("agentclear_%s_bench_us_per_transfer %.1f\n", name, 1e6 * (cpu1 - cpu0) / (double)n);
    if (a.seq_cpu >= 0 && b.seq_cpu >= 0) {
        printf("agentclear_%s_seq_thread_cpu_pct %.0f\n", name,
               100.0 * (b.seq_cpu - a.seq_cpu) / secs);
        if (n)
            printf("agentclear_%s_seq_us_per_transfer %.1f\n", name,
                   1e6 * (b.seq_cpu - a.seq_cpu) / (double)n);
    }
    if (a.pg_cpu >= 0 && b.pg_cpu >= 0) {
        printf("agentclear_%s_pg_cpu_pct %.0f\n", name, 100.0 * (b.pg_cpu - a.pg_cpu) / secs);
        if (n) {
            printf("agentclear_%s_pg_us_per_transfer %.1f\n", name,
                   1e6 * (b.pg_cpu - a.pg_cpu) / (double)n);
            printf("agentclear_%s_cpu_us_per_transfer %.1f\n", name,
                   1e6 * ((cpu1 - cpu0) + (b.pg_cpu - a.pg_cpu)) / (double)n);
        }
    }
    fflush(stdout);
    if (failed)
        fprintf(stderr, "bench: %s: %llu transfers failed, first: %s\n", name,
                (unsigned long long)failed, ac_ec_code(first_error));
    free(all);
    free(cls);
    return failed ? -1 : 0;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup_accounts(int n)
{
    /* the funding account and the merchant have no limits; payers may not overdraw */
    int total = n + 2;
    struct ac_account *acc = calloc(SETUP_CHUNK, sizeof *acc);
    enum ac_ec *res = calloc(SETUP_CHUNK, sizeof *res);
    int *rep = calloc(SETUP_CHUNK, sizeof *rep);
    if (!acc || !res || !rep) return -1;
    int rc = 0;
    for (int base = 0; base < total && rc == 0; base += SETUP_CHUNK) {
        int m = total - base < SETUP_CHUNK ? total - base : SETUP_CHUNK;
        memset(acc, 0, SETUP_CHUNK * sizeof *acc);
        for (int i = 0; i < m; i++) {
            int g = base + i;
            struct ac_account *a = &acc[i];
            if (g == n) {
                snprintf(a->id, sizeof a->id, "%s", FUND_ID);
            } else if (g == n + 1) {
                snprintf(a->id, sizeof a->id, "%s", MERCHANT_ID);
            } else {
                payer_id(a->id, sizeof a->id, g);
                a->flags = AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS;
            }
            snprintf(a->asset, sizeof a->asset, "%s", ASSET);
        }
        struct ac_cmd c = {.kind = AC_CMD_ACCOUNTS,
                           .n = (size_t)m,
                           .accounts = acc,
                           .account_results = res,
                           .account_replayed = rep};
        enum ac_ec ec = ac_seq_run(seq, &c);
        if (ec != AC_EC_OK) {
            fprintf(stderr, "bench: creating accounts: %s\n", ac_ec_code(ec));
            rc = -1;
        }
        for (int i = 0; i < m && rc == 0; i++)
            if (res[i] != AC_EC_OK) {
                fprintf(stderr, "bench: account %s: %s\n", acc[i].id, ac_ec_code(res[i]));
                rc = -1;
            }
    }
    free(acc);
    free(res);
    free(rep);
    return rc;
}

static int setup_funding(int n)
{
    struct ac_transfer_req *t = calloc(SETUP_CHUNK, sizeof *t);
    struct ac_transfer_result *res = calloc(SETUP_CHUNK, sizeof *res);
    if (!t || !res) return -1;
    int rc = 0;
    for (int base = 0; base < n && rc == 0; base += SETUP_CHUNK) {
        int m = n - base < SETUP_CHUNK ? n - base : SETUP_CHUNK;
        memset(t, 0, SETUP_CHUNK * sizeof *t);
        for (int i = 0; i < m; i++) {
            snprintf(t[i].id, sizeof t[i].id, "fund-%08x-%06d", run_id, base + i);
            snprintf(t[i].debit, sizeof t[i].debit, "%s", FUND_ID);
            payer_id(t[i].credit, sizeof t[i].credit, base + i);
            snprintf(t[i].asset, sizeof t[i].asset, "%s", ASSET);
            t[i].amount = PAYER_FUNDS;
        }
        struct ac_cmd c = {.kind = AC_CMD_TRANSFERS,
                           .n = (size_t)m,
                           .transfers = t,
                           .results = res,
                           .scales = scales};
        enum ac_ec ec = ac_seq_run(seq, &c);
        if (ec != AC_EC_OK) {
            fprintf(stderr, "bench: funding: %s\n", ac_ec_code(ec));
            rc = -1;
        }
        for (int i = 0; i < m && rc == 0; i++)
            if (res[i].ec != AC_EC_OK) {
                fprintf(stderr, "bench: funding %s: %s\n", t[i].id, ac_ec_code(res[i].ec));
                rc = -1;
            }
    }
    free(t);
    free(res);
    return rc;
}

static int setup_db(const char *url)
{
    char err[512];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "bench: %s", err);
        return -1;
    }
    if (ac_migrate(c, err, sizeof err) < 0) {
        fprintf(stderr, "bench: migrate: %s", err);
        PQfinish(c);
        return -1;
    }
    PQfinish(c);
    c = ac_db_connect(url, AC_DB_READER, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "bench: %s", err);
        return -1;
    }
    int created = 0;
    enum ac_qs qs = ac_db_asset_create(c, ASSET, ASSET_SCALE, &created);
    PQfinish(c);
    if (qs != AC_QS_ONE_RESULT) {
        fprintf(stderr, "bench: cannot create asset %s\n", ASSET);
        return -1;
    }
    return 0;
}

/* Right after ac_seq_start() this process has two threads, main and the sequencer (libpq and
 * OpenSSL start none): remember the other one, to report how busy the single writer is. */
static void find_sequencer_task(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) return;
    long self = (long)getpid(), found = 0;
    int others = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long tid = strtol(e->d_name, NULL, 10);
        if (tid <= 0 || tid == self) continue;
        found = tid;
        others++;
    }
    closedir(d);
    if (others == 1) snprintf(seq_task, sizeof seq_task, "self/task/%ld", found);
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ledger [-s seconds] [-w warmup_s] [-c clients] [-a accounts] "
            "[-b max_batch] [-S spread,hot] [-E] [-P] [database-url]\n"
            "  -E  no evidence log (the sequencer without its domain)\n"
            "  -P  no pipelining: each batch waits for its commit (ac_seq_config.serial)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct opts o = {.seconds = 10,
                     .warmup = 2,
                     .clients = 128,
                     .accounts = 10000,
                     .max_batch = 0,
                     .run = {1, 1},
                     .evidence = 1};
    int ch;
    while ((ch = getopt(argc, argv, "s:w:c:a:b:S:EPh")) != -1) {
        switch (ch) {
        case 's':
            o.seconds = atof(optarg);
            break;
        case 'w':
            o.warmup = atof(optarg);
            break;
        case 'c':
            o.clients = atoi(optarg);
            break;
        case 'a':
            o.accounts = atoi(optarg);
            break;
        case 'b':
            o.max_batch = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'E':
            o.evidence = 0;
            break;
        case 'P':
            o.serial = 1;
            break;
        case 'S':
            o.run[SC_SPREAD] = strstr(optarg, "spread") != NULL;
            o.run[SC_HOT] = strstr(optarg, "hot") != NULL;
            break;
        default:
            usage();
        }
    }
    o.url = optind < argc ? argv[optind] : getenv("AGENTCLEAR_DATABASE_URL");
    if (o.url == NULL || *o.url == '\0' || o.seconds <= 0 || o.warmup < 0 || o.clients < 1 ||
        o.accounts < 2 || o.accounts > 999999)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < SETUP_CHUNK; i++)
        scales[i] = ASSET_SCALE;
    run_id = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    n_payers = o.accounts;

    if (setup_db(o.url) != 0) return 1;
    /* evidence as the server has it: identity registry + log with signed checkpoints */
    struct ac_keyring *keys = NULL;
    struct ac_registry *reg = NULL;
    struct ac_evlog *evlog = NULL;
    struct ac_domain dom;
    struct ac_seq_domain sd;
    char err[512];
    if (o.evidence) {
        EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
        int64_t now = (int64_t)time(NULL);
        keys = ac_keyring_new();
        if (k == NULL || keys == NULL ||
            ac_keyring_add(keys, k, now - 60, now + 86400, err, sizeof err) != 0) {
            fprintf(stderr, "bench: server key: %s\n", err);
            return 1;
        }
        EVP_PKEY_free(k);
        struct ac_evlog_config ec = {.origin = "bench.agentclear/0", .keys = keys};
        reg = ac_registry_new();
        evlog = ac_evlog_new(&ec);
        if (reg == NULL || evlog == NULL || ac_domain_register_statements() != 0) return 1;
        dom = (struct ac_domain){.registry = reg, .evlog = evlog};
        sd = ac_domain_seq(&dom);
    }
    printf("agentclear_evidence %s\n", o.evidence ? "on" : "off");
    struct ac_seq_config cfg = {.db_url = o.url,
                                .partition = 0,
                                .max_batch_items = o.max_batch,
                                .serial = o.serial,
                                .domain = o.evidence ? &sd : NULL};
    printf("agentclear_pipeline %s\n", o.serial ? "off" : "on");
    seq = ac_seq_start(&cfg);
    if (seq == NULL || !ac_seq_wait_leader(seq, 120000)) {
        fprintf(stderr, "bench: the sequencer did not become leader\n");
        return 1;
    }
    find_sequencer_task();
    mon = ac_db_connect(o.url, AC_DB_PLAIN, err, sizeof err);
    int64_t t0 = now_ns();
    if (setup_accounts(o.accounts) != 0 || setup_funding(o.accounts) != 0) {
        ac_seq_free(seq);
        return 1;
    }
    if (evlog)
        fprintf(stderr, "bench: evidence log: %llu records after setup\n",
                (unsigned long long)ac_evlog_size(evlog));
    fprintf(stderr,
            "bench: %d payers created and funded in %.1f s; %d clients, %.0f s per "
            "scenario after %.0f s warm-up\n",
            o.accounts, (double)(now_ns() - t0) / 1e9, o.clients, o.seconds, o.warmup);

    int rc = 0;
    for (int sc = SC_SPREAD; sc <= SC_HOT; sc++)
        if (o.run[sc] && run_scenario(&o, (enum scenario)sc) != 0) rc = 1;
    ac_seq_free(seq);
    ac_evlog_free(evlog);
    ac_registry_free(reg);
    ac_keyring_free(keys);
    PQfinish(mon);
    return rc;
}
