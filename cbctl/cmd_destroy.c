/* SPDX-License-Identifier: MIT */
/* cbctl destroy: remove the segment. Attached workers keep running, fail-open. */
#include <stdio.h>

#include "cbctl.h"

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    int rc;

    (void)shm; /* removing a segment needs no mapping of it, and works on a foreign one */
    (void)args;
    /* As its owner, so that the workers are told (root maps no other
       user's segment); the name is removed all the same. */
    if ((rc = cbctl_become_segment_owner("destroy", ctl->segment_final)) != CBCTL_CONTINUE)
        return rc;
    if ((rc = cbshm_destroy(ctl->segment_final)) != 0) {
        cbctl_segment_error("destroy", ctl->segment_final, rc);
        return CBCTL_FAILED;
    }
    fputs("destroyed segment ", stdout);
    cbctl_put_safe(stdout, ctl->segment_final);
    putchar('\n');
    return CBCTL_OK;
}

const struct cbctl_cmd cbctl_cmd_destroy = {
    .name = "destroy",
    .summary = "remove the segment (attached workers fail open)",
    .attach = CBCTL_ATTACH_NONE,
    .names = CBCTL_NAMES_NONE,
    .run = run,
};
