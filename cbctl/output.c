/*
 * How cbctl shows a breaker: names of states and modes, the JSON object
 * (jansson), the human-readable `show` block, durations.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cbctl.h"

const char *cbctl_state_name(enum cbshm_state s)
{
    switch (s) {
    case CBSHM_STATE_CLOSED:
        return "closed";
    case CBSHM_STATE_OPEN:
        return "open";
    case CBSHM_STATE_HALF_OPEN:
        return "half_open";
    }
    return "invalid";
}

const char *cbctl_mode_name(enum cbshm_mode m)
{
    switch (m) {
    case CBSHM_MODE_NORMAL:
        return "normal";
    case CBSHM_MODE_FORCED_OPEN:
        return "forced_open";
    case CBSHM_MODE_FORCED_CLOSED:
        return "forced_closed";
    case CBSHM_MODE_DISABLED:
        return "disabled";
    }
    return "invalid";
}

void cbctl_format_ms(char *buf, size_t size, uint64_t ms)
{
    if (ms >= 3600000 && ms % 3600000 == 0)
        snprintf(buf, size, "%" PRIu64 "h", ms / 3600000);
    else if (ms >= 60000 && ms % 60000 == 0)
        snprintf(buf, size, "%" PRIu64 "m", ms / 60000);
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, size, "%" PRIu64 "ms", ms);
}

static uint64_t open_remaining_ms(const struct cbshm_snapshot *s)
{
    uint64_t now = s->last_transition_ns + s->time_in_state_ns;

    if (s->state != CBSHM_STATE_OPEN || s->open_until_ns <= now)
        return 0;
    return (s->open_until_ns - now) / 1000000u;
}

const char *cbctl_policy_name(uint32_t policy)
{
    return policy == CBSHM_POLICY_RATE ? "rate" : "consecutive";
}

const char *cbctl_window_name(uint32_t window_type)
{
    return window_type == CBSHM_WINDOW_TIME ? "time" : "count";
}

/* Every field of a breaker's JSON object, in output order. */
static void snapshot_fields(const struct cbshm_snapshot *s, const char **strings, json_int_t *ints,
                            double *reals)
{
    const struct cbshm_settings *c = &s->settings;

    strings[0] = s->name;
    strings[1] = cbctl_state_name(s->state);
    strings[2] = cbctl_mode_name(s->mode);
    strings[3] = cbctl_policy_name(c->policy);
    strings[4] = cbctl_window_name(c->window_type);
    ints[0] = c->failure_threshold;
    ints[1] = c->success_threshold;
    ints[2] = c->half_open_max_calls;
    ints[3] = (json_int_t)c->open_timeout_ms;
    ints[4] = (json_int_t)c->probe_timeout_ms;
    ints[5] = (json_int_t)s->requests;
    ints[6] = (json_int_t)s->successes;
    ints[7] = (json_int_t)s->failures;
    ints[8] = (json_int_t)s->ignored;
    ints[9] = (json_int_t)s->rejections;
    ints[10] = (json_int_t)s->trips;
    ints[11] = s->consecutive_failures;
    ints[12] = s->half_open_successes;
    ints[13] = s->probes_in_flight;
    ints[14] = (json_int_t)s->probes_reclaimed;
    ints[15] = (json_int_t)(s->time_in_state_ns / 1000000u);
    ints[16] = (json_int_t)open_remaining_ms(s);
    ints[17] = s->index;
    ints[18] = c->failure_rate;
    ints[19] = c->window_size;
    ints[20] = (json_int_t)c->window_duration_ms;
    ints[21] = c->window_buckets;
    ints[22] = c->minimum_calls;
    ints[23] = (json_int_t)c->slow_call_duration_ms;
    ints[24] = c->slow_call_rate;
    ints[25] = (json_int_t)c->open_timeout_max_ms;
    ints[26] = c->open_timeout_jitter;
    ints[27] = c->min_failing_workers;
    ints[28] = (json_int_t)s->slow_calls;
    ints[29] = (json_int_t)s->window_calls;
    ints[30] = (json_int_t)s->window_failures;
    ints[31] = (json_int_t)s->window_slow_calls;
    ints[32] = s->window_failure_rate;
    ints[33] = s->window_slow_rate;
    ints[34] = s->failing_workers;
    ints[35] = (json_int_t)s->current_open_ms;
    reals[0] = c->backoff_multiplier / 100.0;
}

static const char *const string_keys[] = {"name", "state", "mode", "policy", "window_type"};
static const char *const int_keys[] = {"failure_threshold",
                                       "success_threshold",
                                       "half_open_max_calls",
                                       "open_timeout_ms",
                                       "probe_timeout_ms",
                                       "requests",
                                       "successes",
                                       "failures",
                                       "ignored",
                                       "rejections",
                                       "trips",
                                       "consecutive_failures",
                                       "half_open_successes",
                                       "probes_in_flight",
                                       "probes_reclaimed",
                                       "time_in_state_ms",
                                       "open_remaining_ms",
                                       "slot",
                                       "failure_rate",
                                       "window_size",
                                       "window_duration_ms",
                                       "window_buckets",
                                       "minimum_calls",
                                       "slow_call_duration_ms",
                                       "slow_call_rate",
                                       "open_timeout_max_ms",
                                       "open_timeout_jitter",
                                       "min_failing_workers",
                                       "slow_calls",
                                       "window_calls",
                                       "window_failures",
                                       "window_slow_calls",
                                       "window_failure_rate",
                                       "window_slow_rate",
                                       "failing_workers",
                                       "current_open_ms"};
static const char *const real_keys[] = {"backoff_multiplier"};
#define N_STRINGS (sizeof string_keys / sizeof string_keys[0])
#define N_INTS    (sizeof int_keys / sizeof int_keys[0])
#define N_REALS   (sizeof real_keys / sizeof real_keys[0])
_Static_assert(N_STRINGS + N_INTS + N_REALS ==
                   sizeof((struct cbctl_json_row *)0)->values / sizeof(json_t *),
               "cbctl_json_row holds every value node");

json_t *cbctl_snapshot_json(const struct cbshm_snapshot *s)
{
    const char *strings[N_STRINGS];
    json_int_t ints[N_INTS];
    double reals[N_REALS];
    json_t *o = json_object();
    int bad = o == NULL;

    snapshot_fields(s, strings, ints, reals);
    for (size_t i = 0; i < N_STRINGS && !bad; i++)
        bad = json_object_set_new(o, string_keys[i], json_string(strings[i])) != 0;
    for (size_t i = 0; i < N_INTS && !bad; i++)
        bad = json_object_set_new(o, int_keys[i], json_integer(ints[i])) != 0;
    for (size_t i = 0; i < N_REALS && !bad; i++)
        bad = json_object_set_new(o, real_keys[i], json_real(reals[i])) != 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

const char *cbctl_json_row(struct cbctl_json_row *w, const struct cbshm_snapshot *s)
{
    const char *strings[N_STRINGS];
    json_int_t ints[N_INTS];
    double reals[N_REALS];
    size_t need;

    if (w->obj == NULL) {
        if ((w->obj = cbctl_snapshot_json(s)) == NULL)
            return NULL;
        /* Keep the value nodes: later rows rewrite them without lookups. */
        for (size_t i = 0; i < N_STRINGS; i++)
            w->values[i] = json_object_get(w->obj, string_keys[i]);
        for (size_t i = 0; i < N_INTS; i++)
            w->values[N_STRINGS + i] = json_object_get(w->obj, int_keys[i]);
        for (size_t i = 0; i < N_REALS; i++)
            w->values[N_STRINGS + N_INTS + i] = json_object_get(w->obj, real_keys[i]);
    } else {
        snapshot_fields(s, strings, ints, reals);
        for (size_t i = 0; i < N_STRINGS; i++)
            if (json_string_set(w->values[i], strings[i]) != 0)
                return NULL;
        for (size_t i = 0; i < N_INTS; i++)
            json_integer_set(w->values[N_STRINGS + i], ints[i]);
        for (size_t i = 0; i < N_REALS; i++)
            json_real_set(w->values[N_STRINGS + N_INTS + i], reals[i]);
    }
    while ((need = json_dumpb(w->obj, w->buf, w->cap, JSON_PRESERVE_ORDER)) >= w->cap) {
        char *nb = realloc(w->buf, need + 1024);
        if (nb == NULL)
            return NULL;
        w->buf = nb;
        w->cap = need + 1024;
    }
    if (need == 0)
        return NULL;
    w->buf[need] = '\0';
    return w->buf;
}

void cbctl_json_row_free(struct cbctl_json_row *w)
{
    json_decref(w->obj);
    free(w->buf);
}

int cbctl_print_json(json_t *doc)
{
    char *text;
    int rc;

    if (doc == NULL) {
        cbctl_err("out of memory building JSON");
        return CBCTL_FAILED;
    }
    /* Into memory first, then one write: dumping straight to a FILE costs
       one fwrite per token, which dominates for thousands of breakers. */
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    rc = text != NULL && fputs(text, stdout) != EOF && fputc('\n', stdout) != EOF ? 0 : -1;
    free(text);
    if (rc != 0) {
        cbctl_err("cannot write JSON to stdout");
        return CBCTL_FAILED;
    }
    return CBCTL_OK;
}

void cbctl_print_show(const struct cbshm_snapshot *s)
{
    char open_t[32], probe_t[32], in_state[32];

    cbctl_format_ms(open_t, sizeof open_t, s->settings.open_timeout_ms);
    cbctl_format_ms(probe_t, sizeof probe_t, s->settings.probe_timeout_ms);
    cbctl_format_ms(in_state, sizeof in_state, s->time_in_state_ns / 1000000u);
    printf("name:                 %s\n", s->name);
    printf("state:                %s (for %s)\n", cbctl_state_name(s->state), in_state);
    if (s->state == CBSHM_STATE_OPEN)
        printf("open for another:     %" PRIu64 "ms\n", open_remaining_ms(s));
    printf("mode:                 %s\n", cbctl_mode_name(s->mode));
    printf("policy:               %s\n", cbctl_policy_name(s->settings.policy));
    if (s->settings.policy == CBSHM_POLICY_CONSECUTIVE)
        printf("failure_threshold:    %u\n", s->settings.failure_threshold);
    else
        printf("failure_rate:         %u%%\n", s->settings.failure_rate);
    printf("success_threshold:    %u\n", s->settings.success_threshold);
    printf("half_open_max_calls:  %u\n", s->settings.half_open_max_calls);
    printf("open_timeout:         %s\n", open_t);
    printf("probe_timeout:        %s\n", probe_t);
    cbctl_print_policy(s);
    printf("requests:             %" PRIu64 "\n", s->requests);
    printf("successes:            %" PRIu64 "\n", s->successes);
    printf("failures:             %" PRIu64 "\n", s->failures);
    printf("ignored:              %" PRIu64 "\n", s->ignored);
    printf("rejections:           %" PRIu64 "\n", s->rejections);
    printf("trips:                %" PRIu64 "\n", s->trips);
    printf("slow_calls:           %" PRIu64 "\n", s->slow_calls);
    printf("consecutive_failures: %u\n", s->consecutive_failures);
    printf("probes_in_flight:     %u\n", s->probes_in_flight);
    printf("probes_reclaimed:     %" PRIu64 "\n", s->probes_reclaimed);
}

/* The window, slow calls, backoff and quorum lines of `show`. */
void cbctl_print_policy(const struct cbshm_snapshot *s)
{
    const struct cbshm_settings *c = &s->settings;
    char a[32], b[32];

    if (c->window_type == CBSHM_WINDOW_TIME) {
        cbctl_format_ms(a, sizeof a, c->window_duration_ms);
        printf("window:               time, %s in %u buckets, minimum_calls %u\n", a,
               c->window_buckets, c->minimum_calls);
    } else {
        printf("window:               count, last %u calls, minimum_calls %u\n", c->window_size,
               c->minimum_calls);
    }
    printf("window now:           %" PRIu64 " calls, %" PRIu64 " failures (%u%%), %" PRIu64
           " slow (%u%%), %u failing workers\n",
           s->window_calls, s->window_failures, s->window_failure_rate, s->window_slow_calls,
           s->window_slow_rate, s->failing_workers);
    if (c->slow_call_duration_ms > 0) {
        cbctl_format_ms(a, sizeof a, c->slow_call_duration_ms);
        printf("slow calls:           %s or longer; trip at %u%%\n", a, c->slow_call_rate);
    }
    cbctl_format_ms(a, sizeof a, c->open_timeout_max_ms);
    cbctl_format_ms(b, sizeof b, s->current_open_ms);
    printf("backoff:              x%u.%02u up to %s, jitter %u%%; open period now %s\n",
           c->backoff_multiplier / 100, c->backoff_multiplier % 100, a, c->open_timeout_jitter, b);
    if (c->min_failing_workers > 1)
        printf("min_failing_workers:  %u\n", c->min_failing_workers);
}
