/* server/config.c: the benchmark-only evidence=off switch is refused unless benchmark-only=yes is
 * also given, and its values are checked; the HTTP event loop is epoll unless poll is asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/config.h"

static int load(int argc, char **argv, struct ac_config *c, char *err, size_t n)
{
    unsetenv("AGENTCLEAR_EVIDENCE");
    unsetenv("AGENTCLEAR_BENCHMARK_ONLY");
    unsetenv("AGENTCLEAR_EVENT_LOOP");
    setenv("AGENTCLEAR_DATABASE_URL", "postgresql://nowhere/none", 1);
    return ac_config_load(c, argc, argv, err, n);
}

static void evidence_default_on(void **st)
{
    (void)st;
    struct ac_config c;
    char err[256];
    char *argv[] = {"serve", NULL};
    assert_int_equal(load(1, argv, &c, err, sizeof err), 0);
    assert_int_equal(c.evidence_off, 0);
}

static void evidence_off_refused_alone(void **st)
{
    (void)st;
    struct ac_config c;
    char err[256] = "";
    char *argv[] = {"serve", "--evidence=off", NULL};
    assert_int_equal(load(2, argv, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "benchmark-only"));
    char *argv2[] = {"serve", "--evidence=off", "--benchmark-only=no", NULL};
    assert_int_equal(load(3, argv2, &c, err, sizeof err), -1);
}

static void evidence_off_with_benchmark_only(void **st)
{
    (void)st;
    struct ac_config c;
    char err[256];
    char *argv[] = {"serve", "--evidence=off", "--benchmark-only=yes", NULL};
    assert_int_equal(load(3, argv, &c, err, sizeof err), 0);
    assert_int_equal(c.evidence_off, 1);
    /* the same through the environment */
    char *argv1[] = {"serve", NULL};
    unsetenv("AGENTCLEAR_EVIDENCE");
    setenv("AGENTCLEAR_DATABASE_URL", "postgresql://nowhere/none", 1);
    setenv("AGENTCLEAR_EVIDENCE", "off", 1);
    assert_int_equal(ac_config_load(&c, 1, argv1, err, sizeof err), -1);
    setenv("AGENTCLEAR_BENCHMARK_ONLY", "yes", 1);
    assert_int_equal(ac_config_load(&c, 1, argv1, err, sizeof err), 0);
    assert_int_equal(c.evidence_off, 1);
}

static void bad_values(void **st)
{
    (void)st;
    struct ac_config c;
    char err[256];
    char *a1[] = {"serve", "--evidence=no", NULL};
    assert_int_equal(load(2, a1, &c, err, sizeof err), -1);
    char *a2[] = {"serve", "--benchmark-only=1", NULL};
    assert_int_equal(load(2, a2, &c, err, sizeof err), -1);
    char *a3[] = {"serve", "--evidence=on", "--benchmark-only=yes", NULL};
    assert_int_equal(load(3, a3, &c, err, sizeof err), 0);
    assert_int_equal(c.evidence_off, 0);
}

static void event_loop(void **st)
{
    (void)st;
    struct ac_config c;
    char err[256] = "";
    char *dflt[] = {"serve", NULL};
    assert_int_equal(load(1, dflt, &c, err, sizeof err), 0);
    assert_int_equal(c.event_loop_poll, 0);
    char *use_poll[] = {"serve", "--event-loop=poll", NULL};
    assert_int_equal(load(2, use_poll, &c, err, sizeof err), 0);
    assert_int_equal(c.event_loop_poll, 1);
    char *both[] = {"serve", "--event-loop=poll", "--event-loop=epoll", NULL};
    assert_int_equal(load(3, both, &c, err, sizeof err), 0);
    assert_int_equal(c.event_loop_poll, 0);
    char *bad[] = {"serve", "--event-loop=select", NULL};
    assert_int_equal(load(2, bad, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "event-loop must be epoll or poll"));
    char *empty[] = {"serve", "--event-loop=", NULL};
    assert_int_equal(load(2, empty, &c, err, sizeof err), -1);
    /* the environment, and the command line over it */
    setenv("AGENTCLEAR_EVENT_LOOP", "poll", 1);
    assert_int_equal(ac_config_load(&c, 1, dflt, err, sizeof err), 0);
    assert_int_equal(c.event_loop_poll, 1);
    char *over[] = {"serve", "--event-loop=epoll", NULL};
    assert_int_equal(ac_config_load(&c, 2, over, err, sizeof err), 0);
    assert_int_equal(c.event_loop_poll, 0);
    unsetenv("AGENTCLEAR_EVENT_LOOP");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(evidence_default_on),
        cmocka_unit_test(evidence_off_refused_alone),
        cmocka_unit_test(evidence_off_with_benchmark_only),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(event_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
