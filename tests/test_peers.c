/* SPDX-License-Identifier: MIT */
/*
 * Unit: the peers' published circuit-breaker tests as scenario tables -
 * sony/gobreaker, resilience4j, Polly and failsafe-go - each the peer's
 * sequence of successes, failures, slow calls and clock moves, translated
 * to our settings, with the states and counts the peer expects. Where we
 * differ on purpose the table holds our state, marked "Differs from", and
 * README.md ("Where libcbshm differs from its peers") says why.
 */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers" /* the scenario tables */
#include "harness.h"
#include "scenario.h"

#define S CBSHM_SUCCESS
#define F CBSHM_FAILURE
#define I CBSHM_IGNORED

/* ---- sony/gobreaker --------------------------------------------------- */

/* gobreaker_test.go, TestDefaultCircuitBreaker: ReadyToTrip is
   ConsecutiveFailures > 5, Timeout 60s, MaxRequests 1. */
static void test_gobreaker_default_breaker_trips_after_six_consecutive_failures(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 6\n    open_timeout: 60s\n",
        {{FAIL, 5},
         {STATE, CLOSED},
         {WINDOW, 5, 0, 5, 0}, /* Counts{5, 0, 5, 0, 5} */
         {RUN, 5},
         {OK, 1},
         {STATE, CLOSED},
         {WINDOW, 6, 0, 5, 0}, /* Counts{6, 1, 5, 1, 0} */
         {RUN, 0},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 7, 0, 6, 0}, /* Counts{7, 1, 6, 0, 1} */
         {RUN, 1},
         {FAIL, 5}, /* 6 consecutive failures */
         {STATE, OPEN},
         {RUN, 0},
         /* Differs from gobreaker: its Counts are cleared at every state
            change; our window keeps the calls that tripped it until the
            breaker closes. */
         {WINDOW, 12, 0, 11, 0},
         {REJECT, 2}, /* succeed and fail are both refused */
         {REJECTIONS, 2},
         {TICK, 0, 59000},
         {STATE, OPEN},
         {TICK, 0, 1000},
         /* Differs from gobreaker: State() turns half-open once Timeout
            has passed; here the first call after it does. */
         {STATE, OPEN},
         {FAIL, 1}, /* the probe fails: open again */
         {STATE, OPEN},
         {TICK, 0, 60000},
         {OK, 1}, /* the probe succeeds: closed, with empty counts */
         {STATE, CLOSED},
         {WINDOW, 0, 0, 0, 0},
         {RUN, 0},
         {END}}};
    (void)state;
    run(&sc);
}

/* gobreaker_test.go, TestCustomCircuitBreaker: MaxRequests 3, Interval
   30s, Timeout 90s, ReadyToTrip Requests >= 3 && failure ratio >= 0.6.
   The Interval clears the counts every 30s: a time window of one 30s
   bucket. */
static void test_gobreaker_custom_breaker_trips_at_sixty_percent_within_its_interval(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 60\n    minimum_calls: 3\n    window_type: time\n"
        "    window_duration: 30s\n    window_buckets: 1\n    open_timeout: 90s\n"
        "    half_open_max_calls: 3\n    success_threshold: 3\n",
        {/* Differs from gobreaker: its Interval starts when the breaker is
            made; our buckets start at multiples of their width on the
            clock. The fake clock starts 20s short of one. */
         {TICK, 0, 20000},
         {OK, 1},
         {FAIL, 1},
         {OK, 1},
         {FAIL, 1},
         {OK, 1},
         {FAIL, 1},
         {OK, 1},
         {FAIL, 1},
         {OK, 1},
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 10, 0, 5, 0}, /* Counts{10, 5, 5, 0, 1} */
         {TICK, 0, 29000},
         {OK, 1},
         {STATE, CLOSED},
         {WINDOW, 11, 0, 5, 0}, /* Counts{11, 6, 5, 1, 0} */
         {TICK, 0, 1000},       /* over Interval */
         {FAIL, 1},
         {STATE, CLOSED},
         {WINDOW, 1, 0, 1, 0}, /* Counts{1, 0, 1, 0, 1} */
         {OK, 1},
         {FAIL, 1}, /* failure ratio 2/3 >= 0.6 */
         {STATE, OPEN},
         {TICK, 0, 90000},
         {OK, 2},
         {STATE, HALF},
         {ADMIT, 1},  /* the third probe, in flight */
         {REJECT, 1}, /* over MaxRequests */
         {SETTLE, S}, /* 3 consecutive successes */
         {STATE, CLOSED},
         {WINDOW, 0, 0, 0, 0},
         {END}}};
    (void)state;
    run(&sc);
}

/* gobreaker_test.go, TestGeneration: a call in flight when the Interval
   ends belongs to the old generation and changes no count. */
static void test_gobreaker_a_call_in_flight_across_the_interval_counts_where_it_ends(void **state)
{
    static const struct scenario sc = {
        "    policy: rate\n    failure_rate: 60\n    minimum_calls: 3\n    window_type: time\n"
        "    window_duration: 30s\n    window_buckets: 1\n",
        {{TICK, 0, 20000}, /* to a bucket start, as above */
         {TICK, 0, 29000},
         {OK, 1},
         {ADMIT, 1},
         /* Differs from gobreaker: its Requests count a call when it is
            admitted (Counts{2, 1, 0, 1, 0}); our window, when it ends. */
         {WINDOW, 1, 0, 0, 0},
         {TICK, 0, 1000}, /* over Interval */
         {STATE, CLOSED},
         {WINDOW, 0, 0, 0, 0},
         {SETTLE, S},
         /* Differs from gobreaker: an Interval is a generation there, and
            the late success counts nowhere; our time buckets are no state
            period, and a call counts in the bucket it ends in. */
         {WINDOW, 1, 0, 0, 0},
         {SUCCESSES, 2},
         {END}}};
    (void)state;
    run(&sc);
}

/* v2/twostep_gobreaker_test.go, TestTwoStepCircuitBreaker: MaxRequests 2,
   an excluded outcome gives its half-open permit back. */
static void test_gobreaker_two_step_half_open_takes_back_an_excluded_probes_permit(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 6\n    open_timeout: 60s\n    half_open_max_calls: 2\n"
        "    success_threshold: 2\n",
        {{FAIL, 5},
         {STATE, CLOSED},
         {RUN, 5},
         {OK, 1},
         {STATE, CLOSED},
         {RUN, 0},
         {FAIL, 1},
         {RUN, 1},
         {FAIL, 5}, /* 6 consecutive failures */
         {STATE, OPEN},
         {REJECT, 3}, /* succeed, fail and exclude */
         {TICK, 0, 59999},
         {STATE, OPEN},
         {TICK, 0, 1}, /* over timeout */
         {ADMIT, 2},   /* two excluded calls in flight */
         {STATE, HALF},
         {REJECT, 2}, /* too many requests */
         {SETTLE, I},
         {SETTLE, I},
         {OK, 1}, /* admitted again */
         {STATE, HALF},
         {FAIL, 1},
         {STATE, OPEN},
         {TICK, 0, 60000},
         {OK, 2},
         {STATE, CLOSED},
         {WINDOW, 0, 0, 0, 0},
         {END}}};
    (void)state;
    run(&sc);
}

/* ---- resilience4j ----------------------------------------------------- */

/* CircuitBreakerStateMachineTest's setUp: failureRateThreshold 50,
   permittedNumberOfCallsInHalfOpenState 4, slowCallDurationThreshold 4s,
   slowCallRateThreshold 50, slidingWindow(5, 5, TIME_BASED),
   waitDurationInOpenState 5s. */
#define R4J                                                                                 \
    "    policy: rate\n    failure_rate: 50\n    minimum_calls: 5\n    window_type: time\n" \
    "    window_duration: 5s\n    window_buckets: 5\n    slow_call_duration: 4s\n"          \
    "    slow_call_rate: 50\n    open_timeout: 5s\n    half_open_max_calls: 4\n"            \
    "    half_open_decision: rate\n    half_open_failure_rate: 50\n"

/* CircuitBreakerStateMachineTest, shouldOpenAfterFailureRateThresholdExceeded. */
static void test_resilience4j_opens_at_the_failure_rate_on_the_next_failure(void **state)
{
    static const struct scenario sc = {R4J,
                                       {{FAIL, 3},
                                        {STATE, CLOSED},
                                        {OK, 1},
                                        {STATE, CLOSED},
                                        {WINDOW, 4, 0, 3, 0},
                                        {OK, 1},
                                        /* Differs from resilience4j: it evaluates
                                           the rates on every call and opens on this
                                           success (3 of 5 failed); a success never
                                           trips a rate breaker here. */
                                        {STATE, CLOSED},
                                        {WINDOW, 5, 0, 3, 0},
                                        {FAIL, 1}, /* 4 of 6: the failure trips it */
                                        {STATE, OPEN},
                                        {REJECT, 1},
                                        {REJECTIONS, 1},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* CircuitBreakerStateMachineTest, shouldOpenAfterSlowCallRateThresholdExceeded:
   each call is handed its duration, the clock stands still. */
static void test_resilience4j_opens_at_the_slow_call_rate(void **state)
{
    static const struct scenario sc = {R4J,
                                       {{TIMED, F, 5000}, /* slow */
                                        {STATE, CLOSED},
                                        {TIMED, S, 5000}, /* slow */
                                        {STATE, CLOSED},
                                        {TIMED, F, 100},
                                        {STATE, CLOSED},
                                        {TIMED, S, 100},
                                        {STATE, CLOSED},
                                        {WINDOW, 4, 0, 2, 2},
                                        {TIMED, S, 5000}, /* slow: 3 of 5 */
                                        {STATE, OPEN},
                                        {WINDOW, 5, 0, 2, 3},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* CircuitBreakerStateMachineTest, shouldTransitionToHalfOpenAfterWaitDuration
   and shouldOnlyPermitFourCallsInHalfOpenState (which opens the breaker by
   hand; five failures do it here). */
static void test_resilience4j_half_opens_after_the_wait_and_permits_four_calls(void **state)
{
    static const struct scenario sc = {
        R4J, {{FAIL, 5},     {STATE, OPEN},   {REJECT, 1},     {TICK, 0, 3000},
              {STATE, OPEN}, /* 5s not elapsed */
              {REJECT, 1},   {REJECTIONS, 2}, {TICK, 0, 3000}, {ADMIT, 4},
              {STATE, HALF}, {REJECT, 2},     {SETTLE, F},     {SETTLE, F},
              {SETTLE, F},   {SETTLE, F},     {STATE, OPEN},   {TICK, 0, 5000},
              {ADMIT, 4},    {STATE, HALF},   {REJECT, 2},     {END}}};
    (void)state;
    run(&sc);
}

/* CircuitBreakerStateMachineTest, shouldTransitionBackToOpenStateWhenSlowCallRateIsAboveThreshold. */
static void test_resilience4j_half_open_reopens_when_most_probes_are_slow(void **state)
{
    static const struct scenario sc = {R4J,
                                       {{FAIL, 5},
                                        {TICK, 0, 5000},
                                        {TIMED, S, 5000},
                                        {STATE, HALF},
                                        {TIMED, S, 5000},
                                        {TIMED, S, 5000},
                                        {STATE, HALF},
                                        /* Differs from resilience4j: it compares
                                           the probes' slow rate (75%) with
                                           slowCallRateThreshold; here a slow probe
                                           is a failed one, 3 of 4 against
                                           half_open_failure_rate. */
                                        {TIMED, S, 1000},
                                        {STATE, OPEN},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* CircuitBreakerStateMachineTest, shouldReleasePermissionWhenExceptionIgnored
   and shouldTransitionBackToClosedStateWhenFailureIsBelowThreshold: an
   ignored probe gives its permit back; 1 failure in 4 closes, with empty
   metrics. */
static void test_resilience4j_an_ignored_probe_gives_its_permit_back(void **state)
{
    static const struct scenario sc = {R4J,
                                       {{FAIL, 5},
                                        {TICK, 0, 5000},
                                        {OK, 3},
                                        {STATE, HALF},
                                        {IGN, 1},
                                        {STATE, HALF},
                                        {FAIL, 1}, /* the fourth probe: 1 of 4 failed */
                                        {STATE, CLOSED},
                                        {WINDOW, 0, 0, 0, 0},
                                        {OK, 1},
                                        {WINDOW, 1, 0, 0, 0},
                                        {END}}};
    (void)state;
    run(&sc);
}

/*
 * A success never trips a rate breaker on its failure rate (see
 * test_resilience4j_opens_at_the_failure_rate_on_the_next_failure); a slow
 * success may trip it only on the slow-call rate. Variant of resilience4j's
 * shouldOpenAfterFailureRateThresholdExceeded with the fifth call slow:
 * its slow rate (1 of 5 = 20%) is far below slow_call_rate, so it stays
 * closed. (It once tripped on the failure rate: record_slow() checked the
 * failure rate for any slow call.)
 */
static void test_resilience4j_a_slow_success_does_not_trip_on_the_failure_rate(void **state)
{
    static const struct scenario sc = {R4J,
                                       {{FAIL, 3},
                                        {OK, 1},
                                        {STATE, CLOSED},
                                        {TIMED, S, 5000}, /* slow: 1 of 5 */
                                        {WINDOW, 5, 0, 3, 1},
                                        {STATE, CLOSED}, /* today: OPEN */
                                        {FAIL, 1},
                                        {STATE, OPEN},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* FixedSizeSlidingWindowMetricsTest, testSlidingWindowMetricsWithSlowCalls:
   a window of 2 calls, slow ones leaving it. The peer tests the window
   alone; forced_closed keeps ours from tripping while it counts. */
static void test_resilience4j_count_window_lets_slow_calls_leave(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 100\n    window_size: 2\n    slow_call_duration: 100ms\n"
        "    slow_call_rate: 100\n    minimum_calls: 2\n",
        {{MODE, CBSHM_MODE_FORCED_CLOSED},
         /* Differs from resilience4j: onError/onSuccess call a call slow
            only when longer than slowCallDurationThreshold (>); a call of
            exactly slow_call_duration is slow here. */
         {TIMED, F, 100}, /* SLOW_ERROR */
         {WINDOW, 1, 0, 1, 1},
         {TIMED, S, 100}, /* SLOW_SUCCESS */
         {WINDOW, 2, 0, 1, 2},
         {TIMED, S, 50},
         {WINDOW, 2, 0, 0, 1},
         {TIMED, S, 50},
         {WINDOW, 2, 0, 0, 0},
         {TIMED, S, 50},
         {WINDOW, 2, 0, 0, 0},
         {END}}};
    (void)state;
    run(&sc);
}

/* SlidingTimeWindowMetricsTest, testSlidingTimeWindowMetrics: a window of
   5 one-second buckets. */
static void test_resilience4j_time_window_drops_each_second_as_it_leaves(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 100\n    window_type: time\n    window_duration: 5s\n"
        "    window_buckets: 5\n",
        {{FAIL, 1}, {WINDOW, 1, 0, 1, 0}, {TICK, 0, 100},
         {OK, 1},   {WINDOW, 2, 0, 1, 0}, {TICK, 0, 100},
         {OK, 1},   {WINDOW, 3, 0, 1, 0}, {TICK, 0, 1000},
         {OK, 1},   {WINDOW, 4, 0, 1, 0}, {TICK, 0, 1000},
         {OK, 1},   {WINDOW, 5, 0, 1, 0}, {TICK, 0, 1000},
         {FAIL, 1}, {WINDOW, 6, 0, 2, 0}, {TICK, 0, 1000},
         {OK, 1},   {WINDOW, 7, 0, 2, 0}, {TICK, 0, 1000},
         {OK, 1},   {WINDOW, 5, 0, 1, 0}, {TICK, 0, 1000},
         {OK, 1},   {WINDOW, 5, 0, 1, 0}, {TICK, 0, 5000},
         {OK, 1},   {WINDOW, 1, 0, 0, 0}, {END}}};
    (void)state;
    run(&sc);
}

/* ---- Polly ------------------------------------------------------------ */

/* CircuitBreakerSpecs, Should_halfopen_circuit_after_the_specified_duration_has_passed
   and Should_open_circuit_again_after_the_specified_duration_has_passed_if_the_next_call_raises_an_exception:
   CircuitBreaker(2, 1 minute). */
static void test_polly_breaks_after_two_exceptions_and_breaks_again_on_a_failed_trial(void **state)
{
    static const struct scenario sc = {"    failure_threshold: 2\n    open_timeout: 1m\n",
                                       {{FAIL, 1},
                                        {STATE, CLOSED},
                                        {FAIL, 1},
                                        {STATE, OPEN},
                                        {REJECT, 1},
                                        {STATE, OPEN},
                                        {TICK, 0, 60000},
                                        /* Differs from Polly: reading CircuitState
                                           turns it half-open once the break has
                                           passed; here the next call does. */
                                        {STATE, OPEN},
                                        {FAIL, 1},
                                        {STATE, OPEN},
                                        {REJECT, 1},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* CircuitBreakerSpecs, Should_reset_circuit_after_the_specified_duration_has_passed_if_the_next_call_does_not_raise_an_exception. */
static void test_polly_a_good_trial_resets_the_count_of_exceptions(void **state)
{
    static const struct scenario sc = {"    failure_threshold: 2\n    open_timeout: 1m\n",
                                       {{FAIL, 2},
                                        {STATE, OPEN},
                                        {REJECT, 1},
                                        {TICK, 0, 60000},
                                        {OK, 1},
                                        {STATE, CLOSED},
                                        {FAIL, 1},
                                        {STATE, CLOSED},
                                        {FAIL, 1},
                                        {STATE, OPEN},
                                        {REJECT, 1},
                                        {STATE, OPEN},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* CircuitBreakerSpecs, Should_allow_single_execution_per_break_duration_in_halfopen_state__test_execution_permit_directly:
   CircuitBreaker(1, 1 minute); the first trial never ends. */
static void test_polly_half_open_admits_no_second_trial_while_the_first_runs(void **state)
{
    static const struct scenario sc = {"    failure_threshold: 1\n    open_timeout: 1m\n",
                                       {{FAIL, 1},
                                        {STATE, OPEN},
                                        {TICK, 0, 60000},
                                        {ADMIT, 1}, /* the first trial */
                                        {STATE, HALF},
                                        {REJECT, 1}, /* a second one, same break */
                                        {STATE, HALF},
                                        {TICK, 0, 60000},
                                        /* Differs from Polly: it permits another
                                           trial each break duration, the first
                                           still running; here the first probe
                                           holds its lease until probe_timeout,
                                           and running past it fails the phase:
                                           never more than half_open_max_calls. */
                                        {REJECT, 1},
                                        {STATE, OPEN},
                                        {SETTLE, S}, /* the late trial decides nothing */
                                        {STATE, OPEN},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* AdvancedCircuitBreakerSpecs: AdvancedCircuitBreaker(failureThreshold
   0.5, samplingDuration 10s, minimumThroughput 4, durationOfBreak 30s),
   sampled in 10 windows of 1s. */
#define POLLY_ADVANCED                                                                      \
    "    policy: rate\n    failure_rate: 50\n    minimum_calls: 4\n    window_type: time\n" \
    "    window_duration: 10s\n    window_buckets: 10\n    open_timeout: 30s\n"

/* AdvancedCircuitBreakerSpecs, Should_not_open_circuit_if_failure_threshold_exceeded_but_throughput_threshold_not_met_before_timeslice_expires_even_if_error_occurring_just_at_the_end_of_the_duration. */
static void
test_polly_advanced_forgets_calls_exactly_at_the_end_of_the_sampling_duration(void **state)
{
    static const struct scenario sc = {POLLY_ADVANCED,
                                       {{OK, 2},
                                        {STATE, CLOSED},
                                        {TICK, 0, 9999}, /* one tick short of 10s */
                                        {FAIL, 1},
                                        {STATE, CLOSED},
                                        {TICK, 0, 1}, /* 10s: the first two calls leave */
                                        {FAIL, 1},
                                        {STATE, CLOSED},
                                        {WINDOW, 2, 0, 2, 0},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* AdvancedCircuitBreakerSpecs, Should_open_circuit_with_the_last_raised_exception_if_failure_threshold_equalled_and_throughput_threshold_equalled_even_if_only_just_within_timeslice. */
static void
test_polly_advanced_opens_when_the_fourth_failure_is_just_within_the_duration(void **state)
{
    static const struct scenario sc = {POLLY_ADVANCED,
                                       {{FAIL, 3},
                                        {STATE, CLOSED},
                                        {TICK, 0, 9999},
                                        {FAIL, 1},
                                        {STATE, OPEN},
                                        {REJECT, 1},
                                        {STATE, OPEN},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* ---- failsafe-go ------------------------------------------------------ */

/* closedstate_test.go, TestClosedStateFailureWithFailureThreshold:
   WithFailureThreshold(3). */
static void test_failsafe_a_success_ends_the_run_of_failures(void **state)
{
    static const struct scenario sc = {"    failure_threshold: 3\n",
                                       {{FAIL, 1},
                                        {OK, 1},
                                        {FAIL, 2},
                                        {STATE, CLOSED},
                                        {RUN, 2},
                                        {FAIL, 1},
                                        {STATE, OPEN},
                                        {END}}};
    (void)state;
    run(&sc);
}

/* closedstate_test.go, TestClosedStateFailureWithFailureRatio:
   WithFailureThresholdRatio(2, 3) - 2 failures in the last 3 calls. */
static void test_failsafe_two_failures_in_three_calls_open_the_breaker(void **state)
{
    static const struct scenario sc = {
        /* Differs from failsafe-go: a ratio there, a whole percent here;
           2 of 3 is 66% (67% would need 3 of 3). */
        "    policy: rate\n    failure_rate: 66\n    minimum_calls: 2\n    window_size: 3\n",
        {{FAIL, 1}, {OK, 1}, {STATE, CLOSED}, {FAIL, 1}, {STATE, OPEN}, {END}}};
    (void)state;
    run(&sc);
}

/* halfopenstate_test.go, TestHalfOpenSuccessWithSuccessRatio and
   TestHalfOpenFailureWithSuccessRatio: WithSuccessThresholdRatio(2, 3),
   three probes decide. The peer sets the state by hand; a failure trips
   this breaker. */
static void test_failsafe_half_open_success_ratio_decides_on_three_probes(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 1\n    open_timeout: 1s\n    half_open_max_calls: 3\n"
        "    half_open_decision: rate\n    half_open_failure_rate: 50\n",
        {{FAIL, 1},
         {TICK, 0, 1000},
         {FAIL, 1},
         {OK, 1},
         {STATE, HALF},
         {OK, 1}, /* 2 of 3 succeeded */
         {STATE, CLOSED},
         {FAIL, 1},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {FAIL, 1},
         {OK, 1},
         {STATE, HALF},
         {FAIL, 1}, /* 2 of 3 failed */
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

/* halfopenstate_test.go, TestHalfOpenSuccessWithFailureThreshold and
   TestHalfOpenFailureWithFailureThreshold: WithFailureThreshold(3) - the
   half-open capacity is 3, and 3 failures reopen. */
static void test_failsafe_half_open_failure_threshold_waits_for_every_probe_here(void **state)
{
    static const struct scenario sc = {
        "    failure_threshold: 3\n    open_timeout: 1s\n    half_open_max_calls: 3\n"
        "    half_open_decision: rate\n    half_open_failure_rate: 100\n",
        {{FAIL, 3},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {FAIL, 1},
         {OK, 1},
         /* Differs from failsafe-go: it closes here, as no third failure
            can follow (successes > capacity - threshold); the rate decision
            waits for every probe of the phase. */
         {STATE, HALF},
         {OK, 1},
         {STATE, CLOSED},
         {FAIL, 3},
         {STATE, OPEN},
         {TICK, 0, 1000},
         {FAIL, 2},
         {STATE, HALF},
         {FAIL, 1},
         {STATE, OPEN},
         {END}}};
    (void)state;
    run(&sc);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_gobreaker_default_breaker_trips_after_six_consecutive_failures),
    cmocka_unit_test(test_gobreaker_custom_breaker_trips_at_sixty_percent_within_its_interval),
    cmocka_unit_test(test_gobreaker_a_call_in_flight_across_the_interval_counts_where_it_ends),
    cmocka_unit_test(test_gobreaker_two_step_half_open_takes_back_an_excluded_probes_permit),
    cmocka_unit_test(test_resilience4j_opens_at_the_failure_rate_on_the_next_failure),
    cmocka_unit_test(test_resilience4j_a_slow_success_does_not_trip_on_the_failure_rate),
    cmocka_unit_test(test_resilience4j_opens_at_the_slow_call_rate),
    cmocka_unit_test(test_resilience4j_half_opens_after_the_wait_and_permits_four_calls),
    cmocka_unit_test(test_resilience4j_half_open_reopens_when_most_probes_are_slow),
    cmocka_unit_test(test_resilience4j_an_ignored_probe_gives_its_permit_back),
    cmocka_unit_test(test_resilience4j_count_window_lets_slow_calls_leave),
    cmocka_unit_test(test_resilience4j_time_window_drops_each_second_as_it_leaves),
    cmocka_unit_test(test_polly_breaks_after_two_exceptions_and_breaks_again_on_a_failed_trial),
    cmocka_unit_test(test_polly_a_good_trial_resets_the_count_of_exceptions),
    cmocka_unit_test(test_polly_half_open_admits_no_second_trial_while_the_first_runs),
    cmocka_unit_test(test_polly_advanced_forgets_calls_exactly_at_the_end_of_the_sampling_duration),
    cmocka_unit_test(test_polly_advanced_opens_when_the_fourth_failure_is_just_within_the_duration),
    cmocka_unit_test(test_failsafe_a_success_ends_the_run_of_failures),
    cmocka_unit_test(test_failsafe_two_failures_in_three_calls_open_the_breaker),
    cmocka_unit_test(test_failsafe_half_open_success_ratio_decides_on_three_probes),
    cmocka_unit_test(test_failsafe_half_open_failure_threshold_waits_for_every_probe_here),
};
T_MAIN(tests)
