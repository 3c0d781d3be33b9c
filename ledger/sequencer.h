/* ledger/sequencer.h -- the single writer.
 *
 * One thread owns the ledger state (balances, holds, the transfer index). HTTP workers submit
 * decided commands; the sequencer drains its queue into a batch, applies every command in order
 * against the in-memory state, writes the batch's changes in ONE PostgreSQL transaction
 * (pipelined), commits, and only then completes the commands (calls their `done`). If the
 * commit fails, the in-memory state is rolled back and every command of the batch completes
 * with AC_EC_BATCH_FAILED (retryable): nothing is acknowledged that is not durable.
 *
 * Leadership: the sequencer writes only while its database session holds an advisory lock
 * (the writer lease). A second server on the same database waits as a standby and takes over
 * when the lease is released (the holder's session ends). Whenever the database connection is
 * lost, or the outcome of a commit is unknown, the sequencer drops its state, reconnects,
 * re-takes the lease and reloads the state from PostgreSQL, the system of record. */
#ifndef AC_SEQUENCER_H
#define AC_SEQUENCER_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "keys/nonce.h"
#include "ledger/state.h"
#include "protocol/hist.h"

enum ac_cmd_kind {
    AC_CMD_ACCOUNTS,  /* create n accounts */
    AC_CMD_TRANSFERS, /* create n transfers (linked chains within the command) */
    AC_CMD_OP,        /* a domain operation (identity, mandates, payments...): see `op` */
};

/* What an AC_CMD_OP sees while it is applied, on the sequencer thread. */
struct ac_apply;
/* The ledger state: create transfers, read balances (ledger/state.h). */
struct ac_state *ac_apply_ledger(struct ac_apply *a);
/* The batch's time (unix microseconds; never goes back within a process). */
int64_t ac_apply_now(const struct ac_apply *a);
/* The domain object of the sequencer's configuration (struct ac_seq_domain.cls). */
void *ac_apply_domain(struct ac_apply *a);
/* Add a prepared statement (registered for AC_DB_WRITER, see ledger/db.h) to the batch's
 * transaction, after the ledger's writes and the statements added before it. The parameters are
 * copied (NULL is SQL NULL). Returns 0, or -1 when out of memory: the whole batch then fails
 * with AC_EC_INTERNAL and the state is reloaded. */
int ac_apply_stmt(struct ac_apply *a, const char *name, int n, const char *const *vals);
/* Fail the whole batch (as when out of memory): nothing of it commits, every command of it
 * completes with AC_EC_INTERNAL, and the state is reloaded. For an op that changed the state and
 * then cannot finish what must go with the change (e.g. its evidence record). */
void ac_apply_abort(struct ac_apply *a);
/* The sequencer's connection, inside the batch's open transaction: only while a command's seal
 * runs (see struct ac_cmd), else NULL. Statements on it see the batch's writes; an error on it
 * aborts the transaction, so the whole batch fails. */
PGconn *ac_apply_conn(struct ac_apply *a);

struct ac_cmd {
    enum ac_cmd_kind kind;
    size_t n;
    /* AC_CMD_ACCOUNTS: input accounts, output per-account result and replay flag */
    const struct ac_account *accounts;
    enum ac_ec *account_results;
    int *account_replayed;
    /* AC_CMD_TRANSFERS: input requests, output results */
    const struct ac_transfer_req *transfers;
    struct ac_transfer_result *results;
    /* AC_CMD_TRANSFERS: the scale of each request's asset, for the evidence record of what the
     * command moved. Required when the sequencer's domain records ledger commands (a server with
     * an evidence log): without it such a command fails the batch. */
    const unsigned *scales;
    /* AC_CMD_OP: called once, in queue order, to check the operation against the current state,
     * change the state (ledger and domain) and queue its rows with ac_apply_stmt(). It reports
     * its own result through op_arg. n counts toward the batch's item budget (0 counts as 1).
     * The domain state may be changed in place: if the batch then fails to commit, the
     * sequencer reloads everything (ledger and domain) from PostgreSQL. */
    void (*op)(struct ac_cmd *c, struct ac_apply *a);
    void *op_arg;

    /* Outcome of the command as a whole: AC_EC_OK (per-item results are valid and durable), or
     * AC_EC_BATCH_FAILED / AC_EC_NOT_LEADER / AC_EC_DB_UNAVAILABLE / AC_EC_INTERNAL (nothing of
     * it was applied; per-item results are not set). */
    enum ac_ec status;

    /* Optional: called on the sequencer thread once every command of the batch was applied and
     * the batch's writes were sent, INSIDE its still open transaction, before COMMIT (only then
     * does the batch take a second round trip). The command's own outcome is known (status
     * AC_EC_OK so far); seal may read what the batch wrote with ac_apply_conn() and add
     * statements with ac_apply_stmt(), which commit with the batch or not at all (this is how an
     * Idempotency-Key's stored answer is written with its effect, server/idem.h). It must not
     * leave c->status changed. Returns 0, or -1 to fail the whole batch (as when out of memory). */
    int (*seal)(struct ac_cmd *c, struct ac_apply *a);

    /* Called exactly once, on the sequencer thread, after the outcome is final. Must not block.
     * The command (and its arrays) must stay valid until then. */
    void (*done)(struct ac_cmd *cmd);
    void *cls;

    /* Optional: the nonce of the signed request behind the command (keys/nonce.h; NULL: none),
     * reserved in the replay cache's memory (ac_nonce_reserve) at epoch nonce_epoch. Two ways:
     *  - nonce_epoch is the epoch of the load this sequencer made on becoming leader
     *    (struct ac_seq_config.nonces): memory's NEW was final, and the nonce's row is written in
     *    the batch's own transaction (statement nonce_put);
     *  - otherwise (reserved before that load: a restart, a reconnect; or no cache configured):
     *    before the batch is applied, its nonces are recorded in ac_nonces (sql/0015), made
     *    durable by the batch's own COMMIT. A nonce the table already holds (a replay that the
     *    caller's memory could not know) completes the command with AC_EC_SIG_REPLAYED,
     *    unapplied.
     * Either way a nonce whose expiry has passed by the sequencer's clock completes the command
     * with AC_EC_SIG_STALE, unapplied. nonce_taken: set to 1 on the sequencer thread once the
     * nonce is recorded (whatever becomes of the command then); when it stays 0 the caller must
     * record the nonce itself (ac_nonce_writer_record). */
    const char *nonce_keyid, *nonce;
    int64_t nonce_exp; /* expires_at, unix seconds */
    uint64_t nonce_epoch;
    int nonce_taken;
    int nonce_in_batch; /* internal */

    struct ac_cmd *next; /* internal */
};

/* State beyond the ledger that the single writer owns (bindings and their revocation, mandate
 * spend, the evidence chain head...). All callbacks run on the sequencer thread. */
struct ac_seq_domain {
    void *cls;
    /* On becoming leader, after the ledger state was loaded: (re)load the domain's state from
     * the database, discarding what it held. Returns 0, or -1 (the sequencer retries later). */
    int (*load)(void *cls, PGconn *c);
    /* After every command of a batch was applied and before the write: add statements that
     * aggregate the batch (e.g. one multi-row insert). Returns 0 or -1 (the batch fails). */
    int (*flush)(void *cls, struct ac_apply *a);
    /* The batch committed (1) or was abandoned (0; the state will be reloaded). Optional.
     * end(1) may be called before the batch is durable (see publishes): its effects on the
     * domain's own state are then tentative, and a failure reloads everything. */
    void (*end)(void *cls, int committed);
    /* 1 when end(1) would make something visible to other threads (readers), else 0. A batch
     * for which it returns 0 may be pipelined: end(1) is called as soon as its write is sent,
     * and the next batch is applied and sent while the database commits it; a batch for which
     * it returns 1 waits for its commit before end(1), so readers never see what is not durable.
     * Optional: without it every batch waits (no pipelining). */
    int (*publishes)(void *cls);
    /* Time-driven work of the domain (e.g. a step-up challenge expiring, a checkpoint due):
     * next_deadline returns the unix-microsecond time of the next one (INT64_MAX: none); the
     * sequencer then runs a batch at that time, possibly with no command. tick is called at the
     * start of EVERY batch (after the ledger's own expiries; it checks ac_apply_now() itself),
     * where the domain may act like an op (create transfers, ac_apply_stmt). tick returns 0, or -1
     * when out of memory (the batch fails). Optional. */
    int64_t (*next_deadline)(void *cls);
    int (*tick)(void *cls, struct ac_apply *a);
    /* After an AC_CMD_ACCOUNTS or AC_CMD_TRANSFERS command was applied (its per-item results
     * set): record what it changed (the evidence of the operator's ledger API). rows[0..nrows)
     * are the transfer rows the command added (ledger/state.h: successes and sticky failures;
     * none for accounts). Returns 0, or -1 (the batch then fails, as when out of memory).
     * Optional. */
    int (*ledger)(void *cls, struct ac_apply *a, const struct ac_cmd *c,
                  const struct ac_transfer_row *rows, size_t nrows);
};

struct ac_seq_config {
    const char *db_url;
    int partition;          /* advisory-lock key: one writer per partition */
    size_t max_batch_items; /* transfers/accounts per batch (a command is never split) */
    int serial;             /* 1: every batch waits for its commit before the next is applied
                             * (no pipelining; see struct ac_seq_domain.publishes) */
    size_t max_queue;       /* commands waiting; more -> AC_EC_OVERLOADED */
    /* Wall clock in microseconds; NULL = CLOCK_REALTIME. Tests inject their own. */
    int64_t (*clock_us)(void *cls);
    void *clock_cls;
    /* Optional: state beyond the ledger (see above). Copied at start. */
    const struct ac_seq_domain *domain;
    /* Optional: the replay cache whose memory reserves the commands' nonces. On becoming leader
     * the sequencer loads the live rows of ac_nonces into it (ac_nonce_cache_load), and commands
     * reserved after that need no database verdict (struct ac_cmd, nonce). Must outlive the
     * sequencer. */
    struct ac_nonce_cache *nonces;
};

struct ac_seq_stats {
    struct ac_hist batch_items;    /* items per committed batch */
    struct ac_hist commit_seconds; /* write+commit latency per batch */
    _Atomic uint64_t batches_committed, batches_failed, items_committed, leader_changes;
    /* ac_cmd.nonce: recorded after the database's verdict / refused by it; recorded with the
     * batch on memory's verdict; rows loaded into memory on becoming leader */
    _Atomic uint64_t nonces_taken, nonces_replayed, nonces_in_batch, nonces_loaded;
};

struct ac_sequencer;

/* Start the sequencer thread. Returns NULL on allocation or thread failure. It connects, takes
 * the lease and loads the state in the background; until then submissions fail fast. */
struct ac_sequencer *ac_seq_start(const struct ac_seq_config *cfg);

/* Stop: stops taking commands, finishes the batch in flight, fails what is queued with
 * AC_EC_NOT_LEADER, joins the thread, closes the connection (releasing the lease). The object
 * stays valid (later submissions are refused) until ac_seq_free(). Safe to call twice. */
void ac_seq_stop(struct ac_sequencer *s);
/* Stop if needed, then free. */
void ac_seq_free(struct ac_sequencer *s);

/* Queue a command. Returns AC_EC_OK when queued (done will be called later on the sequencer
 * thread), or AC_EC_NOT_LEADER / AC_EC_DB_UNAVAILABLE / AC_EC_OVERLOADED when refused (done is
 * then NOT called and nothing was applied). */
enum ac_ec ac_seq_submit(struct ac_sequencer *s, struct ac_cmd *cmd);

/* Submit and wait for the outcome (for the CLI and tests). Returns cmd->status. */
enum ac_ec ac_seq_run(struct ac_sequencer *s, struct ac_cmd *cmd);

/* 1 while this sequencer holds the lease and has its state loaded. */
int ac_seq_is_leader(const struct ac_sequencer *s);

/* Live counters for /metrics. */
struct ac_seq_stats *ac_seq_stats(struct ac_sequencer *s);
/* Commands queued and not yet taken into a batch. */
size_t ac_seq_queued(struct ac_sequencer *s);

/* Block until this sequencer is leader or timeout_ms passes; returns 1 if leader. */
int ac_seq_wait_leader(struct ac_sequencer *s, int timeout_ms);

#endif
