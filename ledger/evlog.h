/* ledger/evlog.h -- the evidence log at rest: records appended by the sequencer in the same
 * PostgreSQL transaction as the money they describe, Merkle checkpoints signed every N records
 * or T milliseconds, and the reads that serve proofs.
 *
 * Records are built by the caller as a struct ac_ev_record view (protocol/evidence.h); the log
 * assigns seq, time and prev, encodes the record (deterministic CBOR), hashes it, extends the
 * Merkle tree and queues the row in the current batch. A batch that fails to commit is abandoned
 * with the rest of the state (the sequencer reloads the log's head from the database), so a
 * record never stands without its money and no money moves without its record.
 *
 * Threads: every function taking a struct ac_apply runs on the sequencer thread (inside an
 * AC_CMD_OP or a domain hook). The read functions (proofs, checkpoints) run on HTTP threads
 * against the database and take no lock of the sequencer. */
#ifndef AC_EVLOG_H
#define AC_EVLOG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "keys/keyring.h"
#include "ledger/sequencer.h"
#include "protocol/evidence.h"

struct ac_evlog_config {
    const char *origin; /* checkpoint origin line, e.g. "clearing.example/agentclear/0" */
    const struct ac_keyring *keys; /* server keys; checkpoints are signed with the current
                                      Ed25519 key. NULL: records are written, no checkpoints. */
    uint64_t checkpoint_every;     /* records between checkpoints (0: default 1024) */
    int64_t checkpoint_ms;         /* at most this long between a record and its checkpoint
                                      (0: default 1000) */
};

struct ac_evlog;

/* A log with cfg's settings (copied; cfg->keys is borrowed and must outlive the log). origin NULL
 * or "" gives "agentclear.local/0". Returns NULL when the origin is not a valid note key name
 * (no spaces, no '+') or on OOM. The log is empty and refuses appends until ac_evlog_load(). */
struct ac_evlog *ac_evlog_new(const struct ac_evlog_config *cfg);
void ac_evlog_free(struct ac_evlog *ev);

/* Register the writer's statements (ledger/db.h). Call once before the sequencer starts. */
int ac_evlog_register_statements(void);

/* The checkpoint origin. */
const char *ac_evlog_origin(const struct ac_evlog *ev);
/* Committed records and the tree size of the last committed checkpoint (any thread; for logs and
 * metrics). */
uint64_t ac_evlog_size(const struct ac_evlog *ev);
uint64_t ac_evlog_checkpoint_size(const struct ac_evlog *ev);

/* ---- the sequencer's side (struct ac_seq_domain hooks call these) -----------------------------
 */

/* (Re)load the head from the database, discarding what the log held: the record count (seq must
 * have no gap), every stored leaf streamed into an O(log n) Merkle frontier (the sequencer keeps
 * no leaf array: proofs are served by ledger/evread.h), whose root at the last checkpoint's size
 * must be that checkpoint's root, and the records after the last checkpoint decoded and checked
 * (leaf, chain) up to the head. Returns 0, or -1 with a message on stderr (a database error, or a
 * stored log that is not consistent with its own checkpoint: the server then refuses to extend it,
 * since a new checkpoint would contradict the old one). */
int ac_evlog_load(struct ac_evlog *ev, PGconn *c);

/* Append a record to the current batch: sets r->seq, r->time_us (ac_apply_now) and r->prev,
 * encodes and validates it. On success returns 0 and, when not NULL, the record's seq and its
 * Merkle leaf hash (for the response, so a client can fetch its receipt). Returns -1 when the
 * record is invalid (a programming error: logged) or memory runs out; the caller then fails its
 * operation with AC_EC_INTERNAL and the batch must not commit (ac_apply_stmt's contract). */
int ac_evlog_append(struct ac_evlog *ev, struct ac_apply *a, struct ac_ev_record *r, uint64_t *seq,
                    uint8_t leaf[AC_EV_HASH_LEN]);

/* ---- the operator's ledger API (AC_CMD_ACCOUNTS / AC_CMD_TRANSFERS; ledger/domain.c's hook) -- */

/* The actor of ledger.account and ledger.transfer records: the operator's bearer token is the
 * only credential the ledger API takes. */
#define AC_EVLOG_OPERATOR "operator"

/* Record the accounts command c created (neither replays nor failures): one ledger.account
 * record per AC_EV_MAX_ACCOUNTS of them, appended now. Returns 0, or -1 (the batch must fail). */
int ac_evlog_ledger_accounts(struct ac_evlog *ev, struct ac_apply *a, const struct ac_cmd *c);

/* Queue the transfers command c committed (rows[0..nrows) with result AC_EC_OK: the resolved
 * fields, the scale from c->scales) for ledger.transfer records. Consecutive operator transfers
 * of a batch share records of up to AC_EV_MAX_TRANSFERS; the queue is written out as a record
 * when it is full, before any other record is appended, and at the batch's flush, so the log
 * keeps the order in which the ledger applied everything, and the records go into the same
 * transaction as the transfers. Returns 0, or -1 (c->scales missing, out of memory: the batch
 * must fail). */
int ac_evlog_ledger_transfers(struct ac_evlog *ev, struct ac_apply *a, const struct ac_cmd *c,
                              const struct ac_transfer_row *rows, size_t nrows);

/* Queue the batch's records as one multi-row insert, and a checkpoint when one is due: at least
 * checkpoint_every records since the last one, or checkpoint_ms since the first record it does
 * not cover. The checkpoint covers every record of the batch and goes into the same transaction.
 * Returns -1 when an append of this batch failed or memory runs out (the batch then fails). */
int ac_evlog_flush(struct ac_evlog *ev, struct ac_apply *a);
/* The time a checkpoint falls due (INT64_MAX when none is pending or the log has no keys), and
 * the tick called at the start of every batch (it resets the batch state; the checkpoint itself
 * is written by the flush of that batch). */
int64_t ac_evlog_next_deadline(const struct ac_evlog *ev);
int ac_evlog_tick(struct ac_evlog *ev, struct ac_apply *a);
/* The batch committed (1) or was abandoned (0). */
void ac_evlog_end(struct ac_evlog *ev, int committed);

#endif
