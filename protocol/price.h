/* protocol/price.h -- a merchant's versioned token prices (docs/merchant-api.md, "Token top-ups"),
 * pure: no I/O. The server reads them from the merchant's signed PUT body; the auditor reads the
 * same body back from the `price.publish` evidence record and recomputes every top-up's tokens.
 *
 * The body (RFC 8259 JSON, duplicate members refused, unknown members refused):
 *
 *     {"version": 3,
 *      "prices": [{"fiat":   {"currency": "CNY", "value": "1.00"},
 *                  "tokens": {"currency": "TOK", "value": "1000"}}, ...]}
 *
 * version: a JSON integer 1..2^53-1. Each price says: `tokens` of the token asset for every `fiat`
 * of the fiat asset (both > 0, decimal strings at their asset's scale); at most one price per
 * (fiat currency, token currency) pair, 1..AC_PRICES_MAX of them, the two currencies different.
 *
 * Rounding: a top-up of A fiat base units buys floor(A * tokens / fiat) token base units (exact
 * integer arithmetic, 128-bit intermediate). An amount that buys 0 is refused
 * (AC_EC_TOPUP_TOKENS_ZERO); one that would exceed int64 likewise refused (AC_EC_AMOUNT_OVERFLOW).
 * The remainder stays with nobody: the user pays A and gets the floor. */
#ifndef AC_PRICE_H
#define AC_PRICE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/amount.h"
#include "protocol/errors.h"
#include "protocol/jdoc.h"

#define AC_PRICES_MAX 32
#define AC_PRICE_VERSION_MAX 9007199254740991LL /* 2^53 - 1: exact in every JSON reader */
#define AC_PRICE_BODY_MAX 65536

/* One price as written (amount strings not yet at a scale). */
struct ac_price_text {
    char fiat_asset[AC_ASSET_MAX + 1];
    char token_asset[AC_ASSET_MAX + 1];
    char fiat_value[AC_AMOUNT_STR_MAX];
    char token_value[AC_AMOUNT_STR_MAX];
};

struct ac_price_list {
    int64_t version;
    size_t n;
    struct ac_price_text p[AC_PRICES_MAX];
};

/* A resolved price: tokens token base units for every fiat fiat base units. */
struct ac_price {
    char fiat_asset[AC_ASSET_MAX + 1];
    char token_asset[AC_ASSET_MAX + 1];
    int64_t fiat;   /* > 0 */
    int64_t tokens; /* > 0 */
};

/* Parse the body json[0..len) (see above) into *out, checking its shape, the version, the asset
 * codes, the pairs' uniqueness and that the values are decimal strings without a sign (their
 * scale is checked by ac_price_resolve). AC_EC_OK, AC_EC_JSON_INVALID (not JSON, duplicate member)
 * or AC_EC_PRICE_INVALID with err naming the member. */
enum ac_ec ac_price_list_parse(const char *json, size_t len, struct ac_price_list *out,
                               struct ac_doc_err *err);

/* The price of t at the assets' scales: AC_EC_OK with *out, an AC_EC_AMOUNT_* code (the value
 * does not fit the scale) or AC_EC_PRICE_INVALID (a zero value). */
enum ac_ec ac_price_resolve(const struct ac_price_text *t, unsigned fiat_scale,
                            unsigned token_scale, struct ac_price *out);

/* The index of the price for (fiat_asset, token_asset) in l, or -1 when it has none. */
int ac_price_find(const struct ac_price_list *l, const char *fiat_asset, const char *token_asset);

/* The tokens a fiat amount (> 0) buys at p: floor(amount * p->tokens / p->fiat). AC_EC_OK with
 * *tokens > 0, AC_EC_TOPUP_TOKENS_ZERO, AC_EC_AMOUNT_OVERFLOW, or AC_EC_AMOUNT_ZERO for amount <=
 * 0. */
enum ac_ec ac_price_tokens(const struct ac_price *p, int64_t amount, int64_t *tokens);

/* SHA-256 over a purpose tag, the merchant, the version and every resolved price (in the list's
 * order): what a version is bound to (same version, same digest: a replay). */
void ac_price_digest(const char *merchant, int64_t version, const struct ac_price *p, size_t n,
                     uint8_t out[32]);

#endif
