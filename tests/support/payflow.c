#include "tests/support/testutil.h"

#include "tests/support/payflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "protocol/binding.h"
#include "tests/support/agentsig.h"
#include "tests/support/api.h"
#include "tests/support/identity.h"
#include "tests/support/server.h"
#include "tests/support/sql.h"

#define DAY 86400LL

int64_t ac_test_now_s(void)
{
    return (int64_t)time(NULL);
}

char *ac_test_signed_body(EVP_PKEY *key, const char *typ, json_t *p)
{
    char *jws = ac_test_sign_doc(key, typ, p, NULL);
    json_decref(p);
    char *body = ac_test_jws_body(jws);
    free(jws);
    return body;
}

long long ac_test_cents(const char *s)
{
    int neg = *s == '-';
    if (neg) s++;
    long long whole = 0, frac = 0;
    int nfrac = 0;
    const char *p = s;
    for (; *p && *p != '.'; p++)
        whole = whole * 10 + (*p - '0');
    if (*p == '.')
        for (p++; *p; p++, nfrac++)
            frac = frac * 10 + (*p - '0');
    while (nfrac++ < 2)
        frac *= 10;
    return (neg ? -1 : 1) * (whole * 100 + frac);
}

char *ac_test_pay_body(const char *id, const char *mandate, const char *payee, const char *cur,
                       const char *value, const char *op)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "id", id, "mandate", mandate, "payee",
                          payee, "amount", "currency", cur, "value", value);
    if (op) json_object_set_new(o, "op", json_string(op));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

int ac_test_signed_post(struct ac_test_http *c, unsigned port, EVP_PKEY *key, const char *path,
                        const char *body, struct ac_test_http_resp *r)
{
    static _Thread_local char hdrs[16384];
    if (key)
        ac_test_agent_headers(key, port, "POST", path, body, hdrs, sizeof hdrs);
    else
        snprintf(hdrs, sizeof hdrs, "Content-Type: application/json\r\n");
    return ac_test_http_request(c, "POST", path, hdrs, body, strlen(body), r);
}

static void post(struct ac_test_http *c, const char *token, const char *path, const char *body)
{
    json_decref(ac_test_api_call(c, "POST", path, token, body, 201));
}

void ac_test_payflow_parties(struct ac_test_http *c, const char *token, EVP_PKEY *alice,
                             EVP_PKEY *bob, EVP_PKEY *shop, EVP_PKEY *llm)
{
    char body[8192];
    post(c, token, "/v1/ledger/assets", "{\"code\":\"CNY\",\"scale\":2}");
    post(c, token, "/v1/ledger/assets", "{\"code\":\"USD\",\"scale\":2}");
    char *k = ac_test_jwk_text(alice);
    snprintf(body, sizeof body, "{\"id\":\"alice\",\"keys\":[%s]}", k);
    free(k);
    post(c, token, "/v1/users", body);
    if (bob) {
        k = ac_test_jwk_text(bob);
        snprintf(body, sizeof body, "{\"id\":\"bob\",\"keys\":[%s]}", k);
        free(k);
        post(c, token, "/v1/users", body);
    }
    k = ac_test_jwk_text(shop);
    snprintf(body, sizeof body,
             "{\"id\":\"shop\",\"name\":\"Book Shop\",\"category\":\"books\",\"keys\":[%s]}", k);
    free(k);
    post(c, token, "/v1/merchants", body);
    k = ac_test_jwk_text(llm);
    snprintf(body, sizeof body,
             "{\"id\":\"llm\",\"name\":\"LLM\",\"category\":\"llm-inference\",\"keys\":[%s]}", k);
    free(k);
    post(c, token, "/v1/merchants", body);
}

void ac_test_payflow_binding(struct ac_test_http *c, const char *id, EVP_PKEY *user_key,
                             const char *user, EVP_PKEY *agent_key, const char *agent_id)
{
    int64_t now = ac_test_now_s();
    json_t *p = ac_test_binding_payload(id, user, agent_id, agent_key, now - 10, now + 30 * DAY);
    json_object_set_new(p, "max_autonomy", json_string("L5"));
    char *body = ac_test_signed_body(user_key, AC_BINDING_TYP, p);
    post(c, NULL, "/v1/bindings", body);
    free(body);
}

void ac_test_payflow_evidence(const char *db_url, const json_t *ev, struct ac_ev_record *r)
{
    if (!json_is_object(ev)) fail_msg("no evidence object in the answer");
    long long seq = json_integer_value(json_object_get(ev, "seq"));
    char s[32];
    snprintf(s, sizeof s, "%lld", seq);
    char *leaf = ac_test_sql_text(
        db_url, "select encode(leaf, 'base64') from ac_evidence where seq = $1::bigint", s);
    if (leaf == NULL) fail_msg("no evidence record %lld", seq);
    assert_string_equal(ac_test_jstr(ev, "leaf_hash"), leaf);
    free(leaf);
    char *hex = ac_test_sql_text(
        db_url, "select encode(record, 'hex') from ac_evidence where seq = $1::bigint", s);
    if (hex == NULL) fail_msg("no evidence record %lld", seq);
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *rec = malloc(cap);
    long n = ac_test_unhex(hex, rec, cap);
    assert_true(n > 0);
    char err[200];
    if (ac_ev_record_decode(rec, (size_t)n, r, err, sizeof err) != 0)
        fail_msg("record %lld does not decode: %s", seq, err);
    assert_int_equal((long long)r->seq, seq);
    free(rec);
    free(hex);
}

void ac_test_payflow_export_replay(const char *db_url)
{
    char out[1200], dbarg[1100];
    snprintf(out, sizeof out, "--out=%s/export.bin", ac_test_tmpdir());
    snprintf(dbarg, sizeof dbarg, "--database-url=%s", db_url);
    char *exp[] = {(char *)ac_test_binary(), "evidence", "export", dbarg, out, NULL};
    assert_int_equal(ac_test_run("evidence_export", exp, 120000), 0);
    char file[1100], live[1100];
    snprintf(file, sizeof file, "%s/export.bin", ac_test_tmpdir());
    snprintf(live, sizeof live, "--db=%s", db_url);
    char *rep[] = {(char *)ac_test_binary(), "audit", "replay", file, live, NULL};
    assert_int_equal(ac_test_run("audit_replay", rep, 300000), 0);
    char logf[1100];
    snprintf(logf, sizeof logf, "%s/audit_replay.log", ac_test_tmpdir());
    char *log = ac_test_read_file(logf, NULL);
    if (log == NULL || strstr(log, "replay: VERIFIED ") == NULL)
        fail_msg("audit replay does not say VERIFIED: %s", log ? log : "(no log)");
    free(log);
}

void ac_test_payflow_wait_sealed(const char *db_url)
{
    int sealed = 0;
    for (int i = 0; i < 300 && !sealed; i++) {
        sealed = ac_test_sql_int(db_url, "select coalesce(max(size), 0) from ac_checkpoints") ==
                 ac_test_sql_int(db_url, "select count(*) from ac_evidence");
        if (!sealed) usleep(100000);
    }
    if (!sealed) fail_msg("the evidence log is not sealed by a checkpoint after 30 s");
}

void ac_test_payflow_stop_cleanly(struct ac_test_server *s, int wait_ms)
{
    int rc = ac_test_server_stop(s, wait_ms);
    if (rc != 0 || ac_test_server_log_has_sanitizer_report(s)) {
        ac_test_server_dump_log(s, 20000);
        fail_msg("SIGTERM: exit status %d (expected 0 and no sanitizer report)", s->exit_status);
    }
}
