/* libFuzzer harness for the evidence-log parsers: arbitrary bytes into the deterministic-CBOR
 * checker and decoder, the signed-note opener, the key-string parsers and the checkpoint parser.
 * Beyond "no crash, no leak" it checks round trips: bytes the checker accepts must decode and
 * re-encode to exactly themselves, and a checkpoint that parses must format back to its input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/dcbor.h"
#include "protocol/note.h"
#include "protocol/sig.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two verifiers for ac_note_open: the reference vector's key and a fresh one. Made once. */
static struct ac_note_verifier *verifiers[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char vkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    verifiers[0] = ac_note_verifier_parse(vkey, strlen(vkey));
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    verifiers[1] = ac_note_verifier_from_key("example.com/log", k);
    EVP_PKEY_free(k);
    if (!verifiers[0] || !verifiers[1]) abort();
    return 0;
}

static void fuzz_cbor(const uint8_t *data, size_t size)
{
    static const uint64_t tags[] = {32, 1};
    enum ac_dcbor_status st = ac_dcbor_check(data, size, tags, 2);
    cbor_item_t *it = NULL;
    enum ac_dcbor_status dst = ac_dcbor_decode(data, size, tags, 2, &it);
    if (dst != st) abort(); /* decode is check + load; allocation cannot fail here */
    if (st != AC_DCBOR_OK) {
        if (it) abort();
        return;
    }
    uint8_t *out = NULL;
    size_t len = 0;
    if (ac_dcbor_encode(it, &out, &len) != AC_DCBOR_OK) abort();
    if (len != size || memcmp(out, data, size) != 0) abort(); /* deterministic: one encoding */
    free(out);
    cbor_decref(&it);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    const struct ac_note_verifier *vs[2] = {verifiers[0], verifiers[1]};
    size_t tlen = 0;
    uint8_t ok[2];
    if (ac_note_open(t, size, vs, 2, &tlen, ok) == AC_NOTE_OK &&
        (tlen > size || ok[0] + ok[1] == 0))
        abort();

    struct ac_note_verifier *v = ac_note_verifier_parse(t, size);
    if (v) {
        /* formats back to the input, up to the case of the hex key ID */
        char *f = ac_note_verifier_format(v);
        if (!f || strlen(f) != size) abort();
        for (size_t i = 0; i < size; i++)
            if (f[i] != t[i] && !(f[i] >= 'a' && f[i] <= 'f' && f[i] - 'a' + 'A' == t[i])) abort();
        free(f);
        ac_note_verifier_free(v);
    }
    ac_note_signer_free(ac_note_signer_parse(t, size));

    struct ac_checkpoint cp;
    if (ac_checkpoint_parse(t, size, &cp) == 0) {
        size_t n = 0;
        char *back = ac_checkpoint_format(&cp, &n);
        if (!back || n != size || memcmp(back, t, size) != 0) abort();
        free(back);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cbor(data, size);
    fuzz_text(data, size);
    return 0;
}
