/* keys/nonce.h -- the replay cache for signed-request nonces.
 *
 * A nonce is remembered per signing key (keyid) for `window` seconds after the request's created
 * time: expires_at = created + window. The cache only accepts requests whose created time lies
 * within the window of now (|now - created| <= window); anything else is AC_NONCE_STALE, so an
 * entry is never forgotten while a request carrying it could still be accepted.
 *
 * Two layers:
 *  - memory, a bounded hash set of SHA-256(keyid || 0x00 || nonce) with its expiry: the fast path
 *    for "definitely seen". Expired entries are evicted when room is needed; when it is full of
 *    unexpired entries, new nonces are refused (AC_NONCE_FULL: the caller answers 503 overloaded)
 *    rather than forgotten.
 *  - PostgreSQL, table ac_nonces (sql/0002_nonces.sql): decides "new" with one atomic
 *    INSERT ... ON CONFLICT ... RETURNING, so server instances sharing the database (and a
 *    restarted server) never both accept one nonce through it. A row whose expiry has passed may
 *    be taken again by the same statement (the clock check already rejects a request that old).
 *    For requests with an effect, the leader's memory decides instead once it loaded the table
 *    (ac_nonce_cache_load): such a request then executes at most once, though a standby may have
 *    recorded (and refused) it too.
 *
 * Thread-safe: one cache serves all HTTP workers; each call brings its own connection. */
#ifndef AC_NONCE_H
#define AC_NONCE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/buf.h"

#if defined(__has_include)
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#else
#include <libpq-fe.h>
#endif

/* Longest keyid and nonce accepted (bytes). */
#define AC_NONCE_FIELD_MAX 128

enum ac_nonce_result {
    AC_NONCE_NEW = 0,       /* first use: the request may proceed */
    AC_NONCE_REPLAYED = 1,  /* seen before within its window: reject the request */
    AC_NONCE_INVALID = -1,  /* keyid or nonce empty, longer than AC_NONCE_FIELD_MAX, or with a
                               byte outside printable ASCII 0x20..0x7e */
    AC_NONCE_STALE = -2,    /* created is outside the window around now */
    AC_NONCE_FULL = -3,     /* memory is full of unexpired entries: answer 503 overloaded */
    AC_NONCE_DB_ERROR = -4, /* the database did not answer: answer 503 db_unavailable */
    AC_NONCE_PENDING = 2,   /* ac_nonce_writer_start() only: queued, `done` will be called */
};

struct ac_nonce_cache;

/* A cache holding at most `capacity` (>= 1) nonces in memory, each for `window` (>= 1) seconds.
 * Returns NULL for bad arguments or on allocation failure. */
struct ac_nonce_cache *ac_nonce_cache_new(size_t capacity, int64_t window);

/* Free a cache. Accepts NULL. */
void ac_nonce_cache_free(struct ac_nonce_cache *c);

/* Prepare this module's statements on a connection (call once per connection, e.g. right after
 * connecting; ac_nonce_seen_or_insert and ac_nonce_purge also prepare them lazily on a connection
 * that lacks them, which must then not be inside a transaction). Returns 0, or -1 (for instance
 * when the schema has not been migrated yet). */
int ac_nonce_prepare(PGconn *db);

/* Check and record (keyid, nonce) at time now (unix seconds) for a request created at `created`.
 * Order: bounds (INVALID), window (STALE), memory (REPLAYED without a round trip), room in memory
 * (FULL, after evicting expired entries), then the database, which decides NEW or REPLAYED; the
 * answer is remembered in memory. db may be NULL for a memory-only cache (one process, nothing
 * survives a restart). A database error gives AC_NONCE_DB_ERROR and records nothing. */
enum ac_nonce_result ac_nonce_seen_or_insert(struct ac_nonce_cache *c, PGconn *db,
                                             const char *keyid, const char *nonce, int64_t created,
                                             int64_t now);

/* The memory half of a check, for a request whose nonce is recorded later, in the same database
 * round as its effect (the sequencer, ledger/sequencer.h): bounds (INVALID), window (STALE),
 * memory (REPLAYED), room (FULL); otherwise the nonce is remembered in memory at once (so a second
 * use in this process is refused from now on) and the answer is NEW, with *exp its expiry
 * (expires_at) and *epoch (may be NULL) the cache's epoch at that moment (see
 * ac_nonce_cache_load; 0 when no load is complete). NEW is final when *epoch is the epoch of the
 * load the recording sequencer made; otherwise it is provisional: the database may still know
 * the nonce (a restart, another server), which whoever records it must find out. */
enum ac_nonce_result ac_nonce_reserve(struct ac_nonce_cache *c, const char *keyid,
                                      const char *nonce, int64_t created, int64_t now, int64_t *exp,
                                      uint64_t *epoch);

/* Make memory the authority for what it reserves from now on: put every row of ac_nonces that
 * has not expired at `now` into memory, and start a new epoch (*epoch, never 0). The sequencer
 * calls it on becoming leader, holding the writer lease (so no other server records a nonce
 * with an effect meanwhile: one writer per database, see docs/identity.md). A reservation made
 * after it returned carries the new epoch, and was checked against every nonce recorded with an
 * effect until then; one made before or during the load carries another (0 during it). db must
 * be idle (not in a transaction); the rows are counted and read with a cursor in one read-only
 * transaction. Returns the number of rows put in memory; AC_NONCE_LOAD_TOO_MANY when they are
 * more than half the cache's capacity (nothing is loaded: the room is left to the requests to
 * come); -1 on a database error. On either failure *epoch is 0, and until a load succeeds no
 * reservation is final. */
#define AC_NONCE_LOAD_TOO_MANY (-2)
long ac_nonce_cache_load(struct ac_nonce_cache *c, PGconn *db, int64_t now, uint64_t *epoch);

/* The leadership of that epoch has ended: unless a later load began, no reservation is final
 * from now on (the epoch becomes 0). */
void ac_nonce_cache_end_epoch(struct ac_nonce_cache *c, uint64_t epoch);

/* The current epoch (0: no load complete, or one in progress). */
uint64_t ac_nonce_cache_epoch(struct ac_nonce_cache *c);

/* Evict expired entries from memory and, when db is not NULL, delete rows with
 * expires_at <= now - AC_NONCE_PURGE_GRACE (a row is kept that long after its expiry, so that a
 * request whose expiry was checked against a slightly earlier clock -- the sequencer's, just before
 * its ac_nonce_take runs -- still finds it). Returns the number of rows deleted from the database
 * (0 with db NULL), or -1 on a database error (memory is evicted regardless).
 *
 * Neither part stalls the requests beside it: memory is swept a slice of buckets at a time, the
 * lock released between slices; rows go AC_NONCE_PURGE_CHUNK to a statement (each its own
 * transaction, so a failure keeps the chunks before it deleted), and a row another transaction
 * has locked is skipped, not waited for: it goes at a later purge. */
long ac_nonce_purge(struct ac_nonce_cache *c, PGconn *db, int64_t now);

/* Number of entries currently in memory (expired ones included until evicted). */
size_t ac_nonce_cache_size(struct ac_nonce_cache *c);

/* ==== the batch writer ========================================================================
 *
 * A thread that decides many nonces with one statement: callers of ac_nonce_writer_check() that
 * need the database queue their nonce and wait; the thread takes everything queued (at most
 * AC_NONCE_BATCH_MAX), asks PostgreSQL once (one multi-row INSERT ... ON CONFLICT ... RETURNING
 * over arrays, with the same semantics as ac_nonce_seen_or_insert's statement: exactly one caller
 * among all server instances gets NEW for a (keyid, nonce)), and wakes each caller with its
 * answer. While one batch is in flight the next one gathers, so under load a round trip serves
 * many requests and when idle a request waits for one round trip only (no timer). The same
 * (keyid, nonce) twice in one batch: the first is decided by the database, the second is
 * REPLAYED. A database error answers AC_NONCE_DB_ERROR to the whole batch and records nothing.
 * The thread also purges expired nonces every AC_NONCE_PURGE_EVERY seconds (as ac_nonce_purge,
 * the table one chunk a turn, so that a nonce queued meanwhile waits for a chunk at most). */

#define AC_NONCE_BATCH_MAX 512
#define AC_NONCE_PURGE_GRACE 60
#define AC_NONCE_PURGE_EVERY 60
#define AC_NONCE_PURGE_CHUNK 5000

struct ac_nonce_writer;

/* Where the writer takes its connection for a batch (NULL: the database is unreachable) and gives
 * it back (broken = 1 after a connection-level failure). */
typedef PGconn *(*ac_nonce_db_get_fn)(void *cls);
typedef void (*ac_nonce_db_put_fn)(void *cls, PGconn *db, int broken);

/* Start a writer for cache c (which must outlive it). Returns NULL on allocation or thread
 * failure. */
struct ac_nonce_writer *ac_nonce_writer_new(struct ac_nonce_cache *c, ac_nonce_db_get_fn get,
                                            ac_nonce_db_put_fn put, void *cls);

/* Stop taking nonces (later checks answer AC_NONCE_DB_ERROR), answer everything queued (calling
 * its `done`), and stop the thread. Idempotent; ac_nonce_writer_free() does it too. */
void ac_nonce_writer_close(struct ac_nonce_writer *w);

/* Close and free. Accepts NULL. */
void ac_nonce_writer_free(struct ac_nonce_writer *w);

/* ac_nonce_seen_or_insert() through the writer: the same checks, order and results; the database
 * is asked in a batch. Blocks until answered. Thread-safe. */
enum ac_nonce_result ac_nonce_writer_check(struct ac_nonce_writer *w, const char *keyid,
                                           const char *nonce, int64_t created, int64_t now);

/* The same without blocking, for a caller that suspends its work meanwhile (an HTTP worker that
 * suspends its connection). The ticket is the caller's memory, untouched by the caller from
 * start until `done` is called; its members are private. */
typedef void (*ac_nonce_done_fn)(void *cls);
struct ac_nonce_ticket {
    char keyid[AC_NONCE_FIELD_MAX + 1], nonce[AC_NONCE_FIELD_MAX + 1];
    uint8_t h[32];
    int64_t exp, now;
    enum ac_nonce_result res;
    int done;
    ac_nonce_done_fn done_fn; /* NULL: a blocking caller waiting on cv */
    void *done_cls;
    void *cv; /* pthread_cond_t of a blocking caller */
    struct ac_nonce_ticket *next, *dup_of;
};

/* Check (keyid, nonce) as ac_nonce_writer_check() does. Returns the answer when it is known at
 * once (everything but a nonce the database must decide), or AC_NONCE_PENDING: the nonce is
 * queued, and done(cls) will be called once from the writer's thread; then (not before) call
 * ac_nonce_writer_finish(). */
enum ac_nonce_result ac_nonce_writer_start(struct ac_nonce_writer *w, struct ac_nonce_ticket *t,
                                           const char *keyid, const char *nonce, int64_t created,
                                           int64_t now, ac_nonce_done_fn done, void *cls);

/* The answer of a pending ticket whose done() was called (remembering it in memory). */
enum ac_nonce_result ac_nonce_writer_finish(struct ac_nonce_writer *w, struct ac_nonce_ticket *t);

/* Record (keyid, nonce) until exp in the database on db, whatever memory says (the statement of
 * ac_nonce_seen_or_insert). Returns 1 when recorded now, 0 when the database held it already, -1
 * on a database error. For a caller that cannot use the writer (it is closing). */
int ac_nonce_record(PGconn *db, const char *keyid, const char *nonce, int64_t exp, int64_t now);

/* For a multi-row statement over nonces (the writer's; the sequencer's ac_nonce_take and
 * nonce_put): append one row (keyid, nonce, exp) to three parallel text array literals, each
 * begun with "{" by the caller, who closes them with "}". keyids and nonces are printable ASCII,
 * quoted, with only '"' and '\' needing a backslash. */
void ac_nonce_array_row(struct ac_buf *keyids, struct ac_buf *nonces, struct ac_buf *exps,
                        const char *keyid, const char *nonce, int64_t exp);

/* ... and read its answer: for each row (keyid, nonce) of r, set taken[i] = 1 for the i with
 * taken[i] == 0 and that keyid and nonce (entries preset otherwise are skipped). */
void ac_nonce_match_taken(const PGresult *r, const char *const *keyids, const char *const *nonces,
                          size_t n, int *taken);

/* Record a nonce that ac_nonce_reserve() took but nothing else recorded (a request refused before
 * its effect was attempted): queued for the writer's next batch, without waiting and without an
 * answer. Returns 0, or -1 (bad arguments, out of memory, the writer closing). */
int ac_nonce_writer_record(struct ac_nonce_writer *w, const char *keyid, const char *nonce,
                           int64_t exp, int64_t now);

/* Begin a purge now rather than at its time (a purge under way goes on). */
void ac_nonce_writer_purge_soon(struct ac_nonce_writer *w);

/* Rows the writer's purges deleted so far. */
uint64_t ac_nonce_writer_purged(struct ac_nonce_writer *w);

/* Batches and nonces the writer sent to the database so far, and the callers queued now (for
 * tests and metrics). */
void ac_nonce_writer_stats(struct ac_nonce_writer *w, uint64_t *batches, uint64_t *nonces,
                           size_t *queued);

#endif
