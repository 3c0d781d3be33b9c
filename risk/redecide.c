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
#include "protocol/price.h"
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

/* An open tab: its mandate and the spend hold it took (ledger/tabs.h). */
struct otab {
    struct mnd *mandate;
    struct ac_spend_hold hold;
};

/* A published price version ("<merchant>/<version>"): the signed price list body. */
struct pver {
    size_t len;
    char body[]; /* NUL-terminated */
};

/* A merchant's newest published version. */
struct pcur {
    int64_t version;
};

struct ac_redecide {
    struct index mandates, pending, revoked_bindings, tabs;
    struct index prices, current; /* struct pver by "<merchant>/<version>", struct pcur */
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
    ifree(&rd->tabs, 1);
    ifree(&rd->prices, 1);
    ifree(&rd->current, 1);
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

/* A top-up's request facts beyond a payment's (the body of POST /v1/topups). */
struct topup_facts {
    int is_topup;
    char token_asset[AC_ASSET_MAX + 1];
    int64_t version;
};

/* The request facts from the verbatim body; they must agree with the record. A top-up's body
 * names the payee "provider" and has no op (topup). 0 or -1. */
static int request_facts(const struct ac_ev_record *r, struct ac_risk_request *q, char *payee,
                         char *asset, struct topup_facts *tf, char *why, size_t whylen)
{
    const struct ac_ev_request *rq = &r->body.request;
    if (!rq->present || !rq->has_body) return say(why, whylen, "it keeps no request body");
    json_error_t e;
    json_t *j = json_loadb((const char *)rq->body, rq->body_len, 0, &e);
    const char *op = "purchase", *pe = NULL, *pv = NULL, *cur = NULL, *val = NULL, *tok = NULL;
    json_int_t version = 0;
    int bad = j == NULL ||
              json_unpack(j, "{s?s, s?s, s:{s:s, s:s}, s?s, s?s, s?I}", "payee", &pe, "provider",
                          &pv, "amount", "currency", &cur, "value", &val, "op", &op,
                          "token_asset", &tok, "price_version", &version) != 0;
    memset(tf, 0, sizeof *tf);
    if (!bad && pv != NULL) { /* a top-up */
        bad = pe != NULL || tok == NULL || !ac_asset_code_valid(tok) || version <= 0;
        pe = pv;
        op = "topup";
        tf->is_topup = 1;
        if (!bad) snprintf(tf->token_asset, sizeof tf->token_asset, "%s", tok);
        tf->version = (int64_t)version;
    }
    bad = bad || pe == NULL;
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

/* ---- prices and top-ups ------------------------------------------------------------------ */

static void price_key(const char *merchant, int64_t version, char out[AC_ID_MAX + 1])
{
    /* ids are at most 64 characters; a key that does not fit is cut (and then never found) */
    snprintf(out, AC_ID_MAX + 1, "%.40s/%lld", merchant, (long long)version);
}

/* price.publish: the merchant's signed price list, a version newer than its current one. */
static int price_publish(struct ac_redecide *rd, const struct ac_ev_record *r, char *why,
                         size_t whylen)
{
    const struct ac_ev_request *rq = &r->body.request;
    if (!rq->present || !rq->has_body || r->body.payee == NULL || r->body.ref == NULL)
        return say(why, whylen, "it keeps no price list");
    struct ac_price_list l;
    struct ac_doc_err err = {0};
    if (ac_price_list_parse((const char *)rq->body, rq->body_len, &l, &err) != AC_EC_OK)
        return say(why, whylen, "its signed price list does not parse (%s: %s)", err.pointer,
                   err.detail ? err.detail : "");
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", (long long)l.version);
    if (strcmp(ver, r->body.ref) != 0)
        return say(why, whylen, "its ref %s is not the signed version %s", r->body.ref, ver);
    struct pcur *c = iget(&rd->current, r->body.payee);
    if (c && l.version <= c->version)
        return say(why, whylen, "version %s is not newer than %s's current version %lld", ver,
                   r->body.payee, (long long)c->version);
    char key[AC_ID_MAX + 1];
    price_key(r->body.payee, l.version, key);
    struct pver *pv = malloc(sizeof *pv + rq->body_len + 1);
    if (c == NULL && (c = calloc(1, sizeof *c)) != NULL && iput(&rd->current, r->body.payee, c)) {
        free(c);
        c = NULL;
    }
    if (pv == NULL || c == NULL || iput(&rd->prices, key, pv) != 0) {
        free(pv);
        return say(why, whylen, "out of memory");
    }
    pv->len = rq->body_len;
    memcpy(pv->body, rq->body, rq->body_len);
    pv->body[rq->body_len] = '\0';
    c->version = l.version;
    return 0;
}

/* A topup record: priced at the provider's current version (as published earlier in the log),
 * the fiat leg moves the amount, and the token leg moves exactly floor(amount * tokens / fiat)
 * of that version's price. 0 or -1. */
static int topup_tokens(struct ac_redecide *rd, const struct ac_ev_record *r,
                        const struct topup_facts *tf, char *why, size_t whylen)
{
    const struct ac_ev_body *b = &r->body;
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", (long long)tf->version);
    if (!tf->is_topup) return say(why, whylen, "its signed request body is not a top-up request");
    if (b->ref == NULL || strcmp(b->ref, ver) != 0)
        return say(why, whylen, "its ref is not the signed price version %s", ver);
    const struct pcur *c = iget(&rd->current, b->payee);
    if (c == NULL || c->version != tf->version)
        return say(why, whylen, "price version %s of %s was not the current one (%lld)", ver,
                   b->payee, c ? (long long)c->version : 0LL);
    char key[AC_ID_MAX + 1];
    price_key(b->payee, tf->version, key);
    const struct pver *pv = iget(&rd->prices, key);
    if (pv == NULL) return say(why, whylen, "price version %s was not published", ver);
    if (b->ntransfers != 2 || strcmp(b->transfers[0].asset, b->amount.asset) != 0 ||
        b->transfers[0].amount != b->amount.value ||
        strcmp(b->transfers[1].asset, tf->token_asset) != 0)
        return say(why, whylen, "its transfers are not the fiat leg and the token leg");
    struct ac_price_list l;
    struct ac_price price;
    int i = -1;
    if (ac_price_list_parse(pv->body, pv->len, &l, NULL) == AC_EC_OK)
        i = ac_price_find(&l, b->amount.asset, tf->token_asset);
    if (i < 0 || ac_price_resolve(&l.p[i], b->amount.scale, b->transfers[1].scale, &price) !=
                     AC_EC_OK)
        return say(why, whylen, "price version %s has no price for %s in %s", ver,
                   b->amount.asset, tf->token_asset);
    int64_t tokens = 0;
    if (ac_price_tokens(&price, b->amount.value, &tokens) != AC_EC_OK ||
        tokens != b->transfers[1].amount)
        return say(why, whylen,
                   "token amount mismatch: recorded %lld, recomputed %lld at price version %s",
                   (long long)b->transfers[1].amount, (long long)tokens, ver);
    rd->st.tokens_recomputed++;
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
    struct topup_facts tf;
    memset(&in, 0, sizeof in);
    if (request_facts(r, &in.req, payee, asset, &tf, why, whylen) != 0 ||
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
            enum ac_verdict want =
                r->kind == AC_EV_PAYMENT_SETTLE     ? AC_VERDICT_ALLOW
                : r->kind == AC_EV_PAYMENT_STEP_UP ? AC_VERDICT_STEP_UP
                : r->kind == AC_EV_TOPUP           ? (r->body.decision == AC_EV_STEP_UP
                                                          ? AC_VERDICT_STEP_UP
                                                          : AC_VERDICT_ALLOW)
                                                   : AC_VERDICT_DENY;
            if (d.verdict != want || !same_reasons(&d, r->body.reasons, r->body.nreasons))
                return mismatch(why, whylen, rv ? rv : "?", r, &d);
            rd->st.recomputed++;
        }
    } else {
        rd->st.not_recomputable++;
        rd->st.nr_scale++;
    }
    if (r->kind == AC_EV_TOPUP && topup_tokens(rd, r, &tf, why, whylen) != 0) return -1;
    if ((r->kind == AC_EV_TOPUP) != tf.is_topup && r->kind != AC_EV_PAYMENT_DENY)
        return say(why, whylen, "its signed request body is %s top-up request",
                   tf.is_topup ? "a" : "not a");
    /* the spend effect, as the server applied it */
    int32_t tz = m->parsed == 1 ? m->m.tz_offset_s : 0;
    int held = r->kind == AC_EV_PAYMENT_STEP_UP ||
               (r->kind == AC_EV_TOPUP && r->body.decision == AC_EV_STEP_UP);
    if (r->kind == AC_EV_PAYMENT_SETTLE || (r->kind == AC_EV_TOPUP && !held)) {
        if (ac_spend_charge(&m->spend, tz, r->time_us, in.req.amount) != 0)
            return say(why, whylen, "its amount overflows the mandate's spend");
    } else if (held) {
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

/* tab.open / tab.deny: the opening decision, a micropay payment of the hold (ledger/tabs.h). */
static int tab_decision(struct ac_redecide *rd, const struct ac_evcheck *ck,
                        const struct ac_ev_record *r, char *why, size_t whylen)
{
    const struct ac_ev_body *bd = &r->body;
    if (!bd->mandate.present || !bd->binding.present || !bd->request.present ||
        !bd->request.has_body || !bd->amount.present) {
        if (r->kind == AC_EV_TAB_OPEN) return say(why, whylen, "it lacks its decision's context");
        rd->st.not_recomputable++;
        rd->st.nr_missing++;
        return 0;
    }
    struct mnd *m = mandate_of(rd, ck, r, why, whylen);
    if (m == NULL) return -1;
    char payee[AC_ID_MAX + 1], asset[AC_ASSET_MAX + 1];
    struct ac_risk_input in;
    memset(&in, 0, sizeof in);
    struct topup_facts tf;
    if (request_facts(r, &in.req, payee, asset, &tf, why, whylen) != 0 ||
        binding_facts(rd, ck, bd->binding.hash, &in.binding, why, whylen) != 0)
        return -1;
    if (tf.is_topup) return say(why, whylen, "its request body is a top-up, not a tab");
    in.req.op = AC_OP_MICROPAY; /* a tab is a micropay decision (its body names no op) */
    if (m->parsed != 1) {
        rd->st.not_recomputable++;
        rd->st.nr_scale++;
    } else {
        in.mandate = &m->m;
        in.mandate_revoked = m->revoked;
        in.spend = &m->spend;
        in.now_us = r->time_us;
        struct ac_risk_decision d;
        ac_risk_decide(&in, &d);
        int ledger = r->kind == AC_EV_TAB_DENY && bd->nreasons == 1 &&
                     ac_reason_from_code(bd->reasons[0]) == AC_RR__COUNT;
        if (ledger) {
            if (d.verdict != AC_VERDICT_ALLOW)
                return mismatch(why, whylen, "ledger refusal", r, &d);
            rd->st.ledger_refusals++;
        } else {
            /* tab.open is ALLOW; tab.deny is any other verdict, with its reasons */
            int ok = r->kind == AC_EV_TAB_OPEN
                         ? d.verdict == AC_VERDICT_ALLOW &&
                               same_reasons(&d, bd->reasons, bd->nreasons)
                         : d.verdict != AC_VERDICT_ALLOW &&
                               same_reasons(&d, bd->reasons, bd->nreasons);
            if (!ok) return mismatch(why, whylen, ac_ev_decision_name(bd->decision), r, &d);
            rd->st.recomputed++;
        }
    }
    if (r->kind != AC_EV_TAB_OPEN) return 0;
    struct otab *t = calloc(1, sizeof *t);
    int32_t tz = m->parsed == 1 ? m->m.tz_offset_s : 0;
    if (t == NULL) return say(why, whylen, "out of memory");
    if (ac_spend_hold(&m->spend, tz, r->time_us, in.req.amount, &t->hold) != 0) {
        free(t);
        return say(why, whylen, "its amount overflows the mandate's spend");
    }
    t->mandate = m;
    if (iget(&rd->tabs, bd->tab) || iput(&rd->tabs, bd->tab, t) != 0) {
        free(t);
        return say(why, whylen, "tab %s is opened twice (or out of memory)", bd->tab);
    }
    return 0;
}

/* tab.settle / tab.close / tab.expire: the tab's spend hold ends when nothing is left to hold
 * (body.amount: the settled total after the record). */
static int tab_step(struct ac_redecide *rd, const struct ac_ev_record *r, char *why,
                    size_t whylen)
{
    struct otab *t = iget(&rd->tabs, r->body.tab);
    if (t == NULL) return say(why, whylen, "tab %s is not open earlier in the log", r->body.tab);
    if (!r->body.amount.present) return say(why, whylen, "it does not say what the tab settled");
    int64_t settled = r->body.amount.value;
    if (settled > t->hold.amount) return say(why, whylen, "it settles more than the tab holds");
    if (r->kind == AC_EV_TAB_SETTLE && settled < t->hold.amount) return 0;
    struct mnd *m = t->mandate;
    int32_t tz = m->parsed == 1 ? m->m.tz_offset_s : 0;
    if (ac_spend_split(&m->spend, tz, r->time_us, &t->hold, settled) != 0)
        return say(why, whylen, "its hold does not match the mandate's spend");
    free(t);
    /* a tombstone: the tab cannot end twice */
    return iput(&rd->tabs, r->body.tab, NULL) == 0 ? 0 : say(why, whylen, "out of memory");
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
    case AC_EV_TOPUP:
        return payment(rd, ck, r, why, whylen);
    case AC_EV_PRICE_PUBLISH:
        return price_publish(rd, r, why, whylen);
    case AC_EV_PAYMENT_CONFIRM:
    case AC_EV_PAYMENT_DECLINE:
    case AC_EV_PAYMENT_EXPIRE:
        return answer(rd, ck, r, why, whylen);
    case AC_EV_TAB_OPEN:
    case AC_EV_TAB_DENY:
        return tab_decision(rd, ck, r, why, whylen);
    case AC_EV_TAB_SETTLE:
    case AC_EV_TAB_CLOSE:
    case AC_EV_TAB_EXPIRE:
        return tab_step(rd, r, why, whylen);
    default:
        return 0;
    }
}
