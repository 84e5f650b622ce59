/* SPDX-License-Identifier: MIT */
/*
 * cbshm_apply(): make a segment match a configuration. The segment is a
 * cache of the YAML, so apply can always rebuild it: it creates the
 * segment when missing, and otherwise reconciles it in place under the
 * table lock, keeping the live state (counters, open or half-open) of
 * every breaker that stays, and changing only what differs.
 */
#include <errno.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

struct reporter {
    void (*fn)(void *ctx, const struct cbshm_change *c);
    void *ctx;
    unsigned n;
};

static void report(struct reporter *r, enum cbshm_change_kind kind, const char *name,
                   const struct cbshm_settings *before, const struct cbshm_settings *after)
{
    struct cbshm_change c;

    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.name = name;
    if (before != NULL)
        c.before = *before;
    if (after != NULL)
        c.after = *after;
    r->n++;
    if (r->fn != NULL)
        r->fn(r->ctx, &c);
}

/* A new segment: it was created, and every configured breaker added. */
static void report_creation(struct reporter *r, const char *name, const struct cbshm_config *cfg)
{
    report(r, CBSHM_CHANGE_CREATED_SEGMENT, name, NULL, NULL);
    for (size_t i = 0; i < cfg->n_breakers; i++)
        report(r, CBSHM_CHANGE_ADDED, cfg->breakers[i].name, NULL, &cfg->breakers[i].settings);
}

/* The configuration's breaker names, for finding the ones to remove. */
static int name_set(const struct cbshm_config *cfg, struct cbshm__nameset *names)
{
    if (cbshm__nameset_init(names, cfg->n_breakers) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_breakers; i++)
        cbshm__nameset_add(names, cfg->breakers[i].name, (long)i);
    return 0;
}

/* Called with the table lock held. */
static int reconcile(struct cbshm *shm, const struct cbshm_config *cfg,
                     const struct cbshm__nameset *names, bool dry_run, struct reporter *r)
{
    uint32_t idx;
    bool reindex = false;
    int rc;

    /* Removals come first, so the table ends with exactly the configured
       breakers: refuse before changing anything when they do not fit. */
    if (cfg->n_breakers > shm->capacity)
        return CBSHM_EFULL;

    for (uint32_t i = 0; i < shm->capacity; i++) {
        struct cbshm_slot *sl = &shm->slots[i];
        struct cbshm_settings before;

        if (atomic_load_explicit(&sl->in_use, memory_order_acquire) != 1 ||
            memchr(sl->name, '\0', sizeof sl->name) == NULL ||
            cbshm__nameset_find(names, sl->name) >= 0)
            continue;
        cbshm__slot_settings(sl, &before);
        report(r, CBSHM_CHANGE_REMOVED, sl->name, &before, NULL);
        if (!dry_run) {
            cbshm__table_remove(shm, i);
            CBSHM_CRASH_POINT("apply.removed");
            reindex = true;
        }
    }
    if (reindex)
        cbshm__table_reindex(shm);
    for (size_t i = 0; i < cfg->n_breakers; i++) {
        const struct cbshm_breaker_config *bc = &cfg->breakers[i];
        struct cbshm_settings before;

        if (cbshm__table_find(shm, bc->name, &idx) == 0) {
            cbshm__slot_settings(&shm->slots[idx], &before);
            if (cbshm__settings_equal(&before, &bc->settings))
                continue;
            report(r, CBSHM_CHANGE_UPDATED, bc->name, &before, &bc->settings);
            if (!dry_run) {
                cbshm__slot_store_settings(&shm->slots[idx], &bc->settings, cbshm__now());
                CBSHM_CRASH_POINT("apply.updated");
            }
            continue;
        }
        report(r, CBSHM_CHANGE_ADDED, bc->name, NULL, &bc->settings);
        if (!dry_run && (rc = cbshm__table_add(shm, bc->name, &bc->settings, &idx)) != 0)
            return rc;
    }
    return 0;
}

int cbshm_apply(const struct cbshm_config *cfg, const char *segment, unsigned flags,
                void (*on_change)(void *ctx, const struct cbshm_change *c), void *ctx,
                unsigned *n_changes)
{
    struct reporter r = {on_change, ctx, 0};
    struct cbshm__nameset names = {NULL, NULL, 0};
    bool dry_run = (flags & CBSHM_APPLY_DRY_RUN) != 0, replaced = false;
    struct cbshm *shm = NULL;
    const char *name;
    int rc;

    if (cfg == NULL || (flags & ~CBSHM_APPLY_DRY_RUN) != 0)
        return CBSHM_EINVAL;
    if ((rc = cbshm_config_check(cfg, NULL)) != 0 || (rc = name_set(cfg, &names)) != 0)
        goto out;
    name = cbshm_config_segment(cfg, segment);
    if ((rc = cbshm__check_segment_name(name)) != 0)
        goto out;
    /* The segment belongs to one user, who runs its workers, and apply
       works as that user (cbctl apply, run as root, switches to it): so it
       creates the segment owned by its owner, never adopts one another user
       made (attach refuses it: a squat), and root never ends up with a
       segment that a group of lesser users can write. */
    if ((cfg->has_owner && cfg->uid != (uint32_t)geteuid()) ||
        (geteuid() == 0 && (cfg->mode & S_IWGRP) && cfg->has_group && cfg->gid != 0)) {
        rc = CBSHM_EPERM;
        goto out;
    }

    if (dry_run) {
        rc = cbshm__segment_attach(name, 0, true, &shm);
        if (rc == CBSHM_ENOSEG ||
            (rc == 0 && atomic_load_explicit(&shm->hdr->retired, memory_order_acquire))) {
            report_creation(&r, name, cfg); /* a retired one would be replaced */
            rc = 0;
            goto out;
        }
    } else {
    create:
        for (int attempt = 0;; attempt++) {
            rc = cbshm__segment_create(name, cfg, &shm);
            if (rc == 0) {
                report_creation(&r, name, cfg);
                goto out;
            }
            if (rc != -EEXIST)
                goto out;
            /* Another creator won the race, or the segment was there: wait
               for it to be published, then reconcile. */
            rc = cbshm__segment_attach(name, 0, true, &shm);
            /* Retired but still linked: a destroy died between its two
               steps. Its workers have moved off (or will); finish the
               destroy and create afresh. */
            if (rc == 0 && atomic_load_explicit(&shm->hdr->retired, memory_order_acquire) &&
                attempt == 0) {
                rc = cbshm__unlink_if_same(shm);
                cbshm_close(shm);
                shm = NULL;
                if (rc != 0)
                    goto out;
                continue;
            }
            /* Still unpublished after the wait: its creator died half way.
               Nobody can be attached to it; remove it and create afresh. */
            if (rc != CBSHM_EUNINIT || attempt > 0 || cbshm__segment_unlink_unpublished(name) != 0)
                break;
        }
    }
    if (rc != 0)
        goto out;
    /* The table lock is unusable (scribbled, or beyond repair): no change
       can be made in place, but the segment is a cache of the YAML. Replace
       it as a retired one is replaced - its workers move to the new one -
       and say so, since its live state (states, counts) is dropped. */
    if ((rc = cbshm__lock(shm)) == CBSHM_ECORRUPT && !replaced) {
        replaced = true;
        rc = 0;
        if (!dry_run) {
            cbshm__retire(shm);
            rc = cbshm__unlink_if_same(shm);
        }
        cbshm_close(shm);
        shm = NULL;
        if (rc != 0)
            goto out;
        report(&r, CBSHM_CHANGE_REPLACED_SEGMENT, name, NULL, NULL);
        if (!dry_run)
            goto create;
        report_creation(&r, name, cfg);
        goto out;
    }
    if (rc != 0)
        goto out;
    rc = reconcile(shm, cfg, &names, dry_run, &r);
    cbshm__unlock(shm);
out:
    cbshm__nameset_free(&names);
    cbshm_close(shm);
    if (n_changes != NULL)
        *n_changes = r.n;
    return rc;
}

#ifdef CBSHM_IMAGE_SEAM
int cbshm__reconcile_view(struct cbshm *shm, const struct cbshm_config *cfg, bool dry_run,
                          unsigned *n_changes)
{
    struct reporter r = {NULL, NULL, 0};
    struct cbshm__nameset names = {NULL, NULL, 0};
    int rc;

    if (shm == NULL || cfg == NULL)
        return CBSHM_EINVAL;
    if ((rc = name_set(cfg, &names)) == 0 && (rc = cbshm__lock(shm)) == 0) {
        rc = reconcile(shm, cfg, &names, dry_run, &r);
        cbshm__unlock(shm);
    }
    cbshm__nameset_free(&names);
    if (n_changes != NULL)
        *n_changes = r.n;
    return rc;
}
#endif
