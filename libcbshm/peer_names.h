/* SPDX-License-Identifier: MIT */
/*
 * The one table of other circuit breakers' names for our settings. The
 * loader names the row when a YAML key is one of theirs ("unknown key
 * 'fail_max' (pybreaker's name): did you mean 'failure_threshold'?"), and
 * README.md's "Coming from another breaker" table lists every row and no
 * other (tests/test_config.c holds the two together).
 *
 * X(peer, theirs, ours, notes)
 *   theirs: as the peer spells it; the loader matches it without regard
 *           to case, '_' or '-', so failure-rate-threshold (Spring's
 *           relaxed form of resilience4j's) is found as well
 *   ours:   a key of the settings table
 *   notes:  what differs, for the README; "" where nothing does
 */
#ifndef CBSHM_PEER_NAMES_H
#define CBSHM_PEER_NAMES_H

#define CBSHM_PEER_NAMES(X)                                                                       \
    X("pybreaker", "fail_max", "failure_threshold", "failures in a row, as here")                 \
    X("pybreaker", "reset_timeout", "open_timeout", "seconds there; a duration here (`60s`)")     \
    X("pybreaker", "success_threshold", "success_threshold", "the same name")                     \
    X("resilience4j", "failureRateThreshold", "failure_rate", "with `policy: rate`")              \
    X("resilience4j", "slowCallRateThreshold", "slow_call_rate", "")                              \
    X("resilience4j", "slowCallDurationThreshold", "slow_call_duration", "")                      \
    X("resilience4j", "waitDurationInOpenState", "open_timeout", "")                              \
    X("resilience4j", "permittedNumberOfCallsInHalfOpenState", "half_open_max_calls",             \
      "resilience4j judges the phase by its failure rate: `half_open_decision: rate` here")       \
    X("resilience4j", "minimumNumberOfCalls", "minimum_calls", "")                                \
    X("resilience4j", "slidingWindowSize", "window_size",                                         \
      "a count window; for TIME_BASED (seconds) use `window_duration`")                           \
    X("resilience4j", "slidingWindowType", "window_type",                                         \
      "COUNT_BASED is `count`, TIME_BASED "                                                       \
      "is `time`")                                                                                \
    X("resilience4j", "maxWaitDurationInHalfOpenState", "probe_timeout",                          \
      "there the longest a half-open phase lasts; here the longest a probe runs before it fails " \
      "the phase")                                                                                \
    X("gobreaker", "MaxRequests", "half_open_max_calls", "")                                      \
    X("gobreaker", "Interval", "window_duration",                                                 \
      "gobreaker clears its counts every Interval; a time window (`window_type: time`) slides")   \
    X("gobreaker", "Timeout", "open_timeout", "")                                                 \
    X("gobreaker", "ReadyToTrip", "failure_threshold",                                            \
      "a function there; its default, more than 5 failures in a row, is `failure_threshold: 6`")  \
    X("Semian", "error_threshold", "failure_threshold",                                           \
      "errors within error_threshold_timeout there; failures in a row here")                      \
    X("Semian", "error_threshold_timeout", "window_duration",                                     \
      "the period error_threshold counts over; here a time window's, with `policy: rate`")        \
    X("Semian", "error_timeout", "open_timeout", "seconds there; a duration here (`10s`)")        \
    X("Semian", "success_threshold", "success_threshold", "the same name")                        \
    X("Semian", "half_open_resource_timeout", "probe_timeout",                                    \
      "there the resource's own timeout while half-open; here the longest a probe runs")          \
    X("Polly", "FailureRatio", "failure_rate", "a ratio there (0.1); a percentage here (10)")     \
    X("Polly", "MinimumThroughput", "minimum_calls", "")                                          \
    X("Polly", "SamplingDuration", "window_duration", "with `window_type: time`")                 \
    X("Polly", "BreakDuration", "open_timeout", "")                                               \
    X("failsafe-go", "WithFailureThreshold", "failure_threshold", "")                             \
    X("failsafe-go", "WithFailureRateThreshold", "failure_rate",                                  \
      "its other two arguments are `minimum_calls` and `window_duration`")                        \
    X("failsafe-go", "WithFailureThresholdRatio", "failure_rate",                                 \
      "2 failures in 3 calls is `failure_rate: 66`, `window_size: 3`, `minimum_calls: 2`")        \
    X("failsafe-go", "WithDelay", "open_timeout", "")                                             \
    X("failsafe-go", "WithSuccessThreshold", "success_threshold", "")

#endif
