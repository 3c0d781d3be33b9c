/* Micropayment tab vouchers (see voucher.h). */
#include "protocol/voucher.h"

#include <stdlib.h>
#include <string.h>

static const char *const members[] = {"ver", "tab", "seq", "cumulative", NULL};
static const char *const amount_members[] = {"currency", "value", NULL};

static enum ac_ec invalid(struct ac_doc_err *err, const char *base, const char *name,
                          const char *detail)
{
    ac_doc_err_set(err, base, name, detail);
    return AC_EC_VOUCHER_INVALID;
}

enum ac_ec ac_voucher_parse(const char *compact, size_t len, const char *asset, unsigned scale,
                            struct ac_voucher *out, struct ac_jws *jws, struct ac_doc_err *err)
{
    struct ac_jws j;
    memset(out, 0, sizeof *out);
    memset(&j, 0, sizeof j);
    ac_doc_err_clear(err);
    if (jws) memset(jws, 0, sizeof *jws);
    if (len > AC_VOUCHER_MAX_LEN) return invalid(err, "", NULL, "voucher too long");
    const char *detail = NULL;
    enum ac_ec ec = ac_jws_parse(compact, len, &j, &detail);
    if (ec == AC_EC_INTERNAL) return ec;
    if (ec != AC_EC_OK) return invalid(err, "", NULL, detail ? detail : "not a compact jws");
    if (ac_doc_jws_check(&j, AC_VOUCHER_TYP, &detail) != 0) {
        ac_jws_clear(&j);
        return invalid(err, "", NULL, detail);
    }
    const json_t *p = j.payload_json;
    int64_t ver = 0;
    const json_t *cum = json_object_get(p, "cumulative");
    char cur[AC_ASSET_MAX + 2];
    ec = AC_EC_VOUCHER_INVALID;
    if (ac_doc_only(p, "", members, err) != 0) {
    } else if (ac_doc_int(p, "", "ver", 1, AC_VOUCHER_VERSION, AC_VOUCHER_VERSION, &ver, err) !=
               1) {
    } else if (ac_doc_id(p, "", "tab", 1, out->tab, err) != 1) {
    } else if (ac_doc_int(p, "", "seq", 1, 1, AC_VOUCHER_SEQ_MAX, &out->seq, err) != 1) {
    } else if (!json_is_object(cum)) {
        invalid(err, "", "cumulative", "cumulative must be {currency, value}");
    } else if (ac_doc_only(cum, "/cumulative", amount_members, err) != 0) {
    } else if (ac_doc_text(cum, "/cumulative", "currency", 1, cur, sizeof cur, err) != 1 ||
               !ac_asset_code_valid(cur)) {
        invalid(err, "/cumulative", "currency", "currency is not an asset code");
    } else if (strcmp(cur, asset) != 0) {
        ac_doc_err_set(err, "/cumulative", "currency", "currency is not the tab's");
        ec = AC_EC_VOUCHER_CURRENCY_MISMATCH;
    } else if (ac_doc_amount(cum, "/cumulative", "value", 1, scale, 0, &out->cumulative, err) !=
               1) {
    } else {
        memcpy(out->asset, cur, strlen(cur) + 1); /* a valid code fits */
        snprintf(out->kid, sizeof out->kid, "%s", j.kid);
        ec = AC_EC_OK;
    }
    if (ec != AC_EC_OK || jws == NULL)
        ac_jws_clear(&j);
    else
        *jws = j;
    if (ec != AC_EC_OK) memset(out, 0, sizeof *out);
    return ec;
}

enum ac_ec ac_voucher_verify(const struct ac_jws *jws, EVP_PKEY *agent_key)
{
    if (jws == NULL || agent_key == NULL) return AC_EC_VOUCHER_SIGNATURE_INVALID;
    return ac_jws_verify(jws, agent_key) == AC_EC_OK ? AC_EC_OK : AC_EC_VOUCHER_SIGNATURE_INVALID;
}

json_t *ac_voucher_payload(const char *tab, int64_t seq, const char *asset, int64_t cumulative,
                           unsigned scale)
{
    json_t *a = ac_doc_amount_json(asset, cumulative, scale);
    if (a == NULL) return NULL;
    return json_pack("{s:i, s:s, s:I, s:o}", "ver", AC_VOUCHER_VERSION, "tab", tab, "seq",
                     (json_int_t)seq, "cumulative", a);
}

char *ac_voucher_sign(EVP_PKEY *agent_key, const char *tab, int64_t seq, const char *asset,
                      int64_t cumulative, unsigned scale)
{
    char kid[AC_JWK_THUMBPRINT_SIZE];
    if (ac_jwk_thumbprint(agent_key, kid) != 0) return NULL;
    json_t *p = ac_voucher_payload(tab, seq, asset, cumulative, scale);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (text == NULL) return NULL;
    char *jws = ac_jws_sign(agent_key, kid, AC_VOUCHER_TYP, (const uint8_t *)text, strlen(text));
    free(text);
    return jws;
}
