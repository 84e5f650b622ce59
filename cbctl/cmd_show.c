/* SPDX-License-Identifier: MIT */
/* cbctl show [--json] NAME: one breaker in full. */
#include <stdio.h>

#include "cbctl.h"

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct cbshm_snapshot s;
    int rc;

    (void)ctl;
    if ((rc = cbshm_snapshot(shm, args->names[0], &s)) != 0) {
        cbctl_err("show %s: %s", args->names[0], cbshm_strerror(rc));
        return CBCTL_FAILED;
    }
    if (args->json)
        return cbctl_print_json(cbctl_snapshot_json(&s));
    cbctl_print_show(&s);
    return CBCTL_OK;
}

const struct cbctl_cmd cbctl_cmd_show = {
    .name = "show",
    .summary = "show one breaker in full",
    .attach = CBCTL_ATTACH_READ,
    .names = CBCTL_NAMES_ONE,
    .json = "one JSON object",
    .run = run,
};
