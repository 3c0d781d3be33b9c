/* protocol/evcheck.h -- the auditor's per-record checks beyond the chain and the tree
 * (protocol/replay.h does those): with the documents and user keys of an export, every record's
 * referenced documents are present (SHA-256 match), every user-signed JWS (binding, mandate,
 * revocation, confirmation) verifies with a key registered to the record's user and names what
 * the record says (binding id, user, agent), a voucher verifies with the binding's agent key,
 * every RFC 9421 request signature verifies over the verbatim base with the agent key of the
 * record's binding (content-digest against a kept body; for payment.deny a failing signature is
 * counted, not a failure), and every transfer is applied to per-account balances following the
 * ledger's rules (ledger/state.h): plain transfers post, pending ones hold, post_pending and
 * void_pending resolve the hold they name, a hold recorded with a timeout expires (its amount is
 * released) before the first record whose time is at or past record time + timeout, as the
 * sequencer expires holds at the start of the batch whose records carry that time.
 *
 * Accounts: every account a transfer touches must have been created by a ledger.account record
 * earlier in the log, once, with the transfer's asset; its flags are enforced after every transfer
 * (debits_must_not_exceed_credits: debits_pending + debits_posted <= credits_posted, and the
 * converse), so a log in which a wallet spends money no record gave it fails.
 *
 * Each document's signature is verified once (documents are fixed by their hash); a binding's
 * agent key is imported once. Pure: no I/O. */
#ifndef AC_EVCHECK_H
#define AC_EVCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/amount.h"
#include "protocol/evidence.h"

struct ac_evcheck;

struct ac_evcheck *ac_evcheck_new(void);
void ac_evcheck_free(struct ac_evcheck *ck);

/* Add a document (compact JWS text, or any document a docref may name). Returns 0, or -1 with a
 * reason (OOM). Duplicates are ignored. */
int ac_evcheck_document(struct ac_evcheck *ck, const uint8_t *doc, size_t len, char *why,
                        size_t whylen);
/* Add a user's public key (JWK text). Returns 0, or -1 with a reason (not a public JWK, a key
 * already registered to another user). */
int ac_evcheck_user_key(struct ac_evcheck *ck, const char *user, const char *jwk, size_t len,
                        char *why, size_t whylen);

/* Check one record (already decoded and structurally verified) and apply its transfers. Returns
 * 0, or -1 with the first failure in why. */
int ac_evcheck_record(struct ac_evcheck *ck, const struct ac_ev_record *r, char *why,
                      size_t whylen);

/* A document of the export by its SHA-256 (docref hash): its text (NUL-terminated, *len bytes),
 * or NULL when the export does not have it. Borrowed from ck. */
const char *ac_evcheck_doc(const struct ac_evcheck *ck, const uint8_t hash[AC_EV_HASH_LEN],
                           size_t *len);

struct ac_binding_doc;
/* The parsed binding document a record's binding docref names, once ac_evcheck_record accepted
 * that record (NULL before, or when the record has no binding). Borrowed from ck. */
const struct ac_binding_doc *ac_evcheck_binding(const struct ac_evcheck *ck,
                                                const uint8_t hash[AC_EV_HASH_LEN]);

struct ac_evcheck_stats {
    uint64_t documents_verified;  /* distinct JWS verified */
    uint64_t requests_verified;   /* request signatures verified */
    uint64_t requests_unverified; /* requests without an agent key (no binding, or a payee
                                   * merchant's tab settle/close): structure only */
    uint64_t denials_unsigned;    /* payment.deny records whose signature did not verify */
    uint64_t transfers;
    uint64_t vouchers_verified; /* tab vouchers verified with the binding's agent key */
    uint64_t accounts_created; /* by ledger.account records */
    uint64_t holds_expired;    /* holds released by their recorded timeout */
};
void ac_evcheck_stats(const struct ac_evcheck *ck, struct ac_evcheck_stats *out);

/* Balances recomputed from the records' transfers. */
struct ac_evcheck_account {
    char id[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    uint32_t flags; /* AC_AF_* bits of its ledger.account record */
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
    uint64_t transfers;  /* recorded transfers that touch it */
    uint64_t open_holds; /* pending transfers not yet posted, voided or expired in the records */
};
/* The accounts, in creation order; *n their count. */
const struct ac_evcheck_account *ac_evcheck_accounts(const struct ac_evcheck *ck, size_t *n);
/* The account id, or NULL when no record created it. Borrowed from ck. */
const struct ac_evcheck_account *ac_evcheck_account(const struct ac_evcheck *ck, const char *id);

/* The recorded transfers, in record order. */
struct ac_evcheck_transfer {
    uint64_t seq; /* the record */
    char id[AC_ID_MAX + 1], debit[AC_ID_MAX + 1], credit[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    char pending_id[AC_ID_MAX + 1]; /* "" when none */
    int64_t amount;
    uint32_t flags;
    uint32_t timeout_s;
    uint16_t code;
};
const struct ac_evcheck_transfer *ac_evcheck_transfers(const struct ac_evcheck *ck, size_t *n);

#endif
