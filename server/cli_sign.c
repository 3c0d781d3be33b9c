/* agentclear sign --key FILE --url URL [--method M] [--body FILE|-]
 *                 [--runtime 'sha-256=:...:' | --software S --model M --environment E]
 *                 [--keyid KID] [--created UNIX] [--expires-in S] [--nonce N] [--label L]
 *                 [--components target-uri|split] [--format curl|headers|json]
 *   Signs one HTTP request the way agentclear verifies it (RFC 9421, docs/identity.md "Signed
 *   requests") with a private JWK (the file `agentclear keygen` writes, or a bare private JWK;
 *   refused when group or others may read it) and prints the headers to send:
 *     curl    (default) one  -H 'Name: value'  per line, for  eval curl $(agentclear sign ...) URL
 *     headers one  Name: value  per line, for  curl -H @file
 *     json    {"headers":{...},"keyid","created","expires","nonce","signature_base"}
 *   Covered: @method, @target-uri (split: @authority, @path and, with a query, @query),
 *   agent-runtime when a runtime is given, content-digest (sha-256) when a body is given.
 *   Parameters: created (default now), expires (created + 60; --expires-in 0 leaves it out),
 *   nonce (16 random bytes, base64url), alg, keyid (default: the key's RFC 7638 thumbprint),
 *   tag="agentclear". Options take "--name value" or "--name=value". Nothing secret is printed.
 *   Exit 0 on success, 1 when the key or body cannot be read or signing fails, 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "protocol/b64.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/runtime.h"
#include "server/cli.h"

#define BODY_MAX (64u * 1024 * 1024)

static void usage(void)
{
    fprintf(stderr, "usage: agentclear sign --key FILE --url URL [--method GET] [--body FILE|-]\n"
                    "         [--runtime 'sha-256=:...:' | --software sha-256:HEX --model NAME "
                    "--environment sha-256:HEX]\n"
                    "         [--keyid KID] [--created UNIX] [--expires-in SECONDS] [--nonce N] "
                    "[--label sig1]\n"
                    "         [--components target-uri|split] [--format curl|headers|json]\n");
}

/* ---- inputs ------------------------------------------------------------------------------------
 */

/* Read a private JWK file; refuses files group/others may access. Messages name the file only. */
static EVP_PKEY *load_key(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "sign: cannot open %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_size > AC_JWK_MAX_TEXT) {
        fprintf(stderr, "sign: %s: %s\n", path,
                !S_ISREG(st.st_mode)      ? "not a regular file"
                : (st.st_mode & 077) != 0 ? "group or others may access it (chmod 600)"
                                          : "too large for a jwk");
        close(fd);
        return NULL;
    }
    char buf[AC_JWK_MAX_TEXT + 1];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf && (k = read(fd, buf + n, sizeof buf - n)) > 0)
        n += (size_t)k;
    close(fd);
    EVP_PKEY *key = NULL;
    const char *detail = NULL;
    enum ac_ec ec = n <= AC_JWK_MAX_TEXT ? ac_jwk_import_private_text(buf, n, &key, &detail)
                                         : AC_EC_JWK_INVALID;
    OPENSSL_cleanse(buf, sizeof buf);
    if (ec != AC_EC_OK) {
        fprintf(stderr, "sign: %s is not a private Ed25519 or P-256 jwk%s%s\n", path,
                detail ? ": " : "", detail ? detail : "");
        return NULL;
    }
    return key;
}

static unsigned char *read_body(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "sign: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap);
    while (b != NULL) {
        if (n == cap) {
            unsigned char *nb = cap < BODY_MAX ? realloc(b, cap * 2) : NULL;
            if (nb == NULL) {
                free(b);
                b = NULL;
                fprintf(stderr, "sign: the body is larger than %u bytes\n", BODY_MAX);
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (b != NULL && ferror(f)) {
        fprintf(stderr, "sign: cannot read %s\n", path);
        free(b);
        b = NULL;
    }
    if (f != stdin) fclose(f);
    *len = n;
    return b;
}

/* Split http[s]://authority/path?query (no userinfo, no fragment) into parts (copies in buf). */
static int split_url(const char *url, char *buf, size_t cap, struct ac_http_request *req)
{
    size_t n = strlen(url);
    if (n >= cap || n > AC_HTTPSIG_URI_MAX || strpbrk(url, " \t\r\n#") != NULL) return -1;
    memcpy(buf, url, n + 1);
    char *sep = strstr(buf, "://");
    if (sep == NULL) return -1;
    *sep = '\0';
    if (strcasecmp(buf, "http") != 0 && strcasecmp(buf, "https") != 0) return -1;
    req->scheme = buf;
    char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?");
    if (alen == 0 || memchr(auth, '@', alen) != NULL) return -1;
    static char slash_path[] = "/";
    if (auth[alen] == '\0') {
        req->path = slash_path;
        req->query = NULL;
    } else if (auth[alen] == '?') {
        /* "https://host?q": the path is "/"; the query starts after '?' */
        auth[alen] = '\0';
        req->path = slash_path;
        req->query = auth + alen + 1;
    } else {
        /* move the path one byte right to end the authority in place */
        memmove(auth + alen + 1, auth + alen, strlen(auth + alen) + 1);
        auth[alen] = '\0';
        char *path = auth + alen + 1;
        char *q = strchr(path, '?');
        if (q != NULL) *q++ = '\0';
        req->path = path;
        req->query = q;
    }
    req->authority = auth;
    return 0;
}

/* ---- the request's headers as the signer sees them ----------------------------------------------
 */

struct sign_headers {
    const char *content_digest; /* NULL when absent */
    const char *agent_runtime;
};

static const char *header_of(void *ctx, const char *lname)
{
    const struct sign_headers *h = ctx;
    if (strcmp(lname, "content-digest") == 0) return h->content_digest;
    if (strcmp(lname, "agent-runtime") == 0) return h->agent_runtime;
    return NULL;
}

/* ---- output
 * -------------------------------------------------------------------------------------- */

/* One curl argument: -H 'Name: value' with single quotes escaped for POSIX shells. */
static void print_curl(const char *name, const char *value)
{
    printf("-H '%s: ", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    }
    printf("'\n");
}

int ac_cli_sign(int argc, char **argv)
{
    static const char *const names[] = {
        "key",   "url",     "method",     "body",  "runtime", "software",   "model", "environment",
        "keyid", "created", "expires-in", "nonce", "label",   "components", "format"};
    enum {
        KEY,
        URL,
        METHOD,
        BODY,
        RUNTIME,
        SOFTWARE,
        MODEL,
        ENVIRONMENT,
        KEYID,
        CREATED,
        EXPIRES_IN,
        NONCE,
        LABEL,
        COMPONENTS,
        FORMAT,
        NOPTS
    };
    const char *opt[NOPTS] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        size_t k;
        for (k = 0; k < NOPTS; k++) {
            size_t nl = strlen(names[k]);
            if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, names[k], nl) != 0) continue;
            if (a[2 + nl] == '=') {
                opt[k] = a + 3 + nl;
                break;
            }
            if (a[2 + nl] == '\0' && i + 1 < argc) {
                opt[k] = argv[++i];
                break;
            }
        }
        if (k == NOPTS) {
            fprintf(stderr, "sign: unknown or incomplete argument '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (opt[KEY] == NULL || opt[URL] == NULL) {
        usage();
        return 2;
    }
    const char *method = opt[METHOD] ? opt[METHOD] : "GET";
    size_t ml = strlen(method);
    if (ml == 0 || ml > 15 || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != ml) {
        fprintf(stderr, "sign: --method must be an uppercase http method\n");
        return 2;
    }
    const char *format = opt[FORMAT] ? opt[FORMAT] : "curl";
    if (strcmp(format, "curl") != 0 && strcmp(format, "headers") != 0 &&
        strcmp(format, "json") != 0) {
        fprintf(stderr, "sign: --format must be curl, headers or json\n");
        return 2;
    }
    int split = 0;
    if (opt[COMPONENTS] != NULL) {
        if (strcmp(opt[COMPONENTS], "split") == 0)
            split = 1;
        else if (strcmp(opt[COMPONENTS], "target-uri") != 0) {
            fprintf(stderr, "sign: --components must be target-uri or split\n");
            return 2;
        }
    }
    int64_t now = (int64_t)time(NULL), created = now, expires_in = 60;
    if (opt[CREATED] && ac_cli_parse_i64(opt[CREATED], 0, INT64_C(999999999999), &created)) {
        fprintf(stderr, "sign: --created must be unix seconds\n");
        return 2;
    }
    if (opt[EXPIRES_IN] && ac_cli_parse_i64(opt[EXPIRES_IN], 0, INT64_C(31536000), &expires_in)) {
        fprintf(stderr, "sign: --expires-in must be 0..31536000 seconds\n");
        return 2;
    }
    char urlbuf[AC_HTTPSIG_URI_MAX + 8];
    struct ac_http_request req;
    memset(&req, 0, sizeof req);
    if (split_url(opt[URL], urlbuf, sizeof urlbuf, &req) != 0) {
        fprintf(stderr, "sign: --url must be http[s]://host[:port][/path][?query]\n");
        return 2;
    }
    req.method = method;

    /* the runtime: a header value, or its three fields */
    char runtime[AC_RUNTIME_HEADER_MAX + 1] = "";
    if (opt[RUNTIME] != NULL) {
        uint8_t d[AC_RUNTIME_DIGEST_LEN];
        if (opt[SOFTWARE] || opt[MODEL] || opt[ENVIRONMENT] ||
            ac_runtime_header_parse(opt[RUNTIME], strlen(opt[RUNTIME]), d) != AC_EC_OK ||
            ac_runtime_header(d, runtime, sizeof runtime) < 0) {
            fprintf(stderr, "sign: --runtime must be 'sha-256=:<base64 of 32 bytes>:' and "
                            "excludes --software/--model/--environment\n");
            return 2;
        }
    } else if (opt[SOFTWARE] || opt[MODEL] || opt[ENVIRONMENT]) {
        uint8_t d[AC_RUNTIME_DIGEST_LEN];
        if (!opt[SOFTWARE] || !opt[MODEL] || !opt[ENVIRONMENT] ||
            ac_runtime_digest(opt[SOFTWARE], opt[MODEL], opt[ENVIRONMENT], d) != AC_EC_OK ||
            ac_runtime_header(d, runtime, sizeof runtime) < 0) {
            fprintf(stderr, "sign: --software and --environment must be sha-256:<64 hex>, "
                            "--model 1..128 printable characters, all three together\n");
            return 2;
        }
    }

    EVP_PKEY *key = load_key(opt[KEY]);
    if (key == NULL) return 1;
    int rc = 1;
    unsigned char *body = NULL;
    size_t blen = 0;
    char digest[AC_DIGEST_HEADER_MAX + 1] = "";
    char kid[AC_JWK_THUMBPRINT_SIZE];
    char nonce[64];
    char si[8192], sig[512];
    struct ac_httpsig hs;
    memset(&hs, 0, sizeof hs);
    if (opt[BODY] != NULL) {
        if ((body = read_body(opt[BODY], &blen)) == NULL) goto out;
        if (ac_digest_header(AC_DIGEST_SHA256, body, blen, digest, sizeof digest) < 0) {
            fprintf(stderr, "sign: cannot hash the body\n");
            goto out;
        }
    }
    req.has_body = blen > 0;
    struct sign_headers hv = {digest[0] ? digest : NULL, runtime[0] ? runtime : NULL};
    req.header = header_of;
    req.header_ctx = &hv;
    if (ac_jwk_thumbprint(key, kid) != 0) {
        fprintf(stderr, "sign: unsupported key\n");
        goto out;
    }
    if (opt[NONCE] != NULL) {
        snprintf(nonce, sizeof nonce, "%s", opt[NONCE]);
    } else {
        uint8_t rnd[16];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            fprintf(stderr, "sign: no randomness for the nonce\n");
            goto out;
        }
        ac_b64_encode(rnd, sizeof rnd, nonce, 1);
    }
    const char *comps[8];
    size_t nc = 0;
    comps[nc++] = "@method";
    if (split) {
        comps[nc++] = "@authority";
        comps[nc++] = "@path";
        if (req.query != NULL) comps[nc++] = "@query";
    } else {
        comps[nc++] = "@target-uri";
    }
    if (runtime[0]) comps[nc++] = "agent-runtime";
    if (digest[0]) comps[nc++] = "content-digest";
    comps[nc] = NULL;
    struct ac_httpsig_sign_opts so = {
        .label = opt[LABEL] ? opt[LABEL] : "sig1",
        .components = comps,
        .keyid = opt[KEYID] ? opt[KEYID] : kid,
        .created = created,
        .expires = expires_in > 0 ? created + expires_in : 0,
        .nonce = nonce,
        .tag = "agentclear",
        .with_alg = 1,
    };
    enum ac_ec ec = ac_httpsig_sign(key, &req, &so, si, sizeof si, sig, sizeof sig);
    if (ec != AC_EC_OK) {
        fprintf(stderr, "sign: cannot sign: %s (check --label, --keyid, --nonce)\n",
                ac_ec_title(ec));
        goto out;
    }
    /* the base, as the verifier will rebuild it (json output; also a self-check) */
    if (ac_httpsig_parse(&hs, si, sig, "agentclear") != AC_EC_OK ||
        ac_httpsig_base(&hs, &req) != AC_EC_OK) {
        fprintf(stderr, "sign: the signature does not parse back\n");
        goto out;
    }
    if (strcmp(format, "json") == 0) {
        json_t *h = json_object();
        if (digest[0]) json_object_set_new(h, "Content-Digest", json_string(digest));
        if (runtime[0]) json_object_set_new(h, "Agent-Runtime", json_string(runtime));
        json_object_set_new(h, "Signature-Input", json_string(si));
        json_object_set_new(h, "Signature", json_string(sig));
        json_t *j =
            json_pack("{s:o, s:s, s:I, s:s, s:s%}", "headers", h, "keyid", so.keyid, "created",
                      (json_int_t)created, "nonce", nonce, "signature_base", hs.base, hs.base_len);
        if (j != NULL && so.expires) json_object_set_new(j, "expires", json_integer(so.expires));
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (text == NULL) {
            fprintf(stderr, "sign: out of memory\n");
            goto out;
        }
        printf("%s\n", text);
        free(text);
    } else {
        const char *names_out[] = {"Content-Digest", "Agent-Runtime", "Signature-Input",
                                   "Signature"};
        const char *vals[] = {digest, runtime, si, sig};
        for (size_t i = 0; i < 4; i++) {
            if (vals[i][0] == '\0') continue;
            if (format[0] == 'c')
                print_curl(names_out[i], vals[i]);
            else
                printf("%s: %s\n", names_out[i], vals[i]);
        }
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    ac_httpsig_free(&hs);
    free(body);
    EVP_PKEY_free(key);
    return rc;
}
