/* SPDX-License-Identifier: MIT */
/*
 * cbshm_check(): validates a whole segment the way an operator wants it
 * validated - header, every slot, the name index, the probe leases, the
 * bulkhead slots, the worker registry - and names each problem. It reads
 * under the table lock and changes nothing (taking the lock may repair a
 * dead owner's change, which is the point); a read-only view reads
 * between changes instead (observe.c). A lock that cannot be used at all
 * is one problem, like a bad header.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LEASE_SLACK_NS 1000000000ull
/* A stamp this far past now was never written by this host's clock: a
   holder stamps its slot with the time it took it. */
#define STAMP_FUTURE_MS 60000ull

struct checker {
    void (*report)(void *ctx, const char *message);
    void *ctx;
    int problems;
    void (*reset)(struct checker *c); /* a run begins again, or NULL */
};

__attribute__((format(printf, 2, 3))) static void problem(struct checker *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->problems++;
    if (c->report != NULL)
        c->report(c->ctx, msg);
}

static void check_slot(struct cbshm *shm, uint32_t i, uint64_t now, struct checker *c)
{
    const struct cbshm_slot *sl = &shm->slots[i];
    uint64_t ctl = atomic_load_explicit(&sl->ctl, memory_order_acquire);
    struct cbshm_settings s;
    const char *end = memchr(sl->name, '\0', sizeof sl->name);
    uint32_t found;

    if (end == NULL || (size_t)(end - sl->name) != sl->name_len) {
        problem(c, "slot %u: name is not terminated or its length is wrong", i);
        return;
    }
    if (cbshm__check_breaker_name(sl->name) != 0) {
        problem(c, "slot %u: invalid breaker name", i);
        return;
    }
    if (CBSHM_CTL_STATE(ctl) > CBSHM_STATE_HALF_OPEN)
        problem(c, "breaker %s: invalid state %u", sl->name, CBSHM_CTL_STATE(ctl));
    cbshm__slot_settings(sl, &s);
    if (!cbshm__settings_valid(&s))
        problem(c, "breaker %s: settings out of range", sl->name);
    if (cbshm__table_find(shm, sl->name, &found) != 0 || found != i)
        problem(c, "breaker %s: missing from the name index", sl->name);
    for (int l = 0; l < CBSHM_PROBES_MAX; l++) {
        uint64_t w = atomic_load_explicit(&sl->leases[l].word, memory_order_relaxed);
        uint64_t d = atomic_load_explicit(&sl->leases[l].deadline_ns, memory_order_relaxed);
        uint64_t limit = now +
                         atomic_load_explicit(&sl->cfg.probe_timeout_ns, memory_order_relaxed) +
                         LEASE_SLACK_NS;

        if (w == 0 || CBSHM_LEASE_DONE(w))
            continue;
        if ((uint32_t)(w >> 32) == 0)
            problem(c, "breaker %s: probe lease %d has no owner", sl->name, l);
        else if (d > limit)
            problem(c, "breaker %s: probe lease %d expires beyond probe_timeout", sl->name, l);
    }
    /* Every bulkhead slot, below the limit or not (a limit lowered since
       leaves calls in flight above it): a held word names a process and
       the time it took the slot. */
    for (int b = 0; b < CBSHM_BULKHEAD_MAX; b++) {
        uint64_t w = atomic_load_explicit(&sl->bulk_slots[b], memory_order_relaxed);

        if (w == 0)
            continue;
        if (CBSHM_STAMP_PID(w) == 0)
            problem(c, "breaker %s: bulkhead slot %d is held by no process (pid 0)", sl->name, b);
        else if (CBSHM_STAMP_MS(w) > now / 1000000u + STAMP_FUTURE_MS)
            problem(c, "breaker %s: bulkhead slot %d is stamped %" PRIu64 " s ahead of the clock",
                    sl->name, b, (CBSHM_STAMP_MS(w) - now / 1000000u + 500) / 1000);
    }
}

/* The worker registry (concurrency_quota): a used entry names a process. */
static void check_workers(struct cbshm *shm, struct checker *c)
{
    for (int i = 0; i < CBSHM_WORKERS_MAX; i++) {
        uint64_t w = atomic_load_explicit(&shm->hdr->workers[i], memory_order_relaxed);

        if (w != 0 && CBSHM_STAMP_PID(w) == 0)
            problem(c, "worker registry entry %d names no process (pid 0)", i);
    }
}

/* The table's checks; called under the lock, or observed (a read-only
   view), when it may run more than once: c->problems counts one run. */
static int check_table(struct cbshm *shm, void *ctx)
{
    struct checker *c = ctx;
    uint64_t now = cbshm__now();
    uint32_t live = 0, entries = 0;

    c->problems = 0;
    if (c->reset != NULL)
        c->reset(c);
    if (atomic_load_explicit(&shm->hdr->retired, memory_order_acquire))
        problem(c, "header: the segment was destroyed but its name is still linked (a destroy "
                   "died half way): apply replaces it");
    if (shm->hdr->op != CBSHM_OP_NONE)
        problem(c, "header: a structural change (op %u) was left unfinished", shm->hdr->op);
    for (uint32_t i = 0; i < shm->capacity; i++) {
        uint32_t in_use = atomic_load_explicit(&shm->slots[i].in_use, memory_order_acquire);
        if (in_use > 1) {
            problem(c, "slot %u: in_use is %u", i, in_use);
        } else if (in_use == 1) {
            live++;
            check_slot(shm, i, now, c);
        }
    }
    for (uint32_t b = 0; b < shm->index_buckets; b++) {
        uint32_t v = shm->index[b];
        if (v == 0)
            continue;
        entries++;
        if (v - 1 >= shm->capacity)
            problem(c, "index bucket %u: slot %u out of range", b, v - 1);
        else if (atomic_load_explicit(&shm->slots[v - 1].in_use, memory_order_relaxed) != 1)
            problem(c, "index bucket %u: points at free slot %u", b, v - 1);
    }
    if (entries != live)
        problem(c, "index holds %u entries for %u breakers", entries, live);
    uint32_t counted = atomic_load_explicit(&shm->hdr->breakers, memory_order_relaxed);
    if (counted != live)
        problem(c, "header counts %u breakers, table holds %u", counted, live);
    check_workers(shm, c);
    return 0;
}

/* A read-only view's run may be repeated: its messages are kept and told
   once the run that counts is over. */
struct kept {
    char (*msg)[256];
    int n, cap;
};

static void keep(void *ctx, const char *message)
{
    struct kept *k = ctx;
    void *more;

    if (k->n == k->cap) {
        if ((more = realloc(k->msg, (size_t)(k->cap ? k->cap * 2 : 16) * sizeof *k->msg)) == NULL)
            return; /* counted all the same; only its words are lost */
        k->msg = more;
        k->cap = k->cap ? k->cap * 2 : 16;
    }
    snprintf(k->msg[k->n++], sizeof k->msg[0], "%s", message);
}

static void forget(struct checker *c)
{
    ((struct kept *)c->ctx)->n = 0;
}

int cbshm_check(struct cbshm *shm, void (*report)(void *ctx, const char *message), void *ctx)
{
    struct checker c = {report, ctx, 0, NULL};
    int rc;

    if (shm == NULL)
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if ((rc = cbshm__validate_header(shm->hdr, shm->bytes)) != 0) {
        problem(&c, "header: %s", cbshm_strerror(rc));
        return c.problems;
    }
    /* A lock the C library would misread is one problem, found by a
       read-only view too, which never takes it. */
    rc = cbshm__lock_usable(shm);
    if (rc == 0 && !CBSHM__READ_ONLY(shm))
        rc = cbshm__lock(shm);
    if (rc == CBSHM_ECORRUPT) {
        problem(&c, "header: the table lock is unusable (its words were scribbled, or it is "
                    "beyond repair): apply replaces the segment");
        return c.problems;
    }
    if (rc != 0)
        return rc;
    if (CBSHM__READ_ONLY(shm)) {
        struct kept k = {NULL, 0, 0};
        struct checker kc = {keep, &k, 0, forget};
        rc = cbshm__observe(shm, check_table, &kc);
        for (int i = 0; i < k.n && rc == 0 && report != NULL; i++)
            report(ctx, k.msg[i]);
        free(k.msg);
        return rc != 0 ? rc : kc.problems;
    }
    check_table(shm, &c);
    cbshm__unlock(shm);
    return c.problems;
}
