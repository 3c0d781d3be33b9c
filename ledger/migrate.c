#include <stdio.h>
#include <stdlib.h>

#include "ledger/migrations.h"

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok) snprintf(err, errlen, "%s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

int ac_migrate(PGconn *c, char *err, size_t errlen)
{
    /* one migrator at a time across processes */
    if (exec_ok(c, "select pg_advisory_lock(7339)", err, errlen)) return -1;
    int applied = 0;
    if (exec_ok(c,
                "create table if not exists ac_schema_version (version integer primary key, "
                "name text not null, applied_at timestamptz not null default now())",
                err, errlen)) {
        applied = -1;
        goto out;
    }
    PGresult *r = PQexec(c, "select coalesce(max(version), 0) from ac_schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
        PQclear(r);
        applied = -1;
        goto out;
    }
    int have = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    for (unsigned i = 0; i < ac_n_migrations; i++) {
        const struct ac_migration *m = &ac_migrations[i];
        if (m->version <= have) continue;
        char ver[16];
        snprintf(ver, sizeof ver, "%d", m->version);
        const char *vals[] = {ver, m->name};
        if (exec_ok(c, "begin", err, errlen)) {
            applied = -1;
            goto out;
        }
        /* migration text is ours (sql/), static, and may hold several statements */
        r = PQexec(c, m->sql);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (ok) {
            r = PQexecParams(c, "insert into ac_schema_version (version, name) values ($1, $2)",
                             2, NULL, vals, NULL, NULL, 0);
            ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
        }
        if (!ok) {
            snprintf(err, errlen, "migration %s: %s", m->name, PQerrorMessage(c));
            r = PQexec(c, "rollback");
            PQclear(r);
            applied = -1;
            goto out;
        }
        if (exec_ok(c, "commit", err, errlen)) {
            applied = -1;
            goto out;
        }
        applied++;
    }
out:
    r = PQexec(c, "select pg_advisory_unlock(7339)");
    PQclear(r);
    return applied;
}
