/* The auditor's replay of a whole export: a clean log verifies; changing any byte of a record,
 * dropping, repeating or reordering a record, a checkpoint with a wrong root, key, size or
 * place, unsealed trailing records and a hook's objection are each reported at the right item.
 * `agentclear audit replay` gives exit codes 0, 1 and 2. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/evidence.h"
#include "protocol/replay.h"
#include "protocol/sig.h"

#define HL AC_EV_HASH_LEN
#define ORIGIN "agentclear.example/7"
#define N 40

struct logfx {
    EVP_PKEY *key, *other;
    char *vkey;
    uint8_t *rec[N];
    size_t len[N];
    uint8_t root[N + 1][HL]; /* root[n] = root of the first n records */
};

static void make_log(struct logfx *f)
{
    memset(f, 0, sizeof *f);
    f->key = ac_sig_keygen(AC_SIG_ED25519);
    f->other = ac_sig_keygen(AC_SIG_ED25519);
    f->vkey = ac_ev_checkpoint_vkey(ORIGIN, f->key);
    assert_non_null(f->vkey);
    static const char *const reasons[] = {"mandate_exceeded"};
    static const struct ac_ev_transfer tr = {"t", "wallet:u", "merchant:m", 100, "CNY",
                                             2,   0,          NULL,         0,   0};
    static const struct ac_ev_account acs[2] = {{"wallet:u", "CNY", NULL, 0},
                                                {"merchant:m", "CNY", NULL, 0}};
    uint8_t prev[HL] = {0};
    struct ac_ev_tree t;
    ac_ev_tree_init(&t);
    char pay[N][16];
    for (int i = 0; i < N; i++) {
        struct ac_ev_record r;
        memset(&r, 0, sizeof r);
        r.seq = (uint64_t)i;
        r.time_us = 1714557600000000 + i;
        memcpy(r.prev, prev, HL);
        snprintf(pay[i], sizeof pay[i], "pay-%d", i);
        r.body.payment = pay[i];
        if (i % 2) {
            r.kind = AC_EV_PAYMENT_DENY;
            r.body.decision = AC_EV_DENY;
            r.body.reasons = reasons;
            r.body.nreasons = 1;
        } else if (i == 0) { /* the accounts the transfers move money between */
            r.kind = AC_EV_LEDGER_ACCOUNT;
            r.body.payment = NULL;
            r.body.actor = "operator";
            r.body.accounts = acs;
            r.body.naccounts = 2;
        } else {
            r.kind = AC_EV_PAYMENT_EXPIRE;
            r.body.transfers = &tr;
            r.body.ntransfers = 1;
        }
        char err[256];
        if (ac_ev_record_encode(&r, &f->rec[i], &f->len[i], err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_int_equal(ac_ev_record_hash(f->rec[i], f->len[i], prev), 0);
        uint8_t leaf[HL];
        assert_int_equal(ac_ev_leaf_hash(f->rec[i], f->len[i], leaf), 0);
        assert_int_equal(ac_ev_tree_append(&t, leaf), 0);
    }
    for (int n = 0; n <= N; n++)
        assert_int_equal(ac_ev_tree_root(&t, (uint64_t)n, f->root[n]), 0);
    ac_ev_tree_free(&t);
}

static void free_log(struct logfx *f)
{
    for (int i = 0; i < N; i++)
        free(f->rec[i]);
    free(f->vkey);
    EVP_PKEY_free(f->key);
    EVP_PKEY_free(f->other);
}

static void put_cp(struct ac_buf *b, EVP_PKEY *key, uint64_t size, const uint8_t root[HL])
{
    char *note;
    size_t len;
    assert_int_equal(ac_ev_checkpoint_sign(ORIGIN, size, root, key, &note, &len), 0);
    assert_int_equal(ac_replay_export_checkpoint(b, note, len), 0);
    free(note);
}

/* What to do to the export. */
struct mutation {
    int flip_record, flip_byte; /* flip a bit of record flip_record (-1: none) */
    int drop, dup, swap;        /* drop / repeat record i, swap records i and i+1 (-1: none) */
    int cp_other_key, cp_wrong_root, cp_wrong_place, cp_shrink, no_last_cp;
};

static const struct mutation none = {-1, 0, -1, -1, -1, 0, 0, 0, 0, 0};

/* Records with checkpoints after records 10, 25 and N (sizes 10, 25, N). */
static void make_export(const struct logfx *f, const struct mutation *m, struct ac_buf *b)
{
    memset(b, 0, sizeof *b);
    assert_int_equal(ac_replay_export_header(b, ORIGIN, f->vkey), 0);
    for (int i = 0; i < N; i++) {
        int j = i;
        if (m->swap >= 0 && i == m->swap) j = i + 1;
        if (m->swap >= 0 && i == m->swap + 1) j = i - 1;
        if (i != m->drop) {
            uint8_t *r = malloc(f->len[j]);
            memcpy(r, f->rec[j], f->len[j]);
            if (j == m->flip_record) r[m->flip_byte] ^= 0x20;
            assert_int_equal(ac_replay_export_record(b, r, f->len[j]), 0);
            if (i == m->dup) assert_int_equal(ac_replay_export_record(b, r, f->len[j]), 0);
            free(r);
        }
        int n = i + 1;
        if (n == 10) {
            put_cp(b, m->cp_other_key ? f->other : f->key, 10,
                   m->cp_wrong_root ? f->root[9] : f->root[10]);
            if (m->cp_shrink) put_cp(b, f->key, 5, f->root[5]);
        }
        if (n == 25 && !m->cp_wrong_place) put_cp(b, f->key, 25, f->root[25]);
        if (n == 26 && m->cp_wrong_place) put_cp(b, f->key, 25, f->root[25]);
        if (n == N && !m->no_last_cp) put_cp(b, f->key, N, f->root[N]);
    }
    assert_int_equal(b->oom, 0);
}

static int calls, fail_at = -1;
static int hook(void *ctx, const struct ac_ev_record *r, const uint8_t *bytes, size_t len,
                char *why, size_t whylen)
{
    (void)ctx, (void)bytes, (void)len;
    calls++;
    if ((int)r->seq == fail_at) {
        snprintf(why, whylen, "balance of wallet:u recomputed as -100");
        return -1;
    }
    return 0;
}
static uint64_t progress_calls;
static void progress(void *ctx, uint64_t records, uint64_t checkpoints)
{
    (void)ctx, (void)records, (void)checkpoints;
    progress_calls++;
}

static void expect(const struct logfx *f, const struct mutation *m, const char *item,
                   const char *needle)
{
    struct ac_buf b;
    make_export(f, m, &b);
    struct ac_replay rp;
    int rc = ac_replay_export(&rp, (const uint8_t *)b.p, b.len, f->vkey, ORIGIN, NULL);
    if (item == NULL) {
        if (rc != 0) fail_msg("failed at %s: %s", rp.item, rp.why);
    } else {
        if (rc == 0) fail_msg("verified; wanted %s", item);
        if (strcmp(rp.item, item) != 0 || strstr(rp.why, needle) == NULL)
            fail_msg("want %s / '%s', got %s / '%s'", item, needle, rp.item, rp.why);
    }
    ac_replay_free(&rp);
    ac_buf_free(&b);
}

static void clean_log(void **s)
{
    (void)s;
    struct logfx f;
    make_log(&f);
    struct ac_buf b;
    make_export(&f, &none, &b);
    struct ac_replay rp;
    struct ac_replay_hooks h = {hook, progress, 7, NULL, NULL, NULL};
    calls = 0, fail_at = -1, progress_calls = 0;
    assert_int_equal(ac_replay_export(&rp, (const uint8_t *)b.p, b.len, f.vkey, ORIGIN, &h), 0);
    assert_int_equal(rp.records, N);
    assert_int_equal(rp.checkpoints, 3);
    assert_int_equal(calls, N);
    assert_int_equal(progress_calls, N / 7 + 1);
    assert_string_equal(rp.item, "");
    ac_replay_free(&rp);
    /* the key from the export header when none is pinned */
    assert_int_equal(ac_replay_export(&rp, (const uint8_t *)b.p, b.len, NULL, NULL, NULL), 0);
    assert_string_equal(rp.origin, ORIGIN);
    ac_replay_free(&rp);
    /* a hook's objection fails the replay at that record */
    fail_at = 17;
    assert_int_equal(ac_replay_export(&rp, (const uint8_t *)b.p, b.len, f.vkey, NULL, &h), -1);
    assert_string_equal(rp.item, "record #17");
    assert_non_null(strstr(rp.why, "recomputed"));
    ac_replay_free(&rp);
    fail_at = -1;
    /* another pinned key or origin: refused at the header */
    assert_int_equal(
        ac_replay_export(&rp, (const uint8_t *)b.p, b.len, "x+00000000+AA==", NULL, NULL), -1);
    assert_string_equal(rp.item, "export header");
    ac_replay_free(&rp);
    assert_int_equal(ac_replay_export(&rp, (const uint8_t *)b.p, b.len, NULL, "other/0", NULL), -1);
    assert_string_equal(rp.item, "export header");
    ac_replay_free(&rp);
    /* truncated export, empty export */
    assert_int_equal(ac_replay_export(&rp, (const uint8_t *)b.p, b.len - 1, NULL, NULL, NULL), -1);
    assert_non_null(strstr(rp.item, "export at byte"));
    ac_replay_free(&rp);
    assert_int_equal(ac_replay_export(&rp, (const uint8_t *)b.p, 0, NULL, NULL, NULL), -1);
    ac_replay_free(&rp);
    ac_buf_free(&b);
    free_log(&f);
}

static void tampering(void **s)
{
    (void)s;
    struct logfx f;
    make_log(&f);
    expect(&f, &none, NULL, NULL);
    struct mutation m;
    /* every byte of a record: caught at that record (invalid, or wrong seq) or, when the record
     * still decodes, at the next record's prev link or the next checkpoint's root */
    for (size_t i = 0; i < f.len[12]; i++) {
        m = none, m.flip_record = 12, m.flip_byte = (int)i;
        struct ac_buf b;
        make_export(&f, &m, &b);
        struct ac_replay rp;
        assert_int_equal(ac_replay_export(&rp, (const uint8_t *)b.p, b.len, f.vkey, NULL, NULL),
                         -1);
        if (strcmp(rp.item, "record #12") != 0 && strcmp(rp.item, "record #13") != 0)
            fail_msg("byte %zu: failed at %s: %s", i, rp.item, rp.why);
        ac_replay_free(&rp);
        ac_buf_free(&b);
    }
    /* the last record before a checkpoint: its change shows at the checkpoint */
    m = none, m.flip_record = 24, m.flip_byte = (int)f.len[24] - 3;
    expect(&f, &m, "checkpoint at tree size 25", "root is not the root");
    m = none, m.drop = 5;
    expect(&f, &m, "record #5", "says seq 6");
    m = none, m.dup = 5;
    expect(&f, &m, "record #6", "says seq 5");
    m = none, m.swap = 30;
    expect(&f, &m, "record #30", "says seq 31");
    m = none, m.cp_other_key = 1;
    expect(&f, &m, "checkpoint after record #10", "checkpoint signature");
    m = none, m.cp_wrong_root = 1;
    expect(&f, &m, "checkpoint at tree size 10", "root is not the root");
    m = none, m.cp_wrong_place = 1;
    expect(&f, &m, "checkpoint at tree size 25", "comes after 26 records");
    m = none, m.cp_shrink = 1;
    expect(&f, &m, "checkpoint at tree size 5", "shrank");
    m = none, m.no_last_cp = 1;
    expect(&f, &m, "end of export", "15 records after the last checkpoint are not sealed");
    free_log(&f);
}

static void command(void **s)
{
    (void)s;
    struct logfx f;
    make_log(&f);
    const char *tmp = getenv("AC_TEST_TMP");
    char path[600], bad[620];
    snprintf(path, sizeof path, "%s/test_replay.%ld.cbor", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    snprintf(bad, sizeof bad, "%s.bad", path);
    struct ac_buf b;
    make_export(&f, &none, &b);
    ac_test_write_file(path, b.p, b.len);
    ac_buf_free(&b);
    struct mutation m = none;
    m.drop = 3;
    make_export(&f, &m, &b);
    ac_test_write_file(bad, b.p, b.len);
    ac_buf_free(&b);

    static char out[16384];
    assert_int_equal(ac_test_cli(out, sizeof out, "audit replay '%s' --log-key='%s' --progress=10",
                                 path, f.vkey),
                     0);
    assert_non_null(strstr(out, "replay: 20 records, 1 checkpoints verified"));
    assert_non_null(strstr(out, "replay: 40 records, 3 checkpoints verified"));
    assert_non_null(strstr(out, "replay: VERIFIED 40 records and 3 checkpoints"));
    /* the 20 bare denials (no mandate, binding or request) cannot be recomputed: counted */
    assert_non_null(strstr(out, "replay: decisions: 0 recomputed with the risk engine and equal, "
                                "0 ledger refusals (risk let them through), 0 declined by the "
                                "user, 20 not recomputable (0 mandate asset scale not in the "
                                "evidence, 20 denials without mandate"));
    assert_int_equal(ac_test_cli(out, sizeof out, "audit replay '%s'", bad), 1);
    assert_non_null(strstr(out, "audit: FAILED at record #3: the record says seq 4"));
    assert_int_equal(ac_test_cli(out, sizeof out, "audit replay '%s.missing'", path), 2);
    assert_int_equal(ac_test_cli(out, sizeof out, "audit replay"), 2);
    unlink(path);
    unlink(bad);
    free_log(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clean_log),
        cmocka_unit_test(tampering),
        cmocka_unit_test(command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
