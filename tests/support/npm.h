/* tests/support/npm.h -- run the Node.js scripts of tests/conformance/npm/ (independent npm
 * clients: http-message-signatures, jose, cbor) from cmocka programs. The packages live in the
 * scratch directory AC_NPM_DIR that ops/npm-clients.sh prepares; tests/conformance/npm/README.md
 * documents each script's input and output. */
#ifndef AC_TEST_NPM_H
#define AC_TEST_NPM_H

#include <jansson.h>

/* The npm clients directory (AC_NPM_DIR). When unset: exits 77 (skipped) when run by hand, or
 * fails the program (exit 1) when AC_REQUIRE_NPM=1 (ops/test sets it). Also exits 1 when `node`
 * cannot be found. Never returns NULL. Call it at the start of main(). */
const char *ac_npm_dir(void);

/* Run `node <source>/tests/conformance/npm/<script> args...` (args NULL-terminated, or NULL for
 * none) with AC_NPM_DIR in its environment, `input` (NUL-terminated, or NULL for none) on its
 * stdin, and its stderr passed through to ours. Its stdout is returned in *out (malloc'd,
 * NUL-terminated; the caller frees it; NULL on failure to run). A run longer than 120 s is
 * killed. Returns the exit code (0..255), or -1 when node could not be started, was killed by a
 * signal or timed out. */
int ac_npm_run(const char *script, const char *const *args, const char *input, char **out);

/* Run script with the single argument "-" and the JSON text of input (borrowed) on stdin, and
 * parse its stdout as one JSON object. Returns a new reference, or NULL when the script printed
 * no JSON object (then its output is echoed to stderr). *status (may be NULL) receives the
 * ac_npm_run() result. */
json_t *ac_npm_json(const char *script, const json_t *input, int *status);

#endif
