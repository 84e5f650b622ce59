/* SPDX-License-Identifier: MIT */
/*
 * Unit: the state machine in one process, driven by the fake clock - every
 * transition, every mode, both APIs, fail-open and fail-closed.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

struct fixture {
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
};

static const char *YAML = "capacity: 8\n"
                          "breakers:\n"
                          "  - name: api\n"
                          "    failure_threshold: 3\n"
                          "    success_threshold: 2\n"
                          "    half_open_max_calls: 2\n"
                          "    open_timeout: 5s\n"
                          "    probe_timeout: 1s\n"
                          "  - name: other\n";

static int setup(void **state)
{
    static struct fixture f;

    t_clock_install(1000000000000ull);
    t_segment_name(f.seg);
    t_apply(f.seg, YAML);
    assert_int_equal(cbshm_open(f.seg, 0, &f.shm), 0);
    assert_int_equal(cbshm_breaker_get(f.shm, "api", &f.b), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    cbshm_breaker_release(f->b);
    cbshm_close(f->shm);
    cbshm_destroy(f->seg);
    return 0;
}

static enum cbshm_outcome ignored_fn(void *arg)
{
    (void)arg;
    return CBSHM_IGNORED;
}

static struct cbshm_snapshot snap(struct fixture *f)
{
    struct cbshm_snapshot s;
    assert_int_equal(cbshm_snapshot(f->shm, "api", &s), 0);
    return s;
}

/* Breaker "other" (defaults: 5 failures trip it, open 30s, one probe of
   probe_timeout 10s a phase), tripped and at the end of its open period. */
static struct cbshm_breaker *half_open_other(struct fixture *f)
{
    struct cbshm_breaker *b;

    assert_int_equal(cbshm_breaker_get(f->shm, "other", &b), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    t_clock_advance_ms(30000);
    return b;
}

static void trip(struct fixture *f)
{
    for (int i = 0; i < 3; i++)
        assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
}

static void test_breaker_opens_after_threshold_consecutive_failures(void **state)
{
    struct fixture *f = *state;
    struct cbshm_snapshot s;
    int ran = 0;

    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    s = snap(f);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    assert_int_equal(s.consecutive_failures, 2);
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    s = snap(f);
    assert_int_equal(s.state, CBSHM_STATE_OPEN);
    assert_int_equal(s.trips, 1);
    assert_int_equal(s.failures, 3);
    assert_int_equal(s.consecutive_failures, 0);
    assert_int_equal(s.open_until_ns, t_clock_now() + 5000000000ull);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), CBSHM_EREJECTED);
    assert_int_equal(ran, 0);
    assert_int_equal(snap(f).rejections, 1);
}

static void test_success_breaks_the_failure_run(void **state)
{
    struct fixture *f = *state;

    for (int round = 0; round < 5; round++) {
        assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
        assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
        assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    }
    assert_int_equal(snap(f).state, CBSHM_STATE_CLOSED);
    assert_int_equal(snap(f).consecutive_failures, 0);
    assert_int_equal(snap(f).requests, 15);
}

static void test_ignored_outcomes_neither_trip_nor_reset(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cbshm_execute(f->b, ignored_fn, NULL), 0);
    assert_int_equal(snap(f).consecutive_failures, 2);
    assert_int_equal(snap(f).ignored, 10);
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
}

static void test_open_rejects_until_the_open_timeout_passes(void **state)
{
    struct fixture *f = *state;
    int ran = 0;

    trip(f);
    t_clock_advance_ms(4999);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), CBSHM_EREJECTED);
    assert_int_equal(ran, 0);
    t_clock_advance_ms(1);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(snap(f).state, CBSHM_STATE_HALF_OPEN);
}

static void test_half_open_admits_at_most_max_calls_probes(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t[4];

    trip(f);
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    assert_int_equal(cbshm_allow(f->b, &t[3]), CBSHM_EREJECTED);
    assert_int_equal(snap(f).probes_in_flight, 2);
    /* One probe succeeds: its lease is used up for this phase, not given
       to a third call - the phase admits half_open_max_calls calls. */
    assert_int_equal(cbshm_record(f->b, &t[0], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_HALF_OPEN);
    assert_int_equal(snap(f).probes_in_flight, 1);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    assert_int_equal(cbshm_record(f->b, &t[1], CBSHM_SUCCESS), 0);
    /* success_threshold 2 reached: closed, leases cleared. */
    assert_int_equal(snap(f).state, CBSHM_STATE_CLOSED);
    assert_int_equal(snap(f).probes_in_flight, 0);
}

/* The first failed probe ends the phase: a later probe's success in it
   decides nothing, and nobody probes until the next open period ends. */
static void test_a_probe_result_after_the_phase_failed_decides_nothing(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t[3];

    trip(f);
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    assert_int_equal(cbshm_record(f->b, &t[0], CBSHM_FAILURE), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    assert_int_equal(cbshm_record(f->b, &t[1], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    assert_int_equal(snap(f).trips, 2);
}

/* An ignored probe says nothing of the downstream: its lease goes back. */
static void test_an_ignored_probe_gives_its_lease_back(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t[3];

    trip(f);
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    assert_int_equal(cbshm_record(f->b, &t[0], CBSHM_IGNORED), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_HALF_OPEN);
    assert_int_equal(cbshm_allow(f->b, &t[2]), 0);
    assert_int_equal(cbshm_record(f->b, &t[1], CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_record(f->b, &t[2], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_CLOSED);
}

static void test_a_failed_probe_reopens_for_another_open_period(void **state)
{
    struct fixture *f = *state;

    trip(f);
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    assert_int_equal(snap(f).trips, 2);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), CBSHM_EREJECTED);
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_CLOSED);
}

/*
 * The interleaving that let a second probe through: the failing prober is
 * held, by the clock seam, inside its record - after the point where it
 * used to give its lease back and before the decision - while another
 * caller asks. The lease must still be held: rejected.
 */
static struct {
    pthread_t holder;
    _Atomic int armed;
    sem_t held, release;
} hold;

static uint64_t holding_clock(void *ctx)
{
    (void)ctx;
    if (hold.armed && pthread_equal(pthread_self(), hold.holder)) {
        hold.armed = 0;
        sem_post(&hold.held);
        while (sem_wait(&hold.release) != 0)
            ;
    }
    return t_clock_now();
}

struct prober {
    struct cbshm_breaker *b, *warm;
    struct cbshm_ticket *t;
};

static void *record_failed_probe(void *arg)
{
    struct prober *p = arg;

    /* A first call claims this thread's counter stripe, which may read
       the clock: the hold is for the probe's record alone. */
    assert_int_equal(cbshm_execute(p->warm, t_ok_fn, NULL), 0);
    hold.holder = pthread_self();
    hold.armed = 1;
    assert_int_equal(cbshm_record(p->b, p->t, CBSHM_FAILURE), 0);
    return NULL;
}

static void test_no_second_probe_while_a_failed_probe_is_being_decided(void **state)
{
    struct fixture *f = *state;
    struct cbshm_breaker *b;
    struct cbshm_ticket first, second;
    struct cbshm_snapshot s;
    struct prober p;
    pthread_t th;

    b = half_open_other(f);
    assert_int_equal(cbshm_allow(b, &first), 0);
    sem_init(&hold.held, 0, 0);
    sem_init(&hold.release, 0, 0);
    cbshm_clock_set(holding_clock, NULL);
    p.b = b;
    p.warm = f->b;
    p.t = &first;
    assert_int_equal(pthread_create(&th, NULL, record_failed_probe, &p), 0);
    while (sem_wait(&hold.held) != 0)
        ;
    /* The prober is inside cbshm_record, its failure not yet decided. */
    assert_int_equal(cbshm_allow(b, &second), CBSHM_EREJECTED);
    sem_post(&hold.release);
    pthread_join(th, NULL);
    t_clock_install(t_clock_now());
    assert_int_equal(cbshm_snapshot(f->shm, "other", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_OPEN);
    assert_int_equal(s.trips, 2);
    sem_destroy(&hold.held);
    sem_destroy(&hold.release);
    cbshm_breaker_release(b);
}

/*
 * A breaker deleted and its slot reused: tickets admitted on the old one,
 * recorded through a handle that has not looked the name up again yet,
 * count on neither - not on the new breaker in that slot, whose probe
 * lease (same sequence number: the slot's sequence restarts) they must
 * not release either.
 */
static void test_a_ticket_records_only_on_the_breaker_it_was_admitted_on(void **state)
{
    static const char *before = "capacity: 2\nbreakers:\n  - name: old\n"
                                "    failure_threshold: 1\n    open_timeout: 1s\n";
    static const char *after = "capacity: 2\nbreakers:\n  - name: new\n"
                               "    failure_threshold: 1\n    open_timeout: 1s\n";
    struct cbshm_ticket closed, probe, new_probe;
    struct cbshm_breaker *b, *nb;
    struct cbshm_snapshot s;
    struct cbshm *shm;
    uint32_t slot;
    char seg[64];

    (void)state;
    t_apply(t_segment_name(seg), before);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "old", &b), 0);
    assert_int_equal(cbshm_allow(b, &closed), 0);
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    t_clock_advance_ms(1000);
    assert_int_equal(cbshm_allow(b, &probe), 0);
    assert_int_equal(cbshm_snapshot(shm, "old", &s), 0);
    slot = s.index;

    t_apply(seg, after);
    assert_int_equal(cbshm_breaker_get(shm, "new", &nb), 0);
    assert_int_equal(cbshm_snapshot(shm, "new", &s), 0);
    assert_int_equal(s.index, slot); /* the same slot, another breaker */
    assert_int_equal(cbshm_execute(nb, t_fail_fn, NULL), 0);
    t_clock_advance_ms(1000);
    assert_int_equal(cbshm_allow(nb, &new_probe), 0);

    assert_int_equal(cbshm_record(b, &closed, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_record(b, &probe, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_snapshot(shm, "new", &s), 0);
    assert_int_equal(s.successes, 0);
    assert_int_equal(s.state, CBSHM_STATE_HALF_OPEN);
    assert_int_equal(s.probes_in_flight, 1);
    assert_int_equal(cbshm_record(nb, &new_probe, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_snapshot(shm, "new", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    cbshm_breaker_release(nb);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    cbshm_destroy(seg);
}

static struct cbshm_rejection why(struct fixture *f)
{
    struct cbshm_rejection r;
    assert_int_equal(cbshm_breaker_rejection(f->b, &r), 0);
    return r;
}

/* After a rejection: why, and for how long, without the lock. */
static void test_a_rejection_says_why_and_for_how_long(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t[3];
    struct cbshm_rejection r;

    r = why(f);
    assert_int_equal(r.why, CBSHM_REFUSAL_NONE);
    assert_int_equal(r.retry_after_ns, 0);
    trip(f);
    r = why(f);
    assert_int_equal(r.why, CBSHM_REFUSAL_OPEN);
    assert_int_equal(r.retry_after_ns, 5000 * 1000000ull);
    t_clock_advance_ms(2000);
    assert_int_equal(why(f).retry_after_ns, 3000 * 1000000ull);
    t_clock_advance_ms(3000);
    r = why(f);
    assert_int_equal(r.why, CBSHM_REFUSAL_OPEN); /* still open until a call probes */
    assert_int_equal(r.retry_after_ns, 0);
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(why(f).why, CBSHM_REFUSAL_NONE); /* one lease free */
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    t_clock_advance_ms(400);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    r = why(f);
    assert_int_equal(r.why, CBSHM_REFUSAL_PROBES_BUSY);
    assert_int_equal(r.retry_after_ns, 600 * 1000000ull); /* probe_timeout 1s, 400ms in */
    assert_int_equal(cbshm_set_mode_for(f->shm, "api", CBSHM_MODE_FORCED_OPEN, 7000), 0);
    r = why(f);
    assert_int_equal(r.why, CBSHM_REFUSAL_FORCED_OPEN);
    assert_int_equal(r.retry_after_ns, 7000 * 1000000ull);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(why(f).retry_after_ns, 0);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_DISABLED), 0);
    assert_int_equal(why(f).why, CBSHM_REFUSAL_NONE);
    assert_int_equal(cbshm_breaker_rejection(NULL, &r), CBSHM_EINVAL);
    assert_int_equal(cbshm_breaker_rejection(f->b, NULL), CBSHM_EINVAL);
}

/* A downstream's Retry-After opens the breaker at once, for that long. */
static void test_a_failure_with_retry_after_opens_for_at_least_that_long(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t;
    struct cbshm_snapshot s;

    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record_retry_after(f->b, &t, CBSHM_FAILURE, 20000 * 1000000ull), 0);
    s = snap(f);
    assert_int_equal(s.state, CBSHM_STATE_OPEN); /* one failure, threshold 3 */
    assert_int_equal(s.open_until_ns - s.last_transition_ns, 20000 * 1000000ull);
    assert_int_equal(why(f).retry_after_ns, 20000 * 1000000ull);
    /* A failed probe with a shorter retry-after keeps the open period. */
    t_clock_advance_ms(20000);
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record_retry_after(f->b, &t, CBSHM_FAILURE, 1000 * 1000000ull), 0);
    s = snap(f);
    assert_int_equal(s.state, CBSHM_STATE_OPEN);
    assert_int_equal(s.open_until_ns - s.last_transition_ns, 5000 * 1000000ull);
    /* Capped at open_timeout_max (24h here). */
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record_retry_after(f->b, &t, CBSHM_FAILURE, 48 * 3600000000000ull), 0);
    s = snap(f);
    assert_int_equal(s.open_until_ns - s.last_transition_ns, 24 * 3600000000000ull);
    /* A success with it is a success; a spent ticket is refused. */
    assert_int_equal(cbshm_reset(f->shm, "api"), 0);
    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record_retry_after(f->b, &t, CBSHM_SUCCESS, 1000000000ull), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_CLOSED);
    assert_int_equal(cbshm_record_retry_after(f->b, &t, CBSHM_FAILURE, 1000000000ull),
                     CBSHM_EINVAL);
    assert_int_equal(cbshm_record_retry_after(f->b, NULL, CBSHM_FAILURE, 1), CBSHM_EINVAL);
}

/* A timed mode ends by itself, with an event timed at its end. */
static void test_a_timed_mode_returns_to_normal_by_itself(void **state)
{
    struct fixture *f = *state;
    struct cbshm_event ev[8];
    uint64_t cursor = CBSHM_EVENTS_NOW, until;
    size_t n = 0;
    int ran = 0;

    assert_int_equal(cbshm_events_read(f->shm, &cursor, ev, 8, &n, NULL), 0);
    assert_int_equal(cbshm_set_mode_for(f->shm, "api", CBSHM_MODE_FORCED_OPEN, 5000), 0);
    until = snap(f).mode_until_ns;
    assert_int_equal(until, t_clock_now() + 5000 * 1000000ull);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), CBSHM_EREJECTED);
    t_clock_advance_ms(4999);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), CBSHM_EREJECTED);
    t_clock_advance_ms(1);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(snap(f).mode, CBSHM_MODE_NORMAL);
    assert_int_equal(snap(f).mode_until_ns, 0);
    assert_int_equal(cbshm_events_read(f->shm, &cursor, ev, 8, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[1].kind, CBSHM_EVENT_MODE);
    assert_int_equal(ev[1].from, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(ev[1].to, CBSHM_MODE_NORMAL);
    assert_int_equal(ev[1].cause, CBSHM_CAUSE_MODE_EXPIRED);
    assert_int_equal(ev[1].time_ns, until);
    /* Nobody calls: a look ends it as well. */
    assert_int_equal(cbshm_set_mode_for(f->shm, "api", CBSHM_MODE_DISABLED, 1000), 0);
    t_clock_advance_ms(1000);
    assert_int_equal(snap(f).mode, CBSHM_MODE_NORMAL);
    /* A plain mode change replaces a timed one. */
    assert_int_equal(cbshm_set_mode_for(f->shm, "api", CBSHM_MODE_FORCED_CLOSED, 1000), 0);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_OPEN), 0);
    t_clock_advance_ms(2000);
    assert_int_equal(snap(f).mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(cbshm_set_mode_for(f->shm, "api", CBSHM_MODE_NORMAL, 1000), CBSHM_EINVAL);
    assert_int_equal(cbshm_set_mode_for(f->shm, "api", CBSHM_MODE_FORCED_OPEN, 0), CBSHM_EINVAL);
    assert_int_equal(cbshm_set_mode_for(f->shm, "api", CBSHM_MODE_FORCED_OPEN, 86400001),
                     CBSHM_EINVAL);
    assert_int_equal(cbshm_set_mode_for(f->shm, "nope", CBSHM_MODE_FORCED_OPEN, 10),
                     CBSHM_ENOBREAKER);
    assert_int_equal(cbshm_set_mode_for(NULL, "api", CBSHM_MODE_FORCED_OPEN, 10), CBSHM_EINVAL);
}

/*
 * A failure checked as current, then held (by the clock seam, inside its
 * record) while the breaker is reset: when it goes on, its period is over
 * - it must not start the new period's failure run.
 */
static void *record_held_failure(void *arg)
{
    struct prober *p = arg;

    assert_int_equal(cbshm_execute(p->warm, t_ok_fn, NULL), 0);
    hold.holder = pthread_self();
    hold.armed = 1;
    assert_int_equal(cbshm_record(p->b, p->t, CBSHM_FAILURE), 0);
    return NULL;
}

static void test_a_failure_held_across_a_reset_does_not_feed_the_new_run(void **state)
{
    struct cbshm_ticket t;
    struct cbshm_snapshot s;
    struct cbshm_breaker *b;
    struct cbshm *shm;
    struct prober p;
    pthread_t th;
    char seg[64];

    (void)state;
    t_apply(t_segment_name(seg), "breakers:\n  - name: s\n    failure_threshold: 2\n"
                                 "    slow_call_duration: 10s\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "s", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    sem_init(&hold.held, 0, 0);
    sem_init(&hold.release, 0, 0);
    cbshm_clock_set(holding_clock, NULL);
    p.b = b;
    p.warm = b;
    p.t = &t;
    assert_int_equal(pthread_create(&th, NULL, record_held_failure, &p), 0);
    while (sem_wait(&hold.held) != 0)
        ;
    assert_int_equal(cbshm_reset(shm, "s"), 0); /* a new period, while it is held */
    sem_post(&hold.release);
    pthread_join(th, NULL);
    t_clock_install(t_clock_now());
    assert_int_equal(cbshm_snapshot(shm, "s", &s), 0);
    assert_int_equal(s.consecutive_failures, 0);
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_snapshot(shm, "s", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED); /* 1 failure of 2, not 2 */
    sem_destroy(&hold.held);
    sem_destroy(&hold.release);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    cbshm_destroy(seg);
}

/* A probe that reports after its deadline failed its phase, whoever asked
   first: it does not close the breaker. */
static void test_a_probe_reporting_after_its_deadline_fails_the_phase(void **state)
{
    struct fixture *f = *state;
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    struct cbshm_snapshot s;

    b = half_open_other(f);
    assert_int_equal(cbshm_allow(b, &t), 0);
    t_clock_advance_ms(10000);
    assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_snapshot(f->shm, "other", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_OPEN);
    assert_int_equal(s.trips, 2);
    cbshm_breaker_release(b);
}

/* A mode change while half-open starts the phase over: the probes out are
   of the old period and their leases come back. */
static void test_a_mode_round_trip_in_half_open_frees_the_phases_leases(void **state)
{
    struct fixture *f = *state;
    struct cbshm_breaker *b;
    struct cbshm_ticket t, u;

    b = half_open_other(f);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_set_mode(f->shm, "other", CBSHM_MODE_FORCED_CLOSED), 0);
    assert_int_equal(cbshm_set_mode(f->shm, "other", CBSHM_MODE_NORMAL), 0);
    assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0); /* late: decides nothing */
    assert_int_equal(cbshm_allow(b, &u), 0);                 /* the new phase's probe */
    assert_int_equal(cbshm_record(b, &u, CBSHM_SUCCESS), 0);
    struct cbshm_snapshot s;
    assert_int_equal(cbshm_snapshot(f->shm, "other", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    cbshm_breaker_release(b);
}

/* A call in flight while apply gives the window a new shape counts in no
   window of the new shape. */
static void test_a_call_in_flight_across_a_new_window_shape_counts_in_no_window(void **state)
{
    struct cbshm_ticket t;
    struct cbshm_snapshot s;
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64];

    (void)state;
    t_apply(t_segment_name(seg), "breakers:\n  - name: w\n    policy: rate\n"
                                 "    window_size: 20\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "w", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    t_apply(seg, "breakers:\n  - name: w\n    policy: rate\n    window_size: 30\n");
    assert_int_equal(cbshm_record(b, &t, CBSHM_FAILURE), 0);
    assert_int_equal(cbshm_snapshot(shm, "w", &s), 0);
    assert_int_equal(s.window_calls, 0);
    assert_int_equal(s.failures, 1); /* counted in the totals */
    cbshm_breaker_release(b);
    cbshm_close(shm);
    cbshm_destroy(seg);
}

/* A probe that outlives probe_timeout fails its phase (its lease is not
   handed to another call, which would be one probe too many). */
static void test_a_probe_past_probe_timeout_fails_the_phase(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t[3];

    trip(f);
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_allow(f->b, &t[0]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[1]), 0);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    t_clock_advance_ms(999);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    assert_int_equal(snap(f).state, CBSHM_STATE_HALF_OPEN);
    t_clock_advance_ms(1);
    assert_int_equal(cbshm_allow(f->b, &t[2]), CBSHM_EREJECTED);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    assert_int_equal(snap(f).trips, 2);
    assert_int_equal(snap(f).probes_reclaimed, 0);
    /* The late probes report: counted, no effect. */
    assert_int_equal(cbshm_record(f->b, &t[0], CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_record(f->b, &t[1], CBSHM_SUCCESS), 0);
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
}

static void test_forced_open_rejects_every_call(void **state)
{
    struct fixture *f = *state;
    int ran = 0;

    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_OPEN), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), CBSHM_EREJECTED);
    assert_int_equal(ran, 0);
    assert_int_equal(snap(f).mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(snap(f).rejections, 5);
    assert_int_equal(snap(f).state, CBSHM_STATE_CLOSED);
}

static void test_forced_closed_admits_and_counts_but_never_trips(void **state)
{
    struct fixture *f = *state;
    int ran = 0;

    trip(f);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_CLOSED), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cbshm_execute(f->b, t_fail_fn, &ran), 0);
    assert_int_equal(ran, 10);
    assert_int_equal(snap(f).failures, 13);
    assert_int_equal(snap(f).trips, 1);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_NORMAL), 0);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), CBSHM_EREJECTED);
}

static void test_disabled_passes_through_and_records_nothing(void **state)
{
    struct fixture *f = *state;
    struct cbshm_snapshot before, after;
    int ran = 0;

    trip(f);
    before = snap(f);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_DISABLED), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cbshm_execute(f->b, t_fail_fn, &ran), 0);
    after = snap(f);
    assert_int_equal(ran, 10);
    assert_int_equal(after.requests, before.requests);
    assert_int_equal(after.failures, before.failures);
    assert_int_equal(after.mode, CBSHM_MODE_DISABLED);
}

static void test_reset_closes_and_clears_counters_but_keeps_the_mode(void **state)
{
    struct fixture *f = *state;
    struct cbshm_snapshot s;

    trip(f);
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, NULL), CBSHM_EREJECTED);
    assert_int_equal(cbshm_set_mode(f->shm, "api", CBSHM_MODE_FORCED_CLOSED), 0);
    assert_int_equal(cbshm_reset(f->shm, "api"), 0);
    s = snap(f);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    assert_int_equal(s.mode, CBSHM_MODE_FORCED_CLOSED);
    assert_int_equal(s.requests, 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.rejections, 0);
    assert_int_equal(s.trips, 0);
    assert_int_equal(s.time_in_state_ns, 0);
    assert_int_equal(cbshm_reset(f->shm, "nope"), CBSHM_ENOBREAKER);
    assert_int_equal(cbshm_set_mode(f->shm, "nope", CBSHM_MODE_DISABLED), CBSHM_ENOBREAKER);
    assert_int_equal(cbshm_set_mode(f->shm, "api", (enum cbshm_mode)7), CBSHM_EINVAL);
}

static void test_two_step_api_matches_execute(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(cbshm_allow(f->b, &t), 0);
        assert_int_equal(cbshm_record(f->b, &t, CBSHM_FAILURE), 0);
    }
    assert_int_equal(snap(f).state, CBSHM_STATE_OPEN);
    assert_int_equal(cbshm_allow(f->b, &t), CBSHM_EREJECTED);
    /* A ticket is recorded once; a rejected or spent one is refused. */
    assert_int_equal(cbshm_record(f->b, &t, CBSHM_SUCCESS), CBSHM_EINVAL);
    assert_int_equal(cbshm_allow(f->b, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_record(f->b, NULL, CBSHM_SUCCESS), CBSHM_EINVAL);
    assert_int_equal(snap(f).requests, 4);
}

static void test_record_refuses_an_outcome_out_of_range(void **state)
{
    struct fixture *f = *state;
    struct cbshm_ticket t;

    assert_int_equal(cbshm_allow(f->b, &t), 0);
    assert_int_equal(cbshm_record(f->b, &t, (enum cbshm_outcome)3), CBSHM_EINVAL);
    assert_int_equal(cbshm_record(f->b, &t, CBSHM_SUCCESS), 0);
    assert_int_equal(cbshm_record(f->b, &t, CBSHM_SUCCESS), CBSHM_EINVAL);
    assert_int_equal(snap(f).successes, 1);
    assert_int_equal(cbshm_execute(f->b, NULL, NULL), CBSHM_EINVAL);
}

static void test_execute_fails_open_without_a_breaker(void **state)
{
    struct cbshm_ticket t;
    int ran = 0;

    (void)state;
    assert_int_equal(cbshm_execute(NULL, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(cbshm_allow(NULL, &t), 0);
    assert_int_equal(cbshm_record(NULL, &t, CBSHM_FAILURE), 0);
    assert_int_equal(cbshm_breaker_error(NULL), CBSHM_EINVAL);
}

static void test_a_deleted_breaker_fails_open_or_closed_as_asked(void **state)
{
    struct fixture *f = *state;
    struct cbshm *closed_shm;
    struct cbshm_breaker *closed_b;
    int ran = 0;

    assert_int_equal(cbshm_open(f->seg, CBSHM_FAIL_CLOSED, &closed_shm), 0);
    assert_int_equal(cbshm_breaker_get(closed_shm, "api", &closed_b), 0);
    t_apply(f->seg, "capacity: 8\nbreakers:\n  - name: other\n");
    assert_int_equal(cbshm_execute(f->b, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(cbshm_breaker_error(f->b), CBSHM_ENOBREAKER);
    assert_int_equal(cbshm_execute(closed_b, t_ok_fn, &ran), CBSHM_ENOBREAKER);
    /* Within the next second the handle does not look again: stale. */
    assert_int_equal(cbshm_execute(closed_b, t_ok_fn, &ran), CBSHM_ESTALE);
    assert_int_equal(ran, 1);
    cbshm_breaker_release(closed_b);
    cbshm_close(closed_shm);
}

static void test_a_recreated_breaker_is_found_again_by_its_handle(void **state)
{
    struct fixture *f = *state;
    struct cbshm_snapshot s;

    t_apply(f->seg, "capacity: 8\nbreakers:\n  - name: other\n");
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_breaker_error(f->b), CBSHM_ENOBREAKER);
    t_apply(f->seg, YAML);
    t_clock_advance_ms(1000); /* the handle looks again at most every 0.25 s */
    assert_int_equal(cbshm_execute(f->b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_breaker_error(f->b), 0);
    assert_int_equal(cbshm_snapshot(f->shm, "api", &s), 0);
    assert_int_equal(s.failures, 1);
    assert_string_equal(cbshm_breaker_name(f->b), "api");
}

static void test_breakers_do_not_share_state(void **state)
{
    struct fixture *f = *state;
    struct cbshm_breaker *other;
    struct cbshm_snapshot s;

    trip(f);
    assert_int_equal(cbshm_breaker_get(f->shm, "other", &other), 0);
    assert_int_equal(cbshm_execute(other, t_ok_fn, NULL), 0);
    assert_int_equal(cbshm_snapshot(f->shm, "other", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    assert_int_equal(s.successes, 1);
    assert_int_equal(cbshm_breaker_get(f->shm, "missing", &other), CBSHM_ENOBREAKER);
    cbshm_breaker_release(other);
}

static void test_breaker_lookup_validates_names(void **state)
{
    struct fixture *f = *state;
    struct cbshm_breaker *b = NULL;

    assert_int_equal(cbshm_breaker_get(f->shm, "bad name", &b), CBSHM_EBADNAME);
    assert_int_equal(cbshm_breaker_get(f->shm, "", &b), CBSHM_EBADNAME);
    assert_int_equal(cbshm_breaker_get(f->shm, NULL, &b), CBSHM_EBADNAME);
    assert_int_equal(cbshm_breaker_get(NULL, "api", &b), CBSHM_EINVAL);
    assert_int_equal(cbshm_breaker_get(f->shm, "api", NULL), CBSHM_EINVAL);
    assert_null(b);
    cbshm_breaker_release(NULL);
}

struct thread_arg {
    struct cbshm_breaker *b;
    int n;
};

static void *hammer(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < a->n; i++)
        cbshm_execute(a->b, i % 2 ? t_ok_fn : ignored_fn, NULL);
    return NULL;
}

static void test_threads_sharing_a_handle_lose_no_counts(void **state)
{
    struct fixture *f = *state;
    pthread_t th[8];
    struct thread_arg a = {f->b, 20000};

    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &a), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(snap(f).successes, 8 * 10000);
    assert_int_equal(snap(f).ignored, 8 * 10000);
    assert_int_equal(snap(f).state, CBSHM_STATE_CLOSED);
}

static void test_more_threads_than_stripes_count_exactly_and_give_claims_back(void **state)
{
    struct fixture *f = *state;
    pthread_t th[40];
    struct thread_arg a = {f->b, 5000};
    int held = 0;

    /* 40 threads, 15 owned stripes: the rest share stripe 0 atomically. */
    for (int i = 0; i < 40; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &a), 0);
    for (int i = 0; i < 40; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(snap(f).successes, 40 * 2500);
    assert_int_equal(snap(f).ignored, 40 * 2500);
    /* Every exited thread gave its stripe back. */
    for (int s = 1; s < CBSHM_STRIPES; s++)
        if (atomic_load(&f->shm->hdr->stripe_owner[s]) != 0)
            held++;
    assert_int_equal(held, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(test_breaker_opens_after_threshold_consecutive_failures),
    T(test_success_breaks_the_failure_run),
    T(test_ignored_outcomes_neither_trip_nor_reset),
    T(test_open_rejects_until_the_open_timeout_passes),
    T(test_half_open_admits_at_most_max_calls_probes),
    T(test_a_failed_probe_reopens_for_another_open_period),
    T(test_a_probe_past_probe_timeout_fails_the_phase),
    T(test_a_probe_result_after_the_phase_failed_decides_nothing),
    T(test_an_ignored_probe_gives_its_lease_back),
    T(test_no_second_probe_while_a_failed_probe_is_being_decided),
    T(test_a_ticket_records_only_on_the_breaker_it_was_admitted_on),
    T(test_a_timed_mode_returns_to_normal_by_itself),
    T(test_a_failure_held_across_a_reset_does_not_feed_the_new_run),
    T(test_a_probe_reporting_after_its_deadline_fails_the_phase),
    T(test_a_mode_round_trip_in_half_open_frees_the_phases_leases),
    T(test_a_call_in_flight_across_a_new_window_shape_counts_in_no_window),
    T(test_a_rejection_says_why_and_for_how_long),
    T(test_a_failure_with_retry_after_opens_for_at_least_that_long),
    T(test_forced_open_rejects_every_call),
    T(test_forced_closed_admits_and_counts_but_never_trips),
    T(test_disabled_passes_through_and_records_nothing),
    T(test_reset_closes_and_clears_counters_but_keeps_the_mode),
    T(test_two_step_api_matches_execute),
    T(test_record_refuses_an_outcome_out_of_range),
    T(test_execute_fails_open_without_a_breaker),
    T(test_a_deleted_breaker_fails_open_or_closed_as_asked),
    T(test_a_recreated_breaker_is_found_again_by_its_handle),
    T(test_breakers_do_not_share_state),
    T(test_breaker_lookup_validates_names),
    T(test_threads_sharing_a_handle_lose_no_counts),
    T(test_more_threads_than_stripes_count_exactly_and_give_claims_back),
};
T_MAIN(tests)
