#include "tests/support/httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ac_test_http_init(struct ac_test_http *c, const char *host, unsigned port, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    c->retry_stale = 1;
}

void ac_test_http_close(struct ac_test_http *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->reused = 0;
}

void ac_test_http_resp_free(struct ac_test_http_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

/* Connect with a bounded wait. Returns 0, or -1 with err set. */
static int dial(struct ac_test_http *c, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "connect: host must be a numeric IPv4 address");
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n;
        do
            n = poll(&p, 1, c->timeout_ms);
        while (n < 0 && errno == EINTR);
        if (n == 0) {
            close(fd);
            snprintf(err, errlen, "connect: timeout");
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        rc = soerr ? -1 : 0;
        errno = soerr;
    }
    if (rc != 0) {
        snprintf(err, errlen, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = c->timeout_ms / 1000, .tv_usec = (c->timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    c->fd = fd;
    c->reused = 0;
    return 0;
}

/* Outcome of one attempt. */
enum attempt { A_OK, A_FAIL, A_STALE /* nothing received and the peer had closed: may retry */ };

struct rbuf {
    char *p;
    size_t len, cap;
};

static int rbuf_reserve(struct rbuf *b, size_t need)
{
    if (need <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 8192;
    while (nc < need)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (np == NULL) return -1;
    b->p = np;
    b->cap = nc;
    return 0;
}

/* Read more bytes into b (at least one) before the deadline. Returns the count, 0 on EOF, -1 on
 * error (errno set; ETIMEDOUT on the deadline). */
static long read_some(int fd, struct rbuf *b, long long deadline)
{
    if (rbuf_reserve(b, b->len + 16384 + 1)) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) continue; /* re-check the deadline */
        ssize_t r = recv(fd, b->p + b->len, b->cap - b->len - 1, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (r > 0) b->len += (size_t)r;
        b->p[b->len] = '\0';
        return (long)r;
    }
}

static const char *find_crlf2(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') return p + i;
    return NULL;
}

/* Value of header `name` within a raw header block (lines "Name: value\r\n"). */
static int header_in(const char *block, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *line = block;
    if (cap) out[0] = '\0';
    while (line && *line) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            const char *e = line + ll;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            size_t vl = (size_t)(e - v);
            if (cap) {
                if (vl >= cap) vl = cap - 1;
                memcpy(out, v, vl);
                out[vl] = '\0';
            }
            return 1;
        }
        line = eol ? eol + 2 : NULL;
    }
    return 0;
}

static enum attempt attempt(struct ac_test_http *c, const char *req, size_t reqlen, int head,
                            struct ac_test_http_resp *out)
{
    long long deadline = mono_ms() + c->timeout_ms;
    int reused = c->reused > 0;
    /* send the whole request */
    size_t off = 0;
    while (off < reqlen) {
        ssize_t n = send(c->fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            snprintf(out->err, sizeof out->err, "send: %s",
                     e == EAGAIN || e == EWOULDBLOCK ? "timeout" : strerror(e));
            return reused && off == 0 && (e == EPIPE || e == ECONNRESET) ? A_STALE : A_FAIL;
        }
        off += (size_t)n;
        if (mono_ms() > deadline) {
            snprintf(out->err, sizeof out->err, "send: timeout");
            return A_FAIL;
        }
    }
    out->sent = 1;
    struct rbuf b = {0};
    enum attempt result = A_FAIL;
    size_t start = 0; /* where the current response begins (after skipped 1xx responses) */
    for (;;) {
        const char *end = NULL;
        while ((end = find_crlf2(b.p ? b.p + start : "", b.len - start)) == NULL) {
            if (b.len - start > AC_TEST_HTTP_HEADERS_MAX) {
                snprintf(out->err, sizeof out->err, "response headers exceed %d bytes",
                         AC_TEST_HTTP_HEADERS_MAX);
                goto done;
            }
            long r = read_some(c->fd, &b, deadline);
            if (r <= 0) {
                int e = errno;
                if (r == 0 || e == ECONNRESET) {
                    snprintf(out->err, sizeof out->err, "closed by the server%s",
                             b.len ? " mid-response" : " before answering");
                    if (reused && b.len == 0) result = A_STALE;
                } else {
                    snprintf(out->err, sizeof out->err, "recv: %s",
                             e == ETIMEDOUT ? "timeout" : strerror(e));
                }
                goto done;
            }
        }
        const char *hs = b.p + start;
        size_t hlen = (size_t)(end - hs);
        int major, minor, status;
        if (sscanf(hs, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 100 ||
            status > 999) {
            snprintf(out->err, sizeof out->err, "malformed status line");
            goto done;
        }
        const char *first_eol = strstr(hs, "\r\n");
        size_t skip = (size_t)(first_eol - hs) + 2;
        size_t hl = hlen + 2 > skip ? hlen + 2 - skip : 0; /* header lines incl. last CRLF */
        if (hl >= sizeof out->headers) hl = sizeof out->headers - 1;
        memcpy(out->headers, hs + skip, hl);
        out->headers[hl] = '\0';
        size_t body_at = (size_t)(end - b.p) + 4;
        if (status < 200) { /* interim (100 Continue): skip it */
            start = body_at;
            continue;
        }
        char v[64];
        if (header_in(out->headers, "Transfer-Encoding", v, sizeof v) &&
            strcasecmp(v, "identity") != 0) {
            snprintf(out->err, sizeof out->err, "unsupported transfer-encoding '%s'", v);
            goto done;
        }
        int close_after = major == 1 && minor == 0;
        if (header_in(out->headers, "Connection", v, sizeof v))
            close_after = strcasecmp(v, "close") == 0        ? 1
                          : strcasecmp(v, "keep-alive") == 0 ? 0
                                                             : close_after;
        long long clen = -1;
        if (header_in(out->headers, "Content-Length", v, sizeof v)) {
            char *e;
            clen = strtoll(v, &e, 10);
            if (*e || clen < 0) {
                snprintf(out->err, sizeof out->err, "malformed content-length");
                goto done;
            }
        }
        if (head || status == 204 || status == 304) clen = 0;
        if (clen > (long long)AC_TEST_HTTP_BODY_MAX) {
            snprintf(out->err, sizeof out->err, "response body exceeds the limit");
            goto done;
        }
        if (clen >= 0) {
            while (b.len - body_at < (size_t)clen) {
                long r = read_some(c->fd, &b, deadline);
                if (r <= 0) {
                    snprintf(out->err, sizeof out->err, "body: %s",
                             r == 0               ? "closed mid-body"
                             : errno == ETIMEDOUT ? "timeout"
                                                  : strerror(errno));
                    goto done;
                }
            }
        } else { /* no length: the body ends at the close */
            close_after = 1;
            for (;;) {
                if (b.len - body_at > AC_TEST_HTTP_BODY_MAX) {
                    snprintf(out->err, sizeof out->err, "response body exceeds the limit");
                    goto done;
                }
                long r = read_some(c->fd, &b, deadline);
                if (r == 0) break;
                if (r < 0) {
                    snprintf(out->err, sizeof out->err, "body: %s", strerror(errno));
                    goto done;
                }
            }
            clen = (long long)(b.len - body_at);
        }
        if (b.len - body_at > (size_t)clen) {
            /* we never pipeline: bytes beyond this response mean the framing is broken */
            snprintf(out->err, sizeof out->err, "unexpected bytes after the response");
            goto done;
        }
        out->body = malloc((size_t)clen + 1);
        if (out->body == NULL) {
            snprintf(out->err, sizeof out->err, "out of memory");
            goto done;
        }
        memcpy(out->body, b.p + body_at, (size_t)clen);
        out->body[clen] = '\0';
        out->body_len = (size_t)clen;
        out->status = status;
        if (close_after)
            ac_test_http_close(c);
        else
            c->reused++;
        result = A_OK;
        break;
    }
done:
    free(b.p);
    return result;
}

/* ---- response log (AC_HTTP_LOG) ------------------------------------------------------------ */

/* The raw header block as {"lower-case-name": "value"}; repeated names are joined with ", "
 * (RFC 9110 5.3). NULL on allocation failure. */
static json_t *headers_json(const char *block)
{
    json_t *o = json_object();
    const char *line = block;
    while (o && line && *line) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        const char *colon = memchr(line, ':', ll);
        if (colon && colon > line && (size_t)(colon - line) < 128) {
            char name[128];
            size_t nl = (size_t)(colon - line);
            for (size_t i = 0; i < nl; i++)
                name[i] = (char)((line[i] >= 'A' && line[i] <= 'Z') ? line[i] + 32 : line[i]);
            name[nl] = '\0';
            const char *v = colon + 1, *e = line + ll;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            json_t *old = json_object_get(o, name);
            json_t *val;
            if (old) {
                const char *ov = json_string_value(old);
                size_t ol = strlen(ov), vl = (size_t)(e - v);
                char *joined = malloc(ol + 2 + vl + 1);
                if (joined == NULL) {
                    json_decref(o);
                    return NULL;
                }
                memcpy(joined, ov, ol);
                memcpy(joined + ol, ", ", 2);
                memcpy(joined + ol + 2, v, vl);
                joined[ol + 2 + vl] = '\0';
                val = json_string(joined);
                free(joined);
            } else {
                val = json_stringn(v, (size_t)(e - v));
            }
            /* a value that is not UTF-8 is left out rather than failing the whole line */
            if (val) json_object_set_new(o, name, val);
        }
        line = eol ? eol + 2 : NULL;
    }
    return o;
}

/* Append one JSON line for a complete response to $AC_HTTP_LOG (when set). Best effort: a test
 * is not failed by its log; a line that cannot be built or written is reported on stderr, so that
 * a missing line shows up there as well as in the validator's count. */
static void log_response(const char *method, const char *target, const struct ac_test_http_resp *r)
{
    const char *file = getenv("AC_HTTP_LOG");
    if (file == NULL || file[0] == '\0' || r->status <= 0) return;
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    char ctype[256];
    int has_ct = header_in(r->headers, "Content-Type", ctype, sizeof ctype);
    json_t *body = json_stringn(r->body ? r->body : "", r->body_len);
    json_t *line =
        json_pack("{s:s, s:s%, s:o, s:i, s:o, s:o, s:o}", "method", method, "path", target, plen,
                  "query", q ? json_string(q + 1) : json_null(), "status", r->status,
                  "content_type", has_ct ? json_string(ctype) : json_null(), "headers",
                  headers_json(r->headers), "body", body ? body : json_null());
    if (line && body == NULL) json_object_set_new(line, "body_utf8", json_false());
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    size_t n = text ? strlen(text) : 0;
    char *out = text ? realloc(text, n + 2) : NULL;
    if (out == NULL) {
        free(text);
        fprintf(stderr, "httpc: AC_HTTP_LOG: cannot encode the response to %s %s\n", method,
                target);
        return;
    }
    out[n++] = '\n';
    out[n] = '\0';
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    ssize_t w = -1;
    if (fd >= 0) {
        do
            w = write(fd, out, n); /* one write: lines from concurrent writers never interleave */
        while (w < 0 && errno == EINTR);
        close(fd);
    }
    if (w != (ssize_t)n)
        fprintf(stderr, "httpc: AC_HTTP_LOG %s: %s\n", file,
                w < 0 ? strerror(errno) : "short write");
    free(out);
}

int ac_test_http_request(struct ac_test_http *c, const char *method, const char *path,
                         const char *headers, const void *body, size_t len,
                         struct ac_test_http_resp *out)
{
    memset(out, 0, sizeof *out);
    if (headers == NULL) headers = "";
    size_t cap = strlen(method) + strlen(path) + strlen(headers) + strlen(c->host) + 128 + len;
    char *req = malloc(cap);
    if (req == NULL) {
        snprintf(out->err, sizeof out->err, "out of memory");
        out->body = calloc(1, 1);
        return 0;
    }
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s:%u\r\n", method, path, c->host,
                     c->host_port ? c->host_port : c->port);
    if (body != NULL || len > 0)
        n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(req + n, cap - (size_t)n, "%s\r\n", headers);
    if (len) memcpy(req + n, body, len);
    size_t reqlen = (size_t)n + len;
    int head = strcmp(method, "HEAD") == 0;
    for (int tries = 0; tries < 2; tries++) {
        if (c->fd < 0 && dial(c, out->err, sizeof out->err) != 0) break;
        enum attempt a = attempt(c, req, reqlen, head, out);
        if (a == A_OK) break;
        ac_test_http_close(c);
        if (a != A_STALE || !c->retry_stale) break;
        out->sent = 0;
        out->headers[0] = '\0';
    }
    free(req);
    log_response(method, path, out);
    if (out->body == NULL) {
        out->status = 0;
        out->body = calloc(1, 1);
        out->body_len = 0;
    }
    return out->status;
}

int ac_test_http_api(struct ac_test_http *c, const char *method, const char *path,
                     const char *token, const char *json, struct ac_test_http_resp *out)
{
    char h[512];
    int n = 0;
    h[0] = '\0';
    if (token) n += snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token);
    if (json) snprintf(h + n, sizeof h - (size_t)n, "Content-Type: application/json\r\n");
    return ac_test_http_request(c, method, path, h, json, json ? strlen(json) : 0, out);
}

int ac_test_http_header(const struct ac_test_http_resp *r, const char *name, char *out, size_t cap)
{
    return header_in(r->headers, name, out, cap);
}

json_t *ac_test_http_json(const struct ac_test_http_resp *r)
{
    if (r->body == NULL) return NULL;
    json_error_t e;
    return json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
}

unsigned ac_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    unsigned port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
