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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

int cbctl_become(const char *what, unsigned uid, unsigned gid, int with_group)
{
    gid_t g = (gid_t)gid;
    char who[64];

    if (geteuid() != 0 || uid == 0)
        return CBCTL_CONTINUE;
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
