/* SPDX-License-Identifier: MIT */
/*
 * The table lock: one process-shared robust mutex in the segment header.
 * This file alone deals with a dead owner. When pthread_mutex_lock()
 * reports EOWNERDEAD, the previous owner died inside a structural change;
 * we repair the table (re-derive the index and counts from the slots,
 * finish or undo the change the journal names), mark the mutex consistent
 * and count the repair. If the mutex is beyond repair we say so.
 *
 * Nobody waits for the lock forever: a holder that is stopped (SIGSTOP,
 * a debugger) or a lock word scribbled to look held would otherwise stall
 * every worker that needs a transition. After LOCK_WAIT_NS the caller
 * gets CBSHM_ELOCK and, on the hot path, fails open. The hot path then
 * waits no more for LOCK_BACKOFF_NS: it only tries the lock, so a wedged
 * lock costs a worker one second once, not a second a call, and a lock
 * whose holder died is taken (and repaired) at once.
 *
 * The mutex lives in the segment, so whoever can write the segment can
 * write its words, and glibc trusts them. Two defences live here:
 *
 * - Before every lock, the mutex's kind must be the one glibc gives a
 *   robust process-shared mutex (taken from a fresh one made here). glibc
 *   picks its locking algorithm by that word alone and asserts (SIGABRT,
 *   in every process that takes the lock, cbctl too) when another kind's
 *   invariants do not hold: with glibc 2.36 a priority-protected kind
 *   aborts every locker, a priority-inheriting one every locker that
 *   finds the lock word naming a thread the kernel cannot boost; the
 *   other kinds lock, but without the robust list a dead holder is never
 *   noticed. Any kind but ours is refused with CBSHM_ECORRUPT, as is a
 *   mutex glibc says is not recoverable (only apply, which replaces the
 *   segment, helps either). With the kind right, every value of the other
 *   words is a held lock (waited for up to the bound), a dead owner's
 *   (repaired) or a free one: tests/test_lock.c writes each word with
 *   each kind of value and calls every function that locks.
 *
 * - A robust mutex sits on its locker's robust list while held, and the
 *   list's links are the mutex's __list words, in the segment. glibc's
 *   unlock writes through them (next->prev = prev, prev->next = next):
 *   a segment writer who changes them while we hold the lock chooses
 *   where in our process the unlock writes, and what (the class of
 *   Apache's scoreboard CVE-2019-0211). Unlock also leaves the mutex on
 *   the list, to be written through after the segment is unmapped, when
 *   the lock or kind word no longer says we hold it. So right after
 *   taking the lock we copy every word glibc wrote, and right before
 *   unlocking we write them back: the links, the kind and the owner as
 *   glibc left them, and the lock word's owner bits, when they changed,
 *   as ours (with the waiters bit, so no waiter sleeps through the
 *   unlock). Only the holder writes these words, so the copy is exact as
 *   long as the holder locks no other robust mutex and keeps it past our
 *   unlock (the library never does; cbshm_check's report must not).
 *   This narrows the window to the few instructions between the restore
 *   and glibc's reads, it does not close it: the segment's owner model
 *   (DESIGN rule 15: only the owning user can write it) is the defence,
 *   this is depth behind it.
 */
#define _GNU_SOURCE /* pthread_mutex_clocklock */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define LOCK_WAIT_NS    1000000000L
#define LOCK_BACKOFF_NS 5000000000ull

#include "internal.h"

/* glibc's layout of the mutex is known to us: check and restore it. */
#if defined(__GLIBC__) && defined(__PTHREAD_MUTEX_HAVE_PREV) && __PTHREAD_MUTEX_HAVE_PREV
#define GLIBC_MUTEX    1
#define FUTEX_WAITERS  0x80000000u
#define FUTEX_TID_MASK 0x3fffffffu

/* What glibc wrote into the table lock when this thread took it. */
static __thread struct held {
    pthread_mutex_t *mutex; /* the lock this thread holds; NULL: none */
    struct __pthread_mutex_s words;
} held;

static _Atomic int robust_kind; /* 0 until a lock was made here */
#endif

static int attr_init(pthread_mutexattr_t *a)
{
    int rc;

    if ((rc = pthread_mutexattr_init(a)) != 0)
        return rc;
    if ((rc = pthread_mutexattr_setpshared(a, PTHREAD_PROCESS_SHARED)) != 0 ||
        (rc = pthread_mutexattr_setrobust(a, PTHREAD_MUTEX_ROBUST)) != 0)
        pthread_mutexattr_destroy(a);
    return rc;
}

int cbshm__lock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc;

    if ((rc = attr_init(&a)) != 0)
        return -rc;
    rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
}

/* Holding the lock makes change_seq odd; one a dead holder left odd stays
   so until its successor unlocks. */
static void changes_begin(struct cbshm_header *h)
{
    uint64_t s = atomic_load_explicit(&h->change_seq, memory_order_relaxed);

    if ((s & 1) == 0)
        atomic_store_explicit(&h->change_seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* before any change is seen */
}

/* CBSHM_ECORRUPT when glibc would misread the mutex (see the top). */
static int sane(const pthread_mutex_t *m)
{
#ifdef GLIBC_MUTEX
    int want = atomic_load_explicit(&robust_kind, memory_order_relaxed);

    if (want == 0) {
        pthread_mutexattr_t a;
        pthread_mutex_t fresh;

        if (attr_init(&a) != 0)
            return CBSHM_ELOCK;
        if (pthread_mutex_init(&fresh, &a) != 0) {
            pthread_mutexattr_destroy(&a);
            return CBSHM_ELOCK;
        }
        pthread_mutexattr_destroy(&a);
        want = fresh.__data.__kind;
        pthread_mutex_destroy(&fresh);
        atomic_store_explicit(&robust_kind, want, memory_order_relaxed);
    }
    if (__atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED) != want)
        return CBSHM_ECORRUPT;
#else
    (void)m;
#endif
    return 0;
}

int cbshm__lock_usable(const struct cbshm *shm)
{
    return sane(&shm->hdr->lock);
}

/* Taken: keep what glibc wrote, for cbshm__unlock to put back. */
static void keep(pthread_mutex_t *m)
{
#ifdef GLIBC_MUTEX
    memcpy(&held.words, &m->__data, sizeof held.words);
    held.mutex = m;
#else
    (void)m;
#endif
}

/* What pthread said, as the caller hears it: repaired and taken, or not. */
static int taken(struct cbshm *shm, int rc)
{
    struct cbshm_header *h = shm->hdr;

    if (rc == 0) {
        changes_begin(h);
        keep(&h->lock);
        return 0;
    }
    if (rc == EOWNERDEAD) {
        changes_begin(h);
        cbshm__table_repair(shm);
        if (pthread_mutex_consistent(&h->lock) != 0) {
            pthread_mutex_unlock(&h->lock);
            return CBSHM_ELOCK;
        }
        keep(&h->lock);
        atomic_fetch_add_explicit(&h->lock_repairs, 1, memory_order_relaxed);
        return 0;
    }
    /* A previous owner died and the next gave up on the repair: no lock
       call will ever succeed again. Only a new segment helps. */
    if (rc == ENOTRECOVERABLE)
        return CBSHM_ECORRUPT;
    /* ETIMEDOUT, EBUSY, and whatever a mutex scribbled between our check
       and glibc's read makes the C library say (EINVAL, EAGAIN, EDEADLK):
       the lock could not be taken, one code to the caller, never a raw
       errno. */
    return CBSHM_ELOCK;
}

/* The back-off is the process's, per segment object (mappings of one
   share shm->id): a process with a mapping per breaker pays one wait, not
   one each. A few segments at once; a lost entry costs one more wait. */
#define BACKOFF_SEGMENTS 8
static struct {
    _Atomic uint64_t id, until_ns;
} backoff[BACKOFF_SEGMENTS];

static bool backing_off(uint64_t id, uint64_t now)
{
    for (int i = 0; i < BACKOFF_SEGMENTS; i++)
        if (atomic_load_explicit(&backoff[i].id, memory_order_relaxed) == id)
            return now < atomic_load_explicit(&backoff[i].until_ns, memory_order_relaxed);
    return false;
}

static void back_off(uint64_t id, uint64_t until)
{
    int at = (int)(id % BACKOFF_SEGMENTS);

    for (int i = 0; i < BACKOFF_SEGMENTS; i++) {
        if (atomic_load_explicit(&backoff[i].id, memory_order_relaxed) == id) {
            at = i;
            break;
        }
        if (atomic_load_explicit(&backoff[i].until_ns, memory_order_relaxed) <
            until - LOCK_BACKOFF_NS)
            at = i; /* ended: free */
    }
    atomic_store_explicit(&backoff[at].until_ns, until, memory_order_relaxed);
    atomic_store_explicit(&backoff[at].id, id, memory_order_relaxed);
}

int cbshm__lock_try(struct cbshm *shm)
{
    int rc;

    if ((rc = sane(&shm->hdr->lock)) != 0)
        return rc;
    return taken(shm, pthread_mutex_trylock(&shm->hdr->lock));
}

int cbshm__lock_hot(struct cbshm *shm)
{
    uint64_t now = cbshm__now();
    int rc;

    if (backing_off(shm->id, now)) {
        if ((rc = sane(&shm->hdr->lock)) != 0)
            return rc;
        return taken(shm, pthread_mutex_trylock(&shm->hdr->lock));
    }
    if ((rc = cbshm__lock(shm)) == CBSHM_ELOCK)
        back_off(shm->id, now + LOCK_BACKOFF_NS);
    return rc;
}

int cbshm__lock(struct cbshm *shm)
{
    struct cbshm_header *h = shm->hdr;
    struct timespec deadline;
    int rc;

    if ((rc = sane(&h->lock)) != 0)
        return rc;
#ifdef __SANITIZE_THREAD__
    /* ThreadSanitizer's runtime (gcc 12) knows neither clocklock nor a
       timed lock that returns EOWNERDEAD: its builds wait unbounded. */
    (void)deadline;
    rc = pthread_mutex_lock(&h->lock);
#else
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += LOCK_WAIT_NS / 1000000000L;
    rc = pthread_mutex_clocklock(&h->lock, CLOCK_MONOTONIC, &deadline);
#endif

    return taken(shm, rc);
}

void cbshm__unlock(struct cbshm *shm)
{
    struct cbshm_header *h = shm->hdr;
    pthread_mutex_t *m = &h->lock;
    uint64_t s = atomic_load_explicit(&h->change_seq, memory_order_relaxed);

    atomic_store_explicit(&h->change_seq, s | 1, memory_order_relaxed);
    atomic_store_explicit(&h->change_seq, (s | 1) + 1, memory_order_release);

#ifdef GLIBC_MUTEX
    if (held.mutex == m) {
        struct __pthread_mutex_s *d = &m->__data;
        uint32_t ours = (uint32_t)held.words.__lock & FUTEX_TID_MASK;
        int lock = __atomic_load_n(&d->__lock, __ATOMIC_RELAXED);

        d->__count = held.words.__count;
        d->__owner = held.words.__owner;
        d->__nusers = held.words.__nusers;
        d->__kind = held.words.__kind;
        d->__spins = held.words.__spins;
        d->__elision = held.words.__elision;
        d->__list = held.words.__list;
        while (((uint32_t)lock & FUTEX_TID_MASK) != ours &&
               !__atomic_compare_exchange_n(&d->__lock, &lock, (int)(ours | FUTEX_WAITERS), false,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
        held.mutex = NULL;
    }
#endif
    pthread_mutex_unlock(m);
}
