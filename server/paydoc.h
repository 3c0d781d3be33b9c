/* server/paydoc.h -- what the mandate, payment and authorization handlers share: the {"jws"}
 * body, verifying a user-signed document, evidence references and amounts in answers. */
#ifndef AC_PAYDOC_H
#define AC_PAYDOC_H

#include <stdint.h>

#include <jansson.h>

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
/* The payment object of the API (server/h_payments.c). New reference or NULL. */
json_t *ac_payment_json(const struct ac_payment_row *p);

/* 503 not_leader: these endpoints are served by the writer node. */
enum MHD_Result ac_paydoc_leader_only(struct ac_req *r);

#endif
