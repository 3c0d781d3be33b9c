/* tests/support/payflow.h -- the pieces the payment end-to-end tests share: user-signed documents
 * as request bodies, amounts in base units, agent-signed (RFC 9421) POSTs, payment bodies, the
 * parties and bindings of a test world, and the stored evidence record an answer names. Everything
 * is real (keys, signatures, the server under test); nothing is mocked. */
#ifndef AC_TEST_PAYFLOW_H
#define AC_TEST_PAYFLOW_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "protocol/evidence.h"
#include "tests/support/httpc.h"

/* The current time in seconds since the epoch. */
int64_t ac_test_now_s(void);

/* The JWS of payload p signed by key with header typ, as the text a request carries (the JSON
 * {"jws": ...} body). p's reference is stolen; the result is malloc'd. */
char *ac_test_signed_body(EVP_PKEY *key, const char *typ, json_t *p);

/* A scale-2 decimal string in base units: "12.34" -> 1234 ("-" allowed in front). */
long long ac_test_cents(const char *s);

/* The compact JSON body of a payment request ({id, mandate, payee, amount{currency, value}} and
 * "op" when op is not NULL); malloc'd. */
char *ac_test_pay_body(const char *id, const char *mandate, const char *payee, const char *cur,
                       const char *value, const char *op);

/* POST path with body on c, signed by key as an agent (or merchant) request for a server on port,
 * or sent unsigned with only a JSON content type when key is NULL. Returns the status (as
 * ac_test_http_request); r receives the answer. Safe to call from several threads. */
int ac_test_signed_post(struct ac_test_http *c, unsigned port, EVP_PKEY *key, const char *path,
                        const char *body, struct ac_test_http_resp *r);

/* The parties of a payment world, with the operator token: assets CNY and USD (scale 2), user
 * "alice" with key alice, user "bob" with key bob (skipped when bob is NULL), merchants "shop"
 * (Book Shop, books) with key shop and "llm" (LLM, llm-inference) with key llm. */
void ac_test_payflow_parties(struct ac_test_http *c, const char *token, EVP_PKEY *alice,
                             EVP_PKEY *bob, EVP_PKEY *shop, EVP_PKEY *llm);

/* Register the binding id of agent_key as agent_id for user (signed by user_key), max_autonomy
 * L5, valid from 10 s ago for 30 days; fails the test unless the server answers 201. */
void ac_test_payflow_binding(struct ac_test_http *c, const char *id, EVP_PKEY *user_key,
                             const char *user, EVP_PKEY *agent_key, const char *agent_id);

/* The evidence {seq, leaf_hash} of an answer, checked against the database at db_url: fails the
 * test unless ev is an object whose leaf_hash is the stored leaf of record seq and that record
 * decodes with that seq. r receives the record (the caller ac_ev_record_clear()s it). */
void ac_test_payflow_evidence(const char *db_url, const json_t *ev, struct ac_ev_record *r);

/* Wait (at most 30 s) until the latest checkpoint of the database at db_url covers every evidence
 * record; fails the test otherwise. */
void ac_test_payflow_wait_sealed(const char *db_url);

/* `agentclear evidence export` of the database at db_url to <tmpdir>/export.bin, then
 * `agentclear audit replay` of that file against the live database (--db), its output in
 * <tmpdir>/audit_replay.log; fails the test unless both exit 0 and the replay says VERIFIED. */
void ac_test_payflow_export_replay(const char *db_url);

struct ac_test_server;
/* Stop s with SIGTERM (ac_test_server_stop, waiting at most wait_ms); fails the test, with the
 * server's log, unless it exited by itself with 0 and its log holds no sanitizer report. */
void ac_test_payflow_stop_cleanly(struct ac_test_server *s, int wait_ms);

#endif
