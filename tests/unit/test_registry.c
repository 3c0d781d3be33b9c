/* The identity registry (keys/registry.h): principals and keys (one key, one principal; limits;
 * replays), bindings (id rules, the agent-key index and its "one active binding" rule, expiry and
 * revocation freeing a key), the resolver's answers, visibility only after commit (revocation at
 * once), replace, and readers running against a writer thread (under ASan/UBSan in Debug). */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "tests/support/identity.h"

#define NOW_S 1780000000LL
#define NOW (NOW_S * 1000000LL)
#define DAY 86400LL

struct doc {
    struct ac_binding_doc d;
    char *jws;
};

/* A real binding signed by user_key. */
static void make(struct doc *b, const char *id, const char *user, EVP_PKEY *user_key,
                 EVP_PKEY *agent, int64_t iat, int64_t exp, const char *model)
{
    json_t *p = ac_test_binding_payload(id, user, "agent-1", agent, iat, exp);
    if (model) json_object_set_new(json_object_get(p, "runtime"), "model", json_string(model));
    b->jws = ac_test_sign_doc(user_key, AC_BINDING_TYP, p, NULL);
    json_decref(p);
    assert_int_equal(ac_binding_parse(b->jws, strlen(b->jws), &b->d, NULL), AC_EC_OK);
}

static void unmake(struct doc *b)
{
    ac_binding_clear(&b->d);
    free(b->jws);
}

static EVP_PKEY *key(void)
{
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    assert_non_null(k);
    return k;
}

static enum ac_ec user(struct ac_registry *r, const char *id, EVP_PKEY *k, int *rep)
{
    EVP_PKEY *ks[] = {k};
    return ac_registry_principal_create(r, AC_ROLE_USER, id, NULL, NULL, ks, 1, NOW, rep);
}

static void principals_and_keys(void **st)
{
    (void)st;
    struct ac_registry *r = ac_registry_new();
    EVP_PKEY *a1 = key(), *a2 = key(), *m1 = ac_sig_keygen(AC_SIG_ES256), *x = key();
    int rep;
    EVP_PKEY *both[] = {a1, a2};
    assert_int_equal(
        ac_registry_principal_create(r, AC_ROLE_USER, "alice", NULL, NULL, both, 2, NOW, &rep),
        AC_EC_OK);
    assert_int_equal(rep, 0);
    /* not visible before commit */
    struct ac_principal_info pi;
    assert_int_equal(ac_registry_principal_get(r, AC_ROLE_USER, "alice", &pi), AC_EC_USER_UNKNOWN);
    EVP_PKEY *got = NULL;
    assert_int_equal(ac_registry_user_key(r, "alice", ac_test_kid(a1), &got), AC_EC_USER_UNKNOWN);
    ac_registry_commit(r);
    assert_int_equal(ac_registry_principal_get(r, AC_ROLE_USER, "alice", &pi), AC_EC_OK);
    assert_string_equal(pi.id, "alice");
    assert_int_equal(pi.nkeys, 2);
    assert_string_equal(pi.keys[0].kid, ac_test_kid(a1));
    assert_string_equal(pi.keys[1].kid, ac_test_kid(a2));
    assert_int_equal(pi.keys[0].alg, AC_SIG_ED25519);
    assert_int_equal(EVP_PKEY_eq(pi.keys[1].key, a2), 1);
    ac_principal_info_clear(&pi);
    assert_int_equal(ac_registry_user_key(r, "alice", ac_test_kid(a2), &got), AC_EC_OK);
    assert_int_equal(EVP_PKEY_eq(got, a2), 1);
    EVP_PKEY_free(got);
    assert_int_equal(ac_registry_user_key(r, "alice", ac_test_kid(x), &got), AC_EC_JWS_KEY_UNKNOWN);
    assert_null(got);
    assert_int_equal(ac_registry_user_key(r, "bob", ac_test_kid(a1), &got), AC_EC_USER_UNKNOWN);
    /* user keys do not resolve for signed requests */
    struct ac_resolved_key rk;
    assert_int_equal(ac_registry_resolve(r, ac_test_kid(a1), &rk), AC_EC_SIG_KEY_UNKNOWN);
    assert_null(rk.key);

    /* replays: same id with a subset of its keys; otherwise principal_exists */
    assert_int_equal(user(r, "alice", a2, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(user(r, "alice", x, &rep), AC_EC_PRINCIPAL_EXISTS);
    assert_int_equal(rep, 0);
    /* one key, one principal */
    assert_int_equal(user(r, "bob", a1, &rep), AC_EC_KEY_EXISTS);
    EVP_PKEY *dup[] = {x, x};
    assert_int_equal(
        ac_registry_principal_create(r, AC_ROLE_USER, "bob", NULL, NULL, dup, 2, NOW, &rep),
        AC_EC_KEY_EXISTS);
    assert_int_equal(ac_registry_principal_get(r, AC_ROLE_USER, "bob", &pi), AC_EC_USER_UNKNOWN);

    /* merchants: their own namespace, their keys resolve */
    EVP_PKEY *mk[] = {m1};
    assert_int_equal(ac_registry_principal_create(r, AC_ROLE_MERCHANT, "alice", "Alice's shop",
                                                  "llm-inference", mk, 1, NOW, &rep),
                     AC_EC_OK);
    assert_int_equal(ac_registry_resolve(r, ac_test_kid(m1), &rk), AC_EC_SIG_KEY_UNKNOWN);
    ac_registry_commit(r);
    assert_int_equal(ac_registry_resolve(r, ac_test_kid(m1), &rk), AC_EC_OK);
    assert_int_equal(rk.kind, AC_PRINCIPAL_MERCHANT);
    assert_string_equal(rk.merchant_id, "alice");
    assert_string_equal(rk.keyid, ac_test_kid(m1));
    assert_int_equal(EVP_PKEY_eq(rk.key, m1), 1);
    ac_resolved_key_clear(&rk);
    assert_null(rk.key);
    assert_int_equal(ac_registry_principal_create(r, AC_ROLE_MERCHANT, "alice", "Alice's shop",
                                                  "llm-inference", mk, 1, NOW, &rep),
                     AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(ac_registry_principal_create(r, AC_ROLE_MERCHANT, "alice", "Other name",
                                                  "llm-inference", mk, 1, NOW, &rep),
                     AC_EC_PRINCIPAL_EXISTS);
    assert_int_equal(ac_registry_principal_create(r, AC_ROLE_MERCHANT, "alice", "Alice's shop",
                                                  "books", mk, 1, NOW, &rep),
                     AC_EC_PRINCIPAL_EXISTS);
    assert_int_equal(ac_registry_principal_get(r, AC_ROLE_MERCHANT, "alice", &pi), AC_EC_OK);
    assert_string_equal(pi.name, "Alice's shop");
    assert_string_equal(pi.category, "llm-inference");
    ac_principal_info_clear(&pi);
    assert_int_equal(ac_registry_principal_get(r, AC_ROLE_MERCHANT, "nobody", &pi),
                     AC_EC_MERCHANT_UNKNOWN);

    /* adding keys */
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_USER, "nobody", x, NOW, &rep),
                     AC_EC_USER_UNKNOWN);
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_MERCHANT, "nobody", x, NOW, &rep),
                     AC_EC_MERCHANT_UNKNOWN);
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_USER, "alice", a1, NOW, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_USER, "alice", m1, NOW, &rep),
                     AC_EC_KEY_EXISTS);
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_USER, "alice", x, NOW + 1, &rep), AC_EC_OK);
    assert_int_equal(rep, 0);
    assert_int_equal(ac_registry_user_key(r, "alice", ac_test_kid(x), &got),
                     AC_EC_JWS_KEY_UNKNOWN); /* until commit */
    ac_registry_commit(r);
    assert_int_equal(ac_registry_user_key(r, "alice", ac_test_kid(x), &got), AC_EC_OK);
    EVP_PKEY_free(got);
    /* at most 16 keys */
    EVP_PKEY *more[AC_REGISTRY_MAX_KEYS];
    for (int i = 0; i < AC_REGISTRY_MAX_KEYS; i++)
        more[i] = key();
    for (int i = 0; i < AC_REGISTRY_MAX_KEYS - 3; i++)
        assert_int_equal(ac_registry_key_add(r, AC_ROLE_USER, "alice", more[i], NOW, &rep),
                         AC_EC_OK);
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_USER, "alice", more[13], NOW, &rep),
                     AC_EC_KEYS_LIMIT);
    EVP_PKEY *seventeen[AC_REGISTRY_MAX_KEYS + 1];
    for (int i = 0; i <= AC_REGISTRY_MAX_KEYS; i++)
        seventeen[i] = more[i % AC_REGISTRY_MAX_KEYS];
    assert_int_equal(ac_registry_principal_create(r, AC_ROLE_USER, "carol", NULL, NULL, seventeen,
                                                  AC_REGISTRY_MAX_KEYS + 1, NOW, &rep),
                     AC_EC_KEYS_LIMIT);
    struct ac_registry_counts c;
    ac_registry_commit(r);
    ac_registry_counts(r, &c);
    assert_int_equal(c.users, 1);
    assert_int_equal(c.merchants, 1);
    assert_int_equal(c.keys, 2 + 1 + 1 + 13);
    for (int i = 0; i < AC_REGISTRY_MAX_KEYS; i++)
        EVP_PKEY_free(more[i]);
    EVP_PKEY_free(a1);
    EVP_PKEY_free(a2);
    EVP_PKEY_free(m1);
    EVP_PKEY_free(x);
    ac_registry_free(r);
}

static void bindings_and_resolve(void **st)
{
    (void)st;
    struct ac_registry *r = ac_registry_new();
    EVP_PKEY *ak = key(), *bk = key(), *agent = ac_sig_keygen(AC_SIG_ES256), *mk = key();
    int rep;
    assert_int_equal(user(r, "alice", ak, &rep), AC_EC_OK);
    assert_int_equal(user(r, "bob", bk, &rep), AC_EC_OK);
    EVP_PKEY *mks[] = {mk};
    assert_int_equal(ac_registry_principal_create(r, AC_ROLE_MERCHANT, "shop", "Shop", "retail",
                                                  mks, 1, NOW, &rep),
                     AC_EC_OK);
    ac_registry_commit(r);
    const char *agent_kid = strdup(ac_test_kid(agent));

    struct doc b1, b1x, b2, byb, bmk, bbad;
    make(&b1, "b1", "alice", ak, agent, NOW_S, NOW_S + 10 * DAY, NULL);
    assert_int_equal(ac_registry_binding_add(r, &b1.d, b1.jws, NOW, &rep), AC_EC_OK);
    assert_int_equal(rep, 0);
    struct ac_resolved_key rk;
    assert_int_equal(ac_registry_resolve(r, agent_kid, &rk), AC_EC_SIG_KEY_UNKNOWN);
    ac_registry_commit(r);
    assert_int_equal(ac_registry_resolve(r, agent_kid, &rk), AC_EC_OK);
    assert_int_equal(rk.kind, AC_PRINCIPAL_AGENT);
    assert_string_equal(rk.keyid, agent_kid);
    assert_string_equal(rk.binding_id, "b1");
    assert_string_equal(rk.user_id, "alice");
    assert_string_equal(rk.agent_id, "agent-1");
    assert_memory_equal(rk.runtime_digest, b1.d.runtime_digest, AC_RUNTIME_DIGEST_LEN);
    assert_int_equal(rk.max_autonomy, 3);
    assert_int_equal(rk.nbf, NOW_S);
    assert_int_equal(rk.exp, NOW_S + 10 * DAY);
    assert_int_equal(rk.revoked, 0);
    assert_int_equal(EVP_PKEY_eq(rk.key, agent), 1);
    ac_resolved_key_clear(&rk);
    assert_int_equal(ac_registry_resolve(r, "not-a-kid", &rk), AC_EC_SIG_KEY_UNKNOWN);
    assert_int_equal(ac_registry_resolve(r, NULL, &rk), AC_EC_SIG_KEY_UNKNOWN);
    assert_int_equal(ac_registry_resolve(r, ac_test_kid(bk), &rk), AC_EC_SIG_KEY_UNKNOWN);

    /* replay and binding_exists */
    assert_int_equal(ac_registry_binding_add(r, &b1.d, b1.jws, NOW + 5, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    make(&b1x, "b1", "alice", ak, agent, NOW_S, NOW_S + 11 * DAY, NULL);
    assert_int_equal(ac_registry_binding_add(r, &b1x.d, b1x.jws, NOW, &rep), AC_EC_BINDING_EXISTS);
    /* the key is bound: a second binding of it is refused while the first is active */
    make(&b2, "b2", "alice", ak, agent, NOW_S, NOW_S + 20 * DAY, "model-two");
    assert_int_equal(ac_registry_binding_add(r, &b2.d, b2.jws, NOW, &rep), AC_EC_AGENT_KEY_BOUND);
    /* unknown user, a kid that is not the user's, an agent key that is a principal key */
    make(&byb, "b3", "bob", ak, agent, NOW_S, NOW_S + DAY, NULL); /* bob's binding, alice's key */
    assert_int_equal(ac_registry_binding_add(r, &byb.d, byb.jws, NOW, &rep), AC_EC_JWS_KEY_UNKNOWN);
    make(&bbad, "b4", "carol", ak, agent, NOW_S, NOW_S + DAY, NULL);
    assert_int_equal(ac_registry_binding_add(r, &bbad.d, bbad.jws, NOW, &rep), AC_EC_USER_UNKNOWN);
    make(&bmk, "b5", "bob", bk, mk, NOW_S, NOW_S + DAY, NULL);
    assert_int_equal(ac_registry_binding_add(r, &bmk.d, bmk.jws, NOW, &rep), AC_EC_KEY_EXISTS);
    /* and a bound agent key cannot become a principal key */
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_USER, "bob", agent, NOW, &rep),
                     AC_EC_KEY_EXISTS);
    assert_int_equal(ac_registry_key_add(r, AC_ROLE_MERCHANT, "shop", agent, NOW, &rep),
                     AC_EC_KEY_EXISTS);

    /* binding_get */
    struct ac_binding_info bi;
    assert_int_equal(ac_registry_binding_get(r, "b1", &bi), AC_EC_OK);
    assert_string_equal(bi.jws, b1.jws);
    assert_string_equal(bi.user_kid, ac_test_kid(ak));
    assert_string_equal(bi.agent_kid, agent_kid);
    assert_string_equal(bi.model, AC_TEST_MODEL);
    assert_int_equal(bi.created_us, NOW);
    assert_null(bi.revocation_jws);
    ac_binding_info_clear(&bi);
    assert_int_equal(ac_registry_binding_get(r, "b2", &bi), AC_EC_BINDING_UNKNOWN);

    /* revocation: rules, effective for readers at once, final */
    assert_int_equal(
        ac_registry_binding_revoke(r, "nope", "alice", ac_test_kid(ak), "r", NOW, &rep),
        AC_EC_BINDING_UNKNOWN);
    assert_int_equal(ac_registry_binding_revoke(r, "b1", "bob", ac_test_kid(bk), "r", NOW, &rep),
                     AC_EC_REVOCATION_INVALID);
    assert_int_equal(ac_registry_binding_revoke(r, "b1", "alice", ac_test_kid(bk), "r", NOW, &rep),
                     AC_EC_JWS_KEY_UNKNOWN);
    assert_int_equal(ac_registry_binding_revoke(r, "b1", "alice", ac_test_kid(mk), "r", NOW, &rep),
                     AC_EC_JWS_KEY_UNKNOWN);
    assert_int_equal(
        ac_registry_binding_revoke(r, "b1", "alice", ac_test_kid(ak), "rev-1", NOW + 7, &rep),
        AC_EC_OK);
    assert_int_equal(rep, 0);
    assert_int_equal(ac_registry_resolve(r, agent_kid, &rk), AC_EC_OK); /* no commit needed */
    assert_int_equal(rk.revoked, 1);
    assert_string_equal(rk.binding_id, "b1");
    ac_resolved_key_clear(&rk);
    assert_int_equal(
        ac_registry_binding_revoke(r, "b1", "alice", ac_test_kid(ak), "rev-2", NOW + 9, &rep),
        AC_EC_OK);
    assert_int_equal(rep, 1);
    ac_registry_commit(r);
    assert_int_equal(ac_registry_binding_get(r, "b1", &bi), AC_EC_OK);
    assert_int_equal(bi.revoked, 1);
    assert_int_equal(bi.revoked_us, NOW + 7);
    assert_string_equal(bi.revocation_jws, "rev-1"); /* the first one stays */
    assert_string_equal(bi.revocation_kid, ac_test_kid(ak));
    ac_binding_info_clear(&bi);

    /* the key is free again: b2 binds it; readers keep seeing b1 until b2 is committed */
    assert_int_equal(ac_registry_binding_add(r, &b2.d, b2.jws, NOW + 10, &rep), AC_EC_OK);
    assert_int_equal(ac_registry_resolve(r, agent_kid, &rk), AC_EC_OK);
    assert_string_equal(rk.binding_id, "b1");
    ac_resolved_key_clear(&rk);
    ac_registry_commit(r);
    assert_int_equal(ac_registry_resolve(r, agent_kid, &rk), AC_EC_OK);
    assert_string_equal(rk.binding_id, "b2");
    assert_int_equal(rk.revoked, 0);
    uint8_t d2[AC_RUNTIME_DIGEST_LEN];
    assert_int_equal(ac_runtime_digest(AC_TEST_SW, "model-two", AC_TEST_ENV, d2), AC_EC_OK);
    assert_memory_equal(rk.runtime_digest, d2, sizeof d2);
    assert_memory_not_equal(d2, b1.d.runtime_digest, sizeof d2);
    ac_resolved_key_clear(&rk);

    /* expiry frees the key too: b2 expires after 20 days; a binding at that second is fine, one
     * second earlier it is not */
    struct doc b6;
    make(&b6, "b6", "alice", ak, agent, NOW_S + 19 * DAY, NOW_S + 30 * DAY, NULL);
    assert_int_equal(
        ac_registry_binding_add(r, &b6.d, b6.jws, (NOW_S + 20 * DAY - 1) * 1000000LL, &rep),
        AC_EC_AGENT_KEY_BOUND);
    assert_int_equal(
        ac_registry_binding_add(r, &b6.d, b6.jws, (NOW_S + 20 * DAY) * 1000000LL, &rep), AC_EC_OK);
    ac_registry_commit(r);
    assert_int_equal(ac_registry_resolve(r, agent_kid, &rk), AC_EC_OK);
    assert_string_equal(rk.binding_id, "b6");
    ac_resolved_key_clear(&rk);
    struct ac_registry_counts c;
    ac_registry_counts(r, &c);
    assert_int_equal(c.bindings, 3);
    assert_int_equal(c.revoked, 1);

    /* replace: the content moves in one step, the source is left empty */
    struct ac_registry *fresh = ac_registry_new();
    EVP_PKEY *zk = key();
    assert_int_equal(user(fresh, "zoe", zk, &rep), AC_EC_OK);
    ac_registry_commit(fresh);
    ac_registry_replace(r, fresh);
    assert_int_equal(ac_registry_resolve(r, agent_kid, &rk), AC_EC_SIG_KEY_UNKNOWN);
    assert_int_equal(
        ac_registry_principal_get(r, AC_ROLE_USER, "alice", &(struct ac_principal_info){0}),
        AC_EC_USER_UNKNOWN);
    struct ac_principal_info pi;
    assert_int_equal(ac_registry_principal_get(r, AC_ROLE_USER, "zoe", &pi), AC_EC_OK);
    ac_principal_info_clear(&pi);
    ac_registry_counts(fresh, &c);
    assert_int_equal(c.users + c.keys + c.bindings, 0);
    ac_registry_free(fresh);

    struct doc *all[] = {&b1, &b1x, &b2, &byb, &bmk, &bbad, &b6};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        unmake(all[i]);
    free((void *)agent_kid);
    EVP_PKEY *keys[] = {ak, bk, agent, mk, zk};
    for (size_t i = 0; i < 5; i++)
        EVP_PKEY_free(keys[i]);
    ac_registry_free(r);
}

/* ---- readers against a writer ---------------------------------------------------------------- */

#define NAGENTS 24
#define ROUNDS 40

static struct ac_registry *shared;
static EVP_PKEY *agents[NAGENTS];
static char agent_kids[NAGENTS][AC_JWK_THUMBPRINT_SIZE];
static EVP_PKEY *ukey;
static char ukid[AC_JWK_THUMBPRINT_SIZE];
static _Atomic int writer_done;
static _Atomic long reads_ok;
/* cmocka's failures must not be raised off the main thread: threads record the first one here */
static _Atomic int thread_failed;
static char thread_failure[256];

static void tfail(const char *fmt, const char *a, int x, int y)
{
    if (atomic_exchange(&thread_failed, 1) == 0)
        snprintf(thread_failure, sizeof thread_failure, fmt, a, x, y);
}

/* make() without cmocka assertions, for the writer thread */
static int tmake(struct doc *b, const char *id, EVP_PKEY *agent)
{
    json_t *p = ac_test_binding_payload(id, "alice", "agent-1", agent, NOW_S, NOW_S + DAY);
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    b->jws =
        text ? ac_jws_sign(ukey, ukid, AC_BINDING_TYP, (const uint8_t *)text, strlen(text)) : NULL;
    free(text);
    return b->jws && ac_binding_parse(b->jws, strlen(b->jws), &b->d, NULL) == AC_EC_OK ? 0 : -1;
}

/* Round k binds agent i as "r<k>-a<i>" and revokes it again. */
static void *writer(void *arg)
{
    (void)arg;
    int rep;
    for (int k = 0; k < ROUNDS; k++) {
        for (int i = 0; i < NAGENTS; i++) {
            char id[32];
            snprintf(id, sizeof id, "r%d-a%d", k, i);
            struct doc b = {0};
            if (tmake(&b, id, agents[i]) != 0 ||
                ac_registry_binding_add(shared, &b.d, b.jws, NOW + k, &rep) != AC_EC_OK)
                tfail("binding %s refused%d%d", id, 0, 0);
            unmake(&b);
        }
        ac_registry_commit(shared);
        for (int i = 0; i < NAGENTS; i++) {
            char id[32];
            snprintf(id, sizeof id, "r%d-a%d", k, i);
            if (ac_registry_binding_revoke(shared, id, "alice", ukid, "rev", NOW + k, &rep) !=
                AC_EC_OK)
                tfail("revocation of %s refused%d%d", id, 0, 0);
        }
        ac_registry_commit(shared);
    }
    atomic_store(&writer_done, 1);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    int last_round[NAGENTS];
    for (int i = 0; i < NAGENTS; i++)
        last_round[i] = -1;
    for (int done = 0; !done;) {
        done = atomic_load(&writer_done); /* one more full pass after the writer finished */
        for (int i = 0; i < NAGENTS; i++) {
            struct ac_resolved_key rk;
            if (ac_registry_resolve(shared, agent_kids[i], &rk) != AC_EC_OK) continue;
            int k = -1, a = -1;
            if (sscanf(rk.binding_id, "r%d-a%d", &k, &a) != 2 || a != i)
                tfail("key resolved to binding %s (agent %d)%d", rk.binding_id, i, 0);
            if (k < last_round[i]) tfail("%sagent %d went back to round %d", "", i, k);
            last_round[i] = k;
            if (strcmp(rk.keyid, agent_kids[i]) != 0 || EVP_PKEY_eq(rk.key, agents[i]) != 1)
                tfail("%sresolved key differs (agent %d)%d", "", i, 0);
            struct ac_binding_info bi;
            if (ac_registry_binding_get(shared, rk.binding_id, &bi) == AC_EC_OK) {
                if (strcmp(bi.agent_kid, agent_kids[i]) != 0)
                    tfail("binding_get mismatch %s%d%d", rk.binding_id, 0, 0);
                /* revocation never goes back */
                if (rk.revoked && !bi.revoked)
                    tfail("revocation of %s undone%d%d", rk.binding_id, 0, 0);
                ac_binding_info_clear(&bi);
            }
            ac_resolved_key_clear(&rk);
            atomic_fetch_add(&reads_ok, 1);
        }
        EVP_PKEY *k = NULL;
        if (ac_registry_user_key(shared, "alice", ukid, &k) != AC_EC_OK)
            tfail("%suser key lost%d%d", "", 0, 0);
        EVP_PKEY_free(k);
    }
    return NULL;
}

static void concurrent_readers(void **st)
{
    (void)st;
    shared = ac_registry_new();
    ukey = key();
    assert_int_equal(ac_jwk_thumbprint(ukey, ukid), 0);
    int rep;
    assert_int_equal(user(shared, "alice", ukey, &rep), AC_EC_OK);
    ac_registry_commit(shared);
    for (int i = 0; i < NAGENTS; i++) {
        agents[i] = i % 2 ? key() : ac_sig_keygen(AC_SIG_ES256);
        assert_int_equal(ac_jwk_thumbprint(agents[i], agent_kids[i]), 0);
    }
    pthread_t w, rd[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, reader, NULL), 0);
    assert_int_equal(pthread_create(&w, NULL, writer, NULL), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(rd[i], NULL);
    if (atomic_load(&thread_failed)) fail_msg("%s", thread_failure);
    assert_true(atomic_load(&reads_ok) > 0);
    /* in the end every agent resolves to its last, revoked binding */
    for (int i = 0; i < NAGENTS; i++) {
        struct ac_resolved_key rk;
        assert_int_equal(ac_registry_resolve(shared, agent_kids[i], &rk), AC_EC_OK);
        char want[32];
        snprintf(want, sizeof want, "r%d-a%d", ROUNDS - 1, i);
        assert_string_equal(rk.binding_id, want);
        assert_int_equal(rk.revoked, 1);
        ac_resolved_key_clear(&rk);
        EVP_PKEY_free(agents[i]);
    }
    struct ac_registry_counts c;
    ac_registry_counts(shared, &c);
    assert_int_equal(c.bindings, NAGENTS * ROUNDS);
    assert_int_equal(c.revoked, NAGENTS * ROUNDS);
    EVP_PKEY_free(ukey);
    ac_registry_free(shared);
}

static void merchant_names(void **st)
{
    (void)st;
    assert_true(ac_merchant_name_valid("Alice's Shop \xe2\x80\x94 Books"));
    assert_false(ac_merchant_name_valid(""));
    assert_false(ac_merchant_name_valid(NULL));
    assert_false(ac_merchant_name_valid("tab\there"));
    assert_false(ac_merchant_name_valid("del\x7f"));
    char n[AC_MERCHANT_NAME_MAX + 2];
    memset(n, 'n', sizeof n - 1);
    n[sizeof n - 1] = 0;
    assert_false(ac_merchant_name_valid(n));
    assert_true(ac_merchant_name_valid(n + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(principals_and_keys),
        cmocka_unit_test(bindings_and_resolve),
        cmocka_unit_test(concurrent_readers),
        cmocka_unit_test(merchant_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
