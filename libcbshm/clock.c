/* SPDX-License-Identifier: MIT */
/*
 * The one clock seam. The library reads CLOCK_MONOTONIC_COARSE: the same
 * clock as CLOCK_MONOTONIC at tick resolution (1-4 ms), a few nanoseconds
 * per read instead of tens. Breaker deadlines are seconds long, so a tick
 * of error does not matter, and the closed success path reads no clock.
 */
#include "internal.h"

cbshm_clock_fn cbshm__clock_fn;
void *cbshm__clock_ctx;

void cbshm_clock_set(cbshm_clock_fn fn, void *ctx)
{
    cbshm__clock_ctx = ctx;
    cbshm__clock_fn = fn;
}

uint64_t cbshm_now_ns(void)
{
    return cbshm__now();
}

uint64_t cbshm__clock_real(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
