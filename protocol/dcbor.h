/* protocol/dcbor.h -- RFC 8949 §4.2 deterministically encoded CBOR on top of libcbor.
 *
 * libcbor neither emits nor checks deterministic encoding, so this module adds:
 *  - a small builder over libcbor items (integers in their minimal width, byte and text strings,
 *    bools, null, definite arrays and maps);
 *  - an encoder that writes any libcbor item tree deterministically: minimal heads, definite
 *    lengths, map keys sorted by the bytewise lexicographic order of their encodings (§4.2.1),
 *    duplicate keys, floats and undefined rejected;
 *  - a checker that walks encoded bytes with libcbor's streaming decoder and accepts them only
 *    when they are exactly one well-formed, valid, deterministically encoded item; and a decoder
 *    that runs the checker before handing the bytes to cbor_load().
 *
 * Evidence records use no floats (money is int64 base units) and no tags; the checker admits
 * tags only from a caller-supplied list. Every libcbor allocation is checked: on NULL the
 * function fails cleanly and releases what it built. Item ownership follows libcbor reference
 * counting: a function that returns a cbor_item_t * hands the caller one reference, to be
 * dropped with cbor_decref(). */
#ifndef AC_DCBOR_H
#define AC_DCBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

/* Maximum nesting of arrays, maps and tags accepted by the encoder and the checker; the top-level
 * item is at depth 0. Evidence records nest a few levels; the bound keeps recursion and the
 * checker's stack fixed. */
#define AC_DCBOR_MAX_DEPTH 64

enum ac_dcbor_status {
    AC_DCBOR_OK = 0,
    AC_DCBOR_ENOMEM,      /* an allocation failed */
    AC_DCBOR_EARG,        /* NULL item or output pointer */
    AC_DCBOR_EMALFORMED,  /* not well-formed CBOR (reserved or unassigned initial byte, stray break)
                           */
    AC_DCBOR_ETRUNCATED,  /* input ends inside an item, or is empty */
    AC_DCBOR_ETRAILING,   /* bytes follow the single top-level item */
    AC_DCBOR_EINDEFINITE, /* indefinite-length string, array or map */
    AC_DCBOR_ENONMINIMAL, /* integer, length or tag head not in its shortest form */
    AC_DCBOR_EFLOAT,      /* floating-point value */
    AC_DCBOR_ESIMPLE,     /* simple value other than false, true, null */
    AC_DCBOR_ETAG,        /* tag not in the allowed list */
    AC_DCBOR_EUNSORTED,   /* map keys not in bytewise lexicographic order of their encodings */
    AC_DCBOR_EDUPLICATE,  /* two equal map keys */
    AC_DCBOR_EUTF8,       /* text string that is not valid UTF-8 */
    AC_DCBOR_EDEPTH,      /* nesting deeper than AC_DCBOR_MAX_DEPTH */
};

/* Short lowercase description of a status. Never NULL. */
const char *ac_dcbor_strerror(enum ac_dcbor_status st);

/* ==== builder ================================================================================ */
/* Each constructor returns a new item holding one reference, or NULL when an allocation fails. */

/* Unsigned integer in the narrowest libcbor width that holds v (cbor_build_uint8/16/32/64). */
cbor_item_t *ac_dcbor_uint(uint64_t v);

/* Signed integer: v >= 0 as ac_dcbor_uint, v < 0 as a negative integer (-1 - n) in the narrowest
 * width. Covers the whole int64_t range. */
cbor_item_t *ac_dcbor_int(int64_t v);

/* Byte string holding a copy of p[0..n). p may be NULL when n is 0. */
cbor_item_t *ac_dcbor_bytes(const uint8_t *p, size_t n);

/* Text string holding a copy of s[0..n). The bytes are not checked here; ac_dcbor_encode()
 * rejects text that is not valid UTF-8. s may be NULL when n is 0. */
cbor_item_t *ac_dcbor_text(const char *s, size_t n);

/* Text string from a NUL-terminated string; NULL when s is NULL. */
cbor_item_t *ac_dcbor_textz(const char *s);

/* false / true. */
cbor_item_t *ac_dcbor_bool(bool v);

/* null. */
cbor_item_t *ac_dcbor_null(void);

/* Definite-length array with room for cap items; it encodes with the number actually pushed. */
cbor_item_t *ac_dcbor_array(size_t cap);

/* Append item to array. Always consumes the caller's reference to item, also on failure, so calls
 * nest: ac_dcbor_array_push(a, ac_dcbor_uint(1)). Returns 0, or -1 when array or item is NULL,
 * array is not an array, or it is full (array is then unchanged). */
int ac_dcbor_array_push(cbor_item_t *array, cbor_item_t *item);

/* Definite-length map with room for cap pairs; it encodes with the number actually put. Keys are
 * kept in insertion order here and sorted by ac_dcbor_encode(). */
cbor_item_t *ac_dcbor_map(size_t cap);

/* Add a pair. Always consumes the caller's references to key and value, also on failure. Returns
 * 0, or -1 when any argument is NULL, map is not a map, or it is full (map then unchanged).
 * Duplicate keys are detected by ac_dcbor_encode(). */
int ac_dcbor_map_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value);

/* ac_dcbor_map_put() with a text key copied from the NUL-terminated key. Same contract. */
int ac_dcbor_map_putz(cbor_item_t *map, const char *key, cbor_item_t *value);

/* ==== encoder ================================================================================ */

/* Encode item deterministically (RFC 8949 §4.2.1) into a malloc'd buffer: *out (caller frees with
 * free()) and *len. Works on any libcbor item tree, not only builder-made ones: integers and
 * lengths get their shortest heads whatever width the item stores, indefinite strings are joined
 * and indefinite arrays and maps written with definite lengths, map pairs sorted by encoded key.
 * item is not modified. Returns AC_DCBOR_OK, or an error (EARG, ENOMEM, EFLOAT, ESIMPLE for
 * undefined, EDUPLICATE, EUTF8, EDEPTH); on error *out is NULL and *len 0. */
enum ac_dcbor_status ac_dcbor_encode(const cbor_item_t *item, uint8_t **out, size_t *len);

/* The last step of building an item with the functions above, for callers that report errors as
 * text: rc is the results of the builder calls OR'ed together. When rc is nonzero, nothing is
 * encoded and err gets "out of memory"; otherwise item is encoded as by ac_dcbor_encode() into
 * *out and *len, and a failure is reported as "cbor: <ac_dcbor_strerror()>". item (not NULL) is
 * released in every case. Returns 0, or -1 with *out NULL, *len 0 and the message in err (up to
 * errlen bytes; none when err is NULL). */
int ac_dcbor_encode_built(cbor_item_t *item, int rc, uint8_t **out, size_t *len, char *err,
                          size_t errlen);

/* ==== streaming writer ========================================================================
 * For a hot encoder whose map keys are fixed: it writes heads and values straight into one
 * growing buffer, with no item tree and no allocation per item. The caller writes each map's
 * entry count first and then its pairs in canonical key order (RFC 8949 4.2.1: shorter encoded
 * key first, then bytewise); ac_dcbor_check() proves the result canonical in the tests. Errors
 * (out of memory, invalid UTF-8 text) are sticky in w->st; the caller checks once at the end. */
struct ac_dcbor_w {
    uint8_t *p;
    size_t n, cap;
    enum ac_dcbor_status st;
};
void ac_dcbor_w_uint(struct ac_dcbor_w *w, uint64_t v);
void ac_dcbor_w_int(struct ac_dcbor_w *w, int64_t v);
void ac_dcbor_w_bytes(struct ac_dcbor_w *w, const uint8_t *p, size_t n);
/* Text, NUL-terminated; AC_DCBOR_EUTF8 when not valid UTF-8, AC_DCBOR_EARG when NULL. */
void ac_dcbor_w_textz(struct ac_dcbor_w *w, const char *s);
void ac_dcbor_w_array(struct ac_dcbor_w *w, size_t n);
void ac_dcbor_w_map(struct ac_dcbor_w *w, size_t npairs);

/* ==== checker and decoder ==================================================================== */

/* Check that buf[0..len) is exactly one item in deterministic encoding: well-formed, definite
 * lengths, shortest integer/length/tag heads, map keys strictly increasing in bytewise
 * lexicographic order of their encodings (so no duplicates), valid UTF-8 text, no floats, no
 * simple values other than false/true/null, nesting at most AC_DCBOR_MAX_DEPTH, and tags only
 * from tags[0..ntags) (tags may be NULL when ntags is 0). Allocates nothing; O(len) time plus one
 * key comparison per map pair. Limitation: libcbor 0.8's decoder refuses the one-byte tag heads
 * 0xc6..0xd4 (tags 6..20), so those are reported AC_DCBOR_EMALFORMED even when allowed.
 * Returns AC_DCBOR_OK or the first violation found. */
enum ac_dcbor_status ac_dcbor_check(const uint8_t *buf, size_t len, const uint64_t *tags,
                                    size_t ntags);

/* ac_dcbor_check(), then cbor_load(). On AC_DCBOR_OK *out holds one reference to the decoded
 * item (caller drops it with cbor_decref()); otherwise *out is NULL. ENOMEM when libcbor cannot
 * allocate. */
enum ac_dcbor_status ac_dcbor_decode(const uint8_t *buf, size_t len, const uint64_t *tags,
                                     size_t ntags, cbor_item_t **out);

#endif
