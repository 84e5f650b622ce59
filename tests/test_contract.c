/* SPDX-License-Identifier: MIT */
/*
 * Unit: cbshm.h's contract - every code a function lists, driven here
 * unless another test already drives it. Those others, by code:
 *
 * cbshm_open: CBSHM_ENOSEG, CBSHM_EBADNAME, CBSHM_EINVAL in
 *   test_segment.c test_open_reports_a_missing_segment; CBSHM_EBADMAGIC
 *   (scribbled magic), CBSHM_EUNINIT, CBSHM_EVERSION, CBSHM_EABI,
 *   CBSHM_ECORRUPT, CBSHM_ETRUNCATED in
 *   test_open_refuses_each_header_mismatch_with_its_own_code and
 *   test_open_refuses_a_truncated_or_empty_segment; CBSHM_EPERM in
 *   test_open_refuses_a_segment_writable_by_others,
 *   test_open_refuses_a_segment_owned_by_another_user and
 *   test_open_refuses_group_write_the_configuration_did_not_grant;
 *   CBSHM_EPIDNS in test_open_refuses_a_segment_of_another_pid_namespace.
 * cbshm_peek: CBSHM_ENOSEG, CBSHM_EBADNAME, CBSHM_EINVAL in
 *   test_open_reports_a_missing_segment.
 * cbshm_destroy: 0 and CBSHM_ENOSEG in test_open_reports_a_missing_segment
 *   and test_destroy_unlinks_and_marks_the_segment_retired.
 * cbshm_breaker_get: CBSHM_EBADNAME, CBSHM_EINVAL in test_breaker.c
 *   test_breaker_lookup_validates_names; CBSHM_ENOBREAKER in
 *   test_breakers_do_not_share_state.
 * cbshm_execute: CBSHM_EINVAL in test_record_refuses_an_outcome_out_of_range;
 *   b NULL in test_execute_fails_open_without_a_breaker; CBSHM_ENOBREAKER
 *   and CBSHM_ESTALE under fail-closed in
 *   test_a_deleted_breaker_fails_open_or_closed_as_asked; CBSHM_EREJECTED
 *   throughout test_breaker.c.
 * cbshm_allow, cbshm_record: CBSHM_EINVAL (NULL ticket, spent ticket) in
 *   test_two_step_api_matches_execute; an outcome out of range in
 *   test_record_refuses_an_outcome_out_of_range.
 * cbshm_record_timed: a spent ticket in test_policy.c
 *   test_two_step_callers_pass_their_own_duration.
 * cbshm_breaker_error: CBSHM_EINVAL in test_execute_fails_open_without_a_breaker;
 *   CBSHM_ENOBREAKER in test_a_deleted_breaker_fails_open_or_closed_as_asked;
 *   CBSHM_ELOCK from a skipped trip in test_crash.c
 *   test_a_stopped_lock_holder_makes_others_fail_open_not_hang.
 * cbshm_snapshot: CBSHM_ELOCK (a stopped holder) in that same test.
 * cbshm_set_mode, cbshm_reset: CBSHM_ENOBREAKER, CBSHM_EINVAL (mode), the
 *   mode kept by reset in test_reset_closes_and_clears_counters_but_keeps_the_mode.
 * cbshm_info: CBSHM_EINVAL (shm NULL) in test_segment.c test_info_reports_geometry.
 * cbshm_check: a problem count in test_check_names_a_scribbled_slot_and_index.
 * cbshm_events_read: CBSHM_EINVAL (shm, cursor NULL) in test_events.c
 *   test_a_reader_from_now_sees_only_what_comes_next.
 * cbshm_config_load_file: -ENOENT in test_config.c
 *   test_config_reports_a_missing_file; CBSHM_ECONFIG throughout test_config.c.
 *
 * Not driven anywhere, because a unit test cannot make the condition:
 * -ENOMEM (malloc, calloc, mmap, libyaml running out of memory: that would
 * need an allocator that fails on cue), -ENFILE (the system-wide file
 * table full), and the rarer errno values of shm_open, fstat, mmap,
 * shm_unlink, fopen and read that the header leaves open-ended.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

static const char *YAML = "capacity: 4\n"
                          "breakers:\n"
                          "  - name: a\n"
                          "    failure_threshold: 1\n"
                          "    open_timeout: 5s\n"
                          "  - name: b\n";

/* The segment's bytes, mapped as a scribbler would map them. */
static struct cbshm_header *raw_map(const char *seg, size_t *bytes)
{
    return t_raw_map(seg, bytes);
}

static const char *shm_path(const char *seg, char *buf, size_t n)
{
    snprintf(buf, n, "/dev/shm%s", seg);
    return buf;
}

/* Every bucket of the name index points outside the table. */
static void scribble_index(struct cbshm_header *h)
{
    uint32_t *index = (uint32_t *)((char *)h + h->index_offset);

    for (uint32_t i = 0; i < h->index_buckets; i++)
        index[i] = h->capacity + 77;
}

/* ---- Segment: what squats a name ------------------------------------- */

static void test_open_of_a_foreign_file_is_ebadmagic(void **state)
{
    char seg[64], path[128], junk[8192];
    struct cbshm_peek p;
    FILE *f;

    (void)state;
    t_segment_name(seg);
    memset(junk, 'x', sizeof junk);
    assert_non_null(f = fopen(shm_path(seg, path, sizeof path), "w"));
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_EBADMAGIC);
    /* peek reports it as it is */
    assert_int_equal(cbshm_peek(seg, &p), 0);
    assert_int_equal(p.file_bytes, sizeof junk);
    assert_true(p.magic == 0x7878787878787878ull);
    /* destroy removes a name it cannot read */
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_ENOSEG);
}

static void test_open_of_a_fifo_is_ebadmagic_and_peek_of_it_does_not_block(void **state)
{
    char seg[64], path[128];
    struct cbshm_peek p;

    (void)state;
    assert_int_equal(mkfifo(shm_path(t_segment_name(seg), path, sizeof path), 0600), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_EBADMAGIC);
    assert_int_equal(cbshm_peek(seg, &p), 0);
    assert_int_equal(p.magic, 0);
    assert_int_equal(p.file_bytes, 0);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(access(path, F_OK), -1);
}

static void
test_open_and_peek_of_a_symlink_are_eloop_and_destroy_removes_only_the_link(void **state)
{
    char seg[64], target[64], path[128], tpath[128];
    struct cbshm_peek p;

    (void)state;
    t_apply(t_segment_name(target), YAML);
    t_segment_name(seg);
    assert_int_equal(
        symlink(shm_path(target, tpath, sizeof tpath), shm_path(seg, path, sizeof path)), 0);
    assert_int_equal(t_open_rc(seg), -ELOOP);
    assert_int_equal(cbshm_peek(seg, &p), -ELOOP);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(t_open_rc(target), 0);
    assert_int_equal(cbshm_destroy(target), 0);
}

static void test_open_of_a_directory_is_ebadmagic_and_destroy_of_it_eisdir(void **state)
{
    char seg[64], path[128];

    (void)state;
    assert_int_equal(mkdir(shm_path(t_segment_name(seg), path, sizeof path), 0700), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_EBADMAGIC);
    assert_int_equal(cbshm_destroy(seg), -EISDIR);
    assert_int_equal(rmdir(path), 0);
}

static void test_another_user_gets_eacces_from_open_peek_and_destroy(void **state)
{
    char seg[64];
    int rc;

    (void)state;
    if (geteuid() != 0)
        skip(); /* needs a second uid to switch to */
    t_apply(t_segment_name(seg), YAML);
    pid_t pid = fork();
    if (pid == 0) {
        struct cbshm_peek p;
        if (setgid(4343) != 0 || setuid(4343) != 0)
            _exit(99);
        if (t_open_rc(seg) != -EACCES)
            _exit(1);
        if (cbshm_peek(seg, &p) != -EACCES)
            _exit(2);
        /* /dev/shm is sticky: only the owner may remove the name (unlink
           says EPERM, glibc's shm_unlink reports it as EACCES) */
        _exit(cbshm_destroy(seg) == -EACCES ? 0 : 3);
    }
    rc = t_wait(pid);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(rc, 0);
}

static void test_open_and_peek_out_of_file_descriptors_are_emfile(void **state)
{
    char seg[64];
    struct cbshm_peek p;
    struct rlimit old, low;
    int lowest, open_got, peek_got;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    assert_true((lowest = dup(0)) >= 0);
    close(lowest);
    low = old;
    low.rlim_cur = (rlim_t)lowest; /* no descriptor is left to open */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    open_got = t_open_rc(seg);
    peek_got = cbshm_peek(seg, &p);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(open_got, -EMFILE);
    assert_int_equal(peek_got, -EMFILE);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_destroy_of_a_bad_name_is_ebadname(void **state)
{
    (void)state;
    assert_int_equal(cbshm_destroy(NULL), CBSHM_EBADNAME);
    assert_int_equal(cbshm_destroy("no-slash"), CBSHM_EBADNAME);
    assert_int_equal(cbshm_destroy("/a/b"), CBSHM_EBADNAME);
}

/* ---- Inspection and steering ----------------------------------------- */

static void test_snapshot_of_a_missing_breaker_is_enobreaker(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_snapshot s;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, "missing", &s), CBSHM_ENOBREAKER);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_snapshot_set_mode_and_reset_refuse_bad_names_and_null_arguments(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_snapshot s;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, "bad name", &s), CBSHM_EBADNAME);
    assert_int_equal(cbshm_snapshot(shm, NULL, &s), CBSHM_EBADNAME);
    assert_int_equal(cbshm_snapshot(NULL, "a", &s), CBSHM_EINVAL);
    assert_int_equal(cbshm_snapshot(shm, "a", NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_set_mode(shm, "", CBSHM_MODE_DISABLED), CBSHM_EBADNAME);
    assert_int_equal(cbshm_set_mode(shm, NULL, CBSHM_MODE_DISABLED), CBSHM_EBADNAME);
    assert_int_equal(cbshm_set_mode(NULL, "a", CBSHM_MODE_DISABLED), CBSHM_EINVAL);
    assert_int_equal(cbshm_reset(shm, "a/b"), CBSHM_EBADNAME);
    assert_int_equal(cbshm_reset(shm, NULL), CBSHM_EBADNAME);
    assert_int_equal(cbshm_reset(NULL, "a"), CBSHM_EINVAL);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_lookups_through_a_scribbled_name_index_are_ecorrupt(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b = NULL;
    struct cbshm_snapshot s;
    struct cbshm_header *h;
    size_t bytes;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    h = raw_map(seg, &bytes);
    scribble_index(h);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), CBSHM_ECORRUPT);
    assert_null(b);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_set_mode(shm, "a", CBSHM_MODE_DISABLED), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_reset(shm, "a"), CBSHM_ECORRUPT);
    munmap(h, bytes);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/*
 * A mutex whose kind was scribbled is refused before the C library reads
 * it (another kind can make glibc abort): the caller gets CBSHM_ECORRUPT
 * from every function that takes the lock, check names it as one
 * problem, and the functions that do not take it still work. The
 * scribble is glibc's mutex kind field.
 */
static void test_a_scribbled_table_lock_is_ecorrupt_for_every_function_that_takes_it(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b = NULL;
    struct cbshm_snapshot s;
    struct cbshm_info info;
    struct cbshm_event ev[4];
    struct cbshm_header *h;
    uint64_t cursor = 0;
    size_t bytes, n;
    int kind;

    (void)state;
#if !defined(__GLIBC__) || defined(__SANITIZE_THREAD__)
    skip(); /* the scribble is glibc's layout; tsan intercepts the mutex */
#endif
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    h = raw_map(seg, &bytes);
    kind = h->lock.__data.__kind;
    h->lock.__data.__kind = 0x7f; /* no kind glibc knows */
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), CBSHM_ECORRUPT);
    assert_null(b);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_set_mode(shm, "a", CBSHM_MODE_DISABLED), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_reset(shm, "a"), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 1);
    assert_int_equal(cbshm_info(shm, &info), 0);
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 4, &n, NULL), 0);
    h->lock.__data.__kind = kind;
    assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
    munmap(h, bytes);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_info_check_and_events_read_refuse_null_arguments(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_event ev[1];
    uint64_t cursor = 0;
    size_t n = 7;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_info(shm, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_check(NULL, NULL, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 1, NULL, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_events_read(shm, &cursor, NULL, 1, &n, NULL), CBSHM_EINVAL);
    assert_int_equal(n, 7);
    assert_int_equal(cbshm_events_read(shm, &cursor, NULL, 0, &n, NULL), 0);
    assert_int_equal(n, 0);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* ---- Hot path -------------------------------------------------------- */

static void test_a_ticket_rejected_in_forced_open_is_refused_by_record(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    assert_int_equal(cbshm_set_mode(shm, "a", CBSHM_MODE_FORCED_OPEN), 0);
    memset(&t, 0xff, sizeof t); /* whatever the caller's stack held */
    assert_int_equal(cbshm_allow(b, &t), CBSHM_EREJECTED);
    assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), CBSHM_EINVAL);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_record_timed_refuses_a_null_ticket_and_the_reserved_duration(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "b", &b), 0);
    assert_int_equal(cbshm_record_timed(b, NULL, CBSHM_SUCCESS, 5), CBSHM_EINVAL);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_record_timed(b, &t, (enum cbshm_outcome)3, 5), CBSHM_EINVAL);
    assert_int_equal(cbshm_record_timed(b, &t, CBSHM_SUCCESS, UINT64_MAX), CBSHM_EINVAL);
    assert_int_equal(cbshm_record_timed(b, &t, CBSHM_SUCCESS, 5), 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A probe needs the lock: fail-closed gets CBSHM_ELOCK, fail-open runs the
   call and says CBSHM_ELOCK in cbshm_breaker_error. The lock looks held
   by another live process (our parent); a lock whose kind was scribbled
   is CBSHM_ECORRUPT the same way. */
static void test_a_probe_that_cannot_take_the_lock_is_elock_under_fail_closed(void **state)
{
    char seg[64];
    struct cbshm *open_shm, *closed_shm;
    struct cbshm_breaker *ob, *cb;
    struct cbshm_header *h;
    size_t bytes;
    int kind, ran = 0;

    (void)state;
#if !defined(__GLIBC__) || defined(__SANITIZE_THREAD__)
    skip(); /* as in the scribbled-lock test above */
#endif
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &open_shm), 0);
    assert_int_equal(cbshm_open(seg, CBSHM_FAIL_CLOSED, &closed_shm), 0);
    assert_int_equal(cbshm_breaker_get(open_shm, "a", &ob), 0);
    assert_int_equal(cbshm_breaker_get(closed_shm, "a", &cb), 0);
    assert_int_equal(cbshm_execute(ob, t_fail_fn, NULL), 0); /* trips: threshold 1 */
    t_clock_advance_ms(6000);                                /* past open_timeout */
    h = raw_map(seg, &bytes);
    h->lock.__data.__lock = (int)getppid();
    assert_int_equal(cbshm_execute(cb, t_ok_fn, &ran), CBSHM_ELOCK); /* after the 1 s bound */
    assert_int_equal(ran, 0);
    assert_int_equal(cbshm_allow(cb, &(struct cbshm_ticket){0}), CBSHM_ELOCK);
    assert_int_equal(cbshm_execute(ob, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(cbshm_breaker_error(ob), CBSHM_ELOCK);
    h->lock.__data.__lock = 0;
    kind = h->lock.__data.__kind;
    h->lock.__data.__kind = 0x7f;
    ran = 0;
    assert_int_equal(cbshm_execute(cb, t_ok_fn, &ran), CBSHM_ECORRUPT);
    assert_int_equal(ran, 0);
    h->lock.__data.__kind = kind;
    munmap(h, bytes);
    cbshm_breaker_release(ob);
    cbshm_breaker_release(cb);
    cbshm_close(open_shm);
    cbshm_close(closed_shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

static void test_a_stale_handle_meeting_a_scribbled_index_is_ecorrupt(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_header *h;
    size_t bytes;
    int ran = 0;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, CBSHM_FAIL_CLOSED, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    /* Deleting the breaker makes the handle look its name up again. */
    t_apply(seg, "capacity: 4\nbreakers:\n  - name: b\n");
    h = raw_map(seg, &bytes);
    scribble_index(h);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_ECORRUPT);
    assert_int_equal(ran, 0);
    munmap(h, bytes);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

/* A state value that enum cbshm_state does not have (3) in a breaker's
   control word: the library cannot decide, so the call runs (fail-open)
   and says CBSHM_ECORRUPT, or under CBSHM_FAIL_CLOSED is refused with it.
   It was rejected as if open, with no error: the breaker the outage. */
static void test_a_scribbled_state_is_ecorrupt_open_or_closed_as_asked(void **state)
{
    char seg[64];
    struct cbshm *shm, *closed_shm;
    struct cbshm_breaker *b, *cb;
    struct cbshm_snapshot s;
    struct cbshm_ticket t;
    struct cbshm_header *h;
    struct cbshm_slot *sl;
    size_t bytes;
    int ran = 0;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_open(seg, CBSHM_FAIL_CLOSED, &closed_shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    assert_int_equal(cbshm_breaker_get(closed_shm, "a", &cb), 0);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    h = raw_map(seg, &bytes);
    sl = (struct cbshm_slot *)((char *)h + h->slots_offset + (size_t)s.index * h->slot_bytes);
    atomic_fetch_or(&sl->ctl, 3u);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_record(b, &t, CBSHM_FAILURE), 0); /* unguarded: counts nothing */
    assert_int_equal(cbshm_execute(cb, t_ok_fn, &ran), CBSHM_ECORRUPT);
    assert_int_equal(ran, 1);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    assert_int_equal(s.state, 3);
    assert_int_equal(s.requests, 0);
    munmap(h, bytes);
    cbshm_breaker_release(b);
    cbshm_breaker_release(cb);
    cbshm_close(shm);
    cbshm_close(closed_shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* After destroy: ERETIRED; once a foreign file takes the name, the handle
   reports why it cannot move there, as cbshm_open would. */
static void
test_a_handle_on_a_destroyed_segment_is_eretired_then_meets_its_replacement(void **state)
{
    char seg[64], path[128], junk[8192];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    FILE *f;
    int ran = 0;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, CBSHM_FAIL_CLOSED, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "b", &b), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), CBSHM_ERETIRED);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_ERETIRED);
    memset(junk, 'x', sizeof junk);
    assert_non_null(f = fopen(shm_path(seg, path, sizeof path), "w"));
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
    t_clock_advance_ms(1000); /* the handle looks again at most every 0.25 s */
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), CBSHM_EBADMAGIC);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_EBADMAGIC);
    assert_int_equal(ran, 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

/* A FIFO put where a removed segment was must not stall a worker's call
   when it checks the name (every CBSHM_WATCH_CALLS calls). */
static void test_a_fifo_at_a_removed_segment_name_does_not_stall_the_hot_path(void **state)
{
    char seg[64], path[128];
    struct cbshm *shm;
    struct cbshm_breaker *b;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "b", &b), 0);
    assert_int_equal(unlink(shm_path(seg, path, sizeof path)), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    t_clock_advance_ms(2000);
    for (int i = 0; i < 2 * CBSHM_WATCH_CALLS + 2; i++)
        assert_int_equal(cbshm_execute(b, t_ok_fn, NULL), 0);
    assert_int_equal(shm->hdr->retired, 1); /* the name means another object */
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

/* ---- Configuration and clock ----------------------------------------- */

static void test_config_load_refuses_null_arguments(void **state)
{
    struct cbshm_config *cfg = NULL;

    (void)state;
    assert_int_equal(cbshm_config_load_file(NULL, &cfg, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_config_load_file("/dev/null", NULL, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_config_load_string(NULL, 0, "x", &cfg, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_config_load_string("capacity: 4\n", 12, "x", NULL, NULL), CBSHM_EINVAL);
    assert_null(cfg);
}

static void test_config_load_file_of_a_directory_is_eisdir(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    assert_int_equal(cbshm_config_load_file("/", &cfg, &d), -EISDIR);
    assert_null(cfg);
    assert_string_equal(d.file, "/");
}

static void test_config_load_file_over_16_mib_is_econfig_naming_the_limit(void **state)
{
    char path[64];
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    int fd;

    (void)state;
    snprintf(path, sizeof path, "/tmp/cbshm-t-%d-big.yaml", (int)getpid());
    assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
    assert_int_equal(ftruncate(fd, (off_t)17 << 20), 0); /* sparse */
    close(fd);
    int rc = cbshm_config_load_file(path, &cfg, &d);
    unlink(path);
    assert_int_equal(rc, CBSHM_ECONFIG);
    assert_null(cfg);
    assert_string_equal(d.file, path);
    assert_non_null(strstr(d.message, "16 MiB"));
}

static void test_config_load_file_without_permission_is_eacces(void **state)
{
    char path[64];
    int fd, rc;

    (void)state;
    if (geteuid() != 0)
        skip(); /* needs a second uid to switch to */
    snprintf(path, sizeof path, "/tmp/cbshm-t-%d-secret.yaml", (int)getpid());
    assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        struct cbshm_config *cfg = NULL;
        if (setgid(4343) != 0 || setuid(4343) != 0)
            _exit(99);
        _exit(cbshm_config_load_file(path, &cfg, NULL) == -EACCES ? 0 : 1);
    }
    rc = t_wait(pid);
    unlink(path);
    assert_int_equal(rc, 0);
}

static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static void test_now_ns_reads_the_clock_seam(void **state)
{
    static uint64_t fixed = 123456789;
    uint64_t a, b;

    (void)state;
    cbshm_clock_set(fixed_clock, &fixed);
    assert_int_equal(cbshm_now_ns(), 123456789);
    cbshm_clock_set(NULL, NULL);
    a = cbshm_now_ns();
    b = cbshm_now_ns();
    assert_true(a > 0 && b >= a);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_open_of_a_foreign_file_is_ebadmagic),
    cmocka_unit_test(test_open_of_a_fifo_is_ebadmagic_and_peek_of_it_does_not_block),
    cmocka_unit_test(test_open_and_peek_of_a_symlink_are_eloop_and_destroy_removes_only_the_link),
    cmocka_unit_test(test_open_of_a_directory_is_ebadmagic_and_destroy_of_it_eisdir),
    cmocka_unit_test(test_another_user_gets_eacces_from_open_peek_and_destroy),
    cmocka_unit_test(test_open_and_peek_out_of_file_descriptors_are_emfile),
    cmocka_unit_test(test_destroy_of_a_bad_name_is_ebadname),
    cmocka_unit_test(test_snapshot_of_a_missing_breaker_is_enobreaker),
    cmocka_unit_test(test_snapshot_set_mode_and_reset_refuse_bad_names_and_null_arguments),
    cmocka_unit_test(test_lookups_through_a_scribbled_name_index_are_ecorrupt),
    cmocka_unit_test(test_a_scribbled_table_lock_is_ecorrupt_for_every_function_that_takes_it),
    cmocka_unit_test(test_info_check_and_events_read_refuse_null_arguments),
    cmocka_unit_test(test_a_ticket_rejected_in_forced_open_is_refused_by_record),
    cmocka_unit_test(test_record_timed_refuses_a_null_ticket_and_the_reserved_duration),
    cmocka_unit_test(test_a_probe_that_cannot_take_the_lock_is_elock_under_fail_closed),
    cmocka_unit_test(test_a_stale_handle_meeting_a_scribbled_index_is_ecorrupt),
    cmocka_unit_test(test_a_scribbled_state_is_ecorrupt_open_or_closed_as_asked),
    cmocka_unit_test(test_a_handle_on_a_destroyed_segment_is_eretired_then_meets_its_replacement),
    cmocka_unit_test(test_a_fifo_at_a_removed_segment_name_does_not_stall_the_hot_path),
    cmocka_unit_test(test_config_load_refuses_null_arguments),
    cmocka_unit_test(test_config_load_file_of_a_directory_is_eisdir),
    cmocka_unit_test(test_config_load_file_over_16_mib_is_econfig_naming_the_limit),
    cmocka_unit_test(test_config_load_file_without_permission_is_eacces),
    cmocka_unit_test(test_now_ns_reads_the_clock_seam),
};
T_MAIN(tests)
