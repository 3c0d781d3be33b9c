#include "server/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "http://" or "https://", then an authority of [A-Za-z0-9.:[\]-] (host, port, IPv6 literal),
 * then nothing or "/". */
static int public_url_ok(const char *v)
{
    const char *a = strncmp(v, "https://", 8) == 0  ? v + 8
                    : strncmp(v, "http://", 7) == 0 ? v + 7
                                                    : NULL;
    if (a == NULL || *a == '\0' || *a == '/') return 0;
    for (; *a && *a != '/'; a++)
        if (!isalnum((unsigned char)*a) && strchr(".:[]-", *a) == NULL) return 0;
    return *a == '\0' || strcmp(a, "/") == 0;
}

/* A setting of two words a and b: *out = 1 when val is `one` of them, 0 for the other; -1 with
 * "key must be a or b" for anything else. */
static int choice(const char *key, const char *val, const char *a, const char *b, const char *one,
                  int *out, char *err, size_t errlen)
{
    if (strcmp(val, a) != 0 && strcmp(val, b) != 0) {
        snprintf(err, errlen, "%s must be %s or %s", key, a, b);
        return -1;
    }
    *out = strcmp(val, one) == 0;
    return 0;
}

static int set(struct ac_config *c, const char *key, const char *val, char *err, size_t errlen)
{
    char *end;
    if (strcmp(key, "database-url") == 0) {
        snprintf(c->database_url, sizeof c->database_url, "%s", val);
    } else if (strcmp(key, "listen") == 0) {
        const char *colon = strrchr(val, ':');
        if (colon == NULL || colon == val || (size_t)(colon - val) >= sizeof c->listen_host) {
            snprintf(err, errlen, "listen must be host:port");
            return -1;
        }
        memcpy(c->listen_host, val, (size_t)(colon - val));
        c->listen_host[colon - val] = '\0';
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (*end || p == 0 || p > 65535) {
            snprintf(err, errlen, "listen port must be 1..65535");
            return -1;
        }
        c->port = (unsigned)p;
    } else if (strcmp(key, "keys-dir") == 0) {
        snprintf(c->keys_dir, sizeof c->keys_dir, "%s", val);
    } else if (strcmp(key, "public-url") == 0) {
        if (strlen(val) >= sizeof c->public_url || (*val && !public_url_ok(val))) {
            snprintf(err, errlen, "public-url must be http[s]://host[:port] without a path");
            return -1;
        }
        snprintf(c->public_url, sizeof c->public_url, "%s", val);
    } else if (strcmp(key, "sig-skew") == 0 || strcmp(key, "sig-max-age") == 0 ||
               strcmp(key, "nonce-cache") == 0) {
        int skew = strcmp(key, "sig-skew") == 0, cache = strcmp(key, "nonce-cache") == 0;
        unsigned long lo = skew || cache ? 1 : 0, hi = cache ? 1ul << 26 : 86400;
        unsigned long v = strtoul(val, &end, 10);
        if (*end || *val == '\0' || *val == '-' || v < lo || v > hi) {
            snprintf(err, errlen, "%s must be an integer in %lu..%lu", key, lo, hi);
            return -1;
        }
        if (skew)
            c->sig_skew = (long)v;
        else if (cache)
            c->nonce_cache = v;
        else
            c->sig_max_age = (long)v;
    } else if (strcmp(key, "stepup-ttl") == 0) {
        unsigned long v = strtoul(val, &end, 10);
        if (*end || *val == '\0' || *val == '-' || v < 1 || v > 86400) {
            snprintf(err, errlen, "stepup-ttl must be an integer in 1..86400");
            return -1;
        }
        c->stepup_ttl = (long)v;
    } else if (strcmp(key, "idempotency-retention") == 0 ||
               strcmp(key, "idempotency-inflight") == 0) {
        /* server/idem.h: keys are kept >= 24 h (up to a year); in-flight table 1..1M entries */
        int ret = key[12] == 'r';
        unsigned long lo = ret ? 86400ul : 1ul, hi = ret ? 31536000ul : 1ul << 20;
        unsigned long v = strtoul(val, &end, 10);
        if (*end || *val == '\0' || *val == '-' || v < lo || v > hi) {
            snprintf(err, errlen, "%s must be an integer in %lu..%lu", key, lo, hi);
            return -1;
        }
        if (ret)
            c->idem_retention = (long)v;
        else
            c->idem_inflight = (size_t)v;
    } else if (strcmp(key, "evidence-origin") == 0) {
        /* a C2SP note key name: printable ASCII here, no space, no '+' */
        size_t n = strlen(val);
        int ok = n > 0 && n < sizeof c->evidence_origin;
        for (size_t i = 0; ok && i < n; i++)
            ok = val[i] > ' ' && val[i] < 0x7f && val[i] != '+';
        if (!ok) {
            snprintf(err, errlen, "evidence-origin must be 1..127 printable characters without "
                                  "spaces or '+'");
            return -1;
        }
        snprintf(c->evidence_origin, sizeof c->evidence_origin, "%s", val);
    } else if (strcmp(key, "checkpoint-every") == 0 || strcmp(key, "checkpoint-ms") == 0) {
        int every = strcmp(key, "checkpoint-every") == 0;
        unsigned long v = strtoul(val, &end, 10);
        unsigned long hi = every ? 1ul << 24 : 3600000ul;
        if (*end || *val == '\0' || *val == '-' || v < 1 || v > hi) {
            snprintf(err, errlen, "%s must be an integer in 1..%lu", key, hi);
            return -1;
        }
        if (every)
            c->checkpoint_every = v;
        else
            c->checkpoint_ms = v;
    } else if (strcmp(key, "evidence") == 0) {
        return choice(key, val, "on", "off", "off", &c->evidence_off, err, errlen);
    } else if (strcmp(key, "pipeline") == 0) {
        return choice(key, val, "on", "off", "off", &c->pipeline_off, err, errlen);
    } else if (strcmp(key, "event-loop") == 0) {
        return choice(key, val, "epoll", "poll", "poll", &c->event_loop_poll, err, errlen);
    } else if (strcmp(key, "benchmark-only") == 0) {
        return choice(key, val, "yes", "no", "yes", &c->benchmark_only, err, errlen);
    } else if (strcmp(key, "operator-token") == 0) {
        snprintf(c->operator_token, sizeof c->operator_token, "%s", val);
    } else if (strcmp(key, "operator-token-file") == 0) {
        FILE *f = fopen(val, "r");
        if (f == NULL || fgets(c->operator_token, sizeof c->operator_token, f) == NULL) {
            snprintf(err, errlen, "cannot read operator token file");
            if (f) fclose(f);
            return -1;
        }
        fclose(f);
        c->operator_token[strcspn(c->operator_token, "\r\n")] = '\0';
    } else if (strcmp(key, "threads") == 0 || strcmp(key, "db-pool") == 0 ||
               strcmp(key, "max-body") == 0 || strcmp(key, "max-batch") == 0 ||
               strcmp(key, "partition") == 0) {
        unsigned long v = strtoul(val, &end, 10);
        if (*end || *val == '\0' || v > 1u << 30) {
            snprintf(err, errlen, "%s must be a non-negative integer", key);
            return -1;
        }
        if (key[0] == 't') c->threads = (unsigned)v;
        if (key[0] == 'd') c->db_pool = (unsigned)v;
        if (strcmp(key, "max-body") == 0) c->max_body = v;
        if (strcmp(key, "max-batch") == 0) c->max_batch = (unsigned)v;
        if (key[0] == 'p') c->partition = (int)v;
    } else {
        snprintf(err, errlen, "unknown option --%s", key);
        return -1;
    }
    return 0;
}

int ac_config_load(struct ac_config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->port = 8080;
    c->max_body = 1 << 20;
    c->max_batch = 8192;
    c->sig_skew = 60;
    c->sig_max_age = 300;
    c->nonce_cache = (size_t)1 << 20;
    c->stepup_ttl = 600;
    c->checkpoint_every = 1024;
    c->checkpoint_ms = 1000;
    c->idem_retention = 86400;
    c->idem_inflight = 65536;
    /* clang-format off */
    static const char *const keys[] = {"database-url", "listen",    "operator-token",
                                       "operator-token-file", "threads", "db-pool",
                                       "max-body",     "max-batch", "partition",
                                       "keys-dir",     "public-url", "sig-skew",
                                       "sig-max-age",  "nonce-cache",
                                       "evidence-origin", "checkpoint-every",
                                       "checkpoint-ms", "stepup-ttl",
                                       "evidence",     "benchmark-only", "pipeline",
                                       "idempotency-retention", "idempotency-inflight",
                                       "event-loop"};
    /* clang-format on */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char env[64] = "AGENTCLEAR_";
        size_t n = strlen(env);
        for (const char *k = keys[i]; *k && n < sizeof env - 1; k++)
            env[n++] = *k == '-' ? '_' : (char)toupper((unsigned char)*k);
        env[n] = '\0';
        const char *v = getenv(env);
        if (v && *v && set(c, keys[i], v, err, errlen)) return -1;
    }
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
            return -1;
        }
        char key[64];
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL || (size_t)(eq - argv[i] - 2) >= sizeof key) {
            snprintf(err, errlen, "options take the form --key=value");
            return -1;
        }
        memcpy(key, argv[i] + 2, (size_t)(eq - argv[i] - 2));
        key[eq - argv[i] - 2] = '\0';
        if (set(c, key, eq + 1, err, errlen)) return -1;
    }
    if (c->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n > 0 ? (unsigned)n : 2;
    }
    if (c->db_pool == 0) c->db_pool = c->threads + 2;
    if (c->evidence_origin[0] == '\0')
        snprintf(c->evidence_origin, sizeof c->evidence_origin, "agentclear.local/%d",
                 c->partition);
    if (c->evidence_off && !c->benchmark_only) {
        snprintf(err, errlen, "evidence=off is for benchmarks only and needs benchmark-only=yes; "
                              "never run a production server without its evidence log");
        return -1;
    }
    if (c->database_url[0] == '\0') {
        snprintf(err, errlen, "no database: set AGENTCLEAR_DATABASE_URL or --database-url");
        return -1;
    }
    return 0;
}
