/* The schema's CHECK constraints after migration 0012 (sql/0012_cheaper_checks.sql) admit exactly
 * the values the regular expressions they replaced admitted. For every rewritten constraint, the
 * expression PostgreSQL holds in the migrated catalog is evaluated on a set of edge values (empty,
 * at and one past each length bound, non-ASCII whose octet length differs from its length in
 * characters, a trailing newline, characters just outside each class) and compared with the old
 * regular expression on the same value. Also: no constraint of the schema keeps a bounded
 * repetition ({n} or {n,m}, the costly form), and the real insert path refuses a bad id. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/sql.h"

static const char *url;

struct rewritten {
    const char *rel; /* table, or NULL for the ac_account_id domain */
    const char *con, *col, *old;
};

#define ID_RE "^[A-Za-z0-9._:-]{1,64}$"
#define KID_RE "^[A-Za-z0-9_-]{43}$"
#define SHA_RE "^sha-256:[0-9a-f]{64}$"

static const struct rewritten cons[] = {
    {NULL, "ac_account_id_check", "VALUE", ID_RE},
    {"ac_assets", "ac_assets_code_check", "code", "^[A-Z0-9_]{1,16}$"},
    {"ac_users", "ac_users_id_check", "id", ID_RE},
    {"ac_merchants", "ac_merchants_id_check", "id", ID_RE},
    {"ac_merchants", "ac_merchants_category_check", "category", ID_RE},
    {"ac_principal_keys", "ac_principal_keys_kid_check", "kid", KID_RE},
    {"ac_bindings", "ac_bindings_id_check", "id", ID_RE},
    {"ac_bindings", "ac_bindings_agent_id_check", "agent_id", ID_RE},
    {"ac_bindings", "ac_bindings_agent_kid_check", "agent_kid", KID_RE},
    {"ac_bindings", "ac_bindings_software_check", "software", SHA_RE},
    {"ac_bindings", "ac_bindings_environment_check", "environment", SHA_RE},
    {"ac_bindings", "ac_bindings_model_check", "model", "^[ -~]{1,128}$"},
    {"ac_evidence", "ac_evidence_payment_id_check", "payment_id", ID_RE},
    {"ac_mandates", "ac_mandates_id_check", "id", ID_RE},
    {"ac_payments", "ac_payments_id_check", "id", ID_RE},
    {"ac_authorizations", "ac_authorizations_id_check", "id", ID_RE},
    {"ac_refunds", "ac_refunds_id_check", "id", ID_RE},
    {"ac_tabs", "ac_tabs_id_check", "id", ID_RE},
    {"ac_idempotency", "ac_idempotency_key_check", "key", "^[\\x21-\\x7e]{1,255}$"},
};

/* Edge values as SQL expressions (evaluated by the server, so that repeat() and chr() build them) */
static const char *const values[] = {
    "''",
    "'a'",
    "'A'",
    "'0'",
    "'_'",
    "'-'",
    "'.'",
    "':'",
    "'a b'",
    "' '",
    "'~'",
    "'!'",
    "chr(127)",
    "chr(9)",
    "'abc' || chr(10)",
    "chr(10) || 'abc'",
    "'é'",
    "repeat('é', 32)",
    "repeat('é', 8)",
    "repeat('a', 15)",
    "repeat('A', 16)",
    "repeat('A', 17)",
    "repeat('a', 42)",
    "repeat('a', 43)",
    "repeat('a', 44)",
    "repeat('A-_', 14) || 'z'",
    "repeat('é', 21) || 'a'",
    "repeat('a', 63)",
    "repeat('a', 64)",
    "repeat('a', 65)",
    "repeat('x', 127)",
    "repeat('x', 128)",
    "repeat('x', 129)",
    "repeat('x', 254)",
    "repeat('x', 255)",
    "repeat('x', 256)",
    "repeat('é', 100)",
    "'sha-256:' || repeat('0f', 32)",
    "'sha-256:' || repeat('0F', 32)",
    "'sha-256:' || repeat('0f', 31) || '0'",
    "'sha-256:' || repeat('0f', 32) || '0'",
    "'sha-256:' || repeat('0f', 31) || 'é'",
    "'sha-512:' || repeat('0f', 32)",
    "'ABC_123'",
    "'abc_123'",
    "'payment.settle'",
    "'p1:x.y-z_Z'",
};

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *v)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    return r;
}

static void same_verdicts(void **s)
{
    (void)s;
    PGconn *c = ac_test_connect(url);
    /* evaluate a constraint's expression with its column bound to a value */
    PGresult *r = q(c,
                    "create or replace function pg_temp.chk(expr text, col text, v text) "
                    "returns boolean language plpgsql as $$ declare ok boolean; begin "
                    "execute 'select ' || regexp_replace(expr, '\\m' || col || '\\M', '$1', 'g') "
                    "into ok using v; return ok; end $$",
                    0, NULL);
    PQclear(r);
    int admitted = 0, refused = 0;
    for (size_t i = 0; i < sizeof cons / sizeof *cons; i++) {
        const char *v[2] = {cons[i].con, cons[i].rel};
        r = q(c,
              cons[i].rel ? "select pg_get_expr(conbin, conrelid) from pg_constraint "
                            "where conname = $1 and conrelid = $2::regclass"
                          : "select pg_get_expr(conbin, 0) from pg_constraint "
                            "where conname = $1 and contypid = 'ac_account_id'::regtype",
              cons[i].rel ? 2 : 1, v);
        assert_int_equal(PQntuples(r), 1);
        char *expr = strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
        /* the rewritten form: the length apart, no bounded repetition */
        assert_non_null(strstr(expr, "octet_length"));
        for (size_t j = 0; j < sizeof values / sizeof *values; j++) {
            char sql[512];
            snprintf(sql, sizeof sql, "select pg_temp.chk($1, $2, %s), %s ~ $3", values[j],
                     values[j]);
            const char *p[3] = {expr, cons[i].col, cons[i].old};
            r = q(c, sql, 3, p);
            const char *now = PQgetvalue(r, 0, 0), *before = PQgetvalue(r, 0, 1);
            if (strcmp(now, before) != 0)
                fail_msg("%s on %s: now %s, before %s", cons[i].con, values[j], now, before);
            if (strcmp(now, "t") == 0)
                admitted++;
            else
                refused++;
            PQclear(r);
        }
        free(expr);
    }
    /* the values do exercise both sides */
    assert_true(admitted > 40);
    assert_true(refused > 200);
    PQfinish(c);
}

static void no_bounded_repetition_left(void **s)
{
    (void)s;
    PGconn *c = ac_test_connect(url);
    PGresult *r = q(c,
                    "select conname, pg_get_constraintdef(oid) from pg_constraint "
                    "where contype = 'c' and pg_get_constraintdef(oid) ~ '~.*\\{[0-9]+(,[0-9]*)?\\}'",
                    0, NULL);
    if (PQntuples(r) != 0)
        fail_msg("%s still has a bounded repetition: %s", PQgetvalue(r, 0, 0),
                 PQgetvalue(r, 0, 1));
    PQclear(r);
    PQfinish(c);
}

static void inserts_still_refused(void **s)
{
    (void)s;
    PGconn *c = ac_test_connect(url);
    const char *bad[] = {"bad id", "", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *v[1] = {bad[i]};
        PGresult *r = PQexecParams(c, "insert into ac_users (id, created_us) values ($1, 1)", 1,
                                   NULL, v, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514");
        PQclear(r);
        r = PQexecParams(c, "select $1::ac_account_id", 1, NULL, v, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514");
        PQclear(r);
    }
    const char *ok[1] = {"u_" "0123456789012345678901234567890123456789012345678901234567890"};
    assert_int_equal(strlen(ok[0]), 63);
    PGresult *r = PQexecParams(c, "insert into ac_users (id, created_us) values ($1, 1)", 1, NULL,
                               ok, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

/* q is refused with SQLSTATE state */
static void refused_with(const char *q, const char *state)
{
    PGconn *c = ac_test_connect(url);
    PGresult *r = PQexec(c, q);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), state);
    PQclear(r);
    PQfinish(c);
}

/* sql/0016: ac_payments.mandate_id is no longer a foreign key, and in its place ac_mandates keeps
 * every row it was given, and its id: no DELETE, no TRUNCATE, no UPDATE of id, referenced or not.
 * Revocation, an UPDATE of other columns, still goes through. */
static void mandates_are_kept(void **s)
{
    (void)s;
    ac_test_sql(url, "insert into ac_assets (code, scale) values ('EUR', 2) on conflict do nothing");
    ac_test_sql(url, "insert into ac_users (id, created_us) values ('u_keep', 1)");
    ac_test_sql(url, "insert into ac_principal_keys (kid, user_id, alg, jwk, created_us) values "
                     "(repeat('k', 43), 'u_keep', 'EdDSA', '{}', 1)");
    ac_test_sql(url, "insert into ac_mandates (id, user_id, user_kid, asset, nbf, exp, autonomy, "
                     "jws, created_us) values ('m_keep', 'u_keep', repeat('k', 43), 'EUR', 1, 2, "
                     "1, 'x', 1)");
    assert_int_equal(ac_test_sql_int(url, "select count(*) from pg_constraint where conrelid = "
                                          "'ac_payments'::regclass and contype = 'f'"),
                     0);
    assert_false(ac_test_sql_ok(url, "delete from ac_mandates where id = 'm_keep'"));
    assert_false(ac_test_sql_ok(url, "update ac_mandates set id = 'm_other' where id = 'm_keep'"));
    assert_false(ac_test_sql_ok(url, "truncate ac_mandates cascade"));
    refused_with("delete from ac_mandates", "23001");
    assert_int_equal(ac_test_sql_int(url, "select count(*) from ac_mandates where id = 'm_keep'"),
                     1);
    ac_test_sql(url, "update ac_mandates set status = 'revoked', revoked_us = 3, revocation_kid = "
                     "repeat('k', 43), revocation_jws = 'y' where id = 'm_keep'");
    assert_int_equal(
        ac_test_sql_int(url, "select count(*) from ac_mandates where status = 'revoked'"), 1);

    /* what the key refused, `agentclear ledger check` reports */
    char out[4096];
    assert_int_equal(ac_test_cli(out, sizeof out, "ledger check --database-url='%s'", url), 0);
    assert_non_null(strstr(out, "payments name existing mandates"));
    ac_test_sql(url, "insert into ac_payments (id, request_digest, mandate_id, binding_id, user_id, "
                     "agent_id, payee, op, amount, asset, status, verdict, autonomy, created_us, "
                     "updated_us) values ('p_orphan', sha256(''), 'm_gone', 'b', 'u_keep', 'a', "
                     "'shop', 'purchase', 1, 'EUR', 'denied', 'deny', 1, 1, 1)");
    assert_int_equal(ac_test_cli(out, sizeof out, "ledger check --database-url='%s'", url), 1);
    if (strstr(out, "p_orphan: mandate m_gone does not exist") == NULL)
        fail_msg("ledger check did not report the orphan payment:\n%s", out);
}

/* sql/0017: ac_payments.seq has no unique index of its own. What kept it unique still does: an
 * insert cannot supply it (generated always as identity), so every row takes the next value. */
static void payment_seq_is_generated(void **s)
{
    (void)s;
    ac_test_sql(url, "insert into ac_assets (code, scale) values ('EUR', 2) on conflict do nothing");
    const char *ins = "insert into ac_payments (id, request_digest, mandate_id, binding_id, "
                      "user_id, agent_id, payee, op, amount, asset, status, verdict, autonomy, "
                      "created_us, updated_us) values ('%s', sha256(''), 'm', 'b', 'u', 'a', "
                      "'shop', 'purchase', 1, 'EUR', 'denied', 'deny', 1, 1, 1)";
    char q[600];
    snprintf(q, sizeof q, ins, "p_seq_1");
    ac_test_sql(url, q);
    snprintf(q, sizeof q, ins, "p_seq_2");
    ac_test_sql(url, q);
    assert_int_equal(ac_test_sql_int(url, "select count(*) from pg_index where indrelid = "
                                          "'ac_payments'::regclass and indkey::text = (select "
                                          "attnum::text from pg_attribute where attrelid = "
                                          "'ac_payments'::regclass and attname = 'seq')"),
                     0);
    assert_int_equal(ac_test_sql_int(url, "select ((select seq from ac_payments where id = "
                                          "'p_seq_2') > (select seq from ac_payments where id = "
                                          "'p_seq_1'))::int"),
                     1);
    /* a row cannot bring a seq of its own, so it cannot repeat one */
    refused_with("insert into ac_payments (seq, id, request_digest, mandate_id, "
                 "binding_id, user_id, agent_id, payee, op, amount, asset, status, "
                 "verdict, autonomy, created_us, updated_us) select seq, 'p_seq_3', "
                 "request_digest, mandate_id, binding_id, user_id, agent_id, payee, op, "
                 "amount, asset, status, verdict, autonomy, created_us, updated_us from "
                 "ac_payments where id = 'p_seq_1'",
                 "428C9");
    assert_int_equal(ac_test_sql_int(url, "select count(distinct seq) - count(*) from ac_payments"),
                     0);
}

int main(void)
{
    url = ac_test_fresh_db("db_schema_checks");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_verdicts),
        cmocka_unit_test(no_bounded_repetition_left),
        cmocka_unit_test(inserts_still_refused),
        cmocka_unit_test(mandates_are_kept),
        cmocka_unit_test(payment_seq_is_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
