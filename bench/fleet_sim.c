/* SPDX-License-Identifier: MIT */
/*
 * fleet_sim: one process that plays H hosts' `cbctl agent`s against one
 * redis-server, writing the keys of the fleet's schema (#18) at the
 * agent's rates, and measures what Redis pays for them.
 *
 * Per host, every heartbeat (phases spread evenly over the period):
 *   MULTI; DEL + HSET cbshm:{F}:host:<id> (B breakers' JSON and .agent);
 *   PEXPIRE 3 x heartbeat; ZADD cbshm:{F}:hosts; ZADD cbshm:{F}:open:<b>
 *   for its open breaker, ZREM for the one that closed since; EXEC.
 * Per transition (R per host per minute, at random hosts): XADD
 * cbshm:{F}:events MAXLEN ~ 10000, then the host's transaction again
 * (publish on change). One breaker of a host is open at a time.
 * With --trip-breakers N, after each publication: ZCOUNT hosts and
 * ZCOUNT open:<b> for N breakers (the fleet trip's look).
 * Per host, its command reader: a connection of its own in XREAD COUNT 16
 * BLOCK 250 on cbshm:{F}:commands, again as soon as it returns, as cbctl
 * agent's loop does; a command issued (--commands) wakes every reader,
 * which acks it (HSET cbshm:{F}:ack:<id> + PEXPIRE 1 day).
 *
 * The writers are 32 connections (threads) that pipeline the hosts'
 * transactions due in each 5 ms tick, so one process makes 10,000 hosts'
 * traffic; the readers are one epoll thread holding one connection per
 * host. Not fewer writers: Redis reads a client's pipeline 16 KB an event
 * loop turn, and a turn also serves the readers, so at 10,000 hosts 4
 * writers fell behind (1,605 of 2,000 heartbeats/s, EXEC p50 1.1 s) where
 * the agents, one connection each, would not. Measured over the window after one heartbeat of warm-up: Redis's
 * commands/s (total_commands_processed delta, instantaneous_ops_per_sec),
 * network bytes in/out per second, used_memory and used_memory_dataset,
 * redis-server CPU seconds per wall second (/proc/PID/stat, or INFO cpu
 * for a remote server), and the p50/p99 of a transaction's time from its
 * write to its EXEC reply. Then the memory of 10,000 ack hashes of H
 * fields (measured on fewer when H is large, and scaled).
 *
 *   usage: fleet_sim [--redis ADDR | --redis-server PATH] [--hosts LIST]
 *                    [--breakers B] [--heartbeat DUR] [--seconds DUR] ...
 *   (fleet_sim --help lists every option)
 *
 * Prints one `key=value` line per H and a markdown table. Exit 0; 1 when
 * Redis fails or --check finds a key not as the schema says; 2 usage;
 * 77 when the redis-server to start is not there (ctest: skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define MAX_HOSTS_LISTED 8
#define TICK_NS          5000000ull
#define KEY_MAX          160
#define JSON_MAX         224
#define NAME_BUF         24
#define EVENTS_MAXLEN    "10000"
#define ACK_TTL_MS       "86400000"
/* cbctl agent's XREAD: COUNT 16 BLOCK 250, then round its loop again. */
#define AGENT_BLOCK_MS 250
#define AGENT_COUNT    "16"
/* The ack measurement writes at most this many fields in all. */
#define ACK_FIELDS_MAX 2000000ull

extern char **environ;

struct options {
    const char *redis;        /* ADDR, or NULL with redis_server */
    const char *redis_server; /* the binary to start */
    unsigned hosts[MAX_HOSTS_LISTED];
    int n_hosts;
    unsigned breakers;
    uint64_t heartbeat_ms;
    uint64_t seconds_ms;
    int64_t warmup_ms; /* -1: one heartbeat */
    uint64_t block_ms;
    unsigned trip_breakers; /* breakers with fleet_open_hosts: ZCOUNTs a heartbeat */
    double transitions_per_min;
    double commands_per_min;
    int64_t readers; /* -1: one per host */
    unsigned connections;
    unsigned acks;
    const char *fleet;
    int check;
};

/* One simulated host. Touched by its writer thread only. */
struct host {
    char id[24];
    uint64_t next_due_ns;
    int open_breaker;   /* -1: none */
    int closed_breaker; /* closed since the last publish: ZREM it; -1 none */
    uint32_t trips;
    uint64_t since_ms;
    uint64_t beats;
};

struct writer {
    pthread_t thread;
    struct sim *sim;
    redisContext *c;
    unsigned first; /* hosts first, first + stride, ... */
    unsigned count;
    uint64_t rng;
    /* Counted inside the window. */
    uint64_t heartbeats, events, errors;
    uint32_t *latency_us;
    size_t n_latency, cap_latency;
    char first_error[256];
};

struct reader {
    redisContext *c;
    char last_id[48];
    unsigned host;
    unsigned pending_acks; /* integer replies before the XREAD's */
};

struct sim {
    const struct options *o;
    unsigned n_hosts;
    struct host *hosts;
    char key_hosts[KEY_MAX], key_events[KEY_MAX], key_commands[KEY_MAX];
    uint64_t start_ns, window_start_ns, window_end_ns;
    /* Readers: counted by their thread inside the window. */
    unsigned stride; /* writer k has hosts k, k + stride, ...: the writers */
    struct reader *readers;
    unsigned n_readers;
    uint64_t reads, deliveries, reader_acks, reader_errors;
    pthread_t reader_thread;
};

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000ull + (uint64_t)t.tv_nsec / 1000000ull;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec t = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("fleet_sim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("fleet_sim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(fleet_sim --help lists the options)\n", stderr);
    exit(2);
}

/* "5s", "500ms", "2m", or a bare number of seconds; decimals allowed. */
static int parse_duration_ms(const char *s, uint64_t *ms)
{
    char *end;
    double v, scale = 1000.0;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || v < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        scale = 1.0;
    else if (strcmp(end, "m") == 0)
        scale = 60000.0;
    else if (strcmp(end, "s") != 0 && *end != '\0')
        return -1;
    if (v * scale > 86400000.0)
        return -1;
    *ms = (uint64_t)(v * scale + 0.5);
    return 0;
}

static uint64_t duration_opt(const char *opt, const char *arg, uint64_t min_ms)
{
    uint64_t ms;
    if (parse_duration_ms(arg, &ms) != 0 || ms < min_ms)
        usage_error("%s: '%s' is not a duration of at least %" PRIu64 " ms (e.g. 5s, 500ms, 2m)",
                    opt, arg, min_ms);
    return ms;
}

static unsigned number_opt(const char *opt, const char *arg, unsigned min, unsigned max)
{
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(arg, &end, 10);
    if (end == arg || *end != '\0' || errno != 0 || v < min || v > max || arg[0] == '-')
        usage_error("%s: '%s' is not a whole number %u..%u", opt, arg, min, max);
    return (unsigned)v;
}

static double rate_opt(const char *opt, const char *arg)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(arg, &end);
    if (end == arg || *end != '\0' || errno != 0 || !(v >= 0) || v > 60000)
        usage_error("%s: '%s' is not a rate 0..60000 per minute", opt, arg);
    return v;
}

static void parse_hosts(struct options *o, const char *arg)
{
    char buf[256], *save = NULL, *tok;
    if (strlen(arg) >= sizeof buf)
        usage_error("--hosts: '%s' is too long", arg);
    strcpy(buf, arg);
    o->n_hosts = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_hosts == MAX_HOSTS_LISTED)
            usage_error("--hosts: '%s': at most %d counts", arg, MAX_HOSTS_LISTED);
        o->hosts[o->n_hosts++] = number_opt("--hosts", tok, 1, 100000);
    }
    if (o->n_hosts == 0)
        usage_error("--hosts: '%s' names no count", arg);
}

static const char usage_text[] =
    "usage: fleet_sim [options]\n"
    "  --redis ADDR          the Redis to load: HOST:PORT, unix:/PATH or /PATH\n"
    "  --redis-server PATH   start this redis-server on a free loopback port (and\n"
    "                        a unix socket in a temporary directory) and stop it\n"
    "                        after; the default when --redis is not given is\n"
    "                        /usr/bin/redis-server\n"
    "  --hosts LIST          host counts, one run each (default 10,1000,10000)\n"
    "  --breakers B          breakers per host (default 100)\n"
    "  --heartbeat DUR       the agents' heartbeat (default 5s)\n"
    "  --seconds DUR         the measured window, after the warm-up (default 10s)\n"
    "  --warmup DUR          before the window (default: one heartbeat)\n"
    "  --transitions R       breaker transitions per host per minute (default 1)\n"
    "  --commands R          fleet commands issued per minute (default 0)\n"
    "  --block DUR           the readers' XREAD BLOCK timeout (default 250ms, the\n"
    "                        agent's)\n"
    "  --trip-breakers N     breakers a host with fleet_open_hosts set: each heartbeat\n"
    "                        counts the live hosts and their open hosts (default 0)\n"
    "  --readers N           command-reader connections (default: one per host)\n"
    "  --connections N       pipelined writer connections (default 32)\n"
    "  --acks N              ack hashes whose memory is measured (default 10000)\n"
    "  --fleet NAME          the fleet's name in the keys (default sim)\n"
    "  --check               after each run, check the keys against the schema\n"
    "exit: 0 done; 1 Redis failed or --check found a wrong key; 2 usage;\n"
    "      77 the redis-server to start is not installed\n";

static void parse_options(struct options *o, int argc, char **argv)
{
    enum {
        O_REDIS = 256,
        O_SERVER,
        O_HOSTS,
        O_BREAKERS,
        O_HEARTBEAT,
        O_SECONDS,
        O_WARMUP,
        O_TRANSITIONS,
        O_COMMANDS,
        O_BLOCK,
        O_TRIP,
        O_READERS,
        O_CONNECTIONS,
        O_ACKS,
        O_FLEET,
        O_CHECK,
        O_HELP
    };
    static const struct option longopts[] = {
        {"redis", required_argument, NULL, O_REDIS},
        {"redis-server", required_argument, NULL, O_SERVER},
        {"hosts", required_argument, NULL, O_HOSTS},
        {"breakers", required_argument, NULL, O_BREAKERS},
        {"heartbeat", required_argument, NULL, O_HEARTBEAT},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"transitions", required_argument, NULL, O_TRANSITIONS},
        {"commands", required_argument, NULL, O_COMMANDS},
        {"block", required_argument, NULL, O_BLOCK},
        {"trip-breakers", required_argument, NULL, O_TRIP},
        {"readers", required_argument, NULL, O_READERS},
        {"connections", required_argument, NULL, O_CONNECTIONS},
        {"acks", required_argument, NULL, O_ACKS},
        {"fleet", required_argument, NULL, O_FLEET},
        {"check", no_argument, NULL, O_CHECK},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof *o);
    parse_hosts(o, "10,1000,10000");
    o->breakers = 100;
    o->heartbeat_ms = 5000;
    o->seconds_ms = 10000;
    o->warmup_ms = -1;
    o->block_ms = AGENT_BLOCK_MS;
    o->transitions_per_min = 1;
    o->readers = -1;
    o->connections = 32;
    o->acks = 10000;
    o->fleet = "sim";
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case O_REDIS:
            o->redis = optarg;
            break;
        case O_SERVER:
            o->redis_server = optarg;
            break;
        case O_HOSTS:
            parse_hosts(o, optarg);
            break;
        case O_BREAKERS:
            o->breakers = number_opt("--breakers", optarg, 1, 10000);
            break;
        case O_HEARTBEAT:
            o->heartbeat_ms = duration_opt("--heartbeat", optarg, 100);
            break;
        case O_SECONDS:
            o->seconds_ms = duration_opt("--seconds", optarg, 100);
            break;
        case O_WARMUP:
            o->warmup_ms = (int64_t)duration_opt("--warmup", optarg, 0);
            break;
        case O_TRANSITIONS:
            o->transitions_per_min = rate_opt("--transitions", optarg);
            break;
        case O_COMMANDS:
            o->commands_per_min = rate_opt("--commands", optarg);
            break;
        case O_BLOCK:
            o->block_ms = duration_opt("--block", optarg, 1);
            break;
        case O_TRIP:
            o->trip_breakers = number_opt("--trip-breakers", optarg, 0, 10000);
            break;
        case O_READERS:
            o->readers = number_opt("--readers", optarg, 0, 100000);
            break;
        case O_CONNECTIONS:
            o->connections = number_opt("--connections", optarg, 1, 64);
            break;
        case O_ACKS:
            o->acks = number_opt("--acks", optarg, 0, 1000000);
            break;
        case O_FLEET:
            o->fleet = optarg;
            if (strlen(optarg) < 1 || strlen(optarg) > 64 ||
                strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789_.-") != strlen(optarg))
                usage_error("--fleet: '%s' is not [A-Za-z0-9_.-]{1,64}", optarg);
            break;
        case O_CHECK:
            o->check = 1;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            exit(0);
        default:
            usage_error("unknown option or missing argument");
        }
    }
    if (optind < argc)
        usage_error("'%s': no arguments besides the options", argv[optind]);
    if (o->redis && o->redis_server)
        usage_error("--redis and --redis-server: one or the other");
    if (!o->redis && !o->redis_server)
        o->redis_server = "/usr/bin/redis-server";
    if (o->warmup_ms < 0)
        o->warmup_ms = (int64_t)o->heartbeat_ms;
    if (o->trip_breakers > o->breakers)
        usage_error("--trip-breakers %u: more than the %u breakers", o->trip_breakers, o->breakers);
}

/* ---- Redis: connecting, a started server, INFO ---- */

static redisContext *connect_addr(const char *addr)
{
    redisContext *c;
    const char *colon;
    if (strncmp(addr, "unix:", 5) == 0)
        c = redisConnectUnix(addr + 5);
    else if (addr[0] == '/')
        c = redisConnectUnix(addr);
    else if ((colon = strrchr(addr, ':')) != NULL && colon != addr) {
        char host[256];
        size_t n = (size_t)(colon - addr);
        if (n >= sizeof host)
            die("--redis: '%s': the host is too long", addr);
        memcpy(host, addr, n);
        host[n] = '\0';
        c = redisConnect(host, atoi(colon + 1));
    } else
        die("--redis: '%s' is not HOST:PORT, unix:/PATH or /PATH", addr);
    if (c == NULL)
        die("%s: out of memory", addr);
    if (c->err)
        die("%s: cannot connect: %s", addr, c->errstr);
    return c;
}

static redisReply *command(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        die("redis: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        die("redis: %s: %s", fmt, r->str);
    return r;
}

struct server {
    pid_t pid;
    char dir[64];
    char addr[96];
};

static int free_loopback_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts `path` on a free loopback port with no persistence; waits until
   it answers PING. maxclients leaves room for every reader. */
static void server_start(struct server *s, const char *path, unsigned maxclients)
{
    char port[16], sock[128], clients[16], log[128];
    int tries;

    if (access(path, X_OK) != 0) {
        fprintf(stderr, "fleet_sim: %s: not installed (apt-get install redis-server): skipped\n",
                path);
        exit(77);
    }
    strcpy(s->dir, "/tmp/fleet-sim-XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(sock, sizeof sock, "%s/redis.sock", s->dir);
    snprintf(log, sizeof log, "%s/redis.log", s->dir);
    snprintf(clients, sizeof clients, "%u", maxclients);
    for (tries = 0; tries < 5; tries++) {
        char *argv[] = {(char *)path, "--port",       port,    "--bind",
                        "127.0.0.1",  "--unixsocket", sock,    "--save",
                        "",           "--appendonly", "no",    "--dir",
                        s->dir,       "--maxclients", clients, "--logfile",
                        log,          "--daemonize",  "no",    NULL};
        int port_number = free_loopback_port(), i;
        if (port_number < 0)
            die("no free loopback port: %s", strerror(errno));
        snprintf(port, sizeof port, "%d", port_number);
        snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", port_number);
        if ((errno = posix_spawn(&s->pid, path, NULL, NULL, argv, environ)) != 0)
            die("%s: %s", path, strerror(errno));
        for (i = 0; i < 100; i++) {
            redisContext *c = redisConnect("127.0.0.1", port_number);
            if (c && !c->err) {
                redisReply *r = redisCommand(c, "PING");
                int up = r && r->type == REDIS_REPLY_STATUS;
                freeReplyObject(r);
                redisFree(c);
                if (up)
                    return;
            }
            redisFree(c);
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
                break; /* the port was taken meanwhile: another one */
            sleep_ns(50000000ull);
        }
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    die("%s does not start (its log: %s)", path, log);
}

static void server_stop(struct server *s)
{
    char path[128];
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    snprintf(path, sizeof path, "%s/redis.log", s->dir);
    unlink(path);
    rmdir(s->dir);
}

/* The value of `key` in an INFO section's text, as a number; 0 if absent. */
static double info_value(const char *info, const char *key)
{
    size_t n = strlen(key);
    const char *p = info;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == info || p[-1] == '\n') && p[n] == ':')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return 0;
}

struct sample {
    uint64_t at_ns;
    double commands, net_in, net_out, cpu_s;
};

/* redis-server's CPU seconds: /proc/PID/stat when it runs here, else
   INFO cpu (a remote server). */
static double server_cpu_s(redisContext *c, double pid)
{
    char path[64], buf[1024], *p;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%.0f/stat", pid);
    if (pid > 0 && (f = fopen(path, "r")) != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        if ((p = strrchr(buf, ')')) != NULL) {
            unsigned long long utime, stime;
            /* After "pid (comm)": state is field 3; utime 14, stime 15. */
            if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                       &stime) == 2)
                return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
        }
    }
    {
        redisReply *r = command(c, "INFO cpu");
        double s = info_value(r->str, "used_cpu_sys") + info_value(r->str, "used_cpu_user");
        freeReplyObject(r);
        return s;
    }
}

static void take_sample(redisContext *c, double pid, struct sample *s)
{
    redisReply *r = command(c, "INFO stats");
    s->at_ns = mono_ns();
    s->commands = info_value(r->str, "total_commands_processed");
    s->net_in = info_value(r->str, "total_net_input_bytes");
    s->net_out = info_value(r->str, "total_net_output_bytes");
    freeReplyObject(r);
    s->cpu_s = server_cpu_s(c, pid);
}

/* ---- The writers: heartbeats and transitions ---- */

static void breaker_name(char *buf, size_t size, unsigned b)
{
    snprintf(buf, size, "breaker-%03u", b);
}

/* Appends host h's whole publication (MULTI .. EXEC); returns the number
   of replies it will get. Scratch space: `values` (B JSON), argv. */
static unsigned append_publish(struct writer *w, struct host *h, unsigned index, char *values,
                               const char **argv, size_t *argvlen)
{
    const struct options *o = w->sim->o;
    char key[KEY_MAX], open_key[KEY_MAX], score[32], pexpire[24];
    uint64_t now = wall_ms(), ttl = 3 * o->heartbeat_ms;
    unsigned b, n = 2, replies = 0;
    char *v = values;

    snprintf(key, sizeof key, "cbshm:{%s}:host:%s", o->fleet, h->id);
    snprintf(score, sizeof score, "%" PRIu64, now + ttl);
    snprintf(pexpire, sizeof pexpire, "%" PRIu64, ttl);
    redisAppendCommand(w->c, "MULTI");
    redisAppendCommand(w->c, "DEL %s", key);
    replies += 2;
    argv[0] = "HSET";
    argv[1] = key;
    argvlen[0] = 4;
    argvlen[1] = strlen(key);
    for (b = 0; b < o->breakers; b++) {
        int open = (int)b == h->open_breaker;
        uint64_t seed = (uint64_t)index * 7919u + b * 104729u;
        breaker_name(v, NAME_BUF, b);
        argv[n] = v;
        argvlen[n++] = strlen(v);
        v += NAME_BUF;
        argvlen[n] = (size_t)snprintf(
            v, JSON_MAX,
            "{\"state\":\"%s\",\"mode\":\"normal\",\"mode_cause\":\"operator\",\"trips\":%u,"
            "\"failures\":%" PRIu64 ",\"successes\":%" PRIu64 ",\"rejections\":%" PRIu64
            ",\"since\":%" PRIu64 "}",
            open ? "open" : "closed", open ? h->trips : (unsigned)(seed % 7),
            seed % 9973 + h->beats, seed % 9999991 + h->beats * 250,
            open ? seed % 997 + h->beats * 40 : seed % 997,
            open ? h->since_ms : h->since_ms - seed % 86400000);
        argv[n] = v;
        n++;
        v += JSON_MAX;
    }
    argv[n] = ".agent";
    argvlen[n++] = 6;
    argvlen[n] = (size_t)snprintf(v, JSON_MAX,
                                  "{\"pid\":%u,\"heartbeat_ms\":%" PRIu64 ",\"time\":%" PRIu64
                                  ",\"connected_since\":%" PRIu64 ",\"applied\":\"0-0\"}",
                                  10000 + index, o->heartbeat_ms, now, h->since_ms);
    argv[n] = v;
    n++;
    redisAppendCommandArgv(w->c, (int)n, argv, argvlen);
    redisAppendCommand(w->c, "PEXPIRE %s %s", key, pexpire);
    redisAppendCommand(w->c, "ZADD %s %s %s", w->sim->key_hosts, score, h->id);
    replies += 3;
    if (h->open_breaker >= 0) {
        char name[NAME_BUF];
        breaker_name(name, sizeof name, (unsigned)h->open_breaker);
        snprintf(open_key, sizeof open_key, "cbshm:{%s}:open:%s", o->fleet, name);
        redisAppendCommand(w->c, "ZADD %s %s %s", open_key, score, h->id);
        replies++;
    }
    if (h->closed_breaker >= 0) {
        char name[NAME_BUF];
        breaker_name(name, sizeof name, (unsigned)h->closed_breaker);
        snprintf(open_key, sizeof open_key, "cbshm:{%s}:open:%s", o->fleet, name);
        redisAppendCommand(w->c, "ZREM %s %s", open_key, h->id);
        h->closed_breaker = -1;
        replies++;
    }
    redisAppendCommand(w->c, "EXEC");
    h->beats++;
    return replies + 1;
}

/* The fleet trip's look after a publication, as the agent takes it: the
   live hosts, and the live hosts open, of each breaker that has
   fleet_open_hosts (the first trip_breakers). Returns the replies. */
static unsigned append_trip_counts(struct writer *w)
{
    const struct options *o = w->sim->o;
    char now[24], name[NAME_BUF];
    unsigned b;

    if (o->trip_breakers == 0)
        return 0;
    snprintf(now, sizeof now, "%" PRIu64, wall_ms());
    redisAppendCommand(w->c, "ZCOUNT %s %s +inf", w->sim->key_hosts, now);
    for (b = 0; b < o->trip_breakers; b++) {
        breaker_name(name, sizeof name, b);
        redisAppendCommand(w->c, "ZCOUNT cbshm:{%s}:open:%s %s +inf", o->fleet, name, now);
    }
    return 1 + o->trip_breakers;
}

/* A transition on host h: its open breaker closes, or one opens. */
static void append_event(struct writer *w, struct host *h)
{
    const struct options *o = w->sim->o;
    char name[NAME_BUF], time_ms[24], seq[24];
    const char *from = "closed", *to = "open", *cause = "failures";
    uint64_t now = wall_ms();

    if (h->open_breaker >= 0) {
        h->closed_breaker = h->open_breaker;
        breaker_name(name, sizeof name, (unsigned)h->open_breaker);
        h->open_breaker = -1;
        from = "open";
        to = "closed";
        cause = "probes_ok";
    } else {
        h->open_breaker = (int)(xorshift(&w->rng) % o->breakers);
        if (h->open_breaker == h->closed_breaker)
            h->closed_breaker = -1;
        breaker_name(name, sizeof name, (unsigned)h->open_breaker);
        h->trips++;
    }
    h->since_ms = now;
    snprintf(time_ms, sizeof time_ms, "%" PRIu64, now);
    snprintf(seq, sizeof seq, "%u", h->trips * 2u + (h->open_breaker < 0));
    redisAppendCommand(w->c,
                       "XADD %s MAXLEN ~ " EVENTS_MAXLEN
                       " * host %s breaker %s kind state from %s to %s cause %s time %s seq %s",
                       w->sim->key_events, h->id, name, from, to, cause, time_ms, seq);
}

enum pending_kind { HEARTBEAT, EVENT, CHANGE, TRIP };
struct pending {
    unsigned replies;
    enum pending_kind kind; /* CHANGE: the publication after an event; TRIP: its counts */
    int in_window;
};

static void note_error(struct writer *w, const char *what)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "%s", what);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct sim *s = w->sim;
    const struct options *o = s->o;
    size_t argc_max = 2 * (size_t)o->breakers + 4;
    char *values = malloc((size_t)o->breakers * (NAME_BUF + JSON_MAX) + JSON_MAX);
    const char **argv = malloc(argc_max * sizeof *argv);
    size_t *argvlen = malloc(argc_max * sizeof *argvlen);
    /* A heartbeat and its trip counts per host, and a few transitions. */
    size_t pend_cap = 2 * (size_t)w->count + 64;
    struct pending *pend = malloc(pend_cap * sizeof *pend);
    double per_ns = o->transitions_per_min / 60e9 * w->count, owed = 0;
    uint64_t last = mono_ns(), hb_ns = o->heartbeat_ms * 1000000ull;
    unsigned cursor = 0;

    if (!values || !argv || !argvlen || !pend)
        die("out of memory");
    for (;;) {
        uint64_t now = mono_ns(), sent;
        size_t n_pend = 0, i;
        unsigned beats;
        int in_window = now >= s->window_start_ns && now < s->window_end_ns;
        if (now >= s->window_end_ns)
            break;
        for (beats = 0; beats < w->count; beats++) {
            struct host *h = &s->hosts[w->first + cursor * s->stride];
            if (h->next_due_ns > now)
                break;
            pend[n_pend++] = (struct pending){
                append_publish(w, h, w->first + cursor * s->stride, values, argv, argvlen),
                HEARTBEAT, in_window};
            if (o->trip_breakers > 0)
                pend[n_pend++] = (struct pending){append_trip_counts(w), TRIP, in_window};
            h->next_due_ns += hb_ns;
            cursor = (cursor + 1) % w->count;
        }
        /* The whole transitions owed now, and the fraction left by chance:
           a writer of one host at 1 a minute would otherwise wait a whole
           minute for its first. */
        owed += per_ns * (double)(now - last);
        last = now;
        if (owed < 1.0 && (double)(xorshift(&w->rng) >> 11) / 9007199254740992.0 < owed)
            owed = 1.0;
        else if (owed < 1.0)
            owed = 0;
        while (owed >= 1.0 && n_pend + 3 <= pend_cap) {
            unsigned k = (unsigned)(xorshift(&w->rng) % w->count);
            struct host *h = &s->hosts[w->first + k * s->stride];
            owed -= 1.0;
            append_event(w, h);
            pend[n_pend++] = (struct pending){1, EVENT, in_window};
            pend[n_pend++] = (struct pending){
                append_publish(w, h, w->first + k * s->stride, values, argv, argvlen), CHANGE,
                in_window};
            if (o->trip_breakers > 0)
                pend[n_pend++] = (struct pending){append_trip_counts(w), TRIP, in_window};
        }
        if (n_pend == 0) {
            uint64_t next = s->hosts[w->first + cursor * s->stride].next_due_ns;
            sleep_ns(next > now && next - now < TICK_NS ? next - now : TICK_NS);
            continue;
        }
        sent = mono_ns();
        for (i = 0; i < n_pend; i++) {
            unsigned k;
            for (k = 0; k < pend[i].replies; k++) {
                redisReply *r;
                if (redisGetReply(w->c, (void **)&r) != REDIS_OK)
                    die("redis: %s", w->c->errstr);
                if (r->type == REDIS_REPLY_ERROR)
                    note_error(w, r->str);
                else if (k + 1 == pend[i].replies &&
                         (pend[i].kind == HEARTBEAT || pend[i].kind == CHANGE) &&
                         r->type != REDIS_REPLY_ARRAY)
                    note_error(w, "EXEC was refused (nil)");
                freeReplyObject(r);
            }
            if (!pend[i].in_window)
                continue;
            if (pend[i].kind == EVENT)
                w->events++;
            if (pend[i].kind == HEARTBEAT) {
                w->heartbeats++;
                if (w->n_latency < w->cap_latency)
                    w->latency_us[w->n_latency++] = (uint32_t)((mono_ns() - sent) / 1000u);
            }
        }
        sleep_ns(TICK_NS);
    }
    free(values);
    free(argv);
    free(argvlen);
    free(pend);
    return NULL;
}

/* ---- The readers: one connection per host, blocked in XREAD ---- */

static void reader_send_xread(struct sim *s, struct reader *r, uint64_t block_ms)
{
    redisAppendCommand(r->c, "XREAD COUNT " AGENT_COUNT " BLOCK %" PRIu64 " STREAMS %s %s",
                       block_ms, s->key_commands, r->last_id);
}

static void reader_flush(struct reader *r)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(r->c, &done) != REDIS_OK)
            die("redis (reader): %s", r->c->errstr);
}

/* A command arrived: ack every entry as the agent does, then read on. */
static void reader_got(struct sim *s, struct reader *r, redisReply *reply, int in_window)
{
    size_t i;
    redisReply *entries;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements < 2)
        return;
    entries = reply->element[0]->element[1];
    for (i = 0; i < entries->elements; i++) {
        redisReply *e = entries->element[i];
        char key[KEY_MAX], value[40];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        snprintf(r->last_id, sizeof r->last_id, "%s", e->element[0]->str);
        snprintf(key, sizeof key, "cbshm:{%s}:ack:%s", s->o->fleet, r->last_id);
        snprintf(value, sizeof value, "ok %" PRIu64, wall_ms());
        redisAppendCommand(r->c, "HSET %s %s %s", key, s->hosts[r->host].id, value);
        redisAppendCommand(r->c, "PEXPIRE %s " ACK_TTL_MS, key);
        r->pending_acks += 2;
        if (in_window) {
            s->deliveries++;
            s->reader_acks++;
        }
    }
}

static void *reader_main(void *arg)
{
    struct sim *s = arg;
    int ep = epoll_create1(0);
    struct epoll_event evs[256];
    unsigned i;
    uint64_t rng = 0x9e3779b97f4a7c15ull;

    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    for (i = 0; i < s->n_readers; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        /* The first block ends at a random point, so the readers' timeouts
           spread over the period as the agents' do. */
        reader_send_xread(s, &s->readers[i], 1 + xorshift(&rng) % s->o->block_ms);
        reader_flush(&s->readers[i]);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s->readers[i].c->fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
    }
    while (mono_ns() < s->window_end_ns) {
        int n = epoll_wait(ep, evs, 256, 20), k;
        uint64_t now = mono_ns();
        int in_window = now >= s->window_start_ns && now < s->window_end_ns;
        for (k = 0; k < n; k++) {
            struct reader *r = &s->readers[evs[k].data.u32];
            void *reply;
            if (redisBufferRead(r->c) != REDIS_OK)
                die("redis (reader): %s", r->c->errstr);
            for (;;) {
                if (redisGetReplyFromReader(r->c, &reply) != REDIS_OK)
                    die("redis (reader): %s", r->c->errstr);
                if (reply == NULL)
                    break;
                if (((redisReply *)reply)->type == REDIS_REPLY_ERROR && in_window)
                    s->reader_errors++;
                if (r->pending_acks > 0) {
                    r->pending_acks--;
                } else {
                    if (in_window)
                        s->reads++;
                    reader_got(s, r, reply, in_window);
                    reader_send_xread(s, r, s->o->block_ms);
                    reader_flush(r);
                }
                freeReplyObject(reply);
            }
        }
    }
    close(ep);
    return NULL;
}

/* ---- One run of H hosts ---- */

struct result {
    unsigned hosts, writers, readers;
    double seconds;
    double heartbeats_s, events_s, reads_s, deliveries_s, commands_s, inst_ops;
    double net_in_s, net_out_s, cpu;
    double used_memory, used_dataset, connected_clients, blocked_clients;
    double exec_p50_ms, exec_p99_ms, exec_max_ms;
    unsigned ack_hashes;
    double ack_bytes_per_hash;
    double sim_cpu;
    uint64_t errors;
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double process_cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

/* The memory of `acks` ack hashes of `hosts` fields each, measured on at
   most ACK_FIELDS_MAX fields; returns bytes per hash, *measured the count. */
static double measure_acks(redisContext *c, const struct options *o, const struct sim *s,
                           unsigned *measured)
{
    uint64_t n = o->acks, i;
    const char **argv;
    size_t *argvlen;
    char value[40], key[KEY_MAX];
    double before, after;
    redisReply *r;
    unsigned h;

    if (n == 0) {
        *measured = 0;
        return 0;
    }
    if (n * s->n_hosts > ACK_FIELDS_MAX)
        n = ACK_FIELDS_MAX / s->n_hosts > 0 ? ACK_FIELDS_MAX / s->n_hosts : 1;
    argv = malloc((2 * (size_t)s->n_hosts + 2) * sizeof *argv);
    argvlen = malloc((2 * (size_t)s->n_hosts + 2) * sizeof *argvlen);
    if (!argv || !argvlen)
        die("out of memory");
    r = command(c, "INFO memory");
    before = info_value(r->str, "used_memory");
    freeReplyObject(r);
    snprintf(value, sizeof value, "ok %" PRIu64, wall_ms());
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof key, "cbshm:{%s}:ack:%" PRIu64 "-0", o->fleet,
                 (uint64_t)1764600000000ull + i);
        argv[0] = "HSET";
        argvlen[0] = 4;
        argv[1] = key;
        argvlen[1] = strlen(key);
        for (h = 0; h < s->n_hosts; h++) {
            argv[2 + 2 * h] = s->hosts[h].id;
            argvlen[2 + 2 * h] = strlen(s->hosts[h].id);
            argv[3 + 2 * h] = value;
            argvlen[3 + 2 * h] = strlen(value);
        }
        redisAppendCommandArgv(c, 2 + 2 * (int)s->n_hosts, argv, argvlen);
        redisAppendCommand(c, "PEXPIRE %s " ACK_TTL_MS, key);
        if (i % 64 == 63 || i + 1 == n) {
            uint64_t k, batch = i % 64 + 1;
            for (k = 0; k < 2 * batch; k++) {
                if (redisGetReply(c, (void **)&r) != REDIS_OK)
                    die("redis: %s", c->errstr);
                if (r->type == REDIS_REPLY_ERROR)
                    die("redis: ack HSET: %s", r->str);
                freeReplyObject(r);
            }
        }
    }
    r = command(c, "INFO memory");
    after = info_value(r->str, "used_memory");
    freeReplyObject(r);
    free(argv);
    free(argvlen);
    *measured = (unsigned)n;
    return (after - before) / (double)n;
}

/* --check: the keys say what the schema says. Returns the problems found. */
static int check_keys(redisContext *c, const struct sim *s)
{
    const struct options *o = s->o;
    static const char *const fields[] = {
        "\"state\":",    "\"mode\":",      "\"mode_cause\":", "\"trips\":",
        "\"failures\":", "\"successes\":", "\"rejections\":", "\"since\":"};
    int bad = 0;
    unsigned h, open_hosts = 0, open_members = 0, b;
    uint64_t now = wall_ms();
    redisReply *r;

    r = command(c, "ZCOUNT %s %" PRIu64 " +inf", s->key_hosts, now);
    if (r->integer != (long long)s->n_hosts) {
        fprintf(stderr, "fleet_sim: check: %s counts %lld live hosts, not %u\n", s->key_hosts,
                r->integer, s->n_hosts);
        bad++;
    }
    freeReplyObject(r);
    for (h = 0; h < s->n_hosts; h++) {
        char key[KEY_MAX], name[NAME_BUF], open_key[KEY_MAX];
        snprintf(key, sizeof key, "cbshm:{%s}:host:%s", o->fleet, s->hosts[h].id);
        r = command(c, "HLEN %s", key);
        if (r->integer != (long long)o->breakers + 1) {
            fprintf(stderr, "fleet_sim: check: %s has %lld fields, not %u\n", key, r->integer,
                    o->breakers + 1);
            bad++;
        }
        freeReplyObject(r);
        r = command(c, "PTTL %s", key);
        if (r->integer <= 0 || r->integer > (long long)(3 * o->heartbeat_ms)) {
            fprintf(stderr, "fleet_sim: check: %s expires in %lld ms, not within 3 heartbeats\n",
                    key, r->integer);
            bad++;
        }
        freeReplyObject(r);
        r = command(c, "HGET %s .agent", key);
        if (r->type != REDIS_REPLY_STRING || !strstr(r->str, "\"heartbeat_ms\":")) {
            fprintf(stderr, "fleet_sim: check: %s has no .agent\n", key);
            bad++;
        }
        freeReplyObject(r);
        breaker_name(name, sizeof name, 0);
        r = command(c, "HGET %s %s", key, name);
        for (b = 0; b < sizeof fields / sizeof fields[0]; b++)
            if (r->type != REDIS_REPLY_STRING || !strstr(r->str, fields[b])) {
                fprintf(stderr, "fleet_sim: check: %s %s lacks %s\n", key, name, fields[b]);
                bad++;
            }
        freeReplyObject(r);
        if (s->hosts[h].open_breaker >= 0) {
            open_hosts++;
            breaker_name(name, sizeof name, (unsigned)s->hosts[h].open_breaker);
            snprintf(open_key, sizeof open_key, "cbshm:{%s}:open:%s", o->fleet, name);
            r = command(c, "ZSCORE %s %s", open_key, s->hosts[h].id);
            if (r->type != REDIS_REPLY_STRING) {
                fprintf(stderr, "fleet_sim: check: %s is open but not in %s\n", s->hosts[h].id,
                        open_key);
                bad++;
            }
            freeReplyObject(r);
        }
    }
    for (b = 0; b < o->breakers; b++) {
        char name[NAME_BUF];
        breaker_name(name, sizeof name, b);
        r = command(c, "ZCARD cbshm:{%s}:open:%s", o->fleet, name);
        open_members += (unsigned)r->integer;
        freeReplyObject(r);
    }
    if (open_members != open_hosts) {
        fprintf(stderr, "fleet_sim: check: the open:<breaker> sets hold %u hosts, %u are open\n",
                open_members, open_hosts);
        bad++;
    }
    /* The first command, issued before the window: every host has acked. */
    r = command(c, "XRANGE %s - + COUNT 1", s->key_commands);
    if (o->commands_per_min > 0 && s->n_readers > 0) {
        unsigned want = s->n_readers < s->n_hosts ? s->n_readers : s->n_hosts;
        if (r->elements != 1 || r->element[0]->elements < 1) {
            fprintf(stderr, "fleet_sim: check: %s is empty\n", s->key_commands);
            bad++;
        } else {
            redisReply *acks =
                command(c, "HLEN cbshm:{%s}:ack:%s", o->fleet, r->element[0]->element[0]->str);
            if (acks->integer != (long long)want) {
                fprintf(stderr, "fleet_sim: check: command %s has %lld acks, not %u\n",
                        r->element[0]->element[0]->str, acks->integer, want);
                bad++;
            }
            freeReplyObject(acks);
        }
    }
    freeReplyObject(r);
    if (o->transitions_per_min > 0) {
        r = command(c, "XLEN %s", s->key_events);
        if (r->integer < 1) {
            fprintf(stderr, "fleet_sim: check: %s is empty after transitions\n", s->key_events);
            bad++;
        }
        freeReplyObject(r);
    }
    return bad;
}

static void run(const struct options *o, const char *addr, unsigned n_hosts, struct result *res,
                int *check_failures)
{
    struct sim s = {.o = o, .n_hosts = n_hosts};
    struct writer *w = calloc(o->connections, sizeof *w);
    redisContext *ctl = connect_addr(addr);
    struct sample a, b;
    double pid, sim_cpu0;
    redisReply *r;
    uint64_t hb_ns = o->heartbeat_ms * 1000000ull, next_command_ns, i;
    unsigned k, writers = o->connections < n_hosts ? o->connections : n_hosts;
    s.stride = writers;
    uint32_t *all;
    size_t n_all = 0;

    if (!w)
        die("out of memory");
    memset(res, 0, sizeof *res);
    snprintf(s.key_hosts, sizeof s.key_hosts, "cbshm:{%s}:hosts", o->fleet);
    snprintf(s.key_events, sizeof s.key_events, "cbshm:{%s}:events", o->fleet);
    snprintf(s.key_commands, sizeof s.key_commands, "cbshm:{%s}:commands", o->fleet);
    freeReplyObject(command(ctl, "FLUSHALL"));
    r = command(ctl, "INFO server");
    pid = info_value(r->str, "process_id");
    freeReplyObject(r);

    s.hosts = calloc(n_hosts, sizeof *s.hosts);
    s.n_readers = o->readers < 0 ? n_hosts : (unsigned)o->readers;
    s.readers = calloc(s.n_readers + 1, sizeof *s.readers);
    if (!s.hosts || !s.readers)
        die("out of memory");
    for (k = 0; k < s.n_readers; k++) {
        s.readers[k].c = connect_addr(addr);
        s.readers[k].host = k % n_hosts;
        /* The stream is new: from its start, so no command issued before
           a reader's first XREAD goes unseen. */
        strcpy(s.readers[k].last_id, "0-0");
    }
    s.start_ns = mono_ns();
    s.window_start_ns = s.start_ns + (uint64_t)o->warmup_ms * 1000000ull;
    s.window_end_ns = s.window_start_ns + o->seconds_ms * 1000000ull;
    for (i = 0; i < n_hosts; i++) {
        struct host *h = &s.hosts[i];
        snprintf(h->id, sizeof h->id, "host-%05" PRIu64, i);
        h->next_due_ns = s.start_ns + hb_ns * i / n_hosts;
        h->open_breaker = h->closed_breaker = -1;
        h->since_ms = wall_ms() - 3600000ull;
    }
    for (k = 0; k < writers; k++) {
        w[k].sim = &s;
        w[k].c = connect_addr(addr);
        w[k].first = k;
        w[k].count = (n_hosts - k + writers - 1) / writers;
        w[k].rng = 0x2545f4914f6cdd1dull * (k + 1);
        w[k].cap_latency =
            (size_t)((double)w[k].count * (double)o->seconds_ms / (double)o->heartbeat_ms) + 1024;
        w[k].latency_us = malloc(w[k].cap_latency * sizeof *w[k].latency_us);
        if (!w[k].latency_us)
            die("out of memory");
    }
    if (s.n_readers > 0 && pthread_create(&s.reader_thread, NULL, reader_main, &s) != 0)
        die("pthread_create failed");
    for (k = 0; k < writers; k++)
        if (pthread_create(&w[k].thread, NULL, writer_main, &w[k]) != 0)
            die("pthread_create failed");

    /* Commands, at their rate, through the control connection. */
    next_command_ns = o->commands_per_min > 0 ? s.start_ns : UINT64_MAX;
    while (mono_ns() < s.window_start_ns) {
        sleep_ns(20000000ull);
    }
    take_sample(ctl, pid, &a);
    sim_cpu0 = process_cpu_s();
    for (;;) {
        uint64_t now = mono_ns();
        if (now >= s.window_end_ns)
            break;
        if (now >= next_command_ns) {
            char t[24];
            snprintf(t, sizeof t, "%" PRIu64, wall_ms());
            freeReplyObject(command(ctl,
                                    "XADD %s MAXLEN ~ 10000 * op open breaker breaker-000 for_ms "
                                    "60000 hosts * by sim@fleet_sim time %s",
                                    s.key_commands, t));
            next_command_ns = now + (uint64_t)(60e9 / o->commands_per_min);
        }
        if (now + 1000000000ull >= s.window_end_ns && res->inst_ops == 0) {
            r = command(ctl, "INFO stats");
            res->inst_ops = info_value(r->str, "instantaneous_ops_per_sec");
            freeReplyObject(r);
        }
        sleep_ns(10000000ull);
    }
    take_sample(ctl, pid, &b);
    res->sim_cpu = (process_cpu_s() - sim_cpu0);
    r = command(ctl, "INFO memory");
    res->used_memory = info_value(r->str, "used_memory");
    res->used_dataset = info_value(r->str, "used_memory_dataset");
    freeReplyObject(r);
    r = command(ctl, "INFO clients");
    res->connected_clients = info_value(r->str, "connected_clients");
    res->blocked_clients = info_value(r->str, "blocked_clients");
    freeReplyObject(r);
    for (k = 0; k < writers; k++)
        pthread_join(w[k].thread, NULL);
    if (s.n_readers > 0)
        pthread_join(s.reader_thread, NULL);

    res->hosts = n_hosts;
    res->writers = writers;
    res->readers = s.n_readers;
    res->seconds = (double)(b.at_ns - a.at_ns) / 1e9;
    res->commands_s = (b.commands - a.commands) / res->seconds;
    res->net_in_s = (b.net_in - a.net_in) / res->seconds;
    res->net_out_s = (b.net_out - a.net_out) / res->seconds;
    res->cpu = (b.cpu_s - a.cpu_s) / res->seconds;
    res->sim_cpu /= res->seconds;
    res->reads_s = (double)s.reads / ((double)o->seconds_ms / 1000.0);
    res->deliveries_s = (double)s.deliveries / ((double)o->seconds_ms / 1000.0);
    for (k = 0; k < writers; k++) {
        res->heartbeats_s += (double)w[k].heartbeats;
        res->events_s += (double)w[k].events;
        res->errors += w[k].errors;
        n_all += w[k].n_latency;
        if (w[k].errors)
            fprintf(stderr, "fleet_sim: redis refused %" PRIu64 " replies; the first: %s\n",
                    w[k].errors, w[k].first_error);
    }
    res->errors += s.reader_errors;
    res->heartbeats_s /= (double)o->seconds_ms / 1000.0;
    res->events_s /= (double)o->seconds_ms / 1000.0;
    all = malloc((n_all + 1) * sizeof *all);
    if (!all)
        die("out of memory");
    n_all = 0;
    for (k = 0; k < writers; k++) {
        memcpy(all + n_all, w[k].latency_us, w[k].n_latency * sizeof *all);
        n_all += w[k].n_latency;
    }
    if (n_all > 0) {
        qsort(all, n_all, sizeof *all, cmp_u32);
        res->exec_p50_ms = all[n_all / 2] / 1000.0;
        res->exec_p99_ms = all[n_all * 99 / 100] / 1000.0;
        res->exec_max_ms = all[n_all - 1] / 1000.0;
    }
    free(all);
    {
        double expected = (double)n_hosts * 1000.0 / (double)o->heartbeat_ms;
        if (res->heartbeats_s < 0.95 * expected)
            fprintf(stderr,
                    "fleet_sim: %u hosts: %.1f heartbeats/s, not the %.1f the fleet makes: the "
                    "simulator fell behind\n",
                    n_hosts, res->heartbeats_s, expected);
    }
    if (o->check)
        *check_failures += check_keys(ctl, &s);
    res->ack_bytes_per_hash = measure_acks(ctl, o, &s, &res->ack_hashes);

    for (k = 0; k < s.n_readers; k++)
        redisFree(s.readers[k].c);
    for (k = 0; k < writers; k++) {
        redisFree(w[k].c);
        free(w[k].latency_us);
    }
    free(s.readers);
    free(s.hosts);
    free(w);
    redisFree(ctl);
}

static void print_line(const struct options *o, const struct result *r)
{
    printf("fleet_sim hosts=%u breakers=%u heartbeat_ms=%" PRIu64 " seconds=%.1f "
           "transitions_per_host_min=%g block_ms=%" PRIu64
           " trip_breakers=%u writer_connections=%u reader_connections=%u "
           "heartbeats_per_s=%.1f events_per_s=%.2f reads_per_s=%.1f command_deliveries_per_s=%.1f "
           "redis_commands_per_s=%.0f instantaneous_ops_per_sec=%.0f net_in_bytes_per_s=%.0f "
           "net_out_bytes_per_s=%.0f redis_cpu_per_s=%.3f used_memory=%.0f "
           "used_memory_dataset=%.0f dataset_bytes_per_host=%.0f connected_clients=%.0f "
           "blocked_clients=%.0f exec_p50_ms=%.3f exec_p99_ms=%.3f exec_max_ms=%.3f "
           "ack_hashes_measured=%u ack_bytes_per_hash=%.0f ack_memory_10000=%.0f "
           "sim_cpu_per_s=%.3f errors=%" PRIu64 "\n",
           r->hosts, o->breakers, o->heartbeat_ms, r->seconds, o->transitions_per_min, o->block_ms,
           o->trip_breakers, r->writers, r->readers, r->heartbeats_s, r->events_s, r->reads_s,
           r->deliveries_s, r->commands_s, r->inst_ops, r->net_in_s, r->net_out_s, r->cpu,
           r->used_memory, r->used_dataset, r->used_dataset / r->hosts, r->connected_clients,
           r->blocked_clients, r->exec_p50_ms, r->exec_p99_ms, r->exec_max_ms, r->ack_hashes,
           r->ack_bytes_per_hash, r->ack_bytes_per_hash * 10000.0, r->sim_cpu, r->errors);
    fflush(stdout);
}

static void print_table(const struct result *rs, int n)
{
    int i;
    printf("\n| hosts | heartbeats/s | events/s | XREADs/s | connections | Redis commands/s | "
           "net in KiB/s | net out KiB/s | redis-server CPU | used_memory MiB | dataset MiB | "
           "EXEC p50 ms | EXEC p99 ms | 10,000 acks MiB |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < n; i++) {
        const struct result *r = &rs[i];
        printf("| %u | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f%% | %.1f | %.1f | "
               "%.2f | %.2f | %.1f |\n",
               r->hosts, r->heartbeats_s, r->events_s, r->reads_s, r->connected_clients,
               r->commands_s, r->net_in_s / 1024, r->net_out_s / 1024, r->cpu * 100,
               r->used_memory / 1048576, r->used_dataset / 1048576, r->exec_p50_ms, r->exec_p99_ms,
               r->ack_bytes_per_hash * 10000.0 / 1048576);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct server server = {0};
    struct result results[MAX_HOSTS_LISTED];
    const char *addr;
    unsigned max_readers = 0;
    int i, check_failures = 0;
    struct rlimit lim;
    uint64_t errors = 0;

    parse_options(&o, argc, argv);
    for (i = 0; i < o.n_hosts; i++) {
        unsigned n = o.readers < 0 ? o.hosts[i] : (unsigned)o.readers;
        if (n > max_readers)
            max_readers = n;
    }
    /* One descriptor per reader, here and in a redis-server started here. */
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < max_readers + 256u) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
        if (lim.rlim_cur < max_readers + 256u)
            die("--readers %u needs %u open files; the limit is %llu (ulimit -n)", max_readers,
                max_readers + 256u, (unsigned long long)lim.rlim_cur);
    }
    signal(SIGPIPE, SIG_IGN);
    if (o.redis_server) {
        server_start(&server, o.redis_server,
                     max_readers + 256u > 10000 ? max_readers + 256u : 10000);
        addr = server.addr;
    } else
        addr = o.redis;
    {
        redisContext *c = connect_addr(addr);
        redisReply *r = command(c, "INFO server");
        char version[32] = "?";
        const char *p = strstr(r->str, "redis_version:");
        if (p)
            sscanf(p + 14, "%31[^\r\n]", version);
        printf("fleet_sim: redis %s at %s%s; %u breakers a host, heartbeat %" PRIu64
               " ms, %g transitions a host a minute; warm-up %" PRId64 " ms, window %" PRIu64
               " ms\n",
               version, addr, o.redis_server ? " (started here)" : "", o.breakers, o.heartbeat_ms,
               o.transitions_per_min, o.warmup_ms, o.seconds_ms);
        freeReplyObject(r);
        redisFree(c);
    }
    for (i = 0; i < o.n_hosts; i++) {
        run(&o, addr, o.hosts[i], &results[i], &check_failures);
        print_line(&o, &results[i]);
        errors += results[i].errors;
    }
    print_table(results, o.n_hosts);
    if (o.redis_server)
        server_stop(&server);
    if (check_failures > 0)
        fprintf(stderr, "fleet_sim: check: %d problems (above)\n", check_failures);
    return check_failures > 0 || errors > 0;
}
