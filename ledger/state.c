/* ledger/state.c -- the in-memory ledger rules (see state.h for the contract).
 *
 * Data structures:
 *   - accounts: chained hash table of separately allocated struct acct, so the struct ac_account
 *     pointers handed out stay valid while the table grows.
 *   - transfers: chained hash table of struct xfer records, one malloc each with the id inline,
 *     rehashed incrementally when it doubles (see below).
 *     A pending transfer's record has a struct pend in front of it, in the same allocation.
 *   - expiries: binary min-heap of (expires_us, record). Each pend knows its heap position, so a
 *     post, void or undo removes or re-inserts it in O(log n); a freed record is never left
 *     behind in the heap (no lazy deletion).
 *   - undo log: growable array of tagged entries; a savepoint is a log position. The change set
 *     is derived from the surviving entries, plus the rows array (one row per U_XFER entry).
 *   Hash tables are keyed with SipHash-1-3 and a random per-state key: transfer ids are chosen
 *   by clients, and a fixed hash would let one of them build long chains on purpose.
 *
 * Memory kept per transfer id for the life of the process (64-bit glibc):
 *   record 48 bytes + id + NUL, as one malloc chunk (rounded to 16, +8 header): 96 bytes for a
 *   36-character id; plus 8 to 16 bytes of bucket array (load factor 1 down to 1/2 after a
 *   doubling, and the old array's 8 while the move lasts): 104-112 bytes; 110 measured at 1M and
 *   4M ids. A pending transfer adds 40 bytes (struct pend) and, while queued, 16 bytes of heap.
 * Per batch, reused across batches: 48 bytes of undo log per balance snapshot (two per
 * transfer), one entry per new record, and one struct ac_transfer_row (about 330 bytes) per
 * new transfer row.
 *
 * Allocation goes through AC_STATE_MALLOC / AC_STATE_REALLOC / AC_STATE_CALLOC so that the unit
 * test can build this file with allocators that fail on demand. Bucket arrays use calloc: a large
 * one comes as fresh zero pages, not a memset that would stall the caller. */
#include "ledger/state.h"
#include "protocol/sha256.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#ifndef AC_STATE_MALLOC
#define AC_STATE_MALLOC malloc
#endif
#ifndef AC_STATE_REALLOC
#define AC_STATE_REALLOC realloc
#endif
#ifndef AC_STATE_CALLOC
#define AC_STATE_CALLOC calloc
#endif

#define TIMEOUT_MAX_S 31536000u /* one year, as AC_EC_TIMEOUT_INVALID says */
#define US_PER_S INT64_C(1000000)
#define NEVER INT64_MAX     /* expires_us of a pending transfer without timeout */
#define NOT_QUEUED SIZE_MAX /* heap_pos of a pending transfer not in the expiry heap */
#define XFER_BUCKETS0 1024u
#define ACCT_BUCKETS0 64u

#define TF_KIND (AC_TF_PENDING | AC_TF_POST_PENDING | AC_TF_VOID_PENDING)
#define TF_PV (AC_TF_POST_PENDING | AC_TF_VOID_PENDING)
#define TF_BALANCING (AC_TF_BALANCING_DEBIT | AC_TF_BALANCING_CREDIT)

struct acct {
    struct ac_account a; /* handed out as const struct ac_account * */
    struct acct *next;   /* hash chain */
    uint32_t hash;
    uint64_t mark; /* change-set epoch: dedups dirty accounts */
};

struct pend {
    struct acct *debit, *credit;
    int64_t amount;     /* held in debits_pending / credits_pending while AC_PS_PENDING */
    int64_t expires_us; /* NEVER without timeout */
    size_t heap_pos;    /* NOT_QUEUED unless pstate is AC_PS_PENDING and expires_us != NEVER */
};

struct xfer {
    struct xfer *next; /* hash chain */
    uint32_t hash;
    uint16_t ec;    /* AC_EC_OK or the sticky failure */
    uint8_t pstate; /* enum ac_pstate; != AC_PS_NONE exactly when a struct pend precedes */
    int64_t amount; /* resolved amount, 0 for a failure */
    int64_t created_us;
    uint8_t digest[16];
    char id[];
};

_Static_assert(AC_EC__COUNT <= UINT16_MAX, "ec is stored in 16 bits");
_Static_assert(sizeof(struct pend) % _Alignof(struct xfer) == 0, "pend precedes xfer");

struct heap_ent {
    int64_t expires_us;
    struct xfer *x;
};

enum undo_kind {
    U_BALANCE, /* p: struct acct; b: the four balances before the change */
    U_ACCOUNT, /* p: struct acct created */
    U_XFER,    /* p: struct xfer inserted; rows[] got one row */
    U_PSTATE,  /* p: struct xfer whose pstate left old_pstate */
};

struct undo {
    uint8_t kind;
    uint8_t old_pstate;
    void *p;
    int64_t b[4];
};

struct ac_state {
    uint64_t k0, k1; /* hash key */

    struct acct **ab;
    size_t amask, an;
    struct xfer **xb;
    size_t xmask, xn;
    struct xfer **xold; /* while the index doubles: the old buckets, moved below xpos */
    size_t xoldmask, xpos;

    struct heap_ent *heap;
    size_t hn, hcap;

    struct undo *undo;
    size_t un, ucap;
    struct ac_transfer_row *rows;
    size_t rn, rcap;

    /* change set, rebuilt by ac_state_changes() */
    uint64_t epoch;
    const struct ac_account **newacc, **dirty;
    size_t newcap, dirtycap;
    struct ac_pending_change *pch;
    size_t pchcap;
    struct ac_changes chg;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static struct pend *xpend(struct xfer *x)
{
    assert(x->pstate != AC_PS_NONE);
    return (struct pend *)(void *)((char *)x - sizeof(struct pend));
}

static void *xblock(struct xfer *x)
{
    return x->pstate != AC_PS_NONE ? (void *)xpend(x) : (void *)x;
}

/* a - b for balances that cannot go negative (held amounts being released) */
static int64_t release(int64_t a, int64_t b)
{
    int64_t r = 0;
    int rc = ac_sub_i64(a, b, &r);
    assert(rc == 0 && r >= 0);
    (void)rc;
    return r;
}

/* 1 when p + q + amt > limit (an overflowing sum exceeds any limit) */
static int exceeds(int64_t p, int64_t q, int64_t amt, int64_t limit)
{
    int64_t s;
    if (ac_add_i64(p, q, &s) != 0 || ac_add_i64(s, amt, &s) != 0) return 1;
    return s > limit;
}

/* what a flag leaves room for: limit - p - q, at least 0 */
static int64_t room(int64_t limit, int64_t p, int64_t q)
{
    int64_t r;
    if (ac_sub_i64(limit, p, &r) != 0 || ac_sub_i64(r, q, &r) != 0 || r < 0) return 0;
    return r;
}

static int is_sticky(enum ac_ec ec)
{
    return ec == AC_EC_EXCEEDS_CREDITS || ec == AC_EC_EXCEEDS_DEBITS || ec == AC_EC_PENDING_EXPIRED;
}

/* grows *arr to hold `need` elements; returns 0, or -1 leaving *arr and *cap unchanged */
static int reserve(void *arrp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return -1;
        nc *= 2;
    }
    void *old;
    memcpy(&old, arrp, sizeof old);
    void *p = AC_STATE_REALLOC(old, nc * elem);
    if (p == NULL) return -1;
    memcpy(arrp, &p, sizeof p);
    *cap = nc;
    return 0;
}

/* ---- hashing: SipHash-1-3 ----------------------------------------------------------------- */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13) ^ v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17) ^ v[2];
    v[2] = rotl(v[2], 32);
}

static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *m, size_t n)
{
    uint64_t v[4] = {k0 ^ UINT64_C(0x736f6d6570736575), k1 ^ UINT64_C(0x646f72616e646f6d),
                     k0 ^ UINT64_C(0x6c7967656e657261), k1 ^ UINT64_C(0x7465646279746573)};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--)
            w = (w << 8) | m[i + (size_t)j];
        v[3] ^= w;
        sipround(v);
        v[0] ^= w;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t j = 0; i + j < n; j++)
        last |= (uint64_t)m[i + j] << (8 * j);
    v[3] ^= last;
    sipround(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    sipround(v);
    sipround(v);
    sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint32_t hash_id(const struct ac_state *st, const char *id)
{
    return (uint32_t)siphash13(st->k0, st->k1, (const uint8_t *)id, strlen(id));
}

/* ---- account table ------------------------------------------------------------------------ */

static struct acct *acct_find(const struct ac_state *st, const char *id, uint32_t h)
{
    for (struct acct *a = st->ab[h & st->amask]; a; a = a->next)
        if (a->hash == h && strcmp(a->a.id, id) == 0) return a;
    return NULL;
}

static struct acct *acct_get(const struct ac_state *st, const char *id)
{
    return acct_find(st, id, hash_id(st, id));
}

/* doubles the bucket array; on allocation failure the table stays as it is (chains grow) */
static void acct_grow(struct ac_state *st)
{
    size_t nb = (st->amask + 1) * 2;
    struct acct **b = AC_STATE_CALLOC(nb, sizeof *b);
    if (b == NULL) return;
    for (size_t i = 0; i <= st->amask; i++) {
        struct acct *a = st->ab[i];
        while (a) {
            struct acct *next = a->next;
            a->next = b[a->hash & (nb - 1)];
            b[a->hash & (nb - 1)] = a;
            a = next;
        }
    }
    free(st->ab);
    st->ab = b;
    st->amask = nb - 1;
}

static void acct_insert(struct ac_state *st, struct acct *a)
{
    if (st->an > st->amask) acct_grow(st);
    struct acct **b = &st->ab[a->hash & st->amask];
    a->next = *b;
    *b = a;
    st->an++;
}

static void acct_unlink(struct ac_state *st, struct acct *a)
{
    struct acct **pp = &st->ab[a->hash & st->amask];
    while (*pp != a) {
        assert(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = a->next;
    st->an--;
}

/* ---- transfer table ----------------------------------------------------------------------- */

/* The transfer index grows without a pause: when it doubles, the old bucket array stays until
 * every insert has moved REHASH_STEP of its buckets to the new one (Redis-style incremental
 * rehashing). Old buckets below xpos have moved. A stop-the-world rehash measured 0.4 s at 2M ids,
 * a stall for every waiting payment. The account table is small and rarely grows: it doubles at
 * once. */
#define REHASH_STEP 8 /* the move ends after 1/8 of the inserts that trigger the next doubling */

/* the chain that holds, or would hold, hash h */
static struct xfer **xfer_chain(const struct ac_state *st, uint32_t h)
{
    if (st->xold != NULL && (h & st->xoldmask) >= st->xpos) return &st->xold[h & st->xoldmask];
    return &st->xb[h & st->xmask];
}

static struct xfer *xfer_find(const struct ac_state *st, const char *id, uint32_t h)
{
    for (struct xfer *x = *xfer_chain(st, h); x; x = x->next)
        if (x->hash == h && strcmp(x->id, id) == 0) return x;
    return NULL;
}

/* moves up to REHASH_STEP old buckets; frees the old array after the last */
static void xfer_rehash_step(struct ac_state *st)
{
    for (int k = 0; k < REHASH_STEP && st->xpos <= st->xoldmask; k++, st->xpos++) {
        struct xfer *x = st->xold[st->xpos];
        st->xold[st->xpos] = NULL;
        while (x) {
            struct xfer *next = x->next;
            struct xfer **b = &st->xb[x->hash & st->xmask];
            x->next = *b;
            *b = x;
            x = next;
        }
    }
    if (st->xpos > st->xoldmask) {
        free(st->xold);
        st->xold = NULL;
    }
}

/* starts a doubling; on allocation failure the table stays as it is (chains grow) */
static void xfer_grow(struct ac_state *st)
{
    size_t nb = (st->xmask + 1) * 2;
    struct xfer **b = AC_STATE_CALLOC(nb, sizeof *b);
    if (b == NULL) return;
    st->xold = st->xb;
    st->xoldmask = st->xmask;
    st->xpos = 0;
    st->xb = b;
    st->xmask = nb - 1;
}

static void xfer_insert(struct ac_state *st, struct xfer *x)
{
    if (st->xold != NULL)
        xfer_rehash_step(st);
    else if (st->xn > st->xmask)
        xfer_grow(st);
    struct xfer **b = xfer_chain(st, x->hash);
    x->next = *b;
    *b = x;
    st->xn++;
}

static void xfer_unlink(struct ac_state *st, struct xfer *x)
{
    struct xfer **pp = xfer_chain(st, x->hash);
    while (*pp != x) {
        assert(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = x->next;
    st->xn--;
}

/* a zeroed record for `id`, with a struct pend in front when `pending`; NULL when out of memory */
static struct xfer *xfer_alloc(const char *id, uint32_t h, int pending)
{
    size_t idlen = strlen(id);
    size_t pre = pending ? sizeof(struct pend) : 0;
    char *blk = AC_STATE_MALLOC(pre + sizeof(struct xfer) + idlen + 1);
    if (blk == NULL) return NULL;
    memset(blk, 0, pre + sizeof(struct xfer));
    struct xfer *x = (struct xfer *)(void *)(blk + pre);
    x->hash = h;
    memcpy(x->id, id, idlen + 1);
    if (pending) {
        x->pstate = AC_PS_PENDING;
        xpend(x)->heap_pos = NOT_QUEUED;
        xpend(x)->expires_us = NEVER;
    }
    return x;
}

/* ---- expiry heap -------------------------------------------------------------------------- */

static void heap_set(struct ac_state *st, size_t i, struct heap_ent e)
{
    st->heap[i] = e;
    xpend(e.x)->heap_pos = i;
}

static void heap_up(struct ac_state *st, size_t i)
{
    struct heap_ent e = st->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (st->heap[parent].expires_us <= e.expires_us) break;
        heap_set(st, i, st->heap[parent]);
        i = parent;
    }
    heap_set(st, i, e);
}

static void heap_down(struct ac_state *st, size_t i)
{
    struct heap_ent e = st->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= st->hn) break;
        if (c + 1 < st->hn && st->heap[c + 1].expires_us < st->heap[c].expires_us) c++;
        if (e.expires_us <= st->heap[c].expires_us) break;
        heap_set(st, i, st->heap[c]);
        i = c;
    }
    heap_set(st, i, e);
}

/* capacity was reserved by the caller, or freed by the operation being undone */
static void heap_push(struct ac_state *st, struct xfer *x)
{
    struct pend *p = xpend(x);
    assert(st->hn < st->hcap && p->heap_pos == NOT_QUEUED && p->expires_us != NEVER);
    st->heap[st->hn] = (struct heap_ent){p->expires_us, x};
    heap_up(st, st->hn++);
}

static void heap_remove(struct ac_state *st, struct xfer *x)
{
    struct pend *p = xpend(x);
    size_t i = p->heap_pos;
    assert(i < st->hn && st->heap[i].x == x);
    p->heap_pos = NOT_QUEUED;
    struct heap_ent last = st->heap[--st->hn];
    if (i == st->hn) return;
    st->heap[i] = last;
    heap_up(st, i);
    heap_down(st, xpend(last.x)->heap_pos);
}

/* ---- undo log ----------------------------------------------------------------------------- */

static int reserve_undo(struct ac_state *st, size_t k)
{
    return reserve(&st->undo, &st->ucap, st->un + k, sizeof *st->undo);
}

static void log_balance(struct ac_state *st, struct acct *a)
{
    assert(st->un < st->ucap);
    struct undo *u = &st->undo[st->un++];
    u->kind = U_BALANCE;
    u->p = a;
    u->b[0] = a->a.debits_pending;
    u->b[1] = a->a.debits_posted;
    u->b[2] = a->a.credits_pending;
    u->b[3] = a->a.credits_posted;
}

static void log_ptr(struct ac_state *st, enum undo_kind kind, void *p, uint8_t old_pstate)
{
    assert(st->un < st->ucap);
    struct undo *u = &st->undo[st->un++];
    u->kind = (uint8_t)kind;
    u->old_pstate = old_pstate;
    u->p = p;
}

/* undoes every entry above `pos`, newest first */
static void undo_to(struct ac_state *st, size_t pos)
{
    while (st->un > pos) {
        struct undo *u = &st->undo[--st->un];
        switch ((enum undo_kind)u->kind) {
        case U_BALANCE: {
            struct acct *a = u->p;
            a->a.debits_pending = u->b[0];
            a->a.debits_posted = u->b[1];
            a->a.credits_pending = u->b[2];
            a->a.credits_posted = u->b[3];
            break;
        }
        case U_ACCOUNT:
            acct_unlink(st, u->p);
            free(u->p);
            break;
        case U_XFER: {
            struct xfer *x = u->p;
            if (x->pstate != AC_PS_NONE && xpend(x)->heap_pos != NOT_QUEUED) heap_remove(st, x);
            xfer_unlink(st, x);
            assert(st->rn > 0 && strcmp(st->rows[st->rn - 1].id, x->id) == 0);
            st->rn--;
            free(xblock(x));
            break;
        }
        case U_PSTATE: {
            struct xfer *x = u->p;
            assert(u->old_pstate == AC_PS_PENDING && xpend(x)->heap_pos == NOT_QUEUED);
            x->pstate = u->old_pstate;
            if (xpend(x)->expires_us != NEVER) heap_push(st, x);
            break;
        }
        }
    }
}

/* ---- digest ------------------------------------------------------------------------------- */

#define DIGEST_TAG "agentclear/transfer-digest/v1"
#define DIGEST_BUF (sizeof DIGEST_TAG + 5 * (4 + AC_ID_MAX + 1) + 8 + 4 + 4 + 2)

static uint8_t *put_u(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_s(uint8_t *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    p = put_u(p, n, 4);
    memcpy(p, s, n);
    return p + n;
}

/* canonical encoding: tag, then every field in declaration order, strings as 4-byte big-endian
 * length + bytes, integers as big-endian two's complement of their declared width */
static size_t digest_encode(const struct ac_transfer_req *r, uint8_t buf[DIGEST_BUF])
{
    uint8_t *p = buf;
    memcpy(p, DIGEST_TAG, sizeof DIGEST_TAG); /* with its NUL */
    p += sizeof DIGEST_TAG;
    p = put_s(p, r->id, sizeof r->id);
    p = put_s(p, r->debit, sizeof r->debit);
    p = put_s(p, r->credit, sizeof r->credit);
    p = put_s(p, r->asset, sizeof r->asset);
    p = put_u(p, (uint64_t)r->amount, 8);
    p = put_u(p, r->flags, 4);
    p = put_s(p, r->pending_id, sizeof r->pending_id);
    p = put_u(p, r->timeout_s, 4);
    p = put_u(p, r->code, 2);
    assert((size_t)(p - buf) <= DIGEST_BUF);
    return (size_t)(p - buf);
}

/* Truncated SHA-256 of the canonical encoding of every field of `r`. Thread-safe. */
void ac_transfer_digest(const struct ac_transfer_req *r, uint8_t out[16])
{
    uint8_t buf[DIGEST_BUF], md[AC_SHA256_LEN];
    size_t n = digest_encode(r, buf);
    ac_sha256(buf, n, md);
    memcpy(out, md, 16);
}

/* ---- life cycle --------------------------------------------------------------------------- */

/* New empty state with a random hash key, or NULL on allocation failure (or no randomness). */
struct ac_state *ac_state_new(void)
{
    struct ac_state *st = AC_STATE_MALLOC(sizeof *st);
    if (st == NULL) return NULL;
    memset(st, 0, sizeof *st);
    uint8_t key[16];
    st->ab = AC_STATE_CALLOC(ACCT_BUCKETS0, sizeof *st->ab);
    if (st->ab) st->amask = ACCT_BUCKETS0 - 1;
    st->xb = AC_STATE_CALLOC(XFER_BUCKETS0, sizeof *st->xb);
    if (st->xb) st->xmask = XFER_BUCKETS0 - 1;
    if (st->ab == NULL || st->xb == NULL || RAND_bytes(key, sizeof key) != 1) {
        ac_state_free(st);
        return NULL;
    }
    for (int i = 0; i < 8; i++) {
        st->k0 = (st->k0 << 8) | key[i];
        st->k1 = (st->k1 << 8) | key[8 + i];
    }
    return st;
}

/* Frees the state and everything it owns; NULL is a no-op. Pointers from the state (accounts,
 * change set) become invalid. */
void ac_state_free(struct ac_state *st)
{
    if (st == NULL) return;
    if (st->ab)
        for (size_t i = 0; i <= st->amask; i++)
            for (struct acct *a = st->ab[i], *next; a; a = next) {
                next = a->next;
                free(a);
            }
    for (int t = 0; t < 2; t++) {
        struct xfer **b = t ? st->xold : st->xb;
        size_t mask = t ? st->xoldmask : st->xmask;
        if (b == NULL) continue;
        for (size_t i = 0; i <= mask; i++)
            for (struct xfer *x = b[i], *next; x; x = next) {
                next = x->next;
                free(xblock(x));
            }
    }
    free(st->ab);
    free(st->xb);
    free(st->xold);
    free(st->heap);
    free(st->undo);
    free(st->rows);
    free(st->newacc);
    free(st->dirty);
    free(st->pch);
    free(st);
}

/* ---- loading ------------------------------------------------------------------------------ */

static int account_fields_valid(const struct ac_account *a)
{
    return ac_id_valid(a->id) && ac_asset_code_valid(a->asset) &&
           (a->owner[0] == '\0' || ac_id_valid(a->owner)) && (a->flags & ~AC_AF__ALL) == 0 &&
           a->flags != AC_AF__ALL;
}

/* a new struct acct with the fields of `a` and zero balances, or NULL */
static struct acct *acct_alloc(const struct ac_account *a, uint32_t h)
{
    struct acct *w = AC_STATE_MALLOC(sizeof *w);
    if (w == NULL) return NULL;
    memset(w, 0, sizeof *w);
    strcpy(w->a.id, a->id);
    strcpy(w->a.asset, a->asset);
    strcpy(w->a.owner, a->owner);
    w->a.flags = a->flags;
    w->hash = h;
    return w;
}

/* Inserts a stored account with its balances, outside any batch (not undone by a rollback).
 * Returns 0, or -1 (invalid fields or negative balance, duplicate id, out of memory) and
 * changes nothing. */
int ac_state_load_account(struct ac_state *st, const struct ac_account *a)
{
    if (!account_fields_valid(a) || a->debits_pending < 0 || a->debits_posted < 0 ||
        a->credits_pending < 0 || a->credits_posted < 0)
        return -1;
    uint32_t h = hash_id(st, a->id);
    if (acct_find(st, a->id, h)) return -1;
    struct acct *w = acct_alloc(a, h);
    if (w == NULL) return -1;
    w->a.debits_pending = a->debits_pending;
    w->a.debits_posted = a->debits_posted;
    w->a.credits_pending = a->credits_pending;
    w->a.credits_posted = a->credits_posted;
    acct_insert(st, w);
    return 0;
}

/* Inserts a stored transfer row into the index, outside any batch (not undone by a rollback).
 * A sticky failure keeps only id, digest, result and created_us. A successful row with
 * AC_TF_PENDING must carry its current pstate (and its accounts must be loaded); a pending one
 * with a timeout is queued for expiry. Returns 0, or -1 (invalid row, duplicate id, unknown
 * account, out of memory) and changes nothing. */
int ac_state_load_transfer(struct ac_state *st, const struct ac_transfer_row *row)
{
    if (!ac_id_valid(row->id)) return -1;
    int ok = row->result == AC_EC_OK;
    if (!ok && !is_sticky(row->result)) return -1;
    uint32_t h = hash_id(st, row->id);
    if (xfer_find(st, row->id, h)) return -1;
    int pending = ok && row->pstate != AC_PS_NONE;
    struct acct *dr = NULL, *cr = NULL;
    int64_t expires = NEVER;
    if (ok) {
        if (row->amount <= 0 || (unsigned)row->pstate > AC_PS_EXPIRED ||
            pending != ((row->flags & AC_TF_PENDING) != 0))
            return -1;
    }
    if (pending) {
        if (!ac_id_valid(row->debit) || !ac_id_valid(row->credit)) return -1;
        dr = acct_get(st, row->debit);
        cr = acct_get(st, row->credit);
        if (dr == NULL || cr == NULL || dr == cr || row->timeout_s > TIMEOUT_MAX_S) return -1;
        if (row->timeout_s &&
            (ac_add_i64(row->created_us, (int64_t)row->timeout_s * US_PER_S, &expires) != 0 ||
             expires == NEVER))
            return -1;
        if (row->pstate == AC_PS_PENDING && expires != NEVER &&
            reserve(&st->heap, &st->hcap, st->hn + 1, sizeof *st->heap) != 0)
            return -1;
    }
    struct xfer *x = xfer_alloc(row->id, h, pending);
    if (x == NULL) return -1;
    x->ec = (uint16_t)row->result;
    x->amount = ok ? row->amount : 0;
    x->created_us = row->created_us;
    memcpy(x->digest, row->digest, 16);
    if (pending) {
        struct pend *p = xpend(x);
        x->pstate = (uint8_t)row->pstate;
        p->debit = dr;
        p->credit = cr;
        p->amount = row->amount;
        p->expires_us = expires;
        if (row->pstate == AC_PS_PENDING && expires != NEVER) heap_push(st, x);
    }
    xfer_insert(st, x);
    return 0;
}

/* ---- batches ------------------------------------------------------------------------------ */

static void clear_batch(struct ac_state *st)
{
    st->un = 0;
    st->rn = 0;
    memset(&st->chg, 0, sizeof st->chg);
}

/* Starts a batch: drops the undo log (what came before is kept, as after a commit) and the
 * change set. */
void ac_state_begin(struct ac_state *st)
{
    clear_batch(st);
}

/* Creates an account with zero balances (see state.h for the results). Also AC_EC_INTERNAL when
 * out of memory, then nothing changes. `replayed` may be NULL. */
enum ac_ec ac_state_create_account(struct ac_state *st, const struct ac_account *a, int *replayed)
{
    if (replayed) *replayed = 0;
    if (!ac_id_valid(a->id) || (a->owner[0] != '\0' && !ac_id_valid(a->owner)))
        return AC_EC_ID_INVALID;
    if (!ac_asset_code_valid(a->asset)) return AC_EC_ASSET_INVALID;
    if ((a->flags & ~AC_AF__ALL) != 0 || a->flags == AC_AF__ALL) return AC_EC_FLAGS_INVALID;
    uint32_t h = hash_id(st, a->id);
    const struct acct *old = acct_find(st, a->id, h);
    if (old) {
        if (strcmp(old->a.asset, a->asset) != 0 || strcmp(old->a.owner, a->owner) != 0 ||
            old->a.flags != a->flags)
            return AC_EC_ACCOUNT_EXISTS;
        if (replayed) *replayed = 1;
        return AC_EC_OK;
    }
    if (reserve_undo(st, 1) != 0) return AC_EC_INTERNAL;
    struct acct *w = acct_alloc(a, h);
    if (w == NULL) return AC_EC_INTERNAL;
    acct_insert(st, w);
    log_ptr(st, U_ACCOUNT, w, 0);
    return AC_EC_OK;
}

/* appends the row of a new record (capacity reserved); dr/cr/asset unused for a failure */
static void push_row(struct ac_state *st, const struct ac_transfer_req *r, const struct xfer *x,
                     const struct acct *dr, const struct acct *cr)
{
    assert(st->rn < st->rcap);
    struct ac_transfer_row *w = &st->rows[st->rn++];
    memset(w, 0, sizeof *w);
    strcpy(w->id, x->id);
    w->created_us = x->created_us;
    w->result = (enum ac_ec)x->ec;
    memcpy(w->digest, x->digest, 16);
    if (x->ec != AC_EC_OK) return;
    strcpy(w->debit, dr->a.id);
    strcpy(w->credit, cr->a.id);
    strcpy(w->asset, dr->a.asset);
    w->amount = x->amount;
    w->flags = r->flags;
    strcpy(w->pending_id, r->pending_id);
    w->timeout_s = r->timeout_s;
    w->code = r->code;
    w->pstate = (enum ac_pstate)x->pstate;
}

/* inserts a finished record, logs it and appends its row (capacity reserved) */
static void commit_record(struct ac_state *st, const struct ac_transfer_req *r, struct xfer *x,
                          const struct acct *dr, const struct acct *cr)
{
    xfer_insert(st, x);
    log_ptr(st, U_XFER, x, 0);
    push_row(st, r, x, dr, cr);
}

static void ok_result(struct ac_transfer_result *res, int replayed, int64_t amount, int64_t t)
{
    *res = (struct ac_transfer_result){AC_EC_OK, replayed, amount, t};
}

/* a transfer that is neither post nor void; validates everything before changing anything */
static enum ac_ec apply_plain(struct ac_state *st, const struct ac_transfer_req *r, uint32_t h,
                              int64_t now_us, const uint8_t dg[16], struct ac_transfer_result *res)
{
    if (!ac_id_valid(r->debit) || !ac_id_valid(r->credit)) return AC_EC_ID_INVALID;
    if (!ac_asset_code_valid(r->asset)) return AC_EC_ASSET_INVALID;
    if (strcmp(r->debit, r->credit) == 0) return AC_EC_ACCOUNTS_SAME;
    if (r->amount <= 0) return AC_EC_AMOUNT_ZERO;
    struct acct *dr = acct_get(st, r->debit), *cr = acct_get(st, r->credit);
    if (dr == NULL || cr == NULL) return AC_EC_ACCOUNT_UNKNOWN;
    if (strcmp(dr->a.asset, r->asset) != 0 || strcmp(cr->a.asset, r->asset) != 0)
        return AC_EC_ASSET_MISMATCH;
    struct ac_account *d = &dr->a, *c = &cr->a;
    int64_t amt = r->amount;
    if ((r->flags & AC_TF_BALANCING_DEBIT) && (d->flags & AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS)) {
        int64_t rm = room(d->credits_posted, d->debits_posted, d->debits_pending);
        if (rm < amt) amt = rm;
        if (amt == 0) return AC_EC_EXCEEDS_CREDITS;
    }
    if ((r->flags & AC_TF_BALANCING_CREDIT) && (c->flags & AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS)) {
        int64_t rm = room(c->debits_posted, c->credits_posted, c->credits_pending);
        if (rm < amt) amt = rm;
        if (amt == 0) return AC_EC_EXCEEDS_DEBITS;
    }
    int pending = (r->flags & AC_TF_PENDING) != 0;
    int64_t nd, nc;
    if (ac_add_i64(pending ? d->debits_pending : d->debits_posted, amt, &nd) != 0 ||
        ac_add_i64(pending ? c->credits_pending : c->credits_posted, amt, &nc) != 0)
        return AC_EC_BALANCE_OVERFLOW;
    if ((d->flags & AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
        exceeds(d->debits_pending, d->debits_posted, amt, d->credits_posted))
        return AC_EC_EXCEEDS_CREDITS;
    if ((c->flags & AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
        exceeds(c->credits_pending, c->credits_posted, amt, c->debits_posted))
        return AC_EC_EXCEEDS_DEBITS;
    int64_t expires = NEVER;
    if (r->timeout_s &&
        (ac_add_i64(now_us, (int64_t)r->timeout_s * US_PER_S, &expires) != 0 || expires == NEVER))
        return AC_EC_TIMEOUT_INVALID;

    struct xfer *x = xfer_alloc(r->id, h, pending);
    if (x == NULL) return AC_EC_INTERNAL;
    x->amount = amt;
    x->created_us = now_us;
    memcpy(x->digest, dg, 16);
    log_balance(st, dr);
    log_balance(st, cr);
    if (pending) {
        d->debits_pending = nd;
        c->credits_pending = nc;
        struct pend *p = xpend(x);
        p->debit = dr;
        p->credit = cr;
        p->amount = amt;
        p->expires_us = expires;
        if (expires != NEVER) heap_push(st, x);
    } else {
        d->debits_posted = nd;
        c->credits_posted = nc;
    }
    commit_record(st, r, x, dr, cr);
    ok_result(res, 0, amt, now_us);
    return AC_EC_OK;
}

/* post or void of a pending transfer; validates everything before changing anything */
static enum ac_ec apply_post_void(struct ac_state *st, const struct ac_transfer_req *r, uint32_t h,
                                  int64_t now_us, const uint8_t dg[16],
                                  struct ac_transfer_result *res)
{
    if (!ac_id_valid(r->pending_id) || (r->debit[0] != '\0' && !ac_id_valid(r->debit)) ||
        (r->credit[0] != '\0' && !ac_id_valid(r->credit)))
        return AC_EC_ID_INVALID;
    if (r->asset[0] != '\0' && !ac_asset_code_valid(r->asset)) return AC_EC_ASSET_INVALID;
    if (r->amount == 0) return AC_EC_AMOUNT_ZERO;
    struct xfer *px = xfer_find(st, r->pending_id, hash_id(st, r->pending_id));
    if (px == NULL || px->ec != AC_EC_OK) return AC_EC_PENDING_NOT_FOUND;
    if (px->pstate == AC_PS_NONE) return AC_EC_PENDING_NOT_PENDING;
    struct pend *p = xpend(px);
    struct acct *dr = p->debit, *cr = p->credit;
    if ((r->debit[0] != '\0' && strcmp(r->debit, dr->a.id) != 0) ||
        (r->credit[0] != '\0' && strcmp(r->credit, cr->a.id) != 0) ||
        (r->asset[0] != '\0' && strcmp(r->asset, dr->a.asset) != 0))
        return AC_EC_PENDING_FIELD_MISMATCH;
    switch ((enum ac_pstate)px->pstate) {
    case AC_PS_POSTED:
        return AC_EC_PENDING_ALREADY_POSTED;
    case AC_PS_VOIDED:
        return AC_EC_PENDING_ALREADY_VOIDED;
    case AC_PS_EXPIRED:
        return AC_EC_PENDING_EXPIRED;
    case AC_PS_PENDING:
        break;
    case AC_PS_NONE:
        assert(0);
        break;
    }
    if (p->expires_us != NEVER && p->expires_us <= now_us) return AC_EC_PENDING_EXPIRED;
    int post = (r->flags & AC_TF_POST_PENDING) != 0;
    int64_t amt = p->amount; /* post: amount posted; void: amount released */
    if (r->amount > p->amount) return AC_EC_PENDING_AMOUNT_EXCEEDED;
    if (post && r->amount > 0) amt = r->amount;
    if (!post && r->amount > 0 && r->amount != p->amount) return AC_EC_PENDING_FIELD_MISMATCH;
    struct ac_account *d = &dr->a, *c = &cr->a;
    int64_t nd = d->debits_posted, nc = c->credits_posted;
    if (post && (ac_add_i64(nd, amt, &nd) != 0 || ac_add_i64(nc, amt, &nc) != 0))
        return AC_EC_BALANCE_OVERFLOW;

    struct xfer *x = xfer_alloc(r->id, h, 0);
    if (x == NULL) return AC_EC_INTERNAL;
    x->amount = amt;
    x->created_us = now_us;
    memcpy(x->digest, dg, 16);
    log_balance(st, dr);
    log_balance(st, cr);
    d->debits_pending = release(d->debits_pending, p->amount);
    c->credits_pending = release(c->credits_pending, p->amount);
    d->debits_posted = nd;
    c->credits_posted = nc;
    if (p->heap_pos != NOT_QUEUED) heap_remove(st, px);
    log_ptr(st, U_PSTATE, px, px->pstate);
    px->pstate = post ? AC_PS_POSTED : AC_PS_VOIDED;
    commit_record(st, r, x, dr, cr);
    ok_result(res, 0, amt, now_us);
    return AC_EC_OK;
}

/* Applies one transfer. Returns AC_EC_OK (res set; maybe a replay), a rule failure (nothing
 * changed; dg holds the digest once the id is valid) or AC_EC_INTERNAL (nothing changed). */
static enum ac_ec apply_one(struct ac_state *st, const struct ac_transfer_req *r, int64_t now_us,
                            struct ac_transfer_result *res, uint8_t dg[16])
{
    /* room for everything one transfer can log, so nothing fails half-way */
    if (reserve_undo(st, 4) != 0 ||
        reserve(&st->rows, &st->rcap, st->rn + 1, sizeof *st->rows) != 0 ||
        reserve(&st->heap, &st->hcap, st->hn + 1, sizeof *st->heap) != 0)
        return AC_EC_INTERNAL;
    if (!ac_id_valid(r->id)) return AC_EC_ID_INVALID;
    ac_transfer_digest(r, dg);
    uint32_t h = hash_id(st, r->id);
    const struct xfer *old = xfer_find(st, r->id, h);
    if (old) {
        if (old->ec != AC_EC_OK) return AC_EC_TRANSFER_ID_FAILED;
        if (memcmp(old->digest, dg, 16) != 0) return AC_EC_TRANSFER_EXISTS_DIFFERENT;
        ok_result(res, 1, old->amount, old->created_us);
        return AC_EC_OK;
    }
    uint32_t f = r->flags, kind = f & TF_KIND;
    int pv = (f & TF_PV) != 0;
    if ((f & ~AC_TF__ALL) != 0 || (kind & (kind - 1)) != 0 || (pv && (f & TF_BALANCING)) ||
        (!pv && r->pending_id[0] != '\0'))
        return AC_EC_FLAGS_INVALID;
    if (r->timeout_s != 0 && (!(f & AC_TF_PENDING) || r->timeout_s > TIMEOUT_MAX_S))
        return AC_EC_TIMEOUT_INVALID;
    return pv ? apply_post_void(st, r, h, now_us, dg, res) : apply_plain(st, r, h, now_us, dg, res);
}

/* records a sticky failure of `r` (its id is not in the index); returns 0 or -1 */
static int record_failure(struct ac_state *st, const struct ac_transfer_req *r,
                          const uint8_t dg[16], enum ac_ec ec, int64_t now_us)
{
    /* apply_one() reserved room for this transfer and the undo only gave entries back */
    assert(st->un < st->ucap && st->rn < st->rcap);
    uint32_t h = hash_id(st, r->id);
    assert(xfer_find(st, r->id, h) == NULL);
    struct xfer *x = xfer_alloc(r->id, h, 0);
    if (x == NULL) return -1;
    x->ec = (uint16_t)ec;
    x->created_us = now_us;
    memcpy(x->digest, dg, 16);
    commit_record(st, r, x, NULL, NULL);
    return 0;
}

static void fail_result(struct ac_transfer_result *res, enum ac_ec ec)
{
    *res = (struct ac_transfer_result){ec, 0, 0, 0};
}

/* Applies reqs[0..n) in order at now_us, one result each; see state.h. A linked chain is undone
 * to its savepoint on its first failure; a sticky failure is then recorded on its own. Returns
 * AC_EC_OK, or AC_EC_INTERNAL when out of memory: the whole call is undone and every result is
 * AC_EC_INTERNAL. */
enum ac_ec ac_state_create_transfers(struct ac_state *st, const struct ac_transfer_req *reqs,
                                     size_t n, int64_t now_us, struct ac_transfer_result *results)
{
    size_t call_sp = st->un;
    size_t i = 0;
    while (i < n) {
        size_t end = i; /* the chain is reqs[i..end] */
        while (end < n && (reqs[end].flags & AC_TF_LINKED))
            end++;
        if (end == n) {
            for (size_t k = i; k < n; k++)
                fail_result(&results[k], AC_EC_LINKED_CHAIN_OPEN);
            break;
        }
        size_t sp = st->un;
        for (size_t k = i; k <= end; k++) {
            uint8_t dg[16];
            enum ac_ec ec = apply_one(st, &reqs[k], now_us, &results[k], dg);
            if (ec == AC_EC_OK) continue;
            if (ec == AC_EC_INTERNAL) goto internal;
            undo_to(st, sp);
            for (size_t m = i; m <= end; m++)
                fail_result(&results[m], m == k ? ec : AC_EC_LINKED_EVENT_FAILED);
            if (is_sticky(ec) && record_failure(st, &reqs[k], dg, ec, now_us) != 0) goto internal;
            break;
        }
        i = end + 1;
    }
    return AC_EC_OK;
internal:
    undo_to(st, call_sp);
    for (size_t k = 0; k < n; k++)
        fail_result(&results[k], AC_EC_INTERNAL);
    return AC_EC_INTERNAL;
}

/* Expires every queued pending transfer with expires_us <= now_us, earliest first: releases the
 * held amounts and sets AC_PS_EXPIRED. Returns the count, or -1 when out of memory (this call
 * is undone). */
long ac_state_expire(struct ac_state *st, int64_t now_us)
{
    size_t sp = st->un;
    long n = 0;
    while (st->hn > 0 && st->heap[0].expires_us <= now_us) {
        if (reserve_undo(st, 3) != 0) {
            undo_to(st, sp);
            return -1;
        }
        struct xfer *x = st->heap[0].x;
        struct pend *p = xpend(x);
        assert(x->pstate == AC_PS_PENDING);
        heap_remove(st, x);
        log_balance(st, p->debit);
        log_balance(st, p->credit);
        p->debit->a.debits_pending = release(p->debit->a.debits_pending, p->amount);
        p->credit->a.credits_pending = release(p->credit->a.credits_pending, p->amount);
        log_ptr(st, U_PSTATE, x, x->pstate);
        x->pstate = AC_PS_EXPIRED;
        n++;
    }
    return n;
}

/* Earliest queued expiry (µs), or INT64_MAX when nothing is queued. */
int64_t ac_state_next_expiry(const struct ac_state *st)
{
    return st->hn > 0 ? st->heap[0].expires_us : INT64_MAX;
}

/* Builds the change set from the surviving undo log: new accounts, dirty accounts (each once,
 * in order of first change, final values), the rows of new transfers, and the pending transfers
 * that left AC_PS_PENDING with their final state. The rows come before the pending changes in
 * persistence order: a pending transfer created and posted in one batch has a row with
 * AC_PS_PENDING and a pending change. Returns NULL when out of memory (state unchanged). */
const struct ac_transfer_row *ac_state_rows(const struct ac_state *st, size_t *n)
{
    *n = st->rn;
    return st->rows;
}

const struct ac_changes *ac_state_changes(struct ac_state *st)
{
    size_t na = 0, nb = 0, np = 0;
    for (size_t i = 0; i < st->un; i++) {
        switch ((enum undo_kind)st->undo[i].kind) {
        case U_ACCOUNT:
            na++;
            break;
        case U_BALANCE:
            nb++;
            break;
        case U_PSTATE:
            np++;
            break;
        case U_XFER:
            break;
        }
    }
    if (reserve(&st->newacc, &st->newcap, na, sizeof *st->newacc) != 0 ||
        reserve(&st->dirty, &st->dirtycap, nb, sizeof *st->dirty) != 0 ||
        reserve(&st->pch, &st->pchcap, np, sizeof *st->pch) != 0)
        return NULL;
    st->epoch++;
    struct ac_changes *ch = &st->chg;
    memset(ch, 0, sizeof *ch);
    size_t nd = 0;
    na = np = 0;
    for (size_t i = 0; i < st->un; i++) {
        const struct undo *u = &st->undo[i];
        switch ((enum undo_kind)u->kind) {
        case U_ACCOUNT:
            st->newacc[na++] = &((struct acct *)u->p)->a;
            break;
        case U_BALANCE: {
            struct acct *a = u->p;
            if (a->mark != st->epoch) {
                a->mark = st->epoch;
                st->dirty[nd++] = &a->a;
            }
            break;
        }
        case U_PSTATE: {
            const struct xfer *x = u->p;
            struct ac_pending_change *pc = &st->pch[np++];
            strcpy(pc->id, x->id);
            pc->pstate = (enum ac_pstate)x->pstate;
            break;
        }
        case U_XFER:
            break;
        }
    }
    ch->new_accounts = st->newacc;
    ch->n_new_accounts = na;
    ch->dirty_accounts = st->dirty;
    ch->n_dirty_accounts = nd;
    ch->transfers = st->rows;
    ch->n_transfers = st->rn;
    ch->pending_changes = st->pch;
    ch->n_pending_changes = np;
    return ch;
}

/* Makes the batch final: drops the undo log and the change set. */
void ac_state_commit(struct ac_state *st)
{
    clear_batch(st);
}

/* Undoes everything since ac_state_begin(): accounts, balances, transfer index, pending states
 * and expiry queue are as they were; then drops the change set. */
void ac_state_rollback(struct ac_state *st)
{
    undo_to(st, 0);
    assert(st->rn == 0);
    clear_batch(st);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* The account with this id, or NULL. Valid until it is rolled back or the state is freed. */
const struct ac_account *ac_state_account(const struct ac_state *st, const char *id)
{
    if (!ac_id_valid(id)) return NULL;
    const struct acct *a = acct_get(st, id);
    return a ? &a->a : NULL;
}

/* Number of accounts. */
size_t ac_state_n_accounts(const struct ac_state *st)
{
    return st->an;
}

/* Number of transfer ids in the index (successes and sticky failures). */
size_t ac_state_n_transfers(const struct ac_state *st)
{
    return st->xn;
}
