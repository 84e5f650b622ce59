/* SPDX-License-Identifier: MIT */
/*
 * The bulkhead: admission and release on both APIs, the rejection's
 * reason and figures, probes, modes, a dead holder's slot and a ticket
 * never recorded taken back, max_wait's sleep and wake-up, a limit
 * changed live, the quota following the live workers, its events, and
 * the settings' checks. Processes and signals are real.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
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

struct fixture {
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
};

static struct fixture fx;

static struct fixture *open_with(const char *yaml)
{
    t_segment_name(fx.seg);
    t_apply(fx.seg, yaml);
    assert_int_equal(cbshm_open(fx.seg, 0, &fx.shm), 0);
    assert_int_equal(cbshm_breaker_get(fx.shm, "api", &fx.b), 0);
    return &fx;
}

static int teardown(void **state)
{
    (void)state;
    if (fx.b != NULL)
        cbshm_breaker_release(fx.b);
    if (fx.shm != NULL)
        cbshm_close(fx.shm);
    cbshm_destroy(fx.seg);
    memset(&fx, 0, sizeof fx);
    cbshm_clock_set(NULL, NULL);
    return 0;
}

static struct cbshm_snapshot snap(struct fixture *f)
{
    struct cbshm_snapshot s;

    assert_int_equal(cbshm_snapshot(f->shm, "api", &s), 0);
    return s;
}

static enum cbshm_refusal why(struct fixture *f)
{
    struct cbshm_rejection r;

    assert_int_equal(cbshm_breaker_rejection(f->b, &r), 0);
    return r.why;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *LIMIT2 = "breakers:\n"
                            "  - name: api\n"
                            "    max_concurrent_calls: 2\n";

static void test_a_full_bulkhead_rejects_with_its_reason_and_counts(void **state)
{
    struct fixture *f = open_with(LIMIT2);
    struct cbshm_ticket a, b, c;
    struct cbshm_snapshot s;

    (void)state;
    assert_int_equal(cbshm_allow(f->b, &a), 0);
    assert_int_equal(cbshm_allow(f->b, &b), 0);
    assert_int_equal(cbshm_allow(f->b, &c), CBSHM_EREJECTED);
    assert_int_equal(why(f), CBSHM_REFUSAL_BULKHEAD_FULL);
    assert_int_equal(cbshm_record(f->b, &c, CBSHM_SUCCESS), CBSHM_EINVAL); /* nothing to record */
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), CBSHM_EREJECTED);
    s = snap(f);
    assert_int_equal(s.bulkhead_limit, 2);
    assert_int_equal(s.bulkhead_in_flight, 2);
    assert_int_equal(s.bulkhead_rejections, 2);
    assert_int_equal(s.rejections, 2);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    /* One back: the next call gets in, and nothing says refused. */
    assert_int_equal(cbshm_record(f->b, &a, CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 1);
    assert_int_equal(cbshm_allow(f->b, &c), 0);
    assert_int_equal(why(f), CBSHM_REFUSAL_BULKHEAD_FULL); /* full again: 2 held */
    assert_int_equal(cbshm_record(f->b, &b, CBSHM_FAILURE), 0);
    assert_int_equal(why(f), CBSHM_REFUSAL_NONE);
    assert_int_equal(cbshm_record(f->b, &c, CBSHM_IGNORED), 0);
    s = snap(f);
    assert_int_equal(s.bulkhead_in_flight, 0);
    assert_int_equal(s.successes, 1);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.ignored, 1);
}

static void test_every_outcome_and_record_call_gives_its_slot_back(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    failure_threshold: 1000\n"
                                  "    slow_call_duration: 1h\n"
                                  "    slow_call_rate: 100%\n");
    struct cbshm_ticket t;

    (void)state;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(cbshm_execute(f->b, i % 2 ? t_ok_fn : t_fail_fn, NULL), 0);
        assert_int_equal(cbshm_allow(f->b, &t), 0);
        switch (i % 4) {
        case 0:
            assert_int_equal(cbshm_record(f->b, &t, (enum cbshm_outcome)(i % 3)), 0);
            break;
        case 1:
            assert_int_equal(cbshm_record_timed(f->b, &t, CBSHM_SUCCESS, 5), 0);
            break;
        case 2:
            assert_int_equal(cbshm_record_retry_after(f->b, &t, CBSHM_SUCCESS, 0), 0);
            break;
        default:
            assert_int_equal(cbshm_record(f->b, &t, CBSHM_FAILURE), 0);
            break;
        }
        assert_int_equal(snap(f).bulkhead_in_flight, 0);
    }
    /* A retry-after failure opens it, and its slot still goes back. */
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record_retry_after(f->b, &t, CBSHM_FAILURE, 1000000000ull), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
    assert_int_equal(snap(f).bulkhead_rejections, 0);
}

static void test_a_probe_takes_a_slot_and_gives_its_lease_back_without_one(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    failure_threshold: 1\n"
                                  "    half_open_max_calls: 2\n"
                                  "    open_timeout: 1s\n");
    struct cbshm_ticket p, q;
    struct cbshm_snapshot s;

    (void)state;
    t_clock_install(1000000000000ull);
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    t_clock_advance_ms(1000);
    assert_int_equal(cbshm_allow(f->b, &p), 0); /* the probe, with the one slot */
    s = snap(f);
    assert_int_equal(s.state, CBSHM_STATE_HALF_OPEN);
    assert_int_equal(s.probes_in_flight, 1);
    assert_int_equal(s.bulkhead_in_flight, 1);
    /* A second lease is free, the bulkhead is not: refused, lease kept free. */
    assert_int_equal(cbshm_allow(f->b, &q), CBSHM_EREJECTED);
    assert_int_equal(why(f), CBSHM_REFUSAL_BULKHEAD_FULL);
    s = snap(f);
    assert_int_equal(s.probes_in_flight, 1);
    assert_int_equal(s.bulkhead_rejections, 1);
    /* The probe closes it and its slot goes back. */
    assert_int_equal(cbshm_record(f->b, &p, CBSHM_SUCCESS), 0);
    s = snap(f);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    assert_int_equal(s.bulkhead_in_flight, 0);
}

/* A probe taken by another thread: its ticket comes back in *arg. */
static void *probe_thread(void *arg)
{
    return (void *)(intptr_t)cbshm_allow(fx.b, arg);
}

/* A bulkhead rejection is this thread's answer only while the breaker
   stays in the state it was refused in: tripped since, half-open with a
   lease and a slot free, the next call probes; the bulkhead has room. */
static void test_a_bulkhead_rejection_is_not_the_reason_once_the_state_changed(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 2\n"
                                  "    failure_threshold: 1\n"
                                  "    half_open_max_calls: 2\n"
                                  "    open_timeout: 1s\n");
    struct cbshm_ticket held[2], refused, probe;
    pthread_t th;
    void *rc;

    (void)state;
    t_clock_install(1000000000000ull);
    assert_int_equal(cbshm_allow(f->b, &held[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &held[1]), 0);
    assert_int_equal(cbshm_allow(f->b, &refused), CBSHM_EREJECTED);
    assert_int_equal(why(f), CBSHM_REFUSAL_BULKHEAD_FULL);
    assert_int_equal(cbshm_record(f->b, &held[0], CBSHM_FAILURE), 0); /* trips it */
    assert_int_equal(cbshm_record(f->b, &held[1], CBSHM_FAILURE), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    assert_int_equal(why(f), CBSHM_REFUSAL_OPEN);
    assert_int_equal(cbshm_allow(f->b, &refused), CBSHM_EREJECTED); /* by state */
    t_clock_advance_ms(1000);
    /* Another thread probes: half-open, a lease and a slot still free. */
    assert_int_equal(pthread_create(&th, NULL, probe_thread, &probe), 0);
    assert_int_equal(pthread_join(th, &rc), 0);
    assert_int_equal((intptr_t)rc, 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_HALF_OPEN);
    assert_int_equal(snap(f).bulkhead_in_flight, 1);
    assert_int_equal(why(f), CBSHM_REFUSAL_NONE);
    assert_int_equal(cbshm_record(f->b, &probe, CBSHM_SUCCESS), 0);
}

static void test_forced_closed_is_bounded_and_disabled_is_not(void **state)
{
    struct fixture *f = open_with(LIMIT2);
    struct cbshm_ticket t[4];

    (void)state;
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_CLOSED), 0);
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    assert_int_equal(why(f), CBSHM_REFUSAL_BULKHEAD_FULL);
    assert_int_equal(cbshm_record(f->b, &t[0], CBSHM_FAILURE), 0);
    assert_int_equal(cbshm_record(f->b, &t[1], CBSHM_FAILURE), 0);
    /* Disabled: the library stands aside, bulkhead and all. */
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_DISABLED), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cbshm_allow(f->b, &t[i]), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cbshm_record(f->b, &t[i], CBSHM_SUCCESS), 0);
    /* Forced open rejects as forced open, not as full. */
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(cbshm_allow(f->b, &t[0]), CBSHM_EREJECTED);
    assert_int_equal(why(f), CBSHM_REFUSAL_FORCED_OPEN);
}

static void test_a_dead_holders_slot_returns_to_the_pool(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n");
    struct cbshm_ticket t;
    int child;

    (void)state;
    if ((child = fork()) == 0) {
        struct cbshm *shm;
        struct cbshm_breaker *b;
        if (cbshm_open(fx.seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "api", &b) != 0 ||
            cbshm_allow(b, &t) != 0)
            _exit(1);
        raise(SIGKILL); /* between allow and record */
        _exit(2);
    }
    assert_int_equal(t_wait(child), 128 + SIGKILL);
    assert_int_equal(snap(f).bulkhead_in_flight, 1);
    /* Full, so the holder is looked at: it is dead, its slot comes back. */
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(snap(f).bulkhead_reclaimed, 1);
    assert_int_equal(snap(f).bulkhead_in_flight, 1);
    assert_int_equal(snap(f).bulkhead_rejections, 0);
    assert_int_equal(cbshm_record(f->b, &t, CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

static void test_a_stopped_holder_keeps_its_slot(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n");
    struct cbshm_ticket t;
    int ready[2], child;
    char c;

    (void)state;
    assert_int_equal(pipe(ready), 0);
    if ((child = fork()) == 0) {
        struct cbshm *shm;
        struct cbshm_breaker *b;
        if (cbshm_open(fx.seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "api", &b) != 0 ||
            cbshm_allow(b, &t) != 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        raise(SIGSTOP);
        _exit(cbshm_record(b, &t, CBSHM_SUCCESS) == 0 ? 0 : 3);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);
    /* Alive, stopped or not: its call may still be running. */
    usleep(20000); /* past the 10 ms between looks at the holders */
    assert_int_equal(cbshm_allow(f->b, &t), CBSHM_EREJECTED);
    assert_int_equal(snap(f).bulkhead_reclaimed, 0);
    kill(child, SIGCONT);
    assert_int_equal(t_wait(child), 0);
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record(f->b, &t, CBSHM_SUCCESS), 0);
    close(ready[0]);
    close(ready[1]);
}

static void test_a_ticket_never_recorded_is_taken_back_after_slot_timeout(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    slot_timeout: 500ms\n");
    struct cbshm_ticket lost, next;

    (void)state;
    t_clock_install(1000000000000ull);
    assert_int_equal(cbshm_allow(f->b, &lost), 0);
    t_clock_advance_ms(499);
    assert_int_equal(cbshm_allow(f->b, &next), CBSHM_EREJECTED);
    /* Due now; looked at within 10 ms (full callers look that often). */
    t_clock_advance_ms(11);
    assert_int_equal(cbshm_allow(f->b, &next), 0);
    assert_int_equal(snap(f).bulkhead_reclaimed, 1);
    /* The lost call's late record frees nothing: the slot is next's now. */
    assert_int_equal(cbshm_record(f->b, &lost, CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 1);
    assert_int_equal(cbshm_allow(f->b, &lost), CBSHM_EREJECTED);
    assert_int_equal(cbshm_record(f->b, &next, CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

static enum cbshm_outcome bad_outcome(void *arg)
{
    (void)arg;
    return (enum cbshm_outcome)42;
}

/* resilience4j releases the permit whatever the call did: cbshm_execute
   gives the slot back for an outcome that is none (counted a failure). */
static void test_execute_gives_the_slot_back_for_an_outcome_that_is_none(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n");

    (void)state;
    assert_int_equal(cbshm_execute(f->b, bad_outcome, NULL), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
    assert_int_equal(snap(f).failures, 1);
}

struct waiter {
    struct fixture *f;
    int rc;
    enum cbshm_refusal why;
    uint64_t waited_ms;
};

static void *wait_for_a_slot(void *arg)
{
    struct waiter *w = arg;
    struct cbshm_ticket t;
    struct cbshm_rejection r;
    uint64_t t0 = mono_ms();

    w->rc = cbshm_allow(w->f->b, &t);
    w->waited_ms = mono_ms() - t0;
    if (w->rc == 0)
        cbshm_record(w->f->b, &t, CBSHM_SUCCESS);
    else if (cbshm_breaker_rejection(w->f->b, &r) == 0)
        w->why = r.why;
    return NULL;
}

/* A caller waiting for a slot decides the whole call again as it wakes:
   a breaker forced open meanwhile refuses it then, as forced open, and
   does not keep it waiting out max_wait. */
static void test_a_waiter_is_refused_as_soon_as_its_breaker_is_forced_open(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    max_wait: 5s\n");
    struct waiter w = {.f = f};
    struct cbshm_ticket held;
    pthread_t th;

    (void)state;
    assert_int_equal(cbshm_allow(f->b, &held), 0);
    assert_int_equal(pthread_create(&th, NULL, wait_for_a_slot, &w), 0);
    usleep(50000);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, CBSHM_EREJECTED);
    assert_int_equal(w.why, CBSHM_REFUSAL_FORCED_OPEN);
    assert_true(w.waited_ms < 1000);
    assert_int_equal(snap(f).bulkhead_rejections, 0); /* refused by the breaker, not the bulkhead */
    assert_int_equal(cbshm_record(f->b, &held, CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/* Semian's resource destroyed and made again while a ticket is held: the
   old ticket's record frees nothing of the new breaker's, even a slot
   word the same as its own (same process, same slot, same millisecond). */
static void test_a_ticket_of_a_deleted_breaker_frees_nothing_of_its_successor(void **state)
{
    struct fixture *f = open_with(LIMIT2);
    struct cbshm_ticket old, now;

    (void)state;
    t_clock_install(1000000000000ull); /* one millisecond throughout */
    assert_int_equal(cbshm_allow(f->b, &old), 0);
    t_apply(f->seg, "breakers:\n  - name: other\n");
    t_apply(f->seg, LIMIT2);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
    assert_int_equal(cbshm_allow(f->b, &now), 0);
    assert_int_equal(now.bulk_slot, old.bulk_slot);
    assert_true(now.bulk_word == old.bulk_word);
    assert_int_equal(cbshm_record(f->b, &old, CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 1);
    assert_int_equal(cbshm_record(f->b, &now, CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

struct holder {
    struct fixture *f;
    struct cbshm_ticket t;
    unsigned hold_ms;
};

static void *give_back_later(void *arg)
{
    struct holder *h = arg;

    usleep(h->hold_ms * 1000u);
    cbshm_record(h->f->b, &h->t, CBSHM_SUCCESS);
    return NULL;
}

static void test_max_wait_sleeps_until_a_slot_is_given_back(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    max_wait: 5s\n");
    struct holder h = {f, {0}, 200};
    struct cbshm_ticket t;
    pthread_t th;
    uint64_t start;

    (void)state;
    assert_int_equal(cbshm_allow(f->b, &h.t), 0);
    assert_int_equal(pthread_create(&th, NULL, give_back_later, &h), 0);
    start = mono_ms();
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    /* Woken by the give-back, not by the 5 s deadline. */
    assert_true(mono_ms() - start >= 150);
    assert_true(mono_ms() - start < 3000);
    pthread_join(th, NULL);
    assert_int_equal(snap(f).bulkhead_waits, 1);
    assert_int_equal(snap(f).bulkhead_rejections, 0);
    assert_int_equal(cbshm_record(f->b, &t, CBSHM_SUCCESS), 0);
}

/* A wait longer than 1.41 s, the 32-bit wrap of CBSHM_MAX_WAIT_MS in
   nanoseconds: max_wait: 3s waits past it for a slot given back at 1.6 s. */
static void test_a_wait_of_seconds_is_not_cut_short(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    max_wait: 3s\n");
    struct holder h = {.f = f, .hold_ms = 1600};
    uint64_t start, waited;
    pthread_t th;

    (void)state;
    assert_int_equal(cbshm_allow(f->b, &h.t), 0);
    assert_int_equal(pthread_create(&th, NULL, give_back_later, &h), 0);
    start = mono_ms();
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    waited = mono_ms() - start;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(waited >= 1500 && waited < 3000);
    assert_int_equal(snap(f).bulkhead_waits, 1);
    assert_int_equal(snap(f).bulkhead_rejections, 0);
}

static void test_max_wait_runs_out_and_rejects(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    max_wait: 100ms\n");
    struct cbshm_ticket held, t;
    uint64_t start;

    (void)state;
    assert_int_equal(cbshm_allow(f->b, &held), 0);
    start = mono_ms();
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), CBSHM_EREJECTED);
    assert_true(mono_ms() - start >= 90); /* the coarse clock: a tick early at most */
    assert_int_equal(why(f), CBSHM_REFUSAL_BULKHEAD_FULL);
    assert_int_equal(snap(f).bulkhead_rejections, 1);
    assert_int_equal(snap(f).bulkhead_waits, 0);
    assert_int_equal(cbshm_record(f->b, &held, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record(f->b, &t, CBSHM_SUCCESS), 0);
}

static void test_a_wait_under_a_stopped_test_clock_ends_by_real_time(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    max_wait: 100ms\n");
    struct cbshm_ticket held;
    uint64_t start;

    (void)state;
    t_clock_install(1000000000000ull); /* and never moved */
    assert_int_equal(cbshm_allow(f->b, &held), 0);
    start = mono_ms();
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), CBSHM_EREJECTED);
    assert_true(mono_ms() - start >= 90);
    assert_true(mono_ms() - start < 2000);
    assert_int_equal(cbshm_record(f->b, &held, CBSHM_SUCCESS), 0);
}

static void test_a_waiter_in_another_process_is_woken(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    max_wait: 5s\n");
    struct cbshm_ticket held;
    int child;

    (void)state;
    assert_int_equal(cbshm_allow(f->b, &held), 0);
    if ((child = fork()) == 0) {
        struct cbshm *shm;
        struct cbshm_breaker *b;
        uint64_t start = mono_ms();
        int rc;
        if (cbshm_open(fx.seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "api", &b) != 0)
            _exit(1);
        rc = cbshm_execute(b, t_ok_fn, NULL);
        _exit(rc != 0 ? 2 : mono_ms() - start >= 3000 ? 3 : 0);
    }
    usleep(200000);
    assert_int_equal(cbshm_record(f->b, &held, CBSHM_SUCCESS), 0);
    assert_int_equal(t_wait(child), 0);
    assert_int_equal(snap(f).bulkhead_waits, 1);
}

static void test_a_lower_limit_applies_as_calls_end_and_a_higher_one_at_once(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 4\n");
    struct cbshm_ticket t[6];
    struct cbshm_snapshot s;

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(cbshm_allow(f->b, &t[i]), 0);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 2\n");
    s = snap(f);
    assert_int_equal(s.bulkhead_limit, 2);
    assert_int_equal(s.bulkhead_in_flight, 4); /* nothing lost, nothing cut off */
    assert_int_equal(cbshm_allow(f->b, &t[4]), CBSHM_EREJECTED);
    /* Two end: still 2 in flight, the new limit: no room yet. */
    assert_int_equal(cbshm_record(f->b, &t[0], CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_record(f->b, &t[1], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 2);
    assert_int_equal(cbshm_allow(f->b, &t[4]), CBSHM_EREJECTED);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 5\n");
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[4]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[5]), CBSHM_EREJECTED);
    assert_int_equal(snap(f).bulkhead_in_flight, 5);
    /* No bulkhead at all: the held slots still go back. */
    t_apply(f->seg, "breakers:\n  - name: api\n");
    assert_int_equal(snap(f).bulkhead_limit, 0);
    assert_int_equal(cbshm_allow(f->b, &t[5]), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(cbshm_record(f->b, &t[i], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/* Lets a child stopped at a crash point go on, as often as it stops there
   again (a call decided again passes the point again), until it exits:
   its status as t_wait says. */
static int resume_until_exit(int child)
{
    int st;

    for (;;) {
        kill(child, SIGCONT);
        if (waitpid(child, &st, WUNTRACED) != child)
            return -1;
        if (!WIFSTOPPED(st))
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
}

/*
 * A child that opens the segment - and, `warm`, calls once first, so that
 * it holds its stripe and the common path is its next take - then asks
 * for a call with the process stopped at crash point `at` (SIGSTOP);
 * returns once it is stopped. Going on (resume_until_exit), it exits 0
 * when admitted and recorded, 3 when refused, 4 when more than `most`
 * calls were in flight once it was admitted (0: not looked at), 1 or 2
 * on any other failure.
 */
static int child_stopped_at(const char *at, bool warm, uint32_t most)
{
    int child, st;

    if ((child = fork()) == 0) {
        struct cbshm *shm;
        struct cbshm_breaker *b;
        struct cbshm_ticket mine;
        struct cbshm_snapshot s;
        int rc;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (cbshm_open(fx.seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "api", &b) != 0 ||
            (warm && cbshm_execute(b, t_ok_fn, NULL) != 0))
            _exit(1);
        setenv("CBSHM_CRASH_AT", at, 1);
        setenv("CBSHM_CRASH_SIGNAL", "STOP", 1);
        if ((rc = cbshm_allow(b, &mine)) != 0)
            _exit(rc == CBSHM_EREJECTED ? 3 : 1);
        unsetenv("CBSHM_CRASH_AT");
        if (most != 0 && (cbshm_snapshot(shm, "api", &s) != 0 || s.bulkhead_in_flight > most))
            _exit(4);
        /* Recorded, and the process lives on, as a worker does. */
        _exit(cbshm_record(b, &mine, CBSHM_SUCCESS) == 0 ? 0 : 2);
    }
    assert_int_equal(waitpid(child, &st, WUNTRACED), child);
    assert_true(WIFSTOPPED(st));
    return child;
}

/*
 * A call that goes above `high` (the limit was raised) and stops there -
 * before its take, after it - while the limit is lowered again: the calls
 * admitted after count it, and it counts them when it goes on; never more
 * than the limit in flight.
 */
static void test_a_caller_stopped_going_above_high_is_counted_either_way(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 4\n");
    struct cbshm_ticket t[4], extra[2];
    int child;

    (void)state;
    for (int i = 0; i < 4; i++) /* slots 0..3; high 4 */
        assert_int_equal(cbshm_allow(f->b, &t[i]), 0);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 8\n");
    /* Slots 0..3 held: the first free one is 4, above high. */
    child = child_stopped_at("bulkhead.raise_high", false, 4);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 4\n");
    assert_int_equal(cbshm_record(f->b, &t[0], CBSHM_SUCCESS), 0);
    if (cbshm_allow(f->b, &extra[0]) == 0) {
        assert_true(snap(f).bulkhead_in_flight <= 4);
        assert_int_equal(cbshm_allow(f->b, &extra[1]), CBSHM_EREJECTED);
        assert_true(snap(f).bulkhead_in_flight <= 4);
        assert_int_equal(resume_until_exit(child), 3); /* 4 in flight: no room for it */
        assert_int_equal(cbshm_record(f->b, &extra[0], CBSHM_SUCCESS), 0);
    } else { /* its slot was taken and counted: full */
        assert_int_equal(snap(f).bulkhead_in_flight, 4);
        assert_int_equal(resume_until_exit(child), 0);
    }
    for (int i = 1; i < 4; i++)
        assert_int_equal(cbshm_record(f->b, &t[i], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/*
 * A call that read the limit on the common path and stops before it takes
 * its slot, while the limit is lowered and the new room filled: when it
 * goes on, it counts against the new limit and is refused.
 */
static void test_a_caller_stopped_between_the_limit_and_its_take_counts_the_new_limit(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 16\n");
    struct cbshm_ticket t[3];
    int child;

    (void)state;
    /* The first stripe's: its search starts at slot 8 of 16. */
    child = child_stopped_at("bulkhead.fast_take", true, 0);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 2\n");
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    assert_int_equal(resume_until_exit(child), 3); /* 2 in flight: no room for it */
    assert_int_equal(snap(f).bulkhead_in_flight, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(cbshm_record(f->b, &t[i], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/*
 * A caller that found no slot held above a lowered limit, stopped before
 * it brings `high` down to that limit: meanwhile the limit is raised and
 * a call takes a slot above the old one. However late the stopped caller
 * goes on, the calls admitted after the limit is lowered again are
 * counted against every slot held: never more than the limit in flight.
 */
static void test_a_caller_stopped_before_lowering_high_loses_no_slot_above_it(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 8\n");
    struct cbshm_ticket t[8], above, extra;
    struct cbshm_snapshot s;
    int child;

    (void)state;
    for (int i = 0; i < 8; i++)
        assert_int_equal(cbshm_allow(f->b, &t[i]), 0);
    for (int i = 3; i < 8; i++) /* slots 0..2 stay held; high stays 8 */
        assert_int_equal(cbshm_record(f->b, &t[i], CBSHM_SUCCESS), 0);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 4\n");
    /* Takes slot 3, finds nothing held in 4..7, stops before high comes
       down to 4. */
    child = child_stopped_at("bulkhead.lower_high", false, 0);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 8\n");
    assert_int_equal(cbshm_allow(f->b, &above), 0); /* slot 4 */
    assert_int_equal(above.bulk_slot, 4);
    assert_int_equal(resume_until_exit(child), 0);
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 4\n");
    s = snap(f);
    assert_int_equal(s.bulkhead_limit, 4);
    assert_int_equal(s.bulkhead_in_flight, 4); /* slots 0..2 and 4 */
    assert_int_equal(cbshm_allow(f->b, &extra), CBSHM_EREJECTED);
    assert_true(snap(f).bulkhead_in_flight <= 4);
    assert_int_equal(cbshm_record(f->b, &above, CBSHM_SUCCESS), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cbshm_record(f->b, &t[i], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/*
 * A call that passed its handle's check and stops before it takes its
 * slot, while its breaker is deleted and made again with the same name in
 * the same table slot: when it goes on it must not hold a slot of the new
 * breaker that its record cannot give back (its ticket names the old
 * one). The new breaker's slots all come back once every call is over.
 */
static void test_a_take_across_a_delete_and_recreate_leaves_no_slot_held(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 16\n");
    struct cbshm_snapshot s;
    int child;

    (void)state;
    s = snap(f);
    child = child_stopped_at("bulkhead.fast_take", true, 0);
    t_apply(f->seg, "breakers: []\n");
    t_apply(f->seg, "breakers:\n  - name: api\n    max_concurrent_calls: 16\n");
    assert_int_equal(snap(f).index, s.index); /* the same table slot */
    assert_int_equal(resume_until_exit(child), 0);
    /* Nothing is in flight: no slot may stay held. */
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/* A worker that calls once, then waits on the pipe until told to go. */
static int start_worker(const char *seg, int *go_rd)
{
    int child = fork();

    if (child == 0) {
        struct cbshm *shm;
        struct cbshm_breaker *b;
        char c;
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves none behind */
        /* Its own mapping only, so that closing it is leaving. */
        cbshm_breaker_release(fx.b);
        cbshm_close(fx.shm);
        if (cbshm_open(seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "api", &b) != 0 ||
            cbshm_execute(b, t_ok_fn, NULL) != 0)
            _exit(1);
        (void)!read(*go_rd, &c, 1);
        cbshm_breaker_release(b);
        cbshm_close(shm);
        _exit(0);
    }
    return child;
}

static void test_a_quota_follows_the_live_workers(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    concurrency_quota: 0.5\n");
    struct cbshm_info info;
    int go[2], kids[5];

    (void)state;
    assert_int_equal(pipe(go), 0);
    assert_int_equal(snap(f).bulkhead_limit, 1); /* nobody has called: at least one */
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    assert_int_equal(cbshm_info(f->shm, &info), 0);
    assert_int_equal(info.workers, 1);
    for (int i = 0; i < 5; i++)
        kids[i] = start_worker(f->seg, &go[0]);
    for (int tries = 0; tries < 500 && (cbshm_info(f->shm, &info), info.workers) < 6; tries++)
        usleep(10000);
    assert_int_equal(info.workers, 6);
    assert_int_equal(snap(f).bulkhead_limit, 3); /* 0.5 x 6 */
    /* Two die without a word: counted out at the next look (a second). */
    kill(kids[0], SIGKILL);
    kill(kids[1], SIGKILL);
    assert_int_equal(t_wait(kids[0]), 128 + SIGKILL);
    assert_int_equal(t_wait(kids[1]), 128 + SIGKILL);
    cbshm__workers_tick(f->shm, cbshm__now() + 2000000000ull);
    assert_int_equal(cbshm_info(f->shm, &info), 0);
    assert_int_equal(info.workers, 4);
    assert_int_equal(snap(f).bulkhead_limit, 2);
    /* Three leave by closing: counted out at once. */
    assert_int_equal(write(go[1], "xxx", 3), 3);
    for (int i = 2; i < 5; i++)
        assert_int_equal(t_wait(kids[i]), 0);
    assert_int_equal(cbshm_info(f->shm, &info), 0);
    assert_int_equal(info.workers, 1);
    assert_int_equal(snap(f).bulkhead_limit, 1);
    close(go[0]);
    close(go[1]);
}

/* A downstream that counts the calls inside it, for the threads below. */
static _Atomic int inside, most_inside;

static enum cbshm_outcome counted_call(void *unused)
{
    int now = atomic_fetch_add(&inside, 1) + 1, most = atomic_load(&most_inside);

    (void)unused;
    while (now > most && !atomic_compare_exchange_weak(&most_inside, &most, now))
        ;
    sched_yield();
    atomic_fetch_sub(&inside, 1);
    return CBSHM_SUCCESS;
}

static void *call_a_while(void *b)
{
    for (int i = 0; i < 2000; i++)
        if (cbshm_execute(b, counted_call, NULL) != 0 &&
            cbshm_execute(b, counted_call, NULL) == CBSHM_EINVAL)
            return (void *)1;
    return NULL;
}

/* More threads than owned stripes: the ones past 15 count on the shared
   stripe and stamp their slots with getpid(); the limit holds for all. */
static void test_more_threads_than_stripes_stay_within_the_limit(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 5\n");
    pthread_t th[24];

    (void)state;
    atomic_store(&inside, 0);
    atomic_store(&most_inside, 0);
    for (int i = 0; i < 24; i++)
        assert_int_equal(pthread_create(&th[i], NULL, call_a_while, f->b), 0);
    for (int i = 0; i < 24; i++)
        pthread_join(th[i], NULL);
    assert_true(atomic_load(&most_inside) <= 5);
    assert_true(atomic_load(&most_inside) >= 1);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/* Two mappings of one segment in one process: one bulkhead. */
static void test_two_mappings_of_a_segment_share_one_bulkhead(void **state)
{
    struct fixture *f = open_with(LIMIT2);
    struct cbshm *second;
    struct cbshm_breaker *b2;
    struct cbshm_ticket a, b, c;

    (void)state;
    assert_int_equal(cbshm_open(f->seg, 0, &second), 0);
    assert_int_equal(cbshm_breaker_get(second, "api", &b2), 0);
    assert_int_equal(cbshm_allow(f->b, &a), 0);
    assert_int_equal(cbshm_allow(b2, &b), 0);
    assert_int_equal(cbshm_allow(b2, &c), CBSHM_EREJECTED);
    assert_int_equal(cbshm_allow(f->b, &c), CBSHM_EREJECTED);
    assert_int_equal(snap(f).bulkhead_in_flight, 2);
    assert_int_equal(cbshm_record(b2, &b, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_allow(f->b, &c), 0);
    assert_int_equal(cbshm_record(f->b, &a, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_record(f->b, &c, CBSHM_SUCCESS), 0);
    cbshm_breaker_release(b2);
    cbshm_close(second);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
}

/* fork() while another thread sleeps in max_wait: the child, with only
   the forking thread, calls through the same bulkhead and is not stuck
   behind the parent's sleeper; the parent's waiter still gets in. */
static void test_fork_while_another_thread_waits_for_a_slot(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n"
                                  "    max_wait: 5s\n");
    struct waiter w = {f, -1, CBSHM_REFUSAL_NONE, 0};
    struct cbshm_ticket held;
    pthread_t th;
    int child;

    (void)state;
    assert_int_equal(cbshm_allow(f->b, &held), 0);
    assert_int_equal(pthread_create(&th, NULL, wait_for_a_slot, &w), 0);
    usleep(50000); /* asleep on the futex by now */
    if ((child = fork()) == 0) {
        struct cbshm_ticket t;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Full: the child waits too, and gets the slot when it frees. */
        _exit(cbshm_allow(fx.b, &t) == 0 && cbshm_record(fx.b, &t, CBSHM_SUCCESS) == 0 ? 0 : 1);
    }
    usleep(50000);
    assert_int_equal(cbshm_record(f->b, &held, CBSHM_SUCCESS), 0);
    assert_int_equal(t_wait(child), 0);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(snap(f).bulkhead_in_flight, 0);
    assert_int_equal(snap(f).bulkhead_rejections, 0);
}

static size_t bulkhead_events(struct fixture *f, struct cbshm_event *out, size_t max)
{
    uint64_t cursor = 0;
    struct cbshm_event all[64];
    size_t n = 0, got = 0;

    assert_int_equal(cbshm_events_read(f->shm, &cursor, all, 64, &n, NULL), 0);
    for (size_t i = 0; i < n && got < max; i++)
        if (all[i].kind == CBSHM_EVENT_BULKHEAD)
            out[got++] = all[i];
    return got;
}

/* Workers killed without a word: the calls of those left count them out
   within about a second (a look at the registry at most once a second),
   however few calls they make - not only after thousands of calls. */
static void test_a_quota_counts_out_killed_workers_as_calls_go_on(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    concurrency_quota: 0.5\n");
    struct cbshm_info info;
    int go[2], kids[5];
    uint64_t until;

    (void)state;
    assert_int_equal(pipe(go), 0);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    for (int i = 0; i < 5; i++)
        kids[i] = start_worker(f->seg, &go[0]);
    for (int tries = 0; tries < 500 && (cbshm_info(f->shm, &info), info.workers) < 6; tries++)
        usleep(10000);
    assert_int_equal(info.workers, 6);
    assert_int_equal(snap(f).bulkhead_limit, 3);
    for (int i = 0; i < 4; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t_wait(kids[i]), 128 + SIGKILL);
    /* A call every 10 ms, for up to 5 s: a few hundred calls at most. */
    until = mono_ms() + 5000;
    while (snap(f).bulkhead_limit != 1 && mono_ms() < until) {
        assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
        usleep(10000);
    }
    assert_int_equal(snap(f).bulkhead_limit, 1); /* 0.5 x 2 */
    assert_int_equal(cbshm_info(f->shm, &info), 0);
    assert_int_equal(info.workers, 2);
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(t_wait(kids[4]), 0);
    close(go[0]);
    close(go[1]);
}

static void test_events_say_when_the_bulkhead_starts_and_stops_rejecting(void **state)
{
    struct fixture *f = open_with("breakers:\n"
                                  "  - name: api\n"
                                  "    max_concurrent_calls: 1\n");
    struct cbshm_ticket held, t;
    struct cbshm_event e[8];

    (void)state;
    t_clock_install(1000000000000ull);
    assert_int_equal(cbshm_allow(f->b, &held), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(cbshm_allow(f->b, &t), CBSHM_EREJECTED);
    assert_int_equal(bulkhead_events(f, e, 8), 1); /* one, not a hundred */
    assert_int_equal(e[0].from, CBSHM_BULKHEAD_ADMITTING);
    assert_int_equal(e[0].to, CBSHM_BULKHEAD_FULL);
    assert_int_equal(e[0].cause, CBSHM_CAUSE_BULKHEAD);
    assert_string_equal(e[0].name, "api");
    assert_int_equal(cbshm_record(f->b, &held, CBSHM_SUCCESS), 0);
    /* Admitted again, but rejections were less than a second ago. */
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    assert_int_equal(bulkhead_events(f, e, 8), 1);
    t_clock_advance_ms(1000);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    assert_int_equal(bulkhead_events(f, e, 8), 2);
    assert_int_equal(e[1].from, CBSHM_BULKHEAD_FULL);
    assert_int_equal(e[1].to, CBSHM_BULKHEAD_ADMITTING);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    assert_int_equal(bulkhead_events(f, e, 8), 2);
    /* Full again at once: the next event waits for its second. */
    assert_int_equal(cbshm_allow(f->b, &held), 0);
    assert_int_equal(cbshm_allow(f->b, &t), CBSHM_EREJECTED);
    assert_int_equal(bulkhead_events(f, e, 8), 2);
    t_clock_advance_ms(1000);
    assert_int_equal(cbshm_allow(f->b, &t), CBSHM_EREJECTED);
    assert_int_equal(bulkhead_events(f, e, 8), 3);
    assert_int_equal(e[2].to, CBSHM_BULKHEAD_FULL);
    assert_int_equal(cbshm_record(f->b, &held, CBSHM_SUCCESS), 0);
}

static void expect_config_error(const char *yaml, const char *key, unsigned line, const char *words)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "b.yaml", &cfg, &d),
                     CBSHM_ECONFIG);
    if (strstr(d.key, key) == NULL || d.line != line || strstr(d.message, words) == NULL)
        fail_msg("got %s:%u %s: %s", d.key, d.line, d.key, d.message);
}

static void test_bulkhead_settings_are_checked_and_named(void **state)
{
    (void)state;
    expect_config_error("breakers:\n  - name: a\n    max_concurrent_calls: 3\n"
                        "    concurrency_quota: 0.5\n",
                        "concurrency_quota", 4, "set one of them");
    expect_config_error("breakers:\n  - name: a\n    max_wait: 1s\n", "max_wait", 3,
                        "needs a bulkhead");
    expect_config_error("breakers:\n  - name: a\n    slot_timeout: 1s\n", "slot_timeout", 3,
                        "needs a bulkhead");
    expect_config_error("breakers:\n  - name: a\n    max_concurrent_calls: 257\n",
                        "max_concurrent_calls", 3, "256");
    expect_config_error("breakers:\n  - name: a\n    concurrency_quota: 1.5\n", "concurrency_quota",
                        3, "1");
    expect_config_error("breakers:\n  - name: a\n    max_concurrent_calls: 2\n"
                        "    max_wait: 5\n",
                        "max_wait", 4, "unit");
}

#define T(fn) cmocka_unit_test_teardown(fn, teardown)
static const struct CMUnitTest tests[] = {
    T(test_a_full_bulkhead_rejects_with_its_reason_and_counts),
    T(test_every_outcome_and_record_call_gives_its_slot_back),
    T(test_a_probe_takes_a_slot_and_gives_its_lease_back_without_one),
    T(test_a_bulkhead_rejection_is_not_the_reason_once_the_state_changed),
    T(test_forced_closed_is_bounded_and_disabled_is_not),
    T(test_a_dead_holders_slot_returns_to_the_pool),
    T(test_a_stopped_holder_keeps_its_slot),
    T(test_a_ticket_never_recorded_is_taken_back_after_slot_timeout),
    T(test_a_ticket_of_a_deleted_breaker_frees_nothing_of_its_successor),
    T(test_execute_gives_the_slot_back_for_an_outcome_that_is_none),
    T(test_max_wait_sleeps_until_a_slot_is_given_back),
    T(test_a_waiter_is_refused_as_soon_as_its_breaker_is_forced_open),
    T(test_max_wait_runs_out_and_rejects),
    T(test_a_wait_of_seconds_is_not_cut_short),
    T(test_a_wait_under_a_stopped_test_clock_ends_by_real_time),
    T(test_a_waiter_in_another_process_is_woken),
    T(test_a_lower_limit_applies_as_calls_end_and_a_higher_one_at_once),
    T(test_a_caller_stopped_going_above_high_is_counted_either_way),
    T(test_a_caller_stopped_between_the_limit_and_its_take_counts_the_new_limit),
    T(test_a_caller_stopped_before_lowering_high_loses_no_slot_above_it),
    T(test_a_take_across_a_delete_and_recreate_leaves_no_slot_held),
    T(test_more_threads_than_stripes_stay_within_the_limit),
    T(test_two_mappings_of_a_segment_share_one_bulkhead),
    T(test_fork_while_another_thread_waits_for_a_slot),
    T(test_a_quota_follows_the_live_workers),
    T(test_a_quota_counts_out_killed_workers_as_calls_go_on),
    T(test_events_say_when_the_bulkhead_starts_and_stops_rejecting),
    T(test_bulkhead_settings_are_checked_and_named),
};

T_MAIN(tests)
