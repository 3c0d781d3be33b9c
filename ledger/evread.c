/* The evidence log's read side (see evread.h). */
#include "ledger/evread.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/amount.h"
#include "protocol/buf.h"
#include "protocol/bundle.h"
#include "protocol/mtree.h"

static const struct ac_db_stmt evread_stmts[] = {
    {"evr_cp_latest",
     "select size, encode(root, 'hex'), note, log_key, key_id, created_us from ac_checkpoints "
     "order by size desc limit 1",
     0},
    {"evr_cp_get",
     "select size, encode(root, 'hex'), note, log_key, key_id, created_us from ac_checkpoints "
     "where size = $1::int8",
     1},
    {"evr_record",
     "select encode(record, 'hex'), encode(leaf, 'hex') from ac_evidence where seq = $1::int8", 1},
    {"evr_leaves",
     "select seq, encode(leaf, 'hex') from ac_evidence where seq >= $1::int8 and seq < $2::int8 "
     "order by seq",
     2},
    {"evr_payment",
     "select seq, encode(record, 'hex') from ac_evidence where payment_id = $1 order by seq "
     "limit 4097",
     1},
    {"evr_documents", "select d from ac_evidence_documents($1::text[]) as d", 1},
    {"evr_user_keys", "select jwk from ac_principal_keys where user_id = $1 order by seq", 1},
};

int ac_evread_register_statements(void)
{
    return ac_db_register(AC_DB_READER, evread_stmts, sizeof evread_stmts / sizeof evread_stmts[0]);
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char ch = s[2 * i + (size_t)j];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* A malloc'd copy of hex text decoded (*len bytes), or NULL. */
static uint8_t *unhex_dup(const char *s, size_t *len)
{
    size_t n = strlen(s) / 2;
    uint8_t *p = malloc(n ? n : 1);
    if (p == NULL || unhex(s, p, n) != 0) {
        free(p);
        return NULL;
    }
    *len = n;
    return p;
}

/* ---- checkpoints and records ------------------------------------------------------------------
 */

void ac_evread_cp_clear(struct ac_evread_cp *cp)
{
    free(cp->note);
    free(cp->log_key);
    memset(cp, 0, sizeof *cp);
}

enum ac_qs ac_evread_checkpoint(PGconn *c, uint64_t size, struct ac_evread_cp *cp)
{
    memset(cp, 0, sizeof *cp);
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, size);
    const char *v[] = {s};
    PGresult *r;
    enum ac_qs qs =
        size ? ac_db_exec(c, "evr_cp_get", 1, v, &r) : ac_db_exec(c, "evr_cp_latest", 0, NULL, &r);
    if (qs < 0) return qs;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return AC_QS_NO_RESULTS;
    }
    cp->size = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    cp->note = strdup(PQgetvalue(r, 0, 2));
    cp->log_key = strdup(PQgetvalue(r, 0, 3));
    snprintf(cp->key_id, sizeof cp->key_id, "%s", PQgetvalue(r, 0, 4));
    cp->created_us = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    int bad =
        unhex(PQgetvalue(r, 0, 1), cp->root, AC_EV_HASH_LEN) != 0 || !cp->note || !cp->log_key;
    PQclear(r);
    if (bad) {
        ac_evread_cp_clear(cp);
        return AC_QS_HARD_ERROR;
    }
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_evread_record(PGconn *c, uint64_t seq, uint8_t **bytes, size_t *len,
                            uint8_t leaf[AC_EV_HASH_LEN])
{
    *bytes = NULL;
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, seq);
    const char *v[] = {s};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "evr_record", 1, v, &r);
    if (qs < 0) return qs;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return AC_QS_NO_RESULTS;
    }
    *bytes = unhex_dup(PQgetvalue(r, 0, 0), len);
    int bad = *bytes == NULL || unhex(PQgetvalue(r, 0, 1), leaf, AC_EV_HASH_LEN) != 0;
    PQclear(r);
    if (bad) {
        free(*bytes);
        *bytes = NULL;
        return AC_QS_HARD_ERROR;
    }
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_evread_payment(PGconn *c, const char *payment,
                             int (*each)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len),
                             void *ctx)
{
    const char *v[] = {payment};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "evr_payment", 1, v, &r);
    if (qs < 0) return qs;
    int n = PQntuples(r);
    qs = n ? AC_QS_ONE_RESULT : AC_QS_NO_RESULTS;
    if (n > (int)AC_BUNDLE_MAX_RECORDS) qs = AC_QS_HARD_ERROR;
    for (int i = 0; i < n && qs > 0; i++) {
        size_t len;
        uint8_t *b = unhex_dup(PQgetvalue(r, i, 1), &len);
        if (b == NULL || each(ctx, strtoull(PQgetvalue(r, i, 0), NULL, 10), b, len) != 0)
            qs = AC_QS_HARD_ERROR;
        free(b);
    }
    PQclear(r);
    return qs;
}

/* Text array literal of ids (valid ids need no escaping; others are skipped). */
static char *id_array(const char *const *ids, size_t n)
{
    struct ac_buf b = {0};
    ac_buf_adds(&b, "{");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL || !ac_id_valid(ids[i])) continue;
        ac_buf_printf(&b, "%s\"%s\"", k++ ? "," : "", ids[i]);
    }
    ac_buf_adds(&b, "}");
    if (b.oom) {
        ac_buf_free(&b);
        return NULL;
    }
    return b.p ? b.p : strdup("{}");
}

enum ac_qs ac_evread_documents(PGconn *c, const char *const *ids, size_t n,
                               int (*each)(void *ctx, const char *doc, size_t len), void *ctx)
{
    char *arr = id_array(ids, n);
    if (arr == NULL) return AC_QS_HARD_ERROR;
    const char *v[] = {arr};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "evr_documents", 1, v, &r);
    free(arr);
    if (qs < 0) return qs;
    for (int i = 0; i < PQntuples(r) && qs > 0; i++)
        if (each(ctx, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0)) != 0)
            qs = AC_QS_HARD_ERROR;
    PQclear(r);
    return qs;
}

enum ac_qs ac_evread_user_keys(PGconn *c, const char *user,
                               int (*each)(void *ctx, const char *jwk, size_t len), void *ctx)
{
    const char *v[] = {user};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "evr_user_keys", 1, v, &r);
    if (qs < 0) return qs;
    for (int i = 0; i < PQntuples(r) && qs > 0; i++)
        if (each(ctx, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0)) != 0)
            qs = AC_QS_HARD_ERROR;
    PQclear(r);
    return qs;
}

/* ---- the leaf cache ----------------------------------------------------------------------------
 */

struct ac_evread {
    pthread_rwlock_t lock; /* the tree: readers compute proofs, a sync appends */
    pthread_mutex_t sync;  /* one sync at a time */
    struct ac_mtree tree;
};

struct ac_evread *ac_evread_new(void)
{
    struct ac_evread *er = calloc(1, sizeof *er);
    if (er == NULL) return NULL;
    pthread_rwlock_init(&er->lock, NULL);
    pthread_mutex_init(&er->sync, NULL);
    ac_mtree_init(&er->tree);
    return er;
}

void ac_evread_free(struct ac_evread *er)
{
    if (er == NULL) return;
    ac_mtree_free(&er->tree);
    pthread_rwlock_destroy(&er->lock);
    pthread_mutex_destroy(&er->sync);
    free(er);
}

/* Make the cache hold at least `size` leaves, reading the missing ones (in chunks). */
#define SYNC_CHUNK 65536
static enum ac_evread_status sync_to(struct ac_evread *er, PGconn *c, uint64_t size)
{
    pthread_rwlock_rdlock(&er->lock);
    uint64_t have = er->tree.n;
    pthread_rwlock_unlock(&er->lock);
    if (have >= size) return AC_EVREAD_OK;
    enum ac_evread_status st = AC_EVREAD_OK;
    pthread_mutex_lock(&er->sync);
    uint8_t(*buf)[AC_EV_HASH_LEN] = NULL;
    for (;;) {
        pthread_rwlock_rdlock(&er->lock);
        have = er->tree.n;
        pthread_rwlock_unlock(&er->lock);
        if (have >= size) break;
        uint64_t to = size - have > SYNC_CHUNK ? have + SYNC_CHUNK : size;
        char a[24], b[24];
        snprintf(a, sizeof a, "%" PRIu64, have);
        snprintf(b, sizeof b, "%" PRIu64, to);
        const char *v[] = {a, b};
        PGresult *r;
        if (ac_db_exec(c, "evr_leaves", 2, v, &r) < 0) {
            st = AC_EVREAD_DB;
            break;
        }
        int n = PQntuples(r);
        if ((uint64_t)n != to - have) {
            PQclear(r);
            st = AC_EVREAD_RANGE; /* fewer records than the size asked for */
            break;
        }
        free(buf);
        buf = malloc((size_t)n * AC_EV_HASH_LEN);
        for (int i = 0; buf && i < n && st == AC_EVREAD_OK; i++)
            if (strtoull(PQgetvalue(r, i, 0), NULL, 10) != have + (uint64_t)i ||
                unhex(PQgetvalue(r, i, 1), buf[i], AC_EV_HASH_LEN) != 0)
                st = AC_EVREAD_INCONSISTENT;
        PQclear(r);
        if (buf == NULL) st = AC_EVREAD_OOM;
        if (st != AC_EVREAD_OK) break;
        pthread_rwlock_wrlock(&er->lock);
        for (int i = 0; i < n && st == AC_EVREAD_OK; i++)
            if (ac_mtree_append(&er->tree, buf[i]) != 0) st = AC_EVREAD_OOM;
        pthread_rwlock_unlock(&er->lock);
        if (st != AC_EVREAD_OK) break;
    }
    free(buf);
    pthread_mutex_unlock(&er->sync);
    return st;
}

/* Sync to cp->size and check the root there (under the read lock, held on return when OK). */
static enum ac_evread_status locked_at(struct ac_evread *er, PGconn *c,
                                       const struct ac_evread_cp *cp)
{
    enum ac_evread_status st = sync_to(er, c, cp->size);
    if (st != AC_EVREAD_OK) return st;
    pthread_rwlock_rdlock(&er->lock);
    uint8_t root[AC_EV_HASH_LEN];
    if (ac_mtree_root(&er->tree, cp->size, root) != 0 ||
        memcmp(root, cp->root, AC_EV_HASH_LEN) != 0) {
        pthread_rwlock_unlock(&er->lock);
        return AC_EVREAD_INCONSISTENT;
    }
    return AC_EVREAD_OK;
}

enum ac_evread_status ac_evread_inclusion(struct ac_evread *er, PGconn *c,
                                          const struct ac_evread_cp *cp, uint64_t seq,
                                          uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN],
                                          size_t *n)
{
    if (seq >= cp->size) return AC_EVREAD_RANGE;
    enum ac_evread_status st = locked_at(er, c, cp);
    if (st != AC_EVREAD_OK) return st;
    st = ac_mtree_inclusion(&er->tree, seq, cp->size, proof, n) == 0 ? AC_EVREAD_OK
                                                                     : AC_EVREAD_RANGE;
    pthread_rwlock_unlock(&er->lock);
    return st;
}

enum ac_evread_status
ac_evread_consistency(struct ac_evread *er, PGconn *c, const struct ac_evread_cp *cp, uint64_t from,
                      uint64_t to, uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN], size_t *n)
{
    if (from == 0 || from > to || to > cp->size) return AC_EVREAD_RANGE;
    enum ac_evread_status st = locked_at(er, c, cp);
    if (st != AC_EVREAD_OK) return st;
    st = ac_mtree_consistency(&er->tree, from, to, proof, n) == 0 ? AC_EVREAD_OK : AC_EVREAD_RANGE;
    pthread_rwlock_unlock(&er->lock);
    return st;
}

enum ac_evread_status ac_evread_root(struct ac_evread *er, PGconn *c, uint64_t size,
                                     uint8_t root[AC_EV_HASH_LEN])
{
    enum ac_evread_status st = sync_to(er, c, size);
    if (st != AC_EVREAD_OK) return st;
    pthread_rwlock_rdlock(&er->lock);
    st = ac_mtree_root(&er->tree, size, root) == 0 ? AC_EVREAD_OK : AC_EVREAD_RANGE;
    pthread_rwlock_unlock(&er->lock);
    return st;
}
