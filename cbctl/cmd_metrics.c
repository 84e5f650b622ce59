/*
 * cbctl metrics: every breaker in the Prometheus text exposition format,
 * for node_exporter's textfile collector or any scraper. Names follow the
 * Prometheus conventions: a cbshm_ prefix, base units in the name
 * (seconds, ratio), _total on counters, one 0/1 gauge per state and mode.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cbctl.h"

struct metrics {
    const char *segment; /* label value, escaped */
    const struct cbshm_snapshot *all;
    size_t n;
};

static void labels(const struct metrics *m, const struct cbshm_snapshot *s)
{
    fputs("{segment=\"", stdout);
    cbctl_put_label(stdout, m->segment);
    fputs("\",breaker=\"", stdout);
    cbctl_put_label(stdout, s->name);
    putchar('"');
}

static void family(const char *name, const char *type, const char *help)
{
    printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample per breaker of a value taken from its snapshot. */
static void each(const struct metrics *m, const char *name, const char *type, const char *help,
                 double (*value)(const struct cbshm_snapshot *))
{
    family(name, type, help);
    for (size_t i = 0; i < m->n; i++) {
        fputs(name, stdout);
        labels(m, &m->all[i]);
        printf("} %.17g\n", value(&m->all[i]));
    }
}

static double v_rejections(const struct cbshm_snapshot *s)
{
    return (double)s->rejections;
}
static double v_trips(const struct cbshm_snapshot *s)
{
    return (double)s->trips;
}
static double v_probes(const struct cbshm_snapshot *s)
{
    return s->probes_in_flight;
}
static double v_reclaimed(const struct cbshm_snapshot *s)
{
    return (double)s->probes_reclaimed;
}
static double v_open_period(const struct cbshm_snapshot *s)
{
    return (double)s->current_open_ms / 1e3;
}
static double v_run(const struct cbshm_snapshot *s)
{
    return s->consecutive_failures;
}
static double v_window_calls(const struct cbshm_snapshot *s)
{
    return (double)s->window_calls;
}
static double v_window_failures(const struct cbshm_snapshot *s)
{
    return s->window_calls ? (double)s->window_failures / (double)s->window_calls : 0;
}
static double v_window_slow(const struct cbshm_snapshot *s)
{
    return s->window_calls ? (double)s->window_slow_calls / (double)s->window_calls : 0;
}
static double v_failing_workers(const struct cbshm_snapshot *s)
{
    return s->failing_workers;
}
static double v_in_state(const struct cbshm_snapshot *s)
{
    return (double)s->time_in_state_ns / 1e9;
}

/*
 * One family per setting of the settings table, named after its YAML key
 * in base units: cbshm_setting_open_timeout_seconds,
 * cbshm_setting_failure_rate_ratio; a word (policy, window_type) is a 0/1
 * gauge per value, like the state.
 */
static void print_settings(const struct metrics *m)
{
    const struct cbshm_setting *d;
    char name[96], help[200];

    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
        const char *suffix = d->type == CBSHM_SETTING_DURATION  ? "_seconds"
                             : d->type == CBSHM_SETTING_PERCENT ? "_ratio"
                                                                : "";
        double scale = d->type == CBSHM_SETTING_DURATION ? 1e3
                       : d->type == CBSHM_SETTING_PERCENT || d->type == CBSHM_SETTING_MULTIPLIER
                           ? 1e2
                           : 1;

        snprintf(name, sizeof name, "cbshm_setting_%s%s", d->key, suffix);
        snprintf(help, sizeof help, "%s%s.", d->help,
                 d->type == CBSHM_SETTING_DURATION  ? ", in seconds"
                 : d->type == CBSHM_SETTING_PERCENT ? ", as a ratio (0 to 1)"
                 : d->type == CBSHM_SETTING_CHOICE  ? "; 1 for the one in force"
                                                    : "");
        family(name, "gauge", help);
        for (size_t b = 0; b < m->n; b++) {
            uint64_t v = cbshm_setting_get(&m->all[b].settings, d);
            if (d->type != CBSHM_SETTING_CHOICE) {
                fputs(name, stdout);
                labels(m, &m->all[b]);
                printf("} %.17g\n", (double)v / scale);
                continue;
            }
            for (uint64_t c = 0; d->choices[c] != NULL; c++) {
                fputs(name, stdout);
                labels(m, &m->all[b]);
                printf(",%s=\"%s\"} %d\n", d->key, d->choices[c], v == c);
            }
        }
    }
}

static void print_metrics(const struct metrics *m, const struct cbshm_info *info)
{
    static const enum cbshm_state states[] = {CBSHM_STATE_CLOSED, CBSHM_STATE_OPEN,
                                              CBSHM_STATE_HALF_OPEN};
    static const enum cbshm_mode modes[] = {CBSHM_MODE_NORMAL, CBSHM_MODE_FORCED_OPEN,
                                            CBSHM_MODE_FORCED_CLOSED, CBSHM_MODE_DISABLED};
    static const char *outcomes[] = {"success", "failure", "ignored", "slow"};

    family("cbshm_breaker_state", "gauge", "1 for the state the breaker is in, 0 for the others.");
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < 3; k++) {
            fputs("cbshm_breaker_state", stdout);
            labels(m, &m->all[i]);
            printf(",state=\"%s\"} %d\n", cbctl_state_name(states[k]),
                   m->all[i].state == states[k]);
        }
    /* Open with its open period over: an alert on "open" can leave these
       out, since the next call is let through as a probe. */
    family("cbshm_breaker_probe_due", "gauge",
           "1 when the breaker is open, its open period has passed and no call has probed it "
           "yet, so the next call is a probe.");
    for (size_t i = 0; i < m->n; i++) {
        fputs("cbshm_breaker_probe_due", stdout);
        labels(m, &m->all[i]);
        printf("} %d\n", cbctl_probe_due(&m->all[i]));
    }
    family("cbshm_breaker_mode", "gauge", "1 for the mode the breaker is in, 0 for the others.");
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < 4; k++) {
            fputs("cbshm_breaker_mode", stdout);
            labels(m, &m->all[i]);
            printf(",mode=\"%s\"} %d\n", cbctl_mode_name(modes[k]), m->all[i].mode == modes[k]);
        }
    family("cbshm_breaker_calls_total", "counter",
           "Calls recorded, by outcome; slow calls are also counted as success or failure.");
    for (size_t i = 0; i < m->n; i++) {
        const struct cbshm_snapshot *s = &m->all[i];
        uint64_t v[] = {s->successes, s->failures, s->ignored, s->slow_calls};
        for (size_t k = 0; k < 4; k++) {
            fputs("cbshm_breaker_calls_total", stdout);
            labels(m, s);
            printf(",outcome=\"%s\"} %" PRIu64 "\n", outcomes[k], v[k]);
        }
    }
    each(m, "cbshm_breaker_rejections_total", "counter",
         "Calls the breaker refused without calling the downstream.", v_rejections);
    each(m, "cbshm_breaker_trips_total", "counter", "Transitions into open.", v_trips);
    each(m, "cbshm_breaker_probes_in_flight", "gauge", "Half-open probe leases held now.",
         v_probes);
    each(m, "cbshm_breaker_probes_reclaimed_total", "counter",
         "Probe leases taken back from dead or late owners.", v_reclaimed);
    each(m, "cbshm_breaker_open_period_seconds", "gauge",
         "The open period now in force, after backoff.", v_open_period);
    each(m, "cbshm_breaker_state_duration_seconds", "gauge", "Time since the last transition.",
         v_in_state);
    each(m, "cbshm_breaker_consecutive_failures", "gauge", "The current run of failures.", v_run);
    each(m, "cbshm_breaker_window_calls", "gauge", "Calls in the window now.", v_window_calls);
    each(m, "cbshm_breaker_window_failure_ratio", "gauge",
         "Failures over calls in the window now (0 to 1).", v_window_failures);
    each(m, "cbshm_breaker_window_slow_ratio", "gauge",
         "Slow calls over calls in the window now (0 to 1).", v_window_slow);
    each(m, "cbshm_breaker_failing_workers", "gauge",
         "Distinct worker processes with failures in the window.", v_failing_workers);
    print_settings(m);
    family("cbshm_segment_breakers", "gauge", "Breakers in the segment.");
    fputs("cbshm_segment_breakers{segment=\"", stdout);
    cbctl_put_label(stdout, m->segment);
    printf("\"} %u\n", info->breakers);
    family("cbshm_segment_capacity", "gauge", "Breaker slots in the segment.");
    fputs("cbshm_segment_capacity{segment=\"", stdout);
    cbctl_put_label(stdout, m->segment);
    printf("\"} %u\n", info->capacity);
    family("cbshm_segment_lock_repairs_total", "counter",
           "Times a dead table-lock owner's change was repaired.");
    fputs("cbshm_segment_lock_repairs_total{segment=\"", stdout);
    cbctl_put_label(stdout, m->segment);
    printf("\"} %" PRIu64 "\n", info->lock_repairs);
}

struct collect {
    struct cbshm_snapshot *all;
    size_t n, cap;
};

static int collect(void *ctx, const struct cbshm_snapshot *s)
{
    struct collect *c = ctx;

    if (c->n == c->cap)
        return -1;
    c->all[c->n++] = *s;
    return 0;
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct cbshm_info info;
    struct collect c = {NULL, 0, 0};
    struct metrics m;
    int rc;

    (void)args;
    cbshm_info(shm, &info);
    c.cap = info.capacity;
    /* A corrupt slot is left out: the other breakers' series still print,
       and the exit status says some are missing. */
    if ((c.all = calloc(c.cap ? c.cap : 1, sizeof *c.all)) == NULL ||
        ((rc = cbshm_foreach(shm, collect, &c)) != 0 && rc != CBSHM_ECORRUPT)) {
        cbctl_err("metrics: segment %s: %s", ctl->segment_final,
                  c.all == NULL || rc == CBSHM_ESTOPPED ? "out of memory" : cbshm_strerror(rc));
        free(c.all);
        return CBCTL_FAILED;
    }
    m.segment = ctl->segment_final;
    m.all = c.all;
    m.n = c.n;
    print_metrics(&m, &info);
    free(c.all);
    if (fflush(stdout) != 0)
        return CBCTL_FAILED;
    if (rc == CBSHM_ECORRUPT) {
        cbctl_err("metrics: segment %s: %s", ctl->segment_final, cbctl_foreach_error(rc));
        return CBCTL_FAILED;
    }
    return CBCTL_OK;
}

const struct cbctl_cmd cbctl_cmd_metrics = {
    .name = "metrics",
    .summary = "every breaker in the Prometheus text format",
    .attach = CBCTL_ATTACH_READ,
    .names = CBCTL_NAMES_NONE,
    .run = run,
};
