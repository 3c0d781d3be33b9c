/* Payments through a real sequencer on a real PostgreSQL, with an injected clock (real keys,
 * user-signed mandates and confirmations, an evidence log):
 * - period rollover: a mandate in +08:00 with day, week and month caps; payments one microsecond
 *   before and exactly at local midnight, Monday 00:00 (a UTC Sunday) and the 1st of the month;
 *   a cap reached exactly is allowed, one base unit more is not;
 * - a restart in the middle reloads the spend exactly (the same decisions follow);
 * - step-up: a confirmation one microsecond before the challenge's exp settles; a hold nobody
 *   confirms is voided by the sequencer's deadline at exp (spend and ledger released, a
 *   payment.expire record), and a confirmation after it is refused;
 * - the mandate's stored spend row, the wallet and the evidence records agree;
 * - free text (a purpose with quotes, backslashes, braces and commas) goes through the batch's
 *   array literals and comes back from the database byte for byte. */
#include "tests/support/testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "keys/registry.h"
#include "ledger/db.h"
#include "ledger/domain.h"
#include "ledger/evlog.h"
#include "ledger/identity_ops.h"
#include "ledger/payments.h"
#include "ledger/sequencer.h"
#include "protocol/evidence.h"
#include "protocol/sig.h"
#include "tests/support/agentsig.h"
#include "tests/support/identity.h"
#include "tests/support/seqnode.h"

/* 2025-03-05T15:59:00Z = Wednesday 23:59 at +08:00 */
#define T0 1741190340LL
#define US 1000000LL
#define DAY 86400LL

static const char *url;
static _Atomic int64_t fake_now = T0 * US;
static EVP_PKEY *alice, *agent;

static int64_t fake_clock(void *cls)
{
    (void)cls;
    return atomic_load(&fake_now);
}

static void set_now(int64_t s, int64_t us)
{
    atomic_store(&fake_now, s * US + us);
}

static long long sql_int(const char *q)
{
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    assert_non_null(c);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", q, PQerrorMessage(c));
    long long v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

struct node {
    struct ac_registry *reg;
    struct ac_payments *pay;
    struct ac_evlog *ev;
    struct ac_domain dom;
    struct ac_sequencer *seq;
};

static struct node N;

static void node_start(struct node *n)
{
    memset(n, 0, sizeof *n);
    n->reg = ac_registry_new();
    struct ac_payments_config pc = {.stepup_ttl_s = 30};
    n->pay = ac_payments_new(&pc);
    struct ac_evlog_config ec = {.origin = "test.local/0"};
    n->ev = ac_evlog_new(&ec);
    assert_non_null(n->reg);
    assert_non_null(n->pay);
    assert_non_null(n->ev);
    n->dom = (struct ac_domain){.registry = n->reg, .evlog = n->ev, .payments = n->pay};
    n->seq = ac_test_seq_start(url, &n->dom, fake_clock);
}

static void node_stop(struct node *n)
{
    ac_seq_free(n->seq);
    ac_payments_free(n->pay);
    ac_evlog_free(n->ev);
    ac_registry_free(n->reg);
    memset(n, 0, sizeof *n);
}

static enum ac_ec run_op(struct ac_payop *op)
{
    return ac_test_seq_payments(N.seq, op);
}

static enum ac_ec run_id(struct ac_identity_op *op)
{
    return ac_test_seq_identity(N.seq, op);
}

/* ---- the world ------------------------------------------------------------------------------- */

static void world(void)
{
    assert_int_equal(sql_int("insert into ac_assets (code, scale) values ('CNY', 2) returning 1"),
                     1);
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_PRINCIPAL;
    op.role = AC_ROLE_USER;
    snprintf(op.id, sizeof op.id, "alice");
    op.keys[0] = alice;
    op.nkeys = 1;
    assert_int_equal(run_id(&op), AC_EC_OK);
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_PRINCIPAL;
    op.role = AC_ROLE_MERCHANT;
    snprintf(op.id, sizeof op.id, "shop");
    snprintf(op.name, sizeof op.name, "Shop");
    snprintf(op.category, sizeof op.category, "books");
    assert_int_equal(run_id(&op), AC_EC_OK);
    json_t *p = ac_test_binding_payload("b1", "alice", "agent-a", agent, T0 - 10, T0 + 60 * DAY);
    json_object_set_new(p, "max_autonomy", json_string("L5"));
    char *jws = ac_test_sign_doc(alice, AC_BINDING_TYP, p, NULL);
    json_decref(p);
    struct ac_binding_doc b;
    assert_int_equal(ac_binding_parse(jws, strlen(jws), &b, NULL), AC_EC_OK);
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_BINDING;
    op.binding = &b;
    op.jws = jws;
    assert_int_equal(run_id(&op), AC_EC_OK);
    ac_binding_clear(&b);
    free(jws);
    /* wallets, funded */
    struct ac_account acc[3];
    memset(acc, 0, sizeof acc);
    const char *ids[] = {"bank:cny", "user:alice:cny", "merchant:shop:cny"};
    for (int i = 0; i < 3; i++) {
        snprintf(acc[i].id, sizeof acc[i].id, "%s", ids[i]);
        snprintf(acc[i].asset, sizeof acc[i].asset, "CNY");
    }
    acc[1].flags = AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS;
    enum ac_ec res[3];
    int rep[3];
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_ACCOUNTS;
    c.n = 3;
    c.accounts = acc;
    c.account_results = res;
    c.account_replayed = rep;
    assert_int_equal(ac_seq_run(N.seq, &c), AC_EC_OK);
    struct ac_transfer_req t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "fund");
    snprintf(t.debit, sizeof t.debit, "bank:cny");
    snprintf(t.credit, sizeof t.credit, "user:alice:cny");
    snprintf(t.asset, sizeof t.asset, "CNY");
    t.amount = 1000000;
    struct ac_transfer_result tr;
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_TRANSFERS;
    c.n = 1;
    c.transfers = &t;
    c.results = &tr;
    static const unsigned scale = 2; /* CNY, for the ledger.transfer record */
    c.scales = &scale;
    assert_int_equal(ac_seq_run(N.seq, &c), AC_EC_OK);
    assert_int_equal(tr.ec, AC_EC_OK);
}

/* Register a mandate (payload reference stolen) signed by alice, as the HTTP thread would. */
static void mandate(json_t *p)
{
    char *jws = ac_test_sign_doc(alice, AC_MANDATE_TYP, p, NULL);
    json_decref(p);
    struct ac_jws j;
    assert_int_equal(ac_jws_parse(jws, strlen(jws), &j, NULL), AC_EC_OK);
    assert_int_equal(ac_mandate_jws_check(&j, NULL), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&j, alice), AC_EC_OK);
    struct ac_mandate m;
    assert_int_equal(ac_mandate_parse(j.payload_json, 2, &m, NULL), AC_EC_OK);
    struct ac_payop op;
    memset(&op, 0, sizeof op);
    op.kind = AC_PAYOP_MANDATE;
    op.mandate = &m;
    op.jws = jws;
    snprintf(op.kid, sizeof op.kid, "%s", j.kid);
    assert_int_equal(run_op(&op), AC_EC_OK);
    assert_false(op.replayed);
    ac_jws_clear(&j);
    free(jws);
}

static json_t *mandate_payload(const char *id, const char *autonomy)
{
    json_t *p = ac_test_mandate_payload(id, "alice", "agent-a", "shop", "CNY", "10.00", autonomy);
    json_object_set_new(p, "nbf", json_integer(T0 - 100));
    json_object_set_new(p, "exp", json_integer(T0 + 90 * DAY));
    json_object_set_new(p, "tz", json_string("+08:00"));
    return p;
}

/* A payment request as the HTTP thread builds it, with a real agent signature over its base. */
struct preq {
    struct ac_pay_request q;
    uint8_t sig[AC_SIG_MAX];
    char base[256], body[256];
};

static void preq(struct preq *x, const char *id, const char *mid, int64_t amount)
{
    memset(x, 0, sizeof *x);
    struct ac_pay_request *q = &x->q;
    snprintf(q->id, sizeof q->id, "%s", id);
    snprintf(q->binding, sizeof q->binding, "b1");
    snprintf(q->mandate, sizeof q->mandate, "%s", mid);
    snprintf(q->payee, sizeof q->payee, "shop");
    snprintf(q->category, sizeof q->category, "books");
    q->op = AC_OP_PURCHASE;
    snprintf(q->asset, sizeof q->asset, "CNY");
    q->scale = 2;
    q->amount = amount;
    assert_int_equal(ac_wallet_account(1, "alice", "CNY", q->debit), 0);
    assert_int_equal(ac_wallet_account(0, "shop", "CNY", q->credit), 0);
    assert_string_equal(q->debit, "user:alice:cny");
    ac_payment_transfer_id(id, "pay", q->transfer_id);
    ac_pay_request_digest(q);
    snprintf(x->body, sizeof x->body, "{\"id\":\"%s\",\"amount\":%lld}", id, (long long)amount);
    snprintf(x->base, sizeof x->base, "\"@method\": POST\n\"@signature-params\": (\"@method\")");
    size_t sl = 0;
    assert_int_equal(ac_sig_sign(agent, (const uint8_t *)x->base, strlen(x->base), x->sig, &sl), 0);
    q->sig = (struct ac_pay_signed){.keyid = ac_test_kid(agent),
                                    .base = (const uint8_t *)x->base,
                                    .base_len = strlen(x->base),
                                    .sig = x->sig,
                                    .sig_len = sl,
                                    .body = (const uint8_t *)x->body,
                                    .body_len = strlen(x->body)};
}

/* Pay and return the op's outcome in *out. */
static void pay(const char *id, const char *mid, int64_t amount, struct ac_payop *out)
{
    struct preq x;
    preq(&x, id, mid, amount);
    memset(out, 0, sizeof *out);
    out->kind = AC_PAYOP_PAY;
    out->pay = &x.q;
    assert_int_equal(run_op(out), AC_EC_OK);
    out->pay = NULL;
    assert_true(out->replayed || out->has_evidence);
}

static void settles(const char *id, const char *mid, int64_t amount)
{
    struct ac_payop op;
    pay(id, mid, amount, &op);
    if (op.status != AC_PAY_SETTLED)
        fail_msg("%s: status %s, reasons %u (first %s)", id, ac_pay_status_name(op.status),
                 op.decision.n, op.decision.n ? ac_reason_code(op.decision.reasons[0]) : "");
}

/* Denied with exactly the one decisive reason r. */
static void denied(const char *id, const char *mid, int64_t amount, enum ac_reason r)
{
    struct ac_payop op;
    pay(id, mid, amount, &op);
    assert_int_equal(op.status, AC_PAY_DENIED);
    if (op.decision.n != 1 || op.decision.reasons[0] != r)
        fail_msg("%s: expected only %s, got %u reasons (first %s)", id, ac_reason_code(r),
                 op.decision.n, op.decision.n ? ac_reason_code(op.decision.reasons[0]) : "");
}

static long long wallet_posted(void)
{
    return sql_int("select debits_posted from ac_accounts where id = 'user:alice:cny'");
}

/* ---- period rollover ------------------------------------------------------------------------- */

static void rollover(void **st)
{
    (void)st;
    json_t *p = mandate_payload("mp", "L5");
    json_object_set_new(
        p, "caps", json_pack("{s:s, s:s, s:s}", "day", "10.00", "week", "25.00", "month", "40.00"));
    mandate(p);
    long long w0 = wallet_posted();

    set_now(T0, 0);            /* Wed 23:59 local */
    settles("r1", "mp", 1000); /* the day's cap, exactly */
    set_now(T0 + 60, -1);      /* Wed 23:59:59.999999 local */
    denied("r2", "mp", 1, AC_RR_CAP_DAY_EXCEEDED);
    set_now(T0 + 60, 0); /* Thu 00:00 local: a new day */
    settles("r3", "mp", 1000);
    set_now(T0 + 60 + DAY, 0);                         /* Fri */
    denied("r4", "mp", 1000, AC_RR_CAP_WEEK_EXCEEDED); /* week 20 + 10 > 25 */
    settles("r5", "mp", 500);                          /* week 25: exactly */
    set_now(T0 + 60 + 2 * DAY, 0);                     /* Sat */
    denied("r6", "mp", 1, AC_RR_CAP_WEEK_EXCEEDED);

    /* a restart reloads the spend exactly */
    node_stop(&N);
    node_start(&N);
    denied("r7", "mp", 1, AC_RR_CAP_WEEK_EXCEEDED);
    set_now(T0 + 60 + 4 * DAY, -1); /* Sun 23:59:59.999999 local */
    denied("r8", "mp", 1, AC_RR_CAP_WEEK_EXCEEDED);
    set_now(T0 + 60 + 4 * DAY, 0); /* Mon 00:00 local (still Sunday in UTC) */
    settles("r9", "mp", 1000);     /* week 10, month 35 */
    set_now(T0 + 60 + 5 * DAY, 0); /* Tue */
    denied("r10", "mp", 1000, AC_RR_CAP_MONTH_EXCEEDED);
    settles("r11", "mp", 500); /* month 40: exactly */
    /* 2025-03-31T16:00:00Z is April 1st 00:00 local */
    const int64_t april = 1743436800LL;
    set_now(april, -1);
    denied("r12", "mp", 1, AC_RR_CAP_MONTH_EXCEEDED);
    set_now(april, 0);
    settles("r13", "mp", 1000);

    /* the stored state agrees with the decisions */
    assert_int_equal(wallet_posted() - w0, 1000 + 1000 + 500 + 1000 + 500 + 1000);
    assert_int_equal(sql_int("select spent from ac_mandate_spend where mandate_id = 'mp'"), 5000);
    assert_int_equal(sql_int("select uses from ac_mandate_spend where mandate_id = 'mp'"), 6);
    assert_int_equal(sql_int("select month_start from ac_mandate_spend where mandate_id = 'mp'"),
                     april);
    assert_int_equal(sql_int("select month_spent from ac_mandate_spend where mandate_id = 'mp'"),
                     1000);
    assert_int_equal(sql_int("select day_start from ac_mandate_spend where mandate_id = 'mp'"),
                     april);
    /* week of Monday 2025-03-31 local = 2025-03-30T16:00:00Z */
    assert_int_equal(sql_int("select week_start from ac_mandate_spend where mandate_id = 'mp'"),
                     april - DAY);
    assert_int_equal(sql_int("select count(*) from ac_payments where mandate_id = 'mp' and "
                             "status = 'settled'"),
                     6);
    assert_int_equal(sql_int("select count(*) from ac_payments where mandate_id = 'mp' and "
                             "status = 'denied'"),
                     7);
    /* one evidence record per decision */
    assert_int_equal(sql_int("select count(*) from ac_evidence where payment_id like 'r%' and "
                             "kind = 'payment.settle'"),
                     6);
    assert_int_equal(sql_int("select count(*) from ac_evidence where payment_id like 'r%' and "
                             "kind = 'payment.deny'"),
                     7);
    /* replays change nothing, before and after a restart */
    struct ac_payop op;
    pay("r13", "mp", 1000, &op);
    assert_true(op.replayed);
    struct preq x;
    preq(&x, "r13", "mp", 999); /* the same id, another request */
    memset(&op, 0, sizeof op);
    op.kind = AC_PAYOP_PAY;
    op.pay = &x.q;
    assert_int_equal(run_op(&op), AC_EC_PAYMENT_EXISTS);
    assert_int_equal(wallet_posted() - w0, 5000);
}

/* ---- step-up: confirmation at the edge, expiry by the deadline --------------------------------
 */

/* The user's signed answer to op's challenge. */
static enum ac_ec answer(const struct ac_payop *pending, enum ac_stepup_decision d,
                         struct ac_payop *out)
{
    struct ac_stepup_confirmation c;
    memset(&c, 0, sizeof c);
    memcpy(c.authorization, pending->challenge.authorization, sizeof c.authorization);
    memcpy(c.nonce, pending->challenge.nonce, sizeof c.nonce);
    assert_int_equal(ac_stepup_payment_digest(&pending->challenge, c.payment_digest), 0);
    c.decision = d;
    c.iat = atomic_load(&fake_now) / US;
    json_t *p = ac_stepup_confirmation_to_json(&c);
    assert_non_null(p);
    char *jws = ac_test_sign_doc(alice, AC_CONFIRMATION_TYP, p, NULL);
    json_decref(p);
    memset(out, 0, sizeof *out);
    out->kind = AC_PAYOP_ANSWER;
    out->conf = &c;
    out->jws = jws;
    snprintf(out->kid, sizeof out->kid, "%s", ac_test_kid(alice));
    enum ac_ec ec = run_op(out);
    out->conf = NULL;
    out->jws = NULL;
    free(jws);
    return ec;
}

static void stepup(void **st)
{
    (void)st;
    json_t *p = mandate_payload("ms", "L4");
    json_object_set_new(p, "step_up_above", json_string("1.00"));
    json_object_set_new(p, "caps", json_pack("{s:s}", "total", "5.00"));
    mandate(p);
    int64_t t = T0 + 40 * DAY;
    set_now(t, 0);
    long long w0 = wallet_posted();
    struct ac_payop a, b, r;
    pay("s1", "ms", 200, &a);
    assert_int_equal(a.status, AC_PAY_PENDING);
    assert_int_equal(a.challenge.exp, t + 30);
    pay("s2", "ms", 200, &b);
    assert_int_equal(b.status, AC_PAY_PENDING);
    /* the holds count against the total cap: 2 + 2 + 2 > 5 */
    pay("s3", "ms", 200, &r);
    assert_int_equal(r.status, AC_PAY_DENIED);
    assert_int_equal(sql_int("select held from ac_mandate_spend where mandate_id = 'ms'"), 400);
    assert_int_equal(sql_int("select debits_pending from ac_accounts where id = 'user:alice:cny'"),
                     400);
    /* one microsecond before exp: the confirmation settles, exactly once */
    set_now(t + 30, -1);
    assert_int_equal(answer(&a, AC_STEPUP_CONFIRM, &r), AC_EC_OK);
    assert_int_equal(r.status, AC_PAY_SETTLED);
    assert_true(r.has_evidence);
    assert_int_equal(answer(&a, AC_STEPUP_CONFIRM, &r), AC_EC_AUTHORIZATION_ALREADY_DECIDED);
    assert_int_equal(wallet_posted() - w0, 200);
    /* at exp the other one is voided by the sequencer itself (no command needed) */
    set_now(t + 30, 0);
    int expired = 0;
    for (int i = 0; i < 200 && !expired; i++) {
        expired = sql_int("select count(*) from ac_authorizations where payment_id = 's2' and "
                          "status = 'expired'") == 1;
        if (!expired) usleep(50000);
    }
    assert_true(expired);
    assert_int_equal(answer(&b, AC_STEPUP_CONFIRM, &r), AC_EC_AUTHORIZATION_EXPIRED);
    assert_int_equal(sql_int("select debits_pending from ac_accounts where id = 'user:alice:cny'"),
                     0);
    assert_int_equal(wallet_posted() - w0, 200);
    assert_int_equal(sql_int("select held from ac_mandate_spend where mandate_id = 'ms'"), 0);
    assert_int_equal(sql_int("select spent from ac_mandate_spend where mandate_id = 'ms'"), 200);
    assert_int_equal(sql_int("select uses from ac_mandate_spend where mandate_id = 'ms'"), 1);
    assert_int_equal(
        sql_int("select count(*) from ac_payments where id = 's2' and status = 'expired'"), 1);
    assert_int_equal(sql_int("select count(*) from ac_evidence where payment_id = 's2' and kind in "
                             "('payment.step_up', 'payment.expire')"),
                     2);
    /* released: the cap has room again for two more (2 + 2 + 1 <= 5) */
    pay("s4", "ms", 200, &r);
    assert_int_equal(r.status, AC_PAY_PENDING);
    /* a pending hold survives a restart */
    node_stop(&N);
    node_start(&N);
    assert_int_equal(answer(&r, AC_STEPUP_DECLINE, &b), AC_EC_OK);
    assert_int_equal(b.status, AC_PAY_DECLINED);
    assert_int_equal(sql_int("select held from ac_mandate_spend where mandate_id = 'ms'"), 0);
    assert_int_equal(sql_int("select debits_pending from ac_accounts where id = 'user:alice:cny'"),
                     0);

    /* the mandate is revoked while a step-up waits: its confirmation is decided again, denied,
     * and the hold is voided */
    struct ac_payop c;
    pay("s5", "ms", 200, &c);
    assert_int_equal(c.status, AC_PAY_PENDING);
    json_t *rp = json_pack("{s:i, s:s, s:s, s:I}", "ver", 1, "mandate", "ms", "iss", "alice", "iat",
                           (json_int_t)(atomic_load(&fake_now) / US));
    char *rj = ac_test_sign_doc(alice, AC_MANDATE_REVOCATION_TYP, rp, NULL);
    json_decref(rp);
    struct ac_payop rv;
    memset(&rv, 0, sizeof rv);
    rv.kind = AC_PAYOP_MANDATE_REVOKE;
    snprintf(rv.mandate_id, sizeof rv.mandate_id, "ms");
    snprintf(rv.user, sizeof rv.user, "alice");
    snprintf(rv.kid, sizeof rv.kid, "%s", ac_test_kid(alice));
    rv.jws = rj;
    assert_int_equal(run_op(&rv), AC_EC_OK);
    assert_false(rv.replayed);
    assert_true(rv.has_evidence);
    assert_int_equal(run_op(&rv), AC_EC_OK); /* again: a replay */
    assert_true(rv.replayed);
    free(rj);
    long long posted = wallet_posted();
    assert_int_equal(answer(&c, AC_STEPUP_CONFIRM, &r), AC_EC_OK);
    assert_int_equal(r.status, AC_PAY_DECLINED);
    assert_int_equal(r.decision.verdict, AC_VERDICT_DENY);
    assert_true(ac_risk_fired(&r.decision, AC_RR_MANDATE_REVOKED));
    assert_int_equal(wallet_posted(), posted);
    assert_int_equal(sql_int("select held from ac_mandate_spend where mandate_id = 'ms'"), 0);
    assert_int_equal(sql_int("select debits_pending from ac_accounts where id = 'user:alice:cny'"),
                     0);
    assert_int_equal(sql_int("select count(*) from ac_authorizations where payment_id = 's5' and "
                             "status = 'denied'"),
                     1);
    assert_int_equal(sql_int("select count(*) from ac_evidence where payment_id = 's5' and kind = "
                             "'payment.decline'"),
                     1);
}

/* Record number `n` (0 = oldest) of payment id, decoded into r (the caller clears it). */
static void record_of(const char *id, int n, struct ac_ev_record *r)
{
    char q[256], err[256];
    snprintf(q, sizeof q,
             "select encode(record, 'hex') from ac_evidence where payment_id = '%s' "
             "order by seq offset %d limit 1",
             id, n);
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    assert_non_null(c);
    PGresult *res = PQexec(c, q);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    const char *hex = PQgetvalue(res, 0, 0);
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *bytes = malloc(cap);
    assert_non_null(bytes);
    long n_ = ac_test_unhex(hex, bytes, cap);
    assert_true(n_ > 0);
    size_t len = (size_t)n_;
    PQclear(res);
    PQfinish(c);
    if (ac_ev_record_decode(bytes, len, r, err, sizeof err) != 0) fail_msg("decode: %s", err);
    free(bytes);
}

/* The server is down past a step-up's hold grace: at the restart the ledger expires the hold by
 * its own timeout before the payments domain expires the authorization. The step_up record
 * carries the hold's timeout (so an auditor expires it alike) and the payment.expire record
 * restates the hold it found released (tests/unit/test_evcheck.c: the replay accepts exactly
 * that). */
static void down_past_the_grace(void **st)
{
    (void)st;
    json_t *p = mandate_payload("mg", "L4");
    json_object_set_new(p, "step_up_above", json_string("1.00"));
    mandate(p);
    int64_t t = T0 + 50 * DAY;
    set_now(t, 0);
    struct ac_payop a, r;
    pay("g1", "mg", 200, &a);
    assert_int_equal(a.status, AC_PAY_PENDING);
    node_stop(&N);
    set_now(t + 30 + AC_HOLD_GRACE_S + 10, 0); /* past the challenge and the hold's timeout */
    node_start(&N);
    int expired = 0;
    for (int i = 0; i < 200 && !expired; i++) {
        expired = sql_int("select count(*) from ac_authorizations where payment_id = 'g1' and "
                          "status = 'expired'") == 1;
        if (!expired) usleep(50000);
    }
    assert_true(expired);
    assert_int_equal(answer(&a, AC_STEPUP_CONFIRM, &r), AC_EC_AUTHORIZATION_EXPIRED);
    assert_int_equal(sql_int("select debits_pending from ac_accounts where id = 'user:alice:cny'"),
                     0);
    assert_int_equal(sql_int("select held from ac_mandate_spend where mandate_id = 'mg'"), 0);
    struct ac_ev_record su, ex;
    record_of("g1", 0, &su);
    record_of("g1", 1, &ex);
    assert_int_equal(su.kind, AC_EV_PAYMENT_STEP_UP);
    assert_int_equal(su.body.ntransfers, 1);
    assert_int_equal(su.body.transfers[0].flags, AC_TF_PENDING);
    assert_int_equal(su.body.transfers[0].timeout_s, 30 + AC_HOLD_GRACE_S);
    assert_int_equal(ex.kind, AC_EV_PAYMENT_EXPIRE);
    assert_int_equal(ex.body.ntransfers, 1);
    assert_string_equal(ex.body.transfers[0].id, su.body.transfers[0].id);
    assert_int_equal(ex.body.transfers[0].flags, AC_TF_PENDING);
    assert_int_equal(ex.body.transfers[0].amount, 200);
    assert_true(ex.time_us >= su.time_us + (int64_t)su.body.transfers[0].timeout_s * 1000000);
    ac_ev_record_clear(&su);
    ac_ev_record_clear(&ex);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **st)
{
    (void)st;
    url = ac_test_fresh_db("db_payments");
    if (ac_domain_register_statements() != 0) return -1;
    alice = ac_sig_keygen(AC_SIG_ED25519);
    agent = ac_sig_keygen(AC_SIG_ES256);
    node_start(&N);
    world();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    node_stop(&N);
    EVP_PKEY_free(alice);
    EVP_PKEY_free(agent);
    return 0;
}

static void free_text_round_trip(void **st)
{
    (void)st;
    mandate(mandate_payload("mt", "L5"));
    set_now(T0 + 50 * DAY + 3600, 0);
    static const char *const purposes[] = {
        "a \"quoted\" word",     "back\\slash\\", "{x,y}", "NULL", "\"", "\\",
        "caf\xc3\xa9 , \"{\\}\""};
    for (size_t i = 0; i < sizeof purposes / sizeof purposes[0]; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%zu", i);
        struct preq x;
        preq(&x, id, "mt", 10);
        snprintf(x.q.purpose, sizeof x.q.purpose, "%s", purposes[i]);
        snprintf(x.q.order_digest, sizeof x.q.order_digest, "sha-256=:%zu\\\":", i);
        ac_pay_request_digest(&x.q);
        struct ac_payop op;
        memset(&op, 0, sizeof op);
        op.kind = AC_PAYOP_PAY;
        op.pay = &x.q;
        assert_int_equal(run_op(&op), AC_EC_OK);
        if (op.status != AC_PAY_SETTLED)
            fail_msg("%s: status %s, first reason %s", id, ac_pay_status_name(op.status),
                     op.decision.n ? ac_reason_code(op.decision.reasons[0]) : "");
        char err[256];
        PGconn *c = ac_db_connect(url, AC_DB_READER, err, sizeof err); /* as the HTTP threads */
        assert_non_null(c);
        struct ac_payment_row row;
        assert_int_equal(ac_payments_read_payment(c, id, &row), AC_QS_ONE_RESULT);
        PQfinish(c);
        assert_string_equal(row.purpose, purposes[i]);
        assert_string_equal(row.order_digest, x.q.order_digest);
        assert_int_equal(row.amount, 10);
        ac_payment_row_clear(&row);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rollover),
        cmocka_unit_test(stepup),
        cmocka_unit_test(down_past_the_grace),
        cmocka_unit_test(free_text_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
