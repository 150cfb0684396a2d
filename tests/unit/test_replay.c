/* The transport replay window (8192-bit ring, 8128-counter window). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "messages.h"
#include "replay.h"

#define LIMIT WG_REJECT_AFTER_MESSAGES

static void test_zero_and_duplicates(void **state)
{
    (void)state;
    struct wg_replay r;
    wg_replay_init(&r);
    assert_true(wg_replay_update(&r, 0, LIMIT));
    assert_false(wg_replay_update(&r, 0, LIMIT));
    assert_true(wg_replay_update(&r, 1, LIMIT));
    assert_false(wg_replay_update(&r, 1, LIMIT));
    assert_false(wg_replay_update(&r, 0, LIMIT));
}

static void test_reordering_within_window(void **state)
{
    (void)state;
    struct wg_replay r;
    wg_replay_init(&r);
    /* 0..2999 in a scrambled order: each accepted exactly once. */
    for (uint64_t i = 0; i < 3000; i++) {
        uint64_t c = (i * 7919) % 3000;
        assert_true(wg_replay_update(&r, c, LIMIT));
    }
    for (uint64_t c = 0; c < 3000; c++)
        assert_false(wg_replay_update(&r, c, LIMIT));
}

static void test_window_edge(void **state)
{
    (void)state;
    struct wg_replay r;
    wg_replay_init(&r);
    uint64_t top = 20000;
    assert_true(wg_replay_update(&r, top, LIMIT));
    /* Exactly WG_REPLAY_WINDOW behind the greatest is still inside... */
    assert_true(wg_replay_update(&r, top - WG_REPLAY_WINDOW, LIMIT));
    assert_false(wg_replay_update(&r, top - WG_REPLAY_WINDOW, LIMIT));
    /* ...one more is too old, seen or not. */
    assert_false(wg_replay_update(&r, top - WG_REPLAY_WINDOW - 1, LIMIT));
    assert_false(wg_replay_update(&r, 0, LIMIT));
    /* At least 2048 packets of reordering are tolerated. */
    for (uint64_t c = top - 2048; c < top; c++)
        assert_true(wg_replay_update(&r, c, LIMIT));
    assert_true(WG_REPLAY_WINDOW >= 2048);
}

static void test_far_jump_clears_ring(void **state)
{
    (void)state;
    struct wg_replay r;
    wg_replay_init(&r);
    for (uint64_t c = 0; c < 200; c++)
        assert_true(wg_replay_update(&r, c, LIMIT));
    /* Jump forward by exactly one ring lap and by far more: the bits of counters 0..199 share
     * ring words with the new counters and must not be mistaken for them. */
    uint64_t lap = WG_REPLAY_RING_WORDS * WG_REPLAY_WORD_BITS;
    assert_true(wg_replay_update(&r, lap + 5, LIMIT));
    assert_true(wg_replay_update(&r, lap + 3, LIMIT));
    assert_true(wg_replay_update(&r, lap + 100, LIMIT));
    assert_false(wg_replay_update(&r, lap + 100, LIMIT));
    uint64_t far = 1ULL << 40;
    assert_true(wg_replay_update(&r, far, LIMIT));
    for (uint64_t c = far - 1000; c < far; c++)
        assert_true(wg_replay_update(&r, c, LIMIT));
    assert_false(wg_replay_update(&r, lap + 5, LIMIT)); /* now far too old */
    assert_false(wg_replay_update(&r, far, LIMIT));
}

static void test_sequential_long_run(void **state)
{
    (void)state;
    struct wg_replay r;
    wg_replay_init(&r);
    /* Several laps of the ring in order, each counter once, with a late duplicate check. */
    for (uint64_t c = 0; c < 50000; c++) {
        assert_true(wg_replay_update(&r, c, LIMIT));
        if (c >= 100)
            assert_false(wg_replay_update(&r, c - 100, LIMIT));
    }
}

static void test_limit(void **state)
{
    (void)state;
    struct wg_replay r;
    wg_replay_init(&r);
    assert_false(wg_replay_update(&r, LIMIT, LIMIT));
    assert_false(wg_replay_update(&r, UINT64_MAX, LIMIT));
    assert_true(wg_replay_update(&r, LIMIT - 1, LIMIT));
    assert_false(wg_replay_update(&r, LIMIT - 1, LIMIT));
    assert_true(wg_replay_update(&r, LIMIT - 2, LIMIT));
    assert_false(wg_replay_update(&r, 10, 10));
    assert_false(wg_replay_update(&r, LIMIT - 1 - WG_REPLAY_WINDOW - 1, LIMIT));
    assert_true(wg_replay_update(&r, LIMIT - 1 - WG_REPLAY_WINDOW, LIMIT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_and_duplicates), cmocka_unit_test(test_reordering_within_window),
        cmocka_unit_test(test_window_edge),         cmocka_unit_test(test_far_jump_clears_ring),
        cmocka_unit_test(test_sequential_long_run), cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
