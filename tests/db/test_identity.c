/* Identity operations through a real sequencer on a real PostgreSQL (real keys and signatures):
 * - what is acknowledged is in the tables (the JWS verbatim) and in effect in the registry;
 * - a restart reloads a registry identical to the one before (every principal, key, binding,
 *   revocation, times and texts), including histories whose replay order matters (a revoked and
 *   an expired binding whose agent keys were bound again);
 * - idempotent replays write nothing, conflicting reuse of an id is refused, before and after a
 *   restart; an expired binding is refused at registration;
 * - a batch that fails to commit leaves no identity row of any of its operations, and the
 *   registry is reloaded without them;
 * - bindings and revocations are immutable in the database. */
#include "tests/support/testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys/registry.h"
#include "ledger/domain.h"
#include "ledger/identity_ops.h"
#include "ledger/sequencer.h"
#include "protocol/buf.h"
#include "tests/support/identity.h"
#include "tests/support/seqnode.h"
#include "tests/support/sql.h"

#define NOW_S 1780000000LL
#define DAY 86400LL

static const char *url;
static _Atomic int64_t fake_now = NOW_S * 1000000LL;

static int64_t fake_clock(void *cls)
{
    (void)cls;
    return atomic_load(&fake_now);
}

struct node {
    struct ac_registry *reg;
    struct ac_domain dom;
    struct ac_sequencer *seq;
};

static void node_start(struct node *n)
{
    memset(n, 0, sizeof *n); /* no evidence log here: tests/db/test_evidence.c has one */
    n->reg = ac_registry_new();
    assert_non_null(n->reg);
    n->dom.registry = n->reg;
    n->seq = ac_test_seq_start(url, &n->dom, fake_clock);
}

static void node_stop(struct node *n)
{
    ac_seq_free(n->seq);
    ac_registry_free(n->reg);
    memset(n, 0, sizeof *n);
}

/* Run op through the sequencer: its result, and in *replayed (when not NULL) whether it was an
 * idempotent replay. */
static enum ac_ec run(struct node *n, struct ac_identity_op *op, int *replayed)
{
    enum ac_ec ec = ac_test_seq_identity(n->seq, op);
    if (replayed) *replayed = op->replayed;
    return ec;
}

static enum ac_ec principal(struct node *n, enum ac_principal_role role, const char *id,
                            const char *name, const char *category, EVP_PKEY **keys, size_t nk,
                            int *replayed)
{
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_PRINCIPAL;
    op.role = role;
    snprintf(op.id, sizeof op.id, "%s", id);
    snprintf(op.name, sizeof op.name, "%s", name ? name : "");
    snprintf(op.category, sizeof op.category, "%s", category ? category : "");
    for (size_t i = 0; i < nk; i++)
        op.keys[i] = keys[i];
    op.nkeys = nk;
    return run(n, &op, replayed);
}

static enum ac_ec add_key(struct node *n, enum ac_principal_role role, const char *id, EVP_PKEY *k,
                          int *replayed)
{
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_KEY;
    op.role = role;
    snprintf(op.id, sizeof op.id, "%s", id);
    op.keys[0] = k;
    op.nkeys = 1;
    return run(n, &op, replayed);
}

/* A signed binding, parsed, and its signature verified (as the HTTP thread does). */
struct bdoc {
    struct ac_binding_doc d;
    char *jws;
};

static void make(struct bdoc *b, const char *id, const char *user, EVP_PKEY *uk, EVP_PKEY *agent,
                 int64_t iat, int64_t exp)
{
    json_t *p = ac_test_binding_payload(id, user, "agent-1", agent, iat, exp);
    b->jws = ac_test_sign_doc(uk, AC_BINDING_TYP, p, NULL);
    json_decref(p);
    assert_int_equal(ac_binding_parse(b->jws, strlen(b->jws), &b->d, NULL), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&b->d.jws, uk), AC_EC_OK);
}

static void unmake(struct bdoc *b)
{
    ac_binding_clear(&b->d);
    free(b->jws);
}

static enum ac_ec do_bind(struct node *n, struct bdoc *b, int *replayed)
{
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_BINDING;
    op.binding = &b->d;
    op.jws = b->jws;
    return run(n, &op, replayed);
}

static enum ac_ec do_revoke(struct node *n, const char *binding, const char *user, EVP_PKEY *uk,
                            int *replayed, char **jws_out)
{
    json_t *p = ac_test_revocation_payload(binding, user, atomic_load(&fake_now) / 1000000);
    char *jws = ac_test_sign_doc(uk, AC_REVOCATION_TYP, p, NULL);
    json_decref(p);
    struct ac_revocation_doc rev;
    assert_int_equal(ac_revocation_parse(jws, strlen(jws), &rev, NULL), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&rev.jws, uk), AC_EC_OK);
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_REVOCATION;
    op.revocation = &rev;
    op.jws = jws;
    enum ac_ec ec = run(n, &op, replayed);
    ac_revocation_clear(&rev);
    if (jws_out)
        *jws_out = jws;
    else
        free(jws);
    return ec;
}

/* ---- a textual snapshot of what the registry answers ----------------------------------------- */

static void snap_principal(struct ac_buf *b, struct ac_registry *r, enum ac_principal_role role,
                           const char *id)
{
    struct ac_principal_info p;
    char line[512];
    enum ac_ec ec = ac_registry_principal_get(r, role, id, &p);
    snprintf(line, sizeof line, "principal %d %s: %s %s %s %lld\n", role, id, ac_ec_code(ec),
             p.name, p.category, (long long)p.created_us);
    ac_buf_add(b, line, strlen(line));
    for (size_t i = 0; i < p.nkeys; i++) {
        char *jwk = ac_test_jwk_text(p.keys[i].key);
        snprintf(line, sizeof line, "  key %s %d %lld %s\n", p.keys[i].kid, p.keys[i].alg,
                 (long long)p.keys[i].created_us, jwk);
        free(jwk);
        ac_buf_add(b, line, strlen(line));
    }
    ac_principal_info_clear(&p);
}

static void snap_binding(struct ac_buf *b, struct ac_registry *r, const char *id)
{
    struct ac_binding_info x;
    char line[1024];
    enum ac_ec ec = ac_registry_binding_get(r, id, &x);
    snprintf(line, sizeof line,
             "binding %s: %s %s %s %s %s %s %s %s %d %lld %lld %lld %lld rev=%d %lld %s\n", id,
             ac_ec_code(ec), x.user_id, x.user_kid, x.agent_id, x.agent_kid, x.software, x.model,
             x.environment, x.max_autonomy, (long long)x.iat, (long long)x.nbf, (long long)x.exp,
             (long long)x.created_us, x.revoked, (long long)x.revoked_us, x.revocation_kid);
    ac_buf_add(b, line, strlen(line));
    if (x.jws) ac_buf_add(b, x.jws, strlen(x.jws));
    if (x.revocation_jws) ac_buf_add(b, x.revocation_jws, strlen(x.revocation_jws));
    ac_buf_add(b, "\n", 1);
    ac_binding_info_clear(&x);
}

static void snap_resolve(struct ac_buf *b, struct ac_registry *r, EVP_PKEY *k)
{
    char kid[AC_JWK_THUMBPRINT_SIZE], line[512];
    assert_int_equal(ac_jwk_thumbprint(k, kid), 0);
    struct ac_resolved_key rk;
    enum ac_ec ec = ac_registry_resolve(r, kid, &rk);
    snprintf(line, sizeof line, "resolve %s: %s %d %s %s %s %d %lld %lld %d %s\n", kid,
             ac_ec_code(ec), rk.kind, rk.binding_id, rk.user_id, rk.agent_id, rk.max_autonomy,
             (long long)rk.nbf, (long long)rk.exp, rk.revoked, rk.merchant_id);
    ac_buf_add(b, line, strlen(line));
    ac_resolved_key_clear(&rk);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static EVP_PKEY *ua1, *ua2, *ua3, *ub1, *mk1, *ag1, *ag2, *ag3;

static char *snapshot(struct ac_registry *r)
{
    struct ac_buf b;
    memset(&b, 0, sizeof b);
    snap_principal(&b, r, AC_ROLE_USER, "alice");
    snap_principal(&b, r, AC_ROLE_USER, "bob");
    snap_principal(&b, r, AC_ROLE_MERCHANT, "shop");
    snap_principal(&b, r, AC_ROLE_USER, "nobody");
    const char *bindings[] = {"b1", "b2", "b3", "b4", "b-none"};
    for (size_t i = 0; i < sizeof bindings / sizeof *bindings; i++)
        snap_binding(&b, r, bindings[i]);
    EVP_PKEY *keys[] = {ua1, ua2, ua3, ub1, mk1, ag1, ag2, ag3};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        snap_resolve(&b, r, keys[i]);
    struct ac_registry_counts c;
    ac_registry_counts(r, &c);
    char line[128];
    snprintf(line, sizeof line, "counts %zu %zu %zu %zu %zu\n", c.users, c.merchants, c.keys,
             c.bindings, c.revoked);
    ac_buf_add(&b, line, strlen(line));
    assert_false(b.oom);
    char *s = strdup(ac_buf_str(&b));
    ac_buf_free(&b);
    return s;
}

static void persisted_and_reloaded(void **st)
{
    (void)st;
    struct node n;
    node_start(&n);
    int rep = -1;
    EVP_PKEY *alice_keys[] = {ua1, ua2};
    assert_int_equal(principal(&n, AC_ROLE_USER, "alice", NULL, NULL, alice_keys, 2, &rep),
                     AC_EC_OK);
    assert_int_equal(rep, 0);
    /* acknowledged = in effect for readers and durable */
    EVP_PKEY *k = NULL;
    assert_int_equal(ac_registry_user_key(n.reg, "alice", ac_test_kid(ua2), &k), AC_EC_OK);
    EVP_PKEY_free(k);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_users where id = 'alice'"), 1);
    assert_int_equal(
        ac_test_sql_int(url, "select count(*) from ac_principal_keys where user_id = 'alice'"), 2);
    assert_int_equal(principal(&n, AC_ROLE_USER, "bob", NULL, NULL, &ub1, 1, NULL), AC_EC_OK);
    assert_int_equal(
        principal(&n, AC_ROLE_MERCHANT, "shop", "The Shop", "llm-inference", &mk1, 1, NULL),
        AC_EC_OK);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_merchants where id = 'shop' and "
                                          "name = 'The Shop' and category = 'llm-inference'"),
                     1);
    atomic_fetch_add(&fake_now, 1000000);
    assert_int_equal(add_key(&n, AC_ROLE_USER, "alice", ua3, &rep), AC_EC_OK);
    assert_int_equal(rep, 0);
    assert_int_equal(add_key(&n, AC_ROLE_USER, "alice", ua3, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(add_key(&n, AC_ROLE_USER, "bob", ua3, &rep), AC_EC_KEY_EXISTS);
    assert_int_equal(add_key(&n, AC_ROLE_MERCHANT, "nobody", ag3, &rep), AC_EC_MERCHANT_UNKNOWN);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_principal_keys"), 5);

    /* bindings: b1 (ag1) is revoked and its key bound again by b3; b2 (ag2) expires and its key
     * is bound again by b4 */
    struct bdoc b1, b2, b3, b4, b1x, bexp;
    make(&b1, "b1", "alice", ua1, ag1, NOW_S, NOW_S + 30 * DAY);
    make(&b2, "b2", "bob", ub1, ag2, NOW_S, NOW_S + 2 * DAY);
    assert_int_equal(do_bind(&n, &b1, &rep), AC_EC_OK);
    assert_int_equal(rep, 0);
    assert_int_equal(do_bind(&n, &b2, &rep), AC_EC_OK);
    char *stored = ac_test_sql_text(url, "select jws from ac_bindings where id = $1", "b1");
    assert_non_null(stored);
    assert_string_equal(stored, b1.jws); /* verbatim */
    free(stored);
    /* replay and conflicts */
    assert_int_equal(do_bind(&n, &b1, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    make(&b1x, "b1", "alice", ua1, ag3, NOW_S, NOW_S + 30 * DAY);
    assert_int_equal(do_bind(&n, &b1x, &rep), AC_EC_BINDING_EXISTS);
    make(&b3, "b3", "alice", ua3, ag1, NOW_S, NOW_S + 60 * DAY);
    assert_int_equal(do_bind(&n, &b3, &rep), AC_EC_AGENT_KEY_BOUND);
    /* expired at registration: refused, nothing written */
    make(&bexp, "b-old", "alice", ua1, ag3, NOW_S - 10 * DAY, NOW_S - 1);
    assert_int_equal(do_bind(&n, &bexp, &rep), AC_EC_BINDING_EXPIRED);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_bindings"), 2);

    atomic_fetch_add(&fake_now, 1000000);
    char *rev_jws = NULL;
    assert_int_equal(do_revoke(&n, "b1", "alice", ua2, &rep, &rev_jws), AC_EC_OK);
    assert_int_equal(rep, 0);
    struct ac_resolved_key rk;
    assert_int_equal(ac_registry_resolve(n.reg, ac_test_kid(ag1), &rk), AC_EC_OK);
    assert_int_equal(rk.revoked, 1); /* in effect on acknowledgement */
    ac_resolved_key_clear(&rk);
    stored =
        ac_test_sql_text(url, "select jws from ac_binding_revocations where binding_id = $1", "b1");
    assert_non_null(stored);
    assert_string_equal(stored, rev_jws);
    free(stored);
    free(rev_jws);
    assert_int_equal(do_revoke(&n, "b1", "alice", ua1, &rep, NULL), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(do_revoke(&n, "b2", "alice", ua1, &rep, NULL), AC_EC_REVOCATION_INVALID);
    assert_int_equal(do_revoke(&n, "b-none", "alice", ua1, &rep, NULL), AC_EC_BINDING_UNKNOWN);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_binding_revocations"), 1);
    /* the key of the revoked b1 may be bound again */
    assert_int_equal(do_bind(&n, &b3, &rep), AC_EC_OK);
    /* after b2 expired, its key may be bound again */
    atomic_fetch_add(&fake_now, 3 * DAY * 1000000);
    make(&b4, "b4", "bob", ub1, ag2, NOW_S + 3 * DAY, NOW_S + 9 * DAY);
    assert_int_equal(do_bind(&n, &b4, &rep), AC_EC_OK);
    assert_int_equal(ac_registry_resolve(n.reg, ac_test_kid(ag2), &rk), AC_EC_OK);
    assert_string_equal(rk.binding_id, "b4");
    ac_resolved_key_clear(&rk);

    char *before = snapshot(n.reg);
    node_stop(&n);

    /* restart: the registry is rebuilt from the tables, identical */
    node_start(&n);
    char *after = snapshot(n.reg);
    assert_string_equal(after, before);
    assert_non_null(strstr(after, "counts 2 1 5 4 1"));
    /* replays still replay, conflicts still conflict, the revocation still holds */
    assert_int_equal(do_bind(&n, &b1, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(do_bind(&n, &b1x, &rep), AC_EC_BINDING_EXISTS);
    assert_int_equal(do_revoke(&n, "b1", "alice", ua3, &rep, NULL), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(principal(&n, AC_ROLE_USER, "alice", NULL, NULL, alice_keys, 2, &rep),
                     AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(
        principal(&n, AC_ROLE_MERCHANT, "shop", "Another", "llm-inference", &mk1, 1, &rep),
        AC_EC_PRINCIPAL_EXISTS);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_bindings"), 4);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_principal_keys"), 5);
    free(before);
    free(after);

    /* bindings and revocations are immutable */
    assert_false(ac_test_sql_ok(url, "update ac_bindings set model = 'x' where id = 'b1'"));
    assert_false(ac_test_sql_ok(url, "delete from ac_binding_revocations"));
    assert_false(ac_test_sql_ok(url, "delete from ac_bindings where id = 'b4'"));
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_bindings where model = 'x'"), 0);

    struct bdoc *all[] = {&b1, &b2, &b3, &b4, &b1x, &bexp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        unmake(all[i]);
    node_stop(&n);
}

/* Two identity operations in one command (hence one batch). */
struct pair {
    struct ac_identity_op *a, *b;
};

static void pair_apply(struct ac_cmd *c, struct ac_apply *a)
{
    struct pair *p = c->op_arg;
    ac_identity_apply(p->a, a);
    ac_identity_apply(p->b, a);
}

static void failed_batch_writes_nothing(void **st)
{
    (void)st;
    struct node n;
    node_start(&n);
    EVP_PKEY *uk = ac_sig_keygen(AC_SIG_ED25519), *dk = ac_sig_keygen(AC_SIG_ES256),
             *agent = ac_sig_keygen(AC_SIG_ED25519);
    /* "carol" exists in the database behind the registry's back: inserting her again fails the
     * batch's transaction at commit time */
    assert_true(ac_test_sql_ok(url, "insert into ac_users (id, created_us) values ('carol', 1)"));
    assert_int_equal(principal(&n, AC_ROLE_USER, "dave", NULL, NULL, &uk, 1, NULL), AC_EC_OK);
    struct bdoc b;
    make(&b, "dave-b1", "dave", uk, agent, NOW_S + 3 * DAY, NOW_S + 20 * DAY);

    struct ac_identity_op op_bind, op_carol;
    memset(&op_bind, 0, sizeof op_bind);
    op_bind.kind = AC_IDOP_BINDING;
    op_bind.binding = &b.d;
    op_bind.jws = b.jws;
    memset(&op_carol, 0, sizeof op_carol);
    op_carol.kind = AC_IDOP_PRINCIPAL;
    op_carol.role = AC_ROLE_USER;
    snprintf(op_carol.id, sizeof op_carol.id, "carol");
    op_carol.keys[0] = dk;
    op_carol.nkeys = 1;
    struct pair p = {&op_bind, &op_carol};
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_OP;
    c.op = pair_apply;
    c.op_arg = &p;
    assert_int_equal(ac_seq_run(n.seq, &c), AC_EC_BATCH_FAILED);
    /* no row of either operation */
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_bindings where id = 'dave-b1'"),
                     0);
    assert_int_equal(
        ac_test_sql_int(url, "select count(*) from ac_principal_keys where user_id = 'carol'"), 0);
    char *carol_key =
        ac_test_sql_text(url, "select kid from ac_principal_keys where kid = $1", ac_test_kid(dk));
    assert_null(carol_key);
    /* the registry is reloaded from the database: no binding, carol as the database has her */
    assert_true(ac_seq_wait_leader(n.seq, 15000));
    enum ac_ec ec = AC_EC_NOT_LEADER;
    int rep = 0;
    for (int i = 0; i < 100 && ec != AC_EC_OK; i++) {
        ec = principal(&n, AC_ROLE_USER, "carol", NULL, NULL, NULL, 0, &rep);
        if (ec == AC_EC_NOT_LEADER || ec == AC_EC_DB_UNAVAILABLE)
            usleep(100000);
        else
            break;
    }
    assert_int_equal(ec, AC_EC_OK);
    assert_int_equal(rep, 1); /* known now, from the database */
    struct ac_binding_info bi;
    assert_int_equal(ac_registry_binding_get(n.reg, "dave-b1", &bi), AC_EC_BINDING_UNKNOWN);
    struct ac_resolved_key rk;
    assert_int_equal(ac_registry_resolve(n.reg, ac_test_kid(agent), &rk), AC_EC_SIG_KEY_UNKNOWN);
    struct ac_principal_info pi;
    assert_int_equal(ac_registry_principal_get(n.reg, AC_ROLE_USER, "carol", &pi), AC_EC_OK);
    assert_int_equal(pi.nkeys, 0);
    ac_principal_info_clear(&pi);
    /* the same binding on its own now succeeds */
    assert_int_equal(do_bind(&n, &b, &rep), AC_EC_OK);
    assert_int_equal(rep, 0);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_bindings where id = 'dave-b1'"),
                     1);
    unmake(&b);
    EVP_PKEY_free(uk);
    EVP_PKEY_free(dk);
    EVP_PKEY_free(agent);
    node_stop(&n);
}

static int setup(void **st)
{
    (void)st;
    url = ac_test_fresh_db("db_identity");
    if (ac_domain_register_statements() != 0) return -1;
    ua1 = ac_sig_keygen(AC_SIG_ED25519);
    ua2 = ac_sig_keygen(AC_SIG_ES256);
    ua3 = ac_sig_keygen(AC_SIG_ED25519);
    ub1 = ac_sig_keygen(AC_SIG_ES256);
    mk1 = ac_sig_keygen(AC_SIG_ED25519);
    ag1 = ac_sig_keygen(AC_SIG_ED25519);
    ag2 = ac_sig_keygen(AC_SIG_ES256);
    ag3 = ac_sig_keygen(AC_SIG_ED25519);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    EVP_PKEY *keys[] = {ua1, ua2, ua3, ub1, mk1, ag1, ag2, ag3};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(persisted_and_reloaded),
        cmocka_unit_test(failed_batch_writes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
