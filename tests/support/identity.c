#include "tests/support/identity.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/jose.h"

json_t *ac_test_binding_payload(const char *id, const char *user, const char *agent,
                                EVP_PKEY *agent_key, int64_t iat, int64_t exp)
{
    json_t *jwk = ac_jwk_export_public(agent_key);
    if (jwk == NULL) fail_msg("cannot export the agent key");
    json_t *p =
        json_pack("{s:i, s:s, s:s, s:s, s:{s:o}, s:{s:s, s:s, s:s}, s:s, s:I, s:I}", "ver", 1, "id",
                  id, "iss", user, "sub", agent, "cnf", "jwk", jwk, "runtime", "software",
                  AC_TEST_SW, "model", AC_TEST_MODEL, "environment", AC_TEST_ENV, "max_autonomy",
                  "L3", "iat", (json_int_t)iat, "exp", (json_int_t)exp);
    if (p == NULL) fail_msg("json_pack failed");
    return p;
}

json_t *ac_test_revocation_payload(const char *binding, const char *user, int64_t iat)
{
    json_t *p = json_pack("{s:i, s:s, s:s, s:I}", "ver", 1, "binding", binding, "iss", user, "iat",
                          (json_int_t)iat);
    if (p == NULL) fail_msg("json_pack failed");
    return p;
}

const char *ac_test_kid(EVP_PKEY *key)
{
    static _Thread_local char kid[AC_JWK_THUMBPRINT_SIZE]; /* the race tests sign on many threads */
    if (ac_jwk_thumbprint(key, kid) != 0) fail_msg("no thumbprint");
    return kid;
}

char *ac_test_sign_doc(EVP_PKEY *key, const char *typ, const json_t *payload, const char *kid)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    if (text == NULL) fail_msg("json_dumps failed");
    char *jws =
        ac_jws_sign(key, kid ? kid : ac_test_kid(key), typ, (const uint8_t *)text, strlen(text));
    free(text);
    if (jws == NULL) fail_msg("ac_jws_sign failed");
    return jws;
}

char *ac_test_jwk_text(EVP_PKEY *key)
{
    char *s = ac_jwk_public_text(key);
    if (s == NULL) fail_msg("no jwk");
    return s;
}
