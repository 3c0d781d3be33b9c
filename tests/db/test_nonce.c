/* The nonce replay cache against a real PostgreSQL: new then replayed; two caches on one database
 * (two servers) never both accept a nonce, including 8 threads racing on one nonce; a restart
 * (fresh cache) still remembers; expiry and purge; the window; bounds; memory full -> refused.
 * The batch writer: the same answers as the direct path (also for nonces that need quoting in an
 * array literal), two writers on one database racing threads on one nonce accept it once, many
 * distinct nonces from many threads are all accepted and stored, the same nonce twice in one
 * batch is decided once, and a database that is down answers DB_ERROR and records nothing. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keys/nonce.h"
#include "tests/support/sql.h"

static const char *url;

static long long rows(PGconn *c)
{
    PGresult *r = PQexec(c, "select count(*) from ac_nonces");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

static void wipe(PGconn *c)
{
    PGresult *r = PQexec(c, "truncate ac_nonces");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
}

#define NOW 1700000000

/* n rows of keyid 'k', nonces <prefix>1 .. <prefix>n, expiring at exp. */
static void add_rows(const char *prefix, long n, int64_t exp)
{
    char q[256];
    snprintf(q, sizeof q,
             "insert into ac_nonces select 'k', '%s' || g, %lld from generate_series(1, %ld) g",
             prefix, (long long)exp, n);
    ac_test_sql(url, q);
}

static void new_then_replayed(void **s)
{
    (void)s;
    PGconn *db = ac_test_connect(url);
    wipe(db);
    /* lazily prepared on first use; explicit prepare is idempotent */
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 300);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "key-a", "n1", NOW, NOW), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_prepare(db), 0);
    assert_int_equal(ac_nonce_prepare(db), 0);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "key-a", "n1", NOW, NOW + 1),
                     AC_NONCE_REPLAYED);
    /* per key: the same nonce under another key is new */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "key-b", "n1", NOW, NOW), AC_NONCE_NEW);
    /* no ambiguity between ("ab","c") and ("a","bc") */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "ab", "c", NOW, NOW), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "a", "bc", NOW, NOW), AC_NONCE_NEW);
    assert_int_equal(rows(db), 4);
    assert_int_equal(ac_nonce_cache_size(c), 4);
    /* a restart: a new cache (empty memory) on the same database still says replayed */
    ac_nonce_cache_free(c);
    c = ac_nonce_cache_new(64, 300);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "key-a", "n1", NOW, NOW + 2),
                     AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_cache_size(c), 1); /* and now remembered in memory */
    ac_nonce_cache_free(c);
    PQfinish(db);
}

static void bounds_and_window(void **s)
{
    (void)s;
    PGconn *db = ac_test_connect(url);
    wipe(db);
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 300);
    char big[AC_NONCE_FIELD_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(ac_nonce_seen_or_insert(c, db, big, "n", NOW, NOW), AC_NONCE_INVALID);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", big, NOW, NOW), AC_NONCE_INVALID);
    big[AC_NONCE_FIELD_MAX] = '\0'; /* exactly 128 bytes is fine */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, big, big, NOW, NOW), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "", "n", NOW, NOW), AC_NONCE_INVALID);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "", NOW, NOW), AC_NONCE_INVALID);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, NULL, "n", NOW, NOW), AC_NONCE_INVALID);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "n\n", NOW, NOW), AC_NONCE_INVALID);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "\xc3\xa9", NOW, NOW), AC_NONCE_INVALID);
    /* the window: created within +-300 s of now */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "old", NOW - 301, NOW), AC_NONCE_STALE);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "fut", NOW + 301, NOW), AC_NONCE_STALE);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "x", INT64_MIN, INT64_MAX),
                     AC_NONCE_STALE);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "x", INT64_MAX, INT64_MIN),
                     AC_NONCE_STALE);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "edge1", NOW - 300, NOW), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "edge2", NOW + 300, NOW), AC_NONCE_NEW);
    assert_int_equal(rows(db), 3);
    assert_null(ac_nonce_cache_new(0, 300));
    assert_null(ac_nonce_cache_new(10, 0));
    ac_nonce_cache_free(c);
    ac_nonce_cache_free(NULL);
    PQfinish(db);
}

static void two_servers(void **s)
{
    (void)s;
    PGconn *db1 = ac_test_connect(url), *db2 = ac_test_connect(url);
    wipe(db1);
    struct ac_nonce_cache *c1 = ac_nonce_cache_new(1024, 300), *c2 = ac_nonce_cache_new(1024, 300);
    int accepted = 0;
    for (int i = 0; i < 200; i++) {
        char n[32];
        snprintf(n, sizeof n, "n-%d", i);
        /* alternate who goes first; whoever is second must see a replay */
        struct ac_nonce_cache *first = i % 2 ? c1 : c2, *second = i % 2 ? c2 : c1;
        PGconn *fdb = i % 2 ? db1 : db2, *sdb = i % 2 ? db2 : db1;
        enum ac_nonce_result a = ac_nonce_seen_or_insert(first, fdb, "agent", n, NOW, NOW);
        enum ac_nonce_result b = ac_nonce_seen_or_insert(second, sdb, "agent", n, NOW, NOW);
        assert_int_equal(a, AC_NONCE_NEW);
        assert_int_equal(b, AC_NONCE_REPLAYED);
        accepted += (a == AC_NONCE_NEW) + (b == AC_NONCE_NEW);
    }
    assert_int_equal(accepted, 200);
    ac_nonce_cache_free(c1);
    ac_nonce_cache_free(c2);
    PQfinish(db1);
    PQfinish(db2);
}

#define THREADS 8
#define ROUNDS 25

struct racer {
    struct ac_nonce_cache *cache;
    PGconn *db;
    int round;
    enum ac_nonce_result res;
};

static pthread_barrier_t barrier;

static void *race(void *arg)
{
    struct racer *r = arg;
    char n[32];
    snprintf(n, sizeof n, "race-%d", r->round);
    pthread_barrier_wait(&barrier);
    r->res = ac_nonce_seen_or_insert(r->cache, r->db, "agent", n, NOW, NOW);
    return NULL;
}

static void racing_threads(void **s)
{
    (void)s;
    PGconn *dbs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        dbs[i] = ac_test_connect(url);
        assert_int_equal(ac_nonce_prepare(dbs[i]), 0);
    }
    wipe(dbs[0]);
    /* two "servers", four threads each, all on the same nonce at once */
    struct ac_nonce_cache *caches[2] = {ac_nonce_cache_new(1024, 300),
                                        ac_nonce_cache_new(1024, 300)};
    for (int round = 0; round < ROUNDS; round++) {
        struct racer rs[THREADS];
        pthread_t th[THREADS];
        assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
        for (int i = 0; i < THREADS; i++) {
            rs[i] = (struct racer){.cache = caches[i % 2], .db = dbs[i], .round = round};
            assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
        }
        int fresh = 0, replayed = 0;
        for (int i = 0; i < THREADS; i++) {
            pthread_join(th[i], NULL);
            fresh += rs[i].res == AC_NONCE_NEW;
            replayed += rs[i].res == AC_NONCE_REPLAYED;
        }
        pthread_barrier_destroy(&barrier);
        assert_int_equal(fresh, 1);
        assert_int_equal(replayed, THREADS - 1);
    }
    assert_int_equal(rows(dbs[0]), ROUNDS);
    ac_nonce_cache_free(caches[0]);
    ac_nonce_cache_free(caches[1]);
    for (int i = 0; i < THREADS; i++)
        PQfinish(dbs[i]);
}

static void expiry_and_purge(void **s)
{
    (void)s;
    PGconn *db = ac_test_connect(url);
    wipe(db);
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 60);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "a", NOW, NOW), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "b", NOW + 30, NOW + 30), AC_NONCE_NEW);
    /* "a" expires at NOW+60: replayed until then (a request created at NOW is still
     * acceptable at NOW+59), usable again afterwards with a fresh created time */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "a", NOW + 59, NOW + 59),
                     AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "a", NOW, NOW + 61), AC_NONCE_STALE);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "a", NOW + 61, NOW + 61), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "a", NOW + 61, NOW + 62),
                     AC_NONCE_REPLAYED);
    /* the same through the database alone: another cache, expired row taken over once */
    struct ac_nonce_cache *c2 = ac_nonce_cache_new(64, 60);
    assert_int_equal(ac_nonce_seen_or_insert(c2, db, "k", "b", NOW + 89, NOW + 89),
                     AC_NONCE_REPLAYED);
    struct ac_nonce_cache *c3 = ac_nonce_cache_new(64, 60);
    assert_int_equal(ac_nonce_seen_or_insert(c3, db, "k", "b", NOW + 91, NOW + 91), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "b", NOW + 91, NOW + 91),
                     AC_NONCE_REPLAYED);
    /* purge: rows expired AC_NONCE_PURGE_GRACE (60 s) before now go -- at NOW+200, "a"
     * (expired at NOW+121) but not yet "b" (NOW+151); memory is swept of both */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "late", NOW + 200, NOW + 200),
                     AC_NONCE_NEW);
    assert_int_equal(rows(db), 3);
    assert_int_equal(ac_nonce_purge(c, db, NOW + 200), 1);
    assert_int_equal(rows(db), 2);
    assert_int_equal(ac_nonce_cache_size(c), 1);
    assert_int_equal(ac_nonce_purge(c, db, NOW + 151 + AC_NONCE_PURGE_GRACE), 1);
    assert_int_equal(rows(db), 1);
    assert_int_equal(ac_nonce_purge(c, db, NOW + 1000), 1);
    assert_int_equal(ac_nonce_purge(c, NULL, NOW + 1000), 0);
    assert_int_equal(ac_nonce_cache_size(c), 0);
    /* purge on a fresh connection prepares lazily */
    PGconn *db2 = ac_test_connect(url);
    assert_int_equal(ac_nonce_purge(NULL, db2, NOW), 0);
    PQfinish(db2);
    ac_nonce_cache_free(c);
    ac_nonce_cache_free(c2);
    ac_nonce_cache_free(c3);
    PQfinish(db);
}

static void memory_bound(void **s)
{
    (void)s;
    PGconn *db = ac_test_connect(url);
    wipe(db);
    struct ac_nonce_cache *c = ac_nonce_cache_new(4, 60);
    char n[16];
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "n%d", i);
        assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", n, NOW + i, NOW + i), AC_NONCE_NEW);
    }
    /* full of unexpired entries: refuse, record nothing, forget nothing */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "extra", NOW + 4, NOW + 4), AC_NONCE_FULL);
    assert_int_equal(rows(db), 4);
    assert_int_equal(ac_nonce_cache_size(c), 4);
    /* seen ones are still answered from memory while full */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "n2", NOW + 4, NOW + 4),
                     AC_NONCE_REPLAYED);
    /* once n0 expires (NOW+60) there is room again, and only that entry is evicted */
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "extra", NOW + 60, NOW + 60),
                     AC_NONCE_NEW);
    assert_int_equal(ac_nonce_cache_size(c), 4);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "n3", NOW + 60, NOW + 60),
                     AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "more", NOW + 60, NOW + 60),
                     AC_NONCE_FULL);
    ac_nonce_cache_free(c);

    /* memory-only mode (db NULL) obeys the same bound and decides by itself */
    c = ac_nonce_cache_new(2, 60);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "a", NOW, NOW), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "a", NOW, NOW), AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "b", NOW, NOW), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "c", NOW, NOW), AC_NONCE_FULL);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "c", NOW + 60, NOW + 60), AC_NONCE_NEW);
    ac_nonce_cache_free(c);
    PQfinish(db);
}

/* The purge takes the table a chunk at a time and never waits for a locked row; memory is swept
 * a slice of buckets at a time, and what it leaves as the least expiry still lets a full cache
 * make room once entries expire. */
static void purge_in_chunks(void **s)
{
    (void)s;
    PGconn *db = ac_test_connect(url);
    wipe(db);
    long expired = 2L * AC_NONCE_PURGE_CHUNK + 7;
    add_rows("n", expired, NOW - 1000);
    add_rows("live", 2, NOW + 1000);
    /* another transaction holds an expired row (as nonce_put taking it over would) */
    PGconn *locker = ac_test_connect(url);
    PGresult *r = PQexec(locker, "begin; select 1 from ac_nonces where nonce = 'n1' for update");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    /* waiting for that lock would fail the purge here rather than hang the test */
    r = PQexec(db, "set lock_timeout = '3s'");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    assert_int_equal(ac_nonce_purge(NULL, db, NOW), expired - 1);
    assert_int_equal(rows(db), 3);
    r = PQexec(locker, "commit");
    PQclear(r);
    assert_int_equal(ac_nonce_purge(NULL, db, NOW), 1);
    assert_int_equal(rows(db), 2);
    PQfinish(locker);

    /* memory: 20,000 entries make 32,768 buckets, 32 slices */
    struct ac_nonce_cache *c = ac_nonce_cache_new(20000, 60);
    char n[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(n, sizeof n, "m%d", i);
        /* odd: expire at NOW+10; even: at NOW+61 .. NOW+69, but m0 alone at NOW+60 (in one
         * slice of 32: the least expiry left must be the least of all slices) */
        int64_t created = i % 2 ? NOW - 50 : i == 0 ? NOW : NOW + 1 + (i / 2) % 9;
        assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", n, created, NOW), AC_NONCE_NEW);
    }
    assert_int_equal(ac_nonce_purge(c, NULL, NOW + 30), 0);
    assert_int_equal(ac_nonce_cache_size(c), 5000);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "m0", NOW + 30, NOW + 30),
                     AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "m1", NOW + 30, NOW + 30), AC_NONCE_NEW);
    for (int i = 0; i < 14999; i++) {
        snprintf(n, sizeof n, "f%d", i);
        assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", n, NOW + 30, NOW + 30),
                         AC_NONCE_NEW);
    }
    /* full, nothing expired yet */
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "x", NOW + 59, NOW + 59), AC_NONCE_FULL);
    /* at NOW+60 the sweep's least expiry is due: m0 goes and there is room */
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "x", NOW + 60, NOW + 60), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_cache_size(c), 20000);
    assert_int_equal(ac_nonce_seen_or_insert(c, NULL, "k", "m0", NOW + 60, NOW + 60),
                     AC_NONCE_FULL);
    ac_nonce_cache_free(c);
    PQfinish(db);
}

static void db_down(void **s)
{
    (void)s;
    /* a broken connection: an error, and nothing recorded in memory */
    PGconn *db = ac_test_connect(url);
    struct ac_nonce_cache *c = ac_nonce_cache_new(8, 60);
    PGresult *r = PQexec(db, "select pg_terminate_backend(pg_backend_pid())");
    PQclear(r);
    assert_int_equal(ac_nonce_seen_or_insert(c, db, "k", "z", NOW, NOW), AC_NONCE_DB_ERROR);
    assert_int_equal(ac_nonce_cache_size(c), 0);
    assert_int_equal(ac_nonce_purge(c, db, NOW), -1);
    ac_nonce_cache_free(c);
    PQfinish(db);
}

/* Loading the live rows makes memory the authority: live rows are known afterwards, expired
 * ones are not; a reservation carries the epoch of the load complete at that moment (0 before any,
 * and a new one after each load, 0 again once its leadership ended); rows out of bounds are
 * skipped; more live rows than half the memory fail the load, loading nothing, with no epoch. */
static void load_and_epochs(void **s)
{
    (void)s;
    PGconn *db = ac_test_connect(url);
    wipe(db);
    char q[256];
    snprintf(q, sizeof q,
             "insert into ac_nonces values ('k', 'live', %d), ('k', 'dead', %d), "
             "('k', 'caf\xc3\xa9', %d), ('k2', 'quo\"te', %d)",
             NOW + 30, NOW, NOW + 30, NOW + 30);
    PGresult *r = PQexec(db, q);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 60);
    int64_t exp;
    uint64_t e0 = 99, e1, e2, ep;
    assert_int_equal(ac_nonce_cache_epoch(c), 0);
    assert_int_equal(ac_nonce_reserve(c, "k", "before", NOW, NOW, &exp, &e0), AC_NONCE_NEW);
    assert_int_equal(e0, 0);
    assert_int_equal(exp, NOW + 60);
    /* 2 live rows in bounds (the non-ASCII one cannot be carried by any request: skipped) */
    assert_int_equal(ac_nonce_cache_load(c, db, NOW, &e1), 2);
    assert_true(e1 != 0);
    assert_int_equal(ac_nonce_cache_epoch(c), e1);
    assert_int_equal(PQtransactionStatus(db), PQTRANS_IDLE);
    assert_int_equal(ac_nonce_reserve(c, "k", "live", NOW, NOW, &exp, &ep), AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_reserve(c, "k2", "quo\"te", NOW, NOW, &exp, &ep), AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_reserve(c, "k", "dead", NOW, NOW, &exp, &ep), AC_NONCE_NEW);
    assert_int_equal(ep, e1);
    /* what memory reserved before the load is still known (memory forgets nothing live) */
    assert_int_equal(ac_nonce_reserve(c, "k", "before", NOW, NOW, &exp, &ep), AC_NONCE_REPLAYED);
    /* a second load: a new epoch */
    assert_int_equal(ac_nonce_cache_load(c, db, NOW, &e2), 2);
    assert_true(e2 != 0 && e2 != e1);
    assert_int_equal(ac_nonce_reserve(c, "k", "after", NOW, NOW, &exp, &ep), AC_NONCE_NEW);
    assert_int_equal(ep, e2);
    ac_nonce_cache_free(c);

    /* more live rows than half the memory: nothing loaded (the room is the requests'), no
     * authority; exactly half: loaded */
    c = ac_nonce_cache_new(3, 60);
    assert_int_equal(ac_nonce_cache_load(c, db, NOW, &e1), AC_NONCE_LOAD_TOO_MANY);
    assert_int_equal(e1, 0);
    assert_int_equal(ac_nonce_cache_epoch(c), 0);
    assert_int_equal(ac_nonce_cache_size(c), 0);
    assert_int_equal(PQtransactionStatus(db), PQTRANS_IDLE);
    ac_nonce_cache_free(c);
    c = ac_nonce_cache_new(6, 60); /* 3 live rows (one of them skipped): exactly half */
    assert_int_equal(ac_nonce_cache_load(c, db, NOW, &e1), 2);
    /* the end of that leadership: no reservation is final any more */
    ac_nonce_cache_end_epoch(c, e1 + 1); /* not the current one: no effect */
    assert_int_equal(ac_nonce_cache_epoch(c), e1);
    ac_nonce_cache_end_epoch(c, e1);
    assert_int_equal(ac_nonce_cache_epoch(c), 0);
    assert_int_equal(ac_nonce_reserve(c, "k", "late", NOW, NOW, &exp, &ep), AC_NONCE_NEW);
    assert_int_equal(ep, 0);
    ac_nonce_cache_free(c);
    /* a connection inside a transaction is refused, and one that broke fails */
    c = ac_nonce_cache_new(64, 60);
    r = PQexec(db, "begin");
    PQclear(r);
    assert_int_equal(ac_nonce_cache_load(c, db, NOW, &e1), -1);
    r = PQexec(db, "rollback");
    PQclear(r);
    r = PQexec(db, "select pg_terminate_backend(pg_backend_pid())");
    PQclear(r);
    assert_int_equal(ac_nonce_cache_load(c, db, NOW, &e1), -1);
    assert_int_equal(e1, 0);
    ac_nonce_cache_free(c);
    PQfinish(db);
}

/* ==== the batch writer ======================================================================== */

/* A connection source for a writer: one connection, a switch that makes the database "down", and
 * a gate that holds the first get() until opened. */
struct src {
    PGconn *db;
    int down;
    int gated, in_gate;
    int broken_puts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void src_init(struct src *s)
{
    memset(s, 0, sizeof *s);
    s->db = ac_test_connect(url);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void src_free(struct src *s)
{
    PQfinish(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

static PGconn *src_get(void *cls)
{
    struct src *s = cls;
    pthread_mutex_lock(&s->mu);
    s->in_gate = s->gated;
    pthread_cond_broadcast(&s->cv);
    while (s->gated)
        pthread_cond_wait(&s->cv, &s->mu);
    s->in_gate = 0;
    PGconn *db = s->down ? NULL : s->db;
    pthread_mutex_unlock(&s->mu);
    return db;
}

static void src_put(void *cls, PGconn *db, int broken)
{
    struct src *s = cls;
    if (broken) {
        s->broken_puts++;
        PQreset(db);
    }
}

static int64_t tnow(void)
{
    return (int64_t)time(NULL);
}

static void writer_answers(void **st)
{
    (void)st;
    struct src s;
    src_init(&s);
    wipe(s.db);
    int64_t t = tnow();
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 300);
    struct ac_nonce_writer *w = ac_nonce_writer_new(c, src_get, src_put, &s);
    assert_non_null(w);
    assert_int_equal(ac_nonce_writer_check(w, "key-a", "n1", t, t), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_writer_check(w, "key-a", "n1", t, t + 1), AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_writer_check(w, "key-b", "n1", t, t), AC_NONCE_NEW);
    /* characters an array literal must quote, stored verbatim */
    const char *odd = "a\"b\\c,{d} e'NULL";
    assert_int_equal(ac_nonce_writer_check(w, "key-a", odd, t, t), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_writer_check(w, "key-a", "NULL", t, t), AC_NONCE_NEW);
    PGresult *r =
        PQexecParams(s.db, "select count(*) from ac_nonces where keyid = 'key-a' and nonce = $1", 1,
                     NULL, (const char *const[]){odd}, NULL, NULL, 0);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    assert_int_equal(rows(s.db), 4);
    /* the checks before the database */
    assert_int_equal(ac_nonce_writer_check(w, "", "n", t, t), AC_NONCE_INVALID);
    assert_int_equal(ac_nonce_writer_check(w, "k", "n\x01", t, t), AC_NONCE_INVALID);
    assert_int_equal(ac_nonce_writer_check(w, "k", "n", t - 301, t), AC_NONCE_STALE);
    uint64_t batches, nonces;
    size_t queued;
    ac_nonce_writer_stats(w, &batches, &nonces, &queued);
    assert_int_equal(nonces, 4); /* the replay was answered from memory */
    assert_int_equal(batches, 4);
    assert_int_equal(queued, 0);
    ac_nonce_writer_free(w);
    ac_nonce_cache_free(c);
    /* a restarted server (fresh memory) learns it from the database */
    c = ac_nonce_cache_new(64, 300);
    w = ac_nonce_writer_new(c, src_get, src_put, &s);
    assert_int_equal(ac_nonce_writer_check(w, "key-a", odd, t, t + 2), AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_writer_check(w, "key-a", "n1", t, t + 2), AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_writer_check(w, "key-a", "n2", t, t + 2), AC_NONCE_NEW);
    ac_nonce_writer_free(w);
    ac_nonce_cache_free(c);
    ac_nonce_writer_free(NULL);
    src_free(&s);
}

#define WTHREADS 8
#define WPER 150

struct wracer {
    struct ac_nonce_writer *w;
    const char *nonce; /* NULL: WPER distinct nonces of this thread */
    int id;
    int fresh, replayed, other;
};

static void *wrace(void *arg)
{
    struct wracer *r = arg;
    int64_t t = tnow();
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < (r->nonce ? 1 : WPER); i++) {
        char n[64];
        snprintf(n, sizeof n, "t%d-%d", r->id, i);
        enum ac_nonce_result res =
            ac_nonce_writer_check(r->w, "agent", r->nonce ? r->nonce : n, t, t);
        r->fresh += res == AC_NONCE_NEW;
        r->replayed += res == AC_NONCE_REPLAYED;
        r->other += res != AC_NONCE_NEW && res != AC_NONCE_REPLAYED;
    }
    return NULL;
}

static void writer_races(void **st)
{
    (void)st;
    struct src s[2];
    src_init(&s[0]);
    src_init(&s[1]);
    wipe(s[0].db);
    /* two servers (caches and writers) on one database */
    struct ac_nonce_cache *c[2] = {ac_nonce_cache_new(4096, 300), ac_nonce_cache_new(4096, 300)};
    struct ac_nonce_writer *w[2] = {ac_nonce_writer_new(c[0], src_get, src_put, &s[0]),
                                    ac_nonce_writer_new(c[1], src_get, src_put, &s[1])};
    for (int round = 0; round < ROUNDS; round++) {
        char n[32];
        snprintf(n, sizeof n, "wrace-%d", round);
        struct wracer rs[WTHREADS];
        pthread_t th[WTHREADS];
        assert_int_equal(pthread_barrier_init(&barrier, NULL, WTHREADS), 0);
        for (int i = 0; i < WTHREADS; i++) {
            rs[i] = (struct wracer){.w = w[i % 2], .nonce = n, .id = i};
            assert_int_equal(pthread_create(&th[i], NULL, wrace, &rs[i]), 0);
        }
        int fresh = 0, replayed = 0;
        for (int i = 0; i < WTHREADS; i++) {
            pthread_join(th[i], NULL);
            fresh += rs[i].fresh;
            replayed += rs[i].replayed;
        }
        pthread_barrier_destroy(&barrier);
        assert_int_equal(fresh, 1);
        assert_int_equal(replayed, WTHREADS - 1);
    }
    assert_int_equal(rows(s[0].db), ROUNDS);
    /* many distinct nonces from many threads through one writer: all new, all stored */
    struct wracer rs[WTHREADS];
    pthread_t th[WTHREADS];
    assert_int_equal(pthread_barrier_init(&barrier, NULL, WTHREADS), 0);
    for (int i = 0; i < WTHREADS; i++) {
        rs[i] = (struct wracer){.w = w[0], .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, wrace, &rs[i]), 0);
    }
    for (int i = 0; i < WTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rs[i].fresh, WPER);
        assert_int_equal(rs[i].replayed + rs[i].other, 0);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(rows(s[0].db), ROUNDS + WTHREADS * WPER);
    uint64_t batches, nonces;
    size_t queued;
    ac_nonce_writer_stats(w[0], &batches, &nonces, &queued);
    fprintf(stderr, "writer: %llu nonces in %llu batches\n", (unsigned long long)nonces,
            (unsigned long long)batches);
    assert_true(batches <= nonces);
    for (int i = 0; i < 2; i++) {
        ac_nonce_writer_free(w[i]);
        ac_nonce_cache_free(c[i]);
        src_free(&s[i]);
    }
}

struct one {
    struct ac_nonce_writer *w;
    const char *nonce;
    int64_t t;
    enum ac_nonce_result res;
};

static void *one_check(void *arg)
{
    struct one *o = arg;
    o->res = ac_nonce_writer_check(o->w, "agent", o->nonce, o->t, o->t);
    return NULL;
}

/* Wait until the writer has `n` callers queued (bounded). */
static void wait_queued(struct ac_nonce_writer *w, size_t n)
{
    for (int i = 0; i < 30000; i++) {
        uint64_t b, k;
        size_t q;
        ac_nonce_writer_stats(w, &b, &k, &q);
        if (q == n) return;
        usleep(1000);
    }
    fail_msg("the writer never had %zu callers queued", n);
}

static void writer_dup_in_batch(void **st)
{
    (void)st;
    struct src s;
    src_init(&s);
    wipe(s.db);
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 300);
    struct ac_nonce_writer *w = ac_nonce_writer_new(c, src_get, src_put, &s);
    int64_t t = tnow();
    /* the first batch waits at the gate, so the next two callers queue up behind it */
    pthread_mutex_lock(&s.mu);
    s.gated = 1;
    pthread_mutex_unlock(&s.mu);
    struct one a = {w, "first", t, 0}, b = {w, "dup", t, 0}, d = {w, "dup", t, 0};
    pthread_t ta, tb, td;
    assert_int_equal(pthread_create(&ta, NULL, one_check, &a), 0);
    pthread_mutex_lock(&s.mu);
    while (!s.in_gate)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(pthread_create(&tb, NULL, one_check, &b), 0);
    assert_int_equal(pthread_create(&td, NULL, one_check, &d), 0);
    wait_queued(w, 2);
    pthread_mutex_lock(&s.mu);
    s.gated = 0;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_join(td, NULL);
    assert_int_equal(a.res, AC_NONCE_NEW);
    assert_int_equal((b.res == AC_NONCE_NEW) + (d.res == AC_NONCE_NEW), 1);
    assert_int_equal((b.res == AC_NONCE_REPLAYED) + (d.res == AC_NONCE_REPLAYED), 1);
    uint64_t batches, nonces;
    size_t queued;
    ac_nonce_writer_stats(w, &batches, &nonces, &queued);
    assert_int_equal(batches, 2);
    assert_int_equal(nonces, 2); /* "dup" was sent once */
    assert_int_equal(rows(s.db), 2);
    ac_nonce_writer_free(w);
    ac_nonce_cache_free(c);
    src_free(&s);
}

/* The writer's purge deletes a chunk a turn, after waking the turn's callers: a nonce queued
 * while it runs is answered after the chunk in progress, not after the whole purge, and the purge
 * then finishes by itself. */
struct purge_probe {
    struct ac_nonce_writer *w;
    atomic_int done;
    uint64_t purged_then;
};

static void purge_probe_done(void *cls)
{
    struct purge_probe *p = cls;
    p->purged_then = ac_nonce_writer_purged(p->w);
    atomic_store(&p->done, 1);
}

static void writer_purges_a_chunk_a_turn(void **st)
{
    (void)st;
    struct src s;
    src_init(&s);
    wipe(s.db);
    int64_t t = tnow();
    long expired = 2L * AC_NONCE_PURGE_CHUNK + 5;
    add_rows("n", expired, t - AC_NONCE_PURGE_GRACE - 10);
    add_rows("live", 1, t + 1000);
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 300);
    struct ac_nonce_writer *w = ac_nonce_writer_new(c, src_get, src_put, &s);
    assert_non_null(w);
    /* hold the writer at its connection as its purge begins */
    pthread_mutex_lock(&s.mu);
    s.gated = 1;
    pthread_mutex_unlock(&s.mu);
    ac_nonce_writer_purge_soon(w);
    pthread_mutex_lock(&s.mu);
    while (!s.in_gate)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    struct ac_nonce_ticket tk;
    struct purge_probe pr = {.w = w};
    assert_int_equal(ac_nonce_writer_start(w, &tk, "agent", "during", t, t, purge_probe_done, &pr),
                     AC_NONCE_PENDING);
    pthread_mutex_lock(&s.mu);
    s.gated = 0;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    for (int i = 0; i < 30000 && !atomic_load(&pr.done); i++)
        usleep(1000);
    assert_true(atomic_load(&pr.done));
    assert_int_equal(ac_nonce_writer_finish(w, &tk), AC_NONCE_NEW);
    /* answered after the chunk in progress when it was queued, before the next one */
    assert_int_equal(pr.purged_then, AC_NONCE_PURGE_CHUNK);
    for (int i = 0; i < 30000 && ac_nonce_writer_purged(w) < (uint64_t)expired; i++)
        usleep(1000);
    assert_int_equal(ac_nonce_writer_purged(w), expired);
    /* the writer gone, its connection is this thread's to use */
    ac_nonce_writer_free(w);
    assert_int_equal(rows(s.db), 2); /* 'live1' and 'during' */
    ac_nonce_cache_free(c);
    src_free(&s);
}

static void writer_db_down(void **st)
{
    (void)st;
    struct src s;
    src_init(&s);
    wipe(s.db);
    struct ac_nonce_cache *c = ac_nonce_cache_new(64, 300);
    struct ac_nonce_writer *w = ac_nonce_writer_new(c, src_get, src_put, &s);
    int64_t t = tnow();
    s.down = 1; /* no connection */
    assert_int_equal(ac_nonce_writer_check(w, "k", "x", t, t), AC_NONCE_DB_ERROR);
    assert_int_equal(ac_nonce_cache_size(c), 0);
    s.down = 0; /* a connection whose backend died */
    PGconn *killer = ac_test_connect(url);
    char q[96];
    snprintf(q, sizeof q, "select pg_terminate_backend(%d)", PQbackendPID(s.db));
    PQclear(PQexec(killer, q));
    PQfinish(killer);
    assert_int_equal(ac_nonce_writer_check(w, "k", "x", t, t), AC_NONCE_DB_ERROR);
    assert_int_equal(ac_nonce_cache_size(c), 0);
    assert_true(s.broken_puts >= 1);
    /* back: the nonce was not burnt */
    assert_int_equal(ac_nonce_writer_check(w, "k", "x", t, t), AC_NONCE_NEW);
    assert_int_equal(ac_nonce_writer_check(w, "k", "x", t, t), AC_NONCE_REPLAYED);
    ac_nonce_writer_free(w);
    ac_nonce_cache_free(c);
    src_free(&s);
}

int main(void)
{
    url = ac_test_fresh_db("db_nonce");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_then_replayed), cmocka_unit_test(bounds_and_window),
        cmocka_unit_test(two_servers),       cmocka_unit_test(racing_threads),
        cmocka_unit_test(expiry_and_purge),  cmocka_unit_test(memory_bound),
        cmocka_unit_test(db_down),           cmocka_unit_test(writer_answers),
        cmocka_unit_test(writer_races),      cmocka_unit_test(writer_dup_in_batch),
        cmocka_unit_test(writer_db_down),    cmocka_unit_test(load_and_epochs),
        cmocka_unit_test(purge_in_chunks),   cmocka_unit_test(writer_purges_a_chunk_a_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
