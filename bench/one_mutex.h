/* SPDX-License-Identifier: MIT */
/*
 * The baseline: the circuit breaker of the pattern write-up, placed in
 * shared memory and protected by one robust process-shared mutex, in
 * exactly its shape: lock, check, unlock, call, lock, update, unlock.
 * With a bulkhead, the same design counts calls in flight under the same
 * mutex: the first section also compares the count with the limit and
 * adds one, the second takes one off - no extra lock round trip. (Its
 * count is not crash safe: a caller killed during its call leaks one.)
 */
#ifndef CBSHM_BENCH_ONE_MUTEX_H
#define CBSHM_BENCH_ONE_MUTEX_H

#include <pthread.h>
#include <stdint.h>

#include "cbshm.h"

struct one_mutex_breaker {
    _Alignas(64) pthread_mutex_t mu;
    int state; /* 0 closed, 1 open, 2 half-open */
    uint32_t failures, threshold;
    uint64_t successes, total_failures, rejections;
    uint64_t opened_at_ns, timeout_ns;
    uint32_t in_flight, max_in_flight; /* the bulkhead: one_mutex_execute_bulk */
};

void one_mutex_init(struct one_mutex_breaker *b, uint32_t threshold, uint64_t timeout_ns,
                    uint32_t max_in_flight);

/* Returns 0 when fn ran, CBSHM_EREJECTED when the breaker refused. */
int one_mutex_execute(struct one_mutex_breaker *b, cbshm_call_fn fn, void *arg);

/* The same with a bulkhead of max_in_flight calls: CBSHM_EREJECTED also
   when that many are in flight. */
int one_mutex_execute_bulk(struct one_mutex_breaker *b, cbshm_call_fn fn, void *arg);

#endif
