/* protocol/buf.h -- a growable byte buffer, always NUL-terminated; and ac_errf() for messages
 * into fixed buffers. */
#ifndef AC_BUF_H
#define AC_BUF_H

#include <stddef.h>
#include <stdint.h>

struct ac_buf {
    char *p;
    size_t len, cap;
    int oom; /* sticky: an append failed for lack of memory; contents then truncated */
};

/* Append n bytes / a string / a formatted string. On allocation failure sets b->oom and leaves
 * the buffer as it was; later appends are ignored until ac_buf_reset(). */
void ac_buf_add(struct ac_buf *b, const void *data, size_t n);
void ac_buf_adds(struct ac_buf *b, const char *s);
void ac_buf_printf(struct ac_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append v in decimal, without printf: for the numbers of a batch's array parameters, built on
 * the sequencer's thread for every row, where vfprintf was a third of the build's CPU. */
void ac_buf_add_i64(struct ac_buf *b, long long v);
/* JSON text as jansson's json_dumps(..., JSON_COMPACT) writes it, for answers built without a
 * jansson tree on hot paths (tests compare the two byte for byte):
 * ac_buf_json_str: s as a JSON string: '"', '\\' and \b \f \n \r \t by their short forms, other
 *   control characters as \u00XX (upper-case hex), every other byte unchanged. s must be UTF-8,
 *   as jansson's strings are (jansson refuses to pack other text): pass validated strings only;
 * ac_buf_json_key: ,"name": -- a member after the first (name is a literal needing no escape);
 * ac_buf_json_member: ,"name":"s" -- the two together. */
void ac_buf_json_str(struct ac_buf *b, const char *s);
void ac_buf_json_key(struct ac_buf *b, const char *name);
void ac_buf_json_member(struct ac_buf *b, const char *name, const char *s);
/* 1 when text[0..n) is RFC 3629 UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF: what jansson and deterministic CBOR accept), else 0. */
int ac_utf8_valid(const void *text, size_t n);
/* Decode the code point at s[*i] (*i < n) by the same rules into *cp and advance *i past it.
 * Returns 0, or -1 on invalid UTF-8 (*i and *cp unchanged). */
int ac_utf8_next(const uint8_t *s, size_t n, size_t *i, uint32_t *cp);
/* An element of a PostgreSQL text array literal that the caller began with "{" (and closes with
 * "}"): s quoted, after a "," when b holds an element already, with '"' and '\\' escaped. For the
 * batches' multi-row statements, on the sequencer's thread: runs are appended whole. */
void ac_buf_array_str(struct ac_buf *b, const char *s);
/* Empty the buffer, keep its memory, clear oom. */
void ac_buf_reset(struct ac_buf *b);
/* Free the memory; the buffer is then empty and reusable. */
void ac_buf_free(struct ac_buf *b);
/* The contents ("" when empty; never NULL). */
const char *ac_buf_str(const struct ac_buf *b);

/* For functions that return 0, or -1 with a message in a caller's fixed buffer (err, errlen):
 * format the message into err (truncated, NUL-terminated; nothing written when err is NULL or
 * errlen is 0) and return -1, as in `return ac_errf(err, errlen, "no record");`. */
int ac_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
