/* SPDX-License-Identifier: MIT */
/*
 * Read-only views (CBSHM_READ_ONLY). An observer - a member of the
 * segment's group, a monitoring agent - maps the segment read-only, so it
 * cannot take the table lock (taking it writes the mutex). It copies what
 * it reads between two loads of the header's change_seq, which every lock
 * holder keeps odd (lock.c): equal and even, the copy overlapped no change
 * made under the lock. What changes without the lock (counters, the hot
 * path's state words) is atomic and read as a locked reader reads it. A
 * holder that died leaves change_seq odd until the next writer repairs;
 * a stopped one holds it odd: the observer waits the lock's bound, then
 * says CBSHM_ELOCK, as a writer would.
 */
#define _GNU_SOURCE
#include <time.h>

#include "internal.h"

#define OBSERVE_WAIT_NS  1000000000ull /* the lock's bound (lock.c) */
#define OBSERVE_PAUSE_NS 100000L

int cbshm__observe(struct cbshm *shm, int (*copy)(struct cbshm *shm, void *ctx), void *ctx)
{
    const _Atomic uint64_t *seq = &shm->hdr->change_seq;
    uint64_t give_up = cbshm__clock_real(CLOCK_MONOTONIC) + OBSERVE_WAIT_NS;

    for (;;) {
        uint64_t before = atomic_load_explicit(seq, memory_order_acquire);
        if ((before & 1) == 0) {
            int rc = copy(shm, ctx);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(seq, memory_order_relaxed) == before)
                return rc;
        }
        if (cbshm__clock_real(CLOCK_MONOTONIC) > give_up)
            return CBSHM_ELOCK;
        nanosleep(&(struct timespec){0, OBSERVE_PAUSE_NS}, NULL);
    }
}
