/* SPDX-License-Identifier: MIT */
/*
 * The bulkhead: at most a limit of calls in flight host-wide through one
 * breaker, whatever the processes that make them do or suffer.
 *
 * Why slot words rather than a shared counter with per-stripe ledgers: a
 * counter and a ledger are two words, and a process killed between the
 * two writes leaves them disagreeing - the dead call is either counted
 * with no owner to give it back (the slot is lost for good) or given back
 * twice (the limit is exceeded). A slot word is both at once: one
 * compare-and-swap from 0 to CBSHM_STAMP(now, pid) takes it and says who
 * holds it since when; one from that value back to 0 gives it back. At
 * every instruction the words held are exactly the calls admitted and
 * not yet recorded, by processes alive or dead, and the dead ones' words
 * name them. Taking back is again one compare-and-swap from the word
 * read, so a late record of a call whose slot was taken back (its word is
 * gone; a new holder's word carries a later time) frees nothing.
 *
 * Cost with room: a clock read (the coarse clock, for the stamp) and one
 * compare-and-swap to admit, one to give back, on the breaker's slot
 * lines. Each stripe starts its search at its own line, so processes
 * that share a breaker mostly write different lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define BULK_SCAN_NS   10000000ull   /* look for dead or timed-out holders at most every 10 ms */
#define BULK_EVENT_NS  1000000000ull /* a bulkhead's events: at most one a second */
#define WORKERS_EVERY  1000000000ull /* count the live workers again at most every second */
#define SLOTS_PER_LINE (CBSHM_LINE / sizeof(uint64_t))

/* Inline here: every take computes it. */
static inline uint32_t bulk_limit(const struct cbshm_header *h, const struct cbshm_slot *sl)
{
    uint32_t q = atomic_load_explicit(&sl->cfg.concurrency_quota, memory_order_relaxed);
    uint64_t n, lim;

    if (q == 0) {
        lim = atomic_load_explicit(&sl->cfg.max_concurrent_calls, memory_order_relaxed);
        return lim > CBSHM_BULKHEAD_MAX ? CBSHM_BULKHEAD_MAX : (uint32_t)lim;
    }
    /* A share of the workers, rounded up, at least one slot. */
    n = CBSHM_WORKERS_COUNT(atomic_load_explicit(&h->workers_live, memory_order_relaxed));
    lim = (q * n + 99) / 100;
    return lim < 1 ? 1 : lim > CBSHM_BULKHEAD_MAX ? CBSHM_BULKHEAD_MAX : (uint32_t)lim;
}

uint32_t cbshm__bulk_limit(const struct cbshm_header *h, const struct cbshm_slot *sl)
{
    return bulk_limit(h, sl);
}

uint32_t cbshm__bulk_in_flight(const struct cbshm_slot *sl)
{
    uint32_t n = 0;

    for (int i = 0; i < CBSHM_BULKHEAD_MAX; i++)
        n += atomic_load_explicit(&sl->bulk_slots[i], memory_order_relaxed) != 0;
    return n;
}

/* Frees the words of holders that died, or that outlived slot_timeout;
   any slot, below the limit or above a limit lowered since. */
static uint32_t reclaim(const struct cbshm_header *h, struct cbshm_slot *sl, uint64_t now)
{
    uint64_t timeout_ms =
        atomic_load_explicit(&sl->cfg.slot_timeout_ns, memory_order_relaxed) / 1000000u;
    uint64_t now_ms = now / 1000000u;
    uint32_t freed = 0, dead = 0, alive = 0;

    for (int i = 0; i < CBSHM_BULKHEAD_MAX; i++) {
        uint64_t w = atomic_load_explicit(&sl->bulk_slots[i], memory_order_relaxed);
        uint32_t pid = CBSHM_STAMP_PID(w);
        bool expired, gone;

        if (w == 0)
            continue;
        /* A stamp from after `now` was taken after this scan began. */
        expired = CBSHM_STAMP_MS(w) + timeout_ms <= now_ms;
        /* One kill(2) per holder: most slots are held by a few processes. */
        gone = !expired && pid != alive && (pid == dead || !cbshm__pid_alive(h, pid));
        if (!expired && !gone) {
            alive = pid;
            continue;
        }
        if (gone)
            dead = pid;
        if (atomic_compare_exchange_strong_explicit(&sl->bulk_slots[i], &w, 0, memory_order_seq_cst,
                                                    memory_order_relaxed))
            freed++;
    }
    if (freed != 0) {
        atomic_fetch_add_explicit(&sl->bulk.reclaimed, freed, memory_order_relaxed);
        /* Somebody may sleep for one of them: woken as by a give-back. */
        uint32_t wk = atomic_load_explicit(&sl->bulk.wake, memory_order_seq_cst);
        if (wk & 1u)
            cbshm__bulk_wake(sl, wk);
    }
    return freed;
}

static inline bool take_at(struct cbshm_slot *sl, uint32_t i, uint64_t word, memory_order order,
                           struct cbshm_ticket *t)
{
    uint64_t w = atomic_load_explicit(&sl->bulk_slots[i], order);

    if (w != 0 || !atomic_compare_exchange_strong_explicit(
                      &sl->bulk_slots[i], &w, word, memory_order_seq_cst, memory_order_relaxed))
        return false;
    t->bulk_slot = i;
    t->bulk_word = word;
    t->flags |= CBSHM_T_SLOT;
    return true;
}

static bool take_in(struct cbshm_slot *sl, uint32_t from, uint32_t to, uint64_t word,
                    memory_order order, struct cbshm_ticket *t)
{
    for (uint32_t i = from; i < to; i++)
        if (take_at(sl, i, word, order, t))
            return true;
    return false;
}

/*
 * A call took slot t->bulk_slot below lim, but slots up to high may still
 * be held from a larger limit: true (and the slot given back) when the
 * calls in flight, this one among them, then exceed lim. Two calls that
 * take the last room at once both count after their own take, so at
 * least one sees the other: at worst both give back, never both stay.
 * When none is held above lim any more, high comes down to it.
 */
static __attribute__((noinline, cold)) bool over_limit(struct cbshm_slot *sl, uint32_t lim,
                                                       uint32_t high, struct cbshm_ticket *t)
{
    uint32_t above = 0, held = 0;
    uint64_t w = t->bulk_word;
    /* Read before the slots: lowered below only if unchanged since. */
    uint64_t hw = atomic_load_explicit(&sl->bulk.high, memory_order_seq_cst);

    if (high < CBSHM_HIGH(hw))
        high = CBSHM_HIGH(hw);
    if (high > CBSHM_BULKHEAD_MAX)
        high = CBSHM_BULKHEAD_MAX; /* the segment's word, untrusted */
    for (uint32_t i = lim; i < high; i++)
        above += atomic_load_explicit(&sl->bulk_slots[i], memory_order_seq_cst) != 0;
    if (above == 0) {
        CBSHM_CRASH_POINT("bulkhead.lower_high");
        /* Fails if the limit changed (or high moved) since hw was read: a
           call admitted under a raised limit may hold a slot above. */
        atomic_compare_exchange_strong_explicit(&sl->bulk.high, &hw,
                                                (hw & ~(uint64_t)UINT32_MAX) | lim,
                                                memory_order_seq_cst, memory_order_relaxed);
        return false;
    }
    for (uint32_t i = 0; i < lim; i++)
        held += atomic_load_explicit(&sl->bulk_slots[i], memory_order_seq_cst) != 0;
    if (above + held <= lim)
        return false;
    /* Back as it was: nobody can have waited for this slot, which only
       this call saw free. */
    atomic_compare_exchange_strong_explicit(&sl->bulk_slots[t->bulk_slot], &w, 0,
                                            memory_order_seq_cst, memory_order_relaxed);
    t->flags &= ~CBSHM_T_SLOT;
    return true;
}

/* high up to lim, before a call takes a slot below lim: a slot is never
   held at or above high, not even for the instant between a take and a
   raise after it (a limit lowered then would let calls in uncounted). */
static __attribute__((noinline)) void raise_high(struct cbshm_slot *sl, uint32_t lim)
{
    uint64_t hw = atomic_load_explicit(&sl->bulk.high, memory_order_relaxed);

    CBSHM_CRASH_POINT("bulkhead.raise_high");
    while (CBSHM_HIGH(hw) < lim && !atomic_compare_exchange_weak_explicit(
                                       &sl->bulk.high, &hw, (hw & ~(uint64_t)UINT32_MAX) | lim,
                                       memory_order_seq_cst, memory_order_relaxed))
        ;
}

/* How far to count for a call that took its slot below lim_read, a limit
   lowered since: up to high, or past its own slot where another caller
   brought high down meanwhile (high then moves up past it). */
static uint32_t counted_above(struct cbshm_slot *sl, uint32_t lim_read, struct cbshm_ticket *t)
{
    uint32_t high = CBSHM_HIGH(atomic_load_explicit(&sl->bulk.high, memory_order_seq_cst));

    if (t->bulk_slot >= high)
        raise_high(sl, t->bulk_slot + 1);
    return high > lim_read ? high : lim_read;
}

/* Where this stripe's search starts: its own line, where the limit
   reaches that far; a division only where the line lies past the limit. */
static inline uint32_t first_slot(uint32_t lim)
{
    uint32_t start = 0;

    if (lim > SLOTS_PER_LINE) {
        start = (uint32_t)(cbshm__claim.stripe * SLOTS_PER_LINE);
        if (start >= lim)
            start %= lim;
    }
    return start;
}

/* The whole take: a stripe claimed if this thread holds none here, every
   slot below the limit from this stripe's first (while slots above a
   lowered limit may be held, given back again when the calls in flight
   exceed the limit: over_limit), then, at most every BULK_SCAN_NS, dead
   or timed-out holders taken back and the search once more. */
static __attribute__((noinline)) int take_slow(struct cbshm_view *v, struct cbshm_slot *sl,
                                               struct cbshm_ticket *t, uint64_t now, bool seq_cst)
{
    struct cbshm_header *h = v->shm->hdr;
    memory_order order = seq_cst ? memory_order_seq_cst : memory_order_relaxed;
    uint32_t lim, start, pid;
    uint64_t word, at;

    if (cbshm__claim.shm_id != v->shm_id)
        cbshm__claim_stripe(v->shm);
    /* The live workers again, at most once a second (limit_again). */
    if (atomic_load_explicit(&sl->cfg.concurrency_quota, memory_order_relaxed) != 0)
        cbshm__workers_tick(v->shm, now);
    lim = bulk_limit(h, sl);
    /* The claim's token carries this process's pid: no system call. A
       thread on the shared stripe asks, and from another PID namespace
       (where the claim refused it a stripe) writes no pid: the segment's
       processes would take its slot for a dead one's, or never take it. */
    if (cbshm__claim.stripe != 0)
        pid = (uint32_t)(cbshm__claim.token >> 32);
    else if (!cbshm__pid_ours(h))
        return CBSHM_EPIDNS;
    else
        pid = (uint32_t)getpid();
    word = CBSHM_STAMP(now, pid);
    for (int round = 0; round < 2; round++) {
        uint32_t high = CBSHM_HIGH(atomic_load_explicit(&sl->bulk.high, memory_order_relaxed));
        uint32_t lim_now;
        if (high < lim) {
            raise_high(sl, lim);
            high = lim;
        }
        start = first_slot(lim);
        if (take_in(sl, start, lim, word, order, t) || take_in(sl, 0, start, word, order, t)) {
            /* A limit lowered since it was read (by apply, or the quota's
               as workers leave): this call counts against the new one. */
            if ((lim_now = bulk_limit(h, sl)) < lim) {
                high = counted_above(sl, lim, t);
                lim = lim_now;
            }
            if (high <= lim || !over_limit(sl, lim, high, t))
                return 0;
        }
        at = atomic_load_explicit(&sl->bulk.scan_ns, memory_order_relaxed);
        if (round > 0 || now < at ||
            !atomic_compare_exchange_strong_explicit(&sl->bulk.scan_ns, &at, now + BULK_SCAN_NS,
                                                     memory_order_relaxed, memory_order_relaxed) ||
            reclaim(h, sl, now) == 0)
            break;
    }
    return CBSHM_EFULL_INTERNAL;
}

/* The common take's look at the limit after its slot, out of line where
   it is not set directly: a quota's, which follows the live workers (and
   here they are counted again, at most once a second host-wide: a worker
   killed without a word is counted out by the calls of those left, not
   only after thousands of them), or one lowered since it was read, which
   the call counts against as take_slow does - given back when the calls
   in flight exceed it, and the whole take again. */
static __attribute__((noinline, cold)) int limit_again(struct cbshm_view *v, struct cbshm_slot *sl,
                                                       struct cbshm_ticket *t, uint64_t now,
                                                       bool seq_cst, uint32_t lim_read)
{
    struct cbshm_header *h = v->shm->hdr;
    uint32_t lim, high;

    if (atomic_load_explicit(&sl->cfg.concurrency_quota, memory_order_relaxed) != 0)
        cbshm__workers_tick(v->shm, now);
    if ((lim = bulk_limit(h, sl)) >= lim_read)
        return 0;
    high = counted_above(sl, lim_read, t);
    if (high <= lim || !over_limit(sl, lim, high, t))
        return 0;
    return take_slow(v, sl, t, now, seq_cst);
}

/* The common take - a stripe claimed here, no slot above the limit, and
   this stripe's first slot free, as it mostly is with room: its last call
   gave it back, below high - with no call to save registers for;
   anything else is take_slow's, from the start. */
int cbshm__bulk_take(struct cbshm_view *v, struct cbshm_slot *sl, struct cbshm_ticket *t,
                     uint64_t now, bool seq_cst)
{
    if (__builtin_expect(cbshm__claim.shm_id == v->shm_id && cbshm__claim.stripe != 0, 1)) {
        uint32_t lim = bulk_limit(v->shm->hdr, sl), start = first_slot(lim);
        uint32_t high = CBSHM_HIGH(atomic_load_explicit(&sl->bulk.high, memory_order_relaxed));
        uint64_t word = CBSHM_STAMP(now, (uint32_t)(cbshm__claim.token >> 32));
        CBSHM_CRASH_POINT("bulkhead.fast_take"); /* the limit read, the slot not yet taken */
        if (start < high && high <= lim &&
            take_at(sl, start, word, seq_cst ? memory_order_seq_cst : memory_order_relaxed, t)) {
            /* The limit again, after the take: one read where it is set
               directly and not lowered; the rest out of line. */
            if (__builtin_expect(atomic_load_explicit(&sl->cfg.max_concurrent_calls,
                                                      memory_order_relaxed) >= lim,
                                 1))
                return 0;
            return limit_again(v, sl, t, now, seq_cst, lim);
        }
    }
    return take_slow(v, sl, t, now, seq_cst);
}

void cbshm__bulk_wake(struct cbshm_slot *sl, uint32_t wk)
{
    while (wk & 1u) {
        if (atomic_compare_exchange_weak_explicit(&sl->bulk.wake, &wk, wk + 1, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
            syscall(SYS_futex, &sl->bulk.wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
            break;
        }
    }
}

void cbshm__bulk_sleep(struct cbshm_slot *sl, uint32_t wake, uint64_t ns)
{
    struct timespec ts;

    /* A holder that dies gives nothing back and wakes nobody: wake at
       least once a scan interval to look again for dead holders. */
    if (ns > BULK_SCAN_NS)
        ns = BULK_SCAN_NS;
    ts.tv_sec = (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);

    /* Shared, not FUTEX_PRIVATE: the word is in every worker's mapping.
       EAGAIN (a slot was given back since) and EINTR return at once. */
    syscall(SYS_futex, &sl->bulk.wake, FUTEX_WAIT, wake, &ts, NULL, 0);
}

/* The state change and its event, under the lock; skipped when the lock
   is busy (the next rejection or admission tries again). */
static void bulk_event(struct cbshm *shm, struct cbshm_slot *sl, uint64_t now, unsigned from,
                       unsigned to)
{
    if (cbshm__lock_try(shm) != 0)
        return;
    if (atomic_load_explicit(&sl->bulk.state, memory_order_relaxed) == from &&
        now >= atomic_load_explicit(&sl->bulk.event_ns, memory_order_relaxed) + BULK_EVENT_NS) {
        atomic_store_explicit(&sl->bulk.state, to, memory_order_relaxed);
        atomic_store_explicit(&sl->bulk.event_ns, now, memory_order_relaxed);
        cbshm__event(shm, (uint32_t)(sl - shm->slots), CBSHM_EVENT_BULKHEAD, from, to,
                     CBSHM_CAUSE_BULKHEAD, now);
    }
    cbshm__unlock(shm);
}

void cbshm__bulk_rejected(struct cbshm *shm, struct cbshm_slot *sl, uint64_t now)
{
    atomic_fetch_add_explicit(&sl->bulk.rejections, 1, memory_order_relaxed);
    atomic_store_explicit(&sl->bulk.last_reject_ns, now, memory_order_relaxed);
    if (atomic_load_explicit(&sl->bulk.state, memory_order_relaxed) != CBSHM_BULKHEAD_FULL &&
        now >= atomic_load_explicit(&sl->bulk.event_ns, memory_order_relaxed) + BULK_EVENT_NS)
        bulk_event(shm, sl, now, CBSHM_BULKHEAD_ADMITTING, CBSHM_BULKHEAD_FULL);
}

void cbshm__bulk_admitted(struct cbshm *shm, struct cbshm_slot *sl, uint64_t now)
{
    if (now >=
            atomic_load_explicit(&sl->bulk.last_reject_ns, memory_order_relaxed) + BULK_EVENT_NS &&
        now >= atomic_load_explicit(&sl->bulk.event_ns, memory_order_relaxed) + BULK_EVENT_NS)
        bulk_event(shm, sl, now, CBSHM_BULKHEAD_FULL, CBSHM_BULKHEAD_ADMITTING);
}

/* ---- The worker registry ------------------------------------------------ */

/* The registered workers whose process lives; a dead one's entry is
   freed when `forget` (a read-only view only counts). */
static uint32_t count_live(struct cbshm_header *h, bool forget)
{
    uint32_t n = 0;

    for (int i = 0; i < CBSHM_WORKERS_MAX; i++) {
        uint64_t w = atomic_load_explicit(&h->workers[i], memory_order_relaxed);
        if (w == 0)
            continue;
        if (cbshm__pid_alive(h, CBSHM_STAMP_PID(w)))
            n++;
        else if (forget)
            atomic_compare_exchange_strong_explicit(&h->workers[i], &w, 0, memory_order_relaxed,
                                                    memory_order_relaxed);
    }
    return n;
}

uint32_t cbshm__workers_alive(const struct cbshm *shm)
{
    return count_live(shm->hdr, false);
}

void cbshm__workers_recount(struct cbshm *shm, uint64_t now)
{
    struct cbshm_header *h = shm->hdr;
    /* The changes before the look: a join or leave after it makes a later
       look, whose count wins over this one's. */
    uint32_t changes = (uint32_t)atomic_load_explicit(&h->workers_changes, memory_order_seq_cst);
    uint32_t n = count_live(h, true);
    uint64_t old = atomic_load_explicit(&h->workers_live, memory_order_seq_cst);
    uint64_t mine = (uint64_t)changes << 32 | n;

    do {
        int32_t newer = (int32_t)(changes - (uint32_t)(old >> 32));
        /* Older than what is stored; or as old and no lower (only a death
           tells the same changes apart, and the dead do not come back). */
        if (newer < 0 || (newer == 0 && n >= CBSHM_WORKERS_COUNT(old)))
            break;
        /* More workers raise every quota's limit: say so in each one's
           high first, before any call can read the raised limit
           (layout.h). */
        if (n > CBSHM_WORKERS_COUNT(old))
            for (uint32_t i = 0; i < shm->capacity; i++)
                if (atomic_load_explicit(&shm->slots[i].cfg.concurrency_quota,
                                         memory_order_relaxed))
                    atomic_fetch_add_explicit(&shm->slots[i].bulk.high, CBSHM_HIGH_CHANGED,
                                              memory_order_seq_cst);
    } while (!atomic_compare_exchange_weak_explicit(&h->workers_live, &old, mine,
                                                    memory_order_seq_cst, memory_order_seq_cst));
    atomic_store_explicit(&h->workers_checked_ns, now, memory_order_relaxed);
}

uint64_t cbshm__workers_join(struct cbshm *shm, uint32_t pid, uint64_t now, uint32_t *at)
{
    struct cbshm_header *h = shm->hdr;
    uint64_t word = CBSHM_STAMP(now, pid);

    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < CBSHM_WORKERS_MAX; i++) {
            uint64_t w = 0;
            if (atomic_compare_exchange_strong_explicit(
                    &h->workers[i], &w, word, memory_order_relaxed, memory_order_relaxed)) {
                atomic_fetch_add_explicit(&h->workers_changes, 1, memory_order_seq_cst);
                *at = i;
                cbshm__workers_recount(shm, now);
                return word;
            }
        }
        cbshm__workers_recount(shm, now); /* full: free the dead ones' entries */
    }
    return 0; /* more than CBSHM_WORKERS_MAX live: counted as that many */
}

void cbshm__workers_leave(struct cbshm *shm, uint32_t at, uint64_t word)
{
    if (word == 0 || at >= CBSHM_WORKERS_MAX)
        return;
    if (atomic_compare_exchange_strong_explicit(&shm->hdr->workers[at], &word, 0,
                                                memory_order_relaxed, memory_order_relaxed))
        atomic_fetch_add_explicit(&shm->hdr->workers_changes, 1, memory_order_seq_cst);
    cbshm__workers_recount(shm, cbshm__now());
}

void cbshm__workers_tick(struct cbshm *shm, uint64_t now)
{
    struct cbshm_header *h = shm->hdr;
    uint64_t last = atomic_load_explicit(&h->workers_checked_ns, memory_order_relaxed);

    if (now - last >= WORKERS_EVERY &&
        atomic_compare_exchange_strong_explicit(&h->workers_checked_ns, &last, now,
                                                memory_order_relaxed, memory_order_relaxed))
        cbshm__workers_recount(shm, now);
}
