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
 */
#define _GNU_SOURCE /* pthread_mutex_clocklock */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#define LOCK_WAIT_NS    1000000000L
#define LOCK_BACKOFF_NS 5000000000ull

#include "internal.h"

int cbshm__lock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc;

    if ((rc = pthread_mutexattr_init(&a)) != 0)
        return -rc;
    if ((rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
        (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
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

/* What pthread said, as the caller hears it: repaired and taken, or not. */
static int taken(struct cbshm *shm, int rc)
{
    struct cbshm_header *h = shm->hdr;

    if (rc == 0) {
        changes_begin(h);
        return 0;
    }
    if (rc == EOWNERDEAD) {
        changes_begin(h);
        cbshm__table_repair(shm);
        if (pthread_mutex_consistent(&h->lock) != 0) {
            pthread_mutex_unlock(&h->lock);
            return CBSHM_ELOCK;
        }
        atomic_fetch_add_explicit(&h->lock_repairs, 1, memory_order_relaxed);
        return 0;
    }
    /* ETIMEDOUT, EBUSY, ENOTRECOVERABLE, and whatever a scribbled mutex
       makes the C library say (EINVAL, EAGAIN, EDEADLK): the lock could
       not be taken, which is one code to the caller, never a raw errno. */
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

int cbshm__lock_hot(struct cbshm *shm)
{
    uint64_t now = cbshm__now();
    int rc;

    if (backing_off(shm->id, now))
        return taken(shm, pthread_mutex_trylock(&shm->hdr->lock));
    if ((rc = cbshm__lock(shm)) == CBSHM_ELOCK)
        back_off(shm->id, now + LOCK_BACKOFF_NS);
    return rc;
}

int cbshm__lock(struct cbshm *shm)
{
    struct cbshm_header *h = shm->hdr;
    struct timespec deadline;
    int rc;

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
    uint64_t s = atomic_load_explicit(&h->change_seq, memory_order_relaxed);

    atomic_store_explicit(&h->change_seq, s | 1, memory_order_relaxed);
    atomic_store_explicit(&h->change_seq, (s | 1) + 1, memory_order_release);
    pthread_mutex_unlock(&h->lock);
}
