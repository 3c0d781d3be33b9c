/* C2SP signed notes and tlog checkpoints: the Go reference vector in
 * shared/vectors/signed-note.txt verifies and no single-byte change of it does; sign/open round
 * trips; key string round trips; checkpoint build/parse round trips and malformed bodies; an
 * independent verifier written from the specs agrees on the reference vector, the specs' own
 * examples and the evidence log's checkpoints. */
#include "tests/support/testutil.h"
#include "tests/support/note_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocol/b64.h"
#include "protocol/evidence.h"
#include "protocol/merkle.h"
#include "protocol/note.h"
#include "protocol/sig.h"

/* ---- the reference vector ------------------------------------------------------------------ */

struct vector {
    char *file;
    const char *vkey; /* verifier key line */
    size_t vkey_len;
    const char *note;
    size_t note_len;
};

static void load_vector(struct vector *v)
{
    size_t len;
    v->file = ac_test_read_file(ac_test_src("../shared/vectors/signed-note.txt"), &len);
    assert_non_null(v->file);
    /* the key is the line after "Verifier key"; the note sits between the BEGIN/END markers */
    char *k = strstr(v->file, "Verifier key");
    assert_non_null(k);
    k = strchr(k, '\n');
    assert_non_null(k);
    k++;
    v->vkey = k;
    v->vkey_len = (size_t)(strchr(k, '\n') - k);
    static const char begin[] = "-----BEGIN NOTE-----\n", end[] = "-----END NOTE-----";
    char *b = strstr(v->file, begin), *e = strstr(v->file, end);
    assert_non_null(b);
    assert_non_null(e);
    v->note = b + strlen(begin);
    assert_true(e > v->note);
    v->note_len = (size_t)(e - v->note);
}

static void reference_vector(void **s)
{
    (void)s;
    struct vector v;
    load_vector(&v);
    struct ac_note_verifier *ver = ac_note_verifier_parse(v.vkey, v.vkey_len);
    assert_non_null(ver);
    assert_string_equal(ac_note_verifier_name(ver), "PeterNeumann");
    assert_int_equal(ac_note_verifier_key_id(ver), 0xc74f20a3u);
    /* the key string formats back to itself */
    char *f = ac_note_verifier_format(ver);
    assert_non_null(f);
    assert_int_equal(strlen(f), v.vkey_len);
    assert_memory_equal(f, v.vkey, v.vkey_len);
    free(f);

    const struct ac_note_verifier *vs[1] = {ver};
    size_t tlen = 0;
    uint8_t ok[1];
    assert_int_equal(ac_note_open(v.note, v.note_len, vs, 1, &tlen, ok), AC_NOTE_OK);
    assert_int_equal(ok[0], 1);
    static const char text[] = "If you think cryptography is the answer to your problem,\n"
                               "then you don't know what your problem is.\n";
    assert_int_equal(tlen, strlen(text));
    assert_memory_equal(v.note, text, tlen);

    /* any single byte change anywhere in the note -- text, separator or signature line -- must
     * fail, with two different changes per byte */
    char *m = malloc(v.note_len);
    assert_non_null(m);
    size_t changed = 0;
    for (size_t i = 0; i < v.note_len; i++)
        for (int d = 0; d < 2; d++) {
            memcpy(m, v.note, v.note_len);
            m[i] = d == 0 ? (char)(m[i] ^ 0x01) : (char)(m[i] == 'A' ? 'B' : 'A');
            enum ac_note_status st = ac_note_open(m, v.note_len, vs, 1, NULL, ok);
            if (st == AC_NOTE_OK) fail_msg("change at byte %zu (%d) still verifies", i, d);
            assert_int_equal(ok[0], 0);
            changed++;
        }
    assert_int_equal(changed, 2 * v.note_len);
    /* truncations */
    for (size_t n = 0; n < v.note_len; n++)
        assert_int_not_equal(ac_note_open(v.note, n, vs, 1, NULL, NULL), AC_NOTE_OK);

    /* another key under the same name is an unknown key: the signature is ignored */
    EVP_PKEY *other = ac_sig_keygen(AC_SIG_ED25519);
    struct ac_note_verifier *ov = ac_note_verifier_from_key("PeterNeumann", other);
    assert_non_null(ov);
    const struct ac_note_verifier *ovs[1] = {ov};
    assert_int_equal(ac_note_open(v.note, v.note_len, ovs, 1, NULL, NULL), AC_NOTE_EUNVERIFIED);
    /* with both, the known one verifies and the unknown is ignored */
    const struct ac_note_verifier *both[2] = {ov, ver};
    uint8_t ok2[2];
    assert_int_equal(ac_note_open(v.note, v.note_len, both, 2, NULL, ok2), AC_NOTE_OK);
    assert_int_equal(ok2[0], 0);
    assert_int_equal(ok2[1], 1);
    assert_int_equal(ac_note_open(v.note, v.note_len, NULL, 0, NULL, NULL), AC_NOTE_EUNVERIFIED);
    ac_note_verifier_free(ov);
    EVP_PKEY_free(other);
    free(m);
    ac_note_verifier_free(ver);
    free(v.file);
}

static void verifier_key_strings(void **s)
{
    (void)s;
    static const char good[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    struct ac_note_verifier *v = ac_note_verifier_parse(good, strlen(good));
    assert_non_null(v);
    ac_note_verifier_free(v);
    /* upper-case hex is the same key ID (as Go's ParseUint reads it) */
    static const char upper[] =
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    v = ac_note_verifier_parse(upper, strlen(upper));
    assert_non_null(v);
    ac_note_verifier_free(v);
    static const char *const bad[] = {
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", /* wrong ID */
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  /* 7 hex digits */
        "PeterNeumann+c74f20a3x+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20g3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumannX+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", /* other name */
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  /* short */
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWA", /* type 0x02 */
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T*",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct ac_note_verifier *b = ac_note_verifier_parse(bad[i], strlen(bad[i]));
        if (b) fail_msg("accepted bad verifier key %zu: %s", i, bad[i]);
    }
}

static void names_and_text(void **s)
{
    (void)s;
    assert_true(ac_note_name_valid("example.com/log42", 17));
    assert_true(ac_note_name_valid("\xc3\xbcnicode", 8));
    assert_true(ac_note_name_valid("PeterNeumann", 12));
    static const char *const bad[] = {
        "",
        "a+b",
        "a b",
        "a\tb",
        "a\nb",
        "a\x01"
        "b",
        "a\xc2\xa0"
        "b" /* NBSP */,
        "a\xe3\x80\x80"
        "b" /* U+3000 */,
        "a\xe2\x80\x83"
        "b" /* U+2003 */,
        "a\xc2\x85"
        "b" /* NEL */,
        "\xff",
        "\xc0\xaf" /* overlong */,
        "\xed\xa0\x80" /* surrogate */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(ac_note_name_valid(bad[i], strlen(bad[i])));
    assert_true(ac_note_text_valid("hello\n", 6));
    assert_true(ac_note_text_valid("\n", 1));
    assert_true(ac_note_text_valid("a\n\nb\n", 5));
    assert_false(ac_note_text_valid("", 0));
    assert_false(ac_note_text_valid("hello", 5));
    assert_false(ac_note_text_valid("hel\rlo\n", 7));
    assert_false(ac_note_text_valid("hel\tlo\n", 7));
    assert_false(ac_note_text_valid("hel\xfflo\n", 7));
    assert_false(ac_note_text_valid("hel\0lo\n", 7));
}

/* ---- sign and open ------------------------------------------------------------------------- */

static struct ac_note_signer *new_signer(const char *name)
{
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    assert_non_null(k);
    struct ac_note_signer *sg = ac_note_signer_new(name, k);
    EVP_PKEY_free(k); /* the signer holds its own reference */
    assert_non_null(sg);
    return sg;
}

static void sign_open(void **s)
{
    (void)s;
    struct ac_note_signer *a = new_signer("example.com/log"), *b = new_signer("witness.example/w1");
    struct ac_note_verifier *va = ac_note_signer_verifier(a), *vb = ac_note_signer_verifier(b);
    assert_non_null(va);
    assert_non_null(vb);
    assert_int_equal(ac_note_verifier_key_id(va), ac_note_signer_key_id(a));
    assert_string_equal(ac_note_signer_name(a), "example.com/log");

    static const char text[] = "example.com/log\n42\nblank lines inside\n\nare fine\n";
    const struct ac_note_signer *one[1] = {a};
    char *note = NULL;
    size_t nlen = 0;
    assert_int_equal(ac_note_sign(text, strlen(text), one, 1, &note, &nlen), AC_NOTE_OK);
    assert_int_equal(nlen, strlen(note));
    /* text, blank line, "— name base64\n" */
    assert_memory_equal(note, text, strlen(text));
    assert_int_equal(note[strlen(text)], '\n');
    assert_memory_equal(note + strlen(text) + 1, "\xe2\x80\x94 example.com/log ", 20);
    assert_int_equal(note[nlen - 1], '\n');
    const struct ac_note_verifier *vs[2] = {va, vb};
    size_t tlen = 0;
    uint8_t ok[2];
    assert_int_equal(ac_note_open(note, nlen, vs, 2, &tlen, ok), AC_NOTE_OK);
    assert_int_equal(tlen, strlen(text));
    assert_int_equal(ok[0], 1);
    assert_int_equal(ok[1], 0);
    assert_int_equal(ac_note_open(note, nlen, vs + 1, 1, NULL, NULL), AC_NOTE_EUNVERIFIED);
    free(note);

    /* two signers: each alone suffices; a bad signature from a known key fails the note, one
     * from a key the caller does not know is ignored */
    const struct ac_note_signer *two[2] = {a, b};
    assert_int_equal(ac_note_sign(text, strlen(text), two, 2, &note, &nlen), AC_NOTE_OK);
    assert_int_equal(ac_note_open(note, nlen, vs, 2, NULL, ok), AC_NOTE_OK);
    assert_int_equal(ok[0] + ok[1], 2);
    char *last = strrchr(note, ' ');
    assert_non_null(last);
    last[10] = last[10] == 'A' ? 'B' : 'A'; /* inside b's signature, past its key ID */
    assert_int_equal(ac_note_open(note, nlen, vs, 1, NULL, NULL), AC_NOTE_OK);
    assert_int_equal(ac_note_open(note, nlen, vs, 2, NULL, ok), AC_NOTE_EBADSIG);
    assert_int_equal(ok[0] + ok[1], 0);
    assert_int_equal(ac_note_open(note, nlen, vs + 1, 1, NULL, NULL), AC_NOTE_EBADSIG);
    free(note);

    /* texts that cannot be signed */
    static const char *const badtext[] = {"", "no newline", "tab\there\n", "cr\r\n", "\xff\n"};
    for (size_t i = 0; i < sizeof badtext / sizeof *badtext; i++) {
        note = (char *)1;
        assert_int_equal(ac_note_sign(badtext[i], strlen(badtext[i]), one, 1, &note, &nlen),
                         AC_NOTE_EARG);
        assert_null(note);
    }
    assert_int_equal(ac_note_sign(text, strlen(text), one, 0, &note, &nlen), AC_NOTE_EARG);

    ac_note_verifier_free(va);
    ac_note_verifier_free(vb);
    ac_note_signer_free(a);
    ac_note_signer_free(b);
}

static void signer_key_strings(void **s)
{
    (void)s;
    struct ac_note_signer *a = new_signer("example.com/log");
    char *skey = ac_note_signer_format(a);
    assert_non_null(skey);
    assert_memory_equal(skey, "PRIVATE+KEY+example.com/log+", 28);
    struct ac_note_signer *a2 = ac_note_signer_parse(skey, strlen(skey));
    assert_non_null(a2);
    assert_int_equal(ac_note_signer_key_id(a2), ac_note_signer_key_id(a));
    /* Ed25519 is deterministic: the parsed key signs identically */
    static const char text[] = "hello\n";
    const struct ac_note_signer *s1[1] = {a}, *s2[1] = {a2};
    char *n1, *n2;
    size_t l1, l2;
    assert_int_equal(ac_note_sign(text, 6, s1, 1, &n1, &l1), AC_NOTE_OK);
    assert_int_equal(ac_note_sign(text, 6, s2, 1, &n2, &l2), AC_NOTE_OK);
    assert_int_equal(l1, l2);
    assert_memory_equal(n1, n2, l1);
    /* the verifier key string round trips through the parser */
    struct ac_note_verifier *v = ac_note_signer_verifier(a);
    char *vkey = ac_note_verifier_format(v);
    struct ac_note_verifier *v2 = ac_note_verifier_parse(vkey, strlen(vkey));
    assert_non_null(v2);
    const struct ac_note_verifier *vs[1] = {v2};
    assert_int_equal(ac_note_open(n1, l1, vs, 1, NULL, NULL), AC_NOTE_OK);
    /* a signer string with a wrong key ID, a public key, or without the prefix is refused */
    size_t kl = strlen(skey);
    char *bad = malloc(kl + 1);
    assert_non_null(bad);
    memcpy(bad, skey, kl + 1);
    char *hex = strchr(bad + 28, '+') + 1;
    hex[0] = hex[0] == '0' ? '1' : '0';
    assert_null(ac_note_signer_parse(bad, kl));
    assert_null(ac_note_signer_parse(skey + 12, kl - 12));
    assert_null(ac_note_signer_parse(vkey, strlen(vkey)));
    /* a public-only key cannot sign */
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    uint8_t pub[32];
    size_t pl = 32;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &pl), 1);
    EVP_PKEY *pubk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    assert_null(ac_note_signer_new("x", pubk));
    assert_null(ac_note_signer_new("bad name", k));
    EVP_PKEY *ec = ac_sig_keygen(AC_SIG_ES256);
    assert_null(ac_note_signer_new("x", ec));
    assert_null(ac_note_verifier_from_key("x", ec));
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pubk);
    EVP_PKEY_free(k);
    free(bad);
    free(vkey);
    ac_note_verifier_free(v);
    ac_note_verifier_free(v2);
    free(n1);
    free(n2);
    free(skey);
    ac_note_signer_free(a);
    ac_note_signer_free(a2);
}

static void malformed_notes(void **s)
{
    (void)s;
    struct ac_note_signer *a = new_signer("example.com/log");
    struct ac_note_verifier *va = ac_note_signer_verifier(a);
    const struct ac_note_verifier *vs[1] = {va};
    const struct ac_note_signer *one[1] = {a};
    char *note;
    size_t nlen;
    assert_int_equal(ac_note_sign("hi\n", 3, one, 1, &note, &nlen), AC_NOTE_OK);
    const char *sigline = note + 4; /* "— example.com/log <b64>\n" */
    size_t sl = nlen - 4;

    char buf[8192];
    /* no blank line before the signatures */
    snprintf(buf, sizeof buf, "hi\n%.*s", (int)sl, sigline);
    assert_int_equal(ac_note_open(buf, strlen(buf), vs, 1, NULL, NULL), AC_NOTE_EMALFORMED);
    /* no final newline */
    assert_int_equal(ac_note_open(note, nlen - 1, vs, 1, NULL, NULL), AC_NOTE_EMALFORMED);
    /* empty signature block */
    assert_int_equal(ac_note_open("hi\n\n", 4, vs, 1, NULL, NULL), AC_NOTE_EMALFORMED);
    /* a hyphen instead of the em dash */
    snprintf(buf, sizeof buf, "hi\n\n- %s", sigline + 4);
    assert_int_equal(ac_note_open(buf, strlen(buf), vs, 1, NULL, NULL), AC_NOTE_EMALFORMED);
    /* a non-signature line after a good one */
    snprintf(buf, sizeof buf, "%sgarbage\n", note);
    assert_int_equal(ac_note_open(buf, strlen(buf), vs, 1, NULL, NULL), AC_NOTE_EMALFORMED);
    /* a good one after a blank line is now the only block; the first line is text */
    snprintf(buf, sizeof buf, "%s\n%.*s", note, (int)sl, sigline);
    size_t tl = 0;
    assert_int_equal(ac_note_open(buf, strlen(buf), vs, 1, &tl, NULL), AC_NOTE_EBADSIG);
    /* signature too short, not base64, no base64, name with '+' */
    static const char *const lines[] = {
        "\xe2\x80\x94 example.com/log AAAAAA==\n",
        "\xe2\x80\x94 example.com/log !!!!\n",
        "\xe2\x80\x94 example.com/log \n",
        "\xe2\x80\x94 example.com/log\n",
        "\xe2\x80\x94 exa+mple.com/log AAAAAAAAAAAAAAAAAAAA\n",
        "\xe2\x80\x94  AAAAAAAAAAAAAAAAAAAA\n",
        "\xe2\x80\x94 example.com/log AAAAAAAAAAAAAAAAAAAA AAAA\n",
        "\xe2\x80\x94 example.com/log\tAAAAAAAAAAAAAAAAAAAA\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        snprintf(buf, sizeof buf, "hi\n\n%s%.*s", lines[i], (int)sl, sigline);
        if (ac_note_open(buf, strlen(buf), vs, 1, NULL, NULL) != AC_NOTE_EMALFORMED)
            fail_msg("line %zu accepted", i);
    }
    /* an extra blank line belongs to the text, which then no longer matches the signature */
    snprintf(buf, sizeof buf, "hi\n\n\n%.*s", (int)sl, sigline);
    assert_int_equal(ac_note_open(buf, strlen(buf), vs, 1, &tl, NULL), AC_NOTE_EBADSIG);
    /* unknown signatures are ignored, up to AC_NOTE_MAX_SIGS lines in all */
    static const char unknown[] = "\xe2\x80\x94 other.example AAAAAAAAAAAAAAAAAAAA\n";
    size_t o = (size_t)snprintf(buf, sizeof buf, "hi\n\n");
    for (int i = 0; i < AC_NOTE_MAX_SIGS - 1; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", unknown);
    char *big = malloc(o + sl + sizeof unknown);
    memcpy(big, buf, o);
    memcpy(big + o, sigline, sl);
    assert_int_equal(ac_note_open(big, o + sl, vs, 1, NULL, NULL), AC_NOTE_OK);
    memcpy(big + o + sl, unknown, sizeof unknown - 1);
    assert_int_equal(ac_note_open(big, o + sl + sizeof unknown - 1, vs, 1, NULL, NULL),
                     AC_NOTE_EMALFORMED);
    free(big);
    /* control characters and invalid UTF-8 anywhere */
    memcpy(buf, note, nlen);
    buf[1] = '\r';
    assert_int_equal(ac_note_open(buf, nlen, vs, 1, NULL, NULL), AC_NOTE_EMALFORMED);
    buf[1] = (char)0xff;
    assert_int_equal(ac_note_open(buf, nlen, vs, 1, NULL, NULL), AC_NOTE_EMALFORMED);
    free(note);
    ac_note_verifier_free(va);
    ac_note_signer_free(a);
}

/* ---- checkpoints --------------------------------------------------------------------------- */

static void checkpoint_roundtrip(void **s)
{
    (void)s;
    struct ac_checkpoint cp = {
        .origin = "example.com/behind-the-sofa", .origin_len = 27, .size = 20852163};
    static const char root_b64[] = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    size_t rn;
    uint8_t root[40];
    assert_int_equal(ac_b64_decode(root_b64, 44, root, &rn, 0), 0);
    memcpy(cp.root, root, 32);
    size_t len;
    char *body = ac_checkpoint_format(&cp, &len);
    assert_non_null(body);
    static const char want[] = "example.com/behind-the-sofa\n20852163\n"
                               "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    assert_string_equal(body, want);
    assert_int_equal(len, strlen(want));
    struct ac_checkpoint back;
    assert_int_equal(ac_checkpoint_parse(body, len, &back), 0);
    assert_int_equal(back.origin_len, cp.origin_len);
    assert_memory_equal(back.origin, cp.origin, cp.origin_len);
    assert_true(back.size == cp.size);
    assert_memory_equal(back.root, cp.root, 32);
    assert_int_equal(back.ext_len, 0);
    assert_null(back.ext);
    free(body);

    /* with extension lines, size 0 and the largest size */
    static const char *const exts[] = {"ext one\n", "a\nb\n"};
    static const uint64_t sizes[] = {0, UINT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        cp.ext = exts[i];
        cp.ext_len = strlen(exts[i]);
        cp.size = sizes[i];
        body = ac_checkpoint_format(&cp, &len);
        assert_non_null(body);
        assert_int_equal(ac_checkpoint_parse(body, len, &back), 0);
        assert_true(back.size == sizes[i]);
        assert_int_equal(back.ext_len, cp.ext_len);
        assert_memory_equal(back.ext, cp.ext, cp.ext_len);
        char *again = ac_checkpoint_format(&back, NULL);
        assert_string_equal(again, body);
        free(again);
        free(body);
    }

    /* fields that break the rules are refused by the builder */
    struct ac_checkpoint bad = cp;
    bad.ext = NULL;
    bad.ext_len = 0;
    bad.origin_len = 0;
    assert_null(ac_checkpoint_format(&bad, NULL));
    bad = cp;
    bad.ext_len = 0;
    bad.origin = "two\nlines";
    bad.origin_len = 9;
    assert_null(ac_checkpoint_format(&bad, NULL));
    bad.origin = "tab\there";
    bad.origin_len = 8;
    assert_null(ac_checkpoint_format(&bad, NULL));
    static const char *const badext[] = {"no newline", "\n", "a\n\nb\n", "\r\n"};
    for (size_t i = 0; i < sizeof badext / sizeof *badext; i++) {
        bad = cp;
        bad.ext = badext[i];
        bad.ext_len = strlen(badext[i]);
        assert_null(ac_checkpoint_format(&bad, NULL));
    }

    /* a checkpoint as a signed note, end to end */
    struct ac_note_signer *sg = new_signer("example.com/behind-the-sofa");
    struct ac_note_verifier *v = ac_note_signer_verifier(sg);
    cp.ext = NULL;
    cp.ext_len = 0;
    cp.size = 7;
    body = ac_checkpoint_format(&cp, &len);
    const struct ac_note_signer *sgs[1] = {sg};
    const struct ac_note_verifier *vs[1] = {v};
    char *note;
    size_t nlen, tlen;
    assert_int_equal(ac_note_sign(body, len, sgs, 1, &note, &nlen), AC_NOTE_OK);
    assert_int_equal(ac_note_open(note, nlen, vs, 1, &tlen, NULL), AC_NOTE_OK);
    assert_int_equal(ac_checkpoint_parse(note, tlen, &back), 0);
    assert_true(back.size == 7);
    free(note);
    free(body);
    ac_note_verifier_free(v);
    ac_note_signer_free(sg);
}

static void checkpoint_malformed(void **s)
{
    (void)s;
#define R "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    static const char *const good[] = {
        "o\n0\n" R "\n",
        "o\n1\n" R "\n",
        "o\n18446744073709551615\n" R "\n",
        "origin with spaces+plus\n5\n" R "\nx\n",
    };
    struct ac_checkpoint cp;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (ac_checkpoint_parse(good[i], strlen(good[i]), &cp) != 0) fail_msg("refused %zu", i);
    static const char *const bad[] = {
        "",
        "\n",
        "o\n",
        "o\n5\n",
        "o\n5\n" R,       /* no final newline */
        "\n5\n" R "\n",   /* empty origin */
        "o\n05\n" R "\n", /* leading zero */
        "o\n00\n" R "\n",
        "o\n-1\n" R "\n",
        "o\n+1\n" R "\n",
        "o\n 1\n" R "\n",
        "o\n1 \n" R "\n",
        "o\n\n" R "\n", /* empty size */
        "o\n1x\n" R "\n",
        "o\n18446744073709551616\n" R "\n", /* 2^64 */
        "o\n99999999999999999999\n" R "\n",
        "o\n123456789012345678901\n" R "\n",                    /* 21 digits */
        "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  /* no padding */
        "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", /* non-canonical bits */
        "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n", /* 31 bytes */
        "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n", /* 33 bytes */
        "o\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", /* base64url */
        "o\n5\n" R " \n",
        "o\n5\n" R "\n\n", /* empty extension line */
        "o\n5\n" R "\nx\n\ny\n",
        "o\n5\n" R "\nx",
        "o\r\n5\n" R "\n",   /* control character */
        "o\xff\n5\n" R "\n", /* invalid UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (ac_checkpoint_parse(bad[i], strlen(bad[i]), &cp) == 0)
            fail_msg("accepted malformed checkpoint %zu: %s", i, bad[i]);
#undef R
}


/* ---- the independent verifier (tests/support/note_verify.c) -------------------------------- */

static void independent_verifier(void **s)
{
    (void)s;
    /* 1. the Go reference vector */
    struct vector v;
    load_vector(&v);
    char vk[256];
    assert_true(v.vkey_len < sizeof vk);
    memcpy(vk, v.vkey, v.vkey_len);
    vk[v.vkey_len] = '\0';
    struct ac_ind_key k;
    assert_int_equal(ac_ind_parse_vkey(vk, &k), 0);
    assert_string_equal(k.name, "PeterNeumann");
    size_t tl;
    assert_int_equal(ac_ind_verify(v.note, v.note_len, &k, &tl), 1);
    char *m = malloc(v.note_len);
    assert_non_null(m);
    size_t text_len = tl;
    for (size_t i = 0; i < text_len; i++) { /* any change of the text fails */
        memcpy(m, v.note, v.note_len);
        m[i] ^= 0x01;
        assert_int_equal(ac_ind_verify(m, v.note_len, &k, &tl), 0);
    }
    free(m);
    free(v.file);

    /* 2. the specs' own examples (their public keys are not published): each parses as a note
     * with one 4+64-byte Ed25519 signature by a key named as in the text, the checkpoint body
     * parses, and a verifier of an unrelated key finds no signature of its own (ignored, not
     * failed) in both implementations */
    static const char sofa[] =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        "\xe2\x80\x94 example.com/behind-the-sofa "
        "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+"
        "xeMcTOAYQ8=\n";
    static const char quasimodo[] =
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed \xc3\xa8 subito sera.\n\n"
        "\xe2\x80\x94 quasimodo.example/salvatore "
        "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNt"
        "Ic=\n";
    const char *ex[2] = {sofa, quasimodo};
    struct ac_note_signer *other = new_signer("example.com/behind-the-sofa");
    struct ac_note_verifier *ov = ac_note_signer_verifier(other);
    char *ovs = ac_note_verifier_format(ov);
    struct ac_ind_key ok;
    assert_int_equal(ac_ind_parse_vkey(ovs, &ok), 0);
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(ex[i]);
        assert_int_equal(ac_ind_verify(ex[i], n, &ok, &tl), 0); /* unknown key: not verified */
        const char *last = strstr(ex[i], "\n\n\xe2\x80\x94 ");
        assert_non_null(last);
        assert_int_equal(tl, (size_t)(last - ex[i]) + 1); /* text ends at the last blank line */
        const char *b64 = strrchr(ex[i], ' ') + 1;
        uint8_t sig[128];
        assert_int_equal(ac_ind_b64(b64, strlen(b64) - 1, sig, sizeof sig), 68);
        const struct ac_note_verifier *vs[1] = {ov};
        size_t ptl;
        assert_int_equal(ac_note_open(ex[i], n, vs, 1, &ptl, NULL), AC_NOTE_EUNVERIFIED);
    }
    char origin[128];
    uint64_t size;
    uint8_t root[32];
    assert_int_equal(ac_ind_checkpoint(sofa, strlen(sofa), origin, sizeof origin, &size, root), 0);
    assert_string_equal(origin, "example.com/behind-the-sofa");
    assert_true(size == 20852163);
    struct ac_checkpoint cp;
    assert_int_equal(ac_checkpoint_parse(sofa, 82, &cp), 0);
    assert_true(cp.size == size);
    assert_memory_equal(cp.root, root, 32);
    free(ovs);
    ac_note_verifier_free(ov);
    ac_note_signer_free(other);

    /* 3. the evidence log's checkpoints verify independently, and every single-byte change is
     * refused by both verifiers alike */
    EVP_PKEY *key = ac_sig_keygen(AC_SIG_ED25519);
    uint8_t r[32];
    for (int i = 0; i < 32; i++)
        r[i] = (uint8_t)(i * 7);
    char *note;
    size_t nlen;
    assert_int_equal(ac_ev_checkpoint_sign("agentclear.example/0", 1234567, r, key, &note, &nlen),
                     0);
    char *evk = ac_ev_checkpoint_vkey("agentclear.example/0", key);
    struct ac_ind_key ek;
    assert_int_equal(ac_ind_parse_vkey(evk, &ek), 0);
    assert_int_equal(ac_ind_verify(note, nlen, &ek, &tl), 1);
    assert_int_equal(ac_ind_checkpoint(note, tl, origin, sizeof origin, &size, root), 0);
    assert_string_equal(origin, "agentclear.example/0");
    assert_true(size == 1234567);
    assert_memory_equal(root, r, 32);
    m = malloc(nlen);
    assert_non_null(m);
    for (size_t i = 0; i < nlen; i++) {
        memcpy(m, note, nlen);
        m[i] ^= 0x04;
        struct ac_ev_checkpoint ecp;
        char err[128];
        int prod = ac_ev_checkpoint_verify(m, nlen, evk, strlen(evk), NULL, &ecp, err, sizeof err);
        int ind = ac_ind_verify(m, nlen, &ek, &tl);
        if (prod == 0 || ind == 1) fail_msg("byte %zu: production %d, independent %d", i, prod, ind);
        ac_ev_checkpoint_clear(&ecp);
    }
    free(m);
    free(note);
    free(evk);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_vector),     cmocka_unit_test(verifier_key_strings),
        cmocka_unit_test(names_and_text),       cmocka_unit_test(sign_open),
        cmocka_unit_test(signer_key_strings),   cmocka_unit_test(malformed_notes),
        cmocka_unit_test(checkpoint_roundtrip), cmocka_unit_test(checkpoint_malformed),
        cmocka_unit_test(independent_verifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
