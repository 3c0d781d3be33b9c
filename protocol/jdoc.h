/* protocol/jdoc.h -- strict readers for the JSON payloads of user-signed documents (mandates,
 * mandate revocations, step-up challenges and confirmations), and the header check of their JWS.
 *
 * The documents are security documents: every member has one type, unknown members are refused,
 * strings never contain NUL, integers are JSON integers (never reals), amounts are decimal
 * strings. A failure names the offending member as an RFC 6901 JSON pointer ("/caps/day",
 * "/agents/2") and a short static lowercase detail, for problem+json. */
#ifndef AC_JDOC_H
#define AC_JDOC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "protocol/amount.h"
#include "protocol/errors.h"
#include "protocol/jose.h"

/* Room for a JSON pointer, including the NUL. Longer pointers (only possible with a long unknown
 * member name) are cut at a UTF-8 character boundary. */
#define AC_DOC_POINTER_MAX 96

/* Where and why a document was refused. detail is static text (never NULL after a failure, ""
 * before); pointer is "" for the document as a whole. */
struct ac_doc_err {
    const char *detail;
    char pointer[AC_DOC_POINTER_MAX];
};

/* Set err (which may be NULL) to base + "/" + name (name escaped per RFC 6901; NULL name: base
 * alone) and detail. */
void ac_doc_err_set(struct ac_doc_err *err, const char *base, const char *name, const char *detail);

/* Clear err (may be NULL): detail "" and pointer "". */
void ac_doc_err_clear(struct ac_doc_err *err);

/* 0 when every member of obj is in names (a NULL-terminated list); else -1 with err naming the
 * first unknown member (in jansson's iteration order). */
int ac_doc_only(const json_t *obj, const char *base, const char *const *names,
                struct ac_doc_err *err);

/* The readers below share one contract. The member `name` of obj is read; base is the JSON
 * pointer of obj ("" for the top level). Returns 1 and sets *out when the member is present and
 * valid; 0 when it is absent and required is 0 (*out untouched); -1 with err set when it is absent
 * but required, or present but invalid (*out then unspecified). */

/* An identifier (ac_id_valid) into out. */
int ac_doc_id(const json_t *obj, const char *base, const char *name, int required,
              char out[AC_ID_MAX + 1], struct ac_doc_err *err);

/* A JSON integer in [min, max]. */
int ac_doc_int(const json_t *obj, const char *base, const char *name, int required, int64_t min,
               int64_t max, int64_t *out, struct ac_doc_err *err);

/* A decimal string amount (ac_amount_parse at scale) that is >= min base units. */
int ac_doc_amount(const json_t *obj, const char *base, const char *name, int required,
                  unsigned scale, int64_t min, int64_t *out, struct ac_doc_err *err);

/* A string of 1..cap-1 bytes with no control character (U+0000..U+001F, U+007F), copied into out
 * (cap bytes). */
int ac_doc_text(const json_t *obj, const char *base, const char *name, int required, char *out,
                size_t cap, struct ac_doc_err *err);

/* A non-empty array of at most max distinct identifiers into out[0..*n). */
int ac_doc_id_list(const json_t *obj, const char *base, const char *name, int required,
                   unsigned max, char (*out)[AC_ID_MAX + 1], unsigned *n, struct ac_doc_err *err);

/* Check the protected header of a parsed JWS that carries a document: "typ" exactly `typ`, a
 * "kid" of the RFC 7638 thumbprint form (43 base64url characters), and a payload that is one
 * JSON object without duplicate members. Returns 0, or -1 with *detail set (detail may be NULL).
 * The signature is not checked here: the caller looks the key up by kid and calls ac_jws_verify.
 */
int ac_doc_jws_check(const struct ac_jws *jws, const char *typ, const char **detail);

/* Render a JSON value in the canonical form of signed agentclear documents: compact, members in
 * sorted order (RFC 8785 JCS for the documents defined here, whose member names are ASCII and
 * whose strings hold no control characters). Returns a malloc'd NUL-terminated string (free with
 * free()), or NULL on allocation failure. */
char *ac_doc_canonical(const json_t *value);

/* {"currency":asset,"value":"<units at scale>"}; a new reference or NULL (out of memory). */
json_t *ac_doc_amount_json(const char *asset, int64_t units, unsigned scale);

#endif
