/* risk/reasons.c -- the reason registry table; see reasons.h. */
#include "risk/reasons.h"

#include <string.h>

static const struct {
    const char *code;
    enum ac_reason_kind kind;
    const char *text;
} table[] = {
#define AC_REASON(sym, code, kind, text) {code, AC_RK_##kind, text},
#include "risk/reasons.def"
#undef AC_REASON
};

const char *ac_reason_code(enum ac_reason r)
{
    return (unsigned)r < AC_RR__COUNT ? table[r].code : "";
}

enum ac_reason_kind ac_reason_kind(enum ac_reason r)
{
    return (unsigned)r < AC_RR__COUNT ? table[r].kind : (enum ac_reason_kind)0;
}

const char *ac_reason_text(enum ac_reason r)
{
    return (unsigned)r < AC_RR__COUNT ? table[r].text : "";
}

enum ac_reason ac_reason_from_code(const char *code)
{
    for (unsigned i = 0; code && i < AC_RR__COUNT; i++)
        if (strcmp(table[i].code, code) == 0) return (enum ac_reason)i;
    return AC_RR__COUNT;
}
