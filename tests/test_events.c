/* SPDX-License-Identifier: MIT */
/*
 * Unit: the event ring - each transition recorded once with its cause,
 * mode changes and resets, cursors, and a reader that fell behind.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "harness.h"

static const char *YAML = "breakers:\n"
                          "  - name: c\n    failure_threshold: 2\n    open_timeout: 1s\n"
                          "  - name: r\n    policy: rate\n    failure_rate: 50\n"
                          "    window_size: 4\n    minimum_calls: 4\n"
                          "  - name: s\n    slow_call_duration: 10ms\n    slow_call_rate: 50\n"
                          "    window_size: 2\n    minimum_calls: 2\n";

static uint64_t call_ms;

static enum cbshm_outcome fn(void *arg)
{
    t_clock_advance_ms(call_ms);
    return *(enum cbshm_outcome *)arg;
}

static void calls(struct cbshm *shm, const char *name, int n, enum cbshm_outcome o, uint64_t ms)
{
    struct cbshm_breaker *b;

    assert_int_equal(cbshm_breaker_get(shm, name, &b), 0);
    call_ms = ms;
    for (int i = 0; i < n; i++)
        cbshm_execute(b, fn, &o);
    cbshm_breaker_release(b);
}

static size_t read_all(struct cbshm *shm, uint64_t *cursor, struct cbshm_event *ev, size_t max)
{
    size_t n;
    uint64_t lost;
    assert_int_equal(cbshm_events_read(shm, cursor, ev, max, &n, &lost), 0);
    assert_int_equal(lost, 0);
    return n;
}

static void expect(const struct cbshm_event *e, const char *name, enum cbshm_event_kind kind,
                   int from, int to, enum cbshm_event_cause cause)
{
    assert_string_equal(e->name, name);
    assert_int_equal(e->kind, kind);
    assert_int_equal(e->from, from);
    assert_int_equal(e->to, to);
    assert_int_equal(e->cause, cause);
}

static void test_each_transition_is_recorded_once_with_its_cause(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_event ev[16];
    uint64_t cursor = 0;
    size_t n;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    calls(shm, "c", 3, CBSHM_FAILURE, 0); /* trip; the third is rejected */
    t_clock_advance_ms(1000);
    calls(shm, "c", 1, CBSHM_FAILURE, 0); /* half-open, probe fails: open */
    t_clock_advance_ms(1000);
    calls(shm, "c", 1, CBSHM_SUCCESS, 0); /* half-open, probe ok: closed */
    calls(shm, "r", 2, CBSHM_SUCCESS, 0);
    calls(shm, "r", 2, CBSHM_FAILURE, 0);  /* 2 of 4: rate trip */
    calls(shm, "s", 2, CBSHM_SUCCESS, 20); /* 2 slow of 2: slow trip */
    assert_int_equal(cbshm_set_mode(shm, "c", CBSHM_MODE_DISABLED), 0);
    assert_int_equal(cbshm_set_mode(shm, "c", CBSHM_MODE_DISABLED), 0); /* no change, no event */
    assert_int_equal(cbshm_reset(shm, "r"), 0);
    n = read_all(shm, &cursor, ev, 16);
    assert_int_equal(n, 9);
    expect(&ev[0], "c", CBSHM_EVENT_STATE, CBSHM_STATE_CLOSED, CBSHM_STATE_OPEN,
           CBSHM_CAUSE_FAILURES);
    expect(&ev[1], "c", CBSHM_EVENT_STATE, CBSHM_STATE_OPEN, CBSHM_STATE_HALF_OPEN,
           CBSHM_CAUSE_OPEN_TIMEOUT);
    expect(&ev[2], "c", CBSHM_EVENT_STATE, CBSHM_STATE_HALF_OPEN, CBSHM_STATE_OPEN,
           CBSHM_CAUSE_PROBE_FAILED);
    expect(&ev[3], "c", CBSHM_EVENT_STATE, CBSHM_STATE_OPEN, CBSHM_STATE_HALF_OPEN,
           CBSHM_CAUSE_OPEN_TIMEOUT);
    expect(&ev[4], "c", CBSHM_EVENT_STATE, CBSHM_STATE_HALF_OPEN, CBSHM_STATE_CLOSED,
           CBSHM_CAUSE_PROBES_OK);
    expect(&ev[5], "r", CBSHM_EVENT_STATE, CBSHM_STATE_CLOSED, CBSHM_STATE_OPEN,
           CBSHM_CAUSE_FAILURE_RATE);
    expect(&ev[6], "s", CBSHM_EVENT_STATE, CBSHM_STATE_CLOSED, CBSHM_STATE_OPEN,
           CBSHM_CAUSE_SLOW_RATE);
    expect(&ev[7], "c", CBSHM_EVENT_MODE, CBSHM_MODE_NORMAL, CBSHM_MODE_DISABLED,
           CBSHM_CAUSE_OPERATOR);
    expect(&ev[8], "r", CBSHM_EVENT_RESET, CBSHM_STATE_OPEN, CBSHM_STATE_CLOSED,
           CBSHM_CAUSE_OPERATOR);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].seq, i);
        assert_int_equal(ev[i].pid, getpid());
        assert_true(i == 0 || ev[i].time_ns >= ev[i - 1].time_ns);
    }
    assert_int_equal(cursor, 9);
    assert_int_equal(read_all(shm, &cursor, ev, 16), 0); /* nothing new */
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

static void test_a_reader_from_now_sees_only_what_comes_next(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_event ev[4];
    uint64_t cursor = CBSHM_EVENTS_NOW;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_set_mode(shm, "c", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(read_all(shm, &cursor, ev, 4), 0);
    assert_int_equal(cursor, 1);
    assert_int_equal(cbshm_set_mode(shm, "c", CBSHM_MODE_NORMAL), 0);
    assert_int_equal(read_all(shm, &cursor, ev, 4), 1);
    expect(&ev[0], "c", CBSHM_EVENT_MODE, CBSHM_MODE_FORCED_OPEN, CBSHM_MODE_NORMAL,
           CBSHM_CAUSE_OPERATOR);
    assert_int_equal(cbshm_events_read(NULL, &cursor, ev, 4, &(size_t){0}, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_events_read(shm, NULL, ev, 4, &(size_t){0}, NULL), CBSHM_EINVAL);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_a_reader_that_fell_behind_is_told_what_it_lost(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_event ev[64];
    uint64_t cursor = 0, lost = 0, seen = 0, last = 0;
    size_t n;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    for (int i = 0; i < 1500; i++)
        assert_int_equal(
            cbshm_set_mode(shm, "c", i % 2 ? CBSHM_MODE_NORMAL : CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 64, &n, &lost), 0);
    assert_int_equal(lost, 1500 - 1024);
    assert_int_equal(ev[0].seq, 1500 - 1024);
    seen = n;
    last = ev[n - 1].seq;
    while (cbshm_events_read(shm, &cursor, ev, 64, &n, &lost) == 0 && n > 0) {
        assert_int_equal(lost, 0);
        assert_int_equal(ev[0].seq, last + 1);
        last = ev[n - 1].seq;
        seen += n;
    }
    assert_int_equal(seen, 1024);
    assert_int_equal(last, 1499);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* Every cause has its word, and the reader hands newer causes on as they
   are (the probe timeout used to come out as "operator"). */
static void test_every_cause_has_a_word_and_reaches_the_reader(void **state)
{
    static const char *const words[] = {
        "failures",  "failure_rate", "slow_rate",     "open_timeout", "probe_failed",
        "probes_ok", "operator",     "probe_timeout", "mode_expired", "retry_after"};
    struct cbshm_event ev[8];
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    struct cbshm *shm;
    uint64_t cursor = CBSHM_EVENTS_NOW;
    char seg[64];
    size_t n;

    (void)state;
    for (int c = 0; c < (int)(sizeof words / sizeof words[0]); c++)
        assert_string_equal(cbshm_event_cause_name(c), words[c]);
    assert_string_equal(cbshm_event_cause_name(99), "unknown");
    assert_string_equal(cbshm_event_cause_name(-1), "unknown");

    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), "breakers:\n  - name: p\n    failure_threshold: 1\n"
                                 "    open_timeout: 1s\n    probe_timeout: 1s\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "p", &b), 0);
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 8, &n, NULL), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_record(b, &t, CBSHM_FAILURE), 0);
    t_clock_advance_ms(1000);
    assert_int_equal(cbshm_allow(b, &t), 0); /* a probe, never recorded */
    t_clock_advance_ms(1000);
    assert_int_equal(cbshm_allow(b, &t), CBSHM_EREJECTED); /* it outlived its lease */
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 8, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ev[2].cause, CBSHM_CAUSE_PROBE_TIMEOUT);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    cbshm_destroy(seg);
    cbshm_clock_set(NULL, NULL);
}

/* Events written by one thread while another reads the ring and the
   breaker count without the lock: every shared field is an atomic, so the
   thread sanitizer (the tsan preset) finds no race - it did before. */
struct churn {
    struct cbshm *shm;
    _Atomic int stop;
};

static void *toggle_modes(void *arg)
{
    struct churn *c = arg;

    for (int i = 0; i < 5000; i++) /* five laps of the ring */
        assert_int_equal(
            cbshm_set_mode(c->shm, "c", i % 2 ? CBSHM_MODE_NORMAL : CBSHM_MODE_FORCED_OPEN), 0);
    c->stop = 1;
    return NULL;
}

static void test_the_ring_is_read_while_it_is_written_without_a_race(void **state)
{
    struct cbshm_event ev[16];
    struct cbshm_info info;
    struct churn c = {0};
    uint64_t cursor = 0, seen = 0;
    pthread_t th;
    char seg[64];
    size_t n;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &c.shm), 0);
    assert_int_equal(pthread_create(&th, NULL, toggle_modes, &c), 0);
    while (!c.stop) {
        assert_int_equal(cbshm_events_read(c.shm, &cursor, ev, 16, &n, NULL), 0);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(ev[i].name, "c");
        seen += n;
        assert_int_equal(cbshm_info(c.shm, &info), 0);
        assert_true(info.breakers >= 1);
    }
    pthread_join(th, NULL);
    assert_int_equal(cbshm_events_read(c.shm, &cursor, ev, 16, &n, NULL), 0);
    assert_true(seen + n > 0);
    cbshm_close(c.shm);
    cbshm_destroy(seg);
}

static enum cbshm_outcome failing(void *arg)
{
    (void)arg;
    return CBSHM_FAILURE;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * On the real clock, an event is never stamped before the call that
 * caused it, as the caller's own CLOCK_MONOTONIC saw it (the coarse clock
 * stamped a trip up to a tick, 1-4 ms, early), and its wall-clock time is
 * the CLOCK_REALTIME of that moment. Each round is a trip by failures,
 * then a reset by the operator.
 */
static void test_an_event_is_stamped_after_the_calls_that_caused_it(void **state)
{
    struct cbshm_event ev[2];
    struct cbshm_breaker *b;
    struct cbshm *shm;
    uint64_t cursor = 0; /* a new segment: no events yet */
    char seg[64];

    (void)state;
    cbshm_clock_set(NULL, NULL);
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "c", &b), 0);
    for (int round = 0; round < 20; round++) {
        uint64_t mono[4], wall[4];

        cbshm_execute(b, failing, NULL);
        mono[0] = clock_ns(CLOCK_MONOTONIC);
        wall[0] = clock_ns(CLOCK_REALTIME);
        cbshm_execute(b, failing, NULL); /* the second failure trips */
        mono[1] = clock_ns(CLOCK_MONOTONIC);
        wall[1] = clock_ns(CLOCK_REALTIME);
        mono[2] = clock_ns(CLOCK_MONOTONIC);
        wall[2] = clock_ns(CLOCK_REALTIME);
        assert_int_equal(cbshm_reset(shm, "c"), 0);
        mono[3] = clock_ns(CLOCK_MONOTONIC);
        wall[3] = clock_ns(CLOCK_REALTIME);
        assert_int_equal(read_all(shm, &cursor, ev, 2), 2);
        expect(&ev[0], "c", CBSHM_EVENT_STATE, CBSHM_STATE_CLOSED, CBSHM_STATE_OPEN,
               CBSHM_CAUSE_FAILURES);
        expect(&ev[1], "c", CBSHM_EVENT_RESET, CBSHM_STATE_OPEN, CBSHM_STATE_CLOSED,
               CBSHM_CAUSE_OPERATOR);
        for (int i = 0; i < 2; i++) {
            if (ev[i].time_ns < mono[2 * i])
                fail_msg("round %d: event %d stamped %llu ns before the call that caused it", round,
                         i, (unsigned long long)(mono[2 * i] - ev[i].time_ns));
            assert_true(ev[i].time_ns <= mono[2 * i + 1]);
            /* The wall clock may be stepped between reads; not in a test. */
            assert_true(ev[i].wall_ns >= wall[2 * i] && ev[i].wall_ns <= wall[2 * i + 1]);
        }
    }
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A timed mode's end is dated at its deadline, however late it is noticed. */
static void test_a_timed_mode_ends_at_its_deadline_in_the_ring(void **state)
{
    struct cbshm_event ev[2];
    struct cbshm_snapshot snap;
    struct cbshm *shm;
    uint64_t cursor = 0, before, wall_before;
    char seg[64];

    (void)state;
    cbshm_clock_set(NULL, NULL);
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    before = clock_ns(CLOCK_MONOTONIC);
    wall_before = clock_ns(CLOCK_REALTIME);
    assert_int_equal(cbshm_set_mode_for(shm, "c", CBSHM_MODE_FORCED_OPEN, 10), 0);
    nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    assert_int_equal(cbshm_snapshot(shm, "c", &snap), 0);
    assert_int_equal(read_all(shm, &cursor, ev, 2), 2);
    expect(&ev[1], "c", CBSHM_EVENT_MODE, CBSHM_MODE_FORCED_OPEN, CBSHM_MODE_NORMAL,
           CBSHM_CAUSE_MODE_EXPIRED);
    /* 10 ms after the change (less a coarse tick: 10 ms at most, HZ=100),
       not the 100 ms after it when the snapshot noticed. */
    assert_true(ev[1].time_ns + 1000000u >= before && ev[1].time_ns < before + 50000000u);
    assert_true(ev[1].wall_ns + 1000000u >= wall_before && ev[1].wall_ns < wall_before + 50000000u);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_an_event_is_stamped_after_the_calls_that_caused_it),
    cmocka_unit_test(test_a_timed_mode_ends_at_its_deadline_in_the_ring),
    cmocka_unit_test(test_the_ring_is_read_while_it_is_written_without_a_race),
    cmocka_unit_test(test_every_cause_has_a_word_and_reaches_the_reader),
    cmocka_unit_test(test_each_transition_is_recorded_once_with_its_cause),
    cmocka_unit_test(test_a_reader_from_now_sees_only_what_comes_next),
    cmocka_unit_test(test_a_reader_that_fell_behind_is_told_what_it_lost),
};
T_MAIN(tests)
