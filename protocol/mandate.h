/* protocol/mandate.h -- the mandate: a user-signed statement of what an agent may pay, to whom,
 * how much, how often, until when, and how autonomously; and its revocation.
 *
 * A mandate travels as a compact JWS (protocol/jose.h), EdDSA or ES256, with the protected header
 * typ "agentclear-mandate+jws" and kid = the RFC 7638 thumbprint of the signing user key. The
 * payload (docs/mandates.md has the normative description and an example):
 *
 *   ver            1
 *   id             client-chosen mandate id (ac_id_valid)
 *   iss            the user id (the signing key must be registered to this user)
 *   bindings       [binding ids]   \ at least one of the two; the mandate applies to a request
 *   agents         [agent ids]     / whose binding id or agent id is listed
 *   ops            ["purchase" | "topup" | "micropay", ...]  non-empty, no duplicates
 *   payees         {"merchants": [merchant ids], "categories": [category ids]}  at least one
 *   asset          asset code (ac_asset_code_valid); amounts below are at that asset's scale
 *   max_per_tx     decimal string > 0
 *   min_per_tx     decimal string > 0, <= max_per_tx                           (optional)
 *   caps           {"day", "week", "month", "total": decimal string > 0}  at least one (optional)
 *   max_uses       integer 1..1e9                                              (optional)
 *   nbf, exp       unix seconds, 1 <= nbf < exp <= 253402300799 (9999-12-31T23:59:59Z)
 *   autonomy       "L0".."L5"
 *   step_up_above  decimal string >= 0                                         (optional)
 *   tz             fixed UTC offset "+HH:MM" / "-HH:MM", -12:00..+14:00, default "+00:00"
 *
 * Unknown members are refused at every level (a security document: a field the server does not
 * understand must not be silently ignored). Lists hold at most AC_MANDATE_LIST_MAX entries.
 *
 * Who checks what: the caller parses the JWS (ac_jws_parse), checks the header
 * (ac_mandate_jws_check), looks up the key by kid, verifies the signature (ac_jws_verify) and
 * checks that the key belongs to the user named by "iss"; this module validates the payload. */
#ifndef AC_MANDATE_H
#define AC_MANDATE_H

#include <stdint.h>

#include <jansson.h>

#include "protocol/amount.h"
#include "protocol/errors.h"
#include "protocol/jdoc.h"
#include "protocol/jose.h"

#define AC_MANDATE_TYP "agentclear-mandate+jws"
#define AC_MANDATE_REVOCATION_TYP "agentclear-mandate-revocation+jws"

#define AC_MANDATE_VERSION 1
/* Entries per list (bindings, agents, merchants, categories). */
#define AC_MANDATE_LIST_MAX 32
/* Largest accepted max_uses. */
#define AC_MANDATE_USES_MAX 1000000000
/* Latest accepted time: 9999-12-31T23:59:59Z. */
#define AC_MANDATE_TIME_MAX 253402300799LL
/* Bounds of the tz offset in seconds: -12:00 .. +14:00. */
#define AC_TZ_MIN (-12 * 3600)
#define AC_TZ_MAX (14 * 3600)
/* "+HH:MM" and the NUL */
#define AC_TZ_SIZE 7

/* Marks an absent optional amount or count. */
#define AC_MANDATE_UNSET (-1)

/* Operations, as a bit set. */
enum ac_op {
    AC_OP_PURCHASE = 1u,
    AC_OP_TOPUP = 2u,
    AC_OP_MICROPAY = 4u,
};
#define AC_OP__ALL 7u

/* Autonomy levels (docs/mandates.md has the definitions). The order matters: a higher level
 * grants strictly more; the effective level is the minimum of the binding's and the mandate's. */
enum ac_autonomy {
    AC_L0 = 0, /* suggest only: never pays */
    AC_L1 = 1, /* every payment confirmed by the user */
    AC_L2 = 2, /* metered ops (micropay, topup) to named merchants up to the threshold */
    AC_L3 = 3, /* any op to named merchants up to the threshold */
    AC_L4 = 4, /* any op to any payee in scope (named or by category) up to the threshold */
    AC_L5 = 5, /* acts freely within the mandate: no step-up threshold */
};

/* "purchase" / "topup" / "micropay" for one op bit; NULL for anything else. */
const char *ac_op_name(enum ac_op op);
/* The op for a name (exact, case-sensitive); 0 when unknown. */
enum ac_op ac_op_from_name(const char *name);
/* "L0".."L5"; NULL for a value outside the enum. */
const char *ac_autonomy_name(enum ac_autonomy a);
/* Parse "L0".."L5" into *out: 0, or -1 (unchanged). */
int ac_autonomy_parse(const char *s, enum ac_autonomy *out);

/* Parse a fixed UTC offset "+HH:MM" or "-HH:MM" (HH 00..14, MM 00..59, within AC_TZ_MIN..
 * AC_TZ_MAX; "-00:00" is refused, write "+00:00") into seconds east of UTC. 0, or -1 (unchanged).
 */
int ac_tz_parse(const char *s, int32_t *offset_s);
/* Format seconds east of UTC as "+HH:MM" (whole minutes; out holds AC_TZ_SIZE). Returns out. */
char *ac_tz_format(int32_t offset_s, char out[AC_TZ_SIZE]);

/* A validated mandate payload. Plain data, no pointers: copy it freely. */
struct ac_mandate {
    char id[AC_ID_MAX + 1];
    char iss[AC_ID_MAX + 1];
    unsigned n_bindings, n_agents, n_merchants, n_categories;
    char bindings[AC_MANDATE_LIST_MAX][AC_ID_MAX + 1];
    char agents[AC_MANDATE_LIST_MAX][AC_ID_MAX + 1];
    char merchants[AC_MANDATE_LIST_MAX][AC_ID_MAX + 1];
    char categories[AC_MANDATE_LIST_MAX][AC_ID_MAX + 1];
    uint32_t ops; /* AC_OP_* bits, never 0 */
    char asset[AC_ASSET_MAX + 1];
    unsigned scale; /* the asset's scale the amounts were parsed at */
    int64_t max_per_tx;
    int64_t min_per_tx; /* AC_MANDATE_UNSET when absent */
    int64_t cap_day;    /* each cap: AC_MANDATE_UNSET when absent */
    int64_t cap_week;
    int64_t cap_month;
    int64_t cap_total;
    int64_t max_uses; /* AC_MANDATE_UNSET when absent */
    int64_t nbf, exp; /* unix seconds; valid for nbf <= t < exp */
    enum ac_autonomy autonomy;
    int64_t step_up_above; /* AC_MANDATE_UNSET when absent */
    int32_t tz_offset_s;   /* seconds east of UTC */
};

/* Check the protected header of a parsed mandate JWS (typ AC_MANDATE_TYP, thumbprint kid, JSON
 * object payload). Returns AC_EC_OK, or AC_EC_MANDATE_INVALID with *detail set (detail may be
 * NULL). Does not verify the signature. */
enum ac_ec ac_mandate_jws_check(const struct ac_jws *jws, const char **detail);

/* The asset code named by a payload, so the caller can look its scale up before
 * ac_mandate_parse; NULL when "asset" is missing or not a valid asset code. Borrowed from
 * payload. */
const char *ac_mandate_peek_asset(const json_t *payload);

/* Validate a mandate payload (the JWS payload object) whose asset has `scale` digits (the caller
 * looked the asset up; an unknown asset is the caller's AC_EC_ASSET_UNKNOWN). Returns AC_EC_OK
 * with *out filled, or AC_EC_MANDATE_INVALID with err set (err may be NULL) and *out zeroed. Does
 * not judge time (an expired mandate parses). */
enum ac_ec ac_mandate_parse(const json_t *payload, unsigned scale, struct ac_mandate *out,
                            struct ac_doc_err *err);

/* The payload of a mandate as a JSON object, members as in the format above (optional members
 * only when set): ac_mandate_parse(ac_mandate_to_json(m), m->scale) gives m back. A new
 * reference, or NULL on allocation failure. Also the body of GET /v1/mandates/{id}'s "mandate". */
json_t *ac_mandate_to_json(const struct ac_mandate *m);

/* Whether the mandate applies to a binding id / agent id (either may be NULL). 1 or 0. */
int ac_mandate_covers_agent(const struct ac_mandate *m, const char *binding_id,
                            const char *agent_id);

/* Whether a payee is in scope: 2 when the merchant id is listed by name, 1 when only its category
 * is listed, 0 when neither (category may be NULL or ""). */
int ac_mandate_payee_scope(const struct ac_mandate *m, const char *merchant, const char *category);

/* ---- revocation ----------------------------------------------------------------------------- */

/* A mandate revocation: a JWS with typ AC_MANDATE_REVOCATION_TYP signed by a key of the mandate's
 * user, payload {"ver":1, "mandate": id, "iss": user id, "iat": unix seconds}. */
struct ac_mandate_revocation {
    char mandate[AC_ID_MAX + 1];
    char iss[AC_ID_MAX + 1];
    int64_t iat;
};

/* Header check as ac_mandate_jws_check, for typ AC_MANDATE_REVOCATION_TYP; failures are
 * AC_EC_REVOCATION_INVALID. */
enum ac_ec ac_mandate_revocation_jws_check(const struct ac_jws *jws, const char **detail);

/* Validate a revocation payload. Returns AC_EC_OK with *out filled, or AC_EC_REVOCATION_INVALID
 * with err set and *out zeroed. Matching it to the mandate (same id, same iss) is
 * ac_mandate_revocation_matches; the caller verifies the signature against a key of iss. */
enum ac_ec ac_mandate_revocation_parse(const json_t *payload, struct ac_mandate_revocation *out,
                                       struct ac_doc_err *err);

/* 1 when the revocation names this mandate and its user, else 0. */
int ac_mandate_revocation_matches(const struct ac_mandate_revocation *r,
                                  const struct ac_mandate *m);

#endif
