/* SPDX-License-Identifier: MIT */
/*
 * The event ring: every state transition, mode change and reset, with its
 * times (monotonic and wall-clock), breaker, cause and process.
 * Transitions already run under the table lock, so writing an event there
 * costs the hot path nothing; the ring is read without the lock, entry by
 * entry, each checked against its sequence number before and after it is
 * copied.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/*
 * An event's times, read as it is written. `now` is the coarse clock the
 * caller decided with, up to a tick (1-4 ms) behind CLOCK_MONOTONIC: a
 * trip stamped with it came before its failures on any caller's clock.
 * The fine clock read here comes after every call that caused the event;
 * a transition is rare and already under the lock, so two clock reads cost
 * the hot path nothing. A timed mode's end is the exception: it is dated
 * at its deadline (`now`), however late a call noticed it. The wall-clock
 * time is CLOCK_REALTIME less the same distance. A test's clock (the seam)
 * is taken as given.
 */
static void stamp(unsigned cause, uint64_t now, uint64_t *mono_ns, uint64_t *wall_ns)
{
    uint64_t fine = cbshm__clock_fn != NULL ? now : cbshm__clock_real(CLOCK_MONOTONIC);
    uint64_t wall = cbshm__clock_real(CLOCK_REALTIME);
    uint64_t at = cause == CBSHM_CAUSE_MODE_EXPIRED || fine < now ? now : fine;

    *mono_ns = at;
    *wall_ns = fine > at && wall > fine - at ? wall - (fine - at) : wall;
}

void cbshm__event(struct cbshm *shm, uint32_t slot, unsigned kind, unsigned from, unsigned to,
                  unsigned cause, uint64_t now)
{
    struct cbshm_header *h = shm->hdr;
    uint64_t n = atomic_load_explicit(&h->events_seq, memory_order_relaxed);
    struct cbshm_event_rec *e = &shm->events[n % CBSHM_EVENTS];
    uint64_t words[(CBSHM_NAME_MAX + 1) / 8], mono_ns, wall_ns;

    stamp(cause, now, &mono_ns, &wall_ns);

    _Static_assert(sizeof words == CBSHM_NAME_MAX + 1, "the name in whole words");
    memcpy(words, shm->slots[slot].name, sizeof words);
    ((char *)words)[CBSHM_NAME_MAX] = '\0';
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->time_ns, mono_ns, memory_order_relaxed);
    atomic_store_explicit(&e->wall_ns, wall_ns, memory_order_relaxed);
    atomic_store_explicit(&e->pid, (uint32_t)getpid(), memory_order_relaxed);
    atomic_store_explicit(&e->slot, slot, memory_order_relaxed);
    atomic_store_explicit(
        &e->what, (kind & 0xffu) | (from & 0xffu) << 8 | (to & 0xffu) << 16 | (cause & 0xffu) << 24,
        memory_order_relaxed);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        atomic_store_explicit(&e->name[i], words[i], memory_order_relaxed);
    atomic_store_explicit(&e->seq, n + 1, memory_order_release);
    atomic_store_explicit(&h->events_seq, n + 1, memory_order_release);
}

int cbshm_events_read(struct cbshm *shm, uint64_t *cursor, struct cbshm_event *out, size_t max,
                      size_t *n, uint64_t *lost)
{
    uint64_t end, c;
    size_t got = 0, corrupt = 0;
    int rc;

    if (shm == NULL || cursor == NULL || n == NULL || (out == NULL && max > 0))
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    end = atomic_load_explicit(&shm->hdr->events_seq, memory_order_acquire);
    if (lost != NULL)
        *lost = 0;
    if (*cursor == CBSHM_EVENTS_NOW || *cursor > end)
        *cursor = end;
    c = *cursor;
    if (end - c > CBSHM_EVENTS) { /* overwritten before we came */
        if (lost != NULL)
            *lost = end - c - CBSHM_EVENTS;
        c = end - CBSHM_EVENTS;
    }
    for (; c < end && got < max; c++) {
        const struct cbshm_event_rec *e = &shm->events[c % CBSHM_EVENTS];
        struct cbshm_event *o = &out[got];

        if (atomic_load_explicit(&e->seq, memory_order_acquire) != c + 1)
            continue; /* being rewritten by a newer event: it is lost */
        uint64_t words[(CBSHM_NAME_MAX + 1) / 8];
        uint32_t what = atomic_load_explicit(&e->what, memory_order_relaxed);
        unsigned kind = what & 0xffu;

        memset(o, 0, sizeof *o);
        o->seq = c;
        o->time_ns = atomic_load_explicit(&e->time_ns, memory_order_relaxed);
        o->wall_ns = atomic_load_explicit(&e->wall_ns, memory_order_relaxed);
        o->pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
        o->kind = (enum cbshm_event_kind)(kind <= CBSHM_EVENT_BULKHEAD ? kind : 0);
        o->from = (int)(what >> 8 & 0xffu);
        o->to = (int)(what >> 16 & 0xffu);
        o->cause = (enum cbshm_event_cause)(what >> 24); /* an unknown one is named "unknown" */
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            words[i] = atomic_load_explicit(&e->name[i], memory_order_relaxed);
        memcpy(o->name, words, sizeof o->name);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != c + 1)
            continue;
        /* The ring is as untrusted as the slots: a record whose name is
           not a valid name (or has no NUL) is skipped, never handed out. */
        if (!cbshm__stored_name_ok(o->name, sizeof o->name)) {
            memset(o, 0, sizeof *o);
            corrupt++;
            continue;
        }
        got++;
    }
    *cursor = c;
    *n = got;
    return corrupt > 0 ? CBSHM_ECORRUPT : 0;
}

static const char *const cause_words[] = {
#define WORD(name, value, word, meaning) [value] = word,
    CBSHM_CAUSE_MAP(WORD)
#undef WORD
};

const char *cbshm_event_cause_name(int cause)
{
    if (cause < 0 || (size_t)cause >= sizeof cause_words / sizeof cause_words[0] ||
        cause_words[cause] == NULL)
        return "unknown";
    return cause_words[cause];
}
