/* risk/decide.c -- the risk decision; see decide.h. */
#include "risk/decide.h"

#include <assert.h>
#include <string.h>

#include "protocol/amount.h"

_Static_assert(AC_RR__COUNT <= 64, "reason bit set is a uint64_t");

const char *ac_verdict_name(enum ac_verdict v)
{
    switch (v) {
    case AC_VERDICT_ALLOW:
        return "allow";
    case AC_VERDICT_STEP_UP:
        return "step_up";
    case AC_VERDICT_DENY:
        return "deny";
    }
    return "";
}

int ac_risk_fired(const struct ac_risk_decision *d, enum ac_reason r)
{
    return (unsigned)r < AC_RR__COUNT && (d->fired >> r & 1u);
}

static int str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* spent + held + amount > cap (or overflow: *overflow = 1) */
static int over_cap(int64_t cap, int64_t spent, int64_t held, int64_t amount, int *overflow)
{
    int64_t used;
    if (ac_add_i64(spent, held, &used) != 0 || ac_add_i64(used, amount, &used) != 0) {
        *overflow = 1;
        return 0;
    }
    return cap != AC_MANDATE_UNSET && used > cap;
}

void ac_risk_decide(const struct ac_risk_input *in, struct ac_risk_decision *out)
{
    assert(in && in->mandate && in->spend && out);
    const struct ac_mandate *m = in->mandate;
    const struct ac_risk_request *rq = &in->req;
    const struct ac_risk_binding *b = &in->binding;
    uint64_t f = 0;
#define FIRE(sym) (f |= UINT64_C(1) << AC_RR_##sym)

    memset(out, 0, sizeof *out);
    int64_t now_s = ac_us_to_s(in->now_us);

    /* validity */
    if (now_s < m->nbf) FIRE(MANDATE_NOT_YET_VALID);
    if (now_s >= m->exp) FIRE(MANDATE_EXPIRED);
    if (in->mandate_revoked) FIRE(MANDATE_REVOKED);
    if (b->nbf_s != 0 && now_s < b->nbf_s) FIRE(BINDING_NOT_YET_VALID);
    if (b->exp_s != 0 && now_s >= b->exp_s) FIRE(BINDING_EXPIRED);
    if (b->revoked) FIRE(BINDING_REVOKED);

    /* scope */
    if (!str_eq(b->user_id, m->iss)) FIRE(USER_MISMATCH);
    if (!ac_mandate_covers_agent(m, b->binding_id, b->agent_id)) FIRE(AGENT_NOT_IN_MANDATE);
    if (ac_op_name(rq->op) == NULL || (m->ops & (uint32_t)rq->op) == 0) FIRE(OP_NOT_ALLOWED);
    int scope = ac_mandate_payee_scope(m, rq->payee, rq->category);
    if (scope == 0) FIRE(PAYEE_NOT_ALLOWED);
    int same_asset = str_eq(rq->asset, m->asset);
    if (!same_asset) FIRE(ASSET_MISMATCH);

    /* amounts */
    int amounts = same_asset && rq->amount > 0;
    if (rq->amount <= 0) FIRE(AMOUNT_NOT_POSITIVE);
    if (amounts) {
        if (m->min_per_tx != AC_MANDATE_UNSET && rq->amount < m->min_per_tx) FIRE(AMOUNT_BELOW_MIN);
        if (rq->amount > m->max_per_tx) FIRE(AMOUNT_ABOVE_MAX_PER_TX);
    }
    if (amounts && in->hold == NULL) {
        struct ac_spend s = *in->spend;
        ac_spend_roll(&s, m->tz_offset_s, in->now_us);
        int ovf = 0;
        if (over_cap(m->cap_day, s.day.spent, s.day.held, rq->amount, &ovf)) FIRE(CAP_DAY_EXCEEDED);
        if (over_cap(m->cap_week, s.week.spent, s.week.held, rq->amount, &ovf))
            FIRE(CAP_WEEK_EXCEEDED);
        if (over_cap(m->cap_month, s.month.spent, s.month.held, rq->amount, &ovf))
            FIRE(CAP_MONTH_EXCEEDED);
        if (over_cap(m->cap_total, s.spent, s.held, rq->amount, &ovf)) FIRE(CAP_TOTAL_EXCEEDED);
        if (ovf) FIRE(SPEND_OVERFLOW);
    }
    if (in->hold == NULL && m->max_uses != AC_MANDATE_UNSET && in->spend->uses >= m->max_uses)
        FIRE(MAX_USES_REACHED);

    /* autonomy: the lower of what the binding allows and what the mandate grants */
    enum ac_autonomy level = b->max_autonomy < m->autonomy ? b->max_autonomy : m->autonomy;
    if ((unsigned)level > AC_L5) level = AC_L0; /* an out-of-range binding value grants nothing */
    out->autonomy = level;
    if (level == AC_L0) FIRE(AUTONOMY_SUGGEST_ONLY);
    if (level == AC_L1) FIRE(AUTONOMY_REQUIRES_CONFIRMATION);
    if (level == AC_L2 && rq->op == AC_OP_PURCHASE) FIRE(AUTONOMY_OP_NEEDS_CONFIRMATION);
    if ((level == AC_L2 || level == AC_L3) && scope == 1) FIRE(AUTONOMY_PAYEE_NOT_NAMED);
    if (level >= AC_L1 && level <= AC_L4 && amounts && m->step_up_above != AC_MANDATE_UNSET &&
        rq->amount > m->step_up_above)
        FIRE(ABOVE_STEP_UP_THRESHOLD);
#undef FIRE

    /* verdict: DENY dominates STEP_UP; a confirmation satisfies STEP_UP */
    out->fired = f;
    int deny = 0, step = 0;
    for (unsigned r = 0; r < AC_RR__COUNT; r++) {
        if (!(f >> r & 1u)) continue;
        if (ac_reason_kind((enum ac_reason)r) == AC_RK_DENY)
            deny = 1;
        else
            step = 1;
    }
    enum ac_reason_kind want = deny ? AC_RK_DENY : AC_RK_STEP_UP;
    if (deny) {
        out->verdict = AC_VERDICT_DENY;
    } else if (step) {
        out->verdict = in->confirmed ? AC_VERDICT_ALLOW : AC_VERDICT_STEP_UP;
        out->confirmation_used = in->confirmed ? 1 : 0;
    } else {
        out->verdict = AC_VERDICT_ALLOW;
        return;
    }
    for (unsigned r = 0; r < AC_RR__COUNT; r++)
        if ((f >> r & 1u) && ac_reason_kind((enum ac_reason)r) == want)
            out->reasons[out->n++] = (enum ac_reason)r;
}
