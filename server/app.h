/* server/app.h -- the process-wide context shared by handlers. */
#ifndef AC_APP_H
#define AC_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include <libpq-fe.h>

#include "keys/resolved.h"
#include "ledger/sequencer.h"
#include "server/config.h"

struct ac_app;
struct ac_registry;
struct ac_domain;
struct ac_payments;
struct ac_evread;
struct ac_idem_table;

/* A small pool of reader connections for the HTTP workers. */
struct ac_pool;
struct ac_pool *ac_pool_new(const char *url, unsigned size);
void ac_pool_free(struct ac_pool *p);
/* A statement (a static string, e.g. a SET) run on every new connection of the pool. */
void ac_pool_set_session(struct ac_pool *p, const char *sql);
/* Take a usable connection, reconnecting a broken one; NULL when the database is unreachable
 * (then the caller answers 503 db_unavailable). */
PGconn *ac_pool_get(struct ac_pool *p);
/* Give it back. broken=1 when a call on it failed with a connection error. */
void ac_pool_put(struct ac_pool *p, PGconn *c, int broken);
/* For this thread only: every ac_pool_get returns c (and ac_pool_put of it does nothing) until
 * ac_pool_override(NULL). The idempotency layer renders an answer on the sequencer thread inside
 * the batch's open transaction this way (server/idem.h). */
void ac_pool_override(PGconn *c);

/* Asset scale cache (assets are immutable once created). */
struct ac_assets;
struct ac_assets *ac_assets_new(void);
void ac_assets_free(struct ac_assets *a);
/* Scale of an asset: from the cache, else from the database. Returns AC_EC_OK,
 * AC_EC_ASSET_UNKNOWN or AC_EC_DB_UNAVAILABLE. */
enum ac_ec ac_assets_scale(struct ac_app *app, const char *code, unsigned *scale);
void ac_assets_remember(struct ac_assets *a, const char *code, unsigned scale);

#define AC_STATUS_SLOTS 16
struct ac_route_stats {
    _Atomic uint64_t by_status[AC_STATUS_SLOTS]; /* see ac_status_slot() */
    struct ac_hist seconds;
};

struct ac_app {
    struct ac_config cfg;
    struct ac_sequencer *seq;
    struct ac_pool *pool;
    /* The replay cache's inserts (server/authn.c): connections with asynchronous commit, see
     * docs/identity.md "Nonces and durability". NULL: use pool. */
    struct ac_pool *nonce_pool;
    struct ac_assets *assets;
    struct ac_keyring *keyring; /* server signing keys (keys/keyring.h); NULL: none configured */
    /* Signed requests (server/authn.h): the keyid resolver (the identity registry; NULL: every
     * signed route answers sig_key_unknown) and the verifier's state (replay cache, windows),
     * made by ac_daemon_start() when NULL; the owner frees it with ac_authn_free() after
     * ac_daemon_stop(). */
    ac_key_resolve_fn resolve;
    void *resolve_cls;
    struct ac_authn *authn;
    struct ac_registry *registry; /* identity: principals, keys, bindings (keys/registry.h) */
    struct ac_domain *domain;     /* the sequencer's state beyond the ledger (ledger/domain.h) */
    struct ac_payments *payments; /* mandates, payments, step-up (ledger/payments.h) */
    struct ac_evread *evread;     /* evidence proofs' leaf cache (ledger/evread.h); NULL: none */
    struct ac_idem_table *idem;   /* Idempotency-Keys in flight (server/idem.h); NULL: none */
    struct ac_route_stats *route_stats; /* one per route, plus one for "unmatched" at the end */
    _Atomic uint64_t inflight;
};

/* Slot of a status code in ac_route_stats.by_status, and back. */
unsigned ac_status_slot(unsigned status);
unsigned ac_slot_status(unsigned slot);

#endif
