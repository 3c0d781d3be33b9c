/* protocol/price.h: the price list body, resolving prices at asset scales, and the token amount a
 * fiat amount buys (floor, exact integers, zero and overflow refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/price.h"

static enum ac_ec parse(const char *json, struct ac_price_list *l, struct ac_doc_err *err)
{
    return ac_price_list_parse(json, strlen(json), l, err);
}

static void list_ok(void **s)
{
    (void)s;
    struct ac_price_list l;
    struct ac_doc_err err = {0};
    assert_int_equal(
        parse("{\"version\":7,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":\"3.00\"},"
              "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1000\"}},{\"fiat\":{\"currency\":"
              "\"USD\",\"value\":\"1\"},\"tokens\":{\"currency\":\"TOK\",\"value\":\"7\"}}]}",
              &l, &err),
        AC_EC_OK);
    assert_int_equal(l.version, 7);
    assert_int_equal(l.n, 2);
    assert_int_equal(ac_price_find(&l, "USD", "TOK"), 1);
    assert_int_equal(ac_price_find(&l, "TOK", "USD"), -1);
    struct ac_price p;
    assert_int_equal(ac_price_resolve(&l.p[0], 2, 0, &p), AC_EC_OK);
    assert_int_equal(p.fiat, 300);
    assert_int_equal(p.tokens, 1000);
    assert_int_equal(ac_price_resolve(&l.p[1], 2, 3, &p), AC_EC_OK);
    assert_int_equal(p.fiat, 100);
    assert_int_equal(p.tokens, 7000);
    /* a value finer than the asset's scale */
    assert_int_equal(ac_price_resolve(&l.p[0], 1, 0, &p), AC_EC_AMOUNT_PRECISION);
}

static void list_bad(void **s)
{
    (void)s;
    const char *item = "{\"fiat\":{\"currency\":\"CNY\",\"value\":\"1\"},"
                       "\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}";
    char buf[2048];
    struct {
        const char *fmt, *pointer;
        enum ac_ec ec;
    } cases[] = {
        {"{\"version\":1,\"prices\":[%s],\"x\":1}", "/x", AC_EC_PRICE_INVALID},
        {"{\"version\":0,\"prices\":[%s]}", "/version", AC_EC_PRICE_INVALID},
        {"{\"version\":9007199254740992,\"prices\":[%s]}", "/version", AC_EC_PRICE_INVALID},
        {"{\"version\":\"1\",\"prices\":[%s]}", "/version", AC_EC_PRICE_INVALID},
        {"{\"version\":1,\"prices\":[%s,%s]}", "/prices/1", AC_EC_PRICE_INVALID},
        {"{\"version\":1,\"prices\":{}}", "/prices", AC_EC_PRICE_INVALID},
        {"[%s]", "", AC_EC_PRICE_INVALID},
        {"{\"version\":1,\"version\":2,\"prices\":[%s]}", "", AC_EC_JSON_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(buf, sizeof buf, cases[i].fmt, item, item);
        struct ac_price_list l;
        struct ac_doc_err err = {0};
        assert_int_equal(parse(buf, &l, &err), cases[i].ec);
        assert_string_equal(err.pointer, cases[i].pointer);
        assert_int_equal(l.n, 0);
    }
    struct ac_price_list l;
    struct ac_doc_err err = {0};
    assert_int_equal(parse("{\"version\":1,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":"
                           "\"-1\"},\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}]}",
                           &l, &err),
                     AC_EC_PRICE_INVALID);
    assert_string_equal(err.pointer, "/prices/0/fiat/value");
    assert_int_equal(parse("{\"version\":1,\"prices\":[{\"fiat\":{\"currency\":\"TOK\",\"value\":"
                           "\"1\"},\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}]}",
                           &l, &err),
                     AC_EC_PRICE_INVALID);
    /* zero values parse but do not resolve */
    assert_int_equal(parse("{\"version\":1,\"prices\":[{\"fiat\":{\"currency\":\"CNY\",\"value\":"
                           "\"0\"},\"tokens\":{\"currency\":\"TOK\",\"value\":\"1\"}}]}",
                           &l, &err),
                     AC_EC_OK);
    struct ac_price p;
    assert_int_equal(ac_price_resolve(&l.p[0], 2, 0, &p), AC_EC_PRICE_INVALID);
}

static void tokens(void **s)
{
    (void)s;
    struct ac_price p = {"CNY", "TOK", 300, 1000}; /* 3.00 CNY buy 1000 TOK */
    int64_t t = -1;
    assert_int_equal(ac_price_tokens(&p, 1, &t), AC_EC_OK); /* 3.33 -> 3 */
    assert_int_equal(t, 3);
    assert_int_equal(ac_price_tokens(&p, 2, &t), AC_EC_OK); /* 6.66 -> 6 */
    assert_int_equal(t, 6);
    assert_int_equal(ac_price_tokens(&p, 300, &t), AC_EC_OK);
    assert_int_equal(t, 1000);
    assert_int_equal(ac_price_tokens(&p, 0, &t), AC_EC_AMOUNT_ZERO);
    struct ac_price dear = {"USD", "TOK", 100, 1}; /* 1.00 USD buys 1 TOK */
    assert_int_equal(ac_price_tokens(&dear, 99, &t), AC_EC_TOPUP_TOKENS_ZERO);
    assert_int_equal(ac_price_tokens(&dear, 100, &t), AC_EC_OK);
    assert_int_equal(t, 1);
    /* the product exceeds 64 bits but the quotient fits: exact */
    struct ac_price big = {"CNY", "TOK", INT64_MAX, INT64_MAX - 1};
    assert_int_equal(ac_price_tokens(&big, INT64_MAX, &t), AC_EC_OK);
    assert_int_equal(t, INT64_MAX - 1);
    struct ac_price cheap = {"CNY", "TOK", 1, 1000};
    assert_int_equal(ac_price_tokens(&cheap, INT64_MAX / 100, &t), AC_EC_AMOUNT_OVERFLOW);
}

static void digest(void **s)
{
    (void)s;
    struct ac_price a[2] = {{"CNY", "TOK", 100, 1000}, {"USD", "TOK", 100, 7000}};
    uint8_t d1[32], d2[32], d3[32], d4[32];
    ac_price_digest("llm", 1, a, 2, d1);
    ac_price_digest("llm", 2, a, 2, d2);
    ac_price_digest("shop", 1, a, 2, d3);
    a[1].tokens = 7001;
    ac_price_digest("llm", 1, a, 2, d4);
    assert_memory_not_equal(d1, d2, 32);
    assert_memory_not_equal(d1, d3, 32);
    assert_memory_not_equal(d1, d4, 32);
    a[1].tokens = 7000;
    ac_price_digest("llm", 1, a, 2, d4);
    assert_memory_equal(d1, d4, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_ok),
        cmocka_unit_test(list_bad),
        cmocka_unit_test(tokens),
        cmocka_unit_test(digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
