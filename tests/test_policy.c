/* SPDX-License-Identifier: MIT */
/*
 * Unit: the trip policies as scenario tables - calls, outcomes, durations
 * and time steps against the expected state - driven by the fake clock.
 * Each table walks one boundary: exactly at the rate, one call short of
 * minimum_calls, bucket rollover, window wrap, slow calls, backoff cap,
 * jitter bounds.
 */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers" /* the scenario tables */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "scenario.h"

static void test_rate_policy_trips_exactly_at_the_failure_rate(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 10\n",
        {{OK, 5},
         {FAIL, 4},
         {STATE, CLOSED},
         {WINDOW, 9, 0, 4, 0},
         {FAIL, 1},
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_rate_policy_stays_closed_just_below_the_rate(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 10\n",
        {{FAIL, 4},
         {OK, 6},
         {STATE, CLOSED},
         {WINDOW, 10, 0, 4, 0},
         /* each new call pushes the oldest out: 3, then 2 failures of 10 */
         {OK, 1},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 10, 0, 3, 0},
         {OK, 1},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 10, 0, 2, 0},
         /* and once the window holds 5 of 10, it trips */
         {FAIL, 3},
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_rate_policy_waits_for_minimum_calls(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 20\n    minimum_calls: 10\n",
        {{FAIL, 9}, {STATE, CLOSED}, {WINDOW, 9, 0, 9, 0}, {FAIL, 1}, {STATE, OPEN}, {END}}};
    (void)state;
    run(&sc);
}

static void test_count_window_wraps_and_forgets_old_failures(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 10\n",
        {{FAIL, 4},
         {OK, 100},
         {WINDOW, 10, 0, 0, 0},
         {FAIL, 4},
         {STATE, CLOSED},
         {WINDOW, 10, 0, 4, 0},
         {FAIL, 1},
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

/* The count window holds the last window_size calls however long the run
   of successes since the last failure: failures that left it stay out. */
static void test_a_count_window_forgets_failures_long_gone(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 5\n    window_size: 100\n    minimum_calls: 10\n",
        {{FAIL, 5},
         {STATE, CLOSED},
         {OK, 5000},
         {WINDOW, 100, 0, 0, 0},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 100, 0, 1, 0},
         {END}}};
    (void)state;
    run(&sc);
}

/* Entering closed starts an empty window: the failures that tripped the
   breaker and the probes' outcomes are not in it (every peer does so). */
static void test_closing_starts_an_empty_window(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 10\n"
        "    open_timeout: 1s\n",
        {{FAIL, 10},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {FAIL, 1}, /* a failed probe */
         {STATE, OPEN},
         {TICK, 0, 2000},
         {OK, 1}, /* a good probe closes */
         {STATE, CLOSED},
         {WINDOW, 0, 0, 0, 0},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 1, 0, 1, 0},
         {OK, 100},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 10, 0, 1, 0},
         {END}}};
    (void)state;
    run(&sc);
}

/* What was recorded while forced closed belongs to that time: back to
   normal, the window starts empty. */
static void test_returning_to_normal_starts_an_empty_window(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 10\n",
        {{MODE, CBSHM_MODE_FORCED_CLOSED},
         {FAIL, 10},
         {STATE, CLOSED},
         {WINDOW, 10, 0, 10, 0},
         {MODE, CBSHM_MODE_NORMAL},
         {WINDOW, 0, 0, 0, 0},
         {FAIL, 1},
         {STATE, CLOSED},
         {END}}};
    (void)state;
    run(&sc);
}

/* A call admitted before a trip that ends after the next close (another
   worker's call in flight) is counted, in no window, and decides nothing. */
static void test_a_call_in_flight_across_a_trip_never_enters_the_next_window(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 10\n"
        "    open_timeout: 1s\n",
        {{HOLD},
         {FAIL, 10},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {OK, 1},
         {STATE, CLOSED},
         {RECORD, CBSHM_FAILURE},
         {STATE, CLOSED},
         {WINDOW, 0, 0, 0, 0},
         {COUNTS, 11},
         {END}}};
    (void)state;
    run(&sc);
}

/* A consecutive breaker's window figures describe its last window_size
   calls too, not every failure since it was made. */
static void test_a_consecutive_breakers_window_is_its_last_calls(void **state)
{
    static const struct scenario sc = {"    failure_threshold: 100\n    window_size: 10\n",
                                       {{FAIL, 5},
                                        {WINDOW, 5, 0, 5, 0},
                                        {OK, 100},
                                        {WINDOW, 10, 0, 0, 0},
                                        {FAIL, 3},
                                        {WINDOW, 10, 0, 3, 0},
                                        {OK, 7},
                                        {WINDOW, 10, 0, 3, 0},
                                        {OK, 1},
                                        {WINDOW, 10, 0, 2, 0},
                                        {END}}};
    (void)state;
    run(&sc);
}

/*
 * Exact to one bucket, whatever the pattern: after every call of a long
 * random sequence, the window is the exact tally of the calls from some
 * start at most one bucket (window_size / 10 calls) before the last
 * window_size calls, and holds exactly the calls from there.
 */
static void check_window_is_a_true_window(int N, const char *policy)
{
    enum { CALLS = 3000 };
    const int WIDTH = N < 10 ? 1 : N / 10;
    static unsigned char failed[CALLS + 1];
    char seg[64], yaml[256];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    unsigned r = 12345;

    t_clock_install(1000000000000000ull);
    snprintf(yaml, sizeof yaml, "breakers:\n  - name: x\n    window_size: %d\n%s", N, policy);
    t_apply(t_segment_name(seg), yaml);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "x", &b), 0);
    for (int call = 1; call <= CALLS; call++) {
        struct cbshm_snapshot s;
        enum cbshm_outcome o;
        bool found = false;

        r = r * 1103515245u + 12345u;
        /* Bursts and quiet stretches: 1 in 4 calls fail in bursts of up to 8. */
        failed[call] = (r >> 16) % 100 < (call / 200 % 2 ? 40 : 3);
        o = failed[call] ? CBSHM_FAILURE : CBSHM_SUCCESS;
        assert_int_equal(cbshm_execute(b, timed, &o), 0);
        assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
        if (s.state != CLOSED)
            fail_msg("window_size %d: tripped at call %d (the test needs it closed)", N, call);
        for (int start = call - N + 1 - WIDTH; start <= call - N + 1 && !found; start++) {
            uint64_t fails = 0;
            int from = start < 1 ? 1 : start;
            for (int k = from; k <= call; k++)
                fails += failed[k];
            found = s.window_calls == (uint64_t)(call - from + 1) && s.window_failures == fails;
        }
        if (!found)
            fail_msg("after call %d the window holds %llu calls, %llu failures: no true window",
                     call, (unsigned long long)s.window_calls,
                     (unsigned long long)s.window_failures);
    }
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

static void test_a_count_window_is_exact_to_one_bucket(void **state)
{
    (void)state;
    call_ms = 0;
    /* Sizes whose tenth is not whole too: 19 calls are 19 buckets of 1. */
    static const int sizes[] = {100, 10, 13, 15, 19, 37, 58};
    char rate[128];

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snprintf(rate, sizeof rate,
                 "    policy: rate\n    failure_rate: 100\n    minimum_calls: %d\n", sizes[i]);
        check_window_is_a_true_window(sizes[i], rate);
        check_window_is_a_true_window(sizes[i], "    failure_threshold: 1000\n");
    }
}

/* The rate decision (resilience4j's half-open rule): every probe of the
   phase reports, then the failed share decides. */
static void test_the_rate_decision_waits_for_every_probe_then_decides_on_the_share(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 1\n    open_timeout: 1s\n    half_open_max_calls: 4\n"
        "    half_open_decision: rate\n    half_open_failure_rate: 50\n",
        {{FAIL, 1},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {OK, 2},
         {STATE, HALF},
         {FAIL, 1},
         {STATE, HALF}, /* 3 of 4 reported: not yet */
         {FAIL, 1},
         {STATE, OPEN}, /* 2 of 4 failed: 50% is not below 50% */
         {TICK, 0, 1000},
         {OK, 3},
         {STATE, HALF},
         {FAIL, 1},
         {STATE, CLOSED}, /* 1 of 4: 25% */
         {WINDOW, 0, 0, 0, 0},
         {END}}};
    (void)state;
    run(&sc);
}

/* A probe still running at its deadline counts as failed in the share. */
static void test_the_rate_decision_counts_a_probe_past_its_deadline_as_failed(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 1\n    open_timeout: 1s\n    probe_timeout: 2s\n"
        "    half_open_max_calls: 4\n    half_open_decision: rate\n"
        "    half_open_failure_rate: 30\n",
        {{FAIL, 1},
         {TICK, 0, 1000},
         {HOLD},
         {OK, 3},
         {STATE, HALF},
         {TICK, 0, 2000},
         {OK, 1}, /* asking decides: 1 of 4 failed, 25% < 30% */
         {STATE, CLOSED},
         {RECORD, CBSHM_FAILURE}, /* the late probe decides nothing */
         {STATE, CLOSED},
         {END}}};
    (void)state;
    run(&sc);
}

/* With slow-call detection on, a slow probe is a failed probe. */
static void test_a_slow_probe_counts_as_failed(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 1\n    open_timeout: 1s\n    slow_call_duration: 100ms\n",
        {{FAIL, 1},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {OK, 1, 150},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {OK, 1, 50},
         {STATE, CLOSED},
         {END}}};
    (void)state;
    run(&sc);
}

/* A quorum needs the time of each failure; it must not turn successes on
   a count window into time-window bookkeeping. */
static void test_a_count_window_with_a_quorum_stays_a_count_window(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 10\n"
        "    min_failing_workers: 2\n",
        {{FAIL, 4},
         {OK, 100},
         {WINDOW, 10, 0, 0, 0},
         {FAIL, 4},
         {WINDOW, 10, 0, 4, 0},
         {FAIL, 1},
         {WINDOW, 10, 0, 5, 0},
         /* one worker only: the quorum keeps it closed */
         {STATE, CLOSED},
         /* and the window keeps moving with later failures */
         {OK, 100},
         {FAIL, 1},
         {WINDOW, 10, 0, 1, 0},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_ignored_outcomes_are_not_calls_of_the_window(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    window_size: 10\n    minimum_calls: 4\n",
        {{IGN, 50},
         {FAIL, 3},
         {STATE, CLOSED},
         {WINDOW, 3, 0, 3, 0},
         {FAIL, 1},
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_time_window_rolls_over_and_forgets_an_old_bucket(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 50\n    minimum_calls: 4\n    window_type: time\n"
        "    window_duration: 10s\n    window_buckets: 10\n",
        {{FAIL, 3},
         {OK, 3},
         {STATE, CLOSED},
         {WINDOW, 6, 0, 3, 0},
         /* 9 s later the first bucket is still in the window */
         {TICK, 0, 9000},
         {WINDOW, 6, 0, 3, 0},
         /* past 10 s it is gone */
         {TICK, 0, 2000},
         {FAIL, 1},
         {WINDOW, 1, 0, 1, 0},
         {OK, 3},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 5, 0, 2, 0},
         {FAIL, 1},
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_time_window_counts_each_bucket_once(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 90\n    minimum_calls: 1\n    window_type: time\n"
        "    window_duration: 4s\n    window_buckets: 4\n",
        {{OK, 10},
         {TICK, 0, 1000},
         {OK, 10},
         {TICK, 0, 1000},
         {FAIL, 5},
         {TICK, 0, 1000},
         {OK, 5},
         {WINDOW, 30, 0, 5, 0},
         /* one more second: the first bucket leaves the window */
         {TICK, 0, 1000},
         {OK, 1},
         {WINDOW, 21, 0, 5, 0},
         {STATE, CLOSED},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_slow_calls_trip_a_consecutive_breaker_at_the_slow_rate(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 100\n    slow_call_duration: 100ms\n    slow_call_rate: 40\n"
        "    window_size: 10\n    minimum_calls: 4\n",
        {{OK, 2, 5},
         {OK, 1, 99},
         {STATE, CLOSED},
         {WINDOW, 3, 0, 0, 0},
         /* exactly slow_call_duration counts as slow */
         {OK, 1, 100},
         {STATE, CLOSED},
         {WINDOW, 4, 0, 0, 1},
         {OK, 1, 250},
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_slow_failures_count_as_both(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 100\n    slow_call_duration: 1s\n"
        "    slow_call_rate: 100\n    window_size: 4\n    minimum_calls: 4\n",
        {{OK, 1}, {FAIL, 2, 2000}, {WINDOW, 3, 0, 2, 2}, {STATE, CLOSED}, {END}}};
    (void)state;
    run(&sc);
}

static void test_backoff_multiplies_the_open_period_up_to_its_cap(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 1\n    open_timeout: 1s\n    backoff_multiplier: 2\n"
        "    open_timeout_max: 5s\n",
        {{FAIL, 1},
         {PERIOD, 0, 1000},
         {TICK, 0, 1000},
         {FAIL, 1},
         {PERIOD, 0, 2000},
         {TICK, 0, 2000},
         {FAIL, 1},
         {PERIOD, 0, 4000},
         {TICK, 0, 4000},
         {FAIL, 1},
         {PERIOD, 0, 5000},
         {TICK, 0, 5000},
         {FAIL, 1},
         {PERIOD, 0, 5000},
         /* a full close resets it */
         {TICK, 0, 5000},
         {OK, 1},
         {STATE, CLOSED},
         {FAIL, 1},
         {PERIOD, 0, 1000},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_fractional_backoff(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 1\n    open_timeout: 2s\n    backoff_multiplier: 1.5\n",
        {{FAIL, 1},
         {PERIOD, 0, 2000},
         {TICK, 0, 2000},
         {FAIL, 1},
         {PERIOD, 0, 3000},
         {TICK, 0, 3000},
         {FAIL, 1},
         {PERIOD, 0, 4500},
         {END}}};
    (void)state;
    run(&sc);
}

static void test_jitter_keeps_each_open_period_within_its_bounds(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    enum cbshm_outcome fail = CBSHM_FAILURE;
    uint64_t lo = UINT64_MAX, hi = 0;

    (void)state;
    t_clock_install(1000000000000000ull);
    t_apply(t_segment_name(seg), "breakers:\n  - name: x\n    failure_threshold: 1\n"
                                 "    open_timeout: 10s\n    open_timeout_jitter: 20\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "x", &b), 0);
    call_ms = 0;
    for (int i = 0; i < 300; i++) {
        struct cbshm_snapshot s;
        assert_int_equal(cbshm_execute(b, timed, &fail), 0);
        assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
        assert_int_equal(s.state, OPEN);
        uint64_t period = s.open_until_ns - s.last_transition_ns;
        assert_true(period >= 8000000000ull && period <= 12000000000ull);
        lo = period < lo ? period : lo;
        hi = period > hi ? period : hi;
        assert_int_equal(cbshm_reset(shm, "x"), 0);
    }
    /* It does vary, over most of its range. */
    assert_true(lo < 8500000000ull);
    assert_true(hi > 11500000000ull);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

static void test_changing_the_window_shape_starts_an_empty_window(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    enum cbshm_outcome fail = CBSHM_FAILURE;

    (void)state;
    t_clock_install(1000000000000000ull);
    t_apply(t_segment_name(seg), "breakers:\n  - name: x\n    policy: rate\n    window_size: 50\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "x", &b), 0);
    call_ms = 0;
    for (int i = 0; i < 5; i++)
        cbshm_execute(b, timed, &fail);
    assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
    assert_int_equal(s.window_failures, 5);
    /* Another rate, same window: the window stays. */
    t_apply(seg, "breakers:\n  - name: x\n    policy: rate\n    window_size: 50\n"
                 "    failure_rate: 60\n");
    assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
    assert_int_equal(s.window_failures, 5);
    /* Another window: it starts empty; the counters stay. */
    t_apply(seg, "breakers:\n  - name: x\n    policy: rate\n    window_size: 40\n"
                 "    failure_rate: 60\n");
    assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
    assert_int_equal(s.window_calls, 0);
    assert_int_equal(s.failures, 5);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

static void test_two_step_callers_pass_their_own_duration(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    struct cbshm_ticket t;

    (void)state;
    t_clock_install(1000000000000000ull);
    t_apply(t_segment_name(seg), "breakers:\n  - name: x\n    slow_call_duration: 300ms\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "x", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_record_timed(b, &t, CBSHM_SUCCESS, 299000000u), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_record_timed(b, &t, CBSHM_SUCCESS, 300000000u), 0);
    /* Without a duration, the time since cbshm_allow counts. */
    assert_int_equal(cbshm_allow(b, &t), 0);
    t_clock_advance_ms(400);
    assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
    assert_int_equal(s.slow_calls, 2);
    assert_int_equal(s.successes, 3);
    assert_int_equal(cbshm_record_timed(b, &t, CBSHM_SUCCESS, 5), CBSHM_EINVAL);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_count_window_forgets_failures_long_gone),
    cmocka_unit_test(test_closing_starts_an_empty_window),
    cmocka_unit_test(test_returning_to_normal_starts_an_empty_window),
    cmocka_unit_test(test_a_call_in_flight_across_a_trip_never_enters_the_next_window),
    cmocka_unit_test(test_a_consecutive_breakers_window_is_its_last_calls),
    cmocka_unit_test(test_a_count_window_is_exact_to_one_bucket),
    cmocka_unit_test(test_the_rate_decision_waits_for_every_probe_then_decides_on_the_share),
    cmocka_unit_test(test_the_rate_decision_counts_a_probe_past_its_deadline_as_failed),
    cmocka_unit_test(test_a_slow_probe_counts_as_failed),
    cmocka_unit_test(test_rate_policy_trips_exactly_at_the_failure_rate),
    cmocka_unit_test(test_rate_policy_stays_closed_just_below_the_rate),
    cmocka_unit_test(test_rate_policy_waits_for_minimum_calls),
    cmocka_unit_test(test_count_window_wraps_and_forgets_old_failures),
    cmocka_unit_test(test_a_count_window_with_a_quorum_stays_a_count_window),
    cmocka_unit_test(test_ignored_outcomes_are_not_calls_of_the_window),
    cmocka_unit_test(test_time_window_rolls_over_and_forgets_an_old_bucket),
    cmocka_unit_test(test_time_window_counts_each_bucket_once),
    cmocka_unit_test(test_slow_calls_trip_a_consecutive_breaker_at_the_slow_rate),
    cmocka_unit_test(test_slow_failures_count_as_both),
    cmocka_unit_test(test_backoff_multiplies_the_open_period_up_to_its_cap),
    cmocka_unit_test(test_fractional_backoff),
    cmocka_unit_test(test_jitter_keeps_each_open_period_within_its_bounds),
    cmocka_unit_test(test_changing_the_window_shape_starts_an_empty_window),
    cmocka_unit_test(test_two_step_callers_pass_their_own_duration),
};
T_MAIN(tests)
