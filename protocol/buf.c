#include "protocol/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct ac_buf *b, size_t need)
{
    if (b->oom) return -1;
    if (b->len + need + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void ac_buf_add(struct ac_buf *b, const void *data, size_t n)
{
    if (grow(b, n) != 0) return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ac_buf_adds(struct ac_buf *b, const char *s)
{
    ac_buf_add(b, s, strlen(s));
}

void ac_buf_add_i64(struct ac_buf *b, long long v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    ac_buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

int ac_utf8_next(const uint8_t *s, size_t n, size_t *i, uint32_t *cp)
{
    uint8_t c = s[*i];
    if (c < 0x80) {
        *cp = c;
        (*i)++;
        return 0;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, v = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n - *i - 1 < need) return -1;
    for (size_t k = 1; k <= need; k++) {
        if ((s[*i + k] & 0xc0) != 0x80) return -1;
        v = v << 6 | (s[*i + k] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return -1;
    *i += need + 1;
    *cp = v;
    return 0;
}

int ac_utf8_valid(const void *text, size_t n)
{
    const uint8_t *s = text;
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) { /* the usual byte, without the call */
            i++;
            continue;
        }
        if (ac_utf8_next(s, n, &i, &cp) != 0) return 0;
    }
    return 1;
}

void ac_buf_json_str(struct ac_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson's "\\u%04X" */
    ac_buf_add(b, "\"", 1);
    for (const char *p = s;;) {
        size_t n = 0;
        while (p[n] != '\0' && p[n] != '"' && p[n] != '\\' && (unsigned char)p[n] >= 0x20)
            n++;
        ac_buf_add(b, p, n);
        p += n;
        if (*p == '\0') break;
        unsigned char c = (unsigned char)*p++;
        const char *short_form = c == '"'    ? "\\\""
                                 : c == '\\' ? "\\\\"
                                 : c == '\b' ? "\\b"
                                 : c == '\f' ? "\\f"
                                 : c == '\n' ? "\\n"
                                 : c == '\r' ? "\\r"
                                 : c == '\t' ? "\\t"
                                             : NULL;
        if (short_form != NULL) {
            ac_buf_add(b, short_form, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ac_buf_add(b, e, sizeof e);
        }
    }
    ac_buf_add(b, "\"", 1);
}

void ac_buf_json_key(struct ac_buf *b, const char *name)
{
    ac_buf_add(b, ",\"", 2);
    ac_buf_adds(b, name);
    ac_buf_add(b, "\":", 2);
}

void ac_buf_json_member(struct ac_buf *b, const char *name, const char *s)
{
    ac_buf_json_key(b, name);
    ac_buf_json_str(b, s);
}

void ac_buf_array_str(struct ac_buf *b, const char *s)
{
    ac_buf_add(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);
    for (;;) {
        size_t n = strcspn(s, "\"\\");
        ac_buf_add(b, s, n);
        s += n;
        if (*s == '\0') break;
        ac_buf_add(b, "\\", 1);
        ac_buf_add(b, s++, 1);
    }
    ac_buf_add(b, "\"", 1);
}

void ac_buf_printf(struct ac_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || grow(b, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ac_buf_reset(struct ac_buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p) b->p[0] = '\0';
}

void ac_buf_free(struct ac_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

const char *ac_buf_str(const struct ac_buf *b)
{
    return b->p ? b->p : "";
}

int ac_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
