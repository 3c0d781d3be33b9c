/* protocol/mandate.c -- mandate and mandate-revocation payloads; see mandate.h. */
#include "protocol/mandate.h"

#include <stdio.h>
#include <string.h>

static const char *const op_names[] = {"purchase", "topup", "micropay"};

const char *ac_op_name(enum ac_op op)
{
    switch (op) {
    case AC_OP_PURCHASE:
        return op_names[0];
    case AC_OP_TOPUP:
        return op_names[1];
    case AC_OP_MICROPAY:
        return op_names[2];
    }
    return NULL;
}

enum ac_op ac_op_from_name(const char *name)
{
    for (unsigned i = 0; i < 3; i++)
        if (name && strcmp(name, op_names[i]) == 0) return (enum ac_op)(1u << i);
    return (enum ac_op)0;
}

const char *ac_autonomy_name(enum ac_autonomy a)
{
    static const char *const names[] = {"L0", "L1", "L2", "L3", "L4", "L5"};
    return (unsigned)a <= AC_L5 ? names[a] : NULL;
}

int ac_autonomy_parse(const char *s, enum ac_autonomy *out)
{
    if (s == NULL || s[0] != 'L' || s[1] < '0' || s[1] > '5' || s[2] != '\0') return -1;
    *out = (enum ac_autonomy)(s[1] - '0');
    return 0;
}

static int digit2(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

int ac_tz_parse(const char *s, int32_t *offset_s)
{
    if (s == NULL || strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return -1;
    int hh = digit2(s + 1), mm = digit2(s + 4);
    if (hh < 0 || mm < 0 || hh > 14 || mm > 59) return -1;
    int32_t v = (int32_t)(hh * 3600 + mm * 60);
    if (s[0] == '-') {
        if (v == 0) return -1; /* "-00:00" means "unknown offset" in RFC 3339: refuse */
        v = -v;
    }
    if (v < AC_TZ_MIN || v > AC_TZ_MAX) return -1;
    *offset_s = v;
    return 0;
}

char *ac_tz_format(int32_t offset_s, char out[AC_TZ_SIZE])
{
    char sign = offset_s < 0 ? '-' : '+';
    long a = offset_s < 0 ? -(long)offset_s : (long)offset_s;
    long hh = a / 3600 % 100, mm = a % 3600 / 60;
    snprintf(out, AC_TZ_SIZE, "%c%02ld:%02ld", sign, hh, mm);
    return out;
}

enum ac_ec ac_mandate_jws_check(const struct ac_jws *jws, const char **detail)
{
    return ac_doc_jws_check(jws, AC_MANDATE_TYP, detail) == 0 ? AC_EC_OK : AC_EC_MANDATE_INVALID;
}

const char *ac_mandate_peek_asset(const json_t *payload)
{
    const json_t *a = json_object_get(payload, "asset");
    if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) return NULL;
    return ac_asset_code_valid(json_string_value(a)) ? json_string_value(a) : NULL;
}

static const char *const top_members[] = {
    "ver",    "id",    "iss",        "bindings",      "agents", "ops",
    "payees", "asset", "max_per_tx", "min_per_tx",    "caps",   "max_uses",
    "nbf",    "exp",   "autonomy",   "step_up_above", "tz",     NULL};
static const char *const payee_members[] = {"merchants", "categories", NULL};
static const char *const cap_members[] = {"day", "week", "month", "total", NULL};

/* a string member through ac_doc_text, for short enumerations */
static int short_string(const json_t *obj, const char *name, char *out, size_t cap,
                        struct ac_doc_err *err)
{
    return ac_doc_text(obj, "", name, 1, out, cap, err);
}

static enum ac_ec parse(const json_t *p, unsigned scale, struct ac_mandate *m,
                        struct ac_doc_err *err)
{
    int64_t v;
    if (!json_is_object(p)) {
        ac_doc_err_set(err, "", NULL, "payload must be a json object");
        return AC_EC_MANDATE_INVALID;
    }
    if (ac_doc_only(p, "", top_members, err) < 0) return AC_EC_MANDATE_INVALID;
    if (ac_doc_int(p, "", "ver", 1, 0, INT64_MAX, &v, err) < 0) return AC_EC_MANDATE_INVALID;
    if (v != AC_MANDATE_VERSION) {
        ac_doc_err_set(err, "", "ver", "unsupported version");
        return AC_EC_MANDATE_INVALID;
    }
    if (ac_doc_id(p, "", "id", 1, m->id, err) < 0) return AC_EC_MANDATE_INVALID;
    if (ac_doc_id(p, "", "iss", 1, m->iss, err) < 0) return AC_EC_MANDATE_INVALID;

    /* who: bindings and/or agents */
    if (ac_doc_id_list(p, "", "bindings", 0, AC_MANDATE_LIST_MAX, m->bindings, &m->n_bindings,
                       err) < 0 ||
        ac_doc_id_list(p, "", "agents", 0, AC_MANDATE_LIST_MAX, m->agents, &m->n_agents, err) < 0)
        return AC_EC_MANDATE_INVALID;
    if (m->n_bindings + m->n_agents == 0) {
        ac_doc_err_set(err, "", "agents", "name at least one binding or agent");
        return AC_EC_MANDATE_INVALID;
    }

    /* what: operations */
    const json_t *ops = json_object_get(p, "ops");
    if (ops == NULL) {
        ac_doc_err_set(err, "", "ops", "required member is missing");
        return AC_EC_MANDATE_INVALID;
    }
    if (!json_is_array(ops) || json_array_size(ops) == 0 || json_array_size(ops) > 3) {
        ac_doc_err_set(err, "", "ops", "must be a non-empty array of distinct operations");
        return AC_EC_MANDATE_INVALID;
    }
    size_t i;
    const json_t *o;
    json_array_foreach(ops, i, o)
    {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        enum ac_op op = json_is_string(o) && strlen(json_string_value(o)) == json_string_length(o)
                            ? ac_op_from_name(json_string_value(o))
                            : (enum ac_op)0;
        if (op == 0) {
            ac_doc_err_set(err, "/ops", idx, "must be purchase, topup or micropay");
            return AC_EC_MANDATE_INVALID;
        }
        if (m->ops & op) {
            ac_doc_err_set(err, "/ops", idx, "duplicate entry");
            return AC_EC_MANDATE_INVALID;
        }
        m->ops |= op;
    }

    /* to whom */
    const json_t *payees = json_object_get(p, "payees");
    if (payees == NULL || !json_is_object(payees)) {
        ac_doc_err_set(err, "", "payees",
                       payees ? "must be an object" : "required member is missing");
        return AC_EC_MANDATE_INVALID;
    }
    if (ac_doc_only(payees, "/payees", payee_members, err) < 0 ||
        ac_doc_id_list(payees, "/payees", "merchants", 0, AC_MANDATE_LIST_MAX, m->merchants,
                       &m->n_merchants, err) < 0 ||
        ac_doc_id_list(payees, "/payees", "categories", 0, AC_MANDATE_LIST_MAX, m->categories,
                       &m->n_categories, err) < 0)
        return AC_EC_MANDATE_INVALID;
    if (m->n_merchants + m->n_categories == 0) {
        ac_doc_err_set(err, "", "payees", "name at least one merchant or category");
        return AC_EC_MANDATE_INVALID;
    }

    /* how much */
    if (short_string(p, "asset", m->asset, sizeof m->asset, err) < 0 ||
        !ac_asset_code_valid(m->asset)) {
        if (json_object_get(p, "asset") != NULL) /* present but not an asset code */
            ac_doc_err_set(err, "", "asset", "must be an asset code of 1-16 [A-Z0-9_]");
        return AC_EC_MANDATE_INVALID;
    }
    m->scale = scale;
    if (ac_doc_amount(p, "", "max_per_tx", 1, scale, 1, &m->max_per_tx, err) < 0)
        return AC_EC_MANDATE_INVALID;
    m->min_per_tx = AC_MANDATE_UNSET;
    if (ac_doc_amount(p, "", "min_per_tx", 0, scale, 1, &m->min_per_tx, err) < 0)
        return AC_EC_MANDATE_INVALID;
    if (m->min_per_tx != AC_MANDATE_UNSET && m->min_per_tx > m->max_per_tx) {
        ac_doc_err_set(err, "", "min_per_tx", "must not exceed max_per_tx");
        return AC_EC_MANDATE_INVALID;
    }
    m->cap_day = m->cap_week = m->cap_month = m->cap_total = AC_MANDATE_UNSET;
    const json_t *caps = json_object_get(p, "caps");
    if (caps) {
        if (!json_is_object(caps) || json_object_size(caps) == 0) {
            ac_doc_err_set(err, "", "caps", "must be an object naming at least one cap");
            return AC_EC_MANDATE_INVALID;
        }
        if (ac_doc_only(caps, "/caps", cap_members, err) < 0 ||
            ac_doc_amount(caps, "/caps", "day", 0, scale, 1, &m->cap_day, err) < 0 ||
            ac_doc_amount(caps, "/caps", "week", 0, scale, 1, &m->cap_week, err) < 0 ||
            ac_doc_amount(caps, "/caps", "month", 0, scale, 1, &m->cap_month, err) < 0 ||
            ac_doc_amount(caps, "/caps", "total", 0, scale, 1, &m->cap_total, err) < 0)
            return AC_EC_MANDATE_INVALID;
    }
    m->max_uses = AC_MANDATE_UNSET;
    if (ac_doc_int(p, "", "max_uses", 0, 1, AC_MANDATE_USES_MAX, &m->max_uses, err) < 0)
        return AC_EC_MANDATE_INVALID;

    /* when */
    if (ac_doc_int(p, "", "nbf", 1, 1, AC_MANDATE_TIME_MAX, &m->nbf, err) < 0 ||
        ac_doc_int(p, "", "exp", 1, 1, AC_MANDATE_TIME_MAX, &m->exp, err) < 0)
        return AC_EC_MANDATE_INVALID;
    if (m->exp <= m->nbf) {
        ac_doc_err_set(err, "", "exp", "must be after nbf");
        return AC_EC_MANDATE_INVALID;
    }

    /* how autonomously */
    char buf[8] = "";
    if (short_string(p, "autonomy", buf, sizeof buf, err) < 0) {
        if (json_is_string(json_object_get(p, "autonomy")))
            ac_doc_err_set(err, "", "autonomy", "must be L0, L1, L2, L3, L4 or L5");
        return AC_EC_MANDATE_INVALID;
    }
    if (ac_autonomy_parse(buf, &m->autonomy) != 0) {
        ac_doc_err_set(err, "", "autonomy", "must be L0, L1, L2, L3, L4 or L5");
        return AC_EC_MANDATE_INVALID;
    }
    m->step_up_above = AC_MANDATE_UNSET;
    if (ac_doc_amount(p, "", "step_up_above", 0, scale, 0, &m->step_up_above, err) < 0)
        return AC_EC_MANDATE_INVALID;

    /* in which time zone the periods turn over */
    m->tz_offset_s = 0;
    if (json_object_get(p, "tz")) {
        buf[0] = '\0';
        int rc = ac_doc_text(p, "", "tz", 1, buf, sizeof buf, err);
        if (rc < 0 && !json_is_string(json_object_get(p, "tz"))) return AC_EC_MANDATE_INVALID;
        if (rc < 0 || ac_tz_parse(buf, &m->tz_offset_s) != 0) {
            ac_doc_err_set(err, "", "tz", "must be a utc offset +HH:MM or -HH:MM, -12:00..+14:00");
            return AC_EC_MANDATE_INVALID;
        }
    }
    return AC_EC_OK;
}

enum ac_ec ac_mandate_parse(const json_t *payload, unsigned scale, struct ac_mandate *out,
                            struct ac_doc_err *err)
{
    if (out == NULL || scale > AC_SCALE_MAX) return AC_EC_INTERNAL;
    memset(out, 0, sizeof *out);
    ac_doc_err_clear(err);
    enum ac_ec rc = parse(payload, scale, out, err);
    if (rc != AC_EC_OK) memset(out, 0, sizeof *out);
    return rc;
}

/* set a member, stealing v; 0 or -1 */
static int put(json_t *o, const char *name, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(o, name, v);
}

static json_t *id_array(const char (*ids)[AC_ID_MAX + 1], unsigned n)
{
    json_t *a = json_array();
    for (unsigned i = 0; a && i < n; i++) {
        if (json_array_append_new(a, json_string(ids[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *amount_str(int64_t units, unsigned scale)
{
    char buf[AC_AMOUNT_STR_MAX];
    return json_string(ac_amount_format(units, scale, buf));
}

json_t *ac_mandate_to_json(const struct ac_mandate *m)
{
    json_t *o = json_object(), *ops = json_array(), *payees = json_object(), *caps = NULL;
    char tz[AC_TZ_SIZE];
    int bad = o == NULL || ops == NULL || payees == NULL;
    for (unsigned bit = 1; !bad && bit <= AC_OP_MICROPAY; bit <<= 1)
        if (m->ops & bit) bad = json_array_append_new(ops, json_string(ac_op_name(bit))) != 0;
    if (!bad && m->n_merchants)
        bad = put(payees, "merchants", id_array(m->merchants, m->n_merchants));
    if (!bad && m->n_categories)
        bad = put(payees, "categories", id_array(m->categories, m->n_categories));
    const struct {
        const char *name;
        int64_t v;
    } capv[] = {{"day", m->cap_day},
                {"week", m->cap_week},
                {"month", m->cap_month},
                {"total", m->cap_total}};
    for (unsigned i = 0; !bad && i < 4; i++) {
        if (capv[i].v == AC_MANDATE_UNSET) continue;
        if (caps == NULL && (caps = json_object()) == NULL) bad = 1;
        if (!bad) bad = put(caps, capv[i].name, amount_str(capv[i].v, m->scale));
    }
    bad = bad || put(o, "ver", json_integer(AC_MANDATE_VERSION)) ||
          put(o, "id", json_string(m->id)) || put(o, "iss", json_string(m->iss)) ||
          (m->n_bindings && put(o, "bindings", id_array(m->bindings, m->n_bindings))) ||
          (m->n_agents && put(o, "agents", id_array(m->agents, m->n_agents))) ||
          put(o, "ops", json_incref(ops)) || put(o, "payees", json_incref(payees)) ||
          put(o, "asset", json_string(m->asset)) ||
          put(o, "max_per_tx", amount_str(m->max_per_tx, m->scale)) ||
          (m->min_per_tx != AC_MANDATE_UNSET &&
           put(o, "min_per_tx", amount_str(m->min_per_tx, m->scale))) ||
          (caps && put(o, "caps", json_incref(caps))) ||
          (m->max_uses != AC_MANDATE_UNSET && put(o, "max_uses", json_integer(m->max_uses))) ||
          put(o, "nbf", json_integer(m->nbf)) || put(o, "exp", json_integer(m->exp)) ||
          put(o, "autonomy", json_string(ac_autonomy_name(m->autonomy))) ||
          (m->step_up_above != AC_MANDATE_UNSET &&
           put(o, "step_up_above", amount_str(m->step_up_above, m->scale))) ||
          put(o, "tz", json_string(ac_tz_format(m->tz_offset_s, tz)));
    json_decref(ops);
    json_decref(payees);
    json_decref(caps);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int listed(const char (*ids)[AC_ID_MAX + 1], unsigned n, const char *s)
{
    if (s == NULL || s[0] == '\0') return 0;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(ids[i], s) == 0) return 1;
    return 0;
}

int ac_mandate_covers_agent(const struct ac_mandate *m, const char *binding_id,
                            const char *agent_id)
{
    return listed(m->bindings, m->n_bindings, binding_id) ||
           listed(m->agents, m->n_agents, agent_id);
}

int ac_mandate_payee_scope(const struct ac_mandate *m, const char *merchant, const char *category)
{
    if (listed(m->merchants, m->n_merchants, merchant)) return 2;
    if (listed(m->categories, m->n_categories, category)) return 1;
    return 0;
}

/* ---- revocation ----------------------------------------------------------------------------- */

enum ac_ec ac_mandate_revocation_jws_check(const struct ac_jws *jws, const char **detail)
{
    return ac_doc_jws_check(jws, AC_MANDATE_REVOCATION_TYP, detail) == 0 ? AC_EC_OK
                                                                         : AC_EC_REVOCATION_INVALID;
}

static const char *const rev_members[] = {"ver", "mandate", "iss", "iat", NULL};

enum ac_ec ac_mandate_revocation_parse(const json_t *payload, struct ac_mandate_revocation *out,
                                       struct ac_doc_err *err)
{
    if (out == NULL) return AC_EC_INTERNAL;
    memset(out, 0, sizeof *out);
    ac_doc_err_clear(err);
    int64_t ver = 0;
    if (!json_is_object(payload)) {
        ac_doc_err_set(err, "", NULL, "payload must be a json object");
    } else if (ac_doc_only(payload, "", rev_members, err) == 0 &&
               ac_doc_int(payload, "", "ver", 1, 0, INT64_MAX, &ver, err) > 0) {
        if (ver != AC_MANDATE_VERSION) {
            ac_doc_err_set(err, "", "ver", "unsupported version");
        } else if (ac_doc_id(payload, "", "mandate", 1, out->mandate, err) > 0 &&
                   ac_doc_id(payload, "", "iss", 1, out->iss, err) > 0 &&
                   ac_doc_int(payload, "", "iat", 1, 1, AC_MANDATE_TIME_MAX, &out->iat, err) > 0) {
            return AC_EC_OK;
        }
    }
    memset(out, 0, sizeof *out);
    return AC_EC_REVOCATION_INVALID;
}

int ac_mandate_revocation_matches(const struct ac_mandate_revocation *r, const struct ac_mandate *m)
{
    return strcmp(r->mandate, m->id) == 0 && strcmp(r->iss, m->iss) == 0;
}
