/* protocol/replay.h -- the auditor's replay of a whole evidence log, offline, from record 0:
 * every record canonical and valid, sequence numbers contiguous from 0, every prev-hash link,
 * the Merkle tree root at every checkpoint equal to the checkpoint's root, every checkpoint's
 * signature valid against the log key, checkpoints never shrinking.
 *
 * What it does not do by itself, and takes as hooks (struct ac_replay_hooks):
 *   - HOOK on_record: re-verify each request signature and JWS (needs the documents and keys of
 *     the export), recompute each decision with the risk engine, and recompute every account
 *     balance from the transfers (and, with --db, compare with the live ledger). The ledger and
 *     risk sides plug in here once `agentclear evidence export` exists.
 *   - HOOK progress: called every progress_every records, for long runs.
 *
 * The export file (`agentclear evidence export`, written later by the database side) is an
 * RFC 8742 CBOR sequence of deterministic CBOR items, see docs/evidence.md:
 *     {"export": 1, "origin": tstr, "log_key": tstr}    first, once
 *     {"document": bstr}                                 a document records reference by hash
 *                                                        (compact JWS text), before the records
 *     {"user_key": {"jwk": tstr, "user": tstr}}          a user's public key (JWK text)
 *     {"record": bstr}                                   record seq 0, 1, 2, ... in order
 *     {"checkpoint": tstr}                               right after the record that completes
 *                                                        its tree size
 * The ac_replay_export_* writers produce exactly these items. */
#ifndef AC_REPLAY_H
#define AC_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/buf.h"
#include "protocol/evidence.h"
#include "protocol/merkle.h"

struct ac_replay_hooks {
    /* HOOK: per record, after the structural checks passed. Return 0 to go on, or -1 with a
     * short reason in why (the replay then fails at this record). May be NULL. */
    int (*on_record)(void *ctx, const struct ac_ev_record *r, const uint8_t *bytes, size_t len,
                     char *why, size_t whylen);
    /* HOOK: progress, every progress_every records (0: never) and at the end. May be NULL. */
    void (*progress)(void *ctx, uint64_t records, uint64_t checkpoints);
    uint64_t progress_every;
    void *ctx;
    /* HOOK: the export's documents and user keys (items before the records, see below), for
     * on_record's checks (protocol/evcheck.h). Return 0, or -1 with a reason. May be NULL. */
    int (*on_document)(void *ctx, const uint8_t *doc, size_t len, char *why, size_t whylen);
    int (*on_user_key)(void *ctx, const char *user, const char *jwk, size_t len, char *why,
                       size_t whylen);
};

struct ac_replay {
    struct ac_merkle_frontier tree;
    uint8_t prev[AC_EV_HASH_LEN]; /* hash of the last record */
    uint64_t records;             /* records verified = the next expected seq */
    uint64_t checkpoints;         /* checkpoints verified */
    uint64_t last_cp_size;
    char *log_key, *origin;
    struct ac_replay_hooks hooks;
    char item[64]; /* first failure: "record #17", "checkpoint at 1000", "export" */
    char why[320];
    int failed;
};

/* Start a replay against the log key (note verifier key) and, when not NULL, a required origin.
 * hooks may be NULL. Returns 0, or -1 on OOM. */
int ac_replay_init(struct ac_replay *rp, const char *log_key, const char *origin,
                   const struct ac_replay_hooks *hooks);

/* Feed the next record's bytes. Returns 0, or -1 after recording the failure (rp->item, rp->why);
 * once failed, every later call returns -1 and changes nothing. */
int ac_replay_record(struct ac_replay *rp, const uint8_t *buf, size_t len);

/* Feed a checkpoint note. Its tree size must equal the number of records fed so far (exports
 * write a checkpoint right after its last record) and be no smaller than the previous one; its
 * root must equal the root of those records; it must be signed by the log key. Returns 0 or -1
 * (as above). */
int ac_replay_checkpoint(struct ac_replay *rp, const char *note, size_t len);

/* End of input: fails when no checkpoint was seen or records follow the last checkpoint (they
 * are unsealed: nothing proves the log held them). Calls the progress hook a last time. */
int ac_replay_finish(struct ac_replay *rp);

/* Release what rp holds. */
void ac_replay_free(struct ac_replay *rp);

/* Replay a whole export held in memory (see above): header, then records and checkpoints.
 * log_key, when not NULL, pins the key (the header's must match); else the header's is used.
 * Returns 0 when everything verifies; -1 with rp->item/why set otherwise. rp is initialised
 * here; the caller frees it with ac_replay_free either way. */
int ac_replay_export(struct ac_replay *rp, const uint8_t *buf, size_t len, const char *log_key,
                     const char *origin, const struct ac_replay_hooks *hooks);

/* ==== export writers ========================================================================= */
/* Append one export item to out (deterministic CBOR). Return 0, or -1 on OOM or bad input. */
int ac_replay_export_header(struct ac_buf *out, const char *origin, const char *log_key);
int ac_replay_export_record(struct ac_buf *out, const uint8_t *rec, size_t len);
int ac_replay_export_checkpoint(struct ac_buf *out, const char *note, size_t len);
int ac_replay_export_document(struct ac_buf *out, const uint8_t *doc, size_t len);
int ac_replay_export_user_key(struct ac_buf *out, const char *user, const char *jwk, size_t len);

#endif
