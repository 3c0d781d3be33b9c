/* Reads of committed mandates, payments and authorizations for the HTTP threads (payments.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/db.h"
#include "ledger/payments.h"

#define PAY_SELECT                                                                                 \
    "select p.id, p.mandate_id, p.binding_id, p.user_id, p.agent_id, p.payee, p.op, p.amount, "    \
    "p.asset, a.scale, coalesce(p.purpose, ''), coalesce(p.order_digest, ''), p.status, "          \
    "p.verdict, p.autonomy, p.reasons, coalesce(p.error, ''), coalesce(p.transfer_id, ''), "       \
    "coalesce(p.authorization_id, ''), coalesce(p.evidence_seq, -1), "                             \
    "coalesce(encode(p.evidence_leaf, 'hex'), ''), p.created_us, p.updated_us, "                   \
    "encode(p.request_digest, 'hex'), z.challenge, coalesce(z.exp, 0), coalesce(z.status, ''), "   \
    "p.seq, p.refunded "                                                                           \
    "from ac_payments p join ac_assets a on a.code = p.asset "                                     \
    "left join ac_authorizations z on z.id = p.authorization_id "

#define REFUND_SELECT                                                                              \
    "select r.id, r.payment_id, r.merchant_id, r.user_id, r.amount, r.asset, a.scale, "            \
    "coalesce(r.reason, ''), r.transfer_id, r.keyid, coalesce(r.evidence_seq, -1), "               \
    "coalesce(encode(r.evidence_leaf, 'hex'), ''), r.created_us "                                  \
    "from ac_refunds r join ac_assets a on a.code = r.asset "

static const struct ac_db_stmt reader_stmts[] = {
    {"pay_mandate_get",
     "select m.jws, m.user_kid, m.status, m.created_us, coalesce(m.revoked_us, 0), "
     "coalesce(m.revocation_jws, ''), coalesce(m.revocation_kid, ''), a.scale, "
     "coalesce(s.day_start, 0), coalesce(s.day_spent, 0), coalesce(s.day_held, 0), "
     "coalesce(s.week_start, 0), coalesce(s.week_spent, 0), coalesce(s.week_held, 0), "
     "coalesce(s.month_start, 0), coalesce(s.month_spent, 0), coalesce(s.month_held, 0), "
     "coalesce(s.spent, 0), coalesce(s.held, 0), coalesce(s.uses, 0), coalesce(s.holds, 0) "
     "from ac_mandates m join ac_assets a on a.code = m.asset "
     "left join ac_mandate_spend s on s.mandate_id = m.id where m.id = $1",
     1},
    {"pay_payment_get", PAY_SELECT "where p.id = $1", 1},
    {"pay_list_user",
     PAY_SELECT "where p.user_id = $1 and p.seq < $2::int8 order by p.seq desc "
                "limit $3::int4",
     3},
    {"pay_list_payee",
     PAY_SELECT "where p.payee = $1 and p.seq < $2::int8 order by p.seq desc "
                "limit $3::int4",
     3},
    {"pay_list_topup_user",
     PAY_SELECT "where p.user_id = $1 and p.op = 'topup' and p.seq < $2::int8 "
                "order by p.seq desc limit $3::int4",
     3},
    {"pay_list_topup_payee",
     PAY_SELECT "where p.payee = $1 and p.op = 'topup' and p.seq < $2::int8 "
                "order by p.seq desc limit $3::int4",
     3},
    {"pay_refund_get", REFUND_SELECT "where r.id = $1", 1},
    {"pay_refund_list", REFUND_SELECT "where r.payment_id = $1 order by r.seq limit $2::int4", 2},
    {"pay_wallets",
     "select c.id, c.asset, a.scale, c.debits_pending, c.debits_posted, c.credits_pending, "
     "c.credits_posted from ac_accounts c join ac_assets a on a.code = c.asset "
     "where starts_with(c.id, $1) and c.id > $1 and strpos(substr(c.id, length($1) + 1), ':') = 0 "
     "order by c.id limit $2::int4",
     2},
    {"pay_authz_get",
     "select z.id, z.payment_id, z.user_id, z.challenge, z.iat, z.exp, z.status, z.created_us, "
     "coalesce(z.decided_us, 0), coalesce(z.transfer_id, ''), coalesce(z.confirmation_kid, ''), "
     "coalesce(z.evidence_seq, -1), coalesce(encode(z.evidence_leaf, 'hex'), ''), p.status "
     "from ac_authorizations z join ac_payments p on p.id = z.payment_id where z.id = $1",
     1},
};

/* Registered with the writer's statements by ac_payments_register_statements(). */
int ac_payments_register_reader_statements(void);
int ac_payments_register_reader_statements(void)
{
    /* also on the writer's connection: an Idempotency-Key's answer is rendered there, inside
     * the batch's transaction (server/idem.h), and some answers read what the batch wrote */
    return ac_db_register(AC_DB_READER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts) ||
           ac_db_register(AC_DB_WRITER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts);
}

static int64_t i64(const PGresult *r, int col)
{
    return strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

static void cpy(char *dst, size_t cap, const PGresult *r, int col)
{
    snprintf(dst, cap, "%s", PQgetvalue(r, 0, col));
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

/* Run a one-parameter read. ONE_RESULT with *res holding exactly one row, NO_RESULTS, or error. */
static enum ac_qs read1(PGconn *c, const char *name, const char *id, PGresult **res)
{
    const char *v[] = {id};
    enum ac_qs qs = ac_db_exec(c, name, 1, v, res);
    if (qs < 0) return qs;
    if (PQntuples(*res) != 1) {
        PQclear(*res);
        *res = NULL;
        return AC_QS_NO_RESULTS;
    }
    return AC_QS_ONE_RESULT;
}

void ac_mandate_row_clear(struct ac_mandate_row *m)
{
    free(m->jws);
    free(m->revocation_jws);
    memset(m, 0, sizeof *m);
}

enum ac_qs ac_payments_read_mandate(PGconn *c, const char *id, struct ac_mandate_row *out)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    enum ac_qs qs = read1(c, "pay_mandate_get", id, &r);
    if (qs <= 0) return qs;
    out->jws = strdup(PQgetvalue(r, 0, 0));
    cpy(out->kid, sizeof out->kid, r, 1);
    out->revoked = strcmp(PQgetvalue(r, 0, 2), "revoked") == 0;
    out->created_us = i64(r, 3);
    out->revoked_us = i64(r, 4);
    if (out->revoked) out->revocation_jws = strdup(PQgetvalue(r, 0, 5));
    cpy(out->revocation_kid, sizeof out->revocation_kid, r, 6);
    out->scale = (unsigned)i64(r, 7);
    struct ac_spend *s = &out->spend;
    int64_t *v[] = {&s->day.start_s, &s->day.spent, &s->day.held,      &s->week.start_s,
                    &s->week.spent,  &s->week.held, &s->month.start_s, &s->month.spent,
                    &s->month.held,  &s->spent,     &s->held,          &s->uses,
                    &s->holds};
    for (int i = 0; i < 13; i++)
        *v[i] = i64(r, 8 + i);
    PQclear(r);
    if (out->jws == NULL || (out->revoked && out->revocation_jws == NULL)) {
        ac_mandate_row_clear(out);
        return AC_QS_HARD_ERROR;
    }
    return AC_QS_ONE_RESULT;
}

void ac_payment_row_clear(struct ac_payment_row *p)
{
    free(p->challenge);
    memset(p, 0, sizeof *p);
}

#define V(col) PQgetvalue(r, row, col)
#define CPY(dst, col) snprintf(dst, sizeof dst, "%s", V(col))
#define I64(col) strtoll(V(col), NULL, 10)

/* Row `row` of a PAY_SELECT result into *out. 0, or -1 (nothing to clear). */
static int payment_from(const PGresult *r, int row, struct ac_payment_row *out)
{
    memset(out, 0, sizeof *out);
    CPY(out->id, 0);
    CPY(out->mandate, 1);
    CPY(out->binding, 2);
    CPY(out->user, 3);
    CPY(out->agent, 4);
    CPY(out->payee, 5);
    out->op = ac_op_from_name(V(6));
    out->amount = I64(7);
    CPY(out->asset, 8);
    out->scale = (unsigned)I64(9);
    CPY(out->purpose, 10);
    CPY(out->order_digest, 11);
    out->status = ac_pay_status_from_name(V(12));
    CPY(out->verdict, 13);
    out->autonomy = (int)I64(14);
    CPY(out->reasons, 15);
    CPY(out->error, 16);
    CPY(out->transfer_id, 17);
    CPY(out->authorization_id, 18);
    int64_t seq = I64(19);
    out->has_evidence = seq >= 0 && unhex(V(20), out->ev_leaf, 32) == 0;
    out->ev_seq = seq >= 0 ? (uint64_t)seq : 0;
    out->created_us = I64(21);
    out->updated_us = I64(22);
    int bad = unhex(V(23), out->request_digest, 32) != 0;
    if (!PQgetisnull(r, row, 24) && (out->challenge = strdup(V(24))) == NULL) bad = 1;
    out->challenge_exp = I64(25);
    CPY(out->authorization_status, 26);
    out->seq = I64(27);
    out->refunded = I64(28);
    if (bad || out->status == 0) {
        ac_payment_row_clear(out);
        return -1;
    }
    return 0;
}

enum ac_qs ac_payments_read_payment(PGconn *c, const char *id, struct ac_payment_row *out)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    enum ac_qs qs = read1(c, "pay_payment_get", id, &r);
    if (qs <= 0) return qs;
    int rc = payment_from(r, 0, out);
    PQclear(r);
    return rc == 0 ? AC_QS_ONE_RESULT : AC_QS_HARD_ERROR;
}

static enum ac_qs list_rows(PGconn *c, const char *stmt, const char *principal, int64_t before,
                            unsigned limit, struct ac_payment_row *out, size_t *n);

enum ac_qs ac_payments_list(PGconn *c, int payee, const char *principal, int64_t before,
                            unsigned limit, struct ac_payment_row *out, size_t *n)
{
    return list_rows(c, payee ? "pay_list_payee" : "pay_list_user", principal, before, limit, out,
                     n);
}

enum ac_qs ac_payments_list_topups(PGconn *c, int payee, const char *principal, int64_t before,
                                   unsigned limit, struct ac_payment_row *out, size_t *n)
{
    return list_rows(c, payee ? "pay_list_topup_payee" : "pay_list_topup_user", principal, before,
                     limit, out, n);
}

static enum ac_qs list_rows(PGconn *c, const char *stmt, const char *principal, int64_t before,
                            unsigned limit, struct ac_payment_row *out, size_t *n)
{
    *n = 0;
    char b[24], l[16];
    snprintf(b, sizeof b, "%lld", (long long)(before > 0 ? before : INT64_MAX));
    snprintf(l, sizeof l, "%u", limit);
    const char *v[] = {principal, b, l};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, stmt, 3, v, &r);
    if (qs < 0) return qs;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (size_t)i < limit; i++) {
        if (payment_from(r, i, &out[*n]) != 0) {
            for (size_t k = 0; k < *n; k++)
                ac_payment_row_clear(&out[k]);
            *n = 0;
            PQclear(r);
            return AC_QS_HARD_ERROR;
        }
        (*n)++;
    }
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

static void refund_from(const PGresult *r, int row, struct ac_refund_row *out)
{
    memset(out, 0, sizeof *out);
    CPY(out->id, 0);
    CPY(out->payment, 1);
    CPY(out->merchant, 2);
    CPY(out->user, 3);
    out->amount = I64(4);
    CPY(out->asset, 5);
    out->scale = (unsigned)I64(6);
    CPY(out->reason, 7);
    CPY(out->transfer_id, 8);
    CPY(out->keyid, 9);
    int64_t seq = I64(10);
    out->has_evidence = seq >= 0 && unhex(V(11), out->ev_leaf, 32) == 0;
    out->ev_seq = seq >= 0 ? (uint64_t)seq : 0;
    out->created_us = I64(12);
}

enum ac_qs ac_payments_read_refund(PGconn *c, const char *id, struct ac_refund_row *out)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    enum ac_qs qs = read1(c, "pay_refund_get", id, &r);
    if (qs <= 0) return qs;
    refund_from(r, 0, out);
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_payments_list_refunds(PGconn *c, const char *payment, struct ac_refund_row *out,
                                    size_t cap, size_t *n)
{
    *n = 0;
    char l[24];
    snprintf(l, sizeof l, "%zu", cap);
    const char *v[] = {payment, l};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "pay_refund_list", 2, v, &r);
    if (qs < 0) return qs;
    for (int i = 0; i < PQntuples(r) && (size_t)i < cap; i++)
        refund_from(r, i, &out[(*n)++]);
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

enum ac_qs ac_payments_list_wallets(PGconn *c, int user, const char *id, struct ac_wallet_row *out,
                                    size_t cap, size_t *n)
{
    *n = 0;
    char prefix[2 * AC_ID_MAX], l[24];
    snprintf(prefix, sizeof prefix, "%s:%s:", user ? "user" : "merchant", id);
    snprintf(l, sizeof l, "%zu", cap);
    const char *v[] = {prefix, l};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "pay_wallets", 2, v, &r);
    if (qs < 0) return qs;
    for (int row = 0; row < PQntuples(r) && (size_t)row < cap; row++) {
        struct ac_wallet_row *w = &out[(*n)++];
        memset(w, 0, sizeof *w);
        CPY(w->id, 0);
        CPY(w->asset, 1);
        w->scale = (unsigned)I64(2);
        w->debits_pending = I64(3);
        w->debits_posted = I64(4);
        w->credits_pending = I64(5);
        w->credits_posted = I64(6);
    }
    PQclear(r);
    return AC_QS_ONE_RESULT;
}

#undef V
#undef CPY
#undef I64

void ac_authz_row_clear(struct ac_authz_row *z)
{
    free(z->challenge);
    memset(z, 0, sizeof *z);
}

enum ac_qs ac_payments_read_authz(PGconn *c, const char *id, struct ac_authz_row *out)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    enum ac_qs qs = read1(c, "pay_authz_get", id, &r);
    if (qs <= 0) return qs;
    cpy(out->id, sizeof out->id, r, 0);
    cpy(out->payment, sizeof out->payment, r, 1);
    cpy(out->user, sizeof out->user, r, 2);
    out->challenge = strdup(PQgetvalue(r, 0, 3));
    out->iat = i64(r, 4);
    out->exp = i64(r, 5);
    cpy(out->status, sizeof out->status, r, 6);
    out->created_us = i64(r, 7);
    out->decided_us = i64(r, 8);
    cpy(out->transfer_id, sizeof out->transfer_id, r, 9);
    cpy(out->confirmation_kid, sizeof out->confirmation_kid, r, 10);
    int64_t seq = i64(r, 11);
    out->has_evidence = seq >= 0 && unhex(PQgetvalue(r, 0, 12), out->ev_leaf, 32) == 0;
    out->ev_seq = seq >= 0 ? (uint64_t)seq : 0;
    out->payment_status = ac_pay_status_from_name(PQgetvalue(r, 0, 13));
    PQclear(r);
    if (out->challenge == NULL) {
        ac_authz_row_clear(out);
        return AC_QS_HARD_ERROR;
    }
    return AC_QS_ONE_RESULT;
}
