#include "keys/nonce.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/prctl.h>

#include <openssl/rand.h>

#include "protocol/buf.h"
#include "protocol/sha256.h"

#define NIL UINT32_MAX
/* Largest capacity: entries are indexed by uint32_t, and 2^26 entries are ~3 GiB already. */
#define CAPACITY_MAX ((size_t)1 << 26)
/* Longest window: one year keeps created + window far from overflow. */
#define WINDOW_MAX ((int64_t)366 * 24 * 3600)

struct entry {
    uint8_t h[32]; /* SHA-256(salt || keyid || 0x00 || nonce) */
    int64_t exp;   /* expires_at, unix seconds (the entry is dead when exp <= now) */
    uint32_t next; /* chain in a bucket, or the free list */
};

struct ac_nonce_cache {
    pthread_mutex_t mu;
    int64_t window;
    size_t cap, count;
    int64_t min_exp;   /* no entry expires before this (a lower bound; INT64_MAX when empty) */
    int64_t pass_min;  /* while a sliced sweep runs: the least expiry put since it began */
    pthread_mutex_t pass_mu; /* one sliced sweep at a time */
    atomic_int waiters;      /* callers waiting for mu (the sliced sweep lets them in) */
    uint32_t nbuckets; /* a power of two */
    uint32_t *buckets;
    struct entry *e;
    uint32_t free_head;
    uint8_t salt[16]; /* per cache, so nobody can aim nonces at one bucket */
    uint64_t epoch;   /* the current load's (ac_nonce_cache_load); 0: none, or one in progress */
    uint64_t loads;   /* loads begun: the source of epochs */
};

struct ac_nonce_cache *ac_nonce_cache_new(size_t capacity, int64_t window)
{
    if (capacity < 1 || capacity > CAPACITY_MAX || window < 1 || window > WINDOW_MAX) return NULL;
    struct ac_nonce_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    uint32_t nb = 16;
    while (nb < capacity)
        nb <<= 1;
    c->buckets = malloc(nb * sizeof c->buckets[0]);
    c->e = calloc(capacity, sizeof c->e[0]);
    int mu = c->buckets != NULL && c->e != NULL && RAND_bytes(c->salt, sizeof c->salt) == 1 &&
             pthread_mutex_init(&c->mu, NULL) == 0;
    if (!mu || pthread_mutex_init(&c->pass_mu, NULL) != 0) {
        if (mu) pthread_mutex_destroy(&c->mu);
        free(c->buckets);
        free(c->e);
        free(c);
        return NULL;
    }
    c->nbuckets = nb;
    for (uint32_t i = 0; i < nb; i++)
        c->buckets[i] = NIL;
    for (size_t i = 0; i < capacity; i++)
        c->e[i].next = i + 1 < capacity ? (uint32_t)(i + 1) : NIL;
    c->free_head = 0;
    c->cap = capacity;
    c->window = window;
    c->min_exp = INT64_MAX;
    c->pass_min = INT64_MAX;
    return c;
}

void ac_nonce_cache_free(struct ac_nonce_cache *c)
{
    if (c == NULL) return;
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->pass_mu);
    free(c->buckets);
    free(c->e);
    free(c);
}

size_t ac_nonce_cache_size(struct ac_nonce_cache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- memory (called with mu held) ---------------------------------------------------------------
 */

static uint32_t bucket_of(const struct ac_nonce_cache *c, const uint8_t h[32])
{
    uint32_t v;
    memcpy(&v, h, sizeof v);
    return v & (c->nbuckets - 1);
}

/* Unlink the entry *link points to and put it on the free list. */
static void drop(struct ac_nonce_cache *c, uint32_t *link)
{
    uint32_t i = *link;
    *link = c->e[i].next;
    c->e[i].next = c->free_head;
    c->free_head = i;
    c->count--;
}

/* Evict every entry of buckets [b0, b1) with exp <= now; returns the least expiry left there. */
static int64_t sweep_range(struct ac_nonce_cache *c, uint32_t b0, uint32_t b1, int64_t now)
{
    int64_t min = INT64_MAX;
    for (uint32_t b = b0; b < b1; b++) {
        uint32_t *link = &c->buckets[b];
        while (*link != NIL) {
            if (c->e[*link].exp <= now) {
                drop(c, link);
            } else {
                if (c->e[*link].exp < min) min = c->e[*link].exp;
                link = &c->e[*link].next;
            }
        }
    }
    return min;
}

/* Evict every entry with exp <= now and recompute min_exp (the caller holds the lock). */
static void sweep(struct ac_nonce_cache *c, int64_t now)
{
    c->min_exp = sweep_range(c, 0, c->nbuckets, now);
}

/* Buckets swept under one hold of the lock by the periodic sweep. A whole sweep of the default
 * 2^20 buckets holding about half a million live entries took 30-50 ms, during which every signed
 * request waited for the lock; a slice is a 1024th of that (tests/bench/bench_nonce.c). */
#define SWEEP_SLICE 1024u
#define HANDOFF_NS 100000L

/* Take the cache's lock as a caller the sliced sweep lets in between its slices. */
static void lock_counted(struct ac_nonce_cache *c)
{
    atomic_fetch_add(&c->waiters, 1);
    pthread_mutex_lock(&c->mu);
    atomic_fetch_sub(&c->waiters, 1);
}

/* The periodic sweep: the same eviction a slice at a time, the lock released in between. The
 * least expiry it saw, or that was put meanwhile (pass_min), bounds what is left from below. */
static void sweep_sliced(struct ac_nonce_cache *c, int64_t now)
{
    pthread_mutex_lock(&c->pass_mu);
    pthread_mutex_lock(&c->mu);
    c->pass_min = INT64_MAX;
    uint32_t nb = c->nbuckets;
    pthread_mutex_unlock(&c->mu);
    int64_t min = INT64_MAX;
    for (uint32_t b = 0; b < nb; b += SWEEP_SLICE) {
        pthread_mutex_lock(&c->mu);
        int64_t m = sweep_range(c, b, nb - b > SWEEP_SLICE ? b + SWEEP_SLICE : nb, now);
        if (m < min) min = m;
        if (b + SWEEP_SLICE >= nb) { /* the last slice: publish under the same hold */
            if (c->pass_min < min) min = c->pass_min;
            c->min_exp = min;
            c->pass_min = INT64_MAX;
        }
        pthread_mutex_unlock(&c->mu);
        /* A pthread mutex is not fair: taking it again at once would keep out the callers woken
         * to take it (measured: they waited for the whole sweep). Let them in first, for at most
         * HANDOFF_NS a slice. */
        if (b + SWEEP_SLICE < nb && atomic_load(&c->waiters) > 0) {
            struct timespec t0, t;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            do {
                sched_yield();
                clock_gettime(CLOCK_MONOTONIC, &t);
            } while (atomic_load(&c->waiters) > 0 &&
                     (t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < HANDOFF_NS);
        }
    }
    pthread_mutex_unlock(&c->pass_mu);
}

/* 1 when h is present and unexpired; an expired match is evicted on the way. */
static int mem_seen(struct ac_nonce_cache *c, const uint8_t h[32], int64_t now)
{
    uint32_t *link = &c->buckets[bucket_of(c, h)];
    while (*link != NIL) {
        struct entry *x = &c->e[*link];
        if (memcmp(x->h, h, 32) == 0) {
            if (x->exp > now) return 1;
            drop(c, link);
            return 0;
        }
        link = &x->next;
    }
    return 0;
}

/* 1 when there is room for one more entry (evicting expired entries if that helps). */
static int mem_room(struct ac_nonce_cache *c, int64_t now)
{
    if (c->count < c->cap) return 1;
    if (now >= c->min_exp) sweep(c, now);
    return c->count < c->cap;
}

/* Record h until exp (extending an existing entry). Returns 0, or -1 when there is no room. */
static int mem_put(struct ac_nonce_cache *c, const uint8_t h[32], int64_t exp, int64_t now)
{
    uint32_t b = bucket_of(c, h);
    for (uint32_t i = c->buckets[b]; i != NIL; i = c->e[i].next)
        if (memcmp(c->e[i].h, h, 32) == 0) {
            if (exp > c->e[i].exp) c->e[i].exp = exp;
            return 0;
        }
    if (!mem_room(c, now)) return -1;
    uint32_t i = c->free_head;
    c->free_head = c->e[i].next;
    memcpy(c->e[i].h, h, 32);
    c->e[i].exp = exp;
    c->e[i].next = c->buckets[b];
    c->buckets[b] = i;
    c->count++;
    if (exp < c->min_exp) c->min_exp = exp;
    if (exp < c->pass_min) c->pass_min = exp;
    return 0;
}

/* ---- database ----------------------------------------------------------------------------------
 */

static const struct {
    const char *name, *sql;
    int nparams;
} stmts[] = {
    /* Exactly one concurrent caller gets a row back: the inserter, or the one updater of a row
     * whose expiry has passed (the conflicting row is locked and the WHERE re-checked). */
    {"ac_nonce_ins",
     "insert into ac_nonces (keyid, nonce, expires_at) values ($1, $2, $3::int8) "
     "on conflict (keyid, nonce) do update set expires_at = excluded.expires_at "
     "where ac_nonces.expires_at <= $4::int8 returning 1",
     4},
    /* At most $2 expired rows, in a transaction of their own: a purge of a minute's nonces
     * (hundreds of thousands at a few thousand requests a second) would otherwise be one long
     * statement writing as much WAL as the payments beside it. SKIP LOCKED: it never waits for a
     * row a batch holds (a signer reusing a nonce whose row expired, taken over by nonce_put
     * in the sequencer's transaction), so the two cannot deadlock; the row goes next time. */
    {"ac_nonce_purge",
     "delete from ac_nonces where ctid = any(array(select ctid from ac_nonces "
     "where expires_at <= $1::int8 limit $2::int4 for update skip locked))",
     2},
    /* The same for many nonces at once (the batch writer): the arrays are parallel, without
     * duplicate (keyid, nonce) pairs (a row may be affected only once per statement); the rows
     * returned are those this statement inserted or took over. $4 is the earliest `now` of the
     * batch, so a row is taken over only when it had expired for every caller in it. */
    {"ac_nonce_ins_batch",
     "insert into ac_nonces (keyid, nonce, expires_at) "
     "select k, n, e from unnest($1::text[], $2::text[], $3::int8[]) as t(k, n, e) "
     "on conflict (keyid, nonce) do update set expires_at = excluded.expires_at "
     "where ac_nonces.expires_at <= $4::int8 returning keyid, nonce",
     4},
};

int ac_nonce_prepare(PGconn *db)
{
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *r = PQprepare(db, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        /* 42P05 duplicate_prepared_statement: prepared already */
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK || (st && strcmp(st, "42P05") == 0);
        PQclear(r);
        if (!ok) return -1;
    }
    return 0;
}

/* Run a statement of this module, preparing it first on a connection that lacks it (SQLSTATE
 * 26000 invalid_sql_statement_name). Returns the result when it succeeded, else NULL. */
static PGresult *exec_stmt(PGconn *db, const char *name, int n, const char *const *vals)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *r = PQexecPrepared(db, name, n, vals, NULL, NULL, 0);
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) return r;
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        int missing = st && strcmp(st, "26000") == 0;
        PQclear(r);
        if (!missing || attempt > 0 || ac_nonce_prepare(db) != 0) return NULL;
    }
    return NULL;
}

/* ---- the check ----------------------------------------------------------------------------------
 */

static int field_ok(const char *s)
{
    if (s == NULL) return 0;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= AC_NONCE_FIELD_MAX) return 0;
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e) return 0;
    }
    return n > 0;
}

static void digest(const struct ac_nonce_cache *c, const char *keyid, const char *nonce,
                   uint8_t h[32])
{
    const struct ac_sha256_part parts[] = {
        {c->salt, sizeof c->salt},
        {keyid, strlen(keyid) + 1}, /* with its NUL separator */
        {nonce, strlen(nonce)},
    };
    ac_sha256v(parts, 3, h);
}

/* The checks before the database: bounds, window, memory. Returns the answer with *ask_db 0, or
 * sets *ask_db (the database decides; h and *exp are set). With db_less, a nonce that memory
 * does not know is recorded there and NEW. */
static enum ac_nonce_result precheck(struct ac_nonce_cache *c, const char *keyid, const char *nonce,
                                     int64_t created, int64_t now, int db_less, uint8_t h[32],
                                     int64_t *exp, int *ask_db, uint64_t *epoch)
{
    *ask_db = 0;
    if (c == NULL || !field_ok(keyid) || !field_ok(nonce)) return AC_NONCE_INVALID;
    /* |now - created| <= window, computed without overflow */
    uint64_t w = (uint64_t)c->window;
    if ((created < now && (uint64_t)now - (uint64_t)created > w) ||
        (created > now && (uint64_t)created - (uint64_t)now > w) || created > INT64_MAX - c->window)
        return AC_NONCE_STALE;
    *exp = created + c->window;
    digest(c, keyid, nonce, h);

    lock_counted(c);
    enum ac_nonce_result res = AC_NONCE_NEW;
    if (mem_seen(c, h, now)) {
        res = AC_NONCE_REPLAYED;
    } else if (!mem_room(c, now)) {
        res = AC_NONCE_FULL;
    } else if (db_less) {
        res = mem_put(c, h, *exp, now) == 0 ? AC_NONCE_NEW : AC_NONCE_FULL;
        /* read under the same lock as the check: every row of this load was in memory then */
        if (epoch) *epoch = c->epoch;
    } else {
        *ask_db = 1; /* the database decides, asked without holding the lock */
    }
    pthread_mutex_unlock(&c->mu);
    return res;
}

enum ac_nonce_result ac_nonce_reserve(struct ac_nonce_cache *c, const char *keyid,
                                      const char *nonce, int64_t created, int64_t now, int64_t *exp,
                                      uint64_t *epoch)
{
    uint8_t h[32];
    int ask_db;
    *exp = 0;
    if (epoch) *epoch = 0;
    /* db_less: memory decides, and a nonce it does not know is put there */
    return precheck(c, keyid, nonce, created, now, 1, h, exp, &ask_db, epoch);
}

void ac_nonce_cache_end_epoch(struct ac_nonce_cache *c, uint64_t epoch)
{
    pthread_mutex_lock(&c->mu);
    if (epoch != 0 && c->epoch == epoch) c->epoch = 0;
    pthread_mutex_unlock(&c->mu);
}

uint64_t ac_nonce_cache_epoch(struct ac_nonce_cache *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t e = c->epoch;
    pthread_mutex_unlock(&c->mu);
    return e;
}

/* Rows are read this many at a time (a cursor), each batch put in memory under one lock. */
#define LOAD_FETCH 4096
#define STR_(x) #x
#define STR(x) STR_(x)

long ac_nonce_cache_load(struct ac_nonce_cache *c, PGconn *db, int64_t now, uint64_t *epoch)
{
    *epoch = 0;
    long loaded = 0;
    pthread_mutex_lock(&c->mu);
    c->epoch = 0; /* from now until the load is complete, no reservation is the load's */
    uint64_t mine = ++c->loads;
    pthread_mutex_unlock(&c->mu);
    if (db == NULL || PQtransactionStatus(db) != PQTRANS_IDLE) return -1;
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)now);
    const char *vals[] = {n};
    uint8_t(*hs)[32] = malloc(LOAD_FETCH * sizeof *hs);
    char *valid = malloc(LOAD_FETCH);
    if (hs == NULL || valid == NULL) {
        free(hs);
        free(valid);
        return -1;
    }
    PGresult *r = PQexec(db, "begin isolation level repeatable read, read only");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK, too_many = 0;
    PQclear(r);
    if (ok) {
        /* Room first, in the same snapshot as the rows: loading more than half the capacity
         * would leave too little for the requests to come (FULL answers 503), and a load that
         * ran out of room halfway would leave memory full of them */
        r = PQexecParams(db, "select count(*) from ac_nonces where expires_at > $1::int8", 1, NULL,
                         vals, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        if (ok && strtoull(PQgetvalue(r, 0, 0), NULL, 10) > c->cap / 2) too_many = 1;
        ok = ok && !too_many;
        PQclear(r);
    }
    if (ok) {
        r = PQexecParams(
            db,
            "declare ac_nonce_load no scroll cursor for "
            "select keyid, nonce, expires_at from ac_nonces where expires_at > $1::int8",
            1, NULL, vals, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    while (ok) {
        r = PQexec(db, "fetch " STR(LOAD_FETCH) " from ac_nonce_load");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            ok = 0;
            PQclear(r);
            break;
        }
        int rows = PQntuples(r);
        /* digests first, outside the lock. A row out of bounds (not written by this code) is
         * skipped: no request carrying it could pass the checks, so nothing needs to know it */
        for (int i = 0; i < rows; i++) {
            const char *k = PQgetvalue(r, i, 0), *v = PQgetvalue(r, i, 1);
            valid[i] = field_ok(k) && field_ok(v);
            if (valid[i]) digest(c, k, v, hs[i]);
        }
        /* no room (FULL): memory cannot hold every live nonce, so it cannot be the authority */
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < rows && ok; i++) {
            ok = !valid[i] ||
                 mem_put(c, hs[i], (int64_t)strtoll(PQgetvalue(r, i, 2), NULL, 10), now) == 0;
            loaded += valid[i] && ok;
        }
        pthread_mutex_unlock(&c->mu);
        PQclear(r);
        if (rows < LOAD_FETCH) break;
    }
    free(hs);
    free(valid);
    r = PQexec(db, ok ? "commit" : "rollback");
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (too_many) return AC_NONCE_LOAD_TOO_MANY;
    if (!ok) return -1;
    pthread_mutex_lock(&c->mu);
    /* a later load began meanwhile (another sequencer on this cache): that one decides */
    if (c->loads == mine) c->epoch = *epoch = mine;
    pthread_mutex_unlock(&c->mu);
    return *epoch ? loaded : -1;
}

/* Remember a nonce the database has decided on, either way. No room any more (other threads
 * filled it meanwhile) only costs a later round trip: the database already holds the nonce, so
 * nothing is forgotten. */
static void remember(struct ac_nonce_cache *c, const uint8_t h[32], int64_t exp, int64_t now)
{
    lock_counted(c);
    (void)mem_put(c, h, exp, now);
    pthread_mutex_unlock(&c->mu);
}

enum ac_nonce_result ac_nonce_seen_or_insert(struct ac_nonce_cache *c, PGconn *db,
                                             const char *keyid, const char *nonce, int64_t created,
                                             int64_t now)
{
    uint8_t h[32];
    int64_t exp = 0;
    int ask_db;
    enum ac_nonce_result res =
        precheck(c, keyid, nonce, created, now, db == NULL, h, &exp, &ask_db, NULL);
    if (!ask_db) return res;

    int got = ac_nonce_record(db, keyid, nonce, exp, now);
    if (got < 0) return AC_NONCE_DB_ERROR;
    remember(c, h, exp, now);
    return got ? AC_NONCE_NEW : AC_NONCE_REPLAYED;
}

int ac_nonce_record(PGconn *db, const char *keyid, const char *nonce, int64_t exp, int64_t now)
{
    if (db == NULL || !field_ok(keyid) || !field_ok(nonce)) return -1;
    char e[24], n[24];
    snprintf(e, sizeof e, "%lld", (long long)exp);
    snprintf(n, sizeof n, "%lld", (long long)now);
    const char *vals[] = {keyid, nonce, e, n};
    PGresult *r = exec_stmt(db, "ac_nonce_ins", 4, vals);
    if (r == NULL) return -1;
    int got = PQntuples(r) == 1;
    PQclear(r);
    return got;
}

/* Delete at most `limit` rows with expires_at <= cutoff (one statement, its own transaction).
 * Returns the number deleted, or -1 on a database error. */
static long purge_rows(PGconn *db, int64_t cutoff, long limit)
{
    char n[24], l[24];
    snprintf(n, sizeof n, "%lld", (long long)cutoff);
    snprintf(l, sizeof l, "%ld", limit);
    const char *vals[] = {n, l};
    PGresult *r = exec_stmt(db, "ac_nonce_purge", 2, vals);
    if (r == NULL) return -1;
    long deleted = atol(PQcmdTuples(r));
    PQclear(r);
    return deleted;
}

long ac_nonce_purge(struct ac_nonce_cache *c, PGconn *db, int64_t now)
{
    if (c != NULL) sweep_sliced(c, now);
    if (db == NULL) return 0;
    long total = 0, d;
    do {
        d = purge_rows(db, now - AC_NONCE_PURGE_GRACE, AC_NONCE_PURGE_CHUNK);
        if (d < 0) return -1;
        total += d;
    } while (d == AC_NONCE_PURGE_CHUNK);
    return total;
}

/* ==== the batch writer =========================================================================
 */

struct ac_nonce_writer {
    struct ac_nonce_cache *c;
    ac_nonce_db_get_fn get;
    ac_nonce_db_put_fn put;
    void *cls;
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct ac_nonce_ticket *head, *tail; /* queued, oldest first */
    int stop;                            /* closing: take nothing new, drain, end the thread */
    int joined;
    pthread_t th;
    uint64_t batches, nonces; /* under mu */
    uint64_t purged;          /* rows the purges deleted, under mu */
    int purge_asked;          /* ac_nonce_writer_purge_soon(), under mu */
    struct ac_buf arr[3];     /* the batch's array parameters, reused (the thread's own) */
};

void ac_nonce_array_row(struct ac_buf *keyids, struct ac_buf *nonces, struct ac_buf *exps,
                        const char *keyid, const char *nonce, int64_t exp)
{
    ac_buf_array_str(keyids, keyid);
    ac_buf_array_str(nonces, nonce);
    if (exps->len > 1) ac_buf_add(exps, ",", 1);
    ac_buf_add_i64(exps, exp); /* on the sequencer thread for every nonce: no printf */
}

void ac_nonce_match_taken(const PGresult *r, const char *const *keyids, const char *const *nonces,
                          size_t n, int *taken)
{
    size_t from = 0; /* rows usually come back in the order sent: look after the last match */
    for (int row = 0; row < PQntuples(r); row++) {
        const char *k = PQgetvalue(r, row, 0), *v = PQgetvalue(r, row, 1);
        for (size_t m = 0; m < n; m++) {
            size_t i = (from + m) % n;
            if (taken[i] == 0 && strcmp(nonces[i], v) == 0 && strcmp(keyids[i], k) == 0) {
                taken[i] = 1;
                from = i + 1;
                break;
            }
        }
    }
}

static int ticket_cmp(const void *a, const void *b)
{
    const struct ac_nonce_ticket *x = *(const struct ac_nonce_ticket *const *)a;
    const struct ac_nonce_ticket *y = *(const struct ac_nonce_ticket *const *)b;
    int c = strcmp(x->keyid, y->keyid);
    return c ? c : strcmp(x->nonce, y->nonce);
}

/* Decide the batch t[0..n) on db: sets every res (AC_NONCE_DB_ERROR for all on a database error
 * or out of memory). Returns the number of nonces sent, or -1. */
static long decide(struct ac_nonce_writer *w, PGconn *db, struct ac_nonce_ticket **t, size_t n)
{
    /* rows locked in one order by every inserter (see ac_nonce_take's caller too): two
     * statements taking overlapping nonces wait for each other instead of deadlocking */
    qsort(t, n, sizeof *t, ticket_cmp);
    int64_t now = INT64_MAX;
    long sent = 0;
    for (int k = 0; k < 3; k++) {
        ac_buf_reset(&w->arr[k]);
        ac_buf_add(&w->arr[k], "{", 1);
    }
    const char *keyids[AC_NONCE_BATCH_MAX], *nonces[AC_NONCE_BATCH_MAX];
    int taken[AC_NONCE_BATCH_MAX];
    struct ac_nonce_ticket *sent_t[AC_NONCE_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        /* sorted: the same keyid and nonce twice are neighbours */
        t[i]->dup_of = i > 0 && ticket_cmp(&t[i - 1], &t[i]) == 0 ? t[i - 1] : NULL;
        if (t[i]->dup_of != NULL) continue;
        keyids[sent] = t[i]->keyid;
        nonces[sent] = t[i]->nonce;
        taken[sent] = 0;
        sent_t[sent] = t[i];
        ac_nonce_array_row(&w->arr[0], &w->arr[1], &w->arr[2], t[i]->keyid, t[i]->nonce,
                           t[i]->exp);
        if (t[i]->now < now) now = t[i]->now;
        t[i]->res = AC_NONCE_REPLAYED; /* unless the database returns its row */
        sent++;
    }
    int bad = 0;
    for (int k = 0; k < 3; k++) {
        ac_buf_add(&w->arr[k], "}", 1);
        bad |= w->arr[k].oom;
    }
    char nb[24];
    snprintf(nb, sizeof nb, "%lld", (long long)now);
    const char *vals[] = {ac_buf_str(&w->arr[0]), ac_buf_str(&w->arr[1]), ac_buf_str(&w->arr[2]),
                          nb};
    PGresult *r = bad ? NULL : exec_stmt(db, "ac_nonce_ins_batch", 4, vals);
    if (r == NULL) {
        for (size_t i = 0; i < n; i++)
            t[i]->res = AC_NONCE_DB_ERROR;
        return -1;
    }
    ac_nonce_match_taken(r, keyids, nonces, (size_t)sent, taken);
    PQclear(r);
    for (long j = 0; j < sent; j++)
        if (taken[j]) sent_t[j]->res = AC_NONCE_NEW;
    for (size_t i = 0; i < n; i++)
        if (t[i]->dup_of != NULL) t[i]->res = AC_NONCE_REPLAYED;
    return sent;
}

static void free_ticket(void *cls)
{
    free(cls);
}

static void *writer_main(void *arg)
{
    prctl(PR_SET_NAME, "ac-nonces", 0, 0, 0); /* for top -H, perf --sort comm: best effort */
    struct ac_nonce_writer *w = arg;
    struct ac_nonce_ticket *batch[AC_NONCE_BATCH_MAX];
    int64_t next_purge = (int64_t)time(NULL) + AC_NONCE_PURGE_EVERY;
    /* A purge under way deletes one chunk of rows a turn, so nonces queued meanwhile wait for a
     * chunk at most, not for the whole purge. */
    int purging = 0;
    int64_t cutoff = 0;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stop && !purging && !w->purge_asked) {
            struct timespec until = {.tv_sec = (time_t)next_purge, .tv_nsec = 0};
            if (pthread_cond_timedwait(&w->work, &w->mu, &until) != 0) break; /* purge is due */
        }
        if (w->head == NULL && w->stop) break;
        size_t n = 0;
        while (w->head != NULL && n < AC_NONCE_BATCH_MAX) {
            batch[n++] = w->head;
            w->head = w->head->next;
        }
        if (w->head == NULL) w->tail = NULL;
        int asked = w->purge_asked;
        w->purge_asked = 0;
        pthread_mutex_unlock(&w->mu);

        int64_t now = (int64_t)time(NULL);
        int purge = purging || asked || now >= next_purge;
        PGconn *db = n > 0 ? w->get(w->cls) : NULL;
        long sent = -1;
        if (n > 0) {
            if (db != NULL)
                sent = decide(w, db, batch, n);
            else
                for (size_t i = 0; i < n; i++)
                    batch[i]->res = AC_NONCE_DB_ERROR;
        }
        int broken = n > 0 && sent < 0;
        if (sent < 0) {
            size_t lost = 0;
            for (size_t i = 0; i < n; i++)
                if (batch[i]->done_fn == free_ticket) lost++;
            if (lost)
                fprintf(stderr,
                        "nonce writer: %zu nonce(s) of refused requests not recorded (database "
                        "error); memory refuses them until this process ends\n",
                        lost);
        }
        if (db != NULL) w->put(w->cls, db, broken || PQstatus(db) != CONNECTION_OK);

        /* Wake the callers. An asynchronous caller may reuse its ticket as soon as its done()
         * ran, so its callback is taken out first and called without touching the ticket. */
        ac_nonce_done_fn fns[AC_NONCE_BATCH_MAX];
        void *clss[AC_NONCE_BATCH_MAX];
        size_t nf = 0;
        pthread_mutex_lock(&w->mu);
        if (sent >= 0) {
            w->batches++;
            w->nonces += (uint64_t)sent;
        }
        for (size_t i = 0; i < n; i++) {
            if (batch[i]->done_fn != NULL) {
                fns[nf] = batch[i]->done_fn;
                clss[nf++] = batch[i]->done_cls;
                batch[i]->done = 1;
            } else {
                batch[i]->done = 1;
                pthread_cond_signal(batch[i]->cv);
            }
        }
        pthread_mutex_unlock(&w->mu);
        for (size_t i = 0; i < nf; i++)
            fns[i](clss[i]);

        /* The purge's step comes after the callers are woken, on a connection of its own: they
         * wait for their batch only, and a nonce queued meanwhile for the chunk in progress at
         * most. Not after a failed batch: next time round. */
        db = purge && !broken ? w->get(w->cls) : NULL;
        if (db != NULL) {
            if (!purging) { /* a purge begins: memory now, the table a chunk a turn */
                sweep_sliced(w->c, now);
                cutoff = now - AC_NONCE_PURGE_GRACE;
                purging = 1;
            }
            long d = purge_rows(db, cutoff, AC_NONCE_PURGE_CHUNK);
            broken = d < 0;
            if (d > 0) {
                pthread_mutex_lock(&w->mu);
                w->purged += (uint64_t)d;
                pthread_mutex_unlock(&w->mu);
            }
            if (d != AC_NONCE_PURGE_CHUNK) { /* done, or failed: next time round */
                purging = 0;
                next_purge = now + AC_NONCE_PURGE_EVERY;
            }
            w->put(w->cls, db, broken || PQstatus(db) != CONNECTION_OK);
        } else if (purge) {
            purging = 0;
            next_purge = now + AC_NONCE_PURGE_EVERY; /* try again later */
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct ac_nonce_writer *ac_nonce_writer_new(struct ac_nonce_cache *c, ac_nonce_db_get_fn get,
                                            ac_nonce_db_put_fn put, void *cls)
{
    if (c == NULL || get == NULL || put == NULL) return NULL;
    struct ac_nonce_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return NULL;
    w->c = c;
    w->get = get;
    w->put = put;
    w->cls = cls;
    int ok = pthread_mutex_init(&w->mu, NULL) == 0;
    /* the purge deadline is wall-clock time (time(NULL)): CLOCK_REALTIME, the default */
    if (ok && pthread_cond_init(&w->work, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        ok = 0;
    }
    if (ok && pthread_create(&w->th, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->mu);
        ok = 0;
    }
    if (!ok) {
        free(w);
        return NULL;
    }
    return w;
}

void ac_nonce_writer_close(struct ac_nonce_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->work);
    int join = !w->joined;
    w->joined = 1;
    pthread_mutex_unlock(&w->mu);
    if (join) pthread_join(w->th, NULL);
}

void ac_nonce_writer_free(struct ac_nonce_writer *w)
{
    if (w == NULL) return;
    ac_nonce_writer_close(w);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    for (int k = 0; k < 3; k++)
        ac_buf_free(&w->arr[k]);
    free(w);
}

/* Queue t (its keyid, nonce, h, exp and now set). Returns 0, or -1 when the writer is closing.
 * Called with w->mu held. */
static int enqueue(struct ac_nonce_writer *w, struct ac_nonce_ticket *t)
{
    if (w->stop) return -1;
    t->done = 0;
    t->next = NULL;
    if (w->tail)
        w->tail->next = t;
    else
        w->head = t;
    w->tail = t;
    pthread_cond_signal(&w->work);
    return 0;
}

/* precheck() for a ticket: copies keyid and nonce in. */
static enum ac_nonce_result ticket_precheck(struct ac_nonce_writer *w, struct ac_nonce_ticket *t,
                                            const char *keyid, const char *nonce, int64_t created,
                                            int64_t now, int *ask_db)
{
    enum ac_nonce_result res =
        precheck(w->c, keyid, nonce, created, now, 0, t->h, &t->exp, ask_db, NULL);
    if (*ask_db) { /* field_ok() bounded both */
        memcpy(t->keyid, keyid, strlen(keyid) + 1);
        memcpy(t->nonce, nonce, strlen(nonce) + 1);
        t->now = now;
    }
    return res;
}

enum ac_nonce_result ac_nonce_writer_check(struct ac_nonce_writer *w, const char *keyid,
                                           const char *nonce, int64_t created, int64_t now)
{
    struct ac_nonce_ticket t;
    int ask_db;
    enum ac_nonce_result res = ticket_precheck(w, &t, keyid, nonce, created, now, &ask_db);
    if (!ask_db) return res;
    pthread_cond_t cv;
    if (pthread_cond_init(&cv, NULL) != 0) return AC_NONCE_FULL; /* no resources: overloaded */
    t.cv = &cv;
    t.done_fn = NULL;
    pthread_mutex_lock(&w->mu);
    if (enqueue(w, &t) != 0) {
        t.res = AC_NONCE_DB_ERROR;
    } else {
        while (!t.done)
            pthread_cond_wait(&cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&cv);
    if (t.res == AC_NONCE_NEW || t.res == AC_NONCE_REPLAYED) remember(w->c, t.h, t.exp, now);
    return t.res;
}

enum ac_nonce_result ac_nonce_writer_start(struct ac_nonce_writer *w, struct ac_nonce_ticket *t,
                                           const char *keyid, const char *nonce, int64_t created,
                                           int64_t now, ac_nonce_done_fn done, void *cls)
{
    int ask_db;
    enum ac_nonce_result res = ticket_precheck(w, t, keyid, nonce, created, now, &ask_db);
    if (!ask_db) return res;
    t->done_fn = done;
    t->done_cls = cls;
    t->cv = NULL;
    pthread_mutex_lock(&w->mu);
    int rc = enqueue(w, t);
    pthread_mutex_unlock(&w->mu);
    return rc == 0 ? AC_NONCE_PENDING : AC_NONCE_DB_ERROR;
}

enum ac_nonce_result ac_nonce_writer_finish(struct ac_nonce_writer *w, struct ac_nonce_ticket *t)
{
    pthread_mutex_lock(&w->mu);
    int done = t->done;
    pthread_mutex_unlock(&w->mu);
    if (!done) return AC_NONCE_DB_ERROR; /* a caller error: not answered yet */
    if (t->res == AC_NONCE_NEW || t->res == AC_NONCE_REPLAYED) remember(w->c, t->h, t->exp, t->now);
    return t->res;
}

int ac_nonce_writer_record(struct ac_nonce_writer *w, const char *keyid, const char *nonce,
                           int64_t exp, int64_t now)
{
    if (w == NULL || !field_ok(keyid) || !field_ok(nonce)) return -1;
    struct ac_nonce_ticket *t = calloc(1, sizeof *t);
    if (t == NULL) return -1;
    memcpy(t->keyid, keyid, strlen(keyid) + 1);
    memcpy(t->nonce, nonce, strlen(nonce) + 1);
    t->exp = exp;
    t->now = now;
    t->done_fn = free_ticket; /* the writer answers nobody: the ticket frees itself */
    t->done_cls = t;
    pthread_mutex_lock(&w->mu);
    int rc = enqueue(w, t);
    pthread_mutex_unlock(&w->mu);
    if (rc != 0) free(t);
    return rc;
}

void ac_nonce_writer_purge_soon(struct ac_nonce_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->purge_asked = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
}

uint64_t ac_nonce_writer_purged(struct ac_nonce_writer *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->purged;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void ac_nonce_writer_stats(struct ac_nonce_writer *w, uint64_t *batches, uint64_t *nonces,
                           size_t *queued)
{
    pthread_mutex_lock(&w->mu);
    *batches = w->batches;
    *nonces = w->nonces;
    size_t n = 0;
    for (const struct ac_nonce_ticket *t = w->head; t != NULL; t = t->next)
        n++;
    *queued = n;
    pthread_mutex_unlock(&w->mu);
}
