/* ledger/idempotency.h -- Idempotency-Key records at rest (sql/0009_idempotency.sql).
 *
 * A record is the answer given to one request under one key: who asked (the caller), the method
 * and path, the key, the SHA-256 fingerprint of the request, and the status, Content-Type,
 * Location and body of the answer. The sequencer writes it inside the batch that carries the
 * request's effect (ac_idem_stmt_insert from a command's seal, ledger/sequencer.h), so an effect
 * is never committed without its key, nor a key without its effect. The HTTP layer that decides
 * when to look records up and when to write them is server/idem.h. */
#ifndef AC_IDEMPOTENCY_H
#define AC_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "ledger/sequencer.h"

#define AC_IDEM_KEY_MAX 255    /* characters of an Idempotency-Key (visible ASCII) */
#define AC_IDEM_CALLER_MAX 200 /* bytes of a caller scope ("agent:<user>/<agent>", "operator", ...) */

struct ac_idem_record {
    const char *caller, *method, *path, *key;
    uint8_t fingerprint[32];
    unsigned status;
    const char *content_type;
    const char *location; /* NULL: none */
    const char *body;     /* NUL-terminated text (the answers are JSON) */
    int64_t created_us;
};

/* A record read back; strings are owned (ac_idem_row_clear). */
struct ac_idem_row {
    uint8_t fingerprint[32];
    unsigned status;
    char *content_type;
    char *location; /* NULL: none */
    char *body;
    size_t body_len;
};
void ac_idem_row_clear(struct ac_idem_row *r);

/* Register the statements (writer: insert, sweep; reader: lookup, insert). Before any connect.
 * Returns 0, or -1. */
int ac_idem_register_statements(void);

/* Look the record of (caller, method, path, key) up. ONE_RESULT and *out, NO_RESULTS, or an
 * error (nothing in *out). Reader or writer connection. */
enum ac_qs ac_idem_get(PGconn *c, const char *caller, const char *method, const char *path,
                       const char *key, struct ac_idem_row *out);

/* Add the record's insert to the batch being applied (sequencer thread). An existing record of
 * the same (caller, method, path, key) is left as it is. Returns 0, or -1 when out of memory. */
int ac_idem_stmt_insert(struct ac_apply *a, const struct ac_idem_record *rec);

/* Insert the record on its own (a route whose effect does not go through the sequencer).
 * ONE_RESULT (inserted, or a record existed), or an error. */
enum ac_qs ac_idem_insert(PGconn *c, const struct ac_idem_record *rec);

/* ---- expiry ---------------------------------------------------------------------------------- */

/* The sweep, a part of the sequencer's domain (ledger/domain.h): once per interval the sequencer
 * deletes up to `limit` records older than the retention, oldest first, inside an ordinary batch. */
struct ac_idem_sweeper {
    int64_t retention_us; /* >= 24 h */
    int64_t interval_us;  /* 1 s */
    unsigned limit;       /* 10000 */
    int64_t next_us;      /* the next sweep (sequencer thread) */
};
/* Retention in seconds (raised to 86400 when lower); interval and limit at their defaults. */
void ac_idem_sweeper_init(struct ac_idem_sweeper *s, long retention_s);
/* The domain's hooks: after a load (sweep at once), the next sweep's time, and the tick (adds
 * the delete to the batch when due; 0, or -1 when out of memory). */
void ac_idem_sweeper_loaded(struct ac_idem_sweeper *s);
int64_t ac_idem_sweeper_deadline(const struct ac_idem_sweeper *s);
int ac_idem_sweeper_tick(struct ac_idem_sweeper *s, struct ac_apply *a);

#endif
