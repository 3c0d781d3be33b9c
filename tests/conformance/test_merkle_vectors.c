/* RFC 9162 Merkle proofs: every transparency-dev/merkle vector under
 * shared/vectors/merkle/{inclusion,consistency} must pass or fail exactly as its wantErr says;
 * generated proofs must match the vectors' happy paths and verify for all small trees; the
 * frontier root must equal MTH for every size up to 1000. */
#include "tests/support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "protocol/b64.h"
#include "protocol/merkle.h"

#define HL AC_MERKLE_HASH_LEN

/* The vector files present when this test was written (inclusion: 0-4, additional/0-3,
 * single-entry; consistency: 0-4, additional). A directory that goes missing must fail. */
#define EXPECT_INCLUSION 98
#define EXPECT_CONSISTENCY 98

/* ---- helpers ------------------------------------------------------------------------------- */

struct paths {
    char **v;
    size_t n, cap;
};

static void collect(const char *dir, struct paths *p)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(dir) + 1 + strlen(e->d_name) + 1;
        char *path = malloc(n);
        assert_non_null(path);
        snprintf(path, n, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            collect(path, p);
            free(path);
        } else if (n > 6 && strcmp(path + strlen(path) - 5, ".json") == 0) {
            if (p->n == p->cap) {
                p->cap = p->cap ? 2 * p->cap : 64;
                p->v = realloc(p->v, p->cap * sizeof *p->v);
                assert_non_null(p->v);
            }
            p->v[p->n++] = path;
        } else {
            free(path);
        }
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void paths_free(struct paths *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
}

/* base64 (jansson string) -> bytes; returns length or -1 when not base64 */
static long b64(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s), got = 0;
    if (n / 4 * 3 + 3 > cap) return -1;
    if (ac_b64_decode(s, n, out, &got, 0) != 0) return -1;
    return (long)got;
}

/* A 32-byte hash from base64; 0 when it is one, -1 when the value is not 32 bytes. */
static int hash32(const char *s, uint8_t out[HL])
{
    uint8_t buf[512];
    long n = b64(s, buf, sizeof buf);
    assert_true(n >= 0); /* the vectors only hold valid base64 */
    if (n != HL) return -1;
    memcpy(out, buf, HL);
    return 0;
}

/* Roots in the API are 32-byte arrays. A vector root of another length ("don't care 1",
 * "WrongRoot", "") cannot be a SHA-256 root; map it to SHA-256(0xff || bytes), a stand-in that is
 * never a tree hash (those start with 0x00 or 0x01 before hashing) and keeps equal inputs equal
 * and different inputs different -- which is all the vectors rely on for such roots. */
static void root32(const char *s, uint8_t out[HL])
{
    uint8_t buf[512 + 1];
    long n = b64(s, buf + 1, sizeof buf - 1);
    assert_true(n >= 0);
    if (n == HL) {
        memcpy(out, buf + 1, HL);
        return;
    }
    buf[0] = 0xff;
    unsigned int olen = 0;
    assert_int_equal(EVP_Digest(buf, (size_t)n + 1, out, &olen, EVP_sha256(), NULL), 1);
}

/* proof array (or JSON null) -> hashes; -1 when an element is not 32 bytes */
static int proof_hashes(json_t *arr, uint8_t (**out)[HL], size_t *n)
{
    *out = NULL;
    *n = 0;
    if (json_is_null(arr)) return 0;
    assert_true(json_is_array(arr));
    size_t len = json_array_size(arr);
    *out = calloc(len ? len : 1, HL);
    assert_non_null(*out);
    for (size_t i = 0; i < len; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        assert_non_null(s);
        if (hash32(s, (*out)[i]) != 0) return -1;
    }
    *n = len;
    return 0;
}

/* RFC 6962 / transparency-dev test leaves: the vectors' trees are built from these. */
static const char *const test_leaves_hex[8] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};

static void test_leaf_hashes(uint8_t out[8][HL])
{
    for (int i = 0; i < 8; i++) {
        uint8_t d[32];
        long n = ac_test_unhex(test_leaves_hex[i], d, sizeof d);
        assert_true(n >= 0);
        assert_int_equal(ac_merkle_leaf_hash(d, (size_t)n, out[i]), 0);
    }
}

static void assert_hashes_equal(const uint8_t (*a)[HL], const uint8_t (*b)[HL], size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_memory_equal(a[i], b[i], HL);
}

/* ---- the vectors --------------------------------------------------------------------------- */

/* Sizes and indexes in the vectors reach 2^64-1 (Go's uint64 underflow of 0-1), beyond jansson's
 * int64 integers: read them exactly from the file text instead; jansson parses the rest with
 * integers decoded as reals (and JSON_STRICT still insists on every field being present). */
static uint64_t raw_u64(const char *path, const char *key)
{
    size_t len;
    char *text = ac_test_read_file(path, &len);
    assert_non_null(text);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *p = strstr(text, pat);
    if (!p) fail_msg("%s: no %s", path, key);
    assert_null(strstr(p + 1, pat));
    p += strlen(pat);
    while (*p == ' ')
        p++;
    assert_true(*p >= '0' && *p <= '9');
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    assert_int_equal(errno, 0);
    assert_true(*end == ',' || *end == '\n' || *end == ' ' || *end == '}');
    free(text);
    return (uint64_t)v;
}

static size_t happy_checked;

static void run_inclusion(const char *path, const uint8_t leaves[8][HL])
{
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
    if (!j) fail_msg("%s: %s", path, err.text);
    double idx_r, size_r;
    const char *root_s, *leaf_s, *desc;
    json_t *proof_j;
    int want_err;
    if (json_unpack_ex(j, &err, JSON_STRICT, "{s:F, s:F, s:s, s:s, s:o, s:s, s:b}", "leafIdx",
                       &idx_r, "treeSize", &size_r, "root", &root_s, "leafHash", &leaf_s, "proof",
                       &proof_j, "desc", &desc, "wantErr", &want_err) != 0)
        fail_msg("%s: %s", path, err.text);
    uint64_t idx = raw_u64(path, "leafIdx"), size = raw_u64(path, "treeSize");

    uint8_t root[HL], leaf[HL], (*proof)[HL];
    size_t n;
    int got_err;
    root32(root_s, root);
    int bad_proof = proof_hashes(proof_j, &proof, &n);
    if (hash32(leaf_s, leaf) != 0 || bad_proof) {
        got_err = 1; /* not representable: a hash that is not 32 bytes */
    } else {
        int rc = ac_merkle_verify_inclusion(idx, size, leaf, (const uint8_t(*)[HL])proof, n, root);
        assert_true(rc == 0 || rc == 1);
        got_err = rc != 1;
    }
    if (got_err != want_err) fail_msg("%s (%s): wantErr=%d, got %d", path, desc, want_err, got_err);

    /* Happy paths in the numbered directories are trees of the 8 test leaves: our generator must
     * produce the same proof. */
    if (!want_err && size <= 8 && strstr(path, "additional") == NULL &&
        strstr(path, "single-entry") == NULL) {
        assert_memory_equal(leaf, leaves[idx], HL);
        uint8_t gen[AC_MERKLE_MAX_PROOF][HL], groot[HL];
        size_t gn = 0;
        assert_int_equal(ac_merkle_inclusion_proof(leaves, (size_t)size, (size_t)idx, gen,
                                                   AC_MERKLE_MAX_PROOF, &gn),
                         0);
        assert_int_equal(gn, n);
        assert_hashes_equal((const uint8_t(*)[HL])gen, (const uint8_t(*)[HL])proof, n);
        assert_int_equal(ac_merkle_root(leaves, (size_t)size, groot), 0);
        assert_memory_equal(groot, root, HL);
        happy_checked++;
    }
    free(proof);
    json_decref(j);
}

static void run_consistency(const char *path, const uint8_t leaves[8][HL])
{
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
    if (!j) fail_msg("%s: %s", path, err.text);
    double size1_r, size2_r;
    const char *r1_s, *r2_s, *desc;
    json_t *proof_j;
    int want_err;
    if (json_unpack_ex(j, &err, JSON_STRICT, "{s:F, s:F, s:s, s:s, s:o, s:s, s:b}", "size1",
                       &size1_r, "size2", &size2_r, "root1", &r1_s, "root2", &r2_s, "proof",
                       &proof_j, "desc", &desc, "wantErr", &want_err) != 0)
        fail_msg("%s: %s", path, err.text);
    uint64_t size1 = raw_u64(path, "size1"), size2 = raw_u64(path, "size2");

    uint8_t r1[HL], r2[HL], (*proof)[HL];
    size_t n;
    int got_err;
    root32(r1_s, r1);
    root32(r2_s, r2);
    if (proof_hashes(proof_j, &proof, &n) != 0) {
        got_err = 1;
    } else {
        int rc = ac_merkle_verify_consistency(size1, size2, r1, r2, (const uint8_t(*)[HL])proof, n);
        assert_true(rc == 0 || rc == 1);
        got_err = rc != 1;
    }
    if (got_err != want_err) fail_msg("%s (%s): wantErr=%d, got %d", path, desc, want_err, got_err);

    if (!want_err && size1 > 0 && size2 <= 8 && size2 > 0 && strstr(path, "additional") == NULL) {
        uint8_t gen[AC_MERKLE_MAX_PROOF][HL], g1[HL], g2[HL];
        size_t gn = 0;
        assert_int_equal(ac_merkle_consistency_proof(leaves, (size_t)size1, (size_t)size2, gen,
                                                     AC_MERKLE_MAX_PROOF, &gn),
                         0);
        assert_int_equal(gn, n);
        assert_hashes_equal((const uint8_t(*)[HL])gen, (const uint8_t(*)[HL])proof, n);
        assert_int_equal(ac_merkle_root(leaves, (size_t)size1, g1), 0);
        assert_int_equal(ac_merkle_root(leaves, (size_t)size2, g2), 0);
        assert_memory_equal(g1, r1, HL);
        assert_memory_equal(g2, r2, HL);
        happy_checked++;
    }
    free(proof);
    json_decref(j);
}

static size_t run_dir(const char *rel, const uint8_t leaves[8][HL],
                      void (*run)(const char *, const uint8_t[8][HL]))
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", ac_test_src(rel));
    struct paths p = {0};
    collect(dir, &p);
    qsort(p.v, p.n, sizeof *p.v, cmp_str);
    for (size_t i = 0; i < p.n; i++)
        run(p.v[i], leaves);
    size_t n = p.n;
    paths_free(&p);
    return n;
}

static void vectors(void **s)
{
    (void)s;
    uint8_t leaves[8][HL];
    test_leaf_hashes(leaves);
    happy_checked = 0;
    size_t ni = run_dir("../shared/vectors/merkle/inclusion", leaves, run_inclusion);
    size_t nc = run_dir("../shared/vectors/merkle/consistency", leaves, run_consistency);
    print_message("merkle vectors: %zu inclusion, %zu consistency, %zu happy paths regenerated\n",
                  ni, nc, happy_checked);
    assert_int_equal(ni, EXPECT_INCLUSION);
    assert_int_equal(nc, EXPECT_CONSISTENCY);
    /* inclusion 0-4 and consistency 1-4 (consistency/0 is the trivial 1,1 case) */
    assert_int_equal(happy_checked, 10);
}

/* ---- generated trees ----------------------------------------------------------------------- */

static uint8_t (*make_leaves(size_t n))[HL]
{
    uint8_t(*l)[HL] = malloc((n ? n : 1) * HL);
    assert_non_null(l);
    for (size_t i = 0; i < n; i++) {
        uint8_t d[8];
        for (int k = 0; k < 8; k++)
            d[k] = (uint8_t)(i >> (8 * k));
        assert_int_equal(ac_merkle_leaf_hash(d, sizeof d, l[i]), 0);
    }
    return l;
}

/* MTH straight from the RFC 9162 §2.1.1 definition, independent of the library's iteration. */
static void mth_ref(const uint8_t (*l)[HL], size_t n, uint8_t out[HL])
{
    if (n == 0) {
        unsigned int olen;
        assert_int_equal(EVP_Digest("", 0, out, &olen, EVP_sha256(), NULL), 1);
        return;
    }
    if (n == 1) {
        memcpy(out, l[0], HL);
        return;
    }
    size_t k = 1;
    while (2 * k < n)
        k *= 2;
    uint8_t a[HL], b[HL];
    mth_ref(l, k, a);
    mth_ref(l + k, n - k, b);
    assert_int_equal(ac_merkle_node_hash(a, b, out), 0);
}

static void known_answers(void **s)
{
    (void)s;
    uint8_t h[HL], e[HL], want[HL];
    /* MTH({}) = SHA-256() */
    ac_test_unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, HL);
    ac_merkle_empty_root(e);
    assert_memory_equal(e, want, HL);
    assert_int_equal(ac_merkle_root(NULL, 0, h), 0);
    assert_memory_equal(h, want, HL);
    /* leaf hash of the empty string = SHA-256(0x00) */
    ac_test_unhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", want, HL);
    assert_int_equal(ac_merkle_leaf_hash(NULL, 0, h), 0);
    assert_memory_equal(h, want, HL);
    /* the 8-leaf RFC 6962 test tree */
    uint8_t leaves[8][HL];
    test_leaf_hashes(leaves);
    ac_test_unhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328", want, HL);
    assert_int_equal(ac_merkle_root(leaves, 8, h), 0);
    assert_memory_equal(h, want, HL);
    /* node hash output may alias an input */
    uint8_t a[HL], b[HL], c[HL];
    memcpy(a, leaves[0], HL);
    memcpy(b, leaves[1], HL);
    assert_int_equal(ac_merkle_node_hash(a, b, c), 0);
    assert_int_equal(ac_merkle_node_hash(a, b, a), 0);
    assert_memory_equal(a, c, HL);
}

static void inclusion_generated(void **s)
{
    (void)s;
    const size_t max = 64;
    uint8_t(*l)[HL] = make_leaves(max);
    size_t checked = 0;
    for (size_t n = 1; n <= max; n++) {
        uint8_t root[HL], ref[HL];
        assert_int_equal(ac_merkle_root(l, n, root), 0);
        mth_ref(l, n, ref);
        assert_memory_equal(root, ref, HL);
        for (size_t i = 0; i < n; i++) {
            uint8_t p[AC_MERKLE_MAX_PROOF][HL];
            size_t pn = 99;
            assert_int_equal(ac_merkle_inclusion_proof(l, n, i, p, AC_MERKLE_MAX_PROOF, &pn), 0);
            const uint8_t(*cp)[HL] = (const uint8_t(*)[HL])p;
            assert_int_equal(ac_merkle_verify_inclusion(i, n, l[i], cp, pn, root), 1);
            /* another leaf at the same index, or the leaf at another index */
            assert_int_equal(ac_merkle_verify_inclusion(i, n, l[(i + 1) % max], cp, pn, root), 0);
            if (n > 1)
                assert_int_equal(ac_merkle_verify_inclusion((i + 1) % n, n, l[i], cp, pn, root), 0);
            assert_int_equal(ac_merkle_verify_inclusion(i, n, l[i], cp, pn, l[i]) == 1, n == 1);
            assert_int_equal(ac_merkle_verify_inclusion(n, n, l[i], cp, pn, root), 0);
            /* every bit of every proof hash matters */
            for (size_t k = 0; k < pn; k++)
                for (int bit = 0; bit < 8 * HL; bit += 37) {
                    p[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    assert_int_equal(ac_merkle_verify_inclusion(i, n, l[i], cp, pn, root), 0);
                    p[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                }
            /* truncated and extended proofs */
            if (pn > 0)
                assert_int_equal(ac_merkle_verify_inclusion(i, n, l[i], cp, pn - 1, root), 0);
            memcpy(p[pn], root, HL);
            assert_int_equal(ac_merkle_verify_inclusion(i, n, l[i], cp, pn + 1, root), 0);
            /* too small an output buffer */
            if (pn > 0) assert_int_equal(ac_merkle_inclusion_proof(l, n, i, p, pn - 1, &pn), -1);
            checked++;
        }
        size_t pn;
        uint8_t p[AC_MERKLE_MAX_PROOF][HL];
        assert_int_equal(ac_merkle_inclusion_proof(l, n, n, p, AC_MERKLE_MAX_PROOF, &pn), -1);
    }
    assert_int_equal(checked, max * (max + 1) / 2);
    uint8_t root[HL];
    ac_merkle_empty_root(root);
    assert_int_equal(ac_merkle_verify_inclusion(0, 0, l[0], NULL, 0, root), 0);
    free(l);
}

static void consistency_generated(void **s)
{
    (void)s;
    const size_t max = 64;
    uint8_t(*l)[HL] = make_leaves(max);
    uint8_t roots[65][HL];
    for (size_t n = 0; n <= max; n++)
        assert_int_equal(ac_merkle_root(l, n, roots[n]), 0);
    size_t checked = 0;
    for (size_t n = 1; n <= max; n++)
        for (size_t m = 1; m <= n; m++) {
            uint8_t p[AC_MERKLE_MAX_PROOF + 1][HL];
            const uint8_t(*cp)[HL] = (const uint8_t(*)[HL])p;
            size_t pn = 99;
            assert_int_equal(ac_merkle_consistency_proof(l, m, n, p, AC_MERKLE_MAX_PROOF, &pn), 0);
            assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[n], cp, pn), 1);
            if (m == n) {
                assert_int_equal(pn, 0);
                assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[n - 1], cp, 0),
                                 0);
                memcpy(p[0], roots[m], HL);
                assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[n], cp, 1), 0);
                checked++;
                continue;
            }
            assert_true(pn > 0);
            assert_int_equal(ac_merkle_verify_consistency(m, n, roots[n], roots[m], cp, pn), 0);
            assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[m], cp, pn), 0);
            assert_int_equal(ac_merkle_verify_consistency(n, m, roots[n], roots[m], cp, pn), 0);
            assert_int_equal(ac_merkle_verify_consistency(0, n, roots[0], roots[n], cp, pn), 0);
            for (size_t k = 0; k < pn; k++)
                for (int bit = 0; bit < 8 * HL; bit += 41) {
                    p[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                    assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[n], cp, pn),
                                     0);
                    p[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                }
            assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[n], cp, pn - 1), 0);
            memcpy(p[pn], roots[n], HL);
            assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[n], cp, pn + 1), 0);
            assert_int_equal(ac_merkle_verify_consistency(m, n, roots[m], roots[n], cp, 0), 0);
            assert_int_equal(ac_merkle_consistency_proof(l, m, n, p, pn - 1, &pn), -1);
            checked++;
        }
    assert_int_equal(checked, max * (max + 1) / 2);
    size_t pn;
    uint8_t p[AC_MERKLE_MAX_PROOF][HL];
    assert_int_equal(ac_merkle_consistency_proof(l, 0, 5, p, AC_MERKLE_MAX_PROOF, &pn), -1);
    assert_int_equal(ac_merkle_consistency_proof(l, 6, 5, p, AC_MERKLE_MAX_PROOF, &pn), -1);
    /* equal sizes: only equal roots and an empty proof; size 0 only with the empty root */
    assert_int_equal(ac_merkle_verify_consistency(0, 0, roots[0], roots[0], NULL, 0), 1);
    assert_int_equal(ac_merkle_verify_consistency(0, 0, roots[1], roots[1], NULL, 0), 0);
    free(l);
}

static void frontier(void **s)
{
    (void)s;
    const size_t max = 1000;
    uint8_t(*l)[HL] = make_leaves(max);
    struct ac_merkle_frontier f;
    ac_merkle_frontier_init(&f);
    uint8_t a[HL], b[HL];
    assert_int_equal(ac_merkle_frontier_root(&f, a), 0);
    ac_merkle_empty_root(b);
    assert_memory_equal(a, b, HL);
    for (size_t n = 1; n <= max; n++) {
        assert_int_equal(ac_merkle_frontier_append(&f, l[n - 1]), 0);
        assert_int_equal(f.size, n);
        assert_int_equal(ac_merkle_frontier_root(&f, a), 0);
        assert_int_equal(ac_merkle_root(l, n, b), 0);
        assert_memory_equal(a, b, HL);
        if (n <= 200) {
            mth_ref(l, n, b);
            assert_memory_equal(a, b, HL);
        }
    }
    /* a copy is a snapshot */
    struct ac_merkle_frontier snap = f;
    assert_int_equal(ac_merkle_frontier_append(&f, l[0]), 0);
    assert_int_equal(ac_merkle_frontier_root(&snap, a), 0);
    assert_int_equal(ac_merkle_root(l, max, b), 0);
    assert_memory_equal(a, b, HL);
    /* a full tree refuses another leaf and stays as it was */
    f.size = UINT64_MAX;
    struct ac_merkle_frontier before = f;
    assert_int_equal(ac_merkle_frontier_append(&f, l[0]), -1);
    assert_memory_equal(&f, &before, sizeof f);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answers),
        cmocka_unit_test(vectors),
        cmocka_unit_test(inclusion_generated),
        cmocka_unit_test(consistency_generated),
        cmocka_unit_test(frontier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
