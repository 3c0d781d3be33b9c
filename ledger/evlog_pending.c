/* TEMPORARY (branch h/payments only): link-time stand-ins for ledger/evlog.h until h/evwire's
 * implementation is merged; removed by that merge. ac_evlog_new() returns NULL, so a domain
 * never has an evlog and none of the others is reached. */
#include <stdint.h>

#include "ledger/evlog.h"

struct ac_evlog *ac_evlog_new(const struct ac_evlog_config *cfg)
{
    (void)cfg;
    return NULL;
}

void ac_evlog_free(struct ac_evlog *ev)
{
    (void)ev;
}

int ac_evlog_load(struct ac_evlog *ev, PGconn *c)
{
    (void)ev;
    (void)c;
    return -1;
}

int ac_evlog_append(struct ac_evlog *ev, struct ac_apply *a, struct ac_ev_record *r,
                    uint64_t *seq, uint8_t leaf[AC_EV_HASH_LEN])
{
    (void)ev;
    (void)a;
    (void)r;
    (void)seq;
    (void)leaf;
    return -1;
}

int ac_evlog_flush(struct ac_evlog *ev, struct ac_apply *a)
{
    (void)ev;
    (void)a;
    return -1;
}

int64_t ac_evlog_next_deadline(const struct ac_evlog *ev)
{
    (void)ev;
    return INT64_MAX;
}

int ac_evlog_tick(struct ac_evlog *ev, struct ac_apply *a)
{
    (void)ev;
    (void)a;
    return -1;
}

void ac_evlog_end(struct ac_evlog *ev, int committed)
{
    (void)ev;
    (void)committed;
}
