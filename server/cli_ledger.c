/* agentclear migrate [--database-url=...]
 * agentclear ledger check [--database-url=...]
 *   For every asset: posted debits = posted credits and pending debits = pending credits; every
 *   account's balances equal what its transfers imply; no flagged account overdrawn; every
 *   transfer names existing accounts of its asset; every post/void matches its pending transfer;
 *   every payment names an existing mandate (sql/0016: no foreign key, the sequencer's guarantee).
 *   Prints each violation; exits 0 when clean, 1 on any violation, 2 when it cannot check. */
#include <stdio.h>
#include <string.h>

#include "ledger/db.h"
#include "server/cli.h"
#include "server/config.h"

static int load_url(int argc, char **argv, char *url, size_t cap)
{
    struct ac_config cfg;
    char err[256];
    if (ac_config_load(&cfg, argc, argv, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(url, cap, "%s", cfg.database_url);
    return 0;
}

int ac_cli_migrate(int argc, char **argv)
{
    char url[1024];
    if (load_url(argc, argv, url, sizeof url)) return 2;
    int n = ac_migrate_url(url);
    if (n < 0) return 1;
    printf("migrate: schema up to date (%d applied)\n", n);
    return 0;
}

static const struct {
    const char *what;
    const char *sql; /* each row is one violation, described by its text columns */
} checks[] = {
    {"asset totals balance",
     "select asset, 'posted debits ' || sum(debits_posted) || ' <> posted credits ' || "
     "sum(credits_posted) || ', pending debits ' || sum(debits_pending) || ' vs pending credits ' "
     "|| sum(credits_pending) from ac_accounts group by asset having sum(debits_posted) <> "
     "sum(credits_posted) or sum(debits_pending) <> sum(credits_pending)"},
    {"account balances match their transfers",
     "with t as (select debit_account as acct, amount, flags, pstate, true as deb from ac_transfers "
     "union all select credit_account, amount, flags, pstate, false from ac_transfers), "
     "s as (select acct, "
     "coalesce(sum(amount) filter (where deb and flags & 10 = 0), 0) as dpo, "
     "coalesce(sum(amount) filter (where not deb and flags & 10 = 0), 0) as cpo, "
     "coalesce(sum(amount) filter (where deb and flags & 2 <> 0 and pstate = 1), 0) as dp, "
     "coalesce(sum(amount) filter (where not deb and flags & 2 <> 0 and pstate = 1), 0) as cp "
     "from t group by acct) "
     "select a.id, format('stored dp=%s dpo=%s cp=%s cpo=%s, transfers imply dp=%s dpo=%s cp=%s "
     "cpo=%s', a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, "
     "coalesce(s.dp, 0), coalesce(s.dpo, 0), coalesce(s.cp, 0), coalesce(s.cpo, 0)) "
     "from ac_accounts a left join s on s.acct = a.id where "
     "a.debits_pending <> coalesce(s.dp, 0) or a.debits_posted <> coalesce(s.dpo, 0) or "
     "a.credits_pending <> coalesce(s.cp, 0) or a.credits_posted <> coalesce(s.cpo, 0)"},
    {"flagged accounts within their limits",
     "select id, 'debits ' || (debits_pending + debits_posted) || ' exceed credits ' || "
     "credits_posted from ac_accounts where flags & 1 <> 0 and debits_pending + debits_posted > "
     "credits_posted union all select id, 'credits ' || (credits_pending + credits_posted) || "
     "' exceed debits ' || debits_posted from ac_accounts where flags & 2 <> 0 and "
     "credits_pending + credits_posted > debits_posted"},
    {"transfers name existing accounts of their asset",
     "select t.id, 'debit ' || t.debit_account || ', credit ' || t.credit_account || ', asset ' || "
     "t.asset from ac_transfers t left join ac_accounts d on d.id = t.debit_account left join "
     "ac_accounts c on c.id = t.credit_account where d.id is null or c.id is null or "
     "d.asset <> t.asset or c.asset <> t.asset or t.debit_account = t.credit_account"},
    {"post/void transfers match their pending transfer",
     "select x.id, 'references ' || x.pending_id || coalesce(' in state ' || p.pstate, ' (missing)') "
     "from ac_transfers x left join ac_transfers p on p.id = x.pending_id where x.flags & 12 <> 0 "
     "and (p.id is null or p.flags & 2 = 0 or (x.flags & 4 <> 0 and p.pstate <> 2) or "
     "(x.flags & 8 <> 0 and p.pstate <> 3) or x.debit_account <> p.debit_account or "
     "x.credit_account <> p.credit_account or x.amount > p.amount) "
     "union all select p.id, 'pending transfer in state ' || p.pstate || ' has ' || count(x.id) || "
     "' post/void transfers' from ac_transfers p left join ac_transfers x on x.pending_id = p.id "
     "and x.flags & 12 <> 0 where p.flags & 2 <> 0 group by p.id, p.pstate having "
     "(p.pstate in (2, 3) and count(x.id) <> 1) or (p.pstate in (1, 4) and count(x.id) <> 0)"},
    {"payments name existing mandates",
     "select p.id, 'mandate ' || p.mandate_id || ' does not exist' from ac_payments p "
     "left join ac_mandates m on m.id = p.mandate_id where m.id is null"},
};

int ac_cli_ledger(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: agentclear ledger check [--database-url=URL]\n");
        return 2;
    }
    char url[1024], err[512];
    if (load_url(argc - 1, argv + 1, url, sizeof url)) return 2;
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "ledger check: %s", err);
        return 2;
    }
    /* one consistent snapshot for every check */
    PGresult *r = PQexec(c, "begin isolation level repeatable read read only");
    PQclear(r);
    int violations = 0, failed = 0;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        r = PQexec(c, checks[i].sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "ledger check: %s: %s", checks[i].what, PQerrorMessage(c));
            PQclear(r);
            failed = 1;
            break;
        }
        int n = PQntuples(r);
        printf("%-50s %s\n", checks[i].what, n ? "VIOLATED" : "ok");
        for (int k = 0; k < n && k < 20; k++)
            printf("  %s: %s\n", PQgetvalue(r, k, 0), PQgetvalue(r, k, 1));
        if (n > 20) printf("  ... and %d more\n", n - 20);
        violations += n;
        PQclear(r);
    }
    r = PQexec(c, "select (select count(*) from ac_accounts), (select count(*) from ac_transfers)");
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        printf("checked %s accounts, %s transfers: %s\n", PQgetvalue(r, 0, 0),
               PQgetvalue(r, 0, 1), failed ? "INCOMPLETE" : violations ? "VIOLATIONS FOUND" : "clean");
    PQclear(r);
    PQfinish(c);
    return failed ? 2 : violations ? 1 : 0;
}
