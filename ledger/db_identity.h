/* ledger/db_identity.h -- the identity tables (sql/0005_identity.sql): the rows the sequencer
 * writes for principals, keys, bindings and revocations, and loading the registry from them. */
#ifndef AC_DB_IDENTITY_H
#define AC_DB_IDENTITY_H

#include <stdint.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "keys/registry.h"
#include "ledger/db.h"
#include "ledger/sequencer.h"
#include "protocol/binding.h"

/* Register the identity statements for AC_DB_WRITER (ledger/db.h). Call once at start-up, before
 * the sequencer connects. Returns 0 or -1. */
int ac_db_identity_register(void);

/* ---- rows of the batch's transaction (sequencer thread, inside an AC_CMD_OP) ------------------ *
 * Each queues one insert with ac_apply_stmt() and returns its result: 0, or -1 when out of memory,
 * which fails the batch as a whole. They allocate nothing else, so a caller that changed the
 * registry first cannot end up with a committed batch that lacks the row: what they need beyond
 * the ids (the canonical JWK text of a key, ac_jwk_public_text) is computed by the caller first. */

int ac_db_identity_principal(struct ac_apply *a, enum ac_principal_role role, const char *id,
                             const char *name, const char *category, int64_t created_us);
/* jwk: the key's canonical public JWK text. */
int ac_db_identity_key(struct ac_apply *a, enum ac_principal_role role, const char *owner_id,
                       EVP_PKEY *key, const char *jwk, int64_t created_us);
/* doc was parsed from exactly `jws`; agent_jwk is the canonical text of doc->agent_key. */
int ac_db_identity_binding(struct ac_apply *a, const struct ac_binding_doc *doc, const char *jws,
                           const char *agent_jwk, int64_t created_us);
int ac_db_identity_revocation(struct ac_apply *a, const char *binding_id, const char *user_id,
                              const char *user_kid, const char *jws, int64_t revoked_us);

/* ---- load ------------------------------------------------------------------------------------ */

/* Rebuild the registry from the database (on a writer connection): every identity row in
 * registration order is replayed through the registry's own rules, at the time it was registered,
 * into a fresh registry that then replaces reg's content in one step. Returns ONE_RESULT; on a
 * database error, or a row the rules refuse (a message on stderr), an error and reg is unchanged.
 */
enum ac_qs ac_db_identity_load(PGconn *c, struct ac_registry *reg);

#endif
