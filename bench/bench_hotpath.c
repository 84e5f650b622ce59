/* SPDX-License-Identifier: MIT */
/*
 * bench_hotpath: nanoseconds per protected no-op call, per worker, for
 * libcbshm and, in the same run, for the baselines it must beat:
 *
 *   - a bare indirect call (the floor);
 *   - the one-mutex design from the pattern write-up, in shared memory:
 *     lock, check, unlock, call, lock, update, unlock on a robust
 *     process-shared mutex (one_mutex.c); for the bulkhead rows, the same
 *     with a count of calls in flight checked and kept under that mutex.
 *
 * Every figure is measured with W forked workers calling at once, all on
 * the same breaker ("shared") or each on its own ("own"). Each worker
 * times itself with CLOCK_PROCESS_CPUTIME_ID, so a figure is CPU time per
 * call even when W exceeds the cores; such rows are marked. Each figure
 * is the median of --runs runs (default 5), with min and max. One row
 * has each worker alternate between breakers of two segments, as a worker
 * serving two tables does: each call moves its stripe claim. The
 * bulkhead row runs the "success" breaker's settings with
 * max_concurrent_calls: 64, so it always has room: the figure is the cost
 * of taking a slot and giving it back, beside "closed success".
 *
 *   usage: bench_hotpath [--runs N] [--calls N] [--workers 1,2,4] [--json]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cbshm.h"
#include "one_mutex.h"

#define MAX_WORKERS 64
#define MAX_RUNS    51

enum scenario {
    SC_BARE,
    SC_SUCCESS,
    SC_FAILURE,
    SC_OPEN,
    SC_TWO_STEP,
    SC_HALF_OPEN,
    SC_RATE_COUNT_SUCCESS,
    SC_RATE_COUNT_FAILURE,
    SC_RATE_TIME_SUCCESS,
    SC_TWO_SEGMENTS,
    SC_BULK_SUCCESS,
    SC_MUTEX_SUCCESS,
    SC_MUTEX_FAILURE,
    SC_MUTEX_BULK_SUCCESS,
    SC_COUNT,
};

static const struct {
    const char *label, *key;
    int baseline; /* the one-mutex scenario it is compared with, or -1 */
} scenarios[SC_COUNT] = {
    [SC_BARE] = {"bare indirect call (floor)", "bare", -1},
    [SC_SUCCESS] = {"cbshm_execute closed success", "closed_success", SC_MUTEX_SUCCESS},
    [SC_FAILURE] = {"cbshm_execute closed failure", "closed_failure", SC_MUTEX_FAILURE},
    [SC_OPEN] = {"cbshm_execute open rejection", "open_rejection", -1},
    [SC_TWO_STEP] = {"cbshm_allow+record success", "two_step", SC_MUTEX_SUCCESS},
    [SC_HALF_OPEN] = {"half-open rejection (lease held)", "half_open", -1},
    [SC_RATE_COUNT_SUCCESS] = {"rate, count window: success", "rate_count_success",
                               SC_MUTEX_SUCCESS},
    [SC_RATE_COUNT_FAILURE] = {"rate, count window: failure", "rate_count_failure",
                               SC_MUTEX_FAILURE},
    [SC_RATE_TIME_SUCCESS] = {"rate, time window: success", "rate_time_success", SC_MUTEX_SUCCESS},
    [SC_TWO_SEGMENTS] = {"two segments, alternating: success", "two_segments", SC_MUTEX_SUCCESS},
    [SC_BULK_SUCCESS] = {"bulkhead (64): closed success", "bulkhead_success",
                         SC_MUTEX_BULK_SUCCESS},
    [SC_MUTEX_SUCCESS] = {"one-mutex baseline success", "mutex_success", -1},
    [SC_MUTEX_FAILURE] = {"one-mutex baseline failure", "mutex_failure", -1},
    [SC_MUTEX_BULK_SUCCESS] = {"one-mutex + bulkhead: success", "mutex_bulkhead_success", -1},
};

struct shared {
    _Atomic int ready, go;
    double ns[MAX_WORKERS];
    struct one_mutex_breaker mutex_breakers[MAX_WORKERS];
    struct one_mutex_breaker mutex_bulk_breakers[MAX_WORKERS]; /* with a bulkhead of 64 */
};

static struct shared *sh;
static char segment[64];
static char segment2[72]; /* the second segment of the two_segments row */
static long calls;        /* per worker per run; 0: calibrate each figure */
static long fixed_calls;  /* --calls, or 0 */

#define RUN_TARGET_NS 150e6 /* a calibrated run lasts about this long */

/* The protected no-op, called through a pointer the compiler cannot see. */
__attribute__((noinline)) static enum cbshm_outcome noop_ok(void *arg)
{
    __asm__ volatile("" ::"r"(arg) : "memory");
    return CBSHM_SUCCESS;
}

__attribute__((noinline)) static enum cbshm_outcome noop_fail(void *arg)
{
    __asm__ volatile("" ::"r"(arg) : "memory");
    return CBSHM_FAILURE;
}

static cbshm_call_fn volatile fn_ok = noop_ok;
static cbshm_call_fn volatile fn_fail = noop_fail;

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_hotpath: %s: %s\n", what, rc < 0 ? cbshm_strerror(rc) : strerror(errno));
    cbshm_destroy(segment);
    cbshm_destroy(segment2);
    exit(1);
}

/* The breaker this worker uses for scenario sc. */
static struct cbshm_breaker *breaker_for(struct cbshm *shm, enum scenario sc, int worker, int own)
{
    static const char *names[] = {[SC_SUCCESS] = "success",
                                  [SC_FAILURE] = "failure",
                                  [SC_OPEN] = "open",
                                  [SC_TWO_STEP] = "success",
                                  [SC_HALF_OPEN] = "half-open",
                                  [SC_RATE_COUNT_SUCCESS] = "rate-count",
                                  [SC_RATE_COUNT_FAILURE] = "rate-count",
                                  [SC_RATE_TIME_SUCCESS] = "rate-time",
                                  [SC_TWO_SEGMENTS] = "success",
                                  [SC_BULK_SUCCESS] = "bulkhead"};
    struct cbshm_breaker *b;
    char name[64];
    int rc;

    snprintf(name, sizeof name, "%s-%d", names[sc], own ? worker : 0);
    if ((rc = cbshm_breaker_get(shm, name, &b)) != 0)
        die(name, rc);
    return b;
}

static void worker_loop(enum scenario sc, int w, int own)
{
    struct cbshm *shm = NULL, *shm2 = NULL;
    struct cbshm_breaker *b = NULL, *b2 = NULL;
    struct one_mutex_breaker *mb = &sh->mutex_breakers[own ? w : 0];
    struct one_mutex_breaker *mbb = &sh->mutex_bulk_breakers[own ? w : 0];
    cbshm_call_fn ok = fn_ok, fail = fn_fail;
    struct cbshm_ticket t;
    double start;
    int rc;

    if (sc != SC_BARE && sc != SC_MUTEX_SUCCESS && sc != SC_MUTEX_FAILURE &&
        sc != SC_MUTEX_BULK_SUCCESS) {
        if ((rc = cbshm_open(segment, 0, &shm)) != 0)
            die("open", rc);
        b = breaker_for(shm, sc, w, own);
        cbshm_execute(b, ok, NULL); /* settle the stripe choice */
    }
    if (sc == SC_TWO_SEGMENTS) {
        if ((rc = cbshm_open(segment2, 0, &shm2)) != 0)
            die("open", rc);
        b2 = breaker_for(shm2, sc, w, own);
        cbshm_execute(b2, ok, NULL);
    }
    sh->ready++;
    while (!sh->go)
        ;
    start = cpu_ns();
    switch (sc) {
    case SC_BARE:
        for (long i = 0; i < calls; i++)
            ok(NULL);
        break;
    case SC_SUCCESS:
        for (long i = 0; i < calls; i++)
            cbshm_execute(b, ok, NULL);
        break;
    case SC_FAILURE:
        /* One success per 1000 failures keeps the run under the threshold. */
        for (long i = 0; i < calls; i++)
            cbshm_execute(b, (i % 1000) == 999 ? ok : fail, NULL);
        break;
    case SC_OPEN:
    case SC_HALF_OPEN:
    case SC_RATE_COUNT_SUCCESS:
    case SC_RATE_TIME_SUCCESS:
    case SC_BULK_SUCCESS:
        for (long i = 0; i < calls; i++)
            cbshm_execute(b, ok, NULL);
        break;
    case SC_TWO_SEGMENTS:
        /* A thread that serves two segments: each call moves its stripe
           claim from one to the other. */
        for (long i = 0; i < calls; i++)
            cbshm_execute((i & 1) ? b2 : b, ok, NULL);
        break;
    case SC_RATE_COUNT_FAILURE:
        /* 1 failure in 10: far below the 50% that would trip it. */
        for (long i = 0; i < calls; i++)
            cbshm_execute(b, (i % 10) == 9 ? fail : ok, NULL);
        break;
    case SC_TWO_STEP:
        for (long i = 0; i < calls; i++) {
            if (cbshm_allow(b, &t) == 0)
                cbshm_record(b, &t, ok(NULL));
        }
        break;
    case SC_MUTEX_SUCCESS:
        for (long i = 0; i < calls; i++)
            one_mutex_execute(mb, ok, NULL);
        break;
    case SC_MUTEX_FAILURE:
        for (long i = 0; i < calls; i++)
            one_mutex_execute(mb, (i % 1000) == 999 ? ok : fail, NULL);
        break;
    case SC_MUTEX_BULK_SUCCESS:
        for (long i = 0; i < calls; i++)
            one_mutex_execute_bulk(mbb, ok, NULL);
        break;
    default:
        break;
    }
    sh->ns[w] = (cpu_ns() - start) / (double)calls;
    _exit(0);
}

/* One run: W workers at once; returns the mean per-worker ns per call. */
static double run_once(enum scenario sc, int workers, int own)
{
    pid_t pids[MAX_WORKERS];
    double sum = 0;

    sh->ready = 0;
    sh->go = 0;
    for (int w = 0; w < workers; w++) {
        if ((pids[w] = fork()) == 0)
            worker_loop(sc, w, own);
        if (pids[w] < 0)
            die("fork", 0);
    }
    while (sh->ready < workers)
        sched_yield();
    sh->go = 1;
    for (int w = 0; w < workers; w++) {
        int status;
        waitpid(pids[w], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            die("worker", 0);
        sum += sh->ns[w];
    }
    return sum / workers;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct figure {
    double median, min, max;
};

static struct figure measure(enum scenario sc, int workers, int own, int runs)
{
    double v[MAX_RUNS];
    struct figure f;

    /* Calibrate: each run long enough that scheduler noise is small. */
    calls = fixed_calls;
    if (calls == 0) {
        double est;
        calls = 100000;
        est = run_once(sc, workers, own);
        calls = (long)(RUN_TARGET_NS / (est > 0.5 ? est : 0.5));
        calls = calls < 100000 ? 100000 : calls > 100000000 ? 100000000 : calls;
    }
    for (int r = 0; r < runs; r++)
        v[r] = run_once(sc, workers, own);
    qsort(v, (size_t)runs, sizeof v[0], cmp_double);
    f.median = v[runs / 2];
    f.min = v[0];
    f.max = v[runs - 1];
    return f;
}

/* A segment: per scenario one shared breaker and one per worker. */
static void provision(const char *seg, int max_workers)
{
    static const char *kinds[] = {"success",    "failure",   "open",    "half-open",
                                  "rate-count", "rate-time", "bulkhead"};
    const size_t n_kinds = sizeof kinds / sizeof kinds[0];
    size_t cap = n_kinds * (size_t)(max_workers + 1), n = 0;
    struct cbshm_config cfg;
    struct cbshm_breaker_config *bc = calloc(cap, sizeof *bc);
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    char name[64];
    int rc;

    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = (uint32_t)cap;
    cfg.mode = 0600;
    for (size_t k = 0; k < n_kinds; k++) {
        for (int w = 0; w <= max_workers; w++) {
            struct cbshm_settings *st = &bc[n].settings;
            snprintf(bc[n].name, sizeof bc[n].name, "%s-%d", kinds[k], w);
            cbshm_settings_default(st);
            if (k < 4 || k == 6) /* failure_threshold is the consecutive policy's */
                st->failure_threshold = k == 1 ? 1000000 : 1;
            st->open_timeout_ms = 24ull * 3600 * 1000;
            st->probe_timeout_ms = 24ull * 3600 * 1000;
            st->open_timeout_max_ms = 24ull * 3600 * 1000;
            if (k == 3)
                st->open_timeout_ms = 1;
            if (k == 6) /* "success" with room in its bulkhead */
                st->max_concurrent_calls = 64;
            if (k == 4 || k == 5) { /* rate policy, 50% over the last 100 calls or 10 s */
                st->policy = CBSHM_POLICY_RATE;
                st->window_type = k == 4 ? CBSHM_WINDOW_COUNT : CBSHM_WINDOW_TIME;
                if (k == 5)
                    st->window_duration_ms = 10000;
            }
            n++;
        }
    }
    cfg.breakers = bc;
    cfg.n_breakers = n;
    cbshm_destroy(seg);
    if ((rc = cbshm_apply(&cfg, seg, 0, NULL, NULL, NULL)) != 0) {
        struct cbshm_diag d;
        if (cbshm_config_check(&cfg, &d) == CBSHM_ECONFIG)
            fprintf(stderr, "bench_hotpath: %s: %s\n", d.key, d.message);
        die("apply", rc);
    }
    free(bc);
    /* Trip the "open" and "half-open" breakers; hold each half-open
       breaker's only probe lease in this (living) process. */
    if ((rc = cbshm_open(seg, 0, &shm)) != 0)
        die("open", rc);
    for (int w = 0; w <= max_workers; w++) {
        snprintf(name, sizeof name, "open-%d", w);
        if ((rc = cbshm_breaker_get(shm, name, &b)) != 0)
            die(name, rc);
        cbshm_execute(b, noop_fail, NULL);
        cbshm_breaker_release(b);
        snprintf(name, sizeof name, "half-open-%d", w);
        if ((rc = cbshm_breaker_get(shm, name, &b)) != 0)
            die(name, rc);
        cbshm_execute(b, noop_fail, NULL);
        struct timespec ms = {0, 20000000}; /* past open_timeout, at coarse-clock resolution */
        nanosleep(&ms, NULL);
        if (cbshm_allow(b, &t) != 0)
            die("half-open probe", 0);
        cbshm_breaker_release(b);
    }
    cbshm_close(shm); /* the leases stay held: their owner lives */
    for (int w = 0; w < MAX_WORKERS; w++) {
        one_mutex_init(&sh->mutex_breakers[w], 1000000, 24ull * 3600 * 1000000000ull, 0);
        one_mutex_init(&sh->mutex_bulk_breakers[w], 1000000, 24ull * 3600 * 1000000000ull, 64);
    }
}

static int parse_workers(const char *s, int *out)
{
    int n = 0;
    char *end;

    while (*s != '\0' && n < 16) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_WORKERS)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    int runs = 5, json = 0, nw, ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int ws[16] = {1, 2, 4};
    struct figure fig[SC_COUNT][16][2];
    int max_w = 0;

    nw = ncpu >= 16 ? 5 : ncpu >= 8 ? 4 : 3;
    if (nw >= 4)
        ws[3] = 8;
    if (nw >= 5)
        ws[4] = 16;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
            fixed_calls = atol(argv[++i]);
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            if ((nw = parse_workers(argv[++i], ws)) <= 0) {
                fprintf(stderr, "bench_hotpath: --workers wants a list such as 1,2,4\n");
                return 2;
            }
        } else {
            fprintf(stderr,
                    "usage: bench_hotpath [--runs N] [--calls N] [--workers 1,2,4] [--json]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || (fixed_calls != 0 && fixed_calls < 1000)) {
        fprintf(stderr, "bench_hotpath: --runs 1..%d, --calls >= 1000\n", MAX_RUNS);
        return 2;
    }
    for (int i = 0; i < nw; i++)
        if (ws[i] > max_w)
            max_w = ws[i];
    snprintf(segment, sizeof segment, "/cbshm-bench-%d", (int)getpid());
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap", 0);
    snprintf(segment2, sizeof segment2, "%s-second", segment);
    provision(segment, max_w);
    provision(segment2, max_w);

    for (int sc = 0; sc < SC_COUNT; sc++)
        for (int i = 0; i < nw; i++)
            for (int own = 0; own < 2; own++)
                if (!(sc == SC_BARE && own))
                    fig[sc][i][own] = measure((enum scenario)sc, ws[i], own, runs);
    cbshm_destroy(segment);
    cbshm_destroy(segment2);

    if (json) {
        printf("{\"cpus\": %d, \"runs\": %d, \"unit\": \"cpu ns per call per worker\", "
               "\"figures\": [",
               ncpu, runs);
        const char *sep = "";
        for (int sc = 0; sc < SC_COUNT; sc++)
            for (int i = 0; i < nw; i++)
                for (int own = 0; own < 2; own++) {
                    struct figure *f = &fig[sc][i][own];
                    if (sc == SC_BARE && own)
                        continue;
                    printf("%s\n  {\"scenario\": \"%s\", \"workers\": %d, \"breakers\": \"%s\", "
                           "\"median\": %.2f, \"min\": %.2f, \"max\": %.2f",
                           sep, scenarios[sc].key, ws[i], own ? "own" : "shared", f->median, f->min,
                           f->max);
                    if (scenarios[sc].baseline >= 0)
                        printf(", \"baseline_median\": %.2f, \"ratio\": %.2f",
                               fig[scenarios[sc].baseline][i][own].median,
                               fig[scenarios[sc].baseline][i][own].median / f->median);
                    printf("}");
                    sep = ",";
                }
        printf("\n]}\n");
        return 0;
    }
    printf("bench_hotpath: %d CPUs, %d runs per figure, each run ~%.0f ms per worker%s\n"
           "figures: CPU ns per protected no-op call, per worker; median [min..max]\n"
           "ratio: one-mutex baseline / libcbshm, same workers, same sharing, same run\n\n",
           ncpu, runs, fixed_calls ? 0.0 : RUN_TARGET_NS / 1e6,
           fixed_calls ? " (--calls fixed)" : "");
    printf("%-34s %3s %-7s %8s %18s %10s %7s\n", "scenario", "W", "breaker", "median", "[min..max]",
           "baseline", "ratio");
    for (int sc = 0; sc < SC_COUNT; sc++) {
        for (int i = 0; i < nw; i++) {
            for (int own = 0; own < 2; own++) {
                struct figure *f = &fig[sc][i][own];
                char range[32];
                if (sc == SC_BARE && own)
                    continue;
                snprintf(range, sizeof range, "[%.2f..%.2f]", f->min, f->max);
                printf("%-34s %3d %-7s %8.2f %18s", scenarios[sc].label, ws[i],
                       sc == SC_BARE ? "-"
                       : own         ? "own"
                                     : "shared",
                       f->median, range);
                if (scenarios[sc].baseline >= 0) {
                    double base = fig[scenarios[sc].baseline][i][own].median;
                    printf(" %10.2f %6.1fx", base, base / f->median);
                }
                if (ws[i] > ncpu)
                    printf("  (W > %d CPUs)", ncpu);
                printf("\n");
            }
        }
    }
    return 0;
}
