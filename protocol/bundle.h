/* protocol/bundle.h -- the dispute bundle: one self-contained, deterministic CBOR file with
 * everything an auditor needs to check one payment offline (docs/evidence.md, "Dispute bundle"):
 *
 *   - every evidence record of the payment's life (record bytes, verbatim), each with its
 *     sequence number and an RFC 9162 inclusion proof to the bundled checkpoint;
 *   - the documents the records reference by hash: the binding and mandate JWS, and the
 *     revocation, confirmation and voucher JWS where the records have them;
 *   - the user's public keys (JWK), which verify those documents;
 *   - the checkpoint (a C2SP signed note) and the log's note verifier key; optionally the
 *     server's JWKS as published at /.well-known/agentclear/keys.
 *
 * ac_bundle_verify() checks it all with no network and no database and writes a readable account
 * of who authorised what, when, under which binding and mandate. The agent's key is not in the
 * bundle by itself: it is taken from the (user-signed) binding, so a request signature proves the
 * user bound that agent key. */
#ifndef AC_BUNDLE_H
#define AC_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "protocol/buf.h"
#include "protocol/evidence.h"

/* Bundle format version (the "v" member). */
#define AC_BUNDLE_VERSION 1
/* Limits enforced by the decoder. */
#define AC_BUNDLE_MAX (64u * 1024u * 1024u)
#define AC_BUNDLE_MAX_RECORDS 4096
#define AC_BUNDLE_MAX_DOCS 1024
#define AC_BUNDLE_MAX_KEYS 64

/* A borrowed run of bytes (text or binary). */
struct ac_blob {
    const uint8_t *p;
    size_t len;
};

/* One bundled record: its sequence number (= Merkle leaf index), the record bytes, and the
 * inclusion proof of its leaf in the tree of the checkpoint's size. */
struct ac_bundle_entry {
    uint64_t seq;
    struct ac_blob record;
    const uint8_t (*proof)[AC_EV_HASH_LEN];
    size_t proof_len;
};

/* A bundle as a C view. Filled by the producer (borrowed pointers) for ac_bundle_encode(), or by
 * ac_bundle_decode() (which then owns the memory: ac_bundle_clear()). Entries are in ascending
 * seq order. */
struct ac_bundle {
    const char *payment; /* the payment or tab id the bundle is about */
    const struct ac_bundle_entry *entries;
    size_t nentries;
    const struct ac_blob *documents; /* compact JWS texts */
    size_t ndocuments;
    const struct ac_blob *user_keys; /* public JWK JSON texts */
    size_t nuser_keys;
    struct ac_blob checkpoint; /* the signed note */
    struct ac_blob log_key;    /* note verifier key "<origin>+<id>+<base64>" */
    struct ac_blob jwks;       /* optional; len 0 = absent */
    void *mem_;                /* decoded bundles only */
};

/* Encode b as deterministic CBOR into a malloc'd buffer (*out, caller frees). Checks shapes (ids
 * valid, entries in strictly ascending seq order, proofs at most AC_MERKLE_MAX_PROOF hashes,
 * limits), not signatures. Returns 0, or -1 with a message in err (*out then NULL). */
int ac_bundle_encode(const struct ac_bundle *b, uint8_t **out, size_t *len, char *err,
                     size_t errlen);

/* Decode buf[0..len) strictly (deterministic CBOR, exactly the bundle members, types, limits).
 * On success *b owns its memory (ac_bundle_clear) and 0 is returned; else -1 with a message in
 * err and *b cleared. Record bytes are not decoded here (ac_bundle_verify does). */
int ac_bundle_decode(const uint8_t *buf, size_t len, struct ac_bundle *b, char *err, size_t errlen);

/* Release a decoded bundle and zero it. Harmless on a zeroed struct. */
void ac_bundle_clear(struct ac_bundle *b);

/* ==== verification =========================================================================== */

/* Takes the agent's public key out of a verified binding payload (a JSON object). Returns a new
 * key (the verifier frees it) or NULL with a short static reason in *why. */
typedef EVP_PKEY *(*ac_bundle_agent_key_fn)(void *ctx, const json_t *binding_payload,
                                            const char **why);

/* The default: the binding payload member "agent_jwk" (a public JWK object) or, failing that,
 * "cnf": {"jwk": ...} (RFC 7800 style). */
EVP_PKEY *ac_bundle_agent_key_default(void *ctx, const json_t *binding_payload, const char **why);

struct ac_bundle_verify_opts {
    const char *log_key; /* pinned note verifier key; NULL: trust the bundled one (reported) */
    const char *origin;  /* required checkpoint origin; NULL: any */
    ac_bundle_agent_key_fn agent_key; /* NULL: ac_bundle_agent_key_default */
    void *agent_key_ctx;
};

struct ac_bundle_result {
    char item[160]; /* the first failing item ("record #17", "checkpoint"), "" when verified */
    char why[320];  /* why it failed, "" when verified */
    struct ac_buf account; /* the readable account, as far as verification got */
    size_t nrecords, ndocuments;
    int log_key_pinned; /* 1 when opts->log_key was given and matched */
};

/* Verify a dispute bundle, offline, in this order, stopping at the first failure:
 *   bundle      deterministic CBOR with the bundle's shape (ac_bundle_decode)
 *   log key     equals opts->log_key when pinned
 *   checkpoint  signed by the log key, a strict tlog checkpoint, origin as required
 *   jwks        when bundled: one of its keys is the log key (the key the operator publishes
 *               at /.well-known/agentclear/keys signs the checkpoints)
 *   user key #i each a valid public JWK
 *   record #seq each canonical and valid (ac_ev_record_decode), seq as bundled and ascending,
 *               about this payment (body.payment or body.tab), included in the checkpoint's
 *               tree (leaf hash + inclusion proof against the checkpoint root)
 *   documents   every docref of every record has its document in the bundle (SHA-256 match); the
 *               binding, mandate, revocation and confirmation JWS verify with a bundled user key
 *               (the one whose thumbprint is the docref's kid, when the record names one); a
 *               voucher verifies with the agent key of the record's binding
 *   request     the record's RFC 9421 signature verifies over the verbatim signature base with
 *               the agent key taken from the record's binding (opts->agent_key); the keyid in the
 *               base's @signature-params is the record's keyid; a bundled request body matches
 *               the base's content-digest. For payment.deny a failing signature is reported in
 *               the account, not as a failure (it may be why the payment was denied); requests
 *               of records without a binding (e.g. merchant refunds) are reported unverified.
 * Returns 0 when everything verifies, -1 otherwise (res->item and res->why name the first
 * failure). res->account always holds the account so far; release with ac_bundle_result_free.
 * Pure: no I/O. */
int ac_bundle_verify(const uint8_t *buf, size_t len, const struct ac_bundle_verify_opts *opts,
                     struct ac_bundle_result *res);

/* Release the result's account text and zero it. */
void ac_bundle_result_free(struct ac_bundle_result *res);

#endif
