/* Merchants' versioned token prices and the token leg of top-ups (see prices.h). */
#include "ledger/prices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/domain.h"
#include "ledger/evlog.h"
#include "protocol/strmap.h"

/* ==== the state (sequencer only) ===============================================================
 */

/* A published version, keyed "<merchant>/<version>". */
struct pver {
    char key[AC_ID_MAX + 24];
    uint8_t digest[32];
};

/* A merchant's current (newest) version. */
struct pmer {
    char merchant[AC_ID_MAX + 1];
    int64_t current;
};

struct ac_prices {
    struct ac_strmap versions;  /* struct pver */
    struct ac_strmap merchants; /* struct pmer */
};

static const char *pver_key(const void *v)
{
    return ((const struct pver *)v)->key;
}
static const char *pmer_key(const void *v)
{
    return ((const struct pmer *)v)->merchant;
}

static void vkey(const char *merchant, int64_t version, char out[AC_ID_MAX + 24])
{
    snprintf(out, AC_ID_MAX + 24, "%s/%lld", merchant, (long long)version);
}

struct ac_prices *ac_prices_new(void)
{
    struct ac_prices *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->versions.key = pver_key;
    p->merchants.key = pmer_key;
    return p;
}

void ac_prices_free(struct ac_prices *p)
{
    if (p == NULL) return;
    ac_strmap_free(&p->versions, free);
    ac_strmap_free(&p->merchants, free);
    free(p);
}

/* Record version of merchant (digest) as published, and as current when newer. 0 or -1 (OOM). */
static int remember(struct ac_prices *p, const char *merchant, int64_t version,
                    const uint8_t digest[32])
{
    struct pver *v = calloc(1, sizeof *v);
    if (v == NULL || ac_strmap_reserve(&p->versions, 1) != 0) {
        free(v);
        return -1;
    }
    vkey(merchant, version, v->key);
    memcpy(v->digest, digest, 32);
    struct pmer *m = ac_strmap_get(&p->merchants, merchant);
    if (m == NULL) {
        if ((m = calloc(1, sizeof *m)) == NULL || ac_strmap_reserve(&p->merchants, 1) != 0) {
            free(m);
            free(v);
            return -1;
        }
        snprintf(m->merchant, sizeof m->merchant, "%s", merchant);
        ac_strmap_put(&p->merchants, m);
    }
    ac_strmap_put(&p->versions, v);
    if (version > m->current) m->current = version;
    return 0;
}

enum ac_ec ac_prices_check_current(const struct ac_prices *p, const char *merchant, int64_t version)
{
    char k[AC_ID_MAX + 24];
    vkey(merchant, version, k);
    if (ac_strmap_get(&p->versions, k) == NULL) return AC_EC_PRICE_VERSION_UNKNOWN;
    const struct pmer *m = ac_strmap_get(&p->merchants, merchant);
    return m && m->current == version ? AC_EC_OK : AC_EC_PRICE_VERSION_STALE;
}

/* ==== statements ===============================================================================
 */

static const struct ac_db_stmt writer_stmts[] = {
    {"price_version_ins",
     "insert into ac_price_versions (merchant_id, version, request_digest, body, keyid, "
     "evidence_seq, evidence_leaf, created_us) values ($1, $2::int8, decode($3, 'hex'), $4, $5, "
     "nullif($6, '')::int8, decode(nullif($7, ''), 'hex'), $8::int8)",
     8},
    {"price_ins",
     "insert into ac_prices (merchant_id, version, fiat_asset, token_asset, fiat_amount, "
     "token_amount) values ($1, $2::int8, $3, $4, $5::int8, $6::int8)",
     6},
    {"price_load",
     "select merchant_id, version, encode(request_digest, 'hex') from "
     "ac_price_versions order by merchant_id, version",
     0},
    {"topup_ins",
     "insert into ac_topups (id, provider, user_id, token_asset, token_amount, token_debit, "
     "token_credit, token_transfer_id, price_version, price_fiat, price_tokens, created_us) "
     "values ($1, $2, $3, $4, $5::int8, $6, $7, $8, $9::int8, $10::int8, $11::int8, $12::int8)",
     12},
};

#define TOPUP_SELECT                                                                               \
    "select t.id, t.provider, t.user_id, t.token_asset, a.scale, t.token_amount, t.token_debit, "  \
    "t.token_credit, t.token_transfer_id, t.price_version, t.price_fiat, t.price_tokens "          \
    "from ac_topups t join ac_assets a on a.code = t.token_asset "

static const struct ac_db_stmt reader_stmts[] = {
    {"price_version_get",
     "select v.keyid, coalesce(v.evidence_seq, -1), coalesce(encode(v.evidence_leaf, 'hex'), ''), "
     "v.created_us from ac_price_versions v where v.merchant_id = $1 and v.version = $2::int8",
     2},
    {"price_rows",
     "select p.version, p.fiat_asset, p.token_asset, p.fiat_amount, p.token_amount, fa.scale, "
     "ta.scale from ac_prices p join ac_assets fa on fa.code = p.fiat_asset join ac_assets ta on "
     "ta.code = p.token_asset where p.merchant_id = $1 and p.version = any($2::int8[]) "
     "order by p.version, p.fiat_asset, p.token_asset",
     2},
    {"price_versions",
     "select v.version, v.keyid, coalesce(v.evidence_seq, -1), "
     "coalesce(encode(v.evidence_leaf, 'hex'), ''), v.created_us from ac_price_versions v "
     "where v.merchant_id = $1 and v.version < $2::int8 order by v.version desc limit $3::int4",
     3},
    {"price_current",
     "select coalesce(max(version), 0) from ac_price_versions where merchant_id = $1", 1},
    {"price_lookup",
     "select p.fiat_amount, p.token_amount from ac_price_versions v left join ac_prices p on "
     "p.merchant_id = v.merchant_id and p.version = v.version and p.fiat_asset = $3 and "
     "p.token_asset = $4 where v.merchant_id = $1 and v.version = $2::int8",
     4},
    {"topup_get_many", TOPUP_SELECT "where t.id = any($1::text[])", 1},
};

int ac_prices_register_statements(void)
{
    if (ac_db_register(AC_DB_WRITER, writer_stmts, sizeof writer_stmts / sizeof *writer_stmts))
        return -1;
    /* also on the writer's connection: an Idempotency-Key's answer is rendered there, inside
     * the batch's transaction (server/idem.h), and these answers read what the batch wrote */
    return ac_db_register(AC_DB_READER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts) ||
           ac_db_register(AC_DB_WRITER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* ==== load =====================================================================================
 */

static int load_version(void *cls, const PGresult *r)
{
    struct ac_prices *f = cls;
    const char *merchant = PQgetvalue(r, 0, 0);
    uint8_t dg[32];
    if (strlen(merchant) > AC_ID_MAX || unhex(PQgetvalue(r, 0, 2), dg, 32) != 0) return -1;
    return remember(f, merchant, strtoll(PQgetvalue(r, 0, 1), NULL, 10), dg);
}

int ac_prices_load(struct ac_prices *p, PGconn *c)
{
    struct ac_prices *f = ac_prices_new();
    if (f == NULL) return -1;
    if (ac_db_stream(c, "price_load", load_version, f) != AC_QS_ONE_RESULT) {
        ac_prices_free(f);
        return -1;
    }
    struct ac_strmap v = p->versions, m = p->merchants;
    p->versions = f->versions;
    p->merchants = f->merchants;
    f->versions = v;
    f->merchants = m;
    ac_prices_free(f);
    return 0;
}

/* ==== publishing ===============================================================================
 */

static void apply_publish(struct ac_price_publish *op, struct ac_apply *a)
{
    struct ac_domain *d = ac_apply_domain(a);
    int64_t now = ac_apply_now(a);
    op->result = AC_EC_OK;
    op->replayed = op->has_evidence = 0;
    op->at_us = now;
    if (d == NULL || d->prices == NULL) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    struct ac_prices *p = d->prices;
    char k[AC_ID_MAX + 24];
    vkey(op->merchant, op->version, k);
    const struct pver *old = ac_strmap_get(&p->versions, k);
    if (old) {
        if (memcmp(old->digest, op->digest, 32) == 0)
            op->replayed = 1;
        else
            op->result = AC_EC_PRICE_VERSION_EXISTS;
        return;
    }
    const struct pmer *m = ac_strmap_get(&p->merchants, op->merchant);
    if (m && op->version <= m->current) {
        op->result = AC_EC_PRICE_VERSION_OLD;
        return;
    }
    if (remember(p, op->merchant, op->version, op->digest) != 0) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    /* the state changed: from here on a failure fails the batch (the state is reloaded) */
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", (long long)op->version);
    if (d->evlog) {
        struct ac_ev_record r = {0};
        r.kind = AC_EV_PRICE_PUBLISH;
        r.body.payee = op->merchant;
        r.body.ref = ver;
        r.body.request = (struct ac_ev_request){1,           op->sig.base,    op->sig.base_len,
                                                op->sig.sig, op->sig.sig_len, op->sig.keyid,
                                                1,           op->sig.body,    op->sig.body_len};
        if (ac_evlog_append(d->evlog, a, &r, &op->ev_seq, op->ev_leaf) != 0) {
            ac_apply_abort(a);
            op->result = AC_EC_INTERNAL;
            return;
        }
        op->has_evidence = 1;
    }
    char dg[65], seq[24] = "", leaf[65] = "", t_us[24];
    hex(op->digest, 32, dg);
    if (op->has_evidence) {
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)op->ev_seq);
        hex(op->ev_leaf, 32, leaf);
    }
    snprintf(t_us, sizeof t_us, "%lld", (long long)now);
    /* the body is kept as text: it was parsed as JSON, so it is UTF-8 without NUL */
    char *body = malloc(op->sig.body_len + 1);
    if (body == NULL) {
        ac_apply_abort(a);
        op->result = AC_EC_INTERNAL;
        return;
    }
    memcpy(body, op->sig.body, op->sig.body_len);
    body[op->sig.body_len] = '\0';
    const char *v[] = {op->merchant, ver,  dg,  body, op->sig.keyid ? op->sig.keyid : "",
                       seq,          leaf, t_us};
    int rc = ac_apply_stmt(a, "price_version_ins", 8, v);
    free(body);
    for (size_t i = 0; rc == 0 && i < op->n; i++) {
        char fa[24], ta[24];
        snprintf(fa, sizeof fa, "%lld", (long long)op->prices[i].fiat);
        snprintf(ta, sizeof ta, "%lld", (long long)op->prices[i].tokens);
        const char *pv[] = {op->merchant, ver, op->prices[i].fiat_asset, op->prices[i].token_asset,
                            fa,           ta};
        rc = ac_apply_stmt(a, "price_ins", 6, pv);
    }
    if (rc != 0) op->result = AC_EC_INTERNAL;
}

static void publish_op(struct ac_cmd *c, struct ac_apply *a)
{
    apply_publish(c->op_arg, a);
}

void ac_prices_publish_cmd(struct ac_cmd *cmd, struct ac_price_publish *op)
{
    cmd->kind = AC_CMD_OP;
    cmd->n = 1;
    cmd->op = publish_op;
    cmd->op_arg = op;
}

int ac_prices_topup_row(struct ac_apply *a, const struct ac_pay_request *q, const char *user,
                        int64_t now_us)
{
    const struct ac_topup_leg *t = q->topup;
    char amt[24], ver[24], pf[24], pt[24], t_us[24];
    snprintf(amt, sizeof amt, "%lld", (long long)t->tokens);
    snprintf(ver, sizeof ver, "%lld", (long long)t->version);
    snprintf(pf, sizeof pf, "%lld", (long long)t->price_fiat);
    snprintf(pt, sizeof pt, "%lld", (long long)t->price_tokens);
    snprintf(t_us, sizeof t_us, "%lld", (long long)now_us);
    const char *v[] = {q->id, q->payee, user,      t->token_asset,
                       amt,   t->debit, t->credit, t->transfer_id,
                       ver,   pf,       pt,        t_us};
    return ac_apply_stmt(a, "topup_ins", 12, v);
}

/* ==== readers ==================================================================================
 */

#define V(col) PQgetvalue(r, row, col)
#define I64(col) strtoll(V(col), NULL, 10)

static void version_head(const PGresult *r, int row, int col, struct ac_price_version_row *out)
{
    snprintf(out->keyid, sizeof out->keyid, "%s", V(col));
    int64_t seq = I64(col + 1);
    out->has_evidence = seq >= 0 && unhex(V(col + 2), out->ev_leaf, 32) == 0;
    out->ev_seq = seq >= 0 ? (uint64_t)seq : 0;
    out->created_us = I64(col + 3);
}

/* Fill the prices of out[0..n) (versions set) with one query. */
static enum ac_qs fill_prices(PGconn *c, const char *merchant, struct ac_price_version_row *out,
                              size_t n)
{
    if (n == 0) return AC_QS_ONE_RESULT;
    char arr[64 * 24];
    size_t len = 0;
    arr[len++] = '{';
    for (size_t i = 0; i < n && len + 24 < sizeof arr; i++)
        len += (size_t)snprintf(arr + len, sizeof arr - len, "%s%lld", i ? "," : "",
                                (long long)out[i].version);
    snprintf(arr + len, sizeof arr - len, "}");
    const char *v[] = {merchant, arr};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "price_rows", 2, v, &r);
    if (qs < 0) return qs;
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t ver = I64(0);
        for (size_t i = 0; i < n; i++) {
            struct ac_price_version_row *o = &out[i];
            if (o->version != ver || o->n >= AC_PRICES_MAX) continue;
            struct ac_price *pr = &o->prices[o->n];
            snprintf(pr->fiat_asset, sizeof pr->fiat_asset, "%s", V(1));
            snprintf(pr->token_asset, sizeof pr->token_asset, "%s", V(2));
            pr->fiat = I64(3);
            pr->tokens = I64(4);
            o->fiat_scale[o->n] = (unsigned)I64(5);
            o->token_scale[o->n] = (unsigned)I64(6);
            o->n++;
        }
    }
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_prices_read_version(PGconn *c, const char *merchant, int64_t version,
                                  struct ac_price_version_row *out)
{
    memset(out, 0, sizeof *out);
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", (long long)version);
    const char *v[] = {merchant, ver};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "price_version_get", 2, v, &r);
    if (qs < 0) return qs;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return AC_QS_NO_RESULTS;
    }
    int row = 0;
    snprintf(out->merchant, sizeof out->merchant, "%s", merchant);
    out->version = version;
    version_head(r, row, 0, out);
    PQclear(r);
    return fill_prices(c, merchant, out, 1);
}

enum ac_qs ac_prices_list_versions(PGconn *c, const char *merchant, int64_t before,
                                   struct ac_price_version_row *out, size_t cap, size_t *n)
{
    *n = 0;
    if (cap > 64) cap = 64;
    char b[24], l[16];
    snprintf(b, sizeof b, "%lld", (long long)(before > 0 ? before : INT64_MAX));
    snprintf(l, sizeof l, "%zu", cap);
    const char *v[] = {merchant, b, l};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "price_versions", 3, v, &r);
    if (qs < 0) return qs;
    for (int row = 0; row < PQntuples(r) && (size_t)row < cap; row++) {
        struct ac_price_version_row *o = &out[*n];
        memset(o, 0, sizeof *o);
        snprintf(o->merchant, sizeof o->merchant, "%s", merchant);
        o->version = I64(0);
        version_head(r, row, 1, o);
        (*n)++;
    }
    PQclear(r);
    return fill_prices(c, merchant, out, *n);
}

enum ac_qs ac_prices_current(PGconn *c, const char *merchant, int64_t *version)
{
    *version = 0;
    const char *v[] = {merchant};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "price_current", 1, v, &r);
    if (qs < 0) return qs;
    if (PQntuples(r) == 1) *version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_prices_lookup(PGconn *c, const char *merchant, int64_t version, const char *fiat,
                            const char *token, struct ac_price *out, int *version_exists)
{
    memset(out, 0, sizeof *out);
    *version_exists = 0;
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", (long long)version);
    const char *v[] = {merchant, ver, fiat, token};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "price_lookup", 4, v, &r);
    if (qs < 0) return qs;
    qs = AC_QS_NO_RESULTS;
    if (PQntuples(r) == 1) {
        *version_exists = 1;
        if (!PQgetisnull(r, 0, 0)) {
            snprintf(out->fiat_asset, sizeof out->fiat_asset, "%s", fiat);
            snprintf(out->token_asset, sizeof out->token_asset, "%s", token);
            out->fiat = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            out->tokens = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
            qs = AC_QS_ONE_RESULT;
        }
    }
    PQclear(r);
    return qs;
}

enum ac_qs ac_prices_read_topups(PGconn *c, const char *const *ids, size_t n,
                                 struct ac_topup_row *out, size_t *got)
{
    *got = 0;
    if (n == 0) return AC_QS_ONE_RESULT;
    if (n > 100) return AC_QS_HARD_ERROR;
    /* ids are ac_id_valid: no quote, backslash, comma or brace to escape */
    char arr[100 * (AC_ID_MAX + 3) + 4];
    size_t len = 0;
    arr[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(arr + len, sizeof arr - len, "%s\"%s\"", i ? "," : "", ids[i]);
    snprintf(arr + len, sizeof arr - len, "}");
    const char *v[] = {arr};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "topup_get_many", 1, v, &r);
    if (qs < 0) return qs;
    for (int row = 0; row < PQntuples(r) && (size_t)row < n; row++) {
        struct ac_topup_row *t = &out[*got];
        memset(t, 0, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", V(0));
        snprintf(t->provider, sizeof t->provider, "%s", V(1));
        snprintf(t->user, sizeof t->user, "%s", V(2));
        snprintf(t->token_asset, sizeof t->token_asset, "%s", V(3));
        t->token_scale = (unsigned)I64(4);
        t->token_amount = I64(5);
        snprintf(t->token_debit, sizeof t->token_debit, "%s", V(6));
        snprintf(t->token_credit, sizeof t->token_credit, "%s", V(7));
        snprintf(t->token_transfer_id, sizeof t->token_transfer_id, "%s", V(8));
        t->price_version = I64(9);
        t->price_fiat = I64(10);
        t->price_tokens = I64(11);
        (*got)++;
    }
    PQclear(r);
    return AC_QS_ONE_RESULT;
}
