#include "ledger/sequencer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/prctl.h>

#include "ledger/db.h"
#include "protocol/buf.h"

static const double batch_bounds[] = {1,   2,   4,   8,    16,   32,   64,
                                      128, 256, 512, 1024, 2048, 4096, 8192};
static const double commit_bounds[] = {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
                                       0.064,  0.128, 0.256, 0.512, 1.024, 2.048};

struct ac_apply {
    struct ac_state *st;
    int64_t now;
    void *domain;
    const struct ac_seq_domain *hooks; /* NULL without a domain */
    struct ac_db_extra *x; /* each x[i].vals is one malloc'd block holding the strings too */
    size_t nx, cap;
    int oom;
    PGconn *conn; /* while seals run */
};

struct ac_sequencer {
    struct ac_seq_config cfg;
    struct ac_seq_domain domain;
    int has_domain;
    char *db_url;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* queue not empty, or stop */
    pthread_cond_t leader_cv;
    struct ac_cmd *head, *tail;
    size_t queued;
    int stopping;
    int joined;
    _Atomic int leader; /* lease held and state loaded */
    _Atomic int db_up;  /* last connection attempt succeeded */
    int64_t last_us;
    struct ac_seq_stats stats;
    /* The nonce_put parameters of the batch being applied: the nonces memory decided, in the
     * sorted order decide_nonces found them in (put_nonces sends them; none while put_arr[0]
     * holds no element); the sequencer thread's. */
    struct ac_buf put_arr[3];
};

static int64_t realtime_us(void *cls)
{
    (void)cls;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_us(struct ac_sequencer *s)
{
    int64_t t = s->cfg.clock_us(s->cfg.clock_cls);
    if (t < s->last_us) t = s->last_us; /* never go back in time within a process */
    s->last_us = t;
    return t;
}

static size_t cmd_items(const struct ac_cmd *c)
{
    return c->n ? c->n : 1;
}

/* Complete a list of commands with a status (their per-item results are not set). */
static void fail_all(struct ac_cmd *list, enum ac_ec ec)
{
    while (list) {
        struct ac_cmd *next = list->next;
        list->status = ec;
        list->done(list);
        list = next;
    }
}

/* Take everything queued (used when not leader: fail fast, do not let callers hang). */
static struct ac_cmd *take_all(struct ac_sequencer *s)
{
    pthread_mutex_lock(&s->mu);
    struct ac_cmd *l = s->head;
    s->head = s->tail = NULL;
    s->queued = 0;
    pthread_mutex_unlock(&s->mu);
    return l;
}

/* CLOCK_REALTIME deadline ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_after_ms(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Sleep up to ms, waking early on stop. */
static void nap(struct ac_sequencer *s, int ms)
{
    struct timespec ts = deadline_after_ms(ms);
    pthread_mutex_lock(&s->mu);
    if (!s->stopping) pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
}

/* The next time-driven event: a hold's timeout or the domain's deadline. */
static int64_t next_deadline(struct ac_sequencer *s, struct ac_state *st)
{
    int64_t t = ac_state_next_expiry(st);
    if (s->has_domain && s->domain.next_deadline) {
        int64_t d = s->domain.next_deadline(s->domain.cls);
        if (d < t) t = d;
    }
    return t;
}

/* Wait for work: commands, or the next expiry, or stop. Returns a batch of commands (possibly
 * empty when an expiry is due) or sets *stop. With nowait, only what is queued now (NULL when
 * nothing is): a batch is in flight, and its outcome is what to wait for next. */
static struct ac_cmd *next_batch(struct ac_sequencer *s, struct ac_state *st, int *stop, int nowait)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->stopping) {
            *stop = 1;
            break;
        }
        if (s->head || nowait) break;
        int64_t exp = next_deadline(s, st);
        int64_t now = s->cfg.clock_us(s->cfg.clock_cls);
        if (exp <= now) break;
        /* wake at the expiry, and at least every 200 ms to notice a dead connection */
        int64_t wait_us = exp - now;
        if (wait_us > 200000) wait_us = 200000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(wait_us % 1000000) * 1000;
        ts.tv_sec += wait_us / 1000000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
    }
    /* take commands up to the item budget; a single command is never split */
    struct ac_cmd *first = s->head, *last = NULL;
    size_t items = 0;
    for (struct ac_cmd *c = s->head; c; c = c->next) {
        if (last && items + cmd_items(c) > s->cfg.max_batch_items) break;
        items += cmd_items(c);
        last = c;
        s->queued--;
    }
    if (last) {
        s->head = last->next;
        if (s->head == NULL) s->tail = NULL;
        last->next = NULL;
    } else {
        first = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return first;
}

struct ac_state *ac_apply_ledger(struct ac_apply *a)
{
    return a->st;
}

int64_t ac_apply_now(const struct ac_apply *a)
{
    return a->now;
}

void *ac_apply_domain(struct ac_apply *a)
{
    return a->domain;
}

int ac_apply_stmt(struct ac_apply *a, const char *name, int n, const char *const *vals)
{
    if (a->oom || n < 0) return -1;
    if (a->nx == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct ac_db_extra *x = realloc(a->x, cap * sizeof *x);
        if (x == NULL) goto oom;
        a->x = x;
        a->cap = cap;
    }
    size_t bytes = (size_t)n * sizeof(char *);
    for (int i = 0; i < n; i++)
        if (vals[i]) bytes += strlen(vals[i]) + 1;
    char **block = malloc(bytes ? bytes : 1);
    if (block == NULL) goto oom;
    char *p = (char *)(block + n);
    for (int i = 0; i < n; i++) {
        if (vals[i] == NULL) {
            block[i] = NULL;
            continue;
        }
        size_t l = strlen(vals[i]) + 1;
        memcpy(p, vals[i], l);
        block[i] = p;
        p += l;
    }
    a->x[a->nx].name = name;
    a->x[a->nx].n = n;
    a->x[a->nx].vals = (const char *const *)block;
    a->nx++;
    return 0;
oom:
    a->oom = 1;
    return -1;
}

void ac_apply_abort(struct ac_apply *a)
{
    a->oom = 1;
}

PGconn *ac_apply_conn(struct ac_apply *a)
{
    return a->conn;
}

static void apply_reset(struct ac_apply *a);

static int has_nonces(const struct ac_cmd *batch)
{
    for (; batch; batch = batch->next)
        if (batch->nonce) return 1;
    return 0;
}

static int has_seals(const struct ac_cmd *batch)
{
    for (; batch; batch = batch->next)
        if (batch->seal) return 1;
    return 0;
}

/* The batch's write when some command has a seal: the change set and the extras in an open
 * transaction, then each seal (reading on conn, adding extras), then those extras and COMMIT. */
static enum ac_qs write_sealed(PGconn *conn, const struct ac_changes *ch, struct ac_apply *ap,
                               struct ac_cmd *batch)
{
    enum ac_qs qs = ac_db_write_open(conn, ch, ap->x, ap->nx);
    apply_reset(ap);
    if (qs < 0) return qs;
    ap->conn = conn;
    for (struct ac_cmd *c = batch; c && !ap->oom; c = c->next)
        if (c->seal && c->seal(c, ap) != 0) ap->oom = 1;
    ap->conn = NULL;
    if (ap->oom || PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        PGresult *r = PQexec(conn, "rollback");
        PQclear(r);
        return AC_QS_HARD_ERROR;
    }
    return ac_db_write_finish(conn, ap->x, ap->nx);
}

static void apply_reset(struct ac_apply *a)
{
    for (size_t i = 0; i < a->nx; i++)
        free((void *)a->x[i].vals);
    a->nx = 0;
    a->oom = 0;
}

static void apply(struct ac_apply *a, struct ac_cmd *c)
{
    struct ac_state *st = a->st;
    int64_t now = a->now;
    c->status = AC_EC_OK;
    if (c->kind == AC_CMD_OP) {
        c->op(c, a);
    } else if (c->kind == AC_CMD_ACCOUNTS) {
        for (size_t i = 0; i < c->n; i++)
            c->account_results[i] =
                ac_state_create_account(st, &c->accounts[i], &c->account_replayed[i]);
        if (a->hooks && a->hooks->ledger && a->hooks->ledger(a->domain, a, c, NULL, 0) != 0)
            a->oom = 1;
    } else {
        size_t r0, r1;
        ac_state_rows(st, &r0);
        if (ac_state_create_transfers(st, c->transfers, c->n, now, c->results) != AC_EC_OK) {
            c->status = AC_EC_INTERNAL;
        } else if (a->hooks && a->hooks->ledger) {
            const struct ac_transfer_row *rows = ac_state_rows(st, &r1);
            if (a->hooks->ledger(a->domain, a, c, rows + r0, r1 - r0) != 0) a->oom = 1;
        }
    }
}

static int changes_empty(const struct ac_changes *ch)
{
    return ch->n_new_accounts == 0 && ch->n_dirty_accounts == 0 && ch->n_transfers == 0 &&
           ch->n_pending_changes == 0;
}

static void domain_end(struct ac_sequencer *s, int committed)
{
    if (s->has_domain && s->domain.end) s->domain.end(s->domain.cls, committed);
}

/* A batch whose write was sent and whose outcome is not read yet. */
struct inflight {
    int active;
    struct ac_cmd *batch; /* may be NULL: a batch of time-driven work only */
    size_t items;
    int sent; /* statements queued (ac_db_write_send) */
    double t0;
};

static void complete(struct ac_sequencer *s, struct ac_cmd *batch, size_t items)
{
    if (items) {
        ac_hist_observe(&s->stats.batch_items, (double)items);
        atomic_fetch_add(&s->stats.items_committed, items);
        atomic_fetch_add(&s->stats.batches_committed, 1);
    }
    /* durable: complete the callers, in order */
    while (batch) {
        struct ac_cmd *next = batch->next;
        if (batch->nonce && batch->nonce_in_batch > 0) {
            /* its nonce's row committed with the batch (put_nonces) */
            batch->nonce_taken = 1;
            atomic_fetch_add(&s->stats.nonces_in_batch, 1);
        }
        batch->done(batch);
        batch = next;
    }
}

/* Drop the batch being applied: its in-memory changes are undone (the caller then reloads). */
static void abandon(struct ac_sequencer *s, struct ac_state *st)
{
    ac_state_rollback(st);
    domain_end(s, 0);
}

static void batch_failed(struct ac_sequencer *s, struct ac_cmd *batch, enum ac_qs qs)
{
    atomic_fetch_add(&s->stats.batches_failed, 1);
    fail_all(batch, AC_EC_BATCH_FAILED);
    fprintf(stderr, "sequencer: batch commit failed (%s): %s",
            qs == AC_QS_SOFT_ERROR ? "retryable" : "hard", ac_db_last_error());
}

/* Read the outcome of the batch in flight. Committed: its callers complete (0). Failed: they
 * fail, and so must everything applied after it (-1; the caller abandons and reloads).
 * last: no other batch is queued behind it on the connection. With st (the batch's in-memory
 * changes still open, not yet committed in memory), commit or roll them back accordingly. */
static int finish(struct ac_sequencer *s, PGconn *conn, struct inflight *f, int last,
                  struct ac_state *st)
{
    if (!f->active) return 0;
    f->active = 0;
    enum ac_qs qs = ac_db_write_recv(conn, f->sent, last);
    if (qs < 0) {
        if (st) abandon(s, st);
        batch_failed(s, f->batch, qs);
        return -1;
    }
    ac_hist_observe(&s->stats.commit_seconds, mono_seconds() - f->t0);
    if (st) {
        ac_state_commit(st);
        domain_end(s, 1);
    }
    complete(s, f->batch, f->items);
    return 0;
}

static int cmd_nonce_cmp(const void *a, const void *b)
{
    const struct ac_cmd *x = *(const struct ac_cmd *const *)a;
    const struct ac_cmd *y = *(const struct ac_cmd *const *)b;
    int c = strcmp(x->nonce_keyid, y->nonce_keyid);
    return c ? c : strcmp(x->nonce, y->nonce);
}

/* 1 when memory's verdict on c's nonce is final: reserved after this leader's load (epoch). */
static int by_memory(const struct ac_cmd *c, uint64_t epoch)
{
    return c->nonce != NULL && epoch != 0 && c->nonce_epoch == epoch;
}

/* The nonces of the batch's signed requests (ac_cmd.nonce), decided before anything of the batch
 * is applied.
 *
 * Reserved after this leader's load (by_memory): memory's NEW was final, since it held every
 * nonce recorded with an effect by then and every one this process reserved since. Their rows go
 * into the batch's own transaction (put_nonces), so nothing here waits for the database and the
 * batch in flight keeps committing while this one is applied.
 *
 * Reserved before it (a restart, a reconnect, another leader meanwhile): recorded in ac_nonces
 * first (sql/0015), the batch's COMMIT, later in the WAL, making them durable. The statement is
 * queued behind the batch in flight (fl), whose outcome is read first, so PostgreSQL runs it as
 * soon as that batch committed. Commands whose nonce was there already are replays.
 *
 * Replays complete at once with AC_EC_SIG_REPLAYED, and nonces expired by the sequencer's clock
 * with AC_EC_SIG_STALE; neither is applied. Returns the batch that remains (possibly NULL). On a
 * failure (the batch in flight, or the statement) every command of the batch fails with
 * AC_EC_BATCH_FAILED and *failed is set: the caller reconnects. */
static struct ac_cmd *decide_nonces(struct ac_sequencer *s, PGconn *conn, struct inflight *fl,
                                    struct ac_cmd *batch, uint64_t epoch, int *failed)
{
    *failed = 0;
    size_t n = 0;
    for (struct ac_cmd *c = batch; c; c = c->next)
        if (c->nonce) n++;
    if (n == 0) return batch;
    const char **k = malloc(n * sizeof *k), **v = malloc(n * sizeof *v);
    int64_t *e = malloc(n * sizeof *e);
    int *taken = malloc(n * sizeof *taken);
    struct ac_cmd **who = malloc(n * sizeof *who);
    size_t m = 0;
    int ok = k && v && e && taken && who;
    /* A nonce whose expiry has passed by the sequencer's clock is neither sent nor put: its row
     * may be taken over once expired, so a replay verified in its last second and applied after
     * it would take the original's row. Such a request's signature is out of its window now
     * anyway: refused below, as stale. */
    int64_t now_s = now_us(s) / 1000000;
    if (ok) {
        /* One command per nonce, whichever way it is decided (memory refuses a second
         * reservation; be sure): a later one is refused below as a replay (-1). Sorted: rows
         * are locked in one order by every inserter (the nonce writers sort too), so two
         * statements taking overlapping nonces wait for each other instead of deadlocking. */
        for (struct ac_cmd *c = batch; c; c = c->next) {
            c->nonce_in_batch = 0;
            if (c->nonce && c->nonce_exp > now_s) who[m++] = c;
        }
        qsort(who, m, sizeof *who, cmd_nonce_cmp);
        for (int i = 0; i < 3; i++) {
            ac_buf_reset(&s->put_arr[i]);
            ac_buf_adds(&s->put_arr[i], "{");
        }
        size_t u = 0;
        for (size_t j = 0; j < m; j++) {
            struct ac_cmd *c = who[j];
            if (j > 0 && cmd_nonce_cmp(&who[j - 1], &who[j]) == 0) {
                c->nonce_in_batch = -1;
            } else if (by_memory(c, epoch)) {
                c->nonce_in_batch = 1; /* its row goes with the batch (put_nonces) */
                ac_nonce_array_row(&s->put_arr[0], &s->put_arr[1], &s->put_arr[2],
                                   c->nonce_keyid, c->nonce, c->nonce_exp);
            } else {
                who[u] = c; /* the database's verdict */
                k[u] = c->nonce_keyid;
                v[u] = c->nonce;
                e[u++] = c->nonce_exp;
            }
        }
        m = u;
        ok = m == 0 || ac_db_nonce_take_send(conn, k, v, e, m, now_s) == 0;
    }
    /* the batch in flight first (its results precede the statement's); last = 0: not yet */
    if (m > 0 || !ok) {
        if (finish(s, conn, fl, !ok, NULL) != 0) ok = 0;
        if (ok) ok = ac_db_nonce_take_recv(conn, k, v, m, taken) > 0;
    }
    if (!ok) {
        free(k), free(v), free(e), free(taken), free(who);
        atomic_fetch_add(&s->stats.batches_failed, 1);
        fail_all(batch, AC_EC_BATCH_FAILED);
        fprintf(stderr, "sequencer: recording the batch's nonces failed: %s\n", ac_db_last_error());
        *failed = 1;
        return NULL;
    }
    for (size_t j = 0; j < m; j++)
        who[j]->nonce_taken = taken[j];
    free(k), free(v), free(e), free(taken), free(who);
    struct ac_cmd *keep = NULL, **tail = &keep;
    while (batch) {
        struct ac_cmd *c = batch;
        batch = c->next;
        c->next = NULL;
        if (c->nonce && c->nonce_exp <= now_s) {
            /* expired before its batch: not applied, and nothing to record (see above) */
            c->nonce_taken = 1;
            c->status = AC_EC_SIG_STALE;
            c->done(c);
            continue;
        }
        if (c->nonce_in_batch < 0 || (c->nonce && !c->nonce_in_batch && !c->nonce_taken)) {
            /* a replay; marked taken (it is recorded, by whoever used it first) */
            c->nonce_in_batch = 0;
            c->nonce_taken = 1;
            c->status = AC_EC_SIG_REPLAYED;
            atomic_fetch_add(&s->stats.nonces_replayed, 1);
            c->done(c);
            continue;
        }
        if (c->nonce && !c->nonce_in_batch) atomic_fetch_add(&s->stats.nonces_taken, 1);
        *tail = c;
        tail = &c->next;
    }
    return keep;
}

/* The rows of the nonces memory decided (decide_nonces), added to the batch's transaction, in
 * sorted order (the lock order of every inserter). Returns 0, or -1 when out of memory. */
static int put_nonces(struct ac_sequencer *s, struct ac_apply *ap)
{
    if (s->put_arr[0].len <= 1) return 0; /* "{" alone, or reset: no row */
    const char *vals[3];
    for (int i = 0; i < 3; i++) {
        ac_buf_adds(&s->put_arr[i], "}");
        if (s->put_arr[i].oom) return -1;
        vals[i] = ac_buf_str(&s->put_arr[i]);
    }
    return ac_apply_stmt(ap, "nonce_put", 3, vals);
}

/* Run as leader until the connection fails or stop. Returns 1 on stop, 0 to reconnect.
 *
 * Batches are pipelined: once a batch's write is sent (BEGIN ... COMMIT in one pipeline), the next
 * batch is taken, applied on top of it in memory and sent behind it on the same connection,
 * while PostgreSQL executes and commits the first; then the first one's outcome is read and its
 * callers complete. So the sequencer's own work (applying, building evidence, completing callers)
 * overlaps the database's instead of alternating with it. A batch applied on top of another
 * must not commit unless that one did: each pipelined batch starts with the guard
 * ac_seq_advance(partition, n, n + 1) (sql/0014), which fails when the batch before it rolled
 * back. Any
 * failure fails the batch and everything after it, and the sequencer reconnects and reloads from
 * the database, as before. What callers are told is unchanged: only after their batch is
 * durable. What readers see is unchanged too: a batch that would publish something (a new
 * binding, a mandate, a revocation: struct ac_seq_domain.publishes) is waited for before its
 * changes are made visible, and before anything else is applied. */
static int lead(struct ac_sequencer *s, PGconn *conn, struct ac_state *st, struct ac_apply *ap,
                long long head, uint64_t nonce_epoch)
{
    double last_ping = mono_seconds();
    struct inflight fl = {0};
    for (;;) {
        int stop = 0;
        struct ac_cmd *batch = next_batch(s, st, &stop, fl.active);
        if (stop) {
            finish(s, conn, &fl, 1, NULL);
            fail_all(batch, AC_EC_NOT_LEADER);
            return 1;
        }
        ac_buf_reset(&s->put_arr[0]); /* nothing of an earlier batch's */
        if (batch != NULL && has_nonces(batch)) {
            /* The nonces first: memory's verdicts go with the batch; the others are taken on
             * this connection, behind the batch in flight, and this batch's COMMIT, later in the
             * WAL, makes them durable (sql/0015). Measured against a second connection that took
             * them while the batch in flight committed: this used less CPU a payment and settled
             * more per second (docs/operations.md). */
            int failed;
            batch = decide_nonces(s, conn, &fl, batch, nonce_epoch, &failed);
            if (failed) return 0;
            if (batch == NULL) continue;
        }
        if (batch == NULL && fl.active) {
            /* nothing else queued: the batch in flight is what to wait for */
            if (finish(s, conn, &fl, 1, NULL) != 0) return 0;
            continue;
        }
        if (batch == NULL && next_deadline(s, st) > now_us(s)) {
            /* Idle: a round trip now and then, so a session that died while idle (database
             * restarted, connection cut) is noticed here and not by the next client's write;
             * until it is back, /readyz reports not ready. */
            double t = mono_seconds();
            if (t - last_ping >= 1.0) {
                last_ping = t;
                if (ac_db_ping(conn) != AC_QS_ONE_RESULT) return 0;
            }
            continue;
        }
        ac_state_begin(st);
        apply_reset(ap);
        int64_t now = now_us(s);
        ap->now = now;
        if (ac_state_expire(st, now) < 0) {
            ac_state_rollback(st);
            fail_all(batch, AC_EC_INTERNAL);
            continue;
        }
        if (put_nonces(s, ap) != 0) ap->oom = 1;
        if (s->has_domain && s->domain.tick && s->domain.tick(s->domain.cls, ap)) ap->oom = 1;
        size_t items = 0;
        for (struct ac_cmd *c = batch; c; c = c->next) {
            apply(ap, c);
            items += c->n;
        }
        if (s->has_domain && s->domain.flush && !ap->oom && s->domain.flush(s->domain.cls, ap))
            ap->oom = 1;
        const struct ac_changes *ch = ap->oom ? NULL : ac_state_changes(st);
        if (ch == NULL) {
            /* out of memory: ops may have changed the domain state, so reload everything */
            abandon(s, st);
            finish(s, conn, &fl, 1, NULL); /* the batch in flight: its callers learn its outcome */
            fail_all(batch, AC_EC_INTERNAL);
            return 0;
        }
        int seals = has_seals(batch);
        if (changes_empty(ch) && ap->nx == 0 && !seals) {
            /* nothing to write; but its answers may rest on the batch in flight */
            if (finish(s, conn, &fl, 1, NULL) != 0) {
                abandon(s, st);
                atomic_fetch_add(&s->stats.batches_failed, 1);
                fail_all(batch, AC_EC_BATCH_FAILED);
                return 0;
            }
            ac_state_commit(st);
            domain_end(s, 1);
            complete(s, batch, items);
            continue;
        }
        double t0 = mono_seconds();
        if (seals || s->cfg.serial) {
            /* one at a time: the batch in flight first, then this one, waited for */
            if (finish(s, conn, &fl, 1, NULL) != 0) {
                apply_reset(ap);
                abandon(s, st);
                atomic_fetch_add(&s->stats.batches_failed, 1);
                fail_all(batch, AC_EC_BATCH_FAILED);
                return 0;
            }
            t0 = mono_seconds();
            enum ac_qs qs = seals ? write_sealed(conn, ch, ap, batch)
                                  : ac_db_write_batch(conn, ch, ap->x, ap->nx);
            apply_reset(ap);
            if (qs < 0) {
                abandon(s, st);
                batch_failed(s, batch, qs);
                /* The commit's outcome may be unknown: the database is the system of record, so
                 * reconnect and reload rather than trust memory. */
                return 0;
            }
            ac_hist_observe(&s->stats.commit_seconds, mono_seconds() - t0);
            ac_state_commit(st);
            domain_end(s, 1);
            complete(s, batch, items);
            continue;
        }
        /* pipelined: send it behind the batch in flight */
        int sent = ac_db_write_send(conn, s->cfg.partition, ch, ap->x, ap->nx, head, head + 1);
        apply_reset(ap);
        if (sent < 0) {
            abandon(s, st);
            batch_failed(s, batch, AC_QS_SOFT_ERROR);
            finish(s, conn, &fl, 0, NULL);
            return 0;
        }
        head++;
        struct inflight cur = {.active = 1, .batch = batch, .items = items, .sent = sent, .t0 = t0};
        if (finish(s, conn, &fl, 0, NULL) != 0) {
            /* the batch before it failed, so it fails on its guard: read that, then reload */
            finish(s, conn, &cur, 1, st);
            return 0;
        }
        if (s->has_domain && (s->domain.publishes == NULL || s->domain.publishes(s->domain.cls))) {
            /* readers would see its changes: not before they are durable */
            if (finish(s, conn, &cur, 1, st) != 0) return 0;
            continue;
        }
        /* nothing of it is visible outside the sequencer: go on applying on top of it */
        ac_state_commit(st);
        domain_end(s, 1);
        fl = cur;
    }
}

static void set_leader(struct ac_sequencer *s, int v)
{
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->leader) != v) atomic_fetch_add(&s->stats.leader_changes, 1);
    atomic_store(&s->leader, v);
    pthread_cond_broadcast(&s->leader_cv);
    pthread_mutex_unlock(&s->mu);
}

static int stopping(struct ac_sequencer *s)
{
    pthread_mutex_lock(&s->mu);
    int v = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void *run(void *arg)
{
    prctl(PR_SET_NAME, "ac-sequencer", 0, 0, 0); /* for top -H, perf --sort comm: best effort */
    struct ac_sequencer *s = arg;
    int warned_standby = 0;
    while (!stopping(s)) {
        char err[512];
        PGconn *conn = ac_db_connect(s->db_url, AC_DB_WRITER, err, sizeof err);
        if (conn == NULL) {
            atomic_store(&s->db_up, 0);
            fail_all(take_all(s), AC_EC_DB_UNAVAILABLE);
            fprintf(stderr, "sequencer: %s", err);
            nap(s, 1000);
            continue;
        }
        atomic_store(&s->db_up, 1);
        /* standby until the lease is ours */
        enum ac_qs qs;
        while ((qs = ac_db_try_lease(conn, s->cfg.partition)) == AC_QS_NO_RESULTS && !stopping(s)) {
            if (!warned_standby++)
                fprintf(stderr, "sequencer: writer lease held elsewhere; standing by\n");
            fail_all(take_all(s), AC_EC_NOT_LEADER);
            nap(s, 500);
        }
        if (qs != AC_QS_ONE_RESULT) {
            PQfinish(conn);
            continue;
        }
        warned_standby = 0;
        struct ac_state *st = ac_state_new();
        long long head = 0;
        if (st == NULL || ac_db_load_state(conn, st) != AC_QS_ONE_RESULT ||
            (s->has_domain && s->domain.load && s->domain.load(s->domain.cls, conn) != 0) ||
            ac_db_seq_head(conn, s->cfg.partition, &head) != AC_QS_ONE_RESULT) {
            fprintf(stderr, "sequencer: loading state failed: %s", PQerrorMessage(conn));
            ac_state_free(st);
            PQfinish(conn);
            fail_all(take_all(s), AC_EC_DB_UNAVAILABLE);
            nap(s, 1000);
            continue;
        }
        /* the replay cache's memory becomes the authority for what it reserves from now on */
        uint64_t nonce_epoch = 0;
        long nonces = 0;
        double t_load = mono_seconds();
        if (s->cfg.nonces != NULL) {
            nonces = ac_nonce_cache_load(s->cfg.nonces, conn, now_us(s) / 1000000, &nonce_epoch);
            if (nonces == AC_NONCE_LOAD_TOO_MANY)
                fprintf(stderr, "sequencer: more live nonces than half the replay cache "
                                "(nonce-cache): each batch asks the database\n");
            else if (nonces < 0)
                fprintf(stderr,
                        "sequencer: loading the live nonces failed (%s): each batch "
                        "asks the database\n",
                        PQerrorMessage(conn));
            else
                atomic_fetch_add(&s->stats.nonces_loaded, (uint64_t)nonces);
        }
        fprintf(stderr,
                "sequencer: leader; %zu accounts, %zu transfers, %ld live nonces (%.0f ms) "
                "loaded\n",
                ac_state_n_accounts(st), ac_state_n_transfers(st), nonces < 0 ? 0 : nonces,
                (mono_seconds() - t_load) * 1000);
        set_leader(s, 1);
        struct ac_apply ap = {.st = st,
                              .domain = s->has_domain ? s->domain.cls : NULL,
                              .hooks = s->has_domain ? &s->domain : NULL};
        int stop = lead(s, conn, st, &ap, head, nonce_epoch);
        if (s->cfg.nonces != NULL) ac_nonce_cache_end_epoch(s->cfg.nonces, nonce_epoch);
        apply_reset(&ap);
        free(ap.x);
        set_leader(s, 0);
        ac_state_free(st);
        PQfinish(conn); /* releases the lease */
        if (stop) break;
        fail_all(take_all(s), AC_EC_DB_UNAVAILABLE);
        nap(s, 200);
    }
    fail_all(take_all(s), AC_EC_NOT_LEADER);
    ac_db_thread_cleanup();
    return NULL;
}

struct ac_sequencer *ac_seq_start(const struct ac_seq_config *cfg)
{
    struct ac_sequencer *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->cfg = *cfg;
    if (cfg->domain) {
        s->domain = *cfg->domain;
        s->has_domain = 1;
    }
    s->cfg.domain = NULL;
    if (s->cfg.max_batch_items == 0) s->cfg.max_batch_items = 8192;
    if (s->cfg.max_queue == 0) s->cfg.max_queue = 65536;
    if (s->cfg.clock_us == NULL) s->cfg.clock_us = realtime_us;
    s->db_url = strdup(cfg->db_url ? cfg->db_url : "");
    ac_hist_init(&s->stats.batch_items, batch_bounds, sizeof batch_bounds / sizeof *batch_bounds);
    ac_hist_init(&s->stats.commit_seconds, commit_bounds,
                 sizeof commit_bounds / sizeof *commit_bounds);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->leader_cv, NULL);
    if (s->db_url == NULL || pthread_create(&s->thread, NULL, run, s) != 0) {
        free(s->db_url);
        free(s);
        return NULL;
    }
    return s;
}

void ac_seq_stop(struct ac_sequencer *s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->mu);
    int joined = s->joined;
    s->stopping = 1;
    s->joined = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!joined) pthread_join(s->thread, NULL);
}

void ac_seq_free(struct ac_sequencer *s)
{
    if (s == NULL) return;
    ac_seq_stop(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->leader_cv);
    for (int i = 0; i < 3; i++)
        ac_buf_free(&s->put_arr[i]);
    free(s->db_url);
    free(s);
}

enum ac_ec ac_seq_submit(struct ac_sequencer *s, struct ac_cmd *cmd)
{
    cmd->next = NULL;
    pthread_mutex_lock(&s->mu);
    enum ac_ec ec = AC_EC_OK;
    if (s->stopping || !atomic_load(&s->leader))
        ec = atomic_load(&s->db_up) ? AC_EC_NOT_LEADER : AC_EC_DB_UNAVAILABLE;
    else if (s->queued >= s->cfg.max_queue)
        ec = AC_EC_OVERLOADED;
    if (ec == AC_EC_OK) {
        if (s->tail)
            s->tail->next = cmd;
        else
            s->head = cmd;
        s->tail = cmd;
        s->queued++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return ec;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    void *orig_cls;
};

static void wake(struct ac_cmd *c)
{
    struct waiter *w = c->cls;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

enum ac_ec ac_seq_run(struct ac_sequencer *s, struct ac_cmd *cmd)
{
    struct waiter w = {.done = 0, .orig_cls = cmd->cls};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    cmd->done = wake;
    cmd->cls = &w;
    enum ac_ec ec = ac_seq_submit(s, cmd);
    if (ec == AC_EC_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        ec = cmd->status;
    } else {
        cmd->status = ec;
    }
    cmd->cls = w.orig_cls;
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return ec;
}

size_t ac_seq_queued(struct ac_sequencer *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->queued;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int ac_seq_is_leader(const struct ac_sequencer *s)
{
    return atomic_load(&s->leader);
}

struct ac_seq_stats *ac_seq_stats(struct ac_sequencer *s)
{
    return &s->stats;
}

int ac_seq_wait_leader(struct ac_sequencer *s, int timeout_ms)
{
    struct timespec ts = deadline_after_ms(timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->leader))
        if (pthread_cond_timedwait(&s->leader_cv, &s->mu, &ts) == ETIMEDOUT) break;
    int v = atomic_load(&s->leader);
    pthread_mutex_unlock(&s->mu);
    return v;
}
