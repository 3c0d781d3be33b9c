/* RFC 8941 Structured Field Values: the RFC's own examples (parsed and re-serialized to their
 * canonical form), the grammar's bounds, many malformed inputs, the serializer's refusals, and
 * a deterministic mutation run checking parse -> serialize -> parse is stable. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sfv.h"

enum kind { LIST, DICT, ITEM };

/* Parse in as kind and serialize; returns the rc and writes the canonical form to out. */
static int roundtrip(enum kind k, const char *in, size_t len, char *out, size_t cap)
{
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    int rc;
    long n = -1;
    if (k == LIST) {
        struct ac_sfv_list l;
        rc = ac_sfv_parse_list(in, len, &a, &l);
        if (rc == AC_SFV_OK) n = ac_sfv_ser_list(&l, out, cap);
    } else if (k == DICT) {
        struct ac_sfv_dict d;
        rc = ac_sfv_parse_dict(in, len, &a, &d);
        if (rc == AC_SFV_OK) n = ac_sfv_ser_dict(&d, out, cap);
    } else {
        struct ac_sfv_item it;
        rc = ac_sfv_parse_item(in, len, &a, &it);
        if (rc == AC_SFV_OK) n = ac_sfv_ser_item(&it, out, cap);
    }
    ac_sfv_arena_release(&a);
    if (rc == AC_SFV_OK) assert_true(n >= 0);
    return rc;
}

static void canon(enum kind k, const char *in, const char *want)
{
    char out[1024];
    int rc = roundtrip(k, in, strlen(in), out, sizeof out);
    if (rc != AC_SFV_OK) fail_msg("parse failed (%d): [%s]", rc, in);
    if (strcmp(out, want) != 0) fail_msg("[%s] -> [%s], want [%s]", in, out, want);
}

static void bad(enum kind k, const char *in, size_t len)
{
    char out[1024];
    int rc = roundtrip(k, in, len, out, sizeof out);
    if (rc != AC_SFV_ESYNTAX) fail_msg("accepted (%d) kind %d: [%.*s]", rc, k, (int)len, in);
}

#define BAD(k, s) bad(k, s, sizeof(s) - 1)

/* ---- RFC 8941 examples ------------------------------------------------------------------- */

static void rfc_lists(void **s)
{
    (void)s;
    /* §3.1 */
    canon(LIST, "sugar, tea, rum", "sugar, tea, rum");
    canon(LIST, "\"foo\", \"bar\", \"It was the best of times.\"",
          "\"foo\", \"bar\", \"It was the best of times.\"");
    canon(LIST, "foo, bar", "foo, bar");
    /* §3.1.1 */
    canon(LIST, "(\"foo\" \"bar\"), (\"baz\"), (\"bat\" \"one\"), ()",
          "(\"foo\" \"bar\"), (\"baz\"), (\"bat\" \"one\"), ()");
    canon(LIST, "(\"foo\"; a=1;b=2);lvl=5, (\"bar\" \"baz\");lvl=1",
          "(\"foo\";a=1;b=2);lvl=5, (\"bar\" \"baz\");lvl=1");
    /* §3.1.2 */
    canon(LIST, "abc;a=1;b=2; cde_456, (ghi;jk=4 l);q=\"9\";r=w",
          "abc;a=1;b=2;cde_456, (ghi;jk=4 l);q=\"9\";r=w");
    /* §4.2: OWS around commas, SP inside inner lists */
    canon(LIST, "1 ,\t2,3", "1, 2, 3");
    canon(LIST, "(  1   2  )", "(1 2)");
    canon(LIST, "", "");
    canon(LIST, "   ", "");
}

static void rfc_dicts(void **s)
{
    (void)s;
    /* §3.2 */
    canon(DICT, "en=\"Applepie\", da=:w4ZibGV0w6ZydGUK:", "en=\"Applepie\", da=:w4ZibGV0w6ZydGUK:");
    canon(DICT, "a=?0, b, c; foo=bar", "a=?0, b, c;foo=bar");
    canon(DICT, "rating=1.5, feelings=(joy sadness)", "rating=1.5, feelings=(joy sadness)");
    canon(DICT, "a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid", "a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid");
    /* duplicate keys: last value wins, position of the first (§4.2.2) */
    canon(DICT, "a=1, b=2, a=3", "a=3, b=2");
    canon(DICT, "a=1,b=2;x=1,a", "a, b=2;x=1");
    /* Boolean true members and parameters are written bare */
    canon(DICT, "a=?1;b=?1", "a;b");
    canon(DICT, "*a=1, a*b.c_d-e=2", "*a=1, a*b.c_d-e=2");

    /* the decoded byte sequence is "\xc3\x86blet\xc3\xa6rte\n" (base64 -d) */
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    struct ac_sfv_dict d;
    const char *in = "en=\"Applepie\", da=:w4ZibGV0w6ZydGUK:";
    assert_int_equal(ac_sfv_parse_dict(in, strlen(in), &a, &d), AC_SFV_OK);
    assert_int_equal(d.n, 2);
    const struct ac_sfv_dict_entry *e = ac_sfv_dict_get(&d, "da");
    assert_non_null(e);
    assert_int_equal(e->value.bare.type, AC_SFV_BYTES);
    assert_int_equal(e->value.bare.len, 12);
    assert_memory_equal(e->value.bare.str,
                        "\xc3\x86"
                        "blet\xc3\xa6rte\n",
                        12);
    e = ac_sfv_dict_get(&d, "en");
    assert_int_equal(e->value.bare.type, AC_SFV_STRING);
    assert_string_equal(e->value.bare.str, "Applepie");
    assert_null(ac_sfv_dict_get(&d, "fr"));
    ac_sfv_arena_release(&a);
    ac_sfv_arena_release(&a); /* twice is fine */
}

static void rfc_items(void **s)
{
    (void)s;
    canon(ITEM, "42", "42");
    canon(ITEM, "-42", "-42");
    canon(ITEM, "4.5", "4.5");
    canon(ITEM, "\"hello world\"", "\"hello world\"");
    canon(ITEM, "foo123/456", "foo123/456");
    canon(ITEM, ":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:",
          ":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:");
    canon(ITEM, "?1", "?1");
    canon(ITEM, "?0", "?0");
    canon(ITEM, "5; foo=bar", "5;foo=bar");
    canon(ITEM, "  7  ", "7");
    /* parameters: duplicate keys overwrite (§4.2.3.2) */
    canon(ITEM, "1;a=1;b=2;a=3", "1;a=3;b=2");
    /* Strings: escapes */
    canon(ITEM, "\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\"");
    canon(ITEM, "\"\"", "\"\"");
    /* Tokens */
    canon(ITEM, "*", "*");
    canon(ITEM, "A:b/c!#$%&'*+-.^_`|~9", "A:b/c!#$%&'*+-.^_`|~9");

    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    struct ac_sfv_item it;
    assert_int_equal(ac_sfv_parse_item("\"a\\\"b\"", 6, &a, &it), AC_SFV_OK);
    assert_int_equal(it.bare.type, AC_SFV_STRING);
    assert_int_equal(it.bare.len, 3);
    assert_string_equal(it.bare.str, "a\"b");
    assert_int_equal(
        ac_sfv_parse_item(":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:", 46, &a, &it),
        AC_SFV_OK);
    assert_int_equal(it.bare.len, 31);
    assert_memory_equal(it.bare.str, "pretend this is binary content.", 31);
    assert_int_equal(ac_sfv_parse_item("5; foo=bar", 10, &a, &it), AC_SFV_OK);
    assert_int_equal(it.bare.type, AC_SFV_INTEGER);
    assert_int_equal(it.bare.num, 5);
    assert_int_equal(it.nparams, 1);
    const struct ac_sfv_param *p = ac_sfv_param_get(it.params, it.nparams, "foo");
    assert_non_null(p);
    assert_int_equal(p->value.type, AC_SFV_TOKEN);
    assert_string_equal(p->value.str, "bar");
    assert_null(ac_sfv_param_get(it.params, it.nparams, "bar"));
    ac_sfv_arena_release(&a);
}

/* ---- numbers ----------------------------------------------------------------------------- */

static int64_t num_of(const char *in, enum ac_sfv_type want)
{
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    struct ac_sfv_item it;
    assert_int_equal(ac_sfv_parse_item(in, strlen(in), &a, &it), AC_SFV_OK);
    assert_int_equal(it.bare.type, want);
    int64_t v = it.bare.num;
    ac_sfv_arena_release(&a);
    return v;
}

static void numbers(void **s)
{
    (void)s;
    assert_int_equal(num_of("999999999999999", AC_SFV_INTEGER), 999999999999999LL);
    assert_int_equal(num_of("-999999999999999", AC_SFV_INTEGER), -999999999999999LL);
    assert_int_equal(num_of("000000000000001", AC_SFV_INTEGER), 1);
    assert_int_equal(num_of("-0", AC_SFV_INTEGER), 0);
    assert_int_equal(num_of("4.5", AC_SFV_DECIMAL), 4500);
    assert_int_equal(num_of("-0.5", AC_SFV_DECIMAL), -500);
    assert_int_equal(num_of("1.05", AC_SFV_DECIMAL), 1050);
    assert_int_equal(num_of("999999999999.999", AC_SFV_DECIMAL), 999999999999999LL);
    assert_int_equal(num_of("-999999999999.999", AC_SFV_DECIMAL), -999999999999999LL);
    canon(ITEM, "1.0", "1.0");
    canon(ITEM, "0.100", "0.1");
    canon(ITEM, "-0.000", "0.0");
    canon(ITEM, "-0.5", "-0.5");
    canon(ITEM, "007", "7");
    canon(ITEM, "123456789012.12", "123456789012.12");

    BAD(ITEM, "1234567890123456"); /* 16 digits */
    BAD(ITEM, "-1234567890123456");
    BAD(ITEM, "1234567890123.0"); /* 13 integer digits in a decimal */
    BAD(ITEM, "1.1234");          /* 4 fractional digits */
    BAD(ITEM, "123456789012.1234");
    BAD(ITEM, "1.");
    BAD(ITEM, "-");
    BAD(ITEM, "--1");
    BAD(ITEM, "- 1");
    BAD(ITEM, "-a");
    BAD(ITEM, "1.2.3");
    BAD(ITEM, ".5");
    BAD(ITEM, "1e3");
    BAD(ITEM, "+1");
}

/* ---- malformed input --------------------------------------------------------------------- */

static void bad_items(void **s)
{
    (void)s;
    BAD(ITEM, "");
    BAD(ITEM, "   ");
    BAD(ITEM, "\t1"); /* only SP is discarded at the edges */
    BAD(ITEM, "1\t");
    BAD(ITEM, "1 2");
    BAD(ITEM, "1,2");   /* a List, not an Item */
    BAD(ITEM, "(1 2)"); /* an Inner List is not an Item */
    BAD(ITEM, "a=1");
    /* strings */
    BAD(ITEM, "\"abc");
    BAD(ITEM, "\"abc\\");
    BAD(ITEM, "\"a\\b\""); /* only \" and \\ escapes */
    BAD(ITEM, "\"a\\\"");
    BAD(ITEM, "\"a\tb\"");
    BAD(ITEM, "\"a\x01"
              "b\"");
    BAD(ITEM, "\"a\x7f"
              "b\"");
    BAD(ITEM, "\"caf\xc3\xa9\""); /* non-ASCII */
    BAD(ITEM, "\"a\0b\"");        /* NUL inside */
    /* tokens */
    BAD(ITEM, "a b");
    BAD(ITEM, "a\"b");
    BAD(ITEM, "a(b");
    BAD(ITEM, "_abc");
    BAD(ITEM, "\xc3\xa9t\xc3\xa9");
    /* byte sequences */
    BAD(ITEM, ":abc");
    BAD(ITEM, ":a*c:");
    BAD(ITEM, ":aGVs bG8=:");
    BAD(ITEM, ":=aGVsbG8:");   /* padding at the beginning */
    BAD(ITEM, ":aGVs=bG8=:");  /* padding in the middle */
    BAD(ITEM, ":aGVsbG8===:"); /* three "=" */
    BAD(ITEM, ":aGVsbA=:");    /* "=" that does not complete a quantum */
    BAD(ITEM, ":aGVsb:");      /* a lone trailing sextet */
    BAD(ITEM, ":aGVsbG8=.:");
    BAD(ITEM, "::x");
    /* booleans */
    BAD(ITEM, "?");
    BAD(ITEM, "?2");
    BAD(ITEM, "?01");
    BAD(ITEM, "?a");
    BAD(ITEM, "?1 ?0");
    /* parameters */
    BAD(ITEM, "1;");
    BAD(ITEM, "1;A=1");
    BAD(ITEM, "1;1a=1");
    BAD(ITEM, "1;a=");
    BAD(ITEM, "1 ;a=1");
    BAD(ITEM, "1;a =1");
    BAD(ITEM, "1;a= 1");
    BAD(ITEM, "1;a=(1)");
    BAD(ITEM, "1;a=1;");
    BAD(ITEM, "1;a;b=\"x");
    BAD(ITEM, "@1");
    BAD(ITEM, "%\"x\"");
}

static void bad_lists_dicts(void **s)
{
    (void)s;
    BAD(LIST, "1,");
    BAD(LIST, "1, ");
    BAD(LIST, ",1");
    BAD(LIST, "1,,2");
    BAD(LIST, "1 2");
    BAD(LIST, "1;a=1 2");
    BAD(LIST, "(1,2)");
    BAD(LIST, "(1 2");
    BAD(LIST, "(");
    BAD(LIST, "(1 2)x");
    BAD(LIST, "(1\t2)");
    BAD(LIST, "(1 (2))");
    BAD(LIST, "((1))");
    BAD(LIST, "(1)(2)");
    BAD(LIST, "\t1");
    BAD(LIST, "1;");
    BAD(LIST, "a=1");
    BAD(LIST, "\xff");

    BAD(DICT, "A=1");
    BAD(DICT, "1=1");
    BAD(DICT, "_a=1");
    BAD(DICT, "a=1,");
    BAD(DICT, "a=1,,b=2");
    BAD(DICT, "a=1 b=2");
    BAD(DICT, "a==1");
    BAD(DICT, "a=");
    BAD(DICT, "a=1;");
    BAD(DICT, "a=(1 2");
    canon(DICT, "a=1;b", "a=1;b");
    BAD(DICT, "a=1, (1)");
    BAD(DICT, "a=\"x\" , b=");
    BAD(DICT, "aB=1");
    BAD(DICT, "a=1,\x00"
              "b=2");
    BAD(DICT, "\"a\"=1");
    BAD(DICT, "a:1");
    canon(DICT, "a=1 ,\tb=2 ", "a=1, b=2");
}

/* ---- size caps and the arena ------------------------------------------------------------- */

static void caps(void **s)
{
    (void)s;
    char *big = malloc(AC_SFV_MAX_INPUT + 2);
    assert_non_null(big);
    /* a token of exactly the cap parses; one byte more is refused */
    memset(big, 'a', AC_SFV_MAX_INPUT + 1);
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    struct ac_sfv_item it;
    assert_int_equal(ac_sfv_parse_item(big, AC_SFV_MAX_INPUT, &a, &it), AC_SFV_OK);
    assert_int_equal(it.bare.len, AC_SFV_MAX_INPUT);
    assert_int_equal(ac_sfv_parse_item(big, AC_SFV_MAX_INPUT + 1, &a, &it), AC_SFV_ETOOBIG);
    ac_sfv_arena_release(&a);

    /* the densest List the cap allows: 4096 one-digit members */
    for (size_t i = 0; i < AC_SFV_MAX_INPUT; i += 2) {
        big[i] = '1';
        big[i + 1] = ',';
    }
    struct ac_sfv_list l;
    assert_int_equal(ac_sfv_parse_list(big, AC_SFV_MAX_INPUT - 1, &a, &l), AC_SFV_OK);
    assert_int_equal(l.n, AC_SFV_MAX_INPUT / 2);
    assert_true(a.total <= AC_SFV_ARENA_MAX);
    ac_sfv_arena_release(&a);

    /* the densest parameters: 1;a;a;a... and many distinct keys */
    big[0] = '1';
    for (size_t i = 1; i < AC_SFV_MAX_INPUT; i += 2) {
        big[i] = ';';
        big[i + 1] = 'a';
    }
    assert_int_equal(ac_sfv_parse_item(big, AC_SFV_MAX_INPUT - 1, &a, &it), AC_SFV_OK);
    assert_int_equal(it.nparams, 1);
    ac_sfv_arena_release(&a);
    size_t pos = 0;
    for (unsigned k = 0; pos + 8 < AC_SFV_MAX_INPUT; k++) {
        int w = snprintf(big + pos, AC_SFV_MAX_INPUT - pos, "%sk%u=%u", k ? ", " : "", k, k);
        pos += (size_t)w;
    }
    struct ac_sfv_dict d;
    assert_int_equal(ac_sfv_parse_dict(big, pos, &a, &d), AC_SFV_OK);
    assert_true(d.n > 500);
    ac_sfv_arena_release(&a);

    /* the arena refuses what would exceed its cap and stays usable */
    assert_null(ac_sfv_alloc(&a, AC_SFV_ARENA_MAX + 1));
    void *p1 = ac_sfv_alloc(&a, AC_SFV_ARENA_MAX / 2);
    assert_non_null(p1);
    assert_null(ac_sfv_alloc(&a, AC_SFV_ARENA_MAX / 2 + 1));
    assert_non_null(ac_sfv_alloc(&a, 16));
    ac_sfv_arena_release(&a);
    free(big);

    /* NULL with length 0 is an empty List; NULL with a length is refused */
    assert_int_equal(ac_sfv_parse_list(NULL, 0, &a, &l), AC_SFV_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(ac_sfv_parse_list(NULL, 3, &a, &l), AC_SFV_ESYNTAX);
    ac_sfv_arena_release(&a);
}

/* ---- serializer -------------------------------------------------------------------------- */

static void serializer(void **s)
{
    (void)s;
    char out[64];
    struct ac_sfv_bare b = {.type = AC_SFV_INTEGER, .num = AC_SFV_INT_MAX};
    assert_int_equal(ac_sfv_ser_bare(&b, out, sizeof out), 15);
    b.num = AC_SFV_INT_MAX + 1;
    assert_int_equal(ac_sfv_ser_bare(&b, out, sizeof out), -1);
    b.num = -AC_SFV_INT_MAX - 1;
    assert_int_equal(ac_sfv_ser_bare(&b, out, sizeof out), -1);
    b.type = AC_SFV_DECIMAL;
    b.num = AC_SFV_DEC_MAX + 1;
    assert_int_equal(ac_sfv_ser_bare(&b, out, sizeof out), -1);
    b.num = 12340;
    assert_int_equal(ac_sfv_ser_bare(&b, out, sizeof out), 5);
    assert_string_equal(out, "12.34");

    struct ac_sfv_bare str = {.type = AC_SFV_STRING, .str = "a\x7f", .len = 2};
    assert_int_equal(ac_sfv_ser_bare(&str, out, sizeof out), -1);
    str.str = "a\nb";
    str.len = 3;
    assert_int_equal(ac_sfv_ser_bare(&str, out, sizeof out), -1);
    str.str = "say \"hi\" \\o/";
    str.len = strlen(str.str);
    assert_true(ac_sfv_ser_bare(&str, out, sizeof out) > 0);
    assert_string_equal(out, "\"say \\\"hi\\\" \\\\o/\"");

    struct ac_sfv_bare tok = {.type = AC_SFV_TOKEN, .str = "1a", .len = 2};
    assert_int_equal(ac_sfv_ser_bare(&tok, out, sizeof out), -1);
    tok.str = "a b";
    tok.len = 3;
    assert_int_equal(ac_sfv_ser_bare(&tok, out, sizeof out), -1);
    tok.len = 0;
    assert_int_equal(ac_sfv_ser_bare(&tok, out, sizeof out), -1);

    struct ac_sfv_bare boo = {.type = AC_SFV_BOOLEAN, .num = 2};
    assert_int_equal(ac_sfv_ser_bare(&boo, out, sizeof out), -1);
    struct ac_sfv_bare il = {.type = AC_SFV_INNER_LIST};
    assert_int_equal(ac_sfv_ser_bare(&il, out, sizeof out), -1);

    /* byte sequences: every remainder length, padded */
    struct ac_sfv_bare by = {.type = AC_SFV_BYTES, .str = "hello", .len = 5};
    assert_true(ac_sfv_ser_bare(&by, out, sizeof out) > 0);
    assert_string_equal(out, ":aGVsbG8=:");
    by.len = 4;
    assert_true(ac_sfv_ser_bare(&by, out, sizeof out) > 0);
    assert_string_equal(out, ":aGVsbA==:");
    by.len = 3;
    assert_true(ac_sfv_ser_bare(&by, out, sizeof out) > 0);
    assert_string_equal(out, ":aGVs:");
    by.len = 0;
    assert_true(ac_sfv_ser_bare(&by, out, sizeof out) > 0);
    assert_string_equal(out, "::");

    /* invalid keys */
    struct ac_sfv_param p = {.key = "Ab", .value = {.type = AC_SFV_INTEGER, .num = 1}};
    assert_int_equal(ac_sfv_ser_params(&p, 1, out, sizeof out), -1);
    p.key = "";
    assert_int_equal(ac_sfv_ser_params(&p, 1, out, sizeof out), -1);
    p.key = "ab";
    assert_int_equal(ac_sfv_ser_params(&p, 1, out, sizeof out), 5);
    assert_string_equal(out, ";ab=1");
    assert_int_equal(ac_sfv_ser_params(NULL, 0, out, sizeof out), 0);
    assert_string_equal(out, "");

    /* buffer too small: -1, still NUL-terminated; exact fit works */
    by.len = 5;
    assert_int_equal(ac_sfv_ser_bare(&by, out, 10), -1);
    assert_true(strlen(out) < 10);
    assert_int_equal(ac_sfv_ser_bare(&by, out, 11), 10);
    assert_int_equal(ac_sfv_ser_bare(&by, NULL, 0), -1);

    assert_true(ac_sfv_is_key("*a.b-c_d*1"));
    assert_false(ac_sfv_is_key("a b"));
    assert_false(ac_sfv_is_key(NULL));
    assert_true(ac_sfv_is_token("foo123/456", 10));
    assert_false(ac_sfv_is_token("/a", 2));
}

/* ---- stability under mutation ------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* canonical output must re-parse to the same canonical output */
static void stable(enum kind k, const char *in, size_t len)
{
    char out1[4096], out2[4096];
    if (roundtrip(k, in, len, out1, sizeof out1) != AC_SFV_OK) return;
    int rc = roundtrip(k, out1, strlen(out1), out2, sizeof out2);
    if (rc != AC_SFV_OK) fail_msg("canonical form does not re-parse: [%s]", out1);
    if (strcmp(out1, out2) != 0) fail_msg("unstable: [%s] -> [%s]", out1, out2);
}

static void mutations(void **s)
{
    (void)s;
    static const char *const seeds[] = {
        "sig1=(\"@method\" \"@authority\" \"content-digest\";sf);created=1618884473;"
        "keyid=\"test-key\";nonce=\"abc\";tag=\"agentclear\"",
        "a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid",
        "en=\"Applepie\", da=:w4ZibGV0w6ZydGUK:",
        "(\"foo\"; a=1;b=2);lvl=5, (\"bar\" \"baz\");lvl=1",
        "abc;a=1;b=2; cde_456, (ghi;jk=4 l);q=\"9\";r=w",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, a=-12.345, b=?0",
    };
    static const char alphabet[] = "\"\\()=;,:? \t*-.0123456789aAzZ/+=@%\x7f\x80\x01";
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[next_rand() % (sizeof seeds / sizeof seeds[0])];
        char buf[512];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits && n > 0; e++) {
            size_t at = next_rand() % n;
            char c = alphabet[next_rand() % (sizeof alphabet - 1)];
            switch (next_rand() % 3) {
            case 0:
                buf[at] = c;
                break;
            case 1:
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            default:
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                }
            }
        }
        for (int k = LIST; k <= ITEM; k++) {
            char out[4096];
            if (roundtrip((enum kind)k, buf, n, out, sizeof out) == AC_SFV_OK) accepted++;
            stable((enum kind)k, buf, n);
        }
    }
    assert_true(accepted > 1000); /* the run exercised the accepting paths too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_lists), cmocka_unit_test(rfc_dicts),
        cmocka_unit_test(rfc_items), cmocka_unit_test(numbers),
        cmocka_unit_test(bad_items), cmocka_unit_test(bad_lists_dicts),
        cmocka_unit_test(caps),      cmocka_unit_test(serializer),
        cmocka_unit_test(mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
