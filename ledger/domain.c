/* The sequencer's domain object (see domain.h). */
#include "ledger/domain.h"

#include <stdint.h>
#include <stdio.h>

#include "ledger/db_identity.h"
#include "ledger/evlog.h"
#include "ledger/idempotency.h"
#include "ledger/payments.h"
#include "ledger/tabs.h"
#include "ledger/prices.h"

int ac_domain_register_statements(void)
{
    if (ac_db_identity_register() != 0 || ac_evlog_register_statements() != 0) return -1;
    if (ac_prices_register_statements() != 0 || ac_payments_register_statements() != 0) return -1;
    return ac_tabs_register_statements();
}

static int domain_load(void *cls, PGconn *c)
{
    struct ac_domain *d = cls;
    enum ac_qs qs = ac_db_identity_load(c, d->registry);
    if (qs != AC_QS_ONE_RESULT) return -1;
    struct ac_registry_counts n;
    ac_registry_counts(d->registry, &n);
    fprintf(stderr,
            "identity: %zu users, %zu merchants, %zu keys, %zu bindings (%zu revoked) loaded\n",
            n.users, n.merchants, n.keys, n.bindings, n.revoked);
    if (d->evlog && ac_evlog_load(d->evlog, c) != 0) return -1;
    if (d->idem) ac_idem_sweeper_loaded(d->idem);
    if (d->prices && ac_prices_load(d->prices, c) != 0) return -1;
    if (d->payments) {
        if (ac_payments_load(d->payments, c) != 0) return -1;
        struct ac_payments_counts pc;
        ac_payments_counts(d->payments, &pc);
        fprintf(stderr, "payments: %zu mandates, %zu payments, %zu authorizations (%zu pending)\n",
                pc.mandates, pc.payments, pc.authorizations, pc.pending);
    }
    if (d->tabs) {
        if (ac_tabs_load(d->tabs, c) != 0) return -1;
        struct ac_tabs_counts tc;
        ac_tabs_counts(d->tabs, &tc);
        fprintf(stderr, "tabs: %zu tabs (%zu open)\n", tc.tabs, tc.open);
    }
    return 0;
}

static int domain_flush(void *cls, struct ac_apply *a)
{
    struct ac_domain *d = cls;
    if (d->payments && ac_payments_flush(d->payments, a) != 0) return -1;
    if (d->evlog && ac_evlog_flush(d->evlog, a) != 0) return -1;
    return 0;
}

static void domain_end(void *cls, int committed)
{
    struct ac_domain *d = cls;
    if (committed) ac_registry_commit(d->registry);
    if (d->payments) ac_payments_end(d->payments, committed);
    if (d->tabs) ac_tabs_end(d->tabs, committed);
    if (d->evlog) ac_evlog_end(d->evlog, committed);
}

static int domain_publishes(void *cls)
{
    struct ac_domain *d = cls;
    return (d->registry && ac_registry_pending(d->registry)) ||
           (d->payments && ac_payments_pending(d->payments));
}

static int64_t domain_next_deadline(void *cls)
{
    struct ac_domain *d = cls;
    int64_t t = INT64_MAX;
    if (d->payments) t = ac_payments_next_deadline(d->payments);
    if (d->tabs) {
        int64_t x = ac_tabs_next_deadline(d->tabs);
        if (x < t) t = x;
    }
    if (d->evlog) {
        int64_t e = ac_evlog_next_deadline(d->evlog);
        if (e < t) t = e;
    }
    if (d->idem && ac_idem_sweeper_deadline(d->idem) < t) t = ac_idem_sweeper_deadline(d->idem);
    return t;
}

/* The evidence log's tick first: it starts the log's batch, so the records of the step-up
 * expiries that follow join it. */
static int domain_tick(void *cls, struct ac_apply *a)
{
    struct ac_domain *d = cls;
    if (d->evlog && ac_evlog_tick(d->evlog, a) != 0) return -1;
    if (d->payments && ac_payments_tick(d->payments, a) != 0) return -1;
    if (d->idem && ac_idem_sweeper_tick(d->idem, a) != 0) return -1;
    if (d->tabs && ac_tabs_tick(d->tabs, a) != 0) return -1;
    return 0;
}

/* The operator's ledger commands: their evidence (ledger.account, ledger.transfer). */
static int domain_ledger(void *cls, struct ac_apply *a, const struct ac_cmd *c,
                         const struct ac_transfer_row *rows, size_t nrows)
{
    struct ac_domain *d = cls;
    if (d->evlog == NULL) return 0;
    if (c->kind == AC_CMD_ACCOUNTS) return ac_evlog_ledger_accounts(d->evlog, a, c);
    return ac_evlog_ledger_transfers(d->evlog, a, c, rows, nrows);
}

struct ac_seq_domain ac_domain_seq(struct ac_domain *d)
{
    struct ac_seq_domain s = {.cls = d,
                              .load = domain_load,
                              .flush = domain_flush,
                              .end = domain_end,
                              .publishes = domain_publishes,
                              .next_deadline = domain_next_deadline,
                              .tick = domain_tick,
                              .ledger = domain_ledger};
    return s;
}
