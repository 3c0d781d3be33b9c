/* JWK import/export, thumbprints and JWS compact parse/verify/sign (protocol/jose.h). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/b64.h"
#include "protocol/jose.h"

/* ---- helpers -----------------------------------------------------------------------------------
 */

static char *b64u(const void *data, size_t n)
{
    char *s = malloc(ac_b64_enc_len(n));
    assert_non_null(s);
    ac_b64_encode(data, n, s, 1);
    return s;
}

/* A compact JWS from raw header and payload text; signed with key when given, else with `sig`
 * (a literal base64url string, possibly empty or bogus). Returns a malloc'd string. */
static char *craft(EVP_PKEY *key, const char *hdr, const char *payload, const char *sig)
{
    char *h = b64u(hdr, strlen(hdr)), *p = b64u(payload, strlen(payload));
    size_t cap = strlen(h) + strlen(p) + 200 + (sig ? strlen(sig) : 0);
    char *out = malloc(cap);
    assert_non_null(out);
    int n = snprintf(out, cap, "%s.%s", h, p);
    assert_true(n > 0 && (size_t)n < cap);
    if (key) {
        uint8_t raw[AC_SIG_MAX];
        size_t rawlen = 0;
        assert_int_equal(ac_sig_sign(key, (const uint8_t *)out, (size_t)n, raw, &rawlen), 0);
        char *s = b64u(raw, rawlen);
        snprintf(out + n, cap - (size_t)n, ".%s", s);
        free(s);
    } else {
        snprintf(out + n, cap - (size_t)n, ".%s", sig ? sig : "");
    }
    free(h);
    free(p);
    return out;
}

static enum ac_ec parse_str(const char *s, struct ac_jws *j)
{
    const char *detail = NULL;
    enum ac_ec rc = ac_jws_parse(s, strlen(s), j, &detail);
    if (rc != AC_EC_OK) {
        assert_non_null(detail);
        assert_null(j->header);
        assert_null(j->payload);
        assert_null(j->signing_input);
    }
    return rc;
}

/* parse and verify in one step; the JWS's own result code */
static enum ac_ec check(const char *s, EVP_PKEY *key)
{
    struct ac_jws j;
    enum ac_ec rc = parse_str(s, &j);
    if (rc == AC_EC_OK) rc = ac_jws_verify(&j, key);
    ac_jws_clear(&j);
    return rc;
}

static enum ac_ec import_pub(const char *text, EVP_PKEY **k)
{
    const char *detail = NULL;
    enum ac_ec rc = ac_jwk_import_public_text(text, strlen(text), k, &detail);
    if (rc != AC_EC_OK) {
        assert_null(*k);
        assert_non_null(detail);
    }
    return rc;
}

static void expect_pub_invalid(const char *text)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(import_pub(text, &k), AC_EC_JWK_INVALID);
}

/* ---- JWS round trips ---------------------------------------------------------------------------
 */

static void roundtrip(enum ac_sig_alg alg)
{
    EVP_PKEY *priv = ac_sig_keygen(alg);
    assert_non_null(priv);
    /* the verifier holds only the public key, as it came over the wire */
    char *pubtext = ac_jwk_public_text(priv);
    assert_non_null(pubtext);
    EVP_PKEY *pub = NULL;
    assert_int_equal(import_pub(pubtext, &pub), AC_EC_OK);
    free(pubtext);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(priv, kid), 0);

    const char payload[] = "{\"amount\":{\"currency\":\"CNY\",\"value\":\"12.34\"},\"n\":1}";
    char *jws = ac_jws_sign(priv, kid, "ac-mandate+jws", (const uint8_t *)payload, strlen(payload));
    assert_non_null(jws);
    struct ac_jws j;
    assert_int_equal(parse_str(jws, &j), AC_EC_OK);
    assert_int_equal(j.alg, alg);
    assert_string_equal(j.kid, kid);
    assert_string_equal(j.typ, "ac-mandate+jws");
    assert_int_equal(j.sig_len, 64);
    assert_int_equal(j.payload_len, strlen(payload));
    assert_memory_equal(j.payload, payload, j.payload_len);
    assert_int_equal(j.payload[j.payload_len], 0);
    assert_non_null(j.payload_json);
    assert_int_equal(json_integer_value(json_object_get(j.payload_json, "n")), 1);
    /* the header is exactly what the contract says, in that order */
    char *htext = json_dumps(j.header, JSON_COMPACT);
    char want[200];
    snprintf(want, sizeof want, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"ac-mandate+jws\"}",
             alg == AC_SIG_ED25519 ? "EdDSA" : "ES256", kid);
    assert_string_equal(htext, want);
    free(htext);
    assert_int_equal(ac_jws_verify(&j, pub), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&j, priv), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&j, NULL), AC_EC_JWS_BAD_SIGNATURE);
    assert_int_equal(ac_jws_verify(NULL, pub), AC_EC_JWS_BAD_SIGNATURE);
    /* another key of the same kind */
    EVP_PKEY *other = ac_sig_keygen(alg);
    assert_int_equal(ac_jws_verify(&j, other), AC_EC_JWS_BAD_SIGNATURE);
    EVP_PKEY_free(other);
    /* the key of the other algorithm: alg does not fit the key */
    other = ac_sig_keygen(alg == AC_SIG_ED25519 ? AC_SIG_ES256 : AC_SIG_ED25519);
    assert_int_equal(ac_jws_verify(&j, other), AC_EC_JWS_BAD_SIGNATURE);
    EVP_PKEY_free(other);
    ac_jws_clear(&j);
    ac_jws_clear(&j); /* harmless twice */
    free(jws);

    /* no kid/typ, empty payload */
    jws = ac_jws_sign(priv, NULL, NULL, NULL, 0);
    assert_non_null(jws);
    assert_int_equal(parse_str(jws, &j), AC_EC_OK);
    assert_null(j.kid);
    assert_null(j.typ);
    assert_int_equal(j.payload_len, 0);
    assert_null(j.payload_json);
    assert_int_equal(ac_jws_verify(&j, pub), AC_EC_OK);
    ac_jws_clear(&j);
    free(jws);

    /* a public key cannot sign */
    assert_null(ac_jws_sign(pub, NULL, NULL, (const uint8_t *)"x", 1));
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
}

static void es256_roundtrip(void **s)
{
    (void)s;
    for (int i = 0; i < 8; i++)
        roundtrip(AC_SIG_ES256);
}

static void eddsa_roundtrip(void **s)
{
    (void)s;
    roundtrip(AC_SIG_ED25519);
}

static void sign_bad_args(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    assert_null(ac_jws_sign(NULL, NULL, NULL, (const uint8_t *)"x", 1));
    assert_null(ac_jws_sign(k, NULL, NULL, NULL, 1));
    assert_null(ac_jws_sign(k, "\xff\xfe", NULL, (const uint8_t *)"x", 1)); /* not UTF-8 */
    assert_null(ac_jws_sign(k, NULL, "\xc3", (const uint8_t *)"x", 1));
    EVP_PKEY_free(k);
}

/* ---- JWS negative cases ------------------------------------------------------------------------
 */

static void alg_none_and_others(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    static const char *const hdrs[] = {
        "{\"alg\":\"none\"}",   "{\"alg\":\"HS256\"}",   "{\"alg\":\"RS256\"}",
        "{\"alg\":\"ES384\"}",  "{\"alg\":\"Ed25519\"}", "{\"alg\":\"eddsa\"}",
        "{\"alg\":\"EdDSA \"}", "{\"alg\":\"\"}",
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        char *jws = craft(NULL, hdrs[i], "{}", "");
        assert_int_equal(check(jws, k), AC_EC_JWS_ALG_UNSUPPORTED);
        free(jws);
        jws = craft(k, hdrs[i], "{}", NULL);
        assert_int_equal(check(jws, k), AC_EC_JWS_ALG_UNSUPPORTED);
        free(jws);
    }
    /* alg missing or not a string is malformed */
    static const char *const bad[] = {"{}", "{\"alg\":null}", "{\"alg\":1}",
                                      "{\"alg\":[\"EdDSA\"]}", "{\"typ\":\"JWT\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *jws = craft(k, bad[i], "{}", NULL);
        assert_int_equal(check(jws, k), AC_EC_JWS_MALFORMED);
        free(jws);
    }
    EVP_PKEY_free(k);
}

static void alg_key_mismatch(void **s)
{
    (void)s;
    EVP_PKEY *ed = ac_sig_keygen(AC_SIG_ED25519), *ec = ac_sig_keygen(AC_SIG_ES256);
    /* signed correctly by the Ed25519 key, but the header claims ES256 */
    char *jws = craft(ed, "{\"alg\":\"ES256\"}", "{}", NULL);
    assert_int_equal(check(jws, ed), AC_EC_JWS_BAD_SIGNATURE);
    assert_int_equal(check(jws, ec), AC_EC_JWS_BAD_SIGNATURE);
    free(jws);
    jws = craft(ec, "{\"alg\":\"EdDSA\"}", "{}", NULL);
    assert_int_equal(check(jws, ec), AC_EC_JWS_BAD_SIGNATURE);
    free(jws);
    /* and the honest ones verify */
    jws = craft(ec, "{\"alg\":\"ES256\"}", "{}", NULL);
    assert_int_equal(check(jws, ec), AC_EC_OK);
    assert_int_equal(check(jws, ed), AC_EC_JWS_BAD_SIGNATURE);
    free(jws);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(ec);
}

static void header_shape(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ES256);
    static const char *const bad[] = {
        "not json",
        "{\"alg\":\"ES256\"", /* truncated */
        "[\"ES256\"]",        /* not an object */
        "\"ES256\"",
        "{\"alg\":\"ES256\"} x",                 /* trailing data */
        "{\"alg\":\"ES256\",\"alg\":\"ES256\"}", /* duplicate member */
        "{\"alg\":\"ES256\",\"kid\":\"a\",\"kid\":\"b\"}",
        "{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"ES256\",\"crit\":[]}",
        "{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}",
        "{\"alg\":\"ES256\",\"b64\":false}",
        "{\"alg\":\"ES256\",\"kid\":7}",
        "{\"alg\":\"ES256\",\"typ\":null}",
        "{\"alg\":\"ES256\",\"cty\":{}}",
        "{\"alg\":\"ES\xff\"}",       /* not UTF-8 */
        "{\"alg\":\"ES256\\u0000\"}", /* NUL in a string */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *jws = craft(k, bad[i], "{}", NULL);
        assert_int_equal(check(jws, k), AC_EC_JWS_MALFORMED);
        free(jws);
    }
    /* unknown members are carried, and key-carrying members do not choose the key */
    EVP_PKEY *other = ac_sig_keygen(AC_SIG_ES256);
    char *otherjwk = ac_jwk_public_text(other);
    char hdr[400];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"ES256\",\"jwk\":%s,\"x-note\":1}", otherjwk);
    char *jws = craft(k, hdr, "{}", NULL);
    assert_int_equal(check(jws, k), AC_EC_OK);
    assert_int_equal(check(jws, other), AC_EC_JWS_BAD_SIGNATURE);
    free(jws);
    free(otherjwk);
    EVP_PKEY_free(other);
    EVP_PKEY_free(k);
}

static void kid_typ(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    char *jws =
        craft(k, "{\"typ\":\"ac-binding+jws\",\"alg\":\"EdDSA\",\"kid\":\"k-1\",\"cty\":\"json\"}",
              "{\"a\":1}", NULL);
    struct ac_jws j;
    assert_int_equal(parse_str(jws, &j), AC_EC_OK);
    assert_string_equal(j.kid, "k-1");
    assert_string_equal(j.typ, "ac-binding+jws");
    assert_int_equal(j.alg, AC_SIG_ED25519);
    assert_int_equal(ac_jws_verify(&j, k), AC_EC_OK);
    /* the signing input is the first two parts verbatim */
    assert_int_equal(j.signing_input_len, (size_t)(strrchr(jws, '.') - jws));
    assert_memory_equal(j.signing_input, jws, j.signing_input_len);
    ac_jws_clear(&j);
    free(jws);
    /* kid and typ may be absent independently */
    jws = craft(k, "{\"alg\":\"EdDSA\",\"kid\":\"\"}", "x", NULL);
    assert_int_equal(parse_str(jws, &j), AC_EC_OK);
    assert_string_equal(j.kid, "");
    assert_null(j.typ);
    ac_jws_clear(&j);
    free(jws);
    EVP_PKEY_free(k);
}

static void payload_json(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    static const struct {
        const char *payload;
        int is_object;
    } cases[] = {
        {"{\"a\":1}", 1},    {"{\"a\":1,\"a\":2}", 0}, {"[1,2]", 0}, {"\"str\"", 0},      {"42", 0},
        {"{\"a\":1} {}", 0}, {"{\"a\":\"\xff\"}", 0},  {"", 0},      {" {\"b\":[]} ", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *jws = craft(k, "{\"alg\":\"EdDSA\"}", cases[i].payload, NULL);
        struct ac_jws j;
        assert_int_equal(parse_str(jws, &j), AC_EC_OK);
        assert_int_equal(j.payload_json != NULL, cases[i].is_object);
        assert_int_equal(j.payload_len, strlen(cases[i].payload));
        assert_int_equal(ac_jws_verify(&j, k), AC_EC_OK);
        ac_jws_clear(&j);
        free(jws);
    }
    EVP_PKEY_free(k);
}

static void base64url_strictness(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    /* header {"alg":"EdDSA"} is 15 bytes (20 chars, no padding needed); payload "ab" needs '=' */
    char *jws = craft(k, "{\"alg\":\"EdDSA\"}", "ab", NULL);
    assert_int_equal(check(jws, k), AC_EC_OK);
    char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
    size_t len = strlen(jws), hn = (size_t)(d1 - jws), pn = (size_t)(d2 - d1 - 1);
    char buf[512];
    assert_true(len + 4 < sizeof buf);

    /* padding in the payload ("YWI" -> "YWI=") */
    snprintf(buf, sizeof buf, "%.*s=%s", (int)(hn + 1 + pn), jws, d2);
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    /* padding after the signature (86 chars -> "==") */
    snprintf(buf, sizeof buf, "%s==", jws);
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    /* standard alphabet characters */
    snprintf(buf, sizeof buf, "%s", jws);
    buf[hn + 1] = '+';
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, "%s", jws);
    buf[2] = '/';
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    /* whitespace and a NUL inside */
    snprintf(buf, sizeof buf, "%s", jws);
    buf[hn + 2] = ' ';
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, "%s", jws);
    buf[hn + 2] = '\0';
    struct ac_jws j;
    const char *detail = NULL;
    assert_int_equal(ac_jws_parse(buf, len, &j, &detail), AC_EC_JWS_MALFORMED);

    /* non-canonical: the payload "ab" is "YWI"; "YWJ" decodes to the same bytes with stray bits */
    snprintf(buf, sizeof buf, "%s", jws);
    assert_int_equal(buf[hn + 3], 'I');
    buf[hn + 3] = 'J';
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    /* non-canonical signature: the last of 86 characters carries 2 bits, the low 4 must be 0 */
    snprintf(buf, sizeof buf, "%s", jws);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t idx = (size_t)(strchr(alpha, buf[len - 1]) - alpha);
    assert_int_equal(idx % 16, 0);
    buf[len - 1] = alpha[idx + 1];
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    /* a header length that is 1 mod 4 */
    snprintf(buf, sizeof buf, "%.*sA%s", (int)hn, jws, d1);
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    free(jws);
    EVP_PKEY_free(k);
}

static void structure(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ES256);
    char *jws = craft(k, "{\"alg\":\"ES256\"}", "{\"p\":true}", NULL);
    assert_int_equal(check(jws, k), AC_EC_OK);
    char buf[512];
    char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
    size_t hn = (size_t)(d1 - jws);

    snprintf(buf, sizeof buf, "%s.", jws); /* extra dot at the end */
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, "%s.%s", jws, d2 + 1); /* four parts */
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, ".%s", jws);
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, "%.*s..%s", (int)hn, jws, d1 + 1); /* double dot */
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, "%.*s", (int)(d2 - jws), jws); /* two parts */
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, "%.*s.", (int)(d2 - jws), jws); /* empty signature */
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    snprintf(buf, sizeof buf, "%s", d1); /* empty header */
    assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
    assert_int_equal(check("", k), AC_EC_JWS_MALFORMED);
    assert_int_equal(check("..", k), AC_EC_JWS_MALFORMED);
    assert_int_equal(check("...", k), AC_EC_JWS_MALFORMED);
    /* signature of the wrong size: 63 and 65 bytes, and DER */
    uint8_t raw[65] = {0};
    for (size_t n = 63; n <= 65; n += 2) {
        char *sb = b64u(raw, n);
        snprintf(buf, sizeof buf, "%.*s.%s", (int)(d2 - jws), jws, sb);
        assert_int_equal(check(buf, k), AC_EC_JWS_MALFORMED);
        free(sb);
    }
    /* NULLs */
    struct ac_jws j;
    assert_int_equal(ac_jws_parse(NULL, 5, &j, NULL), AC_EC_JWS_MALFORMED);
    assert_int_equal(ac_jws_parse(jws, strlen(jws), NULL, NULL), AC_EC_INTERNAL);
    ac_jws_clear(NULL);
    free(jws);
    EVP_PKEY_free(k);
}

static void tampering(void **s)
{
    (void)s;
    for (int a = 0; a < 2; a++) {
        EVP_PKEY *k = ac_sig_keygen(a ? AC_SIG_ES256 : AC_SIG_ED25519);
        const char *hdr = a ? "{\"alg\":\"ES256\"}" : "{\"alg\":\"EdDSA\"}";
        char *jws = craft(k, hdr, "{\"amount\":\"1.00\"}", NULL);
        struct ac_jws j;
        assert_int_equal(parse_str(jws, &j), AC_EC_OK);
        assert_int_equal(ac_jws_verify(&j, k), AC_EC_OK);
        /* every single bit of the signature matters */
        for (size_t i = 0; i < j.sig_len * 8; i++) {
            j.sig[i / 8] ^= (uint8_t)(1u << (i % 8));
            assert_int_equal(ac_jws_verify(&j, k), AC_EC_JWS_BAD_SIGNATURE);
            j.sig[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        assert_int_equal(ac_jws_verify(&j, k), AC_EC_OK);
        /* one bit off, through the text */
        uint8_t sig[64];
        memcpy(sig, j.sig, 64);
        sig[63] ^= 0x80;
        char *sb = b64u(sig, 64);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s.%s", (int)j.signing_input_len, jws, sb);
        assert_int_equal(check(buf, k), AC_EC_JWS_BAD_SIGNATURE);
        free(sb);
        /* payload changed, signature kept */
        char *other = craft(NULL, hdr, "{\"amount\":\"9.00\"}", strrchr(jws, '.') + 1);
        assert_int_equal(check(other, k), AC_EC_JWS_BAD_SIGNATURE);
        free(other);
        /* header changed (adds a kid), signature kept */
        char hdr2[64];
        snprintf(hdr2, sizeof hdr2, "%.*s,\"kid\":\"x\"}", (int)strlen(hdr) - 1, hdr);
        other = craft(NULL, hdr2, "{\"amount\":\"1.00\"}", strrchr(jws, '.') + 1);
        assert_int_equal(check(other, k), AC_EC_JWS_BAD_SIGNATURE);
        free(other);
        ac_jws_clear(&j);
        free(jws);
        EVP_PKEY_free(k);
    }
}

static void size_limits(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    /* header {"alg":"EdDSA"}: 20 chars; signature 86; two dots -> 65428 chars of payload fit */
    size_t fit = 65428 / 4 * 3; /* 49071 bytes encode to exactly 65428 chars */
    uint8_t *p = malloc(fit + 1);
    assert_non_null(p);
    memset(p, 'a', fit + 1);
    char *jws = ac_jws_sign(k, NULL, NULL, p, fit);
    assert_non_null(jws);
    assert_int_equal(strlen(jws), AC_JWS_MAX_LEN);
    assert_int_equal(check(jws, k), AC_EC_OK);
    /* one byte more does not fit: neither signed nor parsed */
    assert_null(ac_jws_sign(k, NULL, NULL, p, fit + 1));
    size_t big = AC_JWS_MAX_LEN + 1;
    char *buf = malloc(big + 1);
    assert_non_null(buf);
    memcpy(buf, jws, AC_JWS_MAX_LEN);
    buf[AC_JWS_MAX_LEN] = 'A';
    buf[big] = '\0';
    struct ac_jws j;
    assert_int_equal(parse_str(buf, &j), AC_EC_JWS_MALFORMED);
    /* a huge length is refused before anything is read beyond the cap */
    assert_int_equal(ac_jws_parse(jws, SIZE_MAX, &j, NULL), AC_EC_JWS_MALFORMED);
    assert_null(ac_jws_sign(k, NULL, NULL, p, SIZE_MAX));
    free(buf);
    free(jws);
    free(p);
    EVP_PKEY_free(k);
}

/* ---- JWK ---------------------------------------------------------------------------------------
 */

/* members of a generated key's public JWK, as base64url strings */
static void coords(EVP_PKEY *k, char x[64], char y[64])
{
    json_t *j = ac_jwk_export_public(k);
    assert_non_null(j);
    snprintf(x, 64, "%s", json_string_value(json_object_get(j, "x")));
    const json_t *jy = json_object_get(j, "y");
    snprintf(y, 64, "%s", jy ? json_string_value(jy) : "");
    json_decref(j);
}

static void thumbprint_order(void **s)
{
    (void)s;
    char x[64], y[64], tp[AC_JWK_THUMBPRINT_SIZE], tp2[AC_JWK_THUMBPRINT_SIZE], t[600];
    EVP_PKEY *ec = ac_sig_keygen(AC_SIG_ES256), *ed = ac_sig_keygen(AC_SIG_ED25519);

    coords(ec, x, y);
    assert_int_equal(ac_jwk_thumbprint(ec, tp), 0);
    assert_int_equal(strlen(tp), AC_JWK_THUMBPRINT_LEN);
    const char *ec_forms[] = {
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
        "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
        "{\"x\":\"%s\",\"y\":\"%s\",\"kty\":\"EC\",\"crv\":\"P-256\"}",
        (" {\n \"kid\" : \"mine\", \"x\":\"%s\", \"use\":\"sig\", \"y\":\"%s\",\"alg\":\"ES256\", "
         "\"crv\":\"P-256\", \"key_ops\":[\"verify\"], \"kty\":\"EC\" }\n"),
    };
    for (size_t i = 0; i < sizeof ec_forms / sizeof ec_forms[0]; i++) {
        snprintf(t, sizeof t, ec_forms[i], x, y);
        EVP_PKEY *k = NULL;
        assert_int_equal(import_pub(t, &k), AC_EC_OK);
        assert_int_equal(ac_jwk_thumbprint(k, tp2), 0);
        assert_string_equal(tp, tp2);
        EVP_PKEY_free(k);
    }
    snprintf(t, sizeof t, "{\"y\":\"%s\",\"crv\":\"P-256\",\"x\":\"%s\",\"kty\":\"EC\"}", y, x);
    EVP_PKEY *k = NULL;
    assert_int_equal(import_pub(t, &k), AC_EC_OK);
    assert_int_equal(ac_jwk_thumbprint(k, tp2), 0);
    assert_string_equal(tp, tp2);
    EVP_PKEY_free(k);

    coords(ed, x, y);
    assert_int_equal(ac_jwk_thumbprint(ed, tp), 0);
    const char *ed_forms[] = {
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
        "{\"x\":\"%s\",\"crv\":\"Ed25519\",\"kty\":\"OKP\"}",
        "{\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"other\",\"kty\":\"OKP\",\"alg\":\"EdDSA\"}",
    };
    for (size_t i = 0; i < sizeof ed_forms / sizeof ed_forms[0]; i++) {
        snprintf(t, sizeof t, ed_forms[i], x);
        k = NULL;
        assert_int_equal(import_pub(t, &k), AC_EC_OK);
        assert_int_equal(ac_jwk_thumbprint(k, tp2), 0);
        assert_string_equal(tp, tp2);
        EVP_PKEY_free(k);
    }
    /* different keys, different thumbprints */
    EVP_PKEY *ed2 = ac_sig_keygen(AC_SIG_ED25519);
    assert_int_equal(ac_jwk_thumbprint(ed2, tp2), 0);
    assert_string_not_equal(tp, tp2);
    EVP_PKEY_free(ed2);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

static void export_import(void **s)
{
    (void)s;
    /* many fresh keys: the validation never refuses a real key, and export/import is exact */
    for (int i = 0; i < 64; i++) {
        enum ac_sig_alg alg = i % 2 ? AC_SIG_ES256 : AC_SIG_ED25519;
        EVP_PKEY *k = ac_sig_keygen(alg);
        char *text = ac_jwk_public_text(k);
        EVP_PKEY *pub = NULL, *priv = NULL;
        assert_int_equal(import_pub(text, &pub), AC_EC_OK);
        assert_int_equal(EVP_PKEY_eq(pub, k), 1);
        json_t *pj = ac_jwk_export_private(k);
        assert_non_null(pj);
        assert_int_equal(ac_jwk_import_private(pj, &priv, NULL), AC_EC_OK);
        assert_int_equal(EVP_PKEY_eq(priv, k), 1);
        /* the private JWK is not a public JWK */
        EVP_PKEY *none = NULL;
        assert_int_equal(ac_jwk_import_public(pj, &none, NULL), AC_EC_JWK_INVALID);
        assert_null(none);
        /* a public-only key has no private JWK, and a public JWK is no private key */
        assert_null(ac_jwk_export_private(pub));
        json_t *pubj = ac_jwk_export_public(pub);
        assert_int_equal(ac_jwk_import_private(pubj, &none, NULL), AC_EC_JWK_INVALID);
        assert_int_equal(json_object_size(pubj), alg == AC_SIG_ES256 ? 4 : 3);
        /* the re-imported private key signs what the public one verifies */
        char *jws = ac_jws_sign(priv, NULL, NULL, (const uint8_t *)"hi", 2);
        assert_int_equal(check(jws, pub), AC_EC_OK);
        free(jws);
        json_decref(pubj);
        json_decref(pj);
        free(text);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(priv);
        EVP_PKEY_free(k);
    }
    /* unsupported keys export nothing */
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(x);
    char tp[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(x, tp), -1);
    assert_string_equal(tp, "");
    assert_null(ac_jwk_export_public(x));
    assert_null(ac_jwk_public_text(x));
    assert_null(ac_jwk_export_private(x));
    assert_null(ac_jws_sign(x, NULL, NULL, (const uint8_t *)"x", 1));
    EVP_PKEY_free(x);
    assert_int_equal(ac_jwk_thumbprint(NULL, tp), -1);
}

static void ec_point_checks(void **s)
{
    (void)s;
    EVP_PKEY *ec = ac_sig_keygen(AC_SIG_ES256);
    char x[64], y[64], t[400];
    coords(ec, x, y);
    /* y changed in one bit (keeping it canonical): not on the curve */
    uint8_t raw[40];
    size_t n = 0;
    assert_int_equal(ac_b64_decode(y, strlen(y), raw, &n, 1), 0);
    raw[31] ^= 0x01;
    char *y2 = b64u(raw, 32);
    snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x, y2);
    expect_pub_invalid(t);
    free(y2);
    /* x and y swapped */
    snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", y, x);
    expect_pub_invalid(t);
    /* all zero, and coordinates >= p */
    memset(raw, 0, 32);
    char *z = b64u(raw, 32);
    snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", z, z);
    expect_pub_invalid(t);
    free(z);
    memset(raw, 0xff, 32);
    z = b64u(raw, 32);
    snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x, z);
    expect_pub_invalid(t);
    free(z);
    /* wrong lengths: 31 and 33 bytes, and a missing y */
    for (size_t len = 31; len <= 33; len += 2) {
        uint8_t b[33] = {1};
        char *e = b64u(b, len);
        snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", e, y);
        expect_pub_invalid(t);
        snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x, e);
        expect_pub_invalid(t);
        free(e);
    }
    snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\"}", x);
    expect_pub_invalid(t);
    /* padding and non-canonical trailing bits in a coordinate */
    snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s=\",\"y\":\"%s\"}", x, y);
    expect_pub_invalid(t);
    char xb[64];
    snprintf(xb, sizeof xb, "%s", x);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t idx = (size_t)(strchr(alpha, xb[42]) - alpha);
    xb[42] = alpha[idx + 1]; /* 43rd char carries 4 bits; the low 2 must be 0 */
    snprintf(t, sizeof t, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", xb, y);
    expect_pub_invalid(t);
    /* private member d in a public import; then as a private import with a wrong d */
    json_t *pj = ac_jwk_export_private(ec);
    char *ptext = json_dumps(pj, JSON_COMPACT);
    expect_pub_invalid(ptext);
    EVP_PKEY *k = NULL;
    assert_int_equal(ac_jwk_import_private_text(ptext, strlen(ptext), &k, NULL), AC_EC_OK);
    EVP_PKEY_free(k);
    k = NULL;
    EVP_PKEY *ec2 = ac_sig_keygen(AC_SIG_ES256);
    json_t *pj2 = ac_jwk_export_private(ec2);
    json_object_set(pj, "d", json_object_get(pj2, "d"));
    const char *detail = NULL;
    assert_int_equal(ac_jwk_import_private(pj, &k, &detail), AC_EC_JWK_INVALID);
    assert_null(k);
    assert_non_null(detail);
    /* d = 0 and d = n (the group order) */
    json_object_set_new(pj, "d", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_int_equal(ac_jwk_import_private(pj, &k, NULL), AC_EC_JWK_INVALID);
    json_object_set_new(pj, "d", json_string("_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE"));
    assert_int_equal(ac_jwk_import_private(pj, &k, NULL), AC_EC_JWK_INVALID);
    assert_null(k);
    json_decref(pj2);
    EVP_PKEY_free(ec2);
    free(ptext);
    json_decref(pj);
    EVP_PKEY_free(ec);
}

static void ed25519_point_checks(void **s)
{
    (void)s;
    char t[300];
    static const char *const bad_x[] = {
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* y = 1: identity (order 1) */
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA", /* y = 1 with the sign bit */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* y = 0: order 4 */
        "7P_______________________________________38", /* y = p-1: order 2 */
        "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_AU", /* order 8 */
        "xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA3o", /* order 8 */
        "7f_______________________________________38", /* y = p: non-canonical 0 */
        "7v_______________________________________38", /* y = p+1: non-canonical 1 */
        "8P_______________________________________38", /* y = p+3: non-canonical 3 */
        "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* y = 2: no x, not on the curve */
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR",  /* 31.x bytes */
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoA",
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp", /* non-canonical last char */
        "",
    };
    for (size_t i = 0; i < sizeof bad_x / sizeof bad_x[0]; i++) {
        snprintf(t, sizeof t, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", bad_x[i]);
        expect_pub_invalid(t);
    }
    /* y = 3 is on the curve and of large order: an acceptable public key (nobody's, but valid) */
    EVP_PKEY *k = NULL;
    assert_int_equal(import_pub("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                                "\"AwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                                &k),
                     AC_EC_OK);
    EVP_PKEY_free(k);
    /* the small-order identity key would accept a forged signature: R = identity, S = 0 */
    uint8_t forged[64] = {1};
    char *sb = b64u(forged, 64);
    char *jws = craft(NULL, "{\"alg\":\"EdDSA\"}", "{\"pay\":\"all\"}", sb);
    struct ac_jws j;
    assert_int_equal(parse_str(jws, &j), AC_EC_OK);
    EVP_PKEY *ident = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, forged, 32);
    assert_non_null(ident);
    int forged_ok = ac_jws_verify(&j, ident) == AC_EC_OK;
    print_message("openssl %s the identity-key forgery (import refuses that key either way)\n",
                  forged_ok ? "accepts" : "rejects");
    EVP_PKEY_free(ident);
    ac_jws_clear(&j);
    free(jws);
    free(sb);
}

static void jwk_shape(void **s)
{
    (void)s;
    const char *x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    char t[400];
    static const char *const forms[] = {
        "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"%s\"}",
        "{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
        "{\"kty\":\"okp\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
        "{\"kty\":\"oct\",\"k\":\"%s\"}",
        "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}",
        "{\"crv\":\"Ed25519\",\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"crv\":1,\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"y\":\"AAAA\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"alg\":\"ES256\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"alg\":7}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"use\":\"enc\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"d\":null}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"x\":\"%s\"}", /* duplicate */
        "{\"kty\":\"OKP\",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
        "[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}]",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"} {}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":[\"%s\"]}",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        snprintf(t, sizeof t, forms[i], x, x);
        expect_pub_invalid(t);
    }
    expect_pub_invalid("");
    expect_pub_invalid("null");
    expect_pub_invalid("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"\\u0000\"}");
    EVP_PKEY *k = NULL;
    assert_int_equal(ac_jwk_import_public(NULL, &k, NULL), AC_EC_JWK_INVALID);
    assert_int_equal(ac_jwk_import_public_text(NULL, 0, &k, NULL), AC_EC_JWK_INVALID);
    assert_int_equal(ac_jwk_import_public_text("{}", 2, NULL, NULL), AC_EC_INTERNAL);
    /* a JWK may carry whitespace and unknown members up to the size cap, not beyond */
    char *big = malloc(AC_JWK_MAX_TEXT + 2);
    assert_non_null(big);
    int n = snprintf(big, AC_JWK_MAX_TEXT + 2,
                     "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"note\":\"", x);
    memset(big + n, 'z', AC_JWK_MAX_TEXT + 2 - (size_t)n);
    memcpy(big + AC_JWK_MAX_TEXT - 2, "\"}", 2);
    assert_int_equal(ac_jwk_import_public_text(big, AC_JWK_MAX_TEXT, &k, NULL), AC_EC_OK);
    EVP_PKEY_free(k);
    k = NULL;
    memcpy(big + AC_JWK_MAX_TEXT - 2, "z\"}", 3);
    assert_int_equal(ac_jwk_import_public_text(big, AC_JWK_MAX_TEXT + 1, &k, NULL),
                     AC_EC_JWK_INVALID);
    assert_null(k);
    free(big);
}

/* ---- allocation failures ------------------------------------------------------------------------
 */

static long alloc_budget = -1; /* allocations left before failing; -1: unlimited */

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0) return NULL;
    if (alloc_budget > 0) alloc_budget--;
    return malloc(n);
}

static void failing_free(void *p)
{
    free(p);
}

static void jansson_oom(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ES256);
    char *jws = ac_jws_sign(k, "kid-1", "t", (const uint8_t *)"{\"a\":[1,2,{\"b\":\"c\"}]}", 21);
    char *jwk = ac_jwk_public_text(k);
    json_set_alloc_funcs(failing_malloc, failing_free);
    int saw_ok = 0;
    for (long budget = 0; budget < 200 && !saw_ok; budget++) {
        struct ac_jws j;
        alloc_budget = budget;
        enum ac_ec rc = ac_jws_parse(jws, strlen(jws), &j, NULL);
        alloc_budget = -1;
        /* jansson reports some allocation failures as syntax errors, so "malformed" can occur */
        assert_true(rc == AC_EC_OK || rc == AC_EC_INTERNAL || rc == AC_EC_JWS_MALFORMED);
        if (rc == AC_EC_OK) {
            assert_int_equal(ac_jws_verify(&j, k), AC_EC_OK);
            /* for the same reason the payload may look like non-JSON: that fails closed */
            saw_ok = j.payload_json != NULL;
        }
        ac_jws_clear(&j);
    }
    assert_true(saw_ok);
    saw_ok = 0;
    for (long budget = 0; budget < 200 && !saw_ok; budget++) {
        EVP_PKEY *p = NULL;
        alloc_budget = budget;
        enum ac_ec rc = ac_jwk_import_public_text(jwk, strlen(jwk), &p, NULL);
        alloc_budget = -1;
        assert_true(rc == AC_EC_OK || rc == AC_EC_INTERNAL || rc == AC_EC_JWK_INVALID);
        saw_ok = rc == AC_EC_OK;
        EVP_PKEY_free(p);
    }
    assert_true(saw_ok);
    for (long budget = 0; budget < 10; budget++) {
        alloc_budget = budget;
        char *t = ac_jws_sign(k, "kid-1", "t", (const uint8_t *)"x", 1);
        json_t *e = ac_jwk_export_private(k);
        alloc_budget = -1;
        free(t);
        json_decref(e);
    }
    json_set_alloc_funcs(malloc, free);
    free(jwk);
    free(jws);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(es256_roundtrip),
        cmocka_unit_test(eddsa_roundtrip),
        cmocka_unit_test(sign_bad_args),
        cmocka_unit_test(alg_none_and_others),
        cmocka_unit_test(alg_key_mismatch),
        cmocka_unit_test(header_shape),
        cmocka_unit_test(kid_typ),
        cmocka_unit_test(payload_json),
        cmocka_unit_test(base64url_strictness),
        cmocka_unit_test(structure),
        cmocka_unit_test(tampering),
        cmocka_unit_test(size_limits),
        cmocka_unit_test(thumbprint_order),
        cmocka_unit_test(export_import),
        cmocka_unit_test(ec_point_checks),
        cmocka_unit_test(ed25519_point_checks),
        cmocka_unit_test(jwk_shape),
        cmocka_unit_test(jansson_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
