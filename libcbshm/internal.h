/* SPDX-License-Identifier: MIT */
/*
 * Declarations shared between the library's .c files. Not installed.
 */
#ifndef CBSHM_INTERNAL_H
#define CBSHM_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cbshm.h"
#include "layout.h"

/* An attached segment: this process's view of the mapping. */
struct cbshm {
    uint64_t id;                 /* unique per cbshm_open in this process, never 0 */
    struct cbshm *successor;     /* the mapping that replaced this retired one */
    uint64_t dev, ino;           /* the object the name meant at attach */
    _Atomic uint64_t checked_ns; /* last time cbshm__watch looked */
    char name[CBSHM_SEGMENT_NAME_MAX + 1];
    unsigned flags;
    void *base;
    size_t bytes;
    struct cbshm_header *hdr;
    struct cbshm_slot *slots;
    uint32_t *index;
    struct cbshm_event_rec *events;
    uint32_t capacity;
    uint32_t index_buckets;
};

/*
 * Where a breaker handle points: a mapping, and the slot in it (ref packs
 * slot index << 32 | generation, so the hot path reads it with one load
 * and a re-resolve is one store). When the segment is destroyed and
 * applied again, the handle moves to a new view on the new mapping with a
 * single pointer store; old views stay allocated (a thread may still be
 * reading one) until the handle is released.
 */
struct cbshm_view {
    struct cbshm *shm;
    struct cbshm_slot *slots;        /* shm->slots, one load closer */
    const _Atomic uint32_t *retired; /* &shm->hdr->retired */
    uint64_t shm_id;                 /* shm->id, for stripe claims */
    _Atomic uint64_t ref;
    struct cbshm_view *older; /* the view this one replaced */
};

struct cbshm_breaker {
    struct cbshm *origin; /* the segment handle it was resolved from */
    _Atomic(struct cbshm_view *) view;
    _Atomic int error;            /* last hot-path problem, 0 if none */
    _Atomic uint64_t retry_at_ns; /* next re-resolve attempt */
    _Atomic uint64_t scan_at_ns;  /* next look for dead probe owners */
    char name[CBSHM_NAME_MAX + 1];
};

static inline struct cbshm_view *cbshm__view(const struct cbshm_breaker *b)
{
    return atomic_load_explicit(&((struct cbshm_breaker *)b)->view, memory_order_acquire);
}

/* Ticket flags. */
#define CBSHM_T_SLOT      0x20u /* holds a bulkhead slot */
#define CBSHM_T_UNGUARDED 0x1u  /* the library could not decide; record is a no-op */
#define CBSHM_T_PASS      0x2u  /* disabled mode: nothing recorded */
#define CBSHM_T_PROBE     0x4u  /* holds a half-open lease */
#define CBSHM_T_FORCED    0x8u  /* forced closed: counted, never trips */
#define CBSHM_T_CLOCKED   0x10u /* record reads the clock: slow calls or a time window */
#define CBSHM_T_VALID     0x80u /* set by allow, cleared by record */

/* Internal only: "the mode changed under us, decide again". */
#define CBSHM_EAGAIN_INTERNAL (-30899)
/* Internal only: "the bulkhead is full": wait (max_wait) or reject. */
#define CBSHM_EFULL_INTERNAL (-30898)

/* segment.c */
int cbshm__segment_create(const char *name, const struct cbshm_config *cfg, struct cbshm **out);
int cbshm__segment_attach(const char *name, unsigned flags, bool wait_publish, struct cbshm **out);
int cbshm__segment_unlink_unpublished(const char *name);
/* Only in the builds with CBSHM_IMAGE_SEAM (cbshm_test, cbshm_fuzz): a view
   of an image in memory the caller owns and keeps until cbshm_close,
   validated as a mapped segment is. */
int cbshm__attach_image(void *base, size_t bytes, unsigned flags, struct cbshm **out);
struct cbshm *cbshm__successor(struct cbshm *shm, int *rc);
void cbshm__retire(struct cbshm *shm);
/* retire.c: unlinks shm's name if it still means shm's object. */
int cbshm__unlink_if_same(const struct cbshm *shm);
void cbshm__watch(struct cbshm *shm);
#define CBSHM_WATCH_CALLS 4096 /* a thread's calls between looks at the name */
int cbshm__validate_header(const struct cbshm_header *h, uint64_t file_bytes);
uint64_t cbshm__abi_fingerprint(void);
uint64_t cbshm__segment_bytes(uint32_t capacity, uint32_t *index_buckets);
uint64_t cbshm__events_offset(uint32_t capacity, uint32_t buckets);

/* apply.c, with CBSHM_IMAGE_SEAM only: what cbshm_apply does to a segment
   it found, for an image's view (no name to create or replace). cfg has
   passed cbshm_config_check, which this does not repeat. */
int cbshm__reconcile_view(struct cbshm *shm, const struct cbshm_config *cfg, bool dry_run,
                          unsigned *n_changes);

/* events.c: the event ring. Called with the table lock held. */
void cbshm__event(struct cbshm *shm, uint32_t slot, unsigned kind, unsigned from, unsigned to,
                  unsigned cause, uint64_t now);
int cbshm__check_segment_name(const char *name);

/* lock.c: the only code that knows about EOWNERDEAD. */
int cbshm__lock_init(pthread_mutex_t *m);
int cbshm__lock(struct cbshm *shm);
/* The hot path's: after a timeout it only tries, for a while (lock.c). */
int cbshm__lock_hot(struct cbshm *shm);
/* Takes the lock only if nobody holds it (CBSHM_ELOCK if someone does). */
int cbshm__lock_try(struct cbshm *shm);
void cbshm__unlock(struct cbshm *shm);
/* CBSHM_ECORRUPT when the lock's words would make the C library misread
   it (abort); 0 otherwise. Takes nothing: read-only views may ask. */
int cbshm__lock_usable(const struct cbshm *shm);
/*
 * segment.c: a late handle (CBSHM_LATE) whose segment could not be attached
 * yet has no mapping (base NULL): its header is cbshm__absent_header, which
 * reads as retired, so every path that finds a retired segment's successor
 * attaches it once it can. A breaker not found yet has a view on
 * cbshm__absent_slot, whose generation never matches a view's: every call
 * takes the slow path, which fails open and looks again at most every
 * 0.25 s. Neither is ever written.
 */
extern struct cbshm_header cbshm__absent_header;
extern struct cbshm_slot cbshm__absent_slot;
#define CBSHM__ABSENT_GEN 1u /* the generation a view on the absent slot holds */
/* The live mapping behind shm - shm itself; a late handle's, attached now
   if it can be; or, for a destroyed segment, the one that replaced it
   (the destroyed one itself while there is none). NULL and *rc (why not)
   when a late handle has none yet. */
struct cbshm *cbshm__live(struct cbshm *shm, int *rc);
/* observe.c: runs copy until it ran while nobody held the table lock (a
   read-only view's way to read consistently); its code, or CBSHM_ELOCK. */
int cbshm__observe(struct cbshm *shm, int (*copy)(struct cbshm *shm, void *ctx), void *ctx);
#define CBSHM__READ_ONLY(shm) (((shm)->flags & CBSHM_READ_ONLY) != 0)

/* table.c: slots and the name index. Called with the table lock held. */
int cbshm__check_breaker_name(const char *name);
/* Whether a name field read from the segment (size bytes) holds a name
   that cbshm__check_breaker_name accepts, NUL within the field; the slot's
   form also checks its recorded length. A name that fails is never handed
   to a caller: the segment is untrusted. */
bool cbshm__stored_name_ok(const char *field, size_t size);
bool cbshm__slot_name_ok(const struct cbshm_slot *sl);
uint64_t cbshm__name_hash(const char *name); /* FNV-1a, for every name index */
int cbshm__table_find(const struct cbshm *shm, const char *name, uint32_t *slot);
int cbshm__table_add(struct cbshm *shm, const char *name, const struct cbshm_settings *s,
                     uint32_t *slot);
void cbshm__table_remove(struct cbshm *shm, uint32_t slot);
void cbshm__table_reindex(struct cbshm *shm);
void cbshm__table_repair(struct cbshm *shm);
void cbshm__slot_rebase(struct cbshm_slot *sl);
/* settings.c: the settings table - descriptors, equality, and each
   setting's place in the slot (line 0 copies and hot flags included). */
long cbshm__setting_index(const struct cbshm_setting *d);
bool cbshm__settings_equal(const struct cbshm_settings *a, const struct cbshm_settings *b);
/* Settings that do not apply to the breaker's policy or window go back to
   their defaults, so that an inherited value that means nothing neither
   fails the check nor shows as a change. */
void cbshm__settings_canonical(struct cbshm_settings *s);
void cbshm__slot_settings(const struct cbshm_slot *sl, struct cbshm_settings *out);
/* "1h", "2m", "5s", "250ms": ms in the largest unit that says it exactly. */
void cbshm__format_ms(char *buf, size_t size, uint64_t ms);
void cbshm__slot_store_settings(struct cbshm_slot *sl, const struct cbshm_settings *s,
                                uint64_t now);

/* validate.c: the one validator. A problem names the setting it blames
   (a row of the table, or -1) and says what is wrong. */
struct cbshm__problem {
    long setting;
    char message[256];
};
/* given: bit i set when the configuration gave setting i itself (YAML: in
   this mapping); only a given key is blamed for not applying. 0 or
   CBSHM_ECONFIG. */
int cbshm__settings_check(const struct cbshm_settings *s, uint64_t given, struct cbshm__problem *p);
int cbshm__settings_valid(const struct cbshm_settings *s); /* ranges and contradictions */
int cbshm__range_check(const struct cbshm_setting *d, uint64_t v, struct cbshm__problem *p);
void cbshm__range_text(const struct cbshm_setting *d, char *buf, size_t size);
/* has_group: 1 when the configuration names the segment's group. */
int cbshm__mode_check(uint32_t mode, int has_group, struct cbshm__problem *p);
int cbshm__name_problem(const char *name, size_t size, struct cbshm__problem *p);
int cbshm__segment_problem(const char *name, size_t size, struct cbshm__problem *p);
/* The `fleet:` section (fleet_table.h): what is wrong with text s as key
   `key` of kind `kind` in a field of size bytes;
   and with a whole section, the keys it needs and heartbeat's range
   included. A fleet problem's `setting` is the key's row of the fleet
   table (-1: the section). 0 or CBSHM_ECONFIG. */
enum cbshm__fleet_kind;
int cbshm__fleet_value_problem(enum cbshm__fleet_kind kind, const char *key, const char *s,
                               size_t size, struct cbshm__problem *p);
int cbshm__fleet_problem(const struct cbshm_fleet_config *f, struct cbshm__problem *p);
/* parse.c: a duration that is not a breaker setting ("5s"), in min..max
   ms; msg as cbshm_setting_parse's. 0 or CBSHM_ECONFIG. */
int cbshm__duration_parse(const char *text, uint64_t min_ms, uint64_t max_ms, uint64_t *out,
                          char *msg, size_t size);
/* suggest.c: the end of an "unknown key 'x'" message - " (pybreaker's
   name): did you mean 'failure_threshold'?", ": did you mean 'capacity'?"
   or "" - into buf. settings: the mapping holds a breaker's settings;
   keys: its other keys, NULL-terminated, or NULL. */
void cbshm__key_hint(const char *typed, int settings, const char *const *keys, char *buf,
                     size_t size);
/* admin.c: a mode change - its words alone (for fleet.c's journal) or
   with its event and op -, a reset's words, and the end of a timed mode.
   Called with the table lock held. mode_expire says whether it ended one. */
/* The longest a timed mode (cbshm_set_mode_for, a fleet command or force)
   may last: a day. */
#define CBSHM__MODE_MAX_MS (24ull * 3600 * 1000)
unsigned cbshm__mode_words(struct cbshm *shm, uint32_t idx, enum cbshm_mode mode, uint64_t until_ns,
                           unsigned cause);
unsigned cbshm__reset_words(struct cbshm *shm, uint32_t idx, uint64_t now);
void cbshm__mode_change(struct cbshm *shm, uint32_t idx, enum cbshm_mode mode, uint64_t until_ns,
                        unsigned cause, uint64_t event_ns);
bool cbshm__mode_expire(struct cbshm *shm, uint32_t idx, uint64_t now);
/* fleet.c: finishes the fleet command a dead holder of the lock began. */
void cbshm__fleet_repair(struct cbshm *shm);
bool cbshm__slot_snapshot(const struct cbshm *shm, uint32_t slot, uint64_t now,
                          struct cbshm_snapshot *out);

/* nameset.c: names -> values in process memory, for config and apply. */
struct cbshm__nameset {
    const char **names;
    long *values;
    size_t mask;
};
int cbshm__nameset_init(struct cbshm__nameset *set, size_t expected);
void cbshm__nameset_free(struct cbshm__nameset *set);
long cbshm__nameset_add(struct cbshm__nameset *set, const char *name, long value);
long cbshm__nameset_find(const struct cbshm__nameset *set, const char *name);

/* window.c: the window of recent calls, and quorum. */
struct cbshm__sums {
    uint64_t calls, failures, slow; /* cumulative, every stripe */
};
struct cbshm__window {
    uint64_t calls, failures, slow;
    uint64_t start_ns; /* about when the window's first call was made */
};
void cbshm__sums(const struct cbshm_slot *sl, struct cbshm__sums *out);
void cbshm__window_reset(struct cbshm_slot *sl, uint64_t now);
/* For the lock's repair: finishes a reset its dead owner left half done. */
void cbshm__window_repair(struct cbshm_slot *sl, uint64_t now);
static inline bool cbshm__window_time_due(const struct cbshm_slot *sl, uint64_t now)
{
    return now >= atomic_load_explicit(&sl->window_next_ns, memory_order_acquire);
}
void cbshm__window_roll_time(struct cbshm_slot *sl, uint64_t now);
void cbshm__window_roll_count(struct cbshm_slot *sl, const struct cbshm__sums *cur, uint64_t now,
                              bool failed, bool slow);
/* A bad call no rate reads (forced closed) keeps the count window's
   checkpoints: a cheap look at its position (two counters a stripe), the
   roll only when its bucket is new. */
void cbshm__window_count_bad(struct cbshm_slot *sl, uint64_t now, bool failed, bool slow);
/* The same for the run-th failure in a row of a consecutive breaker: every
   call since the run began failed, so its position is the run's first
   plus run - 1, and only the first of a run looks at the stripes. */
void cbshm__window_count_run(struct cbshm_slot *sl, uint32_t run, uint64_t now);
void cbshm__window_eval(const struct cbshm_slot *sl, uint64_t now, const struct cbshm__sums *cur,
                        struct cbshm__window *w);
uint32_t cbshm__failing_workers(const struct cbshm_header *h, const struct cbshm_slot *sl,
                                uint64_t since_ns);
/* Since when failures count for the quorum: the start of the failure run
   under the consecutive policy (while there is one), else the window's. */
uint64_t cbshm__quorum_since(const struct cbshm_slot *sl, uint64_t window_start_ns);
int cbshm__window_trips(const struct cbshm *shm, const struct cbshm_slot *sl,
                        const struct cbshm__window *w, bool check_failures);

/* breaker.c */
bool cbshm__pid_alive(const struct cbshm_header *h, uint32_t pid);
bool cbshm__in_segment_pidns(const struct cbshm_header *h);
bool cbshm__pid_ours(const struct cbshm_header *h);
void cbshm__pidns_forked(void);

/* bulkhead.c: the host-wide limit on calls in flight (layout.h says how). */
uint32_t cbshm__bulk_limit(const struct cbshm_header *h, const struct cbshm_slot *sl);
uint32_t cbshm__bulk_in_flight(const struct cbshm_slot *sl);
/* Takes a slot for ticket t (0), or says every slot is held
   (CBSHM_EFULL_INTERNAL) after taking back those of dead owners or past
   slot_timeout, at most every 10 ms host-wide; CBSHM_EPIDNS from another
   PID namespace. seq_cst: a waiter's look. */
int cbshm__bulk_take(struct cbshm_view *v, struct cbshm_slot *sl, struct cbshm_ticket *t,
                     uint64_t now, bool seq_cst);
/* Wakes the waiters for a slot given back; wk: the wake word read, odd. */
void cbshm__bulk_wake(struct cbshm_slot *sl, uint32_t wk);
/* Gives ticket t's slot back. Inline, as every call that took a slot
   gives it back; the wake alone is out of line. */
static inline void cbshm__bulk_release(struct cbshm_slot *sl, const struct cbshm_ticket *t)
{
    uint64_t w = t->bulk_word;
    uint32_t wk;

    /* Its breaker's slot still: a breaker made since starts empty. */
    if (CBSHM_CTL_GEN(atomic_load_explicit(&sl->ctl, memory_order_relaxed)) !=
        CBSHM_CTL_GEN(t->ctl))
        return;
    /* seq_cst, as the waiter's announcement is: either it sees the slot
       free, or this sees it waiting. */
    if (!atomic_compare_exchange_strong_explicit(&sl->bulk_slots[t->bulk_slot % CBSHM_BULKHEAD_MAX],
                                                 &w, 0, memory_order_seq_cst, memory_order_relaxed))
        return; /* taken back from it (slot_timeout) meanwhile */
    wk = atomic_load_explicit(&sl->bulk.wake, memory_order_seq_cst);
    if (__builtin_expect(wk & 1u, 0))
        cbshm__bulk_wake(sl, wk);
}
/* Sleeps until a slot is given back, `ns` pass, or a signal; the futex
   word `wake` is what the waiter announced itself with. */
void cbshm__bulk_sleep(struct cbshm_slot *sl, uint32_t wake, uint64_t ns);
/* Its state for events: full at a rejection, admitting again once a
   second passed without one. Rate-limited to an event a second. */
void cbshm__bulk_rejected(struct cbshm *shm, struct cbshm_slot *sl, uint64_t now);
void cbshm__bulk_admitted(struct cbshm *shm, struct cbshm_slot *sl, uint64_t now);
/* The worker registry (concurrency_quota): join once per process and
   segment (the word it holds), leave, and count the live ones again. */
uint64_t cbshm__workers_join(struct cbshm *shm, uint32_t pid, uint64_t now, uint32_t *at);
void cbshm__workers_leave(struct cbshm *shm, uint32_t at, uint64_t word);
void cbshm__workers_recount(struct cbshm *shm, uint64_t now);
/* The live workers now, counted without writing (cbshm_info). */
uint32_t cbshm__workers_alive(const struct cbshm *shm);
/* Recounts when a second passed since anyone did (host-wide). */
void cbshm__workers_tick(struct cbshm *shm, uint64_t now);

/* stripe.c: which counter stripe this thread writes, and how. */
struct cbshm_claim {
    uint64_t shm_id;    /* the segment the claim is for; 0: none yet */
    uint32_t stripe;    /* 0: the shared stripe, added to atomically */
    uint32_t countdown; /* calls until this thread runs cbshm__watch */
    uint64_t token;     /* what stripe_owner[stripe] holds while it is ours */
};
extern __thread struct cbshm_claim cbshm__claim __attribute__((tls_model("initial-exec")));
void cbshm__claim_stripe(struct cbshm *shm);
void cbshm__release_stripes(struct cbshm *shm);
void cbshm__register(struct cbshm *shm);
void cbshm__stripe_forked(void); /* a child's first thread holds no claim */
/* A thread on the shared stripe 0 claims again on its next call. */
void cbshm__claim_retry(void);
extern pthread_mutex_t cbshm__registry_lock; /* the stripe registry's */
/* retire.c: the successor chain's lock, taken before the registry's. */
extern pthread_mutex_t cbshm__chain_lock;
/* fork.c: both process-local locks across fork(); once, from stripe.c. */
void cbshm__fork_init(void);

/*
 * Publishes control word `next`, made under the table lock from `old`,
 * keeping any generation bump that cbshm__retire made since - it needs no
 * lock, so a transition must never store over it. Returns what was
 * stored. Called with the table lock held.
 */
static inline uint64_t cbshm__ctl_publish(struct cbshm_slot *sl, uint64_t old, uint64_t next)
{
    uint64_t cur = old;

    while (!atomic_compare_exchange_weak_explicit(&sl->ctl, &cur, next, memory_order_release,
                                                  memory_order_relaxed)) {
        next = CBSHM_CTL_MAKE(CBSHM_CTL_GEN(next) + (CBSHM_CTL_GEN(cur) - CBSHM_CTL_GEN(old)),
                              CBSHM_CTL_EPOCH(next), CBSHM_CTL_MODE(next), CBSHM_CTL_STATE(next));
        old = cur;
    }
    return next;
}

/* The failure run of the state period whose control word is ctl: 0 when
   the run word belongs to another period. */
static inline uint32_t cbshm__run_of(const struct cbshm_slot *sl, uint64_t ctl)
{
    uint64_t w = atomic_load_explicit(&sl->run, memory_order_relaxed);

    return CBSHM_RUN_EPOCH(w) == CBSHM_CTL_EPOCH(ctl) ? CBSHM_RUN_COUNT(w) : 0;
}

/* A new period's run starts empty. Called with the table lock held, with
   the control word the period is about to have. */
static inline void cbshm__run_clear(struct cbshm_slot *sl, uint64_t ctl)
{
    atomic_store_explicit(&sl->run, CBSHM_RUN_MAKE(CBSHM_CTL_EPOCH(ctl), 0), memory_order_relaxed);
}

/* The run goes on into the period of control word next (a mode change
   that is no return to normal, a new window shape). Under the lock. */
static inline void cbshm__run_carry(struct cbshm_slot *sl, uint64_t ctl, uint64_t next)
{
    atomic_store_explicit(&sl->run, CBSHM_RUN_MAKE(CBSHM_CTL_EPOCH(next), cbshm__run_of(sl, ctl)),
                          memory_order_relaxed);
}

/* breaker.c: a half-open phase starts over (leases free, no successes).
   Called with the table lock held. */
void cbshm__phase_restart(struct cbshm_slot *sl);

/* clock.c: clock `id` as it is, past the seam - for bounds on real
   waiting (a lock, a publish), and an event's fine and wall times. */
uint64_t cbshm__clock_real(clockid_t id);
/* clock.c: the seam. Inline, because an open breaker reads it per call. */
extern cbshm_clock_fn cbshm__clock_fn;
extern void *cbshm__clock_ctx;
static inline uint64_t cbshm__now(void)
{
    struct timespec ts;

    if (__builtin_expect(cbshm__clock_fn != NULL, 0))
        return cbshm__clock_fn(cbshm__clock_ctx);
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* crash.c: named points where a test build can kill the process. */
#ifdef CBSHM_CRASH_POINTS
void cbshm__crash_point(const char *name);
#define CBSHM_CRASH_POINT(name) cbshm__crash_point(name)
#else
#define CBSHM_CRASH_POINT(name) ((void)0)
#endif

#endif /* CBSHM_INTERNAL_H */
