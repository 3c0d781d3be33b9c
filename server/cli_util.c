/* Helpers shared by the subcommands (see cli.h). */
#include <errno.h>
#include <stdlib.h>

#include "server/cli.h"

int ac_cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) return -1;
    *out = (int64_t)v;
    return 0;
}
