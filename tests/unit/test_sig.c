/* Raw Ed25519 / ES256 sign and verify, r||s conversion, algorithm-key fit. */
#include "tests/support/testutil.h"

#include <string.h>

#include "protocol/sig.h"

static void roundtrip(enum ac_sig_alg alg)
{
    EVP_PKEY *k = ac_sig_keygen(alg);
    assert_non_null(k);
    assert_int_equal(ac_sig_key_alg(k), alg);
    const uint8_t msg[] = "pay merchant 12.34 CNY";
    uint8_t sig[AC_SIG_MAX];
    size_t n = 0;
    assert_int_equal(ac_sig_sign(k, msg, sizeof msg - 1, sig, &n), 0);
    assert_int_equal(n, 64);
    assert_int_equal(ac_sig_verify(k, alg, msg, sizeof msg - 1, sig, n), 1);
    /* every single-bit change of the message or the signature must fail */
    for (size_t i = 0; i < n; i++) {
        sig[i] ^= 0x01;
        assert_int_equal(ac_sig_verify(k, alg, msg, sizeof msg - 1, sig, n), 0);
        sig[i] ^= 0x01;
    }
    uint8_t m2[sizeof msg];
    memcpy(m2, msg, sizeof msg);
    m2[3] ^= 0x20;
    assert_int_equal(ac_sig_verify(k, alg, m2, sizeof msg - 1, sig, n), 0);
    assert_int_equal(ac_sig_verify(k, alg, msg, sizeof msg - 1, sig, n - 1), 0);
    /* wrong algorithm for the key */
    enum ac_sig_alg other = alg == AC_SIG_ED25519 ? AC_SIG_ES256 : AC_SIG_ED25519;
    assert_int_equal(ac_sig_verify(k, other, msg, sizeof msg - 1, sig, n), 0);
    assert_int_equal(ac_sig_verify(k, AC_SIG_NONE, msg, sizeof msg - 1, sig, n), 0);
    EVP_PKEY_free(k);
}

static void ed25519(void **s)
{
    (void)s;
    roundtrip(AC_SIG_ED25519);
}

static void es256(void **s)
{
    (void)s;
    roundtrip(AC_SIG_ES256);
}

static void other_key(void **s)
{
    (void)s;
    EVP_PKEY *a = ac_sig_keygen(AC_SIG_ED25519), *b = ac_sig_keygen(AC_SIG_ED25519);
    uint8_t sig[AC_SIG_MAX];
    size_t n;
    assert_int_equal(ac_sig_sign(a, (const uint8_t *)"x", 1, sig, &n), 0);
    assert_int_equal(ac_sig_verify(b, AC_SIG_ED25519, (const uint8_t *)"x", 1, sig, n), 0);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ed25519),
        cmocka_unit_test(es256),
        cmocka_unit_test(other_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
