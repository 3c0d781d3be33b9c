/* ledger/evread.h -- the evidence log's read side, for HTTP threads and the export: records,
 * checkpoints and the documents records reference, read from PostgreSQL (reader connections: any
 * node, leader or standby, serves them), and proofs from a leaf cache.
 *
 * The leaf cache (struct ac_evread) holds the Merkle tree of the committed leaves with every
 * complete subtree (protocol/mtree.h, ~64 bytes per record): a proof costs O(log^2 n) hashes. It
 * is filled from the database on demand -- only the leaves it lacks -- and is independent of the
 * sequencer (no lock of the sequencer is taken). Before a proof is served against a checkpoint,
 * the cache's root at the checkpoint's size is compared with the checkpoint's root: stored
 * leaves that do not match their signed checkpoint are reported, never proven. */
#ifndef AC_EVREAD_H
#define AC_EVREAD_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "keys/keyring.h"
#include "ledger/db.h"
#include "protocol/evidence.h"

/* Register the reader statements (ledger/db.h, AC_DB_READER). Call once before connecting. */
int ac_evread_register_statements(void);

/* ---- checkpoints and records -------------------------------------------------------------- */

struct ac_evread_cp {
    uint64_t size;
    uint8_t root[AC_EV_HASH_LEN];
    char *note;                          /* the signed note (malloc'd) */
    char *log_key;                       /* its note verifier key (malloc'd) */
    char key_id[AC_JWK_THUMBPRINT_SIZE]; /* the server key's kid */
    int64_t created_us;
};
void ac_evread_cp_clear(struct ac_evread_cp *cp);

/* The checkpoint of tree size `size`, or the latest when size is 0. ONE_RESULT (*cp filled),
 * NO_RESULTS, or an error. */
enum ac_qs ac_evread_checkpoint(PGconn *c, uint64_t size, struct ac_evread_cp *cp);

/* The stored record seq: its bytes (malloc'd, *len) and stored leaf hash. ONE_RESULT, NO_RESULTS
 * or an error. */
enum ac_qs ac_evread_record(PGconn *c, uint64_t seq, uint8_t **bytes, size_t *len,
                            uint8_t leaf[AC_EV_HASH_LEN]);

/* Every record of a payment (body.payment, or body.tab), ascending seq: each(ctx, seq, bytes,
 * len) for each (return non-zero to stop: the call then returns HARD_ERROR). ONE_RESULT (at least
 * one), NO_RESULTS, or an error. At most AC_BUNDLE_MAX_RECORDS rows are read. */
enum ac_qs ac_evread_payment(PGconn *c, const char *payment,
                             int (*each)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len),
                             void *ctx);

/* The documents (compact JWS texts) the database holds under the given ids (binding, mandate,
 * payment ids: see sql/0006_evidence.sql, ac_evidence_documents), each passed to each(). The
 * caller matches them against docref hashes. ONE_RESULT or an error. */
enum ac_qs ac_evread_documents(PGconn *c, const char *const *ids, size_t n,
                               int (*each)(void *ctx, const char *doc, size_t len), void *ctx);

/* The public JWK texts of a user's keys, each passed to each(). ONE_RESULT or an error. */
enum ac_qs ac_evread_user_keys(PGconn *c, const char *user,
                               int (*each)(void *ctx, const char *jwk, size_t len), void *ctx);

/* ---- proofs ---------------------------------------------------------------------------------- */

struct ac_evread;

/* A new, empty leaf cache, or NULL on OOM. */
struct ac_evread *ac_evread_new(void);
void ac_evread_free(struct ac_evread *er);

/* Outcome of a proof request. */
enum ac_evread_status {
    AC_EVREAD_OK = 0,
    AC_EVREAD_DB,           /* a database error (retry) */
    AC_EVREAD_RANGE,        /* sizes or index out of range */
    AC_EVREAD_INCONSISTENT, /* the stored leaves do not give the checkpoint's root */
    AC_EVREAD_OOM,
};

/* Inclusion proof of record seq in the tree of checkpoint cp (whose root is checked first).
 * Reads the leaves the cache lacks through c. */
enum ac_evread_status ac_evread_inclusion(struct ac_evread *er, PGconn *c,
                                          const struct ac_evread_cp *cp, uint64_t seq,
                                          uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN],
                                          size_t *n);

/* Consistency proof between the trees of sizes from and to (0 < from <= to <= cp->size), cp being
 * a checkpoint whose root is checked first. */
enum ac_evread_status
ac_evread_consistency(struct ac_evread *er, PGconn *c, const struct ac_evread_cp *cp, uint64_t from,
                      uint64_t to, uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN], size_t *n);

/* Root of the first size leaves (size <= committed records). */
enum ac_evread_status ac_evread_root(struct ac_evread *er, PGconn *c, uint64_t size,
                                     uint8_t root[AC_EV_HASH_LEN]);

#endif
