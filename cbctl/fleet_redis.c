/* SPDX-License-Identifier: MIT */
/*
 * Reaching the fleet's Redis: the address, the login (the password read
 * once from its file, never logged, wiped when done), the key names, the
 * stream ids and the backoff between attempts. _GNU_SOURCE for
 * explicit_bzero(3).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fleet_redis.h"

static int copy_in(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

static int parse_port(const char *s, int *out)
{
    long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > 65535)
            return -1;
    }
    if (v < 1)
        return -1;
    *out = (int)v;
    return 0;
}

int cbctl_fleet_address_parse(const char *redis, struct cbctl_fleet_target *t, char *why,
                              size_t why_size)
{
    const char *path = NULL, *colon;
    size_t host_len;

    if (redis == NULL || redis[0] == '\0') {
        snprintf(why, why_size, "fleet.redis is empty: give host:port or unix:/path");
        return CBCTL_FLEET_EADDRESS;
    }
    if (copy_in(t->label, sizeof t->label, redis, strlen(redis)) != 0) {
        snprintf(why, why_size, "fleet.redis is longer than %zu bytes", sizeof t->label - 1);
        return CBCTL_FLEET_EADDRESS;
    }
    if (strncmp(redis, "unix:", 5) == 0)
        path = redis + 5;
    else if (redis[0] == '/')
        path = redis;
    if (path != NULL) {
        if (path[0] != '/') {
            snprintf(why, why_size,
                     "fleet.redis '%s': a unix socket is an absolute path (unix:/run/redis.sock)",
                     redis);
            return CBCTL_FLEET_EADDRESS;
        }
        if (copy_in(t->path, sizeof t->path, path, strlen(path)) != 0) {
            snprintf(why, why_size, "fleet.redis '%s': the socket path is too long", redis);
            return CBCTL_FLEET_EADDRESS;
        }
        t->is_unix = 1;
        return 0;
    }
    if (redis[0] == '[') { /* [::1]:6379 */
        const char *close = strchr(redis, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(why, why_size, "fleet.redis '%s': an IPv6 address is [address]:port", redis);
            return CBCTL_FLEET_EADDRESS;
        }
        host_len = (size_t)(close - redis - 1);
        if (host_len == 0 || copy_in(t->host, sizeof t->host, redis + 1, host_len) != 0) {
            snprintf(why, why_size, "fleet.redis '%s': bad IPv6 address", redis);
            return CBCTL_FLEET_EADDRESS;
        }
        colon = close + 1;
    } else {
        colon = strrchr(redis, ':');
        if (colon == NULL || colon == redis || memchr(redis, ':', (size_t)(colon - redis))) {
            snprintf(why, why_size,
                     "fleet.redis '%s': want host:port, [v6address]:port or unix:/path", redis);
            return CBCTL_FLEET_EADDRESS;
        }
        host_len = (size_t)(colon - redis);
        if (copy_in(t->host, sizeof t->host, redis, host_len) != 0) {
            snprintf(why, why_size, "fleet.redis '%s': the host name is too long", redis);
            return CBCTL_FLEET_EADDRESS;
        }
    }
    if (parse_port(colon + 1, &t->port) != 0) {
        snprintf(why, why_size, "fleet.redis '%s': the port '%s' is not a number from 1 to 65535",
                 redis, colon + 1);
        return CBCTL_FLEET_EADDRESS;
    }
    t->is_unix = 0;
    return 0;
}

int cbctl_fleet_read_password(const char *path, char *buf, size_t size, char *why, size_t why_size)
{
    char data[1024];
    struct stat st;
    ssize_t n;
    size_t len;
    int fd, rc = CBCTL_FLEET_ESECRET;

    /* O_NONBLOCK: a FIFO put at the name does not hang the agent. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, why_size, "fleet.password_file %s: %s", path, strerror(errno));
        return CBCTL_FLEET_ESECRET;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(why, why_size, "fleet.password_file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "fleet.password_file %s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & 0007) {
        snprintf(why, why_size,
                 "fleet.password_file %s: every user may read or write it (mode %04o): refused; "
                 "chmod o-rwx it",
                 path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    do
        n = read(fd, data, sizeof data);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        snprintf(why, why_size, "fleet.password_file %s: %s", path, strerror(errno));
        goto out;
    }
    len = 0;
    while (len < (size_t)n && data[len] != '\n')
        len++;
    if (len == (size_t)n && (size_t)n == sizeof data) {
        snprintf(why, why_size, "fleet.password_file %s: the first line is over %zu bytes", path,
                 sizeof data - 1);
        goto out;
    }
    if (len > 0 && data[len - 1] == '\r')
        len--;
    if (len == 0) {
        snprintf(why, why_size, "fleet.password_file %s: the first line is empty", path);
        goto out;
    }
    if (memchr(data, '\0', len) != NULL) {
        snprintf(why, why_size, "fleet.password_file %s: the first line holds a NUL byte", path);
        goto out;
    }
    if (len >= size) {
        snprintf(why, why_size, "fleet.password_file %s: the password is over %zu bytes", path,
                 size - 1);
        goto out;
    }
    memcpy(buf, data, len);
    buf[len] = '\0';
    rc = 0;
out:
    explicit_bzero(data, sizeof data);
    close(fd);
    return rc;
}

int cbctl_fleet_target_init(struct cbctl_fleet_target *t, const struct cbshm_fleet_config *cfg,
                            uint64_t connect_timeout_ms, char *why, size_t why_size)
{
    int rc;

    memset(t, 0, sizeof *t);
    if ((rc = cbctl_fleet_address_parse(cfg->redis, t, why, why_size)) != 0)
        return rc;
    if (copy_in(t->user, sizeof t->user, cfg->user, strnlen(cfg->user, sizeof cfg->user)) != 0) {
        snprintf(why, why_size, "fleet.user is too long");
        return CBCTL_FLEET_EADDRESS;
    }
    t->connect_timeout_ms = connect_timeout_ms;
    if (cfg->password_file[0] == '\0')
        return 0;
    rc = cbctl_fleet_read_password(cfg->password_file, t->password, sizeof t->password, why,
                                   why_size);
    if (rc != 0)
        return rc;
    t->has_password = 1;
    return 0;
}

void cbctl_fleet_target_clear(struct cbctl_fleet_target *t)
{
    if (t == NULL)
        return;
    explicit_bzero(t->password, sizeof t->password);
    t->has_password = 0;
}

static struct timeval timeval_of(uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* c's socket timeout set to what is left before deadline_ms; -1 with the
   error set in c when nothing is. */
static int wait_at_most_until(redisContext *c, uint64_t deadline_ms)
{
    uint64_t now = monotonic_ms();

    if (now >= deadline_ms) {
        c->err = REDIS_ERR_IO;
        snprintf(c->errstr, sizeof c->errstr, "no reply within the timeout");
        return -1;
    }
    return redisSetTimeout(c, timeval_of(deadline_ms - now)) == REDIS_OK ? 0 : -1;
}

/* REDIS_ERR, a socket timeout (EAGAIN from a blocking read or write) said
   as what it is. */
static int get_reply_failed(redisContext *c, int saved_errno)
{
    if (c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
        snprintf(c->errstr, sizeof c->errstr, "no reply within the timeout");
    return REDIS_ERR;
}

int cbctl_fleet_get_reply(redisContext *c, uint64_t deadline_ms, void **reply)
{
    void *r = NULL;
    int done = 0;

    if (c->err || redisGetReplyFromReader(c, &r) != REDIS_OK)
        return REDIS_ERR;
    while (r == NULL && !done) {
        errno = 0;
        if (wait_at_most_until(c, deadline_ms) != 0 || redisBufferWrite(c, &done) != REDIS_OK)
            return get_reply_failed(c, errno);
    }
    while (r == NULL) {
        errno = 0;
        if (wait_at_most_until(c, deadline_ms) != 0 || redisBufferRead(c) != REDIS_OK ||
            redisGetReplyFromReader(c, &r) != REDIS_OK)
            return get_reply_failed(c, errno);
    }
    *reply = r;
    return REDIS_OK;
}

/* AUTH [user] password, its reply awaited until deadline_ms at the latest.
   Called on a fresh connection. */
static int log_in(redisContext *c, const struct cbctl_fleet_target *t, uint64_t deadline_ms,
                  char *why, size_t why_size)
{
    const char *argv[3];
    size_t lens[3];
    int argc = 0, rc = 0;
    redisReply *r;

    argv[argc] = "AUTH";
    lens[argc++] = 4;
    if (t->user[0] != '\0') {
        argv[argc] = t->user;
        lens[argc++] = strlen(t->user);
    }
    argv[argc] = t->password;
    lens[argc++] = strlen(t->password);
    r = NULL;
    if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK ||
        cbctl_fleet_get_reply(c, deadline_ms, (void **)&r) != REDIS_OK) {
        snprintf(why, why_size, "redis %s: AUTH: %s", t->label,
                 c->errstr[0] ? c->errstr : "connection lost");
        return CBCTL_FLEET_EDOWN;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* Redis's words name the user at most; the password was never in them. */
        snprintf(why, why_size, "redis %s: AUTH%s%s refused: %.*s", t->label,
                 t->user[0] ? " as " : "", t->user, (int)r->len, r->str);
        rc = CBCTL_FLEET_EAUTH;
    }
    freeReplyObject(r);
    return rc;
}

int cbctl_fleet_connect(const struct cbctl_fleet_target *t, uint64_t io_timeout_ms,
                        redisContext **out, char *why, size_t why_size)
{
    uint64_t connect_ms = t->connect_timeout_ms ? t->connect_timeout_ms : 2000;
    /* The connection and the login together. */
    uint64_t deadline_ms = monotonic_ms() + connect_ms;
    struct timeval tv = timeval_of(connect_ms);
    redisContext *c;
    int rc;

    if (t->is_unix)
        c = redisConnectUnixWithTimeout(t->path, tv);
    else
        c = redisConnectWithTimeout(t->host, t->port, tv);
    if (c == NULL) {
        snprintf(why, why_size, "redis %s: cannot connect: out of memory", t->label);
        return CBCTL_FLEET_EDOWN;
    }
    if (c->err) {
        snprintf(why, why_size, "redis %s: cannot connect: %s", t->label, c->errstr);
        redisFree(c);
        return CBCTL_FLEET_EDOWN;
    }
    if (!t->is_unix)
        redisEnableKeepAlive(c);
    if (t->has_password && (rc = log_in(c, t, deadline_ms, why, why_size)) != 0) {
        redisFree(c);
        return rc;
    }
    tv = timeval_of(io_timeout_ms);
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, why_size, "redis %s: cannot set a timeout: %s", t->label, c->errstr);
        redisFree(c);
        return CBCTL_FLEET_EDOWN;
    }
    *out = c;
    return 0;
}

int cbctl_fleet_key(char *buf, size_t size, const char *fleet, const char *kind, const char *member)
{
    int n;

    if (member != NULL)
        n = snprintf(buf, size, "cbshm:{%s}:%s:%s", fleet, kind, member);
    else
        n = snprintf(buf, size, "cbshm:{%s}:%s", fleet, kind);
    if (n < 0 || (size_t)n >= size)
        return -1;
    return n;
}

int cbctl_fleet_id_format(const struct cbshm_fleet_id *id, char *buf, size_t size)
{
    int n =
        snprintf(buf, size, "%llu-%llu", (unsigned long long)id->ms, (unsigned long long)id->seq);

    return n < 0 || (size_t)n >= size ? -1 : n;
}

/* Decimal digits only, no sign, no space, within 64 bits. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cbctl_fleet_id_parse(const char *s, size_t len, struct cbshm_fleet_id *out)
{
    const char *dash;
    struct cbshm_fleet_id id;

    if (s == NULL || (dash = memchr(s, '-', len)) == NULL)
        return -1;
    if (parse_u64(s, (size_t)(dash - s), &id.ms) != 0 ||
        parse_u64(dash + 1, len - (size_t)(dash - s) - 1, &id.seq) != 0)
        return -1;
    *out = id;
    return 0;
}

int cbctl_fleet_id_cmp(const struct cbshm_fleet_id *a, const struct cbshm_fleet_id *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

void cbctl_fleet_backoff_init(struct cbctl_fleet_backoff *b, uint64_t seed)
{
    struct timespec ts;

    if (seed == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec;
    }
    b->attempt = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t cbctl_fleet_backoff_next_ms(struct cbctl_fleet_backoff *b)
{
    uint64_t ceiling = CBCTL_FLEET_BACKOFF_MIN_MS, x = b->rng;

    /* 100 ms x 2^7 = 12.8 s is past the cap already: count no further. */
    for (unsigned k = 0; k < b->attempt && ceiling < CBCTL_FLEET_BACKOFF_MAX_MS; k++)
        ceiling *= 2;
    if (ceiling > CBCTL_FLEET_BACKOFF_MAX_MS)
        ceiling = CBCTL_FLEET_BACKOFF_MAX_MS;
    if (b->attempt < 64)
        b->attempt++;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return CBCTL_FLEET_BACKOFF_MIN_MS + x % (ceiling - CBCTL_FLEET_BACKOFF_MIN_MS + 1);
}

void cbctl_fleet_backoff_reset(struct cbctl_fleet_backoff *b)
{
    b->attempt = 0;
}

uint64_t cbctl_fleet_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
