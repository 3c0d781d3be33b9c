/* Bindings and revocations (protocol/binding.h): real keys, real JWS (ac_jws_sign). A valid
 * document round-trips field by field and verifies with the user key; every payload member and
 * header member, missing, of the wrong type or malformed, is refused with its code; the time
 * checks; revocations likewise. */
#include "tests/support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/b64.h"
#include "protocol/binding.h"
#include "tests/support/identity.h"

#define IAT 1780000000LL
#define EXP (IAT + 30 * 86400LL)

static EVP_PKEY *user_key, *agent_key;

static int setup(void **st)
{
    (void)st;
    user_key = ac_sig_keygen(AC_SIG_ED25519);
    agent_key = ac_sig_keygen(AC_SIG_ES256);
    return user_key && agent_key ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    EVP_PKEY_free(user_key);
    EVP_PKEY_free(agent_key);
    return 0;
}

static json_t *base(void)
{
    return ac_test_binding_payload("b-1", "alice", "agent-7", agent_key, IAT, EXP);
}

/* Sign payload as a binding and parse it; returns the code (doc cleared afterwards). */
static enum ac_ec parse_payload(const json_t *payload)
{
    char *jws = ac_test_sign_doc(user_key, AC_BINDING_TYP, payload, NULL);
    struct ac_binding_doc d;
    const char *detail = NULL;
    enum ac_ec ec = ac_binding_parse(jws, strlen(jws), &d, &detail);
    if (ec != AC_EC_OK) {
        assert_non_null(detail);  /* every refusal says why */
        assert_null(d.agent_key); /* cleared */
    }
    ac_binding_clear(&d);
    free(jws);
    return ec;
}

static void roundtrip_one(enum ac_sig_alg ualg, enum ac_sig_alg aalg)
{
    EVP_PKEY *u = ac_sig_keygen(ualg), *a = ac_sig_keygen(aalg);
    json_t *p = ac_test_binding_payload("bind.1:x-y_z", "alice", "agent-7", a, IAT, EXP);
    char *jws = ac_test_sign_doc(u, AC_BINDING_TYP, p, NULL);
    struct ac_binding_doc d;
    assert_int_equal(ac_binding_parse(jws, strlen(jws), &d, NULL), AC_EC_OK);
    assert_string_equal(d.id, "bind.1:x-y_z");
    assert_string_equal(d.user_id, "alice");
    assert_string_equal(d.agent_id, "agent-7");
    assert_string_equal(d.user_kid, ac_test_kid(u));
    assert_string_equal(d.agent_kid, ac_test_kid(a));
    assert_int_equal(EVP_PKEY_eq(d.agent_key, a), 1);
    assert_string_equal(d.software, AC_TEST_SW);
    assert_string_equal(d.model, AC_TEST_MODEL);
    assert_string_equal(d.environment, AC_TEST_ENV);
    uint8_t want[AC_RUNTIME_DIGEST_LEN];
    assert_int_equal(ac_runtime_digest(AC_TEST_SW, AC_TEST_MODEL, AC_TEST_ENV, want), AC_EC_OK);
    assert_memory_equal(d.runtime_digest, want, sizeof want);
    assert_int_equal(d.max_autonomy, 3);
    assert_int_equal(d.iat, IAT);
    assert_int_equal(d.nbf, IAT); /* absent: iat */
    assert_int_equal(d.has_nbf, 0);
    assert_int_equal(d.exp, EXP);
    assert_int_equal(d.jws.alg, ualg);
    /* the signature verifies with the user key, and not with the agent key */
    assert_int_equal(ac_jws_verify(&d.jws, u), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&d.jws, a), AC_EC_JWS_BAD_SIGNATURE);
    ac_binding_clear(&d);
    ac_binding_clear(&d); /* harmless twice */
    free(jws);
    json_decref(p);
    EVP_PKEY_free(u);
    EVP_PKEY_free(a);
}

static void roundtrip(void **st)
{
    (void)st;
    roundtrip_one(AC_SIG_ED25519, AC_SIG_ED25519);
    roundtrip_one(AC_SIG_ED25519, AC_SIG_ES256);
    roundtrip_one(AC_SIG_ES256, AC_SIG_ED25519);
    roundtrip_one(AC_SIG_ES256, AC_SIG_ES256);
}

/* A payload member set to a value (json_null() stands for "delete it"), expecting `want`. */
static void expect_member(const char *name, json_t *value, enum ac_ec want)
{
    json_t *p = base();
    if (json_is_null(value))
        json_object_del(p, name);
    else
        json_object_set(p, name, value);
    enum ac_ec got = parse_payload(p);
    if (got != want) {
        char *v = json_dumps(value, JSON_ENCODE_ANY);
        fail_msg("%s = %s: expected %s, got %s", name, v, ac_ec_code(want), ac_ec_code(got));
    }
    json_decref(value);
    json_decref(p);
}

#define BI AC_EC_BINDING_INVALID

static void top_level_members(void **st)
{
    (void)st;
    json_t *p = base();
    assert_int_equal(parse_payload(p), AC_EC_OK);
    json_decref(p);
    const char *required[] = {"ver",     "id",           "iss", "sub", "cnf",
                              "runtime", "max_autonomy", "iat", "exp"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        expect_member(required[i], json_null(), BI);
    /* unknown members */
    expect_member("aud", json_string("x"), BI);
    expect_member("Id", json_string("b-1"), BI);
    /* ver */
    expect_member("ver", json_integer(2), BI);
    expect_member("ver", json_integer(0), BI);
    expect_member("ver", json_string("1"), BI);
    expect_member("ver", json_real(1.0), BI);
    expect_member("ver", json_true(), BI);
    /* ids */
    const char *ids[] = {"id", "iss", "sub"};
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    for (size_t i = 0; i < 3; i++) {
        expect_member(ids[i], json_string(""), BI);
        expect_member(ids[i], json_string("has space"), BI);
        expect_member(ids[i], json_string("slash/no"), BI);
        expect_member(ids[i], json_string(long_id), BI);
        expect_member(ids[i], json_integer(5), BI);
        expect_member(ids[i], json_null(), BI);
        expect_member(ids[i], json_string(long_id + 1), AC_EC_OK); /* 64 is fine */
    }
    /* max_autonomy */
    const char *levels_bad[] = {"L6", "l1", "L", "L01", "1", "", "L-1"};
    for (size_t i = 0; i < sizeof levels_bad / sizeof *levels_bad; i++)
        expect_member("max_autonomy", json_string(levels_bad[i]), BI);
    expect_member("max_autonomy", json_integer(3), BI);
    expect_member("max_autonomy", json_string("L0"), AC_EC_OK);
    expect_member("max_autonomy", json_string("L5"), AC_EC_OK);
}

static void times(void **st)
{
    (void)st;
    const char *t[] = {"iat", "exp", "nbf"};
    for (size_t i = 0; i < 3; i++) {
        expect_member(t[i], json_string("1780000000"), BI);
        expect_member(t[i], json_real((double)IAT + 1), BI);
        expect_member(t[i], json_integer(0), BI);
        expect_member(t[i], json_integer(-1), BI);
        expect_member(t[i], json_integer(AC_BINDING_TIME_MAX + 1), BI);
    }
    expect_member("exp", json_integer(IAT), BI);     /* exp must be after iat */
    expect_member("exp", json_integer(IAT - 1), BI); /* before iat */
    expect_member("exp", json_integer(IAT + AC_BINDING_MAX_LIFETIME), AC_EC_OK);
    expect_member("exp", json_integer(IAT + AC_BINDING_MAX_LIFETIME + 1), BI);
    expect_member("nbf", json_integer(IAT - 1), BI); /* before iat */
    expect_member("nbf", json_integer(EXP), BI);     /* not before exp */
    expect_member("nbf", json_integer(IAT), AC_EC_OK);
    /* a valid nbf is kept */
    json_t *p = base();
    json_object_set_new(p, "nbf", json_integer(IAT + 60));
    char *jws = ac_test_sign_doc(user_key, AC_BINDING_TYP, p, NULL);
    struct ac_binding_doc d;
    assert_int_equal(ac_binding_parse(jws, strlen(jws), &d, NULL), AC_EC_OK);
    assert_int_equal(d.nbf, IAT + 60);
    assert_int_equal(d.has_nbf, 1);
    /* the clock at registration */
    const char *detail;
    assert_int_equal(ac_binding_check_time(&d, IAT, &detail), AC_EC_OK);
    assert_int_equal(ac_binding_check_time(&d, EXP - 1, &detail), AC_EC_OK);
    assert_int_equal(ac_binding_check_time(&d, EXP, &detail), AC_EC_BINDING_EXPIRED);
    assert_int_equal(ac_binding_check_time(&d, EXP + 100, &detail), AC_EC_BINDING_EXPIRED);
    assert_int_equal(ac_binding_check_time(&d, IAT - AC_BINDING_CLOCK_SKEW, &detail), AC_EC_OK);
    assert_int_equal(ac_binding_check_time(&d, IAT - AC_BINDING_CLOCK_SKEW - 1, &detail), BI);
    ac_binding_clear(&d);
    free(jws);
    json_decref(p);
}

/* cnf.jwk and runtime: nested members */
static void nested_members(void **st)
{
    (void)st;
    json_t *good_jwk = ac_jwk_export_public(agent_key);
    expect_member("cnf", json_string("x"), BI);
    expect_member("cnf", json_object(), BI);
    expect_member("cnf", json_pack("{s:O, s:s}", "jwk", good_jwk, "kid", "x"), BI);
    expect_member("cnf", json_pack("{s:s}", "jwk", "not-an-object"), BI);
    expect_member("cnf", json_pack("{s:O}", "jwk", good_jwk), AC_EC_OK);
    /* a bad jwk is jwk_invalid */
    expect_member("cnf",
                  json_pack("{s:{s:s, s:s, s:s}}", "jwk", "kty", "RSA", "n", "AQAB", "e", "AQAB"),
                  AC_EC_JWK_INVALID);
    expect_member("cnf", json_pack("{s:{s:s, s:s}}", "jwk", "kty", "OKP", "crv", "Ed25519"),
                  AC_EC_JWK_INVALID);
    json_t *priv = ac_jwk_export_private(agent_key); /* a private jwk ("d") is refused */
    assert_non_null(priv);
    expect_member("cnf", json_pack("{s:o}", "jwk", priv), AC_EC_JWK_INVALID);
    json_t *wrong_x = json_deep_copy(good_jwk);
    json_object_set_new(wrong_x, "x", json_string("AAAA"));
    expect_member("cnf", json_pack("{s:o}", "jwk", wrong_x), AC_EC_JWK_INVALID);
    json_decref(good_jwk);

    /* runtime */
    expect_member("runtime", json_string(AC_TEST_SW), BI);
    expect_member("runtime", json_pack("{s:s, s:s}", "software", AC_TEST_SW, "model", "m"), BI);
    expect_member("runtime",
                  json_pack("{s:s, s:s}", "software", AC_TEST_SW, "environment", AC_TEST_ENV), BI);
    expect_member("runtime", json_pack("{s:s, s:s}", "model", "m", "environment", AC_TEST_ENV), BI);
    expect_member("runtime",
                  json_pack("{s:s, s:s, s:s, s:s}", "software", AC_TEST_SW, "model", "m",
                            "environment", AC_TEST_ENV, "os", "linux"),
                  BI);
    const char *bad_digests[] = {
        "",
        "sha-256:",
        "sha-256:ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
        "sha-512:abababababababababababababababababababababababababababababababab",
        "sha-256:ababababababababababababababababababababababababababababababa",
        "abababababababababababababababababababababababababababababababab",
    };
    for (size_t i = 0; i < sizeof bad_digests / sizeof *bad_digests; i++) {
        expect_member("runtime",
                      json_pack("{s:s, s:s, s:s}", "software", bad_digests[i], "model", "m",
                                "environment", AC_TEST_ENV),
                      BI);
        expect_member("runtime",
                      json_pack("{s:s, s:s, s:s}", "software", AC_TEST_SW, "model", "m",
                                "environment", bad_digests[i]),
                      BI);
    }
    char long_model[AC_RUNTIME_MODEL_MAX + 2];
    memset(long_model, 'm', sizeof long_model - 1);
    long_model[sizeof long_model - 1] = 0;
    const char *bad_models[] = {"", "tab\there", "nl\n", "caf\xc3\xa9", long_model};
    for (size_t i = 0; i < sizeof bad_models / sizeof *bad_models; i++)
        expect_member("runtime",
                      json_pack("{s:s, s:s, s:s}", "software", AC_TEST_SW, "model", bad_models[i],
                                "environment", AC_TEST_ENV),
                      BI);
    expect_member("runtime",
                  json_pack("{s:s, s:i, s:s}", "software", AC_TEST_SW, "model", 5, "environment",
                            AC_TEST_ENV),
                  BI);
    expect_member("runtime",
                  json_pack("{s:s, s:s, s:s}", "software", AC_TEST_SW, "model", long_model + 1,
                            "environment", AC_TEST_ENV),
                  AC_EC_OK); /* 128 characters */
}

static char *b64u(const char *s)
{
    char *o = malloc(ac_b64_enc_len(strlen(s)));
    ac_b64_encode((const uint8_t *)s, strlen(s), o, 1);
    return o;
}

/* A JWS with the given header and payload texts and a (wrong) 64-byte signature. */
static char *raw_jws(const char *header, const char *payload)
{
    char *h = b64u(header), *p = b64u(payload);
    char *out = malloc(strlen(h) + strlen(p) + 100);
    sprintf(
        out, "%s.%s.%s", h, p,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    free(h);
    free(p);
    return out;
}

static enum ac_ec parse_text(const char *jws)
{
    struct ac_binding_doc d;
    enum ac_ec ec = ac_binding_parse(jws, strlen(jws), &d, NULL);
    ac_binding_clear(&d);
    return ec;
}

static void header_and_jws_layer(void **st)
{
    (void)st;
    json_t *p = base();
    char *text = json_dumps(p, JSON_COMPACT);
    const char *kid = ac_test_kid(user_key);
    char kidbuf[AC_JWK_THUMBPRINT_SIZE];
    strcpy(kidbuf, kid);
    /* typ missing, wrong, a revocation's */
    char *jws = ac_jws_sign(user_key, kidbuf, NULL, (const uint8_t *)text, strlen(text));
    assert_int_equal(parse_text(jws), BI);
    free(jws);
    jws = ac_test_sign_doc(user_key, "JWT", p, NULL);
    assert_int_equal(parse_text(jws), BI);
    free(jws);
    jws = ac_test_sign_doc(user_key, AC_REVOCATION_TYP, p, NULL);
    assert_int_equal(parse_text(jws), BI);
    free(jws);
    /* kid missing, not a thumbprint */
    jws = ac_jws_sign(user_key, NULL, AC_BINDING_TYP, (const uint8_t *)text, strlen(text));
    assert_int_equal(parse_text(jws), BI);
    free(jws);
    jws = ac_test_sign_doc(user_key, AC_BINDING_TYP, p, "alice-key-1");
    assert_int_equal(parse_text(jws), BI);
    free(jws);
    kidbuf[42] = '=';
    jws = ac_test_sign_doc(user_key, AC_BINDING_TYP, p, kidbuf);
    assert_int_equal(parse_text(jws), BI);
    free(jws);
    /* a payload that is not one json object: an array, duplicate members, not json */
    const char *payloads[] = {"[1,2]", "{\"ver\":1,\"ver\":1}", "not json", ""};
    for (size_t i = 0; i < 4; i++) {
        jws = ac_jws_sign(user_key, kid, AC_BINDING_TYP, (const uint8_t *)payloads[i],
                          strlen(payloads[i]));
        assert_int_equal(parse_text(jws), BI);
        free(jws);
    }
    /* the JWS layer's own codes */
    assert_int_equal(parse_text("garbage"), AC_EC_JWS_MALFORMED);
    assert_int_equal(parse_text(""), AC_EC_JWS_MALFORMED);
    assert_int_equal(parse_text("a.b"), AC_EC_JWS_MALFORMED);
    jws = raw_jws("{\"alg\":\"none\",\"typ\":\"agentclear-binding+jws\"}", text);
    assert_int_equal(parse_text(jws), AC_EC_JWS_ALG_UNSUPPORTED);
    free(jws);
    jws = raw_jws("{\"alg\":\"HS256\"}", text);
    assert_int_equal(parse_text(jws), AC_EC_JWS_ALG_UNSUPPORTED);
    free(jws);
    /* one byte of the payload changed: still parses, no longer verifies */
    jws = ac_test_sign_doc(user_key, AC_BINDING_TYP, p, NULL);
    char *dot = strchr(jws, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    struct ac_binding_doc d;
    enum ac_ec ec = ac_binding_parse(jws, strlen(jws), &d, NULL);
    if (ec == AC_EC_OK)
        assert_int_equal(ac_jws_verify(&d.jws, user_key), AC_EC_JWS_BAD_SIGNATURE);
    else
        assert_true(ec == BI || ec == AC_EC_JWS_MALFORMED);
    ac_binding_clear(&d);
    free(jws);
    free(text);
    json_decref(p);
}

static enum ac_ec parse_rev(const json_t *payload, const char *typ, struct ac_revocation_doc *d)
{
    char *jws = ac_test_sign_doc(user_key, typ, payload, NULL);
    const char *detail = NULL;
    enum ac_ec ec = ac_revocation_parse(jws, strlen(jws), d, &detail);
    if (ec != AC_EC_OK) assert_non_null(detail);
    free(jws);
    return ec;
}

static void revocations(void **st)
{
    (void)st;
    struct ac_revocation_doc d;
    json_t *p = ac_test_revocation_payload("b-1", "alice", IAT + 5);
    assert_int_equal(parse_rev(p, AC_REVOCATION_TYP, &d), AC_EC_OK);
    assert_string_equal(d.binding_id, "b-1");
    assert_string_equal(d.user_id, "alice");
    assert_string_equal(d.user_kid, ac_test_kid(user_key));
    assert_int_equal(d.iat, IAT + 5);
    assert_int_equal(ac_jws_verify(&d.jws, user_key), AC_EC_OK);
    ac_revocation_clear(&d);
    /* a binding's typ is not a revocation */
    assert_int_equal(parse_rev(p, AC_BINDING_TYP, &d), AC_EC_REVOCATION_INVALID);
    json_decref(p);
    const char *members[] = {"ver", "binding", "iss", "iat"};
    for (size_t i = 0; i < 4; i++) {
        p = ac_test_revocation_payload("b-1", "alice", IAT);
        json_object_del(p, members[i]);
        assert_int_equal(parse_rev(p, AC_REVOCATION_TYP, &d), AC_EC_REVOCATION_INVALID);
        json_object_set_new(p, members[i], json_real(1.5));
        assert_int_equal(parse_rev(p, AC_REVOCATION_TYP, &d), AC_EC_REVOCATION_INVALID);
        json_decref(p);
    }
    struct {
        const char *k;
        json_t *v;
    } bad[] = {
        {"ver", json_integer(2)},        {"binding", json_string("")},
        {"binding", json_string("a b")}, {"iss", json_string("x/y")},
        {"iat", json_integer(0)},        {"iat", json_string("1")},
        {"reason", json_string("lost")},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = ac_test_revocation_payload("b-1", "alice", IAT);
        json_object_set_new(p, bad[i].k, bad[i].v);
        if (parse_rev(p, AC_REVOCATION_TYP, &d) != AC_EC_REVOCATION_INVALID)
            fail_msg("revocation with bad %s accepted", bad[i].k);
        json_decref(p);
    }
    /* no kid */
    const char pl[] = "{\"ver\":1,\"binding\":\"b-1\",\"iss\":\"alice\",\"iat\":1780000000}";
    char *jws = ac_jws_sign(user_key, NULL, AC_REVOCATION_TYP, (const uint8_t *)pl, strlen(pl));
    assert_int_equal(ac_revocation_parse(jws, strlen(jws), &d, NULL), AC_EC_REVOCATION_INVALID);
    free(jws);
    assert_int_equal(ac_revocation_parse("x.y.z", 5, &d, NULL), AC_EC_JWS_MALFORMED);
}

static void helpers(void **st)
{
    (void)st;
    assert_true(ac_keyid_valid(ac_test_kid(user_key)));
    assert_false(ac_keyid_valid(NULL));
    assert_false(ac_keyid_valid(""));
    assert_false(ac_keyid_valid("abc"));
    char k[AC_JWK_THUMBPRINT_SIZE + 1];
    memset(k, 'A', AC_JWK_THUMBPRINT_LEN + 1);
    k[AC_JWK_THUMBPRINT_LEN + 1] = 0;
    assert_false(ac_keyid_valid(k)); /* 44 */
    k[AC_JWK_THUMBPRINT_LEN] = 0;
    assert_true(ac_keyid_valid(k)); /* 43 */
    k[3] = '+';
    assert_false(ac_keyid_valid(k));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(top_level_members),
        cmocka_unit_test(times),
        cmocka_unit_test(nested_members),
        cmocka_unit_test(header_and_jws_layer),
        cmocka_unit_test(revocations),
        cmocka_unit_test(helpers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
