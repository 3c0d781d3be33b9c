/* server/cli.h -- subcommands of the agentclear binary. Each returns the process exit code. */
#ifndef AC_CLI_H
#define AC_CLI_H

int ac_cli_serve(int argc, char **argv);
int ac_cli_migrate(int argc, char **argv);
int ac_cli_ledger(int argc, char **argv);
int ac_cli_errors(int argc, char **argv);
int ac_cli_keygen(int argc, char **argv);
int ac_cli_audit(int argc, char **argv);
int ac_cli_sign(int argc, char **argv);
int ac_cli_evidence(int argc, char **argv);

/* Connect to url and apply pending migrations; logs to stderr. Returns the number applied or -1. */
int ac_migrate_url(const char *url);

#endif
