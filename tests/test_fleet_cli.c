/* SPDX-License-Identifier: MIT */
/*
 * cbctl fleet: the real cbctl binary against a real redis-server of the
 * test's own. First with the fleet's keys written by the test as three
 * agents would write them (hosts ZSET, host hashes, acks from a forked
 * stand-in that reads the command stream): list's counts and stale hosts,
 * show, the --json shapes read back with jansson, a write's stream entry,
 * acks, errors, silence, --hosts, Redis down, usage and config errors.
 * Then end to end with three real agents on three segments.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet_harness.h"

struct run {
    int status;
    double seconds; /* from the spawn to the exit */
    char out[65536];
    char err[8192];
};

/* Runs cbctl with a NULL-terminated argument list, timed. */
static struct run *cbctl(struct run *r, const char *arg, ...)
{
    struct timespec t0, t1;
    va_list ap;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    va_start(ap, arg);
    r->status = t_vexec(CBCTL_PATH, r->out, sizeof r->out, r->err, sizeof r->err, arg, ap);
    va_end(ap);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return r;
}

/* The status cbctl must have exited with, else its output in the failure. */
#define EXPECT_STATUS(r, want)                                                                 \
    do {                                                                                       \
        if ((r)->status != (want))                                                             \
            fail_msg("cbctl exited %d, not %d; stdout:\n%s\nstderr:\n%s", (r)->status, (want), \
                     (r)->out, (r)->err);                                                      \
    } while (0)

/* Text cbctl must have printed, else its output in the failure. */
#define EXPECT_IN(where, text)                                   \
    do {                                                         \
        if (strstr((where), (text)) == NULL)                     \
            fail_msg("'%s' not found in:\n%s", (text), (where)); \
    } while (0)

static struct th_redis redis;
static struct th_fleet fleet;
static redisContext *db;

/* Redis, and one host's files (its YAML is the client's --config). */
static void start(int hosts, const char *heartbeat)
{
    TH_NEED_REDIS();
    th_redis_start(&redis);
    th_fleet_init(&fleet, &redis, hosts, "breakers:\n  - name: payments\n  - name: search\n",
                  heartbeat, 0, NULL);
    db = th_redis_connect(&redis);
}

static int teardown(void **state)
{
    (void)state;
    if (db != NULL)
        redisFree(db);
    db = NULL;
    if (fleet.dir[0] != '\0')
        th_fleet_destroy(&fleet);
    memset(&fleet, 0, sizeof fleet);
    th_redis_destroy(&redis);
    memset(&redis, 0, sizeof redis);
    return 0;
}

static const char *config(void)
{
    return fleet.host[0].config;
}

static char *key(char *buf, const char *kind, const char *member)
{
    if (member != NULL)
        snprintf(buf, 256, "cbshm:{%s}:%s:%s", fleet.name, kind, member);
    else
        snprintf(buf, 256, "cbshm:{%s}:%s", fleet.name, kind);
    return buf;
}

/* A breaker's snapshot as an agent writes it into its host's hash. */
static const char *snap(char *buf, const char *state, const char *mode, const char *cause,
                        int trips, uint64_t since_ago_ms)
{
    snprintf(buf, 512,
             "{\"state\":\"%s\",\"mode\":\"%s\",\"mode_cause\":\"%s\",\"trips\":%d,"
             "\"failures\":%d,\"successes\":10,\"rejections\":0,\"since\":%llu}",
             state, mode, cause, trips, 5 * trips,
             (unsigned long long)(th_wall_ms() - since_ago_ms));
    return buf;
}

/* Host `id` as its agent publishes it: live for live_ms more (negative:
   stale that long), and its hash of breaker -> snapshot pairs (NULL ends
   them; no pairs at all: no hash). */
static void fake_host(const char *id, long long live_ms, ...)
{
    char k[256], agent[256];
    const char *name;
    va_list ap;
    int any = 0;

    freeReplyObject(th_redis_cmd(db, "ZADD %s %lld %s", key(k, "hosts", NULL),
                                 (long long)th_wall_ms() + live_ms, id));
    va_start(ap, live_ms);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        freeReplyObject(th_redis_cmd(db, "HSET %s %s %s", key(k, "host", id), name, value));
        any = 1;
    }
    va_end(ap);
    if (!any)
        return;
    snprintf(agent, sizeof agent,
             "{\"pid\":1,\"heartbeat_ms\":5000,\"time\":%llu,\"connected_since\":1,\"applied\":"
             "\"0-0\"}",
             (unsigned long long)th_wall_ms());
    freeReplyObject(th_redis_cmd(db, "HSET %s .agent %s", key(k, "host", id), agent));
}

/* The fleet of the read tests: web-1 open by its own trips, web-2 forced
   open by the fleet trip, web-3 forced closed by an operator and without
   `search`, web-4 stale (its score past) and web-5 live but its hash gone. */
static void fake_fleet(void)
{
    char a[512], b[512];

    fake_host("web-1", 15000, "payments", snap(a, "open", "normal", "operator", 3, 5000), "search",
              snap(b, "closed", "normal", "operator", 0, 60000), NULL);
    fake_host("web-2", 15000, "payments", snap(a, "closed", "forced_open", "fleet", 0, 2000),
              "search", snap(b, "half_open", "normal", "operator", 1, 1000), NULL);
    fake_host("web-3", 15000, "payments", snap(a, "closed", "forced_closed", "operator", 0, 9000),
              NULL);
    fake_host("web-4", -42000, "payments", snap(a, "closed", "normal", "operator", 0, 90000),
              "search", snap(b, "closed", "disabled", "operator", 0, 90000), NULL);
    fake_host("web-5", 15000, NULL);
}

static json_t *parse(const struct run *r)
{
    json_error_t e;
    json_t *doc = json_loads(r->out, 0, &e);

    if (doc == NULL)
        fail_msg("not JSON (%s at %d): %s", e.text, e.line, r->out);
    return doc;
}

static long long count(json_t *breaker, const char *bucket)
{
    json_t *v = json_object_get(breaker, bucket);

    if (!json_is_integer(v))
        fail_msg("breaker %s: no integer '%s'", json_string_value(json_object_get(breaker, "name")),
                 bucket);
    return json_integer_value(v);
}

static json_t *find_breaker(json_t *doc, const char *name)
{
    json_t *all = json_object_get(doc, "breakers"), *b;
    size_t i;

    assert_true(json_is_array(all));
    json_array_foreach(all, i, b)
    {
        if (strcmp(json_string_value(json_object_get(b, "name")), name) == 0)
            return b;
    }
    fail_msg("no breaker %s in the list", name);
    return NULL;
}

/* The JSON array's strings joined by ",". */
static const char *joined(json_t *array, char *buf, size_t size)
{
    size_t i, used = 0;
    json_t *v;

    buf[0] = '\0';
    assert_true(json_is_array(array));
    json_array_foreach(array, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v)
                                          : json_string_value(json_object_get(v, "host"));
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "", s ? s : "?");
    }
    return buf;
}

static void test_list_counts_each_live_host_once_and_names_the_stale_ones(void **state)
{
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    cbctl(&r, "fleet", "list", "--config", config(), NULL);
    EXPECT_STATUS(&r, 0);
    if (strstr(r.out, "4 hosts live, 1 stale") == NULL &&
        strstr(r.out, "3 hosts live, 2 stale") == NULL)
        fail_msg("no host summary: %s", r.out);
    /* payments: web-1 open, web-2 fleet, web-3 forced closed; web-4 stale. */
    EXPECT_IN(r.out, "payments                             3      0      1         "
                     "0           0             1        0      1     1");
    /* search: web-1 closed, web-2 half open; web-4 stale. */
    EXPECT_IN(r.out, "search                               2      1      0         "
                     "1           0             0        0      0     1");
    EXPECT_IN(r.out, "stale hosts:\n");
    EXPECT_IN(r.out, "  web-4: no heartbeat: stale for 4");
    EXPECT_IN(r.out, "  web-5: no snapshot");
    assert_null(strstr(r.out, "web-1:"));
    assert_string_equal(r.err, "");
}

static void test_list_json_has_the_counts_per_breaker_and_the_stale_hosts(void **state)
{
    char buf[256];
    json_t *doc, *p, *s, *hosts;
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    assert_int_equal(cbctl(&r, "fleet", "list", "--json", "--config", config(), NULL)->status, 0);
    doc = parse(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "fleet")), fleet.name);
    assert_true(json_is_integer(json_object_get(doc, "time")));
    hosts = json_object_get(doc, "hosts");
    assert_string_equal(joined(json_object_get(hosts, "live"), buf, sizeof buf),
                        "web-1,web-2,web-3");
    assert_string_equal(joined(json_object_get(hosts, "stale"), buf, sizeof buf), "web-4,web-5");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(hosts, "stale"), 0), "reason")),
                        "no heartbeat");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(hosts, "stale"), 1), "reason")),
                        "no snapshot");

    p = find_breaker(doc, "payments");
    assert_int_equal(count(p, "hosts"), 3);
    assert_int_equal(count(p, "closed"), 0);
    assert_int_equal(count(p, "open"), 1);
    assert_int_equal(count(p, "half_open"), 0);
    assert_int_equal(count(p, "forced_open"), 0);
    assert_int_equal(count(p, "forced_closed"), 1);
    assert_int_equal(count(p, "disabled"), 0);
    assert_int_equal(count(p, "fleet"), 1);
    assert_string_equal(joined(json_object_get(p, "stale"), buf, sizeof buf), "web-4");
    s = find_breaker(doc, "search");
    assert_int_equal(count(s, "hosts"), 2);
    assert_int_equal(count(s, "closed"), 1);
    assert_int_equal(count(s, "half_open"), 1);
    assert_int_equal(count(s, "disabled"), 0); /* web-4's is stale: not counted */
    assert_string_equal(joined(json_object_get(s, "stale"), buf, sizeof buf), "web-4");
    assert_int_equal(json_array_size(json_object_get(doc, "breakers")), 2);
    json_decref(doc);
}

static void test_list_hosts_glob_narrows_the_hosts_counted(void **state)
{
    json_t *doc;
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    assert_int_equal(
        cbctl(&r, "fleet", "list", "--json", "--hosts", "web-[12]", "--config", config(), NULL)
            ->status,
        0);
    doc = parse(&r);
    assert_int_equal(count(find_breaker(doc, "payments"), "hosts"), 2);
    assert_int_equal(json_array_size(json_object_get(json_object_get(doc, "hosts"), "stale")), 0);
    json_decref(doc);
}

static void test_list_of_a_fleet_without_hosts_is_empty(void **state)
{
    json_t *doc;
    struct run r;

    (void)state;
    start(1, "5s");
    assert_int_equal(cbctl(&r, "fleet", "list", "--config", config(), NULL)->status, 0);
    EXPECT_IN(r.out, "0 hosts live, 0 stale");
    assert_int_equal(cbctl(&r, "fleet", "list", "--json", "--config", config(), NULL)->status, 0);
    doc = parse(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "breakers")), 0);
    json_decref(doc);
}

static void test_show_prints_every_host_and_marks_the_stale_ones(void **state)
{
    struct run r;
    char *line;

    (void)state;
    start(1, "5s");
    fake_fleet();
    fake_host("web-6", -5000, NULL); /* its hash expired with its heartbeat */
    cbctl(&r, "fleet", "show", "payments", "--config", config(), NULL);
    EXPECT_STATUS(&r, 0);
    EXPECT_IN(r.out, "HOST ");
    assert_non_null(line = strstr(r.out, "\nweb-1 "));
    EXPECT_IN(line, "open       normal         operator           3 5s ago");
    assert_non_null(line = strstr(r.out, "\nweb-2 "));
    EXPECT_IN(line, "closed     forced_open    fleet              0 2s ago");
    assert_non_null(line = strstr(r.out, "\nweb-3 "));
    EXPECT_IN(line, "closed     forced_closed  operator           0 9s ago");
    assert_non_null(line = strstr(r.out, "\nweb-4 "));
    EXPECT_IN(line, " 1m30s ago ");
    EXPECT_IN(line, " stale: no heartbeat for 4");
    assert_non_null(line = strstr(r.out, "\nweb-5 "));
    EXPECT_IN(line, "stale: no snapshot");
    EXPECT_IN(r.out, "\nweb-6                    -          -              -                  - -  "
                     "          stale: no heartbeat for 5s\n");
    /* No line ends in blanks. */
    assert_null(strstr(r.out, " \n"));
    cbctl(&r, "fleet", "show", "search", "--config", config(), NULL);
    EXPECT_STATUS(&r, 0);
    assert_non_null(line = strstr(r.out, "\nweb-3 "));
    EXPECT_IN(line, "no such breaker on this host");
}

static void test_show_json_has_one_object_per_host_with_its_snapshot(void **state)
{
    char buf[256];
    json_t *doc, *hosts, *h;
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    assert_int_equal(
        cbctl(&r, "fleet", "show", "search", "--json", "--config", config(), NULL)->status, 0);
    doc = parse(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "breaker")), "search");
    hosts = json_object_get(doc, "hosts");
    assert_string_equal(joined(hosts, buf, sizeof buf), "web-1,web-2,web-4");
    h = json_array_get(hosts, 1);
    assert_string_equal(json_string_value(json_object_get(h, "state")), "half_open");
    assert_string_equal(json_string_value(json_object_get(h, "mode")), "normal");
    assert_int_equal(json_integer_value(json_object_get(h, "trips")), 1);
    assert_true(json_is_integer(json_object_get(h, "since")));
    assert_true(json_is_false(json_object_get(h, "stale")));
    assert_true(json_is_true(json_object_get(json_array_get(hosts, 2), "stale")));
    assert_string_equal(joined(json_object_get(doc, "without"), buf, sizeof buf), "web-3");
    assert_string_equal(joined(json_object_get(doc, "no_snapshot"), buf, sizeof buf), "web-5");
    json_decref(doc);
}

static void test_show_of_a_breaker_no_host_has_exits_1(void **state)
{
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    cbctl(&r, "fleet", "show", "nosuch", "--json", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    assert_string_equal(r.out, "");
    EXPECT_IN(r.err, "fleet show nosuch: no host of fleet");
    EXPECT_IN(r.err, "reports breaker nosuch");
}

static void test_what_redis_holds_that_cannot_be_read_is_said_left_out_and_exits_1(void **state)
{
    char k[256];
    json_t *doc;
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    freeReplyObject(th_redis_cmd(db, "HSET %s search %s", key(k, "host", "web-3"), "{not json"));
    freeReplyObject(th_redis_cmd(db, "HSET %s %s {}", key(k, "host", "web-3"), "bad name!"));
    freeReplyObject(th_redis_cmd(db, "ZADD %s %llu %s", key(k, "hosts", NULL),
                                 (unsigned long long)th_wall_ms() + 15000, "web-\x1b[31mred"));
    cbctl(&r, "fleet", "list", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    /* The rest is there, counted as before. */
    EXPECT_IN(r.out, "payments                             3      0      1         "
                     "0           0             1        0      1     1");
    EXPECT_IN(r.err, "holds 'web-\\x1b[31mred', not a host id: left out\n");
    EXPECT_IN(r.err, "host web-3: breaker search: its snapshot cannot be read: left out\n");
    EXPECT_IN(r.err, "host web-3: a field of its hash is not a breaker name: left out\n");
    cbctl(&r, "fleet", "list", "--json", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    doc = parse(&r); /* still one whole document */
    assert_int_equal(count(find_breaker(doc, "search"), "hosts"), 2);
    json_decref(doc);

    freeReplyObject(th_redis_cmd(db, "HSET %s payments %s", key(k, "host", "web-2"), "[1,2]"));
    cbctl(&r, "fleet", "show", "payments", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.out, "\nweb-1 ");
    assert_null(strstr(r.out, "\nweb-2 "));
    EXPECT_IN(r.err, "host web-2: its snapshot cannot be read: left out\n");
}

/* What a stand-in agent answers for one host; ack NULL: it never answers. */
struct stand_in {
    const char *host;
    const char *ack; /* "ok", or "error <message>" */
};

/*
 * A child that waits for the fleet's first command (the stream starts
 * empty) and acks it for each host its hosts glob matches, as the agents
 * would; returns its pid. It exits once it has acked.
 */
static int stand_in_agents(const struct stand_in *hosts, size_t n)
{
    int pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        redisContext *c = th_redis_connect(&redis);
        char k[256], ack[256], glob[256] = "*", id[64];
        redisReply *r, *fields;
        struct timeval tv = {20, 0};

        redisSetTimeout(c, tv);
        r = redisCommand(c, "XREAD BLOCK 15000 STREAMS %s 0-0", key(k, "commands", NULL));
        if (r == NULL || r->type != REDIS_REPLY_ARRAY)
            _exit(3);
        /* [[stream, [[id, [field, value, ...]]]]] */
        snprintf(id, sizeof id, "%s", r->element[0]->element[1]->element[0]->element[0]->str);
        fields = r->element[0]->element[1]->element[0]->element[1];
        for (size_t i = 0; i + 1 < fields->elements; i += 2)
            if (strcmp(fields->element[i]->str, "hosts") == 0)
                snprintf(glob, sizeof glob, "%s", fields->element[i + 1]->str);
        for (size_t i = 0; i < n; i++) {
            if (hosts[i].ack == NULL || fnmatch(glob, hosts[i].host, 0) != 0)
                continue;
            if (strcmp(hosts[i].ack, "ok") == 0)
                snprintf(ack, sizeof ack, "ok %llu", (unsigned long long)th_wall_ms());
            else
                snprintf(ack, sizeof ack, "%s", hosts[i].ack);
            freeReplyObject(
                redisCommand(c, "HSET %s %s %s", key(k, "ack", id), hosts[i].host, ack));
            freeReplyObject(redisCommand(c, "PEXPIRE %s 86400000", key(k, "ack", id)));
        }
        freeReplyObject(r);
        redisFree(c);
        _exit(0);
    }
    return pid;
}

/* The stand-in's exit, after cbctl's: said with cbctl's output. */
static void stand_in_done(int pid, const struct run *r)
{
    int status = t_wait(pid);

    if (status != 0)
        fail_msg("the stand-in agents exited %d (3: no command came); cbctl exited %d; "
                 "stdout:\n%s\nstderr:\n%s",
                 status, r->status, r->out, r->err);
}

static void three_live_hosts(void)
{
    char a[512];

    fake_host("web-1", 15000, "payments", snap(a, "closed", "normal", "operator", 0, 1000), NULL);
    fake_host("web-2", 15000, "payments", snap(a, "closed", "normal", "operator", 0, 1000), NULL);
    fake_host("web-3", 15000, "payments", snap(a, "closed", "normal", "operator", 0, 1000), NULL);
}

static void test_open_for_writes_one_command_with_the_specs_fields(void **state)
{
    static const struct stand_in all_ok[] = {{"web-1", "ok"}, {"web-2", "ok"}, {"web-3", "ok"}};
    char k[256], host[256], by[300];
    redisReply *r, *fields;
    struct run run;
    uint64_t before = th_wall_ms();
    int agents;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    agents = stand_in_agents(all_ok, 3);
    cbctl(&run, "fleet", "open", "payments", "--for", "10m", "--config", config(), NULL);
    stand_in_done(agents, &run);
    EXPECT_STATUS(&run, 0);

    r = th_redis_cmd(db, "XRANGE %s - +", key(k, "commands", NULL));
    assert_int_equal(r->elements, 1);
    fields = r->element[0]->element[1];
    assert_int_equal(fields->elements, 12);
    gethostname(host, sizeof host);
    snprintf(by, sizeof by, "root@%s", host);
    {
        const char *want[][2] = {{"op", "open"},
                                 {"breaker", "payments"},
                                 {"for_ms", "600000"},
                                 {"hosts", "*"},
                                 {"by", getuid() == 0 && !getenv("SUDO_USER") ? by : NULL}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            assert_string_equal(fields->element[2 * i]->str, want[i][0]);
            if (want[i][1] != NULL)
                assert_string_equal(fields->element[2 * i + 1]->str, want[i][1]);
        }
    }
    assert_non_null(strchr(fields->element[9]->str, '@'));
    assert_string_equal(fields->element[10]->str, "time");
    assert_true(strtoull(fields->element[11]->str, NULL, 10) >= before);
    assert_true(strtoull(fields->element[11]->str, NULL, 10) <= th_wall_ms());
    /* The stream is capped (MAXLEN ~ 10000): its id names the ack hash. */
    assert_non_null(strstr(run.out, r->element[0]->element[0]->str));
    freeReplyObject(r);
    /* A write without --for says 0: until changed. */
    freeReplyObject(th_redis_cmd(db, "DEL %s", key(k, "commands", NULL)));
    agents = stand_in_agents(all_ok, 3);
    assert_int_equal(cbctl(&run, "fleet", "reset", "payments", "--config", config(), NULL)->status,
                     0);
    stand_in_done(agents, &run);
    r = th_redis_cmd(db, "XRANGE %s - +", key(k, "commands", NULL));
    assert_string_equal(r->element[0]->element[1]->element[1]->str, "reset");
    assert_string_equal(r->element[0]->element[1]->element[5]->str, "0");
    freeReplyObject(r);
}

static void test_open_exits_0_when_every_live_host_applied_it(void **state)
{
    static const struct stand_in all_ok[] = {{"web-1", "ok"}, {"web-2", "ok"}, {"web-3", "ok"}};
    char buf[256];
    json_t *doc;
    struct run r;
    int agents;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    fake_host("web-9", -60000, NULL); /* stale: not waited for */
    agents = stand_in_agents(all_ok, 3);
    cbctl(&r, "fleet", "open", "payments", "--json", "--config", config(), NULL);
    stand_in_done(agents, &r);
    if (r.status != 0)
        fail_msg("status %d: %s", r.status, r.err);
    doc = parse(&r);
    assert_true(json_is_string(json_object_get(doc, "command")));
    assert_string_equal(joined(json_object_get(doc, "applied"), buf, sizeof buf),
                        "web-1,web-2,web-3");
    assert_int_equal(json_object_size(json_object_get(doc, "errors")), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "missing")), 0);
    assert_true(json_is_real(json_object_get(doc, "seconds")));
    assert_true(json_real_value(json_object_get(doc, "seconds")) < 5.0);
    assert_int_equal(json_object_size(doc), 5);
    json_decref(doc);
    assert_string_equal(r.err, "");

    /* The text form: one line per host. */
    {
        char k[256];
        freeReplyObject(th_redis_cmd(db, "DEL %s", key(k, "commands", NULL)));
    }
    agents = stand_in_agents(all_ok, 3);
    cbctl(&r, "fleet", "disable", "payments", "--for", "30s", "--config", config(), NULL);
    stand_in_done(agents, &r);
    EXPECT_STATUS(&r, 0);
    EXPECT_IN(r.out, "disable payments for 30s on 3 live hosts (command ");
    EXPECT_IN(r.out, "\nweb-1: applied\nweb-2: applied\nweb-3: applied\n");
}

static void test_an_error_ack_exits_1_naming_the_host_and_its_message(void **state)
{
    static const struct stand_in acks[] = {
        {"web-1", "ok"}, {"web-2", "error no such breaker"}, {"web-3", "ok"}};
    json_t *doc;
    struct run r;
    int agents;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    agents = stand_in_agents(acks, 3);
    cbctl(&r, "fleet", "close", "payments", "--config", config(), NULL);
    stand_in_done(agents, &r);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.out, "web-1: applied\nweb-2: error: no such breaker\nweb-3: applied\n");
    EXPECT_IN(r.err, "cbctl: fleet close payments: host web-2: no such breaker\n");
    EXPECT_IN(r.err, "1 of 3 hosts did not apply command ");

    {
        char k[256];
        freeReplyObject(th_redis_cmd(db, "DEL %s", key(k, "commands", NULL)));
    }
    agents = stand_in_agents(acks, 3);
    cbctl(&r, "fleet", "close", "payments", "--json", "--config", config(), NULL);
    stand_in_done(agents, &r);
    EXPECT_STATUS(&r, 1);
    doc = parse(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "errors"), "web-2")),
                        "no such breaker");
    assert_int_equal(json_array_size(json_object_get(doc, "applied")), 2);
    json_decref(doc);
}

static void test_a_host_that_does_not_answer_is_no_answer_after_the_timeout(void **state)
{
    static const struct stand_in acks[] = {{"web-1", "ok"}, {"web-2", "ok"}, {"web-3", NULL}};
    char buf[64];
    json_t *doc;
    struct run r;
    int agents;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    agents = stand_in_agents(acks, 3);
    cbctl(&r, "fleet", "enable", "payments", "--timeout", "700ms", "--json", "--config", config(),
          NULL);
    stand_in_done(agents, &r);
    EXPECT_STATUS(&r, 1);
    /* It waited the timeout out, and not much longer. */
    assert_true(r.seconds >= 0.7);
    assert_true(r.seconds < 3.0);
    doc = parse(&r);
    assert_string_equal(joined(json_object_get(doc, "missing"), buf, sizeof buf), "web-3");
    assert_true(json_real_value(json_object_get(doc, "seconds")) >= 0.69);
    json_decref(doc);
    EXPECT_IN(r.err, "host web-3: no answer within the timeout");

    {
        char k[256];
        freeReplyObject(th_redis_cmd(db, "DEL %s", key(k, "commands", NULL)));
    }
    agents = stand_in_agents(acks, 3);
    cbctl(&r, "fleet", "enable", "payments", "--timeout", "300ms", "--config", config(), NULL);
    stand_in_done(agents, &r);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.out, "web-3: no answer\n");
}

static void test_hosts_glob_narrows_who_must_answer(void **state)
{
    static const struct stand_in acks[] = {{"web-1", "ok"}, {"web-2", "ok"}, {"web-3", NULL}};
    char buf[64], k[256];
    json_t *doc;
    struct run r;
    redisReply *x;
    int agents;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    agents = stand_in_agents(acks, 3);
    cbctl(&r, "fleet", "open", "payments", "--hosts", "web-[12]", "--timeout", "5s", "--json",
          "--config", config(), NULL);
    stand_in_done(agents, &r);
    if (r.status != 0)
        fail_msg("status %d: %s%s", r.status, r.out, r.err);
    doc = parse(&r);
    assert_string_equal(joined(json_object_get(doc, "applied"), buf, sizeof buf), "web-1,web-2");
    assert_int_equal(json_array_size(json_object_get(doc, "missing")), 0);
    json_decref(doc);
    x = th_redis_cmd(db, "XRANGE %s - +", key(k, "commands", NULL));
    assert_string_equal(x->element[0]->element[1]->element[7]->str, "web-[12]");
    freeReplyObject(x);

    /* A glob no live host matches issues nothing. */
    cbctl(&r, "fleet", "open", "payments", "--hosts", "db-*", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.err, "no live host of fleet");
    EXPECT_IN(r.err, "matches --hosts 'db-*'");
    assert_int_equal(th_redis_int(db, "XLEN %s", key(k, "commands", NULL)), 1);
}

static void test_redis_down_exits_1_with_a_clear_message_within_the_timeout(void **state)
{
    struct run r;

    (void)state;
    start(1, "5s");
    redisFree(db);
    db = NULL;
    th_redis_stop(&redis);
    cbctl(&r, "fleet", "open", "payments", "--timeout", "2s", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    assert_true(r.seconds < 3.0);
    assert_string_equal(r.out, "");
    EXPECT_IN(r.err, "cbctl: fleet open payments: redis 127.0.0.1:");
    EXPECT_IN(r.err, "cannot connect: Connection refused");
    cbctl(&r, "fleet", "list", "--json", "--timeout", "2s", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    assert_string_equal(r.out, "");
    EXPECT_IN(r.err, "cbctl: fleet list: redis 127.0.0.1:");
}

static void test_redis_lost_while_waiting_keeps_the_acks_seen_and_ends_at_the_timeout(void **state)
{
    static const struct stand_in acks[] = {{"web-1", "ok"}, {"web-2", "ok"}, {"web-3", NULL}};
    char buf[64];
    json_t *doc;
    struct run r;
    int agents, killer;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    agents = stand_in_agents(acks, 3);
    /* Redis goes away while cbctl waits for web-3. */
    if ((killer = fork()) == 0) {
        struct timespec ts = {0, 400 * 1000000L};
        nanosleep(&ts, NULL);
        kill(redis.pid, SIGKILL);
        _exit(0);
    }
    cbctl(&r, "fleet", "open", "payments", "--timeout", "2s", "--json", "--config", config(), NULL);
    stand_in_done(agents, &r);
    assert_int_equal(t_wait(killer), 0);
    EXPECT_STATUS(&r, 1);
    assert_true(r.seconds >= 1.9);
    assert_true(r.seconds < 4.0);
    doc = parse(&r);
    assert_string_equal(joined(json_object_get(doc, "applied"), buf, sizeof buf), "web-1,web-2");
    assert_string_equal(joined(json_object_get(doc, "missing"), buf, sizeof buf), "web-3");
    json_decref(doc);
    EXPECT_IN(r.err, "cbctl: fleet open payments: redis 127.0.0.1:");
    /* The kill's FIN or RST, whichever the read meets first. */
    if (strstr(r.err, ": HGETALL: Server closed the connection\n") == NULL &&
        strstr(r.err, ": HGETALL: Connection reset by peer\n") == NULL)
        fail_msg("no lost connection said in:\n%s", r.err);
    EXPECT_IN(r.err, "host web-3: no answer within the timeout");
    redisFree(db);
    db = NULL;
}

static void test_usage_errors_exit_2(void **state)
{
    static const char *const cases[][8] = {
        {"fleet", NULL},
        {"fleet", "bogus", NULL},
        {"fleet", "open", NULL},
        {"fleet", "show", NULL},
        {"fleet", "list", "extra", NULL},
        {"fleet", "open", "a", "b", NULL},
        {"fleet", "open", "payments", "--for", "soon", NULL},
        {"fleet", "open", "payments", "--for", "0", NULL},
        {"fleet", "enable", "payments", "--for", "5s", NULL},
        {"fleet", "reset", "payments", "--for", "5s", NULL},
        {"fleet", "open", "pay ments", NULL},
        {"fleet", "open", "payments", "--timeout", "never", NULL},
        {"fleet", "open", "payments", "--hosts", "", NULL},
    };
    static const char *const says[] = {
        "fleet: expected a verb: list, show, open, close, disable, enable, reset",
        "fleet: unknown verb 'bogus' (expected list, show, open",
        "fleet: open: expected a breaker name",
        "fleet: show: expected a breaker name",
        "fleet: list: unexpected argument 'extra'",
        "fleet: open: unexpected argument 'b'",
        "fleet: --for: ",
        "fleet: --for: ",
        "fleet: enable: --for is for open, close and disable",
        "fleet: reset: --for is for open, close and disable",
        "fleet: open: invalid breaker name 'pay ments'",
        "fleet: --timeout: ",
        "fleet: --hosts wants a glob of host ids",
    };
    char path[] = "/nonexistent.yaml";
    struct run r;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[12];
        size_t n = 0;
        while (cases[i][n] != NULL) {
            argv[n] = cases[i][n];
            n++;
        }
        argv[n++] = "--config";
        argv[n++] = path;
        while (n < 12)
            argv[n++] = NULL;
        cbctl(&r, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8],
              argv[9], argv[10], NULL);
        if (r.status != 2 || strstr(r.err, says[i]) == NULL ||
            strstr(r.err, "usage: cbctl [global options] fleet -c FILE") == NULL)
            fail_msg("case %zu: status %d, stderr: %s", i, r.status, r.err);
        assert_string_equal(r.out, "");
    }
    /* --config is required. */
    cbctl(&r, "fleet", "list", NULL);
    EXPECT_STATUS(&r, 2);
    EXPECT_IN(r.err, "-c FILE is required");
}

static void test_help_lists_the_verbs_and_the_options(void **state)
{
    struct run r;

    (void)state;
    assert_int_equal(cbctl(&r, "fleet", "--help", NULL)->status, 0);
    EXPECT_IN(r.out, "usage: cbctl [global options] fleet -c FILE [--for DURATION] "
                     "[--hosts GLOB] [--timeout DURATION] [--json] list|show "
                     "NAME|open NAME|close NAME|disable NAME|enable NAME|reset NAME\n");
    EXPECT_IN(r.out, "\nverbs:\n  list ");
    EXPECT_IN(r.out, "\n  reset NAME ");
    EXPECT_IN(r.out, "\noptions:\n");
    EXPECT_IN(r.out, "--timeout DURATION");
    assert_int_equal(cbctl(&r, "--help", NULL)->status, 0);
    EXPECT_IN(r.out, "\n  fleet     see and steer every host's breakers");
}

static void test_config_without_a_fleet_section_or_with_a_bad_one_exits_3(void **state)
{
    char path[256], pw[256];
    struct run r;

    (void)state;
    start(1, "5s");
    snprintf(path, sizeof path, "%s/nofleet.yaml", fleet.dir);
    th_write_file(path, "breakers:\n  - name: payments\n", 0600);
    cbctl(&r, "fleet", "list", "--config", path, NULL);
    EXPECT_STATUS(&r, 3);
    EXPECT_IN(r.err, "has no fleet: section");
    th_write_file(path,
                  "breakers:\n  - name: payments\nfleet:\n  redis: 127.0.0.1:6379\n"
                  "  name: x\n  heartbaet: 5s\n",
                  0600);
    cbctl(&r, "fleet", "list", "--config", path, NULL);
    EXPECT_STATUS(&r, 3);
    EXPECT_IN(r.err, "nofleet.yaml:6:3: ");
    /* A password file that others may read is refused before Redis is asked. */
    snprintf(pw, sizeof pw, "%s/pw", fleet.dir);
    th_write_file(pw, "secret\n", 0644);
    {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "breakers:\n  - name: payments\nfleet:\n  redis: 127.0.0.1:%d\n  name: x\n"
                 "  password_file: %s\n",
                 redis.port, pw);
        th_write_file(path, yaml, 0600);
    }
    cbctl(&r, "fleet", "list", "--config", path, NULL);
    EXPECT_STATUS(&r, 3);
    EXPECT_IN(r.err, "every user may read or write it");
    assert_null(strstr(r.err, "secret"));
    /* A file that is not there at all. */
    cbctl(&r, "fleet", "list", "--config", "/nonexistent/fleet.yaml", NULL);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.err, "/nonexistent/fleet.yaml");
}

static void test_list_over_the_unix_socket_with_a_password_from_a_file(void **state)
{
    char path[256], pw[256], yaml[768], a[512];
    struct run r;

    (void)state;
    TH_NEED_REDIS();
    snprintf(redis.password, sizeof redis.password, "s3cret-%d", (int)getpid());
    th_redis_start(&redis);
    th_fleet_init(&fleet, &redis, 1, "breakers:\n  - name: payments\n", "5s", 1, NULL);
    db = th_redis_connect(&redis);
    fake_host("web-1", 15000, "payments", snap(a, "open", "normal", "operator", 1, 1000), NULL);
    snprintf(pw, sizeof pw, "%s/redis.pass", fleet.dir);
    th_write_file(pw, redis.password, 0600);
    snprintf(path, sizeof path, "%s/client.yaml", fleet.dir);
    snprintf(yaml, sizeof yaml,
             "breakers:\n  - name: payments\nfleet:\n  redis: unix:%s\n  name: %s\n"
             "  password_file: %s\n",
             redis.socket, fleet.name, pw);
    th_write_file(path, yaml, 0600);
    cbctl(&r, "fleet", "list", "--json", "--config", path, NULL);
    if (r.status != 0)
        fail_msg("status %d: %s", r.status, r.err);
    EXPECT_IN(r.out, "\"open\": 1");
    /* Without the password Redis refuses, and cbctl says so. */
    snprintf(yaml, sizeof yaml,
             "breakers:\n  - name: payments\nfleet:\n  redis: unix:%s\n  name: %s\n", redis.socket,
             fleet.name);
    th_write_file(path, yaml, 0600);
    cbctl(&r, "fleet", "list", "--config", path, NULL);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.err, "NOAUTH");
    assert_null(strstr(r.err, redis.password));
}

static void test_an_acl_user_logs_in_and_a_wrong_password_is_refused_unsaid(void **state)
{
    char path[256], pw[256], yaml[768], a[512];
    struct run r;

    (void)state;
    TH_NEED_REDIS();
    snprintf(redis.user, sizeof redis.user, "cbshm");
    snprintf(redis.user_password, sizeof redis.user_password, "acl-%d", (int)getpid());
    th_redis_start(&redis);
    th_fleet_init(&fleet, &redis, 1, "breakers:\n  - name: payments\n", "5s", 0, NULL);
    db = th_redis_connect(&redis);
    fake_host("web-1", 15000, "payments", snap(a, "closed", "normal", "none", 0, 1000), NULL);
    snprintf(pw, sizeof pw, "%s/acl.pass", fleet.dir);
    th_write_file(pw, redis.user_password, 0640);
    snprintf(path, sizeof path, "%s/client.yaml", fleet.dir);
    snprintf(yaml, sizeof yaml,
             "breakers:\n  - name: payments\nfleet:\n  redis: 127.0.0.1:%d\n  name: %s\n"
             "  user: cbshm\n  password_file: %s\n",
             redis.port, fleet.name, pw);
    th_write_file(path, yaml, 0600);
    cbctl(&r, "fleet", "list", "--config", path, NULL);
    EXPECT_STATUS(&r, 0);
    EXPECT_IN(r.out, "1 hosts live, 0 stale");
    th_write_file(pw, "not-the-password\n", 0600);
    cbctl(&r, "fleet", "open", "payments", "--config", path, NULL);
    EXPECT_STATUS(&r, 1);
    assert_string_equal(r.out, "");
    EXPECT_IN(r.err, "AUTH as cbshm refused: WRONGPASS");
    assert_null(strstr(r.err, "not-the-password"));
}

/* Hosts the hosts ZSET counts live, each with its hash published. */
static int published_hosts(void)
{
    char k[256];
    int n = 0;

    if (th_redis_int(db, "ZCOUNT %s %llu +inf", key(k, "hosts", NULL),
                     (unsigned long long)th_wall_ms()) != fleet.n)
        return 0;
    for (int i = 0; i < fleet.n; i++)
        n += th_redis_int(db, "EXISTS %s", key(k, "host", fleet.host[i].host_id)) == 1;
    return n;
}

/* Where list counts a breaker of one segment: as cmd_fleet.c buckets the
   agents' snapshots, from the segment itself. */
static const char *bucket_of_segment(const struct cbshm_snapshot *s)
{
    static const char *const states[] = {"closed", "open", "half_open"};

    switch (s->mode) {
    case CBSHM_MODE_NORMAL:
        return states[s->state];
    case CBSHM_MODE_FORCED_OPEN:
        return s->mode_cause == CBSHM_CAUSE_FLEET ? "fleet" : "forced_open";
    case CBSHM_MODE_FORCED_CLOSED:
        return "forced_closed";
    default:
        return "disabled";
    }
}

/* 1 when `cbctl fleet list --json` counts for each breaker exactly what
   the three segments hold; *why says the first difference. */
static int list_agrees_with_the_segments(char *why, size_t size)
{
    static const char *const names[] = {"payments", "search"};
    static const char *const buckets[] = {"closed",        "open",     "half_open", "forced_open",
                                          "forced_closed", "disabled", "fleet"};
    struct run r;
    json_t *doc;
    int agrees = 1;

    cbctl(&r, "fleet", "list", "--json", "--config", config(), NULL);
    if (r.status != 0) {
        snprintf(why, size, "list exited %d: %.300s", r.status, r.err);
        return 0;
    }
    doc = parse(&r);
    if (json_array_size(json_object_get(json_object_get(doc, "hosts"), "live")) != 3) {
        snprintf(why, size, "not 3 live hosts: %.300s", r.out);
        agrees = 0;
    }
    for (size_t b = 0; agrees && b < sizeof names / sizeof names[0]; b++) {
        json_t *row = find_breaker(doc, names[b]);
        long long want[7] = {0};
        for (int i = 0; i < fleet.n; i++) {
            struct cbshm *shm;
            struct cbshm_snapshot snap;
            assert_int_equal(cbshm_open(fleet.host[i].segment, CBSHM_READ_ONLY, &shm), 0);
            assert_int_equal(cbshm_snapshot(shm, names[b], &snap), 0);
            cbshm_close(shm);
            for (size_t k = 0; k < 7; k++)
                want[k] += strcmp(bucket_of_segment(&snap), buckets[k]) == 0;
        }
        for (size_t k = 0; agrees && k < 7; k++) {
            if (count(row, buckets[k]) != want[k]) {
                snprintf(why, size, "%s: list says %s %lld, the segments %lld", names[b],
                         buckets[k], count(row, buckets[k]), want[k]);
                agrees = 0;
            }
        }
    }
    json_decref(doc);
    return agrees;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* End to end: three segments, three real agents, one cbctl fleet. */
static void test_open_reaches_three_real_agents_and_list_agrees_with_their_segments(void **state)
{
    char buf[256], why[512] = "";
    double acked[10], process[10];
    json_t *doc;
    struct run r;

    (void)state;
    start(3, "1s");
    for (int i = 0; i < 3; i++)
        th_agent_start(&fleet, i, NULL);
    TH_WAIT_FLEET(&fleet, published_hosts() == 3, 20,
                  "the three agents did not publish their hosts");
    TH_WAIT_FLEET(&fleet, list_agrees_with_the_segments(why, sizeof why), 10, "%s", why);

    cbctl(&r, "fleet", "open", "payments", "--for", "10m", "--json", "--config", config(), NULL);
    EXPECT_STATUS(&r, 0);
    doc = parse(&r);
    snprintf(why, sizeof why, "%s,%s,%s", fleet.host[0].host_id, fleet.host[1].host_id,
             fleet.host[2].host_id);
    assert_string_equal(joined(json_object_get(doc, "applied"), buf, sizeof buf), why);
    json_decref(doc);
    for (int i = 0; i < 3; i++) {
        struct cbshm *shm;
        struct cbshm_snapshot snap;
        assert_int_equal(cbshm_open(fleet.host[i].segment, CBSHM_READ_ONLY, &shm), 0);
        assert_int_equal(cbshm_snapshot(shm, "payments", &snap), 0);
        assert_int_equal(snap.mode, CBSHM_MODE_FORCED_OPEN);
        assert_int_equal(snap.mode_cause, CBSHM_CAUSE_OPERATOR);
        /* --for 10m: a timed mode, ending within ten minutes. */
        assert_true(snap.mode_until_ns > snap.last_transition_ns);
        cbshm_close(shm);
    }
    why[0] = '\0';
    TH_WAIT_FLEET(&fleet, list_agrees_with_the_segments(why, sizeof why), 10, "%s", why);
    cbctl(&r, "fleet", "list", "--json", "--config", config(), NULL);
    doc = parse(&r);
    assert_int_equal(count(find_breaker(doc, "payments"), "forced_open"), 3);
    json_decref(doc);

    /* From `cbctl fleet open` to the last of three acks, ten times. */
    for (int i = 0; i < 10; i++) {
        cbctl(&r, "fleet", i % 2 ? "open" : "enable", "payments", "--json", "--config", config(),
              NULL);
        EXPECT_STATUS(&r, 0);
        doc = parse(&r);
        acked[i] = json_real_value(json_object_get(doc, "seconds"));
        json_decref(doc);
        process[i] = r.seconds;
    }
    qsort(acked, 10, sizeof acked[0], by_value);
    qsort(process, 10, sizeof process[0], by_value);
    printf("cbctl fleet open/enable to the last of 3 acks, 10 runs: median %.2f ms from the XADD "
           "(min %.2f, max %.2f); %.2f ms from cbctl's start to its exit (min %.2f, max %.2f)\n",
           (acked[4] + acked[5]) / 2 * 1000, acked[0] * 1000, acked[9] * 1000,
           (process[4] + process[5]) / 2 * 1000, process[0] * 1000, process[9] * 1000);
    assert_true(acked[9] < 5.0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(th_agent_stop(&fleet, i), 0);
}

/* ---- What a hostile writer of the fleet's keys can do (adversary's cases). ---- */

static void test_show_json_takes_only_the_schemas_keys_from_a_snapshot(void **state)
{
    char k[256];
    json_t *doc, *hosts;
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    /* web-4 is stale; its snapshot claims to be web-1's, and live. */
    freeReplyObject(th_redis_cmd(db, "HSET %s payments %s", key(k, "host", "web-4"),
                                 "{\"host\":\"web-1\",\"stale\":false,\"state\":\"closed\","
                                 "\"mode\":\"normal\",\"x\":1,\"trips\":0,\"since\":1}"));
    cbctl(&r, "fleet", "show", "payments", "--json", "--config", config(), NULL);
    EXPECT_STATUS(&r, 0);
    doc = parse(&r);
    hosts = json_object_get(doc, "hosts");
    assert_int_equal(json_array_size(hosts), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hosts, 3), "host")),
                        "web-4");
    assert_true(json_is_true(json_object_get(json_array_get(hosts, 3), "stale")));
    assert_null(json_object_get(json_array_get(hosts, 3), "x"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(hosts, 3), "state")),
                        "closed");
    json_decref(doc);
}

static void test_a_host_key_of_another_type_is_left_out_and_the_rest_shown(void **state)
{
    char k[256];
    json_t *doc;
    struct run r;

    (void)state;
    start(1, "5s");
    fake_fleet();
    freeReplyObject(th_redis_cmd(db, "DEL %s", key(k, "host", "web-3")));
    freeReplyObject(th_redis_cmd(db, "SET %s x", key(k, "host", "web-3")));
    cbctl(&r, "fleet", "list", "--json", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.err, "host web-3: its hash cannot be read (WRONGTYPE");
    EXPECT_IN(r.err, "): left out\n");
    doc = parse(&r);
    /* payments: web-1 open and web-2 fleet, as before; web-3 nowhere. */
    assert_int_equal(count(find_breaker(doc, "payments"), "hosts"), 2);
    assert_int_equal(count(find_breaker(doc, "payments"), "open"), 1);
    assert_null(strstr(r.out, "web-3"));
    json_decref(doc);
    cbctl(&r, "fleet", "show", "payments", "--config", config(), NULL);
    EXPECT_STATUS(&r, 1);
    EXPECT_IN(r.out, "\nweb-1 ");
    EXPECT_IN(r.out, "\nweb-2 ");
    assert_null(strstr(r.out, "web-3"));
    EXPECT_IN(r.err, "host web-3: its hash cannot be read (WRONGTYPE");
}

static void test_a_score_of_inf_counts_the_host_live_as_the_agents_zcount_does(void **state)
{
    char k[256], a[512], buf[256];
    json_t *doc;
    struct run r;

    (void)state;
    start(1, "5s");
    fake_host("web-1", 15000, "payments", snap(a, "open", "normal", "none", 1, 1000), NULL);
    fake_host("web-2", 15000, "payments", snap(a, "closed", "normal", "none", 0, 1000), NULL);
    fake_host("web-3", -5000, "payments", snap(a, "closed", "normal", "none", 0, 1000), NULL);
    freeReplyObject(th_redis_cmd(db, "ZADD %s inf web-2 -inf web-3", key(k, "hosts", NULL)));
    /* What the agents' fleet trip counts as live. */
    assert_int_equal(th_redis_int(db, "ZCOUNT %s %llu +inf", key(k, "hosts", NULL),
                                  (unsigned long long)th_wall_ms()),
                     2);
    cbctl(&r, "fleet", "list", "--json", "--config", config(), NULL);
    EXPECT_STATUS(&r, 0);
    doc = parse(&r);
    assert_string_equal(
        joined(json_object_get(json_object_get(doc, "hosts"), "live"), buf, sizeof buf),
        "web-1,web-2");
    assert_string_equal(
        joined(json_object_get(json_object_get(doc, "hosts"), "stale"), buf, sizeof buf), "web-3");
    json_decref(doc);
}

/*
 * A child that waits for the fleet's first command and then lets `forge`
 * write what it likes under the command's ack key; returns its pid.
 */
static int ack_forger(void (*forge)(redisContext *c, const char *ack_key))
{
    int pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        redisContext *c = th_redis_connect(&redis);
        struct timeval tv = {20, 0};
        char k[256], ack[256];
        redisReply *r;

        redisSetTimeout(c, tv);
        r = redisCommand(c, "XREAD BLOCK 15000 STREAMS %s 0-0", key(k, "commands", NULL));
        if (r == NULL || r->type != REDIS_REPLY_ARRAY)
            _exit(3);
        snprintf(ack, sizeof ack, "cbshm:{%s}:ack:%s", fleet.name,
                 r->element[0]->element[1]->element[0]->element[0]->str);
        forge(c, ack);
        freeReplyObject(r);
        redisFree(c);
        _exit(0);
    }
    return pid;
}

static void ack_of_another_type(redisContext *c, const char *ack_key)
{
    freeReplyObject(redisCommand(c, "SET %s not-a-hash", ack_key));
}

static void test_an_ack_key_of_another_type_is_said_once_and_waited_out(void **state)
{
    struct run r;
    int forger;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    forger = ack_forger(ack_of_another_type);
    cbctl(&r, "fleet", "open", "payments", "--timeout", "700ms", "--config", config(), NULL);
    stand_in_done(forger, &r);
    EXPECT_STATUS(&r, 1);
    assert_true(r.seconds < 3.0);
    EXPECT_IN(r.out, "web-1: no answer\nweb-2: no answer\nweb-3: no answer\n");
    EXPECT_IN(r.err, ": HGETALL: WRONGTYPE");
    /* Once, not at each of the ~50 looks of 700 ms. */
    assert_null(strstr(strstr(r.err, "WRONGTYPE") + 1, "WRONGTYPE"));
}

/* Acks for web-1 and web-2, one from db-9 (outside --hosts 'web-*'), and
   30,000 from hosts nobody asked. */
static void acks_not_asked_for(redisContext *c, const char *ack_key)
{
    enum { MANY = 30000 };
    const char **argv = calloc(2 + 2 * (MANY + 3), sizeof *argv);
    char(*ids)[16] = calloc(MANY, sizeof *ids);
    size_t n = 0;

    argv[n++] = "HSET";
    argv[n++] = ack_key;
    argv[n++] = "web-1";
    argv[n++] = "ok 1";
    argv[n++] = "web-2";
    argv[n++] = "ok 1";
    argv[n++] = "db-9";
    argv[n++] = "error forged";
    for (int i = 0; i < MANY; i++) {
        snprintf(ids[i], sizeof ids[i], "web-x%05d", MANY - i);
        argv[n++] = ids[i];
        argv[n++] = "ok 1";
    }
    freeReplyObject(redisCommandArgv(c, (int)n, argv, NULL));
    free(ids);
    free(argv);
}

static void test_acks_not_asked_for_are_read_in_time_and_outside_hosts_left_out(void **state)
{
    struct run r;
    int forger;

    (void)state;
    start(1, "5s");
    three_live_hosts();
    forger = ack_forger(acks_not_asked_for);
    cbctl(&r, "fleet", "open", "payments", "--hosts", "web-*", "--timeout", "1s", "--config",
          config(), NULL);
    stand_in_done(forger, &r);
    EXPECT_STATUS(&r, 1); /* web-3 did not answer */
    /* Sorting at each of 30,000 acks took 10 s for 20,000. */
    if (r.seconds > 5.0)
        fail_msg("cbctl took %.1f s for a 1 s --timeout", r.seconds);
    /* web-1, web-2 and the 30,000 applied; web-3 silent; db-9 not counted. */
    EXPECT_IN(r.out, "\nweb-1: applied\nweb-2: applied\nweb-3: no answer\nweb-x00001: applied\n");
    EXPECT_IN(r.err, "host web-3: no answer within the timeout\n");
    EXPECT_IN(r.err, ": 1 of 30003 hosts did not apply command ");
    assert_null(strstr(r.err, "db-9"));
}

static void test_a_server_that_trickles_its_reply_is_left_at_the_timeout(void **state)
{
    static const char *const verbs[][2] = {
        {"list", NULL}, {"show", "payments"}, {"open", "payments"}};
    char path[256], pw[256], yaml[512];
    struct run r;
    int port, server;

    (void)state;
    start(1, "5s");
    server = th_trickling_server(&port);
    snprintf(path, sizeof path, "%s/trickle.yaml", fleet.dir);
    snprintf(pw, sizeof pw, "%s/trickle.pass", fleet.dir);
    th_write_file(pw, "secret\n", 0600);
    for (int login = 0; login < 2; login++) {
        /* Without a password the first command trickles; with one, AUTH. */
        snprintf(yaml, sizeof yaml, "fleet:\n  redis: 127.0.0.1:%d\n  name: %s\n%s%s%s", port,
                 fleet.name, login ? "  password_file: " : "", login ? pw : "", login ? "\n" : "");
        th_write_file(path, yaml, 0600);
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
            cbctl(&r, "fleet", verbs[i][0], "--timeout", "700ms", "--config", path, verbs[i][1],
                  NULL);
            if (r.status != 1 || r.seconds > 2.5 ||
                strstr(r.err, "no reply within the timeout") == NULL)
                fail_msg("fleet %s (login %d): status %d after %.1f s; stderr: %s", verbs[i][0],
                         login, r.status, r.seconds, r.err);
            assert_string_equal(r.out, "");
        }
    }
    kill(server, SIGKILL);
    t_wait(server);
}

#define T(fn) cmocka_unit_test_teardown(fn, teardown)
static const struct CMUnitTest tests[] = {
    T(test_list_counts_each_live_host_once_and_names_the_stale_ones),
    T(test_list_json_has_the_counts_per_breaker_and_the_stale_hosts),
    T(test_list_hosts_glob_narrows_the_hosts_counted),
    T(test_list_of_a_fleet_without_hosts_is_empty),
    T(test_show_prints_every_host_and_marks_the_stale_ones),
    T(test_show_json_has_one_object_per_host_with_its_snapshot),
    T(test_show_of_a_breaker_no_host_has_exits_1),
    T(test_what_redis_holds_that_cannot_be_read_is_said_left_out_and_exits_1),
    T(test_open_for_writes_one_command_with_the_specs_fields),
    T(test_open_exits_0_when_every_live_host_applied_it),
    T(test_an_error_ack_exits_1_naming_the_host_and_its_message),
    T(test_a_host_that_does_not_answer_is_no_answer_after_the_timeout),
    T(test_hosts_glob_narrows_who_must_answer),
    T(test_redis_down_exits_1_with_a_clear_message_within_the_timeout),
    T(test_redis_lost_while_waiting_keeps_the_acks_seen_and_ends_at_the_timeout),
    T(test_usage_errors_exit_2),
    T(test_help_lists_the_verbs_and_the_options),
    T(test_config_without_a_fleet_section_or_with_a_bad_one_exits_3),
    T(test_list_over_the_unix_socket_with_a_password_from_a_file),
    T(test_an_acl_user_logs_in_and_a_wrong_password_is_refused_unsaid),
    T(test_open_reaches_three_real_agents_and_list_agrees_with_their_segments),
    T(test_show_json_takes_only_the_schemas_keys_from_a_snapshot),
    T(test_a_host_key_of_another_type_is_left_out_and_the_rest_shown),
    T(test_a_score_of_inf_counts_the_host_live_as_the_agents_zcount_does),
    T(test_an_ack_key_of_another_type_is_said_once_and_waited_out),
    T(test_acks_not_asked_for_are_read_in_time_and_outside_hosts_left_out),
    T(test_a_server_that_trickles_its_reply_is_left_at_the_timeout),
};

T_MAIN(tests)
