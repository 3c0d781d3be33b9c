/* protocol/jdoc.c -- strict readers for signed-document payloads; see jdoc.h. */
#include "protocol/jdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ac_doc_err_clear(struct ac_doc_err *err)
{
    if (err == NULL) return;
    err->detail = "";
    err->pointer[0] = '\0';
}

/* Append s to dst (holding *len bytes) escaping '~' and '/' (RFC 6901 §3); stop before the buffer
 * would overflow, never splitting a UTF-8 sequence or an escape. */
static void ptr_append(char *dst, size_t *len, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        char esc[2] = {0, 0};
        size_t need;
        if (*p == '~' || *p == '/') {
            esc[0] = '~';
            esc[1] = *p == '~' ? '0' : '1';
            need = 2;
        } else if (*p < 0x80) {
            need = 1;
        } else {
            need = 1; /* a UTF-8 sequence: the lead byte and its continuation bytes */
            while ((p[need] & 0xC0) == 0x80)
                need++;
        }
        if (*len + need >= AC_DOC_POINTER_MAX) return;
        if (esc[0]) {
            memcpy(dst + *len, esc, 2);
        } else {
            memcpy(dst + *len, p, need);
        }
        *len += need;
        dst[*len] = '\0';
        p += esc[0] ? 1 : need;
    }
}

void ac_doc_err_set(struct ac_doc_err *err, const char *base, const char *name, const char *detail)
{
    if (err == NULL) return;
    err->detail = detail;
    size_t len = 0;
    err->pointer[0] = '\0';
    if (base) {
        /* base is a pointer we built ourselves: copy verbatim, cut if needed */
        len = strlen(base);
        if (len >= AC_DOC_POINTER_MAX) len = AC_DOC_POINTER_MAX - 1;
        memcpy(err->pointer, base, len);
        err->pointer[len] = '\0';
    }
    if (name && len + 1 < AC_DOC_POINTER_MAX) {
        err->pointer[len++] = '/';
        err->pointer[len] = '\0';
        ptr_append(err->pointer, &len, name);
    }
}

int ac_doc_only(const json_t *obj, const char *base, const char *const *names,
                struct ac_doc_err *err)
{
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach((json_t *)obj, key, key_len, v)
    {
        (void)v;
        int known = 0;
        for (const char *const *n = names; *n && !known; n++)
            known = strcmp(*n, key) == 0;
        /* a key with an embedded NUL compares equal to its prefix: refuse it as unknown */
        if (!known || strlen(key) != key_len) {
            ac_doc_err_set(err, base, key, "unknown member");
            return -1;
        }
    }
    return 0;
}

/* the member, or NULL; -1 through *rc when absent and required */
static const json_t *member(const json_t *obj, const char *base, const char *name, int required,
                            int *rc, struct ac_doc_err *err)
{
    const json_t *m = json_object_get(obj, name);
    *rc = 0;
    if (m == NULL && required) {
        ac_doc_err_set(err, base, name, "required member is missing");
        *rc = -1;
    }
    return m;
}

/* a string without embedded NUL, or NULL with err set */
static const char *string_of(const json_t *m, const char *base, const char *name,
                             struct ac_doc_err *err)
{
    if (!json_is_string(m)) {
        ac_doc_err_set(err, base, name, "must be a string");
        return NULL;
    }
    const char *s = json_string_value(m);
    if (strlen(s) != json_string_length(m)) {
        ac_doc_err_set(err, base, name, "must not contain NUL");
        return NULL;
    }
    return s;
}

static int id_value(const json_t *m, const char *base, const char *name, char out[AC_ID_MAX + 1],
                    struct ac_doc_err *err)
{
    const char *s = string_of(m, base, name, err);
    if (s == NULL) return -1;
    if (!ac_id_valid(s)) {
        ac_doc_err_set(err, base, name, "must be 1-64 characters of [A-Za-z0-9._:-]");
        return -1;
    }
    memcpy(out, s, strlen(s) + 1);
    return 1;
}

int ac_doc_id(const json_t *obj, const char *base, const char *name, int required,
              char out[AC_ID_MAX + 1], struct ac_doc_err *err)
{
    int rc;
    const json_t *m = member(obj, base, name, required, &rc, err);
    if (m == NULL) return rc;
    return id_value(m, base, name, out, err);
}

int ac_doc_int(const json_t *obj, const char *base, const char *name, int required, int64_t min,
               int64_t max, int64_t *out, struct ac_doc_err *err)
{
    int rc;
    const json_t *m = member(obj, base, name, required, &rc, err);
    if (m == NULL) return rc;
    if (!json_is_integer(m)) {
        ac_doc_err_set(err, base, name, "must be an integer");
        return -1;
    }
    json_int_t v = json_integer_value(m);
    if (v < min || v > max) {
        ac_doc_err_set(err, base, name, "integer out of range");
        return -1;
    }
    *out = (int64_t)v;
    return 1;
}

int ac_doc_amount(const json_t *obj, const char *base, const char *name, int required,
                  unsigned scale, int64_t min, int64_t *out, struct ac_doc_err *err)
{
    int rc;
    const json_t *m = member(obj, base, name, required, &rc, err);
    if (m == NULL) return rc;
    if (!json_is_string(m)) {
        ac_doc_err_set(err, base, name, "amount must be a decimal string");
        return -1;
    }
    const char *s = string_of(m, base, name, err);
    if (s == NULL) return -1;
    int64_t v = 0;
    switch (ac_amount_parse(s, scale, &v)) {
    case AC_EC_OK:
        break;
    case AC_EC_AMOUNT_NEGATIVE:
        ac_doc_err_set(err, base, name, "amount must not be negative");
        return -1;
    case AC_EC_AMOUNT_PRECISION:
        ac_doc_err_set(err, base, name, "amount has more decimals than the asset allows");
        return -1;
    case AC_EC_AMOUNT_OVERFLOW:
        ac_doc_err_set(err, base, name, "amount does not fit the ledger's range");
        return -1;
    default:
        ac_doc_err_set(err, base, name, "amount is not a decimal string");
        return -1;
    }
    if (v < min) {
        ac_doc_err_set(err, base, name,
                       min > 0 ? "amount must be greater than zero" : "amount out of range");
        return -1;
    }
    *out = v;
    return 1;
}

int ac_doc_text(const json_t *obj, const char *base, const char *name, int required, char *out,
                size_t cap, struct ac_doc_err *err)
{
    int rc;
    const json_t *m = member(obj, base, name, required, &rc, err);
    if (m == NULL) return rc;
    const char *s = string_of(m, base, name, err);
    if (s == NULL) return -1;
    size_t n = strlen(s);
    if (n == 0 || n >= cap) {
        ac_doc_err_set(err, base, name, "text is empty or too long");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            ac_doc_err_set(err, base, name, "text must not contain control characters");
            return -1;
        }
    }
    memcpy(out, s, n + 1);
    return 1;
}

int ac_doc_id_list(const json_t *obj, const char *base, const char *name, int required,
                   unsigned max, char (*out)[AC_ID_MAX + 1], unsigned *n, struct ac_doc_err *err)
{
    int rc;
    const json_t *m = member(obj, base, name, required, &rc, err);
    if (m == NULL) return rc;
    if (!json_is_array(m) || json_array_size(m) == 0) {
        ac_doc_err_set(err, base, name, "must be a non-empty array");
        return -1;
    }
    if (json_array_size(m) > max) {
        ac_doc_err_set(err, base, name, "too many entries");
        return -1;
    }
    char here[AC_DOC_POINTER_MAX];
    struct ac_doc_err tmp;
    ac_doc_err_set(&tmp, base, name, "");
    memcpy(here, tmp.pointer, sizeof here);
    unsigned count = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(m, i, v)
    {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        if (id_value(v, here, idx, out[count], err) < 0) return -1;
        for (unsigned k = 0; k < count; k++) {
            if (strcmp(out[k], out[count]) == 0) {
                ac_doc_err_set(err, here, idx, "duplicate entry");
                return -1;
            }
        }
        count++;
    }
    *n = count;
    return 1;
}

int ac_doc_jws_check(const struct ac_jws *jws, const char *typ, const char **detail)
{
    const char *d = NULL;
    if (jws == NULL || jws->header == NULL) {
        d = "no jws";
    } else if (jws->typ == NULL || strcmp(jws->typ, typ) != 0 ||
               strlen(jws->typ) != json_string_length(json_object_get(jws->header, "typ"))) {
        d = "header typ does not name this kind of document";
    } else if (jws->kid == NULL || strlen(jws->kid) != AC_JWK_THUMBPRINT_LEN ||
               json_string_length(json_object_get(jws->header, "kid")) != AC_JWK_THUMBPRINT_LEN ||
               strspn(jws->kid,
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
                   AC_JWK_THUMBPRINT_LEN) {
        d = "header kid must be the signing key's RFC 7638 thumbprint";
    } else if (jws->payload_json == NULL) {
        d = "payload is not one json object without duplicate members";
    }
    if (d) {
        if (detail) *detail = d;
        return -1;
    }
    return 0;
}

char *ac_doc_canonical(const json_t *value)
{
    /* json_dumpb into our own buffer (json_dumps would use jansson's replaceable allocator) */
    const size_t flags = JSON_COMPACT | JSON_SORT_KEYS;
    size_t n = json_dumpb(value, NULL, 0, flags);
    if (n == 0) return NULL;
    char *s = malloc(n + 1);
    if (s == NULL) return NULL;
    if (json_dumpb(value, s, n, flags) != n) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

json_t *ac_doc_amount_json(const char *asset, int64_t units, unsigned scale)
{
    char buf[AC_AMOUNT_STR_MAX];
    return json_pack("{s:s, s:s}", "currency", asset, "value", ac_amount_format(units, scale, buf));
}
