/* SPDX-License-Identifier: MIT */
/* The scenario runner declared in scenario.h. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "scenario.h"

uint64_t call_ms;

enum cbshm_outcome timed(void *arg)
{
    t_clock_advance_ms(call_ms);
    return *(enum cbshm_outcome *)arg;
}

void run(const struct scenario *sc)
{
    char seg[64], yaml[1024];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket held, queue[16];
    size_t head = 0, tail = 0;

    t_clock_install(1000000000000000ull);
    snprintf(yaml, sizeof yaml, "breakers:\n  - name: x\n%s", sc->yaml);
    t_apply(t_segment_name(seg), yaml);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "x", &b), 0);
    for (int i = 0; i < 40 && sc->steps[i].op != END; i++) {
        const struct step *st = &sc->steps[i];
        struct cbshm_snapshot s;
        enum cbshm_outcome o = st->op == OK     ? CBSHM_SUCCESS
                               : st->op == FAIL ? CBSHM_FAILURE
                                                : CBSHM_IGNORED;
        switch (st->op) {
        case OK:
        case FAIL:
        case IGN:
            call_ms = st->ms;
            for (uint64_t k = 0; k < st->n; k++)
                cbshm_execute(b, timed, &o);
            break;
        case TICK:
            t_clock_advance_ms(st->ms);
            break;
        case STATE:
            assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
            if (s.state != (enum cbshm_state)st->n)
                fail_msg("step %d: state %d, expected %d (window %llu calls, %llu failures)", i,
                         s.state, (int)st->n, (unsigned long long)s.window_calls,
                         (unsigned long long)s.window_failures);
            break;
        case WINDOW:
            assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
            if (s.window_calls != st->n || s.window_failures != st->fails ||
                s.window_slow_calls != st->slow)
                fail_msg("step %d: window %llu/%llu/%llu, expected %llu/%llu/%llu", i,
                         (unsigned long long)s.window_calls, (unsigned long long)s.window_failures,
                         (unsigned long long)s.window_slow_calls, (unsigned long long)st->n,
                         (unsigned long long)st->fails, (unsigned long long)st->slow);
            break;
        case PERIOD:
            assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
            assert_int_equal(s.state, OPEN);
            if (s.current_open_ms != st->ms ||
                s.open_until_ns - s.last_transition_ns != st->ms * 1000000u)
                fail_msg("step %d: open period %llums (until +%llums), expected %llums", i,
                         (unsigned long long)s.current_open_ms,
                         (unsigned long long)((s.open_until_ns - s.last_transition_ns) / 1000000u),
                         (unsigned long long)st->ms);
            break;
        case MODE:
            assert_int_equal(cbshm_set_mode(shm, "x", (enum cbshm_mode)st->n), 0);
            break;
        case HOLD:
            assert_int_equal(cbshm_allow(b, &held), 0);
            break;
        case RECORD:
            assert_int_equal(cbshm_record(b, &held, (enum cbshm_outcome)st->n), 0);
            break;
        case COUNTS:
            assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
            if (s.failures != st->n)
                fail_msg("step %d: %llu failures recorded, expected %llu", i,
                         (unsigned long long)s.failures, (unsigned long long)st->n);
            break;
        case ADMIT:
            for (uint64_t k = 0; k < st->n; k++) {
                if (tail - head == sizeof queue / sizeof queue[0])
                    fail_msg("step %d: more than 16 tickets in flight", i);
                if (cbshm_allow(b, &queue[tail % 16]) != 0)
                    fail_msg("step %d: call %llu of %llu rejected", i, (unsigned long long)k + 1,
                             (unsigned long long)st->n);
                tail++;
            }
            break;
        case REJECT:
            for (uint64_t k = 0; k < st->n; k++) {
                struct cbshm_ticket t;
                int rc = cbshm_allow(b, &t);
                if (rc != CBSHM_EREJECTED)
                    fail_msg("step %d: call %llu of %llu not rejected (%d)", i,
                             (unsigned long long)k + 1, (unsigned long long)st->n, rc);
            }
            break;
        case SETTLE:
            if (head == tail)
                fail_msg("step %d: no ticket in flight", i);
            assert_int_equal(cbshm_record(b, &queue[head++ % 16], (enum cbshm_outcome)st->n), 0);
            break;
        case TIMED: {
            struct cbshm_ticket t;
            if (cbshm_allow(b, &t) != 0)
                fail_msg("step %d: call rejected", i);
            assert_int_equal(
                cbshm_record_timed(b, &t, (enum cbshm_outcome)st->n, st->ms * 1000000u), 0);
            break;
        }
        case SUCCESSES:
        case REJECTIONS:
        case RUN: {
            uint64_t got;
            assert_int_equal(cbshm_snapshot(shm, "x", &s), 0);
            got = st->op == SUCCESSES    ? s.successes
                  : st->op == REJECTIONS ? s.rejections
                                         : s.consecutive_failures;
            if (got != st->n)
                fail_msg("step %d: %s %llu, expected %llu", i,
                         st->op == SUCCESSES    ? "successes"
                         : st->op == REJECTIONS ? "rejections"
                                                : "failure run",
                         (unsigned long long)got, (unsigned long long)st->n);
            break;
        }
        case END:
            break;
        }
    }
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}
