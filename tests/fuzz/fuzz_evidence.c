/* libFuzzer harness for the evidence record decoder, the dispute-bundle verifier and the replay
 * of an export: arbitrary bytes in, no crash, no leak. Beyond that: a record that decodes must
 * re-encode to exactly its input (the decoder accepts only canonical bytes). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/bundle.h"
#include "protocol/evidence.h"
#include "protocol/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ac_ev_record r;
    char err[256];
    if (ac_ev_record_decode(data, size, &r, err, sizeof err) == 0) {
        uint8_t *again;
        size_t n;
        if (ac_ev_record_encode(&r, &again, &n, err, sizeof err) != 0) abort();
        if (n != size || memcmp(again, data, n) != 0) abort();
        free(again);
        ac_ev_record_clear(&r);
    }
    struct ac_bundle_result res;
    (void)ac_bundle_verify(data, size, NULL, &res);
    ac_bundle_result_free(&res);
    struct ac_replay rp;
    (void)ac_replay_export(&rp, data, size, NULL, NULL, NULL);
    ac_replay_free(&rp);
    return 0;
}
