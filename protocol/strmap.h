/* protocol/strmap.h -- a string-keyed hash map of pointers (open addressing, linear probing, load
 * factor at most 1/2). The key of an entry is read from the entry itself through `key`, so the
 * map stores only pointers. Entries are never removed one by one: the identity registry and the
 * payment state only ever add, and drop everything at once. Not thread-safe: callers lock. */
#ifndef AC_STRMAP_H
#define AC_STRMAP_H

#include <stddef.h>

struct ac_strmap {
    void **slots;
    size_t cap; /* 0 or a power of two */
    size_t n;
    const char *(*key)(const void *entry);
};

/* The entry with key k, or NULL (also for k NULL). */
void *ac_strmap_get(const struct ac_strmap *m, const char *k);
/* Insert v, or replace the entry with the same key. There must be room (ac_strmap_reserve). */
void ac_strmap_put(struct ac_strmap *m, void *v);
/* Make room for `extra` more entries. Returns 0, or -1 (map unchanged) when out of memory. */
int ac_strmap_reserve(struct ac_strmap *m, size_t extra);
/* Free the slots, calling free_fn (when not NULL) on every entry; the map is empty afterwards. */
void ac_strmap_free(struct ac_strmap *m, void (*free_fn)(void *));

#endif
