/*
 * Declarations shared by cbctl's command files: the command table entry,
 * exit codes, and helpers for messages and output.
 */
#ifndef CBCTL_H
#define CBCTL_H

#include <jansson.h>

#include "cbshm.h"

/* Exit codes, documented in `cbctl --help`. */
#define CBCTL_OK     0
#define CBCTL_FAILED 1
#define CBCTL_USAGE  2
#define CBCTL_CONFIG 3

struct cbctl {
    const char *segment;       /* --segment, or NULL */
    const char *segment_final; /* what a command that needs one uses */
};

struct cbctl_cmd {
    const char *name;
    int (*run)(struct cbctl *ctl, const struct cbctl_cmd *cmd, int argc, char **argv);
    const char *usage;   /* after "cbctl [global options] <name> " */
    const char *summary; /* one line */
    const char *help;    /* the command's options, one per line */
};

/* main.c */
__attribute__((format(printf, 1, 2))) void cbctl_err(const char *fmt, ...);
int cbctl_usage_error(const struct cbctl_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cbctl_command_help(const struct cbctl_cmd *cmd);
/*
 * Parses the options the simple commands share: --help, and --json and
 * --all where the command accepts them (json/all NULL when it does not).
 * Returns -1 to go on with argv[optind..], or an exit code to return.
 */
int cbctl_parse_options(const struct cbctl_cmd *cmd, int argc, char **argv, int *json, int *all);
/* The end of every getopt switch: --help (exit code 0 after printing the
   command's help), or a usage error naming the option. */
int cbctl_other_option(const struct cbctl_cmd *cmd, int c, char **argv);
/* An option's number in lo..hi into *out (-1), or a usage error naming
   the option, the range and what was given. */
int cbctl_parse_number(const struct cbctl_cmd *cmd, const char *option, const char *arg, long lo,
                       long hi, long *out);
int cbctl_attach(struct cbctl *ctl, const char *what, struct cbshm **out);
/* "cbctl: WHAT: segment NAME: why", saying which versions met on a skew. */
void cbctl_segment_error(const char *what, const char *segment, int rc);

/* output.c */
const char *cbctl_state_name(enum cbshm_state s);
const char *cbctl_mode_name(enum cbshm_mode m);
json_t *cbctl_snapshot_json(const struct cbshm_snapshot *s);
/*
 * One breaker as one line of JSON, for streaming thousands of them: one
 * object is built for the first and its values rewritten for the next,
 * dumped into one reused buffer. Zero-initialise; release with _free.
 */
struct cbctl_json_row {
    json_t *obj;
    json_t **values; /* the object's value nodes, in field order */
    size_t n;
    char *buf;
    size_t cap;
};
const char *cbctl_json_row(struct cbctl_json_row *w, const struct cbshm_snapshot *s);
void cbctl_json_row_free(struct cbctl_json_row *w);
int cbctl_print_json(json_t *doc);
void cbctl_print_show(const struct cbshm_snapshot *s);
void cbctl_format_ms(char *buf, size_t size, uint64_t ms);

/* Commands, one file each. */
int cbctl_cmd_apply(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_list(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_show(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_reset(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_mode(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_check(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_destroy(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_metrics(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_events(struct cbctl *, const struct cbctl_cmd *, int, char **);
int cbctl_cmd_watch(struct cbctl *, const struct cbctl_cmd *, int, char **);

#endif
