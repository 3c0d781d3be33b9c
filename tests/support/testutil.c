#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ac_test_db_url(void)
{
    const char *u = getenv("AGENTCLEAR_TEST_DATABASE_URL");
    if (u && *u) return u;
    const char *req = getenv("AC_REQUIRE_DB");
    if (req && strcmp(req, "1") == 0) {
        fprintf(stderr, "AGENTCLEAR_TEST_DATABASE_URL is not set but AC_REQUIRE_DB=1\n");
        exit(1);
    }
    fprintf(stderr, "no database (AGENTCLEAR_TEST_DATABASE_URL unset): skipped\n");
    exit(77);
}

const char *ac_test_src(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("AC_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

char *ac_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    rewind(f);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    b[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

long ac_test_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}
