/* protocol/buf.h -- a growable byte buffer, always NUL-terminated. */
#ifndef AC_BUF_H
#define AC_BUF_H

#include <stddef.h>

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
/* Empty the buffer, keep its memory, clear oom. */
void ac_buf_reset(struct ac_buf *b);
/* Free the memory; the buffer is then empty and reusable. */
void ac_buf_free(struct ac_buf *b);
/* The contents ("" when empty; never NULL). */
const char *ac_buf_str(const struct ac_buf *b);

#endif
