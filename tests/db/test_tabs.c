/* Tabs through a real sequencer on a real PostgreSQL, with an injected clock (real keys, a
 * user-signed mandate, agent-signed vouchers, an evidence log):
 * - a tab opened at T0 for 10.00 with expires_in 60 holds 10.00 (ledger pending, mandate spend);
 * - a voucher settled one microsecond before the expiry posts its delta;
 * - at the expiry the sequencer's deadline voids the rest by itself: the tab is expired, the
 *   ledger holds nothing, the mandate's spend counts the settled amount as spent and nothing as
 *   held, a tab.expire record is written; a settle afterwards is tab_expired;
 * - a restart reloads open tabs (settled total, last voucher: a replay is voucher_replayed) and
 *   their deadlines (a reloaded tab still expires). */
#include "tests/support/testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/sha.h>

#include "keys/registry.h"
#include "ledger/db.h"
#include "ledger/domain.h"
#include "ledger/evlog.h"
#include "ledger/identity_ops.h"
#include "ledger/payments.h"
#include "ledger/sequencer.h"
#include "ledger/tabs.h"
#include "protocol/sig.h"
#include "protocol/voucher.h"
#include "tests/support/agentsig.h"
#include "tests/support/identity.h"
#include "tests/support/seqnode.h"

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
    struct ac_tabs *tabs;
    struct ac_evlog *ev;
    struct ac_domain dom;
    struct ac_sequencer *seq;
};

static struct node N;

static void node_start(struct node *n)
{
    memset(n, 0, sizeof *n);
    n->reg = ac_registry_new();
    n->pay = ac_payments_new(NULL);
    n->tabs = ac_tabs_new();
    struct ac_evlog_config ec = {.origin = "test.local/0"};
    n->ev = ac_evlog_new(&ec);
    assert_non_null(n->reg);
    assert_non_null(n->pay);
    assert_non_null(n->tabs);
    assert_non_null(n->ev);
    n->dom =
        (struct ac_domain){.registry = n->reg, .evlog = n->ev, .payments = n->pay, .tabs = n->tabs};
    n->seq = ac_test_seq_start(url, &n->dom, fake_clock);
}

static void node_stop(struct node *n)
{
    ac_seq_free(n->seq);
    ac_tabs_free(n->tabs);
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

/* Run a tab op: the sequencer's error, else the op's result. */
static enum ac_ec run_tab(struct ac_tabop *op)
{
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    ac_tabs_cmd(&c, op);
    enum ac_ec ec = ac_seq_run(N.seq, &c);
    return ec != AC_EC_OK ? ec : op->result;
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
    unsigned scale = 2; /* CNY: the evidence record of the funding needs it */
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_TRANSFERS;
    c.n = 1;
    c.transfers = &t;
    c.results = &tr;
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

/* A signed request as the HTTP thread keeps it (the evidence record's verbatim request). */
struct signed_req {
    uint8_t sig[AC_SIG_MAX];
    char base[256], body[512];
};

static void sign_req(struct signed_req *x, EVP_PKEY *key, const char *body,
                     struct ac_pay_signed *out)
{
    memset(x, 0, sizeof *x);
    snprintf(x->body, sizeof x->body, "%s", body);
    snprintf(x->base, sizeof x->base, "\"@method\": POST\n\"@signature-params\": (\"@method\")");
    size_t sl = 0;
    assert_int_equal(ac_sig_sign(key, (const uint8_t *)x->base, strlen(x->base), x->sig, &sl), 0);
    *out = (struct ac_pay_signed){.keyid = ac_test_kid(key),
                                  .base = (const uint8_t *)x->base,
                                  .base_len = strlen(x->base),
                                  .sig = x->sig,
                                  .sig_len = sl,
                                  .body = (const uint8_t *)x->body,
                                  .body_len = strlen(x->body)};
}

static void open_tab(const char *id, int64_t hold, int64_t ttl, struct ac_tabop *op)
{
    struct ac_tab_open_request q;
    memset(&q, 0, sizeof q);
    snprintf(q.id, sizeof q.id, "%s", id);
    snprintf(q.binding, sizeof q.binding, "b1");
    snprintf(q.mandate, sizeof q.mandate, "mt");
    snprintf(q.payee, sizeof q.payee, "shop");
    snprintf(q.category, sizeof q.category, "books");
    snprintf(q.asset, sizeof q.asset, "CNY");
    q.scale = 2;
    q.hold = hold;
    q.ttl_s = ttl;
    assert_int_equal(ac_wallet_account(1, "alice", "CNY", q.debit), 0);
    assert_int_equal(ac_wallet_account(0, "shop", "CNY", q.credit), 0);
    ac_tab_open_digest(&q);
    char body[256];
    snprintf(body, sizeof body,
             "{\"id\":\"%s\",\"mandate\":\"mt\",\"payee\":\"shop\",\"amount\":{\"currency\":"
             "\"CNY\",\"value\":\"%lld.%02lld\"},\"expires_in\":%lld}",
             id, (long long)hold / 100, (long long)hold % 100, (long long)ttl);
    struct signed_req x;
    sign_req(&x, agent, body, &q.sig);
    memset(op, 0, sizeof *op);
    op->kind = AC_TABOP_OPEN;
    op->open = &q;
    assert_int_equal(run_tab(op), AC_EC_OK);
    op->open = NULL;
}

/* Settle (or close) tab with the agent's voucher (seq, cumulative; seq 0: none). */
static enum ac_ec settle(const char *tab, int close, int64_t seq, int64_t cum, struct ac_tabop *op)
{
    struct ac_tab_settle_request s;
    memset(&s, 0, sizeof s);
    snprintf(s.tab, sizeof s.tab, "%s", tab);
    snprintf(s.merchant, sizeof s.merchant, "shop");
    s.close = close;
    char *v = NULL;
    if (seq) {
        v = ac_voucher_sign(agent, tab, seq, "CNY", cum, 2);
        assert_non_null(v);
        assert_int_equal(ac_voucher_parse(v, strlen(v), "CNY", 2, &s.v, NULL, NULL), AC_EC_OK);
        s.has_voucher = 1;
        s.jws = v;
        SHA256((const unsigned char *)v, strlen(v), s.jws_hash);
    }
    char body[2048];
    snprintf(body, sizeof body, "{\"voucher\":\"%s\"}", v ? v : "");
    struct signed_req x;
    sign_req(&x, agent, body, &s.sig);
    memset(op, 0, sizeof *op);
    op->kind = AC_TABOP_SETTLE;
    op->settle = &s;
    enum ac_ec ec = run_tab(op);
    op->settle = NULL;
    free(v);
    return ec;
}

static long long pending_debits(void)
{
    return sql_int("select debits_pending from ac_accounts where id = 'user:alice:cny'");
}

static void expiry_by_deadline(void **st)
{
    (void)st;
    json_t *p = ac_test_mandate_payload("mt", "alice", "agent-a", "shop", "CNY", "50.00", "L5");
    json_object_set_new(p, "nbf", json_integer(T0 - 100));
    json_object_set_new(p, "exp", json_integer(T0 + 90 * DAY));
    mandate(p);
    set_now(T0, 0);
    long long pend0 = pending_debits();
    struct ac_tabop op;
    open_tab("tx", 1000, 60, &op);
    assert_int_equal(op.status, AC_TAB_OPEN);
    assert_int_equal(op.expires_us, (T0 + 60) * US);
    assert_int_equal(pending_debits() - pend0, 1000);
    assert_int_equal(sql_int("select held from ac_mandate_spend where mandate_id = 'mt'"), 1000);

    set_now(T0 + 10, 0);
    assert_int_equal(settle("tx", 0, 1, 150, &op), AC_EC_OK);
    assert_int_equal(op.amount, 150);
    /* a restart in between: the open tab, its last voucher and its deadline come back */
    node_stop(&N);
    node_start(&N);
    assert_int_equal(settle("tx", 0, 1, 150, &op), AC_EC_VOUCHER_REPLAYED);
    set_now(T0 + 60, -1); /* one microsecond before the expiry */
    assert_int_equal(settle("tx", 0, 2, 400, &op), AC_EC_OK);
    assert_int_equal(op.amount, 250);
    assert_int_equal(pending_debits() - pend0, 600);

    set_now(T0 + 60, 0); /* the expiry: the sequencer's deadline voids the rest by itself */
    int expired = 0;
    for (int i = 0; i < 200 && !expired; i++) {
        expired = sql_int("select count(*) from ac_tabs where id = 'tx' and status = 'expired'");
        if (!expired) usleep(50000);
    }
    assert_true(expired);
    assert_int_equal(pending_debits(), pend0);
    assert_int_equal(sql_int("select held from ac_mandate_spend where mandate_id = 'mt'"), 0);
    assert_int_equal(sql_int("select spent from ac_mandate_spend where mandate_id = 'mt'"), 400);
    assert_int_equal(sql_int("select uses from ac_mandate_spend where mandate_id = 'mt'"), 1);
    assert_int_equal(sql_int("select released from ac_tab_settlements where tab_id = 'tx' and "
                             "kind = 'expire'"),
                     600);
    assert_int_equal(sql_int("select count(*) from ac_evidence where kind = 'tab.expire' and "
                             "payment_id = 'tx'"),
                     1);
    assert_int_equal(settle("tx", 0, 3, 500, &op), AC_EC_TAB_EXPIRED);
    assert_int_equal(settle("tx", 1, 0, 0, &op), AC_EC_TAB_EXPIRED);
    /* the merchant got exactly the settled vouchers */
    assert_int_equal(sql_int("select credits_posted from ac_accounts where id = "
                             "'merchant:shop:cny'"),
                     400);

    /* a tab nobody settles: its whole hold comes back and the use with it */
    set_now(T0 + 100, 0);
    open_tab("ty", 500, 5, &op);
    set_now(T0 + 105, 0);
    expired = 0;
    for (int i = 0; i < 200 && !expired; i++) {
        expired = sql_int("select count(*) from ac_tabs where id = 'ty' and status = 'expired'");
        if (!expired) usleep(50000);
    }
    assert_true(expired);
    assert_int_equal(sql_int("select uses from ac_mandate_spend where mandate_id = 'mt'"), 1);
    assert_int_equal(sql_int("select spent from ac_mandate_spend where mandate_id = 'mt'"), 400);
    assert_int_equal(pending_debits(), pend0);
}

static int setup(void **st)
{
    (void)st;
    url = ac_test_fresh_db("db_tabs");
    if (ac_domain_register_statements() != 0) return -1;
    alice = ac_sig_keygen(AC_SIG_ED25519);
    agent = ac_sig_keygen(AC_SIG_ED25519);
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(expiry_by_deadline)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
