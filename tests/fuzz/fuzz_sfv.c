/* libFuzzer harness for the RFC 8941 parser and serializer.
 * Input: first byte selects List / Dictionary / Item, the rest is the field value.
 * Checks beyond "no crash, no leak": an accepted value serializes, its canonical form re-parses,
 * and serializing that again gives the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sfv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse in as kind (0 List, 1 Dictionary, 2 Item) and serialize into out; returns the parse rc
 * and sets *n to the serialized length (or -1). */
static int parse_ser(int kind, const char *in, size_t len, char *out, size_t cap, long *n)
{
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    int rc;
    *n = -1;
    if (kind == 0) {
        struct ac_sfv_list l;
        rc = ac_sfv_parse_list(in, len, &a, &l);
        if (rc == AC_SFV_OK) *n = ac_sfv_ser_list(&l, out, cap);
    } else if (kind == 1) {
        struct ac_sfv_dict d;
        rc = ac_sfv_parse_dict(in, len, &a, &d);
        if (rc == AC_SFV_OK) {
            *n = ac_sfv_ser_dict(&d, out, cap);
            /* every key is found again */
            for (size_t i = 0; i < d.n; i++)
                if (ac_sfv_dict_get(&d, d.v[i].key) != &d.v[i]) abort();
        }
    } else {
        struct ac_sfv_item it;
        rc = ac_sfv_parse_item(in, len, &a, &it);
        if (rc == AC_SFV_OK) *n = ac_sfv_ser_item(&it, out, cap);
    }
    ac_sfv_arena_release(&a);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int kind = data[0] % 3;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    /* canonical output is at most twice the input (byte sequence padding, ", " separators) */
    size_t cap = 2 * len + 64;
    char *out1 = malloc(cap), *out2 = malloc(cap);
    if (out1 == NULL || out2 == NULL) abort();
    long n1, n2;
    int rc = parse_ser(kind, in, len, out1, cap, &n1);
    if (rc == AC_SFV_OK) {
        if (n1 < 0) abort(); /* everything parsed must serialize */
        int rc2 = parse_ser(kind, out1, (size_t)n1, out2, cap, &n2);
        if (rc2 != AC_SFV_OK && !(rc2 == AC_SFV_ETOOBIG && (size_t)n1 > AC_SFV_MAX_INPUT))
            abort(); /* canonical form must re-parse */
        if (rc2 == AC_SFV_OK && (n2 != n1 || memcmp(out1, out2, (size_t)n1) != 0)) abort();
    } else if (rc != AC_SFV_ESYNTAX && rc != AC_SFV_ETOOBIG && rc != AC_SFV_ENOMEM) {
        abort();
    }
    free(out1);
    free(out2);
    return 0;
}
