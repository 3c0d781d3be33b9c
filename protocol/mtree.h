/* protocol/mtree.h -- an RFC 9162 Merkle tree that keeps the hash of every complete subtree
 * (every level), so that any root, inclusion proof or consistency proof over a prefix of the
 * leaves costs O(log^2 n) hashes instead of the O(n) of merkle.h's array functions. Memory: about
 * two hashes (64 bytes) per leaf. The proofs are exactly RFC 9162's (merkle.h verifies them).
 *
 * Pure: no I/O, no locks. Appends and reads of one tree must not run at the same time (the
 * caller locks; ledger/evread.c does). */
#ifndef AC_MTREE_H
#define AC_MTREE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/merkle.h"

struct ac_mtree {
    uint64_t n;                            /* leaves */
    uint8_t (*lv[64])[AC_MERKLE_HASH_LEN]; /* lv[k][i]: subtree of leaves [i*2^k, (i+1)*2^k) */
    size_t len[64], cap[64];
};

/* Start empty. Never fails. */
void ac_mtree_init(struct ac_mtree *t);
/* Append a leaf hash (at index t->n). Returns 0, or -1 on OOM or hashing failure (t unchanged). */
int ac_mtree_append(struct ac_mtree *t, const uint8_t leaf[AC_MERKLE_HASH_LEN]);
/* Root of the first size leaves (the empty root for 0). Returns 0, or -1 when size > t->n. */
int ac_mtree_root(const struct ac_mtree *t, uint64_t size, uint8_t out[AC_MERKLE_HASH_LEN]);
/* Inclusion proof of leaf index in the tree of the first size leaves (<= AC_MERKLE_MAX_PROOF
 * hashes, count in *n). Returns 0, or -1 when index >= size or size > t->n. */
int ac_mtree_inclusion(const struct ac_mtree *t, uint64_t index, uint64_t size,
                       uint8_t proof[AC_MERKLE_MAX_PROOF][AC_MERKLE_HASH_LEN], size_t *n);
/* Consistency proof between the first from and the first to leaves (0 < from <= to <= t->n).
 * Returns 0, or -1 on bad sizes. */
int ac_mtree_consistency(const struct ac_mtree *t, uint64_t from, uint64_t to,
                         uint8_t proof[AC_MERKLE_MAX_PROOF][AC_MERKLE_HASH_LEN], size_t *n);
/* Release everything; t is then empty and reusable. */
void ac_mtree_free(struct ac_mtree *t);

#endif
