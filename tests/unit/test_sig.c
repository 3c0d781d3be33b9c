/* Raw Ed25519 / ES256 sign and verify, r||s conversion, algorithm-key fit, and the algorithm of
 * keys made every way the server makes them (and of keys it must refuse). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "protocol/jose.h"
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

static EVP_PKEY *ed_pub(const char *hex)
{
    uint8_t raw[32];
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &raw[i]), 1);
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof raw);
    assert_non_null(k);
    return k;
}

static void hex64(const char *hex, uint8_t out[64])
{
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
}

/* RFC 8032 section 7.1, TEST 2 (a one-byte message); then the two ways a signature can be
 * forged without the key that an Ed25519 verifier must refuse. */
static void ed25519_rfc8032_strict(void **s)
{
    (void)s;
    EVP_PKEY *k = ed_pub("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
    uint8_t sig[64];
    hex64("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
          "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
          sig);
    const uint8_t msg[] = {0x72};
    assert_int_equal(ac_sig_verify(k, AC_SIG_ED25519, msg, 1, sig, 64), 1);
    /* malleability: S + L is the same scalar mod L, so it satisfies the verification equation;
     * RFC 8032 5.1.7 requires S < L, and the verifier must refuse it */
    static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                  0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                                  0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};
    unsigned carry = 0;
    for (size_t i = 0; i < 32; i++) {
        unsigned v = sig[32 + i] + L[i] + carry;
        sig[32 + i] = (uint8_t)v;
        carry = v >> 8;
    }
    assert_int_equal(carry, 0);
    assert_int_equal(ac_sig_verify(k, AC_SIG_ED25519, msg, 1, sig, 64), 0);
    EVP_PKEY_free(k);
    /* a public key of small order (here the identity point) with R = identity and S = 0
     * satisfies [S]B = R + [k]A for every message: a key anyone can sign for. Refused. */
    k = ed_pub("0100000000000000000000000000000000000000000000000000000000000000");
    memset(sig, 0, sizeof sig);
    sig[0] = 0x01;
    assert_int_equal(ac_sig_verify(k, AC_SIG_ED25519, msg, 1, sig, 64), 0);
    EVP_PKEY_free(k);
}

static void expect_alg(EVP_PKEY *k, enum ac_sig_alg want)
{
    assert_non_null(k);
    assert_int_equal(ac_sig_key_alg(k), want);
    EVP_PKEY_free(k);
}

static void key_kinds(void **s)
{
    (void)s;
    uint8_t raw[32];
    memset(raw, 9, sizeof raw);
    /* Ed25519 as the note verifier (legacy NID), the JWK import (by name) and a generator make it
     */
    expect_alg(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof raw),
               AC_SIG_ED25519);
    expect_alg(EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, raw, sizeof raw),
               AC_SIG_ED25519);
    EVP_PKEY *j = NULL;
    const char *jwk = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                      "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
    assert_int_equal(ac_jwk_import_public_text(jwk, strlen(jwk), &j, NULL), AC_EC_OK);
    expect_alg(j, AC_SIG_ED25519);
    /* private keys: raw (the note signer), an OKP JWK with "d" (RFC 8037's example) */
    expect_alg(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, sizeof raw),
               AC_SIG_ED25519);
    const char *jwk_d = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                        "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
                        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
    j = NULL;
    assert_int_equal(ac_jwk_import_private_text(jwk_d, strlen(jwk_d), &j, NULL), AC_EC_OK);
    expect_alg(j, AC_SIG_ED25519);
    /* P-256 from a generator and from a JWK's coordinates (EVP_PKEY_fromdata), public and pair */
    EVP_PKEY *p256 = EVP_EC_gen("P-256");
    assert_non_null(p256);
    char *text = ac_jwk_public_text(p256);
    assert_non_null(text);
    j = NULL;
    assert_int_equal(ac_jwk_import_public_text(text, strlen(text), &j, NULL), AC_EC_OK);
    free(text);
    expect_alg(j, AC_SIG_ES256);
    json_t *pj = ac_jwk_export_private(p256);
    assert_non_null(pj);
    j = NULL;
    assert_int_equal(ac_jwk_import_private(pj, &j, NULL), AC_EC_OK);
    json_decref(pj);
    expect_alg(j, AC_SIG_ES256);
    expect_alg(p256, AC_SIG_ES256);
    /* other curves and key types: no algorithm of ours */
    expect_alg(EVP_EC_gen("P-384"), AC_SIG_NONE);
    expect_alg(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, raw, sizeof raw), AC_SIG_NONE);
    uint8_t raw57[57];
    memset(raw57, 9, sizeof raw57);
    expect_alg(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED448, NULL, raw57, sizeof raw57), AC_SIG_NONE);
    assert_int_equal(ac_sig_key_alg(NULL), AC_SIG_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ed25519),   cmocka_unit_test(es256),
        cmocka_unit_test(other_key), cmocka_unit_test(ed25519_rfc8032_strict),
        cmocka_unit_test(key_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
