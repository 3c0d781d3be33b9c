/* Evidence records: encode/decode round trips for every kind, the format rules, rejection of
 * every non-canonical encoding, detection of any changed byte or field by the hash chain and the
 * Merkle inclusion proof, checkpoints (sign, verify, wrong key, tampering), and the leaf store's
 * proofs. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/b64.h"
#include "protocol/dcbor.h"
#include "protocol/evidence.h"
#include "protocol/merkle.h"
#include "protocol/note.h"
#include "protocol/sig.h"

#define HL AC_EV_HASH_LEN

static const char base_txt[] = "\"@method\": POST\n"
                               "\"@target-uri\": https://pay.example.com/v1/payments\n"
                               "\"@signature-params\": (\"@method\" \"@target-uri\");created=1;"
                               "keyid=\"k1\"";
static const uint8_t sig_bytes[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const char req_body[] = "{\"amount\":{\"currency\":\"CNY\",\"value\":\"12.34\"}}";
static const char *const reasons2[] = {"amount_over_threshold", "velocity"};

/* A payment.step_up record using every member the kind allows. */
static struct ac_ev_transfer tr_hold = {"t-1", "wallet:u-1", "merchant:m-1", 1234, "CNY",
                                        2,     0x02,         NULL,           0,    0};
/* operator transfers: a hold with a timeout, a post with a code */
static struct ac_ev_transfer tr_ledger[2] = {
    {"f-1", "bank", "wallet:u-1", 500, "CNY", 2, 0x03, NULL, 3600, 0},
    {"f-2", "bank", "wallet:u-1", 500, "CNY", 2, 0x04, "f-1", 0, 7},
};
static struct ac_ev_account accs[2] = {{"bank", "CNY", NULL, 0}, {"wallet:u-1", "CNY", "u-1", 0x1}};
static struct ac_ev_transfer tr_two[2] = {
    {"t-2", "wallet:u-1", "merchant:m-1", 1234, "CNY", 2, 0x04, "t-1", 0, 0},
    {"t-3", "fees:m-1", "operator", 0, "CNY", 2, 0x00, NULL, 0, 0},
};

static void full_record(struct ac_ev_record *r)
{
    memset(r, 0, sizeof *r);
    r->seq = 7;
    r->time_us = 1714557600123456;
    r->kind = AC_EV_PAYMENT_STEP_UP;
    for (int i = 0; i < HL; i++)
        r->prev[i] = (uint8_t)(0xa0 + i);
    struct ac_ev_body *b = &r->body;
    b->payment = "pay-1";
    b->user = "u-1";
    b->agent = "a-1";
    b->payee = "m-1";
    b->category = "llm.inference";
    b->ref = "order sha-256:abc";
    b->amount = (struct ac_ev_amount){1, 1234, "CNY", 2};
    b->binding = (struct ac_ev_docref){1, {1, 2, 3}, "b-1", "user-kid-1"};
    b->mandate = (struct ac_ev_docref){1, {4, 5, 6}, "m-1", NULL};
    b->request = (struct ac_ev_request){1,         (const uint8_t *)base_txt, sizeof base_txt - 1,
                                        sig_bytes, sizeof sig_bytes,          "k1",
                                        1,         (const uint8_t *)req_body, sizeof req_body - 1};
    b->decision = AC_EV_STEP_UP;
    b->reasons = reasons2;
    b->nreasons = 2;
    b->transfers = &tr_hold;
    b->ntransfers = 1;
}

static void encode_ok(const struct ac_ev_record *r, uint8_t **out, size_t *len)
{
    char err[256] = "";
    int rc = ac_ev_record_encode(r, out, len, err, sizeof err);
    if (rc != 0) fail_msg("encode: %s", err);
    assert_non_null(*out);
}

static void assert_str_eq_opt(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_docref_eq(const struct ac_ev_docref *a, const struct ac_ev_docref *b)
{
    assert_int_equal(a->present, b->present);
    if (!a->present) return;
    assert_memory_equal(a->hash, b->hash, HL);
    assert_str_eq_opt(a->id, b->id);
    assert_str_eq_opt(a->kid, b->kid);
}

static void assert_record_eq(const struct ac_ev_record *a, const struct ac_ev_record *b)
{
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->time_us, b->time_us);
    assert_int_equal(a->kind, b->kind);
    assert_memory_equal(a->prev, b->prev, HL);
    const struct ac_ev_body *x = &a->body, *y = &b->body;
    assert_str_eq_opt(x->payment, y->payment);
    assert_str_eq_opt(x->user, y->user);
    assert_str_eq_opt(x->agent, y->agent);
    assert_str_eq_opt(x->payee, y->payee);
    assert_str_eq_opt(x->tab, y->tab);
    assert_str_eq_opt(x->ref, y->ref);
    assert_str_eq_opt(x->category, y->category);
    assert_str_eq_opt(x->actor, y->actor);
    assert_int_equal(x->naccounts, y->naccounts);
    for (size_t i = 0; i < x->naccounts; i++) {
        assert_string_equal(x->accounts[i].id, y->accounts[i].id);
        assert_string_equal(x->accounts[i].asset, y->accounts[i].asset);
        assert_str_eq_opt(x->accounts[i].owner, y->accounts[i].owner);
        assert_int_equal(x->accounts[i].flags, y->accounts[i].flags);
    }
    assert_int_equal(x->amount.present, y->amount.present);
    if (x->amount.present) {
        assert_int_equal(x->amount.value, y->amount.value);
        assert_string_equal(x->amount.asset, y->amount.asset);
        assert_int_equal(x->amount.scale, y->amount.scale);
    }
    assert_docref_eq(&x->binding, &y->binding);
    assert_docref_eq(&x->mandate, &y->mandate);
    assert_docref_eq(&x->revocation, &y->revocation);
    assert_docref_eq(&x->confirmation, &y->confirmation);
    assert_docref_eq(&x->voucher, &y->voucher);
    assert_docref_eq(&x->report, &y->report);
    assert_int_equal(x->request.present, y->request.present);
    if (x->request.present) {
        assert_int_equal(x->request.base_len, y->request.base_len);
        assert_memory_equal(x->request.base, y->request.base, x->request.base_len);
        assert_int_equal(x->request.sig_len, y->request.sig_len);
        assert_memory_equal(x->request.sig, y->request.sig, x->request.sig_len);
        assert_string_equal(x->request.keyid, y->request.keyid);
        assert_int_equal(x->request.has_body, y->request.has_body);
        assert_int_equal(x->request.body_len, y->request.body_len);
        if (x->request.body_len)
            assert_memory_equal(x->request.body, y->request.body, x->request.body_len);
    }
    assert_int_equal(x->decision, y->decision);
    assert_int_equal(x->nreasons, y->nreasons);
    for (size_t i = 0; i < x->nreasons; i++)
        assert_string_equal(x->reasons[i], y->reasons[i]);
    assert_int_equal(x->ntransfers, y->ntransfers);
    for (size_t i = 0; i < x->ntransfers; i++) {
        const struct ac_ev_transfer *s = &x->transfers[i], *t = &y->transfers[i];
        assert_string_equal(s->id, t->id);
        assert_string_equal(s->debit, t->debit);
        assert_string_equal(s->credit, t->credit);
        assert_int_equal(s->amount, t->amount);
        assert_string_equal(s->asset, t->asset);
        assert_int_equal(s->scale, t->scale);
        assert_int_equal(s->flags, t->flags);
        assert_str_eq_opt(s->pending_id, t->pending_id);
        assert_int_equal(s->timeout_s, t->timeout_s);
        assert_int_equal(s->code, t->code);
    }
}

/* ---- round trips ------------------------------------------------------------------------------
 */

static void roundtrip_full(void **s)
{
    (void)s;
    struct ac_ev_record r, d;
    full_record(&r);
    uint8_t *buf;
    size_t len;
    encode_ok(&r, &buf, &len);
    assert_int_equal(ac_dcbor_check(buf, len, NULL, 0), AC_DCBOR_OK);
    char err[256];
    assert_int_equal(ac_ev_record_decode(buf, len, &d, err, sizeof err), 0);
    assert_record_eq(&r, &d);
    /* decoded strings are the record's own copies */
    assert_ptr_not_equal(d.body.payment, r.body.payment);
    uint8_t *buf2;
    size_t len2;
    encode_ok(&d, &buf2, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    ac_ev_record_clear(&d);
    assert_null(d.mem_);
    ac_ev_record_clear(&d); /* harmless twice */
    free(buf);
    free(buf2);

    /* extremes: seq and time at their maximum, amount INT64_MAX, empty request body */
    full_record(&r);
    r.seq = UINT64_MAX;
    r.time_us = INT64_MAX;
    r.body.amount.value = INT64_MAX;
    r.body.request.body = NULL;
    r.body.request.body_len = 0;
    encode_ok(&r, &buf, &len);
    assert_int_equal(ac_ev_record_decode(buf, len, &d, err, sizeof err), 0);
    assert_record_eq(&r, &d);
    assert_int_equal(d.body.request.has_body, 1);
    assert_int_equal(d.body.request.body_len, 0);
    ac_ev_record_clear(&d);
    free(buf);
}

/* The smallest valid record of each kind, built from the format rules in docs/evidence.md. */
static void minimal(enum ac_ev_kind k, struct ac_ev_record *r)
{
    memset(r, 0, sizeof *r);
    r->seq = 3;
    r->time_us = 1;
    r->kind = k;
    r->prev[0] = 1;
    struct ac_ev_body *b = &r->body;
    struct ac_ev_docref doc = {1, {9}, NULL, NULL};
    struct ac_ev_request req = {1, (const uint8_t *)"x", 1, sig_bytes, 64, "k", 0, NULL, 0};
    struct ac_ev_amount amt = {1, 5, "CNY", 2};
    switch (k) {
    case AC_EV_BINDING_REGISTER:
        b->user = "u", b->agent = "a", b->binding = doc;
        break;
    case AC_EV_BINDING_REVOKE:
        b->user = "u", b->binding = doc, b->revocation = doc;
        break;
    case AC_EV_MANDATE_REGISTER:
        b->user = "u", b->mandate = doc;
        break;
    case AC_EV_MANDATE_REVOKE:
        b->user = "u", b->mandate = doc, b->revocation = doc;
        break;
    case AC_EV_PAYMENT_SETTLE:
    case AC_EV_PAYMENT_STEP_UP:
    case AC_EV_TOPUP:
    case AC_EV_TAB_OPEN:
        if (k == AC_EV_TAB_OPEN)
            b->tab = "tab-1";
        else
            b->payment = "p";
        b->user = "u", b->agent = "a", b->payee = "m", b->amount = amt, b->binding = doc;
        b->mandate = doc, b->request = req, b->transfers = &tr_hold, b->ntransfers = 1;
        b->decision = k == AC_EV_PAYMENT_STEP_UP ? AC_EV_STEP_UP : AC_EV_ALLOW;
        if (k == AC_EV_PAYMENT_STEP_UP) b->reasons = reasons2, b->nreasons = 1;
        break;
    case AC_EV_PAYMENT_CONFIRM:
    case AC_EV_PAYMENT_DECLINE:
        b->payment = "p", b->user = "u", b->confirmation = doc, b->transfers = &tr_hold;
        b->ntransfers = 1;
        break;
    case AC_EV_PAYMENT_EXPIRE:
        b->payment = "p", b->transfers = &tr_hold, b->ntransfers = 1;
        break;
    case AC_EV_PAYMENT_DENY:
        b->payment = "p", b->decision = AC_EV_DENY, b->reasons = reasons2, b->nreasons = 2;
        break;
    case AC_EV_REFUND:
        b->payment = "p", b->amount = amt, b->transfers = &tr_hold, b->ntransfers = 1;
        break;
    case AC_EV_TAB_SETTLE:
        b->tab = "tab-1", b->voucher = doc, b->transfers = tr_two, b->ntransfers = 2;
        break;
    case AC_EV_TAB_CLOSE:
    case AC_EV_TAB_EXPIRE:
        b->tab = "tab-1", b->transfers = tr_two, b->ntransfers = 2;
        break;
    case AC_EV_CLEARING_CLOSE:
        b->ref = "cycle-2024-05-01", b->transfers = tr_two, b->ntransfers = 2;
        break;
    case AC_EV_TAB_DENY:
        b->tab = "tab-1", b->decision = AC_EV_DENY, b->reasons = reasons2, b->nreasons = 2;
        break;
    case AC_EV_PRICE_PUBLISH:
        b->payee = "llm", b->ref = "3", b->request = req;
        break;
    case AC_EV_LEDGER_ACCOUNT:
        b->actor = "operator", b->accounts = accs, b->naccounts = 2;
        break;
    case AC_EV_LEDGER_TRANSFER:
        b->actor = "operator", b->transfers = tr_ledger, b->ntransfers = 2;
        break;
    default:
        fail();
    }
}

static void every_kind(void **s)
{
    (void)s;
    for (int k = 1; k < AC_EV_KIND__COUNT; k++) {
        const char *name = ac_ev_kind_name((enum ac_ev_kind)k);
        assert_non_null(name);
        assert_int_equal(ac_ev_kind_from_name(name, strlen(name)), k);
        struct ac_ev_record r, d;
        minimal((enum ac_ev_kind)k, &r);
        uint8_t *buf;
        size_t len;
        encode_ok(&r, &buf, &len);
        char err[256];
        if (ac_ev_record_decode(buf, len, &d, err, sizeof err) != 0) fail_msg("%s: %s", name, err);
        assert_record_eq(&r, &d);
        ac_ev_record_clear(&d);
        free(buf);
        /* a required member missing is refused, by the encoder and by the decoder */
        struct ac_ev_record m = r;
        if (m.body.transfers != NULL) {
            m.body.ntransfers = 0;
            assert_int_equal(ac_ev_record_encode(&m, &buf, &len, err, sizeof err), -1);
            assert_non_null(strstr(err, "requires body.transfers"));
            assert_null(buf);
        }
    }
    assert_null(ac_ev_kind_name(AC_EV_KIND_NONE));
    assert_null(ac_ev_kind_name(AC_EV_KIND__COUNT));
    assert_int_equal(ac_ev_kind_from_name("payment.settl", 13), AC_EV_KIND_NONE);
    assert_int_equal(ac_ev_kind_from_name("payment.settlex", 15), AC_EV_KIND_NONE);
}

/* ---- the format rules ------------------------------------------------------------------------ */

static void expect_invalid(const struct ac_ev_record *r, const char *needle)
{
    char err[256] = "";
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    assert_int_equal(ac_ev_record_validate(r, err, sizeof err), -1);
    if (strstr(err, needle) == NULL) fail_msg("want '%s', got '%s'", needle, err);
    assert_int_equal(ac_ev_record_encode(r, &buf, &len, NULL, 0), -1);
    assert_null(buf);
    assert_int_equal(len, 0);
}

static void rules(void **s)
{
    (void)s;
    struct ac_ev_record r;
    full_record(&r);
    assert_int_equal(ac_ev_record_validate(&r, NULL, 0), 0);

    full_record(&r), r.kind = AC_EV_KIND_NONE, expect_invalid(&r, "kind");
    full_record(&r), r.kind = AC_EV_KIND__COUNT, expect_invalid(&r, "kind");
    full_record(&r), r.time_us = -1, expect_invalid(&r, "time");
    full_record(&r), r.seq = 0, expect_invalid(&r, "prev of record 0");
    full_record(&r), r.body.payment = "bad id", expect_invalid(&r, "payment");
    full_record(&r), r.body.user = "", expect_invalid(&r, "user");
    full_record(&r), r.body.ref = "a\nb", expect_invalid(&r, "ref");
    full_record(&r), r.body.amount.value = -1, expect_invalid(&r, "amount.value");
    full_record(&r), r.body.amount.asset = "cny", expect_invalid(&r, "amount.asset");
    full_record(&r), r.body.amount.scale = 19, expect_invalid(&r, "amount.scale");
    full_record(&r), r.body.binding.id = "b 1", expect_invalid(&r, "binding.id");
    full_record(&r), r.body.request.sig_len = 0, expect_invalid(&r, "request.sig");
    full_record(&r), r.body.request.keyid = NULL, expect_invalid(&r, "request.keyid");
    full_record(&r), r.body.decision = AC_EV_ALLOW, expect_invalid(&r, "requires decision step_up");
    full_record(&r), r.body.nreasons = 0, expect_invalid(&r, "requires body.reasons");
    const char *bad_reason[] = {"ok", "no spaces please"};
    full_record(&r), r.body.reasons = bad_reason, expect_invalid(&r, "reasons[1]");
    full_record(&r), r.body.tab = "tab-1", expect_invalid(&r, "does not allow body.tab");
    full_record(&r), r.body.voucher.present = 1, expect_invalid(&r, "does not allow body.voucher");
    full_record(&r), r.body.binding.present = 0, expect_invalid(&r, "requires body.binding");
    struct ac_ev_transfer t = tr_hold;
    full_record(&r), r.body.transfers = &t;
    t.amount = -5, expect_invalid(&r, "transfers[0].amount");
    t = tr_hold, t.flags = 0x40, expect_invalid(&r, "transfers[0].flags");
    t = tr_hold, t.credit = "", expect_invalid(&r, "transfers[0]");
    t = tr_hold, t.asset = "CNY!", expect_invalid(&r, "transfers[0]");
    full_record(&r), r.body.ntransfers = AC_EV_MAX_TRANSFERS + 1, expect_invalid(&r, "too many");
    /* deny: never for other kinds, always with a reason */
    minimal(AC_EV_PAYMENT_CONFIRM, &r), r.body.decision = AC_EV_DENY;
    expect_invalid(&r, "does not allow body.decision");
    minimal(AC_EV_TOPUP, &r), r.body.decision = AC_EV_DENY;
    expect_invalid(&r, "cannot record a deny");
    minimal(AC_EV_PAYMENT_DENY, &r), r.body.nreasons = 0;
    expect_invalid(&r, "requires body.reasons");
    minimal(AC_EV_PAYMENT_DENY, &r), r.body.transfers = &tr_hold, r.body.ntransfers = 1;
    expect_invalid(&r, "does not allow body.transfers");
    /* the payee's category: an id, only with a payee, only on kinds that decide about a payee */
    full_record(&r), r.body.category = "a b", expect_invalid(&r, "category");
    full_record(&r), r.body.payee = NULL;
    expect_invalid(&r, "requires body.payee");
    minimal(AC_EV_PAYMENT_DENY, &r), r.body.category = "books";
    expect_invalid(&r, "category without payee");
    minimal(AC_EV_REFUND, &r), r.body.payee = "m", r.body.category = "books";
    expect_invalid(&r, "does not allow body.category");
    /* ledger records: who asked, accounts, a timeout only on a hold */
    minimal(AC_EV_LEDGER_TRANSFER, &r), r.body.actor = NULL;
    expect_invalid(&r, "requires body.actor");
    minimal(AC_EV_LEDGER_TRANSFER, &r), r.body.payment = "p";
    expect_invalid(&r, "does not allow body.payment");
    minimal(AC_EV_LEDGER_ACCOUNT, &r), r.body.transfers = &tr_hold, r.body.ntransfers = 1;
    expect_invalid(&r, "does not allow body.transfers");
    minimal(AC_EV_PAYMENT_SETTLE, &r), r.body.actor = "operator";
    expect_invalid(&r, "does not allow body.actor");
    struct ac_ev_account ac = accs[1];
    minimal(AC_EV_LEDGER_ACCOUNT, &r), r.body.accounts = &ac, r.body.naccounts = 1;
    ac.flags = 0x3, expect_invalid(&r, "accounts[0].flags");
    ac = accs[1], ac.owner = "", expect_invalid(&r, "accounts[0].owner");
    ac = accs[1], ac.asset = "cny", expect_invalid(&r, "accounts[0].asset");
    minimal(AC_EV_LEDGER_ACCOUNT, &r), r.body.naccounts = AC_EV_MAX_ACCOUNTS + 1;
    expect_invalid(&r, "too many accounts");
    struct ac_ev_transfer lt[2] = {tr_ledger[0], tr_ledger[1]};
    minimal(AC_EV_LEDGER_TRANSFER, &r), r.body.transfers = lt;
    lt[1].timeout_s = 60, expect_invalid(&r, "transfers[1].timeout");
    lt[1] = tr_ledger[1], lt[0].timeout_s = AC_EV_TIMEOUT_MAX + 1;
    expect_invalid(&r, "transfers[0].timeout");
}

/* ---- canonical form ---------------------------------------------------------------------------
 * Work on the bytes of one small record: payment.deny {v, seq, body, kind, prev, time} in that
 * (encoded-key) order. */

struct bytes {
    uint8_t *p;
    size_t n;
};

static struct bytes enc_min_deny(void)
{
    struct ac_ev_record r;
    minimal(AC_EV_PAYMENT_DENY, &r);
    r.seq = 5;
    struct bytes b;
    encode_ok(&r, &b.p, &b.n);
    return b;
}

static size_t find(const struct bytes *b, const void *pat, size_t n)
{
    for (size_t i = 0; i + n <= b->n; i++)
        if (memcmp(b->p + i, pat, n) == 0) return i;
    fail_msg("pattern not found");
    return 0;
}

/* b with [at, at+del) replaced by ins[0..nins) */
static struct bytes splice(const struct bytes *b, size_t at, size_t del, const void *ins,
                           size_t nins)
{
    struct bytes o;
    o.n = b->n - del + nins;
    o.p = malloc(o.n + 1);
    assert_non_null(o.p);
    memcpy(o.p, b->p, at);
    memcpy(o.p + at, ins, nins);
    memcpy(o.p + at + nins, b->p + at + del, b->n - at - del);
    return o;
}

static void expect_reject(struct bytes x, const char *needle)
{
    struct ac_ev_record d;
    char err[256] = "";
    int rc = ac_ev_record_decode(x.p, x.n, &d, err, sizeof err);
    if (rc != -1) fail_msg("accepted; wanted '%s'", needle);
    if (strstr(err, needle) == NULL) fail_msg("want '%s', got '%s'", needle, err);
    assert_null(d.mem_);
    free(x.p);
}

static void canonical_form(void **s)
{
    (void)s;
    struct bytes b = enc_min_deny();
    struct ac_ev_record d;
    char err[256];
    assert_int_equal(ac_ev_record_decode(b.p, b.n, &d, err, sizeof err), 0);
    ac_ev_record_clear(&d);
    assert_int_equal(b.p[0], 0xa6); /* a map of 6 */

    static const uint8_t k_seq[] = {0x63, 's', 'e', 'q'}, k_prev[] = {0x64, 'p', 'r', 'e', 'v'},
                         k_kind[] = {0x64, 'k', 'i', 'n', 'd'}, k_v[] = {0x61, 'v'};
    /* non-minimal integer: seq 5 as 0x18 0x05, and as a 64-bit head */
    size_t at = find(&b, k_seq, sizeof k_seq) + sizeof k_seq;
    assert_int_equal(b.p[at], 0x05);
    expect_reject(splice(&b, at, 1, "\x18\x05", 2), "shortest form");
    expect_reject(splice(&b, at, 1, "\x1b\0\0\0\0\0\0\0\x05", 9), "shortest form");
    /* an indefinite-length byte string for prev, and an indefinite-length top-level map */
    at = find(&b, k_prev, sizeof k_prev) + sizeof k_prev;
    assert_int_equal(b.p[at], 0x58);
    struct bytes t = splice(&b, at, 0, "\x5f", 1);
    struct bytes t2 = splice(&t, at + 1 + 2 + HL, 0, "\xff", 1);
    free(t.p);
    expect_reject(t2, "indefinite");
    t = splice(&b, 0, 1, "\xbf", 1);
    t2 = splice(&t, t.n, 0, "\xff", 1);
    free(t.p);
    expect_reject(t2, "indefinite");
    /* unsorted keys: swap the kind pair and the prev pair (adjacent: kind < prev) */
    size_t ak = find(&b, k_kind, sizeof k_kind), ap = find(&b, k_prev, sizeof k_prev);
    size_t ae = ap + sizeof k_prev + 2 + HL;
    assert_true(ak < ap);
    t.n = b.n;
    t.p = malloc(b.n);
    assert_non_null(t.p);
    memcpy(t.p, b.p, b.n);
    memcpy(t.p + ak, b.p + ap, ae - ap);
    memcpy(t.p + ak + (ae - ap), b.p + ak, ap - ak);
    expect_reject(t, "not sorted");
    /* duplicate keys: the prev pair twice (replacing the kind pair) */
    t = splice(&b, ak, ap - ak, b.p + ap, ae - ap);
    expect_reject(t, "duplicate map key");
    /* trailing bytes, truncation, a float, a tag, an unknown member, a wrong version */
    expect_reject(splice(&b, b.n, 0, "\x00", 1), "trailing");
    expect_reject(splice(&b, b.n - 1, 1, "", 0), "not deterministic cbor");
    at = find(&b, k_seq, sizeof k_seq) + sizeof k_seq;
    expect_reject(splice(&b, at, 1, "\xf9\x45\x00", 3), "float");
    expect_reject(splice(&b, at, 0, "\xc1", 1), "tag");
    at = find(&b, k_v, sizeof k_v);
    expect_reject(splice(&b, at + 2, 1, "\x02", 1), "version");
    /* "v":1 -> "w":1 keeps the order and the count: an unknown member */
    expect_reject(splice(&b, at + 1, 1, "w", 1), "unknown member w");
    /* an unknown kind with the same length */
    at = find(&b, "payment.deny", 12);
    expect_reject(splice(&b, at, 12, "payment.dent", 12), "kind is unknown");
    free(b.p);
    /* text where bytes are expected, and an empty input */
    expect_reject(splice(&(struct bytes){(uint8_t *)"\x60", 1}, 0, 0, "", 0), "not a map");
    struct ac_ev_record e;
    assert_int_equal(ac_ev_record_decode(NULL, 0, &e, err, sizeof err), -1);
}

/* ---- tamper detection ------------------------------------------------------------------------ */

#define CHAIN 6

struct chain {
    uint8_t *rec[CHAIN];
    size_t len[CHAIN];
    uint8_t hash[CHAIN][HL];
    struct ac_ev_tree tree;
    uint8_t root[HL];
};

static void make_chain(struct chain *c)
{
    memset(c, 0, sizeof *c);
    ac_ev_tree_init(&c->tree);
    uint8_t prev[HL] = {0};
    for (int i = 0; i < CHAIN; i++) {
        struct ac_ev_record r;
        full_record(&r);
        r.seq = (uint64_t)i;
        r.time_us += i;
        memcpy(r.prev, prev, HL);
        encode_ok(&r, &c->rec[i], &c->len[i]);
        assert_int_equal(ac_ev_record_hash(c->rec[i], c->len[i], c->hash[i]), 0);
        memcpy(prev, c->hash[i], HL);
        uint8_t leaf[HL];
        assert_int_equal(ac_ev_leaf_hash(c->rec[i], c->len[i], leaf), 0);
        assert_int_equal(ac_ev_tree_append(&c->tree, leaf), 0);
    }
    assert_int_equal(ac_ev_tree_root(&c->tree, CHAIN, c->root), 0);
}

static void free_chain(struct chain *c)
{
    for (int i = 0; i < CHAIN; i++)
        free(c->rec[i]);
    ac_ev_tree_free(&c->tree);
}

/* 1 when the bytes of record `at` (replacing the chain's) are caught: they do not decode, or
 * their hash is not the next record's prev, or their leaf is not proven by the stored proof. All
 * three are checked independently so each detection is meaningful on its own. */
struct detect {
    int decode_fails, chain_breaks, proof_fails;
};

static struct detect check_tamper(const struct chain *c, int at, const uint8_t *p, size_t n)
{
    struct detect d = {0, 0, 0};
    struct ac_ev_record r;
    char err[256];
    if (ac_ev_record_decode(p, n, &r, err, sizeof err) != 0)
        d.decode_fails = 1;
    else
        ac_ev_record_clear(&r);
    uint8_t h[HL], leaf[HL];
    assert_int_equal(ac_ev_record_hash(p, n, h), 0);
    if (memcmp(h, c->hash[at], HL) != 0) d.chain_breaks = 1;
    uint8_t proof[AC_MERKLE_MAX_PROOF][HL];
    size_t np;
    assert_int_equal(ac_ev_tree_inclusion(&c->tree, (uint64_t)at, CHAIN, proof, &np), 0);
    assert_int_equal(ac_ev_leaf_hash(p, n, leaf), 0);
    if (ac_merkle_verify_inclusion((uint64_t)at, CHAIN, leaf, (const uint8_t(*)[HL])proof, np,
                                   c->root) != 1)
        d.proof_fails = 1;
    return d;
}

static void every_byte_detected(void **s)
{
    (void)s;
    struct chain c;
    make_chain(&c);
    /* the untouched record passes every check */
    struct detect d = check_tamper(&c, 3, c.rec[3], c.len[3]);
    assert_int_equal(d.decode_fails + d.chain_breaks + d.proof_fails, 0);
    /* every single-bit change of every byte of record 3: hash chain and proof both catch it */
    uint8_t *m = malloc(c.len[3]);
    assert_non_null(m);
    size_t decoded_anyway = 0;
    for (size_t i = 0; i < c.len[3]; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, c.rec[3], c.len[3]);
            m[i] ^= (uint8_t)(1u << bit);
            d = check_tamper(&c, 3, m, c.len[3]);
            assert_int_equal(d.chain_breaks, 1);
            assert_int_equal(d.proof_fails, 1);
            if (!d.decode_fails) decoded_anyway++;
        }
    }
    /* many flips leave a valid record (e.g. inside the signature bytes): only the hashes catch
     * those, which is the point of hashing the bytes, not the decoded view */
    assert_true(decoded_anyway > 0);
    free(m);
    free_chain(&c);
}

/* Field by field: a record re-encoded with one field changed is a valid record whose hash and
 * leaf differ; a reordered or dropped record breaks the chain. */
static void every_field_detected(void **s)
{
    (void)s;
    struct chain c;
    make_chain(&c);
    for (int f = 0;; f++) {
        struct ac_ev_record r;
        full_record(&r);
        r.seq = 3;
        r.time_us += 3;
        memcpy(r.prev, c.hash[2], HL);
        struct ac_ev_transfer t = tr_hold;
        const char *rs[2] = {reasons2[0], reasons2[1]};
        uint8_t mbase[sizeof base_txt];
        memcpy(mbase, base_txt, sizeof base_txt);
        uint8_t msig[64];
        memcpy(msig, sig_bytes, 64);
        r.body.transfers = &t;
        r.body.reasons = rs;
        r.body.request.base = mbase;
        r.body.request.sig = msig;
        switch (f) {
        case 0:
            break; /* unchanged: must match the chain */
        case 1:
            r.seq = 4;
            break;
        case 2:
            r.time_us++;
            break;
        case 3:
            r.kind = AC_EV_PAYMENT_SETTLE, r.body.decision = AC_EV_ALLOW;
            break;
        case 4:
            r.prev[31] ^= 1;
            break;
        case 5:
            r.body.payment = "pay-2";
            break;
        case 6:
            r.body.user = "u-2";
            break;
        case 7:
            r.body.agent = "a-2";
            break;
        case 8:
            r.body.payee = "m-2";
            break;
        case 9:
            r.body.ref = NULL;
            break;
        case 10:
            r.body.amount.value++;
            break;
        case 11:
            r.body.amount.asset = "USD";
            break;
        case 12:
            r.body.amount.scale = 3;
            break;
        case 13:
            r.body.binding.hash[0] ^= 1;
            break;
        case 14:
            r.body.binding.id = "b-2";
            break;
        case 15:
            r.body.binding.kid = "other";
            break;
        case 16:
            r.body.mandate.hash[5] ^= 1;
            break;
        case 17:
            r.body.mandate.id = "m-9";
            break;
        case 18:
            mbase[10] ^= 1;
            break;
        case 19:
            msig[63] ^= 1;
            break;
        case 20:
            r.body.request.keyid = "k2";
            break;
        case 21:
            r.body.request.body_len--;
            break;
        case 22:
            r.body.request.has_body = 0;
            break;
        case 23:
            r.body.decision = AC_EV_ALLOW, r.kind = AC_EV_TOPUP;
            break;
        case 24:
            rs[1] = "other_reason";
            break;
        case 25:
            r.body.nreasons = 1;
            break;
        case 26:
            t.id = "t-9";
            break;
        case 27:
            t.debit = "wallet:u-9";
            break;
        case 28:
            t.credit = "merchant:m-9";
            break;
        case 29:
            t.amount = 1233;
            break;
        case 30:
            t.asset = "USD";
            break;
        case 31:
            t.scale = 0;
            break;
        case 32:
            t.flags = 0;
            break;
        case 33:
            t.pending_id = "t-0";
            break;
        default:
            goto done;
        }
        uint8_t *buf;
        size_t len;
        encode_ok(&r, &buf, &len);
        struct detect d = check_tamper(&c, 3, buf, len);
        assert_int_equal(d.decode_fails, 0);
        if (f == 0) {
            assert_int_equal(len, c.len[3]);
            assert_memory_equal(buf, c.rec[3], len);
            assert_int_equal(d.chain_breaks + d.proof_fails, 0);
        } else {
            if (!d.chain_breaks || !d.proof_fails) fail_msg("field change %d not detected", f);
        }
        free(buf);
    }
done:
    /* order and presence: record 4's prev is record 3's hash, not record 2's or 5's */
    for (int i = 1; i < CHAIN; i++) {
        struct ac_ev_record r;
        char err[256];
        assert_int_equal(ac_ev_record_decode(c.rec[i], c.len[i], &r, err, sizeof err), 0);
        assert_memory_equal(r.prev, c.hash[i - 1], HL);
        if (i >= 2) assert_memory_not_equal(r.prev, c.hash[i - 2], HL);
        ac_ev_record_clear(&r);
    }
    free_chain(&c);
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

static void checkpoints(void **s)
{
    (void)s;
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519), *k2 = ac_sig_keygen(AC_SIG_ED25519),
             *p256 = ac_sig_keygen(AC_SIG_ES256);
    assert_non_null(k);
    const char *origin = "agentclear.example/0";
    uint8_t root[HL];
    for (int i = 0; i < HL; i++)
        root[i] = (uint8_t)i;
    char *note;
    size_t len;
    assert_int_equal(ac_ev_checkpoint_sign(origin, 42, root, k, &note, &len), 0);
    assert_int_equal(strlen(note), len);
    char b64[64];
    ac_b64_encode(root, HL, b64, 0);
    char want[256];
    snprintf(want, sizeof want, "%s\n42\n%s\n\n\xe2\x80\x94 %s ", origin, b64, origin);
    assert_true(strncmp(note, want, strlen(want)) == 0);

    char *vkey = ac_ev_checkpoint_vkey(origin, k);
    assert_non_null(vkey);
    assert_true(strncmp(vkey, "agentclear.example/0+", 21) == 0);
    struct ac_ev_checkpoint cp;
    char err[256];
    assert_int_equal(
        ac_ev_checkpoint_verify(note, len, vkey, strlen(vkey), origin, &cp, err, sizeof err), 0);
    assert_string_equal(cp.origin, origin);
    assert_int_equal(cp.size, 42);
    assert_memory_equal(cp.root, root, HL);
    ac_ev_checkpoint_clear(&cp);
    assert_int_equal(
        ac_ev_checkpoint_verify(note, len, vkey, strlen(vkey), NULL, &cp, err, sizeof err), 0);
    ac_ev_checkpoint_clear(&cp);

    /* another key, another origin, a changed tree size, a changed root: all refused */
    char *vkey2 = ac_ev_checkpoint_vkey(origin, k2);
    assert_int_equal(
        ac_ev_checkpoint_verify(note, len, vkey2, strlen(vkey2), NULL, &cp, err, sizeof err), -1);
    assert_non_null(strstr(err, "checkpoint signature"));
    assert_null(cp.origin);
    assert_int_equal(ac_ev_checkpoint_verify(note, len, vkey, strlen(vkey), "agentclear.example/1",
                                             &cp, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "origin"));
    char *t = strdup(note);
    t[strlen(origin) + 1] = '5'; /* 42 -> 52 */
    assert_int_equal(
        ac_ev_checkpoint_verify(t, len, vkey, strlen(vkey), NULL, &cp, err, sizeof err), -1);
    memcpy(t, note, len);
    t[strlen(origin) + 4] ^= 1; /* first root character */
    assert_int_equal(
        ac_ev_checkpoint_verify(t, len, vkey, strlen(vkey), NULL, &cp, err, sizeof err), -1);
    free(t);
    /* the key name must be the origin: a key named otherwise cannot vouch for this log */
    char *other = ac_ev_checkpoint_vkey("other.example/0", k);
    assert_int_equal(
        ac_ev_checkpoint_verify(note, len, other, strlen(other), NULL, &cp, err, sizeof err), -1);
    assert_int_equal(ac_ev_checkpoint_verify(note, len, "garbage", 7, NULL, &cp, err, sizeof err),
                     -1);
    /* unfit inputs */
    free(note);
    assert_int_equal(ac_ev_checkpoint_sign("bad origin", 1, root, k, &note, &len), -1);
    assert_null(note);
    assert_int_equal(ac_ev_checkpoint_sign(origin, 1, root, p256, &note, &len), -1);
    assert_null(ac_ev_checkpoint_vkey("a+b", k));
    assert_null(ac_ev_checkpoint_vkey(origin, p256));
    /* the empty tree */
    free(note);
    uint8_t empty[HL];
    ac_merkle_empty_root(empty);
    assert_int_equal(ac_ev_checkpoint_sign(origin, 0, empty, k, &note, &len), 0);
    assert_int_equal(
        ac_ev_checkpoint_verify(note, len, vkey, strlen(vkey), origin, &cp, err, sizeof err), 0);
    assert_int_equal(cp.size, 0);
    ac_ev_checkpoint_clear(&cp);
    free(note);
    free(vkey);
    free(vkey2);
    free(other);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(p256);
}

/* ---- the leaf store -------------------------------------------------------------------------- */

static void tree_proofs(void **s)
{
    (void)s;
    struct ac_ev_tree t;
    ac_ev_tree_init(&t);
    uint8_t leaves[70][HL];
    for (int i = 0; i < 70; i++) {
        uint8_t data[4] = {(uint8_t)i, 1, 2, 3};
        assert_int_equal(ac_ev_leaf_hash(data, sizeof data, leaves[i]), 0);
        assert_int_equal(ac_ev_tree_append(&t, leaves[i]), 0);
    }
    uint8_t proof[AC_MERKLE_MAX_PROOF][HL], r1[HL], r2[HL];
    size_t n;
    for (uint64_t size = 1; size <= 70; size += 7) {
        assert_int_equal(ac_ev_tree_root(&t, size, r1), 0);
        for (uint64_t i = 0; i < size; i++) {
            assert_int_equal(ac_ev_tree_inclusion(&t, i, size, proof, &n), 0);
            assert_int_equal(
                ac_merkle_verify_inclusion(i, size, leaves[i], (const uint8_t(*)[HL])proof, n, r1),
                1);
            /* the proof does not prove another leaf */
            assert_int_equal(ac_merkle_verify_inclusion(i, size, leaves[(i + 1) % 70],
                                                        (const uint8_t(*)[HL])proof, n, r1),
                             0);
        }
        for (uint64_t to = size; to <= 70; to += 5) {
            assert_int_equal(ac_ev_tree_root(&t, to, r2), 0);
            assert_int_equal(ac_ev_tree_consistency(&t, size, to, proof, &n), 0);
            assert_int_equal(
                ac_merkle_verify_consistency(size, to, r1, r2, (const uint8_t(*)[HL])proof, n), 1);
        }
    }
    assert_int_equal(ac_ev_tree_root(&t, 71, r1), -1);
    assert_int_equal(ac_ev_tree_inclusion(&t, 5, 5, proof, &n), -1);
    assert_int_equal(ac_ev_tree_inclusion(&t, 0, 71, proof, &n), -1);
    assert_int_equal(ac_ev_tree_consistency(&t, 0, 5, proof, &n), -1);
    assert_int_equal(ac_ev_tree_consistency(&t, 6, 5, proof, &n), -1);
    assert_int_equal(ac_ev_tree_consistency(&t, 5, 71, proof, &n), -1);
    ac_ev_tree_free(&t);
    assert_int_equal(ac_ev_tree_root(&t, 0, r1), 0); /* the empty tree */
    ac_merkle_empty_root(r2);
    assert_memory_equal(r1, r2, HL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_full),
        cmocka_unit_test(every_kind),
        cmocka_unit_test(rules),
        cmocka_unit_test(canonical_form),
        cmocka_unit_test(every_byte_detected),
        cmocka_unit_test(every_field_detected),
        cmocka_unit_test(checkpoints),
        cmocka_unit_test(tree_proofs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
