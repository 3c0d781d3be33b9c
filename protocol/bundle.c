/* The dispute bundle: encode, decode, verify offline, and tell what happened. See bundle.h and
 * docs/evidence.md. */
#include "protocol/bundle.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "protocol/amount.h"
#include "protocol/b64.h"
#include "protocol/dcbor.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/sigbase.h"
#include "protocol/jose.h"
#include "protocol/merkle.h"

/* ==== encoding =============================================================================== */

int ac_bundle_encode(const struct ac_bundle *b, uint8_t **out, size_t *len, char *err,
                     size_t errlen)
{
    *out = NULL;
    *len = 0;
    if (b == NULL || b->payment == NULL || !ac_id_valid(b->payment))
        return ac_errf(err, errlen, "payment id is invalid");
    if (b->nentries == 0 || b->nentries > AC_BUNDLE_MAX_RECORDS)
        return ac_errf(err, errlen, "a bundle holds 1..%d records", AC_BUNDLE_MAX_RECORDS);
    if (b->ndocuments > AC_BUNDLE_MAX_DOCS || b->nuser_keys > AC_BUNDLE_MAX_KEYS)
        return ac_errf(err, errlen, "too many documents or keys");
    if (b->checkpoint.p == NULL || b->checkpoint.len == 0 || b->log_key.p == NULL ||
        b->log_key.len == 0)
        return ac_errf(err, errlen, "checkpoint and log key are required");
    for (size_t i = 0; i < b->nentries; i++) {
        const struct ac_bundle_entry *e = &b->entries[i];
        if (i > 0 && e->seq <= b->entries[i - 1].seq)
            return ac_errf(err, errlen, "entries are not in ascending seq order");
        if (e->record.p == NULL || e->record.len == 0 || e->proof_len > AC_MERKLE_MAX_PROOF ||
            (e->proof_len > 0 && e->proof == NULL))
            return ac_errf(err, errlen, "entry %zu is incomplete", i);
    }
    cbor_item_t *m = ac_dcbor_map(8);
    if (m == NULL) return ac_errf(err, errlen, "out of memory");
    int rc = ac_dcbor_map_putz(m, "v", ac_dcbor_uint(AC_BUNDLE_VERSION));
    rc |= ac_dcbor_map_putz(m, "payment", ac_dcbor_textz(b->payment));
    cbor_item_t *recs = ac_dcbor_array(b->nentries);
    for (size_t i = 0; recs != NULL && i < b->nentries; i++) {
        const struct ac_bundle_entry *e = &b->entries[i];
        cbor_item_t *em = ac_dcbor_map(3), *pr = ac_dcbor_array(e->proof_len);
        for (size_t k = 0; pr != NULL && k < e->proof_len; k++)
            rc |= ac_dcbor_array_push(pr, ac_dcbor_bytes(e->proof[k], AC_EV_HASH_LEN));
        if (em != NULL) {
            rc |= ac_dcbor_map_putz(em, "seq", ac_dcbor_uint(e->seq));
            rc |= ac_dcbor_map_putz(em, "record", ac_dcbor_bytes(e->record.p, e->record.len));
            rc |= ac_dcbor_map_putz(em, "proof", pr);
        } else if (pr != NULL) {
            cbor_decref(&pr);
        }
        rc |= ac_dcbor_array_push(recs, em);
    }
    rc |= ac_dcbor_map_putz(m, "records", recs);
    cbor_item_t *docs = ac_dcbor_array(b->ndocuments);
    for (size_t i = 0; docs != NULL && i < b->ndocuments; i++)
        rc |= ac_dcbor_array_push(docs, ac_dcbor_bytes(b->documents[i].p, b->documents[i].len));
    rc |= ac_dcbor_map_putz(m, "documents", docs);
    cbor_item_t *keys = ac_dcbor_array(b->nuser_keys);
    for (size_t i = 0; keys != NULL && i < b->nuser_keys; i++)
        rc |= ac_dcbor_array_push(
            keys, ac_dcbor_text((const char *)b->user_keys[i].p, b->user_keys[i].len));
    rc |= ac_dcbor_map_putz(m, "user_keys", keys);
    rc |= ac_dcbor_map_putz(m, "checkpoint",
                            ac_dcbor_text((const char *)b->checkpoint.p, b->checkpoint.len));
    rc |=
        ac_dcbor_map_putz(m, "log_key", ac_dcbor_text((const char *)b->log_key.p, b->log_key.len));
    if (b->jwks.len > 0)
        rc |= ac_dcbor_map_putz(m, "jwks", ac_dcbor_text((const char *)b->jwks.p, b->jwks.len));
    return ac_dcbor_encode_built(m, rc, out, len, err, errlen);
}

/* ==== decoding =============================================================================== */

/* What a decoded bundle owns: the libcbor tree (blobs point into it) and the arrays. */
struct bundle_mem {
    cbor_item_t *root;
    char *payment;
    struct ac_bundle_entry *entries;
    struct ac_blob *documents, *user_keys;
    uint8_t (*proofs)[AC_EV_HASH_LEN];
};

static const uint8_t empty_bytes[1];

static int get_blob(const cbor_item_t *it, int text, struct ac_blob *out)
{
    if (text ? !cbor_isa_string(it) : !cbor_isa_bytestring(it)) return -1;
    size_t n = text ? cbor_string_length(it) : cbor_bytestring_length(it);
    const uint8_t *p = text ? cbor_string_handle(it) : cbor_bytestring_handle(it);
    out->p = p != NULL ? p : empty_bytes;
    out->len = n;
    return 0;
}

static int key_is(const cbor_item_t *k, const char *name)
{
    size_t n = strlen(name);
    return cbor_isa_string(k) && cbor_string_length(k) == n &&
           memcmp(cbor_string_handle(k), name, n) == 0;
}

void ac_bundle_clear(struct ac_bundle *b)
{
    if (b == NULL) return;
    struct bundle_mem *m = b->mem_;
    if (m != NULL) {
        if (m->root) cbor_decref(&m->root);
        free(m->payment);
        free(m->entries);
        free(m->documents);
        free(m->user_keys);
        free(m->proofs);
        free(m);
    }
    memset(b, 0, sizeof *b);
}

static int decode_entries(const cbor_item_t *arr, struct ac_bundle *b, struct bundle_mem *m,
                          char *err, size_t errlen)
{
    if (!cbor_isa_array(arr)) return ac_errf(err, errlen, "records is not an array");
    size_t n = cbor_array_size(arr), nproofs = 0;
    if (n == 0 || n > AC_BUNDLE_MAX_RECORDS)
        return ac_errf(err, errlen, "a bundle holds 1..%d records", AC_BUNDLE_MAX_RECORDS);
    cbor_item_t **items = cbor_array_handle(arr);
    for (size_t i = 0; i < n; i++) {
        if (!cbor_isa_map(items[i])) return ac_errf(err, errlen, "records[%zu] is not a map", i);
        struct cbor_pair *pp = cbor_map_handle(items[i]);
        for (size_t k = 0; k < cbor_map_size(items[i]); k++)
            if (key_is(pp[k].key, "proof") && cbor_isa_array(pp[k].value))
                nproofs += cbor_array_size(pp[k].value);
    }
    m->entries = calloc(n, sizeof *m->entries);
    m->proofs = calloc(nproofs ? nproofs : 1, sizeof *m->proofs);
    if (m->entries == NULL || m->proofs == NULL) return ac_errf(err, errlen, "out of memory");
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        struct ac_bundle_entry *e = &m->entries[i];
        struct cbor_pair *pp = cbor_map_handle(items[i]);
        size_t np = cbor_map_size(items[i]);
        int seen = 0;
        for (size_t k = 0; k < np; k++) {
            const cbor_item_t *v = pp[k].value;
            if (key_is(pp[k].key, "seq")) {
                if (!cbor_isa_uint(v))
                    return ac_errf(err, errlen, "records[%zu].seq is invalid", i);
                e->seq = cbor_get_int(v);
                seen |= 1;
            } else if (key_is(pp[k].key, "record")) {
                if (get_blob(v, 0, &e->record) != 0 || e->record.len == 0)
                    return ac_errf(err, errlen, "records[%zu].record is not bytes", i);
                seen |= 2;
            } else if (key_is(pp[k].key, "proof")) {
                if (!cbor_isa_array(v) || cbor_array_size(v) > AC_MERKLE_MAX_PROOF)
                    return ac_errf(err, errlen, "records[%zu].proof is invalid", i);
                cbor_item_t **h = cbor_array_handle(v);
                e->proof = (const uint8_t(*)[AC_EV_HASH_LEN])m->proofs[used];
                e->proof_len = cbor_array_size(v);
                for (size_t j = 0; j < e->proof_len; j++) {
                    struct ac_blob hb;
                    if (get_blob(h[j], 0, &hb) != 0 || hb.len != AC_EV_HASH_LEN)
                        return ac_errf(err, errlen, "records[%zu].proof[%zu] is not 32 bytes", i,
                                       j);
                    memcpy(m->proofs[used++], hb.p, AC_EV_HASH_LEN);
                }
                seen |= 4;
            } else {
                return ac_errf(err, errlen, "records[%zu]: unknown member", i);
            }
        }
        if (seen != 7) return ac_errf(err, errlen, "records[%zu] needs seq, record and proof", i);
        if (i > 0 && e->seq <= m->entries[i - 1].seq)
            return ac_errf(err, errlen, "records are not in ascending seq order");
    }
    b->entries = m->entries;
    b->nentries = n;
    return 0;
}

static int decode_blobs(const cbor_item_t *arr, int text, size_t max, struct ac_blob **out,
                        size_t *n, const char *name, char *err, size_t errlen)
{
    if (!cbor_isa_array(arr) || cbor_array_size(arr) > max)
        return ac_errf(err, errlen, "%s is not an array of at most %zu items", name, max);
    *n = cbor_array_size(arr);
    *out = calloc(*n ? *n : 1, sizeof **out);
    if (*out == NULL) return ac_errf(err, errlen, "out of memory");
    cbor_item_t **items = cbor_array_handle(arr);
    for (size_t i = 0; i < *n; i++)
        if (get_blob(items[i], text, &(*out)[i]) != 0 || (*out)[i].len == 0)
            return ac_errf(err, errlen, "%s[%zu] is not %s", name, i, text ? "text" : "bytes");
    return 0;
}

int ac_bundle_decode(const uint8_t *buf, size_t len, struct ac_bundle *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (buf == NULL || len == 0 || len > AC_BUNDLE_MAX)
        return ac_errf(err, errlen, "bundle is empty or too large");
    struct bundle_mem *m = calloc(1, sizeof *m);
    if (m == NULL) return ac_errf(err, errlen, "out of memory");
    b->mem_ = m;
    enum ac_dcbor_status st = ac_dcbor_decode(buf, len, NULL, 0, &m->root);
    int rc = 0;
    if (st != AC_DCBOR_OK) {
        rc = ac_errf(err, errlen, "not deterministic cbor: %s", ac_dcbor_strerror(st));
        goto out;
    }
    if (!cbor_isa_map(m->root)) {
        rc = ac_errf(err, errlen, "not a map");
        goto out;
    }
    struct cbor_pair *pp = cbor_map_handle(m->root);
    size_t np = cbor_map_size(m->root);
    int seen = 0;
    for (size_t k = 0; rc == 0 && k < np; k++) {
        const cbor_item_t *key = pp[k].key, *v = pp[k].value;
        struct ac_blob t;
        if (key_is(key, "v")) {
            if (!cbor_isa_uint(v) || cbor_get_int(v) != AC_BUNDLE_VERSION)
                rc = ac_errf(err, errlen, "unknown bundle version");
            seen |= 1;
        } else if (key_is(key, "payment")) {
            if (get_blob(v, 1, &t) != 0 || t.len > AC_ID_MAX) {
                rc = ac_errf(err, errlen, "payment is invalid");
            } else if ((m->payment = malloc(t.len + 1)) == NULL) {
                rc = ac_errf(err, errlen, "out of memory");
            } else {
                memcpy(m->payment, t.p, t.len);
                m->payment[t.len] = '\0';
                if (!ac_id_valid(m->payment)) rc = ac_errf(err, errlen, "payment is invalid");
                b->payment = m->payment;
            }
            seen |= 2;
        } else if (key_is(key, "records")) {
            rc = decode_entries(v, b, m, err, errlen);
            seen |= 4;
        } else if (key_is(key, "documents")) {
            rc = decode_blobs(v, 0, AC_BUNDLE_MAX_DOCS, &m->documents, &b->ndocuments, "documents",
                              err, errlen);
            b->documents = m->documents;
            seen |= 8;
        } else if (key_is(key, "user_keys")) {
            rc = decode_blobs(v, 1, AC_BUNDLE_MAX_KEYS, &m->user_keys, &b->nuser_keys, "user_keys",
                              err, errlen);
            b->user_keys = m->user_keys;
            seen |= 16;
        } else if (key_is(key, "checkpoint")) {
            if (get_blob(v, 1, &b->checkpoint) != 0)
                rc = ac_errf(err, errlen, "checkpoint is not text");
            seen |= 32;
        } else if (key_is(key, "log_key")) {
            if (get_blob(v, 1, &b->log_key) != 0) rc = ac_errf(err, errlen, "log_key is not text");
            seen |= 64;
        } else if (key_is(key, "jwks")) {
            if (get_blob(v, 1, &b->jwks) != 0) rc = ac_errf(err, errlen, "jwks is not text");
        } else {
            rc = ac_errf(err, errlen, "unknown member");
        }
    }
    if (rc == 0 && seen != 127)
        rc = ac_errf(err, errlen,
                     "bundle needs v, payment, records, documents, user_keys, "
                     "checkpoint and log_key");
out:
    if (rc != 0) ac_bundle_clear(b);
    return rc;
}

/* ==== verification helpers =================================================================== */

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "2024-05-01T10:00:00.123456Z" */
static void fmt_time_us(int64_t us, char out[40])
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL) {
        snprintf(out, 40, "%" PRId64 "us", us);
        return;
    }
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06dZ", (int)(us % 1000000));
}

/* Append at most max bytes of text, replacing control characters, and "..." when cut. */
static void add_clipped(struct ac_buf *a, const char *s, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++) {
        char c = s[i];
        ac_buf_add(a, ((unsigned char)c < 0x20 || c == 0x7f) ? "?" : &c, 1);
    }
    if (n > max) ac_buf_adds(a, "...");
}

struct doc {
    struct ac_jws jws;
    int parsed;
    uint8_t hash[AC_EV_HASH_LEN];
    int user_key;     /* index of the user key that verifies it, -1 none */
    const char *role; /* "binding", "mandate", ... as first referenced; NULL when unreferenced */
};

struct vstate {
    const struct ac_bundle *b;
    const struct ac_bundle_verify_opts *opts;
    struct ac_bundle_result *res;
    EVP_PKEY **ukeys;
    char (*ukid)[AC_JWK_THUMBPRINT_SIZE];
    struct doc *docs;
    struct ac_ev_checkpoint cp;
    struct ac_buf recs; /* the records part of the account */
};

static int vfail(struct vstate *s, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int vfail(struct vstate *s, const char *item, const char *fmt, ...)
{
    snprintf(s->res->item, sizeof s->res->item, "%s", item);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->why, sizeof s->res->why, fmt, ap);
    va_end(ap);
    return -1;
}

EVP_PKEY *ac_bundle_agent_key_default(void *ctx, const json_t *payload, const char **why)
{
    (void)ctx;
    const json_t *jwk = json_object_get(payload, "agent_jwk");
    if (jwk == NULL) jwk = json_object_get(json_object_get(payload, "cnf"), "jwk");
    if (!json_is_object(jwk)) {
        *why = "the binding names no agent key (agent_jwk or cnf.jwk)";
        return NULL;
    }
    EVP_PKEY *k = NULL;
    const char *detail = NULL;
    if (ac_jwk_import_public(jwk, &k, &detail) != AC_EC_OK) {
        *why = "the binding's agent key is not a valid public jwk";
        return NULL;
    }
    return k;
}

/* The document with this hash, or -1. */
static int find_doc(const struct vstate *s, const uint8_t hash[AC_EV_HASH_LEN])
{
    for (size_t i = 0; i < s->b->ndocuments; i++)
        if (memcmp(s->docs[i].hash, hash, AC_EV_HASH_LEN) == 0) return (int)i;
    return -1;
}

/* Check that a record's docref has its document in the bundle and, when by_user, that a bundled
 * user key (the one named by the docref's kid, when present) verifies it. Returns the document
 * index, or -1 after vfail. */
static int check_docref(struct vstate *s, const char *item, const struct ac_ev_docref *d,
                        const char *role, int by_user)
{
    int i = find_doc(s, d->hash);
    char h[2 * AC_EV_HASH_LEN + 1];
    hex(d->hash, AC_EV_HASH_LEN, h);
    if (i < 0) return vfail(s, item, "its %s document (sha256 %s) is not in the bundle", role, h);
    struct doc *doc = &s->docs[i];
    if (doc->role == NULL) doc->role = role;
    if (!by_user) return i;
    if (!doc->parsed)
        return vfail(s, item, "its %s document (sha256 %s) is not a compact jws", role, h);
    if (doc->user_key < 0)
        return vfail(s, item, "its %s document (sha256 %s) is not signed by any bundled user key",
                     role, h);
    if (d->kid != NULL && strcmp(d->kid, s->ukid[doc->user_key]) != 0)
        return vfail(s, item, "its %s document is signed by user key %s, the record names %s", role,
                     s->ukid[doc->user_key], d->kid);
    return i;
}

static void account_amount(struct ac_buf *a, int64_t v, const char *asset, unsigned scale)
{
    char num[AC_AMOUNT_STR_MAX];
    ac_buf_printf(a, "%s %s", ac_amount_format(v, scale, num), asset);
}

/* The request part of a record: verify and describe. */
static int check_request(struct vstate *s, const char *item, const struct ac_ev_record *r,
                         int binding_doc)
{
    const struct ac_ev_request *q = &r->body.request;
    struct ac_buf *a = &s->recs;
    size_t mlen = 0, tlen = 0, plen = 0;
    const char *method = ac_sigbase_line(q->base, q->base_len, "\"@method\"", &mlen);
    const char *target = ac_sigbase_line(q->base, q->base_len, "\"@target-uri\"", &tlen);
    if (target == NULL) target = ac_sigbase_line(q->base, q->base_len, "\"@path\"", &tlen);
    const char *params = ac_sigbase_line(q->base, q->base_len, "\"@signature-params\"", &plen);
    ac_buf_adds(a, "      request: ");
    add_clipped(a, method ? method : "?", method ? mlen : 1, 16);
    ac_buf_adds(a, " ");
    add_clipped(a, target ? target : "?", target ? tlen : 1, 200);
    ac_buf_printf(a, ", keyid %s\n", q->keyid);
    if (params == NULL) return vfail(s, item, "its signature base has no @signature-params line");

    /* the signature parameters, parsed by the same RFC 9421 code the server verifies with */
    struct ac_httpsig hs;
    enum ac_ec ec = ac_sigbase_parse(&hs, params, plen, q->sig, q->sig_len);
    int rc = 0;
    if (ec != AC_EC_OK) {
        rc = vfail(s, item, "its @signature-params do not parse (%s)", ac_ec_code(ec));
        goto out;
    }
    if (hs.keyid == NULL || strcmp(hs.keyid, q->keyid) != 0) {
        rc = vfail(s, item, "the keyid in its signature base is not the recorded keyid %s",
                   q->keyid);
        goto out;
    }
    if (hs.has_created) {
        char t[40];
        fmt_time_us(hs.created * 1000000, t);
        ac_buf_printf(a, "      signed at %s", t);
        if (hs.nonce) ac_buf_printf(a, ", nonce %s", hs.nonce);
        ac_buf_adds(a, "\n");
    }
    /* the request body against the base's content-digest */
    if (q->has_body) {
        size_t dlen = 0;
        const char *dg = ac_sigbase_line(q->base, q->base_len, "\"content-digest\"", &dlen);
        if (dg == NULL) {
            rc = vfail(s, item,
                       "it keeps a request body but the signature base covers no "
                       "content-digest");
            goto out;
        }
        ec = ac_digest_verify(dg, dlen, q->body, q->body_len);
        if (ec != AC_EC_OK) {
            rc = vfail(s, item, "its request body does not match the signed content-digest (%s)",
                       ac_ec_code(ec));
            goto out;
        }
        ac_buf_adds(a, "      body (matches the signed content-digest): ");
        add_clipped(a, (const char *)q->body, q->body_len, 400);
        ac_buf_adds(a, "\n");
    }
    /* the signature, with the agent key the user bound in the binding */
    if (binding_doc < 0) {
        ac_buf_adds(a, "      signature NOT re-verified: the record names no binding (no agent "
                       "key to check it with)\n");
        goto out;
    }
    const char *why = "no agent key";
    ac_bundle_agent_key_fn fn =
        s->opts && s->opts->agent_key ? s->opts->agent_key : ac_bundle_agent_key_default;
    EVP_PKEY *ak =
        fn(s->opts ? s->opts->agent_key_ctx : NULL, s->docs[binding_doc].jws.payload_json, &why);
    if (ak == NULL) {
        rc = vfail(s, item, "%s", why);
        goto out;
    }
    hs.base = malloc(q->base_len + 1);
    if (hs.base == NULL) {
        EVP_PKEY_free(ak);
        rc = vfail(s, item, "out of memory");
        goto out;
    }
    memcpy(hs.base, q->base, q->base_len);
    hs.base[q->base_len] = '\0';
    hs.base_len = q->base_len;
    char tp[AC_JWK_THUMBPRINT_SIZE];
    ac_jwk_thumbprint(ak, tp);
    ec = ac_httpsig_verify(&hs, ak);
    EVP_PKEY_free(ak);
    if (ec == AC_EC_OK) {
        ac_buf_printf(a, "      signature VERIFIED with agent key %s from binding %s\n", tp,
                      r->body.binding.id ? r->body.binding.id : "(unnamed)");
    } else if (r->kind == AC_EV_PAYMENT_DENY) {
        ac_buf_printf(a,
                      "      signature does not verify with agent key %s (%s) -- consistent "
                      "with a denial\n",
                      tp, ac_ec_code(ec));
    } else {
        rc = vfail(s, item,
                   "its request signature does not verify with agent key %s of the "
                   "binding (%s)",
                   tp, ac_ec_code(ec));
    }
out:
    ac_httpsig_free(&hs);
    return rc;
}

static void describe_body(struct ac_buf *a, const struct ac_ev_record *r)
{
    const struct ac_ev_body *b = &r->body;
    if (b->user || b->agent || b->payee || b->amount.present) {
        ac_buf_adds(a, "      ");
        if (b->user) ac_buf_printf(a, "user %s", b->user);
        if (b->agent) ac_buf_printf(a, "%sagent %s", b->user ? ", " : "", b->agent);
        if (b->payee) ac_buf_printf(a, " -> payee %s", b->payee);
        if (b->amount.present) {
            ac_buf_adds(a, ": ");
            account_amount(a, b->amount.value, b->amount.asset, b->amount.scale);
        }
        ac_buf_adds(a, "\n");
    }
    if (b->binding.present || b->mandate.present) {
        ac_buf_adds(a, "      under");
        if (b->binding.present)
            ac_buf_printf(a, " binding %s", b->binding.id ? b->binding.id : "(unnamed)");
        if (b->mandate.present)
            ac_buf_printf(a, "%s mandate %s", b->binding.present ? "," : "",
                          b->mandate.id ? b->mandate.id : "(unnamed)");
        ac_buf_adds(a, "\n");
    }
    if (b->ref) ac_buf_printf(a, "      ref %s\n", b->ref);
    if (b->decision != AC_EV_DECISION_NONE || b->nreasons > 0) {
        ac_buf_printf(a, "      decision %s", b->decision ? ac_ev_decision_name(b->decision) : "-");
        for (size_t i = 0; i < b->nreasons; i++)
            ac_buf_printf(a, "%s%s", i == 0 ? " (reasons: " : ", ", b->reasons[i]);
        ac_buf_adds(a, b->nreasons ? ")\n" : "\n");
    }
    for (size_t i = 0; i < b->ntransfers; i++) {
        const struct ac_ev_transfer *t = &b->transfers[i];
        ac_buf_printf(a, "      transfer %s: %s -> %s ", t->id, t->debit, t->credit);
        account_amount(a, t->amount, t->asset, t->scale);
        static const char *const fl[] = {"linked",       "pending",         "post_pending",
                                         "void_pending", "balancing_debit", "balancing_credit"};
        for (int k = 0; k < 6; k++)
            if (t->flags & (1u << k)) ac_buf_printf(a, " [%s]", fl[k]);
        if (t->pending_id) ac_buf_printf(a, " of %s", t->pending_id);
        ac_buf_adds(a, "\n");
    }
}

static int check_record(struct vstate *s, size_t idx)
{
    const struct ac_bundle_entry *e = &s->b->entries[idx];
    char item[64];
    snprintf(item, sizeof item, "record #%" PRIu64, e->seq);
    struct ac_ev_record r;
    char err[256];
    if (ac_ev_record_decode(e->record.p, e->record.len, &r, err, sizeof err) != 0)
        return vfail(s, item, "not a valid record: %s", err);
    int rc = 0;
    if (r.seq != e->seq) {
        rc = vfail(s, item, "the record says seq %" PRIu64, r.seq);
        goto out;
    }
    const char *about = r.body.payment ? r.body.payment : r.body.tab;
    if (about == NULL || strcmp(about, s->b->payment) != 0) {
        rc = vfail(s, item, "it is not about %s", s->b->payment);
        goto out;
    }
    uint8_t leaf[AC_EV_HASH_LEN];
    if (ac_ev_leaf_hash(e->record.p, e->record.len, leaf) != 0) {
        rc = vfail(s, item, "hashing failed");
        goto out;
    }
    if (e->seq >= s->cp.size) {
        rc = vfail(s, item, "it lies beyond the checkpoint (tree size %" PRIu64 ")", s->cp.size);
        goto out;
    }
    if (ac_merkle_verify_inclusion(e->seq, s->cp.size, leaf, e->proof, e->proof_len, s->cp.root) !=
        1) {
        rc = vfail(s, item,
                   "its inclusion proof does not verify against the checkpoint root "
                   "(tree size %" PRIu64 ")",
                   s->cp.size);
        goto out;
    }
    char t[40], lh[2 * AC_EV_HASH_LEN + 1];
    fmt_time_us(r.time_us, t);
    hex(leaf, AC_EV_HASH_LEN, lh);
    struct ac_buf *a = &s->recs;
    ac_buf_printf(a, "  #%" PRIu64 "  %s  %s\n", r.seq, t, ac_ev_kind_name(r.kind));
    ac_buf_printf(a, "      leaf %s, included in the checkpoint\n", lh);
    describe_body(a, &r);

    const struct ac_ev_body *b = &r.body;
    int bdoc = -1;
    if (b->binding.present && (bdoc = check_docref(s, item, &b->binding, "binding", 1)) < 0) {
        rc = -1;
        goto out;
    }
    if ((b->mandate.present && check_docref(s, item, &b->mandate, "mandate", 1) < 0) ||
        (b->revocation.present && check_docref(s, item, &b->revocation, "revocation", 1) < 0) ||
        (b->report.present && check_docref(s, item, &b->report, "report", 0) < 0)) {
        rc = -1;
        goto out;
    }
    if (b->confirmation.present) {
        int c = check_docref(s, item, &b->confirmation, "confirmation", 1);
        if (c < 0) {
            rc = -1;
            goto out;
        }
        ac_buf_printf(a, "      the user %s with user key %s (document sha256 ",
                      r.kind == AC_EV_PAYMENT_DECLINE ? "DECLINED" : "CONFIRMED",
                      s->ukid[s->docs[c].user_key]);
        char h[2 * AC_EV_HASH_LEN + 1];
        hex(b->confirmation.hash, AC_EV_HASH_LEN, h);
        ac_buf_printf(a, "%s)\n", h);
    }
    if (b->voucher.present) {
        int vd = check_docref(s, item, &b->voucher, "voucher", 0);
        if (vd < 0) {
            rc = -1;
            goto out;
        }
        if (bdoc < 0) {
            ac_buf_adds(a, "      voucher NOT re-verified: the record names no binding\n");
        } else {
            const char *why = "no agent key";
            ac_bundle_agent_key_fn fn =
                s->opts && s->opts->agent_key ? s->opts->agent_key : ac_bundle_agent_key_default;
            EVP_PKEY *ak =
                fn(s->opts ? s->opts->agent_key_ctx : NULL, s->docs[bdoc].jws.payload_json, &why);
            if (ak == NULL) {
                rc = vfail(s, item, "%s", why);
                goto out;
            }
            enum ac_ec ec =
                s->docs[vd].parsed ? ac_jws_verify(&s->docs[vd].jws, ak) : AC_EC_JWS_MALFORMED;
            EVP_PKEY_free(ak);
            if (ec != AC_EC_OK) {
                rc = vfail(s, item, "its voucher is not signed by the binding's agent key");
                goto out;
            }
            ac_buf_adds(a, "      voucher VERIFIED with the binding's agent key\n");
        }
    }
    if (b->request.present) rc = check_request(s, item, &r, bdoc);
out:
    ac_ev_record_clear(&r);
    return rc;
}

/* 0 when the bundle's JWKS (a JSON object {"keys":[...]}) holds a key whose note verifier key
 * under origin is the bundle's log key; its kid (thumbprint) goes to kid. */
static int jwks_has_log_key(const struct ac_bundle *b, const char *origin,
                            char kid[AC_JWK_THUMBPRINT_SIZE])
{
    json_t *j = json_loadb((const char *)b->jwks.p, b->jwks.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *keys = json_object_get(j, "keys");
    int rc = -1;
    for (size_t i = 0; rc != 0 && json_is_array(keys) && i < json_array_size(keys); i++) {
        EVP_PKEY *k = NULL;
        const char *detail;
        const json_t *jk = json_array_get(keys, i);
        if (ac_jwk_import_public(jk, &k, &detail) != AC_EC_OK) continue;
        char *vk = ac_ev_checkpoint_vkey(origin, k);
        const json_t *jkid = json_object_get(jk, "kid");
        /* a published kid is the key's thumbprint (keys/keyring.h); anything else is not ours */
        if (vk != NULL && strlen(vk) == b->log_key.len &&
            memcmp(vk, b->log_key.p, b->log_key.len) == 0 && ac_jwk_thumbprint(k, kid) == 0 &&
            (jkid == NULL || (json_is_string(jkid) && strcmp(json_string_value(jkid), kid) == 0)))
            rc = 0;
        free(vk);
        EVP_PKEY_free(k);
    }
    json_decref(j);
    return rc;
}

/* ==== verification =========================================================================== */

int ac_bundle_verify(const uint8_t *buf, size_t len, const struct ac_bundle_verify_opts *opts,
                     struct ac_bundle_result *res)
{
    memset(res, 0, sizeof *res);
    struct ac_bundle b;
    struct vstate s;
    memset(&s, 0, sizeof s);
    s.b = &b;
    s.opts = opts;
    s.res = res;
    struct ac_buf *a = &res->account;
    char err[256];
    if (ac_bundle_decode(buf, len, &b, err, sizeof err) != 0) return vfail(&s, "bundle", "%s", err);
    int rc = -1;
    ac_buf_printf(a, "agentclear dispute bundle for %s\n", b.payment);

    /* the log key and the checkpoint */
    const char *lk = (const char *)b.log_key.p;
    size_t lklen = b.log_key.len;
    if (opts != NULL && opts->log_key != NULL) {
        if (strlen(opts->log_key) != lklen || memcmp(opts->log_key, lk, lklen) != 0) {
            vfail(&s, "log key", "the bundle's log key is not the pinned key");
            goto out;
        }
        res->log_key_pinned = 1;
    }
    if (ac_ev_checkpoint_verify((const char *)b.checkpoint.p, b.checkpoint.len, lk, lklen,
                                opts ? opts->origin : NULL, &s.cp, err, sizeof err) != 0) {
        vfail(&s, "checkpoint", "%s", err);
        goto out;
    }
    char root64[64];
    ac_b64_encode(s.cp.root, AC_EV_HASH_LEN, root64, 0);
    ac_buf_adds(a, "log key:    ");
    add_clipped(a, lk, lklen, 200);
    ac_buf_adds(a, res->log_key_pinned ? " (pinned by the auditor)\n"
                                       : " (taken from the bundle: compare it with the "
                                         "operator's published key, or pass --log-key)\n");
    ac_buf_printf(a, "checkpoint: %s, tree size %" PRIu64 ", root %s, signature VERIFIED\n",
                  s.cp.origin, s.cp.size, root64);

    /* the server's JWKS, when bundled, must publish the log key */
    if (b.jwks.len > 0) {
        char kid[AC_JWK_THUMBPRINT_SIZE] = "";
        if (jwks_has_log_key(&b, s.cp.origin, kid) != 0) {
            vfail(&s, "jwks", "the bundled jwks does not publish the checkpoint key");
            goto out;
        }
        ac_buf_printf(a, "jwks:       publishes the checkpoint key as kid %s\n", kid);
    }

    /* user keys */
    s.ukeys = calloc(b.nuser_keys ? b.nuser_keys : 1, sizeof *s.ukeys);
    s.ukid = calloc(b.nuser_keys ? b.nuser_keys : 1, sizeof *s.ukid);
    s.docs = calloc(b.ndocuments ? b.ndocuments : 1, sizeof *s.docs);
    if (s.ukeys == NULL || s.ukid == NULL || s.docs == NULL) {
        vfail(&s, "bundle", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b.nuser_keys; i++) {
        const char *detail = NULL;
        char item[32];
        snprintf(item, sizeof item, "user key #%zu", i);
        if (ac_jwk_import_public_text((const char *)b.user_keys[i].p, b.user_keys[i].len,
                                      &s.ukeys[i], &detail) != AC_EC_OK ||
            ac_jwk_thumbprint(s.ukeys[i], s.ukid[i]) != 0) {
            vfail(&s, item, "not a valid public jwk (%s)", detail ? detail : "unsupported key");
            goto out;
        }
    }
    /* documents: hash each; a compact JWS is checked against the user keys once, here */
    for (size_t i = 0; i < b.ndocuments; i++) {
        struct doc *d = &s.docs[i];
        d->user_key = -1;
        if (ac_ev_doc_hash(b.documents[i].p, b.documents[i].len, d->hash) != 0) {
            vfail(&s, "bundle", "hashing failed");
            goto out;
        }
        const char *detail;
        if (ac_jws_parse((const char *)b.documents[i].p, b.documents[i].len, &d->jws, &detail) !=
            AC_EC_OK)
            continue;
        d->parsed = 1;
        for (size_t k = 0; k < b.nuser_keys && d->user_key < 0; k++)
            if (ac_jws_verify(&d->jws, s.ukeys[k]) == AC_EC_OK) d->user_key = (int)k;
    }

    /* records */
    for (size_t i = 0; i < b.nentries; i++) {
        if (check_record(&s, i) != 0) goto out;
        res->nrecords++;
    }

    /* the documents, now that their roles are known */
    ac_buf_printf(a, "user keys:  %zu\n", b.nuser_keys);
    for (size_t i = 0; i < b.nuser_keys; i++)
        ac_buf_printf(a, "  user key %s\n", s.ukid[i]);
    ac_buf_printf(a, "documents:  %zu\n", b.ndocuments);
    for (size_t i = 0; i < b.ndocuments; i++) {
        struct doc *d = &s.docs[i];
        char h[2 * AC_EV_HASH_LEN + 1];
        hex(d->hash, AC_EV_HASH_LEN, h);
        ac_buf_printf(a, "  %s sha256 %s", d->role ? d->role : "unreferenced document", h);
        if (d->user_key >= 0)
            ac_buf_printf(a, ", signed by user key %s (VERIFIED)", s.ukid[d->user_key]);
        ac_buf_adds(a, "\n");
        if (d->parsed && d->jws.payload_json != NULL) {
            char *txt = json_dumps(d->jws.payload_json, JSON_COMPACT | JSON_SORT_KEYS);
            if (txt != NULL) {
                ac_buf_adds(a, "      ");
                add_clipped(a, txt, strlen(txt), 600);
                ac_buf_adds(a, "\n");
            }
            free(txt);
        }
        if (d->role != NULL) res->ndocuments++;
    }
    ac_buf_printf(a, "records:    %zu, each proven included in the checkpoint\n", b.nentries);
    ac_buf_add(a, s.recs.p ? s.recs.p : "", s.recs.len);
    ac_buf_printf(a, "result: VERIFIED (%zu records, %zu documents)\n", res->nrecords,
                  res->ndocuments);
    rc = 0;
out:
    if (rc != 0 && s.recs.len > 0) {
        ac_buf_adds(a, "records checked before the failure:\n");
        ac_buf_add(a, s.recs.p, s.recs.len);
    }
    for (size_t i = 0; s.ukeys != NULL && i < b.nuser_keys; i++)
        EVP_PKEY_free(s.ukeys[i]);
    for (size_t i = 0; s.docs != NULL && i < b.ndocuments; i++)
        ac_jws_clear(&s.docs[i].jws);
    free(s.ukeys);
    free(s.ukid);
    free(s.docs);
    ac_buf_free(&s.recs);
    ac_ev_checkpoint_clear(&s.cp);
    ac_bundle_clear(&b);
    if (a->oom && rc == 0) {
        vfail(&s, "bundle", "out of memory");
        rc = -1;
    }
    return rc;
}

void ac_bundle_result_free(struct ac_bundle_result *res)
{
    if (res == NULL) return;
    ac_buf_free(&res->account);
    memset(res, 0, sizeof *res);
}
