/* The identity tables: inserts queued into the sequencer's batch, and the registry's load. */
#include "ledger/db_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jose.h"

static const struct ac_db_stmt identity_stmts[] = {
    {"id_user_ins", "insert into ac_users (id, created_us) values ($1, $2::int8)", 2},
    {"id_merchant_ins",
     "insert into ac_merchants (id, name, category, created_us) values ($1, $2, $3, $4::int8)", 4},
    {"id_key_ins",
     "insert into ac_principal_keys (kid, user_id, merchant_id, alg, jwk, created_us) "
     "values ($1, $2, $3, $4, $5, $6::int8)",
     6},
    {"id_binding_ins",
     "insert into ac_bindings (id, user_id, user_kid, agent_id, agent_kid, agent_jwk, software, "
     "model, environment, runtime_digest, max_autonomy, iat, nbf, exp, jws, created_us) values "
     "($1, $2, $3, $4, $5, $6, $7, $8, $9, decode($10, 'hex'), $11::int2, $12::int8, $13::int8, "
     "$14::int8, $15, $16::int8)",
     16},
    {"id_revocation_ins",
     "insert into ac_binding_revocations (binding_id, user_id, user_kid, jws, revoked_us) "
     "values ($1, $2, $3, $4, $5::int8)",
     5},
    /* Every identity row in registration order, in one statement (one snapshot):
     * kind, a, b, c, d, time. */
    {"id_load",
     "select kind, a, b, c, d, t from ("
     " select seq, 'user' as kind, id as a, '' as b, '' as c, '' as d, created_us as t "
     "  from ac_users"
     " union all select seq, 'merchant', id, name, category, '', created_us from ac_merchants"
     " union all select seq, 'key', kid, case when user_id is null then 'merchant' else 'user' "
     "  end, coalesce(user_id, merchant_id), jwk, created_us from ac_principal_keys"
     " union all select seq, 'binding', id, '', '', jws, created_us from ac_bindings"
     " union all select seq, 'revocation', binding_id, user_id, user_kid, jws, revoked_us "
     "  from ac_binding_revocations"
     ") as rows order by seq",
     0},
};

int ac_db_identity_register(void)
{
    return ac_db_register(AC_DB_WRITER, identity_stmts,
                          sizeof identity_stmts / sizeof identity_stmts[0]);
}

/* ---- rows ------------------------------------------------------------------------------------ */

int ac_db_identity_principal(struct ac_apply *a, enum ac_principal_role role, const char *id,
                             const char *name, const char *category, int64_t created_us)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)created_us);
    if (role == AC_ROLE_USER) {
        const char *v[] = {id, t};
        return ac_apply_stmt(a, "id_user_ins", 2, v);
    }
    const char *v[] = {id, name, category, t};
    return ac_apply_stmt(a, "id_merchant_ins", 4, v);
}

int ac_db_identity_key(struct ac_apply *a, enum ac_principal_role role, const char *owner_id,
                       EVP_PKEY *key, const char *jwk, int64_t created_us)
{
    char kid[AC_JWK_THUMBPRINT_SIZE], t[24];
    enum ac_sig_alg alg = ac_sig_key_alg(key);
    /* the thumbprint is computed without allocating; a key the registry took has one */
    if (ac_jwk_thumbprint(key, kid) != 0) kid[0] = '\0'; /* refused by the table's check */
    snprintf(t, sizeof t, "%lld", (long long)created_us);
    const char *v[] = {kid,
                       role == AC_ROLE_USER ? owner_id : NULL,
                       role == AC_ROLE_MERCHANT ? owner_id : NULL,
                       alg == AC_SIG_ED25519 ? "EdDSA" : "ES256",
                       jwk,
                       t};
    return ac_apply_stmt(a, "id_key_ins", 6, v);
}

int ac_db_identity_binding(struct ac_apply *a, const struct ac_binding_doc *doc, const char *jws,
                           const char *jwk, int64_t created_us)
{
    char digest[2 * AC_RUNTIME_DIGEST_LEN + 1], autonomy[4], iat[24], nbf[24], exp[24], t[24];
    for (int i = 0; i < AC_RUNTIME_DIGEST_LEN; i++)
        snprintf(digest + 2 * i, 3, "%02x", doc->runtime_digest[i]);
    snprintf(autonomy, sizeof autonomy, "%d", doc->max_autonomy);
    snprintf(iat, sizeof iat, "%lld", (long long)doc->iat);
    snprintf(nbf, sizeof nbf, "%lld", (long long)doc->nbf);
    snprintf(exp, sizeof exp, "%lld", (long long)doc->exp);
    snprintf(t, sizeof t, "%lld", (long long)created_us);
    const char *v[] = {doc->id,
                       doc->user_id,
                       doc->user_kid,
                       doc->agent_id,
                       doc->agent_kid,
                       jwk,
                       doc->software,
                       doc->model,
                       doc->environment,
                       digest,
                       autonomy,
                       iat,
                       nbf,
                       exp,
                       jws,
                       t};
    return ac_apply_stmt(a, "id_binding_ins", 16, v);
}

int ac_db_identity_revocation(struct ac_apply *a, const char *binding_id, const char *user_id,
                              const char *user_kid, const char *jws, int64_t revoked_us)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)revoked_us);
    const char *v[] = {binding_id, user_id, user_kid, jws, t};
    return ac_apply_stmt(a, "id_revocation_ins", 5, v);
}

/* ---- load ------------------------------------------------------------------------------------ */

/* Replay one row into the staging registry. Returns AC_EC_OK or the rule's refusal. */
static enum ac_ec replay_row(struct ac_registry *reg, const PGresult *r, const char **what)
{
    const char *kind = PQgetvalue(r, 0, 0), *a = PQgetvalue(r, 0, 1), *b = PQgetvalue(r, 0, 2),
               *c = PQgetvalue(r, 0, 3), *d = PQgetvalue(r, 0, 4);
    int64_t t = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    int replayed = 0;
    enum ac_ec ec;
    *what = kind;
    if (strcmp(kind, "user") == 0) {
        ec = ac_registry_principal_create(reg, AC_ROLE_USER, a, NULL, NULL, NULL, 0, t, &replayed);
    } else if (strcmp(kind, "merchant") == 0) {
        ec = ac_registry_principal_create(reg, AC_ROLE_MERCHANT, a, b, c, NULL, 0, t, &replayed);
    } else if (strcmp(kind, "key") == 0) {
        EVP_PKEY *key = NULL;
        ec = ac_jwk_import_public_text(d, strlen(d), &key, NULL);
        if (ec == AC_EC_OK)
            ec = ac_registry_key_add(reg, strcmp(b, "user") == 0 ? AC_ROLE_USER : AC_ROLE_MERCHANT,
                                     c, key, t, &replayed);
        EVP_PKEY_free(key);
    } else if (strcmp(kind, "binding") == 0) {
        struct ac_binding_doc doc;
        ec = ac_binding_parse(d, strlen(d), &doc, NULL);
        if (ec == AC_EC_OK && strcmp(doc.id, a) != 0) ec = AC_EC_BINDING_INVALID;
        if (ec == AC_EC_OK) ec = ac_registry_binding_add(reg, &doc, d, t, &replayed);
        ac_binding_clear(&doc);
    } else if (strcmp(kind, "revocation") == 0) {
        ec = ac_registry_binding_revoke(reg, a, b, c, d, t, &replayed);
    } else {
        ec = AC_EC_INTERNAL;
    }
    /* every row was admitted once: a replay here would mean a duplicate row */
    if (ec == AC_EC_OK && replayed) ec = AC_EC_INTERNAL;
    return ec;
}

enum ac_qs ac_db_identity_load(PGconn *c, struct ac_registry *reg)
{
    struct ac_registry *fresh = ac_registry_new();
    if (fresh == NULL) return AC_QS_HARD_ERROR;
    if (PQsendQueryPrepared(c, "id_load", 0, NULL, NULL, NULL, 0) != 1) {
        ac_registry_free(fresh);
        return AC_QS_SOFT_ERROR;
    }
    PQsetSingleRowMode(c);
    enum ac_qs qs = AC_QS_ONE_RESULT;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_SINGLE_TUPLE && qs == AC_QS_ONE_RESULT) {
            const char *what = "";
            enum ac_ec ec = replay_row(fresh, r, &what);
            if (ec != AC_EC_OK) {
                fprintf(stderr, "identity: cannot load %s row '%s': %s\n", what,
                        PQgetvalue(r, 0, 1), ac_ec_code(ec));
                qs = AC_QS_HARD_ERROR;
            }
        } else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK) {
            qs = ac_db_classify(c, r);
        }
        PQclear(r);
    }
    if (qs == AC_QS_ONE_RESULT) {
        ac_registry_commit(fresh);
        ac_registry_replace(reg, fresh);
    }
    ac_registry_free(fresh);
    return qs;
}
