/* SPDX-License-Identifier: MIT */
/*
 * The segment's side of the fleet (libcbshm/fleet.c): a command applied
 * exactly once - also by a process killed at each instruction that
 * matters -, the fleet trip's force that never overrides an operator,
 * and the agent's status words. Redis is not needed here: test_fleet.c
 * drives the agent.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

static const char *YAML = "capacity: 8\nbreakers:\n"
                          "  - name: pay\n    failure_threshold: 2\n"
                          "  - name: mail\n";

static struct cbshm *setup(char *seg)
{
    struct cbshm *shm;

    t_segment_name(seg);
    t_apply(seg, YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    return shm;
}

static void done(struct cbshm *shm, const char *seg)
{
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static struct cbshm_fleet_command mode_cmd(uint64_t ms, uint64_t seq, const char *name,
                                           enum cbshm_mode mode, uint64_t for_ms)
{
    struct cbshm_fleet_command c;

    memset(&c, 0, sizeof c);
    c.id.ms = ms;
    c.id.seq = seq;
    c.op = CBSHM_FLEET_MODE;
    c.mode = mode;
    c.duration_ms = for_ms;
    snprintf(c.name, sizeof c.name, "%s", name);
    return c;
}

static struct cbshm_snapshot snap(struct cbshm *shm, const char *name)
{
    struct cbshm_snapshot s;
    assert_int_equal(cbshm_snapshot(shm, name, &s), 0);
    return s;
}

/* Events of `kind` for `name` in the whole ring. */
static int count_events(struct cbshm *shm, const char *name, enum cbshm_event_kind kind,
                        enum cbshm_event_cause *cause)
{
    struct cbshm_event ev[64];
    uint64_t cursor = 0;
    size_t n = 0;
    int count = 0;

    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 64, &n, NULL), 0);
    for (size_t i = 0; i < n; i++)
        if (ev[i].kind == kind && strcmp(ev[i].name, name) == 0) {
            count++;
            if (cause != NULL)
                *cause = ev[i].cause;
        }
    return count;
}

static void expect_applied(struct cbshm *shm, uint64_t ms, uint64_t seq, int result)
{
    struct cbshm_fleet_id id;
    int rc = 12345;

    assert_int_equal(cbshm_fleet_applied(shm, &id, &rc), 0);
    assert_int_equal(id.ms, ms);
    assert_int_equal(id.seq, seq);
    assert_int_equal(rc, result);
}

static void test_a_command_is_applied_once_and_its_id_kept(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg);
    struct cbshm_fleet_command c = mode_cmd(1700000000000, 3, "pay", CBSHM_MODE_FORCED_OPEN, 0);
    enum cbshm_event_cause cause = 99;
    struct cbshm_snapshot s;

    (void)state;
    expect_applied(shm, 0, 0, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    s = snap(shm, "pay");
    assert_int_equal(s.mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(s.mode_cause, CBSHM_CAUSE_OPERATOR);
    expect_applied(shm, 1700000000000, 3, 0);
    /* Again, and an older id: nothing. */
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);
    c.id.seq = 2;
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);
    c.id.ms--;
    c.id.seq = 99;
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, &cause), 1);
    assert_int_equal(cause, CBSHM_CAUSE_OPERATOR);
    expect_applied(shm, 1700000000000, 3, 0);
    /* A later one: enable, back to normal. */
    c = mode_cmd(1700000000000, 4, "pay", CBSHM_MODE_NORMAL, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, NULL), 2);
    done(shm, seg);
}

static void test_a_timed_command_ends_by_itself(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_fleet_command c = mode_cmd(10, 0, "mail", CBSHM_MODE_DISABLED, 250);
    enum cbshm_event_cause cause = 99;

    (void)state;
    t_clock_install(1000000000000ull);
    shm = setup(seg);
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(snap(shm, "mail").mode, CBSHM_MODE_DISABLED);
    t_clock_advance_ms(251);
    assert_int_equal(snap(shm, "mail").mode, CBSHM_MODE_NORMAL);
    assert_int_equal(count_events(shm, "mail", CBSHM_EVENT_MODE, &cause), 2);
    assert_int_equal(cause, CBSHM_CAUSE_MODE_EXPIRED);
    done(shm, seg);
    cbshm_clock_set(NULL, NULL);
}

static void test_a_bad_command_is_consumed_with_its_error(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg);
    struct cbshm_fleet_command c = mode_cmd(5, 0, "nosuch", CBSHM_MODE_FORCED_OPEN, 0);

    (void)state;
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_ENOBREAKER);
    expect_applied(shm, 5, 0, CBSHM_ENOBREAKER);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);
    c = mode_cmd(6, 0, "bad name!", CBSHM_MODE_FORCED_OPEN, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EBADNAME);
    expect_applied(shm, 6, 0, CBSHM_EBADNAME);
    /* A duration with normal, a duration past a day, a mode out of range. */
    c = mode_cmd(7, 0, "pay", CBSHM_MODE_NORMAL, 1000);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EINVAL);
    expect_applied(shm, 7, 0, CBSHM_EINVAL);
    c = mode_cmd(8, 0, "pay", CBSHM_MODE_FORCED_OPEN, 24ull * 3600 * 1000 + 1);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EINVAL);
    c = mode_cmd(9, 0, "pay", (enum cbshm_mode)7, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EINVAL);
    expect_applied(shm, 9, 0, CBSHM_EINVAL);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, NULL), 0);
    /* A skip consumes its id and changes nothing; an id of 0-0, an op
       out of range and NULLs consume nothing. */
    c = mode_cmd(11, 1, "", CBSHM_MODE_NORMAL, 0);
    c.op = CBSHM_FLEET_SKIP;
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    expect_applied(shm, 11, 1, 0);
    c.id.ms = 0;
    c.id.seq = 0;
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EINVAL);
    c = mode_cmd(12, 0, "pay", CBSHM_MODE_FORCED_OPEN, 0);
    c.op = (enum cbshm_fleet_op)4;
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EINVAL);
    assert_int_equal(cbshm_fleet_apply(shm, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_fleet_apply(NULL, &c), CBSHM_EINVAL);
    expect_applied(shm, 11, 1, 0);
    done(shm, seg);
}

static void test_a_reset_command_closes_and_clears_keeping_the_mode(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg);
    struct cbshm_breaker *b;
    struct cbshm_fleet_command c = mode_cmd(20, 0, "pay", CBSHM_MODE_NORMAL, 0);

    (void)state;
    assert_int_equal(cbshm_breaker_get(shm, "pay", &b), 0);
    cbshm_execute(b, t_fail_fn, NULL);
    cbshm_execute(b, t_fail_fn, NULL);
    assert_int_equal(snap(shm, "pay").state, CBSHM_STATE_OPEN);
    c.op = CBSHM_FLEET_RESET;
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(snap(shm, "pay").state, CBSHM_STATE_CLOSED);
    assert_int_equal(snap(shm, "pay").failures, 0);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_RESET, NULL), 1);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_RESET, NULL), 1);
    cbshm_breaker_release(b);
    done(shm, seg);
}

static void test_a_read_only_view_reads_the_id_and_status_and_writes_neither(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg), *ro;
    struct cbshm_fleet_command c = mode_cmd(30, 2, "pay", CBSHM_MODE_FORCED_CLOSED, 0);
    struct cbshm_fleet_status st = {.agent_pid = 4242,
                                    .connected = 7,
                                    .contact_wall_ns = 11,
                                    .heartbeat_wall_ns = 12,
                                    .commands_applied = 13,
                                    .commands_failed = 14,
                                    .lag_ms = 15},
                              got;
    struct cbshm_fleet_id id;

    (void)state;
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(cbshm_fleet_status_set(shm, &st), 0);
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &ro), 0);
    assert_int_equal(cbshm_fleet_applied(ro, &id, NULL), 0);
    assert_int_equal(id.ms, 30);
    assert_int_equal(id.seq, 2);
    assert_int_equal(cbshm_fleet_status_get(ro, &got), 0);
    assert_int_equal(got.agent_pid, 4242);
    assert_int_equal(got.connected, 1); /* a flag */
    assert_int_equal(got.contact_wall_ns, 11);
    assert_int_equal(got.heartbeat_wall_ns, 12);
    assert_int_equal(got.commands_applied, 13);
    assert_int_equal(got.commands_failed, 14);
    assert_int_equal(got.lag_ms, 15);
    c.id.seq = 3;
    assert_int_equal(cbshm_fleet_apply(ro, &c), CBSHM_EPERM);
    assert_int_equal(cbshm_fleet_status_set(ro, &st), CBSHM_EPERM);
    assert_int_equal(cbshm_fleet_force(ro, "pay", 1, 1000), CBSHM_EPERM);
    assert_int_equal(cbshm_fleet_status_get(ro, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_fleet_applied(ro, NULL, NULL), CBSHM_EINVAL);
    cbshm_close(ro);
    done(shm, seg);
}

static void test_the_fleet_forces_only_a_normal_breaker_and_releases_only_its_own(void **state)
{
    char seg[64];
    struct cbshm *shm;
    enum cbshm_event_cause cause = 99;
    struct cbshm_snapshot s;
    uint64_t until;

    (void)state;
    t_clock_install(1000000000000ull);
    shm = setup(seg);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), 0);
    s = snap(shm, "pay");
    assert_int_equal(s.mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(s.mode_cause, CBSHM_CAUSE_FLEET);
    until = s.mode_until_ns;
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, &cause), 1);
    assert_int_equal(cause, CBSHM_CAUSE_FLEET);
    /* Renewed: a later end, no second event. */
    t_clock_advance_ms(5000);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), 0);
    assert_int_equal(snap(shm, "pay").mode_until_ns, until + 5000000000ull);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, NULL), 1);
    /* Released: normal, cause fleet. */
    assert_int_equal(cbshm_fleet_force(shm, "pay", 0, 0), 0);
    s = snap(shm, "pay");
    assert_int_equal(s.mode, CBSHM_MODE_NORMAL);
    assert_int_equal(s.mode_cause, CBSHM_CAUSE_FLEET);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, &cause), 2);
    assert_int_equal(cause, CBSHM_CAUSE_FLEET);
    /* An operator's mode stands, forced open too, and is not released. */
    assert_int_equal(cbshm_set_mode(shm, "pay", CBSHM_MODE_FORCED_CLOSED), 0);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), CBSHM_EBUSY);
    assert_int_equal(cbshm_set_mode(shm, "pay", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), CBSHM_EBUSY);
    assert_int_equal(snap(shm, "pay").mode_until_ns, 0);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 0, 0), 0);
    s = snap(shm, "pay");
    assert_int_equal(s.mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(s.mode_cause, CBSHM_CAUSE_OPERATOR);
    /* An operator who takes over a fleet force keeps it. */
    assert_int_equal(cbshm_fleet_force(shm, "mail", 1, 15000), 0);
    assert_int_equal(cbshm_set_mode(shm, "mail", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(cbshm_fleet_force(shm, "mail", 0, 0), 0);
    assert_int_equal(snap(shm, "mail").mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(snap(shm, "mail").mode_until_ns, 0);
    /* Bad arguments. */
    assert_int_equal(cbshm_fleet_force(shm, "nosuch", 1, 1000), CBSHM_ENOBREAKER);
    assert_int_equal(cbshm_fleet_force(shm, "bad name!", 1, 1000), CBSHM_EBADNAME);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 0), CBSHM_EINVAL);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 24ull * 3600 * 1000 + 1), CBSHM_EINVAL);
    assert_int_equal(cbshm_fleet_force(NULL, "pay", 0, 0), CBSHM_EINVAL);
    done(shm, seg);
    cbshm_clock_set(NULL, NULL);
}

static void test_a_fleet_force_whose_agent_died_ends_by_itself(void **state)
{
    char seg[64];
    struct cbshm *shm;
    enum cbshm_event_cause cause = 99;

    (void)state;
    t_clock_install(1000000000000ull);
    shm = setup(seg);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), 0);
    t_clock_advance_ms(15001);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
    assert_int_equal(snap(shm, "pay").mode_cause, CBSHM_CAUSE_MODE_EXPIRED);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, &cause), 2);
    assert_int_equal(cause, CBSHM_CAUSE_MODE_EXPIRED);
    /* And the fleet may force it again. */
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), 0);
    done(shm, seg);
    cbshm_clock_set(NULL, NULL);
}

/* A child applies `c` and is killed at crash point `at`; the parent then
   takes the lock (which finishes the command) and retries it as an agent
   restarted would: the change is made once, with one event, and the id
   is stored. */
static void crash_case(const char *at, enum cbshm_fleet_op op)
{
    char seg[64];
    struct cbshm *shm = setup(seg);
    struct cbshm_fleet_command c = mode_cmd(40, 1, "pay", CBSHM_MODE_FORCED_OPEN, 0);
    enum cbshm_event_kind kind = op == CBSHM_FLEET_RESET ? CBSHM_EVENT_RESET : CBSHM_EVENT_MODE;
    int pid;

    c.op = op;
    if ((pid = fork()) == 0) {
        struct cbshm *child;
        setenv("CBSHM_CRASH_AT", at, 1);
        if (cbshm_open(seg, 0, &child) != 0)
            _exit(3);
        cbshm_fleet_apply(child, &c);
        _exit(0); /* the point was never reached */
    }
    if (t_wait(pid) != 128 + SIGKILL)
        fail_msg("child did not die at crash point %s", at);
    expect_applied(shm, 40, 1, 0); /* takes the lock: repaired */
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);
    assert_int_equal(count_events(shm, "pay", kind, NULL), 1);
    if (op == CBSHM_FLEET_MODE)
        assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
    /* The next command goes on from there. */
    c = mode_cmd(40, 2, "pay", CBSHM_MODE_NORMAL, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
    done(shm, seg);
}

static void test_an_agent_killed_before_its_change_has_it_finished_once(void **state)
{
    (void)state;
    crash_case("fleet.journalled", CBSHM_FLEET_MODE);
}

static void test_an_agent_killed_after_its_change_has_its_id_stored_once(void **state)
{
    (void)state;
    crash_case("fleet.changed", CBSHM_FLEET_MODE);
}

static void test_an_agent_killed_after_storing_the_id_repeats_nothing(void **state)
{
    (void)state;
    crash_case("fleet.stored", CBSHM_FLEET_MODE);
}

static void test_an_agent_killed_inside_a_reset_command_resets_once(void **state)
{
    (void)state;
    crash_case("fleet.changed", CBSHM_FLEET_RESET);
}

/* A compromised worker writes the journal and leaves op set, as a dead
   holder would: the repair bounds every word and applies nothing it
   cannot describe; root's tools go on. */
static void test_a_scribbled_journal_applies_nothing_and_crashes_nothing(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg);
    struct cbshm_header *h = shm->hdr;
    struct cbshm_fleet_id id;

    (void)state;
    for (int round = 0; round < 3; round++) {
        memset(&h->fleet.pending, round == 0 ? 0xff : 0x5a, sizeof h->fleet.pending);
        if (round == 2) {
            h->fleet.pending.op = CBSHM_FLEET_MODE;
            h->fleet.pending.mode = CBSHM_MODE_FORCED_OPEN;
            h->fleet.pending.rc = 0;
            h->fleet.pending.slot = 100000; /* past the table */
        }
        h->op = CBSHM_OP_FLEET;
        cbshm__table_repair(shm);
        assert_int_equal(h->op, CBSHM_OP_NONE);
        assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
        assert_int_equal(snap(shm, "mail").mode, CBSHM_MODE_NORMAL);
    }
    assert_int_equal(cbshm_fleet_applied(shm, &id, NULL), 0);
    done(shm, seg);
}

/* The last event of `kind` for `name` in the whole ring (fails the test
   when there is none). */
static struct cbshm_event last_event(struct cbshm *shm, const char *name,
                                     enum cbshm_event_kind kind)
{
    struct cbshm_event ev[64], last;
    uint64_t cursor = 0;
    size_t n = 0;
    int found = 0;

    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 64, &n, NULL), 0);
    for (size_t i = 0; i < n; i++)
        if (ev[i].kind == kind && strcmp(ev[i].name, name) == 0) {
            last = ev[i];
            found = 1;
        }
    if (!found)
        fail_msg("no event of kind %d for %s", (int)kind, name);
    return last;
}

/* Forks a child that opens `seg` read-write, sets CBSHM_CRASH_AT=at and
   runs `fn`; returns once the child died there (fails otherwise). */
static void child_killed_at(const char *seg, const char *at, void (*fn)(struct cbshm *child))
{
    int pid;

    if ((pid = fork()) == 0) {
        struct cbshm *child;
        if (cbshm_open(seg, 0, &child) != 0)
            _exit(3);
        setenv("CBSHM_CRASH_AT", at, 1);
        fn(child);
        _exit(0); /* the point was never reached */
    }
    if (t_wait(pid) != 128 + SIGKILL)
        fail_msg("child did not die at crash point %s", at);
}

static void reset_pay(struct cbshm *child)
{
    struct cbshm_fleet_command c = mode_cmd(50, 1, "pay", CBSHM_MODE_NORMAL, 0);

    c.op = CBSHM_FLEET_RESET;
    cbshm_fleet_apply(child, &c);
}

/* A reset's event names the state it ended. The repair makes the reset
   again, after the dead agent's reset already closed the breaker: the
   state it left has to come from the journal, not from the slot. */
static void test_a_reset_finished_for_a_dead_agent_says_which_state_it_ended(void **state)
{
    char seg[64];
    struct cbshm_breaker *b;
    struct cbshm_event ev;

    static const char *const points[] = {"fleet.journalled", "reset.counters_cleared",
                                         "fleet.changed"};

    (void)state;
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        struct cbshm *shm = setup(seg);
        assert_int_equal(cbshm_breaker_get(shm, "pay", &b), 0);
        cbshm_execute(b, t_fail_fn, NULL);
        cbshm_execute(b, t_fail_fn, NULL);
        assert_int_equal(snap(shm, "pay").state, CBSHM_STATE_OPEN);
        child_killed_at(seg, points[i], reset_pay);
        expect_applied(shm, 50, 1, 0); /* takes the lock: repaired */
        assert_int_equal(snap(shm, "pay").state, CBSHM_STATE_CLOSED);
        assert_int_equal(snap(shm, "pay").failures, 0);
        assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_RESET, NULL), 1);
        ev = last_event(shm, "pay", CBSHM_EVENT_RESET);
        assert_int_equal(ev.from, CBSHM_STATE_OPEN);
        assert_int_equal(ev.to, CBSHM_STATE_CLOSED);
        assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
        cbshm_breaker_release(b);
        done(shm, seg);
    }
}

/* Every bucket of the name index scribbled past the table: looking a name
   up says CBSHM_ECORRUPT. The contract has that code consume nothing: an
   agent tries the command again (after cbctl apply rebuilt the segment),
   where a consumed one would be answered EALREADY and never applied. */
static void test_a_command_that_meets_a_scribbled_index_is_not_consumed(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg);
    struct cbshm_fleet_command c = mode_cmd(60, 0, "pay", CBSHM_MODE_FORCED_OPEN, 0);

    (void)state;
    for (uint32_t i = 0; i < shm->index_buckets; i++)
        shm->index[i] = shm->capacity + 5;
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_ECORRUPT);
    expect_applied(shm, 0, 0, 0);
    cbshm__table_reindex(shm); /* what a rebuild leaves */
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_FORCED_OPEN);
    expect_applied(shm, 60, 0, 0);
    done(shm, seg);
}

/* cbctl destroy and apply while the agent runs: its handle moves to the
   new segment, as every other call's does, and so must its status, or
   cbctl metrics on the new segment says no agent ever ran while one
   does. A handle whose segment is not there yet has none to write. */
static void test_the_agents_status_goes_to_the_segment_that_replaced_its_own(void **state)
{
    char seg[64], absent[64];
    struct cbshm *shm = setup(seg), *fresh, *late;
    struct cbshm_fleet_status st = {.agent_pid = 4242, .connected = 1, .commands_applied = 3}, got;

    (void)state;
    assert_int_equal(cbshm_fleet_status_set(shm, &st), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
    t_apply(seg, YAML);
    st.agent_pid = 4343;
    assert_int_equal(cbshm_fleet_status_set(shm, &st), 0);
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &fresh), 0);
    assert_int_equal(cbshm_fleet_status_get(fresh, &got), 0);
    assert_int_equal(got.agent_pid, 4343);
    assert_int_equal(got.commands_applied, 3);
    memset(&got, 0, sizeof got);
    assert_int_equal(cbshm_fleet_status_get(shm, &got), 0);
    assert_int_equal(got.agent_pid, 4343);
    cbshm_close(fresh);
    /* Late: nothing under the name yet. */
    t_segment_name(absent);
    assert_int_equal(cbshm_open(absent, CBSHM_LATE, &late), 0);
    assert_int_equal(cbshm_fleet_status_set(late, &st), CBSHM_ENOSEG);
    assert_int_equal(cbshm_fleet_status_get(late, &got), CBSHM_ENOSEG);
    cbshm_close(late);
    done(shm, seg);
}

static void snapshot_pay(struct cbshm *child)
{
    struct cbshm_snapshot s;

    cbshm_snapshot(child, "pay", &s); /* a writer: ends a timed mode that ran out */
}

static void close_pay(struct cbshm *child)
{
    cbshm_set_mode(child, "pay", CBSHM_MODE_FORCED_CLOSED);
}

/* A mode change is several words (its end, its cause, the control word).
   A process killed among them - a worker ending a fleet force whose lease
   ran out, an operator taking a fleet force over - must not leave the
   force in place for good: the agent that owned it no longer renews it
   and the lease was what ended it. Killed anywhere in the change, the
   breaker may leave its mode early, never late. */
static void test_a_fleet_force_ends_even_when_its_ending_was_killed_midway(void **state)
{
    static const char *const points[] = {"mode.before_publish", "mode.published"};
    char seg[64];
    struct cbshm *shm;
    struct cbshm_snapshot s;

    (void)state;
    t_clock_install(1000000000000ull);
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        shm = setup(seg);
        /* The lease runs out; the worker that ends it dies midway. */
        assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), 0);
        t_clock_advance_ms(15001);
        child_killed_at(seg, points[i], snapshot_pay);
        s = snap(shm, "pay");
        assert_int_equal(s.mode, CBSHM_MODE_NORMAL);
        /* An operator's forced_closed killed midway over a fleet force:
           whatever it left ends no later than the lease. */
        assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 15000), 0);
        child_killed_at(seg, points[i], close_pay);
        t_clock_advance_ms(15001);
        s = snap(shm, "pay");
        assert_int_equal(s.mode, CBSHM_MODE_NORMAL);
        assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
        done(shm, seg);
    }
    cbshm_clock_set(NULL, NULL);
}

/* The agent renews the lease while a worker holds the table lock; the
   lease runs out during the wait. What the change sees is the time it
   is made at: the force ended (its event), and the renewal is a new
   force, not an extension of one that was already over. */
static void test_a_lease_that_ran_out_while_the_lock_was_awaited_is_not_extended(void **state)
{
    char seg[64], go;
    struct cbshm *shm;
    int ready[2], pid;
    enum cbshm_event_cause cause = 99;
    struct cbshm_snapshot s;

    (void)state;
    t_clock_install(1000000000000ull);
    shm = setup(seg);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 1000), 0);
    t_clock_advance_ms(900);
    assert_int_equal(pipe(ready), 0);
    if ((pid = fork()) == 0) {
        struct cbshm *child;
        if (cbshm_open(seg, 0, &child) != 0 || cbshm__lock(child) != 0)
            _exit(3);
        if (write(ready[1], "l", 1) != 1)
            _exit(4);
        usleep(300 * 1000);
        t_clock_advance_ms(500); /* the lease ends while the agent waits */
        cbshm__unlock(child);
        _exit(0);
    }
    assert_int_equal(read(ready[0], &go, 1), 1);
    assert_int_equal(cbshm_fleet_force(shm, "pay", 1, 1000), 0);
    assert_int_equal(t_wait(pid), 0);
    close(ready[0]);
    close(ready[1]);
    s = snap(shm, "pay");
    assert_int_equal(s.mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(s.mode_cause, CBSHM_CAUSE_FLEET);
    assert_int_equal(s.mode_until_ns, t_clock_now() + 1000000000ull);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, &cause), 3);
    assert_int_equal(cause, CBSHM_CAUSE_FLEET);
    done(shm, seg);
    cbshm_clock_set(NULL, NULL);
}

/* Two agents on one segment, following the same stream, each command
   tried by both at once: every command is applied once in all. */
static void test_two_agents_on_one_segment_apply_each_command_once_in_all(void **state)
{
    enum { COMMANDS = 3000 };
    char seg[64];
    struct cbshm *shm = setup(seg);
    uint64_t events_before = atomic_load(&shm->hdr->events_seq);
    int pids[2], counts[2], fds[2], go[2], applied = 0;
    uint32_t mine;
    char start;

    (void)state;
    assert_int_equal(pipe(go), 0); /* both start at once */
    for (int a = 0; a < 2; a++) {
        assert_int_equal(pipe(fds), 0);
        if ((pids[a] = fork()) == 0) {
            struct cbshm *agent;
            close(fds[0]);
            mine = 0;
            if (cbshm_open(seg, 0, &agent) != 0 || read(go[0], &start, 1) != 1)
                _exit(3);
            for (uint64_t k = 1; k <= COMMANDS; k++) {
                struct cbshm_fleet_command c =
                    mode_cmd(k, 0, "pay", k % 2 ? CBSHM_MODE_FORCED_OPEN : CBSHM_MODE_NORMAL, 0);
                int rc;
                while ((rc = cbshm_fleet_apply(agent, &c)) == CBSHM_ELOCK)
                    ;
                if (rc == 0)
                    mine++;
                else if (rc != CBSHM_EALREADY)
                    _exit(4);
            }
            cbshm_close(agent);
            _exit(write(fds[1], &mine, sizeof mine) == sizeof mine ? 0 : 5);
        }
        close(fds[1]);
        counts[a] = fds[0];
    }
    assert_int_equal(write(go[1], "gg", 2), 2);
    close(go[0]);
    close(go[1]);
    for (int a = 0; a < 2; a++) {
        assert_int_equal(t_wait(pids[a]), 0);
        assert_int_equal(read(counts[a], &mine, sizeof mine), sizeof mine);
        close(counts[a]);
        applied += (int)mine;
    }
    assert_int_equal(applied, COMMANDS);
    assert_int_equal(atomic_load(&shm->hdr->events_seq) - events_before, COMMANDS);
    expect_applied(shm, COMMANDS, 0, 0);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
    done(shm, seg);
}

/* A read-only view (cbctl metrics) reads the id while the agent stores
   ids one after another: every id it sees is one that was stored. */
static void test_a_read_only_view_never_sees_a_torn_applied_id(void **state)
{
    enum { COMMANDS = 20000 };
    char seg[64];
    struct cbshm *shm = setup(seg), *ro;
    struct cbshm_fleet_id id, last = {0, 0};
    int pid, result;

    (void)state;
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &ro), 0);
    if ((pid = fork()) == 0) {
        struct cbshm *agent;
        if (cbshm_open(seg, 0, &agent) != 0)
            _exit(3);
        /* id k-k with result 0 or, for an odd k, the bad name's error. */
        for (uint64_t k = 1; k <= COMMANDS; k++) {
            struct cbshm_fleet_command c =
                mode_cmd(k, k, k % 2 ? "bad name!" : "pay", CBSHM_MODE_FORCED_OPEN, 0);
            while (cbshm_fleet_apply(agent, &c) == CBSHM_ELOCK)
                ;
        }
        _exit(0);
    }
    do {
        assert_int_equal(cbshm_fleet_applied(ro, &id, &result), 0);
        if (id.ms != id.seq || id.ms < last.ms ||
            (id.ms != 0 && result != (id.ms % 2 ? CBSHM_EBADNAME : 0)))
            fail_msg("torn: %llu-%llu result %d after %llu", (unsigned long long)id.ms,
                     (unsigned long long)id.seq, result, (unsigned long long)last.ms);
        last = id;
    } while (id.ms < COMMANDS);
    assert_int_equal(t_wait(pid), 0);
    cbshm_close(ro);
    done(shm, seg);
}

static void force_pay_open(struct cbshm *child)
{
    struct cbshm_fleet_command c = mode_cmd(80, 1, "pay", CBSHM_MODE_FORCED_OPEN, 0);

    cbshm_fleet_apply(child, &c);
}

/* A timed mode that ends exactly as a command comes: the command ends it
   first (its own event), then makes its change. Killed in the ending,
   before the command was journalled: nothing of the command was done,
   and the agent's retry does both, each once. */
static void test_a_command_killed_while_ending_a_timed_mode_is_applied_once_on_retry(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_fleet_command c = mode_cmd(80, 1, "pay", CBSHM_MODE_FORCED_OPEN, 0);
    enum cbshm_event_cause cause = 99;

    (void)state;
    t_clock_install(1000000000000ull);
    shm = setup(seg);
    assert_int_equal(cbshm_set_mode_for(shm, "pay", CBSHM_MODE_DISABLED, 500), 0);
    t_clock_advance_ms(500); /* exactly its end */
    child_killed_at(seg, "mode.before_publish", force_pay_open);
    expect_applied(shm, 0, 0, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_FORCED_OPEN);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, &cause), 3);
    assert_int_equal(cause, CBSHM_CAUSE_OPERATOR);
    expect_applied(shm, 80, 1, 0);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
    done(shm, seg);
    cbshm_clock_set(NULL, NULL);
}

/* An agent frozen (SIGSTOP) inside a command holds the table lock: the
   next command waits its second and gets CBSHM_ELOCK with nothing
   consumed, a read-only view cannot read a half-stored id either. The
   frozen agent is then killed: the next holder finishes its command and
   applies the next, each once. */
static void
test_an_agent_frozen_inside_a_command_then_killed_loses_and_doubles_nothing(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg), *ro;
    struct cbshm_fleet_command next = mode_cmd(80, 2, "pay", CBSHM_MODE_NORMAL, 0);
    struct cbshm_fleet_id id;
    int pid, status;

    (void)state;
#ifdef __SANITIZE_THREAD__
    done(shm, seg);
    skip(); /* the tsan build's lock waits unbounded (lock.c): no ELOCK to see */
#endif
    if ((pid = fork()) == 0) {
        struct cbshm *child;
        if (cbshm_open(seg, 0, &child) != 0)
            _exit(3);
        setenv("CBSHM_CRASH_AT", "fleet.journalled", 1);
        setenv("CBSHM_CRASH_SIGNAL", "STOP", 1);
        force_pay_open(child);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
    assert_true(WIFSTOPPED(status));
    assert_int_equal(cbshm_fleet_apply(shm, &next), CBSHM_ELOCK);
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &ro), 0);
    assert_int_equal(cbshm_fleet_applied(ro, &id, NULL), CBSHM_ELOCK);
    kill(pid, SIGKILL);
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    assert_int_equal(cbshm_fleet_apply(shm, &next), 0);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, NULL), 2);
    assert_int_equal(cbshm_fleet_applied(ro, &id, NULL), 0);
    assert_int_equal(id.ms, 80);
    assert_int_equal(id.seq, 2);
    cbshm_close(ro);
    done(shm, seg);
}

/* The stream started over behind the stored id (a Redis restarted empty
   with its clock behind, a replica whose stream ends earlier): a rebase
   stores the lower id, changing nothing, and the commands after it apply. */
static void test_a_rebase_stores_a_lower_id_and_the_commands_after_it_apply(void **state)
{
    char seg[64];
    struct cbshm *shm = setup(seg);
    struct cbshm_fleet_command c = mode_cmd(5000, 0, "pay", CBSHM_MODE_FORCED_OPEN, 0);

    (void)state;
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    c = mode_cmd(4000, 0, "pay", CBSHM_MODE_NORMAL, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY); /* behind: stalled */
    c.op = CBSHM_FLEET_REBASE;
    c.id.ms = 3999;
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    expect_applied(shm, 3999, 0, 0);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_FORCED_OPEN); /* nothing changed */
    assert_int_equal(cbshm_fleet_apply(shm, &c), CBSHM_EALREADY);    /* the same again */
    c = mode_cmd(4000, 0, "pay", CBSHM_MODE_NORMAL, 0);
    assert_int_equal(cbshm_fleet_apply(shm, &c), 0);
    assert_int_equal(snap(shm, "pay").mode, CBSHM_MODE_NORMAL);
    assert_int_equal(count_events(shm, "pay", CBSHM_EVENT_MODE, NULL), 2);
    done(shm, seg);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_command_is_applied_once_and_its_id_kept),
    cmocka_unit_test(test_a_rebase_stores_a_lower_id_and_the_commands_after_it_apply),
    cmocka_unit_test(test_a_timed_command_ends_by_itself),
    cmocka_unit_test(test_a_bad_command_is_consumed_with_its_error),
    cmocka_unit_test(test_a_reset_command_closes_and_clears_keeping_the_mode),
    cmocka_unit_test(test_a_read_only_view_reads_the_id_and_status_and_writes_neither),
    cmocka_unit_test(test_the_fleet_forces_only_a_normal_breaker_and_releases_only_its_own),
    cmocka_unit_test(test_a_fleet_force_whose_agent_died_ends_by_itself),
    cmocka_unit_test(test_an_agent_killed_before_its_change_has_it_finished_once),
    cmocka_unit_test(test_an_agent_killed_after_its_change_has_its_id_stored_once),
    cmocka_unit_test(test_an_agent_killed_after_storing_the_id_repeats_nothing),
    cmocka_unit_test(test_an_agent_killed_inside_a_reset_command_resets_once),
    cmocka_unit_test(test_a_scribbled_journal_applies_nothing_and_crashes_nothing),
    cmocka_unit_test(test_a_reset_finished_for_a_dead_agent_says_which_state_it_ended),
    cmocka_unit_test(test_a_command_that_meets_a_scribbled_index_is_not_consumed),
    cmocka_unit_test(test_the_agents_status_goes_to_the_segment_that_replaced_its_own),
    cmocka_unit_test(test_a_fleet_force_ends_even_when_its_ending_was_killed_midway),
    cmocka_unit_test(test_a_lease_that_ran_out_while_the_lock_was_awaited_is_not_extended),
    cmocka_unit_test(test_two_agents_on_one_segment_apply_each_command_once_in_all),
    cmocka_unit_test(test_a_read_only_view_never_sees_a_torn_applied_id),
    cmocka_unit_test(test_a_command_killed_while_ending_a_timed_mode_is_applied_once_on_retry),
    cmocka_unit_test(test_an_agent_frozen_inside_a_command_then_killed_loses_and_doubles_nothing),
};
T_MAIN(tests)
