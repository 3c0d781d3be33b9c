/* risk/decide.h -- the risk decision: from a verified payment request, the agent's binding, the
 * mandate, its spend state and the clock to ALLOW / STEP_UP / DENY with every decisive reason.
 *
 * Pure: no I/O, no clock read, no allocation; the same input always gives the same decision, so
 * an auditor can replay it. The HTTP worker runs it to answer early; the sequencer runs it again
 * at apply time against the live spend state (that run is the one that counts).
 *
 * Rules (docs/mandates.md has the table). Every rule is evaluated; each one that fires adds its
 * reason (risk/reasons.def) to `fired`:
 *   validity   mandate nbf <= now < exp and not revoked; binding likewise (0 = unbounded)
 *   scope      binding user == mandate iss; binding id or agent id named by the mandate; op in
 *              ops; payee merchant listed or its category listed; asset == mandate asset
 *   amounts    amount > 0; >= min_per_tx; <= max_per_tx; for each cap, bucket spent + held +
 *              amount <= cap (exactly at the cap is allowed); uses < max_uses. Amount rules are
 *              skipped when the asset differs (other units) or the amount is not positive.
 *              Cap and use rules are skipped when `hold` is given: the hold already reserved
 *              its place when it was taken, and still occupies it.
 *   autonomy   effective level = min(binding max, mandate grant):
 *                L0 deny (suggest only)        L1 step up every payment
 *                L2 step up purchases and payees admitted only by category
 *                L3 step up payees admitted only by category
 *                L1-L4 step up amounts above step_up_above;  L5 never steps up
 * Verdict: DENY when any DENY reason fired (reasons = the DENY reasons: they dominate);
 * otherwise, when a STEP_UP reason fired, STEP_UP (reasons = those) unless a user confirmation
 * is present, then ALLOW with confirmation_used = 1 (reasons = the step-ups it satisfied);
 * otherwise ALLOW with no reasons. */
#ifndef AC_RISK_DECIDE_H
#define AC_RISK_DECIDE_H

#include <stdint.h>

#include "protocol/mandate.h"
#include "risk/reasons.h"
#include "risk/spend.h"

enum ac_verdict {
    AC_VERDICT_ALLOW = 1,
    AC_VERDICT_STEP_UP = 2,
    AC_VERDICT_DENY = 3,
};

/* "allow" / "step_up" / "deny"; "" for another value. */
const char *ac_verdict_name(enum ac_verdict v);

/* The verified facts of the payment request. Strings are borrowed. */
struct ac_risk_request {
    enum ac_op op;
    const char *payee;    /* merchant id */
    const char *category; /* the payee's registered category (not the agent's claim), or NULL */
    const char *asset;
    int64_t amount; /* base units of asset */
};

/* The facts of the binding the request was verified under. Strings are borrowed. */
struct ac_risk_binding {
    const char *binding_id;
    const char *user_id;
    const char *agent_id;
    enum ac_autonomy max_autonomy;
    int64_t nbf_s; /* unix seconds, 0 = no lower bound */
    int64_t exp_s; /* unix seconds, 0 = no expiry */
    int revoked;
};

struct ac_risk_input {
    struct ac_risk_request req;
    struct ac_risk_binding binding;
    const struct ac_mandate *mandate;
    int mandate_revoked;
    const struct ac_spend *spend; /* the mandate's state as stored; rolled to now on a copy */
    /* NULL for a new payment. When deciding a step-up's confirmation: the hold taken for this
     * very payment (its amount and at_us), which already counts in `spend`. */
    const struct ac_spend_hold *hold;
    int confirmed;  /* 1 when a verified user confirmation of this payment is present */
    int64_t now_us; /* the clock, unix microseconds */
};

struct ac_risk_decision {
    enum ac_verdict verdict;
    enum ac_autonomy autonomy; /* the effective level */
    int confirmation_used;     /* 1 when ALLOW rests on the user's confirmation */
    unsigned n;                /* decisive reasons, in registry order */
    enum ac_reason reasons[AC_RR__COUNT];
    uint64_t fired; /* bit (1 << reason) of every reason that fired, decisive or not */
};

/* Decide. in and its pointers (mandate, spend) must be non-NULL; nothing is changed but *out. */
void ac_risk_decide(const struct ac_risk_input *in, struct ac_risk_decision *out);

/* 1 when reason r fired in d. */
int ac_risk_fired(const struct ac_risk_decision *d, enum ac_reason r);

#endif
