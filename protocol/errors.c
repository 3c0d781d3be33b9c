#include "protocol/errors.h"

#include <string.h>

static const struct {
    const char *code;
    unsigned status;
    const char *title;
} ac_ec_table[] = {
#define AC_ERR(sym, code, status, title) {code, status, title},
#include "protocol/errors.def"
#undef AC_ERR
};

const char *ac_ec_code(enum ac_ec ec)
{
    return (unsigned)ec < AC_EC__COUNT ? ac_ec_table[ec].code : "internal";
}

unsigned ac_ec_status(enum ac_ec ec)
{
    return (unsigned)ec < AC_EC__COUNT ? ac_ec_table[ec].status : 500;
}

const char *ac_ec_title(enum ac_ec ec)
{
    return (unsigned)ec < AC_EC__COUNT ? ac_ec_table[ec].title : "internal error";
}

enum ac_ec ac_ec_from_code(const char *code)
{
    for (unsigned i = 0; i < AC_EC__COUNT; i++)
        if (strcmp(ac_ec_table[i].code, code) == 0) return (enum ac_ec)i;
    return AC_EC__COUNT;
}
