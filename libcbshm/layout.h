/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory format. Everything here lives in the segment and is
 * read by processes that may run another build of the library, so it uses
 * fixed-width integers and offsets, never pointers, and pins its sizes
 * with static assertions. The header's ABI fingerprint is computed from
 * these sizes: change a struct and old and new libraries refuse each
 * other's segments instead of misreading them.
 *
 *   [ header | slot 0 | ... | slot capacity-1 | name index | event ring ]
 *
 * A slot is one breaker. Its first cache line is read on every call and
 * written only on transitions and config changes; failure bookkeeping has
 * its own line; the other settings, the probe leases and the window's
 * checkpoint ring have theirs; outcome counters are striped over
 * per-writer lines so the success path never writes a line another
 * process writes.
 *
 * Counter stripes. Stripe 0 is shared: any thread may add to it, with an
 * atomic read-modify-write. Stripes 1..CBSHM_STRIPES-1 are owned: a thread
 * claims one in the header's stripe_owner table (owner pid << 32 | thread
 * sequence) and is then the only writer of that stripe in every breaker,
 * so it adds with a plain load and store - no lock prefix. A claim is
 * released when the thread exits or the segment is closed, and taken back
 * from a dead process. Stripes are never zeroed while in use: a reset or
 * a new breaker records the current sums as the slot's base instead.
 *
 * Memory ordering: every shared word, who stores it and how, who loads it
 * and how, and the store each acquire pairs with. Relaxed loads are only
 * of words whose value alone is the message (a counter, a hint re-checked
 * under the lock) or that are read after an acquire that pairs with the
 * release publishing them.
 *
 *   ctl (line 0)            stored release by every transition and mode
 *                           change, under the lock, after the words they
 *                           set (open_until_ns, leases, counts, window).
 *                           Loaded acquire by allow (hot path), record_slow,
 *                           slot_of_view, snapshot: pairs with that store,
 *                           so open_until_ns and the rest read after it are
 *                           at least as new as the state.
 *   hot_flags (line 0)      stored release last by cbshm__slot_store_settings
 *                           (apply), after failure_threshold, slow_call_ns
 *                           and every cfg word. Loaded acquire by admit (hot
 *                           path), record_slow, time_window_success, the
 *                           window's trips and quorum: pairs with that store,
 *                           so the settings a flag sends a call to read are
 *                           the ones stored with it (on x86 an acquire load
 *                           is the plain load it was; ARM64 needs it).
 *   failure_threshold,      stored relaxed before hot_flags' release; loaded
 *   slow_call_ns, cfg.*     relaxed after hot_flags' acquire (or under the
 *                           lock).
 *   open_until_ns           stored relaxed before ctl's release; loaded
 *                           relaxed after ctl's acquire.
 *   in_use, name, settings  stored under the lock, in_use release last
 *   of a slot               (table_add); loaded acquire by the readers that
 *                           walk slots without the lock.
 *   lease.word              stored and loaded under the lock (take, decide,
 *                           reclaim, clear); lease_maybe_free's relaxed load
 *                           is a hint, decided again under the lock.
 *   checkpoint (ring,       seqlock: tag 0 relaxed, release fence, fields
 *   origin)                 relaxed, tag release last. Readers: tag acquire,
 *                           fields relaxed, acquire fence, tag again (and
 *                           the epoch, for the ring).
 *   window_next_ns,         compare-and-swap acq_rel: the winner alone
 *   window_last             writes the bucket; relaxed loads are re-checked
 *                           by the CAS.
 *   stripe counts           relaxed adds and loads: counters; the window's
 *                           sums tolerate a call or two in flight.
 *   run (failure run),      relaxed: a trip is decided again under the lock
 *   run_*                   (trip() re-reads them there).
 *   magic (header)          stored release last at creation; loaded acquire
 *                           by every attach (the header published last).
 *   retired (header)        stored release by destroy; loaded acquire where
 *                           a handle moves to the successor.
 */
#ifndef CBSHM_LAYOUT_H
#define CBSHM_LAYOUT_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cbshm.h"

#define CBSHM_MAGIC          0x3130544d48534243ULL /* "CBSHMT01" little-endian */
#define CBSHM_LAYOUT_VERSION 4u
#define CBSHM_LINE           64
#define CBSHM_STRIPES        16 /* counter lines per breaker; a power of two */
#define CBSHM_HEADER_BYTES   4096
#define CBSHM_WORKERS_MAX    256 /* processes concurrency_quota counts */

/* Only always-lock-free atomics may live in the segment (DESIGN rule 14). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert((CBSHM_STRIPES & (CBSHM_STRIPES - 1)) == 0, "stripes: power of two");

/*
 * The control word, one atomic 64-bit value read on every call:
 *   bits  0..1  state (enum cbshm_state)
 *   bits  2..3  mode (enum cbshm_mode)
 *   bits  4..31 epoch, bumped on every state or mode change
 *   bits 32..63 generation, bumped when the slot is created or deleted
 * A ticket remembers the word it was admitted under; an outcome only
 * drives a transition when the word has not changed since.
 */
#define CBSHM_CTL_STATE(c) ((unsigned)((c)&3u))
#define CBSHM_CTL_MODE(c)  ((unsigned)(((c) >> 2) & 3u))
#define CBSHM_CTL_EPOCH(c) ((uint32_t)(((c) >> 4) & 0x0fffffffu))
#define CBSHM_CTL_GEN(c)   ((uint32_t)((c) >> 32))
#define CBSHM_CTL_MAKE(gen, epoch, mode, state)                         \
    (((uint64_t)(gen) << 32) | ((uint64_t)((epoch)&0x0fffffffu) << 4) | \
     ((uint64_t)((mode)&3u) << 2) | (uint64_t)((state)&3u))

/* Outcome counters of one writer (or, stripe 0, of many); one line.
   count[] is indexed by enum cbshm_outcome, then rejected, then slow,
   then the late calls and late failures among the successes and failures:
   outcomes of calls admitted in an earlier state period (a call in flight
   across a trip, or across a mode change), which the window leaves out.
   last_failure says when, and which process, last failed writing this
   stripe (quorum): CBSHM_STAMP(ms, pid). A stripe outlives its owners
   (threads exit, processes die, another takes it over), so the stamp
   carries its own pid rather than trusting the owner word. */
#define CBSHM_COUNT_REJECTED      3
#define CBSHM_COUNT_SLOW          4
#define CBSHM_COUNT_LATE_CALLS    5
#define CBSHM_COUNT_LATE_FAILURES 6
#define CBSHM_COUNTS              7
struct cbshm_stripe {
    _Atomic uint64_t count[CBSHM_COUNTS];
    _Atomic uint64_t last_failure;
};
#define CBSHM_STAMP(ns, pid) (((ns) / 1000000u) << 22 | ((uint64_t)(pid)&0x3fffffu))
#define CBSHM_STAMP_MS(s)    ((s) >> 22)
#define CBSHM_STAMP_PID(s)   ((uint32_t)((s)&0x3fffffu)) /* pids are below 2^22 */
_Static_assert(CBSHM_SUCCESS == 0 && CBSHM_FAILURE == 1 && CBSHM_IGNORED == 2,
               "outcomes index the counters");

/*
 * A half-open probe lease. word = owner pid << 32 | sequence while its
 * probe runs, CBSHM_LEASE_SPENT once the probe succeeded (the lease is
 * used up for this half-open phase), 0 when free. Taken, decided on,
 * reclaimed from a dead owner and cleared, all under the table lock: a
 * lease is given back only with the decision it feeds, so a half-open
 * phase admits at most half_open_max_calls probes whose owners live.
 */
#define CBSHM_LEASE_SPENT   UINT64_MAX       /* its probe succeeded */
#define CBSHM_LEASE_FAILED  (UINT64_MAX - 1) /* rate decision: its probe failed */
#define CBSHM_LEASE_DONE(w) ((w) >= CBSHM_LEASE_FAILED)
struct cbshm_lease {
    _Atomic uint64_t word;
    _Atomic uint64_t deadline_ns;
};

/* The failure run word (struct cbshm_slot.run). */
#define CBSHM_RUN_EPOCH(w)       ((uint32_t)((w) >> 32))
#define CBSHM_RUN_COUNT(w)       ((uint32_t)(w))
#define CBSHM_RUN_MAKE(epoch, n) ((uint64_t)(epoch) << 32 | (uint32_t)(n))

/* Line 0 flags: which slow paths a call must take. */
#define CBSHM_HOT_RATE   0x1u  /* rate policy: failures evaluate the window */
#define CBSHM_HOT_TIME   0x2u  /* time window: calls roll its buckets over */
#define CBSHM_HOT_SLOW   0x4u  /* slow-call detection: calls are timed */
#define CBSHM_HOT_QUORUM 0x8u  /* min_failing_workers > 1: failures are stamped */
#define CBSHM_HOT_BULK   0x10u /* a bulkhead: admission takes a slot (bulkhead.c) */

/*
 * The bulkhead of a breaker (bulkhead.c): CBSHM_BULKHEAD_MAX slot words,
 * each 0 when free or CBSHM_STAMP(admitted, owner pid) while a call holds
 * it. A call takes a free word below the limit with one compare-and-swap
 * and gives it back with another, so the word is both the count and the
 * owner, and no instruction at which a process can die leaves a slot
 * counted without an owner, or owned without being counted. Whoever finds
 * every slot taken may free a word whose owner is dead, or which is older
 * than slot_timeout, with a compare-and-swap from the word it read: a
 * late record of that call then finds another word and frees nothing.
 *
 * A limit lowered (by apply, or a quota's as workers leave) leaves calls
 * in flight in slots at or above it: `high` bounds them. While it is above
 * the limit, a call that got a slot below the limit counts every slot
 * held and gives its own back when they exceed the limit, so the count
 * only falls until it is under the new limit and then calls get in again
 * (not only once every slot above it is free: one long call there would
 * shut the breaker). No call in flight is cut off and none is lost.
 *
 * wake is the futex callers with max_wait sleep on: bit 0 says one sleeps,
 * and a call that frees a slot while it is set adds one (clearing it,
 * bumping the count above) and wakes them all.
 */
struct cbshm_bulkhead {
    _Atomic uint32_t wake;
    _Atomic uint32_t state;          /* enum cbshm_bulkhead_state, for its events */
    _Atomic uint64_t last_reject_ns; /* the latest rejection */
    _Atomic uint64_t event_ns;       /* the latest bulkhead event */
    _Atomic uint64_t scan_ns;        /* no reclaim scan before then, host-wide */
    _Atomic uint64_t rejections;     /* calls it rejected */
    _Atomic uint64_t reclaimed;      /* slots taken back */
    _Atomic uint64_t waits;          /* calls that waited and got in */
    /* Changes << 32 | bound: no slot at or above the bound is held. The
       changes count every limit change (apply's, a quota's as workers
       join) so that a caller that found nothing held above a lowered limit
       brings the bound down only if the limit was not raised since: a call
       admitted under the raised one may hold a slot above. */
    _Atomic uint64_t high;
};
#define CBSHM_HIGH(w)          ((uint32_t)(w))
#define CBSHM_WORKERS_COUNT(w) ((uint32_t)(w)) /* of header.workers_live */
#define CBSHM_HIGH_CHANGED     (1ull << 32)

/*
 * One checkpoint of the window ring: the breaker's cumulative counters
 * (truncated to 32 bits; differences stay exact while a window holds
 * fewer than 2^32 calls) when bucket `tag` began, in window epoch
 * `epoch`. Written by the one roller that claimed the bucket, tag last
 * (0 while it writes); read without a lock, tag checked before and after.
 *
 * The window epoch is bumped by every window reset (a close, cbshm_reset,
 * a return to normal mode, a new window shape); origin.tag holds it, and
 * is 0 while a reset runs. A roller that read an older epoch cannot claim
 * a bucket of the new one (window_last carries the epoch too), and a
 * checkpoint of an older epoch is not read: a roller stopped across a
 * reset leaves nothing the new window uses.
 */
struct cbshm_checkpoint {
    _Atomic uint32_t tag; /* bucket number + 1 (origin: the epoch); 0: being written */
    _Atomic uint32_t calls;
    _Atomic uint32_t failures;
    _Atomic uint32_t slow;
    _Atomic uint32_t epoch; /* the window epoch it belongs to */
    uint32_t reserved;
    _Atomic uint64_t ns;
};
/* window_last = (epoch & CBSHM_EPOCH_MASK) << 40 | newest bucket + 1. */
#define CBSHM_EPOCH_MASK  0xffffffu
#define CBSHM_BUCKET_MASK ((1ull << 40) - 1)
#define CBSHM_RING        (CBSHM_WINDOW_BUCKETS_MAX + 2)

/* The settings the hot path does not read. Written by apply under the
   table lock; read with relaxed loads. */
struct cbshm_slot_settings {
    _Atomic uint32_t success_threshold;
    _Atomic uint32_t half_open_max_calls;
    _Atomic uint32_t policy;
    _Atomic uint32_t window_type;
    _Atomic uint32_t window_size;
    _Atomic uint32_t window_buckets;
    _Atomic uint32_t minimum_calls;
    _Atomic uint32_t failure_rate;
    _Atomic uint32_t slow_call_rate;
    _Atomic uint32_t backoff_multiplier;
    _Atomic uint32_t open_timeout_jitter;
    _Atomic uint32_t min_failing_workers;
    _Atomic uint64_t open_timeout_ns;
    _Atomic uint64_t probe_timeout_ns;
    _Atomic uint64_t window_duration_ns;
    _Atomic uint64_t open_timeout_max_ns;
    _Atomic uint64_t slow_call_ns_cfg; /* as configured; line 0 holds the live copy */
    _Atomic uint32_t half_open_decision;
    _Atomic uint32_t half_open_failure_rate;
    _Atomic uint32_t max_concurrent_calls;
    _Atomic uint32_t concurrency_quota;
    _Atomic uint64_t max_wait_ns;
    _Atomic uint64_t slot_timeout_ns;
    _Atomic uint32_t fleet_open_hosts;
    uint32_t reserved;
};

struct cbshm_slot {
    /* Line 0: read on every call; written on transitions and by apply. */
    _Atomic uint64_t ctl;
    _Atomic uint64_t open_until_ns;
    _Atomic uint64_t window_next_ns; /* time window: when the next bucket begins */
    _Atomic uint64_t slow_call_ns;   /* slow-call threshold, when CBSHM_HOT_SLOW */
    _Atomic uint32_t failure_threshold;
    _Atomic uint32_t hot_flags;     /* CBSHM_HOT_* */
    _Atomic uint32_t in_use;        /* 0 free, 1 a live breaker */
    uint32_t name_len;              /* written once, with the name (line 2) */
    _Atomic uint64_t mode_until_ns; /* a timed mode ends then; 0: it does not */
    /* enum cbshm_event_cause of the mode's last change: an operator's
       mode is told from the fleet's (fleet.c). Stored with the mode. */
    _Atomic uint32_t mode_cause;
    uint32_t reserved1;

    /* Line 1: failure path and transitions. A failure writes this line
       anyway, so what it reads on every failure lives here too. */
    /* The failure run, stamped with the state period (control-word epoch)
       it counts in: epoch << 32 | failures in a row. A failure of another
       period cannot add to it, nor a success of another period end it. */
    _Atomic uint64_t run;
    _Atomic uint32_t half_open_successes;
    _Atomic uint32_t lease_seq;
    _Atomic uint64_t trips;
    _Atomic uint64_t last_transition_ns;
    _Atomic uint64_t current_open_ns; /* the open period after backoff */
    _Atomic uint64_t run_start_ns;    /* when the current failure run began */
    /* Consecutive policy: the window's calls just after the failure run's
       first failure (every later call of the run failed, so its position
       follows), and the position from which a failure of the run starts a
       count-window bucket the window has not seen. */
    _Atomic uint64_t run_calls, run_next;

    /* Line 2: identity; written under the table lock while not in use. */
    char name[CBSHM_NAME_MAX + 1];

    /* Line 3: what the stripes held at the last reset or creation. Under
       the table lock. */
    _Atomic uint64_t base[CBSHM_COUNTS];
    uint64_t rng; /* jitter; under the table lock */

    /* Line 4: the window's origin (creation, reset, a new window shape)
       and its newest bucket. Under the table lock. */
    struct cbshm_checkpoint origin;
    _Atomic uint64_t window_last;            /* epoch << 40 | newest bucket + 1 (0: none) */
    _Atomic uint64_t run_failures, run_slow; /* as run_calls (line 1) */
    _Atomic uint64_t probes_reclaimed;

    /* Lines 5..6: the other settings. */
    struct cbshm_slot_settings cfg;

    /* Lines 7..10: probe leases. */
    struct cbshm_lease leases[CBSHM_PROBES_MAX];

    /* The window ring. */
    struct cbshm_checkpoint ring[CBSHM_RING];

    /* The bulkhead: its line, then its slots (bulkhead.c). */
    _Alignas(CBSHM_LINE) struct cbshm_bulkhead bulk;
    _Atomic uint64_t bulk_slots[CBSHM_BULKHEAD_MAX];

    /* Outcome counters, line-aligned. */
    _Alignas(CBSHM_LINE) struct cbshm_stripe stripes[CBSHM_STRIPES];
};

/*
 * One entry of the event ring: a state transition, mode change or reset.
 * Written under the table lock - seq last, as n + 1 for event n - so
 * readers copy it without the lock and keep the copy only if seq is the
 * same before and after.
 */
#define CBSHM_EVENTS 1024
struct cbshm_event_rec {
    _Atomic uint64_t seq;
    _Atomic uint64_t time_ns;
    _Atomic uint32_t pid;
    _Atomic uint32_t slot;
    _Atomic uint32_t what; /* kind | from << 8 | to << 16 | cause << 24 */
    uint32_t reserved0;
    /* The breaker's name, eight bytes a word: every field is an atomic,
       so the lock-free copy is a race in no reader's eyes (C11, tsan). */
    _Atomic uint64_t name[(CBSHM_NAME_MAX + 1) / 8];
    /* CLOCK_REALTIME read with time_ns; 0 in a record written by a
       library from before this word was used (it was reserved, zero). */
    _Atomic uint64_t wall_ns;
    uint64_t reserved1[3];
};
_Static_assert(sizeof(struct cbshm_event_rec) == 2 * CBSHM_LINE, "event: two lines");

/* What the table lock's owner was doing, so a successor can repair it. */
enum cbshm_op {
    CBSHM_OP_NONE = 0,
    CBSHM_OP_CREATE_SLOT = 1, /* op_slot being filled in */
    CBSHM_OP_DELETE_SLOT = 2, /* op_slot being cleared */
    CBSHM_OP_REINDEX = 3,     /* name index being rebuilt */
    CBSHM_OP_TRANSITION = 4,  /* op_slot changing state, mode or counters */
    CBSHM_OP_FLEET = 5,       /* a fleet command: header.fleet.pending */
};

/*
 * The fleet's command log (fleet.c). A fleet command is applied exactly
 * once per segment: the id of the last command consumed is stored under
 * the table lock with the change it made. While the change is made, the
 * header's op is CBSHM_OP_FLEET and `pending` describes it, so whoever
 * takes the lock after a holder died in the middle finishes it - change,
 * event and id - and the id and the change are never one without the
 * other. The status words are the agent's alone, stored relaxed.
 */
struct cbshm_fleet_pending {
    uint64_t ms, seq;    /* the command's stream id */
    uint32_t op;         /* enum cbshm_fleet_op */
    uint32_t slot;       /* the breaker's slot, when rc is 0 */
    uint32_t generation; /* and its generation then */
    uint32_t mode;       /* CBSHM_FLEET_MODE: the mode it sets */
    uint64_t until_ns;   /* and until when; 0: until changed */
    uint64_t events_seq; /* events_seq before the change: was its event written? */
    uint32_t from;       /* the mode before (a mode change), the state before (a reset) */
    int32_t rc;          /* the result stored with the id */
};
struct cbshm_fleet_log {
    _Atomic uint64_t applied_ms, applied_seq; /* the last id consumed; under the lock */
    _Atomic int32_t applied_rc;
    uint32_t reserved0;
    struct cbshm_fleet_pending pending; /* under the lock */
    /* The agent's status: struct cbshm_fleet_status. */
    _Atomic uint32_t agent_pid;
    _Atomic uint32_t connected;
    _Atomic uint64_t contact_wall_ns;
    _Atomic uint64_t heartbeat_wall_ns;
    _Atomic uint64_t commands_applied;
    _Atomic uint64_t commands_failed;
    _Atomic uint64_t lag_ms;
    uint64_t reserved[4];
};

struct cbshm_header {
    /* Written once by the creator; magic last, with release order. */
    _Atomic uint64_t magic;
    uint32_t layout_version;
    uint32_t header_bytes;
    uint64_t abi_fingerprint;
    uint64_t segment_bytes;
    uint32_t capacity;
    uint32_t slot_bytes;
    uint64_t slots_offset;
    uint64_t index_offset;
    uint32_t index_buckets; /* power of two >= 2 * capacity */
    uint32_t creator_pid;
    uint64_t created_ns;
    uint32_t mode;
    uint32_t reserved0;
    uint64_t pidns_inode; /* creator's PID namespace, 0 if unknown */
    _Atomic uint32_t retired;
    uint32_t events_count;       /* entries in the event ring */
    uint64_t events_offset;      /* the ring, after the name index */
    _Atomic uint64_t events_seq; /* events ever written; under the table lock */
    /* Odd while a process holds the table lock (or died holding it, until
       the next holder repairs): read-only views, which cannot take the
       lock, copy between two equal even values. */
    _Atomic uint64_t change_seq;
    uint64_t reserved2[2]; /* room for later regions */

    /* Line-aligned: who owns counter stripes 1..CBSHM_STRIPES-1. */
    _Alignas(CBSHM_LINE) _Atomic uint64_t stripe_owner[CBSHM_STRIPES];

    /* Line-aligned: the table lock and what it protects. */
    _Alignas(CBSHM_LINE) pthread_mutex_t lock;
    _Atomic uint32_t breakers; /* slots in use; read without the lock by cbshm_info */
    uint32_t op;               /* enum cbshm_op */
    uint32_t op_slot;
    uint32_t reserved3;
    _Atomic uint64_t lock_repairs;

    /* Line-aligned: the processes that call through the segment, for
       concurrency_quota (bulkhead.c): CBSHM_STAMP(registered, pid), 0
       when free. workers_live is their count at the last look, stamped
       with workers_changes as that look began (changes << 32 | count):
       of two looks the later one's count is kept, whichever stores last.
       workers_changes counts joins and leaves. */
    _Alignas(CBSHM_LINE) _Atomic uint64_t workers_live;
    _Atomic uint64_t workers_changes;
    _Atomic uint64_t workers_checked_ns; /* the last look, host-wide */
    _Atomic uint64_t workers[CBSHM_WORKERS_MAX];

    /* Line-aligned: the fleet agent's (fleet.c). */
    _Alignas(CBSHM_LINE) struct cbshm_fleet_log fleet;
};

_Static_assert(sizeof(struct cbshm_stripe) == CBSHM_LINE, "stripe is one line");
_Static_assert(sizeof(struct cbshm_lease) == 16, "lease size");
_Static_assert(offsetof(struct cbshm_slot, run) == CBSHM_LINE, "line 1");
_Static_assert(offsetof(struct cbshm_slot, name) == 2 * CBSHM_LINE, "line 2");
_Static_assert(offsetof(struct cbshm_slot, base) == 3 * CBSHM_LINE, "line 3");
_Static_assert(offsetof(struct cbshm_slot, origin) == 4 * CBSHM_LINE, "line 4");
_Static_assert(offsetof(struct cbshm_slot, cfg) == 5 * CBSHM_LINE, "line 5");
_Static_assert(sizeof(struct cbshm_slot_settings) == 2 * CBSHM_LINE, "settings: two lines");
_Static_assert(offsetof(struct cbshm_slot, leases) == 7 * CBSHM_LINE, "line 7");
_Static_assert(sizeof(struct cbshm_checkpoint) == 32, "checkpoint size");
_Static_assert(offsetof(struct cbshm_slot, stripes) % CBSHM_LINE == 0, "stripes aligned");
_Static_assert(sizeof(struct cbshm_slot) % CBSHM_LINE == 0, "slot is whole lines");
_Static_assert(sizeof(struct cbshm_bulkhead) == CBSHM_LINE, "bulkhead: one line");
_Static_assert(sizeof(struct cbshm_slot) <= 8192, "a breaker costs at most 8 KiB");
_Static_assert(sizeof(struct cbshm_header) <= CBSHM_HEADER_BYTES, "header fits its page");

#endif /* CBSHM_LAYOUT_H */
