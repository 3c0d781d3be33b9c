/* The tamper suite: a log produced through a real sequencer (bindings, a revocation, the
 * operator's accounts and funding transfers -- plain, a hold that expires by its timeout, a hold
 * posted in a linked chain, a refused and a replayed transfer that leave no record -- and
 * payments with transfers), exported with `agentclear evidence export` and replayed with
 * `agentclear audit replay` (the real binary). The untouched log verifies, also against the live
 * ledger (--db), every account recomputed from record 0. Then, each on its own copy of the
 * database (CREATE DATABASE ... TEMPLATE), one thing is changed behind the server's back (as
 * superuser, the append-only triggers disabled) and the replay must fail:
 *   a stored record's byte; a record's field re-encoded validly; the same with every later record
 *   re-chained (only the checkpoint's signature stops it); a checkpoint's tree size or root; a
 *   dropped record; two records swapped; a binding document; a user's key; a ledger balance
 *   (--db); a ledger transfer (--db); a funding transfer's amount in its record; a dropped funding
 *   record; a wallet's live balance (--db); a ledger transfer or account without a record (--db);
 *   and, as an operator holding the server key could, a funding record lowered, raised or dropped
 *   with the log re-chained and every checkpoint re-signed: the recomputed balances catch it
 *   (an overdrawn wallet without --db, the live ledger with it). */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "protocol/sig.h"
#include "tests/support/evfix.h"
#include "tests/support/server.h"

#define BASE "ac_evidence_tamper"

static char base_url[1024];
static char *vkey;
static EVP_PKEY *server; /* the log's key: the strongest tamperer has it too */

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

/* One operator transfer (asset CNY) through the sequencer; its result must be want. */
static void fund(struct ac_evfix *f, const char *id, const char *debit, const char *credit,
                 int64_t amount, uint32_t flags, const char *pending, uint32_t timeout_s,
                 enum ac_ec want)
{
    struct ac_transfer_req t;
    struct ac_transfer_result res;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.debit, sizeof t.debit, "%s", debit);
    snprintf(t.credit, sizeof t.credit, "%s", credit);
    snprintf(t.asset, sizeof t.asset, "CNY");
    snprintf(t.pending_id, sizeof t.pending_id, "%s", pending);
    t.amount = amount;
    t.flags = flags;
    t.timeout_s = timeout_s;
    assert_int_equal(ac_evfix_transfers(f, &t, 1, &res), AC_EC_OK);
    if (res.ec != want) fail_msg("transfer %s: %s", id, ac_ec_code(res.ec));
}

static int setup(void **st)
{
    (void)st;
    snprintf(base_url, sizeof base_url, "%s", ac_test_fresh_db(BASE));
    server = ac_sig_keygen(AC_SIG_ED25519);
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
    /* record 4: the operator's accounts; wallets may not overdraw */
    const char *acc[] = {"wallet:u1", "wallet:u2", "shop", "operator"};
    const uint32_t fl[] = {AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS,
                           AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, 0, 0};
    assert_int_equal(ac_evfix_accounts_flags(&f, acc, fl, 4), AC_EC_OK);
    /* records 5..9: the operator funds the wallets */
    fund(&f, "fund-1", "operator", "wallet:u1", 1000, 0, "", 0, AC_EC_OK);       /* 5 */
    fund(&f, "fund-2", "operator", "wallet:u2", 500, 0, "", 0, AC_EC_OK);        /* 6 */
    fund(&f, "h1", "operator", "wallet:u2", 50, AC_TF_PENDING, "", 1, AC_EC_OK); /* 7 */
    usleep(1200000); /* h1 expires by its timeout (the ledger releases it; so must replay) */
    fund(&f, "h2", "operator", "wallet:u2", 70, AC_TF_PENDING, "", 0, AC_EC_OK); /* 8 */
    { /* 9: a linked chain, the hold posted and more funding, in one record */
        struct ac_transfer_req t[2];
        struct ac_transfer_result res[2];
        memset(t, 0, sizeof t);
        snprintf(t[0].id, sizeof t[0].id, "h2-post");
        snprintf(t[0].pending_id, sizeof t[0].pending_id, "h2");
        snprintf(t[0].asset, sizeof t[0].asset, "CNY");
        t[0].amount = -1;
        t[0].flags = AC_TF_POST_PENDING | AC_TF_LINKED;
        snprintf(t[1].id, sizeof t[1].id, "fund-3");
        snprintf(t[1].debit, sizeof t[1].debit, "operator");
        snprintf(t[1].credit, sizeof t[1].credit, "wallet:u1");
        snprintf(t[1].asset, sizeof t[1].asset, "CNY");
        t[1].amount = 10;
        t[1].code = 7;
        assert_int_equal(ac_evfix_transfers(&f, t, 2, res), AC_EC_OK);
        assert_int_equal(res[0].ec, AC_EC_OK);
        assert_int_equal(res[1].ec, AC_EC_OK);
    }
    /* refused (the wallet may not overdraw) and replayed: no money moves, no record */
    fund(&f, "bad-1", "wallet:u1", "shop", 999999, 0, "", 0, AC_EC_EXCEEDS_CREDITS);
    fund(&f, "fund-1", "operator", "wallet:u1", 1000, 0, "", 0, AC_EC_OK);
    assert_int_equal(ac_evfix_sql_int(base_url, "select count(*) from ac_evidence"), 10);
    /* records 10..12: payments */
    assert_int_equal(ac_evfix_pay(&f, "p1", "t1", "wallet:u1", "shop", 1000, "u1", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_pay(&f, "p2", "t2", "wallet:u2", "shop", 250, "u2", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_pay(&f, "p3", "t3", "shop", "wallet:u1", 100, "u1", NULL, NULL),
                     AC_EC_OK);
    assert_int_equal(ac_evfix_wait_checkpoint(base_url, 13, 15000), 13);
    ac_evfix_stop(&f);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    free(vkey);
    EVP_PKEY_free(server);
    return 0;
}

static void untouched_verifies(void **st)
{
    (void)st;
    char file[1100];
    assert_int_equal(run_export("base", base_url, file, sizeof file), 0);
    assert_int_equal(run_replay("base", file, base_url), 0);
    assert_true(log_has("base", "VERIFIED 13 records"));
    assert_true(log_has("base", "3 user-signed JWS verified") ||
                log_has("base", "4 user-signed JWS verified"));
    /* fund-1, fund-2, h1, h2, h2-post, fund-3, t1..t3: every transfer; h1 expired */
    assert_true(log_has("base", "replay: ledger: 4 accounts (4 created by ledger.account "
                                "records), 9 transfers applied, 1 holds expired by their timeout"));
    assert_true(log_has("base", "all 4 accounts of the ledger created by records, asset, flags, "
                                "transfer count and balances equal to the recomputed ones (0 "
                                "with a hold still open"));
}

struct tamper {
    const char *name;
    const char *sql;    /* run on the copy as superuser */
    int with_db;        /* the change is only visible against the live ledger */
    const char *expect; /* in the replay's output ("a|b": either, as checkpoints fall by time) */
};

static const struct tamper cases[] = {
    {"byte",
     "alter table ac_evidence disable trigger user; update ac_evidence set record = "
     "set_byte(record, 40, get_byte(record, 40) # 1) where seq = 2",
     0, "FAILED at record #"},
    {"cpsize",
     "alter table ac_checkpoints disable trigger user; update ac_checkpoints set note = "
     "regexp_replace(note, E'\\n13\\n', E'\\n12\\n') where size = 13",
     0, "FAILED at checkpoint"},
    {"cproot",
     "alter table ac_checkpoints disable trigger user; update ac_checkpoints set note = "
     "regexp_replace(note, E'\\n[A-Za-z0-9+/]{4}', E'\\nAAAA') where size = (select max(size) "
     "from ac_checkpoints where size < 13)",
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
    /* the operator's funding: its record's amount (1000 = CBOR 19 03 e8) made 1001 */
    {"fundamount",
     "alter table ac_evidence disable trigger user; update ac_evidence set record = "
     "overlay(record placing '\\x1903e9'::bytea from position('\\x1903e8'::bytea in record) "
     "for 3) where seq = 5",
     0,
     "FAILED at record #6: prev is not the hash of record #5|FAILED at checkpoint at tree size 6: "
     "its root is not the root"},
    {"funddrop",
     "alter table ac_evidence disable trigger user; delete from ac_evidence where seq = 5", 0,
     "FAILED at record #5"},
    /* a wallet moved only by the operator's transfers and a payment: now compared */
    {"walletbalance",
     "update ac_accounts set credits_posted = credits_posted + 1 where id = 'wallet:u2'", 1,
     "account wallet:u2: the ledger's credits_posted is 571, the evidence gives 570"},
    /* money moved in the ledger with no record of it */
    {"ghosttransfer",
     "insert into ac_transfers (id, debit_account, credit_account, asset, amount, flags, digest, "
     "created_us) values ('ghost', 'operator', 'wallet:u2', 'CNY', 5, 0, '\\x00', 1); "
     "update ac_accounts set credits_posted = credits_posted + 5 where id = 'wallet:u2'; "
     "update ac_accounts set debits_posted = debits_posted + 5 where id = 'operator'",
     1, "account wallet:u2: the ledger's number of transfers is 6, the evidence gives 5"},
    {"ghostaccount", "insert into ac_accounts (id, asset) values ('ghost', 'CNY')", 1,
     "account ghost of the ledger was created by no record"},
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
    char alt[256];
    snprintf(alt, sizeof alt, "%s", t->expect);
    int found = 0;
    for (char *save = NULL, *a = strtok_r(alt, "|", &save); a && !found;
         a = strtok_r(NULL, "|", &save))
        found = log_has(t->name, a);
    assert_true(found);
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
    /* from the first payment's record on (refund: ac_evfix_pay's kind) */
    r = PQexecParams(c,
                     "select seq, record from ac_evidence where seq >= (select min(seq) from "
                     "ac_evidence where kind = 'refund') order by seq",
                     0, NULL, NULL, NULL, NULL, 1);
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

static void exec_ok(PGconn *c, const char *sql, int n, const char *const *v, const int *lens,
                    const int *fmts)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, v, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* What an operator holding the server key could do: the first ledger.transfer record (fund-1)
 * re-encoded with its amount set to `amount`, or dropped (drop: the later records renumbered),
 * every later record re-chained, and every checkpoint recomputed and signed again. Chain, roots
 * and signatures then all verify; only the money does not add up. */
static void rewrite_funding(const char *url, int drop, int64_t amount)
{
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    assert_non_null(c);
    exec_ok(c, "alter table ac_evidence disable trigger user", 0, NULL, NULL, NULL);
    exec_ok(c, "alter table ac_checkpoints disable trigger user", 0, NULL, NULL, NULL);
    PGresult *r = PQexec(c, "select seq, encode(record, 'hex') from ac_evidence order by seq");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int n = PQntuples(r), out = 0, target = -1;
    struct ac_ev_tree tree;
    ac_ev_tree_init(&tree);
    uint8_t prev[32] = {0};
    for (int i = 0; i < n; i++) {
        const char *hex = PQgetvalue(r, i, 1);
        size_t cap = strlen(hex) / 2 + 1;
        uint8_t *raw = malloc(cap);
        long len = ac_test_unhex(hex, raw, cap);
        assert_true(len > 0);
        struct ac_ev_record rec;
        assert_int_equal(ac_ev_record_decode(raw, (size_t)len, &rec, err, sizeof err), 0);
        free(raw);
        int touched = target >= 0;
        if (target < 0 && rec.kind == AC_EV_LEDGER_TRANSFER) {
            target = i;
            assert_string_equal(rec.body.transfers[0].id, "fund-1");
            if (drop) {
                char sq[24];
                snprintf(sq, sizeof sq, "%d", i);
                const char *v[] = {sq};
                exec_ok(c, "delete from ac_evidence where seq = $1::int8", 1, v, NULL, NULL);
                ac_ev_record_clear(&rec);
                continue;
            }
            ((struct ac_ev_transfer *)rec.body.transfers)[0].amount = amount;
            touched = 1;
        }
        rec.seq = (uint64_t)out;
        memcpy(rec.prev, prev, 32);
        uint8_t *enc, leaf[32];
        size_t elen;
        assert_int_equal(ac_ev_record_encode(&rec, &enc, &elen, err, sizeof err), 0);
        ac_ev_record_hash(enc, elen, prev);
        ac_ev_leaf_hash(enc, elen, leaf);
        assert_int_equal(ac_ev_tree_append(&tree, leaf), 0);
        if (touched) {
            char nsq[24], osq[24];
            snprintf(nsq, sizeof nsq, "%d", out);
            snprintf(osq, sizeof osq, "%d", i);
            const char *v[] = {nsq, (const char *)enc, (const char *)leaf, osq};
            int lens[] = {0, (int)elen, 32, 0}, fmts[] = {0, 1, 1, 0};
            exec_ok(c,
                    "update ac_evidence set seq = $1::int8, record = $2, leaf = $3 where seq = "
                    "$4::int8",
                    4, v, lens, fmts);
        }
        free(enc);
        ac_ev_record_clear(&rec);
        out++;
    }
    PQclear(r);
    assert_true(target >= 0);
    /* every checkpoint again, at its size (clipped to the log), signed with the server's key */
    r = PQexec(c, "select size, log_key, key_id, created_us from ac_checkpoints order by size");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    exec_ok(c, "delete from ac_checkpoints", 0, NULL, NULL, NULL);
    uint64_t last = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        uint64_t size = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        if (size > (uint64_t)out) size = (uint64_t)out;
        if (size == last) continue;
        last = size;
        uint8_t root[32];
        assert_int_equal(ac_ev_tree_root(&tree, size, root), 0);
        char *note;
        size_t nlen;
        assert_int_equal(ac_ev_checkpoint_sign(AC_EVFIX_ORIGIN, size, root, server, &note, &nlen),
                         0);
        char sz[24];
        snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
        const char *v[] = {sz,
                           (const char *)root,
                           note,
                           PQgetvalue(r, i, 1),
                           PQgetvalue(r, i, 2),
                           PQgetvalue(r, i, 3)};
        int lens[] = {0, 32, 0, 0, 0, 0}, fmts[] = {0, 1, 0, 0, 0, 0};
        exec_ok(c,
                "insert into ac_checkpoints (size, root, note, log_key, key_id, created_us) "
                "values ($1::int8, $2, $3, $4, $5, $6::int8)",
                6, v, lens, fmts);
        free(note);
    }
    PQclear(r);
    ac_ev_tree_free(&tree);
    PQfinish(c);
}

/* The log rewritten and re-signed by the key holder: chain, roots and signatures verify, the
 * money does not. A lowered or dropped funding record leaves wallet:u1 paying 1000 it never got
 * (caught offline, by the account's flags); a raised one is only wrong against the live ledger. */
static void resigned_funding_detected(void **st)
{
    (void)st;
    static const struct {
        const char *name;
        int drop;
        int64_t amount;
    } rw[] = {{"rw-lower", 0, 900}, {"rw-drop", 1, 0}, {"rw-raise", 0, 5000}};
    for (size_t i = 0; i < sizeof rw / sizeof rw[0]; i++) {
        char db[64], url[1024], file[1100], name[64];
        snprintf(db, sizeof db, "ac_tamper_%s", rw[i].name + 3);
        copy_db(db, url, sizeof url);
        rewrite_funding(url, rw[i].drop, rw[i].amount);
        assert_int_equal(run_export(rw[i].name, url, file, sizeof file), 0);
        int rc = run_replay(rw[i].name, file, NULL);
        if (rw[i].amount > 1000) {
            /* more money than the ledger moved: consistent on its own */
            assert_int_equal(rc, 0);
            snprintf(name, sizeof name, "%s-db", rw[i].name);
            assert_int_equal(run_replay(name, file, url), 1);
            assert_true(log_has(name, "FAILED at the live ledger: transfer fund-1 of record #5: "
                                      "the ledger's amount differs"));
        } else {
            assert_int_equal(rc, 1);
            assert_true(log_has(rw[i].name, ": transfer t1 overdraws account wallet:u1 (its "
                                            "debits must not exceed its credits)"));
        }
    }
}

int main(void)
{
    ac_test_db_url();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(untouched_verifies),        cmocka_unit_test(each_tamper_detected),
        cmocka_unit_test(ledger_changes_need_db),    cmocka_unit_test(rewritten_tail_detected),
        cmocka_unit_test(resigned_funding_detected),
    };
    int failures = cmocka_run_group_tests(tests, setup, teardown);
    return ac_test_e2e_finish(failures);
}
