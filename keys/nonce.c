#include "keys/nonce.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

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
    uint32_t nbuckets; /* a power of two */
    uint32_t *buckets;
    struct entry *e;
    uint32_t free_head;
    uint8_t salt[16]; /* per cache, so nobody can aim nonces at one bucket */
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
    if (c->buckets == NULL || c->e == NULL || RAND_bytes(c->salt, sizeof c->salt) != 1 ||
        pthread_mutex_init(&c->mu, NULL) != 0) {
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
    return c;
}

void ac_nonce_cache_free(struct ac_nonce_cache *c)
{
    if (c == NULL) return;
    pthread_mutex_destroy(&c->mu);
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

/* Evict every entry with exp <= now and recompute min_exp. */
static void sweep(struct ac_nonce_cache *c, int64_t now)
{
    int64_t min = INT64_MAX;
    for (uint32_t b = 0; b < c->nbuckets; b++) {
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
    c->min_exp = min;
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
    {"ac_nonce_purge", "delete from ac_nonces where expires_at <= $1::int8", 1},
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

static int digest(const struct ac_nonce_cache *c, const char *keyid, const char *nonce,
                  uint8_t h[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, c->salt, sizeof c->salt) == 1 &&
             EVP_DigestUpdate(ctx, keyid, strlen(keyid) + 1) == 1 && /* with its NUL separator */
             EVP_DigestUpdate(ctx, nonce, strlen(nonce)) == 1 &&
             EVP_DigestFinal_ex(ctx, h, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

enum ac_nonce_result ac_nonce_seen_or_insert(struct ac_nonce_cache *c, PGconn *db,
                                             const char *keyid, const char *nonce, int64_t created,
                                             int64_t now)
{
    if (c == NULL || !field_ok(keyid) || !field_ok(nonce)) return AC_NONCE_INVALID;
    /* |now - created| <= window, computed without overflow */
    uint64_t w = (uint64_t)c->window;
    if ((created < now && (uint64_t)now - (uint64_t)created > w) ||
        (created > now && (uint64_t)created - (uint64_t)now > w) || created > INT64_MAX - c->window)
        return AC_NONCE_STALE;
    int64_t exp = created + c->window;
    uint8_t h[32];
    if (digest(c, keyid, nonce, h) != 0) return AC_NONCE_FULL; /* out of memory: overloaded */

    pthread_mutex_lock(&c->mu);
    enum ac_nonce_result res = AC_NONCE_NEW;
    int ask_db = 0;
    if (mem_seen(c, h, now)) {
        res = AC_NONCE_REPLAYED;
    } else if (!mem_room(c, now)) {
        res = AC_NONCE_FULL;
    } else if (db == NULL) {
        res = mem_put(c, h, exp, now) == 0 ? AC_NONCE_NEW : AC_NONCE_FULL;
    } else {
        ask_db = 1; /* the database decides, asked without holding the lock */
    }
    pthread_mutex_unlock(&c->mu);
    if (!ask_db) return res;

    char e[24], n[24];
    snprintf(e, sizeof e, "%lld", (long long)exp);
    snprintf(n, sizeof n, "%lld", (long long)now);
    const char *vals[] = {keyid, nonce, e, n};
    PGresult *r = exec_stmt(db, "ac_nonce_ins", 4, vals);
    if (r == NULL) return AC_NONCE_DB_ERROR;
    res = PQntuples(r) == 1 ? AC_NONCE_NEW : AC_NONCE_REPLAYED;
    PQclear(r);
    /* Remember it either way. No room any more (other threads filled it meanwhile) only costs a
     * later round trip: the database already holds the nonce, so nothing is forgotten. */
    pthread_mutex_lock(&c->mu);
    (void)mem_put(c, h, exp, now);
    pthread_mutex_unlock(&c->mu);
    return res;
}

long ac_nonce_purge(struct ac_nonce_cache *c, PGconn *db, int64_t now)
{
    if (c != NULL) {
        pthread_mutex_lock(&c->mu);
        sweep(c, now);
        pthread_mutex_unlock(&c->mu);
    }
    if (db == NULL) return 0;
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)now);
    const char *vals[] = {n};
    PGresult *r = exec_stmt(db, "ac_nonce_purge", 1, vals);
    if (r == NULL) return -1;
    long deleted = atol(PQcmdTuples(r));
    PQclear(r);
    return deleted;
}
