/* Lists of items ending at a deadline (see deadlines.h). */
#include "ledger/deadlines.h"

#include <assert.h>

void ac_deadlines_init(struct ac_deadlines *l)
{
    l->head.at_us = INT64_MAX;
    l->head.item = NULL;
    l->head.next = l->head.prev = &l->head;
    l->n = 0;
    l->min_us = INT64_MAX;
    l->min_valid = 1;
}

void ac_deadlines_add(struct ac_deadlines *l, struct ac_deadline *d, void *item, int64_t at_us)
{
    d->at_us = at_us;
    d->item = item;
    d->next = &l->head;
    d->prev = l->head.prev;
    l->head.prev->next = d;
    l->head.prev = d;
    l->n++;
    if (l->min_valid && at_us < l->min_us) l->min_us = at_us;
}

void ac_deadlines_remove(struct ac_deadlines *l, struct ac_deadline *d)
{
    assert(l->n > 0 && d != &l->head && d->next != d);
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->next = d->prev = d;
    l->n--;
    /* another item may share the earliest deadline: rescan lazily rather than count them */
    if (l->min_valid && d->at_us <= l->min_us) l->min_valid = 0;
}

size_t ac_deadlines_count(const struct ac_deadlines *l)
{
    return l->n;
}

int64_t ac_deadlines_next(struct ac_deadlines *l)
{
    if (!l->min_valid) {
        int64_t x = INT64_MAX;
        for (const struct ac_deadline *d = l->head.next; d != &l->head; d = d->next)
            if (d->at_us < x) x = d->at_us;
        l->min_us = x;
        l->min_valid = 1;
    }
    return l->min_us;
}

int ac_deadlines_sweep(struct ac_deadlines *l, int64_t now_us, int (*fn)(void *item, void *cls),
                       void *cls)
{
    if (ac_deadlines_next(l) > now_us) return 0;
    struct ac_deadline *next;
    for (struct ac_deadline *d = l->head.next; d != &l->head; d = next) {
        next = d->next; /* fn may remove d */
        if (d->at_us > now_us) continue;
        int rc = fn(d->item, cls);
        if (rc != 0) return rc;
    }
    return 0;
}

void ac_deadlines_move(struct ac_deadlines *dst, struct ac_deadlines *src)
{
    ac_deadlines_init(dst);
    if (src->n) {
        dst->head.next = src->head.next;
        dst->head.prev = src->head.prev;
        dst->head.next->prev = &dst->head;
        dst->head.prev->next = &dst->head;
        dst->n = src->n;
        dst->min_valid = 0;
    }
    ac_deadlines_init(src);
}
