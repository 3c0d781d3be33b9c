/* tests/bench/benchutil.c -- see benchutil.h. */
#include "tests/bench/benchutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "protocol/b64.h"
#include "tests/support/httpc.h"

double ac_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ac_bench_proc_cpu(const char *pid)
{
    char fn[128], buf[1024];
    snprintf(fn, sizeof fn, "/proc/%s/stat", pid);
    FILE *f = fopen(fn, "r");
    if (f == NULL) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL) return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double ac_bench_pg_cpu(PGconn *mon)
{
    if (mon == NULL) return -1;
    PGresult *r = PQexec(mon, "select pid from pg_stat_activity");
    double sum = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        for (int i = 0; i < PQntuples(r); i++) {
            double v = ac_bench_proc_cpu(PQgetvalue(r, i, 0));
            if (v >= 0) sum = (sum < 0 ? 0 : sum) + v;
        }
    PQclear(r);
    return sum;
}

/* The pid of the backend holding the sequencer's lease (ledger/db.c, pg_try_advisory_lock(7340,
 * partition)) in mon's database, as text in pid (cap bytes), or "" when there is none. */
static void writer_pid(PGconn *mon, char *pid, size_t cap)
{
    pid[0] = '\0';
    if (mon == NULL) return;
    PGresult *r = PQexec(mon, "select pid from pg_locks where locktype = 'advisory' and granted "
                              "and classid = 7340 and objsubid = 2 and database = (select oid "
                              "from pg_database where datname = current_database()) limit 1");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(pid, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* Nanoseconds pid spent on a CPU and waiting on a run queue (/proc/PID/schedstat); -1 when
 * unreadable. */
static int sched_ns(const char *pid, double *run, double *wait)
{
    char fn[128];
    snprintf(fn, sizeof fn, "/proc/%s/schedstat", pid);
    FILE *f = fopen(fn, "r");
    if (f == NULL) return -1;
    unsigned long long a = 0, b = 0;
    int ok = fscanf(f, "%llu %llu", &a, &b) == 2;
    fclose(f);
    *run = (double)a;
    *wait = (double)b;
    return ok ? 0 : -1;
}

/* pid's scheduler state letter (R, S, D, ...), or 0 when unreadable. */
static char proc_state(const char *pid)
{
    char fn[128], buf[512];
    snprintf(fn, sizeof fn, "/proc/%s/stat", pid);
    FILE *f = fopen(fn, "r");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

int ac_bench_server_start(struct ac_test_server *srv, const char *name, const char *binary,
                          const char *url, int threads, const char *const *extra, char *token)
{
    if (setenv("AC_BINARY", binary, 1) != 0) return -1;
    uint8_t rnd[24];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return -1;
    ac_b64_encode(rnd, sizeof rnd, token, 1);
    char th[64];
    snprintf(th, sizeof th, "AGENTCLEAR_THREADS=%d", threads);
    const char *env[AC_TEST_MAX_ENV + 1] = {th};
    size_t n = 1;
    for (size_t i = 0; extra && extra[i] && n < AC_TEST_MAX_ENV; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    if (ac_test_server_start(srv, name, url, token, env, 60000) != 0) {
        fprintf(stderr, "%s: the server did not start\n", name);
        return -1;
    }
    return 0;
}

int ac_bench_post(unsigned port, const char *path, const char *json, const char *token, int want)
{
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", port, 20000);
    struct ac_test_http_resp r;
    int st = ac_test_http_api(&c, "POST", path, token, json, &r);
    if (st != want) fprintf(stderr, "bench: POST %s: %d %.500s\n", path, st, r.body);
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    return st;
}

/* ---- on every core ----------------------------------------------------------------------------
 */

struct par_job {
    size_t from, to;
    int (*fn)(size_t, void *);
    void *ctx;
    int failed;
};

static void *par_range(void *arg)
{
    struct par_job *j = arg;
    for (size_t i = j->from; i < j->to && !j->failed; i++)
        if (j->fn(i, j->ctx) != 0) j->failed = 1;
    return NULL;
}

int ac_bench_parallel(size_t n, int (*fn)(size_t i, void *ctx), void *ctx)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = ncpu > 0 && ncpu < 64 ? (int)ncpu : 2;
    pthread_t th[64];
    struct par_job jobs[64];
    for (int i = 0; i < nt; i++) {
        jobs[i] = (struct par_job){.from = n * (size_t)i / (size_t)nt,
                                   .to = n * (size_t)(i + 1) / (size_t)nt,
                                   .fn = fn,
                                   .ctx = ctx};
        pthread_create(&th[i], NULL, par_range, &jobs[i]);
    }
    int failed = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
    }
    return failed ? -1 : 0;
}

/* ---- the closed loop --------------------------------------------------------------------------
 */

struct run {
    const struct ac_bench_load *l;
    struct sockaddr_in addr;
    _Atomic size_t next;     /* requests taken */
    _Atomic int next_conn;   /* connection numbers handed out */
    _Atomic int stop;
    _Atomic uint64_t errors;
    _Atomic int printed;
    double *done;        /* per request: when its answer was complete (0: not answered) */
    float *lat_ms;       /* per request: send to full answer */
    unsigned char *good; /* per request: the answer was `want` */
};

static int connect_to(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)a, sizeof *a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read one response; returns its status, or -1 on a transport error. The server always sends a
 * Content-Length (responses from buffers). */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    char *end = NULL;
    while (end == NULL) {
        ssize_t k = recv(fd, buf + have, cap - 1 - have, 0);
        if (k <= 0) return -1;
        have += (size_t)k;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL && have + 1 >= cap) return -1;
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*c %d", &status) != 1) return -1;
    size_t clen = 0;
    for (char *p = buf; p != NULL && p < end;) {
        if (strncasecmp(p, "Content-Length:", 15) == 0) clen = strtoul(p + 15, NULL, 10);
        char *nl = strstr(p, "\r\n");
        p = nl ? nl + 2 : NULL;
    }
    size_t body_have = have - (size_t)(end + 4 - buf);
    while (body_have < clen) {
        char tmp[8192];
        size_t want = clen - body_have < sizeof tmp ? clen - body_have : sizeof tmp;
        ssize_t k = recv(fd, tmp, want, 0);
        if (k <= 0) return -1;
        body_have += (size_t)k;
    }
    if (body_have > clen) return -1; /* one request in flight: nothing may follow */
    return status;
}

/* The next request for connection `conn`, or l->n when none is left. Without pin_groups, the
 * next of all; with it, the next of the groups this connection owns (group % connections), from
 * *cursor on, so a group's requests go in order on one connection. */
static size_t take(struct run *r, int conn, size_t *cursor)
{
    const struct ac_bench_load *l = r->l;
    if (l->pin_groups == 0) return atomic_fetch_add(&r->next, 1);
    for (size_t i = *cursor; i < l->n; i++) {
        if ((int)((i % l->pin_groups) % (size_t)l->connections) != conn) continue;
        *cursor = i + 1;
        atomic_fetch_add(&r->next, 1);
        return i;
    }
    *cursor = l->n;
    return l->n;
}

static void *client(void *arg)
{
    struct run *r = arg;
    const struct ac_bench_load *l = r->l;
    int fd = connect_to(&r->addr);
    int conn = atomic_fetch_add(&r->next_conn, 1);
    size_t cursor = 0;
    char buf[16384];
    while (!atomic_load(&r->stop)) {
        size_t i = take(r, conn, &cursor);
        if (i >= l->n) break;
        if (fd < 0 && (fd = connect_to(&r->addr)) < 0) {
            atomic_fetch_add(&r->errors, 1);
            continue;
        }
        double t = ac_bench_now();
        size_t off = 0;
        while (off < l->lens[i]) {
            ssize_t k = send(fd, l->reqs[i] + off, l->lens[i] - off, MSG_NOSIGNAL);
            if (k <= 0) break;
            off += (size_t)k;
        }
        int st = off == l->lens[i] ? read_response(fd, buf, sizeof buf) : -1;
        double e = ac_bench_now();
        r->lat_ms[i] = (float)((e - t) * 1000.0);
        r->good[i] = st == l->want;
        r->done[i] = e;
        if (st != l->want) {
            atomic_fetch_add(&r->errors, 1);
            if (atomic_fetch_add(&r->printed, 1) < 3) {
                const char *body = st > 0 ? strstr(buf, "\r\n\r\n") : NULL;
                fprintf(stderr, "%s: answer %d: %.300s\n", l->who, st,
                        body ? body + 4 : "(transport error)");
            }
            if (st < 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* ---- the event-driven closed loop (client_threads > 0) -----------------------------------------
 */

#define EV_DEPTH_MAX 64
#define EV_RBUF (256 * 1024)

struct evconn {
    int fd;
    size_t inflight[EV_DEPTH_MAX]; /* request indices, oldest first (a ring) */
    double sent[EV_DEPTH_MAX];
    unsigned head, count;
    size_t have; /* bytes of rbuf holding a partial response */
    char *rbuf;
    int conn;      /* its number among all connections (pin_groups) */
    size_t cursor; /* where take() goes on for it */
};

struct evjob {
    struct run *r;
    int nconn; /* connections of this thread */
};

/* Send up to `room` new requests on c in one system call (pipelined). Returns the number sent
 * (0 when the requests ran out or the run stops), or -1 on a transport error. */
static int ev_fill(struct run *r, struct evconn *c, unsigned room)
{
    const struct ac_bench_load *l = r->l;
    struct iovec iov[EV_DEPTH_MAX];
    unsigned n = 0;
    while (n < room && !atomic_load(&r->stop)) {
        size_t i = take(r, c->conn, &c->cursor);
        if (i >= l->n) break;
        unsigned slot = (c->head + c->count + n) % EV_DEPTH_MAX;
        c->inflight[slot] = i;
        iov[n].iov_base = l->reqs[i];
        iov[n].iov_len = l->lens[i];
        n++;
    }
    if (n == 0) return 0;
    double t = ac_bench_now();
    for (unsigned k = 0; k < n; k++)
        c->sent[(c->head + c->count + k) % EV_DEPTH_MAX] = t;
    c->count += n;
    /* the socket is blocking for writes: a few KiB always fit the loopback send buffer */
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
    size_t total = 0;
    for (unsigned k = 0; k < n; k++)
        total += iov[k].iov_len;
    while (total > 0) {
        ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        total -= (size_t)k;
        while (k > 0 && mh.msg_iovlen > 0) { /* a partial write: skip what went out */
            if ((size_t)k >= mh.msg_iov[0].iov_len) {
                k -= (ssize_t)mh.msg_iov[0].iov_len;
                mh.msg_iov++;
                mh.msg_iovlen--;
            } else {
                mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + k;
                mh.msg_iov[0].iov_len -= (size_t)k;
                k = 0;
            }
        }
    }
    return (int)n;
}

/* The first occurrence of the n bytes of needle in p[0..len), or NULL. */
static const char *find(const char *p, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (p[i] == needle[0] && memcmp(p + i, needle, n) == 0) return p + i;
    return NULL;
}

/* Parse one complete response at the start of p[0..len): sets *status and returns its length,
 * 0 when incomplete, or -1 when malformed. */
static long ev_parse(const char *p, size_t len, int *status)
{
    const char *end = find(p, len, "\r\n\r\n", 4);
    if (end == NULL) return len >= EV_RBUF / 2 ? -1 : 0;
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0) return -1;
    *status = atoi(p + 9);
    size_t clen = 0;
    for (const char *q = p; q < end;) {
        if (strncasecmp(q, "Content-Length:", 15) == 0) clen = strtoul(q + 15, NULL, 10);
        const char *nl = find(q, (size_t)(end - q), "\r\n", 2);
        q = nl ? nl + 2 : end;
    }
    size_t total = (size_t)(end + 4 - p) + clen;
    return total <= len ? (long)total : 0;
}

/* Connection c failed: its requests in flight count as errors; reconnect. */
static void ev_fail(struct run *r, struct evconn *c, int ep)
{
    for (unsigned k = 0; k < c->count; k++) {
        size_t i = c->inflight[(c->head + k) % EV_DEPTH_MAX];
        r->done[i] = ac_bench_now();
        r->good[i] = 0;
        atomic_fetch_add(&r->errors, 1);
    }
    if (atomic_fetch_add(&r->printed, 1) < 3)
        fprintf(stderr, "%s: transport error on a connection\n", r->l->who);
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->head = c->count = 0;
    c->have = 0;
    c->fd = connect_to(&r->addr);
}

static void *ev_client(void *arg)
{
    struct evjob *j = arg;
    struct run *r = j->r;
    const struct ac_bench_load *l = r->l;
    unsigned depth = l->depth < 1 ? 1 : l->depth > EV_DEPTH_MAX ? EV_DEPTH_MAX : (unsigned)l->depth;
    struct evconn *cs = calloc((size_t)j->nconn, sizeof *cs);
    int ep = epoll_create1(0);
    if (cs == NULL || ep < 0) {
        fprintf(stderr, "%s: cannot start a client thread\n", l->who);
        atomic_fetch_add(&r->errors, 1);
        free(cs);
        if (ep >= 0) close(ep);
        return NULL;
    }
    int live = 0;
    for (int k = 0; k < j->nconn; k++) {
        struct evconn *c = &cs[k];
        c->conn = atomic_fetch_add(&r->next_conn, 1);
        c->rbuf = malloc(EV_RBUF);
        c->fd = c->rbuf ? connect_to(&r->addr) : -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (c->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0 ||
            ev_fill(r, c, depth) < 0) {
            ev_fail(r, c, ep);
            continue;
        }
        if (c->count > 0) live++;
    }
    struct epoll_event evs[64];
    while (live > 0) {
        int ne = epoll_wait(ep, evs, 64, 200);
        if (ne < 0) continue;
        if (ne == 0 && atomic_load(&r->stop)) break; /* nothing answered for 200 ms: give up */
        for (int e = 0; e < ne; e++) {
            struct evconn *c = evs[e].data.ptr;
            ssize_t k = recv(c->fd, c->rbuf + c->have, EV_RBUF - 1 - c->have, MSG_DONTWAIT);
            if (k <= 0) {
                if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                int had = c->count > 0;
                ev_fail(r, c, ep);
                if (had) live--;
                continue;
            }
            c->have += (size_t)k;
            size_t off = 0;
            unsigned answered = 0;
            int bad = 0;
            while (c->count > 0) {
                int st = 0;
                long n = ev_parse(c->rbuf + off, c->have - off, &st);
                if (n == 0) break;
                if (n < 0) {
                    bad = 1;
                    break;
                }
                size_t i = c->inflight[c->head];
                double now = ac_bench_now();
                r->lat_ms[i] = (float)((now - c->sent[c->head]) * 1000.0);
                r->good[i] = st == l->want;
                r->done[i] = now;
                if (st != l->want) {
                    atomic_fetch_add(&r->errors, 1);
                    if (atomic_fetch_add(&r->printed, 1) < 3) {
                        const char *body = find(c->rbuf + off, (size_t)n, "\r\n\r\n", 4);
                        int blen = body ? (int)(c->rbuf + off + n - body - 4) : 0;
                        fprintf(stderr, "%s: answer %d: %.*s\n", l->who, st,
                                blen > 300 ? 300 : blen, body ? body + 4 : "");
                    }
                }
                c->head = (c->head + 1) % EV_DEPTH_MAX;
                c->count--;
                off += (size_t)n;
                answered++;
            }
            if (bad || (c->count == 0 && off < c->have)) { /* garbage, or bytes nobody asked for */
                int had = c->count > 0;
                ev_fail(r, c, ep);
                if (had) live--;
                continue;
            }
            memmove(c->rbuf, c->rbuf + off, c->have - off);
            c->have -= off;
            if (answered > 0 && ev_fill(r, c, depth - c->count) < 0) {
                ev_fail(r, c, ep);
                live--;
                continue;
            }
            if (c->count == 0) live--; /* ran out, or stopping */
        }
    }
    for (int k = 0; k < j->nconn; k++) {
        if (cs[k].fd >= 0) close(cs[k].fd);
        free(cs[k].rbuf);
    }
    close(ep);
    free(cs);
    return NULL;
}

int ac_bench_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int ac_bench_run(const struct ac_bench_load *l, struct ac_bench_result *out)
{
    memset(out, 0, sizeof *out);
    struct run *r = calloc(1, sizeof *r);
    int nth = l->client_threads > 0 ? l->client_threads : l->connections;
    if (nth > l->connections) nth = l->connections;
    pthread_t *th = calloc((size_t)nth, sizeof *th);
    struct evjob *jobs = calloc((size_t)nth, sizeof *jobs);
    if (r == NULL || th == NULL || jobs == NULL) goto oom;
    r->l = l;
    r->done = calloc(l->n, sizeof *r->done);
    r->lat_ms = calloc(l->n, sizeof *r->lat_ms);
    r->good = calloc(l->n, 1);
    if (r->done == NULL || r->lat_ms == NULL || r->good == NULL) goto oom;
    r->addr.sin_family = AF_INET;
    r->addr.sin_port = htons((uint16_t)l->port);
    if (inet_pton(AF_INET, l->host, &r->addr.sin_addr) != 1) {
        fprintf(stderr, "%s: bad address %s\n", l->who, l->host);
        free(r->done);
        free(r->lat_ms);
        free(r->good);
        free(r);
        free(th);
        free(jobs);
        return -1;
    }
    for (int i = 0; i < nth; i++) {
        if (l->client_threads > 0) {
            jobs[i] = (struct evjob){
                .r = r, .nconn = l->connections * (i + 1) / nth - l->connections * i / nth};
            pthread_create(&th[i], NULL, ev_client, &jobs[i]);
        } else {
            pthread_create(&th[i], NULL, client, r);
        }
    }
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)l->server);
    struct timespec ws = {.tv_sec = (time_t)l->warmup,
                          .tv_nsec = (long)((l->warmup - (double)(time_t)l->warmup) * 1e9)};
    nanosleep(&ws, NULL);
    char wpid[32];
    writer_pid(l->mon, wpid, sizeof wpid);
    double wrun0 = 0, wwait0 = 0, wrun1 = 0, wwait1 = 0;
    int wok = wpid[0] && sched_ns(wpid, &wrun0, &wwait0) == 0;
    double t0 = ac_bench_now(), cpu0 = ac_bench_proc_cpu(pid), pg0 = ac_bench_pg_cpu(l->mon);
    double me0 = ac_bench_proc_cpu("self");
    unsigned long samples = 0, in_disk = 0, in_sleep = 0;
    while (ac_bench_now() - t0 < l->seconds && atomic_load(&r->next) < l->n) {
        /* every 10 ms, the writer backend's state: 800 samples in an 8 s window. Sampling every
         * millisecond cost the client 5-8 us of CPU a payment (the /proc read and the wake-up),
         * enough to move the figures it is meant to explain. */
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
        if (!wok) continue;
        char st = proc_state(wpid);
        samples++;
        in_disk += st == 'D';
        in_sleep += st == 'S';
    }
    double t1 = ac_bench_now(), cpu1 = ac_bench_proc_cpu(pid), pg1 = ac_bench_pg_cpu(l->mon);
    double me1 = ac_bench_proc_cpu("self");
    wok = wok && sched_ns(wpid, &wrun1, &wwait1) == 0 && samples > 0;
    atomic_store(&r->stop, 1);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    out->ran_out = atomic_load(&r->next) >= l->n;
    if (out->ran_out)
        fprintf(stderr, "%s: the presigned requests ran out; the window was %.1f s\n", l->who,
                t1 - t0);
    float *lat = malloc(l->n * sizeof *lat);
    if (lat == NULL) goto oom;
    size_t nl = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (r->done[i] < t0 || r->done[i] > t1) continue;
        if (r->good[i])
            lat[nl++] = r->lat_ms[i];
        else
            out->errors++;
    }
    qsort(lat, nl, sizeof *lat, ac_bench_cmp_float);
    out->window_s = t1 - t0;
    out->ok = nl;
    out->rps = (double)nl / out->window_s;
    out->server_cores = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / out->window_s : -1;
    out->pg_cores = pg0 >= 0 && pg1 >= 0 ? (pg1 - pg0) / out->window_s : -1;
    out->client_cores = me0 >= 0 && me1 >= 0 ? (me1 - me0) / out->window_s : -1;
    out->writer_cpu = wok ? (wrun1 - wrun0) / 1e9 / out->window_s : -1;
    out->writer_runq = wok ? (wwait1 - wwait0) / 1e9 / out->window_s : -1;
    out->writer_disk = wok ? (double)in_disk / (double)samples : -1;
    out->writer_idle = wok ? (double)in_sleep / (double)samples : -1;
    out->p50_ms = nl ? lat[nl / 2] : -1;
    out->p99_ms = nl ? lat[nl * 99 / 100] : -1;
    out->errors_total = atomic_load(&r->errors);
    free(lat);
    free(r->done);
    free(r->lat_ms);
    free(r->good);
    free(r);
    free(th);
    free(jobs);
    return 0;
oom:
    fprintf(stderr, "%s: out of memory\n", l->who);
    if (r) {
        free(r->done);
        free(r->lat_ms);
        free(r->good);
    }
    free(r);
    free(th);
    free(jobs);
    return -1;
}
