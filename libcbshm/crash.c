/* SPDX-License-Identifier: MIT */
/*
 * Crash points, compiled into test builds only (CBSHM_CRASH_POINTS). A
 * test sets CBSHM_CRASH_AT=<point> in a child; the child SIGKILLs itself
 * when it reaches that point, leaving behind exactly the half-done change
 * that a real crash there would, for the survivors to repair. With
 * CBSHM_CRASH_SIGNAL=STOP it stops there instead, as a process frozen by
 * a debugger or SIGSTOP would.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef CBSHM_CRASH_POINTS
void cbshm__crash_point(const char *name)
{
    const char *at = getenv("CBSHM_CRASH_AT");

    const char *sig = getenv("CBSHM_CRASH_SIGNAL");

    if (at != NULL && strcmp(at, name) == 0)
        raise(sig != NULL && strcmp(sig, "STOP") == 0 ? SIGSTOP : SIGKILL);
}
#endif
