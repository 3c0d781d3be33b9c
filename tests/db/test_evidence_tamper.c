/* The tamper suite: a log produced through a real sequencer (bindings, a revocation, payments
 * with transfers), exported with `agentclear evidence export` and replayed with `agentclear
 * audit replay` (the real binary). The untouched log verifies, also against the live ledger
 * (--db). Then, each on its own copy of the database (CREATE DATABASE ... TEMPLATE), one thing is
 * changed behind the server's back (as superuser, the append-only triggers disabled) and the
 * replay must fail:
 *   a stored record's byte; a record's field re-encoded validly; the same with every later record
 *   re-chained (only the checkpoint's signature stops it); a checkpoint's tree size or root; a
 *   dropped record; two records swapped; a binding document; a user's key; a ledger balance
 *   (--db); a ledger transfer (--db). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "protocol/sig.h"
#include "tests/support/evfix.h"
#include "tests/support/server.h"

#define BASE "ac_evidence_tamper"

static char base_url[1024];
static char *vkey;

static void url_of(const char *db, char *out, size_t cap)
{
    const char *cluster = ac_test_db_url();
    const char *slash = strrchr(cluster, '/');
    const char *q = strchr(cluster, '?');
    snprintf(out, cap, "%.*s/%s%s", (int)(slash - cluster), cluster, db, q ? q : "");
}

/* A copy of the base database named db; its URL into out. */
static void copy_db(const char *db, char *out, size_t cap)
{
    char err[256], sql[256];
    PGconn *c = ac_db_connect(ac_test_db_url(), AC_DB_PLAIN, err, sizeof err);
    assert_non_null(c);
    snprintf(sql, sizeof sql, "drop database if exists %s with (force)", db);
    PGresult *r = PQexec(c, sql);
    PQclear(r);
    snprintf(sql, sizeof sql, "create database %s template %s", db, BASE);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    url_of(db, out, cap);
}

static int run_export(const char *name, const char *url, char *file, size_t cap)
{
    snprintf(file, cap, "%s/%s.cbor", ac_test_tmpdir(), name);
    char u[1100], o[1100];
    snprintf(u, sizeof u, "--database-url=%s", url);
    snprintf(o, sizeof o, "--out=%s", file);
    char lname[80];
    snprintf(lname, sizeof lname, "export-%s", name);
    char *argv[] = {(char *)ac_test_binary(), "evidence", "export", u, o, NULL};
    return ac_test_run(lname, argv, 60000);
}

/* Replay file (pinned log key; with --db=url when url is not NULL). Returns the exit code; the
 * output is in <tmpdir>/replay-<name>.log. */
static int run_replay(const char *name, const char *file, const char *url)
{
    char k[600], d[1100];
    snprintf(k, sizeof k, "--log-key=%s", vkey);
    snprintf(d, sizeof d, "--db=%s", url ? url : "");
    char lname[80];
    snprintf(lname, sizeof lname, "replay-%s", name);
    char *argv[] = {(char *)ac_test_binary(), "audit", "replay", (char *)file, k,
                    url ? d : NULL,           NULL};
    return ac_test_run(lname, argv, 120000);
}

static int log_has(const char *name, const char *needle)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/replay-%s.log", ac_test_tmpdir(), name);
    size_t n;
    char *s = ac_test_read_file(path, &n);
    int has = s && strstr(s, needle) != NULL;
    if (!has) fprintf(stderr, "replay-%s.log lacks \"%s\":\n%s\n", name, needle, s ? s : "");
    free(s);
    return has;
}

static int setup(void **st)
{
    (void)st;
    snprintf(base_url, sizeof base_url, "%s", ac_test_fresh_db(BASE));
    EVP_PKEY *server = ac_sig_keygen(AC_SIG_ED25519);
    EVP_PKEY *k1 = ac_sig_keygen(AC_SIG_ED25519), *k2 = ac_sig_keygen(AC_SIG_ES256);
    struct ac_evfix f;
    ac_evfix_start(&f, base_url, server, 3, 200);
    vkey = strdup(f.vkey);
    assert_int_equal(ac_evfix_user(&f, "u1", k1), AC_EC_OK);
    assert_int_equal(ac_evfix_user(&f, "u2", k2), AC_EC_OK);
    assert_int_equal(ac_evfix_binding(&f, "b0", "u1", k1, NULL, NULL), AC_EC_OK);
    assert_int_equal(ac_evfix_binding(&f, "b1", "u1", k1, NULL, NULL), AC_EC_OK);
    assert_int_equal(ac_evfix_binding(&f, "b2", "u2", k2, NULL, NULL), AC_EC_OK);
    assert_int_equal(ac_evfix_revoke(&f, "b1", "u1", k1), AC_EC_OK);
    const char *acc[] = {"wallet:u1", "wallet:u2", "shop", "operator"};
    assert_int_equal(ac_evfix_accounts(&f, acc, 4), AC_EC_OK);
    assert_int_equal(ac_evfix_pay(&f, "p1", "t1", "wallet:u1", "shop", 1000, "u1", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_pay(&f, "p2", "t2", "wallet:u2", "shop", 250, "u2", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_pay(&f, "p3", "t3", "shop", "wallet:u1", 100, "u1", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_wait_checkpoint(base_url, 7, 15000), 7);
    ac_evfix_stop(&f);
    EVP_PKEY_free(server);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    free(vkey);
    return 0;
}

static void untouched_verifies(void **st)
{
    (void)st;
    char file[1100];
    assert_int_equal(run_export("base", base_url, file, sizeof file), 0);
    assert_int_equal(run_replay("base", file, base_url), 0);
    assert_true(log_has("base", "VERIFIED 7 records"));
    assert_true(log_has("base", "3 user-signed JWS verified") ||
                log_has("base", "4 user-signed JWS verified"));
    assert_true(log_has("base", "3 transfers"));
    assert_true(log_has("base", "3 accounts fully covered"));
}

struct tamper {
    const char *name;
    const char *sql;    /* run on the copy as superuser */
    int with_db;        /* the change is only visible against the live ledger */
    const char *expect; /* in the replay's output */
};

static const struct tamper cases[] = {
    {"byte",
     "alter table ac_evidence disable trigger user; update ac_evidence set record = "
     "set_byte(record, 40, get_byte(record, 40) # 1) where seq = 2",
     0, "FAILED at record #"},
    {"cpsize",
     "alter table ac_checkpoints disable trigger user; update ac_checkpoints set note = "
     "regexp_replace(note, E'\\n7\\n', E'\\n6\\n') where size = 7",
     0, "FAILED at checkpoint"},
    {"cproot",
     "alter table ac_checkpoints disable trigger user; update ac_checkpoints set note = "
     "regexp_replace(note, E'\\n[A-Za-z0-9+/]{4}', E'\\nAAAA') where size = 6",
     0, "FAILED at checkpoint"},
    {"drop", "alter table ac_evidence disable trigger user; delete from ac_evidence where seq = 3",
     0, "FAILED at record #3"},
    {"swap",
     "alter table ac_evidence disable trigger user; "
     "update ac_evidence set seq = 999999 where seq = 4; update ac_evidence set seq = 4 where "
     "seq = 5; update ac_evidence set seq = 5 where seq = 999999",
     0, "FAILED at record #4"},
    {"document",
     "alter table ac_bindings disable trigger user; update ac_bindings set jws = jws || 'A' "
     "where id = 'b2'",
     0, "binding document"},
    {"userkey",
     "update ac_principal_keys set jwk = (select jwk from ac_principal_keys k2 where k2.user_id "
     "= 'u2') where user_id = 'u1'",
     0, "FAILED at"},
    {"balance", "update ac_accounts set credits_posted = credits_posted + 1 where id = 'shop'", 1,
     "account shop"},
    {"transfer",
     "alter table ac_transfers disable trigger user; update ac_transfers set amount = amount + 1 "
     "where id = 't2'",
     1, "transfer t2"},
};

static void run_case(const struct tamper *t, int with_db)
{
    char db[64], url[1024], file[1100];
    snprintf(db, sizeof db, "ac_tamper_%s", t->name);
    copy_db(db, url, sizeof url);
    if (!ac_evfix_sql_ok(url, t->sql)) fail_msg("tamper %s: the change did not apply", t->name);
    assert_int_equal(run_export(t->name, url, file, sizeof file), 0);
    int rc = run_replay(t->name, file, with_db ? url : NULL);
    if (rc != 1) fail_msg("tamper %s: replay exit %d, expected 1", t->name, rc);
    assert_true(log_has(t->name, t->expect));
}

static void each_tamper_detected(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], cases[i].with_db);
}

/* A balance or a transfer changed in the ledger is invisible to the export alone (the evidence is
 * intact): that is what --db is for. */
static void ledger_changes_need_db(void **st)
{
    (void)st;
    char url[1024], file[1100];
    copy_db("ac_tamper_nodb", url, sizeof url);
    assert_true(ac_evfix_sql_ok(url, cases[7].sql));
    assert_int_equal(run_export("nodb", url, file, sizeof file), 0);
    assert_int_equal(run_replay("nodb", file, NULL), 0);
    assert_int_equal(run_replay("nodb-db", file, url), 1);
}

/* The cleverest change: a record's field re-encoded validly and every later record re-chained
 * (prev hashes recomputed), so the chain is intact; only the signed checkpoint stops it. */
static void rewritten_tail_detected(void **st)
{
    (void)st;
    char url[1024], file[1100];
    copy_db("ac_tamper_rewrite", url, sizeof url);
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    assert_non_null(c);
    PGresult *r = PQexec(c, "alter table ac_evidence disable trigger user");
    PQclear(r);
    r = PQexecParams(c, "select seq, record from ac_evidence where seq >= 4 order by seq", 0, NULL,
                     NULL, NULL, NULL, 1);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    uint8_t prev[32];
    for (int i = 0; i < PQntuples(r); i++) {
        struct ac_ev_record rec;
        assert_int_equal(ac_ev_record_decode((const uint8_t *)PQgetvalue(r, i, 1),
                                             (size_t)PQgetlength(r, i, 1), &rec, err, sizeof err),
                         0);
        if (i == 0) {
            rec.body.amount.value += 1; /* the amount asked for */
        } else {
            memcpy(rec.prev, prev, 32);
        }
        uint8_t *enc;
        size_t len;
        assert_int_equal(ac_ev_record_encode(&rec, &enc, &len, err, sizeof err), 0);
        ac_ev_record_hash(enc, len, prev);
        uint8_t leaf[32];
        ac_ev_leaf_hash(enc, len, leaf);
        const char *vals[3] = {(const char *)enc, (const char *)leaf, PQgetvalue(r, i, 0)};
        int lens[3] = {(int)len, 32, 0}, fmts[3] = {1, 1, 0};
        /* seq arrives in binary: 8 bytes big-endian */
        char seqs[24];
        const uint8_t *sb = (const uint8_t *)PQgetvalue(r, i, 0);
        uint64_t sv = 0;
        for (int k = 0; k < 8; k++)
            sv = sv << 8 | sb[k];
        snprintf(seqs, sizeof seqs, "%llu", (unsigned long long)sv);
        vals[2] = seqs;
        PGresult *u = PQexecParams(c,
                                   "update ac_evidence set record = $1, leaf = $2 where seq = "
                                   "$3::int8",
                                   3, NULL, vals, lens, fmts, 0);
        assert_int_equal(PQresultStatus(u), PGRES_COMMAND_OK);
        PQclear(u);
        free(enc);
        ac_ev_record_clear(&rec);
    }
    PQclear(r);
    PQfinish(c);
    assert_int_equal(run_export("rewrite", url, file, sizeof file), 0);
    assert_int_equal(run_replay("rewrite", file, NULL), 1);
    assert_true(log_has("rewrite", "its root is not the root of the records before it"));
}

int main(void)
{
    ac_test_db_url();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(untouched_verifies),
        cmocka_unit_test(each_tamper_detected),
        cmocka_unit_test(ledger_changes_need_db),
        cmocka_unit_test(rewritten_tail_detected),
    };
    int failures = cmocka_run_group_tests(tests, setup, teardown);
    return ac_test_e2e_finish(failures);
}
