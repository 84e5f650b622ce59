/* SPDX-License-Identifier: MIT */
/* cbctl check: validate the segment; exit 1 naming each problem. */
#include <inttypes.h>
#include <stdio.h>

#include "cbctl.h"

static void report(void *ctx, const char *message)
{
    cbctl_err("check: %s: %s", (const char *)ctx, message);
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct cbshm_info info;
    int rc;

    (void)args;
    rc = cbshm_check(shm, report, (void *)ctl->segment_final);
    cbshm_info(shm, &info);
    if (rc < 0) {
        cbctl_err("check: segment %s: %s", ctl->segment_final, cbshm_strerror(rc));
        return CBCTL_FAILED;
    }
    if (rc > 0) {
        cbctl_err("check: segment %s: %d problem%s", ctl->segment_final, rc, rc == 1 ? "" : "s");
        return CBCTL_FAILED;
    }
    fputs("segment ", stdout);
    cbctl_put_safe(stdout, ctl->segment_final);
    printf(": ok: layout %u, %u of %u breakers, %" PRIu64 " bytes, %" PRIu64
           " bytes per breaker, %" PRIu64 " lock repairs, %u worker%s\n",
           info.layout_version, info.breakers, info.capacity, info.segment_bytes,
           info.bytes_per_breaker, info.lock_repairs, info.workers, info.workers == 1 ? "" : "s");
    return CBCTL_OK;
}

const struct cbctl_cmd cbctl_cmd_check = {
    .name = "check",
    .summary = "validate the segment: header, table, index, leases",
    .attach = CBCTL_ATTACH_REPAIR,
    .names = CBCTL_NAMES_NONE,
    .run = run,
};
