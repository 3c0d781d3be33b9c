/* Independent clients from npm (tests/conformance/npm/, installed by ops/npm-clients.sh) against
 * the protocol code, in both directions:
 * - http-message-signatures signs agentclear-profile requests (Ed25519 and P-256; GET without a
 *   body and POST with one; "@target-uri" and "@authority" "@path" "@query") that
 *   ac_httpsig_parse/_check_policy/_base/_verify and ac_digest_verify accept; its signature base
 *   equals ours byte for byte, its RFC 7638 keyid equals ac_jwk_thumbprint(), its Content-Digest
 *   equals ac_digest_header();
 * - ac_httpsig_sign output verifies with http-message-signatures (same base), and a changed
 *   method or body is rejected there;
 * - jose signs JWS (EdDSA, ES256) that ac_jws_parse/ac_jws_verify accept; ac_jws_sign output
 *   verifies with jose; other keys are refused on both sides;
 * - the npm cbor package finds ac_dcbor_encode output canonical and re-encodes it identically.
 * Exit 77 without AC_NPM_DIR (run by hand), failure with AC_REQUIRE_NPM=1 (ops/test). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "protocol/dcbor.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/sig.h"
#include "tests/support/headers.h"
#include "tests/support/npm.h"

#define AUTHORITY "pay.agentclear.test:8443"
#define RUNTIME "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
#define BODY "{\"amount\":{\"currency\":\"CNY\",\"value\":\"12.34\"},\"mandate\":\"m-1\"}"

/* ==== requests ============================================================================= */

struct shape {
    const char *name;
    const char *method, *path, *query; /* query NULL: no "?" */
    int body;
    int split; /* "@authority" "@path" "@query" instead of "@target-uri" */
};

static const struct shape shapes[] = {
    {"GET, @target-uri", "GET", "/v1/bindings/b-1", NULL, 0, 0},
    {"GET, split", "GET", "/v1/bindings/b-1", NULL, 0, 1},
    {"GET with query, split", "GET", "/v1/transfers", "account=a-1&limit=10", 0, 1},
    {"POST with body, @target-uri", "POST", "/v1/payments", "mandate=m-1&note=a%20b", 1, 0},
    {"POST with body, split", "POST", "/v1/payments", "mandate=m-1&note=a%20b", 1, 1},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static const char *const comps_uri[] = {"@method", "@target-uri", "agent-runtime", NULL};
static const char *const comps_uri_body[] = {"@method", "@target-uri", "content-digest",
                                             "agent-runtime", NULL};
static const char *const comps_split[] = {"@method", "@authority",    "@path",
                                          "@query",  "agent-runtime", NULL};
static const char *const comps_split_body[] = {"@method",        "@authority",    "@path", "@query",
                                               "content-digest", "agent-runtime", NULL};

static const char *const *profile_comps(const struct shape *s)
{
    if (s->split) return s->body ? comps_split_body : comps_split;
    return s->body ? comps_uri_body : comps_uri;
}

static void url_of(const struct shape *s, char *out, size_t cap)
{
    snprintf(out, cap, "https://" AUTHORITY "%s%s%s", s->path, s->query ? "?" : "",
             s->query ? s->query : "");
}

static struct ac_http_request request_of(const struct shape *s, struct ac_test_headers *h)
{
    struct ac_http_request r = {.method = s->method,
                                .scheme = "https",
                                .authority = AUTHORITY,
                                .path = s->path,
                                .query = s->query,
                                .has_body = s->body,
                                .header = ac_test_header_get,
                                .header_ctx = h};
    return r;
}

static const char *alg_name(enum ac_sig_alg alg)
{
    return alg == AC_SIG_ED25519 ? "ed25519" : "ecdsa-p256-sha256";
}

/* The public key as the server would hold it: exported to a JWK and imported back. */
static EVP_PKEY *public_of(EVP_PKEY *key)
{
    json_t *jwk = ac_jwk_export_public(key);
    assert_non_null(jwk);
    EVP_PKEY *pub = NULL;
    assert_int_equal(ac_jwk_import_public(jwk, &pub, NULL), AC_EC_OK);
    json_decref(jwk);
    return pub;
}

static const char *jstr(const json_t *obj, const char *name)
{
    const char *v = json_string_value(json_object_get(obj, name));
    if (v == NULL) fail_msg("no string member %s", name);
    return v;
}

static void assert_same_base(const char *ours, size_t ours_len, const char *theirs)
{
    if (ours_len != strlen(theirs) || memcmp(ours, theirs, ours_len) != 0)
        fail_msg("signature bases differ\n--- ours\n%s\n--- npm\n%s", ours, theirs);
}

/* ==== http-message-signatures signs, we verify ============================================= */

static void npm_signs(enum ac_sig_alg alg, const struct shape *s)
{
    EVP_PKEY *key = ac_sig_keygen(alg);
    assert_non_null(key);
    char thumb[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(key, thumb), 0);
    json_t *jwk = ac_jwk_export_private(key);
    assert_non_null(jwk);
    char url[256], nonce[64];
    url_of(s, url, sizeof url);
    int64_t now = (int64_t)time(NULL);
    snprintf(nonce, sizeof nonce, "n-%d-%lld", (int)alg, (long long)now);

    json_t *in = json_pack("{s:o, s:s, s:s, s:{s:s}, s:s, s:I, s:I, s:s}", "jwk", jwk, "method",
                           s->method, "url", url, "headers", "agent-runtime", RUNTIME, "target",
                           s->split ? "split" : "uri", "created", (json_int_t)now, "expires",
                           (json_int_t)(now + 300), "nonce", nonce);
    assert_non_null(in);
    if (s->body) {
        json_object_set_new(json_object_get(in, "headers"), "content-type",
                            json_string("application/json"));
        json_object_set_new(in, "body", json_string(BODY));
    }
    int st = -1;
    json_t *out = ac_npm_json("sign-request.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    assert_int_equal(st, 0);
    assert_string_equal(jstr(out, "url"), url); /* our URLs are already in WHATWG form */
    assert_string_equal(jstr(out, "method"), s->method);
    json_t *oh = json_object_get(out, "headers");
    assert_true(json_is_object(oh));

    /* the request as the server receives it: every header the client sends */
    struct ac_test_headers h = {0};
    const char *name;
    json_t *v;
    json_object_foreach(oh, name, v)
    {
        assert_true(json_is_string(v));
        ac_test_header_set(&h, name, json_string_value(v));
    }
    struct ac_http_request req = request_of(s, &h);

    struct ac_httpsig hs;
    assert_int_equal(ac_httpsig_parse(&hs, ac_test_header_get(&h, "signature-input"),
                                      ac_test_header_get(&h, "signature"), "agentclear"),
                     AC_EC_OK);
    assert_string_equal(hs.label, "sig1");
    assert_non_null(hs.keyid);
    assert_string_equal(hs.keyid, thumb); /* jose's RFC 7638 thumbprint is ours */
    assert_string_equal(hs.alg, alg_name(alg));
    assert_string_equal(hs.nonce, nonce);
    assert_int_equal(hs.created, now);
    assert_int_equal(hs.expires, now + 300);
    const char *const *want = profile_comps(s);
    size_t nwant = 0;
    while (want[nwant] != NULL)
        nwant++;
    assert_int_equal(hs.ncomps, nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_string_equal(hs.comps[i].name, want[i]);

    struct ac_httpsig_policy pol;
    ac_httpsig_policy_agentclear(&pol);
    assert_int_equal(ac_httpsig_check_policy(&hs, &req, &pol, now), AC_EC_OK);
    assert_int_equal(ac_httpsig_base(&hs, &req), AC_EC_OK);
    assert_same_base(hs.base, hs.base_len, jstr(out, "signature_base"));
    EVP_PKEY *pub = public_of(key);
    assert_int_equal(ac_httpsig_verify(&hs, pub), AC_EC_OK);
    /* a one-byte change to what was signed fails (the check above can fail) */
    req.method = s->body ? "PUT" : "HEAD";
    assert_int_equal(ac_httpsig_base(&hs, &req), AC_EC_OK);
    assert_int_equal(ac_httpsig_verify(&hs, pub), AC_EC_SIG_INVALID);
    ac_httpsig_free(&hs);

    const char *cd = ac_test_header_get(&h, "content-digest");
    if (s->body) {
        assert_non_null(cd);
        char ours[AC_DIGEST_HEADER_MAX + 1];
        assert_true(ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)BODY, strlen(BODY), ours,
                                     sizeof ours) > 0);
        assert_string_equal(cd, ours);
        assert_int_equal(ac_digest_verify(cd, strlen(cd), (const uint8_t *)BODY, strlen(BODY)),
                         AC_EC_OK);
    } else {
        assert_null(cd);
    }
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
    json_decref(out);
}

static void npm_signs_ed25519(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSHAPES; i++)
        npm_signs(AC_SIG_ED25519, &shapes[i]);
}

static void npm_signs_es256(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSHAPES; i++)
        npm_signs(AC_SIG_ES256, &shapes[i]);
}

/* A digest with sha-512 (the npm signer's option), and sha-256 and sha-512 together as our
 * ac_digest_header writes them, both accepted. */
static void npm_signs_sha512_digest(void **state)
{
    (void)state;
    EVP_PKEY *key = ac_sig_keygen(AC_SIG_ED25519);
    json_t *jwk = ac_jwk_export_private(key);
    const struct shape *s = &shapes[3];
    char url[256];
    url_of(s, url, sizeof url);
    int64_t now = (int64_t)time(NULL);
    json_t *in =
        json_pack("{s:o, s:s, s:s, s:{s:s}, s:s, s:s}", "jwk", jwk, "method", s->method, "url", url,
                  "headers", "agent-runtime", RUNTIME, "body", BODY, "digest", "sha-512");
    int st = -1;
    json_t *out = ac_npm_json("sign-request.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    assert_int_equal(st, 0);
    json_t *oh = json_object_get(out, "headers");
    const char *cd = jstr(oh, "content-digest");
    char ours[AC_DIGEST_HEADER_MAX + 1];
    assert_true(ac_digest_header(AC_DIGEST_SHA512, (const uint8_t *)BODY, strlen(BODY), ours,
                                 sizeof ours) > 0);
    assert_string_equal(cd, ours);
    assert_int_equal(ac_digest_verify(cd, strlen(cd), (const uint8_t *)BODY, strlen(BODY)),
                     AC_EC_OK);
    assert_int_equal(ac_digest_verify(cd, strlen(cd), (const uint8_t *)BODY, strlen(BODY) - 1),
                     AC_EC_DIGEST_MISMATCH);
    struct ac_test_headers h = {0};
    ac_test_header_set(&h, "agent-runtime", RUNTIME);
    ac_test_header_set(&h, "content-digest", cd);
    struct ac_http_request req = request_of(s, &h);
    struct ac_httpsig hs;
    assert_int_equal(
        ac_httpsig_parse(&hs, jstr(oh, "signature-input"), jstr(oh, "signature"), "agentclear"),
        AC_EC_OK);
    struct ac_httpsig_policy pol;
    ac_httpsig_policy_agentclear(&pol);
    assert_int_equal(ac_httpsig_check_policy(&hs, &req, &pol, now), AC_EC_OK);
    assert_int_equal(ac_httpsig_base(&hs, &req), AC_EC_OK);
    assert_same_base(hs.base, hs.base_len, jstr(out, "signature_base"));
    assert_int_equal(ac_httpsig_verify(&hs, key), AC_EC_OK);
    ac_httpsig_free(&hs);
    json_decref(out);
    EVP_PKEY_free(key);
}

/* ==== we sign, http-message-signatures verifies ============================================ */

static json_t *verify_input(EVP_PKEY *key, const struct shape *s, const char *method,
                            const struct ac_test_headers *h, const char *body, const char *keyid)
{
    char url[256];
    url_of(s, url, sizeof url);
    json_t *headers = json_object();
    for (size_t i = 0; i < h->n; i++)
        json_object_set_new(headers, h->name[i], json_string(h->value[i]));
    json_t *in = json_pack("{s:o, s:s, s:s, s:o, s:s}", "jwk", ac_jwk_export_public(key), "method",
                           method, "url", url, "headers", headers, "keyid", keyid);
    assert_non_null(in);
    if (body != NULL) json_object_set_new(in, "body", json_string(body));
    return in;
}

static void we_sign(enum ac_sig_alg alg, const struct shape *s)
{
    EVP_PKEY *key = ac_sig_keygen(alg);
    assert_non_null(key);
    char thumb[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(key, thumb), 0);
    struct ac_test_headers h = {0};
    ac_test_header_set(&h, "agent-runtime", RUNTIME);
    char cd[AC_DIGEST_HEADER_MAX + 1];
    if (s->body) {
        ac_test_header_set(&h, "content-type", "application/json");
        assert_true(ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)BODY, strlen(BODY), cd,
                                     sizeof cd) > 0);
        ac_test_header_set(&h, "content-digest", cd);
    }
    struct ac_http_request req = request_of(s, &h);
    int64_t now = (int64_t)time(NULL);
    struct ac_httpsig_sign_opts o = {.label = "sig1",
                                     .components = profile_comps(s),
                                     .keyid = thumb,
                                     .created = now,
                                     .expires = now + 300,
                                     .nonce = "c-nonce-1",
                                     .tag = "agentclear",
                                     .with_alg = 1};
    char si[2048], sg[256];
    assert_int_equal(ac_httpsig_sign(key, &req, &o, si, sizeof si, sg, sizeof sg), AC_EC_OK);
    struct ac_httpsig hs;
    assert_int_equal(ac_httpsig_parse(&hs, si, sg, "agentclear"), AC_EC_OK);
    assert_int_equal(ac_httpsig_base(&hs, &req), AC_EC_OK);
    ac_test_header_set(&h, "signature-input", si);
    ac_test_header_set(&h, "signature", sg);

    json_t *in = verify_input(key, s, s->method, &h, s->body ? BODY : NULL, thumb);
    int st = -1;
    json_t *out = ac_npm_json("verify-request.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    if (st != 0 || !json_is_true(json_object_get(out, "verified"))) {
        char *dump = json_dumps(out, JSON_INDENT(2));
        fail_msg("%s (%s): not verified by npm: %s", s->name, alg_name(alg), dump);
    }
    assert_same_base(hs.base, hs.base_len, jstr(out, "signature_base"));
    assert_string_equal(jstr(out, "digest"), s->body ? "ok" : "no body");
    assert_string_equal(jstr(out, "label"), "sig1");
    json_decref(out);

    /* the npm verifier can say no: another method, and (with a body) another body */
    in = verify_input(key, s, "PUT", &h, s->body ? BODY : NULL, thumb);
    out = ac_npm_json("verify-request.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    assert_int_equal(st, 1);
    assert_true(json_is_false(json_object_get(out, "verified")));
    json_decref(out);
    if (s->body) {
        in = verify_input(key, s, s->method, &h, "{}", thumb);
        out = ac_npm_json("verify-request.mjs", in, &st);
        json_decref(in);
        assert_non_null(out);
        assert_int_equal(st, 1);
        assert_string_equal(jstr(out, "digest"), "mismatch");
        json_decref(out);
    }
    ac_httpsig_free(&hs);
    EVP_PKEY_free(key);
}

static void we_sign_ed25519(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSHAPES; i++)
        we_sign(AC_SIG_ED25519, &shapes[i]);
}

static void we_sign_es256(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSHAPES; i++)
        we_sign(AC_SIG_ES256, &shapes[i]);
}

/* ==== JWS: jose signs, we verify; we sign, jose verifies =================================== */

static void jws_both_ways(enum ac_sig_alg alg)
{
    EVP_PKEY *key = ac_sig_keygen(alg), *other = ac_sig_keygen(alg);
    assert_non_null(key);
    assert_non_null(other);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(key, kid), 0);
    const char *jose_alg = alg == AC_SIG_ED25519 ? "EdDSA" : "ES256";

    /* jose signs a binding-shaped payload */
    json_t *in =
        json_pack("{s:o, s:{s:s, s:s}, s:{s:s, s:s, s:o, s:{s:s, s:s}, s:I, s:I}}", "jwk",
                  ac_jwk_export_private(key), "header", "kid", kid, "typ", "agentclear-binding+jws",
                  "payload", "user", "u-1", "agent_id", "a-1", "agent_jwk",
                  ac_jwk_export_public(other), "runtime", "software", RUNTIME, "model", "m-1",
                  "iat", (json_int_t)1700000000, "exp", (json_int_t)1800000000);
    assert_non_null(in);
    int st = -1;
    json_t *out = ac_npm_json("sign-jws.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    assert_int_equal(st, 0);
    const char *compact = jstr(out, "jws");
    struct ac_jws jws;
    assert_int_equal(ac_jws_parse(compact, strlen(compact), &jws, NULL), AC_EC_OK);
    assert_int_equal(jws.alg, alg);
    assert_string_equal(jws.kid, kid);
    assert_string_equal(jws.typ, "agentclear-binding+jws");
    assert_non_null(jws.payload_json);
    assert_string_equal(json_string_value(json_object_get(jws.payload_json, "agent_id")), "a-1");
    EVP_PKEY *pub = public_of(key);
    assert_int_equal(ac_jws_verify(&jws, pub), AC_EC_OK);
    assert_int_equal(ac_jws_verify(&jws, other), AC_EC_JWS_BAD_SIGNATURE);
    ac_jws_clear(&jws);
    json_decref(out);

    /* we sign, jose verifies */
    static const char payload[] = "{\"binding\":\"b-1\",\"revoked_at\":1700000100}";
    char *ours = ac_jws_sign(key, kid, "agentclear-revocation+jws", (const uint8_t *)payload,
                             strlen(payload));
    assert_non_null(ours);
    in = json_pack("{s:o, s:s}", "jwk", ac_jwk_export_public(key), "jws", ours);
    out = ac_npm_json("verify-jws.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    assert_int_equal(st, 0);
    assert_true(json_is_true(json_object_get(out, "verified")));
    json_t *ph = json_object_get(out, "protected_header");
    assert_string_equal(jstr(ph, "alg"), jose_alg);
    assert_string_equal(jstr(ph, "kid"), kid);
    assert_string_equal(jstr(ph, "typ"), "agentclear-revocation+jws");
    assert_string_equal(jstr(out, "payload_text"), payload);
    json_decref(out);
    /* jose refuses it under another key */
    in = json_pack("{s:o, s:s}", "jwk", ac_jwk_export_public(other), "jws", ours);
    out = ac_npm_json("verify-jws.mjs", in, &st);
    json_decref(in);
    assert_non_null(out);
    assert_int_equal(st, 1);
    assert_true(json_is_false(json_object_get(out, "verified")));
    json_decref(out);
    free(ours);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void jws_eddsa(void **state)
{
    (void)state;
    jws_both_ways(AC_SIG_ED25519);
}

static void jws_es256(void **state)
{
    (void)state;
    jws_both_ways(AC_SIG_ES256);
}

/* ==== CBOR: npm cbor agrees with ac_dcbor_encode =========================================== */

static json_t *cbor_roundtrip(const char *hex, int *st)
{
    json_t *in = json_pack("{s:s}", "hex", hex);
    json_t *out = ac_npm_json("cbor-roundtrip.mjs", in, st);
    json_decref(in);
    return out;
}

static void cbor_canonical(void **state)
{
    (void)state;
    /* keys inserted out of order, integers of every width, bytes, nested map and array */
    cbor_item_t *inner = ac_dcbor_map(2);
    assert_int_equal(ac_dcbor_map_putz(inner, "z", ac_dcbor_bool(true)), 0);
    assert_int_equal(ac_dcbor_map_putz(inner, "aa", ac_dcbor_null()), 0);
    cbor_item_t *ints = ac_dcbor_array(6);
    const int64_t vals[] = {0, -1, 24, -1000, 70000, INT64_MIN};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(ac_dcbor_array_push(ints, ac_dcbor_int(vals[i])), 0);
    cbor_item_t *m = ac_dcbor_map(5);
    static const uint8_t raw[] = {0x01, 0x02, 0xff};
    assert_int_equal(ac_dcbor_map_putz(m, "zeta", ac_dcbor_uint(UINT64_MAX)), 0);
    assert_int_equal(ac_dcbor_map_putz(m, "b", inner), 0);
    assert_int_equal(ac_dcbor_map_putz(m, "ints", ints), 0);
    assert_int_equal(ac_dcbor_map_putz(m, "bytes", ac_dcbor_bytes(raw, sizeof raw)), 0);
    assert_int_equal(ac_dcbor_map_put(m, ac_dcbor_uint(7), ac_dcbor_textz("seven")), 0);
    uint8_t *enc = NULL;
    size_t len = 0;
    assert_int_equal(ac_dcbor_encode(m, &enc, &len), AC_DCBOR_OK);
    cbor_decref(&m);
    char *hex = malloc(2 * len + 1);
    assert_non_null(hex);
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", enc[i]);
    int st = -1;
    json_t *out = cbor_roundtrip(hex, &st);
    assert_non_null(out);
    assert_int_equal(st, 0);
    if (!json_is_true(json_object_get(out, "canonical")))
        fail_msg("npm cbor re-encodes %s as %s", hex, jstr(out, "canonical_hex"));
    assert_string_equal(jstr(out, "canonical_hex"), hex);
    json_decref(out);
    free(hex);
    free(enc);

    /* non-canonical inputs: npm cbor says so, and so does ac_dcbor_check */
    static const struct {
        const char *hex, *canonical;
        enum ac_dcbor_status ours;
    } nc[] = {
        {"a2616202616101", "a2616101616202", AC_DCBOR_EUNSORTED},
        {"1a000003e8", "1903e8", AC_DCBOR_ENONMINIMAL},
        {"bf616101ff", "a1616101", AC_DCBOR_EINDEFINITE},
    };
    for (size_t i = 0; i < sizeof nc / sizeof nc[0]; i++) {
        out = cbor_roundtrip(nc[i].hex, &st);
        assert_non_null(out);
        assert_int_equal(st, 0);
        assert_true(json_is_false(json_object_get(out, "canonical")));
        assert_string_equal(jstr(out, "canonical_hex"), nc[i].canonical);
        json_decref(out);
        uint8_t b[16];
        long n = ac_test_unhex(nc[i].hex, b, sizeof b);
        assert_true(n > 0);
        assert_int_equal(ac_dcbor_check(b, (size_t)n, NULL, 0), nc[i].ours);
        n = ac_test_unhex(nc[i].canonical, b, sizeof b);
        assert_int_equal(ac_dcbor_check(b, (size_t)n, NULL, 0), AC_DCBOR_OK);
    }
    /* two items are not one */
    out = cbor_roundtrip("0102", &st);
    assert_null(out);
    assert_int_equal(st, 2);
}

int main(void)
{
    ac_npm_dir(); /* skip (77) or fail before any test when the clients are not installed */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npm_signs_ed25519),
        cmocka_unit_test(npm_signs_es256),
        cmocka_unit_test(npm_signs_sha512_digest),
        cmocka_unit_test(we_sign_ed25519),
        cmocka_unit_test(we_sign_es256),
        cmocka_unit_test(jws_eddsa),
        cmocka_unit_test(jws_es256),
        cmocka_unit_test(cbor_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
