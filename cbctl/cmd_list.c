/* cbctl list [--json]: every breaker, one line each or one JSON array. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cbctl.h"

/* Streams the array one object per line (see struct cbctl_json_row). */
struct json_rows {
    struct cbctl_json_row w;
    unsigned n;
};

static int print_json_row(void *ctx, const struct cbshm_snapshot *s)
{
    struct json_rows *r = ctx;
    const char *text = cbctl_json_row(&r->w, s);

    return text != NULL && printf("%s%s", r->n++ ? ",\n  " : "[\n  ", text) > 0 ? 0 : -1;
}

static int print_row(void *ctx, const struct cbshm_snapshot *s)
{
    char in_state[32], mode_left[32], limit[32], name[CBCTL_SAFE_MAX];

    (void)ctx;
    cbctl_format_ms(in_state, sizeof in_state, s->time_in_state_ns / 1000000u);
    /* What trips it, against its limit: the failure run, or the window's
       failure rate. */
    if (s->settings.policy == CBSHM_POLICY_RATE)
        snprintf(limit, sizeof limit, "%4u%%/%u%%", s->window_failure_rate,
                 s->settings.failure_rate);
    else
        snprintf(limit, sizeof limit, "%5u/%-5u", s->consecutive_failures,
                 s->settings.failure_threshold);
    printf("%-32s %-9s %-13s %-11s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %6" PRIu64 " %s",
           cbctl_safe(s->name, name, sizeof name), cbctl_state_name(s->state),
           cbctl_mode_name(s->mode), limit, s->requests, s->failures, s->rejections, s->trips,
           in_state);
    /* A timed mode says when it ends, after the columns. */
    if (cbctl_mode_remaining_ms(s) > 0) {
        cbctl_format_ms(mode_left, sizeof mode_left, cbctl_mode_remaining_ms(s));
        printf("  (%s for another %s)", cbctl_mode_name(s->mode), mode_left);
    }
    putchar('\n');
    return 0;
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct json_rows rows = {{NULL, NULL, 0, NULL, 0}, 0};
    int rc;

    if (args->json) {
        rc = cbshm_foreach(shm, print_json_row, &rows);
        cbctl_json_row_free(&rows.w);
        /* A corrupt slot was left out of a complete array: the document
           stays whole, the exit status and stderr say what is missing. */
        if (rc == 0 || rc == CBSHM_ECORRUPT)
            puts(rows.n ? "\n]" : "[]");
        if (rc != 0) {
            cbctl_err("list: segment %s: %s", ctl->segment_final,
                      rc != CBSHM_ESTOPPED ? cbctl_foreach_error(rc) : "cannot write JSON");
            return CBCTL_FAILED;
        }
        return CBCTL_OK;
    }
    printf("%-32s %-9s %-13s %11s %10s %10s %10s %6s %s\n", "NAME", "STATE", "MODE", "FAILS/LIMIT",
           "REQUESTS", "FAILURES", "REJECTED", "TRIPS", "IN-STATE");
    rc = cbshm_foreach(shm, print_row, NULL);
    if (rc != 0) {
        cbctl_err("list: segment %s: %s", ctl->segment_final, cbctl_foreach_error(rc));
        return CBCTL_FAILED;
    }
    return CBCTL_OK;
}

const struct cbctl_cmd cbctl_cmd_list = {
    .name = "list",
    .summary = "list every breaker",
    .attach = CBCTL_ATTACH_READ,
    .names = CBCTL_NAMES_NONE,
    .json = "one JSON array of breaker objects",
    .run = run,
};
