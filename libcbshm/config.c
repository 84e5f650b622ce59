/*
 * YAML configuration -> struct cbshm_config, with libyaml's document API.
 * Every rejection names the file, line, column and key path
 * ("breakers[2].open_timeout"). libyaml's "1 means success" stays here.
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "internal.h"

#define THRESHOLD_MAX   1000000u
#define DURATION_MAX_MS (24ull * 3600 * 1000) /* one day */

struct parse {
    yaml_document_t *doc;
    struct cbshm_diag *diag;
    const char *label;
};

__attribute__((format(printf, 4, 5))) static int fail(struct parse *p, const yaml_node_t *at,
                                                      const char *key, const char *fmt, ...)
{
    va_list ap;

    if (p->diag != NULL) {
        snprintf(p->diag->file, sizeof p->diag->file, "%s", p->label);
        p->diag->line = at != NULL ? (unsigned)at->start_mark.line + 1 : 1;
        p->diag->column = at != NULL ? (unsigned)at->start_mark.column + 1 : 1;
        snprintf(p->diag->key, sizeof p->diag->key, "%s", key != NULL ? key : "");
        va_start(ap, fmt);
        vsnprintf(p->diag->message, sizeof p->diag->message, fmt, ap);
        va_end(ap);
    }
    return CBSHM_ECONFIG;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int want_scalar(struct parse *p, const yaml_node_t *n, const char *key, const char *what)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail(p, n, key, "expected %s, got %s", what, node_kind(n));
    return 0;
}

static int parse_uint(struct parse *p, const yaml_node_t *n, const char *key, uint64_t lo,
                      uint64_t hi, uint64_t *out)
{
    const char *s;
    uint64_t v = 0;
    int rc;

    if ((rc = want_scalar(p, n, key, "an integer")) != 0)
        return rc;
    s = scalar(n);
    if (*s == '\0')
        return fail(p, n, key, "expected an integer, got an empty value");
    for (const char *c = s; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return fail(p, n, key, "expected an integer, got '%s'", s);
        if (v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
            return fail(p, n, key, "value '%s' is out of range (%llu..%llu)", s,
                        (unsigned long long)lo, (unsigned long long)hi);
        v = v * 10 + (uint64_t)(*c - '0');
    }
    if (v < lo || v > hi)
        return fail(p, n, key, "value %llu is out of range (%llu..%llu)", (unsigned long long)v,
                    (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return 0;
}

/* "250ms", "5s", "2m", "1h" -> milliseconds. */
static int parse_duration(struct parse *p, const yaml_node_t *n, const char *key, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *s, *u;
    uint64_t v = 0;
    int rc;

    if ((rc = want_scalar(p, n, key, "a duration")) != 0)
        return rc;
    s = scalar(n);
    /* Saturate instead of overflowing; anything past the cap is rejected. */
    for (u = s; *u >= '0' && *u <= '9'; u++)
        v = v > DURATION_MAX_MS ? v : v * 10 + (uint64_t)(*u - '0');
    if (u == s)
        return fail(p, n, key, "expected a duration such as 250ms, 5s, 2m or 1h, got '%s'", s);
    if (*u == '\0')
        return fail(p, n, key, "duration '%s' needs a unit (ms, s, m or h)", s);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(u, units[i].unit) == 0) {
            if (v > DURATION_MAX_MS / units[i].ms || v * units[i].ms == 0)
                return fail(p, n, key, "duration '%s' is out of range (1ms..24h)", s);
            *out = v * units[i].ms;
            return 0;
        }
    }
    return fail(p, n, key, "bad unit '%s' in duration '%s' (use ms, s, m or h)", u, s);
}

/* Calls each pair of mapping `n`, rejecting non-scalar and duplicate keys. */
typedef int (*pair_fn)(struct parse *p, const char *path, const yaml_node_t *k,
                       const yaml_node_t *v, void *ctx);

static int each_pair(struct parse *p, const yaml_node_t *n, const char *path, pair_fn fn, void *ctx)
{
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
        const yaml_node_t *v = yaml_document_get_node(p->doc, a->value);
        int rc;

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
            return fail(p, k, path, "keys must be plain names");
        for (yaml_node_pair_t *b = n->data.mapping.pairs.start; b < a; b++) {
            const yaml_node_t *k2 = yaml_document_get_node(p->doc, b->key);
            if (k2 != NULL && k2->type == YAML_SCALAR_NODE && strcmp(scalar(k2), scalar(k)) == 0)
                return fail(p, k, scalar(k), "duplicate key '%s'", scalar(k));
        }
        if ((rc = fn(p, path, k, v, ctx)) != 0)
            return rc;
    }
    return 0;
}

static void join(char *buf, size_t size, const char *path, const char *key)
{
    snprintf(buf, size, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
}

/* The keys of a breaker's settings, in `defaults` and in each breaker. */
enum key {
    K_FAILURE_THRESHOLD,
    K_SUCCESS_THRESHOLD,
    K_HALF_OPEN_MAX_CALLS,
    K_OPEN_TIMEOUT,
    K_PROBE_TIMEOUT,
    K_POLICY,
    K_FAILURE_RATE,
    K_MINIMUM_CALLS,
    K_WINDOW_TYPE,
    K_WINDOW_SIZE,
    K_WINDOW_DURATION,
    K_WINDOW_BUCKETS,
    K_SLOW_CALL_DURATION,
    K_SLOW_CALL_RATE,
    K_BACKOFF_MULTIPLIER,
    K_OPEN_TIMEOUT_MAX,
    K_OPEN_TIMEOUT_JITTER,
    K_MIN_FAILING_WORKERS,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    "failure_threshold",  "success_threshold",   "half_open_max_calls",
    "open_timeout",       "probe_timeout",       "policy",
    "failure_rate",       "minimum_calls",       "window_type",
    "window_size",        "window_duration",     "window_buckets",
    "slow_call_duration", "slow_call_rate",      "backoff_multiplier",
    "open_timeout_max",   "open_timeout_jitter", "min_failing_workers",
};

/* The keys one mapping set explicitly, and where. */
struct keyset {
    const yaml_node_t *at[K_COUNT];
};

static int parse_word(struct parse *p, const yaml_node_t *n, const char *key, const char *a,
                      const char *b, uint32_t *out)
{
    int rc;

    if ((rc = want_scalar(p, n, key, "a word")) != 0)
        return rc;
    if (strcmp(scalar(n), a) == 0)
        *out = 0;
    else if (strcmp(scalar(n), b) == 0)
        *out = 1;
    else
        return fail(p, n, key, "expected %s or %s, got '%.80s'", a, b, scalar(n));
    return 0;
}

/* "50" or "50%". */
static int parse_percent(struct parse *p, const yaml_node_t *n, const char *key, uint32_t lo,
                         uint32_t *out)
{
    char digits[32];
    yaml_node_t copy;
    size_t len;
    uint64_t x;
    int rc;

    if ((rc = want_scalar(p, n, key, "a percentage")) != 0)
        return rc;
    len = strlen(scalar(n));
    if (len > 0 && len < sizeof digits && scalar(n)[len - 1] == '%') {
        memcpy(digits, scalar(n), len - 1);
        digits[len - 1] = '\0';
        copy = *n;
        copy.data.scalar.value = (yaml_char_t *)digits;
        n = &copy;
    }
    if ((rc = parse_uint(p, n, key, lo, 100, &x)) == 0)
        *out = (uint32_t)x;
    return rc;
}

/* "2", "1.5", "1.25" -> hundredths, 1..100. */
static int parse_multiplier(struct parse *p, const yaml_node_t *n, const char *key, uint32_t *out)
{
    const char *s, *c;
    uint64_t whole = 0, frac = 0;
    int places = 0, rc;

    if ((rc = want_scalar(p, n, key, "a number such as 2 or 1.5")) != 0)
        return rc;
    s = scalar(n);
    for (c = s; *c >= '0' && *c <= '9' && whole <= 1000; c++)
        whole = whole * 10 + (uint64_t)(*c - '0');
    if (c == s)
        return fail(p, n, key, "expected a number such as 2 or 1.5, got '%.80s'", s);
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++, places++)
            if (places < 2)
                frac = frac * 10 + (uint64_t)(*c - '0');
        if (places == 0)
            return fail(p, n, key, "expected a number such as 2 or 1.5, got '%.80s'", s);
        if (places > 2)
            return fail(p, n, key, "'%.80s' has more than two decimals", s);
        if (places == 1)
            frac *= 10;
    }
    if (*c != '\0')
        return fail(p, n, key, "expected a number such as 2 or 1.5, got '%.80s'", s);
    if (whole * 100 + frac < 100 || whole * 100 + frac > 10000)
        return fail(p, n, key, "value %.80s is out of range (1..100)", s);
    *out = (uint32_t)(whole * 100 + frac);
    return 0;
}

/* One key of a breaker's settings; 1 when the key is not a setting. */
static int setting(struct parse *p, const char *key, const yaml_node_t *v, struct cbshm_settings *s,
                   const char *name, struct keyset *set)
{
    enum key k;
    uint64_t x = 0;
    int rc;

    for (k = 0; k < K_COUNT && strcmp(name, key_names[k]) != 0; k++)
        ;
    switch (k) {
    case K_FAILURE_THRESHOLD:
        if ((rc = parse_uint(p, v, key, 1, THRESHOLD_MAX, &x)) == 0)
            s->failure_threshold = (uint32_t)x;
        break;
    case K_SUCCESS_THRESHOLD:
        if ((rc = parse_uint(p, v, key, 1, THRESHOLD_MAX, &x)) == 0)
            s->success_threshold = (uint32_t)x;
        break;
    case K_HALF_OPEN_MAX_CALLS:
        if ((rc = parse_uint(p, v, key, 1, CBSHM_PROBES_MAX, &x)) == 0)
            s->half_open_max_calls = (uint32_t)x;
        break;
    case K_OPEN_TIMEOUT:
        rc = parse_duration(p, v, key, &s->open_timeout_ms);
        break;
    case K_PROBE_TIMEOUT:
        rc = parse_duration(p, v, key, &s->probe_timeout_ms);
        break;
    case K_POLICY:
        rc = parse_word(p, v, key, "consecutive", "rate", &s->policy);
        break;
    case K_FAILURE_RATE:
        rc = parse_percent(p, v, key, 1, &s->failure_rate);
        break;
    case K_MINIMUM_CALLS:
        if ((rc = parse_uint(p, v, key, 1, THRESHOLD_MAX, &x)) == 0)
            s->minimum_calls = (uint32_t)x;
        break;
    case K_WINDOW_TYPE:
        rc = parse_word(p, v, key, "count", "time", &s->window_type);
        break;
    case K_WINDOW_SIZE:
        if ((rc = parse_uint(p, v, key, 1, THRESHOLD_MAX, &x)) == 0)
            s->window_size = (uint32_t)x;
        break;
    case K_WINDOW_DURATION:
        rc = parse_duration(p, v, key, &s->window_duration_ms);
        break;
    case K_WINDOW_BUCKETS:
        if ((rc = parse_uint(p, v, key, 1, CBSHM_WINDOW_BUCKETS_MAX, &x)) == 0)
            s->window_buckets = (uint32_t)x;
        break;
    case K_SLOW_CALL_DURATION:
        rc = parse_duration(p, v, key, &s->slow_call_duration_ms);
        break;
    case K_SLOW_CALL_RATE:
        rc = parse_percent(p, v, key, 1, &s->slow_call_rate);
        break;
    case K_BACKOFF_MULTIPLIER:
        rc = parse_multiplier(p, v, key, &s->backoff_multiplier);
        break;
    case K_OPEN_TIMEOUT_MAX:
        rc = parse_duration(p, v, key, &s->open_timeout_max_ms);
        break;
    case K_OPEN_TIMEOUT_JITTER:
        rc = parse_percent(p, v, key, 0, &s->open_timeout_jitter);
        break;
    case K_MIN_FAILING_WORKERS:
        if ((rc = parse_uint(p, v, key, 0, CBSHM_STRIPES, &x)) == 0)
            s->min_failing_workers = (uint32_t)x;
        break;
    default:
        return 1;
    }
    if (rc == 0)
        set->at[k] = v;
    return rc;
}

/*
 * Settings that contradict each other. Only keys this mapping set itself
 * are blamed, at their own position: a breaker is not told off for what
 * it inherited from `defaults`, which is checked on its own.
 */
static int check_combination(struct parse *p, const char *path, const struct cbshm_settings *s,
                             const struct keyset *set)
{
    const yaml_node_t *const *at = set->at;
    char key[64];

#define KEY(k) (join(key, sizeof key, path, key_names[k]), key)
    if (at[K_WINDOW_SIZE] != NULL && s->window_type == CBSHM_WINDOW_TIME)
        return fail(p, at[K_WINDOW_SIZE], KEY(K_WINDOW_SIZE),
                    "window_size is for window_type: count; this window is time "
                    "(use window_duration)");
    if (at[K_WINDOW_DURATION] != NULL && s->window_type == CBSHM_WINDOW_COUNT)
        return fail(p, at[K_WINDOW_DURATION], KEY(K_WINDOW_DURATION),
                    "window_duration is for window_type: time; this window is count "
                    "(use window_size)");
    if (at[K_WINDOW_BUCKETS] != NULL && s->window_type == CBSHM_WINDOW_COUNT)
        return fail(p, at[K_WINDOW_BUCKETS], KEY(K_WINDOW_BUCKETS),
                    "window_buckets is for window_type: time; this window is count");
    if (at[K_FAILURE_RATE] != NULL && s->policy == CBSHM_POLICY_CONSECUTIVE)
        return fail(p, at[K_FAILURE_RATE], KEY(K_FAILURE_RATE),
                    "failure_rate needs policy: rate (this breaker's policy is consecutive)");
    if (at[K_FAILURE_THRESHOLD] != NULL && s->policy == CBSHM_POLICY_RATE)
        return fail(p, at[K_FAILURE_THRESHOLD], KEY(K_FAILURE_THRESHOLD),
                    "failure_threshold is for policy: consecutive; a rate breaker trips on "
                    "failure_rate");
    if (at[K_SLOW_CALL_RATE] != NULL && s->slow_call_duration_ms == 0)
        return fail(p, at[K_SLOW_CALL_RATE], KEY(K_SLOW_CALL_RATE),
                    "slow_call_rate needs slow_call_duration");
    if (s->open_timeout_max_ms < s->open_timeout_ms &&
        (at[K_OPEN_TIMEOUT_MAX] != NULL || at[K_OPEN_TIMEOUT] != NULL)) {
        enum key k = at[K_OPEN_TIMEOUT_MAX] != NULL ? K_OPEN_TIMEOUT_MAX : K_OPEN_TIMEOUT;
        return fail(
            p, at[k], KEY(k), "open_timeout_max (%llums) is shorter than open_timeout (%llums)",
            (unsigned long long)s->open_timeout_max_ms, (unsigned long long)s->open_timeout_ms);
    }
    if (s->window_type == CBSHM_WINDOW_TIME && s->window_duration_ms < s->window_buckets &&
        (at[K_WINDOW_DURATION] != NULL || at[K_WINDOW_BUCKETS] != NULL)) {
        enum key k = at[K_WINDOW_DURATION] != NULL ? K_WINDOW_DURATION : K_WINDOW_BUCKETS;
        return fail(p, at[k], KEY(k),
                    "window_duration %llums cannot hold %u buckets of 1ms or more",
                    (unsigned long long)s->window_duration_ms, s->window_buckets);
    }
    if (s->window_type == CBSHM_WINDOW_COUNT && s->minimum_calls > s->window_size &&
        (at[K_MINIMUM_CALLS] != NULL || at[K_WINDOW_SIZE] != NULL)) {
        enum key k = at[K_MINIMUM_CALLS] != NULL ? K_MINIMUM_CALLS : K_WINDOW_SIZE;
        return fail(p, at[k], KEY(k),
                    "minimum_calls %u exceeds window_size %u: the window could never hold enough "
                    "calls to trip",
                    s->minimum_calls, s->window_size);
    }
#undef KEY
    return 0;
}

struct defaults_ctx {
    struct cbshm_settings *s;
    struct keyset set;
};

static int defaults_pair(struct parse *p, const char *path, const yaml_node_t *k,
                         const yaml_node_t *v, void *ctx)
{
    struct defaults_ctx *d = ctx;
    char key[64];
    int rc;

    join(key, sizeof key, path, scalar(k));
    rc = setting(p, key, v, d->s, scalar(k), &d->set);
    return rc == 1 ? fail(p, k, key, "unknown key '%s'", scalar(k)) : rc;
}

struct breaker_ctx {
    struct cbshm_breaker_config *bc;
    int has_name;
    struct keyset set;
};

static int breaker_pair(struct parse *p, const char *path, const yaml_node_t *k,
                        const yaml_node_t *v, void *ctx)
{
    struct breaker_ctx *b = ctx;
    char key[64];
    int rc;

    join(key, sizeof key, path, scalar(k));
    if (strcmp(scalar(k), "name") == 0) {
        if ((rc = want_scalar(p, v, key, "a breaker name")) != 0)
            return rc;
        if (cbshm__check_breaker_name(scalar(v)) != 0)
            return fail(p, v, key,
                        "invalid breaker name '%.80s' (1..%d bytes of A-Z a-z 0-9 . _ : -)",
                        scalar(v), CBSHM_NAME_MAX);
        strcpy(b->bc->name, scalar(v));
        b->has_name = 1;
        return 0;
    }
    rc = setting(p, key, v, &b->bc->settings, scalar(k), &b->set);
    return rc == 1 ? fail(p, k, key, "unknown key '%s'", scalar(k)) : rc;
}

static int parse_breakers(struct parse *p, const yaml_node_t *seq, const yaml_node_t **names,
                          struct cbshm_config *cfg)
{
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    struct cbshm__nameset seen;
    int rc = 0;

    if (n == 0)
        return 0;
    if ((cfg->breakers = calloc(n, sizeof *cfg->breakers)) == NULL ||
        cbshm__nameset_init(&seen, n) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const yaml_node_t *item = yaml_document_get_node(p->doc, seq->data.sequence.items.start[i]);
        struct breaker_ctx b;
        char path[32];
        long first;

        snprintf(path, sizeof path, "breakers[%zu]", i);
        if (item == NULL || item->type != YAML_MAPPING_NODE) {
            rc = fail(p, item, path, "expected a mapping with a name, got %s",
                      item != NULL ? node_kind(item) : "nothing");
            break;
        }
        memset(&b, 0, sizeof b);
        b.bc = &cfg->breakers[i];
        b.bc->settings = cfg->defaults;
        if ((rc = each_pair(p, item, path, breaker_pair, &b)) != 0)
            break;
        if (!b.has_name) {
            rc = fail(p, item, path, "breaker has no name");
            break;
        }
        if ((rc = check_combination(p, path, &b.bc->settings, &b.set)) != 0)
            break;
        if ((first = cbshm__nameset_add(&seen, b.bc->name, (long)i)) >= 0) {
            rc = fail(p, names[i], path, "duplicate breaker name '%s' (first at line %u)",
                      b.bc->name, (unsigned)names[first]->start_mark.line + 1);
            break;
        }
        cfg->n_breakers++;
    }
    cbshm__nameset_free(&seen);
    return rc;
}

/* Finds the node of each breaker's name, for duplicate reports. */
static const yaml_node_t *name_node(struct parse *p, const yaml_node_t *item)
{
    if (item == NULL || item->type != YAML_MAPPING_NODE)
        return item;
    for (yaml_node_pair_t *a = item->data.mapping.pairs.start; a < item->data.mapping.pairs.top;
         a++) {
        const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp(scalar(k), "name") == 0)
            return yaml_document_get_node(p->doc, a->value);
    }
    return item;
}

static int parse_mode(struct parse *p, const yaml_node_t *v, uint32_t *out)
{
    const char *s;
    uint32_t m = 0;
    size_t n;
    int rc;

    if ((rc = want_scalar(p, v, "mode", "an octal mode such as \"0600\"")) != 0)
        return rc;
    s = scalar(v);
    n = strlen(s);
    if (n < 3 || n > 4)
        return fail(p, v, "mode", "expected an octal mode such as \"0600\", got '%s'", s);
    for (const char *c = s; *c != '\0'; c++) {
        if (*c < '0' || *c > '7')
            return fail(p, v, "mode", "expected an octal mode such as \"0600\", got '%s'", s);
        m = m * 8 + (uint32_t)(*c - '0');
    }
    if (m > 0777)
        return fail(p, v, "mode", "mode '%s' has bits beyond 0777", s);
    if ((m & 0600) != 0600)
        return fail(p, v, "mode", "mode '%s' must let the owner read and write", s);
    if (m & 0002)
        return fail(p, v, "mode", "mode '%s' is writable by others; refusing", s);
    *out = m;
    return 0;
}

static int parse_group(struct parse *p, const yaml_node_t *v, uint32_t *gid)
{
    const char *s;
    struct group *g;
    uint64_t x;
    int rc;

    if ((rc = want_scalar(p, v, "group", "a group name or number")) != 0)
        return rc;
    s = scalar(v);
    if (s[0] >= '0' && s[0] <= '9') {
        if ((rc = parse_uint(p, v, "group", 0, UINT32_MAX - 1, &x)) != 0)
            return rc;
        *gid = (uint32_t)x;
        return 0;
    }
    if ((g = getgrnam(s)) == NULL)
        return fail(p, v, "group", "no such group '%.80s'", s);
    *gid = (uint32_t)g->gr_gid;
    return 0;
}

struct top_ctx {
    struct cbshm_config *cfg;
    const yaml_node_t *breakers_key, *breakers, *defaults;
};

static int top_pair(struct parse *p, const char *path, const yaml_node_t *k, const yaml_node_t *v,
                    void *ctx)
{
    struct top_ctx *t = ctx;
    const char *key = scalar(k);
    uint64_t x;
    int rc;

    (void)path;
    if (strcmp(key, "segment") == 0) {
        if ((rc = want_scalar(p, v, key, "a segment name")) != 0)
            return rc;
        if (cbshm__check_segment_name(scalar(v)) != 0)
            return fail(p, v, key,
                        "invalid segment name '%.80s' (\"/name\", at most %d bytes, "
                        "no other '/')",
                        scalar(v), CBSHM_SEGMENT_NAME_MAX);
        strcpy(t->cfg->segment, scalar(v));
    } else if (strcmp(key, "capacity") == 0) {
        if ((rc = parse_uint(p, v, key, 1, CBSHM_CAPACITY_MAX, &x)) != 0)
            return rc;
        t->cfg->capacity = (uint32_t)x;
    } else if (strcmp(key, "mode") == 0) {
        return parse_mode(p, v, &t->cfg->mode);
    } else if (strcmp(key, "group") == 0) {
        if ((rc = parse_group(p, v, &t->cfg->gid)) != 0)
            return rc;
        t->cfg->has_group = 1;
    } else if (strcmp(key, "defaults") == 0) {
        if (v->type != YAML_MAPPING_NODE)
            return fail(p, v, key, "expected a mapping, got %s", node_kind(v));
        t->defaults = v;
    } else if (strcmp(key, "breakers") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(p, v, key, "expected a list of breakers, got %s", node_kind(v));
        t->breakers_key = k;
        t->breakers = v;
    } else {
        return fail(p, k, key, "unknown key '%s'", key);
    }
    return 0;
}

static int parse_document(struct parse *p, struct cbshm_config *cfg)
{
    const yaml_node_t *root = yaml_document_get_root_node(p->doc);
    struct top_ctx t = {cfg, NULL, NULL, NULL};
    const yaml_node_t **names;
    size_t n;
    int rc;

    if (root == NULL)
        return fail(p, NULL, "", "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return fail(p, root, "", "expected a mapping at the top, got %s", node_kind(root));
    if ((rc = each_pair(p, root, "", top_pair, &t)) != 0)
        return rc;
    /* defaults first, wherever the file puts them: breakers inherit them. */
    if (t.defaults != NULL) {
        struct defaults_ctx d;
        memset(&d, 0, sizeof d);
        d.s = &cfg->defaults;
        if ((rc = each_pair(p, t.defaults, "defaults", defaults_pair, &d)) != 0 ||
            (rc = check_combination(p, "defaults", &cfg->defaults, &d.set)) != 0)
            return rc;
    }
    if (t.breakers == NULL)
        return 0;
    n = (size_t)(t.breakers->data.sequence.items.top - t.breakers->data.sequence.items.start);
    if (n > cfg->capacity)
        return fail(p, t.breakers_key, "breakers", "%zu breakers exceed capacity %u", n,
                    cfg->capacity);
    if ((names = calloc(n + 1, sizeof *names)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        names[i] =
            name_node(p, yaml_document_get_node(p->doc, t.breakers->data.sequence.items.start[i]));
    rc = parse_breakers(p, t.breakers, names, cfg);
    free(names);
    return rc;
}

int cbshm_config_load_string(const char *yaml, size_t len, const char *label,
                             struct cbshm_config **out, struct cbshm_diag *diag)
{
    struct cbshm_config *cfg;
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    struct parse p = {&doc, diag, label != NULL ? label : "<string>"};
    int rc;

    if (yaml == NULL || out == NULL)
        return CBSHM_EINVAL;
    if (diag != NULL)
        memset(diag, 0, sizeof *diag);
    if ((cfg = calloc(1, sizeof *cfg)) == NULL)
        return -ENOMEM;
    cfg->capacity = 256;
    cfg->mode = 0600;
    cbshm_settings_default(&cfg->defaults);
    if (!yaml_parser_initialize(&parser)) {
        free(cfg);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_node_t at = {0};
        at.start_mark = parser.problem_mark;
        rc = fail(&p, &at, "", "YAML syntax error: %s%s%s",
                  parser.problem != NULL ? parser.problem : "malformed document",
                  parser.context != NULL ? " " : "", parser.context != NULL ? parser.context : "");
        yaml_parser_delete(&parser);
        free(cfg);
        return rc;
    }
    rc = parse_document(&p, cfg);
    if (rc == 0) {
        /* A second document would be silently ignored: refuse it. */
        if (!yaml_parser_load(&parser, &extra)) {
            yaml_node_t at = {0};
            at.start_mark = parser.problem_mark;
            rc = fail(&p, &at, "", "YAML syntax error: %s",
                      parser.problem != NULL ? parser.problem : "malformed document");
        } else {
            if (yaml_document_get_root_node(&extra) != NULL)
                rc = fail(&p, yaml_document_get_root_node(&extra), "",
                          "only one YAML document is allowed");
            yaml_document_delete(&extra);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc != 0) {
        cbshm_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int cbshm_config_load_file(const char *path, struct cbshm_config **out, struct cbshm_diag *diag)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (path == NULL || out == NULL)
        return CBSHM_EINVAL;
    if ((f = fopen(path, "rb")) == NULL) {
        rc = -errno;
        if (diag != NULL) {
            memset(diag, 0, sizeof *diag);
            snprintf(diag->file, sizeof diag->file, "%s", path);
            snprintf(diag->message, sizeof diag->message, "cannot open: %s", strerror(-rc));
        }
        return rc;
    }
    errno = 0;
    for (;;) {
        size_t got;
        if (len == cap) {
            char *nb;
            cap = cap != 0 ? cap * 2 : 4096;
            if (cap > (16u << 20) || (nb = realloc(buf, cap)) == NULL) {
                rc = cap > (16u << 20) ? -EFBIG : -ENOMEM;
                goto out;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        /* read(2)'s own errno, -EISDIR for a directory, rather than a
           made-up -EIO. */
        rc = errno != 0 ? -errno : -EIO;
        goto out;
    }
    rc = cbshm_config_load_string(buf, len, path, out, diag);
out:
    if (rc < 0 && rc != CBSHM_ECONFIG && diag != NULL) {
        snprintf(diag->file, sizeof diag->file, "%s", path);
        snprintf(diag->message, sizeof diag->message, "cannot read: %s", strerror(-rc));
    }
    fclose(f);
    free(buf);
    return rc;
}

void cbshm_config_free(struct cbshm_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->breakers);
    free(cfg);
}
