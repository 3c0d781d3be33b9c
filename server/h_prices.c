/* Merchant price versions (docs/merchant-api.md, "Token top-ups").
 *
 * PUT /v1/merchants/{id}/prices   signed by that merchant (RFC 9421, AC_AUTH_MERCHANT)
 *   {"version": n, "prices": [{"fiat": {currency, value}, "tokens": {currency, value}}...]}
 *   (protocol/price.h). 201 the published version; the same version with the same prices again
 *   answers it once more (200); 409 price_version_exists (same version, other prices), 409
 *   price_version_old (not newer than the current one), 403 price_not_owner (another merchant).
 * GET /v1/merchants/{id}/prices             (operator) the versions, newest first, 20 a page
 *   ({"merchant", "current", "versions": [...], "next_cursor"?}; ?cursor= the previous page's).
 * GET /v1/merchants/{id}/prices/{version}   (operator) one version.
 *
 * Phases: PARSE (body, asset scales) -> PUBLISH (the sequencer: version checks, rows, the
 * `price.publish` evidence record, one transaction) -> REPLY. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/prices.h"
#include "protocol/b64.h"
#include "server/authn.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

#define VERSIONS_PAGE 20

struct prctx {
    struct ac_cmd cmd;
    struct ac_price_publish op;
    unsigned fiat_scale[AC_PRICES_MAX], token_scale[AC_PRICES_MAX];
};

static void prctx_free(void *p)
{
    free(p);
}

static json_t *version_json(const struct ac_price_version_row *v)
{
    char created[40];
    ac_rfc3339(v->created_us, created);
    json_t *a = json_array();
    for (size_t i = 0; a && i < v->n; i++) {
        const struct ac_price *p = &v->prices[i];
        json_array_append_new(
            a, json_pack("{s:o, s:o}", "fiat",
                         ac_doc_amount_json(p->fiat_asset, p->fiat, v->fiat_scale[i]), "tokens",
                         ac_doc_amount_json(p->token_asset, p->tokens, v->token_scale[i])));
    }
    json_t *o = a ? json_pack("{s:s, s:I, s:o, s:s}", "merchant", v->merchant, "version",
                              (json_int_t)v->version, "prices", a, "created_at", created)
                  : NULL;
    if (o && v->has_evidence)
        json_object_set_new(o, "evidence", ac_paydoc_evidence_json(v->ev_seq, v->ev_leaf));
    return o;
}

/* Read version back and reply with it (status). */
static enum MHD_Result reply_stored(struct ac_req *r, const char *merchant, int64_t version,
                                    unsigned status)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_price_version_row v;
    enum ac_qs qs = ac_prices_read_version(c, merchant, version, &v);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_PRICE_VERSION_UNKNOWN, NULL, NULL);
    json_t *o = version_json(&v);
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, status, o);
}

static enum MHD_Result bad(struct ac_req *r, enum ac_ec ec, const char *pointer, const char *detail)
{
    return ac_reply_problem(r, ec, detail, json_pack("{s:s}", "pointer", pointer));
}

/* PARSE into x->op. On failure queues a problem and returns 0 with *rc set. */
static int parse(struct ac_req *r, struct prctx *x, enum MHD_Result *rc)
{
    struct ac_price_list l;
    struct ac_doc_err err = {0};
    enum ac_ec ec = ac_price_list_parse(ac_buf_str(&r->body), r->body.len, &l, &err);
    if (ec != AC_EC_OK) {
        *rc = ac_paydoc_problem(r, ec, &err);
        return 0;
    }
    struct ac_price_publish *op = &x->op;
    for (size_t i = 0; i < l.n; i++) {
        char ptr[48];
        const char *which = "fiat";
        ec = ac_assets_scale(r->app, l.p[i].fiat_asset, &x->fiat_scale[i]);
        if (ec == AC_EC_OK) {
            which = "tokens";
            ec = ac_assets_scale(r->app, l.p[i].token_asset, &x->token_scale[i]);
        }
        if (ec == AC_EC_OK)
            ec = ac_price_resolve(&l.p[i], x->fiat_scale[i], x->token_scale[i], &op->prices[i]);
        if (ec != AC_EC_OK) {
            snprintf(ptr, sizeof ptr, "/prices/%zu/%s", i, which);
            *rc = bad(r, ec, ptr,
                      ec == AC_EC_PRICE_INVALID ? "values must be greater than zero" : NULL);
            return 0;
        }
    }
    op->n = l.n;
    op->version = l.version;
    return 1;
}

enum MHD_Result ac_h_prices_put(struct ac_req *r)
{
    struct prctx *x = r->hctx;
    if (x != NULL) { /* REPLY */
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        if (x->op.replayed) return reply_stored(r, x->op.merchant, x->op.version, 200);
        struct ac_price_version_row v;
        memset(&v, 0, sizeof v);
        memcpy(v.merchant, x->op.merchant, sizeof v.merchant);
        v.version = x->op.version;
        v.n = x->op.n;
        memcpy(v.prices, x->op.prices, sizeof v.prices);
        memcpy(v.fiat_scale, x->fiat_scale, sizeof v.fiat_scale);
        memcpy(v.token_scale, x->token_scale, sizeof v.token_scale);
        v.has_evidence = x->op.has_evidence;
        v.ev_seq = x->op.ev_seq;
        memcpy(v.ev_leaf, x->op.ev_leaf, sizeof v.ev_leaf);
        v.created_us = x->op.at_us;
        json_t *o = version_json(&v);
        if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        return ac_reply_json(r, 201, o);
    }
    if (!ac_seq_is_leader(r->app->seq)) return ac_paydoc_leader_only(r);
    const struct ac_verified *v = r->verified;
    if (v == NULL || v->kind != AC_PRINCIPAL_MERCHANT)
        return ac_reply_problem(r, AC_EC_SIG_KEY_UNKNOWN, "prices are signed by the merchant",
                                NULL);
    if (strcmp(v->merchant_id, r->params[0]) != 0)
        return ac_reply_problem(r, AC_EC_PRICE_NOT_OWNER, NULL, NULL);
    if ((x = calloc(1, sizeof *x)) == NULL)
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    r->hctx = x;
    r->hctx_free = prctx_free;
    enum MHD_Result rc;
    if (!parse(r, x, &rc)) return rc;
    struct ac_price_publish *op = &x->op;
    snprintf(op->merchant, sizeof op->merchant, "%s", v->merchant_id);
    ac_price_digest(op->merchant, op->version, op->prices, op->n, op->digest);
    ac_paydoc_signed(r, &op->sig);
    ac_prices_publish_cmd(&x->cmd, op);
    return ac_seqcall(r, &x->cmd);
}

/* 404 merchant_unknown unless id is a registered merchant. */
static enum ac_ec merchant_known(struct ac_req *r, const char *id)
{
    struct ac_principal_info info;
    enum ac_ec ec = ac_registry_principal_get(r->app->registry, AC_ROLE_MERCHANT, id, &info);
    if (ec == AC_EC_OK) ac_principal_info_clear(&info);
    return ec;
}

/* Digits only, no leading zero, 1..max. 0 or -1. */
static int parse_pos(const char *s, int64_t max, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19 || s[0] == '0') return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        int d = s[i] - '0';
        if (v > (max - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

enum MHD_Result ac_h_price_version_get(struct ac_req *r)
{
    int64_t version = 0;
    if (parse_pos(r->params[1], AC_PRICE_VERSION_MAX, &version) != 0)
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID, "version must be a positive integer",
                                NULL);
    enum ac_ec ec = merchant_known(r, r->params[0]);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    return reply_stored(r, r->params[0], version, 200);
}

enum MHD_Result ac_h_prices_get(struct ac_req *r)
{
    const char *id = r->params[0];
    int64_t before = 0;
    const char *cur = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "cursor");
    if (cur) { /* base64url of "v1:<version>" */
        uint8_t buf[48];
        size_t len = 0, n = strlen(cur);
        char t[48];
        if (n == 0 || n > 40 || ac_b64_decode(cur, n, buf, &len, 1) != 0 || len < 4 ||
            len >= sizeof t || memcmp(buf, "v1:", 3) != 0)
            return ac_reply_problem(r, AC_EC_PARAMETER_INVALID,
                                    "cursor is not one this server returned", NULL);
        memcpy(t, buf + 3, len - 3);
        t[len - 3] = '\0';
        if (parse_pos(t, INT64_MAX, &before) != 0)
            return ac_reply_problem(r, AC_EC_PARAMETER_INVALID,
                                    "cursor is not one this server returned", NULL);
    }
    enum ac_ec ec = merchant_known(r, id);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    struct ac_price_version_row *rows = calloc(VERSIONS_PAGE + 1, sizeof *rows);
    if (rows == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) {
        free(rows);
        return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    }
    size_t n = 0;
    int64_t current = 0;
    enum ac_qs qs = ac_prices_current(c, id, &current);
    if (qs >= 0) qs = ac_prices_list_versions(c, id, before, rows, VERSIONS_PAGE + 1, &n);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) {
        free(rows);
        return ac_reply_db_error(r, qs);
    }
    int more = n > VERSIONS_PAGE;
    size_t shown = more ? VERSIONS_PAGE : n;
    json_t *a = json_array();
    for (size_t i = 0; a && i < shown; i++)
        json_array_append_new(a, version_json(&rows[i]));
    char next[64] = "";
    if (more) {
        char t[32];
        int k = snprintf(t, sizeof t, "v1:%lld", (long long)rows[shown - 1].version);
        ac_b64_encode((const uint8_t *)t, (size_t)k, next, 1);
    }
    free(rows);
    json_t *o = a ? json_pack("{s:s, s:o}", "merchant", id, "versions", a) : NULL;
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    json_object_set_new(o, "current", current ? json_integer(current) : json_null());
    if (more) json_object_set_new(o, "next_cursor", json_string(next));
    return ac_reply_json(r, 200, o);
}
