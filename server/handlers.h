/* server/handlers.h -- one handler per endpoint (server/h_*.c). */
#ifndef AC_HANDLERS_H
#define AC_HANDLERS_H

#include "server/app.h"
#include "server/http.h"

enum MHD_Result ac_h_healthz(struct ac_req *r);
enum MHD_Result ac_h_readyz(struct ac_req *r);
enum MHD_Result ac_h_metrics(struct ac_req *r);
enum MHD_Result ac_h_keys(struct ac_req *r);
enum MHD_Result ac_h_assets_post(struct ac_req *r);
enum MHD_Result ac_h_assets_get(struct ac_req *r);
enum MHD_Result ac_h_accounts_post(struct ac_req *r);
enum MHD_Result ac_h_accounts_get(struct ac_req *r);
enum MHD_Result ac_h_transfers_post(struct ac_req *r);
enum MHD_Result ac_h_transfers_get(struct ac_req *r);
enum MHD_Result ac_h_whoami(struct ac_req *r);
/* identity (server/h_principals.c, server/h_bindings.c) */
enum MHD_Result ac_h_users_post(struct ac_req *r);
enum MHD_Result ac_h_users_get(struct ac_req *r);
enum MHD_Result ac_h_user_keys_post(struct ac_req *r);
enum MHD_Result ac_h_merchants_post(struct ac_req *r);
enum MHD_Result ac_h_merchants_get(struct ac_req *r);
enum MHD_Result ac_h_merchant_keys_post(struct ac_req *r);
enum MHD_Result ac_h_bindings_post(struct ac_req *r);
enum MHD_Result ac_h_bindings_get(struct ac_req *r);
enum MHD_Result ac_h_binding_revoke(struct ac_req *r);
/* mandates, payments, step-up (server/h_mandates.c, h_payments.c, h_authorizations.c) */
enum MHD_Result ac_h_mandates_post(struct ac_req *r);
enum MHD_Result ac_h_mandates_get(struct ac_req *r);
enum MHD_Result ac_h_mandate_revoke(struct ac_req *r);
enum MHD_Result ac_h_payments_post(struct ac_req *r);
enum MHD_Result ac_h_payments_get(struct ac_req *r);
enum MHD_Result ac_h_refunds_post(struct ac_req *r);
enum MHD_Result ac_h_refunds_get(struct ac_req *r);
enum MHD_Result ac_h_user_payments(struct ac_req *r);
enum MHD_Result ac_h_merchant_payments(struct ac_req *r);
enum MHD_Result ac_h_user_balances(struct ac_req *r);
enum MHD_Result ac_h_merchant_balances(struct ac_req *r);
enum MHD_Result ac_h_tabs_post(struct ac_req *r);
enum MHD_Result ac_h_tabs_get(struct ac_req *r);
enum MHD_Result ac_h_tab_settle(struct ac_req *r);
enum MHD_Result ac_h_tab_close(struct ac_req *r);
enum MHD_Result ac_h_user_tabs(struct ac_req *r);
enum MHD_Result ac_h_merchant_tabs(struct ac_req *r);
enum MHD_Result ac_h_authorizations_get(struct ac_req *r);
enum MHD_Result ac_h_authorization_confirm(struct ac_req *r);
enum MHD_Result ac_h_authorization_decline(struct ac_req *r);
/* token top-ups and merchant prices (server/h_topups.c, server/h_prices.c) */
enum MHD_Result ac_h_prices_put(struct ac_req *r);
enum MHD_Result ac_h_prices_get(struct ac_req *r);
enum MHD_Result ac_h_price_version_get(struct ac_req *r);
enum MHD_Result ac_h_topups_post(struct ac_req *r);
enum MHD_Result ac_h_topups_get(struct ac_req *r);
enum MHD_Result ac_h_user_topups(struct ac_req *r);
enum MHD_Result ac_h_merchant_topups(struct ac_req *r);
/* evidence (server/h_evidence.c) */
enum MHD_Result ac_h_evidence_checkpoint(struct ac_req *r);
enum MHD_Result ac_h_evidence_consistency(struct ac_req *r);
enum MHD_Result ac_h_evidence_get(struct ac_req *r);
enum MHD_Result ac_h_payment_evidence(struct ac_req *r);

/* ---- JSON for ledger objects (server/ledger_json.c) ------------------------------------------- */

/* Flags as an array of names ("debits_must_not_exceed_credits", "linked", "pending", ...). */
json_t *ac_account_flags_json(uint32_t flags);
json_t *ac_transfer_flags_json(uint32_t flags);
/* Parse a flags array (absent = 0). Returns 0, or -1 on an unknown name or a non-array. */
int ac_account_flags_parse(const json_t *arr, uint32_t *flags);
int ac_transfer_flags_parse(const json_t *arr, uint32_t *flags);
/* {"id","asset","owner","flags","debits_pending",... as decimal strings at `scale`} */
json_t *ac_account_json(const struct ac_account *a, unsigned scale);
/* A committed transfer row, amounts at `scale`. */
json_t *ac_transfer_json(const struct ac_transfer_row *t, unsigned scale);
/* The name of a pending state ("pending", "posted", "voided", "expired"), or NULL for NONE. */
const char *ac_pstate_name(enum ac_pstate s);

/* Map a database status to a reply: SOFT/HARD errors answer 503 db_unavailable / 500. */
enum MHD_Result ac_reply_db_error(struct ac_req *r, int qs);

#endif
