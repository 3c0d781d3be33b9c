/* Server signing keys: key files (write, load, mode refusal, tampering), rotation (current vs
 * previous by nbf, expired and not-yet-valid keys), the JWKS, purpose-tagged signatures, and the
 * `agentclear keygen` command. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keys/keyring.h"

static char dir[256];

static void fresh_dir(void)
{
    char cmd[300];
    if (dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(dir, sizeof dir, "/tmp/ac_keyring_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static const char *path_in(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Make a key, write it as dir/name with the window, return the key (caller frees). */
static EVP_PKEY *make(const char *name, enum ac_sig_alg alg, int64_t nbf, int64_t exp)
{
    EVP_PKEY *k = ac_sig_keygen(alg);
    assert_non_null(k);
    char err[256];
    if (ac_keyfile_create(path_in(name), k, nbf, exp, err, sizeof err) != 0) fail_msg("%s", err);
    return k;
}

static void keyfile_roundtrip(void **s)
{
    (void)s;
    fresh_dir();
    EVP_PKEY *ed = make("a.jwk", AC_SIG_ED25519, 1000, 2000);
    EVP_PKEY *ec = make("b.json", AC_SIG_ES256, 1100, 2000);
    struct stat st;
    assert_int_equal(stat(path_in("a.jwk"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* never overwritten */
    char err[256];
    assert_int_equal(ac_keyfile_create(path_in("a.jwk"), ec, 1, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "refusing to overwrite"));
    /* nbf must be before exp */
    assert_int_equal(ac_keyfile_create(path_in("c.jwk"), ec, 5, 5, err, sizeof err), -1);
    assert_int_not_equal(access(path_in("c.jwk"), F_OK), 0);

    struct ac_keyring *kr = ac_keyring_new();
    assert_non_null(kr);
    assert_int_equal(ac_keyring_load_dir(kr, dir, err, sizeof err), 2);
    assert_int_equal(ac_keyring_count(kr), 2);
    char kid_ed[AC_JWK_THUMBPRINT_SIZE], kid_ec[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_jwk_thumbprint(ed, kid_ed), 0);
    assert_int_equal(ac_jwk_thumbprint(ec, kid_ec), 0);
    const struct ac_server_key *k = ac_keyring_find(kr, kid_ed, 1500);
    assert_non_null(k);
    assert_int_equal(k->alg, AC_SIG_ED25519);
    assert_true(k->nbf == 1000 && k->exp == 2000);
    /* the loaded private key is the one written: a signature by the original verifies */
    uint8_t sig[AC_SIG_MAX];
    size_t sl;
    assert_int_equal(ac_sign_purpose(ed, "test", (const uint8_t *)"m", 1, sig, &sl), 0);
    assert_int_equal(ac_verify_purpose(k->pkey, "test", (const uint8_t *)"m", 1, sig, sl), 1);
    k = ac_keyring_find(kr, kid_ec, 1500);
    assert_non_null(k);
    assert_int_equal(k->alg, AC_SIG_ES256);
    /* loading the same key twice is refused, ring unchanged */
    assert_int_equal(ac_keyring_load_file(kr, path_in("a.jwk"), err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(ac_keyring_count(kr), 2);
    /* public-only keys cannot be added */
    EVP_PKEY *pub = NULL;
    char *pt = ac_jwk_public_text(ed);
    assert_int_equal(ac_jwk_import_public_text(pt, strlen(pt), &pub, NULL), AC_EC_OK);
    assert_int_equal(ac_keyring_add(kr, pub, 1, 2, err, sizeof err), -1);
    free(pt);
    EVP_PKEY_free(pub);
    ac_keyring_free(kr);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(ec);
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    FILE *f = fopen(path_in(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path_in(name), mode), 0);
}

static void permission_refused(void **s)
{
    (void)s;
    fresh_dir();
    EVP_PKEY *k = make("a.jwk", AC_SIG_ED25519, 0, 100);
    char err[512];
    static const mode_t bad[] = {0644, 0640, 0604, 0620, 0602, 0610};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(path_in("a.jwk"), bad[i]), 0);
        struct ac_keyring *kr = ac_keyring_new();
        err[0] = '\0';
        assert_int_equal(ac_keyring_load_file(kr, path_in("a.jwk"), err, sizeof err), -1);
        assert_non_null(strstr(err, "group or others"));
        assert_non_null(strstr(err, "a.jwk"));
        assert_null(strstr(err, "\"d\"")); /* the message never carries key material */
        assert_int_equal(ac_keyring_load_dir(kr, dir, err, sizeof err), -1);
        assert_int_equal(ac_keyring_count(kr), 0);
        ac_keyring_free(kr);
    }
    assert_int_equal(chmod(path_in("a.jwk"), 0400), 0); /* read-only for the owner is fine */
    struct ac_keyring *kr = ac_keyring_new();
    assert_int_equal(ac_keyring_load_dir(kr, dir, err, sizeof err), 1);
    /* a symlink is refused */
    char link[600];
    snprintf(link, sizeof link, "%s/link.jwk", dir);
    assert_int_equal(symlink(path_in("a.jwk"), link), 0);
    assert_int_equal(ac_keyring_load_file(kr, link, err, sizeof err), -1);
    assert_non_null(strstr(err, "symbolic link"));
    ac_keyring_free(kr);
    EVP_PKEY_free(k);
}

static void bad_files(void **s)
{
    (void)s;
    fresh_dir();
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    json_t *o = ac_keyfile_json(k, 10, 20);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "alg")), "EdDSA");
    assert_non_null(json_object_get(o, "d"));
    char err[512];
    struct {
        const char *member;
        json_t *value; /* NULL: delete the member */
        const char *want;
    } cases[] = {
        {"kid", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "thumbprint"},
        {"kid", NULL, "thumbprint"},
        {"nbf", NULL, "integers"},
        {"exp", json_string("20"), "integers"},
        {"exp", json_integer(10), "before"},
        {"d", NULL, "key file"},
        {"alg", json_string("ES256"), "key file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *c = json_deep_copy(o);
        if (cases[i].value)
            json_object_set_new(c, cases[i].member, cases[i].value);
        else
            json_object_del(c, cases[i].member);
        char *text = json_dumps(c, 0);
        write_file("x.jwk", text, 0600);
        free(text);
        json_decref(c);
        struct ac_keyring *kr = ac_keyring_new();
        assert_int_equal(ac_keyring_load_file(kr, path_in("x.jwk"), err, sizeof err), -1);
        if (strstr(err, cases[i].want) == NULL) fail_msg("case %zu: %s", i, err);
        assert_int_equal(ac_keyring_count(kr), 0);
        ac_keyring_free(kr);
    }
    write_file("x.jwk", "not json", 0600);
    struct ac_keyring *kr = ac_keyring_new();
    assert_int_equal(ac_keyring_load_file(kr, path_in("x.jwk"), err, sizeof err), -1);
    assert_non_null(strstr(err, "not a json object"));
    /* all or nothing: one good file and one bad file in a directory load nothing */
    char *good = json_dumps(o, 0);
    write_file("a.jwk", good, 0600);
    free(good);
    assert_int_equal(ac_keyring_load_dir(kr, dir, err, sizeof err), -1);
    assert_int_equal(ac_keyring_count(kr), 0);
    unlink(path_in("x.jwk"));
    write_file("ignored.txt", "whatever", 0644); /* other names are skipped */
    assert_int_equal(ac_keyring_load_dir(kr, dir, err, sizeof err), 1);
    assert_int_equal(ac_keyring_load_dir(kr, "/nonexistent/dir", err, sizeof err), -1);
    ac_keyring_free(kr);
    json_decref(o);
    EVP_PKEY_free(k);
}

static void rotation(void **s)
{
    (void)s;
    struct ac_keyring *kr = ac_keyring_new();
    EVP_PKEY *old = ac_sig_keygen(AC_SIG_ED25519), *cur = ac_sig_keygen(AC_SIG_ES256),
             *next = ac_sig_keygen(AC_SIG_ED25519), *gone = ac_sig_keygen(AC_SIG_ED25519);
    char err[256];
    /* added out of order on purpose */
    assert_int_equal(ac_keyring_add(kr, cur, 2000, 5000, err, sizeof err), 0);
    assert_int_equal(ac_keyring_add(kr, old, 1000, 4000, err, sizeof err), 0);
    assert_int_equal(ac_keyring_add(kr, next, 3000, 6000, err, sizeof err), 0);
    assert_int_equal(ac_keyring_add(kr, gone, 0, 2500, err, sizeof err), 0);
    assert_int_equal(ac_keyring_add(kr, gone, 0, 2500, err, sizeof err), -1);
    assert_int_equal(ac_keyring_add(kr, gone, 7, 7, err, sizeof err), -1);
    char k_old[AC_JWK_THUMBPRINT_SIZE], k_cur[AC_JWK_THUMBPRINT_SIZE],
        k_next[AC_JWK_THUMBPRINT_SIZE], k_gone[AC_JWK_THUMBPRINT_SIZE];
    ac_jwk_thumbprint(old, k_old);
    ac_jwk_thumbprint(cur, k_cur);
    ac_jwk_thumbprint(next, k_next);
    ac_jwk_thumbprint(gone, k_gone);

    assert_null(ac_keyring_current(kr, -1));
    assert_string_equal(ac_keyring_current(kr, 500)->kid, k_gone);
    assert_string_equal(ac_keyring_current(kr, 1500)->kid, k_old);
    assert_string_equal(ac_keyring_current(kr, 2600)->kid, k_cur); /* latest nbf wins */
    assert_string_equal(ac_keyring_current(kr, 3000)->kid, k_next);
    assert_string_equal(ac_keyring_current(kr, 5999)->kid, k_next);
    assert_null(ac_keyring_current(kr, 6000)); /* exp is exclusive */

    /* at 2600: cur signs; old is a previous key (verifies); gone expired; next not yet valid */
    const uint8_t msg[] = "checkpoint body";
    uint8_t sig[AC_SIG_MAX];
    size_t sl;
    char kid[AC_JWK_THUMBPRINT_SIZE];
    assert_int_equal(ac_keyring_sign(kr, 2600, "checkpoint", msg, sizeof msg, sig, &sl, kid), 0);
    assert_string_equal(kid, k_cur);
    assert_int_equal(ac_keyring_verify(kr, 2600, kid, "checkpoint", msg, sizeof msg, sig, sl), 1);
    assert_int_equal(ac_keyring_verify(kr, 4500, kid, "checkpoint", msg, sizeof msg, sig, sl), 1);
    assert_int_equal(ac_keyring_verify(kr, 5000, kid, "checkpoint", msg, sizeof msg, sig, sl), 0);
    assert_int_equal(ac_keyring_verify(kr, 2600, k_old, "checkpoint", msg, sizeof msg, sig, sl), 0);
    assert_non_null(ac_keyring_find(kr, k_old, 2600));
    assert_null(ac_keyring_find(kr, k_gone, 2600));
    assert_null(ac_keyring_find(kr, k_next, 2600));
    assert_null(ac_keyring_find(kr, "short", 2600));
    assert_null(ac_keyring_find(kr, NULL, 2600));
    assert_int_equal(ac_keyring_sign(kr, 9999, "checkpoint", msg, sizeof msg, sig, &sl, kid), -1);
    assert_string_equal(kid, "");

    /* JWKS at 2600: cur, then next (nbf 3000), then old; gone excluded; never "d" */
    json_t *jwks = ac_keyring_jwks(kr, 2600);
    assert_non_null(jwks);
    json_t *keys = json_object_get(jwks, "keys");
    assert_int_equal(json_array_size(keys), 3);
    const char *want[] = {k_cur, k_next, k_old};
    for (size_t i = 0; i < 3; i++) {
        json_t *k = json_array_get(keys, i);
        assert_string_equal(json_string_value(json_object_get(k, "kid")), want[i]);
        assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
        assert_null(json_object_get(k, "d"));
        assert_true(json_is_integer(json_object_get(k, "nbf")));
        assert_true(json_is_integer(json_object_get(k, "exp")));
        /* the published JWK imports as a public key whose thumbprint is its kid */
        EVP_PKEY *pk = NULL;
        assert_int_equal(ac_jwk_import_public(k, &pk, NULL), AC_EC_OK);
        char tp[AC_JWK_THUMBPRINT_SIZE];
        assert_int_equal(ac_jwk_thumbprint(pk, tp), 0);
        assert_string_equal(tp, want[i]);
        EVP_PKEY_free(pk);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "alg")),
                        "ES256");
    assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 1), "alg")),
                        "EdDSA");
    json_decref(jwks);
    jwks = ac_keyring_jwks(kr, 6000);
    assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 0);
    json_decref(jwks);
    jwks = ac_keyring_jwks(NULL, 0);
    assert_non_null(jwks);
    assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 0);
    json_decref(jwks);

    ac_keyring_free(kr);
    EVP_PKEY_free(old);
    EVP_PKEY_free(cur);
    EVP_PKEY_free(next);
    EVP_PKEY_free(gone);
}

static void purpose_tags(void **s)
{
    (void)s;
    enum ac_sig_alg algs[] = {AC_SIG_ED25519, AC_SIG_ES256};
    for (size_t a = 0; a < 2; a++) {
        EVP_PKEY *k = ac_sig_keygen(algs[a]), *other = ac_sig_keygen(algs[a]);
        const uint8_t msg[] = {1, 2, 3, 0, 4};
        uint8_t sig[AC_SIG_MAX];
        size_t sl = 0;
        assert_int_equal(ac_sign_purpose(k, "receipt", msg, sizeof msg, sig, &sl), 0);
        assert_int_equal(sl, 64);
        assert_int_equal(ac_verify_purpose(k, "receipt", msg, sizeof msg, sig, sl), 1);
        assert_int_equal(ac_verify_purpose(k, "checkpoint", msg, sizeof msg, sig, sl), 0);
        assert_int_equal(ac_verify_purpose(k, "receip", msg, sizeof msg, sig, sl), 0);
        assert_int_equal(ac_verify_purpose(k, "receipt", msg, sizeof msg - 1, sig, sl), 0);
        assert_int_equal(ac_verify_purpose(other, "receipt", msg, sizeof msg, sig, sl), 0);
        assert_int_equal(ac_verify_purpose(k, "receipt", msg, sizeof msg, sig, sl - 1), 0);
        /* the tag is a real prefix: a plain signature over the tagged bytes verifies too */
        uint8_t tagged[64];
        size_t n = 0;
        memcpy(tagged, "agentclear/v1/receipt", 21);
        n = 21;
        tagged[n++] = 0;
        memcpy(tagged + n, msg, sizeof msg);
        n += sizeof msg;
        assert_int_equal(ac_sig_verify(k, algs[a], tagged, n, sig, sl), 1);
        /* ... and the untagged message does not */
        assert_int_equal(ac_sig_verify(k, algs[a], msg, sizeof msg, sig, sl), 0);
        sig[5] ^= 1;
        assert_int_equal(ac_verify_purpose(k, "receipt", msg, sizeof msg, sig, sl), 0);
        /* invalid purposes: empty, upper case, NUL-terminating trick, too long */
        assert_int_equal(ac_sign_purpose(k, "", msg, sizeof msg, sig, &sl), -1);
        assert_int_equal(ac_sign_purpose(k, "Receipt", msg, sizeof msg, sig, &sl), -1);
        assert_int_equal(ac_sign_purpose(k, "a/b", msg, sizeof msg, sig, &sl), -1);
        assert_int_equal(ac_sign_purpose(k, NULL, msg, sizeof msg, sig, &sl), -1);
        char longp[AC_SIGN_PURPOSE_MAX + 2];
        memset(longp, 'a', sizeof longp - 1);
        longp[sizeof longp - 1] = '\0';
        assert_int_equal(ac_sign_purpose(k, longp, msg, sizeof msg, sig, &sl), -1);
        longp[AC_SIGN_PURPOSE_MAX] = '\0';
        assert_int_equal(ac_sign_purpose(k, longp, msg, sizeof msg, sig, &sl), 0);
        assert_int_equal(ac_verify_purpose(k, longp, msg, sizeof msg, sig, sl), 1);
        assert_int_equal(ac_sign_purpose(k, "empty", NULL, 0, sig, &sl), 0);
        assert_int_equal(ac_verify_purpose(k, "empty", NULL, 0, sig, sl), 1);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
    }
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void keygen_cli(void **s)
{
    (void)s;
    fresh_dir();
    const char *bin = ac_test_binary();
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' keygen --out='%s/k1.jwk' --alg=es256 --valid-days=2 "
             "--nbf=1000 > '%s/k1.pub' 2>/dev/null",
             bin, dir, dir);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' keygen --out='%s/k1.jwk' 2>/dev/null >/dev/null", bin, dir);
    assert_int_equal(run(cmd), 1); /* refuses to overwrite */
    snprintf(cmd, sizeof cmd, "'%s' keygen --alg=rsa --out='%s/k2.jwk' 2>/dev/null", bin, dir);
    assert_int_equal(run(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' keygen 2>/dev/null", bin);
    assert_int_equal(run(cmd), 2);
    struct stat st;
    assert_int_equal(stat(path_in("k1.jwk"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t len;
    char *pubtext = ac_test_read_file(path_in("k1.pub"), &len);
    assert_non_null(pubtext);
    json_t *pub = json_loadb(pubtext, len, 0, NULL);
    free(pubtext);
    assert_non_null(pub);
    assert_null(json_object_get(pub, "d"));
    assert_string_equal(json_string_value(json_object_get(pub, "alg")), "ES256");
    assert_int_equal(json_integer_value(json_object_get(pub, "nbf")), 1000);
    assert_int_equal(json_integer_value(json_object_get(pub, "exp")), 1000 + 2 * 86400);
    unlink(path_in("k1.pub"));
    struct ac_keyring *kr = ac_keyring_new();
    char err[512];
    assert_int_equal(ac_keyring_load_dir(kr, dir, err, sizeof err), 1);
    const struct ac_server_key *k = ac_keyring_current(kr, 1000);
    assert_non_null(k);
    assert_string_equal(k->kid, json_string_value(json_object_get(pub, "kid")));
    ac_keyring_free(kr);
    json_decref(pub);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    dir[0] = '\0';
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keyfile_roundtrip), cmocka_unit_test(permission_refused),
        cmocka_unit_test(bad_files),         cmocka_unit_test(rotation),
        cmocka_unit_test(purpose_tags),      cmocka_unit_test(keygen_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
