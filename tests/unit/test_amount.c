/* Amount parsing and formatting at asset scales; id and base64 rules. */
#include "tests/support/testutil.h"

#include <string.h>

#include "protocol/amount.h"
#include "protocol/b64.h"

static void parse_ok(void **s)
{
    (void)s;
    static const struct {
        const char *in;
        unsigned scale;
        int64_t want;
    } v[] = {
        {"0", 2, 0},         {"12", 2, 1200},   {"12.3", 2, 1230},
        {"12.34", 2, 1234},  {"007.50", 2, 750}, {"5", 0, 5},
        {"0.000001", 6, 1},  {"9223372036854775807", 0, INT64_MAX},
        {"92233720368547758.07", 2, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t out = -1;
        assert_int_equal(ac_amount_parse(v[i].in, v[i].scale, &out), AC_EC_OK);
        assert_true(out == v[i].want);
    }
}

static void parse_bad(void **s)
{
    (void)s;
    static const struct {
        const char *in;
        unsigned scale;
        enum ac_ec want;
    } v[] = {
        {"", 2, AC_EC_AMOUNT_SYNTAX},          {"-1", 2, AC_EC_AMOUNT_NEGATIVE},
        {"+1", 2, AC_EC_AMOUNT_SYNTAX},        {"1.", 2, AC_EC_AMOUNT_SYNTAX},
        {".5", 2, AC_EC_AMOUNT_SYNTAX},        {"1.234", 2, AC_EC_AMOUNT_PRECISION},
        {"1.2x", 2, AC_EC_AMOUNT_SYNTAX},      {"1e3", 2, AC_EC_AMOUNT_SYNTAX},
        {" 1", 2, AC_EC_AMOUNT_SYNTAX},        {"1 ", 2, AC_EC_AMOUNT_SYNTAX},
        {"1.5", 0, AC_EC_AMOUNT_PRECISION},    {"9223372036854775808", 0, AC_EC_AMOUNT_OVERFLOW},
        {"92233720368547758.08", 2, AC_EC_AMOUNT_OVERFLOW},
        {"92233720368547758", 3, AC_EC_AMOUNT_OVERFLOW}, {"0x10", 0, AC_EC_AMOUNT_SYNTAX},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t out = 42;
        assert_int_equal(ac_amount_parse(v[i].in, v[i].scale, &out), v[i].want);
        assert_true(out == 42); /* unchanged on failure */
    }
}

static void format_roundtrip(void **s)
{
    (void)s;
    char buf[AC_AMOUNT_STR_MAX];
    assert_string_equal(ac_amount_format(1234, 2, buf), "12.34");
    assert_string_equal(ac_amount_format(5, 2, buf), "0.05");
    assert_string_equal(ac_amount_format(0, 2, buf), "0.00");
    assert_string_equal(ac_amount_format(-5, 3, buf), "-0.005");
    assert_string_equal(ac_amount_format(7, 0, buf), "7");
    assert_string_equal(ac_amount_format(INT64_MIN, 2, buf), "-92233720368547758.08");
    for (int64_t v = 0; v < 100000; v += 37) {
        int64_t back;
        ac_amount_format(v, 4, buf);
        assert_int_equal(ac_amount_parse(buf, 4, &back), AC_EC_OK);
        assert_true(back == v);
    }
}

static void ids(void **s)
{
    (void)s;
    assert_true(ac_id_valid("acct:merchant-1.main_2"));
    assert_false(ac_id_valid(""));
    assert_false(ac_id_valid("a b"));
    assert_false(ac_id_valid("a/b"));
    char longid[66];
    memset(longid, 'a', 65);
    longid[65] = 0;
    assert_false(ac_id_valid(longid));
    longid[64] = 0;
    assert_true(ac_id_valid(longid));
    assert_true(ac_asset_code_valid("CNY"));
    assert_true(ac_asset_code_valid("TOK_GPT4"));
    assert_false(ac_asset_code_valid("cny"));
    assert_false(ac_asset_code_valid("ABCDEFGHIJKLMNOPQ"));
}

static void base64(void **s)
{
    (void)s;
    /* RFC 4648 §10 test vectors */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *encu[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        uint8_t dec[16];
        size_t n;
        ac_b64_encode((const uint8_t *)plain[i], strlen(plain[i]), out, 0);
        assert_string_equal(out, enc[i]);
        ac_b64_encode((const uint8_t *)plain[i], strlen(plain[i]), out, 1);
        assert_string_equal(out, encu[i]);
        assert_int_equal(ac_b64_decode(enc[i], strlen(enc[i]), dec, &n, 0), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(dec, plain[i], n);
        assert_int_equal(ac_b64_decode(encu[i], strlen(encu[i]), dec, &n, 1), 0);
        assert_int_equal(n, strlen(plain[i]));
    }
    uint8_t d[16];
    size_t n;
    assert_int_equal(ac_b64_decode("Zh==", 4, d, &n, 0), -1);  /* non-canonical bits */
    assert_int_equal(ac_b64_decode("Zg=", 3, d, &n, 0), -1);   /* bad padding */
    assert_int_equal(ac_b64_decode("Zg==", 4, d, &n, 1), -1);  /* padding in base64url */
    assert_int_equal(ac_b64_decode("Z+8", 3, d, &n, 1), -1);   /* '+' not in base64url */
    assert_int_equal(ac_b64_decode("Z", 1, d, &n, 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_ok),         cmocka_unit_test(parse_bad),
        cmocka_unit_test(format_roundtrip), cmocka_unit_test(ids),
        cmocka_unit_test(base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
