/* ledger/deadlines.h: the earliest deadline through adds and removes, the sweep's order and its
 * stop on failure, moving a list. */
#include "tests/support/testutil.h"

#include <string.h>

#include "ledger/deadlines.h"

struct item {
    int id;
    struct ac_deadline dl;
};

/* What a sweep saw: the items' ids in order; removes each unless it is `fail_on`. */
struct seen {
    struct ac_deadlines *l;
    int ids[16];
    size_t n;
    int fail_on;
    int keep; /* 1: leave the items listed */
};

static int visit(void *item, void *cls)
{
    struct item *it = item;
    struct seen *s = cls;
    if (it->id == s->fail_on) return -7;
    s->ids[s->n++] = it->id;
    if (!s->keep) ac_deadlines_remove(s->l, &it->dl);
    return 0;
}

static void empty(void **st)
{
    (void)st;
    struct ac_deadlines l;
    ac_deadlines_init(&l);
    assert_int_equal(ac_deadlines_count(&l), 0);
    assert_true(ac_deadlines_next(&l) == INT64_MAX);
    struct seen s = {.l = &l};
    assert_int_equal(ac_deadlines_sweep(&l, INT64_MAX, visit, &s), 0);
    assert_int_equal(s.n, 0);
}

static void earliest(void **st)
{
    (void)st;
    struct ac_deadlines l;
    ac_deadlines_init(&l);
    struct item it[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    ac_deadlines_add(&l, &it[0].dl, &it[0], 300);
    assert_true(ac_deadlines_next(&l) == 300);
    ac_deadlines_add(&l, &it[1].dl, &it[1], 100);
    ac_deadlines_add(&l, &it[2].dl, &it[2], 100);
    ac_deadlines_add(&l, &it[3].dl, &it[3], 200);
    assert_int_equal(ac_deadlines_count(&l), 4);
    assert_true(ac_deadlines_next(&l) == 100);
    /* one of two items holding the earliest deadline goes: it is still the earliest */
    ac_deadlines_remove(&l, &it[1].dl);
    assert_true(ac_deadlines_next(&l) == 100);
    ac_deadlines_remove(&l, &it[2].dl);
    assert_true(ac_deadlines_next(&l) == 200);
    /* a later item goes: unchanged */
    ac_deadlines_remove(&l, &it[0].dl);
    assert_true(ac_deadlines_next(&l) == 200);
    assert_int_equal(ac_deadlines_count(&l), 1);
    ac_deadlines_remove(&l, &it[3].dl);
    assert_true(ac_deadlines_next(&l) == INT64_MAX);
    assert_int_equal(ac_deadlines_count(&l), 0);
    /* an item removed can be added again, with another deadline */
    ac_deadlines_add(&l, &it[3].dl, &it[3], 50);
    assert_true(ac_deadlines_next(&l) == 50);
}

static void sweep_order(void **st)
{
    (void)st;
    struct ac_deadlines l;
    ac_deadlines_init(&l);
    /* insertion order, not deadline order; an item at exactly now is due */
    static const int64_t at[6] = {50, 10, 90, 30, 10, 60};
    struct item it[6];
    for (int i = 0; i < 6; i++) {
        it[i].id = i;
        ac_deadlines_add(&l, &it[i].dl, &it[i], at[i]);
    }
    struct seen s = {.l = &l, .fail_on = -1};
    assert_int_equal(ac_deadlines_sweep(&l, 9, visit, &s), 0); /* none due */
    assert_int_equal(s.n, 0);
    assert_int_equal(ac_deadlines_sweep(&l, 50, visit, &s), 0);
    assert_int_equal(s.n, 4);
    static const int want[4] = {0, 1, 3, 4};
    assert_memory_equal(s.ids, want, sizeof want);
    assert_int_equal(ac_deadlines_count(&l), 2);
    assert_true(ac_deadlines_next(&l) == 60);
    /* the rest, in order */
    s.n = 0;
    assert_int_equal(ac_deadlines_sweep(&l, 1000, visit, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ids[0], 2);
    assert_int_equal(s.ids[1], 5);
    assert_int_equal(ac_deadlines_count(&l), 0);
}

static void sweep_stops(void **st)
{
    (void)st;
    struct ac_deadlines l;
    ac_deadlines_init(&l);
    struct item it[4];
    for (int i = 0; i < 4; i++) {
        it[i].id = i;
        ac_deadlines_add(&l, &it[i].dl, &it[i], 10);
    }
    struct seen s = {.l = &l, .fail_on = 2};
    assert_int_equal(ac_deadlines_sweep(&l, 10, visit, &s), -7);
    assert_int_equal(s.n, 2); /* 0 and 1; 3 is left for the next sweep */
    assert_int_equal(ac_deadlines_count(&l), 2);
    s.fail_on = -1;
    s.n = 0;
    assert_int_equal(ac_deadlines_sweep(&l, 10, visit, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ids[0], 2);
    assert_int_equal(s.ids[1], 3);
    /* a visitor that keeps its items sees them again next time */
    ac_deadlines_add(&l, &it[0].dl, &it[0], 5);
    s.keep = 1;
    s.n = 0;
    assert_int_equal(ac_deadlines_sweep(&l, 10, visit, &s), 0);
    assert_int_equal(ac_deadlines_sweep(&l, 10, visit, &s), 0);
    assert_int_equal(s.n, 2);
}

static void move(void **st)
{
    (void)st;
    struct ac_deadlines a, b;
    ac_deadlines_init(&a);
    ac_deadlines_init(&b);
    struct item it[3];
    for (int i = 0; i < 3; i++) {
        it[i].id = i;
        ac_deadlines_add(&a, &it[i].dl, &it[i], 30 - 10 * i);
    }
    ac_deadlines_move(&b, &a);
    assert_int_equal(ac_deadlines_count(&a), 0);
    assert_true(ac_deadlines_next(&a) == INT64_MAX);
    assert_int_equal(ac_deadlines_count(&b), 3);
    assert_true(ac_deadlines_next(&b) == 10);
    struct seen s = {.l = &b, .fail_on = -1};
    assert_int_equal(ac_deadlines_sweep(&b, 100, visit, &s), 0);
    static const int want[3] = {0, 1, 2};
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.ids, want, sizeof want);
    /* an empty list moved */
    ac_deadlines_add(&b, &it[0].dl, &it[0], 1);
    ac_deadlines_move(&b, &a);
    assert_int_equal(ac_deadlines_count(&b), 0);
    assert_true(ac_deadlines_next(&b) == INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty),       cmocka_unit_test(earliest), cmocka_unit_test(sweep_order),
        cmocka_unit_test(sweep_stops), cmocka_unit_test(move),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
