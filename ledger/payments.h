/* ledger/payments.h -- mandates, payments and step-up authorizations through the sequencer.
 *
 * The HTTP thread does everything that needs no shared state: parse, verify the user's or the
 * agent's signature, look the mandate's asset and the payee's category up, and build an
 * operation. The sequencer applies it (AC_CMD_OP) against the state this module owns -- every
 * mandate with its cumulative spend (risk/spend.h), every payment id (idempotency), every step-up
 * authorization with its hold -- re-checking what can have changed (the binding revoked or
 * expired, the mandate revoked, the spend), runs the risk decision (risk/decide.h) at apply time,
 * moves the money (ledger/state.h), appends the evidence record (ledger/evlog.h) and queues the
 * rows, all in the batch's one transaction. Cumulative limits therefore hold under any
 * concurrency: two payments of one mandate are decided one after the other against the spend the
 * first one left.
 *
 * Money: a payment debits the payer's wallet `user:<user>:<asset lowercased>` and credits the
 * payee's `merchant:<merchant>:<asset lowercased>` (ac_wallet_account). ALLOW settles with one
 * transfer; STEP_UP takes a pending transfer (the hold) whose ledger timeout is a little after
 * the challenge's expiry, and a spend hold; confirming posts it, declining or expiry voids it.
 *
 * Ownership and undo: the module's state is changed in place by ops; when a batch fails, the
 * sequencer reloads it from PostgreSQL (load). Readers on HTTP threads see only committed
 * mandates (ac_payments_mandate_brief); everything else they read from the database, which holds
 * exactly what was acknowledged. */
#ifndef AC_PAYMENTS_H
#define AC_PAYMENTS_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "ledger/sequencer.h"
#include "protocol/evidence.h"
#include "protocol/mandate.h"
#include "protocol/stepup.h"
#include "ledger/db.h"
#include "risk/decide.h"
#include "risk/spend.h"

/* Challenge lifetime by default (seconds), and how long after the challenge's expiry the hold's
 * ledger timeout falls (the domain voids it at the expiry itself; the ledger's timeout is the
 * backstop). */
#define AC_STEPUP_TTL_DEFAULT 600
#define AC_STEPUP_TTL_MAX 86400
#define AC_HOLD_GRACE_S 60

struct ac_payments_config {
    int64_t stepup_ttl_s; /* 0: AC_STEPUP_TTL_DEFAULT */
};

struct ac_payments;

/* A new empty state, or NULL when out of memory. */
struct ac_payments *ac_payments_new(const struct ac_payments_config *cfg);
/* Free it (no reader may be inside). Accepts NULL. */
void ac_payments_free(struct ac_payments *p);

/* Register the module's prepared statements (writer and reader), once, before connecting. */
int ac_payments_register_statements(void);

/* The wallet account of a principal for an asset: "user:<id>:<asset lowercased>" (user = 1) or
 * "merchant:<id>:<asset lowercased>". 0, or -1 when it would not be a valid account id (too long):
 * out is then "". */
int ac_wallet_account(int user, const char *id, const char *asset, char out[AC_ID_MAX + 1]);

/* The id of the ledger transfer a payment makes in `role` ("pay" the settlement or the hold,
 * "post", "void"): "pt." + 32 hex digits of SHA-256 over a purpose tag, the payment id and the
 * role. Deterministic, so a retry can never move money twice. */
void ac_payment_transfer_id(const char *payment_id, const char *role, char out[AC_ID_MAX + 1]);

/* ==== readers (any thread) ==================================================================== */

/* What an HTTP thread needs to know of a committed mandate before building a payment. */
struct ac_mandate_brief {
    char iss[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    int revoked; /* as committed (the sequencer decides with the live value) */
};

/* AC_EC_OK with *out, or AC_EC_MANDATE_UNKNOWN. */
enum ac_ec ac_payments_mandate_brief(struct ac_payments *p, const char *id,
                                     struct ac_mandate_brief *out);

/* ==== operations (built on an HTTP thread, applied on the sequencer) ========================== */

enum ac_payop_kind {
    AC_PAYOP_MANDATE = 1,    /* register a mandate */
    AC_PAYOP_MANDATE_REVOKE, /* revoke a mandate */
    AC_PAYOP_PAY,            /* decide (and settle / hold) a payment request */
    AC_PAYOP_ANSWER,         /* the user's confirmation or decline of a step-up */
    AC_PAYOP_REFUND,         /* the payee merchant refunds (part of) a settled payment */
};

/* What a payment ends as. */
enum ac_pay_status {
    AC_PAY_SETTLED = 1, /* money moved */
    AC_PAY_PENDING,     /* held, awaiting the user's confirmation */
    AC_PAY_DECLINED,    /* the user declined, or the confirmation was denied: hold voided */
    AC_PAY_EXPIRED,     /* nobody confirmed in time: hold voided */
    AC_PAY_DENIED,      /* the risk decision said no: nothing moved */
    AC_PAY_FAILED,      /* allowed, but the ledger refused (e.g. exceeds_credits): nothing moved */
};
/* "settled", "pending_confirmation", "declined", "expired", "denied", "failed"; "" otherwise. */
const char *ac_pay_status_name(enum ac_pay_status s);
/* The status named s, or 0. */
enum ac_pay_status ac_pay_status_from_name(const char *s);

/* The verified RFC 9421 request a payment rests on (kept verbatim in the evidence record).
 * Borrowed: must stay valid until the command's done. */
struct ac_pay_signed {
    const char *keyid;
    const uint8_t *base;
    size_t base_len;
    const uint8_t *sig;
    size_t sig_len;
    const uint8_t *body;
    size_t body_len;
};

/* The token leg of a top-up (docs/merchant-api.md, "Token top-ups"): the provider's token account
 * pays the user's token account `tokens` at price version `version` (price: `price_tokens` token
 * base units per `price_fiat` fiat base units, ledger/prices.h), linked with the fiat leg (the
 * payment's own transfer) so that both move or neither does. */
struct ac_topup_leg {
    char token_asset[AC_ASSET_MAX + 1];
    unsigned token_scale;
    int64_t tokens;                  /* > 0 */
    char debit[AC_ID_MAX + 1];       /* merchant:<provider>:<token asset lowercased> */
    char credit[AC_ID_MAX + 1];      /* user:<user>:<token asset lowercased> */
    char transfer_id[AC_ID_MAX + 1]; /* ac_payment_transfer_id(id, "tokens") */
    int64_t version, price_fiat, price_tokens;
    char ref[24]; /* the version as decimal text (the evidence records' ref) */
};

struct ac_pay_request {
    char id[AC_ID_MAX + 1];
    uint8_t digest[32]; /* ac_pay_request_digest() */
    char binding[AC_ID_MAX + 1];
    char mandate[AC_ID_MAX + 1];
    char payee[AC_ID_MAX + 1];
    char category[AC_ID_MAX + 1]; /* the payee's registered category */
    enum ac_op op;
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    int64_t amount;                          /* > 0 */
    char purpose[AC_STEPUP_PURPOSE_SIZE];    /* "" when none */
    char order_digest[AC_STEPUP_ORDER_SIZE]; /* "" when none */
    char debit[AC_ID_MAX + 1];               /* the payer's wallet ("" when it has no valid id) */
    char credit[AC_ID_MAX + 1];              /* the payee's wallet (likewise) */
    char transfer_id[AC_ID_MAX + 1];         /* ac_payment_transfer_id(id, "pay") */
    struct ac_pay_signed sig;
    const struct ac_topup_leg *topup; /* a top-up (op topup): its token leg; NULL otherwise */
};

/* The digest a payment id is bound to (idempotency): SHA-256 over a purpose tag and every field of
 * the request that the decision depends on (binding, mandate, payee, op, asset, amount, purpose,
 * order digest; for a top-up also the token asset and the price version). */
void ac_pay_request_digest(struct ac_pay_request *q);

/* A refund (docs/merchant-api.md): built on the HTTP thread from the merchant's verified request
 * and the committed payment (payee, payer, asset never change once written). */
#define AC_REFUND_REASON_SIZE 256
struct ac_refund_request {
    char id[AC_ID_MAX + 1];
    uint8_t digest[32]; /* ac_refund_request_digest() */
    char payment[AC_ID_MAX + 1];
    char merchant[AC_ID_MAX + 1]; /* the verified signer, the payment's payee */
    char user[AC_ID_MAX + 1];     /* the payment's payer */
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    int64_t amount;                     /* > 0 */
    char reason[AC_REFUND_REASON_SIZE]; /* "" when none */
    char debit[AC_ID_MAX + 1];          /* the merchant's wallet */
    char credit[AC_ID_MAX + 1];         /* the user's wallet */
    char transfer_id[AC_ID_MAX + 1];    /* ac_refund_transfer_id(id) */
    struct ac_pay_signed sig;
};

/* SHA-256 over a purpose tag, the payment, the merchant, the asset, the amount and the reason: the
 * digest a refund id is bound to (same id, same digest: a replay). */
void ac_refund_request_digest(struct ac_refund_request *q);
/* "rt." + 32 hex digits of SHA-256 over a purpose tag and the refund id. */
void ac_refund_transfer_id(const char *refund_id, char out[AC_ID_MAX + 1]);

struct ac_payop {
    enum ac_payop_kind kind;

    /* AC_PAYOP_MANDATE: the parsed mandate, its exact text and signing kid (signature verified) */
    const struct ac_mandate *mandate;
    const char *jws; /* also AC_PAYOP_MANDATE_REVOKE, AC_PAYOP_ANSWER */
    char kid[AC_JWK_THUMBPRINT_SIZE];
    /* AC_PAYOP_MANDATE_REVOKE: the mandate and the revocation's iss (signature verified) */
    char mandate_id[AC_ID_MAX + 1];
    char user[AC_ID_MAX + 1];
    /* AC_PAYOP_PAY */
    const struct ac_pay_request *pay;
    /* AC_PAYOP_ANSWER: the verified, parsed confirmation and the authorization it answers */
    const struct ac_stepup_confirmation *conf;
    /* AC_PAYOP_REFUND */
    const struct ac_refund_request *refund;

    /* ---- outputs (valid when the command's status is AC_EC_OK) ---- */
    enum ac_ec result; /* AC_EC_OK: done (see below); otherwise the refusal, nothing changed */
    int replayed;      /* 1: idempotent replay, nothing written (read the original back) */
    enum ac_pay_status status;        /* PAY, ANSWER: the payment's status afterwards */
    struct ac_risk_decision decision; /* PAY, ANSWER (confirm) */
    enum ac_ec ledger_ec;             /* status FAILED: the ledger's refusal */
    int has_evidence;                 /* an evidence record was appended */
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t at_us;                        /* when it was applied */
    char payment_id[AC_ID_MAX + 1];       /* ANSWER: the payment */
    char transfer_id[AC_ID_MAX + 1];      /* PAY: settle/hold; ANSWER: post/void */
    struct ac_stepup_challenge challenge; /* PAY with status PENDING */
    int64_t refunded;                     /* REFUND: the payment's refunded total afterwards */
};

/* Prepare cmd to run op (AC_CMD_OP, n 1). The caller sets done/cls or uses ac_seq_run(). */
void ac_payments_cmd(struct ac_cmd *cmd, struct ac_payop *op);

/* Apply op inside an AC_CMD_OP (the sequencer's domain is a struct ac_domain with a registry and
 * payments, ledger/domain.h). Refusals (op->result):
 *   MANDATE: AC_EC_MANDATE_EXISTS (same id, other text; same text is a replay), AC_EC_USER_UNKNOWN,
 *     AC_EC_JWS_KEY_UNKNOWN (kid not that user's key);
 *   MANDATE_REVOKE: AC_EC_MANDATE_UNKNOWN, AC_EC_REVOCATION_INVALID (user is not the mandate's),
 *     AC_EC_JWS_KEY_UNKNOWN; already revoked is a replay;
 *   PAY: AC_EC_PAYMENT_EXISTS (same id, other request; same request is a replay),
 *     AC_EC_MANDATE_UNKNOWN, AC_EC_BINDING_UNKNOWN, for a top-up AC_EC_PRICE_VERSION_STALE /
 *     AC_EC_PRICE_VERSION_UNKNOWN (the version is not the provider's current one; nothing is
 *     written); otherwise AC_EC_OK with the decision in status / decision / ledger_ec. A top-up
 *     moves (or holds) its two legs as one linked chain: both or neither;
 *   ANSWER: AC_EC_AUTHORIZATION_UNKNOWN, AC_EC_AUTHORIZATION_MISMATCH (nonce or payment digest),
 *     AC_EC_AUTHORIZATION_EXPIRED, AC_EC_AUTHORIZATION_ALREADY_DECIDED; otherwise AC_EC_OK with
 *     status SETTLED (confirmed), DECLINED (declined, or confirmed but denied: decision says why).
 *   REFUND (payee and currency are the HTTP thread's checks, against the committed payment):
 *     AC_EC_REFUND_EXISTS (same id, other request; same request is a replay),
 *     AC_EC_PAYMENT_UNKNOWN, AC_EC_PAYMENT_NOT_REFUNDABLE (not settled),
 * AC_EC_REFUND_EXCEEDS_PAYMENT (the refunds would exceed the amount), or the ledger's refusal of
 * the transfer (e.g. exceeds_credits: the merchant is short of funds); nothing is written then. A
 * refund never gives the mandate's caps back: they limit what the agent spent, and the spend
 * happened. AC_EC_INTERNAL: out of memory or an evidence failure; the batch then fails as a whole.
 */
void ac_payments_apply(struct ac_payop *op, struct ac_apply *a);

/* ==== the sequencer's hooks (ledger/domain.c calls these) ===================================== */

/* Rebuild everything from the database (writer connection). Returns 0 or -1 (state unchanged). */
int ac_payments_load(struct ac_payments *p, PGconn *c);
/* Queue the batch's aggregated rows (payments, spend). 0 or -1. */
int ac_payments_flush(struct ac_payments *p, struct ac_apply *a);
/* The batch committed (1: publish new mandates) or was abandoned (0). */
void ac_payments_end(struct ac_payments *p, int committed);
/* 1 when ac_payments_end(p, 1) would publish something to readers (a new mandate, a
 * revocation), else 0. */
int ac_payments_pending(const struct ac_payments *p);
/* The earliest step-up expiry (unix µs), INT64_MAX when none is pending. */
int64_t ac_payments_next_deadline(struct ac_payments *p);
/* Expire every step-up whose challenge expired by ac_apply_now(a): void the hold, release the
 * spend, record payment.expire. 0, or -1 (out of memory: the batch fails). */
int ac_payments_tick(struct ac_payments *p, struct ac_apply *a);

/* ==== committed rows (HTTP threads, reader connections) ======================================= */

struct ac_mandate_row {
    char *jws; /* malloc'd */
    char kid[AC_JWK_THUMBPRINT_SIZE];
    int revoked;
    int64_t created_us, revoked_us;
    char *revocation_jws; /* malloc'd or NULL */
    char revocation_kid[AC_JWK_THUMBPRINT_SIZE];
    unsigned scale;        /* of the mandate's asset */
    struct ac_spend spend; /* as of the last batch that changed it */
};
/* ONE_RESULT with *out (clear it later), NO_RESULTS, or an error. */
enum ac_qs ac_payments_read_mandate(PGconn *c, const char *id, struct ac_mandate_row *out);
void ac_mandate_row_clear(struct ac_mandate_row *r);

struct ac_payment_row {
    char id[AC_ID_MAX + 1], mandate[AC_ID_MAX + 1], binding[AC_ID_MAX + 1], user[AC_ID_MAX + 1],
        agent[AC_ID_MAX + 1], payee[AC_ID_MAX + 1];
    enum ac_op op;
    int64_t amount;
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    char purpose[AC_STEPUP_PURPOSE_SIZE], order_digest[AC_STEPUP_ORDER_SIZE];
    enum ac_pay_status status;
    char verdict[16];
    int autonomy;
    char reasons[1024]; /* comma-separated codes */
    char error[64];     /* the ledger's code when failed */
    char transfer_id[AC_ID_MAX + 1], authorization_id[AC_ID_MAX + 1];
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t created_us, updated_us;
    uint8_t request_digest[32];
    int64_t seq;      /* commit order (the pagination cursor) */
    int64_t refunded; /* sum of the payment's refunds */
    /* the step-up, when authorization_id is set */
    char *challenge; /* malloc'd canonical text, or NULL */
    int64_t challenge_exp;
    char authorization_status[16];
};
enum ac_qs ac_payments_read_payment(PGconn *c, const char *id, struct ac_payment_row *out);
void ac_payment_row_clear(struct ac_payment_row *r);

struct ac_authz_row {
    char id[AC_ID_MAX + 1], payment[AC_ID_MAX + 1], user[AC_ID_MAX + 1];
    char *challenge; /* malloc'd canonical text */
    int64_t iat, exp;
    char status[16];                /* pending, confirmed, declined, expired, denied */
    int64_t created_us, decided_us; /* decided_us 0 while pending */
    char transfer_id[AC_ID_MAX + 1];
    char confirmation_kid[AC_JWK_THUMBPRINT_SIZE];
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    enum ac_pay_status payment_status;
};
enum ac_qs ac_payments_read_authz(PGconn *c, const char *id, struct ac_authz_row *out);
void ac_authz_row_clear(struct ac_authz_row *r);

/* A principal's payments, newest first: those with seq < before (0: from the newest), at most
 * limit (1..100) of them into out[] (capacity limit). ONE_RESULT with *n rows (0 when none; clear
 * each), or an error. payee: 1 the merchant's payments (payee), 0 the user's (payer). */
enum ac_qs ac_payments_list(PGconn *c, int payee, const char *principal, int64_t before,
                            unsigned limit, struct ac_payment_row *out, size_t *n);
/* The same, of the principal's top-ups only (op topup; their token legs: ledger/prices.h). */
enum ac_qs ac_payments_list_topups(PGconn *c, int payee, const char *principal, int64_t before,
                                   unsigned limit, struct ac_payment_row *out, size_t *n);

struct ac_refund_row {
    char id[AC_ID_MAX + 1], payment[AC_ID_MAX + 1], merchant[AC_ID_MAX + 1], user[AC_ID_MAX + 1];
    int64_t amount;
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    char reason[AC_REFUND_REASON_SIZE];
    char transfer_id[AC_ID_MAX + 1];
    char keyid[AC_ID_MAX + 1];
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t created_us;
};
/* One refund: ONE_RESULT, NO_RESULTS or an error. */
enum ac_qs ac_payments_read_refund(PGconn *c, const char *id, struct ac_refund_row *out);
/* The refunds of a payment, oldest first, at most cap: ONE_RESULT with *n (maybe 0), or error. */
enum ac_qs ac_payments_list_refunds(PGconn *c, const char *payment, struct ac_refund_row *out,
                                    size_t cap, size_t *n);

/* A principal's wallet: a ledger account named by ac_wallet_account(), with its asset's scale. */
struct ac_wallet_row {
    char id[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    unsigned scale;
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
};
/* Every wallet of user (user 1) or merchant `id`, by account id, at most cap: ONE_RESULT with *n
 * (maybe 0), or an error. */
enum ac_qs ac_payments_list_wallets(PGconn *c, int user, const char *id, struct ac_wallet_row *out,
                                    size_t cap, size_t *n);

/* Counts for logs and tests. */
struct ac_payments_counts {
    size_t mandates, payments, authorizations, pending;
};
void ac_payments_counts(struct ac_payments *p, struct ac_payments_counts *out);

#endif
