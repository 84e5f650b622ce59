/*
 * cbctl: the operator's tool. Global options, the command table, dispatch.
 * Commands match exactly - a destructive one is never reached by an
 * abbreviation. Results go to stdout, messages to stderr.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbctl.h"

static const struct cbctl_cmd commands[] = {
    {"apply", cbctl_cmd_apply, "-f FILE [--dry-run]",
     "create the segment from YAML, or reconcile it in place",
     "  -f, --file FILE   the YAML configuration\n"
     "  -n, --dry-run     say what would change, change nothing\n"},
    {"list", cbctl_cmd_list, "[--json]", "list every breaker",
     "  --json            one JSON array of breaker objects\n"},
    {"show", cbctl_cmd_show, "[--json] NAME", "show one breaker in full",
     "  --json            one JSON object\n"},
    {"reset", cbctl_cmd_reset, "NAME...|--all",
     "close breakers and clear their counters (the mode is kept)",
     "  -a, --all         every breaker in the segment\n"},
    {"open", cbctl_cmd_mode, "NAME...", "force breakers open: reject every call", ""},
    {"close", cbctl_cmd_mode, "NAME...", "force breakers closed: admit every call, never trip", ""},
    {"disable", cbctl_cmd_mode, "NAME...", "pass every call through, record nothing", ""},
    {"enable", cbctl_cmd_mode, "NAME...", "back to normal: the state machine decides", ""},
    {"check", cbctl_cmd_check, "", "validate the segment: header, table, index, leases", ""},
    {"metrics", cbctl_cmd_metrics, "", "every breaker in the Prometheus text format", ""},
    {"watch", cbctl_cmd_watch, "[--interval MS] [--count N]", "a live table of every breaker",
     "  -i, --interval MS redraw every MS milliseconds (default 1000)\n"
     "  -n, --count N     stop after N frames (default: until q, Ctrl-C or SIGTERM)\n"},
    {"events", cbctl_cmd_events, "[--follow] [--json] [--interval MS]",
     "transitions, mode changes and resets, with their causes",
     "  -f, --follow      keep printing new events until interrupted\n"
     "  -j, --json        one JSON array; with --follow, one JSON object a line\n"
     "  -i, --interval MS how often --follow looks for new events (default 200)\n"},
    {"destroy", cbctl_cmd_destroy, "", "remove the segment (attached workers fail open)", ""},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

void cbctl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("cbctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cbctl_command_help(const struct cbctl_cmd *cmd)
{
    printf("usage: cbctl [global options] %s %s\n\n%s.\n", cmd->name, cmd->usage, cmd->summary);
    printf("\noptions:\n%s  -h, --help        this help\n", cmd->help);
}

int cbctl_usage_error(const struct cbctl_cmd *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "cbctl: %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: cbctl [global options] %s %s\n", cmd->name, cmd->usage);
    return CBCTL_USAGE;
}

int cbctl_other_option(const struct cbctl_cmd *cmd, int c, char **argv)
{
    if (c == 'h') {
        cbctl_command_help(cmd);
        return CBCTL_OK;
    }
    return cbctl_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
}

int cbctl_parse_number(const struct cbctl_cmd *cmd, const char *option, const char *arg, long lo,
                       long hi, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (end == arg || *end != '\0' || v < lo || v > hi)
        return cbctl_usage_error(cmd, "%s wants a number from %ld to %ld, got '%s'", option, lo, hi,
                                 arg);
    *out = v;
    return -1;
}

int cbctl_parse_options(const struct cbctl_cmd *cmd, int argc, char **argv, int *json, int *all)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
        if (c == 'j' && json != NULL)
            *json = 1;
        else if (c == 'a' && all != NULL)
            *all = 1;
        else
            return cbctl_other_option(cmd, c, argv);
    }
    return -1;
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
    cbctl_err("%s: segment %s: %s", what, segment, cbshm_strerror(rc));
}

int cbctl_attach(struct cbctl *ctl, const char *what, struct cbshm **out)
{
    int rc = cbshm_open(ctl->segment_final, 0, out);

    if (rc != 0)
        cbctl_segment_error(what, ctl->segment_final, rc);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cbctl [global options] <command> [options] [name...]\n\n"
               "Inspect and steer the circuit breakers that worker processes share\n"
               "through a libcbshm segment.\n\n"
               "global options:\n"
               "  -s, --segment NAME  segment to use (default: $CBSHM_SEGMENT, else the\n"
               "                      YAML's `segment` for apply, else /cbshm)\n"
               "  -h, --help          this help; `cbctl <command> --help` for a command\n"
               "  -V, --version       print the version\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit status:\n"
               "  0  success\n"
               "  1  the operation failed (no such breaker, bad segment, check found problems)\n"
               "  2  usage error\n"
               "  3  configuration rejected (FILE:LINE:COL: message on stderr)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"segment", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cbctl ctl = {NULL, NULL};
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+s:hV", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            ctl.segment = optarg;
            break;
        case 'h':
            usage(stdout);
            return CBCTL_OK;
        case 'V':
            printf("cbctl %s\n", cbshm_version());
            return CBCTL_OK;
        default:
            cbctl_err("unknown or incomplete option '%s'", argv[optind - 1]);
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
        if (strcmp(argv[optind], commands[i].name) == 0) {
            char **sub = argv + optind;
            int n = argc - optind;
            optind = 0; /* fresh getopt state for the command */
            return commands[i].run(&ctl, &commands[i], n, sub);
        }
    }
    cbctl_err("unknown command '%s'", argv[optind]);
    usage(stderr);
    return CBCTL_USAGE;
}
