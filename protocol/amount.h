/* protocol/amount.h -- money as decimal strings on the wire, int64 base units at rest.
 *
 * An amount travels as {"currency":"CNY","value":"12.34"}; each asset has a fixed scale
 * (number of decimal digits, 0..18). "12.34" at scale 2 is 1234 base units. Never a double. */
#ifndef AC_AMOUNT_H
#define AC_AMOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/errors.h"

#define AC_SCALE_MAX 18
#define AC_AMOUNT_STR_MAX 48 /* enough for INT64_MAX at any scale, sign and NUL */

/* Parse a non-negative decimal string ("0", "12", "12.3", "12.34") at `scale` into base units.
 * Strict grammar: digits, optionally '.' followed by 1..scale digits; no sign, exponent,
 * whitespace, or leading '+'. Leading zeros are accepted ("007.50"). A leading '-' gives
 * AC_EC_AMOUNT_NEGATIVE. Returns AC_EC_OK and sets *out, or an AC_EC_AMOUNT_* code and leaves
 * *out unchanged. Zero is accepted here; callers that need a positive amount check it. */
enum ac_ec ac_amount_parse(const char *s, unsigned scale, int64_t *out);

/* Format `units` (may be negative) at `scale` into buf: always exactly `scale` decimals
 * ("12.30" at scale 2; "5" at scale 0). Returns buf. buf must hold AC_AMOUNT_STR_MAX bytes. */
char *ac_amount_format(int64_t units, unsigned scale, char buf[AC_AMOUNT_STR_MAX]);

/* Checked arithmetic: return 0 and set *r, or return -1 on overflow and leave *r unchanged. */
int ac_add_i64(int64_t a, int64_t b, int64_t *r);
int ac_sub_i64(int64_t a, int64_t b, int64_t *r);

/* Identifier rule shared by assets, accounts, transfers, principals: 1..64 characters from
 * [A-Za-z0-9._:-]. Returns 1 when valid, 0 otherwise. */
#define AC_ID_MAX 64
int ac_id_valid(const char *s);

/* Asset codes: 1..16 characters of [A-Z0-9_]. Returns 1 when valid. */
#define AC_ASSET_MAX 16
int ac_asset_code_valid(const char *s);

#endif
