/*
 * The kill storm: W workers run cbshm_execute against breakers that trip
 * and recover (a downstream that fails in phases), while a killer SIGKILLs
 * random workers - inside the table lock, holding probe leases, between
 * admission and record, wherever they happen to be - and forks
 * replacements. It asserts, while it runs and at the end:
 *
 *   - every living worker keeps making progress (no deadlock);
 *   - no probe lease outlives its deadline by more than the time it takes
 *     the next probe attempt to reclaim it;
 *   - no counter ever goes backwards;
 *   - cbshm_check finds the table clean at the end.
 *
 * and prints one line:
 *   killstorm: kills=N deadlocks=0 stuck_leases=0 check=clean seconds=S
 *
 *   usage: killstorm [--kills N] [--workers W] [--max-seconds S]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_WORKERS    64
#define STALL_NS       3000000000ull /* a live worker without progress this long is stuck */
#define LEASE_SLACK_NS 2000000000ull

static const char *NAMES[] = {"storm-consecutive", "storm-rate-count", "storm-rate-time"};
#define N_BREAKERS 3

static const char *YAML =
    "capacity: 8\n"
    "defaults:\n  open_timeout: 30ms\n  probe_timeout: 100ms\n  half_open_max_calls: 2\n"
    "breakers:\n"
    "  - name: storm-consecutive\n    failure_threshold: 3\n    min_failing_workers: 2\n"
    "  - name: storm-rate-count\n    policy: rate\n    failure_rate: 50\n    window_size: 40\n"
    "    minimum_calls: 10\n    slow_call_duration: 2ms\n    slow_call_rate: 90\n"
    "  - name: storm-rate-time\n    policy: rate\n    failure_rate: 40\n    window_type: time\n"
    "    window_duration: 200ms\n    window_buckets: 4\n    minimum_calls: 5\n"
    "    backoff_multiplier: 2\n    open_timeout_max: 200ms\n    open_timeout_jitter: 20\n";

struct worker {
    _Atomic int pid;
    _Atomic uint64_t progress;
};

static struct worker *workers;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The downstream fails for 150 ms of every 400 ms. A call takes 0.1 to
   0.5 ms, now and then 3 ms, so that kills often land mid-call - holding
   a probe lease, or between admission and record. */
static enum cbshm_outcome downstream(void *arg)
{
    uint64_t phase = (now_ns() / 1000000u) % 400;
    unsigned *seed = arg;
    struct timespec d = {0, 100000 + (long)(rand_r(seed) % 400000)};

    if (rand_r(seed) % 50 == 0)
        d.tv_nsec = 3000000;
    nanosleep(&d, NULL);
    if (phase < 150)
        return rand_r(seed) % 10 < 8 ? CBSHM_FAILURE : CBSHM_SUCCESS;
    return rand_r(seed) % 100 == 0 ? CBSHM_IGNORED : CBSHM_SUCCESS;
}

static void worker_main(struct cbshm_breaker **b, int slot)
{
    unsigned seed = (unsigned)getpid() * 2654435761u;
    struct cbshm_ticket t;

    for (uint64_t i = 0;; i++) {
        struct cbshm_breaker *br = b[rand_r(&seed) % N_BREAKERS];
        if (i % 3 == 0) {
            if (cbshm_allow(br, &t) == 0)
                cbshm_record(br, &t, downstream(&seed));
        } else {
            cbshm_execute(br, downstream, &seed);
        }
        atomic_fetch_add_explicit(&workers[slot].progress, 1, memory_order_relaxed);
    }
}

static int spawn(struct cbshm_breaker **b, int slot)
{
    int pid = fork();

    if (pid == 0) {
        worker_main(b, slot);
        _exit(0);
    }
    if (pid > 0)
        workers[slot].pid = pid;
    return pid;
}

/* Leases held past their deadline by more than the slack. */
static int stuck_leases(struct cbshm *shm, uint64_t now)
{
    int stuck = 0;

    for (uint32_t i = 0; i < shm->capacity; i++) {
        struct cbshm_slot *sl = &shm->slots[i];
        if (atomic_load(&sl->in_use) != 1)
            continue;
        for (int l = 0; l < CBSHM_PROBES_MAX; l++) {
            uint64_t w = atomic_load(&sl->leases[l].word);
            uint64_t d = atomic_load(&sl->leases[l].deadline_ns);
            /* Reclaiming happens on the next probe attempt, and attempts
               are constant here: past the slack, nobody could reclaim it. */
            if (w != 0 && d + LEASE_SLACK_NS < now &&
                CBSHM_CTL_STATE(atomic_load(&sl->ctl)) == CBSHM_STATE_HALF_OPEN)
                stuck++;
        }
    }
    return stuck;
}

static void report(void *ctx, const char *m)
{
    (void)ctx;
    fprintf(stderr, "killstorm: check: %s\n", m);
}

int main(int argc, char **argv)
{
    long want_kills = 1000, max_seconds = 600, n_workers = 6;
    struct cbshm_config *cfg;
    struct cbshm *shm;
    struct cbshm_breaker *b[N_BREAKERS];
    uint64_t last_progress[MAX_WORKERS], last_seen[MAX_WORKERS];
    uint64_t prev[N_BREAKERS][4] = {{0}};
    uint64_t start = now_ns();
    long kills = 0, deadlocks = 0, stuck = 0, backwards = 0;
    unsigned seed = (unsigned)getpid();
    char seg[64];
    int problems;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--kills") == 0)
            want_kills = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--workers") == 0)
            n_workers = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--max-seconds") == 0)
            max_seconds = atol(argv[i + 1]);
    }
    if (want_kills < 1 || n_workers < 2 || n_workers > MAX_WORKERS || max_seconds < 1) {
        fprintf(stderr, "usage: killstorm [--kills N] [--workers 2..%d] [--max-seconds S]\n",
                MAX_WORKERS);
        return 2;
    }
    snprintf(seg, sizeof seg, "/cbshm-killstorm-%d", (int)getpid());
    workers = mmap(NULL, sizeof *workers * MAX_WORKERS, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (workers == MAP_FAILED ||
        cbshm_config_load_string(YAML, strlen(YAML), "storm", &cfg, NULL) ||
        cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) || cbshm_open(seg, 0, &shm)) {
        fprintf(stderr, "killstorm: setup failed\n");
        return 1;
    }
    for (int i = 0; i < N_BREAKERS; i++)
        if (cbshm_breaker_get(shm, NAMES[i], &b[i]) != 0)
            return 1;
    for (int w = 0; w < n_workers; w++) {
        spawn(b, w);
        last_progress[w] = 0;
        last_seen[w] = now_ns();
    }

    while (kills < want_kills && now_ns() - start < (uint64_t)max_seconds * 1000000000u) {
        struct timespec pause = {0, (long)(rand_r(&seed) % 3000) * 1000};
        int w = (int)(rand_r(&seed) % (unsigned)n_workers);
        uint64_t now;

        nanosleep(&pause, NULL);
        kill(workers[w].pid, SIGKILL);
        waitpid(workers[w].pid, NULL, 0);
        kills++;
        spawn(b, w);
        last_seen[w] = now_ns();
        last_progress[w] = workers[w].progress;

        now = now_ns();
        for (int v = 0; v < n_workers; v++) {
            uint64_t p = workers[v].progress;
            if (p != last_progress[v]) {
                last_progress[v] = p;
                last_seen[v] = now;
            } else if (now - last_seen[v] > STALL_NS) {
                fprintf(stderr, "killstorm: worker %d (pid %d) made no progress for %.1f s\n", v,
                        (int)workers[v].pid, (double)(now - last_seen[v]) / 1e9);
                deadlocks++;
                last_seen[v] = now;
            }
        }
        if (kills % 50 == 0) {
            stuck += stuck_leases(shm, now);
            for (int i = 0; i < N_BREAKERS; i++) {
                struct cbshm_snapshot s;
                uint64_t cur[4];
                if (cbshm_snapshot(shm, NAMES[i], &s) != 0)
                    continue; /* the lock may be held by a worker just killed */
                cur[0] = s.requests, cur[1] = s.successes, cur[2] = s.failures, cur[3] = s.trips;
                for (int k = 0; k < 4; k++) {
                    if (cur[k] < prev[i][k]) {
                        fprintf(stderr, "killstorm: %s: a counter went backwards\n", NAMES[i]);
                        backwards++;
                    }
                    prev[i][k] = cur[k];
                }
            }
        }
    }
    for (int w = 0; w < n_workers; w++) {
        kill(workers[w].pid, SIGKILL);
        waitpid(workers[w].pid, NULL, 0);
    }
    problems = cbshm_check(shm, report, NULL);
    {
        struct cbshm_info info;
        cbshm_info(shm, &info);
        fprintf(stderr, "killstorm: %ld workers, %llu lock repairs\n", n_workers,
                (unsigned long long)info.lock_repairs);
        for (int i = 0; i < N_BREAKERS; i++) {
            struct cbshm_snapshot s;
            if (cbshm_snapshot(shm, NAMES[i], &s) == 0)
                fprintf(stderr, "killstorm: %s: %llu requests, %llu trips, %llu leases reclaimed\n",
                        NAMES[i], (unsigned long long)s.requests, (unsigned long long)s.trips,
                        (unsigned long long)s.probes_reclaimed);
        }
    }
    printf("killstorm: kills=%ld deadlocks=%ld stuck_leases=%ld check=%s seconds=%.0f\n", kills,
           deadlocks, stuck, problems == 0 ? "clean" : "dirty", (double)(now_ns() - start) / 1e9);
    for (int i = 0; i < N_BREAKERS; i++)
        cbshm_breaker_release(b[i]);
    cbshm_close(shm);
    cbshm_destroy(seg);
    cbshm_config_free(cfg);
    return kills >= want_kills && deadlocks == 0 && stuck == 0 && backwards == 0 && problems == 0
               ? 0
               : 1;
}
