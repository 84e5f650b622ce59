/*
 * The one clock seam. The library reads CLOCK_MONOTONIC_COARSE: the same
 * clock as CLOCK_MONOTONIC at tick resolution (1-4 ms), a few nanoseconds
 * per read instead of tens. Breaker deadlines are seconds long, so a tick
 * of error does not matter, and the closed success path reads no clock.
 */
#include <time.h>

#include "internal.h"

static cbshm_clock_fn clock_fn;
static void *clock_ctx;

void cbshm_clock_set(cbshm_clock_fn fn, void *ctx)
{
    clock_ctx = ctx;
    clock_fn = fn;
}

uint64_t cbshm__now(void)
{
    struct timespec ts;

    if (clock_fn != NULL)
        return clock_fn(clock_ctx);
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t cbshm_now_ns(void)
{
    return cbshm__now();
}
