/* SPDX-License-Identifier: MIT */
/*
 * The one-mutex baseline (see one_mutex.h). It reads the clock only where
 * the write-up does - when open, to see whether the timeout passed - so
 * the comparison charges it for nothing libcbshm avoids by design except
 * the mutex itself.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "one_mutex.h"

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void one_mutex_init(struct one_mutex_breaker *b, uint32_t threshold, uint64_t timeout_ns,
                    uint32_t max_in_flight)
{
    pthread_mutexattr_t a;

    memset(b, 0, sizeof *b);
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&b->mu, &a);
    pthread_mutexattr_destroy(&a);
    b->threshold = threshold;
    b->timeout_ns = timeout_ns;
    b->max_in_flight = max_in_flight;
}

static void lock(struct one_mutex_breaker *b)
{
    if (pthread_mutex_lock(&b->mu) == EOWNERDEAD)
        pthread_mutex_consistent(&b->mu);
}

/* One body for both; `bulk` is a constant in each caller, so the plain
   design compiles to exactly its shape, with no bulkhead test. */
static inline __attribute__((always_inline)) int execute(struct one_mutex_breaker *b,
                                                         cbshm_call_fn fn, void *arg, int bulk)
{
    enum cbshm_outcome o;

    lock(b);
    if (b->state == 1) {
        if (now_ns() - b->opened_at_ns < b->timeout_ns) {
            b->rejections++;
            pthread_mutex_unlock(&b->mu);
            return CBSHM_EREJECTED;
        }
        b->state = 2;
    }
    if (bulk) {
        if (b->in_flight >= b->max_in_flight) {
            b->rejections++;
            pthread_mutex_unlock(&b->mu);
            return CBSHM_EREJECTED;
        }
        b->in_flight++;
    }
    pthread_mutex_unlock(&b->mu);

    o = fn(arg);

    lock(b);
    if (bulk)
        b->in_flight--;
    if (o == CBSHM_SUCCESS) {
        b->successes++;
        b->failures = 0;
        b->state = 0;
    } else if (o == CBSHM_FAILURE) {
        b->total_failures++;
        if (++b->failures >= b->threshold || b->state == 2) {
            b->state = 1;
            b->opened_at_ns = now_ns();
        }
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

int one_mutex_execute(struct one_mutex_breaker *b, cbshm_call_fn fn, void *arg)
{
    return execute(b, fn, arg, 0);
}

int one_mutex_execute_bulk(struct one_mutex_breaker *b, cbshm_call_fn fn, void *arg)
{
    return execute(b, fn, arg, 1);
}
