/*
 * How cbctl shows a breaker: names of states and modes, the JSON object
 * (jansson), the human-readable `show` block, durations.
 */
#include <inttypes.h>
#include <stdio.h>

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

json_t *cbctl_snapshot_json(const struct cbshm_snapshot *s)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                     " s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "name", s->name,
                     "state", cbctl_state_name(s->state),
                     "mode", cbctl_mode_name(s->mode),
                     "failure_threshold", (json_int_t)s->settings.failure_threshold,
                     "success_threshold", (json_int_t)s->settings.success_threshold,
                     "half_open_max_calls", (json_int_t)s->settings.half_open_max_calls,
                     "open_timeout_ms", (json_int_t)s->settings.open_timeout_ms,
                     "probe_timeout_ms", (json_int_t)s->settings.probe_timeout_ms,
                     "requests", (json_int_t)s->requests,
                     "successes", (json_int_t)s->successes,
                     "failures", (json_int_t)s->failures,
                     "ignored", (json_int_t)s->ignored,
                     "rejections", (json_int_t)s->rejections,
                     "trips", (json_int_t)s->trips,
                     "consecutive_failures", (json_int_t)s->consecutive_failures,
                     "half_open_successes", (json_int_t)s->half_open_successes,
                     "probes_in_flight", (json_int_t)s->probes_in_flight,
                     "probes_reclaimed", (json_int_t)s->probes_reclaimed,
                     "time_in_state_ms", (json_int_t)(s->time_in_state_ns / 1000000u),
                     "open_remaining_ms", (json_int_t)open_remaining_ms(s),
                     "slot", (json_int_t)s->index);
}

int cbctl_print_json(json_t *doc)
{
    int rc;

    if (doc == NULL) {
        cbctl_err("out of memory building JSON");
        return CBCTL_FAILED;
    }
    rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (rc != 0 || fputc('\n', stdout) == EOF) {
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
    printf("failure_threshold:    %u\n", s->settings.failure_threshold);
    printf("success_threshold:    %u\n", s->settings.success_threshold);
    printf("half_open_max_calls:  %u\n", s->settings.half_open_max_calls);
    printf("open_timeout:         %s\n", open_t);
    printf("probe_timeout:        %s\n", probe_t);
    printf("requests:             %" PRIu64 "\n", s->requests);
    printf("successes:            %" PRIu64 "\n", s->successes);
    printf("failures:             %" PRIu64 "\n", s->failures);
    printf("ignored:              %" PRIu64 "\n", s->ignored);
    printf("rejections:           %" PRIu64 "\n", s->rejections);
    printf("trips:                %" PRIu64 "\n", s->trips);
    printf("consecutive_failures: %u\n", s->consecutive_failures);
    printf("probes_in_flight:     %u\n", s->probes_in_flight);
    printf("probes_reclaimed:     %" PRIu64 "\n", s->probes_reclaimed);
}
