/* libFuzzer harness for protocol/binding: the input is parsed as a binding and as a revocation.
 * Besides "no crash, no leak" it checks invariants and aborts when one breaks:
 *   - without allocation failures nothing reports AC_EC_INTERNAL;
 *   - an accepted binding obeys every documented rule (ids, times, autonomy, agent key and its
 *     thumbprint, runtime digest recomputed from its fields);
 *   - a refused document leaves its struct cleared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/binding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_binding: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ac_binding_doc b;
    enum ac_ec ec = ac_binding_parse((const char *)data, size, &b, NULL);
    require(ec != AC_EC_INTERNAL, "binding parse reports internal");
    if (ec == AC_EC_OK) {
        require(ac_id_valid(b.id) && ac_id_valid(b.user_id) && ac_id_valid(b.agent_id), "ids");
        require(ac_keyid_valid(b.user_kid), "user kid");
        require(b.iat >= 1 && b.iat <= b.nbf && b.nbf < b.exp &&
                    b.exp - b.iat <= AC_BINDING_MAX_LIFETIME && b.exp <= AC_BINDING_TIME_MAX,
                "times");
        require(b.max_autonomy >= 0 && b.max_autonomy <= AC_AUTONOMY_MAX, "autonomy");
        char tp[AC_JWK_THUMBPRINT_SIZE];
        require(b.agent_key && ac_jwk_thumbprint(b.agent_key, tp) == 0 &&
                    strcmp(tp, b.agent_kid) == 0,
                "agent key thumbprint");
        uint8_t d[AC_RUNTIME_DIGEST_LEN];
        require(ac_runtime_digest(b.software, b.model, b.environment, d) == AC_EC_OK &&
                    memcmp(d, b.runtime_digest, sizeof d) == 0,
                "runtime digest");
    } else {
        require(b.agent_key == NULL && b.jws.payload == NULL && b.id[0] == 0, "cleared");
    }
    ac_binding_clear(&b);

    struct ac_revocation_doc r;
    ec = ac_revocation_parse((const char *)data, size, &r, NULL);
    require(ec != AC_EC_INTERNAL, "revocation parse reports internal");
    if (ec == AC_EC_OK)
        require(ac_id_valid(r.binding_id) && ac_id_valid(r.user_id) && r.iat >= 1 &&
                    ac_keyid_valid(r.user_kid),
                "revocation fields");
    else
        require(r.jws.payload == NULL && r.binding_id[0] == 0, "revocation cleared");
    ac_revocation_clear(&r);
    return 0;
}
