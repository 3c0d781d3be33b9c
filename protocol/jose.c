/* protocol/jose.c -- JWK import/export, RFC 7638 thumbprints, JWS compact parse/verify/sign.
 * See jose.h for the contracts. Signatures go through protocol/sig.h, base64url through
 * protocol/b64.h (which rejects padding and non-canonical trailing bits). */
#include "protocol/jose.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>

#include "protocol/b64.h"
#include "protocol/sha256.h"

/* 32 bytes in base64url without padding */
#define B64_32 43
/* room for decoding B64_32 characters (ac_b64_decode wants n*3/4+3) */
#define DEC_32 (B64_32 * 3 / 4 + 3)

static void set_detail(const char **detail, const char *text)
{
    if (detail) *detail = text;
}

/* Parse JSON text with JSON_REJECT_DUPLICATES. On failure *oom tells a lack of memory from bad
 * input: jansson reports json_error_out_of_memory, except when it cannot even set up its lexer,
 * where it returns before writing any error text (hence the zeroed error). */
static json_t *load_json(const void *text, size_t len, int *oom)
{
    json_error_t err;
    memset(&err, 0, sizeof err);
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    *oom = j == NULL && (json_error_code(&err) == json_error_out_of_memory || err.text[0] == '\0');
    return j;
}

/* ================================================================================================
 * Ed25519 public key validation (RFC 8032 §5.1.3 decoding, plus a small-order blocklist)
 * ============================================================================================== */

/* y coordinates (little-endian, sign bit clear) of the points of order 1, 2, 4 and 8: an Ed25519
 * key with one of these lets anyone forge signatures, so it is refused. The two order-8 values
 * solve d*y^4 + 2*y^2 - 1 = 0 (the doubling of such a point has y = 0); they match libsodium's
 * blocklist. Order 1 is y = 1, order 2 is y = p-1, order 4 is y = 0. */
static const uint8_t small_order_y[5][32] = {
    {0},
    {1},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
};

/* Returns 1 when the 32-byte encoding decodes to a curve point (y < p, x exists, and not x = 0
 * with the sign bit set) that is not of small order; 0 when it does not; -1 when OpenSSL fails. */
static int ed25519_point_ok(const uint8_t enc[32])
{
    uint8_t y_le[32], y_be[32];
    memcpy(y_le, enc, 32);
    int sign = y_le[31] >> 7;
    y_le[31] &= 0x7f;
    for (size_t i = 0; i < 5; i++)
        if (memcmp(y_le, small_order_y[i], 32) == 0) return 0;
    for (size_t i = 0; i < 32; i++)
        y_be[i] = y_le[31 - i];

    int rc = -1;
    BN_CTX *bc = BN_CTX_new();
    if (bc == NULL) return -1;
    BN_CTX_start(bc);
    BIGNUM *p = BN_CTX_get(bc), *y = BN_CTX_get(bc), *d = BN_CTX_get(bc), *y2 = BN_CTX_get(bc),
           *u = BN_CTX_get(bc), *v = BN_CTX_get(bc), *w = BN_CTX_get(bc), *e = BN_CTX_get(bc);
    if (e == NULL) goto out;
    /* p = 2^255 - 19; d = -121665/121666 mod p (RFC 8032 §5.1) */
    if (!BN_set_bit(p, 255) || !BN_sub_word(p, 19)) goto out;
    if (BN_bin2bn(y_be, 32, y) == NULL) goto out;
    if (BN_cmp(y, p) >= 0) { /* non-canonical y */
        rc = 0;
        goto out;
    }
    if (!BN_set_word(w, 121666) || BN_mod_inverse(d, w, p, bc) == NULL) goto out;
    if (!BN_set_word(w, 121665) || !BN_sub(w, p, w) || !BN_mod_mul(d, d, w, p, bc)) goto out;
    /* x^2 = (y^2 - 1) / (d*y^2 + 1) */
    if (!BN_mod_sqr(y2, y, p, bc) || !BN_one(w) || !BN_mod_sub(u, y2, w, p, bc)) goto out;
    if (!BN_mod_mul(v, d, y2, p, bc) || !BN_mod_add(v, v, w, p, bc)) goto out;
    if (BN_mod_inverse(v, v, p, bc) == NULL || !BN_mod_mul(w, u, v, p, bc)) goto out;
    if (BN_is_zero(w)) {
        rc = sign ? 0 : 1; /* x = 0 has no negative form */
        goto out;
    }
    /* Euler's criterion: w is a square iff w^((p-1)/2) = 1 */
    if (!BN_sub(e, p, BN_value_one()) || !BN_rshift1(e, e) || !BN_mod_exp(w, w, e, p, bc)) goto out;
    rc = BN_is_one(w) ? 1 : 0;
out:
    BN_CTX_end(bc);
    BN_CTX_free(bc);
    return rc;
}

/* ================================================================================================
 * JWK import
 * ============================================================================================== */

/* Decode member `name` of obj as exactly 32 bytes of canonical base64url. Returns 1 when done,
 * 0 when the member is absent, -1 when it is present but not such a string. */
static int member_32(const json_t *obj, const char *name, uint8_t out[32])
{
    const json_t *m = json_object_get(obj, name);
    if (m == NULL) return 0;
    if (!json_is_string(m) || json_string_length(m) != B64_32) return -1;
    uint8_t buf[DEC_32];
    size_t n = 0;
    int rc = -1;
    if (ac_b64_decode(json_string_value(m), B64_32, buf, &n, 1) == 0 && n == 32) {
        memcpy(out, buf, 32);
        rc = 1;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

/* 1 when member `name` of obj is absent or the string `want`; 0 otherwise */
static int member_absent_or(const json_t *obj, const char *name, const char *want)
{
    const json_t *m = json_object_get(obj, name);
    return m == NULL || (json_is_string(m) && strcmp(json_string_value(m), want) == 0 &&
                         json_string_length(m) == strlen(want));
}

static enum ac_ec import_ed25519(const uint8_t x[32], const uint8_t *d, EVP_PKEY **out,
                                 const char **detail)
{
    int ok = ed25519_point_ok(x);
    if (ok < 0) return AC_EC_INTERNAL;
    if (ok == 0) {
        set_detail(detail, "x is not a valid ed25519 public key");
        return AC_EC_JWK_INVALID;
    }
    if (d == NULL) {
        *out = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, 32);
        return *out ? AC_EC_OK : AC_EC_INTERNAL;
    }
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, d, 32);
    if (k == NULL) return AC_EC_INTERNAL;
    uint8_t pub[32];
    size_t plen = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(k, pub, &plen) != 1 || plen != 32) {
        EVP_PKEY_free(k);
        return AC_EC_INTERNAL;
    }
    if (memcmp(pub, x, 32) != 0) {
        EVP_PKEY_free(k);
        set_detail(detail, "x does not match d");
        return AC_EC_JWK_INVALID;
    }
    *out = k;
    return AC_EC_OK;
}

static enum ac_ec import_p256(const uint8_t x[32], const uint8_t y[32], const uint8_t *d,
                              EVP_PKEY **out, const char **detail)
{
    enum ac_ec rc = AC_EC_INTERNAL;
    uint8_t pt[65];
    pt[0] = 0x04; /* uncompressed point */
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *priv = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    EVP_PKEY *k = NULL;
    if (bld == NULL) goto out;
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt) != 1)
        goto out;
    if (d != NULL) {
        priv = BN_secure_new();
        if (priv == NULL || BN_bin2bn(d, 32, priv) == NULL ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) != 1)
            goto out;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1) goto out;
    if (EVP_PKEY_fromdata(ctx, &k, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1) {
        /* OpenSSL refuses a point that is not on the curve (or a coordinate >= p) here */
        rc = AC_EC_JWK_INVALID;
        set_detail(detail, "ec point is not on the curve");
        goto out;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    if (check == NULL) goto out;
    /* Public: on the curve and not the point at infinity (the subgroup check of the full test is
     * implied for P-256, whose cofactor is 1). Key pair: also 1 <= d < n and x,y = d*G. */
    if ((d ? EVP_PKEY_check(check) : EVP_PKEY_public_check_quick(check)) != 1) {
        rc = AC_EC_JWK_INVALID;
        set_detail(detail, d ? "d does not match x and y" : "ec point is not on the curve");
        goto out;
    }
    *out = k;
    k = NULL;
    rc = AC_EC_OK;
out:
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    BN_clear_free(priv);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

static enum ac_ec jwk_import(const json_t *jwk, int want_private, EVP_PKEY **out,
                             const char **detail)
{
    enum ac_ec rc = AC_EC_JWK_INVALID;
    uint8_t x[32], y[32], d[32];
    int hx, hy, hd;
    if (out == NULL) return AC_EC_INTERNAL;
    *out = NULL;
    if (!json_is_object(jwk)) {
        set_detail(detail, "jwk is not a json object");
        return AC_EC_JWK_INVALID;
    }
    const json_t *kty = json_object_get(jwk, "kty"), *crv = json_object_get(jwk, "crv");
    if (!json_is_string(kty) || !json_is_string(crv)) {
        set_detail(detail, "kty and crv must be strings");
        return AC_EC_JWK_INVALID;
    }
    int okp = member_absent_or(jwk, "kty", "OKP") && member_absent_or(jwk, "crv", "Ed25519");
    int ec = member_absent_or(jwk, "kty", "EC") && member_absent_or(jwk, "crv", "P-256");
    if (!okp && !ec) {
        set_detail(detail, "only OKP/Ed25519 and EC/P-256 keys are supported");
        return AC_EC_JWK_INVALID;
    }
    if (!member_absent_or(jwk, "alg", okp ? "EdDSA" : "ES256")) {
        set_detail(detail, "alg does not fit the key");
        return AC_EC_JWK_INVALID;
    }
    if (!member_absent_or(jwk, "use", "sig")) {
        set_detail(detail, "use must be sig");
        return AC_EC_JWK_INVALID;
    }
    hx = member_32(jwk, "x", x);
    hy = member_32(jwk, "y", y);
    hd = member_32(jwk, "d", d);
    if (hx != 1) {
        set_detail(detail, "x must be 32 bytes of canonical base64url");
        goto out;
    }
    if (okp ? hy != 0 : hy != 1) {
        set_detail(detail,
                   okp ? "an OKP key has no y" : "y must be 32 bytes of canonical base64url");
        goto out;
    }
    if (!want_private && hd != 0) {
        set_detail(detail, "private member d in a public key");
        goto out;
    }
    if (want_private && hd != 1) {
        set_detail(detail, "d must be 32 bytes of canonical base64url");
        goto out;
    }
    const uint8_t *dp = want_private ? d : NULL;
    rc = okp ? import_ed25519(x, dp, out, detail) : import_p256(x, y, dp, out, detail);
    if (rc == AC_EC_INTERNAL) set_detail(detail, "openssl failure");
out:
    OPENSSL_cleanse(d, sizeof d);
    assert(rc == AC_EC_OK ? *out != NULL : *out == NULL);
    return rc;
}

static enum ac_ec jwk_import_text(const char *text, size_t len, int want_private, EVP_PKEY **out,
                                  const char **detail)
{
    if (out == NULL) return AC_EC_INTERNAL;
    *out = NULL;
    if (text == NULL || len > AC_JWK_MAX_TEXT) {
        set_detail(detail, "jwk text is missing or too long");
        return AC_EC_JWK_INVALID;
    }
    int oom = 0;
    json_t *j = load_json(text, len, &oom);
    if (oom) {
        set_detail(detail, "out of memory");
        return AC_EC_INTERNAL;
    }
    if (j == NULL) {
        set_detail(detail, "jwk is not valid json or has duplicate members");
        return AC_EC_JWK_INVALID;
    }
    enum ac_ec rc = jwk_import(j, want_private, out, detail);
    json_decref(j); /* jansson strings of a private JWK are not wiped: tests and CLI only */
    return rc;
}

enum ac_ec ac_jwk_import_public(const json_t *jwk, EVP_PKEY **out, const char **detail)
{
    return jwk_import(jwk, 0, out, detail);
}

enum ac_ec ac_jwk_import_public_text(const char *text, size_t len, EVP_PKEY **out,
                                     const char **detail)
{
    return jwk_import_text(text, len, 0, out, detail);
}

enum ac_ec ac_jwk_import_private(const json_t *jwk, EVP_PKEY **out, const char **detail)
{
    return jwk_import(jwk, 1, out, detail);
}

enum ac_ec ac_jwk_import_private_text(const char *text, size_t len, EVP_PKEY **out,
                                      const char **detail)
{
    return jwk_import_text(text, len, 1, out, detail);
}

/* ================================================================================================
 * JWK export and thumbprint
 * ============================================================================================== */

/* base64url of a BIGNUM parameter as 32 big-endian bytes; 0 or -1 */
static int bn_param_b64(EVP_PKEY *key, const char *name, char out[B64_32 + 1])
{
    BIGNUM *bn = NULL;
    uint8_t buf[32];
    int rc = -1;
    if (EVP_PKEY_get_bn_param(key, name, &bn) == 1 && BN_bn2binpad(bn, buf, 32) == 32) {
        ac_b64_encode(buf, 32, out, 1);
        rc = 0;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    BN_clear_free(bn);
    return rc;
}

/* The public coordinates of key as base64url (y only for P-256). Returns the algorithm, or
 * AC_SIG_NONE when the key is not supported. */
static enum ac_sig_alg public_coords(EVP_PKEY *key, char x[B64_32 + 1], char y[B64_32 + 1])
{
    enum ac_sig_alg alg = ac_sig_key_alg(key);
    x[0] = y[0] = '\0';
    if (alg == AC_SIG_ED25519) {
        uint8_t pub[32];
        size_t n = sizeof pub;
        if (EVP_PKEY_get_raw_public_key(key, pub, &n) != 1 || n != 32) return AC_SIG_NONE;
        ac_b64_encode(pub, 32, x, 1);
        return alg;
    }
    if (alg == AC_SIG_ES256) {
        if (bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, x) != 0 ||
            bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, y) != 0)
            return AC_SIG_NONE;
        return alg;
    }
    return AC_SIG_NONE;
}

/* The RFC 7638 canonical form into buf (large enough for the P-256 form). 0 or -1. */
#define CANON_MAX 128
static int canonical(EVP_PKEY *key, char buf[CANON_MAX])
{
    char x[B64_32 + 1], y[B64_32 + 1];
    enum ac_sig_alg alg = public_coords(key, x, y);
    int n = -1;
    if (alg == AC_SIG_ED25519)
        n = snprintf(buf, CANON_MAX, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
    else if (alg == AC_SIG_ES256)
        n = snprintf(buf, CANON_MAX, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                     x, y);
    return n > 0 && n < CANON_MAX ? 0 : -1;
}

json_t *ac_jwk_export_public(EVP_PKEY *key)
{
    char x[B64_32 + 1], y[B64_32 + 1];
    enum ac_sig_alg alg = public_coords(key, x, y);
    if (alg == AC_SIG_ED25519)
        return json_pack("{s:s, s:s, s:s}", "crv", "Ed25519", "kty", "OKP", "x", x);
    if (alg == AC_SIG_ES256)
        return json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
    return NULL;
}

char *ac_jwk_public_text(EVP_PKEY *key)
{
    char buf[CANON_MAX];
    if (canonical(key, buf) != 0) return NULL;
    size_t n = strlen(buf);
    char *s = malloc(n + 1);
    if (s) memcpy(s, buf, n + 1);
    return s;
}

json_t *ac_jwk_export_private(EVP_PKEY *key)
{
    char d[B64_32 + 1];
    enum ac_sig_alg alg = ac_sig_key_alg(key);
    if (alg == AC_SIG_ED25519) {
        uint8_t raw[32];
        size_t n = sizeof raw;
        int ok = EVP_PKEY_get_raw_private_key(key, raw, &n) == 1 && n == 32;
        if (ok) ac_b64_encode(raw, 32, d, 1);
        OPENSSL_cleanse(raw, sizeof raw);
        if (!ok) return NULL;
    } else if (alg != AC_SIG_ES256 || bn_param_b64(key, OSSL_PKEY_PARAM_PRIV_KEY, d) != 0) {
        return NULL;
    }
    json_t *j = ac_jwk_export_public(key);
    if (j != NULL && json_object_set_new(j, "d", json_string(d)) != 0) {
        json_decref(j);
        j = NULL;
    }
    OPENSSL_cleanse(d, sizeof d);
    return j;
}

int ac_jwk_thumbprint(EVP_PKEY *key, char out[AC_JWK_THUMBPRINT_SIZE])
{
    char buf[CANON_MAX];
    uint8_t md[AC_SHA256_LEN];
    out[0] = '\0';
    if (canonical(key, buf) != 0) return -1;
    ac_sha256(buf, strlen(buf), md);
    ac_b64_encode(md, 32, out, 1);
    return 0;
}

/* ================================================================================================
 * JWS compact serialization
 * ============================================================================================== */

/* length of the unpadded base64url encoding of n bytes */
static size_t b64u_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Decode one base64url part into a fresh buffer followed by a NUL. 0 or -1 (malformed), -2 (out of
 * memory). */
static int decode_part(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    uint8_t *b = malloc(n * 3 / 4 + 4); /* ac_b64_decode's n*3/4+3, and the NUL */
    if (b == NULL) return -2;
    if (ac_b64_decode(s, n, b, outlen, 1) != 0) {
        free(b);
        return -1;
    }
    b[*outlen] = '\0';
    *out = b;
    return 0;
}

/* header member `name` must be absent or a string; returns the string or NULL, sets *bad */
static const char *opt_string(const json_t *h, const char *name, int *bad)
{
    const json_t *m = json_object_get(h, name);
    if (m == NULL) return NULL;
    if (!json_is_string(m)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(m);
}

enum ac_ec ac_jws_parse(const char *compact, size_t len, struct ac_jws *out, const char **detail)
{
    enum ac_ec rc = AC_EC_JWS_MALFORMED;
    uint8_t *hbuf = NULL, *sbuf = NULL;
    size_t hlen = 0, slen = 0;
    int r;
    if (out == NULL) return AC_EC_INTERNAL;
    memset(out, 0, sizeof *out);
    if (compact == NULL || len == 0 || len > AC_JWS_MAX_LEN) {
        set_detail(detail, "jws is empty or too long");
        return AC_EC_JWS_MALFORMED;
    }
    const char *dot1 = memchr(compact, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - compact)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - compact)) != NULL) {
        set_detail(detail, "jws must have exactly three parts");
        return AC_EC_JWS_MALFORMED;
    }
    size_t h_n = (size_t)(dot1 - compact), p_n = (size_t)(dot2 - dot1 - 1);
    size_t s_n = len - (size_t)(dot2 + 1 - compact);

    /* header */
    if (h_n == 0 || (r = decode_part(compact, h_n, &hbuf, &hlen)) == -1) {
        set_detail(detail, "header is not canonical base64url");
        goto fail;
    }
    if (r == -2) goto oom;
    int nomem = 0;
    out->header = load_json(hbuf, hlen, &nomem);
    if (nomem) goto oom;
    if (!json_is_object(out->header)) {
        set_detail(detail, "header is not a json object or has duplicate members");
        goto fail;
    }
    const json_t *alg = json_object_get(out->header, "alg");
    if (!json_is_string(alg)) {
        set_detail(detail, "header alg is missing or not a string");
        goto fail;
    }
    if (strcmp(json_string_value(alg), "EdDSA") == 0 && json_string_length(alg) == 5) {
        out->alg = AC_SIG_ED25519;
    } else if (strcmp(json_string_value(alg), "ES256") == 0 && json_string_length(alg) == 5) {
        out->alg = AC_SIG_ES256;
    } else {
        rc = AC_EC_JWS_ALG_UNSUPPORTED;
        set_detail(detail, "alg must be EdDSA or ES256");
        goto fail;
    }
    if (json_object_get(out->header, "crit") != NULL) {
        set_detail(detail, "crit is not supported");
        goto fail;
    }
    if (json_object_get(out->header, "b64") != NULL) {
        set_detail(detail, "b64 is not supported");
        goto fail;
    }
    int bad = 0;
    out->kid = opt_string(out->header, "kid", &bad);
    out->typ = opt_string(out->header, "typ", &bad);
    (void)opt_string(out->header, "cty", &bad);
    if (bad) {
        set_detail(detail, "kid, typ and cty must be strings");
        goto fail;
    }

    /* payload */
    r = decode_part(dot1 + 1, p_n, &out->payload, &out->payload_len);
    if (r == -1) {
        set_detail(detail, "payload is not canonical base64url");
        goto fail;
    }
    if (r == -2) goto oom;
    out->payload_json = load_json(out->payload, out->payload_len, &nomem);
    if (nomem) goto oom;
    if (out->payload_json != NULL && !json_is_object(out->payload_json)) {
        json_decref(out->payload_json);
        out->payload_json = NULL;
    }

    /* signature */
    r = decode_part(dot2 + 1, s_n, &sbuf, &slen);
    if (r == -1 || (r == 0 && slen != 64)) {
        set_detail(detail, "signature is not 64 bytes of canonical base64url");
        goto fail;
    }
    if (r == -2) goto oom;
    memcpy(out->sig, sbuf, slen);
    out->sig_len = slen;

    /* signing input: ASCII(header_b64 '.' payload_b64) */
    out->signing_input_len = (size_t)(dot2 - compact);
    out->signing_input = malloc(out->signing_input_len + 1);
    if (out->signing_input == NULL) goto oom;
    memcpy(out->signing_input, compact, out->signing_input_len);
    out->signing_input[out->signing_input_len] = '\0';

    free(hbuf);
    free(sbuf);
    return AC_EC_OK;
oom:
    rc = AC_EC_INTERNAL;
    set_detail(detail, "out of memory");
fail:
    free(hbuf);
    free(sbuf);
    ac_jws_clear(out);
    return rc;
}

enum ac_ec ac_jws_verify(const struct ac_jws *jws, EVP_PKEY *key)
{
    if (jws == NULL || key == NULL || jws->signing_input == NULL || jws->alg == AC_SIG_NONE)
        return AC_EC_JWS_BAD_SIGNATURE;
    if (ac_sig_key_alg(key) != jws->alg) return AC_EC_JWS_BAD_SIGNATURE;
    if (ac_sig_verify(key, jws->alg, (const uint8_t *)jws->signing_input, jws->signing_input_len,
                      jws->sig, jws->sig_len) == 1)
        return AC_EC_OK;
    return AC_EC_JWS_BAD_SIGNATURE;
}

void ac_jws_clear(struct ac_jws *jws)
{
    if (jws == NULL) return;
    json_decref(jws->header);
    json_decref(jws->payload_json);
    free(jws->payload);
    free(jws->signing_input);
    memset(jws, 0, sizeof *jws);
}

char *ac_jws_sign(EVP_PKEY *key, const char *kid, const char *typ, const uint8_t *payload,
                  size_t payload_len)
{
    enum ac_sig_alg alg = ac_sig_key_alg(key);
    if (alg == AC_SIG_NONE || (payload == NULL && payload_len > 0) || payload_len > AC_JWS_MAX_LEN)
        return NULL;
    json_t *h = json_object();
    char *htxt = NULL, *res = NULL;
    if (h == NULL ||
        json_object_set_new(h, "alg", json_string(alg == AC_SIG_ED25519 ? "EdDSA" : "ES256")) ||
        (kid && json_object_set_new(h, "kid", json_string(kid))) ||
        (typ && json_object_set_new(h, "typ", json_string(typ))))
        goto out;
    /* jansson keeps insertion order, so the header reads {"alg":…,"kid":…,"typ":…}. json_dumpb
     * into our own buffer: json_dumps would allocate with jansson's (replaceable) allocator. */
    size_t hlen = json_dumpb(h, NULL, 0, JSON_COMPACT);
    if (hlen == 0 || hlen > AC_JWS_MAX_LEN) goto out;
    htxt = malloc(hlen);
    if (htxt == NULL || json_dumpb(h, htxt, hlen, JSON_COMPACT) != hlen) goto out;
    /* unpadded lengths; both inputs are at most AC_JWS_MAX_LEN bytes, so no overflow */
    size_t total = b64u_len(hlen) + 1 + b64u_len(payload_len) + 1 + b64u_len(AC_SIG_MAX);
    if (total > AC_JWS_MAX_LEN) goto out;
    res = malloc(total + 1);
    if (res == NULL) goto out;
    size_t o = ac_b64_encode((const uint8_t *)htxt, hlen, res, 1);
    res[o++] = '.';
    o += ac_b64_encode(payload, payload_len, res + o, 1);
    uint8_t sig[AC_SIG_MAX];
    size_t siglen = 0;
    if (ac_sig_sign(key, (const uint8_t *)res, o, sig, &siglen) != 0) {
        free(res);
        res = NULL;
        goto out;
    }
    res[o++] = '.';
    ac_b64_encode(sig, siglen, res + o, 1);
out:
    free(htxt);
    json_decref(h);
    return res;
}
