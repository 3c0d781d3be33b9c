/* protocol/mtree.h against protocol/merkle.h's array functions: for every tree size up to 70 and
 * every index and pair of sizes, the cached tree gives the same roots, inclusion proofs and
 * consistency proofs (byte for byte), and they verify; out-of-range requests are refused. */
#include "tests/support/testutil.h"

#include <string.h>

#include "protocol/mtree.h"

#define N 70

static void same_as_merkle(void **st)
{
    (void)st;
    uint8_t leaves[N][32];
    struct ac_mtree t;
    ac_mtree_init(&t);
    for (int i = 0; i < N; i++) {
        uint8_t data[8] = {(uint8_t)i, 1, 2, 3, 4, 5, 6, (uint8_t)(i * 7)};
        assert_int_equal(ac_merkle_leaf_hash(data, sizeof data, leaves[i]), 0);
        assert_int_equal(ac_mtree_append(&t, leaves[i]), 0);
    }
    assert_int_equal(t.n, N);
    for (size_t size = 0; size <= N; size++) {
        uint8_t a[32], b[32];
        assert_int_equal(ac_merkle_root((const uint8_t(*)[32])leaves, size, a), 0);
        assert_int_equal(ac_mtree_root(&t, size, b), 0);
        assert_memory_equal(a, b, 32);
        for (size_t i = 0; i < size; i++) {
            uint8_t p1[AC_MERKLE_MAX_PROOF][32], p2[AC_MERKLE_MAX_PROOF][32];
            size_t n1, n2;
            assert_int_equal(ac_merkle_inclusion_proof((const uint8_t(*)[32])leaves, size, i, p1,
                                                       AC_MERKLE_MAX_PROOF, &n1),
                             0);
            assert_int_equal(ac_mtree_inclusion(&t, i, size, p2, &n2), 0);
            assert_int_equal(n1, n2);
            assert_memory_equal(p1, p2, n1 * 32);
            assert_int_equal(
                ac_merkle_verify_inclusion(i, size, leaves[i], (const uint8_t(*)[32])p2, n2, a), 1);
        }
        for (size_t from = 1; from <= size; from++) {
            uint8_t p1[AC_MERKLE_MAX_PROOF][32], p2[AC_MERKLE_MAX_PROOF][32], r1[32];
            size_t n1, n2;
            assert_int_equal(ac_merkle_consistency_proof((const uint8_t(*)[32])leaves, from, size,
                                                         p1, AC_MERKLE_MAX_PROOF, &n1),
                             0);
            assert_int_equal(ac_mtree_consistency(&t, from, size, p2, &n2), 0);
            assert_int_equal(n1, n2);
            assert_memory_equal(p1, p2, n1 * 32);
            assert_int_equal(ac_mtree_root(&t, from, r1), 0);
            assert_int_equal(
                ac_merkle_verify_consistency(from, size, r1, a, (const uint8_t(*)[32])p2, n2), 1);
        }
    }
    uint8_t p[AC_MERKLE_MAX_PROOF][32], r[32];
    size_t n;
    assert_int_equal(ac_mtree_root(&t, N + 1, r), -1);
    assert_int_equal(ac_mtree_inclusion(&t, 5, 5, p, &n), -1);
    assert_int_equal(ac_mtree_inclusion(&t, 0, N + 1, p, &n), -1);
    assert_int_equal(ac_mtree_consistency(&t, 0, 5, p, &n), -1);
    assert_int_equal(ac_mtree_consistency(&t, 6, 5, p, &n), -1);
    assert_int_equal(ac_mtree_consistency(&t, 5, N + 1, p, &n), -1);
    ac_mtree_free(&t);
    assert_int_equal(t.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(same_as_merkle)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
