/* SPDX-License-Identifier: MIT */
/*
 * The prefork demo: what a shared breaker buys a server that forks workers.
 *
 * It applies a YAML file to a segment of its own, starts a real TCP
 * downstream on 127.0.0.1, forks 4 workers that call it through
 * cbshm_execute(), takes the downstream down and brings it back, and
 * prints a timeline: the trip after T failures host-wide, every worker
 * failing fast, the probes after each open period, the recovery. It ends
 * with one summary line and removes its segment.
 *
 *   usage: prefork_demo CONFIG.yaml [BREAKER]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cbshm.h"

#define WORKERS          4
#define CALL_INTERVAL_MS 20
#define DOWN_AT_MS       1000
#define MAX_PERIODS      64

/* What the processes share, in an anonymous shared mapping. */
struct shared {
    _Atomic int stop;
    _Atomic int down;                /* the downstream is down now */
    _Atomic int calls_while_down;    /* failed calls before the first trip */
    _Atomic int probes[MAX_PERIODS]; /* calls that reached it, per open period */
    _Atomic int calls_ok, calls_failed, rejected;
};

static struct shared *sh;
static struct timespec t0;
static char segment[64];

static double elapsed(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

/* One line, one write(): lines from different processes never interleave. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%7.3fs  ", elapsed());
    va_list ap;

    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(1, line, (size_t)n) < 0)
        return;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- The downstream: a TCP server the demo switches on and off -------- */

static int listen_on(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
    socklen_t len = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("demo: downstream");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Serves "OK\n" to every connection; 'd' on ctl closes the listener (calls
   are refused), 'u' opens it again on the same port. */
static void downstream(int ctl, uint16_t port)
{
    int lfd = listen_on(&port);

    for (;;) {
        struct pollfd p[2] = {{ctl, POLLIN, 0}, {lfd, POLLIN, 0}};
        char c;

        if (poll(p, lfd >= 0 ? 2 : 1, -1) < 0)
            continue;
        if (p[0].revents) {
            if (read(ctl, &c, 1) != 1)
                _exit(0);
            if (c == 'd' && lfd >= 0) {
                close(lfd);
                lfd = -1;
            } else if (c == 'u' && lfd < 0) {
                lfd = listen_on(&port);
            }
            continue;
        }
        if (lfd >= 0 && (p[1].revents & POLLIN)) {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0) {
                if (write(cfd, "OK\n", 3) < 0)
                    perror("demo: downstream write");
                close(cfd);
            }
        }
    }
}

/* ---- Workers -------------------------------------------------------------- */

struct call {
    uint16_t port;
    int err;
};

/* The protected call: connect, read the answer. */
static enum cbshm_outcome call_downstream(void *arg)
{
    struct call *c = arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->port)};
    char buf[8];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    enum cbshm_outcome o = CBSHM_FAILURE;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->err = 0;
    if (fd < 0) {
        c->err = errno;
        return CBSHM_FAILURE;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        c->err = errno;
    else if (read(fd, buf, sizeof buf) >= 2 && memcmp(buf, "OK", 2) == 0)
        o = CBSHM_SUCCESS;
    else
        c->err = EPROTO;
    close(fd);
    return o;
}

static void worker(int id, struct cbshm *shm, struct cbshm_breaker *b, uint16_t port)
{
    uint64_t told_rejected_in_trip = 0;

    while (!sh->stop) {
        struct cbshm_snapshot before;
        struct call c = {port, 0};
        int rc, probe;

        /* Whether this call, if admitted, is a probe: only a call admitted
           while the breaker is not closed can be one. */
        cbshm_snapshot(shm, cbshm_breaker_name(b), &before);
        probe = before.state != CBSHM_STATE_CLOSED;
        rc = cbshm_execute(b, call_downstream, &c);
        if (rc == CBSHM_EREJECTED) {
            sh->rejected++;
            if (told_rejected_in_trip != before.trips) {
                told_rejected_in_trip = before.trips;
                say("  worker %d: rejected at once, downstream not called", id);
            }
        } else if (rc != 0) {
            say("  worker %d: breaker problem: %s", id, cbshm_strerror(rc));
        } else if (c.err == 0) {
            sh->calls_ok++;
            if (probe)
                say("  worker %d: probe succeeded", id);
        } else {
            sh->calls_failed++;
            if (sh->down && probe && before.trips < MAX_PERIODS)
                sh->probes[before.trips]++;
            else if (sh->down && before.trips == 0)
                sh->calls_while_down++;
            say("  worker %d: %s failed: %s", id, probe ? "probe" : "call", strerror(c.err));
        }
        sleep_ms(CALL_INTERVAL_MS);
    }
    (void)shm;
    _exit(0);
}

/* ---- The master ----------------------------------------------------------- */

static void cleanup(int sig)
{
    cbshm_destroy(segment);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const char *state_name(enum cbshm_state s)
{
    return s == CBSHM_STATE_CLOSED ? "CLOSED" : s == CBSHM_STATE_OPEN ? "OPEN" : "HALF_OPEN";
}

int main(int argc, char **argv)
{
    char name[CBSHM_NAME_MAX + 1];
    struct cbshm_config *cfg;
    struct cbshm_diag d;
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s, last;
    struct cbshm_settings st;
    int ctl[2], rc, pids[WORKERS], server, up_at_ms, end_ms, max_probes = 0, ok;
    uint16_t port = 0;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CONFIG.yaml [BREAKER]\n", argv[0]);
        return 2;
    }
    if ((rc = cbshm_config_load_file(argv[1], &cfg, &d)) != 0) {
        fprintf(stderr, "%s:%u:%u: %s: %s\n", d.file, d.line, d.column, d.key, d.message);
        return 3;
    }
    if (cfg->n_breakers == 0) {
        fprintf(stderr, "demo: %s defines no breakers\n", argv[1]);
        return 3;
    }
    snprintf(name, sizeof name, "%s", argc == 3 ? argv[2] : cfg->breakers[0].name);
    snprintf(segment, sizeof segment, "/cbshm-demo-%d", (int)getpid());
    signal(SIGINT, cleanup);
    signal(SIGTERM, cleanup);
    /* The master provisions the breakers itself before it forks. */
    if ((rc = cbshm_apply(cfg, segment, 0, NULL, NULL, NULL)) != 0 ||
        (rc = cbshm_open(segment, 0, &shm)) != 0 || (rc = cbshm_breaker_get(shm, name, &b)) != 0) {
        fprintf(stderr, "demo: segment %s, breaker %s: %s\n", segment, name, cbshm_strerror(rc));
        cbshm_destroy(segment);
        return 1;
    }
    cbshm_config_free(cfg);
    cbshm_snapshot(shm, name, &s);
    st = s.settings;
    /* Down long enough for two failed probe rounds, then up for one more. */
    if (st.open_timeout_ms > 8000) {
        fprintf(stderr, "demo: open_timeout %llums is too long for a 30 s demo\n",
                (unsigned long long)st.open_timeout_ms);
        cbshm_destroy(segment);
        return 1;
    }

    /* Down long enough for two failed probe rounds, then up for one more. */
    up_at_ms = DOWN_AT_MS + (int)(2 * st.open_timeout_ms) + 500;
    end_ms = up_at_ms + (int)st.open_timeout_ms + 1000;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || pipe(ctl) != 0) {
        perror("demo");
        cbshm_destroy(segment);
        return 1;
    }
    {
        int fd = listen_on(&port); /* pick a free port, hand it to the server */
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((server = fork()) == 0) {
        close(ctl[1]);
        downstream(ctl[0], port);
    }
    close(ctl[0]);
    sleep_ms(50);
    say("demo: segment %s, breaker %s: failure_threshold %u, open_timeout %llums, "
        "half_open_max_calls %u",
        segment, name, st.failure_threshold, (unsigned long long)st.open_timeout_ms,
        st.half_open_max_calls);
    say("demo: downstream UP on 127.0.0.1:%u; forking %d workers (one call each per %d ms)", port,
        WORKERS, CALL_INTERVAL_MS);
    for (int w = 0; w < WORKERS; w++)
        if ((pids[w] = fork()) == 0)
            worker(w + 1, shm, b, port);

    last = s;
    for (int phase = 0; elapsed() * 1000 < end_ms;) {
        double ms = elapsed() * 1000;
        if (phase == 0 && ms >= DOWN_AT_MS) {
            sh->down = 1;
            if (write(ctl[1], "d", 1) != 1)
                perror("demo");
            say("demo: downstream DOWN");
            phase = 1;
        } else if (phase == 1 && ms >= up_at_ms) {
            if (write(ctl[1], "u", 1) != 1)
                perror("demo");
            sh->down = 0;
            say("demo: downstream UP again");
            phase = 2;
        }
        cbshm_snapshot(shm, name, &s);
        if (s.state != last.state || s.trips != last.trips) {
            if (s.state == CBSHM_STATE_OPEN)
                say("breaker %s: %s (trip %llu, %llu failures host-wide so far); "
                    "rejecting for %llums",
                    name, state_name(s.state), (unsigned long long)s.trips,
                    (unsigned long long)s.failures, (unsigned long long)st.open_timeout_ms);
            else
                say("breaker %s: %s", name, state_name(s.state));
        }
        last = s;
        sleep_ms(2);
    }
    sh->stop = 1;
    for (int w = 0; w < WORKERS; w++)
        waitpid(pids[w], NULL, 0);
    close(ctl[1]);
    waitpid(server, NULL, 0);

    cbshm_snapshot(shm, name, &s);
    for (int i = 1; i < MAX_PERIODS; i++)
        if (sh->probes[i] > max_probes)
            max_probes = sh->probes[i];
    say("demo: %d calls succeeded, %d failed, %d rejected without calling; "
        "breaker: %llu requests, %llu trips",
        (int)sh->calls_ok, (int)sh->calls_failed, (int)sh->rejected, (unsigned long long)s.requests,
        (unsigned long long)s.trips);
    ok = s.state == CBSHM_STATE_CLOSED && s.trips >= 1;
    cbshm_breaker_release(b);
    cbshm_close(shm);
    cbshm_destroy(segment);
    printf("demo: workers=%d threshold=%u calls_while_down=%d per_process_would_be=%u "
           "probes_per_open_period=%d\n",
           WORKERS, st.failure_threshold, (int)sh->calls_while_down, WORKERS * st.failure_threshold,
           max_probes);
    if (!ok)
        fprintf(stderr, "demo: the breaker did not trip and recover as expected\n");
    return ok ? 0 : 1;
}
