/* protocol/httpsig.h -- RFC 9421 HTTP Message Signatures for requests: parse Signature-Input and
 * Signature, build the signature base (§2.5), verify (ed25519, ecdsa-p256-sha256), check
 * agentclear's profile, and sign.
 *
 * Verifying a request (the HTTP layer's sequence):
 *
 *     struct ac_httpsig hs;
 *     ec = ac_httpsig_parse(&hs, sig_input_value, signature_value, "agentclear");
 *     if (ec == AC_EC_OK) ec = ac_httpsig_check_policy(&hs, &req, &policy, time(NULL));
 *     key = <registry lookup of hs.keyid>               (AC_EC_SIG_KEY_UNKNOWN is the caller's)
 *     if (ec == AC_EC_OK) ec = ac_httpsig_base(&hs, &req);
 *     if (ec == AC_EC_OK) ec = ac_httpsig_verify(&hs, key);
 *     <replay cache on hs.nonce; ac_digest_verify() of the body against content-digest>
 *     <evidence: hs.base/hs.base_len and hs.sig/hs.siglen, verbatim>
 *     ac_httpsig_free(&hs);
 *
 * Limits: each header value at most AC_SFV_MAX_INPUT bytes, at most AC_HTTPSIG_MAX_COMPONENTS
 * covered components, component identifiers at most AC_HTTPSIG_ID_MAX bytes serialized, request
 * target parts at most AC_HTTPSIG_URI_MAX bytes, the signature base at most AC_HTTPSIG_BASE_MAX.
 */
#ifndef AC_HTTPSIG_H
#define AC_HTTPSIG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "protocol/errors.h"
#include "protocol/sfv.h"

#define AC_HTTPSIG_MAX_COMPONENTS 32
#define AC_HTTPSIG_ID_MAX 512
#define AC_HTTPSIG_URI_MAX 8192u
#define AC_HTTPSIG_BASE_MAX (256u * 1024u)
#define AC_HTTPSIG_DEFAULT_SKEW 60 /* seconds, ac_httpsig_policy_agentclear() */

/* ==== the request as the verifier (or signer) sees it ====================================== */

/* Header lookup: lowercase field name -> the field value, with repeated field lines combined in
 * order with ", " (each line already trimmed), or NULL when the request has no such field. The
 * returned string must stay valid until the call that asked for it returns. */
typedef const char *(*ac_http_header_fn)(void *ctx, const char *lname);

struct ac_http_request {
    const char *method;    /* as received, case kept ("POST") */
    const char *scheme;    /* "https"/"http"; lowercased in the base */
    const char *authority; /* host[:port]; lowercased, default port dropped in the base */
    const char *path;      /* absolute path, percent-encoding as received; "" means "/" */
    const char *query;     /* the query without "?", or NULL when the target has no "?" */
    int has_body;          /* nonzero when the request carries content */
    ac_http_header_fn header;
    void *header_ctx;
};

/* ==== a parsed signature ==================================================================== */

struct ac_httpsig_component {
    const char *name;                  /* "@method", "content-digest", ... */
    const struct ac_sfv_param *params; /* component parameters ("sf", "key", "name") */
    size_t nparams;
    const char *id; /* serialized identifier: "\"@query-param\";name=\"a\"" */
};

/* Everything points into the struct's own arena or buffers and stays valid until
 * ac_httpsig_free(). */
struct ac_httpsig {
    struct ac_sfv_arena arena;
    const char *label; /* the Dictionary key shared by Signature-Input and Signature */
    struct ac_httpsig_component comps[AC_HTTPSIG_MAX_COMPONENTS];
    size_t ncomps;
    int has_created, has_expires;
    int64_t created, expires;
    const char *nonce, *keyid, *alg, *tag; /* NULL when the parameter is absent */
    const struct ac_sfv_param *params;     /* all signature parameters, in received order */
    size_t nparams;
    const char *params_line; /* the @signature-params value: canonical serialization */
    size_t params_len;
    const uint8_t *sig; /* the raw signature bytes from the Signature field */
    size_t siglen;
    char *base;      /* after ac_httpsig_base(): the signature base, NUL-terminated */
    size_t base_len; /* its exact length (no trailing newline) */
};

/* Parse the Signature-Input and Signature field values (NUL-terminated; NULL when the request
 * lacks the field) and select one signature: the Signature-Input member whose "tag" parameter is
 * the String tag, or, when tag is NULL, the only member. hs need not be initialised.
 * Returns AC_EC_OK and fills hs, or:
 *   AC_EC_SIG_MISSING        either field is NULL;
 *   AC_EC_SIG_MALFORMED      a field is not a valid Dictionary or exceeds AC_SFV_MAX_INPUT, two
 *                            members carry the tag, the selected member is not an Inner List of
 *                            Strings, a component identifier is invalid (uppercase or invalid
 *                            field name, a derived name agentclear does not know, "@status" or
 *                            "@signature-params", a parameter other than sf/key on a field or
 *                            name on @query-param, a wrong parameter type), a component is
 *                            listed twice, there are over AC_HTTPSIG_MAX_COMPONENTS, a signature
 *                            parameter has the wrong type (created/expires Integer, others
 *                            String), or the Signature member is not a Byte Sequence;
 *   AC_EC_SIG_LABEL_MISMATCH no member with the tag (or, tag NULL, not exactly one member), or
 *                            Signature has no member with the selected label;
 *   AC_EC_INTERNAL           out of memory.
 * On failure hs is released and zeroed; ac_httpsig_free() is safe after any outcome. */
enum ac_ec ac_httpsig_parse(struct ac_httpsig *hs, const char *sig_input, const char *signature,
                            const char *tag);

/* Build the signature base of the parsed signature over req (RFC 9421 §2.5) into hs->base and
 * hs->base_len, replacing any earlier base. Field values are trimmed of leading and trailing SP
 * and HTAB; "sf" re-serializes a known structured field (Dictionaries: content-digest,
 * repr-digest, signature, signature-input, accept-signature, want-content-digest,
 * want-repr-digest, priority; Lists: cache-status, proxy-status, accept-ch); "key" serializes
 * one member of a Dictionary field. Returns AC_EC_OK, or:
 *   AC_EC_SIG_COMPONENT_ABSENT a covered field, derived value, dictionary member or query
 *                              parameter is absent (a query parameter that occurs more than
 *                              once cannot be covered, RFC 9421 §2.2.8, and counts as absent);
 *   AC_EC_SIG_MALFORMED        a covered value holds CR, LF or (derived) non-printable bytes, a
 *                              request target part exceeds AC_HTTPSIG_URI_MAX, an "sf"/"key"
 *                              field does not parse, "sf" names a field of unknown type, or the
 *                              base would exceed AC_HTTPSIG_BASE_MAX;
 *   AC_EC_INTERNAL             out of memory, or hs holds no parsed signature.
 * On failure hs->base is NULL. */
enum ac_ec ac_httpsig_base(struct ac_httpsig *hs, const struct ac_http_request *req);

/* Verify hs->sig over hs->base with key. The "alg" parameter, when present, must name the key's
 * algorithm ("ed25519" for an Ed25519 key, "ecdsa-p256-sha256" for a P-256 key).
 * Returns AC_EC_OK only when ac_sig_verify() returns 1; AC_EC_SIG_ALG_MISMATCH when alg does not
 * fit the key or the key is of neither type; AC_EC_SIG_INVALID for a bad signature;
 * AC_EC_INTERNAL when no base was built. Changes nothing in hs. */
enum ac_ec ac_httpsig_verify(const struct ac_httpsig *hs, EVP_PKEY *key);

/* 1 when the plain component name (no parameters) is covered, else 0. */
int ac_httpsig_covers(const struct ac_httpsig *hs, const char *name);

/* Release everything hs holds and zero it. Safe on a zeroed or already freed struct. */
void ac_httpsig_free(struct ac_httpsig *hs);

/* ==== policy ================================================================================ */

struct ac_httpsig_policy {
    const char *tag;               /* required tag value; NULL: no tag required */
    const char *const *components; /* NULL-terminated list of components that must be covered
                                      as plain identifiers, e.g. {"@method", "agent-runtime"} */
    int require_target; /* "@target-uri", or "@authority" + "@path" + "@query" (the last only
                           when the request has a query) */
    int require_digest; /* "content-digest" when req->has_body */
    int64_t max_skew;   /* created must lie within now +- max_skew seconds */
    int64_t max_age;    /* 0: expires is required; > 0: expires may be omitted, and a
                           signature older than max_age seconds (now - created) is expired */
};

/* agentclear's agent-request profile: tag "agentclear", {"@method", "agent-runtime"},
 * require_target, require_digest, max_skew AC_HTTPSIG_DEFAULT_SKEW, max_age 0. */
void ac_httpsig_policy_agentclear(struct ac_httpsig_policy *pol);

/* Check a parsed signature against pol at time now (UNIX seconds), in this order:
 *   parameters  tag (when pol->tag), created, nonce, keyid (non-empty), expires (when
 *               max_age is 0)                                  -> AC_EC_SIG_PARAM_MISSING
 *   components  pol->components, then the target rule         -> AC_EC_SIG_COMPONENT_MISSING,
 *               content-digest for a request with a body        -> AC_EC_SIG_COMPONENT_MISSING,
 *               or AC_EC_DIGEST_MISSING when the request has no Content-Digest field at all
 *   time        created outside now +- max_skew               -> AC_EC_SIG_STALE
 *               expires < now, expires < created, or (max_age > 0) now - created > max_age
 *                                                               -> AC_EC_SIG_EXPIRED
 * Returns AC_EC_OK when all hold. Covered components match only as plain identifiers (no
 * parameters). hs, req and pol must not be NULL. Pure: no side effects other than calling
 * req->header for "content-digest". */
enum ac_ec ac_httpsig_check_policy(const struct ac_httpsig *hs, const struct ac_http_request *req,
                                   const struct ac_httpsig_policy *pol, int64_t now);

/* ==== signer ================================================================================ */

struct ac_httpsig_sign_opts {
    const char *label;             /* Dictionary key, e.g. "sig1" (an RFC 8941 key) */
    const char *const *components; /* NULL-terminated; a plain name ("@method",
                                      "content-digest") or a serialized identifier starting with
                                      '"' ("\"@query-param\";name=\"pet\"") */
    const char *keyid;             /* required */
    int64_t created;               /* always written */
    int64_t expires;               /* written when nonzero */
    const char *nonce;             /* written when non-NULL */
    const char *tag;               /* written when non-NULL */
    int with_alg;                  /* nonzero: write alg for the key's algorithm */
};

/* Sign req: writes the Signature-Input value ("label=(...);created=...") to sig_input and the
 * Signature value ("label=:...:") to signature, both NUL-terminated, built by the same parser
 * and base code the verifier uses. Parameters are written in the order created, expires, nonce,
 * alg, keyid, tag. Returns AC_EC_OK, AC_EC_PARAMETER_INVALID when opts are invalid (bad label,
 * no keyid, unparsable component, key of no supported type) or an output buffer is too small,
 * the codes of ac_httpsig_parse()/ac_httpsig_base() when a component is invalid or absent from
 * req, or AC_EC_INTERNAL when signing fails. Outputs are unspecified on failure. */
enum ac_ec ac_httpsig_sign(EVP_PKEY *key, const struct ac_http_request *req,
                           const struct ac_httpsig_sign_opts *opts, char *sig_input, size_t si_cap,
                           char *signature, size_t sig_cap);

#endif
