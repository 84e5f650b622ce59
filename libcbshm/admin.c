/* SPDX-License-Identifier: MIT */
/*
 * Resolving names to handles, and the operator's view and steering of
 * breakers: snapshot, iterate, set a mode, reset. All of it takes the
 * table lock, so what it reads or writes is consistent with structural
 * changes - but on a read-only view, which reads between changes instead
 * (observe.c) and changes nothing; none of it is on the hot path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * A late handle's breaker that is not there yet (or its segment is not):
 * a view on the absent slot, which sends every call to the slow path -
 * fail-open, a new look at most every 0.25 s (breaker.c resolve_again).
 */
static void late_view(struct cbshm_breaker *b, struct cbshm_view *v, struct cbshm *where, int why)
{
    v->shm = where;
    v->slots = &cbshm__absent_slot;
    v->retired = &where->hdr->retired;
    v->shm_id = where->id;
    atomic_store_explicit(&v->ref, CBSHM__ABSENT_GEN, memory_order_relaxed);
    atomic_store_explicit(&b->error, why, memory_order_relaxed);
}

int cbshm_breaker_get(struct cbshm *shm, const char *name, struct cbshm_breaker **out)
{
    struct cbshm_breaker *b;
    struct cbshm_view *v;
    struct cbshm *live;
    uint32_t idx = 0;
    uint64_t ctl = 0;
    int rc;

    if (shm == NULL || out == NULL)
        return CBSHM_EINVAL;
    if ((rc = cbshm__check_breaker_name(name)) != 0)
        return rc;
    if (CBSHM__READ_ONLY(shm)) /* a call would write its counts */
        return CBSHM_EPERM;
    if ((b = calloc(1, sizeof *b)) == NULL)
        return -ENOMEM;
    if ((v = calloc(1, sizeof *v)) == NULL) {
        free(b);
        return -ENOMEM;
    }
    b->origin = shm;
    strcpy(b->name, name);
    if ((live = cbshm__live(shm, &rc)) != NULL && (rc = cbshm__lock(live)) == 0) {
        rc = cbshm__table_find(live, name, &idx);
        if (rc == 0)
            ctl = atomic_load_explicit(&live->slots[idx].ctl, memory_order_acquire);
        cbshm__unlock(live);
    }
    if (rc == 0) {
        v->shm = live;
        v->slots = live->slots;
        v->retired = &live->hdr->retired;
        v->shm_id = live->id;
        atomic_store_explicit(&v->ref, (uint64_t)idx << 32 | CBSHM_CTL_GEN(ctl),
                              memory_order_relaxed);
    } else if ((shm->flags & CBSHM_LATE) &&
               (live == NULL || rc == CBSHM_ENOBREAKER || rc == CBSHM_ELOCK)) {
        late_view(b, v, live != NULL ? live : shm, rc);
    } else {
        goto fail;
    }
    atomic_store_explicit(&b->view, v, memory_order_release);
    *out = b;
    return 0;
fail:
    free(v);
    free(b);
    return rc;
}

void cbshm_breaker_release(struct cbshm_breaker *b)
{
    struct cbshm_view *v;

    if (b == NULL)
        return;
    for (v = cbshm__view(b); v != NULL;) {
        struct cbshm_view *older = v->older;
        free(v);
        v = older;
    }
    free(b);
}

const char *cbshm_breaker_name(const struct cbshm_breaker *b)
{
    return b != NULL ? b->name : "";
}

/* Looks `name` up with the lock held by the caller. */
static int locked_find(struct cbshm *shm, const char *name, uint32_t *idx)
{
    int rc = cbshm__check_breaker_name(name);
    return rc != 0 ? rc : cbshm__table_find(shm, name, idx);
}

/* A timed mode past its end, as a read-only view shows it: normal. The
   change itself, and its event, are the next writer's to make. */
static void show_expired_mode(struct cbshm_snapshot *s, uint64_t now)
{
    if (s->mode_until_ns != 0 && now >= s->mode_until_ns && s->mode != CBSHM_MODE_NORMAL) {
        s->mode = CBSHM_MODE_NORMAL;
        s->mode_until_ns = 0;
    }
}

struct observed_one {
    const char *name;
    struct cbshm_snapshot *out;
};

static int observe_one(struct cbshm *shm, void *ctx)
{
    struct observed_one *o = ctx;
    uint64_t now = cbshm__now();
    uint32_t idx;
    int rc;

    if ((rc = locked_find(shm, o->name, &idx)) == 0) {
        if (!cbshm__slot_snapshot(shm, idx, now, o->out))
            return CBSHM_ECORRUPT;
        show_expired_mode(o->out, now);
    }
    return rc;
}

int cbshm_snapshot(struct cbshm *shm, const char *name, struct cbshm_snapshot *out)
{
    uint32_t idx;
    int rc;

    if (shm == NULL || out == NULL)
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if (CBSHM__READ_ONLY(shm))
        return cbshm__observe(shm, observe_one, &(struct observed_one){name, out});
    if ((rc = cbshm__lock(shm)) != 0)
        return rc;
    if ((rc = locked_find(shm, name, &idx)) == 0) {
        uint64_t now = cbshm__now();
        cbshm__mode_expire(shm, idx, now);
        if (!cbshm__slot_snapshot(shm, idx, now, out))
            rc = CBSHM_ECORRUPT;
    }
    cbshm__unlock(shm);
    return rc;
}

struct observed_all {
    struct cbshm_snapshot *all;
    uint32_t n;
    uint32_t corrupt; /* slots in use left out for their names */
};

/*
 * Every live breaker into o->all; expiring timed modes on a writable view
 * (under the lock), showing them expired on a read-only one. A slot in
 * use whose name is not a valid name is scribbled: its name is never
 * handed out (a terminal or a scraper would get its bytes), only counted.
 */
static int copy_all(struct cbshm *shm, void *ctx)
{
    struct observed_all *o = ctx;
    uint64_t now = cbshm__now();

    o->n = o->corrupt = 0;
    for (uint32_t i = 0; i < shm->capacity; i++) {
        if (atomic_load_explicit(&shm->slots[i].in_use, memory_order_acquire) != 1)
            continue;
        if (!cbshm__slot_name_ok(&shm->slots[i])) {
            o->corrupt++;
            continue;
        }
        CBSHM_CRASH_POINT("foreach.name_checked");
        if (!CBSHM__READ_ONLY(shm))
            cbshm__mode_expire(shm, i, now);
        if (!cbshm__slot_snapshot(shm, i, now, &o->all[o->n])) {
            o->corrupt++;
            continue;
        }
        show_expired_mode(&o->all[o->n++], now);
    }
    return 0;
}

int cbshm_foreach(struct cbshm *shm, int (*fn)(void *ctx, const struct cbshm_snapshot *s),
                  void *ctx)
{
    struct observed_all o = {NULL, 0, 0};
    struct cbshm_snapshot *all;
    uint32_t n;
    int rc;

    if (shm == NULL || fn == NULL)
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    /* Copy under the lock, call back outside it: fn may be slow (it
       prints) and must not stall structural changes. */
    if ((all = o.all = malloc((size_t)shm->capacity * sizeof *all)) == NULL)
        return -ENOMEM;
    if (CBSHM__READ_ONLY(shm)) {
        rc = cbshm__observe(shm, copy_all, &o);
    } else if ((rc = cbshm__lock(shm)) == 0) {
        copy_all(shm, &o);
        cbshm__unlock(shm);
    }
    if (rc != 0) {
        free(all);
        return rc;
    }
    n = o.n;
    for (uint32_t i = 0; i < n && rc == 0; i++)
        if (fn(ctx, &all[i]) != 0)
            rc = CBSHM_ESTOPPED;
    free(all);
    /* The others were handed out; the walk says one was not. */
    return rc == 0 && o.corrupt > 0 ? CBSHM_ECORRUPT : rc;
}

/* The sooner of two ends of a timed mode, where 0 is none. */
static uint64_t sooner_end(uint64_t a, uint64_t b)
{
    return a == 0 ? b : b == 0 || a < b ? a : b;
}

/*
 * Puts breaker idx in `mode` until until_ns (0: until changed), its last
 * change's cause `cause`: every word but the event and the header's op,
 * so that fleet.c can journal the change around it. Returns the mode
 * before. Called with the table lock held.
 */
unsigned cbshm__mode_words(struct cbshm *shm, uint32_t idx, enum cbshm_mode mode, uint64_t until_ns,
                           unsigned cause)
{
    struct cbshm_slot *sl = &shm->slots[idx];
    uint64_t ctl = atomic_load_explicit(&sl->ctl, memory_order_relaxed);
    uint64_t next =
        CBSHM_CTL_MAKE(CBSHM_CTL_GEN(ctl), CBSHM_CTL_EPOCH(ctl) + 1, mode, CBSHM_CTL_STATE(ctl));
    uint64_t until_before = atomic_load_explicit(&sl->mode_until_ns, memory_order_relaxed);

    /* The end, the cause and the mode are three words. A process killed
       between them leaves the old mode or the new one with, until the
       control word is published, the sooner of the two ends (0: none),
       and only then the new end: a mode torn that way ends early, never
       late - a fleet force whose ending was killed midway still lapses. */
    atomic_store_explicit(&sl->mode_cause, cause, memory_order_relaxed);
    atomic_store_explicit(&sl->mode_until_ns,
                          CBSHM_CTL_MODE(ctl) == CBSHM_MODE_NORMAL
                              ? until_ns /* normal has no end to keep */
                              : sooner_end(until_before, until_ns),
                          memory_order_relaxed);
    /* Back to normal: the state machine starts a fresh period, with an
       empty window - what was recorded while forced or disabled belongs
       to that time. */
    if (mode == CBSHM_MODE_NORMAL && CBSHM_CTL_MODE(ctl) != CBSHM_MODE_NORMAL)
        cbshm__window_reset(sl, cbshm__now());
    /* Back to normal, the failure run starts empty; into a forced mode it
       goes on (show still says how far it had come). A half-open phase
       starts over: the probes out are of the old period, and their leases
       would stay taken with nobody left to give them back. */
    if (mode == CBSHM_MODE_NORMAL)
        cbshm__run_clear(sl, next);
    else
        cbshm__run_carry(sl, ctl, next);
    if (CBSHM_CTL_STATE(ctl) == CBSHM_STATE_HALF_OPEN)
        cbshm__phase_restart(sl);
    /* A new epoch: calls admitted under the old mode are counted but
       decide nothing. */
    CBSHM_CRASH_POINT("mode.before_publish");
    cbshm__ctl_publish(sl, ctl, next);
    CBSHM_CRASH_POINT("mode.published");
    atomic_store_explicit(&sl->mode_until_ns, until_ns, memory_order_relaxed);
    return CBSHM_CTL_MODE(ctl);
}

/*
 * Puts breaker idx in `mode`, until until_ns (0: until changed), with an
 * event of `cause` at event_ns. Called with the table lock held.
 */
void cbshm__mode_change(struct cbshm *shm, uint32_t idx, enum cbshm_mode mode, uint64_t until_ns,
                        unsigned cause, uint64_t event_ns)
{
    unsigned from;

    CBSHM_CRASH_POINT("mode.locked");
    shm->hdr->op_slot = idx;
    shm->hdr->op = CBSHM_OP_TRANSITION;
    from = cbshm__mode_words(shm, idx, mode, until_ns, cause);
    if (from != (unsigned)mode)
        cbshm__event(shm, idx, CBSHM_EVENT_MODE, from, mode, cause, event_ns);
    shm->hdr->op = CBSHM_OP_NONE;
}

bool cbshm__mode_expire(struct cbshm *shm, uint32_t idx, uint64_t now)
{
    struct cbshm_slot *sl = &shm->slots[idx];
    uint64_t until = atomic_load_explicit(&sl->mode_until_ns, memory_order_relaxed);

    if (until == 0 || now < until ||
        CBSHM_CTL_MODE(atomic_load_explicit(&sl->ctl, memory_order_relaxed)) == CBSHM_MODE_NORMAL)
        return false;
    cbshm__mode_change(shm, idx, CBSHM_MODE_NORMAL, 0, CBSHM_CAUSE_MODE_EXPIRED, until);
    return true;
}

static int set_mode(struct cbshm *shm, const char *name, enum cbshm_mode mode, uint64_t until_ns)
{
    uint32_t idx;
    int rc;

    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if (CBSHM__READ_ONLY(shm))
        return CBSHM_EPERM;
    if ((rc = cbshm__lock(shm)) != 0)
        return rc;
    if ((rc = locked_find(shm, name, &idx)) == 0)
        cbshm__mode_change(shm, idx, mode, until_ns, CBSHM_CAUSE_OPERATOR, cbshm__now());
    cbshm__unlock(shm);
    return rc;
}

int cbshm_set_mode(struct cbshm *shm, const char *name, enum cbshm_mode mode)
{
    if (shm == NULL || (unsigned)mode > CBSHM_MODE_DISABLED)
        return CBSHM_EINVAL;
    return set_mode(shm, name, mode, 0);
}

int cbshm_set_mode_for(struct cbshm *shm, const char *name, enum cbshm_mode mode,
                       uint64_t duration_ms)
{
    if (shm == NULL || mode == CBSHM_MODE_NORMAL || (unsigned)mode > CBSHM_MODE_DISABLED ||
        duration_ms < 1 || duration_ms > CBSHM__MODE_MAX_MS)
        return CBSHM_EINVAL;
    return set_mode(shm, name, mode, cbshm__now() + duration_ms * 1000000u);
}

/*
 * Closes breaker idx and clears its figures (cbshm_reset), without the
 * event and the header's op. Returns the state before. Called with the
 * table lock held.
 */
unsigned cbshm__reset_words(struct cbshm *shm, uint32_t idx, uint64_t now)
{
    struct cbshm_slot *sl = &shm->slots[idx];
    uint64_t ctl;

    cbshm__slot_rebase(sl);
    CBSHM_CRASH_POINT("reset.counters_cleared");
    for (int i = 0; i < CBSHM_PROBES_MAX; i++)
        atomic_store_explicit(&sl->leases[i].word, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->trips, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->probes_reclaimed, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->half_open_successes, 0, memory_order_relaxed);
    /* The bulkhead's figures, not its slots: those calls are in flight. */
    atomic_store_explicit(&sl->bulk.rejections, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->bulk.reclaimed, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->bulk.waits, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->open_until_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->run_start_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->current_open_ns,
                          atomic_load_explicit(&sl->cfg.open_timeout_ns, memory_order_relaxed),
                          memory_order_relaxed);
    cbshm__window_reset(sl, now);
    atomic_store_explicit(&sl->last_transition_ns, now, memory_order_relaxed);
    ctl = atomic_load_explicit(&sl->ctl, memory_order_relaxed);
    cbshm__run_clear(sl, CBSHM_CTL_MAKE(0, CBSHM_CTL_EPOCH(ctl) + 1, 0, 0));
    cbshm__ctl_publish(sl, ctl,
                       CBSHM_CTL_MAKE(CBSHM_CTL_GEN(ctl), CBSHM_CTL_EPOCH(ctl) + 1,
                                      CBSHM_CTL_MODE(ctl), CBSHM_STATE_CLOSED));
    return CBSHM_CTL_STATE(ctl);
}

int cbshm_reset(struct cbshm *shm, const char *name)
{
    uint64_t now = cbshm__now();
    uint32_t idx;
    unsigned from;
    int rc;

    if (shm == NULL)
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if (CBSHM__READ_ONLY(shm))
        return CBSHM_EPERM;
    if ((rc = cbshm__lock(shm)) != 0)
        return rc;
    if ((rc = locked_find(shm, name, &idx)) == 0) {
        shm->hdr->op_slot = idx;
        shm->hdr->op = CBSHM_OP_TRANSITION;
        from = cbshm__reset_words(shm, idx, now);
        cbshm__event(shm, idx, CBSHM_EVENT_RESET, from, CBSHM_STATE_CLOSED, CBSHM_CAUSE_OPERATOR,
                     now);
        shm->hdr->op = CBSHM_OP_NONE;
    }
    cbshm__unlock(shm);
    return rc;
}
