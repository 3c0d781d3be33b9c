/* keys/resolved.h -- what a request verifier learns from an RFC 9421 keyid.
 *
 * The identity registry (keys/registry.h) owns principals, their keys and the bindings; the
 * request verifier (server/authn.c) asks it to resolve the keyid of a Signature-Input into one
 * of these, copied out under the registry's lock so that verification runs without holding it.
 * A resolved key holds a reference on `key` (EVP_PKEY_up_ref); release it with
 * ac_resolved_key_clear(). */
#ifndef AC_RESOLVED_H
#define AC_RESOLVED_H

#include <stdint.h>

#include <openssl/evp.h>

#include "protocol/errors.h"
#include "protocol/runtime.h"

#define AC_ID_MAX 64    /* ids: 1..64 of [A-Za-z0-9._:-] (protocol/amount.h ac_id_valid) */
#define AC_KEYID_MAX 64 /* RFC 7638 thumbprints are 43 base64url characters */

enum ac_principal_kind {
    AC_PRINCIPAL_AGENT = 1,    /* an agent key named by an active binding */
    AC_PRINCIPAL_MERCHANT = 2, /* a merchant key registered by the operator */
};

struct ac_resolved_key {
    enum ac_principal_kind kind;
    EVP_PKEY *key;                /* one reference held */
    char keyid[AC_KEYID_MAX + 1]; /* the RFC 7638 thumbprint that was looked up */
    /* AC_PRINCIPAL_AGENT */
    char binding_id[AC_ID_MAX + 1];
    char user_id[AC_ID_MAX + 1];
    char agent_id[AC_ID_MAX + 1];
    uint8_t runtime_digest[AC_RUNTIME_DIGEST_LEN];
    int max_autonomy; /* 0..5 (L0..L5) */
    int64_t nbf, exp; /* binding validity, unix seconds (exp 0 = none) */
    int revoked;      /* 1 once a revocation was acknowledged */
    /* AC_PRINCIPAL_MERCHANT */
    char merchant_id[AC_ID_MAX + 1];
};

/* Resolve keyid. Returns AC_EC_OK and fills *out (the caller must clear it), or
 * AC_EC_SIG_KEY_UNKNOWN. Revoked and expired bindings still resolve (revoked = 1, exp), so the
 * verifier can answer binding_revoked / binding_expired rather than "unknown key". */
typedef enum ac_ec (*ac_key_resolve_fn)(void *cls, const char *keyid, struct ac_resolved_key *out);

static inline void ac_resolved_key_clear(struct ac_resolved_key *k)
{
    if (k->key) EVP_PKEY_free(k->key);
    k->key = 0;
}

#endif
