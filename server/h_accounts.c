/* POST /v1/ledger/accounts {"accounts":[{"id","asset","owner"?,"flags"?}, ...]}
 *   Creates accounts through the sequencer (it owns balances). Request-level validation errors
 *   reject the whole request (nothing written); per-account outcomes are listed in "results".
 *   All created or replayed: 200. Otherwise a problem+json with the first failure's code and the
 *   per-account "results" (accounts that succeeded are created).
 * GET /v1/ledger/accounts/{id}: balances as committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/db.h"
#include "server/handlers.h"
#include "server/seqcall.h"

#define MAX_ITEMS 8190

struct actx {
    struct ac_cmd cmd;
    struct ac_account *accounts;
    enum ac_ec *results;
    int *replayed;
};

static void actx_free(void *p)
{
    struct actx *x = p;
    free(x->accounts);
    free(x->results);
    free(x->replayed);
    free(x);
}

static enum MHD_Result item_error(struct ac_req *r, enum ac_ec ec, size_t i, const char *field,
                                  const char *detail)
{
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/accounts/%zu%s%s", i, field ? "/" : "", field ? field : "");
    return ac_reply_problem(r, ec, detail, json_pack("{s:s}", "pointer", ptr));
}

static enum MHD_Result parse(struct ac_req *r, struct actx *x)
{
    json_t *body;
    enum MHD_Result rc = ac_req_json(r, &body);
    if (body == NULL) return rc;
    json_t *arr;
    json_error_t e;
    if (json_unpack_ex(body, &e, JSON_STRICT, "{s:o}", "accounts", &arr) || !json_is_array(arr)) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_JSON_SCHEMA, "expected {\"accounts\": [...]}", NULL);
    }
    size_t n = json_array_size(arr);
    if (n == 0 || n > MAX_ITEMS) {
        json_decref(body);
        return ac_reply_problem(r, n ? AC_EC_BATCH_TOO_LARGE : AC_EC_BATCH_EMPTY,
                                n ? "at most 8190 accounts per request" : NULL, NULL);
    }
    x->accounts = calloc(n, sizeof *x->accounts);
    x->results = calloc(n, sizeof *x->results);
    x->replayed = calloc(n, sizeof *x->replayed);
    if (!x->accounts || !x->results || !x->replayed) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    }
    for (size_t i = 0; i < n; i++) {
        const char *id, *asset, *owner = "";
        json_t *flags = NULL;
        if (json_unpack_ex(json_array_get(arr, i), &e, JSON_STRICT, "{s:s, s:s, s?s, s?o}", "id",
                           &id, "asset", &asset, "owner", &owner, "flags", &flags)) {
            json_decref(body);
            return item_error(r, AC_EC_JSON_SCHEMA, i, NULL, e.text);
        }
        struct ac_account *a = &x->accounts[i];
        unsigned scale;
        enum ac_ec ec;
        if (!ac_id_valid(id)) ec = AC_EC_ID_INVALID;
        else if (owner[0] && !ac_id_valid(owner)) ec = AC_EC_ID_INVALID;
        else if (ac_account_flags_parse(flags, &a->flags)) ec = AC_EC_FLAGS_INVALID;
        else if (a->flags == AC_AF__ALL) ec = AC_EC_FLAGS_INVALID;
        else ec = ac_assets_scale(r->app, asset, &scale);
        if (ec != AC_EC_OK) {
            json_decref(body);
            return item_error(r, ec, i, NULL, NULL);
        }
        snprintf(a->id, sizeof a->id, "%s", id);
        snprintf(a->asset, sizeof a->asset, "%s", asset);
        snprintf(a->owner, sizeof a->owner, "%s", owner);
    }
    json_decref(body);
    x->cmd.kind = AC_CMD_ACCOUNTS;
    x->cmd.n = n;
    x->cmd.accounts = x->accounts;
    x->cmd.account_results = x->results;
    x->cmd.account_replayed = x->replayed;
    return ac_seqcall(r, &x->cmd);
}

static enum MHD_Result reply(struct ac_req *r, struct actx *x)
{
    if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
    json_t *results = json_array();
    size_t failed = 0;
    enum ac_ec first = AC_EC_OK;
    for (size_t i = 0; i < x->cmd.n; i++) {
        json_t *it = json_pack("{s:s, s:s}", "id", x->accounts[i].id, "status",
                               x->results[i] == AC_EC_OK ? "ok" : "failed");
        if (x->results[i] != AC_EC_OK) {
            json_object_set_new(it, "code", json_string(ac_ec_code(x->results[i])));
            if (failed++ == 0) first = x->results[i];
        } else if (x->replayed[i]) {
            json_object_set_new(it, "replayed", json_true());
        }
        json_array_append_new(results, it);
    }
    if (failed == 0) return ac_reply_json(r, 200, json_pack("{s:o}", "results", results));
    char d[96];
    snprintf(d, sizeof d, "%zu of %zu accounts failed", failed, x->cmd.n);
    return ac_reply_problem(r, first, d, json_pack("{s:o}", "results", results));
}

enum MHD_Result ac_h_accounts_post(struct ac_req *r)
{
    struct actx *x = r->hctx;
    if (x == NULL) {
        x = calloc(1, sizeof *x);
        if (x == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        r->hctx = x;
        r->hctx_free = actx_free;
        return parse(r, x);
    }
    return reply(r, x);
}

enum MHD_Result ac_h_accounts_get(struct ac_req *r)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_account a;
    enum ac_qs qs = ac_db_account_get(c, r->params[0], &a);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_ACCOUNT_UNKNOWN, NULL, NULL);
    unsigned scale;
    enum ac_ec ec = ac_assets_scale(r->app, a.asset, &scale);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    return ac_reply_json(r, 200, ac_account_json(&a, scale));
}
