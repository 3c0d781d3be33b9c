/* ledger/payments_int.h -- what ledger/payments.c lends the other decision modules on the
 * sequencer (ledger/tabs.c): the live mandates with their cumulative spend, and the risk input of
 * a request, so that a tab is decided exactly like a payment. Sequencer thread only. */
#ifndef AC_PAYMENTS_INT_H
#define AC_PAYMENTS_INT_H

#include "keys/registry.h"
#include "ledger/payments.h"

/* A live mandate of the payments state (opaque). */
struct ac_pay_mandate;

/* The mandate `id` as the sequencer sees it (registered, maybe not yet committed), or NULL. */
struct ac_pay_mandate *ac_payments_mandate(struct ac_payments *p, const char *id);
/* Its parsed document. */
const struct ac_mandate *ac_pay_mandate_doc(const struct ac_pay_mandate *m);
/* Its spend, to change in place; the caller then calls ac_pay_mandate_touch() so that the batch
 * writes the spend row. */
struct ac_spend *ac_pay_mandate_spend(struct ac_pay_mandate *m);
void ac_pay_mandate_touch(struct ac_payments *p, struct ac_pay_mandate *m);
/* The evidence docref of its document (hash, id, signing kid; borrowed from m). */
void ac_pay_mandate_docref(const struct ac_pay_mandate *m, struct ac_ev_docref *out);

/* The risk input of request q under binding b (id `binding`) and mandate m at now (in->hold and
 * in->confirmed left 0); borrows from q, b and m. */
void ac_payments_risk_input(struct ac_risk_input *in, const struct ac_pay_request *q,
                            const char *binding, const struct ac_binding_state *b,
                            const struct ac_pay_mandate *m, int64_t now);

#endif
