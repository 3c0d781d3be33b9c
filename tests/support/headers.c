#include "tests/support/headers.h"

#include <string.h>

#include "tests/support/testutil.h"

const char *ac_test_header_get(void *ctx, const char *lname)
{
    const struct ac_test_headers *h = ctx;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->name[i], lname) == 0) return h->value[i];
    return NULL;
}

void ac_test_header_set(struct ac_test_headers *h, const char *name, const char *value)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->name[i], name) == 0) {
            h->value[i] = value;
            return;
        }
    assert_true(h->n < AC_TEST_HEADERS_MAX);
    h->name[h->n] = name;
    h->value[h->n++] = value;
}
