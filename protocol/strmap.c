/* A string-keyed hash map of pointers (see strmap.h). */
#include "protocol/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, with a final mix for the low bits */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

void *ac_strmap_get(const struct ac_strmap *m, const char *k)
{
    if (m->cap == 0 || k == NULL) return NULL;
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        void *v = m->slots[i];
        if (v == NULL) return NULL;
        if (strcmp(m->key(v), k) == 0) return v;
    }
}

void ac_strmap_put(struct ac_strmap *m, void *v)
{
    const char *k = m->key(v);
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i] == NULL) {
            m->slots[i] = v;
            m->n++;
            return;
        }
        if (strcmp(m->key(m->slots[i]), k) == 0) {
            m->slots[i] = v;
            return;
        }
    }
}

int ac_strmap_reserve(struct ac_strmap *m, size_t extra)
{
    size_t need = m->n + extra;
    if (need * 2 <= m->cap) return 0;
    size_t cap = m->cap ? m->cap : 16;
    while (need * 2 > cap)
        cap *= 2;
    struct ac_strmap g = {calloc(cap, sizeof(void *)), cap, 0, m->key};
    if (g.slots == NULL) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i]) ac_strmap_put(&g, m->slots[i]);
    free(m->slots);
    *m = g;
    return 0;
}

void ac_strmap_free(struct ac_strmap *m, void (*free_fn)(void *))
{
    for (size_t i = 0; i < m->cap && free_fn; i++)
        if (m->slots[i]) free_fn(m->slots[i]);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
