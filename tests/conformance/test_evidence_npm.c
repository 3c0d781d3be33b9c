/* npm `cbor` (an independent CBOR implementation, installed by ops/npm-clients.sh into
 * AC_NPM_DIR, never vendored) decodes every kind of evidence record and a dispute bundle, and
 * its canonical re-encoding gives back exactly our bytes (tests/conformance/npm/evidence_cbor.mjs).
 * Skipped (77) when AC_NPM_DIR is unset, unless AC_REQUIRE_NPM=1. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocol/bundle.h"
#include "protocol/buf.h"
#include "protocol/evidence.h"

#define HL AC_EV_HASH_LEN

static char dir[512];

static void write_file(const char *name, const uint8_t *p, size_t n, struct ac_buf *args)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ac_test_write_file(path, p, n);
    ac_buf_printf(args, " '%s'", path);
}

/* Remove the body member named m (the validator's "does not allow body.<m>"). */
static void drop(struct ac_ev_body *b, const char *m)
{
    if (strcmp(m, "payment") == 0) b->payment = NULL;
    if (strcmp(m, "user") == 0) b->user = NULL;
    if (strcmp(m, "agent") == 0) b->agent = NULL;
    if (strcmp(m, "payee") == 0) b->payee = NULL;
    if (strcmp(m, "tab") == 0) b->tab = NULL;
    if (strcmp(m, "ref") == 0) b->ref = NULL;
    if (strcmp(m, "amount") == 0) b->amount.present = 0;
    if (strcmp(m, "binding") == 0) b->binding.present = 0;
    if (strcmp(m, "mandate") == 0) b->mandate.present = 0;
    if (strcmp(m, "revocation") == 0) b->revocation.present = 0;
    if (strcmp(m, "confirmation") == 0) b->confirmation.present = 0;
    if (strcmp(m, "voucher") == 0) b->voucher.present = 0;
    if (strcmp(m, "report") == 0) b->report.present = 0;
    if (strcmp(m, "request") == 0) b->request.present = 0;
    if (strcmp(m, "decision") == 0) b->decision = AC_EV_DECISION_NONE;
    if (strcmp(m, "reasons") == 0) b->nreasons = 0;
    if (strcmp(m, "transfers") == 0) b->ntransfers = 0;
    if (strcmp(m, "category") == 0) b->category = NULL;
    if (strcmp(m, "actor") == 0) b->actor = NULL;
    if (strcmp(m, "accounts") == 0) b->naccounts = 0;
}

static void npm_cbor_roundtrip(void **s)
{
    (void)s;
    static const char base[] =
        "\"@method\": POST\n\"@signature-params\": (\"@method\");keyid=\"k\"";
    static const uint8_t sig[64] = {7};
    static const char *const reasons[] = {"mandate_exceeded", "velocity"};
    /* optional members too: a pending transfer's timeout, a code */
    static const struct ac_ev_transfer tr[2] = {
        {"t-1", "wallet:u-1", "merchant:m-1", 9007199254740993, "CNY", 6, 0x03, NULL, 3600, 0},
        {"t-2", "wallet:u-1", "merchant:m-1", 0, "TOK_A", 0, 0x04, "t-1", 0, 65535}};
    static const struct ac_ev_account acs[2] = {{"wallet:u-1", "CNY", "u-1", 0x1},
                                                {"merchant:m-1", "TOK_A", NULL, 0}};
    struct ac_buf args = {0};
    ac_buf_printf(&args, "node '%s'", ac_test_src("tests/conformance/npm/evidence_cbor.mjs"));
    uint8_t *recs[AC_EV_KIND__COUNT];
    size_t lens[AC_EV_KIND__COUNT];
    struct ac_bundle_entry entries[AC_EV_KIND__COUNT];
    uint8_t proof[2][HL] = {{1}, {2}};
    size_t n = 0;
    for (int k = 1; k < AC_EV_KIND__COUNT; k++) {
        struct ac_ev_record r;
        memset(&r, 0, sizeof r);
        r.seq = k == 1 ? UINT64_MAX - 1 : (uint64_t)k; /* one beyond 2^53: a BigInt in JS */
        r.time_us = 1714557600123456;
        r.kind = (enum ac_ev_kind)k;
        r.prev[0] = (uint8_t)k;
        struct ac_ev_body *b = &r.body;
        struct ac_ev_docref d = {1, {0xee}, "doc-1", "kid-1"};
        struct ac_ev_request q = {
            1, (const uint8_t *)base, sizeof base - 1, sig, 64, "k", 1, (const uint8_t *)"{}", 2};
        /* every member, then drop what the kind does not allow (the validator says which) */
        b->payment = "p-1", b->user = "u-1", b->agent = "a-1", b->payee = "m-1", b->tab = "tab-1";
        b->category = "llm.inference", b->actor = "operator";
        b->accounts = acs, b->naccounts = 2;
        b->ref = "ref \xe2\x82\xac"; /* non-ASCII text */
        b->amount = (struct ac_ev_amount){1, INT64_MAX, "CNY", 2};
        b->binding = b->mandate = b->revocation = b->confirmation = b->voucher = b->report = d;
        b->request = q;
        b->decision = k == AC_EV_PAYMENT_DENY || k == AC_EV_TAB_DENY ? AC_EV_DENY
                      : k == AC_EV_PAYMENT_STEP_UP ? AC_EV_STEP_UP
                                                   : AC_EV_ALLOW;
        b->reasons = reasons, b->nreasons = 2;
        b->transfers = tr, b->ntransfers = 2;
        char err[256];
        for (int guard = 0; ac_ev_record_validate(&r, err, sizeof err) != 0; guard++) {
            assert_true(guard < 20);
            const char *m = strstr(err, "does not allow body.");
            assert_non_null(m);
            m += strlen("does not allow body.");
            drop(b, m);
        }
        assert_int_equal(ac_ev_record_encode(&r, &recs[n], &lens[n], err, sizeof err), 0);
        char name[64];
        snprintf(name, sizeof name, "record-%s.cbor", ac_ev_kind_name(r.kind));
        write_file(name, recs[n], lens[n], &args);
        entries[n] =
            (struct ac_bundle_entry){r.seq, {recs[n], lens[n]}, (const uint8_t(*)[HL])proof, 2};
        n++;
    }
    /* a bundle: entries must ascend, so put the big seq last */
    struct ac_bundle_entry first = entries[0];
    memmove(entries, entries + 1, (n - 1) * sizeof *entries);
    entries[n - 1] = first;
    static const char note[] = "agentclear.example/0\n3\nAAAA\n\n\xe2\x80\x94 x AAAA\n";
    struct ac_blob doc = {(const uint8_t *)"a.b.c", 5}, key = {(const uint8_t *)"{}", 2};
    struct ac_bundle b = {"p-1",
                          entries,
                          n,
                          &doc,
                          1,
                          &key,
                          1,
                          {(const uint8_t *)note, sizeof note - 1},
                          {(const uint8_t *)"x+00000000+AA==", 15},
                          {NULL, 0},
                          NULL};
    uint8_t *bb;
    size_t bl;
    char err[256];
    if (ac_bundle_encode(&b, &bb, &bl, err, sizeof err) != 0) fail_msg("%s", err);
    write_file("bundle.cbor", bb, bl, &args);
    free(bb);
    for (size_t i = 0; i < n; i++)
        free(recs[i]);

    ac_buf_adds(&args, " 2>&1");
    FILE *p = popen(ac_buf_str(&args), "r");
    assert_non_null(p);
    static char out[65536];
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("npm cbor: %s", out);
    /* one "ok" line per file */
    size_t oks = 0;
    for (const char *c = out; (c = strstr(c, "ok ")) != NULL; c += 3)
        oks++;
    assert_int_equal(oks, n + 1);
    char want[48];
    snprintf(want, sizeof want, "bundle %zu records", n);
    assert_non_null(strstr(out, want));
    assert_int_equal(n, AC_EV_KIND__COUNT - 1);
    /* npm saw the members that carry the auditor's facts: the payee's category in payment
     * records, who asked and the accounts / transfers (with timeout and code) in ledger ones */
    assert_non_null(strstr(out, "payment.settle body=agent,amount,binding,category,decision,"));
    assert_non_null(strstr(out, "payment.step_up body=agent,amount,binding,category,"));
    assert_non_null(strstr(out, "ledger.account body=accounts,actor,ref transfers=- "
                                "accounts=asset,flags,id,owner|asset,flags,id\n"));
    assert_non_null(strstr(out, "ledger.transfer body=actor,ref,transfers transfers=amount,asset,"
                                "credit,debit,flags,id,scale,timeout|amount,asset,code,credit,"
                                "debit,flags,id,pending,scale accounts=-\n"));
    ac_buf_free(&args);
}

int main(void)
{
    const char *npm = getenv("AC_NPM_DIR");
    if (npm == NULL || *npm == '\0') {
        const char *req = getenv("AC_REQUIRE_NPM");
        fprintf(stderr, "AC_NPM_DIR not set (ops/npm-clients.sh DIR)%s\n",
                req && strcmp(req, "1") == 0 ? "" : ": skipped");
        return req && strcmp(req, "1") == 0 ? 1 : 77;
    }
    const char *tmp = getenv("AC_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/test_evidence_npm.%ld", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(npm_cbor_roundtrip)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
