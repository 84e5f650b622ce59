/* SPDX-License-Identifier: MIT */
/* The fleet tests' helpers declared in fleet_harness.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet_harness.h"

uint64_t th_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t th_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void th_nap(void)
{
    struct timespec ts = {0, 10 * 1000000L};

    nanosleep(&ts, NULL);
}

int th_redis_installed(void)
{
    return access(TH_REDIS_SERVER, X_OK) == 0;
}

/* A port the kernel just gave to nobody: bound to 0, read, closed. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int spawn_redis(const struct th_redis *r)
{
    char port[16], log[192], user_pw[80];
    const char *argv[40];
    int n = 0, pid;

    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--unixsocket";
    argv[n++] = r->socket;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = r->dir;
    argv[n++] = "--logfile";
    argv[n++] = log;
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    if (r->password[0] != '\0') {
        argv[n++] = "--requirepass";
        argv[n++] = r->password;
    }
    if (r->user[0] != '\0') {
        snprintf(user_pw, sizeof user_pw, ">%s", r->user_password);
        argv[n++] = "--user";
        argv[n++] = r->user;
        argv[n++] = "on";
        argv[n++] = user_pw;
        argv[n++] = "~*";
        argv[n++] = "&*";
        argv[n++] = "+@all";
    }
    argv[n] = NULL;
    if ((pid = fork()) == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        /* Its own process group: a test's SIGKILL of agents never reaches it.
           It ends with the test, even one killed at its timeout. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(TH_REDIS_SERVER, (char *const *)argv);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

/* Waits for PING on the socket, or for the server to die (its port taken). */
static int wait_up(struct th_redis *r)
{
    uint64_t deadline = th_now_ms() + 10000;
    int status;

    while (th_now_ms() < deadline) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectUnixWithTimeout(r->socket, tv);
        if (c != NULL && !c->err) {
            redisReply *rep =
                r->password[0] ? redisCommand(c, "AUTH %s", r->password) : redisCommand(c, "PING");
            int ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
            freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return 0;
        } else {
            redisFree(c);
        }
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;
        }
        th_nap();
    }
    return -1;
}

void th_redis_start(struct th_redis *r)
{
    assert_true(th_redis_installed());
    snprintf(r->dir, sizeof r->dir, "/tmp/cbshm-redis-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->socket, sizeof r->socket, "%s/redis.sock", r->dir);
    /* Another program may take the port between the look and the bind:
       then the server exits, and a new port is tried. */
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = free_port();
        r->pid = spawn_redis(r);
        if (wait_up(r) == 0)
            return;
        if (r->pid > 0)
            th_redis_stop(r);
    }
    fail_msg("redis-server did not start in %s (see redis.log there)", r->dir);
}

void th_redis_stop(struct th_redis *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    t_wait(r->pid);
    r->pid = 0;
}

void th_redis_restart(struct th_redis *r)
{
    uint64_t deadline = th_now_ms() + 10000;

    th_redis_stop(r);
    /* The port may linger a moment after the old server's exit. */
    while (th_now_ms() < deadline) {
        r->pid = spawn_redis(r);
        if (wait_up(r) == 0)
            return;
        if (r->pid > 0)
            th_redis_stop(r);
        th_nap();
    }
    fail_msg("redis-server did not restart on port %d (see %s/redis.log)", r->port, r->dir);
}

static void remove_tree(const char *dir)
{
    char cmd[300];

    if (dir[0] == '\0')
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

void th_redis_destroy(struct th_redis *r)
{
    th_redis_stop(r);
    remove_tree(r->dir);
    r->dir[0] = '\0';
}

redisContext *th_redis_connect(const struct th_redis *r)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);

    if (c == NULL || c->err)
        fail_msg("cannot connect to the test's redis on port %d: %s", r->port,
                 c ? c->errstr : "no memory");
    redisSetTimeout(c, tv);
    if (r->password[0] != '\0')
        freeReplyObject(th_redis_cmd(c, "AUTH %s", r->password));
    return c;
}

redisReply *th_redis_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *rep;

    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (rep == NULL)
        fail_msg("redis: %s: %s", fmt, c->errstr);
    return rep;
}

long long th_redis_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *rep;
    long long v;

    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (rep == NULL)
        fail_msg("redis: %s: %s", fmt, c->errstr);
    if (rep->type != REDIS_REPLY_INTEGER)
        fail_msg("redis: %s: not an integer: %s", fmt, rep->str ? rep->str : "(no text)");
    v = rep->integer;
    freeReplyObject(rep);
    return v;
}

void th_write_file(const char *path, const char *text, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, (mode_t)mode), 0);
    close(fd);
}

void th_fleet_init(struct th_fleet *f, struct th_redis *r, int n, const char *breakers,
                   const char *heartbeat, int via_socket, const char *fleet_extra)
{
    static unsigned calls;
    char yaml[8192], where[256], where_dir[sizeof f->dir];

    assert_true(n >= 1 && n <= TH_HOSTS);
    memset(f, 0, sizeof *f);
    f->n = n;
    f->redis = r;
    snprintf(f->name, sizeof f->name, "t%d-%u", (int)getpid(), calls++);
    snprintf(f->dir, sizeof f->dir, "/tmp/cbshm-fleet-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    memcpy(where_dir, f->dir, sizeof where_dir);
    if (via_socket)
        snprintf(where, sizeof where, "unix:%s", r->socket);
    else
        snprintf(where, sizeof where, "127.0.0.1:%d", r->port);
    for (int i = 0; i < n; i++) {
        struct th_host *h = &f->host[i];
        char id[sizeof h->host_id];
        snprintf(id, sizeof id, "%s-h%d", f->name, i);
        memcpy(h->host_id, id, sizeof id);
        t_segment_name(h->segment);
        snprintf(h->config, sizeof h->config, "%s/%s.yaml", where_dir, id);
        snprintf(h->log, sizeof h->log, "%s/%s.log", where_dir, id);
        /* The segment from the breakers alone: it does not wait on fleet:. */
        snprintf(yaml, sizeof yaml, "capacity: 128\n%s", breakers);
        t_apply(h->segment, yaml);
        snprintf(yaml, sizeof yaml,
                 "segment: %s\ncapacity: 128\n%sfleet:\n  redis: %s\n  name: %s\n"
                 "  host_id: %s\n  heartbeat: %s\n%s",
                 h->segment, breakers, where, f->name, h->host_id, heartbeat,
                 fleet_extra != NULL ? fleet_extra : "");
        th_write_file(h->config, yaml, 0600);
    }
}

void th_fleet_destroy(struct th_fleet *f)
{
    for (int i = 0; i < f->n; i++) {
        th_agent_kill(f, i);
        cbshm_destroy(f->host[i].segment);
    }
    remove_tree(f->dir);
}

void th_agent_start(struct th_fleet *f, int i, const char *const *env)
{
    struct th_host *h = &f->host[i];
    int pid;

    assert_int_equal(h->agent_pid, 0);
    if ((pid = fork()) == 0) {
        int log = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(log, 1);
        dup2(log, 2);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no agent outlives a test killed at its timeout */
        for (; env != NULL && *env != NULL; env++)
            putenv((char *)*env);
        execl(CBCTL_PATH, "cbctl", "agent", "--config", h->config, (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    h->agent_pid = pid;
}

void th_agent_signal(struct th_fleet *f, int i, int sig)
{
    assert_true(f->host[i].agent_pid > 0);
    kill(f->host[i].agent_pid, sig);
}

int th_agent_wait(struct th_fleet *f, int i, int seconds)
{
    uint64_t deadline = th_now_ms() + (uint64_t)seconds * 1000u;
    int status;

    if (f->host[i].agent_pid <= 0)
        return -1;
    for (;;) {
        pid_t got = waitpid(f->host[i].agent_pid, &status, WNOHANG);
        if (got == f->host[i].agent_pid) {
            f->host[i].agent_pid = 0;
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
        }
        if (got < 0 && errno != EINTR) {
            f->host[i].agent_pid = 0;
            return -1;
        }
        if (th_now_ms() >= deadline)
            return -1;
        th_nap();
    }
}

void th_agent_kill(struct th_fleet *f, int i)
{
    if (f->host[i].agent_pid <= 0)
        return;
    kill(f->host[i].agent_pid, SIGKILL);
    kill(f->host[i].agent_pid, SIGCONT);
    t_wait(f->host[i].agent_pid);
    f->host[i].agent_pid = 0;
}

int th_agent_stop(struct th_fleet *f, int i)
{
    int status;

    th_agent_signal(f, i, SIGTERM);
    if ((status = th_agent_wait(f, i, 10)) < 0) {
        char log[2048];
        fail_msg("agent of %s did not exit within 10 s of SIGTERM; its log:\n%s",
                 f->host[i].host_id, th_agent_log(f, i, log, sizeof log));
    }
    return status;
}

const char *th_agent_log(const struct th_fleet *f, int i, char *buf, size_t size)
{
    int fd = open(f->host[i].log, O_RDONLY | O_CLOEXEC);
    off_t end;
    ssize_t n;

    buf[0] = '\0';
    if (fd < 0)
        return buf;
    /* The end of the log says most. */
    end = lseek(fd, 0, SEEK_END);
    if (end > (off_t)size - 1)
        lseek(fd, end - (off_t)size + 1, SEEK_SET);
    else
        lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

void th_fleet_dump_logs(const struct th_fleet *f)
{
    char log[8192];

    for (int i = 0; i < f->n; i++)
        fprintf(stderr, "---- agent of %s (log %s):\n%s\n", f->host[i].host_id, f->host[i].log,
                th_agent_log(f, i, log, sizeof log));
}

int th_trickling_server(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), pid;

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if ((pid = fork()) == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a test that failed */
        signal(SIGPIPE, SIG_IGN);
        for (;;) {
            int c = accept(fd, NULL, NULL);
            char buf[4096];
            struct timespec tick = {0, 100 * 1000000L};
            if (c < 0 || read(c, buf, sizeof buf) <= 0 || write(c, "*1000000\r\n", 10) != 10) {
                close(c);
                continue;
            }
            while (write(c, ":1\r\n", 4) == 4)
                nanosleep(&tick, NULL);
            close(c);
        }
    }
    close(fd);
    return pid;
}
