/* SPDX-License-Identifier: MIT */
/*
 * bench_table: the table at scale. With N breakers (default 10,000) in one
 * segment it measures, each as the median of 5 runs with min and max:
 *
 *   - resolving a name (cbshm_breaker_get: table lock + hash index), beside
 *     the baseline of a linear scan over the same names;
 *   - `cbctl list` and `cbctl list --json` over the whole table, wall time;
 *
 * and reports the segment's bytes per breaker.
 *
 *   usage: bench_table CBCTL [--breakers N]
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cbshm.h"

#define RUNS 5

extern char **environ;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, const char *unit, double scale)
{
    qsort(v, RUNS, sizeof v[0], cmp);
    printf("%-44s %10.2f %s  [%.2f..%.2f]\n", what, v[RUNS / 2] / scale, unit, v[0] / scale,
           v[RUNS - 1] / scale);
}

/* Runs cbctl with stdout to /dev/null; returns wall nanoseconds. */
static double time_cbctl(const char *cbctl, const char *seg, int json)
{
    char *argv[] = {(char *)cbctl, "--segment", (char *)seg, "list", json ? "--json" : NULL, NULL};
    posix_spawn_file_actions_t fa;
    double t0 = now_ns();
    int status;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1 /* O_WRONLY */, 0);
    if (posix_spawn(&pid, cbctl, &fa, NULL, argv, environ) != 0) {
        perror("bench_table: spawn cbctl");
        exit(1);
    }
    waitpid(pid, &status, 0);
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_table: cbctl list failed\n");
        exit(1);
    }
    return now_ns() - t0;
}

int main(int argc, char **argv)
{
    struct cbshm_config cfg;
    struct cbshm_info info;
    struct cbshm *shm;
    char seg[64];
    double v[RUNS];
    int n = 10000, rc;
    volatile size_t sink = 0;

    if (argc < 2 || (argc == 4 && strcmp(argv[2], "--breakers") != 0) || argc == 3 || argc > 4) {
        fprintf(stderr, "usage: bench_table CBCTL [--breakers N]\n");
        return 2;
    }
    if (argc == 4 && ((n = atoi(argv[3])) < 1 || n > CBSHM_CAPACITY_MAX)) {
        fprintf(stderr, "bench_table: --breakers 1..%d\n", CBSHM_CAPACITY_MAX);
        return 2;
    }
    snprintf(seg, sizeof seg, "/cbshm-bench-table-%d", (int)getpid());
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = (uint32_t)n;
    cfg.mode = 0600;
    cfg.n_breakers = (size_t)n;
    cfg.breakers = calloc((size_t)n, sizeof *cfg.breakers);
    for (int i = 0; i < n; i++) {
        snprintf(cfg.breakers[i].name, sizeof cfg.breakers[i].name, "svc-%05d.api", i);
        cbshm_settings_default(&cfg.breakers[i].settings);
    }
    if ((rc = cbshm_apply(&cfg, seg, 0, NULL, NULL, NULL)) != 0 ||
        (rc = cbshm_open(seg, 0, &shm)) != 0) {
        fprintf(stderr, "bench_table: %s\n", cbshm_strerror(rc));
        cbshm_destroy(seg);
        return 1;
    }
    cbshm_info(shm, &info);
    printf("bench_table: %d breakers, segment %llu bytes, %llu bytes per breaker; "
           "median of %d runs [min..max]\n\n",
           n, (unsigned long long)info.segment_bytes, (unsigned long long)info.bytes_per_breaker,
           RUNS);

    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) {
            struct cbshm_breaker *b;
            if (cbshm_breaker_get(shm, cfg.breakers[(i * 7919) % n].name, &b) == 0) {
                sink += (size_t)b;
                cbshm_breaker_release(b);
            }
        }
        v[r] = (now_ns() - t0) / n;
    }
    report("resolve a name: cbshm_breaker_get", v, "ns", 1);
    /* Baseline: the same lookups as a linear scan (no lock, no handle). */
    for (int r = 0; r < RUNS; r++) {
        int lookups = n < 1000 ? n : 1000;
        double t0 = now_ns();
        for (int i = 0; i < lookups; i++) {
            const char *want = cfg.breakers[(i * 7919) % n].name;
            for (int j = 0; j < n; j++)
                if (strcmp(cfg.breakers[j].name, want) == 0) {
                    sink += (size_t)j;
                    break;
                }
        }
        v[r] = (now_ns() - t0) / lookups;
    }
    report("baseline: linear scan of the names", v, "ns", 1);
    for (int r = 0; r < RUNS; r++)
        v[r] = time_cbctl(argv[1], seg, 0);
    report("cbctl list (whole table)", v, "ms", 1e6);
    for (int r = 0; r < RUNS; r++)
        v[r] = time_cbctl(argv[1], seg, 1);
    report("cbctl list --json (whole table)", v, "ms", 1e6);

    cbshm_close(shm);
    cbshm_destroy(seg);
    free(cfg.breakers);
    return 0;
}
