/* tests/support/seqnode.h -- a real sequencer on the test database for the db tests that drive the
 * identity and payment domains through it (nothing mocked: commands commit to PostgreSQL). */
#ifndef AC_TEST_SEQNODE_H
#define AC_TEST_SEQNODE_H

#include <stdint.h>

#include "ledger/domain.h"
#include "ledger/identity_ops.h"
#include "ledger/payments.h"
#include "ledger/sequencer.h"

/* Start a sequencer on url over the domain dom (batches of up to 1024 items, clock_us as the wall
 * clock; NULL: the real one) and wait up to 15 s until it leads. Fails the test otherwise. */
struct ac_sequencer *ac_test_seq_start(const char *url, struct ac_domain *dom,
                                       int64_t (*clock_us)(void *cls));

/* Run op through seq: the sequencer's error, else the op's result. */
enum ac_ec ac_test_seq_identity(struct ac_sequencer *seq, struct ac_identity_op *op);
enum ac_ec ac_test_seq_payments(struct ac_sequencer *seq, struct ac_payop *op);

#endif
