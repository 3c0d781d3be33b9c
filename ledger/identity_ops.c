/* Identity operations on the sequencer thread (see identity_ops.h). */
#include "ledger/identity_ops.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/jose.h"

#include "ledger/db_identity.h"
#include "ledger/domain.h"

/* The canonical JWK texts of n keys, computed before anything changes (see db_identity.h).
 * Returns 0, or -1 when out of memory (texts freed). */
static int jwk_texts(EVP_PKEY *const *keys, size_t n, char **out)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = ac_jwk_public_text(keys[i]);
        if (out[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            return -1;
        }
    }
    return 0;
}

static enum ac_ec apply_principal(struct ac_identity_op *op, struct ac_registry *reg,
                                  struct ac_apply *a, int64_t now)
{
    char *jwk[AC_REGISTRY_MAX_KEYS];
    if (op->nkeys > AC_REGISTRY_MAX_KEYS) return AC_EC_KEYS_LIMIT;
    if (jwk_texts(op->keys, op->nkeys, jwk)) return AC_EC_INTERNAL;
    enum ac_ec ec = ac_registry_principal_create(reg, op->role, op->id, op->name, op->category,
                                                 op->keys, op->nkeys, now, &op->replayed);
    if (ec == AC_EC_OK && !op->replayed &&
        ac_db_identity_principal(a, op->role, op->id, op->name, op->category, now) == 0)
        for (size_t i = 0; i < op->nkeys; i++)
            if (ac_db_identity_key(a, op->role, op->id, op->keys[i], jwk[i], now)) break;
    for (size_t i = 0; i < op->nkeys; i++)
        free(jwk[i]);
    return ec;
}

static enum ac_ec apply_key(struct ac_identity_op *op, struct ac_registry *reg, struct ac_apply *a,
                            int64_t now)
{
    char *jwk;
    if (op->nkeys != 1) return AC_EC_INTERNAL;
    if (jwk_texts(op->keys, 1, &jwk)) return AC_EC_INTERNAL;
    enum ac_ec ec = ac_registry_key_add(reg, op->role, op->id, op->keys[0], now, &op->replayed);
    if (ec == AC_EC_OK && !op->replayed)
        ac_db_identity_key(a, op->role, op->id, op->keys[0], jwk, now);
    free(jwk);
    return ec;
}

static enum ac_ec apply_binding(struct ac_identity_op *op, struct ac_registry *reg,
                                struct ac_apply *a, int64_t now)
{
    const struct ac_binding_doc *b = op->binding;
    int replayed = 0;
    /* a replay answers with what was registered, whatever the clock says now */
    struct ac_binding_info old;
    if (ac_registry_binding_get(reg, b->id, &old) == AC_EC_OK) {
        replayed = strcmp(old.jws, op->jws) == 0;
        ac_binding_info_clear(&old);
    }
    if (!replayed) {
        enum ac_ec ec = ac_binding_check_time(b, now / 1000000, NULL);
        if (ec != AC_EC_OK) return ec;
    }
    char *jwk;
    EVP_PKEY *agent = b->agent_key;
    if (jwk_texts(&agent, 1, &jwk)) return AC_EC_INTERNAL;
    enum ac_ec ec = ac_registry_binding_add(reg, b, op->jws, now, &op->replayed);
    if (ec == AC_EC_OK && !op->replayed) ac_db_identity_binding(a, b, op->jws, jwk, now);
    free(jwk);
    return ec;
}

static enum ac_ec apply_revocation(struct ac_identity_op *op, struct ac_registry *reg,
                                   struct ac_apply *a, int64_t now)
{
    const struct ac_revocation_doc *r = op->revocation;
    enum ac_ec ec = ac_registry_binding_revoke(reg, r->binding_id, r->user_id, r->user_kid, op->jws,
                                               now, &op->replayed);
    if (ec == AC_EC_OK && !op->replayed)
        ac_db_identity_revocation(a, r->binding_id, r->user_id, r->user_kid, op->jws, now);
    return ec;
}

void ac_identity_apply(struct ac_identity_op *op, struct ac_apply *a)
{
    struct ac_domain *d = ac_apply_domain(a);
    int64_t now = ac_apply_now(a);
    op->replayed = 0;
    if (d == NULL || d->registry == NULL) {
        op->result = AC_EC_INTERNAL;
        return;
    }
    /* Each operation allocates what its rows need first, then changes the registry, then queues
     * the rows: a failed ac_apply_stmt (out of memory) fails the whole batch, which reloads the
     * registry, so the rule's result can stand. */
    switch (op->kind) {
    case AC_IDOP_PRINCIPAL:
        op->result = apply_principal(op, d->registry, a, now);
        break;
    case AC_IDOP_KEY:
        op->result = apply_key(op, d->registry, a, now);
        break;
    case AC_IDOP_BINDING:
        op->result =
            op->binding && op->jws ? apply_binding(op, d->registry, a, now) : AC_EC_INTERNAL;
        break;
    case AC_IDOP_REVOCATION:
        op->result =
            op->revocation && op->jws ? apply_revocation(op, d->registry, a, now) : AC_EC_INTERNAL;
        break;
    default:
        op->result = AC_EC_INTERNAL;
    }
}

static void identity_op(struct ac_cmd *c, struct ac_apply *a)
{
    ac_identity_apply(c->op_arg, a);
}

void ac_identity_cmd(struct ac_cmd *cmd, struct ac_identity_op *op)
{
    cmd->kind = AC_CMD_OP;
    cmd->n = 1;
    cmd->op = identity_op;
    cmd->op_arg = op;
}
