/* tests/support/httpc.h -- a minimal blocking HTTP/1.1 client for the end-to-end tests.
 *
 * One struct ac_test_http is one keep-alive TCP connection to host:port, used by one thread at a
 * time. Requests carry Content-Length bodies; responses are read by Content-Length (or up to the
 * close when the server sends neither length nor chunking). The server under test answers every
 * request from a buffer of known size (MHD_create_response_from_buffer), so it never sends a
 * chunked response: a chunked response is reported as a transport error instead of being decoded,
 * so that a change on the server side is noticed rather than misread.
 *
 * Response log: when the environment variable AC_HTTP_LOG names a file, every complete response
 * (status > 0) is appended to it as one JSON line {"method","path","query","status",
 * "content_type","headers","body"} -- path without the query, query without the '?' (or null),
 * headers as an object of lower-case names, body as text (null with "body_utf8":false when the
 * body is not UTF-8). Each line is one write() on an O_APPEND descriptor, so threads and processes
 * sharing the file do not interleave. tests/conformance/npm/validate-responses.mjs checks the lines
 * against docs/openapi.yaml; ops/test sets the variable for its CTest runs.
 *
 * Everything is bounded: the connect, each send and the whole exchange by timeout_ms (poll plus
 * SO_RCVTIMEO/SO_SNDTIMEO as a backstop); the header block by AC_TEST_HTTP_HEADERS_MAX and the
 * body by AC_TEST_HTTP_BODY_MAX. No dependency beyond libc (and jansson for the JSON helper). */
#ifndef AC_TEST_HTTPC_H
#define AC_TEST_HTTPC_H

#include <stddef.h>

#include <jansson.h>

#define AC_TEST_HTTP_HEADERS_MAX 16384
#define AC_TEST_HTTP_BODY_MAX (16u * 1024 * 1024)

struct ac_test_http {
    int fd;        /* -1 while not connected */
    char host[64]; /* numeric IPv4 address */
    unsigned port;
    int timeout_ms;     /* bound on connect, and on one whole request/response exchange */
    int retry_stale;    /* 1 (default): see ac_test_http_request() */
    unsigned reused;    /* requests already answered on the current connection */
    unsigned host_port; /* 0, or the port the Host header names instead of `port` (a request
                           signed for a server's earlier address, sent to where it runs now) */
};

struct ac_test_http_resp {
    int status;    /* HTTP status code, or 0 when no complete response arrived */
    char err[160]; /* why status is 0: "timeout", "connect: ...", "closed", ... */
    int sent;      /* 1 when the whole request was written to the socket (when status is 0,
                      the server may or may not have acted on it) */
    char headers[AC_TEST_HTTP_HEADERS_MAX]; /* the raw header lines after the status line */
    char *body; /* malloc'd and NUL-terminated ("" when empty); NULL after free */
    size_t body_len;
};

/* Prepare a connection object (no I/O yet). host must be a numeric IPv4 address. */
void ac_test_http_init(struct ac_test_http *c, const char *host, unsigned port, int timeout_ms);

/* Close the connection (if open). The object can be used again: the next request reconnects. */
void ac_test_http_close(struct ac_test_http *c);

/* Send one request and read its response into *out (which the caller later frees with
 * ac_test_http_resp_free; *out need not be initialised). `headers` is NULL or extra header lines,
 * each ending in "\r\n" (e.g. "Authorization: Bearer x\r\nContent-Type: application/json\r\n");
 * Host, Content-Length and Connection are added here. body may be NULL when len is 0.
 *
 * Connects when needed. Returns out->status: the HTTP status (>= 200; 1xx interim responses are
 * skipped), or 0 on a transport failure (out->err says which); after a failure, or when the server
 * answered "Connection: close", the connection is closed and the next request reconnects.
 * When c->retry_stale is set and a reused keep-alive connection turns out to have been closed by
 * the server before any byte of the answer arrived (reset or EOF; never on a timeout), the request
 * is sent once more on a new connection, as HTTP clients do. Tests that must know exactly which
 * requests reached a server that was killed clear retry_stale. */
int ac_test_http_request(struct ac_test_http *c, const char *method, const char *path,
                         const char *headers, const void *body, size_t len,
                         struct ac_test_http_resp *out);

/* The operator API's usual request: "Authorization: Bearer <token>" when token is not NULL and,
 * when json is not NULL, json as the body with "Content-Type: application/json". Same contract
 * as ac_test_http_request(). */
int ac_test_http_api(struct ac_test_http *c, const char *method, const char *path,
                     const char *token, const char *json, struct ac_test_http_resp *out);

/* Free the body of a response (safe to call twice). */
void ac_test_http_resp_free(struct ac_test_http_resp *r);

/* Copy the value of the first header called `name` (case-insensitive), trimmed, into out.
 * Returns 1 when found, 0 when absent (out is then ""). */
int ac_test_http_header(const struct ac_test_http_resp *r, const char *name, char *out, size_t cap);

/* Parse the body as JSON (duplicate keys rejected). Returns a new reference, or NULL. */
json_t *ac_test_http_json(const struct ac_test_http_resp *r);

/* A free TCP port on 127.0.0.1 (bound to port 0 and released again), or 0 on failure. Another
 * process may take it before it is used: callers that listen on it retry with another. */
unsigned ac_test_free_port(void);

#endif
