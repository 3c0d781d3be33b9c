/* The route table, top to bottom. */
#include "server/handlers.h"

#define KIB 1024
#define MIB (1024 * 1024)

const struct ac_route ac_routes[] = {
    /* method  pattern                          handler                 auth              body */
    {"GET",  "/healthz",                        ac_h_healthz,           AC_AUTH_NONE,     0},
    {"GET",  "/readyz",                         ac_h_readyz,            AC_AUTH_NONE,     0},
    {"GET",  "/metrics",                        ac_h_metrics,           AC_AUTH_NONE,     0},
    {"GET",  "/.well-known/agentclear/keys",    ac_h_keys,              AC_AUTH_NONE,     0},
    {"POST", "/v1/ledger/assets",               ac_h_assets_post,       AC_AUTH_OPERATOR, 4 * KIB},
    {"GET",  "/v1/ledger/assets/{code}",        ac_h_assets_get,        AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/ledger/accounts",             ac_h_accounts_post,     AC_AUTH_OPERATOR, 4 * MIB},
    {"GET",  "/v1/ledger/accounts/{id}",        ac_h_accounts_get,      AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/ledger/transfers",            ac_h_transfers_post,    AC_AUTH_OPERATOR, 4 * MIB},
    {"GET",  "/v1/ledger/transfers/{id}",       ac_h_transfers_get,     AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/whoami",                      ac_h_whoami,            AC_AUTH_SIGNED,   0},
    {"POST", "/v1/whoami",                      ac_h_whoami,            AC_AUTH_SIGNED,   64 * KIB},
};

const unsigned ac_n_routes = sizeof ac_routes / sizeof ac_routes[0];
