/* SPDX-License-Identifier: MIT */
/*
 * A setting's value from the text the YAML (or a command line) gives it:
 * "250ms", "50%", "1.5", "rate" -> the field's unit, range checked with
 * the table's bounds. The YAML loader and cbctl parse through here, so a
 * value reads the same and is refused with the same words everywhere.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Numbers are exact up to this; any unit times it still fits 64 bits. */
#define BIG (UINT64_MAX / 3600000 / 10)

struct text {
    const char *s; /* the text as given, for messages */
    char *msg;
    size_t size;
    const char *range; /* a value's range, for one not in the settings table */
};

__attribute__((format(printf, 2, 3))) static int bad(const struct text *t, const char *fmt, ...)
{
    va_list ap;

    if (t->msg != NULL && t->size > 0) {
        va_start(ap, fmt);
        vsnprintf(t->msg, t->size, fmt, ap);
        va_end(ap);
    }
    return CBSHM_ECONFIG;
}

/* d NULL: a duration outside the settings table (cbshm__duration_parse),
   with its range in t. */
static int too_big(const struct text *t, const struct cbshm_setting *d)
{
    char range[64];

    if (d == NULL)
        return bad(t, "value '%.80s' is out of range (%s)", t->s, t->range);
    cbshm__range_text(d, range, sizeof range);
    return bad(t, "value '%.80s' is out of range (%s)", t->s, range);
}

/* 5, or for a percentage also 5%. */
static int parse_count(const struct text *t, const struct cbshm_setting *d, uint64_t *out)
{
    size_t len = strlen(t->s);
    const char *end = t->s + len;
    uint64_t v = 0;
    bool big = false;

    if (d->type == CBSHM_SETTING_PERCENT && len > 0 && end[-1] == '%')
        end--;
    if (end == t->s)
        return bad(t, "expected an integer, got an empty value");
    for (const char *c = t->s; c < end; c++) {
        if (*c < '0' || *c > '9')
            return bad(t, "expected an integer, got '%.80s'", t->s);
        if (v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
            big = true;
        else
            v = v * 10 + (uint64_t)(*c - '0');
    }
    if (big)
        return too_big(t, d);
    *out = v;
    return 0;
}

/* "250ms", "5s", "2m", "1h" -> milliseconds. */
static int parse_duration(const struct text *t, const struct cbshm_setting *d, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *u;
    uint64_t v = 0;

    /* Exact up to BIG, which no unit can overflow; past it, the text is
       out of range whatever its unit. */
    for (u = t->s; *u >= '0' && *u <= '9'; u++)
        v = v > BIG ? v : v * 10 + (uint64_t)(*u - '0');
    if (u == t->s)
        return bad(t, "expected a duration such as 250ms, 5s, 2m or 1h, got '%.80s'", t->s);
    if (*u == '\0')
        return bad(t, "duration '%.80s' needs a unit (ms, s, m or h)", t->s);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(u, units[i].unit) == 0) {
            if (v > BIG)
                return too_big(t, d);
            *out = v * units[i].ms;
            return 0;
        }
    }
    return bad(t, "bad unit '%.40s' in duration '%.80s' (use ms, s, m or h)", u, t->s);
}

/* "2", "1.5", "1.25" -> hundredths. */
static int parse_multiplier(const struct text *t, const struct cbshm_setting *d, uint64_t *out)
{
    const char *c;
    uint64_t whole = 0, frac = 0;
    int places = 0;

    for (c = t->s; *c >= '0' && *c <= '9'; c++)
        whole = whole > BIG ? whole : whole * 10 + (uint64_t)(*c - '0');
    if (c == t->s)
        return bad(t, "expected a number such as 2 or 1.5, got '%.80s'", t->s);
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++, places++)
            if (places < 2)
                frac = frac * 10 + (uint64_t)(*c - '0');
        if (places == 0)
            return bad(t, "expected a number such as 2 or 1.5, got '%.80s'", t->s);
        if (places > 2)
            return bad(t, "'%.80s' has more than two decimals", t->s);
        if (places == 1)
            frac *= 10;
    }
    if (*c != '\0')
        return bad(t, "expected a number such as 2 or 1.5, got '%.80s'", t->s);
    if (whole > BIG)
        return too_big(t, d);
    *out = whole * 100 + frac;
    return 0;
}

/*
 * "2" -> 2 hosts; "0.34" or "34%" -> CBSHM_FLEET_SHARE | 34. A share is
 * below 1 (or up to 100%) and a count is whole, so "1.5" is neither; a
 * share of none is refused rather than read as "off", which is 0.
 */
static int parse_hosts(const struct text *t, const struct cbshm_setting *d, uint64_t *out)
{
    static const char *const expected = "expected a host count such as 2, or a share of the live "
                                        "hosts such as 0.34 or 34%%, got '%.80s'";
    size_t len = strlen(t->s);
    const char *c;
    uint64_t whole = 0, frac = 0;
    int places = 0;

    for (c = t->s; *c >= '0' && *c <= '9'; c++)
        whole = whole > BIG ? whole : whole * 10 + (uint64_t)(*c - '0');
    if (c == t->s)
        return bad(t, expected, t->s);
    if (*c == '%' && c + 1 == t->s + len) {
        if (whole == 0)
            return bad(t, "a share of 0%% is no host: 0 turns fleet_open_hosts off");
        if (whole > 100)
            return bad(t, "share '%.80s' is over 100%%", t->s);
        *out = CBSHM_FLEET_SHARE | whole;
        return 0;
    }
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++, places++)
            if (places < 2)
                frac = frac * 10 + (uint64_t)(*c - '0');
        if (places == 0 || *c != '\0')
            return bad(t, expected, t->s);
        if (whole != 0)
            return bad(t,
                       "'%.80s' is neither a host count (a whole number) nor a share of the live "
                       "hosts (below 1, such as 0.34, or 100%%)",
                       t->s);
        if (places > 2)
            return bad(t, "'%.80s' has more than two decimals", t->s);
        if (places == 1)
            frac *= 10;
        if (frac == 0)
            return bad(t, "a share of 0 is no host: 0 turns fleet_open_hosts off");
        *out = CBSHM_FLEET_SHARE | frac;
        return 0;
    }
    if (*c != '\0')
        return bad(t, expected, t->s);
    /* From CBSHM_FLEET_SHARE up a count would read as a share (2147483682
       as 34%): refused here, as written. */
    if (whole > BIG || whole >= CBSHM_FLEET_SHARE)
        return too_big(t, d);
    *out = whole;
    return 0;
}

/* One of the setting's words -> its index. */
static int parse_choice(const struct text *t, const struct cbshm_setting *d, uint64_t *out)
{
    char words[64];

    for (uint64_t i = 0; d->choices[i] != NULL; i++) {
        if (strcmp(t->s, d->choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    cbshm__range_text(d, words, sizeof words);
    return bad(t, "expected %s, got '%.80s'", words, t->s);
}

int cbshm_setting_parse(const struct cbshm_setting *d, const char *text, uint64_t *out, char *msg,
                        size_t size)
{
    struct text t = {text, msg, size, NULL};
    struct cbshm__problem prob;
    uint64_t v = 0;
    int rc;

    if (cbshm__setting_index(d) < 0 || text == NULL || out == NULL)
        return CBSHM_EINVAL;
    switch (d->type) {
    case CBSHM_SETTING_DURATION:
        rc = parse_duration(&t, d, &v);
        break;
    case CBSHM_SETTING_MULTIPLIER:
        rc = parse_multiplier(&t, d, &v);
        break;
    case CBSHM_SETTING_CHOICE:
        rc = parse_choice(&t, d, &v);
        break;
    case CBSHM_SETTING_HOSTS:
        rc = parse_hosts(&t, d, &v);
        break;
    default:
        rc = parse_count(&t, d, &v);
        break;
    }
    if (rc == 0 && (rc = cbshm__range_check(d, v, &prob)) != 0)
        bad(&t, "%s", prob.message);
    if (rc == 0)
        *out = v;
    return rc;
}

int cbshm__duration_parse(const char *text, uint64_t min_ms, uint64_t max_ms, uint64_t *out,
                          char *msg, size_t size)
{
    char lo[32], hi[32], range[80];
    struct text t = {text, msg, size, range};
    uint64_t ms = 0;
    int rc;

    cbshm__format_ms(lo, sizeof lo, min_ms);
    cbshm__format_ms(hi, sizeof hi, max_ms);
    snprintf(range, sizeof range, "%s..%s", lo, hi);
    if ((rc = parse_duration(&t, NULL, &ms)) != 0)
        return rc;
    if (ms < min_ms || ms > max_ms)
        return too_big(&t, NULL);
    *out = ms;
    return 0;
}
