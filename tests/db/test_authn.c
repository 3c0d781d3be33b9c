/* The signed-request verifier (server/authn.c) over real HTTP: the daemon (ac_daemon_start, real
 * libmicrohttpd, the real route table and /v1/whoami) runs in this process on a fresh PostgreSQL
 * database; requests are signed here with real Ed25519 / P-256 keys and sent over TCP.
 *
 * The one stand-in is the keyid resolver: the identity registry is another module (keys/
 * registry.*), so a small table in this file implements the keys/resolved.h contract over keys
 * generated here. Crypto, HTTP, the replay cache and its table are the real ones.
 *
 * - Valid GET and POST (Ed25519 and P-256 agents, a merchant, @target-uri and the split form)
 *   pass; the result carries the binding, user, runtime, parameters, and the exact signature base
 *   the signer built (compared with a base written out by hand, too), and the signature in the
 *   result re-verifies offline against that base.
 * - Every failure answers its status and code: missing signature, unknown key (and no resolver),
 *   bad signature (one byte of the signature, the method, the query), each required component
 *   not covered, digest missing/mismatch/malformed, created too far ahead / behind, expired (by
 *   expires and by the maximum age), missing parameters, wrong tag, malformed fields, an
 *   over-long nonce, alg not fitting the key, revoked / expired / not-yet-valid bindings (and a
 *   bad signature over a revoked binding still says sig_invalid), runtime missing / mismatch /
 *   malformed.
 * - Replays are refused: on the same verifier, by a second verifier on the same database, and by
 *   a verifier restarted with an empty memory; a request that failed verification does not burn
 *   its nonce (nothing is recorded before the signature verified).
 * - Repeated header fields are combined with ", "; percent-encoded path and query stay verbatim.
 * - PostgreSQL cut (a proxy in front of it): 503 db_unavailable with Retry-After, never a 500;
 *   after the proxy is restored, requests pass again.
 * - ac_authn_verify directly: route kinds (agent-only / merchant-only) refuse the other kind.
 * - `agentclear sign` (the binary): its output, in each format, is accepted; a key file others
 *   may read is refused; no secret reaches its output. */
#include "tests/support/testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "keys/resolved.h"
#include "ledger/db.h"
#include "protocol/b64.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/runtime.h"
#include "protocol/sig.h"
#include "server/authn.h"
#include "server/daemon.h"
#include "tests/support/httpc.h"
#include "tests/support/server.h"

#define SOFTWARE "sha-256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define MODEL "test-model-1"
#define ENVIRONMENT "sha-256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define PUBLIC_URL "https://verifier.test"

static const char *db_url;
static char db_url_copy[1024];

/* ==== the test resolver =========================================================================
 */

#define MAX_KEYS 16

struct tkey {
    EVP_PKEY *priv;             /* what the test signs with */
    struct ac_resolved_key res; /* what the resolver answers; res.key is the public key only */
    int registered;             /* 0: unknown to the resolver */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tkey keys[MAX_KEYS];
static int nkeys;

static enum ac_ec test_resolve(void *cls, const char *keyid, struct ac_resolved_key *out)
{
    (void)cls;
    enum ac_ec ec = AC_EC_SIG_KEY_UNKNOWN;
    pthread_mutex_lock(&reg_mu);
    for (int i = 0; i < nkeys; i++) {
        if (!keys[i].registered || strcmp(keys[i].res.keyid, keyid) != 0) continue;
        *out = keys[i].res;
        EVP_PKEY_up_ref(out->key);
        ec = AC_EC_OK;
        break;
    }
    pthread_mutex_unlock(&reg_mu);
    return ec;
}

static uint8_t runtime1[AC_RUNTIME_DIGEST_LEN];
static char runtime1_hdr[AC_RUNTIME_HEADER_MAX + 1];

/* A key pair; the resolver gets the public half through its JWK, as a registry would. */
static struct tkey *add_key_from(EVP_PKEY *priv, enum ac_principal_kind kind, const char *id,
                                 int registered)
{
    assert_true(nkeys < MAX_KEYS);
    assert_non_null(priv);
    struct tkey *k = &keys[nkeys];
    memset(k, 0, sizeof *k);
    k->priv = priv;
    char *pub = ac_jwk_public_text(priv);
    assert_non_null(pub);
    EVP_PKEY *pk = NULL;
    const char *detail;
    assert_int_equal(ac_jwk_import_public_text(pub, strlen(pub), &pk, &detail), AC_EC_OK);
    free(pub);
    k->res.kind = kind;
    k->res.key = pk;
    assert_int_equal(ac_jwk_thumbprint(priv, k->res.keyid), 0);
    if (kind == AC_PRINCIPAL_AGENT) {
        snprintf(k->res.binding_id, sizeof k->res.binding_id, "bnd-%s", id);
        snprintf(k->res.user_id, sizeof k->res.user_id, "user-%s", id);
        snprintf(k->res.agent_id, sizeof k->res.agent_id, "agent-%s", id);
        memcpy(k->res.runtime_digest, runtime1, sizeof runtime1);
        k->res.max_autonomy = 3;
        k->res.nbf = (int64_t)time(NULL) - 3600;
        k->res.exp = (int64_t)time(NULL) + 86400;
    } else {
        snprintf(k->res.merchant_id, sizeof k->res.merchant_id, "merchant-%s", id);
    }
    k->registered = registered;
    pthread_mutex_lock(&reg_mu);
    nkeys++;
    pthread_mutex_unlock(&reg_mu);
    return k;
}

static struct tkey *add_key(enum ac_sig_alg alg, enum ac_principal_kind kind, const char *id,
                            int registered)
{
    return add_key_from(ac_sig_keygen(alg), kind, id, registered);
}

static struct tkey *k_ed, *k_es, *k_merchant, *k_unknown, *k_revoked, *k_expired, *k_future;

/* ==== in-process verifier instances
 * ================================================================ */

struct inst {
    struct ac_app app;
    struct MHD_Daemon *d;
    unsigned port;
};

static struct inst A; /* the main instance: no public-url, Host decides */

static void inst_start(struct inst *in, const char *url, const char *public_url)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        memset(in, 0, sizeof *in);
        in->port = ac_test_free_port();
        char a_db[1100], a_listen[64], a_pub[300];
        snprintf(a_db, sizeof a_db, "--database-url=%s", url);
        snprintf(a_listen, sizeof a_listen, "--listen=127.0.0.1:%u", in->port);
        snprintf(a_pub, sizeof a_pub, "--public-url=%s", public_url ? public_url : "");
        char *argv[] = {"serve", a_db, a_listen, "--threads=2", "--sig-skew=60", "--sig-max-age=30",
                        a_pub,   NULL};
        char err[256];
        if (ac_config_load(&in->app.cfg, 7, argv, err, sizeof err) != 0) fail_msg("%s", err);
        in->app.pool = ac_pool_new(in->app.cfg.database_url, 4);
        assert_non_null(in->app.pool);
        in->app.resolve = test_resolve;
        in->d = ac_daemon_start(&in->app);
        if (in->d != NULL) return;
        ac_authn_free(in->app.authn);
        ac_pool_free(in->app.pool);
        free(in->app.route_stats);
    }
    fail_msg("cannot start the daemon");
}

static void inst_stop(struct inst *in)
{
    ac_daemon_stop(in->d);
    in->d = NULL;
    ac_authn_free(in->app.authn); /* its batch writer uses the pool */
    ac_pool_free(in->app.pool);
    free(in->app.route_stats);
    memset(in, 0, sizeof *in);
}

/* ==== signing and sending
 * ========================================================================== */

struct spec {
    struct tkey *key;              /* signs */
    const char *keyid;             /* default: key's thumbprint */
    const char *method;            /* default GET */
    const char *target;            /* path?query as sent; default /v1/whoami */
    const char *body;              /* NULL: none */
    const char *const *components; /* NULL: @method @target-uri [agent-runtime] [content-digest] */
    int64_t created;               /* 0: now */
    int64_t expires;               /* 0: created + 60; -1: none */
    const char *nonce;             /* NULL: random */
    const char *tag;               /* NULL: "agentclear"; "" : none */
    const char *runtime;           /* Agent-Runtime value; NULL: runtime1 for agents; "": none */
    const char *digest;    /* Content-Digest value; NULL: computed when there is a body; "": none */
    const char *xcustom;   /* X-Custom value as signed; NULL: none */
    const char *authority; /* default 127.0.0.1:<A.port> */
    const char *scheme;    /* default http */
    const char *label;     /* default sig1 */
    int no_alg;
};

struct signed_req {
    char si[8192], sig[512];
    char runtime[128], digest[256];
    char *base; /* as ac_httpsig_base builds it over the signed request (malloc'd) */
    size_t base_len;
    char nonce[160];
    int64_t created;
};

struct hctx {
    const struct spec *s;
    const struct signed_req *o;
};

static const char *spec_header(void *ctx, const char *lname)
{
    const struct hctx *h = ctx;
    if (strcmp(lname, "agent-runtime") == 0) return h->o->runtime[0] ? h->o->runtime : NULL;
    if (strcmp(lname, "content-digest") == 0) return h->o->digest[0] ? h->o->digest : NULL;
    if (strcmp(lname, "x-custom") == 0) return h->s->xcustom;
    return NULL;
}

static void rand_nonce(char *out)
{
    uint8_t r[16];
    assert_int_equal(RAND_bytes(r, sizeof r), 1);
    ac_b64_encode(r, sizeof r, out, 1);
}

static char authority_a[64];

/* Sign a request described by s into o. */
static void sign_spec(const struct spec *s, struct signed_req *o)
{
    memset(o, 0, sizeof *o);
    const char *target = s->target ? s->target : "/v1/whoami";
    char path[2048];
    snprintf(path, sizeof path, "%s", target);
    char *q = strchr(path, '?');
    if (q) *q++ = '\0';
    if (s->runtime == NULL && s->key->res.kind == AC_PRINCIPAL_AGENT)
        snprintf(o->runtime, sizeof o->runtime, "%s", runtime1_hdr);
    else if (s->runtime)
        snprintf(o->runtime, sizeof o->runtime, "%s", s->runtime);
    size_t blen = s->body ? strlen(s->body) : 0;
    if (s->digest == NULL && s->body)
        assert_true(ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)s->body, blen, o->digest,
                                     sizeof o->digest) > 0);
    else if (s->digest)
        snprintf(o->digest, sizeof o->digest, "%s", s->digest);
    struct hctx hc = {s, o};
    struct ac_http_request req = {
        .method = s->method ? s->method : "GET",
        .scheme = s->scheme ? s->scheme : "http",
        .authority = s->authority ? s->authority : authority_a,
        .path = path,
        .query = q,
        .has_body = blen > 0,
        .header = spec_header,
        .header_ctx = &hc,
    };
    const char *comps[12];
    const char *const *cp = s->components;
    if (cp == NULL) {
        size_t n = 0;
        comps[n++] = "@method";
        comps[n++] = "@target-uri";
        if (o->runtime[0]) comps[n++] = "agent-runtime";
        if (o->digest[0]) comps[n++] = "content-digest";
        comps[n] = NULL;
        cp = comps;
    }
    int64_t now = (int64_t)time(NULL);
    o->created = s->created ? s->created : now;
    if (s->nonce)
        snprintf(o->nonce, sizeof o->nonce, "%s", s->nonce);
    else
        rand_nonce(o->nonce);
    struct ac_httpsig_sign_opts so = {
        .label = s->label ? s->label : "sig1",
        .components = cp,
        .keyid = s->keyid ? s->keyid : s->key->res.keyid,
        .created = o->created,
        .expires = s->expires == -1 ? 0
                   : s->expires     ? s->expires
                                    : o->created + 60,
        .nonce = o->nonce,
        .tag = s->tag == NULL ? "agentclear"
               : s->tag[0]    ? s->tag
                              : NULL,
        .with_alg = !s->no_alg,
    };
    enum ac_ec ec =
        ac_httpsig_sign(s->key->priv, &req, &so, o->si, sizeof o->si, o->sig, sizeof o->sig);
    if (ec != AC_EC_OK) fail_msg("signing failed: %s", ac_ec_code(ec));
    /* the base the signer signed, rebuilt from its own output */
    struct ac_httpsig hs;
    ec = ac_httpsig_parse(&hs, o->si, o->sig, so.tag);
    if (ec == AC_EC_OK) ec = ac_httpsig_base(&hs, &req);
    if (ec != AC_EC_OK) fail_msg("signer output does not parse back: %s", ac_ec_code(ec));
    o->base = malloc(hs.base_len + 1);
    memcpy(o->base, hs.base, hs.base_len + 1);
    o->base_len = hs.base_len;
    ac_httpsig_free(&hs);
}

static void signed_free(struct signed_req *o)
{
    free(o->base);
    o->base = NULL;
}

/* The header lines of o (plus extra, may be NULL) for httpc. */
static void header_lines(const struct signed_req *o, const char *extra, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (o->runtime[0]) n += (size_t)snprintf(out + n, cap - n, "Agent-Runtime: %s\r\n", o->runtime);
    if (o->digest[0]) n += (size_t)snprintf(out + n, cap - n, "Content-Digest: %s\r\n", o->digest);
    n += (size_t)snprintf(out + n, cap - n, "Signature-Input: %s\r\nSignature: %s\r\n%s", o->si,
                          o->sig, extra ? extra : "");
    assert_true(n < cap);
}

static int send_raw(unsigned port, const char *method, const char *target, const char *headers,
                    const char *body, struct ac_test_http_resp *r)
{
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", port, 10000);
    int st = ac_test_http_request(&c, method, target, headers, body, body ? strlen(body) : 0, r);
    ac_test_http_close(&c);
    return st;
}

/* Sign s, send it to port (method, target and body of s; extra header lines appended); returns
 * the status; *resp keeps the answer (caller frees). */
static int send_spec_to(unsigned port, const struct spec *s, const char *send_body,
                        const char *extra, struct signed_req *o, struct ac_test_http_resp *resp)
{
    sign_spec(s, o);
    static char lines[20000];
    header_lines(o, extra, lines, sizeof lines);
    return send_raw(port, s->method ? s->method : "GET", s->target ? s->target : "/v1/whoami",
                    lines, send_body ? send_body : s->body, resp);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Assert a problem+json with status and code. */
static void expect_problem(struct ac_test_http_resp *r, int status, const char *code,
                           const char *what)
{
    if (r->status != status)
        fail_msg("%s: expected %d %s, got %d %s", what, status, code, r->status, r->body);
    char ct[128];
    ac_test_http_header(r, "Content-Type", ct, sizeof ct);
    if (strncmp(ct, "application/problem+json", 24) != 0) fail_msg("%s: content type %s", what, ct);
    json_t *j = ac_test_http_json(r);
    if (j == NULL || strcmp(jstr(j, "code"), code) != 0)
        fail_msg("%s: expected code %s: %s", what, code, r->body);
    json_decref(j);
}

/* Sign and send s to A; expect the problem (status, code). */
static void expect_spec(const struct spec *s, int status, const char *code, const char *what)
{
    struct signed_req o;
    struct ac_test_http_resp r;
    send_spec_to(A.port, s, NULL, NULL, &o, &r);
    expect_problem(&r, status, code, what);
    ac_test_http_resp_free(&r);
    signed_free(&o);
}

/* Sign and send s to A; expect 200 and return the result (caller decrefs). */
static json_t *expect_ok_to(unsigned port, const struct spec *s, struct signed_req *o)
{
    struct ac_test_http_resp r;
    int st = send_spec_to(port, s, NULL, NULL, o, &r);
    if (st != 200) fail_msg("expected 200, got %d: %s\nSignature-Input: %s", st, r.body, o->si);
    json_t *j = ac_test_http_json(&r);
    assert_non_null(j);
    ac_test_http_resp_free(&r);
    return j;
}

static json_t *expect_ok(const struct spec *s, struct signed_req *o)
{
    return expect_ok_to(A.port, s, o);
}

static size_t b64_field(const json_t *j, const char *k, uint8_t *out, size_t cap)
{
    const char *s = jstr(j, k);
    size_t n = strlen(s), len = 0;
    assert_true(n * 3 / 4 + 3 <= cap);
    if (ac_b64_decode(s, n, out, &len, 0) != 0) fail_msg("%s is not base64: %s", k, s);
    return len;
}

/* ==== valid requests
 * ============================================================================== */

static void valid_get(void **st)
{
    (void)st;
    struct spec s = {.key = k_ed};
    struct signed_req o;
    json_t *j = expect_ok(&s, &o);
    assert_string_equal(jstr(j, "principal"), "agent");
    assert_string_equal(jstr(j, "key_id"), k_ed->res.keyid);
    assert_string_equal(jstr(j, "binding_id"), "bnd-ed");
    assert_string_equal(jstr(j, "user_id"), "user-ed");
    assert_string_equal(jstr(j, "agent_id"), "agent-ed");
    assert_int_equal(json_integer_value(json_object_get(j, "max_autonomy")), 3);
    assert_string_equal(jstr(j, "alg"), "ed25519");
    assert_string_equal(jstr(j, "nonce"), o.nonce);
    assert_string_equal(jstr(j, "label"), "sig1");
    assert_int_equal(json_integer_value(json_object_get(j, "created")), o.created);
    assert_int_equal(json_integer_value(json_object_get(j, "expires")), o.created + 60);
    assert_null(json_object_get(j, "merchant_id"));
    /* the signer's Signature-Input is canonical: the member text equals it */
    assert_string_equal(jstr(j, "signature_input"), o.si);
    uint8_t rt[64];
    assert_int_equal(b64_field(j, "runtime_digest", rt, sizeof rt), 32);
    assert_memory_equal(rt, runtime1, 32);
    /* the signature base: byte for byte what the signer signed, and what RFC 9421 says */
    static uint8_t base[70000];
    size_t blen = b64_field(j, "signature_base", base, sizeof base);
    assert_int_equal(blen, o.base_len);
    assert_memory_equal(base, o.base, blen);
    char expect[4096];
    const char *params = strchr(o.si, '=') + 1;
    snprintf(expect, sizeof expect,
             "\"@method\": GET\n\"@target-uri\": http://%s/v1/whoami\n\"agent-runtime\": %s\n"
             "\"@signature-params\": %s",
             authority_a, runtime1_hdr, params);
    assert_int_equal(blen, strlen(expect));
    assert_memory_equal(base, expect, blen);
    /* offline re-verification: the public key, the base and the signature are enough */
    uint8_t sig[128];
    size_t slen = b64_field(j, "signature", sig, sizeof sig);
    assert_int_equal(slen, 64);
    assert_int_equal(ac_sig_verify(k_ed->res.key, AC_SIG_ED25519, base, blen, sig, slen), 1);
    sig[5] ^= 1;
    assert_int_equal(ac_sig_verify(k_ed->res.key, AC_SIG_ED25519, base, blen, sig, slen), 0);
    json_decref(j);
    signed_free(&o);
}

static void valid_post_es256_merchant_split(void **st)
{
    (void)st;
    /* POST with a body: content-digest covered and checked */
    struct spec s = {.key = k_ed, .method = "POST", .body = "{\"amount\":\"12.34\"}"};
    struct signed_req o;
    json_t *j = expect_ok(&s, &o);
    static uint8_t base[70000];
    size_t blen = b64_field(j, "signature_base", base, sizeof base);
    assert_int_equal(blen, o.base_len);
    assert_memory_equal(base, o.base, blen);
    assert_non_null(strstr(o.base, "\"content-digest\": sha-256=:"));
    json_decref(j);
    signed_free(&o);

    /* a P-256 agent */
    struct spec e = {.key = k_es, .method = "POST", .body = "x"};
    j = expect_ok(&e, &o);
    assert_string_equal(jstr(j, "alg"), "ecdsa-p256-sha256");
    assert_string_equal(jstr(j, "binding_id"), "bnd-es");
    uint8_t sig[128];
    assert_int_equal(b64_field(j, "signature", sig, sizeof sig), 64);
    json_decref(j);
    signed_free(&o);

    /* a merchant: no runtime, no binding */
    struct spec m = {.key = k_merchant};
    j = expect_ok(&m, &o);
    assert_string_equal(jstr(j, "principal"), "merchant");
    assert_string_equal(jstr(j, "merchant_id"), "merchant-m");
    assert_null(json_object_get(j, "binding_id"));
    assert_null(json_object_get(j, "runtime_digest"));
    json_decref(j);
    signed_free(&o);

    /* @authority + @path + @query instead of @target-uri; no expires (max age applies) */
    static const char *const split[] = {"@method", "@authority",    "@path",
                                        "@query",  "agent-runtime", NULL};
    struct spec sp = {
        .key = k_ed, .target = "/v1/whoami?x=1&y=two", .components = split, .expires = -1};
    j = expect_ok(&sp, &o);
    assert_null(json_object_get(j, "expires"));
    assert_non_null(strstr(o.base, "\"@query\": ?x=1&y=two\n"));
    json_decref(j);
    signed_free(&o);
}

static void verbatim_target_and_repeated_fields(void **st)
{
    (void)st;
    /* percent-encoding is neither decoded nor normalised */
    struct spec s = {.key = k_ed, .target = "/v1/whoami?a=%41%2f&b=c%20d&e"};
    struct signed_req o;
    json_t *j = expect_ok(&s, &o);
    static uint8_t base[70000];
    size_t blen = b64_field(j, "signature_base", base, sizeof base);
    base[blen] = '\0';
    assert_non_null(strstr((char *)base, "/v1/whoami?a=%41%2f&b=c%20d&e\n"));
    json_decref(j);
    signed_free(&o);
    /* a percent-encoded path is not decoded into a route */
    struct ac_test_http_resp r;
    send_raw(A.port, "GET", "/v1/who%61mi", NULL, NULL, &r);
    expect_problem(&r, 404, "not_found", "encoded path");
    ac_test_http_resp_free(&r);

    /* X-Custom sent as two field lines is signed as "one, two" */
    static const char *const with_custom[] = {"@method", "@target-uri", "agent-runtime", "x-custom",
                                              NULL};
    struct spec c = {.key = k_ed, .components = with_custom, .xcustom = "one, two"};
    int stc = send_spec_to(A.port, &c, NULL, "X-Custom: one\r\nX-Custom: two\r\n", &o, &r);
    if (stc != 200) fail_msg("repeated field lines: %d %s", stc, r.body);
    assert_non_null(strstr(o.base, "\"x-custom\": one, two\n"));
    ac_test_http_resp_free(&r);
    signed_free(&o);
    /* ... and only the first line sent: the base differs */
    send_spec_to(A.port, &c, NULL, "X-Custom: one\r\n", &o, &r);
    expect_problem(&r, 401, "sig_invalid", "one of two lines");
    ac_test_http_resp_free(&r);
    signed_free(&o);

    /* Signature-Input and Signature each split over two lines, another signature first */
    struct spec d = {.key = k_ed};
    sign_spec(&d, &o);
    char lines[20000];
    snprintf(lines, sizeof lines,
             "Agent-Runtime: %s\r\nSignature-Input: other=(\"@method\");created=1\r\n"
             "Signature-Input: %s\r\nSignature: other=:AAAA:\r\nSignature: %s\r\n",
             o.runtime, o.si, o.sig);
    int std = send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    if (std != 200) fail_msg("combined signature fields: %d %s", std, r.body);
    ac_test_http_resp_free(&r);
    signed_free(&o);
}

/* ==== failures
 * ==================================================================================== */

static void missing_unknown_invalid(void **st)
{
    (void)st;
    struct ac_test_http_resp r;
    send_raw(A.port, "GET", "/v1/whoami", NULL, NULL, &r);
    expect_problem(&r, 401, "sig_missing", "no signature");
    ac_test_http_resp_free(&r);
    send_raw(A.port, "GET", "/v1/whoami", "Signature: sig1=:AAAA:\r\n", NULL, &r);
    expect_problem(&r, 401, "sig_missing", "no Signature-Input");

    ac_test_http_resp_free(&r);
    struct spec u = {.key = k_unknown};
    expect_spec(&u, 401, "sig_key_unknown", "unknown key");
    struct spec other_kid = {.key = k_ed, .keyid = "not-a-registered-thumbprint"};
    expect_spec(&other_kid, 401, "sig_key_unknown", "unregistered keyid");

    /* no resolver at all */
    A.app.resolve = NULL;
    struct spec ok = {.key = k_ed};
    expect_spec(&ok, 401, "sig_key_unknown", "no resolver");
    A.app.resolve = test_resolve;

    /* one bit of the signature */
    struct signed_req o;
    sign_spec(&ok, &o);
    char *colon = strchr(o.sig, ':');
    colon[3] = colon[3] == 'A' ? 'B' : 'A';
    char lines[20000];
    header_lines(&o, NULL, lines, sizeof lines);
    send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_invalid", "flipped signature");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    /* the method and the query are covered */
    sign_spec(&ok, &o);
    header_lines(&o, NULL, lines, sizeof lines);
    send_raw(A.port, "POST", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_invalid", "other method");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    struct spec q = {.key = k_ed, .target = "/v1/whoami?x=1"};
    sign_spec(&q, &o);
    header_lines(&o, NULL, lines, sizeof lines);
    send_raw(A.port, "GET", "/v1/whoami?x=2", lines, NULL, &r);
    expect_problem(&r, 401, "sig_invalid", "other query");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    /* the Host the client used is what @target-uri covers */
    struct spec h = {.key = k_ed, .authority = "127.0.0.1:1"};
    expect_spec(&h, 401, "sig_invalid", "other authority");
    struct spec tls = {.key = k_ed, .scheme = "https"};
    expect_spec(&tls, 401, "sig_invalid", "https without public-url");
}

static void components(void **st)
{
    (void)st;
    static const char *const no_method[] = {"@target-uri", "agent-runtime", NULL};
    struct spec a = {.key = k_ed, .components = no_method};
    expect_spec(&a, 401, "sig_component_missing", "no @method");
    static const char *const no_target[] = {"@method", "agent-runtime", NULL};
    struct spec b = {.key = k_ed, .components = no_target};
    expect_spec(&b, 401, "sig_component_missing", "no @target-uri");
    static const char *const no_query[] = {"@method", "@authority", "@path", "agent-runtime", NULL};
    struct spec c = {.key = k_ed, .components = no_query, .target = "/v1/whoami?x=1"};
    expect_spec(&c, 401, "sig_component_missing", "split without @query");
    static const char *const no_runtime[] = {"@method", "@target-uri", NULL};
    struct spec d = {.key = k_ed, .components = no_runtime};
    expect_spec(&d, 401, "sig_component_missing", "agent-runtime sent, not covered");
    struct spec e = {.key = k_ed, .components = no_runtime, .method = "POST", .body = "x"};
    expect_spec(&e, 401, "sig_component_missing", "content-digest sent, not covered");
    /* a covered field that is not sent */
    static const char *const with_custom[] = {"@method", "@target-uri", "agent-runtime", "x-custom",
                                              NULL};
    struct spec f = {.key = k_ed, .components = with_custom, .xcustom = "v"};
    expect_spec(&f, 400, "sig_component_absent", "covered field absent");
}

static void digests(void **st)
{
    (void)st;
    struct spec a = {.key = k_ed, .method = "POST", .body = "{}", .digest = ""};
    expect_spec(&a, 401, "digest_missing", "body without content-digest");
    struct signed_req o;
    struct ac_test_http_resp r;
    struct spec b = {.key = k_ed, .method = "POST", .body = "{\"v\":1}"};
    send_spec_to(A.port, &b, "{\"v\":2}", NULL, &o, &r);
    expect_problem(&r, 401, "digest_mismatch", "body changed");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    struct spec c = {.key = k_ed, .method = "POST", .body = "x", .digest = "sha-256=:AAAA:"};
    expect_spec(&c, 400, "digest_malformed", "short digest");
    struct spec d = {
        .key = k_ed, .method = "POST", .body = "x", .digest = "md5=:AAAAAAAAAAAAAAAAAAAAAA==:"};
    expect_spec(&d, 400, "digest_malformed", "no supported algorithm");
    /* a digest on an empty body is checked too */
    struct spec e = {.key = k_ed,
                     .method = "POST",
                     .digest = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"};
    struct ac_test_http_resp r2;
    int s2 = send_spec_to(A.port, &e, NULL, NULL, &o, &r2);
    if (s2 != 200) fail_msg("digest of the empty body: %d %s", s2, r2.body);
    ac_test_http_resp_free(&r2);
    signed_free(&o);
    struct spec f = {.key = k_ed,
                     .method = "POST",
                     .digest = "sha-256=:ni7JEq9d/ypyMAhjhk/E2gToGZkznZ+sXHWQuoo/ThE=:"};
    expect_spec(&f, 401, "digest_mismatch", "digest of another body on an empty one");
}

static void clock_and_params(void **st)
{
    (void)st;
    int64_t now = (int64_t)time(NULL);
    struct spec a = {.key = k_ed, .created = now + 120, .expires = now + 180};
    expect_spec(&a, 401, "sig_stale", "created in the future");
    struct spec b = {.key = k_ed, .created = now - 120, .expires = now + 10};
    expect_spec(&b, 401, "sig_stale", "created long ago");
    struct spec c = {.key = k_ed, .created = now - 10, .expires = now - 2};
    expect_spec(&c, 401, "sig_expired", "expired");
    struct spec d = {.key = k_ed, .created = now - 45, .expires = -1};
    expect_spec(&d, 401, "sig_expired", "older than sig-max-age without expires");
    struct spec e = {.key = k_ed, .nonce = ""};
    expect_spec(&e, 401, "sig_param_missing", "empty nonce");
    struct spec f = {.key = k_ed, .keyid = ""};
    expect_spec(&f, 401, "sig_param_missing", "empty keyid");
    struct spec g = {.key = k_ed, .tag = "other"};
    expect_spec(&g, 400, "sig_label_mismatch", "other tag");
    struct spec h = {.key = k_ed, .tag = ""};
    expect_spec(&h, 400, "sig_label_mismatch", "no tag");
    char longnonce[201];
    memset(longnonce, 'n', 200);
    longnonce[200] = '\0';
    struct spec i = {.key = k_ed, .nonce = longnonce};
    expect_spec(&i, 400, "sig_malformed", "nonce over 128 bytes");

    /* hand-written malformed fields */
    struct ac_test_http_resp r;
    char lines[20000];
    snprintf(lines, sizeof lines,
             "Agent-Runtime: %s\r\nSignature-Input: sig1=(\r\n"
             "Signature: sig1=:AAAA:\r\n",
             runtime1_hdr);
    send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 400, "sig_malformed", "unterminated inner list");
    ac_test_http_resp_free(&r);
    struct spec ok = {.key = k_ed};
    struct signed_req o;
    sign_spec(&ok, &o);
    snprintf(lines, sizeof lines,
             "Agent-Runtime: %s\r\nSignature-Input: %s\r\n"
             "Signature: sig1=\"not bytes\"\r\n",
             runtime1_hdr, o.si);
    send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 400, "sig_malformed", "signature not a byte sequence");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    /* a huge Signature-Input: refused as malformed, not a crash or a 5xx */
    static char big[40000];
    size_t n = (size_t)snprintf(big, sizeof big, "Signature-Input: sig1=(");
    while (n < 30000)
        n += (size_t)snprintf(big + n, sizeof big - n, "\"x-h%zu\" ", n);
    snprintf(big + n, sizeof big - n,
             ");created=1;tag=\"agentclear\"\r\nSignature: sig1=:AAAA:\r\n");
    send_raw(A.port, "GET", "/v1/whoami", big, NULL, &r);
    if (r.status != 400 && r.status != 431)
        fail_msg("huge Signature-Input: %d %s", r.status, r.body);
    ac_test_http_resp_free(&r);
}

static void alg_mismatch(void **st)
{
    (void)st;
    /* signed by the Ed25519 key with alg="ed25519", keyid naming the P-256 key */
    struct spec a = {.key = k_ed, .keyid = k_es->res.keyid};
    expect_spec(&a, 401, "sig_alg_mismatch", "ed25519 alg on a P-256 key");
    /* and without alg: simply a bad signature */
    struct spec b = {.key = k_ed, .keyid = k_es->res.keyid, .no_alg = 1};
    expect_spec(&b, 401, "sig_invalid", "ed25519 signature for a P-256 key");
    struct spec c = {.key = k_es, .keyid = k_ed->res.keyid};
    expect_spec(&c, 401, "sig_alg_mismatch", "ecdsa alg on an Ed25519 key");
}

static void bindings(void **st)
{
    (void)st;
    struct spec a = {.key = k_revoked};
    expect_spec(&a, 401, "binding_revoked", "revoked");
    struct spec b = {.key = k_expired};
    expect_spec(&b, 401, "binding_expired", "expired binding");
    struct spec c = {.key = k_future};
    expect_spec(&c, 401, "binding_not_yet_valid", "future binding");
    /* the binding's state is told only to the key holder */
    struct signed_req o;
    struct ac_test_http_resp r;
    sign_spec(&a, &o);
    char *colon = strchr(o.sig, ':');
    colon[3] = colon[3] == 'A' ? 'B' : 'A';
    char lines[20000];
    header_lines(&o, NULL, lines, sizeof lines);
    send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_invalid", "bad signature, revoked binding");
    ac_test_http_resp_free(&r);
    signed_free(&o);
}

static void runtimes(void **st)
{
    (void)st;
    static const char *const no_runtime[] = {"@method", "@target-uri", NULL};
    struct spec a = {.key = k_ed, .runtime = "", .components = no_runtime};
    expect_spec(&a, 401, "runtime_missing", "no agent-runtime");
    uint8_t other[32];
    char other_hdr[AC_RUNTIME_HEADER_MAX + 1];
    assert_int_equal(ac_runtime_digest(SOFTWARE, "another-model", ENVIRONMENT, other), AC_EC_OK);
    assert_true(ac_runtime_header(other, other_hdr, sizeof other_hdr) > 0);
    struct spec b = {.key = k_ed, .runtime = other_hdr};
    expect_spec(&b, 401, "runtime_mismatch", "other runtime");
    struct spec c = {.key = k_ed, .runtime = "sha-256=:AAAA:"};
    expect_spec(&c, 400, "runtime_malformed", "short runtime digest");
    struct spec d = {.key = k_ed, .runtime = "sha-256"};
    expect_spec(&d, 400, "runtime_malformed", "not a byte sequence");
    /* a merchant needs none */
    struct spec m = {.key = k_merchant, .runtime = ""};
    struct signed_req o;
    json_decref(expect_ok(&m, &o));
    signed_free(&o);
}

/* ==== replay
 * ======================================================================================= */

static long long nonce_rows(const char *keyid, const char *nonce)
{
    char err[256];
    PGconn *c = ac_db_connect(db_url_copy, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) fail_msg("%s", err);
    const char *vals[] = {keyid, nonce};
    PGresult *r = PQexecParams(c, "select count(*) from ac_nonces where keyid = $1 and nonce = $2",
                               2, NULL, vals, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

static void replay(void **st)
{
    (void)st;
    struct spec s = {.key = k_ed};
    struct signed_req o;
    sign_spec(&s, &o);
    char lines[20000];
    header_lines(&o, NULL, lines, sizeof lines);
    struct ac_test_http_resp r;
    assert_int_equal(send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r), 200);
    ac_test_http_resp_free(&r);
    assert_int_equal(nonce_rows(k_ed->res.keyid, o.nonce), 1);
    send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_replayed", "same request twice");
    ac_test_http_resp_free(&r);
    signed_free(&o);

    /* a request that fails verification does not record its nonce */
    struct spec b = {.key = k_ed, .nonce = "nonce-kept-for-later"};
    sign_spec(&b, &o);
    char *colon = strchr(o.sig, ':');
    colon[3] = colon[3] == 'A' ? 'B' : 'A';
    header_lines(&o, NULL, lines, sizeof lines);
    send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_invalid", "bad signature");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    assert_int_equal(nonce_rows(k_ed->res.keyid, "nonce-kept-for-later"), 0);
    json_decref(expect_ok(&b, &o));
    signed_free(&o);
    expect_spec(&b, 401, "sig_replayed", "the kept nonce, now used");

    /* two verifiers on one database (public-url makes @target-uri independent of the port),
     * then a restart with an empty memory */
    struct inst p1, p2;
    inst_start(&p1, db_url_copy, PUBLIC_URL);
    inst_start(&p2, db_url_copy, PUBLIC_URL);
    struct spec pu = {.key = k_ed, .scheme = "https", .authority = "verifier.test"};
    sign_spec(&pu, &o);
    header_lines(&o, NULL, lines, sizeof lines);
    int s1 = send_raw(p1.port, "GET", "/v1/whoami", lines, NULL, &r);
    if (s1 != 200) fail_msg("public-url: %d %s", s1, r.body);
    json_t *j = ac_test_http_json(&r);
    static uint8_t base[70000];
    size_t blen = b64_field(j, "signature_base", base, sizeof base);
    base[blen] = '\0';
    assert_non_null(strstr((char *)base, "\"@target-uri\": https://verifier.test/v1/whoami\n"));
    json_decref(j);
    ac_test_http_resp_free(&r);
    send_raw(p2.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_replayed", "replay on a second instance");
    ac_test_http_resp_free(&r);
    inst_stop(&p1);
    inst_stop(&p2);
    inst_start(&p1, db_url_copy, PUBLIC_URL);
    send_raw(p1.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_replayed", "replay after a restart");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    /* the restarted verifier accepts fresh requests, and refuses the Host-based form */
    json_decref(expect_ok_to(p1.port, &pu, &o));
    signed_free(&o);
    struct spec host_based = {.key = k_ed, .authority = "127.0.0.1:1"};
    sign_spec(&host_based, &o);
    header_lines(&o, NULL, lines, sizeof lines);
    send_raw(p1.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_invalid", "Host-based target behind public-url");
    ac_test_http_resp_free(&r);
    signed_free(&o);
    inst_stop(&p1);
}

static void db_outage(void **st)
{
    (void)st;
    char purl[1100];
    struct ac_test_proxy *px = ac_test_proxy_start(db_url_copy, purl, sizeof purl);
    assert_non_null(px);
    struct inst c;
    inst_start(&c, purl, NULL);
    char auth[64];
    snprintf(auth, sizeof auth, "127.0.0.1:%u", c.port);
    struct spec s = {.key = k_ed, .authority = auth};
    struct signed_req o;
    json_decref(expect_ok_to(c.port, &s, &o));
    signed_free(&o);
    ac_test_proxy_cut(px);
    for (int i = 0; i < 3; i++) { /* a broken pooled connection, then failed reconnects */
        struct ac_test_http_resp r;
        send_spec_to(c.port, &s, NULL, NULL, &o, &r);
        expect_problem(&r, 503, "db_unavailable", "database cut");
        char ra[16];
        assert_true(ac_test_http_header(&r, "Retry-After", ra, sizeof ra));
        ac_test_http_resp_free(&r);
        signed_free(&o);
    }
    ac_test_proxy_restore(px);
    json_decref(expect_ok_to(c.port, &s, &o));
    signed_free(&o);
    inst_stop(&c);
    ac_test_proxy_stop(px);
}

/* ==== the verifier called directly: route kinds
 * ===================================================== */

static const char *direct_header(void *ctx, const char *lname)
{
    const struct signed_req *o = ctx;
    if (strcmp(lname, "signature-input") == 0) return o->si;
    if (strcmp(lname, "signature") == 0) return o->sig;
    if (strcmp(lname, "agent-runtime") == 0) return o->runtime[0] ? o->runtime : NULL;
    return NULL;
}

static void route_kinds(void **st)
{
    (void)st;
    struct ac_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.sig_skew = 60;
    cfg.sig_max_age = 300;
    cfg.nonce_cache = 64;
    struct ac_authn *a = ac_authn_new(&cfg);
    assert_non_null(a);
    struct {
        struct tkey *k;
        enum ac_auth want;
        enum ac_ec expect;
    } cases[] = {
        {k_ed, AC_AUTH_AGENT, AC_EC_OK},
        {k_ed, AC_AUTH_MERCHANT, AC_EC_SIG_KEY_UNKNOWN},
        {k_ed, AC_AUTH_SIGNED, AC_EC_OK},
        {k_merchant, AC_AUTH_MERCHANT, AC_EC_OK},
        {k_merchant, AC_AUTH_AGENT, AC_EC_SIG_KEY_UNKNOWN},
        {k_merchant, AC_AUTH_SIGNED, AC_EC_OK},
        {k_merchant, AC_AUTH_OPERATOR, AC_EC_SIG_KEY_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct spec s = {.key = cases[i].k, .authority = "example.test"};
        struct signed_req o;
        sign_spec(&s, &o);
        struct ac_http_request req = {.method = "GET",
                                      .scheme = "http",
                                      .authority = "example.test",
                                      .path = "/v1/whoami",
                                      .header = direct_header,
                                      .header_ctx = &o};
        struct ac_authn_call call = {
            .resolve = test_resolve, .want = cases[i].want, .now = (int64_t)time(NULL)};
        struct ac_verified *v = NULL;
        const char *detail;
        enum ac_ec ec = ac_authn_verify(a, &call, &req, NULL, 0, &v, &detail);
        if (ec != cases[i].expect)
            fail_msg("case %zu: expected %s, got %s", i, ac_ec_code(cases[i].expect),
                     ac_ec_code(ec));
        if (ec == AC_EC_OK) {
            assert_non_null(v);
            assert_int_equal(v->base_len, o.base_len);
            assert_memory_equal(v->base, o.base, o.base_len);
            /* memory-only replay cache */
            struct ac_verified *v2 = NULL;
            assert_int_equal(ac_authn_verify(a, &call, &req, NULL, 0, &v2, &detail),
                             AC_EC_SIG_REPLAYED);
            assert_null(v2);
        } else {
            assert_null(v);
        }
        ac_verified_free(v);
        signed_free(&o);
    }
    ac_authn_free(a);
}

/* ==== agentclear sign
 * ==================================================================================== */

/* Run argv with stdout captured into out (NUL-terminated); stderr passes through. Returns the
 * exit code, or -1. */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(p[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* "-H 'Name: value'" lines (no quotes inside values) -> "Name: value\r\n" lines. */
static void curl_to_lines(const char *curl, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = curl;
    while ((p = strstr(p, "-H '")) != NULL) {
        p += 4;
        const char *e = strchr(p, '\'');
        assert_non_null(e);
        n += (size_t)snprintf(out + n, cap - n, "%.*s\r\n", (int)(e - p), p);
        p = e + 1;
    }
    assert_true(n > 0 && n < cap);
}

static void headers_to_lines(const char *text, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) n += (size_t)snprintf(out + n, cap - n, "%.*s\r\n", (int)len, p);
        p += len + (e ? 1 : 0);
    }
    assert_true(n > 0 && n < cap);
}

static void cli_sign(void **st)
{
    (void)st;
    char dir[600], keyfile[700], bodyfile[700];
    snprintf(dir, sizeof dir, "%s", ac_test_tmpdir());
    snprintf(keyfile, sizeof keyfile, "%s/agent.jwk", dir);
    snprintf(bodyfile, sizeof bodyfile, "%s/body.json", dir);
    unlink(keyfile);
    /* a key made by agentclear keygen, registered as an agent binding with runtime1 */
    char *kg[] = {(char *)ac_test_binary(), "keygen", NULL, NULL};
    char outarg[800];
    snprintf(outarg, sizeof outarg, "--out=%s", keyfile);
    kg[2] = outarg;
    static char out[65536];
    assert_int_equal(run_capture(kg, out, sizeof out), 0);
    size_t klen;
    char *ktext = ac_test_read_file(keyfile, &klen);
    assert_non_null(ktext);
    EVP_PKEY *priv = NULL;
    const char *detail;
    assert_int_equal(ac_jwk_import_private_text(ktext, klen, &priv, &detail), AC_EC_OK);
    json_t *kj = json_loads(ktext, 0, NULL);
    char secret[128];
    snprintf(secret, sizeof secret, "%s", jstr(kj, "d"));
    json_decref(kj);
    free(ktext);
    struct tkey *k = add_key_from(priv, AC_PRINCIPAL_AGENT, "cli", 1);

    char url[200], urlq[200];
    snprintf(url, sizeof url, "http://%s/v1/whoami", authority_a);
    snprintf(urlq, sizeof urlq, "http://%s/v1/whoami?page=2&q=%%7Ex", authority_a);
    FILE *bf = fopen(bodyfile, "w");
    assert_non_null(bf);
    fputs("{\"hello\":\"world\"}", bf);
    fclose(bf);
    char *bin = (char *)ac_test_binary();
    /* curl format, GET, runtime from its three fields */
    char *a1[] = {bin,      "sign",    "--key", keyfile,         "--url",     url, "--software",
                  SOFTWARE, "--model", MODEL,   "--environment", ENVIRONMENT, NULL};
    assert_int_equal(run_capture(a1, out, sizeof out), 0);
    assert_null(strstr(out, secret));
    char lines[20000];
    curl_to_lines(out, lines, sizeof lines);
    struct ac_test_http_resp r;
    int s1 = send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    if (s1 != 200) fail_msg("sign (curl): %d %s\n%s", s1, r.body, out);
    json_t *j = ac_test_http_json(&r);
    assert_string_equal(jstr(j, "key_id"), k->res.keyid);
    assert_string_equal(jstr(j, "binding_id"), "bnd-cli");
    json_decref(j);
    ac_test_http_resp_free(&r);
    /* the same headers again: replayed */
    send_raw(A.port, "GET", "/v1/whoami", lines, NULL, &r);
    expect_problem(&r, 401, "sig_replayed", "sign output replayed");
    ac_test_http_resp_free(&r);

    /* headers format, POST with a body file, split components, a query, --runtime */
    char *a2[] = {bin,     "sign",     "--key",   keyfile,     "--method=POST", "--url",
                  urlq,    "--body",   bodyfile,  "--runtime", runtime1_hdr,    "--components",
                  "split", "--format", "headers", NULL};
    assert_int_equal(run_capture(a2, out, sizeof out), 0);
    assert_non_null(strstr(out, "Content-Digest: sha-256=:"));
    headers_to_lines(out, lines, sizeof lines);
    int s2 =
        send_raw(A.port, "POST", "/v1/whoami?page=2&q=%7Ex", lines, "{\"hello\":\"world\"}", &r);
    if (s2 != 200) fail_msg("sign (headers): %d %s\n%s", s2, r.body, out);
    ac_test_http_resp_free(&r);

    /* json format, body from stdin is not used here: the body file again */
    char *a3[] = {bin,        "sign", "--key",        keyfile,  "--method",  "POST",
                  "--url",    url,    "--body",       bodyfile, "--runtime", runtime1_hdr,
                  "--format", "json", "--expires-in", "0",      NULL};
    assert_int_equal(run_capture(a3, out, sizeof out), 0);
    assert_null(strstr(out, secret));
    json_t *sj = json_loads(out, 0, NULL);
    assert_non_null(sj);
    json_t *h = json_object_get(sj, "headers");
    snprintf(lines, sizeof lines,
             "Content-Digest: %s\r\nAgent-Runtime: %s\r\nSignature-Input: %s\r\nSignature: %s\r\n",
             jstr(h, "Content-Digest"), jstr(h, "Agent-Runtime"), jstr(h, "Signature-Input"),
             jstr(h, "Signature"));
    assert_null(json_object_get(sj, "expires"));
    int s3 = send_raw(A.port, "POST", "/v1/whoami", lines, "{\"hello\":\"world\"}", &r);
    if (s3 != 200) fail_msg("sign (json): %d %s\n%s", s3, r.body, out);
    /* the base the CLI printed is the one the server verified */
    j = ac_test_http_json(&r);
    static uint8_t base[70000];
    size_t blen = b64_field(j, "signature_base", base, sizeof base);
    assert_int_equal(blen, strlen(jstr(sj, "signature_base")));
    assert_memory_equal(base, jstr(sj, "signature_base"), blen);
    json_decref(j);
    json_decref(sj);
    ac_test_http_resp_free(&r);

    /* a key file others may read is refused, and nothing is printed */
    assert_int_equal(chmod(keyfile, 0644), 0);
    assert_int_equal(run_capture(a1, out, sizeof out), 1);
    assert_string_equal(out, "");
    /* bad usage */
    char *a4[] = {bin, "sign", "--key", keyfile, NULL};
    assert_int_equal(run_capture(a4, out, sizeof out), 2);
}

/* ==== setup
 * ============================================================================================= */

static int setup(void **st)
{
    (void)st;
    db_url = ac_test_fresh_db("ac_test_authn");
    snprintf(db_url_copy, sizeof db_url_copy, "%s", db_url);
    if (ac_runtime_digest(SOFTWARE, MODEL, ENVIRONMENT, runtime1) != AC_EC_OK) return -1;
    if (ac_runtime_header(runtime1, runtime1_hdr, sizeof runtime1_hdr) < 0) return -1;
    k_ed = add_key(AC_SIG_ED25519, AC_PRINCIPAL_AGENT, "ed", 1);
    k_es = add_key(AC_SIG_ES256, AC_PRINCIPAL_AGENT, "es", 1);
    k_merchant = add_key(AC_SIG_ED25519, AC_PRINCIPAL_MERCHANT, "m", 1);
    k_unknown = add_key(AC_SIG_ED25519, AC_PRINCIPAL_AGENT, "unknown", 0);
    k_revoked = add_key(AC_SIG_ED25519, AC_PRINCIPAL_AGENT, "revoked", 1);
    k_revoked->res.revoked = 1;
    k_expired = add_key(AC_SIG_ES256, AC_PRINCIPAL_AGENT, "expired", 1);
    k_expired->res.exp = (int64_t)time(NULL) - 1;
    k_future = add_key(AC_SIG_ED25519, AC_PRINCIPAL_AGENT, "future", 1);
    k_future->res.nbf = (int64_t)time(NULL) + 3600;
    inst_start(&A, db_url_copy, NULL);
    snprintf(authority_a, sizeof authority_a, "127.0.0.1:%u", A.port);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    inst_stop(&A);
    for (int i = 0; i < nkeys; i++) {
        EVP_PKEY_free(keys[i].priv);
        ac_resolved_key_clear(&keys[i].res);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_get),
        cmocka_unit_test(valid_post_es256_merchant_split),
        cmocka_unit_test(verbatim_target_and_repeated_fields),
        cmocka_unit_test(missing_unknown_invalid),
        cmocka_unit_test(components),
        cmocka_unit_test(digests),
        cmocka_unit_test(clock_and_params),
        cmocka_unit_test(alg_mismatch),
        cmocka_unit_test(bindings),
        cmocka_unit_test(runtimes),
        cmocka_unit_test(replay),
        cmocka_unit_test(db_outage),
        cmocka_unit_test(route_kinds),
        cmocka_unit_test(cli_sign),
    };
    int failures = cmocka_run_group_tests(tests, setup, teardown);
    return ac_test_e2e_finish(failures);
}
