/* Identity operations on the sequencer thread (see identity_ops.h). */
#include "ledger/identity_ops.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/jose.h"

#include "ledger/db_identity.h"
#include "ledger/domain.h"
#include "protocol/evidence.h"

/* The evidence record of a registered binding or revocation (docs/evidence.md, kinds
 * binding.register and binding.revoke): the documents by hash, id and signer kid, and the ids
 * they bind. No request: the user's signature on the document is the authority, and the document
 * is kept in the identity tables, where dispute bundles and exports take it from. Returns 0, or -1
 * when the record cannot be appended (the batch then fails, see ac_evlog_append). */
static int record_binding(struct ac_apply *a, const char *user, const char *agent,
                          const char *binding_id, const char *binding_kid, const char *binding_jws,
                          const char *rev_kid, const char *rev_jws)
{
    struct ac_domain *d = ac_apply_domain(a);
    if (d->evlog == NULL) return 0;
    struct ac_ev_record r;
    memset(&r, 0, sizeof r);
    r.kind = rev_jws ? AC_EV_BINDING_REVOKE : AC_EV_BINDING_REGISTER;
    r.body.user = user;
    r.body.agent = agent;
    r.body.binding.present = 1;
    r.body.binding.id = binding_id;
    r.body.binding.kid = binding_kid;
    if (ac_ev_doc_hash(binding_jws, strlen(binding_jws), r.body.binding.hash) != 0) return -1;
    if (rev_jws) {
        r.body.revocation.present = 1;
        r.body.revocation.kid = rev_kid;
        if (ac_ev_doc_hash(rev_jws, strlen(rev_jws), r.body.revocation.hash) != 0) return -1;
    }
    return ac_evlog_append(d->evlog, a, &r, NULL, NULL);
}

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
    if (ec == AC_EC_OK && !op->replayed) {
        ac_db_identity_binding(a, b, op->jws, jwk, now);
        if (record_binding(a, b->user_id, b->agent_id, b->id, b->user_kid, op->jws, NULL, NULL))
            ec = AC_EC_INTERNAL;
    }
    free(jwk);
    return ec;
}

static enum ac_ec apply_revocation(struct ac_identity_op *op, struct ac_registry *reg,
                                   struct ac_apply *a, int64_t now)
{
    const struct ac_revocation_doc *r = op->revocation;
    /* the binding as registered, for the record (copied before anything changes) */
    struct ac_binding_info b;
    enum ac_ec ec = ac_registry_binding_get(reg, r->binding_id, &b);
    if (ec == AC_EC_INTERNAL) return ec;
    ec = ac_registry_binding_revoke(reg, r->binding_id, r->user_id, r->user_kid, op->jws, now,
                                    &op->replayed);
    if (ec == AC_EC_OK && !op->replayed) {
        ac_db_identity_revocation(a, r->binding_id, r->user_id, r->user_kid, op->jws, now);
        if (b.jws == NULL || record_binding(a, r->user_id, b.agent_id, b.id, b.user_kid, b.jws,
                                            r->user_kid, op->jws))
            ec = AC_EC_INTERNAL;
    }
    ac_binding_info_clear(&b);
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
