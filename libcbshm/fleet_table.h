/* SPDX-License-Identifier: MIT */
/*
 * The keys of the YAML's `fleet:` section, one row each: the field of
 * struct cbshm_fleet_config it fills, what its value must be, whether the
 * section needs it, the range and default of a duration, and its help
 * line. The loader (config.c) and the validator (validate.c) read the
 * rows; what a kind of value must look like is validate.c's.
 *
 * X(key, kind, field, flags, min, max, def, help)
 *   kind: FLEET_ADDRESS, FLEET_USER, FLEET_PATH, FLEET_NAME, FLEET_DURATION
 *   min, max, def: a duration's, in milliseconds (0 for the other kinds)
 */
#ifndef CBSHM_FLEET_TABLE_H
#define CBSHM_FLEET_TABLE_H

#include <stddef.h>
#include <stdint.h>

enum cbshm__fleet_kind {
    FLEET_ADDRESS,  /* host:port, [v6]:port, unix:/abs/path or /abs/path */
    FLEET_USER,     /* a Redis ACL user name: printable ASCII, no space */
    FLEET_PATH,     /* an absolute path */
    FLEET_NAME,     /* 1..64 bytes of A-Z a-z 0-9 . _ - */
    FLEET_DURATION, /* 250ms, 5s, 2m, 1h */
};

/* The section must have it once the loader has filled in the defaults
   (host_id's is the hostname): never "" in a checked configuration. */
#define FLEET_REQUIRED 0x1u
/* The longest fleet name or host_id (the fields hold one more byte). */
#define FLEET_NAME_MAX 64
/* sun_path holds 108 bytes with its NUL. */
#define FLEET_SOCKET_PATH_MAX 107

#define CBSHM_FLEET_TABLE(X)                                                                     \
    X(redis, FLEET_ADDRESS, redis, FLEET_REQUIRED, 0, 0, 0,                                      \
      "the fleet's Redis: host:port, or a unix socket as unix:/path or /path")                   \
    X(user, FLEET_USER, user, 0, 0, 0, 0, "the Redis ACL user the agent logs in as (AUTH user)") \
    X(password_file, FLEET_PATH, password_file, 0, 0, 0, 0,                                      \
      "an absolute path: its first line is the Redis password")                                  \
    X(name, FLEET_NAME, name, FLEET_REQUIRED, 0, 0, 0,                                           \
      "the fleet: every host of it shares its keys")                                             \
    X(host_id, FLEET_NAME, host_id, FLEET_REQUIRED, 0, 0, 0,                                     \
      "this host in the fleet; default: the hostname")                                           \
    X(heartbeat, FLEET_DURATION, heartbeat_ms, 0, 1000, 3600000, 5000,                           \
      "how often the agent publishes this host's breakers; 3 missed make it stale")

/* Row numbers. */
enum cbshm__fleet_row {
#define FLEET_ROW(key, ...) FLEET_ROW_##key,
    CBSHM_FLEET_TABLE(FLEET_ROW)
#undef FLEET_ROW
        FLEET_ROWS
};

/* A row as data (validate.c holds the one array): where its value lives
   in struct cbshm_fleet_config. */
struct cbshm__fleet_key {
    const char *key;
    enum cbshm__fleet_kind kind;
    unsigned flags;
    size_t offset, size;
    uint64_t min, max, def;
    const char *help;
};
extern const struct cbshm__fleet_key cbshm__fleet_keys[FLEET_ROWS];

#endif /* CBSHM_FLEET_TABLE_H */
