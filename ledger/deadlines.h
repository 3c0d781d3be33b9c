/* ledger/deadlines.h -- the sequencer's lists of items that end at a deadline (pending step-up
 * authorizations in payments.c, open tabs in tabs.c), with the earliest deadline at hand for
 * the sequencer's wake-up and a sweep that ends what has expired.
 *
 * Intrusive and allocation-free: an item embeds a struct ac_deadline and the list only links
 * it, so adding and removing cannot fail. add and remove are O(1); ac_deadlines_next is O(1)
 * except after the removal of the item holding the earliest deadline, when the next call scans
 * the list once; a sweep is O(n).
 *
 * Invariants:
 * - the list keeps insertion order, and a sweep visits the expired items in that order (the
 *   order of the evidence records a sweep writes depends on it);
 * - an item's deadline is fixed while it is listed (remove it and add it again to change it);
 * - an item is on at most one list at a time, and is removed from it before it is freed.
 *
 * Threads: none of its own; the lists are the sequencer thread's. */
#ifndef AC_DEADLINES_H
#define AC_DEADLINES_H

#include <stddef.h>
#include <stdint.h>

/* The link an item embeds. Read at_us and item; the rest belongs to the list. */
struct ac_deadline {
    int64_t at_us; /* the deadline, unix microseconds */
    void *item;    /* the item that embeds this link */
    struct ac_deadline *prev, *next;
};

struct ac_deadlines {
    struct ac_deadline head; /* sentinel */
    size_t n;
    int64_t min_us; /* the earliest deadline, when min_valid */
    int min_valid;
};

/* An empty list. */
void ac_deadlines_init(struct ac_deadlines *l);

/* Append item, through its link d, with deadline at_us. d must not be on a list. */
void ac_deadlines_add(struct ac_deadlines *l, struct ac_deadline *d, void *item, int64_t at_us);

/* Take d off l (d must be on l); d then links to itself. The earliest deadline is forgotten
 * only when d held it. */
void ac_deadlines_remove(struct ac_deadlines *l, struct ac_deadline *d);

/* How many items are listed. */
size_t ac_deadlines_count(const struct ac_deadlines *l);

/* The earliest deadline of a listed item (unix µs), INT64_MAX when the list is empty. */
int64_t ac_deadlines_next(struct ac_deadlines *l);

/* Call fn(item, cls) for each listed item whose deadline is at or before now_us, in list order.
 * fn may remove the item it is given (and usually does) but no other. Returns 0 when every call
 * returned 0 (or none was due), else the first non-zero value fn returned, at once: the items
 * after it are left for the next sweep. */
int ac_deadlines_sweep(struct ac_deadlines *l, int64_t now_us, int (*fn)(void *item, void *cls),
                       void *cls);

/* Move src's items, in order, to dst (which must be empty or abandoned: its items are
 * forgotten, not unlinked); src is left empty. */
void ac_deadlines_move(struct ac_deadlines *dst, struct ac_deadlines *src);

#endif
