/* Evidence records, hashing, checkpoints and proofs. See evidence.h and docs/evidence.md. */
#include "protocol/evidence.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "protocol/amount.h"
#include "protocol/buf.h"
#include "protocol/dcbor.h"
#include "protocol/note.h"
#include "protocol/sha256.h"

/* ==== names ================================================================================== */

static const char *const kind_names[AC_EV_KIND__COUNT] = {
    [AC_EV_BINDING_REGISTER] = "binding.register",
    [AC_EV_BINDING_REVOKE] = "binding.revoke",
    [AC_EV_MANDATE_REGISTER] = "mandate.register",
    [AC_EV_MANDATE_REVOKE] = "mandate.revoke",
    [AC_EV_PAYMENT_SETTLE] = "payment.settle",
    [AC_EV_PAYMENT_STEP_UP] = "payment.step_up",
    [AC_EV_PAYMENT_CONFIRM] = "payment.confirm",
    [AC_EV_PAYMENT_DECLINE] = "payment.decline",
    [AC_EV_PAYMENT_EXPIRE] = "payment.expire",
    [AC_EV_PAYMENT_DENY] = "payment.deny",
    [AC_EV_REFUND] = "refund",
    [AC_EV_TOPUP] = "topup",
    [AC_EV_TAB_OPEN] = "tab.open",
    [AC_EV_TAB_SETTLE] = "tab.settle",
    [AC_EV_TAB_CLOSE] = "tab.close",
    [AC_EV_TAB_EXPIRE] = "tab.expire",
    [AC_EV_CLEARING_CLOSE] = "clearing.close",
    [AC_EV_TAB_DENY] = "tab.deny",
    [AC_EV_PRICE_PUBLISH] = "price.publish",
    [AC_EV_LEDGER_ACCOUNT] = "ledger.account",
    [AC_EV_LEDGER_TRANSFER] = "ledger.transfer",
};

const char *ac_ev_kind_name(enum ac_ev_kind k)
{
    if ((int)k <= AC_EV_KIND_NONE || k >= AC_EV_KIND__COUNT) return NULL;
    return kind_names[k];
}

enum ac_ev_kind ac_ev_kind_from_name(const char *s, size_t len)
{
    for (int k = 1; k < AC_EV_KIND__COUNT; k++)
        if (strlen(kind_names[k]) == len && memcmp(kind_names[k], s, len) == 0)
            return (enum ac_ev_kind)k;
    return AC_EV_KIND_NONE;
}

static const char *const decision_names[] = {NULL, "allow", "step_up", "deny"};

const char *ac_ev_decision_name(enum ac_ev_decision d)
{
    if ((int)d <= AC_EV_DECISION_NONE || d > AC_EV_DENY) return NULL;
    return decision_names[d];
}

/* ==== per-kind body rules ==================================================================== */

enum {
    F_PAYMENT = 1u << 0,
    F_USER = 1u << 1,
    F_AGENT = 1u << 2,
    F_PAYEE = 1u << 3,
    F_TAB = 1u << 4,
    F_REF = 1u << 5,
    F_AMOUNT = 1u << 6,
    F_BINDING = 1u << 7,
    F_MANDATE = 1u << 8,
    F_REVOCATION = 1u << 9,
    F_CONFIRMATION = 1u << 10,
    F_VOUCHER = 1u << 11,
    F_REPORT = 1u << 12,
    F_REQUEST = 1u << 13,
    F_DECISION = 1u << 14,
    F_REASONS = 1u << 15,
    F_TRANSFERS = 1u << 16,
    F_CATEGORY = 1u << 17,
    F_ACTOR = 1u << 18,
    F_ACCOUNTS = 1u << 19,
};

/* The body member names, in the bit order above (docs/evidence.md lists the same). */
static const char *const field_names[] = {
    "payment",  "user",    "agent",      "payee",        "tab",     "ref",      "amount",
    "binding",  "mandate", "revocation", "confirmation", "voucher", "report",   "request",
    "decision", "reasons", "transfers",  "category",     "actor",   "accounts",
};
#define NFIELDS (sizeof field_names / sizeof field_names[0])

/* What a payment-like request decision carries. */
#define F_DECIDED                                                                                  \
    (F_USER | F_AGENT | F_PAYEE | F_AMOUNT | F_BINDING | F_MANDATE | F_REQUEST | F_DECISION)
#define F_CONTEXT                                                                                  \
    (F_USER | F_AGENT | F_PAYEE | F_CATEGORY | F_AMOUNT | F_BINDING | F_MANDATE | F_REF)

static const struct {
    uint32_t required, allowed; /* allowed includes required */
} rules[AC_EV_KIND__COUNT] = {
    [AC_EV_BINDING_REGISTER] = {F_USER | F_AGENT | F_BINDING,
                                F_USER | F_AGENT | F_BINDING | F_REF | F_REQUEST},
    [AC_EV_BINDING_REVOKE] = {F_USER | F_BINDING | F_REVOCATION, F_USER | F_AGENT | F_BINDING |
                                                                     F_REVOCATION | F_REF |
                                                                     F_REQUEST | F_REASONS},
    [AC_EV_MANDATE_REGISTER] = {F_USER | F_MANDATE,
                                F_USER | F_AGENT | F_BINDING | F_MANDATE | F_REF | F_REQUEST},
    [AC_EV_MANDATE_REVOKE] = {F_USER | F_MANDATE | F_REVOCATION,
                              F_USER | F_MANDATE | F_REVOCATION | F_REF | F_REQUEST | F_REASONS},
    [AC_EV_PAYMENT_SETTLE] = {F_PAYMENT | F_DECIDED | F_TRANSFERS,
                              F_PAYMENT | F_DECIDED | F_TRANSFERS | F_REF | F_REASONS | F_CATEGORY},
    [AC_EV_PAYMENT_STEP_UP] = {F_PAYMENT | F_DECIDED | F_REASONS | F_TRANSFERS,
                               F_PAYMENT | F_DECIDED | F_REASONS | F_TRANSFERS | F_REF |
                                   F_CATEGORY},
    [AC_EV_PAYMENT_CONFIRM] = {F_PAYMENT | F_USER | F_CONFIRMATION | F_TRANSFERS,
                               F_PAYMENT | F_CONTEXT | F_CONFIRMATION | F_TRANSFERS},
    [AC_EV_PAYMENT_DECLINE] = {F_PAYMENT | F_USER | F_CONFIRMATION | F_TRANSFERS,
                               F_PAYMENT | F_CONTEXT | F_CONFIRMATION | F_TRANSFERS | F_REASONS},
    [AC_EV_PAYMENT_EXPIRE] = {F_PAYMENT | F_TRANSFERS,
                              F_PAYMENT | F_CONTEXT | F_TRANSFERS | F_REASONS},
    [AC_EV_PAYMENT_DENY] = {F_PAYMENT | F_DECISION | F_REASONS,
                            F_PAYMENT | F_CONTEXT | F_REQUEST | F_DECISION | F_REASONS},
    [AC_EV_REFUND] = {F_PAYMENT | F_AMOUNT | F_TRANSFERS, F_PAYMENT | F_AMOUNT | F_TRANSFERS |
                                                              F_USER | F_PAYEE | F_REF | F_REQUEST |
                                                              F_REASONS},
    [AC_EV_TOPUP] = {F_PAYMENT | F_DECIDED | F_TRANSFERS,
                     F_PAYMENT | F_DECIDED | F_TRANSFERS | F_REF | F_REASONS | F_CATEGORY},
    [AC_EV_TAB_OPEN] = {F_TAB | F_DECIDED | F_TRANSFERS,
                        F_TAB | F_DECIDED | F_TRANSFERS | F_REF | F_REASONS | F_CATEGORY},
    [AC_EV_TAB_SETTLE] = {F_TAB | F_VOUCHER | F_TRANSFERS,
                          F_TAB | F_VOUCHER | F_TRANSFERS | F_CONTEXT | F_REQUEST},
    [AC_EV_TAB_CLOSE] = {F_TAB | F_TRANSFERS,
                         F_TAB | F_TRANSFERS | F_VOUCHER | F_CONTEXT | F_REQUEST},
    [AC_EV_TAB_EXPIRE] = {F_TAB | F_TRANSFERS, F_TAB | F_TRANSFERS | F_CONTEXT | F_REASONS},
    [AC_EV_CLEARING_CLOSE] = {F_REF | F_TRANSFERS, F_REF | F_TRANSFERS | F_REPORT},
    [AC_EV_TAB_DENY] = {F_TAB | F_DECISION | F_REASONS,
                        F_TAB | F_CONTEXT | F_REQUEST | F_DECISION | F_REASONS},
    /* payee: the merchant; ref: the version; request: its signed price list, verbatim */
    [AC_EV_PRICE_PUBLISH] = {F_PAYEE | F_REF | F_REQUEST, F_PAYEE | F_REF | F_REQUEST},
    [AC_EV_LEDGER_ACCOUNT] = {F_ACTOR | F_ACCOUNTS, F_ACTOR | F_ACCOUNTS | F_REF},
    [AC_EV_LEDGER_TRANSFER] = {F_ACTOR | F_TRANSFERS, F_ACTOR | F_TRANSFERS | F_REF},
};

static uint32_t present_fields(const struct ac_ev_body *b)
{
    uint32_t f = 0;
    if (b->payment) f |= F_PAYMENT;
    if (b->user) f |= F_USER;
    if (b->agent) f |= F_AGENT;
    if (b->payee) f |= F_PAYEE;
    if (b->tab) f |= F_TAB;
    if (b->ref) f |= F_REF;
    if (b->amount.present) f |= F_AMOUNT;
    if (b->binding.present) f |= F_BINDING;
    if (b->mandate.present) f |= F_MANDATE;
    if (b->revocation.present) f |= F_REVOCATION;
    if (b->confirmation.present) f |= F_CONFIRMATION;
    if (b->voucher.present) f |= F_VOUCHER;
    if (b->report.present) f |= F_REPORT;
    if (b->request.present) f |= F_REQUEST;
    if (b->decision != AC_EV_DECISION_NONE) f |= F_DECISION;
    if (b->nreasons > 0) f |= F_REASONS;
    if (b->ntransfers > 0) f |= F_TRANSFERS;
    if (b->category) f |= F_CATEGORY;
    if (b->actor) f |= F_ACTOR;
    if (b->naccounts > 0) f |= F_ACCOUNTS;
    return f;
}

/* ==== validation ============================================================================= */

/* Free text (ref, key ids): 1..256 bytes, no control characters (UTF-8 validity is checked by
 * the CBOR layer). */
static int text_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 256) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

static int docref_ok(const struct ac_ev_docref *d, const char *name, char *err, size_t errlen)
{
    if (!d->present) return 0;
    if (d->id != NULL && !ac_id_valid(d->id)) return ac_errf(err, errlen, "%s.id is invalid", name);
    if (d->kid != NULL && !text_ok(d->kid)) return ac_errf(err, errlen, "%s.kid is invalid", name);
    return 0;
}

int ac_ev_record_validate(const struct ac_ev_record *r, char *err, size_t errlen)
{
    if (r == NULL) return ac_errf(err, errlen, "no record");
    if (ac_ev_kind_name(r->kind) == NULL) return ac_errf(err, errlen, "kind is unknown");
    if (r->time_us < 0) return ac_errf(err, errlen, "time is negative");
    if (r->seq == 0) {
        static const uint8_t zero[AC_EV_HASH_LEN];
        if (memcmp(r->prev, zero, AC_EV_HASH_LEN) != 0)
            return ac_errf(err, errlen, "prev of record 0 must be 32 zero bytes");
    }
    const struct ac_ev_body *b = &r->body;
    const struct {
        const char *v, *name;
    } ids[] = {{b->payment, "payment"}, {b->user, "user"}, {b->agent, "agent"},
               {b->payee, "payee"},     {b->tab, "tab"},   {b->category, "category"},
               {b->actor, "actor"}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].v != NULL && !ac_id_valid(ids[i].v))
            return ac_errf(err, errlen, "%s is not a valid id", ids[i].name);
    if (b->ref != NULL && !text_ok(b->ref)) return ac_errf(err, errlen, "ref is invalid");
    if (b->amount.present) {
        if (b->amount.value < 0) return ac_errf(err, errlen, "amount.value is negative");
        if (b->amount.asset == NULL || !ac_asset_code_valid(b->amount.asset))
            return ac_errf(err, errlen, "amount.asset is invalid");
        if (b->amount.scale > AC_SCALE_MAX) return ac_errf(err, errlen, "amount.scale is invalid");
    }
    if (docref_ok(&b->binding, "binding", err, errlen) ||
        docref_ok(&b->mandate, "mandate", err, errlen) ||
        docref_ok(&b->revocation, "revocation", err, errlen) ||
        docref_ok(&b->confirmation, "confirmation", err, errlen) ||
        docref_ok(&b->voucher, "voucher", err, errlen) ||
        docref_ok(&b->report, "report", err, errlen))
        return -1;
    if (b->request.present) {
        const struct ac_ev_request *q = &b->request;
        if (q->base == NULL || q->base_len == 0 || q->base_len > AC_EV_RECORD_MAX)
            return ac_errf(err, errlen, "request.base is empty or too long");
        if (q->sig == NULL || q->sig_len == 0 || q->sig_len > 1024)
            return ac_errf(err, errlen, "request.sig is empty or too long");
        if (q->keyid == NULL || !text_ok(q->keyid))
            return ac_errf(err, errlen, "request.keyid is invalid");
        if (q->has_body && (q->body_len > AC_EV_BODY_MAX || (q->body == NULL && q->body_len)))
            return ac_errf(err, errlen, "request.body is too long");
    }
    if ((int)b->decision < AC_EV_DECISION_NONE || b->decision > AC_EV_DENY)
        return ac_errf(err, errlen, "decision is unknown");
    if (b->nreasons > AC_EV_MAX_REASONS) return ac_errf(err, errlen, "too many reasons");
    for (size_t i = 0; i < b->nreasons; i++)
        if (b->reasons == NULL || b->reasons[i] == NULL || !ac_id_valid(b->reasons[i]))
            return ac_errf(err, errlen, "reasons[%zu] is not a valid code", i);
    if (b->ntransfers > AC_EV_MAX_TRANSFERS) return ac_errf(err, errlen, "too many transfers");
    for (size_t i = 0; i < b->ntransfers; i++) {
        const struct ac_ev_transfer *t = b->transfers ? &b->transfers[i] : NULL;
        if (t == NULL || t->id == NULL || !ac_id_valid(t->id) || t->debit == NULL ||
            !ac_id_valid(t->debit) || t->credit == NULL || !ac_id_valid(t->credit))
            return ac_errf(err, errlen, "transfers[%zu] has an invalid id or account", i);
        if (t->amount < 0) return ac_errf(err, errlen, "transfers[%zu].amount is negative", i);
        if (t->asset == NULL || !ac_asset_code_valid(t->asset) || t->scale > AC_SCALE_MAX)
            return ac_errf(err, errlen, "transfers[%zu] has an invalid asset or scale", i);
        if (t->flags & ~0x3fu) return ac_errf(err, errlen, "transfers[%zu].flags is invalid", i);
        if (t->pending_id != NULL && !ac_id_valid(t->pending_id))
            return ac_errf(err, errlen, "transfers[%zu].pending is invalid", i);
        if (t->timeout_s != 0 && (!(t->flags & 0x02u) || t->timeout_s > AC_EV_TIMEOUT_MAX))
            return ac_errf(err, errlen, "transfers[%zu].timeout is invalid", i);
    }
    if (b->naccounts > AC_EV_MAX_ACCOUNTS) return ac_errf(err, errlen, "too many accounts");
    for (size_t i = 0; i < b->naccounts; i++) {
        const struct ac_ev_account *ac = b->accounts ? &b->accounts[i] : NULL;
        if (ac == NULL || ac->id == NULL || !ac_id_valid(ac->id))
            return ac_errf(err, errlen, "accounts[%zu].id is invalid", i);
        if (ac->asset == NULL || !ac_asset_code_valid(ac->asset))
            return ac_errf(err, errlen, "accounts[%zu].asset is invalid", i);
        if (ac->owner != NULL && !ac_id_valid(ac->owner))
            return ac_errf(err, errlen, "accounts[%zu].owner is invalid", i);
        if ((ac->flags & ~0x3u) || ac->flags == 0x3u)
            return ac_errf(err, errlen, "accounts[%zu].flags is invalid", i);
    }
    uint32_t have = present_fields(b), req = rules[r->kind].required,
             allowed = rules[r->kind].allowed;
    for (unsigned i = 0; i < NFIELDS; i++) {
        uint32_t bit = 1u << i;
        if ((req & bit) && !(have & bit))
            return ac_errf(err, errlen, "%s requires body.%s", kind_names[r->kind], field_names[i]);
        if ((have & bit) && !(allowed & bit))
            return ac_errf(err, errlen, "%s does not allow body.%s", kind_names[r->kind],
                           field_names[i]);
    }
    if (b->category != NULL && b->payee == NULL)
        return ac_errf(err, errlen, "category without payee");
    enum ac_ev_decision want = AC_EV_DECISION_NONE;
    if (r->kind == AC_EV_PAYMENT_SETTLE) want = AC_EV_ALLOW;
    if (r->kind == AC_EV_PAYMENT_STEP_UP) want = AC_EV_STEP_UP;
    if (r->kind == AC_EV_PAYMENT_DENY) want = AC_EV_DENY;
    if (r->kind == AC_EV_TAB_OPEN) want = AC_EV_ALLOW;
    if (r->kind == AC_EV_TAB_DENY) want = AC_EV_DENY;
    if (want != AC_EV_DECISION_NONE && b->decision != want)
        return ac_errf(err, errlen, "%s requires decision %s", kind_names[r->kind],
                       decision_names[want]);
    if (want == AC_EV_DECISION_NONE && b->decision == AC_EV_DENY)
        return ac_errf(err, errlen, "%s cannot record a deny decision", kind_names[r->kind]);
    return 0;
}

/* ==== encoding ===============================================================================
 * Written straight into one buffer (ac_dcbor_w): the record is on the sequencer's serial path,
 * where building a libcbor item tree, sorting it and freeing it was a third of that thread's
 * time. Each map's pairs are written in canonical key order (RFC 8949 4.2.1: shorter key first,
 * then bytewise), spelled out below per map; the tests decode every kind through
 * ac_dcbor_check(), which refuses any other order, and npm cbor re-encodes them byte for byte. */

static void w_key(struct ac_dcbor_w *w, const char *k)
{
    ac_dcbor_w_textz(w, k);
}

/* A required member. */
static void w_text(struct ac_dcbor_w *w, const char *key, const char *v)
{
    w_key(w, key);
    ac_dcbor_w_textz(w, v);
}

static void w_uint(struct ac_dcbor_w *w, const char *key, uint64_t v)
{
    w_key(w, key);
    ac_dcbor_w_uint(w, v);
}

/* An optional member: left out when NULL (text) or 0 (numbers). */
static void w_text_member(struct ac_dcbor_w *w, const char *key, const char *v)
{
    if (v != NULL) w_text(w, key, v);
}

static void w_uint_member(struct ac_dcbor_w *w, const char *key, uint64_t v)
{
    if (v != 0) w_uint(w, key, v);
}

/* id, kid, hash */
static void w_docref(struct ac_dcbor_w *w, const struct ac_ev_docref *d)
{
    ac_dcbor_w_map(w, 1 + (d->id != NULL) + (d->kid != NULL));
    w_text_member(w, "id", d->id);
    w_text_member(w, "kid", d->kid);
    w_key(w, "hash");
    ac_dcbor_w_bytes(w, d->hash, AC_EV_HASH_LEN);
}

/* asset, scale, value */
static void w_amount(struct ac_dcbor_w *w, int64_t value, const char *asset, unsigned scale)
{
    ac_dcbor_w_map(w, 3);
    w_text(w, "asset", asset);
    w_uint(w, "scale", scale);
    w_key(w, "value");
    ac_dcbor_w_int(w, value);
}

/* sig, base, body, keyid */
static void w_request(struct ac_dcbor_w *w, const struct ac_ev_request *q)
{
    ac_dcbor_w_map(w, 3 + (q->has_body != 0));
    w_key(w, "sig");
    ac_dcbor_w_bytes(w, q->sig, q->sig_len);
    w_key(w, "base");
    ac_dcbor_w_bytes(w, q->base, q->base_len);
    if (q->has_body) {
        w_key(w, "body");
        ac_dcbor_w_bytes(w, q->body, q->body_len);
    }
    w_text(w, "keyid", q->keyid);
}

/* id, code, asset, debit, flags, scale, amount, credit, pending, timeout */
static void w_transfer(struct ac_dcbor_w *w, const struct ac_ev_transfer *t)
{
    ac_dcbor_w_map(w, 7 + (t->pending_id != NULL) + (t->timeout_s != 0) + (t->code != 0));
    w_text(w, "id", t->id);
    w_uint_member(w, "code", t->code);
    w_text(w, "asset", t->asset);
    w_text(w, "debit", t->debit);
    w_uint(w, "flags", t->flags);
    w_uint(w, "scale", t->scale);
    w_key(w, "amount");
    ac_dcbor_w_int(w, t->amount);
    w_text(w, "credit", t->credit);
    w_text_member(w, "pending", t->pending_id);
    w_uint_member(w, "timeout", t->timeout_s);
}

/* id, asset, flags, owner */
static void w_account(struct ac_dcbor_w *w, const struct ac_ev_account *ac)
{
    ac_dcbor_w_map(w, 3 + (ac->owner != NULL));
    w_text(w, "id", ac->id);
    w_text(w, "asset", ac->asset);
    w_uint(w, "flags", ac->flags);
    w_text_member(w, "owner", ac->owner);
}

static void w_doc_member(struct ac_dcbor_w *w, const char *key, const struct ac_ev_docref *d)
{
    if (!d->present) return;
    w_key(w, key);
    w_docref(w, d);
}

/* The body's members in canonical order: ref, tab | user | actor, agent, payee | amount, report |
 * binding, mandate, payment, reasons, request, voucher | accounts, category, decision |
 * transfers | revocation | confirmation. */
static void w_body(struct ac_dcbor_w *w, const struct ac_ev_body *b)
{
    uint32_t f = present_fields(b), npairs = 0;
    for (; f; f &= f - 1)
        npairs++;
    ac_dcbor_w_map(w, npairs);
    w_text_member(w, "ref", b->ref);
    w_text_member(w, "tab", b->tab);
    w_text_member(w, "user", b->user);
    w_text_member(w, "actor", b->actor);
    w_text_member(w, "agent", b->agent);
    w_text_member(w, "payee", b->payee);
    if (b->amount.present) {
        w_key(w, "amount");
        w_amount(w, b->amount.value, b->amount.asset, b->amount.scale);
    }
    w_doc_member(w, "report", &b->report);
    w_doc_member(w, "binding", &b->binding);
    w_doc_member(w, "mandate", &b->mandate);
    w_text_member(w, "payment", b->payment);
    if (b->nreasons > 0) {
        w_key(w, "reasons");
        ac_dcbor_w_array(w, b->nreasons);
        for (size_t i = 0; i < b->nreasons; i++)
            ac_dcbor_w_textz(w, b->reasons[i]);
    }
    if (b->request.present) {
        w_key(w, "request");
        w_request(w, &b->request);
    }
    w_doc_member(w, "voucher", &b->voucher);
    if (b->naccounts > 0) {
        w_key(w, "accounts");
        ac_dcbor_w_array(w, b->naccounts);
        for (size_t i = 0; i < b->naccounts; i++)
            w_account(w, &b->accounts[i]);
    }
    w_text_member(w, "category", b->category);
    if (b->decision != AC_EV_DECISION_NONE) {
        w_text(w, "decision", decision_names[b->decision]);
    }
    if (b->ntransfers > 0) {
        w_key(w, "transfers");
        ac_dcbor_w_array(w, b->ntransfers);
        for (size_t i = 0; i < b->ntransfers; i++)
            w_transfer(w, &b->transfers[i]);
    }
    w_doc_member(w, "revocation", &b->revocation);
    w_doc_member(w, "confirmation", &b->confirmation);
}

/* v, seq, body, kind, prev, time */
int ac_ev_record_encode(const struct ac_ev_record *r, uint8_t **out, size_t *len, char *err,
                        size_t errlen)
{
    *out = NULL;
    *len = 0;
    if (ac_ev_record_validate(r, err, errlen) != 0) return -1;
    struct ac_dcbor_w w = {0};
    ac_dcbor_w_map(&w, 6);
    w_key(&w, "v");
    ac_dcbor_w_uint(&w, AC_EV_VERSION);
    w_key(&w, "seq");
    ac_dcbor_w_uint(&w, r->seq);
    w_key(&w, "body");
    w_body(&w, &r->body);
    w_key(&w, "kind");
    ac_dcbor_w_textz(&w, kind_names[r->kind]);
    w_key(&w, "prev");
    ac_dcbor_w_bytes(&w, r->prev, AC_EV_HASH_LEN);
    w_key(&w, "time");
    ac_dcbor_w_uint(&w, (uint64_t)r->time_us);
    if (w.st != AC_DCBOR_OK) {
        free(w.p);
        if (w.st == AC_DCBOR_ENOMEM) return ac_errf(err, errlen, "out of memory");
        return ac_errf(err, errlen, "cbor: %s", ac_dcbor_strerror(w.st));
    }
    if (w.n > AC_EV_RECORD_MAX) {
        free(w.p);
        return ac_errf(err, errlen, "record exceeds %u bytes", AC_EV_RECORD_MAX);
    }
    *out = w.p;
    *len = w.n;
    return 0;
}

/* ==== decoding ===============================================================================
 * The bytes are first proven canonical by ac_dcbor_check(); a small cursor then reads them. Every
 * read is still bounds-checked (defence in depth). Strings are copied into one arena whose size
 * is bounded by the input: a string of n bytes costs at least n+1 encoded bytes, and takes n+1
 * arena bytes (NUL-terminated). */

struct rd {
    const uint8_t *p, *end;
    char *arena;
    size_t used, cap;
    char *err;
    size_t errlen;
};

enum { M_UINT = 0, M_NEG = 1, M_BYTES = 2, M_TEXT = 3, M_ARRAY = 4, M_MAP = 5 };

static int rd_head(struct rd *r, int *major, uint64_t *v)
{
    if (r->p >= r->end) return -1;
    uint8_t ib = *r->p++;
    *major = ib >> 5;
    uint8_t ai = ib & 0x1f;
    if (ai < 24) {
        *v = ai;
        return 0;
    }
    size_t n = ai == 24 ? 1 : ai == 25 ? 2 : ai == 26 ? 4 : ai == 27 ? 8 : 0;
    if (n == 0 || (size_t)(r->end - r->p) < n) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | *r->p++;
    *v = x;
    return 0;
}

static int rd_fail(struct rd *r, const char *what)
{
    return ac_errf(r->err, r->errlen, "%s", what);
}

/* A string of the given major type; returns its bytes (in the input) and length. */
static int rd_str(struct rd *r, int major, const uint8_t **s, size_t *n, const char *what)
{
    int mj;
    uint64_t v;
    if (rd_head(r, &mj, &v) != 0 || mj != major || v > (uint64_t)(r->end - r->p))
        return rd_fail(r, what);
    *s = r->p;
    *n = (size_t)v;
    r->p += v;
    return 0;
}

static void *arena_take(struct rd *r, size_t n)
{
    if (r->cap - r->used < n) return NULL; /* cannot happen: sized from the input */
    void *p = r->arena + r->used;
    r->used += n;
    return p;
}

static int rd_text(struct rd *r, const char **out, const char *what)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    if (rd_str(r, M_TEXT, &s, &n, what) != 0) return -1;
    if (memchr(s, 0, n) != NULL) return rd_fail(r, what);
    char *c = arena_take(r, n + 1);
    if (c == NULL) return rd_fail(r, what);
    memcpy(c, s, n);
    c[n] = '\0';
    *out = c;
    return 0;
}

static int rd_bytes(struct rd *r, const uint8_t **out, size_t *len, const char *what)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    if (rd_str(r, M_BYTES, &s, &n, what) != 0) return -1;
    uint8_t *c = arena_take(r, n + 1);
    if (c == NULL) return rd_fail(r, what);
    memcpy(c, s, n);
    c[n] = 0;
    *out = c;
    *len = n;
    return 0;
}

static int rd_hash(struct rd *r, uint8_t out[AC_EV_HASH_LEN], const char *what)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    if (rd_str(r, M_BYTES, &s, &n, what) != 0 || n != AC_EV_HASH_LEN) return rd_fail(r, what);
    memcpy(out, s, AC_EV_HASH_LEN);
    return 0;
}

static int rd_uint(struct rd *r, uint64_t max, uint64_t *out, const char *what)
{
    int mj;
    uint64_t v;
    if (rd_head(r, &mj, &v) != 0 || mj != M_UINT || v > max) return rd_fail(r, what);
    *out = v;
    return 0;
}

/* int64 (either sign on the wire; the validator decides about negatives) */
static int rd_int(struct rd *r, int64_t *out, const char *what)
{
    int mj;
    uint64_t v;
    if (rd_head(r, &mj, &v) != 0 || v > (uint64_t)INT64_MAX) return rd_fail(r, what);
    if (mj == M_UINT)
        *out = (int64_t)v;
    else if (mj == M_NEG)
        *out = -1 - (int64_t)v;
    else
        return rd_fail(r, what);
    return 0;
}

static int rd_container(struct rd *r, int major, uint64_t *n, const char *what)
{
    int mj;
    if (rd_head(r, &mj, n) != 0 || mj != major) return rd_fail(r, what);
    return 0;
}

/* The next map key (a text string); keys are short ASCII names. */
static int rd_key(struct rd *r, char *key, size_t cap)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    if (rd_str(r, M_TEXT, &s, &n, "map key is not a text string") != 0) return -1;
    if (n >= cap) return ac_errf(r->err, r->errlen, "unknown member (long key)");
    memcpy(key, s, n);
    key[n] = '\0';
    return 0;
}

static int rd_docref(struct rd *r, struct ac_ev_docref *d, const char *name)
{
    uint64_t n;
    char key[16];
    if (rd_container(r, M_MAP, &n, name) != 0) return -1;
    int have_hash = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (rd_key(r, key, sizeof key) != 0) return -1;
        int rc;
        if (strcmp(key, "hash") == 0)
            rc = rd_hash(r, d->hash, "docref hash is not 32 bytes"), have_hash = 1;
        else if (strcmp(key, "id") == 0)
            rc = rd_text(r, &d->id, "docref id is not text");
        else if (strcmp(key, "kid") == 0)
            rc = rd_text(r, &d->kid, "docref kid is not text");
        else
            return ac_errf(r->err, r->errlen, "%s: unknown member %s", name, key);
        if (rc != 0) return -1;
    }
    if (!have_hash) return ac_errf(r->err, r->errlen, "%s: hash missing", name);
    d->present = 1;
    return 0;
}

static int rd_amount(struct rd *r, int64_t *value, const char **asset, unsigned *scale,
                     const char *name)
{
    uint64_t n, sc = 0;
    char key[16];
    int seen = 0;
    if (rd_container(r, M_MAP, &n, name) != 0) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (rd_key(r, key, sizeof key) != 0) return -1;
        int rc;
        if (strcmp(key, "value") == 0)
            rc = rd_int(r, value, "amount value is not an int64"), seen |= 1;
        else if (strcmp(key, "asset") == 0)
            rc = rd_text(r, asset, "amount asset is not text"), seen |= 2;
        else if (strcmp(key, "scale") == 0)
            rc = rd_uint(r, AC_SCALE_MAX, &sc, "amount scale is invalid"), seen |= 4;
        else
            return ac_errf(r->err, r->errlen, "%s: unknown member %s", name, key);
        if (rc != 0) return -1;
    }
    if (seen != 7) return ac_errf(r->err, r->errlen, "%s: value, asset and scale required", name);
    *scale = (unsigned)sc;
    return 0;
}

static int rd_request(struct rd *r, struct ac_ev_request *q)
{
    uint64_t n;
    char key[16];
    int seen = 0;
    if (rd_container(r, M_MAP, &n, "request is not a map") != 0) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (rd_key(r, key, sizeof key) != 0) return -1;
        int rc;
        if (strcmp(key, "base") == 0)
            rc = rd_bytes(r, &q->base, &q->base_len, "request base is not bytes"), seen |= 1;
        else if (strcmp(key, "sig") == 0)
            rc = rd_bytes(r, &q->sig, &q->sig_len, "request sig is not bytes"), seen |= 2;
        else if (strcmp(key, "keyid") == 0)
            rc = rd_text(r, &q->keyid, "request keyid is not text"), seen |= 4;
        else if (strcmp(key, "body") == 0)
            rc = rd_bytes(r, &q->body, &q->body_len, "request body is not bytes"), q->has_body = 1;
        else
            return ac_errf(r->err, r->errlen, "request: unknown member %s", key);
        if (rc != 0) return -1;
    }
    if (seen != 7) return ac_errf(r->err, r->errlen, "request: base, sig and keyid required");
    q->present = 1;
    return 0;
}

static int rd_transfer(struct rd *r, struct ac_ev_transfer *t)
{
    uint64_t n, v;
    char key[16];
    int seen = 0;
    if (rd_container(r, M_MAP, &n, "transfer is not a map") != 0) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (rd_key(r, key, sizeof key) != 0) return -1;
        int rc;
        if (strcmp(key, "id") == 0)
            rc = rd_text(r, &t->id, "transfer id is not text"), seen |= 1;
        else if (strcmp(key, "debit") == 0)
            rc = rd_text(r, &t->debit, "transfer debit is not text"), seen |= 2;
        else if (strcmp(key, "credit") == 0)
            rc = rd_text(r, &t->credit, "transfer credit is not text"), seen |= 4;
        else if (strcmp(key, "amount") == 0)
            rc = rd_int(r, &t->amount, "transfer amount is not an int64"), seen |= 8;
        else if (strcmp(key, "asset") == 0)
            rc = rd_text(r, &t->asset, "transfer asset is not text"), seen |= 16;
        else if (strcmp(key, "scale") == 0)
            rc = rd_uint(r, AC_SCALE_MAX, &v, "transfer scale is invalid"), t->scale = (unsigned)v,
            seen |= 32;
        else if (strcmp(key, "flags") == 0)
            rc = rd_uint(r, UINT32_MAX, &v, "transfer flags is invalid"), t->flags = (uint32_t)v,
            seen |= 64;
        else if (strcmp(key, "pending") == 0)
            rc = rd_text(r, &t->pending_id, "transfer pending is not text");
        else if (strcmp(key, "timeout") == 0) /* present only when not 0 (canonical form) */
            rc = rd_uint(r, UINT32_MAX, &v, "transfer timeout is invalid") || v == 0
                     ? rd_fail(r, "transfer timeout is invalid")
                     : 0,
            t->timeout_s = (uint32_t)v;
        else if (strcmp(key, "code") == 0) /* likewise */
            rc = rd_uint(r, UINT16_MAX, &v, "transfer code is invalid") || v == 0
                     ? rd_fail(r, "transfer code is invalid")
                     : 0,
            t->code = (uint16_t)v;
        else
            return ac_errf(r->err, r->errlen, "transfer: unknown member %s", key);
        if (rc != 0) return -1;
    }
    if (seen != 127) return ac_errf(r->err, r->errlen, "transfer: a required member is missing");
    return 0;
}

static int rd_account(struct rd *r, struct ac_ev_account *ac)
{
    uint64_t n, v;
    char key[16];
    int seen = 0;
    if (rd_container(r, M_MAP, &n, "account is not a map") != 0) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (rd_key(r, key, sizeof key) != 0) return -1;
        int rc;
        if (strcmp(key, "id") == 0)
            rc = rd_text(r, &ac->id, "account id is not text"), seen |= 1;
        else if (strcmp(key, "asset") == 0)
            rc = rd_text(r, &ac->asset, "account asset is not text"), seen |= 2;
        else if (strcmp(key, "flags") == 0)
            rc = rd_uint(r, UINT32_MAX, &v, "account flags is invalid"), ac->flags = (uint32_t)v,
            seen |= 4;
        else if (strcmp(key, "owner") == 0)
            rc = rd_text(r, &ac->owner, "account owner is not text");
        else
            return ac_errf(r->err, r->errlen, "account: unknown member %s", key);
        if (rc != 0) return -1;
    }
    if (seen != 7) return ac_errf(r->err, r->errlen, "account: id, asset and flags required");
    return 0;
}

static int rd_body(struct rd *r, struct ac_ev_body *b, struct ac_ev_transfer *tr,
                   const char **reasons, struct ac_ev_account *acs)
{
    uint64_t n;
    char key[16];
    if (rd_container(r, M_MAP, &n, "body is not a map") != 0) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (rd_key(r, key, sizeof key) != 0) return -1;
        int rc = 0;
        const char **tp = NULL;
        struct ac_ev_docref *dp = NULL;
        if (strcmp(key, "payment") == 0)
            tp = &b->payment;
        else if (strcmp(key, "user") == 0)
            tp = &b->user;
        else if (strcmp(key, "agent") == 0)
            tp = &b->agent;
        else if (strcmp(key, "payee") == 0)
            tp = &b->payee;
        else if (strcmp(key, "tab") == 0)
            tp = &b->tab;
        else if (strcmp(key, "ref") == 0)
            tp = &b->ref;
        else if (strcmp(key, "category") == 0)
            tp = &b->category;
        else if (strcmp(key, "actor") == 0)
            tp = &b->actor;
        else if (strcmp(key, "binding") == 0)
            dp = &b->binding;
        else if (strcmp(key, "mandate") == 0)
            dp = &b->mandate;
        else if (strcmp(key, "revocation") == 0)
            dp = &b->revocation;
        else if (strcmp(key, "confirmation") == 0)
            dp = &b->confirmation;
        else if (strcmp(key, "voucher") == 0)
            dp = &b->voucher;
        else if (strcmp(key, "report") == 0)
            dp = &b->report;
        if (tp != NULL) {
            rc = rd_text(r, tp, "body text member is not text");
        } else if (dp != NULL) {
            rc = rd_docref(r, dp, key);
        } else if (strcmp(key, "amount") == 0) {
            rc = rd_amount(r, &b->amount.value, &b->amount.asset, &b->amount.scale, "amount");
            b->amount.present = 1;
        } else if (strcmp(key, "request") == 0) {
            rc = rd_request(r, &b->request);
        } else if (strcmp(key, "decision") == 0) {
            const uint8_t *s = NULL;
            size_t sn = 0;
            rc = rd_str(r, M_TEXT, &s, &sn, "decision is not text");
            for (int d = AC_EV_ALLOW; rc == 0 && d <= AC_EV_DENY; d++)
                if (strlen(decision_names[d]) == sn && memcmp(decision_names[d], s, sn) == 0)
                    b->decision = (enum ac_ev_decision)d;
            if (rc == 0 && b->decision == AC_EV_DECISION_NONE)
                rc = rd_fail(r, "decision is unknown");
        } else if (strcmp(key, "reasons") == 0) {
            uint64_t k;
            rc = rd_container(r, M_ARRAY, &k, "reasons is not an array");
            if (rc == 0 && (k == 0 || k > AC_EV_MAX_REASONS))
                rc = rd_fail(r, "reasons must hold 1..32 codes");
            for (uint64_t j = 0; rc == 0 && j < k; j++)
                rc = rd_text(r, &reasons[j], "reason is not text");
            b->reasons = reasons;
            b->nreasons = rc == 0 ? (size_t)k : 0;
        } else if (strcmp(key, "transfers") == 0) {
            uint64_t k;
            rc = rd_container(r, M_ARRAY, &k, "transfers is not an array");
            if (rc == 0 && (k == 0 || k > AC_EV_MAX_TRANSFERS))
                rc = rd_fail(r, "transfers must hold 1..64 transfers");
            for (uint64_t j = 0; rc == 0 && j < k; j++)
                rc = rd_transfer(r, &tr[j]);
            b->transfers = tr;
            b->ntransfers = rc == 0 ? (size_t)k : 0;
        } else if (strcmp(key, "accounts") == 0) {
            uint64_t k;
            rc = rd_container(r, M_ARRAY, &k, "accounts is not an array");
            if (rc == 0 && (k == 0 || k > AC_EV_MAX_ACCOUNTS))
                rc = rd_fail(r, "accounts must hold 1..64 accounts");
            for (uint64_t j = 0; rc == 0 && j < k; j++)
                rc = rd_account(r, &acs[j]);
            b->accounts = acs;
            b->naccounts = rc == 0 ? (size_t)k : 0;
        } else {
            return ac_errf(r->err, r->errlen, "body: unknown member %s", key);
        }
        if (rc != 0) return -1;
    }
    return 0;
}

int ac_ev_record_decode(const uint8_t *buf, size_t len, struct ac_ev_record *rec, char *err,
                        size_t errlen)
{
    memset(rec, 0, sizeof *rec);
    if (buf == NULL || len == 0 || len > AC_EV_RECORD_MAX)
        return ac_errf(err, errlen, "record is empty or exceeds %u bytes", AC_EV_RECORD_MAX);
    enum ac_dcbor_status st = ac_dcbor_check(buf, len, NULL, 0);
    if (st != AC_DCBOR_OK)
        return ac_errf(err, errlen, "not deterministic cbor: %s", ac_dcbor_strerror(st));
    /* arena: the transfer and reason arrays first (aligned by malloc), then the strings */
    size_t arrays = AC_EV_MAX_TRANSFERS * sizeof(struct ac_ev_transfer) +
                    AC_EV_MAX_ACCOUNTS * sizeof(struct ac_ev_account) +
                    AC_EV_MAX_REASONS * sizeof(const char *);
    char *mem = calloc(1, arrays + len + 1);
    if (mem == NULL) return ac_errf(err, errlen, "out of memory");
    struct ac_ev_transfer *tr = (struct ac_ev_transfer *)mem;
    struct ac_ev_account *acs = (struct ac_ev_account *)(mem + AC_EV_MAX_TRANSFERS * sizeof *tr);
    const char **reasons =
        (const char **)((char *)acs + AC_EV_MAX_ACCOUNTS * sizeof(struct ac_ev_account));
    struct rd r = {buf, buf + len, mem, arrays, arrays + len + 1, err, errlen};

    uint64_t n, v;
    char key[16];
    int seen = 0, rc = rd_container(&r, M_MAP, &n, "record is not a map");
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        rc = rd_key(&r, key, sizeof key);
        if (rc != 0) break;
        if (strcmp(key, "v") == 0) {
            rc = rd_uint(&r, UINT64_MAX, &v, "v is not an unsigned integer");
            if (rc == 0 && v != AC_EV_VERSION) rc = ac_errf(err, errlen, "unknown record version");
            seen |= 1;
        } else if (strcmp(key, "seq") == 0) {
            rc = rd_uint(&r, UINT64_MAX, &rec->seq, "seq is not an unsigned integer");
            seen |= 2;
        } else if (strcmp(key, "time") == 0) {
            rc = rd_uint(&r, INT64_MAX, &v, "time is not an unsigned int64");
            rec->time_us = (int64_t)v;
            seen |= 4;
        } else if (strcmp(key, "kind") == 0) {
            const uint8_t *s = NULL;
            size_t sn = 0;
            rc = rd_str(&r, M_TEXT, &s, &sn, "kind is not text");
            if (rc == 0) {
                rec->kind = ac_ev_kind_from_name((const char *)s, sn);
                if (rec->kind == AC_EV_KIND_NONE) rc = ac_errf(err, errlen, "kind is unknown");
            }
            seen |= 8;
        } else if (strcmp(key, "prev") == 0) {
            rc = rd_hash(&r, rec->prev, "prev is not 32 bytes");
            seen |= 16;
        } else if (strcmp(key, "body") == 0) {
            rc = rd_body(&r, &rec->body, tr, reasons, acs);
            seen |= 32;
        } else {
            rc = ac_errf(err, errlen, "unknown member %s", key);
        }
    }
    if (rc == 0 && seen != 63)
        rc = ac_errf(err, errlen, "record needs v, seq, time, kind, prev and body");
    if (rc == 0 && r.p != r.end) rc = ac_errf(err, errlen, "trailing bytes"); /* cannot happen */
    rec->mem_ = mem;
    if (rc == 0) rc = ac_ev_record_validate(rec, err, errlen);
    if (rc != 0) {
        ac_ev_record_clear(rec);
        return -1;
    }
    return 0;
}

void ac_ev_record_clear(struct ac_ev_record *r)
{
    if (r == NULL) return;
    free(r->mem_);
    memset(r, 0, sizeof *r);
}

/* ==== hashing ================================================================================ */

int ac_ev_record_hash(const uint8_t *buf, size_t len, uint8_t out[AC_EV_HASH_LEN])
{
    ac_sha256(buf, len, out);
    return 0;
}

int ac_ev_leaf_hash(const uint8_t *buf, size_t len, uint8_t out[AC_EV_HASH_LEN])
{
    return ac_merkle_leaf_hash(buf, len, out);
}

int ac_ev_doc_hash(const void *doc, size_t len, uint8_t out[AC_EV_HASH_LEN])
{
    return ac_ev_record_hash(doc, len, out);
}

/* ==== checkpoints ============================================================================ */

int ac_ev_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[AC_EV_HASH_LEN],
                          EVP_PKEY *key, char **note, size_t *len)
{
    *note = NULL;
    *len = 0;
    if (origin == NULL || key == NULL) return -1;
    struct ac_checkpoint cp = {origin, strlen(origin), size, {0}, NULL, 0};
    memcpy(cp.root, root, AC_EV_HASH_LEN);
    size_t tlen;
    char *text = ac_checkpoint_format(&cp, &tlen);
    if (text == NULL) return -1;
    struct ac_note_signer *s = ac_note_signer_new(origin, key);
    int rc = -1;
    if (s != NULL) {
        const struct ac_note_signer *ss[1] = {s};
        rc = ac_note_sign(text, tlen, ss, 1, note, len) == AC_NOTE_OK ? 0 : -1;
    }
    ac_note_signer_free(s);
    free(text);
    return rc;
}

char *ac_ev_checkpoint_vkey(const char *origin, EVP_PKEY *key)
{
    if (origin == NULL || key == NULL) return NULL;
    struct ac_note_verifier *v = ac_note_verifier_from_key(origin, key);
    if (v == NULL) return NULL;
    char *s = ac_note_verifier_format(v);
    ac_note_verifier_free(v);
    return s;
}

int ac_ev_checkpoint_verify(const char *note, size_t len, const char *vkey, size_t vkey_len,
                            const char *origin, struct ac_ev_checkpoint *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (note == NULL || vkey == NULL) return ac_errf(err, errlen, "no checkpoint or key");
    struct ac_note_verifier *v = ac_note_verifier_parse(vkey, vkey_len);
    if (v == NULL) return ac_errf(err, errlen, "the log key is not a valid note verifier key");
    const struct ac_note_verifier *vs[1] = {v};
    size_t tlen = 0;
    enum ac_note_status st = ac_note_open(note, len, vs, 1, &tlen, NULL);
    int rc = 0;
    struct ac_checkpoint cp;
    const char *name = ac_note_verifier_name(v);
    if (st != AC_NOTE_OK) {
        rc = ac_errf(err, errlen, "checkpoint signature: %s", ac_note_strerror(st));
    } else if (ac_checkpoint_parse(note, tlen, &cp) != 0) {
        rc = ac_errf(err, errlen, "checkpoint body is not a tlog checkpoint");
    } else if (cp.ext_len != 0) {
        rc = ac_errf(err, errlen, "checkpoint has extension lines");
    } else if (cp.origin_len != strlen(name) || memcmp(cp.origin, name, cp.origin_len) != 0) {
        rc = ac_errf(err, errlen, "checkpoint origin differs from the key name");
    } else if (origin != NULL &&
               (cp.origin_len != strlen(origin) || memcmp(cp.origin, origin, cp.origin_len))) {
        rc = ac_errf(err, errlen, "checkpoint origin is not %s", origin);
    } else {
        out->origin = malloc(cp.origin_len + 1);
        if (out->origin == NULL) {
            rc = ac_errf(err, errlen, "out of memory");
        } else {
            memcpy(out->origin, cp.origin, cp.origin_len);
            out->origin[cp.origin_len] = '\0';
            out->size = cp.size;
            memcpy(out->root, cp.root, AC_EV_HASH_LEN);
        }
    }
    ac_note_verifier_free(v);
    return rc;
}

void ac_ev_checkpoint_clear(struct ac_ev_checkpoint *cp)
{
    if (cp == NULL) return;
    free(cp->origin);
    memset(cp, 0, sizeof *cp);
}

/* ==== leaves, roots and proofs =============================================================== */

void ac_ev_tree_init(struct ac_ev_tree *t)
{
    memset(t, 0, sizeof *t);
}

int ac_ev_tree_append(struct ac_ev_tree *t, const uint8_t leaf[AC_EV_HASH_LEN])
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        void *p = realloc(t->leaf, cap * sizeof *t->leaf);
        if (p == NULL) return -1;
        t->leaf = p;
        t->cap = cap;
    }
    memcpy(t->leaf[t->n++], leaf, AC_EV_HASH_LEN);
    return 0;
}

int ac_ev_tree_root(const struct ac_ev_tree *t, uint64_t size, uint8_t out[AC_EV_HASH_LEN])
{
    if (size > t->n) return -1;
    return ac_merkle_root((const uint8_t(*)[AC_EV_HASH_LEN])t->leaf, (size_t)size, out);
}

int ac_ev_tree_inclusion(const struct ac_ev_tree *t, uint64_t seq, uint64_t size,
                         uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN], size_t *n)
{
    if (size > t->n || seq >= size) return -1;
    return ac_merkle_inclusion_proof((const uint8_t(*)[AC_EV_HASH_LEN])t->leaf, (size_t)size,
                                     (size_t)seq, proof, AC_MERKLE_MAX_PROOF, n);
}

int ac_ev_tree_consistency(const struct ac_ev_tree *t, uint64_t from, uint64_t to,
                           uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN], size_t *n)
{
    if (from == 0 || from > to || to > t->n) return -1;
    return ac_merkle_consistency_proof((const uint8_t(*)[AC_EV_HASH_LEN])t->leaf, (size_t)from,
                                       (size_t)to, proof, AC_MERKLE_MAX_PROOF, n);
}

void ac_ev_tree_free(struct ac_ev_tree *t)
{
    free(t->leaf);
    memset(t, 0, sizeof *t);
}
