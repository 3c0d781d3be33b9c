#include "keys/keyring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

struct ac_keyring {
    struct ac_server_key keys[AC_KEYRING_MAX];
    size_t n;
};

static const char *alg_name(enum ac_sig_alg alg)
{
    return alg == AC_SIG_ED25519 ? "EdDSA" : alg == AC_SIG_ES256 ? "ES256" : NULL;
}

/* ---- key files ------------------------------------------------------------------------------- */

json_t *ac_keyfile_json(EVP_PKEY *key, int64_t nbf, int64_t exp)
{
    if (key == NULL || nbf >= exp) return NULL;
    const char *alg = alg_name(ac_sig_key_alg(key));
    char kid[AC_JWK_THUMBPRINT_SIZE];
    if (alg == NULL || ac_jwk_thumbprint(key, kid) != 0) return NULL;
    json_t *o = ac_jwk_export_private(key);
    if (o == NULL) return NULL;
    if (json_object_set_new(o, "kid", json_string(kid)) ||
        json_object_set_new(o, "alg", json_string(alg)) ||
        json_object_set_new(o, "use", json_string("sig")) ||
        json_object_set_new(o, "nbf", json_integer((json_int_t)nbf)) ||
        json_object_set_new(o, "exp", json_integer((json_int_t)exp))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int ac_keyfile_create(const char *path, EVP_PKEY *key, int64_t nbf, int64_t exp, char *err,
                      size_t errlen)
{
    json_t *o = ac_keyfile_json(key, nbf, exp);
    if (o == NULL) {
        snprintf(err, errlen, "not a usable private key or window (nbf must be before exp)");
        return -1;
    }
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t len = strlen(text);
    int rc = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite)" : "");
        goto out;
    }
    /* the umask can only narrow 0600; make it exact in case the umask was 0 and mode differs */
    if (fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
        goto fail;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "%s: close: %s", path, strerror(errno));
        goto fail;
    }
    rc = 0;
    goto out;
fail:
    if (fd >= 0) close(fd);
    unlink(path);
out:
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

/* ---- the keyring ------------------------------------------------------------------------------
 */

struct ac_keyring *ac_keyring_new(void)
{
    return calloc(1, sizeof(struct ac_keyring));
}

/* Drop keys [keep, n). */
static void truncate_ring(struct ac_keyring *kr, size_t keep)
{
    while (kr->n > keep) {
        kr->n--;
        EVP_PKEY_free(kr->keys[kr->n].pkey);
        memset(&kr->keys[kr->n], 0, sizeof kr->keys[kr->n]);
    }
}

void ac_keyring_free(struct ac_keyring *kr)
{
    if (kr == NULL) return;
    truncate_ring(kr, 0);
    free(kr);
}

static int is_private(EVP_PKEY *key)
{
    json_t *o = ac_jwk_export_private(key);
    int ok = o != NULL;
    json_decref(o); /* jansson does not wipe; the key object itself stays the only live copy */
    return ok;
}

int ac_keyring_add(struct ac_keyring *kr, EVP_PKEY *key, int64_t nbf, int64_t exp, char *err,
                   size_t errlen)
{
    if (kr == NULL || key == NULL) {
        snprintf(err, errlen, "no key");
        return -1;
    }
    enum ac_sig_alg alg = ac_sig_key_alg(key);
    if (alg == AC_SIG_NONE || !is_private(key)) {
        snprintf(err, errlen, "not an ed25519 or p-256 private key");
        return -1;
    }
    if (nbf >= exp) {
        snprintf(err, errlen, "nbf must be before exp");
        return -1;
    }
    if (kr->n >= AC_KEYRING_MAX) {
        snprintf(err, errlen, "too many keys (at most %d)", AC_KEYRING_MAX);
        return -1;
    }
    struct ac_server_key *k = &kr->keys[kr->n];
    if (ac_jwk_thumbprint(key, k->kid) != 0) {
        snprintf(err, errlen, "cannot compute the key's thumbprint");
        return -1;
    }
    for (size_t i = 0; i < kr->n; i++)
        if (strcmp(kr->keys[i].kid, k->kid) == 0) {
            snprintf(err, errlen, "key %s is loaded twice", k->kid);
            memset(k, 0, sizeof *k);
            return -1;
        }
    if (EVP_PKEY_up_ref(key) != 1) {
        snprintf(err, errlen, "out of memory");
        memset(k, 0, sizeof *k);
        return -1;
    }
    k->pkey = key;
    k->alg = alg;
    k->nbf = nbf;
    k->exp = exp;
    kr->n++;
    return 0;
}

static int get_time(const json_t *o, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_integer(v)) return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int ac_keyring_load_file(struct ac_keyring *kr, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "key file %s: %s", path,
                 errno == ELOOP ? "is a symbolic link" : strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "key file %s: mode %04o lets group or others access a private key; "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (st.st_size > AC_JWK_MAX_TEXT) {
        snprintf(err, errlen, "key file %s: larger than %d bytes", path, AC_JWK_MAX_TEXT);
        close(fd);
        return -1;
    }
    char buf[AC_JWK_MAX_TEXT + 1];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "key file %s: read: %s", path, strerror(errno));
            close(fd);
            OPENSSL_cleanse(buf, sizeof buf);
            return -1;
        }
        if (r == 0 || (len += (size_t)r) == sizeof buf) break;
    }
    close(fd);
    if (len > AC_JWK_MAX_TEXT) {
        snprintf(err, errlen, "key file %s: larger than %d bytes", path, AC_JWK_MAX_TEXT);
        OPENSSL_cleanse(buf, sizeof buf);
        return -1;
    }
    json_error_t jerr;
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    OPENSSL_cleanse(buf, sizeof buf);
    int rc = -1;
    EVP_PKEY *key = NULL;
    int64_t nbf, exp;
    const char *detail = NULL;
    if (!json_is_object(o)) {
        /* jerr.text may quote the input: report only the position */
        snprintf(err, errlen, "key file %s: not a json object (line %d)", path, jerr.line);
        goto out;
    }
    if (get_time(o, "nbf", &nbf) || get_time(o, "exp", &exp)) {
        snprintf(err, errlen, "key file %s: nbf and exp must be integers (unix seconds)", path);
        goto out;
    }
    if (nbf >= exp) {
        snprintf(err, errlen, "key file %s: nbf must be before exp", path);
        goto out;
    }
    if (ac_jwk_import_private(o, &key, &detail) != AC_EC_OK) {
        snprintf(err, errlen, "key file %s: %s", path, detail ? detail : "not a private jwk");
        goto out;
    }
    const char *kid = json_string_value(json_object_get(o, "kid"));
    char want[AC_JWK_THUMBPRINT_SIZE];
    if (ac_jwk_thumbprint(key, want) != 0 || kid == NULL || strlen(kid) != AC_JWK_THUMBPRINT_LEN ||
        CRYPTO_memcmp(kid, want, AC_JWK_THUMBPRINT_LEN) != 0) {
        snprintf(err, errlen, "key file %s: kid missing or not the key's rfc 7638 thumbprint",
                 path);
        goto out;
    }
    char aerr[128];
    if (ac_keyring_add(kr, key, nbf, exp, aerr, sizeof aerr) != 0) {
        snprintf(err, errlen, "key file %s: %s", path, aerr);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    json_decref(o);
    return rc;
}

static int has_key_suffix(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.') return 0;
    return (n > 4 && strcmp(name + n - 4, ".jwk") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ac_keyring_load_dir(struct ac_keyring *kr, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "keys directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char *names[AC_KEYRING_MAX + 1];
    size_t nn = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!has_key_suffix(e->d_name)) continue;
        if (nn == AC_KEYRING_MAX + 1) {
            snprintf(err, errlen, "keys directory %s: more than %d key files", dir, AC_KEYRING_MAX);
            rc = -1;
            break;
        }
        names[nn] = strdup(e->d_name);
        if (names[nn] == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        nn++;
    }
    closedir(d);
    if (rc == 0) qsort(names, nn, sizeof names[0], cmp_str);
    size_t before = kr->n;
    for (size_t i = 0; rc == 0 && i < nn; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            snprintf(err, errlen, "keys directory %s: path too long", dir);
            rc = -1;
        } else if (ac_keyring_load_file(kr, path, err, errlen) != 0) {
            rc = -1;
        }
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    if (rc != 0) {
        truncate_ring(kr, before);
        return -1;
    }
    return (int)(kr->n - before);
}

size_t ac_keyring_count(const struct ac_keyring *kr)
{
    return kr ? kr->n : 0;
}

static int valid_at(const struct ac_server_key *k, int64_t now)
{
    return k->nbf <= now && now < k->exp;
}

const struct ac_server_key *ac_keyring_current(const struct ac_keyring *kr, int64_t now)
{
    const struct ac_server_key *best = NULL;
    for (size_t i = 0; kr && i < kr->n; i++)
        if (valid_at(&kr->keys[i], now) && (best == NULL || kr->keys[i].nbf >= best->nbf))
            best = &kr->keys[i];
    return best;
}

const struct ac_server_key *ac_keyring_find(const struct ac_keyring *kr, const char *kid,
                                            int64_t now)
{
    if (kr == NULL || kid == NULL || strlen(kid) != AC_JWK_THUMBPRINT_LEN) return NULL;
    const struct ac_server_key *found = NULL;
    for (size_t i = 0; i < kr->n; i++)
        if (CRYPTO_memcmp(kr->keys[i].kid, kid, AC_JWK_THUMBPRINT_LEN) == 0 &&
            valid_at(&kr->keys[i], now))
            found = &kr->keys[i];
    return found;
}

static json_t *public_jwk(const struct ac_server_key *k)
{
    json_t *o = ac_jwk_export_public(k->pkey);
    if (o == NULL) return NULL;
    if (json_object_set_new(o, "kid", json_string(k->kid)) ||
        json_object_set_new(o, "alg", json_string(alg_name(k->alg))) ||
        json_object_set_new(o, "use", json_string("sig")) ||
        json_object_set_new(o, "nbf", json_integer((json_int_t)k->nbf)) ||
        json_object_set_new(o, "exp", json_integer((json_int_t)k->exp))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *ac_keyring_jwks(const struct ac_keyring *kr, int64_t now)
{
    json_t *arr = json_array();
    json_t *jwks = json_object();
    if (arr == NULL || jwks == NULL || json_object_set(jwks, "keys", arr)) goto fail;
    const struct ac_server_key *cur = ac_keyring_current(kr, now);
    const struct ac_server_key *order[AC_KEYRING_MAX];
    size_t n = 0;
    if (cur) order[n++] = cur;
    /* the rest, not expired, by nbf descending (insertion sort: at most AC_KEYRING_MAX keys) */
    size_t first = n;
    for (size_t i = 0; kr && i < kr->n; i++) {
        const struct ac_server_key *k = &kr->keys[i];
        if (k == cur || k->exp <= now) continue;
        size_t j = n++;
        while (j > first && order[j - 1]->nbf < k->nbf) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = public_jwk(order[i]);
        if (o == NULL || json_array_append_new(arr, o)) goto fail;
    }
    json_decref(arr);
    return jwks;
fail:
    json_decref(arr);
    json_decref(jwks);
    return NULL;
}

/* ---- purpose-tagged signatures ----------------------------------------------------------------
 */

/* The signing input, or NULL for an invalid purpose or on allocation failure. */
static uint8_t *tagged(const char *purpose, const uint8_t *msg, size_t msglen, size_t *outlen)
{
    if (purpose == NULL || (msg == NULL && msglen > 0)) return NULL;
    size_t plen = strlen(purpose);
    if (plen == 0 || plen > AC_SIGN_PURPOSE_MAX) return NULL;
    for (size_t i = 0; i < plen; i++) {
        char c = purpose[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return NULL;
    }
    size_t pre = sizeof AC_SIGN_PREFIX - 1;
    if (msglen > SIZE_MAX - pre - plen - 1) return NULL;
    size_t n = pre + plen + 1 + msglen;
    uint8_t *b = malloc(n);
    if (b == NULL) return NULL;
    memcpy(b, AC_SIGN_PREFIX, pre);
    memcpy(b + pre, purpose, plen);
    b[pre + plen] = 0;
    if (msglen) memcpy(b + pre + plen + 1, msg, msglen);
    *outlen = n;
    return b;
}

int ac_sign_purpose(EVP_PKEY *key, const char *purpose, const uint8_t *msg, size_t msglen,
                    uint8_t sig[AC_SIG_MAX], size_t *siglen)
{
    size_t n;
    uint8_t *b = key ? tagged(purpose, msg, msglen, &n) : NULL;
    if (b == NULL) return -1;
    int rc = ac_sig_sign(key, b, n, sig, siglen);
    free(b);
    return rc == 0 ? 0 : -1;
}

int ac_verify_purpose(EVP_PKEY *key, const char *purpose, const uint8_t *msg, size_t msglen,
                      const uint8_t *sig, size_t siglen)
{
    size_t n;
    if (key == NULL || sig == NULL) return 0;
    uint8_t *b = tagged(purpose, msg, msglen, &n);
    if (b == NULL) return 0;
    int ok = ac_sig_verify(key, ac_sig_key_alg(key), b, n, sig, siglen) == 1;
    free(b);
    return ok ? 1 : 0;
}

int ac_keyring_sign(const struct ac_keyring *kr, int64_t now, const char *purpose,
                    const uint8_t *msg, size_t msglen, uint8_t sig[AC_SIG_MAX], size_t *siglen,
                    char kid_out[AC_JWK_THUMBPRINT_SIZE])
{
    kid_out[0] = '\0';
    const struct ac_server_key *k = ac_keyring_current(kr, now);
    if (k == NULL || ac_sign_purpose(k->pkey, purpose, msg, msglen, sig, siglen) != 0) return -1;
    memcpy(kid_out, k->kid, AC_JWK_THUMBPRINT_SIZE);
    return 0;
}

int ac_keyring_verify(const struct ac_keyring *kr, int64_t now, const char *kid,
                      const char *purpose, const uint8_t *msg, size_t msglen, const uint8_t *sig,
                      size_t siglen)
{
    const struct ac_server_key *k = ac_keyring_find(kr, kid, now);
    if (k == NULL) return 0;
    return ac_verify_purpose(k->pkey, purpose, msg, msglen, sig, siglen) == 1 ? 1 : 0;
}
