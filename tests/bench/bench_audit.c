/* tests/bench/bench_audit.c -- makes a realistic evidence export for `ops/bench audit`:
 *
 * usage: bench_audit N OUT_FILE     (prints "log_key <vkey>" on stdout)
 *
 * U users (Ed25519 keys), each with a binding of its own Ed25519 agent key and a mandate, both
 * user-signed JWS, recorded as binding.register and mandate.register; then N payment.settle
 * records, each with a real RFC 9421 request (signature base covering @method, @target-uri,
 * content-digest of a kept JSON body, created, nonce, keyid) signed by the paying user's agent
 * key, the binding and mandate by docref, and one transfer; a checkpoint every 1024 records and
 * at the end, signed with a server Ed25519 key. Records are made with protocol/evidence.h, the
 * export with protocol/replay.h's writers: exactly what the server writes and exports. Signing
 * uses every core (the timed part is the replay, run by ops/bench). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/digest.h"
#include "protocol/evidence.h"
#include "protocol/jose.h"
#include "protocol/mandate.h"
#include "protocol/replay.h"
#include "protocol/sig.h"

#define USERS 62 /* + shop + operator: one ledger.account record */
#define CP_EVERY 1024

struct user {
    char id[16], agent[24], binding[16], mandate[16];
    EVP_PKEY *key, *agent_key;
    char kid[AC_JWK_THUMBPRINT_SIZE], agent_kid[AC_JWK_THUMBPRINT_SIZE];
    char *binding_jws, *mandate_jws;
    uint8_t bh[32], mh[32];
};

static char *sign_doc(EVP_PKEY *key, const char *kid, const char *typ, json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(payload);
    char *jws = ac_jws_sign(key, kid, typ, (const uint8_t *)text, strlen(text));
    free(text);
    if (jws == NULL) {
        fprintf(stderr, "bench_audit: signing failed\n");
        exit(1);
    }
    return jws;
}

struct out {
    FILE *f;
    struct ac_buf b;
    struct ac_merkle_frontier tree;
    uint8_t prev[32];
    uint64_t n;
    EVP_PKEY *server;
    const char *origin;
};

static void flush_out(struct out *o)
{
    if (o->b.oom || fwrite(o->b.p, 1, o->b.len, o->f) != o->b.len) {
        fprintf(stderr, "bench_audit: write failed\n");
        exit(1);
    }
    ac_buf_reset(&o->b);
}

static void checkpoint(struct out *o)
{
    uint8_t root[32];
    char *note;
    size_t len;
    if (ac_merkle_frontier_root(&o->tree, root) != 0 ||
        ac_ev_checkpoint_sign(o->origin, o->n, root, o->server, &note, &len) != 0 ||
        ac_replay_export_checkpoint(&o->b, note, len) != 0) {
        fprintf(stderr, "bench_audit: checkpoint failed\n");
        exit(1);
    }
    free(note);
}

static void append(struct out *o, struct ac_ev_record *r)
{
    r->seq = o->n;
    r->time_us = 1780000000000000LL + (int64_t)o->n * 1000;
    memcpy(r->prev, o->prev, 32);
    uint8_t *bytes, leaf[32];
    size_t len;
    char err[200];
    if (ac_ev_record_encode(r, &bytes, &len, err, sizeof err) != 0) {
        fprintf(stderr, "bench_audit: %s\n", err);
        exit(1);
    }
    ac_ev_record_hash(bytes, len, o->prev);
    ac_ev_leaf_hash(bytes, len, leaf);
    ac_merkle_frontier_append(&o->tree, leaf);
    ac_replay_export_record(&o->b, bytes, len);
    free(bytes);
    o->n++;
    if (o->n % CP_EVERY == 0) checkpoint(o);
    flush_out(o);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_audit N OUT_FILE\n");
        return 2;
    }
    uint64_t n = strtoull(argv[1], NULL, 10);
    struct out o;
    memset(&o, 0, sizeof o);
    o.f = fopen(argv[2], "wb");
    o.origin = "bench.agentclear/0";
    o.server = ac_sig_keygen(AC_SIG_ED25519);
    ac_merkle_frontier_init(&o.tree);
    char *vkey = ac_ev_checkpoint_vkey(o.origin, o.server);
    if (o.f == NULL || vkey == NULL) return 1;
    ac_replay_export_header(&o.b, o.origin, vkey);
    static struct user u[USERS];
    int64_t now = 1780000000;
    for (int i = 0; i < USERS; i++) {
        snprintf(u[i].id, sizeof u[i].id, "u%d", i);
        snprintf(u[i].agent, sizeof u[i].agent, "agent-%d", i);
        snprintf(u[i].binding, sizeof u[i].binding, "b%d", i);
        snprintf(u[i].mandate, sizeof u[i].mandate, "m%d", i);
        u[i].key = ac_sig_keygen(AC_SIG_ED25519);
        u[i].agent_key = ac_sig_keygen(AC_SIG_ED25519);
        ac_jwk_thumbprint(u[i].key, u[i].kid);
        ac_jwk_thumbprint(u[i].agent_key, u[i].agent_kid);
        json_t *b = json_pack(
            "{s:i, s:s, s:s, s:s, s:{s:o}, s:{s:s, s:s, s:s}, s:s, s:I, s:I}", "ver", 1, "id",
            u[i].binding, "iss", u[i].id, "sub", u[i].agent, "cnf", "jwk",
            ac_jwk_export_public(u[i].agent_key), "runtime", "software",
            "sha-256:abababababababababababababababababababababababababababababababab", "model",
            "bench-model", "environment",
            "sha-256:0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
            "max_autonomy", "L3", "iat", (json_int_t)now, "exp", (json_int_t)(now + 86400 * 300));
        u[i].binding_jws = sign_doc(u[i].key, u[i].kid, AC_BINDING_TYP, b);
        /* a mandate under which every payment below is allowed: the replay recomputes each one */
        json_t *m = json_pack("{s:i, s:s, s:s, s:[s], s:[s], s:{s:[s]}, s:s, s:s, s:I, s:I, s:s}",
                              "ver", 1, "id", u[i].mandate, "iss", u[i].id, "agents", u[i].agent,
                              "ops", "purchase", "payees", "merchants", "shop", "asset", "CNY",
                              "max_per_tx", "500.00", "nbf", (json_int_t)(now - 60), "exp",
                              (json_int_t)(now + 86400 * 300), "autonomy", "L5");
        u[i].mandate_jws = sign_doc(u[i].key, u[i].kid, AC_MANDATE_TYP, m);
        ac_ev_doc_hash(u[i].binding_jws, strlen(u[i].binding_jws), u[i].bh);
        ac_ev_doc_hash(u[i].mandate_jws, strlen(u[i].mandate_jws), u[i].mh);
        ac_replay_export_document(&o.b, (const uint8_t *)u[i].binding_jws,
                                  strlen(u[i].binding_jws));
        ac_replay_export_document(&o.b, (const uint8_t *)u[i].mandate_jws,
                                  strlen(u[i].mandate_jws));
        char *jwk = ac_jwk_public_text(u[i].key);
        ac_replay_export_user_key(&o.b, u[i].id, jwk, strlen(jwk));
        free(jwk);
    }
    flush_out(&o);
    for (int i = 0; i < USERS; i++) {
        struct ac_ev_record r;
        memset(&r, 0, sizeof r);
        r.kind = AC_EV_BINDING_REGISTER;
        r.body.user = u[i].id;
        r.body.agent = u[i].agent;
        r.body.binding = (struct ac_ev_docref){1, {0}, u[i].binding, u[i].kid};
        memcpy(r.body.binding.hash, u[i].bh, 32);
        append(&o, &r);
        memset(&r, 0, sizeof r);
        r.kind = AC_EV_MANDATE_REGISTER;
        r.body.user = u[i].id;
        r.body.mandate = (struct ac_ev_docref){1, {0}, u[i].mandate, u[i].kid};
        memcpy(r.body.mandate.hash, u[i].mh, 32);
        append(&o, &r);
    }
    /* the operator's accounts (wallets may not overdraw) and its funding of every wallet: what
     * the replay recomputes every balance from (USERS <= AC_EV_MAX_ACCOUNTS - 2) */
    {
        static char wallets[USERS][32];
        struct ac_ev_account acc[USERS + 2];
        struct ac_ev_transfer fund[USERS];
        static char fid[USERS][32];
        for (int i = 0; i < USERS; i++) {
            snprintf(wallets[i], sizeof wallets[i], "wallet:%s", u[i].id);
            snprintf(fid[i], sizeof fid[i], "fund-%d", i);
            acc[i] = (struct ac_ev_account){wallets[i], "CNY", u[i].id, 0x1};
            fund[i] = (struct ac_ev_transfer){
                fid[i], "operator", wallets[i], (int64_t)(n / USERS + 1) * 200, "CNY", 2, 0,
                NULL,   0,          0};
        }
        acc[USERS] = (struct ac_ev_account){"shop", "CNY", NULL, 0};
        acc[USERS + 1] = (struct ac_ev_account){"operator", "CNY", NULL, 0};
        struct ac_ev_record r;
        memset(&r, 0, sizeof r);
        r.kind = AC_EV_LEDGER_ACCOUNT;
        r.body.actor = "operator";
        r.body.accounts = acc;
        r.body.naccounts = USERS + 2;
        append(&o, &r);
        memset(&r, 0, sizeof r);
        r.kind = AC_EV_LEDGER_TRANSFER;
        r.body.actor = "operator";
        r.body.transfers = fund;
        r.body.ntransfers = USERS;
        append(&o, &r);
    }
    for (uint64_t k = 0; k < n; k++) {
        struct user *x = &u[k % USERS];
        char pid[32], tid[32], wallet[32], body[256], digest[160], base[1024], nonce[32];
        snprintf(pid, sizeof pid, "pay-%" PRIu64, k);
        snprintf(tid, sizeof tid, "t-%" PRIu64, k);
        snprintf(wallet, sizeof wallet, "wallet:%s", x->id);
        snprintf(nonce, sizeof nonce, "n-%" PRIu64, k);
        int blen = snprintf(body, sizeof body,
                            "{\"amount\":{\"currency\":\"CNY\",\"value\":\"1.%02d\"},\"id\":\"%s\","
                            "\"mandate\":\"%s\",\"payee\":\"shop\"}",
                            (int)(k % 100), pid, x->mandate);
        ac_digest_header(AC_DIGEST_SHA256, (const uint8_t *)body, (size_t)blen, digest,
                         sizeof digest);
        int n2 = snprintf(base, sizeof base,
                          "\"@method\": POST\n\"@target-uri\": https://pay.example/v1/payments\n"
                          "\"content-digest\": %s\n\"@signature-params\": (\"@method\" "
                          "\"@target-uri\" \"content-digest\");created=%" PRId64
                          ";nonce=\"%s\";keyid=\"%s\"",
                          digest, now + (int64_t)k / 1000, nonce, x->agent_kid);
        uint8_t sig[AC_SIG_MAX];
        size_t slen;
        if (ac_sig_sign(x->agent_key, (const uint8_t *)base, (size_t)n2, sig, &slen) != 0) return 1;
        struct ac_ev_transfer t = {tid,  wallet, "shop", 100 + (int64_t)(k % 100), "CNY", 2, 0,
                                   NULL, 0,      0};
        struct ac_ev_record r;
        memset(&r, 0, sizeof r);
        r.kind = AC_EV_PAYMENT_SETTLE;
        r.body.payment = pid;
        r.body.user = x->id;
        r.body.agent = x->agent;
        r.body.payee = "shop";
        r.body.amount = (struct ac_ev_amount){1, t.amount, "CNY", 2};
        r.body.binding = (struct ac_ev_docref){1, {0}, x->binding, x->kid};
        memcpy(r.body.binding.hash, x->bh, 32);
        r.body.mandate = (struct ac_ev_docref){1, {0}, x->mandate, x->kid};
        memcpy(r.body.mandate.hash, x->mh, 32);
        r.body.request =
            (struct ac_ev_request){1, (const uint8_t *)base, (size_t)n2,  sig, slen, x->agent_kid,
                                   1, (const uint8_t *)body, (size_t)blen};
        r.body.decision = AC_EV_ALLOW;
        r.body.transfers = &t;
        r.body.ntransfers = 1;
        append(&o, &r);
    }
    if (o.n % CP_EVERY) checkpoint(&o);
    flush_out(&o);
    if (fclose(o.f) != 0) return 1;
    printf("log_key %s\nrecords %" PRIu64 "\n", vkey, o.n);
    free(vkey);
    ac_buf_free(&o.b);
    EVP_PKEY_free(o.server);
    for (int i = 0; i < USERS; i++) {
        EVP_PKEY_free(u[i].key);
        EVP_PKEY_free(u[i].agent_key);
        free(u[i].binding_jws);
        free(u[i].mandate_jws);
    }
    return 0;
}
