/* SPDX-License-Identifier: MIT */
/*
 * Names as untrusted input: the segment-name rules, breaker names checked
 * on every path that reads them from the segment (foreach, look-ups,
 * events, check), and cbctl's output - every byte it did not choose is
 * escaped for the terminal, JSON stays ASCII, and a Prometheus label
 * value cannot start a line of its own. The scribbled names here are
 * written straight into the mapping, as a hostile user with write access
 * would, because the creation path refuses them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cbctl.h"
#include "harness.h"
#include "internal.h"

/* Terminal payloads: an OSC that sets the window title, a CSI that makes
   text blink, CSI as a raw C1 byte and as UTF-8, DEL. */
#define TERMINAL_PAYLOAD           \
    "\033]0;PWNED\007\033[5mx\x9b" \
    "1m\xc2\x9b"                   \
    "2J\x7f"
/* A label value that would close the label set and start a series. */
#define METRICS_PAYLOAD "m\\\"} 1\ninjected_total{breaker=\""

static const char *YAML = "capacity: 8\nbreakers:\n  - name: payments\n  - name: search\n"
                          "  - name: victim\n";

struct run {
    int status;
    char out[262144];
    char err[16384];
};

static struct run R; /* too big for a test's stack */

/* Runs cbctl with a NULL-terminated argument list, into R. */
static struct run *cbctl(const char *arg, ...)
{
    va_list ap;

    va_start(ap, arg);
    R.status = t_vexec(CBCTL_PATH, R.out, sizeof R.out, R.err, sizeof R.err, arg, ap);
    va_end(ap);
    return &R;
}

/* Fails, saying where, unless text is printable ASCII and newlines. */
static void assert_printable(const char *what, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '\n' && (c < 0x20 || c > 0x7e))
            fail_msg("%s: byte 0x%02x at offset %zu: %.60s", what, c, (size_t)(p - text), text);
    }
}

/* The slot index breaker `name` lives in. */
static uint32_t slot_of(const char *seg, const char *name)
{
    struct cbshm *shm;
    struct cbshm_snapshot s;

    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, name, &s), 0);
    cbshm_close(shm);
    return s.index;
}

/* Writes `bytes` (size of them, the rest of the field zeroed) over the
   name of slot `slot`, with the length it says, as a scribbler would. */
static void scribble_slot(const char *seg, uint32_t slot, const char *bytes, size_t size,
                          uint32_t name_len)
{
    size_t mapped;
    struct cbshm_header *h = t_raw_map(seg, &mapped);
    struct cbshm_slot *sl = (struct cbshm_slot *)((char *)h + h->slots_offset) + slot;

    assert_true(size <= sizeof sl->name);
    memset(sl->name, 0, sizeof sl->name);
    memcpy(sl->name, bytes, size);
    sl->name_len = name_len;
    munmap(h, mapped);
}

/* The same over the name of the newest record in the event ring. */
static void scribble_last_event(const char *seg, const char *bytes, size_t size)
{
    size_t mapped;
    struct cbshm_header *h = t_raw_map(seg, &mapped);
    struct cbshm_event_rec *ring = (struct cbshm_event_rec *)((char *)h + h->events_offset);
    uint64_t seq = atomic_load(&h->events_seq);
    struct cbshm_event_rec *e = &ring[(seq - 1) % CBSHM_EVENTS];
    uint64_t words[(CBSHM_NAME_MAX + 1) / 8] = {0};

    assert_true(seq > 0 && size <= sizeof words);
    memcpy(words, bytes, size);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        atomic_store(&e->name[i], words[i]);
    munmap(h, mapped);
}

/*
 * A segment with payments, search and victim, where victim has made an
 * event (forced open) and then both its slot name and that event's name
 * were overwritten with `payload`, terminated and with its true length:
 * only the name rules can tell it from a breaker.
 */
static uint32_t scribbled_segment(char *seg, const char *payload)
{
    struct cbshm *shm;
    uint32_t slot;

    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_set_mode(shm, "victim", CBSHM_MODE_FORCED_OPEN), 0);
    cbshm_close(shm);
    slot = slot_of(seg, "victim");
    scribble_slot(seg, slot, payload, strlen(payload) + 1, (uint32_t)strlen(payload));
    scribble_last_event(seg, payload, strlen(payload) + 1);
    return slot;
}

/* ---- Segment names ---------------------------------------------------- */

static void test_segment_names_outside_the_safe_set_are_refused(void **state)
{
    static const char *const refused[] = {
        "/.",         "/..",   "/",     "",       "cbshm",        "/a/b",   "/a b", "/a:b",
        "/a\033[31m", "/a\nb", "/a\tb", "/a\x7f", "/caf\xc3\xa9", "/a\x9b", "/a*",  "/a\\b",
    };
    char longest[CBSHM_SEGMENT_NAME_MAX + 2];
    struct cbshm_peek p;
    struct cbshm *shm = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(cbshm_open(refused[i], 0, &shm), CBSHM_EBADNAME);
        assert_int_equal(cbshm_peek(refused[i], &p), CBSHM_EBADNAME);
        assert_int_equal(cbshm_destroy(refused[i]), CBSHM_EBADNAME);
    }
    /* Dots are fine where they are no directory: /.a, /..., /a.b. */
    assert_int_equal(cbshm_open("/.cbshm-t-none", 0, &shm), CBSHM_ENOSEG);
    assert_int_equal(cbshm_open("/...", 0, &shm), CBSHM_ENOSEG);
    assert_int_equal(cbshm_open("/cbshm-t.none_A-Z09", 0, &shm), CBSHM_ENOSEG);
    /* '/' and CBSHM_SEGMENT_NAME_MAX - 1 more bytes is the longest. */
    longest[0] = '/';
    memset(longest + 1, 'n', CBSHM_SEGMENT_NAME_MAX - 1);
    longest[CBSHM_SEGMENT_NAME_MAX] = '\0';
    assert_int_equal(cbshm_open(longest, 0, &shm), CBSHM_ENOSEG);
    longest[CBSHM_SEGMENT_NAME_MAX] = 'n';
    longest[CBSHM_SEGMENT_NAME_MAX + 1] = '\0';
    assert_int_equal(cbshm_open(longest, 0, &shm), CBSHM_EBADNAME);
    assert_null(shm);
}

static void test_apply_refuses_a_segment_name_outside_the_safe_set_before_creating(void **state)
{
    static const char bad_segment[] = "segment: \"/..\"\nbreakers:\n  - name: a\n";
    static const char no_segment[] = "breakers:\n  - name: a\n";
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    /* From the YAML: file:line:col and the allowed set. */
    assert_int_equal(cbshm_config_load_string(bad_segment, strlen(bad_segment), "t.yaml", &cfg, &d),
                     CBSHM_ECONFIG);
    assert_int_equal(d.line, 1);
    assert_int_equal(d.column, 10);
    assert_non_null(strstr(d.message, "invalid segment name '/..'"));
    assert_non_null(strstr(d.message, "A-Z a-z 0-9 . _ -, not /. or /.."));
    /* From the caller: nothing is created at a refused name. */
    assert_int_equal(cbshm_config_load_string(no_segment, strlen(no_segment), "t.yaml", &cfg, &d),
                     0);
    assert_int_equal(cbshm_apply(cfg, "/.", 0, NULL, NULL, NULL), CBSHM_EBADNAME);
    assert_int_equal(cbshm_apply(cfg, "/x\033]0;t\007", 0, NULL, NULL, NULL), CBSHM_EBADNAME);
    cbshm_config_free(cfg);
}

static void test_cbctl_names_a_refused_segment_name_escaped_with_the_allowed_set(void **state)
{
    static const char *const commands[] = {"list", "metrics", "check", "destroy"};

    (void)state;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char want[128];

        assert_int_equal(cbctl("-s", "/a\033]0;PWNED\007", commands[i], NULL)->status, 1);
        assert_printable("stderr", R.err);
        snprintf(want, sizeof want, "cbctl: %s: invalid segment name '/a\\x1b]0;PWNED\\x07'",
                 commands[i]);
        assert_non_null(strstr(R.err, want));
        assert_non_null(strstr(R.err, "'/' then 1 to 199 of A-Z a-z 0-9 . _ -, and not /. or /.."));
        assert_string_equal(R.out, "");
    }
    assert_int_equal(cbctl("-s", "/..", "list", NULL)->status, 1);
    assert_non_null(strstr(R.err, "cbctl: list: invalid segment name '/..'"));
    assert_int_equal(cbctl("-s", "/.", "destroy", NULL)->status, 1);
    assert_non_null(strstr(R.err, "cbctl: destroy: invalid segment name '/.'"));
}

/* ---- Breaker names read from the segment ------------------------------ */

struct seen {
    char names[8][CBSHM_NAME_MAX + 1];
    int n;
};

static int collect(void *ctx, const struct cbshm_snapshot *s)
{
    struct seen *seen = ctx;

    assert_true(seen->n < 8);
    strcpy(seen->names[seen->n++], s->name);
    return 0;
}

/* foreach gives payments and search, never the scribbled slot, and says
   the segment is corrupt: through the lock, and on a read-only view. */
static void assert_foreach_leaves_out_the_victim(const char *seg)
{
    static const unsigned flags[] = {0, CBSHM_READ_ONLY};

    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        struct cbshm *shm;
        struct seen seen = {.n = 0};

        assert_int_equal(cbshm_open(seg, flags[i], &shm), 0);
        assert_int_equal(cbshm_foreach(shm, collect, &seen), CBSHM_ECORRUPT);
        assert_int_equal(seen.n, 2);
        assert_string_equal(seen.names[0], "payments");
        assert_string_equal(seen.names[1], "search");
        cbshm_close(shm);
    }
}

static void test_foreach_leaves_out_a_slot_whose_name_holds_refused_bytes(void **state)
{
    static const char *const payloads[] = {TERMINAL_PAYLOAD, METRICS_PAYLOAD, "bad name", "a/b",
                                           "caf\xc3\xa9"};
    char seg[64];

    (void)state;
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        scribbled_segment(seg, payloads[i]);
        assert_foreach_leaves_out_the_victim(seg);
        assert_int_equal(cbshm_destroy(seg), 0);
    }
}

static void test_foreach_leaves_out_a_slot_whose_name_is_unterminated_or_mislengthed(void **state)
{
    char seg[64], full[CBSHM_NAME_MAX + 1];
    uint32_t slot;

    (void)state;
    /* No NUL in the whole field. */
    slot = scribbled_segment(seg, "victim");
    memset(full, 'v', sizeof full);
    scribble_slot(seg, slot, full, sizeof full, sizeof full);
    assert_foreach_leaves_out_the_victim(seg);
    /* A valid name with a length that is not its own. */
    scribble_slot(seg, slot, "victim", 7, 9);
    assert_foreach_leaves_out_the_victim(seg);
    /* Put right, it is a breaker again. */
    scribble_slot(seg, slot, "victim", 7, 6);
    struct cbshm *shm;
    struct seen seen = {.n = 0};
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_foreach(shm, collect, &seen), 0);
    assert_int_equal(seen.n, 3);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_a_lookup_that_meets_a_scribbled_slot_says_corrupt(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b = NULL;
    struct cbshm_snapshot s;

    (void)state;
    scribbled_segment(seg, TERMINAL_PAYLOAD);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    /* The index still leads "victim" to the scribbled slot: it may be it. */
    assert_int_equal(cbshm_snapshot(shm, "victim", &s), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_breaker_get(shm, "victim", &b), CBSHM_ECORRUPT);
    assert_null(b);
    assert_int_equal(cbshm_reset(shm, "victim"), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_set_mode(shm, "victim", CBSHM_MODE_NORMAL), CBSHM_ECORRUPT);
    /* The others are found as before. */
    assert_int_equal(cbshm_snapshot(shm, "payments", &s), 0);
    assert_string_equal(s.name, "payments");
    assert_int_equal(cbshm_breaker_get(shm, "search", &b), 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    /* A read-only view looks up without the lock, and says the same. */
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, "victim", &s), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_snapshot(shm, "search", &s), 0);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_events_read_skips_a_record_whose_name_is_scribbled(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_event ev[16];
    uint64_t cursor = 0, lost = 99;
    size_t n = 99;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_set_mode(shm, "payments", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(cbshm_set_mode(shm, "victim", CBSHM_MODE_FORCED_OPEN), 0);
    scribble_last_event(seg, TERMINAL_PAYLOAD, sizeof TERMINAL_PAYLOAD);
    assert_int_equal(cbshm_set_mode(shm, "search", CBSHM_MODE_FORCED_OPEN), 0);

    /* The good records are handed out, the cursor goes past the bad one. */
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 16, &n, &lost), CBSHM_ECORRUPT);
    assert_int_equal(n, 2);
    assert_int_equal(lost, 0);
    assert_int_equal(cursor, 3);
    assert_string_equal(ev[0].name, "payments");
    assert_string_equal(ev[1].name, "search");
    assert_int_equal(ev[1].seq, 2);
    /* A record with no NUL in its field is skipped the same way. */
    char full[CBSHM_NAME_MAX + 1];
    memset(full, 'e', sizeof full);
    scribble_last_event(seg, full, sizeof full);
    cursor = 2;
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 16, &n, &lost), CBSHM_ECORRUPT);
    assert_int_equal(n, 0);
    assert_int_equal(cursor, 3);
    /* Nothing bad left to read: 0 again. */
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 16, &n, &lost), 0);
    assert_int_equal(n, 0);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void report(void *ctx, const char *m)
{
    strncat(ctx, m, 1000 - strlen(ctx));
    strncat(ctx, "\n", 1000 - strlen(ctx));
}

static void test_check_names_the_slot_whose_name_is_scribbled(void **state)
{
    char seg[64], msg[1024] = "", want[64];
    struct cbshm *shm;
    uint32_t slot;

    (void)state;
    slot = scribbled_segment(seg, TERMINAL_PAYLOAD);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_true(cbshm_check(shm, report, msg) >= 1);
    snprintf(want, sizeof want, "slot %u: invalid breaker name", slot);
    assert_non_null(strstr(msg, want));
    assert_printable("check report", msg);
    cbshm_close(shm);

    assert_int_equal(cbctl("-s", seg, "check", NULL)->status, 1);
    assert_non_null(strstr(R.err, want));
    assert_printable("cbctl check", R.err);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* ---- cbctl's human output --------------------------------------------- */

static void test_list_and_watch_leave_out_a_scribbled_name_and_say_it_is_corrupt(void **state)
{
    char seg[64];

    (void)state;
    scribbled_segment(seg, TERMINAL_PAYLOAD);
    cbctl("-s", seg, "list", NULL);
    assert_printable("list", R.out);
    assert_printable("list stderr", R.err);
    assert_int_equal(R.status, 1);
    assert_non_null(strstr(R.out, "\npayments "));
    assert_non_null(strstr(R.out, "\nsearch "));
    assert_null(strstr(R.out, "PWNED"));
    assert_non_null(strstr(R.err, "segment is corrupt: a breaker slot holds an invalid name"));
    assert_non_null(strstr(R.err, "cbctl check names the slot"));

    cbctl("-s", seg, "watch", "--count", "1", NULL);
    assert_printable("watch", R.out);
    assert_printable("watch stderr", R.err);
    assert_int_equal(R.status, 1);
    assert_non_null(strstr(R.out, "\npayments "));
    assert_null(strstr(R.out, "PWNED"));
    assert_non_null(strstr(R.err, "segment is corrupt"));

    /* --all resets what it can, and says what it could not. */
    assert_int_equal(cbctl("-s", seg, "reset", "--all", NULL)->status, 1);
    assert_string_equal(R.out, "reset payments\nreset search\n");
    assert_printable("reset stderr", R.err);
    assert_non_null(strstr(R.err, "segment is corrupt"));
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* Reads the pty until the child closes it (or 5 s pass). */
static size_t pty_drain(int fd, char *buf, size_t size)
{
    size_t got = 0;

    for (int tries = 0; tries < 100 && got < size - 1; tries++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t n = read(fd, buf + got, size - 1 - got);
            if (n <= 0)
                break; /* EIO: the child is gone */
            got += (size_t)n;
        }
    }
    buf[got] = '\0';
    return got;
}

static void test_watch_on_a_terminal_never_sends_a_scribbled_name(void **state)
{
    static char buf[65536];
    char seg[64];
    int master, pid, status;
    size_t got;

    (void)state;
    scribbled_segment(seg, TERMINAL_PAYLOAD);
    if ((pid = forkpty(&master, NULL, NULL, NULL)) == 0) {
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "watch", "--count", "1", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    got = pty_drain(master, buf, sizeof buf);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(master);
    assert_non_null(strstr(buf, "payments"));
    /* cbctl's own colours and cursor moves only: no OSC, no blink, no C1. */
    assert_null(strstr(buf, "\033]"));
    assert_null(strstr(buf, "\033[5m"));
    assert_null(memchr(buf, 0x9b, got));
    assert_null(memchr(buf, 0x7f, got));
    assert_null(strstr(buf, "PWNED"));
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_events_leave_out_a_scribbled_name_in_text_and_json(void **state)
{
    char seg[64];
    json_t *doc;
    json_error_t jerr;

    (void)state;
    scribbled_segment(seg, TERMINAL_PAYLOAD);
    assert_int_equal(cbctl("-s", seg, "reset", "payments", NULL)->status, 0);
    cbctl("-s", seg, "events", NULL);
    assert_printable("events", R.out);
    assert_printable("events stderr", R.err);
    assert_int_equal(R.status, 1);
    assert_non_null(strstr(R.out, " payments "));
    assert_null(strstr(R.out, "PWNED"));
    assert_non_null(strstr(R.err, "an event record holds an invalid breaker name"));

    cbctl("-s", seg, "events", "--json", NULL);
    assert_printable("events --json", R.out);
    assert_int_equal(R.status, 1);
    assert_non_null(doc = json_loads(R.out, 0, &jerr));
    assert_int_equal(json_array_size(doc), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 0), "breaker")),
                        "payments");
    json_decref(doc);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_list_json_is_one_valid_ascii_document_without_the_scribbled_slot(void **state)
{
    char seg[64];
    json_t *doc;
    json_error_t jerr;

    (void)state;
    scribbled_segment(seg, TERMINAL_PAYLOAD);
    cbctl("-s", seg, "list", "--json", NULL);
    assert_printable("list --json", R.out);
    assert_int_equal(R.status, 1);
    assert_non_null(doc = json_loads(R.out, 0, &jerr));
    assert_int_equal(json_array_size(doc), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 0), "name")),
                        "payments");
    assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 1), "name")),
                        "search");
    json_decref(doc);
    assert_non_null(strstr(R.err, "segment is corrupt"));
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_show_reset_and_mode_errors_escape_the_names_they_quote(void **state)
{
    static const char *const commands[] = {"show", "reset", "open", "close", "disable", "enable"};
    char seg[64];

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char want[128];

        assert_int_equal(cbctl("-s", seg, commands[i], TERMINAL_PAYLOAD, NULL)->status, 1);
        assert_printable(commands[i], R.err);
        snprintf(want, sizeof want,
                 "cbctl: %s \\x1b]0;PWNED\\x07\\x1b[5mx\\x9b1m\\xc2\\x9b2J\\x7f: invalid breaker",
                 commands[i]);
        assert_non_null(strstr(R.err, want));
        assert_string_equal(R.out, "");
    }
    /* A backslash is no control byte; no breaker name holds one. */
    assert_int_equal(cbctl("-s", seg, "show", "a\\b", NULL)->status, 1);
    assert_non_null(strstr(R.err, "cbctl: show a\\b: invalid breaker"));
    /* Usage errors quote what was typed, escaped too. */
    assert_int_equal(cbctl("-s", seg, "list", "\033[5m", NULL)->status, 2);
    assert_printable("usage error", R.err);
    assert_non_null(strstr(R.err, "cbctl: list: unexpected argument '\\x1b[5m'"));
    assert_int_equal(cbctl("-s", seg, "nosuch\033[5m", NULL)->status, 2);
    assert_non_null(strstr(R.err, "unknown command 'nosuch\\x1b[5m'"));
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_apply_escapes_a_scribbled_name_it_removes(void **state)
{
    char seg[64], yaml_path[128];
    FILE *f;

    (void)state;
    scribbled_segment(seg, TERMINAL_PAYLOAD);
    snprintf(yaml_path, sizeof yaml_path, "/tmp/cbshm-names-%d.yaml", (int)getpid());
    assert_non_null(f = fopen(yaml_path, "w"));
    fputs(YAML, f);
    fclose(f);
    /* The scribbled slot is no configured breaker: apply removes it, and
       adds victim back. */
    cbctl("-s", seg, "apply", "-f", yaml_path, NULL);
    assert_printable("apply", R.out);
    assert_int_equal(R.status, 0);
    assert_non_null(
        strstr(R.out, "remove breaker \\x1b]0;PWNED\\x07\\x1b[5mx\\x9b1m\\xc2\\x9b2J\\x7f\n"));
    assert_non_null(strstr(R.out, "add breaker victim\n"));
    assert_int_equal(cbctl("-s", seg, "list", NULL)->status, 0);
    assert_non_null(strstr(R.out, "\nvictim "));
    unlink(yaml_path);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_config_errors_escape_the_bytes_they_quote(void **state)
{
    char seg[64], yaml_path[128];
    FILE *f;

    (void)state;
    t_segment_name(seg);
    snprintf(yaml_path, sizeof yaml_path, "/tmp/cbshm-names-%d.yaml", (int)getpid());
    assert_non_null(f = fopen(yaml_path, "w"));
    fputs("breakers:\n  - name: \"a\\e]0;PWNED\\a\"\n", f);
    fclose(f);
    assert_int_equal(cbctl("-s", seg, "apply", "-f", yaml_path, NULL)->status, 3);
    assert_printable("config error", R.err);
    assert_non_null(strstr(R.err, ":2:11: breakers[0].name: invalid breaker name "
                                  "'a\\x1b]0;PWNED\\x07'"));
    unlink(yaml_path);
    assert_int_equal(t_open_rc(seg), CBSHM_ENOSEG);
}

/* ---- Prometheus ------------------------------------------------------- */

/* One sample: the family it is in, its labels but the segment's, and the
   segment label's value. */
struct sample {
    char key[512];
    char segment[128];
    char breaker[128];
};

/* Parses one value inside a label's quotes, with the format's three
   escapes; anything else after a backslash is malformed. Returns the byte
   after the closing quote, or NULL. */
static const char *label_value(const char *p, char *out, size_t size)
{
    size_t n = 0;

    for (; *p != '"'; p++) {
        char c = *p;
        if (c == '\0')
            return NULL;
        if (c == '\\') {
            p++;
            c = *p == 'n' ? '\n' : *p == '\\' ? '\\' : *p == '"' ? '"' : 0;
            if (c == 0)
                return NULL;
        }
        if (n + 1 < size)
            out[n++] = c;
    }
    out[n] = '\0';
    return p + 1;
}

/* A sample line of the text format, strictly: name{l="v",...} value. */
static int parse_sample(const char *line, const char *family, struct sample *s)
{
    const char *p = line;
    size_t name_len = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
    char *end;

    memset(s, 0, sizeof *s);
    if (name_len == 0 || strlen(family) != name_len || strncmp(p, family, name_len) != 0)
        return -1; /* every sample sits under its own # TYPE */
    snprintf(s->key, sizeof s->key, "%.*s{", (int)name_len, p);
    p += name_len;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char label[64], value[128];
            size_t ll =
                strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
            if (ll == 0 || ll >= sizeof label || p[ll] != '=' || p[ll + 1] != '"')
                return -1;
            snprintf(label, sizeof label, "%.*s", (int)ll, p);
            if ((p = label_value(p + ll + 2, value, sizeof value)) == NULL)
                return -1;
            if (strcmp(label, "segment") == 0) {
                snprintf(s->segment, sizeof s->segment, "%s", value);
            } else {
                if (strcmp(label, "breaker") == 0)
                    snprintf(s->breaker, sizeof s->breaker, "%s", value);
                strncat(s->key, label, sizeof s->key - strlen(s->key) - 1);
                strncat(s->key, "=", sizeof s->key - strlen(s->key) - 1);
                strncat(s->key, value, sizeof s->key - strlen(s->key) - 1);
                strncat(s->key, ";", sizeof s->key - strlen(s->key) - 1);
            }
            if (*p == ',')
                p++;
            else if (*p != '}')
                return -1;
        }
        p++;
    }
    if (*p != ' ')
        return -1;
    strtod(p + 1, &end);
    return end != p + 1 && *end == '\0' ? 0 : -1;
}

/* Every sample of `text`, in order; fails the test on a malformed line. */
static size_t parse_exposition(char *text, struct sample *out, size_t max)
{
    char family[128] = "";
    size_t n = 0;

    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%127s", family), 1);
            continue;
        }
        assert_true(n < max);
        if (parse_sample(line, family, &out[n]) != 0)
            fail_msg("not a sample of family %s: %s", family, line);
        n++;
    }
    return n;
}

static void test_metrics_with_a_scribbled_name_parse_into_exactly_the_expected_series(void **state)
{
    static struct sample got[4096], want[4096];
    char seg[64], clean[64];
    size_t n_got, n_want;

    (void)state;
    /* What payments and search alone export. */
    t_apply(t_segment_name(clean),
            "capacity: 8\nbreakers:\n  - name: payments\n  - name: search\n");
    assert_int_equal(cbctl("-s", clean, "metrics", NULL)->status, 0);
    n_want = parse_exposition(R.out, want, 4096);
    assert_true(n_want > 50);

    scribbled_segment(seg, METRICS_PAYLOAD);
    cbctl("-s", seg, "metrics", NULL);
    n_got = parse_exposition(R.out, got, 4096);
    assert_int_equal(R.status, 1);
    assert_non_null(strstr(R.err, "segment is corrupt"));
    assert_printable("metrics stderr", R.err);
    assert_int_equal(n_got, n_want);
    for (size_t i = 0; i < n_got; i++) {
        assert_string_equal(got[i].key, want[i].key);
        assert_string_equal(got[i].segment, seg);
        assert_true(got[i].breaker[0] == '\0' || strcmp(got[i].breaker, "payments") == 0 ||
                    strcmp(got[i].breaker, "search") == 0);
    }
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(cbshm_destroy(clean), 0);
}

/* ---- The escapers themselves ------------------------------------------ */

static void test_prometheus_label_values_escape_backslash_quote_and_newline_exactly(void **state)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    struct sample s;
    char line[256];

    (void)state;
    assert_non_null(f);
    cbctl_put_label(f, METRICS_PAYLOAD);
    fclose(f);
    /* Exactly the three escapes of the format; everything else as it is. */
    assert_string_equal(text, "m\\\\\\\"} 1\\ninjected_total{breaker=\\\"");
    /* Inside a sample it reads back as the value it was. */
    snprintf(line, sizeof line, "x{breaker=\"%s\"} 1", text);
    assert_int_equal(parse_sample(line, "x", &s), 0);
    assert_string_equal(s.breaker, METRICS_PAYLOAD);
    free(text);
    text = NULL;
    f = open_memstream(&text, &size);
    cbctl_put_label(f, "plain.name_1:-");
    fclose(f);
    assert_string_equal(text, "plain.name_1:-");
    free(text);
}

static void test_terminal_text_escapes_c0_del_and_c1_bytes(void **state)
{
    const char *plain = "payments.v2:eu-west_1";
    char buf[CBCTL_SAFE_MAX], small[12];
    char *text = NULL;
    size_t size = 0;
    FILE *f;

    (void)state;
    /* Nothing to escape: the very same string, nothing copied. */
    assert_ptr_equal(cbctl_safe(plain, buf, sizeof buf), plain);
    assert_string_equal(cbctl_safe(TERMINAL_PAYLOAD, buf, sizeof buf),
                        "\\x1b]0;PWNED\\x07\\x1b[5mx\\x9b1m\\xc2\\x9b2J\\x7f");
    assert_string_equal(cbctl_safe("a\tb\nc\rd\\e\x01\x1f ~", buf, sizeof buf),
                        "a\\x09b\\x0ac\\x0dd\\e\\x01\\x1f ~");
    /* Cut where the escaped text does not fit, never inside an escape. */
    assert_string_equal(cbctl_safe("\033\033\033", small, sizeof small), "\\x1b\\x1b...");
    assert_string_equal(cbctl_safe("ab\033", small, sizeof small), "ab\\x1b");
    assert_string_equal(cbctl_safe("abcdefg\033", small, sizeof small), "abcdefg\\x1b");
    assert_string_equal(cbctl_safe("abcdefgh\033", small, sizeof small), "abcdefgh...");
    /* The longest breaker name, all of it escaped, fits CBCTL_SAFE_MAX. */
    char worst[CBSHM_NAME_MAX + 1];
    memset(worst, 0x1b, CBSHM_NAME_MAX);
    worst[CBSHM_NAME_MAX] = '\0';
    assert_int_equal(strlen(cbctl_safe(worst, buf, sizeof buf)), 4 * CBSHM_NAME_MAX);
    /* The stream form, never cut. */
    f = open_memstream(&text, &size);
    cbctl_put_safe(f, "\x9b\\ok");
    fclose(f);
    assert_string_equal(text, "\\x9b\\ok");
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_segment_names_outside_the_safe_set_are_refused),
    cmocka_unit_test(test_apply_refuses_a_segment_name_outside_the_safe_set_before_creating),
    cmocka_unit_test(test_cbctl_names_a_refused_segment_name_escaped_with_the_allowed_set),
    cmocka_unit_test(test_foreach_leaves_out_a_slot_whose_name_holds_refused_bytes),
    cmocka_unit_test(test_foreach_leaves_out_a_slot_whose_name_is_unterminated_or_mislengthed),
    cmocka_unit_test(test_a_lookup_that_meets_a_scribbled_slot_says_corrupt),
    cmocka_unit_test(test_events_read_skips_a_record_whose_name_is_scribbled),
    cmocka_unit_test(test_check_names_the_slot_whose_name_is_scribbled),
    cmocka_unit_test(test_list_and_watch_leave_out_a_scribbled_name_and_say_it_is_corrupt),
    cmocka_unit_test(test_watch_on_a_terminal_never_sends_a_scribbled_name),
    cmocka_unit_test(test_events_leave_out_a_scribbled_name_in_text_and_json),
    cmocka_unit_test(test_list_json_is_one_valid_ascii_document_without_the_scribbled_slot),
    cmocka_unit_test(test_show_reset_and_mode_errors_escape_the_names_they_quote),
    cmocka_unit_test(test_apply_escapes_a_scribbled_name_it_removes),
    cmocka_unit_test(test_config_errors_escape_the_bytes_they_quote),
    cmocka_unit_test(test_metrics_with_a_scribbled_name_parse_into_exactly_the_expected_series),
    cmocka_unit_test(test_prometheus_label_values_escape_backslash_quote_and_newline_exactly),
    cmocka_unit_test(test_terminal_text_escapes_c0_del_and_c1_bytes),
};

T_MAIN(tests)
