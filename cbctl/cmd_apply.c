/*
 * cbctl apply -f FILE [--dry-run]: create the segment from YAML or
 * reconcile it in place, printing each change; "no changes" otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbctl.h"

struct apply_out {
    const char *verb_prefix; /* "" or "would " */
    const struct cbshm_config *cfg;
};

static void diff_field(const char *name, uint64_t a, uint64_t b, int is_ms, int *first)
{
    char x[32], y[32];

    if (a == b)
        return;
    if (is_ms) {
        cbctl_format_ms(x, sizeof x, a);
        cbctl_format_ms(y, sizeof y, b);
    } else {
        snprintf(x, sizeof x, "%llu", (unsigned long long)a);
        snprintf(y, sizeof y, "%llu", (unsigned long long)b);
    }
    printf("%s%s %s -> %s", *first ? ": " : ", ", name, x, y);
    *first = 0;
}

static void diff_word(const char *name, const char *a, const char *b, int *first)
{
    if (strcmp(a, b) == 0)
        return;
    printf("%s%s %s -> %s", *first ? ": " : ", ", name, a, b);
    *first = 0;
}

/* Every setting that differs, as "name old -> new". */
static void diff_settings(const struct cbshm_settings *a, const struct cbshm_settings *b,
                          int *first)
{
    diff_word("policy", cbctl_policy_name(a->policy), cbctl_policy_name(b->policy), first);
    diff_field("failure_threshold", a->failure_threshold, b->failure_threshold, 0, first);
    diff_field("failure_rate", a->failure_rate, b->failure_rate, 0, first);
    diff_field("success_threshold", a->success_threshold, b->success_threshold, 0, first);
    diff_field("half_open_max_calls", a->half_open_max_calls, b->half_open_max_calls, 0, first);
    diff_field("open_timeout", a->open_timeout_ms, b->open_timeout_ms, 1, first);
    diff_field("probe_timeout", a->probe_timeout_ms, b->probe_timeout_ms, 1, first);
    diff_word("window_type", cbctl_window_name(a->window_type), cbctl_window_name(b->window_type),
              first);
    diff_field("window_size", a->window_size, b->window_size, 0, first);
    diff_field("window_duration", a->window_duration_ms, b->window_duration_ms, 1, first);
    diff_field("window_buckets", a->window_buckets, b->window_buckets, 0, first);
    diff_field("minimum_calls", a->minimum_calls, b->minimum_calls, 0, first);
    diff_field("slow_call_duration", a->slow_call_duration_ms, b->slow_call_duration_ms, 1, first);
    diff_field("slow_call_rate", a->slow_call_rate, b->slow_call_rate, 0, first);
    diff_field("backoff_multiplier_percent", a->backoff_multiplier, b->backoff_multiplier, 0,
               first);
    diff_field("open_timeout_max", a->open_timeout_max_ms, b->open_timeout_max_ms, 1, first);
    diff_field("open_timeout_jitter", a->open_timeout_jitter, b->open_timeout_jitter, 0, first);
    diff_field("min_failing_workers", a->min_failing_workers, b->min_failing_workers, 0, first);
}

static void on_change(void *ctx, const struct cbshm_change *c)
{
    const struct apply_out *o = ctx;
    int first = 1;

    switch (c->kind) {
    case CBSHM_CHANGE_CREATED_SEGMENT:
        printf("%screate segment %s (capacity %u, mode %04o)\n", o->verb_prefix[0] ? "would " : "",
               c->name, o->cfg->capacity, o->cfg->mode);
        break;
    case CBSHM_CHANGE_ADDED:
        printf("%sadd breaker %s\n", o->verb_prefix, c->name);
        break;
    case CBSHM_CHANGE_REMOVED:
        printf("%sremove breaker %s\n", o->verb_prefix, c->name);
        break;
    case CBSHM_CHANGE_UPDATED:
        printf("%supdate breaker %s", o->verb_prefix, c->name);
        diff_settings(&c->before, &c->after, &first);
        putchar('\n');
        break;
    }
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag diag;
    const char *file = args->file, *segment;
    unsigned flags = args->dry_run ? CBSHM_APPLY_DRY_RUN : 0, changes = 0;
    struct apply_out out;
    int rc;

    (void)shm; /* apply creates the segment itself, through the library */
    rc = cbshm_config_load_file(file, &cfg, &diag);
    if (rc == CBSHM_ECONFIG) {
        fprintf(stderr, "%s:%u:%u: %s%s%s\n", diag.file, diag.line, diag.column,
                diag.key[0] ? diag.key : "", diag.key[0] ? ": " : "", diag.message);
        return CBCTL_CONFIG;
    }
    if (rc != 0) {
        cbctl_err("apply: %s: %s", file, diag.message[0] ? diag.message : cbshm_strerror(rc));
        return CBCTL_FAILED;
    }
    /* --segment, then $CBSHM_SEGMENT, then the file's `segment`, then the default. */
    if (ctl->segment != NULL)
        segment = ctl->segment;
    else if (getenv("CBSHM_SEGMENT") != NULL && getenv("CBSHM_SEGMENT")[0] != '\0')
        segment = getenv("CBSHM_SEGMENT");
    else if (cfg->segment[0] != '\0')
        segment = cfg->segment;
    else
        segment = cbshm_default_segment();

    out.verb_prefix = (flags & CBSHM_APPLY_DRY_RUN) ? "would " : "";
    out.cfg = cfg;
    rc = cbshm_apply(cfg, segment, flags, on_change, &out, &changes);
    if (rc != 0) {
        if (rc == CBSHM_EFULL)
            cbctl_err("apply: segment %s: %zu breakers do not fit its capacity; "
                      "destroy it and apply again to resize",
                      segment, cfg->n_breakers);
        else
            cbctl_segment_error("apply", segment, rc);
        cbshm_config_free(cfg);
        return CBCTL_FAILED;
    }
    if (changes == 0)
        printf("segment %s: no changes\n", segment);
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
