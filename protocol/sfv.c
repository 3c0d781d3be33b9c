/* RFC 8941 Structured Field Values: parser (§4.2) and serializer (§4.1). */
#include "protocol/sfv.h"

#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ==== arena ================================================================================ */

#define ALIGN_UP(n) (((n) + (alignof(max_align_t) - 1)) & ~(size_t)(alignof(max_align_t) - 1))
#define BLOCK_DATA 4096u

struct ac_sfv_block {
    struct ac_sfv_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

void *ac_sfv_alloc(struct ac_sfv_arena *a, size_t n)
{
    if (n > AC_SFV_ARENA_MAX) return NULL;
    n = ALIGN_UP(n == 0 ? 1 : n);
    struct ac_sfv_block *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > BLOCK_DATA ? n : BLOCK_DATA;
        size_t sz = sizeof *b + cap;
        if (a->total + sz > AC_SFV_ARENA_MAX) return NULL;
        b = malloc(sz);
        if (b == NULL) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
        a->total += sz;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void ac_sfv_arena_release(struct ac_sfv_arena *a)
{
    struct ac_sfv_block *b = a->head;
    while (b != NULL) {
        struct ac_sfv_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ==== character classes ==================================================================== */

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}
static int is_lcalpha(int c)
{
    return c >= 'a' && c <= 'z';
}
static int is_alpha(int c)
{
    return is_lcalpha(c) || (c >= 'A' && c <= 'Z');
}
/* RFC 9110 tchar */
static int is_tchar(int c)
{
    return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}
static int is_key_char(int c)
{
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '*';
}
static int is_b64_char(int c)
{
    return is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=';
}

int ac_sfv_is_key(const char *s)
{
    if (s == NULL || !(is_lcalpha((unsigned char)s[0]) || s[0] == '*')) return 0;
    for (size_t i = 1; s[i] != '\0'; i++)
        if (!is_key_char((unsigned char)s[i])) return 0;
    return 1;
}

int ac_sfv_is_token(const char *s, size_t len)
{
    if (s == NULL || len == 0 || !(is_alpha((unsigned char)s[0]) || s[0] == '*')) return 0;
    for (size_t i = 1; i < len; i++) {
        int c = (unsigned char)s[i];
        if (!is_tchar(c) && c != ':' && c != '/') return 0;
    }
    return 1;
}

/* ==== parser =============================================================================== */

struct parser {
    const unsigned char *s;
    size_t i, n;
    struct ac_sfv_arena *a;
    int rc; /* first failure, AC_SFV_OK while none */
};

static int fail(struct parser *p, int rc)
{
    if (p->rc == AC_SFV_OK) p->rc = rc;
    return -1;
}

static int peek(const struct parser *p)
{
    return p->i < p->n ? p->s[p->i] : -1;
}

static int at_end(const struct parser *p)
{
    return p->i >= p->n;
}

static void skip_sp(struct parser *p)
{
    while (p->i < p->n && p->s[p->i] == ' ')
        p->i++;
}

static void skip_ows(struct parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t'))
        p->i++;
}

static void *palloc(struct parser *p, size_t n)
{
    void *r = ac_sfv_alloc(p->a, n);
    if (r == NULL) fail(p, AC_SFV_ENOMEM);
    return r;
}

/* Grow *arr (elements of size elem, *cap of them) so that one more fits after *n. */
static int grow(struct parser *p, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    if (ncap > AC_SFV_ARENA_MAX / elem) return fail(p, AC_SFV_ENOMEM);
    void *na = palloc(p, ncap * elem);
    if (na == NULL) return -1;
    if (n) memcpy(na, *arr, n * elem);
    *arr = na;
    *cap = ncap;
    return 0;
}

/* Copy s[from, to) into the arena as a NUL-terminated string. */
static char *pstrdup(struct parser *p, size_t from, size_t to)
{
    char *r = palloc(p, to - from + 1);
    if (r == NULL) return NULL;
    memcpy(r, p->s + from, to - from);
    r[to - from] = '\0';
    return r;
}

/* §4.2.4 Parsing an Integer or Decimal */
static int parse_number(struct parser *p, struct ac_sfv_bare *out)
{
    int is_dec = 0, sign = 1;
    size_t ndigits = 0, int_digits = 0, frac_digits = 0;
    int64_t ival = 0, fval = 0;
    if (peek(p) == '-') {
        p->i++;
        sign = -1;
    }
    if (at_end(p)) return fail(p, AC_SFV_ESYNTAX);
    if (!is_digit(peek(p))) return fail(p, AC_SFV_ESYNTAX);
    for (;;) {
        int c = peek(p);
        if (c < 0) break;
        if (is_digit(c)) {
            p->i++;
            ndigits++;
            if (is_dec) {
                frac_digits++;
                if (frac_digits <= 3) fval = fval * 10 + (c - '0');
            } else {
                int_digits++;
                if (int_digits <= 15) ival = ival * 10 + (c - '0');
            }
        } else if (!is_dec && c == '.') {
            if (ndigits > 12) return fail(p, AC_SFV_ESYNTAX);
            p->i++;
            ndigits++; /* the "." counts toward input_number's length */
            is_dec = 1;
        } else {
            break;
        }
        if (!is_dec && ndigits > 15) return fail(p, AC_SFV_ESYNTAX);
        if (is_dec && ndigits > 16) return fail(p, AC_SFV_ESYNTAX);
    }
    if (!is_dec) {
        out->type = AC_SFV_INTEGER;
        out->num = sign * ival;
        return 0;
    }
    if (frac_digits == 0) return fail(p, AC_SFV_ESYNTAX); /* ends with "." */
    if (frac_digits > 3) return fail(p, AC_SFV_ESYNTAX);
    for (size_t k = frac_digits; k < 3; k++)
        fval *= 10;
    out->type = AC_SFV_DECIMAL;
    out->num = sign * (ival * 1000 + fval);
    return 0;
}

/* §4.2.5 Parsing a String */
static int parse_string(struct parser *p, struct ac_sfv_bare *out)
{
    if (peek(p) != '"') return fail(p, AC_SFV_ESYNTAX);
    p->i++;
    /* find the closing quote first so that exactly the needed space is allocated */
    size_t j = p->i;
    for (;;) {
        if (j >= p->n) return fail(p, AC_SFV_ESYNTAX);
        int c = p->s[j];
        if (c == '\\') {
            if (j + 1 >= p->n) return fail(p, AC_SFV_ESYNTAX);
            int nx = p->s[j + 1];
            if (nx != '"' && nx != '\\') return fail(p, AC_SFV_ESYNTAX);
            j += 2;
        } else if (c == '"') {
            break;
        } else if (c <= 0x1f || c >= 0x7f) {
            return fail(p, AC_SFV_ESYNTAX);
        } else {
            j++;
        }
    }
    char *s = palloc(p, j - p->i + 1);
    if (s == NULL) return -1;
    size_t k = 0;
    while (p->i < j) {
        if (p->s[p->i] == '\\') p->i++;
        s[k++] = (char)p->s[p->i++];
    }
    s[k] = '\0';
    p->i = j + 1;
    out->type = AC_SFV_STRING;
    out->str = s;
    out->len = k;
    return 0;
}

/* §4.2.6 Parsing a Token */
static int parse_token(struct parser *p, struct ac_sfv_bare *out)
{
    int c = peek(p);
    if (!(is_alpha(c) || c == '*')) return fail(p, AC_SFV_ESYNTAX);
    size_t from = p->i++;
    while ((c = peek(p)) >= 0 && (is_tchar(c) || c == ':' || c == '/'))
        p->i++;
    char *s = pstrdup(p, from, p->i);
    if (s == NULL) return -1;
    out->type = AC_SFV_TOKEN;
    out->str = s;
    out->len = p->i - from;
    return 0;
}

static int b64_val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* §4.2.7 Parsing a Byte Sequence. As §4.2.7 advises, missing "=" padding and non-zero pad bits
 * are accepted; "=" anywhere but at the end, more than two of them, padding that does not
 * complete a quantum, or a lone trailing sextet are rejected (they cannot be decoded). */
static int parse_bytes(struct parser *p, struct ac_sfv_bare *out)
{
    if (peek(p) != ':') return fail(p, AC_SFV_ESYNTAX);
    p->i++;
    size_t from = p->i, to = from;
    while (to < p->n && p->s[to] != ':')
        to++;
    if (to >= p->n) return fail(p, AC_SFV_ESYNTAX);
    for (size_t k = from; k < to; k++)
        if (!is_b64_char(p->s[k])) return fail(p, AC_SFV_ESYNTAX);
    size_t end = to, pad = 0;
    while (end > from && p->s[end - 1] == '=') {
        end--;
        pad++;
    }
    size_t r = end - from;
    if (pad > 2 || r % 4 == 1 || (pad && (r + pad) % 4 != 0)) return fail(p, AC_SFV_ESYNTAX);
    uint8_t *buf = palloc(p, r / 4 * 3 + 3 + 1);
    if (buf == NULL) return -1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t q = from; q < end; q++) {
        int v = b64_val(p->s[q]);
        if (v < 0) return fail(p, AC_SFV_ESYNTAX); /* "=" inside */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    buf[k] = 0;
    p->i = to + 1;
    out->type = AC_SFV_BYTES;
    out->str = (const char *)buf;
    out->len = k;
    return 0;
}

/* §4.2.8 Parsing a Boolean */
static int parse_boolean(struct parser *p, struct ac_sfv_bare *out)
{
    if (peek(p) != '?') return fail(p, AC_SFV_ESYNTAX);
    p->i++;
    int c = peek(p);
    if (c != '0' && c != '1') return fail(p, AC_SFV_ESYNTAX);
    p->i++;
    out->type = AC_SFV_BOOLEAN;
    out->num = c == '1';
    out->str = NULL;
    return 0;
}

/* §4.2.3.1 Parsing a Bare Item */
static int parse_bare(struct parser *p, struct ac_sfv_bare *out)
{
    int c = peek(p);
    if (c == '-' || is_digit(c)) return parse_number(p, out);
    if (c == '"') return parse_string(p, out);
    if (is_alpha(c) || c == '*') return parse_token(p, out);
    if (c == ':') return parse_bytes(p, out);
    if (c == '?') return parse_boolean(p, out);
    return fail(p, AC_SFV_ESYNTAX);
}

/* §4.2.3.3 Parsing a Key */
static const char *parse_key(struct parser *p)
{
    int c = peek(p);
    if (!(is_lcalpha(c) || c == '*')) {
        fail(p, AC_SFV_ESYNTAX);
        return NULL;
    }
    size_t from = p->i++;
    while ((c = peek(p)) >= 0 && is_key_char(c))
        p->i++;
    return pstrdup(p, from, p->i);
}

/* §4.2.3.2 Parsing Parameters */
static int parse_params(struct parser *p, struct ac_sfv_param **out, size_t *nout)
{
    struct ac_sfv_param *v = NULL;
    size_t n = 0, cap = 0;
    while (peek(p) == ';') {
        p->i++;
        skip_sp(p);
        const char *key = parse_key(p);
        if (key == NULL) return -1;
        struct ac_sfv_bare val = {.type = AC_SFV_BOOLEAN, .num = 1};
        if (peek(p) == '=') {
            p->i++;
            if (parse_bare(p, &val) != 0) return -1;
        }
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(v[k].key, key) == 0) break;
        if (k < n) {
            v[k].value = val; /* overwrite, keep position */
            continue;
        }
        if (grow(p, (void **)&v, &cap, n, sizeof *v) != 0) return -1;
        v[n].key = key;
        v[n].value = val;
        n++;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* §4.2.3 Parsing an Item */
static int parse_item(struct parser *p, struct ac_sfv_item *out)
{
    if (parse_bare(p, &out->bare) != 0) return -1;
    return parse_params(p, &out->params, &out->nparams);
}

/* §4.2.1.2 Parsing an Inner List */
static int parse_inner_list(struct parser *p, struct ac_sfv_member *out)
{
    if (peek(p) != '(') return fail(p, AC_SFV_ESYNTAX);
    p->i++;
    struct ac_sfv_item *v = NULL;
    size_t n = 0, cap = 0;
    while (!at_end(p)) {
        skip_sp(p);
        if (peek(p) == ')') {
            p->i++;
            out->bare.type = AC_SFV_INNER_LIST;
            out->items = v;
            out->nitems = n;
            return parse_params(p, &out->params, &out->nparams);
        }
        if (grow(p, (void **)&v, &cap, n, sizeof *v) != 0) return -1;
        memset(&v[n], 0, sizeof v[n]);
        if (parse_item(p, &v[n]) != 0) return -1;
        n++;
        int c = peek(p);
        if (c != ' ' && c != ')') return fail(p, AC_SFV_ESYNTAX);
    }
    return fail(p, AC_SFV_ESYNTAX); /* no closing parenthesis */
}

/* §4.2.1.1 Parsing an Item or Inner List */
static int parse_member(struct parser *p, struct ac_sfv_member *out)
{
    memset(out, 0, sizeof *out);
    if (peek(p) == '(') return parse_inner_list(p, out);
    struct ac_sfv_item it = {0};
    if (parse_item(p, &it) != 0) return -1;
    out->bare = it.bare;
    out->params = it.params;
    out->nparams = it.nparams;
    return 0;
}

/* After a List or Dictionary member: OWS, then end or "," OWS and more. Returns 1 at the end,
 * 0 when another member follows, -1 on failure. */
static int after_member(struct parser *p)
{
    skip_ows(p);
    if (at_end(p)) return 1;
    if (peek(p) != ',') return fail(p, AC_SFV_ESYNTAX);
    p->i++;
    skip_ows(p);
    if (at_end(p)) return fail(p, AC_SFV_ESYNTAX); /* trailing comma */
    return 0;
}

/* §4.2.1 Parsing a List */
static int parse_list_body(struct parser *p, struct ac_sfv_list *out)
{
    struct ac_sfv_member *v = NULL;
    size_t n = 0, cap = 0;
    while (!at_end(p)) {
        if (grow(p, (void **)&v, &cap, n, sizeof *v) != 0) return -1;
        if (parse_member(p, &v[n]) != 0) return -1;
        n++;
        int r = after_member(p);
        if (r < 0) return -1;
        if (r == 1) break;
    }
    out->v = v;
    out->n = n;
    return 0;
}

/* §4.2.2 Parsing a Dictionary */
static int parse_dict_body(struct parser *p, struct ac_sfv_dict *out)
{
    struct ac_sfv_dict_entry *v = NULL;
    size_t n = 0, cap = 0;
    while (!at_end(p)) {
        const char *key = parse_key(p);
        if (key == NULL) return -1;
        struct ac_sfv_member m = {0};
        if (peek(p) == '=') {
            p->i++;
            if (parse_member(p, &m) != 0) return -1;
        } else {
            m.bare.type = AC_SFV_BOOLEAN;
            m.bare.num = 1;
            if (parse_params(p, &m.params, &m.nparams) != 0) return -1;
        }
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(v[k].key, key) == 0) break;
        if (k < n) {
            v[k].value = m; /* last value wins, first position kept */
        } else {
            if (grow(p, (void **)&v, &cap, n, sizeof *v) != 0) return -1;
            v[n].key = key;
            v[n].value = m;
            n++;
        }
        int r = after_member(p);
        if (r < 0) return -1;
        if (r == 1) break;
    }
    out->v = v;
    out->n = n;
    return 0;
}

/* §4.2 steps 1-2: checks shared by the three entry points. */
static int begin(struct parser *p, const char *in, size_t len, struct ac_sfv_arena *a)
{
    p->s = (const unsigned char *)in;
    p->i = 0;
    p->n = len;
    p->a = a;
    p->rc = AC_SFV_OK;
    if (len > AC_SFV_MAX_INPUT) return fail(p, AC_SFV_ETOOBIG);
    if (len > 0 && in == NULL) return fail(p, AC_SFV_ESYNTAX);
    for (size_t k = 0; k < len; k++)
        if (p->s[k] == 0 || p->s[k] > 0x7f) return fail(p, AC_SFV_ESYNTAX); /* not ASCII */
    skip_sp(p);
    return 0;
}

/* §4.2 steps 6-7: only SP may follow the value. */
static int finish(struct parser *p)
{
    skip_sp(p);
    if (!at_end(p)) return fail(p, AC_SFV_ESYNTAX);
    return 0;
}

int ac_sfv_parse_list(const char *in, size_t len, struct ac_sfv_arena *a, struct ac_sfv_list *out)
{
    struct parser p;
    memset(out, 0, sizeof *out);
    if (begin(&p, in, len, a) != 0 || parse_list_body(&p, out) != 0 || finish(&p) != 0) {
        memset(out, 0, sizeof *out);
        assert(p.rc != AC_SFV_OK);
        return p.rc;
    }
    return AC_SFV_OK;
}

int ac_sfv_parse_dict(const char *in, size_t len, struct ac_sfv_arena *a, struct ac_sfv_dict *out)
{
    struct parser p;
    memset(out, 0, sizeof *out);
    if (begin(&p, in, len, a) != 0 || parse_dict_body(&p, out) != 0 || finish(&p) != 0) {
        memset(out, 0, sizeof *out);
        assert(p.rc != AC_SFV_OK);
        return p.rc;
    }
    return AC_SFV_OK;
}

int ac_sfv_parse_item(const char *in, size_t len, struct ac_sfv_arena *a, struct ac_sfv_item *out)
{
    struct parser p;
    memset(out, 0, sizeof *out);
    if (begin(&p, in, len, a) != 0 || parse_item(&p, out) != 0 || finish(&p) != 0) {
        memset(out, 0, sizeof *out);
        assert(p.rc != AC_SFV_OK);
        return p.rc;
    }
    return AC_SFV_OK;
}

const struct ac_sfv_dict_entry *ac_sfv_dict_get(const struct ac_sfv_dict *d, const char *key)
{
    for (size_t i = 0; d != NULL && key != NULL && i < d->n; i++)
        if (strcmp(d->v[i].key, key) == 0) return &d->v[i];
    return NULL;
}

const struct ac_sfv_param *ac_sfv_param_get(const struct ac_sfv_param *p, size_t n, const char *key)
{
    for (size_t i = 0; p != NULL && key != NULL && i < n; i++)
        if (strcmp(p[i].key, key) == 0) return &p[i];
    return NULL;
}

/* ==== serializer =========================================================================== */

struct out {
    char *p;
    size_t cap, len;
    int err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->err) return;
    if (o->cap == 0 || n > o->cap - 1 - o->len) {
        o->err = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void putc_(struct out *o, char c)
{
    put(o, &c, 1);
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char buf[24];
    size_t k = sizeof buf;
    do {
        buf[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, buf + k, sizeof buf - k);
}

static void ser_bare(struct out *o, const struct ac_sfv_bare *b)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    switch (b->type) {
    case AC_SFV_INTEGER: /* §4.1.4 */
        if (b->num < -AC_SFV_INT_MAX || b->num > AC_SFV_INT_MAX) break;
        if (b->num < 0) putc_(o, '-');
        put_u64(o, b->num < 0 ? (uint64_t)(-b->num) : (uint64_t)b->num);
        return;
    case AC_SFV_DECIMAL: { /* §4.1.5: value already exact in thousandths */
        if (b->num < -AC_SFV_DEC_MAX || b->num > AC_SFV_DEC_MAX) break;
        uint64_t m = b->num < 0 ? (uint64_t)(-b->num) : (uint64_t)b->num;
        if (b->num < 0) putc_(o, '-');
        put_u64(o, m / 1000);
        putc_(o, '.');
        unsigned f = (unsigned)(m % 1000);
        char fr[3] = {(char)('0' + f / 100), (char)('0' + f / 10 % 10), (char)('0' + f % 10)};
        size_t nf = 3;
        while (nf > 1 && fr[nf - 1] == '0')
            nf--;
        put(o, fr, nf);
        return;
    }
    case AC_SFV_STRING: /* §4.1.6 */
        if (b->str == NULL && b->len) break;
        putc_(o, '"');
        for (size_t i = 0; i < b->len; i++) {
            unsigned char c = (unsigned char)b->str[i];
            if (c < 0x20 || c > 0x7e) {
                o->err = 1;
                return;
            }
            if (c == '"' || c == '\\') putc_(o, '\\');
            putc_(o, (char)c);
        }
        putc_(o, '"');
        return;
    case AC_SFV_TOKEN: /* §4.1.7 */
        if (!ac_sfv_is_token(b->str, b->len)) break;
        put(o, b->str, b->len);
        return;
    case AC_SFV_BYTES: { /* §4.1.8 */
        if (b->str == NULL && b->len) break;
        const unsigned char *s = (const unsigned char *)b->str;
        putc_(o, ':');
        size_t i = 0;
        for (; i + 3 <= b->len; i += 3) {
            uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
            char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], b64[v & 63]};
            put(o, q, 4);
        }
        if (b->len - i == 1) {
            uint32_t v = (uint32_t)s[i] << 16;
            char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], '=', '='};
            put(o, q, 4);
        } else if (b->len - i == 2) {
            uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
            char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], '='};
            put(o, q, 4);
        }
        putc_(o, ':');
        return;
    }
    case AC_SFV_BOOLEAN: /* §4.1.9 */
        if (b->num != 0 && b->num != 1) break;
        puts_(o, b->num ? "?1" : "?0");
        return;
    case AC_SFV_INNER_LIST:
    default:
        break;
    }
    o->err = 1;
}

/* §4.1.1.2 */
static void ser_params(struct out *o, const struct ac_sfv_param *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!ac_sfv_is_key(p[i].key)) {
            o->err = 1;
            return;
        }
        putc_(o, ';');
        puts_(o, p[i].key);
        if (p[i].value.type == AC_SFV_BOOLEAN && p[i].value.num == 1) continue;
        putc_(o, '=');
        ser_bare(o, &p[i].value);
    }
}

static void ser_item(struct out *o, const struct ac_sfv_item *it)
{
    ser_bare(o, &it->bare);
    ser_params(o, it->params, it->nparams);
}

/* §4.1.1.1 */
static void ser_inner(struct out *o, const struct ac_sfv_item *items, size_t n,
                      const struct ac_sfv_param *p, size_t np)
{
    putc_(o, '(');
    for (size_t i = 0; i < n; i++) {
        if (i) putc_(o, ' ');
        ser_item(o, &items[i]);
    }
    putc_(o, ')');
    ser_params(o, p, np);
}

static void ser_member(struct out *o, const struct ac_sfv_member *m)
{
    if (m->bare.type == AC_SFV_INNER_LIST) {
        ser_inner(o, m->items, m->nitems, m->params, m->nparams);
    } else {
        ser_bare(o, &m->bare);
        ser_params(o, m->params, m->nparams);
    }
}

static long finish_out(struct out *o)
{
    if (o->cap > 0 && o->len < o->cap) o->p[o->len] = '\0';
    return o->err ? -1 : (long)o->len;
}

#define OUT_INIT(buf, c)                                                                           \
    {                                                                                              \
        .p = (buf), .cap = (buf) != NULL ? (c) : 0, .len = 0, .err = 0                             \
    }

long ac_sfv_ser_bare(const struct ac_sfv_bare *b, char *out, size_t cap)
{
    struct out o = OUT_INIT(out, cap);
    ser_bare(&o, b);
    return finish_out(&o);
}

long ac_sfv_ser_params(const struct ac_sfv_param *p, size_t n, char *out, size_t cap)
{
    struct out o = OUT_INIT(out, cap);
    put(&o, "", 0);
    ser_params(&o, p, n);
    return finish_out(&o);
}

long ac_sfv_ser_item(const struct ac_sfv_item *it, char *out, size_t cap)
{
    struct out o = OUT_INIT(out, cap);
    ser_item(&o, it);
    return finish_out(&o);
}

long ac_sfv_ser_inner_list(const struct ac_sfv_item *items, size_t n, const struct ac_sfv_param *p,
                           size_t np, char *out, size_t cap)
{
    struct out o = OUT_INIT(out, cap);
    ser_inner(&o, items, n, p, np);
    return finish_out(&o);
}

long ac_sfv_ser_member(const struct ac_sfv_member *m, char *out, size_t cap)
{
    struct out o = OUT_INIT(out, cap);
    ser_member(&o, m);
    return finish_out(&o);
}

long ac_sfv_ser_list(const struct ac_sfv_list *l, char *out, size_t cap)
{
    struct out o = OUT_INIT(out, cap);
    put(&o, "", 0);
    for (size_t i = 0; i < l->n; i++) {
        if (i) puts_(&o, ", ");
        ser_member(&o, &l->v[i]);
    }
    return finish_out(&o);
}

long ac_sfv_ser_dict(const struct ac_sfv_dict *d, char *out, size_t cap)
{
    struct out o = OUT_INIT(out, cap);
    put(&o, "", 0);
    for (size_t i = 0; i < d->n; i++) {
        const struct ac_sfv_member *m = &d->v[i].value;
        if (i) puts_(&o, ", ");
        if (!ac_sfv_is_key(d->v[i].key)) {
            o.err = 1;
            break;
        }
        puts_(&o, d->v[i].key);
        if (m->bare.type == AC_SFV_BOOLEAN && m->bare.num == 1) {
            ser_params(&o, m->params, m->nparams);
        } else {
            putc_(&o, '=');
            ser_member(&o, m);
        }
    }
    return finish_out(&o);
}
