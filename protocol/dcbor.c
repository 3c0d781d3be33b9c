/* Deterministic CBOR (RFC 8949 §4.2) builder, encoder and checker over libcbor. See dcbor.h. */
#include "protocol/dcbor.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/buf.h"

const char *ac_dcbor_strerror(enum ac_dcbor_status st)
{
    switch (st) {
    case AC_DCBOR_OK:
        return "ok";
    case AC_DCBOR_ENOMEM:
        return "out of memory";
    case AC_DCBOR_EARG:
        return "invalid argument";
    case AC_DCBOR_EMALFORMED:
        return "malformed cbor";
    case AC_DCBOR_ETRUNCATED:
        return "truncated cbor";
    case AC_DCBOR_ETRAILING:
        return "trailing bytes after the item";
    case AC_DCBOR_EINDEFINITE:
        return "indefinite length";
    case AC_DCBOR_ENONMINIMAL:
        return "head not in shortest form";
    case AC_DCBOR_EFLOAT:
        return "floating-point value";
    case AC_DCBOR_ESIMPLE:
        return "simple value other than false, true, null";
    case AC_DCBOR_ETAG:
        return "tag not allowed";
    case AC_DCBOR_EUNSORTED:
        return "map keys not sorted";
    case AC_DCBOR_EDUPLICATE:
        return "duplicate map key";
    case AC_DCBOR_EUTF8:
        return "text is not valid utf-8";
    case AC_DCBOR_EDEPTH:
        return "nesting too deep";
    }
    return "unknown status";
}

/* ==== builder ================================================================================ */

cbor_item_t *ac_dcbor_uint(uint64_t v)
{
    if (v <= UINT8_MAX) return cbor_build_uint8((uint8_t)v);
    if (v <= UINT16_MAX) return cbor_build_uint16((uint16_t)v);
    if (v <= UINT32_MAX) return cbor_build_uint32((uint32_t)v);
    return cbor_build_uint64(v);
}

cbor_item_t *ac_dcbor_int(int64_t v)
{
    if (v >= 0) return ac_dcbor_uint((uint64_t)v);
    uint64_t n = (uint64_t)(-(v + 1)); /* the CBOR argument: value = -1 - n; no overflow */
    if (n <= UINT8_MAX) return cbor_build_negint8((uint8_t)n);
    if (n <= UINT16_MAX) return cbor_build_negint16((uint16_t)n);
    if (n <= UINT32_MAX) return cbor_build_negint32((uint32_t)n);
    return cbor_build_negint64(n);
}

/* libcbor memcpy()s from the handle even for length 0; never hand it NULL */
static const unsigned char empty_bytes[1];

cbor_item_t *ac_dcbor_bytes(const uint8_t *p, size_t n)
{
    if (!p && n) return NULL;
    return cbor_build_bytestring(n ? p : empty_bytes, n);
}

cbor_item_t *ac_dcbor_text(const char *s, size_t n)
{
    if (!s && n) return NULL;
    return cbor_build_stringn(n ? s : (const char *)empty_bytes, n);
}

cbor_item_t *ac_dcbor_textz(const char *s)
{
    return s ? ac_dcbor_text(s, strlen(s)) : NULL;
}

cbor_item_t *ac_dcbor_bool(bool v)
{
    return cbor_build_bool(v);
}

cbor_item_t *ac_dcbor_null(void)
{
    return cbor_new_null();
}

cbor_item_t *ac_dcbor_array(size_t cap)
{
    return cbor_new_definite_array(cap);
}

cbor_item_t *ac_dcbor_map(size_t cap)
{
    return cbor_new_definite_map(cap);
}

static void drop(cbor_item_t *it)
{
    if (it) cbor_decref(&it);
}

int ac_dcbor_array_push(cbor_item_t *array, cbor_item_t *item)
{
    int rc = -1;
    /* cbor_array_push takes its own reference and never allocates for a definite array */
    if (array && item && cbor_isa_array(array) && cbor_array_is_definite(array) &&
        cbor_array_push(array, item))
        rc = 0;
    drop(item);
    return rc;
}

int ac_dcbor_map_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
    int rc = -1;
    /* cbor_map_add takes its own references and never allocates for a definite map */
    if (map && key && value && cbor_isa_map(map) && cbor_map_is_definite(map) &&
        cbor_map_add(map, (struct cbor_pair){.key = key, .value = value}))
        rc = 0;
    drop(key);
    drop(value);
    return rc;
}

int ac_dcbor_map_putz(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    return ac_dcbor_map_put(map, ac_dcbor_textz(key), value);
}

/* ==== encoder ================================================================================ */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static int reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n) return 0;
    if (n > SIZE_MAX / 2 - b->len) return -1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static enum ac_dcbor_status put(struct buf *b, const void *d, size_t n)
{
    if (n == 0) return AC_DCBOR_OK;
    if (reserve(b, n) != 0) return AC_DCBOR_ENOMEM;
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return AC_DCBOR_OK;
}

/* Shortest head for major type 0-6 and argument v, via libcbor's encoders (which pick the
 * narrowest width by value). */
static enum ac_dcbor_status put_head(struct buf *b, cbor_type major, uint64_t v)
{
    if (reserve(b, 9) != 0) return AC_DCBOR_ENOMEM;
    unsigned char *o = b->p + b->len;
    size_t n = 0;
    switch (major) {
    case CBOR_TYPE_UINT:
        n = cbor_encode_uint(v, o, 9);
        break;
    case CBOR_TYPE_NEGINT:
        n = cbor_encode_negint(v, o, 9);
        break;
    case CBOR_TYPE_BYTESTRING:
        n = cbor_encode_bytestring_start((size_t)v, o, 9);
        break;
    case CBOR_TYPE_STRING:
        n = cbor_encode_string_start((size_t)v, o, 9);
        break;
    case CBOR_TYPE_ARRAY:
        n = cbor_encode_array_start((size_t)v, o, 9);
        break;
    case CBOR_TYPE_MAP:
        n = cbor_encode_map_start((size_t)v, o, 9);
        break;
    case CBOR_TYPE_TAG:
        n = cbor_encode_tag(v, o, 9);
        break;
    case CBOR_TYPE_FLOAT_CTRL:
        break;
    }
    assert(n > 0); /* 9 bytes are always enough */
    if (n == 0) return AC_DCBOR_EARG;
    b->len += n;
    return AC_DCBOR_OK;
}

/* Byte or text string, definite or indefinite (chunks joined). */
static enum ac_dcbor_status enc_string(struct buf *b, const cbor_item_t *it, int text)
{
    int indef = text ? cbor_string_is_indefinite(it) : cbor_bytestring_is_indefinite(it);
    cbor_type major = text ? CBOR_TYPE_STRING : CBOR_TYPE_BYTESTRING;
    if (!indef) {
        size_t n = text ? cbor_string_length(it) : cbor_bytestring_length(it);
        const uint8_t *d = text ? cbor_string_handle(it) : cbor_bytestring_handle(it);
        if (text && !ac_utf8_valid(d, n)) return AC_DCBOR_EUTF8;
        enum ac_dcbor_status st = put_head(b, major, n);
        return st ? st : put(b, d, n);
    }
    cbor_item_t **chunks = text ? cbor_string_chunks_handle(it) : cbor_bytestring_chunks_handle(it);
    size_t count = text ? cbor_string_chunk_count(it) : cbor_bytestring_chunk_count(it);
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = text ? cbor_string_length(chunks[i]) : cbor_bytestring_length(chunks[i]);
        if (n > SIZE_MAX - total) return AC_DCBOR_ENOMEM;
        total += n;
    }
    enum ac_dcbor_status st = put_head(b, major, total);
    if (st) return st;
    size_t start = b->len;
    for (size_t i = 0; i < count; i++) {
        size_t n = text ? cbor_string_length(chunks[i]) : cbor_bytestring_length(chunks[i]);
        const uint8_t *d = text ? cbor_string_handle(chunks[i]) : cbor_bytestring_handle(chunks[i]);
        if ((st = put(b, d, n)) != AC_DCBOR_OK) return st;
    }
    /* a code point may straddle chunks, so validate the joined text */
    if (text && !ac_utf8_valid(b->p + start, total)) return AC_DCBOR_EUTF8;
    return AC_DCBOR_OK;
}

static enum ac_dcbor_status enc(struct buf *b, const cbor_item_t *it, unsigned depth);

struct keyref {
    const uint8_t *p;
    size_t len;
    size_t idx;
};

static int keyref_cmp(const void *x, const void *y)
{
    const struct keyref *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

/* Map: encode every key on its own, sort pairs by those bytes (§4.2.1), then write them. */
static enum ac_dcbor_status enc_map(struct buf *b, const cbor_item_t *it, unsigned depth)
{
    size_t n = cbor_map_size(it);
    struct cbor_pair *pairs = cbor_map_handle(it);
    enum ac_dcbor_status st = put_head(b, CBOR_TYPE_MAP, n);
    if (st || n == 0) return st;
    struct buf kb = {0};
    size_t *off = malloc((n + 1) * sizeof *off);
    struct keyref *refs = malloc(n * sizeof *refs);
    if (!off || !refs) {
        st = AC_DCBOR_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        off[i] = kb.len;
        if ((st = enc(&kb, pairs[i].key, depth + 1)) != AC_DCBOR_OK) goto out;
    }
    off[n] = kb.len;
    for (size_t i = 0; i < n; i++)
        refs[i] = (struct keyref){kb.p + off[i], off[i + 1] - off[i], i};
    qsort(refs, n, sizeof *refs, keyref_cmp);
    for (size_t i = 1; i < n; i++)
        if (keyref_cmp(&refs[i - 1], &refs[i]) == 0) {
            st = AC_DCBOR_EDUPLICATE;
            goto out;
        }
    for (size_t i = 0; i < n; i++) {
        if ((st = put(b, refs[i].p, refs[i].len)) != AC_DCBOR_OK) goto out;
        if ((st = enc(b, pairs[refs[i].idx].value, depth + 1)) != AC_DCBOR_OK) goto out;
    }
out:
    free(kb.p);
    free(off);
    free(refs);
    return st;
}

static enum ac_dcbor_status enc(struct buf *b, const cbor_item_t *it, unsigned depth)
{
    if (!it) return AC_DCBOR_EARG;
    if (depth > AC_DCBOR_MAX_DEPTH) return AC_DCBOR_EDEPTH;
    enum ac_dcbor_status st;
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_UINT:
        return put_head(b, CBOR_TYPE_UINT, cbor_get_int(it));
    case CBOR_TYPE_NEGINT:
        return put_head(b, CBOR_TYPE_NEGINT, cbor_get_int(it));
    case CBOR_TYPE_BYTESTRING:
        return enc_string(b, it, 0);
    case CBOR_TYPE_STRING:
        return enc_string(b, it, 1);
    case CBOR_TYPE_ARRAY: {
        size_t n = cbor_array_size(it);
        cbor_item_t **items = cbor_array_handle(it);
        if ((st = put_head(b, CBOR_TYPE_ARRAY, n)) != AC_DCBOR_OK) return st;
        for (size_t i = 0; i < n; i++)
            if ((st = enc(b, items[i], depth + 1)) != AC_DCBOR_OK) return st;
        return AC_DCBOR_OK;
    }
    case CBOR_TYPE_MAP:
        return enc_map(b, it, depth);
    case CBOR_TYPE_TAG: {
        if ((st = put_head(b, CBOR_TYPE_TAG, cbor_tag_value(it))) != AC_DCBOR_OK) return st;
        cbor_item_t *inner = cbor_tag_item(it); /* takes a reference */
        st = enc(b, inner, depth + 1);
        if (inner) cbor_decref(&inner);
        return st;
    }
    case CBOR_TYPE_FLOAT_CTRL:
        if (!cbor_float_ctrl_is_ctrl(it)) return AC_DCBOR_EFLOAT;
        switch (cbor_ctrl_value(it)) {
        case CBOR_CTRL_FALSE:
            return put(b, "\xf4", 1);
        case CBOR_CTRL_TRUE:
            return put(b, "\xf5", 1);
        case CBOR_CTRL_NULL:
            return put(b, "\xf6", 1);
        default:
            return AC_DCBOR_ESIMPLE;
        }
    }
    return AC_DCBOR_EARG;
}

enum ac_dcbor_status ac_dcbor_encode(const cbor_item_t *item, uint8_t **out, size_t *len)
{
    if (!out || !len) return AC_DCBOR_EARG;
    *out = NULL;
    *len = 0;
    struct buf b = {0};
    enum ac_dcbor_status st = enc(&b, item, 0);
    assert(st != AC_DCBOR_OK || b.len > 0); /* every item is at least one byte */
    if (st != AC_DCBOR_OK) {
        free(b.p);
        return st;
    }
    *out = b.p;
    *len = b.len;
    return AC_DCBOR_OK;
}

int ac_dcbor_encode_built(cbor_item_t *item, int rc, uint8_t **out, size_t *len, char *err,
                          size_t errlen)
{
    *out = NULL;
    *len = 0;
    if (rc != 0) {
        cbor_decref(&item);
        return ac_errf(err, errlen, "out of memory");
    }
    enum ac_dcbor_status st = ac_dcbor_encode(item, out, len);
    cbor_decref(&item);
    if (st != AC_DCBOR_OK) return ac_errf(err, errlen, "cbor: %s", ac_dcbor_strerror(st));
    return 0;
}

/* ==== streaming writer ======================================================================== */

static uint8_t *w_room(struct ac_dcbor_w *w, size_t more)
{
    if (w->st != AC_DCBOR_OK) return NULL;
    if (more > SIZE_MAX / 2 - w->n) {
        w->st = AC_DCBOR_ENOMEM;
        return NULL;
    }
    if (w->n + more > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + more)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (q == NULL) {
            w->st = AC_DCBOR_ENOMEM;
            return NULL;
        }
        w->p = q;
        w->cap = cap;
    }
    uint8_t *at = w->p + w->n;
    w->n += more;
    return at;
}

/* The shortest head of major type major with argument v. */
static void w_head(struct ac_dcbor_w *w, unsigned major, uint64_t v)
{
    uint8_t mt = (uint8_t)(major << 5);
    size_t k = v < 24 ? 0 : v <= UINT8_MAX ? 1 : v <= UINT16_MAX ? 2 : v <= UINT32_MAX ? 4 : 8;
    uint8_t *at = w_room(w, 1 + k);
    if (at == NULL) return;
    at[0] = (uint8_t)(mt | (k == 0 ? v : k == 1 ? 24 : k == 2 ? 25 : k == 4 ? 26 : 27));
    for (size_t i = 0; i < k; i++)
        at[1 + i] = (uint8_t)(v >> (8 * (k - 1 - i)));
}

void ac_dcbor_w_uint(struct ac_dcbor_w *w, uint64_t v)
{
    w_head(w, 0, v);
}

void ac_dcbor_w_int(struct ac_dcbor_w *w, int64_t v)
{
    if (v >= 0)
        w_head(w, 0, (uint64_t)v);
    else
        w_head(w, 1, (uint64_t)(-(v + 1))); /* value = -1 - argument; no overflow */
}

static void w_str(struct ac_dcbor_w *w, unsigned major, const void *p, size_t n)
{
    w_head(w, major, n);
    uint8_t *at = w_room(w, n);
    if (at != NULL && n) memcpy(at, p, n);
}

void ac_dcbor_w_bytes(struct ac_dcbor_w *w, const uint8_t *p, size_t n)
{
    if (p == NULL && n) {
        if (w->st == AC_DCBOR_OK) w->st = AC_DCBOR_EARG;
        return;
    }
    w_str(w, 2, p, n);
}

void ac_dcbor_w_textz(struct ac_dcbor_w *w, const char *s)
{
    if (s == NULL) {
        if (w->st == AC_DCBOR_OK) w->st = AC_DCBOR_EARG;
        return;
    }
    size_t n = strlen(s);
    if (!ac_utf8_valid((const uint8_t *)s, n)) {
        if (w->st == AC_DCBOR_OK) w->st = AC_DCBOR_EUTF8;
        return;
    }
    w_str(w, 3, s, n);
}

void ac_dcbor_w_array(struct ac_dcbor_w *w, size_t n)
{
    w_head(w, 4, n);
}

void ac_dcbor_w_map(struct ac_dcbor_w *w, size_t npairs)
{
    w_head(w, 5, npairs);
}

/* ==== checker ================================================================================ */

/* One head reported by libcbor's streaming decoder. */
enum ev_kind {
    EV_NONE,
    EV_UINT,
    EV_NEGINT,
    EV_BYTES,
    EV_TEXT,
    EV_ARRAY,
    EV_MAP,
    EV_TAG,
    EV_FLOAT,
    EV_SIMPLE_OK, /* false, true, null */
    EV_UNDEF,
    EV_INDEF,
    EV_BREAK,
};

struct ev {
    enum ev_kind kind;
    uint64_t v; /* integer argument, string length, array/map count or tag number */
    const uint8_t *data;
};

#define EVC(c) ((struct ev *)(c))
static void cb_u8(void *c, uint8_t v)
{
    *EVC(c) = (struct ev){EV_UINT, v, NULL};
}
static void cb_u16(void *c, uint16_t v)
{
    *EVC(c) = (struct ev){EV_UINT, v, NULL};
}
static void cb_u32(void *c, uint32_t v)
{
    *EVC(c) = (struct ev){EV_UINT, v, NULL};
}
static void cb_u64(void *c, uint64_t v)
{
    *EVC(c) = (struct ev){EV_UINT, v, NULL};
}
static void cb_n8(void *c, uint8_t v)
{
    *EVC(c) = (struct ev){EV_NEGINT, v, NULL};
}
static void cb_n16(void *c, uint16_t v)
{
    *EVC(c) = (struct ev){EV_NEGINT, v, NULL};
}
static void cb_n32(void *c, uint32_t v)
{
    *EVC(c) = (struct ev){EV_NEGINT, v, NULL};
}
static void cb_n64(void *c, uint64_t v)
{
    *EVC(c) = (struct ev){EV_NEGINT, v, NULL};
}
static void cb_bytes(void *c, cbor_data d, size_t n)
{
    *EVC(c) = (struct ev){EV_BYTES, n, d};
}
static void cb_text(void *c, cbor_data d, size_t n)
{
    *EVC(c) = (struct ev){EV_TEXT, n, d};
}
static void cb_indef(void *c)
{
    *EVC(c) = (struct ev){EV_INDEF, 0, NULL};
}
static void cb_array(void *c, size_t n)
{
    *EVC(c) = (struct ev){EV_ARRAY, n, NULL};
}
static void cb_map(void *c, size_t n)
{
    *EVC(c) = (struct ev){EV_MAP, n, NULL};
}
static void cb_tag(void *c, uint64_t v)
{
    *EVC(c) = (struct ev){EV_TAG, v, NULL};
}
static void cb_f4(void *c, float f)
{
    (void)f;
    *EVC(c) = (struct ev){EV_FLOAT, 0, NULL};
}
static void cb_f8(void *c, double f)
{
    (void)f;
    *EVC(c) = (struct ev){EV_FLOAT, 0, NULL};
}
static void cb_undef(void *c)
{
    *EVC(c) = (struct ev){EV_UNDEF, 0, NULL};
}
static void cb_null(void *c)
{
    *EVC(c) = (struct ev){EV_SIMPLE_OK, 0, NULL};
}
static void cb_bool(void *c, bool v)
{
    (void)v;
    *EVC(c) = (struct ev){EV_SIMPLE_OK, 0, NULL};
}
static void cb_break(void *c)
{
    *EVC(c) = (struct ev){EV_BREAK, 0, NULL};
}
#undef EVC

static const struct cbor_callbacks check_cbs = {
    .uint8 = cb_u8,
    .uint16 = cb_u16,
    .uint32 = cb_u32,
    .uint64 = cb_u64,
    .negint8 = cb_n8,
    .negint16 = cb_n16,
    .negint32 = cb_n32,
    .negint64 = cb_n64,
    .byte_string_start = cb_indef,
    .byte_string = cb_bytes,
    .string = cb_text,
    .string_start = cb_indef,
    .indef_array_start = cb_indef,
    .array_start = cb_array,
    .indef_map_start = cb_indef,
    .map_start = cb_map,
    .tag = cb_tag,
    .float2 = cb_f4,
    .float4 = cb_f4,
    .float8 = cb_f8,
    .undefined = cb_undef,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_break,
};

/* Length of the shortest head for argument v. */
static size_t head_len(uint64_t v)
{
    return v < 24 ? 1 : v <= UINT8_MAX ? 2 : v <= UINT16_MAX ? 3 : v <= UINT32_MAX ? 5 : 9;
}

struct frame {
    enum ev_kind kind; /* EV_ARRAY, EV_MAP or EV_TAG */
    uint64_t left;     /* items (array, tag) or pairs (map) still to come */
    int want_key;      /* map: the next item is a key */
    size_t key_start;  /* map: offset of the key being read */
    size_t prev_off, prev_len;
    int have_prev;
};

enum ac_dcbor_status ac_dcbor_check(const uint8_t *buf, size_t len, const uint64_t *tags,
                                    size_t ntags)
{
    struct frame st[AC_DCBOR_MAX_DEPTH];
    size_t depth = 0, pos = 0;
    if (!buf && len) return AC_DCBOR_EARG;
    for (;;) {
        if (pos >= len) return AC_DCBOR_ETRUNCATED;
        struct ev e = {EV_NONE, 0, NULL};
        struct cbor_decoder_result r = cbor_stream_decode(buf + pos, len - pos, &check_cbs, &e);
        if (r.status == CBOR_DECODER_NEDATA) return AC_DCBOR_ETRUNCATED;
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > len - pos)
            return AC_DCBOR_EMALFORMED;
        size_t start = pos;
        pos += r.read;
        if (depth > 0 && st[depth - 1].kind == EV_MAP && st[depth - 1].want_key)
            st[depth - 1].key_start = start;

        int container = 0;
        switch (e.kind) {
        case EV_UINT:
        case EV_NEGINT:
            if (r.read != head_len(e.v)) return AC_DCBOR_ENONMINIMAL;
            break;
        case EV_BYTES:
        case EV_TEXT:
            if (r.read < e.v || r.read - e.v != head_len(e.v)) return AC_DCBOR_ENONMINIMAL;
            if (e.kind == EV_TEXT && !ac_utf8_valid(e.data, (size_t)e.v)) return AC_DCBOR_EUTF8;
            break;
        case EV_TAG: {
            if (r.read != head_len(e.v)) return AC_DCBOR_ENONMINIMAL;
            size_t i = 0;
            while (i < ntags && tags[i] != e.v)
                i++;
            if (i == ntags) return AC_DCBOR_ETAG;
            container = 1;
            e.v = 1; /* one tagged item follows */
            break;
        }
        case EV_ARRAY:
        case EV_MAP:
            if (r.read != head_len(e.v)) return AC_DCBOR_ENONMINIMAL;
            container = e.v > 0;
            break;
        case EV_FLOAT:
            return AC_DCBOR_EFLOAT;
        case EV_SIMPLE_OK:
            break;
        case EV_UNDEF:
            return AC_DCBOR_ESIMPLE;
        case EV_INDEF:
            return AC_DCBOR_EINDEFINITE;
        case EV_BREAK:
        case EV_NONE:
            return AC_DCBOR_EMALFORMED;
        }
        if (container) {
            if (depth == AC_DCBOR_MAX_DEPTH) return AC_DCBOR_EDEPTH;
            st[depth++] = (struct frame){.kind = e.kind, .left = e.v, .want_key = e.kind == EV_MAP};
            continue;
        }
        /* An item is complete: tell its parents, closing every container it completes. */
        for (;;) {
            if (depth == 0) return pos == len ? AC_DCBOR_OK : AC_DCBOR_ETRAILING;
            struct frame *f = &st[depth - 1];
            if (f->kind == EV_MAP && f->want_key) {
                size_t klen = pos - f->key_start;
                if (f->have_prev) {
                    size_t n = klen < f->prev_len ? klen : f->prev_len;
                    int c = memcmp(buf + f->prev_off, buf + f->key_start, n);
                    if (c == 0) c = f->prev_len < klen ? -1 : f->prev_len > klen ? 1 : 0;
                    if (c == 0) return AC_DCBOR_EDUPLICATE;
                    if (c > 0) return AC_DCBOR_EUNSORTED;
                }
                f->prev_off = f->key_start;
                f->prev_len = klen;
                f->have_prev = 1;
                f->want_key = 0;
                break; /* the value comes next */
            }
            if (f->kind == EV_MAP) f->want_key = 1;
            if (--f->left > 0) break;
            depth--;
        }
    }
}

enum ac_dcbor_status ac_dcbor_decode(const uint8_t *buf, size_t len, const uint64_t *tags,
                                     size_t ntags, cbor_item_t **out)
{
    if (!out) return AC_DCBOR_EARG;
    *out = NULL;
    enum ac_dcbor_status st = ac_dcbor_check(buf, len, tags, ntags);
    if (st != AC_DCBOR_OK) return st;
    struct cbor_load_result r;
    cbor_item_t *it = cbor_load(buf, len, &r);
    if (!it) return r.error.code == CBOR_ERR_MEMERROR ? AC_DCBOR_ENOMEM : AC_DCBOR_EMALFORMED;
    assert(r.read == len); /* the checker saw exactly one item */
    if (r.read != len) {
        cbor_decref(&it);
        return AC_DCBOR_ETRAILING;
    }
    *out = it;
    return AC_DCBOR_OK;
}
