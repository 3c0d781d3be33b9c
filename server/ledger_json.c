#include <string.h>

#include "ledger/db.h"
#include "server/handlers.h"

static const struct {
    uint32_t bit;
    const char *name;
} account_flags[] = {
    {AC_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, "debits_must_not_exceed_credits"},
    {AC_AF_CREDITS_MUST_NOT_EXCEED_DEBITS, "credits_must_not_exceed_debits"},
};

static const struct {
    uint32_t bit;
    const char *name;
} transfer_flags[] = {
    {AC_TF_LINKED, "linked"},
    {AC_TF_PENDING, "pending"},
    {AC_TF_POST_PENDING, "post_pending"},
    {AC_TF_VOID_PENDING, "void_pending"},
    {AC_TF_BALANCING_DEBIT, "balancing_debit"},
    {AC_TF_BALANCING_CREDIT, "balancing_credit"},
};

#define FLAGS_JSON(table, flags)                                                                   \
    do {                                                                                           \
        json_t *a = json_array();                                                                  \
        for (size_t i = 0; a && i < sizeof table / sizeof table[0]; i++)                           \
            if ((flags)&table[i].bit) json_array_append_new(a, json_string(table[i].name));        \
        return a;                                                                                  \
    } while (0)

#define FLAGS_PARSE(table, arr, out)                                                               \
    do {                                                                                           \
        uint32_t f = 0;                                                                            \
        if (arr == NULL) {                                                                         \
            *(out) = 0;                                                                            \
            return 0;                                                                              \
        }                                                                                          \
        if (!json_is_array(arr)) return -1;                                                        \
        size_t k;                                                                                  \
        json_t *v;                                                                                 \
        json_array_foreach(arr, k, v)                                                              \
        {                                                                                          \
            size_t i;                                                                              \
            if (!json_is_string(v)) return -1;                                                     \
            for (i = 0; i < sizeof table / sizeof table[0]; i++)                                   \
                if (strcmp(json_string_value(v), table[i].name) == 0) break;                       \
            if (i == sizeof table / sizeof table[0]) return -1;                                    \
            f |= table[i].bit;                                                                     \
        }                                                                                          \
        *(out) = f;                                                                                \
        return 0;                                                                                  \
    } while (0)

json_t *ac_account_flags_json(uint32_t flags)
{
    FLAGS_JSON(account_flags, flags);
}

json_t *ac_transfer_flags_json(uint32_t flags)
{
    FLAGS_JSON(transfer_flags, flags);
}

int ac_account_flags_parse(const json_t *arr, uint32_t *flags)
{
    FLAGS_PARSE(account_flags, arr, flags);
}

int ac_transfer_flags_parse(const json_t *arr, uint32_t *flags)
{
    FLAGS_PARSE(transfer_flags, arr, flags);
}

static json_t *amount_json(int64_t v, unsigned scale)
{
    char buf[AC_AMOUNT_STR_MAX];
    return json_string(ac_amount_format(v, scale, buf));
}

json_t *ac_account_json(const struct ac_account *a, unsigned scale)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "id", a->id, "asset", a->asset,
                     "owner", a->owner, "flags", ac_account_flags_json(a->flags),
                     "debits_pending", amount_json(a->debits_pending, scale), "debits_posted",
                     amount_json(a->debits_posted, scale), "credits_pending",
                     amount_json(a->credits_pending, scale), "credits_posted",
                     amount_json(a->credits_posted, scale));
}

const char *ac_pstate_name(enum ac_pstate s)
{
    switch (s) {
    case AC_PS_PENDING: return "pending";
    case AC_PS_POSTED: return "posted";
    case AC_PS_VOIDED: return "voided";
    case AC_PS_EXPIRED: return "expired";
    default: return NULL;
    }
}

json_t *ac_transfer_json(const struct ac_transfer_row *t, unsigned scale)
{
    char ts[40];
    ac_rfc3339(t->created_us, ts);
    if (t->result != AC_EC_OK)
        return json_pack("{s:s, s:s, s:s, s:s}", "id", t->id, "status", "failed", "code",
                         ac_ec_code(t->result), "created_at", ts);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:i, s:s}", "id", t->id, "status",
                          "ok", "debit_account", t->debit, "credit_account", t->credit, "asset",
                          t->asset, "amount", amount_json(t->amount, scale), "flags",
                          ac_transfer_flags_json(t->flags), "code", (int)t->code, "created_at", ts);
    if (j == NULL) return NULL;
    if (t->pending_id[0]) json_object_set_new(j, "pending_id", json_string(t->pending_id));
    if (t->timeout_s) json_object_set_new(j, "timeout", json_integer(t->timeout_s));
    const char *ps = ac_pstate_name(t->pstate);
    if (ps) json_object_set_new(j, "pending_state", json_string(ps));
    return j;
}

enum MHD_Result ac_reply_db_error(struct ac_req *r, int qs)
{
    return ac_reply_problem(r, qs == AC_QS_SOFT_ERROR ? AC_EC_DB_UNAVAILABLE : AC_EC_INTERNAL,
                            NULL, NULL);
}
