/* SPDX-License-Identifier: MIT */
/*
 * The one table of a breaker's settings. A row gives a field of struct
 * cbshm_settings everything the rest of the library and cbctl need: its
 * YAML and JSON keys, type, range, default, the policies and window types
 * it applies to, its place in the slot, and its help line. Adding a
 * setting is a row here, a field in cbshm.h (from `reserved`), a field in
 * the slot (layout.h), and its semantics; the loader, the validator,
 * equality, apply's diff and every cbctl output follow the row.
 *
 * X(key, json_key, field, type, min, max, def, policies, windows, decisions,
 *   choices, slot, scale, flags, help)
 *   slot, scale: the slot member holding the value, times scale
 *   flags: SET_RESHAPES - a change empties the window
 */
#ifndef CBSHM_SETTINGS_TABLE_H
#define CBSHM_SETTINGS_TABLE_H

#define SET_MS        1000000ull
#define SET_DAY_MS    (24ull * 3600 * 1000)
#define SET_COUNTS    1000000u
#define SET_ANY       (CBSHM_FOR_CONSECUTIVE | CBSHM_FOR_RATE)
#define SET_WINDOWS   (CBSHM_FOR_COUNT_WINDOW | CBSHM_FOR_TIME_WINDOW)
#define SET_DECISIONS (CBSHM_FOR_FIRST_FAILURE | CBSHM_FOR_RATE_DECISION)
#define SET_RESHAPES  0x1u
/* The most hosts a fleet_open_hosts count may name; a share is
   CBSHM_FLEET_SHARE | 1..100. */
#define SET_HOSTS_MAX 10000u

#define CBSHM_SETTINGS_TABLE(X)                                                                   \
    X(policy, policy, policy, CHOICE, 0, 1, CBSHM_POLICY_CONSECUTIVE, SET_ANY, SET_WINDOWS,       \
      SET_DECISIONS, policy_words, cfg.policy, 1, 0,                                              \
      "what trips a closed breaker: failures in a row, or a failure rate")                        \
    X(failure_threshold, failure_threshold, failure_threshold, COUNT, 1, SET_COUNTS, 5,           \
      CBSHM_FOR_CONSECUTIVE, SET_WINDOWS, SET_DECISIONS, NULL, failure_threshold, 1, 0,           \
      "failures in a row, host-wide, that trip the breaker")                                      \
    X(failure_rate, failure_rate, failure_rate, PERCENT, 1, 100, 50, CBSHM_FOR_RATE, SET_WINDOWS, \
      SET_DECISIONS, NULL, cfg.failure_rate, 1, 0,                                                \
      "percent of the window's calls that failed, at which it trips")                             \
    X(minimum_calls, minimum_calls, minimum_calls, COUNT, 1, SET_COUNTS, 10,                      \
      CBSHM_FOR_RATE | CBSHM_FOR_SLOW_CALLS, SET_WINDOWS, SET_DECISIONS, NULL, cfg.minimum_calls, \
      1, 0, "calls the window must hold before a rate can trip it")                               \
    X(success_threshold, success_threshold, success_threshold, COUNT, 1, CBSHM_PROBES_MAX, 1,     \
      SET_ANY, SET_WINDOWS, CBSHM_FOR_FIRST_FAILURE, NULL, cfg.success_threshold, 1, 0,           \
      "successful probes that close the breaker")                                                 \
    X(half_open_max_calls, half_open_max_calls, half_open_max_calls, COUNT, 1, CBSHM_PROBES_MAX,  \
      1, SET_ANY, SET_WINDOWS, SET_DECISIONS, NULL, cfg.half_open_max_calls, 1, 0,                \
      "probe calls one half-open phase admits, host-wide")                                        \
    X(half_open_decision, half_open_decision, half_open_decision, CHOICE, 0, 1,                   \
      CBSHM_HALF_OPEN_FIRST_FAILURE, SET_ANY, SET_WINDOWS, SET_DECISIONS, decision_words,         \
      cfg.half_open_decision, 1, 0,                                                               \
      "how a half-open phase decides: at its first failed probe, or on the failed share of all "  \
      "its probes")                                                                               \
    X(half_open_failure_rate, half_open_failure_rate, half_open_failure_rate, PERCENT, 0, 100, 0, \
      SET_ANY, SET_WINDOWS, CBSHM_FOR_RATE_DECISION, NULL, cfg.half_open_failure_rate, 1, 0,      \
      "rate decision: close when fewer than this percent of the phase's probes failed")           \
    X(open_timeout, open_timeout_ms, open_timeout_ms, DURATION, 1, SET_DAY_MS, 30000, SET_ANY,    \
      SET_WINDOWS, SET_DECISIONS, NULL, cfg.open_timeout_ns, SET_MS, 0,                           \
      "how long the breaker stays open before it lets probes through")                            \
    X(probe_timeout, probe_timeout_ms, probe_timeout_ms, DURATION, 1, SET_DAY_MS, 10000, SET_ANY, \
      SET_WINDOWS, SET_DECISIONS, NULL, cfg.probe_timeout_ns, SET_MS, 0,                          \
      "a probe still running this long fails its half-open phase")                                \
    X(window_type, window_type, window_type, CHOICE, 0, 1, CBSHM_WINDOW_COUNT, SET_ANY,           \
      SET_WINDOWS, SET_DECISIONS, window_words, cfg.window_type, 1, SET_RESHAPES,                 \
      "what the window of recent calls holds: the last calls, or the last period")                \
    X(window_size, window_size, window_size, COUNT, 1, SET_COUNTS, 100, SET_ANY,                  \
      CBSHM_FOR_COUNT_WINDOW, SET_DECISIONS, NULL, cfg.window_size, 1, SET_RESHAPES,              \
      "calls a count window holds")                                                               \
    X(window_duration, window_duration_ms, window_duration_ms, DURATION, 1, SET_DAY_MS, 60000,    \
      SET_ANY, CBSHM_FOR_TIME_WINDOW, SET_DECISIONS, NULL, cfg.window_duration_ns, SET_MS,        \
      SET_RESHAPES, "the period a time window holds")                                             \
    X(window_buckets, window_buckets, window_buckets, COUNT, 1, CBSHM_WINDOW_BUCKETS_MAX, 10,     \
      SET_ANY, CBSHM_FOR_TIME_WINDOW, SET_DECISIONS, NULL, cfg.window_buckets, 1, SET_RESHAPES,   \
      "buckets a time window is kept in (it moves a bucket at a time)")                           \
    X(slow_call_duration, slow_call_duration_ms, slow_call_duration_ms, DURATION, 0, SET_DAY_MS,  \
      0, SET_ANY, SET_WINDOWS, SET_DECISIONS, NULL, cfg.slow_call_ns_cfg, SET_MS, 0,              \
      "a call at least this long is slow; 0: no slow-call detection")                             \
    X(slow_call_rate, slow_call_rate, slow_call_rate, PERCENT, 1, 100, 100, CBSHM_FOR_SLOW_CALLS, \
      SET_WINDOWS, SET_DECISIONS, NULL, cfg.slow_call_rate, 1, 0,                                 \
      "percent of the window's calls that were slow, at which it trips")                          \
    X(backoff_multiplier, backoff_multiplier, backoff_multiplier, MULTIPLIER, 100, 10000, 100,    \
      SET_ANY, SET_WINDOWS, SET_DECISIONS, NULL, cfg.backoff_multiplier, 1, 0,                    \
      "each failed probe multiplies the open period by this")                                     \
    X(open_timeout_max, open_timeout_max_ms, open_timeout_max_ms, DURATION, 1, SET_DAY_MS,        \
      SET_DAY_MS, SET_ANY, SET_WINDOWS, SET_DECISIONS, NULL, cfg.open_timeout_max_ns, SET_MS, 0,  \
      "the open period never grows past this")                                                    \
    X(open_timeout_jitter, open_timeout_jitter, open_timeout_jitter, PERCENT, 0, 100, 0, SET_ANY, \
      SET_WINDOWS, SET_DECISIONS, NULL, cfg.open_timeout_jitter, 1, 0,                            \
      "moves each open period by up to this percent either way")                                  \
    X(min_failing_workers, min_failing_workers, min_failing_workers, COUNT, 0, CBSHM_STRIPES, 0,  \
      SET_ANY, SET_WINDOWS, SET_DECISIONS, NULL, cfg.min_failing_workers, 1, 0,                   \
      "trip only when the failures came from this many processes; 0 or 1: any")                   \
    X(max_concurrent_calls, max_concurrent_calls, max_concurrent_calls, COUNT, 0,                 \
      CBSHM_BULKHEAD_MAX, 0, SET_ANY, SET_WINDOWS, SET_DECISIONS, NULL, cfg.max_concurrent_calls, \
      1, 0, "the bulkhead: calls in flight host-wide, at most; 0: no bulkhead")                   \
    X(concurrency_quota, concurrency_quota, concurrency_quota, MULTIPLIER, 0, 100, 0, SET_ANY,    \
      SET_WINDOWS, SET_DECISIONS, NULL, cfg.concurrency_quota, 1, 0,                              \
      "the bulkhead as a share of the live workers (0.5: half), at least 1; 0: none")             \
    X(max_wait, max_wait_ms, max_wait_ms, DURATION, 0, CBSHM_MAX_WAIT_MS, 0, CBSHM_FOR_BULKHEAD,  \
      SET_WINDOWS, SET_DECISIONS, NULL, cfg.max_wait_ns, SET_MS, 0,                               \
      "how long a call waits for a bulkhead slot; 0: rejected at once")                           \
    X(slot_timeout, slot_timeout_ms, slot_timeout_ms, DURATION, 1, SET_DAY_MS, 60000,             \
      CBSHM_FOR_BULKHEAD, SET_WINDOWS, SET_DECISIONS, NULL, cfg.slot_timeout_ns, SET_MS, 0,       \
      "a bulkhead slot held this long by a call never recorded goes back to the pool")            \
    X(fleet_open_hosts, fleet_open_hosts, fleet_open_hosts, HOSTS, 0, SET_HOSTS_MAX, 0, SET_ANY,  \
      SET_WINDOWS, SET_DECISIONS, NULL, cfg.fleet_open_hosts, 1, 0,                               \
      "force it open here too while this many live hosts (or this share of them) have it open "   \
      "by their own trips; 0: off")

/* Row numbers, for the code that gives a setting its semantics. */
enum cbshm__setting_row {
#define SET_ROW(key, ...) SET_ROW_##key,
    CBSHM_SETTINGS_TABLE(SET_ROW)
#undef SET_ROW
        SET_ROWS
};
_Static_assert(SET_ROWS <= 64, "a uint64_t holds one bit per setting");

#endif /* CBSHM_SETTINGS_TABLE_H */
