#include "protocol/hist.h"

#include <assert.h>

void ac_hist_init(struct ac_hist *h, const double *bounds, size_t nbounds)
{
    assert(nbounds <= AC_HIST_MAX_BUCKETS);
    h->bounds = bounds;
    h->nbounds = nbounds;
    for (size_t i = 0; i <= AC_HIST_MAX_BUCKETS; i++) atomic_init(&h->counts[i], 0);
    atomic_init(&h->count, 0);
    atomic_init(&h->sum_micro, 0);
}

void ac_hist_observe(struct ac_hist *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_micro, (uint64_t)(v * 1e6), memory_order_relaxed);
}

double ac_hist_quantile(const struct ac_hist *h, double q)
{
    uint64_t total = atomic_load(&h->count);
    if (total == 0) return 0;
    uint64_t want = (uint64_t)(q * (double)total), acc = 0;
    if (want == 0) want = 1;
    for (size_t i = 0; i <= h->nbounds; i++) {
        acc += atomic_load(&h->counts[i]);
        if (acc >= want) return i < h->nbounds ? h->bounds[i] : h->bounds[h->nbounds - 1] * 2;
    }
    return h->bounds[h->nbounds - 1] * 2;
}
