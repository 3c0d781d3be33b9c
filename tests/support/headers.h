/* tests/support/headers.h -- a small table of request header fields for the tests that build a
 * struct ac_http_request (protocol/httpsig.h) by hand. Names and values are borrowed, not copied:
 * they must outlive the table. */
#ifndef AC_TEST_HEADERS_H
#define AC_TEST_HEADERS_H

#include <stddef.h>

#define AC_TEST_HEADERS_MAX 16

struct ac_test_headers {
    const char *name[AC_TEST_HEADERS_MAX]; /* lower-case field names */
    const char *value[AC_TEST_HEADERS_MAX];
    size_t n;
};

/* The ac_http_header_fn of struct ac_http_request, with ctx a struct ac_test_headers: the value
 * of the field called lname, or NULL when there is none. */
const char *ac_test_header_get(void *ctx, const char *lname);

/* Set the field `name` to value, replacing the value of a field of that name already in the
 * table. Fails the test when the table is full. */
void ac_test_header_set(struct ac_test_headers *h, const char *name, const char *value);

#endif
