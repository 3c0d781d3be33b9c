/* protocol/evidence.h -- the evidence log's building blocks, pure (no I/O, no database):
 *
 *   - the evidence record: one RFC 8949 §4.2 deterministic CBOR map per decision, with a
 *     sequence number, a time, a kind, the previous record's hash and a kind-specific body that
 *     holds what an auditor needs to re-check the decision offline (docs/evidence.md has the CDDL);
 *   - hashing: record hash = SHA-256(record bytes) (the prev-hash chain), Merkle leaf hash =
 *     SHA-256(0x00 || record bytes) (RFC 9162, protocol/merkle.h);
 *   - checkpoints: C2SP tlog-checkpoint bodies signed as C2SP signed notes with an Ed25519 key
 *     (protocol/note.h), the key name being the log's origin;
 *   - an in-memory leaf store that answers roots, inclusion and consistency proofs.
 *
 * Writing a record (the sequencer's side):
 *
 *     struct ac_ev_record r = {0};
 *     r.seq = head.seq + 1; r.time_us = now_us; r.kind = AC_EV_PAYMENT_SETTLE;
 *     memcpy(r.prev, head.hash, 32);
 *     r.body.payment = "pay-1"; r.body.request = (struct ac_ev_request){1, base, base_len, ...};
 *     ...
 *     if (ac_ev_record_encode(&r, &bytes, &len, err, sizeof err) != 0) ... programming error
 *     ac_ev_record_hash(bytes, len, head.hash);           -- the next record's prev
 *     ac_ev_leaf_hash(bytes, len, leaf);                  -- the Merkle leaf at index r.seq
 *
 * The record bytes are what is stored, hashed, proven and bundled; the struct is only a view.
 * Strings in a record handed to the encoder are borrowed (NUL-terminated, UTF-8); a decoded
 * record owns its strings and is released with ac_ev_record_clear(). */
#ifndef AC_EVIDENCE_H
#define AC_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "protocol/merkle.h"

#define AC_EV_HASH_LEN 32
/* The record format version (the "v" member). */
#define AC_EV_VERSION 1
/* Largest record accepted or produced (bytes). */
#define AC_EV_RECORD_MAX (2u * 1024u * 1024u)
/* Largest verbatim request body kept in a record (bytes). */
#define AC_EV_BODY_MAX (1024u * 1024u)
/* Most transfers and reason codes in one record. */
#define AC_EV_MAX_TRANSFERS 64
#define AC_EV_MAX_REASONS 32
/* Most accounts in one ledger.account record. */
#define AC_EV_MAX_ACCOUNTS 64
/* Longest pending-transfer timeout a record holds (seconds: one year, as the ledger allows). */
#define AC_EV_TIMEOUT_MAX 31536000u

/* ==== kinds ================================================================================== */

/* Each kind has a fixed text name on the wire ("payment.settle"); the numbers are C-only and may
 * change. AC_EV_KIND_NONE is not a kind. */
enum ac_ev_kind {
    AC_EV_KIND_NONE = 0,
    AC_EV_BINDING_REGISTER,
    AC_EV_BINDING_REVOKE,
    AC_EV_MANDATE_REGISTER,
    AC_EV_MANDATE_REVOKE,
    AC_EV_PAYMENT_SETTLE,
    AC_EV_PAYMENT_STEP_UP,
    AC_EV_PAYMENT_CONFIRM,
    AC_EV_PAYMENT_DECLINE,
    AC_EV_PAYMENT_EXPIRE,
    AC_EV_PAYMENT_DENY,
    AC_EV_REFUND,
    AC_EV_TOPUP,
    AC_EV_TAB_OPEN,
    AC_EV_TAB_SETTLE,
    AC_EV_TAB_CLOSE,
    AC_EV_TAB_EXPIRE,
    AC_EV_CLEARING_CLOSE,
    AC_EV_TAB_DENY, /* a tab refused at open (risk or ledger): nothing held */
    AC_EV_PRICE_PUBLISH, /* a merchant published a price version (docs/merchant-api.md) */
    AC_EV_LEDGER_ACCOUNT,  /* "ledger.account": accounts the operator created */
    AC_EV_LEDGER_TRANSFER, /* "ledger.transfer": transfers the operator made (funding, payouts) */
    AC_EV_KIND__COUNT
};

/* The wire name of a kind, or NULL for AC_EV_KIND_NONE and out-of-range values. */
const char *ac_ev_kind_name(enum ac_ev_kind k);

/* The kind named s[0..len), or AC_EV_KIND_NONE when there is none. */
enum ac_ev_kind ac_ev_kind_from_name(const char *s, size_t len);

/* The risk decision recorded with a request. */
enum ac_ev_decision {
    AC_EV_DECISION_NONE = 0, /* not present */
    AC_EV_ALLOW,             /* "allow" */
    AC_EV_STEP_UP,           /* "step_up" */
    AC_EV_DENY,              /* "deny" */
};

/* "allow" / "step_up" / "deny", or NULL for AC_EV_DECISION_NONE. */
const char *ac_ev_decision_name(enum ac_ev_decision d);

/* ==== the record as a C view ================================================================= */

/* A reference to a user- or agent-signed document kept outside the record (a binding, mandate,
 * revocation, step-up confirmation or voucher JWS): the SHA-256 of its exact bytes (the compact
 * JWS text), its id and the key id (RFC 7638 thumbprint) of the key that signed it. */
struct ac_ev_docref {
    int present;
    uint8_t hash[AC_EV_HASH_LEN];
    const char *id;  /* optional (NULL) */
    const char *kid; /* optional (NULL) */
};

/* An amount: int64 base units of an asset at its scale. */
struct ac_ev_amount {
    int present;
    int64_t value;
    const char *asset; /* [A-Z0-9_]{1,16} */
    unsigned scale;    /* 0..AC_SCALE_MAX */
};

/* The verified RFC 9421 request, verbatim: the signature base exactly as it was verified (no
 * trailing newline), the raw signature bytes and the keyid parameter; optionally the request
 * body, which the base's content-digest commits to. */
struct ac_ev_request {
    int present;
    const uint8_t *base;
    size_t base_len;
    const uint8_t *sig;
    size_t sig_len;
    const char *keyid;
    int has_body;
    const uint8_t *body; /* may be NULL when body_len is 0 */
    size_t body_len;
};

/* One transfer the decision moved (or held, posted, voided). flags are the ledger's AC_TF_* bits
 * (ledger/state.h): linked 0x01, pending 0x02, post_pending 0x04, void_pending 0x08,
 * balancing_debit 0x10, balancing_credit 0x20. */
struct ac_ev_transfer {
    const char *id, *debit, *credit;
    int64_t amount; /* base units, >= 0 */
    const char *asset;
    unsigned scale;
    uint32_t flags;
    const char *pending_id; /* optional (NULL) */
    uint32_t timeout_s;     /* a pending transfer's timeout (0: none / not recorded); the ledger
                               expires the hold at the record's time + timeout_s seconds */
    uint16_t code;          /* the ledger's free classification code (0: none) */
};

/* An account the operator created (ledger.account). flags are the ledger's AC_AF_* bits
 * (ledger/state.h): debits_must_not_exceed_credits 0x1, credits_must_not_exceed_debits 0x2. */
struct ac_ev_account {
    const char *id;
    const char *asset;
    const char *owner; /* optional (NULL) */
    uint32_t flags;
};

/* The kind-specific body. Every member is optional in the struct; which ones a kind requires and
 * allows is fixed per kind (docs/evidence.md, "kinds"). Ids are ac_id_valid() strings. */
struct ac_ev_body {
    const char *payment; /* payment / authorisation id */
    const char *user;    /* user id */
    const char *agent;   /* agent id */
    const char *payee;   /* merchant id */
    const char *tab;     /* tab id */
    const char *ref;     /* free reference: order digest, price version, clearing cycle, ... */
    const char *category; /* the payee's registered merchant category (payment kinds) */
    const char *actor;    /* who asked, when no signed request says it: "operator" (ledger.*) */
    struct ac_ev_amount amount; /* the amount asked for */
    struct ac_ev_docref binding, mandate, revocation, confirmation, voucher, report;
    struct ac_ev_request request;
    enum ac_ev_decision decision;
    const char *const *reasons; /* reason codes (ac_id_valid strings), nreasons of them */
    size_t nreasons;
    const struct ac_ev_transfer *transfers;
    size_t ntransfers;
    const struct ac_ev_account *accounts;
    size_t naccounts;
};

struct ac_ev_record {
    uint64_t seq;    /* 0, 1, 2, ... per partition */
    int64_t time_us; /* unix microseconds, >= 0 */
    enum ac_ev_kind kind;
    uint8_t prev[AC_EV_HASH_LEN]; /* record hash of seq - 1; 32 zero bytes for seq 0 */
    struct ac_ev_body body;
    void *mem_; /* decoded records only: owned memory, released by ac_ev_record_clear() */
};

/* ==== encoding, decoding, validation ========================================================= */

/* Check r against the format's rules: a known kind; time_us >= 0; seq 0 has an all-zero prev;
 * every string valid for its field (ids, asset codes, key ids, UTF-8 without NUL); amounts >= 0,
 * scale <= 18; the body has every member the kind requires and none it does not allow; the
 * decision matches the kind (payment.settle: allow, payment.step_up: step_up, payment.deny:
 * deny with at least one reason); sizes within the AC_EV_* limits. Returns 0, or -1 with a
 * short lowercase message naming the field in err (err may be NULL). */
int ac_ev_record_validate(const struct ac_ev_record *r, char *err, size_t errlen);

/* Validate r, then encode it as deterministic CBOR into a malloc'd buffer (*out, caller frees)
 * of *len bytes. Returns 0, or -1 with a message in err (invalid record, or out of memory);
 * *out is then NULL. */
int ac_ev_record_encode(const struct ac_ev_record *r, uint8_t **out, size_t *len, char *err,
                        size_t errlen);

/* Decode and strictly validate buf[0..len): exactly one deterministically encoded CBOR item
 * (ac_dcbor_check: canonical integers and lengths, sorted unique keys, definite lengths, no
 * tags, no floats), a map with exactly the record members, version AC_EV_VERSION, known kind,
 * no unknown body members, correct types, then ac_ev_record_validate(). On success fills *r
 * (which then owns copies of every string and byte string: release with ac_ev_record_clear) and
 * returns 0. On failure returns -1 with a message in err and leaves *r cleared. */
int ac_ev_record_decode(const uint8_t *buf, size_t len, struct ac_ev_record *r, char *err,
                        size_t errlen);

/* Release what a decoded record owns and zero it. Harmless on a zeroed record. Do not call it on
 * a record whose strings the caller owns (mem_ is then NULL and nothing is freed). */
void ac_ev_record_clear(struct ac_ev_record *r);

/* ==== hashing ================================================================================ */

/* out = SHA-256(buf[0..len)): the record hash, the next record's prev. Returns 0: the hashing
 * (protocol/sha256.h) cannot fail; the int return is kept for the callers that check it. */
int ac_ev_record_hash(const uint8_t *buf, size_t len, uint8_t out[AC_EV_HASH_LEN]);

/* out = SHA-256(0x00 || buf[0..len)): the RFC 9162 leaf hash of the record. Returns 0 or -1. */
int ac_ev_leaf_hash(const uint8_t *buf, size_t len, uint8_t out[AC_EV_HASH_LEN]);

/* out = SHA-256(doc[0..len)): the hash a docref carries for a document (the compact JWS text). */
int ac_ev_doc_hash(const void *doc, size_t len, uint8_t out[AC_EV_HASH_LEN]);

/* ==== checkpoints ============================================================================ */

/* A verified checkpoint. origin is a NUL-terminated copy (owned: free with
 * ac_ev_checkpoint_clear). */
struct ac_ev_checkpoint {
    char *origin;
    uint64_t size;
    uint8_t root[AC_EV_HASH_LEN];
};

/* Sign the checkpoint "<origin>\n<size>\n<base64 root>\n" as a C2SP signed note with the Ed25519
 * private key key under the key name origin (the tlog-checkpoint recommendation). origin must be
 * a valid note key name (no spaces, no '+'), e.g. "agentclear.example/0". *note is malloc'd and
 * NUL-terminated (caller frees), *len its length. Returns 0, or -1 (bad origin, key not Ed25519,
 * out of memory); *note is then NULL. */
int ac_ev_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[AC_EV_HASH_LEN],
                          EVP_PKEY *key, char **note, size_t *len);

/* The note verifier key "<origin>+<hex key id>+<base64(0x01 || public key)>" for the Ed25519
 * key under origin: what docs and bundles publish, and what auditors pin. malloc'd (caller
 * frees), or NULL when origin or key is unfit or on OOM. */
char *ac_ev_checkpoint_vkey(const char *origin, EVP_PKEY *key);

/* Verify a checkpoint note against the verifier key vkey[0..vkey_len): the note must carry a
 * valid signature by that key, every signature by that key must verify, the body must be a
 * strict tlog checkpoint without extension lines, and its origin must equal the key name (and
 * origin, when not NULL). Fills *cp on success (release with ac_ev_checkpoint_clear).
 * Returns 0, or -1 with a message in err (cp then cleared). */
int ac_ev_checkpoint_verify(const char *note, size_t len, const char *vkey, size_t vkey_len,
                            const char *origin, struct ac_ev_checkpoint *cp, char *err,
                            size_t errlen);

/* Release cp's origin and zero it. Harmless on a zeroed struct. */
void ac_ev_checkpoint_clear(struct ac_ev_checkpoint *cp);

/* ==== leaves, roots and proofs =============================================================== */

/* The Merkle leaf hashes of a log in memory, in seq order (leaf i = record seq i). Proofs are
 * built from all the leaves they cover: O(size) hashing per proof. Fine for an export, a bundle
 * or a test; a server with millions of records should store tree tiles (C2SP tlog-tiles) and is
 * expected to replace this with a tile-backed source later. */
struct ac_ev_tree {
    uint8_t (*leaf)[AC_EV_HASH_LEN];
    size_t n, cap;
};

/* Start empty. Never fails. */
void ac_ev_tree_init(struct ac_ev_tree *t);

/* Append one leaf hash (at index t->n). Returns 0, or -1 on OOM (t unchanged). */
int ac_ev_tree_append(struct ac_ev_tree *t, const uint8_t leaf[AC_EV_HASH_LEN]);

/* Root of the tree of the first size leaves. Returns 0, or -1 when size > t->n or hashing fails. */
int ac_ev_tree_root(const struct ac_ev_tree *t, uint64_t size, uint8_t out[AC_EV_HASH_LEN]);

/* Inclusion proof of leaf seq in the tree of the first size leaves: up to AC_MERKLE_MAX_PROOF
 * hashes into proof, the count into *n. Returns 0, or -1 when seq >= size, size > t->n or
 * hashing fails. */
int ac_ev_tree_inclusion(const struct ac_ev_tree *t, uint64_t seq, uint64_t size,
                         uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN], size_t *n);

/* Consistency proof between the trees of the first from and to leaves (0 < from <= to <= t->n):
 * up to AC_MERKLE_MAX_PROOF hashes, count in *n. Returns 0, or -1 on bad sizes or hashing
 * failure. */
int ac_ev_tree_consistency(const struct ac_ev_tree *t, uint64_t from, uint64_t to,
                           uint8_t proof[AC_MERKLE_MAX_PROOF][AC_EV_HASH_LEN], size_t *n);

/* Release the leaves; t is then empty and reusable. */
void ac_ev_tree_free(struct ac_ev_tree *t);

#endif
