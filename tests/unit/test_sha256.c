/* protocol/sha256: the published FIPS 180-2 examples, every length 0..300 and split points against
 * libsodium's independent implementation, and several threads at once (each has its own context).
 */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "protocol/sha256.h"

static void hex_of(const uint8_t *d, char out[2 * AC_SHA256_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < AC_SHA256_LEN; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * AC_SHA256_LEN] = '\0';
}

/* FIPS 180-2, appendix B (and the empty message) */
static void published_examples(void **s)
{
    (void)s;
    static const struct {
        const char *msg, *want;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    assert_int_equal(ac_sha256_uses_openssl(), 1);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t d[AC_SHA256_LEN];
        char h[2 * AC_SHA256_LEN + 1];
        ac_sha256(v[i].msg, strlen(v[i].msg), d);
        hex_of(d, h);
        assert_string_equal(h, v[i].want);
        const struct ac_sha256_part whole = {v[i].msg, strlen(v[i].msg)};
        ac_sha256v_portable(&whole, 1, d); /* the fallback */
        hex_of(d, h);
        assert_string_equal(h, v[i].want);
        /* the same message in three parts, one of them empty */
        size_t n = strlen(v[i].msg), k = n / 2;
        const struct ac_sha256_part parts[] = {{v[i].msg, k}, {"", 0}, {v[i].msg + k, n - k}};
        ac_sha256v(parts, 3, d);
        hex_of(d, h);
        assert_string_equal(h, v[i].want);
    }
    /* one million 'a' (FIPS 180-2 B.3), in 1000-byte parts */
    char a[1000];
    memset(a, 'a', sizeof a);
    struct ac_sha256_part parts[1000];
    for (int i = 0; i < 1000; i++)
        parts[i] = (struct ac_sha256_part){a, sizeof a};
    uint8_t d[AC_SHA256_LEN];
    char h[2 * AC_SHA256_LEN + 1];
    ac_sha256v(parts, 1000, d);
    hex_of(d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    ac_sha256v_portable(parts, 1000, d);
    hex_of(d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void like_libsodium(void **s)
{
    (void)s;
    uint8_t msg[300];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof msg; n++) {
        uint8_t got[AC_SHA256_LEN], want[AC_SHA256_LEN];
        ac_sha256(msg, n, got);
        crypto_hash_sha256(want, msg, n);
        assert_memory_equal(got, want, AC_SHA256_LEN);
        size_t k = n / 3;
        const struct ac_sha256_part parts[] = {{msg, k}, {msg + k, n - k}};
        ac_sha256v(parts, 2, got);
        assert_memory_equal(got, want, AC_SHA256_LEN);
    }
}

static void *hash_many(void *arg)
{
    int *bad = arg;
    if (!ac_sha256_uses_openssl()) (*bad)++;
    uint8_t msg[64], got[AC_SHA256_LEN], want[AC_SHA256_LEN];
    for (int i = 0; i < 20000; i++) {
        memset(msg, i & 0xff, sizeof msg);
        msg[0] = (uint8_t)(i >> 8);
        ac_sha256(msg, sizeof msg, got);
        crypto_hash_sha256(want, msg, sizeof msg);
        if (memcmp(got, want, sizeof got) != 0) (*bad)++;
    }
    return NULL;
}

static void threads_at_once(void **s)
{
    (void)s;
    pthread_t t[4];
    int bad[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hash_many, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(bad[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(published_examples),
        cmocka_unit_test(like_libsodium),
        cmocka_unit_test(threads_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
