/* Reading a principal's payments and balances (docs/merchant-api.md, "Reading"), operator bearer.
 *
 * GET /v1/users/{id}/payments       the user's payments (as payer), newest first
 * GET /v1/merchants/{id}/payments   the merchant's payments (as payee), newest first
 *   ?limit=1..100 (default 20) &cursor=<next_cursor of the previous page>
 *   {"data": [payment...], "next_cursor"?}: next_cursor is absent on the last page. The cursor is
 *   opaque: base64url of "p1:<seq>" (the commit order of the page's last payment); a malformed
 *   one is 400 parameter_invalid. It carries no secret and grants nothing (the operator may read
 *   every payment anyway); a well-formed cursor of another seq just starts the page elsewhere.
 * GET /v1/users/{id}/balances       every wallet `user:<id>:<asset lowercased>`
 * GET /v1/merchants/{id}/balances   every wallet `merchant:<id>:<asset lowercased>`
 *   {"principal", "balances": [{"account", "currency", "posted", "pending_debits",
 *    "pending_credits"}]}: decimal strings at the asset's scale; posted = credits_posted -
 *   debits_posted. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/payments.h"
#include "protocol/b64.h"
#include "server/handlers.h"
#include "server/paydoc.h"

#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX 100
#define WALLETS_MAX 256
#define CURSOR_MAX 64

static const char *query(struct ac_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result bad_param(struct ac_req *r, const char *detail)
{
    return ac_reply_problem(r, AC_EC_PARAMETER_INVALID, detail, NULL);
}

/* Digits only, no leading zero, 1..INT64_MAX. 0 or -1. */
static int parse_pos(const char *s, size_t n, int64_t max, int64_t *out)
{
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

static void cursor_encode(int64_t seq, char out[CURSOR_MAX])
{
    char t[32];
    int n = snprintf(t, sizeof t, "p1:%lld", (long long)seq);
    ac_b64_encode((const uint8_t *)t, (size_t)n, out, 1);
}

/* 0 with *seq, or -1 when c is not a cursor this server made. */
static int cursor_decode(const char *c, int64_t *seq)
{
    size_t n = strlen(c);
    uint8_t buf[CURSOR_MAX];
    size_t len = 0;
    if (n == 0 || n > 40 || ac_b64_decode(c, n, buf, &len, 1) != 0) return -1;
    if (len < 4 || memcmp(buf, "p1:", 3) != 0) return -1;
    return parse_pos((const char *)buf + 3, len - 3, INT64_MAX, seq);
}

/* 404 unless principal id exists in the registry (user or merchant). */
static enum ac_ec principal_known(struct ac_req *r, int user, const char *id)
{
    if (!ac_id_valid(id)) return user ? AC_EC_USER_UNKNOWN : AC_EC_MERCHANT_UNKNOWN;
    struct ac_principal_info info;
    enum ac_ec ec = ac_registry_principal_get(r->app->registry,
                                              user ? AC_ROLE_USER : AC_ROLE_MERCHANT, id, &info);
    if (ec == AC_EC_OK) ac_principal_info_clear(&info);
    return ec;
}

static enum MHD_Result list_payments(struct ac_req *r, int user)
{
    const char *id = r->params[0];
    int64_t limit = LIST_LIMIT_DEFAULT, before = 0;
    const char *l = query(r, "limit"), *c = query(r, "cursor");
    if (l && parse_pos(l, strlen(l), LIST_LIMIT_MAX, &limit) != 0)
        return bad_param(r, "limit must be an integer from 1 to 100");
    if (c && cursor_decode(c, &before) != 0)
        return bad_param(r, "cursor is not one this server returned");
    enum ac_ec ec = principal_known(r, user, id);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    /* one more than the page: whether there is a next page */
    struct ac_payment_row *rows = calloc((size_t)limit + 1, sizeof *rows);
    if (rows == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    PGconn *conn = ac_pool_get(r->app->pool);
    if (conn == NULL) {
        free(rows);
        return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    }
    size_t n = 0;
    enum ac_qs qs = ac_payments_list(conn, !user, id, before, (unsigned)limit + 1, rows, &n);
    ac_pool_put(r->app->pool, conn, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) {
        free(rows);
        return ac_reply_db_error(r, qs);
    }
    int more = n > (size_t)limit;
    size_t shown = more ? (size_t)limit : n;
    json_t *data = json_array();
    for (size_t i = 0; data && i < shown; i++)
        json_array_append_new(data, ac_payment_json(&rows[i]));
    char next[CURSOR_MAX] = "";
    if (more) cursor_encode(rows[shown - 1].seq, next);
    for (size_t i = 0; i < n; i++)
        ac_payment_row_clear(&rows[i]);
    free(rows);
    json_t *o = data ? json_pack("{s:o}", "data", data) : NULL;
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (more) json_object_set_new(o, "next_cursor", json_string(next));
    return ac_reply_json(r, 200, o);
}

static enum MHD_Result balances(struct ac_req *r, int user)
{
    const char *id = r->params[0];
    enum ac_ec ec = principal_known(r, user, id);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    struct ac_wallet_row *w = calloc(WALLETS_MAX, sizeof *w);
    if (w == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    PGconn *conn = ac_pool_get(r->app->pool);
    if (conn == NULL) {
        free(w);
        return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    }
    size_t n = 0;
    enum ac_qs qs = ac_payments_list_wallets(conn, user, id, w, WALLETS_MAX, &n);
    ac_pool_put(r->app->pool, conn, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) {
        free(w);
        return ac_reply_db_error(r, qs);
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        /* balances are int64 in the ledger and each side is >= 0: the difference fits */
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:o, s:o, s:o}", "account", w[i].id, "currency", w[i].asset,
                         "posted",
                         ac_doc_amount_json(w[i].asset, w[i].credits_posted - w[i].debits_posted,
                                            w[i].scale),
                         "pending_debits",
                         ac_doc_amount_json(w[i].asset, w[i].debits_pending, w[i].scale),
                         "pending_credits",
                         ac_doc_amount_json(w[i].asset, w[i].credits_pending, w[i].scale)));
    }
    free(w);
    if (a == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, 200,
                         json_pack("{s:s, s:o}", user ? "user" : "merchant", id, "balances", a));
}

enum MHD_Result ac_h_user_payments(struct ac_req *r)
{
    return list_payments(r, 1);
}

enum MHD_Result ac_h_merchant_payments(struct ac_req *r)
{
    return list_payments(r, 0);
}

enum MHD_Result ac_h_user_balances(struct ac_req *r)
{
    return balances(r, 1);
}

enum MHD_Result ac_h_merchant_balances(struct ac_req *r)
{
    return balances(r, 0);
}
