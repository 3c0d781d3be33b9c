/* risk/reasons.h -- the registry of risk reason codes (see reasons.def). */
#ifndef AC_RISK_REASONS_H
#define AC_RISK_REASONS_H

enum ac_reason {
#define AC_REASON(sym, code, kind, text) AC_RR_##sym,
#include "risk/reasons.def"
#undef AC_REASON
    AC_RR__COUNT
};

/* What a reason does to the verdict. */
enum ac_reason_kind {
    AC_RK_DENY = 1,    /* the payment must not happen */
    AC_RK_STEP_UP = 2, /* the payment may happen once the user confirms */
};

/* Stable string code ("cap_day_exceeded"); "" for a value outside the registry. Never NULL. */
const char *ac_reason_code(enum ac_reason r);
/* The reason's kind; 0 for a value outside the registry. */
enum ac_reason_kind ac_reason_kind(enum ac_reason r);
/* Short lowercase description; "" outside the registry. Never NULL. */
const char *ac_reason_text(enum ac_reason r);
/* Look a code up; AC_RR__COUNT when unknown. */
enum ac_reason ac_reason_from_code(const char *code);

#endif
