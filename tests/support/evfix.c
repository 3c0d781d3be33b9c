#include "tests/support/evfix.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ledger/db.h"
#include "protocol/binding.h"
#include "protocol/sig.h"
#include "tests/support/identity.h"

static void start(struct ac_evfix *f, const char *url, EVP_PKEY *server_key, uint64_t every,
                  int64_t ms)
{
    memset(f, 0, sizeof *f);
    f->url = url;
    f->server_key = server_key;
    char err[256];
    if (server_key) {
        f->keys = ac_keyring_new();
        int64_t now = (int64_t)time(NULL);
        if (f->keys == NULL ||
            ac_keyring_add(f->keys, server_key, now - 3600, now + 30 * 86400, err, sizeof err) != 0)
            fail_msg("keyring: %s", err);
        f->vkey = ac_ev_checkpoint_vkey(AC_EVFIX_ORIGIN, server_key);
        assert_non_null(f->vkey);
    }
    f->reg = ac_registry_new();
    struct ac_evlog_config cfg = {AC_EVFIX_ORIGIN, f->keys, every, ms};
    f->evlog = ac_evlog_new(&cfg);
    assert_non_null(f->reg);
    assert_non_null(f->evlog);
    f->dom.registry = f->reg;
    f->dom.evlog = f->evlog;
    f->sd = ac_domain_seq(&f->dom);
    assert_int_equal(ac_domain_register_statements(), 0);
    struct ac_seq_config sc = {.db_url = url, .max_batch_items = 1024, .domain = &f->sd};
    f->seq = ac_seq_start(&sc);
    assert_non_null(f->seq);
}

void ac_evfix_start(struct ac_evfix *f, const char *url, EVP_PKEY *server_key, uint64_t every,
                    int64_t ms)
{
    start(f, url, server_key, every, ms);
    assert_true(ac_seq_wait_leader(f->seq, 15000));
}

int ac_evfix_start_nowait(struct ac_evfix *f, const char *url, EVP_PKEY *server_key, uint64_t every,
                          int64_t ms, int wait_ms)
{
    start(f, url, server_key, every, ms);
    return ac_seq_wait_leader(f->seq, wait_ms);
}

void ac_evfix_stop(struct ac_evfix *f)
{
    ac_seq_free(f->seq);
    ac_evlog_free(f->evlog);
    ac_registry_free(f->reg);
    ac_keyring_free(f->keys);
    free(f->vkey);
    memset(f, 0, sizeof *f);
}

static enum ac_ec run_identity(struct ac_evfix *f, struct ac_identity_op *op)
{
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    ac_identity_cmd(&c, op);
    enum ac_ec ec = ac_seq_run(f->seq, &c);
    return ec != AC_EC_OK ? ec : op->result;
}

enum ac_ec ac_evfix_user(struct ac_evfix *f, const char *user, EVP_PKEY *key)
{
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_PRINCIPAL;
    op.role = AC_ROLE_USER;
    snprintf(op.id, sizeof op.id, "%s", user);
    op.keys[0] = key;
    op.nkeys = 1;
    return run_identity(f, &op);
}

enum ac_ec ac_evfix_binding(struct ac_evfix *f, const char *id, const char *user, EVP_PKEY *ukey,
                            EVP_PKEY **agent_out, char **jws_out)
{
    EVP_PKEY *agent = ac_sig_keygen(AC_SIG_ED25519);
    assert_non_null(agent);
    int64_t now = (int64_t)time(NULL);
    char aid[80];
    snprintf(aid, sizeof aid, "agent-%s", id);
    json_t *p = ac_test_binding_payload(id, user, aid, agent, now - 60, now + 20 * 86400);
    char *jws = ac_test_sign_doc(ukey, AC_BINDING_TYP, p, NULL);
    json_decref(p);
    struct ac_binding_doc doc;
    assert_int_equal(ac_binding_parse(jws, strlen(jws), &doc, NULL), AC_EC_OK);
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_BINDING;
    op.binding = &doc;
    op.jws = jws;
    enum ac_ec ec = run_identity(f, &op);
    ac_binding_clear(&doc);
    if (jws_out)
        *jws_out = jws;
    else
        free(jws);
    if (agent_out)
        *agent_out = agent;
    else
        EVP_PKEY_free(agent);
    return ec;
}

enum ac_ec ac_evfix_revoke(struct ac_evfix *f, const char *binding, const char *user,
                           EVP_PKEY *ukey)
{
    json_t *p = ac_test_revocation_payload(binding, user, (int64_t)time(NULL));
    char *jws = ac_test_sign_doc(ukey, AC_REVOCATION_TYP, p, NULL);
    json_decref(p);
    struct ac_revocation_doc doc;
    assert_int_equal(ac_revocation_parse(jws, strlen(jws), &doc, NULL), AC_EC_OK);
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_REVOCATION;
    op.revocation = &doc;
    op.jws = jws;
    enum ac_ec ec = run_identity(f, &op);
    ac_revocation_clear(&doc);
    free(jws);
    return ec;
}

enum ac_ec ac_evfix_accounts(struct ac_evfix *f, const char *const *ids, size_t n)
{
    return ac_evfix_accounts_flags(f, ids, NULL, n);
}

enum ac_ec ac_evfix_transfers(struct ac_evfix *f, const struct ac_transfer_req *t, size_t n,
                              struct ac_transfer_result *res)
{
    unsigned *scales = calloc(n, sizeof *scales);
    assert_non_null(scales);
    for (size_t i = 0; i < n; i++)
        scales[i] = 2;
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_TRANSFERS;
    c.n = n;
    c.transfers = t;
    c.results = res;
    c.scales = scales;
    enum ac_ec ec = ac_seq_run(f->seq, &c);
    free(scales);
    return ec;
}

enum ac_ec ac_evfix_accounts_flags(struct ac_evfix *f, const char *const *ids,
                                   const uint32_t *flags, size_t n)
{
    ac_evfix_sql_ok(f->url, "insert into ac_assets (code, scale) values ('CNY', 2) "
                            "on conflict do nothing");
    struct ac_account *a = calloc(n, sizeof *a);
    enum ac_ec *res = calloc(n, sizeof *res);
    int *rep = calloc(n, sizeof *rep);
    assert_true(a && res && rep);
    for (size_t i = 0; i < n; i++) {
        snprintf(a[i].id, sizeof a[i].id, "%s", ids[i]);
        snprintf(a[i].asset, sizeof a[i].asset, "CNY");
        a[i].flags = flags ? flags[i] : 0;
    }
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_ACCOUNTS;
    c.n = n;
    c.accounts = a;
    c.account_results = res;
    c.account_replayed = rep;
    enum ac_ec ec = ac_seq_run(f->seq, &c);
    for (size_t i = 0; ec == AC_EC_OK && i < n; i++)
        if (res[i] != AC_EC_OK) ec = res[i];
    free(a);
    free(res);
    free(rep);
    return ec;
}

void ac_evfix_pay_apply(struct ac_evfix_payop *p, struct ac_apply *a)
{
    struct ac_transfer_req req;
    memset(&req, 0, sizeof req);
    snprintf(req.id, sizeof req.id, "%s", p->tid);
    snprintf(req.debit, sizeof req.debit, "%s", p->debit);
    snprintf(req.credit, sizeof req.credit, "%s", p->credit);
    snprintf(req.asset, sizeof req.asset, "CNY");
    req.amount = p->amount;
    struct ac_transfer_result res;
    if (ac_state_create_transfers(ac_apply_ledger(a), &req, 1, ac_apply_now(a), &res) != AC_EC_OK) {
        p->result = AC_EC_INTERNAL;
        return;
    }
    p->result = res.ec;
    if (res.ec != AC_EC_OK) return;
    struct ac_ev_transfer t = {p->tid, p->debit, p->credit, res.amount, "CNY", 2, 0, NULL, 0, 0};
    struct ac_ev_record r;
    memset(&r, 0, sizeof r);
    r.kind = AC_EV_REFUND;
    r.body.payment = p->payment;
    r.body.user = p->user;
    r.body.amount = (struct ac_ev_amount){1, p->amount, "CNY", 2};
    r.body.transfers = &t;
    r.body.ntransfers = 1;
    struct ac_domain *d = ac_apply_domain(a);
    if (ac_evlog_append(d->evlog, a, &r, &p->seq, p->leaf) != 0) p->result = AC_EC_INTERNAL;
}

static void pay_op(struct ac_cmd *c, struct ac_apply *a)
{
    ac_evfix_pay_apply(c->op_arg, a);
}

enum ac_ec ac_evfix_pay(struct ac_evfix *f, const char *payment, const char *tid, const char *debit,
                        const char *credit, int64_t amount, const char *user, uint64_t *seq,
                        uint8_t leaf[32])
{
    struct ac_evfix_payop p = {payment, tid, debit, credit, user, amount, AC_EC_INTERNAL, 0, {0}};
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_OP;
    c.n = 1;
    c.op = pay_op;
    c.op_arg = &p;
    enum ac_ec ec = ac_seq_run(f->seq, &c);
    if (ec != AC_EC_OK) return ec;
    if (seq) *seq = p.seq;
    if (leaf) memcpy(leaf, p.leaf, 32);
    return p.result;
}

long long ac_evfix_sql_int(const char *url, const char *sql)
{
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) fail_msg("%s", err);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    long long v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

int ac_evfix_sql_ok(const char *url, const char *sql)
{
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) fail_msg("%s", err);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    PQfinish(c);
    return ok;
}

uint64_t ac_evfix_wait_checkpoint(const char *url, uint64_t size, int timeout_ms)
{
    long long have = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        have = ac_evfix_sql_int(url, "select max(size) from ac_checkpoints");
        if (have >= 0 && (uint64_t)have >= size) break;
        usleep(50000);
    }
    return have < 0 ? 0 : (uint64_t)have;
}
