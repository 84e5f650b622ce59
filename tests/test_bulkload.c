/* SPDX-License-Identifier: MIT */
/*
 * The bulkhead under load: W worker processes of a few threads each call
 * one breaker with max_concurrent_calls through cbshm_execute, against a
 * slow downstream that counts the calls inside it itself (a counter in a
 * MAP_SHARED page, not the library's figures). The downstream must never
 * see more than the limit, with rejection or with waiting; per-process
 * bulkheads (one segment per worker, the same YAML: what an in-process
 * bulkhead is) let W x limit through. And the holders' fates: a stopped
 * holder keeps its slot (it is alive), a killed one's slot comes back.
 *
 * Each load case prints one line for the closing note:
 *   bulkload: workers=W threads=T limit=L max_in_flight: shared=.. waiting=..
 *     per-process=.. (W x limit = ..); ...
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define LIMIT        3
#define THREADS      4 /* a worker's threads: more than LIMIT, so one alone fills it */
#define MAX_THREADS  THREADS
#define CALL_NS      1500000L   /* the downstream's own time per call */
#define THINK_NS     500000L    /* a thread's time between two admitted calls */
#define BACKOFF_NS   200000L    /* a rejected caller's pause before it tries again */
#define RUN_NS       500000000u /* how long each run's callers keep calling */
#define MAX_SEGMENTS 16

/* What the downstream and the callers count, shared by every process. */
struct probe {
    _Atomic int ready;           /* callers at the barrier */
    _Atomic int go;              /* the parent's start signal */
    _Atomic uint64_t deadline;   /* CLOCK_MONOTONIC: callers stop starting calls then */
    _Atomic int in_flight;       /* calls inside the downstream now */
    _Atomic int max_in_flight;   /* the most it has seen at once */
    _Atomic long entered;        /* calls the downstream ran */
    _Atomic long admitted;       /* cbshm_execute returned 0 */
    _Atomic long rejected;       /* CBSHM_EREJECTED for a full bulkhead */
    _Atomic long errors;         /* anything else (each says what) */
    _Atomic uint64_t longest_ns; /* the longest a call waited for the downstream */
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void pause_ns(long ns)
{
    struct timespec d = {0, ns};
    nanosleep(&d, NULL);
}

static struct probe *probe_map(void)
{
    struct probe *p =
        mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 0, sizeof *p);
    return p;
}

static void raise_to(_Atomic int *max, int n)
{
    int seen = atomic_load(max);
    while (n > seen && !atomic_compare_exchange_weak(max, &seen, n))
        ;
}

/* One call as the downstream sees it: who counts, and when the caller
   asked (to measure how long it waited). */
struct call {
    struct probe *p;
    uint64_t asked_ns;
};

static enum cbshm_outcome downstream(void *arg)
{
    struct call *c = arg;
    struct probe *p = c->p;
    uint64_t waited = now_ns() - c->asked_ns, longest = atomic_load(&p->longest_ns);

    raise_to(&p->max_in_flight, atomic_fetch_add(&p->in_flight, 1) + 1);
    atomic_fetch_add(&p->entered, 1);
    while (waited > longest && !atomic_compare_exchange_weak(&p->longest_ns, &longest, waited))
        ;
    pause_ns(CALL_NS);
    atomic_fetch_sub(&p->in_flight, 1);
    return CBSHM_SUCCESS;
}

static void error(struct probe *p, const char *what, int rc)
{
    fprintf(stderr, "bulkload: pid %d: %s: %d\n", (int)getpid(), what, rc);
    atomic_fetch_add(&p->errors, 1);
}

struct caller {
    struct probe *p;
    struct cbshm_breaker *b;
};

/* A worker's thread: waits at the barrier, then calls until the deadline. */
static void *caller_main(void *arg)
{
    struct caller *c = arg;
    struct probe *p = c->p;

    atomic_fetch_add(&p->ready, 1);
    while (atomic_load(&p->go) == 0)
        pause_ns(100000);
    while (now_ns() < atomic_load(&p->deadline)) {
        struct call call = {p, now_ns()};
        struct cbshm_rejection why;
        int rc = cbshm_execute(c->b, downstream, &call);
        if (rc == 0) {
            atomic_fetch_add(&p->admitted, 1);
            pause_ns(THINK_NS);
        } else if (rc != CBSHM_EREJECTED) {
            error(p, "cbshm_execute", rc);
            break;
        } else if ((rc = cbshm_breaker_rejection(c->b, &why)) != 0 ||
                   why.why != CBSHM_REFUSAL_BULKHEAD_FULL) {
            error(p, "a rejection that is not the bulkhead's", rc != 0 ? rc : (int)why.why);
            break;
        } else {
            atomic_fetch_add(&p->rejected, 1);
            pause_ns(BACKOFF_NS);
        }
    }
    return NULL;
}

/* A worker process: `threads` callers through one handle on `seg`. */
static void worker_main(struct probe *p, const char *seg, int threads)
{
    struct caller c = {p, NULL};
    pthread_t th[MAX_THREADS];
    struct cbshm *shm;
    int rc;

    if ((rc = cbshm_open(seg, 0, &shm)) != 0 ||
        (rc = cbshm_breaker_get(shm, "downstream", &c.b)) != 0) {
        error(p, "cbshm_open or cbshm_breaker_get", rc);
        atomic_fetch_add(&p->ready, threads); /* nobody waits for us */
        _exit(1);
    }
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, caller_main, &c) != 0)
            _exit(1);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    cbshm_breaker_release(c.b);
    cbshm_close(shm);
    _exit(0);
}

/* What one run found: the downstream's maximum, the callers' counts and
   the segments' snapshots of "downstream", summed. */
struct result {
    int max_in_flight;
    long admitted, entered, rejected;
    uint64_t snap_rejections, snap_waits, snap_successes;
    uint32_t snap_in_flight;
    uint64_t longest_ns;
    double seconds;
};

/* W workers of `threads` callers against one segment (shared) or one
   segment each. */
static struct result run(int workers, int threads, bool per_process, const char *yaml)
{
    char segs[MAX_SEGMENTS][64];
    int pids[MAX_SEGMENTS], n_segs = per_process ? workers : 1;
    struct probe *p = probe_map();
    struct result r;
    uint64_t start = now_ns();

    assert_true(workers <= MAX_SEGMENTS && threads <= MAX_THREADS);
    memset(&r, 0, sizeof r);
    for (int s = 0; s < n_segs; s++)
        t_apply(t_segment_name(segs[s]), yaml);
    for (int w = 0; w < workers; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0)
            worker_main(p, segs[per_process ? w : 0], threads);
    }
    /* Every thread of every worker at the barrier, then all at once. */
    while (atomic_load(&p->ready) < workers * threads)
        pause_ns(1000000);
    atomic_store(&p->deadline, now_ns() + RUN_NS);
    atomic_store(&p->go, 1);
    for (int w = 0; w < workers; w++)
        assert_int_equal(t_wait(pids[w]), 0);
    assert_int_equal(atomic_load(&p->errors), 0);
    for (int s = 0; s < n_segs; s++) {
        struct cbshm *shm;
        struct cbshm_snapshot snap;
        assert_int_equal(cbshm_open(segs[s], 0, &shm), 0);
        assert_int_equal(cbshm_snapshot(shm, "downstream", &snap), 0);
        assert_int_equal(snap.bulkhead_limit, LIMIT);
        r.snap_rejections += snap.bulkhead_rejections;
        r.snap_waits += snap.bulkhead_waits;
        r.snap_successes += snap.successes;
        r.snap_in_flight += snap.bulkhead_in_flight;
        cbshm_close(shm);
        assert_int_equal(cbshm_destroy(segs[s]), 0);
    }
    r.max_in_flight = atomic_load(&p->max_in_flight);
    r.admitted = atomic_load(&p->admitted);
    r.entered = atomic_load(&p->entered);
    r.rejected = atomic_load(&p->rejected);
    r.longest_ns = atomic_load(&p->longest_ns);
    r.seconds = (double)(now_ns() - start) / 1e9;
    /* Whatever the mode: every admitted call ran once and was recorded,
       every rejection the callers saw is the bulkhead's own count, and
       with everyone gone no slot is held. */
    assert_int_equal(r.entered, r.admitted);
    assert_int_equal(r.snap_successes, (uint64_t)r.admitted);
    assert_int_equal(r.snap_rejections, (uint64_t)r.rejected);
    assert_int_equal(r.snap_in_flight, 0);
    assert_int_equal(atomic_load(&p->in_flight), 0);
    munmap(p, sizeof *p);
    return r;
}

static const char *REJECTING = "breakers:\n  - name: downstream\n    max_concurrent_calls: 3\n";
/* max_wait far above a call (1.5 ms) and the queue ahead of a waiter:
   every call gets in, however busy the machine. The waiting runs have one
   caller a worker, and still the longest wait is far above the queue's
   length in calls (16 callers on 3 slots: 8 ms): a freed slot wakes every
   waiter and goes to whichever runs first, not to the longest waiting.
   Measured on 2 cores: up to 74 ms idle and 123 ms beside two busy loops
   with 16 callers, 181 ms idle with 64 (16 workers of 4 threads) - hence
   1 s, not the 200 ms a fair queue would need. */
static const char *WAITING = "breakers:\n  - name: downstream\n    max_concurrent_calls: 3\n"
                             "    max_wait: 1s\n";

static void load(int workers)
{
    struct result shared, waiting, apart;

    shared = run(workers, THREADS, false, REJECTING);
    /* The upper bound is exact: the downstream never saw more than the
       limit. More callers than slots: some were turned away. */
    assert_true(shared.max_in_flight >= 1);
    assert_true(shared.max_in_flight <= LIMIT);
    assert_true(shared.rejected > 0);

    waiting = run(workers, 1, false, WAITING);
    assert_true(waiting.max_in_flight >= 1);
    assert_true(waiting.max_in_flight <= LIMIT);
    assert_int_equal(waiting.rejected, 0);
    assert_true(waiting.snap_waits > 0);

    /* One bulkhead per process: each admits LIMIT, together W x LIMIT. */
    apart = run(workers, THREADS, true, REJECTING);
    assert_true(apart.max_in_flight > LIMIT);
    assert_true(apart.max_in_flight <= workers * LIMIT);

    printf(
        "bulkload: workers=%d threads=%d (waiting: 1) limit=%d max_in_flight: shared=%d waiting=%d "
        "per-process=%d (W x limit = %d); rejections counted=%ld snapshot=%llu; "
        "waiting: waits=%llu longest=%.1f ms, rejections=%ld; calls: shared=%ld waiting=%ld "
        "per-process=%ld; seconds: shared=%.2f waiting=%.2f per-process=%.2f\n",
        workers, THREADS, LIMIT, shared.max_in_flight, waiting.max_in_flight, apart.max_in_flight,
        workers * LIMIT, shared.rejected, (unsigned long long)shared.snap_rejections,
        (unsigned long long)waiting.snap_waits, (double)waiting.longest_ns / 1e6, waiting.rejected,
        shared.admitted, waiting.admitted, apart.admitted, shared.seconds, waiting.seconds,
        apart.seconds);
    fflush(stdout);
}

static void test_four_workers_never_put_more_than_the_limit_in_flight(void **state)
{
    (void)state;
    load(4);
}

static void test_eight_workers_never_put_more_than_the_limit_in_flight(void **state)
{
    (void)state;
    load(8);
}

static void test_sixteen_workers_never_put_more_than_the_limit_in_flight(void **state)
{
    (void)state;
    load(16);
}

/* ---- The holders' fates ------------------------------------------------- */

static struct cbshm_snapshot snap_of(struct cbshm *shm)
{
    struct cbshm_snapshot s;
    assert_int_equal(cbshm_snapshot(shm, "downstream", &s), 0);
    return s;
}

/* Takes slots with cbshm_allow until the bulkhead refuses; returns how
   many it took (their tickets in t), checking the refusal is the
   bulkhead's. */
static int take_all(struct cbshm_breaker *b, struct cbshm_ticket *t, int most)
{
    struct cbshm_rejection why;
    int n = 0;

    while (n < most && cbshm_allow(b, &t[n]) == 0)
        n++;
    if (n < most) {
        assert_int_equal(cbshm_breaker_rejection(b, &why), 0);
        assert_int_equal(why.why, CBSHM_REFUSAL_BULKHEAD_FULL);
    }
    return n;
}

/* Forks a child that takes one slot and stops itself holding it; returns
   once it is stopped. On SIGCONT it records and exits 0. */
static int stopped_holder(const char *seg)
{
    int pid = fork(), status;

    assert_true(pid >= 0);
    if (pid == 0) {
        struct cbshm *shm;
        struct cbshm_breaker *b;
        struct cbshm_ticket t;
        /* A failed assertion ends the test without SIGCONT: the kernel
           kills the stopped child with its parent, not leaving it behind. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
            _exit(3);
        if (cbshm_open(seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "downstream", &b) != 0 ||
            cbshm_allow(b, &t) != 0)
            _exit(1);
        raise(SIGSTOP);
        _exit(cbshm_record(b, &t, CBSHM_SUCCESS) == 0 ? 0 : 2);
    }
    assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
    assert_true(WIFSTOPPED(status));
    return pid;
}

static void test_a_stopped_holder_keeps_its_slot_and_gives_it_back_when_it_goes_on(void **state)
{
    struct cbshm_ticket t[LIMIT + 1];
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64];
    int holder, n;

    (void)state;
    t_apply(t_segment_name(seg), REJECTING);
    holder = stopped_holder(seg);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "downstream", &b), 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, 1);
    /* A stopped process is alive: a full bulkhead's scan for dead holders
       (at most every 10 ms) leaves its slot alone, however often the
       others find it full. The others get the limit less its slot. */
    for (int round = 0; round < 5; round++) {
        n = take_all(b, t, LIMIT + 1);
        assert_int_equal(n, LIMIT - 1);
        for (int i = 0; i < n; i++)
            assert_int_equal(cbshm_record(b, &t[i], CBSHM_SUCCESS), 0);
        pause_ns(15000000);
    }
    assert_int_equal(snap_of(shm).bulkhead_reclaimed, 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, 1);
    /* Going on, it records: its slot is free again, and all of them are. */
    assert_int_equal(kill(holder, SIGCONT), 0);
    assert_int_equal(t_wait(holder), 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, 0);
    n = take_all(b, t, LIMIT + 1);
    assert_int_equal(n, LIMIT);
    for (int i = 0; i < n; i++)
        assert_int_equal(cbshm_record(b, &t[i], CBSHM_SUCCESS), 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, 0);
    assert_int_equal(snap_of(shm).bulkhead_reclaimed, 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_a_stopped_holder_past_slot_timeout_loses_its_slot_and_frees_none(void **state)
{
    struct cbshm_ticket t[LIMIT + 1];
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64];
    int holder, n;

    (void)state;
    t_apply(t_segment_name(seg), "breakers:\n  - name: downstream\n    max_concurrent_calls: 3\n"
                                 "    slot_timeout: 50ms\n");
    holder = stopped_holder(seg);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "downstream", &b), 0);
    /* Stopped longer than slot_timeout: the next full bulkhead takes its
       slot back, though it is alive. */
    pause_ns(120000000);
    n = take_all(b, t, LIMIT + 1);
    assert_int_equal(n, LIMIT);
    assert_int_equal(snap_of(shm).bulkhead_reclaimed, 1);
    /* Its late record must free none of the slots held now. */
    assert_int_equal(kill(holder, SIGCONT), 0);
    assert_int_equal(t_wait(holder), 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, LIMIT);
    assert_int_equal(take_all(b, &t[LIMIT], 1), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(cbshm_record(b, &t[i], CBSHM_SUCCESS), 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_killed_holders_slots_come_back_when_the_bulkhead_is_full(void **state)
{
    struct cbshm_ticket t[LIMIT + 1];
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64];
    int holders[LIMIT];

    (void)state;
    t_apply(t_segment_name(seg), REJECTING);
    /* Every slot held by a process killed between allow and record. */
    for (int i = 0; i < LIMIT; i++) {
        holders[i] = stopped_holder(seg);
        assert_int_equal(kill(holders[i], SIGKILL), 0);
        assert_int_equal(t_wait(holders[i]), 128 + SIGKILL);
    }
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "downstream", &b), 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, LIMIT);
    /* The first call to find it full takes back all three at once: a
       fresh process gets every slot, and no more. */
    pause_ns(15000000);
    assert_int_equal(take_all(b, t, LIMIT + 1), LIMIT);
    assert_int_equal(snap_of(shm).bulkhead_reclaimed, LIMIT);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, LIMIT);
    for (int i = 0; i < LIMIT; i++)
        assert_int_equal(cbshm_record(b, &t[i], CBSHM_SUCCESS), 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* The breaker's slot in shm's table (to watch a waiter's announcement). */
static struct cbshm_slot *slot_of(struct cbshm *shm)
{
    for (uint32_t i = 0; i < shm->capacity; i++)
        if (atomic_load(&shm->slots[i].in_use) == 1 &&
            strcmp(shm->slots[i].name, "downstream") == 0)
            return &shm->slots[i];
    fail_msg("no breaker \"downstream\" in the table");
    return NULL;
}

static void test_a_waiter_gets_the_slot_of_a_holder_killed_while_it_waits(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm_slot *sl;
    struct cbshm *shm;
    char seg[64];
    int holder, waiter;

    (void)state;
    t_apply(t_segment_name(seg), "breakers:\n  - name: downstream\n    max_concurrent_calls: 1\n"
                                 "    max_wait: 2s\n");
    holder = stopped_holder(seg);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "downstream", &b), 0);
    sl = slot_of(shm);
    waiter = fork();
    assert_true(waiter >= 0);
    if (waiter == 0) {
        struct probe *unused = probe_map();
        struct call c = {unused, now_ns()};
        _exit(cbshm_execute(b, downstream, &c) == 0 ? 0 : 1);
    }
    /* The waiter has found the bulkhead full, looked for dead holders
       (none: the holder lives) and announced that it sleeps. */
    while (atomic_load(&sl->bulk.scan_ns) == 0 || (atomic_load(&sl->bulk.wake) & 1u) == 0)
        pause_ns(1000000);
    /* Now the holder dies. Nobody gives its slot back: the waiter must
       look again for dead holders while it waits, not sleep out max_wait
       and be rejected. */
    assert_int_equal(kill(holder, SIGKILL), 0);
    assert_int_equal(t_wait(holder), 128 + SIGKILL);
    assert_int_equal(t_wait(waiter), 0);
    assert_int_equal(snap_of(shm).bulkhead_reclaimed, 1);
    assert_int_equal(snap_of(shm).bulkhead_waits, 1);
    assert_int_equal(snap_of(shm).bulkhead_rejections, 0);
    assert_int_equal(snap_of(shm).bulkhead_in_flight, 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_four_workers_never_put_more_than_the_limit_in_flight),
        cmocka_unit_test(test_eight_workers_never_put_more_than_the_limit_in_flight),
        cmocka_unit_test(test_sixteen_workers_never_put_more_than_the_limit_in_flight),
        cmocka_unit_test(test_a_stopped_holder_keeps_its_slot_and_gives_it_back_when_it_goes_on),
        cmocka_unit_test(test_a_stopped_holder_past_slot_timeout_loses_its_slot_and_frees_none),
        cmocka_unit_test(test_killed_holders_slots_come_back_when_the_bulkhead_is_full),
        cmocka_unit_test(test_a_waiter_gets_the_slot_of_a_holder_killed_while_it_waits),
    };
    return t_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0]);
}
