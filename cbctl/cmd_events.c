/* SPDX-License-Identifier: MIT */
/*
 * cbctl events [--follow] [--json] [--interval MS]: the segment's event
 * ring - every transition, mode change, reset and bulkhead change (full,
 * admitting again), with its wall-clock time (UTC), its cause and the
 * process that made it. --follow keeps printing new events until SIGINT
 * or SIGTERM; with --json it prints one JSON object per line, else one
 * JSON array.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cbctl.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static const char *kind_name(enum cbshm_event_kind k)
{
    switch (k) {
    case CBSHM_EVENT_MODE:
        return "mode";
    case CBSHM_EVENT_RESET:
        return "reset";
    case CBSHM_EVENT_BULKHEAD:
        return "bulkhead";
    default:
        return "state";
    }
}

/* enum cbshm_bulkhead_state; "invalid" for another number (the ring is
   as untrusted as the slots). */
static const char *bulkhead_state_name(int v)
{
    return v == CBSHM_BULKHEAD_ADMITTING ? "admitting"
           : v == CBSHM_BULKHEAD_FULL    ? "full"
                                         : "invalid";
}

static const char *side(const struct cbshm_event *e, int v)
{
    switch (e->kind) {
    case CBSHM_EVENT_MODE:
        return cbctl_mode_name((enum cbshm_mode)v);
    case CBSHM_EVENT_BULKHEAD:
        return bulkhead_state_name(v);
    default:
        return cbctl_state_name((enum cbshm_state)v);
    }
}

/* time_unix_ms: the wall-clock time, null for a record written by a
   library that did not stamp it (wall_ns 0). */
static json_t *event_json(const struct cbshm_event *e, uint64_t now)
{
    return json_pack(
        "{s:I, s:I, s:o, s:I, s:s, s:s, s:s, s:s, s:s, s:I}", "seq", (json_int_t)e->seq, "time_ns",
        (json_int_t)e->time_ns, "time_unix_ms",
        e->wall_ns != 0 ? json_integer((json_int_t)(e->wall_ns / 1000000u)) : json_null(), "age_ms",
        (json_int_t)(now > e->time_ns ? (now - e->time_ns) / 1000000u : 0), "breaker", e->name,
        "kind", kind_name(e->kind), "from", side(e, e->from), "to", side(e, e->to), "cause",
        cbshm_event_cause_name(e->cause), "pid", (json_int_t)e->pid);
}

/* 2026-12-01T12:18:21.123Z, or "-" where the record has no wall-clock time. */
static const char *iso_utc(uint64_t wall_ns, char *buf, size_t size)
{
    time_t sec = (time_t)(wall_ns / 1000000000u);
    struct tm tm;
    size_t n;

    if (wall_ns == 0 || gmtime_r(&sec, &tm) == NULL ||
        (n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) == 0)
        return "-";
    snprintf(buf + n, size - n, ".%03uZ", (unsigned)(wall_ns / 1000000u % 1000u));
    return buf;
}

static void print_line(const struct cbshm_event *e, uint64_t now)
{
    double age = now > e->time_ns ? (double)(now - e->time_ns) / 1e9 : 0;
    char name[CBCTL_SAFE_MAX], when[40];

    printf("%8" PRIu64 "  %-24s %9.3fs ago  %-32s %-6s %s -> %s  (%s, pid %u)\n", e->seq,
           iso_utc(e->wall_ns, when, sizeof when), age, cbctl_safe(e->name, name, sizeof name),
           kind_name(e->kind), side(e, e->from), side(e, e->to), cbshm_event_cause_name(e->cause),
           e->pid);
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct cbshm_event batch[64];
    json_t *arr = NULL;
    uint64_t cursor = 0, lost;
    long interval_ms = args->interval_ms;
    int follow = args->follow, json = args->json, rc = CBCTL_OK;
    size_t n;

    if (json && !follow && (arr = json_array()) == NULL) {
        cbctl_err("events: out of memory");
        return CBCTL_FAILED;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    do {
        struct timespec mono;
        uint64_t now;
        int err = cbshm_events_read(shm, &cursor, batch, sizeof batch / sizeof batch[0], &n, &lost);

        /* A record with a corrupt name was skipped; the others still print. */
        if (err == CBSHM_ECORRUPT) {
            cbctl_err("events: segment %s: segment is corrupt: an event record holds an invalid "
                      "breaker name and was left out",
                      ctl->segment_final);
            rc = CBCTL_FAILED;
        } else if (err != 0) {
            cbctl_err("events: segment %s: %s", ctl->segment_final, cbshm_strerror(err));
            rc = CBCTL_FAILED;
            break;
        }
        /* The clock the events were stamped with: CLOCK_MONOTONIC, fine
           (the library's coarse clock may be a tick behind them). */
        clock_gettime(CLOCK_MONOTONIC, &mono);
        now = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
        if (lost > 0)
            cbctl_err("events: %" PRIu64 " events were overwritten before they could be read",
                      lost);
        for (size_t i = 0; i < n; i++) {
            if (arr != NULL) {
                json_array_append_new(arr, event_json(&batch[i], now));
            } else if (json) {
                json_t *o = event_json(&batch[i], now);
                char *text =
                    o != NULL
                        ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)
                        : NULL;
                if (text != NULL)
                    puts(text);
                free(text);
                json_decref(o);
            } else {
                print_line(&batch[i], now);
            }
        }
        if (n == sizeof batch / sizeof batch[0])
            continue; /* more waiting */
        if (!follow)
            break;
        fflush(stdout);
        struct timespec pause = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    } while (!stop);
    if (arr != NULL && cbctl_print_json(arr) != CBCTL_OK)
        rc = CBCTL_FAILED;
    fflush(stdout);
    return rc;
}

static const struct cbctl_option options[] = {
    CBCTL_SWITCH("follow", 'f', follow, "keep printing new events until interrupted"),
    CBCTL_NUMBER("interval", 'i', "MS", interval_ms, 10, 60000, 200,
                 "how often --follow looks for new events (default 200)"),
    CBCTL_OPTIONS_END,
};

const struct cbctl_cmd cbctl_cmd_events = {
    .name = "events",
    .summary = "transitions, mode changes, resets, bulkhead changes, with causes",
    .options = options,
    .attach = CBCTL_ATTACH_READ,
    .names = CBCTL_NAMES_NONE,
    .json = "one JSON array; with --follow, one JSON object a line",
    .run = run,
};
