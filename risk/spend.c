/* risk/spend.c -- cumulative spend of a mandate; see spend.h. */
#include "risk/spend.h"

#include <string.h>

#include "protocol/amount.h"

/* struct ac_spend must stay plain int64 data so that a copy is an exact undo */
_Static_assert(sizeof(struct ac_spend) == 13 * sizeof(int64_t), "struct ac_spend has padding");

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t ac_us_to_s(int64_t us)
{
    return floor_div(us, 1000000);
}

/* Day of the month (1..31) of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
static int64_t day_of_month(int64_t z)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    return doy - (153 * mp + 2) / 5 + 1;
}

int64_t ac_period_start(enum ac_period p, int32_t tz_offset_s, int64_t t_s)
{
    int64_t local = t_s + tz_offset_s;
    int64_t days = floor_div(local, 86400);
    switch (p) {
    case AC_PERIOD_DAY:
        break;
    case AC_PERIOD_WEEK:
        /* 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7 */
        days -= (days + 3) - floor_div(days + 3, 7) * 7;
        break;
    case AC_PERIOD_MONTH:
        days -= day_of_month(days) - 1;
        break;
    }
    return days * 86400 - tz_offset_s;
}

void ac_spend_init(struct ac_spend *s)
{
    memset(s, 0, sizeof *s);
}

static void roll_bucket(struct ac_spend_bucket *b, enum ac_period p, int32_t tz, int64_t now_s)
{
    int64_t start = ac_period_start(p, tz, now_s);
    if (start > b->start_s) {
        b->start_s = start;
        b->spent = 0;
        b->held = 0;
    }
}

void ac_spend_roll(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us)
{
    int64_t now_s = ac_us_to_s(now_us);
    roll_bucket(&s->day, AC_PERIOD_DAY, tz_offset_s, now_s);
    roll_bucket(&s->week, AC_PERIOD_WEEK, tz_offset_s, now_s);
    roll_bucket(&s->month, AC_PERIOD_MONTH, tz_offset_s, now_s);
}

static struct ac_spend_bucket *bucket(struct ac_spend *s, enum ac_period p)
{
    return p == AC_PERIOD_DAY ? &s->day : p == AC_PERIOD_WEEK ? &s->week : &s->month;
}

/* Add amount to spent (held = 0) or held (held = 1) of every current bucket and of the total, and
 * count a use (and a hold). Works on a copy so that a failure changes nothing. */
static int add(struct ac_spend *s, int32_t tz, int64_t now_us, int64_t amount, int held)
{
    if (amount <= 0) return -1;
    struct ac_spend t = *s;
    ac_spend_roll(&t, tz, now_us);
    for (int p = AC_PERIOD_DAY; p <= AC_PERIOD_MONTH; p++) {
        struct ac_spend_bucket *b = bucket(&t, (enum ac_period)p);
        int64_t *f = held ? &b->held : &b->spent;
        if (ac_add_i64(*f, amount, f) != 0) return -1;
    }
    if (ac_add_i64(held ? t.held : t.spent, amount, held ? &t.held : &t.spent) != 0 ||
        ac_add_i64(t.uses, 1, &t.uses) != 0 || (held && ac_add_i64(t.holds, 1, &t.holds) != 0))
        return -1;
    *s = t;
    return 0;
}

int ac_spend_charge(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us, int64_t amount)
{
    return add(s, tz_offset_s, now_us, amount, 0);
}

int ac_spend_hold(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us, int64_t amount,
                  struct ac_spend_hold *out)
{
    if (add(s, tz_offset_s, now_us, amount, 1) != 0) return -1;
    if (out) {
        out->amount = amount;
        out->at_us = now_us;
    }
    return 0;
}

/* End a hold: move its amount from held to spent (settle = 1) or drop it (settle = 0). */
static int end_hold(struct ac_spend *s, int32_t tz, int64_t now_us, const struct ac_spend_hold *h,
                    int settle)
{
    if (h == NULL || h->amount <= 0) return -1;
    struct ac_spend t = *s;
    ac_spend_roll(&t, tz, now_us);
    if (t.holds < 1 || t.held < h->amount || (!settle && t.uses < 1)) return -1;
    int64_t at_s = ac_us_to_s(h->at_us);
    for (int p = AC_PERIOD_DAY; p <= AC_PERIOD_MONTH; p++) {
        struct ac_spend_bucket *b = bucket(&t, (enum ac_period)p);
        if (b->start_s != ac_period_start((enum ac_period)p, tz, at_s)) continue;
        if (b->held < h->amount) return -1;
        b->held -= h->amount;
        if (settle && ac_add_i64(b->spent, h->amount, &b->spent) != 0) return -1;
    }
    t.held -= h->amount;
    t.holds -= 1;
    if (settle) {
        if (ac_add_i64(t.spent, h->amount, &t.spent) != 0) return -1;
    } else {
        t.uses -= 1;
    }
    *s = t;
    return 0;
}

int ac_spend_settle(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us,
                    const struct ac_spend_hold *h)
{
    return end_hold(s, tz_offset_s, now_us, h, 1);
}

int ac_spend_release(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us,
                     const struct ac_spend_hold *h)
{
    return end_hold(s, tz_offset_s, now_us, h, 0);
}

int ac_spend_split(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us,
                   const struct ac_spend_hold *h, int64_t settled)
{
    if (h == NULL || h->amount <= 0 || settled < 0 || settled > h->amount) return -1;
    struct ac_spend t = *s;
    ac_spend_roll(&t, tz_offset_s, now_us);
    if (t.holds < 1 || t.held < h->amount || (settled == 0 && t.uses < 1)) return -1;
    int64_t at_s = ac_us_to_s(h->at_us);
    for (int p = AC_PERIOD_DAY; p <= AC_PERIOD_MONTH; p++) {
        struct ac_spend_bucket *b = bucket(&t, (enum ac_period)p);
        if (b->start_s != ac_period_start((enum ac_period)p, tz_offset_s, at_s)) continue;
        if (b->held < h->amount) return -1;
        b->held -= h->amount;
        if (ac_add_i64(b->spent, settled, &b->spent) != 0) return -1;
    }
    t.held -= h->amount;
    t.holds -= 1;
    if (ac_add_i64(t.spent, settled, &t.spent) != 0) return -1;
    if (settled == 0) t.uses -= 1;
    *s = t;
    return 0;
}

/* cap - spent - held, at least 0; AC_MANDATE_UNSET without a cap */
static int64_t room(int64_t cap, int64_t spent, int64_t held)
{
    if (cap == AC_MANDATE_UNSET) return AC_MANDATE_UNSET;
    int64_t used;
    if (ac_add_i64(spent, held, &used) != 0 || used >= cap) return 0;
    return cap - used;
}

void ac_spend_headroom(const struct ac_mandate *m, const struct ac_spend *s, int64_t now_us,
                       struct ac_spend_headroom *out)
{
    out->view = *s;
    ac_spend_roll(&out->view, m->tz_offset_s, now_us);
    const struct ac_spend *v = &out->view;
    out->day = room(m->cap_day, v->day.spent, v->day.held);
    out->week = room(m->cap_week, v->week.spent, v->week.held);
    out->month = room(m->cap_month, v->month.spent, v->month.held);
    out->total = room(m->cap_total, v->spent, v->held);
    out->uses = m->max_uses == AC_MANDATE_UNSET ? AC_MANDATE_UNSET
                : v->uses >= m->max_uses        ? 0
                                                : m->max_uses - v->uses;
}
