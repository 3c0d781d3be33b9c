/* Bindings and revocations: strict parsing of the user-signed documents (see binding.h). */
#include "protocol/binding.h"

#include "protocol/mandate.h"

#include <stdio.h>
#include <string.h>

#define SET_DETAIL(d, s)                                                                           \
    do {                                                                                           \
        if (d) *(d) = (s);                                                                         \
    } while (0)

int ac_keyid_valid(const char *s)
{
    if (s == NULL) return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= AC_JWK_THUMBPRINT_LEN) return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return n == AC_JWK_THUMBPRINT_LEN;
}

/* "L0".."L5" as 0..5, or -1 (protocol/mandate.h owns the names of the levels). */
static int autonomy_level(const char *s)
{
    enum ac_autonomy a;
    return ac_autonomy_parse(s, &a) == 0 ? (int)a : -1;
}

/* Every member of obj must be one of the NULL-terminated names. */
static int only_members(const json_t *obj, const char *const *names)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        (void)v;
        int known = 0;
        for (const char *const *n = names; *n; n++)
            if (strcmp(k, *n) == 0) known = 1;
        if (!known) return 0;
    }
    return 1;
}

/* A member that must be a string accepted by `valid`; copies it to out (cap bytes). */
static int get_str(const json_t *obj, const char *name, int (*valid)(const char *), char *out,
                   size_t cap)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL || !valid(s) || strlen(s) >= cap) return 0;
    memcpy(out, s, strlen(s) + 1);
    return 1;
}

/* A member that must be an integer time in [1, AC_BINDING_TIME_MAX]. */
static int get_time(const json_t *obj, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v)) return 0;
    json_int_t t = json_integer_value(v);
    if (t < 1 || t > AC_BINDING_TIME_MAX) return 0;
    *out = (int64_t)t;
    return 1;
}

static int version_ok(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "ver");
    return json_is_integer(v) && json_integer_value(v) == AC_BINDING_VERSION;
}

/* The JWS layer and the protected header shared by both documents. */
static enum ac_ec parse_jws(const char *compact, size_t len, const char *typ, enum ac_ec invalid,
                            struct ac_jws *jws, char kid[AC_JWK_THUMBPRINT_SIZE],
                            const char **detail)
{
    enum ac_ec ec = ac_jws_parse(compact, len, jws, detail);
    if (ec != AC_EC_OK) return ec;
    if (jws->typ == NULL || strcmp(jws->typ, typ) != 0) {
        SET_DETAIL(detail, invalid == AC_EC_BINDING_INVALID ? "typ must be \"" AC_BINDING_TYP "\""
                                                            : "typ must be \"" AC_REVOCATION_TYP
                                                              "\"");
        return invalid;
    }
    if (!ac_keyid_valid(jws->kid)) {
        SET_DETAIL(detail, "kid must be the rfc 7638 thumbprint of the signing user key");
        return invalid;
    }
    memcpy(kid, jws->kid, AC_JWK_THUMBPRINT_SIZE);
    if (jws->payload_json == NULL) {
        SET_DETAIL(detail, "payload is not one json object");
        return invalid;
    }
    return AC_EC_OK;
}

static enum ac_ec binding_payload(struct ac_binding_doc *b, const char **detail)
{
    static const char *const members[] = {"ver",          "id",  "iss", "sub", "cnf", "runtime",
                                          "max_autonomy", "iat", "nbf", "exp", NULL};
    static const char *const runtime_members[] = {"software", "model", "environment", NULL};
    const json_t *p = b->jws.payload_json;
#define BAD(msg)                                                                                   \
    do {                                                                                           \
        SET_DETAIL(detail, msg);                                                                   \
        return AC_EC_BINDING_INVALID;                                                              \
    } while (0)
    if (!only_members(p, members)) BAD("unknown payload member");
    if (!version_ok(p)) BAD("ver must be the integer 1");
    if (!get_str(p, "id", ac_id_valid, b->id, sizeof b->id))
        BAD("id must be 1-64 characters of [A-Za-z0-9._:-]");
    if (!get_str(p, "iss", ac_id_valid, b->user_id, sizeof b->user_id))
        BAD("iss must be a user id");
    if (!get_str(p, "sub", ac_id_valid, b->agent_id, sizeof b->agent_id))
        BAD("sub must be an agent id");

    const json_t *cnf = json_object_get(p, "cnf");
    if (!json_is_object(cnf)) BAD("cnf must be an object");
    static const char *const cnf_members[] = {"jwk", NULL};
    if (!only_members(cnf, cnf_members) || !json_is_object(json_object_get(cnf, "jwk")))
        BAD("cnf must be {\"jwk\": <agent public jwk>}");
    enum ac_ec ec = ac_jwk_import_public(json_object_get(cnf, "jwk"), &b->agent_key, detail);
    if (ec != AC_EC_OK) return ec;
    if (ac_jwk_thumbprint(b->agent_key, b->agent_kid) != 0) return AC_EC_INTERNAL;

    const json_t *rt = json_object_get(p, "runtime");
    if (!json_is_object(rt) || !only_members(rt, runtime_members))
        BAD("runtime must be {\"software\", \"model\", \"environment\"}");
    if (!get_str(rt, "software", ac_runtime_hexdigest_valid, b->software, sizeof b->software))
        BAD("runtime.software must be \"sha-256:\" and 64 lowercase hex digits");
    if (!get_str(rt, "model", ac_runtime_model_valid, b->model, sizeof b->model))
        BAD("runtime.model must be 1-128 printable ascii characters");
    if (!get_str(rt, "environment", ac_runtime_hexdigest_valid, b->environment,
                 sizeof b->environment))
        BAD("runtime.environment must be \"sha-256:\" and 64 lowercase hex digits");
    ec = ac_runtime_digest(b->software, b->model, b->environment, b->runtime_digest);
    if (ec != AC_EC_OK) return ec;

    b->max_autonomy = autonomy_level(json_string_value(json_object_get(p, "max_autonomy")));
    if (b->max_autonomy < 0) BAD("max_autonomy must be one of \"L0\" .. \"L5\"");

    if (!get_time(p, "iat", &b->iat)) BAD("iat must be an integer time (unix seconds)");
    if (!get_time(p, "exp", &b->exp)) BAD("exp must be an integer time (unix seconds)");
    b->nbf = b->iat;
    if (json_object_get(p, "nbf") != NULL) {
        if (!get_time(p, "nbf", &b->nbf)) BAD("nbf must be an integer time (unix seconds)");
        b->has_nbf = 1;
    }
    if (b->exp <= b->iat) BAD("exp must be after iat");
    if (b->exp - b->iat > AC_BINDING_MAX_LIFETIME) BAD("exp must be at most 366 days after iat");
    if (b->nbf < b->iat || b->nbf >= b->exp) BAD("nbf must lie in [iat, exp)");
#undef BAD
    return AC_EC_OK;
}

enum ac_ec ac_binding_parse(const char *compact, size_t len, struct ac_binding_doc *out,
                            const char **detail)
{
    memset(out, 0, sizeof *out);
    enum ac_ec ec = parse_jws(compact, len, AC_BINDING_TYP, AC_EC_BINDING_INVALID, &out->jws,
                              out->user_kid, detail);
    if (ec == AC_EC_OK) ec = binding_payload(out, detail);
    if (ec != AC_EC_OK) ac_binding_clear(out);
    return ec;
}

void ac_binding_clear(struct ac_binding_doc *b)
{
    if (b == NULL) return;
    ac_jws_clear(&b->jws);
    EVP_PKEY_free(b->agent_key);
    memset(b, 0, sizeof *b);
}

enum ac_ec ac_binding_check_time(const struct ac_binding_doc *b, int64_t now, const char **detail)
{
    if (b->exp <= now) {
        SET_DETAIL(detail, "the binding's exp has passed");
        return AC_EC_BINDING_EXPIRED;
    }
    if (b->iat > now + AC_BINDING_CLOCK_SKEW) {
        SET_DETAIL(detail, "iat lies in the future");
        return AC_EC_BINDING_INVALID;
    }
    return AC_EC_OK;
}

enum ac_ec ac_revocation_parse(const char *compact, size_t len, struct ac_revocation_doc *out,
                               const char **detail)
{
    static const char *const members[] = {"ver", "binding", "iss", "iat", NULL};
    memset(out, 0, sizeof *out);
    enum ac_ec ec = parse_jws(compact, len, AC_REVOCATION_TYP, AC_EC_REVOCATION_INVALID, &out->jws,
                              out->user_kid, detail);
    const json_t *p = out->jws.payload_json;
    const char *why = NULL;
    if (ec != AC_EC_OK) {
        ac_revocation_clear(out);
        return ec;
    }
    if (!only_members(p, members))
        why = "unknown payload member";
    else if (!version_ok(p))
        why = "ver must be the integer 1";
    else if (!get_str(p, "binding", ac_id_valid, out->binding_id, sizeof out->binding_id))
        why = "binding must be a binding id";
    else if (!get_str(p, "iss", ac_id_valid, out->user_id, sizeof out->user_id))
        why = "iss must be a user id";
    else if (!get_time(p, "iat", &out->iat))
        why = "iat must be an integer time (unix seconds)";
    if (why) {
        SET_DETAIL(detail, why);
        ac_revocation_clear(out);
        return AC_EC_REVOCATION_INVALID;
    }
    return AC_EC_OK;
}

void ac_revocation_clear(struct ac_revocation_doc *r)
{
    if (r == NULL) return;
    ac_jws_clear(&r->jws);
    memset(r, 0, sizeof *r);
}
