/* SPDX-License-Identifier: MIT */
/*
 * The breaker state machine and its hot path.
 *
 * Closed admission is one load of the handle's view and one of the slot's
 * control word. Recording a closed-state success is one plain add (no
 * lock prefix) on the counter stripe this thread owns, and a load of the
 * failure run, stored only when it is not already zero; a failure adds
 * one to the shared run with an atomic add. No lock, no system call, no
 * allocation on those paths, and no clock read unless the breaker has a
 * time window or times its calls.
 *
 * Transitions (trip, open -> half-open, probe admission, close, reopen)
 * are rare and take the table lock, which makes them simple to get right,
 * lets a dead owner's half-done transition be repaired, and lets each one
 * be written to the event ring. A rejection in the open state reads the
 * coarse clock and nothing else; a rejection in half-open while every
 * probe lease is held is lock-free too.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define RESOLVE_RETRY_NS 250000000ull /* re-resolve a stale or retired handle at most 4/s */
#define PROBE_SCAN_NS    10000000ull  /* look for dead probe owners at most every 10 ms */

/* Adds one to counter i of this thread's stripe (stripe.c says which). */
static inline __attribute__((always_inline)) void bump(struct cbshm_view *v, struct cbshm_slot *sl,
                                                       int i)
{
    _Atomic uint64_t *c;

    if (UNLIKELY(cbshm__claim.shm_id != v->shm_id))
        cbshm__claim_stripe(v->shm);
    c = &sl->stripes[cbshm__claim.stripe].count[i];
    if (LIKELY(cbshm__claim.stripe != 0))
        /* Ours alone: a plain add, no lock prefix. */
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/*
 * On the shared stripe, where many processes fail: a word to stamp that
 * costs no other process its vote - one holding this pid already, an
 * empty one, or one whose pid another word holds too. Stripe 0's own
 * when there is none (every word a distinct failer: quorum is met).
 */
static _Atomic uint64_t *shared_stamp_word(struct cbshm_slot *sl, uint32_t me)
{
    uint64_t st[CBSHM_STRIPES];
    int spare = -1;

    for (int s = 0; s < CBSHM_STRIPES; s++) {
        st[s] = atomic_load_explicit(&sl->stripes[s].last_failure, memory_order_relaxed);
        if (st[s] != 0 && CBSHM_STAMP_PID(st[s]) == me)
            return &sl->stripes[s].last_failure;
    }
    for (int s = 0; s < CBSHM_STRIPES && spare < 0; s++) {
        if (st[s] == 0)
            spare = s;
        for (int o = 0; o < s && spare < 0; o++)
            if (CBSHM_STAMP_PID(st[o]) == CBSHM_STAMP_PID(st[s]))
                spare = s;
    }
    /* Taken only if nobody changed it since we looked. */
    if (spare >= 0 && atomic_compare_exchange_strong_explicit(
                          &sl->stripes[spare].last_failure, &st[spare], CBSHM_STAMP(0, me),
                          memory_order_relaxed, memory_order_relaxed))
        return &sl->stripes[spare].last_failure;
    return &sl->stripes[0].last_failure;
}

/* Notes that this thread's worker just failed (or was slow), for quorum.
   An owned stripe's word is its owner's; on the shared stripe the
   processes share out the sixteen words (failing_workers counts pids). */
static void stamp_failure(struct cbshm_view *v, struct cbshm_slot *sl, uint64_t now)
{
    _Atomic uint64_t *at;
    uint32_t me;

    if (cbshm__claim.shm_id != v->shm_id)
        cbshm__claim_stripe(v->shm);
    if (cbshm__claim.stripe != 0) {
        /* The claim's token carries this process's pid: no system call. */
        me = (uint32_t)(cbshm__claim.token >> 32);
        at = &sl->stripes[cbshm__claim.stripe].last_failure;
    } else {
        me = (uint32_t)getpid();
        at = shared_stamp_word(sl, me);
    }
    atomic_store_explicit(at, CBSHM_STAMP(now, me), memory_order_relaxed);
}

/*
 * Is the process whose pid the segment holds alive? Only a process in the
 * segment's PID namespace can tell: one that entered another after the
 * segment was opened (unshare, then fork) sees no pid outside it, and
 * would take back live stripes and leases. Where the namespaces cannot be
 * compared (no /proc) every owner counts as alive: a lease then ends at
 * its deadline, a stripe stays its owner's.
 */
bool cbshm__pid_alive(const struct cbshm_header *h, uint32_t pid)
{
    if (pid == 0 || pid > (uint32_t)INT32_MAX)
        return false;
    if (!cbshm__in_segment_pidns(h))
        return true;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* ---- Transitions. Called with the table lock held. ---------------------- */

static void clear_leases(struct cbshm_slot *sl)
{
    for (int i = 0; i < CBSHM_PROBES_MAX; i++)
        atomic_store_explicit(&sl->leases[i].word, 0, memory_order_relaxed);
}

void cbshm__phase_restart(struct cbshm_slot *sl)
{
    clear_leases(sl);
    atomic_store_explicit(&sl->half_open_successes, 0, memory_order_relaxed);
}

/* A success ends the failure run of its own period, and of no other. */
static __attribute__((noinline, cold)) void run_end(struct cbshm_slot *sl, uint64_t ctl)
{
    uint64_t w = atomic_load_explicit(&sl->run, memory_order_relaxed);

    while (CBSHM_RUN_EPOCH(w) == CBSHM_CTL_EPOCH(ctl) && CBSHM_RUN_COUNT(w) != 0 &&
           !atomic_compare_exchange_weak_explicit(&sl->run, &w,
                                                  CBSHM_RUN_MAKE(CBSHM_CTL_EPOCH(ctl), 0),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* A failure adds to the run of its period, starting it when the run word
   is of an older one; a failure of an older period adds nothing (0). */
static uint32_t run_add(struct cbshm_slot *sl, uint64_t ctl, uint64_t now)
{
    uint32_t epoch = CBSHM_CTL_EPOCH(ctl);
    uint64_t w = atomic_load_explicit(&sl->run, memory_order_relaxed), next;

    do {
        if (CBSHM_RUN_EPOCH(w) == epoch && CBSHM_RUN_COUNT(w) != 0)
            next = w + 1;
        else if (CBSHM_RUN_EPOCH(w) == epoch ||
                 ((epoch - CBSHM_RUN_EPOCH(w)) & 0x0fffffffu) < 0x08000000u)
            next = CBSHM_RUN_MAKE(epoch, 1); /* a new run (the word may be older) */
        else
            return 0; /* late: its period is over */
        /* The run's start, before the run it starts is published (the
           CAS releases it): whoever sees the run sees when it began. */
        if (CBSHM_RUN_COUNT(next) == 1 && now != 0)
            atomic_store_explicit(&sl->run_start_ns, now, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(&sl->run, &w, next, memory_order_acq_rel,
                                                    memory_order_relaxed));
    return CBSHM_RUN_COUNT(next);
}

/* xorshift64: the jitter's randomness. Called with the table lock held. */
static uint64_t next_random(struct cbshm_slot *sl, uint64_t now)
{
    uint64_t x = sl->rng;

    if (x == 0)
        x = (now ^ ((uint64_t)(uint32_t)getpid() << 32) ^ (uintptr_t)sl) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sl->rng = x;
    return x;
}

/*
 * The next open period: open_timeout after a trip from closed; after a
 * failed probe, the previous period times backoff_multiplier, capped at
 * open_timeout_max; then +- open_timeout_jitter percent.
 */
static uint64_t open_period(struct cbshm_slot *sl, unsigned from, uint64_t now)
{
    const struct cbshm_slot_settings *c = &sl->cfg;
    uint64_t base = atomic_load_explicit(&c->open_timeout_ns, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&c->open_timeout_max_ns, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&sl->current_open_ns, memory_order_relaxed);
    uint32_t jitter = atomic_load_explicit(&c->open_timeout_jitter, memory_order_relaxed);

    if (from == CBSHM_STATE_HALF_OPEN && cur != 0)
        cur = cur / 100 * atomic_load_explicit(&c->backoff_multiplier, memory_order_relaxed);
    else
        cur = base;
    if (cur > max)
        cur = max;
    if (cur < base)
        cur = base;
    atomic_store_explicit(&sl->current_open_ns, cur, memory_order_relaxed);
    if (jitter > 0 && jitter <= 100) {
        /* r - jitter percent either way, unsigned: the period comes from
           the segment, which may hold anything (step * 100 <= cur). */
        uint64_t r = next_random(sl, now) % (2u * jitter + 1), step = cur / 100;
        if (r < jitter)
            return cur - step * (jitter - r);
        return cur + step * (r - jitter) >= cur ? cur + step * (r - jitter) : UINT64_MAX;
    }
    return cur;
}

/*
 * Moves breaker idx from control word ctl to `state`. Opening, it stays
 * open for its (backed-off, jittered) open period, and at least
 * min_open_ns (a downstream's retry-after) capped at open_timeout_max.
 * Called with the table lock held.
 */
static uint64_t set_state_min(struct cbshm *shm, uint32_t idx, uint64_t ctl, unsigned state,
                              uint64_t now, unsigned cause, uint64_t min_open_ns)
{
    struct cbshm_slot *sl = &shm->slots[idx];
    uint64_t next =
        CBSHM_CTL_MAKE(CBSHM_CTL_GEN(ctl), CBSHM_CTL_EPOCH(ctl) + 1, CBSHM_CTL_MODE(ctl), state);

    shm->hdr->op_slot = idx;
    shm->hdr->op = CBSHM_OP_TRANSITION;
    switch (state) {
    case CBSHM_STATE_OPEN: {
        uint64_t period = open_period(sl, CBSHM_CTL_STATE(ctl), now);
        uint64_t max = atomic_load_explicit(&sl->cfg.open_timeout_max_ns, memory_order_relaxed);
        if (min_open_ns > period)
            period = min_open_ns < max ? min_open_ns : max > period ? max : period;
        atomic_store_explicit(&sl->open_until_ns, now + period, memory_order_relaxed);
        atomic_fetch_add_explicit(&sl->trips, 1, memory_order_relaxed);
        CBSHM_CRASH_POINT("transition.open");
        break;
    }
    case CBSHM_STATE_HALF_OPEN:
        atomic_store_explicit(&sl->half_open_successes, 0, memory_order_relaxed);
        clear_leases(sl);
        CBSHM_CRASH_POINT("transition.half_open");
        break;
    default:
        atomic_store_explicit(&sl->half_open_successes, 0, memory_order_relaxed);
        clear_leases(sl);
        /* A closed period starts with an empty window (as every peer
           does): the failures that tripped it and the probes' outcomes
           belong to the periods they were made in. */
        cbshm__window_reset(sl, now);
        atomic_store_explicit(&sl->current_open_ns,
                              atomic_load_explicit(&sl->cfg.open_timeout_ns, memory_order_relaxed),
                              memory_order_relaxed);
        CBSHM_CRASH_POINT("transition.closed");
        break;
    }
    cbshm__run_clear(sl, next);
    atomic_store_explicit(&sl->last_transition_ns, now, memory_order_relaxed);
    next = cbshm__ctl_publish(sl, ctl, next);
    cbshm__event(shm, idx, CBSHM_EVENT_STATE, CBSHM_CTL_STATE(ctl), state, cause, now);
    shm->hdr->op = CBSHM_OP_NONE;
    return next;
}

static uint64_t set_state(struct cbshm *shm, uint32_t idx, uint64_t ctl, unsigned state,
                          uint64_t now, unsigned cause)
{
    return set_state_min(shm, idx, ctl, state, now, cause, 0);
}

static uint32_t max_probes(const struct cbshm_slot *sl)
{
    uint32_t max = atomic_load_explicit(&sl->cfg.half_open_max_calls, memory_order_relaxed);

    return max > CBSHM_PROBES_MAX ? CBSHM_PROBES_MAX : max;
}

/* A probe whose owner lives has run past its deadline: the phase failed.
   Called with the table lock held. */
static bool lease_expired(const struct cbshm_header *h, const struct cbshm_slot *sl, uint64_t now)
{
    for (uint32_t i = 0; i < max_probes(sl); i++) {
        uint64_t w = atomic_load_explicit(&sl->leases[i].word, memory_order_relaxed);
        if (w != 0 && !CBSHM_LEASE_DONE(w) &&
            now >= atomic_load_explicit(&sl->leases[i].deadline_ns, memory_order_relaxed) &&
            cbshm__pid_alive(h, (uint32_t)(w >> 32)))
            return true;
    }
    return false;
}

static bool rate_decision(const struct cbshm_slot *sl)
{
    return atomic_load_explicit(&sl->cfg.half_open_decision, memory_order_relaxed) ==
           CBSHM_HALF_OPEN_RATE;
}

/*
 * Rate decision: once every lease of the phase is done - its probe
 * reported, or outlived its deadline (a failure) - the failed share
 * decides: below half_open_failure_rate closes, else the breaker opens
 * again. Until then the phase goes on. Returns the control word after.
 * Called with the table lock held.
 */
static uint64_t decide_by_rate(struct cbshm *shm, uint32_t idx, uint64_t ctl, uint64_t now)
{
    struct cbshm_slot *sl = &shm->slots[idx];
    uint32_t k = max_probes(sl), failed = 0;

    for (uint32_t i = 0; i < k; i++) {
        struct cbshm_lease *l = &sl->leases[i];
        uint64_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
        if (w == CBSHM_LEASE_FAILED) {
            failed++;
        } else if (w != CBSHM_LEASE_SPENT) {
            if (w == 0 || now < atomic_load_explicit(&l->deadline_ns, memory_order_relaxed) ||
                !cbshm__pid_alive(shm->hdr, (uint32_t)(w >> 32)))
                return ctl; /* a probe still to come, or running */
            atomic_store_explicit(&l->word, CBSHM_LEASE_FAILED, memory_order_relaxed);
            failed++;
        }
    }
    if ((uint64_t)failed * 100 <
        (uint64_t)atomic_load_explicit(&sl->cfg.half_open_failure_rate, memory_order_relaxed) * k)
        return set_state(shm, idx, ctl, CBSHM_STATE_CLOSED, now, CBSHM_CAUSE_PROBES_OK);
    return set_state(shm, idx, ctl, CBSHM_STATE_OPEN, now, CBSHM_CAUSE_PROBE_FAILED);
}

/*
 * Takes a free lease, or one whose owner died before it recorded (its call
 * decides nothing now; its lease goes to this probe). A spent lease stays
 * spent until the phase ends. Called with the table lock held.
 */
static int lease_take(const struct cbshm_header *h, struct cbshm_slot *sl, uint64_t now,
                      struct cbshm_ticket *t)
{
    for (uint32_t i = 0; i < max_probes(sl); i++) {
        struct cbshm_lease *l = &sl->leases[i];
        uint64_t w = atomic_load_explicit(&l->word, memory_order_relaxed);
        uint32_t seq;

        if (CBSHM_LEASE_DONE(w))
            continue;
        if (w != 0) {
            if (cbshm__pid_alive(h, (uint32_t)(w >> 32)))
                continue;
            atomic_fetch_add_explicit(&sl->probes_reclaimed, 1, memory_order_relaxed);
        }
        /* Its pid would mean another process, or none, to the segment's. */
        if (!cbshm__pid_ours(h))
            return CBSHM_EPIDNS;
        seq = atomic_fetch_add_explicit(&sl->lease_seq, 1, memory_order_relaxed) + 1;
        t->token = ((uint64_t)(uint32_t)getpid() << 32) | (seq != 0 ? seq : 1);
        t->lease = i;
        atomic_store_explicit(
            &l->deadline_ns,
            now + atomic_load_explicit(&sl->cfg.probe_timeout_ns, memory_order_relaxed),
            memory_order_relaxed);
        atomic_store_explicit(&l->word, t->token, memory_order_release);
        CBSHM_CRASH_POINT("probe.leased");
        return 0;
    }
    return CBSHM_EREJECTED;
}

/* ---- Slow paths -------------------------------------------------------- */

static struct cbshm_slot *slot_of_view(struct cbshm_breaker *b, struct cbshm_view **vp,
                                       uint64_t *ctl, int *rc);

static int problem(struct cbshm_breaker *b, struct cbshm_ticket *t, int rc)
{
    atomic_store_explicit(&b->error, rc, memory_order_relaxed);
    t->flags = CBSHM_T_VALID | CBSHM_T_UNGUARDED;
    return (b->origin->flags & CBSHM_FAIL_CLOSED) ? rc : 0;
}

/*
 * The handle's generation no longer matches, or its segment was retired:
 * look the name up again - in the segment that replaced a retired one,
 * attaching to it if this process has not yet - and move the handle
 * there. At most every RESOLVE_RETRY_NS per handle; in between, ESTALE.
 */
static struct cbshm_slot *resolve_again(struct cbshm_breaker *b, struct cbshm_view **vp,
                                        uint64_t *ctl, int *rc)
{
    struct cbshm_view *v = *vp, *nv;
    struct cbshm *shm = v->shm;
    uint64_t now = cbshm__now();
    uint32_t idx;
    int err;

    if (now < atomic_load_explicit(&b->retry_at_ns, memory_order_relaxed)) {
        /* A late handle says what its last look found. */
        *rc = v->slots == &cbshm__absent_slot
                  ? atomic_load_explicit(&b->error, memory_order_relaxed)
              : atomic_load_explicit(v->retired, memory_order_relaxed) ? CBSHM_ERETIRED
                                                                       : CBSHM_ESTALE;
        return NULL;
    }
    atomic_store_explicit(&b->retry_at_ns, now + RESOLVE_RETRY_NS, memory_order_relaxed);
    if (atomic_load_explicit(v->retired, memory_order_acquire) &&
        (shm = cbshm__successor(v->shm, &err)) == NULL) {
        /* No segment yet: retired, for a handle that had one. */
        *rc = err == CBSHM_ENOSEG && v->shm->base != NULL ? CBSHM_ERETIRED : err;
        return NULL;
    }
    if ((err = cbshm__lock_hot(shm)) != 0) {
        *rc = err;
        return NULL;
    }
    err = cbshm__table_find(shm, b->name, &idx);
    if (err == 0)
        *ctl = atomic_load_explicit(&shm->slots[idx].ctl, memory_order_acquire);
    cbshm__unlock(shm);
    if (err != 0) {
        *rc = err;
        return NULL;
    }
    if (shm == v->shm && v->slots == shm->slots) {
        atomic_store_explicit(&v->ref, (uint64_t)idx << 32 | CBSHM_CTL_GEN(*ctl),
                              memory_order_relaxed);
    } else {
        /* Another mapping, or a breaker found at last: a new view,
           published with one pointer store. */
        if ((nv = calloc(1, sizeof *nv)) == NULL) {
            *rc = -ENOMEM;
            return NULL;
        }
        nv->shm = shm;
        nv->slots = shm->slots;
        nv->retired = &shm->hdr->retired;
        nv->shm_id = shm->id;
        atomic_store_explicit(&nv->ref, (uint64_t)idx << 32 | CBSHM_CTL_GEN(*ctl),
                              memory_order_relaxed);
        nv->older = v;
        if (!atomic_compare_exchange_strong_explicit(&b->view, &v, nv, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            free(nv); /* another thread moved the handle first: use its view */
            nv = v;
            *vp = nv;
            return slot_of_view(b, vp, ctl, rc);
        }
        *vp = nv;
    }
    atomic_store_explicit(&b->error, 0, memory_order_relaxed);
    return &shm->slots[idx];
}

static struct cbshm_slot *slot_of_view(struct cbshm_breaker *b, struct cbshm_view **vp,
                                       uint64_t *ctl, int *rc)
{
    struct cbshm_view *v = *vp;
    uint64_t ref = atomic_load_explicit(&v->ref, memory_order_relaxed);
    struct cbshm_slot *sl = &v->slots[ref >> 32];

    *ctl = atomic_load_explicit(&sl->ctl, memory_order_acquire);
    if (LIKELY(CBSHM_CTL_GEN(*ctl) == (uint32_t)ref &&
               !atomic_load_explicit(v->retired, memory_order_relaxed)))
        return sl;
    return resolve_again(b, vp, ctl, rc);
}

static int reject(struct cbshm_view *v, struct cbshm_slot *sl)
{
    bump(v, sl, CBSHM_COUNT_REJECTED);
    return CBSHM_EREJECTED;
}

/* The thread's latest bulkhead rejection, for cbshm_breaker_rejection,
   and the control word it was refused under: it says why only while the
   breaker is in that state period still (a trip, a probe phase, a mode
   change since, and it is the state's to say); and whether it is in
   bulk_full's loop, which decides again and again and needs to hear
   "full" rather than wait in a wait. */
static __thread const struct cbshm_breaker *bulk_refused;
static __thread uint64_t bulk_refused_ctl;
static __thread bool bulk_waiting;

static int bulk_full(struct cbshm_breaker *b, struct cbshm_ticket *t);
static int allow_slow(struct cbshm_breaker *b, struct cbshm_ticket *t);

/* A slot taken in a breaker deleted since the call was decided: given
   back (a word the deletion cleared is gone already), the call to be
   decided again (CBSHM_EAGAIN_INTERNAL). */
static __attribute__((noinline, cold)) int bulk_retired(struct cbshm_slot *sl,
                                                        struct cbshm_ticket *t)
{
    uint64_t w = t->bulk_word;

    atomic_compare_exchange_strong_explicit(&sl->bulk_slots[t->bulk_slot % CBSHM_BULKHEAD_MAX], &w,
                                            0, memory_order_seq_cst, memory_order_relaxed);
    t->flags = 0;
    return CBSHM_EAGAIN_INTERNAL;
}

/* What admission does beyond the closed fast path, out of line so that
   path saves no registers: note whether the record must read the clock
   (a time window, slow-call timing; a quorum reads it on failures alone),
   when slow calls are detected when the call started, and with a
   bulkhead take its slot (CBSHM_EFULL_INTERNAL: none free; the ticket
   then admits nothing). Inlined into the fast path's admit_more_fast,
   out of line (admit_more) for the others. */
static inline __attribute__((always_inline)) int
admit_more_body(struct cbshm_view *v, struct cbshm_slot *sl, struct cbshm_ticket *t, uint32_t hot)
{
    uint64_t now = 0;
    int rc;

    t->start_ns = 0;
    if (hot & (CBSHM_HOT_TIME | CBSHM_HOT_SLOW)) {
        t->flags |= CBSHM_T_CLOCKED;
        if (hot & CBSHM_HOT_SLOW)
            t->start_ns = now = cbshm__now();
    }
    if (!(hot & CBSHM_HOT_BULK))
        return 0;
    if (now == 0)
        now = cbshm__now();
    if ((rc = cbshm__bulk_take(v, sl, t, now, false)) != 0) {
        t->flags = 0;
        return rc; /* full; or CBSHM_EPIDNS: the caller runs it unguarded */
    }
    /* Taken in the breaker the call was decided for? One deleted since
       (and maybe made again in this slot) would keep a slot its record,
       which finds another generation, cannot give back: back at once,
       and the call decided again through the handle. */
    if (UNLIKELY((atomic_load_explicit(&sl->ctl, memory_order_seq_cst) ^ t->ctl) >> 32 != 0))
        return bulk_retired(sl, t);
    bulk_refused = NULL;
    if (UNLIKELY(atomic_load_explicit(&sl->bulk.state, memory_order_relaxed) ==
                 CBSHM_BULKHEAD_FULL))
        cbshm__bulk_admitted(v->shm, sl, now);
    return 0;
}

static __attribute__((noinline)) int admit_more(struct cbshm_view *v, struct cbshm_slot *sl,
                                                struct cbshm_ticket *t, uint32_t hot)
{
    return admit_more_body(v, sl, t, hot);
}

/* The fast path's admit_more: a full bulkhead waits or rejects here. */
static __attribute__((noinline)) int admit_more_fast(struct cbshm_breaker *b,
                                                     struct cbshm_ticket *t)
{
    struct cbshm_slot *sl = t->slot;
    int rc = admit_more_body(cbshm__view(b), sl, t,
                             atomic_load_explicit(&sl->hot_flags, memory_order_acquire));

    if (UNLIKELY(rc == CBSHM_EFULL_INTERNAL) && !bulk_waiting)
        rc = bulk_full(b, t);
    else if (rc == CBSHM_EPIDNS)
        rc = problem(b, t, rc);
    else if (rc == CBSHM_EAGAIN_INTERNAL)
        rc = allow_slow(b, t); /* the breaker was deleted under it */
    return rc;
}

/* Admits the call on ticket t (admit_more: what else it needs). */
static inline int admit(struct cbshm_view *v, struct cbshm_slot *sl, struct cbshm_ticket *t,
                        uint32_t flags)
{
    uint32_t hot = atomic_load_explicit(&sl->hot_flags, memory_order_acquire);

    t->flags = CBSHM_T_VALID | flags;
    if (UNLIKELY(hot & (CBSHM_HOT_TIME | CBSHM_HOT_SLOW | CBSHM_HOT_BULK)))
        return admit_more(v, sl, t, hot);
    return 0;
}

/* Open or half-open: decide under the lock whether this call may probe. */
static int admit_probe(struct cbshm_breaker *b, struct cbshm_view *v, struct cbshm_slot *sl,
                       uint64_t now, struct cbshm_ticket *t)
{
    struct cbshm *shm = v->shm;
    uint32_t idx = (uint32_t)(sl - shm->slots);
    uint64_t cur;
    int rc;

    if ((rc = cbshm__lock_hot(shm)) != 0)
        return problem(b, t, rc);
    cur = atomic_load_explicit(&sl->ctl, memory_order_acquire);
    if (CBSHM_CTL_MODE(cur) != CBSHM_MODE_NORMAL) {
        rc = CBSHM_EAGAIN_INTERNAL;
    } else if (CBSHM_CTL_STATE(cur) == CBSHM_STATE_CLOSED) {
        t->ctl = cur;
        t->slot = sl;
        rc = admit(v, sl, t, 0);
    } else {
        if (CBSHM_CTL_STATE(cur) == CBSHM_STATE_OPEN &&
            now >= atomic_load_explicit(&sl->open_until_ns, memory_order_relaxed)) {
            CBSHM_CRASH_POINT("half_open.locked");
            cur = set_state(shm, idx, cur, CBSHM_STATE_HALF_OPEN, now, CBSHM_CAUSE_OPEN_TIMEOUT);
        }
        /* A probe that outlived probe_timeout is a failed probe: handing
           its lease to another would let more than half_open_max_calls
           calls reach the downstream in one phase. */
        if (CBSHM_CTL_STATE(cur) == CBSHM_STATE_HALF_OPEN && lease_expired(shm->hdr, sl, now))
            cur = rate_decision(sl)
                      ? decide_by_rate(shm, idx, cur, now)
                      : set_state(shm, idx, cur, CBSHM_STATE_OPEN, now, CBSHM_CAUSE_PROBE_TIMEOUT);
        if (CBSHM_CTL_STATE(cur) == CBSHM_STATE_HALF_OPEN &&
            (rc = lease_take(shm->hdr, sl, now, t)) == 0) {
            t->ctl = cur;
            t->slot = sl;
            /* A probe counts against the bulkhead too; without a slot it
               gives its lease back before anyone can see it taken. */
            if ((rc = admit(v, sl, t, CBSHM_T_PROBE)) != 0)
                atomic_store_explicit(&sl->leases[t->lease].word, 0, memory_order_relaxed);
        } else if (rc != CBSHM_EPIDNS) {
            rc = CBSHM_EREJECTED;
        }
    }
    cbshm__unlock(shm);
    if (rc == CBSHM_EAGAIN_INTERNAL)
        return cbshm_allow(b, t); /* the mode changed under us: decide again */
    if (rc == CBSHM_EPIDNS)
        return problem(b, t, rc); /* this process cannot probe: unguarded */
    if (rc == CBSHM_EREJECTED)
        return reject(v, sl);
    return rc;
}

/* Half-open: is a lease free, or a probe past its deadline (which ends
   the phase)? Then the lock is worth taking. */
static bool lease_maybe_free(struct cbshm_breaker *b, struct cbshm_slot *sl, uint64_t now)
{
    for (uint32_t i = 0; i < max_probes(sl); i++) {
        uint64_t w = atomic_load_explicit(&sl->leases[i].word, memory_order_relaxed);
        if (w == 0 ||
            (!CBSHM_LEASE_DONE(w) &&
             now >= atomic_load_explicit(&sl->leases[i].deadline_ns, memory_order_relaxed)))
            return true;
    }
    /* All held and within their deadlines; now and then, check under the
       lock whether an owner died. */
    if (now >= atomic_load_explicit(&b->scan_at_ns, memory_order_relaxed)) {
        atomic_store_explicit(&b->scan_at_ns, now + PROBE_SCAN_NS, memory_order_relaxed);
        return true;
    }
    return false;
}

/* The failure run reached the threshold (cause CBSHM_CAUSE_FAILURES), or
   the window's rates did: trip, if nobody changed the state meanwhile. */
static void trip(struct cbshm_breaker *b, struct cbshm_view *v, struct cbshm_slot *sl,
                 uint64_t expect, unsigned cause, uint64_t min_open_ns)
{
    bool by_window = cause != CBSHM_CAUSE_FAILURES;
    struct cbshm *shm = v->shm;
    uint64_t now = cbshm__now();
    int rc;

    if ((rc = cbshm__lock_hot(shm)) != 0) {
        atomic_store_explicit(&b->error, rc, memory_order_relaxed);
        return;
    }
    if (atomic_load_explicit(&sl->ctl, memory_order_relaxed) == expect &&
        (by_window || cbshm__run_of(sl, expect) >=
                          atomic_load_explicit(&sl->failure_threshold, memory_order_relaxed))) {
        CBSHM_CRASH_POINT("trip.locked");
        set_state_min(shm, (uint32_t)(sl - shm->slots), expect, CBSHM_STATE_OPEN, now, cause,
                      min_open_ns);
    }
    cbshm__unlock(shm);
}

/*
 * A probe's outcome, decided under the lock while the probe still holds
 * its lease, so no other call can take it in between. First-failure
 * decision: a failed or slow probe reopens, and no probe of the phase is
 * admitted after it; a success uses its lease up, and success_threshold
 * of them close. Rate decision: the lease is marked done, failed or not,
 * and the phase decides once all are (decide_by_rate). Either way an
 * ignored probe says nothing and gives its lease back.
 * A probe whose phase ended, or whose lease was taken back, decides
 * nothing.
 */
static void probe_done(struct cbshm_breaker *b, struct cbshm_view *v, struct cbshm_slot *sl,
                       const struct cbshm_ticket *t, enum cbshm_outcome o, bool slow,
                       uint64_t retry_ns)
{
    struct cbshm_lease *l = &sl->leases[t->lease & (CBSHM_PROBES_MAX - 1)];
    struct cbshm *shm = v->shm;
    uint64_t now = cbshm__now();
    int rc;

    if ((rc = cbshm__lock_hot(shm)) != 0) {
        /* The lease stays held: at its deadline the phase fails. */
        atomic_store_explicit(&b->error, rc, memory_order_relaxed);
        return;
    }
    if (atomic_load_explicit(&sl->ctl, memory_order_relaxed) == t->ctl &&
        atomic_load_explicit(&l->word, memory_order_relaxed) == t->token) {
        uint32_t idx = (uint32_t)(sl - shm->slots);
        /* Reporting after its deadline is as good as not reporting: the
           phase failed, whatever the result (else who asked first would
           decide it). */
        bool late = now >= atomic_load_explicit(&l->deadline_ns, memory_order_relaxed);
        if (late && o != CBSHM_IGNORED && !rate_decision(sl)) {
            set_state(shm, idx, t->ctl, CBSHM_STATE_OPEN, now, CBSHM_CAUSE_PROBE_TIMEOUT);
        } else if (late && o != CBSHM_IGNORED) {
            atomic_store_explicit(&l->word, CBSHM_LEASE_FAILED, memory_order_relaxed);
            decide_by_rate(shm, idx, t->ctl, now);
        } else if (o == CBSHM_FAILURE && retry_ns > 0) {
            /* The downstream said how long: no share to wait for. */
            set_state_min(shm, idx, t->ctl, CBSHM_STATE_OPEN, now, CBSHM_CAUSE_RETRY_AFTER,
                          retry_ns);
        } else if (o != CBSHM_IGNORED && rate_decision(sl)) {
            atomic_store_explicit(
                &l->word, o == CBSHM_FAILURE || slow ? CBSHM_LEASE_FAILED : CBSHM_LEASE_SPENT,
                memory_order_relaxed);
            decide_by_rate(shm, idx, t->ctl, now);
        } else if (o == CBSHM_FAILURE || slow) {
            set_state(shm, idx, t->ctl, CBSHM_STATE_OPEN, now, CBSHM_CAUSE_PROBE_FAILED);
        } else if (o == CBSHM_IGNORED) {
            atomic_store_explicit(&l->word, 0, memory_order_relaxed);
        } else {
            uint32_t n =
                atomic_fetch_add_explicit(&sl->half_open_successes, 1, memory_order_relaxed) + 1;
            atomic_store_explicit(&l->word, CBSHM_LEASE_SPENT, memory_order_relaxed);
            if (n >= atomic_load_explicit(&sl->cfg.success_threshold, memory_order_relaxed))
                set_state(shm, idx, t->ctl, CBSHM_STATE_CLOSED, now, CBSHM_CAUSE_PROBES_OK);
        }
    }
    cbshm__unlock(shm);
}

/* Every CBSHM_WATCH_CALLS recorded calls of a thread: is the segment's name
   still ours? Out of line; a system call at most once a second. */
static __attribute__((noinline, cold)) void watch(struct cbshm_view *v)
{
    cbshm__claim.countdown = CBSHM_WATCH_CALLS;
    cbshm__claim_retry();
    cbshm__watch(v->shm);
}

/* A timed mode whose end has come: make the change (under the lock, once
   for every process), then decide the call again. */
static __attribute__((noinline, cold)) int mode_ended(struct cbshm_breaker *b, struct cbshm_view *v,
                                                      struct cbshm_slot *sl, uint64_t now,
                                                      struct cbshm_ticket *t)
{
    int rc;

    if ((rc = cbshm__lock_hot(v->shm)) != 0)
        return problem(b, t, rc);
    cbshm__mode_expire(v->shm, (uint32_t)(sl - v->shm->slots), now);
    cbshm__unlock(v->shm);
    return cbshm_allow(b, t);
}

/* ---- Slow paths of admission and recording --------------------------- */

/* Everything but "closed, normal mode, handle current". */
static int allow_decide(struct cbshm_breaker *b, struct cbshm_ticket *t)
{
    struct cbshm_view *v;
    struct cbshm_slot *sl;
    uint64_t ctl, now;
    int rc = 0;

    if (b == NULL) {
        t->flags = CBSHM_T_VALID | CBSHM_T_UNGUARDED;
        return 0;
    }
    t->flags = 0; /* until admitted: cbshm_record() refuses a rejected ticket */
    v = cbshm__view(b);
    if ((sl = slot_of_view(b, &v, &ctl, &rc)) == NULL)
        return problem(b, t, rc);
    t->ctl = ctl;
    t->slot = sl;
    if ((ctl & 0xfu) == 0) /* closed, normal mode: re-resolved just now */
        return admit(v, sl, t, 0);
    if (CBSHM_CTL_MODE(ctl) != CBSHM_MODE_NORMAL) {
        uint64_t until = atomic_load_explicit(&sl->mode_until_ns, memory_order_relaxed);
        if (UNLIKELY(until != 0) && (now = cbshm__now()) >= until)
            return mode_ended(b, v, sl, now, t);
    }
    switch (CBSHM_CTL_MODE(ctl)) {
    case CBSHM_MODE_DISABLED:
        t->flags = CBSHM_T_VALID | CBSHM_T_PASS;
        return 0;
    case CBSHM_MODE_FORCED_OPEN:
        return reject(v, sl);
    case CBSHM_MODE_FORCED_CLOSED:
        return admit(v, sl, t, CBSHM_T_FORCED);
    default:
        break;
    }
    if (UNLIKELY(CBSHM_CTL_STATE(ctl) > CBSHM_STATE_HALF_OPEN))
        return problem(b, t, CBSHM_ECORRUPT); /* a scribbled state: nothing to decide by */
    now = cbshm__now();
    if (CBSHM_CTL_STATE(ctl) == CBSHM_STATE_OPEN) {
        if (now < atomic_load_explicit(&sl->open_until_ns, memory_order_relaxed))
            return reject(v, sl);
        return admit_probe(b, v, sl, now, t);
    }
    if (CBSHM_CTL_STATE(ctl) == CBSHM_STATE_HALF_OPEN && lease_maybe_free(b, sl, now))
        return admit_probe(b, v, sl, now, t);
    return reject(v, sl);
}

static __attribute__((noinline)) int allow_slow(struct cbshm_breaker *b, struct cbshm_ticket *t)
{
    int rc;

    /* The breaker deleted between the decision and the slot: again. */
    while ((rc = allow_decide(b, t)) == CBSHM_EAGAIN_INTERNAL)
        ;

    if (UNLIKELY(rc == CBSHM_EFULL_INTERNAL) && !bulk_waiting)
        rc = bulk_full(b, t);
    else if (rc == CBSHM_EPIDNS && !(t->flags & CBSHM_T_UNGUARDED))
        rc = problem(b, t, rc); /* the bulkhead's: no slot from here */
    return rc;
}

/* Does the window say trip (its cause), or not (0)? A count window's new
   bucket is written first. */
static int window_says_trip(struct cbshm_view *v, struct cbshm_slot *sl, uint64_t now, uint32_t hot,
                            bool failed, bool slow)
{
    struct cbshm__sums cur;
    struct cbshm__window w;

    cbshm__sums(sl, &cur);
    if (!(hot & CBSHM_HOT_TIME))
        cbshm__window_roll_count(sl, &cur, now, failed, slow);
    cbshm__window_eval(sl, now, &cur, &w);
    /* Only a failure can trip on the failure rate: a slow success adds
       to the slow-call rate alone. */
    return cbshm__window_trips(v->shm, sl, &w, (hot & CBSHM_HOT_RATE) != 0 && failed);
}

/*
 * A success on a time window without slow-call detection only needs to
 * know whether a new bucket began; false sends it to record_slow. Out of
 * line, so the clock call costs the common path no saved registers.
 */
static __attribute__((noinline)) bool time_window_success(struct cbshm_slot *sl)
{
    uint32_t hot = atomic_load_explicit(&sl->hot_flags, memory_order_acquire);
    uint64_t now;

    /* Settings may have changed since admission: only a time window
       without slow-call timing is handled here. */
    if ((hot & (CBSHM_HOT_TIME | CBSHM_HOT_SLOW)) != CBSHM_HOT_TIME)
        return false;
    now = cbshm__now();
    if (cbshm__window_time_due(sl, now))
        cbshm__window_roll_time(sl, now);
    return true;
}

/* A closed-state success counted on this thread's own stripe (true), or
   not one (false: record_slow's). */
static inline __attribute__((always_inline)) bool record_fast(struct cbshm_view *v,
                                                              struct cbshm_slot *sl,
                                                              const struct cbshm_ticket *t,
                                                              uint32_t flags, enum cbshm_outcome o)
{
    /* The period check: the slot's control word is still the one the call
       was admitted under - same breaker generation, same closed period -
       else record_slow sorts it out (another breaker, or a late call). */
    if (LIKELY((flags & ~CBSHM_T_CLOCKED) == CBSHM_T_VALID && o == CBSHM_SUCCESS &&
               t->ctl == atomic_load_explicit(&sl->ctl, memory_order_relaxed) &&
               cbshm__claim.shm_id == v->shm_id && cbshm__claim.stripe != 0)) {
        _Atomic uint64_t *c = &sl->stripes[cbshm__claim.stripe].count[CBSHM_SUCCESS];
        if (UNLIKELY(flags & CBSHM_T_CLOCKED) && !time_window_success(sl))
            return false;
        /* Ours alone: a plain add, no lock prefix. */
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        /* Store only when needed: a store of zero over zero still takes
           the line away from every other core. */
        if (UNLIKELY(CBSHM_RUN_COUNT(atomic_load_explicit(&sl->run, memory_order_relaxed)) != 0))
            run_end(sl, t->ctl);
        if (UNLIKELY(cbshm__claim.countdown-- == 0))
            watch(v);
        return true;
    }
    return false;
}

static void record_slow(struct cbshm_breaker *b, struct cbshm_view *v, struct cbshm_slot *sl,
                        const struct cbshm_ticket *t, uint32_t flags, enum cbshm_outcome o,
                        uint64_t duration_ns, uint64_t retry_ns);

/* A call that held a bulkhead slot: the slot goes back first (the call is
   over), then its outcome counts as any other's. */
static __attribute__((noinline)) void record_bulk(struct cbshm_breaker *b, struct cbshm_view *v,
                                                  struct cbshm_slot *sl,
                                                  const struct cbshm_ticket *t, uint32_t flags,
                                                  enum cbshm_outcome o, uint64_t duration_ns,
                                                  uint64_t retry_ns)
{
    cbshm__bulk_release(sl, t);
    flags &= ~CBSHM_T_SLOT;
    if (retry_ns != 0 || !record_fast(v, sl, t, flags, o))
        record_slow(b, v, sl, t, flags, o, duration_ns, retry_ns);
}

/* Everything but "a closed-state success counted on an owned stripe, no clock". */
static __attribute__((noinline)) void record_slow(struct cbshm_breaker *b, struct cbshm_view *v,
                                                  struct cbshm_slot *sl,
                                                  const struct cbshm_ticket *t, uint32_t flags,
                                                  enum cbshm_outcome o, uint64_t duration_ns,
                                                  uint64_t retry_ns)
{
    uint32_t hot = atomic_load_explicit(&sl->hot_flags, memory_order_acquire);
    uint64_t now = 0, cur = atomic_load_explicit(&sl->ctl, memory_order_acquire);
    bool slow = false, bad;

    /* The ticket counts on the breaker generation it was admitted on, in
       the slot the handle names now, or nowhere: a slot deleted and reused
       since is another breaker (whose leases restart their sequence too),
       and a handle that moved on left the ticket's slot behind. */
    if (CBSHM_CTL_GEN(cur) != CBSHM_CTL_GEN(t->ctl) ||
        sl != &v->slots[atomic_load_explicit(&v->ref, memory_order_relaxed) >> 32])
        return;
    if (cbshm__claim.countdown-- == 0)
        watch(v);
    if (cur != t->ctl) {
        /* Admitted in an earlier state period: counted, in no window, and
           it decides nothing (its phase or closed period is over). */
        if (o != CBSHM_IGNORED) {
            bump(v, sl, (int)o);
            bump(v, sl, CBSHM_COUNT_LATE_CALLS);
            if (o == CBSHM_FAILURE)
                bump(v, sl, CBSHM_COUNT_LATE_FAILURES);
        } else {
            bump(v, sl, CBSHM_IGNORED);
        }
        return;
    }
    if (flags & CBSHM_T_CLOCKED) {
        now = cbshm__now();
        /* A time window rolls before the outcome is counted, so the new
           bucket's checkpoint is taken before its first call. */
        if ((hot & CBSHM_HOT_TIME) && cbshm__window_time_due(sl, now))
            cbshm__window_roll_time(sl, now);
        if (duration_ns == UINT64_MAX)
            duration_ns = t->start_ns != 0 && now >= t->start_ns ? now - t->start_ns : 0;
        slow = (hot & CBSHM_HOT_SLOW) && o != CBSHM_IGNORED &&
               duration_ns >= atomic_load_explicit(&sl->slow_call_ns, memory_order_relaxed);
    }
    bump(v, sl, (int)o);
    if (slow)
        bump(v, sl, CBSHM_COUNT_SLOW);
    bad = o == CBSHM_FAILURE || slow;
    if (bad && (hot & CBSHM_HOT_QUORUM)) {
        if (now == 0)
            now = cbshm__now();
        stamp_failure(v, sl, now);
    }

    if (flags & CBSHM_T_PROBE) {
        probe_done(b, v, sl, t, o, slow, retry_ns);
        return;
    }
    if (o == CBSHM_SUCCESS && !(flags & CBSHM_T_FORCED) &&
        CBSHM_RUN_COUNT(atomic_load_explicit(&sl->run, memory_order_relaxed)) != 0)
        run_end(sl, t->ctl);
    if (!bad)
        return;
    if (flags & CBSHM_T_FORCED) {
        /* No rate reads it now, but the count window still describes the
           last window_size calls. */
        if (!(hot & CBSHM_HOT_TIME))
            cbshm__window_count_bad(sl, now, o == CBSHM_FAILURE, slow);
        return;
    }
    if (o == CBSHM_FAILURE && retry_ns > 0) {
        /* The downstream said how long to leave it alone: open now. */
        if (!(hot & CBSHM_HOT_TIME))
            cbshm__window_count_bad(sl, now, true, slow);
        trip(b, v, sl, t->ctl, CBSHM_CAUSE_RETRY_AFTER, retry_ns);
        return;
    }
    if ((hot & CBSHM_HOT_RATE) || slow) {
        if (now == 0)
            now = cbshm__now();
        int cause = window_says_trip(v, sl, now, hot, o == CBSHM_FAILURE, slow);
        if (cause != 0) {
            trip(b, v, sl, t->ctl, (unsigned)cause, 0);
            return;
        }
    }
    if ((hot & CBSHM_HOT_RATE) || o != CBSHM_FAILURE)
        return;
    /* Consecutive policy. */
    uint32_t run = run_add(sl, t->ctl, now);
    if (run == 0)
        return; /* a transition came between its check and now: late */
    /* The window no rate reads still describes the last window_size calls
       (a slow failure rolled it above). */
    if (!(hot & CBSHM_HOT_TIME) && !slow &&
        (run == 1 || atomic_load_explicit(&sl->run_calls, memory_order_relaxed) + run - 1 >=
                         atomic_load_explicit(&sl->run_next, memory_order_relaxed)))
        cbshm__window_count_run(sl, run, now);
    if (run < atomic_load_explicit(&sl->failure_threshold, memory_order_relaxed))
        return;
    if ((hot & CBSHM_HOT_QUORUM) &&
        cbshm__failing_workers(v->shm->hdr, sl, cbshm__quorum_since(sl, now)) <
            atomic_load_explicit(&sl->cfg.min_failing_workers, memory_order_relaxed))
        return; /* one sick worker does not open the circuit for the host */
    trip(b, v, sl, t->ctl, CBSHM_CAUSE_FAILURES, 0);
}

/* ---- Hot path ---------------------------------------------------------- */

/*
 * The common cases, inlined into the public functions: a current handle
 * on a closed breaker in normal mode admits with one load of the control
 * word; a success on it is one plain add on this thread's own stripe and
 * one load of the failure run. Anything else goes to the slow paths.
 */
static inline __attribute__((always_inline)) int allow_impl(struct cbshm_breaker *b,
                                                            struct cbshm_ticket *t)
{
    uint64_t ref, ctl;

    if (LIKELY(b != NULL)) {
        struct cbshm_view *v = cbshm__view(b);
        struct cbshm_slot *sl;
        ref = atomic_load_explicit(&v->ref, memory_order_relaxed);
        sl = &v->slots[ref >> 32];
        ctl = atomic_load_explicit(&sl->ctl, memory_order_acquire);
        /* cbctl destroy bumps every generation: a retired segment sends
           every call to the slow path, which moves the handle on. */
        if (LIKELY((ctl & 0xfu) == 0 && CBSHM_CTL_GEN(ctl) == (uint32_t)ref)) {
            uint32_t hot = atomic_load_explicit(&sl->hot_flags, memory_order_acquire);
            t->ctl = ctl;
            t->slot = sl;
            t->flags = CBSHM_T_VALID;
            if (UNLIKELY(hot & (CBSHM_HOT_TIME | CBSHM_HOT_SLOW | CBSHM_HOT_BULK)))
                return admit_more_fast(b, t);
            return 0;
        }
        /* Open in normal mode, before open_until: reject with one clock read. */
        if ((ctl & 0xfu) == CBSHM_STATE_OPEN && CBSHM_CTL_GEN(ctl) == (uint32_t)ref &&
            cbshm__now() < atomic_load_explicit(&sl->open_until_ns, memory_order_relaxed)) {
            t->flags = 0;
            bump(v, sl, CBSHM_COUNT_REJECTED);
            return CBSHM_EREJECTED;
        }
    }
    return allow_slow(b, t);
}

static inline __attribute__((always_inline)) void record_impl(struct cbshm_breaker *b,
                                                              struct cbshm_ticket *t,
                                                              enum cbshm_outcome o,
                                                              uint64_t duration_ns)
{
    struct cbshm_view *v = cbshm__view(b);
    struct cbshm_slot *sl = t->slot;
    uint32_t flags = t->flags;

    t->flags = 0;
    if (record_fast(v, sl, t, flags, o))
        return;
    if (UNLIKELY(flags & CBSHM_T_SLOT))
        record_bulk(b, v, sl, t, flags, o, duration_ns, 0);
    else
        record_slow(b, v, sl, t, flags, o, duration_ns, 0);
}

/* The bulkhead had no free slot for this call: wait for one up to
   max_wait (a futex on the segment, woken by the call that gives a slot
   back), deciding the whole call again each time; else reject it. */
static __attribute__((noinline, cold)) int bulk_full(struct cbshm_breaker *b,
                                                     struct cbshm_ticket *t)
{
    struct cbshm_slot *sl = t->slot;
    uint64_t wait = atomic_load_explicit(&sl->cfg.max_wait_ns, memory_order_relaxed);
    /* A real wait, on the real clock; under a test's clock the wait ends
       by either, 0.1 ms of sleep at a time. */
    uint64_t now = cbshm__now(), real = cbshm__clock_real(CLOCK_MONOTONIC);
    uint64_t deadline, real_deadline, nap;
    struct cbshm_view *v;
    bool slept = false;
    int rc = CBSHM_EFULL_INTERNAL;

    /* 64-bit: 10 s in nanoseconds wraps in 32 bits, to 1.41 s. */
    if (wait > CBSHM_MAX_WAIT_MS * UINT64_C(1000000))
        wait = CBSHM_MAX_WAIT_MS * UINT64_C(1000000); /* scribbled */
    deadline = now + wait;
    real_deadline = real + wait;
    while (now < deadline && real < real_deadline) {
        /* Say a waiter sleeps, then look again: a slot given back before
           the announcement is seen here, one given back after wakes it. */
        uint32_t wake = atomic_fetch_or_explicit(&sl->bulk.wake, 1u, memory_order_seq_cst) | 1u;
        atomic_thread_fence(memory_order_seq_cst);
        bulk_waiting = true;
        rc = allow_impl(b, t);
        bulk_waiting = false;
        if (rc != CBSHM_EFULL_INTERNAL)
            break;
        if (t->slot != sl) { /* the handle moved (a new segment): its word */
            sl = t->slot;
            continue;
        }
        nap = real_deadline - real;
        if (cbshm__clock_fn != NULL && nap > 100000u)
            nap = 100000u;
        cbshm__bulk_sleep(sl, wake, nap);
        slept = true;
        now = cbshm__now();
        real = cbshm__clock_real(CLOCK_MONOTONIC);
    }
    if (rc == 0 && slept && (t->flags & CBSHM_T_SLOT))
        atomic_fetch_add_explicit(&((struct cbshm_slot *)t->slot)->bulk.waits, 1,
                                  memory_order_relaxed);
    if (rc != CBSHM_EFULL_INTERNAL)
        return rc;
    v = cbshm__view(b);
    t->flags = 0;
    bump(v, sl, CBSHM_COUNT_REJECTED);
    cbshm__bulk_rejected(v->shm, sl, now);
    bulk_refused = b;
    bulk_refused_ctl = t->ctl;
    return CBSHM_EREJECTED;
}

int cbshm_allow(struct cbshm_breaker *b, struct cbshm_ticket *t)
{
    if (t == NULL)
        return CBSHM_EINVAL;
    return allow_impl(b, t);
}

/* The checks both record calls share; UINT64_MAX: no duration given. */
static inline __attribute__((always_inline)) int record_checked(struct cbshm_breaker *b,
                                                                struct cbshm_ticket *t,
                                                                enum cbshm_outcome o,
                                                                uint64_t duration_ns)
{
    if (t == NULL || (unsigned)o > CBSHM_IGNORED || !(t->flags & CBSHM_T_VALID))
        return CBSHM_EINVAL; /* no ticket, a bad outcome, or recorded already */
    if (b == NULL || (t->flags & (CBSHM_T_UNGUARDED | CBSHM_T_PASS))) {
        t->flags = 0;
        return 0;
    }
    record_impl(b, t, o, duration_ns);
    return 0;
}

int cbshm_record(struct cbshm_breaker *b, struct cbshm_ticket *t, enum cbshm_outcome o)
{
    return record_checked(b, t, o, UINT64_MAX);
}

int cbshm_record_timed(struct cbshm_breaker *b, struct cbshm_ticket *t, enum cbshm_outcome o,
                       uint64_t duration_ns)
{
    if (duration_ns == UINT64_MAX)
        return CBSHM_EINVAL;
    return record_checked(b, t, o, duration_ns);
}

int cbshm_record_retry_after(struct cbshm_breaker *b, struct cbshm_ticket *t, enum cbshm_outcome o,
                             uint64_t retry_after_ns)
{
    uint32_t flags;

    if (o != CBSHM_FAILURE || retry_after_ns == 0)
        return cbshm_record(b, t, o);
    if (t == NULL || !(t->flags & CBSHM_T_VALID))
        return CBSHM_EINVAL;
    flags = t->flags;
    t->flags = 0;
    if (b == NULL || (flags & (CBSHM_T_UNGUARDED | CBSHM_T_PASS)))
        return 0;
    if (flags & CBSHM_T_SLOT)
        record_bulk(b, cbshm__view(b), t->slot, t, flags, o, UINT64_MAX, retry_after_ns);
    else
        record_slow(b, cbshm__view(b), t->slot, t, flags, o, UINT64_MAX, retry_after_ns);
    return 0;
}

int cbshm_execute(struct cbshm_breaker *b, cbshm_call_fn fn, void *arg)
{
    struct cbshm_ticket t;
    enum cbshm_outcome o;
    int rc;

    if (fn == NULL)
        return CBSHM_EINVAL;
    if ((rc = allow_impl(b, &t)) != 0)
        return rc;
    o = fn(arg);
    if ((unsigned)o > CBSHM_IGNORED)
        o = CBSHM_FAILURE; /* a caller bug must not corrupt the counts */
    if (LIKELY(!(t.flags & (CBSHM_T_UNGUARDED | CBSHM_T_PASS))))
        record_impl(b, &t, o, UINT64_MAX);
    return 0;
}

int cbshm_breaker_error(const struct cbshm_breaker *b)
{
    return b == NULL ? CBSHM_EINVAL : atomic_load_explicit(&b->error, memory_order_relaxed);
}

int cbshm_breaker_rejection(const struct cbshm_breaker *b, struct cbshm_rejection *out)
{
    struct cbshm_view *v;
    struct cbshm_slot *sl;
    uint64_t ref, ctl, now, until = 0;
    bool refused;

    if (b == NULL || out == NULL)
        return CBSHM_EINVAL;
    v = cbshm__view(b);
    ref = atomic_load_explicit(&v->ref, memory_order_relaxed);
    sl = &v->slots[ref >> 32];
    ctl = atomic_load_explicit(&sl->ctl, memory_order_acquire);
    if (CBSHM_CTL_GEN(ctl) != (uint32_t)ref ||
        atomic_load_explicit(v->retired, memory_order_relaxed))
        return CBSHM_ESTALE;
    memset(out, 0, sizeof *out);
    now = cbshm__now();
    refused = bulk_refused == b && bulk_refused_ctl == ctl;
    if (CBSHM_CTL_MODE(ctl) == CBSHM_MODE_FORCED_OPEN) {
        out->why = CBSHM_REFUSAL_FORCED_OPEN;
        until = atomic_load_explicit(&sl->mode_until_ns, memory_order_relaxed);
    } else if (CBSHM_CTL_MODE(ctl) == CBSHM_MODE_DISABLED) {
        return 0; /* everything passes, bulkhead or not */
    } else if (CBSHM_CTL_MODE(ctl) == CBSHM_MODE_FORCED_CLOSED ||
               CBSHM_CTL_STATE(ctl) == CBSHM_STATE_CLOSED) {
        /* Admitting by its state: refused by the bulkhead, if anything -
           this thread's last rejection, or every slot held now. */
        if ((atomic_load_explicit(&sl->hot_flags, memory_order_relaxed) & CBSHM_HOT_BULK) &&
            (refused || cbshm__bulk_in_flight(sl) >= cbshm__bulk_limit(v->shm->hdr, sl)))
            out->why = CBSHM_REFUSAL_BULKHEAD_FULL;
        return 0;
    } else if (CBSHM_CTL_STATE(ctl) == CBSHM_STATE_OPEN) {
        out->why = CBSHM_REFUSAL_OPEN;
        until = atomic_load_explicit(&sl->open_until_ns, memory_order_relaxed);
    } else if (CBSHM_CTL_STATE(ctl) == CBSHM_STATE_HALF_OPEN) {
        /* Busy until the earliest running probe's deadline: the phase is
           decided by then at the latest. */
        out->why = CBSHM_REFUSAL_PROBES_BUSY;
        for (uint32_t i = 0; i < max_probes(sl); i++) {
            uint64_t w = atomic_load_explicit(&sl->leases[i].word, memory_order_relaxed);
            uint64_t d = atomic_load_explicit(&sl->leases[i].deadline_ns, memory_order_relaxed);
            if (w == 0) {
                /* A lease is free: the next call probes, unless the
                   bulkhead refused this thread's probe. */
                out->why = refused ? CBSHM_REFUSAL_BULKHEAD_FULL : CBSHM_REFUSAL_NONE;
                return 0;
            }
            if (!CBSHM_LEASE_DONE(w) && (until == 0 || d < until))
                until = d;
        }
    }
    out->retry_after_ns = until > now ? until - now : 0;
    return 0;
}
