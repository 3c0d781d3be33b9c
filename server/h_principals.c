/* Principals (operator API): users and merchants with their public keys.
 *
 * POST /v1/users                 {"id", "keys": [jwk, ...]}                     201 | 200 replay
 * GET  /v1/users/{id}
 * POST /v1/users/{id}/keys       {"jwk": jwk}                                   201 | 200 replay
 * POST /v1/merchants             {"id", "name", "category", "keys": [jwk, ...]} 201 | 200 replay
 * GET  /v1/merchants/{id}
 * POST /v1/merchants/{id}/keys   {"jwk": jwk}                                   201 | 200 replay
 *
 * Registration runs through the sequencer (ledger/identity_ops.c), which owns the registry;
 * reads answer from the registry. The answer lists each key with its kid (RFC 7638 thumbprint),
 * alg and public JWK. Identity is served by the node that holds the writer lease (it alone has
 * the registry loaded): elsewhere every endpoint answers 503 not_leader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/identity_ops.h"
#include "protocol/jose.h"
#include "server/handlers.h"
#include "server/seqcall.h"

struct pctx {
    struct ac_cmd cmd;
    struct ac_identity_op op;
};

static void pctx_free(void *p)
{
    struct pctx *x = p;
    for (size_t i = 0; i < x->op.nkeys; i++)
        EVP_PKEY_free(x->op.keys[i]);
    free(x);
}

static json_t *principal_json(const struct ac_principal_info *p)
{
    char ts[40];
    json_t *keys = json_array();
    for (size_t i = 0; i < p->nkeys; i++) {
        const struct ac_key_info *k = &p->keys[i];
        ac_rfc3339(k->created_us, ts);
        json_array_append_new(keys, json_pack("{s:s, s:s, s:o, s:s}", "kid", k->kid, "alg",
                                              k->alg == AC_SIG_ED25519 ? "EdDSA" : "ES256", "jwk",
                                              ac_jwk_export_public(k->key), "created_at", ts));
    }
    ac_rfc3339(p->created_us, ts);
    json_t *j = json_pack("{s:s, s:s, s:o, s:s}", "id", p->id, "status", "active", "keys", keys,
                          "created_at", ts);
    if (j && p->role == AC_ROLE_MERCHANT) {
        json_object_set_new(j, "name", json_string(p->name));
        json_object_set_new(j, "category", json_string(p->category));
    }
    return j;
}

static enum MHD_Result reply_principal(struct ac_req *r, enum ac_principal_role role,
                                       const char *id, unsigned status)
{
    struct ac_principal_info p;
    enum ac_ec ec = ac_registry_principal_get(r->app->registry, role, id, &p);
    if (ec != AC_EC_OK) return ac_reply_problem(r, ec, NULL, NULL);
    json_t *j = principal_json(&p);
    ac_principal_info_clear(&p);
    if (j == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, status, j);
}

static enum MHD_Result leader_only(struct ac_req *r)
{
    return ac_reply_problem(r, AC_EC_NOT_LEADER, "identity is served by the writer node", NULL);
}

/* Import one JWK; on failure queues a problem pointing at `ptr`. */
static enum MHD_Result import_key(struct ac_req *r, const json_t *jwk, const char *ptr,
                                  EVP_PKEY **out)
{
    const char *detail = NULL;
    enum ac_ec ec =
        json_is_object(jwk) ? ac_jwk_import_public(jwk, out, &detail) : AC_EC_JWK_INVALID;
    if (ec == AC_EC_OK) return MHD_YES;
    return ac_reply_problem(r, ec, detail ? detail : "a jwk must be a json object",
                            json_pack("{s:s}", "pointer", ptr));
}

/* Parse {"id", ["name", "category",] "keys": [...]} into x->op. Returns MHD_YES with x->op.kind
 * set, or the reply's result (x->op.kind 0). */
static enum MHD_Result parse_create(struct ac_req *r, struct pctx *x, enum ac_principal_role role)
{
    json_t *body;
    enum MHD_Result rc = ac_req_json(r, &body);
    if (body == NULL) return rc;
    const char *id, *name = "", *category = "";
    json_t *keys;
    json_error_t e;
    int bad = role == AC_ROLE_USER
                  ? json_unpack_ex(body, &e, JSON_STRICT, "{s:s, s:o}", "id", &id, "keys", &keys)
                  : json_unpack_ex(body, &e, JSON_STRICT, "{s:s, s:s, s:s, s:o}", "id", &id, "name",
                                   &name, "category", &category, "keys", &keys);
    if (bad || !json_is_array(keys)) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_JSON_SCHEMA, bad ? e.text : "keys must be an array", NULL);
    }
    enum ac_ec ec = AC_EC_OK;
    const char *detail = NULL;
    size_t n = json_array_size(keys);
    if (!ac_id_valid(id))
        ec = AC_EC_ID_INVALID;
    else if (role == AC_ROLE_MERCHANT && !ac_merchant_name_valid(name)) {
        ec = AC_EC_PARAMETER_INVALID;
        detail = "name must be 1-128 bytes without control characters";
    } else if (role == AC_ROLE_MERCHANT && !ac_id_valid(category)) {
        ec = AC_EC_PARAMETER_INVALID;
        detail = "category must be 1-64 characters of [A-Za-z0-9._:-]";
    } else if (n == 0) {
        ec = AC_EC_JSON_SCHEMA;
        detail = "at least one key is required";
    } else if (n > AC_REGISTRY_MAX_KEYS) {
        ec = AC_EC_KEYS_LIMIT;
        detail = "at most 16 keys per principal";
    }
    if (ec != AC_EC_OK) {
        json_decref(body);
        return ac_reply_problem(r, ec, detail, NULL);
    }
    x->op.role = role;
    snprintf(x->op.id, sizeof x->op.id, "%s", id);
    snprintf(x->op.name, sizeof x->op.name, "%s", name);
    snprintf(x->op.category, sizeof x->op.category, "%s", category);
    char kids[AC_REGISTRY_MAX_KEYS][AC_JWK_THUMBPRINT_SIZE];
    for (size_t i = 0; i < n; i++) {
        char ptr[32];
        snprintf(ptr, sizeof ptr, "/keys/%zu", i);
        rc = import_key(r, json_array_get(keys, i), ptr, &x->op.keys[i]);
        if (x->op.keys[i] == NULL) {
            json_decref(body);
            return rc;
        }
        x->op.nkeys++;
        if (ac_jwk_thumbprint(x->op.keys[i], kids[i]) != 0) {
            json_decref(body);
            return ac_reply_problem(r, AC_EC_JWK_INVALID, NULL, NULL);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(kids[i], kids[j]) == 0) {
                json_decref(body);
                return ac_reply_problem(r, AC_EC_PARAMETER_INVALID, "the same key twice",
                                        json_pack("{s:s}", "pointer", ptr));
            }
    }
    json_decref(body);
    x->op.kind = AC_IDOP_PRINCIPAL;
    return MHD_YES;
}

static enum MHD_Result parse_key(struct ac_req *r, struct pctx *x, enum ac_principal_role role)
{
    json_t *body;
    enum MHD_Result rc = ac_req_json(r, &body);
    if (body == NULL) return rc;
    json_t *jwk;
    json_error_t e;
    if (json_unpack_ex(body, &e, JSON_STRICT, "{s:o}", "jwk", &jwk)) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_JSON_SCHEMA, e.text, NULL);
    }
    rc = import_key(r, jwk, "/jwk", &x->op.keys[0]);
    json_decref(body);
    if (x->op.keys[0] == NULL) return rc;
    x->op.nkeys = 1;
    x->op.role = role;
    snprintf(x->op.id, sizeof x->op.id, "%s", r->params[0]);
    x->op.kind = AC_IDOP_KEY;
    return MHD_YES;
}

/* One handler body for the four POSTs: parse, submit, reply. */
static enum MHD_Result post(struct ac_req *r, enum ac_principal_role role, int key)
{
    struct pctx *x = r->hctx;
    if (x == NULL) {
        if (!ac_seq_is_leader(r->app->seq)) return leader_only(r);
        x = calloc(1, sizeof *x);
        if (x == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        r->hctx = x;
        r->hctx_free = pctx_free;
        enum MHD_Result rc = key ? parse_key(r, x, role) : parse_create(r, x, role);
        if (x->op.kind == 0) return rc;
        ac_identity_cmd(&x->cmd, &x->op);
        return ac_seqcall(r, &x->cmd);
    }
    if (x->cmd.status != AC_EC_OK) return ac_reply_problem(r, x->cmd.status, NULL, NULL);
    if (x->op.result != AC_EC_OK) return ac_reply_problem(r, x->op.result, NULL, NULL);
    return reply_principal(r, role, x->op.id, x->op.replayed ? 200 : 201);
}

static enum MHD_Result get(struct ac_req *r, enum ac_principal_role role)
{
    if (!ac_seq_is_leader(r->app->seq)) return leader_only(r);
    return reply_principal(r, role, r->params[0], 200);
}

enum MHD_Result ac_h_users_post(struct ac_req *r)
{
    return post(r, AC_ROLE_USER, 0);
}

enum MHD_Result ac_h_users_get(struct ac_req *r)
{
    return get(r, AC_ROLE_USER);
}

enum MHD_Result ac_h_user_keys_post(struct ac_req *r)
{
    return post(r, AC_ROLE_USER, 1);
}

enum MHD_Result ac_h_merchants_post(struct ac_req *r)
{
    return post(r, AC_ROLE_MERCHANT, 0);
}

enum MHD_Result ac_h_merchants_get(struct ac_req *r)
{
    return get(r, AC_ROLE_MERCHANT);
}

enum MHD_Result ac_h_merchant_keys_post(struct ac_req *r)
{
    return post(r, AC_ROLE_MERCHANT, 1);
}
