/* The Idempotency-Key layer (see idem.h). */
#include "server/idem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "keys/registry.h"
#include "ledger/idempotency.h"
#include "protocol/sha256.h"
#include "server/app.h"
#include "server/authn.h"

#define IDEM_HEADER "Idempotency-Key"

/* ---- the in-flight table: a fixed array of buckets, chained entries, at most cap ------------- */

struct slot {
    uint8_t id[32]; /* SHA-256 of caller NUL method NUL path NUL key */
    struct slot *next;
};

struct ac_idem_table {
    pthread_mutex_t mu;
    size_t cap, n, nbuckets;
    struct slot **buckets;
};

struct ac_idem_table *ac_idem_table_new(size_t cap)
{
    struct ac_idem_table *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->cap = cap ? cap : 1;
    t->nbuckets = 64;
    while (t->nbuckets < t->cap && t->nbuckets < ((size_t)1 << 20))
        t->nbuckets <<= 1;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (t->buckets == NULL) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void ac_idem_table_free(struct ac_idem_table *t)
{
    if (t == NULL) return;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct slot *s = t->buckets[i], *next; s; s = next) {
            next = s->next;
            free(s);
        }
    pthread_mutex_destroy(&t->mu);
    free(t->buckets);
    free(t);
}

static size_t bucket_of(const struct ac_idem_table *t, const uint8_t id[32])
{
    size_t h;
    memcpy(&h, id, sizeof h); /* a SHA-256 prefix is uniform enough */
    return h & (t->nbuckets - 1);
}

/* Claim id: AC_EC_OK, AC_EC_IDEMPOTENCY_IN_FLIGHT (held by another request), AC_EC_OVERLOADED
 * (the table is full) or AC_EC_INTERNAL (out of memory). */
static enum ac_ec claim(struct ac_idem_table *t, const uint8_t id[32])
{
    size_t b = bucket_of(t, id);
    enum ac_ec ec = AC_EC_OK;
    pthread_mutex_lock(&t->mu);
    for (struct slot *s = t->buckets[b]; s; s = s->next)
        if (memcmp(s->id, id, 32) == 0) ec = AC_EC_IDEMPOTENCY_IN_FLIGHT;
    if (ec == AC_EC_OK && t->n >= t->cap) ec = AC_EC_OVERLOADED;
    if (ec == AC_EC_OK) {
        struct slot *s = malloc(sizeof *s);
        if (s == NULL) {
            ec = AC_EC_INTERNAL;
        } else {
            memcpy(s->id, id, 32);
            s->next = t->buckets[b];
            t->buckets[b] = s;
            t->n++;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return ec;
}

static void release(struct ac_idem_table *t, const uint8_t id[32])
{
    size_t b = bucket_of(t, id);
    pthread_mutex_lock(&t->mu);
    for (struct slot **p = &t->buckets[b]; *p; p = &(*p)->next)
        if (memcmp((*p)->id, id, 32) == 0) {
            struct slot *s = *p;
            *p = s->next;
            free(s);
            t->n--;
            break;
        }
    pthread_mutex_unlock(&t->mu);
}

/* ---- per request -------------------------------------------------------------------------- */

struct ac_idem {
    struct ac_idem_table *t;
    uint8_t id[32];
    int held;   /* id is claimed in t */
    int active; /* the handler runs under the key */
    int by_seq; /* the handler submitted a command (its answer is the sequencer's decision) */
    char caller[AC_IDEM_CALLER_MAX + 1];
    char key[AC_IDEM_KEY_MAX + 1];
    uint8_t fp[32];
    /* the answer captured by the seal */
    int capturing, captured, sealed, ready;
    unsigned status;
    char ctype[64];
    char *body;
    size_t len;
};

static void drop_capture(struct ac_idem *m)
{
    free(m->body);
    m->body = NULL;
    m->len = 0;
    m->captured = m->sealed = m->ready = 0;
}

/* 1 when v is 1..255 characters of 0x21..0x7e. */
static int key_ok(const char *v)
{
    size_t n = 0;
    for (; v[n]; n++)
        if ((unsigned char)v[n] < 0x21 || (unsigned char)v[n] > 0x7e || n >= AC_IDEM_KEY_MAX)
            return 0;
    return n > 0;
}

struct hdr_count {
    unsigned n;
};

static enum MHD_Result count_key(void *cls, enum MHD_ValueKind kind, const char *name,
                                 const char *value)
{
    (void)kind;
    (void)value;
    struct hdr_count *c = cls;
    if (strcasecmp(name, IDEM_HEADER) == 0) c->n++;
    return MHD_YES;
}

/* The caller scope of the key (see idem.h). */
static void caller_of(const struct ac_req *r, char *out, size_t cap)
{
    const struct ac_verified *v = r->verified;
    if (r->route->auth == AC_AUTH_OPERATOR)
        snprintf(out, cap, "operator");
    else if (v && v->kind == AC_PRINCIPAL_AGENT)
        /* an agent id is the binding's subject, chosen by its user and unique only per user: the
         * scope names both ('/' is not an id character, so the pair reads back unambiguously) */
        snprintf(out, cap, "agent:%s/%s", v->user_id, v->agent_id);
    else if (v && v->kind == AC_PRINCIPAL_MERCHANT)
        snprintf(out, cap, "merchant:%s", v->merchant_id);
    else
        snprintf(out, cap, "anonymous");
}

#define IDEM_PARTS_MAX 4

/* SHA-256 of the parts, each followed by a NUL */
static void sha256_parts(const char *const *parts, const size_t *lens, size_t n, uint8_t out[32])
{
    struct ac_sha256_part v[2 * IDEM_PARTS_MAX];
    if (n > IDEM_PARTS_MAX) abort(); /* the callers' fixed lists */
    for (size_t i = 0; i < n; i++) {
        v[2 * i] = (struct ac_sha256_part){parts[i], lens[i]};
        v[2 * i + 1] = (struct ac_sha256_part){"", 1}; /* each part ends with a NUL */
    }
    ac_sha256v(v, 2 * n, out);
}

int ac_idem_begin(struct ac_req *r, enum MHD_Result *rc)
{
    if (r->route == NULL || !(r->route->flags & AC_ROUTE_IDEMPOTENT)) return 1;
    struct hdr_count hc = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_key, &hc);
    if (hc.n == 0) return 1;
    const char *key = ac_req_header(r, IDEM_HEADER);
    if (hc.n > 1 || key == NULL || !key_ok(key)) {
        *rc = ac_reply_problem(r, AC_EC_IDEMPOTENCY_KEY_INVALID,
                               hc.n > 1 ? "one Idempotency-Key header at most" : NULL,
                               json_pack("{s:s}", "header", IDEM_HEADER));
        return 0;
    }
    if (r->app->idem == NULL) {
        *rc = ac_reply_problem(r, AC_EC_OVERLOADED, "idempotency keys are not available", NULL);
        return 0;
    }
    struct ac_idem *m = calloc(1, sizeof *m);
    if (m == NULL) {
        *rc = ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        return 0;
    }
    r->idem = m;
    m->t = r->app->idem;
    caller_of(r, m->caller, sizeof m->caller);
    snprintf(m->key, sizeof m->key, "%s", key);
    const char *scope[] = {m->caller, r->method, r->path, m->key};
    size_t slens[] = {strlen(m->caller), strlen(r->method), strlen(r->path), strlen(m->key)};
    sha256_parts(scope, slens, 4, m->id);
    const char *req[] = {r->method, r->path, ac_buf_str(&r->body)};
    size_t rlens[] = {strlen(r->method), strlen(r->path), r->body.len};
    sha256_parts(req, rlens, 3, m->fp);
    /* claim first, then look up: a record committed after the lookup was made by a request that
     * held the claim, so a duplicate either waits (409) or finds the record */
    enum ac_ec ec = claim(m->t, m->id);
    if (ec != AC_EC_OK) {
        *rc = ac_reply_problem(r, ec,
                               ec == AC_EC_IDEMPOTENCY_IN_FLIGHT
                                   ? "another request with this key is in progress"
                                   : NULL,
                               NULL);
        return 0;
    }
    m->held = 1;
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) {
        *rc = ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
        return 0;
    }
    struct ac_idem_row row;
    enum ac_qs qs = ac_idem_get(c, m->caller, r->method, r->path, m->key, &row);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) {
        *rc = ac_reply_problem(r, qs == AC_QS_SOFT_ERROR ? AC_EC_DB_UNAVAILABLE : AC_EC_INTERNAL,
                               NULL, NULL);
        return 0;
    }
    if (qs == AC_QS_NO_RESULTS) {
        m->active = 1;
        return 1;
    }
    /* Answered from what is stored, with no batch: a signed request whose nonce only memory
     * checked (server/authn.h) has it recorded first, so that a replay the memory could not know
     * (after a restart) is refused rather than shown the stored answer. */
    enum ac_ec nec = ac_authn_record_nonce(r);
    if (nec != AC_EC_OK)
        *rc = ac_reply_problem(r, nec, NULL, NULL);
    else if (CRYPTO_memcmp(row.fingerprint, m->fp, 32) != 0)
        *rc = ac_reply_problem(r, AC_EC_IDEMPOTENCY_KEY_REUSED,
                               "this key was used with another request body", NULL);
    else
        *rc = ac_reply_recorded(r, row.status, row.content_type, row.location, row.body,
                                row.body_len, 1);
    ac_idem_row_clear(&row);
    return 0;
}

int ac_idem_ready(struct ac_req *r, enum MHD_Result *rc)
{
    struct ac_idem *m = r->idem;
    if (m == NULL || !m->ready) return 0;
    *rc = ac_reply_recorded(r, m->status, m->ctype, NULL, m->body, m->len, 0);
    drop_capture(m);
    return 1;
}

int ac_idem_on_reply(struct ac_req *r, unsigned status, const char *ctype, char **body, size_t len)
{
    struct ac_idem *m = r->idem;
    if (m == NULL || !m->active) return 0;
    if (m->capturing) { /* on the sequencer thread, inside the seal */
        drop_capture(m);
        m->captured = 1;
        m->status = status;
        snprintf(m->ctype, sizeof m->ctype, "%s", ctype);
        char *b = realloc(*body, len + 1); /* the record's body is text: NUL-terminate it */
        if (b == NULL) {
            m->captured = 0; /* nothing recorded; the handler answers again after the batch */
            free(*body);
        } else {
            b[len] = '\0';
            m->body = b;
            m->len = len;
        }
        *body = NULL;
        return 1;
    }
    if (m->by_seq || status < 200 || status > 299) return 0;
    /* a 2xx decided here, without the sequencer: record it before it is sent */
    char *text = malloc(len + 1);
    PGconn *c = text ? ac_pool_get(r->app->pool) : NULL;
    if (c == NULL) {
        free(text);
        return 0;
    }
    memcpy(text, *body, len);
    text[len] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct ac_idem_record rec = {.caller = m->caller,
                                 .method = r->method,
                                 .path = r->path,
                                 .key = m->key,
                                 .status = status,
                                 .content_type = ctype,
                                 .body = text,
                                 .created_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000};
    memcpy(rec.fingerprint, m->fp, 32);
    enum ac_qs qs = ac_idem_insert(c, &rec);
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    if (qs < 0) fprintf(stderr, "idempotency: recording an answer failed\n");
    free(text);
    return 0;
}

/* The seal (sequencer thread, inside the batch's open transaction): render the handler's answer
 * from the command's outcome and add it as the key's record. */
static int seal(struct ac_cmd *c, struct ac_apply *a)
{
    struct ac_req *r = c->cls;
    struct ac_idem *m = r->idem;
    if (m == NULL || !m->active) return 0;
    enum ac_ec status = c->status;
    m->capturing = 1;
    ac_pool_override(ac_apply_conn(a));
    ac_registry_writer_view(1);
    (void)r->route->handler(r);
    ac_registry_writer_view(0);
    ac_pool_override(NULL);
    m->capturing = 0;
    c->status = status;
    if (!m->captured) return 0;
    if (m->status < 200 || m->status > 499 || memchr(m->body, 0, m->len) != NULL) {
        drop_capture(m); /* 5xx: never stored; the handler answers again after the batch */
        return 0;
    }
    struct ac_idem_record rec = {.caller = m->caller,
                                 .method = r->method,
                                 .path = r->path,
                                 .key = m->key,
                                 .status = m->status,
                                 .content_type = m->ctype,
                                 .body = m->body,
                                 .created_us = ac_apply_now(a)};
    memcpy(rec.fingerprint, m->fp, 32);
    if (ac_idem_stmt_insert(a, &rec) != 0) return -1;
    m->sealed = 1;
    return 0;
}

void ac_idem_cmd(struct ac_req *r, struct ac_cmd *cmd)
{
    struct ac_idem *m = r->idem;
    if (m == NULL || !m->active) return;
    m->by_seq = 1;
    drop_capture(m);
    cmd->seal = seal;
}

void ac_idem_done(struct ac_req *r, const struct ac_cmd *cmd)
{
    struct ac_idem *m = r->idem;
    if (m == NULL) return;
    if (cmd->status == AC_EC_OK && m->sealed)
        m->ready = 1;
    else
        drop_capture(m);
}

void ac_idem_answered(struct ac_req *r)
{
    struct ac_idem *m = r->idem;
    if (m == NULL || !m->held) return;
    release(m->t, m->id);
    m->held = 0;
}

void ac_idem_end(struct ac_req *r)
{
    struct ac_idem *m = r->idem;
    if (m == NULL) return;
    ac_idem_answered(r); /* when no answer was queued */
    drop_capture(m);
    free(m);
    r->idem = NULL;
}
