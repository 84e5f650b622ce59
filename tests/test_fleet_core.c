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
    c.op = (enum cbshm_fleet_op)3;
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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_command_is_applied_once_and_its_id_kept),
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
};
T_MAIN(tests)
