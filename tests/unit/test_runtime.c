/* The agent runtime digest: a known answer (computed independently with Python's hashlib over
 * the documented encoding), field validation, and the Agent-Runtime header round trip and its
 * failure codes. */
#include "tests/support/testutil.h"

#include <string.h>

#include "protocol/runtime.h"

#define SW "sha-256:abababababababababababababababababababababababababababababababab"
#define ENV "sha-256:0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"
#define MODEL "example-model-2026-05"
/* hashlib.sha256(b"agentclear-runtime/v1\n" + SW + b"\n" + MODEL + b"\n" + ENV) */
#define KAT_HEX "c1678b083fbedec3f86ab7ca23dabb7a8af5d3e0d12019639fd8867b7b4c9453"
#define KAT_HDR "sha-256=:wWeLCD++3sP4arfKI9q7eor10+DRIBljn9iGe3tMlFM=:"

static void test_known_answer(void **state)
{
    (void)state;
    uint8_t d[32], want[32];
    assert_int_equal(ac_runtime_digest(SW, MODEL, ENV, d), AC_EC_OK);
    assert_int_equal(ac_test_unhex(KAT_HEX, want, sizeof want), 32);
    assert_memory_equal(d, want, 32);
    char hdr[AC_RUNTIME_HEADER_MAX + 1];
    assert_int_equal(ac_runtime_header(d, hdr, sizeof hdr), (long)strlen(KAT_HDR));
    assert_string_equal(hdr, KAT_HDR);
    uint8_t back[32];
    assert_int_equal(ac_runtime_header_parse(hdr, strlen(hdr), back), AC_EC_OK);
    assert_memory_equal(back, d, 32);
    /* other keys and parameters are ignored */
    const char *more = "sha-512=:AAAA:, sha-256=:wWeLCD++3sP4arfKI9q7eor10+DRIBljn9iGe3tMlFM=:;x=1";
    assert_int_equal(ac_runtime_header_parse(more, strlen(more), back), AC_EC_OK);
    assert_memory_equal(back, d, 32);
    /* each field changes the digest */
    uint8_t o[32];
    assert_int_equal(ac_runtime_digest(SW, "example-model-2026-06", ENV, o), AC_EC_OK);
    assert_memory_not_equal(o, d, 32);
    assert_int_equal(ac_runtime_digest(ENV, MODEL, SW, o), AC_EC_OK);
    assert_memory_not_equal(o, d, 32);
}

static void test_fields_invalid(void **state)
{
    (void)state;
    uint8_t d[32];
    const char *bad_digests[] = {
        NULL,
        "",
        "sha-256:",
        "sha-256:ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
        "sha-512:abababababababababababababababababababababababababababababababab",
        "sha-256:abababababababababababababababababababababababababababababababa",
        "sha-256:ababababababababababababababababababababababababababababababababab",
    };
    for (size_t i = 0; i < sizeof bad_digests / sizeof *bad_digests; i++) {
        assert_int_equal(ac_runtime_digest(bad_digests[i], MODEL, ENV, d), AC_EC_BINDING_INVALID);
        assert_int_equal(ac_runtime_digest(SW, MODEL, bad_digests[i], d), AC_EC_BINDING_INVALID);
    }
    char longm[AC_RUNTIME_MODEL_MAX + 2];
    memset(longm, 'm', sizeof longm - 1);
    longm[sizeof longm - 1] = '\0';
    const char *bad_models[] = {NULL, "", "a\nb", "tab\there", "caf\xc3\xa9", longm};
    for (size_t i = 0; i < sizeof bad_models / sizeof *bad_models; i++)
        assert_int_equal(ac_runtime_digest(SW, bad_models[i], ENV, d), AC_EC_BINDING_INVALID);
    longm[AC_RUNTIME_MODEL_MAX] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(ac_runtime_digest(SW, longm, ENV, d), AC_EC_OK);
}

static void test_header_invalid(void **state)
{
    (void)state;
    uint8_t d[32];
    assert_int_equal(ac_runtime_header_parse(NULL, 0, d), AC_EC_RUNTIME_MISSING);
    const char *bad[] = {
        "",
        "sha-256",                                                  /* boolean true, not bytes */
        "sha-256=:AAAA:",                                           /* 3 bytes */
        "sha-256=\"wWeLCD++3sP4arfKI9q7eor10+DRIBljn9iGe3tMlFM=\"", /* a string */
        "sha-512=:wWeLCD++3sP4arfKI9q7eor10+DRIBljn9iGe3tMlFM=:",   /* no sha-256 */
        "sha-256=:wWeLCD++3sP4arfKI9q7eor10+DRIBljn9iGe3tMlF!=:",   /* not base64 */
        "SHA-256=:wWeLCD++3sP4arfKI9q7eor10+DRIBljn9iGe3tMlFM=:",   /* keys are lowercase */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(ac_runtime_header_parse(bad[i], strlen(bad[i]), d),
                         AC_EC_RUNTIME_MALFORMED);
    char small[10];
    uint8_t z[32] = {0};
    assert_int_equal(ac_runtime_header(z, small, sizeof small), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_fields_invalid),
        cmocka_unit_test(test_header_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
