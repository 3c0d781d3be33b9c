/* server/main.c -- the agentclear binary: one program, subcommands. */
#include <stdio.h>
#include <string.h>

#include "server/cli.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"serve", ac_cli_serve, "run the HTTP server (migrates first)"},
    {"migrate", ac_cli_migrate, "apply pending sql/ migrations"},
    {"ledger", ac_cli_ledger, "ledger check: verify the ledger's invariants"},
    {"errors", ac_cli_errors, "list the error-code registry (--markdown for docs)"},
    {"keygen", ac_cli_keygen, "make a server signing key file (--out=FILE)"},
    {"audit", ac_cli_audit, "audit bundle FILE | replay EXPORT: verify evidence offline"},
    {"evidence", ac_cli_evidence, "evidence export [--out=FILE]: the log for audit replay"},
    {"sign", ac_cli_sign, "sign an HTTP request (RFC 9421) and print curl-ready headers"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: agentclear <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("agentclear %s\n", AC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "agentclear: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
