/* RFC 8037 appendix A vectors (Ed25519 JWK, thumbprint, JWS), cross-checked against the RFC 8032
 * §7.1 TEST 1 key they reuse, and RFC 7638 §3.1's RSA key, which agentclear must reject. */
#include "tests/support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/b64.h"
#include "protocol/jose.h"

/* A.1: the private key */
static const char a1_private[] = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                                 "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
                                 "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
/* A.1 gives d and x in hex too; they are RFC 8032 §7.1 TEST 1's secret and public key */
static const char a1_d_hex[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char a1_x_hex[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/* A.2: the public key */
static const char a2_public[] = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                                "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
/* A.3: the thumbprint, and the canonical JSON it hashes */
static const char a3_canonical[] =
    "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char a3_thumbprint[] = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
/* A.4: protected header {"alg":"EdDSA"}, payload "Example of Ed25519 signing" */
static const char a4_payload[] = "Example of Ed25519 signing";
static const char a4_jws[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g"
    "7sVvpAr_MuM0KAg";
/* RFC 8032 §7.1 TEST 1: the signature of the empty message under the same key */
static const char rfc8032_t1_sig_hex[] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
    "6bd25bf5f0595bbe24655141438e7a100b";
/* RFC 7638 §3.1: an RSA key (with its published thumbprint
 * NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs)
 */
static const char rfc7638_rsa[] =
    "{\"kty\":\"RSA\",\"n\":"
    "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7a"
    "PFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_"
    "RN5w6Cf0h4QyQ5v-6"
    "5YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
    "bFTWhAI"
    "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\","
    "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";

static EVP_PKEY *load_private(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(ac_jwk_import_private_text(a1_private, strlen(a1_private), &k, NULL),
                     AC_EC_OK);
    assert_non_null(k);
    return k;
}

static EVP_PKEY *load_public(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(ac_jwk_import_public_text(a2_public, strlen(a2_public), &k, NULL), AC_EC_OK);
    assert_non_null(k);
    return k;
}

/* A.1: the private JWK imports, its raw bytes are the hex of the RFC, and it exports back */
static void a1_private_key(void **s)
{
    (void)s;
    EVP_PKEY *k = load_private();
    assert_int_equal(ac_sig_key_alg(k), AC_SIG_ED25519);
    uint8_t want[32], got[32];
    size_t n = sizeof got;
    assert_int_equal(ac_test_unhex(a1_d_hex, want, sizeof want), 32);
    assert_int_equal(EVP_PKEY_get_raw_private_key(k, got, &n), 1);
    assert_int_equal(n, 32);
    assert_memory_equal(got, want, 32);
    assert_int_equal(ac_test_unhex(a1_x_hex, want, sizeof want), 32);
    n = sizeof got;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, got, &n), 1);
    assert_memory_equal(got, want, 32);

    json_t *priv = ac_jwk_export_private(k);
    assert_non_null(priv);
    json_t *orig = json_loads(a1_private, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(orig);
    assert_true(json_equal(priv, orig));
    json_decref(orig);
    json_decref(priv);

    /* RFC 8032 TEST 1: same key, empty message -- an independent check of the key bytes */
    uint8_t sig[AC_SIG_MAX], want_sig[64];
    size_t siglen = 0;
    assert_int_equal(ac_test_unhex(rfc8032_t1_sig_hex, want_sig, sizeof want_sig), 64);
    assert_int_equal(ac_sig_sign(k, (const uint8_t *)"", 0, sig, &siglen), 0);
    assert_int_equal(siglen, 64);
    assert_memory_equal(sig, want_sig, 64);
    EVP_PKEY_free(k);
}

/* A.2: the public JWK imports, equals the private key's public half, and exports back */
static void a2_public_key(void **s)
{
    (void)s;
    EVP_PKEY *pub = load_public(), *priv = load_private();
    assert_int_equal(EVP_PKEY_eq(pub, priv), 1);
    json_t *j = ac_jwk_export_public(pub), *orig = json_loads(a2_public, 0, NULL);
    assert_non_null(j);
    assert_non_null(orig);
    assert_true(json_equal(j, orig));
    json_decref(j);
    json_decref(orig);
    /* the private key is not a public JWK */
    EVP_PKEY *k = NULL;
    const char *detail = NULL;
    assert_int_equal(ac_jwk_import_public_text(a1_private, strlen(a1_private), &k, &detail),
                     AC_EC_JWK_INVALID);
    assert_null(k);
    assert_non_null(detail);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
}

/* A.3: the canonical form and the thumbprint, from the public and from the private key */
static void a3_thumbprint_vector(void **s)
{
    (void)s;
    EVP_PKEY *pub = load_public(), *priv = load_private();
    char *text = ac_jwk_public_text(pub);
    assert_non_null(text);
    assert_string_equal(text, a3_canonical);
    free(text);
    char tp[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(pub, tp), 0);
    assert_string_equal(tp, a3_thumbprint);
    assert_int_equal(ac_jwk_thumbprint(priv, tp), 0);
    assert_string_equal(tp, a3_thumbprint);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
}

/* A.4: signing gives exactly the RFC's compact JWS (Ed25519 is deterministic) */
static void a4_sign(void **s)
{
    (void)s;
    EVP_PKEY *priv = load_private();
    char *jws = ac_jws_sign(priv, NULL, NULL, (const uint8_t *)a4_payload, strlen(a4_payload));
    assert_non_null(jws);
    assert_string_equal(jws, a4_jws);
    free(jws);
    EVP_PKEY_free(priv);
}

/* A.5: the RFC's JWS parses and verifies with the public key; any change breaks it */
static void a5_verify(void **s)
{
    (void)s;
    EVP_PKEY *pub = load_public();
    struct ac_jws j;
    assert_int_equal(ac_jws_parse(a4_jws, strlen(a4_jws), &j, NULL), AC_EC_OK);
    assert_int_equal(j.alg, AC_SIG_ED25519);
    assert_null(j.kid);
    assert_null(j.typ);
    assert_int_equal(json_object_size(j.header), 1);
    assert_int_equal(j.payload_len, strlen(a4_payload));
    assert_memory_equal(j.payload, a4_payload, j.payload_len);
    assert_null(j.payload_json); /* not JSON */
    assert_int_equal(ac_jws_verify(&j, pub), AC_EC_OK);
    j.sig[10] ^= 0x04;
    assert_int_equal(ac_jws_verify(&j, pub), AC_EC_JWS_BAD_SIGNATURE);
    ac_jws_clear(&j);

    char bad[sizeof a4_jws];
    memcpy(bad, a4_jws, sizeof a4_jws);
    bad[25] = bad[25] == 'A' ? 'B' : 'A'; /* inside the payload */
    assert_int_equal(ac_jws_parse(bad, strlen(bad), &j, NULL), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&j, pub), AC_EC_JWS_BAD_SIGNATURE);
    ac_jws_clear(&j);

    /* another Ed25519 key does not verify it */
    EVP_PKEY *other = ac_sig_keygen(AC_SIG_ED25519);
    assert_non_null(other);
    assert_int_equal(ac_jws_parse(a4_jws, strlen(a4_jws), &j, NULL), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&j, other), AC_EC_JWS_BAD_SIGNATURE);
    ac_jws_clear(&j);
    EVP_PKEY_free(other);
    EVP_PKEY_free(pub);
}

/* RFC 7638 §3.1: RSA is not supported, so its example key is refused, not thumbprinted */
static void rfc7638_rsa_rejected(void **s)
{
    (void)s;
    EVP_PKEY *k = NULL;
    assert_int_equal(ac_jwk_import_public_text(rfc7638_rsa, strlen(rfc7638_rsa), &k, NULL),
                     AC_EC_JWK_INVALID);
    assert_null(k);
    assert_int_equal(ac_jwk_import_private_text(rfc7638_rsa, strlen(rfc7638_rsa), &k, NULL),
                     AC_EC_JWK_INVALID);
    assert_null(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a1_private_key),
        cmocka_unit_test(a2_public_key),
        cmocka_unit_test(a3_thumbprint_vector),
        cmocka_unit_test(a4_sign),
        cmocka_unit_test(a5_verify),
        cmocka_unit_test(rfc7638_rsa_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
