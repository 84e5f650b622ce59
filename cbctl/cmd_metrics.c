/* SPDX-License-Identifier: MIT */
/*
 * cbctl metrics [--output FILE]: every breaker in the Prometheus text
 * exposition format, for node_exporter's textfile collector or any
 * scraper. Names follow the Prometheus conventions: a cbshm_ prefix, base
 * units in the name (seconds, ratio), _total on counters, one 0/1 gauge
 * per state and mode, words as labels of an _info metric. Every sample
 * carries the segment label, so the files of two segments on one host
 * never hold the same series.
 *
 * cbshm_up says whether the segment was read: a missing or refused
 * segment still prints cbshm_up 0 (and the build), and exits 1, so the
 * textfile collector shows the truth instead of the last good file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cbctl.h"
#include "layout.h" /* CBSHM_LAYOUT_VERSION: the layout of the library linked in */

struct metrics {
    FILE *out;
    const char *segment; /* label value, escaped as it is printed */
    const struct cbshm_snapshot *all;
    size_t n;
    uint64_t realtime_minus_monotonic_ns; /* to date monotonic stamps */
};

/* The shortest %g that strtod reads back as v: 0.07, not 0.070000000000000007. */
static void put_number(FILE *out, double v)
{
    char buf[32];

    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, out);
}

static void segment_label(const struct metrics *m)
{
    fputs("{segment=\"", m->out);
    cbctl_put_label(m->out, m->segment);
    fputc('"', m->out);
}

static void labels(const struct metrics *m, const struct cbshm_snapshot *s)
{
    segment_label(m);
    fputs(",breaker=\"", m->out);
    cbctl_put_label(m->out, s->name);
    fputc('"', m->out);
}

static void family(const struct metrics *m, const char *name, const char *type, const char *help)
{
    fprintf(m->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample per breaker of a value taken from its snapshot. */
static void each(const struct metrics *m, const char *name, const char *type, const char *help,
                 double (*value)(const struct metrics *, const struct cbshm_snapshot *))
{
    family(m, name, type, help);
    for (size_t i = 0; i < m->n; i++) {
        fputs(name, m->out);
        labels(m, &m->all[i]);
        fputs("} ", m->out);
        put_number(m->out, value(m, &m->all[i]));
        fputc('\n', m->out);
    }
}

static double v_rejections(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->rejections;
}
static double v_trips(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->trips;
}
static double v_slow(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->slow_calls;
}
static double v_probes(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return s->probes_in_flight;
}
static double v_reclaimed(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->probes_reclaimed;
}
static double v_open_period(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->current_open_ms / 1e3;
}
static double v_last_transition(const struct metrics *m, const struct cbshm_snapshot *s)
{
    return (double)(s->last_transition_ns + m->realtime_minus_monotonic_ns) / 1e9;
}
/* When an open breaker lets its next probe through - its open period may
   be longer than the one in force (a downstream's Retry-After) - 0 when
   it is not open. */
static double v_open_until(const struct metrics *m, const struct cbshm_snapshot *s)
{
    if (s->state != CBSHM_STATE_OPEN || s->open_until_ns == 0)
        return 0;
    return (double)(s->open_until_ns + m->realtime_minus_monotonic_ns) / 1e9;
}
static double v_run(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return s->consecutive_failures;
}
static double v_window_calls(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->window_calls;
}
static double v_window_failures(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return s->window_calls ? (double)s->window_failures / (double)s->window_calls : 0;
}
static double v_window_slow(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return s->window_calls ? (double)s->window_slow_calls / (double)s->window_calls : 0;
}
static double v_failing_workers(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return s->failing_workers;
}
static double v_bulkhead_limit(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return s->bulkhead_limit;
}
static double v_bulkhead_in_flight(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return s->bulkhead_in_flight;
}
static double v_bulkhead_rejections(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->bulkhead_rejections;
}
static double v_bulkhead_reclaimed(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->bulkhead_reclaimed;
}
static double v_bulkhead_waits(const struct metrics *m, const struct cbshm_snapshot *s)
{
    (void)m;
    return (double)s->bulkhead_waits;
}

/*
 * A host count or share (fleet_open_hosts) is two gauges, so that neither
 * is a number with a flag bit in it: the count (0 when a share is set),
 * and the share as a ratio, _ratio (0 when a count is set). Both 0: off.
 */
static void print_hosts_setting(const struct metrics *m, const struct cbshm_setting *d)
{
    char name[96], help[240];

    for (int share = 0; share <= 1; share++) {
        snprintf(name, sizeof name, "cbshm_setting_%s%s", d->key, share ? "_ratio" : "");
        snprintf(help, sizeof help, "%s%s.", d->help,
                 share ? "; the share of the live hosts, as a ratio (0 to 1), 0 when a count is "
                         "set"
                       : "; the count of hosts, 0 when a share is set");
        family(m, name, "gauge", help);
        for (size_t b = 0; b < m->n; b++) {
            uint64_t v = cbshm_setting_get(&m->all[b].settings, d);
            int is_share = (v & CBSHM_FLEET_SHARE) != 0;
            fputs(name, m->out);
            labels(m, &m->all[b]);
            fputs("} ", m->out);
            if (is_share != share)
                put_number(m->out, 0);
            else
                put_number(m->out,
                           share ? (double)(v & ~(uint64_t)CBSHM_FLEET_SHARE) / 1e2 : (double)v);
            fputc('\n', m->out);
        }
    }
}

/*
 * The settings table, by its YAML keys: a number is a gauge in base units
 * (cbshm_setting_open_timeout_seconds, cbshm_setting_failure_rate_ratio);
 * the words (policy, window_type) are labels of one info metric per
 * breaker, cbshm_breaker_settings_info, whose value is 1.
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

        if (d->type == CBSHM_SETTING_CHOICE)
            continue;
        if (d->type == CBSHM_SETTING_HOSTS) {
            print_hosts_setting(m, d);
            continue;
        }
        snprintf(name, sizeof name, "cbshm_setting_%s%s", d->key, suffix);
        snprintf(help, sizeof help, "%s%s.", d->help,
                 d->type == CBSHM_SETTING_DURATION  ? ", in seconds"
                 : d->type == CBSHM_SETTING_PERCENT ? ", as a ratio (0 to 1)"
                                                    : "");
        family(m, name, "gauge", help);
        for (size_t b = 0; b < m->n; b++) {
            fputs(name, m->out);
            labels(m, &m->all[b]);
            fputs("} ", m->out);
            put_number(m->out, (double)cbshm_setting_get(&m->all[b].settings, d) / scale);
            fputc('\n', m->out);
        }
    }
    family(m, "cbshm_breaker_settings_info", "gauge",
           "The settings that are words, as labels named after their YAML keys; always 1.");
    for (size_t b = 0; b < m->n; b++) {
        fputs("cbshm_breaker_settings_info", m->out);
        labels(m, &m->all[b]);
        for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
            uint64_t v = cbshm_setting_get(&m->all[b].settings, d);
            size_t n_choices = 0;
            if (d->type != CBSHM_SETTING_CHOICE)
                continue;
            while (d->choices[n_choices] != NULL)
                n_choices++;
            fprintf(m->out, ",%s=\"%s\"", d->key, v < n_choices ? d->choices[v] : "unknown");
        }
        fputs("} 1\n", m->out);
    }
}

/* What every output has, the segment read or not: whether it was, and
   which cbctl said so. */
static void print_up(const struct metrics *m, int up)
{
    family(m, "cbshm_up", "gauge",
           "1 when cbctl read the segment, 0 when it could not (missing, refused, another "
           "layout version); the other series are there only when it is 1.");
    fputs("cbshm_up", m->out);
    segment_label(m);
    fprintf(m->out, "} %d\n", up);
    family(m, "cbshm_build_info", "gauge",
           "The libcbshm version of the cbctl that wrote these metrics and the segment layout "
           "version it reads; always 1.");
    fputs("cbshm_build_info", m->out);
    segment_label(m);
    fprintf(m->out, ",version=\"%s\",layout_version=\"%u\"} 1\n", cbshm_version(),
            CBSHM_LAYOUT_VERSION);
}

static void print_metrics(const struct metrics *m, const struct cbshm_info *info)
{
    static const enum cbshm_state states[] = {CBSHM_STATE_CLOSED, CBSHM_STATE_OPEN,
                                              CBSHM_STATE_HALF_OPEN};
    static const enum cbshm_mode modes[] = {CBSHM_MODE_NORMAL, CBSHM_MODE_FORCED_OPEN,
                                            CBSHM_MODE_FORCED_CLOSED, CBSHM_MODE_DISABLED};
    static const char *outcomes[] = {"success", "failure", "ignored"};
    FILE *out = m->out;

    family(m, "cbshm_breaker_state", "gauge",
           "1 for the state the breaker is in, 0 for the others.");
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < 3; k++) {
            fputs("cbshm_breaker_state", out);
            labels(m, &m->all[i]);
            fprintf(out, ",state=\"%s\"} %d\n", cbctl_state_name(states[k]),
                    m->all[i].state == states[k]);
        }
    /* Open with its open period over: an alert on "open" can leave these
       out, since the next call is let through as a probe. */
    family(m, "cbshm_breaker_probe_due", "gauge",
           "1 when the breaker is open, its open period has passed and no call has probed it "
           "yet, so the next call is a probe.");
    for (size_t i = 0; i < m->n; i++) {
        fputs("cbshm_breaker_probe_due", out);
        labels(m, &m->all[i]);
        fprintf(out, "} %d\n", cbctl_probe_due(&m->all[i]));
    }
    family(m, "cbshm_breaker_mode", "gauge", "1 for the mode the breaker is in, 0 for the others.");
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < 4; k++) {
            fputs("cbshm_breaker_mode", out);
            labels(m, &m->all[i]);
            fprintf(out, ",mode=\"%s\"} %d\n", cbctl_mode_name(modes[k]),
                    m->all[i].mode == modes[k]);
        }
    family(m, "cbshm_breaker_calls_total", "counter",
           "Calls recorded, by outcome; the outcomes add up to the calls. Slow calls are "
           "among them, and counted again in cbshm_breaker_slow_calls_total.");
    for (size_t i = 0; i < m->n; i++) {
        const struct cbshm_snapshot *s = &m->all[i];
        uint64_t v[] = {s->successes, s->failures, s->ignored};
        for (size_t k = 0; k < 3; k++) {
            fputs("cbshm_breaker_calls_total", out);
            labels(m, s);
            fprintf(out, ",outcome=\"%s\"} %" PRIu64 "\n", outcomes[k], v[k]);
        }
    }
    each(m, "cbshm_breaker_slow_calls_total", "counter",
         "Calls slower than slow_call_duration, whatever their outcome (a part of "
         "cbshm_breaker_calls_total, not beside it).",
         v_slow);
    each(m, "cbshm_breaker_rejections_total", "counter",
         "Calls the breaker refused without calling the downstream.", v_rejections);
    each(m, "cbshm_breaker_trips_total", "counter", "Transitions into open.", v_trips);
    each(m, "cbshm_breaker_probes_in_flight", "gauge", "Half-open probe leases held now.",
         v_probes);
    each(m, "cbshm_breaker_probes_reclaimed_total", "counter",
         "Probe leases taken back from dead or late owners.", v_reclaimed);
    each(m, "cbshm_breaker_open_period_seconds", "gauge",
         "The open period now in force, after backoff.", v_open_period);
    each(m, "cbshm_breaker_open_until_timestamp_seconds", "gauge",
         "When an open breaker admits its next probe, in seconds since the epoch (a "
         "downstream's Retry-After can make it later than the open period says); 0 when "
         "not open.",
         v_open_until);
    each(m, "cbshm_breaker_last_transition_timestamp_seconds", "gauge",
         "When the breaker last changed state, in seconds since the epoch: the library's "
         "CLOCK_MONOTONIC stamp (coarse, a few ms) plus CLOCK_REALTIME - CLOCK_MONOTONIC "
         "as cbctl read them, so a wall-clock step since moves it.",
         v_last_transition);
    each(m, "cbshm_breaker_consecutive_failures", "gauge", "The current run of failures.", v_run);
    each(m, "cbshm_breaker_window_calls", "gauge", "Calls in the window now.", v_window_calls);
    each(m, "cbshm_breaker_window_failure_ratio", "gauge",
         "Failures over calls in the window now (0 to 1).", v_window_failures);
    each(m, "cbshm_breaker_window_slow_ratio", "gauge",
         "Slow calls over calls in the window now (0 to 1).", v_window_slow);
    each(m, "cbshm_breaker_failing_workers", "gauge",
         "Distinct worker processes with failures in the window.", v_failing_workers);
    each(m, "cbshm_bulkhead_limit", "gauge",
         "Calls the bulkhead lets in flight host-wide now (a concurrency_quota's share of "
         "the live workers); 0 when the breaker has no bulkhead.",
         v_bulkhead_limit);
    each(m, "cbshm_bulkhead_in_flight", "gauge", "Bulkhead slots held now by calls in flight.",
         v_bulkhead_in_flight);
    each(m, "cbshm_bulkhead_rejections_total", "counter",
         "Calls the full bulkhead refused (counted in cbshm_breaker_rejections_total too).",
         v_bulkhead_rejections);
    each(m, "cbshm_bulkhead_reclaimed_total", "counter",
         "Bulkhead slots taken back from dead owners or after slot_timeout.", v_bulkhead_reclaimed);
    each(m, "cbshm_bulkhead_waits_total", "counter",
         "Calls that waited for a bulkhead slot (max_wait) and got one.", v_bulkhead_waits);
    print_settings(m);
    family(m, "cbshm_segment_breakers", "gauge", "Breakers in the segment.");
    fputs("cbshm_segment_breakers", out);
    segment_label(m);
    fprintf(out, "} %u\n", info->breakers);
    family(m, "cbshm_segment_capacity", "gauge", "Breaker slots in the segment.");
    fputs("cbshm_segment_capacity", out);
    segment_label(m);
    fprintf(out, "} %u\n", info->capacity);
    family(m, "cbshm_segment_workers", "gauge",
           "Live worker processes attached to the segment, as concurrency_quota counts them.");
    fputs("cbshm_segment_workers", out);
    segment_label(m);
    fprintf(out, "} %u\n", info->workers);
    family(m, "cbshm_segment_lock_repairs_total", "counter",
           "Times a dead table-lock owner's change was repaired.");
    fputs("cbshm_segment_lock_repairs_total", out);
    segment_label(m);
    fprintf(out, "} %" PRIu64 "\n", info->lock_repairs);
}

/* One sample with the segment label alone. */
static void single(const struct metrics *m, const char *name, const char *type, const char *help,
                   double v)
{
    family(m, name, type, help);
    fputs(name, m->out);
    segment_label(m);
    fputs("} ", m->out);
    put_number(m->out, v);
    fputc('\n', m->out);
}

/* The fleet agent's status (cbctl agent), when an agent ever ran on the segment. */
static void print_fleet(const struct metrics *m, const struct cbshm_fleet_status *st,
                        uint64_t wall_ns)
{
    if (st->agent_pid == 0)
        return;
    single(m, "cbshm_fleet_connected", "gauge",
           "1 while the fleet agent has a working connection to the fleet's Redis, else 0.",
           st->connected ? 1 : 0);
    single(m, "cbshm_fleet_lag_seconds", "gauge",
           "How far the agent is behind the fleet's command stream: the newest command seen "
           "minus the last one applied, by their stream times; 0 when current.",
           (double)st->lag_ms / 1e3);
    single(m, "cbshm_fleet_contact_age_seconds", "gauge",
           "Seconds since the agent's last successful exchange with Redis.",
           wall_ns > st->contact_wall_ns && st->contact_wall_ns != 0
               ? (double)(wall_ns - st->contact_wall_ns) / 1e9
               : 0);
    single(m, "cbshm_fleet_commands_applied_total", "counter", "Fleet commands this host applied.",
           (double)st->commands_applied);
    single(m, "cbshm_fleet_commands_failed_total", "counter",
           "Fleet commands this host answered with an error (no such breaker, expired, "
           "malformed).",
           (double)st->commands_failed);
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

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Reads the segment and prints it to out; became_owner is what
 * cbctl_become_segment_owner returned. Returns CBCTL_OK; CBCTL_FAILED
 * with cbshm_up 0 printed when the segment could not be read, or with the
 * readable breakers printed when a slot was corrupt (the message said).
 */
static int print_segment(struct cbctl *ctl, FILE *out, int became_owner)
{
    struct metrics m = {out, ctl->segment_final, NULL, 0, 0};
    struct collect c = {NULL, 0, 0};
    struct cbshm_info info;
    struct cbshm_fleet_status fleet;
    struct cbshm *shm = NULL;
    int rc;

    if (became_owner != CBCTL_CONTINUE) { /* the message is said */
        print_up(&m, 0);
        return CBCTL_FAILED;
    }
    if ((rc = cbshm_open(ctl->segment_final, CBSHM_READ_ONLY, &shm)) != 0) {
        cbctl_segment_error("metrics", ctl->segment_final, rc);
        print_up(&m, 0);
        return CBCTL_FAILED;
    }
    if ((rc = cbshm_info(shm, &info)) != 0) {
        cbctl_segment_error("metrics", ctl->segment_final, rc);
        cbshm_close(shm);
        print_up(&m, 0);
        return CBCTL_FAILED;
    }
    c.cap = info.capacity;
    /* A corrupt slot is left out: the other breakers' series still print,
       and the exit status says some are missing. */
    if ((c.all = calloc(c.cap ? c.cap : 1, sizeof *c.all)) == NULL ||
        ((rc = cbshm_foreach(shm, collect, &c)) != 0 && rc != CBSHM_ECORRUPT)) {
        cbctl_err("metrics: segment %s: %s", ctl->segment_final,
                  c.all == NULL || rc == CBSHM_ESTOPPED ? "out of memory" : cbshm_strerror(rc));
        free(c.all);
        cbshm_close(shm);
        print_up(&m, 0);
        return CBCTL_FAILED;
    }
    if (cbshm_fleet_status_get(shm, &fleet) != 0)
        fleet.agent_pid = 0;
    cbshm_close(shm);
    m.realtime_minus_monotonic_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
    m.all = c.all;
    m.n = c.n;
    print_up(&m, 1);
    print_metrics(&m, &info);
    print_fleet(&m, &fleet, clock_ns(CLOCK_REALTIME));
    free(c.all);
    if (rc == CBSHM_ECORRUPT) {
        cbctl_err("metrics: segment %s: %s", ctl->segment_final, cbctl_foreach_error(rc));
        return CBCTL_FAILED;
    }
    return CBCTL_OK;
}

/*
 * --output FILE: the metrics go to a temporary file beside FILE, which is
 * fsynced and renamed over it only once complete, so a reader sees the old
 * file or the new one, never half of either, and a failed write leaves
 * the old file and no temporary behind.
 *
 * Root's cbctl reads the segment in a child switched to the segment's
 * owner (privilege.c), and that user may not write FILE's directory. So
 * root creates the temporary file before the switch, the child writes it
 * through the descriptor it inherits and says in shared memory that it
 * wrote all of it, and root's process, after the child has exited,
 * renames it (or removes it). Renaming needs write access to the
 * directory at the time of the call: only root's process has it.
 */
struct output {
    const char *path;                            /* as given, for messages */
    int dir_fd;                                  /* FILE's directory */
    int fd;                                      /* the temporary file */
    char temp[NAME_MAX + 1], name[NAME_MAX + 1]; /* within dir_fd */
    pid_t creator;                               /* the process that created it */
    volatile int *written;                       /* shared with a switched child */
};

static struct output output;

static int output_error(const struct output *o, const char *what, int err)
{
    cbctl_err("metrics: --output %s: %s: %s", o->path, what, strerror(err));
    return CBCTL_FAILED;
}

/* Killed between create and rename (Ctrl-C, a timeout's SIGTERM): the
   temporary file goes with us. A file size limit makes write fail (EFBIG)
   instead of killing us, and that path removes it. Only SIGKILL leaves it. */
static void remove_temp_and_die(int sig)
{
    unlinkat(output.dir_fd, output.temp, 0);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void cleanup_on_signals(const struct output *o)
{
    static const int fatal[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE};
    struct sigaction sa;

    if (o != &output)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_temp_and_die;
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

static int output_open(struct output *o, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    char dir[PATH_MAX];
    unsigned n = 0;

    o->path = path;
    o->dir_fd = o->fd = -1;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
        strlen(base) > NAME_MAX) {
        cbctl_err("metrics: --output wants a file name, got '%s'", path);
        return CBCTL_USAGE;
    }
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if ((size_t)(slash - path) >= sizeof dir)
        return output_error(o, "its directory", ENAMETOOLONG);
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    snprintf(o->name, sizeof o->name, "%s", base);
    if ((o->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return output_error(o, "its directory", errno);
    /* A dot file that does not end in .prom: the textfile collector
       reads *.prom only. Created with 0666 less the umask, as `>` does.
       Its suffix is random: in a directory others may write, a name they
       could guess they could take first, and the write would fail. */
    do {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint64_t)getpid() << 16 ^ n;
        snprintf(o->temp, sizeof o->temp, ".%.200s.%016llx", base, (unsigned long long)r);
        o->fd =
            openat(o->dir_fd, o->temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    } while (o->fd < 0 && errno == EEXIST && ++n < 100);
    if (o->fd < 0) {
        int err = errno;
        close(o->dir_fd);
        return output_error(o, "cannot create a temporary file beside it", err);
    }
    o->written =
        mmap(NULL, sizeof *o->written, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (o->written == MAP_FAILED) {
        int err = errno;
        unlinkat(o->dir_fd, o->temp, 0);
        close(o->fd);
        close(o->dir_fd);
        return output_error(o, "shared memory", err);
    }
    *o->written = 0;
    o->creator = getpid();
    cleanup_on_signals(o);
    return CBCTL_CONTINUE;
}

/* In the process that created the file: complete, it replaces FILE;
   else it is removed. Returns CBCTL_OK or CBCTL_FAILED (said). */
static int output_commit(struct output *o, int complete)
{
    int rc = CBCTL_OK;

    if (!complete)
        rc = CBCTL_FAILED;
    else if (fsync(o->fd) != 0)
        rc = output_error(o, "fsync", errno);
    else if (renameat(o->dir_fd, o->temp, o->dir_fd, o->name) != 0)
        rc = output_error(o, "cannot rename the temporary file over it", errno);
    else
        fsync(o->dir_fd); /* the rename itself on disk; nothing to undo if not */
    if (rc != CBCTL_OK)
        unlinkat(o->dir_fd, o->temp, 0);
    close(o->fd);
    close(o->dir_fd);
    return rc;
}

/* Root's process, once the switched child has exited with `code`. */
static int output_after_child(void *ctx, int code)
{
    struct output *o = ctx;

    if (output_commit(o, *o->written) != CBCTL_OK && code == CBCTL_OK)
        return CBCTL_FAILED;
    return code;
}

/* The process that wrote the file: the creator renames it (or removes
   it); a switched child leaves that to root's process. */
static int output_finish(struct output *o, int complete, int rc)
{
    if (getpid() != o->creator) {
        *o->written = complete;
        return complete ? rc : CBCTL_FAILED;
    }
    if (output_commit(o, complete) != CBCTL_OK)
        return CBCTL_FAILED;
    return rc;
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct cbshm_peek peek;
    FILE *out;
    int rc, became_owner, complete, fd;

    (void)shm; /* CBCTL_ATTACH_NONE: opened here, after --output */
    /* A name that can never be a segment is the caller's mistake, not a
       segment that is down: no cbshm_up for it, and the old file stays. */
    if (cbshm_peek(ctl->segment_final, &peek) == CBSHM_EBADNAME) {
        cbctl_segment_error("metrics", ctl->segment_final, CBSHM_EBADNAME);
        return CBCTL_FAILED;
    }
    if (args->output != NULL) {
        if ((rc = output_open(&output, args->output)) != CBCTL_CONTINUE)
            return rc;
        cbctl_after_child(output_after_child, &output);
    }
    /* As root, as the segment's owner (privilege.c), once the file is
       created; read-only, so a member of its group may read it too. */
    became_owner = cbctl_become_segment_owner("metrics", ctl->segment_final);
    if (args->output == NULL) {
        rc = print_segment(ctl, stdout, became_owner);
        return fflush(stdout) != 0 ? CBCTL_FAILED : rc;
    }
    if (getpid() != output.creator) { /* the owner writes the file, never its directory */
        close(output.dir_fd);
        output.dir_fd = -1;
    }
    if ((fd = dup(output.fd)) < 0 || (out = fdopen(fd, "w")) == NULL) {
        output_error(&output, "write", errno);
        if (fd >= 0)
            close(fd);
        return output_finish(&output, 0, CBCTL_FAILED);
    }
    rc = print_segment(ctl, out, became_owner);
    complete = fflush(out) == 0 && !ferror(out);
    if (fclose(out) != 0)
        complete = 0;
    if (!complete)
        output_error(&output, "write", errno);
    return output_finish(&output, complete, rc);
}

static const struct cbctl_option options[] = {
    CBCTL_STRING("output", 'o', "FILE", output, 0,
                 "write FILE atomically (beside it, then renamed), not stdout"),
    CBCTL_OPTIONS_END,
};

const struct cbctl_cmd cbctl_cmd_metrics = {
    .name = "metrics",
    .summary = "every breaker in the Prometheus text format",
    .options = options,
    .attach = CBCTL_ATTACH_NONE,
    .names = CBCTL_NAMES_NONE,
    .run = run,
};
