/* Mandates, payments and step-up authorizations on the sequencer (see payments.h). */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writers preferred */
#include "ledger/payments.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "keys/registry.h"
#include "ledger/db.h"
#include "ledger/deadlines.h"
#include "ledger/domain.h"
#include "ledger/evlog.h"
#include "ledger/prices.h"
#include "protocol/b64.h"
#include "protocol/buf.h"
#include "protocol/sha256.h"
#include "protocol/strmap.h"
#include "risk/spend.h"

/* ==== the state ================================================================================
 */

struct mandate {
    struct ac_mandate m;
    char *jws;
    char kid[AC_JWK_THUMBPRINT_SIZE];
    uint8_t jws_sha256[32];
    int revoked;
    int64_t created_us;
    struct ac_spend spend;
    /* readers' view, changed under the write lock */
    int visible;
    int pub_revoked;
    /* the batch */
    int dirty; /* spend or revocation changed */
    struct mandate *next_dirty;
    int fresh;
    struct mandate *next_fresh;
};

struct payment {
    char id[AC_ID_MAX + 1];
    uint8_t digest[32];
    int settled;      /* status settled (refundable) */
    int64_t amount;   /* what was asked (and, when settled, paid) */
    int64_t refunded; /* sum of its refunds */
};

struct refund {
    char id[AC_ID_MAX + 1];
    uint8_t digest[32];
};

enum authz_status { AZ_PENDING = 1, AZ_CONFIRMED, AZ_DECLINED, AZ_EXPIRED, AZ_DENIED };

static const char *const authz_names[] = {"",         "pending", "confirmed",
                                          "declined", "expired", "denied"};

struct authz {
    char id[AC_ID_MAX + 1];
    enum authz_status status;
    /* pending ones only (a decided authorization keeps its id and status) */
    struct pend *p;
};

struct pend {
    struct authz *z;
    char payment[AC_ID_MAX + 1];
    char binding[AC_ID_MAX + 1];
    char hold_tid[AC_ID_MAX + 1];
    char debit[AC_ID_MAX + 1], credit[AC_ID_MAX + 1];
    /* a top-up's token hold ("" tok_hold when a plain payment) */
    char tok_hold[AC_ID_MAX + 1], tok_debit[AC_ID_MAX + 1], tok_credit[AC_ID_MAX + 1];
    char tok_asset[AC_ASSET_MAX + 1];
    unsigned tok_scale;
    int64_t tok_amount;
    char tok_ref[24];
    struct ac_stepup_challenge ch;
    char payment_digest[AC_STEPUP_DIGEST_LEN + 1];
    struct ac_spend_hold hold;
    int64_t exp_us;
    struct ac_deadline link; /* on the pending list, with deadline exp_us */
};

/* Columns of the batch's multi-row payments insert (statement pay_ins). */
enum {
    PC_ID,
    PC_DIGEST,
    PC_MANDATE,
    PC_BINDING,
    PC_USER,
    PC_AGENT,
    PC_PAYEE,
    PC_OP,
    PC_AMOUNT,
    PC_ASSET,
    PC_PURPOSE,
    PC_ORDER,
    PC_STATUS,
    PC_VERDICT,
    PC_AUTONOMY,
    PC_REASONS,
    PC_ERROR,
    PC_TRANSFER,
    PC_AUTHZ,
    PC_EVSEQ,
    PC_EVLEAF,
    PC_CREATED,
    PC__COUNT
};
#define SPEND_COLS 15

struct ac_payments {
    struct ac_payments_config cfg;
    pthread_rwlock_t lock; /* the mandates map and its readers' fields */
    struct ac_strmap mandates;   /* struct mandate */
    struct ac_strmap payments;   /* struct payment (sequencer only) */
    struct ac_strmap authz;      /* struct authz (sequencer only) */
    struct ac_strmap refunds;    /* struct refund (sequencer only) */
    struct ac_deadlines pending; /* pending step-ups, by expiry */
    /* the batch */
    struct mandate *dirty, *fresh;
    struct ac_buf cols[PC__COUNT];
    size_t nrows;
    struct ac_buf scols[SPEND_COLS];
};

static const char *mandate_key(const void *v)
{
    return ((const struct mandate *)v)->m.id;
}
static const char *payment_key(const void *v)
{
    return ((const struct payment *)v)->id;
}
static const char *refund_key(const void *v)
{
    return ((const struct refund *)v)->id;
}
static const char *authz_key(const void *v)
{
    return ((const struct authz *)v)->id;
}

static void mandate_free(void *v)
{
    struct mandate *m = v;
    if (m) free(m->jws);
    free(m);
}

static void authz_free(void *v)
{
    struct authz *z = v;
    if (z) free(z->p);
    free(z);
}

static void init_maps(struct ac_payments *p)
{
    memset(&p->mandates, 0, sizeof p->mandates);
    memset(&p->payments, 0, sizeof p->payments);
    memset(&p->authz, 0, sizeof p->authz);
    memset(&p->refunds, 0, sizeof p->refunds);
    p->refunds.key = refund_key;
    p->mandates.key = mandate_key;
    p->payments.key = payment_key;
    p->authz.key = authz_key;
    ac_deadlines_init(&p->pending);
}

struct ac_payments *ac_payments_new(const struct ac_payments_config *cfg)
{
    struct ac_payments *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    if (cfg) p->cfg = *cfg;
    if (p->cfg.stepup_ttl_s <= 0) p->cfg.stepup_ttl_s = AC_STEPUP_TTL_DEFAULT;
    if (p->cfg.stepup_ttl_s > AC_STEPUP_TTL_MAX) p->cfg.stepup_ttl_s = AC_STEPUP_TTL_MAX;
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&p->lock, &at);
    pthread_rwlockattr_destroy(&at);
    if (rc != 0) {
        free(p);
        return NULL;
    }
    init_maps(p);
    return p;
}

void ac_payments_free(struct ac_payments *p)
{
    if (p == NULL) return;
    ac_strmap_free(&p->mandates, mandate_free);
    ac_strmap_free(&p->payments, free);
    ac_strmap_free(&p->authz, authz_free);
    ac_strmap_free(&p->refunds, free);
    for (int i = 0; i < PC__COUNT; i++)
        ac_buf_free(&p->cols[i]);
    for (int i = 0; i < SPEND_COLS; i++)
        ac_buf_free(&p->scols[i]);
    pthread_rwlock_destroy(&p->lock);
    free(p);
}

void ac_payments_counts(struct ac_payments *p, struct ac_payments_counts *out)
{
    out->mandates = p->mandates.n;
    out->payments = p->payments.n;
    out->authorizations = p->authz.n;
    out->pending = ac_deadlines_count(&p->pending);
}

/* ==== small helpers ============================================================================
 */

const char *ac_pay_status_name(enum ac_pay_status s)
{
    switch (s) {
    case AC_PAY_SETTLED:
        return "settled";
    case AC_PAY_PENDING:
        return "pending_confirmation";
    case AC_PAY_DECLINED:
        return "declined";
    case AC_PAY_EXPIRED:
        return "expired";
    case AC_PAY_DENIED:
        return "denied";
    case AC_PAY_FAILED:
        return "failed";
    }
    return "";
}

enum ac_pay_status ac_pay_status_from_name(const char *s)
{
    for (int i = AC_PAY_SETTLED; i <= AC_PAY_FAILED; i++)
        if (strcmp(s, ac_pay_status_name((enum ac_pay_status)i)) == 0) return (enum ac_pay_status)i;
    return 0;
}

int ac_wallet_account(int user, const char *id, const char *asset, char out[AC_ID_MAX + 1])
{
    char tmp[2 * AC_ID_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s:%s:%s", user ? "user" : "merchant", id, asset);
    out[0] = '\0';
    if (n < 0 || (size_t)n >= sizeof tmp) return -1;
    for (char *c = tmp + n - strlen(asset); *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (!ac_id_valid(tmp)) return -1;
    memcpy(out, tmp, (size_t)n + 1);
    return 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Hash the concatenation of NUL-terminated fields (each with its NUL) into out. */
static void hash_fields(const char *const *f, size_t n, uint8_t out[32])
{
    char buf[2048];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(f[i]) + 1;
        if (len + l > sizeof buf) l = sizeof buf - len; /* cannot happen: fields are bounded */
        memcpy(buf + len, f[i], l);
        len += l;
    }
    ac_sha256(buf, len, out);
}

void ac_payment_transfer_id(const char *payment_id, const char *role, char out[AC_ID_MAX + 1])
{
    const char *f[] = {"agentclear/v1/payment-transfer", payment_id, role};
    uint8_t d[32];
    hash_fields(f, 3, d);
    memcpy(out, "pt.", 3);
    hex(d, 16, out + 3);
}

void ac_refund_transfer_id(const char *refund_id, char out[AC_ID_MAX + 1])
{
    const char *f[] = {"agentclear/v1/refund-transfer", refund_id};
    uint8_t d[32];
    hash_fields(f, 2, d);
    memcpy(out, "rt.", 3);
    hex(d, 16, out + 3);
}

void ac_refund_request_digest(struct ac_refund_request *q)
{
    char amount[AC_AMOUNT_STR_MAX];
    const char *f[] = {"agentclear/v1/refund-request",
                       q->payment,
                       q->merchant,
                       q->asset,
                       ac_amount_format(q->amount, q->scale, amount),
                       q->reason};
    hash_fields(f, sizeof f / sizeof *f, q->digest);
}

void ac_pay_request_digest(struct ac_pay_request *q)
{
    char amount[AC_AMOUNT_STR_MAX];
    const char *op = ac_op_name(q->op);
    const char *f[] = {"agentclear/v1/payment-request",
                       q->binding,
                       q->mandate,
                       q->payee,
                       op ? op : "",
                       q->asset,
                       ac_amount_format(q->amount, q->scale, amount),
                       q->purpose,
                       q->order_digest,
                       q->topup ? q->topup->token_asset : "",
                       q->topup ? q->topup->ref : ""};
    /* a plain payment hashes the fields it always had, so digests stored before top-ups
     * existed still match their payment's retry */
    hash_fields(f, sizeof f / sizeof *f - (q->topup ? 0 : 2), q->digest);
}

/* ---- text array literals for the batch's multi-row statements ---------------------------------
 * Every element is quoted; '"' and '\\' are escaped (purpose is free text). */

static void col_str(struct ac_buf *b, const char *s)
{
    if (b->len == 0) ac_buf_add(b, "{", 1);
    ac_buf_array_str(b, s);
}

static void col_i64(struct ac_buf *b, long long v)
{
    ac_buf_add(b, b->len ? ",\"" : "{\"", 2);
    ac_buf_add_i64(b, v);
    ac_buf_add(b, "\"", 1);
}

static int cols_close(struct ac_buf *cols, int n, const char **vals)
{
    for (int i = 0; i < n; i++) {
        ac_buf_add(&cols[i], "}", 1);
        if (cols[i].oom) return -1;
        vals[i] = ac_buf_str(&cols[i]);
    }
    return 0;
}

static void cols_reset(struct ac_buf *cols, int n)
{
    for (int i = 0; i < n; i++)
        ac_buf_reset(&cols[i]);
}

/* The decisive reasons of d as "a,b,c". */
static void reasons_text(const struct ac_risk_decision *d, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < d->n && n < cap; i++)
        n +=
            (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "", ac_reason_code(d->reasons[i]));
}

/* ==== statements ===============================================================================
 */

static const struct ac_db_stmt writer_stmts[] = {
    {"pay_mandate_ins",
     "insert into ac_mandates (id, user_id, user_kid, asset, nbf, exp, autonomy, jws, created_us) "
     "values ($1, $2, $3, $4, $5::int8, $6::int8, $7::int2, $8, $9::int8)",
     9},
    {"pay_mandate_revoke",
     "update ac_mandates set status = 'revoked', revoked_us = $2::int8, revocation_kid = $3, "
     "revocation_jws = $4 where id = $1 and status = 'active'",
     4},
    {"pay_ins",
     "insert into ac_payments (id, request_digest, mandate_id, binding_id, user_id, agent_id, "
     "payee, op, amount, asset, purpose, order_digest, status, verdict, autonomy, reasons, error, "
     "transfer_id, authorization_id, evidence_seq, evidence_leaf, created_us, updated_us) "
     "select a, decode(b, 'hex'), c, d, e, f, g, h, i, j, nullif(k, ''), nullif(l, ''), m, n, o, "
     "p, nullif(q, ''), nullif(r, ''), nullif(s, ''), nullif(t, '')::int8, "
     "decode(nullif(u, ''), 'hex'), v, v from unnest($1::text[], $2::text[], $3::text[], "
     "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[], "
     "$11::text[], $12::text[], $13::text[], $14::text[], $15::int2[], $16::text[], $17::text[], "
     "$18::text[], $19::text[], $20::text[], $21::text[], $22::int8[]) "
     "as t(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v)",
     22},
    {"pay_status", "update ac_payments set status = $2, updated_us = $3::int8 where id = $1", 3},
    {"pay_spend",
     "insert into ac_mandate_spend (mandate_id, day_start, day_spent, day_held, week_start, "
     "week_spent, week_held, month_start, month_spent, month_held, spent, held, uses, holds, "
     "updated_us) select * from unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], "
     "$5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], "
     "$12::int8[], $13::int8[], $14::int8[], $15::int8[]) on conflict (mandate_id) do update set "
     "day_start = excluded.day_start, day_spent = excluded.day_spent, day_held = "
     "excluded.day_held, week_start = excluded.week_start, week_spent = excluded.week_spent, "
     "week_held = excluded.week_held, month_start = excluded.month_start, month_spent = "
     "excluded.month_spent, month_held = excluded.month_held, spent = excluded.spent, held = "
     "excluded.held, uses = excluded.uses, holds = excluded.holds, updated_us = "
     "excluded.updated_us",
     15},
    {"pay_authz_ins",
     "insert into ac_authorizations (id, payment_id, user_id, challenge, nonce, iat, exp, "
     "hold_amount, hold_at_us, created_us) values ($1, $2, $3, $4, $5, $6::int8, $7::int8, "
     "$8::int8, $9::int8, $9::int8)",
     9},
    {"pay_authz_decide",
     "update ac_authorizations set status = $2, confirmation_kid = nullif($3, ''), "
     "confirmation_jws = nullif($4, ''), decided_us = $5::int8, transfer_id = nullif($6, ''), "
     "evidence_seq = nullif($7, '')::int8, evidence_leaf = decode(nullif($8, ''), 'hex') "
     "where id = $1 and status = 'pending'",
     8},
    /* load */
    {"pay_load_mandates",
     "select m.id, m.jws, m.user_kid, m.status, m.created_us, a.scale, coalesce(s.day_start, 0), "
     "coalesce(s.day_spent, 0), coalesce(s.day_held, 0), coalesce(s.week_start, 0), "
     "coalesce(s.week_spent, 0), coalesce(s.week_held, 0), coalesce(s.month_start, 0), "
     "coalesce(s.month_spent, 0), coalesce(s.month_held, 0), coalesce(s.spent, 0), "
     "coalesce(s.held, 0), coalesce(s.uses, 0), coalesce(s.holds, 0) from ac_mandates m "
     "join ac_assets a on a.code = m.asset left join ac_mandate_spend s on s.mandate_id = m.id "
     "order by m.seq",
     0},
    {"pay_load_payments",
     "select id, encode(request_digest, 'hex'), status, amount, refunded from ac_payments", 0},
    {"pay_load_refunds", "select id, encode(request_digest, 'hex') from ac_refunds", 0},
    {"pay_refund_ins",
     "insert into ac_refunds (id, request_digest, payment_id, merchant_id, user_id, amount, asset, "
     "reason, transfer_id, keyid, evidence_seq, evidence_leaf, created_us) values ($1, "
     "decode($2, 'hex'), $3, $4, $5, $6::int8, $7, nullif($8, ''), $9, $10, nullif($11, '')::int8, "
     "decode(nullif($12, ''), 'hex'), $13::int8)",
     13},
    {"pay_refunded",
     "update ac_payments set refunded = $2::int8, updated_us = $3::int8 where id = $1", 3},
    {"pay_load_authz",
     "select z.id, z.status, z.challenge, z.hold_amount, z.hold_at_us, p.id, p.binding_id, "
     "coalesce(p.transfer_id, ''), p.user_id, p.payee, p.asset, coalesce(t.token_transfer_id, ''), "
     "coalesce(t.token_debit, ''), coalesce(t.token_credit, ''), coalesce(t.token_asset, ''), "
     "coalesce(ta.scale, 0), coalesce(t.token_amount, 0), coalesce(t.price_version, 0) "
     "from ac_authorizations z join ac_payments p on p.id = z.payment_id "
     "left join ac_topups t on t.id = p.id left join ac_assets ta on ta.code = t.token_asset",
     0},
};

int ac_payments_register_reader_statements(void); /* payments_read.c */

int ac_payments_register_statements(void)
{
    if (ac_db_register(AC_DB_WRITER, writer_stmts, sizeof writer_stmts / sizeof *writer_stmts))
        return -1;
    return ac_payments_register_reader_statements();
}

/* ==== readers ==================================================================================
 */

enum ac_ec ac_payments_mandate_brief(struct ac_payments *p, const char *id,
                                     struct ac_mandate_brief *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&p->lock);
    struct mandate *m = ac_strmap_get(&p->mandates, id);
    int ok = m && m->visible;
    if (ok) {
        memcpy(out->iss, m->m.iss, sizeof out->iss);
        memcpy(out->asset, m->m.asset, sizeof out->asset);
        out->scale = m->m.scale;
        out->revoked = m->pub_revoked;
    }
    pthread_rwlock_unlock(&p->lock);
    return ok ? AC_EC_OK : AC_EC_MANDATE_UNKNOWN;
}

/* ==== the batch ================================================================================
 */

static void mark_dirty(struct ac_payments *p, struct mandate *m)
{
    if (m->dirty) return;
    m->dirty = 1;
    m->next_dirty = p->dirty;
    p->dirty = m;
}

static void pending_add(struct ac_payments *p, struct pend *e)
{
    ac_deadlines_add(&p->pending, &e->link, e, e->exp_us);
}

static void pending_remove(struct ac_payments *p, struct pend *e)
{
    ac_deadlines_remove(&p->pending, &e->link);
}

int64_t ac_payments_next_deadline(struct ac_payments *p)
{
    return ac_deadlines_next(&p->pending);
}

int ac_payments_flush(struct ac_payments *p, struct ac_apply *a)
{
    if (p->nrows) {
        const char *vals[PC__COUNT];
        if (cols_close(p->cols, PC__COUNT, vals)) return -1;
        if (ac_apply_stmt(a, "pay_ins", PC__COUNT, vals)) return -1;
    }
    if (p->dirty) {
        int64_t now = ac_apply_now(a);
        for (struct mandate *m = p->dirty; m; m = m->next_dirty) {
            const struct ac_spend *s = &m->spend;
            const int64_t v[SPEND_COLS - 1] = {
                s->day.start_s, s->day.spent, s->day.held,      s->week.start_s,
                s->week.spent,  s->week.held, s->month.start_s, s->month.spent,
                s->month.held,  s->spent,     s->held,          s->uses,
                s->holds,       now};
            col_str(&p->scols[0], m->m.id);
            for (int i = 1; i < SPEND_COLS; i++)
                col_i64(&p->scols[i], v[i - 1]);
        }
        const char *vals[SPEND_COLS];
        if (cols_close(p->scols, SPEND_COLS, vals)) return -1;
        if (ac_apply_stmt(a, "pay_spend", SPEND_COLS, vals)) return -1;
    }
    return 0;
}

int ac_payments_pending(const struct ac_payments *p)
{
    if (p->fresh) return 1;
    for (const struct mandate *m = p->dirty; m; m = m->next_dirty)
        if (m->revoked != m->pub_revoked) return 1;
    return 0;
}

void ac_payments_end(struct ac_payments *p, int committed)
{
    if (committed && (p->fresh || p->dirty)) {
        pthread_rwlock_wrlock(&p->lock);
        for (struct mandate *m = p->fresh; m; m = m->next_fresh)
            m->visible = 1;
        for (struct mandate *m = p->dirty; m; m = m->next_dirty)
            m->pub_revoked = m->revoked;
        pthread_rwlock_unlock(&p->lock);
    }
    struct mandate *next;
    for (struct mandate *m = p->fresh; m; m = next) {
        next = m->next_fresh;
        m->fresh = 0;
        m->next_fresh = NULL;
    }
    for (struct mandate *m = p->dirty; m; m = next) {
        next = m->next_dirty;
        m->dirty = 0;
        m->next_dirty = NULL;
    }
    p->fresh = p->dirty = NULL;
    p->nrows = 0;
    cols_reset(p->cols, PC__COUNT);
    cols_reset(p->scols, SPEND_COLS);
}

/* ==== evidence =================================================================================
 */

/* Append r (when the domain has an evidence log) and keep its seq and leaf in op. 0, or -1 after
 * failing the batch: the op must then report AC_EC_INTERNAL. */
static int evidence(struct ac_domain *d, struct ac_apply *a, struct ac_ev_record *r,
                    struct ac_payop *op)
{
    if (d->evlog == NULL) return 0;
    if (ac_evlog_append(d->evlog, a, r, &op->ev_seq, op->ev_leaf) != 0) {
        ac_apply_abort(a);
        return -1;
    }
    op->has_evidence = 1;
    return 0;
}

static void docref(struct ac_ev_docref *r, const uint8_t hash[32], const char *id, const char *kid)
{
    r->present = 1;
    memcpy(r->hash, hash, AC_EV_HASH_LEN);
    r->id = id;
    r->kid = kid && kid[0] ? kid : NULL;
}

static void doc_sha256(const char *text, uint8_t out[32])
{
    ac_sha256(text, strlen(text), out);
}

/* ==== mandates =================================================================================
 */

static void apply_mandate(struct ac_payments *p, struct ac_domain *d, struct ac_payop *op,
                          struct ac_apply *a)
{
    const struct ac_mandate *md = op->mandate;
    int64_t now = ac_apply_now(a);
    struct mandate *old = ac_strmap_get(&p->mandates, md->id);
    if (old) {
        if (strcmp(old->jws, op->jws) == 0)
            op->replayed = 1;
        else
            op->result = AC_EC_MANDATE_EXISTS;
        return;
    }
    EVP_PKEY *key = NULL;
    enum ac_ec ec = ac_registry_user_key(d->registry, md->iss, op->kid, &key);
    EVP_PKEY_free(key);
    if (ec != AC_EC_OK) {
        op->result = ec;
        return;
    }
    struct mandate *m = calloc(1, sizeof *m);
    if (m == NULL || (m->jws = strdup(op->jws)) == NULL) {
        mandate_free(m);
        op->result = AC_EC_INTERNAL;
        return;
    }
    m->m = *md;
    memcpy(m->kid, op->kid, sizeof m->kid);
    doc_sha256(m->jws, m->jws_sha256);
    m->created_us = now;
    ac_spend_init(&m->spend);
    pthread_rwlock_wrlock(&p->lock);
    int full = ac_strmap_reserve(&p->mandates, 1);
    if (!full) ac_strmap_put(&p->mandates, m);
    pthread_rwlock_unlock(&p->lock);
    if (full) {
        mandate_free(m);
        op->result = AC_EC_INTERNAL;
        return;
    }
    m->fresh = 1;
    m->next_fresh = p->fresh;
    p->fresh = m;
    mark_dirty(p, m); /* its spend row */

    char nbf[24], exp[24], aut[4], t[24];
    snprintf(nbf, sizeof nbf, "%lld", (long long)md->nbf);
    snprintf(exp, sizeof exp, "%lld", (long long)md->exp);
    snprintf(aut, sizeof aut, "%d", (int)md->autonomy);
    snprintf(t, sizeof t, "%lld", (long long)now);
    const char *v[] = {md->id, md->iss, op->kid, md->asset, nbf, exp, aut, op->jws, t};
    if (ac_apply_stmt(a, "pay_mandate_ins", 9, v)) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    struct ac_ev_record r = {0};
    r.kind = AC_EV_MANDATE_REGISTER;
    r.body.user = md->iss;
    docref(&r.body.mandate, m->jws_sha256, md->id, m->kid);
    if (evidence(d, a, &r, op)) op->result = AC_EC_INTERNAL;
}

static void apply_mandate_revoke(struct ac_payments *p, struct ac_domain *d, struct ac_payop *op,
                                 struct ac_apply *a)
{
    struct mandate *m = ac_strmap_get(&p->mandates, op->mandate_id);
    if (m == NULL) {
        op->result = AC_EC_MANDATE_UNKNOWN;
        return;
    }
    if (strcmp(m->m.iss, op->user) != 0) {
        op->result = AC_EC_REVOCATION_INVALID;
        return;
    }
    EVP_PKEY *key = NULL;
    enum ac_ec ec = ac_registry_user_key(d->registry, op->user, op->kid, &key);
    EVP_PKEY_free(key);
    if (ec != AC_EC_OK) {
        op->result = ec;
        return;
    }
    if (m->revoked) {
        op->replayed = 1;
        return;
    }
    int64_t now = ac_apply_now(a);
    m->revoked = 1; /* in effect for every later operation, this batch included */
    mark_dirty(p, m);
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)now);
    const char *v[] = {m->m.id, t, op->kid, op->jws};
    if (ac_apply_stmt(a, "pay_mandate_revoke", 4, v)) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    uint8_t h[32];
    doc_sha256(op->jws, h);
    struct ac_ev_record r = {0};
    r.kind = AC_EV_MANDATE_REVOKE;
    r.body.user = m->m.iss;
    docref(&r.body.mandate, m->jws_sha256, m->m.id, m->kid);
    docref(&r.body.revocation, h, m->m.id, op->kid);
    if (evidence(d, a, &r, op)) op->result = AC_EC_INTERNAL;
}

/* ==== payments =================================================================================
 */

/* The risk input of a request under binding b and mandate m. */
static void risk_input(struct ac_risk_input *in, const struct ac_pay_request *q,
                       const char *binding, const struct ac_binding_state *b,
                       const struct mandate *m, int64_t now)
{
    memset(in, 0, sizeof *in);
    in->req.op = q->op;
    in->req.payee = q->payee;
    in->req.category = q->category[0] ? q->category : NULL;
    in->req.asset = q->asset;
    in->req.amount = q->amount;
    in->binding.binding_id = binding;
    in->binding.user_id = b->user_id;
    in->binding.agent_id = b->agent_id;
    in->binding.max_autonomy = (enum ac_autonomy)b->max_autonomy;
    in->binding.nbf_s = b->nbf;
    in->binding.exp_s = b->exp;
    in->binding.revoked = b->revoked;
    in->mandate = &m->m;
    in->mandate_revoked = m->revoked;
    in->spend = &m->spend;
    in->now_us = now;
}

/* Queue the payment's row in the batch's multi-row insert. */
static void payment_row(struct ac_payments *p, const struct ac_pay_request *q,
                        const struct ac_binding_state *b, const struct ac_payop *op,
                        const char *transfer_id, const char *authz_id, int64_t now)
{
    char dg[65], leaf[65] = "", seq[24] = "", reasons[1024], aut[4];
    hex(q->digest, 32, dg);
    if (op->has_evidence) {
        hex(op->ev_leaf, 32, leaf);
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)op->ev_seq);
    }
    if (op->status == AC_PAY_FAILED)
        snprintf(reasons, sizeof reasons, "%s", "");
    else
        reasons_text(&op->decision, reasons, sizeof reasons);
    snprintf(aut, sizeof aut, "%d", (int)op->decision.autonomy);
    struct ac_buf *c = p->cols;
    col_str(&c[PC_ID], q->id);
    col_str(&c[PC_DIGEST], dg);
    col_str(&c[PC_MANDATE], q->mandate);
    col_str(&c[PC_BINDING], q->binding);
    col_str(&c[PC_USER], b->user_id);
    col_str(&c[PC_AGENT], b->agent_id);
    col_str(&c[PC_PAYEE], q->payee);
    col_str(&c[PC_OP], ac_op_name(q->op));
    col_i64(&c[PC_AMOUNT], q->amount);
    col_str(&c[PC_ASSET], q->asset);
    col_str(&c[PC_PURPOSE], q->purpose);
    col_str(&c[PC_ORDER], q->order_digest);
    col_str(&c[PC_STATUS], ac_pay_status_name(op->status));
    col_str(&c[PC_VERDICT], ac_verdict_name(op->decision.verdict));
    col_str(&c[PC_AUTONOMY], aut);
    col_str(&c[PC_REASONS], reasons);
    col_str(&c[PC_ERROR], op->status == AC_PAY_FAILED ? ac_ec_code(op->ledger_ec) : "");
    col_str(&c[PC_TRANSFER], transfer_id);
    col_str(&c[PC_AUTHZ], authz_id);
    col_str(&c[PC_EVSEQ], seq);
    col_str(&c[PC_EVLEAF], leaf);
    col_i64(&c[PC_CREATED], now);
    p->nrows++;
}

/* 128 random bits as an authorization id "az_<22 base64url>", and a challenge nonce. 0 or -1. */
static int random_ids(char id[AC_ID_MAX + 1], char nonce[AC_STEPUP_NONCE_LEN + 1])
{
    uint8_t r[16 + AC_STEPUP_NONCE_BYTES];
    if (RAND_bytes(r, sizeof r) != 1) return -1;
    memcpy(id, "az_", 3);
    ac_b64_encode(r, 16, id + 3, 1);
    ac_stepup_nonce_encode(r + 16, nonce);
    return 0;
}

/* The step-up part of a payment: fill the challenge, keep the pending authorization, queue its
 * row. The hold transfer and the spend hold are the caller's. 0, or -1 (out of memory / RNG).
 * The one JSON rendering on the sequencer thread (the challenge's canonical text for its row):
 * step-ups wait for a human and are rare next to plain payments, whose path renders nothing. */
static int take_authorization(struct ac_payments *p, struct ac_payop *op,
                              const struct ac_pay_request *q, const struct ac_binding_state *b,
                              const struct ac_spend_hold *hold, struct ac_apply *a)
{
    int64_t now = ac_apply_now(a), now_s = ac_us_to_s(now);
    struct ac_stepup_challenge *ch = &op->challenge;
    memset(ch, 0, sizeof *ch);
    if (random_ids(ch->authorization, ch->nonce)) return -1;
    memcpy(ch->payer, b->user_id, sizeof ch->payer);
    memcpy(ch->agent, b->agent_id, sizeof ch->agent);
    memcpy(ch->payee, q->payee, sizeof ch->payee);
    memcpy(ch->mandate, q->mandate, sizeof ch->mandate);
    ch->op = q->op;
    memcpy(ch->asset, q->asset, sizeof ch->asset);
    ch->scale = q->scale;
    ch->amount = q->amount;
    memcpy(ch->purpose, q->purpose, sizeof ch->purpose);
    memcpy(ch->order_digest, q->order_digest, sizeof ch->order_digest);
    ch->iat = now_s;
    ch->exp = now_s + p->cfg.stepup_ttl_s;
    struct authz *z = calloc(1, sizeof *z);
    struct pend *e = calloc(1, sizeof *e);
    char *text = NULL;
    if (z == NULL || e == NULL || ac_strmap_reserve(&p->authz, 1) ||
        ac_stepup_payment_digest(ch, e->payment_digest) != 0 ||
        (text = ac_stepup_challenge_render(ch)) == NULL) {
        free(z);
        free(e);
        return -1;
    }
    memcpy(z->id, ch->authorization, sizeof z->id);
    z->status = AZ_PENDING;
    z->p = e;
    e->z = z;
    memcpy(e->payment, q->id, sizeof e->payment);
    memcpy(e->binding, q->binding, sizeof e->binding);
    memcpy(e->hold_tid, q->transfer_id, sizeof e->hold_tid);
    memcpy(e->debit, q->debit, sizeof e->debit);
    memcpy(e->credit, q->credit, sizeof e->credit);
    if (q->topup) {
        memcpy(e->tok_hold, q->topup->transfer_id, sizeof e->tok_hold);
        memcpy(e->tok_debit, q->topup->debit, sizeof e->tok_debit);
        memcpy(e->tok_credit, q->topup->credit, sizeof e->tok_credit);
        memcpy(e->tok_asset, q->topup->token_asset, sizeof e->tok_asset);
        e->tok_scale = q->topup->token_scale;
        e->tok_amount = q->topup->tokens;
        memcpy(e->tok_ref, q->topup->ref, sizeof e->tok_ref);
    }
    e->ch = *ch;
    e->hold = *hold;
    e->exp_us = ch->exp * 1000000;
    ac_strmap_put(&p->authz, z);
    pending_add(p, e);
    char iat[24], exp[24], amt[24], at[24];
    snprintf(iat, sizeof iat, "%lld", (long long)ch->iat);
    snprintf(exp, sizeof exp, "%lld", (long long)ch->exp);
    snprintf(amt, sizeof amt, "%lld", (long long)hold->amount);
    snprintf(at, sizeof at, "%lld", (long long)hold->at_us);
    const char *v[] = {z->id, q->id, b->user_id, text, ch->nonce, iat, exp, amt, at};
    int rc = ac_apply_stmt(a, "pay_authz_ins", 9, v);
    free(text);
    return rc;
}

static void apply_pay(struct ac_payments *p, struct ac_domain *d, struct ac_payop *op,
                      struct ac_apply *a)
{
    const struct ac_pay_request *q = op->pay;
    int64_t now = ac_apply_now(a);
    struct payment *old = ac_strmap_get(&p->payments, q->id);
    if (old) {
        if (memcmp(old->digest, q->digest, sizeof old->digest) == 0)
            op->replayed = 1;
        else
            op->result = AC_EC_PAYMENT_EXISTS;
        return;
    }
    struct mandate *m = ac_strmap_get(&p->mandates, q->mandate);
    if (m == NULL) {
        op->result = AC_EC_MANDATE_UNKNOWN;
        return;
    }
    struct ac_binding_state b;
    if (ac_registry_binding_state(d->registry, q->binding, &b) != AC_EC_OK) {
        op->result = AC_EC_BINDING_UNKNOWN;
        return;
    }
    const struct ac_topup_leg *tl = q->topup;
    if ((q->op == AC_OP_TOPUP) != (tl != NULL)) { /* a top-up without its token leg, or a leg
                                                      on another op: never half a pair */
        op->result = AC_EC_PARAMETER_INVALID;
        return;
    }
    if (tl) { /* priced at the provider's current version, checked here against later publishes */
        enum ac_ec pec = d->prices ? ac_prices_check_current(d->prices, q->payee, tl->version)
                                   : AC_EC_INTERNAL;
        if (pec != AC_EC_OK) {
            op->result = pec;
            return;
        }
    }
    struct payment *pe = malloc(sizeof *pe);
    if (pe == NULL || ac_strmap_reserve(&p->payments, 1)) {
        free(pe);
        op->result = AC_EC_INTERNAL;
        return;
    }
    memcpy(pe->id, q->id, sizeof pe->id);
    memcpy(pe->digest, q->digest, sizeof pe->digest);
    pe->settled = 0;
    pe->amount = q->amount;
    pe->refunded = 0;
    ac_strmap_put(&p->payments, pe);

    /* the decision, at apply time, against the live spend */
    struct ac_risk_input in;
    risk_input(&in, q, q->binding, &b, m, now);
    ac_risk_decide(&in, &op->decision);

    struct ac_ev_transfer evt[2] = {{.id = q->transfer_id,
                                     .debit = q->debit,
                                     .credit = q->credit,
                                     .amount = q->amount,
                                     .asset = q->asset,
                                     .scale = q->scale}};
    if (tl) { /* the token leg, linked to the fiat leg */
        evt[0].flags = AC_TF_LINKED;
        evt[1] = (struct ac_ev_transfer){.id = tl->transfer_id,
                                         .debit = tl->debit,
                                         .credit = tl->credit,
                                         .amount = tl->tokens,
                                         .asset = tl->token_asset,
                                         .scale = tl->token_scale};
    }
    size_t nt = tl ? 2 : 1;
    const char *transfer_id = "", *authz_id = "";
    enum ac_ev_kind kind = AC_EV_PAYMENT_DENY;
    op->status = AC_PAY_DENIED;
    if (op->decision.verdict != AC_VERDICT_DENY) {
        struct ac_transfer_req t[2];
        memset(t, 0, sizeof t);
        for (size_t i = 0; i < nt; i++) {
            memcpy(t[i].id, evt[i].id, strlen(evt[i].id) + 1);
            memcpy(t[i].debit, evt[i].debit, strlen(evt[i].debit) + 1);
            memcpy(t[i].credit, evt[i].credit, strlen(evt[i].credit) + 1);
            memcpy(t[i].asset, evt[i].asset, strlen(evt[i].asset) + 1);
            t[i].amount = evt[i].amount;
            t[i].flags = evt[i].flags;
        }
        int hold = op->decision.verdict == AC_VERDICT_STEP_UP;
        if (hold)
            for (size_t i = 0; i < nt; i++) {
                t[i].flags |= AC_TF_PENDING;
                t[i].timeout_s = (uint32_t)(p->cfg.stepup_ttl_s + AC_HOLD_GRACE_S);
            }
        struct ac_transfer_result rs[2], res;
        if (ac_state_create_transfers(ac_apply_ledger(a), t, nt, now, rs) != AC_EC_OK) {
            ac_apply_abort(a);
            op->result = AC_EC_INTERNAL;
            return;
        }
        /* the first failure of the chain is its reason (the others say linked_event_failed) */
        res = rs[0];
        for (size_t i = 0; i < nt; i++)
            if (rs[i].ec != AC_EC_OK && rs[i].ec != AC_EC_LINKED_EVENT_FAILED) {
                res = rs[i];
                break;
            }
        for (size_t i = 1; res.ec == AC_EC_OK && !res.replayed && i < nt; i++)
            if (rs[i].replayed) res.replayed = 1;
        if (res.ec == AC_EC_OK && res.replayed) res.ec = AC_EC_TRANSFER_EXISTS_DIFFERENT;
        if (res.ec != AC_EC_OK) {
            op->status = AC_PAY_FAILED;
            op->ledger_ec = res.ec;
        } else if (!hold) {
            if (ac_spend_charge(&m->spend, m->m.tz_offset_s, now, q->amount) != 0) {
                ac_apply_abort(a); /* the decision checked for overflow: cannot happen */
                op->result = AC_EC_INTERNAL;
                return;
            }
            mark_dirty(p, m);
            op->status = AC_PAY_SETTLED;
            pe->settled = 1;
            kind = tl ? AC_EV_TOPUP : AC_EV_PAYMENT_SETTLE;
            transfer_id = q->transfer_id;
        } else {
            struct ac_spend_hold h;
            if (ac_spend_hold(&m->spend, m->m.tz_offset_s, now, q->amount, &h) != 0 ||
                take_authorization(p, op, q, &b, &h, a) != 0) {
                ac_apply_abort(a);
                op->result = AC_EC_INTERNAL;
                return;
            }
            mark_dirty(p, m);
            op->status = AC_PAY_PENDING;
            kind = tl ? AC_EV_TOPUP : AC_EV_PAYMENT_STEP_UP;
            transfer_id = q->transfer_id;
            authz_id = op->challenge.authorization;
            for (size_t i = 0; i < nt; i++) { /* the holds as the ledger took them, timeout
                                                 included: an auditor expires them alike */
                evt[i].flags |= AC_TF_PENDING;
                evt[i].timeout_s = t[i].timeout_s;
            }
        }
    }
    memcpy(op->transfer_id, transfer_id, strlen(transfer_id) + 1);

    /* the evidence record */
    const char *reasons[AC_RR__COUNT + 1];
    size_t nr = 0;
    if (op->status == AC_PAY_FAILED) {
        reasons[nr++] = ac_ec_code(op->ledger_ec);
    } else {
        for (unsigned i = 0; i < op->decision.n; i++)
            reasons[nr++] = ac_reason_code(op->decision.reasons[i]);
    }
    struct ac_ev_record r = {0};
    r.kind = kind;
    r.body.payment = q->id;
    r.body.user = b.user_id;
    r.body.agent = b.agent_id;
    r.body.payee = q->payee;
    r.body.category = q->category[0] ? q->category : NULL; /* what the decision saw */
    r.body.ref = tl ? tl->ref : q->order_digest[0] ? q->order_digest : NULL;
    r.body.amount = (struct ac_ev_amount){1, q->amount, q->asset, q->scale};
    docref(&r.body.binding, b.jws_sha256, q->binding, b.user_kid);
    docref(&r.body.mandate, m->jws_sha256, m->m.id, m->kid);
    r.body.request = (struct ac_ev_request){1,          q->sig.base,    q->sig.base_len,
                                            q->sig.sig, q->sig.sig_len, q->sig.keyid,
                                            1,          q->sig.body,    q->sig.body_len};
    r.body.decision = op->status == AC_PAY_SETTLED   ? AC_EV_ALLOW
                      : op->status == AC_PAY_PENDING ? AC_EV_STEP_UP
                                                     : AC_EV_DENY;
    r.body.reasons = nr ? reasons : NULL;
    r.body.nreasons = nr;
    if (kind != AC_EV_PAYMENT_DENY) {
        r.body.transfers = evt;
        r.body.ntransfers = nt;
    }
    if (evidence(d, a, &r, op)) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    op->at_us = now;
    payment_row(p, q, &b, op, transfer_id, authz_id, now);
    if (tl && ac_prices_topup_row(a, q, b.user_id, now) != 0) op->result = AC_EC_INTERNAL;
}

/* ==== step-up answers and expiry ===============================================================
 */

/* End a pending step-up: post or void its hold (role "post"/"void"), settle or release the spend,
 * record `kind`, queue the rows. conf/jws/kid: the user's answer (NULL for an expiry). Returns
 * AC_EC_OK, the ledger's refusal of a post (nothing changed), or AC_EC_INTERNAL (batch failed). */
static enum ac_ec finish(struct ac_payments *p, struct ac_domain *d, struct ac_apply *a,
                         struct pend *e, enum ac_ev_kind kind, enum authz_status zs,
                         enum ac_pay_status ps, const struct ac_risk_decision *dec, const char *jws,
                         const char *kid, struct ac_payop *op)
{
    int64_t now = ac_apply_now(a);
    int post = kind == AC_EV_PAYMENT_CONFIRM;
    struct mandate *m = ac_strmap_get(&p->mandates, e->ch.mandate);
    if (m == NULL) return AC_EC_INTERNAL;
    int topup = e->tok_hold[0] != '\0';
    size_t nt = topup ? 2 : 1;
    struct ac_transfer_req tr[2];
    memset(tr, 0, sizeof tr);
    struct ac_transfer_req *const t = &tr[0];
    ac_payment_transfer_id(e->payment, post ? "post" : "void", tr[0].id);
    memcpy(tr[0].pending_id, e->hold_tid, sizeof tr[0].pending_id);
    memcpy(tr[0].asset, e->ch.asset, sizeof tr[0].asset);
    if (topup) { /* a top-up's token hold ends with its fiat hold, as one linked chain */
        ac_payment_transfer_id(e->payment, post ? "tokens.post" : "tokens.void", tr[1].id);
        memcpy(tr[1].pending_id, e->tok_hold, sizeof tr[1].pending_id);
        memcpy(tr[1].asset, e->tok_asset, sizeof tr[1].asset);
        tr[0].flags = AC_TF_LINKED;
    }
    for (size_t i = 0; i < nt; i++) {
        tr[i].amount = -1; /* the full pending amount */
        tr[i].flags |= post ? AC_TF_POST_PENDING : AC_TF_VOID_PENDING;
    }
    struct ac_transfer_result rs[2], res;
    if (ac_state_create_transfers(ac_apply_ledger(a), tr, nt, now, rs) != AC_EC_OK) {
        ac_apply_abort(a);
        return AC_EC_INTERNAL;
    }
    res = rs[0];
    for (size_t i = 0; i < nt; i++)
        if (rs[i].ec != AC_EC_OK && rs[i].ec != AC_EC_LINKED_EVENT_FAILED) {
            res = rs[i];
            break;
        }
    if (res.ec == AC_EC_OK && nt == 2 && rs[1].replayed) res.replayed = 1;
    if (res.ec == AC_EC_OK && res.replayed) res.ec = AC_EC_TRANSFER_EXISTS_DIFFERENT;
    if (res.ec != AC_EC_OK && post) return res.ec;
    /* a void the ledger refuses: the hold already ended by its own timeout (the server was down
     * past it); the money is released either way */
    int voided = res.ec == AC_EC_OK;
    int rc = post ? ac_spend_settle(&m->spend, m->m.tz_offset_s, now, &e->hold)
                  : ac_spend_release(&m->spend, m->m.tz_offset_s, now, &e->hold);
    if (rc != 0) {
        ac_apply_abort(a);
        return AC_EC_INTERNAL;
    }
    mark_dirty(p, m);

    struct ac_binding_state b;
    if (ac_registry_binding_state(d->registry, e->binding, &b) != AC_EC_OK) {
        ac_apply_abort(a);
        return AC_EC_INTERNAL;
    }
    struct ac_ev_transfer evt[2] = {{.id = voided ? t->id : e->hold_tid,
                                     .debit = e->debit,
                                     .credit = e->credit,
                                     .amount = e->hold.amount,
                                     .asset = e->ch.asset,
                                     .scale = e->ch.scale,
                                     .flags = voided ? t->flags : AC_TF_PENDING,
                                     .pending_id = voided ? e->hold_tid : NULL}};
    if (topup)
        evt[1] = (struct ac_ev_transfer){.id = voided ? tr[1].id : e->tok_hold,
                                         .debit = e->tok_debit,
                                         .credit = e->tok_credit,
                                         .amount = e->tok_amount,
                                         .asset = e->tok_asset,
                                         .scale = e->tok_scale,
                                         .flags = voided ? tr[1].flags : AC_TF_PENDING,
                                         .pending_id = voided ? e->tok_hold : NULL};
    const char *reasons[AC_RR__COUNT + 1];
    size_t nr = 0;
    if (dec)
        for (unsigned i = 0; i < dec->n; i++)
            reasons[nr++] = ac_reason_code(dec->reasons[i]);
    uint8_t ch[32];
    char category[AC_ID_MAX + 1]; /* as apply_answer decided a confirmation with it */
    if (ac_registry_merchant_category(d->registry, e->ch.payee, category) != AC_EC_OK)
        category[0] = '\0';
    struct ac_ev_record r = {0};
    r.kind = kind;
    r.body.payment = e->payment;
    r.body.user = e->ch.payer;
    r.body.agent = e->ch.agent;
    r.body.payee = e->ch.payee;
    r.body.category = category[0] ? category : NULL;
    r.body.amount = (struct ac_ev_amount){1, e->ch.amount, e->ch.asset, e->ch.scale};
    if (topup && e->tok_ref[0] && strcmp(e->tok_ref, "0") != 0) r.body.ref = e->tok_ref;
    docref(&r.body.binding, b.jws_sha256, e->binding, b.user_kid);
    docref(&r.body.mandate, m->jws_sha256, m->m.id, m->kid);
    if (jws) {
        doc_sha256(jws, ch);
        docref(&r.body.confirmation, ch, e->z->id, kid);
    }
    r.body.reasons = nr ? reasons : NULL;
    r.body.nreasons = nr;
    r.body.transfers = evt;
    r.body.ntransfers = nt;
    if (evidence(d, a, &r, op)) return AC_EC_INTERNAL;

    char t_us[24], seq[24] = "", leaf[65] = "";
    snprintf(t_us, sizeof t_us, "%lld", (long long)now);
    if (op->has_evidence) {
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)op->ev_seq);
        hex(op->ev_leaf, 32, leaf);
    }
    const char *vz[] = {
        e->z->id, authz_names[zs], kid ? kid : "", jws ? jws : "", t_us, voided ? t->id : "", seq,
        leaf};
    const char *vp[] = {e->payment, ac_pay_status_name(ps), t_us};
    if (ac_apply_stmt(a, "pay_authz_decide", 8, vz) || ac_apply_stmt(a, "pay_status", 3, vp))
        return AC_EC_INTERNAL;
    memcpy(op->payment_id, e->payment, sizeof op->payment_id);
    memcpy(op->transfer_id, voided ? t->id : "", voided ? sizeof t->id : 1);
    if (ps == AC_PAY_SETTLED) {
        struct payment *pe = ac_strmap_get(&p->payments, e->payment);
        if (pe) pe->settled = 1;
    }
    op->status = ps;
    op->at_us = now;
    e->z->status = zs;
    e->z->p = NULL;
    pending_remove(p, e);
    free(e);
    return AC_EC_OK;
}

static void apply_answer(struct ac_payments *p, struct ac_domain *d, struct ac_payop *op,
                         struct ac_apply *a)
{
    const struct ac_stepup_confirmation *c = op->conf;
    struct authz *z = ac_strmap_get(&p->authz, c->authorization);
    if (z == NULL) {
        op->result = AC_EC_AUTHORIZATION_UNKNOWN;
        return;
    }
    struct pend *e = z->p;
    if (e &&
        (strcmp(c->nonce, e->ch.nonce) != 0 || strcmp(c->payment_digest, e->payment_digest) != 0)) {
        op->result = AC_EC_AUTHORIZATION_MISMATCH;
        return;
    }
    int64_t now = ac_apply_now(a);
    if (z->status == AZ_EXPIRED || (e && now >= e->exp_us)) {
        op->result = AC_EC_AUTHORIZATION_EXPIRED;
        return;
    }
    if (e == NULL) {
        op->result = AC_EC_AUTHORIZATION_ALREADY_DECIDED;
        return;
    }
    memcpy(op->payment_id, e->payment, sizeof op->payment_id);
    if (c->decision == AC_STEPUP_DECLINE) {
        op->result = finish(p, d, a, e, AC_EV_PAYMENT_DECLINE, AZ_DECLINED, AC_PAY_DECLINED, NULL,
                            op->jws, op->kid, op);
        return;
    }
    /* a confirmation is decided once more: the binding or the mandate may have been revoked or
     * have expired since the hold was taken (caps and uses are already reserved by the hold) */
    struct mandate *m = ac_strmap_get(&p->mandates, e->ch.mandate);
    struct ac_binding_state b;
    if (m == NULL || ac_registry_binding_state(d->registry, e->binding, &b) != AC_EC_OK) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    struct ac_pay_request q;
    memset(&q, 0, sizeof q);
    q.op = e->ch.op;
    memcpy(q.payee, e->ch.payee, sizeof q.payee);
    memcpy(q.asset, e->ch.asset, sizeof q.asset);
    q.amount = e->ch.amount;
    char category[AC_ID_MAX + 1];
    if (ac_registry_merchant_category(d->registry, e->ch.payee, category) == AC_EC_OK)
        memcpy(q.category, category, sizeof q.category);
    struct ac_risk_input in;
    risk_input(&in, &q, e->binding, &b, m, now);
    in.hold = &e->hold;
    in.confirmed = 1;
    ac_risk_decide(&in, &op->decision);
    if (op->decision.verdict == AC_VERDICT_ALLOW)
        op->result = finish(p, d, a, e, AC_EV_PAYMENT_CONFIRM, AZ_CONFIRMED, AC_PAY_SETTLED, NULL,
                            op->jws, op->kid, op);
    else
        op->result = finish(p, d, a, e, AC_EV_PAYMENT_DECLINE, AZ_DENIED, AC_PAY_DECLINED,
                            &op->decision, op->jws, op->kid, op);
}

struct sweep {
    struct ac_payments *p;
    struct ac_apply *a;
};

/* Expire one pending step-up past its expiry (ac_payments_tick's sweep): 0, or -1. */
static int expire_pending(void *item, void *cls)
{
    struct pend *e = item;
    struct ac_payments *p = ((struct sweep *)cls)->p;
    struct ac_apply *a = ((struct sweep *)cls)->a;
    struct ac_payop op;
    memset(&op, 0, sizeof op);
    if (finish(p, ac_apply_domain(a), a, e, AC_EV_PAYMENT_EXPIRE, AZ_EXPIRED, AC_PAY_EXPIRED, NULL,
               NULL, NULL, &op) != AC_EC_OK)
        return -1;
    return 0;
}

int ac_payments_tick(struct ac_payments *p, struct ac_apply *a)
{
    struct sweep sw = {p, a};
    return ac_deadlines_sweep(&p->pending, ac_apply_now(a), expire_pending, &sw);
}

/* ==== refunds ==================================================================================
 */

static void apply_refund(struct ac_payments *p, struct ac_domain *d, struct ac_payop *op,
                         struct ac_apply *a)
{
    const struct ac_refund_request *q = op->refund;
    int64_t now = ac_apply_now(a);
    struct refund *old = ac_strmap_get(&p->refunds, q->id);
    if (old) {
        if (memcmp(old->digest, q->digest, sizeof old->digest) == 0)
            op->replayed = 1;
        else
            op->result = AC_EC_REFUND_EXISTS;
        return;
    }
    struct payment *pe = ac_strmap_get(&p->payments, q->payment);
    if (pe == NULL) {
        op->result = AC_EC_PAYMENT_UNKNOWN;
        return;
    }
    if (!pe->settled) {
        op->result = AC_EC_PAYMENT_NOT_REFUNDABLE;
        return;
    }
    if (q->amount <= 0 || q->amount > pe->amount - pe->refunded) {
        op->result = AC_EC_REFUND_EXCEEDS_PAYMENT;
        return;
    }
    /* The ledger's balance rules checked first: the ledger records an exceeds_credits /
     * exceeds_debits failure against the transfer id for good (ledger/state.h), which would burn
     * the refund id; refused here, the merchant can retry the same refund once funded. */
    const struct ac_account *da = ac_state_account(ac_apply_ledger(a), q->debit),
                            *ca = ac_state_account(ac_apply_ledger(a), q->credit);
    if (da && (da->flags & AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
        (da->debits_pending > da->credits_posted ||
         da->debits_posted > da->credits_posted - da->debits_pending ||
         q->amount > da->credits_posted - da->debits_pending - da->debits_posted)) {
        op->result = AC_EC_EXCEEDS_CREDITS;
        return;
    }
    if (ca && (ca->flags & AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
        (ca->credits_pending > ca->debits_posted ||
         ca->credits_posted > ca->debits_posted - ca->credits_pending ||
         q->amount > ca->debits_posted - ca->credits_pending - ca->credits_posted)) {
        op->result = AC_EC_EXCEEDS_DEBITS;
        return;
    }
    struct ac_transfer_req t;
    memset(&t, 0, sizeof t);
    memcpy(t.id, q->transfer_id, sizeof t.id);
    memcpy(t.debit, q->debit, sizeof t.debit);
    memcpy(t.credit, q->credit, sizeof t.credit);
    memcpy(t.asset, q->asset, sizeof t.asset);
    t.amount = q->amount;
    struct ac_transfer_result res;
    if (ac_state_create_transfers(ac_apply_ledger(a), &t, 1, now, &res) != AC_EC_OK) {
        ac_apply_abort(a);
        op->result = AC_EC_INTERNAL;
        return;
    }
    if (res.ec == AC_EC_OK && res.replayed) res.ec = AC_EC_TRANSFER_EXISTS_DIFFERENT;
    if (res.ec != AC_EC_OK) { /* e.g. exceeds_credits: the merchant is short; nothing moved */
        op->result = res.ec;
        return;
    }
    struct refund *rf = malloc(sizeof *rf);
    if (rf == NULL || ac_strmap_reserve(&p->refunds, 1)) {
        free(rf);
        ac_apply_abort(a); /* the transfer is in the ledger's state: the batch must fail */
        op->result = AC_EC_INTERNAL;
        return;
    }
    memcpy(rf->id, q->id, sizeof rf->id);
    memcpy(rf->digest, q->digest, sizeof rf->digest);
    ac_strmap_put(&p->refunds, rf);
    pe->refunded += q->amount;
    op->refunded = pe->refunded;
    /* the mandate's spend is left as it is: caps limit what the agent spent (docs) */

    struct ac_ev_transfer evt = {.id = q->transfer_id,
                                 .debit = q->debit,
                                 .credit = q->credit,
                                 .amount = q->amount,
                                 .asset = q->asset,
                                 .scale = q->scale};
    struct ac_ev_record r = {0};
    r.kind = AC_EV_REFUND;
    r.body.payment = q->payment;
    r.body.user = q->user;
    r.body.payee = q->merchant;
    r.body.ref = q->id;
    r.body.amount = (struct ac_ev_amount){1, q->amount, q->asset, q->scale};
    r.body.request = (struct ac_ev_request){1,          q->sig.base,    q->sig.base_len,
                                            q->sig.sig, q->sig.sig_len, q->sig.keyid,
                                            1,          q->sig.body,    q->sig.body_len};
    r.body.transfers = &evt;
    r.body.ntransfers = 1;
    if (evidence(d, a, &r, op)) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    char dg[65], amt[24], t_us[24], seq[24] = "", leaf[65] = "", tot[24];
    hex(q->digest, 32, dg);
    snprintf(amt, sizeof amt, "%lld", (long long)q->amount);
    snprintf(t_us, sizeof t_us, "%lld", (long long)now);
    snprintf(tot, sizeof tot, "%lld", (long long)pe->refunded);
    if (op->has_evidence) {
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)op->ev_seq);
        hex(op->ev_leaf, 32, leaf);
    }
    const char *v[] = {
        q->id, dg,       q->payment, q->merchant,    q->user,
        amt,   q->asset, q->reason,  q->transfer_id, q->sig.keyid ? q->sig.keyid : "",
        seq,   leaf,     t_us};
    const char *vp[] = {q->payment, tot, t_us};
    if (ac_apply_stmt(a, "pay_refund_ins", 13, v) || ac_apply_stmt(a, "pay_refunded", 3, vp)) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    memcpy(op->payment_id, q->payment, sizeof op->payment_id);
    memcpy(op->transfer_id, q->transfer_id, sizeof op->transfer_id);
    op->at_us = now;
}

/* ==== the op ===================================================================================
 */

void ac_payments_apply(struct ac_payop *op, struct ac_apply *a)
{
    struct ac_domain *d = ac_apply_domain(a);
    op->result = AC_EC_OK;
    op->replayed = 0;
    op->has_evidence = 0;
    op->status = 0;
    op->ledger_ec = AC_EC_OK;
    op->transfer_id[0] = op->payment_id[0] = '\0';
    op->at_us = ac_apply_now(a);
    if (d == NULL || d->registry == NULL || d->payments == NULL) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    struct ac_payments *p = d->payments;
    /* each kind with the members it cannot do without */
    void (*apply)(struct ac_payments *, struct ac_domain *, struct ac_payop *, struct ac_apply *) =
        NULL;
    int complete = 0;
    switch (op->kind) {
    case AC_PAYOP_MANDATE:
        apply = apply_mandate, complete = op->mandate && op->jws;
        break;
    case AC_PAYOP_MANDATE_REVOKE:
        apply = apply_mandate_revoke, complete = op->jws != NULL;
        break;
    case AC_PAYOP_PAY:
        apply = apply_pay, complete = op->pay != NULL;
        break;
    case AC_PAYOP_ANSWER:
        apply = apply_answer, complete = op->conf && op->jws;
        break;
    case AC_PAYOP_REFUND:
        apply = apply_refund, complete = op->refund != NULL;
        break;
    default:
        break;
    }
    if (apply != NULL && complete)
        apply(p, d, op, a);
    else
        op->result = AC_EC_INTERNAL;
}

static void payments_op(struct ac_cmd *c, struct ac_apply *a)
{
    ac_payments_apply(c->op_arg, a);
}

void ac_payments_cmd(struct ac_cmd *cmd, struct ac_payop *op)
{
    cmd->kind = AC_CMD_OP;
    cmd->n = 1;
    cmd->op = payments_op;
    cmd->op_arg = op;
}

/* ==== load =====================================================================================
 */

static int64_t col64(const PGresult *r, int i)
{
    return strtoll(PQgetvalue(r, 0, i), NULL, 10);
}

static int load_mandate(void *cls, const PGresult *r)
{
    struct ac_payments *f = cls;
    const char *id = PQgetvalue(r, 0, 0), *jws = PQgetvalue(r, 0, 1);
    struct ac_jws j;
    const char *detail = NULL;
    struct mandate *m = calloc(1, sizeof *m);
    if (m == NULL || ac_strmap_reserve(&f->mandates, 1)) {
        free(m);
        return -1;
    }
    enum ac_ec ec = ac_jws_parse(jws, strlen(jws), &j, &detail);
    if (ec == AC_EC_OK) ec = ac_mandate_jws_check(&j, &detail);
    if (ec == AC_EC_OK) ec = ac_mandate_parse(j.payload_json, (unsigned)col64(r, 5), &m->m, NULL);
    ac_jws_clear(&j);
    if (ec == AC_EC_OK && strcmp(m->m.id, id) != 0) ec = AC_EC_MANDATE_INVALID;
    if (ec != AC_EC_OK || (m->jws = strdup(jws)) == NULL) {
        fprintf(stderr, "payments: cannot load mandate '%s': %s\n", id, ac_ec_code(ec));
        mandate_free(m);
        return -1;
    }
    snprintf(m->kid, sizeof m->kid, "%s", PQgetvalue(r, 0, 2));
    doc_sha256(jws, m->jws_sha256);
    m->revoked = m->pub_revoked = strcmp(PQgetvalue(r, 0, 3), "revoked") == 0;
    m->created_us = col64(r, 4);
    struct ac_spend *s = &m->spend;
    int64_t *v[] = {&s->day.start_s, &s->day.spent, &s->day.held,      &s->week.start_s,
                    &s->week.spent,  &s->week.held, &s->month.start_s, &s->month.spent,
                    &s->month.held,  &s->spent,     &s->held,          &s->uses,
                    &s->holds};
    for (int i = 0; i < 13; i++)
        *v[i] = col64(r, 6 + i);
    m->visible = 1;
    ac_strmap_put(&f->mandates, m);
    return 0;
}

static int load_payment(void *cls, const PGresult *r)
{
    struct ac_payments *f = cls;
    struct payment *pe = malloc(sizeof *pe);
    const char *id = PQgetvalue(r, 0, 0), *dg = PQgetvalue(r, 0, 1);
    size_t n = 0;
    if (pe == NULL || ac_strmap_reserve(&f->payments, 1) || strlen(id) > AC_ID_MAX || strlen(dg) != 64) {
        free(pe);
        return -1;
    }
    memcpy(pe->id, id, strlen(id) + 1);
    for (n = 0; n < 32; n++) {
        unsigned v;
        if (sscanf(dg + 2 * n, "%2x", &v) != 1) break;
        pe->digest[n] = (uint8_t)v;
    }
    if (n != 32) {
        free(pe);
        return -1;
    }
    pe->settled = strcmp(PQgetvalue(r, 0, 2), "settled") == 0;
    pe->amount = col64(r, 3);
    pe->refunded = col64(r, 4);
    ac_strmap_put(&f->payments, pe);
    return 0;
}

static int load_refund(void *cls, const PGresult *r)
{
    struct ac_payments *f = cls;
    struct refund *rf = malloc(sizeof *rf);
    const char *id = PQgetvalue(r, 0, 0), *dg = PQgetvalue(r, 0, 1);
    if (rf == NULL || ac_strmap_reserve(&f->refunds, 1) || strlen(id) > AC_ID_MAX || strlen(dg) != 64) {
        free(rf);
        return -1;
    }
    memcpy(rf->id, id, strlen(id) + 1);
    for (size_t n = 0; n < 32; n++) {
        unsigned v;
        if (sscanf(dg + 2 * n, "%2x", &v) != 1) {
            free(rf);
            return -1;
        }
        rf->digest[n] = (uint8_t)v;
    }
    ac_strmap_put(&f->refunds, rf);
    return 0;
}

static int load_authz(void *cls, const PGresult *r)
{
    struct ac_payments *f = cls;
    const char *id = PQgetvalue(r, 0, 0), *status = PQgetvalue(r, 0, 1);
    struct authz *z = calloc(1, sizeof *z);
    if (z == NULL || ac_strmap_reserve(&f->authz, 1) || strlen(id) > AC_ID_MAX) {
        free(z);
        return -1;
    }
    memcpy(z->id, id, strlen(id) + 1);
    for (int i = AZ_PENDING; i <= AZ_DENIED; i++)
        if (strcmp(status, authz_names[i]) == 0) z->status = (enum authz_status)i;
    if (z->status == AZ_PENDING) {
        struct pend *e = calloc(1, sizeof *e);
        const char *text = PQgetvalue(r, 0, 2);
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        enum ac_ec ec = e && j ? ac_stepup_challenge_parse(j, &e->ch, NULL) : AC_EC_INTERNAL;
        json_decref(j);
        if (ec != AC_EC_OK || ac_stepup_payment_digest(&e->ch, e->payment_digest) != 0) {
            fprintf(stderr, "payments: cannot load authorization '%s'\n", id);
            free(e);
            free(z);
            return -1;
        }
        e->z = z;
        e->hold.amount = col64(r, 3);
        e->hold.at_us = col64(r, 4);
        snprintf(e->payment, sizeof e->payment, "%s", PQgetvalue(r, 0, 5));
        snprintf(e->binding, sizeof e->binding, "%s", PQgetvalue(r, 0, 6));
        snprintf(e->hold_tid, sizeof e->hold_tid, "%s", PQgetvalue(r, 0, 7));
        if (ac_wallet_account(1, PQgetvalue(r, 0, 8), PQgetvalue(r, 0, 10), e->debit) != 0)
            e->debit[0] = '\0';
        if (ac_wallet_account(0, PQgetvalue(r, 0, 9), PQgetvalue(r, 0, 10), e->credit) != 0)
            e->credit[0] = '\0';
        e->exp_us = e->ch.exp * 1000000;
        snprintf(e->tok_hold, sizeof e->tok_hold, "%s", PQgetvalue(r, 0, 11));
        snprintf(e->tok_debit, sizeof e->tok_debit, "%s", PQgetvalue(r, 0, 12));
        snprintf(e->tok_credit, sizeof e->tok_credit, "%s", PQgetvalue(r, 0, 13));
        snprintf(e->tok_asset, sizeof e->tok_asset, "%s", PQgetvalue(r, 0, 14));
        e->tok_scale = (unsigned)col64(r, 15);
        e->tok_amount = col64(r, 16);
        snprintf(e->tok_ref, sizeof e->tok_ref, "%s", PQgetvalue(r, 0, 17));
        z->p = e;
        pending_add(f, e);
    } else if (z->status == 0) {
        free(z);
        return -1;
    }
    ac_strmap_put(&f->authz, z);
    return 0;
}

int ac_payments_load(struct ac_payments *p, PGconn *c)
{
    struct ac_payments *f = ac_payments_new(&p->cfg);
    if (f == NULL) return -1;
    PGresult *r = PQexec(c, "begin isolation level repeatable read read only");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    enum ac_qs qs = ok ? AC_QS_ONE_RESULT : AC_QS_SOFT_ERROR;
    if (qs > 0) qs = ac_db_stream(c, "pay_load_mandates", load_mandate, f);
    if (qs > 0) qs = ac_db_stream(c, "pay_load_payments", load_payment, f);
    if (qs > 0) qs = ac_db_stream(c, "pay_load_authz", load_authz, f);
    if (qs > 0) qs = ac_db_stream(c, "pay_load_refunds", load_refund, f);
    r = PQexec(c, qs > 0 ? "commit" : "rollback");
    PQclear(r);
    if (qs <= 0) {
        ac_payments_free(f);
        return -1;
    }
    /* swap the content in; readers see the new mandates at once */
    pthread_rwlock_wrlock(&p->lock);
    struct ac_strmap om = p->mandates, op = p->payments, oz = p->authz, orf = p->refunds;
    p->mandates = f->mandates;
    p->payments = f->payments;
    p->authz = f->authz;
    p->refunds = f->refunds;
    pthread_rwlock_unlock(&p->lock);
    ac_deadlines_move(&p->pending, &f->pending);
    p->dirty = p->fresh = NULL;
    p->nrows = 0;
    cols_reset(p->cols, PC__COUNT);
    cols_reset(p->scols, SPEND_COLS);
    f->mandates = om;
    f->payments = op;
    f->authz = oz;
    f->refunds = orf;
    ac_payments_free(f);
    return 0;
}

/* ==== lent to ledger/tabs.c (payments_int.h) ===================================================
 */

#include "ledger/payments_int.h"

struct ac_pay_mandate *ac_payments_mandate(struct ac_payments *p, const char *id)
{
    return (struct ac_pay_mandate *)ac_strmap_get(&p->mandates, id);
}

const struct ac_mandate *ac_pay_mandate_doc(const struct ac_pay_mandate *m)
{
    return &((const struct mandate *)m)->m;
}

struct ac_spend *ac_pay_mandate_spend(struct ac_pay_mandate *m)
{
    return &((struct mandate *)m)->spend;
}

void ac_pay_mandate_touch(struct ac_payments *p, struct ac_pay_mandate *m)
{
    mark_dirty(p, (struct mandate *)m);
}

void ac_pay_mandate_docref(const struct ac_pay_mandate *m, struct ac_ev_docref *out)
{
    const struct mandate *x = (const struct mandate *)m;
    docref(out, x->jws_sha256, x->m.id, x->kid);
}

void ac_payments_risk_input(struct ac_risk_input *in, const struct ac_pay_request *q,
                            const char *binding, const struct ac_binding_state *b,
                            const struct ac_pay_mandate *m, int64_t now)
{
    risk_input(in, q, binding, b, (const struct mandate *)m, now);
}
