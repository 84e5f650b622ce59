/*
 * cbctl watch [--interval MS]: a live table of every breaker, redrawn
 * each interval. On a terminal the screen is redrawn in place, states are
 * coloured (closed green, half-open yellow, open red) and `q` quits; Ctrl-C
 * or SIGTERM quit too, and the terminal is always given back as it was.
 * Not on a terminal, it prints one plain table per interval.
 */
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
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

struct frame {
    int colour;
    unsigned rows;
};

static int row(void *ctx, const struct cbshm_snapshot *s)
{
    struct frame *f = ctx;
    const char *on = "", *off = "";
    char in_state[32], name[CBCTL_SAFE_MAX];

    if (f->colour) {
        on = s->state == CBSHM_STATE_OPEN        ? "\033[1;31m"
             : s->state == CBSHM_STATE_HALF_OPEN ? "\033[1;33m"
                                                 : "\033[32m";
        off = "\033[0m";
    }
    cbctl_format_ms(in_state, sizeof in_state, s->time_in_state_ns / 1000000u);
    printf("%-32s %s%-9s%s %-13s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %6" PRIu64 " %5u%% %s\n",
           cbctl_safe(s->name, name, sizeof name), on, cbctl_state_name(s->state), off,
           cbctl_mode_name(s->mode), s->requests, s->failures, s->rejections, s->trips,
           s->window_failure_rate, in_state);
    f->rows++;
    return 0;
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    long interval_ms = args->interval_ms, count = args->count;
    int err, tty, rc = CBCTL_OK;

    tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (tty)
        raw_terminal();
    for (long frames = 0; !quit && (count == 0 || frames < count); frames++) {
        struct frame f = {tty, 0};
        struct pollfd key = {STDIN_FILENO, POLLIN, 0};
        char ch;

        if (tty)
            fputs("\033[H\033[2J", stdout); /* home, clear */
        else if (frames > 0)
            putchar('\n');
        fputs("cbctl watch: segment ", stdout);
        cbctl_put_safe(stdout, ctl->segment_final);
        printf(", every %ldms%s\n\n", interval_ms, tty ? "; q quits" : "");
        printf("%-32s %-9s %-13s %10s %10s %10s %6s %6s %s\n", "NAME", "STATE", "MODE", "REQUESTS",
               "FAILURES", "REJECTED", "TRIPS", "FAIL%", "IN-STATE");
        if ((err = cbshm_foreach(shm, row, &f)) != 0) {
            cbctl_err("watch: segment %s: %s", ctl->segment_final, cbctl_foreach_error(err));
            rc = CBCTL_FAILED;
            break;
        }
        fflush(stdout);
        if (count != 0 && frames + 1 == count)
            break;
        /* Wait for the next frame, or a key on a terminal. */
        if (poll(tty ? &key : NULL, tty ? 1 : 0, (int)interval_ms) > 0 &&
            read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
            quit = 1;
    }
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
