/* ledger/db.h -- PostgreSQL access for the ledger (libpq). One statement per function, prepared
 * once per connection, typed parameters; never SQL built from request data. */
#ifndef AC_DB_H
#define AC_DB_H

#include <stdint.h>

#include <libpq-fe.h>

#include "ledger/state.h"

/* Outcome of a database call (GNU Taler style). */
enum ac_qs {
    AC_QS_HARD_ERROR = -2, /* a bug or a constraint violation: do not retry */
    AC_QS_SOFT_ERROR = -1, /* connection lost, serialization failure, deadlock: retry */
    AC_QS_NO_RESULTS = 0,
    AC_QS_ONE_RESULT = 1, /* (or more, where a call returns rows) */
};

/* Connect with a bounded connect timeout and prepare the statements for `role`:
 * AC_DB_READER (HTTP workers: reads, asset creation), AC_DB_WRITER (the sequencer), or
 * AC_DB_PLAIN (none: migrations and checks, which may run before the schema exists).
 * Returns NULL and writes a message (never the password) to err on failure. */
enum ac_db_role { AC_DB_PLAIN, AC_DB_READER, AC_DB_WRITER };
PGconn *ac_db_connect(const char *url, enum ac_db_role role, char *err, size_t errlen);

/* A statement prepared on a connection. Modules with tables of their own (identity, evidence)
 * keep their SQL in ledger/db_<module>.c and register it once at start-up, before any connect. */
struct ac_db_stmt {
    const char *name;
    const char *sql;
    int nparams;
};
/* Register statements to be prepared on every later connection of `role` (idempotent per array).
 * Not thread-safe: call before starting threads. Returns 0, or -1 when the table is full. */
int ac_db_register(enum ac_db_role role, const struct ac_db_stmt *s, size_t n);
/* Prepare statements now. Returns 0, or -1 with a message in err. */
int ac_db_prepare(PGconn *c, const struct ac_db_stmt *s, size_t n, char *err, size_t errlen);
/* Execute a prepared statement with text parameters. ONE_RESULT and *out (PQclear it) on
 * success (whether or not it returned rows), or an error and *out NULL. */
enum ac_qs ac_db_exec(PGconn *c, const char *name, int n, const char *const *vals, PGresult **out);

/* Run a prepared statement without parameters in single-row mode, calling each(cls, row) for every
 * row (the row is at index 0 of r). ONE_RESULT when every row was taken; HARD_ERROR when each
 * returned non-zero (the remaining rows are drained); otherwise the statement's error. */
enum ac_qs ac_db_stream(PGconn *c, const char *name, int (*each)(void *cls, const PGresult *r),
                        void *cls);

/* True when the connection is usable. */
int ac_db_ok(PGconn *c);

/* Map a failed PGresult to HARD or SOFT (40001, 40P01, connection errors are SOFT). */
enum ac_qs ac_db_classify(PGconn *c, const PGresult *r);

/* ---- the writer lease ---------------------------------------------------------------------- */

/* Try to take the session-level advisory lock that makes this connection the single writer of
 * `partition`. Returns ONE_RESULT (taken), NO_RESULTS (held elsewhere) or an error. The lease
 * lives as long as the connection. */
enum ac_qs ac_db_try_lease(PGconn *c, int partition);

/* ---- start-up load --------------------------------------------------------------------------- */

/* Load every account, transfer and sticky failure into st (which must be empty), in one
 * repeatable-read snapshot. Returns ONE_RESULT, or an error with st partially filled (the
 * caller frees it). */
enum ac_qs ac_db_load_state(PGconn *c, struct ac_state *st);

/* ---- the batch write ------------------------------------------------------------------------- */

/* Write a batch's change set in one transaction, pipelined (BEGIN, multi-row inserts and
 * updates from arrays, COMMIT, one sync). Returns ONE_RESULT when committed; any error means
 * nothing of the batch is visible, unless the connection broke after COMMIT was sent (SOFT):
 * then the outcome is unknown and the caller must reload its state from the database. */
/* A further prepared statement of the batch's transaction, run after the ledger's writes, in
 * order (identity rows, evidence records, mandate spend...). */
struct ac_db_extra {
    const char *name;
    int n;
    const char *const *vals;
};
enum ac_qs ac_db_write_batch(PGconn *c, const struct ac_changes *ch, const struct ac_db_extra *x,
                             size_t nx);
/* The same batch in two steps, for a batch whose commands read their own writes before the
 * commit (ac_cmd.seal, ledger/sequencer.h): ac_db_write_open sends BEGIN, the change set and the
 * extras and leaves the transaction open (ONE_RESULT: every statement succeeded; on an error the
 * transaction is rolled back); the caller may then run statements on c inside it, and
 * ac_db_write_finish sends further extras and COMMIT (same outcomes as ac_db_write_batch). */
enum ac_qs ac_db_write_open(PGconn *c, const struct ac_changes *ch, const struct ac_db_extra *x,
                            size_t nx);
enum ac_qs ac_db_write_finish(PGconn *c, const struct ac_db_extra *x, size_t nx);
/* The same batch pipelined: ac_db_write_send queues BEGIN, the guard ac_seq_advance(partition,
 * prev_batch, next_batch) (sql/0014: it fails unless the partition's batch counter is
 * prev_batch, i.e. unless the batch queued before this one committed), the change set, the
 * extras and COMMIT, flushes them to the server and returns without reading: the number of
 * statements queued, or -1. Several batches may be queued; ac_db_write_recv reads the oldest
 * one's results (sent: what its send returned; last: no other batch is queued behind it, so
 * pipeline mode is left) with ac_db_write_batch's outcomes. After any failure the caller must
 * close the connection (nothing is rolled back here: a batch queued behind a failed one fails on
 * its guard, or on the failed one's aborted transaction). */
int ac_db_write_send(PGconn *c, int partition, const struct ac_changes *ch,
                     const struct ac_db_extra *x, size_t nx, long long prev_batch,
                     long long next_batch);
enum ac_qs ac_db_write_recv(PGconn *c, int sent, int last);
/* The partition's batch counter (sql/0014; its row is created at 0 on first use), read when the
 * sequencer becomes leader. */
enum ac_qs ac_db_seq_head(PGconn *c, int partition, long long *batch);
/* Record the nonces of the signed requests of a batch before it is applied (sql/0015,
 * ac_nonce_take: its own transaction, made durable by the batch's COMMIT that follows on c).
 * keyids[i], nonces[i] (printable ASCII, no two pairs equal) expire at exps[i]; a row whose expiry
 * is <= now_s may be taken over. In two steps, so that it can be queued behind a batch in flight:
 * ac_db_nonce_take_send queues the statement and a sync in pipeline mode (entering it if needed)
 * and flushes it (0, or -1); once everything queued before it was read, ac_db_nonce_take_recv
 * reads its result and leaves pipeline mode: ONE_RESULT with taken[i] 1 for the nonces recorded
 * now and 0 for those already there (replays), else the error (taken all 0: nothing is known). */
int ac_db_nonce_take_send(PGconn *c, const char *const *keyids, const char *const *nonces,
                          const int64_t *exps, size_t n, int64_t now_s);
enum ac_qs ac_db_nonce_take_recv(PGconn *c, const char *const *keyids, const char *const *nonces,
                                 size_t n, int *taken);
/* The error text of this thread's last failed ac_db_write_batch ("" if none). */
const char *ac_db_last_error(void);
/* Free this thread's batch-building scratch memory (call when the writer thread ends). */
void ac_db_thread_cleanup(void);

/* ---- assets (HTTP workers; assets are immutable once created) ---------------------------------
 */

/* Insert an asset. ONE_RESULT: created, or it existed with the same scale (*created says which);
 * NO_RESULTS: it exists with another scale. */
enum ac_qs ac_db_asset_create(PGconn *c, const char *code, unsigned scale, int *created);
/* Look an asset's scale up. ONE_RESULT and *scale, or NO_RESULTS. */
enum ac_qs ac_db_asset_get(PGconn *c, const char *code, unsigned *scale);

/* A round trip (reader or writer connection): ONE_RESULT when the database answers. */
enum ac_qs ac_db_ping(PGconn *c);

/* ---- reads ------------------------------------------------------------------------------------
 */

/* One account as committed. ONE_RESULT and *a, or NO_RESULTS. */
enum ac_qs ac_db_account_get(PGconn *c, const char *id, struct ac_account *a);
/* One transfer as committed (row->result AC_EC_OK), or a sticky failure (row->result the code).
 * ONE_RESULT or NO_RESULTS. */
enum ac_qs ac_db_transfer_get(PGconn *c, const char *id, struct ac_transfer_row *row);

#endif
