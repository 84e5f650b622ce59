/* SPDX-License-Identifier: MIT */
/*
 * Declarations shared by cbctl's command files: the command entry each
 * cmd_<verb>.c defines, the values main.c parses for it, exit codes, and
 * helpers for messages and output.
 */
#ifndef CBCTL_H
#define CBCTL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cbshm.h"

/* Exit codes, documented in `cbctl --help`. */
#define CBCTL_OK     0
#define CBCTL_FAILED 1
#define CBCTL_USAGE  2
#define CBCTL_CONFIG 3
/* Not an exit code: "carry on", from a step that could also end the run. */
#define CBCTL_CONTINUE (-1)

struct cbctl {
    const char *segment;       /* --segment, or NULL */
    const char *segment_final; /* what a command that needs one uses */
};

/*
 * What cbctl parsed for a command (options.c): every option any command has lands in
 * one field here (each option row names its field), then the operands.
 * Zero, NULL or the row's default where an option was not given.
 */
struct cbctl_args {
    int json;            /* --json */
    int all;             /* --all */
    int dry_run;         /* apply --dry-run */
    int follow;          /* events --follow */
    const char *file;    /* apply --file; agent and fleet --config */
    uint64_t for_ms;     /* open, close, disable --for DURATION; 0: not given */
    long interval_ms;    /* watch, events --interval */
    long count;          /* watch --count */
    const char *segment; /* --segment after the command, or NULL */
    char **names;        /* the operands: breaker names */
    int n_names;
    const char *output;  /* metrics --output */
    const char *hosts;   /* fleet --hosts GLOB */
    uint64_t timeout_ms; /* fleet --timeout DURATION; 0: not given */
};

/* How an option row stores what it was given. */
enum cbctl_option_kind {
    CBCTL_OPTION_SWITCH,   /* no argument: sets an int to 1 */
    CBCTL_OPTION_STRING,   /* a const char * */
    CBCTL_OPTION_NUMBER,   /* a long from lo to hi, else a usage error */
    CBCTL_OPTION_DURATION, /* "250ms", "5s", "2m", "1h" into a uint64_t of ms */
    CBCTL_OPTION_HELP,     /* --help, which every command has */
};

/* One option: parsed, shown in the synopsis and listed in --help from this row. */
struct cbctl_option {
    const char *name; /* long name, without "--"; NULL ends a table */
    int letter;       /* short option, or 0 */
    const char *arg;  /* the argument's name in help ("MS"), or NULL for a switch */
    const char *help; /* one line for --help */
    enum cbctl_option_kind kind;
    size_t value;         /* offsetof(struct cbctl_args, field) */
    long lo, hi, initial; /* a number's range and its value when not given */
    int required;         /* a usage error when not given */
};

/* Option rows, as in git's OPT_BOOL(): the field is a struct cbctl_args member. */
#define CBCTL_SWITCH(name_, letter_, field, help_)                                    \
    {                                                                                 \
        .name = name_, .letter = letter_, .help = help_, .kind = CBCTL_OPTION_SWITCH, \
        .value = offsetof(struct cbctl_args, field)                                   \
    }
#define CBCTL_STRING(name_, letter_, arg_, field, required_, help_)                                \
    {                                                                                              \
        .name = name_, .letter = letter_, .arg = arg_, .help = help_, .kind = CBCTL_OPTION_STRING, \
        .value = offsetof(struct cbctl_args, field), .required = required_                         \
    }
#define CBCTL_NUMBER(name_, letter_, arg_, field, lo_, hi_, initial_, help_)                       \
    {                                                                                              \
        .name = name_, .letter = letter_, .arg = arg_, .help = help_, .kind = CBCTL_OPTION_NUMBER, \
        .value = offsetof(struct cbctl_args, field), .lo = lo_, .hi = hi_, .initial = initial_     \
    }
#define CBCTL_DURATION(name_, letter_, arg_, field, help_)                         \
    {                                                                              \
        .name = name_, .letter = letter_, .arg = arg_, .help = help_,              \
        .kind = CBCTL_OPTION_DURATION, .value = offsetof(struct cbctl_args, field) \
    }
#define CBCTL_OPTIONS_END \
    {                     \
        .name = NULL      \
    }

/*
 * Whether cbctl attaches to the segment before the command runs, and how:
 * the commands that only read map it read-only (CBSHM_READ_ONLY), so they
 * cannot scribble on it and work for any member of its group.
 */
enum cbctl_attach {
    CBCTL_ATTACH_NONE,  /* the command deals with the segment itself */
    CBCTL_ATTACH_READ,  /* reads breakers, through a read-only view */
    CBCTL_ATTACH_WRITE, /* changes breakers */
    /* Reads; read-write where it may (the owner), since taking the lock
       repairs what a dead holder left, read-only for anyone else. */
    CBCTL_ATTACH_REPAIR,
};

/* The breaker names a command takes as operands. */
enum cbctl_names {
    CBCTL_NAMES_NONE,   /* no operands */
    CBCTL_NAMES_ONE,    /* exactly one NAME */
    CBCTL_NAMES_SOME,   /* NAME..., at least one */
    CBCTL_NAMES_OR_ALL, /* NAME... or --all (added for it), not both */
    CBCTL_NAMES_VERB,   /* one of the command's verbs, then NAME where that verb takes one */
};

/* A verb of a command that has them (fleet list, fleet open NAME): the
   usage line, --help's "verbs:" block and the operand check come from these. */
struct cbctl_verb {
    const char *name; /* NULL ends a table */
    int takes_name;   /* 1: exactly one NAME after it; 0: nothing */
    const char *summary;
};

/*
 * A command, defined in its cmd_<verb>.c and listed in main.c. main.c does
 * the common set-up from it - options, operands, --help, --json, --all,
 * attaching - and then calls run with the segment (NULL unless attached;
 * main.c closes it afterwards) and what it parsed.
 */
struct cbctl_cmd {
    const char *name;
    const char *summary;                /* one line, without a full stop */
    const struct cbctl_option *options; /* ended by CBCTL_OPTIONS_END, or NULL */
    enum cbctl_attach attach;
    enum cbctl_names names;
    const char *json;               /* the help line of --json, or NULL where there is none */
    const struct cbctl_verb *verbs; /* CBCTL_NAMES_VERB: the verbs, else NULL */
    int (*run)(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args);
};

/* main.c */
/* "cbctl: " and the message on stderr, escaped as cbctl_put_safe does:
   messages quote names and paths cbctl was given or read. */
__attribute__((format(printf, 1, 2))) void cbctl_err(const char *fmt, ...);
/* The same, after "WHAT: " (cbctl's own words, not escaped) unless NULL. */
__attribute__((format(printf, 2, 0))) void cbctl_verr(const char *what, const char *fmt,
                                                      va_list ap);
/* "cbctl: WHAT: segment NAME: why", saying which versions met on a skew. */
void cbctl_segment_error(const char *what, const char *segment, int rc);

/* options.c */
/*
 * Parses argv (argv[0] is the command's name) into *out from cmd's option
 * rows, then checks the operands against cmd->names. Returns CBCTL_CONTINUE
 * to go on, CBCTL_OK after printing --help, or CBCTL_USAGE after a message
 * and the usage line on stderr.
 */
int cbctl_args_parse(const struct cbctl_cmd *cmd, int argc, char **argv, struct cbctl_args *out);
/* "cbctl: CMD: message" and the usage line on stderr; returns CBCTL_USAGE. */
__attribute__((format(printf, 2, 3))) int cbctl_usage_error(const struct cbctl_cmd *cmd,
                                                            const char *fmt, ...);
/* --segment: a global option, taken before the command and after it. */
extern const struct cbctl_option cbctl_segment_option;
/* "  -s, --segment NAME  help", the label padded to width, the help wrapped
   to 79 columns under itself. */
void cbctl_print_option(FILE *f, const struct cbctl_option *o, int width);
/* The option getopt_long() just refused, as the user wrote it: "--bogus",
   "--file" (its argument missing), or "-x" out of a cluster such as -xj. */
const char *cbctl_refused_option(char **argv, char *buf, size_t size);

/* escape.c: for every byte cbctl prints that it did not choose. */
/* Room for any breaker name escaped (4 bytes for each of 63), and a NUL. */
#define CBCTL_SAFE_MAX (4 * CBSHM_NAME_MAX + 4)
/*
 * s as a terminal may safely show it: a byte below 0x20, DEL, a byte from
 * 0x80 up (C1 controls, raw or as UTF-8) becomes \xNN.
 * Returns s itself when nothing needs escaping, else buf (size bytes),
 * cut with "..." when the escaped text does not fit.
 */
const char *cbctl_safe(const char *s, char *buf, size_t size);
void cbctl_put_safe(FILE *f, const char *s); /* the same, to f, never cut */
/* s as a Prometheus label value: \\, \" and \n for backslash, double
   quote and newline, exactly as the text exposition format says. */
void cbctl_put_label(FILE *f, const char *s);

/* output.c */
const char *cbctl_state_name(enum cbshm_state s);
const char *cbctl_mode_name(enum cbshm_mode m);
/* The cause of the mode's last change: "operator", "mode_expired",
   "fleet", or "none" (it never changed). */
const char *cbctl_mode_cause(const struct cbshm_snapshot *s);
/* Loads the YAML file into *out: CBCTL_CONTINUE; or, said on stderr,
   CBCTL_CONFIG (file:line:col: key: what is wrong) or CBCTL_FAILED (the
   file could not be read: "WHAT: FILE: why"). */
int cbctl_config_load(const char *what, const char *file, struct cbshm_config **out);
/* How long a timed mode (cbctl open --for) has still to run; 0: none. */
uint64_t cbctl_mode_remaining_ms(const struct cbshm_snapshot *s);
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
/* How long something has lasted or has left, as an operator reads it:
   "250ms", "2.5s", "42s", "1m19s", "2h3m", "3d4h" - the two largest
   units, cut, never rounded up. */
void cbctl_format_duration(char *buf, size_t size, uint64_t ms);
/* Open, its open period over, no probe in flight, normal mode: the next
   call is let through as a probe. */
int cbctl_probe_due(const struct cbshm_snapshot *s);
/* The state as list, show and watch print it: "open, probe due" or the name. */
const char *cbctl_state_label(const struct cbshm_snapshot *s);
/* The table of list and watch (see output.c). */
struct cbctl_table {
    int quorum;   /* a WORKERS column: some breaker has min_failing_workers > 1 */
    int bulkhead; /* a BULKHEAD column: some breaker has a bulkhead */
    int rates;    /* REQ/S and FAIL/S columns (watch) */
    int colour;   /* states coloured for a terminal */
};
/* Every breaker's snapshot, in slot order. Zero-initialise; free(all). */
struct cbctl_rows {
    struct cbshm_snapshot *all;
    size_t n, cap;
};
/* Fills rows (allocated on first use) from cbshm_foreach; its code, or -ENOMEM. */
int cbctl_table_collect(struct cbshm *shm, struct cbctl_rows *rows);
int cbctl_table_has_quorum(const struct cbshm_snapshot *all, size_t n);
int cbctl_table_has_bulkhead(const struct cbshm_snapshot *all, size_t n);
void cbctl_table_header(const struct cbctl_table *t);
/* rates: requests and failures per second, or NULL for "-". */
void cbctl_table_row(const struct cbctl_table *t, const struct cbshm_snapshot *s,
                     const double rates[2]);
/* What a failed cbshm_foreach means, after "cbctl: CMD: segment S: ". */
const char *cbctl_foreach_error(int rc);

/* Commands, one entry each, defined in cmd_<verb>.c. */
extern const struct cbctl_cmd cbctl_cmd_apply;
extern const struct cbctl_cmd cbctl_cmd_list;
extern const struct cbctl_cmd cbctl_cmd_show;
extern const struct cbctl_cmd cbctl_cmd_reset;
extern const struct cbctl_cmd cbctl_cmd_open; /* the four mode commands: cmd_mode.c */
extern const struct cbctl_cmd cbctl_cmd_close;
extern const struct cbctl_cmd cbctl_cmd_disable;
extern const struct cbctl_cmd cbctl_cmd_enable;
extern const struct cbctl_cmd cbctl_cmd_check;
extern const struct cbctl_cmd cbctl_cmd_metrics;
extern const struct cbctl_cmd cbctl_cmd_watch;
extern const struct cbctl_cmd cbctl_cmd_events;
extern const struct cbctl_cmd cbctl_cmd_destroy;
extern const struct cbctl_cmd cbctl_cmd_agent;
extern const struct cbctl_cmd cbctl_cmd_fleet;

/*
 * privilege.c: root becomes the segment's owner before mapping it. Each
 * returns CBCTL_CONTINUE (switched, or nothing to do) or CBCTL_FAILED
 * with the message said. `what` names the command in messages.
 */
int cbctl_become(const char *what, unsigned uid, unsigned gid, int with_group);
/* Where root's process hands the work to a switched child, fn(ctx, code)
   runs in root's process after the child exited with `code`, and its
   result is the exit status: work the owner may not do (metrics renames
   its --output file). Set before cbctl_become; one at a time. */
void cbctl_after_child(int (*fn)(void *ctx, int code), void *ctx);
int cbctl_become_segment_owner(const char *what, const char *segment);
/* Who owns segment's object: 0, or -1 when there is no regular file. */
int cbctl_segment_owner(const char *segment, unsigned *uid, unsigned *gid);
const char *cbctl_user_name(unsigned uid, char *buf, size_t size);

#endif
