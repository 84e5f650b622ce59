/* SPDX-License-Identifier: MIT */
/*
 * fork() while another thread is inside the library. The process-local
 * locks (the successor chain's, then the stripe registry's, in the order
 * the library takes them) are taken before fork, given back after it in
 * the parent, and by the child's only thread - the one that took them.
 * Without that, a child forked while another thread held one would block
 * forever on its first counted call. What
 * the parent knew of itself (its stripe claims, its PID namespace) the
 * child learns afresh.
 */
#include <pthread.h>

#include "internal.h"

static void prepare(void)
{
    pthread_mutex_lock(&cbshm__chain_lock);
    pthread_mutex_lock(&cbshm__registry_lock);
}

static void parent(void)
{
    pthread_mutex_unlock(&cbshm__registry_lock);
    pthread_mutex_unlock(&cbshm__chain_lock);
}

static void child(void)
{
    /* The child's one thread is the one that took them in prepare: it
       gives them back (re-initialising a mutex is undefined, and loses
       it for the thread sanitizer). */
    pthread_mutex_unlock(&cbshm__registry_lock);
    pthread_mutex_unlock(&cbshm__chain_lock);
    cbshm__stripe_forked(); /* the parent's stripe is not the child's */
    cbshm__pidns_forked();  /* nor, maybe, its PID namespace */
}

static void register_once(void)
{
    pthread_atfork(prepare, parent, child);
}

/* Before the library keeps any state a child must not inherit. */
void cbshm__fork_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_once);
}
