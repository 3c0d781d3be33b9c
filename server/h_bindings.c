/* Bindings (agent runtime identity), docs/identity.md.
 *
 * POST /v1/bindings              {"jws": "<compact binding>"}      201 | 200 (the same JWS again)
 * GET  /v1/bindings/{id}         (operator)                        200
 * POST /v1/bindings/{id}/revoke  {"jws": "<compact revocation>"}   200 (also when already revoked)
 *
 * The two POSTs need no operator token: the user's signature is the authority. Everything that
 * needs no shared state runs here, on the HTTP thread -- parse, look the signing key up in the
 * registry (read lock), verify the signature, check the times -- and only then is the operation
 * submitted to the sequencer, which re-checks what can have changed and writes it. Any failure
 * before that writes nothing. The GET is operator-only: a binding links a user to an agent and its
 * runtime, which is nobody else's business, and its ids are chosen by clients, hence guessable. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys/registry.h"
#include "ledger/identity_ops.h"
#include "protocol/binding.h"
#include "protocol/mandate.h"
#include "server/handlers.h"
#include "server/paydoc.h"
#include "server/seqcall.h"

struct bctx {
    struct ac_cmd cmd;
    struct ac_identity_op op;
    struct ac_binding_doc doc;
    struct ac_revocation_doc rev;
    char *jws;
};

static void bctx_free(void *p)
{
    struct bctx *x = p;
    ac_binding_clear(&x->doc);
    ac_revocation_clear(&x->rev);
    free(x->jws);
    free(x);
}

static const char *status_name(const struct ac_binding_info *b, int64_t now)
{
    if (b->revoked) return "revoked";
    if (now >= b->exp) return "expired";
    if (now < b->nbf) return "not_yet_valid";
    return "active";
}

static json_t *binding_json(const struct ac_binding_info *b)
{
    char ts[40], hdr[AC_RUNTIME_HEADER_MAX + 1];
    if (ac_runtime_header(b->runtime_digest, hdr, sizeof hdr) < 0) return NULL;
    ac_rfc3339(b->created_us, ts);
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s}, s:s, s:s, s:I, s:I, s:I, s:s, s:s, "
        "s:s}",
        "id", b->id, "user", b->user_id, "signed_by", b->user_kid, "agent", b->agent_id,
        "agent_keyid", b->agent_kid, "agent_jwk", ac_jwk_export_public(b->agent_key), "runtime",
        "software", b->software, "model", b->model, "environment", b->environment, "runtime_digest",
        hdr, "max_autonomy", ac_autonomy_name((enum ac_autonomy)b->max_autonomy), "iat",
        (json_int_t)b->iat, "nbf", (json_int_t)b->nbf, "exp", (json_int_t)b->exp, "status",
        status_name(b, (int64_t)time(NULL)), "created_at", ts, "jws", b->jws);
    if (j && b->revoked) {
        ac_rfc3339(b->revoked_us, ts);
        json_object_set_new(j, "revoked_at", json_string(ts));
        json_object_set_new(j, "revocation",
                            json_pack("{s:s, s:s}", "signed_by", b->revocation_kid, "jws",
                                      b->revocation_jws ? b->revocation_jws : ""));
    }
    return j;
}

static enum MHD_Result reply_binding(struct ac_req *r, const char *id, unsigned status)
{
    struct ac_binding_info b;
    enum ac_ec ec = ac_registry_binding_get(r->app->registry, id, &b);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    json_t *j = binding_json(&b);
    ac_binding_info_clear(&b);
    if (j == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, status, j);
}

static enum MHD_Result leader_only(struct ac_req *r)
{
    return ac_reply_problem(r, AC_EC_NOT_LEADER, "identity is served by the writer node", NULL);
}

static struct bctx *new_ctx(struct ac_req *r)
{
    struct bctx *x = calloc(1, sizeof *x);
    if (x == NULL) return NULL;
    r->hctx = x;
    r->hctx_free = bctx_free;
    return x;
}

/* Verify jws (already parsed) with key kid of user. Returns AC_EC_OK or the failure. */
static enum ac_ec verify_user_signature(struct ac_req *r, const struct ac_jws *jws,
                                        const char *user_id, const char *kid)
{
    EVP_PKEY *key = NULL;
    enum ac_ec ec = ac_registry_user_key(r->app->registry, user_id, kid, &key);
    if (ec == AC_EC_OK) ec = ac_jws_verify(jws, key);
    EVP_PKEY_free(key);
    return ec;
}

static enum MHD_Result submit(struct ac_req *r, struct bctx *x)
{
    x->op.jws = x->jws;
    ac_identity_cmd(&x->cmd, &x->op);
    return ac_seqcall(r, &x->cmd);
}

enum MHD_Result ac_h_bindings_post(struct ac_req *r)
{
    struct bctx *x = r->hctx;
    if (x != NULL) { /* resumed: the sequencer's outcome */
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        return reply_binding(r, x->doc.id, x->op.replayed ? 200 : 201);
    }
    if (!ac_seq_is_leader(r->app->seq)) return leader_only(r);
    if ((x = new_ctx(r)) == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    enum MHD_Result rc = ac_paydoc_body_jws(r, &x->jws);
    if (x->jws == NULL) return rc;
    const char *detail = NULL;
    enum ac_ec ec = ac_binding_parse(x->jws, strlen(x->jws), &x->doc, &detail);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, detail, NULL);
    /* the same document again: answer with what was registered (no need to verify again) */
    struct ac_binding_info old;
    if (ac_registry_binding_get(r->app->registry, x->doc.id, &old) == AC_EC_OK) {
        int same = strcmp(old.jws, x->jws) == 0;
        ac_binding_info_clear(&old);
        if (same) return reply_binding(r, x->doc.id, 200);
    }
    ec = verify_user_signature(r, &x->doc.jws, x->doc.user_id, x->doc.user_kid);
    if (ec == AC_EC_OK) ec = ac_binding_check_time(&x->doc, (int64_t)time(NULL), &detail);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, detail, NULL);
    x->op.kind = AC_IDOP_BINDING;
    x->op.binding = &x->doc;
    return submit(r, x);
}

enum MHD_Result ac_h_bindings_get(struct ac_req *r)
{
    if (!ac_seq_is_leader(r->app->seq)) return leader_only(r);
    return reply_binding(r, r->params[0], 200);
}

enum MHD_Result ac_h_binding_revoke(struct ac_req *r)
{
    struct bctx *x = r->hctx;
    if (x != NULL) {
        if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
        if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
        return reply_binding(r, x->rev.binding_id, 200);
    }
    if (!ac_seq_is_leader(r->app->seq)) return leader_only(r);
    if ((x = new_ctx(r)) == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    enum MHD_Result rc = ac_paydoc_body_jws(r, &x->jws);
    if (x->jws == NULL) return rc;
    const char *detail = NULL;
    enum ac_ec ec = ac_revocation_parse(x->jws, strlen(x->jws), &x->rev, &detail);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, detail, NULL);
    if (strcmp(x->rev.binding_id, r->params[0]) != 0)
        return ac_reply_problem(r, AC_EC_REVOCATION_INVALID,
                                "the payload's binding differs from the binding in the path", NULL);
    struct ac_binding_info b;
    ec = ac_registry_binding_get(r->app->registry, r->params[0], &b);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    int mine = strcmp(b.user_id, x->rev.user_id) == 0, revoked = b.revoked;
    ac_binding_info_clear(&b);
    if (!mine)
        return ac_reply_problem(r, AC_EC_REVOCATION_INVALID, "iss is not the binding's user", NULL);
    ec = verify_user_signature(r, &x->rev.jws, x->rev.user_id, x->rev.user_kid);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    if (x->rev.iat > (int64_t)time(NULL) + AC_BINDING_CLOCK_SKEW)
        return ac_reply_problem(r, AC_EC_REVOCATION_INVALID, "iat lies in the future", NULL);
    if (revoked) return reply_binding(r, r->params[0], 200);
    x->op.kind = AC_IDOP_REVOCATION;
    x->op.revocation = &x->rev;
    return submit(r, x);
}
