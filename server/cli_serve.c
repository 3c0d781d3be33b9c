/* agentclear serve [--database-url=... --listen=host:port --operator-token=... ...]
 * Migrates, starts the sequencer (which takes the writer lease or stands by) and the HTTP
 * daemon; SIGINT/SIGTERM stop both cleanly. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ledger/db.h"
#include "keys/keyring.h"
#include "keys/registry.h"
#include "ledger/domain.h"
#include "ledger/idempotency.h"
#include "ledger/evread.h"
#include "ledger/migrations.h"
#include "ledger/payments.h"
#include "ledger/tabs.h"
#include "ledger/prices.h"
#include "server/authn.h"
#include "server/cli.h"
#include "server/idem.h"
#include "server/daemon.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int ac_migrate_url(const char *url)
{
    char err[512];
    PGconn *c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "migrate: %s", err);
        return -1;
    }
    int n = ac_migrate(c, err, sizeof err);
    PQfinish(c);
    if (n < 0) {
        fprintf(stderr, "migrate: %s", err);
        return -1;
    }
    if (n > 0) fprintf(stderr, "migrate: %d migration(s) applied\n", n);
    return n;
}

int ac_cli_serve(int argc, char **argv)
{
    struct ac_app app;
    memset(&app, 0, sizeof app);
    char err[512];
    if (ac_config_load(&app.cfg, argc, argv, err, sizeof err)) {
        fprintf(stderr, "serve: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (app.cfg.keys_dir[0]) {
        app.keyring = ac_keyring_new();
        int nk =
            app.keyring ? ac_keyring_load_dir(app.keyring, app.cfg.keys_dir, err, sizeof err) : -1;
        if (nk < 0) {
            fprintf(stderr, "serve: %s\n", app.keyring ? err : "out of memory");
            ac_keyring_free(app.keyring);
            return 1;
        }
        fprintf(stderr, "serve: %d signing key(s) from %s%s\n", nk, app.cfg.keys_dir,
                ac_keyring_current(app.keyring, (int64_t)time(NULL)) ? "" : "; none is valid now");
    }
    /* migrate first; a database that is not up yet is waited for (bounded) */
    int tries = 0;
    while (ac_migrate_url(app.cfg.database_url) < 0) {
        if (++tries >= 30) return 1;
        sleep(1);
    }
    /* the sequencer owns the identity registry (and later modules' state) through one domain;
     * its statements are registered before the sequencer's first connect */
    app.registry = ac_registry_new();
    struct ac_evlog_config evc = {.origin = app.cfg.evidence_origin,
                                  .keys = app.keyring,
                                  .checkpoint_every = app.cfg.checkpoint_every,
                                  .checkpoint_ms = (int64_t)app.cfg.checkpoint_ms};
    struct ac_evlog *evlog = ac_evlog_new(&evc);
    struct ac_payments_config pc = {.stepup_ttl_s = app.cfg.stepup_ttl};
    app.payments = ac_payments_new(&pc);
    struct ac_prices *prices = ac_prices_new();
    /* evidence=off (benchmark-only, refused otherwise by ac_config_load): the domain gets no log */
    struct ac_domain domain = {.registry = app.registry,
                               .evlog = app.cfg.evidence_off ? NULL : evlog,
                               .payments = app.payments,
                               .prices = prices,
                               .tabs = ac_tabs_new()};
    app.domain = &domain;
    if (evlog == NULL) {
        fprintf(stderr, "serve: evidence-origin '%s' is not a valid checkpoint origin\n",
                app.cfg.evidence_origin);
        return 1;
    }
    if (app.cfg.evidence_off)
        fprintf(stderr, "serve: WARNING: evidence=off (benchmark-only): NO evidence records are "
                        "written; never run a production server like this\n");
    const struct ac_server_key *ck =
        app.keyring ? ac_keyring_current(app.keyring, (int64_t)time(NULL)) : NULL;
    if (ck == NULL || ck->alg != AC_SIG_ED25519)
        fprintf(stderr, "serve: WARNING: no current Ed25519 server key (keys-dir): evidence "
                        "records are written but no checkpoint is signed, so no proof can be "
                        "served\n");
    else
        fprintf(stderr, "serve: evidence log %s, checkpoint every %lu records or %lu ms\n",
                app.cfg.evidence_origin, app.cfg.checkpoint_every, app.cfg.checkpoint_ms);
    if (app.registry == NULL || app.payments == NULL || domain.tabs == NULL || prices == NULL ||
        ac_domain_register_statements() != 0 || ac_evread_register_statements() != 0) {
        fprintf(stderr, "serve: out of memory\n");
        return 1;
    }
    /* Idempotency-Keys (server/idem.h): their expiry is a part of the domain; keys in flight */
    struct ac_idem_sweeper sweeper;
    ac_idem_sweeper_init(&sweeper, app.cfg.idem_retention);
    domain.idem = &sweeper;
    struct ac_seq_domain seq_domain = ac_domain_seq(&domain);
    if (ac_idem_register_statements() != 0 ||
        (app.idem = ac_idem_table_new(app.cfg.idem_inflight)) == NULL) {
        fprintf(stderr, "serve: cannot set up idempotency keys\n");
        return 1;
    }
    /* the verifier before the sequencer: its replay cache is loaded by the sequencer on becoming
     * leader (ledger/sequencer.h, struct ac_seq_config.nonces) */
    app.pool = ac_pool_new(app.cfg.database_url, app.cfg.db_pool);
    app.nonce_pool = ac_pool_new(app.cfg.database_url, app.cfg.db_pool);
    if (app.nonce_pool) ac_pool_set_session(app.nonce_pool, "set synchronous_commit = off");
    if (app.nonce_pool == NULL || (app.authn = ac_authn_new(&app.cfg)) == NULL ||
        ac_authn_start_writer(app.authn, app.nonce_pool) != 0) {
        fprintf(stderr, "serve: cannot set up the request verifier (sig-skew, nonce-cache)\n");
        return 1;
    }
    struct ac_seq_config sc = {.db_url = app.cfg.database_url,
                               .partition = app.cfg.partition,
                               .max_batch_items = app.cfg.max_batch,
                               .serial = app.cfg.pipeline_off,
                               .domain = &seq_domain,
                               .nonces = ac_authn_nonces(app.authn)};
    app.seq = ac_seq_start(&sc);
    app.assets = ac_assets_new();
    app.evread = ac_evread_new();
    /* signed requests resolve their keyid in the identity registry */
    app.resolve = ac_registry_resolve;
    app.resolve_cls = app.registry;
    if (!app.seq || !app.pool || !app.nonce_pool || !app.assets || !app.evread) {
        fprintf(stderr, "serve: out of memory\n");
        return 1;
    }
    struct MHD_Daemon *d = ac_daemon_start(&app);
    if (d == NULL) {
        fprintf(stderr, "serve: cannot listen on %s:%u\n", app.cfg.listen_host, app.cfg.port);
        ac_seq_stop(app.seq);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "serve: listening on http://%s:%u (%u threads, event loop %s)%s\n",
            app.cfg.listen_host, app.cfg.port, app.cfg.threads,
            app.cfg.event_loop_poll ? "poll" : "epoll",
            app.cfg.operator_token[0] ? "" : "; operator API disabled (no token)");
    while (!stop_flag)
        pause();
    fprintf(stderr, "serve: stopping\n");
    /* Stop the sequencer, which completes (and resumes) every request it holds and refuses later
     * ones (503 not_leader); close the verifier's nonce writer likewise (503 db_unavailable);
     * then stop the daemon, which closes the listening socket and every connection.
     *
     * No MHD_quiesce_daemon() first: with MHD_USE_EPOLL and a thread pool it races the workers'
     * own removal of the listening socket from their epoll sets (libmicrohttpd 0.9.75: neither
     * side holds a lock, and one side's EPOLL_CTL_DEL then fails with ENOENT and MHD_PANIC aborts
     * the process: "Failed to remove listen FD from epoll set", seen in CI). Writes and signed
     * requests that arrive while we stop get the 503s above (reads are still answered); a client
     * retries them with its Idempotency-Key. */
    ac_seq_stop(app.seq);
    ac_authn_close(app.authn); /* resumes every request waiting on a nonce */
    ac_daemon_stop(d);
    ac_seq_free(app.seq);
    ac_authn_free(app.authn); /* its batch writer uses the pools */
    app.authn = NULL;
    ac_pool_free(app.pool);
    ac_pool_free(app.nonce_pool);
    ac_assets_free(app.assets);
    ac_registry_free(app.registry);
    ac_payments_free(app.payments);
    ac_tabs_free(domain.tabs);
    ac_prices_free(prices);
    ac_evlog_free(evlog);
    ac_evread_free(app.evread);
    ac_keyring_free(app.keyring);
    free(app.route_stats);
    ac_idem_table_free(app.idem);
    return 0;
}
