/* Merkle tree with every complete subtree kept (see mtree.h). The recursions follow RFC 9162
 * §2.1.3.1 (PATH) and §2.1.4.1 (PROOF/SUBPROOF) literally; their left subtrees are always
 * complete and aligned, so they are table look-ups, and only the rightmost, incomplete subtrees
 * are hashed (O(log n) each). */
#include "protocol/mtree.h"

#include <stdlib.h>
#include <string.h>

void ac_mtree_init(struct ac_mtree *t)
{
    memset(t, 0, sizeof *t);
}

void ac_mtree_free(struct ac_mtree *t)
{
    for (int k = 0; k < 64; k++)
        free(t->lv[k]);
    memset(t, 0, sizeof *t);
}

static int reserve(struct ac_mtree *t, int k)
{
    if (t->len[k] < t->cap[k]) return 0;
    size_t cap = t->cap[k] ? t->cap[k] * 2 : 64;
    void *p = realloc(t->lv[k], cap * AC_MERKLE_HASH_LEN);
    if (p == NULL) return -1;
    t->lv[k] = p;
    t->cap[k] = cap;
    return 0;
}

int ac_mtree_append(struct ac_mtree *t, const uint8_t leaf[AC_MERKLE_HASH_LEN])
{
    if (t->n == UINT64_MAX) return -1;
    /* the levels this append completes a subtree of: one per trailing 1 bit of n, plus level 0 */
    int levels = 1;
    for (uint64_t v = t->n; v & 1; v >>= 1)
        levels++;
    uint8_t node[64][AC_MERKLE_HASH_LEN];
    memcpy(node[0], leaf, AC_MERKLE_HASH_LEN);
    for (int k = 1; k < levels; k++)
        if (ac_merkle_node_hash(t->lv[k - 1][t->len[k - 1] - 1], node[k - 1], node[k]) != 0)
            return -1;
    for (int k = 0; k < levels; k++)
        if (reserve(t, k) != 0) return -1;
    for (int k = 0; k < levels; k++)
        memcpy(t->lv[k][t->len[k]++], node[k], AC_MERKLE_HASH_LEN);
    t->n++;
    return 0;
}

static uint64_t split(uint64_t n) /* largest power of two < n, n >= 2 */
{
    uint64_t k = 1;
    while (k < n - k)
        k <<= 1;
    return k;
}

/* MTH of leaves [a, b), a < b <= t->n. */
static int mth(const struct ac_mtree *t, uint64_t a, uint64_t b, uint8_t out[AC_MERKLE_HASH_LEN])
{
    uint64_t n = b - a;
    if ((n & (n - 1)) == 0 && a % n == 0) {
        int k = 0;
        while ((1ULL << k) < n)
            k++;
        memcpy(out, t->lv[k][a >> k], AC_MERKLE_HASH_LEN);
        return 0;
    }
    uint64_t k = split(n);
    uint8_t l[AC_MERKLE_HASH_LEN], r[AC_MERKLE_HASH_LEN];
    if (mth(t, a, a + k, l) != 0 || mth(t, a + k, b, r) != 0) return -1;
    return ac_merkle_node_hash(l, r, out);
}

int ac_mtree_root(const struct ac_mtree *t, uint64_t size, uint8_t out[AC_MERKLE_HASH_LEN])
{
    if (size > t->n) return -1;
    if (size == 0) {
        ac_merkle_empty_root(out);
        return 0;
    }
    return mth(t, 0, size, out);
}

struct proof {
    uint8_t (*h)[AC_MERKLE_HASH_LEN];
    size_t n;
};

static int push(const struct ac_mtree *t, struct proof *p, uint64_t a, uint64_t b)
{
    if (p->n == AC_MERKLE_MAX_PROOF) return -1;
    return mth(t, a, b, p->h[p->n++]);
}

static int path(const struct ac_mtree *t, struct proof *p, uint64_t m, uint64_t a, uint64_t b)
{
    if (b - a == 1) return 0;
    uint64_t k = split(b - a);
    if (m < a + k) return path(t, p, m, a, a + k) == 0 ? push(t, p, a + k, b) : -1;
    return path(t, p, m, a + k, b) == 0 ? push(t, p, a, a + k) : -1;
}

int ac_mtree_inclusion(const struct ac_mtree *t, uint64_t index, uint64_t size,
                       uint8_t proof[AC_MERKLE_MAX_PROOF][AC_MERKLE_HASH_LEN], size_t *n)
{
    if (index >= size || size > t->n) return -1;
    struct proof p = {proof, 0};
    if (path(t, &p, index, 0, size) != 0) return -1;
    *n = p.n;
    return 0;
}

/* SUBPROOF(m, D[a:b], flag), m counted from a. */
static int subproof(const struct ac_mtree *t, struct proof *p, uint64_t m, uint64_t a, uint64_t b,
                    int flag)
{
    uint64_t n = b - a;
    if (m == n) return flag ? 0 : push(t, p, a, b);
    uint64_t k = split(n);
    if (m <= k) return subproof(t, p, m, a, a + k, flag) == 0 ? push(t, p, a + k, b) : -1;
    return subproof(t, p, m - k, a + k, b, 0) == 0 ? push(t, p, a, a + k) : -1;
}

int ac_mtree_consistency(const struct ac_mtree *t, uint64_t from, uint64_t to,
                         uint8_t proof[AC_MERKLE_MAX_PROOF][AC_MERKLE_HASH_LEN], size_t *n)
{
    if (from == 0 || from > to || to > t->n) return -1;
    struct proof p = {proof, 0};
    if (from < to && subproof(t, &p, from, 0, to, 1) != 0) return -1;
    *n = p.n;
    return 0;
}
