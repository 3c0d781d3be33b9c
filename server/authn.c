/* Verification of RFC 9421 signed requests: the profile check, key resolution, Content-Digest,
 * the signature, the binding's state and runtime, and the replay cache (server/authn.h). */
#include "server/authn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "protocol/b64.h"
#include "protocol/digest.h"
#include "protocol/runtime.h"
#include "ledger/db.h"
#include "server/idem.h"

struct ac_authn {
    int64_t skew, max_age;
    char scheme[8];      /* from public-url, or "" for "http" + Host */
    char authority[256]; /* from public-url, or "" */
    struct ac_nonce_cache *nonces;
    _Atomic int64_t next_purge;     /* unix seconds */
    struct ac_nonce_writer *writer; /* NULL: each replay check asks the database itself */
    struct ac_pool *writer_pool;
};

/* ==== the result ===============================================================================
 */

void ac_verified_free(struct ac_verified *v)
{
    free(v); /* its strings and base live in the same block (result()) */
}

/* Set key to a new value; a NULL value (allocation failure) marks the object bad. */
static void put(json_t *o, const char *key, json_t *val, int *bad)
{
    if (val == NULL || json_object_set_new(o, key, val) != 0) *bad = 1;
}

json_t *ac_verified_json(const struct ac_verified *v)
{
    json_t *o = json_object();
    if (o == NULL) return NULL;
    int bad = 0;
    int agent = v->kind == AC_PRINCIPAL_AGENT;
    put(o, "principal", json_string(agent ? "agent" : "merchant"), &bad);
    put(o, "key_id", json_string(v->keyid), &bad);
    if (agent) {
        put(o, "binding_id", json_string(v->binding_id), &bad);
        put(o, "user_id", json_string(v->user_id), &bad);
        put(o, "agent_id", json_string(v->agent_id), &bad);
        put(o, "max_autonomy", json_integer(v->max_autonomy), &bad);
        put(o, "runtime_digest", ac_json_b64(v->runtime_digest, sizeof v->runtime_digest), &bad);
    } else {
        put(o, "merchant_id", json_string(v->merchant_id), &bad);
    }
    put(o, "alg", json_string(v->alg), &bad);
    put(o, "created", json_integer(v->created), &bad);
    if (v->has_expires) put(o, "expires", json_integer(v->expires), &bad);
    put(o, "nonce", json_string(v->nonce), &bad);
    put(o, "label", json_string(v->label ? v->label : ""), &bad);
    put(o, "signature_input", json_string(v->signature_input ? v->signature_input : ""), &bad);
    put(o, "signature_base", ac_json_b64(v->base, v->base_len), &bad);
    put(o, "signature", ac_json_b64(v->sig, v->siglen), &bad);
    put(o, "verified_at", json_integer(v->verified_at), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void text_i(struct ac_buf *b, const char *name, int64_t val)
{
    ac_buf_json_key(b, name);
    ac_buf_add_i64(b, (long long)val);
}

static void text_b64(struct ac_buf *b, const char *name, const uint8_t *p, size_t n)
{
    ac_buf_json_key(b, name);
    char stack[1024];
    size_t need = ac_b64_enc_len(n);
    char *s = need <= sizeof stack ? stack : malloc(need);
    if (s == NULL) {
        b->oom = 1;
        return;
    }
    size_t len = ac_b64_encode(p, n, s, 0);
    ac_buf_add(b, "\"", 1);
    ac_buf_add(b, s, len);
    ac_buf_add(b, "\"", 1);
    if (s != stack) free(s);
}

int ac_verified_json_text(const struct ac_verified *v, struct ac_buf *out)
{
    int agent = v->kind == AC_PRINCIPAL_AGENT;
    /* one allocation: room for the members, the strings escaped at worst, base64 of the bytes */
    size_t sil = v->signature_input ? strlen(v->signature_input) : 0;
    size_t est = out->len + 640 + 6 * (sizeof v->keyid + sizeof v->nonce + sil) +
                 ac_b64_enc_len(v->base_len) + ac_b64_enc_len(v->siglen);
    if (!out->oom && out->cap < est) {
        char *p = realloc(out->p, est);
        if (p != NULL) {
            out->p = p;
            out->cap = est;
        }
    }
    ac_buf_adds(out, "{\"principal\":");
    ac_buf_json_str(out, agent ? "agent" : "merchant");
    ac_buf_json_member(out, "key_id", v->keyid);
    if (agent) {
        ac_buf_json_member(out, "binding_id", v->binding_id);
        ac_buf_json_member(out, "user_id", v->user_id);
        ac_buf_json_member(out, "agent_id", v->agent_id);
        text_i(out, "max_autonomy", v->max_autonomy);
        text_b64(out, "runtime_digest", v->runtime_digest, sizeof v->runtime_digest);
    } else {
        ac_buf_json_member(out, "merchant_id", v->merchant_id);
    }
    ac_buf_json_member(out, "alg", v->alg);
    text_i(out, "created", v->created);
    if (v->has_expires) text_i(out, "expires", v->expires);
    ac_buf_json_member(out, "nonce", v->nonce);
    ac_buf_json_member(out, "label", v->label ? v->label : "");
    ac_buf_json_member(out, "signature_input", v->signature_input ? v->signature_input : "");
    text_b64(out, "signature_base", v->base, v->base_len);
    text_b64(out, "signature", v->sig, v->siglen);
    text_i(out, "verified_at", v->verified_at);
    ac_buf_add(out, "}", 1);
    return out->oom ? -1 : 0;
}

/* ==== the verifier ============================================================================ */

struct ac_authn *ac_authn_new(const struct ac_config *cfg)
{
    if (cfg->sig_skew < 1 || cfg->sig_skew > 86400 || cfg->sig_max_age < 0 || cfg->nonce_cache < 1)
        return NULL;
    struct ac_authn *a = calloc(1, sizeof *a);
    if (a == NULL) return NULL;
    a->skew = cfg->sig_skew;
    a->max_age = cfg->sig_max_age;
    if (cfg->public_url[0]) {
        /* validated by the configuration: http[s]://authority[/] */
        const char *sep = strstr(cfg->public_url, "://");
        if (sep == NULL || (size_t)(sep - cfg->public_url) >= sizeof a->scheme) {
            free(a);
            return NULL;
        }
        memcpy(a->scheme, cfg->public_url, (size_t)(sep - cfg->public_url));
        snprintf(a->authority, sizeof a->authority, "%s", sep + 3);
        a->authority[strcspn(a->authority, "/")] = '\0';
    }
    /* a nonce must be remembered while a request carrying it passes the clock check: created
     * within +-skew of now, so for skew + 1 seconds after created (keys/nonce.h forgets an
     * entry when created + window <= now) */
    a->nonces = ac_nonce_cache_new(cfg->nonce_cache, a->skew + 1);
    if (a->nonces == NULL) {
        free(a);
        return NULL;
    }
    atomic_init(&a->next_purge, 0);
    return a;
}

static PGconn *writer_get(void *cls)
{
    return ac_pool_get(cls);
}

static void writer_put(void *cls, PGconn *db, int broken)
{
    ac_pool_put(cls, db, broken || !ac_db_ok(db));
}

int ac_authn_start_writer(struct ac_authn *a, struct ac_pool *pool)
{
    if (a->writer != NULL || pool == NULL) return -1;
    a->writer = ac_nonce_writer_new(a->nonces, writer_get, writer_put, pool);
    a->writer_pool = pool;
    return a->writer ? 0 : -1;
}

void ac_authn_close(struct ac_authn *a)
{
    if (a != NULL && a->writer != NULL) ac_nonce_writer_close(a->writer);
}

void ac_authn_free(struct ac_authn *a)
{
    if (a == NULL) return;
    ac_nonce_writer_free(a->writer);
    ac_nonce_cache_free(a->nonces);
    free(a);
}

long ac_authn_purge(struct ac_authn *a, PGconn *db, int64_t now)
{
    int64_t due = atomic_load(&a->next_purge);
    if (now < due ||
        !atomic_compare_exchange_strong(&a->next_purge, &due, now + AC_AUTHN_PURGE_EVERY))
        return 0; /* not due, or another thread does it */
    return ac_nonce_purge(a->nonces, db, now);
}

/* ---- checks -----------------------------------------------------------------------------------
 */

static const char *hdr(const struct ac_http_request *req, const char *lname)
{
    return req->header != NULL ? req->header(req->header_ctx, lname) : NULL;
}

/* Detail for AC_EC_SIG_PARAM_MISSING, in ac_httpsig_check_policy's order. */
static const char *param_detail(const struct ac_httpsig *hs)
{
    if (!hs->has_created) return "the signature has no created parameter";
    if (hs->nonce == NULL || hs->nonce[0] == '\0') return "the signature has no nonce parameter";
    if (hs->keyid == NULL || hs->keyid[0] == '\0') return "the signature has no keyid parameter";
    return "the signature has no expires parameter (this server requires it)";
}

/* Detail for AC_EC_SIG_COMPONENT_MISSING, in ac_httpsig_check_policy's order. */
static const char *component_detail(const struct ac_httpsig *hs)
{
    if (!ac_httpsig_covers(hs, "@method")) return "\"@method\" must be covered";
    if (!ac_httpsig_covers(hs, "@target-uri") &&
        (!ac_httpsig_covers(hs, "@authority") || !ac_httpsig_covers(hs, "@path") ||
         !ac_httpsig_covers(hs, "@query")))
        return "\"@target-uri\" (or \"@authority\", \"@path\" and \"@query\") must be covered";
    return "\"content-digest\" must be covered for a request with a body";
}

/* 1 when s is 1..AC_NONCE_FIELD_MAX bytes of printable ASCII (what keys/nonce.h accepts). */
static int nonce_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= AC_NONCE_FIELD_MAX || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return 0;
    return n > 0;
}

static enum ac_ec binding_state(const struct ac_resolved_key *k, int64_t now, const char **detail)
{
    if (k->revoked) return AC_EC_BINDING_REVOKED;
    if (k->exp != 0 && now >= k->exp) return AC_EC_BINDING_EXPIRED;
    if (now < k->nbf) {
        *detail = "the binding's validity starts later";
        return AC_EC_BINDING_NOT_YET_VALID;
    }
    return AC_EC_OK;
}

/* The verifier's answer for a replay-cache result. */
static enum ac_ec nonce_ec(enum ac_nonce_result res, const char **detail)
{
    switch (res) {
    case AC_NONCE_NEW:
        return AC_EC_OK;
    case AC_NONCE_REPLAYED:
        return AC_EC_SIG_REPLAYED;
    case AC_NONCE_INVALID: /* nonce_ok() and the keyid bound ran before: cannot happen */
        *detail = "nonce must be 1..128 printable ascii characters";
        return AC_EC_SIG_MALFORMED;
    case AC_NONCE_STALE: /* the policy's clock check ran before with the same window */
        return AC_EC_SIG_STALE;
    case AC_NONCE_FULL:
        *detail = "the replay cache is full";
        return AC_EC_OVERLOADED;
    case AC_NONCE_PENDING: /* only from ac_nonce_writer_start(), handled by its caller */
    case AC_NONCE_DB_ERROR:
        break;
    }
    return AC_EC_DB_UNAVAILABLE;
}

/* The replay check, blocking. */
static enum ac_ec replay_check(struct ac_authn *a, const struct ac_authn_call *call,
                               const char *keyid, const char *nonce, int64_t created,
                               const char **detail)
{
    enum ac_nonce_result res;
    if (a->writer != NULL) { /* batched with the other threads' nonces; it purges, too */
        res = ac_nonce_writer_check(a->writer, keyid, nonce, created, call->now);
    } else {
        PGconn *db = NULL;
        if (call->pool != NULL && (db = ac_pool_get(call->pool)) == NULL)
            return AC_EC_DB_UNAVAILABLE;
        res = ac_nonce_seen_or_insert(a->nonces, db, keyid, nonce, created, call->now);
        if (res == AC_NONCE_NEW) (void)ac_authn_purge(a, db, call->now); /* best effort */
        if (db != NULL) ac_pool_put(call->pool, db, res == AC_NONCE_DB_ERROR || !ac_db_ok(db));
    }
    return nonce_ec(res, detail);
}

/* ---- the sequence ------------------------------------------------------------------------------
 */

static struct ac_verified *result(const struct ac_httpsig *hs, const struct ac_resolved_key *k,
                                  int64_t now)
{
    if (hs->siglen > AC_SIG_MAX) return NULL; /* ac_httpsig_verify accepted it: cannot happen */
    /* one block: the result, then label, signature_input and base */
    size_t ll = strlen(hs->label), sil = ll + 1 + hs->params_len;
    struct ac_verified *v = calloc(1, sizeof *v + ll + 1 + sil + 1 + hs->base_len);
    if (v == NULL) return NULL;
    char *tail = (char *)(v + 1);
    v->kind = k->kind;
    snprintf(v->keyid, sizeof v->keyid, "%s", hs->keyid);
    if (k->kind == AC_PRINCIPAL_AGENT) {
        memcpy(v->binding_id, k->binding_id, sizeof v->binding_id);
        memcpy(v->user_id, k->user_id, sizeof v->user_id);
        memcpy(v->agent_id, k->agent_id, sizeof v->agent_id);
        memcpy(v->runtime_digest, k->runtime_digest, sizeof v->runtime_digest);
        v->max_autonomy = k->max_autonomy;
        v->binding_id[AC_ID_MAX] = v->user_id[AC_ID_MAX] = v->agent_id[AC_ID_MAX] = '\0';
    } else {
        memcpy(v->merchant_id, k->merchant_id, sizeof v->merchant_id);
        v->merchant_id[AC_ID_MAX] = '\0';
    }
    snprintf(v->alg, sizeof v->alg, "%s",
             ac_sig_key_alg(k->key) == AC_SIG_ED25519 ? "ed25519" : "ecdsa-p256-sha256");
    v->created = hs->created;
    v->has_expires = hs->has_expires;
    v->expires = hs->expires;
    snprintf(v->nonce, sizeof v->nonce, "%s", hs->nonce);
    v->label = tail;
    memcpy(v->label, hs->label, ll + 1);
    v->signature_input = tail + ll + 1;
    v->base = (uint8_t *)v->signature_input + sil + 1;
    memcpy(v->signature_input, hs->label, ll);
    v->signature_input[ll] = '=';
    memcpy(v->signature_input + ll + 1, hs->params_line, hs->params_len);
    v->signature_input[ll + 1 + hs->params_len] = '\0';
    memcpy(v->base, hs->base, hs->base_len);
    v->base_len = hs->base_len;
    memcpy(v->sig, hs->sig, hs->siglen);
    v->siglen = hs->siglen;
    v->verified_at = now;
    return v;
}

static int kind_allowed(enum ac_auth want, enum ac_principal_kind kind)
{
    switch (want) {
    case AC_AUTH_AGENT:
        return kind == AC_PRINCIPAL_AGENT;
    case AC_AUTH_MERCHANT:
        return kind == AC_PRINCIPAL_MERCHANT;
    case AC_AUTH_SIGNED:
        return kind == AC_PRINCIPAL_AGENT || kind == AC_PRINCIPAL_MERCHANT;
    default:
        return 0;
    }
}

/* Steps 1-7 of the verification (everything but the replay check); on success *out is the
 * result. */
static enum ac_ec verify_signature(struct ac_authn *a, const struct ac_authn_call *call,
                                   const struct ac_http_request *req, const uint8_t *body,
                                   size_t blen, struct ac_verified **out, const char **detail)
{
    *out = NULL;
    *detail = NULL;
    struct ac_httpsig hs;
    struct ac_resolved_key key;
    memset(&key, 0, sizeof key);
    uint8_t runtime[AC_RUNTIME_DIGEST_LEN];
    enum ac_ec ec;

    /* 1. syntax: the one signature tagged "agentclear" */
    ec = ac_httpsig_parse(&hs, hdr(req, "signature-input"), hdr(req, "signature"), "agentclear");
    if (ec == AC_EC_SIG_LABEL_MISMATCH)
        *detail = "no Signature-Input member tagged \"agentclear\", or no Signature member with "
                  "its label";
    if (ec != AC_EC_OK) goto out;

    /* 2. the profile: parameters, covered components, clock (pure, no lookups) */
    struct ac_httpsig_policy pol;
    ac_httpsig_policy_agentclear(&pol);
    static const char *const base_components[] = {"@method", NULL};
    pol.components = base_components; /* agent-runtime: below, once the key's kind is known */
    pol.max_skew = a->skew;
    pol.max_age = a->max_age;
    ec = ac_httpsig_check_policy(&hs, req, &pol, call->now);
    if (ec == AC_EC_SIG_PARAM_MISSING) *detail = param_detail(&hs);
    if (ec == AC_EC_SIG_COMPONENT_MISSING) *detail = component_detail(&hs);
    if (ec != AC_EC_OK) goto out;
    if (!nonce_ok(hs.nonce)) {
        *detail = "nonce must be 1..128 printable ascii characters";
        ec = AC_EC_SIG_MALFORMED;
        goto out;
    }

    /* 3. the key */
    ec = AC_EC_SIG_KEY_UNKNOWN;
    if (call->resolve == NULL || strlen(hs.keyid) > AC_KEYID_MAX) goto out;
    ec = call->resolve(call->resolve_cls, hs.keyid, &key);
    if (ec != AC_EC_OK) {
        if (ac_ec_status(ec) < 500) ec = AC_EC_SIG_KEY_UNKNOWN;
        memset(&key, 0, sizeof key); /* the resolver left no reference on failure */
        goto out;
    }
    if (key.key == NULL || !kind_allowed(call->want, key.kind)) {
        ec = AC_EC_SIG_KEY_UNKNOWN;
        if (key.key != NULL)
            *detail = call->want == AC_AUTH_AGENT ? "this endpoint accepts agent keys only"
                                                  : "this endpoint accepts merchant keys only";
        goto out;
    }

    /* 4. the agent's runtime header: present, covered, well-formed (compared after the
     * signature verified, so only the key holder learns the binding's runtime) */
    if (key.kind == AC_PRINCIPAL_AGENT) {
        const char *rt = hdr(req, "agent-runtime");
        if (rt == NULL) {
            ec = AC_EC_RUNTIME_MISSING;
            goto out;
        }
        if (!ac_httpsig_covers(&hs, "agent-runtime")) {
            *detail = "\"agent-runtime\" must be covered";
            ec = AC_EC_SIG_COMPONENT_MISSING;
            goto out;
        }
        if ((ec = ac_runtime_header_parse(rt, strlen(rt), runtime)) != AC_EC_OK) goto out;
    }

    /* 5. the body against Content-Digest (covered when there is a body: step 2) */
    const char *cd = hdr(req, "content-digest");
    if (cd != NULL || blen > 0) {
        ec = ac_digest_verify(cd, cd ? strlen(cd) : 0, body, blen);
        if (ec != AC_EC_OK) goto out;
    }

    /* 6. the signature */
    if ((ec = ac_httpsig_base(&hs, req)) != AC_EC_OK) goto out;
    if ((ec = ac_httpsig_verify(&hs, key.key)) != AC_EC_OK) goto out;

    /* 7. what the binding says */
    if (key.kind == AC_PRINCIPAL_AGENT) {
        if ((ec = binding_state(&key, call->now, detail)) != AC_EC_OK) goto out;
        if (CRYPTO_memcmp(runtime, key.runtime_digest, sizeof runtime) != 0) {
            ec = AC_EC_RUNTIME_MISMATCH;
            goto out;
        }
    }

    /* the result (the replay check, last, is the caller's) */
    if ((*out = result(&hs, &key, call->now)) == NULL) {
        *detail = "out of memory";
        ec = AC_EC_INTERNAL;
    }
out:
    ac_resolved_key_clear(&key);
    ac_httpsig_free(&hs);
    return ec;
}

enum ac_ec ac_authn_verify(struct ac_authn *a, const struct ac_authn_call *call,
                           const struct ac_http_request *req, const uint8_t *body, size_t blen,
                           struct ac_verified **out, const char **detail)
{
    enum ac_ec ec = verify_signature(a, call, req, body, blen, out, detail);
    if (ec != AC_EC_OK) return ec;
    /* 8. replay, last: only authenticated requests reach the cache */
    ec = replay_check(a, call, (*out)->keyid, (*out)->nonce, (*out)->created, detail);
    if (ec != AC_EC_OK) {
        ac_verified_free(*out);
        *out = NULL;
    }
    return ec;
}

/* ==== the request from MHD
 * ========================================================================= */

#define FIELDS_MAX 128

/* The request's header fields: names matched without regard to case, repeated fields combined in
 * order with ", ". A value points into the daemon's own copy of the request (valid while the
 * request lives) unless it had to change -- trimmed, or combined with a repeated field -- and
 * then into a copy of ours (`own`): the common request costs no allocation. */
struct fields {
    size_t n;
    struct {
        const char *name; /* as received (any case), name_len bytes */
        size_t name_len;
        const char *value; /* NUL-terminated */
        size_t len;
        char *own; /* our copy (value points to it), or NULL */
    } f[FIELDS_MAX];
    int bad; /* 1: a NUL in a value or too many fields; 2: out of memory */
};

/* A copy of v[0..n) + (when more) ", " + more[0..mn), NUL-terminated; NULL when out of memory. */
static char *field_copy(const char *v, size_t n, const char *more, size_t mn)
{
    char *c = malloc(n + (more ? 2 + mn : 0) + 1);
    if (c == NULL) return NULL;
    memcpy(c, v, n);
    if (more) {
        memcpy(c + n, ", ", 2);
        memcpy(c + n + 2, more, mn);
        n += 2 + mn;
    }
    c[n] = '\0';
    return c;
}

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                               const char *value, size_t value_size)
{
    struct fields *fs = cls;
    (void)kind;
    if (value == NULL) value = "";
    if (memchr(value, '\0', value_size) != NULL || memchr(key, '\0', key_size) != NULL) {
        fs->bad = 1;
        return MHD_NO;
    }
    /* each field line trimmed of SP and HTAB (RFC 9421 §2.1) */
    size_t full = value_size;
    while (value_size > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        value_size--;
        full--;
    }
    while (value_size > 0 && (value[value_size - 1] == ' ' || value[value_size - 1] == '\t'))
        value_size--;
    size_t i;
    for (i = 0; i < fs->n; i++)
        if (fs->f[i].name_len == key_size && strncasecmp(fs->f[i].name, key, key_size) == 0) break;
    if (i == fs->n) {
        if (fs->n == FIELDS_MAX) {
            fs->bad = 1;
            return MHD_NO;
        }
        fs->f[i].name = key;
        fs->f[i].name_len = key_size;
        fs->f[i].own = NULL;
        fs->f[i].value = value; /* value[full] is the daemon's NUL */
        if (value_size != full && (fs->f[i].own = field_copy(value, value_size, NULL, 0)) == NULL) {
            fs->bad = 2;
            return MHD_NO;
        }
        if (fs->f[i].own) fs->f[i].value = fs->f[i].own;
        fs->f[i].len = value_size;
        fs->n++;
        return MHD_YES;
    }
    char *v = field_copy(fs->f[i].value, fs->f[i].len, value, value_size);
    if (v == NULL) {
        fs->bad = 2;
        return MHD_NO;
    }
    free(fs->f[i].own);
    fs->f[i].own = v;
    fs->f[i].value = v;
    fs->f[i].len += 2 + value_size;
    return MHD_YES;
}

static const char *field(void *ctx, const char *lname)
{
    struct fields *fs = ctx;
    size_t ln = strlen(lname);
    for (size_t i = 0; i < fs->n; i++)
        if (fs->f[i].name_len == ln && strncasecmp(fs->f[i].name, lname, ln) == 0)
            return fs->f[i].value;
    return NULL;
}

static void fields_free(struct fields *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free(fs->f[i].own);
    fs->n = 0;
}

/* A request suspended while the batch writer decides its nonce. */
struct ac_authn_wait {
    struct ac_nonce_ticket t;
    struct ac_verified *v; /* the result, handed over once the nonce is new */
};

void ac_authn_wait_free(struct ac_authn_wait *w)
{
    if (w == NULL) return;
    ac_verified_free(w->v);
    free(w);
}

static void resume_request(void *cls)
{
    ac_resume(cls);
}

/* The replay check of a verified request through the batch writer, without blocking the worker:
 * the connection is suspended (before the nonce is queued, so that the writer cannot resume it
 * first) and resumed by the writer; ac_authn_request() then finishes here. */
static enum ac_ec replay_async(struct ac_req *r, struct ac_verified *v, int64_t now,
                               const char **detail)
{
    struct ac_authn *a = r->app->authn;
    struct ac_authn_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        ac_verified_free(v);
        *detail = "out of memory";
        return AC_EC_INTERNAL;
    }
    w->v = v;
    r->authn_wait = w;
    ac_suspend(r);
    enum ac_nonce_result res = ac_nonce_writer_start(a->writer, &w->t, v->keyid, v->nonce,
                                                     v->created, now, resume_request, r);
    if (res != AC_NONCE_PENDING) { /* answered at once: the same path as a later answer */
        w->t.res = res;
        w->t.done = 1;
        w->t.done_fn = NULL; /* no ac_nonce_writer_finish: nothing to remember */
        ac_resume(r);
    }
    return AC_EC_OK;
}

/* Resumed: the writer's answer. */
static enum ac_ec replay_finish(struct ac_req *r, const char **detail)
{
    struct ac_authn_wait *w = r->authn_wait;
    r->authn_wait = NULL;
    enum ac_nonce_result res =
        w->t.done_fn != NULL ? ac_nonce_writer_finish(r->app->authn->writer, &w->t) : w->t.res;
    enum ac_ec ec = nonce_ec(res, detail);
    if (ec == AC_EC_OK) {
        r->verified = w->v;
        w->v = NULL;
    }
    ac_authn_wait_free(w);
    return ec;
}

enum ac_ec ac_authn_request(struct ac_req *r, const char **detail)
{
    *detail = NULL;
    struct ac_app *app = r->app;
    if (r->authn_wait != NULL) return replay_finish(r, detail);
    if (app->authn == NULL || r->target == NULL) {
        *detail = "verifier not ready";
        return AC_EC_INTERNAL;
    }
    struct fields fs;
    fs.n = 0;
    fs.bad = 0;
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, collect, &fs);
    if (fs.bad) {
        fields_free(&fs);
        if (fs.bad == 2) return AC_EC_INTERNAL;
        *detail = "too many header fields, or a NUL byte in one";
        return AC_EC_SIG_MALFORMED;
    }
    /* the target as received: path, then the query after the first '?' (a copy on the stack
     * unless it is long) */
    char tbuf[1024];
    size_t tlen = strlen(r->target);
    char *target = tlen < sizeof tbuf ? memcpy(tbuf, r->target, tlen + 1) : strdup(r->target);
    if (target == NULL) {
        fields_free(&fs);
        return AC_EC_INTERNAL;
    }
    char *q = strchr(target, '?');
    if (q != NULL) *q++ = '\0';
    const char *host = field(&fs, "host");
    struct ac_http_request req = {
        .method = r->method,
        .scheme = app->authn->scheme[0] ? app->authn->scheme : "http",
        .authority = app->authn->authority[0] ? app->authn->authority : (host ? host : ""),
        .path = target,
        .query = q,
        .has_body = r->body.len > 0,
        .header = field,
        .header_ctx = &fs,
    };
    struct ac_authn_call call = {
        .resolve = app->resolve,
        .resolve_cls = app->resolve_cls,
        .pool = app->nonce_pool ? app->nonce_pool : app->pool,
        .want = r->route->auth,
        .now = (int64_t)time(NULL),
    };
    struct ac_verified *v = NULL;
    enum ac_ec ec = verify_signature(app->authn, &call, &req, (const uint8_t *)r->body.p,
                                     r->body.len, &v, detail);
    if (target != tbuf) free(target);
    fields_free(&fs);
    if (ec != AC_EC_OK) return ec;
    /* 8. replay, last: only authenticated requests reach the cache */
    if (app->authn->writer != NULL && (r->route->flags & AC_ROUTE_NONCE_WITH_EFFECT)) {
        /* memory now; the database with the effect's batch (ac_authn_request_end) */
        int64_t exp;
        uint64_t epoch;
        ec = nonce_ec(ac_nonce_reserve(app->authn->nonces, v->keyid, v->nonce, v->created, call.now,
                                       &exp, &epoch),
                      detail);
        if (ec != AC_EC_OK) {
            ac_verified_free(v);
            return ec;
        }
        r->verified = v;
        r->nonce_pending = 1;
        r->nonce_exp = exp;
        r->nonce_epoch = epoch;
        return AC_EC_OK;
    }
    if (app->authn->writer != NULL) return replay_async(r, v, call.now, detail);
    ec = replay_check(app->authn, &call, v->keyid, v->nonce, v->created, detail);
    if (ec == AC_EC_OK)
        r->verified = v;
    else
        ac_verified_free(v);
    return ec;
}

/* Record r's pending nonce on a connection of the writer's pool: 1 recorded now, 0 held already,
 * -1 no database. */
static int record_blocking(struct ac_authn *a, struct ac_req *r, int64_t now)
{
    PGconn *db = a->writer_pool ? ac_pool_get(a->writer_pool) : NULL;
    int rc =
        db ? ac_nonce_record(db, r->verified->keyid, r->verified->nonce, r->nonce_exp, now) : -1;
    if (db) ac_pool_put(a->writer_pool, db, rc < 0 || !ac_db_ok(db));
    return rc;
}

enum ac_ec ac_authn_record_nonce(struct ac_req *r)
{
    if (!r->nonce_pending || r->verified == NULL) return AC_EC_OK;
    struct ac_authn *a = r->app->authn;
    if (a == NULL) return AC_EC_DB_UNAVAILABLE;
    int rc = record_blocking(a, r, (int64_t)time(NULL));
    if (rc < 0) return AC_EC_DB_UNAVAILABLE; /* still pending: recorded at the end, if it can be */
    r->nonce_pending = 0;
    return rc == 1 ? AC_EC_OK : AC_EC_SIG_REPLAYED;
}

struct ac_nonce_cache *ac_authn_nonces(struct ac_authn *a)
{
    return a->nonces;
}

void ac_authn_request_end(struct ac_req *r)
{
    if (!r->nonce_pending || r->verified == NULL) return;
    r->nonce_pending = 0;
    struct ac_authn *a = r->app->authn;
    if (a == NULL || a->writer == NULL) return;
    int64_t now = (int64_t)time(NULL);
    if (ac_nonce_writer_record(a->writer, r->verified->keyid, r->verified->nonce, r->nonce_exp,
                               now) == 0)
        return;
    /* The writer is closing (shutdown: the sequencer refused the queued requests with
     * not_leader, and they end after the writer stopped) or out of memory: record it here, on
     * this worker, blocking for one round trip. */
    if (record_blocking(a, r, now) < 0)
        fprintf(stderr, "authn: a refused request's nonce could not be recorded (database "
                        "unavailable); memory refuses it until this process ends\n");
}
