/* RFC 9421 HTTP Message Signatures.
 * - Appendix B.2.6 from ../shared/vectors/rfc9421-b26.txt: the B.2 request, Signature-Input and
 *   Signature are parsed, the signature base is rebuilt and compared byte for byte, verified with
 *   the B.1.4 Ed25519 key (JWK x -> raw public key) and, Ed25519 being deterministic, re-signed
 *   with the B.1.4 private key to the very same header values.
 * - One changed byte in each covered component, each parameter and the signature fails.
 * - Appendix B.2.1-B.2.3 and B.2.5 bases over the same request; B.2.5's HMAC-SHA256 signature
 *   (B.1.5 shared secret) is recomputed over our base as an independent check of its bytes.
 * - Derived components and field canonicalization examples of RFC 9421 §2.1 and §2.2.
 * - Every parse error, sign-then-verify for ed25519 and ecdsa-p256-sha256 under agentclear's
 *   profile, and each policy failure code. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "protocol/b64.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/sig.h"
#include "tests/support/headers.h"

/* ==== the vector file ====================================================================== */

struct b2 {
    char *txt; /* the file, cut into NUL-terminated lines; everything below points into it */
    const char *method, *path, *query;
    struct ac_test_headers h;
    char lname[AC_TEST_HEADERS_MAX][32];
    const char *sig_input, *signature;
    char *base;
    size_t base_len;
    const char *jwk_x, *jwk_d;
    struct ac_http_request req;
};

static const char *after(const char *line, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(line, prefix, n) == 0 ? line + n : NULL;
}

static char *jwk_member(char *txt, const char *name)
{
    char pat[16];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    char *p = strstr(txt, pat);
    assert_non_null(p);
    p += strlen(pat);
    char *q = strchr(p, '"');
    assert_non_null(q);
    *q = '\0';
    return p;
}

static void b2_load(struct b2 *v)
{
    memset(v, 0, sizeof *v);
    const char *path = ac_test_src("../shared/vectors/rfc9421-b26.txt");
    size_t len = 0;
    char *txt = ac_test_read_file(path, &len);
    if (txt == NULL) fail_msg("cannot read %s", path);
    char *base_start = strstr(txt, "Signature base (lines joined by LF, no trailing newline):\n");
    assert_non_null(base_start);
    base_start = strchr(base_start, '\n') + 1;
    size_t bl = strlen(base_start);
    while (bl > 0 && (base_start[bl - 1] == '\n' || base_start[bl - 1] == '\r'))
        bl--;
    v->base = malloc(bl + 1);
    assert_non_null(v->base);
    memcpy(v->base, base_start, bl);
    v->base[bl] = '\0';
    v->base_len = bl;
    *base_start = '\0';
    v->txt = txt;
    v->jwk_x = jwk_member(txt, "x");
    v->jwk_d = jwk_member(strchr(v->jwk_x, '\0') + 1, "d");

    enum { PRE, REQLINE, HEADERS, BODY, SIG } st = PRE;
    char *line = strchr(v->jwk_d, '\0') + 1;
    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        const char *val;
        if (strstr(line, "Appendix B.2 test request") == line) {
            st = REQLINE;
        } else if (strstr(line, "Appendix B.2.6 signature") == line) {
            st = SIG;
        } else if (st == REQLINE && line[0] != '\0') {
            /* POST /foo?param=Value&Pet=dog HTTP/1.1 */
            char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
            assert_non_null(sp2);
            *sp1 = *sp2 = '\0';
            v->method = line;
            char *q = strchr(sp1 + 1, '?');
            if (q) *q = '\0';
            v->path = sp1 + 1;
            v->query = q ? q + 1 : NULL;
            st = HEADERS;
        } else if (st == HEADERS && line[0] == '\0') {
            st = BODY;
        } else if (st == HEADERS) {
            char *colon = strchr(line, ':');
            assert_non_null(colon);
            *colon = '\0';
            size_t k = v->h.n;
            assert_true(strlen(line) < sizeof v->lname[k]);
            for (size_t i = 0; line[i]; i++)
                v->lname[k][i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] + 32 : line[i]);
            ac_test_header_set(&v->h, v->lname[k], colon + 1 + strspn(colon + 1, " "));
        } else if (st == SIG && (val = after(line, "Signature-Input: ")) != NULL) {
            v->sig_input = val;
        } else if (st == SIG && (val = after(line, "Signature: ")) != NULL) {
            v->signature = val;
        }
        line = nl ? nl + 1 : NULL;
    }
    assert_non_null(v->method);
    assert_non_null(v->sig_input);
    assert_non_null(v->signature);
    v->req.method = v->method;
    v->req.scheme = "https";
    v->req.authority = ac_test_header_get(&v->h, "host");
    assert_non_null(v->req.authority);
    v->req.path = v->path;
    v->req.query = v->query;
    v->req.has_body = 1;
    v->req.header = ac_test_header_get;
    v->req.header_ctx = &v->h;
}

static void b2_free(struct b2 *v)
{
    free(v->txt);
    free(v->base);
}

static EVP_PKEY *ed_key(const char *x, const char *d)
{
    uint8_t raw[64];
    size_t n = 0;
    assert_int_equal(ac_b64_decode(d ? d : x, strlen(d ? d : x), raw, &n, 1), 0);
    assert_int_equal(n, 32);
    EVP_PKEY *k = d ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32)
                    : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
    assert_non_null(k);
    if (d != NULL) { /* the private key's public half is B.1.4's x */
        uint8_t pub[32], want[40];
        size_t pl = sizeof pub, wl = 0;
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &pl), 1);
        assert_int_equal(ac_b64_decode(x, strlen(x), want, &wl, 1), 0);
        assert_memory_equal(pub, want, 32);
    }
    return k;
}

/* parse (no tag) + base + verify */
static enum ac_ec check(const struct ac_http_request *req, const char *si, const char *sg,
                        EVP_PKEY *k)
{
    struct ac_httpsig hs;
    enum ac_ec ec = ac_httpsig_parse(&hs, si, sg, NULL);
    if (ec == AC_EC_OK) ec = ac_httpsig_base(&hs, req);
    if (ec == AC_EC_OK) ec = ac_httpsig_verify(&hs, k);
    ac_httpsig_free(&hs);
    return ec;
}

/* ==== B.2.6 ================================================================================ */

static void b26_base_and_verify(void **s)
{
    (void)s;
    struct b2 v;
    b2_load(&v);
    EVP_PKEY *k = ed_key(v.jwk_x, NULL);
    struct ac_httpsig hs;
    assert_int_equal(ac_httpsig_parse(&hs, v.sig_input, v.signature, NULL), AC_EC_OK);
    assert_string_equal(hs.label, "sig-b26");
    assert_int_equal(hs.ncomps, 6);
    assert_string_equal(hs.comps[0].name, "date");
    assert_string_equal(hs.comps[1].name, "@method");
    assert_string_equal(hs.comps[5].id, "\"content-length\"");
    assert_true(hs.has_created);
    assert_int_equal(hs.created, 1618884473);
    assert_false(hs.has_expires);
    assert_string_equal(hs.keyid, "test-key-ed25519");
    assert_null(hs.nonce);
    assert_null(hs.alg);
    assert_null(hs.tag);
    assert_int_equal(hs.siglen, 64);
    assert_true(ac_httpsig_covers(&hs, "@method"));
    assert_false(ac_httpsig_covers(&hs, "@query"));

    assert_int_equal(ac_httpsig_base(&hs, &v.req), AC_EC_OK);
    if (hs.base_len != v.base_len || memcmp(hs.base, v.base, v.base_len) != 0)
        fail_msg("base differs:\n--- ours\n%s\n--- rfc\n%s", hs.base, v.base);
    assert_int_equal(ac_httpsig_verify(&hs, k), AC_EC_OK);

    /* the raw signature bytes are the Signature field's base64 */
    const char *b64 = strchr(v.signature, ':') + 1;
    uint8_t raw[80];
    size_t rl = 0;
    assert_int_equal(ac_b64_decode(b64, strcspn(b64, ":"), raw, &rl, 0), 0);
    assert_int_equal(rl, hs.siglen);
    assert_memory_equal(raw, hs.sig, rl);
    /* building the base again gives the same bytes */
    assert_int_equal(ac_httpsig_base(&hs, &v.req), AC_EC_OK);
    assert_memory_equal(hs.base, v.base, v.base_len);
    ac_httpsig_free(&hs);
    ac_httpsig_free(&hs);
    EVP_PKEY_free(k);
    b2_free(&v);
}

static void b26_resign(void **s)
{
    (void)s;
    struct b2 v;
    b2_load(&v);
    EVP_PKEY *k = ed_key(v.jwk_x, v.jwk_d);
    static const char *const comps[] = {"date",         "@method",        "@path", "@authority",
                                        "content-type", "content-length", NULL};
    struct ac_httpsig_sign_opts o = {.label = "sig-b26",
                                     .components = comps,
                                     .keyid = "test-key-ed25519",
                                     .created = 1618884473};
    char si[512], sg[256];
    assert_int_equal(ac_httpsig_sign(k, &v.req, &o, si, sizeof si, sg, sizeof sg), AC_EC_OK);
    assert_string_equal(si, v.sig_input);
    assert_string_equal(sg, v.signature);
    /* buffers too small */
    assert_int_equal(ac_httpsig_sign(k, &v.req, &o, si, 20, sg, sizeof sg),
                     AC_EC_PARAMETER_INVALID);
    assert_int_equal(ac_httpsig_sign(k, &v.req, &o, si, sizeof si, sg, 40),
                     AC_EC_PARAMETER_INVALID);
    EVP_PKEY_free(k);
    b2_free(&v);
}

static void b26_tamper(void **s)
{
    (void)s;
    struct b2 v;
    b2_load(&v);
    EVP_PKEY *k = ed_key(v.jwk_x, NULL);
    assert_int_equal(check(&v.req, v.sig_input, v.signature, k), AC_EC_OK);

    /* one byte of each covered field value */
    static const char *const fields[] = {"date", "content-type", "content-length"};
    for (size_t i = 0; i < 3; i++) {
        const char *orig = ac_test_header_get(&v.h, fields[i]);
        size_t n = strlen(orig);
        for (size_t at = 0; at < n; at++) {
            char mod[128];
            memcpy(mod, orig, n + 1);
            mod[at] = mod[at] == 'x' ? 'y' : 'x';
            ac_test_header_set(&v.h, fields[i], mod);
            assert_int_equal(check(&v.req, v.sig_input, v.signature, k), AC_EC_SIG_INVALID);
        }
        ac_test_header_set(&v.h, fields[i], orig);
    }
    /* derived components: method, path, authority */
    struct ac_http_request r = v.req;
    r.method = "PUST";
    assert_int_equal(check(&r, v.sig_input, v.signature, k), AC_EC_SIG_INVALID);
    r.method = "post"; /* case is kept */
    assert_int_equal(check(&r, v.sig_input, v.signature, k), AC_EC_SIG_INVALID);
    r = v.req;
    r.path = "/fop";
    assert_int_equal(check(&r, v.sig_input, v.signature, k), AC_EC_SIG_INVALID);
    r = v.req;
    r.authority = "examplf.com";
    assert_int_equal(check(&r, v.sig_input, v.signature, k), AC_EC_SIG_INVALID);
    /* ... while normalization keeps an equivalent authority valid, and uncovered parts are free */
    r.authority = "EXAMPLE.com:443";
    assert_int_equal(check(&r, v.sig_input, v.signature, k), AC_EC_OK);
    r = v.req;
    r.query = "param=other";
    ac_test_header_set(&v.h, "content-digest", "sha-256=:AAAA:");
    assert_int_equal(check(&r, v.sig_input, v.signature, k), AC_EC_OK);
    /* a covered field missing from the request */
    struct ac_test_headers saved = v.h;
    v.h.n = 0;
    assert_int_equal(check(&v.req, v.sig_input, v.signature, k), AC_EC_SIG_COMPONENT_ABSENT);
    v.h = saved;

    /* one byte of each parameter, and changes of the parameter and component lists */
    static const char *const inputs[] = {
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884474;keyid=\"test-key-ed25519\"",
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884473;keyid=\"test-key-ed25518\"",
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\";nonce=\"x\"",
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\";alg=\"ed25519\"",
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-length\");keyid=\"test-key-ed25519\";created=1618884473",
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884473",
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-digest\");created=1618884473;keyid=\"test-key-ed25519\"",
        "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\")"
        ";created=1618884473;keyid=\"test-key-ed25519\"",
        "sig-b26=(\"@method\" \"date\" \"@path\" \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
        "sig-b26=(\"date\" \"@method\" \"@path\";x \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
        "sig-b26=(\"date\" \"@method\" \"@target-uri\" \"@authority\" \"content-type\" "
        "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        enum ac_ec ec = check(&v.req, inputs[i], v.signature, k);
        if (ec == AC_EC_OK) fail_msg("accepted: %s", inputs[i]);
    }
    assert_int_equal(check(&v.req, inputs[0], v.signature, k), AC_EC_SIG_INVALID);
    assert_int_equal(check(&v.req, inputs[1], v.signature, k), AC_EC_SIG_INVALID);
    assert_int_equal(check(&v.req, inputs[3], v.signature, k), AC_EC_SIG_INVALID);
    assert_int_equal(check(&v.req, inputs[9], v.signature, k), AC_EC_SIG_MALFORMED);
    /* the canonical form is what is signed: extra SP and a ?1 flag are not significant */
    assert_int_equal(check(&v.req,
                           "sig-b26=(  \"date\" \"@method\"  \"@path\" \"@authority\" "
                           "\"content-type\" \"content-length\" ); created=1618884473;"
                           "keyid=\"test-key-ed25519\"  ",
                           v.signature, k),
                     AC_EC_OK);
    /* an alg parameter that does not fit the key */
    assert_int_equal(check(&v.req,
                           "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" "
                           "\"content-type\" \"content-length\");created=1618884473;"
                           "keyid=\"test-key-ed25519\";alg=\"ecdsa-p256-sha256\"",
                           v.signature, k),
                     AC_EC_SIG_ALG_MISMATCH);

    /* every byte of the signature */
    const char *b64 = strchr(v.signature, ':') + 1;
    uint8_t raw[80];
    size_t rl = 0;
    assert_int_equal(ac_b64_decode(b64, strcspn(b64, ":"), raw, &rl, 0), 0);
    assert_int_equal(rl, 64);
    for (size_t i = 0; i <= rl; i++) {
        char enc[128], hdr[160];
        if (i < rl) raw[i] ^= 0x01;
        /* i == rl: truncated by one byte */
        ac_b64_encode(raw, i < rl ? rl : rl - 1, enc, 0);
        snprintf(hdr, sizeof hdr, "sig-b26=:%s:", enc);
        assert_int_equal(check(&v.req, v.sig_input, hdr, k), AC_EC_SIG_INVALID);
        if (i < rl) raw[i] ^= 0x01;
    }
    /* another Ed25519 key, and a P-256 key */
    EVP_PKEY *other = ac_sig_keygen(AC_SIG_ED25519), *p256 = ac_sig_keygen(AC_SIG_ES256);
    assert_int_equal(check(&v.req, v.sig_input, v.signature, other), AC_EC_SIG_INVALID);
    assert_int_equal(check(&v.req, v.sig_input, v.signature, p256), AC_EC_SIG_INVALID);
    assert_int_equal(check(&v.req, v.sig_input, v.signature, NULL), AC_EC_SIG_ALG_MISMATCH);
    EVP_PKEY_free(other);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(k);
    b2_free(&v);
}

/* ==== other appendix B.2 bases over the same request ======================================= */

static void base_of(const struct ac_http_request *req, const char *si, const char *want)
{
    struct ac_httpsig hs;
    assert_int_equal(ac_httpsig_parse(&hs, si,
                                      "x=::, sig-b21=::, sig-b22=::, sig-b23=::, "
                                      "sig-b25=::, sig1=::",
                                      NULL),
                     AC_EC_OK);
    enum ac_ec ec = ac_httpsig_base(&hs, req);
    if (ec != AC_EC_OK) fail_msg("base failed (%s) for %s", ac_ec_code(ec), si);
    if (strcmp(hs.base, want) != 0) fail_msg("base:\n%s\nwant:\n%s", hs.base, want);
    assert_int_equal(hs.base_len, strlen(want));
    ac_httpsig_free(&hs);
}

static void b2_other_bases(void **s)
{
    (void)s;
    struct b2 v;
    b2_load(&v);
    /* B.2.1 minimal */
    base_of(&v.req,
            "sig-b21=();created=1618884473;keyid=\"test-key-rsa-pss\";"
            "nonce=\"b3k2pp5k7z-50gnwp.yemd\"",
            "\"@signature-params\": ();created=1618884473;keyid=\"test-key-rsa-pss\";"
            "nonce=\"b3k2pp5k7z-50gnwp.yemd\"");
    /* B.2.2 selective, with @query-param */
    base_of(&v.req,
            "sig-b22=(\"@authority\" \"content-digest\" \"@query-param\";name=\"Pet\");"
            "created=1618884473;keyid=\"test-key-rsa-pss\";tag=\"header-example\"",
            "\"@authority\": example.com\n"
            "\"content-digest\": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrI"
            "iYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
            "\"@query-param\";name=\"Pet\": dog\n"
            "\"@signature-params\": (\"@authority\" \"content-digest\" \"@query-param\""
            ";name=\"Pet\");created=1618884473;keyid=\"test-key-rsa-pss\";tag=\"header-example\"");
    /* B.2.3 full coverage */
    base_of(&v.req,
            "sig-b23=(\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" "
            "\"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-rsa-pss\"",
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n"
            "\"@method\": POST\n"
            "\"@path\": /foo\n"
            "\"@query\": ?param=Value&Pet=dog\n"
            "\"@authority\": example.com\n"
            "\"content-type\": application/json\n"
            "\"content-digest\": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrI"
            "iYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
            "\"content-length\": 18\n"
            "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" "
            "\"content-type\" \"content-digest\" \"content-length\");created=1618884473;"
            "keyid=\"test-key-rsa-pss\"");

    /* B.2.5: HMAC-SHA256 with the B.1.5 shared secret over our base gives the RFC's signature */
    static const char secret_b64[] = "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJ"
                                     "PBtbmHhIDi6pcl8jsasjlTMtDQ==";
    static const char b25_sig[] = "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=";
    struct ac_httpsig hs;
    assert_int_equal(
        ac_httpsig_parse(&hs,
                         "sig-b25=(\"date\" \"@authority\" \"content-type\");"
                         "created=1618884473;keyid=\"test-shared-secret\"",
                         "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:", NULL),
        AC_EC_OK);
    assert_int_equal(ac_httpsig_base(&hs, &v.req), AC_EC_OK);
    uint8_t secret[80], mac[EVP_MAX_MD_SIZE];
    size_t sl = 0, ml = 0;
    assert_int_equal(ac_b64_decode(secret_b64, strlen(secret_b64), secret, &sl, 0), 0);
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(m);
    OSSL_PARAM prm[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                        OSSL_PARAM_construct_end()};
    assert_int_equal(EVP_MAC_init(c, secret, sl, prm), 1);
    assert_int_equal(EVP_MAC_update(c, (const uint8_t *)hs.base, hs.base_len), 1);
    assert_int_equal(EVP_MAC_final(c, mac, &ml, sizeof mac), 1);
    char enc[64];
    ac_b64_encode(mac, ml, enc, 0);
    assert_string_equal(enc, b25_sig);
    assert_int_equal(hs.siglen, 32);
    assert_memory_equal(hs.sig, mac, 32);
    /* ac_httpsig_verify knows no HMAC: an Ed25519 key does not verify it */
    EVP_PKEY *k = ed_key(v.jwk_x, NULL);
    assert_int_equal(ac_httpsig_verify(&hs, k), AC_EC_SIG_INVALID);
    EVP_PKEY_free(k);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    ac_httpsig_free(&hs);
    b2_free(&v);
}

/* ==== derived components and fields (RFC 9421 §2.1, §2.2) ================================== */

static void line_of(const struct ac_http_request *req, const char *component, const char *want)
{
    char si[512];
    snprintf(si, sizeof si, "sig1=(%s);created=1", component);
    struct ac_httpsig hs;
    assert_int_equal(ac_httpsig_parse(&hs, si, "sig1=::", NULL), AC_EC_OK);
    enum ac_ec ec = ac_httpsig_base(&hs, req);
    if (ec != AC_EC_OK) fail_msg("%s: %s", component, ac_ec_code(ec));
    char *nl = strchr(hs.base, '\n');
    assert_non_null(nl);
    *nl = '\0';
    if (strcmp(hs.base, want) != 0) fail_msg("got [%s] want [%s]", hs.base, want);
    ac_httpsig_free(&hs);
}

static enum ac_ec base_ec(const struct ac_http_request *req, const char *component)
{
    char si[512];
    snprintf(si, sizeof si, "sig1=(%s);created=1", component);
    struct ac_httpsig hs;
    enum ac_ec ec = ac_httpsig_parse(&hs, si, "sig1=::", NULL);
    if (ec == AC_EC_OK) {
        ec = ac_httpsig_base(&hs, req);
        if (ec != AC_EC_OK) assert_null(hs.base);
    }
    ac_httpsig_free(&hs);
    return ec;
}

static void derived(void **s)
{
    (void)s;
    struct ac_test_headers h = {0};
    struct ac_http_request r = {.method = "POST",
                                .scheme = "https",
                                .authority = "www.example.com",
                                .path = "/path",
                                .query = "param=value",
                                .header = ac_test_header_get,
                                .header_ctx = &h};
    /* §2.2.1 - §2.2.6 examples */
    line_of(&r, "\"@method\"", "\"@method\": POST");
    line_of(&r, "\"@target-uri\"", "\"@target-uri\": https://www.example.com/path?param=value");
    line_of(&r, "\"@authority\"", "\"@authority\": www.example.com");
    line_of(&r, "\"@request-target\"", "\"@request-target\": /path?param=value");
    line_of(&r, "\"@path\"", "\"@path\": /path");
    r.scheme = "http";
    line_of(&r, "\"@scheme\"", "\"@scheme\": http");
    /* normalization: lowercase scheme and host, default port dropped, other ports kept */
    r.scheme = "HTTPS";
    r.authority = "WWW.Example.COM:443";
    line_of(&r, "\"@scheme\"", "\"@scheme\": https");
    line_of(&r, "\"@authority\"", "\"@authority\": www.example.com");
    line_of(&r, "\"@target-uri\"", "\"@target-uri\": https://www.example.com/path?param=value");
    r.authority = "www.example.com:8443";
    line_of(&r, "\"@authority\"", "\"@authority\": www.example.com:8443");
    r.scheme = "http";
    r.authority = "www.example.com:80";
    line_of(&r, "\"@authority\"", "\"@authority\": www.example.com");
    r.authority = "www.example.com:443";
    line_of(&r, "\"@authority\"", "\"@authority\": www.example.com:443");
    r.scheme = "https";
    r.authority = "www.example.com";
    /* §2.2.7 @query */
    r.query = "param=value&foo=bar&baz=bat%2Dman";
    line_of(&r, "\"@query\"", "\"@query\": ?param=value&foo=bar&baz=bat%2Dman");
    r.query = "queryString";
    line_of(&r, "\"@query\"", "\"@query\": ?queryString");
    r.query = NULL;
    line_of(&r, "\"@query\"", "\"@query\": ?");
    line_of(&r, "\"@request-target\"", "\"@request-target\": /path");
    line_of(&r, "\"@target-uri\"", "\"@target-uri\": https://www.example.com/path");
    r.query = "";
    line_of(&r, "\"@target-uri\"", "\"@target-uri\": https://www.example.com/path?");
    r.path = "";
    line_of(&r, "\"@path\"", "\"@path\": /");
    r.path = "/a%2Fb";
    line_of(&r, "\"@path\"", "\"@path\": /a%2Fb"); /* no decoding */

    /* §2.2.8 @query-param */
    r.query = "param=value&foo=bar&baz=batman&qux=";
    line_of(&r, "\"@query-param\";name=\"baz\"", "\"@query-param\";name=\"baz\": batman");
    line_of(&r, "\"@query-param\";name=\"qux\"", "\"@query-param\";name=\"qux\": ");
    line_of(&r, "\"@query-param\";name=\"param\"", "\"@query-param\";name=\"param\": value");
    r.query = "var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace"
              "&fa%C3%A7ade%22%3A%20=something";
    line_of(&r, "\"@query-param\";name=\"var\"",
            "\"@query-param\";name=\"var\": this%20is%20a%20big%0Avalue");
    line_of(&r, "\"@query-param\";name=\"bar\"",
            "\"@query-param\";name=\"bar\": with%20plus%20whitespace");
    line_of(&r, "\"@query-param\";name=\"fa%C3%A7ade%22%3A%20\"",
            "\"@query-param\";name=\"fa%C3%A7ade%22%3A%20\": something");
    /* re-encoding: unreserved kept, "~" and "%2B" encoded, bad escapes and invalid UTF-8 */
    r.query = "a=x~y*z-._&b=%2b%2B&c=%zz%4&d=%FF%C3&&e&f=1=2";
    line_of(&r, "\"@query-param\";name=\"a\"", "\"@query-param\";name=\"a\": x%7Ey*z-._");
    line_of(&r, "\"@query-param\";name=\"b\"", "\"@query-param\";name=\"b\": %2B%2B");
    line_of(&r, "\"@query-param\";name=\"c\"", "\"@query-param\";name=\"c\": %25zz%254");
    line_of(&r, "\"@query-param\";name=\"d\"", "\"@query-param\";name=\"d\": %EF%BF%BD%EF%BF%BD");
    line_of(&r, "\"@query-param\";name=\"e\"", "\"@query-param\";name=\"e\": ");
    line_of(&r, "\"@query-param\";name=\"f\"", "\"@query-param\";name=\"f\": 1%3D2");
    r.query = "u=%E2%82%AC%F0%9F%98%80%ED%A0%80%E2%82";
    line_of(&r, "\"@query-param\";name=\"u\"",
            "\"@query-param\";name=\"u\": %E2%82%AC%F0%9F%98%80%EF%BF%BD%EF%BF%BD%EF%BF%BD"
            "%EF%BF%BD");
    /* absent, duplicated, or no query at all */
    r.query = "a=1&b=2&a=3";
    assert_int_equal(base_ec(&r, "\"@query-param\";name=\"a\""), AC_EC_SIG_COMPONENT_ABSENT);
    assert_int_equal(base_ec(&r, "\"@query-param\";name=\"c\""), AC_EC_SIG_COMPONENT_ABSENT);
    r.query = NULL;
    assert_int_equal(base_ec(&r, "\"@query-param\";name=\"a\""), AC_EC_SIG_COMPONENT_ABSENT);

    /* request parts that cannot be represented */
    r.path = "/a\nb";
    assert_int_equal(base_ec(&r, "\"@path\""), AC_EC_SIG_MALFORMED);
    r.path = "/p\xc3\xa9";
    assert_int_equal(base_ec(&r, "\"@path\""), AC_EC_SIG_MALFORMED);
    r.path = NULL;
    assert_int_equal(base_ec(&r, "\"@path\""), AC_EC_SIG_COMPONENT_ABSENT);
    r.path = "/p";
    r.method = "";
    assert_int_equal(base_ec(&r, "\"@method\""), AC_EC_SIG_COMPONENT_ABSENT);
    r.method = NULL;
    assert_int_equal(base_ec(&r, "\"@method\""), AC_EC_SIG_COMPONENT_ABSENT);
    r.method = "GET";
    r.authority = NULL;
    assert_int_equal(base_ec(&r, "\"@authority\""), AC_EC_SIG_COMPONENT_ABSENT);
    assert_int_equal(base_ec(&r, "\"@path\""), AC_EC_OK);
    char *longq = malloc(AC_HTTPSIG_URI_MAX + 2);
    assert_non_null(longq);
    memset(longq, 'a', AC_HTTPSIG_URI_MAX + 1);
    longq[AC_HTTPSIG_URI_MAX + 1] = '\0';
    r.query = longq;
    assert_int_equal(base_ec(&r, "\"@query\""), AC_EC_SIG_MALFORMED);
    free(longq);
}

static void fields(void **s)
{
    (void)s;
    struct ac_test_headers h = {0};
    struct ac_http_request r = {.method = "GET",
                                .scheme = "https",
                                .authority = "example.com",
                                .path = "/",
                                .header = ac_test_header_get,
                                .header_ctx = &h};
    /* §2.1 examples: trimming, combined values, empty values */
    ac_test_header_set(&h, "x-ows-header", "   Leading and trailing whitespace.   ");
    line_of(&r, "\"x-ows-header\"", "\"x-ows-header\": Leading and trailing whitespace.");
    ac_test_header_set(&h, "cache-control", "max-age=60, must-revalidate");
    line_of(&r, "\"cache-control\"", "\"cache-control\": max-age=60, must-revalidate");
    ac_test_header_set(&h, "x-empty-header", "");
    line_of(&r, "\"x-empty-header\"", "\"x-empty-header\": ");
    ac_test_header_set(&h, "x-tabs", "\t a\tb \t");
    line_of(&r, "\"x-tabs\"", "\"x-tabs\": a\tb");
    /* §2.1.2 dictionary members */
    ac_test_header_set(&h, "example-dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c), d");
    line_of(&r, "\"example-dict\";key=\"a\"", "\"example-dict\";key=\"a\": 1");
    line_of(&r, "\"example-dict\";key=\"d\"", "\"example-dict\";key=\"d\": ?1");
    line_of(&r, "\"example-dict\";key=\"b\"", "\"example-dict\";key=\"b\": 2;x=1;y=2");
    line_of(&r, "\"example-dict\";key=\"c\"", "\"example-dict\";key=\"c\": (a b c)");
    assert_int_equal(base_ec(&r, "\"example-dict\";key=\"e\""), AC_EC_SIG_COMPONENT_ABSENT);
    /* "sf" needs to know the field's type */
    assert_int_equal(base_ec(&r, "\"example-dict\";sf"), AC_EC_SIG_MALFORMED);
    ac_test_header_set(&h, "content-digest",
                       "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,md5=:AA==:");
    line_of(&r, "\"content-digest\";sf",
            "\"content-digest\";sf: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, "
            "md5=:AA==:");
    line_of(&r, "\"content-digest\";key=\"md5\";sf", "\"content-digest\";key=\"md5\";sf: :AA==:");
    ac_test_header_set(&h, "cache-status", "ExampleCache; hit,   origin;fwd=miss");
    line_of(&r, "\"cache-status\";sf", "\"cache-status\";sf: ExampleCache;hit, origin;fwd=miss");
    ac_test_header_set(&h, "cache-status", "ExampleCache; hit,");
    assert_int_equal(base_ec(&r, "\"cache-status\";sf"), AC_EC_SIG_MALFORMED);
    ac_test_header_set(&h, "content-digest", "sha-256=X;");
    assert_int_equal(base_ec(&r, "\"content-digest\";key=\"sha-256\""), AC_EC_SIG_MALFORMED);
    /* absent fields, line breaks */
    assert_int_equal(base_ec(&r, "\"x-absent\""), AC_EC_SIG_COMPONENT_ABSENT);
    ac_test_header_set(&h, "x-crlf", "a\r\nb: c");
    assert_int_equal(base_ec(&r, "\"x-crlf\""), AC_EC_SIG_MALFORMED);
    r.header = NULL;
    assert_int_equal(base_ec(&r, "\"x-ows-header\""), AC_EC_SIG_COMPONENT_ABSENT);
}

/* ==== parse errors ========================================================================= */

static enum ac_ec parse_ec(const char *si, const char *sg, const char *tag)
{
    struct ac_httpsig hs;
    enum ac_ec ec = ac_httpsig_parse(&hs, si, sg, tag);
    if (ec != AC_EC_OK) {
        assert_null(hs.label); /* released and zeroed */
        assert_null(hs.arena.head);
    }
    ac_httpsig_free(&hs);
    return ec;
}

static void parse_errors(void **s)
{
    (void)s;
    const char *ok = "a=(\"@method\");created=1;tag=\"agentclear\"";
    assert_int_equal(parse_ec(ok, "a=:AA==:", "agentclear"), AC_EC_OK);
    assert_int_equal(parse_ec(ok, "a=:AA==:", NULL), AC_EC_OK);
    /* missing */
    assert_int_equal(parse_ec(NULL, "a=:AA==:", "agentclear"), AC_EC_SIG_MISSING);
    assert_int_equal(parse_ec(ok, NULL, "agentclear"), AC_EC_SIG_MISSING);
    assert_int_equal(parse_ec("", "a=:AA==:", "agentclear"), AC_EC_SIG_MISSING);
    assert_int_equal(parse_ec(ok, "  ", "agentclear"), AC_EC_SIG_MISSING);
    /* labels */
    assert_int_equal(parse_ec(ok, "b=:AA==:", "agentclear"), AC_EC_SIG_LABEL_MISMATCH);
    assert_int_equal(parse_ec(ok, "a=:AA==:", "other"), AC_EC_SIG_LABEL_MISMATCH);
    assert_int_equal(parse_ec("a=(\"@method\");tag=agentclear", "a=:AA==:", "agentclear"),
                     AC_EC_SIG_LABEL_MISMATCH); /* a Token, not a String */
    assert_int_equal(parse_ec("a=(), b=()", "a=:AA==:, b=:AA==:", NULL), AC_EC_SIG_LABEL_MISMATCH);
    /* the tagged one among several; a malformed untagged one is ignored */
    assert_int_equal(
        parse_ec("x=?1, y=(\"@foo\");tag=\"other\", a=(\"@method\");tag=\"agentclear\"",
                 "y=:AA==:, a=:AA==:", "agentclear"),
        AC_EC_OK);
    assert_int_equal(parse_ec("a=(\"@method\");tag=\"agentclear\", b=();tag=\"agentclear\"",
                              "a=:AA==:, b=:AA==:", "agentclear"),
                     AC_EC_SIG_MALFORMED);
    /* malformed structured fields */
    static const char *const bad_si[] = {
        "a=(\"@method\"",
        "a=(\"@method\");created=1;tag=\"agentclear\",",
        "A=(\"@method\");tag=\"agentclear\"",
        "a=\"@method\";tag=\"agentclear\"",        /* not an Inner List */
        "a=(@method);tag=\"agentclear\"",          /* not a String */
        "a=(method);tag=\"agentclear\"",           /* a Token */
        "a=(\"Content-Type\");tag=\"agentclear\"", /* uppercase field name */
        "a=(\"content type\");tag=\"agentclear\"",
        "a=(\"\");tag=\"agentclear\"",
        "a=(\"@status\");tag=\"agentclear\"",
        "a=(\"@signature-params\");tag=\"agentclear\"",
        "a=(\"@foo\");tag=\"agentclear\"",
        "a=(\"@method\";req);tag=\"agentclear\"",
        "a=(\"@method\";sf);tag=\"agentclear\"",
        "a=(\"@query-param\");tag=\"agentclear\"",
        "a=(\"@query-param\";name=x);tag=\"agentclear\"",
        "a=(\"@query-param\";name=\"x\";name2=\"y\");tag=\"agentclear\"",
        "a=(\"date\";bs);tag=\"agentclear\"",
        "a=(\"date\";tr);tag=\"agentclear\"",
        "a=(\"date\";req);tag=\"agentclear\"",
        "a=(\"date\";sf=?0);tag=\"agentclear\"",
        "a=(\"example-dict\";key=a);tag=\"agentclear\"",
        "a=(\"date\" \"date\");tag=\"agentclear\"", /* duplicates */
        "a=(\"date\";sf \"date\";sf=?1);tag=\"agentclear\"",
        "a=(\"@method\" \"@method\");tag=\"agentclear\"",
        "a=(\"@query-param\";name=\"x\" \"@query-param\";name=\"x\");tag=\"agentclear\"",
        "a=(\"@method\");created=\"1\";tag=\"agentclear\"",
        "a=(\"@method\");expires=1.5;tag=\"agentclear\"",
        "a=(\"@method\");keyid=k;tag=\"agentclear\"",
        "a=(\"@method\");nonce=1;tag=\"agentclear\"",
        "a=(\"@method\");alg=ed25519;tag=\"agentclear\"",
    };
    for (size_t i = 0; i < sizeof bad_si / sizeof bad_si[0]; i++) {
        enum ac_ec ec = parse_ec(bad_si[i], "a=:AA==:", "agentclear");
        /* "A=" and the non-Inner-List cases cannot even be selected by tag */
        if (ec != AC_EC_SIG_MALFORMED && ec != AC_EC_SIG_LABEL_MISMATCH)
            fail_msg("%s: %s", bad_si[i], ac_ec_code(ec));
        ec = parse_ec(bad_si[i], "a=:AA==:", NULL);
        if (ec != AC_EC_SIG_MALFORMED) fail_msg("(no tag) %s: %s", bad_si[i], ac_ec_code(ec));
    }
    /* distinct parameters make distinct components */
    assert_int_equal(parse_ec("a=(\"date\" \"date\";sf \"@query-param\";name=\"x\" "
                              "\"@query-param\";name=\"y\")",
                              "a=:AA==:", NULL),
                     AC_EC_OK);
    /* the Signature member */
    assert_int_equal(parse_ec(ok, "a=\"AA==\"", NULL), AC_EC_SIG_MALFORMED);
    assert_int_equal(parse_ec(ok, "a=(:AA==:)", NULL), AC_EC_SIG_MALFORMED);
    assert_int_equal(parse_ec(ok, "a", NULL), AC_EC_SIG_MALFORMED);
    assert_int_equal(parse_ec(ok, "a=:AA==", NULL), AC_EC_SIG_MALFORMED);
    assert_int_equal(parse_ec(ok, "a=:AA==:;p=1", NULL), AC_EC_OK);
    /* too many components */
    char big[2048];
    size_t pos = (size_t)snprintf(big, sizeof big, "a=(");
    for (int i = 0; i <= AC_HTTPSIG_MAX_COMPONENTS; i++)
        pos += (size_t)snprintf(big + pos, sizeof big - pos, "%s\"x-h%d\"", i ? " " : "", i);
    snprintf(big + pos, sizeof big - pos, ")");
    assert_int_equal(parse_ec(big, "a=:AA==:", NULL), AC_EC_SIG_MALFORMED);
    /* an over-long identifier */
    char longid[AC_HTTPSIG_ID_MAX + 32];
    memset(longid, 'x', sizeof longid);
    memcpy(longid, "a=(\"", 4);
    memcpy(longid + sizeof longid - 3, "\")", 3);
    assert_int_equal(parse_ec(longid, "a=:AA==:", NULL), AC_EC_SIG_MALFORMED);
    /* over the field size cap */
    char *huge = malloc(AC_SFV_MAX_INPUT + 64);
    assert_non_null(huge);
    memset(huge, ' ', AC_SFV_MAX_INPUT + 63);
    memcpy(huge, ok, strlen(ok));
    huge[AC_SFV_MAX_INPUT + 63] = '\0';
    assert_int_equal(parse_ec(huge, "a=:AA==:", NULL), AC_EC_SIG_MALFORMED);
    huge[AC_SFV_MAX_INPUT] = '\0';
    assert_int_equal(parse_ec(huge, "a=:AA==:", NULL), AC_EC_OK);
    free(huge);
    /* a base needs a parsed signature */
    struct ac_httpsig hs;
    memset(&hs, 0, sizeof hs);
    struct ac_http_request r = {0};
    assert_int_equal(ac_httpsig_base(&hs, &r), AC_EC_INTERNAL);
    assert_int_equal(ac_httpsig_verify(&hs, NULL), AC_EC_INTERNAL);
}

/* ==== agentclear profile: sign, verify, policy ============================================= */

struct agent_req {
    struct ac_test_headers h;
    char digest[AC_DIGEST_HEADER_MAX + 1];
    char si[2048], sg[512];
    struct ac_http_request req;
};

static const char pay_body[] = "{\"amount\":{\"currency\":\"CNY\",\"value\":\"12.34\"}}";
#define NOW 1700000000

static void agent_init(struct agent_req *a, const char *query)
{
    memset(a, 0, sizeof *a);
    assert_true(ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)pay_body, sizeof pay_body - 1,
                                 a->digest, sizeof a->digest) > 0);
    ac_test_header_set(&a->h, "content-digest", a->digest);
    ac_test_header_set(&a->h, "agent-runtime",
                       "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
    ac_test_header_set(&a->h, "content-type", "application/json");
    a->req.method = "POST";
    a->req.scheme = "https";
    a->req.authority = "pay.example.com";
    a->req.path = "/v1/payments";
    a->req.query = query;
    a->req.has_body = 1;
    a->req.header = ac_test_header_get;
    a->req.header_ctx = &a->h;
}

static enum ac_ec agent_sign(struct agent_req *a, EVP_PKEY *k, const char *const *comps,
                             int64_t created, int64_t expires, const char *nonce, const char *tag)
{
    struct ac_httpsig_sign_opts o = {.label = "sig1",
                                     .components = comps,
                                     .keyid = "agent-key-1",
                                     .created = created,
                                     .expires = expires,
                                     .nonce = nonce,
                                     .tag = tag,
                                     .with_alg = 1};
    return ac_httpsig_sign(k, &a->req, &o, a->si, sizeof a->si, a->sg, sizeof a->sg);
}

/* the full verifier sequence; *pol_ec gets the policy result, the return is verify's */
static enum ac_ec agent_verify(const struct agent_req *a, EVP_PKEY *k,
                               const struct ac_httpsig_policy *pol, int64_t now, enum ac_ec *pol_ec)
{
    struct ac_httpsig hs;
    enum ac_ec ec = ac_httpsig_parse(&hs, a->si, a->sg, "agentclear");
    *pol_ec = ec;
    if (ec == AC_EC_OK) *pol_ec = ac_httpsig_check_policy(&hs, &a->req, pol, now);
    if (ec == AC_EC_OK) ec = ac_httpsig_base(&hs, &a->req);
    if (ec == AC_EC_OK) ec = ac_httpsig_verify(&hs, k);
    ac_httpsig_free(&hs);
    return ec;
}

static const char *const full_comps[] = {"@method",       "@target-uri",  "content-digest",
                                         "agent-runtime", "content-type", NULL};

static void roundtrip(enum ac_sig_alg alg)
{
    EVP_PKEY *k = ac_sig_keygen(alg);
    assert_non_null(k);
    struct ac_httpsig_policy pol;
    ac_httpsig_policy_agentclear(&pol);
    struct agent_req a;
    agent_init(&a, "mandate=m-1");
    enum ac_ec pe;
    assert_int_equal(agent_sign(&a, k, full_comps, NOW, NOW + 300, "n-0001", "agentclear"),
                     AC_EC_OK);
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_OK);
    assert_int_equal(pe, AC_EC_OK);
    assert_int_equal(ac_digest_verify(a.digest, strlen(a.digest), (const uint8_t *)pay_body,
                                      sizeof pay_body - 1),
                     AC_EC_OK);

    /* the parsed view, and the base and raw signature kept for the evidence record */
    struct ac_httpsig hs;
    assert_int_equal(ac_httpsig_parse(&hs, a.si, a.sg, "agentclear"), AC_EC_OK);
    assert_string_equal(hs.nonce, "n-0001");
    assert_string_equal(hs.keyid, "agent-key-1");
    assert_string_equal(hs.tag, "agentclear");
    assert_string_equal(hs.alg, alg == AC_SIG_ED25519 ? "ed25519" : "ecdsa-p256-sha256");
    assert_int_equal(hs.expires, NOW + 300);
    assert_int_equal(hs.nparams, 6);
    assert_int_equal(ac_httpsig_base(&hs, &a.req), AC_EC_OK);
    assert_int_equal(ac_httpsig_verify(&hs, k), AC_EC_OK);
    assert_int_equal(hs.siglen, 64);
    char want_tail[4096];
    int wl = snprintf(want_tail, sizeof want_tail, "\"@signature-params\": %s",
                      a.si + strlen("sig1="));
    assert_true(wl > 0 && (size_t)wl < sizeof want_tail);
    assert_non_null(strstr(hs.base, want_tail));
    assert_int_equal(strlen(hs.base), hs.base_len);
    const char *pre = "\"@method\": POST\n"
                      "\"@target-uri\": https://pay.example.com/v1/payments?mandate=m-1\n"
                      "\"content-digest\": sha-256=:";
    assert_true(strncmp(hs.base, pre, strlen(pre)) == 0);
    uint8_t *copy = malloc(hs.base_len);
    assert_non_null(copy);
    memcpy(copy, hs.base, hs.base_len);
    assert_int_equal(ac_sig_verify(k, alg, copy, hs.base_len, hs.sig, hs.siglen), 1);
    free(copy);
    ac_httpsig_free(&hs);

    /* a second signature by someone else beside ours: ours is still found */
    char si2[4096], sg2[1024];
    snprintf(si2, sizeof si2, "proxy=(\"@method\");created=1;tag=\"proxy\", %s", a.si);
    snprintf(sg2, sizeof sg2, "proxy=:AAAA:, %s", a.sg);
    strcpy(a.si, si2);
    strcpy(a.sg, sg2);
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_OK);

    /* any covered value changed fails */
    assert_int_equal(agent_sign(&a, k, full_comps, NOW, NOW + 300, "n-0001", "agentclear"),
                     AC_EC_OK);
    struct ac_http_request saved = a.req;
    a.req.method = "PUT";
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_SIG_INVALID);
    a.req = saved;
    a.req.query = "mandate=m-2";
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_SIG_INVALID);
    a.req = saved;
    a.req.path = "/v1/payment";
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_SIG_INVALID);
    a.req = saved;
    a.req.authority = "evil.example.com";
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_SIG_INVALID);
    a.req = saved;
    ac_test_header_set(&a.h, "agent-runtime",
                       "sha-256=:Y48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_SIG_INVALID);
    ac_test_header_set(&a.h, "agent-runtime",
                       "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
    ac_test_header_set(&a.h, "content-type", "text/plain");
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_SIG_INVALID);
    ac_test_header_set(&a.h, "content-type", "application/json");
    assert_int_equal(agent_verify(&a, k, &pol, NOW, &pe), AC_EC_OK);

    /* wrong keys */
    EVP_PKEY *other = ac_sig_keygen(alg);
    EVP_PKEY *wrong = ac_sig_keygen(alg == AC_SIG_ED25519 ? AC_SIG_ES256 : AC_SIG_ED25519);
    assert_int_equal(agent_verify(&a, other, &pol, NOW, &pe), AC_EC_SIG_INVALID);
    assert_int_equal(agent_verify(&a, wrong, &pol, NOW, &pe), AC_EC_SIG_ALG_MISMATCH);
    EVP_PKEY_free(other);
    EVP_PKEY_free(wrong);
    EVP_PKEY_free(k);
}

static void sign_verify_ed25519(void **s)
{
    (void)s;
    roundtrip(AC_SIG_ED25519);
}

static void sign_verify_es256(void **s)
{
    (void)s;
    roundtrip(AC_SIG_ES256);
}

static EVP_PKEY *pol_key;

/* policy result for a request signed with comps and the given parameters */
static enum ac_ec pol_case(const char *query, int has_body, const char *const *comps,
                           int64_t created, int64_t expires, const char *nonce, const char *tag,
                           const struct ac_httpsig_policy *pol, int64_t now)
{
    if (pol_key == NULL) pol_key = ac_sig_keygen(AC_SIG_ED25519);
    EVP_PKEY *k = pol_key;
    struct agent_req a;
    agent_init(&a, query);
    a.req.has_body = has_body;
    assert_int_equal(agent_sign(&a, k, comps, created, expires, nonce, tag), AC_EC_OK);
    struct ac_httpsig hs;
    enum ac_ec ec = ac_httpsig_parse(&hs, a.si, a.sg, tag != NULL ? tag : NULL);
    assert_int_equal(ec, AC_EC_OK);
    ec = ac_httpsig_check_policy(&hs, &a.req, pol, now);
    /* whatever the policy says, the signature itself is good */
    assert_int_equal(ac_httpsig_base(&hs, &a.req), AC_EC_OK);
    assert_int_equal(ac_httpsig_verify(&hs, k), AC_EC_OK);
    ac_httpsig_free(&hs);
    return ec;
}

static void policy(void **s)
{
    (void)s;
    struct ac_httpsig_policy pol;
    ac_httpsig_policy_agentclear(&pol);
    assert_string_equal(pol.tag, "agentclear");
    const char *q = "mandate=m-1";
    const char *T = "agentclear";
    const int64_t E = NOW + 300;
#define P(query, body, comps, created, expires, nonce, tag)                                        \
    pol_case(query, body, comps, created, expires, nonce, tag, &pol, NOW)

    /* the full profile passes */
    assert_int_equal(P(q, 1, full_comps, NOW, E, "n", T), AC_EC_OK);
    /* the split target form: @authority + @path + @query; @query only with a query */
    static const char *const split[] = {"@method",        "@authority",    "@path", "@query",
                                        "content-digest", "agent-runtime", NULL};
    static const char *const split_noq[] = {"@method",        "@authority",    "@path",
                                            "content-digest", "agent-runtime", NULL};
    assert_int_equal(P(q, 1, split, NOW, E, "n", T), AC_EC_OK);
    assert_int_equal(P(NULL, 1, split_noq, NOW, E, "n", T), AC_EC_OK);
    assert_int_equal(P(q, 1, split_noq, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    assert_int_equal(P("", 1, split_noq, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    static const char *const no_path[] = {"@method",        "@authority",    "@query",
                                          "content-digest", "agent-runtime", NULL};
    assert_int_equal(P(q, 1, no_path, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    static const char *const no_target[] = {"@method",        "@path",         "@query",
                                            "content-digest", "agent-runtime", NULL};
    assert_int_equal(P(q, 1, no_target, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    /* required components */
    static const char *const no_method[] = {"@target-uri", "content-digest", "agent-runtime", NULL};
    assert_int_equal(P(q, 1, no_method, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    static const char *const no_runtime[] = {"@method", "@target-uri", "content-digest", NULL};
    assert_int_equal(P(q, 1, no_runtime, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    /* a parameterized identifier does not count as the plain one */
    static const char *const runtime_sf[] = {"@method", "@target-uri", "content-digest",
                                             "\"agent-runtime\";key=\"sha-256\"", NULL};
    assert_int_equal(P(q, 1, runtime_sf, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    /* content-digest only with a body */
    static const char *const no_digest[] = {"@method", "@target-uri", "agent-runtime", NULL};
    assert_int_equal(P(q, 1, no_digest, NOW, E, "n", T), AC_EC_SIG_COMPONENT_MISSING);
    assert_int_equal(P(q, 0, no_digest, NOW, E, "n", T), AC_EC_OK);
    {
        /* a body but no Content-Digest field at all */
        EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
        struct agent_req a;
        agent_init(&a, q);
        a.h.value[0] = NULL; /* content-digest */
        assert_int_equal(agent_sign(&a, k, no_digest, NOW, E, "n", T), AC_EC_OK);
        struct ac_httpsig hs;
        assert_int_equal(ac_httpsig_parse(&hs, a.si, a.sg, T), AC_EC_OK);
        assert_int_equal(ac_httpsig_check_policy(&hs, &a.req, &pol, NOW), AC_EC_DIGEST_MISSING);
        ac_httpsig_free(&hs);
        EVP_PKEY_free(k);
    }
    /* required parameters */
    assert_int_equal(P(q, 1, full_comps, NOW, E, NULL, T), AC_EC_SIG_PARAM_MISSING);
    assert_int_equal(P(q, 1, full_comps, NOW, E, "", T), AC_EC_SIG_PARAM_MISSING);
    assert_int_equal(P(q, 1, full_comps, NOW, 0, "n", T), AC_EC_SIG_PARAM_MISSING);
    assert_int_equal(P(q, 1, full_comps, NOW, E, "n", NULL), AC_EC_SIG_PARAM_MISSING);
    assert_int_equal(P(q, 1, full_comps, NOW, E, "n", "other"), AC_EC_SIG_PARAM_MISSING);
    {
        /* created and keyid absent (the signer always writes them: hand-made input) */
        struct agent_req a;
        agent_init(&a, q);
        struct ac_httpsig hs;
        assert_int_equal(ac_httpsig_parse(&hs,
                                          "s=(\"@method\" \"@target-uri\" \"content-digest\" "
                                          "\"agent-runtime\");keyid=\"k\";nonce=\"n\";"
                                          "expires=1700000300;tag=\"agentclear\"",
                                          "s=:AA==:", T),
                         AC_EC_OK);
        assert_int_equal(ac_httpsig_check_policy(&hs, &a.req, &pol, NOW), AC_EC_SIG_PARAM_MISSING);
        ac_httpsig_free(&hs);
        assert_int_equal(ac_httpsig_parse(&hs,
                                          "s=(\"@method\" \"@target-uri\" \"content-digest\" "
                                          "\"agent-runtime\");created=1700000000;nonce=\"n\";"
                                          "expires=1700000300;tag=\"agentclear\"",
                                          "s=:AA==:", T),
                         AC_EC_OK);
        assert_int_equal(ac_httpsig_check_policy(&hs, &a.req, &pol, NOW), AC_EC_SIG_PARAM_MISSING);
        ac_httpsig_free(&hs);
    }
    /* clock window */
    int64_t sk = pol.max_skew;
    assert_int_equal(P(q, 1, full_comps, NOW - sk, E, "n", T), AC_EC_OK);
    assert_int_equal(P(q, 1, full_comps, NOW + sk, E, "n", T), AC_EC_OK);
    assert_int_equal(P(q, 1, full_comps, NOW - sk - 1, E, "n", T), AC_EC_SIG_STALE);
    assert_int_equal(P(q, 1, full_comps, NOW + sk + 1, E, "n", T), AC_EC_SIG_STALE);
    assert_int_equal(P(q, 1, full_comps, 1, E, "n", T), AC_EC_SIG_STALE);
    /* expiry */
    assert_int_equal(P(q, 1, full_comps, NOW - 10, NOW, "n", T), AC_EC_OK);
    assert_int_equal(P(q, 1, full_comps, NOW - 10, NOW - 1, "n", T), AC_EC_SIG_EXPIRED);
    assert_int_equal(P(q, 1, full_comps, NOW + 10, NOW + 5, "n", T), AC_EC_SIG_EXPIRED);
    /* max-age instead of expires */
    pol.max_age = 30;
    assert_int_equal(P(q, 1, full_comps, NOW - 30, 0, "n", T), AC_EC_OK);
    assert_int_equal(P(q, 1, full_comps, NOW - 31, 0, "n", T), AC_EC_SIG_EXPIRED);
    assert_int_equal(P(q, 1, full_comps, NOW - 10, NOW - 1, "n", T), AC_EC_SIG_EXPIRED);
    pol.max_age = 0;

    /* a merchant profile: other tag, other required components, no target rule */
    static const char *const merchant_req[] = {"@method", "@path", NULL};
    struct ac_httpsig_policy mp = {.tag = "merchant",
                                   .components = merchant_req,
                                   .require_target = 0,
                                   .require_digest = 1,
                                   .max_skew = 30,
                                   .max_age = 60};
    static const char *const mcomps[] = {"@method", "@path", "content-digest", NULL};
    assert_int_equal(pol_case(q, 1, mcomps, NOW, 0, "n", "merchant", &mp, NOW), AC_EC_OK);
    assert_int_equal(pol_case(q, 1, no_digest, NOW, 0, "n", "merchant", &mp, NOW),
                     AC_EC_SIG_COMPONENT_MISSING);
    assert_int_equal(pol_case(q, 1, mcomps, NOW - 31, 0, "n", "merchant", &mp, NOW),
                     AC_EC_SIG_STALE);
#undef P
    EVP_PKEY_free(pol_key);
    pol_key = NULL;
}

static void signer_errors(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    struct agent_req a;
    agent_init(&a, NULL);
    struct ac_httpsig_sign_opts o = {
        .label = "sig1", .components = full_comps, .keyid = "k", .created = NOW};
    char si[1024], sg[256];
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg), AC_EC_OK);
    o.label = "Sig1";
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_PARAMETER_INVALID);
    o.label = "sig1";
    o.keyid = NULL;
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_PARAMETER_INVALID);
    o.keyid = "k";
    assert_int_equal(ac_httpsig_sign(NULL, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_PARAMETER_INVALID);
    static const char *const absent[] = {"@method", "x-not-there", NULL};
    o.components = absent;
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_SIG_COMPONENT_ABSENT);
    static const char *const invalid[] = {"@method", "X-Upper", NULL};
    o.components = invalid;
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_SIG_MALFORMED);
    static const char *const unparsable[] = {"\"@query-param\";name=", NULL};
    o.components = unparsable;
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_PARAMETER_INVALID);
    static const char *const dup[] = {"@method", "@method", NULL};
    o.components = dup;
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_SIG_MALFORMED);
    static const char *const qp[] = {"\"@query-param\";name=\"a\"", NULL};
    o.components = qp;
    a.req.query = "a=%20b";
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg), AC_EC_OK);
    assert_int_equal(check(&a.req, si, sg, k), AC_EC_OK);
    a.req.query = "a=%20c";
    assert_int_equal(check(&a.req, si, sg, k), AC_EC_SIG_INVALID);
    /* too many components */
    const char *many[AC_HTTPSIG_MAX_COMPONENTS + 2];
    for (int i = 0; i <= AC_HTTPSIG_MAX_COMPONENTS; i++)
        many[i] = "@method";
    many[AC_HTTPSIG_MAX_COMPONENTS + 1] = NULL;
    o.components = many;
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_PARAMETER_INVALID);
    /* a nonce that cannot be an RFC 8941 String */
    o.components = full_comps;
    o.nonce = "bad\nnonce";
    assert_int_equal(ac_httpsig_sign(k, &a.req, &o, si, sizeof si, sg, sizeof sg),
                     AC_EC_PARAMETER_INVALID);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b26_base_and_verify),
        cmocka_unit_test(b26_resign),
        cmocka_unit_test(b26_tamper),
        cmocka_unit_test(b2_other_bases),
        cmocka_unit_test(derived),
        cmocka_unit_test(fields),
        cmocka_unit_test(parse_errors),
        cmocka_unit_test(sign_verify_ed25519),
        cmocka_unit_test(sign_verify_es256),
        cmocka_unit_test(policy),
        cmocka_unit_test(signer_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
