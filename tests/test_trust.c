/* SPDX-License-Identifier: MIT */
/*
 * The segment's owner is the trust boundary (README "Security"): whoever
 * can write a segment is trusted by every process attached to it, so
 * root maps only what no other user can write, another user maps
 * read-write only its own segments, members of its group observe it
 * through read-only views that take no lock, and apply never adopts a
 * segment someone else made. Run as root, with numeric ids that name no
 * account (setresuid in forked children); skipped otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define WORKER_UID 4242 /* the service user the segment belongs to */
#define WORKER_GID 4343 /* the segment's group */
#define OTHER_UID  4444 /* a user who is neither */

static const char *YAML = "breakers:\n  - name: api\n    failure_threshold: 2\n";
/* Group write granted by the configuration (the header records it). */
static const char *YAML_0660 =
    "mode: \"0660\"\ngroup: 0\nbreakers:\n  - name: api\n    failure_threshold: 2\n";

#define ROOT_ONLY()                                                                       \
    do {                                                                                  \
        (void)state;                                                                      \
        if (geteuid() != 0) {                                                             \
            fprintf(stderr, "test_trust: not root: the trust tests need a second uid\n"); \
            skip();                                                                       \
        }                                                                                 \
    } while (0)

static int count_cb(void *ctx, const struct cbshm_snapshot *s)
{
    (void)s;
    ++*(int *)ctx;
    return 0;
}

/* Becomes uid with gid as its only group, in a child. */
static void become(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
        _exit(99);
}

static void own(const char *seg, uid_t uid, gid_t gid, mode_t mode)
{
    char path[128];

    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(chown(path, uid, gid), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* Root refuses a segment a lesser user or group can write, even its own
   file: group write by a group other than root's is enough. */
static void test_root_maps_no_segment_another_user_or_group_can_write(void **state)
{
    char seg[64];

    ROOT_ONLY();
    t_apply(t_segment_name(seg), YAML_0660);
    assert_int_equal(t_open_rc(seg), 0);
    own(seg, 0, WORKER_GID, 0660);
    assert_int_equal(t_open_rc(seg), CBSHM_EPERM);
    own(seg, 0, 0, 0660);
    assert_int_equal(t_open_rc(seg), 0);
    own(seg, WORKER_UID, WORKER_GID, 0600);
    assert_int_equal(t_open_rc(seg), CBSHM_EPERM);
    /* Read-only changes nothing for root: it switches to the owner. */
    struct cbshm *shm;
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &shm), CBSHM_EPERM);
    assert_int_equal(cbshm_destroy(seg), 0); /* unlinked all the same */
    assert_int_equal(t_open_rc(seg), CBSHM_ENOSEG);
}

/* A member of the segment's group observes a 0640 segment: it lists,
   snapshots, checks and reads events through a read-only mapping, and
   can change nothing. Before, it could not even list (cbctl always
   opened read-write). */
static void test_a_group_member_observes_a_0640_segment_read_only(void **state)
{
    struct cbshm_breaker *b;
    struct cbshm *shm;
    char seg[64];
    int pid;

    ROOT_ONLY();
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "api", &b), 0);
    cbshm_execute(b, t_fail_fn, NULL);
    cbshm_execute(b, t_fail_fn, NULL); /* open, with a transition event */
    cbshm_breaker_release(b);
    cbshm_close(shm);
    own(seg, WORKER_UID, WORKER_GID, 0640);
    if ((pid = fork()) == 0) {
        struct cbshm_snapshot s;
        struct cbshm_event ev[4];
        uint64_t cursor = 0;
        size_t n = 0;
        int count = 0;

        become(OTHER_UID, WORKER_GID);
        if (cbshm_open(seg, 0, &shm) != -EACCES)
            _exit(1); /* the file's mode already says no to read-write */
        if (cbshm_open(seg, CBSHM_READ_ONLY, &shm) != 0)
            _exit(2);
        if (cbshm_snapshot(shm, "api", &s) != 0 || s.state != CBSHM_STATE_OPEN || s.failures != 2)
            _exit(3);
        if (cbshm_foreach(shm, count_cb, &count) != 0 || count != 1)
            _exit(4);
        if (cbshm_check(shm, NULL, NULL) != 0)
            _exit(5);
        if (cbshm_events_read(shm, &cursor, ev, 4, &n, NULL) != 0 || n != 1 ||
            ev[0].to != CBSHM_STATE_OPEN)
            _exit(6);
        if (cbshm_breaker_get(shm, "api", &b) != CBSHM_EPERM ||
            cbshm_set_mode(shm, "api", CBSHM_MODE_FORCED_CLOSED) != CBSHM_EPERM ||
            cbshm_set_mode_for(shm, "api", CBSHM_MODE_FORCED_OPEN, 1000) != CBSHM_EPERM ||
            cbshm_reset(shm, "api") != CBSHM_EPERM)
            _exit(7);
        cbshm_close(shm);
        _exit(0);
    }
    assert_int_equal(t_wait(pid), 0);
    /* ... and someone outside the group cannot even read it. */
    if ((pid = fork()) == 0) {
        become(OTHER_UID, OTHER_UID);
        _exit(cbshm_open(seg, CBSHM_READ_ONLY, &shm) == -EACCES ? 0 : 1);
    }
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* The owner itself attaches read-write; a read-only view of its own
   segment cannot count (no breaker handle) and so never writes. */
static void test_the_owner_attaches_read_write_and_nobody_else_does(void **state)
{
    char seg[64];
    int pid;

    ROOT_ONLY();
    t_apply(t_segment_name(seg), YAML_0660);
    own(seg, WORKER_UID, WORKER_GID, 0660);
    if ((pid = fork()) == 0) {
        struct cbshm_breaker *b;
        struct cbshm *shm;
        become(WORKER_UID, WORKER_GID);
        if (cbshm_open(seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "api", &b) != 0)
            _exit(1);
        cbshm_breaker_release(b);
        cbshm_close(shm);
        _exit(0);
    }
    assert_int_equal(t_wait(pid), 0);
    /* A group member may write the file (0660), but it is not the owner:
       it attaches only read-only. */
    if ((pid = fork()) == 0) {
        struct cbshm *shm;
        become(OTHER_UID, WORKER_GID);
        if (cbshm_open(seg, 0, &shm) != CBSHM_EPERM)
            _exit(1);
        if (cbshm_open(seg, CBSHM_READ_ONLY, &shm) != 0)
            _exit(2);
        cbshm_close(shm);
        _exit(0);
    }
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A squat: another user made the name first. Apply - as root or as the
   configured owner - refuses it and changes nothing; it used to print "no
   changes", leave the squatter's file writable by the squatter, and let
   root's workers attach. */
static void test_apply_never_adopts_a_segment_another_user_made(void **state)
{
    struct cbshm_config *cfg;
    struct stat st;
    char seg[64], path[128], yaml[256];
    int pid;

    ROOT_ONLY();
    t_segment_name(seg);
    if ((pid = fork()) == 0) { /* the squatter */
        become(OTHER_UID, OTHER_UID);
        cbshm_config_load_string(YAML, strlen(YAML), "squat", &cfg, NULL);
        _exit(cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) == 0 ? 0 : 1);
    }
    assert_int_equal(t_wait(pid), 0);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    /* Root, no owner configured: the segment must be root's. */
    assert_int_equal(cbshm_config_load_string(YAML, strlen(YAML), "root", &cfg, NULL), 0);
    assert_int_equal(cbshm_apply(cfg, seg, 0, NULL, NULL, NULL), CBSHM_EPERM);
    cbshm_config_free(cfg);
    /* The owner configured: apply runs as that user (cbctl switches) and
       the squatter is not that user either (its 0600 file does not even
       open for it). */
    snprintf(yaml, sizeof yaml, "owner: %d\n%s", WORKER_UID, YAML);
    if ((pid = fork()) == 0) {
        int rc;
        become(WORKER_UID, WORKER_GID);
        cbshm_config_load_string(yaml, strlen(yaml), "owner", &cfg, NULL);
        rc = cbshm_apply(cfg, seg, 0, NULL, NULL, NULL);
        _exit(rc == CBSHM_EPERM || rc == -EACCES ? 0 : 1);
    }
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, OTHER_UID); /* nothing changed */
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* Apply with `owner:` runs as that owner and creates the segment as its
   own; as anyone else (root included) it refuses, saying so, rather than
   make a segment root would have to map. */
static void test_apply_with_an_owner_creates_the_segment_as_that_user(void **state)
{
    struct cbshm_config *cfg;
    struct stat st;
    char seg[64], path[128], yaml[256];
    int pid;

    ROOT_ONLY();
    t_segment_name(seg);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    snprintf(yaml, sizeof yaml, "owner: %d\ngroup: %d\nmode: \"0640\"\n%s", WORKER_UID, WORKER_GID,
             YAML);
    assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "owner", &cfg, NULL), 0);
    assert_int_equal(cfg->has_owner, 1);
    assert_int_equal(cfg->uid, WORKER_UID);
    assert_int_equal(cbshm_apply(cfg, seg, 0, NULL, NULL, NULL), CBSHM_EPERM);
    assert_int_equal(stat(path, &st), -1); /* nothing made */
    if ((pid = fork()) == 0) {
        gid_t g = WORKER_GID;
        if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 ||
            setresuid(WORKER_UID, WORKER_UID, WORKER_UID) != 0)
            _exit(99);
        _exit(cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) == 0 ? 0 : 1);
    }
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, WORKER_UID);
    assert_int_equal(st.st_gid, WORKER_GID);
    assert_int_equal(st.st_mode & 0777, 0640);
    cbshm_config_free(cfg);
    /* Root with a group of other users allowed to write: refused. */
    snprintf(yaml, sizeof yaml, "group: %d\nmode: \"0660\"\n%s", WORKER_GID, YAML);
    assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "group", &cfg, NULL), 0);
    assert_int_equal(cbshm_apply(cfg, "/cbshm-t-trust-group", 0, NULL, NULL, NULL), CBSHM_EPERM);
    assert_int_equal(t_open_rc("/cbshm-t-trust-group"), CBSHM_ENOSEG);
    cbshm_config_free(cfg);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A FIFO at the name: every open returns at once, refusing it; apply
   used to block forever opening it to clean up. */
static void test_a_fifo_at_the_name_is_refused_at_once(void **state)
{
    struct cbshm_config *cfg;
    struct cbshm *shm;
    char seg[64], path[128];
    int pid;

    ROOT_ONLY();
    t_segment_name(seg);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(mkfifo(path, 0600), 0);
    if ((pid = fork()) == 0) {
        alarm(10); /* a hang is a failure, not a stuck test */
        if (cbshm_open(seg, 0, &shm) != CBSHM_EBADMAGIC ||
            cbshm_open(seg, CBSHM_READ_ONLY, &shm) != CBSHM_EBADMAGIC)
            _exit(1);
        cbshm_config_load_string(YAML, strlen(YAML), "fifo", &cfg, NULL);
        if (cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) != CBSHM_EBADMAGIC)
            _exit(2);
        _exit(0);
    }
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(unlink(path), 0);
}

/* Runs a shell command line; its output (both streams) into out. */
static int sh(char *out, size_t size, const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    FILE *f;
    size_t n;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    assert_non_null(f = popen(cmd, "r"));
    n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    while (fgetc(f) != EOF) /* the rest, so the writer gets no SIGPIPE */
        ;
    rc = pclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Writes yaml to a file only root can read (0600). */
static void root_file(char *path, size_t size, const char *yaml)
{
    FILE *f;

    snprintf(path, size, "/tmp/cbshm-trust-%d.yaml", (int)getpid());
    assert_non_null(f = fopen(path, "w"));
    fputs(yaml, f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

#define AS_MEMBER "setpriv --reuid=4444 --regid=4343 --clear-groups "

/* The deployment the README shows: root applies a configuration that
   names the workers' user; the segment is that user's, root's cbctl works
   on it as that user, and a member of its group observes it read-only. */
static void test_root_applies_for_the_workers_user_and_works_on_it_as_that_user(void **state)
{
    char seg[64], path[128], out[4096], yaml[256];
    struct stat st;

    ROOT_ONLY();
    t_segment_name(seg);
    snprintf(yaml, sizeof yaml, "owner: %d\ngroup: %d\nmode: \"0640\"\n%s", WORKER_UID, WORKER_GID,
             YAML);
    root_file(path, sizeof path, yaml); /* read before the switch */
    assert_int_equal(sh(out, sizeof out, "%s -s %s apply -f %s", CBCTL_PATH, seg, path), 0);
    unlink(path);
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, WORKER_UID);
    assert_int_equal(st.st_gid, WORKER_GID);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(sh(out, sizeof out, "%s -s %s open api", CBCTL_PATH, seg), 0);
    assert_int_equal(sh(out, sizeof out, "%s -s %s list", CBCTL_PATH, seg), 0);
    assert_non_null(strstr(out, "forced_open"));
    assert_int_equal(sh(out, sizeof out, "%s -s %s check", CBCTL_PATH, seg), 0);
    /* A member of the group reads, through a read-only view, and only reads. */
    assert_int_equal(sh(out, sizeof out, AS_MEMBER "%s -s %s list", CBCTL_PATH, seg), 0);
    assert_non_null(strstr(out, "api"));
    assert_int_equal(sh(out, sizeof out, AS_MEMBER "%s -s %s show api", CBCTL_PATH, seg), 0);
    assert_int_equal(sh(out, sizeof out, AS_MEMBER "%s -s %s metrics", CBCTL_PATH, seg), 0);
    assert_int_equal(sh(out, sizeof out, AS_MEMBER "%s -s %s events", CBCTL_PATH, seg), 0);
    assert_int_equal(sh(out, sizeof out, AS_MEMBER "%s -s %s check", CBCTL_PATH, seg), 0);
    assert_int_equal(sh(out, sizeof out, AS_MEMBER "%s -s %s close api", CBCTL_PATH, seg), 1);
    assert_non_null(strstr(out, "belongs to uid 4242: only its owner changes it"));
    assert_int_equal(sh(out, sizeof out, AS_MEMBER "%s -s %s destroy", CBCTL_PATH, seg), 1);
    assert_int_equal(sh(out, sizeof out, "%s -s %s destroy", CBCTL_PATH, seg), 0);
    assert_int_equal(stat(path, &st), -1);
}

/* A squat, seen from root's cbctl: refused with the squatter named, exit 1,
   the file untouched - with an owner configured or without. */
static void test_root_cbctl_apply_refuses_a_squat_naming_its_owner(void **state)
{
    char seg[64], path[128], out[4096], yaml[256], shm[128];
    struct stat st;

    ROOT_ONLY();
    t_segment_name(seg);
    root_file(path, sizeof path, YAML);
    assert_int_equal(chmod(path, 0644), 0); /* the squatter reads it too */
    assert_int_equal(sh(out, sizeof out,
                        "setpriv --reuid=4444 --regid=4444 --clear-groups %s -s %s apply -f %s",
                        CBCTL_PATH, seg, path),
                     0);
    assert_int_equal(sh(out, sizeof out, "%s -s %s apply -f %s", CBCTL_PATH, seg, path), 1);
    assert_non_null(strstr(out, "belongs to uid 4444"));
    assert_non_null(strstr(out, "not adopting it"));
    snprintf(yaml, sizeof yaml, "owner: %d\n%s", WORKER_UID, YAML);
    root_file(path, sizeof path, yaml);
    assert_int_equal(sh(out, sizeof out, "%s -s %s apply -f %s", CBCTL_PATH, seg, path), 1);
    assert_non_null(strstr(out, "belongs to uid 4444, not to uid 4242, the configured owner"));
    unlink(path);
    snprintf(shm, sizeof shm, "/dev/shm%s", seg);
    assert_int_equal(stat(shm, &st), 0);
    assert_int_equal(st.st_uid, 4444);
    /* A group of other users allowed to write what root would use. */
    snprintf(yaml, sizeof yaml, "group: %d\nmode: \"0660\"\n%s", WORKER_GID, YAML);
    root_file(path, sizeof path, yaml);
    assert_int_equal(sh(out, sizeof out, "%s -s %s-g apply -f %s", CBCTL_PATH, seg, path), 1);
    assert_non_null(strstr(out, "set `owner:` to the workers' user"));
    unlink(path);
    assert_int_equal(sh(out, sizeof out, "%s -s %s destroy", CBCTL_PATH, seg), 0);
}

/* Runs act in a child that stops at crash point `at`; returns its pid,
   stopped there. */
static int stopped_at(const char *at, void (*act)(const char *seg, int fd), const char *seg, int fd)
{
    int pid, status;

    if ((pid = fork()) == 0) {
        setenv("CBSHM_CRASH_AT", at, 1);
        setenv("CBSHM_CRASH_SIGNAL", "STOP", 1);
        become(OTHER_UID, WORKER_GID);
        act(seg, fd);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
    assert_true(WIFSTOPPED(status));
    return pid;
}

static int names_ok_cb(void *ctx, const struct cbshm_snapshot *s)
{
    int *bad = ctx;
    for (const char *c = s->name; *c != '\0'; c++)
        *bad += (unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f;
    return 0;
}

/* An observer lists; its report goes down the pipe fd. */
static void observe_and_report(const char *seg, int fd)
{
    struct cbshm *shm;
    int bad = 0, rc[2] = {-1, -1};

    rc[0] = cbshm_open(seg, CBSHM_READ_ONLY, &shm);
    if (rc[0] == 0) {
        rc[1] = cbshm_foreach(shm, names_ok_cb, &bad);
        rc[1] = rc[1] == 0 && bad ? 1 : rc[1];
        cbshm_close(shm);
    }
    if (write(fd, rc, sizeof rc) != (ssize_t)sizeof rc)
        _exit(3);
}

/* The owner rewrites the header's capacity after an observer validated it
   and before it made its view: the observer must not index by the new
   value (it read slots past its mapping: SIGSEGV in 25 of 2,000 `cbctl
   list` runs of a group member while the owner toggled it). */
static void test_an_observer_never_indexes_by_a_header_changed_after_its_check(void **state)
{
    struct cbshm_header *h;
    char seg[64];
    size_t bytes;
    int fds[2], pid, rc[2];

    ROOT_ONLY();
    t_apply(t_segment_name(seg), YAML);
    own(seg, WORKER_UID, WORKER_GID, 0640);
    assert_int_equal(pipe(fds), 0);
    pid = stopped_at("attach.validated", observe_and_report, seg, fds[1]);
    h = t_raw_map(seg, &bytes);
    h->capacity = CBSHM_CAPACITY_MAX; /* the owner scribbles */
    kill(pid, SIGCONT);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(read(fds[0], rc, sizeof rc), (ssize_t)sizeof rc);
    assert_int_equal(rc[0], CBSHM_ECORRUPT);
    h->capacity = 256;
    munmap(h, bytes);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* The owner rewrites a breaker's name after the observer checked it in the
   slot and before it copied it: the name is judged as copied, so an escape
   sequence never reaches the caller (it reached `cbctl metrics` raw). */
static void test_an_observer_never_hands_out_a_name_changed_after_its_check(void **state)
{
    struct cbshm_slot *slots;
    char seg[64];
    size_t bytes;
    void *base;
    int fds[2], pid, rc[2];

    ROOT_ONLY();
    t_apply(t_segment_name(seg), YAML);
    own(seg, WORKER_UID, WORKER_GID, 0640);
    assert_int_equal(pipe(fds), 0);
    pid = stopped_at("foreach.name_checked", observe_and_report, seg, fds[1]);
    base = t_raw_map(seg, &bytes);
    slots = (struct cbshm_slot *)((char *)base + CBSHM_HEADER_BYTES);
    memcpy(slots[0].name, "\x1b]0;X\a", 7); /* same length as "api", and more */
    kill(pid, SIGCONT);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(read(fds[0], rc, sizeof rc), (ssize_t)sizeof rc);
    assert_int_equal(rc[0], 0);
    assert_int_equal(rc[1], CBSHM_ECORRUPT); /* left out and said so; never handed out */
    memcpy(slots[0].name, "api", 4);
    munmap(base, bytes);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* Field `n` (1-based) of /proc/pid/stat, after the command's parentheses. */
static long stat_field(int pid, int n)
{
    char path[64], buf[1024], *p;
    long v = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(buf, sizeof buf, f) != NULL && (p = strrchr(buf, ')')) != NULL) {
        p += 2; /* field 3 */
        for (int i = 3; i < n && p != NULL; i++)
            p = (p = strchr(p, ' ')) != NULL ? p + 1 : NULL;
        if (p != NULL)
            v = strtol(p, NULL, 10);
    }
    fclose(f);
    return v;
}

/* The child of `parent` that runs as uid, or 0. */
static int child_as(int parent, uid_t uid)
{
    char path[64];
    struct stat st;

    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;

    while (d != NULL && found == 0 && (e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name);
        snprintf(path, sizeof path, "/proc/%d", pid);
        if (pid > 0 && stat(path, &st) == 0 && st.st_uid == uid && stat_field(pid, 4) == parent)
            found = pid;
    }
    if (d != NULL)
        closedir(d);
    return found;
}

/* Root's cbctl, switched to the segment's owner, keeps no hold on root's
   terminal: the switched process is in a session of its own with no
   controlling tty (so TIOCSTI cannot push keys into root's shell), while
   root's cbctl waits and passes signals on. */
static void test_root_cbctl_works_as_the_owner_away_from_roots_terminal(void **state)
{
    char seg[64];
    int master, pid, worker = 0, status;

    ROOT_ONLY();
    t_apply(t_segment_name(seg), YAML);
    own(seg, WORKER_UID, WORKER_GID, 0640);
    if ((pid = forkpty(&master, NULL, NULL, NULL)) == 0) {
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "events", "--follow", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    for (int i = 0; i < 200 && worker == 0; i++) {
        usleep(20000);
        worker = child_as(pid, WORKER_UID);
    }
    assert_true(worker > 0);
    long tty = stat_field(worker, 7), session = stat_field(worker, 6);
    long root_tty = stat_field(pid, 7);
    kill(pid, SIGTERM); /* root's cbctl passes it on */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(master);
    assert_true(root_tty != 0); /* the pty is root's cbctl's terminal */
    assert_int_equal(tty, 0);
    assert_int_equal(session, worker);
    assert_int_equal(kill(worker, 0), -1); /* gone with it */
    assert_int_equal(cbshm_destroy(seg), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_root_maps_no_segment_another_user_or_group_can_write),
    cmocka_unit_test(test_a_group_member_observes_a_0640_segment_read_only),
    cmocka_unit_test(test_the_owner_attaches_read_write_and_nobody_else_does),
    cmocka_unit_test(test_apply_never_adopts_a_segment_another_user_made),
    cmocka_unit_test(test_apply_with_an_owner_creates_the_segment_as_that_user),
    cmocka_unit_test(test_a_fifo_at_the_name_is_refused_at_once),
    cmocka_unit_test(test_root_applies_for_the_workers_user_and_works_on_it_as_that_user),
    cmocka_unit_test(test_root_cbctl_apply_refuses_a_squat_naming_its_owner),
    cmocka_unit_test(test_an_observer_never_indexes_by_a_header_changed_after_its_check),
    cmocka_unit_test(test_an_observer_never_hands_out_a_name_changed_after_its_check),
    cmocka_unit_test(test_root_cbctl_works_as_the_owner_away_from_roots_terminal),
};

T_MAIN(tests)
