/* SPDX-License-Identifier: MIT */
/*
 * The window of recent calls, host-wide, without a shared write on the
 * success path.
 *
 * Every outcome is already counted, cumulatively, on its writer's own
 * counter stripe. The window is the difference between the counters now
 * and the counters at the window's start, so all it keeps is a ring of
 * checkpoints: the cumulative counters when each bucket began.
 *
 * Time window (window_duration_ms in window_buckets buckets): a call that
 * finds the clock past window_next_ns rolls the ring over - exactly once,
 * by compare-and-swap, however many processes see the boundary - and
 * writes the checkpoint of the new bucket. The window is then the current
 * bucket and the window_buckets - 1 before it.
 *
 * Count window (the last window_size calls, in buckets of window_size /
 * 10 calls): positions are cumulative calls. Failures and slow calls are
 * the only events that change what the window says besides its length,
 * and they already take a slow path, so only they write checkpoints: the
 * first bad call of each bucket writes the counters as they were just
 * before it. The window starts window_size calls back (at x): the first
 * checkpoint after x gives the failures before x exactly, since no bad
 * call lies between x and it. When x's own bucket has a checkpoint before
 * x, the window starts there instead - it holds up to one bucket more
 * than window_size calls, and its rate is the exact rate of those calls.
 *
 * cbshm__window_trips returns why it trips (CBSHM_CAUSE_FAILURE_RATE or
 * CBSHM_CAUSE_SLOW_RATE, both non-zero), or 0.
 *
 * Quorum: each failure stamps its stripe's last_failure with the time and
 * its process; the failing workers are the distinct processes whose
 * stamps are newer than the window's start (or the run's).
 */
#include <string.h>

#include "internal.h"

void cbshm__sums(const struct cbshm_slot *sl, struct cbshm__sums *out)
{
    uint64_t ok = 0, failed = 0, slow = 0, late = 0, late_failed = 0;

    for (int s = 0; s < CBSHM_STRIPES; s++) {
        const _Atomic uint64_t *c = sl->stripes[s].count;
        ok += atomic_load_explicit(&c[CBSHM_SUCCESS], memory_order_relaxed);
        failed += atomic_load_explicit(&c[CBSHM_FAILURE], memory_order_relaxed);
        slow += atomic_load_explicit(&c[CBSHM_COUNT_SLOW], memory_order_relaxed);
        late += atomic_load_explicit(&c[CBSHM_COUNT_LATE_CALLS], memory_order_relaxed);
        late_failed += atomic_load_explicit(&c[CBSHM_COUNT_LATE_FAILURES], memory_order_relaxed);
    }
    /* Late outcomes are counted as calls (a late counter is bumped after
       its outcome's), but never in a window. */
    out->calls = ok + failed - (late < ok + failed ? late : ok + failed);
    out->failures = failed - (late_failed < failed ? late_failed : failed);
    out->slow = slow;
}

/*
 * Called with the table lock held (or by the lock's repair). The window
 * restarts empty, now, in a new epoch. origin.tag is 0 from the first
 * store to the last, so lock-free readers see either the old window or
 * the new one, and a lock owner that dies in here leaves origin.tag 0,
 * which the repair (cbshm__window_repair) finds and finishes.
 */
void cbshm__window_reset(struct cbshm_slot *sl, uint64_t now)
{
    uint32_t epoch = atomic_load_explicit(&sl->origin.epoch, memory_order_relaxed) + 1;
    struct cbshm__sums cur;

    if (epoch == 0)
        epoch = 1;
    atomic_store_explicit(&sl->origin.tag, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&sl->origin.epoch, epoch, memory_order_relaxed);
    for (int i = 0; i < CBSHM_RING; i++)
        atomic_store_explicit(&sl->ring[i].tag, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->window_last, (uint64_t)(epoch & CBSHM_EPOCH_MASK) << 40,
                          memory_order_relaxed);
    CBSHM_CRASH_POINT("window.reset");
    cbshm__sums(sl, &cur);
    atomic_store_explicit(&sl->origin.calls, (uint32_t)cur.calls, memory_order_relaxed);
    atomic_store_explicit(&sl->origin.failures, (uint32_t)cur.failures, memory_order_relaxed);
    atomic_store_explicit(&sl->origin.slow, (uint32_t)cur.slow, memory_order_relaxed);
    atomic_store_explicit(&sl->origin.ns, now, memory_order_relaxed);
    /* The next call rolls a time window's first bucket. */
    atomic_store_explicit(&sl->window_next_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->origin.tag, epoch, memory_order_release);
}

void cbshm__window_repair(struct cbshm_slot *sl, uint64_t now)
{
    uint32_t tag = atomic_load_explicit(&sl->origin.tag, memory_order_relaxed);

    if (tag == 0 || tag != atomic_load_explicit(&sl->origin.epoch, memory_order_relaxed))
        cbshm__window_reset(sl, now);
}

/* The window's origin and epoch, consistent, or false while a reset runs. */
static bool origin_sums(const struct cbshm_slot *sl, struct cbshm__sums *out, uint64_t *ns,
                        uint32_t *epoch)
{
    uint32_t e = atomic_load_explicit(&sl->origin.tag, memory_order_acquire);

    if (e == 0)
        return false;
    out->calls = atomic_load_explicit(&sl->origin.calls, memory_order_relaxed);
    out->failures = atomic_load_explicit(&sl->origin.failures, memory_order_relaxed);
    out->slow = atomic_load_explicit(&sl->origin.slow, memory_order_relaxed);
    *ns = atomic_load_explicit(&sl->origin.ns, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    *epoch = e;
    return atomic_load_explicit(&sl->origin.tag, memory_order_relaxed) == e;
}

/* The epoch now, as a roller reads it before it claims a bucket; 0: a
   reset runs, roll nothing. */
static uint32_t window_epoch(const struct cbshm_slot *sl)
{
    return atomic_load_explicit(&sl->origin.tag, memory_order_acquire);
}

static uint64_t last_of(uint64_t window_last, uint32_t epoch)
{
    return (window_last >> 40) == (epoch & CBSHM_EPOCH_MASK) ? window_last & CBSHM_BUCKET_MASK
                                                             : UINT64_MAX;
}

static uint64_t bucket_ns(const struct cbshm_slot *sl)
{
    uint64_t d = atomic_load_explicit(&sl->cfg.window_duration_ns, memory_order_relaxed);
    uint32_t b = atomic_load_explicit(&sl->cfg.window_buckets, memory_order_relaxed);

    b = b < 1 ? 1 : b > CBSHM_WINDOW_BUCKETS_MAX ? CBSHM_WINDOW_BUCKETS_MAX : b;
    return d / b > 0 ? d / b : 1;
}

static uint64_t count_bucket_calls(const struct cbshm_slot *sl)
{
    uint32_t n = atomic_load_explicit(&sl->cfg.window_size, memory_order_relaxed);
    uint32_t b = n < CBSHM_COUNT_WINDOW_BUCKETS ? n : CBSHM_COUNT_WINDOW_BUCKETS;

    return b > 0 && n / b > 0 ? n / b : 1;
}

/* Writes the checkpoint of `bucket` in `epoch`. Its caller won the right
   to (see the roll functions), so no other writer of this epoch touches
   this entry; one of an older epoch may, and its entry is not read. */
static void checkpoint(struct cbshm_slot *sl, uint64_t bucket, const struct cbshm__sums *now_sums,
                       uint64_t now, uint32_t epoch)
{
    struct cbshm_checkpoint *c = &sl->ring[bucket % CBSHM_RING];

    atomic_store_explicit(&c->tag, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&c->calls, (uint32_t)now_sums->calls, memory_order_relaxed);
    atomic_store_explicit(&c->failures, (uint32_t)now_sums->failures, memory_order_relaxed);
    atomic_store_explicit(&c->slow, (uint32_t)now_sums->slow, memory_order_relaxed);
    atomic_store_explicit(&c->epoch, epoch, memory_order_relaxed);
    atomic_store_explicit(&c->ns, now, memory_order_relaxed);
    atomic_store_explicit(&c->tag, (uint32_t)(bucket + 1), memory_order_release);
}

/* Successes plus failures, late ones too: at least the window's calls,
   so a bucket this finds old is old. Two counters a stripe. */
static uint64_t calls_at_least(const struct cbshm_slot *sl)
{
    uint64_t calls = 0;

    for (int s = 0; s < CBSHM_STRIPES; s++)
        calls += atomic_load_explicit(&sl->stripes[s].count[CBSHM_SUCCESS], memory_order_relaxed) +
                 atomic_load_explicit(&sl->stripes[s].count[CBSHM_FAILURE], memory_order_relaxed);
    return calls;
}

static void roll_count_at(struct cbshm_slot *sl, uint64_t position, uint64_t now, bool failed,
                          bool slow)
{
    struct cbshm__sums cur;

    uint64_t last =
        last_of(atomic_load_explicit(&sl->window_last, memory_order_relaxed), window_epoch(sl));

    if (last == UINT64_MAX ||
        (position > 0 ? position - 1 : 0) / count_bucket_calls(sl) + 1 <= last)
        return; /* its bucket has its checkpoint, or a reset runs */
    cbshm__sums(sl, &cur);
    cbshm__window_roll_count(sl, &cur, now, failed, slow);
}

void cbshm__window_count_bad(struct cbshm_slot *sl, uint64_t now, bool failed, bool slow)
{
    roll_count_at(sl, calls_at_least(sl), now, failed, slow);
}

void cbshm__window_count_run(struct cbshm_slot *sl, uint32_t run, uint64_t now)
{
    uint64_t width = count_bucket_calls(sl);
    struct cbshm__sums cur;

    if (run <= 1) {
        cbshm__sums(sl, &cur);
        atomic_store_explicit(&sl->run_calls, cur.calls, memory_order_relaxed);
        atomic_store_explicit(&sl->run_failures, cur.failures, memory_order_relaxed);
        atomic_store_explicit(&sl->run_slow, cur.slow, memory_order_relaxed);
    } else {
        /* Every call since the run's first failed: the sums follow. */
        cur.calls = atomic_load_explicit(&sl->run_calls, memory_order_relaxed) + run - 1;
        cur.failures = atomic_load_explicit(&sl->run_failures, memory_order_relaxed) + run - 1;
        cur.slow = atomic_load_explicit(&sl->run_slow, memory_order_relaxed);
    }
    cbshm__window_roll_count(sl, &cur, now, true, false);
    atomic_store_explicit(&sl->run_next,
                          ((cur.calls > 0 ? cur.calls - 1 : 0) / width + 1) * width + 1,
                          memory_order_relaxed);
}

/* A consistent copy of checkpoint i of `epoch`, or false while it is
   empty, being written, or of another epoch. */
static bool read_checkpoint(const struct cbshm_slot *sl, int i, uint32_t epoch, uint32_t *tag,
                            struct cbshm__sums *s, uint64_t *ns)
{
    const struct cbshm_checkpoint *c = &sl->ring[i];
    uint32_t t = atomic_load_explicit(&c->tag, memory_order_acquire), e;

    if (t == 0)
        return false;
    s->calls = atomic_load_explicit(&c->calls, memory_order_relaxed);
    s->failures = atomic_load_explicit(&c->failures, memory_order_relaxed);
    s->slow = atomic_load_explicit(&c->slow, memory_order_relaxed);
    e = atomic_load_explicit(&c->epoch, memory_order_relaxed);
    *ns = atomic_load_explicit(&c->ns, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&c->tag, memory_order_relaxed) != t || e != epoch)
        return false;
    *tag = t;
    return true;
}

/*
 * Time window: the first call to find the clock past window_next_ns moves
 * it on with a compare-and-swap and so alone writes the new bucket's
 * checkpoint - exactly once, however many processes see the boundary.
 */
void cbshm__window_roll_time(struct cbshm_slot *sl, uint64_t now)
{
    uint64_t width = bucket_ns(sl), k = now / width;
    uint32_t epoch = window_epoch(sl);
    uint64_t next = atomic_load_explicit(&sl->window_next_ns, memory_order_relaxed), last;
    struct cbshm__sums cur;

    if (epoch == 0 || now < next ||
        !atomic_compare_exchange_strong_explicit(&sl->window_next_ns, &next, (k + 1) * width,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return; /* a reset runs, not due, or another process rolled it */
    CBSHM_CRASH_POINT("window.time_rolled");
    cbshm__sums(sl, &cur);
    checkpoint(sl, k, &cur, now, epoch);
    /* Newest bucket of this epoch only: after a reset, this fails. */
    last = atomic_load_explicit(&sl->window_last, memory_order_relaxed);
    while (last_of(last, epoch) != UINT64_MAX && last_of(last, epoch) < k + 1 &&
           !atomic_compare_exchange_weak_explicit(
               &sl->window_last, &last, (uint64_t)(epoch & CBSHM_EPOCH_MASK) << 40 | (k + 1),
               memory_order_acq_rel, memory_order_relaxed))
        ;
}

/* Count window: a failure or slow call whose position entered a new
   bucket claims it (compare-and-swap on window_last) and writes, for it,
   the counters just before itself (cur counts it already). */
void cbshm__window_roll_count(struct cbshm_slot *sl, const struct cbshm__sums *cur, uint64_t now,
                              bool failed, bool slow)
{
    uint64_t k = (cur->calls > 0 ? cur->calls - 1 : 0) / count_bucket_calls(sl);
    uint32_t epoch = window_epoch(sl);
    uint64_t last = atomic_load_explicit(&sl->window_last, memory_order_relaxed);
    struct cbshm__sums before = *cur;

    before.calls -= before.calls > 0;
    before.failures -= failed && before.failures > 0;
    before.slow -= slow && before.slow > 0;
    /* Claim the bucket in this epoch; a reset since makes the claim fail. */
    while (epoch != 0 && last_of(last, epoch) != UINT64_MAX && k + 1 > last_of(last, epoch)) {
        if (atomic_compare_exchange_weak_explicit(
                &sl->window_last, &last, (uint64_t)(epoch & CBSHM_EPOCH_MASK) << 40 | (k + 1),
                memory_order_acq_rel, memory_order_relaxed)) {
            checkpoint(sl, k, &before, now, epoch);
            return;
        }
    }
}

/* The checkpoint of bucket k of `epoch`, if the ring still holds it. */
static bool bucket_checkpoint(const struct cbshm_slot *sl, uint64_t k, uint32_t epoch,
                              struct cbshm__sums *s, uint64_t *ns)
{
    uint32_t tag;

    return read_checkpoint(sl, (int)(k % CBSHM_RING), epoch, &tag, s, ns) &&
           tag == (uint32_t)(k + 1);
}

static void window_time(const struct cbshm_slot *sl, uint64_t now, const struct cbshm__sums *cur,
                        struct cbshm__window *w)
{
    uint64_t width = bucket_ns(sl), k = now / width;
    uint32_t buckets = atomic_load_explicit(&sl->cfg.window_buckets, memory_order_relaxed), epoch;
    uint64_t kmin, ns;
    struct cbshm__sums base;

    if (!origin_sums(sl, &base, &ns, &epoch)) {
        memset(w, 0, sizeof *w); /* a reset runs: nothing to go on yet */
        w->start_ns = now;
        return;
    }
    /* Settings read from the segment are untrusted: bound the walk. */
    buckets = buckets < 1                          ? 1
              : buckets > CBSHM_WINDOW_BUCKETS_MAX ? CBSHM_WINDOW_BUCKETS_MAX
                                                   : buckets;
    kmin = k + 1 >= buckets ? k + 1 - buckets : 0;

    /* The oldest checkpoint still inside the window: buckets without a
       call have none, and changed nothing, so the next one serves. */
    for (uint64_t j = kmin; j <= k; j++) {
        if (bucket_checkpoint(sl, j, epoch, &base, &w->start_ns)) {
            w->calls = (uint32_t)((uint32_t)cur->calls - (uint32_t)base.calls);
            w->failures = (uint32_t)((uint32_t)cur->failures - (uint32_t)base.failures);
            w->slow = (uint32_t)((uint32_t)cur->slow - (uint32_t)base.slow);
            return;
        }
    }
    memset(w, 0, sizeof *w); /* no call in the window */
    w->start_ns = now;
}

static void window_count(const struct cbshm_slot *sl, uint64_t now, const struct cbshm__sums *cur,
                         struct cbshm__window *w)
{
    uint32_t n = atomic_load_explicit(&sl->cfg.window_size, memory_order_relaxed);
    uint64_t width = count_bucket_calls(sl), x, kx, kc;
    struct cbshm__sums origin, c;
    uint32_t epoch;
    uint64_t ns;

    if (!origin_sums(sl, &origin, &w->start_ns, &epoch)) {
        w->start_ns = now; /* a reset runs: an empty window */
        return;
    }
    /* The period holds no more than n calls: the window is all of it. */
    if ((uint32_t)cur->calls - (uint32_t)origin.calls <= n || cur->calls < n) {
        w->calls = (uint32_t)((uint32_t)cur->calls - (uint32_t)origin.calls);
        w->failures = (uint32_t)((uint32_t)cur->failures - (uint32_t)origin.failures);
        w->slow = (uint32_t)((uint32_t)cur->slow - (uint32_t)origin.slow);
        return;
    }
    x = cur->calls - n;
    kx = x / width;
    kc = cur->calls / width;
    /* n / width + 1 buckets lie between x and now - 20 at the most (width
       is n / 10 rounded down: 19 calls are 19 buckets of 1) - which the
       ring (CBSHM_RING entries) holds without wrapping. */
    _Static_assert(CBSHM_RING > 2 * CBSHM_COUNT_WINDOW_BUCKETS + 1, "the ring holds a window");
    for (uint64_t j = kx; j <= kc && j <= kx + 2 * CBSHM_COUNT_WINDOW_BUCKETS + 1; j++) {
        uint32_t back;

        if (!bucket_checkpoint(sl, j, epoch, &c, &ns))
            continue;
        back = (uint32_t)cur->calls - (uint32_t)c.calls;
        /* A checkpoint of an older period (before origin) cannot be: reset
           empties the ring. One at or before x starts the window early. */
        w->calls = back >= n ? back : n;
        w->failures = (uint32_t)((uint32_t)cur->failures - (uint32_t)c.failures);
        w->slow = (uint32_t)((uint32_t)cur->slow - (uint32_t)c.slow);
        w->start_ns = ns;
        break;
    }
    if (w->calls == 0) {
        /* No bad call since x. */
        w->calls = n;
        w->start_ns = now;
    }
    /* Counters summed while others record may disagree by a call or two:
       a window never holds more bad calls than calls. */
    if (w->failures > w->calls)
        w->failures = w->calls;
    if (w->slow > w->calls)
        w->slow = w->calls;
}

void cbshm__window_eval(const struct cbshm_slot *sl, uint64_t now, const struct cbshm__sums *cur,
                        struct cbshm__window *w)
{
    memset(w, 0, sizeof *w);
    if (atomic_load_explicit(&sl->cfg.window_type, memory_order_relaxed) == CBSHM_WINDOW_TIME)
        window_time(sl, now, cur, w);
    else
        window_count(sl, now, cur, w);
}

uint64_t cbshm__quorum_since(const struct cbshm_slot *sl, uint64_t window_start_ns)
{
    if (!(atomic_load_explicit(&sl->hot_flags, memory_order_acquire) & CBSHM_HOT_RATE) &&
        cbshm__run_of(sl, atomic_load_explicit(&sl->ctl, memory_order_acquire)) != 0)
        return atomic_load_explicit(&sl->run_start_ns, memory_order_relaxed);
    return window_start_ns;
}

uint32_t cbshm__failing_workers(const struct cbshm_header *h, const struct cbshm_slot *sl,
                                uint64_t since_ns)
{
    uint32_t pids[CBSHM_STRIPES] = {0}, n = 0;

    (void)h;
    /* Distinct processes, by the pid each stamp carries: the threads of one
       process are one worker whichever stripes they wrote, and a stripe
       another process took over keeps its failer's pid. */
    for (int s = 0; s < CBSHM_STRIPES; s++) {
        uint64_t st = atomic_load_explicit(&sl->stripes[s].last_failure, memory_order_relaxed);
        uint32_t pid = CBSHM_STAMP_PID(st);
        bool seen = false;

        if (st == 0 || pid == 0 || CBSHM_STAMP_MS(st) < since_ns / 1000000u)
            continue;
        for (uint32_t i = 0; i < n; i++)
            seen = seen || pids[i] == pid;
        if (!seen)
            pids[n++] = pid;
    }
    return n;
}

int cbshm__window_trips(const struct cbshm *shm, const struct cbshm_slot *sl,
                        const struct cbshm__window *w, bool check_failures)
{
    uint32_t min_calls = atomic_load_explicit(&sl->cfg.minimum_calls, memory_order_relaxed);
    uint32_t quorum = atomic_load_explicit(&sl->cfg.min_failing_workers, memory_order_relaxed);
    uint32_t hot = atomic_load_explicit(&sl->hot_flags, memory_order_acquire);
    int cause = 0;

    if (w->calls < min_calls || w->calls == 0)
        return 0;
    if ((hot & CBSHM_HOT_SLOW) &&
        w->slow * 100 >=
            (uint64_t)atomic_load_explicit(&sl->cfg.slow_call_rate, memory_order_relaxed) *
                w->calls)
        cause = CBSHM_CAUSE_SLOW_RATE;
    if (check_failures && (hot & CBSHM_HOT_RATE) &&
        w->failures * 100 >=
            (uint64_t)atomic_load_explicit(&sl->cfg.failure_rate, memory_order_relaxed) * w->calls)
        cause = CBSHM_CAUSE_FAILURE_RATE;
    if (cause != 0 && quorum > 1 && cbshm__failing_workers(shm->hdr, sl, w->start_ns) < quorum)
        cause = 0;
    return cause;
}
