/* RFC 9530 Content-Digest: the RFC 9421 appendix B.2 request's sha-512 (read from the shared
 * vector file, checked against a digest computed here), sha-256/sha-512 produced and verified,
 * unknown algorithms ignored, every failure code. */
#include "tests/support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocol/b64.h"
#include "protocol/digest.h"
#include "protocol/sfv.h"

static const char body[] = "{\"hello\": \"world\"}"; /* RFC 9421 B.2 / RFC 9530 examples */
#define BODY ((const uint8_t *)body)
#define BODY_LEN (sizeof body - 1)

static enum ac_ec verify(const char *hdr, const uint8_t *b, size_t n)
{
    return ac_digest_verify(hdr, hdr ? strlen(hdr) : 0, b, n);
}

/* "<key>=:<base64 of the digest of b>:" computed with EVP and the project's base64 */
static void expected(const char *key, const EVP_MD *md, const uint8_t *b, size_t n, char *out)
{
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    assert_int_equal(EVP_Digest(b, n, h, &hl, md, NULL), 1);
    char enc[128];
    ac_b64_encode(h, hl, enc, 0);
    sprintf(out, "%s=:%s:", key, enc);
}

/* The Content-Digest line of the RFC 9421 B.2 request, from the shared vector file. */
static char *b2_content_digest(void)
{
    const char *path = ac_test_src("../shared/vectors/rfc9421-b26.txt");
    char *txt = ac_test_read_file(path, NULL);
    if (txt == NULL) fail_msg("cannot read %s", path);
    const char *p = strstr(txt, "\nContent-Digest: ");
    assert_non_null(p);
    p += strlen("\nContent-Digest: ");
    size_t n = strcspn(p, "\r\n");
    char *v = malloc(n + 1);
    assert_non_null(v);
    memcpy(v, p, n);
    v[n] = '\0';
    free(txt);
    return v;
}

static void rfc9421_b2_request(void **s)
{
    (void)s;
    char *hdr = b2_content_digest();
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_OK);
    /* our producer writes exactly the header the RFC's request carries */
    char out[AC_DIGEST_HEADER_MAX + 1], want[200];
    assert_true(ac_digest_header(AC_DIGEST_SHA512, BODY, BODY_LEN, out, sizeof out) > 0);
    assert_string_equal(out, hdr);
    expected("sha-512", EVP_sha512(), BODY, BODY_LEN, want);
    assert_string_equal(out, want);
    /* a different body (one byte, or the trailing newline RFC 9530 §2 mentions) must not match */
    assert_int_equal(verify(hdr, BODY, BODY_LEN - 1), AC_EC_DIGEST_MISMATCH);
    const char nl[] = "{\"hello\": \"world\"}\n";
    assert_int_equal(verify(hdr, (const uint8_t *)nl, sizeof nl - 1), AC_EC_DIGEST_MISMATCH);
    free(hdr);
}

static void produce_and_verify(void **s)
{
    (void)s;
    char out[AC_DIGEST_HEADER_MAX + 1], want[400], w2[200];
    long n = ac_digest_header(AC_DIGEST_SHA256, BODY, BODY_LEN, out, sizeof out);
    expected("sha-256", EVP_sha256(), BODY, BODY_LEN, want);
    assert_int_equal(n, (long)strlen(want));
    assert_string_equal(out, want);
    assert_int_equal(verify(out, BODY, BODY_LEN), AC_EC_OK);

    n = ac_digest_header(AC_DIGEST_SHA256 | AC_DIGEST_SHA512, BODY, BODY_LEN, out, sizeof out);
    assert_true(n > 0 && n <= (long)AC_DIGEST_HEADER_MAX);
    expected("sha-512", EVP_sha512(), BODY, BODY_LEN, w2);
    strcat(want, ", ");
    strcat(want, w2);
    assert_string_equal(out, want);
    assert_int_equal(verify(out, BODY, BODY_LEN), AC_EC_OK);

    /* empty body (NULL pointer allowed with length 0) */
    n = ac_digest_header(AC_DIGEST_SHA256, NULL, 0, out, sizeof out);
    assert_true(n > 0);
    expected("sha-256", EVP_sha256(), (const uint8_t *)"", 0, want);
    assert_string_equal(out, want);
    assert_int_equal(verify(out, NULL, 0), AC_EC_OK);
    assert_int_equal(verify(out, BODY, BODY_LEN), AC_EC_DIGEST_MISMATCH);

    /* refusals of the producer */
    assert_int_equal(ac_digest_header(0, BODY, BODY_LEN, out, sizeof out), -1);
    assert_int_equal(ac_digest_header(4, BODY, BODY_LEN, out, sizeof out), -1);
    assert_int_equal(ac_digest_header(AC_DIGEST_SHA512, BODY, BODY_LEN, out, 20), -1);
    assert_int_equal(ac_digest_header(AC_DIGEST_SHA512, NULL, 3, out, sizeof out), -1);
}

static void algorithms(void **s)
{
    (void)s;
    char d256[200], d512[200], hdr[600];
    expected("sha-256", EVP_sha256(), BODY, BODY_LEN, d256);
    expected("sha-512", EVP_sha512(), BODY, BODY_LEN, d512);

    /* unknown and deprecated algorithms are ignored beside a supported one */
    sprintf(hdr, "md5=:AAAA:, %s, unixsum=42, x-custom=(a b)", d256);
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_OK);
    /* ... but are not enough alone */
    assert_int_equal(verify("md5=:AAAA:", BODY, BODY_LEN), AC_EC_DIGEST_MALFORMED);
    assert_int_equal(verify("sha=:AAAA:, id-sha-256=:AAAA:", BODY, BODY_LEN),
                     AC_EC_DIGEST_MALFORMED);
    assert_int_equal(verify("", BODY, BODY_LEN), AC_EC_DIGEST_MALFORMED);
    /* parameters on a member are ignored */
    sprintf(hdr, "%s;foo=bar", d512);
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_OK);
    /* every supported one present must match */
    char bad256[200];
    strcpy(bad256, d256);
    bad256[9] = bad256[9] == 'A' ? 'B' : 'A';
    sprintf(hdr, "%s, %s", bad256, d512);
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_DIGEST_MISMATCH);
    sprintf(hdr, "%s, %s", d512, bad256);
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_DIGEST_MISMATCH);
    /* a duplicated key: the last value wins (RFC 8941 §4.2.2) */
    sprintf(hdr, "%s, %s", bad256, d256);
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_OK);
    sprintf(hdr, "%s, %s", d256, bad256);
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_DIGEST_MISMATCH);
    /* flipping any single bit of the sha-512 digest fails */
    uint8_t h[64];
    unsigned hl;
    assert_int_equal(EVP_Digest(BODY, BODY_LEN, h, &hl, EVP_sha512(), NULL), 1);
    for (unsigned i = 0; i < 64 * 8; i += 7) {
        char enc[100];
        h[i / 8] ^= (uint8_t)(1u << (i % 8));
        ac_b64_encode(h, 64, enc, 0);
        sprintf(hdr, "sha-512=:%s:", enc);
        assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_DIGEST_MISMATCH);
        h[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}

static void malformed(void **s)
{
    (void)s;
    assert_int_equal(verify(NULL, BODY, BODY_LEN), AC_EC_DIGEST_MISSING);
    static const char *const bad[] = {
        "sha-256", /* Boolean true, not a Byte Sequence */
        "sha-256=\"X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\"",
        "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        "sha-256=(:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:)",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9D:",     /* 30 bytes */
        "sha-512=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", /* a sha-256 length */
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,",
        "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=: sha-512=:AAAA:",
        "sha-256=::",
        ",",
        "\t",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (verify(bad[i], BODY, BODY_LEN) != AC_EC_DIGEST_MALFORMED)
            fail_msg("not malformed: %s", bad[i]);
    /* a malformed supported member wins over a matching one */
    char d256[200], hdr[400];
    expected("sha-256", EVP_sha256(), BODY, BODY_LEN, d256);
    sprintf(hdr, "%s, sha-512=?1", d256);
    assert_int_equal(verify(hdr, BODY, BODY_LEN), AC_EC_DIGEST_MALFORMED);
    /* the header's length bounds the parse: a prefix of a valid header is checked as given */
    assert_int_equal(ac_digest_verify(d256, strlen(d256) - 1, BODY, BODY_LEN),
                     AC_EC_DIGEST_MALFORMED);
    /* over the structured-field size cap */
    char *big = malloc(AC_SFV_MAX_INPUT + 100);
    assert_non_null(big);
    memset(big, ' ', AC_SFV_MAX_INPUT + 100);
    memcpy(big, d256, strlen(d256));
    assert_int_equal(ac_digest_verify(big, AC_SFV_MAX_INPUT + 100, BODY, BODY_LEN),
                     AC_EC_DIGEST_MALFORMED);
    assert_int_equal(ac_digest_verify(big, AC_SFV_MAX_INPUT, BODY, BODY_LEN), AC_EC_OK);
    free(big);
    /* a body pointer of NULL with a length is the caller's bug */
    assert_int_equal(verify(d256, NULL, 5), AC_EC_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc9421_b2_request),
        cmocka_unit_test(produce_and_verify),
        cmocka_unit_test(algorithms),
        cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
