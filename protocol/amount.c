#include "protocol/amount.h"

#include <stdio.h>
#include <string.h>

int ac_add_i64(int64_t a, int64_t b, int64_t *r)
{
    int64_t t;
    if (__builtin_add_overflow(a, b, &t)) return -1;
    *r = t;
    return 0;
}

int ac_sub_i64(int64_t a, int64_t b, int64_t *r)
{
    int64_t t;
    if (__builtin_sub_overflow(a, b, &t)) return -1;
    *r = t;
    return 0;
}

enum ac_ec ac_amount_parse(const char *s, unsigned scale, int64_t *out)
{
    if (s == NULL || scale > AC_SCALE_MAX) return AC_EC_AMOUNT_SYNTAX;
    if (s[0] == '-') return AC_EC_AMOUNT_NEGATIVE;
    const char *p = s;
    int64_t v = 0;
    int ndig = 0;
    while (*p >= '0' && *p <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
            return AC_EC_AMOUNT_OVERFLOW;
        p++;
        ndig++;
    }
    if (ndig == 0) return AC_EC_AMOUNT_SYNTAX;
    unsigned frac = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (frac == scale) {
                /* trailing digits beyond the scale: syntax first, precision if all digits */
                const char *q = p;
                while (*q >= '0' && *q <= '9') q++;
                return *q == '\0' ? AC_EC_AMOUNT_PRECISION : AC_EC_AMOUNT_SYNTAX;
            }
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
                return AC_EC_AMOUNT_OVERFLOW;
            p++;
            frac++;
        }
        if (frac == 0) return AC_EC_AMOUNT_SYNTAX;
    }
    if (*p != '\0') return AC_EC_AMOUNT_SYNTAX;
    for (; frac < scale; frac++)
        if (__builtin_mul_overflow(v, 10, &v)) return AC_EC_AMOUNT_OVERFLOW;
    *out = v;
    return AC_EC_OK;
}

char *ac_amount_format(int64_t units, unsigned scale, char buf[AC_AMOUNT_STR_MAX])
{
    /* work in unsigned magnitude so INT64_MIN formats correctly */
    uint64_t mag = units < 0 ? (uint64_t)0 - (uint64_t)units : (uint64_t)units;
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)mag);
    char *w = buf;
    if (units < 0) *w++ = '-';
    if (scale == 0) {
        memcpy(w, digits, (size_t)n + 1);
        return buf;
    }
    int intlen = n - (int)scale;
    if (intlen <= 0) {
        *w++ = '0';
        *w++ = '.';
        for (int i = intlen; i < 0; i++) *w++ = '0';
        memcpy(w, digits, (size_t)n + 1);
    } else {
        memcpy(w, digits, (size_t)intlen);
        w += intlen;
        *w++ = '.';
        memcpy(w, digits + intlen, scale + 1);
    }
    return buf;
}

int ac_id_valid(const char *s)
{
    size_t n = 0;
    if (s == NULL) return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= AC_ID_MAX) return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return n > 0;
}

int ac_asset_code_valid(const char *s)
{
    size_t n = 0;
    if (s == NULL) return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= AC_ASSET_MAX) return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return n > 0;
}
