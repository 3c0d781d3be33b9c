/* Micropayment tabs on the sequencer (see tabs.h). */
#include "ledger/tabs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/deadlines.h"
#include "ledger/domain.h"
#include "ledger/evlog.h"
#include "ledger/payments_int.h"
#include "protocol/sha256.h"
#include "protocol/strmap.h"
#include "risk/spend.h"

/* ==== the state ================================================================================
 */

/* A settled voucher: its sequence and the SHA-256 of its text (replays). */
struct vh {
    int64_t seq;
    uint8_t hash[32];
};

struct tab {
    char id[AC_ID_MAX + 1];
    uint8_t digest[32];
    enum ac_tab_status status;
    /* open tabs only (a finished tab keeps its id, digest, status and payee) */
    char mandate[AC_ID_MAX + 1], binding[AC_ID_MAX + 1], user[AC_ID_MAX + 1], agent[AC_ID_MAX + 1],
        payee[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    int64_t hold, settled, last_seq, expires_us;
    struct ac_spend_hold sh;
    uint32_t holds; /* hold transfers taken; the current one is number holds */
    char debit[AC_ID_MAX + 1], credit[AC_ID_MAX + 1];
    struct vh *vh;
    size_t nvh, capvh;
    struct ac_deadline open; /* on the open list, with deadline expires_us */
};

struct ac_tabs {
    struct ac_strmap tabs;    /* struct tab */
    struct ac_deadlines open; /* open tabs, by expiry */
};

static const char *tab_key(const void *v)
{
    return ((const struct tab *)v)->id;
}

static void tab_free(void *v)
{
    struct tab *t = v;
    if (t) free(t->vh);
    free(t);
}

static void init(struct ac_tabs *t)
{
    memset(&t->tabs, 0, sizeof t->tabs);
    t->tabs.key = tab_key;
    ac_deadlines_init(&t->open);
}

struct ac_tabs *ac_tabs_new(void)
{
    struct ac_tabs *t = calloc(1, sizeof *t);
    if (t) init(t);
    return t;
}

void ac_tabs_free(struct ac_tabs *t)
{
    if (t == NULL) return;
    ac_strmap_free(&t->tabs, tab_free);
    free(t);
}

void ac_tabs_counts(struct ac_tabs *t, struct ac_tabs_counts *out)
{
    out->tabs = t->tabs.n;
    out->open = ac_deadlines_count(&t->open);
}

static void open_add(struct ac_tabs *s, struct tab *t)
{
    ac_deadlines_add(&s->open, &t->open, t, t->expires_us);
}

static void open_remove(struct ac_tabs *s, struct tab *t)
{
    ac_deadlines_remove(&s->open, &t->open);
    free(t->vh);
    t->vh = NULL;
    t->nvh = t->capvh = 0;
}

int64_t ac_tabs_next_deadline(struct ac_tabs *s)
{
    return ac_deadlines_next(&s->open);
}

/* ==== small helpers ============================================================================
 */

static const char *const status_names[] = {"", "open", "closed", "expired", "denied", "failed"};

const char *ac_tab_status_name(enum ac_tab_status s)
{
    return (int)s >= AC_TAB_OPEN && s <= AC_TAB_FAILED ? status_names[s] : "";
}

enum ac_tab_status ac_tab_status_from_name(const char *s)
{
    for (int i = AC_TAB_OPEN; i <= AC_TAB_FAILED; i++)
        if (strcmp(s, status_names[i]) == 0) return (enum ac_tab_status)i;
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

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* SHA-256 over NUL-terminated fields, each with its NUL. */
static void hash_fields(const char *const *f, size_t n, uint8_t out[32])
{
    char buf[1024];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(f[i]) + 1;
        if (len + l > sizeof buf) l = sizeof buf - len; /* cannot happen: fields are bounded */
        memcpy(buf + len, f[i], l);
        len += l;
    }
    ac_sha256(buf, len, out);
}

void ac_tab_transfer_id(const char *tab, const char *role, uint32_t n, char out[AC_ID_MAX + 1])
{
    char num[16];
    snprintf(num, sizeof num, "%u", n);
    const char *f[] = {"agentclear/v1/tab-transfer", tab, role, num};
    uint8_t d[32];
    hash_fields(f, 4, d);
    memcpy(out, "tt.", 3);
    hex(d, 16, out + 3);
}

void ac_tab_open_digest(struct ac_tab_open_request *q)
{
    char hold[AC_AMOUNT_STR_MAX], ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", (long long)q->ttl_s);
    const char *f[] = {"agentclear/v1/tab-open",
                       q->binding,
                       q->mandate,
                       q->payee,
                       q->asset,
                       ac_amount_format(q->hold, q->scale, hold),
                       ttl};
    hash_fields(f, sizeof f / sizeof *f, q->digest);
}

static void i64s(char out[24], int64_t v)
{
    snprintf(out, 24, "%lld", (long long)v);
}

/* ==== statements ===============================================================================
 */

static const struct ac_db_stmt writer_stmts[] = {
    {"tab_ins",
     "insert into ac_tabs (id, request_digest, mandate_id, binding_id, user_id, agent_id, payee, "
     "asset, hold, ttl_s, expires_us, status, verdict, autonomy, reasons, error, "
     "hold_transfer_id, holds, evidence_seq, evidence_leaf, created_us, updated_us, ended_us) "
     "values ($1, decode($2, 'hex'), $3, $4, $5, $6, $7, $8, $9::int8, $10::int8, $11::int8, $12, "
     "$13, $14::int2, $15, nullif($16, ''), nullif($17, ''), $18::int4, nullif($19, '')::int8, "
     "decode(nullif($20, ''), 'hex'), $21::int8, $21::int8, nullif($22, '')::int8)",
     22},
    {"tab_upd",
     "update ac_tabs set status = $2, settled = $3::int8, last_seq = $4::int8, "
     "hold_transfer_id = nullif($5, ''), holds = $6::int4, updated_us = $7::int8, "
     "ended_us = nullif($8, '')::int8 where id = $1",
     8},
    {"tab_stl_ins",
     "insert into ac_tab_settlements (tab_id, kind, voucher_seq, cumulative, amount, released, "
     "voucher_jws, voucher_hash, keyid, post_id, hold_id, void_id, evidence_seq, evidence_leaf, "
     "created_us) values ($1, $2, nullif($3, '')::int8, $4::int8, $5::int8, $6::int8, "
     "nullif($7, ''), decode(nullif($8, ''), 'hex'), nullif($9, ''), nullif($10, ''), "
     "nullif($11, ''), nullif($12, ''), nullif($13, '')::int8, decode(nullif($14, ''), 'hex'), "
     "$15::int8)",
     15},
    {"tab_load",
     "select t.id, encode(t.request_digest, 'hex'), t.status, t.mandate_id, t.binding_id, "
     "t.user_id, t.agent_id, t.payee, t.asset, a.scale, t.hold, t.settled, t.last_seq, "
     "t.expires_us, t.holds, t.created_us from ac_tabs t join ac_assets a on a.code = t.asset "
     "order by t.seq",
     0},
    {"tab_load_vouchers",
     "select s.tab_id, s.voucher_seq, encode(s.voucher_hash, 'hex') from ac_tab_settlements s "
     "join ac_tabs t on t.id = s.tab_id where t.status = 'open' and s.voucher_hash is not null "
     "order by s.seq",
     0},
};

#define TAB_SELECT                                                                                 \
    "select t.id, t.mandate_id, t.binding_id, t.user_id, t.agent_id, t.payee, t.asset, a.scale, "  \
    "t.hold, t.ttl_s, t.expires_us, t.settled, t.last_seq, t.status, t.verdict, t.autonomy, "      \
    "t.reasons, coalesce(t.error, ''), coalesce(t.hold_transfer_id, ''), "                         \
    "coalesce(t.evidence_seq, -1), coalesce(encode(t.evidence_leaf, 'hex'), ''), t.created_us, "   \
    "t.updated_us, coalesce(t.ended_us, 0), t.seq from ac_tabs t "                                 \
    "join ac_assets a on a.code = t.asset "

static const struct ac_db_stmt reader_stmts[] = {
    {"tab_get", TAB_SELECT "where t.id = $1", 1},
    {"tab_list_user",
     TAB_SELECT "where t.user_id = $1 and t.seq < $2::int8 order by t.seq desc limit $3::int4", 3},
    {"tab_list_payee",
     TAB_SELECT "where t.payee = $1 and t.seq < $2::int8 order by t.seq desc limit $3::int4", 3},
    {"tab_settlements",
     "select kind, coalesce(voucher_seq, 0), cumulative, amount, released, "
     "coalesce(post_id, ''), coalesce(hold_id, ''), coalesce(void_id, ''), "
     "coalesce(evidence_seq, -1), coalesce(encode(evidence_leaf, 'hex'), ''), created_us "
     "from (select * from ac_tab_settlements where tab_id = $1 order by seq desc "
     "limit $2::int4) s order by seq",
     2},
};

int ac_tabs_register_statements(void)
{
    if (ac_db_register(AC_DB_WRITER, writer_stmts, sizeof writer_stmts / sizeof *writer_stmts))
        return -1;
    /* also on the writer's connection: an Idempotency-Key's answer is rendered there, inside
     * the batch's transaction (server/idem.h), and these answers read what the batch wrote */
    return ac_db_register(AC_DB_READER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts) ||
           ac_db_register(AC_DB_WRITER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts);
}

/* ==== evidence =================================================================================
 */

/* Append r when the domain keeps a log; its seq and leaf into op. 0, or -1 after failing the
 * batch. */
static int evidence(struct ac_domain *d, struct ac_apply *a, struct ac_ev_record *r,
                    struct ac_tabop *op)
{
    if (d->evlog == NULL) return 0;
    if (ac_evlog_append(d->evlog, a, r, &op->ev_seq, op->ev_leaf) != 0) {
        ac_apply_abort(a);
        return -1;
    }
    op->has_evidence = 1;
    return 0;
}

static void binding_docref(struct ac_ev_docref *r, const struct ac_binding_state *b, const char *id)
{
    r->present = 1;
    memcpy(r->hash, b->jws_sha256, AC_EV_HASH_LEN);
    r->id = id;
    r->kid = b->user_kid[0] ? b->user_kid : NULL;
}

static void ev_strings(const struct ac_tabop *op, char seq[24], char leaf[65])
{
    seq[0] = leaf[0] = '\0';
    if (op->has_evidence) {
        snprintf(seq, 24, "%llu", (unsigned long long)op->ev_seq);
        hex(op->ev_leaf, 32, leaf);
    }
}

/* ==== open =====================================================================================
 */

static void apply_open(struct ac_tabs *s, struct ac_domain *d, struct ac_tabop *op,
                       struct ac_apply *a)
{
    const struct ac_tab_open_request *q = op->open;
    int64_t now = ac_apply_now(a);
    struct tab *old = ac_strmap_get(&s->tabs, q->id);
    if (old) {
        if (memcmp(old->digest, q->digest, sizeof old->digest) == 0)
            op->replayed = 1;
        else
            op->result = AC_EC_TAB_EXISTS;
        return;
    }
    struct ac_pay_mandate *m = ac_payments_mandate(d->payments, q->mandate);
    if (m == NULL) {
        op->result = AC_EC_MANDATE_UNKNOWN;
        return;
    }
    struct ac_binding_state b;
    if (ac_registry_binding_state(d->registry, q->binding, &b) != AC_EC_OK) {
        op->result = AC_EC_BINDING_UNKNOWN;
        return;
    }
    struct tab *t = calloc(1, sizeof *t);
    if (t == NULL || ac_strmap_reserve(&s->tabs, 1)) {
        free(t);
        op->result = AC_EC_INTERNAL;
        return;
    }
    memcpy(t->id, q->id, sizeof t->id);
    memcpy(t->digest, q->digest, sizeof t->digest);
    memcpy(t->mandate, q->mandate, sizeof t->mandate);
    memcpy(t->binding, q->binding, sizeof t->binding);
    memcpy(t->user, b.user_id, sizeof t->user);
    memcpy(t->agent, b.agent_id, sizeof t->agent);
    memcpy(t->payee, q->payee, sizeof t->payee);
    memcpy(t->asset, q->asset, sizeof t->asset);
    memcpy(t->debit, q->debit, sizeof t->debit);
    memcpy(t->credit, q->credit, sizeof t->credit);
    t->scale = q->scale;
    t->hold = q->hold;
    t->expires_us = now + q->ttl_s * 1000000;
    ac_strmap_put(&s->tabs, t);

    /* the decision: a micropay payment of the hold, against the live spend */
    struct ac_pay_request pq;
    memset(&pq, 0, sizeof pq);
    pq.op = AC_OP_MICROPAY;
    memcpy(pq.payee, q->payee, sizeof pq.payee);
    memcpy(pq.category, q->category, sizeof pq.category);
    memcpy(pq.asset, q->asset, sizeof pq.asset);
    pq.amount = q->hold;
    struct ac_risk_input in;
    ac_payments_risk_input(&in, &pq, q->binding, &b, m, now);
    ac_risk_decide(&in, &op->decision);

    char hold_tid[AC_ID_MAX + 1] = "";
    struct ac_ev_transfer evt = {.debit = q->debit,
                                 .credit = q->credit,
                                 .amount = q->hold,
                                 .asset = q->asset,
                                 .scale = q->scale,
                                 .flags = AC_TF_PENDING};
    op->status = AC_TAB_DENIED;
    if (op->decision.verdict == AC_VERDICT_ALLOW) {
        struct ac_transfer_req tr;
        memset(&tr, 0, sizeof tr);
        ac_tab_transfer_id(q->id, "hold", 1, tr.id);
        memcpy(tr.debit, q->debit, sizeof tr.debit);
        memcpy(tr.credit, q->credit, sizeof tr.credit);
        memcpy(tr.asset, q->asset, sizeof tr.asset);
        tr.amount = q->hold;
        tr.flags = AC_TF_PENDING;
        tr.timeout_s = (uint32_t)(q->ttl_s + AC_HOLD_GRACE_S);
        struct ac_transfer_result res;
        if (ac_state_create_transfers(ac_apply_ledger(a), &tr, 1, now, &res) != AC_EC_OK) {
            ac_apply_abort(a);
            op->result = AC_EC_INTERNAL;
            return;
        }
        if (res.ec == AC_EC_OK && res.replayed) res.ec = AC_EC_TRANSFER_EXISTS_DIFFERENT;
        if (res.ec != AC_EC_OK) {
            op->status = AC_TAB_FAILED;
            op->ledger_ec = res.ec;
        } else {
            const struct ac_mandate *md = ac_pay_mandate_doc(m);
            if (ac_spend_hold(ac_pay_mandate_spend(m), md->tz_offset_s, now, q->hold, &t->sh) !=
                0) {
                ac_apply_abort(a); /* the decision checked for overflow: cannot happen */
                op->result = AC_EC_INTERNAL;
                return;
            }
            ac_pay_mandate_touch(d->payments, m);
            op->status = AC_TAB_OPEN;
            t->holds = 1;
            memcpy(hold_tid, tr.id, sizeof hold_tid);
            open_add(s, t);
        }
    }
    t->status = op->status;

    const char *reasons[AC_RR__COUNT + 1];
    size_t nr = 0;
    if (op->status == AC_TAB_FAILED)
        reasons[nr++] = ac_ec_code(op->ledger_ec);
    else
        for (unsigned i = 0; i < op->decision.n; i++)
            reasons[nr++] = ac_reason_code(op->decision.reasons[i]);
    struct ac_ev_record r = {0};
    r.kind = op->status == AC_TAB_OPEN ? AC_EV_TAB_OPEN : AC_EV_TAB_DENY;
    r.body.tab = q->id;
    r.body.user = b.user_id;
    r.body.agent = b.agent_id;
    r.body.payee = q->payee;
    r.body.category = q->category[0] ? q->category : NULL; /* what the decision saw */
    r.body.amount = (struct ac_ev_amount){1, q->hold, q->asset, q->scale};
    binding_docref(&r.body.binding, &b, q->binding);
    ac_pay_mandate_docref(m, &r.body.mandate);
    r.body.request = (struct ac_ev_request){1,          q->sig.base,    q->sig.base_len,
                                            q->sig.sig, q->sig.sig_len, q->sig.keyid,
                                            1,          q->sig.body,    q->sig.body_len};
    r.body.decision = op->status == AC_TAB_OPEN ? AC_EV_ALLOW : AC_EV_DENY;
    r.body.reasons = nr ? reasons : NULL;
    r.body.nreasons = nr;
    if (op->status == AC_TAB_OPEN) {
        evt.id = hold_tid;
        r.body.transfers = &evt;
        r.body.ntransfers = 1;
    }
    if (evidence(d, a, &r, op)) {
        op->result = AC_EC_INTERNAL;
        return;
    }

    char dg[65], hold[24], ttl[24], exp[24], aut[4], t_us[24], seq[24], leaf[65], rs[1024] = "";
    char holds[16];
    hex(q->digest, 32, dg);
    i64s(hold, q->hold);
    i64s(ttl, q->ttl_s);
    i64s(exp, t->expires_us);
    i64s(t_us, now);
    snprintf(aut, sizeof aut, "%d", (int)op->decision.autonomy);
    snprintf(holds, sizeof holds, "%u", t->holds);
    size_t k = 0;
    if (op->status != AC_TAB_FAILED)
        for (unsigned i = 0; i < op->decision.n && k < sizeof rs; i++)
            k += (size_t)snprintf(rs + k, sizeof rs - k, "%s%s", i ? "," : "",
                                  ac_reason_code(op->decision.reasons[i]));
    ev_strings(op, seq, leaf);
    const char *v[] = {q->id,
                       dg,
                       q->mandate,
                       q->binding,
                       b.user_id,
                       b.agent_id,
                       q->payee,
                       q->asset,
                       hold,
                       ttl,
                       exp,
                       ac_tab_status_name(op->status),
                       ac_verdict_name(op->decision.verdict),
                       aut,
                       rs,
                       op->status == AC_TAB_FAILED ? ac_ec_code(op->ledger_ec) : "",
                       hold_tid,
                       holds,
                       seq,
                       leaf,
                       t_us,
                       op->status == AC_TAB_OPEN ? "" : t_us};
    if (ac_apply_stmt(a, "tab_ins", 22, v)) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    op->at_us = now;
    op->expires_us = t->expires_us;
    memcpy(op->hold_id, hold_tid, sizeof op->hold_id);
}

/* ==== settle, close, expire ====================================================================
 */

/* Record a voucher as settled (after the ledger accepted it). 0 or -1 (OOM). */
static int remember_voucher(struct tab *t, int64_t seq, const uint8_t hash[32])
{
    if (t->nvh == t->capvh) {
        size_t cap = t->capvh ? 2 * t->capvh : 8;
        struct vh *n = realloc(t->vh, cap * sizeof *n);
        if (n == NULL) return -1;
        t->vh = n;
        t->capvh = cap;
    }
    t->vh[t->nvh].seq = seq;
    memcpy(t->vh[t->nvh].hash, hash, 32);
    t->nvh++;
    return 0;
}

/* 1 when the voucher (seq, hash) was settled on t (the list ascends by seq). */
static int settled_before(const struct tab *t, int64_t seq, const uint8_t hash[32])
{
    size_t lo = 0, hi = t->nvh;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->vh[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->nvh && t->vh[lo].seq == seq && memcmp(t->vh[lo].hash, hash, 32) == 0;
}

/* One step of a tab's end or settlement, with the ledger's transfers already applied: the spend
 * (when the tab ends), the evidence record, the rows. kind: tab.settle / tab.close / tab.expire.
 * q: the merchant's request (NULL for an expiry). The caller set t's new settled/last_seq/holds
 * and op->amount/released/post_id/hold_id/void_id. Returns AC_EC_OK or AC_EC_INTERNAL (the batch
 * failed). */
static enum ac_ec record_step(struct ac_tabs *s, struct ac_domain *d, struct ac_apply *a,
                              struct tab *t, enum ac_ev_kind kind,
                              const struct ac_tab_settle_request *q, struct ac_tabop *op)
{
    int64_t now = ac_apply_now(a);
    int ends = op->hold_id[0] == '\0';
    struct ac_pay_mandate *m = ac_payments_mandate(d->payments, t->mandate);
    struct ac_binding_state b;
    if (m == NULL || ac_registry_binding_state(d->registry, t->binding, &b) != AC_EC_OK) {
        ac_apply_abort(a);
        return AC_EC_INTERNAL;
    }
    if (ends) {
        const struct ac_mandate *md = ac_pay_mandate_doc(m);
        if (ac_spend_split(ac_pay_mandate_spend(m), md->tz_offset_s, now, &t->sh, t->settled) !=
            0) {
            ac_apply_abort(a);
            return AC_EC_INTERNAL;
        }
        ac_pay_mandate_touch(d->payments, m);
    }
    /* the ledger's view of this step, as the evidence lists it */
    char prev_hold[AC_ID_MAX + 1];
    ac_tab_transfer_id(t->id, "hold", op->hold_id[0] ? t->holds - 1 : t->holds, prev_hold);
    struct ac_ev_transfer evt[2];
    size_t nt = 0;
    int64_t held_before = t->hold - (t->settled - op->amount);
    if (op->post_id[0])
        evt[nt++] = (struct ac_ev_transfer){.id = op->post_id,
                                            .debit = t->debit,
                                            .credit = t->credit,
                                            .amount = op->amount,
                                            .asset = t->asset,
                                            .scale = t->scale,
                                            .flags = AC_TF_POST_PENDING |
                                                     (op->hold_id[0] ? AC_TF_LINKED : 0),
                                            .pending_id = prev_hold};
    if (op->void_id[0])
        evt[nt++] = (struct ac_ev_transfer){.id = op->void_id,
                                            .debit = t->debit,
                                            .credit = t->credit,
                                            .amount = held_before,
                                            .asset = t->asset,
                                            .scale = t->scale,
                                            .flags = AC_TF_VOID_PENDING,
                                            .pending_id = prev_hold};
    if (op->hold_id[0])
        evt[nt++] = (struct ac_ev_transfer){.id = op->hold_id,
                                            .debit = t->debit,
                                            .credit = t->credit,
                                            .amount = t->hold - t->settled,
                                            .asset = t->asset,
                                            .scale = t->scale,
                                            .flags = AC_TF_PENDING};
    struct ac_ev_record r = {0};
    r.kind = kind;
    r.body.tab = t->id;
    r.body.user = t->user;
    r.body.agent = t->agent;
    r.body.payee = t->payee;
    /* the settled total after this step */
    r.body.amount = (struct ac_ev_amount){1, t->settled, t->asset, t->scale};
    binding_docref(&r.body.binding, &b, t->binding);
    ac_pay_mandate_docref(m, &r.body.mandate);
    char kid[AC_JWK_THUMBPRINT_SIZE] = "";
    if (q && q->has_voucher) {
        memcpy(kid, q->v.kid, sizeof kid);
        r.body.voucher = (struct ac_ev_docref){1, {0}, t->id, kid};
        memcpy(r.body.voucher.hash, q->jws_hash, 32);
    }
    if (q)
        r.body.request = (struct ac_ev_request){1,          q->sig.base,    q->sig.base_len,
                                                q->sig.sig, q->sig.sig_len, q->sig.keyid,
                                                1,          q->sig.body,    q->sig.body_len};
    r.body.transfers = evt;
    r.body.ntransfers = nt;
    if (evidence(d, a, &r, op)) return AC_EC_INTERNAL;

    char t_us[24], settled[24], last[24], holds[16], seq[24], leaf[65], vseq[24] = "";
    char cum[24], amt[24], rel[24], vh[65] = "";
    i64s(t_us, now);
    i64s(settled, t->settled);
    i64s(last, t->last_seq);
    snprintf(holds, sizeof holds, "%u", t->holds);
    i64s(cum, t->settled);
    i64s(amt, op->amount);
    i64s(rel, op->released);
    if (q && q->has_voucher) {
        i64s(vseq, q->v.seq);
        hex(q->jws_hash, 32, vh);
    }
    ev_strings(op, seq, leaf);
    enum ac_tab_status st =
        ends ? (kind == AC_EV_TAB_EXPIRE ? AC_TAB_EXPIRED : AC_TAB_CLOSED) : AC_TAB_OPEN;
    const char *vt[] = {t->id, ac_tab_status_name(st), settled, last, op->hold_id, holds,
                        t_us,  ends ? t_us : ""};
    const char *kinds = kind == AC_EV_TAB_SETTLE  ? "settle"
                        : kind == AC_EV_TAB_CLOSE ? "close"
                                                  : "expire";
    const char *vs[] = {t->id,
                        kinds,
                        vseq,
                        cum,
                        amt,
                        rel,
                        q && q->has_voucher ? q->jws : "",
                        vh,
                        q && q->sig.keyid ? q->sig.keyid : "",
                        op->post_id,
                        op->hold_id,
                        op->void_id,
                        seq,
                        leaf,
                        t_us};
    if (ac_apply_stmt(a, "tab_upd", 8, vt) || ac_apply_stmt(a, "tab_stl_ins", 15, vs))
        return AC_EC_INTERNAL;
    t->status = st;
    if (ends) open_remove(s, t);
    op->status = st;
    op->settled = t->settled;
    op->last_seq = t->last_seq;
    op->at_us = now;
    op->expires_us = t->expires_us;
    return AC_EC_OK;
}

/* Apply transfers reqs[0..n) (one linked chain when n > 1). AC_EC_OK, the ledger's refusal
 * (nothing changed), or AC_EC_INTERNAL (the batch failed). */
static enum ac_ec ledger(struct ac_apply *a, struct ac_transfer_req *reqs, size_t n)
{
    struct ac_transfer_result res[2];
    if (ac_state_create_transfers(ac_apply_ledger(a), reqs, n, ac_apply_now(a), res) != AC_EC_OK) {
        ac_apply_abort(a);
        return AC_EC_INTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (res[i].ec == AC_EC_OK && res[i].replayed) return AC_EC_TRANSFER_EXISTS_DIFFERENT;
        if (res[i].ec != AC_EC_OK && res[i].ec != AC_EC_LINKED_EVENT_FAILED) return res[i].ec;
    }
    return AC_EC_OK;
}

static void pend_req(struct ac_transfer_req *r, const struct tab *t, const char *role, uint32_t n,
                     uint32_t flags, const char *pending, int64_t amount)
{
    memset(r, 0, sizeof *r);
    ac_tab_transfer_id(t->id, role, n, r->id);
    memcpy(r->asset, t->asset, sizeof r->asset);
    r->flags = flags;
    r->amount = amount;
    if (pending) memcpy(r->pending_id, pending, sizeof r->pending_id);
}

static void apply_settle(struct ac_tabs *s, struct ac_domain *d, struct ac_tabop *op,
                         struct ac_apply *a)
{
    const struct ac_tab_settle_request *q = op->settle;
    int64_t now = ac_apply_now(a);
    struct tab *t = ac_strmap_get(&s->tabs, q->tab);
    if (t == NULL) {
        op->result = AC_EC_TAB_UNKNOWN;
        return;
    }
    if (t->status == AC_TAB_DENIED || t->status == AC_TAB_FAILED) {
        op->result = AC_EC_TAB_NOT_OPEN;
        return;
    }
    if (strcmp(t->payee, q->merchant) != 0) {
        op->result = AC_EC_TAB_NOT_PAYEE;
        return;
    }
    if (t->status == AC_TAB_CLOSED) {
        op->result = AC_EC_TAB_CLOSED;
        return;
    }
    if (t->status == AC_TAB_EXPIRED || now >= t->expires_us) {
        op->result = AC_EC_TAB_EXPIRED;
        return;
    }
    if (!q->close && !q->has_voucher) {
        op->result = AC_EC_VOUCHER_INVALID;
        return;
    }
    int64_t delta = 0;
    if (q->has_voucher) {
        if (strcmp(q->v.tab, t->id) != 0) {
            op->result = AC_EC_VOUCHER_TAB_MISMATCH;
            return;
        }
        struct ac_binding_state b;
        if (ac_registry_binding_state(d->registry, t->binding, &b) != AC_EC_OK || b.revoked) {
            op->result = AC_EC_BINDING_REVOKED;
            return;
        }
        if (q->v.seq <= t->last_seq) {
            op->result = settled_before(t, q->v.seq, q->jws_hash) ? AC_EC_VOUCHER_REPLAYED
                                                                  : AC_EC_VOUCHER_NOT_MONOTONIC;
            return;
        }
        if (q->v.cumulative > t->hold) {
            op->result = AC_EC_VOUCHER_EXCEEDS_HOLD;
            return;
        }
        if (q->v.cumulative <= t->settled) {
            op->result = AC_EC_VOUCHER_NOT_MONOTONIC;
            return;
        }
        delta = q->v.cumulative - t->settled;
    }
    char cur[AC_ID_MAX + 1];
    ac_tab_transfer_id(t->id, "hold", t->holds, cur);
    struct ac_transfer_req reqs[2];
    size_t n = 0;
    op->post_id[0] = op->hold_id[0] = op->void_id[0] = '\0';
    int64_t held = t->hold - t->settled;
    int reopen = !q->close && q->v.cumulative < t->hold;
    if (delta > 0) {
        pend_req(&reqs[n++], t, "post", t->holds, AC_TF_POST_PENDING | (reopen ? AC_TF_LINKED : 0),
                 cur, delta);
        if (reopen) {
            int64_t left_s = (t->expires_us - now + 999999) / 1000000;
            pend_req(&reqs[n], t, "hold", t->holds + 1, AC_TF_PENDING, NULL, held - delta);
            memcpy(reqs[n].debit, t->debit, sizeof reqs[n].debit);
            memcpy(reqs[n].credit, t->credit, sizeof reqs[n].credit);
            reqs[n].timeout_s = (uint32_t)(left_s + AC_HOLD_GRACE_S);
            n++;
        }
    } else {
        pend_req(&reqs[n++], t, "void", t->holds, AC_TF_VOID_PENDING, cur, -1);
    }
    enum ac_ec ec = ledger(a, reqs, n);
    if (ec != AC_EC_OK) {
        op->result = ec;
        return;
    }
    if (delta > 0) {
        memcpy(op->post_id, reqs[0].id, sizeof op->post_id);
        if (reopen) memcpy(op->hold_id, reqs[1].id, sizeof op->hold_id);
    } else {
        memcpy(op->void_id, reqs[0].id, sizeof op->void_id);
    }
    op->amount = delta;
    op->released = reopen ? 0 : held - delta;
    t->settled += delta;
    if (q->has_voucher) {
        t->last_seq = q->v.seq;
        if (remember_voucher(t, q->v.seq, q->jws_hash) != 0) {
            ac_apply_abort(a);
            op->result = AC_EC_INTERNAL;
            return;
        }
    }
    if (reopen) t->holds++;
    enum ac_ev_kind kind = q->close ? AC_EV_TAB_CLOSE : AC_EV_TAB_SETTLE;
    op->result = record_step(s, d, a, t, kind, q, op);
}

struct sweep {
    struct ac_tabs *s;
    struct ac_apply *a;
};

/* Expire one open tab past its expiry (ac_tabs_tick's sweep): 0, or -1. */
static int expire_tab(void *item, void *cls)
{
    struct tab *t = item;
    struct ac_tabs *s = ((struct sweep *)cls)->s;
    struct ac_apply *a = ((struct sweep *)cls)->a;
    struct ac_domain *d = ac_apply_domain(a);
    struct ac_tabop op;
    memset(&op, 0, sizeof op);
    char cur[AC_ID_MAX + 1];
    ac_tab_transfer_id(t->id, "hold", t->holds, cur);
    struct ac_transfer_req r;
    pend_req(&r, t, "void", t->holds, AC_TF_VOID_PENDING, cur, -1);
    /* a void the ledger refuses: the hold already ended by its own timeout (the server was
     * down past it); the money is released either way, and the record lists the release */
    if (ledger(a, &r, 1) == AC_EC_INTERNAL) return -1;
    memcpy(op.void_id, r.id, sizeof op.void_id);
    op.released = t->hold - t->settled;
    if (record_step(s, d, a, t, AC_EV_TAB_EXPIRE, NULL, &op) != AC_EC_OK) return -1;
    return 0;
}

int ac_tabs_tick(struct ac_tabs *s, struct ac_apply *a)
{
    struct sweep sw = {s, a};
    return ac_deadlines_sweep(&s->open, ac_apply_now(a), expire_tab, &sw);
}

/* ==== the op ===================================================================================
 */

void ac_tabs_apply(struct ac_tabop *op, struct ac_apply *a)
{
    struct ac_domain *d = ac_apply_domain(a);
    op->result = AC_EC_OK;
    op->replayed = 0;
    op->has_evidence = 0;
    op->status = 0;
    op->ledger_ec = AC_EC_OK;
    op->amount = op->released = 0;
    op->post_id[0] = op->hold_id[0] = op->void_id[0] = '\0';
    op->at_us = ac_apply_now(a);
    if (d == NULL || d->registry == NULL || d->payments == NULL || d->tabs == NULL) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    if (op->kind == AC_TABOP_OPEN && op->open)
        apply_open(d->tabs, d, op, a);
    else if (op->kind == AC_TABOP_SETTLE && op->settle)
        apply_settle(d->tabs, d, op, a);
    else
        op->result = AC_EC_INTERNAL;
}

static void tabs_op(struct ac_cmd *c, struct ac_apply *a)
{
    ac_tabs_apply(c->op_arg, a);
}

void ac_tabs_cmd(struct ac_cmd *cmd, struct ac_tabop *op)
{
    cmd->kind = AC_CMD_OP;
    cmd->n = 1;
    cmd->op = tabs_op;
    cmd->op_arg = op;
}

void ac_tabs_end(struct ac_tabs *t, int committed)
{
    (void)t;
    (void)committed; /* nothing is published to readers: they read the database */
}

/* ==== load =====================================================================================
 */

static int64_t col64(const PGresult *r, int i)
{
    return strtoll(PQgetvalue(r, 0, i), NULL, 10);
}

static void col(char *out, size_t cap, const PGresult *r, int i)
{
    snprintf(out, cap, "%s", PQgetvalue(r, 0, i));
}

static int load_tab(void *cls, const PGresult *r)
{
    struct ac_tabs *s = cls;
    struct tab *t = calloc(1, sizeof *t);
    const char *id = PQgetvalue(r, 0, 0);
    if (t == NULL || ac_strmap_reserve(&s->tabs, 1) || strlen(id) > AC_ID_MAX ||
        unhex(PQgetvalue(r, 0, 1), t->digest, 32) != 0 ||
        (t->status = ac_tab_status_from_name(PQgetvalue(r, 0, 2))) == 0) {
        free(t);
        return -1;
    }
    col(t->id, sizeof t->id, r, 0);
    col(t->mandate, sizeof t->mandate, r, 3);
    col(t->binding, sizeof t->binding, r, 4);
    col(t->user, sizeof t->user, r, 5);
    col(t->agent, sizeof t->agent, r, 6);
    col(t->payee, sizeof t->payee, r, 7);
    col(t->asset, sizeof t->asset, r, 8);
    t->scale = (unsigned)col64(r, 9);
    t->hold = col64(r, 10);
    t->settled = col64(r, 11);
    t->last_seq = col64(r, 12);
    t->expires_us = col64(r, 13);
    t->holds = (uint32_t)col64(r, 14);
    t->sh.amount = t->hold;
    t->sh.at_us = col64(r, 15);
    if (ac_wallet_account(1, t->user, t->asset, t->debit) != 0 ||
        ac_wallet_account(0, t->payee, t->asset, t->credit) != 0) {
        free(t);
        return -1;
    }
    ac_strmap_put(&s->tabs, t);
    if (t->status == AC_TAB_OPEN) open_add(s, t);
    return 0;
}

static int load_voucher(void *cls, const PGresult *r)
{
    struct ac_tabs *s = cls;
    struct tab *t = ac_strmap_get(&s->tabs, PQgetvalue(r, 0, 0));
    uint8_t h[32];
    if (t == NULL || unhex(PQgetvalue(r, 0, 2), h, 32) != 0) return -1;
    return remember_voucher(t, col64(r, 1), h);
}

int ac_tabs_load(struct ac_tabs *s, PGconn *c)
{
    struct ac_tabs *f = ac_tabs_new();
    if (f == NULL) return -1;
    PGresult *r = PQexec(c, "begin isolation level repeatable read read only");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    enum ac_qs qs = ok ? AC_QS_ONE_RESULT : AC_QS_SOFT_ERROR;
    if (qs > 0) qs = ac_db_stream(c, "tab_load", load_tab, f);
    if (qs > 0) qs = ac_db_stream(c, "tab_load_vouchers", load_voucher, f);
    r = PQexec(c, qs > 0 ? "commit" : "rollback");
    PQclear(r);
    if (qs <= 0) {
        ac_tabs_free(f);
        return -1;
    }
    /* swap the content in */
    struct ac_strmap old = s->tabs;
    s->tabs = f->tabs;
    f->tabs = old;
    ac_deadlines_move(&s->open, &f->open);
    ac_tabs_free(f);
    return 0;
}

/* ==== committed rows ===========================================================================
 */

static void tab_row(const PGresult *r, int i, struct ac_tab_row *o)
{
    memset(o, 0, sizeof *o);
#define S(field, c) snprintf(o->field, sizeof o->field, "%s", PQgetvalue(r, i, c))
#define I(c) strtoll(PQgetvalue(r, i, c), NULL, 10)
    S(id, 0);
    S(mandate, 1);
    S(binding, 2);
    S(user, 3);
    S(agent, 4);
    S(payee, 5);
    S(asset, 6);
    o->scale = (unsigned)I(7);
    o->hold = I(8);
    o->ttl_s = I(9);
    o->expires_us = I(10);
    o->settled = I(11);
    o->last_seq = I(12);
    o->status = ac_tab_status_from_name(PQgetvalue(r, i, 13));
    S(verdict, 14);
    o->autonomy = (int)I(15);
    S(reasons, 16);
    S(error, 17);
    S(hold_transfer_id, 18);
    int64_t evs = I(19);
    if (evs >= 0 && unhex(PQgetvalue(r, i, 20), o->ev_leaf, 32) == 0) {
        o->has_evidence = 1;
        o->ev_seq = (uint64_t)evs;
    }
    o->created_us = I(21);
    o->updated_us = I(22);
    o->ended_us = I(23);
    o->seq = I(24);
#undef S
#undef I
}

enum ac_qs ac_tabs_read(PGconn *c, const char *id, struct ac_tab_row *out)
{
    const char *v[] = {id};
    PGresult *r = NULL;
    enum ac_qs qs = ac_db_exec(c, "tab_get", 1, v, &r);
    if (qs < 0) return qs;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return AC_QS_NO_RESULTS;
    }
    tab_row(r, 0, out);
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_tabs_list(PGconn *c, int payee, const char *principal, int64_t before, unsigned limit,
                        struct ac_tab_row *out, size_t *n)
{
    char b[24], l[16];
    i64s(b, before > 0 ? before : INT64_MAX);
    snprintf(l, sizeof l, "%u", limit);
    const char *v[] = {principal, b, l};
    PGresult *r = NULL;
    *n = 0;
    enum ac_qs qs = ac_db_exec(c, payee ? "tab_list_payee" : "tab_list_user", 3, v, &r);
    if (qs < 0) return qs;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (unsigned)i < limit; i++)
        tab_row(r, i, &out[(*n)++]);
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_tabs_settlements(PGconn *c, const char *tab, struct ac_tab_settlement_row *out,
                               size_t cap, size_t *n)
{
    char l[24];
    snprintf(l, sizeof l, "%zu", cap);
    const char *v[] = {tab, l};
    PGresult *r = NULL;
    *n = 0;
    enum ac_qs qs = ac_db_exec(c, "tab_settlements", 2, v, &r);
    if (qs < 0) return qs;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (size_t)i < cap; i++) {
        struct ac_tab_settlement_row *o = &out[(*n)++];
        memset(o, 0, sizeof *o);
        snprintf(o->kind, sizeof o->kind, "%s", PQgetvalue(r, i, 0));
        o->voucher_seq = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        o->cumulative = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        o->amount = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        o->released = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        snprintf(o->post_id, sizeof o->post_id, "%s", PQgetvalue(r, i, 5));
        snprintf(o->hold_id, sizeof o->hold_id, "%s", PQgetvalue(r, i, 6));
        snprintf(o->void_id, sizeof o->void_id, "%s", PQgetvalue(r, i, 7));
        int64_t evs = strtoll(PQgetvalue(r, i, 8), NULL, 10);
        if (evs >= 0 && unhex(PQgetvalue(r, i, 9), o->ev_leaf, 32) == 0) {
            o->has_evidence = 1;
            o->ev_seq = (uint64_t)evs;
        }
        o->created_us = strtoll(PQgetvalue(r, i, 10), NULL, 10);
    }
    PQclear(r);
    return AC_QS_ONE_RESULT;
}
