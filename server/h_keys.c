/* GET /.well-known/agentclear/keys: the server's public signing keys as a JWKS (RFC 7517 §5).
 * Every key not yet expired, the current one first, each with kid (RFC 7638 thumbprint), alg,
 * use "sig", nbf and exp. Without a keyring (AGENTCLEAR_KEYS_DIR unset): {"keys":[]}. */
#include <time.h>

#include "keys/keyring.h"
#include "server/handlers.h"

enum MHD_Result ac_h_keys(struct ac_req *r)
{
    json_t *jwks = ac_keyring_jwks(r->app->keyring, (int64_t)time(NULL));
    if (jwks == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, 200, jwks);
}
