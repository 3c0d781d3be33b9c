/* server/idem.h -- the Idempotency-Key layer (docs/merchant-api.md, "Idempotency").
 *
 * A route opts in with the flag AC_ROUTE_IDEMPOTENT in its route-table entry (server/routes.c);
 * its handler needs no change as long as it runs its effect through ac_seqcall() and answers
 * from that one command's outcome. For such a route and a request with an Idempotency-Key:
 *
 *  - the key (1-255 visible ASCII characters, one header) is scoped to the caller -- "operator"
 *    (operator token), "agent:<user>/<agent>" / "merchant:<id>" (the verified RFC 9421
 *    signer's principal), "anonymous" on routes whose authority is a signed document in the
 *    body -- and to the method and path; the request's fingerprint is
 *    SHA-256(method NUL path NUL body);
 *  - once authenticated and before its handler, the key is claimed in a bounded in-flight table
 *    (another request holding it: 409 idempotency_in_flight with Retry-After; table full: 503
 *    overloaded) and looked up in PostgreSQL: a record with the same fingerprint is answered
 *    again, status and body byte for byte, with `Idempotent-Replayed: true` and nothing run; a
 *    record with another fingerprint is 422 idempotency_key_reused;
 *  - otherwise the handler runs. When it submits its command, the command gets a seal
 *    (ledger/sequencer.h): on the sequencer thread, inside the batch's open transaction, the
 *    handler's answer is rendered (its replies are captured instead of sent; its database reads
 *    use the batch's connection and its registry reads the writer's view) and, unless it is a
 *    5xx, written as the key's record in that same transaction. Once the batch commits, exactly
 *    that answer is sent; if the batch fails, nothing of it (effect or key) exists and the handler
 *    answers the failure as usual;
 *  - an answer given without the sequencer is a 4xx of the request itself (syntax, signature,
 *    a check against committed state before submission) and is NOT stored: the key stays free, so
 *    the client may correct the request and send it again with the same key. A 2xx given without
 *    the sequencer (a route that writes directly, or an answer that the effect exists already)
 *    is stored on its own right before it is sent. 5xx answers are never stored;
 *  - the key is released from the in-flight table when the request completes. */
#ifndef AC_IDEM_H
#define AC_IDEM_H

#include <stddef.h>

#include "ledger/sequencer.h"
#include "server/http.h"

/* struct ac_route.flags */
#define AC_ROUTE_IDEMPOTENT 1u
/* The route's effect is one sequencer command (server/seqcall.c): the request's signature nonce
 * is recorded with it, in the batch's database round (server/authn.h, ac_authn_request_end). */
#define AC_ROUTE_NONCE_WITH_EFFECT 2u

/* The in-flight table: at most cap keys being processed at once (app->idem). */
struct ac_idem_table;
struct ac_idem_table *ac_idem_table_new(size_t cap);
void ac_idem_table_free(struct ac_idem_table *t);

/* Once the request is authenticated, before the handler: returns 1 when the handler should run
 * (r->idem is set when the request carries a key), or 0 when an answer was queued (*rc is the
 * MHD result: 400, 409, 422, a replay, 503). Routes without AC_ROUTE_IDEMPOTENT: always 1. */
int ac_idem_begin(struct ac_req *r, enum MHD_Result *rc);

/* When the request's batch committed with a sealed answer: queues that answer and returns 1
 * (*rc set); else 0 (call the handler). */
int ac_idem_ready(struct ac_req *r, enum MHD_Result *rc);

/* From the reply path (server/daemon.c), for every answer of a request with r->idem: returns 1
 * when the answer was captured (a seal is rendering it; body is taken over), else 0 (send it;
 * a 2xx given without the sequencer is recorded first). */
int ac_idem_on_reply(struct ac_req *r, unsigned status, const char *ctype, char **body, size_t len);

/* From ac_seqcall: give cmd its seal (when r->idem is set) and note that the sequencer decides. */
void ac_idem_cmd(struct ac_req *r, struct ac_cmd *cmd);
/* From ac_seqcall's done (sequencer thread): keep the sealed answer if cmd committed, else drop
 * it. */
void ac_idem_done(struct ac_req *r, const struct ac_cmd *cmd);

/* An answer was queued for r: release its key. Every answer is queued only after what it
 * reports is durable (a sealed record committed with its batch, or a 2xx recorded first) or when
 * nothing was written, so a duplicate that claims the key from now on finds the record or runs
 * afresh. Released here rather than when libmicrohttpd reports the request complete, which
 * comes after the answer was sent: a client that got its answer could otherwise be told 409
 * idempotency_in_flight for the very next request with the key. */
void ac_idem_answered(struct ac_req *r);

/* The request completed: release its key if still held and free its state. */
void ac_idem_end(struct ac_req *r);

#endif
