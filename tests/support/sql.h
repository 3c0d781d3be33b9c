/* tests/support/sql.h -- SQL for the tests that look into the database behind the code under
 * test (rows written, counts, a table made to fail). Each call opens its own connection to url
 * (ac_db_connect, AC_DB_PLAIN) and closes it, so it sees what others committed. Never build q
 * from anything but the test's own constants. */
#ifndef AC_TEST_SQL_H
#define AC_TEST_SQL_H

#include <libpq-fe.h>

/* A new connection to url; fails the test when it cannot connect. The caller PQfinish()es it. */
PGconn *ac_test_connect(const char *url);

/* Run q (one or more statements); fails the test, naming q and PostgreSQL's message, unless it
 * succeeds. */
void ac_test_sql(const char *url, const char *q);

/* Run q; 1 when it succeeds, 0 when PostgreSQL refuses it. */
int ac_test_sql_ok(const char *url, const char *q);

/* The first column of the first row of q as an integer, or -1 when q returns no row. Fails the
 * test when q fails. */
long long ac_test_sql_int(const char *url, const char *q);

/* The first column of the first row of q, run with the one text parameter param ($1), as a
 * malloc'd string, or NULL when q returns no row. Fails the test when q fails. */
char *ac_test_sql_text(const char *url, const char *q, const char *param);

#endif
