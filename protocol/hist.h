/* protocol/hist.h -- a fixed-bucket histogram with atomic counters (Prometheus-style
 * cumulative buckets are computed when printed). Safe to observe from any thread. */
#ifndef AC_HIST_H
#define AC_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define AC_HIST_MAX_BUCKETS 24

struct ac_hist {
    const double *bounds; /* ascending upper bounds; +Inf is implicit */
    size_t nbounds;
    _Atomic uint64_t counts[AC_HIST_MAX_BUCKETS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_micro; /* sum of observations x 1e6, for _sum */
};

/* Initialise with nbounds <= AC_HIST_MAX_BUCKETS bounds (the array must outlive the hist). */
void ac_hist_init(struct ac_hist *h, const double *bounds, size_t nbounds);
void ac_hist_observe(struct ac_hist *h, double v);
/* The value below which a fraction q (0..1) of observations fall, estimated as the upper bound
 * of the bucket that holds it; 0 when empty. For benchmarks and logs. */
double ac_hist_quantile(const struct ac_hist *h, double q);

#endif
