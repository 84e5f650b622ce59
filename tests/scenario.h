/* SPDX-License-Identifier: MIT */
/*
 * Scenario tables: a breaker's settings and a list of steps - calls with
 * their outcomes and durations, clock moves, mode changes, a call held in
 * flight - each checked against the state, window or counts expected
 * after it. Driven by the fake clock (harness.h), so a table replays a
 * peer library's published test, or walks one boundary, without sleeping.
 */
#ifndef CBSHM_TEST_SCENARIO_H
#define CBSHM_TEST_SCENARIO_H

#include <stdint.h>

enum op {
    OK,     /* n successful calls, each taking ms */
    FAIL,   /* n failed calls, each taking ms */
    IGN,    /* n calls with an ignored outcome */
    TICK,   /* the clock moves ms */
    STATE,  /* the breaker is in state n */
    WINDOW, /* the window holds n calls (and `fails` failures, `slow` slow calls) */
    PERIOD, /* the breaker is open and its open period is ms */
    MODE,   /* cbshm_set_mode(n) */
    HOLD,   /* cbshm_allow: the ticket is held, its call in flight */
    RECORD, /* the held ticket's call ends with outcome n */
    COUNTS, /* the breaker has recorded n failures in all */
    END,
    /* For the peer scenarios (test_peers.c): */
    ADMIT,      /* n calls are admitted (cbshm_allow), their tickets queued in flight */
    REJECT,     /* n calls are rejected (cbshm_allow says CBSHM_EREJECTED) */
    SETTLE,     /* the oldest queued ticket's call ends with outcome n */
    TIMED,      /* one call, admitted, ends with outcome n after ms (cbshm_record_timed):
                   the clock does not move, as a peer that is handed the duration */
    SUCCESSES,  /* the breaker has recorded n successes in all */
    REJECTIONS, /* the breaker has rejected n calls in all */
    RUN,        /* the failure run (consecutive_failures) is n */
};

struct step {
    enum op op;
    uint64_t n;
    uint64_t ms;
    uint64_t fails, slow;
};

struct scenario {
    const char *yaml; /* settings of breaker "x" */
    struct step steps[40];
};

#define CLOSED CBSHM_STATE_CLOSED
#define OPEN   CBSHM_STATE_OPEN
#define HALF   CBSHM_STATE_HALF_OPEN

/* Runs the scenario on a fresh segment with breaker "x"; fails the test
   at the first step whose check does not hold, naming it. */
void run(const struct scenario *sc);

/* Milliseconds each call of an OK, FAIL or IGN step takes (its ms). */
extern uint64_t call_ms;

/* A call of call_ms that ends with *(enum cbshm_outcome *)arg. */
enum cbshm_outcome timed(void *arg);

#endif
