/* cbctl check: validate the segment; exit 1 naming each problem. */
#include <inttypes.h>
#include <stdio.h>

#include <unistd.h>

#include "cbctl.h"

static void report(void *ctx, const char *message)
{
    cbctl_err("check: %s: %s", (const char *)ctx, message);
}

int cbctl_cmd_check(struct cbctl *ctl, const struct cbctl_cmd *cmd, int argc, char **argv)
{
    struct cbshm_info info;
    struct cbshm *shm;
    int rc;

    if ((rc = cbctl_parse_options(cmd, argc, argv, NULL, NULL)) >= 0)
        return rc;
    if (optind < argc)
        return cbctl_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((rc = cbshm_open(ctl->segment_final, 0, &shm)) != 0) {
        cbctl_segment_error("check", ctl->segment_final, rc);
        return CBCTL_FAILED;
    }
    rc = cbshm_check(shm, report, (void *)ctl->segment_final);
    cbshm_info(shm, &info);
    cbshm_close(shm);
    if (rc < 0) {
        cbctl_err("check: segment %s: %s", ctl->segment_final, cbshm_strerror(rc));
        return CBCTL_FAILED;
    }
    if (rc > 0) {
        cbctl_err("check: segment %s: %d problem%s", ctl->segment_final, rc, rc == 1 ? "" : "s");
        return CBCTL_FAILED;
    }
    printf("segment %s: ok: layout %u, %u of %u breakers, %" PRIu64 " bytes, %" PRIu64
           " bytes per breaker, %" PRIu64 " lock repairs\n",
           ctl->segment_final, info.layout_version, info.breakers, info.capacity,
           info.segment_bytes, info.bytes_per_breaker, info.lock_repairs);
    return CBCTL_OK;
}
