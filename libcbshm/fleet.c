/* SPDX-License-Identifier: MIT */
/*
 * What the fleet's agent (cbctl agent) needs from the segment: fleet
 * commands applied exactly once, the fleet trip, and the agent's status.
 *
 * Exactly once. A command is a Redis stream id and a change. The segment
 * keeps the id of the last command it consumed (header.fleet.applied_*)
 * and it is stored, under the table lock, with the change: an agent that
 * reads the stream again from the stored id after a crash neither skips a
 * command nor applies one twice. Both words and the change cannot be made
 * by one store, so the change is journalled: before it, `pending` says
 * what it is and the header's op is CBSHM_OP_FLEET; after it the id is
 * stored and op cleared. A holder that dies in between leaves op set, and
 * the next holder of the lock (cbshm__table_repair, through
 * cbshm__fleet_repair) finishes it: makes the change again - a mode or a
 * reset made twice is the same mode or reset -, writes its event if the
 * ring did not get it, and stores the id.
 *
 * The fleet trip: a breaker the fleet forces open is in a timed mode,
 * forced_open with mode_cause CBSHM_CAUSE_FLEET, renewed by the agent
 * while the fleet's condition holds. An operator's mode is never touched,
 * and a force whose agent died ends by itself.
 */
#include <string.h>

#include "internal.h"

static int id_after(uint64_t ms, uint64_t seq, uint64_t ams, uint64_t aseq)
{
    return ms > ams || (ms == ams && seq > aseq);
}

/* Whether a command of `op` with id ms-seq is still to be consumed: after
   the stored id, or for a rebase any other id. */
static int id_new(uint32_t op, uint64_t ms, uint64_t seq, const struct cbshm_fleet_log *f)
{
    uint64_t ams = atomic_load_explicit(&f->applied_ms, memory_order_relaxed);
    uint64_t aseq = atomic_load_explicit(&f->applied_seq, memory_order_relaxed);

    return op == CBSHM_FLEET_REBASE ? ms != ams || seq != aseq : id_after(ms, seq, ams, aseq);
}

/* Makes the change `p` describes; writes its event unless the ring got it
   (events_seq moved past p->events_seq: only the change writes events
   while the lock is held). Called with the table lock held. */
static void pending_change(struct cbshm *shm, const struct cbshm_fleet_pending *p, uint64_t now)
{
    struct cbshm_header *h = shm->hdr;

    if (p->rc != 0)
        return;
    if (p->op == CBSHM_FLEET_MODE) {
        (void)cbshm__mode_words(shm, p->slot, (enum cbshm_mode)p->mode, p->until_ns,
                                CBSHM_CAUSE_OPERATOR);
        CBSHM_CRASH_POINT("fleet.changed");
        if (p->from != p->mode &&
            atomic_load_explicit(&h->events_seq, memory_order_relaxed) == p->events_seq)
            cbshm__event(shm, p->slot, CBSHM_EVENT_MODE, p->from, p->mode, CBSHM_CAUSE_OPERATOR,
                         now);
    } else if (p->op == CBSHM_FLEET_RESET) {
        /* The state it ends is the journal's: made again for a dead
           holder, the reset finds the breaker closed by the first. */
        (void)cbshm__reset_words(shm, p->slot, now);
        CBSHM_CRASH_POINT("fleet.changed");
        if (atomic_load_explicit(&h->events_seq, memory_order_relaxed) == p->events_seq)
            cbshm__event(shm, p->slot, CBSHM_EVENT_RESET, p->from, CBSHM_STATE_CLOSED,
                         CBSHM_CAUSE_OPERATOR, now);
    }
}

static void pending_store(struct cbshm *shm, const struct cbshm_fleet_pending *p)
{
    struct cbshm_fleet_log *f = &shm->hdr->fleet;

    atomic_store_explicit(&f->applied_rc, p->rc, memory_order_relaxed);
    atomic_store_explicit(&f->applied_seq, p->seq, memory_order_relaxed);
    atomic_store_explicit(&f->applied_ms, p->ms, memory_order_relaxed);
    CBSHM_CRASH_POINT("fleet.stored");
    shm->hdr->op = CBSHM_OP_NONE;
}

void cbshm__fleet_repair(struct cbshm *shm)
{
    struct cbshm_fleet_log *f = &shm->hdr->fleet;
    struct cbshm_fleet_pending p = f->pending;

    shm->hdr->op = CBSHM_OP_NONE;
    /* Done, or never a command the journal can describe (a scribbled
       one is dropped: nothing is applied from words no agent wrote). */
    if (!id_new(p.op, p.ms, p.seq, f) || p.op > CBSHM_FLEET_REBASE || p.mode > CBSHM_MODE_DISABLED)
        return;
    /* The breaker may be gone (the repair took a half-made slot out of
       use): the command is consumed with the answer it would get now. */
    if (p.rc == 0 && (p.op == CBSHM_FLEET_MODE || p.op == CBSHM_FLEET_RESET)) {
        if (p.slot >= shm->capacity ||
            atomic_load_explicit(&shm->slots[p.slot].in_use, memory_order_relaxed) == 0 ||
            CBSHM_CTL_GEN(atomic_load_explicit(&shm->slots[p.slot].ctl, memory_order_relaxed)) !=
                p.generation)
            p.rc = CBSHM_ENOBREAKER;
    }
    pending_change(shm, &p, cbshm__now());
    pending_store(shm, &p);
}

static int locked_apply(struct cbshm *shm, const struct cbshm_fleet_command *cmd, int rc0)
{
    struct cbshm_header *h = shm->hdr;
    struct cbshm_fleet_log *f = &h->fleet;
    struct cbshm_fleet_pending p;
    uint32_t idx = 0;
    uint64_t ctl = 0, now = cbshm__now();
    int rc = rc0;

    if (!id_new(cmd->op, cmd->id.ms, cmd->id.seq, f))
        return CBSHM_EALREADY;
    if (rc == 0 && (cmd->op == CBSHM_FLEET_MODE || cmd->op == CBSHM_FLEET_RESET) &&
        (rc = cbshm__check_breaker_name(cmd->name)) == 0 &&
        (rc = cbshm__table_find(shm, cmd->name, &idx)) == 0) {
        /* A timed mode that ended is ended first, with its own event, as
           every writer does; the command changes what is then in force. */
        (void)cbshm__mode_expire(shm, idx, now);
        ctl = atomic_load_explicit(&shm->slots[idx].ctl, memory_order_relaxed);
    }
    /* A table that cannot be read (a scribbled index) answers nothing
       about the breaker: the command is not consumed, and the agent tries
       it again once cbctl apply has rebuilt the segment. */
    if (rc == CBSHM_ECORRUPT)
        return rc;
    memset(&p, 0, sizeof p);
    p.ms = cmd->id.ms;
    p.seq = cmd->id.seq;
    p.op = (uint32_t)cmd->op;
    p.slot = idx;
    p.generation = CBSHM_CTL_GEN(ctl);
    p.mode = (uint32_t)cmd->mode;
    p.until_ns = cmd->op == CBSHM_FLEET_MODE && cmd->duration_ms != 0
                     ? now + cmd->duration_ms * 1000000u
                     : 0;
    p.events_seq = atomic_load_explicit(&h->events_seq, memory_order_relaxed);
    p.from = cmd->op == CBSHM_FLEET_RESET ? CBSHM_CTL_STATE(ctl) : CBSHM_CTL_MODE(ctl);
    p.rc = rc;
    f->pending = p;
    h->op_slot = idx;
    h->op = CBSHM_OP_FLEET;
    CBSHM_CRASH_POINT("fleet.journalled");
    pending_change(shm, &p, now);
    pending_store(shm, &p);
    return rc;
}

int cbshm_fleet_apply(struct cbshm *shm, const struct cbshm_fleet_command *cmd)
{
    int rc, rc0 = 0;

    if (shm == NULL || cmd == NULL || (unsigned)cmd->op > CBSHM_FLEET_REBASE ||
        (cmd->id.ms == 0 && cmd->id.seq == 0))
        return CBSHM_EINVAL;
    /* A bad command is consumed with its error: the agent acknowledges it
       so, and it is not read again. */
    if (cmd->op == CBSHM_FLEET_MODE &&
        ((unsigned)cmd->mode > CBSHM_MODE_DISABLED || cmd->duration_ms > CBSHM__MODE_MAX_MS ||
         (cmd->duration_ms != 0 && cmd->mode == CBSHM_MODE_NORMAL)))
        rc0 = CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if (CBSHM__READ_ONLY(shm))
        return CBSHM_EPERM;
    if ((rc = cbshm__lock(shm)) != 0)
        return rc;
    rc = locked_apply(shm, cmd, rc0);
    cbshm__unlock(shm);
    return rc;
}

struct applied_copy {
    struct cbshm_fleet_id id;
    int rc;
};

static int copy_applied(struct cbshm *shm, void *ctx)
{
    struct applied_copy *a = ctx;
    const struct cbshm_fleet_log *f = &shm->hdr->fleet;

    a->id.ms = atomic_load_explicit(&f->applied_ms, memory_order_relaxed);
    a->id.seq = atomic_load_explicit(&f->applied_seq, memory_order_relaxed);
    a->rc = atomic_load_explicit(&f->applied_rc, memory_order_relaxed);
    return 0;
}

int cbshm_fleet_applied(struct cbshm *shm, struct cbshm_fleet_id *id, int *result)
{
    struct applied_copy a;
    int rc;

    if (shm == NULL || id == NULL)
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if (CBSHM__READ_ONLY(shm)) {
        rc = cbshm__observe(shm, copy_applied, &a);
    } else if ((rc = cbshm__lock(shm)) == 0) {
        copy_applied(shm, &a);
        cbshm__unlock(shm);
    }
    if (rc != 0)
        return rc;
    *id = a.id;
    if (result != NULL)
        *result = a.rc;
    return 0;
}

int cbshm_fleet_force(struct cbshm *shm, const char *name, int open, uint64_t lease_ms)
{
    struct cbshm_slot *sl;
    uint64_t now;
    uint32_t idx;
    unsigned mode, cause;
    int rc;

    if (shm == NULL || (open && (lease_ms < 1 || lease_ms > CBSHM__MODE_MAX_MS)))
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if (CBSHM__READ_ONLY(shm))
        return CBSHM_EPERM;
    if ((rc = cbshm__check_breaker_name(name)) != 0)
        return rc;
    if ((rc = cbshm__lock(shm)) != 0)
        return rc;
    /* Read once the lock is held: a lease that ran out while the lock was
       awaited has ended, and is not extended from before it did. */
    now = cbshm__now();
    if ((rc = cbshm__table_find(shm, name, &idx)) != 0)
        goto out;
    sl = &shm->slots[idx];
    (void)cbshm__mode_expire(shm, idx, now);
    mode = CBSHM_CTL_MODE(atomic_load_explicit(&sl->ctl, memory_order_relaxed));
    cause = atomic_load_explicit(&sl->mode_cause, memory_order_relaxed);
    if (mode == CBSHM_MODE_FORCED_OPEN && cause == CBSHM_CAUSE_FLEET) {
        if (open)
            atomic_store_explicit(&sl->mode_until_ns, now + lease_ms * 1000000u,
                                  memory_order_relaxed);
        else
            cbshm__mode_change(shm, idx, CBSHM_MODE_NORMAL, 0, CBSHM_CAUSE_FLEET, now);
    } else if (open) {
        if (mode == CBSHM_MODE_NORMAL)
            cbshm__mode_change(shm, idx, CBSHM_MODE_FORCED_OPEN, now + lease_ms * 1000000u,
                               CBSHM_CAUSE_FLEET, now);
        else
            rc = CBSHM_EBUSY;
    }
out:
    cbshm__unlock(shm);
    return rc;
}

int cbshm_fleet_status_get(struct cbshm *shm, struct cbshm_fleet_status *out)
{
    const struct cbshm_fleet_log *f;
    int rc;

    if (shm == NULL || out == NULL)
        return CBSHM_EINVAL;
    /* The segment under the name now, as for every other call: cbctl
       reads the status of the one that replaced a destroyed one. */
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    f = &shm->hdr->fleet;
    memset(out, 0, sizeof *out);
    out->agent_pid = atomic_load_explicit(&f->agent_pid, memory_order_relaxed);
    out->connected = atomic_load_explicit(&f->connected, memory_order_relaxed) != 0;
    out->contact_wall_ns = atomic_load_explicit(&f->contact_wall_ns, memory_order_relaxed);
    out->heartbeat_wall_ns = atomic_load_explicit(&f->heartbeat_wall_ns, memory_order_relaxed);
    out->commands_applied = atomic_load_explicit(&f->commands_applied, memory_order_relaxed);
    out->commands_failed = atomic_load_explicit(&f->commands_failed, memory_order_relaxed);
    out->lag_ms = atomic_load_explicit(&f->lag_ms, memory_order_relaxed);
    return 0;
}

int cbshm_fleet_status_set(struct cbshm *shm, const struct cbshm_fleet_status *in)
{
    struct cbshm_fleet_log *f;
    int rc;

    if (shm == NULL || in == NULL)
        return CBSHM_EINVAL;
    if ((shm = cbshm__live(shm, &rc)) == NULL)
        return rc;
    if (CBSHM__READ_ONLY(shm))
        return CBSHM_EPERM;
    f = &shm->hdr->fleet;
    atomic_store_explicit(&f->agent_pid, in->agent_pid, memory_order_relaxed);
    atomic_store_explicit(&f->connected, in->connected != 0, memory_order_relaxed);
    atomic_store_explicit(&f->contact_wall_ns, in->contact_wall_ns, memory_order_relaxed);
    atomic_store_explicit(&f->heartbeat_wall_ns, in->heartbeat_wall_ns, memory_order_relaxed);
    atomic_store_explicit(&f->commands_applied, in->commands_applied, memory_order_relaxed);
    atomic_store_explicit(&f->commands_failed, in->commands_failed, memory_order_relaxed);
    atomic_store_explicit(&f->lag_ms, in->lag_ms, memory_order_relaxed);
    return 0;
}
