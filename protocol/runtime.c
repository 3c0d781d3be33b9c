/* The agent runtime digest and its Agent-Runtime header (see runtime.h). */
#include "protocol/runtime.h"

#include <string.h>

#include "protocol/sfv.h"
#include "protocol/sha256.h"

int ac_runtime_hexdigest_valid(const char *s)
{
    if (s == NULL || strncmp(s, "sha-256:", 8) != 0) return 0;
    s += 8;
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
    return n == 64;
}

int ac_runtime_model_valid(const char *s)
{
    if (s == NULL) return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < 0x20 || s[n] > 0x7e || n >= AC_RUNTIME_MODEL_MAX) return 0;
    return n > 0;
}

enum ac_ec ac_runtime_digest(const char *software, const char *model, const char *environment,
                             uint8_t out[AC_RUNTIME_DIGEST_LEN])
{
    if (!ac_runtime_hexdigest_valid(software) || !ac_runtime_model_valid(model) ||
        !ac_runtime_hexdigest_valid(environment))
        return AC_EC_BINDING_INVALID;
    static const char prefix[] = "agentclear-runtime/v1\n";
    const struct ac_sha256_part parts[] = {
        {prefix, sizeof prefix - 1},
        {software, strlen(software)},
        {"\n", 1},
        {model, strlen(model)},
        {"\n", 1},
        {environment, strlen(environment)},
    };
    ac_sha256v(parts, sizeof parts / sizeof parts[0], out);
    return AC_EC_OK;
}

long ac_runtime_header(const uint8_t d[AC_RUNTIME_DIGEST_LEN], char *out, size_t cap)
{
    struct ac_sfv_dict_entry e;
    memset(&e, 0, sizeof e);
    e.key = "sha-256";
    e.value.bare.type = AC_SFV_BYTES;
    e.value.bare.str = (const char *)d;
    e.value.bare.len = AC_RUNTIME_DIGEST_LEN;
    struct ac_sfv_dict dict = {&e, 1};
    return ac_sfv_ser_dict(&dict, out, cap);
}

enum ac_ec ac_runtime_header_parse(const char *v, size_t len, uint8_t out[AC_RUNTIME_DIGEST_LEN])
{
    if (v == NULL) return AC_EC_RUNTIME_MISSING;
    if (len > 4 * AC_RUNTIME_HEADER_MAX) return AC_EC_RUNTIME_MALFORMED;
    struct ac_sfv_arena a = AC_SFV_ARENA_INIT;
    struct ac_sfv_dict d;
    enum ac_ec ec = AC_EC_RUNTIME_MALFORMED;
    int rc = ac_sfv_parse_dict(v, len, &a, &d);
    if (rc == AC_SFV_ENOMEM) {
        ec = AC_EC_INTERNAL;
    } else if (rc == AC_SFV_OK) {
        const struct ac_sfv_dict_entry *e = ac_sfv_dict_get(&d, "sha-256");
        if (e && e->value.bare.type == AC_SFV_BYTES && e->value.bare.len == AC_RUNTIME_DIGEST_LEN) {
            memcpy(out, e->value.bare.str, AC_RUNTIME_DIGEST_LEN);
            ec = AC_EC_OK;
        }
    }
    ac_sfv_arena_release(&a);
    return ec;
}
