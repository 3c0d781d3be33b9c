/* Idempotency-Key records (see idempotency.h). */
#include "ledger/idempotency.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define INSERT_SQL                                                                                 \
    "insert into ac_idempotency (caller, method, path, key, fingerprint, status, content_type, "   \
    "location, body, created_us) values ($1, $2, $3, $4, decode($5, 'hex'), $6::int, $7, $8, $9, " \
    "$10::bigint) on conflict do nothing"

static const struct ac_db_stmt writer_stmts[] = {
    {"idem_ins", INSERT_SQL, 10},
    /* oldest first, a bounded number per sweep */
    {"idem_sweep",
     "delete from ac_idempotency where ctid = any(array(select ctid from ac_idempotency "
     "where created_us < $1::bigint order by created_us limit $2::int))",
     2},
};

static const struct ac_db_stmt reader_stmts[] = {
    {"idem_get",
     "select encode(fingerprint, 'hex'), status, content_type, location, body from ac_idempotency "
     "where caller = $1 and method = $2 and path = $3 and key = $4",
     4},
    {"idem_ins_r", INSERT_SQL, 10},
};

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* 64 lowercase hex digits into 32 bytes; 0, or -1. */
static int hex32(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64) return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int ac_idem_register_statements(void)
{
    if (ac_db_register(AC_DB_WRITER, writer_stmts, sizeof writer_stmts / sizeof *writer_stmts))
        return -1;
    return ac_db_register(AC_DB_READER, reader_stmts, sizeof reader_stmts / sizeof *reader_stmts);
}

void ac_idem_row_clear(struct ac_idem_row *r)
{
    if (r == NULL) return;
    free(r->content_type);
    free(r->location);
    free(r->body);
    memset(r, 0, sizeof *r);
}

enum ac_qs ac_idem_get(PGconn *c, const char *caller, const char *method, const char *path,
                       const char *key, struct ac_idem_row *out)
{
    memset(out, 0, sizeof *out);
    const char *v[] = {caller, method, path, key};
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "idem_get", 4, v, &r);
    if (qs < 0) return qs;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return AC_QS_NO_RESULTS;
    }
    const char *fp = PQgetvalue(r, 0, 0);
    if (hex32(fp, out->fingerprint) != 0) {
        PQclear(r);
        return AC_QS_HARD_ERROR;
    }
    out->status = (unsigned)strtoul(PQgetvalue(r, 0, 1), NULL, 10);
    out->content_type = strdup(PQgetvalue(r, 0, 2));
    if (!PQgetisnull(r, 0, 3)) out->location = strdup(PQgetvalue(r, 0, 3));
    out->body_len = (size_t)PQgetlength(r, 0, 4);
    out->body = malloc(out->body_len + 1);
    if (out->body) memcpy(out->body, PQgetvalue(r, 0, 4), out->body_len + 1);
    int oom = out->content_type == NULL || out->body == NULL ||
              (!PQgetisnull(r, 0, 3) && out->location == NULL);
    PQclear(r);
    if (oom) {
        ac_idem_row_clear(out);
        return AC_QS_HARD_ERROR;
    }
    return AC_QS_ONE_RESULT;
}

/* The ten parameters of the insert; the buffers are the caller's. */
static void params(const struct ac_idem_record *rec, char fp[65], char st[12], char at[24],
                   const char *v[10])
{
    hex_encode(rec->fingerprint, 32, fp);
    snprintf(st, 12, "%u", rec->status);
    snprintf(at, 24, "%" PRId64, rec->created_us);
    v[0] = rec->caller;
    v[1] = rec->method;
    v[2] = rec->path;
    v[3] = rec->key;
    v[4] = fp;
    v[5] = st;
    v[6] = rec->content_type;
    v[7] = rec->location;
    v[8] = rec->body;
    v[9] = at;
}

int ac_idem_stmt_insert(struct ac_apply *a, const struct ac_idem_record *rec)
{
    char fp[65], st[12], at[24];
    const char *v[10];
    params(rec, fp, st, at, v);
    return ac_apply_stmt(a, "idem_ins", 10, v);
}

enum ac_qs ac_idem_insert(PGconn *c, const struct ac_idem_record *rec)
{
    char fp[65], st[12], at[24];
    const char *v[10];
    params(rec, fp, st, at, v);
    PGresult *r;
    enum ac_qs qs = ac_db_exec(c, "idem_ins_r", 10, v, &r);
    if (qs > 0) PQclear(r);
    return qs;
}

/* ---- expiry ---------------------------------------------------------------------------------- */

void ac_idem_sweeper_init(struct ac_idem_sweeper *s, long retention_s)
{
    memset(s, 0, sizeof *s);
    if (retention_s < 86400) retention_s = 86400;
    s->retention_us = (int64_t)retention_s * 1000000;
    s->interval_us = 1000000;
    s->limit = 10000;
}

void ac_idem_sweeper_loaded(struct ac_idem_sweeper *s)
{
    s->next_us = 0;
}

int64_t ac_idem_sweeper_deadline(const struct ac_idem_sweeper *s)
{
    return s->next_us;
}

int ac_idem_sweeper_tick(struct ac_idem_sweeper *s, struct ac_apply *a)
{
    int64_t now = ac_apply_now(a);
    if (now < s->next_us) return 0;
    s->next_us = now + s->interval_us;
    char cutoff[24], limit[16];
    snprintf(cutoff, sizeof cutoff, "%" PRId64, now - s->retention_us);
    snprintf(limit, sizeof limit, "%u", s->limit);
    const char *v[] = {cutoff, limit};
    return ac_apply_stmt(a, "idem_sweep", 2, v);
}
