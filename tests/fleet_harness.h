/* SPDX-License-Identifier: MIT */
/*
 * What the fleet's tests share: a real redis-server started on a free
 * loopback port (and a unix socket) in a temporary directory, stopped and
 * restarted on the same port; three simulated hosts on this machine (a
 * segment and a YAML file with a fleet: section each); 'cbctl agent'
 * children for them; and waits with deadlines instead of sleeps.
 *
 * A test program that uses it adds fleet_harness.c to its sources and links
 * hiredis (tests/CMakeLists.txt); CBCTL_PATH names the cbctl_test binary.
 */
#ifndef CBSHM_FLEET_HARNESS_H
#define CBSHM_FLEET_HARNESS_H

#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

#include "harness.h"

#define TH_REDIS_SERVER "/usr/bin/redis-server"

/* 1 when redis-server is installed. */
int th_redis_installed(void);
/* Skips the calling test (cmocka skip) with a message when it is not. */
#define TH_NEED_REDIS()                                                                      \
    do {                                                                                     \
        if (!th_redis_installed()) {                                                         \
            fprintf(stderr, "skipped: %s is not installed (apt-get install redis-server)\n", \
                    TH_REDIS_SERVER);                                                        \
            skip();                                                                          \
        }                                                                                    \
    } while (0)

/* A redis-server of the test's own. */
struct th_redis {
    int pid;           /* 0: not running */
    int port;          /* on 127.0.0.1, kept across restarts */
    char dir[128];     /* its temporary directory: socket, log, password files */
    char socket[192];  /* dir/redis.sock */
    char password[64]; /* requirepass for the default user; "" : none */
    char user[64];     /* an ACL user besides the default; "" : none */
    char user_password[64];
};

/*
 * Starts redis-server (--save '' --appendonly no) on a free loopback port
 * and r->socket, and waits until it answers PING. Before the call, set
 * r->password for requirepass and r->user / r->user_password for an ACL
 * user with every right on every key; zero the rest. Fails the test when
 * it does not come up within 10 s.
 */
void th_redis_start(struct th_redis *r);
/* SIGTERM and wait for it to exit; the directory stays. */
void th_redis_stop(struct th_redis *r);
/* Starts it again on the same port, socket and passwords (an empty data set). */
void th_redis_restart(struct th_redis *r);
/* Stops it if running and removes its directory. */
void th_redis_destroy(struct th_redis *r);
/* A connection as the default user (AUTH with r->password when set); fails
   the test when there is none. redisFree it. */
redisContext *th_redis_connect(const struct th_redis *r);
/* A command (redisCommand's format); fails the test on no reply. freeReplyObject it. */
redisReply *th_redis_cmd(redisContext *c, const char *fmt, ...);
/* The same, for commands that return an integer. */
long long th_redis_int(redisContext *c, const char *fmt, ...);

/* One simulated host: a segment and its YAML file. */
struct th_host {
    char host_id[64]; /* "<fleet>-h<i>" */
    char segment[64];
    char config[256]; /* dir/<host_id>.yaml */
    char log[256];    /* the agent's stderr: dir/<host_id>.log */
    int agent_pid;    /* 0: none running */
};

#define TH_HOSTS 3
struct th_fleet {
    char name[40]; /* the fleet: unique per test process and call */
    char dir[128]; /* a temporary directory for configs and logs */
    int n;
    struct th_host host[TH_HOSTS];
    struct th_redis *redis;
};

/*
 * n hosts (1..3) of a fresh fleet on r. Each gets its own segment applied
 * from `breakers` (YAML text from "breakers:" on, the same for all hosts)
 * and a YAML file holding segment:, those breakers and a fleet: section
 * with redis: (r's port, or its unix socket when via_socket), name:,
 * host_id:, heartbeat: `heartbeat` ("1s"), then `fleet_extra` verbatim
 * (lines such as "  user: x\n", or NULL).
 */
void th_fleet_init(struct th_fleet *f, struct th_redis *r, int n, const char *breakers,
                   const char *heartbeat, int via_socket, const char *fleet_extra);
/* Kills the agents, removes the segments, the files and the directory. */
void th_fleet_destroy(struct th_fleet *f);
/* Writes `text` to path (created or emptied) with permissions `mode`. */
void th_write_file(const char *path, const char *text, unsigned mode);

/*
 * Starts 'cbctl agent --config <host's file>' for host i, its stderr
 * appended to the host's log. env: NULL or "NAME=value" strings ended by
 * NULL, set in the child only (CBSHM_CRASH_AT=fleet.changed).
 */
void th_agent_start(struct th_fleet *f, int i, const char *const *env);
/* Sends sig to host i's agent. */
void th_agent_signal(struct th_fleet *f, int i, int sig);
/* Waits up to seconds for host i's agent to exit; returns its status as
   t_wait does (128 + signal), or -1 when it is still running. */
int th_agent_wait(struct th_fleet *f, int i, int seconds);
/* SIGKILL and reap. */
void th_agent_kill(struct th_fleet *f, int i);
/* SIGTERM, and its exit status within 10 s (fails the test if later). */
int th_agent_stop(struct th_fleet *f, int i);
/* The agent's log so far, for a failure message (NUL-terminated, cut to size). */
const char *th_agent_log(const struct th_fleet *f, int i, char *buf, size_t size);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in ms; a 10 ms nap. */
uint64_t th_now_ms(void);
uint64_t th_wall_ms(void);
void th_nap(void);

/* Polls expr every 10 ms; fails the test with the message after seconds. */
#define TH_WAIT_FOR(expr, seconds, ...)                        \
    do {                                                       \
        uint64_t th_deadline_ = th_now_ms() + (seconds)*1000u; \
        while (!(expr)) {                                      \
            if (th_now_ms() > th_deadline_)                    \
                fail_msg(__VA_ARGS__);                         \
            th_nap();                                          \
        }                                                      \
    } while (0)

/* A server on a free loopback port (into *port) that answers whatever it
   is sent with a reply of a million integers, one every 100 ms: a Redis
   that trickles its bytes. Returns its pid (SIGKILL it). */
int th_trickling_server(int *port);

/* Every agent's log on stderr, for a failure message. */
void th_fleet_dump_logs(const struct th_fleet *f);
/* TH_WAIT_FOR that shows the agents' logs before failing. */
#define TH_WAIT_FLEET(f, expr, seconds, ...)                   \
    do {                                                       \
        uint64_t th_deadline_ = th_now_ms() + (seconds)*1000u; \
        while (!(expr)) {                                      \
            if (th_now_ms() > th_deadline_) {                  \
                th_fleet_dump_logs(f);                         \
                fail_msg(__VA_ARGS__);                         \
            }                                                  \
            th_nap();                                          \
        }                                                      \
    } while (0)

#endif
