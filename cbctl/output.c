/*
 * How cbctl shows a breaker: names of states and modes, the JSON object
 * (jansson), the human-readable `show` block, durations.
 */
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

static uint64_t open_remaining_ms(const struct cbshm_snapshot *s)
{
    uint64_t now = s->last_transition_ns + s->time_in_state_ns;

    if (s->state != CBSHM_STATE_OPEN || s->open_until_ns <= now)
        return 0;
    return (s->open_until_ns - now) / 1000000u;
}

uint64_t cbctl_mode_remaining_ms(const struct cbshm_snapshot *s)
{
    uint64_t now = s->last_transition_ns + s->time_in_state_ns;

    if (s->mode == CBSHM_MODE_NORMAL || s->mode_until_ns <= now)
        return 0;
    return (s->mode_until_ns - now) / 1000000u;
}

/*
 * A breaker's JSON object is its name, state and mode, then every setting
 * of the settings table under its JSON key, then its figures. field()
 * gives field i of that list, so that building an object and rewriting
 * one (cbctl_json_row) walk the same list.
 */
enum field_kind { F_STRING, F_INT, F_REAL };

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
};
#define N_HEAD    3
#define N_FIGURES (sizeof figure_keys / sizeof figure_keys[0])

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
        static const char *const keys[N_HEAD] = {"name", "state", "mode"};
        f->key = keys[i];
        f->string = i == 0   ? s->name
                    : i == 1 ? cbctl_state_name(s->state)
                             : cbctl_mode_name(s->mode);
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
        } else {
            f->kind = F_INT;
            f->integer = (json_int_t)v;
        }
        return 1;
    }
    i -= settings;
    if (i >= N_FIGURES)
        return 0;
    f->key = figure_keys[i];
    f->kind = F_INT;
    f->integer = figure(s, i);
    return 1;
}

static json_t *field_json(const struct field *f)
{
    switch (f->kind) {
    case F_INT:
        return json_integer(f->integer);
    case F_REAL:
        return json_real(f->real);
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
        w->n = N_HEAD + settings + N_FIGURES;
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
            else if (json_string_set(w->values[i], f.string) != 0)
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

    cbctl_format_ms(value, sizeof value, s->time_in_state_ns / 1000000u);
    printf("name:                 %s\n", cbctl_safe(s->name, name, sizeof name));
    printf("state:                %s (for %s)\n", cbctl_state_name(s->state), value);
    if (s->state == CBSHM_STATE_OPEN)
        printf("open for another:     %" PRIu64 "ms\n", open_remaining_ms(s));
    if (cbctl_mode_remaining_ms(s) > 0) {
        cbctl_format_ms(value, sizeof value, cbctl_mode_remaining_ms(s));
        printf("mode:                 %s, for another %s\n", cbctl_mode_name(s->mode), value);
    } else {
        printf("mode:                 %s\n", cbctl_mode_name(s->mode));
    }
    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
        if (!cbshm_setting_applies(d, &s->settings))
            continue;
        cbshm_setting_format(d, cbshm_setting_get(&s->settings, d), value, sizeof value);
        snprintf(label, sizeof label, "%s:", d->key);
        printf("%-21s %s\n", label, value);
    }
    cbctl_format_ms(value, sizeof value, s->current_open_ms);
    printf("open period now:      %s\n", value);
    printf("window now:           %" PRIu64 " calls, %" PRIu64 " failures (%u%%), %" PRIu64
           " slow (%u%%), %u failing workers\n",
           s->window_calls, s->window_failures, s->window_failure_rate, s->window_slow_calls,
           s->window_slow_rate, s->failing_workers);
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
