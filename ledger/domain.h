/* ledger/domain.h -- the state beyond the ledger that the sequencer owns, as ONE domain object
 * (struct ac_seq_domain) shared by every module that has such state: the identity registry, the
 * evidence log, mandates and payments. Each part is a pointer here, loaded by the domain's load
 * hook in a fixed order (registry, evidence log, payments) and told about each batch's outcome by
 * its end hook. */
#ifndef AC_DOMAIN_H
#define AC_DOMAIN_H

#include "keys/registry.h"
#include "ledger/evlog.h"
#include "ledger/sequencer.h"

struct ac_payments;
struct ac_idem_sweeper;
struct ac_tabs;
struct ac_prices;

struct ac_domain {
    struct ac_registry *registry; /* identity (keys/registry.h); required */
    struct ac_evlog *evlog;       /* evidence (ledger/evlog.h); NULL: no records (tests only) */
    struct ac_payments *payments; /* mandates, payments, step-up (ledger/payments.h); optional */
    struct ac_idem_sweeper *idem; /* Idempotency-Key expiry (ledger/idempotency.h); optional */
    struct ac_tabs *tabs;         /* micropayment tabs (ledger/tabs.h); optional, needs payments */
    struct ac_prices *prices;     /* merchants' price versions (ledger/prices.h); optional (NULL:
                                     top-ups are refused with AC_EC_INTERNAL) */
};

/* Register the prepared statements of every part (before the sequencer starts). Returns 0/-1. */
int ac_domain_register_statements(void);

/* The sequencer hooks over d (which must outlive the sequencer):
 * load -- rebuild every part from the database; flush -- the parts' aggregated rows;
 * end -- on commit, make the batch's changes visible to readers (ac_registry_commit, ...); on
 * failure nothing (the sequencer reloads); next_deadline/tick -- step-up expiry, checkpoints, the idempotency sweep. */
struct ac_seq_domain ac_domain_seq(struct ac_domain *d);

#endif
