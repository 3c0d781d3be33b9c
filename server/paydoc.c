/* Shared by server/h_mandates.c, h_payments.c, h_refunds.c, h_bindings.c and h_authorizations.c
 * (see paydoc.h). */
#include "server/paydoc.h"

#include <stdlib.h>
#include <string.h>

#include "keys/registry.h"
#include "ledger/payments.h"
#include "protocol/b64.h"
#include "server/app.h"
#include "server/authn.h"

enum MHD_Result ac_paydoc_body_jws(struct ac_req *r, char **out)
{
    *out = NULL;
    json_t *body;
    enum MHD_Result rc = ac_req_json(r, &body);
    if (body == NULL) return rc;
    json_t *s;
    json_error_t e;
    if (json_unpack_ex(body, &e, JSON_STRICT, "{s:o}", "jws", &s) || !json_is_string(s)) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_JSON_SCHEMA, "expected {\"jws\": \"<compact jws>\"}",
                                NULL);
    }
    size_t len = json_string_length(s);
    const char *v = json_string_value(s);
    if (len > AC_JWS_MAX_LEN || memchr(v, '\0', len) != NULL) {
        json_decref(body);
        return ac_reply_problem(r, AC_EC_JWS_MALFORMED, "jws too long or not text", NULL);
    }
    *out = strdup(v);
    json_decref(body);
    if (*out == NULL) return ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
    return MHD_YES;
}

int ac_paydoc_jws(struct ac_req *r, char **text, struct ac_jws *j, enum MHD_Result *rc)
{
    *rc = ac_paydoc_body_jws(r, text);
    if (*text == NULL) return 0;
    const char *detail = NULL;
    enum ac_ec ec = ac_jws_parse(*text, strlen(*text), j, &detail);
    if (ec != AC_EC_OK) {
        *rc = ac_reply_problem(r, ec, detail, NULL);
        return 0;
    }
    return 1;
}

enum ac_ec ac_paydoc_verify_user(struct ac_req *r, const struct ac_jws *jws, const char *user,
                                 const char *kid)
{
    EVP_PKEY *key = NULL;
    enum ac_ec ec = ac_registry_user_key(r->app->registry, user, kid, &key);
    if (ec == AC_EC_OK) ec = ac_jws_verify(jws, key);
    EVP_PKEY_free(key);
    return ec;
}

json_t *ac_paydoc_evidence_json(uint64_t seq, const uint8_t leaf[32])
{
    char b64[48];
    ac_b64_encode(leaf, 32, b64, 0);
    return json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "leaf_hash", b64);
}

enum MHD_Result ac_paydoc_problem(struct ac_req *r, enum ac_ec ec, const struct ac_doc_err *err)
{
    json_t *extra = NULL;
    if (err && err->pointer[0]) extra = json_pack("{s:s}", "pointer", err->pointer);
    return ac_reply_problem(r, ec, err && err->detail && err->detail[0] ? err->detail : NULL,
                            extra);
}

enum MHD_Result ac_paydoc_leader_only(struct ac_req *r)
{
    return ac_reply_problem(r, AC_EC_NOT_LEADER, "payments are served by the writer node", NULL);
}

void ac_paydoc_signed(const struct ac_req *r, struct ac_pay_signed *out)
{
    const struct ac_verified *v = r->verified;
    *out = (struct ac_pay_signed){.keyid = v->keyid,
                                  .base = v->base,
                                  .base_len = v->base_len,
                                  .sig = v->sig,
                                  .sig_len = v->siglen,
                                  .body = (const uint8_t *)ac_buf_str(&r->body),
                                  .body_len = r->body.len};
}
