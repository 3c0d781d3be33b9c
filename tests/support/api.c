#include "tests/support/api.h"

#include <stdio.h>
#include <string.h>

#include "tests/support/testutil.h"

const char *ac_test_jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

json_t *ac_test_api_call(struct ac_test_http *c, const char *method, const char *path,
                         const char *token, const char *json, int want)
{
    struct ac_test_http_resp r;
    int st = ac_test_http_api(c, method, path, token, json, &r);
    if (st != want)
        fail_msg("%s %s: expected %d, got %d (%s) %s\nrequest: %.400s", method, path, want, st,
                 r.err, r.body, json ? json : "");
    json_t *j = ac_test_http_json(&r);
    if (j == NULL) fail_msg("%s %s: body is not json: %s", method, path, r.body);
    ac_test_http_resp_free(&r);
    return j;
}

json_t *ac_test_api_problem(const struct ac_test_http_resp *r, int status, const char *code,
                            const char *what)
{
    if (r->status != status)
        fail_msg("%s: expected %d %s, got %d (%s): %s", what, status, code, r->status, r->err,
                 r->body);
    char ct[128];
    ac_test_http_header(r, "Content-Type", ct, sizeof ct);
    if (strncmp(ct, "application/problem+json", 24) != 0)
        fail_msg("%s: content type '%s', expected application/problem+json", what, ct);
    json_t *j = ac_test_http_json(r);
    if (j == NULL) fail_msg("%s: body is not json: %s", what, r->body);
    if (strcmp(ac_test_jstr(j, "code"), code) != 0)
        fail_msg("%s: expected code %s, got %s: %s", what, code, ac_test_jstr(j, "code"), r->body);
    if (json_integer_value(json_object_get(j, "status")) != status)
        fail_msg("%s: problem status member differs from %d: %s", what, status, r->body);
    if (strcmp(ac_test_jstr(j, "type"), "") == 0 || strcmp(ac_test_jstr(j, "title"), "") == 0)
        fail_msg("%s: problem without type or title: %s", what, r->body);
    return j;
}

void ac_test_api_refused(struct ac_test_http *c, const char *method, const char *path,
                         const char *token, const char *json, int status, const char *code)
{
    struct ac_test_http_resp r;
    ac_test_http_api(c, method, path, token, json, &r);
    char what[300];
    snprintf(what, sizeof what, "%s %s", method, path);
    json_decref(ac_test_api_problem(&r, status, code, what));
    ac_test_http_resp_free(&r);
}
