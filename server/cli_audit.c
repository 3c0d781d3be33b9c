/* agentclear audit bundle FILE [--log-key=VKEY] [--origin=ORIGIN] [--quiet]
 *   Verifies a dispute bundle offline (protocol/bundle.h) and prints a readable account of who
 *   authorised what, when, under which binding and mandate. Exit 0 when everything verifies,
 *   1 when something does not (the first failing item and why go to stderr), 2 when the file
 *   cannot be read or on bad usage. No network, no database. docs/audit.md walks through it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol/bundle.h"
#include "server/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: agentclear audit bundle FILE [--log-key=VKEY] [--origin=ORIGIN] "
               "[--quiet]\n"
               "  verify a dispute bundle offline and print its account\n"
               "  --log-key  the operator's published checkpoint key (note verifier key); "
               "without it the key in the bundle is used and reported unpinned\n");
}

/* Read a whole regular file of at most max bytes. Returns a malloc'd buffer or NULL with a
 * message on stderr. */
static uint8_t *read_bounded(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "audit: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (unsigned long long)st.st_size > max) {
        fprintf(stderr, "audit: %s is not a regular file of 1..%zu bytes\n", path, max);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n);
    if (buf == NULL || fread(buf, 1, n, f) != n) {
        fprintf(stderr, "audit: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int audit_bundle(int argc, char **argv)
{
    const char *file = NULL;
    struct ac_bundle_verify_opts opts = {0};
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--log-key=", 10) == 0 && a[10] != '\0') {
            opts.log_key = a + 10;
        } else if (strncmp(a, "--origin=", 9) == 0 && a[9] != '\0') {
            opts.origin = a + 9;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] != '-' && file == NULL) {
            file = a;
        } else {
            fprintf(stderr, "audit bundle: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (file == NULL) {
        usage(stderr);
        return 2;
    }
    size_t len;
    uint8_t *buf = read_bounded(file, AC_BUNDLE_MAX, &len);
    if (buf == NULL) return 2;
    struct ac_bundle_result res;
    int rc = ac_bundle_verify(buf, len, &opts, &res);
    free(buf);
    if (!quiet || rc != 0) fputs(ac_buf_str(&res.account), stdout);
    fflush(stdout);
    if (rc != 0) fprintf(stderr, "audit: FAILED at %s: %s\n", res.item, res.why);
    ac_bundle_result_free(&res);
    return rc == 0 ? 0 : 1;
}

int ac_cli_audit(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bundle") == 0) return audit_bundle(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
