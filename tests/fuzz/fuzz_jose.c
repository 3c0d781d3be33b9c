/* libFuzzer harness for protocol/jose: the input is tried as a public JWK, a private JWK and a
 * compact JWS. Besides "no crash, no leak" (ASan/UBSan/LSan) it checks a few invariants and
 * aborts when one breaks:
 *   - without allocation failures nothing reports AC_EC_INTERNAL;
 *   - an imported key exports to a canonical JWK that imports again to the same thumbprint;
 *   - a parsed JWS is self-consistent, and its signature never verifies under keys nobody
 *     could have signed with here (fresh random keys). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *fuzz_ed, *fuzz_ec;

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_jose: invariant broken: %s\n", what);
        abort();
    }
}

static void check_key(EVP_PKEY *k)
{
    char tp[AC_JWK_THUMBPRINT_SIZE], tp2[AC_JWK_THUMBPRINT_SIZE];
    require(ac_jwk_thumbprint(k, tp) == 0, "thumbprint of an imported key");
    char *text = ac_jwk_public_text(k);
    require(text != NULL, "canonical text of an imported key");
    EVP_PKEY *again = NULL;
    require(ac_jwk_import_public_text(text, strlen(text), &again, NULL) == AC_EC_OK,
            "canonical text imports");
    require(ac_jwk_thumbprint(again, tp2) == 0 && strcmp(tp, tp2) == 0, "thumbprint is stable");
    json_t *j = ac_jwk_export_public(k);
    require(j != NULL, "public export");
    json_decref(j);
    EVP_PKEY_free(again);
    free(text);
}

static void fuzz_jwk(const uint8_t *data, size_t size)
{
    EVP_PKEY *k = NULL;
    enum ac_ec rc = ac_jwk_import_public_text((const char *)data, size, &k, NULL);
    require(rc == AC_EC_OK || rc == AC_EC_JWK_INVALID, "public import result");
    require((rc == AC_EC_OK) == (k != NULL), "public import output");
    if (k) {
        check_key(k);
        require(ac_jwk_export_private(k) == NULL, "a public key has no private export");
        EVP_PKEY_free(k);
    }

    k = NULL;
    rc = ac_jwk_import_private_text((const char *)data, size, &k, NULL);
    require(rc == AC_EC_OK || rc == AC_EC_JWK_INVALID, "private import result");
    require((rc == AC_EC_OK) == (k != NULL), "private import output");
    if (k) {
        check_key(k);
        json_t *priv = ac_jwk_export_private(k);
        require(priv != NULL, "private export");
        json_decref(priv);
        char *jws = ac_jws_sign(k, "fuzz", NULL, data, size < 64 ? size : 64);
        require(jws != NULL, "an imported private key signs");
        struct ac_jws j;
        require(ac_jws_parse(jws, strlen(jws), &j, NULL) == AC_EC_OK, "own jws parses");
        require(ac_jws_verify(&j, k) == AC_EC_OK, "own jws verifies");
        ac_jws_clear(&j);
        free(jws);
        EVP_PKEY_free(k);
    }
}

static void fuzz_jws(const uint8_t *data, size_t size)
{
    struct ac_jws j;
    const char *detail = NULL;
    enum ac_ec rc = ac_jws_parse((const char *)data, size, &j, &detail);
    require(rc == AC_EC_OK || rc == AC_EC_JWS_MALFORMED || rc == AC_EC_JWS_ALG_UNSUPPORTED,
            "parse result");
    if (rc != AC_EC_OK) {
        require(detail != NULL && j.header == NULL && j.payload == NULL, "failed parse is clear");
        return;
    }
    require(j.alg == AC_SIG_ED25519 || j.alg == AC_SIG_ES256, "parsed alg");
    require(json_is_object(j.header) && j.sig_len == 64, "parsed header and signature");
    require(j.signing_input_len < size && memcmp(j.signing_input, data, j.signing_input_len) == 0,
            "signing input is the prefix");
    require(j.payload[j.payload_len] == '\0', "payload is NUL-terminated");
    require(j.payload_json == NULL || json_is_object(j.payload_json), "payload json");
    require(ac_jws_verify(&j, fuzz_ed) == AC_EC_JWS_BAD_SIGNATURE, "forged under ed25519 key");
    require(ac_jws_verify(&j, fuzz_ec) == AC_EC_JWS_BAD_SIGNATURE, "forged under p-256 key");
    ac_jws_clear(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_ed == NULL) { /* kept for the whole run */
        fuzz_ed = ac_sig_keygen(AC_SIG_ED25519);
        fuzz_ec = ac_sig_keygen(AC_SIG_ES256);
        require(fuzz_ed != NULL && fuzz_ec != NULL, "keygen");
    }
    fuzz_jwk(data, size);
    fuzz_jws(data, size);
    return 0;
}
