#include "server/daemon.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "protocol/b64.h"
#include "protocol/sha256.h"
#include "server/authn.h"
#include "server/http.h"
#include "server/idem.h"

#define AC_URL_MAX 512
/* bytes of an overlong path kept as the 414 problem's instance */
#define AC_INSTANCE_TRUNCATE 64

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const unsigned status_slots[AC_STATUS_SLOTS] = {200, 201, 204, 400, 401, 403, 404, 405,
                                                       409, 413, 414, 415, 422, 500, 503, 0};

unsigned ac_status_slot(unsigned status)
{
    for (unsigned i = 0; i < AC_STATUS_SLOTS - 1; i++)
        if (status_slots[i] == status) return i;
    return AC_STATUS_SLOTS - 1;
}

unsigned ac_slot_status(unsigned slot)
{
    return slot < AC_STATUS_SLOTS ? status_slots[slot] : 0;
}

/* ---- routing --------------------------------------------------------------------------------- */

/* Match path against pattern; {x} matches one segment that must be a valid id. */
static int match(const char *pattern, const char *path, struct ac_req *r)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            size_t n = se ? (size_t)(se - s) : strlen(s);
            if (pe == NULL || n == 0 || n > AC_ID_MAX || np == AC_MAX_PATH_PARAMS) return 0;
            memcpy(r->params[np], s, n);
            r->params[np][n] = '\0';
            if (!ac_id_valid(r->params[np])) return 0;
            np++;
            p = pe + 1;
            s += n;
        } else if (*p++ != *s++) {
            return 0;
        }
    }
    if (*p || *s) return 0;
    r->nparams = np;
    return 1;
}

/* Find the route; sets r->route or r->early_error (NOT_FOUND / METHOD_NOT_ALLOWED). */
static void route(struct ac_req *r)
{
    int path_seen = 0;
    for (unsigned i = 0; i < ac_n_routes; i++) {
        if (!match(ac_routes[i].pattern, r->path, r)) continue;
        path_seen = 1;
        if (strcmp(ac_routes[i].method, r->method) == 0) {
            r->route = &ac_routes[i];
            r->route_idx = (int)i;
            return;
        }
    }
    r->early_error = path_seen ? AC_EC_METHOD_NOT_ALLOWED : AC_EC_NOT_FOUND;
}

/* Constant-time check of "Bearer <token>" against the configured operator token: both sides
 * are hashed first so neither content nor length leaks through timing. */
static int operator_ok(struct ac_req *r)
{
    const char *tok = r->app->cfg.operator_token;
    const char *h = ac_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (tok[0] == '\0' || h == NULL || strncmp(h, "Bearer ", 7) != 0) return 0;
    uint8_t a[AC_SHA256_LEN], b[AC_SHA256_LEN];
    ac_sha256(h + 7, strlen(h + 7), a);
    ac_sha256(tok, strlen(tok), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

/* ---- replies --------------------------------------------------------------------------------- */

/* The methods of every route whose pattern matches r->path, as an Allow value ("GET, POST"). */
static void allowed_methods(struct ac_req *r, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    struct ac_req probe; /* match() writes path parameters: keep r's own intact */
    for (unsigned i = 0; i < ac_n_routes; i++) {
        if (!match(ac_routes[i].pattern, r->path, &probe)) continue;
        const char *m = ac_routes[i].method;
        int dup = 0;
        for (unsigned j = 0; j < i && !dup; j++)
            dup =
                strcmp(ac_routes[j].method, m) == 0 && match(ac_routes[j].pattern, r->path, &probe);
        if (dup) continue;
        int k = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", m);
        if (k < 0 || (size_t)k >= cap - n) break;
        n += (size_t)k;
    }
}

/* The challenge of a 401 (RFC 9110 section 11.6.1: a 401 must carry WWW-Authenticate): the
 * operator's bearer token, or an RFC 9421 signature on the signed routes, with Accept-Signature
 * (RFC 9421 section 5.1) naming the components and parameters this route's profile requires. */
static void add_challenge(struct MHD_Response *resp, struct ac_req *r, enum ac_ec ec)
{
    if (ec == AC_EC_UNAUTHORIZED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"agentclear\"");
        return;
    }
    if (r->route == NULL || r->route->auth < AC_AUTH_AGENT) return;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Signature realm=\"agentclear\"");
    char accept[160];
    snprintf(accept, sizeof accept,
             "sig1=(\"@method\" \"@target-uri\"%s%s);created;expires;tag=\"agentclear\"",
             r->body.len > 0 ? " \"content-digest\"" : "",
             r->route->auth == AC_AUTH_AGENT ? " \"agent-runtime\"" : "");
    MHD_add_response_header(resp, "Accept-Signature", accept);
}

/* Send: ec is the problem's code (AC_EC_OK for other answers), for the headers a status calls
 * for; location and replayed for answers recorded under an Idempotency-Key. */
static enum MHD_Result send_now(struct ac_req *r, unsigned status, const char *ctype, char *body,
                                size_t len, enum ac_ec ec, const char *location, int replayed)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (location) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    if (replayed) MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    if (status == 503 || ec == AC_EC_IDEMPOTENCY_IN_FLIGHT)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401) add_challenge(resp, r, ec);
    if (status == 405) {
        char allow[128];
        allowed_methods(r, allow, sizeof allow);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    r->status = status;
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    ac_idem_answered(r);
    return rc;
}

/* Every answer of a handler: captured instead while an Idempotency-Key's seal renders it. */
static enum MHD_Result queue(struct ac_req *r, unsigned status, const char *ctype, char *body,
                             size_t len, enum ac_ec ec)
{
    if (r->idem && ac_idem_on_reply(r, status, ctype, &body, len)) return MHD_YES;
    return send_now(r, status, ctype, body, len, ec, NULL, 0);
}

enum MHD_Result ac_reply_recorded(struct ac_req *r, unsigned status, const char *ctype,
                                  const char *location, const char *body, size_t len, int replayed)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) return MHD_NO;
    memcpy(copy, body, len);
    return send_now(r, status, ctype, copy, len, AC_EC_OK, location, replayed);
}

json_t *ac_json_b64(const uint8_t *p, size_t n)
{
    char *s = malloc(ac_b64_enc_len(n));
    if (s == NULL) return NULL;
    ac_b64_encode(p, n, s, 0);
    json_t *j = json_string(s);
    free(s);
    return j;
}

enum MHD_Result ac_reply_json(struct ac_req *r, unsigned status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s == NULL) return MHD_NO;
    return queue(r, status, "application/json", s, strlen(s), AC_EC_OK);
}

enum MHD_Result ac_reply_json_text(struct ac_req *r, unsigned status, char *text, size_t len)
{
    return queue(r, status, "application/json", text, len, AC_EC_OK);
}

/* The problem's `instance`: the request path, with every byte outside printable ASCII
 * percent-encoded (RFC 3986), so that the member is valid JSON text whatever the client sent. */
static void instance_of(const struct ac_req *r, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)r->path; *p && n + 4 <= cap; p++) {
        if (*p > 0x20 && *p < 0x7f) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
}

enum MHD_Result ac_reply_problem(struct ac_req *r, enum ac_ec ec, const char *detail, json_t *extra)
{
    unsigned status = ac_ec_status(ec);
    char type[96], instance[sizeof r->path * 3];
    instance_of(r, instance, sizeof instance);
    snprintf(type, sizeof type, "urn:agentclear:error:%s", ac_ec_code(ec));
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", ac_ec_title(ec),
                          "status", (int)status, "code", ac_ec_code(ec), "instance", instance);
    if (p == NULL) {
        json_decref(extra);
        return MHD_NO;
    }
    if (detail) json_object_set_new(p, "detail", json_string(detail));
    if (extra) {
        json_object_update_missing(p, extra);
        json_decref(extra);
    }
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (s == NULL) return MHD_NO;
    return queue(r, status, "application/problem+json", s, strlen(s), ec);
}

enum MHD_Result ac_reply_text(struct ac_req *r, unsigned status, const char *ctype,
                              const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) return MHD_NO;
    memcpy(copy, text, len);
    return queue(r, status, ctype, copy, len, AC_EC_OK);
}

enum MHD_Result ac_req_json(struct ac_req *r, json_t **out)
{
    *out = NULL;
    const char *ct = ac_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
        return ac_reply_problem(r, AC_EC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
    json_error_t e;
    json_t *j = json_loadb(ac_buf_str(&r->body), r->body.len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        char d[256];
        snprintf(d, sizeof d, "%s (line %d, column %d)", e.text, e.line, e.column);
        return ac_reply_problem(r, AC_EC_JSON_INVALID, d, NULL);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return ac_reply_problem(r, AC_EC_JSON_SCHEMA, "the body must be a json object", NULL);
    }
    *out = j;
    return MHD_YES;
}

enum MHD_Result ac_suspend(struct ac_req *r)
{
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

void ac_resume(struct ac_req *r)
{
    r->resumed = 1;
    MHD_resume_connection(r->conn);
}

const char *ac_req_header(struct ac_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void ac_rfc3339(int64_t us, char out[40])
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06dZ", (int)(us % 1000000));
}

/* ---- MHD callbacks --------------------------------------------------------------------------- */

/* A new request object. Counted in app->inflight until completed_cb. */
static struct ac_req *req_new(struct ac_app *app, struct MHD_Connection *conn)
{
    struct ac_req *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->app = app;
    r->conn = conn;
    r->route_idx = -1;
    r->t0 = mono();
    atomic_fetch_add(&app->inflight, 1);
    return r;
}

/* Called with the request target exactly as received, before MHD splits off and decodes the
 * query: RFC 9421 @path/@query/@target-uri need it verbatim. The object returned becomes the
 * request's *con_cls (and completed_cb is called for it however the request ends). */
static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct ac_req *r = req_new(cls, conn);
    if (r == NULL) return NULL;
    size_t n = strlen(uri);
    if (n <= AC_HTTPSIG_URI_MAX) r->target = strdup(uri); /* NULL: signed routes answer 500 */
    return r;
}

/* Percent-decoding is left to nobody: paths and query strings stay as sent (route patterns match
 * ids of [A-Za-z0-9._:-] only, which need no encoding). */
static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct ac_app *app = cls;
    struct ac_req *r = *con_cls;
    if (r == NULL || !r->started) {
        if (r == NULL && (r = req_new(app, conn)) == NULL) return MHD_NO;
        *con_cls = r;
        r->started = 1;
        size_t ulen = strlen(url);
        if (ulen >= sizeof r->path || ulen > AC_URL_MAX) {
            /* the problem's instance: the path, truncated (never routed) */
            r->early_error = AC_EC_URI_TOO_LONG;
            snprintf(r->path, sizeof r->path, "%.*s", AC_INSTANCE_TRUNCATE, url);
        } else {
            memcpy(r->path, url, ulen + 1);
        }
        snprintf(r->method, sizeof r->method, "%s", method);
        if (r->early_error == AC_EC_OK) route(r);
        if (r->early_error == AC_EC_OK && r->route->auth == AC_AUTH_OPERATOR && !operator_ok(r))
            r->early_error = AC_EC_UNAUTHORIZED;
        if (r->early_error == AC_EC_OK) {
            const char *cl = ac_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > r->route->body_max)
                r->early_error = AC_EC_BODY_TOO_LARGE;
        }
        return MHD_YES;
    }
    if (*upload_size) {
        /* consume every chunk; keep it only while within the route's limit */
        if (r->early_error == AC_EC_OK) {
            if (r->body.len + *upload_size > r->route->body_max)
                r->early_error = AC_EC_BODY_TOO_LARGE;
            else
                ac_buf_add(&r->body, upload, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* final call: the whole body is in (or we were resumed) */
    if (r->early_error != AC_EC_OK) {
        return ac_reply_problem(r, r->early_error, NULL, NULL);
    }
    if (r->body.oom) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    if (r->suspended && !r->resumed) return MHD_YES; /* spurious call while suspended */
    r->suspended = r->resumed = 0;
    if (r->route->auth >= AC_AUTH_AGENT && r->verified == NULL) {
        const char *detail = NULL;
        enum ac_ec ec = ac_authn_request(r, &detail);
        if (ec != AC_EC_OK) return ac_reply_problem(r, ec, detail, NULL);
        if (r->verified == NULL) return MHD_YES; /* suspended on the replay check */
    }
    enum MHD_Result rc;
    if (!r->idem_checked) {
        r->idem_checked = 1;
        if (!ac_idem_begin(r, &rc)) return rc;
    } else if (r->idem && ac_idem_ready(r, &rc)) {
        return rc;
    }
    return r->route->handler(r);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct ac_app *app = cls;
    struct ac_req *r = *con_cls;
    if (r == NULL) return;
    if (r->started) { /* else the request ended before MHD handed it over: nothing to count */
        unsigned idx = r->route_idx >= 0 ? (unsigned)r->route_idx : ac_n_routes;
        struct ac_route_stats *rs = &app->route_stats[idx];
        atomic_fetch_add(&rs->by_status[ac_status_slot(r->status ? r->status : 500)], 1);
        ac_hist_observe(&rs->seconds, mono() - r->t0);
    }
    ac_idem_end(r);
    ac_authn_request_end(r); /* a nonce no batch recorded */
    if (r->hctx_free) r->hctx_free(r->hctx);
    ac_verified_free(r->verified);
    ac_authn_wait_free(r->authn_wait);
    free(r->target);
    ac_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&app->inflight, 1);
}

static const double latency_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,  0.5,   1,    2.5};

struct MHD_Daemon *ac_daemon_start(struct ac_app *app)
{
    if (app->authn == NULL) {
        struct ac_pool *np = app->nonce_pool ? app->nonce_pool : app->pool;
        if ((app->authn = ac_authn_new(&app->cfg)) == NULL ||
            (np != NULL && ac_authn_start_writer(app->authn, np) != 0)) {
            fprintf(stderr, "serve: cannot set up the request verifier (sig-skew, nonce-cache)\n");
            return NULL;
        }
    }
    app->route_stats = calloc(ac_n_routes + 1, sizeof *app->route_stats);
    if (app->route_stats == NULL) return NULL;
    for (unsigned i = 0; i <= ac_n_routes; i++)
        ac_hist_init(&app->route_stats[i].seconds, latency_bounds,
                     sizeof latency_bounds / sizeof *latency_bounds);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)app->cfg.port);
    if (inet_pton(AF_INET, app->cfg.listen_host, &sa.sin_addr) != 1) {
        fprintf(stderr, "serve: listen host must be an IPv4 address\n");
        return NULL;
    }
    /* epoll: a thread's wait costs the same however many connections it holds, but every suspend
     * and resume takes the connection out of the epoll set and puts it back (two epoll_ctl calls
     * a request). poll: no such calls, but each turn walks all the thread's connections. So poll
     * suits a few hundred pooled connections, epoll thousands (docs/operations.md). */
    unsigned loop = app->cfg.event_loop_poll ? MHD_USE_POLL : MHD_USE_EPOLL;
    return MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | loop | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        (uint16_t)app->cfg.port, NULL, NULL, access_cb, app, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, app->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED, completed_cb,
        app, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
        MHD_OPTION_URI_LOG_CALLBACK, uri_cb, app, MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
        MHD_OPTION_END);
}

void ac_daemon_stop(struct MHD_Daemon *d)
{
    if (d) MHD_stop_daemon(d);
}
