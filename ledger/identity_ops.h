/* ledger/identity_ops.h -- registering principals, keys, bindings and revocations through the
 * sequencer (AC_CMD_OP): each operation is checked against the identity registry on the sequencer
 * thread, changes it, and queues its rows into the batch's transaction, so that what a caller
 * sees acknowledged is durable and already in effect for every later request.
 *
 * Signatures are NOT verified here: that is CPU work for the HTTP thread, done before submitting
 * (with the user key from ac_registry_user_key). What can change meanwhile -- the key still
 * belongs to the user, the binding id is free, the agent key is not bound elsewhere, the binding
 * has not expired -- is checked again here. */
#ifndef AC_IDENTITY_OPS_H
#define AC_IDENTITY_OPS_H

#include <stddef.h>

#include <openssl/evp.h>

#include "keys/registry.h"
#include "ledger/sequencer.h"
#include "protocol/binding.h"

enum ac_identity_kind {
    AC_IDOP_PRINCIPAL = 1, /* register a user or merchant with its keys */
    AC_IDOP_KEY,           /* add one key to a user or merchant */
    AC_IDOP_BINDING,       /* register a binding */
    AC_IDOP_REVOCATION,    /* revoke a binding */
};

struct ac_identity_op {
    enum ac_identity_kind kind;
    /* AC_IDOP_PRINCIPAL, AC_IDOP_KEY */
    enum ac_principal_role role;
    char id[AC_ID_MAX + 1];
    char name[AC_MERCHANT_NAME_MAX + 1];  /* merchants */
    char category[AC_ID_MAX + 1];         /* merchants */
    EVP_PKEY *keys[AC_REGISTRY_MAX_KEYS]; /* borrowed; AC_IDOP_KEY uses keys[0] */
    size_t nkeys;
    /* AC_IDOP_BINDING: the parsed binding and its text; its signature was verified */
    const struct ac_binding_doc *binding;
    /* AC_IDOP_REVOCATION: the parsed revocation and its text; its signature was verified */
    const struct ac_revocation_doc *revocation;
    const char *jws; /* NUL-terminated, borrowed */

    /* outputs, valid when the command's status is AC_EC_OK */
    enum ac_ec result; /* AC_EC_OK or the rule that refused it (see keys/registry.h) */
    int replayed;      /* 1: an idempotent replay, nothing written */
};

/* Prepare cmd to run op (kind AC_CMD_OP, n 1). The caller sets done/cls or uses ac_seq_run(). */
void ac_identity_cmd(struct ac_cmd *cmd, struct ac_identity_op *op);

/* Apply op inside an AC_CMD_OP (the sequencer's domain must be a struct ac_domain with a
 * registry, ledger/domain.h). Exposed so that one command can carry several operations. */
void ac_identity_apply(struct ac_identity_op *op, struct ac_apply *a);

#endif
