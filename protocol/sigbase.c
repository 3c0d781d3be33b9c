/* Reading back recorded RFC 9421 requests (see sigbase.h). */
#include "protocol/sigbase.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/b64.h"
#include "protocol/buf.h"

const char *ac_sigbase_line(const uint8_t *base, size_t len, const char *id, size_t *vlen)
{
    size_t idn = strlen(id);
    const char *p = (const char *)base, *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) >= idn + 2 && memcmp(p, id, idn) == 0 && p[idn] == ':' &&
            p[idn + 1] == ' ') {
            *vlen = (size_t)(le - p) - idn - 2;
            return p + idn + 2;
        }
        p = nl ? nl + 1 : end;
    }
    return NULL;
}

enum ac_ec ac_sigbase_parse(struct ac_httpsig *hs, const char *params, size_t plen,
                            const uint8_t *sig, size_t sig_len)
{
    memset(hs, 0, sizeof *hs);
    struct ac_buf si = {0}, sv = {0};
    ac_buf_adds(&si, "sig=");
    ac_buf_add(&si, params, plen);
    char *b64 = malloc(ac_b64_enc_len(sig_len));
    if (b64 != NULL) {
        ac_b64_encode(sig, sig_len, b64, 0);
        ac_buf_printf(&sv, "sig=:%s:", b64);
    }
    free(b64);
    enum ac_ec ec = (si.oom || sv.oom || b64 == NULL)
                        ? AC_EC_INTERNAL
                        : ac_httpsig_parse(hs, ac_buf_str(&si), ac_buf_str(&sv), NULL);
    ac_buf_free(&si);
    ac_buf_free(&sv);
    return ec;
}
