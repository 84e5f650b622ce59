/* SPDX-License-Identifier: MIT */
/*
 * Crash: a child SIGKILLed at every named point inside the table lock (and
 * inside segment creation), and while holding a probe lease, and between
 * admission and record. The survivors repair the table through the robust
 * mutex, `cbshm_check` finds it clean, and every breaker stays usable.
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

#include "harness.h"
#include "internal.h"

static const char *BASE = "capacity: 8\nbreakers:\n"
                          "  - name: a\n    failure_threshold: 2\n    open_timeout: 1s\n"
                          "    probe_timeout: 1h\n    half_open_max_calls: 1\n"
                          "  - name: b\n  - name: c\n";
static const char *NEXT = "capacity: 8\nbreakers:\n"
                          "  - name: a\n    failure_threshold: 3\n    open_timeout: 1s\n"
                          "    probe_timeout: 1h\n    half_open_max_calls: 1\n"
                          "  - name: c\n  - name: d\n";

static struct cbshm_breaker *get(struct cbshm *shm, const char *name)
{
    struct cbshm_breaker *b = NULL;
    assert_int_equal(cbshm_breaker_get(shm, name, &b), 0);
    return b;
}

/* What the child does before it reaches the crash point. */
typedef void (*action_fn)(const char *seg);

static void act_apply_next(const char *seg)
{
    t_apply(seg, NEXT);
}

static void act_create(const char *seg)
{
    t_apply(seg, BASE);
}

static void act_trip(const char *seg)
{
    struct cbshm *shm;
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    struct cbshm_breaker *b = get(shm, "a");
    cbshm_execute(b, t_fail_fn, NULL);
    cbshm_execute(b, t_fail_fn, NULL);
}

static void act_probe(const char *seg)
{
    struct cbshm *shm;
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    cbshm_execute(get(shm, "a"), t_ok_fn, NULL);
}

static void act_mode(const char *seg)
{
    struct cbshm *shm;
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    cbshm_set_mode(shm, "a", CBSHM_MODE_FORCED_OPEN);
}

static void act_first_call(const char *seg)
{
    struct cbshm *shm;
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    cbshm_execute(get(shm, "w"), t_ok_fn, NULL); /* the first call rolls */
}

/* Forks a child that does act(seg) and stops itself (SIGSTOP) at crash
   point `at`; returns its pid once it is stopped there. */
static int stop_at(const char *at, void (*act)(const char *), const char *seg)
{
    int pid, status;

    if ((pid = fork()) == 0) {
        setenv("CBSHM_CRASH_AT", at, 1);
        setenv("CBSHM_CRASH_SIGNAL", "STOP", 1);
        act(seg);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
    if (!WIFSTOPPED(status)) {
        kill(pid, SIGKILL);
        fail_msg("the child did not stop at %s", at);
    }
    return pid;
}

static void act_reset_named(const char *seg, const char *name)
{
    struct cbshm *shm;
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    cbshm_reset(shm, name);
}

static void act_reset(const char *seg)
{
    act_reset_named(seg, "a");
}

/* Brings breaker a to the state the action needs. */
enum prep { PREP_NONE, PREP_SEGMENT, PREP_OPEN_EXPIRED };

struct crash_case {
    const char *point;
    enum prep prep;
    action_fn action;
    int holds_lock;
};

static void prepare(const char *seg, enum prep prep)
{
    struct cbshm *shm;

    if (prep == PREP_NONE)
        return;
    t_apply(seg, BASE);
    if (prep == PREP_OPEN_EXPIRED) {
        assert_int_equal(cbshm_open(seg, 0, &shm), 0);
        struct cbshm_breaker *b = get(shm, "a");
        cbshm_execute(b, t_fail_fn, NULL);
        cbshm_execute(b, t_fail_fn, NULL);
        cbshm_breaker_release(b);
        cbshm_close(shm);
        t_clock_advance_ms(1000);
    }
}

static void check_report(void *ctx, const char *m)
{
    (void)ctx;
    print_error("check: %s\n", m);
}

/* The survivor's view: repaired, clean, every breaker usable. */
static void survive(const char *seg, int holds_lock)
{
    struct cbshm *shm;
    struct cbshm_info info;
    const char *names[] = {"a", "b", "c", "d"};

    /* A re-apply always works, whatever the crash left. */
    t_apply(seg, BASE);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_check(shm, check_report, NULL), 0);
    assert_int_equal(cbshm_info(shm, &info), 0);
    if (holds_lock)
        assert_int_equal(info.lock_repairs, 1);
    assert_int_equal(info.breakers, 3);
    for (int i = 0; i < 3; i++) {
        struct cbshm_breaker *b = get(shm, names[i]);
        assert_int_equal(cbshm_reset(shm, names[i]), 0);
        assert_int_equal(cbshm_execute(b, t_ok_fn, NULL), 0);
        assert_int_equal(cbshm_breaker_error(b), 0);
        cbshm_breaker_release(b);
    }
    cbshm_close(shm);
}

static void run_case(const struct crash_case *c)
{
    char seg[64];
    int pid;

    t_clock_install(1000000000000ull);
    t_segment_name(seg);
    prepare(seg, c->prep);
    if ((pid = fork()) == 0) {
        setenv("CBSHM_CRASH_AT", c->point, 1);
        c->action(seg);
        _exit(0); /* the point was never reached */
    }
    if (t_wait(pid) != 128 + SIGKILL)
        fail_msg("child did not die at crash point %s", c->point);
    survive(seg, c->holds_lock);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

#define CASE(name, point, prep, action, holds)                           \
    static void name(void **state)                                       \
    {                                                                    \
        static const struct crash_case c = {point, prep, action, holds}; \
        (void)state;                                                     \
        run_case(&c);                                                    \
    }

CASE(test_crash_after_creating_the_name_is_recovered_by_the_next_apply, "create.after_open",
     PREP_NONE, act_create, 0)
CASE(test_crash_before_initialising_the_segment_is_recovered, "create.before_init", PREP_NONE,
     act_create, 0)
CASE(test_crash_before_publishing_the_header_is_recovered, "create.before_publish", PREP_NONE,
     act_create, 0)
CASE(test_crash_while_adding_a_breaker_is_repaired, "add.filled", PREP_SEGMENT, act_apply_next, 1)
CASE(test_crash_after_publishing_a_new_slot_is_repaired, "add.published", PREP_SEGMENT,
     act_apply_next, 1)
CASE(test_crash_while_removing_a_breaker_is_repaired, "remove.unpublished", PREP_SEGMENT,
     act_apply_next, 1)
CASE(test_crash_while_rebuilding_the_index_is_repaired, "reindex.cleared", PREP_SEGMENT,
     act_apply_next, 1)
CASE(test_crash_after_apply_removed_a_breaker_is_repaired, "apply.removed", PREP_SEGMENT,
     act_apply_next, 1)
CASE(test_crash_after_apply_updated_settings_is_repaired, "apply.updated", PREP_SEGMENT,
     act_apply_next, 1)
CASE(test_crash_while_tripping_is_repaired, "trip.locked", PREP_SEGMENT, act_trip, 1)
CASE(test_crash_inside_the_open_transition_is_repaired, "transition.open", PREP_SEGMENT, act_trip,
     1)
CASE(test_crash_while_entering_half_open_is_repaired, "half_open.locked", PREP_OPEN_EXPIRED,
     act_probe, 1)
CASE(test_crash_inside_the_half_open_transition_is_repaired, "transition.half_open",
     PREP_OPEN_EXPIRED, act_probe, 1)
CASE(test_crash_right_after_taking_a_probe_lease_is_repaired, "probe.leased", PREP_OPEN_EXPIRED,
     act_probe, 1)
CASE(test_crash_inside_the_close_transition_is_repaired, "transition.closed", PREP_OPEN_EXPIRED,
     act_probe, 1)
CASE(test_crash_while_changing_a_mode_is_repaired, "mode.locked", PREP_SEGMENT, act_mode, 1)
CASE(test_crash_half_way_through_a_reset_is_repaired, "reset.counters_cleared", PREP_SEGMENT,
     act_reset, 1)

CASE(test_crash_inside_a_window_reset_is_repaired, "window.reset", PREP_SEGMENT, act_reset, 1)

/* A rate breaker whose count window must see failures after calls that
   left it: 5 failures, 20 successes, 5 failures is 5 of the last 10. */
static const char *RATE = "capacity: 4\nbreakers:\n  - name: w\n    policy: rate\n"
                          "    failure_rate: 50\n    minimum_calls: 10\n    window_size: 10\n";

static void window_still_counts(const char *seg)
{
    struct cbshm_snapshot s;
    struct cbshm_breaker *b;
    struct cbshm *shm;

    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    b = get(shm, "w");
    for (int i = 0; i < 30; i++)
        cbshm_execute(b, i < 5 || i >= 25 ? t_fail_fn : t_ok_fn, NULL);
    assert_int_equal(cbshm_snapshot(shm, "w", &s), 0);
    if (s.state != CBSHM_STATE_OPEN)
        fail_msg("window %llu calls, %llu failures: it should have tripped",
                 (unsigned long long)s.window_calls, (unsigned long long)s.window_failures);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

/* A lock owner killed half way through a window reset: the repair redoes
   the reset, and the window works after. */
static void test_a_death_inside_a_window_reset_leaves_a_working_window(void **state)
{
    struct cbshm_snapshot s;
    struct cbshm *shm;
    char seg[64];
    int pid;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), RATE);
    if ((pid = fork()) == 0) {
        setenv("CBSHM_CRASH_AT", "window.reset", 1);
        act_reset_named(seg, "w");
        _exit(0);
    }
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, "w", &s), 0); /* takes the lock: repairs */
    assert_int_equal(s.window_calls, 0);
    cbshm_close(shm);
    window_still_counts(seg);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

/*
 * A time-window roller stopped between claiming a bucket and writing it,
 * while apply turns the window into a count window: when it goes on, it
 * must leave nothing the count window would read (its bucket number is a
 * time bucket's, its sums of the old window).
 */
static void test_a_roller_stopped_across_a_window_change_leaves_the_new_window_working(void **state)
{
    static const char *TIME = "capacity: 4\nbreakers:\n  - name: w\n    policy: rate\n"
                              "    failure_rate: 50\n    minimum_calls: 10\n"
                              "    window_type: time\n    window_duration: 10s\n";
    char seg[64];
    int pid;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), TIME);
    pid = stop_at("window.time_rolled", act_first_call, seg);
    t_apply(seg, RATE); /* a count window now: a reset, a new epoch */
    kill(pid, SIGCONT);
    assert_int_equal(t_wait(pid), 0);
    window_still_counts(seg);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

/* A worker that dies holding a probe lease gives it back at once. */
static void test_a_dead_probe_owner_loses_its_lease_before_the_deadline(void **state)
{
    char seg[64];
    int pid, ready[2];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    struct cbshm_ticket t;

    (void)state;
    t_clock_install(1000000000000ull);
    prepare(t_segment_name(seg), PREP_OPEN_EXPIRED);
    assert_int_equal(pipe(ready), 0);
    if ((pid = fork()) == 0) {
        struct cbshm *cs;
        struct cbshm_ticket ct;
        assert_int_equal(cbshm_open(seg, 0, &cs), 0);
        if (cbshm_allow(get(cs, "a"), &ct) != 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(2);
        pause(); /* the probe hangs */
        _exit(0);
    }
    char ch;
    assert_int_equal(read(ready[0], &ch, 1), 1);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    b = get(shm, "a");
    assert_int_equal(cbshm_allow(b, &t), CBSHM_EREJECTED); /* lease held, 1h deadline */
    kill(pid, SIGKILL);
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    t_clock_advance_ms(20); /* past the 10 ms between owner scans, far before 1h */
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    assert_int_equal(s.probes_reclaimed, 1);
    assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    assert_int_equal(cbshm_check(shm, check_report, NULL), 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

/* A worker killed between admission and record, in each state and mode. */
static void test_a_worker_killed_between_admission_and_record_leaves_no_trace(void **state)
{
    static const enum cbshm_mode modes[] = {CBSHM_MODE_NORMAL, CBSHM_MODE_FORCED_CLOSED,
                                            CBSHM_MODE_DISABLED};
    char seg[64];
    struct cbshm *shm;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), BASE);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        for (int st = 0; st < 2; st++) { /* closed, then half-open */
            struct cbshm_breaker *b = get(shm, "a");
            struct cbshm_snapshot before, after;
            struct cbshm_ticket t;
            int pid;

            assert_int_equal(cbshm_reset(shm, "a"), 0);
            assert_int_equal(cbshm_set_mode(shm, "a", CBSHM_MODE_NORMAL), 0);
            if (st == 1) {
                cbshm_execute(b, t_fail_fn, NULL);
                cbshm_execute(b, t_fail_fn, NULL);
                t_clock_advance_ms(1000);
            }
            assert_int_equal(cbshm_set_mode(shm, "a", modes[m]), 0);
            assert_int_equal(cbshm_snapshot(shm, "a", &before), 0);
            if ((pid = fork()) == 0) {
                struct cbshm_ticket ct;
                if (cbshm_allow(b, &ct) != 0)
                    _exit(1);
                raise(SIGKILL);
            }
            assert_int_equal(t_wait(pid), 128 + SIGKILL);
            assert_int_equal(cbshm_snapshot(shm, "a", &after), 0);
            assert_int_equal(after.requests, before.requests);
            /* The admission itself may have moved open to half-open. */
            if (st == 0 || modes[m] != CBSHM_MODE_NORMAL)
                assert_int_equal(after.state, before.state);
            else
                assert_int_equal(after.state, CBSHM_STATE_HALF_OPEN);
            /* The survivors are admitted: nothing was left held. */
            t_clock_advance_ms(20);
            assert_int_equal(cbshm_allow(b, &t), 0);
            assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0);
            assert_int_equal(cbshm_check(shm, check_report, NULL), 0);
            cbshm_breaker_release(b);
        }
    }
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

/* cbctl itself killed inside the lock: cbctl check is clean afterwards. */
static void test_cbctl_killed_inside_the_lock_leaves_cbctl_check_clean(void **state)
{
    char seg[64], cmd[512];
    int rc;

    (void)state;
    t_apply(t_segment_name(seg), BASE);
    snprintf(cmd, sizeof cmd, "CBSHM_CRASH_AT=mode.locked %s --segment %s open a 2>/dev/null",
             CBCTL_PATH, seg);
    rc = system(cmd);
    assert_true(WIFSIGNALED(rc) || (WIFEXITED(rc) && WEXITSTATUS(rc) == 128 + SIGKILL));
    snprintf(cmd, sizeof cmd, "%s --segment %s check >/dev/null", CBCTL_PATH, seg);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A lock holder frozen by SIGSTOP: others give up after a bound, fail
   open, and repair once it is killed. */
static void test_a_stopped_lock_holder_makes_others_fail_open_not_hang(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    int pid, ran = 0;

    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* the tsan build's lock waits unbounded (lock.c) */
#endif
    t_apply(t_segment_name(seg), BASE);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    b = get(shm, "a");
    pid = stop_at("mode.locked", act_mode, seg);
    /* The hot path of a closed breaker needs no lock at all. */
    assert_int_equal(cbshm_execute(b, t_ok_fn, NULL), 0);
    assert_int_equal(cbshm_breaker_error(b), 0);
    /* A trip needs it: the failure is recorded, the trip waits out the
       bound and is skipped, the call was made and returns 0. */
    assert_int_equal(cbshm_execute(b, t_fail_fn, &ran), 0);
    assert_int_equal(cbshm_execute(b, t_fail_fn, &ran), 0);
    int err = cbshm_breaker_error(b), snap_rc = cbshm_snapshot(shm, "a", &s);
    kill(pid, SIGKILL); /* before any assertion can leave it stopped */
    assert_int_equal(err, CBSHM_ELOCK);
    assert_int_equal(snap_rc, CBSHM_ELOCK);
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    assert_int_equal(s.failures, 2);
    assert_int_equal(cbshm_check(shm, check_report, NULL), 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A stopped lock holder costs a worker the lock's bound once, not on
   every call that needs the lock: after a timeout the hot path only tries
   it, and takes it at once when the holder is gone. */
static void test_a_wedged_lock_costs_one_wait_not_one_a_call(void **state)
{
    struct timespec t0, t1;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    struct cbshm *shm;
    char seg[64];
    int pid;
    double seconds;

    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* the tsan build's lock waits unbounded (lock.c) */
#endif
    t_apply(t_segment_name(seg), "capacity: 4\nbreakers:\n  - name: a\n"
                                 "    failure_threshold: 1\n    open_timeout: 1h\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    b = get(shm, "a");
    pid = stop_at("mode.locked", act_mode, seg);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10; i++) /* each failure would trip: each needs the lock */
        cbshm_execute(b, t_fail_fn, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int err = cbshm_breaker_error(b);
    kill(pid, SIGKILL); /* the holder dies: the next try takes and repairs it */
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (seconds > 3)
        fail_msg("10 calls that need a wedged lock took %.1f s", seconds);
    assert_int_equal(err, CBSHM_ELOCK);
    cbshm_execute(b, t_fail_fn, NULL); /* within the back-off: tried, taken */
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_OPEN);
    assert_int_equal(s.failures, 11);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* The back-off is the process's, for the segment: four mappings of it
   (a process that opens one per breaker, as Python's open_breaker did)
   wait the bound once between them, not once each. */
static void test_a_wedged_lock_costs_one_wait_for_all_mappings_of_a_segment(void **state)
{
    enum { MAPPINGS = 4 };
    struct cbshm_breaker *b[MAPPINGS];
    struct cbshm *shm[MAPPINGS];
    struct timespec t0, t1;
    char seg[64];
    double seconds;
    int pid;

    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* the tsan build's lock waits unbounded (lock.c) */
#endif
    t_apply(t_segment_name(seg), "capacity: 4\nbreakers:\n  - name: a\n"
                                 "    failure_threshold: 1\n    open_timeout: 1h\n");
    for (int i = 0; i < MAPPINGS; i++) {
        assert_int_equal(cbshm_open(seg, 0, &shm[i]), 0);
        b[i] = get(shm[i], "a");
    }
    pid = stop_at("mode.locked", act_mode, seg);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < MAPPINGS; i++)
        cbshm_execute(b[i], t_fail_fn, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(pid, SIGKILL);
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (seconds > 2)
        fail_msg("a failure on each of %d mappings of a wedged segment took %.1f s", MAPPINGS,
                 seconds);
    for (int i = 0; i < MAPPINGS; i++) {
        assert_int_equal(cbshm_breaker_error(b[i]), CBSHM_ELOCK);
        cbshm_breaker_release(b[i]);
        cbshm_close(shm[i]);
    }
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A read-only view cannot take the lock, so it reads between changes:
   behind a stopped holder it waits the lock's bound and says so; after a
   holder died mid-change, it waits for the next writer to repair, then
   reads what the repair made. Never a torn copy, never a hang. */
static void test_a_read_only_view_waits_out_a_change_and_never_reads_it_half_made(void **state)
{
    struct cbshm_snapshot s;
    struct cbshm *ro, *rw;
    struct timespec t0, t1;
    char seg[64];
    double seconds;
    int pid;

    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* the tsan build's lock waits unbounded (lock.c) */
#endif
    t_apply(t_segment_name(seg), BASE);
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &ro), 0);
    assert_int_equal(cbshm_snapshot(ro, "a", &s), 0);
    assert_int_equal(s.mode, CBSHM_MODE_NORMAL);
    pid = stop_at("mode.locked", act_mode, seg);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = cbshm_snapshot(ro, "a", &s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(pid, SIGKILL); /* dies holding the lock, mid-change */
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(rc, CBSHM_ELOCK);
    assert_true(seconds >= 0.9 && seconds < 3);
    assert_int_equal(cbshm_snapshot(ro, "a", &s), CBSHM_ELOCK); /* nobody repaired yet */
    assert_int_equal(cbshm_open(seg, 0, &rw), 0);
    assert_int_equal(cbshm_check(rw, NULL, NULL), 0); /* takes the lock: repairs */
    assert_int_equal(cbshm_snapshot(ro, "a", &s), 0);
    assert_int_equal(cbshm_check(ro, NULL, NULL), 0);
    cbshm_close(rw);
    cbshm_close(ro);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* cbctl destroy while the lock's holder is stopped: the workers must
   still leave the destroyed segment (retiring used to need the lock) and
   move to the one applied in its place. */
static void test_a_destroy_behind_a_stopped_lock_holder_still_moves_the_workers(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    struct cbshm *shm, *fresh;
    char seg[64];
    int pid, ran = 0, err;

    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* the tsan build's lock waits unbounded (lock.c) */
#endif
    t_apply(t_segment_name(seg), BASE);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    b = get(shm, "b");
    assert_int_equal(cbshm_execute(b, t_ok_fn, NULL), 0);
    pid = stop_at("mode.locked", act_mode, seg);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0); /* runs, unguarded */
    err = cbshm_breaker_error(b);
    kill(pid, SIGKILL);
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    assert_int_equal(err, CBSHM_ERETIRED);
    t_apply(seg, BASE);
    usleep(300 * 1000); /* past the handle's look-again interval */
    assert_int_equal(cbshm_execute(b, t_ok_fn, NULL), 0);
    assert_int_equal(cbshm_open(seg, 0, &fresh), 0);
    assert_int_equal(cbshm_snapshot(fresh, "b", &s), 0);
    assert_int_equal(s.successes, 1);
    cbshm_close(fresh);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A destroy that died after it marked the segment retired, before it
   unlinked the name: check says so, and apply finishes it - a new segment,
   not "no changes" on a dead one. */
static void count_change(void *ctx, const struct cbshm_change *c)
{
    if (c->kind == CBSHM_CHANGE_CREATED_SEGMENT)
        ++*(int *)ctx;
}

static void test_a_destroy_that_died_before_unlinking_is_finished_by_apply(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_header *h;
    struct cbshm *shm;
    struct cbshm_diag d;
    char seg[64];
    size_t bytes;
    int created = 0;

    (void)state;
    t_apply(t_segment_name(seg), BASE);
    h = t_raw_map(seg, &bytes);
    atomic_store(&h->retired, 1); /* the first half of a destroy */
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_true(cbshm_check(shm, NULL, NULL) >= 1);
    cbshm_close(shm);
    munmap(h, bytes);
    assert_int_equal(cbshm_config_load_string(BASE, strlen(BASE), "t", &cfg, &d), 0);
    assert_int_equal(cbshm_apply(cfg, seg, 0, count_change, &created, NULL), 0);
    assert_int_equal(created, 1);
    cbshm_config_free(cfg);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_check(shm, check_report, NULL), 0);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_destroy_behind_a_stopped_lock_holder_still_moves_the_workers),
    cmocka_unit_test(test_a_destroy_that_died_before_unlinking_is_finished_by_apply),
    cmocka_unit_test(test_a_wedged_lock_costs_one_wait_not_one_a_call),
    cmocka_unit_test(test_a_wedged_lock_costs_one_wait_for_all_mappings_of_a_segment),
    cmocka_unit_test(test_a_read_only_view_waits_out_a_change_and_never_reads_it_half_made),
    cmocka_unit_test(test_a_stopped_lock_holder_makes_others_fail_open_not_hang),
    cmocka_unit_test(test_crash_after_creating_the_name_is_recovered_by_the_next_apply),
    cmocka_unit_test(test_crash_before_initialising_the_segment_is_recovered),
    cmocka_unit_test(test_crash_before_publishing_the_header_is_recovered),
    cmocka_unit_test(test_crash_while_adding_a_breaker_is_repaired),
    cmocka_unit_test(test_crash_after_publishing_a_new_slot_is_repaired),
    cmocka_unit_test(test_crash_while_removing_a_breaker_is_repaired),
    cmocka_unit_test(test_crash_while_rebuilding_the_index_is_repaired),
    cmocka_unit_test(test_crash_after_apply_removed_a_breaker_is_repaired),
    cmocka_unit_test(test_crash_after_apply_updated_settings_is_repaired),
    cmocka_unit_test(test_crash_while_tripping_is_repaired),
    cmocka_unit_test(test_crash_inside_the_open_transition_is_repaired),
    cmocka_unit_test(test_crash_while_entering_half_open_is_repaired),
    cmocka_unit_test(test_crash_inside_the_half_open_transition_is_repaired),
    cmocka_unit_test(test_crash_right_after_taking_a_probe_lease_is_repaired),
    cmocka_unit_test(test_crash_inside_the_close_transition_is_repaired),
    cmocka_unit_test(test_crash_while_changing_a_mode_is_repaired),
    cmocka_unit_test(test_crash_half_way_through_a_reset_is_repaired),
    cmocka_unit_test(test_crash_inside_a_window_reset_is_repaired),
    cmocka_unit_test(test_a_death_inside_a_window_reset_leaves_a_working_window),
    cmocka_unit_test(test_a_roller_stopped_across_a_window_change_leaves_the_new_window_working),
    cmocka_unit_test(test_a_dead_probe_owner_loses_its_lease_before_the_deadline),
    cmocka_unit_test(test_a_worker_killed_between_admission_and_record_leaves_no_trace),
    cmocka_unit_test(test_cbctl_killed_inside_the_lock_leaves_cbctl_check_clean),
};
T_MAIN(tests)
