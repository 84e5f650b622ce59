/* SPDX-License-Identifier: MIT */
/*
 * YAML configuration -> struct cbshm_config, with libyaml's document API,
 * after a pass of its event parser that enforces the limits libyaml has
 * none for (size, nesting, NUL in a scalar). Every rejection names the
 * file, line, column and key path ("breakers[2].open_timeout"). libyaml's
 * "1 means success" stays here.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "fleet_table.h"
#include "internal.h"
#include "settings_table.h"

/* The most text a configuration may be. A real one is a few KiB; the cap
   bounds the memory and time one file can cost. */
#define CONFIG_BYTES_MAX (16u << 20)
/* The most lists and mappings nested in one another. The schema needs 3;
   libyaml's scanner costs time quadratic in the depth (100000 '[' took
   15-24 s), so a deeper document is refused before it gets that far. */
#define CONFIG_DEPTH_MAX 64

/* `fleet` took a reserved word: the struct keeps its 1.0 size (LP64). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct cbshm_config) == 464,
               "struct cbshm_config changed size");

struct parse {
    yaml_document_t *doc;
    struct cbshm_diag *diag;
    const char *label;
};

__attribute__((format(printf, 4, 0))) static int vfail(struct parse *p, const yaml_mark_t *at,
                                                       const char *key, const char *fmt, va_list ap)
{
    if (p->diag != NULL) {
        snprintf(p->diag->file, sizeof p->diag->file, "%s", p->label);
        p->diag->line = at != NULL ? (unsigned)at->line + 1 : 1;
        p->diag->column = at != NULL ? (unsigned)at->column + 1 : 1;
        snprintf(p->diag->key, sizeof p->diag->key, "%s", key != NULL ? key : "");
        vsnprintf(p->diag->message, sizeof p->diag->message, fmt, ap);
    }
    return CBSHM_ECONFIG;
}

__attribute__((format(printf, 4, 5))) static int fail(struct parse *p, const yaml_node_t *at,
                                                      const char *key, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(p, at != NULL ? &at->start_mark : NULL, key, fmt, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 4, 5))) static int fail_at(struct parse *p, const yaml_mark_t *at,
                                                         const char *key, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(p, at, key, fmt, ap);
    va_end(ap);
    return rc;
}

/* The line and column of byte `offset`, as libyaml counts them: lines
   end at '\n', a column is a character (UTF-8 continuation bytes do not
   count). */
static yaml_mark_t mark_of(const char *yaml, size_t len, size_t offset)
{
    yaml_mark_t m = {offset, 0, 0};

    for (size_t i = 0; i < offset && i < len; i++) {
        if (yaml[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)yaml[i] & 0xC0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

/* A failed parse or load, where libyaml found it. The reader (bad UTF-8,
   a control character) gives a byte offset, not a mark. */
static int syntax_error(struct parse *p, const yaml_parser_t *parser, const char *yaml, size_t len)
{
    const char *problem = parser->problem != NULL ? parser->problem : "malformed document";
    yaml_mark_t at = parser->problem_mark;

    if (parser->error == YAML_READER_ERROR) {
        at = mark_of(yaml, len, parser->problem_offset);
        if (parser->problem_value == 0)
            return fail_at(p, &at, "", "YAML syntax error: %s (a NUL byte)", problem);
        if (parser->problem_value > 0)
            return fail_at(p, &at, "", "YAML syntax error: %s (0x%02X)", problem,
                           (unsigned)parser->problem_value);
        return fail_at(p, &at, "", "YAML syntax error: %s", problem);
    }
    return fail_at(p, &at, "", "YAML syntax error: %s%s%s", problem,
                   parser->context != NULL ? " " : "",
                   parser->context != NULL ? parser->context : "");
}

/*
 * The limits, before the document is built: the size; then every event of
 * the stream, stopping at the first collection nested deeper than
 * CONFIG_DEPTH_MAX, before libyaml's scanner has gone quadratic, and at a
 * scalar holding a NUL (an escape such as "a\0b"), which C strings would
 * silently cut. Syntax errors are reported here too, as the loader would.
 */
static int check_limits(struct parse *p, const char *yaml, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t event;
    unsigned depth = 0;
    int rc = 0, done = 0;

    if (len > CONFIG_BYTES_MAX) {
        yaml_mark_t at = mark_of(yaml, len, CONFIG_BYTES_MAX);
        return fail_at(p, &at, "", "the configuration is over the size limit of %u MiB (%u bytes)",
                       CONFIG_BYTES_MAX >> 20, CONFIG_BYTES_MAX);
    }
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    while (rc == 0 && !done) {
        if (!yaml_parser_parse(&parser, &event)) {
            rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : syntax_error(p, &parser, yaml, len);
            break;
        }
        switch (event.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > CONFIG_DEPTH_MAX)
                rc = fail_at(p, &event.start_mark, "",
                             "lists and mappings nested more than %d deep", CONFIG_DEPTH_MAX);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT:
            if (memchr(event.data.scalar.value, '\0', event.data.scalar.length) != NULL)
                rc = fail_at(p, &event.start_mark, "",
                             "a key or value may not contain a NUL character (\\0)");
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return rc;
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

static void join(char *buf, size_t size, const char *path, const char *key)
{
    snprintf(buf, size, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
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
            if (k2 != NULL && k2->type == YAML_SCALAR_NODE && strcmp(scalar(k2), scalar(k)) == 0) {
                char key[64];
                join(key, sizeof key, path, scalar(k));
                return fail(p, k, key, "duplicate key '%.80s'", scalar(k));
            }
        }
        if ((rc = fn(p, path, k, v, ctx)) != 0)
            return rc;
    }
    return 0;
}

/* The settings one mapping gave itself, and where. */
struct keyset {
    const yaml_node_t *at[SET_ROWS];
    uint64_t given;
};

/* What a setting's scalar must look like, for "expected ..., got a list". */
static const char *scalar_kind(const struct cbshm_setting *d)
{
    switch (d->type) {
    case CBSHM_SETTING_DURATION:
        return "a duration";
    case CBSHM_SETTING_PERCENT:
        return "a percentage";
    case CBSHM_SETTING_MULTIPLIER:
        return "a number such as 2 or 1.5";
    case CBSHM_SETTING_CHOICE:
        return "a word";
    case CBSHM_SETTING_HOSTS:
        return "a host count such as 2 or a share such as 0.34";
    default:
        return "an integer";
    }
}

/* One key of a breaker's settings; 1 when the key is not a setting. */
static int setting(struct parse *p, const char *key, const yaml_node_t *v, struct cbshm_settings *s,
                   const char *name, struct keyset *set)
{
    const struct cbshm_setting *d = cbshm_setting_find(name);
    char message[256];
    uint64_t x = 0;
    long row;
    int rc;

    if (d == NULL || strcmp(d->key, name) != 0)
        return 1;
    if ((rc = want_scalar(p, v, key, scalar_kind(d))) != 0)
        return rc;
    if (cbshm_setting_parse(d, scalar(v), &x, message, sizeof message) != 0)
        return fail(p, v, key, "%s", message);
    cbshm_setting_set(s, d, x);
    row = cbshm__setting_index(d);
    set->at[row] = v;
    set->given |= 1ull << row;
    return 0;
}

/*
 * The mapping's settings as a whole, through the one validator. Only keys
 * this mapping gave itself are blamed for not applying, at their own
 * position; a contradiction it inherited is reported at the mapping.
 */
static int check_settings(struct parse *p, const yaml_node_t *mapping, const char *path,
                          struct cbshm_settings *s, const struct keyset *set)
{
    struct cbshm__problem prob;
    const yaml_node_t *at = mapping;
    char key[64];

    if (cbshm__settings_check(s, set->given, &prob) != 0) {
        if (prob.setting >= 0 && set->at[prob.setting] != NULL)
            at = set->at[prob.setting];
        if (prob.setting >= 0)
            join(key, sizeof key, path, cbshm_setting_at((size_t)prob.setting)->key);
        else
            snprintf(key, sizeof key, "%s", path);
        return fail(p, at, key, "%s", prob.message);
    }
    cbshm__settings_canonical(s);
    return 0;
}

/* "unknown key 'x'", with what it may have meant (suggest.c). */
static int unknown_key(struct parse *p, const yaml_node_t *k, const char *key, int settings,
                       const char *const *keys)
{
    char hint[128];

    cbshm__key_hint(scalar(k), settings, keys, hint, sizeof hint);
    return fail(p, k, key, "unknown key '%.80s'%s", scalar(k), hint);
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
    return rc == 1 ? unknown_key(p, k, key, 1, NULL) : rc;
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
        struct cbshm__problem prob;
        if ((rc = want_scalar(p, v, key, "a breaker name")) != 0)
            return rc;
        if (cbshm__name_problem(scalar(v), strlen(scalar(v)) + 1, &prob) != 0)
            return fail(p, v, key, "%s", prob.message);
        strcpy(b->bc->name, scalar(v));
        b->has_name = 1;
        return 0;
    }
    rc = setting(p, key, v, &b->bc->settings, scalar(k), &b->set);
    return rc == 1 ? unknown_key(p, k, key, 1, (const char *const[]){"name", NULL}) : rc;
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
        if ((rc = check_settings(p, item, path, &b.bc->settings, &b.set)) != 0)
            break;
        if ((first = cbshm__nameset_add(&seen, b.bc->name, (long)i)) >= 0) {
            rc = fail(p, names[i], path, "duplicate breaker name '%s' (first at breakers[%ld])",
                      b.bc->name, first);
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

/* The digits of `mode`; what they allow is checked with `group` known. */
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

static int parse_owner(struct parse *p, const yaml_node_t *v, uint32_t *uid)
{
    const char *s;
    struct passwd *pw;
    uint64_t x;
    int rc;

    if ((rc = want_scalar(p, v, "owner", "a user name or number")) != 0)
        return rc;
    s = scalar(v);
    if (s[0] >= '0' && s[0] <= '9') {
        if ((rc = parse_uint(p, v, "owner", 0, UINT32_MAX - 1, &x)) != 0)
            return rc;
        *uid = (uint32_t)x;
        return 0;
    }
    if ((pw = getpwnam(s)) == NULL)
        return fail(p, v, "owner", "no such user '%.80s'", s);
    *uid = (uint32_t)pw->pw_uid;
    return 0;
}

static const char *const fleet_key_names[] = {
#define KEY(key, ...) #key,
    CBSHM_FLEET_TABLE(KEY) NULL
#undef KEY
};

struct fleet_ctx {
    struct cbshm_fleet_config *f;
    const yaml_node_t *at[FLEET_ROWS];
};

static int fleet_pair(struct parse *p, const char *path, const yaml_node_t *k, const yaml_node_t *v,
                      void *ctx)
{
    struct fleet_ctx *fc = ctx;
    const struct cbshm__fleet_key *row = NULL;
    struct cbshm__problem prob;
    char key[64], message[256];
    int rc;

    join(key, sizeof key, path, scalar(k));
    for (size_t i = 0; i < FLEET_ROWS; i++)
        if (strcmp(scalar(k), cbshm__fleet_keys[i].key) == 0)
            row = &cbshm__fleet_keys[i];
    if (row == NULL)
        return unknown_key(p, k, key, 0, fleet_key_names);
    if (row->kind == FLEET_DURATION) {
        uint64_t ms = 0;
        if ((rc = want_scalar(p, v, key, "a duration")) != 0)
            return rc;
        if (cbshm__duration_parse(scalar(v), row->min, row->max, &ms, message, sizeof message) != 0)
            return fail(p, v, key, "%s", message);
        memcpy((char *)fc->f + row->offset, &ms, sizeof ms);
    } else {
        static const char *const what[] = {
            [FLEET_ADDRESS] = "an address",
            [FLEET_USER] = "a user name",
            [FLEET_PATH] = "a path",
            [FLEET_NAME] = "a name",
        };
        if ((rc = want_scalar(p, v, key, what[row->kind])) != 0)
            return rc;
        if (cbshm__fleet_value_problem(row->kind, row->key, scalar(v), row->size, &prob) != 0)
            return fail(p, v, key, "%s", prob.message);
        memcpy((char *)fc->f + row->offset, scalar(v), strlen(scalar(v)) + 1);
    }
    fc->at[row - cbshm__fleet_keys] = v;
    return 0;
}

/*
 * The `fleet:` mapping: each key as it comes, host_id from the hostname
 * when not given, then the section as the validator sees it, blamed on
 * the key at fault where the file gave it, else on `fleet` itself.
 */
static int parse_fleet(struct parse *p, const yaml_node_t *key_node, const yaml_node_t *mapping,
                       struct cbshm_config *cfg)
{
    struct cbshm_fleet_config *f;
    struct fleet_ctx fc;
    struct cbshm__problem prob;
    char host[256], key[64];
    int rc;

    if ((f = calloc(1, sizeof *f)) == NULL)
        return -ENOMEM;
    cfg->fleet = f;
    memset(&fc, 0, sizeof fc);
    fc.f = f;
    for (size_t i = 0; i < FLEET_ROWS; i++)
        if (cbshm__fleet_keys[i].kind == FLEET_DURATION)
            memcpy((char *)f + cbshm__fleet_keys[i].offset, &cbshm__fleet_keys[i].def,
                   sizeof(uint64_t));
    if ((rc = each_pair(p, mapping, "fleet", fleet_pair, &fc)) != 0)
        return rc;
    if (fc.at[FLEET_ROW_host_id] == NULL) {
        /* POSIX leaves a truncated name unterminated. */
        if (gethostname(host, sizeof host - 1) != 0)
            return fail(p, key_node, "fleet.host_id",
                        "the hostname cannot be read (%s): set fleet.host_id", strerror(errno));
        host[sizeof host - 1] = '\0';
        if (cbshm__fleet_value_problem(FLEET_NAME, "host_id", host, sizeof f->host_id, &prob) != 0)
            return fail(p, key_node, "fleet.host_id",
                        "the hostname '%.80s' is not a valid host_id (1..%d bytes of A-Z a-z 0-9 "
                        ". _ -): set fleet.host_id",
                        host, FLEET_NAME_MAX);
        memcpy(f->host_id, host, strlen(host) + 1);
    }
    if (cbshm__fleet_problem(f, &prob) != 0) {
        const yaml_node_t *at =
            prob.setting >= 0 && fc.at[prob.setting] != NULL ? fc.at[prob.setting] : key_node;
        if (prob.setting >= 0)
            join(key, sizeof key, "fleet", cbshm__fleet_keys[prob.setting].key);
        else
            snprintf(key, sizeof key, "fleet");
        return fail(p, at, key, "%s", prob.message);
    }
    return 0;
}

struct top_ctx {
    struct cbshm_config *cfg;
    const yaml_node_t *breakers_key, *breakers, *defaults, *mode, *fleet_key, *fleet;
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
        struct cbshm__problem prob;
        if ((rc = want_scalar(p, v, key, "a segment name")) != 0)
            return rc;
        if (cbshm__segment_problem(scalar(v), strlen(scalar(v)) + 1, &prob) != 0)
            return fail(p, v, key, "%s", prob.message);
        strcpy(t->cfg->segment, scalar(v));
    } else if (strcmp(key, "capacity") == 0) {
        if ((rc = parse_uint(p, v, key, 1, CBSHM_CAPACITY_MAX, &x)) != 0)
            return rc;
        t->cfg->capacity = (uint32_t)x;
    } else if (strcmp(key, "mode") == 0) {
        if ((rc = parse_mode(p, v, &t->cfg->mode)) != 0)
            return rc;
        t->mode = v;
    } else if (strcmp(key, "group") == 0) {
        if ((rc = parse_group(p, v, &t->cfg->gid)) != 0)
            return rc;
        t->cfg->has_group = 1;
    } else if (strcmp(key, "owner") == 0) {
        if ((rc = parse_owner(p, v, &t->cfg->uid)) != 0)
            return rc;
        t->cfg->has_owner = 1;
    } else if (strcmp(key, "defaults") == 0) {
        if (v->type != YAML_MAPPING_NODE)
            return fail(p, v, key, "expected a mapping, got %s", node_kind(v));
        t->defaults = v;
    } else if (strcmp(key, "breakers") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(p, v, key, "expected a list of breakers, got %s", node_kind(v));
        t->breakers_key = k;
        t->breakers = v;
    } else if (strcmp(key, "fleet") == 0) {
        if (v->type != YAML_MAPPING_NODE)
            return fail(p, v, key, "expected a mapping (redis, name, ...), got %s", node_kind(v));
        t->fleet_key = k;
        t->fleet = v;
    } else {
        static const char *const top_keys[] = {"segment",  "capacity", "mode",  "group", "owner",
                                               "defaults", "breakers", "fleet", NULL};
        return unknown_key(p, k, key, 0, top_keys);
    }
    return 0;
}

static int parse_document(struct parse *p, struct cbshm_config *cfg)
{
    const yaml_node_t *root = yaml_document_get_root_node(p->doc);
    struct top_ctx t = {cfg, NULL, NULL, NULL, NULL, NULL, NULL};
    struct cbshm__problem prob;
    const yaml_node_t **names;
    size_t n;
    int rc;

    if (root == NULL)
        return fail(p, NULL, "", "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return fail(p, root, "", "expected a mapping at the top, got %s", node_kind(root));
    if ((rc = each_pair(p, root, "", top_pair, &t)) != 0)
        return rc;
    /* The default mode 0600 passes; a refused one was given. */
    if (cbshm__mode_check(cfg->mode, cfg->has_group, &prob) != 0)
        return fail(p, t.mode, "mode", "%s", prob.message);
    if (t.fleet != NULL && (rc = parse_fleet(p, t.fleet_key, t.fleet, cfg)) != 0)
        return rc;
    /* defaults first, wherever the file puts them: breakers inherit them. */
    if (t.defaults != NULL) {
        struct defaults_ctx d;
        memset(&d, 0, sizeof d);
        d.s = &cfg->defaults;
        if ((rc = each_pair(p, t.defaults, "defaults", defaults_pair, &d)) != 0 ||
            (rc = check_settings(p, t.defaults, "defaults", &cfg->defaults, &d.set)) != 0)
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
    if ((rc = check_limits(&p, yaml, len)) != 0) {
        free(cfg);
        return rc;
    }
    if (!yaml_parser_initialize(&parser)) {
        free(cfg);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : syntax_error(&p, &parser, yaml, len);
        yaml_parser_delete(&parser);
        free(cfg);
        return rc;
    }
    rc = parse_document(&p, cfg);
    if (rc == 0) {
        /* A second document would be silently ignored: refuse it. */
        if (!yaml_parser_load(&parser, &extra)) {
            rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : syntax_error(&p, &parser, yaml, len);
        } else {
            if (yaml_document_get_root_node(&extra) != NULL)
                rc = fail(&p, yaml_document_get_root_node(&extra), "",
                          "only one YAML document is allowed");
            yaml_document_delete(&extra);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    /* The loader checked as it went; the one validator has the last word,
       so that what loads is exactly what cbshm_apply() accepts. */
    if (rc == 0 && (rc = cbshm_config_check(cfg, diag)) == CBSHM_ECONFIG && diag != NULL) {
        snprintf(diag->file, sizeof diag->file, "%s", p.label);
        diag->line = diag->column = 1;
    }
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
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (path == NULL || out == NULL)
        return CBSHM_EINVAL;
    if (diag != NULL)
        memset(diag, 0, sizeof *diag);
    if ((f = fopen(path, "rb")) == NULL) {
        rc = -errno;
        if (diag != NULL) {
            snprintf(diag->file, sizeof diag->file, "%s", path);
            snprintf(diag->message, sizeof diag->message, "cannot open: %s", strerror(-rc));
        }
        return rc;
    }
    /* fopen(3) opens a directory; reading it would fail with EISDIR, but
       say so before trying. */
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        if (diag != NULL) {
            snprintf(diag->file, sizeof diag->file, "%s", path);
            snprintf(diag->message, sizeof diag->message, "is a directory");
        }
        fclose(f);
        return -EISDIR;
    }
    /* One byte past the cap is enough to know the file is over it; the
       loader says so, with the position. */
    errno = 0;
    for (;;) {
        size_t got;
        if (len == cap) {
            char *nb;
            if (cap == (size_t)CONFIG_BYTES_MAX + 1)
                break;
            cap = cap != 0 ? cap * 2 : 4096;
            if (cap > (size_t)CONFIG_BYTES_MAX)
                cap = (size_t)CONFIG_BYTES_MAX + 1;
            if ((nb = realloc(buf, cap)) == NULL) {
                rc = -ENOMEM;
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
        /* read(2)'s own errno rather than a made-up -EIO. */
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
    /* const for the caller, who reads it; the loader allocated it. */
    free((void *)(uintptr_t)cfg->fleet);
    free(cfg);
}
