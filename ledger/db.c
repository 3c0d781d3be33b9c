#include "ledger/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/nonce.h"
#include "protocol/buf.h"

/* ---- statements ------------------------------------------------------------------------------ */

#define stmt ac_db_stmt

/* Statements other modules (identity, evidence, ...) registered for each role. */
#define MAX_REGISTERED 32
static struct {
    enum ac_db_role role;
    const struct ac_db_stmt *s;
    size_t n;
} registered[MAX_REGISTERED];
static size_t n_registered;

int ac_db_register(enum ac_db_role role, const struct ac_db_stmt *s, size_t n)
{
    for (size_t i = 0; i < n_registered; i++)
        if (registered[i].role == role && registered[i].s == s) return 0;
    if (n_registered == MAX_REGISTERED) return -1;
    registered[n_registered].role = role;
    registered[n_registered].s = s;
    registered[n_registered].n = n;
    n_registered++;
    return 0;
}

static const struct stmt writer_stmts[] = {
    {"ping", "select 1", 0},
    {"lease", "select pg_try_advisory_lock(7340, $1::int)", 1},
    {"begin", "begin", 0},
    {"commit", "commit", 0},
    /* the partition's batch counter, its row created on first use (sql/0014) */
    {"seq_head",
     "with ins as (insert into ac_seq_head (partition, batch) values ($1::int4, 0) "
     "on conflict (partition) do nothing returning batch) "
     "select batch from ins union all select batch from ac_seq_head where partition = $1::int4",
     1},
    {"seq_advance", "select ac_seq_advance($1::int4, $2::int8, $3::int8)", 3},
    {"nonce_take",
     "select taken_keyid, taken_nonce from ac_nonce_take($1::text[], $2::text[], $3::int8[], "
     "$4::int8)",
     4},
    /* the nonces memory decided (keys/nonce.h, ac_nonce_cache_load), in the batch's own
     * transaction: a row there already was written for a request that had no effect (another
     * server's refusal) or has expired; it is kept at least as long as this use needs */
    {"nonce_put",
     "insert into ac_nonces as n (keyid, nonce, expires_at) "
     "select k, v, e from unnest($1::text[], $2::text[], $3::int8[]) as t(k, v, e) "
     "on conflict (keyid, nonce) do update set expires_at = greatest(n.expires_at, "
     "excluded.expires_at)",
     3},
    {"ins_accounts",
     "insert into ac_accounts (id, asset, owner, flags) "
     "select * from unnest($1::text[], $2::text[], $3::text[], $4::int4[])",
     4},
    {"ins_transfers",
     "insert into ac_transfers (id, debit_account, credit_account, asset, amount, flags, "
     "pending_id, timeout_s, code, pstate, digest, created_us) "
     "select a, b, c, d, e, f, nullif(g, ''), h, i, j, decode(k, 'hex'), l from unnest("
     "$1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int4[], $7::text[], "
     "$8::int4[], $9::int4[], $10::int2[], $11::text[], $12::int8[]) as t(a, b, c, d, e, f, g, h, "
     "i, j, k, l)",
     12},
    {"ins_failures",
     "insert into ac_transfer_failures (id, digest, result, created_us) "
     "select a, decode(b, 'hex'), c, d from unnest($1::text[], $2::text[], $3::text[], "
     "$4::int8[]) as t(a, b, c, d)",
     4},
    {"upd_balances",
     "update ac_accounts a set debits_pending = t.dp, debits_posted = t.dpo, "
     "credits_pending = t.cp, credits_posted = t.cpo from unnest($1::text[], $2::int8[], "
     "$3::int8[], $4::int8[], $5::int8[]) as t(id, dp, dpo, cp, cpo) where a.id = t.id",
     5},
    {"upd_pstate",
     "update ac_transfers x set pstate = t.s from unnest($1::text[], $2::int2[]) as t(id, s) "
     "where x.id = t.id",
     2},
    {"load_accounts",
     "select id, asset, owner, flags, debits_pending, debits_posted, credits_pending, "
     "credits_posted from ac_accounts",
     0},
    {"load_transfers",
     "select id, debit_account, credit_account, asset, amount, flags, coalesce(pending_id, ''), "
     "timeout_s, code, pstate, encode(digest, 'hex'), created_us from ac_transfers order by seq",
     0},
    {"load_failures",
     "select id, encode(digest, 'hex'), result, created_us from ac_transfer_failures", 0},
};

static const struct stmt reader_stmts[] = {
    {"ping", "select 1", 0},
    {"asset_ins",
     "insert into ac_assets (code, scale) values ($1, $2::int2) on conflict (code) do nothing "
     "returning scale",
     2},
    {"asset_get", "select scale from ac_assets where code = $1", 1},
    {"account_get",
     "select id, asset, owner, flags, debits_pending, debits_posted, credits_pending, "
     "credits_posted from ac_accounts where id = $1",
     1},
    {"transfer_get",
     "select id, debit_account, credit_account, asset, amount, flags, coalesce(pending_id, ''), "
     "timeout_s, code, pstate, encode(digest, 'hex'), created_us from ac_transfers where id = $1",
     1},
    {"failure_get",
     "select id, encode(digest, 'hex'), result, created_us from ac_transfer_failures where id = $1",
     1},
};

int ac_db_prepare(PGconn *c, const struct ac_db_stmt *s, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *r = PQprepare(c, s[i].name, s[i].sql, s[i].nparams, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) snprintf(err, errlen, "prepare %s: %s", s[i].name, PQerrorMessage(c));
        PQclear(r);
        if (!ok) return -1;
    }
    return 0;
}

PGconn *ac_db_connect(const char *url, enum ac_db_role role, char *err, size_t errlen)
{
    /* keepalives and a TCP user timeout bound how long a dead peer can stall a call over TCP
     * (libpq ignores them on a Unix socket, which the kernel closes when the server dies) */
    const char *keys[] = {"dbname",
                          "connect_timeout",
                          "application_name",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          NULL};
    const char *vals[] = {
        url,     "5", role == AC_DB_WRITER ? "agentclear-sequencer" : "agentclear", "5", "2", "3",
        "10000", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        snprintf(err, errlen, "connect: %s", c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "set timezone = 'UTC'; set client_min_messages = warning");
    PQclear(r);
    /* Prepare what the schema allows: statements on tables that do not exist yet (before the
     * first migrate) fail to prepare, so migrate-only connections ask for no role. */
    if (role == AC_DB_WRITER &&
        ac_db_prepare(c, writer_stmts, sizeof writer_stmts / sizeof writer_stmts[0], err, errlen)) {
        PQfinish(c);
        return NULL;
    }
    if (role == AC_DB_READER &&
        ac_db_prepare(c, reader_stmts, sizeof reader_stmts / sizeof reader_stmts[0], err, errlen)) {
        PQfinish(c);
        return NULL;
    }
    for (size_t i = 0; i < n_registered; i++) {
        if (registered[i].role != role) continue;
        if (ac_db_prepare(c, registered[i].s, registered[i].n, err, errlen)) {
            PQfinish(c);
            return NULL;
        }
    }
    return c;
}

int ac_db_ok(PGconn *c)
{
    return c != NULL && PQstatus(c) == CONNECTION_OK;
}

enum ac_qs ac_db_classify(PGconn *c, const PGresult *r)
{
    if (PQstatus(c) != CONNECTION_OK || r == NULL) return AC_QS_SOFT_ERROR;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (st == NULL) return AC_QS_SOFT_ERROR;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0) return AC_QS_SOFT_ERROR;
    /* class 08 connection exception, 57P0x admin shutdown / crash, 53 insufficient resources */
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strncmp(st, "53", 2) == 0)
        return AC_QS_SOFT_ERROR;
    return AC_QS_HARD_ERROR;
}

enum ac_qs ac_db_exec(PGconn *c, const char *name, int n, const char *const *vals, PGresult **out)
{
    *out = NULL; /* defined on every path (and -O2 -Wmaybe-uninitialized agrees) */
    PGresult *r = PQexecPrepared(c, name, n, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        enum ac_qs qs = ac_db_classify(c, r);
        PQclear(r);
        return qs;
    }
    *out = r;
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_db_try_lease(PGconn *c, int partition)
{
    char p[16];
    snprintf(p, sizeof p, "%d", partition);
    const char *v[] = {p};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "lease", 1, v, &r);
    if (qs < 0) return qs;
    int got = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return got ? AC_QS_ONE_RESULT : AC_QS_NO_RESULTS;
}

/* ---- row decoding ------------------------------------------------------------------------------
 */

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

static void account_from_row(const PGresult *r, int i, struct ac_account *a)
{
    memset(a, 0, sizeof *a);
    copy_field(a->id, sizeof a->id, PQgetvalue(r, i, 0));
    copy_field(a->asset, sizeof a->asset, PQgetvalue(r, i, 1));
    copy_field(a->owner, sizeof a->owner, PQgetvalue(r, i, 2));
    a->flags = (uint32_t)strtoul(PQgetvalue(r, i, 3), NULL, 10);
    a->debits_pending = strtoll(PQgetvalue(r, i, 4), NULL, 10);
    a->debits_posted = strtoll(PQgetvalue(r, i, 5), NULL, 10);
    a->credits_pending = strtoll(PQgetvalue(r, i, 6), NULL, 10);
    a->credits_posted = strtoll(PQgetvalue(r, i, 7), NULL, 10);
}

static void hex_to_digest(const char *hex, uint8_t out[16])
{
    memset(out, 0, 16);
    for (int i = 0; i < 16 && hex[2 * i] && hex[2 * i + 1]; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void transfer_from_row(const PGresult *r, int i, struct ac_transfer_row *t)
{
    memset(t, 0, sizeof *t);
    copy_field(t->id, sizeof t->id, PQgetvalue(r, i, 0));
    copy_field(t->debit, sizeof t->debit, PQgetvalue(r, i, 1));
    copy_field(t->credit, sizeof t->credit, PQgetvalue(r, i, 2));
    copy_field(t->asset, sizeof t->asset, PQgetvalue(r, i, 3));
    t->amount = strtoll(PQgetvalue(r, i, 4), NULL, 10);
    t->flags = (uint32_t)strtoul(PQgetvalue(r, i, 5), NULL, 10);
    copy_field(t->pending_id, sizeof t->pending_id, PQgetvalue(r, i, 6));
    t->timeout_s = (uint32_t)strtoul(PQgetvalue(r, i, 7), NULL, 10);
    t->code = (uint16_t)strtoul(PQgetvalue(r, i, 8), NULL, 10);
    t->pstate = (enum ac_pstate)atoi(PQgetvalue(r, i, 9));
    hex_to_digest(PQgetvalue(r, i, 10), t->digest);
    t->created_us = strtoll(PQgetvalue(r, i, 11), NULL, 10);
    t->result = AC_EC_OK;
}

static void failure_from_row(const PGresult *r, int i, struct ac_transfer_row *t)
{
    memset(t, 0, sizeof *t);
    copy_field(t->id, sizeof t->id, PQgetvalue(r, i, 0));
    hex_to_digest(PQgetvalue(r, i, 1), t->digest);
    enum ac_ec ec = ac_ec_from_code(PQgetvalue(r, i, 2));
    t->result = ec == AC_EC__COUNT ? AC_EC_INTERNAL : ec;
    t->created_us = strtoll(PQgetvalue(r, i, 3), NULL, 10);
}

/* ---- load -------------------------------------------------------------------------------------
 */

/* Stream a prepared query's rows one at a time (single-row mode), so a large ledger does not
 * need a second full copy in memory while loading. */
enum ac_qs ac_db_stream(PGconn *c, const char *name, int (*each)(void *cls, const PGresult *r),
                        void *cls)
{
    if (PQsendQueryPrepared(c, name, 0, NULL, NULL, NULL, 0) != 1) return AC_QS_SOFT_ERROR;
    PQsetSingleRowMode(c);
    enum ac_qs qs = AC_QS_ONE_RESULT;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_SINGLE_TUPLE) {
            if (qs == AC_QS_ONE_RESULT && each(cls, r) != 0) qs = AC_QS_HARD_ERROR;
        } else if (s != PGRES_TUPLES_OK) {
            qs = ac_db_classify(c, r);
        }
        PQclear(r);
    }
    return qs;
}

static int load_one_account(void *cls, const PGresult *r)
{
    struct ac_state *st = cls;
    struct ac_account a;
    account_from_row(r, 0, &a);
    return ac_state_load_account(st, &a);
}

static int load_one_transfer(void *cls, const PGresult *r)
{
    struct ac_state *st = cls;
    struct ac_transfer_row t;
    transfer_from_row(r, 0, &t);
    return ac_state_load_transfer(st, &t);
}

static int load_one_failure(void *cls, const PGresult *r)
{
    struct ac_state *st = cls;
    struct ac_transfer_row t;
    failure_from_row(r, 0, &t);
    return ac_state_load_transfer(st, &t);
}

enum ac_qs ac_db_load_state(PGconn *c, struct ac_state *st)
{
    PGresult *r = PQexec(c, "begin isolation level repeatable read read only");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    enum ac_qs qs = ok ? AC_QS_ONE_RESULT : ac_db_classify(c, r);
    PQclear(r);
    if (!ok) return qs;
    qs = ac_db_stream(c, "load_accounts", load_one_account, st);
    if (qs > 0) qs = ac_db_stream(c, "load_transfers", load_one_transfer, st);
    if (qs > 0) qs = ac_db_stream(c, "load_failures", load_one_failure, st);
    r = PQexec(c, qs > 0 ? "commit" : "rollback");
    PQclear(r);
    return qs;
}

/* ---- batch write ----------------------------------------------------------------------------- */

/* Text-format array literal builder. Elements are always quoted; every value we put in an array
 * is an id, asset code, hex string or number, none of which contains '"' or '\\'. */
struct arr {
    struct ac_buf b;
    int n;
};

static void arr_start(struct arr *a)
{
    ac_buf_reset(&a->b);
    ac_buf_add(&a->b, "{", 1);
    a->n = 0;
}

static void arr_str(struct arr *a, const char *s)
{
    a->n++;
    ac_buf_array_str(&a->b, s);
}

/* A number: eight per transfer, on the sequencer thread (ac_buf_add_i64: no printf). */
static void arr_i64(struct arr *a, long long v)
{
    if (a->n++) ac_buf_add(&a->b, ",", 1);
    ac_buf_add_i64(&a->b, v);
}

static void arr_end(struct arr *a)
{
    ac_buf_add(&a->b, "}", 1);
}

static void digest_hex(const uint8_t d[16], char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[32] = '\0';
}

/* Per-thread scratch arrays: the sequencer is one thread, so these are reused across batches. */
#define NARR 12
static _Thread_local struct arr scratch[NARR];

static int send_stmt(PGconn *c, const char *name, int n)
{
    const char *vals[NARR];
    for (int i = 0; i < n; i++) {
        if (scratch[i].b.oom) return -1;
        vals[i] = ac_buf_str(&scratch[i].b);
    }
    return PQsendQueryPrepared(c, name, n, vals, NULL, NULL, 0) == 1 ? 0 : -1;
}

static _Thread_local char last_error[256];

const char *ac_db_last_error(void)
{
    return last_error;
}

void ac_db_thread_cleanup(void)
{
    for (int i = 0; i < NARR; i++)
        ac_buf_free(&scratch[i].b);
}

static void start_arrays(int n)
{
    for (int i = 0; i < n; i++)
        arr_start(&scratch[i]);
}

static void end_arrays(int n)
{
    for (int i = 0; i < n; i++)
        arr_end(&scratch[i]);
}

/* Queue one batch's statements -- [BEGIN] [the guard ac_seq_advance(partition, prev, next), guard
 * holding the three as text, or NULL] the change set, the extras [COMMIT] -- then a sync, in
 * pipeline mode (which the caller entered).
 * Returns how many statements were queued (each yields one result before the sync's); *failed
 * is set when one could not be queued (the rest were skipped, the sync still sent if possible). */
static int send_batch(PGconn *c, const struct ac_changes *ch, const struct ac_db_extra *x,
                      size_t nx, int begin, int commit, const char *const *guard, int *failed)
{
    static const struct ac_changes none;
    if (ch == NULL) ch = &none;
    int sent = 0; /* statements queued, each yields one result */
    int fail = 0;
    if (begin) {
        fail = PQsendQueryPrepared(c, "begin", 0, NULL, NULL, NULL, 0) != 1;
        sent++;
    }
    if (!fail && guard) {
        fail = PQsendQueryPrepared(c, "seq_advance", 3, guard, NULL, NULL, 0) != 1;
        sent++;
    }

    if (!fail && ch->n_new_accounts) {
        start_arrays(4);
        for (size_t i = 0; i < ch->n_new_accounts; i++) {
            const struct ac_account *a = ch->new_accounts[i];
            arr_str(&scratch[0], a->id);
            arr_str(&scratch[1], a->asset);
            arr_str(&scratch[2], a->owner);
            arr_i64(&scratch[3], a->flags);
        }
        end_arrays(4);
        fail = send_stmt(c, "ins_accounts", 4) != 0;
        sent++;
    }

    size_t n_ok = 0, n_failed = 0;
    for (size_t i = 0; i < ch->n_transfers; i++)
        ch->transfers[i].result == AC_EC_OK ? n_ok++ : n_failed++;
    if (!fail && n_ok) {
        start_arrays(12);
        for (size_t i = 0; i < ch->n_transfers; i++) {
            const struct ac_transfer_row *t = &ch->transfers[i];
            if (t->result != AC_EC_OK) continue;
            char hex[33];
            digest_hex(t->digest, hex);
            arr_str(&scratch[0], t->id);
            arr_str(&scratch[1], t->debit);
            arr_str(&scratch[2], t->credit);
            arr_str(&scratch[3], t->asset);
            arr_i64(&scratch[4], t->amount);
            arr_i64(&scratch[5], t->flags);
            arr_str(&scratch[6], t->pending_id);
            arr_i64(&scratch[7], t->timeout_s);
            arr_i64(&scratch[8], t->code);
            arr_i64(&scratch[9], t->pstate);
            arr_str(&scratch[10], hex);
            arr_i64(&scratch[11], t->created_us);
        }
        end_arrays(12);
        fail = send_stmt(c, "ins_transfers", 12) != 0;
        sent++;
    }
    if (!fail && n_failed) {
        start_arrays(4);
        for (size_t i = 0; i < ch->n_transfers; i++) {
            const struct ac_transfer_row *t = &ch->transfers[i];
            if (t->result == AC_EC_OK) continue;
            char hex[33];
            digest_hex(t->digest, hex);
            arr_str(&scratch[0], t->id);
            arr_str(&scratch[1], hex);
            arr_str(&scratch[2], ac_ec_code(t->result));
            arr_i64(&scratch[3], t->created_us);
        }
        end_arrays(4);
        fail = send_stmt(c, "ins_failures", 4) != 0;
        sent++;
    }
    if (!fail && ch->n_dirty_accounts) {
        start_arrays(5);
        for (size_t i = 0; i < ch->n_dirty_accounts; i++) {
            const struct ac_account *a = ch->dirty_accounts[i];
            arr_str(&scratch[0], a->id);
            arr_i64(&scratch[1], a->debits_pending);
            arr_i64(&scratch[2], a->debits_posted);
            arr_i64(&scratch[3], a->credits_pending);
            arr_i64(&scratch[4], a->credits_posted);
        }
        end_arrays(5);
        fail = send_stmt(c, "upd_balances", 5) != 0;
        sent++;
    }
    if (!fail && ch->n_pending_changes) {
        start_arrays(2);
        for (size_t i = 0; i < ch->n_pending_changes; i++) {
            arr_str(&scratch[0], ch->pending_changes[i].id);
            arr_i64(&scratch[1], ch->pending_changes[i].pstate);
        }
        end_arrays(2);
        fail = send_stmt(c, "upd_pstate", 2) != 0;
        sent++;
    }
    for (size_t i = 0; i < nx && !fail; i++) {
        fail = PQsendQueryPrepared(c, x[i].name, x[i].n, x[i].vals, NULL, NULL, 0) != 1;
        sent++;
    }
    if (!fail && commit) {
        fail = PQsendQueryPrepared(c, "commit", 0, NULL, NULL, NULL, 0) != 1;
        sent++;
    }
    if (PQpipelineSync(c) != 1) fail = 1;
    *failed = fail;
    return sent;
}

/* Read one queued batch's results, up to and including its sync; each successful result with
 * rows is shown to rows(cls, result) when rows is not NULL. */
static enum ac_qs recv_batch(PGconn *c, int sent, int fail,
                             void (*rows)(void *cls, const PGresult *r), void *cls)
{
    /* Read every result: one per statement sent (each followed by a NULL), then the sync. */
    enum ac_qs qs = fail ? AC_QS_SOFT_ERROR : AC_QS_ONE_RESULT;
    int results = 0, synced = 0;
    snprintf(last_error, sizeof last_error, "%s", fail ? PQerrorMessage(c) : "");
    while (!synced) {
        PGresult *r = PQgetResult(c);
        if (r == NULL) {
            if (PQstatus(c) != CONNECTION_OK) {
                qs = AC_QS_SOFT_ERROR;
                break;
            }
            if (results >= sent + 1) break; /* defensive: never spin */
            continue;
        }
        results++;
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_PIPELINE_SYNC) {
            synced = 1;
        } else if (s == PGRES_PIPELINE_ABORTED) {
            if (qs > 0) qs = AC_QS_HARD_ERROR;
        } else if (s == PGRES_TUPLES_OK && rows != NULL) {
            rows(cls, r);
        } else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
            enum ac_qs e = ac_db_classify(c, r);
            snprintf(last_error, sizeof last_error, "%s", PQresultErrorMessage(r));
            if (qs > 0 || e == AC_QS_SOFT_ERROR) qs = e;
        }
        PQclear(r);
    }
    return qs;
}

/* The batch write: BEGIN (when begin), the ledger's change set (when ch), the extras, COMMIT (when
 * commit), one sync, and its results read. On any error the transaction is rolled back. */
static enum ac_qs write_pipeline(PGconn *c, const struct ac_changes *ch,
                                 const struct ac_db_extra *x, size_t nx, int begin, int commit)
{
    if (PQenterPipelineMode(c) != 1) return AC_QS_SOFT_ERROR;
    int fail = 0;
    int sent = send_batch(c, ch, x, nx, begin, commit, NULL, &fail);
    enum ac_qs qs = recv_batch(c, sent, fail, NULL, NULL);
    if (PQstatus(c) == CONNECTION_OK) {
        PQexitPipelineMode(c);
        if (qs < 0) {
            /* the pipeline aborted inside the transaction block: make sure nothing is left open */
            PGresult *r = PQexec(c, "rollback");
            PQclear(r);
        }
    } else {
        qs = AC_QS_SOFT_ERROR;
    }
    return qs;
}

enum ac_qs ac_db_write_batch(PGconn *c, const struct ac_changes *ch, const struct ac_db_extra *x,
                             size_t nx)
{
    return write_pipeline(c, ch, x, nx, 1, 1);
}

enum ac_qs ac_db_write_open(PGconn *c, const struct ac_changes *ch, const struct ac_db_extra *x,
                            size_t nx)
{
    return write_pipeline(c, ch, x, nx, 1, 0);
}

enum ac_qs ac_db_write_finish(PGconn *c, const struct ac_db_extra *x, size_t nx)
{
    return write_pipeline(c, NULL, x, nx, 0, 1);
}

int ac_db_write_send(PGconn *c, int partition, const struct ac_changes *ch,
                     const struct ac_db_extra *x, size_t nx, long long prev_batch,
                     long long next_batch)
{
    if (PQpipelineStatus(c) == PQ_PIPELINE_OFF && PQenterPipelineMode(c) != 1) {
        snprintf(last_error, sizeof last_error, "%s", PQerrorMessage(c));
        return -1;
    }
    char p[16], a[24], b[24];
    snprintf(p, sizeof p, "%d", partition);
    snprintf(a, sizeof a, "%lld", prev_batch);
    snprintf(b, sizeof b, "%lld", next_batch);
    const char *const guard[] = {p, a, b};
    int fail = 0;
    int sent = send_batch(c, ch, x, nx, 1, 1, guard, &fail);
    /* push it to the server now: the point is that it executes while we apply the next one */
    if (fail || PQflush(c) < 0) {
        snprintf(last_error, sizeof last_error, "%s", PQerrorMessage(c));
        return -1;
    }
    return sent;
}

enum ac_qs ac_db_write_recv(PGconn *c, int sent, int last)
{
    enum ac_qs qs = recv_batch(c, sent, 0, NULL, NULL);
    if (qs > 0 && last && PQexitPipelineMode(c) != 1) qs = AC_QS_SOFT_ERROR;
    return qs;
}

enum ac_qs ac_db_seq_head(PGconn *c, int partition, long long *batch)
{
    char p[16];
    snprintf(p, sizeof p, "%d", partition);
    const char *v[] = {p};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "seq_head", 1, v, &r);
    if (qs < 0) return qs;
    int ok = PQntuples(r) == 1;
    if (ok) *batch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return ok ? AC_QS_ONE_RESULT : AC_QS_HARD_ERROR;
}

/* ---- assets and reads ------------------------------------------------------------------------ */

enum ac_qs ac_db_asset_create(PGconn *c, const char *code, unsigned scale, int *created)
{
    char sc[8];
    snprintf(sc, sizeof sc, "%u", scale);
    const char *v[] = {code, sc};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "asset_ins", 2, v, &r);
    if (qs < 0) return qs;
    int inserted = PQntuples(r) == 1;
    PQclear(r);
    if (inserted) {
        *created = 1;
        return AC_QS_ONE_RESULT;
    }
    unsigned have;
    qs = ac_db_asset_get(c, code, &have);
    if (qs <= 0) return qs < 0 ? qs : AC_QS_HARD_ERROR;
    *created = 0;
    return have == scale ? AC_QS_ONE_RESULT : AC_QS_NO_RESULTS;
}

enum ac_qs ac_db_asset_get(PGconn *c, const char *code, unsigned *scale)
{
    const char *v[] = {code};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "asset_get", 1, v, &r);
    if (qs < 0) return qs;
    qs = PQntuples(r) == 1 ? AC_QS_ONE_RESULT : AC_QS_NO_RESULTS;
    if (qs > 0) *scale = (unsigned)atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return qs;
}

enum ac_qs ac_db_account_get(PGconn *c, const char *id, struct ac_account *a)
{
    const char *v[] = {id};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "account_get", 1, v, &r);
    if (qs < 0) return qs;
    qs = PQntuples(r) == 1 ? AC_QS_ONE_RESULT : AC_QS_NO_RESULTS;
    if (qs > 0) account_from_row(r, 0, a);
    PQclear(r);
    return qs;
}

enum ac_qs ac_db_transfer_get(PGconn *c, const char *id, struct ac_transfer_row *row)
{
    const char *v[] = {id};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "transfer_get", 1, v, &r);
    if (qs < 0) return qs;
    if (PQntuples(r) == 1) {
        transfer_from_row(r, 0, row);
        PQclear(r);
        return AC_QS_ONE_RESULT;
    }
    PQclear(r);
    qs = ac_db_exec(c, "failure_get", 1, v, &r);
    if (qs < 0) return qs;
    qs = PQntuples(r) == 1 ? AC_QS_ONE_RESULT : AC_QS_NO_RESULTS;
    if (qs > 0) failure_from_row(r, 0, row);
    PQclear(r);
    return qs;
}

int ac_db_nonce_take_send(PGconn *c, const char *const *keyids, const char *const *nonces,
                          const int64_t *exps, size_t n, int64_t now_s)
{
    start_arrays(3);
    for (size_t i = 0; i < n; i++) {
        /* with the escaping a signer's text needs */
        ac_nonce_array_row(&scratch[0].b, &scratch[1].b, &scratch[2].b, keyids[i], nonces[i],
                           exps[i]);
    }
    end_arrays(3);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_s);
    const char *vals[4] = {NULL, NULL, NULL, now};
    for (int i = 0; i < 3; i++) {
        if (scratch[i].b.oom) {
            snprintf(last_error, sizeof last_error, "nonce_take: out of memory");
            return -1;
        }
        vals[i] = ac_buf_str(&scratch[i].b);
    }
    if ((PQpipelineStatus(c) == PQ_PIPELINE_OFF && PQenterPipelineMode(c) != 1) ||
        PQsendQueryPrepared(c, "nonce_take", 4, vals, NULL, NULL, 0) != 1 ||
        PQpipelineSync(c) != 1 || PQflush(c) < 0) {
        snprintf(last_error, sizeof last_error, "nonce_take: %s", PQerrorMessage(c));
        return -1;
    }
    return 0;
}

struct take_answer {
    const char *const *keyids, *const *nonces;
    size_t n;
    int *taken;
};

static void take_rows(void *cls, const PGresult *r)
{
    struct take_answer *a = cls;
    ac_nonce_match_taken(r, a->keyids, a->nonces, a->n, a->taken);
}

enum ac_qs ac_db_nonce_take_recv(PGconn *c, const char *const *keyids, const char *const *nonces,
                                 size_t n, int *taken)
{
    for (size_t i = 0; i < n; i++)
        taken[i] = 0;
    struct take_answer a = {keyids, nonces, n, taken};
    enum ac_qs qs = recv_batch(c, 1, 0, take_rows, &a);
    if (qs > 0 && PQexitPipelineMode(c) != 1) qs = AC_QS_SOFT_ERROR;
    if (qs < 0)
        for (size_t i = 0; i < n; i++)
            taken[i] = 0;
    return qs;
}

enum ac_qs ac_db_ping(PGconn *c)
{
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "ping", 0, NULL, &r);
    if (qs > 0) PQclear(r);
    return qs;
}
