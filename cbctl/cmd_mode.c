/* SPDX-License-Identifier: MIT */
/*
 * cbctl open|close|disable|enable NAME...: set a breaker's mode, the first
 * three optionally --for a while. One file for the four commands: they
 * differ only in the mode they set, so each entry's run is one line into
 * set_modes.
 */
#include <stdio.h>

#include "cbctl.h"

static int set_modes(const char *command, enum cbshm_mode mode, struct cbshm *shm,
                     const struct cbctl_args *args)
{
    uint64_t for_ms = args->for_ms;
    char text[32], name[CBCTL_SAFE_MAX];
    int failed = 0, rc;

    for (int i = 0; i < args->n_names; i++) {
        rc = for_ms != 0 ? cbshm_set_mode_for(shm, args->names[i], mode, for_ms)
                         : cbshm_set_mode(shm, args->names[i], mode);
        if (rc != 0) {
            cbctl_err("%s %s: %s", command, args->names[i], cbshm_strerror(rc));
            failed = 1;
        } else if (for_ms != 0) {
            cbctl_format_ms(text, sizeof text, for_ms);
            printf("%s: mode %s for %s\n", cbctl_safe(args->names[i], name, sizeof name),
                   cbctl_mode_name(mode), text);
        } else {
            printf("%s: mode %s\n", cbctl_safe(args->names[i], name, sizeof name),
                   cbctl_mode_name(mode));
        }
    }
    return failed ? CBCTL_FAILED : CBCTL_OK;
}

/* Only a forced mode can end by itself: enable has no --for. */
static const struct cbctl_option timed[] = {
    CBCTL_DURATION("for", 0, "DURATION", for_ms,
                   "for this long (250ms, 5s, 2m, 1h), then back to normal by itself"),
    CBCTL_OPTIONS_END,
};

static int run_open(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    (void)ctl;
    return set_modes("open", CBSHM_MODE_FORCED_OPEN, shm, args);
}

static int run_close(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    (void)ctl;
    return set_modes("close", CBSHM_MODE_FORCED_CLOSED, shm, args);
}

static int run_disable(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    (void)ctl;
    return set_modes("disable", CBSHM_MODE_DISABLED, shm, args);
}

static int run_enable(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    (void)ctl;
    return set_modes("enable", CBSHM_MODE_NORMAL, shm, args);
}

const struct cbctl_cmd cbctl_cmd_open = {
    .name = "open",
    .summary = "force breakers open: reject every call",
    .options = timed,
    .attach = CBCTL_ATTACH_WRITE,
    .names = CBCTL_NAMES_SOME,
    .run = run_open,
};

const struct cbctl_cmd cbctl_cmd_close = {
    .name = "close",
    .summary = "force breakers closed: admit every call, never trip",
    .options = timed,
    .attach = CBCTL_ATTACH_WRITE,
    .names = CBCTL_NAMES_SOME,
    .run = run_close,
};

const struct cbctl_cmd cbctl_cmd_disable = {
    .name = "disable",
    .summary = "pass every call through, record nothing",
    .options = timed,
    .attach = CBCTL_ATTACH_WRITE,
    .names = CBCTL_NAMES_SOME,
    .run = run_disable,
};

const struct cbctl_cmd cbctl_cmd_enable = {
    .name = "enable",
    .summary = "back to normal: the state machine decides",
    .attach = CBCTL_ATTACH_WRITE,
    .names = CBCTL_NAMES_SOME,
    .run = run_enable,
};
