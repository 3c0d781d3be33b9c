/* Payments (docs/mandates.md, "Payments").
 *
 * POST /v1/payments        signed by the agent (RFC 9421, AC_AUTH_AGENT)
 *   {"id", "mandate", "payee", "amount": {"currency", "value"}, "op"?, "purpose"?,
 *    "order_digest"?}
 *   201 settled or pending_confirmation (with the step-up challenge); 422 payment_denied with the
 *   reasons; the ledger's problem (e.g. 422 exceeds_credits) when the payment was allowed but
 *   the ledger refused it. The same id with the same request answers the original outcome again
 *   (200 instead of 201); with another request 409 payment_exists.
 * GET  /v1/payments/{id}   (operator) the payment as committed. An agent reads its own payment
 *   by repeating its request: same id, same body, a fresh signature.
 *
 * Phases: PARSE (body, amount at the asset's scale) -> CHECK (mandate known, payee a merchant,
 * both on this node's committed view) -> DECIDE+SETTLE (the sequencer: binding and mandate
 * re-checked, the risk decision against the live spend, the transfer or hold, the evidence
 * record, one transaction) -> REPLY (rendered here, never on the sequencer). */
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/payments.h"
#include "protocol/amount.h"
#include "protocol/b64.h"
#include "protocol/buf.h"
#include "server/authn.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

struct pctx {
    struct ac_cmd cmd;
    struct ac_payop op;
    struct ac_pay_request q;
};

static void pctx_free(void *p)
{
    free(p);
}

/* ---- rendering ---------------------------------------------------------------------------------
 */

static json_t *reasons_json(const char *csv)
{
    json_t *a = json_array();
    if (a == NULL) return NULL;
    const char *s = csv;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n) json_array_append_new(a, json_stringn(s, n));
        s += n + (e != NULL);
    }
    return a;
}

static const char *autonomy_text(int a)
{
    const char *s = ac_autonomy_name((enum ac_autonomy)a);
    return s ? s : "L0";
}

/* The payment object of the answers (POST and GET; also server/h_authorizations.c). */
json_t *ac_payment_json(const struct ac_payment_row *p)
{
    char created[40], updated[40];
    ac_rfc3339(p->created_us, created);
    ac_rfc3339(p->updated_us, updated);
    json_t *o = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:o}, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", p->id,
        "status", ac_pay_status_name(p->status), "decision", "verdict", p->verdict, "autonomy",
        autonomy_text(p->autonomy), "reasons", reasons_json(p->reasons), "amount",
        ac_doc_amount_json(p->asset, p->amount, p->scale), "payee", p->payee, "mandate", p->mandate,
        "op", ac_op_name(p->op) ? ac_op_name(p->op) : "", "user", p->user, "agent", p->agent,
        "binding", p->binding, "created_at", created, "updated_at", updated);
    if (o == NULL) return NULL;
    if (p->purpose[0]) json_object_set_new(o, "purpose", json_string(p->purpose));
    if (p->order_digest[0]) json_object_set_new(o, "order_digest", json_string(p->order_digest));
    json_object_set_new(o, "refunded", ac_doc_amount_json(p->asset, p->refunded, p->scale));
    if (p->transfer_id[0]) json_object_set_new(o, "transfer", json_string(p->transfer_id));
    if (p->error[0]) json_object_set_new(o, "error", json_string(p->error));
    if (p->has_evidence)
        json_object_set_new(o, "evidence", ac_paydoc_evidence_json(p->ev_seq, p->ev_leaf));
    if (p->authorization_id[0]) {
        char exp[40];
        ac_rfc3339(p->challenge_exp * 1000000, exp);
        json_t *ch = p->challenge ? json_loads(p->challenge, JSON_REJECT_DUPLICATES, NULL) : NULL;
        json_object_set_new(o, "authorization",
                            json_pack("{s:s, s:s, s:o, s:s}", "id", p->authorization_id, "status",
                                      p->authorization_status, "challenge", ch ? ch : json_null(),
                                      "expires_at", exp));
    }
    return o;
}

/* ,"name":{"currency":asset,"value":"units at scale"} */
static void amount_member(struct ac_buf *out, const char *name, const char *asset, int64_t units,
                          unsigned scale)
{
    char value[AC_AMOUNT_STR_MAX];
    ac_buf_json_key(out, name);
    ac_buf_adds(out, "{\"currency\":");
    ac_buf_json_str(out, asset);
    ac_buf_json_member(out, "value", ac_amount_format(units, scale, value));
    ac_buf_add(out, "}", 1);
}

/* ac_payment_json() written straight into out, byte for byte what json_dumps(JSON_COMPACT) writes
 * of it (tests/unit/test_payment_json.c compares them): the answer of every settled payment (and
 * of GET and replays), where the tree and its dump were about 8% of the server's CPU. -1 when
 * out of memory, the payment has a step-up (its challenge goes through jansson:
 * ac_payment_json), or its free text is not UTF-8. */
int ac_payment_json_text(const struct ac_payment_row *p, struct ac_buf *out)
{
    const char *status = ac_pay_status_name(p->status), *op = ac_op_name(p->op);
    if (p->authorization_id[0] || status == NULL) return -1;
    /* the free-text members: a row read back could hold text cut inside a character (the row's
     * buffers are fixed), which jansson would leave out; so would ac_payment_json() then */
    if (!ac_utf8_valid(p->purpose, strlen(p->purpose)) ||
        !ac_utf8_valid(p->order_digest, strlen(p->order_digest)))
        return -1;
    char created[40], updated[40];
    ac_rfc3339(p->created_us, created);
    ac_rfc3339(p->updated_us, updated);
    ac_buf_adds(out, "{\"id\":");
    ac_buf_json_str(out, p->id);
    ac_buf_json_member(out, "status", status);
    ac_buf_adds(out, ",\"decision\":{\"verdict\":");
    ac_buf_json_str(out, p->verdict);
    ac_buf_json_member(out, "autonomy", autonomy_text(p->autonomy));
    ac_buf_adds(out, ",\"reasons\":[");
    int first = 1;
    for (const char *s = p->reasons; *s;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n) {
            char code[sizeof p->reasons];
            memcpy(code, s, n);
            code[n] = '\0';
            if (!first) ac_buf_add(out, ",", 1);
            ac_buf_json_str(out, code);
            first = 0;
        }
        s += n + (e != NULL);
    }
    ac_buf_adds(out, "]}");
    amount_member(out, "amount", p->asset, p->amount, p->scale);
    static const char *const names[] = {"payee", "mandate", "op",         "user",
                                        "agent", "binding", "created_at", "updated_at"};
    const char *vals[] = {p->payee, p->mandate, op ? op : "", p->user,
                          p->agent, p->binding, created,      updated};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ac_buf_json_member(out, names[i], vals[i]);
    if (p->purpose[0]) ac_buf_json_member(out, "purpose", p->purpose);
    if (p->order_digest[0]) ac_buf_json_member(out, "order_digest", p->order_digest);
    amount_member(out, "refunded", p->asset, p->refunded, p->scale);
    if (p->transfer_id[0]) ac_buf_json_member(out, "transfer", p->transfer_id);
    if (p->error[0]) ac_buf_json_member(out, "error", p->error);
    if (p->has_evidence) {
        char b64[48];
        ac_b64_encode(p->ev_leaf, sizeof p->ev_leaf, b64, 0);
        ac_buf_adds(out, ",\"evidence\":{\"seq\":");
        ac_buf_add_i64(out, (long long)p->ev_seq);
        ac_buf_json_member(out, "leaf_hash", b64);
        ac_buf_add(out, "}", 1);
    }
    ac_buf_add(out, "}", 1);
    return out->oom ? -1 : 0;
}

/* Reply with a payment: a problem carrying it when it was refused (denied: payment_denied; failed:
 * the ledger's code) and as_problem is set (POST), else ok_status with it (a step-up that ended
 * since -- settled, declined, expired -- is answered as it stands now). */
static enum MHD_Result reply_payment(struct ac_req *r, const struct ac_payment_row *p,
                                     unsigned ok_status, int as_problem)
{
    int refused = as_problem && (p->status == AC_PAY_DENIED || p->status == AC_PAY_FAILED);
    if (!refused) {
        struct ac_buf b = {0};
        if (ac_payment_json_text(p, &b) == 0)
            return ac_reply_json_text(r, ok_status, b.p, b.len); /* the reply frees b.p */
        ac_buf_free(&b);
    }
    json_t *o = ac_payment_json(p);
    if (o == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (!refused) return ac_reply_json(r, ok_status, o);
    enum ac_ec ec = AC_EC_PAYMENT_DENIED;
    if (p->status == AC_PAY_FAILED) {
        ec = ac_ec_from_code(p->error);
        if (ec == AC_EC__COUNT || ac_ec_status(ec) < 400) ec = AC_EC_INTERNAL;
    }
    json_t *extra = json_pack("{s:O, s:O, s:o}", "reasons",
                              json_object_get(json_object_get(o, "decision"), "reasons"),
                              "decision", json_object_get(o, "decision"), "payment", o);
    return ac_reply_problem(r, ec, NULL, extra);
}

/* The row of a payment just decided, from the request and the op (no database round trip). */
static void row_from_op(struct ac_payment_row *p, const struct ac_pay_request *q,
                        const struct ac_payop *op, const struct ac_verified *v)
{
    memset(p, 0, sizeof *p);
    memcpy(p->id, q->id, sizeof p->id);
    memcpy(p->mandate, q->mandate, sizeof p->mandate);
    memcpy(p->binding, q->binding, sizeof p->binding);
    memcpy(p->user, v->user_id, sizeof p->user);
    memcpy(p->agent, v->agent_id, sizeof p->agent);
    memcpy(p->payee, q->payee, sizeof p->payee);
    p->op = q->op;
    p->amount = q->amount;
    memcpy(p->asset, q->asset, sizeof p->asset);
    p->scale = q->scale;
    memcpy(p->purpose, q->purpose, sizeof p->purpose);
    memcpy(p->order_digest, q->order_digest, sizeof p->order_digest);
    p->status = op->status;
    snprintf(p->verdict, sizeof p->verdict, "%s", ac_verdict_name(op->decision.verdict));
    p->autonomy = (int)op->decision.autonomy;
    size_t n = 0;
    if (op->status == AC_PAY_FAILED) {
        snprintf(p->error, sizeof p->error, "%s", ac_ec_code(op->ledger_ec));
    } else {
        for (unsigned i = 0; i < op->decision.n; i++)
            n += (size_t)snprintf(p->reasons + n, sizeof p->reasons - n, "%s%s", i ? "," : "",
                                  ac_reason_code(op->decision.reasons[i]));
    }
    snprintf(p->transfer_id, sizeof p->transfer_id, "%s", op->transfer_id);
    p->has_evidence = op->has_evidence;
    p->ev_seq = op->ev_seq;
    memcpy(p->ev_leaf, op->ev_leaf, sizeof p->ev_leaf);
    p->created_us = p->updated_us = op->at_us;
    if (op->status == AC_PAY_PENDING) {
        memcpy(p->authorization_id, op->challenge.authorization, sizeof p->authorization_id);
        snprintf(p->authorization_status, sizeof p->authorization_status, "pending");
        p->challenge = ac_stepup_challenge_render(&op->challenge);
        p->challenge_exp = op->challenge.exp;
    }
}

/* Read payment id back from the database and reply with it. */
static enum MHD_Result reply_stored(struct ac_req *r, const char *id, unsigned ok_status,
                                    int as_problem)
{
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_payment_row p;
    enum ac_qs qs = ac_payments_read_payment(c, id, &p);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) return ac_reply_db_error(r, qs);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_PAYMENT_UNKNOWN, NULL, NULL);
    enum MHD_Result rc = reply_payment(r, &p, ok_status, as_problem);
    ac_payment_row_clear(&p);
    return rc;
}

/* ---- parsing -----------------------------------------------------------------------------------
 */

/* Printable ASCII without spaces, 1..AC_STEPUP_ORDER_SIZE-1 bytes. */
static int order_digest_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= AC_STEPUP_ORDER_SIZE) return 0;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e) return 0;
    return 1;
}

/* The members only a payment has, as unpacked. */
struct pay_members {
    struct pctx *x;
    const char *op;
    json_t *purpose, *order;
};

/* The payment's own checks (ac_agent_money_spec.check): op, purpose and order_digest, into x->q. */
static int check_members(struct ac_req *r, const struct ac_agent_money *m, void *cls,
                         enum MHD_Result *rc)
{
    struct pay_members *pm = cls;
    struct ac_pay_request *q = &pm->x->q;
    struct ac_doc_err derr = {0};
    if ((q->op = ac_op_from_name(pm->op)) == 0) {
        *rc = ac_paydoc_bad(r, AC_EC_PARAMETER_INVALID, "/op",
                            "op must be purchase, topup or micropay");
    } else if (q->op == AC_OP_TOPUP) {
        /* a top-up moves fiat and tokens as one pair at a published price: POST /v1/topups */
        *rc = ac_paydoc_bad(r, AC_EC_PARAMETER_INVALID, "/op",
                            "a top-up is made with POST /v1/topups (fiat and tokens move as one "
                            "pair)");
    } else if (pm->purpose &&
               ac_doc_text(m->body, "", "purpose", 1, q->purpose, sizeof q->purpose, &derr) != 1) {
        *rc = ac_paydoc_bad(r, AC_EC_PARAMETER_INVALID, "/purpose",
                            "purpose must be 1-255 bytes of text without control characters");
    } else if (pm->order &&
               (!json_is_string(pm->order) ||
                json_string_length(pm->order) != strlen(json_string_value(pm->order)) ||
                !order_digest_ok(json_string_value(pm->order)))) {
        *rc = ac_paydoc_bad(r, AC_EC_PARAMETER_INVALID, "/order_digest",
                            "order_digest must be 1-127 printable ASCII characters without spaces");
    } else {
        if (pm->order)
            snprintf(q->order_digest, sizeof q->order_digest, "%s", json_string_value(pm->order));
        return 1;
    }
    return 0;
}

static const struct ac_agent_money_spec pay_spec = {.payee_key = "payee", .check = check_members};

enum MHD_Result ac_h_payments_post(struct ac_req *r)
{
    struct pctx *x = r->hctx;
    if (x != NULL) { /* REPLY: the sequencer's outcome */
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        if (x->op.replayed) return reply_stored(r, x->q.id, 200, 1);
        struct ac_payment_row p;
        row_from_op(&p, &x->q, &x->op, r->verified);
        enum MHD_Result rc = reply_payment(r, &p, 201, 1);
        ac_payment_row_clear(&p);
        return rc;
    }
    enum MHD_Result rc;
    x = ac_paydoc_begin(r, AC_PRINCIPAL_AGENT, "payments are signed by an agent", sizeof *x,
                        pctx_free, &rc);
    if (x == NULL) return rc;
    /* PARSE + CHECK: the members; the mandate and the payee exist (the sequencer decides
     * everything else) */
    struct ac_agent_money m;
    struct pay_members pm = {.x = x, .op = "purchase"};
    if (!ac_paydoc_agent_money(r, &pay_spec, &pm, &m, &rc,
                               "{s:s, s:s, s:s, s:{s:s, s:s}, s?s, s?o, s?o}", "id", &m.j.id,
                               "mandate", &m.j.mandate, "payee", &m.j.payee, "amount", "currency",
                               &m.j.currency, "value", &m.j.value, "op", &pm.op, "purpose",
                               &pm.purpose, "order_digest", &pm.order))
        return rc;
    const struct ac_verified *v = r->verified;
    struct ac_pay_request *q = &x->q;
    memcpy(q->id, m.id, sizeof q->id);
    memcpy(q->mandate, m.mandate, sizeof q->mandate);
    memcpy(q->payee, m.payee, sizeof q->payee);
    memcpy(q->category, m.category, sizeof q->category);
    memcpy(q->binding, m.binding, sizeof q->binding);
    memcpy(q->asset, m.asset, sizeof q->asset);
    q->scale = m.scale;
    q->amount = m.amount;
    ac_wallet_account(1, v->user_id, q->asset, q->debit);
    ac_wallet_account(0, q->payee, q->asset, q->credit);
    ac_payment_transfer_id(q->id, "pay", q->transfer_id);
    ac_pay_request_digest(q);
    ac_paydoc_signed(r, &q->sig);
    /* DECIDE + SETTLE on the sequencer */
    x->op.kind = AC_PAYOP_PAY;
    x->op.pay = q;
    ac_payments_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

enum MHD_Result ac_h_payments_get(struct ac_req *r)
{
    return reply_stored(r, r->params[0], 200, 0);
}
