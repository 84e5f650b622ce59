/* SPDX-License-Identifier: MIT */
/*
 * Counter stripes: which one a thread writes. A thread claims an owned
 * stripe (1..CBSHM_STRIPES-1) in the segment header the first time it
 * counts, and is then its only writer, so its adds need no lock prefix.
 * When all are taken it uses the shared stripe 0 with atomic adds, and
 * tries again now and then (cbshm__claim_retry).
 *
 * A claim is for a segment - the object, not one mapping of it: every
 * mapping of one object (two cbshm_open()s of one name, a master that
 * applies while it serves) gets the same id, so a thread moving between
 * them keeps its stripe, and a claim is given back only when the last
 * mapping of the object in this process closes, when its thread exits,
 * or - for a process that died - by the next claimer, which finds the
 * owner's pid gone. A thread keeps its claims on a few segments at once
 * (the current one in cbshm__claim, read by the hot path, and
 * CBSHM_SPARE_CLAIMS more), so alternating between breakers of two
 * segments costs no mutex. A child after fork starts with no claim: its
 * parent's stripes are not its own.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define CBSHM_SPARE_CLAIMS 3

__thread struct cbshm_claim cbshm__claim __attribute__((tls_model("initial-exec")));

/* This thread's other claims; shm_id 0 marks a free entry. */
struct spare {
    uint64_t shm_id, token;
    uint32_t stripe;
};
static __thread struct spare spares[CBSHM_SPARE_CLAIMS];

/* One segment object open in this process, and its mappings' headers. */
struct object {
    uint64_t id, dev, ino, created_ns;
    struct cbshm_header **hdrs;
    size_t n;
    /* This process's entry in the segment's worker registry (bulkhead.c):
       joined at its first call, left at the last close. A forked child
       finds its parent's pid here and joins for itself. */
    uint32_t worker_pid, worker_at;
    uint64_t worker_word;
};

/* Every claim a thread of this process holds, so a close can give back
   those of its object, and only those. */
struct claim_rec {
    uint64_t shm_id, token;
    uint32_t stripe;
};

pthread_mutex_t cbshm__registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct object *objects;
static size_t objects_n, objects_cap;
static struct claim_rec *claims;
static size_t claims_n, claims_cap;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static _Atomic uint32_t thread_seq;

/* Called with the registry lock held, as everything below is. */
static struct object *object_of(uint64_t id)
{
    for (size_t i = 0; i < objects_n; i++)
        if (objects[i].id == id)
            return &objects[i];
    return NULL;
}

/* Gives one claim back to the segment, if it is still ours. */
static void give_back(uint64_t id, uint32_t stripe, uint64_t token)
{
    struct object *o = object_of(id);

    if (stripe != 0 && token != 0 && o != NULL && o->n > 0)
        atomic_compare_exchange_strong_explicit(&o->hdrs[0]->stripe_owner[stripe], &token, 0,
                                                memory_order_release, memory_order_relaxed);
    for (size_t i = 0; i < claims_n; i++) {
        if (claims[i].token == token && claims[i].shm_id == id) {
            claims[i] = claims[--claims_n];
            break;
        }
    }
}

static void release_all_of_thread(void)
{
    give_back(cbshm__claim.shm_id, cbshm__claim.stripe, cbshm__claim.token);
    for (int i = 0; i < CBSHM_SPARE_CLAIMS; i++)
        if (spares[i].shm_id != 0)
            give_back(spares[i].shm_id, spares[i].stripe, spares[i].token);
    memset(spares, 0, sizeof spares);
    cbshm__claim.shm_id = 0;
    cbshm__claim.stripe = 0;
    cbshm__claim.token = 0;
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&cbshm__registry_lock);
    release_all_of_thread();
    pthread_mutex_unlock(&cbshm__registry_lock);
}

void cbshm__stripe_forked(void)
{
    /* The parent's threads' claims are the parent's; so were this one's. */
    claims_n = 0;
    memset(spares, 0, sizeof spares);
    cbshm__claim.shm_id = 0;
    cbshm__claim.stripe = 0;
    cbshm__claim.token = 0;
}

static void init_once(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
    cbshm__fork_init();
}

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
    void *nv;

    if (n < *cap)
        return true;
    if ((nv = realloc(*v, (*cap ? *cap * 2 : 8) * size)) == NULL)
        return false;
    *v = nv;
    *cap = *cap ? *cap * 2 : 8;
    return true;
}

void cbshm__register(struct cbshm *shm)
{
    static _Atomic uint64_t next_id;
    struct object *o = NULL;
    struct cbshm_header **h;

    pthread_once(&once, init_once);
    pthread_mutex_lock(&cbshm__registry_lock);
    /* Another mapping of an object open already shares its id (and so
       its claims). Without dev and ino the mapping stands alone. */
    for (size_t i = 0; i < objects_n && shm->ino != 0; i++)
        if (objects[i].dev == shm->dev && objects[i].ino == shm->ino &&
            objects[i].created_ns == shm->hdr->created_ns)
            o = &objects[i];
    if (o == NULL && grow((void **)&objects, &objects_cap, objects_n, sizeof *objects)) {
        o = &objects[objects_n++];
        memset(o, 0, sizeof *o);
        o->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
        o->dev = shm->dev;
        o->ino = shm->ino;
        o->created_ns = shm->hdr->created_ns;
    }
    if (o != NULL && (h = realloc(o->hdrs, (o->n + 1) * sizeof *h)) != NULL) {
        o->hdrs = h;
        o->hdrs[o->n++] = shm->hdr;
        shm->id = o->id;
    } else {
        /* Without room the mapping gets an id of its own and its claims
           go back only when the process closes it or dies: still right. */
        if (o != NULL && o->n == 0)
            objects_n--;
        shm->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
    }
    pthread_mutex_unlock(&cbshm__registry_lock);
}

void cbshm__release_stripes(struct cbshm *shm)
{
    struct object *o;

    pthread_mutex_lock(&cbshm__registry_lock);
    if ((o = object_of(shm->id)) != NULL) {
        for (size_t i = 0; i < o->n; i++) {
            if (o->hdrs[i] == shm->hdr) {
                o->hdrs[i] = o->hdrs[--o->n];
                break;
            }
        }
        if (o->n > 0) {
            /* Another mapping of the object stays open: its threads' claims
               are good through it. */
            pthread_mutex_unlock(&cbshm__registry_lock);
            return;
        }
        o->hdrs[0] = shm->hdr; /* the last mapping: give every claim back through it */
        o->n = 1;
        if (o->worker_word != 0 && o->worker_pid == (uint32_t)getpid())
            cbshm__workers_leave(shm, o->worker_at, o->worker_word);
        for (size_t i = claims_n; i-- > 0;)
            if (claims[i].shm_id == shm->id)
                give_back(shm->id, claims[i].stripe, claims[i].token);
        free(o->hdrs);
        *o = objects[--objects_n];
        if (objects_n == 0) { /* nothing open: nothing left allocated */
            free(objects);
            objects = NULL;
            objects_cap = 0;
            free(claims);
            claims = NULL;
            claims_cap = claims_n = 0;
        }
    }
    if (cbshm__claim.shm_id == shm->id) {
        cbshm__claim.shm_id = 0;
        cbshm__claim.stripe = 0;
        cbshm__claim.token = 0;
    }
    for (int i = 0; i < CBSHM_SPARE_CLAIMS; i++)
        if (spares[i].shm_id == shm->id)
            spares[i].shm_id = 0;
    pthread_mutex_unlock(&cbshm__registry_lock);
}

static bool try_take(struct cbshm_header *h, int s, uint64_t expect, uint64_t token)
{
    return atomic_compare_exchange_strong_explicit(&h->stripe_owner[s], &expect, token,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

/* The current claim becomes a spare; the oldest spare, if it must make
   room, is given back. Called with the registry lock held. */
static void retire_current(void)
{
    if (cbshm__claim.shm_id == 0)
        return;
    if (spares[CBSHM_SPARE_CLAIMS - 1].shm_id != 0)
        give_back(spares[CBSHM_SPARE_CLAIMS - 1].shm_id, spares[CBSHM_SPARE_CLAIMS - 1].stripe,
                  spares[CBSHM_SPARE_CLAIMS - 1].token);
    memmove(&spares[1], &spares[0], (CBSHM_SPARE_CLAIMS - 1) * sizeof spares[0]);
    spares[0] = (struct spare){cbshm__claim.shm_id, cbshm__claim.token, cbshm__claim.stripe};
    cbshm__claim.shm_id = 0;
    cbshm__claim.stripe = 0;
    cbshm__claim.token = 0;
}

/* A free stripe, or one whose owner died; 0 when every one is held. */
static uint32_t take_a_stripe(struct cbshm_header *h, uint64_t token)
{
    for (int s = 1; s < CBSHM_STRIPES; s++)
        if (try_take(h, s, 0, token))
            return (uint32_t)s;
    for (int s = 1; s < CBSHM_STRIPES; s++) {
        uint64_t w = atomic_load_explicit(&h->stripe_owner[s], memory_order_relaxed);
        if (w != 0 && !cbshm__pid_alive(h, (uint32_t)(w >> 32)) && try_take(h, s, w, token))
            return (uint32_t)s;
    }
    return 0;
}

void cbshm__claim_stripe(struct cbshm *shm)
{
    struct cbshm_header *h = shm->hdr;
    struct object *o;
    uint64_t token;
    uint32_t stripe = 0;

    /* A claim this thread holds already, on this segment: swap it in, no
       mutex (the spares are this thread's alone). */
    for (int i = 0; i < CBSHM_SPARE_CLAIMS; i++) {
        if (spares[i].shm_id == shm->id) {
            struct spare s = spares[i];
            spares[i] =
                (struct spare){cbshm__claim.shm_id, cbshm__claim.token, cbshm__claim.stripe};
            cbshm__claim.shm_id = s.shm_id;
            cbshm__claim.stripe = s.stripe;
            cbshm__claim.token = s.token;
            return;
        }
    }
    pthread_once(&once, init_once);
    pthread_mutex_lock(&cbshm__registry_lock);
    retire_current();
    token = (uint64_t)(uint32_t)getpid() << 32 |
            (atomic_fetch_add_explicit(&thread_seq, 1, memory_order_relaxed) + 1);
    /* From another PID namespace, the shared stripe: an owner's pid that
       means nothing here would be taken back as dead. */
    if (cbshm__pid_ours(h))
        stripe = take_a_stripe(h, token);
    if (stripe != 0 && !grow((void **)&claims, &claims_cap, claims_n, sizeof *claims)) {
        /* No room to remember it: give it back, use the shared stripe. */
        try_take(h, (int)stripe, token, 0);
        stripe = 0;
    }
    if (stripe != 0)
        claims[claims_n++] = (struct claim_rec){shm->id, token, stripe};
    /* A process that calls through the segment is one of its workers. */
    if ((o = object_of(shm->id)) != NULL && o->worker_pid != (uint32_t)(token >> 32) &&
        !CBSHM__READ_ONLY(shm) && cbshm__pid_ours(h)) {
        o->worker_pid = (uint32_t)(token >> 32);
        o->worker_word = cbshm__workers_join(shm, o->worker_pid, cbshm__now(), &o->worker_at);
    }
    cbshm__claim.token = stripe != 0 ? token : 0;
    cbshm__claim.stripe = stripe;
    cbshm__claim.shm_id = shm->id;
    pthread_mutex_unlock(&cbshm__registry_lock);
    if (stripe != 0)
        pthread_setspecific(exit_key, (void *)1); /* so on_thread_exit runs */
}

void cbshm__claim_retry(void)
{
    /* On the shared stripe because all were taken: look again on the next
       call, since owners exit and die. */
    if (cbshm__claim.stripe == 0)
        cbshm__claim.shm_id = 0;
}
