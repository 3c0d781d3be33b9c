/* Tab vouchers (protocol/voucher.h) against the npm package jose, both ways:
 * - jose (sign-jws.mjs) signs voucher payloads with Ed25519 (EdDSA) and P-256 (ES256) agent keys;
 *   ac_voucher_parse and ac_voucher_verify -- what the server runs on POST /v1/tabs/{id}/settle
 *   before the sequencer orders the voucher -- accept them with the signing key and refuse them
 *   with another key, for another currency, and with another typ;
 * - ac_voucher_sign output verifies with jose (verify-jws.mjs), and not with another key.
 * tests/e2e/test_http_tabs.c settles a jose-signed voucher through the server when AC_NPM_DIR is
 * set. Exit 77 without AC_NPM_DIR (run by hand), failure with AC_REQUIRE_NPM=1 (ops/test). */
#include "tests/support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol/jose.h"
#include "protocol/sig.h"
#include "protocol/voucher.h"
#include "tests/support/npm.h"

/* jose signs payload p (stolen) with key under typ; the compact JWS (malloc'd). */
static char *jose_sign(EVP_PKEY *key, const char *typ, json_t *p)
{
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(key, kid), 0);
    json_t *in = json_pack("{s:o, s:{s:s, s:s}, s:o}", "jwk", ac_jwk_export_private(key), "header",
                           "kid", kid, "typ", typ, "payload", p);
    int st = -1;
    json_t *out = ac_npm_json("sign-jws.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    assert_int_equal(st, 0);
    char *jws = strdup(json_string_value(json_object_get(out, "jws")));
    json_decref(out);
    assert_non_null(jws);
    return jws;
}

static void both_ways(enum ac_sig_alg alg)
{
    EVP_PKEY *agent = ac_sig_keygen(alg), *other = ac_sig_keygen(alg);
    assert_non_null(agent);
    assert_non_null(other);
    /* jose signs, we accept */
    char *jws = jose_sign(agent, AC_VOUCHER_TYP, ac_voucher_payload("tab-7", 42, "CNY", 1234, 2));
    struct ac_voucher v;
    struct ac_jws j;
    assert_int_equal(ac_voucher_parse(jws, strlen(jws), "CNY", 2, &v, &j, NULL), AC_EC_OK);
    assert_string_equal(v.tab, "tab-7");
    assert_int_equal(v.seq, 42);
    assert_int_equal(v.cumulative, 1234);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(agent, kid), 0);
    assert_string_equal(v.kid, kid);
    assert_int_equal(ac_voucher_verify(&j, agent), AC_EC_OK);
    assert_int_equal(ac_voucher_verify(&j, other), AC_EC_VOUCHER_SIGNATURE_INVALID);
    ac_jws_clear(&j);
    assert_int_equal(ac_voucher_parse(jws, strlen(jws), "USD", 2, &v, NULL, NULL),
                     AC_EC_VOUCHER_CURRENCY_MISMATCH);
    free(jws);
    jws = jose_sign(agent, "agentclear-mandate+jws", ac_voucher_payload("tab-7", 1, "CNY", 1, 2));
    assert_int_equal(ac_voucher_parse(jws, strlen(jws), "CNY", 2, &v, NULL, NULL),
                     AC_EC_VOUCHER_INVALID);
    free(jws);
    /* we sign, jose verifies */
    char *ours = ac_voucher_sign(agent, "tab-8", 3, "CNY", 500, 2);
    assert_non_null(ours);
    for (int k = 0; k < 2; k++) {
        json_t *in =
            json_pack("{s:o, s:s}", "jwk", ac_jwk_export_public(k ? other : agent), "jws", ours);
        int st = -1;
        json_t *out = ac_npm_json("verify-jws.mjs", in, &st);
        json_decref(in);
        if (k == 0) {
            assert_int_equal(st, 0);
            assert_non_null(out);
            assert_true(json_is_true(json_object_get(out, "verified")));
            json_t *p =
                json_loads(json_string_value(json_object_get(out, "payload_text")), 0, NULL);
            assert_string_equal(json_string_value(json_object_get(p, "tab")), "tab-8");
            json_decref(p);
        } else {
            assert_true(st != 0);
        }
        json_decref(out);
    }
    free(ours);
    EVP_PKEY_free(agent);
    EVP_PKEY_free(other);
}

static void ed25519(void **st)
{
    (void)st;
    both_ways(AC_SIG_ED25519);
}

static void es256(void **st)
{
    (void)st;
    both_ways(AC_SIG_ES256);
}

int main(void)
{
    ac_npm_dir();
    const struct CMUnitTest tests[] = {cmocka_unit_test(ed25519), cmocka_unit_test(es256)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
