/* SPDX-License-Identifier: MIT */
/*
 * How cbctl shows a breaker: names of states and modes, the JSON object
 * (jansson), the human-readable `show` block, durations.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *cbctl_foreach_error(int rc)
{
    return rc == CBSHM_ECORRUPT ? "segment is corrupt: a breaker slot holds an invalid name and "
                                  "was left out (cbctl check names the slot)"
                                : cbshm_strerror(rc);
}

void cbctl_format_ms(char *buf, size_t size, uint64_t ms)
{
    cbshm_setting_format(cbshm_setting_find("open_timeout"), ms, buf, size);
}

void cbctl_format_duration(char *buf, size_t size, uint64_t ms)
{
    static const struct {
        uint64_t ms;
        char unit;
    } units[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
    size_t u = 0;

    if (ms < 1000) {
        snprintf(buf, size, "%" PRIu64 "ms", ms);
        return;
    }
    /* Under 10 s a tenth still matters (an open period of 2.5s). */
    if (ms < 10000) {
        if (ms / 100 % 10 != 0)
            snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, ms / 100 % 10);
        else
            snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
        return;
    }
    if (ms < 60000) {
        snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
        return;
    }
    while (ms < units[u].ms)
        u++;
    if (ms % units[u].ms / units[u + 1].ms != 0)
        snprintf(buf, size, "%" PRIu64 "%c%" PRIu64 "%c", ms / units[u].ms, units[u].unit,
                 ms % units[u].ms / units[u + 1].ms, units[u + 1].unit);
    else
        snprintf(buf, size, "%" PRIu64 "%c", ms / units[u].ms, units[u].unit);
}

/* The snapshot's own "now": when it was taken. */
static uint64_t snapshot_now(const struct cbshm_snapshot *s)
{
    return s->last_transition_ns + s->time_in_state_ns;
}

int cbctl_probe_due(const struct cbshm_snapshot *s)
{
    /* The hot path's own test (breaker.c): open in normal mode and
       now >= open_until_ns sends the next call through as a probe. */
    return s->mode == CBSHM_MODE_NORMAL && s->state == CBSHM_STATE_OPEN &&
           s->open_until_ns <= snapshot_now(s) && s->probes_in_flight == 0;
}

const char *cbctl_state_label(const struct cbshm_snapshot *s)
{
    return cbctl_probe_due(s) ? "open, probe due" : cbctl_state_name(s->state);
}

static uint64_t open_remaining_ms(const struct cbshm_snapshot *s)
{
    uint64_t now = snapshot_now(s);

    if (s->state != CBSHM_STATE_OPEN || s->open_until_ns <= now)
        return 0;
    return (s->open_until_ns - now) / 1000000u;
}

uint64_t cbctl_mode_remaining_ms(const struct cbshm_snapshot *s)
{
    uint64_t now = snapshot_now(s);

    if (s->mode == CBSHM_MODE_NORMAL || s->mode_until_ns <= now)
        return 0;
    return (s->mode_until_ns - now) / 1000000u;
}

const char *cbctl_mode_cause(const struct cbshm_snapshot *s)
{
    switch (s->mode_cause) {
    case CBSHM_CAUSE_OPERATOR:
    case CBSHM_CAUSE_MODE_EXPIRED:
    case CBSHM_CAUSE_FLEET:
        return cbshm_event_cause_name((int)s->mode_cause);
    default:
        return "none"; /* the mode never changed */
    }
}

/* " by the fleet" after a mode the fleet trip forced, else "". */
static const char *by_fleet(const struct cbshm_snapshot *s)
{
    return s->mode != CBSHM_MODE_NORMAL && s->mode_cause == CBSHM_CAUSE_FLEET ? " by the fleet"
                                                                              : "";
}

/*
 * A breaker's JSON object is its name, state, mode and the cause of the
 * mode's last change, then every setting
 * of the settings table under its JSON key, then its figures. field()
 * gives field i of that list, so that building an object and rewriting
 * one (cbctl_json_row) walk the same list.
 */
enum field_kind { F_STRING, F_INT, F_REAL, F_BOOL };

struct field {
    const char *key;
    enum field_kind kind;
    const char *string;
    json_int_t integer;
    double real;
};

static const char *const figure_keys[] = {
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
    "slow_calls",
    "window_calls",
    "window_failures",
    "window_slow_calls",
    "window_failure_rate",
    "window_slow_rate",
    "failing_workers",
    "current_open_ms",
    "mode_remaining_ms",
    "bulkhead_limit",
    "bulkhead_in_flight",
    "bulkhead_rejections",
    "bulkhead_reclaimed",
    "bulkhead_waits",
};
/* Yes-or-no figures, after the numbers: JSON true or false. */
static const char *const flag_keys[] = {
    "probe_due",
};
#define N_HEAD    4
#define N_FIGURES (sizeof figure_keys / sizeof figure_keys[0])
#define N_FLAGS   (sizeof flag_keys / sizeof flag_keys[0])

static size_t n_settings(void)
{
    size_t n = 0;

    while (cbshm_setting_at(n) != NULL)
        n++;
    return n;
}

static json_int_t figure(const struct cbshm_snapshot *s, size_t i)
{
    const uint64_t v[N_FIGURES] = {
        s->requests,
        s->successes,
        s->failures,
        s->ignored,
        s->rejections,
        s->trips,
        s->consecutive_failures,
        s->half_open_successes,
        s->probes_in_flight,
        s->probes_reclaimed,
        s->time_in_state_ns / 1000000u,
        open_remaining_ms(s),
        s->index,
        s->slow_calls,
        s->window_calls,
        s->window_failures,
        s->window_slow_calls,
        s->window_failure_rate,
        s->window_slow_rate,
        s->failing_workers,
        s->current_open_ms,
        cbctl_mode_remaining_ms(s),
        s->bulkhead_limit,
        s->bulkhead_in_flight,
        s->bulkhead_rejections,
        s->bulkhead_reclaimed,
        s->bulkhead_waits,
    };
    return (json_int_t)v[i];
}

/* Field i of breaker s's object; 0 past the last. */
static int field(const struct cbshm_snapshot *s, size_t i, size_t settings, struct field *f)
{
    const struct cbshm_setting *d;
    uint64_t v;

    memset(f, 0, sizeof *f);
    if (i < N_HEAD) {
        static const char *const keys[N_HEAD] = {"name", "state", "mode", "mode_cause"};
        f->key = keys[i];
        f->string = i == 0   ? s->name
                    : i == 1 ? cbctl_state_name(s->state)
                    : i == 2 ? cbctl_mode_name(s->mode)
                             : cbctl_mode_cause(s);
        return 1;
    }
    i -= N_HEAD;
    if (i < settings) {
        d = cbshm_setting_at(i);
        v = cbshm_setting_get(&s->settings, d);
        f->key = d->json_key;
        if (d->type == CBSHM_SETTING_CHOICE) {
            f->string = v <= d->max ? d->choices[v] : "invalid";
        } else if (d->type == CBSHM_SETTING_MULTIPLIER) {
            f->kind = F_REAL;
            f->real = (double)v / 100.0;
        } else if (d->type == CBSHM_SETTING_HOSTS && (v & CBSHM_FLEET_SHARE)) {
            /* A share is a number below 1 (1.0 at most), a count an integer. */
            f->kind = F_REAL;
            f->real = (double)(v & ~(uint64_t)CBSHM_FLEET_SHARE) / 100.0;
        } else {
            f->kind = F_INT;
            f->integer = (json_int_t)v;
        }
        return 1;
    }
    i -= settings;
    if (i < N_FIGURES) {
        f->key = figure_keys[i];
        f->kind = F_INT;
        f->integer = figure(s, i);
        return 1;
    }
    i -= N_FIGURES;
    if (i >= N_FLAGS)
        return 0;
    f->key = flag_keys[i];
    f->kind = F_BOOL;
    f->integer = cbctl_probe_due(s);
    return 1;
}

static json_t *field_json(const struct field *f)
{
    switch (f->kind) {
    case F_INT:
        return json_integer(f->integer);
    case F_REAL:
        return json_real(f->real);
    case F_BOOL:
        return json_boolean(f->integer);
    default:
        return json_string(f->string);
    }
}

json_t *cbctl_snapshot_json(const struct cbshm_snapshot *s)
{
    size_t settings = n_settings();
    json_t *o = json_object();
    struct field f;
    int bad = o == NULL;

    for (size_t i = 0; !bad && field(s, i, settings, &f); i++)
        bad = json_object_set_new(o, f.key, field_json(&f)) != 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

const char *cbctl_json_row(struct cbctl_json_row *w, const struct cbshm_snapshot *s)
{
    size_t settings = n_settings(), need;
    struct field f;

    if (w->obj == NULL) {
        w->n = N_HEAD + settings + N_FIGURES + N_FLAGS;
        if ((w->values = calloc(w->n, sizeof *w->values)) == NULL ||
            (w->obj = cbctl_snapshot_json(s)) == NULL)
            return NULL;
        /* Keep the value nodes: later rows rewrite them without lookups. */
        for (size_t i = 0; field(s, i, settings, &f); i++)
            w->values[i] = json_object_get(w->obj, f.key);
    } else {
        for (size_t i = 0; field(s, i, settings, &f); i++) {
            if (f.kind == F_INT)
                json_integer_set(w->values[i], f.integer);
            else if (f.kind == F_REAL)
                json_real_set(w->values[i], f.real);
            else if (f.kind == F_BOOL) {
                /* true and false are shared constants, not nodes to rewrite. */
                if (json_is_true(w->values[i]) != (f.integer != 0) &&
                    json_object_set_new(w->obj, f.key, json_boolean(f.integer)) != 0)
                    return NULL;
                w->values[i] = json_object_get(w->obj, f.key);
            } else if (json_string_set(w->values[i], f.string) != 0)
                return NULL;
        }
    }
    while ((need = json_dumpb(w->obj, w->buf, w->cap, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)) >=
           w->cap) {
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
    free(w->values);
    free(w->buf);
}

static int collect_row(void *ctx, const struct cbshm_snapshot *s)
{
    struct cbctl_rows *rows = ctx;

    /* The capacity is fixed for a segment's life: a full array is a
       slot the walk cannot have, so it stops (CBSHM_ESTOPPED). */
    if (rows->n == rows->cap)
        return -1;
    rows->all[rows->n++] = *s;
    return 0;
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
    /* ASCII only: a name never reaches a terminal as anything but text. */
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(doc);
    rc = text != NULL && fputs(text, stdout) != EOF && fputc('\n', stdout) != EOF ? 0 : -1;
    free(text);
    if (rc != 0) {
        cbctl_err("cannot write JSON to stdout");
        return CBCTL_FAILED;
    }
    return CBCTL_OK;
}

/* `show`: state and mode, every setting that applies to this breaker as
   the YAML would write it, then the window and the counters. */
void cbctl_print_show(const struct cbshm_snapshot *s)
{
    const struct cbshm_setting *d;
    char value[32], label[40], name[CBCTL_SAFE_MAX];

    cbctl_format_duration(value, sizeof value, s->time_in_state_ns / 1000000u);
    printf("name:                 %s\n", cbctl_safe(s->name, name, sizeof name));
    printf("state:                %s (for %s)\n", cbctl_state_label(s), value);
    if (s->state == CBSHM_STATE_OPEN && open_remaining_ms(s) > 0) {
        cbctl_format_duration(value, sizeof value, open_remaining_ms(s));
        printf("open for another:     %s\n", value);
    }
    if (cbctl_mode_remaining_ms(s) > 0) {
        cbctl_format_duration(value, sizeof value, cbctl_mode_remaining_ms(s));
        printf("mode:                 %s%s, for another %s\n", cbctl_mode_name(s->mode),
               by_fleet(s), value);
    } else {
        printf("mode:                 %s%s\n", cbctl_mode_name(s->mode), by_fleet(s));
    }
    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
        uint64_t v = cbshm_setting_get(&s->settings, d);
        if (!cbshm_setting_applies(d, &s->settings))
            continue;
        cbshm_setting_format(d, v, value, sizeof value);
        snprintf(label, sizeof label, "%s:", d->key);
        /* A count and a share read alike bare ("2", "34%"): say which. */
        if (d->type == CBSHM_SETTING_HOSTS)
            printf("%-21s %s%s\n", label, value,
                   v == 0                  ? " (off)"
                   : v & CBSHM_FLEET_SHARE ? " of the live hosts"
                   : v == 1                ? " host"
                                           : " hosts");
        else
            printf("%-21s %s\n", label, value);
    }
    cbctl_format_duration(value, sizeof value, s->current_open_ms);
    printf("open period now:      %s\n", value);
    printf("window now:           %" PRIu64 " calls, %" PRIu64 " failures (%u%%), %" PRIu64
           " slow (%u%%), %u failing workers\n",
           s->window_calls, s->window_failures, s->window_failure_rate, s->window_slow_calls,
           s->window_slow_rate, s->failing_workers);
    if (s->bulkhead_limit != 0)
        printf("bulkhead:             %u of %u in flight, %" PRIu64 " rejected, %" PRIu64
               " reclaimed, %" PRIu64 " waited\n",
               s->bulkhead_in_flight, s->bulkhead_limit, s->bulkhead_rejections,
               s->bulkhead_reclaimed, s->bulkhead_waits);
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

/*
 * The table list and watch print: one header, one row per breaker, the
 * same columns in both. What trips the breaker is shown against its
 * limit: the failure run (consecutive policy), or the window's failure
 * rate and the window it is measured over (rate policy).
 */
#define ROW_FORMAT "%-32s %s%-15s%s %-13s %-16s %10s %10s %10s %6s"

int cbctl_table_has_quorum(const struct cbshm_snapshot *all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (all[i].settings.min_failing_workers > 1)
            return 1;
    return 0;
}

int cbctl_table_has_bulkhead(const struct cbshm_snapshot *all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (all[i].bulkhead_limit != 0)
            return 1;
    return 0;
}

void cbctl_table_header(const struct cbctl_table *t)
{
    printf(ROW_FORMAT, "NAME", "", "STATE", "", "MODE", "FAILS/LIMIT", "REQUESTS", "FAILURES",
           "REJECTED", "TRIPS");
    if (t->quorum)
        printf(" %-7s", "WORKERS");
    if (t->bulkhead)
        printf(" %-8s", "BULKHEAD");
    if (t->rates)
        printf(" %8s %8s", "REQ/S", "FAIL/S");
    puts(" IN-STATE");
}

static void format_limit(char *buf, size_t size, const struct cbshm_snapshot *s)
{
    char window[32];

    if (s->settings.policy != CBSHM_POLICY_RATE) {
        snprintf(buf, size, "%u/%u", s->consecutive_failures, s->settings.failure_threshold);
        return;
    }
    if (s->settings.window_type == CBSHM_WINDOW_TIME) {
        cbctl_format_duration(window, sizeof window, s->settings.window_duration_ms);
        snprintf(buf, size, "%u%%/%u%% in %s", s->window_failure_rate, s->settings.failure_rate,
                 window);
    } else {
        snprintf(buf, size, "%u%%/%u%% of %u", s->window_failure_rate, s->settings.failure_rate,
                 s->settings.window_size);
    }
}

static void format_rate(char *buf, size_t size, const double *rate)
{
    if (rate == NULL)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.1f", *rate);
}

void cbctl_table_row(const struct cbctl_table *t, const struct cbshm_snapshot *s,
                     const double rates[2])
{
    const char *on = "", *off = "";
    char name[CBCTL_SAFE_MAX], limit[48], requests[24], failures[24], rejected[24], trips[24];
    char workers[24], bulkhead[24], per_s[2][24], in_state[32], mode_left[32];

    if (t->colour) {
        on = s->state == CBSHM_STATE_OPEN        ? "\033[1;31m"
             : s->state == CBSHM_STATE_HALF_OPEN ? "\033[1;33m"
                                                 : "\033[32m";
        off = "\033[0m";
    }
    format_limit(limit, sizeof limit, s);
    snprintf(requests, sizeof requests, "%" PRIu64, s->requests);
    snprintf(failures, sizeof failures, "%" PRIu64, s->failures);
    snprintf(rejected, sizeof rejected, "%" PRIu64, s->rejections);
    snprintf(trips, sizeof trips, "%" PRIu64, s->trips);
    printf(ROW_FORMAT, cbctl_safe(s->name, name, sizeof name), on, cbctl_state_label(s), off,
           cbctl_mode_name(s->mode), limit, requests, failures, rejected, trips);
    if (t->quorum) {
        /* Failing workers against the quorum, where one is configured. */
        if (s->settings.min_failing_workers > 1)
            snprintf(workers, sizeof workers, "%u/%u", s->failing_workers,
                     s->settings.min_failing_workers);
        else
            snprintf(workers, sizeof workers, "-");
        printf(" %-7s", workers);
    }
    if (t->bulkhead) {
        /* Calls in flight against the limit in force, where there is one. */
        if (s->bulkhead_limit != 0)
            snprintf(bulkhead, sizeof bulkhead, "%u/%u", s->bulkhead_in_flight, s->bulkhead_limit);
        else
            snprintf(bulkhead, sizeof bulkhead, "-");
        printf(" %-8s", bulkhead);
    }
    if (t->rates) {
        format_rate(per_s[0], sizeof per_s[0], rates ? &rates[0] : NULL);
        format_rate(per_s[1], sizeof per_s[1], rates ? &rates[1] : NULL);
        printf(" %8s %8s", per_s[0], per_s[1]);
    }
    cbctl_format_duration(in_state, sizeof in_state, s->time_in_state_ns / 1000000u);
    printf(" %s", in_state);
    /* A timed mode says when it ends, after the columns. */
    if (cbctl_mode_remaining_ms(s) > 0) {
        cbctl_format_duration(mode_left, sizeof mode_left, cbctl_mode_remaining_ms(s));
        printf("  (%s%s for another %s)", cbctl_mode_name(s->mode), by_fleet(s), mode_left);
    }
    putchar('\n');
}

int cbctl_table_collect(struct cbshm *shm, struct cbctl_rows *rows)
{
    struct cbshm_info info;

    if (rows->all == NULL) {
        cbshm_info(shm, &info);
        rows->cap = info.capacity ? info.capacity : 1;
        if ((rows->all = calloc(rows->cap, sizeof *rows->all)) == NULL)
            return -ENOMEM;
    }
    rows->n = 0;
    return cbshm_foreach(shm, collect_row, rows);
}

int cbctl_config_load(const char *what, const char *file, struct cbshm_config **out)
{
    struct cbshm_diag diag;
    int rc;

    memset(&diag, 0, sizeof diag);
    if ((rc = cbshm_config_load_file(file, out, &diag)) == 0)
        return CBCTL_CONTINUE;
    if (rc == CBSHM_ECONFIG) {
        /* The message may quote the file's bytes: escaped, like the path. */
        cbctl_put_safe(stderr, diag.file);
        fprintf(stderr, ":%u:%u: ", diag.line, diag.column);
        cbctl_put_safe(stderr, diag.key);
        fputs(diag.key[0] ? ": " : "", stderr);
        cbctl_put_safe(stderr, diag.message);
        fputc('\n', stderr);
        return CBCTL_CONFIG;
    }
    cbctl_err("%s: %s: %s", what, file, diag.message[0] ? diag.message : cbshm_strerror(rc));
    return CBCTL_FAILED;
}
