/* The auditor's per-record checks (see evcheck.h). */
#include "protocol/evcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/b64.h"
#include "protocol/binding.h"
#include "protocol/buf.h"
#include "protocol/digest.h"
#include "protocol/httpsig.h"
#include "protocol/sigbase.h"
#include "protocol/jose.h"
#include "protocol/voucher.h"

/* ---- a small string/hash-keyed table (open addressing, grows at 1/2 load) -------------------- */

struct slot {
    uint64_t h;
    size_t idx; /* index + 1 into the owner's array; 0 = empty */
};
struct table {
    struct slot *s;
    size_t cap, n;
};

static uint64_t fnv(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h ? h : 1;
}

/* Find: calls eq(ctx, idx) for candidates with the same hash; returns idx or SIZE_MAX. */
static size_t tfind(const struct table *t, uint64_t h,
                    int (*eq)(const void *, size_t, const void *), const void *ctx, const void *key)
{
    if (t->cap == 0) return SIZE_MAX;
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (t->s[i].idx == 0) return SIZE_MAX;
        if (t->s[i].h == h && eq(ctx, t->s[i].idx - 1, key)) return t->s[i].idx - 1;
    }
}

static int tput(struct table *t, uint64_t h, size_t idx)
{
    if (2 * (t->n + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct slot *s = calloc(cap, sizeof *s);
        if (s == NULL) return -1;
        for (size_t i = 0; i < t->cap; i++) {
            if (t->s[i].idx == 0) continue;
            size_t j = t->s[i].h & (cap - 1);
            while (s[j].idx)
                j = (j + 1) & (cap - 1);
            s[j] = t->s[i];
        }
        free(t->s);
        t->s = s;
        t->cap = cap;
    }
    size_t j = h & (t->cap - 1);
    while (t->s[j].idx)
        j = (j + 1) & (t->cap - 1);
    t->s[j].h = h;
    t->s[j].idx = idx + 1;
    t->n++;
    return 0;
}

/* ---- state -------------------------------------------------------------------------------------
 */

struct doc {
    uint8_t hash[AC_EV_HASH_LEN];
    char *text;
    size_t len;
    int checked; /* 1 verified by `signer`, -1 failed (why kept) */
    char signer[AC_JWK_THUMBPRINT_SIZE];
    char *why;
    /* bindings, once parsed */
    struct ac_binding_doc *binding;
};

struct ukey {
    char user[AC_ID_MAX + 1];
    char kid[AC_JWK_THUMBPRINT_SIZE];
    EVP_PKEY *key;
};

struct hold {
    char id[AC_ID_MAX + 1];
    size_t debit, credit; /* account indexes */
    int64_t amount;
    int open;
    int expired;
};

/* A hold with a timeout, queued by expiry time (binary min-heap; resolved holds are skipped when
 * they come up). */
struct expiry {
    int64_t at_us;
    size_t hold;
};

struct ac_evcheck {
    struct doc *docs;
    size_t ndocs, capdocs;
    struct table tdocs;
    struct ukey *keys;
    size_t nkeys, capkeys;
    struct table tkeys;
    struct ac_evcheck_account *acc;
    size_t nacc, capacc;
    struct table tacc;
    struct hold *holds;
    size_t nholds, capholds;
    struct table tholds;
    struct expiry *exp;
    size_t nexp, capexp;
    struct ac_evcheck_transfer *xf;
    size_t nxf, capxf;
    struct ac_evcheck_stats st;
};

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 0;
    size_t c = *cap ? 2 * *cap : 64;
    void *q = realloc(*p, c * size);
    if (q == NULL) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

struct ac_evcheck *ac_evcheck_new(void)
{
    return calloc(1, sizeof(struct ac_evcheck));
}

void ac_evcheck_free(struct ac_evcheck *ck)
{
    if (ck == NULL) return;
    for (size_t i = 0; i < ck->ndocs; i++) {
        free(ck->docs[i].text);
        free(ck->docs[i].why);
        if (ck->docs[i].binding) {
            ac_binding_clear(ck->docs[i].binding);
            free(ck->docs[i].binding);
        }
    }
    for (size_t i = 0; i < ck->nkeys; i++)
        EVP_PKEY_free(ck->keys[i].key);
    free(ck->docs);
    free(ck->tdocs.s);
    free(ck->keys);
    free(ck->tkeys.s);
    free(ck->acc);
    free(ck->tacc.s);
    free(ck->holds);
    free(ck->tholds.s);
    free(ck->exp);
    free(ck->xf);
    free(ck);
}

void ac_evcheck_stats(const struct ac_evcheck *ck, struct ac_evcheck_stats *out)
{
    *out = ck->st;
}

const struct ac_evcheck_account *ac_evcheck_accounts(const struct ac_evcheck *ck, size_t *n)
{
    *n = ck->nacc;
    return ck->acc;
}

const struct ac_evcheck_transfer *ac_evcheck_transfers(const struct ac_evcheck *ck, size_t *n)
{
    *n = ck->nxf;
    return ck->xf;
}

/* ---- documents and keys ------------------------------------------------------------------------
 */

static int doc_eq(const void *ctx, size_t i, const void *key)
{
    const struct ac_evcheck *ck = ctx;
    return memcmp(ck->docs[i].hash, key, AC_EV_HASH_LEN) == 0;
}

static uint64_t hash_of_hash(const uint8_t h[AC_EV_HASH_LEN])
{
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v ? v : 1;
}

static struct doc *find_doc(struct ac_evcheck *ck, const uint8_t h[AC_EV_HASH_LEN])
{
    size_t i = tfind(&ck->tdocs, hash_of_hash(h), doc_eq, ck, h);
    return i == SIZE_MAX ? NULL : &ck->docs[i];
}

const char *ac_evcheck_doc(const struct ac_evcheck *ck, const uint8_t hash[AC_EV_HASH_LEN],
                           size_t *len)
{
    struct doc *d = find_doc((struct ac_evcheck *)ck, hash);
    if (d == NULL) return NULL;
    *len = d->len;
    return d->text;
}

const struct ac_binding_doc *ac_evcheck_binding(const struct ac_evcheck *ck,
                                                const uint8_t hash[AC_EV_HASH_LEN])
{
    struct doc *d = find_doc((struct ac_evcheck *)ck, hash);
    return d && d->checked == 1 ? d->binding : NULL;
}

int ac_evcheck_document(struct ac_evcheck *ck, const uint8_t *doc, size_t len, char *why,
                        size_t whylen)
{
    uint8_t h[AC_EV_HASH_LEN];
    if (ac_ev_doc_hash(doc, len, h) != 0) return say(why, whylen, "hashing failed");
    if (find_doc(ck, h)) return 0;
    if (grow((void **)&ck->docs, &ck->capdocs, ck->ndocs, sizeof *ck->docs) != 0)
        return say(why, whylen, "out of memory");
    struct doc *d = &ck->docs[ck->ndocs];
    memset(d, 0, sizeof *d);
    memcpy(d->hash, h, AC_EV_HASH_LEN);
    d->text = malloc(len + 1);
    if (d->text == NULL || tput(&ck->tdocs, hash_of_hash(h), ck->ndocs) != 0) {
        free(d->text);
        return say(why, whylen, "out of memory");
    }
    memcpy(d->text, doc, len);
    d->text[len] = '\0';
    d->len = len;
    ck->ndocs++;
    return 0;
}

static int key_eq(const void *ctx, size_t i, const void *key)
{
    const struct ac_evcheck *ck = ctx;
    return strcmp(ck->keys[i].kid, key) == 0;
}

static struct ukey *find_key(struct ac_evcheck *ck, const char *kid)
{
    size_t i = tfind(&ck->tkeys, fnv(kid, strlen(kid)), key_eq, ck, kid);
    return i == SIZE_MAX ? NULL : &ck->keys[i];
}

int ac_evcheck_user_key(struct ac_evcheck *ck, const char *user, const char *jwk, size_t len,
                        char *why, size_t whylen)
{
    if (!ac_id_valid(user)) return say(why, whylen, "user key of an invalid user id");
    EVP_PKEY *k = NULL;
    if (ac_jwk_import_public_text(jwk, len, &k, NULL) != AC_EC_OK)
        return say(why, whylen, "a key of user %s is not a public jwk", user);
    char kid[AC_JWK_THUMBPRINT_SIZE];
    if (ac_jwk_thumbprint(k, kid) != 0) {
        EVP_PKEY_free(k);
        return say(why, whylen, "out of memory");
    }
    struct ukey *old = find_key(ck, kid);
    if (old) {
        EVP_PKEY_free(k);
        if (strcmp(old->user, user) != 0)
            return say(why, whylen, "key %s is listed for user %s and user %s", kid, old->user,
                       user);
        return 0;
    }
    if (grow((void **)&ck->keys, &ck->capkeys, ck->nkeys, sizeof *ck->keys) != 0 ||
        tput(&ck->tkeys, fnv(kid, strlen(kid)), ck->nkeys) != 0) {
        EVP_PKEY_free(k);
        return say(why, whylen, "out of memory");
    }
    struct ukey *u = &ck->keys[ck->nkeys++];
    snprintf(u->user, sizeof u->user, "%s", user);
    memcpy(u->kid, kid, sizeof u->kid);
    u->key = k;
    return 0;
}

/* The document a docref names, verified once as a JWS by a key of `user` (any user when NULL).
 * Returns it, or NULL with why. */
static struct doc *user_doc(struct ac_evcheck *ck, const struct ac_ev_docref *d, const char *role,
                            const char *user, char *why, size_t whylen)
{
    char hx[17];
    for (int i = 0; i < 8; i++)
        snprintf(hx + 2 * i, 3, "%02x", d->hash[i]);
    struct doc *doc = find_doc(ck, d->hash);
    if (doc == NULL) {
        say(why, whylen, "its %s document (sha256 %s...) is not in the export", role, hx);
        return NULL;
    }
    if (doc->checked == 0) {
        struct ac_jws jws;
        const char *detail = NULL;
        enum ac_ec ec = ac_jws_parse(doc->text, doc->len, &jws, &detail);
        char buf[200] = "";
        if (ec != AC_EC_OK) {
            snprintf(buf, sizeof buf, "is not a compact jws (%s)", ac_ec_code(ec));
        } else {
            struct ukey *k = jws.kid ? find_key(ck, jws.kid) : NULL;
            if (k == NULL)
                snprintf(buf, sizeof buf, "is signed by key %s, which no user has",
                         jws.kid ? jws.kid : "(no kid)");
            else if (ac_jws_verify(&jws, k->key) != AC_EC_OK)
                snprintf(buf, sizeof buf, "does not verify with user key %s", k->kid);
            else
                memcpy(doc->signer, k->kid, sizeof doc->signer);
            ac_jws_clear(&jws);
        }
        doc->checked = buf[0] ? -1 : 1;
        if (buf[0]) doc->why = strdup(buf);
        if (!buf[0]) ck->st.documents_verified++;
    }
    if (doc->checked < 0) {
        say(why, whylen, "its %s document (sha256 %s...) %s", role, hx,
            doc->why ? doc->why : "does not verify");
        return NULL;
    }
    struct ukey *k = find_key(ck, doc->signer);
    if (user && (k == NULL || strcmp(k->user, user) != 0)) {
        say(why, whylen, "its %s document is signed by a key of user %s, not of %s", role,
            k ? k->user : "?", user);
        return NULL;
    }
    if (d->kid && strcmp(d->kid, doc->signer) != 0) {
        say(why, whylen, "its %s document is signed by key %s, the record names %s", role,
            doc->signer, d->kid);
        return NULL;
    }
    return doc;
}

/* The binding document, parsed once; checks it names what the record says. */
static struct doc *binding_doc(struct ac_evcheck *ck, const struct ac_ev_record *r, char *why,
                               size_t whylen)
{
    const struct ac_ev_docref *d = &r->body.binding;
    struct doc *doc = user_doc(ck, d, "binding", r->body.user, why, whylen);
    if (doc == NULL) return NULL;
    if (doc->binding == NULL) {
        struct ac_binding_doc *b = calloc(1, sizeof *b);
        if (b == NULL || ac_binding_parse(doc->text, doc->len, b, NULL) != AC_EC_OK) {
            free(b);
            say(why, whylen, "its binding document is not a valid binding");
            return NULL;
        }
        doc->binding = b;
    }
    const struct ac_binding_doc *b = doc->binding;
    if (d->id && strcmp(d->id, b->id) != 0) {
        say(why, whylen, "its binding document has id %s, the record names %s", b->id, d->id);
        return NULL;
    }
    if (r->body.user && strcmp(r->body.user, b->user_id) != 0) {
        say(why, whylen, "its binding is of user %s, the record names %s", b->user_id,
            r->body.user);
        return NULL;
    }
    if (r->body.agent && strcmp(r->body.agent, b->agent_id) != 0) {
        say(why, whylen, "its binding is of agent %s, the record names %s", b->agent_id,
            r->body.agent);
        return NULL;
    }
    return doc;
}

/* ---- the request -------------------------------------------------------------------------------
 */

/* Verify the recorded request with the agent key (NULL: structure only). Returns 0 (verified or
 * no key), 1 (signature does not verify) or -1 with why (structure). */
static int check_request(const struct ac_ev_request *q, EVP_PKEY *key, char *why, size_t whylen)
{
    size_t plen = 0;
    const char *params = ac_sigbase_line(q->base, q->base_len, "\"@signature-params\"", &plen);
    if (params == NULL) return say(why, whylen, "its signature base has no @signature-params");
    if (q->has_body) {
        size_t dlen = 0;
        const char *dg = ac_sigbase_line(q->base, q->base_len, "\"content-digest\"", &dlen);
        if (dg == NULL)
            return say(why, whylen, "it keeps a request body but the base covers no digest");
        enum ac_ec ec = ac_digest_verify(dg, dlen, q->body, q->body_len);
        if (ec != AC_EC_OK)
            return say(why, whylen, "its request body does not match the signed content-digest");
    }
    struct ac_httpsig hs;
    enum ac_ec ec = ac_sigbase_parse(&hs, params, plen, q->sig, q->sig_len);
    int rc = 0;
    if (ec != AC_EC_OK) {
        rc = say(why, whylen, "its @signature-params do not parse (%s)", ac_ec_code(ec));
    } else if (hs.keyid == NULL || strcmp(hs.keyid, q->keyid) != 0) {
        rc = say(why, whylen, "the keyid of its signature base is not the recorded keyid");
    } else if (key != NULL) {
        hs.base = malloc(q->base_len + 1);
        if (hs.base == NULL) {
            rc = say(why, whylen, "out of memory");
        } else {
            memcpy(hs.base, q->base, q->base_len);
            hs.base[q->base_len] = '\0';
            hs.base_len = q->base_len;
            rc = ac_httpsig_verify(&hs, key) == AC_EC_OK ? 0 : 1;
        }
    }
    ac_httpsig_free(&hs);
    return rc;
}

/* ---- balances ----------------------------------------------------------------------------------
 */

static int acc_eq(const void *ctx, size_t i, const void *key)
{
    const struct ac_evcheck *ck = ctx;
    return strcmp(ck->acc[i].id, key) == 0;
}

static size_t account(const struct ac_evcheck *ck, const char *id)
{
    return tfind(&ck->tacc, fnv(id, strlen(id)), acc_eq, ck, id);
}

const struct ac_evcheck_account *ac_evcheck_account(const struct ac_evcheck *ck, const char *id)
{
    size_t i = account(ck, id);
    return i == SIZE_MAX ? NULL : &ck->acc[i];
}

/* ledger.account: create each account, once. */
static int create_accounts(struct ac_evcheck *ck, const struct ac_ev_body *b, char *why,
                           size_t whylen)
{
    for (size_t k = 0; k < b->naccounts; k++) {
        const struct ac_ev_account *ea = &b->accounts[k];
        uint64_t h = fnv(ea->id, strlen(ea->id));
        if (tfind(&ck->tacc, h, acc_eq, ck, ea->id) != SIZE_MAX)
            return say(why, whylen, "account %s is created a second time", ea->id);
        if (grow((void **)&ck->acc, &ck->capacc, ck->nacc, sizeof *ck->acc) != 0 ||
            tput(&ck->tacc, h, ck->nacc) != 0)
            return say(why, whylen, "out of memory");
        struct ac_evcheck_account *a = &ck->acc[ck->nacc++];
        memset(a, 0, sizeof *a);
        snprintf(a->id, sizeof a->id, "%s", ea->id);
        snprintf(a->asset, sizeof a->asset, "%s", ea->asset);
        a->flags = ea->flags;
        ck->st.accounts_created++;
    }
    return 0;
}

#define AF_DEBITS_LE_CREDITS 0x1u
#define AF_CREDITS_LE_DEBITS 0x2u

/* The account's flags still hold (checked after every transfer that touches it). */
static int flags_hold(const struct ac_evcheck_account *a)
{
    if ((a->flags & AF_DEBITS_LE_CREDITS) &&
        (a->debits_pending > a->credits_posted ||
         a->debits_posted > a->credits_posted - a->debits_pending))
        return 0;
    if ((a->flags & AF_CREDITS_LE_DEBITS) &&
        (a->credits_pending > a->debits_posted ||
         a->credits_posted > a->debits_posted - a->credits_pending))
        return 0;
    return 1;
}

static int hold_eq(const void *ctx, size_t i, const void *key)
{
    const struct ac_evcheck *ck = ctx;
    return strcmp(ck->holds[i].id, key) == 0;
}

static int add(int64_t *v, int64_t d)
{
    if ((d > 0 && *v > INT64_MAX - d) || (d < 0 && *v < INT64_MIN - d)) return -1;
    *v += d;
    return 0;
}

#define TF_LINKED 0x01u
#define TF_PENDING 0x02u
#define TF_POST 0x04u
#define TF_VOID 0x08u

/* ---- hold expiry (a min-heap by time) --------------------------------------------------------
 */

static int queue_expiry(struct ac_evcheck *ck, int64_t at_us, size_t hold)
{
    if (grow((void **)&ck->exp, &ck->capexp, ck->nexp, sizeof *ck->exp) != 0) return -1;
    size_t i = ck->nexp++;
    while (i > 0 && ck->exp[(i - 1) / 2].at_us > at_us) {
        ck->exp[i] = ck->exp[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    ck->exp[i] = (struct expiry){at_us, hold};
    return 0;
}

static struct expiry pop_expiry(struct ac_evcheck *ck)
{
    struct expiry top = ck->exp[0], last = ck->exp[--ck->nexp];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= ck->nexp) break;
        if (c + 1 < ck->nexp && ck->exp[c + 1].at_us < ck->exp[c].at_us) c++;
        if (ck->exp[c].at_us >= last.at_us) break;
        ck->exp[i] = ck->exp[c];
        i = c;
    }
    if (ck->nexp) ck->exp[i] = last;
    return top;
}

/* Release every open hold whose timeout passed by now_us (the sequencer expires them at the
 * start of the batch whose time reaches it, before that batch's records). */
static void expire_holds(struct ac_evcheck *ck, int64_t now_us)
{
    while (ck->nexp && ck->exp[0].at_us <= now_us) {
        struct hold *h = &ck->holds[pop_expiry(ck).hold];
        if (!h->open) continue;
        struct ac_evcheck_account *da = &ck->acc[h->debit], *ca = &ck->acc[h->credit];
        h->open = 0;
        h->expired = 1;
        da->open_holds--;
        ca->open_holds--;
        da->debits_pending -= h->amount; /* they held it: no overflow */
        ca->credits_pending -= h->amount;
        ck->st.holds_expired++;
    }
}

/* 1 when t restates a hold that its timeout already released (same id, accounts and amount):
 * what a payment.expire records when the server was down past the hold's timeout, so that the
 * ledger expired the hold before the payments domain expired its authorization. */
static int restates_expired_hold(const struct ac_evcheck *ck, const struct ac_ev_transfer *t)
{
    if ((t->flags & (TF_PENDING | TF_POST | TF_VOID)) != TF_PENDING) return 0;
    size_t hi = tfind(&ck->tholds, fnv(t->id, strlen(t->id)), hold_eq, ck, t->id);
    if (hi == SIZE_MAX) return 0;
    const struct hold *h = &ck->holds[hi];
    return h->expired && h->amount == t->amount && h->debit == account(ck, t->debit) &&
           h->credit == account(ck, t->credit);
}

static int apply_transfer(struct ac_evcheck *ck, uint64_t seq, int64_t now_us,
                          const struct ac_ev_transfer *t, char *why, size_t whylen)
{
    if (grow((void **)&ck->xf, &ck->capxf, ck->nxf, sizeof *ck->xf) != 0)
        return say(why, whylen, "out of memory");
    struct ac_evcheck_transfer *x = &ck->xf[ck->nxf++];
    memset(x, 0, sizeof *x);
    x->seq = seq;
    snprintf(x->id, sizeof x->id, "%s", t->id);
    snprintf(x->debit, sizeof x->debit, "%s", t->debit);
    snprintf(x->credit, sizeof x->credit, "%s", t->credit);
    snprintf(x->asset, sizeof x->asset, "%s", t->asset);
    snprintf(x->pending_id, sizeof x->pending_id, "%s", t->pending_id ? t->pending_id : "");
    x->amount = t->amount;
    x->flags = t->flags;
    x->timeout_s = t->timeout_s;
    x->code = t->code;
    ck->st.transfers++;
    size_t d = account(ck, t->debit), c = account(ck, t->credit);
    if (d == SIZE_MAX || c == SIZE_MAX)
        return say(why, whylen,
                   "transfer %s moves money of account %s, which no earlier record "
                   "created",
                   t->id, d == SIZE_MAX ? t->debit : t->credit);
    if (d == c) return say(why, whylen, "transfer %s debits and credits one account", t->id);
    if (strcmp(ck->acc[d].asset, t->asset) != 0 || strcmp(ck->acc[c].asset, t->asset) != 0)
        return say(why, whylen, "transfer %s moves %s between accounts of another asset", t->id,
                   t->asset);
    ck->acc[d].transfers++;
    ck->acc[c].transfers++;
    struct ac_evcheck_account *da = &ck->acc[d], *ca = &ck->acc[c];
    int bad = 0;
    if (t->flags & (TF_POST | TF_VOID)) {
        if (t->pending_id == NULL) return say(why, whylen, "transfer %s names no hold", t->id);
        size_t hi = tfind(&ck->tholds, fnv(t->pending_id, strlen(t->pending_id)), hold_eq, ck,
                          t->pending_id);
        if (hi == SIZE_MAX)
            return say(why, whylen, "transfer %s resolves hold %s, which no earlier record holds",
                       t->id, t->pending_id);
        {
            struct hold *h = &ck->holds[hi];
            if (!h->open)
                return say(why, whylen, "transfer %s resolves hold %s, which was %s", t->id, h->id,
                           h->expired ? "expired by its timeout" : "already resolved");
            if (h->debit != d || h->credit != c)
                return say(why, whylen, "transfer %s resolves hold %s between other accounts",
                           t->id, h->id);
            if (t->amount > h->amount)
                return say(why, whylen, "transfer %s posts more than hold %s holds", t->id, h->id);
            h->open = 0;
            da->open_holds--;
            ca->open_holds--;
            bad = add(&da->debits_pending, -h->amount) || add(&ca->credits_pending, -h->amount);
            if (t->flags & TF_POST)
                bad |= add(&da->debits_posted, t->amount) || add(&ca->credits_posted, t->amount);
        }
    } else if (t->flags & TF_PENDING) {
        uint64_t hh = fnv(t->id, strlen(t->id));
        if (tfind(&ck->tholds, hh, hold_eq, ck, t->id) != SIZE_MAX)
            return say(why, whylen, "hold %s is recorded twice", t->id);
        if (grow((void **)&ck->holds, &ck->capholds, ck->nholds, sizeof *ck->holds) != 0 ||
            tput(&ck->tholds, hh, ck->nholds) != 0)
            return say(why, whylen, "out of memory");
        struct hold *h = &ck->holds[ck->nholds++];
        snprintf(h->id, sizeof h->id, "%s", t->id);
        h->debit = d;
        h->credit = c;
        h->amount = t->amount;
        h->open = 1;
        h->expired = 0;
        da->open_holds++;
        ca->open_holds++;
        bad = add(&da->debits_pending, t->amount) || add(&ca->credits_pending, t->amount);
        if (!bad && t->timeout_s &&
            queue_expiry(ck, now_us + (int64_t)t->timeout_s * 1000000, ck->nholds - 1) != 0)
            return say(why, whylen, "out of memory");
    } else {
        bad = add(&da->debits_posted, t->amount) || add(&ca->credits_posted, t->amount);
    }
    if (bad) return say(why, whylen, "transfer %s overflows a balance", t->id);
    const struct ac_evcheck_account *over = !flags_hold(da) ? da : !flags_hold(ca) ? ca : NULL;
    if (over)
        return say(why, whylen, "transfer %s overdraws account %s (its %s must not exceed its %s)",
                   t->id, over->id, over->flags & AF_DEBITS_LE_CREDITS ? "debits" : "credits",
                   over->flags & AF_DEBITS_LE_CREDITS ? "credits" : "debits");
    return 0;
}

/* ---- one record --------------------------------------------------------------------------------
 */

int ac_evcheck_record(struct ac_evcheck *ck, const struct ac_ev_record *r, char *why, size_t whylen)
{
    const struct ac_ev_body *b = &r->body;
    struct doc *binding = NULL;
    if (b->binding.present && (binding = binding_doc(ck, r, why, whylen)) == NULL) return -1;
    if (b->mandate.present && user_doc(ck, &b->mandate, "mandate", b->user, why, whylen) == NULL)
        return -1;
    if (b->confirmation.present &&
        user_doc(ck, &b->confirmation, "confirmation", b->user, why, whylen) == NULL)
        return -1;
    if (b->revocation.present) {
        struct doc *rv = user_doc(ck, &b->revocation, "revocation", b->user, why, whylen);
        if (rv == NULL) return -1;
        if (r->kind == AC_EV_BINDING_REVOKE) {
            struct ac_revocation_doc rd;
            if (ac_revocation_parse(rv->text, rv->len, &rd, NULL) != AC_EC_OK)
                return say(why, whylen, "its revocation document is not a valid revocation");
            int same = binding && strcmp(rd.binding_id, binding->binding->id) == 0;
            ac_revocation_clear(&rd);
            if (!same) return say(why, whylen, "its revocation revokes another binding");
        }
    }
    EVP_PKEY *agent = binding ? binding->binding->agent_key : NULL;
    if (b->voucher.present) {
        struct doc *v = find_doc(ck, b->voucher.hash);
        if (v == NULL) return say(why, whylen, "its voucher document is not in the export");
        if (agent == NULL) return say(why, whylen, "its voucher cannot be checked: no binding");
        struct ac_jws jws;
        enum ac_ec ec = ac_jws_parse(v->text, v->len, &jws, NULL);
        if (ec == AC_EC_OK) {
            ec = ac_jws_verify(&jws, agent);
            ac_jws_clear(&jws);
        }
        if (ec != AC_EC_OK)
            return say(why, whylen, "its voucher does not verify with the binding's agent key");
        /* a tab's voucher names the tab, and its cumulative amount is what the tab has settled
         * after the record (docs/evidence.md, tab.settle / tab.close) */
        struct ac_voucher vc;
        if (b->tab && b->amount.present) {
            if (ac_voucher_parse(v->text, v->len, b->amount.asset, b->amount.scale, &vc, NULL,
                                 NULL) != AC_EC_OK)
                return say(why, whylen, "its voucher is not a valid voucher");
            if (strcmp(vc.tab, b->tab) != 0 || vc.cumulative != b->amount.value)
                return say(why, whylen, "its voucher names another tab or amount than the record");
        }
        ck->st.vouchers_verified++;
    }
    if (b->report.present && find_doc(ck, b->report.hash) == NULL)
        return say(why, whylen, "its report document is not in the export");
    if (b->request.present) {
        /* a tab's settle and close requests are the payee merchant's, not the agent's */
        int merchant = r->kind == AC_EV_TAB_SETTLE || r->kind == AC_EV_TAB_CLOSE;
        EVP_PKEY *rkey = merchant ? NULL : agent;
        int rc = check_request(&b->request, rkey, why, whylen);
        if (rc < 0) return -1;
        if (rc == 1 && r->kind != AC_EV_PAYMENT_DENY)
            return say(why, whylen,
                       "its request signature does not verify with the agent key "
                       "of its binding");
        if (rc == 1)
            ck->st.denials_unsigned++;
        else if (rkey)
            ck->st.requests_verified++;
        else
            ck->st.requests_unverified++;
    }
    expire_holds(ck, r->time_us);
    if (b->naccounts && create_accounts(ck, b, why, whylen) != 0) return -1;
    for (size_t i = 0; i < b->ntransfers; i++) {
        if (r->kind == AC_EV_PAYMENT_EXPIRE && restates_expired_hold(ck, &b->transfers[i]))
            continue; /* released by its timeout already: nothing moves again */
        if (apply_transfer(ck, r->seq, r->time_us, &b->transfers[i], why, whylen) != 0) return -1;
    }
    return 0;
}
