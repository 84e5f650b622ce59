/* SPDX-License-Identifier: MIT */
/*
 * cbctl apply -f FILE [--dry-run]: create the segment from YAML or
 * reconcile it in place, printing each change; "no changes" otherwise.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbctl.h"

struct apply_out {
    const char *verb_prefix; /* "" or "would " */
    const struct cbshm_config *cfg;
};

/* Every setting that differs, as "key old -> new" in the YAML's words. */
static void diff_settings(const struct cbshm_settings *a, const struct cbshm_settings *b,
                          int *first)
{
    const struct cbshm_setting *d;
    char x[32], y[32];

    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
        uint64_t va = cbshm_setting_get(a, d), vb = cbshm_setting_get(b, d);
        if (va == vb)
            continue;
        cbshm_setting_format(d, va, x, sizeof x);
        cbshm_setting_format(d, vb, y, sizeof y);
        printf("%s%s %s -> %s", *first ? ": " : ", ", d->key, x, y);
        *first = 0;
    }
}

static void on_change(void *ctx, const struct cbshm_change *c)
{
    const struct apply_out *o = ctx;
    char buf[4 * CBSHM_SEGMENT_NAME_MAX + 4];
    /* A removed breaker's name was read from the segment. */
    const char *name = cbctl_safe(c->name, buf, sizeof buf);
    int first = 1;

    switch (c->kind) {
    case CBSHM_CHANGE_CREATED_SEGMENT:
        printf("%screate segment %s (capacity %u, mode %04o)\n", o->verb_prefix[0] ? "would " : "",
               name, o->cfg->capacity, o->cfg->mode);
        break;
    case CBSHM_CHANGE_REPLACED_SEGMENT:
        printf("%sreplace segment %s: its table lock is unusable (scribbled, or beyond repair); "
               "every breaker's state and counts start over\n",
               o->verb_prefix, name);
        break;
    case CBSHM_CHANGE_ADDED:
        printf("%sadd breaker %s\n", o->verb_prefix, name);
        break;
    case CBSHM_CHANGE_REMOVED:
        printf("%sremove breaker %s\n", o->verb_prefix, name);
        break;
    case CBSHM_CHANGE_UPDATED:
        printf("%supdate breaker %s", o->verb_prefix, name);
        diff_settings(&c->before, &c->after, &first);
        putchar('\n');
        break;
    }
}

/* Root applying for `owner:` becomes that user, with `group:` (or the
   user's own group) as its only group, so it may give the file to it. */
static int become_owner(const struct cbshm_config *cfg)
{
    struct passwd *pw = getpwuid((uid_t)cfg->uid);
    unsigned gid = cfg->has_group ? cfg->gid : pw != NULL ? (unsigned)pw->pw_gid : cfg->uid;

    return cbctl_become("apply", cfg->uid, gid, cfg->has_group);
}

/* A segment another user made (a squat) is never adopted: said before
   switching users, while its owner can still be seen. */
static int squatted(const char *segment, const struct cbshm_config *cfg)
{
    unsigned want = cfg->has_owner ? cfg->uid : (unsigned)geteuid(), uid, gid;
    char has[64], wants[64];

    if (cbctl_segment_owner(segment, &uid, &gid) != 0 || uid == want)
        return 0;
    cbctl_err("apply: segment %s belongs to %s, not to %s%s: not adopting it (if it is "
              "stale, `cbctl destroy` as root removes it)",
              segment, cbctl_user_name(uid, has, sizeof has),
              cbctl_user_name(want, wants, sizeof wants),
              cfg->has_owner ? ", the configured owner" : ", who runs apply");
    return 1;
}

/* Why apply would not touch the segment: someone else's, or a mode that
   would let a group of lesser users write what root uses. */
static void refused(const char *segment, const struct cbshm_config *cfg, int rc)
{
    if (squatted(segment, cfg))
        return;
    if (rc == CBSHM_EPERM && geteuid() == 0 && !cfg->has_owner && (cfg->mode & 020))
        cbctl_err("apply: segment %s: mode %04o lets group %u write a segment that root "
                  "would use: set `owner:` to the workers' user",
                  segment, cfg->mode, cfg->gid);
    else
        cbctl_segment_error("apply", segment, rc);
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct cbshm_config *cfg = NULL;
    const char *file = args->file, *segment;
    unsigned flags = args->dry_run ? CBSHM_APPLY_DRY_RUN : 0, changes = 0;
    struct apply_out out;
    int rc;

    (void)shm; /* apply creates the segment itself, through the library */
    if ((rc = cbctl_config_load("apply", file, &cfg)) != CBCTL_CONTINUE)
        return rc;
    segment = cbshm_config_segment(cfg, ctl->segment);
    /* The file is read: from here on, as the segment's owner. */
    if (squatted(segment, cfg) || (cfg->has_owner && (rc = become_owner(cfg)) != CBCTL_CONTINUE)) {
        cbshm_config_free(cfg);
        return CBCTL_FAILED;
    }

    out.verb_prefix = (flags & CBSHM_APPLY_DRY_RUN) ? "would " : "";
    out.cfg = cfg;
    rc = cbshm_apply(cfg, segment, flags, on_change, &out, &changes);
    if (rc != 0) {
        if (rc == CBSHM_EFULL)
            cbctl_err("apply: segment %s: %zu breakers do not fit its capacity; "
                      "destroy it and apply again to resize",
                      segment, cfg->n_breakers);
        else if (rc == CBSHM_EPERM || rc == -EACCES)
            refused(segment, cfg, rc);
        else
            cbctl_segment_error("apply", segment, rc);
        cbshm_config_free(cfg);
        return CBCTL_FAILED;
    }
    if (changes == 0) {
        fputs("segment ", stdout);
        cbctl_put_safe(stdout, segment);
        puts(": no changes");
    }
    cbshm_config_free(cfg);
    return CBCTL_OK;
}

static const struct cbctl_option options[] = {
    CBCTL_STRING("file", 'f', "FILE", file, 1, "the YAML configuration"),
    CBCTL_SWITCH("dry-run", 'n', dry_run, "say what would change, change nothing"),
    CBCTL_OPTIONS_END,
};

const struct cbctl_cmd cbctl_cmd_apply = {
    .name = "apply",
    .summary = "create the segment from YAML, or reconcile it in place",
    .options = options,
    .attach = CBCTL_ATTACH_NONE,
    .names = CBCTL_NAMES_NONE,
    .run = run,
};
