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
    const char *origin;             /* checkpoint origin line, e.g. "clearing.example/agentclear/0" */
    const struct ac_keyring *keys;  /* server keys; checkpoints are signed with the current
                                       Ed25519 key. NULL: records are written, no checkpoints. */
    uint64_t checkpoint_every;      /* records between checkpoints (0: default 1024) */
    int64_t checkpoint_ms;          /* at most this long between a record and its checkpoint
                                       (0: default 1000) */
};

struct ac_evlog;

struct ac_evlog *ac_evlog_new(const struct ac_evlog_config *cfg);
void ac_evlog_free(struct ac_evlog *ev);

/* ---- the sequencer's side (struct ac_seq_domain hooks call these) ----------------------------- */

/* (Re)load the head (last seq and record hash) and the Merkle tree's leaves from the database,
 * discarding what the log held. Returns 0 or -1. */
int ac_evlog_load(struct ac_evlog *ev, PGconn *c);

/* Append a record to the current batch: sets r->seq, r->time_us (ac_apply_now) and r->prev,
 * encodes and validates it. On success returns 0 and, when not NULL, the record's seq and its
 * Merkle leaf hash (for the response, so a client can fetch its receipt). Returns -1 when the
 * record is invalid (a programming error: logged) or memory runs out; the caller then fails its
 * operation with AC_EC_INTERNAL and the batch must not commit (ac_apply_stmt's contract). */
int ac_evlog_append(struct ac_evlog *ev, struct ac_apply *a, struct ac_ev_record *r,
                    uint64_t *seq, uint8_t leaf[AC_EV_HASH_LEN]);

/* Queue the batch's records as one multi-row insert, and a checkpoint when one is due. */
int ac_evlog_flush(struct ac_evlog *ev, struct ac_apply *a);
/* The time a checkpoint falls due (INT64_MAX when none is pending), and the tick that writes it. */
int64_t ac_evlog_next_deadline(const struct ac_evlog *ev);
int ac_evlog_tick(struct ac_evlog *ev, struct ac_apply *a);
/* The batch committed (1) or was abandoned (0). */
void ac_evlog_end(struct ac_evlog *ev, int committed);

#endif
