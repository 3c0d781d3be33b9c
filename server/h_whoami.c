/* GET|POST /v1/whoami (signed: an agent or a merchant key): the verification result of this very
 * request as JSON (server/authn.h ac_verified_json) -- a developer's check that signing works,
 * and the endpoint `ops/bench verify` drives. A POST body is only checked against its
 * Content-Digest; it is not interpreted. */
#include "server/authn.h"
#include "server/handlers.h"

enum MHD_Result ac_h_whoami(struct ac_req *r)
{
    json_t *j = r->verified ? ac_verified_json(r->verified) : NULL;
    if (j == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return ac_reply_json(r, 200, j);
}
