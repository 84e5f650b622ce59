/* cbctl show [--json] NAME: one breaker in full. */
#include <stdio.h>

#include <unistd.h>

#include "cbctl.h"

int cbctl_cmd_show(struct cbctl *ctl, const struct cbctl_cmd *cmd, int argc, char **argv)
{
    struct cbshm_snapshot s;
    struct cbshm *shm;
    int json = 0, rc;

    if ((rc = cbctl_parse_options(cmd, argc, argv, &json, NULL)) >= 0)
        return rc;
    if (argc - optind != 1)
        return cbctl_usage_error(cmd, "expected exactly one breaker name");
    if (cbctl_attach(ctl, "show", &shm) != 0)
        return CBCTL_FAILED;
    rc = cbshm_snapshot(shm, argv[optind], &s);
    cbshm_close(shm);
    if (rc != 0) {
        cbctl_err("show %s: %s", argv[optind], cbshm_strerror(rc));
        return CBCTL_FAILED;
    }
    if (json)
        return cbctl_print_json(cbctl_snapshot_json(&s));
    cbctl_print_show(&s);
    return CBCTL_OK;
}
