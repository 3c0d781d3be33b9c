#include "tests/support/sql.h"

#include <stdlib.h>
#include <string.h>

#include "ledger/db.h"
#include "tests/support/testutil.h"

PGconn *ac_test_connect(const char *url)
{
    char err[256];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) fail_msg("connect: %s", err);
    return c;
}

static int succeeded(const PGresult *r)
{
    return PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
}

void ac_test_sql(const char *url, const char *q)
{
    PGconn *c = ac_test_connect(url);
    PGresult *r = PQexec(c, q);
    if (!succeeded(r)) fail_msg("%s: %s", q, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

int ac_test_sql_ok(const char *url, const char *q)
{
    PGconn *c = ac_test_connect(url);
    PGresult *r = PQexec(c, q);
    int ok = succeeded(r);
    PQclear(r);
    PQfinish(c);
    return ok;
}

long long ac_test_sql_int(const char *url, const char *q)
{
    PGconn *c = ac_test_connect(url);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", q, PQerrorMessage(c));
    long long v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

char *ac_test_sql_text(const char *url, const char *q, const char *param)
{
    PGconn *c = ac_test_connect(url);
    const char *v[] = {param};
    PGresult *r = PQexecParams(c, q, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", q, PQerrorMessage(c));
    char *s = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    PQfinish(c);
    return s;
}
