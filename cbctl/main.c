/* SPDX-License-Identifier: MIT */
/*
 * cbctl: the operator's tool. Global options, the command table, dispatch
 * and the set-up each command's entry asks for.
 * Commands match exactly - a destructive one is never reached by an
 * abbreviation. Results go to stdout, messages to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbctl.h"

/* In the order `cbctl --help` lists them. */
static const struct cbctl_cmd *const commands[] = {
    &cbctl_cmd_apply, &cbctl_cmd_list,    &cbctl_cmd_show,    &cbctl_cmd_reset, &cbctl_cmd_open,
    &cbctl_cmd_close, &cbctl_cmd_disable, &cbctl_cmd_enable,  &cbctl_cmd_check, &cbctl_cmd_metrics,
    &cbctl_cmd_watch, &cbctl_cmd_events,  &cbctl_cmd_destroy, &cbctl_cmd_agent, &cbctl_cmd_fleet,
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

void cbctl_verr(const char *what, const char *fmt, va_list ap)
{
    char small[512], *text = small;
    va_list again;
    int n;

    va_copy(again, ap);
    n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small && (text = malloc((size_t)n + 1)) != NULL)
        vsnprintf(text, (size_t)n + 1, fmt, again);
    va_end(again);
    fputs("cbctl: ", stderr);
    if (what != NULL) {
        fputs(what, stderr);
        fputs(": ", stderr);
    }
    cbctl_put_safe(stderr, text != NULL ? text : small); /* cut short only without memory */
    fputc('\n', stderr);
    if (text != small)
        free(text);
}

void cbctl_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cbctl_verr(NULL, fmt, ap);
    va_end(ap);
}

void cbctl_segment_error(const char *what, const char *segment, int rc)
{
    struct cbshm_peek p;

    if ((rc == CBSHM_EVERSION || rc == CBSHM_EABI) && cbshm_peek(segment, &p) == 0) {
        if (rc == CBSHM_EVERSION)
            cbctl_err("%s: segment %s: layout version %u; this cbctl (libcbshm %s) reads layout "
                      "version %u: use the cbctl that matches the workers, or destroy and apply",
                      what, segment, p.layout_version, cbshm_version(), p.my_layout_version);
        else
            cbctl_err("%s: segment %s: ABI fingerprint %016llx; this cbctl (libcbshm %s) has "
                      "%016llx: the segment was made by a build for another architecture or "
                      "C library",
                      what, segment, (unsigned long long)p.abi_fingerprint, cbshm_version(),
                      (unsigned long long)p.my_abi_fingerprint);
        return;
    }
    if (rc == CBSHM_EBADNAME) {
        cbctl_err("%s: invalid segment name '%s': a segment name is '/' then 1 to %d of "
                  "A-Z a-z 0-9 . _ -, and not /. or /..",
                  what, segment, CBSHM_SEGMENT_NAME_MAX - 1);
        return;
    }
    if ((rc == CBSHM_EPERM || rc == -EACCES) && cbshm_peek(segment, &p) == 0) {
        char who[64];
        if (p.file_mode & 02)
            cbctl_err("%s: segment %s: writable by every user (mode %04o): refused", what, segment,
                      p.file_mode);
        else if (p.owner_uid != (unsigned)geteuid())
            cbctl_err("%s: segment %s belongs to %s: only its owner changes it (members of "
                      "its group may list, show, metrics, events, watch and check)",
                      what, segment, cbctl_user_name(p.owner_uid, who, sizeof who));
        else
            cbctl_err("%s: segment %s: %s (mode %04o)", what, segment, cbshm_strerror(rc),
                      p.file_mode);
        return;
    }
    cbctl_err("%s: segment %s: %s", what, segment, cbshm_strerror(rc));
}

/*
 * A segment name without its leading '/' is the likeliest slip: a usage
 * error, with the fix. The words and the rule are the one validator's
 * (cbshm_config_check() judges a configuration's `segment` the same way).
 */
static int segment_slip(const char *what, const char *segment)
{
    struct cbshm_config cfg = {.capacity = 1, .mode = 0600};
    struct cbshm_diag diag;
    size_t len = strlen(segment);

    if (segment[0] == '/' || len >= sizeof cfg.segment)
        return CBCTL_CONTINUE; /* too long to be right with a '/' either */
    memcpy(cfg.segment, segment, len + 1);
    if (cbshm_config_check(&cfg, &diag) != CBSHM_ECONFIG)
        return CBCTL_CONTINUE;
    cbctl_err("%s: %s", what, diag.message);
    return CBCTL_USAGE;
}

/*
 * The set-up every command shares, done from its entry: options and
 * operands, then the segment where the entry asks for it, then the command.
 */
static int run_command(struct cbctl *ctl, const struct cbctl_cmd *cmd, int argc, char **argv)
{
    struct cbctl_args args;
    struct cbshm *shm = NULL;
    int rc;

    if ((rc = cbctl_args_parse(cmd, argc, argv, &args)) != CBCTL_CONTINUE)
        return rc;
    /* --segment after the command counts as before it; the later one wins. */
    if (args.segment != NULL) {
        ctl->segment = args.segment;
        ctl->segment_final = cbshm_config_segment(NULL, ctl->segment);
    }
    /* apply without --segment takes the YAML's first, and the loader judges that. */
    if ((ctl->segment != NULL || cmd != &cbctl_cmd_apply) &&
        (rc = segment_slip(cmd->name, ctl->segment_final)) != CBCTL_CONTINUE)
        return rc;
    /* As root, as the segment's owner; a command that only reads maps it
       read-only, so it cannot scribble on it and needs only read access
       (a member of its group); check repairs where it may. */
    if (cmd->attach != CBCTL_ATTACH_NONE) {
        if ((rc = cbctl_become_segment_owner(cmd->name, ctl->segment_final)) != CBCTL_CONTINUE)
            return rc;
        rc = cbshm_open(ctl->segment_final, cmd->attach == CBCTL_ATTACH_READ ? CBSHM_READ_ONLY : 0,
                        &shm);
        if (cmd->attach == CBCTL_ATTACH_REPAIR && (rc == CBSHM_EPERM || rc == -EACCES))
            rc = cbshm_open(ctl->segment_final, CBSHM_READ_ONLY, &shm);
        if (rc != 0) {
            cbctl_segment_error(cmd->name, ctl->segment_final, rc);
            return CBCTL_FAILED;
        }
    }
    rc = cmd->run(ctl, shm, &args);
    cbshm_close(shm);
    /* Output that did not reach its reader is a failure (a full disk under
       `cbctl events --json > f` must not look like success). */
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CBCTL_OK) {
        cbctl_err("%s: cannot write the output: %s", cmd->name, strerror(errno ? errno : EIO));
        rc = CBCTL_FAILED;
    }
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cbctl [global options] <command> [options] [name...]\n\n"
               "Inspect and steer the circuit breakers that worker processes share\n"
               "through a libcbshm segment.\n\n"
               "global options:\n");
    cbctl_print_option(f, &cbctl_segment_option, 19);
    fprintf(f, "  -h, --help          this help; `cbctl <command> --help` for a command\n"
               "  -V, --version       print the version\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\nexit status:\n"
               "  0  success\n"
               "  1  the operation failed (no such breaker, bad segment, check found problems)\n"
               "  2  usage error\n"
               "  3  configuration rejected (FILE:LINE:COL: message on stderr)\n");
}

int main(int argc, char **argv)
{
    const struct cbctl_option *segment = &cbctl_segment_option;
    const struct option opts[] = {
        {segment->name, required_argument, NULL, segment->letter},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    /* "+": the options stop at the command, whose own come after it. */
    const char shortopts[] = {'+', (char)segment->letter, ':', 'h', 'V', '\0'};
    struct cbctl ctl = {NULL, NULL};
    char refused[64];
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        if (c == segment->letter) {
            /* Empty would silently mean "not given": say so instead. */
            if (optarg[0] == '\0') {
                cbctl_err("--segment wants a segment name such as /cbshm, got ''");
                usage(stderr);
                return CBCTL_USAGE;
            }
            ctl.segment = optarg;
            continue;
        }
        switch (c) {
        case 'h':
            usage(stdout);
            return CBCTL_OK;
        case 'V':
            printf("cbctl %s\n", cbshm_version());
            return CBCTL_OK;
        default:
            cbctl_err("unknown or incomplete option '%s'",
                      cbctl_refused_option(argv, refused, sizeof refused));
            usage(stderr);
            return CBCTL_USAGE;
        }
    }
    if (optind >= argc) {
        cbctl_err("no command given");
        usage(stderr);
        return CBCTL_USAGE;
    }
    ctl.segment_final = cbshm_config_segment(NULL, ctl.segment);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[optind], commands[i]->name) == 0)
            return run_command(&ctl, commands[i], argc - optind, argv + optind);
    }
    cbctl_err("unknown command '%s'", argv[optind]);
    usage(stderr);
    return CBCTL_USAGE;
}
