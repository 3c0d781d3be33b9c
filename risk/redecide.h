/* risk/redecide.h -- the auditor's recomputation of every payment decision of an evidence log
 * with the risk engine (risk/decide.h), record by record in log order, from what the records and
 * the export's documents hold:
 *   - mandates from their mandate.register documents (the JWS payload, parsed at the asset scale
 *     of the first payment record in the mandate's asset), revoked by mandate.revoke records;
 *   - bindings from their documents (protocol/evcheck.h parses them), revoked by binding.revoke;
 *   - each mandate's spend state (risk/spend.h) rebuilt from the decisions: payment.settle
 *     charges, payment.step_up holds, payment.confirm settles the hold, payment.decline and
 *     payment.expire release it (refunds leave spend alone, as the server does);
 *   - the request facts (op, payee, amount) from the verbatim signed request body, which must
 *     agree with the record's payee and amount, and the payee's registered merchant category from
 *     the record's category member (absent: the payee has none), so mandates that admit payees
 *     by category recompute like any other (a tampered category changes the decision or fails
 *     the chain);
 *   - the clock = the record's time.
 * Then: payment.settle must recompute to allow, payment.step_up to step_up with the recorded
 * reasons, payment.deny to deny with the recorded reasons -- or, when the recorded reason is not
 * a risk reason (a ledger refusal such as insufficient_funds), to a verdict that let the payment
 * reach the ledger; payment.confirm to allow (decided again with the hold and the confirmation);
 * payment.decline with reasons to deny with those reasons (a decline without reasons is the
 * user's answer: no risk decision). Any difference fails, naming both decisions.
 *
 * The payee's registered category is the one the record carries (`category`, what the server
 * decided with), so category-scoped mandates are recomputed like the others.
 *
 * Not recomputable (counted, never passed silently): a mandate whose asset scale no record shows;
 * a payment.deny that holds no mandate, binding or request body (the format allows it).
 *
 * Tabs (ledger/tabs.h): tab.open recomputes to allow and tab.deny to another verdict with the
 * recorded reasons (or, for a ledger refusal, to allow), both as a micropay decision of the hold;
 * tab.open holds the spend, and the hold ends (settled part spent, rest released) at tab.close,
 * tab.expire, or the tab.settle that reaches the hold.
 *
 * Top-ups: price.publish records keep each merchant's signed price list (its version newer than
 * the last); a topup record (decision allow or step_up) is decided like a payment with op topup
 * to its provider (the request body of POST /v1/topups names the payee "provider"), must be priced
 * at the provider's current version (ref and the signed price_version), and its token leg must
 * move exactly floor(amount * tokens / fiat) at that version's price, its fiat leg the amount.
 *
 * Spend effects are applied as recorded, so later decisions still recompute. An answer (confirm,
 * decline, expire) to a step-up the log does not have fails, except a payment.expire that names
 * no mandate (nothing to recompute or release).
 *
 * Call ac_redecide_record after ac_evcheck_record accepted the record (documents verified). */
#ifndef AC_RISK_REDECIDE_H
#define AC_RISK_REDECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/evcheck.h"
#include "protocol/evidence.h"

struct ac_redecide;

struct ac_redecide *ac_redecide_new(void);
void ac_redecide_free(struct ac_redecide *rd);

/* Follow one record. Returns 0, or -1 with the failure in why (a decision that recomputes
 * differently, a record inconsistent with the log so far, out of memory). */
int ac_redecide_record(struct ac_redecide *rd, const struct ac_evcheck *ck,
                       const struct ac_ev_record *r, char *why, size_t whylen);

struct ac_redecide_stats {
    uint64_t recomputed;      /* decisions recomputed and equal to the recorded ones */
    uint64_t ledger_refusals; /* payment.deny by the ledger: risk recomputed to a non-deny */
    uint64_t user_declines;   /* payment.decline without reasons: the user's answer */
    uint64_t not_recomputable;
    uint64_t nr_scale;    /* of which: the mandate's asset scale is not in the evidence */
    uint64_t nr_missing;  /* of which: a payment.deny without mandate, binding or request body */
    uint64_t nr_kind;     /* of which: a decision of a kind not modelled (none today) */
    uint64_t tokens_recomputed; /* topup records whose token amount was recomputed and equal */
};
void ac_redecide_stats(const struct ac_redecide *rd, struct ac_redecide_stats *out);

#endif
