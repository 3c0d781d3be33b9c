/* ledger/migrations.h -- the sql/ migrations embedded in the binary, and applying them. */
#ifndef AC_MIGRATIONS_H
#define AC_MIGRATIONS_H

#include <libpq-fe.h>

struct ac_migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct ac_migration ac_migrations[];
extern const unsigned ac_n_migrations;

/* Apply every migration newer than the recorded schema version, each in its own transaction,
 * recorded in ac_schema_version. Concurrent migrators serialise on an advisory lock, so running
 * it twice (or from two processes) is safe. Returns the number applied (>= 0), or -1 with a
 * message in err (and the failing migration rolled back). */
int ac_migrate(PGconn *conn, char *err, size_t errlen);

#endif
