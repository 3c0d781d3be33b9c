/* bench_sig -- the Ed25519 verify alone, one thread: ac_sig_verify() (libsodium, what the server
 * and the auditor use) and OpenSSL's EVP_DigestVerify() (what `openssl speed ed25519` measures),
 * same key, same message, taking turns. ops/bench prints it beside the end-to-end figures, so a
 * reader sees how much of a ratio against `openssl speed` comes from the faster primitive and how
 * much from the path around it.
 *
 *   bench_sig [seconds]   (default 2 per side)
 * Prints "key value" lines: sig_verify_per_s, openssl_evp_verify_per_s, msg_bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "protocol/sig.h"
#include "tests/support/testutil.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (!(secs > 0 && secs <= 600)) {
        fprintf(stderr, "usage: bench_sig [seconds]\n");
        return 2;
    }
    EVP_PKEY *k = ac_sig_keygen(AC_SIG_ED25519);
    /* about the size of an RFC 9421 signature base of a payment request */
    uint8_t msg[420];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)('a' + i % 26);
    uint8_t sig[AC_SIG_MAX];
    size_t siglen = 0;
    if (k == NULL || ac_sig_sign(k, msg, sizeof msg, sig, &siglen) != 0 || siglen != 64) {
        fprintf(stderr, "bench_sig: cannot make a key and a signature\n");
        return 1;
    }
    double rate[2] = {0, 0}, spent[2] = {0, 0};
    long done[2] = {0, 0};
    /* four turns each, alternating, so a drift in the machine's speed hits both sides alike */
    for (int turn = 0; turn < 8; turn++) {
        int side = turn % 2;
        double t0 = cpu_now(), t;
        long n = 0;
        do {
            for (int i = 0; i < 64; i++) {
                int ok = side == 0 ? ac_sig_verify(k, AC_SIG_ED25519, msg, sizeof msg, sig, 64) == 1
                                   : ac_test_openssl_ed25519_verify(k, msg, sizeof msg, sig);
                if (!ok) {
                    fprintf(stderr, "bench_sig: a valid signature did not verify\n");
                    return 1;
                }
            }
            n += 64;
            t = cpu_now() - t0;
        } while (t < secs / 4);
        done[side] += n;
        spent[side] += t;
    }
    for (int s = 0; s < 2; s++)
        rate[s] = spent[s] > 0 ? (double)done[s] / spent[s] : 0;
    printf("sig_verify_per_s %.1f\n", rate[0]);
    printf("openssl_evp_verify_per_s %.1f\n", rate[1]);
    printf("msg_bytes %zu\n", sizeof msg);
    EVP_PKEY_free(k);
    return 0;
}
