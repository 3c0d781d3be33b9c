/* protocol/sfv.h -- RFC 8941 Structured Field Values for HTTP: parser and serializer.
 *
 * Parsing follows the algorithms of RFC 8941 §4.2 step by step: Lists, Dictionaries and Items,
 * Inner Lists, Parameters, and the bare items Integer, Decimal, String, Token, Byte Sequence and
 * Boolean. Input is capped at AC_SFV_MAX_INPUT bytes. The grammar nests at most two levels
 * (List/Dictionary -> Inner List -> Item), so no recursion happens and there is nothing deeper
 * to bound.
 *
 * Memory: everything a parse returns (arrays, keys, strings, decoded byte sequences) lives in
 * one struct ac_sfv_arena chosen by the caller. Several parses may share one arena; one call to
 * ac_sfv_arena_release() frees them all. A failed parse may leave partial allocations in the
 * arena; they are freed with it. An arena holds at most AC_SFV_ARENA_MAX bytes.
 *
 * Serialization follows RFC 8941 §4.1 into a caller buffer of fixed capacity. */
#ifndef AC_SFV_H
#define AC_SFV_H

#include <stddef.h>
#include <stdint.h>

#define AC_SFV_MAX_INPUT 8192u           /* longest field value accepted by a parse */
#define AC_SFV_ARENA_MAX (1024u * 1024u) /* bytes one arena may take from malloc */

#define AC_SFV_INT_MAX 999999999999999LL /* RFC 8941 §3.3.1: at most 15 digits */
#define AC_SFV_DEC_MAX 999999999999999LL /* decimals as thousandths: 12 + 3 digits */

/* ---- values ------------------------------------------------------------------------------ */

enum ac_sfv_type {
    AC_SFV_INTEGER = 1,
    AC_SFV_DECIMAL,    /* num holds the value in thousandths (4.5 -> 4500) */
    AC_SFV_STRING,     /* str/len: the unescaped text, NUL-terminated */
    AC_SFV_TOKEN,      /* str/len: the token, NUL-terminated */
    AC_SFV_BYTES,      /* str/len: the decoded bytes (NUL-terminated for convenience only) */
    AC_SFV_BOOLEAN,    /* num: 0 or 1 */
    AC_SFV_INNER_LIST, /* only as a member of a List or Dictionary, see struct ac_sfv_member */
};

/* A bare item. */
struct ac_sfv_bare {
    enum ac_sfv_type type;
    int64_t num;     /* INTEGER, DECIMAL (thousandths), BOOLEAN */
    const char *str; /* STRING, TOKEN, BYTES; NULL otherwise */
    size_t len;
};

struct ac_sfv_param {
    const char *key; /* RFC 8941 key: lcalpha / "*" then lcalpha DIGIT "_" "-" "." "*" */
    struct ac_sfv_bare value;
};

/* An Item: a bare item with parameters (also each element of an Inner List). */
struct ac_sfv_item {
    struct ac_sfv_bare bare;
    struct ac_sfv_param *params;
    size_t nparams;
};

/* A member of a List or the value of a Dictionary entry: either an Item (bare.type is not
 * AC_SFV_INNER_LIST; items is NULL) or an Inner List (bare.type == AC_SFV_INNER_LIST; items and
 * nitems hold its elements). params are the Item's or the Inner List's parameters. */
struct ac_sfv_member {
    struct ac_sfv_bare bare;
    struct ac_sfv_item *items;
    size_t nitems;
    struct ac_sfv_param *params;
    size_t nparams;
};

struct ac_sfv_list {
    struct ac_sfv_member *v;
    size_t n;
};

struct ac_sfv_dict_entry {
    const char *key;
    struct ac_sfv_member value;
};

/* Keys are unique; on a repeated key the last value wins and keeps the first key's position
 * (RFC 8941 §4.2.2 "overwrite its value"). The same holds for parameters (§4.2.3.2). */
struct ac_sfv_dict {
    struct ac_sfv_dict_entry *v;
    size_t n;
};

/* ---- arena ------------------------------------------------------------------------------- */

struct ac_sfv_block;

/* Zero-initialise (AC_SFV_ARENA_INIT or memset) before first use. */
struct ac_sfv_arena {
    struct ac_sfv_block *head;
    size_t total; /* bytes taken from malloc */
};

#define AC_SFV_ARENA_INIT                                                                          \
    {                                                                                              \
        NULL, 0                                                                                    \
    }

/* Allocate n bytes (aligned for any type, zeroed) from the arena. Returns NULL when malloc fails
 * or the arena would exceed AC_SFV_ARENA_MAX; the arena stays valid either way. */
void *ac_sfv_alloc(struct ac_sfv_arena *a, size_t n);

/* Free everything allocated from the arena and reset it to empty; safe on an empty arena and
 * safe to call twice. Every pointer obtained from it becomes invalid. */
void ac_sfv_arena_release(struct ac_sfv_arena *a);

/* ---- parsing ----------------------------------------------------------------------------- */

enum ac_sfv_rc {
    AC_SFV_OK = 0,
    AC_SFV_ESYNTAX = -1, /* the input does not follow the grammar (or has a non-ASCII byte) */
    AC_SFV_ETOOBIG = -2, /* longer than AC_SFV_MAX_INPUT */
    AC_SFV_ENOMEM = -3,  /* out of memory or arena cap reached */
};

/* Parse a field value of len bytes (need not be NUL-terminated; NUL bytes are a syntax error)
 * as a List / Dictionary / Item (RFC 8941 §4.2 with the field type given by the function).
 * Leading and trailing SP are discarded as the RFC says; an empty List or Dictionary value gives
 * n == 0. Returns AC_SFV_OK and fills *out, or a negative enum ac_sfv_rc; on failure *out is
 * zeroed and the arena may hold unreachable allocations (freed with it). in may be NULL only
 * when len is 0. */
int ac_sfv_parse_list(const char *in, size_t len, struct ac_sfv_arena *a, struct ac_sfv_list *out);
int ac_sfv_parse_dict(const char *in, size_t len, struct ac_sfv_arena *a, struct ac_sfv_dict *out);
int ac_sfv_parse_item(const char *in, size_t len, struct ac_sfv_arena *a, struct ac_sfv_item *out);

/* Look a key up. Returns the entry/parameter or NULL when absent. */
const struct ac_sfv_dict_entry *ac_sfv_dict_get(const struct ac_sfv_dict *d, const char *key);
const struct ac_sfv_param *ac_sfv_param_get(const struct ac_sfv_param *p, size_t n,
                                            const char *key);

/* ---- serialization ----------------------------------------------------------------------- */

/* Every serializer writes the RFC 8941 §4.1 form of its value to out (cap bytes, always
 * NUL-terminated when cap > 0) and returns the length written excluding the NUL, or -1 when the
 * value cannot be serialized (integer or decimal out of range, a string with a byte outside
 * %x20-7E, an invalid token or key, an Inner List where a bare item is required) or does not fit
 * in cap bytes; out then holds an unspecified NUL-terminated prefix. */
long ac_sfv_ser_bare(const struct ac_sfv_bare *b, char *out, size_t cap);
long ac_sfv_ser_params(const struct ac_sfv_param *p, size_t n, char *out, size_t cap);
long ac_sfv_ser_item(const struct ac_sfv_item *it, char *out, size_t cap);
long ac_sfv_ser_inner_list(const struct ac_sfv_item *items, size_t n, const struct ac_sfv_param *p,
                           size_t np, char *out, size_t cap);
/* A List member or Dictionary value: an Item or an Inner List. */
long ac_sfv_ser_member(const struct ac_sfv_member *m, char *out, size_t cap);
long ac_sfv_ser_list(const struct ac_sfv_list *l, char *out, size_t cap);
/* Dictionary: a member whose value is Boolean true is written as the bare key (§4.1.2). */
long ac_sfv_ser_dict(const struct ac_sfv_dict *d, char *out, size_t cap);

/* Validity of single tokens of the grammar (NUL-terminated input). Return 1 or 0. */
int ac_sfv_is_key(const char *s);
int ac_sfv_is_token(const char *s, size_t len);

#endif
