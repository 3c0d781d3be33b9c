/* tests/support/evfix.h -- an evidence log produced through a real sequencer on a real
 * PostgreSQL (identity operations, and a test operation that moves money and records it), for
 * the evidence tests (tests/db/test_evidence_log.c, tests/db/test_evidence_tamper.c,
 * tests/e2e/test_http_evidence.c). Nothing is mocked: real keys, real JWS, the real ledger state
 * and the real evidence log.
 *
 * The money operation stands in for the payments the mandates/payments change will record: one
 * plain transfer plus a "refund" record (payment, amount, user, transfers) appended in the same
 * batch through ac_evlog_append, exactly as a payment operation does. */
#ifndef AC_TEST_EVFIX_H
#define AC_TEST_EVFIX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keys/keyring.h"
#include "keys/registry.h"
#include "ledger/domain.h"
#include "ledger/evlog.h"
#include "ledger/identity_ops.h"
#include "ledger/sequencer.h"

#define AC_EVFIX_ORIGIN "test.agentclear/0"

struct ac_evfix {
    const char *url;
    EVP_PKEY *server_key; /* Ed25519, borrowed */
    struct ac_keyring *keys;
    struct ac_registry *reg;
    struct ac_evlog *evlog;
    struct ac_domain dom;
    struct ac_seq_domain sd;
    struct ac_sequencer *seq;
    char *vkey; /* the log's note verifier key */
};

/* Start a sequencer on url with an evidence log signed by server_key (NULL: no keys), checkpoints
 * every `every` records or `ms` milliseconds. Waits for leadership; fails the test otherwise. */
void ac_evfix_start(struct ac_evfix *f, const char *url, EVP_PKEY *server_key, uint64_t every,
                    int64_t ms);
/* Start and return 1 when it becomes leader within wait_ms, else 0 (left running). */
int ac_evfix_start_nowait(struct ac_evfix *f, const char *url, EVP_PKEY *server_key, uint64_t every,
                          int64_t ms, int wait_ms);
void ac_evfix_stop(struct ac_evfix *f);

/* Identity through the sequencer. Return the operation's result (or the command's status). */
enum ac_ec ac_evfix_user(struct ac_evfix *f, const char *user, EVP_PKEY *key);
/* A binding of a new agent key (returned in *agent when not NULL; else freed); *jws (when not
 * NULL) gets the binding text (malloc'd). */
enum ac_ec ac_evfix_binding(struct ac_evfix *f, const char *id, const char *user, EVP_PKEY *ukey,
                            EVP_PKEY **agent, char **jws);
enum ac_ec ac_evfix_revoke(struct ac_evfix *f, const char *binding, const char *user,
                           EVP_PKEY *ukey);

/* Create accounts (asset CNY, scale 2; the asset row is inserted when missing) in one
 * AC_CMD_ACCOUNTS command, as POST /v1/ledger/accounts does (flags[i] when flags is not NULL). */
enum ac_ec ac_evfix_accounts(struct ac_evfix *f, const char *const *ids, size_t n);
enum ac_ec ac_evfix_accounts_flags(struct ac_evfix *f, const char *const *ids,
                                   const uint32_t *flags, size_t n);
/* Operator transfers t[0..n) (asset CNY, scale 2) in one AC_CMD_TRANSFERS command, as POST
 * /v1/ledger/transfers does; res[i] gets each result. Returns the command's status. */
enum ac_ec ac_evfix_transfers(struct ac_evfix *f, const struct ac_transfer_req *t, size_t n,
                              struct ac_transfer_result *res);

/* The money operation: transfer tid of amount (base units, CNY) from debit to credit and a refund
 * record about payment (user optional). *seq and leaf get the record's seq and leaf (may be NULL).
 * Returns the transfer's result, or the command's status. */
enum ac_ec ac_evfix_pay(struct ac_evfix *f, const char *payment, const char *tid, const char *debit,
                        const char *credit, int64_t amount, const char *user, uint64_t *seq,
                        uint8_t leaf[32]);

/* The money operation as a part of a larger AC_CMD_OP (tests that combine operations). */
struct ac_evfix_payop {
    const char *payment, *tid, *debit, *credit, *user;
    int64_t amount;
    enum ac_ec result;
    uint64_t seq;
    uint8_t leaf[32];
};
void ac_evfix_pay_apply(struct ac_evfix_payop *p, struct ac_apply *a);

/* Poll the database until a checkpoint of at least `size` exists (at most timeout_ms). Returns the
 * largest checkpoint size seen. */
uint64_t ac_evfix_wait_checkpoint(const char *url, uint64_t size, int timeout_ms);

/* A one-value query on url (fails the test on error); -1 when there is no row. */
long long ac_evfix_sql_int(const char *url, const char *sql);
/* Run statements on url; returns 1 when they succeeded. */
int ac_evfix_sql_ok(const char *url, const char *sql);

#endif
