/* agentclear evidence export [--database-url=URL] [--out=FILE]
 *   Writes the evidence log as an export (protocol/replay.h, docs/evidence.md "Export"): the
 *   header, every document records may reference and every user key, then every record up to the
 *   latest checkpoint with each checkpoint right after the record that completes its tree. Read in
 *   one repeatable-read snapshot, so the export is consistent; records after the latest
 *   checkpoint are not exported (nothing proves them yet). Without --out: stdout.
 * agentclear evidence log-key [--keys-dir=DIR] [--evidence-origin=ORIGIN] [--partition=N]
 *   Prints the note verifier key ("<origin>+<key id>+<base64 key>") of the current Ed25519
 *   server key: what the operator publishes and auditors pin (--log-key).
 * Exit 0 on success, 1 on a database or write error, 2 on bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <time.h>

#include "keys/keyring.h"
#include "ledger/db.h"
#include "protocol/buf.h"
#include "protocol/replay.h"
#include "server/cli.h"

static const struct ac_db_stmt export_stmts[] = {
    {"x_cp_last", "select size, log_key from ac_checkpoints order by size desc limit 1", 0},
    {"x_cps", "select size, note, log_key from ac_checkpoints order by size", 0},
    {"x_docs", "select d from ac_evidence_all_documents() as d", 0},
    {"x_keys", "select user_id, jwk from ac_principal_keys where user_id is not null order by seq",
     0},
    {"x_records", "select record from ac_evidence where seq < $1::int8 order by seq", 1},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: agentclear evidence export [--database-url=URL] [--out=FILE]\n"
               "  write the evidence log up to its latest checkpoint as an export for "
               "`agentclear audit replay`\n"
               "       agentclear evidence log-key [--keys-dir=DIR] [--evidence-origin=ORIGIN]\n"
               "  print the note verifier key of the current Ed25519 server key: the log key "
               "auditors pin\n");
}

/* agentclear evidence log-key: the server's configuration (env and --key=value), no database. */
static int log_key(int argc, char **argv)
{
    char dir[1024] = "", origin[128] = "";
    const char *e = getenv("AGENTCLEAR_KEYS_DIR");
    if (e) snprintf(dir, sizeof dir, "%s", e);
    e = getenv("AGENTCLEAR_EVIDENCE_ORIGIN");
    if (e) snprintf(origin, sizeof origin, "%s", e);
    int partition = 0;
    e = getenv("AGENTCLEAR_PARTITION");
    if (e) partition = atoi(e);
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--keys-dir=", 11) == 0) {
            snprintf(dir, sizeof dir, "%s", argv[i] + 11);
        } else if (strncmp(argv[i], "--evidence-origin=", 18) == 0) {
            snprintf(origin, sizeof origin, "%s", argv[i] + 18);
        } else if (strncmp(argv[i], "--partition=", 12) == 0) {
            partition = atoi(argv[i] + 12);
        } else {
            fprintf(stderr, "evidence log-key: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (origin[0] == '\0') snprintf(origin, sizeof origin, "agentclear.local/%d", partition);
    if (dir[0] == '\0') {
        fprintf(stderr, "evidence log-key: no keys: set AGENTCLEAR_KEYS_DIR or --keys-dir\n");
        return 2;
    }
    char err[512];
    struct ac_keyring *kr = ac_keyring_new();
    if (kr == NULL || ac_keyring_load_dir(kr, dir, err, sizeof err) < 0) {
        fprintf(stderr, "evidence log-key: %s\n", kr ? err : "out of memory");
        ac_keyring_free(kr);
        return 1;
    }
    const struct ac_server_key *k = ac_keyring_current(kr, (int64_t)time(NULL));
    char *v = k && k->alg == AC_SIG_ED25519 ? ac_ev_checkpoint_vkey(origin, k->pkey) : NULL;
    ac_keyring_free(kr);
    if (v == NULL) {
        fprintf(stderr,
                "evidence log-key: no current Ed25519 key in %s (or origin '%s' is not a "
                "valid key name)\n",
                dir, origin);
        return 1;
    }
    printf("%s\n", v);
    free(v);
    return 0;
}

struct out {
    FILE *f;
    struct ac_buf b;
    int err;
};

/* Write what the writer put in o->b. */
static void drain(struct out *o)
{
    if (o->b.oom || (o->b.len && fwrite(o->b.p, 1, o->b.len, o->f) != o->b.len)) o->err = 1;
    ac_buf_reset(&o->b);
}

static int q(PGconn *c, const char *name, int n, const char *const *v, PGresult **r)
{
    if (ac_db_exec(c, name, n, v, r) != AC_QS_ONE_RESULT) {
        fprintf(stderr, "evidence export: %s: %s", name, PQerrorMessage(c));
        return -1;
    }
    return 0;
}

static int export_all(PGconn *c, struct out *o)
{
    PGresult *r;
    if (q(c, "x_cp_last", 0, NULL, &r)) return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        fprintf(stderr, "evidence export: no checkpoint yet: nothing can be exported (the server "
                        "signs checkpoints only with an Ed25519 key in keys-dir)\n");
        return -1;
    }
    uint64_t size = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    char *log_key = strdup(PQgetvalue(r, 0, 1));
    PQclear(r);
    /* the origin is the log key's name: "<origin>+<id>+<key>" */
    char *origin = log_key ? strdup(log_key) : NULL;
    char *plus = origin ? strchr(origin, '+') : NULL;
    if (plus == NULL) {
        free(log_key);
        free(origin);
        fprintf(stderr, "evidence export: the latest checkpoint's log key is malformed\n");
        return -1;
    }
    *plus = '\0';
    int rc = ac_replay_export_header(&o->b, origin, log_key);
    drain(o);
    PGresult *cps = NULL;
    if (rc == 0 && q(c, "x_cps", 0, NULL, &cps)) rc = -1;
    for (int i = 0; rc == 0 && i < PQntuples(cps); i++)
        if (strcmp(PQgetvalue(cps, i, 2), log_key) != 0)
            fprintf(stderr,
                    "evidence export: WARNING: the checkpoint at %s is signed by another key "
                    "(%s): replay with one log key will stop there\n",
                    PQgetvalue(cps, i, 0), PQgetvalue(cps, i, 2));
    free(origin);
    free(log_key);
    /* documents and user keys first */
    size_t ndocs = 0, nkeys = 0;
    if (rc == 0 && q(c, "x_docs", 0, NULL, &r) == 0) {
        for (int i = 0; i < PQntuples(r) && rc == 0; i++, ndocs++) {
            rc = ac_replay_export_document(&o->b, (const uint8_t *)PQgetvalue(r, i, 0),
                                           (size_t)PQgetlength(r, i, 0));
            drain(o);
        }
        PQclear(r);
    } else {
        rc = -1;
    }
    if (rc == 0 && q(c, "x_keys", 0, NULL, &r) == 0) {
        for (int i = 0; i < PQntuples(r) && rc == 0; i++, nkeys++) {
            rc = ac_replay_export_user_key(&o->b, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                                           (size_t)PQgetlength(r, i, 1));
            drain(o);
        }
        PQclear(r);
    } else {
        rc = -1;
    }
    /* records, streamed in binary, each checkpoint after the record completing its tree */
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, size);
    const char *v[] = {s};
    uint64_t n = 0;
    int next_cp = 0, ncp = cps ? PQntuples(cps) : 0;
    if (rc == 0 && PQsendQueryPrepared(c, "x_records", 1, v, NULL, NULL, 1) != 1) rc = -1;
    if (rc == 0) {
        PQsetSingleRowMode(c);
        while ((r = PQgetResult(c)) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_SINGLE_TUPLE && rc == 0) {
                rc = ac_replay_export_record(&o->b, (const uint8_t *)PQgetvalue(r, 0, 0),
                                             (size_t)PQgetlength(r, 0, 0));
                n++;
                while (rc == 0 && next_cp < ncp &&
                       strtoull(PQgetvalue(cps, next_cp, 0), NULL, 10) == n) {
                    rc = ac_replay_export_checkpoint(&o->b, PQgetvalue(cps, next_cp, 1),
                                                     (size_t)PQgetlength(cps, next_cp, 1));
                    next_cp++;
                }
                drain(o);
            } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK) {
                fprintf(stderr, "evidence export: %s", PQresultErrorMessage(r));
                rc = -1;
            }
            PQclear(r);
        }
    }
    PQclear(cps);
    /* not refused here: the export copies what is stored, the replay judges it */
    if (rc == 0 && n != size)
        fprintf(stderr,
                "evidence export: WARNING: %" PRIu64 " records read, the latest checkpoint "
                "covers %" PRIu64 "\n",
                n, size);
    if (rc == 0)
        fprintf(stderr,
                "evidence export: %" PRIu64 " records, %d checkpoints, %zu documents, %zu user "
                "keys\n",
                n, next_cp, ndocs, nkeys);
    return rc;
}

int ac_cli_evidence(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "log-key") == 0) return log_key(argc, argv);
    if (argc < 2 || strcmp(argv[1], "export") != 0) {
        usage(argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) ? stdout
                                                                                          : stderr);
        return argc >= 2 && argv[1][0] == '-' && argv[1][1] == 'h' ? 0 : 2;
    }
    const char *out_path = NULL;
    char url[1024] = "";
    const char *env = getenv("AGENTCLEAR_DATABASE_URL");
    if (env) snprintf(url, sizeof url, "%s", env);
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--out=", 6) == 0 && argv[i][6]) {
            out_path = argv[i] + 6;
        } else if (strncmp(argv[i], "--database-url=", 15) == 0) {
            snprintf(url, sizeof url, "%s", argv[i] + 15);
        } else {
            fprintf(stderr, "evidence export: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (url[0] == '\0') {
        fprintf(stderr, "evidence export: no database: set AGENTCLEAR_DATABASE_URL or "
                        "--database-url\n");
        return 2;
    }
    char err[512];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "evidence export: %s", err);
        return 1;
    }
    if (ac_db_prepare(c, export_stmts, sizeof export_stmts / sizeof export_stmts[0], err,
                      sizeof err) != 0) {
        fprintf(stderr, "evidence export: %s (is the database migrated?)\n", err);
        PQfinish(c);
        return 1;
    }
    struct out o = {0};
    o.f = out_path ? fopen(out_path, "wb") : stdout;
    if (o.f == NULL) {
        fprintf(stderr, "evidence export: cannot write %s: %s\n", out_path, strerror(errno));
        PQfinish(c);
        return 1;
    }
    PGresult *r = PQexec(c, "begin isolation level repeatable read read only");
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? export_all(c, &o) : -1;
    PQclear(r);
    r = PQexec(c, "commit");
    PQclear(r);
    PQfinish(c);
    ac_buf_free(&o.b);
    if (fflush(o.f) != 0 || o.err) rc = -1;
    if (out_path && fclose(o.f) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "evidence export: FAILED%s\n", o.err ? " (write error)" : "");
        if (out_path) remove(out_path);
        return 1;
    }
    return 0;
}
