/* protocol/errors.h -- the error-code registry (see errors.def). */
#ifndef AC_ERRORS_H
#define AC_ERRORS_H

enum ac_ec {
#define AC_ERR(sym, code, status, title) AC_EC_##sym,
#include "protocol/errors.def"
#undef AC_ERR
    AC_EC__COUNT
};

/* Stable string code ("amount_syntax"). Never NULL; unknown values give "internal". */
const char *ac_ec_code(enum ac_ec ec);
/* HTTP status for the code. */
unsigned ac_ec_status(enum ac_ec ec);
/* Short lowercase title. Never NULL. */
const char *ac_ec_title(enum ac_ec ec);
/* Look a code string up; returns AC_EC__COUNT when unknown. */
enum ac_ec ac_ec_from_code(const char *code);

#endif
