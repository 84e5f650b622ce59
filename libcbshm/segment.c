/* SPDX-License-Identifier: MIT */
/*
 * A named POSIX shared-memory segment: create, attach, validate, peek.
 * Its end and replacement (destroy, retire, watch) are in retire.c.
 *
 * Creation is race-free and crash-safe: O_CREAT|O_EXCL picks one creator;
 * the mode is set explicitly (umask does not decide it); the whole size
 * is reserved with posix_fallocate so a full /dev/shm is ENOSPC now rather
 * than SIGBUS later; the header's magic is stored last with release order,
 * so an attacher either sees a complete segment or EUNINIT.
 *
 * Attaching treats the segment as untrusted input: every header field is
 * checked against what this library would have written.
 */
#define _GNU_SOURCE /* O_NOFOLLOW with shm_open, fchown */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define PAGE            4096u
#define PUBLISH_WAIT_NS 2000000000ull /* how long apply waits for a racing creator */

static uint64_t fnv_mix(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xffu;
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t cbshm__abi_fingerprint(void)
{
    const uint64_t parts[] = {
        sizeof(struct cbshm_header),
        sizeof(struct cbshm_slot),
        sizeof(struct cbshm_stripe),
        sizeof(struct cbshm_lease),
        sizeof(pthread_mutex_t),
        offsetof(struct cbshm_header, lock),
        offsetof(struct cbshm_header, breakers),
        offsetof(struct cbshm_slot, stripes),
        offsetof(struct cbshm_slot, base),
        offsetof(struct cbshm_header, stripe_owner),
        offsetof(struct cbshm_header, events_offset),
        offsetof(struct cbshm_header, workers),
        offsetof(struct cbshm_slot, bulk),
        offsetof(struct cbshm_header, fleet),
        sizeof(struct cbshm_fleet_log),
        offsetof(struct cbshm_slot, mode_cause),
        CBSHM_BULKHEAD_MAX,
        CBSHM_WORKERS_MAX,
        sizeof(struct cbshm_event_rec),
        CBSHM_EVENTS,
        CBSHM_STRIPES,
        CBSHM_PROBES_MAX,
        CBSHM_NAME_MAX,
        sizeof(void *),
        0x0102030405060708ull, /* byte order, through fnv_mix's byte walk */
    };
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        h = fnv_mix(h, parts[i]);
    return h;
}

/* Where the event ring starts: the first line after the name index. */
uint64_t cbshm__events_offset(uint32_t capacity, uint32_t buckets)
{
    uint64_t end = CBSHM_HEADER_BYTES + (uint64_t)capacity * sizeof(struct cbshm_slot) +
                   (uint64_t)buckets * sizeof(uint32_t);
    return (end + CBSHM_LINE - 1) / CBSHM_LINE * CBSHM_LINE;
}

uint64_t cbshm__segment_bytes(uint32_t capacity, uint32_t *index_buckets)
{
    uint32_t buckets = 16;
    uint64_t bytes;

    while (buckets < 2u * capacity)
        buckets <<= 1;
    if (index_buckets != NULL)
        *index_buckets = buckets;
    bytes = cbshm__events_offset(capacity, buckets) +
            (uint64_t)CBSHM_EVENTS * sizeof(struct cbshm_event_rec);
    return (bytes + PAGE - 1) / PAGE * PAGE;
}

/*
 * A segment name is '/' and then 1 to CBSHM_SEGMENT_NAME_MAX - 1 bytes of
 * A-Z a-z 0-9 . _ -, but not "/." or "/..". glibc makes it a path under
 * /dev/shm, where those two are directories, and every tool prints it: a
 * small set of plain bytes cannot steer a terminal, a log or a scraper.
 */
int cbshm__check_segment_name(const char *name)
{
    size_t n = 0;

    if (name == NULL || name[0] != '/')
        return CBSHM_EBADNAME;
    for (const char *p = name + 1; *p != '\0'; p++, n++) {
        char c = *p;
        if (n == CBSHM_SEGMENT_NAME_MAX - 1)
            return CBSHM_EBADNAME;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return CBSHM_EBADNAME;
    }
    if (n == 0 || strcmp(name, "/.") == 0 || strcmp(name, "/..") == 0)
        return CBSHM_EBADNAME;
    return 0;
}

const char *cbshm_default_segment(void)
{
    const char *env = getenv("CBSHM_SEGMENT");

    return env != NULL && env[0] != '\0' ? env : "/cbshm";
}

int cbshm__validate_header(const struct cbshm_header *h, uint64_t file_bytes)
{
    uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
    uint32_t buckets;

    if (magic == 0)
        return CBSHM_EUNINIT;
    if (magic != CBSHM_MAGIC)
        return CBSHM_EBADMAGIC;
    if (h->layout_version != CBSHM_LAYOUT_VERSION)
        return CBSHM_EVERSION;
    if (h->abi_fingerprint != cbshm__abi_fingerprint())
        return CBSHM_EABI;
    if (h->segment_bytes > file_bytes)
        return CBSHM_ETRUNCATED;
    if (h->header_bytes != CBSHM_HEADER_BYTES || h->slot_bytes != sizeof(struct cbshm_slot) ||
        h->capacity == 0 || h->capacity > CBSHM_CAPACITY_MAX)
        return CBSHM_ECORRUPT;
    if (h->segment_bytes != cbshm__segment_bytes(h->capacity, &buckets) ||
        h->index_buckets != buckets || h->slots_offset != CBSHM_HEADER_BYTES ||
        h->index_offset != h->slots_offset + (uint64_t)h->capacity * h->slot_bytes ||
        h->events_count != CBSHM_EVENTS ||
        h->events_offset != cbshm__events_offset(h->capacity, buckets))
        return CBSHM_ECORRUPT;
    return 0;
}

/*
 * The view of a validated header. Another writer of the segment may change
 * the header after it was validated, so the geometry is not read again from
 * it: capacity is read once, checked, and everything else derived from it
 * as the creator did (an observer whose owner rewrote the offsets between
 * the check and this would otherwise index outside the mapping). Returns
 * 0, or CBSHM_ECORRUPT when the capacity read now does not fit the mapping.
 */
static int view_init(struct cbshm *shm, const char *name, unsigned flags, void *base, size_t bytes,
                     int fd)
{
    uint32_t capacity = *(volatile const uint32_t *)&((const struct cbshm_header *)base)->capacity;
    uint32_t buckets;
    struct stat st;

    if (capacity == 0 || capacity > CBSHM_CAPACITY_MAX ||
        cbshm__segment_bytes(capacity, &buckets) > bytes)
        return CBSHM_ECORRUPT;
    memset(shm, 0, sizeof *shm);
    if (fd >= 0 && fstat(fd, &st) == 0) { /* which object the name meant: see cbshm__watch */
        shm->dev = (uint64_t)st.st_dev;
        shm->ino = (uint64_t)st.st_ino;
    }
    strcpy(shm->name, name);
    shm->flags = flags;
    shm->base = base;
    shm->bytes = bytes;
    shm->hdr = base;
    shm->capacity = capacity;
    shm->index_buckets = buckets;
    shm->slots = (struct cbshm_slot *)((char *)base + CBSHM_HEADER_BYTES);
    shm->index = (uint32_t *)((char *)base + CBSHM_HEADER_BYTES +
                              (uint64_t)capacity * sizeof(struct cbshm_slot));
    shm->events =
        (struct cbshm_event_rec *)((char *)base + cbshm__events_offset(capacity, buckets));
    cbshm__register(shm);
    return 0;
}

/*
 * Who may map the segment. Whoever can write it is trusted by every
 * process attached to it (the table, and the robust mutex whose list
 * links the locker's unlock writes through), so: root maps only what no
 * other user can write (owned by root, writable by no group but root's);
 * another user maps read-write only its own segments, and read-only
 * (CBSHM_READ_ONLY: no lock taken, nothing written) any that the file's
 * permissions let it read. Never one writable by others.
 */
static int check_owner(const struct stat *st, unsigned flags)
{
    uid_t me = geteuid();

    if (st->st_mode & S_IWOTH)
        return CBSHM_EPERM;
    if (me == 0)
        return st->st_uid == 0 && (!(st->st_mode & S_IWGRP) || st->st_gid == 0) ? 0 : CBSHM_EPERM;
    if (st->st_uid != me && !(flags & CBSHM_READ_ONLY))
        return CBSHM_EPERM;
    return 0;
}

static uint64_t pidns_inode(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* This process's PID namespace, read once per process: a process never
   changes its own (unshare and setns move only its later children). Keyed
   by pid, so a child made without the fork handler (_Fork, clone) reads
   it again; the fork handler forgets it too. */
static _Atomic uint64_t my_pidns;
static _Atomic uint32_t my_pidns_pid; /* the process my_pidns was read in */

void cbshm__pidns_forked(void)
{
    atomic_store_explicit(&my_pidns_pid, 0, memory_order_relaxed);
}

bool cbshm__in_segment_pidns(const struct cbshm_header *h)
{
    uint32_t me = (uint32_t)getpid();
    uint64_t mine;

    if (atomic_load_explicit(&my_pidns_pid, memory_order_acquire) == me) {
        mine = atomic_load_explicit(&my_pidns, memory_order_relaxed);
    } else {
        cbshm__fork_init();
        mine = pidns_inode();
        atomic_store_explicit(&my_pidns, mine, memory_order_relaxed);
        atomic_store_explicit(&my_pidns_pid, me, memory_order_release);
    }
    return mine != 0 && mine == h->pidns_inode;
}

/* May this process write its pid where the segment's processes judge
   owners by it (leases, stripe claims)? Not from another PID namespace,
   where its pid means some other process or none. A segment that recorded
   no namespace takes back from nobody, so any pid is harmless there. */
bool cbshm__pid_ours(const struct cbshm_header *h)
{
    return h->pidns_inode == 0 || cbshm__in_segment_pidns(h);
}

/*
 * What the header says about who may use the segment: a process in
 * another PID namespace would see other processes' pids in leases and
 * stripe claims (two containers can both have a pid 1), and a segment made
 * group-writable by someone other than its creator's configuration is
 * refused like one writable by others.
 */
static int check_users(const struct cbshm_header *h, const struct stat *st)
{
    uint64_t mine = pidns_inode();

    if (h->pidns_inode != 0 && mine != 0 && h->pidns_inode != mine)
        return CBSHM_EPIDNS;
    if ((st->st_mode & S_IWGRP) && !(h->mode & S_IWGRP))
        return CBSHM_EPERM;
    return 0;
}

#ifdef CBSHM_IMAGE_SEAM
/*
 * A view of memory the caller owns (the fuzz targets' in-memory images),
 * checked as cbshm__segment_attach checks a mapped file, which the image
 * stands for: a regular file of mode 0600 owned by this process, so the
 * owner and mode checks pass; check_users' namespace rule is applied with
 * the namespace this process read once, not a stat per attach. The view
 * has no name, and every path that goes back to the name finds none:
 * cbshm__watch (shm_open("") fails with EINVAL, which leaves a view as it
 * is), a successor after a retire (CBSHM_EBADNAME), and cbshm_close, which
 * frees the view but leaves the memory to its caller.
 */
int cbshm__attach_image(void *base, size_t bytes, unsigned flags, struct cbshm **out)
{
    struct cbshm *shm;
    int rc;

    if (base == NULL || out == NULL || (flags & ~(CBSHM_FAIL_CLOSED | CBSHM_READ_ONLY)) != 0)
        return CBSHM_EINVAL;
    if (bytes < CBSHM_HEADER_BYTES)
        return CBSHM_ETRUNCATED;
    if ((rc = cbshm__validate_header(base, bytes)) != 0)
        return rc;
    if (!cbshm__pid_ours(base))
        return CBSHM_EPIDNS;
    if ((shm = malloc(sizeof *shm)) == NULL)
        return -ENOMEM;
    if ((rc = view_init(shm, "", flags, base, bytes, -1)) != 0) {
        free(shm);
        return rc;
    }
    *out = shm;
    return 0;
}
#endif

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int cbshm__segment_attach(const char *name, unsigned flags, bool wait_publish, struct cbshm **out)
{
    uint64_t give_up = cbshm__clock_real(CLOCK_MONOTONIC) + PUBLISH_WAIT_NS;
    struct cbshm *shm = NULL;
    struct stat st;
    void *base = MAP_FAILED;
    int fd = -1, rc;

    if ((rc = cbshm__check_segment_name(name)) != 0)
        return rc;
    if ((shm = malloc(sizeof *shm)) == NULL)
        return -ENOMEM;
    /* O_NONBLOCK: a FIFO squatting the name must not stall the open. */
    fd = shm_open(
        name, (flags & CBSHM_READ_ONLY ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
        0);
    if (fd < 0) {
        /* glibc's shm_open says EINVAL for a directory at a valid name. */
        rc = errno == ENOENT ? CBSHM_ENOSEG : errno == EINVAL ? CBSHM_EBADMAGIC : -errno;
        goto out;
    }
    for (;;) {
        if (fstat(fd, &st) != 0) {
            rc = -errno;
            goto out;
        }
        if (!S_ISREG(st.st_mode)) { /* a FIFO or socket squatting the name */
            rc = CBSHM_EBADMAGIC;
            goto out;
        }
        if ((rc = check_owner(&st, flags)) != 0)
            goto out;
        if ((uint64_t)st.st_size < CBSHM_HEADER_BYTES) {
            /* A creator between shm_open and ftruncate, or a foreign
               object far too small to be ours. */
            rc = st.st_size == 0 ? CBSHM_EUNINIT : CBSHM_ETRUNCATED;
        } else {
            base = mmap(NULL, (size_t)st.st_size,
                        flags & CBSHM_READ_ONLY ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED,
                        fd, 0);
            if (base == MAP_FAILED) {
                rc = -errno;
                goto out;
            }
            rc = cbshm__validate_header(base, (uint64_t)st.st_size);
            CBSHM_CRASH_POINT("attach.validated");
            if (rc == 0 && (rc = check_users(base, &st)) != 0) {
                munmap(base, (size_t)st.st_size);
                goto out;
            }
            if (rc == 0)
                break;
            munmap(base, (size_t)st.st_size);
            base = MAP_FAILED;
        }
        if (rc != CBSHM_EUNINIT || !wait_publish || cbshm__clock_real(CLOCK_MONOTONIC) > give_up)
            goto out;
        sleep_ms(1);
    }
    if ((rc = view_init(shm, name, flags, base, (size_t)st.st_size, fd)) != 0) {
        munmap(base, (size_t)st.st_size);
        goto out;
    }
    *out = shm;
    shm = NULL;
    base = MAP_FAILED;
out:
    if (fd >= 0)
        close(fd);
    free(shm);
    return rc;
}

struct cbshm_header cbshm__absent_header = {.retired = 1};
struct cbshm_slot cbshm__absent_slot;

/* A late handle with no mapping yet: what it needs to attach later. */
static int late_handle(const char *name, unsigned flags, struct cbshm **out)
{
    static _Atomic uint64_t next_id = 1ull << 62; /* apart from the registry's ids */
    struct cbshm *shm = calloc(1, sizeof *shm);

    if (shm == NULL)
        return -ENOMEM;
    /* Its slow paths take the chain lock: a child forked meanwhile must
       not inherit it held (fork.c), attached segment or not. */
    cbshm__fork_init();
    strcpy(shm->name, name);
    shm->flags = flags;
    shm->hdr = &cbshm__absent_header;
    shm->slots = &cbshm__absent_slot;
    shm->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    *out = shm;
    return 0;
}

struct cbshm *cbshm__live(struct cbshm *shm, int *rc)
{
    struct cbshm *last;

    if (shm->name[0] == '\0') /* an image: nothing replaces it */
        return shm;
    /* The common case, without the chain's lock: only a retired mapping
       (the flag is never cleared) ever gets a successor. */
    if (shm->base != NULL && !atomic_load_explicit(&shm->hdr->retired, memory_order_acquire))
        return shm;
    /* Late, destroyed, or replaced: the segment now under the name, as
       breaker handles move to it - a snapshot, a listing or an event
       reader on a long-lived handle must not read a dead table forever. */
    if ((last = cbshm__successor(shm, rc)) != NULL || shm->base == NULL)
        return last;
    /* Destroyed with nothing in its place yet: the newest mapping, read as
       it was left (cbshm_check says it was destroyed). */
    pthread_mutex_lock(&cbshm__chain_lock);
    for (last = shm; last->successor != NULL; last = last->successor)
        ;
    pthread_mutex_unlock(&cbshm__chain_lock);
    return last;
}

int cbshm_open(const char *name, unsigned flags, struct cbshm **out)
{
    int rc;

    if (out == NULL || (flags & ~(CBSHM_FAIL_CLOSED | CBSHM_READ_ONLY | CBSHM_LATE)) != 0)
        return CBSHM_EINVAL;
    rc = cbshm__segment_attach(name, flags, false, out);
    /* Late: whatever kept it from attaching now (not there yet, not
       published yet, not ours until this process drops to its owner, a
       layout this library does not read) may pass; a bad name or no
       memory will not. */
    if (rc != 0 && (flags & CBSHM_LATE) && rc != CBSHM_EBADNAME && rc != -ENOMEM)
        rc = late_handle(name, flags, out);
    return rc;
}

void cbshm_close(struct cbshm *shm)
{
    while (shm != NULL) {
        struct cbshm *next = shm->successor;
        cbshm__release_stripes(shm);
        /* An image's memory is its caller's; a late handle may have none. */
        if (shm->name[0] != '\0' && shm->base != NULL)
            munmap(shm->base, shm->bytes);
        free(shm);
        shm = next; /* the mappings that replaced it go with it */
    }
}

int cbshm__segment_create(const char *name, const struct cbshm_config *cfg, struct cbshm **out)
{
    struct cbshm *shm = NULL;
    struct cbshm_header *h;
    uint32_t buckets;
    uint64_t bytes;
    void *base = MAP_FAILED;
    int fd = -1, rc, created = 0, viewed = 0;

    if ((rc = cbshm__check_segment_name(name)) != 0)
        return rc;
    if (cfg->capacity == 0 || cfg->capacity > CBSHM_CAPACITY_MAX || cfg->n_breakers > cfg->capacity)
        return cfg->n_breakers > cfg->capacity ? CBSHM_EFULL : CBSHM_EINVAL;
    bytes = cbshm__segment_bytes(cfg->capacity, &buckets);
    if ((shm = malloc(sizeof *shm)) == NULL)
        return -ENOMEM;
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                  (mode_t)(cfg->mode & 0777));
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    created = 1;
    CBSHM_CRASH_POINT("create.after_open");
    if (fchmod(fd, (mode_t)(cfg->mode & 0777)) != 0 ||
        (cfg->has_group && fchown(fd, (uid_t)-1, (gid_t)cfg->gid) != 0) ||
        ftruncate(fd, (off_t)bytes) != 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = posix_fallocate(fd, 0, (off_t)bytes)) != 0) {
        rc = -rc;
        goto out;
    }
    base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        goto out;
    }
    CBSHM_CRASH_POINT("create.before_init");
    h = base;
    h->layout_version = CBSHM_LAYOUT_VERSION;
    h->header_bytes = CBSHM_HEADER_BYTES;
    h->abi_fingerprint = cbshm__abi_fingerprint();
    h->segment_bytes = bytes;
    h->capacity = cfg->capacity;
    h->slot_bytes = sizeof(struct cbshm_slot);
    h->slots_offset = CBSHM_HEADER_BYTES;
    h->index_offset = CBSHM_HEADER_BYTES + (uint64_t)cfg->capacity * sizeof(struct cbshm_slot);
    h->index_buckets = buckets;
    h->events_count = CBSHM_EVENTS;
    h->events_offset = cbshm__events_offset(cfg->capacity, buckets);
    h->creator_pid = (uint32_t)getpid();
    h->created_ns = cbshm__now();
    h->mode = cfg->mode & 0777;
    h->pidns_inode = pidns_inode();
    if ((rc = cbshm__lock_init(&h->lock)) != 0)
        goto out;
    if ((rc = view_init(shm, name, 0, base, bytes, fd)) != 0) /* we wrote it: never */
        goto out;
    viewed = 1;
    for (size_t i = 0; i < cfg->n_breakers; i++) {
        uint32_t slot;
        rc = cbshm__table_add(shm, cfg->breakers[i].name, &cfg->breakers[i].settings, &slot);
        if (rc != 0)
            goto out;
    }
    CBSHM_CRASH_POINT("create.before_publish");
    atomic_store_explicit(&h->magic, CBSHM_MAGIC, memory_order_release);
    *out = shm;
    shm = NULL;
    base = MAP_FAILED;
    created = 0;
out:
    if (viewed && shm != NULL)
        cbshm__release_stripes(shm);
    if (base != MAP_FAILED)
        munmap(base, bytes);
    if (created)
        shm_unlink(name);
    if (fd >= 0)
        close(fd);
    free(shm);
    return rc;
}

/*
 * Removes `name` only if it is still unpublished: a creator that died
 * before publishing left it, and nobody can be attached to it. Returns 0
 * when it removed it, or the code that says why not.
 */
int cbshm__segment_unlink_unpublished(const char *name)
{
    struct stat st;
    int fd, rc = 0;

    if ((fd = shm_open(name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0)) < 0)
        return errno == ENOENT ? CBSHM_ENOSEG : -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
    } else if ((uint64_t)st.st_size >= sizeof(uint64_t)) {
        uint64_t magic = 0;
        if (pread(fd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic)
            rc = -EIO;
        else if (magic != 0)
            rc = -EEXIST;
    }
    close(fd);
    if (rc == 0 && shm_unlink(name) != 0)
        rc = errno == ENOENT ? 0 : -errno;
    return rc;
}

int cbshm_peek(const char *name, struct cbshm_peek *out)
{
    struct cbshm_header h;
    struct stat st;
    ssize_t got;
    int fd, rc;

    if (out == NULL)
        return CBSHM_EINVAL;
    if ((rc = cbshm__check_segment_name(name)) != 0)
        return rc;
    /* O_NONBLOCK: a FIFO at the name must not stall us until a writer comes. */
    if ((fd = shm_open(name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0)) < 0)
        return errno == ENOENT ? CBSHM_ENOSEG : -errno;
    memset(&h, 0, sizeof h);
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    got = pread(fd, &h, offsetof(struct cbshm_header, lock), 0);
    close(fd);
    memset(out, 0, sizeof *out);
    if (got >= (ssize_t)offsetof(struct cbshm_header, segment_bytes)) {
        out->magic = atomic_load_explicit(&h.magic, memory_order_relaxed);
        out->layout_version = h.layout_version;
        out->abi_fingerprint = h.abi_fingerprint;
    }
    out->my_layout_version = CBSHM_LAYOUT_VERSION;
    out->my_abi_fingerprint = cbshm__abi_fingerprint();
    out->file_bytes = (uint64_t)st.st_size;
    out->owner_uid = (uint32_t)st.st_uid;
    out->file_mode = (uint32_t)(st.st_mode & 07777);
    return 0;
}

int cbshm_info(struct cbshm *shm, struct cbshm_info *out)
{
    uint32_t live;
    const struct cbshm_header *h;
    int rc;

    if (shm == NULL || out == NULL)
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    h = shm->hdr;
    memset(out, 0, sizeof *out);
    out->layout_version = h->layout_version;
    out->capacity = shm->capacity;
    live = atomic_load_explicit(&h->breakers, memory_order_relaxed);
    out->breakers = live <= shm->capacity ? live : shm->capacity;
    out->index_buckets = shm->index_buckets;
    out->segment_bytes = shm->bytes;
    out->bytes_per_breaker = sizeof(struct cbshm_slot) + 2 * sizeof(uint32_t);
    out->lock_repairs = atomic_load_explicit(&h->lock_repairs, memory_order_relaxed);
    out->workers = cbshm__workers_alive(shm);
    out->creator_pid = h->creator_pid;
    out->mode = h->mode;
    return 0;
}
