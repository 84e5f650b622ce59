/* SPDX-License-Identifier: MIT */
/*
 * What cbctl's fleet commands (agent, fleet) share about Redis: where it
 * is and how to log in (a fleet: section's redis, user and password_file),
 * the key names of the fleet's schema, stream ids, and the backoff between
 * attempts to reach it. Redis is the fleet's control plane only: nothing
 * here is on a worker's call path.
 */
#ifndef CBCTL_FLEET_REDIS_H
#define CBCTL_FLEET_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "cbshm.h"

/* Codes of this file's functions, beside 0; each comes with a message. */
#define CBCTL_FLEET_EDOWN    (-1) /* Redis unreachable, or the connection failed: try again */
#define CBCTL_FLEET_EAUTH    (-2) /* Redis refused the user or password: try again later */
#define CBCTL_FLEET_EADDRESS (-3) /* the redis: address cannot be read */
#define CBCTL_FLEET_ESECRET  (-4) /* the password file is missing, unsafe or empty */

/* Room for a message of this file's functions. */
#define CBCTL_FLEET_WHY_MAX 512

/*
 * Where Redis is and who to log in as, from a fleet: section: the address
 * taken apart and the password read from its file. Reading the file is the
 * step root does before it becomes the segment's owner, so the password is
 * kept here, never read again; wipe it with cbctl_fleet_target_clear.
 */
struct cbctl_fleet_target {
    int is_unix;     /* 1: path is a unix socket; 0: host and port */
    char host[256];  /* "127.0.0.1", "::1", "redis.internal" */
    int port;        /* 1..65535 */
    char path[256];  /* the socket, an absolute path */
    char label[256]; /* how messages name it: the redis: value as written */
    char user[64];   /* "" : AUTH password (the default user) */
    char password[512];
    int has_password; /* 0: no AUTH */
    uint64_t connect_timeout_ms;
};

/*
 * "host:port", "[v6]:port", "unix:/path" or "/path" into t's address.
 * Returns 0 or CBCTL_FLEET_EADDRESS with why (naming the value).
 */
int cbctl_fleet_address_parse(const char *redis, struct cbctl_fleet_target *t, char *why,
                              size_t why_size);

/*
 * The first line of `path` (without its "\n" or "\r\n") into buf. Refuses
 * a file that is missing, not a regular file, that every user may read or
 * write (mode & 0007), whose first line is empty, or longer than size - 1.
 * The message names the file and never holds any of its bytes.
 * Returns 0 or CBCTL_FLEET_ESECRET with why.
 */
int cbctl_fleet_read_password(const char *path, char *buf, size_t size, char *why, size_t why_size);

/*
 * t from cfg: the address, the user, and the password when
 * cfg->password_file is not empty. Returns 0, CBCTL_FLEET_EADDRESS or
 * CBCTL_FLEET_ESECRET with why.
 */
int cbctl_fleet_target_init(struct cbctl_fleet_target *t, const struct cbshm_fleet_config *cfg,
                            uint64_t connect_timeout_ms, char *why, size_t why_size);
/* Wipes the password held in t. */
void cbctl_fleet_target_clear(struct cbctl_fleet_target *t);

/*
 * Connects to t within its connect timeout, with TCP keepalive, and logs in
 * (AUTH [user] password) when t has a password. Replies are then awaited
 * at most io_timeout_ms (0: as long as it takes); a caller that blocks on
 * Redis (XREAD BLOCK) raises it with redisSetTimeout first. On success *out
 * is released with redisFree. Returns 0; CBCTL_FLEET_EDOWN or
 * CBCTL_FLEET_EAUTH with why (Redis's words, never the password).
 */
int cbctl_fleet_connect(const struct cbctl_fleet_target *t, uint64_t io_timeout_ms,
                        redisContext **out, char *why, size_t why_size);

/*
 * The next reply on c, the commands appended before it (redisAppendCommand)
 * sent first, awaited until deadline_ms (CLOCK_MONOTONIC, ms) at the
 * latest: each write and read waits only what is left, so a server that
 * trickles its bytes cannot hold the caller past the deadline, as one
 * socket timeout per read would. Returns REDIS_OK with *reply
 * (freeReplyObject it), or REDIS_ERR with c->errstr saying why ("no reply
 * within the timeout" when the deadline came first).
 */
int cbctl_fleet_get_reply(redisContext *c, uint64_t deadline_ms, void **reply);

/*
 * The fleet's keys: "cbshm:{FLEET}:KIND" for events, hosts and commands
 * (member NULL), "cbshm:{FLEET}:KIND:MEMBER" for host, open and ack. The
 * fleet name in braces is the hash tag, so one fleet's keys share a Redis
 * Cluster slot. Returns the key's length, or -1 if it does not fit in size.
 */
#define CBCTL_FLEET_KEY_MAX 256
int cbctl_fleet_key(char *buf, size_t size, const char *fleet, const char *kind,
                    const char *member);

/* "ms-seq", as Redis writes a stream id: room for two 20-digit numbers. */
#define CBCTL_FLEET_ID_MAX 42
/* Returns the length written; buf holds at least CBCTL_FLEET_ID_MAX bytes. */
int cbctl_fleet_id_format(const struct cbshm_fleet_id *id, char *buf, size_t size);
/* Exactly "ms-seq", both decimal and in range; returns 0 or -1. */
int cbctl_fleet_id_parse(const char *s, size_t len, struct cbshm_fleet_id *out);
/* <0, 0, >0 as a is before, equal to, after b. */
int cbctl_fleet_id_cmp(const struct cbshm_fleet_id *a, const struct cbshm_fleet_id *b);

/*
 * Capped exponential backoff with full jitter: attempt k (from 0) waits a
 * time drawn evenly from [100 ms, min(10 s, 100 ms x 2^k)], so agents that
 * lost one Redis together do not come back in step.
 */
#define CBCTL_FLEET_BACKOFF_MIN_MS 100
#define CBCTL_FLEET_BACKOFF_MAX_MS 10000
struct cbctl_fleet_backoff {
    unsigned attempt; /* failures since the last success */
    uint64_t rng;     /* xorshift64 state, never 0 */
};
/* seed 0: from the pid and the clock. */
void cbctl_fleet_backoff_init(struct cbctl_fleet_backoff *b, uint64_t seed);
/* The wait before the next attempt; counts one more failure. */
uint64_t cbctl_fleet_backoff_next_ms(struct cbctl_fleet_backoff *b);
/* After a success: the next failure waits from 100 ms again. */
void cbctl_fleet_backoff_reset(struct cbctl_fleet_backoff *b);

/* CLOCK_REALTIME in milliseconds: the fleet's times are wall times, shared
   between hosts (the segment's monotonic clock is not). */
uint64_t cbctl_fleet_wall_ms(void);

#endif
