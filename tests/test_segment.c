/* SPDX-License-Identifier: MIT */
/*
 * Unit: segments as untrusted input - creation mode, every header check,
 * ownership and permissions, destroy - and apply's reconciliation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

static const char *YAML = "capacity: 4\nbreakers:\n  - name: a\n    failure_threshold: 2\n"
                          "  - name: b\n";

/* The segment's bytes, mapped as a scribbler would map them. */
static struct cbshm_header *raw_map(const char *seg, size_t *bytes)
{
    return t_raw_map(seg, bytes);
}

static void test_segment_is_created_with_the_configured_mode_whatever_the_umask(void **state)
{
    char seg[64], path[128];
    struct stat st;
    mode_t old = umask(0077);

    (void)state;
    t_apply(t_segment_name(seg), "mode: \"0640\"\nbreakers:\n  - name: a\n");
    umask(old);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(cbshm_destroy(seg), 0);
    t_apply(seg, "breakers:\n  - name: a\n");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_open_reports_a_missing_segment(void **state)
{
    struct cbshm *shm = NULL;

    (void)state;
    assert_int_equal(cbshm_open("/cbshm-t-does-not-exist", 0, &shm), CBSHM_ENOSEG);
    assert_null(shm);
    assert_int_equal(cbshm_open("no-slash", 0, &shm), CBSHM_EBADNAME);
    assert_int_equal(cbshm_open("/a/b", 0, &shm), CBSHM_EBADNAME);
    assert_int_equal(cbshm_open("/", 0, &shm), CBSHM_EBADNAME);
    assert_int_equal(cbshm_open(NULL, 0, &shm), CBSHM_EBADNAME);
    assert_int_equal(cbshm_open("/x", 0, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm_open("/x", 0x100, &shm), CBSHM_EINVAL);
    assert_int_equal(cbshm_destroy("/cbshm-t-does-not-exist"), CBSHM_ENOSEG);
    struct cbshm_peek p;
    assert_int_equal(cbshm_peek("/cbshm-t-does-not-exist", &p), CBSHM_ENOSEG);
    assert_int_equal(cbshm_peek("no-slash", &p), CBSHM_EBADNAME);
    assert_int_equal(cbshm_peek("/x", NULL), CBSHM_EINVAL);
    cbshm_close(NULL);
}

/* Each header field that does not match is refused with its own code. */
static void test_open_refuses_each_header_mismatch_with_its_own_code(void **state)
{
    char seg[64];
    size_t bytes;
    struct cbshm_header *h;
    uint64_t saved;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    h = raw_map(seg, &bytes);
    assert_int_equal(t_open_rc(seg), 0);

    saved = h->magic;
    h->magic = 0x1234;
    assert_int_equal(t_open_rc(seg), CBSHM_EBADMAGIC);
    h->magic = 0;
    assert_int_equal(t_open_rc(seg), CBSHM_EUNINIT);
    h->magic = saved;

    h->layout_version = CBSHM_LAYOUT_VERSION + 1;
    assert_int_equal(t_open_rc(seg), CBSHM_EVERSION);
    h->layout_version = CBSHM_LAYOUT_VERSION - 1;
    assert_int_equal(t_open_rc(seg), CBSHM_EVERSION);
    h->layout_version = CBSHM_LAYOUT_VERSION;

    h->abi_fingerprint ^= 1;
    assert_int_equal(t_open_rc(seg), CBSHM_EABI);
    h->abi_fingerprint ^= 1;

    h->capacity = 0;
    assert_int_equal(t_open_rc(seg), CBSHM_ECORRUPT);
    h->capacity = 1000000;
    assert_int_equal(t_open_rc(seg), CBSHM_ECORRUPT);
    h->capacity = 4;
    h->index_offset += 64;
    assert_int_equal(t_open_rc(seg), CBSHM_ECORRUPT);
    h->index_offset -= 64;
    h->events_count = 7;
    assert_int_equal(t_open_rc(seg), CBSHM_ECORRUPT);
    h->events_count = CBSHM_EVENTS;
    h->events_offset += 64;
    assert_int_equal(t_open_rc(seg), CBSHM_ECORRUPT);
    h->events_offset -= 64;
    h->segment_bytes += 4096;
    assert_int_equal(t_open_rc(seg), CBSHM_ETRUNCATED);
    h->segment_bytes -= 4096;

    assert_int_equal(t_open_rc(seg), 0);
    munmap(h, bytes);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_open_refuses_a_truncated_or_empty_segment(void **state)
{
    char seg[64];
    int fd;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    fd = shm_open(seg, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8192), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_ETRUNCATED);
    assert_int_equal(ftruncate(fd, 100), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_ETRUNCATED);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_EUNINIT);
    close(fd);
    /* destroy removes even a segment it cannot read */
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_ENOSEG);
}

static void test_open_refuses_a_segment_writable_by_others(void **state)
{
    char seg[64], path[128];

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(chmod(path, 0602), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(t_open_rc(seg), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_open_refuses_a_segment_owned_by_another_user(void **state)
{
    char seg[64], path[128];
    int rc;

    (void)state;
    if (geteuid() != 0)
        skip();
    t_apply(t_segment_name(seg), "mode: \"0660\"\ngroup: 0\nbreakers:\n  - name: a\n");
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    /* The second uid's group may write, so only our owner check stops it. */
    assert_int_equal(chown(path, 4242, 4343), 0);
    assert_int_equal(chmod(path, 0660), 0);
    /* Root maps no segment a lesser user can write (that user could make
       root's unlock write through the mutex's list links); a second uid
       may not attach read-write to another's. */
    assert_int_equal(t_open_rc(seg), CBSHM_EPERM);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(4343) != 0 || setuid(4343) != 0)
            _exit(99);
        _exit(t_open_rc(seg) == CBSHM_EPERM ? 0 : 1);
    }
    rc = t_wait(pid);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(rc, 0);
}

static void test_destroy_unlinks_and_marks_the_segment_retired(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_breaker *b;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_ENOSEG);
    assert_int_equal(shm->hdr->retired, 1);
    /* attached workers keep a valid mapping */
    assert_int_equal(cbshm_allow(b, &(struct cbshm_ticket){0}), 0);
    cbshm_breaker_release(b);
    cbshm_close(shm);
}

static void collect(void *ctx, const struct cbshm_change *c)
{
    char *log = ctx;
    static const char *kinds[] = {"created", "added", "updated", "removed"};
    size_t n = strlen(log);
    snprintf(log + n, 512 - n, "%s:%s ", kinds[c->kind], c->name);
}

static int apply_log(const char *seg, const char *yaml, unsigned flags, char *log, unsigned *n)
{
    struct cbshm_config *cfg;
    struct cbshm_diag d;
    int rc;

    log[0] = '\0';
    assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "t", &cfg, &d), 0);
    rc = cbshm_apply(cfg, seg, flags, collect, log, n);
    cbshm_config_free(cfg);
    return rc;
}

static void test_applying_the_same_file_twice_changes_nothing_and_keeps_counters(void **state)
{
    char seg[64], log[512];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    unsigned n;

    (void)state;
    t_segment_name(seg);
    assert_int_equal(apply_log(seg, YAML, 0, log, &n), 0);
    assert_int_equal(n, 3);
    assert_non_null(strstr(log, "created:"));
    assert_non_null(strstr(log, "added:a added:b"));
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(apply_log(seg, YAML, 0, log, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(log, "");
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    assert_int_equal(s.failures, 2);
    assert_int_equal(s.state, CBSHM_STATE_OPEN);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_changing_a_threshold_keeps_live_state(void **state)
{
    char seg[64], log[512];
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    unsigned n;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "b", &b), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(apply_log(seg,
                               "capacity: 4\nbreakers:\n  - name: a\n    failure_threshold: 2\n"
                               "  - name: b\n    failure_threshold: 6\n",
                               0, log, &n),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(log, "updated:b ");
    assert_int_equal(cbshm_snapshot(shm, "b", &s), 0);
    assert_int_equal(s.consecutive_failures, 4);
    assert_int_equal(s.failures, 4);
    assert_int_equal(s.settings.failure_threshold, 6);
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_snapshot(shm, "b", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_OPEN);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_apply_adds_and_removes_and_a_dry_run_changes_nothing(void **state)
{
    char seg[64], log[512];
    const char *next = "capacity: 4\nbreakers:\n  - name: b\n  - name: c\n";
    struct cbshm *shm;
    struct cbshm_info info;
    unsigned n;

    (void)state;
    t_segment_name(seg);
    assert_int_equal(apply_log(seg, YAML, CBSHM_APPLY_DRY_RUN, log, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(t_open_rc(seg), CBSHM_ENOSEG);
    t_apply(seg, YAML);
    assert_int_equal(apply_log(seg, next, CBSHM_APPLY_DRY_RUN, log, &n), 0);
    assert_string_equal(log, "removed:a added:c ");
    assert_int_equal(apply_log(seg, next, CBSHM_APPLY_DRY_RUN, log, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(apply_log(seg, next, 0, log, &n), 0);
    assert_string_equal(log, "removed:a added:c ");
    assert_int_equal(apply_log(seg, next, 0, log, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_info(shm, &info), 0);
    assert_int_equal(info.breakers, 2);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_apply_refuses_more_breakers_than_capacity_and_changes_nothing(void **state)
{
    char seg[64], log[512];
    unsigned n;

    (void)state;
    t_apply(t_segment_name(seg), YAML); /* capacity 4 */
    assert_int_equal(apply_log(seg,
                               "capacity: 8\nbreakers:\n  - name: c\n  - name: d\n  - name: e\n"
                               "  - name: f\n  - name: g\n",
                               0, log, &n),
                     CBSHM_EFULL);
    assert_int_equal(n, 0);
    assert_int_equal(apply_log(seg, YAML, 0, log, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void report(void *ctx, const char *m)
{
    strncat(ctx, m, 1000 - strlen(ctx));
    strncat(ctx, "\n", 1000 - strlen(ctx));
}

static void test_check_names_a_scribbled_slot_and_index(void **state)
{
    char seg[64], msg[1024] = "";
    struct cbshm *shm;
    size_t bytes;
    struct cbshm_header *h;
    struct cbshm_slot *slots;
    uint32_t *index;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    h = raw_map(seg, &bytes);
    slots = (struct cbshm_slot *)((char *)h + h->slots_offset);
    index = (uint32_t *)((char *)h + h->index_offset);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 0);

    memset(slots[0].name, 'x', sizeof slots[0].name); /* unterminated */
    for (uint32_t i = 0; i < h->index_buckets; i++)
        if (index[i] == 2)
            index[i] = 77; /* out of range */
    int problems = cbshm_check(shm, report, msg);
    assert_true(problems >= 2);
    assert_non_null(strstr(msg, "slot 0: name is not terminated"));
    assert_non_null(strstr(msg, "slot 76 out of range"));
    /* Lookups and handles survive the scribble with errors, not crashes. */
    struct cbshm_breaker *b = NULL;
    int rc = cbshm_breaker_get(shm, "b", &b);
    assert_true(rc == CBSHM_ECORRUPT || rc == CBSHM_ENOBREAKER);
    cbshm_close(shm);
    munmap(h, bytes);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* Open periods scribbled to the top of the range, with full jitter: trips
   and backoff must stay defined arithmetic (a fuzzed segment once made the
   jitter overflow a signed add). */
static void test_scribbled_open_periods_do_not_overflow_the_jitter(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm_slot *slots;
    struct cbshm_header *h;
    struct cbshm *shm;
    char seg[64];
    size_t bytes;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), "breakers:\n  - name: a\n    failure_threshold: 1\n"
                                 "    open_timeout_jitter: 100\n    backoff_multiplier: 100\n");
    h = raw_map(seg, &bytes);
    slots = (struct cbshm_slot *)((char *)h + h->slots_offset);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    for (int round = 0; round < 64; round++) {
        struct cbshm_ticket t;
        atomic_store(&slots[0].cfg.open_timeout_ns, (uint64_t)INT64_MAX - (uint64_t)round);
        atomic_store(&slots[0].cfg.open_timeout_max_ns, UINT64_MAX);
        atomic_store(&slots[0].current_open_ns, UINT64_MAX / 3);
        if (cbshm_allow(b, &t) == 0)
            cbshm_record(b, &t, CBSHM_FAILURE);
        assert_int_equal(cbshm_reset(shm, "a"), 0);
    }
    cbshm_breaker_release(b);
    cbshm_close(shm);
    munmap(h, bytes);
    assert_int_equal(cbshm_destroy(seg), 0);
    cbshm_clock_set(NULL, NULL);
}

static void test_info_reports_geometry(void **state)
{
    char seg[64];
    struct cbshm *shm;
    struct cbshm_info info;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_info(shm, &info), 0);
    assert_int_equal(info.capacity, 4);
    assert_int_equal(info.breakers, 2);
    assert_int_equal(info.layout_version, CBSHM_LAYOUT_VERSION);
    assert_int_equal(info.mode, 0600);
    assert_true(info.bytes_per_breaker <= 8192);
    assert_int_equal(info.segment_bytes % 4096, 0);
    assert_int_equal(info.creator_pid, getpid());
    assert_int_equal(cbshm_info(NULL, &info), CBSHM_EINVAL);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static int count_breakers(void *ctx, const struct cbshm_snapshot *s)
{
    (void)s;
    ++*(unsigned *)ctx;
    return 0;
}

static void test_ten_thousand_breakers_fit_resolve_and_check_clean(void **state)
{
    enum { N = 10000 };
    struct cbshm_config cfg;
    struct cbshm *shm;
    struct cbshm_info info;
    char seg[64];
    unsigned seen = 0;

    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.capacity = N;
    cfg.mode = 0600;
    cfg.n_breakers = N;
    cfg.breakers = calloc(N, sizeof *cfg.breakers);
    assert_non_null(cfg.breakers);
    for (int i = 0; i < N; i++) {
        snprintf(cfg.breakers[i].name, sizeof cfg.breakers[i].name, "svc-%05d.api", i);
        cbshm_settings_default(&cfg.breakers[i].settings);
    }
    assert_int_equal(cbshm_apply(&cfg, t_segment_name(seg), 0, NULL, NULL, NULL), 0);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    for (int i = 0; i < N; i++) {
        struct cbshm_breaker *b;
        assert_int_equal(cbshm_breaker_get(shm, cfg.breakers[i].name, &b), 0);
        assert_string_equal(cbshm_breaker_name(b), cfg.breakers[i].name);
        cbshm_breaker_release(b);
    }
    assert_int_equal(cbshm_foreach(shm, count_breakers, &seen), 0);
    assert_int_equal(seen, N);
    assert_int_equal(cbshm_info(shm, &info), 0);
    assert_int_equal(info.breakers, N);
    assert_true(info.bytes_per_breaker <= 8192);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
    /* Reapplying the same 10,000 changes nothing. */
    unsigned n = 1;
    assert_int_equal(cbshm_apply(&cfg, seg, 0, NULL, NULL, &n), 0);
    assert_int_equal(n, 0);
    cbshm_close(shm);
    free(cfg.breakers);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_open_refuses_group_write_the_configuration_did_not_grant(void **state)
{
    char seg[64], path[128], yaml[128];

    (void)state;
    t_apply(t_segment_name(seg), YAML); /* mode 0600 */
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(chmod(path, 0620), 0);
    assert_int_equal(t_open_rc(seg), CBSHM_EPERM);
    assert_int_equal(cbshm_destroy(seg), 0);
    /* Group write needs a group: our own, which we may give it. */
    snprintf(yaml, sizeof yaml, "mode: \"0660\"\ngroup: %u\nbreakers:\n  - name: a\n",
             (unsigned)getegid());
    t_apply(seg, yaml);
    assert_int_equal(t_open_rc(seg), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* Runs fn in a child that first enters new namespaces (flags); the child's
   exit status comes back, 77 when the namespaces cannot be had here. */
static int in_namespace(int flags, int (*fn)(const char *seg), const char *seg)
{
    int pid = _Fork();

    if (pid == 0) {
        if (unshare(flags) != 0)
            _exit(77);
        if (flags & CLONE_NEWPID) {
            /* Only children enter the new PID namespace. _Fork runs no
               fork handlers (here or above): what the library knew of
               its namespace before must not pass to the grandchild. */
            int child = _Fork();
            if (child == 0)
                _exit(fn(seg));
            _exit(t_wait(child));
        }
        _exit(fn(seg));
    }
    return t_wait(pid);
}

static int open_from_another_pid_namespace(const char *seg)
{
    return t_open_rc(seg) == CBSHM_EPIDNS ? 0 : 1;
}

static void test_open_refuses_a_segment_of_another_pid_namespace(void **state)
{
    char seg[64];
    int rc;

    (void)state;
    if (geteuid() != 0)
        skip();
    t_apply(t_segment_name(seg), YAML);
    rc = in_namespace(CLONE_NEWPID, open_from_another_pid_namespace, seg);
    assert_int_equal(cbshm_destroy(seg), 0);
    if (rc == 77)
        skip(); /* no PID namespaces in this sandbox */
    assert_int_equal(rc, 0);
}

/* Opened before the namespace was entered: the EPIDNS check at attach
   never sees it. */
static struct cbshm *inherited;

static int probe_from_another_pid_namespace(const char *seg)
{
    struct cbshm_breaker *b;
    struct cbshm_ticket t;

    (void)seg;
    if (cbshm_breaker_get(inherited, "a", &b) != 0)
        return 2;
    /* The lease's owner, our grandparent, lives, but no pid outside this
       namespace can be seen from it: a second probe is one too many. */
    return cbshm_allow(b, &t) == CBSHM_EREJECTED ? 0 : 1;
}

static void test_a_process_in_another_pid_namespace_takes_back_no_live_lease(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    char seg[64];
    int rc;

    (void)state;
    if (geteuid() != 0)
        skip();
    t_apply(t_segment_name(seg), "capacity: 4\nbreakers:\n  - name: a\n"
                                 "    failure_threshold: 1\n    open_timeout: 1s\n");
    assert_int_equal(cbshm_open(seg, 0, &inherited), 0);
    assert_int_equal(cbshm_breaker_get(inherited, "a", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_record(b, &t, CBSHM_FAILURE), 0); /* opens */
    usleep(1100 * 1000);
    assert_int_equal(cbshm_allow(b, &t), 0); /* the one probe */
    /* A look at the lease's owner here, before the fork: what this
       process knows of its namespace must not pass to the child. */
    assert_int_equal(cbshm_allow(b, &(struct cbshm_ticket){0}), CBSHM_EREJECTED);
    rc = in_namespace(CLONE_NEWPID, probe_from_another_pid_namespace, seg);
    assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0);
    cbshm_breaker_release(b);
    cbshm_close(inherited);
    assert_int_equal(cbshm_destroy(seg), 0);
    if (rc == 77)
        skip(); /* no PID namespaces in this sandbox */
    assert_int_equal(rc, 0);
}

static void *bulkhead_call(void *unused)
{
    struct cbshm_breaker *b;
    struct cbshm_snapshot snap;
    struct cbshm_ticket t;

    (void)unused;
    if (cbshm_breaker_get(inherited, "a", &b) != 0)
        return (void *)2;
    /* The one slot's holder, our grandparent, lives: its slot is not taken
       back, and no pid of this namespace goes into the segment - the call
       runs unguarded and says why. */
    if (cbshm_allow(b, &t) != 0 || cbshm_breaker_error(b) != CBSHM_EPIDNS)
        return (void *)3;
    if (cbshm_snapshot(inherited, "a", &snap) != 0 || snap.bulkhead_in_flight != 1 ||
        snap.bulkhead_reclaimed != 0)
        return (void *)4;
    return (void *)(intptr_t)(cbshm_record(b, &t, CBSHM_SUCCESS) == 0 ? 0 : 5);
}

/* In a thread of its own, which holds no claim: as after fork(), whose
   handlers give a child none (in_namespace's _Fork runs no handlers). */
static int bulkhead_call_from_another_pid_namespace(const char *seg)
{
    pthread_t th;
    void *rc;

    (void)seg;
    if (pthread_create(&th, NULL, bulkhead_call, NULL) != 0 || pthread_join(th, &rc) != 0)
        return 6;
    return (int)(intptr_t)rc;
}

static void test_a_process_in_another_pid_namespace_takes_no_bulkhead_slot(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    char seg[64];
    int rc;

    (void)state;
    if (geteuid() != 0)
        skip();
    t_apply(t_segment_name(seg), "capacity: 4\nbreakers:\n  - name: a\n"
                                 "    max_concurrent_calls: 1\n");
    assert_int_equal(cbshm_open(seg, 0, &inherited), 0);
    assert_int_equal(cbshm_breaker_get(inherited, "a", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    rc = in_namespace(CLONE_NEWPID, bulkhead_call_from_another_pid_namespace, seg);
    assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0);
    cbshm_breaker_release(b);
    cbshm_close(inherited);
    assert_int_equal(cbshm_destroy(seg), 0);
    if (rc == 77)
        skip(); /* no PID namespaces in this sandbox */
    assert_int_equal(rc, 0);
}

/* Counts a failure and says whether a stripe has this process's pid
   (before the thread's exit gives its claim back). */
static void *count_a_failure(void *b)
{
    cbshm_execute(b, t_fail_fn, NULL); /* a closed breaker: counted */
    for (int i = 1; i < CBSHM_STRIPES; i++)
        if (atomic_load(&inherited->hdr->stripe_owner[i]) >> 32 == (uint64_t)getpid())
            return b;
    return NULL;
}

static int take_a_free_lease_from_another_pid_namespace(const char *seg)
{
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    pthread_t th;
    void *claimed;
    int rc;

    (void)seg;
    if (cbshm_breaker_get(inherited, "a", &b) != 0)
        return 2;
    /* A lease with this pid in it would be taken back from outside as
       its owner's: the call runs unguarded and says why. */
    rc = cbshm_allow(b, &t);
    if (rc != 0 || cbshm_breaker_error(b) != CBSHM_EPIDNS)
        return 1;
    if (cbshm_record(b, &t, CBSHM_SUCCESS) != 0)
        return 3;
    /* So would a stripe claim: a new thread (no claim yet) counts on the
       shared stripe. */
    if (cbshm_breaker_get(inherited, "c", &b) != 0)
        return 2;
    if (pthread_create(&th, NULL, count_a_failure, b) != 0 || pthread_join(th, &claimed) != 0)
        return 4;
    return claimed == NULL ? 0 : 5;
}

static void test_a_process_in_another_pid_namespace_holds_no_lease(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm_snapshot s;
    struct cbshm_ticket t;
    char seg[64];
    int rc;

    (void)state;
    if (geteuid() != 0)
        skip();
    t_apply(t_segment_name(seg), "capacity: 4\nbreakers:\n  - name: a\n"
                                 "    failure_threshold: 1\n    open_timeout: 1s\n  - name: c\n");
    assert_int_equal(cbshm_open(seg, 0, &inherited), 0);
    assert_int_equal(cbshm_breaker_get(inherited, "a", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    assert_int_equal(cbshm_record(b, &t, CBSHM_FAILURE), 0); /* opens */
    usleep(1100 * 1000);
    rc = in_namespace(CLONE_NEWPID, take_a_free_lease_from_another_pid_namespace, seg);
    if (rc != 77) {
        assert_int_equal(cbshm_snapshot(inherited, "a", &s), 0);
        assert_int_equal(s.state, CBSHM_STATE_HALF_OPEN);
        assert_int_equal(s.probes_in_flight, 0);
        assert_int_equal(cbshm_allow(b, &t), 0); /* the lease is still free */
        assert_int_equal(cbshm_breaker_error(b), 0);
        assert_int_equal(cbshm_allow(b, &(struct cbshm_ticket){0}), CBSHM_EREJECTED);
        assert_int_equal(cbshm_record(b, &t, CBSHM_SUCCESS), 0);
    }
    cbshm_breaker_release(b);
    cbshm_close(inherited);
    assert_int_equal(cbshm_destroy(seg), 0);
    if (rc == 77)
        skip(); /* no PID namespaces in this sandbox */
    assert_int_equal(rc, 0);
}

static int apply_into_a_tiny_dev_shm(const char *seg)
{
    struct cbshm_config *cfg;
    const char *y = "capacity: 2000\nbreakers:\n  - name: a\n";
    int rc;

    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=256k") != 0)
        return 77;
    if (cbshm_config_load_string(y, strlen(y), "t", &cfg, NULL) != 0)
        return 2;
    rc = cbshm_apply(cfg, seg, 0, NULL, NULL, NULL);
    cbshm_config_free(cfg);
    if (rc != -ENOSPC)
        return 3;
    /* Nothing half-made is left behind, and a segment that fits works. */
    if (t_open_rc(seg) != CBSHM_ENOSEG)
        return 4;
    t_apply(seg, YAML);
    return t_open_rc(seg) == 0 && cbshm_destroy(seg) == 0 ? 0 : 5;
}

static void test_a_full_dev_shm_is_enospc_not_sigbus(void **state)
{
    char seg[64];
    int rc;

    (void)state;
    if (geteuid() != 0)
        skip();
    rc = in_namespace(CLONE_NEWNS, apply_into_a_tiny_dev_shm, t_segment_name(seg));
    if (rc == 77)
        skip(); /* no mount namespaces in this sandbox */
    assert_int_equal(rc, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_open_refuses_group_write_the_configuration_did_not_grant),
    cmocka_unit_test(test_open_refuses_a_segment_of_another_pid_namespace),
    cmocka_unit_test(test_a_process_in_another_pid_namespace_takes_back_no_live_lease),
    cmocka_unit_test(test_a_process_in_another_pid_namespace_takes_no_bulkhead_slot),
    cmocka_unit_test(test_a_process_in_another_pid_namespace_holds_no_lease),
    cmocka_unit_test(test_a_full_dev_shm_is_enospc_not_sigbus),
    cmocka_unit_test(test_ten_thousand_breakers_fit_resolve_and_check_clean),
    cmocka_unit_test(test_segment_is_created_with_the_configured_mode_whatever_the_umask),
    cmocka_unit_test(test_open_reports_a_missing_segment),
    cmocka_unit_test(test_open_refuses_each_header_mismatch_with_its_own_code),
    cmocka_unit_test(test_open_refuses_a_truncated_or_empty_segment),
    cmocka_unit_test(test_open_refuses_a_segment_writable_by_others),
    cmocka_unit_test(test_open_refuses_a_segment_owned_by_another_user),
    cmocka_unit_test(test_destroy_unlinks_and_marks_the_segment_retired),
    cmocka_unit_test(test_applying_the_same_file_twice_changes_nothing_and_keeps_counters),
    cmocka_unit_test(test_changing_a_threshold_keeps_live_state),
    cmocka_unit_test(test_apply_adds_and_removes_and_a_dry_run_changes_nothing),
    cmocka_unit_test(test_apply_refuses_more_breakers_than_capacity_and_changes_nothing),
    cmocka_unit_test(test_check_names_a_scribbled_slot_and_index),
    cmocka_unit_test(test_scribbled_open_periods_do_not_overflow_the_jitter),
    cmocka_unit_test(test_info_reports_geometry),
};
T_MAIN(tests)
