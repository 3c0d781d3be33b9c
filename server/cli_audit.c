/* agentclear audit bundle FILE [--log-key=VKEY] [--origin=ORIGIN] [--quiet]
 *   Verifies a dispute bundle offline (protocol/bundle.h) and prints a readable account of who
 *   authorised what, when, under which binding and mandate.
 * agentclear audit replay EXPORT [--log-key=VKEY] [--origin=ORIGIN] [--progress=N]
 *   Replays a whole evidence export from record 0 (protocol/replay.h): chain links, tree roots at
 *   every checkpoint, checkpoint signatures. Decision and balance recomputation are hooks that
 *   the risk and ledger sides fill in later.
 * Exit 0 when everything verifies, 1 when something does not (the first failing item and why go
 * to stderr), 2 when the file cannot be read or on bad usage. No network, no database.
 * docs/audit.md walks through it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

#include "protocol/bundle.h"
#include "protocol/replay.h"
#include "server/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: agentclear audit bundle FILE [--log-key=VKEY] [--origin=ORIGIN] "
               "[--quiet]\n"
               "  verify a dispute bundle offline and print its account\n"
               "  --log-key  the operator's published checkpoint key (note verifier key); "
               "without it the key in the bundle is used and reported unpinned\n"
               "       agentclear audit replay EXPORT [--log-key=VKEY] [--origin=ORIGIN] "
               "[--progress=N]\n"
               "  replay a whole evidence export from record 0 (chain, roots, checkpoints)\n");
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

static void progress(void *ctx, uint64_t records, uint64_t checkpoints)
{
    (void)ctx;
    fprintf(stderr, "replay: %" PRIu64 " records, %" PRIu64 " checkpoints verified\n", records,
            checkpoints);
}

static int audit_replay(int argc, char **argv)
{
    const char *file = NULL, *log_key = NULL, *origin = NULL;
    struct ac_replay_hooks hooks = {NULL, progress, 100000, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--log-key=", 10) == 0 && a[10] != '\0') {
            log_key = a + 10;
        } else if (strncmp(a, "--origin=", 9) == 0 && a[9] != '\0') {
            origin = a + 9;
        } else if (strncmp(a, "--progress=", 11) == 0) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(a + 11, &end, 10);
            if (a[11] == '\0' || *end != '\0' || errno != 0) {
                fprintf(stderr, "audit replay: --progress must be a number of records\n");
                return 2;
            }
            hooks.progress_every = n;
        } else if (a[0] != '-' && file == NULL) {
            file = a;
        } else {
            fprintf(stderr, "audit replay: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (file == NULL) {
        usage(stderr);
        return 2;
    }
    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        fprintf(stderr, "audit: cannot read %s%s%s\n", file,
                fd < 0 ? ": "
                       : " (not a "
                         "non-empty regular file)",
                fd < 0 ? strerror(errno) : "");
        if (fd >= 0) close(fd);
        return 2;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        fprintf(stderr, "audit: cannot map %s: %s\n", file, strerror(errno));
        return 2;
    }
    struct ac_replay rp;
    int rc = ac_replay_export(&rp, map, (size_t)st.st_size, log_key, origin, &hooks);
    munmap(map, (size_t)st.st_size);
    if (rc == 0) {
        printf("replay: VERIFIED %" PRIu64 " records and %" PRIu64 " checkpoints of %s "
               "(chain, tree roots, checkpoint signatures%s)\n"
               "replay: NOT YET CHECKED: request signatures and JWS, decisions, balances "
               "(hooks)\n",
               rp.records, rp.checkpoints, rp.origin ? rp.origin : "?",
               log_key ? "; log key pinned" : "; log key from the export");
    } else {
        fprintf(stderr, "audit: FAILED at %s: %s\n", rp.item, rp.why);
    }
    ac_replay_free(&rp);
    return rc == 0 ? 0 : 1;
}

int ac_cli_audit(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bundle") == 0) return audit_bundle(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "replay") == 0) return audit_replay(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
