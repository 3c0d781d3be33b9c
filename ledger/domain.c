/* The sequencer's domain object (see domain.h). */
#include "ledger/domain.h"

#include <stdio.h>

#include "ledger/db_identity.h"

int ac_domain_register_statements(void)
{
    return ac_db_identity_register();
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
    return 0;
}

static void domain_end(void *cls, int committed)
{
    struct ac_domain *d = cls;
    if (committed) ac_registry_commit(d->registry);
}

struct ac_seq_domain ac_domain_seq(struct ac_domain *d)
{
    struct ac_seq_domain s = {.cls = d, .load = domain_load, .flush = NULL, .end = domain_end};
    return s;
}
