/* protocol/stepup.c -- step-up challenges and confirmations; see stepup.h. */
#include "protocol/stepup.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "protocol/b64.h"
#include "protocol/sha256.h"

void ac_stepup_nonce_encode(const uint8_t raw[AC_STEPUP_NONCE_BYTES],
                            char out[AC_STEPUP_NONCE_LEN + 1])
{
    ac_b64_encode(raw, AC_STEPUP_NONCE_BYTES, out, 1);
}

/* exactly 43 characters of canonical base64url encoding 32 bytes */
static int b64u_32(const char *s)
{
    uint8_t raw[AC_STEPUP_NONCE_LEN * 3 / 4 + 3];
    size_t n = 0;
    return s && strlen(s) == AC_STEPUP_NONCE_LEN &&
           ac_b64_decode(s, AC_STEPUP_NONCE_LEN, raw, &n, 1) == 0 && n == 32;
}

/* well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF) without control characters,
 * 1..cap-1 bytes */
static int text_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n >= cap) return 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return 0;
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) < len) return 0;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += len;
    }
    return 1;
}

/* printable ASCII without space, 1..cap-1 bytes */
static int token_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n >= cap) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return 0;
    return 1;
}

int ac_stepup_challenge_valid(const struct ac_stepup_challenge *c)
{
    return c != NULL && ac_id_valid(c->authorization) && ac_id_valid(c->payer) &&
           ac_id_valid(c->agent) && ac_id_valid(c->payee) && ac_id_valid(c->mandate) &&
           ac_op_name(c->op) != NULL && ac_asset_code_valid(c->asset) && c->scale <= AC_SCALE_MAX &&
           c->amount > 0 && (c->purpose[0] == '\0' || text_ok(c->purpose, sizeof c->purpose)) &&
           (c->order_digest[0] == '\0' || token_ok(c->order_digest, sizeof c->order_digest)) &&
           b64u_32(c->nonce) && c->iat >= 1 && c->iat < c->exp && c->exp <= AC_MANDATE_TIME_MAX;
}

static json_t *payment_json(const struct ac_stepup_challenge *c)
{
    json_t *p = json_pack("{s:s, s:o, s:s, s:s, s:s, s:s}", "agent", c->agent, "amount",
                          ac_doc_amount_json(c->asset, c->amount, c->scale), "mandate", c->mandate,
                          "op", ac_op_name(c->op), "payee", c->payee, "payer", c->payer);
    if (p && c->purpose[0] && json_object_set_new(p, "purpose", json_string(c->purpose)) != 0)
        goto fail;
    if (p && c->order_digest[0] &&
        json_object_set_new(p, "order_digest", json_string(c->order_digest)) != 0)
        goto fail;
    return p;
fail:
    json_decref(p);
    return NULL;
}

/* base64url(SHA-256(canonical(payment))) */
static int digest_of(const json_t *payment, char out[AC_STEPUP_DIGEST_LEN + 1])
{
    out[0] = '\0';
    char *text = ac_doc_canonical(payment);
    if (text == NULL) return -1;
    uint8_t md[AC_SHA256_LEN];
    ac_sha256(text, strlen(text), md);
    free(text);
    ac_b64_encode(md, 32, out, 1);
    return 0;
}

int ac_stepup_payment_digest(const struct ac_stepup_challenge *c,
                             char out[AC_STEPUP_DIGEST_LEN + 1])
{
    out[0] = '\0';
    if (!ac_stepup_challenge_valid(c)) return -1;
    json_t *p = payment_json(c);
    int rc = p ? digest_of(p, out) : -1;
    json_decref(p);
    return rc;
}

json_t *ac_stepup_challenge_to_json(const struct ac_stepup_challenge *c)
{
    if (!ac_stepup_challenge_valid(c)) return NULL;
    char digest[AC_STEPUP_DIGEST_LEN + 1];
    json_t *p = payment_json(c);
    if (p == NULL || digest_of(p, digest) != 0) {
        json_decref(p);
        return NULL;
    }
    return json_pack("{s:s, s:I, s:I, s:s, s:o, s:s, s:i}", "authorization", c->authorization,
                     "exp", (json_int_t)c->exp, "iat", (json_int_t)c->iat, "nonce", c->nonce,
                     "payment", p, "payment_digest", digest, "ver", AC_STEPUP_VERSION);
}

char *ac_stepup_challenge_render(const struct ac_stepup_challenge *c)
{
    json_t *j = ac_stepup_challenge_to_json(c);
    char *s = j ? ac_doc_canonical(j) : NULL;
    json_decref(j);
    return s;
}

static const char *const ch_members[] = {"authorization",  "exp", "iat", "nonce", "payment",
                                         "payment_digest", "ver", NULL};
static const char *const pay_members[] = {"agent", "amount",       "mandate", "op", "payee",
                                          "payer", "order_digest", "purpose", NULL};
static const char *const amount_members[] = {"currency", "value", NULL};

/* a string member that must satisfy ok(s, cap); copied into out */
static int checked_string(const json_t *obj, const char *base, const char *name, int required,
                          char *out, size_t cap, int (*ok)(const char *, size_t), const char *what,
                          struct ac_doc_err *err)
{
    int rc = ac_doc_text(obj, base, name, required, out, cap, err);
    if (rc <= 0) return rc;
    if (!ok(out, cap)) {
        ac_doc_err_set(err, base, name, what);
        return -1;
    }
    return 1;
}

static int nonce_fmt(const char *s, size_t cap)
{
    (void)cap;
    return b64u_32(s);
}

static int amount_value(const json_t *pay, struct ac_stepup_challenge *out, struct ac_doc_err *err)
{
    const json_t *a = json_object_get(pay, "amount");
    if (a == NULL || !json_is_object(a)) {
        ac_doc_err_set(err, "/payment", "amount",
                       a ? "must be an object" : "required member is missing");
        return -1;
    }
    char value[AC_AMOUNT_STR_MAX];
    if (ac_doc_only(a, "/payment/amount", amount_members, err) < 0 ||
        ac_doc_text(a, "/payment/amount", "currency", 1, out->asset, sizeof out->asset, err) < 0 ||
        ac_doc_text(a, "/payment/amount", "value", 1, value, sizeof value, err) < 0)
        return -1;
    if (!ac_asset_code_valid(out->asset)) {
        ac_doc_err_set(err, "/payment/amount", "currency", "must be an asset code");
        return -1;
    }
    const char *dot = strchr(value, '.');
    size_t scale = dot ? strlen(dot + 1) : 0;
    char again[AC_AMOUNT_STR_MAX];
    if (scale > AC_SCALE_MAX || ac_amount_parse(value, (unsigned)scale, &out->amount) != AC_EC_OK ||
        out->amount <= 0 ||
        strcmp(ac_amount_format(out->amount, (unsigned)scale, again), value) != 0) {
        ac_doc_err_set(err, "/payment/amount", "value",
                       "must be a positive canonical decimal string");
        return -1;
    }
    out->scale = (unsigned)scale;
    return 0;
}

static int parse_challenge(const json_t *j, struct ac_stepup_challenge *out, struct ac_doc_err *err)
{
    int64_t ver;
    if (!json_is_object(j)) {
        ac_doc_err_set(err, "", NULL, "challenge must be a json object");
        return -1;
    }
    if (ac_doc_only(j, "", ch_members, err) < 0 ||
        ac_doc_int(j, "", "ver", 1, AC_STEPUP_VERSION, AC_STEPUP_VERSION, &ver, err) < 0 ||
        ac_doc_id(j, "", "authorization", 1, out->authorization, err) < 0 ||
        ac_doc_int(j, "", "iat", 1, 1, AC_MANDATE_TIME_MAX, &out->iat, err) < 0 ||
        ac_doc_int(j, "", "exp", 1, 1, AC_MANDATE_TIME_MAX, &out->exp, err) < 0 ||
        checked_string(j, "", "nonce", 1, out->nonce, sizeof out->nonce, nonce_fmt,
                       "must be 43 base64url characters", err) < 0)
        return -1;
    if (out->exp <= out->iat) {
        ac_doc_err_set(err, "", "exp", "must be after iat");
        return -1;
    }
    const json_t *pay = json_object_get(j, "payment");
    if (pay == NULL || !json_is_object(pay)) {
        ac_doc_err_set(err, "", "payment",
                       pay ? "must be an object" : "required member is missing");
        return -1;
    }
    char op[16];
    if (ac_doc_only(pay, "/payment", pay_members, err) < 0 ||
        ac_doc_id(pay, "/payment", "agent", 1, out->agent, err) < 0 ||
        amount_value(pay, out, err) < 0 ||
        ac_doc_id(pay, "/payment", "mandate", 1, out->mandate, err) < 0 ||
        ac_doc_text(pay, "/payment", "op", 1, op, sizeof op, err) < 0)
        return -1;
    if ((out->op = ac_op_from_name(op)) == 0) {
        ac_doc_err_set(err, "/payment", "op", "must be purchase, topup or micropay");
        return -1;
    }
    if (ac_doc_id(pay, "/payment", "payee", 1, out->payee, err) < 0 ||
        ac_doc_id(pay, "/payment", "payer", 1, out->payer, err) < 0 ||
        checked_string(pay, "/payment", "purpose", 0, out->purpose, sizeof out->purpose, text_ok,
                       "must be valid utf-8 text", err) < 0 ||
        checked_string(pay, "/payment", "order_digest", 0, out->order_digest,
                       sizeof out->order_digest, token_ok, "must be printable ascii without spaces",
                       err) < 0)
        return -1;
    char want[AC_STEPUP_DIGEST_LEN + 1], got[AC_STEPUP_DIGEST_LEN + 2];
    if (ac_doc_text(j, "", "payment_digest", 1, got, sizeof got, err) < 0) return -1;
    if (ac_stepup_payment_digest(out, want) != 0 || strcmp(want, got) != 0) {
        ac_doc_err_set(err, "", "payment_digest", "does not match the payment");
        return -1;
    }
    return 0;
}

enum ac_ec ac_stepup_challenge_parse(const json_t *j, struct ac_stepup_challenge *out,
                                     struct ac_doc_err *err)
{
    if (out == NULL) return AC_EC_INTERNAL;
    memset(out, 0, sizeof *out);
    ac_doc_err_clear(err);
    if (parse_challenge(j, out, err) == 0) return AC_EC_OK;
    memset(out, 0, sizeof *out);
    return AC_EC_JSON_SCHEMA;
}

/* ---- confirmation --------------------------------------------------------------------------- */

enum ac_ec ac_stepup_confirmation_jws_check(const struct ac_jws *jws, const char **detail)
{
    return ac_doc_jws_check(jws, AC_CONFIRMATION_TYP, detail) == 0 ? AC_EC_OK
                                                                   : AC_EC_CONFIRMATION_INVALID;
}

static const char *const conf_members[] = {"ver",      "authorization", "nonce", "payment_digest",
                                           "decision", "iat",           NULL};

static int parse_confirmation(const json_t *p, struct ac_stepup_confirmation *out,
                              struct ac_doc_err *err)
{
    int64_t ver;
    char decision[16];
    if (!json_is_object(p)) {
        ac_doc_err_set(err, "", NULL, "payload must be a json object");
        return -1;
    }
    if (ac_doc_only(p, "", conf_members, err) < 0 ||
        ac_doc_int(p, "", "ver", 1, AC_STEPUP_VERSION, AC_STEPUP_VERSION, &ver, err) < 0 ||
        ac_doc_id(p, "", "authorization", 1, out->authorization, err) < 0 ||
        checked_string(p, "", "nonce", 1, out->nonce, sizeof out->nonce, nonce_fmt,
                       "must be 43 base64url characters", err) < 0 ||
        checked_string(p, "", "payment_digest", 1, out->payment_digest, sizeof out->payment_digest,
                       nonce_fmt, "must be 43 base64url characters", err) < 0 ||
        ac_doc_text(p, "", "decision", 1, decision, sizeof decision, err) < 0)
        return -1;
    if (strcmp(decision, "confirm") == 0) {
        out->decision = AC_STEPUP_CONFIRM;
    } else if (strcmp(decision, "decline") == 0) {
        out->decision = AC_STEPUP_DECLINE;
    } else {
        ac_doc_err_set(err, "", "decision", "must be confirm or decline");
        return -1;
    }
    if (ac_doc_int(p, "", "iat", 1, 1, AC_MANDATE_TIME_MAX, &out->iat, err) < 0) return -1;
    return 0;
}

enum ac_ec ac_stepup_confirmation_parse(const json_t *payload, struct ac_stepup_confirmation *out,
                                        struct ac_doc_err *err)
{
    if (out == NULL) return AC_EC_INTERNAL;
    memset(out, 0, sizeof *out);
    ac_doc_err_clear(err);
    if (parse_confirmation(payload, out, err) == 0) return AC_EC_OK;
    memset(out, 0, sizeof *out);
    return AC_EC_CONFIRMATION_INVALID;
}

json_t *ac_stepup_confirmation_to_json(const struct ac_stepup_confirmation *c)
{
    if (c == NULL || !ac_id_valid(c->authorization) || !b64u_32(c->nonce) ||
        !b64u_32(c->payment_digest) ||
        (c->decision != AC_STEPUP_CONFIRM && c->decision != AC_STEPUP_DECLINE) || c->iat < 1 ||
        c->iat > AC_MANDATE_TIME_MAX)
        return NULL;
    return json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "ver", AC_STEPUP_VERSION, "authorization",
                     c->authorization, "nonce", c->nonce, "payment_digest", c->payment_digest,
                     "decision", c->decision == AC_STEPUP_CONFIRM ? "confirm" : "decline", "iat",
                     (json_int_t)c->iat);
}

/* floor(us / 1e6) */
static int64_t secs_of(int64_t us)
{
    int64_t s = us / 1000000;
    return (us % 1000000 < 0) ? s - 1 : s;
}

enum ac_ec ac_stepup_confirmation_check(const struct ac_stepup_confirmation *conf,
                                        const struct ac_stepup_challenge *ch, int64_t now_us,
                                        const char **detail)
{
    const char *d = NULL;
    enum ac_ec rc = AC_EC_OK;
    char want[AC_STEPUP_DIGEST_LEN + 1];
    int64_t now_s = secs_of(now_us);
    if (conf == NULL || ch == NULL || ac_stepup_payment_digest(ch, want) != 0) {
        rc = AC_EC_INTERNAL, d = "invalid challenge";
    } else if (strcmp(conf->authorization, ch->authorization) != 0) {
        rc = AC_EC_AUTHORIZATION_MISMATCH, d = "confirmation is for another authorization";
    } else if (strlen(conf->nonce) != AC_STEPUP_NONCE_LEN ||
               CRYPTO_memcmp(conf->nonce, ch->nonce, AC_STEPUP_NONCE_LEN) != 0) {
        rc = AC_EC_AUTHORIZATION_MISMATCH, d = "nonce does not match the challenge";
    } else if (strlen(conf->payment_digest) != AC_STEPUP_DIGEST_LEN ||
               CRYPTO_memcmp(conf->payment_digest, want, AC_STEPUP_DIGEST_LEN) != 0) {
        rc = AC_EC_AUTHORIZATION_MISMATCH, d = "payment digest does not match the challenge";
    } else if (now_s >= ch->exp) {
        rc = AC_EC_AUTHORIZATION_EXPIRED, d = "challenge expired";
    } else if (conf->iat < ch->iat - AC_STEPUP_SKEW_S || conf->iat > now_s + AC_STEPUP_SKEW_S) {
        rc = AC_EC_CONFIRMATION_INVALID, d = "iat outside the challenge's window";
    }
    if (d && detail) *detail = d;
    return rc;
}
