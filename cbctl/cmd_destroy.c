/* cbctl destroy: remove the segment. Attached workers keep running, fail-open. */
#include <stdio.h>

#include <unistd.h>

#include "cbctl.h"

int cbctl_cmd_destroy(struct cbctl *ctl, const struct cbctl_cmd *cmd, int argc, char **argv)
{
    int rc;

    if ((rc = cbctl_parse_options(cmd, argc, argv, NULL, NULL)) >= 0)
        return rc;
    if (optind < argc)
        return cbctl_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((rc = cbshm_destroy(ctl->segment_final)) != 0) {
        cbctl_err("destroy: segment %s: %s", ctl->segment_final, cbshm_strerror(rc));
        return CBCTL_FAILED;
    }
    printf("destroyed segment %s\n", ctl->segment_final);
    return CBCTL_OK;
}
