/* RFC 9162 Merkle tree hashing, proofs and the incremental frontier. See merkle.h. */
#include "protocol/merkle.h"

#include <string.h>

#include "protocol/sha256.h"

/* out = H(0x01 || l || r); out may alias l or r (both are copied first). */
static void node(const uint8_t *l, const uint8_t *r, uint8_t *out)
{
    uint8_t buf[1 + 2 * AC_MERKLE_HASH_LEN];
    buf[0] = 0x01;
    memcpy(buf + 1, l, AC_MERKLE_HASH_LEN);
    memcpy(buf + 1 + AC_MERKLE_HASH_LEN, r, AC_MERKLE_HASH_LEN);
    ac_sha256(buf, sizeof buf, out);
}

static int hash_eq(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, AC_MERKLE_HASH_LEN) == 0;
}

static const uint8_t empty_root[AC_MERKLE_HASH_LEN] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

void ac_merkle_empty_root(uint8_t out[AC_MERKLE_HASH_LEN])
{
    memcpy(out, empty_root, AC_MERKLE_HASH_LEN);
}

int ac_merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[AC_MERKLE_HASH_LEN])
{
    static const uint8_t prefix = 0x00;
    const struct ac_sha256_part parts[] = {{&prefix, 1}, {data, len}};
    ac_sha256v(parts, 2, out);
    return 0;
}

int ac_merkle_node_hash(const uint8_t left[AC_MERKLE_HASH_LEN],
                        const uint8_t right[AC_MERKLE_HASH_LEN], uint8_t out[AC_MERKLE_HASH_LEN])
{
    node(left, right, out);
    return 0;
}

/* ---- frontier ------------------------------------------------------------------------------ */

void ac_merkle_frontier_init(struct ac_merkle_frontier *f)
{
    memset(f, 0, sizeof *f);
}

int ac_merkle_frontier_append(struct ac_merkle_frontier *f,
                              const uint8_t leaf_hash[AC_MERKLE_HASH_LEN])
{
    if (f->size == UINT64_MAX) return -1;
    uint8_t carry[AC_MERKLE_HASH_LEN];
    memcpy(carry, leaf_hash, AC_MERKLE_HASH_LEN);
    unsigned i = 0;
    /* size < UINT64_MAX, so some bit below 64 is clear and i stays < 64 */
    for (; (f->size >> i) & 1; i++)
        node(f->node[i], carry, carry);
    memcpy(f->node[i], carry, AC_MERKLE_HASH_LEN);
    f->size++;
    return 0;
}

int ac_merkle_frontier_root(const struct ac_merkle_frontier *f, uint8_t out[AC_MERKLE_HASH_LEN])
{
    if (f->size == 0) {
        ac_merkle_empty_root(out);
        return 0;
    }
    unsigned i = 0;
    while (!((f->size >> i) & 1))
        i++;
    uint8_t r[AC_MERKLE_HASH_LEN];
    memcpy(r, f->node[i], AC_MERKLE_HASH_LEN);
    for (i++; i < 64; i++)
        if ((f->size >> i) & 1) node(f->node[i], r, r);
    memcpy(out, r, AC_MERKLE_HASH_LEN);
    return 0;
}

/* ---- tree hash and proofs over an array ---------------------------------------------------- */

/* MTH(leaves[0..n)): the frontier of those leaves, folded. */
static int mth(const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n, uint8_t *out)
{
    struct ac_merkle_frontier f;
    ac_merkle_frontier_init(&f);
    for (size_t i = 0; i < n; i++)
        if (ac_merkle_frontier_append(&f, leaves[i]) != 0) return -1;
    return ac_merkle_frontier_root(&f, out);
}

/* The largest power of two strictly less than n; n >= 2. */
static size_t split_point(size_t n)
{
    size_t k = 1;
    while (k < n - k)
        k <<= 1;
    return k;
}

struct proof_out {
    uint8_t (*h)[AC_MERKLE_HASH_LEN];
    size_t cap, len;
};

/* Append MTH(leaves[0..n)) to the proof. */
static int push_mth(struct proof_out *p, const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n)
{
    if (p->len >= p->cap) return -1;
    if (mth(leaves, n, p->h[p->len]) != 0) return -1;
    p->len++;
    return 0;
}

/* PATH(m, D[n]), RFC 9162 §2.1.3.1; 0 <= m < n. Recursion depth <= 64. */
static int path(struct proof_out *p, const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n,
                size_t m)
{
    if (n <= 1) return 0;
    size_t k = split_point(n);
    if (m < k) {
        if (path(p, leaves, k, m) != 0) return -1;
        return push_mth(p, leaves + k, n - k);
    }
    if (path(p, leaves + k, n - k, m - k) != 0) return -1;
    return push_mth(p, leaves, k);
}

/* SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1; 0 < m <= n. */
static int subproof(struct proof_out *p, const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n,
                    size_t m, int b)
{
    if (m == n) return b ? 0 : push_mth(p, leaves, n);
    size_t k = split_point(n);
    if (m <= k) {
        if (subproof(p, leaves, k, m, b) != 0) return -1;
        return push_mth(p, leaves + k, n - k);
    }
    if (subproof(p, leaves + k, n - k, m - k, 0) != 0) return -1;
    return push_mth(p, leaves, k);
}

int ac_merkle_root(const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n,
                   uint8_t out[AC_MERKLE_HASH_LEN])
{
    if (n == 0) {
        ac_merkle_empty_root(out);
        return 0;
    }
    return mth(leaves, n, out);
}

int ac_merkle_inclusion_proof(const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n, size_t index,
                              uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t cap, size_t *proof_len)
{
    if (index >= n) return -1;
    struct proof_out p = {proof, cap, 0};
    int rc = path(&p, leaves, n, index);
    if (rc == 0) *proof_len = p.len;
    return rc;
}

int ac_merkle_consistency_proof(const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t m, size_t n,
                                uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t cap, size_t *proof_len)
{
    if (m == 0 || m > n) return -1;
    if (m == n) {
        *proof_len = 0;
        return 0;
    }
    struct proof_out p = {proof, cap, 0};
    int rc = subproof(&p, leaves, n, m, 1);
    if (rc == 0) *proof_len = p.len;
    return rc;
}

/* ---- verification (RFC 9162 §2.1.3.2 and §2.1.4.2, step by step) --------------------------- */

int ac_merkle_verify_inclusion(uint64_t index, uint64_t size,
                               const uint8_t leaf_hash[AC_MERKLE_HASH_LEN],
                               const uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t proof_len,
                               const uint8_t root[AC_MERKLE_HASH_LEN])
{
    /* 1. */
    if (index >= size) return 0;
    /* a valid path is never longer than the tree is deep; cheap rejection before hashing */
    if (proof_len > 64) return 0;
    /* 2., 3. */
    uint64_t fn = index, sn = size - 1;
    uint8_t r[AC_MERKLE_HASH_LEN];
    memcpy(r, leaf_hash, AC_MERKLE_HASH_LEN);
    /* 4. */
    for (size_t i = 0; i < proof_len; i++) {
        if (sn == 0) return 0; /* 4a: the proof is longer than the path */
        if ((fn & 1) || fn == sn) {
            node(proof[i], r, r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            node(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* 5. */
    return sn == 0 && hash_eq(r, root) ? 1 : 0;
}

int ac_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                 const uint8_t root1[AC_MERKLE_HASH_LEN],
                                 const uint8_t root2[AC_MERKLE_HASH_LEN],
                                 const uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t proof_len)
{
    if (size1 > size2) return 0;
    if (size1 == size2)
        return proof_len == 0 && hash_eq(root1, root2) && (size1 != 0 || hash_eq(root1, empty_root))
                   ? 1
                   : 0;
    if (size1 == 0) return 0; /* nothing to be consistent with; RFC requires 0 < first */
    /* 1. */
    if (proof_len == 0 || proof_len > AC_MERKLE_MAX_PROOF) return 0;
    /* 2.: the path starts with first_hash when first is a power of two, else with proof[0] */
    const uint8_t *seed;
    size_t i;
    if ((size1 & (size1 - 1)) == 0) {
        seed = root1;
        i = 0;
    } else {
        seed = proof[0];
        i = 1;
    }
    /* 3., 4. */
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    /* 5. */
    uint8_t fr[AC_MERKLE_HASH_LEN], sr[AC_MERKLE_HASH_LEN];
    memcpy(fr, seed, AC_MERKLE_HASH_LEN);
    memcpy(sr, seed, AC_MERKLE_HASH_LEN);
    /* 6. */
    for (; i < proof_len; i++) {
        if (sn == 0) return 0; /* 6a */
        if ((fn & 1) || fn == sn) {
            node(proof[i], fr, fr);
            node(proof[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            node(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* 7. */
    return hash_eq(fr, root1) && hash_eq(sr, root2) && sn == 0 ? 1 : 0;
}
