/* SPDX-License-Identifier: MIT */
/*
 * The breaker table: slots and the name index. The slots are the truth;
 * the index (open addressing, linear probing, slot + 1 per bucket, 0 for
 * empty) and the header's breaker count are derived from them and can
 * always be rebuilt, which is how a dead lock owner's half-done change is
 * repaired. Every function here is called with the table lock held, or on
 * a segment that is not yet published.
 */
#include <string.h>

#include "internal.h"

uint64_t cbshm__name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *name != '\0'; name++) {
        h ^= (unsigned char)*name;
        h *= 0x100000001b3ull;
    }
    return h;
}

int cbshm__check_breaker_name(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return CBSHM_EBADNAME;
    for (const char *p = name; *p != '\0'; p++, n++) {
        char c = *p;
        if (n >= CBSHM_NAME_MAX)
            return CBSHM_EBADNAME;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return CBSHM_EBADNAME;
    }
    return n == 0 ? CBSHM_EBADNAME : 0;
}

bool cbshm__stored_name_ok(const char *field, size_t size)
{
    return memchr(field, '\0', size) != NULL && cbshm__check_breaker_name(field) == 0;
}

bool cbshm__slot_name_ok(const struct cbshm_slot *sl)
{
    return cbshm__stored_name_ok(sl->name, sizeof sl->name) && strlen(sl->name) == sl->name_len;
}

static bool slot_live(const struct cbshm_slot *sl)
{
    return atomic_load_explicit(&sl->in_use, memory_order_acquire) == 1 && cbshm__slot_name_ok(sl);
}

int cbshm__table_find(const struct cbshm *shm, const char *name, uint32_t *slot)
{
    uint32_t mask = shm->index_buckets - 1;
    uint32_t b = (uint32_t)cbshm__name_hash(name) & mask;
    bool corrupt = false;

    for (uint32_t probes = 0; probes < shm->index_buckets; probes++, b = (b + 1) & mask) {
        uint32_t v = shm->index[b];
        const struct cbshm_slot *sl;

        if (v == 0)
            break;
        if (v - 1 >= shm->capacity)
            return CBSHM_ECORRUPT;
        sl = &shm->slots[v - 1];
        if (slot_live(sl)) {
            if (strcmp(sl->name, name) == 0) {
                *slot = v - 1;
                return 0;
            }
        } else if (atomic_load_explicit(&sl->in_use, memory_order_relaxed) == 1) {
            corrupt = true; /* a scribbled name: it may have been this one */
        }
    }
    return corrupt ? CBSHM_ECORRUPT : CBSHM_ENOBREAKER;
}

/* Returns false when no bucket is free, which only a scribbled index can
   make happen: it has at least twice as many buckets as slots. */
static bool index_insert(struct cbshm *shm, const char *name, uint32_t slot)
{
    uint32_t mask = shm->index_buckets - 1;
    uint32_t b = (uint32_t)cbshm__name_hash(name) & mask;

    for (uint32_t probes = 0; probes < shm->index_buckets; probes++, b = (b + 1) & mask) {
        if (shm->index[b] == 0) {
            shm->index[b] = slot + 1;
            return true;
        }
    }
    return false;
}

void cbshm__table_reindex(struct cbshm *shm)
{
    struct cbshm_header *h = shm->hdr;
    uint32_t n = 0;

    h->op = CBSHM_OP_REINDEX;
    memset(shm->index, 0, (size_t)shm->index_buckets * sizeof(uint32_t));
    CBSHM_CRASH_POINT("reindex.cleared");
    for (uint32_t i = 0; i < shm->capacity; i++) {
        if (slot_live(&shm->slots[i]) && index_insert(shm, shm->slots[i].name, i))
            n++;
    }
    atomic_store_explicit(&h->breakers, n, memory_order_relaxed);
    h->op = CBSHM_OP_NONE;
}

static uint64_t stripes_sum(const struct cbshm_slot *sl, int i)
{
    uint64_t sum = 0;

    for (int s = 0; s < CBSHM_STRIPES; s++)
        sum += atomic_load_explicit(&sl->stripes[s].count[i], memory_order_relaxed);
    return sum;
}

/* The counters restart from zero: the current sums become the base. The
   stripes themselves are never written but by their owners. */
void cbshm__slot_rebase(struct cbshm_slot *sl)
{
    for (int i = 0; i < CBSHM_COUNTS; i++)
        atomic_store_explicit(&sl->base[i], stripes_sum(sl, i), memory_order_relaxed);
}

/* Zeroes the slot but its control word, which carries the generation, and
   its counter stripes, whose owners may be writing; the counters restart
   from the stripes' current sums. */
static void slot_clear(struct cbshm_slot *sl)
{
    memset((char *)sl + sizeof sl->ctl, 0, offsetof(struct cbshm_slot, stripes) - sizeof sl->ctl);
    cbshm__slot_rebase(sl);
}

int cbshm__table_add(struct cbshm *shm, const char *name, const struct cbshm_settings *s,
                     uint32_t *slot)
{
    struct cbshm_header *h = shm->hdr;
    uint32_t i, gen;
    uint64_t old;
    struct cbshm_slot *sl;
    int rc;

    if ((rc = cbshm__check_breaker_name(name)) != 0)
        return rc;
    if (!cbshm__settings_valid(s))
        return CBSHM_EINVAL;
    /* Start looking where a table filled in order has its first free
       slot, so creating N breakers is linear, not quadratic. */
    for (uint32_t j = 0;; j++) {
        if (j == shm->capacity)
            return CBSHM_EFULL;
        i = (atomic_load_explicit(&h->breakers, memory_order_relaxed) + j) % shm->capacity;
        if (atomic_load_explicit(&shm->slots[i].in_use, memory_order_relaxed) == 0)
            break;
    }
    sl = &shm->slots[i];
    h->op_slot = i;
    h->op = CBSHM_OP_CREATE_SLOT;
    slot_clear(sl);
    strcpy(sl->name, name);
    sl->name_len = (uint32_t)strlen(name);
    cbshm__slot_store_settings(sl, s, cbshm__now());
    atomic_store_explicit(&sl->last_transition_ns, cbshm__now(), memory_order_relaxed);
    CBSHM_CRASH_POINT("add.filled");
    old = atomic_load_explicit(&sl->ctl, memory_order_relaxed);
    gen = CBSHM_CTL_GEN(old) + 1;
    cbshm__ctl_publish(sl, old, CBSHM_CTL_MAKE(gen, 0, CBSHM_MODE_NORMAL, CBSHM_STATE_CLOSED));
    atomic_store_explicit(&sl->in_use, 1, memory_order_release);
    CBSHM_CRASH_POINT("add.published");
    if (index_insert(shm, name, i)) {
        atomic_fetch_add_explicit(&h->breakers, 1, memory_order_relaxed);
        h->op = CBSHM_OP_NONE;
    } else {
        cbshm__table_reindex(shm); /* the slots are the truth */
    }
    *slot = i;
    return 0;
}

void cbshm__table_remove(struct cbshm *shm, uint32_t slot)
{
    struct cbshm_header *h = shm->hdr;
    struct cbshm_slot *sl = &shm->slots[slot];
    uint64_t old = atomic_load_explicit(&sl->ctl, memory_order_relaxed);
    uint32_t gen = CBSHM_CTL_GEN(old) + 1;

    h->op_slot = slot;
    h->op = CBSHM_OP_DELETE_SLOT;
    /* The new generation tells every handle the breaker is gone before
       the slot is cleared and can be reused. */
    cbshm__ctl_publish(sl, old, CBSHM_CTL_MAKE(gen, 0, CBSHM_MODE_NORMAL, CBSHM_STATE_CLOSED));
    atomic_store_explicit(&sl->in_use, 0, memory_order_release);
    CBSHM_CRASH_POINT("remove.unpublished");
    slot_clear(sl);
    h->op = CBSHM_OP_NONE;
    /* The caller reindexes once after all removals. */
}

/*
 * Called by lock.c alone, when the previous lock owner died. Whatever it
 * was doing, the slots are the truth: a slot half created is not in use
 * (in_use is set last) and is cleared; a slot half deleted is already
 * retired (generation bumped first) and is cleared; a transition leaves
 * single atomic words that are each valid, but for a window reset, which
 * is redone. Then the index and the count are rebuilt from the slots.
 */
void cbshm__table_repair(struct cbshm *shm)
{
    struct cbshm_header *h = shm->hdr;
    uint32_t op = h->op, s = h->op_slot;

    if ((op == CBSHM_OP_CREATE_SLOT || op == CBSHM_OP_DELETE_SLOT) && s < shm->capacity &&
        atomic_load_explicit(&shm->slots[s].in_use, memory_order_relaxed) == 0)
        slot_clear(&shm->slots[s]);
    for (uint32_t i = 0; i < shm->capacity; i++) {
        struct cbshm_slot *sl = &shm->slots[i];
        /* A slot whose bytes do not make a live breaker is taken out of use. */
        if (atomic_load_explicit(&sl->in_use, memory_order_relaxed) != 0 && !slot_live(sl)) {
            atomic_store_explicit(&sl->in_use, 0, memory_order_relaxed);
            slot_clear(sl);
        }
        /* A window reset is many words: one its owner died in is redone. */
        if (atomic_load_explicit(&sl->in_use, memory_order_relaxed) != 0)
            cbshm__window_repair(sl, cbshm__now());
    }
    cbshm__table_reindex(shm);
    if (op == CBSHM_OP_FLEET)
        cbshm__fleet_repair(shm);
}

/* Counter i (successes, failures, ignored, rejections) since the base. */
static uint64_t counter(const struct cbshm_slot *sl, int i)
{
    return stripes_sum(sl, i) - atomic_load_explicit(&sl->base[i], memory_order_relaxed);
}

bool cbshm__slot_snapshot(const struct cbshm *shm, uint32_t slot, uint64_t now,
                          struct cbshm_snapshot *out)
{
    const struct cbshm_slot *sl = &shm->slots[slot];
    uint64_t ctl = atomic_load_explicit(&sl->ctl, memory_order_acquire);
    uint64_t since = atomic_load_explicit(&sl->last_transition_ns, memory_order_relaxed);
    struct cbshm__sums sums;
    struct cbshm__window w;
    uint32_t held = 0;

    memset(out, 0, sizeof *out);
    /* The name is judged as copied: another writer may change the slot's
       bytes after any check of them there (no change_seq covers that). */
    memcpy(out->name, sl->name, sizeof out->name);
    if (!cbshm__stored_name_ok(out->name, sizeof out->name)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    out->index = slot;
    out->generation = CBSHM_CTL_GEN(ctl);
    out->state = (enum cbshm_state)CBSHM_CTL_STATE(ctl);
    out->mode = (enum cbshm_mode)CBSHM_CTL_MODE(ctl);
    out->mode_cause = atomic_load_explicit(&sl->mode_cause, memory_order_relaxed);
    cbshm__slot_settings(sl, &out->settings);
    out->successes = counter(sl, CBSHM_SUCCESS);
    out->failures = counter(sl, CBSHM_FAILURE);
    out->ignored = counter(sl, CBSHM_IGNORED);
    out->rejections = counter(sl, CBSHM_COUNT_REJECTED);
    out->slow_calls = counter(sl, CBSHM_COUNT_SLOW);
    out->requests = out->successes + out->failures + out->ignored + out->rejections;
    out->trips = atomic_load_explicit(&sl->trips, memory_order_relaxed);
    out->probes_reclaimed = atomic_load_explicit(&sl->probes_reclaimed, memory_order_relaxed);
    out->consecutive_failures = cbshm__run_of(sl, ctl);
    out->half_open_successes = atomic_load_explicit(&sl->half_open_successes, memory_order_relaxed);
    for (int i = 0; i < CBSHM_PROBES_MAX; i++) {
        uint64_t word = atomic_load_explicit(&sl->leases[i].word, memory_order_relaxed);
        held += word != 0 && !CBSHM_LEASE_DONE(word);
    }
    out->probes_in_flight = held;
    out->open_until_ns = atomic_load_explicit(&sl->open_until_ns, memory_order_relaxed);
    out->mode_until_ns = atomic_load_explicit(&sl->mode_until_ns, memory_order_relaxed);
    out->current_open_ms =
        atomic_load_explicit(&sl->current_open_ns, memory_order_relaxed) / 1000000u;
    cbshm__sums(sl, &sums);
    cbshm__window_eval(sl, now, &sums, &w);
    out->window_calls = w.calls;
    out->window_failures = w.failures;
    out->window_slow_calls = w.slow;
    out->window_failure_rate = w.calls ? (uint32_t)(w.failures * 100 / w.calls) : 0;
    out->window_slow_rate = w.calls ? (uint32_t)(w.slow * 100 / w.calls) : 0;
    out->failing_workers =
        cbshm__failing_workers(shm->hdr, sl, cbshm__quorum_since(sl, w.start_ns));
    out->last_transition_ns = since;
    out->time_in_state_ns = now > since ? now - since : 0;
    if (atomic_load_explicit(&sl->hot_flags, memory_order_relaxed) & CBSHM_HOT_BULK)
        out->bulkhead_limit = cbshm__bulk_limit(shm->hdr, sl);
    out->bulkhead_in_flight = cbshm__bulk_in_flight(sl);
    out->bulkhead_rejections = atomic_load_explicit(&sl->bulk.rejections, memory_order_relaxed);
    out->bulkhead_reclaimed = atomic_load_explicit(&sl->bulk.reclaimed, memory_order_relaxed);
    out->bulkhead_waits = atomic_load_explicit(&sl->bulk.waits, memory_order_relaxed);
    return true;
}
