/* risk/spend.h -- a mandate's cumulative spend: per-period buckets (the current day, week and
 * month in the mandate's fixed UTC offset), the total, the number of uses, and the amounts held by
 * pending step-ups.
 *
 * Pure: no I/O, no clock (now is always an argument), no allocation.
 *
 * Rules (docs/mandates.md, "Periods and spend"):
 *   - A day starts at local midnight (00:00 at the mandate's offset), a week on Monday 00:00, a
 *     month on the 1st at 00:00. Bucket starts are stored as UTC unix seconds.
 *   - Buckets only move forward: before any operation the state is rolled to `now`; a bucket
 *     whose period has ended starts afresh (spent = held = 0). A clock that goes backwards never
 *     reopens an earlier period (the later bucket keeps counting: conservative).
 *   - A payment counts in the periods current when it was first accepted, settled (charge) or
 *     held (hold). Held amounts count against every cap and against max_uses exactly like settled
 *     ones, until released (void, decline, expiry). Settling a hold moves its amount from held to
 *     spent in the buckets it was counted in that are still current; releasing a hold removes it
 *     from those buckets (a bucket that has rolled over since is left alone: that period is over),
 *     from the total, and gives the use back.
 *
 * Undo: struct ac_spend is plain data (int64 fields only, no pointers, no padding). To roll a
 * failed batch back, keep a copy taken before the first change and assign it back; every
 * operation below either succeeds completely or fails and changes nothing. */
#ifndef AC_RISK_SPEND_H
#define AC_RISK_SPEND_H

#include <stdint.h>

#include "protocol/mandate.h"

enum ac_period {
    AC_PERIOD_DAY = 0,
    AC_PERIOD_WEEK = 1, /* Monday 00:00 local */
    AC_PERIOD_MONTH = 2,
};

/* Start (UTC unix seconds) of the period that contains t_s, in local time at tz_offset_s seconds
 * east of UTC. Exact for every t_s whose local date lies in years -9999..9999. */
int64_t ac_period_start(enum ac_period p, int32_t tz_offset_s, int64_t t_s);

/* floor(us / 1000000): the unix second of a microsecond clock, also for negative values. */
int64_t ac_us_to_s(int64_t us);

struct ac_spend_bucket {
    int64_t start_s; /* UTC start of the period this bucket counts; 0 in a fresh state */
    int64_t spent;   /* settled in this period (base units) */
    int64_t held;    /* held by pending step-ups accepted in this period */
};

struct ac_spend {
    struct ac_spend_bucket day, week, month;
    int64_t spent; /* settled, all time */
    int64_t held;  /* held by outstanding step-ups */
    int64_t uses;  /* payments settled or held (released holds give theirs back) */
    int64_t holds; /* outstanding holds */
};

/* What the caller keeps for an outstanding hold (stored with the authorization): the amount and
 * the clock value at which the hold was taken. */
struct ac_spend_hold {
    int64_t amount;
    int64_t at_us;
};

/* A fresh state: everything 0. */
void ac_spend_init(struct ac_spend *s);

/* Roll the buckets forward to now_us (see the rules above). */
void ac_spend_roll(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us);

/* A settled payment of amount (> 0) at now_us: rolls, adds amount to the current buckets and the
 * total, counts one use. Returns 0, or -1 (amount <= 0 or a counter would overflow) changing
 * nothing. Caps are not checked here: ac_risk_decide judges them first. */
int ac_spend_charge(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us, int64_t amount);

/* A hold of amount (> 0) for a step-up at now_us: rolls, adds amount to held in the current
 * buckets and the total, counts one use and one hold, and fills *out (may be NULL) with the hold
 * to keep. Returns 0, or -1 changing nothing. */
int ac_spend_hold(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us, int64_t amount,
                  struct ac_spend_hold *out);

/* A confirmed step-up settles its hold at now_us: rolls, then moves h->amount from held to spent
 * in the total and in each bucket that still counts the period of h->at_us. The use stays.
 * Returns 0, or -1 changing nothing (amount <= 0, no outstanding hold, or less held than
 * h->amount: the caller's records disagree with the state). */
int ac_spend_settle(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us,
                    const struct ac_spend_hold *h);

/* A declined, expired or voided step-up releases its hold: rolls, then removes h->amount from held
 * in the total and in each bucket that still counts the period of h->at_us, and gives back the
 * use. Returns 0, or -1 changing nothing (as ac_spend_settle). */
int ac_spend_release(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us,
                     const struct ac_spend_hold *h);

/* A micropayment tab's hold ends (closed or expired) after `settled` (0..h->amount) of it was
 * drawn: rolls, then moves `settled` from held to spent and drops the rest, in the total and in
 * each bucket that still counts the period of h->at_us; the hold ends (holds - 1) and the use is
 * given back only when nothing was drawn. settled = h->amount is ac_spend_settle, settled = 0 is
 * ac_spend_release. Returns 0, or -1 changing nothing (as ac_spend_settle, or settled out of
 * range). */
int ac_spend_split(struct ac_spend *s, int32_t tz_offset_s, int64_t now_us,
                   const struct ac_spend_hold *h, int64_t settled);

/* Spend and headroom as of now_us, for GET /v1/mandates/{id}. */
struct ac_spend_headroom {
    struct ac_spend view; /* the state rolled to now_us */
    /* what may still be spent before each cap (cap - spent - held, never below 0), or
     * AC_MANDATE_UNSET when the mandate has no such cap */
    int64_t day, week, month, total;
    int64_t uses; /* max_uses - uses (>= 0), or AC_MANDATE_UNSET */
};

/* Fill *out for mandate m and state s at now_us. s is not changed. */
void ac_spend_headroom(const struct ac_mandate *m, const struct ac_spend *s, int64_t now_us,
                       struct ac_spend_headroom *out);

#endif
