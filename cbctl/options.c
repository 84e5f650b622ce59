/* SPDX-License-Identifier: MIT */
/*
 * A command's options, from its entry's option rows: the getopt_long
 * tables built from them, the parsed values, the operand check, and the
 * synopsis and option list that `cbctl <command> --help` and every usage
 * error print. One table for all of it, so the help cannot drift from what
 * is parsed.
 */
#define _GNU_SOURCE /* getopt_long */
#include <assert.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbctl.h"

/* A command's own rows, then --json, --all, --segment and --help. */
#define ROWS_MAX 16
/* Help lines start in this column at the least, so the short ones line up. */
#define HELP_COLUMN 17
/* Help text wraps before this column. */
#define HELP_WIDTH 79

static const struct cbctl_option all_row =
    CBCTL_SWITCH("all", 'a', all, "every breaker in the segment");
/* Every command takes it too, so that `cbctl list -s /x` works as
   `cbctl -s /x list` does; main.c parses the same row before the command. */
const struct cbctl_option cbctl_segment_option =
    CBCTL_STRING("segment", 's', "NAME", segment, 0,
                 "segment to use, before the command or after it (default: for apply "
                 "the YAML's `segment`, else $CBSHM_SEGMENT, else /cbshm)");
static const struct cbctl_option help_row = {
    .name = "help", .letter = 'h', .help = "this help", .kind = CBCTL_OPTION_HELP};

/* The rows cmd is parsed with, in the order --help lists them. */
static size_t rows_of(const struct cbctl_cmd *cmd, struct cbctl_option rows[ROWS_MAX])
{
    size_t n = 0;

    for (const struct cbctl_option *o = cmd->options; o != NULL && o->name != NULL; o++) {
        assert(n < ROWS_MAX - 4);
        rows[n++] = *o;
    }
    if (cmd->json != NULL)
        rows[n++] = (struct cbctl_option)CBCTL_SWITCH("json", 'j', json, cmd->json);
    if (cmd->names == CBCTL_NAMES_OR_ALL)
        rows[n++] = all_row;
    rows[n++] = cbctl_segment_option;
    rows[n++] = help_row;
    return n;
}

/* "-f FILE" (or "--file FILE" without a letter): how a required option is written. */
static void required_label(const struct cbctl_option *o, char *buf, size_t size)
{
    if (o->letter != 0)
        snprintf(buf, size, "-%c%s%s", o->letter, o->arg ? " " : "", o->arg ? o->arg : "");
    else
        snprintf(buf, size, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* "-i, --interval MS": the left column of --help. */
static void help_label(const struct cbctl_option *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s%c%s--%s%s%s", o->letter ? "-" : "", o->letter ? o->letter : ' ',
             o->letter ? ", " : "   ", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* "  label  help", the label padded to width, the help wrapped to 79
   columns under itself: an option's row, or a verb's. */
static void print_row(FILE *f, const char *label, int width, const char *text)
{
    int start, column;

    start = 2 + ((int)strlen(label) > width ? (int)strlen(label) : width);
    column = fprintf(f, "  %-*s", width, label);
    /* A word at a time, under the first; a word too long for any line gets one of its own. */
    while (*text != '\0') {
        size_t word = strcspn(text, " ");
        if (column + 1 + (int)word > HELP_WIDTH && column > start) {
            fprintf(f, "\n%*s", start, "");
            column = start;
        }
        column += fprintf(f, " %.*s", (int)word, text);
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

void cbctl_print_option(FILE *f, const struct cbctl_option *o, int width)
{
    char label[64];

    help_label(o, label, sizeof label);
    print_row(f, label, width, o->help);
}

/*
 * The usage line: required options as they must be typed, the others in
 * brackets, then the operands. --all stands in for the names, so it is
 * written with them; --segment, a global option, is in [global options].
 */
static void print_usage_line(FILE *f, const struct cbctl_cmd *cmd)
{
    static const char *operands[] = {"", " NAME", " NAME...", " NAME...|--all", ""};
    struct cbctl_option rows[ROWS_MAX];
    size_t n = rows_of(cmd, rows);
    char label[64];

    fprintf(f, "usage: cbctl [global options] %s", cmd->name);
    for (size_t i = 0; i < n; i++) {
        const struct cbctl_option *o = &rows[i];
        if (o->kind == CBCTL_OPTION_HELP || o->value == offsetof(struct cbctl_args, all) ||
            o->value == cbctl_segment_option.value)
            continue;
        if (o->required) {
            required_label(o, label, sizeof label);
            fprintf(f, " %s", label);
        } else {
            fprintf(f, " [--%s%s%s]", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        }
    }
    fputs(operands[cmd->names], f);
    for (const struct cbctl_verb *v = cmd->verbs; v != NULL && v->name != NULL; v++)
        fprintf(f, "%s%s%s", v == cmd->verbs ? " " : "|", v->name, v->takes_name ? " NAME" : "");
    fputc('\n', f);
}

static void print_help(const struct cbctl_cmd *cmd)
{
    struct cbctl_option rows[ROWS_MAX];
    size_t n = rows_of(cmd, rows);
    char label[64];
    int width = HELP_COLUMN;

    for (size_t i = 0; i < n; i++) {
        help_label(&rows[i], label, sizeof label);
        if ((int)strlen(label) > width)
            width = (int)strlen(label);
    }
    print_usage_line(stdout, cmd);
    printf("\n%s.\n", cmd->summary);
    if (cmd->verbs != NULL) {
        fputs("\nverbs:\n", stdout);
        for (const struct cbctl_verb *v = cmd->verbs; v->name != NULL; v++) {
            snprintf(label, sizeof label, "%s%s", v->name, v->takes_name ? " NAME" : "");
            print_row(stdout, label, width, v->summary);
        }
    }
    fputs("\noptions:\n", stdout);
    for (size_t i = 0; i < n; i++)
        cbctl_print_option(stdout, &rows[i], width);
}

__attribute__((format(printf, 2, 0))) static int usage_verror(const struct cbctl_cmd *cmd,
                                                              const char *fmt, va_list ap)
{
    cbctl_verr(cmd->name, fmt, ap); /* the message quotes what was typed */
    print_usage_line(stderr, cmd);
    return CBCTL_USAGE;
}

__attribute__((format(printf, 2, 3))) static int usage_error(const struct cbctl_cmd *cmd,
                                                             const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = usage_verror(cmd, fmt, ap);
    va_end(ap);
    return rc;
}

/* The same, for a command's own checks of what it was given. */
int cbctl_usage_error(const struct cbctl_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = usage_verror(cmd, fmt, ap);
    va_end(ap);
    return rc;
}

/* Stores what option o was given (arg: its argument, or NULL). */
static int store(const struct cbctl_cmd *cmd, const struct cbctl_option *o, const char *arg,
                 struct cbctl_args *out)
{
    char *field = (char *)out + o->value;
    char *end;
    long v;

    switch (o->kind) {
    case CBCTL_OPTION_SWITCH:
        *(int *)(void *)field = 1;
        break;
    case CBCTL_OPTION_STRING:
        /* Empty would silently mean "not given": say so instead. */
        if (o->value == cbctl_segment_option.value && arg[0] == '\0')
            return usage_error(cmd, "--segment wants a segment name such as /cbshm, got ''");
        *(const char **)(void *)field = arg;
        break;
    case CBCTL_OPTION_NUMBER:
        v = strtol(arg, &end, 10);
        if (end == arg || *end != '\0' || v < o->lo || v > o->hi)
            return usage_error(cmd, "--%s wants a number from %ld to %ld, got '%s'", o->name, o->lo,
                               o->hi, arg);
        *(long *)(void *)field = v;
        break;
    case CBCTL_OPTION_DURATION: {
        /* As the YAML writes a duration, 1ms..24h, and refused in its words. */
        char message[200];
        uint64_t ms;
        if (cbshm_setting_parse(cbshm_setting_find("open_timeout"), arg, &ms, message,
                                sizeof message) != 0)
            return usage_error(cmd, "--%s: %s", o->name, message);
        *(uint64_t *)(void *)field = ms;
        break;
    }
    case CBCTL_OPTION_HELP:
        print_help(cmd);
        return CBCTL_OK;
    }
    return CBCTL_CONTINUE;
}

/* The first operand is one of cmd's verbs, then a NAME where it takes one. */
static int check_verb(const struct cbctl_cmd *cmd, const struct cbctl_args *a)
{
    const struct cbctl_verb *v = cmd->verbs;
    char list[256];
    size_t used = 0;

    for (; a->n_names > 0 && v->name != NULL; v++)
        if (strcmp(v->name, a->names[0]) == 0)
            break;
    if (a->n_names > 0 && v->name != NULL) {
        if (v->takes_name && a->n_names < 2)
            return usage_error(cmd, "%s: expected a breaker name", v->name);
        if (a->n_names > 1 + v->takes_name)
            return usage_error(cmd, "%s: unexpected argument '%s'", v->name,
                               a->names[1 + v->takes_name]);
        return CBCTL_CONTINUE;
    }
    list[0] = '\0';
    for (v = cmd->verbs; v->name != NULL && used < sizeof list; v++)
        used +=
            (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", v->name);
    if (a->n_names == 0)
        return usage_error(cmd, "expected a verb: %s", list);
    return usage_error(cmd, "unknown verb '%s' (expected %s)", a->names[0], list);
}

static int check_operands(const struct cbctl_cmd *cmd, const struct cbctl_args *a)
{
    switch (cmd->names) {
    case CBCTL_NAMES_NONE:
        if (a->n_names > 0)
            return usage_error(cmd, "unexpected argument '%s'", a->names[0]);
        break;
    case CBCTL_NAMES_ONE:
        if (a->n_names != 1)
            return usage_error(cmd, "expected exactly one breaker name");
        break;
    case CBCTL_NAMES_SOME:
        if (a->n_names == 0)
            return usage_error(cmd, "expected at least one breaker name");
        break;
    case CBCTL_NAMES_OR_ALL:
        if (a->all == (a->n_names > 0))
            return usage_error(cmd, "give breaker names or --all, not both or neither");
        break;
    case CBCTL_NAMES_VERB:
        return check_verb(cmd, a);
    }
    return CBCTL_CONTINUE;
}

const char *cbctl_refused_option(char **argv, char *buf, size_t size)
{
    const char *last = optind > 0 ? argv[optind - 1] : "";

    /* A long option always moves optind past itself; a short one in a
       cluster may not, and then argv[optind - 1] is the word before it. */
    if (strncmp(last, "--", 2) == 0 || optopt == 0)
        snprintf(buf, size, "%s", last);
    else
        snprintf(buf, size, "-%c", optopt);
    return buf;
}

int cbctl_args_parse(const struct cbctl_cmd *cmd, int argc, char **argv, struct cbctl_args *out)
{
    struct cbctl_option rows[ROWS_MAX];
    struct option longopts[ROWS_MAX + 1];
    char shortopts[2 * ROWS_MAX + 1], *s = shortopts, label[64];
    int given[ROWS_MAX] = {0};
    size_t n = rows_of(cmd, rows);
    int c, rc;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        /* A row without a letter is told apart by a value no letter has. */
        longopts[i] = (struct option){rows[i].name, rows[i].arg ? required_argument : no_argument,
                                      NULL, rows[i].letter ? rows[i].letter : 256 + (int)i};
        if (rows[i].letter != 0) {
            *s++ = (char)rows[i].letter;
            if (rows[i].arg != NULL)
                *s++ = ':';
        }
        if (rows[i].kind == CBCTL_OPTION_NUMBER)
            *(long *)(void *)((char *)out + rows[i].value) = rows[i].initial;
    }
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    *s = '\0';

    opterr = 0;
    optind = 0; /* fresh getopt state: argv[0] is the command */
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        size_t i = 0;
        while (i < n && longopts[i].val != c)
            i++;
        if (i == n)
            return usage_error(cmd, "unknown or incomplete option '%s'",
                               cbctl_refused_option(argv, label, sizeof label));
        given[i] = 1;
        if ((rc = store(cmd, &rows[i], optarg, out)) != CBCTL_CONTINUE)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].required && !given[i]) {
            required_label(&rows[i], label, sizeof label);
            return usage_error(cmd, "%s is required", label);
        }
    }
    out->names = argv + optind;
    out->n_names = argc - optind;
    return check_operands(cmd, out);
}
