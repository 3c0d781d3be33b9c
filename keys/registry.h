/* keys/registry.h -- the identity registry: users, merchants, their public keys, and the
 * bindings of agent keys (agent runtime identity), in memory.
 *
 * PostgreSQL is the system of record (sql/0005_identity.sql, ledger/db_identity.c); the sequencer
 * thread is the registry's only writer (ledger/identity_ops.c), and HTTP threads read it under a
 * read lock (pthread rwlock, writers preferred). Readers copy what they need out of it (keys with
 * a reference, EVP_PKEY_up_ref), so that no lock is held while a signature is verified.
 *
 * Rules (checked by the writer functions below, in one place):
 * - Ids: users and merchants are separate namespaces; ids follow ac_id_valid.
 * - Keys: one key (RFC 7638 thumbprint) belongs to at most one principal, user or merchant, and a
 *   principal key is never an agent key, nor the other way round: otherwise a keyid of a signed
 *   request could name two principals. At most AC_REGISTRY_MAX_KEYS keys per principal. Keys are
 *   never removed (a binding or revocation names the key that signed it).
 * - Bindings: a binding id is unique forever, even after revocation or expiry. The same id with
 *   the byte-identical JWS is an idempotent replay; with any other JWS it is binding_exists. An
 *   agent key is named by at most one *active* binding (not revoked, not expired): a second binding
 *   of the same key is refused with agent_key_bound until the first is revoked or has expired.
 *   The newest binding of a key is the one its keyid resolves to.
 * - Revocation is final; revoking a revoked binding is an idempotent replay.
 *
 * Visibility: what the writer adds becomes visible to readers only with ac_registry_commit(),
 * which the sequencer calls after the batch's transaction committed and before it acknowledges
 * the batch's commands. (A pipelined batch, ledger/sequencer.c, may see its commit called before
 * it is durable, but only when ac_registry_pending() says it changed nothing: then the commit
 * makes nothing new visible.) A revocation is visible to readers at once (before its commit): a
 * revocation that then fails to commit errs on the safe side until the sequencer reloads. */
#ifndef AC_REGISTRY_H
#define AC_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keys/resolved.h"
#include "protocol/binding.h"
#include "protocol/errors.h"
#include "protocol/jose.h"
#include "protocol/sig.h"

#define AC_REGISTRY_MAX_KEYS 16  /* keys per principal */
#define AC_MERCHANT_NAME_MAX 128 /* bytes of UTF-8 */

enum ac_principal_role {
    AC_ROLE_USER = 1,
    AC_ROLE_MERCHANT = 2,
};

struct ac_registry;

/* A new empty registry, or NULL on allocation failure. */
struct ac_registry *ac_registry_new(void);
/* Free a registry and everything it holds. Accepts NULL. No reader may be inside. */
void ac_registry_free(struct ac_registry *reg);

/* 1 when s is a merchant name: 1..AC_MERCHANT_NAME_MAX bytes without control characters (the
 * caller guarantees UTF-8, as jansson does). */
int ac_merchant_name_valid(const char *s);

/* ---- readers (any thread; see only committed entries) ------------------------------------- */

/* The resolver of keys/resolved.h (cls is the struct ac_registry *). An agent key resolves to
 * the newest committed binding that names it (revoked and expired bindings too, flagged); a
 * merchant key to its merchant. User keys do not resolve: users sign documents, not requests.
 * Returns AC_EC_OK (clear *out later), or AC_EC_SIG_KEY_UNKNOWN with *out zeroed. */
enum ac_ec ac_registry_resolve(void *cls, const char *keyid, struct ac_resolved_key *out);

/* The key `kid` of user `user_id`, for verifying a document the user signed. Returns AC_EC_OK and
 * a new reference in *out (EVP_PKEY_free it), AC_EC_USER_UNKNOWN, or AC_EC_JWS_KEY_UNKNOWN when
 * the kid is not one of that user's keys; *out is NULL on failure. */
enum ac_ec ac_registry_user_key(struct ac_registry *reg, const char *user_id, const char *kid,
                                EVP_PKEY **out);

struct ac_key_info {
    char kid[AC_JWK_THUMBPRINT_SIZE];
    enum ac_sig_alg alg;
    EVP_PKEY *key; /* one reference held */
    int64_t created_us;
};

struct ac_principal_info {
    enum ac_principal_role role;
    char id[AC_ID_MAX + 1];
    char name[AC_MERCHANT_NAME_MAX + 1]; /* merchants */
    char category[AC_ID_MAX + 1];        /* merchants */
    int64_t created_us;
    size_t nkeys;
    struct ac_key_info keys[AC_REGISTRY_MAX_KEYS]; /* in the order they were registered */
};

/* Copy a principal out. Returns AC_EC_OK (clear *out later), AC_EC_USER_UNKNOWN or
 * AC_EC_MERCHANT_UNKNOWN (then *out is zeroed). */
enum ac_ec ac_registry_principal_get(struct ac_registry *reg, enum ac_principal_role role,
                                     const char *id, struct ac_principal_info *out);
/* Release the key references of a principal info. Accepts a zeroed struct. */
void ac_principal_info_clear(struct ac_principal_info *p);

struct ac_binding_info {
    char id[AC_ID_MAX + 1];
    char user_id[AC_ID_MAX + 1];
    char user_kid[AC_JWK_THUMBPRINT_SIZE]; /* the user key that signed it */
    char agent_id[AC_ID_MAX + 1];
    char agent_kid[AC_JWK_THUMBPRINT_SIZE];
    EVP_PKEY *agent_key; /* one reference held */
    char software[AC_RUNTIME_HEXDIGEST_LEN + 1];
    char model[AC_RUNTIME_MODEL_MAX + 1];
    char environment[AC_RUNTIME_HEXDIGEST_LEN + 1];
    uint8_t runtime_digest[AC_RUNTIME_DIGEST_LEN];
    int max_autonomy;
    int64_t iat, nbf, exp; /* unix seconds */
    int64_t created_us;    /* when it was registered */
    char *jws;             /* the binding as registered (malloc'd) */
    int revoked;
    int64_t revoked_us;                          /* when the revocation was registered */
    char revocation_kid[AC_JWK_THUMBPRINT_SIZE]; /* the user key that signed it */
    char *revocation_jws;                        /* malloc'd, or NULL */
};

/* Copy a binding out. Returns AC_EC_OK (clear *out later), AC_EC_BINDING_UNKNOWN (then *out is
 * zeroed) or AC_EC_INTERNAL (out of memory). */
enum ac_ec ac_registry_binding_get(struct ac_registry *reg, const char *id,
                                   struct ac_binding_info *out);
void ac_binding_info_clear(struct ac_binding_info *b);

/* The facts of a binding that a payment decision needs, without allocating (the sequencer asks
 * for them on every payment). */
struct ac_binding_state {
    char user_id[AC_ID_MAX + 1];
    char user_kid[AC_JWK_THUMBPRINT_SIZE]; /* the user key that signed the binding */
    char agent_id[AC_ID_MAX + 1];
    uint8_t jws_sha256[32]; /* SHA-256 of the binding's JWS text (evidence docref) */
    int max_autonomy;
    int64_t nbf, exp; /* unix seconds */
    int revoked;
};

/* The WRITER's view of a binding (sequencer thread): everything the writer added, committed or
 * not, including a revocation applied earlier in the current batch. AC_EC_OK, or
 * AC_EC_BINDING_UNKNOWN with *out zeroed. */
enum ac_ec ac_registry_binding_state(struct ac_registry *reg, const char *id,
                                     struct ac_binding_state *out);

/* A committed merchant's registered category (immutable once registered). AC_EC_OK, or
 * AC_EC_MERCHANT_UNKNOWN with category "". */
enum ac_ec ac_registry_merchant_category(struct ac_registry *reg, const char *id,
                                         char category[AC_ID_MAX + 1]);

struct ac_registry_counts {
    size_t users, merchants, keys, bindings, revoked;
};
/* Committed entries (for logs, metrics and tests). */
void ac_registry_counts(struct ac_registry *reg, struct ac_registry_counts *out);

/* ---- the writer (one thread: the sequencer's) --------------------------------------------- *
 * Each function checks its rules against everything the writer added so far (committed or not)
 * and then changes the registry, or changes nothing and returns the failure. now_us is the time of
 * the change (unix microseconds): it decides which bindings have expired, and is what created_us /
 * revoked_us record. *replayed is set to 1 when the call was an idempotent replay (nothing
 * changed), else 0. AC_EC_INTERNAL means out of memory (nothing changed). */

/* Register a principal with n keys (n <= AC_REGISTRY_MAX_KEYS, distinct; name and category for
 * merchants, NULL for users). A principal of that role and id that exists with the same name and
 * category and holds every one of the keys is a replay; otherwise AC_EC_PRINCIPAL_EXISTS. A key
 * held by another principal or named by a binding: AC_EC_KEY_EXISTS. More than
 * AC_REGISTRY_MAX_KEYS: AC_EC_KEYS_LIMIT. The registry takes its own key references. */
enum ac_ec ac_registry_principal_create(struct ac_registry *reg, enum ac_principal_role role,
                                        const char *id, const char *name, const char *category,
                                        EVP_PKEY *const *keys, size_t n, int64_t now_us,
                                        int *replayed);

/* Add a key to a principal: AC_EC_USER_UNKNOWN / AC_EC_MERCHANT_UNKNOWN, replay when it is that
 * principal's already, AC_EC_KEY_EXISTS when it is someone else's or an agent key,
 * AC_EC_KEYS_LIMIT when the principal has AC_REGISTRY_MAX_KEYS. */
enum ac_ec ac_registry_key_add(struct ac_registry *reg, enum ac_principal_role role, const char *id,
                               EVP_PKEY *key, int64_t now_us, int *replayed);

/* Register a binding parsed (ac_binding_parse) from exactly the text `jws`, whose signature the
 * caller verified. Checks, in order: the id (replay / AC_EC_BINDING_EXISTS), the user
 * (AC_EC_USER_UNKNOWN), the signing kid is that user's key (AC_EC_JWS_KEY_UNKNOWN), the agent key
 * is no principal's key (AC_EC_KEY_EXISTS), no active binding names the agent key at now_us
 * (AC_EC_AGENT_KEY_BOUND). Times against the clock (ac_binding_check_time) are the caller's. */
enum ac_ec ac_registry_binding_add(struct ac_registry *reg, const struct ac_binding_doc *doc,
                                   const char *jws, int64_t now_us, int *replayed);

/* Revoke binding `binding_id` with the revocation `jws` signed by key user_kid of user_id (whose
 * signature the caller verified): AC_EC_BINDING_UNKNOWN, AC_EC_REVOCATION_INVALID when user_id is
 * not the binding's user, AC_EC_JWS_KEY_UNKNOWN when user_kid is not that user's key; a binding
 * already revoked is a replay (the first revocation stays). */
enum ac_ec ac_registry_binding_revoke(struct ac_registry *reg, const char *binding_id,
                                      const char *user_id, const char *user_kid, const char *jws,
                                      int64_t now_us, int *replayed);

/* For the calling thread only (which must be the writer's, the sequencer's): while on, the
 * readers above also see what the writer added and has not committed yet. The idempotency layer
 * renders an answer before its batch commits this way (server/idem.h). */
void ac_registry_writer_view(int on);

/* Make everything added since the last commit visible to readers. */
void ac_registry_commit(struct ac_registry *reg);

/* 1 when the writer changed something since the last ac_registry_commit() (an entry that the
 * commit will make visible, or a revocation), else 0. The sequencer commits such a batch only
 * after it is durable (it does not pipeline it behind another). */
int ac_registry_pending(struct ac_registry *reg);

/* Move src's content (committed or not) into reg, replacing and freeing reg's, in one step under
 * reg's write lock; src is left empty. Used to reload from the database without readers ever
 * seeing a half-filled registry. */
void ac_registry_replace(struct ac_registry *reg, struct ac_registry *src);

#endif
