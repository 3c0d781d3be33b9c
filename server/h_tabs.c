/* Micropayment tabs (docs/merchant-api.md, "Tabs").
 *
 * POST /v1/tabs                 signed by the agent (RFC 9421, AC_AUTH_AGENT)
 *   {"id", "mandate", "payee", "amount": {"currency", "value"} (the hold), "expires_in": seconds}
 *   201 the open tab; 422 tab_denied with the decision (a STEP_UP or DENY verdict: tabs are
 *   opened on ALLOW only); the ledger's problem when the hold was refused (422 exceeds_credits).
 *   The same id with the same request answers the tab as it stands (200); another request 409
 *   tab_exists.
 * POST /v1/tabs/{id}/settle     signed by the tab's payee (AC_AUTH_MERCHANT) {"voucher": jws}
 * POST /v1/tabs/{id}/close      signed by the tab's payee {"voucher"?: jws}
 *   200 the settlement: what was posted (voucher cumulative - settled before), released, the
 *   transfers and the evidence. The voucher is verified here against the tab's bound agent key;
 *   its order (sequence, cumulative, hold) on the sequencer.
 * GET  /v1/tabs/{id}            (operator) the tab and its last settlements
 * GET  /v1/users/{id}/tabs, GET /v1/merchants/{id}/tabs   (operator) newest first, paginated
 *   like the payments lists (?limit, ?cursor; the cursor is base64url of "t1:<seq>").
 *
 * Phases: PARSE -> CHECK (open: mandate and payee known; settle: the committed tab, payee, the
 * voucher's signature) -> APPLY (the sequencer) -> REPLY. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/tabs.h"
#include "protocol/b64.h"
#include "protocol/sha256.h"
#include "server/authn.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

#define SETTLEMENTS_SHOWN 20
#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX 100
#define CURSOR_MAX 64

struct tctx {
    struct ac_cmd cmd;
    struct ac_tabop op;
    struct ac_tab_open_request q;
    struct ac_tab_settle_request s;
    char *voucher; /* the voucher text (s.jws) */
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
};

static void tctx_free(void *p)
{
    struct tctx *x = p;
    if (x) free(x->voucher);
    free(x);
}

/* ---- rendering ---------------------------------------------------------------------------------
 */

static json_t *reasons_json(const char *csv)
{
    json_t *a = json_array();
    for (const char *s = csv; a && *s;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n) json_array_append_new(a, json_stringn(s, n));
        s += n + (e != NULL);
    }
    return a;
}

static json_t *settlement_json(const struct ac_tab_settlement_row *s, const char *asset,
                               unsigned scale)
{
    char at[40];
    ac_rfc3339(s->created_us, at);
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:s}", "kind", s->kind, "settled",
                          ac_doc_amount_json(asset, s->cumulative, scale), "amount",
                          ac_doc_amount_json(asset, s->amount, scale), "released",
                          ac_doc_amount_json(asset, s->released, scale), "created_at", at);
    if (o == NULL) return NULL;
    if (s->voucher_seq > 0) json_object_set_new(o, "voucher_seq", json_integer(s->voucher_seq));
    json_t *t = json_object();
    if (s->post_id[0]) json_object_set_new(t, "post", json_string(s->post_id));
    if (s->hold_id[0]) json_object_set_new(t, "hold", json_string(s->hold_id));
    if (s->void_id[0]) json_object_set_new(t, "void", json_string(s->void_id));
    json_object_set_new(o, "transfers", t);
    if (s->has_evidence)
        json_object_set_new(o, "evidence", ac_paydoc_evidence_json(s->ev_seq, s->ev_leaf));
    return o;
}

static json_t *tab_json(const struct ac_tab_row *t)
{
    char created[40], updated[40], expires[40];
    ac_rfc3339(t->created_us, created);
    ac_rfc3339(t->updated_us, updated);
    ac_rfc3339(t->expires_us, expires);
    const char *aut = ac_autonomy_name((enum ac_autonomy)t->autonomy);
    int64_t held = t->status == AC_TAB_OPEN ? t->hold - t->settled : 0;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:{s:s, s:s, s:o}, s:s, s:s, "
        "s:s}",
        "id", t->id, "status", ac_tab_status_name(t->status), "payee", t->payee, "mandate",
        t->mandate, "user", t->user, "agent", t->agent, "binding", t->binding, "hold",
        ac_doc_amount_json(t->asset, t->hold, t->scale), "settled",
        ac_doc_amount_json(t->asset, t->settled, t->scale), "held",
        ac_doc_amount_json(t->asset, held, t->scale), "last_seq", (json_int_t)t->last_seq,
        "decision", "verdict", t->verdict, "autonomy", aut ? aut : "L0", "reasons",
        reasons_json(t->reasons), "expires_at", expires, "created_at", created, "updated_at",
        updated);
    if (o == NULL) return NULL;
    if (t->ended_us) {
        char ended[40];
        ac_rfc3339(t->ended_us, ended);
        json_object_set_new(o, "ended_at", json_string(ended));
    }
    if (t->error[0]) json_object_set_new(o, "error", json_string(t->error));
    if (t->hold_transfer_id[0])
        json_object_set_new(o, "hold_transfer", json_string(t->hold_transfer_id));
    if (t->has_evidence)
        json_object_set_new(o, "evidence", ac_paydoc_evidence_json(t->ev_seq, t->ev_leaf));
    return o;
}

/* The committed tab `id`: ONE_RESULT with *t, NO_RESULTS (a problem queued: tab_unknown), or an
 * error (a problem queued). *rc is what the handler returns when not ONE_RESULT. */
static enum ac_qs read_tab(struct ac_req *r, const char *id, struct ac_tab_row *t,
                           enum MHD_Result *rc, struct ac_tab_settlement_row *stl, size_t *nstl)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) {
        *rc = ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
        return AC_QS_SOFT_ERROR;
    }
    enum ac_qs qs = ac_tabs_read(c, id, t);
    if (qs == AC_QS_ONE_RESULT && stl)
        qs = ac_tabs_settlements(c, id, stl, SETTLEMENTS_SHOWN, nstl);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) *rc = ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) *rc = ac_reply_problem(r, AC_EC_TAB_UNKNOWN, NULL, NULL);
    return qs;
}

/* A tab as an answer: a problem carrying it when it was refused and as_problem is set (POST). */
static enum MHD_Result reply_tab(struct ac_req *r, const struct ac_tab_row *t, unsigned ok_status,
                                 int as_problem, json_t *settlements)
{
    json_t *o = tab_json(t);
    if (o == NULL) {
        json_decref(settlements);
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    }
    if (settlements) json_object_set_new(o, "settlements", settlements);
    if (!as_problem || (t->status != AC_TAB_DENIED && t->status != AC_TAB_FAILED))
        return ac_reply_json(r, ok_status, o);
    enum ac_ec ec = AC_EC_TAB_DENIED;
    if (t->status == AC_TAB_FAILED) {
        ec = ac_ec_from_code(t->error);
        if (ec == AC_EC__COUNT || ac_ec_status(ec) < 400) ec = AC_EC_INTERNAL;
    }
    json_t *extra = json_pack("{s:O, s:O, s:o}", "reasons",
                              json_object_get(json_object_get(o, "decision"), "reasons"),
                              "decision", json_object_get(o, "decision"), "tab", o);
    return ac_reply_problem(r, ec, NULL, extra);
}

static enum MHD_Result reply_stored(struct ac_req *r, const char *id, unsigned ok_status,
                                    int as_problem)
{
    struct ac_tab_row t;
    enum MHD_Result rc;
    if (read_tab(r, id, &t, &rc, NULL, NULL) != AC_QS_ONE_RESULT) return rc;
    return reply_tab(r, &t, ok_status, as_problem, NULL);
}

/* ---- POST /v1/tabs -----------------------------------------------------------------------------
 */

/* The tab's own check (ac_agent_money_spec.check): expires_in (cls), 1..AC_TAB_TTL_MAX seconds. */
static int check_ttl(struct ac_req *r, const struct ac_agent_money *m, void *cls,
                     enum MHD_Result *rc)
{
    json_int_t ttl = *(const json_int_t *)cls;
    if (ttl >= 1 && ttl <= AC_TAB_TTL_MAX) return 1;
    *rc = ac_paydoc_bad(r, AC_EC_PARAMETER_INVALID, "/expires_in",
                        "expires_in must be 1 to 2592000 seconds");
    return 0;
}

static const struct ac_agent_money_spec open_spec = {.payee_key = "payee", .check = check_ttl};

/* The answer to a freshly applied open, from the request and the op. */
static void row_from_open(struct ac_tab_row *t, const struct ac_tab_open_request *q,
                          const struct ac_tabop *op, const struct ac_verified *v)
{
    memset(t, 0, sizeof *t);
    memcpy(t->id, q->id, sizeof t->id);
    memcpy(t->mandate, q->mandate, sizeof t->mandate);
    memcpy(t->binding, q->binding, sizeof t->binding);
    memcpy(t->user, v->user_id, sizeof t->user);
    memcpy(t->agent, v->agent_id, sizeof t->agent);
    memcpy(t->payee, q->payee, sizeof t->payee);
    memcpy(t->asset, q->asset, sizeof t->asset);
    t->scale = q->scale;
    t->hold = q->hold;
    t->ttl_s = q->ttl_s;
    t->expires_us = op->expires_us;
    t->status = op->status;
    snprintf(t->verdict, sizeof t->verdict, "%s", ac_verdict_name(op->decision.verdict));
    t->autonomy = (int)op->decision.autonomy;
    size_t n = 0;
    if (op->status == AC_TAB_FAILED)
        snprintf(t->error, sizeof t->error, "%s", ac_ec_code(op->ledger_ec));
    else
        for (unsigned i = 0; i < op->decision.n && n < sizeof t->reasons; i++)
            n += (size_t)snprintf(t->reasons + n, sizeof t->reasons - n, "%s%s", i ? "," : "",
                                  ac_reason_code(op->decision.reasons[i]));
    snprintf(t->hold_transfer_id, sizeof t->hold_transfer_id, "%s", op->hold_id);
    t->has_evidence = op->has_evidence;
    t->ev_seq = op->ev_seq;
    memcpy(t->ev_leaf, op->ev_leaf, sizeof t->ev_leaf);
    t->created_us = t->updated_us = op->at_us;
    if (op->status != AC_TAB_OPEN) t->ended_us = op->at_us;
}

enum MHD_Result ac_h_tabs_post(struct ac_req *r)
{
    struct tctx *x = r->hctx;
    if (x != NULL) { /* REPLY */
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        if (x->op.replayed) return reply_stored(r, x->q.id, 200, 1);
        struct ac_tab_row t;
        row_from_open(&t, &x->q, &x->op, r->verified);
        return reply_tab(r, &t, 201, 1, NULL);
    }
    enum MHD_Result rc;
    x = ac_paydoc_begin(r, AC_PRINCIPAL_AGENT, "tabs are opened by an agent", sizeof *x, tctx_free,
                        &rc);
    if (x == NULL) return rc;
    struct ac_agent_money m;
    json_int_t ttl = 0;
    if (!ac_paydoc_agent_money(r, &open_spec, &ttl, &m, &rc, "{s:s, s:s, s:s, s:{s:s, s:s}, s:I}",
                               "id", &m.j.id, "mandate", &m.j.mandate, "payee", &m.j.payee,
                               "amount", "currency", &m.j.currency, "value", &m.j.value,
                               "expires_in", &ttl))
        return rc;
    const struct ac_verified *v = r->verified;
    struct ac_tab_open_request *q = &x->q;
    memcpy(q->id, m.id, sizeof q->id);
    memcpy(q->mandate, m.mandate, sizeof q->mandate);
    memcpy(q->payee, m.payee, sizeof q->payee);
    memcpy(q->category, m.category, sizeof q->category);
    memcpy(q->binding, m.binding, sizeof q->binding);
    memcpy(q->asset, m.asset, sizeof q->asset);
    q->scale = m.scale;
    q->hold = m.amount;
    q->ttl_s = ttl;
    if (ac_wallet_account(1, v->user_id, q->asset, q->debit) != 0 ||
        ac_wallet_account(0, q->payee, q->asset, q->credit) != 0)
        return ac_reply_problem(r, AC_EC_ACCOUNT_UNKNOWN, "no wallet account id", NULL);
    ac_tab_open_digest(q);
    ac_paydoc_signed(r, &q->sig);
    x->op.kind = AC_TABOP_OPEN;
    x->op.open = q;
    ac_tabs_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

/* ---- POST /v1/tabs/{id}/settle and /close
 * --------------------------------------------------------
 */

/* PARSE + CHECK into x->s. On failure queues a problem and returns 0 with *rc set. */
static int prepare_settle(struct ac_req *r, struct tctx *x, int close, enum MHD_Result *rc)
{
    const struct ac_verified *v = r->verified;
    struct ac_tab_settle_request *s = &x->s;
    json_t *body;
    *rc = ac_req_json(r, &body);
    if (body == NULL) return 0;
    json_t *vj = NULL;
    json_error_t e;
    int bad_shape = close ? json_unpack_ex(body, &e, JSON_STRICT, "{s?o}", "voucher", &vj)
                          : json_unpack_ex(body, &e, JSON_STRICT, "{s:o}", "voucher", &vj);
    if (bad_shape ||
        (vj && (!json_is_string(vj) || json_string_length(vj) != strlen(json_string_value(vj))))) {
        *rc = ac_reply_problem(r, AC_EC_JSON_SCHEMA,
                               bad_shape ? e.text : "voucher must be a compact jws string", NULL);
        json_decref(body);
        return 0;
    }
    if (vj && (x->voucher = strdup(json_string_value(vj))) == NULL) {
        json_decref(body);
        *rc = ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        return 0;
    }
    json_decref(body);
    /* CHECK: the committed tab (payee, binding, asset never change) */
    struct ac_tab_row t;
    if (read_tab(r, r->params[0], &t, rc, NULL, NULL) != AC_QS_ONE_RESULT) return 0;
    if (strcmp(t.payee, v->merchant_id) != 0) {
        *rc = ac_reply_problem(r, AC_EC_TAB_NOT_PAYEE, NULL, NULL);
        return 0;
    }
    snprintf(s->tab, sizeof s->tab, "%s", t.id);
    snprintf(s->merchant, sizeof s->merchant, "%s", v->merchant_id);
    s->close = close;
    if (x->voucher) {
        struct ac_jws jws;
        struct ac_doc_err derr = {0};
        enum ac_ec ec =
            ac_voucher_parse(x->voucher, strlen(x->voucher), t.asset, t.scale, &s->v, &jws, &derr);
        if (ec != AC_EC_OK) {
            char ptr[AC_DOC_POINTER_MAX + 16];
            snprintf(ptr, sizeof ptr, "/voucher%s", derr.pointer);
            *rc = ac_reply_problem(r, ec, derr.detail && derr.detail[0] ? derr.detail : NULL,
                                   json_pack("{s:s}", "pointer", ptr));
            return 0;
        }
        if (strcmp(s->v.tab, t.id) != 0) {
            ac_jws_clear(&jws);
            *rc = ac_reply_problem(r, AC_EC_VOUCHER_TAB_MISMATCH, NULL, NULL);
            return 0;
        }
        /* the tab's bound agent key, and only it */
        struct ac_binding_info b;
        ec = ac_registry_binding_get(r->app->registry, t.binding, &b);
        if (ec == AC_EC_OK) {
            if (strcmp(b.agent_kid, s->v.kid) != 0)
                ec = AC_EC_VOUCHER_SIGNATURE_INVALID;
            else
                ec = ac_voucher_verify(&jws, b.agent_key);
            ac_binding_info_clear(&b);
        }
        ac_jws_clear(&jws);
        if (ec != AC_EC_OK) {
            *rc =
                ac_reply_problem(r, ec == AC_EC_BINDING_UNKNOWN ? AC_EC_INTERNAL : ec, NULL, NULL);
            return 0;
        }
        s->has_voucher = 1;
        s->jws = x->voucher;
        ac_sha256(x->voucher, strlen(x->voucher), s->jws_hash);
    }
    memcpy(x->asset, t.asset, sizeof x->asset);
    x->scale = t.scale;
    return 1;
}

static enum MHD_Result settle_or_close(struct ac_req *r, int close)
{
    struct tctx *x = r->hctx;
    if (x != NULL) { /* REPLY */
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        const struct ac_tabop *op = &x->op;
        struct ac_tab_settlement_row s;
        memset(&s, 0, sizeof s);
        snprintf(s.kind, sizeof s.kind, "%s", close ? "close" : "settle");
        s.voucher_seq = x->s.has_voucher ? x->s.v.seq : 0;
        s.cumulative = op->settled;
        s.amount = op->amount;
        s.released = op->released;
        memcpy(s.post_id, op->post_id, sizeof s.post_id);
        memcpy(s.hold_id, op->hold_id, sizeof s.hold_id);
        memcpy(s.void_id, op->void_id, sizeof s.void_id);
        s.has_evidence = op->has_evidence;
        s.ev_seq = op->ev_seq;
        memcpy(s.ev_leaf, op->ev_leaf, sizeof s.ev_leaf);
        s.created_us = op->at_us;
        json_t *o = settlement_json(&s, x->asset, x->scale);
        if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        json_object_set_new(o, "tab", json_string(x->s.tab));
        json_object_set_new(o, "status", json_string(ac_tab_status_name(op->status)));
        json_object_set_new(o, "last_seq", json_integer(op->last_seq));
        return ac_reply_json(r, 200, o);
    }
    enum MHD_Result rc;
    x = ac_paydoc_begin(r, AC_PRINCIPAL_MERCHANT, "tabs are settled by the payee", sizeof *x,
                        tctx_free, &rc);
    if (x == NULL) return rc;
    if (!prepare_settle(r, x, close, &rc)) return rc;
    ac_paydoc_signed(r, &x->s.sig);
    x->op.kind = AC_TABOP_SETTLE;
    x->op.settle = &x->s;
    ac_tabs_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

enum MHD_Result ac_h_tab_settle(struct ac_req *r)
{
    return settle_or_close(r, 0);
}

enum MHD_Result ac_h_tab_close(struct ac_req *r)
{
    return settle_or_close(r, 1);
}

/* ---- reading
 * -------------------------------------------------------------------------------------
 */

enum MHD_Result ac_h_tabs_get(struct ac_req *r)
{
    struct ac_tab_row t;
    struct ac_tab_settlement_row *stl = calloc(SETTLEMENTS_SHOWN, sizeof *stl);
    size_t n = 0;
    enum MHD_Result rc;
    if (stl == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (read_tab(r, r->params[0], &t, &rc, stl, &n) != AC_QS_ONE_RESULT) {
        free(stl);
        return rc;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, settlement_json(&stl[i], t.asset, t.scale));
    free(stl);
    return reply_tab(r, &t, 200, 0, a);
}

static const char *query(struct ac_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

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

static int cursor_decode(const char *c, int64_t *seq)
{
    size_t n = strlen(c);
    uint8_t buf[CURSOR_MAX];
    size_t len = 0;
    if (n == 0 || n > 40 || ac_b64_decode(c, n, buf, &len, 1) != 0) return -1;
    if (len < 4 || memcmp(buf, "t1:", 3) != 0) return -1;
    return parse_pos((const char *)buf + 3, len - 3, INT64_MAX, seq);
}

static enum MHD_Result list_tabs(struct ac_req *r, int user)
{
    const char *id = r->params[0];
    int64_t limit = LIST_LIMIT_DEFAULT, before = 0;
    const char *l = query(r, "limit"), *c = query(r, "cursor");
    if (l && parse_pos(l, strlen(l), LIST_LIMIT_MAX, &limit) != 0)
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID,
                                "limit must be an integer from 1 to 100", NULL);
    if (c && cursor_decode(c, &before) != 0)
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID,
                                "cursor is not one this server returned", NULL);
    struct ac_principal_info info;
    enum ac_ec ec = ac_id_valid(id)
                        ? ac_registry_principal_get(
                              r->app->registry, user ? AC_ROLE_USER : AC_ROLE_MERCHANT, id, &info)
                        : (user ? AC_EC_USER_UNKNOWN : AC_EC_MERCHANT_UNKNOWN);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    ac_principal_info_clear(&info);
    struct ac_tab_row *rows = calloc((size_t)limit + 1, sizeof *rows);
    if (rows == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    PGconn *conn = ac_pool_get(r->app->pool);
    if (conn == NULL) {
        free(rows);
        return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    }
    size_t n = 0;
    enum ac_qs qs = ac_tabs_list(conn, !user, id, before, (unsigned)limit + 1, rows, &n);
    ac_pool_put(r->app->pool, conn, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) {
        free(rows);
        return ac_reply_db_error(r, qs);
    }
    int more = n > (size_t)limit;
    size_t shown = more ? (size_t)limit : n;
    json_t *data = json_array();
    for (size_t i = 0; data && i < shown; i++)
        json_array_append_new(data, tab_json(&rows[i]));
    char next[CURSOR_MAX] = "";
    if (more) {
        char t[32];
        int k = snprintf(t, sizeof t, "t1:%lld", (long long)rows[shown - 1].seq);
        ac_b64_encode((const uint8_t *)t, (size_t)k, next, 1);
    }
    free(rows);
    json_t *o = data ? json_pack("{s:o}", "data", data) : NULL;
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (more) json_object_set_new(o, "next_cursor", json_string(next));
    return ac_reply_json(r, 200, o);
}

enum MHD_Result ac_h_user_tabs(struct ac_req *r)
{
    return list_tabs(r, 1);
}

enum MHD_Result ac_h_merchant_tabs(struct ac_req *r)
{
    return list_tabs(r, 0);
}
