/* server/config.h -- configuration from the environment and the command line. */
#ifndef AC_CONFIG_H
#define AC_CONFIG_H

#include <stddef.h>

struct ac_config {
    char database_url[1024];   /* AGENTCLEAR_DATABASE_URL */
    char listen_host[64];      /* AGENTCLEAR_LISTEN host part, default 127.0.0.1 */
    unsigned port;             /* AGENTCLEAR_LISTEN port part, default 8080 */
    char operator_token[256];  /* AGENTCLEAR_OPERATOR_TOKEN or _FILE; empty: operator API off */
    unsigned threads;          /* AGENTCLEAR_THREADS, default: number of cores */
    unsigned db_pool;          /* AGENTCLEAR_DB_POOL, default threads + 2 */
    size_t max_body;           /* AGENTCLEAR_MAX_BODY bytes, default 1 MiB */
    unsigned max_batch;        /* AGENTCLEAR_MAX_BATCH items per sequencer batch, default 8192 */
    int pipeline_off;          /* AGENTCLEAR_PIPELINE "on" (default) or "off": whether the
                                * sequencer applies and sends the next batch while PostgreSQL
                                * commits the one before (ledger/sequencer.h) */
    int event_loop_poll;       /* AGENTCLEAR_EVENT_LOOP "epoll" (default) or "poll": how the HTTP
                                * threads wait for their connections (server/daemon.c) */
    int partition;             /* AGENTCLEAR_PARTITION writer-lease key, default 0 */
    char keys_dir[1024];       /* AGENTCLEAR_KEYS_DIR server signing key files; empty: none */
    /* signed requests (server/authn.h) */
    char public_url[256];   /* AGENTCLEAR_PUBLIC_URL "https://host[:port]": the scheme and authority
                               clients sign in @target-uri; empty: "http" and the Host header */
    long sig_skew;          /* AGENTCLEAR_SIG_SKEW seconds created may differ from now, default 60 */
    long sig_max_age;       /* AGENTCLEAR_SIG_MAX_AGE seconds a signature without expires lives,
                               default 300; 0: expires is required */
    size_t nonce_cache;     /* AGENTCLEAR_NONCE_CACHE nonces kept in memory, default 1048576 */
    /* payments (ledger/payments.h) */
    long stepup_ttl; /* AGENTCLEAR_STEPUP_TTL seconds a step-up challenge lives, default 600 */
    /* the evidence log (ledger/evlog.h, docs/evidence.md) */
    char evidence_origin[128]; /* AGENTCLEAR_EVIDENCE_ORIGIN checkpoint origin (a note key name:
                                  no spaces, no '+'), default "agentclear.local/<partition>" */
    unsigned long checkpoint_every; /* AGENTCLEAR_CHECKPOINT_EVERY records, default 1024 */
    unsigned long checkpoint_ms;    /* AGENTCLEAR_CHECKPOINT_MS milliseconds, default 1000 */
    /* AGENTCLEAR_EVIDENCE "on" (default) or "off": off writes no evidence records at all. For
     * measuring the evidence log's cost only (ops/bench e2e), NEVER in production: it is refused
     * unless AGENTCLEAR_BENCHMARK_ONLY=yes is also given. */
    int evidence_off;
    int benchmark_only; /* AGENTCLEAR_BENCHMARK_ONLY "yes": allow benchmark-only settings */
    /* Idempotency-Key (server/idem.h) */
    long idem_retention;  /* AGENTCLEAR_IDEMPOTENCY_RETENTION seconds a key is kept, default and
                             minimum 86400 */
    size_t idem_inflight; /* AGENTCLEAR_IDEMPOTENCY_INFLIGHT keys being processed at once, default
                             65536; more answer 503 overloaded */
};

/* Fill cfg from the environment, then from "--key=value" arguments (same names, lowercase,
 * without the prefix: --database-url=, --listen=, ...). Returns 0, or -1 with a message in err. */
int ac_config_load(struct ac_config *cfg, int argc, char **argv, char *err, size_t errlen);

#endif
