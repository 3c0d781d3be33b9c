/* tests/support/testutil.h -- shared by the cmocka programs. */
#ifndef AC_TESTUTIL_H
#define AC_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* The test database URL from AGENTCLEAR_TEST_DATABASE_URL. When unset: exits 77 (skipped) when
 * run by hand, or fails (exit 1) when AC_REQUIRE_DB=1 (ops/test sets it). Never returns NULL. */
const char *ac_test_db_url(void);

/* Create (dropping any old one) a database named `name` on the test cluster, apply the
 * migrations, and return its URL (static buffer, overwritten by the next call). Fails the test
 * program (exit 1) when it cannot. Each test program uses its own name, so suites run in parallel
 * (ctest -j) without sharing state. Under AC_TEST_EVENT_LOOP (a program run a second time with
 * another event loop, tests/CMakeLists.txt) the name gets "_<loop>" appended, so the two runs
 * never drop each other's database. */
const char *ac_test_fresh_db(const char *name);

/* AC_TEST_EVENT_LOOP (the server's AGENTCLEAR_EVENT_LOOP for a second run of a suite), or NULL
 * when unset or empty. A value that is not lowercase letters ends the test program (exit 1): it
 * becomes part of a database name. */
const char *ac_test_event_loop(void);

/* Path to the agentclear binary under test (AC_BINARY, set by CTest). */
const char *ac_test_binary(void);

/* Path under the source tree (AC_SOURCE_DIR, set by CTest), e.g. ac_test_src("sql"). Static
 * buffer, overwritten by the next call. */
const char *ac_test_src(const char *rel);

/* Read a whole file; returns a malloc'd NUL-terminated buffer and sets *len, or NULL. */
char *ac_test_read_file(const char *path, size_t *len);

/* Hex decode (lower/upper); returns bytes written or -1. */
long ac_test_unhex(const char *hex, uint8_t *out, size_t cap);

/* Write len bytes of data to path (created or truncated). Fails the test when it cannot. */
void ac_test_write_file(const char *path, const void *data, size_t len);

/* Run the agentclear binary (ac_test_binary()) through the shell with the arguments fmt makes
 * (printf-style; quote file names yourself), stderr joined to stdout. Up to cap - 1 bytes of its
 * output go to out, NUL-terminated. Returns its exit code; fails the test when it cannot be
 * started or did not exit normally. */
int ac_test_cli(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* OpenSSL's own Ed25519 verify of a 64-byte signature (a fresh context each call): the reference
 * that ac_sig_verify() (libsodium) is compared with. 1 when valid, else 0. */
typedef struct evp_pkey_st EVP_PKEY;
int ac_test_openssl_ed25519_verify(EVP_PKEY *k, const uint8_t *m, size_t n, const uint8_t *sig);

#endif
