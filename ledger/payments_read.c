/* Reads of committed mandates, payments and authorizations for the HTTP threads (payments.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/db.h"
#include "ledger/payments.h"

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
    {"pay_payment_get",
     "select p.id, p.mandate_id, p.binding_id, p.user_id, p.agent_id, p.payee, p.op, p.amount, "
     "p.asset, a.scale, coalesce(p.purpose, ''), coalesce(p.order_digest, ''), p.status, "
     "p.verdict, p.autonomy, p.reasons, coalesce(p.error, ''), coalesce(p.transfer_id, ''), "
     "coalesce(p.authorization_id, ''), coalesce(p.evidence_seq, -1), "
     "coalesce(encode(p.evidence_leaf, 'hex'), ''), p.created_us, p.updated_us, "
     "encode(p.request_digest, 'hex'), z.challenge, coalesce(z.exp, 0), coalesce(z.status, '') "
     "from ac_payments p join ac_assets a on a.code = p.asset "
     "left join ac_authorizations z on z.id = p.authorization_id where p.id = $1",
     1},
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
    return ac_db_register(AC_DB_READER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts);
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

enum ac_qs ac_payments_read_payment(PGconn *c, const char *id, struct ac_payment_row *out)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    enum ac_qs qs = read1(c, "pay_payment_get", id, &r);
    if (qs <= 0) return qs;
    cpy(out->id, sizeof out->id, r, 0);
    cpy(out->mandate, sizeof out->mandate, r, 1);
    cpy(out->binding, sizeof out->binding, r, 2);
    cpy(out->user, sizeof out->user, r, 3);
    cpy(out->agent, sizeof out->agent, r, 4);
    cpy(out->payee, sizeof out->payee, r, 5);
    out->op = ac_op_from_name(PQgetvalue(r, 0, 6));
    out->amount = i64(r, 7);
    cpy(out->asset, sizeof out->asset, r, 8);
    out->scale = (unsigned)i64(r, 9);
    cpy(out->purpose, sizeof out->purpose, r, 10);
    cpy(out->order_digest, sizeof out->order_digest, r, 11);
    out->status = ac_pay_status_from_name(PQgetvalue(r, 0, 12));
    cpy(out->verdict, sizeof out->verdict, r, 13);
    out->autonomy = (int)i64(r, 14);
    cpy(out->reasons, sizeof out->reasons, r, 15);
    cpy(out->error, sizeof out->error, r, 16);
    cpy(out->transfer_id, sizeof out->transfer_id, r, 17);
    cpy(out->authorization_id, sizeof out->authorization_id, r, 18);
    int64_t seq = i64(r, 19);
    out->has_evidence = seq >= 0 && unhex(PQgetvalue(r, 0, 20), out->ev_leaf, 32) == 0;
    out->ev_seq = seq >= 0 ? (uint64_t)seq : 0;
    out->created_us = i64(r, 21);
    out->updated_us = i64(r, 22);
    int bad = unhex(PQgetvalue(r, 0, 23), out->request_digest, 32) != 0;
    if (!PQgetisnull(r, 0, 24) && (out->challenge = strdup(PQgetvalue(r, 0, 24))) == NULL) bad = 1;
    out->challenge_exp = i64(r, 25);
    cpy(out->authorization_status, sizeof out->authorization_status, r, 26);
    PQclear(r);
    if (bad || out->status == 0) {
        ac_payment_row_clear(out);
        return AC_QS_HARD_ERROR;
    }
    return AC_QS_ONE_RESULT;
}

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
