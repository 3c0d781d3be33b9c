/* tests/support/agentsig.h -- signing agent requests (RFC 9421, agentclear's profile) and the
 * user-signed payment documents (mandates, revocations, step-up answers) for the tests. Real
 * keys, real signatures (ac_httpsig_sign, ac_jws_sign); nothing is mocked. */
#ifndef AC_TEST_AGENTSIG_H
#define AC_TEST_AGENTSIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

/* The header lines (each ending in "\r\n") of a request signed by agent key `key` under
 * agentclear's profile: Agent-Runtime (the AC_TEST_* runtime of tests/support/identity.h),
 * Content-Type and Content-Digest when body is not NULL, Signature-Input and Signature (covering
 * @method, @target-uri for http://127.0.0.1:<port><path>, agent-runtime, content-digest; created
 * now, expires now + 60, a random nonce, tag "agentclear"). Fails the test on error. */
void ac_test_agent_headers(EVP_PKEY *key, unsigned port, const char *method, const char *path,
                           const char *body, char *out, size_t cap);

/* A mandate payload with the members every test sets: ver 1, id, iss, agents [agent], ops
 * ["purchase","topup","micropay"], payees {"merchants": [merchant]}, asset, max_per_tx, nbf
 * now - 60, exp now + 30 days, autonomy. Add or replace members with json_object_set_new. New
 * reference. */
json_t *ac_test_mandate_payload(const char *id, const char *user, const char *agent,
                                const char *merchant, const char *asset, const char *max_per_tx,
                                const char *autonomy);

/* {"jws": "<jws>"} as text (malloc'd). */
char *ac_test_jws_body(const char *jws);

/* A confirmation payload answering the challenge object ch (as the server returned it):
 * authorization, nonce and payment_digest copied, decision "confirm" or "decline", iat now. New
 * reference. */
json_t *ac_test_confirmation_payload(const json_t *ch, const char *decision);

#endif
