/* SPDX-License-Identifier: MIT */
/*
 * A segment's end and its replacement: cbshm_destroy() retires and unlinks
 * it; a worker that finds its name now means another object (removed by
 * hand, RemoveIPC) retires it too; handles on a retired segment move to
 * the one `cbctl apply` creates in its place.
 */
#define _GNU_SOURCE /* O_NOFOLLOW with shm_open */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/*
 * A segment that `cbctl destroy` retired is replaced, by `cbctl apply`, by
 * a new one under the same name. Handles on the old mapping move to the
 * newest mapping of this chain; the first to get here attaches it, once
 * per process. The old mappings stay (threads may still read them) until
 * the handle they hang off is closed. Returns NULL and *rc while no
 * live replacement exists yet.
 */
pthread_mutex_t cbshm__chain_lock = PTHREAD_MUTEX_INITIALIZER;

struct cbshm *cbshm__successor(struct cbshm *shm, int *rc)
{
    struct cbshm *last = shm, *fresh = NULL;
    int err = 0;

    pthread_mutex_lock(&cbshm__chain_lock);
    while (last->successor != NULL)
        last = last->successor;
    if (atomic_load_explicit(&last->hdr->retired, memory_order_acquire)) {
        err = cbshm__segment_attach(shm->name, shm->flags, false, &fresh);
        if (err == 0 && atomic_load_explicit(&fresh->hdr->retired, memory_order_acquire)) {
            cbshm_close(fresh); /* the old one, between retire and unlink */
            err = CBSHM_ERETIRED;
        }
        if (err == 0)
            last = last->successor = fresh;
    }
    pthread_mutex_unlock(&cbshm__chain_lock);
    if (err != 0) {
        *rc = err;
        return NULL;
    }
    return last;
}

/*
 * Retires an attached segment: the flag says so, and a new generation in
 * every slot sends each handle's next call to the slow path, which sees
 * the flag - the hot path itself never has to look. No lock: a stopped
 * lock holder must not keep workers on a destroyed segment; the bump is a
 * compare-and-swap, and transitions under the lock keep it
 * (cbshm__ctl_publish).
 */
void cbshm__retire(struct cbshm *shm)
{
    atomic_store_explicit(&shm->hdr->retired, 1, memory_order_release);
    for (uint32_t i = 0; i < shm->capacity; i++) {
        _Atomic uint64_t *ctl = &shm->slots[i].ctl;
        uint64_t c = atomic_load_explicit(ctl, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(
            ctl, &c,
            CBSHM_CTL_MAKE(CBSHM_CTL_GEN(c) + 1, CBSHM_CTL_EPOCH(c), CBSHM_CTL_MODE(c),
                           CBSHM_CTL_STATE(c)),
            memory_order_release, memory_order_relaxed))
            ;
    }
}

/*
 * Now and then (every CBSHM_WATCH_CALLS calls of a thread, at most once a
 * second per mapping) a worker checks that the segment's name still
 * means the object it has mapped. A segment removed by hand (rm in
 * /dev/shm, systemd-logind's RemoveIPC) is then retired like one that
 * `cbctl destroy` removed, for every process attached to it, and handles
 * move to the segment that replaces it.
 */
void cbshm__watch(struct cbshm *shm)
{
    static const uint64_t every_ns = 1000000000ull;
    uint64_t now = cbshm__now();
    uint64_t last = atomic_load_explicit(&shm->checked_ns, memory_order_relaxed);
    struct stat st;
    int fd, gone = 0;

    if (now - last < every_ns ||
        !atomic_compare_exchange_strong_explicit(&shm->checked_ns, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    /* Retired, and still calling through it: a destroy died between the
       flag and the generations, or a handle came after. Send them on. */
    if (atomic_load_explicit(&shm->hdr->retired, memory_order_relaxed)) {
        cbshm__retire(shm);
        return;
    }
    /* O_NONBLOCK: a FIFO put at the name must not stall a worker's call. */
    fd = shm_open(shm->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) {
        gone = errno == ENOENT;
    } else {
        gone = fstat(fd, &st) == 0 &&
               ((uint64_t)st.st_dev != shm->dev || (uint64_t)st.st_ino != shm->ino);
        close(fd);
    }
    if (gone)
        cbshm__retire(shm);
}

int cbshm_destroy(const char *name)
{
    struct cbshm *shm;
    int rc;

    if ((rc = cbshm__check_segment_name(name)) != 0)
        return rc;
    /* Tell attached processes, when the segment is one we can read; a
       foreign or corrupt object is removed all the same. */
    if (cbshm__segment_attach(name, 0, false, &shm) == 0) {
        cbshm__retire(shm);
        cbshm_close(shm);
    }
    if (shm_unlink(name) != 0)
        return errno == ENOENT ? CBSHM_ENOSEG : -errno;
    return 0;
}

int cbshm__unlink_if_same(const struct cbshm *shm)
{
    struct stat st;
    int fd, same;

    if ((fd = shm_open(shm->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0)) < 0)
        return errno == ENOENT ? 0 : -errno;
    same =
        fstat(fd, &st) == 0 && (uint64_t)st.st_dev == shm->dev && (uint64_t)st.st_ino == shm->ino;
    close(fd);
    /* Another creator may have replaced it since: leave theirs alone. */
    if (same && shm_unlink(shm->name) != 0 && errno != ENOENT)
        return -errno;
    return 0;
}
