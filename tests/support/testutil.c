#include "tests/support/testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "ledger/db.h"
#include "ledger/migrations.h"

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

void ac_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) fail_msg("cannot create %s", path);
    size_t n = fwrite(data, 1, len, f);
    if (fclose(f) != 0 || n != len) fail_msg("cannot write %s", path);
}

int ac_test_cli(char *out, size_t cap, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof args);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", ac_test_binary(), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

const char *ac_test_event_loop(void)
{
    const char *loop = getenv("AC_TEST_EVENT_LOOP");
    if (loop == NULL || *loop == '\0') return NULL;
    if (strspn(loop, "abcdefghijklmnopqrstuvwxyz") != strlen(loop) || strlen(loop) > 16) {
        fprintf(stderr, "AC_TEST_EVENT_LOOP must be 1..16 lowercase letters\n");
        exit(1);
    }
    return loop;
}

const char *ac_test_fresh_db(const char *base_name)
{
    static char url[1024];
    char name[128];
    const char *loop = ac_test_event_loop();
    if (loop != NULL)
        snprintf(name, sizeof name, "%s_%s", base_name, loop);
    else
        snprintf(name, sizeof name, "%s", base_name);
    const char *base = ac_test_db_url();
    char err[512];
    PGconn *c = ac_db_connect(base, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "fresh db: %s", err);
        exit(1);
    }
    char *ident = PQescapeIdentifier(c, name, strlen(name));
    char sql[512];
    snprintf(sql, sizeof sql, "drop database if exists %s with (force)", ident);
    PGresult *r = PQexec(c, sql);
    PQclear(r);
    snprintf(sql, sizeof sql, "create database %s", ident);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "fresh db: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    PQfreemem(ident);
    PQfinish(c);
    /* same server, other database: replace the path of the URL */
    const char *slash = strrchr(base, '/');
    const char *q = strchr(base, '?');
    if (slash == NULL || slash < strstr(base, "//") + 2) {
        fprintf(stderr, "fresh db: cannot derive a URL from %s\n", base);
        exit(1);
    }
    snprintf(url, sizeof url, "%.*s/%s%s", (int)(slash - base), base, name, q ? q : "");
    c = ac_db_connect(url, AC_DB_PLAIN, err, sizeof err);
    if (c == NULL || ac_migrate(c, err, sizeof err) < 0) {
        fprintf(stderr, "fresh db: migrate: %s", err);
        exit(1);
    }
    PQfinish(c);
    return url;
}

const char *ac_test_binary(void)
{
    const char *b = getenv("AC_BINARY");
    return b && *b ? b : "./agentclear";
}

int ac_test_openssl_ed25519_verify(EVP_PKEY *k, const uint8_t *m, size_t n, const uint8_t *sig)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(ctx, sig, 64, m, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}
