/* Dispute bundles with real keys and real signatures: a user signs a binding (with the agent's
 * public key in it), a mandate and a step-up confirmation (JWS); the agent signs an RFC 9421
 * payment request; the log holds the records of two payments and signs a checkpoint. The bundle
 * of one payment verifies and its account tells the story; each check, broken on its own, is
 * the first failure reported. `agentclear audit bundle` gives exit codes 0, 1 and 2. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "protocol/bundle.h"
#include "protocol/digest.h"
#include "protocol/evidence.h"
#include "protocol/httpsig.h"
#include "protocol/jose.h"
#include "protocol/sig.h"

#define HL AC_EV_HASH_LEN
#define ORIGIN "agentclear.example/0"

/* ---- what a test may break ---------------------------------------------------------------------
 */

struct knobs {
    int stranger_binding;     /* the binding is signed by a user key not in the bundle */
    int kid_mismatch;         /* the record names another user key id for the binding */
    int no_agent_key;         /* the binding payload has no agent key */
    int drop_binding_doc;     /* the binding JWS is left out of the bundle */
    int bad_request_sig;      /* the recorded signature base differs from the one signed */
    int body_mismatch;        /* the recorded body differs from the signed content-digest */
    int keyid_mismatch;       /* the record's keyid differs from the base's */
    int deny_bad_sig;         /* add a payment.deny record whose signature does not verify */
    int foreign_record;       /* bundle a record of another payment */
    int bad_proof;            /* flip a bit of one inclusion proof */
    int seq_mismatch;         /* bundle a record under another seq */
    int small_checkpoint;     /* the checkpoint covers fewer records than the bundle needs */
    int bad_user_key;         /* a bundled user key is not a JWK */
    int other_log_key;        /* the bundled log key is not the one that signed */
    int tamper_record;        /* change one byte of a bundled record (after proofs were made) */
    int confirm_by_agent;     /* the confirmation is signed by the agent, not the user */
    int jwks_other_key;       /* the JWKS lists another key before the log key (still fine) */
    int jwks_without_log_key; /* the JWKS does not publish the log key */
};

struct fx {
    EVP_PKEY *user, *agent, *stranger, *log, *log2;
    uint8_t *bundle;
    size_t bundle_len;
    char *vkey;
};

static const char pay_body[] = "{\"amount\":{\"currency\":\"CNY\",\"value\":\"120.00\"},"
                               "\"payee\":\"m-shop\",\"mandate\":\"m-1\"}";

/* header lookup over a small fixed table */
struct hdrs {
    const char *name[4], *value[4];
};
static const char *lookup(void *ctx, const char *lname)
{
    struct hdrs *h = ctx;
    for (int i = 0; i < 4 && h->name[i]; i++)
        if (strcmp(h->name[i], lname) == 0) return h->value[i];
    return NULL;
}

/* Sign a payment request as the agent and take what the server keeps: the verbatim base and the
 * raw signature, through the verifier's own parse + base (as the HTTP layer will). */
static void signed_request(EVP_PKEY *agent, const char *keyid, char **base, size_t *base_len,
                           uint8_t sig[64])
{
    char digest[AC_DIGEST_HEADER_MAX + 1];
    assert_true(ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)pay_body, sizeof pay_body - 1,
                                 digest, sizeof digest) > 0);
    struct hdrs h = {{"content-digest", "agent-runtime", "content-type", NULL},
                     {digest, "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
                      "application/json", NULL}};
    struct ac_http_request req = {"POST", "https", "pay.example.com", "/v1/payments", NULL, 1,
                                  lookup, &h};
    static const char *const comps[] = {"@method", "@target-uri", "content-digest", "agent-runtime",
                                        NULL};
    struct ac_httpsig_sign_opts o = {.label = "sig1",
                                     .components = comps,
                                     .keyid = keyid,
                                     .created = 1714557600,
                                     .expires = 1714557900,
                                     .nonce = "n-0001",
                                     .tag = "agentclear",
                                     .with_alg = 1};
    char si[4096], sg[1024];
    assert_int_equal(ac_httpsig_sign(agent, &req, &o, si, sizeof si, sg, sizeof sg), AC_EC_OK);
    struct ac_httpsig hs;
    assert_int_equal(ac_httpsig_parse(&hs, si, sg, "agentclear"), AC_EC_OK);
    assert_int_equal(ac_httpsig_base(&hs, &req), AC_EC_OK);
    assert_int_equal(ac_httpsig_verify(&hs, agent), AC_EC_OK);
    *base = malloc(hs.base_len);
    assert_non_null(*base);
    memcpy(*base, hs.base, hs.base_len);
    *base_len = hs.base_len;
    assert_int_equal(hs.siglen, 64);
    memcpy(sig, hs.sig, 64);
    ac_httpsig_free(&hs);
}

static char *sign_json(EVP_PKEY *key, const char *typ, json_t *payload)
{
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(key, kid), 0);
    char *txt = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(txt);
    char *jws = ac_jws_sign(key, kid, typ, (const uint8_t *)txt, strlen(txt));
    assert_non_null(jws);
    free(txt);
    json_decref(payload);
    return jws;
}

static struct ac_ev_docref docref(const char *doc, const char *id, EVP_PKEY *signer)
{
    struct ac_ev_docref d = {1, {0}, id, NULL};
    assert_int_equal(ac_ev_doc_hash(doc, strlen(doc), d.hash), 0);
    static char kids[8][AC_JWK_THUMBPRINT_SIZE];
    static int next;
    char *kid = kids[next++ % 8];
    assert_int_equal(ac_jwk_thumbprint(signer, kid), 0);
    d.kid = kid;
    return d;
}

#define MAXREC 8

/* Build the log (records 0..n-1), the checkpoint and the bundle of pay-1 into f. */
static void build(struct fx *f, const struct knobs *k)
{
    memset(f, 0, sizeof *f);
    f->user = ac_sig_keygen(AC_SIG_ED25519);
    f->agent = ac_sig_keygen(AC_SIG_ES256); /* the agent uses P-256: both algorithms covered */
    f->stranger = ac_sig_keygen(AC_SIG_ED25519);
    f->log = ac_sig_keygen(AC_SIG_ED25519);
    f->log2 = ac_sig_keygen(AC_SIG_ED25519);
    assert_non_null(f->user);
    assert_non_null(f->agent);

    char agent_kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(f->agent, agent_kid), 0);
    json_t *bp = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s}, s:i, s:i, s:i}", "id", "b-1", "user",
                           "u-1", "agent", "a-1", "agent_jwk", ac_jwk_export_public(f->agent),
                           "runtime", "software", "sha-256:abc", "model", "example-model-1",
                           "max_autonomy", 3, "iat", 1714550000, "exp", 1746086400);
    assert_non_null(bp);
    if (k->no_agent_key) json_object_del(bp, "agent_jwk");
    EVP_PKEY *bsigner = k->stranger_binding ? f->stranger : f->user;
    char *binding = sign_json(bsigner, "ac-binding+jws", bp);
    char *mandate =
        sign_json(f->user, "ac-mandate+jws",
                  json_pack("{s:s, s:s, s:[s], s:[s], s:s, s:s, s:s}", "id", "m-1", "user", "u-1",
                            "bindings", "b-1", "payees", "m-shop", "asset", "CNY", "max_per_tx",
                            "500.00", "step_up_above", "100.00"));
    EVP_PKEY *csigner = k->confirm_by_agent ? f->agent : f->user;
    char *confirm = sign_json(
        csigner, "ac-confirmation+jws",
        json_pack("{s:s, s:s, s:s}", "payment", "pay-1", "answer", "confirm", "nonce", "c-123"));
    char *base;
    size_t base_len;
    uint8_t sig[64];
    signed_request(f->agent, agent_kid, &base, &base_len, sig);
    if (k->bad_request_sig) {
        /* change the recorded target: the params still parse, only the signature fails */
        char *p = strstr(base, "/v1/payments");
        assert_non_null(p);
        p[4] = 'P';
    }

    struct ac_ev_transfer hold = {
        "t-1", "wallet:u-1", "merchant:m-shop", 12000, "CNY", 2, 0x02, NULL, 0, 0};
    struct ac_ev_transfer post = {
        "t-2", "wallet:u-1", "merchant:m-shop", 12000, "CNY", 2, 0x04, "t-1", 0, 0};
    struct ac_ev_transfer other = {
        "t-9", "wallet:u-2", "merchant:m-shop", 500, "CNY", 2, 0, NULL, 0, 0};
    static const char *const r_step[] = {"amount_over_threshold"};
    static const char *const r_deny[] = {"sig_invalid"};

    struct ac_ev_record recs[MAXREC];
    int n = 0;
    memset(recs, 0, sizeof recs);
    /* 0: binding registered */
    recs[n].kind = AC_EV_BINDING_REGISTER;
    recs[n].body.user = "u-1", recs[n].body.agent = "a-1";
    recs[n].body.binding = docref(binding, "b-1", bsigner);
    n++;
    /* 1: mandate registered */
    recs[n].kind = AC_EV_MANDATE_REGISTER;
    recs[n].body.user = "u-1";
    recs[n].body.mandate = docref(mandate, "m-1", f->user);
    n++;
    /* 2: pay-1 asks, step-up: hold */
    struct ac_ev_body *b = &recs[n].body;
    recs[n].kind = AC_EV_PAYMENT_STEP_UP;
    b->payment = "pay-1", b->user = "u-1", b->agent = "a-1", b->payee = "m-shop";
    b->amount = (struct ac_ev_amount){1, 12000, "CNY", 2};
    b->binding = docref(binding, "b-1", bsigner);
    if (k->kid_mismatch) b->binding.kid = "not-the-signer";
    b->mandate = docref(mandate, "m-1", f->user);
    b->request =
        (struct ac_ev_request){1, (const uint8_t *)base,     base_len,           sig, 64, agent_kid,
                               1, (const uint8_t *)pay_body, sizeof pay_body - 1};
    if (k->keyid_mismatch) b->request.keyid = "someone-else";
    if (k->body_mismatch) b->request.body_len--;
    b->decision = AC_EV_STEP_UP;
    b->reasons = r_step, b->nreasons = 1;
    b->transfers = &hold, b->ntransfers = 1;
    int step_seq = n++;
    /* 3: another payment settles in between */
    b = &recs[n].body;
    recs[n].kind = AC_EV_PAYMENT_SETTLE;
    b->payment = "pay-2", b->user = "u-2", b->agent = "a-2", b->payee = "m-shop";
    b->amount = (struct ac_ev_amount){1, 500, "CNY", 2};
    b->binding = docref(mandate, "b-2", f->user); /* hashes only; never bundled */
    b->mandate = docref(mandate, "m-2", f->user);
    b->request =
        (struct ac_ev_request){1, (const uint8_t *)base, base_len, sig, 64, agent_kid, 0, NULL, 0};
    b->decision = AC_EV_ALLOW;
    b->transfers = &other, b->ntransfers = 1;
    int other_seq = n++;
    /* 4: the user confirms pay-1: the hold is posted */
    b = &recs[n].body;
    recs[n].kind = AC_EV_PAYMENT_CONFIRM;
    b->payment = "pay-1", b->user = "u-1";
    b->binding = docref(binding, "b-1", bsigner);
    if (k->kid_mismatch) b->binding.kid = "not-the-signer";
    b->mandate = docref(mandate, "m-1", f->user);
    b->confirmation = docref(confirm, NULL, csigner);
    b->transfers = &post, b->ntransfers = 1;
    int confirm_seq = n++;
    int deny_seq = -1;
    uint8_t badsig[64];
    if (k->deny_bad_sig) {
        /* 5: a later request for pay-1 again, with a broken signature: denied */
        memcpy(badsig, sig, 64);
        badsig[10] ^= 1;
        b = &recs[n].body;
        recs[n].kind = AC_EV_PAYMENT_DENY;
        b->payment = "pay-1", b->user = "u-1", b->agent = "a-1";
        b->binding = docref(binding, "b-1", bsigner);
        b->request = (struct ac_ev_request){
            1, (const uint8_t *)base, base_len, badsig, 64, agent_kid, 0, NULL, 0};
        b->decision = AC_EV_DENY;
        b->reasons = r_deny, b->nreasons = 1;
        deny_seq = n++;
    }
    /* 6: one more, so the tree is not a power of two */
    b = &recs[n].body;
    recs[n].kind = AC_EV_PAYMENT_EXPIRE;
    b->payment = "pay-3";
    b->transfers = &other, b->ntransfers = 1;
    n++;

    /* encode, chain, tree */
    uint8_t *bytes[MAXREC];
    size_t lens[MAXREC];
    uint8_t prev[HL] = {0};
    struct ac_ev_tree tree;
    ac_ev_tree_init(&tree);
    for (int i = 0; i < n; i++) {
        recs[i].seq = (uint64_t)i;
        recs[i].time_us = 1714557600000000 + (int64_t)i * 1500000;
        memcpy(recs[i].prev, prev, HL);
        char err[256];
        if (ac_ev_record_encode(&recs[i], &bytes[i], &lens[i], err, sizeof err) != 0)
            fail_msg("record %d: %s", i, err);
        assert_int_equal(ac_ev_record_hash(bytes[i], lens[i], prev), 0);
        uint8_t leaf[HL];
        assert_int_equal(ac_ev_leaf_hash(bytes[i], lens[i], leaf), 0);
        assert_int_equal(ac_ev_tree_append(&tree, leaf), 0);
    }
    uint64_t size = k->small_checkpoint ? (uint64_t)confirm_seq : (uint64_t)n;
    uint8_t root[HL];
    assert_int_equal(ac_ev_tree_root(&tree, size, root), 0);
    char *note;
    size_t note_len;
    assert_int_equal(ac_ev_checkpoint_sign(ORIGIN, size, root, f->log, &note, &note_len), 0);
    f->vkey = ac_ev_checkpoint_vkey(ORIGIN, f->log);
    char *vkey_bundled = ac_ev_checkpoint_vkey(ORIGIN, k->other_log_key ? f->log2 : f->log);

    /* the bundle of pay-1 */
    int pick[4], np = 0;
    pick[np++] = step_seq;
    if (k->foreign_record) pick[np++] = other_seq;
    pick[np++] = confirm_seq;
    if (deny_seq >= 0) pick[np++] = deny_seq;
    struct ac_bundle_entry entries[4];
    uint8_t proofs[4][AC_MERKLE_MAX_PROOF][HL];
    uint8_t *tampered = NULL;
    for (int i = 0; i < np; i++) {
        int s = pick[i];
        size_t pl = 0;
        uint64_t psize = (uint64_t)s < size ? size : (uint64_t)n;
        assert_int_equal(ac_ev_tree_inclusion(&tree, (uint64_t)s, psize, proofs[i], &pl), 0);
        entries[i] = (struct ac_bundle_entry){
            (uint64_t)s, {bytes[s], lens[s]}, (const uint8_t(*)[HL])proofs[i], pl};
    }
    if (k->bad_proof) proofs[np - 1][0][7] ^= 0x10;
    if (k->seq_mismatch) entries[np - 1].seq = entries[np - 1].seq + 1;
    if (k->tamper_record) {
        /* the amount of the step-up record: 12000 = 0x19 0x2e 0xe0 -> 12001 */
        tampered = malloc(lens[step_seq]);
        memcpy(tampered, bytes[step_seq], lens[step_seq]);
        int hit = 0;
        for (size_t i = 0; i + 2 < lens[step_seq]; i++)
            if (tampered[i] == 0x19 && tampered[i + 1] == 0x2e && tampered[i + 2] == 0xe0) {
                tampered[i + 2] = 0xe1;
                hit = 1;
                break;
            }
        assert_true(hit);
        entries[0].record.p = tampered;
    }
    char *ukey = ac_jwk_public_text(f->user);
    struct ac_blob docs[3], keys[1];
    size_t nd = 0;
    if (!k->drop_binding_doc) docs[nd++] = (struct ac_blob){(uint8_t *)binding, strlen(binding)};
    docs[nd++] = (struct ac_blob){(uint8_t *)mandate, strlen(mandate)};
    docs[nd++] = (struct ac_blob){(uint8_t *)confirm, strlen(confirm)};
    keys[0] = k->bad_user_key ? (struct ac_blob){(const uint8_t *)"{\"kty\":\"OKP\"}", 13}
                              : (struct ac_blob){(uint8_t *)ukey, strlen(ukey)};
    /* the server's JWKS as /.well-known/agentclear/keys serves it: the log key with its kid */
    json_t *lj = ac_jwk_export_public(f->log);
    char lkid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(f->log, lkid), 0);
    json_object_set_new(lj, "kid", json_string(lkid));
    json_object_set_new(lj, "alg", json_string("EdDSA"));
    json_object_set_new(lj, "use", json_string("sig"));
    json_t *jw = json_pack("{s:[o]}", "keys", lj);
    if (k->jwks_other_key)
        json_array_insert_new(json_object_get(jw, "keys"), 0, ac_jwk_export_public(f->log2));
    if (k->jwks_without_log_key) json_array_remove(json_object_get(jw, "keys"), 0);
    char *jwks = json_dumps(jw, JSON_COMPACT);
    json_decref(jw);
    struct ac_bundle bun = {"pay-1",
                            entries,
                            (size_t)np,
                            docs,
                            nd,
                            keys,
                            1,
                            {(uint8_t *)note, note_len},
                            {(uint8_t *)vkey_bundled, strlen(vkey_bundled)},
                            {(const uint8_t *)jwks, strlen(jwks)},
                            NULL};
    char err[256];
    if (ac_bundle_encode(&bun, &f->bundle, &f->bundle_len, err, sizeof err) != 0)
        fail_msg("bundle: %s", err);

    /* the decoder gives the same view back */
    struct ac_bundle dec;
    assert_int_equal(ac_bundle_decode(f->bundle, f->bundle_len, &dec, err, sizeof err), 0);
    assert_string_equal(dec.payment, "pay-1");
    assert_int_equal(dec.nentries, (size_t)np);
    assert_int_equal(dec.entries[0].record.len, entries[0].record.len);
    assert_memory_equal(dec.entries[0].record.p, entries[0].record.p, entries[0].record.len);
    assert_int_equal(dec.entries[0].proof_len, entries[0].proof_len);
    assert_int_equal(dec.ndocuments, nd);
    assert_int_equal(dec.jwks.len, strlen(jwks));
    ac_bundle_clear(&dec);

    for (int i = 0; i < n; i++)
        free(bytes[i]);
    free(tampered);
    ac_ev_tree_free(&tree);
    free(note);
    free(vkey_bundled);
    free(ukey);
    free(jwks);
    free(binding);
    free(mandate);
    free(confirm);
    free(base);
}

static void fx_free(struct fx *f)
{
    EVP_PKEY_free(f->user);
    EVP_PKEY_free(f->agent);
    EVP_PKEY_free(f->stranger);
    EVP_PKEY_free(f->log);
    EVP_PKEY_free(f->log2);
    free(f->bundle);
    free(f->vkey);
}

/* Build with the knobs, verify, and expect the first failure at item with why containing
 * needle (item NULL: expect success). Returns nothing; prints the account on surprise. */
static void expect(const struct knobs *k, const char *item, const char *needle, int pin)
{
    struct fx f;
    build(&f, k);
    struct ac_bundle_verify_opts o = {0};
    if (pin) o.log_key = f.vkey;
    struct ac_bundle_result res;
    int rc = ac_bundle_verify(f.bundle, f.bundle_len, &o, &res);
    if (item == NULL) {
        if (rc != 0) fail_msg("failed at %s: %s\n%s", res.item, res.why, ac_buf_str(&res.account));
    } else {
        if (rc == 0)
            fail_msg("verified; wanted a failure at %s\n%s", item, ac_buf_str(&res.account));
        if (strcmp(res.item, item) != 0 || strstr(res.why, needle) == NULL)
            fail_msg("want %s / '%s', got %s / '%s'", item, needle, res.item, res.why);
    }
    ac_bundle_result_free(&res);
    fx_free(&f);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void verifies(void **s)
{
    (void)s;
    struct knobs k = {0};
    struct fx f;
    build(&f, &k);
    struct ac_bundle_verify_opts o = {f.vkey, ORIGIN, NULL, NULL};
    struct ac_bundle_result res;
    int rc = ac_bundle_verify(f.bundle, f.bundle_len, &o, &res);
    const char *a = ac_buf_str(&res.account);
    if (rc != 0) fail_msg("failed at %s: %s\n%s", res.item, res.why, a);
    if (getenv("AC_SHOW_ACCOUNT")) fputs(a, stderr); /* to look at it by hand */
    assert_string_equal(res.item, "");
    assert_int_equal(res.nrecords, 2);
    assert_int_equal(res.ndocuments, 3);
    assert_int_equal(res.log_key_pinned, 1);
    /* the account names who authorised what, when, under which binding and mandate */
    const char *want[] = {"agentclear dispute bundle for pay-1",
                          "(pinned by the auditor)",
                          "tree size 6",
                          "signature VERIFIED",
                          "jwks:       publishes the checkpoint key as kid ",
                          "binding sha256 ",
                          "mandate sha256 ",
                          "confirmation sha256 ",
                          "\"agent_jwk\"",
                          "#2  2024-05-01T10:00:03.000000Z  payment.step_up",
                          "user u-1, agent a-1 -> payee m-shop: 120.00 CNY",
                          "under binding b-1, mandate m-1",
                          "request: POST https://pay.example.com/v1/payments",
                          "signed at 2024-05-01T10:00:00.000000Z, nonce n-0001",
                          "body (matches the signed content-digest)",
                          "signature VERIFIED with agent key",
                          "decision step_up (reasons: amount_over_threshold)",
                          "transfer t-1: wallet:u-1 -> merchant:m-shop 120.00 CNY [pending]",
                          "#4  2024-05-01T10:00:06.000000Z  payment.confirm",
                          "the user CONFIRMED with user key",
                          "transfer t-2: wallet:u-1 -> merchant:m-shop 120.00 CNY "
                          "[post_pending] of t-1",
                          "result: VERIFIED (2 records, 3 documents)"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(a, want[i]) == NULL) fail_msg("account lacks '%s':\n%s", want[i], a);
    /* pay-2 is not in pay-1's bundle */
    assert_null(strstr(a, "pay-2"));
    ac_bundle_result_free(&res);

    /* without a pinned key: verified, and the account says where the key came from */
    rc = ac_bundle_verify(f.bundle, f.bundle_len, NULL, &res);
    assert_int_equal(rc, 0);
    assert_int_equal(res.log_key_pinned, 0);
    assert_non_null(strstr(ac_buf_str(&res.account), "taken from the bundle"));
    ac_bundle_result_free(&res);
    fx_free(&f);
}

static void jwks_with_more_keys(void **s)
{
    (void)s;
    struct knobs k = {.jwks_other_key = 1};
    expect(&k, NULL, NULL, 1);
}

static void deny_with_bad_signature_is_reported(void **s)
{
    (void)s;
    struct knobs k = {.deny_bad_sig = 1};
    struct fx f;
    build(&f, &k);
    struct ac_bundle_result res;
    assert_int_equal(ac_bundle_verify(f.bundle, f.bundle_len, NULL, &res), 0);
    const char *a = ac_buf_str(&res.account);
    assert_non_null(strstr(a, "payment.deny"));
    assert_non_null(strstr(a, "consistent with a denial"));
    assert_non_null(strstr(a, "decision deny (reasons: sig_invalid)"));
    ac_bundle_result_free(&res);
    fx_free(&f);
}

static void each_check_fails_alone(void **s)
{
    (void)s;
    struct knobs k;
#define CASE(field, item, needle)                                                                  \
    do {                                                                                           \
        memset(&k, 0, sizeof k);                                                                   \
        k.field = 1;                                                                               \
        expect(&k, item, needle, 1);                                                               \
    } while (0)
    CASE(other_log_key, "log key", "not the pinned key");
    CASE(small_checkpoint, "record #4", "beyond the checkpoint");
    CASE(bad_user_key, "user key #0", "not a valid public jwk");
    CASE(tamper_record, "record #2", "inclusion proof does not verify");
    CASE(bad_proof, "record #4", "inclusion proof does not verify");
    CASE(seq_mismatch, "record #5", "the record says seq 4");
    CASE(foreign_record, "record #3", "not about pay-1");
    CASE(drop_binding_doc, "record #2", "binding document");
    CASE(stranger_binding, "record #2", "not signed by any bundled user key");
    CASE(kid_mismatch, "record #2", "the record names not-the-signer");
    CASE(no_agent_key, "record #2", "names no agent key");
    CASE(bad_request_sig, "record #2", "request signature does not verify");
    CASE(body_mismatch, "record #2", "does not match the signed content-digest");
    CASE(keyid_mismatch, "record #2", "is not the recorded keyid");
    CASE(confirm_by_agent, "record #4", "confirmation document");
    CASE(jwks_without_log_key, "jwks", "does not publish the checkpoint key");
#undef CASE
    /* without pinning, a bundle whose log key did not sign the checkpoint still fails */
    memset(&k, 0, sizeof k);
    k.other_log_key = 1;
    expect(&k, "checkpoint", "checkpoint signature", 0);
}

static const char *find_bytes(const void *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp((const char *)hay + i, needle, k) == 0) return (const char *)hay + i;
    return NULL;
}

static void malformed_bundles(void **s)
{
    (void)s;
    struct knobs k = {0};
    struct fx f;
    build(&f, &k);
    struct ac_bundle_result res;
    /* one byte more, one byte less, an extra member: never verified, named "bundle" */
    uint8_t *m = malloc(f.bundle_len + 1);
    memcpy(m, f.bundle, f.bundle_len);
    m[f.bundle_len] = 0;
    assert_int_equal(ac_bundle_verify(m, f.bundle_len + 1, NULL, &res), -1);
    assert_string_equal(res.item, "bundle");
    assert_non_null(strstr(res.why, "trailing"));
    ac_bundle_result_free(&res);
    assert_int_equal(ac_bundle_verify(m, f.bundle_len - 1, NULL, &res), -1);
    assert_string_equal(res.item, "bundle");
    ac_bundle_result_free(&res);
    assert_int_equal(ac_bundle_verify((const uint8_t *)"\xa0", 1, NULL, &res), -1);
    assert_non_null(strstr(res.why, "bundle needs"));
    ac_bundle_result_free(&res);
    assert_int_equal(ac_bundle_verify(NULL, 0, NULL, &res), -1);
    ac_bundle_result_free(&res);
    /* every single-byte change anywhere in the bundle is caught by some check -- except inside
     * the JWKS text, whose unknown members a JWK reader must ignore (RFC 7517 §4): only its log
     * key counts, and that is checked (jwks_without_log_key) */
    const char *js = find_bytes(f.bundle, f.bundle_len, "{\"keys\":[");
    assert_non_null(js);
    const char *je = find_bytes(js, f.bundle_len - (size_t)(js - (const char *)f.bundle), "]}");
    assert_non_null(je);
    size_t jlo = (size_t)(js - (const char *)f.bundle), jhi = (size_t)(je - (const char *)f.bundle);
    size_t caught = 0;
    for (size_t i = 0; i < f.bundle_len; i += 3) {
        if (i > jlo && i < jhi) continue;
        memcpy(m, f.bundle, f.bundle_len);
        m[i] ^= 0x01;
        int rc = ac_bundle_verify(m, f.bundle_len, NULL, &res);
        ac_bundle_result_free(&res);
        if (rc != 0)
            caught++;
        else
            fail_msg("byte %zu changed and the bundle still verifies: ...%.40s...", i,
                     (const char *)m + (i > 20 ? i - 20 : 0));
    }
    assert_true(caught > 0);
    free(m);
    fx_free(&f);
}

/* ---- the command ----------------------------------------------------------------------------- */

static void command(void **s)
{
    (void)s;
    const char *tmp = getenv("AC_TEST_TMP");
    char dir[512], path[600], bad[600], args[4096];
    snprintf(dir, sizeof dir, "%s/test_bundle.%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    snprintf(args, sizeof args, "mkdir -p '%s'", dir);
    assert_int_equal(system(args), 0);
    snprintf(path, sizeof path, "%s/pay-1.cbor", dir);
    snprintf(bad, sizeof bad, "%s/pay-1-bad.cbor", dir);
    struct knobs k = {0};
    struct fx f;
    build(&f, &k);
    ac_test_write_file(path, f.bundle, f.bundle_len);
    fx_free(&f);
    memset(&k, 0, sizeof k);
    k.bad_request_sig = 1;
    build(&f, &k);
    ac_test_write_file(bad, f.bundle, f.bundle_len);

    static char out[65536];
    assert_int_equal(ac_test_cli(out, sizeof out, "audit bundle '%s'", path), 0);
    assert_non_null(strstr(out, "result: VERIFIED (2 records, 3 documents)"));
    /* pinned to another log's key: 1, naming the log key */
    assert_int_equal(ac_test_cli(out, sizeof out, "audit bundle '%s' --log-key='%s'", path, f.vkey),
                     1);
    assert_non_null(strstr(out, "audit: FAILED at log key"));
    /* a bundle whose request signature is bad: 1, naming the record */
    assert_int_equal(ac_test_cli(out, sizeof out, "audit bundle '%s'", bad), 1);
    assert_non_null(strstr(out, "audit: FAILED at record #2: its request signature"));
    /* unreadable: 2 */
    assert_int_equal(ac_test_cli(out, sizeof out, "audit bundle '%s/missing.cbor'", dir), 2);
    assert_non_null(strstr(out, "cannot open"));
    assert_int_equal(ac_test_cli(out, sizeof out, "audit bundle"), 2);
    assert_int_equal(ac_test_cli(out, sizeof out, "audit nothing"), 2);
    fx_free(&f);
    unlink(path);
    unlink(bad);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verifies),
        cmocka_unit_test(jwks_with_more_keys),
        cmocka_unit_test(deny_with_bad_signature_is_reported),
        cmocka_unit_test(each_check_fails_alone),
        cmocka_unit_test(malformed_bundles),
        cmocka_unit_test(command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
