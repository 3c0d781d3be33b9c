/* server/http.h -- request context, route table, replies. One endpoint, one h_*.c file. */
#ifndef AC_HTTP_H
#define AC_HTTP_H

#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "protocol/amount.h"
#include "protocol/buf.h"
#include "protocol/errors.h"

struct ac_app;
struct ac_req;
struct ac_verified;
struct ac_authn_wait;

/* A handler is called once the whole body is in (and again after a resume, if it suspended).
 * It must either queue a reply (return ac_reply_*()) or suspend (return ac_suspend()). */
typedef enum MHD_Result (*ac_handler)(struct ac_req *r);

enum ac_auth {
    AC_AUTH_NONE = 0,
    AC_AUTH_OPERATOR = 1, /* Authorization: Bearer <operator token> */
    /* RFC 9421 signed requests (server/authn.h), checked once the body is complete and before the
     * handler runs; the handler finds the result in r->verified. */
    AC_AUTH_AGENT = 2,    /* signed by the agent key of an active binding */
    AC_AUTH_MERCHANT = 3, /* signed by a merchant key */
    AC_AUTH_SIGNED = 4,   /* either */
};

struct ac_route {
    const char *method;
    const char *pattern; /* "/v1/ledger/accounts/{id}": a {x} segment matches one id */
    ac_handler handler;
    enum ac_auth auth;
    size_t body_max; /* 0: no body allowed */
    unsigned flags;  /* AC_ROUTE_* (server/idem.h); omitted in the table: 0 */
};

#define AC_MAX_PATH_PARAMS 4

struct ac_req {
    struct ac_app *app;
    struct MHD_Connection *conn;
    const struct ac_route *route;
    int route_idx; /* index into the route table, or -1 */
    char method[16];
    char path[AC_ID_MAX * 4 + 64]; /* the path as received: percent-encoding is not decoded */
    char *target; /* the request target exactly as received (path and query), or NULL */
    char params[AC_MAX_PATH_PARAMS][AC_ID_MAX + 1];
    int nparams;
    struct ac_buf body;
    enum ac_ec early_error; /* set while reading (too large, bad route...), replied at the end */
    int suspended;
    int resumed;
    unsigned status; /* of the reply, for metrics */
    double t0;
    int started;                      /* the access handler has seen this request */
    struct ac_verified *verified;     /* signed routes: the verification result; else NULL */
    struct ac_authn_wait *authn_wait; /* signed routes: suspended on the replay check */
    int nonce_pending;    /* r->verified's nonce is in memory only: not yet recorded (authn.h) */
    int64_t nonce_exp;    /* its expiry (unix seconds) */
    uint64_t nonce_epoch; /* the replay cache's epoch when it was reserved (keys/nonce.h) */
    struct ac_idem *idem; /* Idempotency-Key state (server/idem.h), or NULL */
    int idem_checked;     /* ac_idem_begin ran */
    /* the handler's own state across suspend/resume */
    void *hctx;
    void (*hctx_free)(void *hctx);
};

/* The static route table (server/routes.c). */
extern const struct ac_route ac_routes[];
extern const unsigned ac_n_routes;

/* ---- replies (each returns what MHD_queue_response returned) --------------------------------- */

/* Reply with a JSON body; steals the reference to body. */
enum MHD_Result ac_reply_json(struct ac_req *r, unsigned status, json_t *body);
/* Reply with JSON text already serialized (len bytes, a malloc'd block whose ownership passes to
 * the reply, freed in every case). */
enum MHD_Result ac_reply_json_text(struct ac_req *r, unsigned status, char *text, size_t len);
/* Bytes as a JSON string in standard base64 (RFC 4648 §4), or NULL when out of memory. */
json_t *ac_json_b64(const uint8_t *p, size_t n);
/* RFC 9457 problem+json: type, title, status, detail (may be NULL), code, instance; `extra`
 * members (may be NULL; reference stolen) are merged in. 503s carry Retry-After. */
enum MHD_Result ac_reply_problem(struct ac_req *r, enum ac_ec ec, const char *detail,
                                 json_t *extra);
/* An answer recorded under an Idempotency-Key (server/idem.h), sent as it was given: status,
 * Content-Type, Location (NULL: none) and the body bytes (copied); `replayed` adds
 * `Idempotent-Replayed: true`. */
enum MHD_Result ac_reply_recorded(struct ac_req *r, unsigned status, const char *ctype,
                                  const char *location, const char *body, size_t len, int replayed);
/* Plain text body (for /metrics). */
enum MHD_Result ac_reply_text(struct ac_req *r, unsigned status, const char *ctype,
                              const char *text, size_t len);

/* ---- request helpers ------------------------------------------------------------------------ */

/* Parse the body as a JSON object (duplicates rejected). On failure queues a problem reply, sets
 * *out = NULL and returns the MHD result to return from the handler; on success returns MHD_YES
 * with *out set (caller owns it). Check with `if (*out == NULL) return rc;`. */
enum MHD_Result ac_req_json(struct ac_req *r, json_t **out);

/* Suspend the connection until ac_resume(). Returns MHD_YES. */
enum MHD_Result ac_suspend(struct ac_req *r);
/* Resume a suspended connection (any thread); the handler is called again. */
void ac_resume(struct ac_req *r);

/* Header value or NULL. */
const char *ac_req_header(struct ac_req *r, const char *name);

/* Format microseconds since the epoch as RFC 3339 UTC with microseconds. */
void ac_rfc3339(int64_t us, char out[40]);

#endif
