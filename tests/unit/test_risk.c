/* The risk engine: periods, the spend state (risk/spend.h) and the decision (risk/decide.h).
 *
 * Expected period starts were computed independently with `date -u -d ... +%s`. The decision
 * table builds each case from a real mandate payload (parsed by ac_mandate_parse), a binding and a
 * request, replays the spend history it names through the spend functions, and checks the verdict
 * and the exact list of decisive reasons. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mandate.h"
#include "risk/decide.h"
#include "risk/reasons.h"
#include "risk/spend.h"

#define H8 (8 * 3600)

/* ================================================================================================
 * periods
 * ============================================================================================== */

static void test_period_start(void **state)
{
    (void)state;
    /* clang-format off */
    static const struct {
        int32_t tz;
        int64_t t, day, week, month;
        const char *what;
    } rows[] = {
        {H8, 1741190399, 1741104000, 1740931200, 1740758400, "+08 wed 23:59:59 local"},
        {H8, 1741190400, 1741190400, 1740931200, 1740758400, "+08 thu 00:00 local, utc still wed"},
        {H8, 1741535999, 1741449600, 1740931200, 1740758400, "+08 sun 23:59:59 local"},
        {H8, 1741536000, 1741536000, 1741536000, 1740758400, "+08 mon 00:00 local, utc sunday"},
        {H8, 1743436799, 1743350400, 1743350400, 1740758400, "+08 mar 31 23:59:59 local"},
        {H8, 1743436800, 1743436800, 1743350400, 1743436800, "+08 apr 1 00:00, utc mar 31"},
        {-5 * 3600, 1735707599, 1735621200, 1735534800, 1733029200, "-05 dec 31 2024 23:59:59"},
        {-5 * 3600, 1735707600, 1735707600, 1735534800, 1735707600, "-05 jan 1 2025 00:00"},
        {19800, 1709231399, 1709145000, 1708885800, 1706725800, "+05:30 feb 29 2024 (leap)"},
        {19800, 1709231400, 1709231400, 1708885800, 1709231400, "+05:30 mar 1 2024"},
        {0, -3600, -86400, -259200, -2678400, "before the epoch"},
        {0, 4107499200, 4107456000, 4106937600, 4105123200, "2100-02-28, not a leap year"},
        {14 * 3600, 1741147200, 1741082400, 1740909600, 1740736800, "+14:00"},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (ac_period_start(AC_PERIOD_DAY, rows[i].tz, rows[i].t) != rows[i].day ||
            ac_period_start(AC_PERIOD_WEEK, rows[i].tz, rows[i].t) != rows[i].week ||
            ac_period_start(AC_PERIOD_MONTH, rows[i].tz, rows[i].t) != rows[i].month)
            fail_msg("row %zu (%s): got %lld %lld %lld", i, rows[i].what,
                     (long long)ac_period_start(AC_PERIOD_DAY, rows[i].tz, rows[i].t),
                     (long long)ac_period_start(AC_PERIOD_WEEK, rows[i].tz, rows[i].t),
                     (long long)ac_period_start(AC_PERIOD_MONTH, rows[i].tz, rows[i].t));
    }
    /* every second of a local day maps to that day's start (walk one day in 1-hour steps) */
    for (int64_t t = 1741104000; t < 1741190400; t += 3600)
        assert_int_equal(ac_period_start(AC_PERIOD_DAY, H8, t), 1741104000);
    assert_int_equal(ac_us_to_s(-1), -1);
    assert_int_equal(ac_us_to_s(-1000000), -1);
    assert_int_equal(ac_us_to_s(999999), 0);
}

/* ================================================================================================
 * spend state
 * ============================================================================================== */

static const int64_t WED = 1741147200LL * 1000000; /* 2025-03-05 12:00 local (+08) */
static const int64_t DAY_US = 86400LL * 1000000;

static void test_spend_charge_and_roll(void **state)
{
    (void)state;
    struct ac_spend s;
    ac_spend_init(&s);
    assert_int_equal(ac_spend_charge(&s, H8, WED, 700), 0);
    assert_int_equal(ac_spend_charge(&s, H8, WED + 1, 300), 0);
    assert_int_equal(s.day.start_s, 1741104000);
    assert_int_equal(s.week.start_s, 1740931200);
    assert_int_equal(s.month.start_s, 1740758400);
    assert_int_equal(s.day.spent, 1000);
    assert_int_equal(s.week.spent, 1000);
    assert_int_equal(s.month.spent, 1000);
    assert_int_equal(s.spent, 1000);
    assert_int_equal(s.uses, 2);

    /* one microsecond before local midnight: same day; at midnight: a new day, same week */
    struct ac_spend r = s;
    ac_spend_roll(&r, H8, 1741190399999999LL);
    assert_memory_equal(&r, &s, sizeof s);
    ac_spend_roll(&r, H8, 1741190400000000LL);
    assert_int_equal(r.day.start_s, 1741190400);
    assert_int_equal(r.day.spent, 0);
    assert_int_equal(r.week.spent, 1000);
    assert_int_equal(r.month.spent, 1000);
    assert_int_equal(r.spent, 1000);

    /* the clock going back does not reopen the earlier day */
    struct ac_spend back = r;
    ac_spend_roll(&back, H8, WED);
    assert_memory_equal(&back, &r, sizeof r);
    assert_int_equal(ac_spend_charge(&back, H8, WED, 5), 0);
    assert_int_equal(back.day.start_s, 1741190400);
    assert_int_equal(back.day.spent, 5);

    /* local Monday 00:00 starts a week; local April 1st starts a month */
    r = s;
    ac_spend_roll(&r, H8, 1741536000LL * 1000000);
    assert_int_equal(r.week.spent, 0);
    assert_int_equal(r.month.spent, 1000);
    ac_spend_roll(&r, H8, 1743436800LL * 1000000);
    assert_int_equal(r.month.spent, 0);
    assert_int_equal(r.month.start_s, 1743436800);
    assert_int_equal(r.spent, 1000);
    assert_int_equal(r.uses, 2);
}

static void test_spend_holds(void **state)
{
    (void)state;
    struct ac_spend s, before;
    struct ac_spend_hold h1, h2;
    ac_spend_init(&s);
    assert_int_equal(ac_spend_charge(&s, H8, WED, 100), 0);
    assert_int_equal(ac_spend_hold(&s, H8, WED, 40, &h1), 0);
    assert_int_equal(h1.amount, 40);
    assert_int_equal(h1.at_us, WED);
    assert_int_equal(s.day.held, 40);
    assert_int_equal(s.held, 40);
    assert_int_equal(s.holds, 1);
    assert_int_equal(s.uses, 2);

    /* settle the same day: held -> spent everywhere, the use stays */
    before = s;
    assert_int_equal(ac_spend_settle(&s, H8, WED + 5, &h1), 0);
    assert_int_equal(s.day.spent, 140);
    assert_int_equal(s.day.held, 0);
    assert_int_equal(s.week.spent, 140);
    assert_int_equal(s.spent, 140);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.holds, 0);
    assert_int_equal(s.uses, 2);
    /* settling twice: no outstanding hold, nothing changes */
    struct ac_spend after = s;
    assert_int_equal(ac_spend_settle(&s, H8, WED + 6, &h1), -1);
    assert_memory_equal(&s, &after, sizeof s);
    /* undo by copy restores the state exactly */
    s = before;
    assert_int_equal(s.day.held, 40);

    /* release the same day: gone from held and uses */
    assert_int_equal(ac_spend_release(&s, H8, WED + 5, &h1), 0);
    assert_int_equal(s.day.held, 0);
    assert_int_equal(s.day.spent, 100);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.uses, 1);
    assert_int_equal(s.holds, 0);

    /* a hold taken on a day that has rolled over: settling it the next day moves the week and
     * month buckets and the total, and leaves today's bucket alone */
    ac_spend_init(&s);
    assert_int_equal(ac_spend_hold(&s, H8, WED, 30, &h2), 0);
    assert_int_equal(ac_spend_charge(&s, H8, WED + DAY_US, 7), 0);
    assert_int_equal(s.day.held, 0);
    assert_int_equal(s.week.held, 30);
    before = s;
    assert_int_equal(ac_spend_settle(&s, H8, WED + DAY_US, &h2), 0);
    assert_int_equal(s.day.spent, 7);
    assert_int_equal(s.day.held, 0);
    assert_int_equal(s.week.spent, 37);
    assert_int_equal(s.week.held, 0);
    assert_int_equal(s.spent, 37);
    /* releasing it instead gives the week back, not today */
    s = before;
    assert_int_equal(ac_spend_release(&s, H8, WED + DAY_US, &h2), 0);
    assert_int_equal(s.day.spent, 7);
    assert_int_equal(s.week.spent, 7);
    assert_int_equal(s.week.held, 0);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.uses, 1);
}

static void test_spend_failures_change_nothing(void **state)
{
    (void)state;
    struct ac_spend s, copy;
    struct ac_spend_hold h = {50, WED}, big = {1000, WED}, zero = {0, WED};
    ac_spend_init(&s);
    assert_int_equal(ac_spend_charge(&s, H8, WED, 10), 0);
    copy = s;
    assert_int_equal(ac_spend_charge(&s, H8, WED + DAY_US, 0), -1);
    assert_int_equal(ac_spend_charge(&s, H8, WED + DAY_US, -5), -1);
    assert_int_equal(ac_spend_hold(&s, H8, WED + DAY_US, 0, NULL), -1);
    assert_int_equal(ac_spend_release(&s, H8, WED + DAY_US, &h), -1); /* no hold outstanding */
    assert_int_equal(ac_spend_settle(&s, H8, WED + DAY_US, &h), -1);
    assert_int_equal(ac_spend_release(&s, H8, WED, NULL), -1);
    assert_int_equal(ac_spend_charge(&s, H8, WED + DAY_US, INT64_MAX), -1); /* overflow */
    /* failures did not even roll the buckets */
    assert_memory_equal(&s, &copy, sizeof s);

    assert_int_equal(ac_spend_hold(&s, H8, WED, 50, NULL), 0);
    copy = s;
    assert_int_equal(ac_spend_release(&s, H8, WED, &big), -1); /* more than held */
    assert_int_equal(ac_spend_settle(&s, H8, WED, &zero), -1);
    assert_memory_equal(&s, &copy, sizeof s);

    /* a batch applied and then rolled back by assigning the saved copy */
    struct ac_spend saved = s;
    struct ac_spend_hold hh;
    assert_int_equal(ac_spend_charge(&s, H8, WED + 2 * DAY_US, 1), 0);
    assert_int_equal(ac_spend_hold(&s, H8, WED + 40 * DAY_US, 3, &hh), 0);
    assert_int_equal(ac_spend_release(&s, H8, WED + 40 * DAY_US, &hh), 0);
    assert_int_equal(ac_spend_settle(&s, H8, WED + 41 * DAY_US, &h), 0);
    assert_memory_not_equal(&s, &saved, sizeof s);
    s = saved;
    assert_memory_equal(&s, &copy, sizeof s);
}

/* ================================================================================================
 * the decision table
 * ============================================================================================== */

/* 2025-01-01T00:00:00Z .. 2026-01-01T00:00:00Z, amounts in CNY (scale 2) */
static const char *BASE_MANDATE =
    "{\"ver\":1,\"id\":\"m-1\",\"iss\":\"alice\",\"bindings\":[\"b-1\"],\"agents\":[\"agent-x\"],"
    "\"ops\":[\"purchase\",\"micropay\"],"
    "\"payees\":{\"merchants\":[\"shop-1\"],\"categories\":[\"books\"]},"
    "\"asset\":\"CNY\",\"max_per_tx\":\"50.00\",\"min_per_tx\":\"0.10\","
    "\"caps\":{\"day\":\"100.00\",\"week\":\"300.00\",\"month\":\"1000.00\",\"total\":\"5000.00\"},"
    "\"max_uses\":10,\"nbf\":1735689600,\"exp\":1767225600,\"autonomy\":\"L5\","
    "\"step_up_above\":\"20.00\",\"tz\":\"+08:00\"}";

#define END AC_RR__COUNT
#define V_ALLOW AC_VERDICT_ALLOW
#define V_STEP AC_VERDICT_STEP_UP
#define V_DENY AC_VERDICT_DENY

struct row {
    const char *name;
    const char *patch; /* JSON object merged into the base mandate (null deletes a member) */
    const char *setup; /* space-separated steps, see run_row */
    enum ac_verdict verdict;
    enum ac_reason reasons[8]; /* terminated by END */
    int used;                  /* expected confirmation_used */
};

/* clang-format off */
static const struct row rows[] = {
    /* the base case: micropay 10.00 to a named merchant, Wednesday noon local */
    {"base", NULL, "", V_ALLOW, {END}, 0},

    /* per-transaction bounds */
    {"amount at max_per_tx", NULL, "amount=5000", V_ALLOW, {END}, 0},
    {"amount one unit above max_per_tx", NULL, "amount=5001", V_DENY,
     {AC_RR_AMOUNT_ABOVE_MAX_PER_TX, END}, 0},
    {"amount at min_per_tx", NULL, "amount=10", V_ALLOW, {END}, 0},
    {"amount one unit below min_per_tx", NULL, "amount=9", V_DENY, {AC_RR_AMOUNT_BELOW_MIN, END},
     0},
    {"no min_per_tx: one base unit", "{\"min_per_tx\":null}", "amount=1", V_ALLOW, {END}, 0},
    {"zero amount", NULL, "amount=0", V_DENY, {AC_RR_AMOUNT_NOT_POSITIVE, END}, 0},
    {"negative amount", NULL, "amount=-1", V_DENY, {AC_RR_AMOUNT_NOT_POSITIVE, END}, 0},

    /* caps: exactly at the cap, one base unit above */
    {"day cap reached exactly", "{\"caps\":{\"day\":\"100.00\"}}",
     "charge=5000 charge=4000 amount=1000", V_ALLOW, {END}, 0},
    {"day cap one unit above", "{\"caps\":{\"day\":\"100.00\"}}",
     "charge=5000 charge=4000 amount=1001", V_DENY, {AC_RR_CAP_DAY_EXCEEDED, END}, 0},
    {"week cap reached exactly over three days", "{\"caps\":{\"week\":\"30.00\"}}",
     "t=1740967200 charge=1000 t=1741060800 charge=1000 t=1741147200 charge=500 amount=500",
     V_ALLOW, {END}, 0},
    {"week cap one unit above", "{\"caps\":{\"week\":\"30.00\"}}",
     "t=1740967200 charge=1000 t=1741060800 charge=1000 t=1741147200 charge=500 amount=501",
     V_DENY, {AC_RR_CAP_WEEK_EXCEEDED, END}, 0},
    {"month cap one unit above", "{\"caps\":{\"month\":\"30.00\"}}",
     "t=1740787200 charge=2500 t=1741147200 amount=501", V_DENY, {AC_RR_CAP_MONTH_EXCEEDED, END},
     0},
    {"month cap exactly", "{\"caps\":{\"month\":\"30.00\"}}",
     "t=1740787200 charge=2500 t=1741147200 amount=500", V_ALLOW, {END}, 0},
    {"total cap spans months", "{\"caps\":{\"total\":\"30.00\"}}",
     "t=1736000000 charge=2500 t=1741147200 amount=501", V_DENY, {AC_RR_CAP_TOTAL_EXCEEDED, END},
     0},
    {"total cap exactly", "{\"caps\":{\"total\":\"30.00\"}}",
     "t=1736000000 charge=2500 t=1741147200 amount=500", V_ALLOW, {END}, 0},
    {"every cap at once", "{\"caps\":{\"day\":\"10.00\",\"week\":\"10.00\",\"month\":\"10.00\","
                          "\"total\":\"10.00\"}}",
     "charge=1000 amount=10", V_DENY,
     {AC_RR_CAP_DAY_EXCEEDED, AC_RR_CAP_WEEK_EXCEEDED, AC_RR_CAP_MONTH_EXCEEDED,
      AC_RR_CAP_TOTAL_EXCEEDED, END},
     0},

    /* period rollover at local midnight (+08:00): the utc date is still the same */
    {"day: 23:59:59.999999 local still counts", "{\"caps\":{\"day\":\"10.00\"}}",
     "t=1741190399 charge=1000 tus=1741190399999999 amount=10", V_DENY,
     {AC_RR_CAP_DAY_EXCEEDED, END}, 0},
    {"day: local midnight opens a new day", "{\"caps\":{\"day\":\"10.00\"}}",
     "t=1741190399 charge=1000 t=1741190400 amount=1000", V_ALLOW, {END}, 0},
    {"week: sunday 23:59:59 local", "{\"caps\":{\"week\":\"10.00\"}}",
     "t=1741535999 charge=1000 amount=10", V_DENY, {AC_RR_CAP_WEEK_EXCEEDED, END}, 0},
    {"week: monday 00:00 local (utc sunday)", "{\"caps\":{\"week\":\"10.00\"}}",
     "t=1741535999 charge=1000 t=1741536000 amount=1000", V_ALLOW, {END}, 0},
    {"month: march 31 23:59:59 local", "{\"caps\":{\"month\":\"10.00\"}}",
     "t=1743436799 charge=1000 amount=10", V_DENY, {AC_RR_CAP_MONTH_EXCEEDED, END}, 0},
    {"month: april 1 00:00 local (utc march 31)", "{\"caps\":{\"month\":\"10.00\"}}",
     "t=1743436799 charge=1000 t=1743436800 amount=1000", V_ALLOW, {END}, 0},
    {"utc midnight is not a local day boundary", "{\"caps\":{\"day\":\"10.00\"}}",
     "t=1741132799 charge=1000 t=1741132800 amount=10", V_DENY, {AC_RR_CAP_DAY_EXCEEDED, END}, 0},
    {"day rolls with a negative offset", "{\"caps\":{\"day\":\"10.00\"},\"tz\":\"-05:00\"}",
     "t=1735707599 charge=1000 t=1735707600 amount=1000", V_ALLOW, {END}, 0},
    {"negative offset: utc midnight is mid-day", "{\"caps\":{\"day\":\"10.00\"},\"tz\":\"-05:00\"}",
     "t=1735689599 charge=1000 t=1735689600 amount=10", V_DENY, {AC_RR_CAP_DAY_EXCEEDED, END}, 0},

    /* held step-ups count against caps and uses until released */
    {"held amount counts against the day cap", "{\"caps\":{\"day\":\"10.00\"}}",
     "hold=600 amount=401", V_DENY, {AC_RR_CAP_DAY_EXCEEDED, END}, 0},
    {"held amount plus payment exactly at the cap", "{\"caps\":{\"day\":\"10.00\"}}",
     "hold=600 amount=400", V_ALLOW, {END}, 0},
    {"released hold frees the cap", "{\"caps\":{\"day\":\"10.00\"}}", "hold=600 release amount=1000",
     V_ALLOW, {END}, 0},
    {"settled hold keeps counting", "{\"caps\":{\"day\":\"10.00\"}}", "hold=600 settle amount=401",
     V_DENY, {AC_RR_CAP_DAY_EXCEEDED, END}, 0},
    {"held amount counts in the total", "{\"caps\":{\"total\":\"10.00\"}}",
     "t=1736000000 hold=600 t=1741147200 amount=401", V_DENY, {AC_RR_CAP_TOTAL_EXCEEDED, END}, 0},
    {"the hold being confirmed is not counted twice", "{\"caps\":{\"day\":\"10.00\"}}",
     "hold=1000 ownhold amount=1000 confirmed", V_ALLOW, {END}, 0},

    /* uses */
    {"max_uses reached", "{\"max_uses\":2}", "charge=10 charge=10", V_DENY,
     {AC_RR_MAX_USES_REACHED, END}, 0},
    {"one use left", "{\"max_uses\":2}", "charge=10", V_ALLOW, {END}, 0},
    {"a hold takes a use", "{\"max_uses\":2}", "charge=10 hold=10", V_DENY,
     {AC_RR_MAX_USES_REACHED, END}, 0},
    {"a released hold gives the use back", "{\"max_uses\":2}", "charge=10 hold=10 release",
     V_ALLOW, {END}, 0},

    /* validity: the nbf second and the exp second */
    {"at the nbf second", NULL, "t=1735689600", V_ALLOW, {END}, 0},
    {"one microsecond before nbf", NULL, "tus=1735689599999999", V_DENY,
     {AC_RR_MANDATE_NOT_YET_VALID, END}, 0},
    {"last microsecond before exp", NULL, "tus=1767225599999999", V_ALLOW, {END}, 0},
    {"at the exp second", NULL, "t=1767225600", V_DENY, {AC_RR_MANDATE_EXPIRED, END}, 0},
    {"mandate revoked", NULL, "mrevoked", V_DENY, {AC_RR_MANDATE_REVOKED, END}, 0},
    {"binding revoked", NULL, "brevoked", V_DENY, {AC_RR_BINDING_REVOKED, END}, 0},
    {"binding at its exp second", NULL, "bexp=1741147200", V_DENY, {AC_RR_BINDING_EXPIRED, END},
     0},
    {"binding one second before exp", NULL, "bexp=1741147201", V_ALLOW, {END}, 0},
    {"binding at its nbf second", NULL, "bnbf=1741147200", V_ALLOW, {END}, 0},
    {"binding before nbf", NULL, "bnbf=1741147201", V_DENY, {AC_RR_BINDING_NOT_YET_VALID, END}, 0},

    /* scope */
    {"binding of another user", NULL, "buser=bob", V_DENY, {AC_RR_USER_MISMATCH, END}, 0},
    {"binding and agent not named", NULL, "bid=b-2 bagent=agent-z", V_DENY,
     {AC_RR_AGENT_NOT_IN_MANDATE, END}, 0},
    {"agent named, binding not", NULL, "bid=b-2 bagent=agent-x", V_ALLOW, {END}, 0},
    {"op not allowed", NULL, "op=topup", V_DENY, {AC_RR_OP_NOT_ALLOWED, END}, 0},
    {"op not an op", NULL, "op=none", V_DENY, {AC_RR_OP_NOT_ALLOWED, END}, 0},
    {"payee admitted by category", NULL, "payee=shop-2 cat=books", V_ALLOW, {END}, 0},
    {"payee neither listed nor of a listed category", NULL, "payee=shop-2 cat=toys", V_DENY,
     {AC_RR_PAYEE_NOT_ALLOWED, END}, 0},
    {"payee without category", NULL, "payee=shop-2 cat=", V_DENY, {AC_RR_PAYEE_NOT_ALLOWED, END},
     0},
    {"other asset: amount rules skipped", NULL, "asset=USD amount=999999", V_DENY,
     {AC_RR_ASSET_MISMATCH, END}, 0},
    {"spend overflow", "{\"caps\":null}", "charge=9223372036854775000 amount=5000", V_DENY,
     {AC_RR_SPEND_OVERFLOW, END}, 0},

    /* autonomy levels (effective = min(binding, mandate)); threshold 20.00 */
    {"L0 never pays", "{\"autonomy\":\"L0\"}", "", V_DENY, {AC_RR_AUTONOMY_SUGGEST_ONLY, END}, 0},
    {"L0 even when confirmed", "{\"autonomy\":\"L0\"}", "confirmed", V_DENY,
     {AC_RR_AUTONOMY_SUGGEST_ONLY, END}, 0},
    {"binding L0 caps mandate L5", NULL, "blvl=L0", V_DENY, {AC_RR_AUTONOMY_SUGGEST_ONLY, END}, 0},
    {"L1 steps up every payment", "{\"autonomy\":\"L1\"}", "amount=10", V_STEP,
     {AC_RR_AUTONOMY_REQUIRES_CONFIRMATION, END}, 0},
    {"L1 confirmed", "{\"autonomy\":\"L1\"}", "confirmed", V_ALLOW,
     {AC_RR_AUTONOMY_REQUIRES_CONFIRMATION, END}, 1},
    {"L1 above threshold: both reasons", "{\"autonomy\":\"L1\"}", "amount=2001", V_STEP,
     {AC_RR_AUTONOMY_REQUIRES_CONFIRMATION, AC_RR_ABOVE_STEP_UP_THRESHOLD, END}, 0},
    {"L2 micropay to a named merchant", "{\"autonomy\":\"L2\"}", "amount=2000", V_ALLOW, {END}, 0},
    {"L2 above threshold", "{\"autonomy\":\"L2\"}", "amount=2001", V_STEP,
     {AC_RR_ABOVE_STEP_UP_THRESHOLD, END}, 0},
    {"L2 purchase", "{\"autonomy\":\"L2\"}", "op=purchase", V_STEP,
     {AC_RR_AUTONOMY_OP_NEEDS_CONFIRMATION, END}, 0},
    {"L2 payee by category", "{\"autonomy\":\"L2\"}", "payee=shop-2 cat=books", V_STEP,
     {AC_RR_AUTONOMY_PAYEE_NOT_NAMED, END}, 0},
    {"L2 purchase by category above threshold, confirmed", "{\"autonomy\":\"L2\"}",
     "op=purchase payee=shop-2 cat=books amount=2001 confirmed", V_ALLOW,
     {AC_RR_AUTONOMY_OP_NEEDS_CONFIRMATION, AC_RR_AUTONOMY_PAYEE_NOT_NAMED,
      AC_RR_ABOVE_STEP_UP_THRESHOLD, END},
     1},
    {"L3 purchase to a named merchant", "{\"autonomy\":\"L3\"}", "op=purchase amount=2000", V_ALLOW,
     {END}, 0},
    {"L3 payee by category", "{\"autonomy\":\"L3\"}", "payee=shop-2 cat=books", V_STEP,
     {AC_RR_AUTONOMY_PAYEE_NOT_NAMED, END}, 0},
    {"L3 above threshold", "{\"autonomy\":\"L3\"}", "amount=2001", V_STEP,
     {AC_RR_ABOVE_STEP_UP_THRESHOLD, END}, 0},
    {"L4 payee by category", "{\"autonomy\":\"L4\"}", "op=purchase payee=shop-2 cat=books",
     V_ALLOW, {END}, 0},
    {"L4 at threshold", "{\"autonomy\":\"L4\"}", "amount=2000", V_ALLOW, {END}, 0},
    {"L4 above threshold", "{\"autonomy\":\"L4\"}", "amount=2001", V_STEP,
     {AC_RR_ABOVE_STEP_UP_THRESHOLD, END}, 0},
    {"L4 threshold zero", "{\"autonomy\":\"L4\",\"step_up_above\":\"0\"}", "amount=10", V_STEP,
     {AC_RR_ABOVE_STEP_UP_THRESHOLD, END}, 0},
    {"L4 without threshold", "{\"autonomy\":\"L4\",\"step_up_above\":null}", "amount=5000",
     V_ALLOW, {END}, 0},
    {"L5 above threshold", NULL, "amount=5000 op=purchase payee=shop-2 cat=books", V_ALLOW, {END},
     0},
    {"binding L2 lowers mandate L5", NULL, "blvl=L2 op=purchase", V_STEP,
     {AC_RR_AUTONOMY_OP_NEEDS_CONFIRMATION, END}, 0},
    {"mandate L3 lowers binding L5", "{\"autonomy\":\"L3\"}", "blvl=L5 payee=shop-2 cat=books",
     V_STEP, {AC_RR_AUTONOMY_PAYEE_NOT_NAMED, END}, 0},
    {"confirmation without a step-up reason", NULL, "confirmed", V_ALLOW, {END}, 0},

    /* deny dominates step-up; every deny reason is reported, in registry order */
    {"deny dominates", "{\"autonomy\":\"L1\"}", "amount=5001", V_DENY,
     {AC_RR_AMOUNT_ABOVE_MAX_PER_TX, END}, 0},
    {"deny dominates a confirmation", "{\"autonomy\":\"L1\"}", "mrevoked confirmed", V_DENY,
     {AC_RR_MANDATE_REVOKED, END}, 0},
    {"many deny reasons", NULL,
     "t=1767225600 mrevoked brevoked buser=bob bid=b-9 bagent=a-9 op=topup payee=x cat=y "
     "asset=USD",
     V_DENY,
     {AC_RR_MANDATE_EXPIRED, AC_RR_MANDATE_REVOKED, AC_RR_BINDING_REVOKED, AC_RR_USER_MISMATCH,
      AC_RR_AGENT_NOT_IN_MANDATE, AC_RR_OP_NOT_ALLOWED, AC_RR_PAYEE_NOT_ALLOWED,
      AC_RR_ASSET_MISMATCH},
     0},
    {"confirming a hold after revocation", "{\"autonomy\":\"L1\"}",
     "hold=1000 ownhold amount=1000 confirmed mrevoked", V_DENY, {AC_RR_MANDATE_REVOKED, END}, 0},
};
/* clang-format on */

static struct ac_mandate mandate_with(const char *patch)
{
    json_error_t e;
    json_t *m = json_loads(BASE_MANDATE, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(m);
    if (patch) {
        json_t *p = json_loads(patch, 0, &e);
        assert_non_null(p);
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v)
        {
            if (json_is_null(v))
                json_object_del(m, k);
            else
                json_object_set(m, k, v);
        }
        json_decref(p);
    }
    struct ac_mandate out;
    struct ac_doc_err err;
    enum ac_ec rc = ac_mandate_parse(m, 2, &out, &err);
    if (rc != AC_EC_OK) fail_msg("patch %s: %s at %s", patch, err.detail, err.pointer);
    json_decref(m);
    return out;
}

/* Run one row. Steps, applied in order:
 *   t=<unix s> / tus=<unix us>   set the clock (for later steps and for the decision)
 *   charge=N hold=N              spend history at the current clock
 *   release / settle             end the last hold at the current clock
 *   ownhold                      decide as the confirmation of the last hold
 *   amount=N op=NAME payee=ID cat=ID asset=CODE     the request
 *   blvl=Lx buser=ID bid=ID bagent=ID bnbf=S bexp=S brevoked     the binding
 *   mrevoked confirmed */
static void run_row(const struct row *r)
{
    struct ac_mandate m = mandate_with(r->patch);
    struct ac_spend spend;
    struct ac_spend_hold hold = {0, 0};
    ac_spend_init(&spend);
    char buf[512], payee[64] = "shop-1", cat[64] = "llm", asset[16] = "CNY", buser[64] = "alice",
                   bid[64] = "b-1", bagent[64] = "agent-y";
    struct ac_risk_input in = {
        .req =
            {.op = AC_OP_MICROPAY, .payee = payee, .category = cat, .asset = asset, .amount = 1000},
        .binding = {.binding_id = bid, .user_id = buser, .agent_id = bagent, .max_autonomy = AC_L5},
        .mandate = &m,
        .spend = &spend,
        .now_us = WED,
    };
    snprintf(buf, sizeof buf, "%s", r->setup);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        const char *val = eq ? eq + 1 : "";
        if (eq) *eq = '\0';
        long long n = strtoll(val, NULL, 10);
        if (strcmp(tok, "t") == 0)
            in.now_us = n * 1000000;
        else if (strcmp(tok, "tus") == 0)
            in.now_us = n;
        else if (strcmp(tok, "charge") == 0)
            assert_int_equal(ac_spend_charge(&spend, m.tz_offset_s, in.now_us, n), 0);
        else if (strcmp(tok, "hold") == 0)
            assert_int_equal(ac_spend_hold(&spend, m.tz_offset_s, in.now_us, n, &hold), 0);
        else if (strcmp(tok, "release") == 0)
            assert_int_equal(ac_spend_release(&spend, m.tz_offset_s, in.now_us, &hold), 0);
        else if (strcmp(tok, "settle") == 0)
            assert_int_equal(ac_spend_settle(&spend, m.tz_offset_s, in.now_us, &hold), 0);
        else if (strcmp(tok, "ownhold") == 0)
            in.hold = &hold;
        else if (strcmp(tok, "amount") == 0)
            in.req.amount = n;
        else if (strcmp(tok, "op") == 0)
            in.req.op = ac_op_from_name(val);
        else if (strcmp(tok, "payee") == 0)
            snprintf(payee, sizeof payee, "%s", val);
        else if (strcmp(tok, "cat") == 0)
            snprintf(cat, sizeof cat, "%s", val);
        else if (strcmp(tok, "asset") == 0)
            snprintf(asset, sizeof asset, "%s", val);
        else if (strcmp(tok, "blvl") == 0)
            assert_int_equal(ac_autonomy_parse(val, &in.binding.max_autonomy), 0);
        else if (strcmp(tok, "buser") == 0)
            snprintf(buser, sizeof buser, "%s", val);
        else if (strcmp(tok, "bid") == 0)
            snprintf(bid, sizeof bid, "%s", val);
        else if (strcmp(tok, "bagent") == 0)
            snprintf(bagent, sizeof bagent, "%s", val);
        else if (strcmp(tok, "bnbf") == 0)
            in.binding.nbf_s = n;
        else if (strcmp(tok, "bexp") == 0)
            in.binding.exp_s = n;
        else if (strcmp(tok, "brevoked") == 0)
            in.binding.revoked = 1;
        else if (strcmp(tok, "mrevoked") == 0)
            in.mandate_revoked = 1;
        else if (strcmp(tok, "confirmed") == 0)
            in.confirmed = 1;
        else
            fail_msg("row %s: unknown step %s", r->name, tok);
    }

    struct ac_spend before = spend;
    struct ac_risk_decision d;
    ac_risk_decide(&in, &d);
    /* the decision never changes its inputs */
    assert_memory_equal(&spend, &before, sizeof spend);

    unsigned want_n = 0;
    while (want_n < 8 && r->reasons[want_n] != END)
        want_n++;
    int ok = d.verdict == r->verdict && d.n == want_n && d.confirmation_used == r->used;
    for (unsigned i = 0; ok && i < want_n; i++)
        ok = d.reasons[i] == r->reasons[i];
    if (!ok) {
        char got[512] = "";
        for (unsigned i = 0; i < d.n; i++) {
            strncat(got, ac_reason_code(d.reasons[i]), sizeof got - strlen(got) - 2);
            strncat(got, " ", sizeof got - strlen(got) - 1);
        }
        fail_msg("row \"%s\": got %s [%s] used=%d, want %s (%u reasons)", r->name,
                 ac_verdict_name(d.verdict), got, d.confirmation_used, ac_verdict_name(r->verdict),
                 want_n);
    }
    /* every decisive reason fired, and is of the verdict's kind */
    for (unsigned i = 0; i < d.n; i++) {
        assert_true(ac_risk_fired(&d, d.reasons[i]));
        assert_int_equal(ac_reason_kind(d.reasons[i]),
                         d.verdict == AC_VERDICT_DENY ? AC_RK_DENY : AC_RK_STEP_UP);
    }
}

static void test_decision_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        run_row(&rows[i]);
}

/* DENY hides step-up reasons from the decisive list but they are still recorded as fired; the
 * effective level is reported. */
static void test_decision_details(void **state)
{
    (void)state;
    struct ac_mandate m = mandate_with("{\"autonomy\":\"L3\"}");
    struct ac_spend s;
    ac_spend_init(&s);
    struct ac_risk_input in = {
        .req = {.op = AC_OP_MICROPAY,
                .payee = "shop-2",
                .category = "books",
                .asset = "CNY",
                .amount = 5001},
        .binding = {.binding_id = "b-1",
                    .user_id = "alice",
                    .agent_id = "a",
                    .max_autonomy = AC_L4},
        .mandate = &m,
        .spend = &s,
        .now_us = WED,
    };
    struct ac_risk_decision d;
    ac_risk_decide(&in, &d);
    assert_int_equal(d.verdict, AC_VERDICT_DENY);
    assert_int_equal(d.autonomy, AC_L3);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.reasons[0], AC_RR_AMOUNT_ABOVE_MAX_PER_TX);
    assert_true(ac_risk_fired(&d, AC_RR_AUTONOMY_PAYEE_NOT_NAMED));
    assert_true(ac_risk_fired(&d, AC_RR_ABOVE_STEP_UP_THRESHOLD));
    assert_false(ac_risk_fired(&d, AC_RR_CAP_DAY_EXCEEDED));
    assert_false(ac_risk_fired(&d, AC_RR__COUNT));

    /* an out-of-range binding level never raises the mandate's grant */
    in.binding.max_autonomy = (enum ac_autonomy)9;
    in.req.amount = 100;
    ac_risk_decide(&in, &d);
    assert_int_equal(d.verdict, AC_VERDICT_STEP_UP);
    assert_int_equal(d.autonomy, AC_L3);
    /* a NULL category or user never matches */
    in.binding.max_autonomy = AC_L5;
    in.req.category = NULL;
    in.binding.user_id = NULL;
    ac_risk_decide(&in, &d);
    assert_int_equal(d.verdict, AC_VERDICT_DENY);
    assert_true(ac_risk_fired(&d, AC_RR_PAYEE_NOT_ALLOWED));
    assert_true(ac_risk_fired(&d, AC_RR_USER_MISMATCH));
}

/* the headroom view used by GET /v1/mandates/{id} */
static void test_headroom(void **state)
{
    (void)state;
    struct ac_mandate m = mandate_with("{\"caps\":{\"day\":\"10.00\",\"total\":\"15.00\"},"
                                       "\"max_uses\":3}");
    struct ac_spend s;
    struct ac_spend_headroom h;
    ac_spend_init(&s);
    assert_int_equal(ac_spend_charge(&s, m.tz_offset_s, WED, 600), 0);
    assert_int_equal(ac_spend_hold(&s, m.tz_offset_s, WED, 300, NULL), 0);
    ac_spend_headroom(&m, &s, WED, &h);
    assert_int_equal(h.day, 100);
    assert_int_equal(h.total, 600);
    assert_int_equal(h.week, AC_MANDATE_UNSET);
    assert_int_equal(h.month, AC_MANDATE_UNSET);
    assert_int_equal(h.uses, 1);
    /* the next local day: the day bucket is fresh in the view, the stored state untouched */
    struct ac_spend copy = s;
    ac_spend_headroom(&m, &s, WED + DAY_US, &h);
    assert_memory_equal(&s, &copy, sizeof s);
    assert_int_equal(h.day, 1000);
    assert_int_equal(h.view.day.spent, 0);
    assert_int_equal(h.total, 600);
    /* spent beyond a cap (e.g. a cap lowered by a new mandate version) reads as 0, not negative */
    assert_int_equal(ac_spend_charge(&s, m.tz_offset_s, WED, 2000), 0);
    ac_spend_headroom(&m, &s, WED, &h);
    assert_int_equal(h.day, 0);
    assert_int_equal(h.total, 0);
    assert_int_equal(h.uses, 0);
}

/* ================================================================================================
 * the reason registry
 * ============================================================================================== */

static void test_reasons_registry(void **state)
{
    (void)state;
    size_t doclen = 0;
    char *doc = ac_test_read_file(ac_test_src("docs/mandates.md"), &doclen);
    assert_non_null(doc);
    for (unsigned i = 0; i < AC_RR__COUNT; i++) {
        const char *code = ac_reason_code((enum ac_reason)i);
        assert_true(strlen(code) > 0);
        assert_int_equal(ac_reason_from_code(code), i);
        assert_true(ac_reason_kind((enum ac_reason)i) == AC_RK_DENY ||
                    ac_reason_kind((enum ac_reason)i) == AC_RK_STEP_UP);
        assert_true(strlen(ac_reason_text((enum ac_reason)i)) > 0);
        char quoted[80];
        snprintf(quoted, sizeof quoted, "`%s`", code);
        if (strstr(doc, quoted) == NULL) fail_msg("docs/mandates.md does not list %s", code);
    }
    free(doc);
    assert_int_equal(ac_reason_from_code("nope"), AC_RR__COUNT);
    assert_int_equal(ac_reason_from_code(NULL), AC_RR__COUNT);
    assert_string_equal(ac_reason_code(AC_RR__COUNT), "");
    assert_string_equal(ac_verdict_name(AC_VERDICT_STEP_UP), "step_up");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_start),   cmocka_unit_test(test_spend_charge_and_roll),
        cmocka_unit_test(test_spend_holds),    cmocka_unit_test(test_spend_failures_change_nothing),
        cmocka_unit_test(test_decision_table), cmocka_unit_test(test_decision_details),
        cmocka_unit_test(test_headroom),       cmocka_unit_test(test_reasons_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
