/* tests/bench/bench_verify.c -- signed requests verified per second through the full HTTP path.
 *
 * usage: bench_verify -b agentclear [-s seconds] [-w warmup_s] [-c connections] [-t server_threads]
 *                     [-n presigned] [database-url]
 *        bench_verify -u host:port -p server_pid -k agent_key.jwk -r 'sha-256=:...:'
 *                     [-s ..] [-w ..] [-c ..] [-n ..]
 *
 * Self-hosted (the first form): the program starts the real server, `agentclear serve` (the
 * binary given with -b), on a free port of 127.0.0.1 against the database (default
 * AGENTCLEAR_DATABASE_URL) with AGENTCLEAR_THREADS=server_threads and a random operator token,
 * waits until /readyz answers, and registers its identity through the HTTP API like any
 * deployment: the operator registers a user with a fresh Ed25519 key (POST /v1/users), the user
 * signs a binding of a fresh Ed25519 agent key to a runtime (ac_jws_sign) and posts it
 * (POST /v1/bindings). Every request is then verified by the server's own path: libmicrohttpd,
 * the route table, server/authn.c, the identity registry as the resolver, the replay cache in
 * memory and PostgreSQL (keys/nonce.h), GET /v1/whoami answering the verification result. The
 * second form drives an external `agentclear serve` whose registry already knows the agent key's
 * binding with that runtime.
 *
 * Every request needs a fresh nonce, so `presigned` GET /v1/whoami requests (each its own nonce)
 * are signed before the timed window, on all cores. Then `connections` client threads, each with
 * one keep-alive HTTP/1.1 connection and one request in flight, send them in order; after the
 * warm-up, 200 answers inside a window of `seconds` are counted (the window ends early when the
 * presigned requests run out). The server process's CPU time over the window is read from
 * /proc/<pid>/stat, so "per core used" is requests / CPU-seconds of the server: independent of
 * how busy the rest of the machine (clients included) was. PostgreSQL's own CPU is given beside
 * it (its processes, from pg_stat_activity and /proc).
 *
 * Output, one figure a line (ops/bench reads it):
 *   verify_rps 12345.6            200 answers per second of wall time
 *   server_cores 1.93             server process CPU seconds per second of wall time
 *   verify_per_core 6400.1        verify_rps / server_cores
 *   postgres_cores 0.41           PostgreSQL's processes, same window (-1: not measurable)
 *   window_s 10.00, requests N, errors N
 * Exit status: 0, or 1 when setup failed or any answer was not 200. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ledger/db.h"
#include "protocol/b64.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/runtime.h"
#include "protocol/sig.h"
#include "tests/support/httpc.h"
#include "tests/support/server.h"

struct opts {
    const char *url;    /* database (self-hosted) */
    const char *target; /* host:port (external) */
    const char *keyfile, *runtime;
    pid_t server_pid;
    double seconds, warmup;
    int connections, server_threads;
    size_t presigned;
    const char *binary; /* agentclear (self-hosted) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of /proc/<path>/stat, or -1. */
static double proc_cpu_seconds(const char *path)
{
    char fn[128], buf[1024];
    snprintf(fn, sizeof fn, "/proc/%s/stat", path);
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

static PGconn *mon; /* pg_stat_activity, for PostgreSQL's CPU */

static double pg_cpu_seconds(void)
{
    if (mon == NULL) return -1;
    PGresult *r = PQexec(mon, "select pid from pg_stat_activity");
    double sum = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        for (int i = 0; i < PQntuples(r); i++) {
            double v = proc_cpu_seconds(PQgetvalue(r, i, 0));
            if (v >= 0) sum = (sum < 0 ? 0 : sum) + v;
        }
    PQclear(r);
    return sum;
}

/* ---- the self-hosted server ------------------------------------------------------------------ */

static struct ac_test_server srv;

/* POST json to path (operator token when token is not NULL); returns the status (0: transport
 * error), the answer on stderr when it is not `want`. */
static int api_post(const char *path, const char *json, const char *token, int want)
{
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 20000);
    struct ac_test_http_resp r;
    int st = ac_test_http_api(&c, "POST", path, token, json, &r);
    if (st != want) fprintf(stderr, "bench_verify: POST %s: %d %s\n", path, st, r.body);
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    return st;
}

/* Start `agentclear serve` and register a user and a binding of agent (with this runtime)
 * through the HTTP API. Returns 0, or -1 (with a message). */
static int start_server(const struct opts *o, EVP_PKEY *agent, const char *software,
                        const char *model, const char *environment)
{
    if (setenv("AC_BINARY", o->binary, 1) != 0) return -1;
    uint8_t rnd[24];
    char token[64], threads[64];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return -1;
    ac_b64_encode(rnd, sizeof rnd, token, 1);
    snprintf(threads, sizeof threads, "AGENTCLEAR_THREADS=%d", o->server_threads);
    const char *env[] = {threads, NULL};
    if (ac_test_server_start(&srv, "bench-verify", o->url, token, env, 60000) != 0) return -1;

    EVP_PKEY *user = ac_sig_keygen(AC_SIG_ED25519);
    char *ujwk = user ? ac_jwk_public_text(user) : NULL;
    json_t *agent_jwk = ac_jwk_export_public(agent);
    char kid[AC_JWK_THUMBPRINT_SIZE], body[2048];
    int rc = -1;
    if (ujwk == NULL || agent_jwk == NULL || ac_jwk_thumbprint(user, kid) != 0) goto out;
    snprintf(body, sizeof body, "{\"id\":\"bench-user\",\"keys\":[%s]}", ujwk);
    if (api_post("/v1/users", body, token, 201) != 201) goto out;
    int64_t now = (int64_t)time(NULL);
    json_t *p = json_pack("{s:i, s:s, s:s, s:s, s:{s:O}, s:{s:s, s:s, s:s}, s:s, s:I, s:I}", "ver",
                          1, "id", "bench-binding", "iss", "bench-user", "sub", "bench-agent",
                          "cnf", "jwk", agent_jwk, "runtime", "software", software, "model", model,
                          "environment", environment, "max_autonomy", "L2", "iat",
                          (json_int_t)(now - 5), "exp", (json_int_t)(now + 86400));
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    char *jws =
        text ? ac_jws_sign(user, kid, "agentclear-binding+jws", (const uint8_t *)text, strlen(text))
             : NULL;
    free(text);
    json_t *b = jws ? json_pack("{s:s}", "jws", jws) : NULL;
    char *btext = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    free(jws);
    if (btext != NULL && api_post("/v1/bindings", btext, NULL, 201) == 201) rc = 0;
    free(btext);
out:
    if (rc != 0) fprintf(stderr, "bench_verify: cannot register the bench identity\n");
    json_decref(agent_jwk);
    free(ujwk);
    EVP_PKEY_free(user);
    return rc;
}

/* ---- presigned requests -----------------------------------------------------------------------
 */

static char **reqs;
static size_t *req_lens;
static EVP_PKEY *agent_key;
static char keyid[AC_JWK_THUMBPRINT_SIZE];
static char runtime_hdr[AC_RUNTIME_HEADER_MAX + 1];
static char authority[128];

static const char *sign_header(void *ctx, const char *lname)
{
    (void)ctx;
    return strcmp(lname, "agent-runtime") == 0 ? runtime_hdr : NULL;
}

struct sign_job {
    size_t from, to;
    int failed;
};

static void *sign_range(void *arg)
{
    struct sign_job *j = arg;
    static const char *const comps[] = {"@method", "@target-uri", "agent-runtime", NULL};
    struct ac_http_request req = {.method = "GET",
                                  .scheme = "http",
                                  .authority = authority,
                                  .path = "/v1/whoami",
                                  .header = sign_header};
    int64_t created = (int64_t)time(NULL);
    for (size_t i = j->from; i < j->to; i++) {
        uint8_t rnd[16];
        char nonce[32], si[1024], sig[256];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            j->failed = 1;
            return NULL;
        }
        ac_b64_encode(rnd, sizeof rnd, nonce, 1);
        struct ac_httpsig_sign_opts so = {.label = "sig1",
                                          .components = comps,
                                          .keyid = keyid,
                                          .created = created,
                                          .expires = created + 120,
                                          .nonce = nonce,
                                          .tag = "agentclear",
                                          .with_alg = 1};
        if (ac_httpsig_sign(agent_key, &req, &so, si, sizeof si, sig, sizeof sig) != AC_EC_OK) {
            j->failed = 1;
            return NULL;
        }
        char buf[2048];
        int n = snprintf(buf, sizeof buf,
                         "GET /v1/whoami HTTP/1.1\r\nHost: %s\r\nAgent-Runtime: %s\r\n"
                         "Signature-Input: %s\r\nSignature: %s\r\n\r\n",
                         authority, runtime_hdr, si, sig);
        reqs[i] = malloc((size_t)n + 1);
        if (n <= 0 || (size_t)n >= sizeof buf || reqs[i] == NULL) {
            j->failed = 1;
            return NULL;
        }
        memcpy(reqs[i], buf, (size_t)n + 1);
        req_lens[i] = (size_t)n;
    }
    return NULL;
}

/* ---- clients ------------------------------------------------------------------------------------
 */

static _Atomic size_t next_req;
static _Atomic uint64_t ok_count, err_count;
static _Atomic int stop_flag;
static size_t n_reqs;
static struct sockaddr_in server_addr;

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0) {
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

static _Atomic int printed_errors;

static void *client(void *arg)
{
    (void)arg;
    int fd = connect_server();
    char buf[16384];
    while (!atomic_load(&stop_flag)) {
        size_t i = atomic_fetch_add(&next_req, 1);
        if (i >= n_reqs) break;
        if (fd < 0 && (fd = connect_server()) < 0) {
            atomic_fetch_add(&err_count, 1);
            continue;
        }
        size_t off = 0;
        while (off < req_lens[i]) {
            ssize_t k = send(fd, reqs[i] + off, req_lens[i] - off, MSG_NOSIGNAL);
            if (k <= 0) break;
            off += (size_t)k;
        }
        int st = off == req_lens[i] ? read_response(fd, buf, sizeof buf) : -1;
        if (st == 200) {
            atomic_fetch_add(&ok_count, 1);
        } else {
            atomic_fetch_add(&err_count, 1);
            if (atomic_fetch_add(&printed_errors, 1) < 3)
                fprintf(stderr, "bench_verify: answer %d: %.300s\n", st,
                        st > 0 ? strstr(buf, "\r\n\r\n") + 4 : "(transport error)");
            if (st < 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* ---- main
 * ----------------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_verify -b agentclear [-s seconds] [-w warmup] [-c connections] "
                    "[-t server_threads] [-n presigned] [database-url]\n"
                    "       bench_verify -u host:port -p server_pid -k agent.jwk -r runtime "
                    "[-s ..] [-w ..] [-c ..] [-n ..]\n");
    exit(2);
}

static EVP_PKEY *load_private(const char *path)
{
    size_t cap = AC_JWK_MAX_TEXT + 1, n = 0;
    char *buf = malloc(cap);
    FILE *f = fopen(path, "r");
    if (f == NULL || buf == NULL) {
        free(buf);
        if (f) fclose(f);
        return NULL;
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    EVP_PKEY *k = NULL;
    const char *detail;
    if (n >= cap || ac_jwk_import_private_text(buf, n, &k, &detail) != AC_EC_OK) k = NULL;
    OPENSSL_cleanse(buf, cap);
    free(buf);
    return k;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .seconds = 10, .warmup = 2, .connections = 8, .server_threads = 2, .presigned = 200000};
    int c;
    while ((c = getopt(argc, argv, "s:w:c:t:n:u:p:k:r:b:")) != -1) {
        switch (c) {
        case 's':
            o.seconds = atof(optarg);
            break;
        case 'w':
            o.warmup = atof(optarg);
            break;
        case 'c':
            o.connections = atoi(optarg);
            break;
        case 't':
            o.server_threads = atoi(optarg);
            break;
        case 'n':
            o.presigned = strtoul(optarg, NULL, 10);
            break;
        case 'u':
            o.target = optarg;
            break;
        case 'p':
            o.server_pid = (pid_t)atoi(optarg);
            break;
        case 'k':
            o.keyfile = optarg;
            break;
        case 'r':
            o.runtime = optarg;
            break;
        case 'b':
            o.binary = optarg;
            break;
        default:
            usage();
        }
    }
    o.url = optind < argc ? argv[optind] : getenv("AGENTCLEAR_DATABASE_URL");
    if (o.seconds <= 0 || o.warmup < 0 || o.connections < 1 || o.connections > 1024 ||
        o.server_threads < 1 || o.presigned < 1)
        usage();
    int external = o.target != NULL;
    if (external && (o.server_pid <= 0 || o.keyfile == NULL || o.runtime == NULL)) usage();
    if (!external && (o.url == NULL || o.binary == NULL)) usage();
    signal(SIGPIPE, SIG_IGN);

    unsigned port;
    char host[64] = "127.0.0.1";
    if (external) {
        const char *colon = strrchr(o.target, ':');
        if (colon == NULL || (size_t)(colon - o.target) >= sizeof host) usage();
        memcpy(host, o.target, (size_t)(colon - o.target));
        host[colon - o.target] = '\0';
        port = (unsigned)atoi(colon + 1);
        agent_key = load_private(o.keyfile);
        uint8_t d[AC_RUNTIME_DIGEST_LEN];
        if (agent_key == NULL ||
            ac_runtime_header_parse(o.runtime, strlen(o.runtime), d) != AC_EC_OK) {
            fprintf(stderr, "bench_verify: cannot read the agent key or the runtime\n");
            return 1;
        }
        snprintf(runtime_hdr, sizeof runtime_hdr, "%s", o.runtime);
    } else {
        static const char sw[] =
            "sha-256:0000000000000000000000000000000000000000000000000000000000000000";
        static const char env[] =
            "sha-256:1111111111111111111111111111111111111111111111111111111111111111";
        agent_key = ac_sig_keygen(AC_SIG_ED25519);
        uint8_t d[AC_RUNTIME_DIGEST_LEN];
        if (agent_key == NULL || ac_runtime_digest(sw, "bench-model", env, d) != AC_EC_OK ||
            ac_runtime_header(d, runtime_hdr, sizeof runtime_hdr) < 0)
            return 1;
        if (start_server(&o, agent_key, sw, "bench-model", env) != 0) {
            ac_test_e2e_finish(1);
            return 1;
        }
        port = srv.port;
        char err[256];
        mon = ac_db_connect(o.url, AC_DB_PLAIN, err, sizeof err);
    }
    ac_jwk_thumbprint(agent_key, keyid);
    snprintf(authority, sizeof authority, "%s:%u", host, port);

    pid_t server = external ? o.server_pid : srv.pid;
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &server_addr.sin_addr) != 1) usage();

    /* presign on every core */
    n_reqs = o.presigned;
    reqs = calloc(n_reqs, sizeof *reqs);
    req_lens = calloc(n_reqs, sizeof *req_lens);
    if (reqs == NULL || req_lens == NULL) return 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nsign = ncpu > 0 && ncpu < 64 ? (int)ncpu : 2;
    pthread_t sth[64];
    struct sign_job jobs[64];
    double t_sign = now_s();
    for (int i = 0; i < nsign; i++) {
        jobs[i].from = n_reqs * (size_t)i / (size_t)nsign;
        jobs[i].to = n_reqs * (size_t)(i + 1) / (size_t)nsign;
        jobs[i].failed = 0;
        pthread_create(&sth[i], NULL, sign_range, &jobs[i]);
    }
    int sign_failed = 0;
    for (int i = 0; i < nsign; i++) {
        pthread_join(sth[i], NULL);
        sign_failed |= jobs[i].failed;
    }
    if (sign_failed) {
        fprintf(stderr, "bench_verify: signing failed\n");
        return 1;
    }
    fprintf(stderr,
            "bench_verify: %zu requests presigned in %.1f s; %d connections, server "
            "pid %d (%d threads)\n",
            n_reqs, now_s() - t_sign, o.connections, (int)server, o.server_threads);

    /* the run */
    pthread_t *cth = calloc((size_t)o.connections, sizeof *cth);
    if (cth == NULL) return 1;
    for (int i = 0; i < o.connections; i++)
        pthread_create(&cth[i], NULL, client, NULL);
    char pidpath[32];
    snprintf(pidpath, sizeof pidpath, "%d", (int)server);
    struct timespec ws = {.tv_sec = (time_t)o.warmup,
                          .tv_nsec = (long)((o.warmup - (double)(time_t)o.warmup) * 1e9)};
    nanosleep(&ws, NULL);
    double t0 = now_s(), cpu0 = proc_cpu_seconds(pidpath), pg0 = pg_cpu_seconds();
    uint64_t ok0 = atomic_load(&ok_count), err0 = atomic_load(&err_count);
    while (now_s() - t0 < o.seconds && atomic_load(&next_req) < n_reqs) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    double t1 = now_s(), cpu1 = proc_cpu_seconds(pidpath), pg1 = pg_cpu_seconds();
    uint64_t ok1 = atomic_load(&ok_count), err1 = atomic_load(&err_count);
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < o.connections; i++)
        pthread_join(cth[i], NULL);
    if (atomic_load(&next_req) >= n_reqs)
        fprintf(stderr,
                "bench_verify: the presigned requests ran out; the window was %.1f s "
                "(raise -n)\n",
                t1 - t0);

    double win = t1 - t0, rps = (double)(ok1 - ok0) / win;
    double cores = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / win : -1;
    double pg_cores = pg0 >= 0 && pg1 >= 0 ? (pg1 - pg0) / win : -1;
    printf("verify_rps %.1f\n", rps);
    printf("server_cores %.3f\n", cores);
    printf("verify_per_core %.1f\n", cores > 0 ? rps / cores : -1.0);
    printf("postgres_cores %.3f\n", pg_cores);
    printf("window_s %.2f\n", win);
    printf("requests %llu\n", (unsigned long long)(ok1 - ok0));
    printf("errors %llu\n", (unsigned long long)(err1 - err0));
    printf("connections %d\n", o.connections);
    printf("server_threads %d\n", o.server_threads);
    printf("replay_cache memory+postgresql\n");
    fflush(stdout);

    int failed = atomic_load(&err_count) != 0;
    if (!external && ac_test_server_stop(&srv, 30000) != 0) {
        fprintf(stderr, "bench_verify: the server did not stop cleanly\n");
        failed = 1;
    }
    if (mon) PQfinish(mon);
    for (size_t i = 0; i < n_reqs; i++)
        free(reqs[i]);
    free(reqs);
    free(req_lens);
    free(cth);
    EVP_PKEY_free(agent_key);
    if (!external) ac_test_e2e_finish(failed);
    return failed;
}
