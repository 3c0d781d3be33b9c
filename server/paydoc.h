/* server/paydoc.h -- what the mandate, payment, tab, top-up, refund and authorization handlers
 * share: the {"jws"} body, verifying a user-signed document, evidence references and amounts in
 * answers, and the opening of a signed money request. */
#ifndef AC_PAYDOC_H
#define AC_PAYDOC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "keys/resolved.h"
#include "protocol/jdoc.h"
#include "protocol/jose.h"
#include "server/http.h"

/* The body {"jws": "<compact jws>"}: a malloc'd copy of the text in *out. On failure queues a
 * problem, leaves *out NULL and returns what the handler must return. */
enum MHD_Result ac_paydoc_body_jws(struct ac_req *r, char **out);

/* The {"jws"} body as ac_paydoc_body_jws() reads it, parsed (ac_jws_parse): returns 1 with the
 * text in *text and the parsed JWS in *j (the caller ac_jws_clear()s it). Otherwise queues a
 * problem, stores in *rc what the handler must return and returns 0 (*text may hold the text). */
int ac_paydoc_jws(struct ac_req *r, char **text, struct ac_jws *j, enum MHD_Result *rc);

/* Verify a parsed JWS with key `kid` of user `user`: AC_EC_OK, AC_EC_USER_UNKNOWN,
 * AC_EC_JWS_KEY_UNKNOWN or AC_EC_JWS_BAD_SIGNATURE. */
enum ac_ec ac_paydoc_verify_user(struct ac_req *r, const struct ac_jws *jws, const char *user,
                                 const char *kid);

/* {"seq": n, "leaf_hash": "<standard base64>"} (new reference or NULL). */
json_t *ac_paydoc_evidence_json(uint64_t seq, const uint8_t leaf[32]);

/* A problem for a document refused with err (detail and, when set, "pointer"). */
enum MHD_Result ac_paydoc_problem(struct ac_req *r, enum ac_ec ec, const struct ac_doc_err *err);

struct ac_pay_signed;
/* The verified RFC 9421 request r rests on (r->verified) and r's body, as a payment or a refund
 * keeps it for its evidence record (borrowed from r). */
void ac_paydoc_signed(const struct ac_req *r, struct ac_pay_signed *out);

struct ac_payment_row;
struct ac_buf;
/* The payment object of the API (server/h_payments.c). New reference or NULL. */
json_t *ac_payment_json(const struct ac_payment_row *p);
/* The same object as JSON text appended to out, byte for byte what jansson writes of it
 * (JSON_COMPACT); 0, or -1 when out of memory, p has a step-up or its free text is not UTF-8
 * (use ac_payment_json then). */
int ac_payment_json_text(const struct ac_payment_row *p, struct ac_buf *out);

/* 503 not_leader: these endpoints are served by the writer node. */
enum MHD_Result ac_paydoc_leader_only(struct ac_req *r);

/* A problem about one member of the body: its code, detail (NULL: none) and {"pointer"}. */
enum MHD_Result ac_paydoc_bad(struct ac_req *r, enum ac_ec ec, const char *pointer,
                              const char *detail);

/* ==== the opening of a signed money request ===================================================
 */

/* The first call of a POST that goes to the sequencer: 503 not_leader when this node is not the
 * writer, then AC_EC_SIG_KEY_UNKNOWN with `detail` when r was not signed by a principal of
 * `kind`, then a zeroed context of `size` bytes in r->hctx (freed by ctx_free). Returns the
 * context, or NULL having queued a problem and stored in *rc what the handler must return. */
void *ac_paydoc_begin(struct ac_req *r, enum ac_principal_kind kind, const char *detail,
                      size_t size, void (*ctx_free)(void *), enum MHD_Result *rc);

/* What an agent-signed money request (POST /v1/payments, /v1/tabs, /v1/topups) carries in
 * common, filled by ac_paydoc_agent_money(). */
struct ac_agent_money {
    /* Point the format's arguments for these members here: they borrow from the body and are
     * valid only during the call (in spec->check). */
    struct {
        const char *id, *mandate, *payee, *currency, *value, *token;
    } j;
    json_t *body; /* the parsed body, during the call only */
    /* on success: */
    char id[AC_ID_MAX + 1], mandate[AC_ID_MAX + 1], payee[AC_ID_MAX + 1];
    char category[AC_ID_MAX + 1]; /* the payee's registered merchant category */
    char binding[AC_ID_MAX + 1];  /* the binding the request was signed under */
    char asset[AC_ASSET_MAX + 1], token_asset[AC_ASSET_MAX + 1];
    unsigned scale, token_scale;
    int64_t amount; /* > 0, in the asset's base unit */
};

/* How one endpoint's body differs. */
struct ac_agent_money_spec {
    const char *payee_key; /* the payee's member: "payee", or "provider" (top-ups) */
    const char *token_key; /* NULL, or a second asset code checked along with the amount's
                              currency (a top-up's "token_asset", into j.token) */
    /* The endpoint's own checks of its members, between the ids and the amount (cls is the
     * call's): 1, or 0 having queued a problem and stored in *rc what to return. NULL: none. */
    int (*check)(struct ac_req *r, const struct ac_agent_money *m, void *cls, enum MHD_Result *rc);
};

/* Parse and check the body of an agent-signed money request (r->verified is an agent's):
 *   the JSON object (ac_req_json), unpacked strictly with fmt and its arguments (jansson's text
 *   in a 400 json_schema), which must set j.id, j.mandate, j.payee, j.currency, j.value (and
 *   j.token with spec->token_key);
 *   id, mandate and payee are ids (id_invalid at /id, /mandate, /<payee_key>);
 *   spec->check;
 *   the currency (and token) is a valid code (asset_invalid) of a known asset; the value parses
 *   at the currency's scale and is not zero (/amount/currency, /token_key, /amount/value);
 *   the mandate is known to this node (/mandate) and the payee is a merchant (/<payee_key>).
 * Returns 1 with *m filled, or 0 having queued the first problem found and stored in *rc what
 * the handler must return. The body is released before it returns either way. */
int ac_paydoc_agent_money(struct ac_req *r, const struct ac_agent_money_spec *spec, void *cls,
                          struct ac_agent_money *m, enum MHD_Result *rc, const char *fmt, ...);

#endif
