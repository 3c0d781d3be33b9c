/* agentclear keygen --out=FILE [--alg=ed25519|es256] [--valid-days=N] [--nbf=UNIX]
 *   Makes a server signing key: writes the private key file (keys/keyring.h format) with mode
 *   0600, refusing to overwrite an existing file, and prints the public JWK (with kid, alg, use,
 *   nbf, exp) on stdout and "kid: <thumbprint>" on stderr. Defaults: ed25519, valid from now for
 *   90 days. Exit 0 on success, 1 when the key cannot be made or written, 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys/keyring.h"
#include "server/cli.h"

static void usage(void)
{
    fprintf(stderr, "usage: agentclear keygen --out=FILE [--alg=ed25519|es256] [--valid-days=N] "
                    "[--nbf=UNIX]\n");
}

int ac_cli_keygen(int argc, char **argv)
{
    const char *out = NULL;
    enum ac_sig_alg alg = AC_SIG_ED25519;
    int64_t days = 90, nbf = (int64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--out=", 6) == 0 && a[6] != '\0') {
            out = a + 6;
        } else if (strcmp(a, "--alg=ed25519") == 0) {
            alg = AC_SIG_ED25519;
        } else if (strcmp(a, "--alg=es256") == 0) {
            alg = AC_SIG_ES256;
        } else if (strncmp(a, "--valid-days=", 13) == 0) {
            if (ac_cli_parse_i64(a + 13, 1, 36500, &days)) {
                fprintf(stderr, "keygen: --valid-days must be 1..36500\n");
                return 2;
            }
        } else if (strncmp(a, "--nbf=", 6) == 0) {
            if (ac_cli_parse_i64(a + 6, 0, (int64_t)1 << 40, &nbf)) {
                fprintf(stderr, "keygen: --nbf must be unix seconds\n");
                return 2;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "keygen: unknown argument '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (out == NULL) {
        usage();
        return 2;
    }
    int64_t exp = nbf + days * 86400;
    EVP_PKEY *key = ac_sig_keygen(alg);
    if (key == NULL) {
        fprintf(stderr, "keygen: cannot generate a key\n");
        return 1;
    }
    char err[512];
    if (ac_keyfile_create(out, key, nbf, exp, err, sizeof err) != 0) {
        fprintf(stderr, "keygen: %s\n", err);
        EVP_PKEY_free(key);
        return 1;
    }
    /* the public form, exactly as the JWKS will publish it */
    struct ac_keyring *kr = ac_keyring_new();
    json_t *jwks = NULL;
    int rc = 1;
    if (kr && ac_keyring_add(kr, key, nbf, exp, err, sizeof err) == 0 &&
        (jwks = ac_keyring_jwks(kr, nbf)) != NULL) {
        json_t *pub = json_array_get(json_object_get(jwks, "keys"), 0);
        char *text = pub ? json_dumps(pub, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text) {
            printf("%s\n", text);
            fprintf(stderr, "keygen: wrote %s (mode 0600); kid: %s\n", out,
                    json_string_value(json_object_get(pub, "kid")));
            rc = 0;
        }
        free(text);
    }
    if (rc != 0)
        fprintf(stderr, "keygen: key written to %s but cannot print its public form\n", out);
    json_decref(jwks);
    ac_keyring_free(kr);
    EVP_PKEY_free(key);
    return rc;
}
