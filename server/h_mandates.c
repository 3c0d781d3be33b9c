/* Mandates (docs/mandates.md).
 *
 * POST /v1/mandates               {"jws": "<compact mandate>"}     201 | 200 (the same JWS again)
 * GET  /v1/mandates/{id}          (operator) the mandate, its status, spend and headroom
 * POST /v1/mandates/{id}/revoke   {"jws": "<compact revocation>"}  200 (also when already revoked)
 *
 * The POSTs need no operator token: the user's signature is the authority. The HTTP thread
 * parses, looks the asset's scale and the signing key up and verifies the signature; the
 * sequencer then checks what can have changed (the id is free, the key still the user's) and
 * writes the mandate with its evidence record. The answers are read back from the database, so
 * they show exactly what was committed. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger/payments.h"
#include "protocol/mandate.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

struct mctx {
    struct ac_cmd cmd;
    struct ac_payop op;
    struct ac_mandate m;
    char *jws;
};

static void mctx_free(void *p)
{
    struct mctx *x = p;
    free(x->jws);
    free(x);
}

static json_t *bucket_json(const char *asset, unsigned scale, const struct ac_spend_bucket *b)
{
    char ts[40];
    ac_rfc3339(b->start_s * 1000000, ts);
    return json_pack("{s:s, s:o, s:o}", "start", ts, "spent",
                     ac_doc_amount_json(asset, b->spent, scale), "held",
                     ac_doc_amount_json(asset, b->held, scale));
}

static void headroom_set(json_t *h, const char *name, const char *asset, int64_t v, unsigned scale)
{
    if (v != AC_MANDATE_UNSET) json_object_set_new(h, name, ac_doc_amount_json(asset, v, scale));
}

static const char *status_name(const struct ac_mandate *m, int revoked, int64_t now_s)
{
    if (revoked) return "revoked";
    if (now_s >= m->exp) return "expired";
    if (now_s < m->nbf) return "not_yet_valid";
    return "active";
}

/* The answer for mandate `id` as committed: 200/201 JSON, or a problem. */
static enum MHD_Result reply_mandate(struct ac_req *r, const char *id, unsigned status,
                                     const struct ac_payop *op)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_mandate_row row;
    enum ac_qs qs = ac_payments_read_mandate(c, id, &row);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_MANDATE_UNKNOWN, NULL, NULL);
    struct ac_jws j;
    struct ac_mandate m;
    enum ac_ec ec = ac_jws_parse(row.jws, strlen(row.jws), &j, NULL);
    if (ec == AC_EC_OK) ec = ac_mandate_parse(j.payload_json, row.scale, &m, NULL);
    ac_jws_clear(&j);
    if (ec != AC_EC_OK) {
        ac_mandate_row_clear(&row);
        return ac_reply_problem(r, AC_EC_INTERNAL, "stored mandate does not parse", NULL);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    struct ac_spend_headroom h;
    ac_spend_headroom(&m, &row.spend, now_us, &h);
    char created[40], asof[40];
    ac_rfc3339(row.created_us, created);
    ac_rfc3339(now_us, asof);
    const char *a = m.asset;
    json_t *head = json_object();
    if (head) {
        headroom_set(head, "day", a, h.day, m.scale);
        headroom_set(head, "week", a, h.week, m.scale);
        headroom_set(head, "month", a, h.month, m.scale);
        headroom_set(head, "total", a, h.total, m.scale);
        if (h.uses != AC_MANDATE_UNSET) json_object_set_new(head, "uses", json_integer(h.uses));
    }
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:{s:o, s:o, s:o, s:{s:o, s:o}, s:I, s:I}, s:o, s:s}",
        "id", m.id, "user", m.iss, "signed_by", row.kid, "status",
        status_name(&m, row.revoked, ac_us_to_s(now_us)), "mandate", ac_mandate_to_json(&m), "jws",
        row.jws, "created_at", created, "spend", "day", bucket_json(a, m.scale, &h.view.day),
        "week", bucket_json(a, m.scale, &h.view.week), "month",
        bucket_json(a, m.scale, &h.view.month), "total", "spent",
        ac_doc_amount_json(a, h.view.spent, m.scale), "held",
        ac_doc_amount_json(a, h.view.held, m.scale), "uses", (json_int_t)h.view.uses, "holds",
        (json_int_t)h.view.holds, "headroom", head, "as_of", asof);
    if (o && row.revoked) {
        ac_rfc3339(row.revoked_us, created);
        json_object_set_new(o, "revoked_at", json_string(created));
        json_object_set_new(o, "revocation",
                            json_pack("{s:s, s:s}", "signed_by", row.revocation_kid, "jws",
                                      row.revocation_jws ? row.revocation_jws : ""));
    }
    if (o && op && op->has_evidence)
        json_object_set_new(o, "evidence", ac_paydoc_evidence_json(op->ev_seq, op->ev_leaf));
    ac_mandate_row_clear(&row);
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, status, o);
}

static struct mctx *new_ctx(struct ac_req *r)
{
    struct mctx *x = calloc(1, sizeof *x);
    if (x == NULL) return NULL;
    r->hctx = x;
    r->hctx_free = mctx_free;
    return x;
}

static enum MHD_Result resumed(struct ac_req *r, struct mctx *x, const char *id, unsigned created)
{
    if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
    if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
    return reply_mandate(r, id, x->op.replayed ? 200 : created, &x->op);
}

enum MHD_Result ac_h_mandates_post(struct ac_req *r)
{
    struct mctx *x = r->hctx;
    if (x != NULL) return resumed(r, x, x->m.id, 201);
    if (!ac_seq_is_leader(r->app->seq)) return ac_paydoc_leader_only(r);
    if ((x = new_ctx(r)) == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    struct ac_jws j;
    enum MHD_Result rc;
    if (!ac_paydoc_jws(r, &x->jws, &j, &rc)) return rc;
    const char *detail = NULL;
    enum ac_ec ec = ac_mandate_jws_check(&j, &detail);
    const char *asset = ec == AC_EC_OK ? ac_mandate_peek_asset(j.payload_json) : NULL;
    if (ec == AC_EC_OK && asset == NULL) {
        ec = AC_EC_MANDATE_INVALID;
        detail = "asset is missing or not an asset code";
    }
    unsigned scale = 0;
    if (ec == AC_EC_OK) ec = ac_assets_scale(r->app, asset, &scale);
    struct ac_doc_err err = {0};
    if (ec != AC_EC_OK) {
        ac_jws_clear(&j);
        return ac_reply_problem(r, ec, detail, NULL);
    }
    ec = ac_mandate_parse(j.payload_json, scale, &x->m, &err);
    if (ec != AC_EC_OK) {
        ac_jws_clear(&j);
        return ac_paydoc_problem(r, ec, &err);
    }
    /* the signature, with a key registered to the user the mandate names */
    snprintf(x->op.kid, sizeof x->op.kid, "%s", j.kid ? j.kid : "");
    ec = ac_paydoc_verify_user(r, &j, x->m.iss, j.kid);
    ac_jws_clear(&j);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    /* the same document again answers what was registered, whatever the clock says now */
    struct ac_mandate_brief b;
    if (ac_payments_mandate_brief(r->app->payments, x->m.id, &b) != AC_EC_OK &&
        (int64_t)time(NULL) >= x->m.exp)
        return ac_reply_problem(r, AC_EC_MANDATE_EXPIRED, "exp has passed", NULL);
    x->op.kind = AC_PAYOP_MANDATE;
    x->op.mandate = &x->m;
    x->op.jws = x->jws;
    ac_payments_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

enum MHD_Result ac_h_mandates_get(struct ac_req *r)
{
    return reply_mandate(r, r->params[0], 200, NULL);
}

enum MHD_Result ac_h_mandate_revoke(struct ac_req *r)
{
    struct mctx *x = r->hctx;
    if (x != NULL) return resumed(r, x, r->params[0], 200);
    if (!ac_seq_is_leader(r->app->seq)) return ac_paydoc_leader_only(r);
    if ((x = new_ctx(r)) == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    struct ac_jws j;
    enum MHD_Result rc;
    if (!ac_paydoc_jws(r, &x->jws, &j, &rc)) return rc;
    const char *detail = NULL;
    enum ac_ec ec = ac_mandate_revocation_jws_check(&j, &detail);
    struct ac_mandate_revocation rv;
    struct ac_doc_err err = {0};
    if (ec == AC_EC_OK) {
        ec = ac_mandate_revocation_parse(j.payload_json, &rv, &err);
        detail = NULL;
    }
    if (ec != AC_EC_OK) {
        ac_jws_clear(&j);
        return detail ? ac_reply_problem(r, ec, detail, NULL) : ac_paydoc_problem(r, ec, &err);
    }
    struct ac_mandate_brief b;
    if (strcmp(rv.mandate, r->params[0]) != 0)
        ec = AC_EC_REVOCATION_INVALID, detail = "the payload's mandate differs from the path";
    else if ((ec = ac_payments_mandate_brief(r->app->payments, rv.mandate, &b)) != AC_EC_OK)
        detail = NULL;
    else if (strcmp(b.iss, rv.iss) != 0)
        ec = AC_EC_REVOCATION_INVALID, detail = "iss is not the mandate's user";
    else if (rv.iat > (int64_t)time(NULL) + AC_STEPUP_SKEW_S)
        ec = AC_EC_REVOCATION_INVALID, detail = "iat lies in the future";
    if (ec == AC_EC_OK) ec = ac_paydoc_verify_user(r, &j, rv.iss, j.kid);
    snprintf(x->op.kid, sizeof x->op.kid, "%s", j.kid ? j.kid : "");
    ac_jws_clear(&j);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, detail, NULL);
    x->op.kind = AC_PAYOP_MANDATE_REVOKE;
    snprintf(x->op.mandate_id, sizeof x->op.mandate_id, "%s", rv.mandate);
    snprintf(x->op.user, sizeof x->op.user, "%s", rv.iss);
    x->op.jws = x->jws;
    ac_payments_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}
