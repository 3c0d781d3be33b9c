/* The auditor's ledger recomputation (protocol/evcheck.h) on records built in memory: accounts
 * come only from ledger.account records, each once and with its asset; transfers post, hold and
 * resolve holds; a hold recorded with a timeout is released before the first record at or past
 * its expiry, and cannot be posted afterwards; account flags are enforced after every transfer.
 * (The same rules over a real sequencer's log: tests/db/test_evidence_tamper.c.) */
#include "tests/support/testutil.h"

#include <string.h>

#include "protocol/evcheck.h"
#include "protocol/evidence.h"

#define T0 INT64_C(1714557600000000) /* a record time, microseconds */

static struct ac_evcheck *ck;
static char why[256];

static int setup(void **st)
{
    (void)st;
    ck = ac_evcheck_new();
    assert_non_null(ck);
    /* bank (no limit), a wallet that may not overdraw, a merchant whose credits may not exceed
     * its debits, one account of another asset */
    static const struct ac_ev_account acc[] = {{"bank", "CNY", NULL, 0},
                                               {"wallet", "CNY", "u1", 0x1},
                                               {"shop", "CNY", NULL, 0x2},
                                               {"tokens", "TOK", NULL, 0}};
    struct ac_ev_record r;
    memset(&r, 0, sizeof r);
    r.kind = AC_EV_LEDGER_ACCOUNT;
    r.time_us = T0;
    r.body.actor = "operator";
    r.body.accounts = acc;
    r.body.naccounts = 4;
    assert_int_equal(ac_ev_record_validate(&r, why, sizeof why), 0);
    if (ac_evcheck_record(ck, &r, why, sizeof why) != 0) fail_msg("%s", why);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ac_evcheck_free(ck);
    return 0;
}

/* Apply one ledger.transfer record of one transfer at time t; returns ac_evcheck_record's result
 * (why holds the reason). */
static int xfer(int64_t t, const char *id, const char *debit, const char *credit, int64_t amount,
                uint32_t flags, const char *pending, uint32_t timeout_s)
{
    struct ac_ev_transfer x = {id, debit, credit, amount, "CNY", 2, flags, pending, timeout_s, 0};
    struct ac_ev_record r;
    memset(&r, 0, sizeof r);
    r.kind = AC_EV_LEDGER_TRANSFER;
    r.time_us = t;
    r.body.actor = "operator";
    r.body.transfers = &x;
    r.body.ntransfers = 1;
    assert_int_equal(ac_ev_record_validate(&r, why, sizeof why), 0);
    why[0] = '\0';
    return ac_evcheck_record(ck, &r, why, sizeof why);
}

static const struct ac_evcheck_account *acct(const char *id)
{
    const struct ac_evcheck_account *a = ac_evcheck_account(ck, id);
    assert_non_null(a);
    return a;
}

static void expect_fail(int rc, const char *needle)
{
    assert_int_equal(rc, -1);
    if (strstr(why, needle) == NULL) fail_msg("want '%s', got '%s'", needle, why);
}

static void accounts_from_records(void **st)
{
    (void)st;
    size_t n;
    ac_evcheck_accounts(ck, &n);
    assert_int_equal(n, 4);
    assert_int_equal(acct("wallet")->flags, 0x1);
    assert_null(ac_evcheck_account(ck, "nobody"));
    expect_fail(xfer(T0, "x1", "bank", "nobody", 5, 0, NULL, 0),
                "moves money of account nobody, which no earlier record created");
    expect_fail(xfer(T0, "x2", "tokens", "wallet", 5, 0, NULL, 0), "accounts of another asset");
    /* created twice */
    static const struct ac_ev_account again = {"wallet", "CNY", NULL, 0};
    struct ac_ev_record r;
    memset(&r, 0, sizeof r);
    r.kind = AC_EV_LEDGER_ACCOUNT;
    r.body.actor = "operator";
    r.body.accounts = &again;
    r.body.naccounts = 1;
    expect_fail(ac_evcheck_record(ck, &r, why, sizeof why), "account wallet is created a second");
}

static void flags_enforced(void **st)
{
    (void)st;
    /* the wallet spends what it got, not a cent more */
    assert_int_equal(xfer(T0, "f1", "bank", "wallet", 1000, 0, NULL, 0), 0);
    assert_int_equal(xfer(T0, "p1", "wallet", "bank", 600, 0, NULL, 0), 0);
    assert_int_equal(xfer(T0, "h1", "wallet", "bank", 400, 0x02, NULL, 0), 0);
    const struct ac_evcheck_account *w = acct("wallet");
    assert_int_equal(w->credits_posted, 1000);
    assert_int_equal(w->debits_posted, 600);
    assert_int_equal(w->debits_pending, 400);
    assert_int_equal(w->open_holds, 1);
    expect_fail(xfer(T0, "p2", "wallet", "bank", 1, 0, NULL, 0),
                "transfer p2 overdraws account wallet (its debits must not exceed its credits)");
    /* the merchant may receive only what it paid out */
    expect_fail(xfer(T0, "s1", "bank", "shop", 1, 0, NULL, 0),
                "overdraws account shop (its credits must not exceed its debits)");
}

static void holds_and_expiry(void **st)
{
    (void)st;
    int64_t t = T0 + 100000000;
    assert_int_equal(xfer(t, "fund", "bank", "wallet", 10000, 0, NULL, 0), 0);
    /* a hold of 300 for 10 s, one without timeout */
    assert_int_equal(xfer(t, "hx", "wallet", "bank", 300, 0x02, NULL, 10), 0);
    assert_int_equal(xfer(t, "hy", "wallet", "bank", 200, 0x02, NULL, 0), 0);
    const struct ac_evcheck_account *w = acct("wallet");
    int64_t dp = w->debits_pending, open = (int64_t)w->open_holds;
    /* 1 us before the expiry: still held (a record of that time comes first) */
    assert_int_equal(xfer(t + 9999999, "n1", "bank", "wallet", 1, 0, NULL, 0), 0);
    assert_int_equal(w->debits_pending, dp);
    /* at the expiry: released before the record applies */
    assert_int_equal(xfer(t + 10000000, "n2", "bank", "wallet", 1, 0, NULL, 0), 0);
    assert_int_equal(w->debits_pending, dp - 300);
    assert_int_equal((int64_t)w->open_holds, open - 1);
    struct ac_evcheck_stats s;
    ac_evcheck_stats(ck, &s);
    assert_int_equal(s.holds_expired, 1);
    /* an expired hold cannot be posted; a hold without timeout can, once */
    expect_fail(xfer(t + 20000000, "hx-post", "wallet", "bank", 300, 0x04, "hx", 0),
                "resolves hold hx, which was expired by its timeout");
    assert_int_equal(xfer(t + 20000000, "hy-post", "wallet", "bank", 150, 0x04, "hy", 0), 0);
    assert_int_equal(w->debits_pending, dp - 300 - 200);
    expect_fail(xfer(t + 20000000, "hy-void", "wallet", "bank", 50, 0x08, "hy", 0),
                "resolves hold hy, which was already resolved");
    expect_fail(xfer(t + 20000000, "hz-void", "wallet", "bank", 50, 0x08, "hz", 0),
                "resolves hold hz, which no earlier record holds");
}

/* One payment.expire record at time t restating (or voiding) transfer x. */
static int expire_record(int64_t t, const struct ac_ev_transfer *x)
{
    struct ac_ev_record r;
    memset(&r, 0, sizeof r);
    r.kind = AC_EV_PAYMENT_EXPIRE;
    r.time_us = t;
    r.body.payment = "p1";
    r.body.transfers = x;
    r.body.ntransfers = 1;
    assert_int_equal(ac_ev_record_validate(&r, why, sizeof why), 0);
    why[0] = '\0';
    return ac_evcheck_record(ck, &r, why, sizeof why);
}

/* The server was down past a step-up hold's timeout: the ledger released the hold at the restart
 * before the payments domain expired the authorization, whose payment.expire then restates the
 * hold (same id, accounts and amount). The replay accepts exactly that and moves nothing again. */
static void expired_hold_restated(void **st)
{
    (void)st;
    int64_t t = T0 + 100000000;
    assert_int_equal(xfer(t, "fund", "bank", "wallet", 10000, 0, NULL, 0), 0);
    assert_int_equal(xfer(t, "hold", "wallet", "bank", 300, 0x02, NULL, 90), 0);
    const struct ac_evcheck_account *w = acct("wallet");
    /* before its timeout the hold is open: a restatement is a second hold of one id */
    struct ac_ev_transfer same = {"hold", "wallet", "bank", 300, "CNY", 2, 0x02, NULL, 90, 0};
    expect_fail(expire_record(t + 50000000, &same), "hold hold is recorded twice");
    /* past it: released by the timeout, and the restatement changes nothing */
    assert_int_equal(expire_record(t + 91000000, &same), 0);
    assert_int_equal(w->debits_pending, 0);
    assert_int_equal(w->debits_posted, 0);
    assert_int_equal(w->credits_posted, 10000);
    /* only the same hold: another amount or account is refused */
    struct ac_ev_transfer other = same;
    other.amount = 301;
    expect_fail(expire_record(t + 92000000, &other), "recorded twice");
    other = same;
    other.debit = "bank";
    other.credit = "wallet";
    expect_fail(expire_record(t + 92000000, &other), "recorded twice");
    /* and only in a payment.expire: an operator's ledger.transfer may not restate it */
    expect_fail(xfer(t + 93000000, "hold", "wallet", "bank", 300, 0x02, NULL, 90), "recorded twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(accounts_from_records, setup, teardown),
        cmocka_unit_test_setup_teardown(flags_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(holds_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_hold_restated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
