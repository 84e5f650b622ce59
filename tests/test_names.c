/*
 * Names as untrusted input: the segment-name rules, and breaker names
 * checked on every path that reads them from the segment (foreach,
 * look-ups, events, check). The scribbled names here are
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

static void slurp(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* Runs cbctl with a NULL-terminated argument list, into R. */
static struct run *cbctl(const char *arg, ...)
{
    const char *argv[32] = {"cbctl"};
    int n = 1, out = memfd_create("out", 0), err = memfd_create("err", 0), pid;
    va_list ap;

    va_start(ap, arg);
    for (const char *a = arg; a != NULL && n < 31; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    assert_true(out >= 0 && err >= 0);
    if ((pid = fork()) == 0) {
        dup2(out, 1);
        dup2(err, 2);
        execv(CBCTL_PATH, (char *const *)argv);
        _exit(127);
    }
    R.status = t_wait(pid);
    slurp(out, R.out, sizeof R.out);
    slurp(err, R.err, sizeof R.err);
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
   the segment is corrupt. */
static void assert_foreach_leaves_out_the_victim(const char *seg)
{
    struct cbshm *shm;
    struct seen seen = {.n = 0};

    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_foreach(shm, collect, &seen), CBSHM_ECORRUPT);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.names[0], "payments");
    assert_string_equal(seen.names[1], "search");
    cbshm_close(shm);
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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_segment_names_outside_the_safe_set_are_refused),
    cmocka_unit_test(test_apply_refuses_a_segment_name_outside_the_safe_set_before_creating),
    cmocka_unit_test(test_foreach_leaves_out_a_slot_whose_name_holds_refused_bytes),
    cmocka_unit_test(test_foreach_leaves_out_a_slot_whose_name_is_unterminated_or_mislengthed),
    cmocka_unit_test(test_a_lookup_that_meets_a_scribbled_slot_says_corrupt),
    cmocka_unit_test(test_events_read_skips_a_record_whose_name_is_scribbled),
    cmocka_unit_test(test_check_names_the_slot_whose_name_is_scribbled),
};

T_MAIN(tests)
