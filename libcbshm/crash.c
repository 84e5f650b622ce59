/*
 * Crash points, compiled into test builds only (CBSHM_CRASH_POINTS). A
 * test sets CBSHM_CRASH_AT=<point> in a child; the child SIGKILLs itself
 * when it reaches that point, leaving behind exactly the half-done change
 * that a real crash there would, for the survivors to repair.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef CBSHM_CRASH_POINTS
void cbshm__crash_point(const char *name)
{
    const char *at = getenv("CBSHM_CRASH_AT");

    if (at != NULL && strcmp(at, name) == 0)
        raise(SIGKILL);
}
#endif
