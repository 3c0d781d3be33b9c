/* bench_nonce -- what the replay cache's periodic sweep costs the requests beside it.
 *
 * The cache is filled as a server's is at its minute's purge: `live` entries still in their window
 * and as many that expired since the last sweep (at 7,000 signed requests a second and the default
 * 61-second window, about 430,000 of each). One thread then reserves fresh nonces without pause,
 * timing each call, while the main thread runs the sweep (ac_nonce_purge without a database, as the
 * nonce writer does before it deletes rows). Every signed request reserves its nonce under the
 * cache's lock, so the longest reservation during the sweep is the longest a request waited for it.
 *
 *   bench_nonce [live] [capacity]   (defaults 430000 and 1048576, the server's --nonce-cache)
 * Prints "key value" lines: sweep_ms (the whole sweep: before 2026-11-23 it held the lock that
 * long), evicted, reserve_max_us and reserve_p99_us during the sweep, reserve_max_us_idle and
 * reserve_p99_us_idle over as many reservations without a sweep. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/nonce.h"
#include "tests/bench/benchutil.h"

#define NOW 1700000000
#define WINDOW 61
#define PROBES_MAX 4000000

struct prober {
    struct ac_nonce_cache *c;
    atomic_int stop;
    float *us;
    double *t0, *t1; /* each reservation's start and end */
    atomic_size_t n;
    long next; /* nonce counter, continues across runs */
    int full;  /* a reservation refused: the cache was sized too small for the run */
};

static void *probe(void *arg)
{
    struct prober *p = arg;
    char n[32];
    size_t i;
    while (!atomic_load(&p->stop) && (i = atomic_load(&p->n)) < PROBES_MAX) {
        snprintf(n, sizeof n, "p%ld", p->next++);
        int64_t exp;
        uint64_t epoch;
        p->t0[i] = ac_bench_now();
        enum ac_nonce_result r = ac_nonce_reserve(p->c, "prober", n, NOW, NOW, &exp, &epoch);
        p->t1[i] = ac_bench_now();
        atomic_store(&p->n, i + 1);
        if (r != AC_NONCE_NEW) p->full = 1;
    }
    return NULL;
}

/* The reservations of p that overlapped [from, to], as microseconds in p->us; prints their
 * longest and 99th percentile. */
static void report(const char *suffix, struct prober *p, double from, double to)
{
    size_t n = 0, all = atomic_load(&p->n);
    float *us = p->us;
    for (size_t i = 0; i < all; i++)
        if (p->t0[i] <= to && p->t1[i] >= from) us[n++] = (float)((p->t1[i] - p->t0[i]) * 1e6);
    qsort(us, n, sizeof *us, ac_bench_cmp_float);
    printf("reserve_max_us%s %.1f\n", suffix, n ? us[n - 1] : -1.0);
    printf("reserve_p99_us%s %.1f\n", suffix, n ? us[n * 99 / 100] : -1.0);
    printf("reservations%s %zu\n", suffix, n);
}

int main(int argc, char **argv)
{
    long live = argc > 1 ? atol(argv[1]) : 430000;
    long cap = argc > 2 ? atol(argv[2]) : 1L << 20;
    if (live < 1 || cap < 2 * live + PROBES_MAX / 100 || cap > (1L << 26)) {
        fprintf(stderr, "usage: bench_nonce [live] [capacity >= 2 * live + %d]\n",
                PROBES_MAX / 100);
        return 2;
    }
    struct ac_nonce_cache *c = ac_nonce_cache_new((size_t)cap, WINDOW);
    float *us = malloc(PROBES_MAX * sizeof *us);
    double *t0s = malloc(PROBES_MAX * sizeof *t0s), *t1s = malloc(PROBES_MAX * sizeof *t1s);
    if (c == NULL || us == NULL || t0s == NULL || t1s == NULL) {
        fprintf(stderr, "bench_nonce: out of memory\n");
        return 1;
    }
    char k[32], n[32];
    for (long i = 0; i < 2 * live; i++) {
        snprintf(k, sizeof k, "agent-%ld", i % 256);
        snprintf(n, sizeof n, "n%ld", i);
        /* even: expired at sweep time (NOW + 30); odd: still live */
        int64_t exp, created = i % 2 ? NOW : NOW - WINDOW + 10;
        uint64_t epoch;
        if (ac_nonce_reserve(c, k, n, created, NOW, &exp, &epoch) != AC_NONCE_NEW) {
            fprintf(stderr, "bench_nonce: filling the cache failed at %ld\n", i);
            return 1;
        }
    }
    size_t before = ac_nonce_cache_size(c);

    /* during the sweep */
    struct prober p = {.c = c, .us = us, .t0 = t0s, .t1 = t1s};
    pthread_t th;
    pthread_create(&th, NULL, probe, &p);
    while (atomic_load(&p.n) < 1000) /* the prober is running */
        sched_yield();
    double t0 = ac_bench_now();
    ac_nonce_purge(c, NULL, NOW + 30);
    double t1 = ac_bench_now();
    atomic_store(&p.stop, 1);
    pthread_join(th, NULL);
    size_t evicted = before + atomic_load(&p.n) - ac_nonce_cache_size(c);
    printf("live %ld\ncapacity %ld\nsweep_ms %.2f\nevicted %zu\n", live, cap, (t1 - t0) * 1e3,
           evicted);
    size_t during = 0;
    for (size_t i = 0; i < atomic_load(&p.n); i++)
        during += p.t0[i] <= t1 && p.t1[i] >= t0;
    report("", &p, t0, t1);
    int full = p.full;

    /* as many reservations with no sweep, for comparison (at least 1,000) */
    struct prober q = {.c = c, .us = us, .t0 = t0s, .t1 = t1s, .next = p.next};
    pthread_create(&th, NULL, probe, &q);
    while (atomic_load(&q.n) < (during > 1000 ? during : 1000))
        sched_yield();
    atomic_store(&q.stop, 1);
    pthread_join(th, NULL);
    report("_idle", &q, 0, 1e300);
    if (full || q.full) fprintf(stderr, "bench_nonce: a reservation was refused\n");
    ac_nonce_cache_free(c);
    free(us);
    free(t0s);
    free(t1s);
    return full || q.full ? 1 : 0;
}
