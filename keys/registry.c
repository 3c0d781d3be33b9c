/* The identity registry (see registry.h). Hash maps keyed by id or key id; entries are never
 * removed one by one (ids are unique forever), only dropped all together when the registry is
 * freed or replaced by a reload. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writers preferred */
#include "keys/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sha256.h"
#include "protocol/strmap.h"

/* ---- entries --------------------------------------------------------------------------------- */

struct principal;

struct pkey {
    char kid[AC_JWK_THUMBPRINT_SIZE];
    EVP_PKEY *key;
    enum ac_sig_alg alg;
    struct principal *owner;
    int64_t created_us;
    uint64_t gen;
};

struct principal {
    enum ac_principal_role role;
    char id[AC_ID_MAX + 1];
    char name[AC_MERCHANT_NAME_MAX + 1];
    char category[AC_ID_MAX + 1];
    int64_t created_us;
    uint64_t gen;
    size_t nkeys;
    struct pkey *keys[AC_REGISTRY_MAX_KEYS];
};

struct binding {
    struct ac_binding_info info; /* what ac_registry_binding_get() copies out */
    uint8_t jws_sha256[32];      /* SHA-256 of info.jws: evidence records refer to it */
    uint64_t gen;
    struct binding *prev; /* the binding of the same agent key this one replaced in the index */
};

static const char *principal_key(const void *v)
{
    return ((const struct principal *)v)->id;
}
static const char *pkey_key(const void *v)
{
    return ((const struct pkey *)v)->kid;
}
static const char *binding_key(const void *v)
{
    return ((const struct binding *)v)->info.id;
}
static const char *agent_key(const void *v)
{
    return ((const struct binding *)v)->info.agent_kid;
}

/* Everything the registry holds. Readers see an entry when gen <= visible; the writer stamps new
 * entries with cur (= visible + 1) and ac_registry_commit() advances both. */
struct data {
    struct ac_strmap users, merchants, keys, bindings, agents;
    uint64_t visible, cur;
    int touched; /* the writer changed something since the last commit (ac_registry_pending) */
};

struct ac_registry {
    pthread_rwlock_t lock;
    struct data d;
};

static void data_init(struct data *d)
{
    memset(d, 0, sizeof *d);
    d->users.key = principal_key;
    d->merchants.key = principal_key;
    d->keys.key = pkey_key;
    d->bindings.key = binding_key;
    d->agents.key = agent_key;
    d->cur = 1;
}

static void data_free(struct data *d)
{
    for (size_t i = 0; i < d->users.cap; i++)
        free(d->users.slots[i]);
    for (size_t i = 0; i < d->merchants.cap; i++)
        free(d->merchants.slots[i]);
    for (size_t i = 0; i < d->keys.cap; i++) {
        struct pkey *k = d->keys.slots[i];
        if (k == NULL) continue;
        EVP_PKEY_free(k->key);
        free(k);
    }
    for (size_t i = 0; i < d->bindings.cap; i++) {
        struct binding *b = d->bindings.slots[i];
        if (b == NULL) continue;
        ac_binding_info_clear(&b->info);
        free(b);
    }
    free(d->users.slots);
    free(d->merchants.slots);
    free(d->keys.slots);
    free(d->bindings.slots);
    free(d->agents.slots);
    data_init(d);
}

struct ac_registry *ac_registry_new(void)
{
    struct ac_registry *reg = calloc(1, sizeof *reg);
    if (reg == NULL) return NULL;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* the sequencer must not starve behind a stream of HTTP readers */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&reg->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(reg);
        return NULL;
    }
    data_init(&reg->d);
    return reg;
}

void ac_registry_free(struct ac_registry *reg)
{
    if (reg == NULL) return;
    data_free(&reg->d);
    pthread_rwlock_destroy(&reg->lock);
    free(reg);
}

int ac_merchant_name_valid(const char *s)
{
    if (s == NULL) return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= AC_MERCHANT_NAME_MAX || c < 0x20 || c == 0x7f) return 0;
    }
    return n > 0;
}

/* ---- readers --------------------------------------------------------------------------------- */

static struct ac_strmap *principals(struct data *d, enum ac_principal_role role)
{
    return role == AC_ROLE_USER ? &d->users : &d->merchants;
}

/* This thread reads the writer's view (ac_registry_writer_view). */
static _Thread_local int writer_view;

void ac_registry_writer_view(int on)
{
    writer_view = on;
}

static int visible(const struct data *d, uint64_t gen)
{
    return writer_view || gen <= d->visible;
}

enum ac_ec ac_registry_resolve(void *cls, const char *keyid, struct ac_resolved_key *out)
{
    struct ac_registry *reg = cls;
    memset(out, 0, sizeof *out);
    if (reg == NULL || !ac_keyid_valid(keyid)) return AC_EC_SIG_KEY_UNKNOWN;
    enum ac_ec ec = AC_EC_SIG_KEY_UNKNOWN;
    pthread_rwlock_rdlock(&reg->lock);
    struct data *d = &reg->d;
    struct binding *b = ac_strmap_get(&d->agents, keyid);
    while (b && !visible(d, b->gen))
        b = b->prev;
    struct pkey *k = b ? NULL : ac_strmap_get(&d->keys, keyid);
    if (b && EVP_PKEY_up_ref(b->info.agent_key) == 1) {
        out->kind = AC_PRINCIPAL_AGENT;
        out->key = b->info.agent_key;
        memcpy(out->keyid, b->info.agent_kid, sizeof b->info.agent_kid);
        memcpy(out->binding_id, b->info.id, sizeof b->info.id);
        memcpy(out->user_id, b->info.user_id, sizeof b->info.user_id);
        memcpy(out->agent_id, b->info.agent_id, sizeof b->info.agent_id);
        memcpy(out->runtime_digest, b->info.runtime_digest, sizeof b->info.runtime_digest);
        out->max_autonomy = b->info.max_autonomy;
        out->nbf = b->info.nbf;
        out->exp = b->info.exp;
        out->revoked = b->info.revoked;
        ec = AC_EC_OK;
    } else if (k && visible(d, k->gen) && k->owner->role == AC_ROLE_MERCHANT &&
               EVP_PKEY_up_ref(k->key) == 1) {
        out->kind = AC_PRINCIPAL_MERCHANT;
        out->key = k->key;
        memcpy(out->keyid, k->kid, sizeof k->kid);
        memcpy(out->merchant_id, k->owner->id, sizeof k->owner->id);
        ec = AC_EC_OK;
    }
    pthread_rwlock_unlock(&reg->lock);
    return ec;
}

enum ac_ec ac_registry_user_key(struct ac_registry *reg, const char *user_id, const char *kid,
                                EVP_PKEY **out)
{
    *out = NULL;
    pthread_rwlock_rdlock(&reg->lock);
    struct data *d = &reg->d;
    struct principal *u = ac_strmap_get(&d->users, user_id);
    struct pkey *k = kid ? ac_strmap_get(&d->keys, kid) : NULL;
    enum ac_ec ec;
    if (u == NULL || !visible(d, u->gen))
        ec = AC_EC_USER_UNKNOWN;
    else if (k == NULL || !visible(d, k->gen) || k->owner != u)
        ec = AC_EC_JWS_KEY_UNKNOWN;
    else if (EVP_PKEY_up_ref(k->key) != 1)
        ec = AC_EC_INTERNAL;
    else {
        *out = k->key;
        ec = AC_EC_OK;
    }
    pthread_rwlock_unlock(&reg->lock);
    return ec;
}

void ac_principal_info_clear(struct ac_principal_info *p)
{
    if (p == NULL) return;
    for (size_t i = 0; i < p->nkeys; i++)
        EVP_PKEY_free(p->keys[i].key);
    memset(p, 0, sizeof *p);
}

enum ac_ec ac_registry_principal_get(struct ac_registry *reg, enum ac_principal_role role,
                                     const char *id, struct ac_principal_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&reg->lock);
    struct data *d = &reg->d;
    struct principal *p = ac_strmap_get(principals(d, role), id);
    enum ac_ec ec = AC_EC_OK;
    if (p == NULL || !visible(d, p->gen)) {
        ec = role == AC_ROLE_USER ? AC_EC_USER_UNKNOWN : AC_EC_MERCHANT_UNKNOWN;
    } else {
        out->role = p->role;
        memcpy(out->id, p->id, sizeof p->id);
        memcpy(out->name, p->name, sizeof p->name);
        memcpy(out->category, p->category, sizeof p->category);
        out->created_us = p->created_us;
        for (size_t i = 0; i < p->nkeys; i++) {
            struct pkey *k = p->keys[i];
            if (!visible(d, k->gen) || EVP_PKEY_up_ref(k->key) != 1) continue;
            struct ac_key_info *ki = &out->keys[out->nkeys++];
            memcpy(ki->kid, k->kid, sizeof k->kid);
            ki->alg = k->alg;
            ki->key = k->key;
            ki->created_us = k->created_us;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return ec;
}

void ac_binding_info_clear(struct ac_binding_info *b)
{
    if (b == NULL) return;
    EVP_PKEY_free(b->agent_key);
    free(b->jws);
    free(b->revocation_jws);
    memset(b, 0, sizeof *b);
}

enum ac_ec ac_registry_binding_get(struct ac_registry *reg, const char *id,
                                   struct ac_binding_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&reg->lock);
    struct data *d = &reg->d;
    struct binding *b = ac_strmap_get(&d->bindings, id);
    enum ac_ec ec = AC_EC_OK;
    if (b == NULL || !visible(d, b->gen)) {
        ec = AC_EC_BINDING_UNKNOWN;
    } else {
        /* everything, then a copy of each thing it owns */
        *out = b->info;
        out->jws = strdup(b->info.jws);
        out->revocation_jws = b->info.revocation_jws ? strdup(b->info.revocation_jws) : NULL;
        out->agent_key = EVP_PKEY_up_ref(b->info.agent_key) == 1 ? b->info.agent_key : NULL;
        if (out->jws == NULL || out->agent_key == NULL ||
            (b->info.revocation_jws && out->revocation_jws == NULL))
            ec = AC_EC_INTERNAL;
    }
    pthread_rwlock_unlock(&reg->lock);
    if (ec != AC_EC_OK) ac_binding_info_clear(out);
    return ec;
}

enum ac_ec ac_registry_binding_state(struct ac_registry *reg, const char *id,
                                     struct ac_binding_state *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&reg->lock);
    struct binding *b = ac_strmap_get(&reg->d.bindings, id);
    if (b) {
        memcpy(out->user_id, b->info.user_id, sizeof out->user_id);
        memcpy(out->user_kid, b->info.user_kid, sizeof out->user_kid);
        memcpy(out->agent_id, b->info.agent_id, sizeof out->agent_id);
        memcpy(out->jws_sha256, b->jws_sha256, sizeof out->jws_sha256);
        out->max_autonomy = b->info.max_autonomy;
        out->nbf = b->info.nbf;
        out->exp = b->info.exp;
        out->revoked = b->info.revoked;
    }
    pthread_rwlock_unlock(&reg->lock);
    return b ? AC_EC_OK : AC_EC_BINDING_UNKNOWN;
}

enum ac_ec ac_registry_merchant_category(struct ac_registry *reg, const char *id,
                                         char category[AC_ID_MAX + 1])
{
    category[0] = '\0';
    pthread_rwlock_rdlock(&reg->lock);
    struct data *d = &reg->d;
    struct principal *p = ac_strmap_get(&d->merchants, id);
    int ok = p && visible(d, p->gen);
    if (ok) memcpy(category, p->category, sizeof p->category);
    pthread_rwlock_unlock(&reg->lock);
    return ok ? AC_EC_OK : AC_EC_MERCHANT_UNKNOWN;
}

void ac_registry_counts(struct ac_registry *reg, struct ac_registry_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&reg->lock);
    struct data *d = &reg->d;
    for (size_t i = 0; i < d->users.cap; i++) {
        struct principal *p = d->users.slots[i];
        if (p && visible(d, p->gen)) out->users++;
    }
    for (size_t i = 0; i < d->merchants.cap; i++) {
        struct principal *p = d->merchants.slots[i];
        if (p && visible(d, p->gen)) out->merchants++;
    }
    for (size_t i = 0; i < d->keys.cap; i++) {
        struct pkey *k = d->keys.slots[i];
        if (k && visible(d, k->gen)) out->keys++;
    }
    for (size_t i = 0; i < d->bindings.cap; i++) {
        struct binding *b = d->bindings.slots[i];
        if (b == NULL || !visible(d, b->gen)) continue;
        out->bindings++;
        if (b->info.revoked) out->revoked++;
    }
    pthread_rwlock_unlock(&reg->lock);
}

/* ---- the writer ------------------------------------------------------------------------------ */

static int has_key(const struct principal *p, const char *kid)
{
    for (size_t i = 0; i < p->nkeys; i++)
        if (strcmp(p->keys[i]->kid, kid) == 0) return 1;
    return 0;
}

/* A key that may join a principal: not another principal's, not an agent key. */
static enum ac_ec key_free(struct data *d, const char *kid)
{
    if (ac_strmap_get(&d->keys, kid) || ac_strmap_get(&d->agents, kid)) return AC_EC_KEY_EXISTS;
    return AC_EC_OK;
}

static struct pkey *pkey_new(EVP_PKEY *key, const char *kid, struct principal *owner,
                             int64_t now_us, uint64_t gen)
{
    struct pkey *k = calloc(1, sizeof *k);
    if (k == NULL) return NULL;
    if (EVP_PKEY_up_ref(key) != 1) {
        free(k);
        return NULL;
    }
    k->key = key;
    memcpy(k->kid, kid, AC_JWK_THUMBPRINT_SIZE);
    k->alg = ac_sig_key_alg(key);
    k->owner = owner;
    k->created_us = now_us;
    k->gen = gen;
    return k;
}

static void pkey_free(struct pkey *k)
{
    if (k == NULL) return;
    EVP_PKEY_free(k->key);
    free(k);
}

enum ac_ec ac_registry_principal_create(struct ac_registry *reg, enum ac_principal_role role,
                                        const char *id, const char *name, const char *category,
                                        EVP_PKEY *const *keys, size_t n, int64_t now_us,
                                        int *replayed)
{
    *replayed = 0;
    if (!ac_id_valid(id)) return AC_EC_ID_INVALID;
    if (n > AC_REGISTRY_MAX_KEYS) return AC_EC_KEYS_LIMIT;
    if (role == AC_ROLE_USER) name = category = "";
    if (name == NULL || category == NULL || strlen(name) > AC_MERCHANT_NAME_MAX ||
        strlen(category) > AC_ID_MAX)
        return AC_EC_PARAMETER_INVALID;
    char kids[AC_REGISTRY_MAX_KEYS][AC_JWK_THUMBPRINT_SIZE];
    for (size_t i = 0; i < n; i++) {
        if (ac_jwk_thumbprint(keys[i], kids[i]) != 0) return AC_EC_JWK_INVALID;
        for (size_t j = 0; j < i; j++)
            if (strcmp(kids[i], kids[j]) == 0) return AC_EC_KEY_EXISTS;
    }
    pthread_rwlock_wrlock(&reg->lock);
    struct data *d = &reg->d;
    struct ac_strmap *m = principals(d, role);
    struct principal *p = ac_strmap_get(m, id);
    struct pkey *nk[AC_REGISTRY_MAX_KEYS] = {0};
    enum ac_ec ec = AC_EC_OK;
    if (p) {
        int same = strcmp(p->name, name) == 0 && strcmp(p->category, category) == 0;
        for (size_t i = 0; same && i < n; i++)
            same = has_key(p, kids[i]);
        if (same)
            *replayed = 1;
        else
            ec = AC_EC_PRINCIPAL_EXISTS;
        goto out;
    }
    for (size_t i = 0; i < n && ec == AC_EC_OK; i++)
        ec = key_free(d, kids[i]);
    if (ec != AC_EC_OK) goto out;
    ec = AC_EC_INTERNAL;
    if (ac_strmap_reserve(m, 1) || ac_strmap_reserve(&d->keys, n)) goto out;
    p = calloc(1, sizeof *p);
    if (p == NULL) goto out;
    for (size_t i = 0; i < n; i++) {
        nk[i] = pkey_new(keys[i], kids[i], p, now_us, d->cur);
        if (nk[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                pkey_free(nk[j]);
            free(p);
            goto out;
        }
    }
    p->role = role;
    memcpy(p->id, id, strlen(id) + 1);
    memcpy(p->name, name, strlen(name) + 1);
    memcpy(p->category, category, strlen(category) + 1);
    p->created_us = now_us;
    p->gen = d->cur;
    d->touched = 1;
    for (size_t i = 0; i < n; i++) {
        p->keys[p->nkeys++] = nk[i];
        ac_strmap_put(&d->keys, nk[i]);
    }
    ac_strmap_put(m, p);
    ec = AC_EC_OK;
out:
    pthread_rwlock_unlock(&reg->lock);
    return ec;
}

enum ac_ec ac_registry_key_add(struct ac_registry *reg, enum ac_principal_role role, const char *id,
                               EVP_PKEY *key, int64_t now_us, int *replayed)
{
    *replayed = 0;
    char kid[AC_JWK_THUMBPRINT_SIZE];
    if (ac_jwk_thumbprint(key, kid) != 0) return AC_EC_JWK_INVALID;
    pthread_rwlock_wrlock(&reg->lock);
    struct data *d = &reg->d;
    struct principal *p = ac_strmap_get(principals(d, role), id);
    enum ac_ec ec = AC_EC_OK;
    struct pkey *k = NULL;
    if (p == NULL) {
        ec = role == AC_ROLE_USER ? AC_EC_USER_UNKNOWN : AC_EC_MERCHANT_UNKNOWN;
    } else if (has_key(p, kid)) {
        *replayed = 1;
    } else if (key_free(d, kid) != AC_EC_OK) {
        ec = AC_EC_KEY_EXISTS;
    } else if (p->nkeys == AC_REGISTRY_MAX_KEYS) {
        ec = AC_EC_KEYS_LIMIT;
    } else if (ac_strmap_reserve(&d->keys, 1) || (k = pkey_new(key, kid, p, now_us, d->cur)) == NULL) {
        ec = AC_EC_INTERNAL;
    } else {
        p->keys[p->nkeys++] = k;
        ac_strmap_put(&d->keys, k);
        d->touched = 1;
    }
    pthread_rwlock_unlock(&reg->lock);
    return ec;
}

enum ac_ec ac_registry_binding_add(struct ac_registry *reg, const struct ac_binding_doc *doc,
                                   const char *jws, int64_t now_us, int *replayed)
{
    *replayed = 0;
    pthread_rwlock_wrlock(&reg->lock);
    struct data *d = &reg->d;
    enum ac_ec ec = AC_EC_OK;
    struct binding *old = ac_strmap_get(&d->bindings, doc->id);
    struct principal *u = ac_strmap_get(&d->users, doc->user_id);
    struct pkey *uk = ac_strmap_get(&d->keys, doc->user_kid);
    struct binding *cur = ac_strmap_get(&d->agents, doc->agent_kid);
    struct binding *b = NULL;
    if (old) {
        if (strcmp(old->info.jws, jws) == 0)
            *replayed = 1;
        else
            ec = AC_EC_BINDING_EXISTS;
    } else if (u == NULL) {
        ec = AC_EC_USER_UNKNOWN;
    } else if (uk == NULL || uk->owner != u) {
        ec = AC_EC_JWS_KEY_UNKNOWN;
    } else if (ac_strmap_get(&d->keys, doc->agent_kid)) {
        ec = AC_EC_KEY_EXISTS;
    } else if (cur && !cur->info.revoked && cur->info.exp > now_us / 1000000) {
        ec = AC_EC_AGENT_KEY_BOUND;
    } else if (ac_strmap_reserve(&d->bindings, 1) || ac_strmap_reserve(&d->agents, 1) ||
               (b = calloc(1, sizeof *b)) == NULL || (b->info.jws = strdup(jws)) == NULL ||
               EVP_PKEY_up_ref(doc->agent_key) != 1) {
        if (b) free(b->info.jws);
        free(b);
        ec = AC_EC_INTERNAL;
    } else {
        b->info.agent_key = doc->agent_key;
        ac_sha256(jws, strlen(jws), b->jws_sha256);
        memcpy(b->info.id, doc->id, sizeof b->info.id);
        memcpy(b->info.user_id, doc->user_id, sizeof b->info.user_id);
        memcpy(b->info.user_kid, doc->user_kid, sizeof b->info.user_kid);
        memcpy(b->info.agent_id, doc->agent_id, sizeof b->info.agent_id);
        memcpy(b->info.agent_kid, doc->agent_kid, sizeof b->info.agent_kid);
        memcpy(b->info.software, doc->software, sizeof b->info.software);
        memcpy(b->info.model, doc->model, sizeof b->info.model);
        memcpy(b->info.environment, doc->environment, sizeof b->info.environment);
        memcpy(b->info.runtime_digest, doc->runtime_digest, sizeof b->info.runtime_digest);
        b->info.max_autonomy = doc->max_autonomy;
        b->info.iat = doc->iat;
        b->info.nbf = doc->nbf;
        b->info.exp = doc->exp;
        b->info.created_us = now_us;
        b->gen = d->cur;
        d->touched = 1;
        b->prev = cur;
        ac_strmap_put(&d->bindings, b);
        ac_strmap_put(&d->agents, b);
    }
    pthread_rwlock_unlock(&reg->lock);
    return ec;
}

enum ac_ec ac_registry_binding_revoke(struct ac_registry *reg, const char *binding_id,
                                      const char *user_id, const char *user_kid, const char *jws,
                                      int64_t now_us, int *replayed)
{
    *replayed = 0;
    pthread_rwlock_wrlock(&reg->lock);
    struct data *d = &reg->d;
    enum ac_ec ec = AC_EC_OK;
    struct binding *b = ac_strmap_get(&d->bindings, binding_id);
    struct pkey *k = ac_strmap_get(&d->keys, user_kid);
    char *copy = NULL;
    if (b == NULL)
        ec = AC_EC_BINDING_UNKNOWN;
    else if (strcmp(b->info.user_id, user_id) != 0)
        ec = AC_EC_REVOCATION_INVALID;
    else if (k == NULL || k->owner->role != AC_ROLE_USER || strcmp(k->owner->id, user_id) != 0)
        ec = AC_EC_JWS_KEY_UNKNOWN;
    else if (b->info.revoked)
        *replayed = 1;
    else if ((copy = strdup(jws)) == NULL)
        ec = AC_EC_INTERNAL;
    else {
        b->info.revocation_jws = copy;
        memcpy(b->info.revocation_kid, k->kid, sizeof k->kid);
        b->info.revoked_us = now_us;
        b->info.revoked = 1; /* visible at once: see registry.h */
        d->touched = 1;
    }
    pthread_rwlock_unlock(&reg->lock);
    return ec;
}

void ac_registry_commit(struct ac_registry *reg)
{
    pthread_rwlock_wrlock(&reg->lock);
    reg->d.visible = reg->d.cur;
    reg->d.cur++;
    reg->d.touched = 0;
    pthread_rwlock_unlock(&reg->lock);
}

int ac_registry_pending(struct ac_registry *reg)
{
    pthread_rwlock_rdlock(&reg->lock);
    int t = reg->d.touched;
    pthread_rwlock_unlock(&reg->lock);
    return t;
}

void ac_registry_replace(struct ac_registry *reg, struct ac_registry *src)
{
    struct data old;
    pthread_rwlock_wrlock(&src->lock);
    pthread_rwlock_wrlock(&reg->lock);
    old = reg->d;
    reg->d = src->d;
    data_init(&src->d);
    pthread_rwlock_unlock(&reg->lock);
    pthread_rwlock_unlock(&src->lock);
    data_free(&old);
}
