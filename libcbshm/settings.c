/*
 * A breaker's settings: the defaults, what is in range, and where each
 * setting lives in the slot. The hot path reads only line 0, so the
 * settings it needs are copied there (failure_threshold, the slow-call
 * threshold) together with hot_flags, which say which slow paths a call
 * must take; the rest live in the slot's settings lines.
 */
#include <string.h>

#include "internal.h"

#define MS        1000000ull
#define DAY_MS    (24ull * 3600 * 1000)
#define COUNT_MAX 1000000u

void cbshm_settings_default(struct cbshm_settings *out)
{
    memset(out, 0, sizeof *out);
    out->failure_threshold = 5;
    out->success_threshold = 1;
    out->half_open_max_calls = 1;
    out->policy = CBSHM_POLICY_CONSECUTIVE;
    out->open_timeout_ms = 30000;
    out->probe_timeout_ms = 10000;
    out->window_type = CBSHM_WINDOW_COUNT;
    out->window_size = 100;
    out->window_duration_ms = 60000;
    out->window_buckets = 10;
    out->minimum_calls = 10;
    out->failure_rate = 50;
    out->slow_call_rate = 100;
    out->slow_call_duration_ms = 0;
    out->backoff_multiplier = 100;
    out->open_timeout_jitter = 0;
    out->open_timeout_max_ms = DAY_MS;
    out->min_failing_workers = 0;
}

int cbshm__settings_valid(const struct cbshm_settings *s)
{
    return s->failure_threshold >= 1 && s->failure_threshold <= COUNT_MAX &&
           s->success_threshold >= 1 && s->success_threshold <= COUNT_MAX &&
           s->half_open_max_calls >= 1 && s->half_open_max_calls <= CBSHM_PROBES_MAX &&
           s->policy <= CBSHM_POLICY_RATE && s->window_type <= CBSHM_WINDOW_TIME &&
           s->open_timeout_ms >= 1 && s->open_timeout_ms <= DAY_MS && s->probe_timeout_ms >= 1 &&
           s->probe_timeout_ms <= DAY_MS && s->window_size >= 1 && s->window_size <= COUNT_MAX &&
           s->window_buckets >= 1 && s->window_buckets <= CBSHM_WINDOW_BUCKETS_MAX &&
           s->window_duration_ms >= s->window_buckets && s->window_duration_ms <= DAY_MS &&
           s->minimum_calls >= 1 && s->minimum_calls <= COUNT_MAX && s->failure_rate >= 1 &&
           s->failure_rate <= 100 && s->slow_call_rate >= 1 && s->slow_call_rate <= 100 &&
           s->slow_call_duration_ms <= DAY_MS && s->backoff_multiplier >= 100 &&
           s->backoff_multiplier <= 10000 && s->open_timeout_jitter <= 100 &&
           s->open_timeout_max_ms >= s->open_timeout_ms && s->open_timeout_max_ms <= DAY_MS &&
           s->min_failing_workers <= CBSHM_STRIPES && s->reserved0 == 0;
}

bool cbshm__settings_equal(const struct cbshm_settings *a, const struct cbshm_settings *b)
{
    /* Every field is an integer and the padding is reserved0: bytes say it. */
    return memcmp(a, b, sizeof *a) == 0;
}

static uint32_t hot_flags(const struct cbshm_settings *s)
{
    return (s->policy == CBSHM_POLICY_RATE ? CBSHM_HOT_RATE : 0) |
           (s->window_type == CBSHM_WINDOW_TIME ? CBSHM_HOT_TIME : 0) |
           (s->slow_call_duration_ms > 0 ? CBSHM_HOT_SLOW : 0) |
           (s->min_failing_workers > 1 ? CBSHM_HOT_QUORUM : 0);
}

/* Called with the table lock held, or on a slot not yet in use. */
void cbshm__slot_store_settings(struct cbshm_slot *sl, const struct cbshm_settings *s, uint64_t now)
{
    struct cbshm_slot_settings *c = &sl->cfg;
    struct cbshm_settings old;
    bool new_window;

    cbshm__slot_settings(sl, &old);
    new_window = old.window_type != s->window_type || old.window_size != s->window_size ||
                 old.window_duration_ms != s->window_duration_ms ||
                 old.window_buckets != s->window_buckets;
    atomic_store_explicit(&c->success_threshold, s->success_threshold, memory_order_relaxed);
    atomic_store_explicit(&c->half_open_max_calls, s->half_open_max_calls, memory_order_relaxed);
    atomic_store_explicit(&c->policy, s->policy, memory_order_relaxed);
    atomic_store_explicit(&c->window_type, s->window_type, memory_order_relaxed);
    atomic_store_explicit(&c->window_size, s->window_size, memory_order_relaxed);
    atomic_store_explicit(&c->window_buckets, s->window_buckets, memory_order_relaxed);
    atomic_store_explicit(&c->minimum_calls, s->minimum_calls, memory_order_relaxed);
    atomic_store_explicit(&c->failure_rate, s->failure_rate, memory_order_relaxed);
    atomic_store_explicit(&c->slow_call_rate, s->slow_call_rate, memory_order_relaxed);
    atomic_store_explicit(&c->backoff_multiplier, s->backoff_multiplier, memory_order_relaxed);
    atomic_store_explicit(&c->open_timeout_jitter, s->open_timeout_jitter, memory_order_relaxed);
    atomic_store_explicit(&c->min_failing_workers, s->min_failing_workers, memory_order_relaxed);
    atomic_store_explicit(&c->open_timeout_ns, s->open_timeout_ms * MS, memory_order_relaxed);
    atomic_store_explicit(&c->probe_timeout_ns, s->probe_timeout_ms * MS, memory_order_relaxed);
    atomic_store_explicit(&c->window_duration_ns, s->window_duration_ms * MS, memory_order_relaxed);
    atomic_store_explicit(&c->open_timeout_max_ns, s->open_timeout_max_ms * MS,
                          memory_order_relaxed);
    atomic_store_explicit(&c->slow_call_ns_cfg, s->slow_call_duration_ms * MS,
                          memory_order_relaxed);
    /* A changed open_timeout applies from the next trip; an open period
       that is running keeps its end. */
    if (old.open_timeout_ms != s->open_timeout_ms)
        atomic_store_explicit(&sl->current_open_ns, s->open_timeout_ms * MS, memory_order_relaxed);
    /* A window of another shape starts empty: its old buckets mean nothing. */
    if (new_window)
        cbshm__window_reset(sl, now);
    /* Line 0 last, so the hot path never takes a slow path whose settings
       are not there yet. */
    atomic_store_explicit(&sl->failure_threshold, s->failure_threshold, memory_order_relaxed);
    atomic_store_explicit(&sl->slow_call_ns, s->slow_call_duration_ms * MS, memory_order_relaxed);
    atomic_store_explicit(&sl->hot_flags, hot_flags(s), memory_order_release);
}

void cbshm__slot_settings(const struct cbshm_slot *sl, struct cbshm_settings *out)
{
    const struct cbshm_slot_settings *c = &sl->cfg;

    memset(out, 0, sizeof *out);
    out->failure_threshold = atomic_load_explicit(&sl->failure_threshold, memory_order_relaxed);
    out->success_threshold = atomic_load_explicit(&c->success_threshold, memory_order_relaxed);
    out->half_open_max_calls = atomic_load_explicit(&c->half_open_max_calls, memory_order_relaxed);
    out->policy = atomic_load_explicit(&c->policy, memory_order_relaxed);
    out->window_type = atomic_load_explicit(&c->window_type, memory_order_relaxed);
    out->window_size = atomic_load_explicit(&c->window_size, memory_order_relaxed);
    out->window_buckets = atomic_load_explicit(&c->window_buckets, memory_order_relaxed);
    out->minimum_calls = atomic_load_explicit(&c->minimum_calls, memory_order_relaxed);
    out->failure_rate = atomic_load_explicit(&c->failure_rate, memory_order_relaxed);
    out->slow_call_rate = atomic_load_explicit(&c->slow_call_rate, memory_order_relaxed);
    out->backoff_multiplier = atomic_load_explicit(&c->backoff_multiplier, memory_order_relaxed);
    out->open_timeout_jitter = atomic_load_explicit(&c->open_timeout_jitter, memory_order_relaxed);
    out->min_failing_workers = atomic_load_explicit(&c->min_failing_workers, memory_order_relaxed);
    out->open_timeout_ms = atomic_load_explicit(&c->open_timeout_ns, memory_order_relaxed) / MS;
    out->probe_timeout_ms = atomic_load_explicit(&c->probe_timeout_ns, memory_order_relaxed) / MS;
    out->window_duration_ms =
        atomic_load_explicit(&c->window_duration_ns, memory_order_relaxed) / MS;
    out->open_timeout_max_ms =
        atomic_load_explicit(&c->open_timeout_max_ns, memory_order_relaxed) / MS;
    out->slow_call_duration_ms =
        atomic_load_explicit(&c->slow_call_ns_cfg, memory_order_relaxed) / MS;
}
