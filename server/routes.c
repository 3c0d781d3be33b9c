/* The route table, top to bottom. */
#include "server/handlers.h"
#include "server/idem.h"

#define KIB 1024
#define MIB (1024 * 1024)
/* the route takes an Idempotency-Key (server/idem.h): every POST with an effect */
#define IDEM AC_ROUTE_IDEMPOTENT
/* a signed request whose effect is one sequencer command: its nonce is recorded with it */
#define SEQ_NONCE (AC_ROUTE_IDEMPOTENT | AC_ROUTE_NONCE_WITH_EFFECT)

/* The flags column is left out where it is 0. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

const struct ac_route ac_routes[] = {
    /* method  pattern                          handler                 auth              body, flags */
    {"GET",  "/healthz",                        ac_h_healthz,           AC_AUTH_NONE,     0},
    {"GET",  "/readyz",                         ac_h_readyz,            AC_AUTH_NONE,     0},
    {"GET",  "/metrics",                        ac_h_metrics,           AC_AUTH_NONE,     0},
    {"GET",  "/.well-known/agentclear/keys",    ac_h_keys,              AC_AUTH_NONE,     0},
    {"POST", "/v1/ledger/assets",               ac_h_assets_post,       AC_AUTH_OPERATOR, 4 * KIB, IDEM},
    {"GET",  "/v1/ledger/assets/{code}",        ac_h_assets_get,        AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/ledger/accounts",             ac_h_accounts_post,     AC_AUTH_OPERATOR, 4 * MIB, IDEM},
    {"GET",  "/v1/ledger/accounts/{id}",        ac_h_accounts_get,      AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/ledger/transfers",            ac_h_transfers_post,    AC_AUTH_OPERATOR, 4 * MIB, IDEM},
    {"GET",  "/v1/ledger/transfers/{id}",       ac_h_transfers_get,     AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/whoami",                      ac_h_whoami,            AC_AUTH_SIGNED,   0},
    {"POST", "/v1/whoami",                      ac_h_whoami,            AC_AUTH_SIGNED,   64 * KIB},
    {"POST", "/v1/users",                       ac_h_users_post,        AC_AUTH_OPERATOR, 96 * KIB, IDEM},
    {"GET",  "/v1/users/{id}",                  ac_h_users_get,         AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/users/{id}/keys",             ac_h_user_keys_post,    AC_AUTH_OPERATOR, 8 * KIB, IDEM},
    {"POST", "/v1/merchants",                   ac_h_merchants_post,    AC_AUTH_OPERATOR, 96 * KIB, IDEM},
    {"GET",  "/v1/merchants/{id}",              ac_h_merchants_get,     AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/merchants/{id}/keys",         ac_h_merchant_keys_post, AC_AUTH_OPERATOR, 8 * KIB, IDEM},
    /* bindings: the user's signature is the authority, no operator token */
    {"POST", "/v1/bindings",                    ac_h_bindings_post,     AC_AUTH_NONE,     96 * KIB, IDEM},
    {"GET",  "/v1/bindings/{id}",               ac_h_bindings_get,      AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/bindings/{id}/revoke",        ac_h_binding_revoke,    AC_AUTH_NONE,     96 * KIB, IDEM},
    /* mandates: the user's signature is the authority; reading one is the operator's */
    {"POST", "/v1/mandates",                    ac_h_mandates_post,     AC_AUTH_NONE,     96 * KIB, IDEM},
    {"GET",  "/v1/mandates/{id}",               ac_h_mandates_get,      AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/mandates/{id}/revoke",        ac_h_mandate_revoke,    AC_AUTH_NONE,     96 * KIB, IDEM},
    /* payments: signed by the agent */
    {"POST", "/v1/payments",                    ac_h_payments_post,     AC_AUTH_AGENT,    8 * KIB, SEQ_NONCE},
    {"GET",  "/v1/payments/{id}",               ac_h_payments_get,      AC_AUTH_OPERATOR, 0},
    /* refunds: signed by the payment's payee merchant; listing them is the operator's */
    {"POST", "/v1/payments/{id}/refunds",       ac_h_refunds_post,      AC_AUTH_MERCHANT, 8 * KIB, SEQ_NONCE},
    {"GET",  "/v1/payments/{id}/refunds",       ac_h_refunds_get,       AC_AUTH_OPERATOR, 0},
    /* reading a principal's payments and balances (operator) */
    {"GET",  "/v1/users/{id}/payments",         ac_h_user_payments,     AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/merchants/{id}/payments",     ac_h_merchant_payments, AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/users/{id}/balances",         ac_h_user_balances,     AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/merchants/{id}/balances",     ac_h_merchant_balances, AC_AUTH_OPERATOR, 0},
    /* micropayment tabs: opened by the agent, settled and closed by the payee with the agent's
     * vouchers; reading them is the operator's */
    {"POST", "/v1/tabs",                        ac_h_tabs_post,         AC_AUTH_AGENT,    8 * KIB, SEQ_NONCE},
    {"GET",  "/v1/tabs/{id}",                   ac_h_tabs_get,          AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/tabs/{id}/settle",            ac_h_tab_settle,        AC_AUTH_MERCHANT, 8 * KIB, SEQ_NONCE},
    {"POST", "/v1/tabs/{id}/close",             ac_h_tab_close,         AC_AUTH_MERCHANT, 8 * KIB, SEQ_NONCE},
    {"GET",  "/v1/users/{id}/tabs",             ac_h_user_tabs,         AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/merchants/{id}/tabs",         ac_h_merchant_tabs,     AC_AUTH_OPERATOR, 0},
    /* step-up: the id (128 random bits) is the capability to read; the user's signature decides */
    {"GET",  "/v1/authorizations/{id}",         ac_h_authorizations_get, AC_AUTH_NONE,    0},
    {"POST", "/v1/authorizations/{id}/confirm", ac_h_authorization_confirm, AC_AUTH_NONE, 96 * KIB, IDEM},
    {"POST", "/v1/authorizations/{id}/decline", ac_h_authorization_decline, AC_AUTH_NONE, 96 * KIB, IDEM},
    /* token top-ups: prices signed by their merchant, top-ups by the agent; reading: operator */
    {"PUT",  "/v1/merchants/{id}/prices",       ac_h_prices_put,        AC_AUTH_MERCHANT, 64 * KIB, SEQ_NONCE},
    {"GET",  "/v1/merchants/{id}/prices",       ac_h_prices_get,        AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/merchants/{id}/prices/{version}", ac_h_price_version_get, AC_AUTH_OPERATOR, 0},
    {"POST", "/v1/topups",                      ac_h_topups_post,       AC_AUTH_AGENT,    8 * KIB, SEQ_NONCE},
    {"GET",  "/v1/topups/{id}",                 ac_h_topups_get,        AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/users/{id}/topups",           ac_h_user_topups,       AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/merchants/{id}/topups",       ac_h_merchant_topups,   AC_AUTH_OPERATOR, 0},
    /* evidence: checkpoints and consistency proofs are public (hashes and a count); records and
     * dispute bundles hold personal data: operator only (docs/evidence.md, "Who may read") */
    {"GET",  "/v1/evidence/checkpoint",         ac_h_evidence_checkpoint, AC_AUTH_NONE,   0},
    {"GET",  "/v1/evidence/checkpoint/{size}",  ac_h_evidence_checkpoint, AC_AUTH_NONE,   0},
    {"GET",  "/v1/evidence/consistency",        ac_h_evidence_consistency, AC_AUTH_NONE,  0},
    {"GET",  "/v1/evidence/{seq}",              ac_h_evidence_get,      AC_AUTH_OPERATOR, 0},
    {"GET",  "/v1/payments/{id}/evidence",      ac_h_payment_evidence,  AC_AUTH_OPERATOR, 0},
};

const unsigned ac_n_routes = sizeof ac_routes / sizeof ac_routes[0];
