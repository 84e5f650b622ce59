/* SPDX-License-Identifier: MIT */
/*
 * Runs each hot path a fixed number of times so that callgrind can count
 * its instructions - a figure that, unlike time, is the same on every run.
 * tests/icount_test.sh runs this under callgrind and fails when a path
 * grows past its budget.
 *
 *   usage: icount_hotpath SCENARIO   (closed_success | two_step | open_rejection |
 *                                     closed_failure | bulkhead_success)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cbshm.h"

#define CALLS 10000

static enum cbshm_outcome ok(void *arg)
{
    (void)arg;
    return CBSHM_SUCCESS;
}

/* A callee of its own, so the compiler cannot fold this loop into another. */
static enum cbshm_outcome ok_open(void *arg)
{
    __asm__ volatile("" ::"r"(arg));
    return CBSHM_SUCCESS;
}

static enum cbshm_outcome fail(void *arg)
{
    (void)arg;
    return CBSHM_FAILURE;
}

/* The measured loops: one function per path, named for --toggle-collect. */
static __attribute__((noinline)) void icount_closed_success(struct cbshm_breaker *b)
{
    for (int i = 0; i < CALLS; i++)
        cbshm_execute(b, ok, NULL);
}

static __attribute__((noinline)) void icount_two_step(struct cbshm_breaker *b)
{
    struct cbshm_ticket t;
    for (int i = 0; i < CALLS; i++)
        if (cbshm_allow(b, &t) == 0)
            cbshm_record(b, &t, CBSHM_SUCCESS);
}

static __attribute__((noinline)) void icount_open_rejection(struct cbshm_breaker *b)
{
    for (int i = 0; i < CALLS; i++)
        cbshm_execute(b, ok_open, NULL);
}

static __attribute__((noinline)) void icount_closed_failure(struct cbshm_breaker *b)
{
    for (int i = 0; i < CALLS; i++)
        cbshm_execute(b, fail, NULL);
}

/* Closed, with room in a bulkhead of 64: a slot taken and given back per
   call. The callee's argument is b, not NULL, so that this body differs
   from icount_closed_success's and the compiler cannot merge the two. */
static __attribute__((noinline)) void icount_bulkhead_success(struct cbshm_breaker *b)
{
    for (int i = 0; i < CALLS; i++)
        cbshm_execute(b, ok, b);
}

int main(int argc, char **argv)
{
    const char *y = "capacity: 4\nbreakers:\n  - name: x\n    failure_threshold: 1000000\n"
                    "  - name: o\n    failure_threshold: 1\n    open_timeout: 24h\n"
                    "  - name: k\n    failure_threshold: 1000000\n    max_concurrent_calls: 64\n";
    struct cbshm_config *cfg;
    struct cbshm *shm;
    struct cbshm_breaker *x, *o, *k;
    char seg[64];
    int rc = 0;

    if (argc != 2)
        return 2;
    snprintf(seg, sizeof seg, "/cbshm-icount-%d", (int)getpid());
    if (cbshm_config_load_string(y, strlen(y), "icount", &cfg, NULL) != 0 ||
        cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) != 0 || cbshm_open(seg, 0, &shm) != 0 ||
        cbshm_breaker_get(shm, "x", &x) != 0 || cbshm_breaker_get(shm, "o", &o) != 0 ||
        cbshm_breaker_get(shm, "k", &k) != 0) {
        fprintf(stderr, "icount_hotpath: setup failed\n");
        cbshm_destroy(seg);
        return 1;
    }
    cbshm_execute(x, ok, NULL);   /* claim a stripe, outside the measured loop */
    cbshm_execute(o, fail, NULL); /* trip o */
    cbshm_execute(k, ok, NULL);   /* k's first slot take, outside the loop too */
    if (strcmp(argv[1], "closed_success") == 0)
        icount_closed_success(x);
    else if (strcmp(argv[1], "two_step") == 0)
        icount_two_step(x);
    else if (strcmp(argv[1], "open_rejection") == 0)
        icount_open_rejection(o);
    else if (strcmp(argv[1], "closed_failure") == 0)
        icount_closed_failure(x);
    else if (strcmp(argv[1], "bulkhead_success") == 0)
        icount_bulkhead_success(k);
    else
        rc = 2;
    printf("calls=%d\n", CALLS);
    cbshm_breaker_release(x);
    cbshm_breaker_release(o);
    cbshm_breaker_release(k);
    cbshm_close(shm);
    cbshm_config_free(cfg);
    cbshm_destroy(seg);
    return rc;
}
