/* Step-up authorizations (docs/mandates.md, "Step-up").
 *
 * GET  /v1/authorizations/{id}           the challenge and its state
 * POST /v1/authorizations/{id}/confirm   {"jws": "<compact confirmation, decision confirm>"}
 * POST /v1/authorizations/{id}/decline   {"jws": "<compact confirmation, decision decline>"}
 *
 * No operator token and no request signature: an authorization id is 128 random bits that only
 * the paying agent (in its payment answer) and whoever it hands the challenge to (the user's
 * wallet) know, so the id is the capability to read the challenge; deciding it needs the user's
 * signature. The HTTP thread verifies the confirmation against the stored challenge (signature by
 * a key of the payer, authorization, nonce, payment digest, expiry, iat); the sequencer decides
 * it exactly once (the hold is posted or voided, the spend settled or released, one evidence
 * record) and re-runs the risk decision for a confirmation. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger/payments.h"
#include "protocol/stepup.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

struct actx {
    struct ac_cmd cmd;
    struct ac_payop op;
    struct ac_stepup_confirmation conf;
    char *jws;
};

static void actx_free(void *p)
{
    struct actx *x = p;
    free(x->jws);
    free(x);
}

static json_t *authz_json(const struct ac_authz_row *z)
{
    char created[40], exp[40];
    ac_rfc3339(z->created_us, created);
    ac_rfc3339(z->exp * 1000000, exp);
    json_t *ch = json_loads(z->challenge, JSON_REJECT_DUPLICATES, NULL);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", z->id, "payment", z->payment,
                          "user", z->user, "status", z->status, "challenge", ch ? ch : json_null(),
                          "expires_at", exp, "created_at", created);
    if (o == NULL) return NULL;
    if (z->decided_us) {
        ac_rfc3339(z->decided_us, created);
        json_object_set_new(o, "decided_at", json_string(created));
    }
    if (z->confirmation_kid[0])
        json_object_set_new(o, "signed_by", json_string(z->confirmation_kid));
    if (z->transfer_id[0]) json_object_set_new(o, "transfer", json_string(z->transfer_id));
    if (z->has_evidence)
        json_object_set_new(o, "evidence", ac_paydoc_evidence_json(z->ev_seq, z->ev_leaf));
    return o;
}

static enum ac_qs read_authz(struct ac_req *r, const char *id, struct ac_authz_row *z)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return AC_QS_SOFT_ERROR;
    enum ac_qs qs = ac_payments_read_authz(c, id, z);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    return qs;
}

enum MHD_Result ac_h_authorizations_get(struct ac_req *r)
{
    struct ac_authz_row z;
    enum ac_qs qs = read_authz(r, r->params[0], &z);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_AUTHORIZATION_UNKNOWN, NULL, NULL);
    json_t *o = authz_json(&z);
    ac_authz_row_clear(&z);
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, 200, o);
}

/* After the sequencer decided: {"authorization", "payment"} as committed; a confirmation that
 * the risk decision refused (binding or mandate revoked or expired meanwhile) is 422
 * payment_denied with its reasons and the same members. */
static enum MHD_Result reply_decided(struct ac_req *r, struct actx *x)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_authz_row z;
    struct ac_payment_row p;
    memset(&p, 0, sizeof p);
    enum ac_qs qs = ac_payments_read_authz(c, r->params[0], &z);
    if (qs > 0) {
        qs = ac_payments_read_payment(c, z.payment, &p);
        if (qs <= 0) ac_authz_row_clear(&z);
    }
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs <= 0) return ac_reply_db_error(r, qs == AC_QS_NO_RESULTS ? AC_QS_HARD_ERROR : qs);
    json_t *o =
        json_pack("{s:o, s:o}", "authorization", authz_json(&z), "payment", ac_payment_json(&p));
    int denied = strcmp(z.status, "denied") == 0;
    ac_authz_row_clear(&z);
    ac_payment_row_clear(&p);
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (!denied) return ac_reply_json(r, 200, o);
    json_t *reasons = json_array();
    for (unsigned i = 0; reasons && i < x->op.decision.n; i++)
        json_array_append_new(reasons, json_string(ac_reason_code(x->op.decision.reasons[i])));
    json_object_set_new(o, "reasons", reasons ? reasons : json_array());
    return ac_reply_problem(r, AC_EC_PAYMENT_DENIED, NULL, o);
}

static enum MHD_Result answer(struct ac_req *r, enum ac_stepup_decision want)
{
    struct actx *x = r->hctx;
    if (x != NULL) {
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        return reply_decided(r, x);
    }
    if (!ac_seq_is_leader(r->app->seq)) return ac_paydoc_leader_only(r);
    if ((x = calloc(1, sizeof *x)) == NULL)
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    r->hctx = x;
    r->hctx_free = actx_free;
    /* the document */
    struct ac_jws j;
    enum MHD_Result rc;
    if (!ac_paydoc_jws(r, &x->jws, &j, &rc)) return rc;
    const char *detail = NULL;
    struct ac_doc_err err = {0};
    enum ac_ec ec = ac_stepup_confirmation_jws_check(&j, &detail);
    if (ec == AC_EC_OK) {
        detail = NULL;
        ec = ac_stepup_confirmation_parse(j.payload_json, &x->conf, &err);
    }
    if (ec != AC_EC_OK) {
        ac_jws_clear(&j);
        return detail ? ac_reply_problem(r, ec, detail, NULL) : ac_paydoc_problem(r, ec, &err);
    }
    if (x->conf.decision != want) {
        ac_jws_clear(&j);
        return ac_reply_problem(r, AC_EC_CONFIRMATION_INVALID,
                                want == AC_STEPUP_CONFIRM ? "this endpoint takes decision confirm"
                                                          : "this endpoint takes decision decline",
                                NULL);
    }
    /* the challenge it must answer */
    struct ac_authz_row z;
    enum ac_qs qs = read_authz(r, r->params[0], &z);
    if (qs <= 0) {
        ac_jws_clear(&j);
        if (qs == AC_QS_NO_RESULTS)
            return ac_reply_problem(r, AC_EC_AUTHORIZATION_UNKNOWN, NULL, NULL);
        return ac_reply_db_error(r, qs);
    }
    struct ac_stepup_challenge ch;
    json_t *cj = json_loads(z.challenge, JSON_REJECT_DUPLICATES, NULL);
    ec = cj ? ac_stepup_challenge_parse(cj, &ch, NULL) : AC_EC_INTERNAL;
    json_decref(cj);
    if (ec != AC_EC_OK) {
        ac_jws_clear(&j);
        ac_authz_row_clear(&z);
        return ac_reply_problem(r, AC_EC_INTERNAL, "stored challenge does not parse", NULL);
    }
    /* signed by a key of the payer */
    snprintf(x->op.kid, sizeof x->op.kid, "%s", j.kid ? j.kid : "");
    ec = ac_paydoc_verify_user(r, &j, ch.payer, j.kid);
    ac_jws_clear(&j);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    detail = NULL;
    /* this very challenge (authorization, nonce, payment), in time */
    if (ec == AC_EC_OK) ec = ac_stepup_confirmation_check(&x->conf, &ch, now_us, &detail);
    /* decided already (a replay, or after expiry) */
    if (ec == AC_EC_OK && strcmp(z.status, "pending") != 0)
        ec = strcmp(z.status, "expired") == 0 ? AC_EC_AUTHORIZATION_EXPIRED
                                              : AC_EC_AUTHORIZATION_ALREADY_DECIDED;
    ac_authz_row_clear(&z);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, detail, NULL);
    x->op.kind = AC_PAYOP_ANSWER;
    x->op.conf = &x->conf;
    x->op.jws = x->jws;
    ac_payments_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

enum MHD_Result ac_h_authorization_confirm(struct ac_req *r)
{
    return answer(r, AC_STEPUP_CONFIRM);
}

enum MHD_Result ac_h_authorization_decline(struct ac_req *r)
{
    return answer(r, AC_STEPUP_DECLINE);
}
