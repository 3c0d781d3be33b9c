/* protocol/merkle.h -- RFC 9162 (Certificate Transparency v2) Merkle tree hashing with SHA-256:
 * tree hashes, inclusion and consistency proofs, and an incremental frontier ("compact range")
 * that follows the root of a growing log in O(log n) memory.
 *
 *   leaf hash  = SHA-256(0x00 || data)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256()            (the empty tree)
 *
 * Hashes are fixed 32-byte arrays; a list of hashes is an array of them
 * (const uint8_t (*)[AC_MERKLE_HASH_LEN]), ordered as the RFC orders the proof: leaf to root.
 * Pure functions: no I/O, no global state beyond the SHA-256 implementation fetched once.
 * All functions are thread-safe. */
#ifndef AC_MERKLE_H
#define AC_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define AC_MERKLE_HASH_LEN 32

/* Upper bound on the number of hashes in any proof for trees of up to 2^64-1 leaves: an inclusion
 * path has at most ceil(log2 n) <= 64 nodes, a consistency proof at most one more (RFC 9162
 * §2.1.4.1, e.g. m=3, n=4 gives 3 hashes). A buffer of this many hashes always suffices. */
#define AC_MERKLE_MAX_PROOF 65

/* ==== hashing ============================================================================== */

/* out = SHA-256(0x00 || data[0..len)). data may be NULL when len is 0. Returns 0: the hashing
 * (protocol/sha256.h) cannot fail; the int return is kept for the callers that check it. */
int ac_merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[AC_MERKLE_HASH_LEN]);

/* out = SHA-256(0x01 || left || right). out may alias left or right. Returns 0 (as above). */
int ac_merkle_node_hash(const uint8_t left[AC_MERKLE_HASH_LEN],
                        const uint8_t right[AC_MERKLE_HASH_LEN], uint8_t out[AC_MERKLE_HASH_LEN]);

/* out = MTH({}) = SHA-256() (e3b0c442...b855), the root of the empty tree. Never fails. */
void ac_merkle_empty_root(uint8_t out[AC_MERKLE_HASH_LEN]);

/* ==== tree hash and proof generation over an array of leaf hashes ========================= */

/* MTH(D[n]) of n leaf hashes (RFC 9162 §2.1.1); n == 0 gives the empty root. leaves may be NULL
 * when n is 0. n-1 node hashes, O(log n) memory. Returns 0. */
int ac_merkle_root(const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n,
                   uint8_t out[AC_MERKLE_HASH_LEN]);

/* Inclusion proof PATH(index, D[n]) (RFC 9162 §2.1.3.1) of the leaf at index in the tree of the
 * first n leaves. Writes at most cap hashes to proof (AC_MERKLE_MAX_PROOF always suffices) and
 * the count to *proof_len. Returns 0, or -1 when index >= n or cap is too small (proof and
 * *proof_len are then unspecified). O(n) hashing. */
int ac_merkle_inclusion_proof(const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t n, size_t index,
                              uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t cap, size_t *proof_len);

/* Consistency proof PROOF(m, D[n]) (RFC 9162 §2.1.4.1) between the tree of the first m leaves and
 * the tree of the first n leaves; leaves holds at least n hashes. m == n gives the empty proof.
 * Returns 0, or -1 when m == 0, m > n or cap is too small (outputs unspecified). */
int ac_merkle_consistency_proof(const uint8_t (*leaves)[AC_MERKLE_HASH_LEN], size_t m, size_t n,
                                uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t cap,
                                size_t *proof_len);

/* ==== proof verification ==================================================================== */

/* Verify an inclusion proof with the RFC 9162 §2.1.3.2 algorithm: leaf_hash at index is in the
 * tree of the given size whose root is root. Returns 1 only when the proof is valid; 0 when it
 * is not (index >= size, wrong length, wrong hashes). Compare with == 1.
 * proof may be NULL when proof_len is 0. */
int ac_merkle_verify_inclusion(uint64_t index, uint64_t size,
                               const uint8_t leaf_hash[AC_MERKLE_HASH_LEN],
                               const uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t proof_len,
                               const uint8_t root[AC_MERKLE_HASH_LEN]);

/* Verify a consistency proof with the RFC 9162 §2.1.4.2 algorithm: the tree of size1 leaves with
 * root1 is a prefix of the tree of size2 leaves with root2. Beyond the RFC, which requires
 * 0 < size1 < size2: size1 == size2 is consistent exactly when the proof is empty and the roots
 * are equal (and, for size 0, equal to the empty root); size1 == 0 < size2 and size1 > size2 are
 * rejected. Returns 1 only when consistent, 0 when not. Compare with == 1.
 * proof may be NULL when proof_len is 0. */
int ac_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                 const uint8_t root1[AC_MERKLE_HASH_LEN],
                                 const uint8_t root2[AC_MERKLE_HASH_LEN],
                                 const uint8_t (*proof)[AC_MERKLE_HASH_LEN], size_t proof_len);

/* ==== incremental frontier (compact range [0, size)) ======================================= */

/* The right edge of a growing tree: [0, size) split into perfect subtrees, largest first, one per
 * bit set in size. For every bit i set in size, node[i] is the root of the perfect subtree of 2^i
 * leaves that starts at leaf (size >> (i+1)) << (i+1). Entries for clear bits are unused.
 * Plain data: copy it to snapshot it; persist size and node[i] of the set bits to restore it. */
struct ac_merkle_frontier {
    uint64_t size;
    uint8_t node[64][AC_MERKLE_HASH_LEN];
};

/* Make f the frontier of the empty tree. Never fails. */
void ac_merkle_frontier_init(struct ac_merkle_frontier *f);

/* Append one leaf hash: at most 64 node hashes (amortised one). Returns 0, or -1 when the tree is
 * full (size == UINT64_MAX); f is then unchanged. */
int ac_merkle_frontier_append(struct ac_merkle_frontier *f,
                              const uint8_t leaf_hash[AC_MERKLE_HASH_LEN]);

/* MTH of the leaves appended so far (the empty root for size 0): at most 63 node hashes.
 * Returns 0. f is not changed. */
int ac_merkle_frontier_root(const struct ac_merkle_frontier *f, uint8_t out[AC_MERKLE_HASH_LEN]);

#endif
