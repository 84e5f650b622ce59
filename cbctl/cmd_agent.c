/* SPDX-License-Identifier: MIT */
/*
 * cbctl agent --config FILE: this host's member of the fleet. One long-
 * running process per host follows the segment's event ring into the
 * fleet's Redis stream, publishes every breaker's state (on change and at
 * each heartbeat), applies the fleet's commands exactly once through
 * cbshm_fleet_apply, and forces a breaker open while enough other hosts
 * see it open by their own trips (the fleet trip).
 *
 * Redis is the control plane only: workers never wait on it, and while it
 * is away the agent changes no breaker (it keeps renewing the fleet
 * forces it holds, so they stand) and tries again with capped backoff.
 *
 * One thread, one connection: each pass reads the event ring, publishes
 * what changed, then waits at most BLOCK_MS in XREAD BLOCK for commands,
 * so an event reaches Redis within BLOCK_MS and a command is applied as
 * soon as it is written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cbctl.h"
#include "fleet_redis.h"

/* How long one XREAD waits for a command: the longest an event waits to
   be published, and a SIGTERM to be obeyed. */
#define BLOCK_MS           250
#define CONNECT_TIMEOUT_MS 2000
/* Replies are awaited this long beyond the block: a Redis that stopped
   answering counts as gone. */
#define REPLY_TIMEOUT_MS (BLOCK_MS + 2750)
#define EVENTS_BATCH     64
/* At most one ring's worth of events a pass: workers that make events
   faster than Redis takes them must not keep the agent from its commands,
   its heartbeat and a SIGTERM (what the ring overwrites meanwhile is
   counted and said). */
#define EVENTS_PER_PASS 1024
#define COMMANDS_BATCH  16
#define ACK_TTL_MS      86400000u /* an ack hash lives a day */
#define STREAM_MAXLEN   "10000"

static volatile sig_atomic_t stop_requested;
/* The connection's socket, -1 while there is none: set before the
   connection is used, cleared before it is freed. */
static volatile sig_atomic_t redis_fd = -1;

/* A stop is obeyed at the end of the pass (within BLOCK_MS). hiredis
   retries a read that a signal interrupts, so a Redis that stopped
   answering (SIGSTOPped, a half-written reply) would hold the agent for
   REPLY_TIMEOUT_MS: a second after the stop, the socket is shut down
   under the read. An ack lost so is written at the next start. */
static void on_alarm(int sig)
{
    (void)sig;
    if (redis_fd >= 0)
        shutdown(redis_fd, SHUT_RDWR);
}

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
    alarm(1);
}

/* A breaker's fleet-trip bookkeeping, kept across heartbeats. */
struct trip {
    char name[CBSHM_NAME_MAX + 1];
    uint64_t below_since_ms; /* monotonic: since when fewer hosts than needed were open; 0: not */
    int seen;                /* still in the segment at the last walk */
};

/* A breaker name this host is listed under in open:<breaker>. */
struct member {
    char name[CBSHM_NAME_MAX + 1];
};

struct agent {
    const struct cbshm_fleet_config *fc;
    const char *segment;
    struct cbshm *shm;
    struct cbctl_fleet_target target;
    redisContext *redis; /* NULL while disconnected */
    struct cbctl_fleet_backoff backoff;
    uint64_t retry_at_ms; /* monotonic: the next connection attempt */
    uint64_t heartbeat_ms, next_heartbeat_at_ms;
    uint64_t connected_since_wall_ms;
    uint64_t event_cursor;
    struct cbshm_fleet_id applied; /* the segment's last consumed command */
    struct cbshm_fleet_id newest;  /* the newest command seen in the stream */
    int dirty;                     /* an event since the last publish */
    int events_pending;            /* the last pass left events in the ring: do not block */
    struct cbshm_fleet_status status;
    uint64_t status_written_at_ms;
    char key_events[CBCTL_FLEET_KEY_MAX], key_hosts[CBCTL_FLEET_KEY_MAX];
    char key_commands[CBCTL_FLEET_KEY_MAX], key_host[CBCTL_FLEET_KEY_MAX];
    struct cbshm_snapshot *all; /* the last walk of the table */
    size_t n_all, cap_all;
    struct trip *trips;
    size_t n_trips, cap_trips;
    struct member *members;
    size_t n_members;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL); /* a stop signal cuts it short */
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cbctl_verr("agent", fmt, ap);
    va_end(ap);
}

/* ---- Redis exchanges ------------------------------------------------- */

static void disconnect(struct agent *a, const char *why)
{
    if (a->redis == NULL)
        return;
    say("disconnected from redis %s: %s", a->target.label, why);
    redis_fd = -1;
    redisFree(a->redis);
    a->redis = NULL;
    a->status.connected = 0;
    a->retry_at_ms = mono_ms() + cbctl_fleet_backoff_next_ms(&a->backoff);
}

static void contact(struct agent *a)
{
    a->status.contact_wall_ns = (uint64_t)cbctl_fleet_wall_ms() * 1000000u;
}

/*
 * A batch of commands appended with redisAppendCommandArgv: reads n
 * replies. Returns 0 when all came and none is an error; -1 after
 * disconnecting (the connection failed); 1 when some reply is an error,
 * said with `what`. replies (may be NULL) gets them, freed by the caller.
 */
static int collect_replies(struct agent *a, int n, const char *what, redisReply **replies)
{
    /* One deadline for the batch: a Redis that trickles its bytes would
       hold a read per byte under a socket timeout, for good. */
    uint64_t deadline_ms = mono_ms() + REPLY_TIMEOUT_MS;
    int errors = 0;

    for (int i = 0; i < n; i++) {
        void *r = NULL;
        if (cbctl_fleet_get_reply(a->redis, deadline_ms, &r) != REDIS_OK || r == NULL) {
            char why[256];
            snprintf(why, sizeof why, "%s: %s", what,
                     a->redis->errstr[0] ? a->redis->errstr : "connection lost");
            for (int k = 0; replies != NULL && k < i; k++)
                freeReplyObject(replies[k]);
            disconnect(a, why);
            return -1;
        }
        if (((redisReply *)r)->type == REDIS_REPLY_ERROR && errors++ == 0)
            say("%s: redis says: %s", what, ((redisReply *)r)->str);
        if (replies != NULL)
            replies[i] = r;
        else
            freeReplyObject(r);
    }
    contact(a);
    return errors ? 1 : 0;
}

/* One command, its reply or NULL (disconnected, or a Redis error said). */
static redisReply *command(struct agent *a, const char *what, int argc, const char **argv,
                           const size_t *lens)
{
    redisReply *r = NULL;

    if (redisAppendCommandArgv(a->redis, argc, argv, lens) != REDIS_OK) {
        disconnect(a, "out of memory");
        return NULL;
    }
    if (collect_replies(a, 1, what, &r) < 0)
        return NULL;
    if (r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* argv of up to a few dozen words, their lengths computed. */
struct words {
    const char **argv;
    size_t *lens;
    int n, cap;
};

static int words_add(struct words *w, const char *s, size_t len)
{
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 32;
        const char **argv = realloc(w->argv, (size_t)cap * sizeof *argv);
        size_t *lens;
        if (argv == NULL)
            return -1;
        w->argv = argv;
        if ((lens = realloc(w->lens, (size_t)cap * sizeof *lens)) == NULL)
            return -1;
        w->lens = lens;
        w->cap = cap;
    }
    w->argv[w->n] = s;
    w->lens[w->n++] = len;
    return 0;
}

static int words_str(struct words *w, const char *s)
{
    return words_add(w, s, strlen(s));
}

static void words_free(struct words *w)
{
    free(w->argv);
    free(w->lens);
}

/* ---- The table ------------------------------------------------------- */

static int collect(void *ctx, const struct cbshm_snapshot *s)
{
    struct agent *a = ctx;

    if (a->n_all == a->cap_all) {
        size_t cap = a->cap_all ? a->cap_all * 2 : 64;
        struct cbshm_snapshot *all = realloc(a->all, cap * sizeof *all);
        if (all == NULL)
            return -1;
        a->all = all;
        a->cap_all = cap;
    }
    a->all[a->n_all++] = *s;
    return 0;
}

/* Walks the table into a->all. A corrupt slot is left out (cbctl check
   names it); returns 0, or the walk's code. */
static int walk(struct agent *a)
{
    int rc;

    a->n_all = 0;
    rc = cbshm_foreach(a->shm, collect, a);
    if (rc == CBSHM_ECORRUPT)
        rc = 0;
    if (rc != 0)
        say("segment %s: cannot read the breakers: %s", a->segment,
            rc == CBSHM_ESTOPPED ? "out of memory" : cbshm_strerror(rc));
    return rc;
}

/* Open or half-open by its own state machine: what open:<breaker> lists. */
static int own_open(const struct cbshm_snapshot *s)
{
    return s->mode == CBSHM_MODE_NORMAL && s->state != CBSHM_STATE_CLOSED;
}

static int fleet_forced(const struct cbshm_snapshot *s)
{
    return s->mode == CBSHM_MODE_FORCED_OPEN && s->mode_cause == CBSHM_CAUSE_FLEET;
}

static struct trip *trip_of(struct agent *a, const char *name)
{
    for (size_t i = 0; i < a->n_trips; i++)
        if (strcmp(a->trips[i].name, name) == 0)
            return &a->trips[i];
    if (a->n_trips == a->cap_trips) {
        size_t cap = a->cap_trips ? a->cap_trips * 2 : 16;
        struct trip *t = realloc(a->trips, cap * sizeof *t);
        if (t == NULL)
            return NULL;
        a->trips = t;
        a->cap_trips = cap;
    }
    memset(&a->trips[a->n_trips], 0, sizeof a->trips[0]);
    snprintf(a->trips[a->n_trips].name, sizeof a->trips[0].name, "%s", name);
    return &a->trips[a->n_trips++];
}

/* ---- Status in the segment ------------------------------------------- */

static void status_write(struct agent *a, int force)
{
    uint64_t now = mono_ms();

    if (!force && now - a->status_written_at_ms < 1000)
        return;
    if (cbctl_fleet_id_cmp(&a->newest, &a->applied) > 0)
        a->status.lag_ms = a->newest.ms - a->applied.ms;
    else
        a->status.lag_ms = 0;
    cbshm_fleet_status_set(a->shm, &a->status);
    a->status_written_at_ms = now;
}

/* ---- Events -> the stream -------------------------------------------- */

static const char *event_word(int kind, int v)
{
    switch (kind) {
    case CBSHM_EVENT_STATE:
    case CBSHM_EVENT_RESET:
        return cbctl_state_name((enum cbshm_state)v);
    case CBSHM_EVENT_MODE:
        return cbctl_mode_name((enum cbshm_mode)v);
    case CBSHM_EVENT_BULKHEAD:
        return v == CBSHM_BULKHEAD_FULL ? "full" : "admitting";
    }
    return "invalid";
}

static const char *kind_word(int kind)
{
    static const char *const words[] = {"state", "mode", "reset", "bulkhead"};

    return kind >= 0 && kind < 4 ? words[kind] : "invalid";
}

/*
 * XADDs every event the ring holds past the cursor. The cursor moves on
 * only once Redis took them, so events of a connection that failed are
 * sent again on the next (the ring holds the last 1024).
 */
static void publish_events(struct agent *a)
{
    struct cbshm_event ev[EVENTS_BATCH];
    char times[EVENTS_BATCH][24], seqs[EVENTS_BATCH][24];
    size_t n = 0, published = 0;
    uint64_t lost = 0, lost_in_pass = 0;

    a->events_pending = 0;
    while (a->redis != NULL) {
        uint64_t cursor = a->event_cursor;
        int rc;
        if (published >= EVENTS_PER_PASS || stop_requested) {
            a->events_pending = 1;
            break;
        }
        rc = cbshm_events_read(a->shm, &cursor, ev, EVENTS_BATCH, &n, &lost);
        if (rc != 0 && rc != CBSHM_ECORRUPT)
            break;
        lost_in_pass += lost;
        if (n == 0) {
            a->event_cursor = cursor;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const char *argv[22]; /* XADD, key, MAXLEN ~ N *, and 8 fields */
            size_t lens[22];
            int k = 0;
            uint64_t wall_ms = ev[i].wall_ns ? ev[i].wall_ns / 1000000u : cbctl_fleet_wall_ms();
            snprintf(times[i], sizeof times[i], "%" PRIu64, wall_ms);
            snprintf(seqs[i], sizeof seqs[i], "%" PRIu64, ev[i].seq);
#define W(s) (argv[k] = (s), lens[k] = strlen(argv[k]), k++)
            W("XADD");
            W(a->key_events);
            W("MAXLEN");
            W("~");
            W(STREAM_MAXLEN);
            W("*");
            W("host");
            W(a->fc->host_id);
            W("breaker");
            W(ev[i].name);
            W("kind");
            W(kind_word(ev[i].kind));
            W("from");
            W(event_word(ev[i].kind, ev[i].from));
            W("to");
            W(event_word(ev[i].kind, ev[i].to));
            W("cause");
            W(cbshm_event_cause_name(ev[i].cause));
            W("time");
            W(times[i]);
            W("seq");
            W(seqs[i]);
#undef W
            if (redisAppendCommandArgv(a->redis, k, argv, lens) != REDIS_OK) {
                disconnect(a, "out of memory");
                break;
            }
        }
        if (a->redis == NULL || collect_replies(a, (int)n, "publishing events", NULL) < 0)
            break;
        a->event_cursor = cursor;
        a->dirty = 1;
        published += n;
    }
    /* One line a pass, not one a batch: a storm does not flood the log. */
    if (lost_in_pass > 0)
        say("segment %s: %" PRIu64 " events were overwritten in the ring before they were "
            "published",
            a->segment, lost_in_pass);
}

/* ---- Host hash, hosts and open:<breaker> ----------------------------- */

/*
 * Rewrites this host's hash whole and its place in hosts and open:<b>,
 * in one MULTI/EXEC, from a fresh walk of the table.
 */
static void publish_host(struct agent *a)
{
    uint64_t now_ms = cbctl_fleet_wall_ms(), live_until = now_ms + 3 * a->heartbeat_ms;
    char ttl[24], score[24], agent_json[320], applied[CBCTL_FLEET_ID_MAX];
    char *json = NULL, (*open_keys)[CBCTL_FLEET_KEY_MAX] = NULL,
         (*gone_keys)[CBCTL_FLEET_KEY_MAX] = NULL;
    struct member *now_members = NULL;
    size_t n_now = 0, n_gone = 0, json_size = 192;
    struct words w = {0};
    int queued = 0, rc;

    if (walk(a) != 0)
        return;
    json = malloc(json_size * (a->n_all + 1));
    open_keys = malloc(sizeof *open_keys * (a->n_all + 1));
    now_members = malloc(sizeof *now_members * (a->n_all + 1));
    gone_keys = malloc(sizeof *gone_keys * (a->n_members + 1));
    if (json == NULL || open_keys == NULL || now_members == NULL || gone_keys == NULL) {
        say("publishing %s: out of memory", a->key_host);
        goto out;
    }
    snprintf(ttl, sizeof ttl, "%" PRIu64, 3 * a->heartbeat_ms);
    snprintf(score, sizeof score, "%" PRIu64, live_until);
    cbctl_fleet_id_format(&a->applied, applied, sizeof applied);
    snprintf(agent_json, sizeof agent_json,
             "{\"pid\":%d,\"heartbeat_ms\":%" PRIu64 ",\"time\":%" PRIu64
             ",\"connected_since\":%" PRIu64 ",\"applied\":\"%s\"}",
             (int)getpid(), a->heartbeat_ms, now_ms, a->connected_since_wall_ms, applied);

    if (redisAppendCommand(a->redis, "MULTI") != REDIS_OK ||
        redisAppendCommand(a->redis, "DEL %s", a->key_host) != REDIS_OK)
        goto oom;
    queued += 2;
    if (words_str(&w, "HSET") || words_str(&w, a->key_host) || words_str(&w, ".agent") ||
        words_str(&w, agent_json))
        goto oom;
    for (size_t i = 0; i < a->n_all; i++) {
        const struct cbshm_snapshot *s = &a->all[i];
        char *j = json + i * json_size;
        uint64_t in_state_ms = s->time_in_state_ns / 1000000u;
        int len =
            snprintf(j, json_size,
                     "{\"state\":\"%s\",\"mode\":\"%s\",\"mode_cause\":\"%s\",\"trips\":%" PRIu64
                     ",\"failures\":%" PRIu64 ",\"successes\":%" PRIu64 ",\"rejections\":%" PRIu64
                     ",\"since\":%" PRIu64 "}",
                     cbctl_state_name(s->state), cbctl_mode_name(s->mode), cbctl_mode_cause(s),
                     s->trips, s->failures, s->successes, s->rejections,
                     in_state_ms < now_ms ? now_ms - in_state_ms : 0);
        if (len < 0 || (size_t)len >= json_size)
            continue;
        if (words_str(&w, s->name) || words_add(&w, j, (size_t)len))
            goto oom;
    }
    if (redisAppendCommandArgv(a->redis, w.n, w.argv, w.lens) != REDIS_OK ||
        redisAppendCommand(a->redis, "PEXPIRE %s %s", a->key_host, ttl) != REDIS_OK ||
        redisAppendCommand(a->redis, "ZADD %s %s %s", a->key_hosts, score, a->fc->host_id) !=
            REDIS_OK)
        goto oom;
    queued += 3;
    for (size_t i = 0; i < a->n_all; i++) {
        if (!own_open(&a->all[i]) || cbctl_fleet_key(open_keys[n_now], sizeof open_keys[0],
                                                     a->fc->name, "open", a->all[i].name) < 0)
            continue;
        if (redisAppendCommand(a->redis, "ZADD %s %s %s", open_keys[n_now], score,
                               a->fc->host_id) != REDIS_OK)
            goto oom;
        snprintf(now_members[n_now].name, sizeof now_members[0].name, "%s", a->all[i].name);
        n_now++;
        queued++;
    }
    /* Listed last time, not open now (or gone from the table): off the list. */
    for (size_t i = 0; i < a->n_members; i++) {
        int still = 0;
        for (size_t k = 0; k < n_now && !still; k++)
            still = strcmp(now_members[k].name, a->members[i].name) == 0;
        if (still || cbctl_fleet_key(gone_keys[n_gone], sizeof gone_keys[0], a->fc->name, "open",
                                     a->members[i].name) < 0)
            continue;
        if (redisAppendCommand(a->redis, "ZREM %s %s", gone_keys[n_gone], a->fc->host_id) !=
            REDIS_OK)
            goto oom;
        n_gone++;
        queued++;
    }
    if (redisAppendCommand(a->redis, "EXEC") != REDIS_OK)
        goto oom;
    queued++;
    rc = collect_replies(a, queued, "publishing the host's breakers", NULL);
    if (rc == 0) {
        free(a->members);
        a->members = now_members;
        a->n_members = n_now;
        now_members = NULL;
        a->status.heartbeat_wall_ns = now_ms * 1000000u;
        a->dirty = 0;
    }
    goto out;
oom:
    /* Part of a MULTI is queued: the connection cannot be trusted now. */
    disconnect(a, "out of memory");
out:
    words_free(&w);
    free(json);
    free(open_keys);
    free(gone_keys);
    free(now_members);
}

/* ---- The fleet trip -------------------------------------------------- */

/* How many live hosts must see the breaker open by their own trips. */
static uint64_t hosts_needed(uint32_t setting, long long live)
{
    if (setting & CBSHM_FLEET_SHARE) {
        uint64_t hundredths = setting & ~CBSHM_FLEET_SHARE;
        uint64_t need = ((uint64_t)(live > 0 ? live : 0) * hundredths + 99) / 100;
        return need ? need : 1;
    }
    return setting;
}

static void force(struct agent *a, const struct cbshm_snapshot *s, int open)
{
    int rc = cbshm_fleet_force(a->shm, s->name, open, 3 * a->heartbeat_ms);

    if (rc != 0 && rc != CBSHM_EBUSY && rc != CBSHM_ENOBREAKER)
        say("fleet %s: %s %s: %s", a->fc->name, open ? "forcing open" : "releasing", s->name,
            cbshm_strerror(rc));
}

/*
 * For each breaker with fleet_open_hosts: counts the live hosts that see
 * it open by their own state machine (this host too) and forces it open
 * here while they are enough, renewing the lease each heartbeat; lets it
 * go only after a whole heartbeat below (the hysteresis). Forced hosts are
 * not listed in open:<breaker>, so a fleet force never feeds itself.
 */
static void fleet_trip(struct agent *a)
{
    char now_s[24], key[CBCTL_FLEET_KEY_MAX];
    redisReply **counts = NULL;
    size_t *which = NULL, n = 0;
    long long live = 0;
    uint64_t now = mono_ms();

    for (size_t i = 0; i < a->n_trips; i++)
        a->trips[i].seen = 0;
    for (size_t i = 0; i < a->n_all; i++) {
        if (a->all[i].settings.fleet_open_hosts != 0) {
            n++;
        } else if (fleet_forced(&a->all[i])) {
            /* Its fleet_open_hosts was taken away (cbctl apply): no reason left. */
            say("fleet %s: %s: fleet_open_hosts is off now: back to normal here", a->fc->name,
                a->all[i].name);
            force(a, &a->all[i], 0);
            a->dirty = 1;
        }
    }
    if (n == 0)
        goto out;
    counts = calloc(n + 1, sizeof *counts);
    which = calloc(n, sizeof *which);
    if (counts == NULL || which == NULL)
        goto out;
    snprintf(now_s, sizeof now_s, "%" PRIu64, cbctl_fleet_wall_ms());
    if (redisAppendCommand(a->redis, "ZCOUNT %s %s +inf", a->key_hosts, now_s) != REDIS_OK)
        goto oom;
    n = 0;
    for (size_t i = 0; i < a->n_all; i++) {
        if (a->all[i].settings.fleet_open_hosts == 0 ||
            cbctl_fleet_key(key, sizeof key, a->fc->name, "open", a->all[i].name) < 0)
            continue;
        if (redisAppendCommand(a->redis, "ZCOUNT %s %s +inf", key, now_s) != REDIS_OK)
            goto oom;
        which[n++] = i;
    }
    if (collect_replies(a, (int)n + 1, "counting open hosts", counts) < 0)
        goto out;
    live = counts[0]->integer;
    for (size_t k = 0; k < n; k++) {
        const struct cbshm_snapshot *s = &a->all[which[k]];
        uint64_t need = hosts_needed(s->settings.fleet_open_hosts, live);
        uint64_t open_hosts = counts[k + 1]->integer > 0 ? (uint64_t)counts[k + 1]->integer : 0;
        struct trip *t = trip_of(a, s->name);
        if (t == NULL)
            continue;
        t->seen = 1;
        if (counts[0]->type != REDIS_REPLY_INTEGER || counts[k + 1]->type != REDIS_REPLY_INTEGER) {
            /* No count (a key of another type: WRONGTYPE): nothing is
               decided, as while Redis is away - a force held stands. */
            if (fleet_forced(s))
                force(a, s, 1);
            continue;
        }
        if (open_hosts >= need) {
            t->below_since_ms = 0;
            if (fleet_forced(s))
                force(a, s, 1); /* renewed */
            else if (s->mode == CBSHM_MODE_NORMAL && s->state == CBSHM_STATE_CLOSED) {
                say("fleet %s: %s: %" PRIu64 " of %lld live hosts see it open (%" PRIu64
                    " needed): forcing it open here",
                    a->fc->name, s->name, open_hosts, live, need);
                force(a, s, 1);
                a->dirty = 1;
            }
        } else if (fleet_forced(s)) {
            if (t->below_since_ms == 0)
                t->below_since_ms = now;
            if (now - t->below_since_ms >= a->heartbeat_ms) {
                say("fleet %s: %s: %" PRIu64 " of %lld live hosts see it open (%" PRIu64
                    " needed) for a heartbeat: back to normal here",
                    a->fc->name, s->name, open_hosts, live, need);
                force(a, s, 0);
                t->below_since_ms = 0;
                a->dirty = 1;
            } else {
                force(a, s, 1); /* stands through the hysteresis */
            }
        }
    }
    for (size_t k = 0; k <= n; k++)
        freeReplyObject(counts[k]);
    goto out;
oom:
    disconnect(a, "out of memory");
out:
    free(counts);
    free(which);
    /* Breakers gone from the table forget their bookkeeping. */
    for (size_t i = 0; i < a->n_trips;)
        if (!a->trips[i].seen)
            a->trips[i] = a->trips[--a->n_trips];
        else
            i++;
}

/* Without Redis nothing is decided: the forces held are renewed, so they
   stand; the workers' own trips go on as ever. */
static void renew_forces(struct agent *a)
{
    if (walk(a) != 0)
        return;
    for (size_t i = 0; i < a->n_all; i++)
        if (fleet_forced(&a->all[i]))
            force(a, &a->all[i], 1);
}

/* ---- Commands -------------------------------------------------------- */

/* What to do with one command of the stream, and what to answer. */
struct decision {
    struct cbshm_fleet_command cmd;
    int ack;           /* 1: write an ack (the command is for this host) */
    char answer[160];  /* set for a command skipped with an answer: "error expired" */
    char summary[256]; /* for the log line */
};

static const char *field(const redisReply *fields, const char *name, size_t *len)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, name) == 0) {
            *len = (size_t)v->len;
            return v->str;
        }
    }
    return NULL;
}

static int parse_ms(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* A text field into buf, NUL-terminated: refused when it holds a NUL or
   does not fit. */
static int field_text(const redisReply *fields, const char *name, char *buf, size_t size)
{
    size_t len = 0;
    const char *v = field(fields, name, &len);

    if (v == NULL || len >= size || memchr(v, '\0', len) != NULL)
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return 0;
}

static void decide(const struct agent *a, const struct cbshm_fleet_id *id, const redisReply *fields,
                   struct decision *d)
{
    static const struct {
        const char *word;
        enum cbshm_fleet_op op;
        enum cbshm_mode mode;
    } ops[] = {
        {"open", CBSHM_FLEET_MODE, CBSHM_MODE_FORCED_OPEN},
        {"close", CBSHM_FLEET_MODE, CBSHM_MODE_FORCED_CLOSED},
        {"disable", CBSHM_FLEET_MODE, CBSHM_MODE_DISABLED},
        {"enable", CBSHM_FLEET_MODE, CBSHM_MODE_NORMAL},
        {"reset", CBSHM_FLEET_RESET, CBSHM_MODE_NORMAL},
    };
    char hosts[256] = "*", op[16] = "", by[128] = "?";
    const char *v;
    size_t len, i;
    uint64_t time_ms = 0, for_ms = 0;

    memset(d, 0, sizeof *d);
    d->cmd.id = *id;
    d->cmd.op = CBSHM_FLEET_SKIP;
    if (field(fields, "hosts", &len) != NULL && field_text(fields, "hosts", hosts, sizeof hosts)) {
        snprintf(d->summary, sizeof d->summary, "a hosts glob that cannot be read");
        return; /* not known to be for us: no answer */
    }
    if (fnmatch(hosts, a->fc->host_id, 0) != 0) {
        snprintf(d->summary, sizeof d->summary, "for hosts %.64s, not this one", hosts);
        return;
    }
    d->ack = 1;
    field_text(fields, "by", by, sizeof by);
    if (field_text(fields, "op", op, sizeof op) != 0) {
        snprintf(d->answer, sizeof d->answer, "error bad command: no op");
        snprintf(d->summary, sizeof d->summary, "with no op");
        return;
    }
    for (i = 0; i < sizeof ops / sizeof ops[0] && strcmp(ops[i].word, op) != 0; i++)
        ;
    if (i == sizeof ops / sizeof ops[0]) {
        snprintf(d->answer, sizeof d->answer,
                 "error bad command: op '%.32s' is none of open, close, disable, enable, reset",
                 op);
        snprintf(d->summary, sizeof d->summary, "with op '%.32s'", op);
        return;
    }
    if (field_text(fields, "breaker", d->cmd.name, sizeof d->cmd.name) != 0) {
        snprintf(d->answer, sizeof d->answer, "error bad command: no breaker, or an invalid one");
        snprintf(d->summary, sizeof d->summary, "%s with no usable breaker", op);
        return;
    }
    if ((v = field(fields, "for_ms", &len)) != NULL && parse_ms(v, len, &for_ms) != 0) {
        snprintf(d->answer, sizeof d->answer, "error bad command: for_ms is not a number");
        snprintf(d->summary, sizeof d->summary, "%s %s with a bad for_ms", op, d->cmd.name);
        return;
    }
    if ((v = field(fields, "time", &len)) != NULL && parse_ms(v, len, &time_ms) != 0)
        time_ms = 0;
    snprintf(d->summary, sizeof d->summary, "%s %s by %.64s", op, d->cmd.name, by);
    if (for_ms != 0) {
        char took[32];
        cbctl_format_duration(took, sizeof took, for_ms);
        snprintf(d->summary, sizeof d->summary, "%s %s for %s by %.64s", op, d->cmd.name, took, by);
    }
    /* A timed command whose time is over would start a mode that should
       have ended already: answered, not applied. */
    if (for_ms != 0 && time_ms != 0 && time_ms + for_ms < cbctl_fleet_wall_ms()) {
        snprintf(d->answer, sizeof d->answer, "error expired");
        return;
    }
    d->cmd.op = ops[i].op;
    d->cmd.mode = ops[i].mode;
    d->cmd.duration_ms = for_ms;
}

static const char *apply_error(int rc)
{
    switch (rc) {
    case CBSHM_ENOBREAKER:
        return "no such breaker";
    case CBSHM_EBADNAME:
        return "invalid breaker name";
    case CBSHM_EINVAL:
        return "bad duration";
    }
    return cbshm_strerror(rc);
}

/* HSET (or, again after a restart, HSETNX) the ack and its expiry. */
static int write_ack(struct agent *a, const struct cbshm_fleet_id *id, const char *answer,
                     int only_if_missing)
{
    char key[CBCTL_FLEET_KEY_MAX], ids[CBCTL_FLEET_ID_MAX], ttl[24];

    cbctl_fleet_id_format(id, ids, sizeof ids);
    if (cbctl_fleet_key(key, sizeof key, a->fc->name, "ack", ids) < 0)
        return -1;
    snprintf(ttl, sizeof ttl, "%u", ACK_TTL_MS);
    if (redisAppendCommand(a->redis, "%s %s %s %s", only_if_missing ? "HSETNX" : "HSET", key,
                           a->fc->host_id, answer) != REDIS_OK ||
        redisAppendCommand(a->redis, "PEXPIRE %s %s", key, ttl) != REDIS_OK) {
        disconnect(a, "out of memory");
        return -1;
    }
    /* Redis refusing the ack (a key of another type there: WRONGTYPE) is
       said and passed over: the command is applied and consumed, and
       taking the refusal for a lost connection would stop every command
       after it, for good, at the next start's ack of the last one. */
    return collect_replies(a, 2, "acknowledging a command", NULL) < 0 ? -1 : 0;
}

static void answer_of(const struct decision *d, int rc, char *buf, size_t size)
{
    if (d->answer[0] != '\0')
        snprintf(buf, size, "%s", d->answer);
    else if (rc == 0)
        snprintf(buf, size, "ok %" PRIu64, cbctl_fleet_wall_ms());
    else
        snprintf(buf, size, "error %s", apply_error(rc));
}

/*
 * Applies one command (exactly once: the id is stored with the change)
 * and acks it. Returns 0 to go on with the next; -1 to stop the batch
 * (the lock not taken: tried again on the next pass; or Redis gone).
 */
static int handle_command(struct agent *a, const redisReply *entry)
{
    struct cbshm_fleet_id id;
    struct decision d;
    char ids[CBCTL_FLEET_ID_MAX], answer[200];
    int rc;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        cbctl_fleet_id_parse(entry->element[0]->str, (size_t)entry->element[0]->len, &id) != 0) {
        disconnect(a, "XREAD answered with something that is not a stream entry");
        return -1;
    }
    if (cbctl_fleet_id_cmp(&id, &a->newest) > 0)
        a->newest = id;
    cbctl_fleet_id_format(&id, ids, sizeof ids);
    if (entry->element[1]->type != REDIS_REPLY_ARRAY) {
        struct redisReply none = {.type = REDIS_REPLY_ARRAY};
        decide(a, &id, &none, &d);
    } else {
        decide(a, &id, entry->element[1], &d);
    }
    rc = cbshm_fleet_apply(a->shm, &d.cmd);
    if (rc == CBSHM_EALREADY) { /* consumed before: this is a replay */
        a->applied = id;
        return 0;
    }
    if (rc == CBSHM_ELOCK || rc == CBSHM_EPERM || rc == CBSHM_ECORRUPT || rc == -ENOMEM) {
        say("command %s %s: not applied, tried again: %s", ids, d.summary, cbshm_strerror(rc));
        return -1;
    }
    a->applied = id;
    if (d.cmd.op == CBSHM_FLEET_SKIP) {
        if (!d.ack) {
            say("command %s %s: skipped", ids, d.summary);
            return 0;
        }
        a->status.commands_failed++;
    } else if (rc == 0) {
        a->status.commands_applied++;
    } else {
        a->status.commands_failed++;
    }
    answer_of(&d, rc, answer, sizeof answer);
    say("command %s %s: %s", ids, d.summary, rc == 0 && d.answer[0] == '\0' ? "applied" : answer);
    a->dirty = 1;
    return write_ack(a, &id, answer, 0);
}

static int newest_command(struct agent *a, struct cbshm_fleet_id *out)
{
    const char *argv[] = {"XREVRANGE", a->key_commands, "+", "-", "COUNT", "1"};
    size_t lens[6];
    redisReply *r;
    int rc = 0;

    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    memset(out, 0, sizeof *out);
    if ((r = command(a, "reading the newest command", 6, argv, lens)) == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        rc = cbctl_fleet_id_parse(r->element[0]->element[0]->str,
                                  (size_t)r->element[0]->element[0]->len, out);
    freeReplyObject(r);
    return rc == 0 ? 0 : -1;
}

/*
 * A command stream that started over behind the last id consumed would
 * hide every command after it (XREAD returns only later ids), silently
 * and for good. Looked at on connecting and at each heartbeat: a stream
 * that is gone (a Redis restarted empty, the key deleted) starts the
 * segment over at 0-1, so whatever the new stream holds is new; one whose
 * last id is before the stored one (a replica promoted before it had the
 * last commands) goes on after that id - what it holds was applied here.
 * Returns -1 when the connection failed.
 */
static int stream_started_over(struct agent *a)
{
    const char *argv[] = {"XINFO", "STREAM", a->key_commands};
    size_t lens[3];
    struct cbshm_fleet_command rebase = {.op = CBSHM_FLEET_REBASE};
    struct cbshm_fleet_id stored;
    char from[CBCTL_FLEET_ID_MAX], to[CBCTL_FLEET_ID_MAX];
    redisReply *r;
    int rc, gone = 0, behind = 0;

    if (cbshm_fleet_applied(a->shm, &stored, NULL) != 0 || (stored.ms == 0 && stored.seq <= 1))
        return 0;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    if (redisAppendCommandArgv(a->redis, 3, argv, lens) != REDIS_OK) {
        disconnect(a, "out of memory");
        return -1;
    }
    if (collect_replies(a, 1, "looking at the command stream", &r) < 0)
        return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        gone = strstr(r->str, "no such key") != NULL;
        rebase.id.seq = 1;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            if (r->element[i]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[i]->str, "last-generated-id") == 0 &&
                r->element[i + 1]->type == REDIS_REPLY_STRING &&
                cbctl_fleet_id_parse(r->element[i + 1]->str, (size_t)r->element[i + 1]->len,
                                     &rebase.id) == 0)
                behind = cbctl_fleet_id_cmp(&rebase.id, &stored) < 0;
        /* An empty stream's last id may be 0-0: the same as gone. */
        if (behind && rebase.id.ms == 0 && rebase.id.seq == 0)
            rebase.id.seq = 1;
    }
    freeReplyObject(r);
    if (!gone && !behind)
        return 0;
    cbctl_fleet_id_format(&stored, from, sizeof from);
    cbctl_fleet_id_format(&rebase.id, to, sizeof to);
    if ((rc = cbshm_fleet_apply(a->shm, &rebase)) != 0 && rc != CBSHM_EALREADY) {
        say("segment %s: cannot store where the commands start over: %s", a->segment,
            cbshm_strerror(rc));
        return 0;
    }
    say("the command stream %s (the last command applied here is %s): going on after %s",
        gone ? "is gone" : "ends before the last command applied", from, to);
    a->applied = rebase.id;
    return 0;
}

/*
 * After connecting: a segment that never consumed a command starts at the
 * stream's newest (consumed as a skip: a new host does not replay the
 * fleet's history); one that did acks its last again, unless that ack is
 * there already - an agent killed between the change and its ack
 * answers once it is back.
 */
static int catch_up(struct agent *a)
{
    struct cbshm_fleet_id newest, stored;
    struct decision d;
    char ids[CBCTL_FLEET_ID_MAX], answer[200];
    int result = 0, rc;

    if (newest_command(a, &newest) != 0)
        return -1;
    if (cbctl_fleet_id_cmp(&newest, &a->newest) > 0)
        a->newest = newest;
    /* The segment's word, not this process's copy: a segment replaced
       under a running agent (cbctl destroy and apply) starts with none. */
    if ((rc = cbshm_fleet_applied(a->shm, &stored, &result)) != 0) {
        say("segment %s: cannot read the last command applied: %s", a->segment, cbshm_strerror(rc));
        return -1;
    }
    if (stored.ms == 0 && stored.seq == 0) {
        /* No command yet. A new host starts at the stream's newest (a skip:
           it does not replay the fleet's history), or at 0-1, before any id
           XADD gives, when the stream is empty, so every command from now on
           is new to it - also those written while it is away before it has
           seen one. A segment replaced under this agent goes on from where
           the agent was: the commands it has not read yet are new to it. */
        struct cbshm_fleet_command skip = {.id = newest, .op = CBSHM_FLEET_SKIP};
        int replaced = a->applied.ms != 0 || a->applied.seq != 0;
        if (replaced)
            skip.id = a->applied;
        else if (newest.ms == 0 && newest.seq == 0)
            skip.id.seq = 1;
        rc = cbshm_fleet_apply(a->shm, &skip);
        if (rc != 0 && rc != CBSHM_EALREADY) {
            say("segment %s: cannot store where the commands start: %s", a->segment,
                cbshm_strerror(rc));
            return -1;
        }
        cbctl_fleet_id_format(&skip.id, ids, sizeof ids);
        if (replaced)
            say("segment %s holds no command: a new segment, going on after %s", a->segment, ids);
        else
            say("first start: commands up to %s are the fleet's history, not replayed here", ids);
        a->applied = skip.id;
        return 0;
    }
    a->applied = stored;
    if (stream_started_over(a) != 0)
        return -1;
    if (cbctl_fleet_id_cmp(&a->applied, &stored) != 0)
        return 0; /* a stream that started over holds no command of ours to ack */
    cbctl_fleet_id_format(&a->applied, ids, sizeof ids);
    {
        const char *argv[] = {"XRANGE", a->key_commands, ids, ids};
        size_t lens[4];
        redisReply *r;
        for (int i = 0; i < 4; i++)
            lens[i] = strlen(argv[i]);
        if ((r = command(a, "reading the last command applied", 4, argv, lens)) == NULL)
            return -1;
        /* Trimmed from the stream: too old for anyone to wait on its ack. */
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
            r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
            decide(a, &a->applied, r->element[0]->element[1], &d);
            if (d.ack) {
                answer_of(&d, result, answer, sizeof answer);
                freeReplyObject(r);
                return write_ack(a, &a->applied, answer, 1);
            }
        }
        freeReplyObject(r);
    }
    return 0;
}

/* XREAD BLOCK from the last consumed id; each command applied and acked
   before the next is looked at. */
static void read_commands(struct agent *a)
{
    char ids[CBCTL_FLEET_ID_MAX], count[8], block[16];
    const char *argv[8];
    size_t lens[8];
    redisReply *r;

    cbctl_fleet_id_format(&a->applied, ids, sizeof ids);
    snprintf(count, sizeof count, "%d", COMMANDS_BATCH);
    /* Events left in the ring are not kept waiting a whole block. */
    snprintf(block, sizeof block, "%d", a->events_pending ? 1 : BLOCK_MS);
    argv[0] = "XREAD";
    argv[1] = "COUNT";
    argv[2] = count;
    argv[3] = "BLOCK";
    argv[4] = block;
    argv[5] = "STREAMS";
    argv[6] = a->key_commands;
    argv[7] = ids;
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    if ((r = command(a, "reading commands", 8, argv, lens)) == NULL) {
        /* Refused at once (the key is not a stream: WRONGTYPE), not after
           the block: wait as long as the block would have, or the loop
           spins on a core. */
        if (a->redis != NULL)
            nap_ms(BLOCK_MS);
        return;
    }
    /* [[key, [entry, ...]]], or nil when the block ran out. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
        r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements && a->redis != NULL && !stop_requested; i++) {
            if (handle_command(a, entries->element[i]) != 0)
                break;
            status_write(a, 1); /* the counters show each command at once */
        }
    }
    freeReplyObject(r);
}

/* ---- The loop -------------------------------------------------------- */

static void try_connect(struct agent *a)
{
    char why[CBCTL_FLEET_WHY_MAX];
    uint64_t wait_ms;
    int rc;

    rc = cbctl_fleet_connect(&a->target, REPLY_TIMEOUT_MS, &a->redis, why, sizeof why);
    if (rc != 0) {
        wait_ms = cbctl_fleet_backoff_next_ms(&a->backoff);
        a->retry_at_ms = mono_ms() + wait_ms;
        say("%s; trying again in %" PRIu64 " ms", why, wait_ms);
        return;
    }
    redis_fd = a->redis->fd;
    a->connected_since_wall_ms = cbctl_fleet_wall_ms();
    say("connected to redis %s as host %s of fleet %s", a->target.label, a->fc->host_id,
        a->fc->name);
    a->status.connected = 1;
    /* No contact yet: a stopped Redis's kernel still accepts connections.
       The first reply of catch_up is the first exchange. */
    if (catch_up(a) != 0 || a->redis == NULL) {
        if (a->redis != NULL)
            disconnect(a, "cannot read the command stream");
        return;
    }
    cbctl_fleet_backoff_reset(&a->backoff);
    a->next_heartbeat_at_ms = 0; /* publish at once */
    status_write(a, 1);
}

static int agent_loop(struct agent *a)
{
    while (!stop_requested) {
        uint64_t now = mono_ms();
        int heartbeat = now >= a->next_heartbeat_at_ms;

        if (a->redis == NULL && now >= a->retry_at_ms) {
            try_connect(a);
            now = mono_ms();
            heartbeat = now >= a->next_heartbeat_at_ms;
        }
        if (a->redis == NULL) {
            uint64_t until =
                a->retry_at_ms < a->next_heartbeat_at_ms ? a->retry_at_ms : a->next_heartbeat_at_ms;
            if (heartbeat) {
                renew_forces(a);
                a->next_heartbeat_at_ms = now + a->heartbeat_ms;
                status_write(a, 1);
                continue;
            }
            nap_ms(until > now ? (until - now < BLOCK_MS ? until - now : BLOCK_MS) : 1);
            continue;
        }
        publish_events(a);
        if (a->redis != NULL && (a->dirty || heartbeat)) {
            publish_host(a);
            if (a->redis != NULL)
                fleet_trip(a);
            if (heartbeat) {
                a->next_heartbeat_at_ms = now + a->heartbeat_ms;
                if (a->redis != NULL)
                    (void)stream_started_over(a);
            }
            /* A force made or let go shows at once, not a heartbeat later. */
            if (a->redis != NULL && a->dirty) {
                publish_events(a);
                if (a->redis != NULL)
                    publish_host(a);
            }
        }
        if (a->redis != NULL)
            read_commands(a);
        status_write(a, 0);
    }
    return CBCTL_OK;
}

static int load(const char *file, struct cbshm_config **cfg)
{
    int rc = cbctl_config_load("agent", file, cfg);

    if (rc != CBCTL_CONTINUE)
        return rc;
    if ((*cfg)->fleet == NULL) {
        cbctl_err("agent: %s has no fleet: section (redis, name, ...): nothing to do", file);
        cbshm_config_free(*cfg);
        return CBCTL_CONFIG;
    }
    return CBCTL_CONTINUE;
}

static int run(struct cbctl *ctl, struct cbshm *unused, const struct cbctl_args *args)
{
    struct cbshm_config *cfg = NULL;
    struct agent a;
    struct sigaction sa;
    char why[CBCTL_FLEET_WHY_MAX];
    int rc;

    (void)unused; /* the agent attaches itself, after reading its files as root */
    memset(&a, 0, sizeof a);
    if ((rc = load(args->file, &cfg)) != CBCTL_CONTINUE)
        return rc;
    a.fc = cfg->fleet;
    a.segment = cbshm_config_segment(cfg, ctl->segment);
    a.heartbeat_ms = a.fc->heartbeat_ms ? a.fc->heartbeat_ms : 5000;
    /* The password file is read now, while root may still read it. */
    if (cbctl_fleet_target_init(&a.target, a.fc, CONNECT_TIMEOUT_MS, why, sizeof why) != 0) {
        cbctl_err("agent: %s: %s", args->file, why);
        rc = CBCTL_CONFIG;
        goto out;
    }
    if (cbctl_fleet_key(a.key_events, sizeof a.key_events, a.fc->name, "events", NULL) < 0 ||
        cbctl_fleet_key(a.key_hosts, sizeof a.key_hosts, a.fc->name, "hosts", NULL) < 0 ||
        cbctl_fleet_key(a.key_commands, sizeof a.key_commands, a.fc->name, "commands", NULL) < 0 ||
        cbctl_fleet_key(a.key_host, sizeof a.key_host, a.fc->name, "host", a.fc->host_id) < 0) {
        cbctl_err("agent: %s: fleet.name or fleet.host_id too long for a key", args->file);
        rc = CBCTL_CONFIG;
        goto out;
    }
    if ((rc = cbctl_become_segment_owner("agent", a.segment)) != CBCTL_CONTINUE)
        goto out;
    if ((rc = cbshm_open(a.segment, 0, &a.shm)) != 0) {
        cbctl_segment_error("agent", a.segment, rc);
        rc = CBCTL_FAILED;
        goto out;
    }
    if ((rc = cbshm_fleet_applied(a.shm, &a.applied, &(int){0})) != 0) {
        cbctl_segment_error("agent", a.segment, rc);
        rc = CBCTL_FAILED;
        goto out;
    }
    /* The counters go on from the last agent's. */
    cbshm_fleet_status_get(a.shm, &a.status);
    a.status.agent_pid = (uint32_t)getpid();
    a.status.connected = 0;
    status_write(&a, 1);
    a.event_cursor = CBSHM_EVENTS_NOW;
    cbctl_fleet_backoff_init(&a.backoff, 0);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed connection is an error, not a death */
    say("segment %s, fleet %s, host %s, heartbeat %" PRIu64 " ms", a.segment, a.fc->name,
        a.fc->host_id, a.heartbeat_ms);
    rc = agent_loop(&a);
    if (a.redis != NULL) {
        redis_fd = -1;
        redisFree(a.redis);
        a.redis = NULL;
    }
    a.status.connected = 0;
    status_write(&a, 1);
    say("stopped");
out:
    cbctl_fleet_target_clear(&a.target);
    cbshm_close(a.shm);
    free(a.all);
    free(a.trips);
    free(a.members);
    cbshm_config_free(cfg);
    return rc;
}

static const struct cbctl_option options[] = {
    CBCTL_STRING("config", 'c', "FILE", file, 1,
                 "the YAML configuration with the fleet: section (and the segment)"),
    CBCTL_OPTIONS_END,
};

const struct cbctl_cmd cbctl_cmd_agent = {
    .name = "agent",
    .summary = "this host's member of the fleet: breakers to Redis, fleet commands applied",
    .options = options,
    .attach = CBCTL_ATTACH_NONE,
    .names = CBCTL_NAMES_NONE,
    .run = run,
};
