/* server/h_payments.c: ac_payment_json_text() (the answer of POST /v1/payments, written without a
 * jansson tree) is byte for byte what json_dumps(ac_payment_json(), JSON_COMPACT) writes, for
 * rows with and without each optional member, strings that need escaping, empty reason codes
 * and amounts at several scales; a payment with a step-up, or with free text that is not UTF-8,
 * is left to jansson. */
#include "tests/support/testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ledger/payments.h"
#include "protocol/buf.h"
#include "server/paydoc.h"

static void base_row(struct ac_payment_row *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", "p-1");
    snprintf(p->mandate, sizeof p->mandate, "%s", "m.7");
    snprintf(p->binding, sizeof p->binding, "%s", "b:1");
    snprintf(p->user, sizeof p->user, "%s", "u1");
    snprintf(p->agent, sizeof p->agent, "%s", "agent_1");
    snprintf(p->payee, sizeof p->payee, "%s", "hot");
    p->op = AC_OP_PURCHASE;
    p->amount = 1234;
    snprintf(p->asset, sizeof p->asset, "%s", "CNY");
    p->scale = 2;
    p->status = AC_PAY_SETTLED;
    snprintf(p->verdict, sizeof p->verdict, "%s", "allow");
    p->autonomy = 2;
    p->created_us = 1763884800123456;
    p->updated_us = 1763884800999999;
}

/* the text, or NULL when ac_payment_json_text() refused the row */
static char *text_of(const struct ac_payment_row *p)
{
    struct ac_buf b = {0};
    if (ac_payment_json_text(p, &b) != 0) {
        ac_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static void same_as_jansson(const struct ac_payment_row *p)
{
    json_t *tree = ac_payment_json(p);
    assert_non_null(tree);
    char *want = json_dumps(tree, JSON_COMPACT);
    json_decref(tree);
    assert_non_null(want);
    char *got = text_of(p);
    assert_non_null(got);
    assert_string_equal(got, want);
    json_error_t e;
    json_t *back = json_loads(got, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(back);
    json_decref(back);
    free(got);
    free(want);
}

static void settled_minimal(void **s)
{
    (void)s;
    struct ac_payment_row p;
    base_row(&p);
    same_as_jansson(&p);
}

static void settled_every_member(void **s)
{
    (void)s;
    struct ac_payment_row p;
    base_row(&p);
    /* a quote, a backslash, the short-form controls, another control, DEL, a slash and UTF-8 */
    snprintf(p.purpose, sizeof p.purpose, "%s",
             "tokens \"x\" \\ \b\f\n\r\t \x01\x1f \x7f a/b caf\xc3\xa9");
    snprintf(p.order_digest, sizeof p.order_digest, "%s", "sha-256=:abc/+=:");
    snprintf(p.transfer_id, sizeof p.transfer_id, "%s", "pt.0123456789abcdef");
    snprintf(p.reasons, sizeof p.reasons, "%s", "amount_over_threshold,new_payee");
    p.has_evidence = 1;
    p.ev_seq = 18446744073709551ULL;
    for (size_t i = 0; i < sizeof p.ev_leaf; i++)
        p.ev_leaf[i] = (uint8_t)(i * 29 + 3);
    p.refunded = 34;
    p.op = AC_OP_MICROPAY;
    p.autonomy = 5;
    same_as_jansson(&p);
}

static void refused_rows(void **s)
{
    (void)s;
    struct ac_payment_row p;
    base_row(&p);
    p.status = AC_PAY_DENIED;
    snprintf(p.verdict, sizeof p.verdict, "%s", "deny");
    snprintf(p.reasons, sizeof p.reasons, "%s", ",a,,b,"); /* empty codes are left out */
    same_as_jansson(&p);
    base_row(&p);
    p.status = AC_PAY_FAILED;
    snprintf(p.error, sizeof p.error, "%s", "exceeds_credits");
    same_as_jansson(&p);
}

static void amounts_and_names(void **s)
{
    (void)s;
    const int64_t amounts[] = {1, 9, 10, 100, 123456789012345678LL, INT64_MAX};
    const unsigned scales[] = {0, 1, 2, 8, 18};
    struct ac_payment_row p;
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++)
        for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
            base_row(&p);
            p.amount = amounts[i];
            p.refunded = amounts[i] / 3;
            p.scale = scales[k];
            same_as_jansson(&p);
        }
    base_row(&p);
    p.op = (enum ac_op)0; /* no name: "" */
    p.autonomy = 9;       /* no name: "L0" */
    p.status = AC_PAY_EXPIRED;
    same_as_jansson(&p);
}

/* a purpose cut inside a character (a row read back into its fixed buffer): left to jansson,
 * which leaves the member out */
static void cut_utf8_goes_to_jansson(void **s)
{
    (void)s;
    struct ac_payment_row p;
    base_row(&p);
    snprintf(p.purpose, sizeof p.purpose, "%s", "caf\xc3");
    assert_null(text_of(&p));
    json_t *tree = ac_payment_json(&p);
    assert_non_null(tree);
    assert_null(json_object_get(tree, "purpose"));
    json_decref(tree);
    base_row(&p);
    snprintf(p.order_digest, sizeof p.order_digest, "%s", "\xff");
    assert_null(text_of(&p));
}

static void step_up_goes_to_jansson(void **s)
{
    (void)s;
    struct ac_payment_row p;
    base_row(&p);
    p.status = AC_PAY_PENDING;
    snprintf(p.authorization_id, sizeof p.authorization_id, "%s", "az1");
    assert_null(text_of(&p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settled_minimal),
        cmocka_unit_test(settled_every_member),
        cmocka_unit_test(refused_rows),
        cmocka_unit_test(amounts_and_names),
        cmocka_unit_test(cut_utf8_goes_to_jansson),
        cmocka_unit_test(step_up_goes_to_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
