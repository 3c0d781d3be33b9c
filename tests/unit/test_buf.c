/* protocol/buf: ac_buf_add_i64 (the batch parameters' numbers, ledger/db.c and keys/nonce.c)
 * against snprintf's "%lld", at the edges and as the array builders append it. */
#include "tests/support/testutil.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(decimal_like_printf)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
