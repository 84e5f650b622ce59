/* SPDX-License-Identifier: MIT */
/*
 * The smallest worker: attach, resolve a breaker once, guard calls.
 *   usage: hello SEGMENT BREAKER
 */
#include <stdio.h>

#include "cbshm.h"

static enum cbshm_outcome call_downstream(void *arg)
{
    int *status = arg;
    *status = 503; /* pretend the downstream answered 503 */
    return *status >= 500 ? CBSHM_FAILURE : CBSHM_SUCCESS;
}

int main(int argc, char **argv)
{
    struct cbshm *shm = NULL;
    struct cbshm_breaker *b = NULL;
    int rc, status = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SEGMENT BREAKER\n", argv[0]);
        return 2;
    }
    /* Without a segment the calls still run: the breaker fails open. */
    if ((rc = cbshm_open(argv[1], 0, &shm)) != 0 || (rc = cbshm_breaker_get(shm, argv[2], &b)) != 0)
        fprintf(stderr, "hello: %s (calls run unguarded)\n", cbshm_strerror(rc));
    for (int i = 0; i < 5; i++) {
        rc = cbshm_execute(b, call_downstream, &status);
        if (rc == CBSHM_EREJECTED)
            printf("call %d: rejected by the breaker, downstream not called\n", i + 1);
        else
            printf("call %d: downstream answered %d\n", i + 1, status);
    }
    cbshm_breaker_release(b);
    cbshm_close(shm);
    return 0;
}
