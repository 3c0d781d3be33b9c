/* ledger/prices.h -- merchants' versioned token prices and the token leg of top-ups
 * (docs/merchant-api.md, "Token top-ups").
 *
 * The sequencer owns, per merchant, the set of published versions (with the digest each is bound
 * to) and the current one. Publishing a version is an operation (AC_CMD_OP): version newer than
 * the current one, rows and the `price.publish` evidence record in the batch's transaction. A
 * top-up is a payment (ledger/payments.h, AC_PAYOP_PAY with a token leg): payments.c asks this
 * module at apply time whether the version it was priced at is still the current one.
 *
 * HTTP threads read committed versions and top-ups from the database (reader statements). */
#ifndef AC_PRICES_H
#define AC_PRICES_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "ledger/db.h"
#include "ledger/payments.h"
#include "ledger/sequencer.h"
#include "protocol/evidence.h"
#include "protocol/price.h"

struct ac_prices;

/* A new empty state, or NULL when out of memory. */
struct ac_prices *ac_prices_new(void);
/* Free it. Accepts NULL. */
void ac_prices_free(struct ac_prices *p);

/* Register the module's prepared statements (writer and reader), once, before connecting. */
int ac_prices_register_statements(void);

/* Rebuild from the database (the writer connection, outside a transaction). 0 or -1 (unchanged). */
int ac_prices_load(struct ac_prices *p, PGconn *c);

/* Sequencer thread: AC_EC_OK when `version` is merchant's current version,
 * AC_EC_PRICE_VERSION_STALE when it is an older published one, AC_EC_PRICE_VERSION_UNKNOWN when
 * the merchant never published it. */
enum ac_ec ac_prices_check_current(const struct ac_prices *p, const char *merchant,
                                   int64_t version);

/* ==== publishing a version (built on an HTTP thread, applied on the sequencer) =================
 */

struct ac_price_publish {
    char merchant[AC_ID_MAX + 1]; /* the verified signer */
    int64_t version;
    size_t n;
    struct ac_price prices[AC_PRICES_MAX]; /* resolved at the assets' scales */
    uint8_t digest[32];                    /* ac_price_digest() */
    struct ac_pay_signed sig;              /* the verified request, body = the price list */

    /* ---- outputs (valid when the command's status is AC_EC_OK) ---- */
    enum ac_ec result; /* AC_EC_OK, AC_EC_PRICE_VERSION_EXISTS, AC_EC_PRICE_VERSION_OLD */
    int replayed;      /* the same version with the same prices: nothing written */
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t at_us;
};

/* Prepare cmd to run op (AC_CMD_OP, n 1). The domain must have a prices state. */
void ac_prices_publish_cmd(struct ac_cmd *cmd, struct ac_price_publish *op);

/* ==== the token leg of a top-up, written by payments.c =========================================
 */

/* Queue the ac_topups row of top-up q (its token leg) in the batch. 0 or -1 (out of memory). */
int ac_prices_topup_row(struct ac_apply *a, const struct ac_pay_request *q, const char *user,
                        int64_t now_us);

/* ==== committed rows (HTTP threads, reader connections) ======================================= */

struct ac_price_version_row {
    char merchant[AC_ID_MAX + 1];
    int64_t version;
    size_t n;
    struct ac_price prices[AC_PRICES_MAX];
    unsigned fiat_scale[AC_PRICES_MAX], token_scale[AC_PRICES_MAX];
    char keyid[AC_ID_MAX + 1];
    int has_evidence;
    uint64_t ev_seq;
    uint8_t ev_leaf[AC_EV_HASH_LEN];
    int64_t created_us;
};

/* One version with its prices: ONE_RESULT, NO_RESULTS or an error. */
enum ac_qs ac_prices_read_version(PGconn *c, const char *merchant, int64_t version,
                                  struct ac_price_version_row *out);
/* The merchant's versions older than `before` (0: from the newest), newest first, at most cap:
 * ONE_RESULT with *n (maybe 0), or an error. */
enum ac_qs ac_prices_list_versions(PGconn *c, const char *merchant, int64_t before,
                                   struct ac_price_version_row *out, size_t cap, size_t *n);
/* The merchant's current version (0 when none): ONE_RESULT or an error. */
enum ac_qs ac_prices_current(PGconn *c, const char *merchant, int64_t *version);

/* The price a top-up looks up: ONE_RESULT with *out (the version has a price for the pair),
 * NO_RESULTS with *version_exists saying whether the version was published at all, or an error. */
enum ac_qs ac_prices_lookup(PGconn *c, const char *merchant, int64_t version, const char *fiat,
                            const char *token, struct ac_price *out, int *version_exists);

struct ac_topup_row {
    char id[AC_ID_MAX + 1];
    char provider[AC_ID_MAX + 1], user[AC_ID_MAX + 1];
    char token_asset[AC_ASSET_MAX + 1];
    unsigned token_scale;
    int64_t token_amount;
    char token_debit[AC_ID_MAX + 1], token_credit[AC_ID_MAX + 1];
    char token_transfer_id[AC_ID_MAX + 1];
    int64_t price_version, price_fiat, price_tokens;
};
/* The token legs of the top-ups ids[0..n) (n <= 100), in any order, into out (capacity n):
 * ONE_RESULT with *got rows, or an error. */
enum ac_qs ac_prices_read_topups(PGconn *c, const char *const *ids, size_t n,
                                 struct ac_topup_row *out, size_t *got);

#endif
