/* SPDX-License-Identifier: MIT */
/*
 * cbctl watch [--interval MS]: a live table of every breaker, redrawn
 * each interval. On a terminal the screen is redrawn in place, states are
 * coloured (closed green, half-open yellow, open red) and `q` quits; Ctrl-C
 * or SIGTERM quit too, and the terminal is always given back as it was.
 * Not on a terminal, it prints one plain table per interval. The table is
 * list's, with requests and failures per second since the previous frame.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cbctl.h"

static volatile sig_atomic_t quit;
static struct termios saved;
static int raw;

static void on_signal(int sig)
{
    (void)sig;
    quit = 1;
}

static void restore_terminal(void)
{
    if (raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        fputs("\033[0m\033[?25h\n", stdout); /* colours off, cursor back */
        fflush(stdout);
        raw = 0;
    }
}

/* Keys without Enter, no echo; signals still work (ISIG kept). */
static void raw_terminal(void)
{
    struct termios t;

    if (tcgetattr(STDIN_FILENO, &saved) != 0)
        return;
    t = saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
        raw = 1;
        atexit(restore_terminal);
        fputs("\033[?25l", stdout); /* hide the cursor */
    }
}

/*
 * The previous frame's counters by slot, for the rates: a slot whose
 * generation changed holds another breaker (or one re-added), which has
 * no rate until the next frame.
 */
struct before {
    uint64_t *requests, *failures;
    uint32_t *generation;
    unsigned char *seen;
    size_t cap;
    uint64_t at_ns;
};

static int before_alloc(struct before *b, size_t cap)
{
    b->cap = cap;
    b->requests = calloc(cap, sizeof *b->requests);
    b->failures = calloc(cap, sizeof *b->failures);
    b->generation = calloc(cap, sizeof *b->generation);
    b->seen = calloc(cap, sizeof *b->seen);
    return b->requests && b->failures && b->generation && b->seen ? 0 : -ENOMEM;
}

static void before_free(struct before *b)
{
    free(b->requests);
    free(b->failures);
    free(b->generation);
    free(b->seen);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One frame's rows; rates against the previous frame, then it becomes
   the previous frame. */
static void print_rows(const struct cbctl_rows *rows, struct before *b, int colour)
{
    struct cbctl_table t = {.quorum = cbctl_table_has_quorum(rows->all, rows->n),
                            .bulkhead = cbctl_table_has_bulkhead(rows->all, rows->n),
                            .rates = 1,
                            .colour = colour};
    uint64_t at = now_ns();
    double seconds = b->at_ns != 0 && at > b->at_ns ? (double)(at - b->at_ns) / 1e9 : 0;

    cbctl_table_header(&t);
    for (size_t i = 0; i < rows->n; i++) {
        const struct cbshm_snapshot *s = &rows->all[i];
        size_t slot = s->index;
        double rates[2];
        int known = slot < b->cap && b->seen[slot] && b->generation[slot] == s->generation &&
                    seconds > 0 && s->requests >= b->requests[slot] &&
                    s->failures >= b->failures[slot];

        if (known) {
            rates[0] = (double)(s->requests - b->requests[slot]) / seconds;
            rates[1] = (double)(s->failures - b->failures[slot]) / seconds;
        }
        cbctl_table_row(&t, s, known ? rates : NULL);
    }
    memset(b->seen, 0, b->cap);
    for (size_t i = 0; i < rows->n; i++) {
        const struct cbshm_snapshot *s = &rows->all[i];
        if (s->index >= b->cap)
            continue;
        b->requests[s->index] = s->requests;
        b->failures[s->index] = s->failures;
        b->generation[s->index] = s->generation;
        b->seen[s->index] = 1;
    }
    b->at_ns = at;
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    long interval_ms = args->interval_ms, count = args->count;
    struct cbctl_rows rows = {NULL, 0, 0};
    struct before before = {NULL, NULL, NULL, NULL, 0, 0};
    int err, tty, rc = CBCTL_OK;

    tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (tty)
        raw_terminal();
    for (long frames = 0; !quit && (count == 0 || frames < count); frames++) {
        struct pollfd key = {STDIN_FILENO, POLLIN, 0};
        char ch;

        /* Read before drawing, so a frame is never half a table. A
           corrupt slot is left out of a frame that is still drawn. */
        err = cbctl_table_collect(shm, &rows);
        if ((err == 0 || err == CBSHM_ECORRUPT) && before.cap == 0 &&
            before_alloc(&before, rows.cap) != 0)
            err = -ENOMEM;
        if (err == 0 || err == CBSHM_ECORRUPT) {
            if (tty)
                fputs("\033[H\033[2J", stdout); /* home, clear */
            else if (frames > 0)
                putchar('\n');
            fputs("cbctl watch: segment ", stdout);
            cbctl_put_safe(stdout, ctl->segment_final);
            printf(", every %ldms%s\n\n", interval_ms, tty ? "; q quits" : "");
            print_rows(&rows, &before, tty);
            fflush(stdout);
        }
        if (err != 0) {
            cbctl_err("watch: segment %s: %s", ctl->segment_final,
                      err == CBSHM_ESTOPPED ? "the table changed size" : cbctl_foreach_error(err));
            rc = CBCTL_FAILED;
            break;
        }
        if (count != 0 && frames + 1 == count)
            break;
        /* Wait for the next frame, or a key on a terminal. */
        if (poll(tty ? &key : NULL, tty ? 1 : 0, (int)interval_ms) > 0 &&
            read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
            quit = 1;
    }
    free(rows.all);
    before_free(&before);
    restore_terminal();
    return rc;
}

static const struct cbctl_option options[] = {
    CBCTL_NUMBER("interval", 'i', "MS", interval_ms, 50, 3600000, 1000,
                 "redraw every MS milliseconds (default 1000)"),
    CBCTL_NUMBER("count", 'n', "N", count, 1, LONG_MAX, 0,
                 "stop after N frames (default: until q, Ctrl-C or SIGTERM)"),
    CBCTL_OPTIONS_END,
};

const struct cbctl_cmd cbctl_cmd_watch = {
    .name = "watch",
    .summary = "a live table of every breaker",
    .options = options,
    .attach = CBCTL_ATTACH_READ,
    .names = CBCTL_NAMES_NONE,
    .run = run,
};
