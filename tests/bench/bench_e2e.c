/* tests/bench/bench_e2e.c -- signed payments settled per second through the whole server.
 *
 * usage: bench_e2e -b agentclear [-s seconds] [-w warmup_s] [-c connections] [-t server_threads]
 *                  [-a agents] [-n presigned] [-T tab_presigned] [-e on|off]
 *                  [-C client_threads] [-d depth] [-L epoll|poll] database-url
 *
 * Starts the real server (`agentclear serve`, the binary given with -b) on a fresh database with
 * a server signing key (so evidence checkpoints are signed, as in production) and sets up, through
 * the HTTP API like any deployment: the asset CNY, ONE hot merchant `hot` with its wallet
 * `merchant:hot:cny`, and `agents` simulated agents, each with its own user `u<i>` (own Ed25519
 * key), wallet `user:u<i>:cny` (debits_must_not_exceed_credits, funded by the operator with a
 * transfer from `bank:cny`), agent key, user-signed binding `b<i>` of agent `a<i>` (max autonomy
 * L5) and user-signed mandate `m<i>` (L5, purchases at `hot` up to 100.00 each, no caps or uses
 * limit: nothing in it interferes).
 *
 * Then `presigned` POST /v1/payments requests are signed on every core before the timed window:
 * request k belongs to agent k mod agents, has its own payment id `p<k>`, pays 0.01 CNY to `hot`
 * under that agent's mandate, and carries an RFC 9421 signature (fresh nonce, created now, expires
 * in 120 s) over @method, @target-uri, agent-runtime and content-digest. They are driven closed
 * loop over `connections` keep-alive connections (benchutil.h; -C client_threads, default 1:
 * event-driven client threads share the connections, each keeping -d depth requests in flight,
 * default 1, pipelined; -C 0: the old client, one blocking thread per connection): every one
 * goes through the full
 * path -- signature verification and the replay cache, the binding, the mandate and the risk
 * decision, the ledger transfer, the evidence record (unless -e off) and the durable commit.
 * 201 (settled) answers in the window count.
 *
 * Tabs (after the payments): every agent opens one micropayment tab at `hot` (POST /v1/tabs, hold
 * 100.00, agent-signed), and `tab_presigned` (-T, default 60000) POST /v1/tabs/{id}/settle
 * requests are presigned by the merchant (RFC 9421 over @method, @target-uri, content-digest),
 * each carrying an agent-signed voucher: request k settles tab k mod agents with voucher sequence
 * k / agents + 1 and cumulative 0.01 times that -- ever-higher vouchers on many open tabs, each
 * posting 0.01. They are driven like the payments (same connections, warm-up and window), except
 * that each tab's settlements go in order on one connection, as its merchant would send them (a
 * later voucher overtaking an earlier one on another connection is rightly refused, 409
 * voucher_not_monotonic); 200 answers count: tab_sps, tab_p50_ms, tab_p99_ms, tab_errors,
 * tab_settled_rows.
 *
 * -e off starts the server with evidence=off and benchmark-only=yes (server/config.h): the same
 * path without evidence records, to measure what the evidence log costs. Never for production.
 *
 * -L sets the server's HTTP event loop (AGENTCLEAR_EVENT_LOOP, default here epoll, as the server's;
 * ops/bench e2e passes poll: docs/operations.md says which suits how many connections).
 *
 * Output, one figure a line (ops/bench reads it): e2e_pps, p50_ms, p99_ms, server_cores,
 * postgres_cores, client_cores, cpu_us_per_payment (server + PostgreSQL + client CPU over the
 * window per settled payment; server_cpu_us, pg_cpu_us, client_cpu_us its parts), writer_cpu,
 * writer_runq, writer_disk, writer_idle (the sequencer's PostgreSQL backend, the serial stage:
 * shares of the window on a CPU, waiting for one, in fsync, idle; struct ac_bench_result) and
 * writer_cpu_us (its CPU per settled payment), window_s,
 * payments, errors, settled_rows (the database's count of settled
 * payments after the run), batches, avg_batch_items, avg_commit_ms (the sequencer's /metrics over
 * the run, warm-up included), evidence on|off, agents, connections, server_threads, event_loop.
 * Exit status 0, or 1 when setup failed or an answer was not 201. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ledger/db.h"
#include "protocol/voucher.h"
#include "tests/support/httpc.h"
#include "tests/support/payflow.h"
#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"
#include "protocol/runtime.h"
#include "protocol/sig.h"
#include "tests/bench/benchutil.h"
#include "tests/support/agentsig.h"
#include "tests/support/httpc.h"
#include "tests/support/identity.h"
#include "tests/support/server.h"

#define DAY 86400

static struct ac_test_server srv;
static char token[64];

struct agent {
    EVP_PKEY *key;
    char kid[AC_JWK_THUMBPRINT_SIZE];
};
static struct agent *agents;
static int n_agents;
static EVP_PKEY *merchant_key;
static char merchant_kid[AC_JWK_THUMBPRINT_SIZE];

/* POST with the operator token (or none) expecting want; -1 otherwise. */
static int post(const char *path, const char *json, int operator, int want)
{
    return ac_bench_post(srv.port, path, json, operator? token : NULL, want) == want ? 0 : -1;
}

/* POST a document signed by key (payload stolen) as {"jws": ...}. */
static int post_doc(const char *path, EVP_PKEY *key, const char *typ, json_t *payload)
{
    char *jws = ac_test_sign_doc(key, typ, payload, NULL);
    json_decref(payload);
    char *body = ac_test_jws_body(jws);
    int rc = post(path, body, 0, 201);
    free(body);
    free(jws);
    return rc;
}

static int setup_world(void)
{
    char body[4096];
    if (post("/v1/ledger/assets", "{\"code\":\"CNY\",\"scale\":2}", 1, 201) != 0) return -1;
    EVP_PKEY *mk = merchant_key = ac_sig_keygen(AC_SIG_ED25519);
    char *mj = mk ? ac_test_jwk_text(mk) : NULL;
    if (mj == NULL || ac_jwk_thumbprint(mk, merchant_kid) != 0) return -1;
    snprintf(body, sizeof body,
             "{\"id\":\"hot\",\"name\":\"Hot Merchant\",\"category\":\"books\",\"keys\":[%s]}", mj);
    free(mj);
    if (post("/v1/merchants", body, 1, 201) != 0) return -1;
    if (post("/v1/ledger/accounts",
             "{\"accounts\":[{\"id\":\"bank:cny\",\"asset\":\"CNY\"},"
             "{\"id\":\"merchant:hot:cny\",\"asset\":\"CNY\",\"owner\":\"hot\"}]}",
             1, 200) != 0)
        return -1;
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < n_agents; i++) {
        char user[32], agent[32], binding[32], mandate[32];
        snprintf(user, sizeof user, "u%d", i);
        snprintf(agent, sizeof agent, "a%d", i);
        snprintf(binding, sizeof binding, "b%d", i);
        snprintf(mandate, sizeof mandate, "m%d", i);
        EVP_PKEY *uk = ac_sig_keygen(AC_SIG_ED25519);
        agents[i].key = ac_sig_keygen(AC_SIG_ED25519);
        char *uj = uk ? ac_test_jwk_text(uk) : NULL;
        if (uj == NULL || agents[i].key == NULL ||
            ac_jwk_thumbprint(agents[i].key, agents[i].kid) != 0)
            return -1;
        snprintf(body, sizeof body, "{\"id\":\"%s\",\"keys\":[%s]}", user, uj);
        free(uj);
        int rc = post("/v1/users", body, 1, 201);
        snprintf(body, sizeof body,
                 "{\"accounts\":[{\"id\":\"user:%s:cny\",\"asset\":\"CNY\",\"owner\":\"%s\","
                 "\"flags\":[\"debits_must_not_exceed_credits\"]}]}",
                 user, user);
        if (rc == 0) rc = post("/v1/ledger/accounts", body, 1, 200);
        snprintf(body, sizeof body,
                 "{\"transfers\":[{\"id\":\"fund-%s\",\"debit_account\":\"bank:cny\","
                 "\"credit_account\":\"user:%s:cny\",\"amount\":\"1000000.00\","
                 "\"asset\":\"CNY\"}]}",
                 user, user);
        if (rc == 0) rc = post("/v1/ledger/transfers", body, 1, 200);
        json_t *bp =
            ac_test_binding_payload(binding, user, agent, agents[i].key, now - 10, now + 30 * DAY);
        json_object_set_new(bp, "max_autonomy", json_string("L5"));
        if (rc == 0)
            rc = post_doc("/v1/bindings", uk, AC_BINDING_TYP, bp);
        else
            json_decref(bp);
        json_t *mp = ac_test_mandate_payload(mandate, user, agent, "hot", "CNY", "100.00", "L5");
        if (rc == 0)
            rc = post_doc("/v1/mandates", uk, AC_MANDATE_TYP, mp);
        else
            json_decref(mp);
        EVP_PKEY_free(uk);
        if (rc != 0) return -1;
    }
    return 0;
}

/* ---- presigned payments --------------------------------------------------------------------- */

static char **reqs;
static size_t *req_lens;
static size_t n_reqs;
static char runtime_hdr[AC_RUNTIME_HEADER_MAX + 1];
static char authority[64];
static int64_t created;

struct hdrs {
    const char *digest;
};

static const char *sign_header(void *ctx, const char *lname)
{
    const struct hdrs *h = ctx;
    if (strcmp(lname, "agent-runtime") == 0) return runtime_hdr;
    if (strcmp(lname, "content-digest") == 0) return h->digest;
    return NULL;
}

static int sign_one(size_t i, void *ctx)
{
    (void)ctx;
    static const char *const comps[] = {"@method", "@target-uri", "agent-runtime", "content-digest",
                                        NULL};
    const struct agent *ag = &agents[i % (size_t)n_agents];
    char body[256], digest[128], nonce[32], si[1024], sig[256];
    int blen = snprintf(body, sizeof body,
                        "{\"id\":\"p%zu\",\"mandate\":\"m%zu\",\"payee\":\"hot\","
                        "\"amount\":{\"currency\":\"CNY\",\"value\":\"0.01\"}}",
                        i, i % (size_t)n_agents);
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1 ||
        ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)body, (size_t)blen, digest,
                         sizeof digest) <= 0)
        return -1;
    ac_b64_encode(rnd, sizeof rnd, nonce, 1);
    struct hdrs h = {digest};
    struct ac_http_request req = {.method = "POST",
                                  .scheme = "http",
                                  .authority = authority,
                                  .path = "/v1/payments",
                                  .has_body = 1,
                                  .header = sign_header,
                                  .header_ctx = &h};
    struct ac_httpsig_sign_opts so = {.label = "sig1",
                                      .components = comps,
                                      .keyid = ag->kid,
                                      .created = created,
                                      .expires = created + 120,
                                      .nonce = nonce,
                                      .tag = "agentclear",
                                      .with_alg = 1};
    if (ac_httpsig_sign(ag->key, &req, &so, si, sizeof si, sig, sizeof sig) != AC_EC_OK) return -1;
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "POST /v1/payments HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nContent-Digest: %s\r\nAgent-Runtime: %s\r\n"
                     "Signature-Input: %s\r\nSignature: %s\r\n\r\n%s",
                     authority, blen, digest, runtime_hdr, si, sig, body);
    if (n <= 0 || (size_t)n >= sizeof buf || (reqs[i] = malloc((size_t)n + 1)) == NULL) return -1;
    memcpy(reqs[i], buf, (size_t)n + 1);
    req_lens[i] = (size_t)n;
    return 0;
}

/* ---- tabs ------------------------------------------------------------------------------------ */

static char **treqs;
static size_t *treq_lens;
static size_t n_treqs;

/* Request k: the merchant settles tab "t<k mod agents>" with voucher seq k / agents + 1. */
static int sign_settle(size_t k, void *ctx)
{
    (void)ctx;
    static const char *const comps[] = {"@method", "@target-uri", "content-digest", NULL};
    size_t a = k % (size_t)n_agents;
    int64_t seq = (int64_t)(k / (size_t)n_agents) + 1;
    char tab[32], path[64];
    snprintf(tab, sizeof tab, "t%zu", a);
    snprintf(path, sizeof path, "/v1/tabs/%s/settle", tab);
    char *v = ac_voucher_sign(agents[a].key, tab, seq, "CNY", seq, 2);
    if (v == NULL) return -1;
    char body[1024], digest[128], nonce[32], si[1024], sig[256];
    int blen = snprintf(body, sizeof body, "{\"voucher\":\"%s\"}", v);
    free(v);
    uint8_t rnd[16];
    if (blen <= 0 || (size_t)blen >= sizeof body || RAND_bytes(rnd, sizeof rnd) != 1 ||
        ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)body, (size_t)blen, digest,
                         sizeof digest) <= 0)
        return -1;
    ac_b64_encode(rnd, sizeof rnd, nonce, 1);
    struct hdrs h = {digest};
    struct ac_http_request req = {.method = "POST",
                                  .scheme = "http",
                                  .authority = authority,
                                  .path = path,
                                  .has_body = 1,
                                  .header = sign_header,
                                  .header_ctx = &h};
    struct ac_httpsig_sign_opts so = {.label = "sig1",
                                      .components = comps,
                                      .keyid = merchant_kid,
                                      .created = created,
                                      .expires = created + 300,
                                      .nonce = nonce,
                                      .tag = "agentclear",
                                      .with_alg = 1};
    if (ac_httpsig_sign(merchant_key, &req, &so, si, sizeof si, sig, sizeof sig) != AC_EC_OK)
        return -1;
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nContent-Digest: %s\r\nSignature-Input: %s\r\n"
                     "Signature: %s\r\n\r\n%s",
                     path, authority, blen, digest, si, sig, body);
    if (n <= 0 || (size_t)n >= sizeof buf || (treqs[k] = malloc((size_t)n + 1)) == NULL) return -1;
    memcpy(treqs[k], buf, (size_t)n + 1);
    treq_lens[k] = (size_t)n;
    return 0;
}

/* Every agent opens tab t<i> at hot (hold 100.00, an hour). 0 or -1. */
static int open_tabs(void)
{
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 30000);
    int rc = 0;
    for (int i = 0; i < n_agents && rc == 0; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"id\":\"t%d\",\"mandate\":\"m%d\",\"payee\":\"hot\","
                 "\"amount\":{\"currency\":\"CNY\",\"value\":\"100.00\"},"
                 "\"expires_in\":3600}",
                 i, i);
        struct ac_test_http_resp r;
        int st = ac_test_signed_post(&c, srv.port, agents[i].key, "/v1/tabs", body, &r);
        if (st != 201) {
            fprintf(stderr, "bench_e2e: opening tab t%d: %d %s\n", i, st, r.body ? r.body : "");
            rc = -1;
        }
        ac_test_http_resp_free(&r);
    }
    ac_test_http_close(&c);
    return rc;
}

/* ---- the sequencer's own figures (GET /metrics) -----------------------------------------------
 */

struct seqfig {
    double batch_sum, batch_count, commit_sum, commit_count;
};

static double metric(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    if (p == NULL) return -1;
    p = strchr(p, ' ');
    return p ? atof(p + 1) : -1;
}

static struct seqfig seq_figures(void)
{
    struct seqfig f = {-1, -1, -1, -1};
    struct ac_test_http c;
    ac_test_http_init(&c, "127.0.0.1", srv.port, 20000);
    struct ac_test_http_resp r;
    if (ac_test_http_api(&c, "GET", "/metrics", token, NULL, &r) == 200 && r.body) {
        f.batch_sum = metric(r.body, "agentclear_batch_items_sum{");
        f.batch_count = metric(r.body, "agentclear_batch_items_count{");
        f.commit_sum = metric(r.body, "agentclear_commit_seconds_sum{");
        f.commit_count = metric(r.body, "agentclear_commit_seconds_count{");
    }
    ac_test_http_resp_free(&r);
    ac_test_http_close(&c);
    return f;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: bench_e2e -b agentclear [-s seconds] [-w warmup] [-c connections] "
                    "[-t server_threads] [-a agents] [-n presigned] [-T tab_presigned] [-e on|off] "
                    "[-C client_threads] [-d depth] [-L epoll|poll] database-url\n");
    exit(2);
}

static long long sql_count(const char *url, const char *q)
{
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) return -1;
    PGresult *r = PQexec(c, q);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

int main(int argc, char **argv)
{
    double seconds = 10, warmup = 2;
    int connections = 128, threads = 2, evidence = 1, client_threads = 1, depth = 1;
    size_t presigned = 150000;
    const char *binary = NULL, *loop = "epoll";
    n_agents = 256;
    int c;
    size_t tab_presigned = 60000;
    while ((c = getopt(argc, argv, "s:w:c:t:a:n:e:b:T:C:d:L:")) != -1) {
        switch (c) {
        case 'C':
            client_threads = atoi(optarg);
            break;
        case 'd':
            depth = atoi(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'w':
            warmup = atof(optarg);
            break;
        case 'c':
            connections = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'a':
            n_agents = atoi(optarg);
            break;
        case 'n':
            presigned = strtoul(optarg, NULL, 10);
            break;
        case 'e':
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) usage();
            evidence = strcmp(optarg, "on") == 0;
            break;
        case 'b':
            binary = optarg;
            break;
        case 'L':
            if (strcmp(optarg, "epoll") != 0 && strcmp(optarg, "poll") != 0) usage();
            loop = optarg;
            break;
        case 'T':
            tab_presigned = strtoul(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    const char *url = optind < argc ? argv[optind] : NULL;
    if (url == NULL || binary == NULL || seconds <= 0 || warmup < 0 || connections < 1 ||
        connections > 1024 || threads < 1 || n_agents < 1 || n_agents > 100000 || presigned < 1 ||
        client_threads < 0 || client_threads > 64 || depth < 1 || depth > 64)
        usage();

    /* a server signing key: evidence checkpoints are signed, as in production */
    char dir[1024], keyfile[1100], keys_env[1100];
    snprintf(dir, sizeof dir, "%s/keys", ac_test_tmpdir());
    snprintf(keyfile, sizeof keyfile, "--out=%s/server.jwk", dir);
    snprintf(keys_env, sizeof keys_env, "AGENTCLEAR_KEYS_DIR=%s", dir);
    if (setenv("AC_BINARY", binary, 1) != 0) return 1;
    char *kg[] = {(char *)binary, "keygen", keyfile, "--alg=ed25519", NULL};
    if (mkdir(dir, 0700) != 0 || ac_test_run("keygen", kg, 30000) != 0) {
        fprintf(stderr, "bench_e2e: cannot make the server key\n");
        return 1;
    }
    char loop_env[64];
    snprintf(loop_env, sizeof loop_env, "AGENTCLEAR_EVENT_LOOP=%s", loop);
    const char *env_on[] = {keys_env, loop_env, NULL};
    const char *env_off[] = {keys_env, loop_env, "AGENTCLEAR_EVIDENCE=off",
                             "AGENTCLEAR_BENCHMARK_ONLY=yes", NULL};
    agents = calloc((size_t)n_agents, sizeof *agents);
    if (agents == NULL) return 1;
    double t_setup = ac_bench_now();
    if (ac_bench_server_start(&srv, "bench-e2e", binary, url, threads, evidence ? env_on : env_off,
                              token) != 0 ||
        setup_world() != 0) {
        fprintf(stderr, "bench_e2e: setup failed\n");
        ac_test_e2e_finish(1);
        return 1;
    }
    fprintf(stderr, "bench_e2e: %d agents set up over HTTP in %.1f s\n", n_agents,
            ac_bench_now() - t_setup);

    uint8_t d[AC_RUNTIME_DIGEST_LEN];
    if (ac_runtime_digest(AC_TEST_SW, AC_TEST_MODEL, AC_TEST_ENV, d) != AC_EC_OK ||
        ac_runtime_header(d, runtime_hdr, sizeof runtime_hdr) < 0)
        return 1;
    snprintf(authority, sizeof authority, "127.0.0.1:%u", srv.port);
    n_reqs = presigned;
    reqs = calloc(n_reqs, sizeof *reqs);
    req_lens = calloc(n_reqs, sizeof *req_lens);
    if (reqs == NULL || req_lens == NULL) return 1;
    double t_sign = ac_bench_now();
    created = (int64_t)time(NULL);
    if (ac_bench_parallel(n_reqs, sign_one, NULL) != 0) {
        fprintf(stderr, "bench_e2e: signing failed\n");
        return 1;
    }
    fprintf(stderr,
            "bench_e2e: %zu payments presigned in %.1f s; %d connections, server pid %d "
            "(%d threads), evidence %s\n",
            n_reqs, ac_bench_now() - t_sign, connections, (int)srv.pid, threads,
            evidence ? "on" : "off");

    char err[256];
    PGconn *mon = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    struct ac_bench_load l = {.host = "127.0.0.1",
                              .port = srv.port,
                              .reqs = reqs,
                              .lens = req_lens,
                              .n = n_reqs,
                              .connections = connections,
                              .want = 201,
                              .seconds = seconds,
                              .warmup = warmup,
                              .server = srv.pid,
                              .mon = mon,
                              .who = "bench_e2e",
                              .client_threads = client_threads,
                              .depth = depth};
    struct ac_bench_result res;
    struct seqfig f0 = seq_figures();
    if (ac_bench_run(&l, &res) != 0) return 1;
    struct seqfig f1 = seq_figures();
    double nb = f1.batch_count - f0.batch_count, nc = f1.commit_count - f0.commit_count;
    if (mon) PQfinish(mon);
    long long settled = sql_count(url, "select count(*) from ac_payments where status = 'settled'");
    printf("e2e_pps %.1f\n", res.rps);
    printf("p50_ms %.2f\n", res.p50_ms);
    printf("p99_ms %.2f\n", res.p99_ms);
    printf("server_cores %.3f\n", res.server_cores);
    printf("postgres_cores %.3f\n", res.pg_cores);
    printf("client_cores %.3f\n", res.client_cores);
    if (res.rps > 0 && res.server_cores >= 0 && res.pg_cores >= 0 && res.client_cores >= 0) {
        printf("server_cpu_us %.1f\n", 1e6 * res.server_cores / res.rps);
        printf("pg_cpu_us %.1f\n", 1e6 * res.pg_cores / res.rps);
        printf("client_cpu_us %.1f\n", 1e6 * res.client_cores / res.rps);
        printf("cpu_us_per_payment %.1f\n",
               1e6 * (res.server_cores + res.pg_cores + res.client_cores) / res.rps);
    }
    if (res.writer_cpu >= 0) {
        printf("writer_cpu %.3f\n", res.writer_cpu);
        printf("writer_runq %.3f\n", res.writer_runq);
        printf("writer_disk %.3f\n", res.writer_disk);
        printf("writer_idle %.3f\n", res.writer_idle);
        if (res.rps > 0) printf("writer_cpu_us %.1f\n", 1e6 * res.writer_cpu / res.rps);
    }
    printf("window_s %.2f\n", res.window_s);
    printf("payments %llu\n", (unsigned long long)res.ok);
    printf("errors %llu\n", (unsigned long long)res.errors);
    printf("settled_rows %lld\n", settled);
    /* the sequencer over the whole run (warm-up included): batches, items a batch, commit time */
    printf("batches %.0f\n", nb);
    printf("avg_batch_items %.1f\n", nb > 0 ? (f1.batch_sum - f0.batch_sum) / nb : -1.0);
    printf("avg_commit_ms %.2f\n", nc > 0 ? 1000 * (f1.commit_sum - f0.commit_sum) / nc : -1.0);
    fflush(stdout);

    /* tabs: every agent opens one, then the merchant settles ever-higher vouchers */
    int tab_failed = 0;
    if (tab_presigned > (size_t)n_agents * 10000) tab_presigned = (size_t)n_agents * 10000;
    n_treqs = tab_presigned;
    treqs = calloc(n_treqs, sizeof *treqs);
    treq_lens = calloc(n_treqs, sizeof *treq_lens);
    created = (int64_t)time(NULL);
    if (treqs == NULL || treq_lens == NULL || open_tabs() != 0 ||
        ac_bench_parallel(n_treqs, sign_settle, NULL) != 0) {
        fprintf(stderr, "bench_e2e: tab setup failed\n");
        tab_failed = 1;
    } else {
        mon = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
        struct ac_bench_load tl = l;
        tl.reqs = treqs;
        tl.lens = treq_lens;
        tl.n = n_treqs;
        tl.want = 200;
        tl.pin_groups = (size_t)n_agents; /* one tab per agent: its vouchers in order */
        tl.mon = mon;
        tl.who = "bench_e2e tabs";
        struct ac_bench_result tr;
        if (ac_bench_run(&tl, &tr) != 0) {
            tab_failed = 1;
        } else {
            printf("tab_sps %.1f\n", tr.rps);
            printf("tab_p50_ms %.2f\n", tr.p50_ms);
            printf("tab_p99_ms %.2f\n", tr.p99_ms);
            printf("tab_server_cores %.3f\n", tr.server_cores);
            printf("tab_errors %llu\n", (unsigned long long)tr.errors);
            printf("tab_settled_rows %lld\n",
                   sql_count(url, "select count(*) from ac_tab_settlements"));
            tab_failed = tr.errors_total != 0;
        }
        if (mon) PQfinish(mon);
    }
    for (size_t i = 0; treqs && i < n_treqs; i++)
        free(treqs[i]);
    free(treqs);
    free(treq_lens);
    printf("evidence %s\n", evidence ? "on" : "off");
    printf("agents %d\n", n_agents);
    printf("connections %d\n", connections);
    printf("server_threads %d\n", threads);
    printf("event_loop %s\n", loop);
    printf("client_threads %d\n", client_threads);
    printf("depth %d\n", client_threads > 0 ? depth : 1);
    fflush(stdout);

    int failed = res.errors_total != 0 || tab_failed;
    if (ac_test_server_stop(&srv, 30000) != 0) {
        fprintf(stderr, "bench_e2e: the server did not stop cleanly\n");
        failed = 1;
    }
    for (size_t i = 0; i < n_reqs; i++)
        free(reqs[i]);
    free(reqs);
    free(req_lens);
    for (int i = 0; i < n_agents; i++)
        EVP_PKEY_free(agents[i].key);
    free(agents);
    EVP_PKEY_free(merchant_key);
    ac_test_e2e_finish(failed);
    return failed;
}
