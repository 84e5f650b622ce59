/*
 * cbctl open|close|disable|enable NAME...: set a breaker's mode. One file
 * for the four commands: they differ only in the mode they set.
 */
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cbctl.h"

int cbctl_cmd_mode(struct cbctl *ctl, const struct cbctl_cmd *cmd, int argc, char **argv)
{
    enum cbshm_mode mode;
    struct cbshm *shm;
    int failed = 0, rc;

    if (strcmp(cmd->name, "open") == 0)
        mode = CBSHM_MODE_FORCED_OPEN;
    else if (strcmp(cmd->name, "close") == 0)
        mode = CBSHM_MODE_FORCED_CLOSED;
    else if (strcmp(cmd->name, "disable") == 0)
        mode = CBSHM_MODE_DISABLED;
    else
        mode = CBSHM_MODE_NORMAL;
    if ((rc = cbctl_parse_options(cmd, argc, argv, NULL, NULL)) >= 0)
        return rc;
    if (optind >= argc)
        return cbctl_usage_error(cmd, "expected at least one breaker name");
    if (cbctl_attach(ctl, cmd->name, &shm) != 0)
        return CBCTL_FAILED;
    for (int i = optind; i < argc; i++) {
        if ((rc = cbshm_set_mode(shm, argv[i], mode)) != 0) {
            cbctl_err("%s %s: %s", cmd->name, argv[i], cbshm_strerror(rc));
            failed = 1;
        } else {
            printf("%s: mode %s\n", argv[i], cbctl_mode_name(mode));
        }
    }
    cbshm_close(shm);
    return failed ? CBCTL_FAILED : CBCTL_OK;
}
