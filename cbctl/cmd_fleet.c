/* SPDX-License-Identifier: MIT */
/*
 * cbctl fleet list|show NAME|open|close|disable|enable|reset NAME: every
 * host's breakers, seen and steered through the fleet's Redis (the fleet:
 * section of --config). list and show read what each host's agent
 * publishes - the hosts ZSET of live-until times and each host's hash of
 * breaker snapshots; the five write verbs append one command to the
 * fleet's command stream and wait until every live host they are for has
 * acknowledged it. Redis is the control plane only: nothing here touches
 * a segment.
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cbctl.h"
#include "fleet_redis.h"

/* How long a command waits for its acks when --timeout is not given. */
#define DEFAULT_TIMEOUT_MS 10000
/* Between two looks at a command's acks: agents ack within a millisecond
   or two, so the first look comes soon; later ones back off to 16 ms, for a
   fleet whose acks trickle in. */
#define ACK_POLL_FIRST_NS 500000L
#define ACK_POLL_MAX_NS   16000000L
/* A host id, as the fleet: section's host_id is written: [A-Za-z0-9_.-]{1,64}. */
#define HOST_ID_MAX 64

enum op { OP_LIST, OP_SHOW, OP_OPEN, OP_CLOSE, OP_DISABLE, OP_ENABLE, OP_RESET };

/* In enum op's order: the verb is found by its index. */
static const struct cbctl_verb verbs[] = {
    {"list", 0,
     "per breaker, how many live hosts have it closed, open, half-open or forced; the stale hosts"},
    {"show", 1, "one breaker on every host: state, mode, the mode's cause, trips, since when"},
    {"open", 1, "force it open on every live host --hosts matches, and wait for each one's ack"},
    {"close", 1, "force it closed on them"},
    {"disable", 1, "let every call through, recording nothing, on them"},
    {"enable", 1, "back to normal on them: the state machine decides"},
    {"reset", 1, "start its state and counts over on them (the mode stays)"},
    {NULL, 0, NULL},
};

struct fleet {
    enum op op;
    const char *breaker; /* the NAME operand, or NULL */
    const char *glob;    /* --hosts */
    int json;
    char what[128]; /* "fleet open payments": how messages start */
    struct cbshm_fleet_config cfg;
    struct cbctl_fleet_target target;
    redisContext *redis;
    uint64_t deadline_ms; /* monotonic: where --timeout ends */
    /* Something read from Redis was left out, as stderr said: the rest is
       printed whole, and the exit status says it was not all there. */
    int damaged;
};

/* One host of the hosts ZSET, with what its hash held. */
struct host {
    char id[HOST_ID_MAX + 1];
    uint64_t live_until_ms;
    int stale;        /* its score is past, or it has no hash */
    redisReply *hash; /* HGETALL (list) or HMGET NAME .agent (show); NULL: none */
};

struct hosts {
    struct host *all;
    size_t n;
};

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t remaining_ms(const struct fleet *f)
{
    uint64_t now = monotonic_ms();

    return now < f->deadline_ms ? f->deadline_ms - now : 0;
}

/* [A-Za-z0-9_.-]{1,max}: the rule host ids and fleet names follow. */
static int word_ok(const char *s, size_t len, size_t max)
{
    static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789_.-";

    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
            return 0;
    return 1;
}

/* A breaker name as the library takes one: 1 to CBSHM_NAME_MAX bytes of
   A-Z a-z 0-9 . _ : - (validate.c's rule). */
static int breaker_name_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > CBSHM_NAME_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (s[i] == '\0' || (s[i] != ':' && !word_ok(s + i, 1, 1)))
            return 0;
    return 1;
}

/* The file's complaint as apply prints it: FILE:LINE:COL: key: message. */
/* The fleet: section of path into f->cfg, and where Redis is and who to
   log in as into f->target. */
static int load_config(struct fleet *f, const char *path)
{
    struct cbshm_config *cfg = NULL;
    char why[CBCTL_FLEET_WHY_MAX];
    int rc;

    if ((rc = cbctl_config_load(f->what, path, &cfg)) != CBCTL_CONTINUE)
        return rc;
    if (cfg->fleet == NULL) {
        cbctl_err("%s: %s has no fleet: section (redis:, name:): it says which fleet to reach",
                  f->what, path);
        cbshm_config_free(cfg);
        return CBCTL_CONFIG;
    }
    f->cfg = *cfg->fleet;
    cbshm_config_free(cfg);
    rc = cbctl_fleet_target_init(&f->target, &f->cfg, remaining_ms(f), why, sizeof why);
    if (rc != 0) {
        cbctl_err("%s: %s: %s", f->what, path, why);
        return CBCTL_CONFIG;
    }
    return CBCTL_CONTINUE;
}

static int connect_redis(struct fleet *f)
{
    char why[CBCTL_FLEET_WHY_MAX];
    uint64_t left = remaining_ms(f);

    f->target.connect_timeout_ms = left ? left : 1;
    if (cbctl_fleet_connect(&f->target, left ? left : 1, &f->redis, why, sizeof why) != 0) {
        cbctl_err("%s: %s", f->what, why);
        return CBCTL_FAILED;
    }
    return CBCTL_CONTINUE;
}

/* A reply of the type wanted, or NULL after saying what went wrong. */
static redisReply *checked(struct fleet *f, redisReply *r, const char *command, int type)
{
    if (r == NULL) {
        cbctl_err("%s: redis %s: %s: %s", f->what, f->target.label, command,
                  f->redis->errstr[0] ? f->redis->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cbctl_err("%s: redis %s: %s: %.*s", f->what, f->target.label, command, (int)r->len, r->str);
    } else if (r->type != type && !(type == REDIS_REPLY_ARRAY && r->type == REDIS_REPLY_NIL)) {
        cbctl_err("%s: redis %s: %s: unexpected reply (type %d)", f->what, f->target.label, command,
                  r->type);
    } else {
        return r;
    }
    freeReplyObject(r);
    return NULL;
}

/* Where a reply is awaited until: the end of --timeout, or a millisecond
   from now once it has passed (the last look at the acks). */
static uint64_t reply_deadline_ms(const struct fleet *f)
{
    uint64_t now = monotonic_ms();

    return f->deadline_ms > now ? f->deadline_ms : now + 1;
}

/* One command, its reply awaited no longer than --timeout has left, whole:
   a server that trickles it does not reset the clock. */
static redisReply *command(struct fleet *f, int type, int argc, const char **argv)
{
    void *r = NULL;

    if (redisAppendCommandArgv(f->redis, argc, argv, NULL) != REDIS_OK ||
        cbctl_fleet_get_reply(f->redis, reply_deadline_ms(f), &r) != REDIS_OK)
        return checked(f, NULL, argv[0], type);
    return checked(f, r, argv[0], type);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct host *)a)->id, ((const struct host *)b)->id);
}

static void hosts_free(struct hosts *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->all[i].hash != NULL)
            freeReplyObject(h->all[i].hash);
    free(h->all);
    h->all = NULL;
    h->n = 0;
}

/* What hosts_load asks for of each host's hash. */
enum fetch {
    FETCH_NONE,    /* nothing: who is live is the ZSET's word alone */
    FETCH_ALL,     /* HGETALL */
    FETCH_BREAKER, /* HMGET the breaker's field and .agent */
};

/*
 * Every host of the hosts ZSET that --hosts matches, sorted by id, each
 * with what `fetch` says of its hash. The hashes are asked for in one
 * pipeline. A host is stale when its score is past or, where its hash is
 * read, the hash has expired.
 */
static int hosts_load(struct fleet *f, enum fetch fetch, struct hosts *out, uint64_t now_ms)
{
    const char *breaker = fetch == FETCH_BREAKER ? f->breaker : NULL;
    char key[CBCTL_FLEET_KEY_MAX], bad[4 * HOST_ID_MAX + 4];
    const char *zrange[5] = {"ZRANGE", key, "0", "-1", "WITHSCORES"};
    redisReply *z;
    size_t n = 0, kept = 0;

    if (cbctl_fleet_key(key, sizeof key, f->cfg.name, "hosts", NULL) < 0 ||
        (z = command(f, REDIS_REPLY_ARRAY, 5, zrange)) == NULL)
        return CBCTL_FAILED;
    out->all = calloc(z->elements / 2 + 1, sizeof *out->all);
    if (out->all == NULL) {
        freeReplyObject(z);
        cbctl_err("%s: out of memory", f->what);
        return CBCTL_FAILED;
    }
    for (size_t i = 0; i + 1 < z->elements; i += 2) {
        const redisReply *m = z->element[i], *s = z->element[i + 1];
        struct host *h = &out->all[n];
        char *end;
        double score;

        if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING)
            continue;
        /* The ZSET is written by every host's agent: what is not a host
           id is said and left out, never used in a key. */
        if (!word_ok(m->str, m->len, HOST_ID_MAX)) {
            cbctl_err("%s: redis %s: %s holds '%s', not a host id: left out", f->what,
                      f->target.label, key, cbctl_safe(m->str, bad, sizeof bad));
            f->damaged = 1;
            continue;
        }
        if (fnmatch(f->glob, m->str, 0) != 0)
            continue;
        score = strtod(s->str, &end);
        memcpy(h->id, m->str, m->len);
        h->id[m->len] = '\0';
        /* Redis takes inf or 1e300 as a score, and the agents' ZCOUNT now
           +inf counts such a host live: so does this, without the
           conversion C leaves undefined past UINT64_MAX. */
        if (end == s->str || !(score > 0))
            h->live_until_ms = 0;
        else if (score >= 18446744073709551615.0)
            h->live_until_ms = UINT64_MAX;
        else
            h->live_until_ms = (uint64_t)score;
        h->stale = h->live_until_ms < now_ms;
        n++;
    }
    freeReplyObject(z);
    out->n = n;
    if (n > 1) /* none may be no array at all: qsort(NULL, 0) is undefined */
        qsort(out->all, n, sizeof *out->all, by_id);
    if (fetch == FETCH_NONE)
        return CBCTL_CONTINUE;

    for (size_t i = 0; i < n; i++) {
        const char *hget[4] = {breaker ? "HMGET" : "HGETALL", key, breaker, ".agent"};
        if (cbctl_fleet_key(key, sizeof key, f->cfg.name, "host", out->all[i].id) < 0 ||
            redisAppendCommandArgv(f->redis, breaker ? 4 : 2, hget, NULL) != REDIS_OK) {
            cbctl_err("%s: out of memory", f->what);
            return CBCTL_FAILED;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct host *h = &out->all[i];
        redisReply *r = NULL;
        if (cbctl_fleet_get_reply(f->redis, reply_deadline_ms(f), (void **)&r) != REDIS_OK) {
            checked(f, NULL, breaker ? "HMGET" : "HGETALL", REDIS_REPLY_ARRAY);
            return CBCTL_FAILED;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            /* Redis answered for this host alone (its key is of another
               type, or the ACL user may not read it): the host is left
               out, the rest of the fleet still shown. */
            cbctl_err("%s: host %s: its hash cannot be read (%.*s): left out", f->what, h->id,
                      (int)r->len, r->str);
            f->damaged = 1;
            freeReplyObject(r);
            continue;
        }
        if ((h->hash = checked(f, r, breaker ? "HMGET" : "HGETALL", REDIS_REPLY_ARRAY)) == NULL)
            return CBCTL_FAILED;
        /* An expired hash: HGETALL has nothing, HMGET has no .agent. */
        if (breaker != NULL && h->hash->elements != 2) {
            checked(f, h->hash, "HMGET", REDIS_REPLY_STRING); /* says it is unexpected */
            h->hash = NULL;
            return CBCTL_FAILED;
        }
        if (h->hash->elements == 0 ||
            (breaker != NULL && h->hash->element[1]->type != REDIS_REPLY_STRING))
            h->stale = 1;
    }
    /* The hosts left out above have no hash: close the gaps. */
    for (size_t i = 0; i < n; i++)
        if (out->all[i].hash != NULL)
            out->all[kept++] = out->all[i];
    out->n = kept;
    return CBCTL_CONTINUE;
}

/* A snapshot's JSON text (the agent's), parsed; NULL when it is not an object. */
static json_t *snapshot_parse(const redisReply *v)
{
    json_t *o;

    if (v == NULL || v->type != REDIS_REPLY_STRING)
        return NULL;
    o = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, NULL);
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static const char *text_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* Where list counts a host's breaker: its state in mode normal, else its
   mode, a fleet trip's forced_open on its own. */
enum bucket {
    B_CLOSED,
    B_OPEN,
    B_HALF_OPEN,
    B_FORCED_OPEN,
    B_FORCED_CLOSED,
    B_DISABLED,
    B_FLEET,
    B_N
};
static const char *const bucket_keys[B_N] = {
    "closed", "open", "half_open", "forced_open", "forced_closed", "disabled", "fleet"};

static int bucket_of(json_t *o)
{
    const char *state = text_of(o, "state"), *mode = text_of(o, "mode");

    if (strcmp(mode, "normal") == 0) {
        for (int b = B_CLOSED; b <= B_HALF_OPEN; b++)
            if (strcmp(state, bucket_keys[b]) == 0)
                return b;
        return -1;
    }
    if (strcmp(mode, "forced_open") == 0 && strcmp(text_of(o, "mode_cause"), "fleet") == 0)
        return B_FLEET;
    for (int b = B_FORCED_OPEN; b <= B_DISABLED; b++)
        if (strcmp(mode, bucket_keys[b]) == 0)
            return b;
    return -1;
}

/* One breaker of one host, for list: sorted by breaker, then host. */
struct entry {
    const char *breaker; /* in the host's HGETALL reply */
    const struct host *host;
    int bucket; /* enum bucket; -1: a stale host's */
};

static int by_breaker(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->breaker, y->breaker);
    return c != 0 ? c : strcmp(x->host->id, y->host->id);
}

static int list(struct fleet *f)
{
    uint64_t now_ms = cbctl_fleet_wall_ms();
    struct hosts hosts = {NULL, 0};
    struct entry *entries = NULL;
    size_t n_entries = 0, cap = 0, n_stale = 0;
    char name[CBCTL_SAFE_MAX];
    json_t *doc = NULL, *rows = NULL, *live = NULL, *stale = NULL;
    int rc;

    if ((rc = hosts_load(f, FETCH_ALL, &hosts, now_ms)) != CBCTL_CONTINUE)
        goto out;
    rc = CBCTL_FAILED;
    for (size_t i = 0; i < hosts.n; i++) {
        const redisReply *hash = hosts.all[i].hash;
        n_stale += hosts.all[i].stale;
        for (size_t k = 0; k + 1 < hash->elements; k += 2) {
            const redisReply *field = hash->element[k];
            json_t *o;
            int bucket = -1;
            if (field->type != REDIS_REPLY_STRING || field->str[0] == '.')
                continue; /* .agent, and whatever later agents add beside the breakers */
            if (!breaker_name_ok(field->str, field->len)) {
                cbctl_err("%s: host %s: a field of its hash is not a breaker name: left out",
                          f->what, hosts.all[i].id);
                f->damaged = 1;
                continue;
            }
            if (!hosts.all[i].stale) {
                o = snapshot_parse(hash->element[k + 1]);
                bucket = o != NULL ? bucket_of(o) : -1;
                json_decref(o);
                if (bucket < 0) {
                    cbctl_err("%s: host %s: breaker %s: its snapshot cannot be read: left out",
                              f->what, hosts.all[i].id, field->str);
                    f->damaged = 1;
                    continue;
                }
            }
            if (n_entries == cap) {
                struct entry *more = realloc(entries, (cap = cap ? 2 * cap : 64) * sizeof *more);
                if (more == NULL) {
                    cbctl_err("%s: out of memory", f->what);
                    goto out;
                }
                entries = more;
            }
            entries[n_entries++] = (struct entry){field->str, &hosts.all[i], bucket};
        }
    }
    if (n_entries > 1)
        qsort(entries, n_entries, sizeof *entries, by_breaker);

    if (f->json) {
        doc = json_object();
        rows = json_array();
        live = json_array();
        stale = json_array();
        json_object_set_new(doc, "fleet", json_string(f->cfg.name));
        json_object_set_new(doc, "time", json_integer((json_int_t)now_ms));
        for (size_t i = 0; i < hosts.n; i++) {
            const struct host *h = &hosts.all[i];
            if (!h->stale) {
                json_array_append_new(live, json_string(h->id));
                continue;
            }
            json_array_append_new(
                stale, json_pack("{s:s, s:I, s:s}", "host", h->id, "live_until",
                                 (json_int_t)h->live_until_ms, "reason",
                                 h->live_until_ms < now_ms ? "no heartbeat" : "no snapshot"));
        }
        json_object_set_new(doc, "hosts", json_pack("{s:o, s:o}", "live", live, "stale", stale));
    } else {
        printf("fleet %s: %zu hosts live, %zu stale\n", f->cfg.name, hosts.n - n_stale, n_stale);
        printf("%-32s %5s %6s %6s %9s %11s %13s %8s %6s %5s\n", "BREAKER", "HOSTS", "CLOSED",
               "OPEN", "HALF-OPEN", "FORCED-OPEN", "FORCED-CLOSED", "DISABLED", "FLEET", "STALE");
    }
    for (size_t i = 0; i < n_entries;) {
        unsigned count[B_N] = {0}, total = 0, stale_here = 0;
        json_t *row = NULL, *stale_hosts = NULL;
        size_t j;

        if (f->json)
            stale_hosts = json_array();
        for (j = i; j < n_entries && strcmp(entries[j].breaker, entries[i].breaker) == 0; j++) {
            if (entries[j].bucket < 0) {
                stale_here++;
                if (f->json)
                    json_array_append_new(stale_hosts, json_string(entries[j].host->id));
            } else {
                count[entries[j].bucket]++;
                total++;
            }
        }
        if (f->json) {
            row = json_pack("{s:s, s:I}", "name", entries[i].breaker, "hosts", (json_int_t)total);
            for (int b = 0; b < B_N; b++)
                json_object_set_new(row, bucket_keys[b], json_integer(count[b]));
            json_object_set_new(row, "stale", stale_hosts);
            json_array_append_new(rows, row);
        } else {
            printf("%-32s %5u %6u %6u %9u %11u %13u %8u %6u %5u\n",
                   cbctl_safe(entries[i].breaker, name, sizeof name), total, count[B_CLOSED],
                   count[B_OPEN], count[B_HALF_OPEN], count[B_FORCED_OPEN], count[B_FORCED_CLOSED],
                   count[B_DISABLED], count[B_FLEET], stale_here);
        }
        i = j;
    }
    if (f->json) {
        json_object_set_new(doc, "breakers", rows);
        rc = cbctl_print_json(doc);
        goto out;
    }
    if (n_stale > 0) {
        puts("stale hosts:");
        for (size_t i = 0; i < hosts.n; i++) {
            const struct host *h = &hosts.all[i];
            if (!h->stale)
                continue;
            if (h->live_until_ms < now_ms) {
                char age[32];
                cbctl_format_duration(age, sizeof age, now_ms - h->live_until_ms);
                printf("  %s: no heartbeat: stale for %s\n", h->id, age);
            } else {
                printf("  %s: no snapshot (its hash expired or was never written)\n", h->id);
            }
        }
    }
    rc = CBCTL_OK;
out:
    free(entries);
    hosts_free(&hosts);
    return rc;
}

/* Since when, as "12s ago"; "-" when the agent did not say. */
static void format_since(char *buf, size_t size, json_t *o, uint64_t now_ms)
{
    json_int_t since = json_integer_value(json_object_get(o, "since"));
    char age[32];

    if (since <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    cbctl_format_duration(age, sizeof age, now_ms > (uint64_t)since ? now_ms - (uint64_t)since : 0);
    snprintf(buf, size, "%s ago", age);
}

/* A word the agent wrote, as it may be printed: the words it writes are
   plain ASCII, anything else is escaped. */
static const char *word(json_t *o, const char *key, char *buf, size_t size)
{
    const char *s = text_of(o, key);
    return s[0] != '\0' ? cbctl_safe(s, buf, size) : "-";
}

/* A key of the agents' snapshot JSON (the fleet's key schema). */
static int snapshot_key(const char *key)
{
    static const char *const keys[] = {"state",    "mode",      "mode_cause", "trips",
                                       "failures", "successes", "rejections", "since"};

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* One line of show; the SINCE column is padded only when a note follows,
   so no line ends in blanks. */
static void show_row(const char *host, const char *state, const char *mode, const char *cause,
                     const char *trips, const char *since, const char *note)
{
    printf("%-24s %-10s %-14s %-13s %6s %-*s%s%s\n", host, state, mode, cause, trips,
           note[0] ? 12 : 0, since, note[0] ? " " : "", note);
}

static int show(struct fleet *f)
{
    uint64_t now_ms = cbctl_fleet_wall_ms();
    struct hosts hosts = {NULL, 0};
    json_t *doc = NULL, *rows = NULL, *without = NULL, *unknown = NULL;
    char name[CBCTL_SAFE_MAX];
    size_t reported = 0;
    int rc;

    if ((rc = hosts_load(f, FETCH_BREAKER, &hosts, now_ms)) != CBCTL_CONTINUE)
        goto out;
    if (f->json) {
        doc = json_pack("{s:s, s:s, s:I}", "fleet", f->cfg.name, "breaker", f->breaker, "time",
                        (json_int_t)now_ms);
        rows = json_array();
        without = json_array();
        unknown = json_array();
    } else {
        show_row("HOST", "STATE", "MODE", "CAUSE", "TRIPS", "SINCE", "");
    }
    for (size_t i = 0; i < hosts.n; i++) {
        const struct host *h = &hosts.all[i];
        json_t *o = snapshot_parse(h->hash->element[0]);
        char state[32], mode[32], cause[32], since[48], stale_for[32], trips[24], note[96] = "";

        if (h->live_until_ms < now_ms) {
            cbctl_format_duration(stale_for, sizeof stale_for, now_ms - h->live_until_ms);
            snprintf(note, sizeof note, "stale: no heartbeat for %s", stale_for);
        } else if (h->stale) {
            snprintf(note, sizeof note, "stale: no snapshot");
        }
        if (o == NULL && h->hash->element[0]->type == REDIS_REPLY_STRING) {
            cbctl_err("%s: host %s: its snapshot cannot be read: left out", f->what, h->id);
            f->damaged = 1;
            continue;
        }
        if (o == NULL) {
            /* Live without it: the breaker is not configured there. */
            if (f->json)
                json_array_append_new(h->stale ? unknown : without, json_string(h->id));
            else
                show_row(h->id, "-", "-", "-", "-", "-",
                         h->stale ? note : "no such breaker on this host");
            continue;
        }
        reported++;
        if (f->json) {
            json_t *row = json_pack("{s:s, s:b}", "host", h->id, "stale", h->stale);
            const char *key;
            json_t *value;
            json_object_foreach(o, key, value)
            {
                /* Only the keys the schema names, so a scribbled hash can
                   neither speak for another host ("host") nor call a stale
                   one live ("stale"); strings escaped, so no byte that is
                   not text reaches the document. */
                if (!snapshot_key(key))
                    continue;
                if (json_is_string(value))
                    json_object_set_new(
                        row, key,
                        json_string(cbctl_safe(json_string_value(value), name, sizeof name)));
                else if (json_is_integer(value) || json_is_boolean(value))
                    json_object_set(row, key, value);
            }
            json_array_append_new(rows, row);
        } else {
            snprintf(trips, sizeof trips, "%" PRId64,
                     (int64_t)json_integer_value(json_object_get(o, "trips")));
            format_since(since, sizeof since, o, now_ms);
            show_row(h->id, word(o, "state", state, sizeof state),
                     word(o, "mode", mode, sizeof mode), word(o, "mode_cause", cause, sizeof cause),
                     trips, since, note);
        }
        json_decref(o);
    }
    if (reported == 0) {
        json_decref(doc);
        json_decref(rows);
        json_decref(without);
        json_decref(unknown);
        cbctl_err("%s: no host of fleet %s reports breaker %s", f->what, f->cfg.name, f->breaker);
        rc = CBCTL_FAILED;
        goto out;
    }
    if (f->json) {
        json_object_set_new(doc, "hosts", rows);
        json_object_set_new(doc, "without", without);
        json_object_set_new(doc, "no_snapshot", unknown);
        rc = cbctl_print_json(doc);
        goto out;
    }
    rc = CBCTL_OK;
out:
    hosts_free(&hosts);
    return rc;
}

/* "user@hostname" of whoever issues a command, for the stream's `by`. */
static void issuer(char *buf, size_t size)
{
    const char *user = getenv("SUDO_USER");
    struct passwd *pw;
    char host[256], uid[24];

    if (getuid() != 0 || user == NULL || user[0] == '\0') {
        pw = getpwuid(getuid());
        snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
        user = pw != NULL ? pw->pw_name : uid;
    }
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    snprintf(buf, size, "%s@%s", user, host);
}

/* One host's answer to a command. */
enum answer { A_NONE, A_APPLIED, A_ERROR };

struct reply {
    char id[HOST_ID_MAX + 1];
    enum answer answer;
    char message[256]; /* A_ERROR: the agent's words, escaped */
    int asked;         /* 1: a live host --hosts matches, so it must answer */
};

static int reply_by_id(const void *a, const void *b)
{
    return strcmp(((const struct reply *)a)->id, ((const struct reply *)b)->id);
}

struct replies {
    struct reply *all;
    size_t n, cap;
    size_t sorted;  /* all[0..sorted) is in order: what reply_find searches */
    size_t waiting; /* asked hosts without an answer */
    int error_said; /* Redis refused to read the ack hash, and stderr said so */
};

static struct reply *reply_find(struct replies *r, const char *id)
{
    struct reply key;

    snprintf(key.id, sizeof key.id, "%s", id);
    return bsearch(&key, r->all, r->sorted, sizeof *r->all, reply_by_id);
}

/* A host that answered without being asked (it became live, or matched
   while stale), put at the end: poll_acks sorts once after a look, since
   one HGETALL holds each host once, and sorting at each of 100,000 such
   acks took minutes. */
static struct reply *reply_append(struct replies *r, const char *id)
{
    struct reply *at;

    if (r->n == r->cap) {
        struct reply *more = realloc(r->all, (r->cap = r->cap ? 2 * r->cap : 8) * sizeof *more);
        if (more == NULL)
            return NULL;
        r->all = more;
    }
    at = &r->all[r->n++];
    memset(at, 0, sizeof *at);
    snprintf(at->id, sizeof at->id, "%s", id);
    return at;
}

/* "ok <wall ms>" or "error <message>", as the agents write an ack. */
static void take_answer(struct reply *to, const redisReply *v)
{
    if (to->answer != A_NONE)
        return;
    if (v->type == REDIS_REPLY_STRING && v->len >= 2 && memcmp(v->str, "ok", 2) == 0 &&
        (v->len == 2 || v->str[2] == ' ')) {
        to->answer = A_APPLIED;
    } else if (v->type == REDIS_REPLY_STRING && v->len > 6 && memcmp(v->str, "error ", 6) == 0) {
        char escaped[sizeof to->message];
        to->answer = A_ERROR;
        /* cbctl_safe returns its input itself when nothing needs escaping. */
        snprintf(to->message, sizeof to->message, "%s",
                 cbctl_safe(v->str + 6, escaped, sizeof escaped));
    } else {
        to->answer = A_ERROR;
        snprintf(to->message, sizeof to->message, "an ack cbctl cannot read");
    }
    if (to->message[0] == '\0' && to->answer == A_ERROR)
        snprintf(to->message, sizeof to->message, "an error without a message");
}

/* The acks so far into r; 0, or -1 when the connection is lost. */
static int poll_acks(struct fleet *f, const char *ack_key, struct replies *r)
{
    const char *argv[2] = {"HGETALL", ack_key};
    char bad[4 * HOST_ID_MAX + 4];
    redisReply *acks = NULL;

    if (f->redis == NULL)
        return -1;
    if (redisAppendCommandArgv(f->redis, 2, argv, NULL) != REDIS_OK ||
        cbctl_fleet_get_reply(f->redis, reply_deadline_ms(f), (void **)&acks) != REDIS_OK) {
        checked(f, NULL, "HGETALL", REDIS_REPLY_ARRAY);
        return -1;
    }
    if (acks->type == REDIS_REPLY_ERROR) {
        /* Redis answered, so the connection stands: the key is of another
           type (no agent can ack into it either) or Redis is loading.
           Said once, not at every look, and looked at until the timeout. */
        if (!r->error_said)
            checked(f, acks, "HGETALL", REDIS_REPLY_ARRAY);
        else
            freeReplyObject(acks);
        r->error_said = 1;
        return 0;
    }
    if ((acks = checked(f, acks, "HGETALL", REDIS_REPLY_ARRAY)) == NULL)
        return 0;
    for (size_t k = 0; k + 1 < acks->elements; k += 2) {
        const redisReply *host = acks->element[k];
        struct reply *to;
        if (host->type != REDIS_REPLY_STRING || !word_ok(host->str, host->len, HOST_ID_MAX)) {
            /* Said once, not at every look. */
            if (!f->damaged)
                cbctl_err("%s: %s holds an ack of '%s', not a host id: left out", f->what, ack_key,
                          host->type == REDIS_REPLY_STRING ? cbctl_safe(host->str, bad, sizeof bad)
                                                           : "?");
            f->damaged = 1;
            continue;
        }
        if ((to = reply_find(r, host->str)) == NULL) {
            /* Agents outside --hosts write no ack: one from such a host is
               not an agent's, and is not reported. */
            if (fnmatch(f->glob, host->str, 0) != 0 || (to = reply_append(r, host->str)) == NULL)
                continue;
        }
        if (to->answer == A_NONE && to->asked)
            r->waiting--;
        take_answer(to, acks->element[k + 1]);
    }
    freeReplyObject(acks);
    if (r->sorted != r->n)
        qsort(r->all, r->n, sizeof *r->all, reply_by_id);
    r->sorted = r->n;
    return 0;
}

/* After a lost connection, one attempt to get it back, quietly: the loss
   was said, and the acks are still wanted until the deadline. */
static void reconnect(struct fleet *f)
{
    char why[CBCTL_FLEET_WHY_MAX];
    uint64_t left = remaining_ms(f);

    if (f->redis != NULL)
        redisFree(f->redis);
    f->redis = NULL;
    if (left == 0)
        return;
    f->target.connect_timeout_ms = left;
    if (cbctl_fleet_connect(&f->target, left, &f->redis, why, sizeof why) != 0)
        f->redis = NULL;
}

static void nap_ns(long ns)
{
    struct timespec ts = {0, ns};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int report(struct fleet *f, const char *id, const struct replies *r, double seconds)
{
    size_t failed = 0;
    json_t *applied = NULL, *errors = NULL, *missing = NULL;

    if (f->json) {
        applied = json_array();
        errors = json_object();
        missing = json_array();
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct reply *h = &r->all[i];
        failed += h->answer != A_APPLIED;
        if (f->json) {
            if (h->answer == A_APPLIED)
                json_array_append_new(applied, json_string(h->id));
            else if (h->answer == A_ERROR)
                json_object_set_new(errors, h->id, json_string(h->message));
            else
                json_array_append_new(missing, json_string(h->id));
        } else if (h->answer == A_APPLIED) {
            printf("%s: applied\n", h->id);
        } else if (h->answer == A_ERROR) {
            printf("%s: error: %s\n", h->id, h->message);
        } else {
            printf("%s: no answer\n", h->id);
        }
    }
    if (f->json &&
        cbctl_print_json(json_pack("{s:s, s:o, s:o, s:o, s:f}", "command", id, "applied", applied,
                                   "errors", errors, "missing", missing, "seconds", seconds)) != 0)
        return CBCTL_FAILED;
    if (failed == 0)
        return CBCTL_OK;
    for (size_t i = 0; i < r->n; i++) {
        const struct reply *h = &r->all[i];
        if (h->answer == A_ERROR)
            cbctl_err("%s: host %s: %s", f->what, h->id, h->message);
        else if (h->answer == A_NONE)
            cbctl_err("%s: host %s: no answer within the timeout", f->what, h->id);
    }
    cbctl_err("%s: %zu of %zu hosts did not apply command %s", f->what, failed, r->n, id);
    return CBCTL_FAILED;
}

/*
 * A write verb: the live hosts --hosts matches are the ones that must
 * answer; the command goes to the stream once, then their acks are read
 * every few milliseconds until each has answered or --timeout is over.
 */
static int issue(struct fleet *f, uint64_t for_ms)
{
    uint64_t now_ms = cbctl_fleet_wall_ms();
    struct hosts hosts = {NULL, 0};
    struct replies r = {NULL, 0, 0, 0, 0, 0};
    char key[CBCTL_FLEET_KEY_MAX], ack_key[CBCTL_FLEET_KEY_MAX], by[320], for_text[24],
        time_text[24], id[CBCTL_FLEET_ID_MAX + 1];
    struct cbshm_fleet_id parsed;
    struct timespec t0;
    redisReply *added;
    int rc;

    if ((rc = hosts_load(f, FETCH_NONE, &hosts, now_ms)) != CBCTL_CONTINUE)
        goto out;
    rc = CBCTL_FAILED;
    if ((r.all = calloc(hosts.n + 1, sizeof *r.all)) == NULL) {
        cbctl_err("%s: out of memory", f->what);
        goto out;
    }
    r.cap = hosts.n + 1;
    for (size_t i = 0; i < hosts.n; i++) {
        if (hosts.all[i].stale)
            continue;
        snprintf(r.all[r.n].id, sizeof r.all[r.n].id, "%s", hosts.all[i].id);
        r.all[r.n++].asked = 1;
    }
    r.waiting = r.n;
    r.sorted = r.n;
    if (r.n == 0) {
        /* Nobody would apply it: a new agent starts from the stream's end. */
        cbctl_err("%s: no live host of fleet %s matches --hosts '%s' (%zu known, none live): "
                  "nothing issued",
                  f->what, f->cfg.name, f->glob, hosts.n);
        goto out;
    }

    issuer(by, sizeof by);
    snprintf(for_text, sizeof for_text, "%" PRIu64, for_ms);
    snprintf(time_text, sizeof time_text, "%" PRIu64, cbctl_fleet_wall_ms());
    if (cbctl_fleet_key(key, sizeof key, f->cfg.name, "commands", NULL) < 0)
        goto out;
    {
        const char *argv[] = {"XADD",   key,      "MAXLEN",          "~",       "10000",
                              "*",      "op",     verbs[f->op].name, "breaker", f->breaker,
                              "for_ms", for_text, "hosts",           f->glob,   "by",
                              by,       "time",   time_text};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if ((added = command(f, REDIS_REPLY_STRING, (int)(sizeof argv / sizeof argv[0]), argv)) ==
            NULL)
            goto out;
    }
    if (cbctl_fleet_id_parse(added->str, added->len, &parsed) != 0) {
        cbctl_err("%s: redis %s: XADD answered '%.40s', not a stream id", f->what, f->target.label,
                  added->str);
        freeReplyObject(added);
        goto out;
    }
    freeReplyObject(added);
    cbctl_fleet_id_format(&parsed, id, sizeof id);
    if (cbctl_fleet_key(ack_key, sizeof ack_key, f->cfg.name, "ack", id) < 0)
        goto out;
    if (!f->json) {
        cbctl_format_ms(for_text, sizeof for_text, for_ms);
        printf("fleet %s: %s %s%s%s on %zu live host%s (command %s)\n", f->cfg.name,
               verbs[f->op].name, f->breaker, for_ms ? " for " : "", for_ms ? for_text : "", r.n,
               r.n == 1 ? "" : "s", id);
    }

    for (long nap = ACK_POLL_FIRST_NS;;
         nap = nap * 2 < ACK_POLL_MAX_NS ? nap * 2 : ACK_POLL_MAX_NS) {
        if (poll_acks(f, ack_key, &r) != 0)
            reconnect(f);
        if (r.waiting == 0 || remaining_ms(f) == 0)
            break;
        nap_ns((long)remaining_ms(f) * 1000000L < nap ? (long)remaining_ms(f) * 1000000L : nap);
    }
    rc = report(f, id, &r, seconds_since(&t0));
out:
    free(r.all);
    hosts_free(&hosts);
    return rc;
}

/* A --hosts glob goes into the stream for every agent to read: printable
   ASCII, 1 to 255 bytes. */
static int glob_ok(const char *glob)
{
    size_t len = strlen(glob);

    if (len == 0 || len > 255)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)glob[i] < 0x20 || (unsigned char)glob[i] >= 0x7f)
            return 0;
    return 1;
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct fleet f;
    int rc;

    (void)ctl;
    (void)shm; /* the fleet's view is Redis's, never this host's segment */
    memset(&f, 0, sizeof f);
    for (f.op = OP_LIST; strcmp(verbs[f.op].name, args->names[0]) != 0; f.op++)
        ;
    f.breaker = verbs[f.op].takes_name ? args->names[1] : NULL;
    f.glob = args->hosts != NULL ? args->hosts : "*";
    f.json = args->json;
    snprintf(f.what, sizeof f.what, "fleet %s%s%.64s", verbs[f.op].name, f.breaker ? " " : "",
             f.breaker ? f.breaker : "");

    if (f.breaker != NULL && !breaker_name_ok(f.breaker, strlen(f.breaker)))
        return cbctl_usage_error(
            &cbctl_cmd_fleet, "%s: invalid breaker name '%s' (1..%d bytes of A-Z a-z 0-9 . _ : -)",
            verbs[f.op].name, f.breaker, CBSHM_NAME_MAX);
    if (args->for_ms != 0 && f.op != OP_OPEN && f.op != OP_CLOSE && f.op != OP_DISABLE)
        return cbctl_usage_error(&cbctl_cmd_fleet, "%s: --for is for open, close and disable",
                                 verbs[f.op].name);
    if (!glob_ok(f.glob))
        return cbctl_usage_error(&cbctl_cmd_fleet,
                                 "--hosts wants a glob of host ids such as 'web-*' (1 to 255 "
                                 "printable bytes), got '%s'",
                                 f.glob);
    f.deadline_ms = monotonic_ms() + (args->timeout_ms ? args->timeout_ms : DEFAULT_TIMEOUT_MS);

    if ((rc = load_config(&f, args->file)) != CBCTL_CONTINUE)
        goto out;
    if ((rc = connect_redis(&f)) != CBCTL_CONTINUE)
        goto out;
    switch (f.op) {
    case OP_LIST:
        rc = list(&f);
        break;
    case OP_SHOW:
        rc = show(&f);
        break;
    default:
        rc = issue(&f, args->for_ms);
        break;
    }
    if (rc == CBCTL_OK && f.damaged)
        rc = CBCTL_FAILED;
out:
    if (f.redis != NULL)
        redisFree(f.redis);
    cbctl_fleet_target_clear(&f.target);
    return rc;
}

static const struct cbctl_option options[] = {
    CBCTL_STRING("config", 'c', "FILE", file, 1,
                 "the YAML whose fleet: section says which fleet and which Redis"),
    CBCTL_DURATION("for", 0, "DURATION", for_ms,
                   "open, close, disable: for this long (250ms, 5s, 2m, 1h), then back to "
                   "normal by itself"),
    CBCTL_STRING("hosts", 0, "GLOB", hosts, 0,
                 "only the hosts whose host_id matches (fnmatch: 'web-*'; default every host)"),
    CBCTL_DURATION("timeout", 0, "DURATION", timeout_ms,
                   "wait this long for Redis and for every host's ack (default 10s)"),
    CBCTL_OPTIONS_END,
};

const struct cbctl_cmd cbctl_cmd_fleet = {
    .name = "fleet",
    .summary = "see and steer every host's breakers through the fleet's Redis",
    .options = options,
    .attach = CBCTL_ATTACH_NONE,
    .names = CBCTL_NAMES_VERB,
    .verbs = verbs,
    .json = "one JSON document: list's counts, show's hosts, or a command's acks",
    .run = run,
};
