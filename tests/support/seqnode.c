#include "tests/support/testutil.h"

#include "tests/support/seqnode.h"

#include <string.h>

struct ac_sequencer *ac_test_seq_start(const char *url, struct ac_domain *dom,
                                       int64_t (*clock_us)(void *cls))
{
    struct ac_seq_domain sd = ac_domain_seq(dom); /* copied by ac_seq_start */
    struct ac_seq_config cfg = {
        .db_url = url, .max_batch_items = 1024, .clock_us = clock_us, .domain = &sd};
    struct ac_sequencer *seq = ac_seq_start(&cfg);
    assert_non_null(seq);
    assert_true(ac_seq_wait_leader(seq, 15000));
    return seq;
}

static enum ac_ec run(struct ac_sequencer *seq, struct ac_cmd *c, const enum ac_ec *result)
{
    enum ac_ec ec = ac_seq_run(seq, c);
    return ec != AC_EC_OK ? ec : *result;
}

enum ac_ec ac_test_seq_identity(struct ac_sequencer *seq, struct ac_identity_op *op)
{
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    ac_identity_cmd(&c, op);
    return run(seq, &c, &op->result);
}

enum ac_ec ac_test_seq_payments(struct ac_sequencer *seq, struct ac_payop *op)
{
    struct ac_cmd c;
    memset(&c, 0, sizeof c);
    ac_payments_cmd(&c, op);
    return run(seq, &c, &op->result);
}
