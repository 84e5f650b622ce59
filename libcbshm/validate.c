/* SPDX-License-Identifier: MIT */
/*
 * The one validator of a configuration, shared by the YAML loader and
 * cbshm_apply(): ranges from the settings table, the keys that do not
 * apply to a breaker's policy or window, the contradictions between
 * settings, the segment's mode, names and capacity. The loader adds file,
 * line and column to the same messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_table.h"
#include "internal.h"
#include "settings_table.h"

__attribute__((format(printf, 3, 4))) static int problem(struct cbshm__problem *p, long row,
                                                         const char *fmt, ...)
{
    va_list ap;

    if (p != NULL) {
        p->setting = row;
        va_start(ap, fmt);
        vsnprintf(p->message, sizeof p->message, fmt, ap);
        va_end(ap);
    }
    return CBSHM_ECONFIG;
}

/* A value as a message shows it: the YAML form, a percentage bare. */
static void show(const struct cbshm_setting *d, uint64_t v, char *buf, size_t size)
{
    if (d->type == CBSHM_SETTING_PERCENT || d->type == CBSHM_SETTING_CHOICE)
        snprintf(buf, size, "%llu", (unsigned long long)v);
    else
        cbshm_setting_format(d, v, buf, size);
}

void cbshm__range_text(const struct cbshm_setting *d, char *buf, size_t size)
{
    char lo[32], hi[32];

    if (d->type == CBSHM_SETTING_CHOICE) {
        snprintf(buf, size, "%s or %s", d->choices[0], d->choices[1]);
        return;
    }
    show(d, d->min, lo, sizeof lo);
    show(d, d->max, hi, sizeof hi);
    if (d->type == CBSHM_SETTING_HOSTS)
        snprintf(buf, size, "%s..%s hosts, or a share 1%%..100%%", lo, hi);
    else
        snprintf(buf, size, "%s..%s", lo, hi);
}

/* A host count within the table's range, or a share of 1..100 hundredths
   (no other bit beside CBSHM_FLEET_SHARE). */
static bool hosts_in_range(const struct cbshm_setting *d, uint64_t v)
{
    uint64_t share = v & ~(uint64_t)CBSHM_FLEET_SHARE;

    if ((v & CBSHM_FLEET_SHARE) != 0)
        return share >= 1 && share <= 100;
    return v >= d->min && v <= d->max;
}

int cbshm__range_check(const struct cbshm_setting *d, uint64_t v, struct cbshm__problem *p)
{
    char value[32], range[64];

    if (d->type == CBSHM_SETTING_HOSTS ? hosts_in_range(d, v) : v >= d->min && v <= d->max)
        return 0;
    show(d, v, value, sizeof value);
    cbshm__range_text(d, range, sizeof range);
    if (d->type == CBSHM_SETTING_CHOICE)
        return problem(p, cbshm__setting_index(d), "value %s is not %s", value, range);
    return problem(p, cbshm__setting_index(d), "value %s is out of range (%s)", value, range);
}

/* Why setting d does not apply to s (it does not: the caller asked). */
static int not_for(const struct cbshm_setting *d, const struct cbshm_settings *s,
                   struct cbshm__problem *p)
{
    long row = cbshm__setting_index(d);
    const char *policy = cbshm_setting_at(SET_ROW_policy)->choices[s->policy];
    const char *window = cbshm_setting_at(SET_ROW_window_type)->choices[s->window_type];

    if (d->windows == CBSHM_FOR_COUNT_WINDOW || d->windows == CBSHM_FOR_TIME_WINDOW) {
        if (strcmp(window, d->windows == CBSHM_FOR_COUNT_WINDOW ? "count" : "time") != 0)
            return problem(p, row, "%s is for window_type: %s; this window is %s", d->key,
                           d->windows == CBSHM_FOR_COUNT_WINDOW ? "count" : "time", window);
    }
    if (d->decisions == CBSHM_FOR_FIRST_FAILURE || d->decisions == CBSHM_FOR_RATE_DECISION) {
        const char *want = d->decisions == CBSHM_FOR_RATE_DECISION ? "rate" : "first_failure";
        const char *is =
            cbshm_setting_at(SET_ROW_half_open_decision)->choices[s->half_open_decision];
        if (strcmp(want, is) != 0)
            return problem(p, row, "%s is for half_open_decision: %s; this breaker's is %s", d->key,
                           want, is);
    }
    if (d->policies == CBSHM_FOR_SLOW_CALLS)
        return problem(p, row, "%s needs slow_call_duration", d->key);
    if (d->policies == CBSHM_FOR_BULKHEAD)
        return problem(p, row, "%s needs a bulkhead: max_concurrent_calls or concurrency_quota",
                       d->key);
    return problem(p, row, "%s is for policy: %s%s; this breaker's policy is %s", d->key,
                   (d->policies & CBSHM_FOR_RATE) ? "rate" : "consecutive",
                   (d->policies & CBSHM_FOR_SLOW_CALLS) ? ", or any policy with slow_call_duration"
                                                        : "",
                   policy);
}

/* The fields that are not at their defaults. In code there is no "given":
   such a field counts as set, so that a field of another policy left at
   its default is fine and one set to something else is the same mistake
   as in YAML. Both paths also blame a contradiction by it, so they name
   the same key whatever the YAML inherited. */
static uint64_t not_default(const struct cbshm_settings *s)
{
    const struct cbshm_setting *d;
    uint64_t given = 0;

    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++)
        if (cbshm_setting_get(s, d) != d->def)
            given |= 1ull << i;
    return given;
}

#define SET(row) ((set >> (row)) & 1u)

int cbshm__settings_check(const struct cbshm_settings *s, uint64_t given, struct cbshm__problem *p)
{
    uint64_t set = not_default(s);
    const struct cbshm_setting *d;
    char a[32], b[32];
    int rc;

    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++)
        if ((rc = cbshm__range_check(d, cbshm_setting_get(s, d), p)) != 0)
            return rc;
    if (memcmp(s->reserved, (uint64_t[4]){0}, sizeof s->reserved) != 0)
        return problem(p, -1, "reserved fields of the settings must be zero");
    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++)
        if (((given >> i) & 1u) && !cbshm_setting_applies(d, s))
            return not_for(d, s, p);

    /* Contradictions. Of two keys, blame the second unless only the first
       is set (not at its default). */
    if (s->open_timeout_max_ms < s->open_timeout_ms) {
        long row = SET(SET_ROW_open_timeout) && !SET(SET_ROW_open_timeout_max)
                       ? SET_ROW_open_timeout
                       : SET_ROW_open_timeout_max;
        cbshm_setting_format(cbshm_setting_at(SET_ROW_open_timeout), s->open_timeout_ms, a,
                             sizeof a);
        cbshm_setting_format(cbshm_setting_at(SET_ROW_open_timeout_max), s->open_timeout_max_ms, b,
                             sizeof b);
        return problem(p, row, "open_timeout_max %s is shorter than open_timeout %s", b, a);
    }
    if (s->max_concurrent_calls > 0 && s->concurrency_quota > 0)
        return problem(p, SET_ROW_concurrency_quota,
                       "concurrency_quota and max_concurrent_calls both size the bulkhead: set "
                       "one of them");
    if (s->half_open_decision == CBSHM_HALF_OPEN_RATE && s->half_open_failure_rate == 0)
        return problem(p, SET_ROW_half_open_decision,
                       "half_open_decision: rate needs half_open_failure_rate (1..100)");
    if (s->success_threshold > s->half_open_max_calls &&
        cbshm_setting_applies(cbshm_setting_at(SET_ROW_success_threshold), s)) {
        long row = SET(SET_ROW_half_open_max_calls) && !SET(SET_ROW_success_threshold)
                       ? SET_ROW_half_open_max_calls
                       : SET_ROW_success_threshold;
        return problem(p, row,
                       "success_threshold %u exceeds half_open_max_calls %u: a half-open phase "
                       "admits at most %u probe%s",
                       s->success_threshold, s->half_open_max_calls, s->half_open_max_calls,
                       s->half_open_max_calls == 1 ? "" : "s");
    }
    if (s->window_type == CBSHM_WINDOW_TIME && s->window_duration_ms < s->window_buckets) {
        long row = SET(SET_ROW_window_buckets) && !SET(SET_ROW_window_duration)
                       ? SET_ROW_window_buckets
                       : SET_ROW_window_duration;
        cbshm_setting_format(cbshm_setting_at(SET_ROW_window_duration), s->window_duration_ms, a,
                             sizeof a);
        return problem(p, row, "window_duration %s cannot hold %u buckets of 1ms or more", a,
                       s->window_buckets);
    }
    if (s->window_type == CBSHM_WINDOW_COUNT && s->minimum_calls > s->window_size &&
        cbshm_setting_applies(cbshm_setting_at(SET_ROW_minimum_calls), s)) {
        long row = SET(SET_ROW_window_size) && !SET(SET_ROW_minimum_calls) ? SET_ROW_window_size
                                                                           : SET_ROW_minimum_calls;
        return problem(p, row,
                       "minimum_calls %u exceeds window_size %u: the window could never hold "
                       "enough calls to trip",
                       s->minimum_calls, s->window_size);
    }
    return 0;
}

int cbshm__settings_valid(const struct cbshm_settings *s)
{
    return cbshm__settings_check(s, 0, NULL) == 0;
}

/* Without a configured group the segment's group is whatever the creator's
   was (root's, a login group): a group write bit would grant it by
   accident. setuid, setgid and sticky mean nothing on a segment and
   fchmod(2) would drop them silently, so they are refused too. */
int cbshm__mode_check(uint32_t mode, int has_group, struct cbshm__problem *p)
{
    if (mode > 0777)
        return problem(p, -1, "mode %04o has bits beyond 0777", mode);
    if ((mode & 0600) != 0600)
        return problem(p, -1, "mode %04o must let the owner read and write", mode);
    if (mode & 0002)
        return problem(p, -1, "mode %04o is writable by others; refusing", mode);
    if ((mode & 0020) && !has_group)
        return problem(p, -1, "mode %04o is writable by its group, but no group is configured",
                       mode);
    return 0;
}

__attribute__((format(printf, 3, 4))) static int diag_key(struct cbshm_diag *diag, int rc,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (diag != NULL) {
        va_start(ap, fmt);
        vsnprintf(diag->key, sizeof diag->key, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int report(struct cbshm_diag *diag, const char *path, const struct cbshm__problem *p)
{
    if (diag == NULL)
        return CBSHM_ECONFIG;
    snprintf(diag->message, sizeof diag->message, "%s", p->message);
    if (p->setting < 0)
        return diag_key(diag, CBSHM_ECONFIG, "%s", path);
    return diag_key(diag, CBSHM_ECONFIG, "%s%s%s", path, path[0] != '\0' ? "." : "",
                    cbshm_setting_at((size_t)p->setting)->key);
}

int cbshm__name_problem(const char *name, size_t size, struct cbshm__problem *p)
{
    if (memchr(name, '\0', size) == NULL || cbshm__check_breaker_name(name) != 0)
        return problem(p, -1, "invalid breaker name '%.80s' (1..%d bytes of A-Z a-z 0-9 . _ : -)",
                       memchr(name, '\0', size) != NULL ? name : "(not terminated)",
                       CBSHM_NAME_MAX);
    return 0;
}

int cbshm__segment_problem(const char *name, size_t size, struct cbshm__problem *p)
{
    char fixed[CBSHM_SEGMENT_NAME_MAX + 2];

    /* The likeliest slip, a name without its '/', is told with the fix. */
    if (memchr(name, '\0', size) != NULL && name[0] != '/' &&
        (size_t)snprintf(fixed, sizeof fixed, "/%s", name) < sizeof fixed &&
        cbshm__check_segment_name(fixed) == 0)
        return problem(p, -1, "segment name '%s' must start with '/': did you mean '%s'?", name,
                       fixed);
    if (memchr(name, '\0', size) == NULL || cbshm__check_segment_name(name) != 0)
        return problem(p, -1,
                       "invalid segment name '%.80s' ('/' then 1..%d bytes of A-Z a-z 0-9 . _ -, "
                       "not /. or /..)",
                       memchr(name, '\0', size) != NULL ? name : "(not terminated)",
                       CBSHM_SEGMENT_NAME_MAX - 1);
    return 0;
}

const struct cbshm__fleet_key cbshm__fleet_keys[FLEET_ROWS] = {
#define ROW(key, kind, field, flags, min, max, def, help) \
    {#key,                                                \
     kind,                                                \
     flags,                                               \
     offsetof(struct cbshm_fleet_config, field),          \
     sizeof(((struct cbshm_fleet_config *)0)->field),     \
     min,                                                 \
     max,                                                 \
     def,                                                 \
     help},
    CBSHM_FLEET_TABLE(ROW)
#undef ROW
};

/* The letters of a fleet name or host_id: what a Redis key holds without
   quoting, and never the braces of its hash tag. */
static bool fleet_name_ok(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

    return n >= 1 && n <= FLEET_NAME_MAX && s[n] == '\0';
}

/* host:port, [v6 address]:port; port 1..65535. */
static int tcp_problem(const char *key, const char *s, struct cbshm__problem *p, long row)
{
    const char *colon = strrchr(s, ':'), *c;
    unsigned long port = 0;

    if (strstr(s, "://") != NULL)
        return problem(p, row, "%s '%.80s' is a URL: give host:port, unix:/path or /path", key, s);
    if (colon == NULL)
        return problem(p, row,
                       "%s '%.80s' has no port: give host:port (Redis listens on 6379), "
                       "unix:/path or /path",
                       key, s);
    if (s[0] == '[') {
        if (colon == s || colon[-1] != ']' || colon - s < 3 ||
            strspn(s + 1, "0123456789abcdefABCDEF:.") != (size_t)(colon - s - 2))
            return problem(p, row, "%s '%.80s': an IPv6 address in brackets, then :port", key, s);
    } else if (strchr(s, ':') != colon) {
        return problem(p, row, "%s '%.80s': an IPv6 address goes in brackets: [::1]:6379", key, s);
    } else if (colon == s ||
               strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_") !=
                   (size_t)(colon - s)) {
        return problem(p, row, "%s '%.80s': the host before ':' is not a host name or address", key,
                       s);
    }
    for (c = colon + 1; *c >= '0' && *c <= '9' && port <= 65535; c++)
        port = port * 10 + (unsigned long)(*c - '0');
    if (c == colon + 1 || *c != '\0' || port < 1 || port > 65535)
        return problem(p, row, "%s '%.80s': the port '%.20s' is not a number 1..65535", key, s,
                       colon + 1);
    return 0;
}

int cbshm__fleet_value_problem(enum cbshm__fleet_kind kind, const char *key, const char *s,
                               size_t size, struct cbshm__problem *p)
{
    long row = -1;
    const char *path;

    for (size_t i = 0; i < FLEET_ROWS; i++)
        if (strcmp(key, cbshm__fleet_keys[i].key) == 0)
            row = (long)i;
    if (memchr(s, '\0', size) == NULL || strlen(s) >= size)
        return problem(p, row, "%s is longer than %zu bytes", key, size - 1);
    switch (kind) {
    case FLEET_ADDRESS:
        if (s[0] == '\0')
            return problem(p, row, "%s is empty: give host:port, unix:/path or /path", key);
        path = strncmp(s, "unix:", 5) == 0 ? s + 5 : s[0] == '/' ? s : NULL;
        if (path == NULL)
            return tcp_problem(key, s, p, row);
        if (path[0] != '/')
            return problem(p, row, "%s '%.80s': a unix socket's path must be absolute", key, s);
        if (strlen(path) > FLEET_SOCKET_PATH_MAX)
            return problem(p, row, "%s: the socket path is %zu bytes, over the %d a socket takes",
                           key, strlen(path), FLEET_SOCKET_PATH_MAX);
        return 0;
    case FLEET_USER:
        for (const char *c = s; *c != '\0'; c++)
            if (*c <= ' ' || *c > '~')
                return problem(
                    p, row, "%s '%.80s': a Redis user name is printable ASCII, no spaces", key, s);
        if (s[0] == '\0')
            return problem(p, row, "%s is empty: leave it out for no ACL user", key);
        return 0;
    case FLEET_PATH:
        if (s[0] != '/')
            return problem(p, row,
                           "%s '%.80s' must be an absolute path (the agent may run from "
                           "another directory)",
                           key, s);
        return 0;
    case FLEET_NAME:
        if (!fleet_name_ok(s))
            return problem(p, row, "invalid %s '%.80s' (1..%d bytes of A-Z a-z 0-9 . _ -)", key, s,
                           FLEET_NAME_MAX);
        return 0;
    default:
        return problem(p, row, "%s: not a text key", key);
    }
}

int cbshm__fleet_problem(const struct cbshm_fleet_config *f, struct cbshm__problem *p)
{
    char lo[32], hi[32], value[32];
    int rc;

    for (size_t i = 0; i < FLEET_ROWS; i++) {
        const struct cbshm__fleet_key *row = &cbshm__fleet_keys[i];
        const char *at = (const char *)f + row->offset;
        uint64_t ms;

        if (row->kind == FLEET_DURATION) {
            memcpy(&ms, at, sizeof ms);
            if (ms < row->min || ms > row->max) {
                cbshm__format_ms(lo, sizeof lo, row->min);
                cbshm__format_ms(hi, sizeof hi, row->max);
                cbshm__format_ms(value, sizeof value, ms);
                return problem(p, (long)i, "value %s is out of range (%s..%s)", value, lo, hi);
            }
        } else if (memchr(at, '\0', row->size) != NULL && at[0] == '\0') {
            if (row->flags & FLEET_REQUIRED)
                return problem(p, (long)i, "the fleet section has no %s (%s)", row->key, row->help);
        } else if ((rc = cbshm__fleet_value_problem(row->kind, row->key, at, row->size, p)) != 0) {
            return rc;
        }
    }
    if (f->user[0] != '\0' && f->password_file[0] == '\0')
        return problem(p, FLEET_ROW_user,
                       "user needs password_file: Redis logs a user in with AUTH user password");
    if (memcmp(f->reserved, (uint64_t[4]){0}, sizeof f->reserved) != 0)
        return problem(p, -1, "reserved fields of the fleet section must be zero");
    return 0;
}

int cbshm_config_check(const struct cbshm_config *cfg, struct cbshm_diag *diag)
{
    struct cbshm__nameset names;
    struct cbshm__problem p;
    char path[48];
    long first;
    int rc = 0;

    if (diag != NULL)
        memset(diag, 0, sizeof *diag);
    if (cfg == NULL || (cfg->n_breakers > 0 && cfg->breakers == NULL))
        return CBSHM_EINVAL;
    if (cfg->capacity < 1 || cfg->capacity > CBSHM_CAPACITY_MAX) {
        problem(&p, -1, "value %u is out of range (1..%d)", cfg->capacity, CBSHM_CAPACITY_MAX);
        return report(diag, "capacity", &p);
    }
    /* fchown(2) reads (gid_t)-1 as "leave the group": it is no group. */
    if (cfg->has_group != 0 && cfg->has_group != 1) {
        problem(&p, -1, "has_group %d is neither 0 nor 1", cfg->has_group);
        return report(diag, "group", &p);
    }
    if (cfg->has_group == 1 && cfg->gid == UINT32_MAX) {
        problem(&p, -1, "value %u is out of range (0..%u)", cfg->gid, UINT32_MAX - 1);
        return report(diag, "group", &p);
    }
    if (cfg->has_owner != 0 && cfg->has_owner != 1) {
        problem(&p, -1, "has_owner %d is neither 0 nor 1", cfg->has_owner);
        return report(diag, "owner", &p);
    }
    if (cfg->has_owner == 1 && cfg->uid == UINT32_MAX) {
        problem(&p, -1, "value %u is out of range (0..%u)", cfg->uid, UINT32_MAX - 1);
        return report(diag, "owner", &p);
    }
    if (cbshm__mode_check(cfg->mode, cfg->has_group, &p) != 0)
        return report(diag, "mode", &p);
    if (memcmp(cfg->reserved, (uint64_t[6]){0}, sizeof cfg->reserved) != 0) {
        problem(&p, -1, "reserved fields of the configuration must be zero");
        return report(diag, "", &p);
    }
    if (cfg->segment[0] != '\0' &&
        cbshm__segment_problem(cfg->segment, sizeof cfg->segment, &p) != 0)
        return report(diag, "segment", &p);
    if (cfg->n_breakers > cfg->capacity) {
        problem(&p, -1, "%zu breakers exceed capacity %u", cfg->n_breakers, cfg->capacity);
        return report(diag, "breakers", &p);
    }
    if (cfg->fleet != NULL && cbshm__fleet_problem(cfg->fleet, &p) != 0) {
        rc = diag_key(diag, CBSHM_ECONFIG, "fleet%s%s", p.setting >= 0 ? "." : "",
                      p.setting >= 0 ? cbshm__fleet_keys[p.setting].key : "");
        if (diag != NULL)
            snprintf(diag->message, sizeof diag->message, "%s", p.message);
        return rc;
    }
    if (cbshm__nameset_init(&names, cfg->n_breakers) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_breakers && rc == 0; i++) {
        const struct cbshm_breaker_config *bc = &cfg->breakers[i];

        snprintf(path, sizeof path, "breakers[%zu]", i);
        if (cbshm__name_problem(bc->name, sizeof bc->name, &p) != 0) {
            snprintf(path, sizeof path, "breakers[%zu].name", i);
            rc = report(diag, path, &p);
        } else if (cbshm__settings_check(&bc->settings, not_default(&bc->settings), &p) != 0) {
            rc = report(diag, path, &p);
        } else if ((first = cbshm__nameset_add(&names, bc->name, (long)i)) >= 0) {
            problem(&p, -1, "duplicate breaker name '%s' (first at breakers[%ld])", bc->name,
                    first);
            rc = report(diag, path, &p);
        }
    }
    cbshm__nameset_free(&names);
    return rc;
}

const char *cbshm_config_segment(const struct cbshm_config *cfg, const char *given)
{
    if (given != NULL && given[0] != '\0')
        return given;
    if (cfg != NULL && cfg->segment[0] != '\0')
        return cfg->segment;
    return cbshm_default_segment();
}
