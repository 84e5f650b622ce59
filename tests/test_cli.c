/* SPDX-License-Identifier: MIT */
/*
 * CLI: the real cbctl binary - every command, its exit codes, its messages,
 * --json read back by a real JSON parser (jansson), and the bad-YAML
 * fixtures with their FILE:LINE:COL messages.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

struct run {
    int status;
    char out[16384];
    char err[4096];
};

/* Runs cbctl with a NULL-terminated argument list. */
static struct run *cbctl(struct run *r, const char *arg, ...)
{
    va_list ap;

    va_start(ap, arg);
    r->status = t_vexec(CBCTL_PATH, r->out, sizeof r->out, r->err, sizeof r->err, arg, ap);
    va_end(ap);
    return r;
}

static char seg[64];
static char yaml_path[128];

static int setup(void **state)
{
    FILE *f;

    (void)state;
    t_segment_name(seg);
    snprintf(yaml_path, sizeof yaml_path, "/tmp/cbshm-cli-%d.yaml", (int)getpid());
    f = fopen(yaml_path, "w");
    fputs("capacity: 16\nbreakers:\n  - name: payments\n    failure_threshold: 3\n"
          "    open_timeout: 5s\n  - name: search\n",
          f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cbshm_destroy(seg);
    unlink(yaml_path);
    return 0;
}

static void apply_ok(void)
{
    struct run r;
    assert_int_equal(cbctl(&r, "--segment", seg, "apply", "-f", yaml_path, NULL)->status, 0);
}

static void test_help_lists_every_command_and_the_exit_codes(void **state)
{
    static const char *cmds[] = {"apply", "list",    "show",   "reset", "open",
                                 "close", "disable", "enable", "check", "metrics",
                                 "watch", "events",  "destroy"};
    struct run r;

    (void)state;
    assert_int_equal(cbctl(&r, "--help", NULL)->status, 0);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char line[32];
        snprintf(line, sizeof line, "\n  %s ", cmds[i]);
        assert_non_null(strstr(r.out, line));
    }
    assert_non_null(strstr(r.out, "3  configuration rejected"));
    assert_string_equal(r.err, "");
    assert_int_equal(cbctl(&r, "--version", NULL)->status, 0);
    assert_non_null(strstr(r.out, CBSHM_VERSION_STRING));
}

static void test_every_command_has_its_own_help(void **state)
{
    static const char *cmds[] = {"apply", "list",    "show",   "reset", "open",
                                 "close", "disable", "enable", "check", "metrics",
                                 "watch", "events",  "destroy"};
    struct run r;

    (void)state;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64];
        assert_int_equal(cbctl(&r, cmds[i], "--help", NULL)->status, 0);
        snprintf(want, sizeof want, "usage: cbctl [global options] %s", cmds[i]);
        assert_non_null(strstr(r.out, want));
    }
}

/* Option and command names, as a small set of strings. */
struct names {
    char v[96][40];
    size_t n;
};

static int names_has(const struct names *s, const char *w)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], w) == 0)
            return 1;
    return 0;
}

static void names_add(struct names *s, const char *w, size_t len)
{
    char word[40];

    snprintf(word, sizeof word, "%.*s", (int)len, w);
    if (!names_has(s, word)) {
        assert_true(s->n < sizeof s->v / sizeof s->v[0]);
        strcpy(s->v[s->n++], word);
    }
}

/* Every "--long" and "-x" in text, where a word starts with it. */
static void options_scan(const char *text, struct names *out)
{
    for (const char *p = text; *p != '\0'; p++) {
        size_t len = 2;
        if (*p != '-' || (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '-')))
            continue;
        if (p[1] == '-') {
            while (islower((unsigned char)p[len]) || p[len] == '-')
                len++;
            if (len > 2)
                names_add(out, p, len);
            p += len - 1;
        } else if (isalpha((unsigned char)p[1]) && !isalnum((unsigned char)p[2]) && p[2] != '-') {
            names_add(out, p, 2);
            p++;
        }
    }
}

/*
 * The options of an option block ("  -f, --file FILE   help"), read from
 * the rows' left column only: the short letter that opens a row and the
 * first long name on it. A letter used twice in one block fails.
 */
static void options_of_block(const char *block, struct names *out)
{
    for (const char *line = block; *line == ' '; line = strchr(line, '\n') + 1) {
        const char *lng = strstr(line, "--"), *end = strchr(line, '\n');
        size_t len = 2;
        assert_non_null(end);
        if (line[strspn(line, " ")] != '-')
            continue; /* a help line carried on */
        if (line[2] == '-' && line[3] != '-') {
            char letter[3] = {'-', line[3], '\0'};
            if (names_has(out, letter))
                fail_msg("%s used twice in:\n%s", letter, block);
            names_add(out, letter, 2);
        }
        assert_true(lng != NULL && lng < end);
        while (islower((unsigned char)lng[len]) || lng[len] == '-')
            len++;
        names_add(out, lng, len);
    }
}

/* The commands `cbctl --help` lists, and its global options. */
static void table_commands(struct names *cmds, struct names *global)
{
    struct run r;
    const char *p;

    assert_int_equal(cbctl(&r, "--help", NULL)->status, 0);
    assert_non_null(p = strstr(r.out, "\nglobal options:\n"));
    options_of_block(p + strlen("\nglobal options:\n"), global);
    assert_non_null(p = strstr(r.out, "\ncommands:\n"));
    for (p += strlen("\ncommands:\n"); p[0] == ' ' && p[1] == ' '; p = strchr(p, '\n') + 1)
        names_add(cmds, p + 2, strcspn(p + 2, " "));
    assert_true(cmds->n >= 13);
}

/* The options `cbctl CMD --help` lists. */
static void table_options(const char *cmd, struct names *out)
{
    struct run r;
    const char *p;

    assert_int_equal(cbctl(&r, cmd, "--help", NULL)->status, 0);
    assert_non_null(p = strstr(r.out, "\noptions:\n"));
    options_of_block(p + strlen("\noptions:\n"), out);
}

/* The whole file, however long (README.md is past 64 KiB, and a block
   cut off at a fixed size was not found); valid until the next call. */
static char *read_source(const char *relative)
{
    static char *buf;
    char path[256];
    struct stat st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, SOURCE_DIR "/%s", relative);
    assert_non_null(f = fopen(path, "r"));
    assert_int_equal(fstat(fileno(f), &st), 0);
    free(buf);
    assert_non_null(buf = malloc((size_t)st.st_size + 1));
    n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    assert_int_equal(n, (size_t)st.st_size);
    buf[n] = '\0';
    return buf;
}

/* A roff line as it reads: no font escapes, "\-" as "-", no quotes. */
static void roff_plain(const char *line, size_t len, char *out, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < size; i++) {
        if (line[i] == '\\' && i + 1 < len && line[i + 1] == 'f')
            i += 2;
        else if (line[i] == '\\' && i + 1 < len && line[i + 1] == '-')
            out[n++] = '-', i++;
        else if (line[i] != '"')
            out[n++] = line[i];
    }
    out[n] = '\0';
}

struct man_cmd {
    char name[32];
    struct names options;
};

/*
 * The page's COMMANDS section, one entry per top-level .TP (a command's
 * own options sit in .RS/.RE under it), and every option the page names.
 */
static size_t man_commands(struct man_cmd *cmds, size_t max, struct names *page)
{
    const char *text = read_source("man/cbctl.1");
    int in_commands = 0, depth = 0, heading = 0;
    size_t n = 0;

    for (const char *line = text; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        char plain[512];
        roff_plain(line, len, plain, sizeof plain);
        options_scan(plain, page);
        if (strncmp(plain, ".SH", 3) == 0)
            in_commands = strcmp(plain, ".SH COMMANDS") == 0;
        else if (in_commands && strcmp(plain, ".RS") == 0)
            depth++;
        else if (in_commands && strcmp(plain, ".RE") == 0)
            depth--;
        else if (in_commands && depth == 0 && strcmp(plain, ".TP") == 0)
            heading = 1;
        else if (heading) {
            const char *word = plain + strcspn(plain, " "); /* after .B, .BR or .BI */
            word += strspn(word, " ");
            assert_true(n < max);
            snprintf(cmds[n].name, sizeof cmds[n].name, "%.*s", (int)strcspn(word, " ["), word);
            cmds[n++].options.n = 0;
            heading = 0;
        }
        if (in_commands && n > 0)
            options_scan(plain, &cmds[n - 1].options);
        line += len + (line[len] == '\n');
    }
    return n;
}

static void test_the_man_page_documents_every_option_of_every_command_and_no_other(void **state)
{
    static struct man_cmd man[32];
    static struct names cmds, global, page, known;
    size_t n_man;

    (void)state;
    cmds.n = global.n = page.n = 0;
    table_commands(&cmds, &global);
    n_man = man_commands(man, sizeof man / sizeof man[0], &page);
    known = global;
    for (size_t i = 0; i < cmds.n; i++) {
        struct names opts = {.n = 0};
        const struct man_cmd *m = NULL;
        table_options(cmds.v[i], &opts);
        for (size_t k = 0; k < n_man; k++)
            if (strcmp(man[k].name, cmds.v[i]) == 0)
                m = &man[k];
        if (m == NULL)
            fail_msg("cbctl.1 has no entry for %s", cmds.v[i]);
        /* --help and --segment are documented once, under GLOBAL OPTIONS, for every command. */
        for (size_t k = 0; k < opts.n; k++) {
            if (!names_has(&global, opts.v[k]) && !names_has(&m->options, opts.v[k]))
                fail_msg("cbctl.1: %s: %s is not documented", cmds.v[i], opts.v[k]);
            names_add(&known, opts.v[k], strlen(opts.v[k]));
        }
        for (size_t k = 0; k < m->options.n; k++)
            if (!names_has(&opts, m->options.v[k]))
                fail_msg("cbctl.1: %s: %s is not an option of cbctl %s", cmds.v[i], m->options.v[k],
                         cmds.v[i]);
    }
    for (size_t k = 0; k < n_man; k++)
        if (!names_has(&cmds, man[k].name))
            fail_msg("cbctl.1 documents '%s', which cbctl does not have", man[k].name);
    for (size_t k = 0; k < page.n; k++)
        if (!names_has(&known, page.v[k]))
            fail_msg("cbctl.1 names %s, which no command has", page.v[k]);
}

/*
 * The README's cbctl block: a line per command of the table, and options
 * on each line that its command has.
 */
static void test_the_readme_names_every_command_and_only_their_options(void **state)
{
    static struct names cmds, global, seen;
    const char *text = read_source("README.md"), *block, *end;

    (void)state;
    cmds.n = global.n = seen.n = 0;
    table_commands(&cmds, &global);
    assert_non_null(block = strstr(text, "\n## cbctl\n"));
    assert_non_null(block = strstr(block, "```\n"));
    block += 4;
    assert_non_null(end = strstr(block, "```"));
    for (const char *line = block; line < end; line = strchr(line, '\n') + 1) {
        size_t len = strcspn(line, "\n");
        char cmd[32], text_line[256];
        struct names on_line = {.n = 0}, opts = {.n = 0};
        snprintf(text_line, sizeof text_line, "%.*s", (int)len, line);
        snprintf(cmd, sizeof cmd, "%.*s", (int)strcspn(line, " \n"), line);
        if (len == 0 || strcmp(cmd, "cbctl") == 0)
            continue;
        if (!names_has(&cmds, cmd))
            fail_msg("README.md lists '%s', which cbctl does not have", cmd);
        names_add(&seen, cmd, strlen(cmd));
        table_options(cmd, &opts);
        options_scan(text_line, &on_line);
        for (size_t k = 0; k < on_line.n; k++)
            if (!names_has(&opts, on_line.v[k]))
                fail_msg("README.md: %s: %s is not an option of cbctl %s", cmd, on_line.v[k], cmd);
    }
    for (size_t i = 0; i < cmds.n; i++)
        if (!names_has(&seen, cmds.v[i]))
            fail_msg("README.md's cbctl section does not list %s", cmds.v[i]);
}

/* The help rows start their text in one column, and --json is -j wherever it is taken. */
static void test_command_help_rows_line_up_and_json_is_the_same_option_everywhere(void **state)
{
    static struct names cmds, global;
    struct run r;

    (void)state;
    cmds.n = global.n = 0;
    table_commands(&cmds, &global);
    for (size_t i = 0; i < cmds.n; i++) {
        struct names opts = {.n = 0};
        const char *p;
        int column = -1;
        assert_int_equal(cbctl(&r, cmds.v[i], "--help", NULL)->status, 0);
        assert_non_null(p = strstr(r.out, "\noptions:\n"));
        for (p += strlen("\noptions:\n"); *p == ' '; p = strchr(p, '\n') + 1) {
            const char *text = p;
            for (;;) { /* past "-i, --interval MS" to the help text */
                text += strspn(text, " ");
                if (*text != '-' && !isupper((unsigned char)*text))
                    break;
                text += strcspn(text, " ");
            }
            if (column < 0)
                column = (int)(text - p);
            if ((int)(text - p) != column)
                fail_msg("cbctl %s --help: rows do not line up:\n%s", cmds.v[i], r.out);
        }
        table_options(cmds.v[i], &opts);
        if (names_has(&opts, "--json") != names_has(&opts, "-j"))
            fail_msg("cbctl %s: --json without -j", cmds.v[i]);
        if (!names_has(&opts, "--json")) {
            assert_int_equal(cbctl(&r, cmds.v[i], "--json", NULL)->status, 2);
            assert_non_null(strstr(r.err, "unknown or incomplete option '--json'"));
        }
    }
    assert_int_equal(cbctl(&r, "-s", "/cbshm-cli-no-such-segment", "list", "-j", NULL)->status, 1);
    assert_non_null(strstr(r.err, "cbctl: list: segment /cbshm-cli-no-such-segment: segment does "
                                  "not exist"));
}

static void test_usage_errors_exit_2_with_a_message(void **state)
{
    struct run r;

    (void)state;
    assert_int_equal(cbctl(&r, NULL)->status, 2);
    assert_non_null(strstr(r.err, "cbctl: no command given"));
    assert_int_equal(cbctl(&r, "frobnicate", NULL)->status, 2);
    assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
    assert_int_equal(cbctl(&r, "dest", NULL)->status, 2); /* no abbreviations */
    assert_int_equal(cbctl(&r, "--bogus", "list", NULL)->status, 2);
    assert_int_equal(cbctl(&r, "apply", NULL)->status, 2);
    assert_non_null(strstr(r.err, "cbctl: apply: -f FILE is required"));
    assert_int_equal(cbctl(&r, "show", NULL)->status, 2);
    assert_int_equal(cbctl(&r, "list", "--frob", NULL)->status, 2);
    assert_int_equal(cbctl(&r, "reset", NULL)->status, 2);
    assert_int_equal(cbctl(&r, "reset", "--all", "x", NULL)->status, 2);
    assert_int_equal(cbctl(&r, "open", NULL)->status, 2);
    assert_int_equal(cbctl(&r, "check", "extra", NULL)->status, 2);
    assert_string_equal(r.out, "");
    assert_int_equal(cbctl(&r, "events", "--interval", "5", NULL)->status, 2);
    assert_non_null(
        strstr(r.err, "cbctl: events: --interval wants a number from 10 to 60000, got '5'"));
    assert_int_equal(cbctl(&r, "watch", "--count", "x", NULL)->status, 2);
    assert_non_null(strstr(r.err, "--count wants a number from 1 to"));
    assert_int_equal(cbctl(&r, "metrics", "extra", NULL)->status, 2);
    assert_int_equal(cbctl(&r, "events", "--frob", NULL)->status, 2);
    assert_non_null(strstr(r.err, "unknown or incomplete option '--frob'"));
    /* The option refused is named as written, even inside a cluster. */
    assert_int_equal(cbctl(&r, "show", "-xj", "a", NULL)->status, 2);
    assert_non_null(strstr(r.err, "cbctl: show: unknown or incomplete option '-x'"));
    assert_int_equal(cbctl(&r, "show", "-jx", "a", NULL)->status, 2);
    assert_non_null(strstr(r.err, "unknown or incomplete option '-x'"));
    assert_int_equal(cbctl(&r, "-xV", NULL)->status, 2);
    assert_non_null(strstr(r.err, "cbctl: unknown or incomplete option '-x'"));
    assert_int_equal(cbctl(&r, "apply", "--file", NULL)->status, 2);
    assert_non_null(strstr(r.err, "cbctl: apply: unknown or incomplete option '--file'"));
    /* An empty --segment is a mistake, not "use the default". */
    assert_int_equal(cbctl(&r, "-s", "", "list", NULL)->status, 2);
    assert_non_null(strstr(r.err, "--segment wants a segment name"));
}

static void test_apply_creates_and_a_second_apply_reports_no_changes(void **state)
{
    struct run r;

    (void)state;
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", yaml_path, "--dry-run", NULL)->status, 0);
    assert_non_null(strstr(r.out, "would create segment"));
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 1);
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", yaml_path, NULL)->status, 0);
    assert_non_null(strstr(r.out, "create segment"));
    assert_non_null(strstr(r.out, "add breaker payments\n"));
    assert_non_null(strstr(r.out, "add breaker search\n"));
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", yaml_path, NULL)->status, 0);
    assert_non_null(strstr(r.out, ": no changes"));
}

static void test_apply_reports_each_change_it_makes(void **state)
{
    const char *p = "/tmp/cbshm-cli-next.yaml";
    FILE *f;
    struct run r;

    (void)state;
    apply_ok();
    f = fopen(p, "w");
    fputs("capacity: 16\nbreakers:\n  - name: payments\n    failure_threshold: 4\n"
          "    open_timeout: 10s\n    backoff_multiplier: 1.5\n    policy: consecutive\n"
          "  - name: users\n",
          f);
    fclose(f);
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-n", "-f", p, NULL)->status, 0);
    assert_non_null(strstr(r.out, "would remove breaker search"));
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", p, NULL)->status, 0);
    /* In table order, in the YAML's words; an unchanged key is not named. */
    assert_non_null(strstr(r.out, "update breaker payments: failure_threshold 3 -> 4, "
                                  "open_timeout 5s -> 10s, backoff_multiplier 1 -> 1.5\n"));
    assert_non_null(strstr(r.out, "remove breaker search\n"));
    assert_non_null(strstr(r.out, "add breaker users\n"));
    unlink(p);
}

static void test_list_json_is_one_array_with_the_contract_fields(void **state)
{
    static const char *ints[] = {
        "failure_threshold", "open_timeout_ms", "half_open_max_calls", "requests",
        "successes",         "failures",        "rejections",          "trips"};
    struct run r;
    json_error_t e;
    json_t *doc, *o;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&r, "-s", seg, "list", "--json", NULL)->status, 0);
    doc = json_loads(r.out, 0, &e);
    assert_non_null(doc);
    assert_true(json_is_array(doc));
    assert_int_equal(json_array_size(doc), 2);
    o = json_array_get(doc, 0);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "payments");
    assert_string_equal(json_string_value(json_object_get(o, "state")), "closed");
    assert_string_equal(json_string_value(json_object_get(o, "mode")), "normal");
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        assert_true(json_is_integer(json_object_get(o, ints[i])));
    assert_int_equal(json_integer_value(json_object_get(o, "open_timeout_ms")), 5000);
    assert_int_equal(json_integer_value(json_object_get(o, "failure_threshold")), 3);
    json_decref(doc);
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    assert_non_null(strstr(r.out, "NAME"));
    assert_non_null(strstr(r.out, "payments"));
}

static void test_show_json_reports_live_state(void **state)
{
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct run r;
    json_t *o;

    (void)state;
    apply_ok();
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "payments", &b), 0);
    for (int i = 0; i < 4; i++)
        cbshm_execute(b, t_fail_fn, NULL);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", "--json", NULL)->status, 0);
    o = json_loads(r.out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "open");
    assert_int_equal(json_integer_value(json_object_get(o, "failures")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "rejections")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "requests")), 4);
    assert_int_equal(json_integer_value(json_object_get(o, "trips")), 1);
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", NULL)->status, 0);
    assert_non_null(strstr(r.out, "state:                open"));
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

static void test_show_of_an_unknown_breaker_fails_naming_it(void **state)
{
    struct run r;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&r, "-s", seg, "show", "nope", "--json", NULL)->status, 1);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "cbctl: show nope: no such breaker\n");
}

static const char *mode_of(const char *name)
{
    static char mode[32];
    struct run r;
    json_t *o;

    cbctl(&r, "-s", seg, "show", "--json", name, NULL);
    o = json_loads(r.out, 0, NULL);
    assert_non_null(o);
    snprintf(mode, sizeof mode, "%s", json_string_value(json_object_get(o, "mode")));
    json_decref(o);
    return mode;
}

static void test_mode_commands_set_each_mode(void **state)
{
    struct run r;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&r, "-s", seg, "open", "payments", "search", NULL)->status, 0);
    assert_string_equal(mode_of("payments"), "forced_open");
    assert_string_equal(mode_of("search"), "forced_open");
    assert_int_equal(cbctl(&r, "-s", seg, "close", "payments", NULL)->status, 0);
    assert_string_equal(mode_of("payments"), "forced_closed");
    assert_int_equal(cbctl(&r, "-s", seg, "disable", "payments", NULL)->status, 0);
    assert_string_equal(mode_of("payments"), "disabled");
    assert_int_equal(cbctl(&r, "-s", seg, "enable", "payments", "nope", NULL)->status, 1);
    assert_string_equal(mode_of("payments"), "normal");
    assert_non_null(strstr(r.err, "cbctl: enable nope: no such breaker"));
}

static void test_reset_by_name_and_all(void **state)
{
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    struct run r;

    (void)state;
    apply_ok();
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "payments", &b), 0);
    for (int i = 0; i < 3; i++)
        cbshm_execute(b, t_fail_fn, NULL);
    assert_int_equal(cbctl(&r, "-s", seg, "reset", "payments", NULL)->status, 0);
    assert_int_equal(cbshm_snapshot(shm, "payments", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    assert_int_equal(s.failures, 0);
    for (int i = 0; i < 3; i++)
        cbshm_execute(b, t_fail_fn, NULL);
    assert_int_equal(cbctl(&r, "-s", seg, "reset", "--all", NULL)->status, 0);
    assert_non_null(strstr(r.out, "reset payments\nreset search\n"));
    assert_int_equal(cbshm_snapshot(shm, "payments", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_CLOSED);
    assert_int_equal(cbctl(&r, "-s", seg, "reset", "ghost", NULL)->status, 1);
    assert_string_equal(r.err, "cbctl: reset ghost: no such breaker\n");
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

static void test_check_is_clean_then_names_a_scribbled_slot(void **state)
{
    struct cbshm *shm;
    struct run r;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 0);
    assert_non_null(strstr(r.out, ": ok:"));
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    atomic_store(&shm->slots[1].in_use, 7);
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 1);
    assert_non_null(strstr(r.err, "slot 1: in_use is 7"));
    assert_string_equal(r.out, "");
    cbshm_close(shm);
}

static void test_check_and_list_refuse_a_foreign_segment(void **state)
{
    struct run r;
    int fd;
    char junk[8192];

    (void)state;
    memset(junk, 0x5a, sizeof junk);
    fd = shm_open(seg, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 1);
    assert_non_null(strstr(r.err, "not a libcbshm segment (bad magic)"));
    assert_int_equal(cbctl(&r, "-s", seg, "list", "--json", NULL)->status, 1);
    assert_string_equal(r.out, "");
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", yaml_path, NULL)->status, 1);
    assert_non_null(strstr(r.err, "bad magic"));
    assert_int_equal(cbctl(&r, "-s", seg, "destroy", NULL)->status, 0);
}

static void test_destroy_removes_the_segment(void **state)
{
    static const char *readers[] = {"list", "metrics", "events", "watch", "check"};
    struct run r;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&r, "-s", seg, "destroy", NULL)->status, 0);
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
        char want[160];
        assert_int_equal(cbctl(&r, "-s", seg, readers[i], NULL)->status, 1);
        snprintf(want, sizeof want, "cbctl: %s: segment %s: segment does not exist", readers[i],
                 seg);
        assert_non_null(strstr(r.err, want));
        /* metrics says so to the scraper too, and only that. */
        snprintf(want, sizeof want, "cbshm_up{segment=\"%s\"} 0\n", seg);
        if (strcmp(readers[i], "metrics") == 0)
            assert_non_null(strstr(r.out, want));
        else
            assert_string_equal(r.out, "");
    }
    assert_int_equal(cbctl(&r, "-s", seg, "destroy", NULL)->status, 1);
}

static void test_the_segment_can_come_from_the_environment(void **state)
{
    struct run r;

    (void)state;
    setenv("CBSHM_SEGMENT", seg, 1);
    assert_int_equal(cbctl(&r, "apply", "-f", yaml_path, NULL)->status, 0);
    assert_int_equal(cbctl(&r, "show", "search", NULL)->status, 0);
    unsetenv("CBSHM_SEGMENT");
    assert_int_equal(cbctl(&r, "-s", seg, "show", "search", NULL)->status, 0);
}

/* One rule (cbshm_config_segment): --segment, then the file's `segment`,
   then $CBSHM_SEGMENT, then /cbshm - as cbshm_apply() and Python have it. */
static void test_apply_takes_the_option_then_the_file_then_the_environment(void **state)
{
    char file_seg[80], env_seg[80], path[160];
    struct run r;
    FILE *f;

    (void)state;
    snprintf(file_seg, sizeof file_seg, "%s-file", seg);
    snprintf(env_seg, sizeof env_seg, "%s-env", seg);
    snprintf(path, sizeof path, "%s.named", yaml_path);
    assert_non_null(f = fopen(path, "w"));
    fprintf(f, "segment: %s\nbreakers:\n  - name: a\n", file_seg);
    fclose(f);
    setenv("CBSHM_SEGMENT", env_seg, 1);
    assert_int_equal(cbctl(&r, "apply", "-f", path, NULL)->status, 0);
    assert_non_null(strstr(r.out, file_seg));
    assert_int_equal(cbshm_destroy(file_seg), 0);
    assert_int_equal(cbshm_destroy(env_seg), CBSHM_ENOSEG);
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", path, NULL)->status, 0);
    assert_int_equal(cbshm_destroy(file_seg), CBSHM_ENOSEG);
    assert_int_equal(cbctl(&r, "apply", "-f", yaml_path, NULL)->status, 0); /* no `segment` */
    assert_int_equal(cbshm_destroy(env_seg), 0);
    unsetenv("CBSHM_SEGMENT");
    unlink(path);
}

/* open --for: forced open for a while; list and show say how long. */
static void test_open_for_a_duration_says_so_and_refuses_a_bad_one(void **state)
{
    struct run r;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&r, "-s", seg, "open", "--for", "90s", "payments", NULL)->status, 0);
    assert_string_equal(r.out, "payments: mode forced_open for 90s\n");
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", NULL)->status, 0);
    assert_non_null(strstr(r.out, "mode:                 forced_open, for another "));
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    assert_non_null(strstr(r.out, "(forced_open for another "));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "payments", NULL)->status, 0);
    assert_non_null(strstr(r.out, "\"mode_remaining_ms\": "));
    assert_int_equal(cbctl(&r, "-s", seg, "open", "--for", "5", "payments", NULL)->status, 2);
    assert_non_null(strstr(r.err, "cbctl: open: --for: duration '5' needs a unit (ms, s, m or h)"));
    assert_string_equal(r.out, "");
    assert_int_equal(cbctl(&r, "-s", seg, "enable", "--for", "5s", "payments", NULL)->status, 2);
}

static void test_bad_yaml_fixtures_are_rejected_with_file_line_and_column(void **state)
{
    static const struct {
        const char *file, *expect;
    } cases[] = {
        {"bad-syntax.yaml", ":5:1: YAML syntax error: did not find expected ',' or ']'"},
        {"bad-unknown-key.yaml",
         ":4:5: breakers[0].failure_treshold: unknown key 'failure_treshold'"},
        {"bad-type.yaml", ":3:24: breakers[0].failure_threshold: expected an integer, got 'three'"},
        {"bad-unit.yaml",
         ":2:17: defaults.open_timeout: bad unit ' seconds' in duration '30 seconds'"},
        {"bad-no-unit.yaml", ":2:17: defaults.open_timeout: duration '30' needs a unit"},
        {"bad-range.yaml",
         ":3:26: breakers[0].half_open_max_calls: value 100 is out of range (1..16)"},
        {"bad-duplicate.yaml",
         ":4:11: breakers[2]: duplicate breaker name 'payments' (first at breakers[0])"},
        {"bad-name.yaml", ":2:11: breakers[0].name: invalid breaker name 'payments api'"},
        {"bad-mode.yaml", ":1:7: mode: mode 0666 is writable by others"},
        {"bad-window.yaml",
         ":4:18: breakers[0].window_size: window_size is for window_type: count"},
        {"bad-fleet-port.yaml",
         ":3:10: fleet.redis: redis '10.0.0.5:637900': the port '637900' is not a number "
         "1..65535\n"},
        {"bad-fleet-heartbeat.yaml",
         ":4:14: fleet.heartbeat: value '2h' is out of range (1s..1h)\n"},
        {"bad-fleet-password-file.yaml",
         ":4:18: fleet.password_file: password_file 'redis.pass' must be an absolute path (the "
         "agent may run from another directory)\n"},
        {"bad-fleet-key.yaml",
         ":4:3: fleet.heartbaet: unknown key 'heartbaet': did you mean 'heartbeat'?\n"},
        {"bad-fleet-name.yaml",
         ":3:9: fleet.name: invalid name 'shop/eu' (1..64 bytes of A-Z a-z 0-9 . _ -)\n"},
    };
    struct run r;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256], want[512];
        snprintf(path, sizeof path, SOURCE_DIR "/tests/fixtures/%s", cases[i].file);
        snprintf(want, sizeof want, "%s%s", path, cases[i].expect);
        assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", path, NULL)->status, 3);
        if (strncmp(r.err, want, strlen(want)) != 0)
            fail_msg("%s: got '%s', want '%s'", cases[i].file, r.err, want);
        assert_string_equal(r.out, "");
        /* A dry run checks the whole file too, the fleet section included. */
        assert_int_equal(cbctl(&r, "-s", seg, "apply", "--dry-run", "-f", path, NULL)->status, 3);
        if (strncmp(r.err, want, strlen(want)) != 0)
            fail_msg("%s --dry-run: got '%s', want '%s'", cases[i].file, r.err, want);
    }
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 1); /* nothing was created */
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", "/nonexistent.yaml", NULL)->status, 1);
    assert_non_null(strstr(r.err, "/nonexistent.yaml: cannot open"));
}

static void test_apply_accepts_every_key_and_show_reports_them(void **state)
{
    static const char *policy_ints[] = {
        "failure_rate",        "window_size",           "window_duration_ms", "window_buckets",
        "minimum_calls",       "slow_call_duration_ms", "slow_call_rate",     "open_timeout_max_ms",
        "open_timeout_jitter", "min_failing_workers",   "window_calls",       "window_failures",
        "window_slow_calls",   "window_failure_rate",   "window_slow_rate",   "failing_workers",
        "current_open_ms"};
    struct run r;
    json_t *o;

    (void)state;
    assert_int_equal(
        cbctl(&r, "-s", seg, "apply", "-f", SOURCE_DIR "/config/policies.yaml", NULL)->status, 0);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "inventory-db", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    for (size_t i = 0; i < sizeof policy_ints / sizeof policy_ints[0]; i++)
        assert_true(json_is_integer(json_object_get(o, policy_ints[i])));
    assert_string_equal(json_string_value(json_object_get(o, "policy")), "rate");
    assert_string_equal(json_string_value(json_object_get(o, "window_type")), "time");
    assert_int_equal(json_integer_value(json_object_get(o, "failure_rate")), 25);
    assert_int_equal(json_integer_value(json_object_get(o, "window_duration_ms")), 60000);
    assert_int_equal(json_integer_value(json_object_get(o, "window_buckets")), 12);
    assert_int_equal(json_integer_value(json_object_get(o, "minimum_calls")), 50);
    assert_int_equal(json_integer_value(json_object_get(o, "open_timeout_max_ms")), 300000);
    assert_true(json_real_value(json_object_get(o, "backoff_multiplier")) == 1.5);
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "payments-api", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "policy")), "consecutive");
    assert_int_equal(json_integer_value(json_object_get(o, "min_failing_workers")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "open_timeout_jitter")), 10);
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "search-api", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_int_equal(json_integer_value(json_object_get(o, "window_size")), 100);
    assert_int_equal(json_integer_value(json_object_get(o, "slow_call_duration_ms")), 2000);
    assert_int_equal(json_integer_value(json_object_get(o, "slow_call_rate")), 80);
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "search-api", NULL)->status, 0);
    /* Every setting that applies, as the YAML writes it; none that does not. */
    assert_non_null(strstr(r.out, "\nwindow_size:          100\n"));
    assert_non_null(strstr(r.out, "\nminimum_calls:        20\n"));
    assert_non_null(strstr(r.out, "\nslow_call_duration:   2s\n"));
    assert_non_null(strstr(r.out, "\nslow_call_rate:       80%\n"));
    assert_non_null(strstr(r.out, "\nbackoff_multiplier:   2\n"));
    assert_null(strstr(r.out, "failure_threshold:"));
    assert_null(strstr(r.out, "window_duration:"));
}

static void test_version_skew_is_refused_naming_both_versions(void **state)
{
    struct cbshm *shm;
    struct run r;
    char want[160];
    uint32_t saved;

    (void)state;
    apply_ok();
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    saved = shm->hdr->layout_version;
    shm->hdr->layout_version = saved + 1;
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 1);
    snprintf(want, sizeof want,
             "layout version %u; this cbctl (libcbshm %s) reads layout version %u", saved + 1,
             CBSHM_VERSION_STRING, saved);
    assert_non_null(strstr(r.err, want));
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 1);
    assert_non_null(strstr(r.err, want));
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", yaml_path, NULL)->status, 1);
    assert_non_null(strstr(r.err, want));
    shm->hdr->layout_version = saved;
    shm->hdr->abi_fingerprint ^= 0xff;
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", NULL)->status, 1);
    assert_non_null(strstr(r.err, "ABI fingerprint"));
    assert_non_null(strstr(r.err, "another architecture or C library"));
    shm->hdr->abi_fingerprint ^= 0xff;
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 0);
    cbshm_close(shm);
}

static void test_cbctl_commands_are_clean_under_valgrind_memcheck(void **state)
{
    static const char *cmds[][4] = {
        {"apply", "-f", NULL, NULL},      {"list", "--json", NULL, NULL},
        {"show", "payments", NULL, NULL}, {"reset", "--all", NULL, NULL},
        {"open", "search", NULL, NULL},   {"check", NULL, NULL, NULL},
        {"show", "nope", NULL, NULL},     {"destroy", NULL, NULL, NULL}};
    char line[1024];

    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* valgrind cannot run a sanitizer build */
#endif
    if (system("command -v valgrind >/dev/null 2>&1") != 0)
        skip();
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(line, sizeof line,
                 "valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all "
                 "%s -s %s %s %s %s >/dev/null 2>/dev/null",
                 CBCTL_PATH, seg, cmds[i][0], cmds[i][1] ? cmds[i][1] : "",
                 cmds[i][2] ? cmds[i][2] : (i == 0 ? yaml_path : ""));
        int rc = system(line);
        if (!WIFEXITED(rc) || WEXITSTATUS(rc) == 99)
            fail_msg("valgrind found errors in: cbctl %s", cmds[i][0]);
    }
    /* and on a rejected file */
    snprintf(line, sizeof line,
             "valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all "
             "%s -s %s apply -f %s/tests/fixtures/bad-window.yaml >/dev/null 2>&1",
             CBCTL_PATH, seg, SOURCE_DIR);
    assert_int_equal(WEXITSTATUS(system(line)), 3);
}

static void test_32_racing_cbctl_applies_make_one_valid_segment(void **state)
{
    enum { N = 32 };
    int pids[N], created = 0, unchanged = 0;
    struct run r;
    char out[N][64];

    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(out[i], sizeof out[i], "/tmp/cbshm-race-%d-%d", (int)getpid(), i);
        if ((pids[i] = fork()) == 0) {
            int fd = open(out[i], O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 1);
            execl(CBCTL_PATH, "cbctl", "--segment", seg, "apply", "-f", yaml_path, (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < N; i++) {
        char buf[512] = "";
        int fd;
        ssize_t n;
        assert_int_equal(t_wait(pids[i]), 0);
        fd = open(out[i], O_RDONLY);
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        unlink(out[i]);
        buf[n > 0 ? n : 0] = '\0';
        created += strstr(buf, "create segment") != NULL;
        unchanged += strstr(buf, ": no changes") != NULL;
    }
    assert_int_equal(created, 1);
    assert_int_equal(unchanged, N - 1);
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 0);
}

static unsigned cbctl_segment_owner_uid(const char *name)
{
    char path[128];
    struct stat st;

    snprintf(path, sizeof path, "/dev/shm%s", name);
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)st.st_uid;
}

/* The names in dir, one a line after another, sorted by readdir's whim. */
static void dir_names(const char *dir, char *buf, size_t size)
{
    char cmd[256];
    FILE *p;
    size_t n;

    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    assert_non_null(p = popen(cmd, "r"));
    n = fread(buf, 1, size - 1, p);
    buf[n] = '\0';
    pclose(p);
}

static void slurp_path(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    t_slurp(fd, buf, size);
}

/*
 * metrics --output as root, on a segment another user owns: the file is
 * created by root in a directory only root may enter (0700), written by
 * the child switched to the owner, renamed by root after it: root's file,
 * whole, alone. A missing segment replaces it with cbshm_up 0 and exits 1;
 * a write that fails (a file-size limit, EFBIG) keeps the old file and
 * leaves no temporary file, switched or not.
 */
static void test_metrics_output_is_atomic_and_root_renames_what_the_owner_wrote(void **state)
{
    char dir[] = "/tmp/cbshm-metrics-XXXXXX", path[128], yaml[256], cmd[512], want[160];
    static char text[65536], old[65536];
    struct stat st;
    struct run r;
    FILE *f;

    (void)state;
    if (geteuid() != 0) {
        print_message("needs root: the owner switch\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/cbshm.prom", dir);
    snprintf(yaml, sizeof yaml, "%s-owned", yaml_path);
    assert_non_null(f = fopen(yaml, "w"));
    fputs("owner: 12345\ncapacity: 4\nbreakers:\n  - name: payments\n", f);
    fclose(f);
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", yaml, NULL)->status, 0);
    assert_int_equal(cbctl_segment_owner_uid(seg), 12345);

    assert_int_equal(cbctl(&r, "-s", seg, "metrics", "--output", path, NULL)->status, 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 0);
    slurp_path(path, text, sizeof text);
    snprintf(want, sizeof want, "cbshm_up{segment=\"%s\"} 1\n", seg);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "cbshm_breaker_state{"));
    assert_non_null(strstr(text, "cbshm_segment_lock_repairs_total{"));
    dir_names(dir, cmd, sizeof cmd);
    assert_string_equal(cmd, "cbshm.prom\n");

    /* A write that fails, in the switched child: the old file stays. */
    memcpy(old, text, sizeof old);
    snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f 1; exec %s -s %s metrics -o %s 2>&1",
             CBCTL_PATH, seg, path);
    assert_non_null(f = popen(cmd, "r"));
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    assert_int_equal(WEXITSTATUS(pclose(f)), 1);
    assert_non_null(strstr(text, "cbctl: metrics: --output "));
    assert_non_null(strstr(text, ": write: File too large"));
    slurp_path(path, text, sizeof text);
    assert_string_equal(text, old);
    dir_names(dir, cmd, sizeof cmd);
    assert_string_equal(cmd, "cbshm.prom\n");

    /* The segment gone: the file says so, and the exit status. */
    assert_int_equal(cbctl(&r, "-s", seg, "destroy", NULL)->status, 0);
    assert_int_equal(cbctl(&r, "-s", seg, "metrics", "--output", path, NULL)->status, 1);
    assert_non_null(strstr(r.err, "segment does not exist"));
    slurp_path(path, text, sizeof text);
    snprintf(want, sizeof want, "cbshm_up{segment=\"%s\"} 0\n", seg);
    assert_non_null(strstr(text, want));
    assert_null(strstr(text, "cbshm_breaker_state"));
    dir_names(dir, cmd, sizeof cmd);
    assert_string_equal(cmd, "cbshm.prom\n");

    /* A write that fails, not switched (no segment): the old file stays.
       SIGXFSZ is not ignored here: cbctl ignores it itself, so the write
       fails and the temporary file goes (it used to die, leaving it). */
    memcpy(old, text, sizeof old);
#ifdef __SANITIZE_THREAD__
    /* The thread sanitizer's signal handling delivers SIGXFSZ despite
       cbctl's SIG_IGN: there the shell ignores it for cbctl. */
    snprintf(cmd, sizeof cmd,
             "trap '' XFSZ; ulimit -f 0; exec %s -s %s metrics --output %s 2>/dev/null", CBCTL_PATH,
             seg, path);
#else
    snprintf(cmd, sizeof cmd, "ulimit -f 0; exec %s -s %s metrics --output %s 2>/dev/null",
             CBCTL_PATH, seg, path);
#endif
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
    slurp_path(path, text, sizeof text);
    assert_string_equal(text, old);
    dir_names(dir, cmd, sizeof cmd);
    assert_string_equal(cmd, "cbshm.prom\n");

    /* An invalid segment name is the caller's: no file written at all. */
    assert_int_equal(cbctl(&r, "-s", "/..", "metrics", "--output", path, NULL)->status, 1);
    slurp_path(path, text, sizeof text);
    assert_string_equal(text, old);
    unlink(path);
    unlink(yaml);
    assert_int_equal(rmdir(dir), 0);
}

static void test_a_symlinked_segment_name_is_not_followed(void **state)
{
    char target[80], path[128], tpath[128];
    struct run r;

    (void)state;
    apply_ok();
    snprintf(target, sizeof target, "%s-link", seg);
    snprintf(path, sizeof path, "/dev/shm%s", target);
    snprintf(tpath, sizeof tpath, "/dev/shm%s", seg);
    assert_int_equal(symlink(tpath, path), 0);
    assert_int_equal(cbctl(&r, "-s", target, "list", NULL)->status, 1);
    assert_non_null(strstr(r.err, "Too many levels of symbolic links"));
    assert_int_equal(cbctl(&r, "-s", target, "apply", "-f", yaml_path, NULL)->status, 1);
    unlink(path);
}

static void test_events_lists_changes_and_follow_streams_new_ones(void **state)
{
    struct run r;
    json_t *arr, *e;
    int out[2], pid, status;
    char buf[2048] = "";
    size_t got = 0;

    struct timespec ts;
    long long before_ms, after_ms, unix_ms;
    char iso[32];
    time_t sec;

    (void)state;
    apply_ok();
    clock_gettime(CLOCK_REALTIME, &ts);
    before_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_int_equal(cbctl(&r, "-s", seg, "open", "payments", NULL)->status, 0);
    assert_int_equal(cbctl(&r, "-s", seg, "reset", "search", NULL)->status, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    after_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_int_equal(cbctl(&r, "-s", seg, "events", "--json", NULL)->status, 0);
    assert_non_null(arr = json_loads(r.out, 0, NULL));
    assert_int_equal(json_array_size(arr), 2);
    e = json_array_get(arr, 0);
    /* The wall-clock time, with the monotonic one kept. */
    assert_true(json_is_integer(json_object_get(e, "time_ns")));
    unix_ms = json_integer_value(json_object_get(e, "time_unix_ms"));
    assert_true(unix_ms >= before_ms && unix_ms <= after_ms);
    assert_string_equal(json_string_value(json_object_get(e, "breaker")), "payments");
    assert_string_equal(json_string_value(json_object_get(e, "kind")), "mode");
    assert_string_equal(json_string_value(json_object_get(e, "to")), "forced_open");
    assert_string_equal(json_string_value(json_object_get(e, "cause")), "operator");
    e = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(e, "kind")), "reset");
    json_decref(arr);
    assert_int_equal(cbctl(&r, "-s", seg, "events", NULL)->status, 0);
    assert_non_null(strstr(r.out, "payments"));
    assert_non_null(strstr(r.out, "normal -> forced_open  (operator, pid"));
    /* ... and as ISO 8601 UTC, to the millisecond: the same instant. */
    sec = (time_t)(unix_ms / 1000);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", gmtime(&sec));
    snprintf(iso + strlen(iso), sizeof iso - strlen(iso), ".%03dZ ", (int)(unix_ms % 1000));
    if (strstr(r.out, iso) == NULL)
        fail_msg("no '%s' in:\n%s", iso, r.out);

    /* --follow: a change made while it runs is printed, SIGINT ends it. */
    assert_int_equal(pipe(out), 0);
    if ((pid = fork()) == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "events", "--follow", "--json", "--interval",
              "20", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    usleep(200000);
    assert_int_equal(cbctl(&r, "-s", seg, "close", "payments", NULL)->status, 0);
    for (int tries = 0; tries < 100 && strstr(buf, "forced_closed") == NULL; tries++) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t n = read(out[0], buf + got, sizeof buf - 1 - got);
            if (n > 0)
                got += (size_t)n;
            buf[got] = '\0';
        }
    }
    kill(pid, SIGINT);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(out[0]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(buf, "\"to\":\"forced_closed\""));
}

/* Reads the pty until `want` shows up (or 5 s pass); true if it did. */
static int pty_wait(int fd, char *buf, size_t size, size_t *got, const char *want)
{
    for (int tries = 0; tries < 100; tries++) {
        struct pollfd p = {fd, POLLIN, 0};
        buf[*got] = '\0';
        if (strstr(buf, want) != NULL)
            return 1;
        if (poll(&p, 1, 50) > 0) {
            ssize_t n = read(fd, buf + *got, size - 1 - *got);
            if (n <= 0)
                return 0;
            *got += (size_t)n;
            if (*got > size / 2) { /* keep the tail */
                memmove(buf, buf + *got - size / 4, size / 4);
                *got = size / 4;
            }
        }
    }
    buf[*got] = '\0';
    return strstr(buf, want) != NULL;
}

static void test_watch_colours_states_on_a_terminal_and_quits_on_q(void **state)
{
    static char buf[65536];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    size_t got = 0;
    int master, pid, status;

    (void)state;
    apply_ok();
    if ((pid = forkpty(&master, NULL, NULL, NULL)) == 0) {
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "watch", "--interval", "50", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    assert_true(pty_wait(master, buf, sizeof buf, &got, "q quits"));
    assert_true(pty_wait(master, buf, sizeof buf, &got, "\033[32mclosed"));
    /* Trip payments: the next frame shows it open, in red. */
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "payments", &b), 0);
    for (int i = 0; i < 3; i++)
        cbshm_execute(b, t_fail_fn, NULL);
    assert_true(pty_wait(master, buf, sizeof buf, &got, "\033[1;31mopen"));
    assert_int_equal(write(master, "q", 1), 1);
    assert_true(pty_wait(master, buf, sizeof buf, &got, "\033[?25h")); /* cursor given back */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(master);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

static void test_watch_ends_cleanly_on_sigterm_and_prints_plain_tables_off_a_terminal(void **state)
{
    struct run r;

    (void)state;
    apply_ok();
    assert_int_equal(
        cbctl(&r, "-s", seg, "watch", "--count", "2", "--interval", "50", NULL)->status, 0);
    assert_non_null(strstr(r.out, "payments"));
    assert_null(strstr(r.out, "\033["));
    assert_int_equal(cbctl(&r, "-s", seg, "watch", "--interval", "5", NULL)->status, 2);
}

/* Writes len bytes of text to /tmp/cbshm-cli-<pid>-<tag>.yaml; path gets
   its name. */
static void write_yaml(char *path, size_t size, const char *tag, const char *text, size_t len)
{
    FILE *f;

    snprintf(path, size, "/tmp/cbshm-cli-%d-%s.yaml", (int)getpid(), tag);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Input past the limits is a rejected configuration: exit 3, FILE:LINE:COL
   and what is wrong, for apply and apply --dry-run; nothing is created. A
   deep document is refused at once (100000 '[' took 15 s). */
static void test_apply_refuses_input_past_the_limits_with_exit_3_and_the_position(void **state)
{
    static const char raw_nul[] = "breakers:\n  - name: a\0b\n";
    static const struct {
        const char *tag, *text, *expect;
        size_t len;
    } cases[] = {
        {"nul", "breakers:\n  - name: \"a\\0b\"\n",
         ":2:11: a key or value may not contain a NUL character (\\0)\n", 0},
        {"rawnul", raw_nul,
         ":2:12: YAML syntax error: control characters are not allowed (a NUL byte)\n",
         sizeof raw_nul - 1},
        {"group", "mode: \"0660\"\nbreakers:\n  - name: a\n",
         ":1:7: mode: mode 0660 is writable by its group, but no group is configured\n", 0},
    };
    size_t deep_levels = 100000, head = strlen("capacity: ");
    char path[128], want[256], *deep = malloc(head + deep_levels);
    struct timespec t0, t1;
    struct run r, dry;
    int fd;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_yaml(path, sizeof path, cases[i].tag, cases[i].text,
                   cases[i].len != 0 ? cases[i].len : strlen(cases[i].text));
        snprintf(want, sizeof want, "%s%s", path, cases[i].expect);
        cbctl(&r, "-s", seg, "apply", "-f", path, NULL);
        cbctl(&dry, "-s", seg, "apply", "--dry-run", "-f", path, NULL);
        unlink(path);
        assert_int_equal(r.status, 3);
        assert_string_equal(r.err, want);
        assert_string_equal(r.out, "");
        assert_int_equal(dry.status, 3);
        assert_string_equal(dry.err, want);
    }

    assert_non_null(deep);
    memcpy(deep, "capacity: ", head);
    memset(deep + head, '[', deep_levels);
    write_yaml(path, sizeof path, "deep", deep, head + deep_levels);
    free(deep);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cbctl(&r, "-s", seg, "apply", "-f", path, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unlink(path);
    /* The mapping is the first level; the 64th '[' opens the 65th. */
    snprintf(want, sizeof want, "%s:1:74: lists and mappings nested more than 64 deep\n", path);
    assert_int_equal(r.status, 3);
    assert_string_equal(r.err, want);
    if ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 > 1.0)
        fail_msg("cbctl apply of 100000 '[' took over a second");

    /* Sparse, so the test writes nothing: 17 MiB of NULs. */
    snprintf(path, sizeof path, "/tmp/cbshm-cli-%d-big.yaml", (int)getpid());
    assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
    assert_int_equal(ftruncate(fd, (off_t)17 << 20), 0);
    close(fd);
    cbctl(&r, "-s", seg, "apply", "-f", path, NULL);
    unlink(path);
    assert_int_equal(r.status, 3);
    snprintf(want, sizeof want,
             "%s:1:16777217: the configuration is over the size limit of 16 MiB (16777216 "
             "bytes)\n",
             path);
    assert_string_equal(r.err, want);

    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", "/tmp", NULL)->status, 1);
    assert_string_equal(r.err, "cbctl: apply: /tmp: is a directory\n");
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 1); /* nothing was created */
}

/* Applies text as this test's configuration (in the segment seg). */
static void apply_text(const char *tag, const char *text)
{
    char path[160];
    struct run r;

    write_yaml(path, sizeof path, tag, text, strlen(text));
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", path, NULL)->status, 0);
    unlink(path);
}

static void fail_times(struct cbshm *shm, const char *name, int n)
{
    struct cbshm_breaker *b;

    assert_int_equal(cbshm_breaker_get(shm, name, &b), 0);
    for (int i = 0; i < n; i++)
        cbshm_execute(b, t_fail_fn, NULL);
    cbshm_breaker_release(b);
}

/* The line of out that starts with name and a space, copied to line. */
static int line_of(const char *out, const char *name, char *line, size_t size)
{
    size_t len = strlen(name);

    for (const char *p = out; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, name, len) == 0 && p[len] == ' ') {
            const char *end = strchr(p, '\n');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            snprintf(line, size, "%.*s", (int)(n < size ? n : size - 1), p);
            return 1;
        }
    }
    return 0;
}

/* Elapsed and remaining times read as durations (1m19s, 2h3m); --json keeps
   milliseconds under the same keys. */
static void test_list_show_and_watch_print_durations_as_an_operator_reads_them(void **state)
{
    struct cbshm *shm;
    struct run r;
    json_t *o;

    (void)state;
    apply_text("durations",
               "capacity: 16\nbreakers:\n"
               "  - name: payments\n    failure_threshold: 1\n"
               "    open_timeout: 79435ms\n"
               "  - name: search\n    failure_threshold: 1\n    open_timeout: 7384s\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    fail_times(shm, "payments", 1);
    fail_times(shm, "search", 1);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", NULL)->status, 0);
    assert_non_null(strstr(r.out, "open for another:     1m19s\n"));
    assert_non_null(strstr(r.out, "open period now:      1m19s\n"));
    /* A setting stays as the YAML writes it. */
    assert_non_null(strstr(r.out, "open_timeout:         79435ms\n"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "search", NULL)->status, 0);
    assert_non_null(strstr(r.out, "open for another:     2h3m\n"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "payments", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_int_equal(json_integer_value(json_object_get(o, "current_open_ms")), 79435);
    assert_true(json_integer_value(json_object_get(o, "open_remaining_ms")) > 79000);
    json_decref(o);
    /* A timed mode's end, in list and in watch. */
    assert_int_equal(cbctl(&r, "-s", seg, "close", "--for", "79435ms", "payments", NULL)->status,
                     0);
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    assert_non_null(strstr(r.out, "(forced_closed for another 1m19s)"));
    assert_int_equal(cbctl(&r, "-s", seg, "watch", "--count", "1", NULL)->status, 0);
    assert_non_null(strstr(r.out, "(forced_closed for another 1m19s)"));
    cbshm_close(shm);
}

/* Open, its open period over, no probe yet: the next call is a probe, and
   list, show, watch, JSON and metrics say so; a probe in flight, a breaker
   still inside its open period and a forced-open one are not due. */
static void test_an_open_breaker_past_its_open_period_shows_probe_due(void **state)
{
    static const char *json_cmds[][4] = {{"show", "--json", "quick", NULL},
                                         {"list", "--json", NULL, NULL}};
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    struct run r;
    char line[256], want[160];
    json_t *doc;

    (void)state;
    apply_text("due", "capacity: 16\nbreakers:\n"
                      "  - name: quick\n    failure_threshold: 1\n    open_timeout: 1ms\n"
                      "  - name: slow\n    failure_threshold: 1\n    open_timeout: 1h\n"
                      "  - name: forced\n    failure_threshold: 1\n    open_timeout: 1ms\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    fail_times(shm, "quick", 1);
    fail_times(shm, "slow", 1);
    fail_times(shm, "forced", 1);
    assert_int_equal(cbctl(&r, "-s", seg, "open", "forced", NULL)->status, 0);
    usleep(30000);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "quick", NULL)->status, 0);
    assert_non_null(strstr(r.out, "state:                open, probe due (for "));
    assert_null(strstr(r.out, "open for another:"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "slow", NULL)->status, 0);
    assert_non_null(strstr(r.out, "state:                open (for "));
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    assert_true(line_of(r.out, "quick", line, sizeof line));
    assert_non_null(strstr(line, " open, probe due "));
    assert_true(line_of(r.out, "slow", line, sizeof line));
    assert_null(strstr(line, "probe due"));
    assert_true(line_of(r.out, "forced", line, sizeof line));
    assert_null(strstr(line, "probe due"));
    assert_int_equal(cbctl(&r, "-s", seg, "watch", "--count", "1", NULL)->status, 0);
    assert_true(line_of(r.out, "quick", line, sizeof line));
    assert_non_null(strstr(line, " open, probe due "));
    for (size_t c = 0; c < 2; c++) {
        json_t *quick;
        assert_int_equal(
            cbctl(&r, "-s", seg, json_cmds[c][0], json_cmds[c][1], json_cmds[c][2], NULL)->status,
            0);
        assert_non_null(doc = json_loads(r.out, 0, NULL));
        quick = json_is_array(doc) ? json_array_get(doc, 0) : doc;
        assert_string_equal(json_string_value(json_object_get(quick, "state")), "open");
        assert_true(json_is_true(json_object_get(quick, "probe_due")));
        if (json_is_array(doc)) {
            assert_true(json_is_false(json_object_get(json_array_get(doc, 1), "probe_due")));
            assert_true(json_is_false(json_object_get(json_array_get(doc, 2), "probe_due")));
        }
        json_decref(doc);
    }
    assert_int_equal(cbctl(&r, "-s", seg, "metrics", NULL)->status, 0);
    assert_non_null(strstr(r.out, "# TYPE cbshm_breaker_probe_due gauge\n"));
    snprintf(want, sizeof want, "cbshm_breaker_probe_due{segment=\"%s\",breaker=\"quick\"} 1\n",
             seg);
    assert_non_null(strstr(r.out, want));
    snprintf(want, sizeof want, "cbshm_breaker_probe_due{segment=\"%s\",breaker=\"slow\"} 0\n",
             seg);
    assert_non_null(strstr(r.out, want));
    snprintf(want, sizeof want, "cbshm_breaker_probe_due{segment=\"%s\",breaker=\"forced\"} 0\n",
             seg);
    assert_non_null(strstr(r.out, want));
    /* The probe is taken and still running: no longer due. */
    assert_int_equal(cbshm_breaker_get(shm, "quick", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "quick", NULL)->status, 0);
    assert_non_null(doc = json_loads(r.out, 0, NULL));
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "half_open");
    assert_true(json_is_false(json_object_get(doc, "probe_due")));
    json_decref(doc);
    cbshm_record(b, &t, CBSHM_SUCCESS);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

/* The header line of a list or watch table. */
static void header_of(const char *out, char *line, size_t size)
{
    assert_true(line_of(out, "NAME", line, size));
}

/* list and watch print one table: the same columns, watch adding the
   rates; a rate breaker's limit is its rate and window, not a failure run;
   WORKERS appears only where a quorum is configured. */
static void test_list_and_watch_show_the_same_columns_and_only_the_ones_that_apply(void **state)
{
    struct cbshm *shm;
    struct run r;
    char list_header[512], watch_header[512], line[256];
    char *rates;

    (void)state;
    apply_text("columns", "capacity: 16\nbreakers:\n"
                          "  - name: payments\n    failure_threshold: 5\n"
                          "  - name: search\n    policy: rate\n    failure_rate: 40\n"
                          "    window_size: 20\n"
                          "  - name: users\n    policy: rate\n    window_type: time\n"
                          "    window_duration: 2m\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    fail_times(shm, "payments", 2);
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    header_of(r.out, list_header, sizeof list_header);
    assert_null(strstr(list_header, "WORKERS"));
    assert_true(line_of(r.out, "payments", line, sizeof line));
    assert_non_null(strstr(line, " 2/5 "));
    assert_true(line_of(r.out, "search", line, sizeof line));
    assert_non_null(strstr(line, " 0%/40% of 20 "));
    assert_null(strstr(line, "/5 "));
    assert_true(line_of(r.out, "users", line, sizeof line));
    assert_non_null(strstr(line, " 0%/50% in 2m "));
    assert_int_equal(cbctl(&r, "-s", seg, "watch", "--count", "1", NULL)->status, 0);
    header_of(r.out, watch_header, sizeof watch_header);
    /* watch's header is list's with the two rates before IN-STATE. */
    assert_non_null(rates = strstr(watch_header, "    REQ/S   FAIL/S"));
    memmove(rates, rates + strlen("    REQ/S   FAIL/S"), strlen(rates + 18) + 1);
    assert_string_equal(watch_header, list_header);
    assert_true(line_of(r.out, "search", line, sizeof line));
    assert_non_null(strstr(line, " 0%/40% of 20 "));
    /* A quorum somewhere: the column, with "-" where there is none. */
    apply_text("columns-quorum", "capacity: 16\nbreakers:\n"
                                 "  - name: payments\n    failure_threshold: 5\n"
                                 "    min_failing_workers: 3\n"
                                 "  - name: search\n    policy: rate\n    failure_rate: 40\n"
                                 "    window_size: 20\n"
                                 "  - name: users\n    policy: rate\n    window_type: time\n"
                                 "    window_duration: 2m\n");
    fail_times(shm, "payments", 2); /* one failing worker: this process */
    for (int w = 0; w < 2; w++) {
        assert_int_equal(
            cbctl(&r, "-s", seg, w ? "watch" : "list", w ? "--count" : NULL, "1", NULL)->status, 0);
        header_of(r.out, line, sizeof line);
        assert_non_null(strstr(line, " WORKERS "));
        assert_true(line_of(r.out, "payments", line, sizeof line));
        assert_non_null(strstr(line, " 1/3 "));
        assert_true(line_of(r.out, "search", line, sizeof line));
        assert_non_null(strstr(line, " - "));
    }
    cbshm_close(shm);
}

/* The REQ/S and FAIL/S tokens of the last payments row in buf. */
static int last_rates(const char *buf, double *req, double *fail)
{
    const char *p = NULL, *q = buf;
    char copy[512], *tok, *save;
    double v[16];
    int n = 0;

    while ((q = strstr(q, "\npayments ")) != NULL)
        p = ++q;
    if (p == NULL || strchr(p, '\n') == NULL) /* no complete row yet */
        return 0;
    snprintf(copy, sizeof copy, "%.*s", (int)(strchr(p, '\n') - p), p);
    /* ... REQ/S FAIL/S IN-STATE, counted from the end: the colour codes
       around the state are tokens of their own. */
    for (tok = strtok_r(copy, " \r", &save); tok != NULL && n < 16;
         tok = strtok_r(NULL, " \r", &save))
        v[n++] = strcmp(tok, "-") == 0 ? -1 : strtod(tok, NULL);
    if (n < 11)
        return 0;
    *req = v[n - 3];
    *fail = v[n - 2];
    return 1;
}

/* What the pty has within 100 ms, appended to buf. */
static void pty_read_some(int fd, char *buf, size_t size, size_t *got)
{
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t n;

    if (poll(&p, 1, 100) > 0 && *got < size - 1 && (n = read(fd, buf + *got, size - 1 - *got)) > 0)
        *got += (size_t)n;
    buf[*got] = '\0';
}

/* watch on a terminal: requests and failures per second between two frames,
   "-" before there are two. */
static void test_watch_shows_requests_and_failures_per_second_between_frames(void **state)
{
    static char buf[65536];
    struct cbshm *shm;
    size_t got = 0;
    int master, pid, status;
    double req = -1, fail = -1;

    (void)state;
    apply_text("rates", "capacity: 16\nbreakers:\n  - name: payments\n"
                        "    failure_threshold: 100000\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    if ((pid = forkpty(&master, NULL, NULL, NULL)) == 0) {
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "watch", "--interval", "500", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    assert_true(pty_wait(master, buf, sizeof buf, &got, "q quits"));
    assert_true(pty_wait(master, buf, sizeof buf, &got, "IN-STATE"));
    assert_true(pty_wait(master, buf, sizeof buf, &got, "\npayments "));
    assert_true(pty_wait(master, buf, sizeof buf, &got, "ms\r\n"));
    assert_true(last_rates(buf, &req, &fail));
    assert_true(req < 0 && fail < 0); /* the first frame has no rate */
    fail_times(shm, "payments", 200);
    /* The next frame: 200 failures in about 0.5 s. */
    got = 0;
    buf[0] = '\0';
    for (int tries = 0; tries < 50 && !(last_rates(buf, &req, &fail) && req > 0); tries++)
        pty_read_some(master, buf, sizeof buf, &got);
    assert_true(req > 100 && req < 1000);
    assert_true(fail > 100 && fail < 1000);
    assert_true(req == fail);
    assert_int_equal(write(master, "q", 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(master);
    cbshm_close(shm);
}

/* --segment after the command works as before it, on every command, and is in each one's help. */
static void test_the_segment_option_works_after_the_command_too(void **state)
{
    static struct names cmds, global;
    static struct run before, r;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&before, "--segment", seg, "list", NULL)->status, 0);
    /* The same table (its IN-STATE column moves on between the runs). */
    assert_non_null(strstr(before.out, "\npayments "));
    assert_int_equal(cbctl(&r, "list", "--segment", seg, NULL)->status, 0);
    assert_true(strstr(r.out, "\npayments ") != NULL && strstr(r.out, "\nsearch ") != NULL);
    assert_int_equal(cbctl(&r, "list", "-s", seg, NULL)->status, 0);
    assert_true(strstr(r.out, "\npayments ") != NULL && strstr(r.out, "\nsearch ") != NULL);
    assert_int_equal(cbctl(&r, "show", "payments", "-s", seg, "-j", NULL)->status, 0);
    assert_non_null(strstr(r.out, "\"payments\""));
    /* Given twice, the later one counts. */
    assert_int_equal(cbctl(&r, "-s", "/cbshm-cli-no-such-segment", "list", "-s", seg, NULL)->status,
                     0);
    assert_true(strstr(r.out, "\npayments ") != NULL && strstr(r.out, "\nsearch ") != NULL);
    assert_int_equal(cbctl(&r, "reset", "--all", "--segment", seg, NULL)->status, 0);
    assert_int_equal(cbctl(&r, "list", "--segment", "", NULL)->status, 2);
    assert_non_null(strstr(r.err, "cbctl: list: --segment wants a segment name such as /cbshm"));
    cmds.n = global.n = 0;
    table_commands(&cmds, &global);
    assert_true(names_has(&global, "--segment") && names_has(&global, "-s"));
    for (size_t i = 0; i < cmds.n; i++) {
        struct names opts = {.n = 0};
        table_options(cmds.v[i], &opts);
        if (!names_has(&opts, "--segment") || !names_has(&opts, "-s"))
            fail_msg("cbctl %s --help does not list -s, --segment", cmds.v[i]);
    }
    /* destroy, which handles the segment itself, takes it after the command as well. */
    assert_int_equal(cbctl(&r, "destroy", "-s", seg, NULL)->status, 0);
    assert_int_equal(cbctl(&r, "list", "-s", seg, NULL)->status, 1);
}

/* A segment name without its '/' is a usage error that says what was meant. */
static void test_a_segment_name_without_its_slash_gets_a_hint(void **state)
{
    struct run r;
    char yaml[160], want[256];
    FILE *f;

    (void)state;
    assert_int_equal(cbctl(&r, "-s", "cbshm-app", "list", NULL)->status, 2);
    assert_string_equal(r.err, "cbctl: list: segment name 'cbshm-app' must start with '/': did "
                               "you mean '/cbshm-app'?\n");
    assert_int_equal(cbctl(&r, "show", "x", "--segment", "cbshm-app", NULL)->status, 2);
    assert_string_equal(r.err, "cbctl: show: segment name 'cbshm-app' must start with '/': did "
                               "you mean '/cbshm-app'?\n");
    assert_int_equal(cbctl(&r, "destroy", "-s", "cbshm-app", NULL)->status, 2);
    assert_non_null(strstr(r.err, "did you mean '/cbshm-app'?"));
    /* From the environment too. */
    setenv("CBSHM_SEGMENT", "cbshm-app", 1);
    cbctl(&r, "metrics", NULL);
    unsetenv("CBSHM_SEGMENT");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "cbctl: metrics: segment name 'cbshm-app' must start with '/'"));
    /* A name wrong in other ways as well is not given a wrong fix. */
    assert_int_equal(cbctl(&r, "-s", "a b", "list", NULL)->status, 2);
    assert_null(strstr(r.err, "did you mean"));
    assert_non_null(strstr(r.err, "invalid segment name 'a b'"));
    /* The YAML's segment: the loader's message, exit 3. */
    snprintf(yaml, sizeof yaml, "/tmp/cbshm-cli-slash-%d.yaml", (int)getpid());
    assert_non_null(f = fopen(yaml, "w"));
    fputs("segment: cbshm-app\nbreakers:\n  - name: a\n", f);
    fclose(f);
    cbctl(&r, "apply", "-f", yaml, NULL);
    unlink(yaml);
    assert_int_equal(r.status, 3);
    snprintf(want, sizeof want,
             "%s:1:10: segment: segment name 'cbshm-app' must start with '/': did you mean "
             "'/cbshm-app'?\n",
             yaml);
    assert_string_equal(r.err, want);
}

/* An unknown key says what it may have meant, another breaker's name included. */
static void test_an_unknown_yaml_key_gets_a_did_you_mean(void **state)
{
    struct run r;
    char yaml[160], want[320];
    FILE *f;

    (void)state;
    snprintf(yaml, sizeof yaml, "/tmp/cbshm-cli-peer-%d.yaml", (int)getpid());
    assert_non_null(f = fopen(yaml, "w"));
    fputs("capacity: 4\nbreakers:\n  - name: payments\n    fail_max: 5\n", f);
    fclose(f);
    cbctl(&r, "--segment", seg, "apply", "-f", yaml, NULL);
    assert_int_equal(r.status, 3);
    snprintf(want, sizeof want,
             "%s:4:5: breakers[0].fail_max: unknown key 'fail_max' (pybreaker's name): did you "
             "mean 'failure_threshold'?\n",
             yaml);
    assert_string_equal(r.err, want);
    assert_non_null(f = fopen(yaml, "w"));
    fputs("capasity: 4\n", f);
    fclose(f);
    cbctl(&r, "--segment", seg, "apply", "-f", yaml, NULL);
    unlink(yaml);
    assert_int_equal(r.status, 3);
    snprintf(want, sizeof want,
             "%s:1:1: capasity: unknown key 'capasity': did you mean 'capacity'?\n", yaml);
    assert_string_equal(r.err, want);
}

/* Output that cannot be written (a full disk) is a failure, exit 1, for
   every command that prints; they used to exit 0 with nothing written. */
static void test_a_command_whose_output_cannot_be_written_fails(void **state)
{
    static const char *const cmds[] = {
        "list",          "list --json", "show payments", "show --json payments",
        "events --json", "check",       "metrics"};
    char cmd[512];

    (void)state;
    apply_ok();
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s -s %s %s >/dev/full 2>/dev/null", CBCTL_PATH, seg, cmds[i]);
        int rc = system(cmd);
        if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 1)
            fail_msg("cbctl %s > /dev/full: exit %d, not 1", cmds[i], WEXITSTATUS(rc));
    }
}

/* ---- The bulkhead, as cbctl shows and changes it ------------------------ */

static const char bulk_yaml[] = "capacity: 16\nbreakers:\n"
                                "  - name: payments\n    max_concurrent_calls: 4\n"
                                "  - name: search\n";

/* A forked process takes a payments slot and dies without recording. */
static void die_holding_a_slot(void)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        struct cbshm *shm;
        struct cbshm_breaker *b;
        struct cbshm_ticket t;
        if (cbshm_open(seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "payments", &b) != 0 ||
            cbshm_allow(b, &t) != 0)
            _exit(1);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void assert_bulkhead_json(json_t *o, json_int_t limit, json_int_t in_flight,
                                 json_int_t rejections, json_int_t reclaimed, json_int_t waits)
{
    static const char *const keys[] = {"bulkhead_limit", "bulkhead_in_flight",
                                       "bulkhead_rejections", "bulkhead_reclaimed",
                                       "bulkhead_waits"};
    const json_int_t want[] = {limit, in_flight, rejections, reclaimed, waits};

    for (size_t k = 0; k < 5; k++) {
        json_t *v = json_object_get(o, keys[k]);
        if (!json_is_integer(v) || json_integer_value(v) != want[k])
            fail_msg("%s: %s, not %lld", keys[k], v ? "another value" : "missing",
                     (long long)want[k]);
    }
}

/* A breaker with a bulkhead shows its limit, its calls in flight and its
   counts in list, watch, show, their JSON and metrics; one without shows
   none, and without any bulkhead there is no BULKHEAD column at all. */
static void test_list_show_watch_json_and_metrics_show_the_bulkhead(void **state)
{
    static const char *const families[][2] = {
        {"cbshm_bulkhead_limit", "gauge"},
        {"cbshm_bulkhead_in_flight", "gauge"},
        {"cbshm_bulkhead_rejections_total", "counter"},
        {"cbshm_bulkhead_reclaimed_total", "counter"},
        {"cbshm_bulkhead_waits_total", "counter"},
    };
    static const char *const values[][2] = {
        {"4", "0"}, {"3", "0"}, {"2", "0"}, {"1", "0"}, {"0", "0"}};
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t[4], extra;
    struct run r;
    char line[512], want[256];
    json_t *doc;

    (void)state;
    apply_ok();
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    header_of(r.out, line, sizeof line);
    assert_null(strstr(line, "BULKHEAD"));
    apply_text("bulk-show", bulk_yaml);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "payments", &b), 0);
    /* 3 of 4 in flight, after 2 rejections and a dead holder taken back. */
    die_holding_a_slot();
    for (int i = 0; i < 3; i++)
        assert_int_equal(cbshm_allow(b, &t[i]), 0);
    assert_int_equal(cbshm_allow(b, &t[3]), 0); /* the dead one's slot */
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);
    cbshm_record(b, &t[3], CBSHM_SUCCESS);

    for (int w = 0; w < 2; w++) {
        assert_int_equal(
            cbctl(&r, "-s", seg, w ? "watch" : "list", w ? "--count" : NULL, "1", NULL)->status, 0);
        header_of(r.out, line, sizeof line);
        assert_non_null(strstr(line, " TRIPS BULKHEAD "));
        assert_true(line_of(r.out, "payments", line, sizeof line));
        if (strstr(line, " 3/4 ") == NULL)
            fail_msg("no 3/4 in: %s", line);
        assert_true(line_of(r.out, "search", line, sizeof line));
        assert_non_null(strstr(line, " - "));
    }
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", NULL)->status, 0);
    assert_non_null(strstr(r.out, "\nbulkhead:             3 of 4 in flight, 2 rejected, "
                                  "1 reclaimed, 0 waited\n"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "search", NULL)->status, 0);
    assert_null(strstr(r.out, "\nbulkhead:"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "payments", NULL)->status, 0);
    assert_non_null(doc = json_loads(r.out, 0, NULL));
    assert_bulkhead_json(doc, 4, 3, 2, 1, 0);
    json_decref(doc);
    assert_int_equal(cbctl(&r, "-s", seg, "list", "--json", NULL)->status, 0);
    assert_non_null(doc = json_loads(r.out, 0, NULL));
    assert_bulkhead_json(json_array_get(doc, 0), 4, 3, 2, 1, 0);
    assert_bulkhead_json(json_array_get(doc, 1), 0, 0, 0, 0, 0);
    json_decref(doc);

    assert_int_equal(cbctl(&r, "-s", seg, "metrics", NULL)->status, 0);
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        snprintf(want, sizeof want, "\n# TYPE %s %s\n", families[f][0], families[f][1]);
        assert_non_null(strstr(r.out, want));
        snprintf(want, sizeof want, "\n# HELP %s ", families[f][0]);
        assert_non_null(strstr(r.out, want));
        snprintf(want, sizeof want, "\n%s{segment=\"%s\",breaker=\"payments\"} %s\n",
                 families[f][0], seg, values[f][0]);
        if (strstr(r.out, want) == NULL)
            fail_msg("no %s", want + 1);
        snprintf(want, sizeof want, "\n%s{segment=\"%s\",breaker=\"search\"} %s\n", families[f][0],
                 seg, values[f][1]);
        assert_non_null(strstr(r.out, want));
    }
    for (int i = 0; i < 3; i++)
        cbshm_record(b, &t[i], CBSHM_SUCCESS);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

/* A bulkhead that starts rejecting and admits again is two events, in
   the words of enum cbshm_bulkhead_state, caused by "bulkhead". */
static void test_events_name_the_bulkhead_filling_and_admitting_again(void **state)
{
    struct timespec now;
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t, extra;
    struct run r;
    json_t *arr, *e;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &now);
    t_clock_install((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
    apply_text("bulk-events", "capacity: 16\nbreakers:\n"
                              "  - name: payments\n    max_concurrent_calls: 1\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "payments", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);
    cbshm_record(b, &t, CBSHM_SUCCESS);
    /* A second without a rejection: the next admission says so. */
    t_clock_advance_ms(1500);
    assert_int_equal(cbshm_allow(b, &t), 0);
    cbshm_record(b, &t, CBSHM_SUCCESS);
    cbshm_clock_set(NULL, NULL);

    assert_int_equal(cbctl(&r, "-s", seg, "events", "--json", NULL)->status, 0);
    assert_non_null(arr = json_loads(r.out, 0, NULL));
    assert_int_equal(json_array_size(arr), 2);
    for (size_t i = 0; i < 2; i++) {
        e = json_array_get(arr, i);
        assert_string_equal(json_string_value(json_object_get(e, "breaker")), "payments");
        assert_string_equal(json_string_value(json_object_get(e, "kind")), "bulkhead");
        assert_string_equal(json_string_value(json_object_get(e, "from")),
                            i == 0 ? "admitting" : "full");
        assert_string_equal(json_string_value(json_object_get(e, "to")),
                            i == 0 ? "full" : "admitting");
        assert_string_equal(json_string_value(json_object_get(e, "cause")), "bulkhead");
        assert_int_equal(json_integer_value(json_object_get(e, "pid")), getpid());
    }
    json_decref(arr);
    assert_int_equal(cbctl(&r, "-s", seg, "events", NULL)->status, 0);
    if (strstr(r.out, " payments                         bulkhead admitting -> full  (bulkhead, "
                      "pid ") == NULL ||
        strstr(r.out, " bulkhead full -> admitting  (bulkhead, pid ") == NULL)
        fail_msg("no bulkhead events in:\n%s", r.out);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

static uint32_t in_flight_of(struct cbshm *shm, const char *name)
{
    struct cbshm_snapshot s;

    assert_int_equal(cbshm_snapshot(shm, name, &s), 0);
    return s.bulkhead_in_flight;
}

/* Applies bulk_yaml with payments' limit at `limit`; cbctl's output in r. */
static void apply_bulk_limit(unsigned limit, struct run *r)
{
    char text[256], path[160];

    snprintf(text, sizeof text,
             "capacity: 16\nbreakers:\n  - name: payments\n    max_concurrent_calls: %u\n"
             "  - name: search\n",
             limit);
    write_yaml(path, sizeof path, "bulk-limit", text, strlen(text));
    assert_int_equal(cbctl(r, "-s", seg, "apply", "-f", path, NULL)->status, 0);
    unlink(path);
}

/* cbctl apply lowers and raises the limit of a live bulkhead: the calls
   in flight stay counted, a lowered limit refuses calls until fewer than
   it are in flight, whichever slots the calls still running hold, and a
   raised one admits the difference at once. */
static void test_apply_changes_the_bulkhead_limit_live_keeping_calls_in_flight(void **state)
{
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket held[6], extra;
    struct cbshm_rejection why;
    struct cbshm_snapshot s;
    struct run r;

    (void)state;
    apply_bulk_limit(4, &r);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "payments", &b), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cbshm_allow(b, &held[i]), 0);

    apply_bulk_limit(2, &r);
    assert_non_null(strstr(r.out, "update breaker payments: max_concurrent_calls 4 -> 2\n"));
    assert_int_equal(cbshm_snapshot(shm, "payments", &s), 0);
    assert_int_equal(s.bulkhead_limit, 2);
    assert_int_equal(s.bulkhead_in_flight, 3);
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);
    assert_int_equal(cbshm_breaker_rejection(b, &why), 0);
    assert_int_equal(why.why, CBSHM_REFUSAL_BULKHEAD_FULL);
    /* The first call ends, the one that took the lowest slot: 2 still in
       flight, the limit. */
    cbshm_record(b, &held[0], CBSHM_SUCCESS);
    assert_int_equal(in_flight_of(shm, "payments"), 2);
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);
    assert_int_equal(in_flight_of(shm, "payments"), 2);
    /* Below the limit: one more gets in, and then it is full again. */
    cbshm_record(b, &held[1], CBSHM_SUCCESS);
    assert_int_equal(cbshm_allow(b, &held[0]), 0);
    assert_int_equal(in_flight_of(shm, "payments"), 2);
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);

    /* Raised to 6 with held[0] and held[2] running: four more at once. */
    apply_bulk_limit(6, &r);
    assert_non_null(strstr(r.out, "update breaker payments: max_concurrent_calls 2 -> 6\n"));
    assert_int_equal(in_flight_of(shm, "payments"), 2);
    assert_int_equal(cbshm_allow(b, &held[1]), 0);
    for (int i = 3; i < 6; i++)
        assert_int_equal(cbshm_allow(b, &held[i]), 0);
    assert_int_equal(in_flight_of(shm, "payments"), 6);
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);
    for (int i = 0; i < 6; i++)
        cbshm_record(b, &held[i], CBSHM_SUCCESS);
    assert_int_equal(in_flight_of(shm, "payments"), 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

/* Held bulkhead slots check clean; a slot word that no real call can have
   written (no process; a time past the clock) and a worker entry with no
   process are named, breaker and slot; scribbled bulkhead words crash
   neither cbctl nor a caller. */
static void test_check_names_impossible_bulkhead_holders_and_workers(void **state)
{
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t[2], extra;
    struct cbshm_snapshot s;
    struct cbshm_slot *sl;
    struct run r;
    uint64_t now;
    char line[512];

    (void)state;
    apply_text("bulk-check", bulk_yaml);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "payments", &b), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(cbshm_allow(b, &t[i]), 0);
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 0);
    /* This process called through it: one worker. */
    if (strstr(r.out, ": ok: ") == NULL || strstr(r.out, " lock repairs, 1 worker\n") == NULL)
        fail_msg("check: %s%s", r.out, r.err);

    assert_int_equal(cbshm_snapshot(shm, "payments", &s), 0);
    sl = &shm->slots[s.index];
    now = cbshm__now();
    atomic_store(&sl->bulk_slots[5], CBSHM_STAMP(now, 0));
    atomic_store(&sl->bulk_slots[6], CBSHM_STAMP(now + 30000000000ull, getpid())); /* 30 s: ok */
    atomic_store(&sl->bulk_slots[7], CBSHM_STAMP(now + 120000000000ull, getpid()));
    atomic_store(&shm->hdr->workers[200], CBSHM_STAMP(now, 0));
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 1);
    assert_string_equal(r.out, "");
    if (strstr(r.err, "breaker payments: bulkhead slot 5 is held by no process (pid 0)\n") ==
            NULL ||
        strstr(r.err, "breaker payments: bulkhead slot 7 is stamped 120 s ahead of the clock\n") ==
            NULL ||
        strstr(r.err, "worker registry entry 200 names no process (pid 0)\n") == NULL ||
        strstr(r.err, ": 3 problems\n") == NULL)
        fail_msg("check said:\n%s", r.err);

    /* Every word scribbled (held by this live process, at a time no clock
       reaches): the figures stay within the bulkhead's bounds, and calls
       are refused, never misread. */
    atomic_store(&sl->cfg.max_concurrent_calls, 0xfffffff0u);
    atomic_store(&sl->bulk.high, 0xffffffffu);
    for (int i = 0; i < CBSHM_BULKHEAD_MAX; i++)
        if (i != (int)t[0].bulk_slot && i != (int)t[1].bulk_slot)
            atomic_store(&sl->bulk_slots[i], ~0ull << 22 | (uint64_t)getpid());
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    assert_true(line_of(r.out, "payments", line, sizeof line));
    if (strstr(line, " 256/256 ") == NULL)
        fail_msg("not 256/256 in: %s", line);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", NULL)->status, 0);
    assert_int_equal(cbctl(&r, "-s", seg, "metrics", NULL)->status, 0);
    assert_int_equal(cbctl(&r, "-s", seg, "check", NULL)->status, 1);
    assert_int_equal(cbshm_allow(b, &extra), CBSHM_EREJECTED);
    /* One slot free under a scribbled high: taken, high bounded. */
    atomic_store(&sl->bulk_slots[t[0].bulk_slot == 10 || t[1].bulk_slot == 10 ? 11 : 10], 0);
    assert_int_equal(cbshm_allow(b, &extra), 0);
    cbshm_record(b, &extra, CBSHM_SUCCESS);
    for (int i = 0; i < CBSHM_BULKHEAD_MAX; i++)
        atomic_store(&sl->bulk_slots[i], 0);
    atomic_store(&shm->hdr->workers[200], 0);
    for (int i = 0; i < 2; i++)
        cbshm_record(b, &t[i], CBSHM_SUCCESS);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

/*
 * fleet_open_hosts from the YAML to the segment and back out of every
 * output: the snapshot holds what the loader made of it, show says which
 * it is (2 hosts, 34% of the live hosts), --json gives a count as an
 * integer and a share as a number of at most 1, metrics one gauge each,
 * and apply's diff says the change in the YAML's words. A fleet section
 * beside it is the agent's: apply creates the same segment with it.
 */
static void test_fleet_open_hosts_round_trips_through_apply_snapshot_and_show(void **state)
{
    static const char yaml[] = "fleet:\n  redis: 127.0.0.1:6379\n  name: checkout\n"
                               "  host_id: web-1\nbreakers:\n  - name: two\n"
                               "    fleet_open_hosts: 2\n  - name: third\n"
                               "    fleet_open_hosts: 0.34\n  - name: all\n"
                               "    fleet_open_hosts: 100%\n  - name: off\n";
    static const char changed[] = "breakers:\n  - name: two\n    fleet_open_hosts: 50%\n"
                                  "  - name: third\n    fleet_open_hosts: 3\n  - name: all\n"
                                  "    fleet_open_hosts: 100%\n  - name: off\n";
    struct cbshm *shm = NULL;
    struct cbshm_snapshot snap;
    json_t *o;
    struct run r;
    char path[128], want[256], prom_path[128], *prom;
    FILE *f;

    (void)state;
    write_yaml(path, sizeof path, "fleet", yaml, strlen(yaml));
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "--dry-run", "-f", path, NULL)->status, 0);
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", path, NULL)->status, 0);
    assert_non_null(strstr(r.out, "add breaker third\n"));

    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, "two", &snap), 0);
    assert_int_equal(snap.settings.fleet_open_hosts, 2);
    assert_int_equal(cbshm_snapshot(shm, "third", &snap), 0);
    assert_int_equal(snap.settings.fleet_open_hosts, CBSHM_FLEET_SHARE | 34);
    assert_int_equal(cbshm_snapshot(shm, "all", &snap), 0);
    assert_int_equal(snap.settings.fleet_open_hosts, CBSHM_FLEET_SHARE | 100);
    assert_int_equal(cbshm_snapshot(shm, "off", &snap), 0);
    assert_int_equal(snap.settings.fleet_open_hosts, 0);
    cbshm_close(shm);

    assert_int_equal(cbctl(&r, "-s", seg, "show", "two", NULL)->status, 0);
    assert_non_null(strstr(r.out, "\nfleet_open_hosts:     2 hosts\n"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "third", NULL)->status, 0);
    assert_non_null(strstr(r.out, "\nfleet_open_hosts:     34% of the live hosts\n"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "off", NULL)->status, 0);
    assert_non_null(strstr(r.out, "\nfleet_open_hosts:     0 (off)\n"));

    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "two", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_true(json_is_integer(json_object_get(o, "fleet_open_hosts")));
    assert_int_equal(json_integer_value(json_object_get(o, "fleet_open_hosts")), 2);
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "third", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_true(json_is_real(json_object_get(o, "fleet_open_hosts")));
    assert_true(json_real_value(json_object_get(o, "fleet_open_hosts")) == 0.34);
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "all", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_true(json_is_real(json_object_get(o, "fleet_open_hosts")));
    assert_true(json_real_value(json_object_get(o, "fleet_open_hosts")) == 1.0);
    json_decref(o);

    /* More than r.out holds: through a file. */
    snprintf(prom_path, sizeof prom_path, "/tmp/cbshm-cli-%d.prom", (int)getpid());
    assert_int_equal(cbctl(&r, "-s", seg, "metrics", "-o", prom_path, NULL)->status, 0);
    assert_non_null(f = fopen(prom_path, "r"));
    prom = calloc(1, 1 << 20);
    assert_non_null(prom);
    assert_true(fread(prom, 1, (1 << 20) - 1, f) > 0);
    fclose(f);
    unlink(prom_path);
    snprintf(want, sizeof want,
             "\ncbshm_setting_fleet_open_hosts{segment=\"%s\",breaker=\"two\"} 2\n", seg);
    assert_non_null(strstr(prom, want));
    snprintf(want, sizeof want,
             "\ncbshm_setting_fleet_open_hosts{segment=\"%s\",breaker=\"third\"} 0\n", seg);
    assert_non_null(strstr(prom, want));
    snprintf(want, sizeof want,
             "\ncbshm_setting_fleet_open_hosts_ratio{segment=\"%s\",breaker=\"third\"} 0.34\n",
             seg);
    assert_non_null(strstr(prom, want));
    snprintf(want, sizeof want,
             "\ncbshm_setting_fleet_open_hosts_ratio{segment=\"%s\",breaker=\"two\"} 0\n", seg);
    assert_non_null(strstr(prom, want));
    assert_non_null(strstr(prom, "\n# TYPE cbshm_setting_fleet_open_hosts_ratio gauge\n"));
    free(prom);

    /* A count becomes a share, a share a count: the diff in the YAML's words. */
    write_yaml(path, sizeof path, "fleet", changed, strlen(changed));
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "--dry-run", "-f", path, NULL)->status, 0);
    assert_non_null(strstr(r.out, "would update breaker two: fleet_open_hosts 2 -> 50%\n"));
    assert_non_null(strstr(r.out, "would update breaker third: fleet_open_hosts 34% -> 3\n"));
    assert_null(strstr(r.out, "breaker all"));
    assert_int_equal(cbctl(&r, "-s", seg, "apply", "-f", path, NULL)->status, 0);
    assert_non_null(strstr(r.out, "update breaker two: fleet_open_hosts 2 -> 50%\n"));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "two", NULL)->status, 0);
    assert_non_null(strstr(r.out, "\nfleet_open_hosts:     50% of the live hosts\n"));
    unlink(path);
}

/* A breaker the fleet forced open (cbshm_fleet_force, as the agent does)
   is told from an operator's everywhere an operator looks. */
static void test_a_breaker_forced_open_by_the_fleet_says_so(void **state)
{
    struct cbshm *shm;
    struct run r;
    json_t *o, *arr;

    (void)state;
    apply_ok();
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_fleet_force(shm, "payments", 1, 60000), 0);
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    assert_non_null(strstr(r.out, "(forced_open by the fleet for another "));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "payments", NULL)->status, 0);
    assert_non_null(strstr(r.out, "mode:                 forced_open by the fleet, for another "));
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "payments", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "mode")), "forced_open");
    assert_string_equal(json_string_value(json_object_get(o, "mode_cause")), "fleet");
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "search", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "mode_cause")), "none");
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "events", "--json", NULL)->status, 0);
    assert_non_null(arr = json_loads(r.out, 0, NULL));
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "cause")),
                        "fleet");
    json_decref(arr);
    /* An operator takes it over: no longer the fleet's. */
    assert_int_equal(cbctl(&r, "-s", seg, "open", "payments", NULL)->status, 0);
    assert_int_equal(cbctl(&r, "-s", seg, "show", "--json", "payments", NULL)->status, 0);
    assert_non_null(o = json_loads(r.out, 0, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "mode_cause")), "operator");
    json_decref(o);
    assert_int_equal(cbctl(&r, "-s", seg, "list", NULL)->status, 0);
    assert_null(strstr(r.out, "by the fleet"));
    cbshm_close(shm);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(test_help_lists_every_command_and_the_exit_codes),
    T(test_fleet_open_hosts_round_trips_through_apply_snapshot_and_show),
    T(test_every_command_has_its_own_help),
    T(test_a_breaker_forced_open_by_the_fleet_says_so),
    T(test_the_man_page_documents_every_option_of_every_command_and_no_other),
    T(test_the_readme_names_every_command_and_only_their_options),
    T(test_command_help_rows_line_up_and_json_is_the_same_option_everywhere),
    T(test_usage_errors_exit_2_with_a_message),
    T(test_apply_creates_and_a_second_apply_reports_no_changes),
    T(test_apply_reports_each_change_it_makes),
    T(test_list_json_is_one_array_with_the_contract_fields),
    T(test_show_json_reports_live_state),
    T(test_show_of_an_unknown_breaker_fails_naming_it),
    T(test_mode_commands_set_each_mode),
    T(test_reset_by_name_and_all),
    T(test_check_is_clean_then_names_a_scribbled_slot),
    T(test_check_and_list_refuse_a_foreign_segment),
    T(test_destroy_removes_the_segment),
    T(test_the_segment_can_come_from_the_environment),
    T(test_apply_takes_the_option_then_the_file_then_the_environment),
    T(test_open_for_a_duration_says_so_and_refuses_a_bad_one),
    T(test_bad_yaml_fixtures_are_rejected_with_file_line_and_column),
    T(test_apply_accepts_every_key_and_show_reports_them),
    T(test_version_skew_is_refused_naming_both_versions),
    T(test_cbctl_commands_are_clean_under_valgrind_memcheck),
    T(test_32_racing_cbctl_applies_make_one_valid_segment),
    T(test_a_symlinked_segment_name_is_not_followed),
    T(test_metrics_output_is_atomic_and_root_renames_what_the_owner_wrote),
    T(test_events_lists_changes_and_follow_streams_new_ones),
    T(test_watch_colours_states_on_a_terminal_and_quits_on_q),
    T(test_watch_ends_cleanly_on_sigterm_and_prints_plain_tables_off_a_terminal),
    T(test_apply_refuses_input_past_the_limits_with_exit_3_and_the_position),
    T(test_list_show_and_watch_print_durations_as_an_operator_reads_them),
    T(test_an_open_breaker_past_its_open_period_shows_probe_due),
    T(test_list_and_watch_show_the_same_columns_and_only_the_ones_that_apply),
    T(test_watch_shows_requests_and_failures_per_second_between_frames),
    T(test_the_segment_option_works_after_the_command_too),
    T(test_a_segment_name_without_its_slash_gets_a_hint),
    T(test_an_unknown_yaml_key_gets_a_did_you_mean),
    T(test_a_command_whose_output_cannot_be_written_fails),
    T(test_list_show_watch_json_and_metrics_show_the_bulkhead),
    T(test_events_name_the_bulkhead_filling_and_admitting_again),
    T(test_apply_changes_the_bulkhead_limit_live_keeping_calls_in_flight),
    T(test_check_names_impossible_bulkhead_holders_and_workers),
};
T_MAIN(tests)
