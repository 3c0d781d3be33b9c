/* One changed byte, everywhere, in an agentclear-profile signed request (issue "Conformance":
 * "change one byte of each covered component, each parameter and the body").
 *
 * A valid request is signed with ac_httpsig_sign for each of: Ed25519 and ECDSA P-256, the
 * "@target-uri" and the "@authority" "@path" "@query" forms, POST with a body (and a query) and
 * GET without. Then, one at a time, every byte of every covered part is replaced by another byte
 * of the same kind (letter by letter, digit by digit: the message stays well-formed), and the
 * request goes through the verifier's whole sequence (httpsig.h): parse with tag "agentclear",
 * the agentclear policy, keyid resolution against a one-key registry, signature base, signature,
 * and the body against Content-Digest. Each change must fail with its own code:
 *
 *   covered values (method, scheme under @target-uri, authority, path, query, content-digest,
 *   agent-runtime), the nonce value, the alg parameter's name  -> sig_invalid
 *   created value   -> sig_stale when moved out of the clock window, else sig_invalid
 *   expires value   -> sig_expired when before now or created, else sig_invalid
 *   keyid value     -> sig_key_unknown      tag value / tag name / labels -> sig_label_mismatch
 *   alg value       -> sig_alg_mismatch     created/expires/nonce/keyid names -> sig_param_missing
 *   component names -> sig_component_missing ("xmethod" is a field name the profile does not
 *                      count) or sig_malformed ("@xethod" is no derived component)
 *   signature bytes -> sig_invalid          the body -> digest_mismatch
 *   a byte that breaks the syntax (a quote inside a String, a letter in an Integer, a bad base64
 *   character) -> sig_malformed
 * while a byte changed in an uncovered header (content-type), or in the scheme under the split
 * form (which does not cover it), still verifies: the controls that show each failure comes
 * from the change. test_rfc9421.c covers the parser, base and policy cases one by one. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/b64.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/sig.h"
#include "tests/support/headers.h"

#define NOW 1700000000
#define EXPIRES (NOW + 300)
#define RUNTIME "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
#define BODY "{\"amount\":{\"currency\":\"CNY\",\"value\":\"12.34\"}}"

/* ==== the request ========================================================================== */

struct config {
    const char *name;
    enum ac_sig_alg alg;
    int split; /* "@authority" "@path" "@query" instead of "@target-uri" */
    int body;  /* POST with a body and a query; else GET, no body, no query */
};

static const struct config configs[] = {
    {"ed25519 @target-uri POST", AC_SIG_ED25519, 0, 1},
    {"ed25519 split POST", AC_SIG_ED25519, 1, 1},
    {"ed25519 @target-uri GET", AC_SIG_ED25519, 0, 0},
    {"ed25519 split GET", AC_SIG_ED25519, 1, 0},
    {"es256 @target-uri POST", AC_SIG_ES256, 0, 1},
    {"es256 split POST", AC_SIG_ES256, 1, 1},
    {"es256 @target-uri GET", AC_SIG_ES256, 0, 0},
    {"es256 split GET", AC_SIG_ES256, 1, 0},
};

/* A signed request and the one key the "registry" knows. */
struct fx {
    const struct config *cfg;
    EVP_PKEY *key;
    char keyid[AC_JWK_THUMBPRINT_SIZE];
    struct ac_test_headers h;
    char cd[AC_DIGEST_HEADER_MAX + 1];
    struct ac_http_request req;
    char si[2048], sg[256];
    uint8_t body[sizeof BODY];
    size_t blen;
};

static void fx_init(struct fx *f, const struct config *cfg)
{
    memset(f, 0, sizeof *f);
    f->cfg = cfg;
    f->key = ac_sig_keygen(cfg->alg);
    assert_non_null(f->key);
    assert_int_equal(ac_jwk_thumbprint(f->key, f->keyid), 0);
    ac_test_header_set(&f->h, "agent-runtime", RUNTIME);
    ac_test_header_set(&f->h, "content-type", "application/json");
    f->req = (struct ac_http_request){.method = cfg->body ? "POST" : "GET",
                                      .scheme = "https",
                                      .authority = "pay.agentclear.test:8443",
                                      .path = cfg->body ? "/v1/payments" : "/v1/bindings/b-1",
                                      .query = cfg->body ? "mandate=m-1&note=a%20b" : NULL,
                                      .has_body = cfg->body,
                                      .header = ac_test_header_get,
                                      .header_ctx = &f->h};
    if (cfg->body) {
        f->blen = strlen(BODY);
        memcpy(f->body, BODY, f->blen);
        assert_true(ac_digest_header(AC_DIGEST_SHA256, f->body, f->blen, f->cd, sizeof f->cd) > 0);
        ac_test_header_set(&f->h, "content-digest", f->cd);
    }
    static const char *const uri[] = {"@method", "@target-uri", "content-digest", "agent-runtime",
                                      NULL};
    static const char *const split[] = {"@method",        "@authority",    "@path", "@query",
                                        "content-digest", "agent-runtime", NULL};
    static const char *const uri_nobody[] = {"@method", "@target-uri", "agent-runtime", NULL};
    static const char *const split_nobody[] = {"@method", "@authority",    "@path",
                                               "@query",  "agent-runtime", NULL};
    struct ac_httpsig_sign_opts o = {
        .label = "sig1",
        .components =
            cfg->split ? (cfg->body ? split : split_nobody) : (cfg->body ? uri : uri_nobody),
        .keyid = f->keyid,
        .created = NOW,
        .expires = EXPIRES,
        .nonce = "n-7Rb2xQ9w",
        .tag = "agentclear",
        .with_alg = 1,
    };
    assert_int_equal(ac_httpsig_sign(f->key, &f->req, &o, f->si, sizeof f->si, f->sg, sizeof f->sg),
                     AC_EC_OK);
}

static void fx_free(struct fx *f)
{
    EVP_PKEY_free(f->key);
}

/* The verifier's sequence (protocol/httpsig.h), with a registry of one key. */
static enum ac_ec verify_all(const struct fx *f, const struct ac_http_request *req, const char *si,
                             const char *sg, const uint8_t *body, size_t blen)
{
    struct ac_httpsig_policy pol;
    ac_httpsig_policy_agentclear(&pol);
    struct ac_httpsig hs;
    enum ac_ec ec = ac_httpsig_parse(&hs, si, sg, "agentclear");
    if (ec == AC_EC_OK) ec = ac_httpsig_check_policy(&hs, req, &pol, NOW);
    if (ec == AC_EC_OK && strcmp(hs.keyid, f->keyid) != 0) ec = AC_EC_SIG_KEY_UNKNOWN;
    if (ec == AC_EC_OK) ec = ac_httpsig_base(&hs, req);
    if (ec == AC_EC_OK) ec = ac_httpsig_verify(&hs, f->key);
    if (ec == AC_EC_OK && req->has_body) {
        const char *cd = req->header(req->header_ctx, "content-digest");
        ec = ac_digest_verify(cd, cd ? strlen(cd) : 0, body, blen);
    }
    ac_httpsig_free(&hs);
    return ec;
}

/* ==== mutations ============================================================================ */

/* Another byte of the same kind: a letter for a letter (same case), a digit for a digit (d+5
 * mod 10, so that numbers move both ways); other bytes become a letter. */
static char other_byte(char c)
{
    if (c >= 'a' && c <= 'z') return c == 'x' ? 'y' : 'x';
    if (c >= 'A' && c <= 'Z') return c == 'X' ? 'Y' : 'X';
    if (c >= '0' && c <= '9') return (char)('0' + (c - '0' + 5) % 10); /* up or down */
    return 'x';
}

enum where {
    W_METHOD,
    W_SCHEME,
    W_AUTHORITY,
    W_PATH,
    W_QUERY,
    W_HEADER,      /* arg: a header field's value */
    W_PARAM_VALUE, /* arg: a Signature-Input parameter's value (inside the quotes) */
    W_PARAM_NAME,  /* arg: a Signature-Input parameter's name */
    W_COMPONENT,   /* arg: a covered component's name inside its quotes */
    W_SI_LABEL,    /* the Signature-Input member's key */
    W_SG_LABEL,    /* the Signature member's key */
    W_SIG_BYTES,   /* the raw signature bytes (flipped, re-encoded) */
    W_SIG_TEXT,    /* the base64 text of the signature */
    W_BODY,
};

enum rule {
    R_FIXED,   /* always `expect` */
    R_FIRST,   /* `expect_first` at offset 0, `expect` elsewhere */
    R_CREATED, /* sig_stale outside now +- skew, else sig_invalid */
    R_EXPIRES, /* sig_expired before now (or created), else sig_invalid */
    R_SPLIT,   /* `expect` under "@target-uri", `expect_first` under the split form */
};

enum need { N_ANY, N_BODY, N_QUERY };

struct row {
    const char *what;
    enum where where;
    const char *arg;
    enum rule rule;
    enum ac_ec expect, expect_first;
    enum need need;
    char bad; /* nonzero: write this byte instead of other_byte() (a syntax-breaking change) */
};

static const struct row rows[] = {
    /* covered components: every byte */
    {"@method", W_METHOD, NULL, R_FIXED, AC_EC_SIG_INVALID, 0, N_ANY, 0},
    {"scheme", W_SCHEME, NULL, R_SPLIT, AC_EC_SIG_INVALID, AC_EC_OK, N_ANY, 0},
    {"@authority", W_AUTHORITY, NULL, R_FIXED, AC_EC_SIG_INVALID, 0, N_ANY, 0},
    {"@path", W_PATH, NULL, R_FIXED, AC_EC_SIG_INVALID, 0, N_ANY, 0},
    {"@query", W_QUERY, NULL, R_FIXED, AC_EC_SIG_INVALID, 0, N_QUERY, 0},
    {"content-digest value", W_HEADER, "content-digest", R_FIXED, AC_EC_SIG_INVALID, 0, N_BODY, 0},
    {"agent-runtime value", W_HEADER, "agent-runtime", R_FIXED, AC_EC_SIG_INVALID, 0, N_ANY, 0},
    /* control: a header that is not covered */
    {"content-type (not covered)", W_HEADER, "content-type", R_FIXED, AC_EC_OK, 0, N_ANY, 0},
    /* signature parameters: every byte of the value, every byte of the name */
    {"created value", W_PARAM_VALUE, "created", R_CREATED, 0, 0, N_ANY, 0},
    {"expires value", W_PARAM_VALUE, "expires", R_EXPIRES, 0, 0, N_ANY, 0},
    {"nonce value", W_PARAM_VALUE, "nonce", R_FIXED, AC_EC_SIG_INVALID, 0, N_ANY, 0},
    {"keyid value", W_PARAM_VALUE, "keyid", R_FIXED, AC_EC_SIG_KEY_UNKNOWN, 0, N_ANY, 0},
    {"tag value", W_PARAM_VALUE, "tag", R_FIXED, AC_EC_SIG_LABEL_MISMATCH, 0, N_ANY, 0},
    {"alg value", W_PARAM_VALUE, "alg", R_FIXED, AC_EC_SIG_ALG_MISMATCH, 0, N_ANY, 0},
    {"created name", W_PARAM_NAME, "created", R_FIXED, AC_EC_SIG_PARAM_MISSING, 0, N_ANY, 0},
    {"expires name", W_PARAM_NAME, "expires", R_FIXED, AC_EC_SIG_PARAM_MISSING, 0, N_ANY, 0},
    {"nonce name", W_PARAM_NAME, "nonce", R_FIXED, AC_EC_SIG_PARAM_MISSING, 0, N_ANY, 0},
    {"keyid name", W_PARAM_NAME, "keyid", R_FIXED, AC_EC_SIG_PARAM_MISSING, 0, N_ANY, 0},
    {"tag name", W_PARAM_NAME, "tag", R_FIXED, AC_EC_SIG_LABEL_MISMATCH, 0, N_ANY, 0},
    /* "xlg" is an unknown parameter: no alg check, but the signed parameters differ */
    {"alg name", W_PARAM_NAME, "alg", R_FIXED, AC_EC_SIG_INVALID, 0, N_ANY, 0},
    /* covered component identifiers */
    {"\"@method\"", W_COMPONENT, "@method", R_FIRST, AC_EC_SIG_MALFORMED,
     AC_EC_SIG_COMPONENT_MISSING, N_ANY, 0},
    {"\"@target-uri\"", W_COMPONENT, "@target-uri", R_FIRST, AC_EC_SIG_MALFORMED,
     AC_EC_SIG_COMPONENT_MISSING, N_ANY, 0},
    {"\"@authority\"", W_COMPONENT, "@authority", R_FIRST, AC_EC_SIG_MALFORMED,
     AC_EC_SIG_COMPONENT_MISSING, N_ANY, 0},
    {"\"@path\"", W_COMPONENT, "@path", R_FIRST, AC_EC_SIG_MALFORMED, AC_EC_SIG_COMPONENT_MISSING,
     N_ANY, 0},
    {"\"@query\"", W_COMPONENT, "@query", R_FIRST, AC_EC_SIG_MALFORMED, AC_EC_SIG_COMPONENT_MISSING,
     N_QUERY, 0},
    {"\"content-digest\"", W_COMPONENT, "content-digest", R_FIXED, AC_EC_SIG_COMPONENT_MISSING, 0,
     N_BODY, 0},
    {"\"agent-runtime\"", W_COMPONENT, "agent-runtime", R_FIXED, AC_EC_SIG_COMPONENT_MISSING, 0,
     N_ANY, 0},
    /* labels */
    {"Signature-Input label", W_SI_LABEL, NULL, R_FIXED, AC_EC_SIG_LABEL_MISMATCH, 0, N_ANY, 0},
    {"Signature label", W_SG_LABEL, NULL, R_FIXED, AC_EC_SIG_LABEL_MISMATCH, 0, N_ANY, 0},
    /* the signature and the body */
    {"signature bytes", W_SIG_BYTES, NULL, R_FIXED, AC_EC_SIG_INVALID, 0, N_ANY, 0},
    {"body", W_BODY, NULL, R_FIXED, AC_EC_DIGEST_MISMATCH, 0, N_BODY, 0},
    /* changes that break the syntax */
    {"created, a letter", W_PARAM_VALUE, "created", R_FIXED, AC_EC_SIG_MALFORMED, 0, N_ANY, 'x'},
    {"expires, a letter", W_PARAM_VALUE, "expires", R_FIXED, AC_EC_SIG_MALFORMED, 0, N_ANY, 'x'},
    {"nonce, a quote", W_PARAM_VALUE, "nonce", R_FIXED, AC_EC_SIG_MALFORMED, 0, N_ANY, '"'},
    {"keyid, a quote", W_PARAM_VALUE, "keyid", R_FIXED, AC_EC_SIG_MALFORMED, 0, N_ANY, '"'},
    {"tag, a quote", W_PARAM_VALUE, "tag", R_FIXED, AC_EC_SIG_MALFORMED, 0, N_ANY, '"'},
    {"alg, a quote", W_PARAM_VALUE, "alg", R_FIXED, AC_EC_SIG_MALFORMED, 0, N_ANY, '"'},
    {"signature, a non-base64 byte", W_SIG_TEXT, NULL, R_FIXED, AC_EC_SIG_MALFORMED, 0, N_ANY, '!'},
};

/* Offset and length of a part of a header value, or length 0 when it is not there. */
struct span {
    size_t at, len;
};

static struct span param_value(const char *si, const char *name)
{
    char pat[32];
    snprintf(pat, sizeof pat, ";%s=", name);
    const char *p = strstr(si, pat);
    if (p == NULL) return (struct span){0, 0};
    p += strlen(pat);
    if (*p == '"') {
        p++;
        return (struct span){(size_t)(p - si), strcspn(p, "\"")};
    }
    return (struct span){(size_t)(p - si), strspn(p, "-0123456789")};
}

static struct span param_name(const char *si, const char *name)
{
    char pat[32];
    snprintf(pat, sizeof pat, ";%s=", name);
    const char *p = strstr(si, pat);
    return p ? (struct span){(size_t)(p + 1 - si), strlen(name)} : (struct span){0, 0};
}

static struct span component(const char *si, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", name);
    const char *p = strstr(si, pat);
    /* only inside the Inner List, before the parameters */
    const char *end = strchr(si, ')');
    if (p == NULL || end == NULL || p > end) return (struct span){0, 0};
    return (struct span){(size_t)(p + 1 - si), strlen(name)};
}

static int64_t int_at(const char *s, struct span sp)
{
    char tmp[32];
    assert_true(sp.len < sizeof tmp);
    memcpy(tmp, s + sp.at, sp.len);
    tmp[sp.len] = '\0';
    return strtoll(tmp, NULL, 10);
}

static enum ac_ec expected(const struct row *r, const struct fx *f, size_t at, const char *si)
{
    switch (r->rule) {
    case R_FIXED:
        return r->expect;
    case R_FIRST:
        return at == 0 ? r->expect_first : r->expect;
    case R_SPLIT:
        return f->cfg->split ? r->expect_first : r->expect;
    case R_CREATED: {
        int64_t c = int_at(si, param_value(si, "created"));
        int64_t skew = AC_HTTPSIG_DEFAULT_SKEW;
        if (c < NOW - skew || c > NOW + skew) return AC_EC_SIG_STALE;
        if (EXPIRES < c) return AC_EC_SIG_EXPIRED;
        return AC_EC_SIG_INVALID;
    }
    case R_EXPIRES: {
        int64_t e = int_at(si, param_value(si, "expires"));
        if (e < NOW) return AC_EC_SIG_EXPIRED; /* before now, which is also created */
        return AC_EC_SIG_INVALID;
    }
    }
    return AC_EC_INTERNAL;
}

struct tally {
    size_t tried;
    size_t by_code[AC_EC__COUNT];
};

static void check_one(const struct row *r, struct fx *f, size_t at,
                      const struct ac_http_request *req, const char *si, const char *sg,
                      const uint8_t *body, size_t blen, const char *shown, struct tally *t)
{
    enum ac_ec want = expected(r, f, at, si);
    enum ac_ec got = verify_all(f, req, si, sg, body, blen);
    if (got != want)
        fail_msg("%s: %s, byte %zu (%s): got %s, want %s", f->cfg->name, r->what, at, shown,
                 ac_ec_code(got), ac_ec_code(want));
    t->tried++;
    t->by_code[got]++;
}

/* Every one-byte change of one row; returns how many were tried. */
static size_t run_row(const struct row *r, struct fx *f, struct tally *t)
{
    size_t before = t->tried;
    if (r->need == N_BODY && !f->cfg->body) return 0;
    if (r->need == N_QUERY && f->req.query == NULL) return 0;
    if (r->where == W_COMPONENT && component(f->si, r->arg).len == 0) return 0; /* other form */

    char buf[2048];
    char si[sizeof f->si], sg[sizeof f->sg];
    struct ac_http_request req = f->req;
    const char **slot = NULL; /* request part under change */
    switch (r->where) {
    case W_METHOD:
        slot = &req.method;
        break;
    case W_SCHEME:
        slot = &req.scheme;
        break;
    case W_AUTHORITY:
        slot = &req.authority;
        break;
    case W_PATH:
        slot = &req.path;
        break;
    case W_QUERY:
        slot = &req.query;
        break;
    default:
        break;
    }

    if (slot != NULL) {
        const char *orig = *slot;
        size_t n = strlen(orig);
        assert_true(n > 0 && n < sizeof buf);
        for (size_t at = 0; at < n; at++) {
            memcpy(buf, orig, n + 1);
            buf[at] = r->bad ? r->bad : other_byte(buf[at]);
            *slot = buf;
            check_one(r, f, at, &req, f->si, f->sg, f->body, f->blen, buf, t);
        }
        *slot = orig;
    } else if (r->where == W_HEADER) {
        const char *orig = ac_test_header_get(&f->h, r->arg);
        assert_non_null(orig);
        size_t n = strlen(orig);
        assert_true(n < sizeof buf);
        for (size_t at = 0; at < n; at++) {
            memcpy(buf, orig, n + 1);
            buf[at] = r->bad ? r->bad : other_byte(buf[at]);
            ac_test_header_set(&f->h, r->arg, buf);
            check_one(r, f, at, &req, f->si, f->sg, f->body, f->blen, buf, t);
        }
        ac_test_header_set(&f->h, r->arg, orig);
    } else if (r->where == W_PARAM_VALUE || r->where == W_PARAM_NAME || r->where == W_COMPONENT ||
               r->where == W_SI_LABEL) {
        struct span sp = r->where == W_PARAM_VALUE  ? param_value(f->si, r->arg)
                         : r->where == W_PARAM_NAME ? param_name(f->si, r->arg)
                         : r->where == W_COMPONENT  ? component(f->si, r->arg)
                                                    : (struct span){0, strcspn(f->si, "=")};
        assert_true(sp.len > 0);
        for (size_t i = 0; i < sp.len; i++) {
            memcpy(si, f->si, sizeof si);
            si[sp.at + i] = r->bad ? r->bad : other_byte(si[sp.at + i]);
            check_one(r, f, i, &req, si, f->sg, f->body, f->blen, si, t);
        }
    } else if (r->where == W_SG_LABEL) {
        size_t n = strcspn(f->sg, "=");
        for (size_t at = 0; at < n; at++) {
            memcpy(sg, f->sg, sizeof sg);
            sg[at] = other_byte(sg[at]);
            check_one(r, f, at, &req, f->si, sg, f->body, f->blen, sg, t);
        }
    } else if (r->where == W_SIG_BYTES || r->where == W_SIG_TEXT) {
        const char *b64 = strchr(f->sg, ':') + 1;
        size_t b64len = strcspn(b64, ":");
        uint8_t raw[AC_SIG_MAX + 8];
        size_t rl = 0;
        assert_int_equal(ac_b64_decode(b64, b64len, raw, &rl, 0), 0);
        assert_int_equal(rl, 64);
        size_t n = r->where == W_SIG_BYTES ? rl : b64len;
        for (size_t at = 0; at < n; at++) {
            if (r->where == W_SIG_BYTES) {
                char enc[128];
                raw[at] ^= 0x01;
                ac_b64_encode(raw, rl, enc, 0);
                raw[at] ^= 0x01;
                snprintf(sg, sizeof sg, "sig1=:%s:", enc);
            } else {
                memcpy(sg, f->sg, sizeof sg);
                sg[(size_t)(b64 - f->sg) + at] = r->bad;
            }
            check_one(r, f, at, &req, f->si, sg, f->body, f->blen, sg, t);
        }
    } else if (r->where == W_BODY) {
        uint8_t body[sizeof f->body];
        for (size_t at = 0; at < f->blen; at++) {
            memcpy(body, f->body, f->blen);
            body[at] = (uint8_t)other_byte((char)body[at]);
            check_one(r, f, at, &req, f->si, f->sg, body, f->blen, "(body)", t);
        }
        /* one byte fewer, one byte more */
        check_one(r, f, f->blen, &req, f->si, f->sg, f->body, f->blen - 1, "(truncated)", t);
        memcpy(body, f->body, f->blen);
        body[f->blen] = ' ';
        check_one(r, f, f->blen, &req, f->si, f->sg, body, f->blen + 1, "(extended)", t);
    }
    return t->tried - before;
}

/* ==== tests ================================================================================ */

static void unchanged_verifies(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        struct fx f;
        fx_init(&f, &configs[c]);
        assert_int_equal(verify_all(&f, &f.req, f.si, f.sg, f.body, f.blen), AC_EC_OK);
        fx_free(&f);
    }
}

static void every_byte(void **state)
{
    (void)state;
    size_t row_hits[sizeof rows / sizeof rows[0]] = {0};
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        struct fx f;
        fx_init(&f, &configs[c]);
        struct tally t = {0};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            row_hits[i] += run_row(&rows[i], &f, &t);
        fprintf(stderr, "%s: %zu one-byte changes, %zu verified (uncovered)\n", configs[c].name,
                t.tried, t.by_code[AC_EC_OK]);
        /* the untouched request still verifies after all that */
        assert_int_equal(verify_all(&f, &f.req, f.si, f.sg, f.body, f.blen), AC_EC_OK);
        /* the time rules met both of their outcomes */
        assert_true(t.by_code[AC_EC_SIG_STALE] > 0);
        assert_true(t.by_code[AC_EC_SIG_EXPIRED] > 0);
        fx_free(&f);
    }
    /* every row applied somewhere (no row is vacuous) */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (row_hits[i] == 0) fail_msg("row %s never applied", rows[i].what);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unchanged_verifies),
        cmocka_unit_test(every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
