/* SPDX-License-Identifier: MIT */
/*
 * The C worker of the cross-language test (test_across_languages.py):
 *
 *     worker SEGMENT BREAKER CALLS success|failure
 *
 * says "ready", waits for a line on stdin (the test's "go"), makes CALLS
 * calls through cbshm_execute() that each succeed or fail, and prints
 * "ok=N failed=N rejected=N". Exits 2 when the breaker runs
 * unguarded: a cross-language test must never pass on fail-open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbshm.h"

static enum cbshm_outcome succeed(void *arg)
{
    (void)arg;
    return CBSHM_SUCCESS;
}

static enum cbshm_outcome fail(void *arg)
{
    (void)arg;
    return CBSHM_FAILURE;
}

/* Says "ready" and waits for the test's "go": every worker's calls start
   together, so that they run at once rather than one after another. */
static int ready(void)
{
    char line[16];

    printf("ready\n");
    fflush(stdout);
    return fgets(line, sizeof line, stdin) != NULL;
}

int main(int argc, char **argv)
{
    struct cbshm *shm;
    struct cbshm_breaker *b;
    unsigned long calls, ok = 0, failed = 0, rejected = 0;
    char *end;
    cbshm_call_fn fn;
    int rc;

    if (argc != 5 || (strcmp(argv[4], "success") != 0 && strcmp(argv[4], "failure") != 0)) {
        fprintf(stderr, "usage: worker SEGMENT BREAKER CALLS success|failure\n");
        return 2;
    }
    calls = strtoul(argv[3], &end, 10);
    if (*argv[3] == '\0' || *end != '\0') {
        fprintf(stderr, "worker: CALLS '%s' is not a number\n", argv[3]);
        return 2;
    }
    fn = strcmp(argv[4], "success") == 0 ? succeed : fail;
    if ((rc = cbshm_open(argv[1], 0, &shm)) != 0) {
        fprintf(stderr, "worker: segment %s: %s\n", argv[1], cbshm_strerror(rc));
        return 2;
    }
    if ((rc = cbshm_breaker_get(shm, argv[2], &b)) != 0) {
        fprintf(stderr, "worker: breaker %s: %s\n", argv[2], cbshm_strerror(rc));
        return 2;
    }
    if (!ready())
        return 2;
    for (unsigned long i = 0; i < calls; i++) {
        rc = cbshm_execute(b, fn, NULL);
        if (rc == CBSHM_EREJECTED)
            rejected++;
        else if (rc != 0 || cbshm_breaker_error(b) != 0) {
            fprintf(stderr, "worker: breaker %s unguarded: %s\n", argv[2],
                    cbshm_strerror(rc != 0 ? rc : cbshm_breaker_error(b)));
            return 2;
        } else if (fn == succeed)
            ok++;
        else
            failed++;
    }
    printf("ok=%lu failed=%lu rejected=%lu\n", ok, failed, rejected);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    return 0;
}
