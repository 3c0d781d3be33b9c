/* protocol/sigbase.h -- reading back a recorded RFC 9421 request (the signature base and the
 * signature bytes an evidence record keeps), for the offline checkers (bundle.c, evcheck.c). */
#ifndef AC_SIGBASE_H
#define AC_SIGBASE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/httpsig.h"

/* The value of the signature base line of component id (e.g. "\"@method\"", with the quotes):
 * a pointer into base and its length in *vlen, or NULL when base has no such line. */
const char *ac_sigbase_line(const uint8_t *base, size_t len, const char *id, size_t *vlen);

/* Parse a recorded signature as ac_httpsig_parse() does, from the value of its
 * "@signature-params" line (params, plen) and the raw signature bytes, both under the label
 * "sig". hs is zeroed first; results and cleanup as ac_httpsig_parse() (AC_EC_INTERNAL when out
 * of memory). */
enum ac_ec ac_sigbase_parse(struct ac_httpsig *hs, const char *params, size_t plen,
                            const uint8_t *sig, size_t sig_len);

#endif
