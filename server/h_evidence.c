/* The evidence log over HTTP (docs/evidence.md, "The proof API").
 *
 * GET /v1/evidence/checkpoint              the latest signed checkpoint (text/plain: the C2SP note)
 * GET /v1/evidence/checkpoint/{size}       the checkpoint of that tree size
 * GET /v1/evidence/consistency?from=&to=   RFC 9162 consistency proof (JSON), to <= latest size
 * GET /v1/evidence/{seq}[?size=N]          the record (base64 CBOR + a decoded view), its leaf hash
 *                                          and its inclusion proof to the latest checkpoint (or to
 *                                          the checkpoint of size N)
 * GET /v1/payments/{id}/evidence           the payment's dispute bundle (application/cbor)
 *
 * Everything is read from PostgreSQL through the reader pool, so a standby serves it as well as
 * the leader; proofs come from the leaf cache (ledger/evread.h), which checks the stored leaves
 * against the checkpoint's signed root before proving anything. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys/keyring.h"
#include "ledger/evread.h"
#include "protocol/amount.h"
#include "protocol/b64.h"
#include "protocol/bundle.h"
#include "server/handlers.h"

/* A decimal tree size or seq: digits only, no sign, no leading zeros beyond "0". */
static int parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 19)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno != 0 || v > INT64_MAX) return -1;
    *out = v;
    return 0;
}

static const char *query(struct ac_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void hexs(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static json_t *hash_json(const uint8_t h[AC_EV_HASH_LEN])
{
    char s[2 * AC_EV_HASH_LEN + 1];
    hexs(h, AC_EV_HASH_LEN, s);
    return json_string(s);
}

static json_t *proof_json(const uint8_t (*p)[AC_EV_HASH_LEN], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, hash_json(p[i]));
    return a;
}

static enum MHD_Result db_error(struct ac_req *r, PGconn *c, int qs)
{
    ac_pool_put(r->app->pool, c, qs == AC_QS_SOFT_ERROR);
    return ac_reply_db_error(r, qs);
}

/* Reply for a failed proof. Gives the connection back. */
static enum MHD_Result proof_error(struct ac_req *r, PGconn *c, enum ac_evread_status st)
{
    ac_pool_put(r->app->pool, c, st == AC_EVREAD_DB);
    switch (st) {
    case AC_EVREAD_DB:
        return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    case AC_EVREAD_RANGE:
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID, "sizes out of range", NULL);
    case AC_EVREAD_INCONSISTENT:
        return ac_reply_problem(r, AC_EC_EVIDENCE_INCONSISTENT,
                                "the stored leaves do not give the checkpoint's root", NULL);
    default:
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    }
}

/* ---- checkpoints --------------------------------------------------------------------------------
 */

enum MHD_Result ac_h_evidence_checkpoint(struct ac_req *r)
{
    uint64_t size = 0;
    if (r->nparams == 1 && (parse_u64(r->params[0], &size) != 0 || size == 0))
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID, "size must be a positive integer",
                                NULL);
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_evread_cp cp;
    enum ac_qs qs = ac_evread_checkpoint(c, size, &cp);
    if (qs < 0) return db_error(r, c, qs);
    ac_pool_put(r->app->pool, c, 0);
    if (qs == AC_QS_NO_RESULTS) return ac_reply_problem(r, AC_EC_CHECKPOINT_UNKNOWN, NULL, NULL);
    enum MHD_Result rc =
        ac_reply_text(r, 200, "text/plain; charset=utf-8", cp.note, strlen(cp.note));
    ac_evread_cp_clear(&cp);
    return rc;
}

enum MHD_Result ac_h_evidence_consistency(struct ac_req *r)
{
    uint64_t from, to;
    if (parse_u64(query(r, "from"), &from) != 0 || parse_u64(query(r, "to"), &to) != 0 ||
        from == 0 || from > to)
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID,
                                "from and to must be tree sizes with 0 < from <= to", NULL);
    if (r->app->evread == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "no proof cache", NULL);
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct ac_evread_cp cp;
    enum ac_qs qs = ac_evread_checkpoint(c, 0, &cp);
    if (qs < 0) return db_error(r, c, qs);
    if (qs == AC_QS_NO_RESULTS || to > cp.size) {
        ac_pool_put(r->app->pool, c, 0);
        ac_evread_cp_clear(&cp);
        return ac_reply_problem(r, AC_EC_CHECKPOINT_UNKNOWN,
                                "to is larger than the latest checkpoint's tree size", NULL);
    }
    uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN];
    size_t n = 0;
    enum ac_evread_status st = ac_evread_consistency(r->app->evread, c, &cp, from, to, proof, &n);
    ac_evread_cp_clear(&cp);
    if (st != AC_EVREAD_OK) return proof_error(r, c, st);
    ac_pool_put(r->app->pool, c, 0);
    json_t *j = json_pack("{s:I, s:I, s:o}", "from", (json_int_t)from, "to", (json_int_t)to,
                          "proof", proof_json((const uint8_t(*)[AC_EV_HASH_LEN])proof, n));
    if (j == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, 200, j);
}

/* ---- one record -------------------------------------------------------------------------------
 */

static json_t *docref_json(const struct ac_ev_docref *d)
{
    json_t *j = json_pack("{s:o}", "hash", hash_json(d->hash));
    if (j && d->id) json_object_set_new(j, "id", json_string(d->id));
    if (j && d->kid) json_object_set_new(j, "kid", json_string(d->kid));
    return j;
}

static json_t *amount_json(int64_t v, const char *asset, unsigned scale)
{
    char num[AC_AMOUNT_STR_MAX];
    return json_pack("{s:s, s:s}", "asset", asset, "value", ac_amount_format(v, scale, num));
}

/* The decoded view of a record: the same members as the CBOR, hashes in hex, amounts as decimal
 * strings, the signature base as text and signature and body in base64. */
static json_t *record_view(const struct ac_ev_record *rec)
{
    char ts[40];
    ac_rfc3339(rec->time_us, ts);
    json_t *body = json_object();
    const struct ac_ev_body *b = &rec->body;
    json_t *v =
        json_pack("{s:I, s:s, s:s, s:o, s:o}", "seq", (json_int_t)rec->seq, "time", ts, "kind",
                  ac_ev_kind_name(rec->kind), "prev", hash_json(rec->prev), "body", body);
    if (v == NULL) return NULL;
    const struct {
        const char *name, *val;
    } ids[] = {{"payment", b->payment},   {"user", b->user},  {"agent", b->agent},
               {"payee", b->payee},       {"tab", b->tab},    {"ref", b->ref},
               {"category", b->category}, {"actor", b->actor}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].val) json_object_set_new(body, ids[i].name, json_string(ids[i].val));
    if (b->amount.present)
        json_object_set_new(body, "amount",
                            amount_json(b->amount.value, b->amount.asset, b->amount.scale));
    const struct {
        const char *name;
        const struct ac_ev_docref *d;
    } refs[] = {{"binding", &b->binding},       {"mandate", &b->mandate},
                {"revocation", &b->revocation}, {"confirmation", &b->confirmation},
                {"voucher", &b->voucher},       {"report", &b->report}};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        if (refs[i].d->present) json_object_set_new(body, refs[i].name, docref_json(refs[i].d));
    if (b->request.present) {
        const struct ac_ev_request *q = &b->request;
        json_t *jq = json_pack("{s:s%, s:o, s:s}", "base", (const char *)q->base, q->base_len,
                               "sig", ac_json_b64(q->sig, q->sig_len), "keyid", q->keyid);
        if (jq && q->has_body) json_object_set_new(jq, "body", ac_json_b64(q->body, q->body_len));
        if (jq) json_object_set_new(body, "request", jq);
    }
    if (b->decision != AC_EV_DECISION_NONE)
        json_object_set_new(body, "decision", json_string(ac_ev_decision_name(b->decision)));
    if (b->nreasons) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < b->nreasons; i++)
            json_array_append_new(a, json_string(b->reasons[i]));
        json_object_set_new(body, "reasons", a);
    }
    if (b->ntransfers) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < b->ntransfers; i++) {
            const struct ac_ev_transfer *t = &b->transfers[i];
            char num[AC_AMOUNT_STR_MAX];
            json_t *jt =
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", t->id, "debit", t->debit,
                          "credit", t->credit, "amount", ac_amount_format(t->amount, t->scale, num),
                          "asset", t->asset, "flags", (json_int_t)t->flags);
            if (jt && t->pending_id) json_object_set_new(jt, "pending", json_string(t->pending_id));
            if (jt && t->timeout_s) json_object_set_new(jt, "timeout", json_integer(t->timeout_s));
            if (jt && t->code) json_object_set_new(jt, "code", json_integer(t->code));
            json_array_append_new(a, jt);
        }
        json_object_set_new(body, "transfers", a);
    }
    if (b->naccounts) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < b->naccounts; i++) {
            const struct ac_ev_account *x = &b->accounts[i];
            json_t *ja = json_pack("{s:s, s:s, s:I}", "id", x->id, "asset", x->asset, "flags",
                                   (json_int_t)x->flags);
            if (ja && x->owner) json_object_set_new(ja, "owner", json_string(x->owner));
            json_array_append_new(a, ja);
        }
        json_object_set_new(body, "accounts", a);
    }
    return v;
}

enum MHD_Result ac_h_evidence_get(struct ac_req *r)
{
    uint64_t seq, size = 0;
    if (parse_u64(r->params[0], &seq) != 0)
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID, "seq must be a non-negative integer",
                                NULL);
    const char *qs_size = query(r, "size");
    if (qs_size != NULL && (parse_u64(qs_size, &size) != 0 || size == 0))
        return ac_reply_problem(r, AC_EC_PARAMETER_INVALID, "size must be a positive integer",
                                NULL);
    if (r->app->evread == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "no proof cache", NULL);
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    uint8_t *bytes = NULL, leaf[AC_EV_HASH_LEN];
    size_t len = 0;
    enum ac_qs qs = ac_evread_record(c, seq, &bytes, &len, leaf);
    if (qs < 0) return db_error(r, c, qs);
    if (qs == AC_QS_NO_RESULTS) {
        ac_pool_put(r->app->pool, c, 0);
        return ac_reply_problem(r, AC_EC_EVIDENCE_UNKNOWN, NULL, NULL);
    }
    struct ac_evread_cp cp;
    qs = ac_evread_checkpoint(c, size, &cp);
    if (qs < 0) {
        free(bytes);
        return db_error(r, c, qs);
    }
    if (size != 0 && (qs == AC_QS_NO_RESULTS || seq >= size)) {
        ac_pool_put(r->app->pool, c, 0);
        free(bytes);
        ac_evread_cp_clear(&cp);
        return ac_reply_problem(
            r, qs == AC_QS_NO_RESULTS ? AC_EC_CHECKPOINT_UNKNOWN : AC_EC_PARAMETER_INVALID,
            qs == AC_QS_NO_RESULTS ? NULL : "the record is not in a tree of that size", NULL);
    }
    struct ac_ev_record rec;
    char err[200];
    if (ac_ev_record_decode(bytes, len, &rec, err, sizeof err) != 0) {
        ac_pool_put(r->app->pool, c, 0);
        free(bytes);
        ac_evread_cp_clear(&cp);
        return ac_reply_problem(r, AC_EC_EVIDENCE_INCONSISTENT, err, NULL);
    }
    json_t *j = json_pack("{s:I, s:o, s:o, s:o}", "seq", (json_int_t)seq, "leaf", hash_json(leaf),
                          "record", ac_json_b64(bytes, len), "view", record_view(&rec));
    ac_ev_record_clear(&rec);
    free(bytes);
    if (j && qs == AC_QS_ONE_RESULT && seq < cp.size) {
        uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN];
        size_t n = 0;
        enum ac_evread_status st = ac_evread_inclusion(r->app->evread, c, &cp, seq, proof, &n);
        if (st != AC_EVREAD_OK) {
            json_decref(j);
            ac_evread_cp_clear(&cp);
            return proof_error(r, c, st);
        }
        json_object_set_new(j, "tree_size", json_integer((json_int_t)cp.size));
        json_object_set_new(j, "proof", proof_json((const uint8_t(*)[AC_EV_HASH_LEN])proof, n));
        json_object_set_new(j, "checkpoint", json_string(cp.note));
    }
    ac_pool_put(r->app->pool, c, 0);
    ac_evread_cp_clear(&cp);
    if (j == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, 200, j);
}

/* ---- the dispute bundle ------------------------------------------------------------------------
 */

struct bundle_ctx {
    struct ac_bundle_entry *e;
    uint8_t **rec; /* owned record bytes */
    size_t n, cap;
    struct ac_blob *docs;
    size_t ndocs;
    struct ac_blob *keys;
    size_t nkeys;
    uint8_t (*want)[AC_EV_HASH_LEN]; /* docref hashes */
    size_t nwant;
    int oom;
};

static int add_entry(void *ctx, uint64_t seq, const uint8_t *rec, size_t len)
{
    struct bundle_ctx *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        void *e = realloc(b->e, cap * sizeof *b->e);
        if (e) b->e = e;
        void *r = realloc(b->rec, cap * sizeof *b->rec);
        if (r) b->rec = r;
        if (!e || !r) return -1;
        b->cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (copy == NULL) return -1;
    memcpy(copy, rec, len);
    b->rec[b->n] = copy;
    memset(&b->e[b->n], 0, sizeof b->e[b->n]);
    b->e[b->n].seq = seq;
    b->e[b->n].record.p = copy;
    b->e[b->n].record.len = len;
    b->n++;
    return 0;
}

static int add_blob(struct ac_blob **arr, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if ((*arr)[i].len == len && memcmp((*arr)[i].p, s, len) == 0) return 0;
    void *p = realloc(*arr, (*n + 1) * sizeof **arr);
    if (p == NULL) return -1;
    *arr = p;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) return -1;
    memcpy(copy, s, len);
    (*arr)[*n].p = copy;
    (*arr)[*n].len = len;
    (*n)++;
    return 0;
}

static int add_doc(void *ctx, const char *doc, size_t len)
{
    struct bundle_ctx *b = ctx;
    uint8_t h[AC_EV_HASH_LEN];
    if (ac_ev_doc_hash(doc, len, h) != 0) return -1;
    for (size_t i = 0; i < b->nwant; i++)
        if (memcmp(b->want[i], h, AC_EV_HASH_LEN) == 0)
            return add_blob(&b->docs, &b->ndocs, doc, len);
    return 0; /* a candidate no record references */
}

static int add_key(void *ctx, const char *jwk, size_t len)
{
    struct bundle_ctx *b = ctx;
    return add_blob(&b->keys, &b->nkeys, jwk, len);
}

static void bundle_ctx_free(struct bundle_ctx *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->rec[i]);
        free((void *)b->e[i].proof);
    }
    for (size_t i = 0; i < b->ndocs; i++)
        free((void *)b->docs[i].p);
    for (size_t i = 0; i < b->nkeys; i++)
        free((void *)b->keys[i].p);
    free(b->e);
    free(b->rec);
    free(b->docs);
    free(b->keys);
    free(b->want);
}

#define MAX_IDS 64
#define MAX_USERS 8

enum MHD_Result ac_h_payment_evidence(struct ac_req *r)
{
    if (r->app->evread == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "no proof cache", NULL);
    const char *payment = r->params[0];
    PGconn *c = ac_pool_get(r->app->pool);
    if (c == NULL) return ac_reply_problem(r, AC_EC_DB_UNAVAILABLE, NULL, NULL);
    struct bundle_ctx b;
    memset(&b, 0, sizeof b);
    struct ac_evread_cp cp;
    memset(&cp, 0, sizeof cp);
    enum MHD_Result rc;
    enum ac_qs qs = ac_evread_payment(c, payment, add_entry, &b);
    if (qs < 0) {
        rc = db_error(r, c, qs);
        goto out;
    }
    if (qs == AC_QS_NO_RESULTS) {
        ac_pool_put(r->app->pool, c, 0);
        rc = ac_reply_problem(r, AC_EC_EVIDENCE_UNKNOWN, "no evidence for this payment", NULL);
        goto out;
    }
    qs = ac_evread_checkpoint(c, 0, &cp);
    if (qs < 0) {
        rc = db_error(r, c, qs);
        goto out;
    }
    if (qs == AC_QS_NO_RESULTS || b.e[b.n - 1].seq >= cp.size) {
        ac_pool_put(r->app->pool, c, 0);
        rc = ac_reply_problem(r, AC_EC_EVIDENCE_UNSEALED, NULL, NULL);
        goto out;
    }
    /* the ids and docref hashes the records name; their users */
    const char *ids[MAX_IDS];
    char *users[MAX_USERS];
    size_t nids = 0, nusers = 0;
    struct ac_ev_record *recs = calloc(b.n, sizeof *recs);
    b.want = calloc(b.n * 6 + 1, AC_EV_HASH_LEN);
    if (recs == NULL || b.want == NULL) {
        free(recs);
        ac_pool_put(r->app->pool, c, 0);
        rc = ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        goto out;
    }
    int bad = 0;
    for (size_t i = 0; i < b.n && !bad; i++) {
        char err[200];
        if (ac_ev_record_decode(b.e[i].record.p, b.e[i].record.len, &recs[i], err, sizeof err)) {
            bad = 1;
            break;
        }
        const struct ac_ev_body *bd = &recs[i].body;
        const struct ac_ev_docref *refs[] = {&bd->binding,      &bd->mandate, &bd->revocation,
                                             &bd->confirmation, &bd->voucher, &bd->report};
        for (size_t k = 0; k < 6; k++) {
            if (!refs[k]->present) continue;
            memcpy(b.want[b.nwant++], refs[k]->hash, AC_EV_HASH_LEN);
            if (refs[k]->id && nids < MAX_IDS) ids[nids++] = refs[k]->id;
        }
        if (bd->payment && nids < MAX_IDS) ids[nids++] = bd->payment;
        if (bd->user) {
            size_t k = 0;
            while (k < nusers && strcmp(users[k], bd->user) != 0)
                k++;
            if (k == nusers && nusers < MAX_USERS) users[nusers++] = (char *)bd->user;
        }
    }
    if (!bad) qs = ac_evread_documents(c, ids, nids, add_doc, &b);
    for (size_t k = 0; !bad && qs > 0 && k < nusers; k++)
        qs = ac_evread_user_keys(c, users[k], add_key, &b);
    for (size_t i = 0; i < b.n; i++)
        ac_ev_record_clear(&recs[i]);
    free(recs);
    if (bad) {
        ac_pool_put(r->app->pool, c, 0);
        rc = ac_reply_problem(r, AC_EC_EVIDENCE_INCONSISTENT, "a stored record does not decode",
                              NULL);
        goto out;
    }
    if (qs < 0) {
        rc = db_error(r, c, qs);
        goto out;
    }
    /* inclusion proofs to the latest checkpoint */
    for (size_t i = 0; i < b.n; i++) {
        uint8_t(*proof)[AC_EV_HASH_LEN] = malloc(AC_MERKLE_MAX_PROOF * AC_EV_HASH_LEN);
        size_t n = 0;
        enum ac_evread_status st =
            proof ? ac_evread_inclusion(r->app->evread, c, &cp, b.e[i].seq, proof, &n)
                  : AC_EVREAD_OOM;
        b.e[i].proof = (const uint8_t(*)[AC_EV_HASH_LEN])proof;
        b.e[i].proof_len = n;
        if (st != AC_EVREAD_OK) {
            rc = proof_error(r, c, st);
            goto out;
        }
    }
    ac_pool_put(r->app->pool, c, 0);
    /* the server's JWKS when it still publishes the checkpoint's key */
    char *jwks = NULL;
    int64_t now = (int64_t)time(NULL);
    if (r->app->keyring && ac_keyring_find(r->app->keyring, cp.key_id, now) != NULL) {
        json_t *j = ac_keyring_jwks(r->app->keyring, now);
        jwks = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(j);
    }
    struct ac_bundle bundle = {.payment = payment,
                               .entries = b.e,
                               .nentries = b.n,
                               .documents = b.docs,
                               .ndocuments = b.ndocs,
                               .user_keys = b.keys,
                               .nuser_keys = b.nkeys,
                               .checkpoint = {(const uint8_t *)cp.note, strlen(cp.note)},
                               .log_key = {(const uint8_t *)cp.log_key, strlen(cp.log_key)},
                               .jwks = {(const uint8_t *)jwks, jwks ? strlen(jwks) : 0}};
    uint8_t *out = NULL;
    size_t olen = 0;
    char err[200];
    if (ac_bundle_encode(&bundle, &out, &olen, err, sizeof err) != 0) {
        free(jwks);
        rc = ac_reply_problem(r, AC_EC_INTERNAL, err, NULL);
        goto out;
    }
    free(jwks);
    rc = ac_reply_text(r, 200, "application/cbor", (const char *)out, olen);
    free(out);
out:
    bundle_ctx_free(&b);
    ac_evread_cp_clear(&cp);
    return rc;
}
