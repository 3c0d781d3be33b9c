/* Step-up challenges and confirmations (protocol/stepup.h): the canonical challenge text, the
 * payment digest (recomputed here with OpenSSL from the expected canonical text), strict parsing,
 * and checking a confirmation signed with real keys against its challenge at the boundaries
 * (the exp second, the iat skew window, a one-unit change of the payment). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocol/b64.h"
#include "protocol/jose.h"
#include "protocol/stepup.h"

#define IAT 1741147200
#define EXP (IAT + 600)

static struct ac_stepup_challenge challenge(void)
{
    struct ac_stepup_challenge c;
    memset(&c, 0, sizeof c);
    strcpy(c.authorization, "auth-1");
    strcpy(c.payer, "alice");
    strcpy(c.agent, "agent-x");
    strcpy(c.payee, "shop-1");
    strcpy(c.mandate, "m-1");
    c.op = AC_OP_PURCHASE;
    strcpy(c.asset, "CNY");
    c.scale = 2;
    c.amount = 123450;
    strcpy(c.purpose, "Coffee beans \xe5\x92\x96\xe5\x95\xa1 \"1kg\"");
    strcpy(c.order_digest, "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
    uint8_t raw[AC_STEPUP_NONCE_BYTES];
    for (int i = 0; i < AC_STEPUP_NONCE_BYTES; i++)
        raw[i] = (uint8_t)(i * 7 + 1);
    ac_stepup_nonce_encode(raw, c.nonce);
    c.iat = IAT;
    c.exp = EXP;
    return c;
}

/* The canonical payment object of challenge(), written out by hand: members sorted, compact,
 * non-ASCII as raw UTF-8, '"' escaped. */
static const char *PAYMENT_TEXT =
    "{\"agent\":\"agent-x\",\"amount\":{\"currency\":\"CNY\",\"value\":\"1234.50\"},"
    "\"mandate\":\"m-1\",\"op\":\"purchase\","
    "\"order_digest\":\"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\","
    "\"payee\":\"shop-1\",\"payer\":\"alice\","
    "\"purpose\":\"Coffee beans \xe5\x92\x96\xe5\x95\xa1 \\\"1kg\\\"\"}";

static void sha256_b64u(const char *text, char out[AC_STEPUP_DIGEST_LEN + 1])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    assert_int_equal(EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
    ac_b64_encode(md, 32, out, 1);
}

static void test_challenge_render(void **state)
{
    (void)state;
    struct ac_stepup_challenge c = challenge();
    assert_true(ac_stepup_challenge_valid(&c));
    char want_digest[AC_STEPUP_DIGEST_LEN + 1], digest[AC_STEPUP_DIGEST_LEN + 1];
    sha256_b64u(PAYMENT_TEXT, want_digest);
    assert_int_equal(ac_stepup_payment_digest(&c, digest), 0);
    assert_string_equal(digest, want_digest);

    char want[2048];
    snprintf(want, sizeof want,
             "{\"authorization\":\"auth-1\",\"exp\":%d,\"iat\":%d,\"nonce\":\"%s\","
             "\"payment\":%s,\"payment_digest\":\"%s\",\"ver\":1}",
             EXP, IAT, c.nonce, PAYMENT_TEXT, want_digest);
    char *text = ac_stepup_challenge_render(&c);
    assert_non_null(text);
    assert_string_equal(text, want);

    /* parse gives the same challenge back */
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(j);
    struct ac_stepup_challenge back;
    struct ac_doc_err err;
    assert_int_equal(ac_stepup_challenge_parse(j, &back, &err), AC_EC_OK);
    assert_memory_equal(&back, &c, sizeof c);
    json_decref(j);
    free(text);

    /* optional texts are left out when empty; scale 0 renders no decimals */
    memset(c.purpose, 0, sizeof c.purpose);
    memset(c.order_digest, 0, sizeof c.order_digest);
    c.scale = 0;
    c.amount = 7;
    strcpy(c.asset, "TOKENS");
    j = ac_stepup_challenge_to_json(&c);
    assert_non_null(j);
    json_t *p = json_object_get(j, "payment");
    assert_null(json_object_get(p, "purpose"));
    assert_null(json_object_get(p, "order_digest"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "amount"), "value")),
                        "7");
    assert_int_equal(ac_stepup_challenge_parse(j, &back, &err), AC_EC_OK);
    assert_memory_equal(&back, &c, sizeof c);
    json_decref(j);

    /* one base unit more is another payment */
    c = challenge();
    c.amount += 1;
    assert_int_equal(ac_stepup_payment_digest(&c, digest), 0);
    assert_string_not_equal(digest, want_digest);
}

static void test_challenge_invalid_fields(void **state)
{
    (void)state;
    struct ac_stepup_challenge c;
    char d[AC_STEPUP_DIGEST_LEN + 1];
#define BAD(stmt)                                                                                  \
    do {                                                                                           \
        c = challenge();                                                                           \
        stmt;                                                                                      \
        assert_false(ac_stepup_challenge_valid(&c));                                               \
        assert_null(ac_stepup_challenge_to_json(&c));                                              \
        assert_null(ac_stepup_challenge_render(&c));                                               \
        assert_int_equal(ac_stepup_payment_digest(&c, d), -1);                                     \
        assert_string_equal(d, "");                                                                \
    } while (0)
    BAD(c.authorization[0] = '\0');
    BAD(strcpy(c.payer, "a b"));
    BAD(strcpy(c.agent, ""));
    BAD(strcpy(c.payee, "x/y"));
    BAD(c.mandate[0] = '\0');
    BAD(c.op = (enum ac_op)0);
    BAD(c.op = (enum ac_op)3);
    BAD(strcpy(c.asset, "cny"));
    BAD(c.scale = AC_SCALE_MAX + 1);
    BAD(c.amount = 0);
    BAD(c.amount = -5);
    BAD(strcpy(c.purpose, "line\nbreak"));
    BAD(strcpy(c.purpose, "bad \xff utf-8"));
    BAD(strcpy(c.purpose, "overlong \xc0\xaf"));
    BAD(strcpy(c.purpose, "surrogate \xed\xa0\x80"));
    BAD(strcpy(c.purpose, "cut \xe5\x92"));
    BAD(memset(c.purpose, 'x', sizeof c.purpose));
    BAD(strcpy(c.order_digest, "has space"));
    BAD(strcpy(c.order_digest, "caf\xc3\xa9"));
    BAD(c.nonce[42] = '\0');
    BAD(c.nonce[0] = '+');
    BAD(c.nonce[42] = 'B'); /* 43 characters carry 258 bits: the last 2 must be 0 ('B' is 000001) */
    BAD(c.iat = 0);
    BAD(c.exp = c.iat);
    BAD(c.exp = AC_MANDATE_TIME_MAX + 1);
#undef BAD
    c = challenge();
    assert_false(ac_stepup_challenge_valid(NULL));
}

/* a challenge object with one member changed (path "x" or "payment/x" or "payment/amount/x";
 * value JSON text, NULL deletes) must be refused with that pointer */
static void test_challenge_parse_errors(void **state)
{
    (void)state;
    struct ac_stepup_challenge c = challenge();
    static const struct {
        const char *path, *value, *pointer;
    } rows[] = {
        {"ver", "2", "/ver"},
        {"ver", NULL, "/ver"},
        {"authorization", "\"a b\"", "/authorization"},
        {"iat", "0", "/iat"},
        {"exp", "1741147200", "/exp"},
        {"nonce", "\"short\"", "/nonce"},
        {"nonce", "7", "/nonce"},
        {"payment", NULL, "/payment"},
        {"payment", "[]", "/payment"},
        {"extra", "true", "/extra"},
        {"payment_digest", NULL, "/payment_digest"},
        {"payment_digest", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", "/payment_digest"},
        {"payment/agent", NULL, "/payment/agent"},
        {"payment/op", "\"refund\"", "/payment/op"},
        {"payment/payee", "\"\"", "/payment/payee"},
        {"payment/payer", "1", "/payment/payer"},
        {"payment/mandate", NULL, "/payment/mandate"},
        {"payment/purpose", "\"tab\\there\"", "/payment/purpose"},
        {"payment/purpose", "\"\"", "/payment/purpose"},
        {"payment/order_digest", "\"a b\"", "/payment/order_digest"},
        {"payment/tip", "\"1\"", "/payment/tip"},
        {"payment/amount", "\"12.34\"", "/payment/amount"},
        {"payment/amount/value", "\"01234.50\"", "/payment/amount/value"},
        {"payment/amount/value", "\"0.00\"", "/payment/amount/value"},
        {"payment/amount/value", "\"-1\"", "/payment/amount/value"},
        {"payment/amount/value", "\"1.0000000000000000000\"", "/payment/amount/value"},
        {"payment/amount/value", "1234.5", "/payment/amount/value"},
        {"payment/amount/currency", "\"cny\"", "/payment/amount/currency"},
        {"payment/amount/rate", "\"1\"", "/payment/amount/rate"},
        /* a consistent change of the payment no longer matches the stated digest */
        {"payment/amount/value", "\"1234.51\"", "/payment_digest"},
        {"payment/payee", "\"shop-2\"", "/payment_digest"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *j = ac_stepup_challenge_to_json(&c), *obj = j;
        char path[64];
        snprintf(path, sizeof path, "%s", rows[i].path);
        char *key = path, *slash;
        while ((slash = strchr(key, '/')) != NULL) {
            *slash = '\0';
            obj = json_object_get(obj, key);
            assert_non_null(obj);
            key = slash + 1;
        }
        if (rows[i].value) {
            json_error_t e;
            json_t *v = json_loads(rows[i].value, JSON_DECODE_ANY, &e);
            assert_non_null(v);
            json_object_set_new(obj, key, v);
        } else {
            json_object_del(obj, key);
        }
        struct ac_stepup_challenge out;
        struct ac_doc_err err;
        memset(&out, 0x77, sizeof out);
        if (ac_stepup_challenge_parse(j, &out, &err) != AC_EC_JSON_SCHEMA ||
            strcmp(err.pointer, rows[i].pointer) != 0)
            fail_msg("%s: pointer %s (%s), want %s", rows[i].path, err.pointer, err.detail,
                     rows[i].pointer);
        assert_int_equal(out.amount, 0);
        assert_int_equal(out.authorization[0], 0);
        json_decref(j);
    }
}

/* ---- confirmations ----------------------------------------------------------------------------
 */

static struct ac_stepup_confirmation answer(const struct ac_stepup_challenge *c,
                                            enum ac_stepup_decision d, int64_t iat)
{
    struct ac_stepup_confirmation a;
    memset(&a, 0, sizeof a);
    strcpy(a.authorization, c->authorization);
    strcpy(a.nonce, c->nonce);
    assert_int_equal(ac_stepup_payment_digest(c, a.payment_digest), 0);
    a.decision = d;
    a.iat = iat;
    return a;
}

/* the server's path for POST /v1/authorizations/{id}/confirm */
static enum ac_ec receive(const char *compact, EVP_PKEY *payer_key,
                          const struct ac_stepup_challenge *ch, int64_t now_us,
                          enum ac_stepup_decision *decision)
{
    struct ac_jws j;
    struct ac_stepup_confirmation conf;
    const char *detail = NULL;
    enum ac_ec rc = ac_jws_parse(compact, strlen(compact), &j, &detail);
    if (rc == AC_EC_OK) rc = ac_stepup_confirmation_jws_check(&j, &detail);
    if (rc == AC_EC_OK) rc = ac_jws_verify(&j, payer_key);
    if (rc == AC_EC_OK) rc = ac_stepup_confirmation_parse(j.payload_json, &conf, NULL);
    if (rc == AC_EC_OK) rc = ac_stepup_confirmation_check(&conf, ch, now_us, &detail);
    if (rc == AC_EC_OK) *decision = conf.decision;
    ac_jws_clear(&j);
    return rc;
}

static char *sign_answer(EVP_PKEY *key, const char *typ, const struct ac_stepup_confirmation *a)
{
    json_t *p = ac_stepup_confirmation_to_json(a);
    assert_non_null(p);
    char *text = ac_doc_canonical(p);
    json_decref(p);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(key, kid), 0);
    char *jws = ac_jws_sign(key, kid, typ, (const uint8_t *)text, strlen(text));
    assert_non_null(jws);
    free(text);
    return jws;
}

static void test_confirmation_round_trip(void **state)
{
    (void)state;
    const enum ac_sig_alg algs[] = {AC_SIG_ED25519, AC_SIG_ES256};
    struct ac_stepup_challenge ch = challenge();
    for (int a = 0; a < 2; a++) {
        EVP_PKEY *payer = ac_sig_keygen(algs[a]), *other = ac_sig_keygen(algs[a]);
        enum ac_stepup_decision got = 0;
        for (int d = AC_STEPUP_CONFIRM; d <= AC_STEPUP_DECLINE; d++) {
            struct ac_stepup_confirmation ans = answer(&ch, (enum ac_stepup_decision)d, IAT + 30);
            char *jws = sign_answer(payer, AC_CONFIRMATION_TYP, &ans);
            assert_int_equal(receive(jws, payer, &ch, (IAT + 31) * 1000000LL, &got), AC_EC_OK);
            assert_int_equal(got, d);
            /* someone else's key */
            assert_int_equal(receive(jws, other, &ch, (IAT + 31) * 1000000LL, &got),
                             AC_EC_JWS_BAD_SIGNATURE);
            free(jws);
            /* the same payload under another document type is refused (domain separation) */
            jws = sign_answer(payer, AC_MANDATE_TYP, &ans);
            assert_int_equal(receive(jws, payer, &ch, (IAT + 31) * 1000000LL, &got),
                             AC_EC_CONFIRMATION_INVALID);
            free(jws);
        }
        EVP_PKEY_free(payer);
        EVP_PKEY_free(other);
    }
}

static void test_confirmation_check(void **state)
{
    (void)state;
    struct ac_stepup_challenge ch = challenge(), other = challenge();
    other.amount += 1; /* the same authorization and nonce, one base unit more */
    const int64_t S = 1000000;
    struct ac_stepup_confirmation ok = answer(&ch, AC_STEPUP_CONFIRM, IAT + 10);
    struct ac_stepup_confirmation wrong_id = ok, wrong_nonce = ok, wrong_pay = ok,
                                  old = answer(&ch, AC_STEPUP_CONFIRM, IAT - AC_STEPUP_SKEW_S),
                                  too_old =
                                      answer(&ch, AC_STEPUP_CONFIRM, IAT - AC_STEPUP_SKEW_S - 1),
                                  future =
                                      answer(&ch, AC_STEPUP_CONFIRM, IAT + 100 + AC_STEPUP_SKEW_S),
                                  too_future =
                                      answer(&ch, AC_STEPUP_CONFIRM, IAT + 101 + AC_STEPUP_SKEW_S),
                                  decline = answer(&ch, AC_STEPUP_DECLINE, IAT + 10);
    strcpy(wrong_id.authorization, "auth-2");
    wrong_nonce.nonce[10] = wrong_nonce.nonce[10] == 'a' ? 'b' : 'a';
    assert_int_equal(ac_stepup_payment_digest(&other, wrong_pay.payment_digest), 0);

    static const char *names[] = {"ok",           "decline",         "other authorization",
                                  "other nonce",  "other payment",   "before exp",
                                  "at exp",       "iat at -skew",    "iat beyond -skew",
                                  "iat at +skew", "iat beyond +skew"};
    const struct {
        const struct ac_stepup_confirmation *c;
        int64_t now_us;
        enum ac_ec want;
    } rows[] = {
        {&ok, (IAT + 100) * S, AC_EC_OK},
        {&decline, (IAT + 100) * S, AC_EC_OK},
        {&wrong_id, (IAT + 100) * S, AC_EC_AUTHORIZATION_MISMATCH},
        {&wrong_nonce, (IAT + 100) * S, AC_EC_AUTHORIZATION_MISMATCH},
        {&wrong_pay, (IAT + 100) * S, AC_EC_AUTHORIZATION_MISMATCH},
        {&ok, EXP * S - 1, AC_EC_OK},
        {&ok, EXP * S, AC_EC_AUTHORIZATION_EXPIRED},
        {&old, (IAT + 100) * S, AC_EC_OK},
        {&too_old, (IAT + 100) * S, AC_EC_CONFIRMATION_INVALID},
        {&future, (IAT + 100) * S, AC_EC_OK},
        {&too_future, (IAT + 100) * S, AC_EC_CONFIRMATION_INVALID},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *detail = NULL;
        enum ac_ec rc = ac_stepup_confirmation_check(rows[i].c, &ch, rows[i].now_us, &detail);
        if (rc != rows[i].want)
            fail_msg("%s: %s, want %s", names[i], ac_ec_code(rc), ac_ec_code(rows[i].want));
        if (rc != AC_EC_OK) assert_non_null(detail);
    }
    /* a mismatch is reported even after expiry: it is not this payment at all */
    assert_int_equal(ac_stepup_confirmation_check(&wrong_pay, &ch, EXP * S, NULL),
                     AC_EC_AUTHORIZATION_MISMATCH);
    /* the confirmation for the other payment fits the other payment */
    assert_int_equal(ac_stepup_confirmation_check(&wrong_pay, &other, (IAT + 1) * S, NULL),
                     AC_EC_OK);
}

static void test_confirmation_parse_errors(void **state)
{
    (void)state;
    struct ac_stepup_challenge ch = challenge();
    struct ac_stepup_confirmation a = answer(&ch, AC_STEPUP_CONFIRM, IAT + 1), out;
    struct ac_doc_err err;
    json_t *base = ac_stepup_confirmation_to_json(&a);
    assert_non_null(base);
    assert_int_equal(ac_stepup_confirmation_parse(base, &out, &err), AC_EC_OK);
    assert_memory_equal(&out, &a, sizeof a);

    static const struct {
        const char *member, *value;
    } rows[] = {
        {"ver", NULL},
        {"ver", "2"},
        {"authorization", NULL},
        {"authorization", "\"a b\""},
        {"nonce", NULL},
        {"nonce", "\"AAAA\""},
        {"nonce", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\""},
        {"payment_digest", NULL},
        {"payment_digest", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""},
        {"decision", NULL},
        {"decision", "\"yes\""},
        {"decision", "\"Confirm\""},
        {"decision", "true"},
        {"iat", NULL},
        {"iat", "0"},
        {"iat", "\"1741147201\""},
        {"amount", "\"1.00\""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *j = json_deep_copy(base);
        if (rows[i].value) {
            json_error_t e;
            json_object_set_new(j, rows[i].member, json_loads(rows[i].value, JSON_DECODE_ANY, &e));
        } else {
            json_object_del(j, rows[i].member);
        }
        memset(&out, 0x41, sizeof out);
        char want[64];
        snprintf(want, sizeof want, "/%s", rows[i].member);
        if (ac_stepup_confirmation_parse(j, &out, &err) != AC_EC_CONFIRMATION_INVALID ||
            strcmp(err.pointer, want) != 0)
            fail_msg("%s: pointer %s", rows[i].member, err.pointer);
        assert_int_equal(out.iat, 0);
        json_decref(j);
    }
    json_decref(base);
    assert_int_equal(ac_stepup_confirmation_parse(NULL, &out, &err), AC_EC_CONFIRMATION_INVALID);

    /* to_json refuses what parse would refuse */
    struct ac_stepup_confirmation b = a;
    b.decision = (enum ac_stepup_decision)0;
    assert_null(ac_stepup_confirmation_to_json(&b));
    b = a;
    b.nonce[3] = '*';
    assert_null(ac_stepup_confirmation_to_json(&b));
    b = a;
    b.iat = 0;
    assert_null(ac_stepup_confirmation_to_json(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge_render),
        cmocka_unit_test(test_challenge_invalid_fields),
        cmocka_unit_test(test_challenge_parse_errors),
        cmocka_unit_test(test_confirmation_round_trip),
        cmocka_unit_test(test_confirmation_check),
        cmocka_unit_test(test_confirmation_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
