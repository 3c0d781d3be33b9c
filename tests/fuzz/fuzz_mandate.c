/* libFuzzer harness for the signed-document payloads: the input is parsed as JSON (with duplicate
 * members refused, as ac_jws_parse does) and tried as a mandate (at the scale given by its first
 * byte), a mandate revocation, a step-up challenge and a step-up confirmation. Besides "no crash,
 * no leak" it aborts when an invariant breaks:
 *   - each parser returns OK or its one documented refusal code, and on refusal names a detail;
 *   - what parses renders back (to_json) into a document that parses to the same struct. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mandate.h"
#include "protocol/stepup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_mandate: invariant broken: %s\n", what);
        abort();
    }
}

static void refused(const struct ac_doc_err *err)
{
    require(err->detail != NULL && err->detail[0] != '\0', "a refusal has a detail");
    json_t *p = json_string(err->pointer);
    require(p != NULL, "the pointer is valid utf-8");
    json_decref(p);
}

static void mandate(const json_t *j, unsigned scale)
{
    struct ac_mandate m, again;
    struct ac_doc_err err;
    enum ac_ec rc = ac_mandate_parse(j, scale, &m, &err);
    require(rc == AC_EC_OK || rc == AC_EC_MANDATE_INVALID, "mandate result");
    if (rc != AC_EC_OK) {
        refused(&err);
        return;
    }
    json_t *back = ac_mandate_to_json(&m);
    require(back != NULL, "mandate renders");
    require(ac_mandate_parse(back, scale, &again, &err) == AC_EC_OK, "rendered mandate parses");
    require(memcmp(&m, &again, sizeof m) == 0, "mandate round trip");
    json_decref(back);
}

static void revocation(const json_t *j)
{
    struct ac_mandate_revocation r;
    struct ac_doc_err err;
    enum ac_ec rc = ac_mandate_revocation_parse(j, &r, &err);
    require(rc == AC_EC_OK || rc == AC_EC_REVOCATION_INVALID, "revocation result");
    if (rc != AC_EC_OK) refused(&err);
}

static void challenge(const json_t *j)
{
    struct ac_stepup_challenge c, again;
    struct ac_doc_err err;
    enum ac_ec rc = ac_stepup_challenge_parse(j, &c, &err);
    require(rc == AC_EC_OK || rc == AC_EC_JSON_SCHEMA, "challenge result");
    if (rc != AC_EC_OK) {
        refused(&err);
        return;
    }
    require(ac_stepup_challenge_valid(&c), "a parsed challenge is valid");
    json_t *back = ac_stepup_challenge_to_json(&c);
    require(back != NULL, "challenge renders");
    require(ac_stepup_challenge_parse(back, &again, &err) == AC_EC_OK, "rendered challenge parses");
    require(memcmp(&c, &again, sizeof c) == 0, "challenge round trip");
    json_decref(back);
}

static void confirmation(const json_t *j)
{
    struct ac_stepup_confirmation c, again;
    struct ac_doc_err err;
    enum ac_ec rc = ac_stepup_confirmation_parse(j, &c, &err);
    require(rc == AC_EC_OK || rc == AC_EC_CONFIRMATION_INVALID, "confirmation result");
    if (rc != AC_EC_OK) {
        refused(&err);
        return;
    }
    json_t *back = ac_stepup_confirmation_to_json(&c);
    require(back != NULL, "confirmation renders");
    require(ac_stepup_confirmation_parse(back, &again, &err) == AC_EC_OK,
            "rendered confirmation parses");
    require(memcmp(&c, &again, sizeof c) == 0, "confirmation round trip");
    json_decref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) return 0;
    unsigned scale = data[0] % 4;
    json_error_t e;
    json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) return 0;
    mandate(j, scale);
    revocation(j);
    challenge(j);
    confirmation(j);
    json_decref(j);
    return 0;
}
