/* The evidence log wired into the sequencer, on a real PostgreSQL with real keys:
 * - identity operations append binding.register / binding.revoke records with the documents by
 *   hash; the rows are contiguous from seq 0, each record decodes, its prev is the hash of the
 *   one before and its stored leaf is its leaf hash;
 * - checkpoints come every N records and after T ms, are signed by the server key and verify
 *   with the production verifier AND the independent one (tests/support/note_verify.c), with
 *   the Merkle root of the stored leaves;
 * - proofs from the read side (ledger/evread.h) verify with protocol/merkle.h;
 * - a batch refused by PostgreSQL leaves neither its transfers nor its records, and the next
 *   record continues the chain without a gap;
 * - the tables refuse UPDATE and DELETE; a tampered stored leaf makes the sequencer refuse to
 *   lead (it would sign a checkpoint inconsistent with the old one) until it is repaired. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "ledger/evread.h"
#include "protocol/merkle.h"
#include "protocol/sig.h"
#include "tests/support/evfix.h"
#include "tests/support/identity.h"
#include "tests/support/note_verify.h"

static const char *url;
static EVP_PKEY *server_key;

static PGconn *conn(void)
{
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_READER, err, sizeof err);
    if (c == NULL) fail_msg("%s", err);
    return c;
}

/* Every stored record: decodes, contiguous, chained, leaf matches. Returns the count and the
 * leaves (malloc'd). */
static size_t check_rows(uint8_t (**leaves)[32])
{
    PGconn *c = conn();
    PGresult *r = PQexecParams(c, "select seq, record, leaf, kind from ac_evidence order by seq", 0,
                               NULL, NULL, NULL, NULL, 1);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    size_t n = (size_t)PQntuples(r);
    *leaves = calloc(n + 1, 32);
    uint8_t prev[32] = {0};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)PQgetvalue(r, (int)i, 1);
        size_t len = (size_t)PQgetlength(r, (int)i, 1);
        struct ac_ev_record rec;
        char err[200];
        assert_int_equal(ac_ev_record_decode(p, len, &rec, err, sizeof err), 0);
        assert_int_equal(rec.seq, i);
        assert_memory_equal(rec.prev, prev, 32);
        assert_string_equal(PQgetvalue(r, (int)i, 3), ac_ev_kind_name(rec.kind));
        ac_ev_record_clear(&rec);
        uint8_t leaf[32];
        assert_int_equal(ac_ev_leaf_hash(p, len, leaf), 0);
        assert_int_equal(PQgetlength(r, (int)i, 2), 32);
        assert_memory_equal(PQgetvalue(r, (int)i, 2), leaf, 32);
        memcpy((*leaves)[i], leaf, 32);
        assert_int_equal(ac_ev_record_hash(p, len, prev), 0);
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

static void checkpoints_verify(const char *vkey, uint8_t (*leaves)[32], size_t nleaves, size_t *ncp)
{
    struct ac_ind_key ik;
    assert_int_equal(ac_ind_parse_vkey(vkey, &ik), 0);
    PGconn *c = conn();
    PGresult *r = PQexec(c, "select size, note, root from ac_checkpoints order by size");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    *ncp = (size_t)PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++) {
        uint64_t size = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        const char *note = PQgetvalue(r, i, 1);
        assert_true(size <= nleaves);
        struct ac_ev_checkpoint cp;
        char err[200];
        assert_int_equal(ac_ev_checkpoint_verify(note, strlen(note), vkey, strlen(vkey),
                                                 AC_EVFIX_ORIGIN, &cp, err, sizeof err),
                         0);
        assert_int_equal(cp.size, size);
        uint8_t root[32];
        assert_int_equal(ac_merkle_root((const uint8_t(*)[32])leaves, size, root), 0);
        assert_memory_equal(cp.root, root, 32);
        ac_ev_checkpoint_clear(&cp);
        /* the independent verifier */
        size_t tl = 0;
        assert_int_equal(ac_ind_verify(note, strlen(note), &ik, &tl), 1);
        char origin[128];
        uint64_t isize;
        uint8_t iroot[32];
        assert_int_equal(ac_ind_checkpoint(note, tl, origin, sizeof origin, &isize, iroot), 0);
        assert_string_equal(origin, AC_EVFIX_ORIGIN);
        assert_int_equal(isize, size);
        assert_memory_equal(iroot, root, 32);
    }
    PQclear(r);
    PQfinish(c);
}

static void records_checkpoints_proofs(void **st)
{
    (void)st;
    url = ac_test_fresh_db("ac_evidence_wiring");
    struct ac_evfix f;
    ac_evfix_start(&f, url, server_key, 4, 300);
    EVP_PKEY *uk = ac_sig_keygen(AC_SIG_ED25519);
    assert_int_equal(ac_evfix_user(&f, "u1", uk), AC_EC_OK);
    /* principal registration is operator data: no record */
    assert_int_equal(ac_evfix_sql_int(url, "select count(*) from ac_evidence"), 0);
    char *jws0 = NULL;
    for (int i = 0; i < 9; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        assert_int_equal(ac_evfix_binding(&f, id, "u1", uk, NULL, i == 0 ? &jws0 : NULL), AC_EC_OK);
    }
    /* replaying a binding appends nothing */
    assert_int_equal(ac_evfix_sql_int(url, "select count(*) from ac_evidence"), 9);
    assert_int_equal(ac_evfix_revoke(&f, "b3", "u1", uk), AC_EC_OK);
    /* checkpoints at 4 and 8 by count; the tail (10) after checkpoint-ms */
    assert_int_equal(ac_evfix_wait_checkpoint(url, 10, 15000), 10);
    assert_true(ac_evfix_sql_int(url, "select count(*) from ac_checkpoints where size in (4, 8)") ==
                2);

    uint8_t(*leaves)[32];
    size_t n = check_rows(&leaves);
    assert_int_equal(n, 10);
    size_t ncp;
    checkpoints_verify(f.vkey, leaves, n, &ncp);
    assert_int_equal(ncp, 3);

    /* record 0 is binding b0's registration: docref = SHA-256 of the JWS text, id, signer */
    PGconn *c = conn();
    uint8_t *bytes, leaf[32];
    size_t len;
    assert_int_equal(ac_evread_record(c, 0, &bytes, &len, leaf), AC_QS_ONE_RESULT);
    struct ac_ev_record rec;
    char err[200];
    assert_int_equal(ac_ev_record_decode(bytes, len, &rec, err, sizeof err), 0);
    assert_int_equal(rec.kind, AC_EV_BINDING_REGISTER);
    uint8_t h[32];
    ac_ev_doc_hash(jws0, strlen(jws0), h);
    assert_memory_equal(rec.body.binding.hash, h, 32);
    assert_string_equal(rec.body.binding.id, "b0");
    assert_string_equal(rec.body.user, "u1");
    assert_string_equal(rec.body.agent, "agent-b0");
    assert_string_equal(rec.body.binding.kid, ac_test_kid(uk));
    ac_ev_record_clear(&rec);
    free(bytes);
    assert_int_equal(ac_evread_record(c, 9, &bytes, &len, leaf), AC_QS_ONE_RESULT);
    assert_int_equal(ac_ev_record_decode(bytes, len, &rec, err, sizeof err), 0);
    assert_int_equal(rec.kind, AC_EV_BINDING_REVOKE);
    assert_true(rec.body.revocation.present);
    assert_string_equal(rec.body.binding.id, "b3");
    ac_ev_record_clear(&rec);
    free(bytes);

    /* proofs served by the read side verify, for every record and every pair of checkpoints */
    struct ac_evread *er = ac_evread_new();
    struct ac_evread_cp cps[3];
    uint64_t sizes[3] = {4, 8, 10};
    for (int k = 0; k < 3; k++)
        assert_int_equal(ac_evread_checkpoint(c, sizes[k], &cps[k]), AC_QS_ONE_RESULT);
    for (int k = 0; k < 3; k++) {
        for (uint64_t s = 0; s < cps[k].size; s++) {
            uint8_t proof[AC_MERKLE_MAX_PROOF][32];
            size_t pn;
            assert_int_equal(ac_evread_inclusion(er, c, &cps[k], s, proof, &pn), AC_EVREAD_OK);
            assert_int_equal(ac_merkle_verify_inclusion(s, cps[k].size, leaves[s],
                                                        (const uint8_t(*)[32])proof, pn,
                                                        cps[k].root),
                             1);
            /* and not for another leaf */
            assert_int_not_equal(ac_merkle_verify_inclusion(s, cps[k].size, leaves[(s + 1) % n],
                                                            (const uint8_t(*)[32])proof, pn,
                                                            cps[k].root),
                                 1);
        }
        for (int j = 0; j <= k; j++) {
            uint8_t proof[AC_MERKLE_MAX_PROOF][32];
            size_t pn;
            assert_int_equal(
                ac_evread_consistency(er, c, &cps[k], cps[j].size, cps[k].size, proof, &pn),
                AC_EVREAD_OK);
            assert_int_equal(ac_merkle_verify_consistency(cps[j].size, cps[k].size, cps[j].root,
                                                          cps[k].root, (const uint8_t(*)[32])proof,
                                                          pn),
                             1);
        }
    }
    uint8_t proof[AC_MERKLE_MAX_PROOF][32];
    size_t pn;
    assert_int_equal(ac_evread_inclusion(er, c, &cps[0], 4, proof, &pn), AC_EVREAD_RANGE);
    for (int k = 0; k < 3; k++)
        ac_evread_cp_clear(&cps[k]);
    ac_evread_free(er);
    PQfinish(c);

    /* append-only */
    assert_false(ac_evfix_sql_ok(url, "update ac_evidence set kind = 'refund' where seq = 0"));
    assert_false(ac_evfix_sql_ok(url, "delete from ac_evidence where seq = 9"));
    assert_false(ac_evfix_sql_ok(url, "delete from ac_checkpoints"));
    assert_false(ac_evfix_sql_ok(url, "truncate ac_evidence"));

    /* a restart continues the chain where it stopped */
    ac_evfix_stop(&f);
    ac_evfix_start(&f, url, server_key, 4, 300);
    assert_int_equal(ac_evfix_binding(&f, "b9", "u1", uk, NULL, NULL), AC_EC_OK);
    free(leaves);
    n = check_rows(&leaves);
    assert_int_equal(n, 11);
    assert_int_equal(ac_evfix_wait_checkpoint(url, 11, 15000), 11);
    checkpoints_verify(f.vkey, leaves, n, &ncp);
    assert_int_equal(ncp, 4);
    free(leaves);
    free(jws0);
    ac_evfix_stop(&f);
    EVP_PKEY_free(uk);
}

/* A payment and a principal in one command (one batch) that PostgreSQL refuses: a user inserted
 * behind the sequencer's back makes the principal's insert fail at commit. */
struct combo {
    struct ac_evfix_payop *pay;
    struct ac_identity_op *id;
};

static void combo_apply(struct ac_cmd *c, struct ac_apply *a)
{
    struct combo *x = c->op_arg;
    ac_evfix_pay_apply(x->pay, a);
    ac_identity_apply(x->id, a);
}

static void atomic_batch(void **st)
{
    (void)st;
    url = ac_test_fresh_db("ac_evidence_atomic");
    struct ac_evfix f;
    ac_evfix_start(&f, url, server_key, 1000, 200);
    EVP_PKEY *uk = ac_sig_keygen(AC_SIG_ED25519), *ck = ac_sig_keygen(AC_SIG_ED25519);
    assert_int_equal(ac_evfix_user(&f, "u1", uk), AC_EC_OK);
    const char *acc[] = {"wallet:u1", "shop"};
    assert_int_equal(ac_evfix_accounts(&f, acc, 2), AC_EC_OK); /* record 0: ledger.account */
    uint64_t seq = 99;
    uint8_t leaf[32];
    assert_int_equal(ac_evfix_pay(&f, "p1", "t1", "wallet:u1", "shop", 500, "u1", &seq, leaf),
                     AC_EC_OK);
    assert_int_equal(seq, 1);
    assert_int_equal(ac_evfix_sql_int(url, "select count(*) from ac_transfers where id = 't1'"), 1);
    assert_int_equal(
        ac_evfix_sql_int(url, "select count(*) from ac_evidence where payment_id = 'p1'"), 1);

    assert_true(ac_evfix_sql_ok(url, "insert into ac_users (id, created_us) values ('carol', 1)"));
    struct ac_evfix_payop pay = {"p2", "t2",           "wallet:u1", "shop", "u1",
                                 700,  AC_EC_INTERNAL, 0,           {0}};
    struct ac_identity_op op;
    memset(&op, 0, sizeof op);
    op.kind = AC_IDOP_PRINCIPAL;
    op.role = AC_ROLE_USER;
    snprintf(op.id, sizeof op.id, "carol");
    op.keys[0] = ck;
    op.nkeys = 1;
    struct combo x = {&pay, &op};
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = AC_CMD_OP;
    c.op = combo_apply;
    c.op_arg = &x;
    assert_int_equal(ac_seq_run(f.seq, &c), AC_EC_BATCH_FAILED);
    /* neither the transfer nor the record */
    assert_int_equal(ac_evfix_sql_int(url, "select count(*) from ac_transfers where id = 't2'"), 0);
    assert_int_equal(ac_evfix_sql_int(url, "select count(*) from ac_evidence"), 2);
    assert_int_equal(
        ac_evfix_sql_int(url, "select debits_posted from ac_accounts where id = 'wallet:u1'"), 500);

    /* after the reload, the next record takes the next seq and chains to record 1 */
    enum ac_ec ec = AC_EC_NOT_LEADER;
    for (int i = 0; i < 150; i++) {
        ec = ac_evfix_pay(&f, "p3", "t3", "wallet:u1", "shop", 300, "u1", &seq, leaf);
        if (ec != AC_EC_NOT_LEADER && ec != AC_EC_DB_UNAVAILABLE) break;
        usleep(100000);
    }
    assert_int_equal(ec, AC_EC_OK);
    assert_int_equal(seq, 2);
    uint8_t(*leaves)[32];
    assert_int_equal(check_rows(&leaves), 3);
    assert_memory_equal(leaves[2], leaf, 32);
    assert_int_equal(
        ac_evfix_sql_int(url, "select debits_posted from ac_accounts where id = 'wallet:u1'"), 800);
    assert_int_equal(ac_evfix_wait_checkpoint(url, 3, 15000), 3);
    size_t ncp;
    checkpoints_verify(f.vkey, leaves, 3, &ncp);
    free(leaves);
    ac_evfix_stop(&f);
    EVP_PKEY_free(uk);
    EVP_PKEY_free(ck);
}

/* A stored leaf changed behind the log's back: the sequencer refuses to lead (signing on would
 * contradict the checkpoint) until the leaf is repaired. */
static void tampered_leaf_refused(void **st)
{
    (void)st;
    url = ac_test_fresh_db("ac_evidence_leaf");
    struct ac_evfix f;
    ac_evfix_start(&f, url, server_key, 2, 200);
    EVP_PKEY *uk = ac_sig_keygen(AC_SIG_ED25519);
    assert_int_equal(ac_evfix_user(&f, "u1", uk), AC_EC_OK);
    assert_int_equal(ac_evfix_binding(&f, "b0", "u1", uk, NULL, NULL), AC_EC_OK);
    assert_int_equal(ac_evfix_binding(&f, "b1", "u1", uk, NULL, NULL), AC_EC_OK);
    assert_int_equal(ac_evfix_wait_checkpoint(url, 2, 15000), 2);
    ac_evfix_stop(&f);
    assert_true(ac_evfix_sql_ok(url, "alter table ac_evidence disable trigger user; "
                                     "update ac_evidence set leaf = sha256(leaf) where seq = 0"));
    assert_int_equal(ac_evfix_start_nowait(&f, url, server_key, 2, 200, 2500), 0);
    ac_evfix_stop(&f);
    assert_true(ac_evfix_sql_ok(url, "update ac_evidence set leaf = sha256('\\x00'::bytea || "
                                     "record) where seq = 0; "
                                     "alter table ac_evidence enable trigger user"));
    ac_evfix_start(&f, url, server_key, 2, 200);
    assert_int_equal(ac_evfix_binding(&f, "b2", "u1", uk, NULL, NULL), AC_EC_OK);
    ac_evfix_stop(&f);
    EVP_PKEY_free(uk);
}

int main(void)
{
    server_key = ac_sig_keygen(AC_SIG_ED25519);
    if (ac_evread_register_statements() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_checkpoints_proofs),
        cmocka_unit_test(atomic_batch),
        cmocka_unit_test(tampered_leaf_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    EVP_PKEY_free(server_key);
    return rc;
}
