/* Token top-ups (docs/merchant-api.md, "Token top-ups").
 *
 * POST /v1/topups   signed by the agent (RFC 9421, AC_AUTH_AGENT)
 *   {"id", "mandate", "provider", "amount": {"currency", "value"}, "token_asset",
 *    "price_version"}
 *   A payment with op "topup" to the provider (same id space, same mandate, binding, risk and
 *   step-up path as POST /v1/payments) whose settlement is ONE linked pair of ledger transfers:
 *   the fiat amount user -> provider and floor(amount * tokens / fiat) token base units provider
 *   -> user at the price of `price_version`, which must be the provider's current version.
 *   201 settled or pending_confirmation; 422 payment_denied; the ledger's problem when the pair
 *   was refused (neither leg moved); 409 price_version_stale, 404 price_version_unknown, 422
 *   price_not_listed, 422 topup_tokens_zero. The same id and request again: the original (200).
 * GET /v1/topups/{id}                 (operator) one top-up.
 * GET /v1/users/{id}/topups           (operator) the user's top-ups, newest first (cursor pages).
 * GET /v1/merchants/{id}/topups       (operator) the provider's top-ups, newest first.
 *
 * Phases: PARSE -> CHECK (mandate, provider, assets, the price of that version: the token amount)
 * -> DECIDE+SETTLE (the sequencer, ledger/payments.c: version still current, decision, the linked
 * pair or the linked holds, evidence, rows) -> REPLY (read back from the database). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/payments.h"
#include "ledger/prices.h"
#include "protocol/b64.h"
#include "server/authn.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX 100

struct tctx {
    struct ac_cmd cmd;
    struct ac_payop op;
    struct ac_pay_request q;
    struct ac_topup_leg leg;
};

static void tctx_free(void *p)
{
    free(p);
}

/* ---- rendering ---------------------------------------------------------------------------------
 */

/* The top-up object: the payment object (server/h_payments.c) with "provider" for "payee", the
 * token amount, the price and the token leg's transfer. New reference or NULL. */
static json_t *topup_json(const struct ac_payment_row *p, const struct ac_topup_row *t)
{
    json_t *o = ac_payment_json(p);
    if (o == NULL) return NULL;
    json_object_del(o, "payee");
    json_object_del(o, "op");
    json_object_set_new(o, "provider", json_string(p->payee));
    json_object_set_new(o, "tokens",
                        ac_doc_amount_json(t->token_asset, t->token_amount, t->token_scale));
    json_object_set_new(
        o, "price",
        json_pack("{s:I, s:o, s:o}", "version", (json_int_t)t->price_version, "fiat",
                  ac_doc_amount_json(p->asset, t->price_fiat, p->scale), "tokens",
                  ac_doc_amount_json(t->token_asset, t->price_tokens, t->token_scale)));
    if (p->transfer_id[0])
        json_object_set_new(o, "token_transfer", json_string(t->token_transfer_id));
    return o;
}

/* Read top-up id (payment and token leg). ONE_RESULT, NO_RESULTS (no such top-up) or an error. */
static enum ac_qs read_topup(struct ac_req *r, const char *id, struct ac_payment_row *p,
                             struct ac_topup_row *t)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return AC_QS_SOFT_ERROR;
    enum ac_qs qs = ac_payments_read_payment(c, id, p);
    size_t got = 0;
    if (qs == AC_QS_ONE_RESULT) {
        const char *ids[] = {id};
        qs = ac_prices_read_topups(c, ids, 1, t, &got);
        if (qs == AC_QS_ONE_RESULT && (got != 1 || p->op != AC_OP_TOPUP)) qs = AC_QS_NO_RESULTS;
        if (qs != AC_QS_ONE_RESULT) ac_payment_row_clear(p);
    }
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    return qs;
}

/* Reply with the stored top-up: as a problem carrying it when it was refused (as_problem: the
 * POST), else ok_status with it. */
static enum MHD_Result reply_stored(struct ac_req *r, const char *id, unsigned ok_status,
                                    int as_problem)
{
    struct ac_payment_row p;
    struct ac_topup_row t;
    enum ac_qs qs = read_topup(r, id, &p, &t);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_TOPUP_UNKNOWN, NULL, NULL);
    json_t *o = topup_json(&p, &t);
    enum ac_pay_status st = p.status;
    char error[64];
    snprintf(error, sizeof error, "%s", p.error);
    ac_payment_row_clear(&p);
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (!as_problem || (st != AC_PAY_DENIED && st != AC_PAY_FAILED))
        return ac_reply_json(r, ok_status, o);
    enum ac_ec ec = AC_EC_PAYMENT_DENIED;
    if (st == AC_PAY_FAILED) {
        ec = ac_ec_from_code(error);
        if (ec == AC_EC__COUNT || ac_ec_status(ec) < 400) ec = AC_EC_INTERNAL;
    }
    json_t *extra = json_pack("{s:O, s:O, s:o}", "reasons",
                              json_object_get(json_object_get(o, "decision"), "reasons"),
                              "decision", json_object_get(o, "decision"), "topup", o);
    return ac_reply_problem(r, ec, NULL, extra);
}

/* ---- POST --------------------------------------------------------------------------------------
 */

/* The top-up's own check (ac_agent_money_spec.check): price_version (cls). */
static int check_version(struct ac_req *r, const struct ac_agent_money *m, void *cls,
                         enum MHD_Result *rc)
{
    json_int_t version = *(const json_int_t *)cls;
    if (version >= 1 && version <= AC_PRICE_VERSION_MAX) return 1;
    *rc = ac_paydoc_bad(r, AC_EC_PARAMETER_INVALID, "/price_version",
                        "price_version must be a positive integer");
    return 0;
}

static const struct ac_agent_money_spec topup_spec = {
    .payee_key = "provider", .token_key = "token_asset", .check = check_version};

/* PARSE + CHECK into x->q and x->leg. On failure queues a problem and returns 0 with *rc set. */
static int prepare(struct ac_req *r, struct tctx *x, enum MHD_Result *rc)
{
    const struct ac_verified *v = r->verified;
    struct ac_pay_request *q = &x->q;
    struct ac_topup_leg *t = &x->leg;
    struct ac_agent_money m;
    json_int_t version = 0;
    if (!ac_paydoc_agent_money(r, &topup_spec, &version, &m, rc,
                               "{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:I}", "id", &m.j.id, "mandate",
                               &m.j.mandate, "provider", &m.j.payee, "amount", "currency",
                               &m.j.currency, "value", &m.j.value, "token_asset", &m.j.token,
                               "price_version", &version))
        return 0;
    memcpy(q->category, m.category, sizeof q->category);
    q->amount = m.amount;
    /* the price of that version (versions never change once published) */
    enum ac_ec ec;
    struct ac_price price;
    int exists = 0;
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) {
        *rc = ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
        return 0;
    }
    enum ac_qs qs =
        ac_prices_lookup(c, m.payee, (int64_t)version, m.asset, m.token_asset, &price, &exists);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) {
        *rc = ac_reply_db_error(r, qs);
    } else if (qs == AC_QS_NO_RESULTS) {
        *rc = ac_paydoc_bad(r, exists ? AC_EC_PRICE_NOT_LISTED : AC_EC_PRICE_VERSION_UNKNOWN,
                            exists ? "/token_asset" : "/price_version", NULL);
    } else if ((ec = ac_price_tokens(&price, q->amount, &t->tokens)) != AC_EC_OK) {
        *rc = ac_paydoc_bad(r, ec, "/amount/value", NULL);
    } else if (ac_wallet_account(1, v->user_id, m.asset, q->debit) != 0 ||
               ac_wallet_account(0, m.payee, m.asset, q->credit) != 0 ||
               ac_wallet_account(0, m.payee, m.token_asset, t->debit) != 0 ||
               ac_wallet_account(1, v->user_id, m.token_asset, t->credit) != 0) {
        *rc = ac_reply_problem(r, AC_EC_ACCOUNT_UNKNOWN, "no wallet account id", NULL);
    } else {
        memcpy(q->id, m.id, sizeof q->id);
        memcpy(q->mandate, m.mandate, sizeof q->mandate);
        memcpy(q->payee, m.payee, sizeof q->payee);
        memcpy(q->binding, m.binding, sizeof q->binding);
        memcpy(q->asset, m.asset, sizeof q->asset);
        q->scale = m.scale;
        q->op = AC_OP_TOPUP;
        memcpy(t->token_asset, m.token_asset, sizeof t->token_asset);
        t->token_scale = m.token_scale;
        t->version = (int64_t)version;
        t->price_fiat = price.fiat;
        t->price_tokens = price.tokens;
        snprintf(t->ref, sizeof t->ref, "%lld", (long long)version);
        return 1;
    }
    return 0;
}

enum MHD_Result ac_h_topups_post(struct ac_req *r)
{
    struct tctx *x = r->hctx;
    if (x != NULL) { /* REPLY: the sequencer's outcome, as committed */
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) {
            const char *ptr = x->op.result == AC_EC_PRICE_VERSION_STALE ||
                                      x->op.result == AC_EC_PRICE_VERSION_UNKNOWN
                                  ? "/price_version"
                                  : NULL;
            return ptr ? ac_paydoc_bad(r, x->op.result, ptr, NULL)
                       : ac_reply_problem(r, x->op.result, NULL, NULL);
        }
        return reply_stored(r, x->q.id, x->op.replayed ? 200 : 201, 1);
    }
    enum MHD_Result rc;
    x = ac_paydoc_begin(r, AC_PRINCIPAL_AGENT, "top-ups are signed by an agent", sizeof *x,
                        tctx_free, &rc);
    if (x == NULL) return rc;
    if (!prepare(r, x, &rc)) return rc;
    struct ac_pay_request *q = &x->q;
    ac_payment_transfer_id(q->id, "pay", q->transfer_id);
    ac_payment_transfer_id(q->id, "tokens", x->leg.transfer_id);
    q->topup = &x->leg;
    ac_pay_request_digest(q);
    ac_paydoc_signed(r, &q->sig);
    x->op.kind = AC_PAYOP_PAY;
    x->op.pay = q;
    ac_payments_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

enum MHD_Result ac_h_topups_get(struct ac_req *r)
{
    return reply_stored(r, r->params[0], 200, 0);
}

/* ---- lists -------------------------------------------------------------------------------------
 */

/* Digits only, no leading zero, 1..max. 0 or -1. */
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

/* The cursor: base64url of "t1:<seq>" (the commit order of the page's last top-up). */
static int cursor_decode(const char *c, int64_t *seq)
{
    size_t n = strlen(c);
    uint8_t buf[64];
    size_t len = 0;
    if (n == 0 || n > 40 || ac_b64_decode(c, n, buf, &len, 1) != 0) return -1;
    if (len < 4 || memcmp(buf, "t1:", 3) != 0) return -1;
    return parse_pos((const char *)buf + 3, len - 3, INT64_MAX, seq);
}

static enum MHD_Result list_topups(struct ac_req *r, int user)
{
    const char *id = r->params[0];
    int64_t limit = LIST_LIMIT_DEFAULT, before = 0;
    const char *l = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *cur = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "cursor");
    if (l && parse_pos(l, strlen(l), LIST_LIMIT_MAX, &limit) != 0)
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID,
                                "limit must be an integer from 1 to 100", NULL);
    if (cur && cursor_decode(cur, &before) != 0)
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID,
                                "cursor is not one this server returned", NULL);
    struct ac_principal_info info;
    enum ac_ec ec = ac_registry_principal_get(r->app->registry,
                                              user ? AC_ROLE_USER : AC_ROLE_MERCHANT, id, &info);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    ac_principal_info_clear(&info);
    struct ac_payment_row *rows = calloc((size_t)limit + 1, sizeof *rows);
    struct ac_topup_row *legs = calloc((size_t)limit + 1, sizeof *legs);
    const char **ids = calloc((size_t)limit + 1, sizeof *ids);
    PGconn *c = rows && legs && ids ? ac_pool_get(r->app->pool) : NULL;
    if (c == NULL) {
        free(rows);
        free(legs);
        free(ids);
        return ac_reply_problem(r, rows && legs && ids ? AC_EC_DB_UNAVAILABLE : AC_EC_INTERNAL,
                                NULL, NULL);
    }
    size_t n = 0, got = 0;
    enum ac_qs qs = ac_payments_list_topups(c, !user, id, before, (unsigned)limit + 1, rows, &n);
    int more = n > (size_t)limit; /* the extra row only says there is a next page */
    size_t shown = more ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++)
        ids[i] = rows[i].id;
    if (qs >= 0) qs = ac_prices_read_topups(c, ids, shown, legs, &got);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    json_t *data = qs >= 0 ? json_array() : NULL;
    for (size_t i = 0; data && i < shown; i++)
        for (size_t k = 0; k < got; k++)
            if (strcmp(legs[k].id, rows[i].id) == 0) {
                json_array_append_new(data, topup_json(&rows[i], &legs[k]));
                break;
            }
    char next[64] = "";
    if (more) {
        char t[32];
        int k = snprintf(t, sizeof t, "t1:%lld", (long long)rows[shown - 1].seq);
        ac_b64_encode((const uint8_t *)t, (size_t)k, next, 1);
    }
    for (size_t i = 0; i < n; i++)
        ac_payment_row_clear(&rows[i]);
    free(rows);
    free(legs);
    free(ids);
    if (qs < 0) return ac_reply_db_error(r, qs);
    json_t *o = data ? json_pack("{s:o}", "data", data) : NULL;
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (more) json_object_set_new(o, "next_cursor", json_string(next));
    return ac_reply_json(r, 200, o);
}

enum MHD_Result ac_h_user_topups(struct ac_req *r)
{
    return list_topups(r, 1);
}

enum MHD_Result ac_h_merchant_topups(struct ac_req *r)
{
    return list_topups(r, 0);
}
