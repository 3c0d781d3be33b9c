/* GET|POST /v1/whoami (signed: an agent or a merchant key): the verification result of this very
 * request as JSON (server/authn.h ac_verified_json) -- a developer's check that signing works,
 * and the endpoint `ops/bench verify` drives. A POST body is only checked against its
 * Content-Digest; it is not interpreted. */
#include "server/authn.h"
#include "server/handlers.h"
#include "protocol/buf.h"

enum MHD_Result ac_h_whoami(struct ac_req *r)
{
    /* the text written directly (ac_verified_json_text), not through a jansson tree: this is the
     * answer `ops/bench verify` measures */
    struct ac_buf b = {0};
    if (r->verified == NULL || ac_verified_json_text(r->verified, &b) != 0) {
        ac_buf_free(&b);
        return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    }
    return ac_reply_json_text(r, 200, b.p, b.len); /* the reply frees b.p */
}
