/* Ledger state rules (ledger/state.h): accounts, transfers, idempotency, flags, two-phase
 * transfers, expiry, balancing, linked chains, undo, change sets, loading, and a randomized
 * property test. The module is compiled into this program (white-box: the snapshots below walk
 * its tables) with allocators that fail on demand, so every out-of-memory path is reached. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long fail_at = -1; /* allocations let through before exactly one fails; -1: none */
static int fail_fired;

static void *t_malloc(size_t n)
{
    if (fail_at == 0) {
        fail_at = -1;
        fail_fired = 1;
        return NULL;
    }
    if (fail_at > 0) fail_at--;
    return malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    if (fail_at == 0) {
        fail_at = -1;
        fail_fired = 1;
        return NULL;
    }
    if (fail_at > 0) fail_at--;
    return realloc(p, n);
}

static void *t_calloc(size_t n, size_t size)
{
    if (fail_at == 0) {
        fail_at = -1;
        fail_fired = 1;
        return NULL;
    }
    if (fail_at > 0) fail_at--;
    return calloc(n, size);
}

static void arm_failure(long k)
{
    fail_at = k;
    fail_fired = 0;
}

#define AC_STATE_MALLOC t_malloc
#define AC_STATE_REALLOC t_realloc
#define AC_STATE_CALLOC t_calloc
#include "ledger/state.c"

#define NOW INT64_C(1700000000000000)
/* the digest of the request in test digest(), computed independently (Python hashlib) */
#define DIGEST_KAT "a0181e830aac4f7a454ac7ca451a1841"
#define SEC INT64_C(1000000)

/* ---- helpers ------------------------------------------------------------------------------ */

static struct ac_account t_account(const char *id, const char *asset, const char *owner,
                                   uint32_t flags)
{
    struct ac_account a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "%s", id);
    snprintf(a.asset, sizeof a.asset, "%s", asset);
    snprintf(a.owner, sizeof a.owner, "%s", owner);
    a.flags = flags;
    return a;
}

static void t_add(struct ac_state *st, const char *id, const char *asset, uint32_t flags)
{
    struct ac_account a = t_account(id, asset, "", flags);
    int rep = -1;
    assert_int_equal(ac_state_create_account(st, &a, &rep), AC_EC_OK);
    assert_int_equal(rep, 0);
}

static void t_load(struct ac_state *st, const char *id, uint32_t flags, int64_t dp, int64_t dpo,
                   int64_t cp, int64_t cpo)
{
    struct ac_account a = t_account(id, "CNY", "", flags);
    a.debits_pending = dp;
    a.debits_posted = dpo;
    a.credits_pending = cp;
    a.credits_posted = cpo;
    assert_int_equal(ac_state_load_account(st, &a), 0);
}

static struct ac_transfer_req tx(const char *id, const char *dr, const char *cr, int64_t amount,
                                 uint32_t flags)
{
    struct ac_transfer_req r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.debit, sizeof r.debit, "%s", dr);
    snprintf(r.credit, sizeof r.credit, "%s", cr);
    snprintf(r.asset, sizeof r.asset, "CNY");
    r.amount = amount;
    r.flags = flags;
    return r;
}

/* a pending transfer with a timeout */
static struct ac_transfer_req tx_pending(const char *id, const char *dr, const char *cr,
                                         int64_t amount, uint32_t timeout_s)
{
    struct ac_transfer_req r = tx(id, dr, cr, amount, AC_TF_PENDING);
    r.timeout_s = timeout_s;
    return r;
}

/* post (flag AC_TF_POST_PENDING) or void of `pid` with empty debit/credit/asset */
static struct ac_transfer_req pv(const char *id, const char *pid, int64_t amount, uint32_t flags)
{
    struct ac_transfer_req r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.pending_id, sizeof r.pending_id, "%s", pid);
    r.amount = amount;
    r.flags = flags;
    return r;
}

static struct ac_transfer_result run(struct ac_state *st, struct ac_transfer_req r, int64_t now)
{
    struct ac_transfer_result res;
    memset(&res, 0x5a, sizeof res);
    assert_int_equal(ac_state_create_transfers(st, &r, 1, now, &res), AC_EC_OK);
    return res;
}

static enum ac_ec ec1(struct ac_state *st, struct ac_transfer_req r, int64_t now)
{
    struct ac_transfer_result res = run(st, r, now);
    if (res.ec != AC_EC_OK) {
        assert_int_equal(res.replayed, 0);
        assert_true(res.amount == 0);
    }
    return res.ec;
}

static void ok1(struct ac_state *st, struct ac_transfer_req r, int64_t now, int line)
{
    struct ac_transfer_result res = run(st, r, now);
    if (res.ec != AC_EC_OK) print_error("transfer %s: %s\n", r.id, ac_ec_code(res.ec));
    _assert_int_equal(res.ec, AC_EC_OK, __FILE__, line);
    _assert_int_equal(res.replayed, 0, __FILE__, line);
}
#define OK1(st, r, now) ok1(st, r, now, __LINE__)

static int fund_seq;

/* credits `id` with `amount` from "bank" */
static void fund(struct ac_state *st, const char *id, int64_t amount)
{
    char fid[32];
    snprintf(fid, sizeof fid, "fund-%d", ++fund_seq);
    OK1(st, tx(fid, "bank", id, amount, 0), NOW);
}

static void expect_bal(const struct ac_state *st, const char *id, int64_t dp, int64_t dpo,
                       int64_t cp, int64_t cpo, int line)
{
    const struct ac_account *a = ac_state_account(st, id);
    _assert_true(a != NULL, "account", __FILE__, line);
    _assert_int_equal((uintmax_t)a->debits_pending, (uintmax_t)dp, __FILE__, line);
    _assert_int_equal((uintmax_t)a->debits_posted, (uintmax_t)dpo, __FILE__, line);
    _assert_int_equal((uintmax_t)a->credits_pending, (uintmax_t)cp, __FILE__, line);
    _assert_int_equal((uintmax_t)a->credits_posted, (uintmax_t)cpo, __FILE__, line);
}
#define BAL(st, id, dp, dpo, cp, cpo) expect_bal(st, id, dp, dpo, cp, cpo, __LINE__)

/* the row with this id in the change set, or NULL */
static const struct ac_transfer_row *row_of(const struct ac_changes *ch, const char *id)
{
    for (size_t i = 0; i < ch->n_transfers; i++)
        if (strcmp(ch->transfers[i].id, id) == 0) return &ch->transfers[i];
    return NULL;
}

/* ---- white-box snapshot of the whole state ------------------------------------------------ */

struct t_xsnap {
    char id[AC_ID_MAX + 1];
    uint16_t ec;
    uint8_t pstate;
    int64_t amount, created_us;
    uint8_t digest[16];
    char debit[AC_ID_MAX + 1], credit[AC_ID_MAX + 1];
    int64_t pamount, expires_us;
    int queued;
};

struct t_snap {
    size_t na, nx, hn;
    struct ac_account *acc;
    struct t_xsnap *x;
    int64_t next_expiry;
};

static int cmp_acc(const void *a, const void *b)
{
    return strcmp(((const struct ac_account *)a)->id, ((const struct ac_account *)b)->id);
}

static int cmp_x(const void *a, const void *b)
{
    return strcmp(((const struct t_xsnap *)a)->id, ((const struct t_xsnap *)b)->id);
}

/* every record, from both bucket arrays while the index doubles (free() the array); checks that
 * each sits in the chain xfer_chain() names for its hash */
static struct xfer **all_xfers(struct ac_state *st, size_t *n)
{
    struct xfer **v = malloc((st->xn + 1) * sizeof *v);
    assert_non_null(v);
    *n = 0;
    for (int t = 0; t < 2; t++) {
        struct xfer **b = t ? st->xold : st->xb;
        size_t mask = t ? st->xoldmask : st->xmask;
        if (b == NULL) continue;
        for (size_t i = 0; i <= mask; i++)
            for (struct xfer *x = b[i]; x; x = x->next) {
                assert_ptr_equal(xfer_chain(st, x->hash), &b[i]);
                assert_true(*n < st->xn);
                v[(*n)++] = x;
            }
    }
    assert_int_equal(*n, st->xn);
    return v;
}

/* checks the heap property and that the queued records are exactly the heap's */
static void check_heap(struct ac_state *st)
{
    for (size_t i = 1; i < st->hn; i++)
        assert_true(st->heap[(i - 1) / 2].expires_us <= st->heap[i].expires_us);
    size_t queued = 0, n;
    struct xfer **all = all_xfers(st, &n);
    for (size_t i = 0; i < n; i++) {
        struct xfer *x = all[i];
        if (x->pstate == AC_PS_NONE) continue;
        struct pend *p = xpend(x);
        int want = x->pstate == AC_PS_PENDING && p->expires_us != NEVER;
        assert_int_equal(p->heap_pos != NOT_QUEUED, want);
        if (!want) continue;
        queued++;
        assert_true(p->heap_pos < st->hn);
        assert_ptr_equal(st->heap[p->heap_pos].x, x);
        assert_true(st->heap[p->heap_pos].expires_us == p->expires_us);
    }
    free(all);
    assert_int_equal(queued, st->hn);
}

static void snap_take(struct ac_state *st, struct t_snap *s)
{
    memset(s, 0, sizeof *s);
    s->acc = calloc(st->an + 1, sizeof *s->acc);
    s->x = calloc(st->xn + 1, sizeof *s->x);
    assert_non_null(s->acc);
    assert_non_null(s->x);
    for (size_t i = 0; i <= st->amask; i++)
        for (struct acct *a = st->ab[i]; a; a = a->next)
            s->acc[s->na++] = a->a;
    size_t nall;
    struct xfer **all = all_xfers(st, &nall);
    for (size_t k = 0; k < nall; k++) {
        struct xfer *x = all[k];
        struct t_xsnap *o = &s->x[s->nx++];
        strcpy(o->id, x->id);
        o->ec = x->ec;
        o->pstate = x->pstate;
        o->amount = x->amount;
        o->created_us = x->created_us;
        memcpy(o->digest, x->digest, 16);
        if (x->pstate != AC_PS_NONE) {
            struct pend *p = xpend(x);
            strcpy(o->debit, p->debit->a.id);
            strcpy(o->credit, p->credit->a.id);
            o->pamount = p->amount;
            o->expires_us = p->expires_us;
            o->queued = p->heap_pos != NOT_QUEUED;
        }
    }
    free(all);
    assert_int_equal(s->na, st->an);
    assert_int_equal(s->nx, st->xn);
    s->hn = st->hn;
    s->next_expiry = ac_state_next_expiry(st);
    qsort(s->acc, s->na, sizeof *s->acc, cmp_acc);
    qsort(s->x, s->nx, sizeof *s->x, cmp_x);
    check_heap(st);
}

static void snap_free(struct t_snap *s)
{
    free(s->acc);
    free(s->x);
}

static void snap_equal(const struct t_snap *a, const struct t_snap *b)
{
    assert_int_equal(a->na, b->na);
    assert_int_equal(a->nx, b->nx);
    assert_int_equal(a->hn, b->hn);
    assert_true(a->next_expiry == b->next_expiry);
    for (size_t i = 0; i < a->na; i++) {
        const struct ac_account *p = &a->acc[i], *q = &b->acc[i];
        assert_string_equal(p->id, q->id);
        assert_string_equal(p->asset, q->asset);
        assert_string_equal(p->owner, q->owner);
        assert_int_equal(p->flags, q->flags);
        assert_true(p->debits_pending == q->debits_pending);
        assert_true(p->debits_posted == q->debits_posted);
        assert_true(p->credits_pending == q->credits_pending);
        assert_true(p->credits_posted == q->credits_posted);
    }
    for (size_t i = 0; i < a->nx; i++) {
        const struct t_xsnap *p = &a->x[i], *q = &b->x[i];
        assert_string_equal(p->id, q->id);
        assert_int_equal(p->ec, q->ec);
        assert_int_equal(p->pstate, q->pstate);
        assert_true(p->amount == q->amount);
        assert_true(p->created_us == q->created_us);
        assert_memory_equal(p->digest, q->digest, 16);
        assert_string_equal(p->debit, q->debit);
        assert_string_equal(p->credit, q->credit);
        assert_true(p->pamount == q->pamount);
        assert_true(p->expires_us == q->expires_us);
        assert_int_equal(p->queued, q->queued);
    }
}

/* per asset: sum(debits_pending) == sum(credits_pending), same for posted; flags hold */
static void check_invariants(struct ac_state *st)
{
    struct {
        char asset[AC_ASSET_MAX + 1];
        int64_t dp, dpo, cp, cpo;
    } sum[8];
    size_t ns = 0;
    memset(sum, 0, sizeof sum);
    for (size_t i = 0; i <= st->amask; i++)
        for (struct acct *w = st->ab[i]; w; w = w->next) {
            const struct ac_account *a = &w->a;
            size_t k = 0;
            while (k < ns && strcmp(sum[k].asset, a->asset) != 0)
                k++;
            if (k == ns) {
                assert_true(ns < 8);
                strcpy(sum[ns++].asset, a->asset);
            }
            assert_true(a->debits_pending >= 0 && a->debits_posted >= 0);
            assert_true(a->credits_pending >= 0 && a->credits_posted >= 0);
            if (a->flags & AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS)
                assert_true(a->debits_pending + a->debits_posted <= a->credits_posted);
            if (a->flags & AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS)
                assert_true(a->credits_pending + a->credits_posted <= a->debits_posted);
            sum[k].dp += a->debits_pending;
            sum[k].dpo += a->debits_posted;
            sum[k].cp += a->credits_pending;
            sum[k].cpo += a->credits_posted;
        }
    for (size_t k = 0; k < ns; k++) {
        assert_true(sum[k].dp == sum[k].cp);
        assert_true(sum[k].dpo == sum[k].cpo);
    }
    check_heap(st);
}

/* ---- fixture ------------------------------------------------------------------------------ */

/* bank, a, b: CNY without flags; u: CNY debits<=credits; m: CNY credits<=debits; t1, t2: TOK */
static int setup(void **state)
{
    struct ac_state *st = ac_state_new();
    if (st == NULL) return -1;
    ac_state_begin(st);
    t_add(st, "bank", "CNY", 0);
    t_add(st, "a", "CNY", 0);
    t_add(st, "b", "CNY", 0);
    t_add(st, "u", "CNY", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS);
    t_add(st, "m", "CNY", AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS);
    t_add(st, "t1", "TOK", 0);
    t_add(st, "t2", "TOK", 0);
    ac_state_commit(st);
    ac_state_begin(st);
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    ac_state_free(*state);
    return 0;
}

/* ---- accounts ----------------------------------------------------------------------------- */

static void accounts(void **state)
{
    struct ac_state *st = *state;
    size_t n0 = ac_state_n_accounts(st);
    assert_int_equal(n0, 7);
    assert_null(ac_state_account(st, "nope"));
    assert_null(ac_state_account(st, "bad id"));
    assert_null(ac_state_account(st, ""));

    struct ac_account a =
        t_account("acct:x-1", "CNY", "user:7", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS);
    a.debits_posted = 5; /* ignored: a new account starts at zero */
    a.credits_pending = 9;
    int rep = -1;
    assert_int_equal(ac_state_create_account(st, &a, &rep), AC_EC_OK);
    assert_int_equal(rep, 0);
    BAL(st, "acct:x-1", 0, 0, 0, 0);
    const struct ac_account *got = ac_state_account(st, "acct:x-1");
    assert_string_equal(got->owner, "user:7");
    assert_string_equal(got->asset, "CNY");
    assert_int_equal(got->flags, AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS);
    assert_int_equal(ac_state_n_accounts(st), n0 + 1);

    /* replay: same fields (balances ignored) */
    a.credits_posted = 77;
    assert_int_equal(ac_state_create_account(st, &a, &rep), AC_EC_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(ac_state_create_account(st, &a, NULL), AC_EC_OK);
    assert_int_equal(ac_state_n_accounts(st), n0 + 1);

    /* exists with different fields */
    struct ac_account d = a;
    strcpy(d.asset, "TOK");
    assert_int_equal(ac_state_create_account(st, &d, &rep), AC_EC_ACCOUNT_EXISTS);
    assert_int_equal(rep, 0);
    d = a;
    strcpy(d.owner, "user:8");
    assert_int_equal(ac_state_create_account(st, &d, &rep), AC_EC_ACCOUNT_EXISTS);
    d = a;
    strcpy(d.owner, "");
    assert_int_equal(ac_state_create_account(st, &d, &rep), AC_EC_ACCOUNT_EXISTS);
    d = a;
    d.flags = AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS;
    assert_int_equal(ac_state_create_account(st, &d, &rep), AC_EC_ACCOUNT_EXISTS);

    /* invalid */
    static const struct {
        const char *id, *asset, *owner;
        uint32_t flags;
        enum ac_ec want;
    } bad[] = {
        {"", "CNY", "", 0, AC_EC_ID_INVALID},
        {"a b", "CNY", "", 0, AC_EC_ID_INVALID},
        {"ok", "CNY", "bad owner", 0, AC_EC_ID_INVALID},
        {"ok", "cny", "", 0, AC_EC_ASSET_INVALID},
        {"ok", "", "", 0, AC_EC_ASSET_INVALID},
        {"ok", "CNY", "", 0x4, AC_EC_FLAGS_INVALID},
        {"ok", "CNY", "", AC_AF__ALL, AC_EC_FLAGS_INVALID},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ac_account b = t_account(bad[i].id, bad[i].asset, bad[i].owner, bad[i].flags);
        rep = -1;
        assert_int_equal(ac_state_create_account(st, &b, &rep), bad[i].want);
        assert_int_equal(rep, 0);
    }
    assert_int_equal(ac_state_n_accounts(st), n0 + 1);
    assert_null(ac_state_account(st, "ok"));

    /* owner "" and CREDITS_MUST_NOT_EXCEED_DEBITS alone are fine */
    t_add(st, "ok", "CNY", AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS);

    const struct ac_changes *ch = ac_state_changes(st);
    assert_non_null(ch);
    assert_int_equal(ch->n_new_accounts, 2);
    assert_string_equal(ch->new_accounts[0]->id, "acct:x-1");
    assert_string_equal(ch->new_accounts[1]->id, "ok");
    assert_int_equal(ch->n_dirty_accounts, 0);
    assert_int_equal(ch->n_transfers, 0);
    assert_int_equal(ch->n_pending_changes, 0);
}

/* more accounts than the initial bucket array: the table grows, pointers stay valid */
static void account_table_growth(void **state)
{
    struct ac_state *st = *state;
    const struct ac_account *first = ac_state_account(st, "a");
    char id[32];
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "g%d", i);
        t_add(st, id, "CNY", 0);
    }
    assert_ptr_equal(ac_state_account(st, "a"), first);
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "g%d", i);
        const struct ac_account *a = ac_state_account(st, id);
        assert_non_null(a);
        assert_string_equal(a->id, id);
    }
    assert_true(st->amask + 1 >= 512);
    ac_state_rollback(st);
    assert_int_equal(ac_state_n_accounts(st), 7);
    assert_null(ac_state_account(st, "g0"));
    assert_ptr_equal(ac_state_account(st, "a"), first);
}

/* ---- plain transfers ---------------------------------------------------------------------- */

static void transfer_ok(void **state)
{
    struct ac_state *st = *state;
    struct ac_transfer_req r = tx("x1", "a", "b", 100, 0);
    r.code = 42;
    struct ac_transfer_result res = run(st, r, NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_int_equal(res.replayed, 0);
    assert_true(res.amount == 100);
    assert_true(res.created_us == NOW);
    BAL(st, "a", 0, 100, 0, 0);
    BAL(st, "b", 0, 0, 0, 100);
    assert_int_equal(ac_state_n_transfers(st), 1);
    assert_true(ac_state_next_expiry(st) == INT64_MAX);

    const struct ac_changes *ch = ac_state_changes(st);
    assert_int_equal(ch->n_transfers, 1);
    const struct ac_transfer_row *w = &ch->transfers[0];
    assert_string_equal(w->id, "x1");
    assert_string_equal(w->debit, "a");
    assert_string_equal(w->credit, "b");
    assert_string_equal(w->asset, "CNY");
    assert_true(w->amount == 100);
    assert_int_equal(w->flags, 0);
    assert_string_equal(w->pending_id, "");
    assert_int_equal(w->timeout_s, 0);
    assert_int_equal(w->code, 42);
    assert_true(w->created_us == NOW);
    assert_int_equal(w->pstate, AC_PS_NONE);
    assert_int_equal(w->result, AC_EC_OK);
    uint8_t dg[16];
    ac_transfer_digest(&r, dg);
    assert_memory_equal(w->digest, dg, 16);

    /* a call with no transfers does nothing */
    assert_int_equal(ac_state_create_transfers(st, NULL, 0, NOW, NULL), AC_EC_OK);
    assert_int_equal(ac_state_n_transfers(st), 1);
}

static void transfer_validation(void **state)
{
    struct ac_state *st = *state;
    struct ac_transfer_req r;
    struct {
        struct ac_transfer_req r;
        enum ac_ec want;
    } v[40];
    size_t n = 0;
#define BAD(req, ec)                                                                               \
    do {                                                                                           \
        v[n].r = (req);                                                                            \
        v[n++].want = (ec);                                                                        \
    } while (0)
    BAD(tx("", "a", "b", 1, 0), AC_EC_ID_INVALID);
    BAD(tx("v v", "a", "b", 1, 0), AC_EC_ID_INVALID);
    BAD(tx("v", "", "b", 1, 0), AC_EC_ID_INVALID);
    BAD(tx("v", "a", "bad id", 1, 0), AC_EC_ID_INVALID);
    r = tx("v", "a", "b", 1, 0);
    strcpy(r.asset, "cny");
    BAD(r, AC_EC_ASSET_INVALID);
    r.asset[0] = '\0';
    BAD(r, AC_EC_ASSET_INVALID);
    BAD(tx("v", "a", "a", 1, 0), AC_EC_ACCOUNTS_SAME);
    BAD(tx("v", "zz", "b", 1, 0), AC_EC_ACCOUNT_UNKNOWN);
    BAD(tx("v", "a", "zz", 1, 0), AC_EC_ACCOUNT_UNKNOWN);
    r = tx("v", "a", "b", 1, 0);
    strcpy(r.asset, "TOK"); /* transfer asset differs from both accounts */
    BAD(r, AC_EC_ASSET_MISMATCH);
    BAD(tx("v", "a", "t1", 1, 0), AC_EC_ASSET_MISMATCH);
    BAD(tx("v", "t1", "a", 1, 0), AC_EC_ASSET_MISMATCH);
    BAD(tx("v", "a", "b", 0, 0), AC_EC_AMOUNT_ZERO);
    BAD(tx("v", "a", "b", -5, 0), AC_EC_AMOUNT_ZERO);
    BAD(tx("v", "a", "b", 1, 0x40), AC_EC_FLAGS_INVALID);
    BAD(tx("v", "a", "b", 1, AC_TF_PENDING | AC_TF_POST_PENDING), AC_EC_FLAGS_INVALID);
    BAD(tx("v", "a", "b", 1, AC_TF_PENDING | AC_TF_VOID_PENDING), AC_EC_FLAGS_INVALID);
    BAD(pv("v", "p", 1, AC_TF_POST_PENDING | AC_TF_VOID_PENDING), AC_EC_FLAGS_INVALID);
    BAD(pv("v", "p", 1, AC_TF_POST_PENDING | AC_TF_BALANCING_DEBIT), AC_EC_FLAGS_INVALID);
    BAD(pv("v", "p", 1, AC_TF_VOID_PENDING | AC_TF_BALANCING_CREDIT), AC_EC_FLAGS_INVALID);
    r = tx("v", "a", "b", 1, 0);
    strcpy(r.pending_id, "p"); /* pending_id only with post/void */
    BAD(r, AC_EC_FLAGS_INVALID);
    r.flags = AC_TF_PENDING;
    BAD(r, AC_EC_FLAGS_INVALID);
    r = tx("v", "a", "b", 1, 0);
    r.timeout_s = 5; /* timeout on a non-pending transfer */
    BAD(r, AC_EC_TIMEOUT_INVALID);
    r = pv("v", "p", 1, AC_TF_POST_PENDING);
    r.timeout_s = 5;
    BAD(r, AC_EC_TIMEOUT_INVALID);
    BAD(tx_pending("v", "a", "b", 1, TIMEOUT_MAX_S + 1), AC_EC_TIMEOUT_INVALID);
    BAD(pv("v", "", 1, AC_TF_POST_PENDING), AC_EC_ID_INVALID);
    BAD(pv("v", "bad id", 1, AC_TF_VOID_PENDING), AC_EC_ID_INVALID);
    r = pv("v", "p", 1, AC_TF_POST_PENDING);
    strcpy(r.debit, "bad id");
    BAD(r, AC_EC_ID_INVALID);
    r = pv("v", "p", 1, AC_TF_POST_PENDING);
    strcpy(r.credit, "bad id");
    BAD(r, AC_EC_ID_INVALID);
    r = pv("v", "p", 1, AC_TF_POST_PENDING);
    strcpy(r.asset, "x");
    BAD(r, AC_EC_ASSET_INVALID);
    BAD(pv("v", "p", 0, AC_TF_POST_PENDING), AC_EC_AMOUNT_ZERO);
    BAD(pv("v", "p", 0, AC_TF_VOID_PENDING), AC_EC_AMOUNT_ZERO);
#undef BAD
    assert_true(n <= sizeof v / sizeof v[0]);
    struct t_snap before, after;
    snap_take(st, &before);
    for (size_t i = 0; i < n; i++) {
        enum ac_ec got = ec1(st, v[i].r, NOW);
        if (got != v[i].want)
            print_error("case %zu: got %s want %s\n", i, ac_ec_code(got), ac_ec_code(v[i].want));
        assert_int_equal(got, v[i].want);
    }
    snap_take(st, &after);
    snap_equal(&before, &after); /* nothing applied, nothing recorded */
    snap_free(&before);
    snap_free(&after);
    assert_int_equal(ac_state_changes(st)->n_transfers, 0);

    /* these failures are not sticky: the id is still free */
    OK1(st, tx("v", "a", "b", 1, 0), NOW);
    OK1(st, tx_pending("v2", "a", "b", 1, TIMEOUT_MAX_S), NOW); /* the longest timeout */
    assert_true(ac_state_next_expiry(st) == NOW + (int64_t)TIMEOUT_MAX_S * SEC);
}

/* ---- idempotency -------------------------------------------------------------------------- */

static void idempotency(void **state)
{
    struct ac_state *st = *state;
    struct ac_transfer_req r = tx("x1", "a", "b", 100, 0);
    OK1(st, r, NOW);
    ac_state_commit(st);
    ac_state_begin(st);

    /* same fields: the original result, nothing changes */
    struct ac_transfer_result res = run(st, r, NOW + 5 * SEC);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_int_equal(res.replayed, 1);
    assert_true(res.amount == 100);
    assert_true(res.created_us == NOW);
    BAL(st, "a", 0, 100, 0, 0);
    BAL(st, "b", 0, 0, 0, 100);
    assert_int_equal(ac_state_n_transfers(st), 1);
    const struct ac_changes *ch = ac_state_changes(st);
    assert_int_equal(ch->n_transfers, 0);
    assert_int_equal(ch->n_dirty_accounts, 0);

    /* different fields */
    struct ac_transfer_req d = r;
    d.amount = 101;
    assert_int_equal(ec1(st, d, NOW), AC_EC_TRANSFER_EXISTS_DIFFERENT);
    d = r;
    d.code = 7;
    assert_int_equal(ec1(st, d, NOW), AC_EC_TRANSFER_EXISTS_DIFFERENT);
    d = r;
    strcpy(d.credit, "bank");
    assert_int_equal(ec1(st, d, NOW), AC_EC_TRANSFER_EXISTS_DIFFERENT);
    /* even an invalid request with a known id is answered by the id */
    d = r;
    d.amount = 0;
    assert_int_equal(ec1(st, d, NOW), AC_EC_TRANSFER_EXISTS_DIFFERENT);
    /* the LINKED flag is a field too */
    struct ac_transfer_req two[2] = {r, tx("y1", "a", "b", 1, 0)};
    two[0].flags |= AC_TF_LINKED;
    struct ac_transfer_result rs[2];
    assert_int_equal(ac_state_create_transfers(st, two, 2, NOW, rs), AC_EC_OK);
    assert_int_equal(rs[0].ec, AC_EC_TRANSFER_EXISTS_DIFFERENT);
    assert_int_equal(rs[1].ec, AC_EC_LINKED_EVENT_FAILED);
    BAL(st, "a", 0, 100, 0, 0);

    /* the same id twice in one call: the second is a replay of the first */
    struct ac_transfer_req same[2] = {tx("x2", "a", "b", 3, 0), tx("x2", "a", "b", 3, 0)};
    assert_int_equal(ac_state_create_transfers(st, same, 2, NOW + 1, rs), AC_EC_OK);
    assert_int_equal(rs[0].ec, AC_EC_OK);
    assert_int_equal(rs[0].replayed, 0);
    assert_int_equal(rs[1].ec, AC_EC_OK);
    assert_int_equal(rs[1].replayed, 1);
    assert_true(rs[1].created_us == NOW + 1);
    BAL(st, "a", 0, 103, 0, 0);

    /* sticky failure: recorded, then the id is burnt whatever the fields */
    struct ac_transfer_req s = tx("s1", "u", "b", 10, 0);
    assert_int_equal(ec1(st, s, NOW + 2), AC_EC_EXCEEDS_CREDITS);
    size_t nt = ac_state_n_transfers(st);
    assert_int_equal(ec1(st, s, NOW + 3), AC_EC_TRANSFER_ID_FAILED);
    fund(st, "u", 50);
    assert_int_equal(ec1(st, s, NOW + 3), AC_EC_TRANSFER_ID_FAILED); /* would succeed now */
    s.amount = 1;
    assert_int_equal(ec1(st, s, NOW + 3), AC_EC_TRANSFER_ID_FAILED);
    assert_int_equal(ac_state_n_transfers(st), nt + 1); /* + the funding transfer */
    BAL(st, "u", 0, 0, 0, 50);
    ch = ac_state_changes(st);
    const struct ac_transfer_row *w = row_of(ch, "s1");
    assert_non_null(w);
    assert_int_equal(w->result, AC_EC_EXCEEDS_CREDITS);
    assert_true(w->created_us == NOW + 2);
    assert_true(w->amount == 0);
    assert_string_equal(w->debit, "");
    uint8_t dg[16];
    struct ac_transfer_req s0 = tx("s1", "u", "b", 10, 0);
    ac_transfer_digest(&s0, dg);
    assert_memory_equal(w->digest, dg, 16);

    /* non-sticky failure: the id can be used later */
    assert_int_equal(ec1(st, tx("n1", "a", "zz", 5, 0), NOW), AC_EC_ACCOUNT_UNKNOWN);
    assert_null(row_of(ac_state_changes(st), "n1"));
    OK1(st, tx("n1", "a", "b", 5, 0), NOW);
}

/* ---- account flags ------------------------------------------------------------------------ */

static void debit_flag_boundary(void **state)
{
    struct ac_state *st = *state;
    fund(st, "u", 100);
    assert_int_equal(ec1(st, tx("u1", "u", "b", 101, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    OK1(st, tx("u2", "u", "b", 100, 0), NOW); /* exactly the credits */
    BAL(st, "u", 0, 100, 0, 100);
    assert_int_equal(ec1(st, tx("u3", "u", "b", 1, 0), NOW), AC_EC_EXCEEDS_CREDITS);

    /* held amounts count */
    fund(st, "u", 100);
    OK1(st, tx("u4", "u", "b", 60, AC_TF_PENDING), NOW);
    assert_int_equal(ec1(st, tx("u5", "u", "b", 41, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(ec1(st, tx("u6", "u", "b", 41, AC_TF_PENDING), NOW), AC_EC_EXCEEDS_CREDITS);
    OK1(st, tx("u7", "u", "b", 40, 0), NOW);
    BAL(st, "u", 60, 140, 0, 200);

    /* the flag does not limit credits to u, and m's flag does not limit debits of m */
    OK1(st, tx("u8", "a", "u", 1000, 0), NOW);
    OK1(st, tx("m1", "m", "b", 1000, 0), NOW);
    check_invariants(st);
}

static void credit_flag_boundary(void **state)
{
    struct ac_state *st = *state;
    assert_int_equal(ec1(st, tx("c0", "a", "m", 1, 0), NOW), AC_EC_EXCEEDS_DEBITS);
    OK1(st, tx("c1", "m", "b", 50, 0), NOW); /* m now has 50 debits */
    assert_int_equal(ec1(st, tx("c2", "a", "m", 51, 0), NOW), AC_EC_EXCEEDS_DEBITS);
    OK1(st, tx("c3", "a", "m", 20, AC_TF_PENDING), NOW);
    assert_int_equal(ec1(st, tx("c4", "a", "m", 31, 0), NOW), AC_EC_EXCEEDS_DEBITS);
    OK1(st, tx("c5", "a", "m", 30, 0), NOW); /* exactly the debits */
    BAL(st, "m", 0, 50, 20, 30);
    assert_int_equal(ec1(st, tx("c6", "a", "m", 1, AC_TF_PENDING), NOW), AC_EC_EXCEEDS_DEBITS);
    /* both are sticky */
    assert_int_equal(ec1(st, tx("c0", "a", "b", 1, 0), NOW), AC_EC_TRANSFER_ID_FAILED);
    assert_int_equal(ec1(st, tx("c6", "a", "b", 1, 0), NOW), AC_EC_TRANSFER_ID_FAILED);
    check_invariants(st);
}

/* ---- overflow ----------------------------------------------------------------------------- */

static void overflow(void **state)
{
    struct ac_state *st = *state;
    t_load(st, "big-c", 0, 0, 0, 0, INT64_MAX - 10);
    OK1(st, tx("o1", "a", "big-c", 10, 0), NOW);
    assert_int_equal(ec1(st, tx("o2", "a", "big-c", 1, 0), NOW), AC_EC_BALANCE_OVERFLOW);
    BAL(st, "a", 0, 10, 0, 0);
    /* not sticky */
    OK1(st, tx("o2", "a", "b", 1, 0), NOW);

    t_load(st, "big-d", 0, 0, INT64_MAX, 0, 0);
    assert_int_equal(ec1(st, tx("o3", "big-d", "b", 1, 0), NOW), AC_EC_BALANCE_OVERFLOW);
    t_load(st, "big-cp", 0, 0, 0, INT64_MAX - 1, 0);
    assert_int_equal(ec1(st, tx("o4", "a", "big-cp", 2, AC_TF_PENDING), NOW),
                     AC_EC_BALANCE_OVERFLOW);
    OK1(st, tx("o4", "a", "big-cp", 1, AC_TF_PENDING), NOW);
    t_load(st, "big-dp", 0, INT64_MAX, 0, 0, 0);
    assert_int_equal(ec1(st, tx("o5", "big-dp", "b", 1, AC_TF_PENDING), NOW),
                     AC_EC_BALANCE_OVERFLOW);

    /* post would overflow debits_posted: the full post fails, a smaller one fits */
    t_load(st, "near", 0, 0, INT64_MAX - 2, 0, 0);
    OK1(st, tx("o6", "near", "b", 5, AC_TF_PENDING), NOW);
    assert_int_equal(ec1(st, pv("o7", "o6", -1, AC_TF_POST_PENDING), NOW), AC_EC_BALANCE_OVERFLOW);
    OK1(st, pv("o7", "o6", 2, AC_TF_POST_PENDING), NOW);
    BAL(st, "near", 0, INT64_MAX, 0, 0);
    /* credits_posted of the credit account too */
    t_load(st, "near-c", 0, 0, 0, 0, INT64_MAX - 2);
    OK1(st, tx("o8", "a", "near-c", 5, AC_TF_PENDING), NOW);
    assert_int_equal(ec1(st, pv("o9", "o8", 3, AC_TF_POST_PENDING), NOW), AC_EC_BALANCE_OVERFLOW);
    OK1(st, pv("o9", "o8", -1, AC_TF_VOID_PENDING), NOW); /* a void never overflows */

    /* debits_pending + debits_posted overflows: exceeds any credits, not an overflow */
    t_load(st, "huge", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, INT64_MAX / 2 + 1, INT64_MAX / 2 + 1,
           0, INT64_MAX);
    assert_int_equal(ec1(st, tx("o10", "huge", "b", 1, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(ec1(st, tx("o11", "huge", "b", 1, AC_TF_BALANCING_DEBIT), NOW),
                     AC_EC_EXCEEDS_CREDITS);
    t_load(st, "huge-c", AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS, 0, INT64_MAX, INT64_MAX / 2 + 1,
           INT64_MAX / 2 + 1);
    assert_int_equal(ec1(st, tx("o12", "a", "huge-c", 1, 0), NOW), AC_EC_EXCEEDS_DEBITS);
    /* held + posted fit, + amount does not */
    t_load(st, "huge2", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, INT64_MAX / 2 + 1, INT64_MAX / 2 - 1,
           0, INT64_MAX);
    assert_int_equal(ec1(st, tx("o13", "huge2", "b", 5, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    /* room computed from inconsistent stored balances: none */
    t_load(st, "odd", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, 2, INT64_MAX, 0, 0);
    assert_int_equal(ec1(st, tx("o14", "odd", "b", 5, AC_TF_BALANCING_DEBIT), NOW),
                     AC_EC_EXCEEDS_CREDITS);

    /* an expiry time that does not fit */
    assert_int_equal(ec1(st, tx_pending("o15", "a", "b", 1, 1), INT64_MAX - 10),
                     AC_EC_TIMEOUT_INVALID);
    assert_int_equal(ec1(st, tx_pending("o15", "a", "b", 1, 1), INT64_MAX - SEC),
                     AC_EC_TIMEOUT_INVALID);
    OK1(st, tx_pending("o15", "a", "b", 1, 1), INT64_MAX - SEC - 1);
    OK1(st, tx("o16", "a", "b", 1, AC_TF_PENDING), INT64_MAX); /* no timeout: fine */
    OK1(st, pv("o17", "o16", -1, AC_TF_POST_PENDING), INT64_MAX);
}

/* ---- two-phase transfers ------------------------------------------------------------------ */

static void pending_post_void(void **state)
{
    struct ac_state *st = *state;
    struct ac_transfer_result res;

    /* pending without timeout: held, never queued */
    res = run(st, tx("p1", "a", "b", 100, AC_TF_PENDING), NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 100);
    BAL(st, "a", 100, 0, 0, 0);
    BAL(st, "b", 0, 0, 100, 0);
    assert_true(ac_state_next_expiry(st) == INT64_MAX);

    /* full post */
    res = run(st, pv("p1-post", "p1", -1, AC_TF_POST_PENDING), NOW + 1);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 100);
    assert_true(res.created_us == NOW + 1);
    BAL(st, "a", 0, 100, 0, 0);
    BAL(st, "b", 0, 0, 0, 100);
    assert_int_equal(ec1(st, pv("p1-again", "p1", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_ALREADY_POSTED);
    assert_int_equal(ec1(st, pv("p1-again", "p1", -1, AC_TF_VOID_PENDING), NOW),
                     AC_EC_PENDING_ALREADY_POSTED);
    /* replay of the post gives the posted amount */
    res = run(st, pv("p1-post", "p1", -1, AC_TF_POST_PENDING), NOW + 9);
    assert_int_equal(res.replayed, 1);
    assert_true(res.amount == 100);
    assert_true(res.created_us == NOW + 1);

    /* partial post: the rest is released */
    OK1(st, tx("p2", "a", "b", 100, AC_TF_PENDING), NOW);
    assert_int_equal(ec1(st, pv("p2-post", "p2", 101, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_AMOUNT_EXCEEDED);
    res = run(st, pv("p2-post", "p2", 30, AC_TF_POST_PENDING), NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 30);
    BAL(st, "a", 0, 130, 0, 0);
    BAL(st, "b", 0, 0, 0, 130);

    /* post with the exact amount and explicit, matching fields */
    OK1(st, tx("p3", "a", "b", 100, AC_TF_PENDING), NOW);
    struct ac_transfer_req r = pv("p3-post", "p3", 100, AC_TF_POST_PENDING);
    strcpy(r.debit, "b");
    assert_int_equal(ec1(st, r, NOW), AC_EC_PENDING_FIELD_MISMATCH);
    r = pv("p3-post", "p3", 100, AC_TF_POST_PENDING);
    strcpy(r.credit, "a");
    assert_int_equal(ec1(st, r, NOW), AC_EC_PENDING_FIELD_MISMATCH);
    r = pv("p3-post", "p3", 100, AC_TF_POST_PENDING);
    strcpy(r.asset, "TOK");
    assert_int_equal(ec1(st, r, NOW), AC_EC_PENDING_FIELD_MISMATCH);
    strcpy(r.asset, "CNY");
    strcpy(r.debit, "a");
    strcpy(r.credit, "b");
    OK1(st, r, NOW);
    BAL(st, "a", 0, 230, 0, 0);

    /* void: releases everything; then neither post nor void */
    OK1(st, tx("p4", "a", "b", 100, AC_TF_PENDING), NOW);
    res = run(st, pv("p4-void", "p4", -1, AC_TF_VOID_PENDING), NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 100);
    BAL(st, "a", 0, 230, 0, 0);
    BAL(st, "b", 0, 0, 0, 230);
    assert_int_equal(ec1(st, pv("p4-x", "p4", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_ALREADY_VOIDED);
    assert_int_equal(ec1(st, pv("p4-x", "p4", -1, AC_TF_VOID_PENDING), NOW),
                     AC_EC_PENDING_ALREADY_VOIDED);

    /* void amount: the pending amount or < 0, nothing else */
    OK1(st, tx("p5", "a", "b", 100, AC_TF_PENDING), NOW);
    assert_int_equal(ec1(st, pv("p5-void", "p5", 50, AC_TF_VOID_PENDING), NOW),
                     AC_EC_PENDING_FIELD_MISMATCH);
    assert_int_equal(ec1(st, pv("p5-void", "p5", 150, AC_TF_VOID_PENDING), NOW),
                     AC_EC_PENDING_AMOUNT_EXCEEDED);
    res = run(st, pv("p5-void", "p5", 100, AC_TF_VOID_PENDING), NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 100);

    /* not found, not pending */
    assert_int_equal(ec1(st, pv("q1", "nope", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_NOT_FOUND);
    OK1(st, tx("plain", "a", "b", 1, 0), NOW);
    assert_int_equal(ec1(st, pv("q1", "plain", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_NOT_PENDING);
    assert_int_equal(ec1(st, tx("sticky", "u", "b", 1, AC_TF_PENDING), NOW), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(ec1(st, pv("q1", "sticky", -1, AC_TF_VOID_PENDING), NOW),
                     AC_EC_PENDING_NOT_FOUND);
    /* none of these were sticky */
    OK1(st, tx("q1", "a", "b", 1, 0), NOW);

    /* a void frees room under the debit flag */
    fund(st, "u", 100);
    OK1(st, tx("p6", "u", "b", 100, AC_TF_PENDING), NOW);
    assert_int_equal(ec1(st, tx("p6-x", "u", "b", 1, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    OK1(st, pv("p6-void", "p6", -1, AC_TF_VOID_PENDING), NOW);
    OK1(st, tx("p6-y", "u", "b", 100, 0), NOW);

    /* pending and its post in one call */
    struct ac_transfer_req both[2] = {tx("p7", "a", "b", 10, AC_TF_PENDING),
                                      pv("p7-post", "p7", 4, AC_TF_POST_PENDING)};
    struct ac_transfer_result rs[2];
    assert_int_equal(ac_state_create_transfers(st, both, 2, NOW, rs), AC_EC_OK);
    assert_int_equal(rs[0].ec, AC_EC_OK);
    assert_int_equal(rs[1].ec, AC_EC_OK);
    assert_true(rs[1].amount == 4);

    const struct ac_changes *ch = ac_state_changes(st);
    const struct ac_transfer_row *w = row_of(ch, "p2-post");
    assert_non_null(w);
    assert_string_equal(w->debit, "a"); /* resolved from the pending transfer */
    assert_string_equal(w->credit, "b");
    assert_string_equal(w->asset, "CNY");
    assert_true(w->amount == 30);
    assert_int_equal(w->flags, AC_TF_POST_PENDING);
    assert_string_equal(w->pending_id, "p2");
    assert_int_equal(w->pstate, AC_PS_NONE);
    w = row_of(ch, "p4-void");
    assert_true(w->amount == 100);
    w = row_of(ch, "p7");
    assert_int_equal(w->pstate, AC_PS_PENDING); /* as created; the post is a pending change */
    static const struct {
        const char *id;
        enum ac_pstate ps;
    } want[] = {{"p1", AC_PS_POSTED}, {"p2", AC_PS_POSTED}, {"p3", AC_PS_POSTED},
                {"p4", AC_PS_VOIDED}, {"p5", AC_PS_VOIDED}, {"p6", AC_PS_VOIDED},
                {"p7", AC_PS_POSTED}};
    assert_int_equal(ch->n_pending_changes, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < ch->n_pending_changes; i++) {
        assert_string_equal(ch->pending_changes[i].id, want[i].id);
        assert_int_equal(ch->pending_changes[i].pstate, want[i].ps);
    }
    check_invariants(st);
}

/* ---- expiry ------------------------------------------------------------------------------- */

static void expiry(void **state)
{
    struct ac_state *st = *state;
    OK1(st, tx_pending("e1", "a", "b", 10, 10), NOW);
    assert_true(ac_state_next_expiry(st) == NOW + 10 * SEC);
    OK1(st, tx_pending("e2", "a", "b", 20, 5), NOW);
    assert_true(ac_state_next_expiry(st) == NOW + 5 * SEC);
    OK1(st, tx_pending("e3", "a", "b", 40, 1), NOW);
    OK1(st, tx("e4", "a", "b", 80, AC_TF_PENDING), NOW); /* no timeout */
    BAL(st, "a", 150, 0, 0, 0);

    /* at expires_us, before ac_state_expire ran: post and void fail (sticky) */
    assert_int_equal(ec1(st, pv("e3-post", "e3", -1, AC_TF_POST_PENDING), NOW + SEC),
                     AC_EC_PENDING_EXPIRED);
    assert_int_equal(ec1(st, pv("e3-void", "e3", -1, AC_TF_VOID_PENDING), NOW + 2 * SEC),
                     AC_EC_PENDING_EXPIRED);
    assert_int_equal(ec1(st, pv("e3-post", "e3", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_TRANSFER_ID_FAILED);
    BAL(st, "a", 150, 0, 0, 0); /* still held until expired */

    assert_int_equal(ac_state_expire(st, NOW + SEC - 1), 0);
    assert_int_equal(ac_state_expire(st, NOW + SEC), 1);
    BAL(st, "a", 110, 0, 0, 0);
    BAL(st, "b", 0, 0, 110, 0);
    assert_true(ac_state_next_expiry(st) == NOW + 5 * SEC);

    /* one microsecond before its expiry a pending can be posted */
    OK1(st, pv("e2-post", "e2", 5, AC_TF_POST_PENDING), NOW + 5 * SEC - 1);
    assert_true(ac_state_next_expiry(st) == NOW + 10 * SEC); /* e2 left the queue */
    BAL(st, "a", 90, 5, 0, 0);

    /* expire: every due one, earliest first; then nothing */
    OK1(st, tx_pending("e5", "a", "b", 1, 3), NOW + 8 * SEC);
    assert_int_equal(ac_state_expire(st, NOW + 100 * SEC), 2);
    assert_int_equal(ac_state_expire(st, NOW + 100 * SEC), 0);
    assert_true(ac_state_next_expiry(st) == INT64_MAX);
    BAL(st, "a", 80, 5, 0, 0); /* e4 never expires */
    assert_int_equal(ec1(st, pv("e1-void", "e1", -1, AC_TF_VOID_PENDING), NOW),
                     AC_EC_PENDING_EXPIRED);
    OK1(st, pv("e4-void", "e4", -1, AC_TF_VOID_PENDING), NOW + 1000 * SEC);

    const struct ac_changes *ch = ac_state_changes(st);
    static const struct {
        const char *id;
        enum ac_pstate ps;
    } want[] = {{"e3", AC_PS_EXPIRED},
                {"e2", AC_PS_POSTED},
                {"e1", AC_PS_EXPIRED},
                {"e5", AC_PS_EXPIRED},
                {"e4", AC_PS_VOIDED}};
    assert_int_equal(ch->n_pending_changes, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(ch->pending_changes[i].id, want[i].id);
        assert_int_equal(ch->pending_changes[i].pstate, want[i].ps);
    }
    assert_int_equal(row_of(ch, "e3-post")->result, AC_EC_PENDING_EXPIRED);
    assert_int_equal(row_of(ch, "e3-void")->result, AC_EC_PENDING_EXPIRED);
    assert_int_equal(row_of(ch, "e1-void")->result, AC_EC_PENDING_EXPIRED);
    check_invariants(st);

    /* an expiry releases room under the debit flag */
    fund(st, "u", 10);
    OK1(st, tx_pending("e6", "u", "b", 10, 3), NOW);
    assert_int_equal(ec1(st, tx("e7", "u", "b", 10, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(ac_state_expire(st, NOW + 3 * SEC), 1);
    OK1(st, tx("e8", "u", "b", 10, 0), NOW + 3 * SEC);

    /* many expiries with equal and shuffled times come out in order */
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "h%d", i);
        OK1(st, tx_pending(id, "a", "b", 1, (uint32_t)(1 + (i * 37) % 13)), NOW);
    }
    int64_t last = 0;
    long total = 0;
    while (ac_state_next_expiry(st) != INT64_MAX) {
        int64_t t = ac_state_next_expiry(st);
        assert_true(t >= last);
        last = t;
        long k = ac_state_expire(st, t);
        assert_true(k >= 1);
        total += k;
        check_heap(st);
    }
    assert_int_equal(total, 100);
    check_invariants(st);
}

/* ---- balancing ---------------------------------------------------------------------------- */

static void balancing(void **state)
{
    struct ac_state *st = *state;
    struct ac_transfer_result res;
    fund(st, "u", 70);
    res = run(st, tx("bd1", "u", "b", 100, AC_TF_BALANCING_DEBIT), NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 70); /* clamped */
    BAL(st, "u", 0, 70, 0, 70);
    res = run(st, tx("bd1", "u", "b", 100, AC_TF_BALANCING_DEBIT), NOW + 1);
    assert_int_equal(res.replayed, 1);
    assert_true(res.amount == 70);
    assert_true(ac_state_changes(st)->transfers[1].amount == 70);
    /* nothing left: exceeds, sticky */
    assert_int_equal(ec1(st, tx("bd2", "u", "b", 100, AC_TF_BALANCING_DEBIT), NOW),
                     AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(ec1(st, tx("bd2", "a", "b", 1, 0), NOW), AC_EC_TRANSFER_ID_FAILED);
    /* below the room: the full amount */
    fund(st, "u", 50);
    res = run(st, tx("bd3", "u", "b", 20, AC_TF_BALANCING_DEBIT), NOW);
    assert_true(res.amount == 20);
    /* without the flag there is no limit */
    res = run(st, tx("bd4", "a", "b", 1000, AC_TF_BALANCING_DEBIT), NOW);
    assert_true(res.amount == 1000);
    /* pending balancing holds at most the room; held amounts count */
    res = run(st, tx("bd5", "u", "b", 1000, AC_TF_BALANCING_DEBIT | AC_TF_PENDING), NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 30);
    BAL(st, "u", 30, 90, 0, 120);
    assert_int_equal(ec1(st, tx("bd6", "u", "b", 5, AC_TF_BALANCING_DEBIT), NOW),
                     AC_EC_EXCEEDS_CREDITS);

    /* balancing credit */
    OK1(st, tx("m-debit", "m", "b", 40, 0), NOW);
    res = run(st, tx("bc1", "a", "m", 100, AC_TF_BALANCING_CREDIT), NOW);
    assert_true(res.amount == 40);
    BAL(st, "m", 0, 40, 0, 40);
    assert_int_equal(ec1(st, tx("bc2", "a", "m", 100, AC_TF_BALANCING_CREDIT), NOW),
                     AC_EC_EXCEEDS_DEBITS);
    res = run(st, tx("bc3", "a", "b", 9, AC_TF_BALANCING_CREDIT), NOW); /* b has no flag */
    assert_true(res.amount == 9);

    /* both: the smaller room wins; each side reports its own error */
    t_add(st, "u2", "CNY", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS);
    t_add(st, "m2", "CNY", AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS);
    fund(st, "u2", 30);
    OK1(st, tx("m2-debit", "m2", "b", 20, 0), NOW);
    res = run(st, tx("bb1", "u2", "m2", 100, AC_TF_BALANCING_DEBIT | AC_TF_BALANCING_CREDIT), NOW);
    assert_true(res.amount == 20);
    BAL(st, "u2", 0, 20, 0, 30);
    BAL(st, "m2", 0, 20, 0, 20);
    assert_int_equal(
        ec1(st, tx("bb2", "u2", "m2", 100, AC_TF_BALANCING_DEBIT | AC_TF_BALANCING_CREDIT), NOW),
        AC_EC_EXCEEDS_DEBITS);
    OK1(st, tx("u2-out", "u2", "b", 10, 0), NOW);
    OK1(st, tx("m2-debit2", "m2", "b", 5, 0), NOW);
    assert_int_equal(
        ec1(st, tx("bb3", "u2", "m2", 100, AC_TF_BALANCING_DEBIT | AC_TF_BALANCING_CREDIT), NOW),
        AC_EC_EXCEEDS_CREDITS);
    check_invariants(st);
}

/* ---- linked chains ------------------------------------------------------------------------ */

static void run_n(struct ac_state *st, struct ac_transfer_req *r, size_t n, int64_t now,
                  struct ac_transfer_result *res)
{
    assert_int_equal(ac_state_create_transfers(st, r, n, now, res), AC_EC_OK);
}

static void linked(void **state)
{
    struct ac_state *st = *state;
    struct ac_transfer_result res[6];
    const uint32_t L = AC_TF_LINKED;

    /* all succeed */
    struct ac_transfer_req c1[3] = {tx("l1", "a", "b", 1, L), tx("l2", "a", "b", 2, L),
                                    tx("l3", "b", "a", 4, 0)};
    run_n(st, c1, 3, NOW, res);
    for (int i = 0; i < 3; i++)
        assert_int_equal(res[i].ec, AC_EC_OK);
    BAL(st, "a", 0, 3, 0, 4);

    /* the middle one fails: everything undone, the others LINKED_EVENT_FAILED */
    struct t_snap s0, s1;
    snap_take(st, &s0);
    struct ac_transfer_req c2[3] = {tx("m1", "a", "b", 1, L), tx("m2", "a", "zz", 2, L),
                                    tx("m3", "b", "a", 4, 0)};
    run_n(st, c2, 3, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_LINKED_EVENT_FAILED);
    assert_int_equal(res[1].ec, AC_EC_ACCOUNT_UNKNOWN);
    assert_int_equal(res[2].ec, AC_EC_LINKED_EVENT_FAILED);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i].replayed, 0);
        assert_true(res[i].amount == 0);
    }
    snap_take(st, &s1);
    snap_equal(&s0, &s1);
    snap_free(&s1);

    /* the first or the last fails */
    struct ac_transfer_req c3[2] = {tx("f1", "a", "a", 1, L), tx("f2", "a", "b", 1, 0)};
    run_n(st, c3, 2, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_ACCOUNTS_SAME);
    assert_int_equal(res[1].ec, AC_EC_LINKED_EVENT_FAILED);
    struct ac_transfer_req c4[3] = {tx("g1", "a", "b", 1, L | AC_TF_PENDING),
                                    pv("g2", "g1", -1, AC_TF_POST_PENDING | L),
                                    tx("g3", "a", "b", 0, 0)};
    run_n(st, c4, 3, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_LINKED_EVENT_FAILED);
    assert_int_equal(res[1].ec, AC_EC_LINKED_EVENT_FAILED);
    assert_int_equal(res[2].ec, AC_EC_AMOUNT_ZERO);
    snap_take(st, &s1);
    snap_equal(&s0, &s1);
    snap_free(&s1);
    /* ids of failed chains are free */
    OK1(st, tx("m1", "a", "b", 1, 0), NOW);
    OK1(st, tx("m3", "a", "b", 1, 0), NOW);
    OK1(st, tx("g1", "a", "b", 1, 0), NOW);

    /* a sticky failure in a chain is recorded; the other members are not */
    struct ac_transfer_req c5[3] = {tx("s1", "a", "b", 10, L), tx("s2", "u", "b", 1000, L),
                                    tx("s3", "a", "b", 10, 0)};
    run_n(st, c5, 3, NOW + 7, res);
    assert_int_equal(res[0].ec, AC_EC_LINKED_EVENT_FAILED);
    assert_int_equal(res[1].ec, AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(res[2].ec, AC_EC_LINKED_EVENT_FAILED);
    const struct ac_changes *ch = ac_state_changes(st);
    assert_null(row_of(ch, "s1"));
    assert_null(row_of(ch, "s3"));
    assert_int_equal(row_of(ch, "s2")->result, AC_EC_EXCEEDS_CREDITS);
    assert_true(row_of(ch, "s2")->created_us == NOW + 7);
    assert_int_equal(ec1(st, tx("s2", "a", "b", 1, 0), NOW), AC_EC_TRANSFER_ID_FAILED);
    OK1(st, tx("s1", "a", "b", 1, 0), NOW);

    /* open chain: every member LINKED_CHAIN_OPEN, nothing applied */
    size_t nt = ac_state_n_transfers(st);
    struct ac_transfer_req c6[3] = {tx("ok0", "a", "b", 1, 0), tx("o1", "a", "b", 1, L),
                                    tx("o2", "a", "b", 1, L)};
    run_n(st, c6, 3, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_OK);
    assert_int_equal(res[1].ec, AC_EC_LINKED_CHAIN_OPEN);
    assert_int_equal(res[2].ec, AC_EC_LINKED_CHAIN_OPEN);
    assert_int_equal(ac_state_n_transfers(st), nt + 1);
    struct ac_transfer_req c7[1] = {tx("o3", "a", "a", 1, L)}; /* not even validated */
    run_n(st, c7, 1, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_LINKED_CHAIN_OPEN);

    /* two chains in one call: one fails, the other stands */
    snap_free(&s0);
    snap_take(st, &s0);
    struct ac_transfer_req c8[5] = {tx("k1", "a", "b", 5, L), tx("k2", "b", "a", 1, 0),
                                    tx("k3", "a", "b", 7, L), tx("k4", "a", "b", 7, L),
                                    tx("k5", "a", "t1", 7, 0)};
    run_n(st, c8, 5, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_OK);
    assert_int_equal(res[1].ec, AC_EC_OK);
    assert_int_equal(res[2].ec, AC_EC_LINKED_EVENT_FAILED);
    assert_int_equal(res[3].ec, AC_EC_LINKED_EVENT_FAILED);
    assert_int_equal(res[4].ec, AC_EC_ASSET_MISMATCH);
    const struct ac_account *a0 = NULL;
    for (size_t i = 0; i < s0.na; i++)
        if (strcmp(s0.acc[i].id, "a") == 0) a0 = &s0.acc[i];
    BAL(st, "a", 0, a0->debits_posted + 5, 0, a0->credits_posted + 1);

    /* a replay inside a chain: OK replayed, or LINKED_EVENT_FAILED when the chain fails */
    struct ac_transfer_req c9[2] = {tx("k1", "a", "b", 5, L), tx("k6", "a", "b", 1, 0)};
    run_n(st, c9, 2, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_OK);
    assert_int_equal(res[0].replayed, 1);
    assert_int_equal(res[1].ec, AC_EC_OK);
    struct ac_transfer_req c10[2] = {tx("k1", "a", "b", 5, L), tx("k7", "a", "zz", 1, 0)};
    run_n(st, c10, 2, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_LINKED_EVENT_FAILED);
    assert_int_equal(res[0].replayed, 0);
    snap_free(&s0);

    /* a failing chain restores pending states and the expiry queue */
    OK1(st, tx_pending("q1", "a", "b", 10, 50), NOW);
    int64_t ne = ac_state_next_expiry(st);
    snap_take(st, &s0);
    struct ac_transfer_req c11[4] = {pv("q1-post", "q1", 3, AC_TF_POST_PENDING | L),
                                     tx_pending("q2", "a", "b", 1, 2), tx("q3", "a", "b", 1, L),
                                     tx("q4", "u", "b", 1000, 0)};
    c11[1].flags |= L;
    run_n(st, c11, 4, NOW, res);
    assert_int_equal(res[3].ec, AC_EC_EXCEEDS_CREDITS);
    assert_true(ac_state_next_expiry(st) == ne);
    /* equal but for the recorded sticky failure q4 */
    assert_int_equal(ec1(st, tx("q4", "a", "b", 1, 0), NOW), AC_EC_TRANSFER_ID_FAILED);
    snap_take(st, &s1);
    assert_int_equal(s1.nx, s0.nx + 1);
    assert_int_equal(s1.hn, s0.hn);
    snap_free(&s0);
    snap_free(&s1);
    OK1(st, pv("q1-post", "q1", 3, AC_TF_POST_PENDING), NOW);
    check_invariants(st);
}

/* a later transfer sees what an earlier one in the same call did */
static void sees_earlier(void **state)
{
    struct ac_state *st = *state;
    struct ac_transfer_result res[4];
    struct ac_transfer_req r[4] = {tx("w1", "bank", "u", 50, 0), tx("w2", "u", "b", 50, 0),
                                   tx("w3", "u", "b", 1, 0), tx("w4", "bank", "u", 5, 0)};
    run_n(st, r, 4, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_OK);
    assert_int_equal(res[1].ec, AC_EC_OK);
    assert_int_equal(res[2].ec, AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(res[3].ec, AC_EC_OK);
    /* and inside a chain */
    struct ac_transfer_req c[2] = {tx("w5", "bank", "u", 10, AC_TF_LINKED),
                                   tx("w6", "u", "b", 15, 0)};
    run_n(st, c, 2, NOW, res);
    assert_int_equal(res[0].ec, AC_EC_OK);
    assert_int_equal(res[1].ec, AC_EC_OK);
    BAL(st, "u", 0, 65, 0, 65);
}

/* ---- batches: rollback, commit, change set ------------------------------------------------ */

static void rollback(void **state)
{
    struct ac_state *st = *state;
    /* committed history */
    fund(st, "u", 500);
    OK1(st, tx_pending("P", "a", "b", 100, 30), NOW);
    OK1(st, tx("Q", "a", "b", 100, AC_TF_PENDING), NOW);
    OK1(st, tx_pending("E", "a", "b", 7, 2), NOW);
    OK1(st, tx("X", "a", "b", 1, 0), NOW);
    assert_int_equal(ec1(st, tx("S0", "u", "b", 10000, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    ac_state_commit(st);

    struct t_snap s0, s1;
    snap_take(st, &s0);
    ac_state_begin(st);
    t_add(st, "c", "CNY", 0);
    OK1(st, tx("r1", "a", "c", 10, 0), NOW + SEC);
    OK1(st, tx("r2", "c", "u", 10, AC_TF_PENDING), NOW + SEC);
    OK1(st, pv("r3", "P", 40, AC_TF_POST_PENDING), NOW + SEC);
    OK1(st, pv("r4", "Q", -1, AC_TF_VOID_PENDING), NOW + SEC);
    OK1(st, tx_pending("r5", "u", "b", 10, 2), NOW + SEC);
    assert_int_equal(ac_state_expire(st, NOW + 2 * SEC), 1); /* E */
    assert_int_equal(ec1(st, tx("r6", "u", "b", 100000, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(ec1(st, pv("r7", "E", -1, AC_TF_POST_PENDING), NOW), AC_EC_PENDING_EXPIRED);
    assert_int_equal(ac_state_expire(st, NOW + 3 * SEC), 1); /* r5 */
    struct ac_transfer_req ch[2] = {tx("r8", "a", "b", 1, AC_TF_LINKED),
                                    tx("r9", "u", "b", 100000, 0)};
    struct ac_transfer_result res[2];
    run_n(st, ch, 2, NOW, res);
    assert_int_equal(res[1].ec, AC_EC_EXCEEDS_CREDITS);
    /* replays and burnt ids from before the batch behave as before */
    assert_int_equal(run(st, tx("X", "a", "b", 1, 0), NOW).replayed, 1);
    assert_int_equal(ec1(st, tx("S0", "u", "b", 1, 0), NOW), AC_EC_TRANSFER_ID_FAILED);
    /* the account table and transfer index grow inside the batch */
    char id[16];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "g%d", i);
        OK1(st, tx(id, "a", "b", 1, 0), NOW);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "acc%d", i);
        t_add(st, id, "CNY", 0);
    }
    check_invariants(st);

    ac_state_rollback(st);
    snap_take(st, &s1);
    snap_equal(&s0, &s1);
    snap_free(&s1);
    assert_null(ac_state_account(st, "c"));
    assert_null(ac_state_account(st, "acc0"));
    assert_int_equal(ac_state_changes(st)->n_transfers, 0);

    /* every id used in the rolled back batch is free again, sticky ones included */
    ac_state_begin(st);
    OK1(st, tx("r1", "a", "b", 10, 0), NOW);
    OK1(st, tx("r6", "a", "b", 10, 0), NOW);
    OK1(st, tx("r7", "a", "b", 10, 0), NOW);
    OK1(st, tx("r9", "a", "b", 10, 0), NOW);
    OK1(st, tx("g0", "a", "b", 10, 0), NOW);
    OK1(st, pv("r3", "P", 40, AC_TF_POST_PENDING), NOW + SEC); /* P is pending again */
    OK1(st, pv("r4", "Q", -1, AC_TF_VOID_PENDING), NOW + SEC);
    assert_int_equal(ac_state_expire(st, NOW + 2 * SEC), 1); /* E was queued again */
    ac_state_commit(st);

    /* after a commit, a rollback of an empty batch changes nothing */
    snap_free(&s0);
    snap_take(st, &s0);
    ac_state_begin(st);
    ac_state_rollback(st);
    snap_take(st, &s1);
    snap_equal(&s0, &s1);
    snap_free(&s0);
    snap_free(&s1);
}

static void change_set(void **state)
{
    struct ac_state *st = *state;
    OK1(st, tx_pending("old-p", "a", "b", 9, 100), NOW);
    OK1(st, tx("old-q", "a", "b", 9, AC_TF_PENDING), NOW);
    ac_state_commit(st);

    ac_state_begin(st);
    const struct ac_changes *ch = ac_state_changes(st);
    assert_int_equal(
        ch->n_new_accounts + ch->n_dirty_accounts + ch->n_transfers + ch->n_pending_changes, 0);
    t_add(st, "n1", "CNY", 0);
    t_add(st, "n2", "CNY", 0); /* never moves */
    OK1(st, tx("c1", "a", "n1", 10, 0), NOW);
    OK1(st, tx("c2", "a", "n1", 5, 0), NOW);
    OK1(st, tx("c3", "n1", "b", 1, 0), NOW);
    assert_int_equal(ec1(st, tx("c4", "u", "b", 1, 0), NOW), AC_EC_EXCEEDS_CREDITS);
    assert_int_equal(ec1(st, tx("c5", "a", "zz", 1, 0), NOW), AC_EC_ACCOUNT_UNKNOWN);
    struct ac_transfer_req chain[2] = {tx("c6", "a", "bank", 1, AC_TF_LINKED),
                                       tx("c7", "a", "zz", 1, 0)};
    struct ac_transfer_result res[2];
    run_n(st, chain, 2, NOW, res);
    OK1(st, tx("c8", "a", "b", 3, AC_TF_PENDING), NOW);
    OK1(st, pv("c9", "c8", 2, AC_TF_POST_PENDING), NOW);
    OK1(st, pv("c10", "old-q", -1, AC_TF_VOID_PENDING), NOW);
    assert_int_equal(ac_state_expire(st, NOW + 100 * SEC), 1);
    assert_int_equal(run(st, tx("c1", "a", "n1", 10, 0), NOW).replayed, 1);

    for (int pass = 0; pass < 2; pass++) { /* a second call gives the same set */
        ch = ac_state_changes(st);
        assert_non_null(ch);
        assert_int_equal(ch->n_new_accounts, 2);
        assert_string_equal(ch->new_accounts[0]->id, "n1");
        assert_string_equal(ch->new_accounts[1]->id, "n2");
        static const char *dirty[] = {"a", "n1", "b"};
        assert_int_equal(ch->n_dirty_accounts, 3); /* bank untouched: c6 was undone */
        for (size_t i = 0; i < 3; i++) {
            assert_string_equal(ch->dirty_accounts[i]->id, dirty[i]);
            assert_ptr_equal(ch->dirty_accounts[i], ac_state_account(st, dirty[i]));
        }
        static const char *rows[] = {"c1", "c2", "c3", "c4", "c8", "c9", "c10"};
        assert_int_equal(ch->n_transfers, 7);
        for (size_t i = 0; i < 7; i++)
            assert_string_equal(ch->transfers[i].id, rows[i]);
        assert_int_equal(ch->transfers[3].result, AC_EC_EXCEEDS_CREDITS);
        assert_int_equal(ch->transfers[4].pstate, AC_PS_PENDING);
        assert_int_equal(ch->n_pending_changes, 3);
        assert_string_equal(ch->pending_changes[0].id, "c8");
        assert_int_equal(ch->pending_changes[0].pstate, AC_PS_POSTED);
        assert_string_equal(ch->pending_changes[1].id, "old-q");
        assert_int_equal(ch->pending_changes[1].pstate, AC_PS_VOIDED);
        assert_string_equal(ch->pending_changes[2].id, "old-p");
        assert_int_equal(ch->pending_changes[2].pstate, AC_PS_EXPIRED);
    }
    const struct ac_account *n1 = ac_state_account(st, "n1");
    assert_true(n1->credits_posted == 15 && n1->debits_posted == 1);

    ac_state_commit(st);
    ch = ac_state_changes(st);
    assert_int_equal(
        ch->n_new_accounts + ch->n_dirty_accounts + ch->n_transfers + ch->n_pending_changes, 0);
}

/* ---- loading ------------------------------------------------------------------------------ */

static struct ac_transfer_row t_row(const struct ac_transfer_req *r, int64_t amount,
                                    enum ac_pstate ps, int64_t created)
{
    struct ac_transfer_row w;
    memset(&w, 0, sizeof w);
    strcpy(w.id, r->id);
    strcpy(w.debit, r->debit);
    strcpy(w.credit, r->credit);
    strcpy(w.asset, r->asset);
    w.amount = amount;
    w.flags = r->flags;
    strcpy(w.pending_id, r->pending_id);
    w.timeout_s = r->timeout_s;
    w.code = r->code;
    w.created_us = created;
    w.pstate = ps;
    w.result = AC_EC_OK;
    ac_transfer_digest(r, w.digest);
    return w;
}

static void loading(void **state)
{
    (void)state;
    struct ac_state *st = ac_state_new();
    assert_non_null(st);
    /* accounts as stored, with balances: a owes 100 pending (L-P) and 10 pending (L-Q) */
    t_load(st, "a", 0, 110, 50, 0, 0);
    t_load(st, "b", 0, 0, 0, 110, 50);
    t_load(st, "u", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, 0, 0, 0, 0);
    struct ac_account bad = t_account("a", "CNY", "", 0);
    assert_int_equal(ac_state_load_account(st, &bad), -1); /* duplicate */
    bad = t_account("bad id", "CNY", "", 0);
    assert_int_equal(ac_state_load_account(st, &bad), -1);
    bad = t_account("x", "cny", "", 0);
    assert_int_equal(ac_state_load_account(st, &bad), -1);
    bad = t_account("x", "CNY", "bad owner", 0);
    assert_int_equal(ac_state_load_account(st, &bad), -1);
    bad = t_account("x", "CNY", "", AC_AF__ALL);
    assert_int_equal(ac_state_load_account(st, &bad), -1);
    bad = t_account("x", "CNY", "", 8);
    assert_int_equal(ac_state_load_account(st, &bad), -1);
    for (int i = 0; i < 4; i++) {
        bad = t_account("x", "CNY", "", 0);
        int64_t *f[4] = {&bad.debits_pending, &bad.debits_posted, &bad.credits_pending,
                         &bad.credits_posted};
        *f[i] = -1;
        assert_int_equal(ac_state_load_account(st, &bad), -1);
    }
    assert_int_equal(ac_state_n_accounts(st), 3);

    /* transfers as stored */
    struct ac_transfer_req plain = tx("L-X", "a", "b", 50, 0);
    struct ac_transfer_row w = t_row(&plain, 50, AC_PS_NONE, NOW - 100);
    assert_int_equal(ac_state_load_transfer(st, &w), 0);
    assert_int_equal(ac_state_load_transfer(st, &w), -1); /* duplicate */
    struct ac_transfer_req preq = tx_pending("L-P", "a", "b", 100, 60);
    struct ac_transfer_row wp = t_row(&preq, 100, AC_PS_PENDING, NOW - 10 * SEC);
    assert_int_equal(ac_state_load_transfer(st, &wp), 0);
    assert_true(ac_state_next_expiry(st) == NOW + 50 * SEC);
    struct ac_transfer_req qreq = tx("L-Q", "a", "b", 10, AC_TF_PENDING);
    struct ac_transfer_row wq = t_row(&qreq, 10, AC_PS_PENDING, NOW - 10 * SEC);
    assert_int_equal(ac_state_load_transfer(st, &wq), 0); /* no timeout: not queued */
    struct ac_transfer_req dreq = tx_pending("L-D", "a", "b", 10, 1);
    struct ac_transfer_row wd = t_row(&dreq, 10, AC_PS_POSTED, NOW - 10 * SEC);
    assert_int_equal(ac_state_load_transfer(st, &wd), 0); /* posted: not queued */
    struct ac_transfer_req oreq = tx_pending("L-O", "a", "b", 10, 1);
    struct ac_transfer_row wo = t_row(&oreq, 10, AC_PS_VOIDED, NOW - 10 * SEC);
    assert_int_equal(ac_state_load_transfer(st, &wo), 0);
    struct ac_transfer_row ws;
    memset(&ws, 0, sizeof ws);
    strcpy(ws.id, "L-S");
    ws.result = AC_EC_EXCEEDS_DEBITS;
    ws.created_us = NOW - 5;
    assert_int_equal(ac_state_load_transfer(st, &ws), 0);
    assert_int_equal(ac_state_n_transfers(st), 6);
    assert_true(ac_state_next_expiry(st) == NOW + 50 * SEC);

    /* invalid rows */
    struct ac_transfer_row v;
    v = t_row(&plain, 50, AC_PS_NONE, NOW);
    strcpy(v.id, "bad id");
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    strcpy(v.id, "v1");
    v.result = AC_EC_ACCOUNT_UNKNOWN; /* not a sticky failure */
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    v = t_row(&plain, 0, AC_PS_NONE, NOW);
    strcpy(v.id, "v1");
    assert_int_equal(ac_state_load_transfer(st, &v), -1); /* amount 0 */
    v = t_row(&preq, 5, (enum ac_pstate)9, NOW);
    strcpy(v.id, "v1");
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    v = t_row(&preq, 5, AC_PS_NONE, NOW); /* PENDING flag without a state */
    strcpy(v.id, "v1");
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    v = t_row(&plain, 5, AC_PS_PENDING, NOW); /* state without the flag */
    strcpy(v.id, "v1");
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    v = t_row(&preq, 5, AC_PS_PENDING, NOW);
    strcpy(v.id, "v1");
    strcpy(v.debit, "zz");
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    strcpy(v.debit, "b"); /* same as credit */
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    strcpy(v.debit, "a");
    strcpy(v.credit, "zz");
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    v = t_row(&preq, 5, AC_PS_PENDING, NOW);
    strcpy(v.id, "v1");
    v.timeout_s = TIMEOUT_MAX_S + 1;
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    v.timeout_s = 1;
    v.created_us = INT64_MAX - 10;
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    v.created_us = INT64_MAX - SEC; /* would read as "never" */
    assert_int_equal(ac_state_load_transfer(st, &v), -1);
    assert_int_equal(ac_state_n_transfers(st), 6);

    /* operations on what was loaded */
    ac_state_begin(st);
    struct ac_transfer_result res = run(st, plain, NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_int_equal(res.replayed, 1);
    assert_true(res.amount == 50);
    assert_true(res.created_us == NOW - 100);
    assert_int_equal(ec1(st, tx("L-S", "a", "b", 1, 0), NOW), AC_EC_TRANSFER_ID_FAILED);
    assert_int_equal(ec1(st, pv("z1", "L-D", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_ALREADY_POSTED);
    assert_int_equal(ec1(st, pv("z1", "L-O", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_ALREADY_VOIDED);
    assert_int_equal(ec1(st, pv("z1", "L-X", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_NOT_PENDING);
    assert_int_equal(ec1(st, pv("z1", "L-S", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_NOT_FOUND);
    res = run(st, pv("z1", "L-P", 60, AC_TF_POST_PENDING), NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    assert_true(res.amount == 60);
    BAL(st, "a", 10, 110, 0, 0);
    BAL(st, "b", 0, 0, 10, 110);
    assert_true(ac_state_next_expiry(st) == INT64_MAX);
    OK1(st, pv("z2", "L-Q", -1, AC_TF_VOID_PENDING), NOW);
    BAL(st, "a", 0, 110, 0, 0);
    check_invariants(st);
    ac_state_commit(st);

    /* a loaded pending already past its expiry: a post fails, expire releases it */
    t_load(st, "c", 0, 5, 0, 0, 0);
    t_load(st, "d", 0, 0, 0, 5, 0);
    struct ac_transfer_req lreq = tx_pending("L-late", "c", "d", 5, 1);
    struct ac_transfer_row wl = t_row(&lreq, 5, AC_PS_PENDING, NOW - 2 * SEC);
    assert_int_equal(ac_state_load_transfer(st, &wl), 0);
    assert_true(ac_state_next_expiry(st) == NOW - SEC);
    ac_state_begin(st);
    assert_int_equal(ec1(st, pv("z3", "L-late", -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_EXPIRED);
    BAL(st, "c", 5, 0, 0, 0);
    assert_int_equal(ac_state_expire(st, NOW), 1);
    BAL(st, "c", 0, 0, 0, 0);
    BAL(st, "d", 0, 0, 0, 0);
    check_invariants(st);
    ac_state_commit(st);
    ac_state_free(st);
}

/* ---- digest ------------------------------------------------------------------------------- */

static void digest(void **state)
{
    (void)state;
    struct ac_transfer_req r = tx("t-1", "acct:a", "acct:b", 1234, AC_TF_PENDING | AC_TF_LINKED);
    r.timeout_s = 60;
    r.code = 7;
    uint8_t d0[16], d1[16];
    ac_transfer_digest(&r, d0);
    /* pinned: digests are persisted, the encoding must never change */
    uint8_t want[16];
    assert_int_equal(ac_test_unhex(DIGEST_KAT, want, sizeof want), 16);
    assert_memory_equal(d0, want, 16);
    ac_transfer_digest(&r, d1);
    assert_memory_equal(d0, d1, 16);
    /* bytes after the NUL do not matter */
    struct ac_transfer_req g = r;
    g.id[10] = 'Z';
    ac_transfer_digest(&g, d1);
    assert_memory_equal(d0, d1, 16);

    /* every field matters */
    for (int f = 0; f < 9; f++) {
        struct ac_transfer_req m = r;
        switch (f) {
        case 0:
            strcpy(m.id, "t-2");
            break;
        case 1:
            strcpy(m.debit, "acct:c");
            break;
        case 2:
            strcpy(m.credit, "acct:c");
            break;
        case 3:
            strcpy(m.asset, "TOK");
            break;
        case 4:
            m.amount = -1234;
            break;
        case 5:
            m.flags = AC_TF_PENDING;
            break;
        case 6:
            strcpy(m.pending_id, "p");
            break;
        case 7:
            m.timeout_s = 61;
            break;
        case 8:
            m.code = 8;
            break;
        }
        ac_transfer_digest(&m, d1);
        assert_memory_not_equal(d0, d1, 16);
    }
    /* length prefixes: moving a character between adjacent fields changes the digest */
    struct ac_transfer_req p = tx("ab", "c", "x", 1, 0), q = tx("a", "bc", "x", 1, 0);
    ac_transfer_digest(&p, d0);
    ac_transfer_digest(&q, d1);
    assert_memory_not_equal(d0, d1, 16);

    /* the state's digest path agrees: the digest it records for a transfer is this one */
    struct ac_state *st = ac_state_new();
    assert_non_null(st);
    t_load(st, "acct:a", 0, 0, 0, 0, 0);
    t_load(st, "acct:b", 0, 0, 0, 0, 0);
    struct ac_transfer_req one = tx("t-9", "acct:a", "acct:b", 5, 0);
    struct ac_transfer_result res = run(st, one, NOW);
    assert_int_equal(res.ec, AC_EC_OK);
    const struct ac_changes *ch = ac_state_changes(st);
    assert_non_null(ch);
    assert_int_equal(ch->n_transfers, 1);
    memcpy(d1, ch->transfers[0].digest, 16);
    ac_transfer_digest(&one, d0);
    assert_memory_equal(d0, d1, 16);
    ac_state_free(st);
}

/* ---- allocation failures ------------------------------------------------------------------ */

/* a state with a few accounts and committed history, loaded so the batch arrays are empty */
static struct ac_state *fixture(void)
{
    struct ac_state *st = ac_state_new();
    assert_non_null(st);
    t_load(st, "bank", 0, 0, 100, 0, 0);
    t_load(st, "a", 0, 44, 0, 0, 0);
    t_load(st, "b", 0, 0, 0, 44, 0);
    t_load(st, "u", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, 0, 0, 0, 100);
    struct ac_transfer_req p = tx_pending("P", "a", "b", 10, 60);
    struct ac_transfer_row w = t_row(&p, 10, AC_PS_PENDING, NOW);
    assert_int_equal(ac_state_load_transfer(st, &w), 0);
    struct ac_transfer_req q = tx_pending("Q", "a", "b", 20, 1);
    w = t_row(&q, 20, AC_PS_PENDING, NOW);
    assert_int_equal(ac_state_load_transfer(st, &w), 0);
    char id[16];
    for (int i = 0; i < 14; i++) { /* the expiry heap is full: the next push grows it */
        snprintf(id, sizeof id, "h%d", i);
        struct ac_transfer_req h = tx_pending(id, "a", "b", 1, 3600);
        w = t_row(&h, 1, AC_PS_PENDING, NOW);
        assert_int_equal(ac_state_load_transfer(st, &w), 0);
    }
    assert_int_equal(st->hn, st->hcap);
    /* one short of growing the transfer index */
    for (size_t i = ac_state_n_transfers(st); i < XFER_BUCKETS0; i++) {
        snprintf(id, sizeof id, "f%zu", i);
        struct ac_transfer_req f = tx(id, "a", "b", 1, 0);
        w = t_row(&f, 1, AC_PS_NONE, NOW);
        assert_int_equal(ac_state_load_transfer(st, &w), 0);
    }
    return st;
}

static void apply_batch(struct ac_state *st, struct ac_transfer_req *r, size_t n, enum ac_ec *ret,
                        struct ac_transfer_result *res)
{
    *ret = ac_state_create_transfers(st, r, n, NOW + 2 * SEC, res);
}

static void alloc_failures(void **state)
{
    (void)state;
    const uint32_t L = AC_TF_LINKED;
    struct ac_transfer_req r[] = {
        tx("n1", "a", "b", 5, 0),              /* grows the index */
        tx_pending("n2", "u", "b", 7, 30),     /* queued */
        pv("n3", "P", 4, AC_TF_POST_PENDING),  /* leaves the queue */
        tx("n4", "a", "b", 1, L),              /* chain undone, */
        tx("n5", "u", "b", 1000, 0),           /* sticky failure recorded */
        tx("n6", "u", "b", 1000, 0),           /* sticky single */
        pv("n7", "Q", -1, AC_TF_VOID_PENDING), /* expired: sticky */
        tx("n8", "a", "b", 1, 0),
    };
    const size_t n = sizeof r / sizeof r[0];
    struct ac_transfer_result res[sizeof r / sizeof r[0]];
    int ok_seen = 0;
    for (long k = 0; k < 200 && !ok_seen; k++) {
        struct ac_state *st = fixture();
        ac_state_begin(st);
        struct t_snap s0, s1;
        snap_take(st, &s0);
        enum ac_ec ret;
        arm_failure(k);
        apply_batch(st, r, n, &ret, res);
        int fired = fail_fired;
        arm_failure(-1);
        if (ret == AC_EC_INTERNAL) {
            assert_true(fired);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(res[i].ec, AC_EC_INTERNAL);
            snap_take(st, &s1);
            snap_equal(&s0, &s1);
            snap_free(&s1);
            /* and it works afterwards */
            apply_batch(st, r, n, &ret, res);
        }
        assert_int_equal(ret, AC_EC_OK);
        if (!fired) ok_seen = 1;
        static const enum ac_ec want[] = {AC_EC_OK,
                                          AC_EC_OK,
                                          AC_EC_OK,
                                          AC_EC_LINKED_EVENT_FAILED,
                                          AC_EC_EXCEEDS_CREDITS,
                                          AC_EC_EXCEEDS_CREDITS,
                                          AC_EC_PENDING_EXPIRED,
                                          AC_EC_OK};
        for (size_t i = 0; i < n; i++)
            assert_int_equal(res[i].ec, want[i]);
        check_invariants(st);
        t_add(st, "new", "CNY", 0);
        const struct ac_changes *ch = NULL;
        for (long j = 0; ch == NULL; j++) { /* changes() fails cleanly, then works */
            arm_failure(j);
            ch = ac_state_changes(st);
            arm_failure(-1);
        }
        assert_int_equal(ch->n_transfers, 7);
        assert_int_equal(ch->n_new_accounts, 1);
        assert_int_equal(ch->n_pending_changes, 1);
        assert_int_equal(ch->n_dirty_accounts, 3);
        ac_state_rollback(st);
        snap_take(st, &s1);
        snap_equal(&s0, &s1);
        snap_free(&s0);
        snap_free(&s1);
        ac_state_free(st);
    }
    assert_true(ok_seen);

    /* expire: fails half-way, undoes what it did */
    ok_seen = 0;
    for (long k = 0; k < 50 && !ok_seen; k++) {
        struct ac_state *st = ac_state_new();
        assert_non_null(st);
        t_load(st, "a", 0, 200, 0, 0, 0);
        t_load(st, "b", 0, 0, 0, 200, 0);
        char id[16];
        for (int i = 0; i < 20; i++) {
            snprintf(id, sizeof id, "x%d", i);
            struct ac_transfer_req p = tx_pending(id, "a", "b", 10, (uint32_t)(1 + i));
            struct ac_transfer_row w = t_row(&p, 10, AC_PS_PENDING, NOW);
            assert_int_equal(ac_state_load_transfer(st, &w), 0);
        }
        ac_state_begin(st);
        struct t_snap s0, s1;
        snap_take(st, &s0);
        arm_failure(k);
        long got = ac_state_expire(st, NOW + 100 * SEC);
        int fired = fail_fired;
        arm_failure(-1);
        if (got < 0) {
            snap_take(st, &s1);
            snap_equal(&s0, &s1);
            snap_free(&s1);
            got = ac_state_expire(st, NOW + 100 * SEC);
        }
        if (!fired) ok_seen = 1;
        assert_int_equal(got, 20);
        BAL(st, "a", 0, 0, 0, 0);
        assert_int_equal(ac_state_changes(st)->n_pending_changes, 20);
        snap_free(&s0);
        ac_state_free(st);
    }
    assert_true(ok_seen);

    /* create_account */
    ok_seen = 0;
    for (long k = 0; k < 10 && !ok_seen; k++) {
        struct ac_state *st = ac_state_new();
        assert_non_null(st);
        struct ac_account a = t_account("x", "CNY", "", 0);
        int rep = -1;
        arm_failure(k);
        enum ac_ec got = ac_state_create_account(st, &a, &rep);
        ok_seen = !fail_fired;
        arm_failure(-1);
        if (got != AC_EC_OK) {
            assert_int_equal(got, AC_EC_INTERNAL);
            assert_int_equal(ac_state_n_accounts(st), 0);
            assert_int_equal(ac_state_changes(st)->n_new_accounts, 0);
        } else {
            assert_int_equal(rep, 0);
            assert_non_null(ac_state_account(st, "x"));
        }
        ac_state_free(st);
    }
    assert_true(ok_seen);

    /* ac_state_new */
    struct ac_state *st = NULL;
    for (long k = 0; st == NULL; k++) {
        assert_true(k < 10);
        arm_failure(k);
        st = ac_state_new();
        arm_failure(-1);
    }
    /* loading: -1 and nothing changes */
    struct ac_account a = t_account("x", "CNY", "", 0);
    arm_failure(0);
    assert_int_equal(ac_state_load_account(st, &a), -1);
    assert_int_equal(ac_state_n_accounts(st), 0);
    assert_int_equal(ac_state_load_account(st, &a), 0);
    t_load(st, "y", 0, 0, 0, 0, 0);
    struct ac_transfer_req p = tx_pending("P", "x", "y", 10, 60);
    struct ac_transfer_row w = t_row(&p, 10, AC_PS_PENDING, NOW);
    for (long k = 0; k < 2; k++) { /* heap, then record */
        arm_failure(k);
        assert_int_equal(ac_state_load_transfer(st, &w), -1);
        arm_failure(-1);
        assert_int_equal(ac_state_n_transfers(st), 0);
        assert_true(ac_state_next_expiry(st) == INT64_MAX);
    }
    assert_int_equal(ac_state_load_transfer(st, &w), 0);
    assert_true(ac_state_next_expiry(st) == NOW + 60 * SEC);
    ac_state_free(st);

    /* a failed bucket-array growth is harmless: the chains just get longer */
    st = fixture();
    ac_state_begin(st);
    /* a failing transfer reserves the batch arrays without inserting anything */
    assert_int_equal(ec1(st, tx("g0", "a", "zz", 1, 0), NOW), AC_EC_ACCOUNT_UNKNOWN);
    size_t mask = st->xmask;
    arm_failure(1); /* the record, then the growth */
    OK1(st, tx("g0", "a", "b", 1, 0), NOW);
    assert_true(fail_fired);
    arm_failure(-1);
    assert_int_equal(st->xmask, mask);
    OK1(st, tx("g1", "a", "b", 1, 0), NOW);
    assert_true(st->xmask > mask);
    assert_int_equal(run(st, tx("g0", "a", "b", 1, 0), NOW).replayed, 1);
    assert_int_equal(run(st, tx("f100", "a", "b", 1, 0), NOW).replayed, 1);
    /* the same for the account table */
    char id[16];
    for (int i = 0; ac_state_n_accounts(st) <= st->amask; i++) {
        snprintf(id, sizeof id, "acc%d", i);
        t_add(st, id, "CNY", 0);
    }
    mask = st->amask;
    arm_failure(1); /* the account, then the growth */
    t_add(st, "acc-x", "CNY", 0);
    assert_true(fail_fired);
    arm_failure(-1);
    assert_int_equal(st->amask, mask);
    t_add(st, "acc-y", "CNY", 0);
    assert_true(st->amask > mask);
    assert_non_null(ac_state_account(st, "acc-x"));
    assert_non_null(ac_state_account(st, "acc0"));
    ac_state_rollback(st);
    assert_null(ac_state_account(st, "acc-x"));
    ac_state_free(st);
    ac_state_free(NULL);
}

/* the transfer index doubles incrementally; lookups, inserts and undo work mid-move */
static void index_rehash(void **state)
{
    (void)state;
    struct ac_state *st = ac_state_new();
    assert_non_null(st);
    t_load(st, "a", 0, 0, 0, 0, 0);
    t_load(st, "b", 0, 0, 0, 0, 0);
    char id[16];
    int next = 0;
    ac_state_begin(st);
    while (st->xold == NULL) {
        snprintf(id, sizeof id, "i%d", next++);
        OK1(st, tx(id, "a", "b", 1, 0), NOW);
    }
    assert_int_equal(next, (int)XFER_BUCKETS0 + 1);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "i%d", next++);
        OK1(st, tx_pending(id, "a", "b", 1, (uint32_t)(1 + i)), NOW);
    }
    ac_state_commit(st);
    assert_non_null(st->xold);
    assert_true(st->xpos > 0 && st->xpos <= st->xoldmask);

    struct t_snap s0, s1;
    snap_take(st, &s0);
    ac_state_begin(st);
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "j%d", i);
        OK1(st, tx(id, "a", "b", 1, 0), NOW);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "i%d", (int)XFER_BUCKETS0 + 1 + i);
        char pid[24];
        snprintf(pid, sizeof pid, "post-%s", id);
        OK1(st, pv(pid, id, -1, AC_TF_POST_PENDING), NOW);
    }
    assert_non_null(st->xold); /* still moving */
    check_invariants(st);
    ac_state_rollback(st);
    snap_take(st, &s1);
    snap_equal(&s0, &s1);
    snap_free(&s0);
    snap_free(&s1);

    /* every id is found; the move finishes long before the next doubling */
    ac_state_begin(st);
    for (int i = 0; i < next - 5; i++) {
        snprintf(id, sizeof id, "i%d", i);
        assert_int_equal(run(st, tx(id, "a", "b", 1, 0), NOW).replayed, 1);
    }
    int more = 0;
    while (st->xold != NULL) {
        snprintf(id, sizeof id, "k%d", more++);
        OK1(st, tx(id, "a", "b", 1, 0), NOW);
    }
    assert_true(more <= (int)XFER_BUCKETS0 / REHASH_STEP);
    assert_int_equal(ac_state_expire(st, NOW + 10 * SEC), 5);
    check_invariants(st);
    ac_state_commit(st);
    ac_state_free(st);
}

/* ---- hash collisions ---------------------------------------------------------------------- */

struct hid {
    uint32_t h;
    uint32_t i;
};

static int cmp_hid(const void *a, const void *b)
{
    const struct hid *p = a, *q = b;
    return p->h < q->h ? -1 : p->h > q->h;
}

/* two ids with the same 32-bit hash live side by side in one chain */
static void hash_collision(void **state)
{
    (void)state;
    struct ac_state *st = ac_state_new();
    assert_non_null(st);
    const uint32_t n = 400000; /* P(no collision in 2^32) = exp(-n^2 / 2^33) < 1e-8 */
    struct hid *v = malloc(n * sizeof *v);
    assert_non_null(v);
    char id[16];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "c%u", i);
        v[i] = (struct hid){hash_id(st, id), i};
    }
    qsort(v, n, sizeof *v, cmp_hid);
    uint32_t k = 1;
    while (k < n && v[k].h != v[k - 1].h)
        k++;
    assert_true(k < n);
    char id1[16], id2[16];
    snprintf(id1, sizeof id1, "c%u", v[k - 1].i);
    snprintf(id2, sizeof id2, "c%u", v[k].i);
    free(v);
    assert_true(hash_id(st, id1) == hash_id(st, id2));

    ac_state_begin(st);
    t_add(st, id1, "CNY", 0);
    t_add(st, id2, "CNY", AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS);
    assert_int_equal(ac_state_account(st, id1)->flags, 0);
    assert_int_equal(ac_state_account(st, id2)->flags, AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS);
    OK1(st, tx(id1, id1, id2, 5, AC_TF_PENDING), NOW);
    OK1(st, tx(id2, id1, id2, 7, 0), NOW);
    assert_int_equal(run(st, tx(id1, id1, id2, 5, AC_TF_PENDING), NOW).replayed, 1);
    assert_int_equal(run(st, tx(id2, id1, id2, 7, 0), NOW).replayed, 1);
    OK1(st, pv("post", id1, -1, AC_TF_POST_PENDING), NOW);
    assert_int_equal(ec1(st, pv("post2", id2, -1, AC_TF_POST_PENDING), NOW),
                     AC_EC_PENDING_NOT_PENDING);
    check_invariants(st);
    ac_state_commit(st);
    ac_state_free(st);
}

/* ---- randomized property test ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned rnd(unsigned n)
{
    return (unsigned)(rng() % n);
}

#define MAXACC 32

struct pool {
    const char *asset;
    char ids[MAXACC][16];
    int n;
};

static void property(void **state)
{
    (void)state;
    const char *seed_env = getenv("AC_TEST_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 20240611;
    rng_state = seed ? seed : 1;
    print_message("property seed %llu\n", (unsigned long long)seed);

    for (int round = 0; round < 4; round++) {
        struct ac_state *st = ac_state_new();
        assert_non_null(st);
        struct pool cny = {"CNY", {"bank", "hot", "u0", "u1", "u2", "u3", "cm"}, 7};
        struct pool tok = {"TOK", {"tbank", "tu0", "tu1"}, 3};
        ac_state_begin(st);
        for (int i = 0; i < cny.n; i++) {
            uint32_t fl = cny.ids[i][0] == 'u'            ? AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS
                          : strcmp(cny.ids[i], "cm") == 0 ? AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS
                                                          : 0;
            t_add(st, cny.ids[i], "CNY", fl);
        }
        for (int i = 0; i < tok.n; i++)
            t_add(st, tok.ids[i], "TOK", i ? AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS : 0);
        ac_state_commit(st);

        char pend_ids[256][16];
        int npend = 0;
        struct ac_transfer_req hist[64];
        int nhist = 0;
        int seq = 0, dyn = 0;
        int64_t now = NOW;
        for (int batch = 0; batch < 250; batch++) {
            ac_state_begin(st);
            struct t_snap s0;
            snap_take(st, &s0);
            size_t xn0 = ac_state_n_transfers(st);
            int cny_n0 = cny.n;
            if (rnd(10) == 0 && cny.n < MAXACC) {
                snprintf(cny.ids[cny.n], sizeof cny.ids[0], "d%d", dyn++);
                t_add(st, cny.ids[cny.n++], "CNY", 0);
            }
            int calls = 1 + (int)rnd(3);
            for (int c = 0; c < calls; c++) {
                now += (int64_t)rnd(1500) * 1000;
                if (rnd(4) == 0) {
                    long k = ac_state_expire(st, now);
                    assert_true(k >= 0);
                }
                struct ac_transfer_req reqs[8];
                size_t n = 1 + rnd(8);
                for (size_t j = 0; j < n; j++) {
                    struct ac_transfer_req *r = &reqs[j];
                    unsigned pick = rnd(100);
                    if (pick < 8 && nhist > 0) {
                        *r = hist[rnd((unsigned)nhist)];
                        if (rnd(3) == 0) r->amount += 1;
                    } else if (pick < 30 && npend > 0) {
                        int post = rnd(2) == 0;
                        char id[16];
                        snprintf(id, sizeof id, "x%d", seq++);
                        unsigned a = rnd(10);
                        *r = pv(id, pend_ids[rnd((unsigned)npend)],
                                a < 4    ? -1
                                : a == 9 ? 0
                                         : (int64_t)(1 + rnd(80)),
                                post ? AC_TF_POST_PENDING : AC_TF_VOID_PENDING);
                        if (rnd(5) == 0) strcpy(r->debit, cny.ids[rnd((unsigned)cny.n)]);
                    } else {
                        struct pool *pl = rnd(6) == 0 ? &tok : &cny;
                        char id[16];
                        snprintf(id, sizeof id, "x%d", seq++);
                        const char *dr = rnd(3) == 0 ? pl->ids[0] : pl->ids[rnd((unsigned)pl->n)];
                        const char *cr =
                            rnd(3) == 0 && pl == &cny ? "hot" : pl->ids[rnd((unsigned)pl->n)];
                        uint32_t fl = 0;
                        unsigned kind = rnd(20);
                        if (kind < 5) fl |= AC_TF_PENDING;
                        if (kind == 5 || kind == 6) fl |= AC_TF_BALANCING_DEBIT;
                        if (kind == 7) fl |= AC_TF_BALANCING_CREDIT;
                        *r = tx(id, dr, cr, (int64_t)(1 + rnd(60)), fl);
                        strcpy(r->asset, rnd(40) == 0 ? "TOK" : pl->asset);
                        if (fl & AC_TF_PENDING) {
                            r->timeout_s = rnd(4);
                            if (npend < 256) strcpy(pend_ids[npend++], id);
                        }
                    }
                    if (rnd(4) == 0)
                        r->flags |= AC_TF_LINKED;
                    else
                        r->flags &= ~AC_TF_LINKED;
                    if (nhist < 64)
                        hist[nhist++] = *r;
                    else
                        hist[rnd(64)] = *r;
                }
                struct ac_transfer_result res[8];
                struct t_snap pre;
                memset(&pre, 0, sizeof pre);
                int inject = rnd(10) == 0;
                if (inject) {
                    snap_take(st, &pre);
                    arm_failure((long)rnd(6));
                }
                enum ac_ec ret = ac_state_create_transfers(st, reqs, n, now, res);
                arm_failure(-1);
                if (inject) {
                    if (ret == AC_EC_INTERNAL) {
                        struct t_snap post;
                        snap_take(st, &post);
                        snap_equal(&pre, &post);
                        snap_free(&post);
                        ret = ac_state_create_transfers(st, reqs, n, now, res);
                    }
                    snap_free(&pre);
                }
                assert_int_equal(ret, AC_EC_OK);
                for (size_t j = 0; j < n; j++) {
                    if (res[j].ec == AC_EC_OK) {
                        assert_true(res[j].amount > 0);
                    } else {
                        assert_true(res[j].amount == 0);
                        assert_int_equal(res[j].replayed, 0);
                    }
                }
                check_invariants(st);
            }

            const struct ac_changes *ch = ac_state_changes(st);
            assert_non_null(ch);
            assert_int_equal(ch->n_transfers, ac_state_n_transfers(st) - xn0);
            for (size_t i = 0; i < ch->n_transfers; i++) {
                const struct ac_transfer_row *w = &ch->transfers[i];
                const struct xfer *x = xfer_find(st, w->id, hash_id(st, w->id));
                assert_non_null(x);
                assert_memory_equal(x->digest, w->digest, 16);
                assert_int_equal(x->ec, w->result);
                assert_true(w->result == AC_EC_OK || is_sticky(w->result));
            }
            for (size_t i = 0; i < ch->n_dirty_accounts; i++)
                for (size_t j = 0; j < i; j++)
                    assert_ptr_not_equal(ch->dirty_accounts[i], ch->dirty_accounts[j]);
            for (size_t i = 0; i < ch->n_pending_changes; i++) {
                const struct ac_pending_change *pc = &ch->pending_changes[i];
                assert_true(pc->pstate == AC_PS_POSTED || pc->pstate == AC_PS_VOIDED ||
                            pc->pstate == AC_PS_EXPIRED);
                const struct xfer *x = xfer_find(st, pc->id, hash_id(st, pc->id));
                assert_int_equal(x->pstate, pc->pstate);
                for (size_t j = 0; j < i; j++)
                    assert_string_not_equal(ch->pending_changes[j].id, pc->id);
            }
            assert_int_equal(ch->n_new_accounts, (size_t)(cny.n - cny_n0));

            if (rnd(3) == 0) {
                ac_state_rollback(st);
                struct t_snap s1;
                snap_take(st, &s1);
                snap_equal(&s0, &s1);
                snap_free(&s1);
                cny.n = cny_n0;
            } else {
                ac_state_commit(st);
            }
            snap_free(&s0);
            check_invariants(st);
        }
        ac_state_free(st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(account_table_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(transfer_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(transfer_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(debit_flag_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(credit_flag_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_post_void, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(balancing, setup, teardown),
        cmocka_unit_test_setup_teardown(linked, setup, teardown),
        cmocka_unit_test_setup_teardown(sees_earlier, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(change_set, setup, teardown),
        cmocka_unit_test(loading),
        cmocka_unit_test(digest),
        cmocka_unit_test(alloc_failures),
        cmocka_unit_test(index_rehash),
        cmocka_unit_test(hash_collision),
        cmocka_unit_test(property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
