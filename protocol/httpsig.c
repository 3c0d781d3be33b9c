/* RFC 9421 HTTP Message Signatures over requests: selection, signature base, verify, policy,
 * signer. */
#include "protocol/httpsig.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/sig.h"

/* ==== small helpers ======================================================================== */

/* A growable byte buffer capped at AC_HTTPSIG_BASE_MAX. err: 1 over the cap, 2 out of memory. */
struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->err) return;
    if (n > AC_HTTPSIG_BASE_MAX - b->len) {
        b->err = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 512;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->err = 2;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_putc(struct sbuf *b, char c)
{
    sb_put(b, &c, 1);
}

static enum ac_ec sfv_ec(int rc)
{
    return rc == AC_SFV_ENOMEM ? AC_EC_INTERNAL : AC_EC_SIG_MALFORMED;
}

static int is_lower_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* ==== component identifiers ================================================================ */

static const char *const derived_names[] = {
    "@method", "@target-uri",     "@authority", "@scheme",
    "@path",   "@request-target", "@query",     "@query-param",
};

static int is_derived(const char *name)
{
    for (size_t i = 0; i < sizeof derived_names / sizeof derived_names[0]; i++)
        if (strcmp(name, derived_names[i]) == 0) return 1;
    return 0;
}

/* 1 when the item is a component identifier this verifier can process (see ac_httpsig_parse). */
static int valid_component(const struct ac_sfv_item *it)
{
    if (it->bare.type != AC_SFV_STRING || it->bare.len == 0) return 0;
    const char *name = it->bare.str;
    if (name[0] == '@') {
        if (!is_derived(name)) return 0; /* also rejects @status and @signature-params */
        if (strcmp(name, "@query-param") == 0)
            return it->nparams == 1 && strcmp(it->params[0].key, "name") == 0 &&
                   it->params[0].value.type == AC_SFV_STRING;
        return it->nparams == 0;
    }
    for (size_t i = 0; i < it->bare.len; i++)
        if (!is_lower_tchar((unsigned char)name[i])) return 0;
    for (size_t i = 0; i < it->nparams; i++) {
        const struct ac_sfv_param *p = &it->params[i];
        if (strcmp(p->key, "sf") == 0) {
            if (p->value.type != AC_SFV_BOOLEAN || p->value.num != 1) return 0;
        } else if (strcmp(p->key, "key") == 0) {
            if (p->value.type != AC_SFV_STRING) return 0;
        } else {
            return 0; /* bs, tr, req and unknown parameters are not supported */
        }
    }
    return 1;
}

/* Fill hs's components and parameters from the selected Signature-Input member. */
static enum ac_ec load_input(struct ac_httpsig *hs, const char *label,
                             const struct ac_sfv_member *m)
{
    if (m->bare.type != AC_SFV_INNER_LIST) return AC_EC_SIG_MALFORMED;
    if (m->nitems > AC_HTTPSIG_MAX_COMPONENTS) return AC_EC_SIG_MALFORMED;
    hs->label = label;
    for (size_t i = 0; i < m->nitems; i++) {
        const struct ac_sfv_item *it = &m->items[i];
        if (!valid_component(it)) return AC_EC_SIG_MALFORMED;
        char id[AC_HTTPSIG_ID_MAX];
        long n = ac_sfv_ser_item(it, id, sizeof id);
        if (n < 0) return AC_EC_SIG_MALFORMED;
        for (size_t k = 0; k < i; k++)
            if (strcmp(hs->comps[k].id, id) == 0) return AC_EC_SIG_MALFORMED; /* duplicate */
        char *dup = ac_sfv_alloc(&hs->arena, (size_t)n + 1);
        if (dup == NULL) return AC_EC_INTERNAL;
        memcpy(dup, id, (size_t)n + 1);
        hs->comps[i].name = it->bare.str;
        hs->comps[i].params = it->params;
        hs->comps[i].nparams = it->nparams;
        hs->comps[i].id = dup;
    }
    hs->ncomps = m->nitems;
    for (size_t i = 0; i < m->nparams; i++) {
        const struct ac_sfv_param *p = &m->params[i];
        const char *k = p->key;
        if (strcmp(k, "created") == 0 || strcmp(k, "expires") == 0) {
            if (p->value.type != AC_SFV_INTEGER) return AC_EC_SIG_MALFORMED;
            if (k[0] == 'c') {
                hs->has_created = 1;
                hs->created = p->value.num;
            } else {
                hs->has_expires = 1;
                hs->expires = p->value.num;
            }
        } else if (strcmp(k, "nonce") == 0 || strcmp(k, "alg") == 0 || strcmp(k, "keyid") == 0 ||
                   strcmp(k, "tag") == 0) {
            if (p->value.type != AC_SFV_STRING) return AC_EC_SIG_MALFORMED;
            const char **dst = k[0] == 'n'   ? &hs->nonce
                               : k[0] == 'a' ? &hs->alg
                               : k[0] == 'k' ? &hs->keyid
                                             : &hs->tag;
            *dst = p->value.str;
        }
        /* other parameters are kept (they are part of @signature-params) but not interpreted */
    }
    hs->params = m->params;
    hs->nparams = m->nparams;
    /* canonical re-serialization never exceeds twice the parsed input (padding of byte
     * sequences, the space after separators), and the input is at most AC_SFV_MAX_INPUT */
    size_t cap = 2u * AC_SFV_MAX_INPUT + 64u;
    char *line = ac_sfv_alloc(&hs->arena, cap);
    if (line == NULL) return AC_EC_INTERNAL;
    long n = ac_sfv_ser_inner_list(m->items, m->nitems, m->params, m->nparams, line, cap);
    if (n < 0) return AC_EC_SIG_MALFORMED;
    hs->params_line = line;
    hs->params_len = (size_t)n;
    return AC_EC_OK;
}

/* ==== parse ================================================================================ */

void ac_httpsig_free(struct ac_httpsig *hs)
{
    if (hs == NULL) return;
    ac_sfv_arena_release(&hs->arena);
    free(hs->base);
    memset(hs, 0, sizeof *hs);
}

enum ac_ec ac_httpsig_parse(struct ac_httpsig *hs, const char *sig_input, const char *signature,
                            const char *tag)
{
    memset(hs, 0, sizeof *hs);
    if (sig_input == NULL || signature == NULL) return AC_EC_SIG_MISSING;
    struct ac_sfv_dict in, sg;
    enum ac_ec ec;
    int rc =
        ac_sfv_parse_dict(sig_input, strnlen(sig_input, AC_SFV_MAX_INPUT + 1), &hs->arena, &in);
    if (rc != AC_SFV_OK) {
        ec = sfv_ec(rc);
        goto fail;
    }
    rc = ac_sfv_parse_dict(signature, strnlen(signature, AC_SFV_MAX_INPUT + 1), &hs->arena, &sg);
    if (rc != AC_SFV_OK) {
        ec = sfv_ec(rc);
        goto fail;
    }
    if (in.n == 0 || sg.n == 0) { /* an empty Dictionary field is as good as none */
        ec = AC_EC_SIG_MISSING;
        goto fail;
    }
    const struct ac_sfv_dict_entry *sel = NULL;
    if (tag == NULL) {
        if (in.n == 1) sel = &in.v[0];
    } else {
        for (size_t i = 0; i < in.n; i++) {
            const struct ac_sfv_member *m = &in.v[i].value;
            if (m->bare.type != AC_SFV_INNER_LIST) continue;
            const struct ac_sfv_param *t = ac_sfv_param_get(m->params, m->nparams, "tag");
            if (t == NULL || t->value.type != AC_SFV_STRING || strcmp(t->value.str, tag) != 0)
                continue;
            if (sel != NULL) { /* two signatures claim the tag: ambiguous */
                ec = AC_EC_SIG_MALFORMED;
                goto fail;
            }
            sel = &in.v[i];
        }
    }
    if (sel == NULL) {
        ec = AC_EC_SIG_LABEL_MISMATCH;
        goto fail;
    }
    ec = load_input(hs, sel->key, &sel->value);
    if (ec != AC_EC_OK) goto fail;
    const struct ac_sfv_dict_entry *s = ac_sfv_dict_get(&sg, sel->key);
    if (s == NULL) {
        ec = AC_EC_SIG_LABEL_MISMATCH;
        goto fail;
    }
    if (s->value.bare.type != AC_SFV_BYTES) {
        ec = AC_EC_SIG_MALFORMED;
        goto fail;
    }
    hs->sig = (const uint8_t *)s->value.bare.str;
    hs->siglen = s->value.bare.len;
    return AC_EC_OK;
fail:
    ac_httpsig_free(hs);
    return ec;
}

int ac_httpsig_covers(const struct ac_httpsig *hs, const char *name)
{
    for (size_t i = 0; i < hs->ncomps; i++)
        if (hs->comps[i].nparams == 0 && strcmp(hs->comps[i].name, name) == 0) return 1;
    return 0;
}

/* ==== derived components =================================================================== */

/* A request part usable in a derived component: present, at most AC_HTTPSIG_URI_MAX bytes, only
 * printable ASCII (RFC 9421 §2.2: printable characters and spaces, no newlines). */
static enum ac_ec part_ok(const char *s)
{
    if (s == NULL) return AC_EC_SIG_COMPONENT_ABSENT;
    size_t n = strnlen(s, AC_HTTPSIG_URI_MAX + 1);
    if (n > AC_HTTPSIG_URI_MAX) return AC_EC_SIG_MALFORMED;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return AC_EC_SIG_MALFORMED;
    return AC_EC_OK;
}

static void put_lower(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        sb_putc(b, c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
    }
}

/* ASCII case-insensitive equality of a NUL-terminated string with a lowercase literal. */
static int eq_nocase(const char *s, const char *lower)
{
    for (; *s != '\0' && *lower != '\0'; s++, lower++) {
        char c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
        if (c != *lower) return 0;
    }
    return *s == *lower;
}

/* HTTP §4.2.3 normalization: lowercase, default port (and an empty port) omitted. */
static void put_authority(struct sbuf *b, const char *scheme, const char *auth)
{
    size_t n = strlen(auth);
    const char *dflt = NULL;
    if (eq_nocase(scheme, "https")) dflt = ":443";
    if (eq_nocase(scheme, "http")) dflt = ":80";
    if (dflt != NULL) {
        size_t dl = strlen(dflt);
        if (n > dl && strcmp(auth + n - dl, dflt) == 0) n -= dl;
    }
    if (n > 1 && auth[n - 1] == ':') n--;
    put_lower(b, auth, n);
}

static void put_path(struct sbuf *b, const char *path)
{
    sb_puts(b, path[0] ? path : "/");
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* WHATWG URL §5.1 for one name or value: "+" -> SP, then percent-decode ("%" not followed by
 * two hex digits stays literal). out needs n bytes. Returns the decoded length. */
static size_t form_decode(const char *s, size_t n, unsigned char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[k++] = (unsigned char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else {
            out[k++] = (unsigned char)(c == '+' ? ' ' : c);
        }
    }
    return k;
}

/* Percent-encode one byte with the application/x-www-form-urlencoded percent-encode set, space
 * as %20 (RFC 9421 §2.2.8 renders "with+plus" as "with%20plus"). */
static void enc_byte(struct sbuf *b, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '*' ||
        c == '-' || c == '.' || c == '_') {
        sb_putc(b, (char)c);
    } else {
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        sb_put(b, e, 3);
    }
}

static void enc_bytes(struct sbuf *b, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        enc_byte(b, s[i]);
}

/* UTF-8 decode without BOM (WHATWG Encoding §4.3, each maximal invalid subpart becomes U+FFFD),
 * then UTF-8 encode and percent-encode: what URLSearchParams does for a name or value. */
static void form_encode(struct sbuf *b, const unsigned char *s, size_t n)
{
    static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c <= 0x7F) {
            enc_byte(b, (unsigned char)c);
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            enc_bytes(b, fffd, 3);
            i++;
            continue;
        }
        size_t j = i + 1, seen = 0;
        while (seen < need && j < n && s[j] >= lo && s[j] <= hi) {
            lo = 0x80;
            hi = 0xBF;
            j++;
            seen++;
        }
        if (seen == need) {
            enc_bytes(b, s + i, need + 1);
        } else {
            enc_bytes(b, fffd, 3); /* the offending byte (if any) is processed again */
        }
        i = j;
    }
}

/* RFC 9421 §2.2.8 @query-param: the one parameter whose re-encoded name equals want. */
static enum ac_ec put_query_param(struct sbuf *b, const char *query, const char *want)
{
    if (query == NULL) return AC_EC_SIG_COMPONENT_ABSENT;
    size_t qn = strlen(query);
    unsigned char *scratch = malloc(qn + 1);
    if (scratch == NULL) return AC_EC_INTERNAL;
    struct sbuf name = {0};
    const char *found = NULL;
    size_t found_len = 0;
    int dup = 0;
    size_t pos = 0;
    while (pos <= qn) {
        const char *amp = memchr(query + pos, '&', qn - pos);
        size_t end = amp ? (size_t)(amp - query) : qn;
        if (end > pos) {
            const char *pair = query + pos;
            size_t plen = end - pos;
            const char *eq = memchr(pair, '=', plen);
            size_t nlen = eq ? (size_t)(eq - pair) : plen;
            name.len = 0;
            form_encode(&name, scratch, form_decode(pair, nlen, scratch));
            if (name.err) break;
            if (name.len == strlen(want) && memcmp(name.p, want, name.len) == 0) {
                if (found != NULL) dup = 1;
                found = eq ? eq + 1 : pair + plen;
                found_len = eq ? plen - nlen - 1 : 0;
            }
        }
        pos = end + 1;
    }
    enum ac_ec ec = AC_EC_OK;
    if (name.err == 2)
        ec = AC_EC_INTERNAL;
    else if (name.err)
        ec = AC_EC_SIG_MALFORMED;
    else if (found == NULL || dup)
        ec = AC_EC_SIG_COMPONENT_ABSENT;
    else
        form_encode(b, scratch, form_decode(found, found_len, scratch));
    free(name.p);
    free(scratch);
    return ec;
}

static enum ac_ec put_derived(struct sbuf *b, const struct ac_httpsig_component *c,
                              const struct ac_http_request *req)
{
    const char *n = c->name;
    enum ac_ec ec;
    if (strcmp(n, "@method") == 0) {
        if ((ec = part_ok(req->method)) != AC_EC_OK) return ec;
        if (req->method[0] == '\0') return AC_EC_SIG_COMPONENT_ABSENT;
        sb_puts(b, req->method);
        return AC_EC_OK;
    }
    if (strcmp(n, "@scheme") == 0 || strcmp(n, "@target-uri") == 0 ||
        strcmp(n, "@authority") == 0) {
        if ((ec = part_ok(req->scheme)) != AC_EC_OK) return ec;
        if ((ec = part_ok(req->authority)) != AC_EC_OK) return ec;
        if (req->scheme[0] == '\0' || req->authority[0] == '\0') return AC_EC_SIG_COMPONENT_ABSENT;
    }
    if (strcmp(n, "@target-uri") == 0 || strcmp(n, "@path") == 0 ||
        strcmp(n, "@request-target") == 0) {
        if ((ec = part_ok(req->path)) != AC_EC_OK) return ec;
    }
    if (req->query != NULL && (ec = part_ok(req->query)) != AC_EC_OK) return ec;

    if (strcmp(n, "@scheme") == 0) {
        put_lower(b, req->scheme, strlen(req->scheme));
    } else if (strcmp(n, "@authority") == 0) {
        put_authority(b, req->scheme, req->authority);
    } else if (strcmp(n, "@target-uri") == 0) {
        put_lower(b, req->scheme, strlen(req->scheme));
        sb_puts(b, "://");
        put_authority(b, req->scheme, req->authority);
        put_path(b, req->path);
        if (req->query != NULL) {
            sb_putc(b, '?');
            sb_puts(b, req->query);
        }
    } else if (strcmp(n, "@path") == 0) {
        put_path(b, req->path);
    } else if (strcmp(n, "@request-target") == 0) {
        put_path(b, req->path);
        if (req->query != NULL) {
            sb_putc(b, '?');
            sb_puts(b, req->query);
        }
    } else if (strcmp(n, "@query") == 0) {
        sb_putc(b, '?');
        if (req->query != NULL) sb_puts(b, req->query);
    } else if (strcmp(n, "@query-param") == 0) {
        return put_query_param(b, req->query, c->params[0].value.str);
    } else {
        return AC_EC_SIG_MALFORMED; /* valid_component() admits nothing else */
    }
    return AC_EC_OK;
}

/* ==== HTTP fields ========================================================================== */

enum sf_type { SF_NONE, SF_DICT, SF_LIST };

static enum sf_type sf_type_of(const char *name)
{
    static const char *const dicts[] = {
        "accept-signature", "content-digest",      "priority",         "repr-digest", "signature",
        "signature-input",  "want-content-digest", "want-repr-digest",
    };
    static const char *const lists[] = {"accept-ch", "cache-status", "proxy-status"};
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++)
        if (strcmp(name, dicts[i]) == 0) return SF_DICT;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (strcmp(name, lists[i]) == 0) return SF_LIST;
    return SF_NONE;
}

static enum ac_ec put_field(struct sbuf *b, const struct ac_httpsig_component *c,
                            const struct ac_http_request *req)
{
    const char *v = req->header != NULL ? req->header(req->header_ctx, c->name) : NULL;
    if (v == NULL) return AC_EC_SIG_COMPONENT_ABSENT;
    size_t n = strnlen(v, AC_HTTPSIG_BASE_MAX + 1);
    if (n > AC_HTTPSIG_BASE_MAX) return AC_EC_SIG_MALFORMED;
    while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (memchr(v, '\r', n) != NULL || memchr(v, '\n', n) != NULL) return AC_EC_SIG_MALFORMED;

    const struct ac_sfv_param *key = ac_sfv_param_get(c->params, c->nparams, "key");
    const struct ac_sfv_param *sf = ac_sfv_param_get(c->params, c->nparams, "sf");
    if (key == NULL && sf == NULL) {
        sb_put(b, v, n);
        return AC_EC_OK;
    }
    enum sf_type t = key != NULL ? SF_DICT : sf_type_of(c->name);
    if (t == SF_NONE) return AC_EC_SIG_MALFORMED;
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    enum ac_ec ec = AC_EC_OK;
    size_t cap = 2 * n + 64; /* canonical form is at most twice the input (see load_input) */
    char *out = ac_sfv_alloc(&a, cap);
    long len = -1;
    int rc;
    if (out == NULL) {
        ec = AC_EC_INTERNAL;
    } else if (t == SF_DICT) {
        struct ac_sfv_dict d;
        rc = ac_sfv_parse_dict(v, n, &a, &d);
        if (rc != AC_SFV_OK) {
            ec = sfv_ec(rc);
        } else if (key != NULL) {
            const struct ac_sfv_dict_entry *e = ac_sfv_dict_get(&d, key->value.str);
            if (e == NULL)
                ec = AC_EC_SIG_COMPONENT_ABSENT;
            else
                len = ac_sfv_ser_member(&e->value, out, cap);
        } else {
            len = ac_sfv_ser_dict(&d, out, cap);
        }
    } else {
        struct ac_sfv_list l;
        rc = ac_sfv_parse_list(v, n, &a, &l);
        if (rc != AC_SFV_OK)
            ec = sfv_ec(rc);
        else
            len = ac_sfv_ser_list(&l, out, cap);
    }
    if (ec == AC_EC_OK) {
        if (len < 0)
            ec = AC_EC_SIG_MALFORMED;
        else
            sb_put(b, out, (size_t)len);
    }
    ac_sfv_arena_release(&a);
    return ec;
}

/* ==== signature base ======================================================================= */

enum ac_ec ac_httpsig_base(struct ac_httpsig *hs, const struct ac_http_request *req)
{
    free(hs->base);
    hs->base = NULL;
    hs->base_len = 0;
    if (hs->params_line == NULL || req == NULL) return AC_EC_INTERNAL;
    struct sbuf b = {0};
    for (size_t i = 0; i < hs->ncomps; i++) {
        const struct ac_httpsig_component *c = &hs->comps[i];
        sb_puts(&b, c->id);
        sb_puts(&b, ": ");
        enum ac_ec ec = c->name[0] == '@' ? put_derived(&b, c, req) : put_field(&b, c, req);
        if (ec != AC_EC_OK) {
            free(b.p);
            return ec;
        }
        sb_putc(&b, '\n');
    }
    sb_puts(&b, "\"@signature-params\": ");
    sb_put(&b, hs->params_line, hs->params_len);
    if (b.err) {
        free(b.p);
        return b.err == 2 ? AC_EC_INTERNAL : AC_EC_SIG_MALFORMED;
    }
    hs->base = b.p;
    hs->base_len = b.len;
    return AC_EC_OK;
}

/* ==== verify =============================================================================== */

enum ac_ec ac_httpsig_verify(const struct ac_httpsig *hs, EVP_PKEY *key)
{
    if (hs->base == NULL) return AC_EC_INTERNAL;
    enum ac_sig_alg kalg = ac_sig_key_alg(key);
    if (kalg == AC_SIG_NONE) return AC_EC_SIG_ALG_MISMATCH;
    if (hs->alg != NULL) {
        enum ac_sig_alg want = strcmp(hs->alg, "ed25519") == 0             ? AC_SIG_ED25519
                               : strcmp(hs->alg, "ecdsa-p256-sha256") == 0 ? AC_SIG_ES256
                                                                           : AC_SIG_NONE;
        if (want != kalg) return AC_EC_SIG_ALG_MISMATCH;
    }
    if (ac_sig_verify(key, kalg, (const uint8_t *)hs->base, hs->base_len, hs->sig, hs->siglen) == 1)
        return AC_EC_OK;
    return AC_EC_SIG_INVALID;
}

/* ==== policy =============================================================================== */

void ac_httpsig_policy_agentclear(struct ac_httpsig_policy *pol)
{
    static const char *const comps[] = {"@method", "agent-runtime", NULL};
    memset(pol, 0, sizeof *pol);
    pol->tag = "agentclear";
    pol->components = comps;
    pol->require_target = 1;
    pol->require_digest = 1;
    pol->max_skew = AC_HTTPSIG_DEFAULT_SKEW;
    pol->max_age = 0;
}

enum ac_ec ac_httpsig_check_policy(const struct ac_httpsig *hs, const struct ac_http_request *req,
                                   const struct ac_httpsig_policy *pol, int64_t now)
{
    /* parameters */
    if (pol->tag != NULL && (hs->tag == NULL || strcmp(hs->tag, pol->tag) != 0))
        return AC_EC_SIG_PARAM_MISSING;
    if (!hs->has_created) return AC_EC_SIG_PARAM_MISSING;
    if (hs->nonce == NULL || hs->nonce[0] == '\0') return AC_EC_SIG_PARAM_MISSING;
    if (hs->keyid == NULL || hs->keyid[0] == '\0') return AC_EC_SIG_PARAM_MISSING;
    if (pol->max_age <= 0 && !hs->has_expires) return AC_EC_SIG_PARAM_MISSING;

    /* components */
    for (size_t i = 0; pol->components != NULL && pol->components[i] != NULL; i++)
        if (!ac_httpsig_covers(hs, pol->components[i])) return AC_EC_SIG_COMPONENT_MISSING;
    if (pol->require_target && !ac_httpsig_covers(hs, "@target-uri")) {
        if (!ac_httpsig_covers(hs, "@authority") || !ac_httpsig_covers(hs, "@path") ||
            (req->query != NULL && !ac_httpsig_covers(hs, "@query")))
            return AC_EC_SIG_COMPONENT_MISSING;
    }
    if (pol->require_digest && req->has_body && !ac_httpsig_covers(hs, "content-digest")) {
        const char *cd =
            req->header != NULL ? req->header(req->header_ctx, "content-digest") : NULL;
        return cd == NULL ? AC_EC_DIGEST_MISSING : AC_EC_SIG_COMPONENT_MISSING;
    }

    /* time; |created| and |expires| are at most 10^15 (RFC 8941 integers): no overflow */
    int64_t skew = pol->max_skew < 0 ? 0 : pol->max_skew;
    if (hs->created > now && hs->created - now > skew) return AC_EC_SIG_STALE;
    if (hs->created < now && now - hs->created > skew) return AC_EC_SIG_STALE;
    if (hs->has_expires && (hs->expires < now || hs->expires < hs->created))
        return AC_EC_SIG_EXPIRED;
    if (pol->max_age > 0 && hs->created < now && now - hs->created > pol->max_age)
        return AC_EC_SIG_EXPIRED;
    return AC_EC_OK;
}

/* ==== signer =============================================================================== */

enum ac_ec ac_httpsig_sign(EVP_PKEY *key, const struct ac_http_request *req,
                           const struct ac_httpsig_sign_opts *o, char *sig_input, size_t si_cap,
                           char *signature, size_t sig_cap)
{
    if (o == NULL || req == NULL || sig_input == NULL || signature == NULL)
        return AC_EC_PARAMETER_INVALID;
    if (!ac_sfv_is_key(o->label) || o->keyid == NULL || o->components == NULL)
        return AC_EC_PARAMETER_INVALID;
    enum ac_sig_alg alg = ac_sig_key_alg(key);
    if (alg == AC_SIG_NONE) return AC_EC_PARAMETER_INVALID;

    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    struct ac_httpsig hs;
    memset(&hs, 0, sizeof hs);
    enum ac_ec ec = AC_EC_OK;
    struct ac_sfv_item items[AC_HTTPSIG_MAX_COMPONENTS];
    size_t n = 0;
    memset(items, 0, sizeof items);
    for (; o->components[n] != NULL; n++) {
        const char *s = o->components[n];
        if (n == AC_HTTPSIG_MAX_COMPONENTS) {
            ec = AC_EC_PARAMETER_INVALID;
            goto out;
        }
        if (s[0] == '"') {
            if (ac_sfv_parse_item(s, strnlen(s, AC_SFV_MAX_INPUT + 1), &a, &items[n]) !=
                    AC_SFV_OK ||
                items[n].bare.type != AC_SFV_STRING) {
                ec = AC_EC_PARAMETER_INVALID;
                goto out;
            }
        } else {
            items[n].bare.type = AC_SFV_STRING;
            items[n].bare.str = s;
            items[n].bare.len = strnlen(s, AC_SFV_MAX_INPUT + 1);
        }
    }
    struct ac_sfv_param params[6];
    size_t np = 0;
    memset(params, 0, sizeof params);
    params[np].key = "created";
    params[np].value.type = AC_SFV_INTEGER;
    params[np++].value.num = o->created;
    if (o->expires != 0) {
        params[np].key = "expires";
        params[np].value.type = AC_SFV_INTEGER;
        params[np++].value.num = o->expires;
    }
    if (o->nonce != NULL) {
        params[np].key = "nonce";
        params[np].value.type = AC_SFV_STRING;
        params[np].value.str = o->nonce;
        params[np++].value.len = strnlen(o->nonce, AC_SFV_MAX_INPUT + 1);
    }
    if (o->with_alg) {
        params[np].key = "alg";
        params[np].value.type = AC_SFV_STRING;
        params[np].value.str = alg == AC_SIG_ED25519 ? "ed25519" : "ecdsa-p256-sha256";
        params[np].value.len = strlen(params[np].value.str);
        np++;
    }
    params[np].key = "keyid";
    params[np].value.type = AC_SFV_STRING;
    params[np].value.str = o->keyid;
    params[np++].value.len = strnlen(o->keyid, AC_SFV_MAX_INPUT + 1);
    if (o->tag != NULL) {
        params[np].key = "tag";
        params[np].value.type = AC_SFV_STRING;
        params[np].value.str = o->tag;
        params[np++].value.len = strnlen(o->tag, AC_SFV_MAX_INPUT + 1);
    }
    struct ac_sfv_dict_entry e = {.key = o->label};
    e.value.bare.type = AC_SFV_INNER_LIST;
    e.value.items = items;
    e.value.nitems = n;
    e.value.params = params;
    e.value.nparams = np;
    struct ac_sfv_dict d = {&e, 1};
    if (ac_sfv_ser_dict(&d, sig_input, si_cap) < 0) {
        ec = AC_EC_PARAMETER_INVALID;
        goto out;
    }

    /* From here on the signer takes the verifier's path over its own output. */
    struct ac_sfv_dict in;
    int rc = ac_sfv_parse_dict(sig_input, strlen(sig_input), &hs.arena, &in);
    if (rc != AC_SFV_OK || in.n != 1) {
        ec = rc == AC_SFV_ENOMEM ? AC_EC_INTERNAL : AC_EC_PARAMETER_INVALID;
        goto out;
    }
    if ((ec = load_input(&hs, in.v[0].key, &in.v[0].value)) != AC_EC_OK) goto out;
    if ((ec = ac_httpsig_base(&hs, req)) != AC_EC_OK) goto out;
    uint8_t raw[AC_SIG_MAX];
    size_t rawlen = 0;
    if (ac_sig_sign(key, (const uint8_t *)hs.base, hs.base_len, raw, &rawlen) != 0) {
        ec = AC_EC_INTERNAL;
        goto out;
    }
    struct ac_sfv_dict_entry se = {.key = o->label};
    se.value.bare.type = AC_SFV_BYTES;
    se.value.bare.str = (const char *)raw;
    se.value.bare.len = rawlen;
    struct ac_sfv_dict sd = {&se, 1};
    if (ac_sfv_ser_dict(&sd, signature, sig_cap) < 0) ec = AC_EC_PARAMETER_INVALID;
out:
    ac_httpsig_free(&hs);
    ac_sfv_arena_release(&a);
    return ec;
}
