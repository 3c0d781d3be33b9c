/* Deterministic CBOR: RFC 8949 Appendix A encodings, §4.2.1 key order, the checker's rejections,
 * encoding of arbitrary libcbor trees, and clean failure under a failing allocator. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/dcbor.h"

/* ---- failing allocator ----------------------------------------------------------------------
 * libcbor 0.8 as packaged here is built with CBOR_CUSTOM_ALLOC 0, so cbor_set_allocs() does not
 * exist and libcbor calls malloc/realloc directly. This program therefore replaces malloc and
 * realloc itself (an executable's definitions take precedence for every shared library) and
 * forwards to the sanitizer's allocator when there is one, else to glibc's. When armed, the
 * fail_at-th allocation from then on returns NULL. This covers libcbor's allocations and ours
 * alike; the sanitizer's leak check at exit proves nothing leaks on the failure paths. */
extern void *__interceptor_malloc(size_t) __attribute__((weak));
extern void *__interceptor_realloc(void *, size_t) __attribute__((weak));
extern void *__libc_malloc(size_t);
extern void *__libc_realloc(void *, size_t);

static long fail_at = -1; /* < 0: disarmed */
static long alloc_calls;

static int should_fail(void)
{
    if (fail_at < 0) return 0;
    return alloc_calls++ == fail_at;
}

void *malloc(size_t n)
{
    if (should_fail()) return NULL;
    return __interceptor_malloc ? __interceptor_malloc(n) : __libc_malloc(n);
}

void *realloc(void *p, size_t n)
{
    if (should_fail()) return NULL;
    return __interceptor_realloc ? __interceptor_realloc(p, n) : __libc_realloc(p, n);
}

static void arm(long k)
{
    alloc_calls = 0;
    fail_at = k;
}

static void disarm(void)
{
    fail_at = -1;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

/* Encode item (consuming it), compare with want_hex, and run the checker over the bytes. */
static void expect(cbor_item_t *item, const char *want_hex)
{
    assert_non_null(item);
    uint8_t *out;
    size_t len;
    enum ac_dcbor_status st = ac_dcbor_encode(item, &out, &len);
    if (st != AC_DCBOR_OK) fail_msg("encode %s: %s", want_hex, ac_dcbor_strerror(st));
    char got[4096];
    assert_true(2 * len < sizeof got);
    hex(out, len, got);
    if (strcmp(got, want_hex) != 0) fail_msg("got %s, want %s", got, want_hex);
    st = ac_dcbor_check(out, len, NULL, 0);
    if (st != AC_DCBOR_OK) fail_msg("check %s: %s", want_hex, ac_dcbor_strerror(st));
    /* decode and encode again: the same bytes */
    cbor_item_t *back;
    assert_int_equal(ac_dcbor_decode(out, len, NULL, 0, &back), AC_DCBOR_OK);
    uint8_t *out2;
    size_t len2;
    assert_int_equal(ac_dcbor_encode(back, &out2, &len2), AC_DCBOR_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(out2, out, len);
    free(out2);
    cbor_decref(&back);
    free(out);
    cbor_decref(&item);
}

static enum ac_dcbor_status check_hex(const char *h, const uint64_t *tags, size_t ntags)
{
    uint8_t buf[1024];
    long n = ac_test_unhex(h, buf, sizeof buf);
    assert_true(n >= 0);
    return ac_dcbor_check(buf, (size_t)n, tags, ntags);
}

/* ---- RFC 8949 Appendix A ------------------------------------------------------------------- */

static void integers(void **s)
{
    (void)s;
    static const struct {
        uint64_t v;
        const char *hex;
        cbor_int_width w;
    } u[] = {
        {0, "00", CBOR_INT_8},
        {1, "01", CBOR_INT_8},
        {10, "0a", CBOR_INT_8},
        {23, "17", CBOR_INT_8},
        {24, "1818", CBOR_INT_8},
        {25, "1819", CBOR_INT_8},
        {100, "1864", CBOR_INT_8},
        {255, "18ff", CBOR_INT_8},
        {256, "190100", CBOR_INT_16},
        {1000, "1903e8", CBOR_INT_16},
        {65535, "19ffff", CBOR_INT_16},
        {65536, "1a00010000", CBOR_INT_32},
        {1000000, "1a000f4240", CBOR_INT_32},
        {4294967295u, "1affffffff", CBOR_INT_32},
        {4294967296u, "1b0000000100000000", CBOR_INT_64},
        {1000000000000u, "1b000000e8d4a51000", CBOR_INT_64},
        {18446744073709551615u, "1bffffffffffffffff", CBOR_INT_64},
    };
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
        cbor_item_t *it = ac_dcbor_uint(u[i].v);
        assert_non_null(it);
        assert_int_equal(cbor_int_get_width(it), u[i].w); /* minimal libcbor width by value */
        expect(it, u[i].hex);
    }
    static const struct {
        int64_t v;
        const char *hex;
    } n[] = {
        {0, "00"},
        {1, "01"},
        {-1, "20"},
        {-10, "29"},
        {-24, "37"},
        {-25, "3818"},
        {-100, "3863"},
        {-256, "38ff"},
        {-257, "390100"},
        {-1000, "3903e7"},
        {-65537, "3a00010000"},
        {-4294967297, "3b0000000100000000"},
        {INT64_MAX, "1b7fffffffffffffff"},
        {INT64_MIN, "3b7fffffffffffffff"},
    };
    for (size_t i = 0; i < sizeof n / sizeof *n; i++)
        expect(ac_dcbor_int(n[i].v), n[i].hex);
}

static void strings_and_simple(void **s)
{
    (void)s;
    expect(ac_dcbor_bytes(NULL, 0), "40");
    expect(ac_dcbor_bytes((const uint8_t *)"\x01\x02\x03\x04", 4), "4401020304");
    expect(ac_dcbor_text(NULL, 0), "60");
    expect(ac_dcbor_textz("a"), "6161");
    expect(ac_dcbor_textz("IETF"), "6449455446");
    expect(ac_dcbor_textz("\"\\"), "62225c");
    expect(ac_dcbor_textz("\xc3\xbc"), "62c3bc");
    expect(ac_dcbor_textz("\xe6\xb0\xb4"), "63e6b0b4");
    expect(ac_dcbor_textz("\xf0\x90\x85\x91"), "64f0908591");
    uint8_t b24[24] = {0};
    expect(ac_dcbor_bytes(b24, 24), "5818000000000000000000000000000000000000000000000000");
    expect(ac_dcbor_bool(false), "f4");
    expect(ac_dcbor_bool(true), "f5");
    expect(ac_dcbor_null(), "f6");
    assert_null(ac_dcbor_textz(NULL));
    assert_null(ac_dcbor_bytes(NULL, 3));
}

static void arrays_and_maps(void **s)
{
    (void)s;
    expect(ac_dcbor_array(0), "80");
    cbor_item_t *a = ac_dcbor_array(3);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ac_dcbor_array_push(a, ac_dcbor_uint((uint64_t)i)), 0);
    expect(a, "83010203");
    /* [1, [2, 3], [4, 5]] */
    a = ac_dcbor_array(3);
    cbor_item_t *b = ac_dcbor_array(2), *c = ac_dcbor_array(2);
    assert_int_equal(
        ac_dcbor_array_push(b, ac_dcbor_uint(2)) | ac_dcbor_array_push(b, ac_dcbor_uint(3)), 0);
    assert_int_equal(
        ac_dcbor_array_push(c, ac_dcbor_uint(4)) | ac_dcbor_array_push(c, ac_dcbor_uint(5)), 0);
    assert_int_equal(ac_dcbor_array_push(a, ac_dcbor_uint(1)) | ac_dcbor_array_push(a, b) |
                         ac_dcbor_array_push(a, c),
                     0);
    expect(a, "8301820203820405");
    /* [1, ..., 25] */
    a = ac_dcbor_array(25);
    for (int i = 1; i <= 25; i++)
        assert_int_equal(ac_dcbor_array_push(a, ac_dcbor_uint((uint64_t)i)), 0);
    expect(a, "98190102030405060708090a0b0c0d0e0f101112131415161718181819");
    /* a full array refuses more, and the pushed item is still released */
    a = ac_dcbor_array(1);
    assert_int_equal(ac_dcbor_array_push(a, ac_dcbor_uint(1)), 0);
    assert_int_equal(ac_dcbor_array_push(a, ac_dcbor_uint(2)), -1);
    assert_int_equal(ac_dcbor_array_push(a, NULL), -1);
    assert_int_equal(ac_dcbor_array_push(NULL, ac_dcbor_uint(2)), -1);
    assert_int_equal(ac_dcbor_map_put(a, ac_dcbor_uint(1), ac_dcbor_uint(2)), -1); /* not a map */
    expect(a, "8101");

    expect(ac_dcbor_map(0), "a0");
    /* {1: 2, 3: 4}, inserted backwards */
    cbor_item_t *m = ac_dcbor_map(2);
    assert_int_equal(ac_dcbor_map_put(m, ac_dcbor_uint(3), ac_dcbor_uint(4)), 0);
    assert_int_equal(ac_dcbor_map_put(m, ac_dcbor_uint(1), ac_dcbor_uint(2)), 0);
    expect(m, "a201020304");
    /* {"a": 1, "b": [2, 3]} */
    m = ac_dcbor_map(2);
    b = ac_dcbor_array(2);
    assert_int_equal(
        ac_dcbor_array_push(b, ac_dcbor_uint(2)) | ac_dcbor_array_push(b, ac_dcbor_uint(3)), 0);
    assert_int_equal(ac_dcbor_map_putz(m, "b", b) | ac_dcbor_map_putz(m, "a", ac_dcbor_uint(1)), 0);
    expect(m, "a26161016162820203");
    /* ["a", {"b": "c"}] */
    a = ac_dcbor_array(2);
    m = ac_dcbor_map(1);
    assert_int_equal(ac_dcbor_map_putz(m, "b", ac_dcbor_textz("c")), 0);
    assert_int_equal(ac_dcbor_array_push(a, ac_dcbor_textz("a")) | ac_dcbor_array_push(a, m), 0);
    expect(a, "826161a161626163");
    /* {"a": "A", ..., "e": "E"} inserted in a scrambled order */
    m = ac_dcbor_map(5);
    static const char *const order[] = {"c", "e", "a", "d", "b"};
    for (int i = 0; i < 5; i++) {
        char up[2] = {(char)(order[i][0] - 'a' + 'A'), 0};
        assert_int_equal(ac_dcbor_map_putz(m, order[i], ac_dcbor_textz(up)), 0);
    }
    expect(m, "a56161614161626142616361436164614461656145");
    /* a full map refuses more */
    m = ac_dcbor_map(1);
    assert_int_equal(ac_dcbor_map_putz(m, "a", ac_dcbor_uint(1)), 0);
    assert_int_equal(ac_dcbor_map_putz(m, "b", ac_dcbor_uint(2)), -1);
    assert_int_equal(ac_dcbor_map_put(m, NULL, ac_dcbor_uint(2)), -1);
    assert_int_equal(ac_dcbor_map_put(m, ac_dcbor_uint(2), NULL), -1);
    assert_int_equal(ac_dcbor_map_put(NULL, ac_dcbor_uint(2), ac_dcbor_uint(2)), -1);
    expect(m, "a1616101");
}

/* RFC 8949 §4.2.1: keys 10, 100, -1, "z", "aa", [100], [-1], false sort in this order, because
 * their encodings 0a < 1864 < 20 < 617a < 626161 < 811864 < 8120 < f4 bytewise. */
static void key_order(void **s)
{
    (void)s;
    static const char *const sorted_hex[] = {"0a",     "1864",   "20",   "617a",
                                             "626161", "811864", "8120", "f4"};
    cbor_item_t *m = ac_dcbor_map(8);
    for (int k = 7; k >= 0; k--) { /* insert in reverse */
        cbor_item_t *key;
        switch (k) {
        case 0:
            key = ac_dcbor_uint(10);
            break;
        case 1:
            key = ac_dcbor_uint(100);
            break;
        case 2:
            key = ac_dcbor_int(-1);
            break;
        case 3:
            key = ac_dcbor_textz("z");
            break;
        case 4:
            key = ac_dcbor_textz("aa");
            break;
        case 5:
            key = ac_dcbor_array(1);
            assert_int_equal(ac_dcbor_array_push(key, ac_dcbor_uint(100)), 0);
            break;
        case 6:
            key = ac_dcbor_array(1);
            assert_int_equal(ac_dcbor_array_push(key, ac_dcbor_int(-1)), 0);
            break;
        default:
            key = ac_dcbor_bool(false);
            break;
        }
        assert_int_equal(ac_dcbor_map_put(m, key, ac_dcbor_uint((uint64_t)k)), 0);
    }
    char want[256] = "a8";
    for (int k = 0; k < 8; k++) {
        strcat(want, sorted_hex[k]);
        char v[3];
        snprintf(v, sizeof v, "%02x", k);
        strcat(want, v);
    }
    expect(m, want);
    /* the same keys in any other order are rejected by the checker */
    assert_int_equal(check_hex("a2"
                               "1864"
                               "00"
                               "0a"
                               "00",
                               NULL, 0),
                     AC_DCBOR_EUNSORTED);
    assert_int_equal(check_hex("a2"
                               "20"
                               "00"
                               "1864"
                               "00",
                               NULL, 0),
                     AC_DCBOR_EUNSORTED);
    assert_int_equal(check_hex("a2"
                               "8120"
                               "00"
                               "811864"
                               "00",
                               NULL, 0),
                     AC_DCBOR_EUNSORTED);
    assert_int_equal(check_hex("a2"
                               "626161"
                               "00"
                               "617a"
                               "00",
                               NULL, 0),
                     AC_DCBOR_EUNSORTED);
    /* nested maps are sorted too */
    cbor_item_t *outer = ac_dcbor_map(1), *inner = ac_dcbor_map(2);
    assert_int_equal(ac_dcbor_map_putz(inner, "zz", ac_dcbor_uint(1)) |
                         ac_dcbor_map_putz(inner, "b", ac_dcbor_uint(2)),
                     0);
    assert_int_equal(ac_dcbor_map_putz(outer, "m", inner), 0);
    expect(outer, "a1616da2616202627a7a01");
}

static void duplicates(void **s)
{
    (void)s;
    cbor_item_t *m = ac_dcbor_map(2);
    assert_int_equal(ac_dcbor_map_putz(m, "a", ac_dcbor_uint(1)), 0);
    assert_int_equal(ac_dcbor_map_putz(m, "a", ac_dcbor_uint(2)), 0);
    uint8_t *out = (uint8_t *)1;
    size_t len = 7;
    assert_int_equal(ac_dcbor_encode(m, &out, &len), AC_DCBOR_EDUPLICATE);
    assert_null(out);
    assert_int_equal(len, 0);
    cbor_decref(&m);
    /* 1 and 1 encoded alike even when libcbor stores them in different widths */
    m = ac_dcbor_map(2);
    assert_int_equal(ac_dcbor_map_put(m, cbor_build_uint8(1), ac_dcbor_null()), 0);
    assert_int_equal(ac_dcbor_map_put(m, cbor_build_uint64(1), ac_dcbor_null()), 0);
    assert_int_equal(ac_dcbor_encode(m, &out, &len), AC_DCBOR_EDUPLICATE);
    cbor_decref(&m);
    assert_int_equal(check_hex("a2"
                               "01"
                               "00"
                               "01"
                               "00",
                               NULL, 0),
                     AC_DCBOR_EDUPLICATE);
    assert_int_equal(check_hex("a2"
                               "6161"
                               "00"
                               "6161"
                               "01",
                               NULL, 0),
                     AC_DCBOR_EDUPLICATE);
}

/* ---- the checker --------------------------------------------------------------------------- */

static void checker(void **s)
{
    (void)s;
    static const struct {
        const char *hex;
        enum ac_dcbor_status st;
    } cases[] = {
        {"00", AC_DCBOR_OK},
        {"a0", AC_DCBOR_OK},
        {"80", AC_DCBOR_OK},
        {"f4", AC_DCBOR_OK},
        {"f6", AC_DCBOR_OK},
        {"3b7fffffffffffffff", AC_DCBOR_OK},
        {"3bffffffffffffffff", AC_DCBOR_OK}, /* -2^64: valid CBOR, beyond int64 */
        /* non-minimal integers */
        {"1817", AC_DCBOR_ENONMINIMAL},
        {"190017", AC_DCBOR_ENONMINIMAL},
        {"1900ff", AC_DCBOR_ENONMINIMAL},
        {"1a0000ffff", AC_DCBOR_ENONMINIMAL},
        {"1b00000000ffffffff", AC_DCBOR_ENONMINIMAL},
        {"3817", AC_DCBOR_ENONMINIMAL},
        {"390000", AC_DCBOR_ENONMINIMAL},
        /* non-minimal lengths */
        {"580161", AC_DCBOR_ENONMINIMAL},
        {"78016161", AC_DCBOR_ENONMINIMAL},
        {"79000161", AC_DCBOR_ENONMINIMAL},
        {"980101", AC_DCBOR_ENONMINIMAL},
        {"b8010101", AC_DCBOR_ENONMINIMAL},
        {"81980101", AC_DCBOR_ENONMINIMAL},
        /* indefinite lengths */
        {"5f4161ff", AC_DCBOR_EINDEFINITE},
        {"7f6161ff", AC_DCBOR_EINDEFINITE},
        {"9fff", AC_DCBOR_EINDEFINITE},
        {"9f01ff", AC_DCBOR_EINDEFINITE},
        {"bfff", AC_DCBOR_EINDEFINITE},
        {"819f01ff", AC_DCBOR_EINDEFINITE},
        /* floats and other simple values */
        {"f90000", AC_DCBOR_EFLOAT},
        {"f93c00", AC_DCBOR_EFLOAT},
        {"fa47c35000", AC_DCBOR_EFLOAT},
        {"fb3ff199999999999a", AC_DCBOR_EFLOAT},
        {"f7", AC_DCBOR_ESIMPLE},
        {"f0", AC_DCBOR_EMALFORMED},
        {"f820", AC_DCBOR_EMALFORMED},
        {"f814", AC_DCBOR_EMALFORMED}, /* false in two bytes: invalid */
        /* tags are refused unless allowed */
        {"c074323031332d30332d32315432303a30343a30305a", AC_DCBOR_ETAG},
        {"d82076687474703a2f2f7777772e6578616d706c652e636f6d", AC_DCBOR_ETAG},
        /* structure */
        {"", AC_DCBOR_ETRUNCATED},
        {"19", AC_DCBOR_ETRUNCATED},
        {"1901", AC_DCBOR_ETRUNCATED},
        {"6261", AC_DCBOR_ETRUNCATED},
        {"82", AC_DCBOR_ETRUNCATED},
        {"8201", AC_DCBOR_ETRUNCATED},
        {"a1", AC_DCBOR_ETRUNCATED},
        {"a101", AC_DCBOR_ETRUNCATED},
        {"5bffffffffffffffff", AC_DCBOR_ETRUNCATED},
        {"9bffffffffffffffff", AC_DCBOR_ETRUNCATED},
        {"0000", AC_DCBOR_ETRAILING},
        {"8000", AC_DCBOR_ETRAILING},
        {"ff", AC_DCBOR_EMALFORMED},
        {"81ff", AC_DCBOR_EMALFORMED},
        {"1c", AC_DCBOR_EMALFORMED},
        {"5c", AC_DCBOR_EMALFORMED},
        {"fc", AC_DCBOR_EMALFORMED},
        /* UTF-8 */
        {"61ff", AC_DCBOR_EUTF8},
        {"62c0af", AC_DCBOR_EUTF8},     /* overlong '/' */
        {"63eda080", AC_DCBOR_EUTF8},   /* surrogate */
        {"64f4908080", AC_DCBOR_EUTF8}, /* above U+10FFFF */
        {"62c3", AC_DCBOR_ETRUNCATED},
        {"61c3", AC_DCBOR_EUTF8}, /* cut code point */
        {"41ff", AC_DCBOR_OK},    /* bytes are bytes */
        /* keys: unsorted, duplicate, nested */
        {"a2020001", AC_DCBOR_EUNSORTED}, /* found at the key, before the missing value */
        {"a202000100", AC_DCBOR_EUNSORTED},
        {"a2010002", AC_DCBOR_ETRUNCATED},
        {"a201000200", AC_DCBOR_OK},
        {"a18101a10102", AC_DCBOR_OK},
        {"a2810100810100", AC_DCBOR_EDUPLICATE},
        {"a2810200810100", AC_DCBOR_EUNSORTED},
        {"a1a2020001000000", AC_DCBOR_EUNSORTED}, /* inside a key */
        {"a10ba202000100", AC_DCBOR_EUNSORTED},   /* inside a value */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t buf[256];
        long n = ac_test_unhex(cases[i].hex, buf, sizeof buf);
        if (n < 0) fail_msg("case %zu: bad hex %s", i, cases[i].hex);
        enum ac_dcbor_status st = ac_dcbor_check(buf, (size_t)n, NULL, 0);
        if (st != cases[i].st)
            fail_msg("case %zu (%s): got %s, want %s", i, cases[i].hex, ac_dcbor_strerror(st),
                     ac_dcbor_strerror(cases[i].st));
    }
    /* allowed tags, still minimal */
    static const uint64_t t32[] = {32};
    assert_int_equal(check_hex("d8206161", t32, 1), AC_DCBOR_OK);
    assert_int_equal(check_hex("d900206161", t32, 1), AC_DCBOR_ENONMINIMAL);
    assert_int_equal(check_hex("d8216161", t32, 1), AC_DCBOR_ETAG);
    assert_int_equal(check_hex("d820", t32, 1), AC_DCBOR_ETRUNCATED);
    assert_int_equal(check_hex("d820d8206161", t32, 1), AC_DCBOR_OK);
    assert_int_equal(check_hex("d820f93c00", t32, 1), AC_DCBOR_EFLOAT);
    assert_int_equal(ac_dcbor_check(NULL, 0, NULL, 0), AC_DCBOR_ETRUNCATED);
    cbor_item_t *it = (cbor_item_t *)1;
    uint8_t one = 0x01;
    assert_int_equal(ac_dcbor_decode(&one, 0, NULL, 0, &it), AC_DCBOR_ETRUNCATED);
    assert_null(it);
}

static void depth(void **s)
{
    (void)s;
    uint8_t buf[AC_DCBOR_MAX_DEPTH + 2];
    /* AC_DCBOR_MAX_DEPTH nested one-element arrays around 0 are fine, one more is not */
    memset(buf, 0x81, AC_DCBOR_MAX_DEPTH);
    buf[AC_DCBOR_MAX_DEPTH] = 0x00;
    assert_int_equal(ac_dcbor_check(buf, AC_DCBOR_MAX_DEPTH + 1, NULL, 0), AC_DCBOR_OK);
    memset(buf, 0x81, AC_DCBOR_MAX_DEPTH + 1);
    buf[AC_DCBOR_MAX_DEPTH + 1] = 0x00;
    assert_int_equal(ac_dcbor_check(buf, AC_DCBOR_MAX_DEPTH + 2, NULL, 0), AC_DCBOR_EDEPTH);
    /* the encoder draws the same line */
    for (int extra = 0; extra <= 1; extra++) {
        cbor_item_t *it = ac_dcbor_uint(0);
        for (int i = 0; i < AC_DCBOR_MAX_DEPTH + extra; i++) {
            cbor_item_t *a = ac_dcbor_array(1);
            assert_int_equal(ac_dcbor_array_push(a, it), 0);
            it = a;
        }
        uint8_t *out;
        size_t len;
        enum ac_dcbor_status st = ac_dcbor_encode(it, &out, &len);
        assert_int_equal(st, extra ? AC_DCBOR_EDEPTH : AC_DCBOR_OK);
        if (!extra) {
            assert_int_equal(len, AC_DCBOR_MAX_DEPTH + 1);
            free(out);
        }
        cbor_decref(&it);
    }
}

/* ---- encoding trees that were not built with the builder ----------------------------------- */

static void foreign_items(void **s)
{
    (void)s;
    /* over-wide integers are written minimally */
    expect(cbor_build_uint64(5), "05");
    expect(cbor_build_uint32(1000), "1903e8");
    expect(cbor_build_negint64(0), "20");
    /* indefinite strings, arrays and maps become definite */
    cbor_item_t *bs = cbor_new_indefinite_bytestring();
    assert_true(cbor_bytestring_add_chunk(
        bs, cbor_move(cbor_build_bytestring((const uint8_t *)"\x01\x02", 2))));
    assert_true(cbor_bytestring_add_chunk(
        bs, cbor_move(cbor_build_bytestring((const uint8_t *)"\x03", 1))));
    expect(bs, "43010203");
    cbor_item_t *ts = cbor_new_indefinite_string();
    assert_true(cbor_string_add_chunk(ts, cbor_move(cbor_build_string("\xc3"))));
    assert_true(cbor_string_add_chunk(ts, cbor_move(cbor_build_string("\xbc"))));
    expect(ts, "62c3bc"); /* a code point split across chunks is fine once joined */
    cbor_item_t *ia = cbor_new_indefinite_array();
    assert_true(cbor_array_push(ia, cbor_move(cbor_build_uint8(1))));
    expect(ia, "8101");
    cbor_item_t *im = cbor_new_indefinite_map();
    assert_true(cbor_map_add(
        im, (struct cbor_pair){cbor_move(cbor_build_uint8(2)), cbor_move(cbor_build_uint8(0))}));
    assert_true(cbor_map_add(
        im, (struct cbor_pair){cbor_move(cbor_build_uint8(1)), cbor_move(cbor_build_uint8(0))}));
    expect(im, "a201000200");
    /* tags are written (the checker then needs them allowed) */
    cbor_item_t *tag = cbor_build_tag(32, cbor_move(cbor_build_string("a")));
    uint8_t *out;
    size_t len;
    assert_int_equal(ac_dcbor_encode(tag, &out, &len), AC_DCBOR_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "\xd8\x20\x61\x61", 4);
    static const uint64_t t32[] = {32};
    assert_int_equal(ac_dcbor_check(out, len, NULL, 0), AC_DCBOR_ETAG);
    assert_int_equal(ac_dcbor_check(out, len, t32, 1), AC_DCBOR_OK);
    free(out);
    cbor_decref(&tag);
    /* what has no deterministic form here */
    static const struct {
        int kind;
        enum ac_dcbor_status st;
    } bad[] = {
        {0, AC_DCBOR_EFLOAT}, {1, AC_DCBOR_EFLOAT}, {2, AC_DCBOR_ESIMPLE}, {3, AC_DCBOR_EUTF8}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cbor_item_t *it = bad[i].kind == 0   ? cbor_build_float2(1.0f)
                          : bad[i].kind == 1 ? cbor_build_float8(0.1)
                          : bad[i].kind == 2 ? cbor_new_undef()
                                             : ac_dcbor_text("\xff", 1);
        cbor_item_t *a = ac_dcbor_array(1); /* also when nested */
        assert_int_equal(ac_dcbor_array_push(a, it), 0);
        out = (uint8_t *)1;
        assert_int_equal(ac_dcbor_encode(a, &out, &len), bad[i].st);
        assert_null(out);
        cbor_decref(&a);
    }
    assert_int_equal(ac_dcbor_encode(NULL, &out, &len), AC_DCBOR_EARG);
}

/* ---- failing allocator --------------------------------------------------------------------- */

/* An evidence-like record; returns NULL on any failure, never leaks. */
static cbor_item_t *build_record(void)
{
    cbor_item_t *m = ac_dcbor_map(6);
    cbor_item_t *reasons = ac_dcbor_array(2);
    int rc = ac_dcbor_array_push(reasons, ac_dcbor_textz("amount_over_threshold"));
    rc |= ac_dcbor_array_push(reasons, ac_dcbor_textz("velocity"));
    rc |= ac_dcbor_map_putz(m, "reasons", reasons);
    rc |= ac_dcbor_map_putz(m, "amount", ac_dcbor_int(-1234567890123));
    rc |= ac_dcbor_map_putz(m, "seq", ac_dcbor_uint(70000));
    rc |= ac_dcbor_map_putz(
        m, "digest", ac_dcbor_bytes((const uint8_t *)"0123456789abcdef0123456789abcdef", 32));
    rc |= ac_dcbor_map_putz(m, "ok", ac_dcbor_bool(true));
    rc |= ac_dcbor_map_put(m, ac_dcbor_uint(1), ac_dcbor_null());
    if (rc != 0) {
        if (m) cbor_decref(&m);
        return NULL;
    }
    return m;
}

static void failing_allocator(void **s)
{
    (void)s;
    /* reference encoding, no failures */
    cbor_item_t *ref = build_record();
    assert_non_null(ref);
    uint8_t *want;
    size_t want_len;
    assert_int_equal(ac_dcbor_encode(ref, &want, &want_len), AC_DCBOR_OK);
    cbor_decref(&ref);

    long k, build_fail = 0, encode_fail = 0, decode_fail = 0;
    for (k = 0;; k++) {
        arm(k);
        cbor_item_t *m = build_record();
        uint8_t *out = NULL;
        size_t len = 0;
        enum ac_dcbor_status st = m ? ac_dcbor_encode(m, &out, &len) : AC_DCBOR_ENOMEM;
        cbor_item_t *back = NULL;
        enum ac_dcbor_status dst =
            st == AC_DCBOR_OK ? ac_dcbor_decode(out, len, NULL, 0, &back) : AC_DCBOR_ENOMEM;
        long used = alloc_calls;
        disarm();
        if (!m) {
            build_fail++;
        } else if (st != AC_DCBOR_OK) {
            assert_int_equal(st, AC_DCBOR_ENOMEM);
            assert_null(out);
            encode_fail++;
        } else {
            assert_int_equal(len, want_len);
            assert_memory_equal(out, want, len);
            if (dst != AC_DCBOR_OK) {
                assert_int_equal(dst, AC_DCBOR_ENOMEM);
                assert_null(back);
                decode_fail++;
            }
        }
        if (back) cbor_decref(&back);
        if (m) cbor_decref(&m);
        free(out);
        if (used <= k) break; /* the k-th allocation never came: every point has been failed */
    }
    print_message("failing allocator: %ld points (build %ld, encode %ld, decode %ld)\n", k,
                  build_fail, encode_fail, decode_fail);
    assert_true(build_fail >= 10);
    assert_true(encode_fail >= 2);
    assert_true(decode_fail >= 5);
    free(want);
}

/* ---- streaming writer ------------------------------------------------------------------------
 * The writer against the tree encoder, value by value, at every head width and its edges. */
static void writer_matches_encoder(void **s)
{
    (void)s;
    static const int64_t ints[] = {
        0,  1,   23,  24,   255,  256,    65535,  65536,       4294967295,  4294967296, INT64_MAX,
        -1, -24, -25, -256, -257, -65536, -65537, -4294967296, -4294967297, INT64_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        struct ac_dcbor_w w = {0};
        ac_dcbor_w_int(&w, ints[i]);
        assert_int_equal(w.st, AC_DCBOR_OK);
        cbor_item_t *it = ac_dcbor_int(ints[i]);
        uint8_t *want;
        size_t wlen;
        assert_int_equal(ac_dcbor_encode(it, &want, &wlen), AC_DCBOR_OK);
        cbor_decref(&it);
        if (w.n != wlen || memcmp(w.p, want, wlen) != 0) fail_msg("int %lld", (long long)ints[i]);
        free(want);
        free(w.p);
    }
    struct ac_dcbor_w w = {0};
    ac_dcbor_w_uint(&w, UINT64_MAX);
    assert_int_equal(w.n, 9);
    assert_int_equal(w.p[0], 0x1b);
    free(w.p);

    /* a map of strings and an array, as the evidence encoder writes them */
    char longtext[300];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    const uint8_t bytes[3] = {1, 2, 3};
    w = (struct ac_dcbor_w){0};
    ac_dcbor_w_map(&w, 3);
    ac_dcbor_w_textz(&w, "a");
    ac_dcbor_w_bytes(&w, bytes, sizeof bytes);
    ac_dcbor_w_textz(&w, "bb");
    ac_dcbor_w_textz(&w, longtext);
    ac_dcbor_w_textz(&w, "ccc");
    ac_dcbor_w_array(&w, 2);
    ac_dcbor_w_textz(&w, "\xc3\xa9"); /* e-acute */
    ac_dcbor_w_bytes(&w, NULL, 0);
    assert_int_equal(w.st, AC_DCBOR_OK);
    cbor_item_t *m = ac_dcbor_map(3);
    cbor_item_t *a = ac_dcbor_array(2);
    int rc = ac_dcbor_array_push(a, ac_dcbor_textz("\xc3\xa9"));
    rc |= ac_dcbor_array_push(a, ac_dcbor_bytes(NULL, 0));
    rc |= ac_dcbor_map_putz(m, "ccc", a);
    rc |= ac_dcbor_map_putz(m, "a", ac_dcbor_bytes(bytes, sizeof bytes));
    rc |= ac_dcbor_map_putz(m, "bb", ac_dcbor_textz(longtext));
    uint8_t *want;
    size_t wlen;
    assert_int_equal(ac_dcbor_encode_built(m, rc, &want, &wlen, NULL, 0), 0);
    assert_int_equal(w.n, wlen);
    assert_memory_equal(w.p, want, wlen);
    assert_int_equal(ac_dcbor_check(w.p, w.n, NULL, 0), AC_DCBOR_OK);
    free(want);
    free(w.p);

    /* errors are sticky: invalid UTF-8, NULL text, NULL bytes with a length */
    w = (struct ac_dcbor_w){0};
    ac_dcbor_w_textz(&w, "\xc0\xaf"); /* overlong '/' */
    ac_dcbor_w_uint(&w, 1);
    assert_int_equal(w.st, AC_DCBOR_EUTF8);
    free(w.p);
    w = (struct ac_dcbor_w){0};
    ac_dcbor_w_textz(&w, NULL);
    assert_int_equal(w.st, AC_DCBOR_EARG);
    free(w.p);
    w = (struct ac_dcbor_w){0};
    ac_dcbor_w_bytes(&w, NULL, 1);
    assert_int_equal(w.st, AC_DCBOR_EARG);
    free(w.p);
    /* out of memory: the first allocation fails, nothing is written, the error stays */
    w = (struct ac_dcbor_w){0};
    arm(0);
    ac_dcbor_w_textz(&w, "a");
    disarm();
    assert_int_equal(w.st, AC_DCBOR_ENOMEM);
    assert_null(w.p);
    ac_dcbor_w_uint(&w, 1);
    assert_int_equal(w.st, AC_DCBOR_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers),
        cmocka_unit_test(writer_matches_encoder),
        cmocka_unit_test(strings_and_simple),
        cmocka_unit_test(arrays_and_maps),
        cmocka_unit_test(key_order),
        cmocka_unit_test(duplicates),
        cmocka_unit_test(checker),
        cmocka_unit_test(depth),
        cmocka_unit_test(foreign_items),
        cmocka_unit_test(failing_allocator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
