/* ledger/tabs.h -- micropayment tabs through the sequencer (docs/merchant-api.md, "Tabs").
 *
 * A tab is a hold the agent opens under a micropay mandate for one payee: the sequencer decides
 * it exactly like a payment (binding, mandate, risk: ledger/payments_int.h) with op "micropay"
 * and the hold as the amount, and on ALLOW takes a pending ledger transfer user wallet ->
 * merchant wallet for the hold and a spend hold on the mandate (it counts against every cap from
 * then on). A STEP_UP or DENY verdict, or a ledger refusal, refuses the tab (recorded tab.deny).
 *
 * The agent then signs cumulative vouchers (protocol/voucher.h) that the merchant keeps. Settling
 * the highest one posts the difference to what was settled before: the current hold is posted
 * partially (which releases the rest, ledger/state.h) and, in the same linked chain, a new hold
 * for what remains is taken (hold transfer n + 1), so the tab keeps reserving exactly
 * hold - settled. A voucher that reaches the hold posts it whole and ends the tab (closed).
 * Closing posts the final voucher (if any) and voids the rest; at the tab's expiry the sequencer
 * voids the rest by itself (the deadline hook). At close or expiry the mandate's spend hold ends:
 * what was settled becomes spent, the rest is released (risk/spend.h ac_spend_split).
 *
 * Transfer ids are deterministic ("tt." + 32 hex digits of SHA-256 over a purpose tag, the tab,
 * the role and the hold's number), so nothing can move twice.
 *
 * Ownership and undo as in ledger/payments.h: the state is the sequencer's; a failed batch makes
 * the sequencer reload it from PostgreSQL. HTTP threads read committed tabs from the database. */
#ifndef AC_TABS_H
#define AC_TABS_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "ledger/payments.h"
#include "ledger/sequencer.h"
#include "protocol/evidence.h"
#include "protocol/voucher.h"
#include "risk/decide.h"

#define AC_TAB_TTL_MAX (30LL * 86400) /* a tab lives at most 30 days */

struct ac_tabs;

/* A new empty state, or NULL when out of memory. */
struct ac_tabs *ac_tabs_new(void);
void ac_tabs_free(struct ac_tabs *t);

/* Register the module's prepared statements (writer and reader), once, before connecting. */
int ac_tabs_register_statements(void);

enum ac_tab_status {
    AC_TAB_OPEN = 1, /* holding hold - settled */
    AC_TAB_CLOSED,   /* closed by the payee, or settled up to the hold */
    AC_TAB_EXPIRED,  /* the rest was voided at expiry */
    AC_TAB_DENIED,   /* the risk decision was not ALLOW: nothing held */
    AC_TAB_FAILED,   /* allowed, but the ledger refused the hold (e.g. exceeds_credits) */
};
/* "open", "closed", "expired", "denied", "failed"; "" otherwise. */
const char *ac_tab_status_name(enum ac_tab_status s);
/* The status named s, or 0. */
enum ac_tab_status ac_tab_status_from_name(const char *s);

/* The id of a tab's ledger transfer in `role` ("hold", "post", "void") for hold number n. */
void ac_tab_transfer_id(const char *tab, const char *role, uint32_t n, char out[AC_ID_MAX + 1]);

/* ==== operations (built on an HTTP thread, applied on the sequencer) ========================== */

/* POST /v1/tabs, from the agent's verified request. */
struct ac_tab_open_request {
    char id[AC_ID_MAX + 1];
    uint8_t digest[32]; /* ac_tab_open_digest() */
    char binding[AC_ID_MAX + 1];
    char mandate[AC_ID_MAX + 1];
    char payee[AC_ID_MAX + 1];
    char category[AC_ID_MAX + 1]; /* the payee's registered category */
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    int64_t hold;                                     /* > 0 */
    int64_t ttl_s;                                    /* 1..AC_TAB_TTL_MAX */
    char debit[AC_ID_MAX + 1], credit[AC_ID_MAX + 1]; /* the wallets (ac_wallet_account) */
    struct ac_pay_signed sig;
};
/* SHA-256 over a purpose tag, binding, mandate, payee, asset, hold and ttl. */
void ac_tab_open_digest(struct ac_tab_open_request *q);

/* POST /v1/tabs/{id}/settle and /close, from the payee merchant's verified request. The voucher's
 * signature was verified on the HTTP thread against the tab's bound agent key. */
struct ac_tab_settle_request {
    char tab[AC_ID_MAX + 1];
    char merchant[AC_ID_MAX + 1]; /* the verified signer */
    int close;                    /* 1: close */
    int has_voucher;              /* settle: always; close: optional */
    struct ac_voucher v;
    const char *jws; /* the voucher text (borrowed) */
    uint8_t jws_hash[32];
    struct ac_pay_signed sig;
};

enum ac_tabop_kind { AC_TABOP_OPEN = 1, AC_TABOP_SETTLE };

struct ac_tabop {
    enum ac_tabop_kind kind;
    const struct ac_tab_open_request *open;
    const struct ac_tab_settle_request *settle;

    /* ---- outputs (valid when the command's status is AC_EC_OK) ---- */
    enum ac_ec result;         /* AC_EC_OK, or the refusal (nothing changed) */
    int replayed;              /* OPEN: same id, same request: nothing written (read it back) */
    enum ac_tab_status status; /* the tab's status afterwards */
    struct ac_risk_decision decision; /* OPEN */
    enum ac_ec ledger_ec;             /* OPEN with status FAILED */
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t at_us;
    int64_t expires_us;
    int64_t settled;  /* the tab's settled total afterwards */
    int64_t last_seq; /* the last settled voucher's sequence */
    int64_t amount;   /* SETTLE: what this step posted */
    int64_t released; /* SETTLE: what this step voided (close) */
    char post_id[AC_ID_MAX + 1], hold_id[AC_ID_MAX + 1], void_id[AC_ID_MAX + 1];
};

/* Prepare cmd to run op (AC_CMD_OP, n 1). */
void ac_tabs_cmd(struct ac_cmd *cmd, struct ac_tabop *op);

/* Apply op inside an AC_CMD_OP (the domain's tabs, payments and registry). Refusals:
 *   OPEN: AC_EC_TAB_EXISTS (same id, other request; same request is a replay),
 *     AC_EC_MANDATE_UNKNOWN, AC_EC_BINDING_UNKNOWN; otherwise AC_EC_OK with status OPEN, DENIED
 *     (decision says why) or FAILED (ledger_ec);
 *   SETTLE: AC_EC_TAB_UNKNOWN, AC_EC_TAB_NOT_PAYEE, AC_EC_TAB_NOT_OPEN (denied or failed at
 *     open), AC_EC_TAB_CLOSED, AC_EC_TAB_EXPIRED, AC_EC_VOUCHER_TAB_MISMATCH, AC_EC_BINDING_REVOKED
 *     (the agent's binding was revoked: its vouchers are no longer honoured),
 *     AC_EC_VOUCHER_REPLAYED (a voucher settled before: same sequence, same text),
 *     AC_EC_VOUCHER_NOT_MONOTONIC (sequence not above the last settled, or cumulative not above
 *     the settled total), AC_EC_VOUCHER_EXCEEDS_HOLD; a settle without a voucher is
 *     AC_EC_VOUCHER_INVALID. AC_EC_INTERNAL: out of memory or an evidence failure (the batch
 *     fails as a whole). */
void ac_tabs_apply(struct ac_tabop *op, struct ac_apply *a);

/* ==== the sequencer's hooks (ledger/domain.c) ================================================= */

int ac_tabs_load(struct ac_tabs *t, PGconn *c);
void ac_tabs_end(struct ac_tabs *t, int committed);
/* The earliest expiry of an open tab (unix µs), INT64_MAX when none. */
int64_t ac_tabs_next_deadline(struct ac_tabs *t);
/* Expire every open tab whose expiry passed by ac_apply_now(a): void the rest, end the spend
 * hold, record tab.expire. 0, or -1 (out of memory: the batch fails). */
int ac_tabs_tick(struct ac_tabs *t, struct ac_apply *a);

struct ac_tabs_counts {
    size_t tabs, open;
};
void ac_tabs_counts(struct ac_tabs *t, struct ac_tabs_counts *out);

/* ==== committed rows (HTTP threads, reader connections) ======================================= */

struct ac_tab_row {
    char id[AC_ID_MAX + 1], mandate[AC_ID_MAX + 1], binding[AC_ID_MAX + 1], user[AC_ID_MAX + 1],
        agent[AC_ID_MAX + 1], payee[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    int64_t hold, ttl_s, expires_us, settled, last_seq;
    enum ac_tab_status status;
    char verdict[16];
    int autonomy;
    char reasons[1024];
    char error[64];
    char hold_transfer_id[AC_ID_MAX + 1];
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t created_us, updated_us, ended_us;
    int64_t seq; /* commit order (the pagination cursor) */
};
/* ONE_RESULT, NO_RESULTS or an error. */
enum ac_qs ac_tabs_read(PGconn *c, const char *id, struct ac_tab_row *out);
/* A principal's tabs, newest first, seq < before (0: from the newest), at most limit (1..101):
 * ONE_RESULT with *n (maybe 0), or an error. payee: 1 the merchant's, 0 the user's. */
enum ac_qs ac_tabs_list(PGconn *c, int payee, const char *principal, int64_t before, unsigned limit,
                        struct ac_tab_row *out, size_t *n);

struct ac_tab_settlement_row {
    char kind[8];
    int64_t voucher_seq; /* 0 when none */
    int64_t cumulative, amount, released;
    char post_id[AC_ID_MAX + 1], hold_id[AC_ID_MAX + 1], void_id[AC_ID_MAX + 1];
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t created_us;
};
/* The last `cap` settlements of a tab, oldest first: ONE_RESULT with *n, or an error. */
enum ac_qs ac_tabs_settlements(PGconn *c, const char *tab, struct ac_tab_settlement_row *out,
                               size_t cap, size_t *n);

#endif
