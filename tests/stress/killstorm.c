/* SPDX-License-Identifier: MIT */
/*
 * The kill storm: W workers run cbshm_execute against breakers that trip
 * and recover (a downstream that fails in phases), while a killer SIGKILLs
 * random workers - inside the table lock, holding probe leases, between
 * admission and record, wherever they happen to be - and forks
 * replacements. Every third worker is a process of three threads: one
 * counts through the mapping it was forked with, one opens a second
 * mapping of the segment, counts through it and closes it, over and
 * over, and one forks children that count and exit while the other two
 * run. It asserts, while it runs and at the end:
 *
 *   - every living worker keeps making progress (no deadlock), and every
 *     child forked while threads ran exits in time (no hung child);
 *   - no stripe ever has two writers: after each call the thread's claim
 *     is still its own in the segment;
 *   - no probe lease outlives its deadline by more than the time it takes
 *     the next probe attempt to reclaim it;
 *   - no counter ever goes backwards: neither a breaker's totals nor any
 *     stripe's counts (a second writer's plain add loses counts and can
 *     move a stripe back);
 *   - cbshm_check finds the table clean at the end;
 *   - the bulkhead breakers (one rejecting, one waiting with max_wait) never
 *     hold more slots than their limit, looked at after every kill; their
 *     downstream, counting the calls inside it itself, never sees more;
 *     and at the end no slot is lost: the dead holders' slots come back
 *     to a fresh process, which takes the whole limit at once, and
 *     bulkhead_reclaimed counts every one of them.
 *
 * and prints, after a line per breaker:
 *   killstorm: kills=N deadlocks=0 stuck_leases=0 check=clean seconds=S
 *     two_writers=0 backwards=0 hung_children=0 mappings=M forks=F
 *     bulk_over=0 bulk_lost=0
 *
 *   usage: killstorm [--kills N] [--workers W] [--max-seconds S]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_WORKERS    64
#define STALL_NS       3000000000ull /* a live worker without progress this long is stuck */
#define LEASE_SLACK_NS 2000000000ull
#define CHILD_LIMIT_NS 3000000000ull /* a forked child must be done by then */
#define MAPPER_EVERY   3             /* every third worker is a mapper */

static const char *NAMES[] = {"storm-consecutive", "storm-rate-count", "storm-rate-time",
                              "storm-bulk", "storm-bulk-wait"};
#define N_BREAKERS 5
#define N_MAPPED   3 /* the mappers' threads and children call the first three */
#define FIRST_BULK 3 /* NAMES[FIRST_BULK..] have bulkheads, of these limits: */
#define N_BULK     (N_BREAKERS - FIRST_BULK)
static const int BULK_LIMITS[N_BULK] = {3, 2};

static const char *YAML =
    "capacity: 8\n"
    "defaults:\n  open_timeout: 30ms\n  probe_timeout: 100ms\n  half_open_max_calls: 2\n"
    "breakers:\n"
    "  - name: storm-consecutive\n    failure_threshold: 3\n    min_failing_workers: 2\n"
    "  - name: storm-rate-count\n    policy: rate\n    failure_rate: 50\n    window_size: 40\n"
    "    minimum_calls: 10\n    slow_call_duration: 2ms\n    slow_call_rate: 90\n"
    "  - name: storm-rate-time\n    policy: rate\n    failure_rate: 40\n    window_type: time\n"
    "    window_duration: 200ms\n    window_buckets: 4\n    minimum_calls: 5\n"
    "    backoff_multiplier: 2\n    open_timeout_max: 200ms\n    open_timeout_jitter: 20\n"
    "  - name: storm-bulk\n    failure_threshold: 5\n    max_concurrent_calls: 3\n"
    "  - name: storm-bulk-wait\n    failure_threshold: 5\n    max_concurrent_calls: 2\n"
    "    max_wait: 5ms\n";

struct worker {
    _Atomic int pid;
    _Atomic uint64_t progress;
};

/* What the workers found and did, for the killer to report. */
struct findings {
    _Atomic long two_writers, hung_children, mappings, forks;
    /* The bulkhead breakers' downstream: bit w set while plain worker w
       is inside it (the killer clears a dead worker's bits), the most
       it saw at once, and the times that was more than the limit. */
    _Atomic uint64_t inside[N_BULK];
    _Atomic int most_inside[N_BULK];
    _Atomic long over_limit;
};

static struct worker *workers;
static struct findings *found;
static char seg[64];

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* One call as the downstream sees it: the caller's random state, and for
   a plain worker's call through a bulkhead breaker, which one and the
   worker's bit (bulk -1: not counted). */
struct call {
    unsigned *seed;
    int bulk;
    uint64_t bit;
};

/* Counts the call in: a bit a worker, so that a kill anywhere leaves
   nothing the killer cannot take out again (a counter's increment or
   decrement would be lost with the worker). */
static void enter_bulk(const struct call *c)
{
    uint64_t now_inside = atomic_fetch_or(&found->inside[c->bulk], c->bit) | c->bit;
    int n = __builtin_popcountll(now_inside), most = atomic_load(&found->most_inside[c->bulk]);

    while (n > most && !atomic_compare_exchange_weak(&found->most_inside[c->bulk], &most, n))
        ;
    if (n > BULK_LIMITS[c->bulk] && atomic_fetch_add(&found->over_limit, 1) < 5)
        fprintf(stderr, "killstorm: %s's downstream has %d calls in flight, its limit is %d\n",
                NAMES[FIRST_BULK + c->bulk], n, BULK_LIMITS[c->bulk]);
}

/* The downstream fails for 150 ms of every 400 ms. A call takes 0.1 to
   0.5 ms, now and then 3 ms, so that kills often land mid-call - holding
   a probe lease or a bulkhead slot, or between admission and record. */
static enum cbshm_outcome downstream(void *arg)
{
    const struct call *c = arg;
    uint64_t phase = (now_ns() / 1000000u) % 400;
    unsigned *seed = c->seed;
    struct timespec d = {0, 100000 + (long)(rand_r(seed) % 400000)};

    if (c->bulk >= 0)
        enter_bulk(c);
    if (rand_r(seed) % 50 == 0)
        d.tv_nsec = 3000000;
    nanosleep(&d, NULL);
    if (c->bulk >= 0)
        atomic_fetch_and(&found->inside[c->bulk], ~c->bit);
    if (phase < 150)
        return rand_r(seed) % 10 < 8 ? CBSHM_FAILURE : CBSHM_SUCCESS;
    return rand_r(seed) % 100 == 0 ? CBSHM_IGNORED : CBSHM_SUCCESS;
}

/* The stripe this thread writes must still be its own in the segment: a
   claim given back or taken over while the thread writes on is a second
   writer. Any mapping of the object serves to look, they share claims. */
static void check_claim(struct cbshm *shm)
{
    uint32_t s = cbshm__claim.stripe;
    uint64_t owner;

    if (s == 0 || cbshm__claim.shm_id != shm->id)
        return;
    owner = atomic_load_explicit(&shm->hdr->stripe_owner[s], memory_order_relaxed);
    if (owner != cbshm__claim.token && atomic_fetch_add(&found->two_writers, 1) < 5)
        fprintf(stderr,
                "killstorm: pid %d writes stripe %u, which the segment gives to pid %u (%#llx)\n",
                (int)getpid(), s, (unsigned)(owner >> 32), (unsigned long long)owner);
}

/* One call, by execute or by allow and record; `c` says whom the
   downstream counts it for. */
static void call_once(struct cbshm *shm, struct cbshm_breaker *br, const struct call *c, uint64_t i)
{
    struct cbshm_ticket t;

    if (i % 3 == 0) {
        if (cbshm_allow(br, &t) == 0)
            cbshm_record(br, &t, downstream((void *)c));
    } else {
        cbshm_execute(br, downstream, (void *)c);
    }
    check_claim(shm);
}

static void worker_main(struct cbshm *shm, struct cbshm_breaker **b, int slot)
{
    unsigned seed = (unsigned)getpid() * 2654435761u;

    for (uint64_t i = 0;; i++) {
        int which = (int)(rand_r(&seed) % N_BREAKERS);
        struct call c = {&seed, which >= FIRST_BULK ? which - FIRST_BULK : -1, 1ull << slot};
        call_once(shm, b[which], &c, i);
        atomic_fetch_add_explicit(&workers[slot].progress, 1, memory_order_relaxed);
    }
}

/* A mapper's threads; each counts its own calls for the watchdog. */
struct mapper {
    struct cbshm *shm;
    struct cbshm_breaker **b;
    _Atomic uint64_t calls[3];
};

static void *count_through_inherited(void *arg)
{
    struct mapper *m = arg;
    unsigned seed = (unsigned)getpid() * 40503u;
    struct call c = {&seed, -1, 0};

    for (uint64_t i = 0;; i++) {
        call_once(m->shm, m->b[rand_r(&seed) % N_MAPPED], &c, i);
        atomic_fetch_add_explicit(&m->calls[0], 1, memory_order_relaxed);
    }
    return NULL;
}

/* Opens a second mapping, counts through it now and then, closes it:
   closing must give back nothing the other thread still writes. Mostly
   it only opens and closes, so that it often holds the registry lock
   when the third thread forks. */
static void *open_count_close(void *arg)
{
    struct mapper *m = arg;
    unsigned seed = (unsigned)getpid() * 69069u;
    struct call c = {&seed, -1, 0};

    for (uint64_t i = 0;; i++) {
        struct cbshm *second;
        struct cbshm_breaker *br;
        if (cbshm_open(seg, 0, &second) == 0) {
            if (cbshm_breaker_get(second, NAMES[rand_r(&seed) % N_MAPPED], &br) == 0) {
                for (int k = 0; k < (i % 16 == 0 ? 8 : 0); k++)
                    call_once(second, br, &c, i + (uint64_t)k);
                cbshm_breaker_release(br);
            }
            cbshm_close(second);
            atomic_fetch_add_explicit(&found->mappings, 1, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&m->calls[1], 1, memory_order_relaxed);
    }
    return NULL;
}

/* A forked child that has not finished by its alarm is hung: it says so
   and leaves (atomics on lock-free words and write are safe here). */
static void on_child_alarm(int sig)
{
    static const char msg[] = "killstorm: a child forked while threads ran is hung\n";

    (void)sig;
    atomic_fetch_add(&found->hung_children, 1);
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(3);
    _exit(3);
}

/* A child forked while the other threads are inside the library: its
   first counted call claims a stripe under the registry lock, which
   another thread may have held at fork. It must not hang, and its claims
   are its own. It outlives a killed parent (the killer reaps it), so a
   hang is reported even then. */
static void forked_child(struct mapper *m)
{
    unsigned seed = (unsigned)getpid() * 1103515245u;
    struct call c = {&seed, -1, 0};
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)(CHILD_LIMIT_NS / 1000000000u));
    for (uint64_t i = 0; i < 3; i++)
        call_once(m->shm, m->b[rand_r(&seed) % N_MAPPED], &c, i);
    _exit(0);
}

static void *fork_loop(void *arg)
{
    for (;;) {
        pid_t pid = fork();
        if (pid == 0)
            forked_child(arg);
        if (pid > 0) {
            atomic_fetch_add_explicit(&found->forks, 1, memory_order_relaxed);
            waitpid(pid, NULL, 0);
        }
        atomic_fetch_add_explicit(&((struct mapper *)arg)->calls[2], 1, memory_order_relaxed);
    }
    return NULL;
}

static void mapper_main(struct cbshm *shm, struct cbshm_breaker **b, int slot)
{
    static struct mapper m;
    void *(*const run[3])(void *) = {count_through_inherited, open_count_close, fork_loop};
    uint64_t credited[3] = {0};
    pthread_t t;

    m.shm = shm;
    m.b = b;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t, NULL, run[i], &m) != 0)
            _exit(1);
    for (;;) {
        struct timespec ms = {0, 10000000};
        uint64_t c[3];
        bool all = true;
        nanosleep(&ms, NULL);
        for (int i = 0; i < 3; i++) {
            c[i] = atomic_load(&m.calls[i]);
            all = all && c[i] != credited[i];
        }
        if (all) {
            atomic_fetch_add_explicit(&workers[slot].progress, 1, memory_order_relaxed);
            memcpy(credited, c, sizeof c);
        }
    }
}

static int spawn(struct cbshm *shm, struct cbshm_breaker **b, int slot)
{
    int pid = fork();

    if (pid == 0) {
        if (slot % MAPPER_EVERY == MAPPER_EVERY - 1)
            mapper_main(shm, b, slot);
        else
            worker_main(shm, b, slot);
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

/* Every stripe's counts, as last seen: none may ever be lower. */
static uint64_t seen_counts[64][CBSHM_STRIPES][CBSHM_COUNTS];

static long stripes_backwards(struct cbshm *shm)
{
    long back = 0;

    for (uint32_t i = 0; i < shm->capacity && i < 64; i++) {
        struct cbshm_slot *sl = &shm->slots[i];
        if (atomic_load(&sl->in_use) != 1)
            continue;
        for (int st = 0; st < CBSHM_STRIPES; st++) {
            for (int k = 0; k < CBSHM_COUNTS; k++) {
                uint64_t v = atomic_load_explicit(&sl->stripes[st].count[k], memory_order_relaxed);
                if (v < seen_counts[i][st][k]) {
                    fprintf(stderr,
                            "killstorm: slot %u stripe %d count %d went back from %llu to %llu\n",
                            i, st, k, (unsigned long long)seen_counts[i][st][k],
                            (unsigned long long)v);
                    back++;
                }
                seen_counts[i][st][k] = v;
            }
        }
    }
    return back;
}

/* Children of killed mappers come to the killer (a subreaper). A worker
   that leaves by itself has failed. */
static long reap_orphans(void)
{
    long lost = 0;
    pid_t p;

    while ((p = waitpid(-1, NULL, WNOHANG)) > 0) {
        for (int w = 0; w < MAX_WORKERS; w++) {
            if (workers[w].pid == p) {
                fprintf(stderr, "killstorm: worker %d (pid %d) exited by itself\n", w, (int)p);
                workers[w].pid = 0;
                lost++;
            }
        }
    }
    return lost;
}

/* SIGKILLs worker w and reaps it. Between its death and its reaping its
   pid is still taken (a zombie is alive to kill(2)), so nobody can take
   its bulkhead slots back yet: its bits come out of the downstream's
   count first, and no later call can be counted beside its stale one. */
static void kill_worker(int w)
{
    pid_t pid = workers[w].pid;
    siginfo_t info;

    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT);
    for (int k = 0; k < N_BULK; k++)
        atomic_fetch_and(&found->inside[k], ~(1ull << w));
    waitpid(pid, NULL, 0);
}

/* The bulkhead breakers' slots in the table, and the most each held. */
static struct cbshm_slot *bulk_slot[N_BULK];
static uint32_t most_held[N_BULK];

static int find_bulk_slots(struct cbshm *shm)
{
    for (int k = 0; k < N_BULK; k++) {
        for (uint32_t i = 0; i < shm->capacity && bulk_slot[k] == NULL; i++)
            if (atomic_load(&shm->slots[i].in_use) == 1 &&
                strcmp(shm->slots[i].name, NAMES[FIRST_BULK + k]) == 0)
                bulk_slot[k] = &shm->slots[i];
        if (bulk_slot[k] == NULL ||
            cbshm__bulk_limit(shm->hdr, bulk_slot[k]) != (uint32_t)BULK_LIMITS[k])
            return -1;
    }
    return 0;
}

/* Slots held now, by the living and the dead, against the limit: read
   from the slot words themselves, no lock (a worker just killed may hold
   it). */
static long bulk_over(struct cbshm *shm)
{
    long over = 0;

    for (int k = 0; k < N_BULK; k++) {
        uint32_t held = cbshm__bulk_in_flight(bulk_slot[k]);
        uint32_t limit = cbshm__bulk_limit(shm->hdr, bulk_slot[k]);
        if (held > most_held[k])
            most_held[k] = held;
        if (held > limit) {
            fprintf(stderr, "killstorm: %s holds %u bulkhead slots, its limit is %u\n",
                    NAMES[FIRST_BULK + k], held, limit);
            over++;
        }
    }
    return over;
}

/* A fresh process (forked, its own mapping) takes every slot of `name`
   with cbshm_allow and is refused one more, by the bulkhead; then gives
   them back. Exits 0 when it took exactly `limit`. */
static int take_whole_limit(const char *name, int limit)
{
    int pid = fork(), status;

    if (pid == 0) {
        struct cbshm_ticket t[CBSHM_BULKHEAD_MAX + 1];
        struct cbshm_rejection why;
        struct cbshm *mine;
        struct cbshm_breaker *br;
        struct timespec past_scan = {0, 15000000};
        int n = 0;
        if (cbshm_open(seg, 0, &mine) != 0 || cbshm_breaker_get(mine, name, &br) != 0)
            _exit(2);
        /* Past the 10 ms between two scans for dead holders, so that the
           first allow to find the bulkhead full takes them all back. */
        nanosleep(&past_scan, NULL);
        while (n <= limit && cbshm_allow(br, &t[n]) == 0)
            n++;
        if (n == limit &&
            (cbshm_breaker_rejection(br, &why) != 0 || why.why != CBSHM_REFUSAL_BULKHEAD_FULL))
            n = -1;
        for (int i = 0; i < n; i++)
            cbshm_record(br, &t[i], CBSHM_SUCCESS);
        if (n != limit)
            fprintf(stderr, "killstorm: a fresh process took %d of %s's %d bulkhead slots\n", n,
                    name, limit);
        _exit(n == limit ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* With every worker gone: no slot is lost. Forced closed (the storm may
   have left the breaker open), a fresh process must get the whole limit
   at once, the dead holders' slots taken back and counted. */
static long bulk_lost(struct cbshm *shm)
{
    long lost = 0;

    for (int k = 0; k < N_BULK; k++) {
        const char *name = NAMES[FIRST_BULK + k];
        struct cbshm_snapshot before, after;
        if (cbshm_set_mode(shm, name, CBSHM_MODE_FORCED_CLOSED) != 0 ||
            cbshm_snapshot(shm, name, &before) != 0 ||
            take_whole_limit(name, BULK_LIMITS[k]) != 0 || cbshm_snapshot(shm, name, &after) != 0 ||
            cbshm_set_mode(shm, name, CBSHM_MODE_NORMAL) != 0) {
            lost++;
            continue;
        }
        if (after.bulkhead_reclaimed - before.bulkhead_reclaimed != before.bulkhead_in_flight ||
            after.bulkhead_in_flight != 0) {
            fprintf(stderr,
                    "killstorm: %s: %u slots held by the dead, %llu taken back, %u held after\n",
                    name, before.bulkhead_in_flight,
                    (unsigned long long)(after.bulkhead_reclaimed - before.bulkhead_reclaimed),
                    after.bulkhead_in_flight);
            lost++;
        }
        fprintf(stderr,
                "killstorm: %s: limit %d, most held at once %u, most in its downstream %d; "
                "%llu rejections, %llu waits, %llu slots taken back; at the end %u held by the "
                "dead, all taken back by a fresh process\n",
                name, BULK_LIMITS[k], most_held[k], atomic_load(&found->most_inside[k]),
                (unsigned long long)after.bulkhead_rejections,
                (unsigned long long)after.bulkhead_waits,
                (unsigned long long)after.bulkhead_reclaimed, before.bulkhead_in_flight);
    }
    return lost;
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
    long kills = 0, deadlocks = 0, stuck = 0, backwards = 0, lost = 0, over = 0, slots_lost;
    unsigned seed = (unsigned)getpid();
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
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    workers = mmap(NULL, sizeof *workers * MAX_WORKERS, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    found = mmap(NULL, sizeof *found, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (workers == MAP_FAILED || found == MAP_FAILED ||
        cbshm_config_load_string(YAML, strlen(YAML), "storm", &cfg, NULL) ||
        cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) || cbshm_open(seg, 0, &shm)) {
        fprintf(stderr, "killstorm: setup failed\n");
        return 1;
    }
    for (int i = 0; i < N_BREAKERS; i++)
        if (cbshm_breaker_get(shm, NAMES[i], &b[i]) != 0)
            return 1;
    if (find_bulk_slots(shm) != 0) {
        fprintf(stderr, "killstorm: the bulkhead breakers are not as configured\n");
        return 1;
    }
    for (int w = 0; w < n_workers; w++) {
        spawn(shm, b, w);
        last_progress[w] = 0;
        last_seen[w] = now_ns();
    }

    while (kills < want_kills && now_ns() - start < (uint64_t)max_seconds * 1000000000u) {
        struct timespec pause = {0, (long)(rand_r(&seed) % 3000) * 1000};
        int w = (int)(rand_r(&seed) % (unsigned)n_workers);
        uint64_t now;

        nanosleep(&pause, NULL);
        lost += reap_orphans();
        kill_worker(w);
        over += bulk_over(shm);
        kills++;
        spawn(shm, b, w);
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
        backwards += stripes_backwards(shm);
        if (kills % 50 == 0) {
            stuck += stuck_leases(shm, now);
            for (int i = 0; i < N_BREAKERS; i++) {
                struct cbshm_snapshot s;
                uint64_t cur[4];
                if (cbshm_snapshot(shm, NAMES[i], &s) != 0)
                    continue; /* the lock may be held by a worker just killed */
                if (s.bulkhead_in_flight > s.bulkhead_limit) {
                    fprintf(stderr, "killstorm: %s: %u in flight, limit %u\n", NAMES[i],
                            s.bulkhead_in_flight, s.bulkhead_limit);
                    over++;
                }
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
    lost += reap_orphans();
    for (int w = 0; w < n_workers; w++)
        kill_worker(w);
    while (waitpid(-1, NULL, 0) > 0) /* orphaned children end by their alarm */
        ;
    over += bulk_over(shm);
    problems = cbshm_check(shm, report, NULL);
    slots_lost = bulk_lost(shm);
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
    backwards += stripes_backwards(shm);
    printf("killstorm: kills=%ld deadlocks=%ld stuck_leases=%ld check=%s seconds=%.0f "
           "two_writers=%ld backwards=%ld hung_children=%ld mappings=%ld forks=%ld "
           "bulk_over=%ld bulk_lost=%ld\n",
           kills, deadlocks, stuck, problems == 0 ? "clean" : "dirty",
           (double)(now_ns() - start) / 1e9, (long)found->two_writers, backwards,
           (long)found->hung_children, (long)found->mappings, (long)found->forks,
           over + found->over_limit, slots_lost);
    for (int i = 0; i < N_BREAKERS; i++)
        cbshm_breaker_release(b[i]);
    cbshm_close(shm);
    cbshm_destroy(seg);
    cbshm_config_free(cfg);
    return kills >= want_kills && deadlocks == 0 && stuck == 0 && backwards == 0 && problems == 0 &&
                   found->two_writers == 0 && found->hung_children == 0 && found->mappings > 0 &&
                   found->forks > 0 && over == 0 && found->over_limit == 0 && slots_lost == 0
               ? 0
               : 1;
}
