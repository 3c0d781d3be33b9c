/* tests/bench/benchutil.h -- what the HTTP benchmarks (bench_verify.c, bench_e2e.c) share:
 * starting the real `agentclear serve`, operator/API calls during setup, signing on every core,
 * and the closed-loop run itself (keep-alive connections, one request in flight each, a warm-up,
 * a timed window, the server's and PostgreSQL's CPU over it, latency percentiles). */
#ifndef AC_BENCHUTIL_H
#define AC_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "tests/support/server.h"

/* CLOCK_MONOTONIC seconds. */
double ac_bench_now(void);

/* qsort comparator for an array of float, ascending (latencies, before taking percentiles). */
int ac_bench_cmp_float(const void *a, const void *b);

/* CPU seconds (user + system) of /proc/<pid>/stat, or -1. */
double ac_bench_proc_cpu(const char *pid);

/* CPU seconds of every PostgreSQL backend mon sees in pg_stat_activity, or -1. */
double ac_bench_pg_cpu(PGconn *mon);

/* Start `agentclear serve` (binary) against url with AGENTCLEAR_THREADS=threads, a random operator
 * token (written to token, at least 64 bytes) and the extra "KEY=VALUE" entries (NULL-terminated,
 * at most 12, or NULL). Returns 0, or -1 with a message. */
int ac_bench_server_start(struct ac_test_server *srv, const char *name, const char *binary,
                          const char *url, int threads, const char *const *extra, char *token);

/* POST json to path on 127.0.0.1:port (with the operator token when token is not NULL). Returns
 * the status (0: transport error); prints the answer to stderr when it is not want. */
int ac_bench_post(unsigned port, const char *path, const char *json, const char *token, int want);

/* fn(i, ctx) for every i in [0, n), split over every core. 0, or -1 when any call returned
 * non-zero. */
int ac_bench_parallel(size_t n, int (*fn)(size_t i, void *ctx), void *ctx);

/* A closed-loop run: `connections` threads, each with one keep-alive HTTP/1.1 connection and one
 * request in flight, send reqs[0..n) in order (each taken once). After `warmup` seconds, a window
 * of `seconds` (ended early when the requests run out) counts the answers with status `want`. */
struct ac_bench_load {
    const char *host; /* IPv4 address of the server */
    unsigned port;
    char **reqs;
    size_t *lens;
    size_t n;
    int connections;
    int want;
    double seconds, warmup;
    pid_t server;    /* its CPU time is read over the window */
    PGconn *mon;     /* PostgreSQL's CPU over the window; NULL: not measured */
    const char *who; /* prefix of messages */
    /* 0 (the default): one blocking client thread per connection, one request in flight each.
     * > 0: that many event-driven client threads (epoll, non-blocking sockets, as wrk and h2load
     * work) share the connections, each connection keeping `depth` requests in flight (HTTP/1.1
     * pipelining; the server answers them in order). A response then rarely has to wake a
     * sleeping client thread of its own, a cost the server's CPU time would otherwise carry
     * (loopback delivery wakes the reader from the sender's system call). */
    int client_threads;
    int depth; /* requests in flight per connection with client_threads > 0 (default 1) */
    /* 0: any connection takes the next request. > 0: request i belongs to group i % pin_groups and
     * every group's requests go, in order, on one connection (the group % connections-th), as a
     * merchant settles one tab's vouchers one after another: two of a group are never in flight
     * at once on different connections, where the later could overtake the earlier. */
    size_t pin_groups;
};

struct ac_bench_result {
    double window_s;
    double rps;            /* answers `want` in the window per second */
    double server_cores;   /* server CPU seconds per second of window (-1: unknown) */
    double pg_cores;       /* PostgreSQL's, same (-1: unknown) */
    double client_cores;   /* this process's (the load generator's), same (-1: unknown) */
    double p50_ms, p99_ms; /* latency of the window's `want` answers, send to full answer */
    uint64_t ok, errors;   /* in the window; errors: any other answer or a transport error */
    uint64_t errors_total; /* over the whole run, warm-up included */
    int ran_out;           /* the requests ran out before the window's end */
    /* The sequencer's PostgreSQL backend (the leader's, found by its lease through mon), the
     * serial stage every write waits for: shares of the window it spent on a CPU and waiting
     * for one (/proc/PID/schedstat), and, of the samples taken every 10 ms, the share it
     * was in uninterruptible sleep (disk: its commits' fsync) and asleep otherwise (idle, waiting
     * for the sequencer's next statement). All -1 when it was not found. */
    double writer_cpu, writer_runq, writer_disk, writer_idle;
};

int ac_bench_run(const struct ac_bench_load *l, struct ac_bench_result *out);

#endif
