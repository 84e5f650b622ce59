/* SPDX-License-Identifier: MIT */
/*
 * A breaker's settings, from the one table (settings_table.h): the public
 * descriptors, reading and writing a field by descriptor, formatting a
 * value as the YAML says it, the defaults, equality, and where each
 * setting lives in the slot. The hot path reads only line 0, so the
 * settings it needs are there (failure_threshold, the slow-call threshold)
 * together with hot_flags, which say which slow paths a call must take.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "settings_table.h"

static const char *const policy_words[] = {"consecutive", "rate", NULL};
static const char *const window_words[] = {"count", "time", NULL};
static const char *const decision_words[] = {"first_failure", "rate", NULL};

static const struct cbshm_setting table[] = {
#define ROW(key, json, field, type, lo, hi, def, pol, win, dec, words, slot, scale, flags, help) \
    {#key, #json, help, words, CBSHM_SETTING_##type, pol, win, dec, lo, hi, def, {0}},
    CBSHM_SETTINGS_TABLE(ROW)
#undef ROW
};

#define N_SETTINGS ((size_t)SET_ROWS)
_Static_assert(sizeof table / sizeof table[0] == N_SETTINGS, "one descriptor per row");

/* Where each row's value lives: in struct cbshm_settings and in the slot. */
static const struct {
    size_t offset, size;           /* in struct cbshm_settings */
    size_t slot_offset, slot_size; /* in struct cbshm_slot */
    uint64_t scale;                /* slot value = value * scale */
    unsigned flags;
} place[] = {
#define ROW(key, json, field, type, lo, hi, def, pol, win, dec, words, slot, scale, flags, help) \
    {offsetof(struct cbshm_settings, field),                                                     \
     sizeof(((struct cbshm_settings *)0)->field),                                                \
     offsetof(struct cbshm_slot, slot),                                                          \
     sizeof(((struct cbshm_slot *)0)->slot),                                                     \
     scale,                                                                                      \
     flags},
    CBSHM_SETTINGS_TABLE(ROW)
#undef ROW
};

_Static_assert(sizeof place / sizeof place[0] == N_SETTINGS, "one place per setting");

const struct cbshm_setting *cbshm_setting_at(size_t i)
{
    return i < N_SETTINGS ? &table[i] : NULL;
}

const struct cbshm_setting *cbshm_setting_find(const char *key)
{
    if (key == NULL)
        return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(key, table[i].key) == 0 || strcmp(key, table[i].json_key) == 0)
            return &table[i];
    return NULL;
}

/* The row of a descriptor, or -1 for a pointer that is not one of ours. */
long cbshm__setting_index(const struct cbshm_setting *d)
{
    if (d < table || d >= table + N_SETTINGS)
        return -1;
    return (long)(d - table);
}

uint64_t cbshm_setting_get(const struct cbshm_settings *s, const struct cbshm_setting *d)
{
    long i = cbshm__setting_index(d);
    const char *at;
    uint32_t v32;
    uint64_t v64;

    if (s == NULL || i < 0)
        return 0;
    at = (const char *)s + place[i].offset;
    if (place[i].size == sizeof v32) {
        memcpy(&v32, at, sizeof v32);
        return v32;
    }
    memcpy(&v64, at, sizeof v64);
    return v64;
}

int cbshm_setting_set(struct cbshm_settings *s, const struct cbshm_setting *d, uint64_t v)
{
    long i = cbshm__setting_index(d);
    char *at;
    uint32_t v32;

    if (s == NULL || i < 0)
        return CBSHM_EINVAL;
    at = (char *)s + place[i].offset;
    if (place[i].size == sizeof v32) {
        if (v > UINT32_MAX)
            return CBSHM_EINVAL;
        v32 = (uint32_t)v;
        memcpy(at, &v32, sizeof v32);
    } else {
        memcpy(at, &v, sizeof v);
    }
    return 0;
}

/* "1h", "2m", "5s", "250ms": the largest unit that says it exactly. */
void cbshm__format_ms(char *buf, size_t size, uint64_t ms)
{
    if (ms >= 3600000 && ms % 3600000 == 0)
        snprintf(buf, size, "%" PRIu64 "h", ms / 3600000);
    else if (ms >= 60000 && ms % 60000 == 0)
        snprintf(buf, size, "%" PRIu64 "m", ms / 60000);
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, size, "%" PRIu64 "ms", ms);
}

int cbshm_setting_format(const struct cbshm_setting *d, uint64_t v, char *buf, size_t size)
{
    if (cbshm__setting_index(d) < 0 || buf == NULL || size == 0)
        return CBSHM_EINVAL;
    switch (d->type) {
    case CBSHM_SETTING_DURATION:
        cbshm__format_ms(buf, size, v);
        break;
    case CBSHM_SETTING_PERCENT:
        snprintf(buf, size, "%" PRIu64 "%%", v);
        break;
    case CBSHM_SETTING_MULTIPLIER:
        if (v % 100 == 0)
            snprintf(buf, size, "%" PRIu64, v / 100);
        else if (v % 10 == 0)
            snprintf(buf, size, "%" PRIu64 ".%" PRIu64, v / 100, v / 10 % 10);
        else
            snprintf(buf, size, "%" PRIu64 ".%02" PRIu64, v / 100, v % 100);
        break;
    case CBSHM_SETTING_HOSTS:
        if (v & CBSHM_FLEET_SHARE)
            snprintf(buf, size, "%" PRIu64 "%%", v & ~(uint64_t)CBSHM_FLEET_SHARE);
        else
            snprintf(buf, size, "%" PRIu64, v);
        break;
    case CBSHM_SETTING_CHOICE:
        if (v <= d->max)
            snprintf(buf, size, "%s", d->choices[v]);
        else
            snprintf(buf, size, "%" PRIu64 "?", v);
        break;
    default:
        snprintf(buf, size, "%" PRIu64, v);
        break;
    }
    return 0;
}

int cbshm_setting_applies(const struct cbshm_setting *d, const struct cbshm_settings *s)
{
    unsigned policy_bit, window_bit, decision_bit;

    if (cbshm__setting_index(d) < 0 || s == NULL)
        return 0;
    policy_bit = s->policy == CBSHM_POLICY_RATE ? CBSHM_FOR_RATE : CBSHM_FOR_CONSECUTIVE;
    window_bit =
        s->window_type == CBSHM_WINDOW_TIME ? CBSHM_FOR_TIME_WINDOW : CBSHM_FOR_COUNT_WINDOW;
    decision_bit = s->half_open_decision == CBSHM_HALF_OPEN_RATE ? CBSHM_FOR_RATE_DECISION
                                                                 : CBSHM_FOR_FIRST_FAILURE;
    if ((d->windows & window_bit) == 0 || (d->decisions & decision_bit) == 0)
        return 0;
    return (d->policies & policy_bit) != 0 ||
           ((d->policies & CBSHM_FOR_SLOW_CALLS) != 0 && s->slow_call_duration_ms > 0) ||
           ((d->policies & CBSHM_FOR_BULKHEAD) != 0 &&
            (s->max_concurrent_calls > 0 || s->concurrency_quota > 0));
}

void cbshm_settings_default(struct cbshm_settings *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < N_SETTINGS; i++)
        cbshm_setting_set(out, &table[i], table[i].def);
}

bool cbshm__settings_equal(const struct cbshm_settings *a, const struct cbshm_settings *b)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (cbshm_setting_get(a, &table[i]) != cbshm_setting_get(b, &table[i]))
            return false;
    return true;
}

void cbshm__settings_canonical(struct cbshm_settings *s)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (!cbshm_setting_applies(&table[i], s))
            cbshm_setting_set(s, &table[i], table[i].def);
}

static uint32_t hot_flags(const struct cbshm_settings *s)
{
    return (s->policy == CBSHM_POLICY_RATE ? CBSHM_HOT_RATE : 0) |
           (s->window_type == CBSHM_WINDOW_TIME ? CBSHM_HOT_TIME : 0) |
           (s->slow_call_duration_ms > 0 ? CBSHM_HOT_SLOW : 0) |
           (s->min_failing_workers > 1 ? CBSHM_HOT_QUORUM : 0) |
           (s->max_concurrent_calls > 0 || s->concurrency_quota > 0 ? CBSHM_HOT_BULK : 0);
}

/* The slot member of row i, as the atomic it is. */
static void slot_store(struct cbshm_slot *sl, size_t i, uint64_t v)
{
    char *at = (char *)sl + place[i].slot_offset;

    if (place[i].slot_size == sizeof(uint32_t))
        atomic_store_explicit((_Atomic uint32_t *)(void *)at, (uint32_t)(v * place[i].scale),
                              memory_order_relaxed);
    else
        atomic_store_explicit((_Atomic uint64_t *)(void *)at, v * place[i].scale,
                              memory_order_relaxed);
}

static uint64_t slot_load(const struct cbshm_slot *sl, size_t i)
{
    const char *at = (const char *)sl + place[i].slot_offset;
    uint64_t v;

    if (place[i].slot_size == sizeof(uint32_t))
        v = atomic_load_explicit((const _Atomic uint32_t *)(const void *)at, memory_order_relaxed);
    else
        v = atomic_load_explicit((const _Atomic uint64_t *)(const void *)at, memory_order_relaxed);
    return v / place[i].scale;
}

/* Called with the table lock held, or on a slot not yet in use. */
void cbshm__slot_store_settings(struct cbshm_slot *sl, const struct cbshm_settings *s, uint64_t now)
{
    struct cbshm_settings old;
    bool new_window = false;

    cbshm__slot_settings(sl, &old);
    /* A limit change, before the new limit is stored (layout.h: high). */
    if (old.max_concurrent_calls != s->max_concurrent_calls ||
        old.concurrency_quota != s->concurrency_quota)
        atomic_fetch_add_explicit(&sl->bulk.high, CBSHM_HIGH_CHANGED, memory_order_seq_cst);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        uint64_t v = cbshm_setting_get(s, &table[i]);
        if ((place[i].flags & SET_RESHAPES) && v != cbshm_setting_get(&old, &table[i]))
            new_window = true;
        slot_store(sl, i, v);
    }
    /* A changed open_timeout applies from the next trip; an open period
       that is running keeps its end. */
    if (old.open_timeout_ms != s->open_timeout_ms)
        atomic_store_explicit(&sl->current_open_ns, s->open_timeout_ms * SET_MS,
                              memory_order_relaxed);
    /* A window of another shape starts empty: its old buckets mean nothing.
       It is a new state period too, so that a call in flight across the
       change counts in no window of the new shape. */
    if (new_window) {
        uint64_t ctl = atomic_load_explicit(&sl->ctl, memory_order_relaxed);
        uint64_t next = CBSHM_CTL_MAKE(CBSHM_CTL_GEN(ctl), CBSHM_CTL_EPOCH(ctl) + 1,
                                       CBSHM_CTL_MODE(ctl), CBSHM_CTL_STATE(ctl));
        cbshm__window_reset(sl, now);
        if (atomic_load_explicit(&sl->in_use, memory_order_relaxed) == 1) {
            cbshm__run_carry(sl, ctl, next);
            if (CBSHM_CTL_STATE(ctl) == CBSHM_STATE_HALF_OPEN)
                cbshm__phase_restart(sl);
            cbshm__ctl_publish(sl, ctl, next);
        }
    }
    /* Line 0 last, so the hot path never takes a slow path whose settings
       are not there yet. */
    atomic_store_explicit(&sl->slow_call_ns, s->slow_call_duration_ms * SET_MS,
                          memory_order_relaxed);
    atomic_store_explicit(&sl->hot_flags, hot_flags(s), memory_order_release);
}

void cbshm__slot_settings(const struct cbshm_slot *sl, struct cbshm_settings *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < N_SETTINGS; i++)
        cbshm_setting_set(out, &table[i], slot_load(sl, i));
}
