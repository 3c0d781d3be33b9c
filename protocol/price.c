/* Versioned merchant prices (see price.h). */
#include "protocol/price.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "protocol/sha256.h"

static int value_text_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= AC_AMOUNT_STR_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.')) return 0;
    return 1;
}

/* {"currency", "value"} at base/name into asset and value. 0 or -1 with err. */
static int amount_text(const json_t *o, const char *base, const char *name, char *asset,
                       char *value, struct ac_doc_err *err)
{
    const json_t *a = json_object_get(o, name);
    char ptr[AC_DOC_POINTER_MAX];
    snprintf(ptr, sizeof ptr, "%s/%s", base, name);
    static const char *const names[] = {"currency", "value", NULL};
    if (!json_is_object(a)) {
        ac_doc_err_set(err, base, name, "must be an object {currency, value}");
        return -1;
    }
    if (ac_doc_only(a, ptr, names, err) != 0) return -1;
    const json_t *c = json_object_get(a, "currency"), *v = json_object_get(a, "value");
    if (!json_is_string(c) || json_string_length(c) > AC_ASSET_MAX ||
        !ac_asset_code_valid(json_string_value(c))) {
        ac_doc_err_set(err, ptr, "currency", "must be an asset code");
        return -1;
    }
    if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)) ||
        !value_text_ok(json_string_value(v))) {
        ac_doc_err_set(err, ptr, "value", "must be a decimal string");
        return -1;
    }
    snprintf(asset, AC_ASSET_MAX + 1, "%s", json_string_value(c));
    snprintf(value, AC_AMOUNT_STR_MAX, "%s", json_string_value(v));
    return 0;
}

enum ac_ec ac_price_list_parse(const char *json, size_t len, struct ac_price_list *out,
                               struct ac_doc_err *err)
{
    memset(out, 0, sizeof *out);
    ac_doc_err_clear(err);
    if (len > AC_PRICE_BODY_MAX) {
        ac_doc_err_set(err, "", NULL, "the price list is too long");
        return AC_EC_PRICE_INVALID;
    }
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        ac_doc_err_set(err, "", NULL, "not a json document (or a duplicate member)");
        return AC_EC_JSON_INVALID;
    }
    enum ac_ec ec = AC_EC_PRICE_INVALID;
    static const char *const top[] = {"version", "prices", NULL};
    static const char *const item[] = {"fiat", "tokens", NULL};
    const json_t *prices = json_object_get(root, "prices");
    if (!json_is_object(root)) {
        ac_doc_err_set(err, "", NULL, "must be an object");
    } else if (ac_doc_only(root, "", top, err) != 0) {
        /* err set */
    } else if (ac_doc_int(root, "", "version", 1, 1, AC_PRICE_VERSION_MAX, &out->version, err) !=
               1) {
        /* err set */
    } else if (!json_is_array(prices) || json_array_size(prices) == 0 ||
               json_array_size(prices) > AC_PRICES_MAX) {
        ac_doc_err_set(err, "", "prices", "must be an array of 1-32 prices");
    } else {
        size_t i;
        for (i = 0; i < json_array_size(prices); i++) {
            const json_t *p = json_array_get(prices, i);
            char base[32], idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            snprintf(base, sizeof base, "/prices/%zu", i);
            struct ac_price_text *t = &out->p[i];
            if (!json_is_object(p)) {
                ac_doc_err_set(err, "/prices", idx, "must be an object {fiat, tokens}");
                break;
            }
            if (ac_doc_only(p, base, item, err) != 0 ||
                amount_text(p, base, "fiat", t->fiat_asset, t->fiat_value, err) != 0 ||
                amount_text(p, base, "tokens", t->token_asset, t->token_value, err) != 0)
                break;
            if (strcmp(t->fiat_asset, t->token_asset) == 0) {
                ac_doc_err_set(err, base, "tokens", "must be another asset than fiat");
                break;
            }
            if (ac_price_find(out, t->fiat_asset, t->token_asset) >= 0) {
                ac_doc_err_set(err, "/prices", idx, "a second price for the same pair");
                break;
            }
            out->n = i + 1;
        }
        if (i == json_array_size(prices)) ec = AC_EC_OK;
    }
    json_decref(root);
    if (ec != AC_EC_OK) memset(out, 0, sizeof *out);
    return ec;
}

enum ac_ec ac_price_resolve(const struct ac_price_text *t, unsigned fiat_scale,
                            unsigned token_scale, struct ac_price *out)
{
    memset(out, 0, sizeof *out);
    enum ac_ec ec = ac_amount_parse(t->fiat_value, fiat_scale, &out->fiat);
    if (ec == AC_EC_OK) ec = ac_amount_parse(t->token_value, token_scale, &out->tokens);
    if (ec == AC_EC_OK && (out->fiat <= 0 || out->tokens <= 0)) ec = AC_EC_PRICE_INVALID;
    if (ec != AC_EC_OK) {
        memset(out, 0, sizeof *out);
        return ec;
    }
    memcpy(out->fiat_asset, t->fiat_asset, sizeof out->fiat_asset);
    memcpy(out->token_asset, t->token_asset, sizeof out->token_asset);
    return AC_EC_OK;
}

int ac_price_find(const struct ac_price_list *l, const char *fiat_asset, const char *token_asset)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->p[i].fiat_asset, fiat_asset) == 0 &&
            strcmp(l->p[i].token_asset, token_asset) == 0)
            return (int)i;
    return -1;
}

__extension__ typedef unsigned __int128 u128;

enum ac_ec ac_price_tokens(const struct ac_price *p, int64_t amount, int64_t *tokens)
{
    if (amount <= 0) return AC_EC_AMOUNT_ZERO;
    if (p->fiat <= 0 || p->tokens <= 0) return AC_EC_PRICE_INVALID;
    /* both factors < 2^63: the product fits 126 bits */
    u128 prod = (u128)(uint64_t)amount * (uint64_t)p->tokens;
    u128 q = prod / (uint64_t)p->fiat;
    if (q == 0) return AC_EC_TOPUP_TOKENS_ZERO;
    if (q > (uint64_t)INT64_MAX) return AC_EC_AMOUNT_OVERFLOW;
    *tokens = (int64_t)q;
    return AC_EC_OK;
}

void ac_price_digest(const char *merchant, int64_t version, const struct ac_price *p, size_t n,
                     uint8_t out[32])
{
    /* NUL-separated fields; bounded: ids 64, assets 16, numbers 20 bytes, at most 32 prices */
    char buf[256 + AC_PRICES_MAX * 128];
    size_t len = 0;
    int k = snprintf(buf, sizeof buf, "agentclear/v1/price-list%c%s%c%lld%c", 0, merchant, 0,
                     (long long)version, 0);
    len = k > 0 ? (size_t)k : 0;
    for (size_t i = 0; i < n && i < AC_PRICES_MAX && len < sizeof buf; i++) {
        k = snprintf(buf + len, sizeof buf - len, "%s%c%lld%c%s%c%lld%c", p[i].fiat_asset, 0,
                     (long long)p[i].fiat, 0, p[i].token_asset, 0, (long long)p[i].tokens, 0);
        if (k > 0) len += (size_t)k;
    }
    if (len > sizeof buf) len = sizeof buf;
    ac_sha256(buf, len, out);
}
