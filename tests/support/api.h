/* tests/support/api.h -- exchanges with the operator API of the server under test, as test
 * assertions (they fail the running cmocka test with a message that shows what came back). */
#ifndef AC_TEST_API_H
#define AC_TEST_API_H

#include <jansson.h>

#include "tests/support/httpc.h"

/* The string member key of o, or "" when o has none (absent, or not a string). */
const char *ac_test_jstr(const json_t *o, const char *key);

/* method path [json] as ac_test_http_api() sends it ("Authorization: Bearer <token>" unless token
 * is NULL). Fails the test unless the status is `want` and the body is JSON; returns the parsed
 * body (the caller decrefs). */
json_t *ac_test_api_call(struct ac_test_http *c, const char *method, const char *path,
                         const char *token, const char *json, int want);

/* Fails the test unless r is a problem+json answer (RFC 9457) with HTTP status `status`, the
 * same status member, code `code`, and a type and a title. `what` starts every failure message.
 * Returns the parsed body (the caller decrefs). */
json_t *ac_test_api_problem(const struct ac_test_http_resp *r, int status, const char *code,
                            const char *what);

/* method path [json] sent as ac_test_api_call() sends it; fails the test unless the answer is the
 * problem `status`/`code` as ac_test_api_problem() checks it ("METHOD path" names the failure). */
void ac_test_api_refused(struct ac_test_http *c, const char *method, const char *path,
                         const char *token, const char *json, int status, const char *code);

#endif
