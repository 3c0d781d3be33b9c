/* The request path's cheaper pieces against their plain counterparts:
 * - ac_sig_verify() (libsodium's Ed25519 verify, protocol/sig.c) gives exactly the answers of
 *   OpenSSL's with a fresh context, over many keys, for the same key again and again, after
 *   failures, for a key freed and new keys made after it, and on several threads at once;
 * - ac_verified_json_text() (GET /v1/whoami's answer) is the same JSON as ac_verified_json(),
 *   member for member and in the same order, with strings that need escaping. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "protocol/sig.h"
#include "server/authn.h"

#define NKEYS 20

struct keyset {
    EVP_PKEY *k[NKEYS];
    uint8_t sig[NKEYS][64];
    uint8_t msg[NKEYS][32];
};

static void keyset_make(struct keyset *ks)
{
    for (int i = 0; i < NKEYS; i++) {
        ks->k[i] = ac_sig_keygen(AC_SIG_ED25519);
        assert_non_null(ks->k[i]);
        memset(ks->msg[i], 'a' + i, sizeof ks->msg[i]);
        size_t n = 0;
        assert_int_equal(ac_sig_sign(ks->k[i], ks->msg[i], sizeof ks->msg[i], ks->sig[i], &n), 0);
        assert_int_equal(n, 64);
    }
}

static void keyset_free(struct keyset *ks)
{
    for (int i = 0; i < NKEYS; i++)
        EVP_PKEY_free(ks->k[i]);
}

/* Every (key, message, signature) combination of a pattern that revisits keys and mixes valid
 * and invalid signatures: ac_sig_verify's answer is OpenSSL's. */
static int sweep(struct keyset *ks, unsigned seed)
{
    int mismatches = 0;
    for (int round = 0; round < 200; round++) {
        int i = (int)((seed + (unsigned)round * 7u) % NKEYS);
        int j = round % 3 == 0 ? (i + 1) % NKEYS : i; /* another key's message and signature */
        uint8_t sig[64];
        memcpy(sig, ks->sig[j], 64);
        if (round % 5 == 0) sig[round % 64] ^= 0x40; /* a broken signature */
        int want = ac_test_openssl_ed25519_verify(ks->k[i], ks->msg[j], sizeof ks->msg[j], sig);
        int got = ac_sig_verify(ks->k[i], AC_SIG_ED25519, ks->msg[j], sizeof ks->msg[j], sig, 64);
        if (want != got) mismatches++;
        /* the same key right after: still verifies (after a failure too) */
        int again =
            ac_sig_verify(ks->k[i], AC_SIG_ED25519, ks->msg[i], sizeof ks->msg[i], ks->sig[i], 64);
        if (again != 1) mismatches++;
    }
    return mismatches;
}

static void matches_openssl(void **s)
{
    (void)s;
    struct keyset ks;
    keyset_make(&ks);
    assert_int_equal(sweep(&ks, 0), 0);
    /* some answers must have been invalid, or the comparison proves little */
    uint8_t bad[64];
    memcpy(bad, ks.sig[0], 64);
    bad[10] ^= 1;
    assert_int_equal(ac_sig_verify(ks.k[0], AC_SIG_ED25519, ks.msg[0], 32, bad, 64), 0);
    assert_int_equal(ac_sig_verify(ks.k[0], AC_SIG_ED25519, ks.msg[0], 32, ks.sig[0], 64), 1);
    keyset_free(&ks);
}

static void freed_key_and_new_keys(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    assert_non_null(k);
    const uint8_t m[] = "a request";
    uint8_t sig[AC_SIG_MAX];
    size_t n = 0;
    assert_int_equal(ac_sig_sign(k, m, sizeof m, sig, &n), 0);
    assert_int_equal(ac_sig_verify(k, AC_SIG_ED25519, m, sizeof m, sig, n), 1);
    EVP_PKEY_free(k);
    /* a new key (possibly at the same address) verifies only its own signatures */
    for (int i = 0; i < 40; i++) {
        EVP_PKEY *k2 = ac_sig_keygen(AC_SIG_ED25519);
        assert_non_null(k2);
        assert_int_equal(ac_sig_verify(k2, AC_SIG_ED25519, m, sizeof m, sig, n), 0);
        uint8_t s2[AC_SIG_MAX];
        size_t n2 = 0;
        assert_int_equal(ac_sig_sign(k2, m, sizeof m, s2, &n2), 0);
        assert_int_equal(ac_sig_verify(k2, AC_SIG_ED25519, m, sizeof m, s2, n2), 1);
        EVP_PKEY_free(k2);
    }
}

struct th {
    struct keyset *ks;
    unsigned seed;
    int mismatches;
};

static void *th_main(void *arg)
{
    struct th *t = arg;
    t->mismatches = sweep(t->ks, t->seed);
    return NULL;
}

static void threads_agree(void **s)
{
    (void)s;
    struct keyset ks;
    keyset_make(&ks);
    pthread_t tid[4];
    struct th t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct th){.ks = &ks, .seed = (unsigned)i * 3u};
        assert_int_equal(pthread_create(&tid[i], NULL, th_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(t[i].mismatches, 0);
    }
    keyset_free(&ks);
}

/* ---- the whoami text --------------------------------------------------------------------------
 */

static void same_json(const struct ac_verified *v)
{
    json_t *tree = ac_verified_json(v);
    assert_non_null(tree);
    char *want = json_dumps(tree, JSON_COMPACT);
    json_decref(tree);
    assert_non_null(want);
    struct ac_buf b = {0};
    assert_int_equal(ac_verified_json_text(v, &b), 0);
    /* byte for byte what jansson writes (members in insertion order, compact) */
    assert_string_equal(ac_buf_str(&b), want);
    json_error_t e;
    json_t *back = json_loads(ac_buf_str(&b), JSON_REJECT_DUPLICATES, &e);
    assert_non_null(back);
    json_decref(back);
    free(want);
    ac_buf_free(&b);
}

static void whoami_text_is_the_json(void **s)
{
    (void)s;
    static char label[] = "sig1";
    static char si[] = "sig1=(\"@method\" \"@target-uri\");created=1;keyid=\"k\\\\x\";"
                       "nonce=\"a\\\"b\";tag=\"agentclear\"";
    static uint8_t base[300];
    for (size_t i = 0; i < sizeof base; i++)
        base[i] = (uint8_t)(i * 37);
    struct ac_verified *v = calloc(1, sizeof *v);
    assert_non_null(v);
    v->kind = AC_PRINCIPAL_AGENT;
    snprintf(v->keyid, sizeof v->keyid, "%s", "poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U");
    snprintf(v->binding_id, sizeof v->binding_id, "%s", "b-1");
    snprintf(v->user_id, sizeof v->user_id, "%s", "u:1");
    snprintf(v->agent_id, sizeof v->agent_id, "%s", "agent.7");
    memset(v->runtime_digest, 0xab, sizeof v->runtime_digest);
    v->max_autonomy = 3;
    snprintf(v->alg, sizeof v->alg, "%s", "ed25519");
    v->created = 1763884800;
    v->has_expires = 1;
    v->expires = 1763884920;
    snprintf(v->nonce, sizeof v->nonce, "%s", "n \"quoted\" \\ back\tslash\x01");
    v->label = label;
    v->signature_input = si;
    v->base = base;
    v->base_len = sizeof base;
    memset(v->sig, 0x5a, 64);
    v->siglen = 64;
    v->verified_at = 1763884801;
    same_json(v);

    v->has_expires = 0;
    v->kind = AC_PRINCIPAL_MERCHANT;
    snprintf(v->merchant_id, sizeof v->merchant_id, "%s", "shop-1");
    v->base_len = 0;
    same_json(v);
    v->label = NULL;
    v->signature_input = NULL;
    same_json(v);
    ac_verified_free(v); /* the strings are not part of v here: only v itself is freed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_openssl),
        cmocka_unit_test(freed_key_and_new_keys),
        cmocka_unit_test(threads_agree),
        cmocka_unit_test(whoami_text_is_the_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
