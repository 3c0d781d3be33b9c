/* tests/bench/bench_verify.c -- signed requests verified per second through the full HTTP path.
 *
 * usage: bench_verify -b agentclear [-s seconds] [-w warmup_s] [-c connections] [-t server_threads]
 *                     [-n presigned] [-C client_threads] [-d depth] [database-url]
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
 * are signed before the timed window, on all cores. Then `connections` keep-alive HTTP/1.1
 * connections send them in order: with -C 0 (the default here) one blocking client thread per
 * connection and one request in flight each; with -C n, n event-driven client threads (epoll)
 * share the connections and each connection keeps `depth` requests in flight (pipelined; ops/bench
 * uses -C 1 -d 4, so that the server's CPU does not also pay for waking a client thread per
 * answer, which a remote client would not cost it). After the
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
 *   server_cpu_us_per_request     server CPU microseconds per verified request (1e6 / per_core)
 *   p50_ms, p99_ms                latency of the window's 200 answers (tests/bench/benchutil.h)
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
#include "tests/bench/benchutil.h"
#include "tests/support/server.h"

struct opts {
    const char *url;    /* database (self-hosted) */
    const char *target; /* host:port (external) */
    const char *keyfile, *runtime;
    pid_t server_pid;
    double seconds, warmup;
    int connections, server_threads;
    int client_threads, depth; /* 0: a blocking thread per connection (benchutil.h) */
    size_t presigned;
    const char *binary; /* agentclear (self-hosted) */
};

static PGconn *mon; /* pg_stat_activity, for PostgreSQL's CPU */

/* ---- the self-hosted server ------------------------------------------------------------------ */

static struct ac_test_server srv;

/* Start `agentclear serve` and register a user and a binding of agent (with this runtime)
 * through the HTTP API. Returns 0, or -1 (with a message). */
static int start_server(const struct opts *o, EVP_PKEY *agent, const char *software,
                        const char *model, const char *environment)
{
    char token[64];
    if (ac_bench_server_start(&srv, "bench-verify", o->binary, o->url, o->server_threads, NULL,
                              token) != 0)
        return -1;

    EVP_PKEY *user = ac_sig_keygen(AC_SIG_ED25519);
    char *ujwk = user ? ac_jwk_public_text(user) : NULL;
    json_t *agent_jwk = ac_jwk_export_public(agent);
    char kid[AC_JWK_THUMBPRINT_SIZE], body[2048];
    int rc = -1;
    if (ujwk == NULL || agent_jwk == NULL || ac_jwk_thumbprint(user, kid) != 0) goto out;
    snprintf(body, sizeof body, "{\"id\":\"bench-user\",\"keys\":[%s]}", ujwk);
    if (ac_bench_post(srv.port, "/v1/users", body, token, 201) != 201) goto out;
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
    if (btext != NULL && ac_bench_post(srv.port, "/v1/bindings", btext, NULL, 201) == 201) rc = 0;
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
static size_t n_reqs;
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

static int64_t created;

static int sign_one(size_t i, void *ctx)
{
    (void)ctx;
    static const char *const comps[] = {"@method", "@target-uri", "agent-runtime", NULL};
    struct ac_http_request req = {.method = "GET",
                                  .scheme = "http",
                                  .authority = authority,
                                  .path = "/v1/whoami",
                                  .header = sign_header};
    {
        uint8_t rnd[16];
        char nonce[32], si[1024], sig[256];
        if (RAND_bytes(rnd, sizeof rnd) != 1) return -1;
        ac_b64_encode(rnd, sizeof rnd, nonce, 1);
        struct ac_httpsig_sign_opts so = {.label = "sig1",
                                          .components = comps,
                                          .keyid = keyid,
                                          .created = created,
                                          .expires = created + 120,
                                          .nonce = nonce,
                                          .tag = "agentclear",
                                          .with_alg = 1};
        if (ac_httpsig_sign(agent_key, &req, &so, si, sizeof si, sig, sizeof sig) != AC_EC_OK)
            return -1;
        char buf[2048];
        int n = snprintf(buf, sizeof buf,
                         "GET /v1/whoami HTTP/1.1\r\nHost: %s\r\nAgent-Runtime: %s\r\n"
                         "Signature-Input: %s\r\nSignature: %s\r\n\r\n",
                         authority, runtime_hdr, si, sig);
        reqs[i] = malloc((size_t)n + 1);
        if (n <= 0 || (size_t)n >= sizeof buf || reqs[i] == NULL) return -1;
        memcpy(reqs[i], buf, (size_t)n + 1);
        req_lens[i] = (size_t)n;
    }
    return 0;
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
    while ((c = getopt(argc, argv, "s:w:c:t:n:u:p:k:r:b:C:d:")) != -1) {
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
        case 'C':
            o.client_threads = atoi(optarg);
            break;
        case 'd':
            o.depth = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    o.url = optind < argc ? argv[optind] : getenv("AGENTCLEAR_DATABASE_URL");
    if (o.seconds <= 0 || o.warmup < 0 || o.connections < 1 || o.connections > 1024 ||
        o.server_threads < 1 || o.presigned < 1 || o.client_threads < 0 || o.client_threads > 64 ||
        o.depth < 0 || o.depth > 64)
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

    /* presign on every core */
    n_reqs = o.presigned;
    reqs = calloc(n_reqs, sizeof *reqs);
    req_lens = calloc(n_reqs, sizeof *req_lens);
    if (reqs == NULL || req_lens == NULL) return 1;
    double t_sign = ac_bench_now();
    created = (int64_t)time(NULL);
    if (ac_bench_parallel(n_reqs, sign_one, NULL) != 0) {
        fprintf(stderr, "bench_verify: signing failed\n");
        return 1;
    }
    fprintf(stderr,
            "bench_verify: %zu requests presigned in %.1f s; %d connections, server "
            "pid %d (%d threads)\n",
            n_reqs, ac_bench_now() - t_sign, o.connections, (int)server, o.server_threads);

    /* the run */
    struct ac_bench_load l = {.host = host,
                              .port = port,
                              .reqs = reqs,
                              .lens = req_lens,
                              .n = n_reqs,
                              .connections = o.connections,
                              .want = 200,
                              .seconds = o.seconds,
                              .warmup = o.warmup,
                              .server = server,
                              .mon = mon,
                              .who = "bench_verify",
                              .client_threads = o.client_threads,
                              .depth = o.depth};
    struct ac_bench_result res;
    if (ac_bench_run(&l, &res) != 0) return 1;
    printf("verify_rps %.1f\n", res.rps);
    printf("server_cores %.3f\n", res.server_cores);
    printf("verify_per_core %.1f\n", res.server_cores > 0 ? res.rps / res.server_cores : -1.0);
    /* the figure that does not depend on how busy the machine is: server CPU per answer */
    printf("server_cpu_us_per_request %.1f\n",
           res.server_cores > 0 && res.rps > 0 ? 1e6 * res.server_cores / res.rps : -1.0);
    printf("postgres_cores %.3f\n", res.pg_cores);
    printf("p50_ms %.2f\n", res.p50_ms);
    printf("p99_ms %.2f\n", res.p99_ms);
    printf("window_s %.2f\n", res.window_s);
    printf("requests %llu\n", (unsigned long long)res.ok);
    printf("errors %llu\n", (unsigned long long)res.errors);
    printf("connections %d\n", o.connections);
    printf("client_threads %d\n", o.client_threads);
    printf("depth %d\n", o.client_threads > 0 ? (o.depth > 0 ? o.depth : 1) : 1);
    printf("server_threads %d\n", o.server_threads);
    printf("replay_cache memory+postgresql\n");
    fflush(stdout);

    int failed = res.errors_total != 0;
    if (!external && ac_test_server_stop(&srv, 30000) != 0) {
        fprintf(stderr, "bench_verify: the server did not stop cleanly\n");
        failed = 1;
    }
    if (mon) PQfinish(mon);
    for (size_t i = 0; i < n_reqs; i++)
        free(reqs[i]);
    free(reqs);
    free(req_lens);
    EVP_PKEY_free(agent_key);
    if (!external) ac_test_e2e_finish(failed);
    return failed;
}
