/*
 * Counter stripes: which one a thread writes. A thread claims an owned
 * stripe (1..CBSHM_STRIPES-1) in the segment header the first time it
 * counts, and is then its only writer, so its adds need no lock prefix.
 * When all are taken it uses the shared stripe 0 with atomic adds.
 *
 * A claim is released when its thread exits (a pthread key destructor),
 * when the process closes the segment, or - for a process that died - by
 * the next claimer, which finds the owner's pid gone. A child after fork
 * starts with no claim: its parent's stripe is not its own.
 *
 * The registry of open segments exists so a thread's exit releases its
 * claim only while the segment is still mapped.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

__thread struct cbshm_claim cbshm__claim __attribute__((tls_model("initial-exec")));
static __thread uint64_t claim_token __attribute__((tls_model("initial-exec")));

struct open_segment {
    uint64_t id;
    struct cbshm_header *hdr;
};

pthread_mutex_t cbshm__registry_lock = PTHREAD_MUTEX_INITIALIZER;
#define registry_lock cbshm__registry_lock
static struct open_segment *registry;
static size_t registry_n, registry_cap;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static _Atomic uint32_t thread_seq;

/* Gives this thread's claim back. Called with registry_lock held. */
static void release_locked(void)
{
    uint64_t token = claim_token;

    if (cbshm__claim.stripe != 0 && token != 0) {
        for (size_t i = 0; i < registry_n; i++) {
            if (registry[i].id == cbshm__claim.shm_id) {
                atomic_compare_exchange_strong_explicit(
                    &registry[i].hdr->stripe_owner[cbshm__claim.stripe], &token, 0,
                    memory_order_release, memory_order_relaxed);
                break;
            }
        }
    }
    cbshm__claim.shm_id = 0;
    cbshm__claim.stripe = 0;
    claim_token = 0;
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&registry_lock);
    release_locked();
    pthread_mutex_unlock(&registry_lock);
}

void cbshm__stripe_forked(void)
{
    cbshm__claim.shm_id = 0;
    cbshm__claim.stripe = 0;
    claim_token = 0;
}

static void init_once(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
    cbshm__fork_init();
}

void cbshm__register(struct cbshm *shm)
{
    static _Atomic uint64_t next_id;

    pthread_once(&once, init_once);
    shm->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
    pthread_mutex_lock(&registry_lock);
    if (registry_n == registry_cap) {
        size_t cap = registry_cap ? registry_cap * 2 : 8;
        struct open_segment *r = realloc(registry, cap * sizeof *r);
        if (r != NULL) {
            registry = r;
            registry_cap = cap;
        }
    }
    /* Without room, claims on this segment are released only when the
       process closes it or dies: still correct. */
    if (registry_n < registry_cap)
        registry[registry_n++] = (struct open_segment){shm->id, shm->hdr};
    pthread_mutex_unlock(&registry_lock);
}

void cbshm__release_stripes(struct cbshm *shm)
{
    uint64_t pid = (uint64_t)(uint32_t)getpid();

    pthread_mutex_lock(&registry_lock);
    for (int s = 1; s < CBSHM_STRIPES; s++) {
        uint64_t w = atomic_load_explicit(&shm->hdr->stripe_owner[s], memory_order_relaxed);
        if (w != 0 && (w >> 32) == pid)
            atomic_compare_exchange_strong_explicit(&shm->hdr->stripe_owner[s], &w, 0,
                                                    memory_order_release, memory_order_relaxed);
    }
    for (size_t i = 0; i < registry_n; i++) {
        if (registry[i].id == shm->id) {
            registry[i] = registry[--registry_n];
            break;
        }
    }
    if (registry_n == 0) { /* nothing open: nothing left allocated */
        free(registry);
        registry = NULL;
        registry_cap = 0;
    }
    if (cbshm__claim.shm_id == shm->id) {
        cbshm__claim.shm_id = 0;
        cbshm__claim.stripe = 0;
        claim_token = 0;
    }
    pthread_mutex_unlock(&registry_lock);
}

static bool try_take(struct cbshm_header *h, int s, uint64_t expect, uint64_t token)
{
    return atomic_compare_exchange_strong_explicit(&h->stripe_owner[s], &expect, token,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

void cbshm__claim_stripe(struct cbshm *shm)
{
    struct cbshm_header *h = shm->hdr;
    uint64_t token;
    uint32_t stripe = 0;

    pthread_once(&once, init_once);
    pthread_mutex_lock(&registry_lock);
    release_locked(); /* one claim per thread: give back one on another segment */
    token = (uint64_t)(uint32_t)getpid() << 32 |
            (atomic_fetch_add_explicit(&thread_seq, 1, memory_order_relaxed) + 1);
    for (int s = 1; s < CBSHM_STRIPES && stripe == 0; s++)
        if (try_take(h, s, 0, token))
            stripe = (uint32_t)s;
    for (int s = 1; s < CBSHM_STRIPES && stripe == 0; s++) {
        uint64_t w = atomic_load_explicit(&h->stripe_owner[s], memory_order_relaxed);
        if (w != 0 && !cbshm__pid_alive((uint32_t)(w >> 32)) && try_take(h, s, w, token))
            stripe = (uint32_t)s;
    }
    claim_token = stripe != 0 ? token : 0;
    cbshm__claim.stripe = stripe;
    cbshm__claim.shm_id = shm->id;
    pthread_mutex_unlock(&registry_lock);
    if (stripe != 0)
        pthread_setspecific(exit_key, (void *)1); /* so on_thread_exit runs */
}
