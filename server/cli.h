/* server/cli.h -- subcommands of the agentclear binary. Each returns the process exit code. */
#ifndef AC_CLI_H
#define AC_CLI_H

#include <stdint.h>

int ac_cli_serve(int argc, char **argv);
int ac_cli_migrate(int argc, char **argv);
int ac_cli_ledger(int argc, char **argv);
int ac_cli_errors(int argc, char **argv);
int ac_cli_keygen(int argc, char **argv);
int ac_cli_audit(int argc, char **argv);
int ac_cli_sign(int argc, char **argv);
int ac_cli_evidence(int argc, char **argv);

/* Parse s as a whole decimal integer within [lo, hi] into *out. Returns 0, or -1 (and leaves
 * *out alone) when s is empty, has anything else in it, or is out of range. */
int ac_cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Connect to url and apply pending migrations; logs to stderr. Returns the number applied or -1. */
int ac_migrate_url(const char *url);

#endif
