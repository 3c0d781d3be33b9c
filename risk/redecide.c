/* The auditor's recomputation of payment decisions (see redecide.h). */
#include "risk/redecide.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol/amount.h"
#include "protocol/binding.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"
#include "risk/decide.h"

/* ---- a string-keyed index (open addressing, grows at 1/2 load) ---------------------------- */

struct ent {
    char key[AC_ID_MAX + 1];
    void *val;
};
struct index {
    struct ent *e;
    size_t cap, n;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static struct ent *slot(struct ent *e, size_t cap, const char *key)
{
    for (size_t i = fnv(key) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (e[i].key[0] == '\0' || strcmp(e[i].key, key) == 0) return &e[i];
}

static void *iget(const struct index *x, const char *key)
{
    if (x->cap == 0 || key == NULL) return NULL;
    struct ent *s = slot(x->e, x->cap, key);
    return s->key[0] ? s->val : NULL;
}

/* Put (replacing); val must not be NULL. 0 or -1 (OOM). */
static int iput(struct index *x, const char *key, void *val)
{
    if (2 * (x->n + 1) > x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 64;
        struct ent *e = calloc(cap, sizeof *e);
        if (e == NULL) return -1;
        for (size_t i = 0; i < x->cap; i++)
            if (x->e[i].key[0]) *slot(e, cap, x->e[i].key) = x->e[i];
        free(x->e);
        x->e = e;
        x->cap = cap;
    }
    struct ent *s = slot(x->e, x->cap, key);
    if (s->key[0] == '\0') {
        snprintf(s->key, sizeof s->key, "%s", key);
        x->n++;
    }
    s->val = val;
    return 0;
}

static void ifree(struct index *x, int vals)
{
    for (size_t i = 0; vals && i < x->cap; i++)
        if (x->e[i].key[0]) free(x->e[i].val);
    free(x->e);
    memset(x, 0, sizeof *x);
}

/* ---- state -------------------------------------------------------------------------------- */

struct mnd {
    uint8_t hash[AC_EV_HASH_LEN]; /* the registered document */
    int parsed;                   /* 1 parsed into m; -1 unparseable at the scale tried */
    struct ac_mandate m;
    int revoked;
    struct ac_spend spend;
};

/* An outstanding step-up, by payment id: the facts its later answer is decided on. */
struct pend {
    struct mnd *mandate;
    struct ac_spend_hold hold;
    uint8_t binding[AC_EV_HASH_LEN]; /* the step-up's binding document */
    enum ac_op op;
    char payee[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    int64_t amount;
};

static const int marker = 1; /* the value of set-like entries */

struct ac_redecide {
    struct index mandates, pending, revoked_bindings;
    struct ac_redecide_stats st;
};

struct ac_redecide *ac_redecide_new(void)
{
    return calloc(1, sizeof(struct ac_redecide));
}

void ac_redecide_free(struct ac_redecide *rd)
{
    if (rd == NULL) return;
    ifree(&rd->mandates, 1);
    ifree(&rd->pending, 1);
    ifree(&rd->revoked_bindings, 0);
    free(rd);
}

void ac_redecide_stats(const struct ac_redecide *rd, struct ac_redecide_stats *out)
{
    *out = rd->st;
}

static int say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- mandates ----------------------------------------------------------------------------- */

/* The mandate a record names, parsed at the record's scale when its asset is the mandate's.
 * Returns the entry (parsed may still be 0: scale unknown), or NULL with why. */
static struct mnd *mandate_of(struct ac_redecide *rd, const struct ac_evcheck *ck,
                              const struct ac_ev_record *r, char *why, size_t whylen)
{
    const struct ac_ev_docref *d = &r->body.mandate;
    struct mnd *m = d->present ? iget(&rd->mandates, d->id) : NULL;
    if (m == NULL) {
        say(why, whylen, "its mandate %s was not registered earlier in the log",
            d->id ? d->id : "(no id)");
        return NULL;
    }
    if (memcmp(m->hash, d->hash, AC_EV_HASH_LEN) != 0) {
        say(why, whylen, "it names mandate %s with another document than the registered one",
            d->id);
        return NULL;
    }
    if (m->parsed != 0 || !r->body.amount.present) return m;
    size_t len = 0;
    const char *text = ac_evcheck_doc(ck, m->hash, &len);
    struct ac_jws jws;
    if (text == NULL || ac_jws_parse(text, len, &jws, NULL) != AC_EC_OK) {
        say(why, whylen, "its mandate document is not a compact jws");
        return NULL;
    }
    const char *asset = jws.payload_json ? ac_mandate_peek_asset(jws.payload_json) : NULL;
    if (asset && strcmp(asset, r->body.amount.asset) == 0) {
        struct ac_mandate md;
        if (ac_mandate_parse(jws.payload_json, r->body.amount.scale, &md, NULL) == AC_EC_OK &&
            strcmp(md.id, d->id) == 0) {
            m->m = md;
            m->parsed = 1;
        } else {
            m->parsed = -1;
        }
    }
    ac_jws_clear(&jws);
    if (m->parsed < 0) {
        say(why, whylen, "its mandate document does not parse as mandate %s at scale %u", d->id,
            r->body.amount.scale);
        return NULL;
    }
    return m;
}

/* ---- decisions ---------------------------------------------------------------------------- */

static void codes(char *out, size_t cap, const char *const *c, size_t n)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "," : "", c[i]);
}

/* 1 when the decision d has exactly the reason codes c[0..n). */
static int same_reasons(const struct ac_risk_decision *d, const char *const *c, size_t n)
{
    if (d->n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ac_reason_code(d->reasons[i]), c[i]) != 0) return 0;
    return 1;
}

static int mismatch(char *why, size_t whylen, const char *rv, const struct ac_ev_record *r,
                    const struct ac_risk_decision *d)
{
    char a[400], b[400];
    codes(a, sizeof a, r->body.reasons, r->body.nreasons);
    const char *dc[AC_RR__COUNT];
    for (unsigned i = 0; i < d->n; i++)
        dc[i] = ac_reason_code(d->reasons[i]);
    codes(b, sizeof b, dc, d->n);
    return say(why, whylen, "decision mismatch: recorded %s [%s], recomputed %s [%s]", rv, a,
               ac_verdict_name(d->verdict), b);
}

/* The request facts from the verbatim body; they must agree with the record. 0 or -1. */
static int request_facts(const struct ac_ev_record *r, struct ac_risk_request *q, char *payee,
                         char *asset, char *why, size_t whylen)
{
    const struct ac_ev_request *rq = &r->body.request;
    if (!rq->present || !rq->has_body) return say(why, whylen, "it keeps no request body");
    json_error_t e;
    json_t *j = json_loadb((const char *)rq->body, rq->body_len, 0, &e);
    const char *op = "purchase", *pe = NULL, *cur = NULL, *val = NULL;
    int bad = j == NULL || json_unpack(j, "{s:s, s:{s:s, s:s}, s?s}", "payee", &pe, "amount",
                                       "currency", &cur, "value", &val, "op", &op) != 0;
    int64_t amount = 0;
    if (!bad) {
        q->op = ac_op_from_name(op);
        bad = q->op == 0 || !ac_id_valid(pe) || !ac_asset_code_valid(cur) ||
              ac_amount_parse(val, r->body.amount.scale, &amount) != AC_EC_OK;
    }
    if (!bad) {
        snprintf(payee, AC_ID_MAX + 1, "%s", pe);
        snprintf(asset, AC_ASSET_MAX + 1, "%s", cur);
    }
    json_decref(j);
    if (bad) return say(why, whylen, "its request body is not a payment request");
    if (!r->body.payee || strcmp(r->body.payee, payee) != 0 ||
        strcmp(r->body.amount.asset, asset) != 0 || r->body.amount.value != amount)
        return say(why, whylen, "its payee or amount differs from its signed request body");
    q->payee = payee;
    q->asset = asset;
    q->amount = amount;
    q->category = r->body.category; /* the payee's registered category the server decided with */
    return 0;
}

/* The binding facts for r. 0 or -1. */
static int binding_facts(struct ac_redecide *rd, const struct ac_evcheck *ck, const uint8_t *hash,
                         struct ac_risk_binding *b, char *why, size_t whylen)
{
    const struct ac_binding_doc *bd = hash ? ac_evcheck_binding(ck, hash) : NULL;
    if (bd == NULL) return say(why, whylen, "its binding document is not available");
    memset(b, 0, sizeof *b);
    b->binding_id = bd->id;
    b->user_id = bd->user_id;
    b->agent_id = bd->agent_id;
    b->max_autonomy = (enum ac_autonomy)bd->max_autonomy;
    b->nbf_s = bd->nbf;
    b->exp_s = bd->exp;
    b->revoked = iget(&rd->revoked_bindings, bd->id) != NULL;
    return 0;
}

static int payment(struct ac_redecide *rd, const struct ac_evcheck *ck,
                   const struct ac_ev_record *r, char *why, size_t whylen)
{
    const struct ac_ev_body *bd = &r->body;
    if (r->kind == AC_EV_PAYMENT_DENY &&
        (!bd->mandate.present || !bd->binding.present || !bd->request.present ||
         !bd->request.has_body || !bd->amount.present)) {
        rd->st.not_recomputable++;
        rd->st.nr_missing++;
        return 0;
    }
    struct mnd *m = mandate_of(rd, ck, r, why, whylen);
    if (m == NULL) return -1;
    char payee[AC_ID_MAX + 1], asset[AC_ASSET_MAX + 1];
    struct ac_risk_input in;
    memset(&in, 0, sizeof in);
    if (request_facts(r, &in.req, payee, asset, why, whylen) != 0 ||
        binding_facts(rd, ck, r->body.binding.hash, &in.binding, why, whylen) != 0)
        return -1;
    int ledger = r->kind == AC_EV_PAYMENT_DENY && r->body.nreasons == 1 &&
                 ac_reason_from_code(r->body.reasons[0]) == AC_RR__COUNT;
    if (m->parsed == 1) {
        in.mandate = &m->m;
        in.mandate_revoked = m->revoked;
        in.spend = &m->spend;
        in.now_us = r->time_us;
        struct ac_risk_decision d;
        ac_risk_decide(&in, &d);
        const char *rv = ac_ev_decision_name(r->body.decision);
        if (ledger) {
            if (d.verdict == AC_VERDICT_DENY) return mismatch(why, whylen, "ledger refusal", r, &d);
            rd->st.ledger_refusals++;
        } else {
            enum ac_verdict want = r->kind == AC_EV_PAYMENT_SETTLE    ? AC_VERDICT_ALLOW
                                   : r->kind == AC_EV_PAYMENT_STEP_UP ? AC_VERDICT_STEP_UP
                                                                      : AC_VERDICT_DENY;
            if (d.verdict != want || !same_reasons(&d, r->body.reasons, r->body.nreasons))
                return mismatch(why, whylen, rv ? rv : "?", r, &d);
            rd->st.recomputed++;
        }
    } else {
        rd->st.not_recomputable++;
        rd->st.nr_scale++;
    }
    /* the spend effect, as the server applied it */
    int32_t tz = m->parsed == 1 ? m->m.tz_offset_s : 0;
    if (r->kind == AC_EV_PAYMENT_SETTLE) {
        if (ac_spend_charge(&m->spend, tz, r->time_us, in.req.amount) != 0)
            return say(why, whylen, "its amount overflows the mandate's spend");
    } else if (r->kind == AC_EV_PAYMENT_STEP_UP) {
        struct pend *p = calloc(1, sizeof *p);
        if (p == NULL) return say(why, whylen, "out of memory");
        if (ac_spend_hold(&m->spend, tz, r->time_us, in.req.amount, &p->hold) != 0) {
            free(p);
            return say(why, whylen, "its amount overflows the mandate's spend");
        }
        p->mandate = m;
        memcpy(p->binding, r->body.binding.hash, sizeof p->binding);
        p->op = in.req.op;
        memcpy(p->payee, payee, sizeof p->payee);
        memcpy(p->asset, asset, sizeof p->asset);
        p->amount = in.req.amount;
        if (iget(&rd->pending, r->body.payment) || iput(&rd->pending, r->body.payment, p) != 0) {
            free(p);
            return say(why, whylen, "payment %s steps up twice (or out of memory)",
                       r->body.payment);
        }
    }
    return 0;
}

/* payment.confirm / decline / expire: the step-up's end. */
static int answer(struct ac_redecide *rd, const struct ac_evcheck *ck, const struct ac_ev_record *r,
                  char *why, size_t whylen)
{
    struct pend *p = iget(&rd->pending, r->body.payment);
    if (p == NULL && r->kind == AC_EV_PAYMENT_EXPIRE && !r->body.mandate.present) return 0;
    if (p == NULL)
        return say(why, whylen, "payment %s has no outstanding step-up earlier in the log",
                   r->body.payment ? r->body.payment : "(none)");
    struct mnd *m = p->mandate;
    if (r->body.mandate.present) {
        if ((m = mandate_of(rd, ck, r, why, whylen)) == NULL) return -1;
        if (m != p->mandate) return say(why, whylen, "it names another mandate than its step-up");
    }
    int decided = r->kind == AC_EV_PAYMENT_CONFIRM ||
                  (r->kind == AC_EV_PAYMENT_DECLINE && r->body.nreasons > 0);
    if (r->kind == AC_EV_PAYMENT_DECLINE && !decided) rd->st.user_declines++;
    if (decided && m->parsed != 1) {
        rd->st.not_recomputable++;
        rd->st.nr_scale++;
    } else if (decided) {
        struct ac_risk_input in;
        memset(&in, 0, sizeof in);
        const uint8_t *bh = r->body.binding.present ? r->body.binding.hash : p->binding;
        if (binding_facts(rd, ck, bh, &in.binding, why, whylen) != 0) return -1;
        /* the category the server decided the answer with, recorded with it */
        in.req = (struct ac_risk_request){p->op, p->payee, r->body.category, p->asset, p->amount};
        in.mandate = &m->m;
        in.mandate_revoked = m->revoked;
        in.spend = &m->spend;
        in.hold = &p->hold;
        in.confirmed = 1;
        in.now_us = r->time_us;
        struct ac_risk_decision d;
        ac_risk_decide(&in, &d);
        int ok = r->kind == AC_EV_PAYMENT_CONFIRM
                     ? d.verdict == AC_VERDICT_ALLOW && r->body.nreasons == 0
                     : d.verdict == AC_VERDICT_DENY &&
                           same_reasons(&d, r->body.reasons, r->body.nreasons);
        if (!ok)
            return mismatch(why, whylen, r->kind == AC_EV_PAYMENT_CONFIRM ? "confirm" : "decline",
                            r, &d);
        rd->st.recomputed++;
    }
    int32_t tz = m->parsed == 1 ? m->m.tz_offset_s : 0;
    int rc = r->kind == AC_EV_PAYMENT_CONFIRM
                 ? ac_spend_settle(&m->spend, tz, r->time_us, &p->hold)
                 : ac_spend_release(&m->spend, tz, r->time_us, &p->hold);
    if (rc != 0) return say(why, whylen, "its hold does not match the mandate's spend");
    free(p);
    /* a tombstone keeps the key: the step-up cannot be answered twice */
    return iput(&rd->pending, r->body.payment, NULL) == 0 ? 0 : say(why, whylen, "out of memory");
}

int ac_redecide_record(struct ac_redecide *rd, const struct ac_evcheck *ck,
                       const struct ac_ev_record *r, char *why, size_t whylen)
{
    switch (r->kind) {
    case AC_EV_MANDATE_REGISTER: {
        const struct ac_ev_docref *d = &r->body.mandate;
        if (!d->present || d->id == NULL) return say(why, whylen, "it names no mandate id");
        if (iget(&rd->mandates, d->id))
            return say(why, whylen, "mandate %s registered twice", d->id);
        struct mnd *m = calloc(1, sizeof *m);
        if (m == NULL || iput(&rd->mandates, d->id, m) != 0) {
            free(m);
            return say(why, whylen, "out of memory");
        }
        memcpy(m->hash, d->hash, AC_EV_HASH_LEN);
        ac_spend_init(&m->spend);
        return 0;
    }
    case AC_EV_MANDATE_REVOKE: {
        struct mnd *m = r->body.mandate.present ? iget(&rd->mandates, r->body.mandate.id) : NULL;
        if (m == NULL) return say(why, whylen, "it revokes a mandate the log did not register");
        m->revoked = 1;
        return 0;
    }
    case AC_EV_BINDING_REVOKE:
        if (!r->body.binding.present || r->body.binding.id == NULL)
            return say(why, whylen, "it names no binding id");
        return iput(&rd->revoked_bindings, r->body.binding.id, (void *)&marker) == 0
                   ? 0
                   : say(why, whylen, "out of memory");
    case AC_EV_PAYMENT_SETTLE:
    case AC_EV_PAYMENT_STEP_UP:
    case AC_EV_PAYMENT_DENY:
        return payment(rd, ck, r, why, whylen);
    case AC_EV_PAYMENT_CONFIRM:
    case AC_EV_PAYMENT_DECLINE:
    case AC_EV_PAYMENT_EXPIRE:
        return answer(rd, ck, r, why, whylen);
    case AC_EV_TOPUP:
    case AC_EV_TAB_OPEN:
        if (r->body.decision != AC_EV_DECISION_NONE) {
            rd->st.not_recomputable++;
            rd->st.nr_kind++;
        }
        return 0;
    default:
        return 0;
    }
}
