/* Shared by server/h_mandates.c, h_payments.c, h_refunds.c, h_bindings.c, h_authorizations.c,
 * h_tabs.c and h_topups.c (see paydoc.h). */
#include "server/paydoc.h"

#include <stdarg.h>
#include <stdio.h>
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

enum MHD_Result ac_paydoc_bad(struct ac_req *r, enum ac_ec ec, const char *pointer,
                              const char *detail)
{
    return ac_reply_problem(r, ec, detail, json_pack("{s:s}", "pointer", pointer));
}

void *ac_paydoc_begin(struct ac_req *r, enum ac_principal_kind kind, const char *detail,
                      size_t size, void (*ctx_free)(void *), enum MHD_Result *rc)
{
    if (!ac_seq_is_leader(r->app->seq)) {
        *rc = ac_paydoc_leader_only(r);
        return NULL;
    }
    const struct ac_verified *v = r->verified;
    if (v == NULL || v->kind != kind) {
        *rc = ac_reply_problem(r, AC_EC_SIG_KEY_UNKNOWN, detail, NULL);
        return NULL;
    }
    void *x = calloc(1, size);
    if (x == NULL) {
        *rc = ac_reply_problem(r, AC_EC_INTERNAL, "out of memory", NULL);
        return NULL;
    }
    r->hctx = x;
    r->hctx_free = ctx_free;
    return x;
}

/* dst = src, cut to cap - 1 bytes (the sources were validated to fit: this only bounds them) */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "/" + key: the JSON pointer of a top-level member */
static const char *member_ptr(char out[32], const char *key)
{
    out[0] = '/';
    copy_str(out + 1, 31, key ? key : "");
    return out;
}

/* The checks of ac_paydoc_agent_money() after the unpacking, in the order of its contract. */
static int agent_money_check(struct ac_req *r, const struct ac_agent_money_spec *spec, void *cls,
                             struct ac_agent_money *m, enum MHD_Result *rc)
{
    char ptr[32];
    const char *tok = spec->token_key ? m->j.token : NULL;
    enum ac_ec ec;
    struct ac_mandate_brief mb;
    if (!ac_id_valid(m->j.id)) {
        *rc = ac_paydoc_bad(r, AC_EC_ID_INVALID, "/id", NULL);
    } else if (!ac_id_valid(m->j.mandate)) {
        *rc = ac_paydoc_bad(r, AC_EC_ID_INVALID, "/mandate", NULL);
    } else if (!ac_id_valid(m->j.payee)) {
        *rc = ac_paydoc_bad(r, AC_EC_ID_INVALID, member_ptr(ptr, spec->payee_key), NULL);
    } else if (spec->check && !spec->check(r, m, cls, rc)) {
        return 0;
    } else if (!ac_asset_code_valid(m->j.currency)) {
        *rc = ac_paydoc_bad(r, AC_EC_ASSET_INVALID, "/amount/currency", NULL);
    } else if (tok && !ac_asset_code_valid(tok)) {
        *rc = ac_paydoc_bad(r, AC_EC_ASSET_INVALID, member_ptr(ptr, spec->token_key), NULL);
    } else if ((ec = ac_assets_scale(r->app, m->j.currency, &m->scale)) != AC_EC_OK) {
        *rc = ac_paydoc_bad(r, ec, "/amount/currency", NULL);
    } else if (tok && (ec = ac_assets_scale(r->app, tok, &m->token_scale)) != AC_EC_OK) {
        *rc = ac_paydoc_bad(r, ec, member_ptr(ptr, spec->token_key), NULL);
    } else if ((ec = ac_amount_parse(m->j.value, m->scale, &m->amount)) != AC_EC_OK) {
        *rc = ac_paydoc_bad(r, ec, "/amount/value", NULL);
    } else if (m->amount == 0) {
        *rc = ac_paydoc_bad(r, AC_EC_AMOUNT_ZERO, "/amount/value", NULL);
    } else if ((ec = ac_payments_mandate_brief(r->app->payments, m->j.mandate, &mb)) != AC_EC_OK) {
        *rc = ac_paydoc_bad(r, ec, "/mandate", NULL);
    } else if ((ec = ac_registry_merchant_category(r->app->registry, m->j.payee, m->category)) !=
               AC_EC_OK) {
        *rc = ac_paydoc_bad(r, ec, member_ptr(ptr, spec->payee_key), NULL);
    } else {
        copy_str(m->id, sizeof m->id, m->j.id);
        copy_str(m->mandate, sizeof m->mandate, m->j.mandate);
        copy_str(m->payee, sizeof m->payee, m->j.payee);
        copy_str(m->asset, sizeof m->asset, m->j.currency);
        if (tok) copy_str(m->token_asset, sizeof m->token_asset, tok);
        copy_str(m->binding, sizeof m->binding, r->verified->binding_id);
        return 1;
    }
    return 0;
}

int ac_paydoc_agent_money(struct ac_req *r, const struct ac_agent_money_spec *spec, void *cls,
                          struct ac_agent_money *m, enum MHD_Result *rc, const char *fmt, ...)
{
    memset(m, 0, sizeof *m);
    *rc = ac_req_json(r, &m->body);
    if (m->body == NULL) return 0;
    json_error_t e;
    va_list ap;
    va_start(ap, fmt);
    int bad_shape = json_vunpack_ex(m->body, &e, JSON_STRICT, fmt, ap);
    va_end(ap);
    int ok = 0;
    if (bad_shape)
        *rc = ac_reply_problem(r, AC_EC_JSON_SCHEMA, e.text, NULL);
    else
        ok = agent_money_check(r, spec, cls, m, rc);
    json_decref(m->body);
    m->body = NULL;
    memset(&m->j, 0, sizeof m->j);
    return ok;
}
