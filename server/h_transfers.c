/* POST /v1/ledger/transfers {"transfers":[{...}, ...]}
 *   Each item: id, debit_account, credit_account, amount (decimal string), asset, flags
 *   (["linked","pending","post_pending","void_pending","balancing_debit","balancing_credit"]),
 *   pending_id, timeout (seconds), code (0..65535). For post/void the accounts may be omitted
 *   and so may amount (= the full pending amount); asset is always required (it fixes the scale).
 *   Request-level validation errors reject the whole request, nothing written. Apply-time
 *   outcomes are per transfer: all ok -> 200 {"results":[...]}; otherwise a problem+json with the
 *   first failure's code and status and the per-transfer "results" (independent transfers that
 *   succeeded are committed; linked chains succeed or fail as one).
 * GET /v1/ledger/transfers/{id}: the committed transfer, or its sticky failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/db.h"
#include "server/handlers.h"
#include "server/seqcall.h"

#define MAX_ITEMS 8190
#define MAX_TIMEOUT 31536000

struct tctx {
    struct ac_cmd cmd;
    struct ac_transfer_req *reqs;
    struct ac_transfer_result *results;
    unsigned *scales;
};

static void tctx_free(void *p)
{
    struct tctx *x = p;
    free(x->reqs);
    free(x->results);
    free(x->scales);
    free(x);
}

static enum MHD_Result item_error(struct ac_req *r, enum ac_ec ec, size_t i, const char *field,
                                  const char *detail)
{
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/transfers/%zu%s%s", i, field ? "/" : "", field ? field : "");
    return ac_reply_problem(r, ec, detail, json_pack("{s:s}", "pointer", ptr));
}

/* Validate and convert one item; returns AC_EC_OK or the code, with *field naming the member. */
static enum ac_ec parse_item(struct ac_req *r, json_t *it, struct ac_transfer_req *t,
                             unsigned *scale, const char **field, json_error_t *e)
{
    const char *id, *debit = "", *credit = "", *amount = NULL, *asset, *pending_id = "";
    json_t *flags = NULL;
    json_int_t timeout = 0, code = 0;
    *field = NULL;
    if (json_unpack_ex(it, e, JSON_STRICT, "{s:s, s?s, s?s, s?s, s:s, s?o, s?s, s?I, s?I}", "id",
                       &id, "debit_account", &debit, "credit_account", &credit, "amount", &amount,
                       "asset", &asset, "flags", &flags, "pending_id", &pending_id, "timeout",
                       &timeout, "code", &code))
        return AC_EC_JSON_SCHEMA;
    *field = "id";
    if (!ac_id_valid(id)) return AC_EC_ID_INVALID;
    *field = "flags";
    if (ac_transfer_flags_parse(flags, &t->flags)) return AC_EC_FLAGS_INVALID;
    int post_void = (t->flags & (AC_TF_POST_PENDING | AC_TF_VOID_PENDING)) != 0;
    *field = "debit_account";
    if ((debit[0] || !post_void) && !ac_id_valid(debit)) return AC_EC_ID_INVALID;
    *field = "credit_account";
    if ((credit[0] || !post_void) && !ac_id_valid(credit)) return AC_EC_ID_INVALID;
    *field = "pending_id";
    if ((pending_id[0] || post_void) && !ac_id_valid(pending_id)) return AC_EC_ID_INVALID;
    *field = "asset";
    enum ac_ec ec = ac_assets_scale(r->app, asset, scale);
    if (ec != AC_EC_OK) return ec;
    *field = "amount";
    if (amount == NULL) {
        if (!post_void) return AC_EC_AMOUNT_SYNTAX;
        t->amount = -1; /* the full pending amount */
    } else {
        ec = ac_amount_parse(amount, *scale, &t->amount);
        if (ec != AC_EC_OK) return ec;
        if (t->amount == 0) return AC_EC_AMOUNT_ZERO;
    }
    *field = "timeout";
    if (timeout < 0 || timeout > MAX_TIMEOUT) return AC_EC_TIMEOUT_INVALID;
    *field = "code";
    if (code < 0 || code > 65535) return AC_EC_PARAMETER_INVALID;
    *field = NULL;
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->debit, sizeof t->debit, "%s", debit);
    snprintf(t->credit, sizeof t->credit, "%s", credit);
    snprintf(t->asset, sizeof t->asset, "%s", asset);
    snprintf(t->pending_id, sizeof t->pending_id, "%s", pending_id);
    t->timeout_s = (uint32_t)timeout;
    t->code = (uint16_t)code;
    return AC_EC_OK;
}

static enum MHD_Result parse(struct ac_req *r, struct tctx *x)
{
    json_t *body;
    enum MHD_Result rc = ac_req_json(r, &body);
    if (body == NULL) return rc;
    json_t *arr;
    json_error_t e;
    if (json_unpack_ex(body, &e, JSON_STRICT, "{s:o}", "transfers", &arr) || !json_is_array(arr)) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_JSON_SCHEMA, "expected {\"transfers\": [...]}", NULL);
    }
    size_t n = json_array_size(arr);
    if (n == 0 || n > MAX_ITEMS) {
        json_decref(body);
        return ac_reply_problem(r, n ? AC_EC_BATCH_TOO_LARGE : AC_EC_BATCH_EMPTY,
                                n ? "at most 8190 transfers per request" : NULL, NULL);
    }
    x->reqs = calloc(n, sizeof *x->reqs);
    x->results = calloc(n, sizeof *x->results);
    x->scales = calloc(n, sizeof *x->scales);
    if (!x->reqs || !x->results || !x->scales) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    }
    for (size_t i = 0; i < n; i++) {
        const char *field;
        enum ac_ec ec = parse_item(r, json_array_get(arr, i), &x->reqs[i], &x->scales[i], &field, &e);
        if (ec != AC_EC_OK) {
            json_decref(body);
            return item_error(r, ec, i, field, ec == AC_EC_JSON_SCHEMA ? e.text : NULL);
        }
    }
    json_decref(body);
    if (x->reqs[n - 1].flags & AC_TF_LINKED)
        return item_error(r, AC_EC_LINKED_CHAIN_OPEN, n - 1, "flags", NULL);
    x->cmd.kind = AC_CMD_TRANSFERS;
    x->cmd.n = n;
    x->cmd.transfers = x->reqs;
    x->cmd.results = x->results;
    x->cmd.scales = x->scales; /* for the evidence (ledger.transfer records) */
    return ac_seqcall(r, &x->cmd);
}

static enum MHD_Result reply(struct ac_req *r, struct tctx *x)
{
    if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
    json_t *results = json_array();
    size_t failed = 0;
    enum ac_ec first = AC_EC_OK;
    for (size_t i = 0; i < x->cmd.n; i++) {
        const struct ac_transfer_result *res = &x->results[i];
        json_t *it = json_pack("{s:s, s:s}", "id", x->reqs[i].id, "status",
                               res->ec == AC_EC_OK ? "ok" : "failed");
        if (res->ec != AC_EC_OK) {
            json_object_set_new(it, "code", json_string(ac_ec_code(res->ec)));
            if (failed++ == 0) first = res->ec;
        } else {
            char buf[AC_AMOUNT_STR_MAX], ts[40];
            ac_rfc3339(res->created_us, ts);
            json_object_set_new(it, "amount",
                                json_string(ac_amount_format(res->amount, x->scales[i], buf)));
            json_object_set_new(it, "created_at", json_string(ts));
        }
        if (res->replayed) json_object_set_new(it, "replayed", json_true());
        json_array_append_new(results, it);
    }
    if (failed == 0) return ac_reply_json(r, 200, json_pack("{s:o}", "results", results));
    char d[96];
    snprintf(d, sizeof d, "%zu of %zu transfers failed", failed, x->cmd.n);
    return ac_reply_problem(r, first, d, json_pack("{s:o}", "results", results));
}

enum MHD_Result ac_h_transfers_post(struct ac_req *r)
{
    struct tctx *x = r->hctx;
    if (x == NULL) {
        x = calloc(1, sizeof *x);
        if (x == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        r->hctx = x;
        r->hctx_free = tctx_free;
        return parse(r, x);
    }
    return reply(r, x);
}

enum MHD_Result ac_h_transfers_get(struct ac_req *r)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_transfer_row t;
    enum ac_qs qs = ac_db_transfer_get(c, r->params[0], &t);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_NOT_FOUND, "no such transfer", NULL);
    unsigned scale = 0;
    if (t.result == AC_EC_OK) {
        enum ac_ec ec = ac_assets_scale(r->app, t.asset, &scale);
        if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    }
    return ac_reply_json(r, 200, ac_transfer_json(&t, scale));
}
