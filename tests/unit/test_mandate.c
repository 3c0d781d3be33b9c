/* Mandates and mandate revocations (protocol/mandate.h): strict payload validation with a JSON
 * pointer for every malformed or missing member, the JWS header rules, and the whole path from a
 * document signed with ac_jws_sign by real Ed25519 and P-256 keys to a parsed mandate. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jdoc.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"
#include "protocol/sig.h"

static const char *BASE =
    "{\"ver\":1,\"id\":\"m-1\",\"iss\":\"alice\",\"bindings\":[\"b-1\"],\"agents\":[\"agent-x\"],"
    "\"ops\":[\"purchase\",\"micropay\"],"
    "\"payees\":{\"merchants\":[\"shop-1\"],\"categories\":[\"books\"]},"
    "\"asset\":\"CNY\",\"max_per_tx\":\"50.00\",\"min_per_tx\":\"0.10\","
    "\"caps\":{\"day\":\"100.00\",\"week\":\"300.00\",\"month\":\"1000.00\",\"total\":\"5000.00\"},"
    "\"max_uses\":10,\"nbf\":1735689600,\"exp\":1767225600,\"autonomy\":\"L3\","
    "\"step_up_above\":\"20.00\",\"tz\":\"+08:00\"}";

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (j == NULL) fail_msg("bad test json %s: %s", text, e.text);
    return j;
}

/* base with member `path` ("x" or "x.y") set to the JSON value text (NULL: deleted) */
static json_t *mutated(const char *base, const char *path, const char *value)
{
    json_t *doc = load(base), *obj = doc;
    char key[128];
    snprintf(key, sizeof key, "%s", path);
    char *slash = strchr(key, '.');
    if (slash) {
        *slash = '\0';
        obj = json_object_get(doc, key);
        assert_non_null(obj);
        memmove(key, slash + 1, strlen(slash + 1) + 1);
    }
    if (value) {
        assert_int_equal(json_object_set_new(obj, key, load(value)), 0);
    } else {
        json_object_del(obj, key);
    }
    return doc;
}

static int zeroed(const struct ac_mandate *m)
{
    static const struct ac_mandate z;
    return memcmp(m, &z, sizeof z) == 0;
}

/* ---- malformed members: every one reports its pointer ------------------------------------------
 */

static void test_malformed_members(void **state)
{
    (void)state;
    char long_id[80], long_list[2400];
    long_id[0] = '"';
    memset(long_id + 1, 'a', AC_ID_MAX + 1); /* one character too long */
    memcpy(long_id + AC_ID_MAX + 2, "\"", 2);
    size_t o = 0;
    o += (size_t)snprintf(long_list + o, sizeof long_list - o, "[");
    for (int i = 0; i <= AC_MANDATE_LIST_MAX; i++)
        o += (size_t)snprintf(long_list + o, sizeof long_list - o, "%s\"b-%d\"", i ? "," : "", i);
    snprintf(long_list + o, sizeof long_list - o, "]");

    /* clang-format off */
    static const struct {
        const char *path, *value, *pointer;
    } rows[] = {
        {"ver", NULL, "/ver"},
        {"ver", "\"1\"", "/ver"},
        {"ver", "2", "/ver"},
        {"ver", "1.0", "/ver"},
        {"ver", "0", "/ver"},
        {"ver", "true", "/ver"},
        {"id", NULL, "/id"},
        {"id", "\"\"", "/id"},
        {"id", "\"a b\"", "/id"},
        {"id", "5", "/id"},
        {"id", "\"a\\u0000b\"", "/id"},
        {"id", "null", "/id"},
        {"iss", NULL, "/iss"},
        {"iss", "\"bad id\"", "/iss"},
        {"bindings", "[]", "/bindings"},
        {"bindings", "\"b-1\"", "/bindings"},
        {"bindings", "[1]", "/bindings/0"},
        {"bindings", "[\"b-1\",\"b-1\"]", "/bindings/1"},
        {"bindings", "[\"ok\",\"bad id\"]", "/bindings/1"},
        {"agents", "[]", "/agents"},
        {"agents", "{}", "/agents"},
        {"agents", "[null]", "/agents/0"},
        {"ops", NULL, "/ops"},
        {"ops", "[]", "/ops"},
        {"ops", "\"purchase\"", "/ops"},
        {"ops", "[\"pay\"]", "/ops/0"},
        {"ops", "[\"Purchase\"]", "/ops/0"},
        {"ops", "[1]", "/ops/0"},
        {"ops", "[\"purchase\",\"purchase\"]", "/ops/1"},
        {"ops", "[\"purchase\",\"topup\",\"micropay\",\"purchase\"]", "/ops"},
        {"payees", NULL, "/payees"},
        {"payees", "[]", "/payees"},
        {"payees", "{}", "/payees"},
        {"payees", "{\"merchants\":[]}", "/payees/merchants"},
        {"payees", "{\"other\":[\"x\"]}", "/payees/other"},
        {"payees", "{\"merchants\":[\"bad id\"]}", "/payees/merchants/0"},
        {"payees", "{\"categories\":\"books\"}", "/payees/categories"},
        {"asset", NULL, "/asset"},
        {"asset", "\"cny\"", "/asset"},
        {"asset", "5", "/asset"},
        {"asset", "\"\"", "/asset"},
        {"asset", "\"ABCDEFGHIJKLMNOPQ\"", "/asset"},
        {"max_per_tx", NULL, "/max_per_tx"},
        {"max_per_tx", "\"0\"", "/max_per_tx"},
        {"max_per_tx", "\"0.00\"", "/max_per_tx"},
        {"max_per_tx", "\"-1\"", "/max_per_tx"},
        {"max_per_tx", "\"1.234\"", "/max_per_tx"},
        {"max_per_tx", "12", "/max_per_tx"},
        {"max_per_tx", "\"abc\"", "/max_per_tx"},
        {"max_per_tx", "\"1e3\"", "/max_per_tx"},
        {"max_per_tx", "\" 1\"", "/max_per_tx"},
        {"max_per_tx", "\"99999999999999999999\"", "/max_per_tx"},
        {"max_per_tx", "\"1\\u00000\"", "/max_per_tx"},
        {"min_per_tx", "\"0\"", "/min_per_tx"},
        {"min_per_tx", "\"50.01\"", "/min_per_tx"},
        {"min_per_tx", "\"0.001\"", "/min_per_tx"},
        {"caps", "[]", "/caps"},
        {"caps", "{}", "/caps"},
        {"caps", "{\"year\":\"1\"}", "/caps/year"},
        {"caps", "{\"day\":\"0\"}", "/caps/day"},
        {"caps", "{\"day\":1}", "/caps/day"},
        {"caps", "{\"week\":\"1.001\"}", "/caps/week"},
        {"caps", "{\"month\":null}", "/caps/month"},
        {"caps", "{\"total\":\"-5\"}", "/caps/total"},
        {"max_uses", "0", "/max_uses"},
        {"max_uses", "-1", "/max_uses"},
        {"max_uses", "\"5\"", "/max_uses"},
        {"max_uses", "1000000001", "/max_uses"},
        {"max_uses", "1.5", "/max_uses"},
        {"nbf", NULL, "/nbf"},
        {"nbf", "0", "/nbf"},
        {"nbf", "\"1735689600\"", "/nbf"},
        {"nbf", "253402300800", "/nbf"},
        {"exp", NULL, "/exp"},
        {"exp", "1735689600", "/exp"},
        {"exp", "1735689599", "/exp"},
        {"exp", "253402300800", "/exp"},
        {"exp", "1767225600.5", "/exp"},
        {"autonomy", NULL, "/autonomy"},
        {"autonomy", "\"L6\"", "/autonomy"},
        {"autonomy", "\"l3\"", "/autonomy"},
        {"autonomy", "\"L\"", "/autonomy"},
        {"autonomy", "\"L3 \"", "/autonomy"},
        {"autonomy", "\"L3333333333\"", "/autonomy"},
        {"autonomy", "3", "/autonomy"},
        {"step_up_above", "\"-1\"", "/step_up_above"},
        {"step_up_above", "\"x\"", "/step_up_above"},
        {"step_up_above", "20", "/step_up_above"},
        {"tz", "\"+8:00\"", "/tz"},
        {"tz", "\"+08:60\"", "/tz"},
        {"tz", "\"+15:00\"", "/tz"},
        {"tz", "\"+14:01\"", "/tz"},
        {"tz", "\"-12:01\"", "/tz"},
        {"tz", "\"-00:00\"", "/tz"},
        {"tz", "\"Z\"", "/tz"},
        {"tz", "\"UTC\"", "/tz"},
        {"tz", "\"Asia/Shanghai\"", "/tz"},
        {"tz", "\"+0800\"", "/tz"},
        {"tz", "\"+08:00:00\"", "/tz"},
        {"tz", "8", "/tz"},
        {"foo", "1", "/foo"},
        {"a/b", "1", "/a~1b"},
        {"~x", "1", "/~0x"},
        {"caps.hourly", "\"1\"", "/caps/hourly"},
        {"payees.merchants", "[\"shop-1\",\"shop-1\"]", "/payees/merchants/1"},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] + 2; i++) {
        const char *path, *value, *ptr;
        if (i < sizeof rows / sizeof rows[0]) {
            path = rows[i].path, value = rows[i].value, ptr = rows[i].pointer;
        } else if (i == sizeof rows / sizeof rows[0]) {
            path = "id", value = long_id, ptr = "/id";
        } else {
            path = "bindings", value = long_list, ptr = "/bindings";
        }
        json_t *doc = mutated(BASE, path, value);
        struct ac_mandate m;
        struct ac_doc_err err;
        memset(&m, 0x5a, sizeof m);
        enum ac_ec rc = ac_mandate_parse(doc, 2, &m, &err);
        if (rc != AC_EC_MANDATE_INVALID || strcmp(err.pointer, ptr) != 0)
            fail_msg("%s = %s: rc %s pointer \"%s\" (%s), want \"%s\"", path,
                     value ? value : "(deleted)", ac_ec_code(rc), err.pointer,
                     err.detail ? err.detail : "", ptr);
        assert_non_null(err.detail);
        assert_true(strlen(err.detail) > 0);
        assert_true(zeroed(&m));
        json_decref(doc);
    }
}

static void test_whole_document_errors(void **state)
{
    (void)state;
    struct ac_mandate m;
    struct ac_doc_err err;
    /* neither bindings nor agents */
    json_t *doc = mutated(BASE, "bindings", NULL);
    json_object_del(doc, "agents");
    assert_int_equal(ac_mandate_parse(doc, 2, &m, &err), AC_EC_MANDATE_INVALID);
    assert_string_equal(err.pointer, "/agents");
    json_decref(doc);
    /* not an object */
    doc = load("[1,2]");
    assert_int_equal(ac_mandate_parse(doc, 2, &m, &err), AC_EC_MANDATE_INVALID);
    assert_string_equal(err.pointer, "");
    json_decref(doc);
    assert_int_equal(ac_mandate_parse(NULL, 2, &m, &err), AC_EC_MANDATE_INVALID);
    /* the pointer of a long unknown member is cut at a character boundary */
    char big[400] = "{\"";
    for (int i = 0; i < 60; i++)
        strcat(big, "\xc3\xa9"); /* é */
    strcat(big, "\":1}");
    doc = load(big);
    assert_int_equal(ac_mandate_parse(doc, 2, &m, &err), AC_EC_MANDATE_INVALID);
    assert_true(strlen(err.pointer) < AC_DOC_POINTER_MAX);
    assert_true(strlen(err.pointer) % 2 == 1);  /* "/" plus whole two-byte characters */
    json_t *as_json = json_string(err.pointer); /* still valid UTF-8 */
    assert_non_null(as_json);
    json_decref(as_json);
    json_decref(doc);
    /* the caller's scale is used: "50.00" needs scale >= 2 */
    doc = load(BASE);
    assert_int_equal(ac_mandate_parse(doc, 1, &m, &err), AC_EC_MANDATE_INVALID);
    assert_string_equal(err.pointer, "/max_per_tx");
    assert_int_equal(ac_mandate_parse(doc, AC_SCALE_MAX + 1, &m, &err), AC_EC_INTERNAL);
    json_decref(doc);
}

/* ---- valid documents ---------------------------------------------------------------------------
 */

static void test_parse_fields(void **state)
{
    (void)state;
    json_t *doc = load(BASE);
    struct ac_mandate m;
    struct ac_doc_err err;
    assert_string_equal(ac_mandate_peek_asset(doc), "CNY");
    assert_int_equal(ac_mandate_parse(doc, 2, &m, &err), AC_EC_OK);
    assert_string_equal(err.detail, "");
    assert_string_equal(m.id, "m-1");
    assert_string_equal(m.iss, "alice");
    assert_int_equal(m.n_bindings, 1);
    assert_string_equal(m.bindings[0], "b-1");
    assert_int_equal(m.n_agents, 1);
    assert_string_equal(m.agents[0], "agent-x");
    assert_int_equal(m.ops, AC_OP_PURCHASE | AC_OP_MICROPAY);
    assert_int_equal(m.n_merchants, 1);
    assert_int_equal(m.n_categories, 1);
    assert_string_equal(m.asset, "CNY");
    assert_int_equal(m.scale, 2);
    assert_int_equal(m.max_per_tx, 5000);
    assert_int_equal(m.min_per_tx, 10);
    assert_int_equal(m.cap_day, 10000);
    assert_int_equal(m.cap_week, 30000);
    assert_int_equal(m.cap_month, 100000);
    assert_int_equal(m.cap_total, 500000);
    assert_int_equal(m.max_uses, 10);
    assert_int_equal(m.nbf, 1735689600);
    assert_int_equal(m.exp, 1767225600);
    assert_int_equal(m.autonomy, AC_L3);
    assert_int_equal(m.step_up_above, 2000);
    assert_int_equal(m.tz_offset_s, 8 * 3600);

    /* the JSON form is the canonical payload: equal to the (canonical) input */
    json_t *back = ac_mandate_to_json(&m);
    assert_non_null(back);
    assert_true(json_equal(back, doc));
    struct ac_mandate m2;
    assert_int_equal(ac_mandate_parse(back, 2, &m2, &err), AC_EC_OK);
    assert_memory_equal(&m, &m2, sizeof m);
    json_decref(back);
    json_decref(doc);

    /* optional members */
    /* clang-format off */
    static const struct {
        const char *path, *value;
    } ok[] = {
        {"min_per_tx", NULL}, {"caps", NULL},         {"max_uses", NULL},
        {"step_up_above", NULL}, {"tz", NULL},       {"bindings", NULL},
        {"agents", NULL},     {"step_up_above", "\"0\""}, {"tz", "\"-12:00\""},
        {"tz", "\"+14:00\""}, {"tz", "\"+05:45\""},   {"max_per_tx", "\"50\""},
        {"min_per_tx", "\"50.00\""}, {"ops", "[\"micropay\",\"topup\",\"purchase\"]"},
        {"payees", "{\"categories\":[\"books\"]}"}, {"caps", "{\"week\":\"1.5\"}"},
        {"max_uses", "1000000000"}, {"exp", "253402300799"}, {"nbf", "1"},
        {"autonomy", "\"L0\""}, {"autonomy", "\"L5\""},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        doc = mutated(BASE, ok[i].path, ok[i].value);
        if (ac_mandate_parse(doc, 2, &m, &err) != AC_EC_OK)
            fail_msg("%s = %s: %s at %s", ok[i].path, ok[i].value ? ok[i].value : "(deleted)",
                     err.detail, err.pointer);
        /* every valid mandate survives the round trip */
        back = ac_mandate_to_json(&m);
        assert_int_equal(ac_mandate_parse(back, 2, &m2, &err), AC_EC_OK);
        assert_memory_equal(&m, &m2, sizeof m);
        json_decref(back);
        json_decref(doc);
    }
    doc = mutated(BASE, "min_per_tx", NULL);
    json_object_del(doc, "caps");
    json_object_del(doc, "max_uses");
    json_object_del(doc, "step_up_above");
    json_object_del(doc, "tz");
    assert_int_equal(ac_mandate_parse(doc, 2, &m, &err), AC_EC_OK);
    assert_int_equal(m.min_per_tx, AC_MANDATE_UNSET);
    assert_int_equal(m.cap_day, AC_MANDATE_UNSET);
    assert_int_equal(m.cap_week, AC_MANDATE_UNSET);
    assert_int_equal(m.cap_month, AC_MANDATE_UNSET);
    assert_int_equal(m.cap_total, AC_MANDATE_UNSET);
    assert_int_equal(m.max_uses, AC_MANDATE_UNSET);
    assert_int_equal(m.step_up_above, AC_MANDATE_UNSET);
    assert_int_equal(m.tz_offset_s, 0);
    json_decref(doc);
    doc = mutated(BASE, "tz", "\"-09:30\"");
    assert_int_equal(ac_mandate_parse(doc, 2, &m, &err), AC_EC_OK);
    assert_int_equal(m.tz_offset_s, -(9 * 3600 + 30 * 60));
    json_decref(doc);

    /* peek never accepts what parse would refuse as an asset */
    doc = mutated(BASE, "asset", "\"cny\"");
    assert_null(ac_mandate_peek_asset(doc));
    json_decref(doc);
    doc = mutated(BASE, "asset", NULL);
    assert_null(ac_mandate_peek_asset(doc));
    json_decref(doc);
}

static void test_scope_helpers(void **state)
{
    (void)state;
    json_t *doc = load(BASE);
    struct ac_mandate m;
    assert_int_equal(ac_mandate_parse(doc, 2, &m, NULL), AC_EC_OK);
    json_decref(doc);
    assert_true(ac_mandate_covers_agent(&m, "b-1", NULL));
    assert_true(ac_mandate_covers_agent(&m, NULL, "agent-x"));
    assert_true(ac_mandate_covers_agent(&m, "b-2", "agent-x"));
    assert_false(ac_mandate_covers_agent(&m, "agent-x", "b-1")); /* ids are not interchangeable */
    assert_false(ac_mandate_covers_agent(&m, "", ""));
    assert_int_equal(ac_mandate_payee_scope(&m, "shop-1", "toys"), 2);
    assert_int_equal(ac_mandate_payee_scope(&m, "shop-1", NULL), 2);
    assert_int_equal(ac_mandate_payee_scope(&m, "shop-2", "books"), 1);
    assert_int_equal(ac_mandate_payee_scope(&m, "shop-2", "Books"), 0);
    assert_int_equal(ac_mandate_payee_scope(&m, "books", NULL), 0);
    assert_int_equal(ac_mandate_payee_scope(&m, NULL, ""), 0);

    enum ac_autonomy a;
    for (int i = 0; i <= 5; i++) {
        assert_int_equal(ac_autonomy_parse(ac_autonomy_name((enum ac_autonomy)i), &a), 0);
        assert_int_equal(a, i);
    }
    assert_null(ac_autonomy_name((enum ac_autonomy)6));
    assert_int_equal(ac_op_from_name("topup"), AC_OP_TOPUP);
    assert_int_equal(ac_op_from_name("TOPUP"), 0);
    assert_string_equal(ac_op_name(AC_OP_MICROPAY), "micropay");
    assert_null(ac_op_name((enum ac_op)3));
    char tz[AC_TZ_SIZE];
    int32_t off;
    static const char *const tzs[] = {"+00:00", "+08:00", "-05:00", "+05:45", "-12:00", "+14:00"};
    for (size_t i = 0; i < sizeof tzs / sizeof tzs[0]; i++) {
        assert_int_equal(ac_tz_parse(tzs[i], &off), 0);
        assert_string_equal(ac_tz_format(off, tz), tzs[i]);
    }
}

/* ---- signed documents --------------------------------------------------------------------------
 */

static char *sign_doc(EVP_PKEY *key, const char *kid, const char *typ, const char *payload)
{
    char *jws = ac_jws_sign(key, kid, typ, (const uint8_t *)payload, strlen(payload));
    assert_non_null(jws);
    return jws;
}

/* The server's path: parse the JWS, check the header, find the key by kid, verify, parse. */
static enum ac_ec accept(const char *compact, EVP_PKEY *registered, const char *registered_kid,
                         struct ac_mandate *m)
{
    struct ac_jws j;
    const char *detail = NULL;
    enum ac_ec rc = ac_jws_parse(compact, strlen(compact), &j, &detail);
    if (rc == AC_EC_OK) rc = ac_mandate_jws_check(&j, &detail);
    if (rc == AC_EC_OK && strcmp(j.kid, registered_kid) != 0) rc = AC_EC_JWS_KEY_UNKNOWN;
    if (rc == AC_EC_OK) rc = ac_jws_verify(&j, registered);
    if (rc == AC_EC_OK) {
        const char *asset = ac_mandate_peek_asset(j.payload_json);
        if (asset == NULL || strcmp(asset, "CNY") != 0) rc = AC_EC_ASSET_UNKNOWN;
    }
    if (rc == AC_EC_OK) rc = ac_mandate_parse(j.payload_json, 2, m, NULL);
    ac_jws_clear(&j);
    return rc;
}

static void test_signed_mandate(void **state)
{
    (void)state;
    const enum ac_sig_alg algs[] = {AC_SIG_ED25519, AC_SIG_ES256};
    for (int a = 0; a < 2; a++) {
        EVP_PKEY *user = ac_sig_keygen(algs[a]), *other = ac_sig_keygen(algs[a]);
        assert_non_null(user);
        assert_non_null(other);
        char kid[AC_JWK_THUMBPRINT_SIZE], other_kid[AC_JWK_THUMBPRINT_SIZE];
        assert_int_equal(ac_jwk_thumbprint(user, kid), 0);
        assert_int_equal(ac_jwk_thumbprint(other, other_kid), 0);
        /* the registered key is a public-only copy, as the server holds it */
        char *pub_text = ac_jwk_public_text(user);
        EVP_PKEY *pub = NULL;
        assert_int_equal(ac_jwk_import_public_text(pub_text, strlen(pub_text), &pub, NULL),
                         AC_EC_OK);
        free(pub_text);

        struct ac_mandate m;
        char *jws = sign_doc(user, kid, AC_MANDATE_TYP, BASE);
        assert_int_equal(accept(jws, pub, kid, &m), AC_EC_OK);
        assert_string_equal(m.id, "m-1");
        assert_int_equal(m.cap_day, 10000);
        /* one flipped payload character breaks the signature */
        char *dot = strchr(jws, '.');
        dot[5] = dot[5] == 'A' ? 'B' : 'A';
        assert_true(accept(jws, pub, kid, &m) != AC_EC_OK);
        free(jws);

        /* signed by another key that claims the user's kid */
        jws = sign_doc(other, kid, AC_MANDATE_TYP, BASE);
        assert_int_equal(accept(jws, pub, kid, &m), AC_EC_JWS_BAD_SIGNATURE);
        free(jws);
        /* signed by another key under its own kid: not this user's key */
        jws = sign_doc(other, other_kid, AC_MANDATE_TYP, BASE);
        assert_int_equal(accept(jws, pub, kid, &m), AC_EC_JWS_KEY_UNKNOWN);
        free(jws);

        /* header rules */
        struct {
            const char *kid, *typ, *payload;
        } bad[] = {
            {kid, NULL, BASE},                              /* no typ */
            {kid, AC_MANDATE_REVOCATION_TYP, BASE},         /* another document's typ */
            {kid, "agentclear-confirmation+jws", BASE},     /* ditto */
            {kid, "AGENTCLEAR-MANDATE+JWS", BASE},          /* typ is matched exactly */
            {NULL, AC_MANDATE_TYP, BASE},                   /* no kid */
            {"k-1", AC_MANDATE_TYP, BASE},                  /* kid not a thumbprint */
            {kid, AC_MANDATE_TYP, "hello"},                 /* payload not json */
            {kid, AC_MANDATE_TYP, "[1]"},                   /* payload not an object */
            {kid, AC_MANDATE_TYP, "{\"ver\":1,\"ver\":1}"}, /* duplicate members */
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            jws = sign_doc(user, bad[i].kid, bad[i].typ, bad[i].payload);
            struct ac_jws j;
            const char *detail = NULL;
            assert_int_equal(ac_jws_parse(jws, strlen(jws), &j, &detail), AC_EC_OK);
            detail = NULL;
            if (ac_mandate_jws_check(&j, &detail) != AC_EC_MANDATE_INVALID)
                fail_msg("header row %zu accepted", i);
            assert_non_null(detail);
            ac_jws_clear(&j);
            free(jws);
        }
        /* a well-signed document with an invalid payload is refused by the payload check */
        jws = sign_doc(user, kid, AC_MANDATE_TYP, "{\"ver\":1,\"asset\":\"CNY\"}");
        assert_int_equal(accept(jws, pub, kid, &m), AC_EC_MANDATE_INVALID);
        free(jws);
        assert_int_equal(ac_mandate_jws_check(NULL, NULL), AC_EC_MANDATE_INVALID);

        EVP_PKEY_free(pub);
        EVP_PKEY_free(user);
        EVP_PKEY_free(other);
    }
}

/* ---- revocation -------------------------------------------------------------------------------
 */

static const char *REV = "{\"ver\":1,\"mandate\":\"m-1\",\"iss\":\"alice\",\"iat\":1741147200}";

static void test_revocation(void **state)
{
    (void)state;
    struct ac_mandate_revocation r;
    struct ac_doc_err err;
    json_t *doc = load(REV);
    assert_int_equal(ac_mandate_revocation_parse(doc, &r, &err), AC_EC_OK);
    assert_string_equal(r.mandate, "m-1");
    assert_string_equal(r.iss, "alice");
    assert_int_equal(r.iat, 1741147200);
    json_decref(doc);

    json_t *mdoc = load(BASE);
    struct ac_mandate m;
    assert_int_equal(ac_mandate_parse(mdoc, 2, &m, NULL), AC_EC_OK);
    json_decref(mdoc);
    assert_true(ac_mandate_revocation_matches(&r, &m));
    strcpy(r.iss, "bob");
    assert_false(ac_mandate_revocation_matches(&r, &m));
    strcpy(r.iss, "alice");
    strcpy(r.mandate, "m-2");
    assert_false(ac_mandate_revocation_matches(&r, &m));

    /* clang-format off */
    static const struct {
        const char *path, *value, *pointer;
    } rows[] = {
        {"ver", NULL, "/ver"},          {"ver", "2", "/ver"},
        {"mandate", NULL, "/mandate"},  {"mandate", "\"a b\"", "/mandate"},
        {"mandate", "[]", "/mandate"},  {"iss", NULL, "/iss"},
        {"iss", "\"\"", "/iss"},        {"iat", NULL, "/iat"},
        {"iat", "0", "/iat"},           {"iat", "\"1\"", "/iat"},
        {"iat", "253402300800", "/iat"}, {"reason", "\"lost phone\"", "/reason"},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        doc = mutated(REV, rows[i].path, rows[i].value);
        memset(&r, 0x33, sizeof r);
        if (ac_mandate_revocation_parse(doc, &r, &err) != AC_EC_REVOCATION_INVALID ||
            strcmp(err.pointer, rows[i].pointer) != 0)
            fail_msg("revocation %s: pointer %s", rows[i].path, err.pointer);
        assert_int_equal(r.mandate[0], 0);
        assert_int_equal(r.iat, 0);
        json_decref(doc);
    }
    assert_int_equal(ac_mandate_revocation_parse(NULL, &r, &err), AC_EC_REVOCATION_INVALID);

    /* signed: the revocation typ is required, a mandate typ is refused */
    EVP_PKEY *user = ac_sig_keygen(AC_SIG_ED25519);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(user, kid), 0);
    const char *typs[] = {AC_MANDATE_REVOCATION_TYP, AC_MANDATE_TYP};
    for (int t = 0; t < 2; t++) {
        char *jws = sign_doc(user, kid, typs[t], REV);
        struct ac_jws j;
        assert_int_equal(ac_jws_parse(jws, strlen(jws), &j, NULL), AC_EC_OK);
        assert_int_equal(ac_mandate_revocation_jws_check(&j, NULL),
                         t == 0 ? AC_EC_OK : AC_EC_REVOCATION_INVALID);
        assert_int_equal(ac_jws_verify(&j, user), AC_EC_OK);
        if (t == 0)
            assert_int_equal(ac_mandate_revocation_parse(j.payload_json, &r, NULL), AC_EC_OK);
        ac_jws_clear(&j);
        free(jws);
    }
    EVP_PKEY_free(user);
}

/* the example payload in docs/mandates.md (the first ```json block after "### Payload") is valid
 * and canonical */
static void test_docs_example(void **state)
{
    (void)state;
    size_t len = 0;
    char *doc = ac_test_read_file(ac_test_src("docs/mandates.md"), &len);
    assert_non_null(doc);
    char *start = strstr(doc, "### Payload");
    assert_non_null(start);
    start = strstr(start, "```json\n");
    assert_non_null(start);
    start += 8;
    char *end = strstr(start, "```");
    assert_non_null(end);
    *end = '\0';
    json_t *j = load(start);
    struct ac_mandate m;
    struct ac_doc_err err;
    if (ac_mandate_parse(j, 2, &m, &err) != AC_EC_OK)
        fail_msg("docs example: %s at %s", err.detail, err.pointer);
    assert_int_equal(m.autonomy, AC_L3);
    json_t *back = ac_mandate_to_json(&m);
    assert_true(json_equal(back, j));
    json_decref(back);
    json_decref(j);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_members), cmocka_unit_test(test_whole_document_errors),
        cmocka_unit_test(test_parse_fields),      cmocka_unit_test(test_scope_helpers),
        cmocka_unit_test(test_signed_mandate),    cmocka_unit_test(test_revocation),
        cmocka_unit_test(test_docs_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
