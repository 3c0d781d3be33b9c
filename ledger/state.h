/* ledger/state.h -- the in-memory ledger rules (TigerBeetle semantics), owned by the sequencer.
 *
 * This module is pure: no I/O, no threads, no clock. The sequencer thread is the only caller.
 * It holds every account, an index of every transfer id ever seen (with the fields digest and
 * the outcome, for idempotency), and every pending transfer (for post/void/expiry).
 *
 * Batches and undo. Every mutation is written to an undo log. The sequencer calls
 * ac_state_begin() before applying a batch, applies commands, then either
 *   - ac_state_changes() to learn what to persist, writes and commits it, then ac_state_commit();
 *   - or, if the commit failed, ac_state_rollback() which restores the state exactly as it was at
 *     ac_state_begin() (accounts, balances, transfer index, pending states, expiry queue).
 * A linked chain that fails is undone the same way, to a savepoint taken at the chain's start.
 *
 * Rules (each failure is a per-transfer result; nothing of a failed transfer is applied):
 *   - ids: ac_id_valid(); asset codes: ac_asset_code_valid().
 *   - a transfer has exactly one debit and one credit account, different, both of the transfer's
 *     asset (AC_EC_ACCOUNTS_SAME, AC_EC_ACCOUNT_UNKNOWN, AC_EC_ASSET_MISMATCH).
 *   - amount > 0 (AC_EC_AMOUNT_ZERO), except post/void (see below).
 *   - idempotency: a transfer id already applied with the same fields digest returns the original
 *     result with replayed=1 (amount = the original resolved amount) and changes nothing; with a
 *     different digest -> AC_EC_TRANSFER_EXISTS_DIFFERENT. An id whose earlier attempt failed with
 *     a "sticky" error (EXCEEDS_CREDITS, EXCEEDS_DEBITS, PENDING_EXPIRED) -> AC_EC_TRANSFER_ID_FAILED
 *     whatever the fields. Ids that failed for any other reason were never recorded and may be
 *     reused.
 *   - account flags: DEBITS_MUST_NOT_EXCEED_CREDITS: debits_pending + debits_posted + amount must
 *     stay <= credits_posted, else AC_EC_EXCEEDS_CREDITS. CREDITS_MUST_NOT_EXCEED_DEBITS likewise
 *     (credits_pending + credits_posted + amount <= debits_posted, else AC_EC_EXCEEDS_DEBITS).
 *   - any balance field that would overflow int64 -> AC_EC_BALANCE_OVERFLOW.
 *   - PENDING: moves amount into debits_pending / credits_pending. timeout_s 0 = never expires,
 *     else expires at created_us + timeout_s*1e6. timeout_s on a non-pending transfer ->
 *     AC_EC_TIMEOUT_INVALID.
 *   - POST_PENDING (pending_id set): amount < 0 means "the full pending amount"; 0 < amount <=
 *     pending amount posts that much (partial post), the rest is released; amount > pending ->
 *     AC_EC_PENDING_AMOUNT_EXCEEDED. VOID_PENDING: amount < 0 or == pending amount, releases all.
 *     For both: debit/credit/asset may be "" (taken from the pending transfer) or must equal it
 *     (AC_EC_PENDING_FIELD_MISMATCH). Errors: AC_EC_PENDING_NOT_FOUND (no such id),
 *     AC_EC_PENDING_NOT_PENDING (that transfer was not created with PENDING),
 *     AC_EC_PENDING_ALREADY_POSTED, AC_EC_PENDING_ALREADY_VOIDED, AC_EC_PENDING_EXPIRED (state
 *     expired, or expires_us <= now_us). Post/void are transfers with their own id, recorded like
 *     any other (amount = the amount posted, or the amount released for a void).
 *   - BALANCING_DEBIT / BALANCING_CREDIT (with DEBITS_MUST_NOT_EXCEED_CREDITS / CREDITS_MUST_NOT_
 *     EXCEED_DEBITS on the respective account): amount is the maximum; the transfer moves
 *     min(amount, what the flag allows). If that is 0 -> AC_EC_EXCEEDS_CREDITS / EXCEEDS_DEBITS.
 *   - flag combinations: at most one of PENDING / POST_PENDING / VOID_PENDING; pending_id only
 *     with POST/VOID; balancing not with POST/VOID -> AC_EC_FLAGS_INVALID.
 *   - LINKED: a transfer with LINKED is chained to the next one in the same call; the chain ends at
 *     the first transfer without LINKED. The chain succeeds or fails as one: on the first failure,
 *     everything the chain applied is undone, the failing transfer gets its error, every other
 *     member gets AC_EC_LINKED_EVENT_FAILED. A call whose last transfer has LINKED: every member
 *     of that open chain gets AC_EC_LINKED_CHAIN_OPEN.
 *   - a later transfer in the same call sees the effects of earlier ones (in order).
 */
#ifndef AC_LEDGER_STATE_H
#define AC_LEDGER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/amount.h"
#include "protocol/errors.h"

/* account flags */
#define AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS 0x1u
#define AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS 0x2u
#define AC_AF__ALL 0x3u

/* transfer flags */
#define AC_TF_LINKED 0x01u
#define AC_TF_PENDING 0x02u
#define AC_TF_POST_PENDING 0x04u
#define AC_TF_VOID_PENDING 0x08u
#define AC_TF_BALANCING_DEBIT 0x10u
#define AC_TF_BALANCING_CREDIT 0x20u
#define AC_TF__ALL 0x3fu

/* state of a pending transfer */
enum ac_pstate {
    AC_PS_NONE = 0,    /* not a pending transfer */
    AC_PS_PENDING = 1, /* funds held */
    AC_PS_POSTED = 2,
    AC_PS_VOIDED = 3,
    AC_PS_EXPIRED = 4,
};

struct ac_account {
    char id[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    char owner[AC_ID_MAX + 1]; /* free reference to the owning principal; may be "" */
    uint32_t flags;
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
};

/* A transfer as requested. For post/void, debit/credit/asset may be "" (see rules). */
struct ac_transfer_req {
    char id[AC_ID_MAX + 1];
    char debit[AC_ID_MAX + 1];
    char credit[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    int64_t amount; /* < 0 only for post/void: "the full pending amount" */
    uint32_t flags;
    char pending_id[AC_ID_MAX + 1]; /* "" unless POST_PENDING / VOID_PENDING */
    uint32_t timeout_s;
    uint16_t code; /* free classification (like TigerBeetle's code), part of the digest */
};

/* A transfer row to persist: the resolved fields of a new transfer. */
struct ac_transfer_row {
    char id[AC_ID_MAX + 1];
    char debit[AC_ID_MAX + 1];
    char credit[AC_ID_MAX + 1];
    char asset[AC_ASSET_MAX + 1];
    int64_t amount; /* resolved: balancing -> actual; post -> posted; void -> released */
    uint32_t flags;
    char pending_id[AC_ID_MAX + 1];
    uint32_t timeout_s;
    uint16_t code;
    int64_t created_us;
    enum ac_pstate pstate; /* AC_PS_PENDING for a new pending transfer, else AC_PS_NONE */
    enum ac_ec result;     /* AC_EC_OK, or the sticky failure (then only id, digest, result,
                              created_us are meaningful) */
    uint8_t digest[16];    /* ac_transfer_digest() of the request */
};

struct ac_transfer_result {
    enum ac_ec ec;    /* AC_EC_OK or the reason */
    int replayed;     /* 1: id seen before with the same fields; ec is the original outcome */
    int64_t amount;   /* resolved amount (see ac_transfer_row.amount); 0 on failure */
    int64_t created_us;
};

/* A pending transfer whose state changed in this batch (posted, voided or expired). */
struct ac_pending_change {
    char id[AC_ID_MAX + 1];
    enum ac_pstate pstate;
};

/* What a batch changed, valid until the next begin/commit/rollback. Arrays are in apply order;
 * accounts appear once each with their final values in this batch. */
struct ac_changes {
    const struct ac_account *const *new_accounts; /* created in this batch */
    size_t n_new_accounts;
    const struct ac_account *const *dirty_accounts; /* balances changed (incl. new ones that moved) */
    size_t n_dirty_accounts;
    const struct ac_transfer_row *transfers; /* new transfers, successes and sticky failures */
    size_t n_transfers;
    const struct ac_pending_change *pending_changes;
    size_t n_pending_changes;
};

struct ac_state;

/* New empty state, or NULL on allocation failure. */
struct ac_state *ac_state_new(void);
void ac_state_free(struct ac_state *st);

/* ---- loading (start-up, from PostgreSQL; outside any batch) ----------------------------- */

/* Insert an account as stored. Returns 0, or -1 (duplicate id, invalid, out of memory). */
int ac_state_load_account(struct ac_state *st, const struct ac_account *a);
/* Insert a stored transfer (success or sticky failure) into the index; for a pending transfer
 * (row->pstate != AC_PS_NONE) its current state, and if AC_PS_PENDING its expiry is queued.
 * Balances are NOT touched: accounts are loaded with their stored balances. Returns 0 or -1. */
int ac_state_load_transfer(struct ac_state *st, const struct ac_transfer_row *row);

/* ---- batches ------------------------------------------------------------------------------ */

/* Start a batch: empties the undo log and the change set. */
void ac_state_begin(struct ac_state *st);

/* Create an account. Same id with identical fields (asset, owner, flags) -> AC_EC_OK with
 * *replayed = 1; different fields -> AC_EC_ACCOUNT_EXISTS. Invalid id/asset/flags ->
 * AC_EC_ID_INVALID / AC_EC_ASSET_INVALID / AC_EC_FLAGS_INVALID. Balances of `a` are ignored
 * (a new account starts at zero). The caller checks that the asset exists. */
enum ac_ec ac_state_create_account(struct ac_state *st, const struct ac_account *a, int *replayed);

/* Apply n transfers in order at time now_us, writing one result each. Handles linked chains.
 * Returns AC_EC_OK, or AC_EC_INTERNAL on allocation failure (then the whole call is undone
 * and every result is AC_EC_INTERNAL). */
enum ac_ec ac_state_create_transfers(struct ac_state *st, const struct ac_transfer_req *reqs,
                                     size_t n, int64_t now_us, struct ac_transfer_result *results);

/* Expire every pending transfer with expires_us <= now_us: releases its pending amounts and
 * records AC_PS_EXPIRED. Returns how many expired, or -1 on allocation failure (undone). */
long ac_state_expire(struct ac_state *st, int64_t now_us);

/* Earliest expiry still queued (µs), or INT64_MAX when none. */
int64_t ac_state_next_expiry(const struct ac_state *st);

/* The transfer rows the current batch added so far: successes and sticky failures in apply order
 * (a linked chain that failed leaves none); *n their count. What ac_changes.transfers will hold.
 * Valid until the next call that creates transfers, commits or rolls back. */
const struct ac_transfer_row *ac_state_rows(const struct ac_state *st, size_t *n);

/* The batch's change set (see struct ac_changes). Returns NULL on allocation failure. */
const struct ac_changes *ac_state_changes(struct ac_state *st);

/* The batch is durable: drop the undo log. */
void ac_state_commit(struct ac_state *st);
/* The batch failed: undo everything since ac_state_begin(). */
void ac_state_rollback(struct ac_state *st);

/* ---- reading (sequencer thread only) ------------------------------------------------------ */
const struct ac_account *ac_state_account(const struct ac_state *st, const char *id);
size_t ac_state_n_accounts(const struct ac_state *st);
size_t ac_state_n_transfers(const struct ac_state *st);

/* 16-byte digest (truncated SHA-256 over a canonical encoding of every request field) used for
 * idempotency comparison. */
void ac_transfer_digest(const struct ac_transfer_req *r, uint8_t out[16]);

#endif
