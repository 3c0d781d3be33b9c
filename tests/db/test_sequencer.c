/* The sequencer against a real PostgreSQL: durability, reload, the writer lease (standby and
 * take-over), a killed connection, a failed commit rolling memory back, expiry on its clock. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "ledger/sequencer.h"
#include "tests/support/sql.h"

static const char *url;
static _Atomic int64_t fake_now;

static int64_t fake_clock(void *cls)
{
    (void)cls;
    return atomic_load(&fake_now);
}

static struct ac_sequencer *start(int fake)
{
    struct ac_seq_config cfg = {.db_url = url, .partition = 0, .max_batch_items = 1024};
    if (fake) {
        cfg.clock_us = fake_clock;
    }
    struct ac_sequencer *s = ac_seq_start(&cfg);
    assert_non_null(s);
    return s;
}

static enum ac_ec accounts(struct ac_sequencer *s, const char *ids[], size_t n, uint32_t flags)
{
    struct ac_account a[8];
    enum ac_ec res[8];
    int rep[8];
    memset(a, 0, sizeof a);
    for (size_t i = 0; i < n; i++) {
        snprintf(a[i].id, sizeof a[i].id, "%s", ids[i]);
        snprintf(a[i].asset, sizeof a[i].asset, "CNY");
        a[i].flags = flags;
    }
    struct ac_cmd cmd = {.kind = AC_CMD_ACCOUNTS,
                         .n = n,
                         .accounts = a,
                         .account_results = res,
                         .account_replayed = rep};
    enum ac_ec ec = ac_seq_run(s, &cmd);
    if (ec != AC_EC_OK) return ec;
    for (size_t i = 0; i < n; i++)
        if (res[i] != AC_EC_OK) return res[i];
    return AC_EC_OK;
}

/* A CNY transfer request. */
static void transfer_req(struct ac_transfer_req *t, const char *id, const char *dr, const char *cr,
                         int64_t amount, uint32_t flags, uint32_t timeout)
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->debit, sizeof t->debit, "%s", dr);
    snprintf(t->credit, sizeof t->credit, "%s", cr);
    snprintf(t->asset, sizeof t->asset, "CNY");
    t->amount = amount;
    t->flags = flags;
    t->timeout_s = timeout;
}

/* One transfer; returns the command status, or the transfer's result when the command ran. */
static enum ac_ec xfer(struct ac_sequencer *s, const char *id, const char *dr, const char *cr,
                       int64_t amount, uint32_t flags, uint32_t timeout, int *replayed)
{
    struct ac_transfer_req t;
    transfer_req(&t, id, dr, cr, amount, flags, timeout);
    struct ac_transfer_result res;
    struct ac_cmd cmd = {.kind = AC_CMD_TRANSFERS, .n = 1, .transfers = &t, .results = &res};
    enum ac_ec ec = ac_seq_run(s, &cmd);
    if (ec != AC_EC_OK) return ec;
    if (replayed) *replayed = res.replayed;
    return res.ec;
}

/* The same transfer retried (up to 5 s) while the sequencer reconnects and reloads. */
static enum ac_ec xfer_retried(struct ac_sequencer *s, const char *id, const char *dr,
                               const char *cr, int64_t amount)
{
    enum ac_ec ec = AC_EC_BATCH_FAILED;
    for (int i = 0; i < 50 && ec != AC_EC_OK; i++) {
        ec = xfer(s, id, dr, cr, amount, 0, 0, NULL);
        if (ec != AC_EC_OK) usleep(100000);
    }
    return ec;
}

static int setup(void **st)
{
    (void)st;
    url = ac_test_fresh_db("db_sequencer");
    PGconn *c = ac_test_connect(url);
    int created;
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQfinish(c);
    char err[256];
    c = ac_db_connect(url, AC_DB_READER, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(ac_db_asset_create(c, "CNY", 2, &created), AC_QS_ONE_RESULT);
    PQfinish(c);
    return 0;
}

/* Acknowledged means durable: after a restart the state is reloaded and the same ids replay. */
static void durable_and_reloaded(void **st)
{
    (void)st;
    struct ac_sequencer *s = start(0);
    assert_true(ac_seq_wait_leader(s, 10000));
    const char *ids[] = {"bank", "alice", "shop"};
    assert_int_equal(accounts(s, ids, 1, 0), AC_EC_OK);
    assert_int_equal(accounts(s, ids + 1, 2, AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS), AC_EC_OK);
    assert_int_equal(xfer(s, "fund", "bank", "alice", 10000, 0, 0, NULL), AC_EC_OK);
    assert_int_equal(xfer(s, "pay1", "alice", "shop", 2500, 0, 0, NULL), AC_EC_OK);
    assert_int_equal(xfer(s, "pay2", "alice", "shop", 99999, 0, 0, NULL), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(
        ac_test_sql_int(url, "select debits_posted from ac_accounts where id = 'alice'"), 2500);
    assert_int_equal(
        ac_test_sql_int(url, "select count(*) from ac_transfer_failures where id = 'pay2'"), 1);
    ac_seq_free(s);

    s = start(0);
    assert_true(ac_seq_wait_leader(s, 10000));
    int rep = 0;
    assert_int_equal(xfer(s, "pay1", "alice", "shop", 2500, 0, 0, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(xfer(s, "pay1", "alice", "shop", 2501, 0, 0, NULL),
                     AC_EC_TRANSFER_EXISTS_DIFFERENT);
    assert_int_equal(xfer(s, "pay2", "alice", "shop", 1, 0, 0, NULL), AC_EC_TRANSFER_ID_FAILED);
    /* the reloaded balance still enforces the limit: 7500 left */
    assert_int_equal(xfer(s, "pay3", "alice", "shop", 7501, 0, 0, NULL), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(xfer(s, "pay4", "alice", "shop", 7500, 0, 0, NULL), AC_EC_OK);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_transfers where id = 'pay1'"),
                     1);
    ac_seq_free(s);
}

/* A second sequencer on the same database stands by and takes over when the first stops. */
static void standby_takes_over(void **st)
{
    (void)st;
    struct ac_sequencer *a = start(0);
    assert_true(ac_seq_wait_leader(a, 10000));
    struct ac_sequencer *b = start(0);
    assert_false(ac_seq_wait_leader(b, 1500));
    assert_int_equal(xfer(b, "sb1", "bank", "shop", 1, 0, 0, NULL), AC_EC_NOT_LEADER);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_transfers where id = 'sb1'"), 0);
    assert_int_equal(xfer(a, "sa1", "bank", "shop", 1, 0, 0, NULL), AC_EC_OK);
    ac_seq_free(a);
    assert_true(ac_seq_wait_leader(b, 10000));
    int rep = 0;
    assert_int_equal(xfer(b, "sa1", "bank", "shop", 1, 0, 0, &rep), AC_EC_OK);
    assert_int_equal(rep, 1); /* b loaded what a committed */
    assert_int_equal(xfer(b, "sb1", "bank", "shop", 1, 0, 0, NULL), AC_EC_OK);
    ac_seq_free(b);
}

/* Killing the sequencer's database session: commands fail retryably, never hang; it reconnects,
 * re-takes the lease, reloads, and the retried id succeeds exactly once. */
static void killed_connection_recovers(void **st)
{
    (void)st;
    struct ac_sequencer *s = start(0);
    assert_true(ac_seq_wait_leader(s, 10000));
    assert_int_equal(xfer(s, "k1", "bank", "shop", 5, 0, 0, NULL), AC_EC_OK);
    ac_test_sql(url,
                "select pg_terminate_backend(pid) from pg_stat_activity where application_name = "
                "'agentclear-sequencer' and datname = current_database()");
    enum ac_ec ec = xfer(s, "k2", "bank", "shop", 5, 0, 0, NULL);
    assert_true(ec == AC_EC_OK || ec == AC_EC_BATCH_FAILED || ec == AC_EC_DB_UNAVAILABLE ||
                ec == AC_EC_NOT_LEADER);
    assert_true(ac_seq_wait_leader(s, 15000));
    for (int i = 0; i < 50 && ec != AC_EC_OK; i++) {
        ec = xfer(s, "k2", "bank", "shop", 5, 0, 0, NULL);
        if (ec != AC_EC_OK) usleep(100000);
    }
    assert_int_equal(ec, AC_EC_OK);
    assert_int_equal(
        ac_test_sql_int(url, "select count(*) from ac_transfers where id in ('k1', 'k2')"), 2);
    ac_seq_free(s);
}

/* A trigger that makes the commit of any batch inserting transfer 'boom' fail (dropped with
 * "drop trigger refuse_boom on ac_transfers"). */
static void refuse_boom(void)
{
    ac_test_sql(url, "create or replace function refuse_boom() returns trigger language plpgsql "
                     "as $$ begin if new.id = 'boom' then raise exception 'refused for the "
                     "test'; end if; return new; end $$");
    ac_test_sql(url, "drop trigger if exists refuse_boom on ac_transfers");
    ac_test_sql(url, "create trigger refuse_boom before insert on ac_transfers for each row "
                     "execute function refuse_boom()");
}

/* A commit that fails (here: a trigger refuses one transfer) fails the whole batch, writes
 * nothing, and leaves memory as before: the funds it would have used are still available. */
static void failed_commit_rolls_back(void **st)
{
    (void)st;
    refuse_boom();
    struct ac_sequencer *s = start(0);
    assert_true(ac_seq_wait_leader(s, 10000));
    const char *ids[] = {"carol"};
    assert_int_equal(accounts(s, ids, 1, AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS), AC_EC_OK);
    assert_int_equal(xfer(s, "fund-carol", "bank", "carol", 100, 0, 0, NULL), AC_EC_OK);
    assert_int_equal(xfer(s, "boom", "carol", "shop", 100, 0, 0, NULL), AC_EC_BATCH_FAILED);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_transfers where id = 'boom'"),
                     0);
    assert_int_equal(
        ac_test_sql_int(url, "select debits_posted from ac_accounts where id = 'carol'"), 0);
    assert_true(ac_seq_wait_leader(s, 15000));
    /* had memory kept the failed debit, this would be exceeds_credits */
    assert_int_equal(xfer_retried(s, "after-boom", "carol", "shop", 100), AC_EC_OK);
    ac_test_sql(url, "drop trigger refuse_boom on ac_transfers");
    ac_seq_free(s);
}

/* Expiry runs on the sequencer's clock: a hold past its timeout is released and recorded. */
static void expiry_on_clock(void **st)
{
    (void)st;
    atomic_store(&fake_now, 1800000000LL * 1000000);
    struct ac_sequencer *s = start(1);
    assert_true(ac_seq_wait_leader(s, 10000));
    const char *ids[] = {"dave"};
    assert_int_equal(accounts(s, ids, 1, AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS), AC_EC_OK);
    assert_int_equal(xfer(s, "fund-dave", "bank", "dave", 300, 0, 0, NULL), AC_EC_OK);
    assert_int_equal(xfer(s, "hold", "dave", "shop", 300, AC_TF_PENDING, 10, NULL), AC_EC_OK);
    assert_int_equal(
        ac_test_sql_int(url, "select debits_pending from ac_accounts where id = 'dave'"), 300);
    assert_int_equal(xfer(s, "more", "dave", "shop", 1, 0, 0, NULL), AC_EC_EXCEEDS_CREDITS);
    atomic_store(&fake_now, atomic_load(&fake_now) + 11 * 1000000LL);
    long long ps = -1;
    for (int i = 0; i < 100 && ps != AC_PS_EXPIRED; i++) {
        usleep(50000);
        ps = ac_test_sql_int(url, "select pstate from ac_transfers where id = 'hold'");
    }
    assert_int_equal(ps, AC_PS_EXPIRED);
    assert_int_equal(
        ac_test_sql_int(url, "select debits_pending from ac_accounts where id = 'dave'"), 0);
    assert_int_equal(xfer(s, "more2", "dave", "shop", 300, 0, 0, NULL), AC_EC_OK);
    ac_seq_free(s);
    /* the ledger's own check agrees */
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s ledger check --database-url='%s' >/dev/null", ac_test_binary(),
             url);
    assert_int_equal(system(cmd), 0);
}

/* ---- domain operations (AC_CMD_OP): rows of other modules in the ledger's transaction ---- */

struct notes {
    int loads, ends_ok, ends_failed;
    char keys[16][32];
    int n;
};

static const struct ac_db_stmt note_stmts[] = {
    {"test_note_ins", "insert into test_notes (k) values ($1)", 1},
};

static int notes_load(void *cls, PGconn *c)
{
    struct notes *d = cls;
    d->loads++;
    d->n = 0;
    PGresult *r = PQexec(c, "select k from test_notes order by k");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < PQntuples(r) && d->n < 16; i++)
        snprintf(d->keys[d->n++], sizeof d->keys[0], "%s", PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

static void notes_end(void *cls, int committed)
{
    struct notes *d = cls;
    committed ? d->ends_ok++ : d->ends_failed++;
}

struct note_op {
    const char *key;
    int exists;             /* output: the key was already known (nothing written) */
    enum ac_ec transfer_ec; /* output */
};

/* Record a note and move 1 from bank to shop under the same id, in the batch's transaction. */
static void note_apply(struct ac_cmd *c, struct ac_apply *a)
{
    struct note_op *op = c->op_arg;
    struct notes *d = ac_apply_domain(a);
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->keys[i], op->key) == 0) {
            op->exists = 1;
            return;
        }
    struct ac_transfer_req t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "note-%s", op->key);
    snprintf(t.debit, sizeof t.debit, "bank");
    snprintf(t.credit, sizeof t.credit, "shop");
    snprintf(t.asset, sizeof t.asset, "CNY");
    t.amount = 1;
    struct ac_transfer_result res;
    assert_int_equal(ac_state_create_transfers(ac_apply_ledger(a), &t, 1, ac_apply_now(a), &res),
                     AC_EC_OK);
    op->transfer_ec = res.ec;
    const char *v[] = {op->key};
    assert_int_equal(ac_apply_stmt(a, "test_note_ins", 1, v), 0);
    snprintf(d->keys[d->n++], sizeof d->keys[0], "%s", op->key);
}

static enum ac_ec note(struct ac_sequencer *s, struct note_op *op)
{
    struct ac_cmd cmd = {.kind = AC_CMD_OP, .op = note_apply, .op_arg = op};
    return ac_seq_run(s, &cmd);
}

static void domain_ops_atomic_with_ledger(void **st)
{
    (void)st;
    ac_test_sql(url, "create table test_notes (k text primary key)");
    assert_int_equal(ac_db_register(AC_DB_WRITER, note_stmts, 1), 0);
    struct notes d = {0};
    struct ac_seq_domain dom = {.cls = &d, .load = notes_load, .end = notes_end};
    struct ac_seq_config cfg = {.db_url = url, .max_batch_items = 1024, .domain = &dom};
    struct ac_sequencer *s = ac_seq_start(&cfg);
    assert_non_null(s);
    assert_true(ac_seq_wait_leader(s, 10000));
    assert_int_equal(d.loads, 1);

    struct note_op a = {.key = "a"};
    assert_int_equal(note(s, &a), AC_EC_OK);
    assert_int_equal(a.exists, 0);
    assert_int_equal(a.transfer_ec, AC_EC_OK);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from test_notes where k = 'a'"), 1);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_transfers where id = 'note-a'"),
                     1);
    struct note_op again = {.key = "a"};
    assert_int_equal(note(s, &again), AC_EC_OK);
    assert_int_equal(again.exists, 1);

    /* A row the domain does not know makes the batch's insert fail: the transfer of the same
     * batch must not be written, and the domain is reloaded (and then knows the row). */
    ac_test_sql(url, "insert into test_notes values ('b')");
    long long shop =
        ac_test_sql_int(url, "select credits_posted from ac_accounts where id = 'shop'");
    struct note_op b = {.key = "b"};
    assert_int_equal(note(s, &b), AC_EC_BATCH_FAILED);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_transfers where id = 'note-b'"),
                     0);
    assert_int_equal(
        ac_test_sql_int(url, "select credits_posted from ac_accounts where id = 'shop'"), shop);
    assert_true(ac_seq_wait_leader(s, 15000));
    enum ac_ec ec = AC_EC_NOT_LEADER;
    struct note_op b2 = {.key = "b"};
    for (int i = 0; i < 50 && ec != AC_EC_OK; i++) {
        ec = note(s, &b2);
        if (ec != AC_EC_OK) usleep(100000);
    }
    assert_int_equal(ec, AC_EC_OK);
    assert_int_equal(b2.exists, 1);
    assert_true(d.loads >= 2);
    assert_true(d.ends_failed >= 1);
    assert_true(d.ends_ok >= 2);
    ac_seq_free(s);
}

/* The domain's own deadline wakes the sequencer on its clock, and tick acts inside a batch. */
struct alarm {
    int64_t at; /* INT64_MAX: none */
    int fired;
};

static int64_t alarm_deadline(void *cls)
{
    return ((struct alarm *)cls)->at;
}

static int alarm_tick(void *cls, struct ac_apply *a)
{
    struct alarm *al = cls;
    if (ac_apply_now(a) < al->at) return 0;
    al->at = INT64_MAX;
    struct ac_transfer_req t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "alarm-%d", ++al->fired);
    snprintf(t.debit, sizeof t.debit, "bank");
    snprintf(t.credit, sizeof t.credit, "shop");
    snprintf(t.asset, sizeof t.asset, "CNY");
    t.amount = 7;
    struct ac_transfer_result res;
    return ac_state_create_transfers(ac_apply_ledger(a), &t, 1, ac_apply_now(a), &res) == AC_EC_OK
               ? 0
               : -1;
}

static void domain_deadline_on_clock(void **st)
{
    (void)st;
    atomic_store(&fake_now, 5000000000000LL);
    struct alarm al = {.at = 5000000000000LL + 30 * 1000000LL};
    struct ac_seq_domain dom = {.cls = &al, .next_deadline = alarm_deadline, .tick = alarm_tick};
    struct ac_seq_config cfg = {
        .db_url = url, .max_batch_items = 1024, .domain = &dom, .clock_us = fake_clock};
    struct ac_sequencer *s = ac_seq_start(&cfg);
    assert_non_null(s);
    assert_true(ac_seq_wait_leader(s, 10000));
    usleep(300000); /* not due: nothing happens */
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_transfers where id = 'alarm-1'"),
                     0);
    atomic_store(&fake_now, 5000000000000LL + 31 * 1000000LL);
    long long n = 0;
    for (int i = 0; i < 50 && n == 0; i++) {
        usleep(100000);
        n = ac_test_sql_int(url, "select count(*) from ac_transfers where id = 'alarm-1'");
    }
    assert_int_equal(n, 1); /* written by a batch that had no command */
    ac_seq_free(s);
    assert_int_equal(al.fired, 1);
}

/* ---- pipelined batches -----------------------------------------------------------------------
 * The sequencer sends a batch and applies the next one on top of it while PostgreSQL commits the
 * first. Here the first fails at COMMIT (a deferred constraint trigger), when its transaction
 * has already ended: the batch behind it, applied on top of it in memory (its balance update
 * counts the failed debit), must not commit. With max_batch_items = 1 each command is a batch. A
 * batch in front ('slow') waits in its trigger on an advisory lock the test holds, so the
 * sequencer is stuck reading its outcome while the two others queue up; once both are queued the
 * lock is released, and the second is necessarily sent while the first is in flight. */

struct async_xfer {
    struct ac_sequencer *s;
    const char *id, *dr, *cr;
    int64_t amount;
    enum ac_ec ec;
};

static void *async_xfer_main(void *arg)
{
    struct async_xfer *x = arg;
    x->ec = xfer(x->s, x->id, x->dr, x->cr, x->amount, 0, 0, NULL);
    return NULL;
}

/* Wait (up to 10 s) until cond_sql returns n, or until the sequencer has n commands queued. */
static void wait_until(struct ac_sequencer *s, const char *cond_sql, long long n)
{
    for (int i = 0; i < 1000; i++) {
        long long v = cond_sql ? ac_test_sql_int(url, cond_sql) : (long long)ac_seq_queued(s);
        if (v == n) return;
        usleep(10000);
    }
    fail_msg("timed out waiting for %s to be %lld", cond_sql ? cond_sql : "the queue", n);
}

static void pipelined_batch_fails_with_the_one_before(void **st)
{
    (void)st;
    ac_test_sql(url, "create function slow_one() returns trigger language plpgsql as $$ begin "
                     "if new.id = 'slow' then perform pg_advisory_lock_shared(4242); end if; "
                     "return new; end $$");
    ac_test_sql(url, "create trigger slow_one before insert on ac_transfers for each row execute "
                     "function slow_one()");
    ac_test_sql(url, "create function late_boom() returns trigger language plpgsql as $$ begin "
                     "if new.id = 'late-boom' then raise exception 'refused at commit for the "
                     "test'; end if; return null; end $$");
    ac_test_sql(url, "create constraint trigger late_boom after insert on ac_transfers "
                     "deferrable initially deferred for each row execute function late_boom()");
    struct ac_seq_config cfg = {.db_url = url, .partition = 0, .max_batch_items = 1};
    struct ac_sequencer *s = ac_seq_start(&cfg);
    assert_non_null(s);
    assert_true(ac_seq_wait_leader(s, 10000));
    const char *ids[] = {"erin"};
    assert_int_equal(accounts(s, ids, 1, AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS), AC_EC_OK);
    assert_int_equal(xfer(s, "fund-erin", "bank", "erin", 101, 0, 0, NULL), AC_EC_OK);

    PGconn *lock = ac_test_connect(url);
    PGresult *r = PQexec(lock, "select pg_advisory_lock(4242)");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    struct async_xfer x[3] = {
        {s, "slow", "bank", "shop", 1, AC_EC_INTERNAL},
        {s, "late-boom", "erin", "shop", 100, AC_EC_INTERNAL}, /* fails at its COMMIT */
        {s, "behind", "erin", "shop", 1, AC_EC_INTERNAL},      /* applied on top of late-boom */
    };
    pthread_t th[3];
    assert_int_equal(pthread_create(&th[0], NULL, async_xfer_main, &x[0]), 0);
    /* 'slow' sent and stuck in its trigger; the sequencer now waits for its outcome */
    wait_until(s,
               "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and "
               "wait_event = 'advisory' and datname = current_database()",
               1);
    usleep(50000);
    assert_int_equal(pthread_create(&th[1], NULL, async_xfer_main, &x[1]), 0);
    wait_until(s, NULL, 1);
    assert_int_equal(pthread_create(&th[2], NULL, async_xfer_main, &x[2]), 0);
    wait_until(s, NULL, 2);
    r = PQexec(lock, "select pg_advisory_unlock(4242)");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(lock);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(x[0].ec, AC_EC_OK);
    assert_int_equal(x[1].ec, AC_EC_BATCH_FAILED);
    /* not OK: had it committed, erin's stored debits would count the 100 that never moved */
    assert_int_equal(x[2].ec, AC_EC_BATCH_FAILED);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_transfers where id in "
                                          "('late-boom', 'behind')"),
                     0);
    assert_int_equal(
        ac_test_sql_int(url, "select debits_posted from ac_accounts where id = 'erin'"), 0);
    /* reloaded from the database: erin has 101 again, and the retried command goes through once */
    assert_true(ac_seq_wait_leader(s, 15000));
    assert_int_equal(xfer_retried(s, "behind", "erin", "shop", 1), AC_EC_OK);
    assert_int_equal(
        ac_test_sql_int(url, "select debits_posted from ac_accounts where id = 'erin'"), 1);
    /* the stored balance is the sum of the stored transfers: nothing of the failed pair leaked */
    assert_int_equal(ac_test_sql_int(url, "select (select debits_posted from ac_accounts where "
                                          "id = 'erin') - (select coalesce(sum(amount), 0) from "
                                          "ac_transfers where debit_account = 'erin')"),
                     0);
    ac_seq_free(s);
    ac_test_sql(url, "drop trigger late_boom on ac_transfers");
    ac_test_sql(url, "drop trigger slow_one on ac_transfers");
}

/* The guard itself: a partition's batch counter moves only from the value the caller names,
 * and another partition's counter is its own. */
static void batch_counter_guard(void **st)
{
    (void)st;
    PGconn *c = ac_test_connect(url);
    long long head = ac_test_sql_int(url, "select batch from ac_seq_head where partition = 0");
    char q[160];
    snprintf(q, sizeof q, "select ac_seq_advance(0, %lld, %lld)", head + 5, head + 6);
    PGresult *r = PQexec(c, q);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(r), "did not commit"));
    PQclear(r);
    snprintf(q, sizeof q, "select ac_seq_advance(1, %lld, %lld)", head, head + 1);
    r = PQexec(c, q); /* partition 1 has no counter yet: nothing to advance from */
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    snprintf(q, sizeof q, "select ac_seq_advance(0, %lld, %lld)", head, head + 1);
    r = PQexec(c, q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    assert_int_equal(ac_test_sql_int(url, "select batch from ac_seq_head where partition = 0"),
                     head + 1);
    PQfinish(c);
}

/* A transfer command carrying a signed request's nonce (ac_cmd.nonce), reserved at a replay
 * cache's epoch (ac_cmd.nonce_epoch), run alone. */
static enum ac_ec xfer_nonce_at(struct ac_sequencer *s, const char *id, const char *keyid,
                                const char *nonce, int64_t exp, uint64_t epoch, int *taken)
{
    struct ac_transfer_req t;
    transfer_req(&t, id, "n:a", "n:b", 1, 0, 0);
    struct ac_transfer_result res;
    struct ac_cmd cmd = {.kind = AC_CMD_TRANSFERS,
                         .n = 1,
                         .transfers = &t,
                         .results = &res,
                         .nonce_keyid = keyid,
                         .nonce = nonce,
                         .nonce_exp = exp,
                         .nonce_epoch = epoch};
    enum ac_ec ec = ac_seq_run(s, &cmd);
    *taken = cmd.nonce_taken;
    return ec != AC_EC_OK ? ec : res.ec;
}

/* The same with no epoch: the database decides. */
static enum ac_ec xfer_nonce(struct ac_sequencer *s, const char *id, const char *keyid,
                             const char *nonce, int64_t exp, int *taken)
{
    return xfer_nonce_at(s, id, keyid, nonce, exp, 0, taken);
}

static long long transfer_rows(const char *id)
{
    char q[160];
    snprintf(q, sizeof q, "select count(*) from ac_transfers where id = '%s'", id);
    return ac_test_sql_int(url, q);
}

/* A command's nonce is recorded before its batch is applied; one the table holds already (a
 * replay its caller's memory could not know) refuses the command, unapplied; an expired row is
 * taken over; quotes and backslashes (printable ASCII a signer may choose) are stored as sent. */
static void nonces_recorded_before_the_batch(void **st)
{
    (void)st;
    struct ac_sequencer *s = start(0);
    assert_true(ac_seq_wait_leader(s, 15000));
    const char *ids[] = {"n:a", "n:b"};
    assert_int_equal(accounts(s, ids, 2, 0), AC_EC_OK);
    int64_t now = (int64_t)time(NULL);
    char q[256];
    snprintf(q, sizeof q, "insert into ac_nonces values ('k1', 'used', %lld), ('k1', 'old', %lld)",
             (long long)now + 100, (long long)now - 5);
    assert_true(ac_test_sql_ok(url, q));
    uint64_t taken0 = atomic_load(&ac_seq_stats(s)->nonces_taken);
    uint64_t replayed0 = atomic_load(&ac_seq_stats(s)->nonces_replayed);

    int taken = 0;
    assert_int_equal(xfer_nonce(s, "n1", "k1", "fresh", now + 60, &taken), AC_EC_OK);
    assert_int_equal(taken, 1);
    assert_int_equal(transfer_rows("n1"), 1);
    snprintf(q, sizeof q,
             "select count(*) from ac_nonces where keyid = 'k1' and nonce = 'fresh' "
             "and expires_at = %lld",
             (long long)now + 60);
    assert_int_equal(ac_test_sql_int(url, q), 1);

    /* the table knows it: refused, nothing applied */
    taken = 0;
    assert_int_equal(xfer_nonce(s, "n2", "k1", "used", now + 60, &taken), AC_EC_SIG_REPLAYED);
    assert_int_equal(taken, 1);
    assert_int_equal(transfer_rows("n2"), 0);
    assert_int_equal(xfer_nonce(s, "n3", "k1", "fresh", now + 60, &taken), AC_EC_SIG_REPLAYED);
    assert_int_equal(transfer_rows("n3"), 0);
    /* the same nonce under another key is another nonce */
    assert_int_equal(xfer_nonce(s, "n4", "k2", "fresh", now + 60, &taken), AC_EC_OK);
    assert_int_equal(transfer_rows("n4"), 1);
    /* an expired row is taken over, with the new expiry */
    assert_int_equal(xfer_nonce(s, "n5", "k1", "old", now + 60, &taken), AC_EC_OK);
    snprintf(q, sizeof q, "select expires_at from ac_nonces where keyid = 'k1' and nonce = 'old'");
    assert_int_equal(ac_test_sql_int(url, q), now + 60);
    /* the array literal escapes what must be */
    assert_int_equal(xfer_nonce(s, "n6", "k\"3", "a\"b\\c,{d}", now + 60, &taken), AC_EC_OK);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_nonces where keyid = 'k\"3' "
                                          "and nonce = 'a\"b\\c,{d}'"),
                     1);
    assert_int_equal(xfer_nonce(s, "n7", "k\"3", "a\"b\\c,{d}", now + 60, &taken),
                     AC_EC_SIG_REPLAYED);
    /* a replay of "old" (the same created time, so the same expiry, passed by now): refused as
     * stale, not applied, and the row keeps the expiry the take-over above gave it */
    assert_int_equal(xfer_nonce(s, "n9", "k1", "old", now - 5, &taken), AC_EC_SIG_STALE);
    assert_int_equal(transfer_rows("n9"), 0);
    snprintf(q, sizeof q, "select expires_at from ac_nonces where keyid = 'k1' and nonce = 'old'");
    assert_int_equal(ac_test_sql_int(url, q), now + 60);
    /* the edge itself: the original's row has just expired and a replay of it (same expiry)
     * reaches its batch; taking the row over would apply it -- refused instead */
    snprintf(q, sizeof q, "insert into ac_nonces values ('k1', 'edge', %lld)", (long long)now - 1);
    assert_true(ac_test_sql_ok(url, q));
    assert_int_equal(xfer_nonce(s, "n10", "k1", "edge", now - 1, &taken), AC_EC_SIG_STALE);
    assert_int_equal(transfer_rows("n10"), 0);
    /* a command without a nonce is untouched by all this */
    assert_int_equal(xfer(s, "n8", "n:a", "n:b", 1, 0, 0, NULL), AC_EC_OK);
    assert_int_equal(atomic_load(&ac_seq_stats(s)->nonces_taken) - taken0, 4);
    assert_int_equal(atomic_load(&ac_seq_stats(s)->nonces_replayed) - replayed0, 3);
    ac_seq_free(s);
}

static long long nonce_exp_of(const char *keyid, const char *nonce)
{
    char q[256];
    snprintf(q, sizeof q,
             "select coalesce((select expires_at from ac_nonces where keyid = '%s' and nonce = "
             "'%s'), -1)",
             keyid, nonce);
    return ac_test_sql_int(url, q);
}

/* With a replay cache (struct ac_seq_config.nonces) the leader loads the live nonces into memory
 * on becoming leader; what memory reserves after that is final: no database verdict, the row
 * written in the batch's own transaction (and rolled back with it). What was reserved before the
 * load goes to the database, as above. A new leader loads what the one before recorded. */
static void nonces_decided_by_the_leaders_memory(void **st)
{
    (void)st;
    int64_t now = (int64_t)time(NULL);
    char q[512];
    snprintf(q, sizeof q,
             "insert into ac_nonces values ('km', 'live', %lld), ('km', 'dead', %lld), "
             "('km', 'standby', %lld)",
             (long long)now + 100, (long long)now - 5, (long long)now + 100);
    assert_true(ac_test_sql_ok(url, q));
    snprintf(q, sizeof q, "select count(*) from ac_nonces where expires_at > %lld", (long long)now);
    long long live = ac_test_sql_int(url, q);
    struct ac_nonce_cache *c = ac_nonce_cache_new(4096, 61);
    assert_non_null(c);
    int64_t exp, early_exp;
    uint64_t early, ep;
    /* reserved before any load: its epoch is no leader's */
    assert_int_equal(ac_nonce_reserve(c, "km", "early", now, now, &early_exp, &early),
                     AC_NONCE_NEW);
    assert_int_equal(early, 0);

    struct ac_seq_config cfg = {.db_url = url, .max_batch_items = 1024, .nonces = c};
    struct ac_sequencer *s = ac_seq_start(&cfg);
    assert_non_null(s);
    assert_true(ac_seq_wait_leader(s, 15000));
    uint64_t epoch = ac_nonce_cache_epoch(c);
    assert_true(epoch != 0);
    assert_int_equal(atomic_load(&ac_seq_stats(s)->nonces_loaded), live);
    const char *ids[] = {"n:a", "n:b"};
    assert_int_equal(accounts(s, ids, 2, 0), AC_EC_OK); /* created by the test before, or now */
    uint64_t taken0 = atomic_load(&ac_seq_stats(s)->nonces_taken);
    uint64_t inb0 = atomic_load(&ac_seq_stats(s)->nonces_in_batch);
    uint64_t replayed0 = atomic_load(&ac_seq_stats(s)->nonces_replayed);

    /* the load: a live row is known to memory, an expired one is not */
    assert_int_equal(ac_nonce_reserve(c, "km", "live", now, now, &exp, &ep), AC_NONCE_REPLAYED);
    assert_int_equal(ac_nonce_reserve(c, "km", "dead", now, now, &exp, &ep), AC_NONCE_NEW);
    assert_int_equal(ep, epoch);
    int taken = 0;
    assert_int_equal(xfer_nonce_at(s, "m0", "km", "dead", exp, ep, &taken), AC_EC_OK);
    assert_int_equal(taken, 1);
    assert_int_equal(nonce_exp_of("km", "dead"), exp); /* the expired row taken over */

    /* memory's verdict: applied, and the row written with the batch */
    assert_int_equal(ac_nonce_reserve(c, "km", "fresh", now, now, &exp, &ep), AC_NONCE_NEW);
    taken = 0;
    assert_int_equal(xfer_nonce_at(s, "m1", "km", "fresh", exp, ep, &taken), AC_EC_OK);
    assert_int_equal(taken, 1);
    assert_int_equal(transfer_rows("m1"), 1);
    assert_int_equal(nonce_exp_of("km", "fresh"), exp);

    /* a row another server wrote after the load, for a request it refused: memory decides (that
     * request never had an effect), and the row is kept at least as long as this use needs */
    snprintf(q, sizeof q, "insert into ac_nonces values ('km', 'other', %lld)",
             (long long)now + 10);
    assert_true(ac_test_sql_ok(url, q));
    assert_int_equal(ac_nonce_reserve(c, "km", "other", now, now, &exp, &ep), AC_NONCE_NEW);
    assert_int_equal(xfer_nonce_at(s, "m2", "km", "other", exp, ep, &taken), AC_EC_OK);
    assert_int_equal(nonce_exp_of("km", "other"), exp);

    /* reserved before the load: the database decides -- new, or held (refused, unapplied) */
    assert_int_equal(xfer_nonce_at(s, "m3", "km", "early", early_exp, early, &taken), AC_EC_OK);
    assert_int_equal(taken, 1);
    assert_int_equal(nonce_exp_of("km", "early"), early_exp);
    assert_int_equal(xfer_nonce_at(s, "m4", "km", "standby", now + 61, early, &taken),
                     AC_EC_SIG_REPLAYED);
    assert_int_equal(transfer_rows("m4"), 0);

    /* expired by the sequencer's clock: stale, unapplied, no row */
    assert_int_equal(xfer_nonce_at(s, "m5", "km", "stale", now - 1, epoch, &taken),
                     AC_EC_SIG_STALE);
    assert_int_equal(transfer_rows("m5"), 0);
    assert_int_equal(nonce_exp_of("km", "stale"), -1);

    /* a batch that fails: its nonce's row goes with it, and the caller must record it */
    refuse_boom();
    assert_int_equal(ac_nonce_reserve(c, "km", "lost", now, now, &exp, &ep), AC_NONCE_NEW);
    taken = 1;
    assert_int_equal(xfer_nonce_at(s, "boom", "km", "lost", exp, ep, &taken), AC_EC_BATCH_FAILED);
    assert_int_equal(taken, 0);
    assert_int_equal(nonce_exp_of("km", "lost"), -1);
    ac_test_sql(url, "drop trigger refuse_boom on ac_transfers");
    assert_true(ac_seq_wait_leader(s, 15000)); /* it reloaded: a new epoch */
    uint64_t epoch2 = ac_nonce_cache_epoch(c);
    assert_true(epoch2 != 0 && epoch2 != epoch);
    /* a command reserved in the epoch before goes to the database now */
    assert_int_equal(ac_nonce_reserve(c, "km", "between", now, now, &exp, &ep), AC_NONCE_NEW);
    assert_int_equal(xfer_nonce_at(s, "m6", "km", "between", exp, epoch, &taken), AC_EC_OK);
    assert_int_equal(taken, 1);

    assert_int_equal(atomic_load(&ac_seq_stats(s)->nonces_in_batch) - inb0, 3);
    assert_int_equal(atomic_load(&ac_seq_stats(s)->nonces_taken) - taken0, 2);
    assert_int_equal(atomic_load(&ac_seq_stats(s)->nonces_replayed) - replayed0, 1);
    ac_seq_free(s);
    assert_int_equal(ac_nonce_cache_epoch(c), 0); /* its leadership ended */

    /* a new leader with a new cache (a restart): what the first recorded is known at once */
    struct ac_nonce_cache *c2 = ac_nonce_cache_new(4096, 61);
    cfg.nonces = c2;
    s = ac_seq_start(&cfg);
    assert_non_null(s);
    assert_true(ac_seq_wait_leader(s, 15000));
    const char *used[] = {"fresh", "other", "early", "dead", "between", "live"};
    for (size_t i = 0; i < sizeof used / sizeof *used; i++)
        assert_int_equal(ac_nonce_reserve(c2, "km", used[i], now, now, &exp, &ep),
                         AC_NONCE_REPLAYED);
    /* the failed batch's nonce was never recorded (its caller records it) */
    assert_int_equal(ac_nonce_reserve(c2, "km", "lost", now, now, &exp, &ep), AC_NONCE_NEW);
    ac_seq_free(s);
    ac_nonce_cache_free(c2);
    ac_nonce_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durable_and_reloaded),
        cmocka_unit_test(standby_takes_over),
        cmocka_unit_test(killed_connection_recovers),
        cmocka_unit_test(failed_commit_rolls_back),
        cmocka_unit_test(expiry_on_clock),
        cmocka_unit_test(domain_ops_atomic_with_ledger),
        cmocka_unit_test(domain_deadline_on_clock),
        cmocka_unit_test(pipelined_batch_fails_with_the_one_before),
        cmocka_unit_test(batch_counter_guard),
        cmocka_unit_test(nonces_recorded_before_the_batch),
        cmocka_unit_test(nonces_decided_by_the_leaders_memory),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
