/* protocol/buf: ac_buf_add_i64 (the batch parameters' numbers, ledger/db.c and keys/nonce.c)
 * against snprintf's "%lld", at the edges and as the array builders append it; ac_buf_json_str
 * and ac_buf_json_key (answers written without jansson) against jansson's own dump, for every
 * ASCII byte and for UTF-8. */
#include "tests/support/testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol/buf.h"

static void decimal_like_printf(void **s)
{
    (void)s;
    const long long v[] = {0, 1, -1, 9, 10, -10, 1234567890123LL, LLONG_MAX, LLONG_MIN, -999};
    struct ac_buf b = {0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "%lld", v[i]);
        ac_buf_reset(&b);
        ac_buf_add_i64(&b, v[i]);
        assert_string_equal(ac_buf_str(&b), want);
        assert_int_equal(b.len, strlen(want));
    }
    /* appends: "{" then numbers, as the array builders use it */
    ac_buf_reset(&b);
    ac_buf_adds(&b, "{");
    ac_buf_add_i64(&b, -5);
    ac_buf_adds(&b, ",");
    ac_buf_add_i64(&b, 60);
    assert_string_equal(ac_buf_str(&b), "{-5,60");
    ac_buf_free(&b);
}

/* jansson's compact dump of {"k": s} */
static char *jansson_member(const char *s)
{
    json_t *o = json_pack("{s:s}", "k", s);
    assert_non_null(o);
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(t);
    return t;
}

static void json_strings_like_jansson(void **s)
{
    (void)s;
    struct ac_buf b = {0};
    for (int c = 1; c < 128; c++) {
        char str[4] = {'a', (char)c, 'z', '\0'};
        char *want = jansson_member(str);
        ac_buf_reset(&b);
        ac_buf_adds(&b, "{\"\":0");
        ac_buf_json_key(&b, "k");
        ac_buf_json_str(&b, str);
        ac_buf_adds(&b, "}");
        /* after the leading member that only this side wrote: {"":0, then "k":... as jansson */
        assert_memory_equal(ac_buf_str(&b), "{\"\":0,", 6);
        assert_string_equal(ac_buf_str(&b) + 6, want + 1);
        free(want);
    }
    const char *utf8[] = {"caf\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x92\xb8 \"/\\", ""};
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        char *want = jansson_member(utf8[i]);
        ac_buf_reset(&b);
        ac_buf_adds(&b, "{\"k\":");
        ac_buf_json_str(&b, utf8[i]);
        ac_buf_adds(&b, "}");
        assert_string_equal(ac_buf_str(&b), want);
        free(want);
    }
    ac_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(decimal_like_printf),
                                       cmocka_unit_test(json_strings_like_jansson)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
