/* The evidence log's write side, on the sequencer thread (see evlog.h and docs/evidence.md).
 *
 * State: the committed head (records so far, the last record's hash, the Merkle frontier -- an
 * O(log n) compact range, so a root costs at most 63 hashes however long the log -- the size of
 * the last checkpoint and the time its first unsealed record was written) and a copy of it that
 * the current batch advances. end(1) makes the batch's copy the committed head; end(0) drops it
 * (and the sequencer reloads from the database anyway).
 *
 * Per record, on the sequencer thread: one deterministic CBOR encoding, two SHA-256 (record hash
 * and leaf hash), about one node hash for the frontier, and hex text into the batch's arrays.
 * Per batch: ONE multi-row insert (unnest of arrays). Per checkpoint: a root (<= 63 hashes) and
 * one Ed25519 signature, inserted in the same transaction as the records it covers. */
#include "ledger/evlog.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/db.h"
#include "ledger/state.h"
#include "protocol/buf.h"
#include "protocol/note.h"

/* Records verified again (decoded, leaf and chain recomputed) at load: those after the last
 * checkpoint, at most this many. Older ones are sealed by a checkpoint whose root is checked. */
#define TAIL_CHECK_MAX 65536

/* The batch's records go to PostgreSQL as ONE bytea (the records one after another, hex) with the
 * offset and length of each, and the leaves as another (32 bytes each): a text array of hex
 * strings would be scanned character by character by array_in before each element is decoded,
 * which cost the evidence insert a third of its time. The other columns are arrays. */
enum { EV_SEQ, EV_TIME, EV_KIND, EV_SUBJECT, EV_RECORDS, EV_LEAVES, EV_OFFSET, EV_LEN, EV_COLS };

static const struct ac_db_stmt evlog_writer_stmts[] = {
    {"ev_ins",
     "insert into ac_evidence (seq, time_us, kind, payment_id, record, leaf) "
     "select s, t, k, nullif(p, ''), substr($5::bytea, o, n), substr($6::bytea, 32 * i::int4 - 31, 32) "
     "from unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $7::int4[], $8::int4[]) "
     "with ordinality as x(s, t, k, p, o, n, i)",
     EV_COLS},
    {"ev_cp_ins",
     "insert into ac_checkpoints (size, root, note, log_key, key_id, created_us) "
     "values ($1::int8, decode($2, 'hex'), $3, $4, $5, $6::int8)",
     6},
    {"ev_load_count", "select count(*), coalesce(max(seq), -1) from ac_evidence", 0},
    {"ev_load_cp",
     "select size, encode(root, 'hex') from ac_checkpoints order by size desc limit 1", 0},
    {"ev_load_leaves", "select encode(leaf, 'hex') from ac_evidence order by seq", 0},
    {"ev_load_tail",
     "select seq, time_us, encode(record, 'hex'), encode(leaf, 'hex') from ac_evidence "
     "where seq >= $1::int8 order by seq",
     1},
};

int ac_evlog_register_statements(void)
{
    return ac_db_register(AC_DB_WRITER, evlog_writer_stmts,
                          sizeof evlog_writer_stmts / sizeof evlog_writer_stmts[0]);
}

/* Operator transfers per ledger.transfer record (at most AC_EV_MAX_TRANSFERS). A build option only
 * so that the cost of smaller records can be measured (-DAC_EVLOG_RUN_MAX=1: one per transfer). */
#ifndef AC_EVLOG_RUN_MAX
#define AC_EVLOG_RUN_MAX AC_EV_MAX_TRANSFERS
#endif
_Static_assert(AC_EVLOG_RUN_MAX >= 1 && AC_EVLOG_RUN_MAX <= AC_EV_MAX_TRANSFERS, "run size");

/* An operator transfer waiting for its ledger.transfer record (a copy: the ledger's rows move). */
struct lq {
    char id[AC_ID_MAX + 1], debit[AC_ID_MAX + 1], credit[AC_ID_MAX + 1], pending[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    int64_t amount;
    uint32_t flags, timeout_s;
    uint16_t code;
    unsigned scale;
};

struct head {
    uint64_t n;                   /* records = the next seq */
    uint8_t hash[AC_EV_HASH_LEN]; /* record hash of seq n-1 (zeros when n == 0) */
    struct ac_merkle_frontier tree;
    uint64_t cp_size;       /* tree size of the last checkpoint (0: none) */
    int64_t unsealed_since; /* time of record cp_size, INT64_MAX when n == cp_size */
};

struct ac_evlog {
    char *origin;
    const struct ac_keyring *keys;
    uint64_t every;
    int64_t period_us;
    int loaded;
    struct head c; /* committed */
    struct head b; /* the current batch's */
    int in_batch;
    int broken;       /* an append failed: the batch must not commit */
    int64_t retry_at; /* no signing key at the last attempt: not before this time */
    int warned_nokey;
    struct ac_buf arr[EV_COLS]; /* the batch's rows as ev_ins parameters (EV_*) */
    size_t rows;
    size_t rec_bytes; /* the batch's record bytes so far (the next record's offset - 1) */
    struct ac_buf hexbuf;
    struct lq *lq; /* the batch's operator transfers not yet in a record (AC_EV_MAX_TRANSFERS) */
    size_t nlq;
    char *vkey; /* note verifier key of vkey_kid, cached */
    char vkey_kid[AC_JWK_THUMBPRINT_SIZE];
    _Atomic uint64_t st_records, st_checkpoint; /* for metrics and logs (any thread) */
};

static void head_init(struct head *h)
{
    memset(h, 0, sizeof *h);
    ac_merkle_frontier_init(&h->tree);
    h->unsealed_since = INT64_MAX;
}

struct ac_evlog *ac_evlog_new(const struct ac_evlog_config *cfg)
{
    struct ac_evlog *ev = calloc(1, sizeof *ev);
    if (ev == NULL) return NULL;
    const char *origin = cfg && cfg->origin && *cfg->origin ? cfg->origin : "agentclear.local/0";
    if (!ac_note_name_valid(origin, strlen(origin)) || (ev->origin = strdup(origin)) == NULL) {
        free(ev);
        return NULL;
    }
    ev->keys = cfg ? cfg->keys : NULL;
    ev->every = cfg && cfg->checkpoint_every ? cfg->checkpoint_every : 1024;
    ev->period_us = (cfg && cfg->checkpoint_ms > 0 ? cfg->checkpoint_ms : 1000) * 1000;
    head_init(&ev->c);
    head_init(&ev->b);
    return ev;
}

void ac_evlog_free(struct ac_evlog *ev)
{
    if (ev == NULL) return;
    for (size_t i = 0; i < EV_COLS; i++)
        ac_buf_free(&ev->arr[i]);
    ac_buf_free(&ev->hexbuf);
    free(ev->lq);
    free(ev->vkey);
    free(ev->origin);
    free(ev);
}

const char *ac_evlog_origin(const struct ac_evlog *ev)
{
    return ev->origin;
}

uint64_t ac_evlog_size(const struct ac_evlog *ev)
{
    return atomic_load(&ev->st_records);
}

uint64_t ac_evlog_checkpoint_size(const struct ac_evlog *ev)
{
    return atomic_load(&ev->st_checkpoint);
}

/* ---- helpers ----------------------------------------------------------------------------------
 */

static const char hexd[] = "0123456789abcdef";

static void hex_into(struct ac_buf *b, const uint8_t *p, size_t n)
{
    char tmp[256];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        tmp[k++] = hexd[p[i] >> 4];
        tmp[k++] = hexd[p[i] & 15];
        if (k == sizeof tmp) {
            ac_buf_add(b, tmp, k);
            k = 0;
        }
    }
    if (k) ac_buf_add(b, tmp, k);
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char ch = s[2 * i + (size_t)j];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void arr_sep(struct ac_buf *b, size_t rows)
{
    ac_buf_add(b, rows ? "," : "{", 1);
}

static void arr_u64(struct ac_buf *b, size_t rows, uint64_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    arr_sep(b, rows);
    ac_buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* Quoted array element. Every value put here is an id, a kind name or hex: no '"' or '\\'. */
static void arr_q(struct ac_buf *b, size_t rows, const char *s)
{
    arr_sep(b, rows);
    ac_buf_add(b, "\"", 1);
    ac_buf_adds(b, s);
    ac_buf_add(b, "\"", 1);
}

static void begin_batch(struct ac_evlog *ev)
{
    if (ev->in_batch) return;
    ev->b = ev->c;
    ev->in_batch = 1;
    ev->broken = 0;
    ev->rows = 0;
    ev->rec_bytes = 0;
    ev->nlq = 0;
    for (size_t i = 0; i < EV_COLS; i++)
        ac_buf_reset(&ev->arr[i]);
}

/* ---- append -----------------------------------------------------------------------------------
 */

static int append_record(struct ac_evlog *ev, struct ac_apply *a, struct ac_ev_record *r,
                         uint64_t *seq, uint8_t leaf[AC_EV_HASH_LEN]);

/* Write the queued operator transfers as one ledger.transfer record. 0 or -1. */
static int flush_queue(struct ac_evlog *ev, struct ac_apply *a)
{
    if (ev == NULL || !ev->in_batch || ev->nlq == 0) return 0;
    struct ac_ev_transfer t[AC_EV_MAX_TRANSFERS];
    size_t n = ev->nlq;
    for (size_t i = 0; i < n; i++) {
        const struct lq *q = &ev->lq[i];
        t[i] = (struct ac_ev_transfer){
            q->id,        q->debit, q->credit, q->amount,
            q->asset,     q->scale, q->flags,  q->pending[0] ? q->pending : NULL,
            q->timeout_s, q->code};
    }
    struct ac_ev_record r = {0};
    r.kind = AC_EV_LEDGER_TRANSFER;
    r.body.actor = AC_EVLOG_OPERATOR;
    r.body.transfers = t;
    r.body.ntransfers = n;
    ev->nlq = 0;
    return append_record(ev, a, &r, NULL, NULL);
}

int ac_evlog_append(struct ac_evlog *ev, struct ac_apply *a, struct ac_ev_record *r, uint64_t *seq,
                    uint8_t leaf[AC_EV_HASH_LEN])
{
    if (flush_queue(ev, a) != 0) return -1;
    return append_record(ev, a, r, seq, leaf);
}

int ac_evlog_ledger_accounts(struct ac_evlog *ev, struct ac_apply *a, const struct ac_cmd *c)
{
    struct ac_ev_account acc[AC_EV_MAX_ACCOUNTS];
    size_t n = 0;
    for (size_t i = 0; i <= c->n; i++) {
        if (i < c->n && c->account_results[i] == AC_EC_OK && !c->account_replayed[i]) {
            const struct ac_account *x = &c->accounts[i];
            acc[n++] =
                (struct ac_ev_account){x->id, x->asset, x->owner[0] ? x->owner : NULL, x->flags};
        }
        if (n > 0 && (n == AC_EV_MAX_ACCOUNTS || i == c->n)) {
            struct ac_ev_record r = {0};
            r.kind = AC_EV_LEDGER_ACCOUNT;
            r.body.actor = AC_EVLOG_OPERATOR;
            r.body.accounts = acc;
            r.body.naccounts = n;
            if (ac_evlog_append(ev, a, &r, NULL, NULL) != 0) return -1;
            n = 0;
        }
    }
    return 0;
}

int ac_evlog_ledger_transfers(struct ac_evlog *ev, struct ac_apply *a, const struct ac_cmd *c,
                              const struct ac_transfer_row *rows, size_t nrows)
{
    if (ev == NULL || !ev->loaded) {
        if (ev) ev->broken = 1;
        fprintf(stderr, "evidence: ledger transfers before the log was loaded\n");
        return -1;
    }
    begin_batch(ev);
    if (ev->lq == NULL && (ev->lq = malloc(AC_EV_MAX_TRANSFERS * sizeof *ev->lq)) == NULL) {
        ev->broken = 1;
        return -1;
    }
    size_t j = 0; /* rows follow the requests' order: each row is the next request of its id */
    for (size_t i = 0; i < nrows; i++) {
        const struct ac_transfer_row *w = &rows[i];
        while (j < c->n && strcmp(c->transfers[j].id, w->id) != 0)
            j++;
        if (j < c->n && w->result != AC_EC_OK) continue; /* a sticky failure moved nothing */
        if (j == c->n || c->scales == NULL) {
            fprintf(stderr, "evidence: a ledger transfer without %s: not recorded, batch failed\n",
                    c->scales == NULL ? "its asset's scale" : "its request");
            ev->broken = 1;
            return -1;
        }
        if (ev->nlq == AC_EVLOG_RUN_MAX && flush_queue(ev, a) != 0) return -1;
        struct lq *q = &ev->lq[ev->nlq++];
        memcpy(q->id, w->id, sizeof q->id);
        memcpy(q->debit, w->debit, sizeof q->debit);
        memcpy(q->credit, w->credit, sizeof q->credit);
        memcpy(q->pending, w->pending_id, sizeof q->pending);
        memcpy(q->asset, w->asset, sizeof q->asset);
        q->amount = w->amount;
        q->flags = w->flags;
        q->timeout_s = w->timeout_s;
        q->code = w->code;
        q->scale = c->scales[j];
    }
    return 0;
}

static int append_record(struct ac_evlog *ev, struct ac_apply *a, struct ac_ev_record *r,
                         uint64_t *seq, uint8_t leaf[AC_EV_HASH_LEN])
{
    if (ev == NULL || !ev->loaded) {
        if (ev) ev->broken = 1;
        fprintf(stderr, "evidence: append before the log was loaded\n");
        return -1;
    }
    begin_batch(ev);
    struct head *h = &ev->b;
    int64_t now = ac_apply_now(a);
    r->seq = h->n;
    r->time_us = now;
    memcpy(r->prev, h->hash, AC_EV_HASH_LEN);
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[200];
    if (ac_ev_record_encode(r, &bytes, &len, err, sizeof err) != 0) {
        fprintf(stderr, "evidence: cannot encode a %s record: %s\n",
                ac_ev_kind_name(r->kind) ? ac_ev_kind_name(r->kind) : "(no kind)", err);
        ev->broken = 1;
        return -1;
    }
    uint8_t lh[AC_EV_HASH_LEN], rh[AC_EV_HASH_LEN];
    struct ac_merkle_frontier tree = h->tree;
    if (ac_ev_record_hash(bytes, len, rh) != 0 || ac_ev_leaf_hash(bytes, len, lh) != 0 ||
        ac_merkle_frontier_append(&tree, lh) != 0) {
        free(bytes);
        ev->broken = 1;
        return -1;
    }
    const char *subject = r->body.payment ? r->body.payment : r->body.tab ? r->body.tab : "";
    /* int4 offsets: a batch's records stay far below 2 GiB (each at most AC_EV_RECORD_MAX) */
    if (len > AC_EV_RECORD_MAX || ev->rec_bytes + len > INT32_MAX) {
        free(bytes);
        ev->broken = 1;
        return -1;
    }
    arr_u64(&ev->arr[EV_SEQ], ev->rows, r->seq);
    arr_u64(&ev->arr[EV_TIME], ev->rows, (uint64_t)now);
    arr_q(&ev->arr[EV_KIND], ev->rows, ac_ev_kind_name(r->kind));
    arr_q(&ev->arr[EV_SUBJECT], ev->rows, subject);
    if (ev->rows == 0) {
        ac_buf_add(&ev->arr[EV_RECORDS], "\\x", 2);
        ac_buf_add(&ev->arr[EV_LEAVES], "\\x", 2);
    }
    hex_into(&ev->arr[EV_RECORDS], bytes, len);
    hex_into(&ev->arr[EV_LEAVES], lh, AC_EV_HASH_LEN);
    arr_u64(&ev->arr[EV_OFFSET], ev->rows, ev->rec_bytes + 1);
    arr_u64(&ev->arr[EV_LEN], ev->rows, len);
    ev->rec_bytes += len;
    free(bytes);
    for (size_t i = 0; i < EV_COLS; i++)
        if (ev->arr[i].oom) {
            ev->broken = 1;
            return -1;
        }
    ev->rows++;
    h->tree = tree;
    memcpy(h->hash, rh, AC_EV_HASH_LEN);
    if (h->n == h->cp_size) h->unsealed_since = now;
    h->n++;
    if (seq) *seq = r->seq;
    if (leaf) memcpy(leaf, lh, AC_EV_HASH_LEN);
    return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------------
 */

/* Sign and queue a checkpoint of the batch's tree. Returns 0 (queued, or skipped for want of a
 * key: then retried a period later), -1 when out of memory or the statement cannot be queued. */
static int checkpoint(struct ac_evlog *ev, struct ac_apply *a, int64_t now)
{
    const struct ac_server_key *k = ev->keys ? ac_keyring_current(ev->keys, now / 1000000) : NULL;
    if (k == NULL || k->alg != AC_SIG_ED25519) {
        if (!ev->warned_nokey++)
            fprintf(stderr, "evidence: no current Ed25519 server key: records are written but NOT "
                            "checkpointed (configure keys-dir with an Ed25519 key)\n");
        ev->retry_at = now + ev->period_us;
        return 0;
    }
    ev->warned_nokey = 0;
    if (ev->vkey == NULL || strcmp(ev->vkey_kid, k->kid) != 0) {
        free(ev->vkey);
        ev->vkey = ac_ev_checkpoint_vkey(ev->origin, k->pkey);
        if (ev->vkey == NULL) return -1;
        memcpy(ev->vkey_kid, k->kid, sizeof ev->vkey_kid);
    }
    struct head *h = &ev->b;
    uint8_t root[AC_EV_HASH_LEN];
    if (ac_merkle_frontier_root(&h->tree, root) != 0) return -1;
    char *note = NULL;
    size_t nlen = 0;
    if (ac_ev_checkpoint_sign(ev->origin, h->n, root, k->pkey, &note, &nlen) != 0) return -1;
    char size[24], t[24], rhex[2 * AC_EV_HASH_LEN + 1];
    snprintf(size, sizeof size, "%" PRIu64, h->n);
    snprintf(t, sizeof t, "%" PRId64, now);
    for (size_t i = 0; i < AC_EV_HASH_LEN; i++) {
        rhex[2 * i] = hexd[root[i] >> 4];
        rhex[2 * i + 1] = hexd[root[i] & 15];
    }
    rhex[2 * AC_EV_HASH_LEN] = '\0';
    const char *v[] = {size, rhex, note, ev->vkey, k->kid, t};
    int rc = ac_apply_stmt(a, "ev_cp_ins", 6, v);
    free(note);
    if (rc != 0) return -1;
    h->cp_size = h->n;
    h->unsealed_since = INT64_MAX;
    return 0;
}

int ac_evlog_flush(struct ac_evlog *ev, struct ac_apply *a)
{
    if (ev == NULL) return 0;
    if (ev->broken) return -1;
    if (!ev->loaded) return 0;
    if (flush_queue(ev, a) != 0) return -1;
    if (ev->in_batch && ev->rows) {
        const char *v[EV_COLS];
        for (size_t i = 0; i < EV_COLS; i++) {
            if (i != EV_RECORDS && i != EV_LEAVES) ac_buf_add(&ev->arr[i], "}", 1);
            if (ev->arr[i].oom) return -1;
            v[i] = ac_buf_str(&ev->arr[i]);
        }
        if (ac_apply_stmt(a, "ev_ins", EV_COLS, v) != 0) return -1;
    }
    const struct head *h = ev->in_batch ? &ev->b : &ev->c;
    int64_t now = ac_apply_now(a);
    if (h->n > h->cp_size && now >= ev->retry_at &&
        (h->n - h->cp_size >= ev->every || now >= h->unsealed_since + ev->period_us)) {
        begin_batch(ev);
        if (checkpoint(ev, a, now) != 0) return -1;
    }
    return 0;
}

int64_t ac_evlog_next_deadline(const struct ac_evlog *ev)
{
    if (ev == NULL || !ev->loaded || ev->keys == NULL || ev->c.n == ev->c.cp_size) return INT64_MAX;
    int64_t t = ev->c.unsealed_since + ev->period_us;
    return t > ev->retry_at ? t : ev->retry_at;
}

int ac_evlog_tick(struct ac_evlog *ev, struct ac_apply *a)
{
    (void)a;
    /* a new batch starts: whatever a previous one left is gone (end() was called for it) */
    if (ev != NULL) ev->in_batch = 0, ev->broken = 0, ev->nlq = 0;
    return 0;
}

void ac_evlog_end(struct ac_evlog *ev, int committed)
{
    if (ev == NULL) return;
    if (committed && ev->in_batch && !ev->broken) {
        ev->c = ev->b;
        atomic_store(&ev->st_records, ev->c.n);
        atomic_store(&ev->st_checkpoint, ev->c.cp_size);
    }
    ev->in_batch = 0;
    ev->broken = 0;
    ev->rows = 0;
    ev->nlq = 0;
}

/* ---- load -------------------------------------------------------------------------------------
 */

static int load_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int load_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("evidence: cannot load the log: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    return -1;
}

static PGresult *exec1(PGconn *c, const char *name, int n, const char *const *v)
{
    PGresult *r = NULL;
    if (ac_db_exec(c, name, n, v, &r) != AC_QS_ONE_RESULT) {
        load_fail("%s: %s", name, PQerrorMessage(c));
        return NULL;
    }
    return r;
}

int ac_evlog_load(struct ac_evlog *ev, PGconn *c)
{
    ev->loaded = 0;
    ev->in_batch = 0;
    ev->broken = 0;
    ev->retry_at = 0;
    struct head h;
    head_init(&h);
    PGresult *r = exec1(c, "ev_load_count", 0, NULL);
    if (r == NULL) return -1;
    uint64_t n = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    long long max = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if ((long long)n != max + 1)
        return load_fail("%" PRIu64 " records but the last seq is %lld (a gap)", n, max);
    uint64_t cp_size = 0;
    uint8_t cp_root[AC_EV_HASH_LEN];
    if ((r = exec1(c, "ev_load_cp", 0, NULL)) == NULL) return -1;
    if (PQntuples(r) == 1) {
        cp_size = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        if (unhex(PQgetvalue(r, 0, 1), cp_root, AC_EV_HASH_LEN) != 0) cp_size = UINT64_MAX;
    }
    PQclear(r);
    if (cp_size > n)
        return load_fail("the last checkpoint covers %" PRIu64 " records, the log has %" PRIu64,
                         cp_size, n);

    /* every leaf into the frontier, streamed; the root at the checkpoint's size must be its root */
    if (PQsendQueryPrepared(c, "ev_load_leaves", 0, NULL, NULL, NULL, 0) != 1)
        return load_fail("ev_load_leaves: %s", PQerrorMessage(c));
    PQsetSingleRowMode(c);
    int bad = 0;
    uint64_t i = 0;
    while ((r = PQgetResult(c)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_SINGLE_TUPLE && !bad) {
            uint8_t leaf[AC_EV_HASH_LEN];
            if (unhex(PQgetvalue(r, 0, 0), leaf, AC_EV_HASH_LEN) != 0 ||
                ac_merkle_frontier_append(&h.tree, leaf) != 0)
                bad = 1;
            i++;
            if (!bad && i == cp_size) {
                uint8_t root[AC_EV_HASH_LEN];
                if (ac_merkle_frontier_root(&h.tree, root) != 0 ||
                    memcmp(root, cp_root, AC_EV_HASH_LEN) != 0)
                    bad = 2;
            }
        } else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK) {
            bad = 3;
        }
        PQclear(r);
    }
    if (bad == 2)
        return load_fail("the stored leaves do not give the root of checkpoint %" PRIu64
                         "; refusing to extend a log that is not consistent with its checkpoint",
                         cp_size);
    if (bad || i != n) return load_fail("reading the leaves failed: %s", PQerrorMessage(c));

    /* the records after the last checkpoint (and the one before them, for the chain): decoded,
     * leaf and chain recomputed; the last one's hash is the head */
    uint64_t from = cp_size ? cp_size - 1 : 0;
    if (n > TAIL_CHECK_MAX && from < n - TAIL_CHECK_MAX) from = n - TAIL_CHECK_MAX;
    char fs[24];
    snprintf(fs, sizeof fs, "%" PRIu64, from);
    const char *v[] = {fs};
    if (n > 0) {
        if ((r = exec1(c, "ev_load_tail", 1, v)) == NULL) return -1;
        int rows = PQntuples(r);
        uint8_t prev[AC_EV_HASH_LEN];
        int have_prev = 0;
        for (int k = 0; k < rows; k++) {
            uint64_t seq = strtoull(PQgetvalue(r, k, 0), NULL, 10);
            const char *rhex = PQgetvalue(r, k, 2);
            size_t blen = strlen(rhex) / 2;
            uint8_t *bytes = malloc(blen ? blen : 1), leaf[AC_EV_HASH_LEN], stored[AC_EV_HASH_LEN];
            struct ac_ev_record rec;
            char err[200] = "";
            int ok = bytes && unhex(rhex, bytes, blen) == 0 &&
                     unhex(PQgetvalue(r, k, 3), stored, AC_EV_HASH_LEN) == 0 &&
                     ac_ev_record_decode(bytes, blen, &rec, err, sizeof err) == 0;
            if (ok) {
                ok = rec.seq == seq && seq == from + (uint64_t)k &&
                     (!have_prev ? seq != 0 || memcmp(rec.prev, h.hash, AC_EV_HASH_LEN) == 0
                                 : memcmp(rec.prev, prev, AC_EV_HASH_LEN) == 0) &&
                     ac_ev_leaf_hash(bytes, blen, leaf) == 0 &&
                     memcmp(leaf, stored, AC_EV_HASH_LEN) == 0 &&
                     ac_ev_record_hash(bytes, blen, prev) == 0;
                if (seq == cp_size) h.unsealed_since = rec.time_us;
                ac_ev_record_clear(&rec);
            }
            free(bytes);
            if (!ok) {
                PQclear(r);
                return load_fail("record %" PRIu64 " does not check (%s)", seq,
                                 err[0] ? err : "seq, chain or leaf");
            }
            have_prev = 1;
        }
        PQclear(r);
        if (!have_prev || (uint64_t)rows != n - from)
            return load_fail("the last records could not be read");
        memcpy(h.hash, prev, AC_EV_HASH_LEN);
    }
    h.n = n;
    h.cp_size = cp_size;
    if (n == cp_size)
        h.unsealed_since = INT64_MAX;
    else if (h.unsealed_since == INT64_MAX)
        h.unsealed_since = 0; /* its first record was not read back: a checkpoint is due now */
    ev->c = h;
    ev->loaded = 1;
    atomic_store(&ev->st_records, n);
    atomic_store(&ev->st_checkpoint, cp_size);
    fprintf(stderr, "evidence: %" PRIu64 " records, last checkpoint at %" PRIu64 " (%s)%s\n", n,
            cp_size, ev->origin, ev->keys ? "" : "; no server keys: records are NOT checkpointed");
    return 0;
}
