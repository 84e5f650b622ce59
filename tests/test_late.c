/* SPDX-License-Identifier: MIT */
/*
 * Deploy order must not matter (CBSHM_LATE): a worker that starts before
 * its segment or its breaker exists gets a handle all the same, calls run
 * under the fail-open rule, and the handle attaches by itself - at most
 * every 0.25 s, off the closed fast path - once the segment and the
 * breaker appear. Without it such a worker stayed unguarded for its whole
 * life (397 calls reached a dead downstream after `cbctl apply` ran).
 */
#define _GNU_SOURCE
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define START_NS 1000000000000ull
#define RETRY_MS 251 /* just past the handle's 0.25 s between looks */

static const char *TWO = "breakers:\n  - name: api\n    failure_threshold: 3\n"
                         "    open_timeout: 10s\n  - name: db\n";

static uint64_t successes(const char *seg, const char *name)
{
    struct cbshm_snapshot s;
    struct cbshm *shm;

    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, name, &s), 0);
    cbshm_close(shm);
    return s.successes;
}

/* Before the segment: a handle, calls that run, the reason said; after
   apply and one retry period: attached, counted. */
static void test_a_handle_made_before_its_segment_attaches_when_it_is_applied(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm_info info;
    struct cbshm *shm;
    char seg[64];
    int ran = 0;

    (void)state;
    t_clock_install(START_NS);
    t_segment_name(seg);
    assert_int_equal(cbshm_open(seg, 0, &shm), CBSHM_ENOSEG); /* not late: as before */
    assert_int_equal(cbshm_open(seg, CBSHM_LATE, &shm), 0);
    assert_int_equal(cbshm_info(shm, &info), CBSHM_ENOSEG);
    assert_int_equal(cbshm_breaker_get(shm, "api", &b), 0);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_ENOSEG);
    t_apply(seg, TWO);
    /* Within the retry period the handle has not looked again. */
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0);
    assert_int_equal(successes(seg, "api"), 0);
    t_clock_advance_ms(RETRY_MS);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0);
    assert_int_equal(ran, 12);
    assert_int_equal(cbshm_breaker_error(b), 0);
    assert_int_equal(successes(seg, "api"), 10);
    /* It is a breaker like any: three failures trip it for the host. */
    for (int i = 0; i < 3; i++)
        cbshm_execute(b, t_fail_fn, NULL);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), CBSHM_EREJECTED);
    assert_int_equal(cbshm_info(shm, &info), 0);
    assert_int_equal(info.breakers, 2);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A breaker added to the YAML later is picked up the same way. */
static void test_a_breaker_added_later_is_picked_up(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64];
    int ran = 0;

    (void)state;
    t_clock_install(START_NS);
    t_apply(t_segment_name(seg), "breakers:\n  - name: db\n");
    assert_int_equal(cbshm_open(seg, CBSHM_LATE, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "api", &b), 0);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_ENOBREAKER);
    t_apply(seg, TWO);
    t_clock_advance_ms(RETRY_MS);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0);
    assert_int_equal(cbshm_breaker_error(b), 0);
    assert_int_equal(successes(seg, "api"), 1);
    assert_int_equal(ran, 2);
    cbshm_breaker_release(b);
    /* Without CBSHM_LATE a missing breaker is still an error. */
    cbshm_close(shm);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "nope", &b), CBSHM_ENOBREAKER);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* Workers forked before apply: each attaches after it, and the dead
   downstream then takes at most threshold + workers - 1 calls. */
static void test_workers_started_before_apply_share_the_breaker_once_it_exists(void **state)
{
    enum { WORKERS = 4, THRESHOLD = 3 };
    _Atomic int *calls_while_down =
        mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    _Atomic int *ready = calls_while_down + 1;
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64];
    int pids[WORKERS], p[2];
    char go;

    (void)state;
    t_clock_install(START_NS);
    t_segment_name(seg);
    assert_int_equal(cbshm_open(seg, CBSHM_LATE, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "api", &b), 0);
    assert_int_equal(pipe(p), 0);
    for (int w = 0; w < WORKERS; w++) {
        if ((pids[w] = fork()) == 0) {
            int ran = 0;
            cbshm_execute(b, t_fail_fn, &ran); /* unguarded: the downstream is hit */
            atomic_fetch_add(ready, 1);
            if (read(p[0], &go, 1) != 1)
                _exit(2);
            /* Applied, a retry period later, the downstream is down. */
            for (int i = 0; i < 20; i++) {
                int before = ran;
                cbshm_execute(b, t_fail_fn, &ran);
                if (ran != before)
                    atomic_fetch_add(calls_while_down, 1);
            }
            _exit(cbshm_breaker_error(b) == 0 ? 0 : 1);
        }
    }
    while (atomic_load(ready) < WORKERS) /* each made its unguarded call */
        usleep(1000);
    t_apply(seg, TWO);
    t_clock_advance_ms(RETRY_MS);
    for (int w = 0; w < WORKERS; w++)
        assert_int_equal(write(p[1], "g", 1), 1);
    for (int w = 0; w < WORKERS; w++)
        assert_int_equal(t_wait(pids[w]), 0);
    assert_true(*calls_while_down >= THRESHOLD);
    assert_true(*calls_while_down <= THRESHOLD + WORKERS - 1);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    munmap(calls_while_down, 2 * sizeof(int));
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A root master opens the handle before its workers drop to the
   segment's owner: root is refused (CBSHM_EPERM: root maps no segment
   another user can write), the worker, once it is that user, attaches. */
static void test_a_root_masters_handle_attaches_in_a_worker_that_dropped_to_the_owner(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64], path[128];
    int pid, ran = 0;

    (void)state;
    if (geteuid() != 0)
        skip();
    t_clock_install(START_NS);
    t_apply(t_segment_name(seg), TWO);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(chown(path, 4242, 4242), 0);
    assert_int_equal(cbshm_open(seg, CBSHM_LATE, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "api", &b), 0);
    assert_int_equal(cbshm_execute(b, t_ok_fn, &ran), 0);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_EPERM);
    if ((pid = fork()) == 0) {
        if (setgroups(0, NULL) != 0 || setresgid(4242, 4242, 4242) != 0 ||
            setresuid(4242, 4242, 4242) != 0)
            _exit(99);
        t_clock_advance_ms(RETRY_MS);
        for (int i = 0; i < 5; i++)
            cbshm_execute(b, t_ok_fn, &ran);
        _exit(cbshm_breaker_error(b) == 0 ? 0 : 1);
    }
    assert_int_equal(t_wait(pid), 0);
    chown(path, 0, 0);
    assert_int_equal(successes(seg, "api"), 5);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A process that never attached a segment, only late handles, still
   forks safely while another thread is inside the library: the fork
   handlers came with the first late handle (they used to come with the
   first attach only, so a child could inherit the chain lock held and
   hang on its first call). */
static _Atomic int stop_looking;

static void *look_again_and_again(void *arg)
{
    struct cbshm_info info;

    while (!atomic_load(&stop_looking))
        cbshm_info(arg, &info); /* the chain lock, on every call */
    return NULL;
}

static void test_a_child_forked_while_a_late_handle_looks_does_not_hang(void **state)
{
    struct cbshm *shm;
    pthread_t th;
    char seg[64];
    int hung = 0;

    (void)state;
#ifdef __SANITIZE_THREAD__
    skip(); /* tsan reports a fork with threads running as leaks in the child */
#endif
    t_segment_name(seg);
    assert_int_equal(cbshm_open(seg, CBSHM_LATE, &shm), 0);
    atomic_store(&stop_looking, 0);
    assert_int_equal(pthread_create(&th, NULL, look_again_and_again, shm), 0);
    for (int i = 0; i < 50 && hung == 0; i++) {
        int pid = fork();
        if (pid == 0) {
            struct cbshm_info info;
            alarm(5);
            _exit(cbshm_info(shm, &info) == CBSHM_ENOSEG ? 0 : 1);
        }
        hung = t_wait(pid) == 128 + SIGALRM;
    }
    atomic_store(&stop_looking, 1);
    pthread_join(th, NULL);
    cbshm_close(shm);
    assert_false(hung);
}

/* A segment handle kept across `cbctl destroy` + `cbctl apply` (a
   worker's, a binding's shared Segment, a listener's) sees the new
   segment, as its breaker handles do: before, snapshot, foreach, modes
   and events read and wrote the destroyed table forever (a breaker the
   new segment added was CBSHM_ENOBREAKER; modes changed a dead table). */
static int count_breaker(void *ctx, const struct cbshm_snapshot *s)
{
    (void)s;
    ++*(int *)ctx;
    return 0;
}

static void test_a_segment_handle_follows_a_destroyed_segments_replacement(void **state)
{
    struct cbshm_snapshot s;
    struct cbshm_event ev[8];
    struct cbshm *shm, *fresh;
    uint64_t cursor = 0;
    size_t n = 0;
    char seg[64];
    int listed = 0;

    (void)state;
    t_apply(t_segment_name(seg), "breakers:\n  - name: db\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_set_mode(shm, "db", CBSHM_MODE_FORCED_OPEN), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
    /* Nothing in its place yet: read as it was left. */
    assert_int_equal(cbshm_snapshot(shm, "db", &s), 0);
    assert_int_equal(s.mode, CBSHM_MODE_FORCED_OPEN);
    t_apply(seg, TWO);
    assert_int_equal(cbshm_snapshot(shm, "api", &s), 0);
    assert_int_equal(s.settings.failure_threshold, 3);
    assert_int_equal(cbshm_snapshot(shm, "db", &s), 0);
    assert_int_equal(s.mode, CBSHM_MODE_NORMAL);
    assert_int_equal(cbshm_foreach(shm, count_breaker, &listed), 0);
    assert_int_equal(listed, 2);
    assert_int_equal(cbshm_set_mode(shm, "api", CBSHM_MODE_DISABLED), 0);
    assert_int_equal(cbshm_open(seg, 0, &fresh), 0);
    assert_int_equal(cbshm_snapshot(fresh, "api", &s), 0);
    assert_int_equal(s.mode, CBSHM_MODE_DISABLED);
    cbshm_close(fresh);
    /* The new segment's ring: its one event, the mode change. */
    assert_int_equal(cbshm_events_read(shm, &cursor, ev, 8, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].name, "api");
    assert_int_equal(ev[0].kind, CBSHM_EVENT_MODE);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_handle_made_before_its_segment_attaches_when_it_is_applied),
    cmocka_unit_test(test_a_breaker_added_later_is_picked_up),
    cmocka_unit_test(test_workers_started_before_apply_share_the_breaker_once_it_exists),
    cmocka_unit_test(test_a_root_masters_handle_attaches_in_a_worker_that_dropped_to_the_owner),
    cmocka_unit_test(test_a_child_forked_while_a_late_handle_looks_does_not_hang),
    cmocka_unit_test(test_a_segment_handle_follows_a_destroyed_segments_replacement),
};

T_MAIN(tests)
