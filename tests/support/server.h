/* tests/support/server.h -- the server under test as a child process, and a TCP proxy in front of
 * PostgreSQL that a test can cut and restore ("the database is down").
 *
 * Child processes. `agentclear serve` (ac_test_binary()) runs as a child of the test program,
 * with its stdout and stderr in a log file under the program's temporary directory. Every child
 * is killed (SIGKILL) when the test program ends, however it ends: an atexit handler, handlers for
 * SIGINT/SIGTERM/SIGABRT/SIGSEGV/SIGBUS, and PR_SET_PDEATHSIG in the child for the cases no
 * handler sees (the test program itself SIGKILLed by a CTest timeout). PR_SET_PDEATHSIG fires
 * when the *thread* that forked exits, so start children from the main thread only.
 *
 * Call ac_test_e2e_finish() at the end of main(): it stops what still runs, prints the tail of
 * every server log when tests failed, and removes the temporary directory when they passed. */
#ifndef AC_TEST_SERVER_H
#define AC_TEST_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#define AC_TEST_MAX_ENV 16

struct ac_test_server {
    pid_t pid;     /* > 0 while running */
    unsigned port; /* where it listens (127.0.0.1) */
    char db_url[1024];
    char token[128];
    char *env[AC_TEST_MAX_ENV + 1]; /* extra "KEY=VALUE" entries (copies), NULL-terminated */
    char log_path[1024];            /* stdout+stderr of the current (latest) run */
    char name[64];
    int runs;        /* how many times it was started */
    int exit_status; /* of the last run that ended: exit code, or 128 + signal */
};

/* The temporary directory of this test program: created on first use under $AC_TEST_TMP (set by
 * ops/test) or /tmp. Never NULL (exits the program when it cannot be created). */
const char *ac_test_tmpdir(void);

/* Start `agentclear serve` on a free port of 127.0.0.1 with AGENTCLEAR_DATABASE_URL=db_url,
 * AGENTCLEAR_OPERATOR_TOKEN=token, AGENTCLEAR_LISTEN and the extra env entries ("KEY=VALUE",
 * NULL-terminated array or NULL), and wait (at most ready_ms) until GET /readyz answers 200. A
 * port taken meanwhile by someone else is retried with another. Returns 0 when ready; otherwise
 * kills the child, prints its log to stderr and returns -1. `name` labels the log files.
 * AC_TEST_EVENT_LOOP=poll|epoll in the test program's environment gives every server it starts
 * that AGENTCLEAR_EVENT_LOOP (unless extra_env sets one), and a server whose log does not say it
 * runs that loop is a failed start (tests/CMakeLists.txt runs suites both ways). */
int ac_test_server_start(struct ac_test_server *s, const char *name, const char *db_url,
                         const char *token, const char *const *extra_env, int ready_ms);

/* Start again with the same database, token and env (on a new port: read s->port). Same return
 * contract as ac_test_server_start(). The server must not be running. */
int ac_test_server_restart(struct ac_test_server *s, int ready_ms);

/* Graceful stop: SIGTERM, wait up to wait_ms, then SIGKILL. Returns the exit code when the
 * server exited by itself within wait_ms (0 = clean), or -1 when it had to be killed or had
 * already died of a signal. Safe when not running (returns s->exit_status). */
int ac_test_server_stop(struct ac_test_server *s, int wait_ms);

/* SIGKILL and reap. Safe when not running. */
void ac_test_server_kill(struct ac_test_server *s);

/* 1 while the child runs; 0 once it has exited (then s->exit_status is set and s->pid is 0). */
int ac_test_server_alive(struct ac_test_server *s);

/* 1 when the current log contains `needle`. */
int ac_test_server_log_has(const struct ac_test_server *s, const char *needle);

/* 1 when the current log holds a sanitizer report (AddressSanitizer, LeakSanitizer, UBSan
 * "runtime error:") -- a memory or undefined-behaviour bug in the server. */
int ac_test_server_log_has_sanitizer_report(const struct ac_test_server *s);

/* Print the last `max` bytes of the current log to stderr, framed with its path. */
void ac_test_server_dump_log(const struct ac_test_server *s, size_t max);

/* Run argv[0] (a path) with argv as a child, stdout+stderr to <tmpdir>/<name>.log, waiting at
 * most wait_ms (then SIGKILL). Returns the exit code, 128 + signal, or -1 when it could not run or
 * timed out; the output is printed to stderr unless the exit code is 0. */
int ac_test_run(const char *name, char *const argv[], int wait_ms);

/* Stop every child still running, print the logs of every server started when failures > 0, and
 * remove the temporary directory when failures == 0. Returns failures (for main's return). */
int ac_test_e2e_finish(int failures);

/* ---- the PostgreSQL proxy ----------------------------------------------------------------- */

struct ac_test_proxy;

/* Listen on a free port of 127.0.0.1 and forward every connection to the host and port named in
 * db_url (a postgresql:// URL; default port 5432). Writes db_url with its host:port replaced by
 * the proxy's into out_url. Returns NULL on failure. One thread does all the forwarding. */
struct ac_test_proxy *ac_test_proxy_start(const char *db_url, char *out_url, size_t cap);

/* Cut: close every forwarded connection (both sides, so PostgreSQL ends those sessions and
 * releases their locks) and from now on accept new connections only to close them at once.
 * Returns when that is done. */
void ac_test_proxy_cut(struct ac_test_proxy *p);

/* Restore: forward new connections again. */
void ac_test_proxy_restore(struct ac_test_proxy *p);

/* Connections currently forwarded. */
unsigned ac_test_proxy_connections(struct ac_test_proxy *p);

/* Close everything and free. Safe with NULL. */
void ac_test_proxy_stop(struct ac_test_proxy *p);

#endif
