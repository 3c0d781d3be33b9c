/* Replay of a whole evidence log. See replay.h and docs/evidence.md. */
#include "protocol/replay.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/dcbor.h"

static int rfail(struct ac_replay *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rfail(struct ac_replay *rp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rp->why, sizeof rp->why, fmt, ap);
    va_end(ap);
    rp->failed = 1;
    return -1;
}

int ac_replay_init(struct ac_replay *rp, const char *log_key, const char *origin,
                   const struct ac_replay_hooks *hooks)
{
    memset(rp, 0, sizeof *rp);
    ac_merkle_frontier_init(&rp->tree);
    if (hooks) rp->hooks = *hooks;
    rp->log_key = log_key ? strdup(log_key) : NULL;
    rp->origin = origin ? strdup(origin) : NULL;
    if ((log_key && !rp->log_key) || (origin && !rp->origin)) {
        ac_replay_free(rp);
        return -1;
    }
    return 0;
}

void ac_replay_free(struct ac_replay *rp)
{
    if (rp == NULL) return;
    free(rp->log_key);
    free(rp->origin);
    rp->log_key = rp->origin = NULL;
}

int ac_replay_record(struct ac_replay *rp, const uint8_t *buf, size_t len)
{
    if (rp->failed) return -1;
    snprintf(rp->item, sizeof rp->item, "record #%" PRIu64, rp->records);
    struct ac_ev_record r;
    char err[256];
    if (ac_ev_record_decode(buf, len, &r, err, sizeof err) != 0)
        return rfail(rp, "not a valid record: %s", err);
    int rc = 0;
    uint8_t leaf[AC_EV_HASH_LEN];
    if (r.seq != rp->records) {
        rc = rfail(rp, "the record says seq %" PRIu64 " (records missing, repeated or reordered)",
                   r.seq);
    } else if (memcmp(r.prev, rp->prev, AC_EV_HASH_LEN) != 0) {
        rc = rfail(rp, "prev is not the hash of record #%" PRIu64 " (the chain is broken)",
                   rp->records - 1);
    } else if (ac_ev_leaf_hash(buf, len, leaf) != 0 || ac_ev_record_hash(buf, len, rp->prev) != 0 ||
               ac_merkle_frontier_append(&rp->tree, leaf) != 0) {
        rc = rfail(rp, "hashing failed");
    } else if (rp->hooks.on_record != NULL &&
               rp->hooks.on_record(rp->hooks.ctx, &r, buf, len, err, sizeof err) != 0) {
        rc = rfail(rp, "%s", err);
    }
    ac_ev_record_clear(&r);
    if (rc != 0) return -1;
    rp->records++;
    if (rp->hooks.progress && rp->hooks.progress_every &&
        rp->records % rp->hooks.progress_every == 0)
        rp->hooks.progress(rp->hooks.ctx, rp->records, rp->checkpoints);
    return 0;
}

int ac_replay_checkpoint(struct ac_replay *rp, const char *note, size_t len)
{
    if (rp->failed) return -1;
    snprintf(rp->item, sizeof rp->item, "checkpoint after record #%" PRIu64, rp->records);
    if (rp->log_key == NULL) return rfail(rp, "no log key");
    struct ac_ev_checkpoint cp;
    char err[256];
    if (ac_ev_checkpoint_verify(note, len, rp->log_key, strlen(rp->log_key), rp->origin, &cp, err,
                                sizeof err) != 0)
        return rfail(rp, "%s", err);
    snprintf(rp->item, sizeof rp->item, "checkpoint at tree size %" PRIu64, cp.size);
    uint8_t root[AC_EV_HASH_LEN];
    int rc = 0;
    if (cp.size < rp->last_cp_size) {
        rc = rfail(rp, "the tree shrank (previous checkpoint: %" PRIu64 ")", rp->last_cp_size);
    } else if (cp.size != rp->records) {
        rc = rfail(rp, "it comes after %" PRIu64 " records", rp->records);
    } else if (ac_merkle_frontier_root(&rp->tree, root) != 0) {
        rc = rfail(rp, "hashing failed");
    } else if (memcmp(root, cp.root, AC_EV_HASH_LEN) != 0) {
        rc = rfail(rp, "its root is not the root of the records before it");
    }
    ac_ev_checkpoint_clear(&cp);
    if (rc != 0) return -1;
    rp->last_cp_size = rp->records;
    rp->checkpoints++;
    return 0;
}

int ac_replay_finish(struct ac_replay *rp)
{
    if (rp->failed) return -1;
    if (rp->hooks.progress) rp->hooks.progress(rp->hooks.ctx, rp->records, rp->checkpoints);
    snprintf(rp->item, sizeof rp->item, "end of export");
    if (rp->checkpoints == 0) return rfail(rp, "no checkpoint");
    if (rp->last_cp_size != rp->records)
        return rfail(rp, "%" PRIu64 " records after the last checkpoint are not sealed",
                     rp->records - rp->last_cp_size);
    rp->item[0] = '\0';
    return 0;
}

/* ==== the export file ======================================================================== */

/* Length of the one CBOR item at p[0..n) (definite lengths only), or 0 when malformed or
 * truncated. Depth is bounded: export items nest at most once. */
static size_t item_len(const uint8_t *p, size_t n, int depth)
{
    if (n == 0 || depth > 4) return 0;
    uint8_t ib = p[0], mt = ib >> 5, ai = ib & 0x1f;
    size_t hl = 1;
    uint64_t v = ai;
    if (ai >= 24) {
        size_t k = ai == 24 ? 1 : ai == 25 ? 2 : ai == 26 ? 4 : ai == 27 ? 8 : 0;
        if (k == 0 || n < 1 + k) return 0;
        v = 0;
        for (size_t i = 0; i < k; i++)
            v = v << 8 | p[1 + i];
        hl += k;
    }
    switch (mt) {
    case 0:
    case 1:
    case 7:
        return hl;
    case 2:
    case 3:
        return v <= n - hl ? hl + (size_t)v : 0;
    case 4:
    case 5: {
        if (v > n) return 0; /* each element takes at least one byte */
        uint64_t items = mt == 5 ? 2 * v : v;
        size_t off = hl;
        for (uint64_t i = 0; i < items; i++) {
            size_t l = item_len(p + off, n - off, depth + 1);
            if (l == 0) return 0;
            off += l;
        }
        return off;
    }
    case 6: {
        size_t l = item_len(p + hl, n - hl, depth + 1);
        return l ? hl + l : 0;
    }
    }
    return 0;
}

/* The value of a one-member map {key: string}; 0 or -1. */
static int one_member(const cbor_item_t *it, const char **key, size_t *klen, const cbor_item_t **v)
{
    if (!cbor_isa_map(it) || cbor_map_size(it) < 1) return -1;
    struct cbor_pair *pp = cbor_map_handle(it);
    if (!cbor_isa_string(pp[0].key)) return -1;
    *key = (const char *)cbor_string_handle(pp[0].key);
    *klen = cbor_string_length(pp[0].key);
    *v = pp[0].value;
    return 0;
}

static int key_eq(const char *k, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(k, want, n) == 0;
}

static int key_is_text(const cbor_item_t *k, const char *want)
{
    return cbor_isa_string(k) &&
           key_eq((const char *)cbor_string_handle(k), cbor_string_length(k), want);
}

static char *dup_text(const cbor_item_t *it)
{
    if (!cbor_isa_string(it)) return NULL;
    size_t n = cbor_string_length(it);
    char *s = malloc(n + 1);
    if (s == NULL) return NULL;
    memcpy(s, cbor_string_handle(it), n);
    s[n] = '\0';
    return memchr(s, 0, n) ? (free(s), NULL) : s;
}

int ac_replay_export(struct ac_replay *rp, const uint8_t *buf, size_t len, const char *log_key,
                     const char *origin, const struct ac_replay_hooks *hooks)
{
    if (ac_replay_init(rp, log_key, origin, hooks) != 0) {
        memset(rp, 0, sizeof *rp);
        snprintf(rp->item, sizeof rp->item, "export");
        return rfail(rp, "out of memory");
    }
    size_t off = 0;
    int header = 0;
    while (off < len) {
        size_t l = item_len(buf + off, len - off, 0);
        cbor_item_t *it = NULL;
        enum ac_dcbor_status st =
            l ? ac_dcbor_decode(buf + off, l, NULL, 0, &it) : AC_DCBOR_EMALFORMED;
        if (st != AC_DCBOR_OK) {
            snprintf(rp->item, sizeof rp->item, "export at byte %zu", off);
            return rfail(rp, "not a deterministic cbor item: %s", ac_dcbor_strerror(st));
        }
        const char *key;
        size_t klen;
        const cbor_item_t *v;
        int rc = 0;
        if (one_member(it, &key, &klen, &v) != 0) {
            snprintf(rp->item, sizeof rp->item, "export at byte %zu", off);
            rc = rfail(rp, "not an export item");
        } else if (!header) {
            /* {"export": 1, "origin": ..., "log_key": ...}: keys sort as export, origin, log_key */
            struct cbor_pair *pp = cbor_map_handle(it);
            snprintf(rp->item, sizeof rp->item, "export header");
            if (!key_eq(key, klen, "export") || cbor_map_size(it) != 3 ||
                !cbor_isa_uint(pp[0].value) || cbor_get_int(pp[0].value) != 1) {
                rc = rfail(rp, "the export does not start with a version 1 header");
            } else {
                char *o = NULL, *k = NULL;
                for (size_t i = 1; i < 3; i++) {
                    const char *kk = (const char *)cbor_string_handle(pp[i].key);
                    size_t kn = cbor_isa_string(pp[i].key) ? cbor_string_length(pp[i].key) : 0;
                    if (key_eq(kk, kn, "origin"))
                        o = dup_text(pp[i].value);
                    else if (key_eq(kk, kn, "log_key"))
                        k = dup_text(pp[i].value);
                }
                if (o == NULL || k == NULL) {
                    rc = rfail(rp, "the header needs origin and log_key text");
                } else if (rp->log_key != NULL && strcmp(rp->log_key, k) != 0) {
                    rc = rfail(rp, "the export's log key is not the pinned key");
                } else if (rp->origin != NULL && strcmp(rp->origin, o) != 0) {
                    rc = rfail(rp, "the export's origin is not %s", rp->origin);
                } else {
                    if (rp->log_key == NULL) rp->log_key = k, k = NULL;
                    if (rp->origin == NULL) rp->origin = o, o = NULL;
                    header = 1;
                }
                free(o);
                free(k);
            }
        } else if (cbor_map_size(it) != 1) {
            snprintf(rp->item, sizeof rp->item, "export at byte %zu", off);
            rc = rfail(rp, "not an export item");
        } else if (key_eq(key, klen, "record") && cbor_isa_bytestring(v)) {
            rc = ac_replay_record(rp, cbor_bytestring_handle(v), cbor_bytestring_length(v));
        } else if (key_eq(key, klen, "checkpoint") && cbor_isa_string(v)) {
            rc = ac_replay_checkpoint(rp, (const char *)cbor_string_handle(v),
                                      cbor_string_length(v));
        } else if (key_eq(key, klen, "document") && cbor_isa_bytestring(v)) {
            char err[256];
            snprintf(rp->item, sizeof rp->item, "document at byte %zu", off);
            if (rp->hooks.on_document &&
                rp->hooks.on_document(rp->hooks.ctx, cbor_bytestring_handle(v),
                                      cbor_bytestring_length(v), err, sizeof err) != 0)
                rc = rfail(rp, "%s", err);
        } else if (key_eq(key, klen, "user_key") && cbor_isa_map(v) && cbor_map_size(v) == 2 &&
                   key_is_text(cbor_map_handle(v)[0].key, "jwk") &&
                   key_is_text(cbor_map_handle(v)[1].key, "user") &&
                   cbor_isa_string(cbor_map_handle(v)[0].value) &&
                   cbor_isa_string(cbor_map_handle(v)[1].value)) {
            char err[256];
            snprintf(rp->item, sizeof rp->item, "user key at byte %zu", off);
            char *user = dup_text(cbor_map_handle(v)[1].value);
            const cbor_item_t *jwk = cbor_map_handle(v)[0].value;
            if (user == NULL)
                rc = rfail(rp, "the user id is not text");
            else if (rp->hooks.on_user_key &&
                     rp->hooks.on_user_key(rp->hooks.ctx, user,
                                           (const char *)cbor_string_handle(jwk),
                                           cbor_string_length(jwk), err, sizeof err) != 0)
                rc = rfail(rp, "%s", err);
            free(user);
        } else {
            snprintf(rp->item, sizeof rp->item, "export at byte %zu", off);
            rc = rfail(rp, "unknown export item");
        }
        cbor_decref(&it);
        if (rc != 0) return -1;
        off += l;
    }
    if (!header) {
        snprintf(rp->item, sizeof rp->item, "export");
        return rfail(rp, "empty export");
    }
    return ac_replay_finish(rp);
}

static int put_item(struct ac_buf *out, cbor_item_t *m)
{
    if (m == NULL) return -1;
    uint8_t *enc;
    size_t n;
    enum ac_dcbor_status st = ac_dcbor_encode(m, &enc, &n);
    cbor_decref(&m);
    if (st != AC_DCBOR_OK) return -1;
    ac_buf_add(out, enc, n);
    free(enc);
    return out->oom ? -1 : 0;
}

int ac_replay_export_header(struct ac_buf *out, const char *origin, const char *log_key)
{
    if (origin == NULL || log_key == NULL) return -1;
    cbor_item_t *m = ac_dcbor_map(3);
    if (m == NULL) return -1;
    int rc = ac_dcbor_map_putz(m, "export", ac_dcbor_uint(1));
    rc |= ac_dcbor_map_putz(m, "origin", ac_dcbor_textz(origin));
    rc |= ac_dcbor_map_putz(m, "log_key", ac_dcbor_textz(log_key));
    if (rc != 0) {
        cbor_decref(&m);
        return -1;
    }
    return put_item(out, m);
}

int ac_replay_export_record(struct ac_buf *out, const uint8_t *rec, size_t len)
{
    cbor_item_t *m = ac_dcbor_map(1);
    if (m == NULL || ac_dcbor_map_putz(m, "record", ac_dcbor_bytes(rec, len)) != 0) {
        if (m) cbor_decref(&m);
        return -1;
    }
    return put_item(out, m);
}

int ac_replay_export_checkpoint(struct ac_buf *out, const char *note, size_t len)
{
    cbor_item_t *m = ac_dcbor_map(1);
    if (m == NULL || ac_dcbor_map_putz(m, "checkpoint", ac_dcbor_text(note, len)) != 0) {
        if (m) cbor_decref(&m);
        return -1;
    }
    return put_item(out, m);
}

int ac_replay_export_document(struct ac_buf *out, const uint8_t *doc, size_t len)
{
    cbor_item_t *m = ac_dcbor_map(1);
    if (m == NULL || ac_dcbor_map_putz(m, "document", ac_dcbor_bytes(doc, len)) != 0) {
        if (m) cbor_decref(&m);
        return -1;
    }
    return put_item(out, m);
}

int ac_replay_export_user_key(struct ac_buf *out, const char *user, const char *jwk, size_t len)
{
    /* ac_dcbor_map_putz consumes its value, also on failure */
    cbor_item_t *k = ac_dcbor_map(2);
    int rc = ac_dcbor_map_putz(k, "jwk", ac_dcbor_text(jwk, len));
    rc |= ac_dcbor_map_putz(k, "user", ac_dcbor_textz(user));
    if (rc != 0) {
        if (k) cbor_decref(&k);
        return -1;
    }
    cbor_item_t *m = ac_dcbor_map(1);
    if (ac_dcbor_map_putz(m, "user_key", k) != 0) {
        if (m) cbor_decref(&m);
        return -1;
    }
    return put_item(out, m);
}
