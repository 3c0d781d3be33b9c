/* server/authn.h -- verification of RFC 9421 signed requests (agents and merchants).
 *
 * The profile (docs/identity.md, "Signed requests"):
 *   - one signature tagged "agentclear" (Signature-Input / Signature, RFC 9421);
 *   - covered: "@method"; "@target-uri" or "@authority" + "@path" (+ "@query" when the target
 *     has a query); "content-digest" (RFC 9530, sha-256 or sha-512, checked against the body)
 *     when the request has a body; "agent-runtime" for agent keys;
 *   - parameters: created, nonce, keyid, tag="agentclear"; expires, or (when the server has a
 *     maximum age, sig-max-age) none; alg optional but must fit the key;
 *   - created within +-sig-skew of the server's clock, not expired, the nonce never seen before
 *     for this keyid while the request could be accepted (memory + PostgreSQL, keys/nonce.h);
 *   - agent keys: the binding is neither revoked, expired nor not yet valid, and the
 *     Agent-Runtime header carries the binding's runtime digest.
 * Checks run cheapest and least revealing first; the nonce is recorded only after the signature
 * verified, so unauthenticated requests cannot fill the replay cache.
 *
 * @target-uri, @authority and @scheme are those the client used: scheme "http" and the Host
 * header, or the configured public-url (a TLS-terminating proxy in front). @path and @query are
 * the request target exactly as received (the daemon does not decode percent-encoding). */
#ifndef AC_AUTHN_H
#define AC_AUTHN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "keys/nonce.h"
#include "keys/resolved.h"
#include "protocol/httpsig.h"
#include "protocol/sig.h"
#include "server/app.h"
#include "server/http.h"

/* Longest algorithm name ("ecdsa-p256-sha256"). */
#define AC_ALG_NAME_MAX 24

/* ==== the verification result =============================================================== */

/* What a verified request proved, kept verbatim by later evidence records: with the signature
 * base, the signature and the signer's public key an auditor re-verifies it offline. Strings are
 * NUL-terminated; "" when not applicable to the principal kind. */
struct ac_verified {
    enum ac_principal_kind kind;
    char keyid[AC_KEYID_MAX + 1];
    /* AC_PRINCIPAL_AGENT */
    char binding_id[AC_ID_MAX + 1];
    char user_id[AC_ID_MAX + 1];
    char agent_id[AC_ID_MAX + 1];
    uint8_t runtime_digest[AC_RUNTIME_DIGEST_LEN];
    int max_autonomy;
    /* AC_PRINCIPAL_MERCHANT */
    char merchant_id[AC_ID_MAX + 1];
    /* the signature */
    char alg[AC_ALG_NAME_MAX]; /* of the key: "ed25519" or "ecdsa-p256-sha256" */
    int64_t created;
    int has_expires;
    int64_t expires;
    char nonce[AC_NONCE_FIELD_MAX + 1];
    char *label;           /* the Dictionary key of the signature ("sig1") */
    char *signature_input; /* the Signature-Input member, canonical: label=(...);created=... */
    uint8_t *base;         /* the exact signature base (RFC 9421 §2.5; no trailing newline) */
    size_t base_len;
    uint8_t sig[AC_SIG_MAX]; /* the raw signature bytes */
    size_t siglen;
    int64_t verified_at; /* unix seconds */
};

/* Free a result (its strings and base are part of the same allocation). Accepts NULL. */
void ac_verified_free(struct ac_verified *v);

/* The result as a JSON object: principal ("agent"/"merchant"), key_id, binding_id, user_id,
 * agent_id, max_autonomy, runtime_digest (agents), merchant_id (merchants), alg, created, expires
 * (when present), nonce, label, signature_input, signature_base and signature (standard base64
 * of the bytes), verified_at. Member names and types map one to one onto a CBOR map. Returns a
 * new reference, or NULL on allocation failure. */
json_t *ac_verified_json(const struct ac_verified *v);

/* The same object as ac_verified_json(), members in the same order, serialized compactly
 * (JSON_COMPACT) straight into out (appended), without building a jansson tree: GET /v1/whoami's
 * answer on the hot path. Returns 0, or -1 when out of memory (out->oom). */
int ac_verified_json_text(const struct ac_verified *v, struct ac_buf *out);

/* ==== the verifier =========================================================================== */

struct ac_authn;

/* A verifier for the configuration's windows (sig_skew, sig_max_age), public_url and replay cache
 * size (nonce_cache). The replay window is sig_skew + 1 seconds: a nonce is remembered for as
 * long as a request carrying it can pass the clock check. Returns NULL on bad values or
 * allocation failure. */
struct ac_authn *ac_authn_new(const struct ac_config *cfg);

/* Decide nonces in batches from now on (keys/nonce.h, the batch writer): one thread takes the
 * nonces of every request waiting on the database and inserts them with one statement, on
 * connections from pool (which must outlive the verifier), and purges expired nonces. Without
 * it, each replay check runs its own statement on a connection of ac_authn_call.pool. Returns 0,
 * or -1 (already started, pool NULL, or no thread could be started). */
int ac_authn_start_writer(struct ac_authn *a, struct ac_pool *pool);

/* Stop the batch writer (if any) once it has answered (and resumed) every request waiting on it;
 * later replay checks answer 503 db_unavailable. Call it before stopping the daemon: a
 * connection suspended on the writer must be resumed first. Accepts NULL; idempotent. */
void ac_authn_close(struct ac_authn *a);

/* Free a verifier (stopping its batch writer first). Accepts NULL. */
void ac_authn_free(struct ac_authn *a);

/* Who may call a route, for ac_authn_verify(): AC_AUTH_AGENT, AC_AUTH_MERCHANT or
 * AC_AUTH_SIGNED. */
struct ac_authn_call {
    ac_key_resolve_fn resolve; /* NULL: every key is unknown */
    void *resolve_cls;
    struct ac_pool *pool; /* connections for the replay check; NULL: memory only (tests) */
    enum ac_auth want;
    int64_t now; /* unix seconds */
};

/* Verify a request: req as received (scheme/authority already chosen, see above; header()
 * combining repeated fields) and its complete body. Returns AC_EC_OK with *out set (the caller
 * frees it with ac_verified_free), or a code of errors.def with *out NULL and *detail a static
 * string (or NULL) for problem+json:
 *   400: SIG_MALFORMED, SIG_LABEL_MISMATCH, SIG_COMPONENT_ABSENT, DIGEST_MALFORMED,
 *        RUNTIME_MALFORMED;
 *   401: SIG_MISSING, SIG_PARAM_MISSING, SIG_COMPONENT_MISSING, SIG_KEY_UNKNOWN (also a key of
 *        the wrong principal kind for `want`), SIG_ALG_MISMATCH, SIG_INVALID, SIG_STALE,
 *        SIG_EXPIRED, SIG_REPLAYED, DIGEST_MISSING, DIGEST_MISMATCH, RUNTIME_MISSING,
 *        RUNTIME_MISMATCH, BINDING_REVOKED, BINDING_EXPIRED, BINDING_NOT_YET_VALID;
 *   503: DB_UNAVAILABLE (the replay check could not reach PostgreSQL), OVERLOADED (the replay
 *        cache is full of live nonces);
 *   500: INTERNAL (out of memory).
 * Nothing is recorded unless the signature verified. Thread-safe. With a batch writer
 * (ac_authn_start_writer) call->pool is not used. */
enum ac_ec ac_authn_verify(struct ac_authn *a, const struct ac_authn_call *call,
                           const struct ac_http_request *req, const uint8_t *body, size_t blen,
                           struct ac_verified **out, const char **detail);

/* The daemon's step for a route with a signed auth kind: gathers the request from MHD (headers
 * with lowercase names, repeated fields combined with ", "; the raw request target; the scheme and
 * authority as above) and verifies it with the app's resolver, storing the result in
 * r->verified. Returns the code to answer (detail as ac_authn_verify), or AC_EC_OK: either
 * r->verified is set, or (r->verified NULL) the connection was suspended while the batch writer
 * decides the nonce -- the worker serves other connections meanwhile -- and the daemon calls this
 * again after the resume, which then completes the verification. Without a batch writer the
 * replay check runs on a connection of the app's nonce pool (or reader pool), blocking. */
enum ac_ec ac_authn_request(struct ac_req *r, const char **detail);

/* On a route flagged AC_ROUTE_NONCE_WITH_EFFECT (server/idem.h) and with a batch writer, the
 * replay check above is only memory's (ac_nonce_reserve): the request goes on at once, with
 * r->nonce_pending set (and r->nonce_epoch, the cache's epoch then), and its nonce travels with
 * the sequencer command that carries its effect (server/seqcall.c; ledger/sequencer.h,
 * ac_cmd.nonce), which records it with the batch: on memory's verdict when memory was the
 * authority (the sequencer loaded the live nonces into it, ac_nonce_cache_load, before the
 * reservation), else after the database's, which refuses a replay that memory could not know.
 * A request that ends without that (refused before its command, or its command never reached a
 * batch) calls this at the end: its nonce goes to the batch writer, without waiting. */
void ac_authn_request_end(struct ac_req *r);

/* The verifier's replay cache (for the sequencer: struct ac_seq_config.nonces). */
struct ac_nonce_cache *ac_authn_nonces(struct ac_authn *a);

/* For a request with r->nonce_pending about to be answered without a batch from what the database
 * holds (a stored Idempotency-Key answer): record its nonce now, blocking for one round trip.
 * AC_EC_OK (recorded now, r->nonce_pending cleared), AC_EC_SIG_REPLAYED (the database held it: a
 * replay, which must not be shown the stored answer), or AC_EC_DB_UNAVAILABLE. Without a pending
 * nonce: AC_EC_OK. */
enum ac_ec ac_authn_record_nonce(struct ac_req *r);

/* Free the state of a request suspended in ac_authn_request() (r->authn_wait). Accepts NULL. */
struct ac_authn_wait;
void ac_authn_wait_free(struct ac_authn_wait *w);

/* Evict expired nonces from memory and delete expired rows (at most once per interval; the
 * verifier also calls it by itself every AC_AUTHN_PURGE_EVERY seconds from the request path).
 * Returns the rows deleted, 0 when not due, or -1 on a database error. */
#define AC_AUTHN_PURGE_EVERY 60
long ac_authn_purge(struct ac_authn *a, PGconn *db, int64_t now);

#endif
