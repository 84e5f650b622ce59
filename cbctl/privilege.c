/* SPDX-License-Identifier: MIT */
/*
 * Root works on a segment as its owner. Whoever can write a segment is
 * trusted by every process that maps it (README "Security"), so cbctl run
 * as root never maps a segment owned by another user: it looks at the
 * object (fstat, no mapping) and becomes that user for good, its group
 * the segment's, with no supplementary groups, before the library maps
 * anything. Only that user (or root) can replace the name after the look
 * (/dev/shm is sticky), and it can do no more to us then than to itself.
 * Files the command reads itself (apply's YAML) are read before. Not
 * root: nothing to do; the library's checks apply to the caller as is.
 *
 * The switched process could still reach root's terminal: it holds it as
 * its controlling tty, and TIOCSTI there pushes keystrokes into root's
 * shell - what su and sudo learnt (CVE-2016-2779). So the work goes to a
 * child in a session of its own, with no controlling terminal (it keeps
 * the descriptors, to print and to read watch's keys); the parent stays
 * root, passes the signals a terminal sends on, and exits as the child did.
 * The owner can signal its own process, never root's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cbctl.h"

/* A user's name for messages, or its number. */
const char *cbctl_user_name(unsigned uid, char *buf, size_t size)
{
    struct passwd *pw = getpwuid((uid_t)uid);

    if (pw != NULL)
        snprintf(buf, size, "%s (uid %u)", pw->pw_name, uid);
    else
        snprintf(buf, size, "uid %u", uid);
    return buf;
}

static volatile sig_atomic_t child_pid;
static int (*after_child)(void *ctx, int code);
static void *after_child_ctx;

static void pass_on(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

/* Returns in the child, in its own session; the parent waits and exits. */
static int split_session(const char *what)
{
    static const int passed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
    struct sigaction sa;
    int status, code;
    pid_t pid;

    fflush(NULL);
    if ((pid = fork()) < 0) {
        cbctl_err("%s: cannot fork to leave root's terminal: %s", what, strerror(errno));
        return CBCTL_FAILED;
    }
    if (pid == 0) {
        if (setsid() < 0) {
            cbctl_err("%s: cannot leave root's terminal: %s", what, strerror(errno));
            _exit(CBCTL_FAILED);
        }
        return CBCTL_CONTINUE;
    }
    child_pid = pid;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pass_on;
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
        sigaction(passed[i], &sa, NULL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    code = WIFSIGNALED(status) ? 128 + WTERMSIG(status)
           : WIFEXITED(status) ? WEXITSTATUS(status)
                               : CBCTL_FAILED;
    if (after_child != NULL)
        code = after_child(after_child_ctx, code);
    _exit(code);
}

void cbctl_after_child(int (*fn)(void *ctx, int code), void *ctx)
{
    after_child = fn;
    after_child_ctx = ctx;
}

int cbctl_become(const char *what, unsigned uid, unsigned gid, int with_group)
{
    gid_t g = (gid_t)gid;
    char who[64];
    int rc;

    if (geteuid() != 0 || uid == 0)
        return CBCTL_CONTINUE;
    if ((rc = split_session(what)) != CBCTL_CONTINUE)
        return rc;
    /* The group first, while we may still change it; then the user. */
    if (setgroups(with_group ? 1 : 0, &g) != 0 || setresgid(g, g, g) != 0 ||
        setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
        cbctl_err("%s: cannot switch to the segment's owner %s: %s", what,
                  cbctl_user_name(uid, who, sizeof who), strerror(errno));
        return CBCTL_FAILED;
    }
    if (setresuid(0, 0, 0) == 0) { /* the switch must be for good */
        cbctl_err("%s: could switch back to root after becoming %s", what,
                  cbctl_user_name(uid, who, sizeof who));
        return CBCTL_FAILED;
    }
    return CBCTL_CONTINUE;
}

int cbctl_segment_owner(const char *segment, unsigned *uid, unsigned *gid)
{
    struct cbshm_peek p;
    struct stat st;
    int fd, rc;

    /* The library's name check first: "/.." must not open /dev. */
    if (cbshm_peek(segment, &p) == CBSHM_EBADNAME)
        return -1;
    if ((fd = shm_open(segment, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0)) < 0)
        return -1;
    rc = fstat(fd, &st);
    close(fd);
    if (rc != 0 || !S_ISREG(st.st_mode))
        return -1;
    *uid = (unsigned)st.st_uid;
    *gid = (unsigned)st.st_gid;
    return 0;
}

int cbctl_become_segment_owner(const char *what, const char *segment)
{
    unsigned uid, gid;

    /* No such segment, a bad name, not a regular file: the command says
       so; a root-owned one: the library refuses what root must not map. */
    if (geteuid() != 0 || cbctl_segment_owner(segment, &uid, &gid) != 0 || uid == 0)
        return CBCTL_CONTINUE;
    return cbctl_become(what, uid, gid, 0);
}
