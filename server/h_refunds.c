/* Refunds (docs/merchant-api.md, "Refunds").
 *
 * POST /v1/payments/{id}/refunds   signed by the payee merchant (RFC 9421, AC_AUTH_MERCHANT)
 *   {"id", "amount": {"currency", "value"}, "reason"?}
 *   201 the refund; the same id with the same request answers the original refund again (200);
 *   with another request 409 refund_exists. 403 refund_not_payee (the signer is not the payment's
 *   payee), 422 refund_currency_mismatch, 409 payment_not_refundable (not settled), 422
 *   refund_exceeds_payment (the refunds would exceed the amount paid), the ledger's code when the
 *   merchant's wallet cannot pay (422 exceeds_credits).
 * GET  /v1/payments/{id}/refunds   (operator) the payment's refunds, oldest first.
 *
 * Phases: PARSE -> CHECK (the committed payment: payee, currency, scale; immutable once written)
 * -> REFUND (the sequencer: refund id, settled, remaining amount, the transfer merchant -> user,
 * the evidence record, one transaction) -> REPLY. */
#include <stdlib.h>
#include <string.h>

#include "ledger/payments.h"
#include "server/authn.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

#define REFUNDS_MAX 1000 /* a payment's refunds listed at most (each is at least one base unit) */

struct rctx {
    struct ac_cmd cmd;
    struct ac_payop op;
    struct ac_refund_request q;
};

static void rctx_free(void *p)
{
    free(p);
}

static json_t *refund_json(const struct ac_refund_row *f)
{
    char created[40];
    ac_rfc3339(f->created_us, created);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", f->id, "payment", f->payment,
                          "payee", f->merchant, "user", f->user, "amount",
                          ac_doc_amount_json(f->asset, f->amount, f->scale), "transfer",
                          f->transfer_id, "created_at", created);
    if (o == NULL) return NULL;
    if (f->reason[0]) json_object_set_new(o, "reason", json_string(f->reason));
    if (f->has_evidence)
        json_object_set_new(o, "evidence", ac_paydoc_evidence_json(f->ev_seq, f->ev_leaf));
    return o;
}

static enum MHD_Result bad(struct ac_req *r, enum ac_ec ec, const char *pointer, const char *detail)
{
    return ac_reply_problem(r, ec, detail, json_pack("{s:s}", "pointer", pointer));
}

static enum MHD_Result reply_stored(struct ac_req *r, const char *id, unsigned status)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_refund_row f;
    enum ac_qs qs = ac_payments_read_refund(c, id, &f);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS)
        return ac_reply_problem(r, AC_EC_INTERNAL, "refund not found", NULL);
    json_t *o = refund_json(&f);
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, status, o);
}

/* PARSE + CHECK into x->q. On failure queues a problem and returns 0 with *rc set. */
static int prepare(struct ac_req *r, struct rctx *x, enum MHD_Result *rc)
{
    const struct ac_verified *v = r->verified;
    struct ac_refund_request *q = &x->q;
    json_t *body;
    *rc = ac_req_json(r, &body);
    if (body == NULL) return 0;
    const char *id, *cur, *val;
    json_t *reason = NULL;
    json_error_t e;
    int ok = 0;
    struct ac_payment_row p;
    memset(&p, 0, sizeof p);
    if (json_unpack_ex(body, &e, JSON_STRICT, "{s:s, s:{s:s, s:s}, s?o}", "id", &id, "amount",
                       "currency", &cur, "value", &val, "reason", &reason)) {
        *rc = ac_reply_problem(r, AC_EC_JSON_SCHEMA, e.text, NULL);
        goto out;
    }
    struct ac_doc_err derr = {0};
    if (!ac_id_valid(id)) {
        *rc = bad(r, AC_EC_ID_INVALID, "/id", NULL);
        goto out;
    }
    if (reason && ac_doc_text(body, "", "reason", 1, q->reason, sizeof q->reason, &derr) != 1) {
        *rc = bad(r, AC_EC_PARAMETER_INVALID, "/reason",
                  "reason must be 1-255 bytes of text without control characters");
        goto out;
    }
    if (!ac_asset_code_valid(cur)) {
        *rc = bad(r, AC_EC_ASSET_INVALID, "/amount/currency", NULL);
        goto out;
    }
    /* CHECK: the committed payment (payee, payer, asset never change) */
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) {
        *rc = ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
        goto out;
    }
    enum ac_qs qs = ac_payments_read_payment(c, r->params[0], &p);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    enum ac_ec ec;
    if (qs < 0) {
        *rc = ac_reply_db_error(r, qs);
    } else if (qs == AC_QS_NO_RESULTS) {
        *rc = ac_reply_problem(r, AC_EC_PAYMENT_UNKNOWN, NULL, NULL);
    } else if (strcmp(p.payee, v->merchant_id) != 0) {
        *rc = ac_reply_problem(r, AC_EC_REFUND_NOT_PAYEE, NULL, NULL);
    } else if (strcmp(p.asset, cur) != 0) {
        *rc = bad(r, AC_EC_REFUND_CURRENCY_MISMATCH, "/amount/currency", NULL);
    } else if ((ec = ac_amount_parse(val, p.scale, &q->amount)) != AC_EC_OK) {
        *rc = bad(r, ec, "/amount/value", NULL);
    } else if (q->amount == 0) {
        *rc = bad(r, AC_EC_AMOUNT_ZERO, "/amount/value", NULL);
    } else {
        snprintf(q->id, sizeof q->id, "%s", id);
        memcpy(q->payment, p.id, sizeof q->payment);
        memcpy(q->merchant, p.payee, sizeof q->merchant);
        memcpy(q->user, p.user, sizeof q->user);
        memcpy(q->asset, p.asset, sizeof q->asset);
        q->scale = p.scale;
        ok = 1;
    }
out:
    ac_payment_row_clear(&p);
    json_decref(body);
    return ok;
}

enum MHD_Result ac_h_refunds_post(struct ac_req *r)
{
    struct rctx *x = r->hctx;
    if (x != NULL) { /* REPLY */
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        if (x->op.replayed) return reply_stored(r, x->q.id, 200);
        struct ac_refund_row f;
        memset(&f, 0, sizeof f);
        memcpy(f.id, x->q.id, sizeof f.id);
        memcpy(f.payment, x->q.payment, sizeof f.payment);
        memcpy(f.merchant, x->q.merchant, sizeof f.merchant);
        memcpy(f.user, x->q.user, sizeof f.user);
        memcpy(f.asset, x->q.asset, sizeof f.asset);
        f.scale = x->q.scale;
        f.amount = x->q.amount;
        memcpy(f.reason, x->q.reason, sizeof f.reason);
        memcpy(f.transfer_id, x->q.transfer_id, sizeof f.transfer_id);
        f.has_evidence = x->op.has_evidence;
        f.ev_seq = x->op.ev_seq;
        memcpy(f.ev_leaf, x->op.ev_leaf, sizeof f.ev_leaf);
        f.created_us = x->op.at_us;
        json_t *o = refund_json(&f);
        if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        return ac_reply_json(r, 201, o);
    }
    enum MHD_Result rc;
    x = ac_paydoc_begin(r, AC_PRINCIPAL_MERCHANT, "refunds are signed by the merchant", sizeof *x,
                        rctx_free, &rc);
    if (x == NULL) return rc;
    if (!prepare(r, x, &rc)) return rc;
    struct ac_refund_request *q = &x->q;
    if (ac_wallet_account(0, q->merchant, q->asset, q->debit) != 0 ||
        ac_wallet_account(1, q->user, q->asset, q->credit) != 0)
        return ac_reply_problem(r, AC_EC_ACCOUNT_UNKNOWN, "no wallet account id", NULL);
    ac_refund_transfer_id(q->id, q->transfer_id);
    ac_refund_request_digest(q);
    ac_paydoc_signed(r, &q->sig);
    x->op.kind = AC_PAYOP_REFUND;
    x->op.refund = q;
    ac_payments_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

enum MHD_Result ac_h_refunds_get(struct ac_req *r)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_payment_row p;
    enum ac_qs qs = ac_payments_read_payment(c, r->params[0], &p);
    struct ac_refund_row *rows = NULL;
    size_t n = 0;
    if (qs == AC_QS_ONE_RESULT) {
        ac_payment_row_clear(&p);
        rows = calloc(REFUNDS_MAX, sizeof *rows);
        qs = rows ? ac_payments_list_refunds(c, r->params[0], rows, REFUNDS_MAX, &n)
                  : AC_QS_HARD_ERROR;
    }
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) {
        free(rows);
        return ac_reply_db_error(r, qs);
    }
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_PAYMENT_UNKNOWN, NULL, NULL);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, refund_json(&rows[i]));
    free(rows);
    if (a == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, 200, json_pack("{s:s, s:o}", "payment", r->params[0], "refunds", a));
}
