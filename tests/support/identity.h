/* tests/support/identity.h -- making real user-signed bindings and revocations for the tests
 * (keys from ac_sig_keygen, signatures from ac_jws_sign; nothing is mocked). */
#ifndef AC_TEST_IDENTITY_H
#define AC_TEST_IDENTITY_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#define AC_TEST_SW "sha-256:abababababababababababababababababababababababababababababababab"
#define AC_TEST_ENV "sha-256:0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"
#define AC_TEST_MODEL "example-model-2026-05"

/* A valid binding payload: ver 1, the ids, cnf.jwk of agent_key, the AC_TEST_* runtime,
 * max_autonomy "L3", iat and exp (no nbf). New reference. */
json_t *ac_test_binding_payload(const char *id, const char *user, const char *agent,
                                EVP_PKEY *agent_key, int64_t iat, int64_t exp);

/* {"ver":1, "binding", "iss", "iat"}. New reference. */
json_t *ac_test_revocation_payload(const char *binding, const char *user, int64_t iat);

/* Sign payload (compact JSON text) with key, header kid = the key's thumbprint (or `kid` when not
 * NULL) and typ. Returns a malloc'd compact JWS. Fails the test on error. */
char *ac_test_sign_doc(EVP_PKEY *key, const char *typ, const json_t *payload, const char *kid);

/* The key's RFC 7638 thumbprint in a per-thread buffer (overwritten by the next call on that
 * thread). */
const char *ac_test_kid(EVP_PKEY *key);

/* The public JWK text of a key (malloc'd). */
char *ac_test_jwk_text(EVP_PKEY *key);

#endif
