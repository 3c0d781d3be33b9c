/* agentclear audit bundle FILE [--log-key=VKEY] [--origin=ORIGIN] [--quiet]
 *   Verifies a dispute bundle offline (protocol/bundle.h) and prints a readable account of who
 *   authorised what, when, under which binding and mandate.
 * agentclear audit replay EXPORT [--log-key=VKEY] [--origin=ORIGIN] [--progress=N] [--db=URL]
 *   Replays a whole evidence export from record 0 (protocol/replay.h): chain links, tree roots at
 *   every checkpoint, checkpoint signatures; then, per record (protocol/evcheck.h), every
 *   referenced document present and every user-signed JWS verified, every request signature
 *   verified with the binding's agent key, every decision recomputed with the risk engine, every
 *   account (ledger.account records) and every transfer (payments, refunds, the operator's
 *   ledger.transfer records) applied to balances recomputed from record 0, account flags
 *   enforced; with --db, every recorded transfer and every account of the live ledger compared
 *   with the recomputed ones, both ways.
 * Exit 0 when everything verifies, 1 when something does not (the first failing item and why go
 * to stderr), 2 when the file cannot be read or on bad usage. No network; no database unless
 * --db is given.
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

#include <time.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "protocol/bundle.h"
#include "protocol/evcheck.h"
#include "risk/redecide.h"
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
               "[--progress=N] [--db=URL]\n"
               "  replay a whole evidence export from record 0: chain, roots, checkpoint "
               "signatures, documents and request signatures, balances (--db: against the live "
               "ledger)\n");
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

/* ---- replay -------------------------------------------------------------------------------------
 */

struct rctx {
    struct ac_evcheck *ck;
    double t0;
    struct ac_redecide *rd;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(void *ctx, uint64_t records, uint64_t checkpoints)
{
    struct rctx *x = ctx;
    double dt = mono() - x->t0;
    fprintf(stderr,
            "replay: %" PRIu64 " records, %" PRIu64 " checkpoints verified (%.1f s, %.0f "
            "records/s)\n",
            records, checkpoints, dt, dt > 0 ? (double)records / dt : 0.0);
}

static int on_record(void *ctx, const struct ac_ev_record *r, const uint8_t *bytes, size_t len,
                     char *why, size_t whylen)
{
    (void)bytes;
    (void)len;
    struct rctx *x = ctx;
    if (ac_evcheck_record(x->ck, r, why, whylen) != 0) return -1;
    return ac_redecide_record(x->rd, x->ck, r, why, whylen);
}

static int on_document(void *ctx, const uint8_t *doc, size_t len, char *why, size_t whylen)
{
    return ac_evcheck_document(((struct rctx *)ctx)->ck, doc, len, why, whylen);
}

static int on_user_key(void *ctx, const char *user, const char *jwk, size_t len, char *why,
                       size_t whylen)
{
    return ac_evcheck_user_key(((struct rctx *)ctx)->ck, user, jwk, len, why, whylen);
}

/* Text array literal of ids (valid ids only: they need no escaping). */
static void id_array(struct ac_buf *b, const char *const *ids, size_t n)
{
    ac_buf_reset(b);
    ac_buf_adds(b, "{");
    for (size_t i = 0; i < n; i++)
        ac_buf_printf(b, "%s\"%s\"", i ? "," : "", ids[i]);
    ac_buf_adds(b, "}");
}

#define DB_CHUNK 1000

static const struct ac_db_stmt compare_stmts[] = {
    {"cmp_transfers",
     "select id, debit_account, credit_account, asset, amount, flags, coalesce(pending_id, ''), "
     "timeout_s, code from ac_transfers where id = any($1::text[])",
     1},
    {"cmp_accounts",
     "select a.id, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, "
     "(select count(*) from ac_transfers t where t.debit_account = a.id or t.credit_account = "
     "a.id), a.asset, a.flags from ac_accounts a where a.id = any($1::text[])",
     1},
    {"cmp_account_count", "select count(*) from ac_accounts", 0},
    {"cmp_account_ids", "select id from ac_accounts order by id", 0},
};

/* The row of ids[i] in r (column 0), or -1. A small scan per id is fine at DB_CHUNK. */
static int row_of(PGresult *r, const char *id)
{
    for (int k = 0; k < PQntuples(r); k++)
        if (strcmp(PQgetvalue(r, k, 0), id) == 0) return k;
    return -1;
}

/* Compare the recomputed evidence with the live ledger, naming the first difference:
 *   - every recorded transfer is in ac_transfers with the same fields;
 *   - every account the evidence created is in ac_accounts with the same asset and flags, as many
 *     ledger transfers touching it as recorded ones (a transfer without its record shows here),
 *     and the recomputed posted balances (and pending ones, when no hold is left open in the
 *     evidence: the ledger may have expired one since the last record);
 *   - every account of the ledger was created by a record (an account made behind the log's back).
 * Returns 0 (*holds: accounts whose pending balances were not compared), or -1 with why. */
static int compare_db(const char *url, const struct ac_evcheck *ck, char *why, size_t whylen,
                      size_t *holds)
{
    char err[512];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL || ac_db_prepare(c, compare_stmts, 4, err, sizeof err) != 0) {
        snprintf(why, whylen, "cannot use the database: %.300s", err);
        PQfinish(c);
        return -1;
    }
    int rc = 0;
    struct ac_buf arr = {0};
    const char *ids[DB_CHUNK];
    size_t nx, na;
    const struct ac_evcheck_transfer *xf = ac_evcheck_transfers(ck, &nx);
    const struct ac_evcheck_account *acc = ac_evcheck_accounts(ck, &na);
    PGresult *r = PQexec(c, "begin isolation level repeatable read read only");
    PQclear(r);
    for (size_t off = 0; rc == 0 && off < nx; off += DB_CHUNK) {
        size_t n = nx - off < DB_CHUNK ? nx - off : DB_CHUNK;
        for (size_t i = 0; i < n; i++)
            ids[i] = xf[off + i].id;
        id_array(&arr, ids, n);
        const char *v[] = {ac_buf_str(&arr)};
        if (ac_db_exec(c, "cmp_transfers", 1, v, &r) != AC_QS_ONE_RESULT) {
            snprintf(why, whylen, "reading the ledger's transfers: %s", PQerrorMessage(c));
            rc = -1;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const struct ac_evcheck_transfer *t = &xf[off + i];
            int row = row_of(r, t->id);
            if (row < 0) {
                snprintf(why, whylen, "transfer %s of record #%" PRIu64 " is not in the ledger",
                         t->id, t->seq);
                rc = -1;
                break;
            }
            const char *field = NULL;
            if (strcmp(PQgetvalue(r, row, 1), t->debit) != 0)
                field = "debit account";
            else if (strcmp(PQgetvalue(r, row, 2), t->credit) != 0)
                field = "credit account";
            else if (strcmp(PQgetvalue(r, row, 3), t->asset) != 0)
                field = "asset";
            else if (strtoll(PQgetvalue(r, row, 4), NULL, 10) != t->amount)
                field = "amount";
            else if ((uint32_t)strtoul(PQgetvalue(r, row, 5), NULL, 10) != t->flags)
                field = "flags";
            else if (strcmp(PQgetvalue(r, row, 6), t->pending_id) != 0)
                field = "pending id";
            else if (t->timeout_s != 0 &&
                     (uint32_t)strtoul(PQgetvalue(r, row, 7), NULL, 10) != t->timeout_s)
                field = "timeout"; /* payment holds record none: compared when recorded */
            else if ((uint16_t)strtoul(PQgetvalue(r, row, 8), NULL, 10) != t->code)
                field = "code";
            if (field) {
                snprintf(why, whylen,
                         "transfer %s of record #%" PRIu64 ": the ledger's %s differs from the "
                         "record's",
                         t->id, t->seq, field);
                rc = -1;
            }
        }
        PQclear(r);
    }
    for (size_t off = 0; rc == 0 && off < na; off += DB_CHUNK) {
        size_t n = na - off < DB_CHUNK ? na - off : DB_CHUNK;
        for (size_t i = 0; i < n; i++)
            ids[i] = acc[off + i].id;
        id_array(&arr, ids, n);
        const char *v[] = {ac_buf_str(&arr)};
        if (ac_db_exec(c, "cmp_accounts", 1, v, &r) != AC_QS_ONE_RESULT) {
            snprintf(why, whylen, "reading the ledger's accounts: %s", PQerrorMessage(c));
            rc = -1;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const struct ac_evcheck_account *a = &acc[off + i];
            int row = row_of(r, a->id);
            if (row < 0) {
                snprintf(why, whylen, "account %s is not in the ledger", a->id);
                rc = -1;
                break;
            }
            uint64_t count = strtoull(PQgetvalue(r, row, 5), NULL, 10);
            int64_t dp = strtoll(PQgetvalue(r, row, 1), NULL, 10),
                    dpo = strtoll(PQgetvalue(r, row, 2), NULL, 10),
                    cp = strtoll(PQgetvalue(r, row, 3), NULL, 10),
                    cpo = strtoll(PQgetvalue(r, row, 4), NULL, 10);
            const char *field = NULL;
            int64_t want = 0, have = 0;
            if (strcmp(PQgetvalue(r, row, 6), a->asset) != 0) {
                snprintf(why, whylen, "account %s: the ledger's asset is %s, the evidence's %s",
                         a->id, PQgetvalue(r, row, 6), a->asset);
                rc = -1;
                break;
            }
            if ((uint32_t)strtoul(PQgetvalue(r, row, 7), NULL, 10) != a->flags)
                field = "flags", want = a->flags, have = strtoll(PQgetvalue(r, row, 7), NULL, 10);
            else if (count != a->transfers)
                field = "number of transfers", want = (int64_t)a->transfers, have = (int64_t)count;
            else if (dpo != a->debits_posted)
                field = "debits_posted", want = a->debits_posted, have = dpo;
            else if (cpo != a->credits_posted)
                field = "credits_posted", want = a->credits_posted, have = cpo;
            else if (a->open_holds == 0 && dp != a->debits_pending)
                field = "debits_pending", want = a->debits_pending, have = dp;
            else if (a->open_holds == 0 && cp != a->credits_pending)
                field = "credits_pending", want = a->credits_pending, have = cp;
            if (field) {
                snprintf(why, whylen,
                         "account %s: the ledger's %s is %" PRId64 ", the evidence gives %" PRId64,
                         a->id, field, have, want);
                rc = -1;
            }
            if (a->open_holds) (*holds)++;
        }
        PQclear(r);
    }
    /* the converse: every account of the ledger is one the evidence created */
    if (rc == 0) {
        if (ac_db_exec(c, "cmp_account_count", 0, NULL, &r) != AC_QS_ONE_RESULT) {
            snprintf(why, whylen, "reading the ledger's accounts: %s", PQerrorMessage(c));
            rc = -1;
        } else if (strtoull(PQgetvalue(r, 0, 0), NULL, 10) != na) {
            PQclear(r);
            r = NULL;
            if (ac_db_exec(c, "cmp_account_ids", 0, NULL, &r) != AC_QS_ONE_RESULT) {
                snprintf(why, whylen, "reading the ledger's accounts: %s", PQerrorMessage(c));
            } else {
                snprintf(why, whylen, "the ledger has accounts no record created");
                for (int k = 0; k < PQntuples(r); k++)
                    if (ac_evcheck_account(ck, PQgetvalue(r, k, 0)) == NULL) {
                        snprintf(why, whylen, "account %s of the ledger was created by no record",
                                 PQgetvalue(r, k, 0));
                        break;
                    }
            }
            rc = -1;
        }
        PQclear(r);
    }
    r = PQexec(c, "commit");
    PQclear(r);
    ac_buf_free(&arr);
    PQfinish(c);
    return rc;
}

static int audit_replay(int argc, char **argv)
{
    const char *file = NULL, *log_key = NULL, *origin = NULL, *db = NULL;
    struct rctx x = {ac_evcheck_new(), mono(), ac_redecide_new()};
    struct ac_replay_hooks hooks = {on_record, progress, 100000, &x, on_document, on_user_key};
    if (x.ck == NULL || x.rd == NULL) {
        fprintf(stderr, "audit: out of memory\n");
        return 2;
    }
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--log-key=", 10) == 0 && a[10] != '\0') {
            log_key = a + 10;
        } else if (strncmp(a, "--origin=", 9) == 0 && a[9] != '\0') {
            origin = a + 9;
        } else if (strncmp(a, "--db=", 5) == 0 && a[5] != '\0') {
            db = a + 5;
        } else if (strcmp(a, "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strncmp(a, "--progress=", 11) == 0) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(a + 11, &end, 10);
            if (a[11] == '\0' || *end != '\0' || errno != 0) {
                fprintf(stderr, "audit replay: --progress must be a number of records\n");
                goto out;
            }
            hooks.progress_every = n;
        } else if (a[0] != '-' && file == NULL) {
            file = a;
        } else {
            fprintf(stderr, "audit replay: unexpected argument '%s'\n", a);
            usage(stderr);
            goto out;
        }
    }
    if (file == NULL) {
        usage(stderr);
        goto out;
    }
    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        fprintf(stderr, "audit: cannot read %s%s%s\n", file,
                fd < 0 ? ": " : " (not a non-empty regular file)", fd < 0 ? strerror(errno) : "");
        if (fd >= 0) close(fd);
        goto out;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        fprintf(stderr, "audit: cannot map %s: %s\n", file, strerror(errno));
        goto out;
    }
    struct ac_replay rp;
    rc = ac_replay_export(&rp, map, (size_t)st.st_size, log_key, origin, &hooks);
    munmap(map, (size_t)st.st_size);
    double dt = mono() - x.t0;
    if (rc != 0) {
        fprintf(stderr, "audit: FAILED at %s: %s\n", rp.item, rp.why);
        ac_replay_free(&rp);
        rc = 1;
        goto out;
    }
    struct ac_evcheck_stats cs;
    ac_evcheck_stats(x.ck, &cs);
    size_t na;
    ac_evcheck_accounts(x.ck, &na);
    printf("replay: VERIFIED %" PRIu64 " records and %" PRIu64 " checkpoints of %s "
           "(chain, tree roots, checkpoint signatures%s) in %.2f s, %.0f records/s\n",
           rp.records, rp.checkpoints, rp.origin ? rp.origin : "?",
           log_key ? "; log key pinned" : "; log key from the export", dt,
           dt > 0 ? (double)rp.records / dt : 0.0);
    printf("replay: documents: %" PRIu64 " user-signed JWS verified, every docref present\n"
           "replay: requests: %" PRIu64
           " signatures verified with the binding's agent key, %" PRIu64
           " without a binding (not re-verified), %" PRIu64 " denials whose signature fails\n"
           "replay: ledger: %zu accounts (%" PRIu64 " created by ledger.account records), %" PRIu64
           " transfers applied, %" PRIu64 " holds expired by their timeout; every balance "
           "recomputed from record 0, every account's flags held\n",
           cs.documents_verified, cs.requests_verified, cs.requests_unverified, cs.denials_unsigned,
           na, cs.accounts_created, cs.transfers, cs.holds_expired);
    if (cs.vouchers_verified)
        printf("replay: vouchers: %" PRIu64 " tab vouchers verified with the binding's agent key "
               "(tab and cumulative amount equal to the record's)\n",
               cs.vouchers_verified);
    struct ac_redecide_stats ds;
    ac_redecide_stats(x.rd, &ds);
    printf("replay: decisions: %" PRIu64 " recomputed with the risk engine and equal, %" PRIu64
           " ledger refusals (risk let them through), %" PRIu64 " declined by the user, %" PRIu64
           " not recomputable (%" PRIu64 " mandate asset scale not in the evidence, %" PRIu64
           " denials without mandate, binding or request, %" PRIu64
           " of a kind not modelled)\n",
           ds.recomputed, ds.ledger_refusals, ds.user_declines, ds.not_recomputable, ds.nr_scale,
           ds.nr_missing, ds.nr_kind);
    printf("replay: top-ups: %" PRIu64 " token amounts recomputed from the published prices\n",
           ds.tokens_recomputed);
    ac_replay_free(&rp);
    fflush(stdout);
    if (db != NULL) {
        char why[400];
        size_t holds = 0;
        if (compare_db(db, x.ck, why, sizeof why, &holds) != 0) {
            fprintf(stderr, "audit: FAILED at the live ledger: %s\n", why);
            rc = 1;
            goto out;
        }
        printf("replay: live ledger: every recorded transfer present and equal; all %zu accounts "
               "of the ledger created by records, asset, flags, transfer count and balances "
               "equal to the recomputed ones (%zu with a hold still open: pending balances not "
               "compared)\n",
               na, holds);
    }
    rc = 0;
out:
    ac_evcheck_free(x.ck);
    ac_redecide_free(x.rd);
    return rc;
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
