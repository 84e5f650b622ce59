/* SPDX-License-Identifier: MIT */
/*
 * libcbshm - one circuit-breaker table per host, in POSIX shared memory.
 *
 * Process model. An operator (cbctl apply) or a master process
 * (cbshm_apply) creates a named shared-memory segment holding a fixed-size
 * table of breakers. Every worker process attaches to it (cbshm_open),
 * resolves the breakers it uses once (cbshm_breaker_get) and then guards
 * each downstream call with cbshm_execute() or the cbshm_allow() /
 * cbshm_record() pair. All processes read and write the same breaker
 * state: a trip decided by one worker is seen by every worker on its next
 * call. Admission in the closed state and recording an outcome are a few
 * atomic operations on the segment: no lock, no system call, no allocation.
 *
 * Handles survive fork(): a segment or breaker handle obtained in a parent
 * works in its children, also when another thread of the parent was inside
 * the library at fork(). Every function is thread-safe unless its comment
 * says otherwise. None is async-signal-safe: a signal handler must not
 * call into libcbshm (the hot path may take a process-local mutex the first
 * time a thread counts, and transitions take the table lock).
 *
 * Errors. Functions return 0 on success and a negative number on failure:
 * either -errno from a failed system call or one of the CBSHM_E* codes
 * below, which sit in a reserved block that never collides with errno.
 * cbshm_strerror() names every code.
 *
 * The breaker never becomes the outage: when the library cannot decide
 * (segment missing, foreign, corrupt; breaker deleted) cbshm_execute() and
 * cbshm_allow() let the call through, unless the handle was opened with
 * CBSHM_FAIL_CLOSED.
 */
#ifndef CBSHM_H
#define CBSHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CBSHM_BUILDING) && defined(__GNUC__)
#define CBSHM_API __attribute__((visibility("default")))
#else
#define CBSHM_API
#endif

/* ---- Version --------------------------------------------------------- */

#define CBSHM_VERSION_MAJOR  1
#define CBSHM_VERSION_MINOR  1
#define CBSHM_VERSION_PATCH  0
#define CBSHM_VERSION_STRING "1.1.0"

/* The library's version string, e.g. "1.1.0". Never NULL, static. */
CBSHM_API const char *cbshm_version(void);

/* ---- Errors ---------------------------------------------------------- */

/*
 * The library's own codes. X(NAME, value, message) so that error.c builds
 * its table from this one list.
 */
#define CBSHM_ERRNO_MAP(X)                                                              \
    X(EREJECTED, -30800, "call rejected by the circuit breaker")                        \
    X(ENOSEG, -30801, "segment does not exist")                                         \
    X(EBADMAGIC, -30802, "segment is not a libcbshm segment (bad magic)")               \
    X(EVERSION, -30803, "segment layout version does not match the library")            \
    X(EABI, -30804, "segment ABI fingerprint does not match the library")               \
    X(ETRUNCATED, -30805, "segment is smaller than its header says")                    \
    X(ECORRUPT, -30806, "segment is corrupt")                                           \
    X(EUNINIT, -30807, "segment is not initialised yet (or its creator died)")          \
    X(ENOBREAKER, -30808, "no such breaker")                                            \
    X(ESTALE, -30809, "breaker was deleted or recreated behind the handle")             \
    X(EFULL, -30810, "breaker table is full")                                           \
    X(EBADNAME, -30811, "invalid breaker or segment name")                              \
    X(ECONFIG, -30812, "configuration rejected")                                        \
    X(ELOCK, -30813, "table lock could not be taken (held, or looks held, beyond 1 s)") \
    X(EPERM, -30814, "segment has unsafe ownership or permissions")                     \
    X(ERETIRED, -30815, "segment was destroyed")                                        \
    X(EINVAL, -30816, "invalid argument")                                               \
    X(EPIDNS, -30817, "segment belongs to another PID namespace")                       \
    X(ESTOPPED, -30818, "the callback stopped the walk")                                \
    X(EALREADY, -30819, "fleet command applied already")                                \
    X(EBUSY, -30820, "an operator's mode stands; the fleet does not override it")

enum cbshm_error {
#define CBSHM__ERR_ENUM(name, value, msg) CBSHM_##name = (value),
    CBSHM_ERRNO_MAP(CBSHM__ERR_ENUM)
#undef CBSHM__ERR_ENUM
};

/*
 * A static message for any code: 0, a CBSHM_E* code, a -errno value, or an
 * unknown number. Never NULL, never allocates.
 */
CBSHM_API const char *cbshm_strerror(int code);

/* The symbolic name of a code ("CBSHM_EREJECTED", "ENOENT", "OK", ...). */
CBSHM_API const char *cbshm_errname(int code);

/* ---- Types ----------------------------------------------------------- */

/* An attached segment. Opaque; one per process is usual. */
struct cbshm;

/* A resolved breaker. Opaque; resolve once, keep for the process's life. */
struct cbshm_breaker;

enum cbshm_state {
    CBSHM_STATE_CLOSED = 0,    /* calls pass; failures are counted */
    CBSHM_STATE_OPEN = 1,      /* calls are rejected until open_until */
    CBSHM_STATE_HALF_OPEN = 2, /* a few probe calls test the downstream */
};

enum cbshm_mode {
    CBSHM_MODE_NORMAL = 0,        /* the state machine decides */
    CBSHM_MODE_FORCED_OPEN = 1,   /* every call is rejected */
    CBSHM_MODE_FORCED_CLOSED = 2, /* every call passes; outcomes counted, no trips */
    CBSHM_MODE_DISABLED = 3,      /* pass-through; nothing is recorded */
};

enum cbshm_outcome {
    CBSHM_SUCCESS = 0, /* the downstream answered well */
    CBSHM_FAILURE = 1, /* the downstream failed */
    CBSHM_IGNORED = 2, /* the answer says nothing about the downstream's health */
};

/* Limits of the shared table. */
#define CBSHM_NAME_MAX         63  /* bytes in a breaker name, without NUL */
#define CBSHM_SEGMENT_NAME_MAX 200 /* bytes in a segment name, without NUL */
#define CBSHM_PROBES_MAX       16  /* upper bound of half_open_max_calls */
#define CBSHM_BULKHEAD_MAX     256 /* upper bound of a bulkhead's limit */
/* Upper bound of max_wait_ms: a caller queued longer for a bulkhead slot
   is an outage hidden behind a queue (a scribbled value stops here too). */
#define CBSHM_MAX_WAIT_MS  10000
#define CBSHM_CAPACITY_MAX 65536 /* upper bound of a table's capacity */

/* Flags of cbshm_open(). */
#define CBSHM_FAIL_CLOSED 0x1u /* reject calls when the library cannot decide */
#define CBSHM_READ_ONLY   0x2u /* an observer's view: maps read-only, takes no lock */
#define CBSHM_LATE        0x4u /* a segment or breaker not there yet: attach when it is */

/* What trips a closed breaker. */
enum cbshm_policy {
    CBSHM_POLICY_CONSECUTIVE = 0, /* failure_threshold failures in a row, host-wide */
    CBSHM_POLICY_RATE = 1,        /* failure_rate percent of the window's calls */
};

/* How a half-open phase decides (half_open_decision). */
enum cbshm_half_open_decision {
    /* The first failed (or slow) probe reopens; success_threshold successful
       probes close. */
    CBSHM_HALF_OPEN_FIRST_FAILURE = 0,
    /* Every one of the half_open_max_calls probes reports (or outlives its
       lease), then the breaker closes if fewer than half_open_failure_rate
       percent of them failed, and reopens otherwise. */
    CBSHM_HALF_OPEN_RATE = 1,
};

/* What the window of recent calls holds. */
enum cbshm_window {
    CBSHM_WINDOW_COUNT = 0, /* the last window_size calls */
    CBSHM_WINDOW_TIME = 1,  /* the calls of the last window_duration_ms */
};

#define CBSHM_WINDOW_BUCKETS_MAX   60 /* upper bound of window_buckets */
#define CBSHM_COUNT_WINDOW_BUCKETS 10 /* granularity of count windows */

/*
 * Settings of one breaker. Durations are milliseconds; a rate or a jitter
 * is a percentage; backoff_multiplier is in hundredths (150 = 1.5x).
 * cbshm_settings_default() fills in the defaults named below; the settings
 * table (cbshm_setting_at) describes each field: its YAML key, range,
 * default and the policies it applies to. A field that does not apply to
 * the breaker's policy or window type must hold its default
 * (cbshm_config_check says which).
 */
struct cbshm_settings {
    /* Consecutive policy: failures in a row that trip. 1..1000000, default 5. */
    uint32_t failure_threshold;
    /* Probe successes that close. 1..CBSHM_PROBES_MAX and at most
       half_open_max_calls, default 1. */
    uint32_t success_threshold;
    /* Probes one half-open phase admits. 1..CBSHM_PROBES_MAX, default 1. */
    uint32_t half_open_max_calls;
    /* enum cbshm_policy, default CBSHM_POLICY_CONSECUTIVE (0). */
    uint32_t policy;
    /* The first open period. 1..86400000, default 30000. */
    uint64_t open_timeout_ms;
    /* A probe lease expires after this. 1..86400000, default 10000. */
    uint64_t probe_timeout_ms;
    /* The window: the failure rate (rate policy) and the slow-call rate
       (both policies) are measured over it.
       enum cbshm_window, default CBSHM_WINDOW_COUNT (0). */
    uint32_t window_type;
    /* Count window: calls it holds. 1..1000000, default 100. */
    uint32_t window_size;
    /* Time window: its length. window_buckets..86400000, default 60000. */
    uint64_t window_duration_ms;
    /* Time window: buckets. 1..CBSHM_WINDOW_BUCKETS_MAX, default 10. */
    uint32_t window_buckets;
    /* Rate policy, or slow calls: no rate trips with fewer calls in the
       window. 1..1000000 and at most window_size, default 10. */
    uint32_t minimum_calls;
    /* Rate policy: trip at this percent of failures. 1..100, default 50. */
    uint32_t failure_rate;
    /* Slow calls: trip at this percent of slow calls. 1..100, default 100. */
    uint32_t slow_call_rate;
    /* A call this long is slow; 0 turns slow-call detection off.
       0..86400000, default 0. */
    uint64_t slow_call_duration_ms;
    /* Backoff of the open period after failed probes, in hundredths.
       100..10000, default 100 (no backoff). */
    uint32_t backoff_multiplier;
    /* +- percent of each open period. 0..100, default 0. */
    uint32_t open_timeout_jitter;
    /* The open period never grows past this. open_timeout_ms..86400000,
       default 86400000. */
    uint64_t open_timeout_max_ms;
    /* Trip only when this many processes failed; 0 and 1: any.
       0..16, default 0. */
    uint32_t min_failing_workers;
    /* The bulkhead: calls in flight host-wide, at most. 0..256, default 0
       (no bulkhead). */
    uint32_t max_concurrent_calls;
    /* How a half-open phase decides: enum cbshm_half_open_decision,
       default CBSHM_HALF_OPEN_FIRST_FAILURE (0). */
    uint32_t half_open_decision;
    /* Rate decision: close when fewer than this percent of the phase's
       probes failed. 1..100, required with the rate decision; default 0
       (none: the first-failure decision). */
    uint32_t half_open_failure_rate;
    /* The bulkhead as a share of the live worker processes, in hundredths
       (50 = 0.5): limit = ceil(share x workers), at least 1. 0..100,
       default 0 (none). At most one of it and max_concurrent_calls. */
    uint32_t concurrency_quota;
    /* The fleet trip (cbctl agent): force this breaker open here too while
       this many live hosts of the fleet have it open by their own trips:
       1..10000 hosts, or CBSHM_FLEET_SHARE | hundredths (1..100) for that
       share of the live hosts, rounded up, at least 1; default 0 (off). */
    uint32_t fleet_open_hosts;
    /* Bulkhead: how long a call waits for a free slot before it is
       rejected. 0..CBSHM_MAX_WAIT_MS, default 0 (rejected at once). */
    uint64_t max_wait_ms;
    /* Bulkhead: a slot held this long by a call never recorded goes back
       to the pool. 1..86400000, default 60000. */
    uint64_t slot_timeout_ms;
    uint64_t reserved[4]; /* zero: room for the settings of later versions */
};

/* ---- The settings table ---------------------------------------------- */

/*
 * One table describes every field of struct cbshm_settings: the YAML
 * loader, the validator, cbctl's show, JSON, metrics and apply diff all
 * read it, so a program can too (an editor, a config generator, a
 * binding). Entries are static; never freed.
 */
enum cbshm_setting_type {
    CBSHM_SETTING_COUNT = 0,      /* an integer: YAML 5 */
    CBSHM_SETTING_DURATION = 1,   /* milliseconds: YAML 250ms, 5s, 2m, 1h */
    CBSHM_SETTING_PERCENT = 2,    /* a percentage: YAML 50 or 50% */
    CBSHM_SETTING_MULTIPLIER = 3, /* hundredths: YAML 2 or 1.5 */
    CBSHM_SETTING_CHOICE = 4,     /* the index of one of `choices`: YAML the word */
    /* a host count (2) or a share of the live hosts (0.34 or 34%): a count
       as it is, a share as CBSHM_FLEET_SHARE | hundredths */
    CBSHM_SETTING_HOSTS = 5,
};

/* A CBSHM_SETTING_HOSTS value with this bit is a share of the live hosts
   in hundredths (CBSHM_FLEET_SHARE | 34: 34%); without it, a count. */
#define CBSHM_FLEET_SHARE 0x80000000u

/* Which breakers a setting applies to: bits of cbshm_setting.policies. */
#define CBSHM_FOR_CONSECUTIVE 0x1u /* policy: consecutive */
#define CBSHM_FOR_RATE        0x2u /* policy: rate */
#define CBSHM_FOR_SLOW_CALLS  0x4u /* any policy, when slow_call_duration is set */
#define CBSHM_FOR_BULKHEAD    0x8u /* any policy, with a bulkhead (a limit or a quota) */
/* ... bits of cbshm_setting.windows ... */
#define CBSHM_FOR_COUNT_WINDOW 0x1u /* window_type: count */
#define CBSHM_FOR_TIME_WINDOW  0x2u /* window_type: time */
/* ... and of cbshm_setting.decisions. */
#define CBSHM_FOR_FIRST_FAILURE 0x1u /* half_open_decision: first_failure */
#define CBSHM_FOR_RATE_DECISION 0x2u /* half_open_decision: rate */

struct cbshm_setting {
    const char *key;            /* the YAML key: "open_timeout" */
    const char *json_key;       /* the key in cbctl's JSON: "open_timeout_ms" */
    const char *help;           /* one line, lower case, no full stop */
    const char *const *choices; /* CHOICE: the words, NULL-terminated; else NULL */
    enum cbshm_setting_type type;
    unsigned policies;  /* CBSHM_FOR_CONSECUTIVE | CBSHM_FOR_RATE | CBSHM_FOR_SLOW_CALLS */
    unsigned windows;   /* CBSHM_FOR_COUNT_WINDOW | CBSHM_FOR_TIME_WINDOW */
    unsigned decisions; /* CBSHM_FOR_FIRST_FAILURE | CBSHM_FOR_RATE_DECISION */
    uint64_t min, max;  /* the range, in the field's unit */
    uint64_t def;       /* the default, in the field's unit */
    uint64_t reserved[4];
};

/*
 * The i-th setting (0, 1, ... in the order the documentation lists them),
 * or NULL past the last. Never blocks.
 */
CBSHM_API const struct cbshm_setting *cbshm_setting_at(size_t i);

/* The setting whose YAML or JSON key is `key`, or NULL. */
CBSHM_API const struct cbshm_setting *cbshm_setting_find(const char *key);

/* The value of setting d in s, in the field's unit (0 when d is NULL). */
CBSHM_API uint64_t cbshm_setting_get(const struct cbshm_settings *s, const struct cbshm_setting *d);

/*
 * Stores v as setting d of s, unchecked (cbshm_config_check checks).
 * Returns 0, or CBSHM_EINVAL when s or d is NULL or v does not fit the
 * field.
 */
CBSHM_API int cbshm_setting_set(struct cbshm_settings *s, const struct cbshm_setting *d,
                                uint64_t v);

/*
 * Writes v as the YAML would say it ("30s", "50%", "1.5", "rate") into
 * buf, truncated to size. Returns 0, or CBSHM_EINVAL when d or buf is NULL
 * or size is 0.
 */
CBSHM_API int cbshm_setting_format(const struct cbshm_setting *d, uint64_t v, char *buf,
                                   size_t size);

/*
 * Parses `text` as the YAML writes setting d ("250ms", "50%", "1.5",
 * "rate") into *out, in the field's unit, and checks the table's range.
 * On CBSHM_ECONFIG, msg (if not NULL) gets what is wrong, as the YAML
 * loader would say it ("duration '5' needs a unit (ms, s, m or h)"),
 * truncated to size. Returns 0, CBSHM_ECONFIG, or CBSHM_EINVAL (d, text
 * or out NULL). *out is written only on success.
 */
CBSHM_API int cbshm_setting_parse(const struct cbshm_setting *d, const char *text, uint64_t *out,
                                  char *msg, size_t size);

/*
 * 1 when setting d means something to a breaker with settings s (its
 * policy, window type, slow-call detection and half-open decision), else 0.
 */
CBSHM_API int cbshm_setting_applies(const struct cbshm_setting *d, const struct cbshm_settings *s);

/* A point-in-time copy of one breaker, for inspection. */
struct cbshm_snapshot {
    char name[CBSHM_NAME_MAX + 1];
    uint32_t index;      /* slot in the table */
    uint32_t generation; /* bumped when the slot is reused */
    enum cbshm_state state;
    enum cbshm_mode mode;
    struct cbshm_settings settings;
    uint64_t requests;  /* successes + failures + ignored + rejections */
    uint64_t successes; /* recorded successful calls */
    uint64_t failures;  /* recorded failed calls */
    uint64_t ignored;   /* recorded calls with an ignored outcome */
    uint64_t rejections;
    uint64_t trips;                /* transitions into open */
    uint64_t probes_reclaimed;     /* leases taken back from dead or late owners */
    uint64_t slow_calls;           /* recorded calls at least slow_call_duration_ms long */
    uint32_t consecutive_failures; /* current run, closed state */
    uint32_t half_open_successes;  /* successes in the current half-open period */
    uint32_t probes_in_flight;     /* leases held now */
    uint32_t failing_workers;      /* distinct processes with failures in the window */
    uint64_t open_until_ns;        /* CLOCK_MONOTONIC; meaningful when open */
    uint64_t last_transition_ns;   /* CLOCK_MONOTONIC of the last state change */
    uint64_t time_in_state_ns;     /* now - last_transition_ns */
    uint64_t current_open_ms;      /* the open period now in force, after backoff */
    /* The window now: calls (successes and failures), failures, slow calls. */
    uint64_t window_calls;
    uint64_t window_failures;
    uint64_t window_slow_calls;
    uint32_t window_failure_rate; /* percent of window_calls, 0 when empty */
    uint32_t window_slow_rate;    /* percent of window_calls, 0 when empty */
    uint64_t mode_until_ns;       /* CLOCK_MONOTONIC end of a timed mode; 0: none */
    /* The bulkhead (all 0 without one): the limit now in force (a quota's
       is computed from the live workers), slots held now, calls it
       rejected (counted in rejections too), slots taken back from dead
       owners or after slot_timeout, calls that waited and got in. */
    uint32_t bulkhead_limit;
    uint32_t bulkhead_in_flight;
    uint64_t bulkhead_rejections;
    uint64_t bulkhead_reclaimed;
    uint64_t bulkhead_waits;
    /* enum cbshm_event_cause of the mode's last change: CBSHM_CAUSE_OPERATOR,
       CBSHM_CAUSE_MODE_EXPIRED, or CBSHM_CAUSE_FLEET (forced open by the
       fleet: cbshm_fleet_force). 0 on a breaker whose mode never changed. */
    uint32_t mode_cause;
    uint32_t reserved0;    /* zero */
    uint64_t reserved[10]; /* zero: room for the figures of later versions */
};

/* ---- Segment --------------------------------------------------------- */

/*
 * The segment name to use when the caller has none: $CBSHM_SEGMENT if set
 * and non-empty, else "/cbshm". Static or environment storage; do not free.
 */
CBSHM_API const char *cbshm_default_segment(void);

/*
 * Attaches to the existing segment `name` ('/' then 1 to
 * CBSHM_SEGMENT_NAME_MAX - 1 bytes of A-Z a-z 0-9 . _ -, and not "/." or
 * "/..": every function that takes a segment name says CBSHM_EBADNAME to
 * any other). flags: 0, or any of CBSHM_FAIL_CLOSED, CBSHM_READ_ONLY and CBSHM_LATE. On
 * success *out is a handle released by cbshm_close(). The header is
 * validated: size, magic, layout version, ABI fingerprint, each with its
 * own code.
 * Whoever can write a segment is trusted by every process attached to it
 * (README "Security"), so this refuses (CBSHM_EPERM): as root, a segment
 * not owned by root or writable by a group other than root's; as another
 * user, read-write, a segment it does not own; a segment writable by
 * others, or by its group when its configuration did not say so. It also
 * refuses one created in another PID namespace (CBSHM_EPIDNS); a symbolic
 * link (-ELOOP); a directory, FIFO or device (CBSHM_EBADMAGIC, at once:
 * the open never blocks).
 * CBSHM_LATE makes deploy order not matter: where the segment cannot be
 * attached now - not there yet (CBSHM_ENOSEG), not published yet, not this
 * user's until a worker drops to its owner (CBSHM_EPERM, -EACCES), or any
 * other attach error but CBSHM_EBADNAME and -ENOMEM - this returns 0 and
 * a handle all the same. Its breaker handles (cbshm_breaker_get gives one
 * for a breaker not there yet too) run every call fail-open (under
 * CBSHM_FAIL_CLOSED: refuse it with the reason), the reason as
 * cbshm_breaker_error(), and attach by themselves, at most every
 * 0.25 s per handle and never on the closed fast path, once the segment
 * and the breaker appear; the other functions taking shm attach it then
 * too, or return the reason (cbshm_info: CBSHM_ENOSEG, ...).
 * CBSHM_READ_ONLY gives an observer's view, for any user the file lets
 * read (root: its own segments only): mapped read-only, it never takes
 * the table lock - cbshm_snapshot, cbshm_foreach and cbshm_check copy
 * between changes, and give CBSHM_ELOCK after waiting 1 s behind a holder
 * that is stopped or died mid-change until a writer repairs it; a timed
 * mode past its end shows as normal - and cbshm_breaker_get,
 * cbshm_set_mode, cbshm_set_mode_for and cbshm_reset refuse with
 * CBSHM_EPERM.
 * May block briefly on the filesystem; never on the table lock.
 * Returns 0; CBSHM_ENOSEG (no such name); CBSHM_EBADMAGIC (a foreign file,
 * or not a regular file); CBSHM_EVERSION; CBSHM_EABI; CBSHM_ETRUNCATED
 * (smaller than its header says, or than any header); CBSHM_ECORRUPT (the
 * header's geometry is inconsistent); CBSHM_EUNINIT (empty, or its creator
 * has not published it yet); CBSHM_EBADNAME (name NULL or malformed);
 * CBSHM_EPERM; CBSHM_EINVAL (out NULL, unknown flags); CBSHM_EPIDNS;
 * -ENOMEM; -EACCES (no permission to open it read-write); -ELOOP (a
 * symbolic link); -EMFILE or -ENFILE (out of file descriptors); or another
 * -errno from shm_open(3), fstat(2) or mmap(2) (-ENXIO for a socket).
 */
CBSHM_API int cbshm_open(const char *name, unsigned flags, struct cbshm **out);

/*
 * Detaches. Breaker handles obtained from shm must be released first.
 * Accepts NULL.
 */
CBSHM_API void cbshm_close(struct cbshm *shm);

/* What a segment's header says, read without trusting it: for messages. */
struct cbshm_peek {
    uint64_t magic;
    uint32_t layout_version;     /* the segment's */
    uint32_t my_layout_version;  /* this library's */
    uint64_t abi_fingerprint;    /* the segment's */
    uint64_t my_abi_fingerprint; /* this library's */
    uint64_t file_bytes;
    uint32_t owner_uid;
    uint32_t file_mode;   /* permission bits of the shm object */
    uint64_t reserved[4]; /* zero: room for later versions */
};

/*
 * Reads the header fields of segment `name` as they are, valid or not,
 * so that a refusal can say which versions met; a file too short for a
 * field leaves it 0. Never blocks, even on a FIFO at the name; takes no
 * lock. Returns 0; CBSHM_ENOSEG (no such name); CBSHM_EBADNAME (name NULL
 * or malformed); CBSHM_EINVAL (out NULL); -EACCES (no permission to read
 * it); -ELOOP (a symbolic link); -EMFILE or -ENFILE (out of file
 * descriptors); or another -errno from shm_open(3) or fstat(2).
 */
CBSHM_API int cbshm_peek(const char *name, struct cbshm_peek *out);

/*
 * Marks the segment retired and unlinks its name. Processes still attached
 * keep a valid mapping and run their calls unguarded (CBSHM_ERETIRED from
 * cbshm_breaker_error) until a segment of the same name is created again
 * (cbctl apply); then each breaker handle moves to it by itself, within
 * 0.25 s of its next call, and the segment handle's own functions
 * (cbshm_snapshot, cbshm_foreach, cbshm_events_read, cbshm_set_mode, ...)
 * work on the new segment from then on; until it exists they read the
 * destroyed one as it was left. A segment removed by other means (rm, logind's
 * RemoveIPC) is noticed by the workers themselves - each thread checks
 * every 4,096 calls, at most once a second - and retired the same way.
 * New opens fail with CBSHM_ENOSEG meanwhile. A name that is not a
 * segment this library can attach (foreign, corrupt, a FIFO, a symbolic
 * link: the link itself) is unlinked all the same, without the retiring.
 * Takes no lock (retiring is a compare-and-swap per slot), so a held or
 * scribbled table lock does not stop it, and CBSHM_ELOCK is never
 * returned.
 * Returns 0; CBSHM_ENOSEG (no such name); CBSHM_EBADNAME (name NULL or
 * malformed); -EACCES (another user's segment in the sticky /dev/shm:
 * glibc's shm_unlink reports unlink's EPERM so); -EISDIR (a directory); or
 * another -errno from shm_unlink(3).
 */
CBSHM_API int cbshm_destroy(const char *name);

/* ---- Breakers -------------------------------------------------------- */

/*
 * Resolves `name` to a handle kept by the caller and released with
 * cbshm_breaker_release() (before cbshm_close(shm)). Takes the table lock
 * briefly (at most 1 s: CBSHM_ELOCK). A handle detects the breaker being
 * deleted or recreated, or its segment destroyed and re-created, and then
 * looks the name up again by itself, at most every 0.25 s (CBSHM_ESTALE
 * in between). Returns 0; CBSHM_ECORRUPT (the name index points outside
 * the table, or the look-up met a slot whose name is scribbled: it may
 * have been this one); CBSHM_ENOBREAKER (but on a CBSHM_LATE segment
 * handle: a handle that attaches once the breaker is there); CBSHM_EBADNAME (name NULL or
 * malformed); CBSHM_ELOCK; CBSHM_EPERM (a read-only view: calls would
 * write); CBSHM_EINVAL (shm or out NULL); or -ENOMEM.
 */
CBSHM_API int cbshm_breaker_get(struct cbshm *shm, const char *name, struct cbshm_breaker **out);

/* Releases a handle. Accepts NULL. */
CBSHM_API void cbshm_breaker_release(struct cbshm_breaker *b);

/* The name the handle was resolved with. Never NULL for a valid handle. */
CBSHM_API const char *cbshm_breaker_name(const struct cbshm_breaker *b);

/* ---- Hot path -------------------------------------------------------- */

/* The caller's protected call: does the work, says how it went. */
typedef enum cbshm_outcome (*cbshm_call_fn)(void *arg);

/*
 * Runs fn(arg) if the breaker admits the call, then records its outcome
 * (and, when the breaker detects slow calls, its duration).
 * No lock is held while fn runs.
 * Returns 0 when fn ran, CBSHM_EREJECTED when the breaker refused the call
 * (fn did not run: the breaker, or its full bulkhead once max_wait_ms ran
 * out; see cbshm_allow), CBSHM_EINVAL when fn is NULL. When the library
 * cannot decide (breaker gone, segment invalid) fn runs anyway and 0 is returned,
 * unless the segment was opened with CBSHM_FAIL_CLOSED: then fn does not
 * run and the problem's code is returned, one of those listed under
 * cbshm_allow(). b NULL always runs fn and returns 0 (there is no segment
 * to say fail-closed). cbshm_breaker_error() tells what the problem was.
 */
CBSHM_API int cbshm_execute(struct cbshm_breaker *b, cbshm_call_fn fn, void *arg);

/*
 * What cbshm_allow() hands to cbshm_record(). Plain data owned by the
 * caller (a stack or per-request variable); one ticket per admitted call.
 */
struct cbshm_ticket {
    uint64_t ctl;       /* internal: the breaker's control word at admission */
    void *slot;         /* internal: the breaker in this process's mapping */
    uint64_t token;     /* internal: probe lease token, when a probe */
    uint64_t start_ns;  /* internal: admission time, when slow calls are detected */
    uint32_t flags;     /* internal: probe, pass-through, unguarded, bulkhead */
    uint32_t lease;     /* internal: probe lease index, when a probe */
    uint64_t bulk_word; /* internal: what its bulkhead slot holds, when it has one */
    uint32_t bulk_slot; /* internal: which bulkhead slot */
    uint32_t reserved;  /* internal: room for later versions */
};

/*
 * Two-step API for code that cannot wrap the call in a function (event
 * loops, async clients). cbshm_allow() decides: 0 means make the call and
 * later pass the ticket to cbshm_record() exactly once; CBSHM_EREJECTED
 * means do not make it. Under fail-open, a problem gives 0 and an
 * unguarded ticket; under CBSHM_FAIL_CLOSED it gives the problem's code.
 * b NULL gives 0 and an unguarded ticket. A probe ticket that is never
 * recorded holds its lease until probe_timeout_ms passes or the process
 * dies. Admission in the open and half-open states may take the table lock
 * (at most 1 s); re-resolving a stale handle takes it too, and after
 * cbshm_destroy() attaches the segment that replaced it (see cbshm_open).
 * With a bulkhead (max_concurrent_calls or concurrency_quota), a call the
 * breaker admits - a probe too, and in forced-closed mode; not in disabled
 * mode - also takes one of its slots, which cbshm_record() gives back.
 * When every slot is held the call waits up to max_wait_ms for one,
 * asleep on a futex in the segment (the calling thread blocks; 0: it does
 * not wait), then is rejected: CBSHM_EREJECTED, and
 * cbshm_breaker_rejection() says CBSHM_REFUSAL_BULKHEAD_FULL. A slot whose
 * process died goes back to the pool when the bulkhead is full; one whose
 * ticket is never recorded, after slot_timeout_ms. A ticket is its
 * process's: a forked child must not record its parent's (it would give
 * the parent's slot, or probe lease, back while the parent's call runs).
 * Returns 0; CBSHM_EREJECTED; CBSHM_EINVAL (t NULL); and, only under
 * CBSHM_FAIL_CLOSED, the problem: CBSHM_EBADMAGIC, CBSHM_EVERSION,
 * CBSHM_EABI, CBSHM_ETRUNCATED, CBSHM_EUNINIT, CBSHM_EPERM or CBSHM_EPIDNS
 * (the segment that replaced a destroyed one is refused, as by
 * cbshm_open); CBSHM_EPIDNS also when this process entered another PID
 * namespace after opening and the call would need a probe lease (its pid
 * would mean another process to the segment's); CBSHM_ECORRUPT (the name
 * index points outside the table, or the breaker's state is none of enum
 * cbshm_state: a scribbled control word);
 * CBSHM_ENOBREAKER (the breaker was deleted); CBSHM_ESTALE (deleted or
 * recreated, and looked up again less than 0.25 s ago); CBSHM_ELOCK;
 * CBSHM_ERETIRED (the segment was destroyed and not yet re-created);
 * -ENOMEM; or, re-attaching a replaced segment, -EACCES, -ELOOP, -EMFILE,
 * -ENFILE or another -errno from shm_open(3), fstat(2) or mmap(2).
 */
CBSHM_API int cbshm_allow(struct cbshm_breaker *b, struct cbshm_ticket *t);

/*
 * Records the outcome of a call admitted by cbshm_allow(). When the
 * breaker detects slow calls, the call's duration is the time since
 * cbshm_allow(). Recording an unguarded ticket is a no-op returning 0, and
 * so is b NULL; a ticket of a breaker deleted since admission counts
 * nothing. A ticket admitted in an earlier state period (before a trip, a
 * close, a reset, a mode change, a new window shape) is counted in the
 * totals, in no window, and decides nothing. A probe's lease is given back
 * only with the decision it feeds (README: half-open). An outcome that
 * decides a transition (a trip, a probe's result)
 * takes the table lock (at most 1 s); when it cannot be taken the outcome
 * is still counted, the transition is skipped and cbshm_breaker_error()
 * says CBSHM_ELOCK: record itself does not report it. After such a
 * timeout the calls of this process only try the lock, without waiting,
 * for 5 s: a wedged lock costs one wait, not one a call.
 * Returns 0, or CBSHM_EINVAL for a NULL ticket, a ticket already recorded
 * (or rejected), or an outcome out of range.
 */
CBSHM_API int cbshm_record(struct cbshm_breaker *b, struct cbshm_ticket *t,
                           enum cbshm_outcome outcome);

/*
 * As cbshm_record(), with the call's duration measured by the caller (for
 * example from the request's own timestamps), in nanoseconds.
 * Returns 0, or CBSHM_EINVAL as cbshm_record() does and for a duration_ns
 * of UINT64_MAX (reserved: "not measured").
 */
CBSHM_API int cbshm_record_timed(struct cbshm_breaker *b, struct cbshm_ticket *t,
                                 enum cbshm_outcome outcome, uint64_t duration_ns);

/*
 * As cbshm_record(), for a failure the downstream answered with how long
 * to leave it alone (an HTTP 429 or 503 with Retry-After): the breaker
 * opens at once - from closed, or from half-open as a failed probe - for
 * its open period and at least retry_after_ns, capped at
 * open_timeout_max; the event's cause is CBSHM_CAUSE_RETRY_AFTER. Forced
 * closed, it is counted and opens nothing; a call of an earlier period
 * decides nothing, as always. Any other outcome, or 0, is cbshm_record().
 * Returns 0, or CBSHM_EINVAL as cbshm_record() does.
 */
CBSHM_API int cbshm_record_retry_after(struct cbshm_breaker *b, struct cbshm_ticket *t,
                                       enum cbshm_outcome outcome, uint64_t retry_after_ns);

/*
 * The last problem this handle met on the hot path: the code
 * cbshm_execute() would have returned under CBSHM_FAIL_CLOSED, or
 * CBSHM_ELOCK from a transition that cbshm_record() had to skip. It is 0
 * until a problem occurs, and set back to 0 only when the handle next
 * looks its breaker up again successfully, not by a call that merely goes
 * well. Never blocks, takes no lock.
 * Holds 0, or one of the problem codes listed under cbshm_allow() (every
 * one but CBSHM_EREJECTED and CBSHM_EINVAL). Returns CBSHM_EINVAL for b
 * NULL.
 */
CBSHM_API int cbshm_breaker_error(const struct cbshm_breaker *b);

/* Why a breaker refuses calls now. */
enum cbshm_refusal {
    CBSHM_REFUSAL_NONE = 0,          /* it admits calls (closed, forced closed, disabled) */
    CBSHM_REFUSAL_OPEN = 1,          /* open, until its open period ends */
    CBSHM_REFUSAL_PROBES_BUSY = 2,   /* half-open, every probe lease of the phase taken */
    CBSHM_REFUSAL_FORCED_OPEN = 3,   /* forced open by an operator */
    CBSHM_REFUSAL_BULKHEAD_FULL = 4, /* every bulkhead slot held (max_wait, if any, ran out) */
};

struct cbshm_rejection {
    enum cbshm_refusal why;
    /* Nanoseconds until a call can be admitted: open, until the open
       period ends (0 once it has: the next call probes); half-open, until
       the earliest running probe's deadline (the latest the phase can
       last); forced open, until a timed mode ends (cbshm_set_mode_for), 0
       when it has no end; bulkhead full, 0 (a slot frees when any call
       in flight ends); 0 when calls are admitted. */
    uint64_t retry_after_ns;
    uint64_t reserved[2];
};

/*
 * After CBSHM_EREJECTED: why the breaker refuses, and for how long,
 * read from the control word and line 0 of the breaker - without the
 * table lock, without blocking, at a rejection's cost. A caller answering
 * a 503 calls it to fill Retry-After. Returns 0; CBSHM_ESTALE (the handle's
 * breaker was deleted or recreated, or its segment retired: the next call
 * looks it up again); CBSHM_EINVAL (b or out NULL).
 */
CBSHM_API int cbshm_breaker_rejection(const struct cbshm_breaker *b, struct cbshm_rejection *out);

/* ---- Inspection and steering (take the table lock) -------------------- */

/*
 * Every function that takes the table lock (these, cbshm_breaker_get(),
 * the transitions of the hot path) first checks that the lock is still
 * the robust process-shared mutex it was made as: when its words were
 * scribbled so that the C library would misread them (and abort), or
 * the lock is beyond repair, it returns CBSHM_ECORRUPT without trying it
 * (the hot path lets the call through and the handle's
 * cbshm_breaker_error() says so). cbshm_check() names it, and
 * cbshm_apply() (cbctl apply) replaces the segment.
 */

/*
 * Copies breaker `name`'s state into *out. Takes the table lock (waits at
 * most 1 s for it: CBSHM_ELOCK).
 * Returns 0; CBSHM_ECORRUPT (the name index points outside the table, or
 * the look-up met a slot whose name is scribbled); CBSHM_ENOBREAKER;
 * CBSHM_EBADNAME (name NULL or malformed); CBSHM_ELOCK; or CBSHM_EINVAL
 * (shm or out NULL).
 */
CBSHM_API int cbshm_snapshot(struct cbshm *shm, const char *name, struct cbshm_snapshot *out);

/*
 * Calls fn for every breaker in slot order with a consistent copy of each,
 * copied under the table lock (at most 1 s: CBSHM_ELOCK) and handed to fn
 * after it is released, so fn may be slow. fn returns 0 to go on; any
 * other value stops the walk, and foreach returns CBSHM_ESTOPPED (fn keeps
 * its own reason in ctx: its value is never mixed with the library's
 * codes). A slot in use whose name is not a valid breaker name (no NUL in
 * its field, a wrong length, a byte the name rules refuse) is never handed
 * to fn. Returns 0 (every breaker visited), CBSHM_ECORRUPT (fn was called
 * for every other breaker; cbshm_check names the slot), CBSHM_ESTOPPED,
 * CBSHM_EINVAL (shm or fn NULL), CBSHM_ELOCK, or -ENOMEM (the copy of the
 * table).
 */
CBSHM_API int cbshm_foreach(struct cbshm *shm, int (*fn)(void *ctx, const struct cbshm_snapshot *s),
                            void *ctx);

/*
 * Sets the mode of breaker `name`; every process obeys it on its next call.
 * Takes the table lock (waits at most 1 s for it: CBSHM_ELOCK).
 * Returns 0; CBSHM_ECORRUPT (the name index points outside the table);
 * CBSHM_ENOBREAKER; CBSHM_EBADNAME (name NULL or malformed); CBSHM_ELOCK;
 * CBSHM_EPERM (a read-only view); or CBSHM_EINVAL (shm NULL, mode out of
 * range).
 */
CBSHM_API int cbshm_set_mode(struct cbshm *shm, const char *name, enum cbshm_mode mode);

/*
 * As cbshm_set_mode(), for duration_ms (1..86400000): then the breaker
 * returns to normal by itself - the first call, snapshot or walk after the
 * end makes the change under the table lock and writes a mode event
 * (cause CBSHM_CAUSE_MODE_EXPIRED) timed at the end. cbshm_set_mode()
 * or another cbshm_set_mode_for() replaces it. cbctl open/close/disable
 * --for DURATION. Takes the table lock (at most 1 s: CBSHM_ELOCK).
 * Returns 0, CBSHM_ECORRUPT, CBSHM_ENOBREAKER, CBSHM_EBADNAME, CBSHM_ELOCK,
 * CBSHM_EPERM (a read-only view), or CBSHM_EINVAL (shm NULL, mode out of
 * range or normal, duration out of range).
 */
CBSHM_API int cbshm_set_mode_for(struct cbshm *shm, const char *name, enum cbshm_mode mode,
                                 uint64_t duration_ms);

/*
 * Closes breaker `name`, clears its counters, its window and its leases,
 * and ends its backoff. Its mode is kept: a breaker forced open, forced
 * closed or disabled stays so (cbshm_set_mode() changes it). Takes the
 * table lock (waits at most 1 s for it: CBSHM_ELOCK).
 * Returns 0; CBSHM_ECORRUPT (the name index points outside the table);
 * CBSHM_ENOBREAKER; CBSHM_EBADNAME (name NULL or malformed); CBSHM_ELOCK;
 * CBSHM_EPERM (a read-only view); or CBSHM_EINVAL (shm NULL).
 */
CBSHM_API int cbshm_reset(struct cbshm *shm, const char *name);

/* Capacity, count and geometry of an attached segment. */
struct cbshm_info {
    uint32_t layout_version;
    uint32_t capacity;      /* slots */
    uint32_t breakers;      /* slots in use */
    uint32_t index_buckets; /* name index size */
    uint64_t segment_bytes;
    uint64_t bytes_per_breaker;
    uint64_t lock_repairs; /* times a dead lock owner was repaired */
    uint32_t creator_pid;
    uint32_t mode;        /* permission bits the segment was created with */
    uint32_t workers;     /* live processes that call through it (concurrency_quota) */
    uint32_t reserved0;   /* zero */
    uint64_t reserved[7]; /* zero: room for later versions */
};

/*
 * Fills *out from the attached segment's header; workers is counted now
 * (kill(pid, 0) for each registered one), writing nothing. Takes no lock,
 * never blocks. Returns 0, or CBSHM_EINVAL (shm or out NULL).
 */
CBSHM_API int cbshm_info(struct cbshm *shm, struct cbshm_info *out);

/*
 * Validates the whole segment: header, every slot, the name index, leases,
 * bulkhead slots (a holder with no process, a stamp far ahead of the
 * clock) and the worker registry.
 * For each problem calls report(ctx, message) (may be NULL) and counts it.
 * A header that fails validation is one problem, and then nothing else is
 * looked at. Otherwise takes the table lock (waits at most 1 s for it:
 * CBSHM_ELOCK), which repairs a dead owner's change first; report is
 * called with the lock held and must not call a function that takes it
 * (nor leave a robust mutex of its own locked). A table lock that cannot
 * be used (scribbled, or beyond repair: what the functions that take it
 * answer with CBSHM_ECORRUPT) is one problem, and then nothing else is
 * looked at; cbshm_apply() replaces such a segment.
 * Returns the number of problems (0 when healthy), CBSHM_ELOCK, or
 * CBSHM_EINVAL (shm NULL).
 */
CBSHM_API int cbshm_check(struct cbshm *shm, void (*report)(void *ctx, const char *message),
                          void *ctx);

/* ---- Events ---------------------------------------------------------- */

enum cbshm_event_kind {
    CBSHM_EVENT_STATE = 0,    /* from, to: enum cbshm_state */
    CBSHM_EVENT_MODE = 1,     /* from, to: enum cbshm_mode */
    CBSHM_EVENT_RESET = 2,    /* from: the state before; to: closed */
    CBSHM_EVENT_BULKHEAD = 3, /* from, to: enum cbshm_bulkhead_state */
};

/* A bulkhead's state, as its events say it. It is full from its first
   rejection until a call is admitted after a second without one; events
   of a breaker's bulkhead are at most one a second. */
enum cbshm_bulkhead_state {
    CBSHM_BULKHEAD_ADMITTING = 0, /* "admitting" */
    CBSHM_BULKHEAD_FULL = 1,      /* "full": rejecting calls */
};

/*
 * Why a transition or mode change happened. X(NAME, value, word, meaning):
 * the word is cbctl's (events, JSON) and cbshm_event_cause_name()'s.
 */
#define CBSHM_CAUSE_MAP(X)                                                              \
    X(FAILURES, 0, "failures", "failure_threshold failures in a row")                   \
    X(FAILURE_RATE, 1, "failure_rate", "the window's failure rate")                     \
    X(SLOW_RATE, 2, "slow_rate", "the window's slow-call rate")                         \
    X(OPEN_TIMEOUT, 3, "open_timeout", "the open period ended: probing")                \
    X(PROBE_FAILED, 4, "probe_failed", "a probe failed (or the rate decision said so)") \
    X(PROBES_OK, 5, "probes_ok", "the probes succeeded: closed")                        \
    X(OPERATOR, 6, "operator", "cbctl, or cbshm_set_mode / cbshm_reset")                \
    X(PROBE_TIMEOUT, 7, "probe_timeout", "a probe outlived probe_timeout: open again")  \
    X(MODE_EXPIRED, 8, "mode_expired", "a timed mode (cbshm_set_mode_for) ended")       \
    X(RETRY_AFTER, 9, "retry_after", "a failure recorded with a retry-after opened it") \
    X(BULKHEAD, 10, "bulkhead", "the bulkhead started or stopped rejecting calls")      \
    X(FLEET, 11, "fleet", "enough hosts of the fleet saw it open (fleet_open_hosts)")

enum cbshm_event_cause {
#define CBSHM__CAUSE_ENUM(name, value, word, meaning) CBSHM_CAUSE_##name = (value),
    CBSHM_CAUSE_MAP(CBSHM__CAUSE_ENUM)
#undef CBSHM__CAUSE_ENUM
};

/* The word of a cause ("probe_failed"); "unknown" for another number.
   Static, never NULL. */
CBSHM_API const char *cbshm_event_cause_name(int cause);

/* One transition or mode change, as the segment's event ring recorded it. */
struct cbshm_event {
    uint64_t seq;     /* 0, 1, 2, ... for the segment's life */
    uint64_t time_ns; /* CLOCK_MONOTONIC, never before the calls that caused it */
    uint32_t pid;     /* the process that made the change */
    enum cbshm_event_kind kind;
    int from, to;
    enum cbshm_event_cause cause;
    char name[CBSHM_NAME_MAX + 1]; /* the breaker */
    /* CLOCK_REALTIME (ns since the epoch) read with time_ns; 0 when the
       record was written by a library that did not stamp it. */
    uint64_t wall_ns;
    uint64_t reserved[3]; /* zero: room for later versions */
};

/* Set a cursor to this to start reading at the next event. */
#define CBSHM_EVENTS_NOW UINT64_MAX

/*
 * Reads up to `max` events from *cursor on (0: the oldest the ring still
 * holds; CBSHM_EVENTS_NOW: none yet, only what comes next) and advances
 * the cursor. The ring holds the last 1024 events; *lost (may be NULL)
 * gets how many were overwritten before they could be read. Never takes
 * the table lock, never blocks: call it from a loop or a timer. A record
 * whose breaker name is not a valid name (a scribbled ring) is skipped,
 * never handed out. Returns 0 with *n the number read (*cursor and *lost
 * written too); CBSHM_ECORRUPT when a record was skipped so, with *n,
 * *cursor and *lost written as for 0 (the reader can go on); or
 * CBSHM_EINVAL (shm, cursor or n NULL, or out NULL with max > 0) with
 * nothing written.
 */
CBSHM_API int cbshm_events_read(struct cbshm *shm, uint64_t *cursor, struct cbshm_event *out,
                                size_t max, size_t *n, uint64_t *lost);

/* ---- Fleet ----------------------------------------------------------- */

/*
 * The fleet's control plane (cbctl agent) steers a host's breakers from
 * commands in a Redis stream; these are what it needs from the segment.
 * Nothing here is on a worker's call path.
 */

/* A Redis stream id, ms-seq. {0, 0}: none. */
struct cbshm_fleet_id {
    uint64_t ms, seq;
};

enum cbshm_fleet_op {
    CBSHM_FLEET_SKIP = 0,  /* consume the id, change nothing (not for this host) */
    CBSHM_FLEET_MODE = 1,  /* set mode, for duration_ms (0: until changed) */
    CBSHM_FLEET_RESET = 2, /* as cbshm_reset() */
    /* The stream started over (a Redis restarted empty, a replica whose
       stream ends before the id stored): store id even when it is not after
       the stored one, changing nothing, so the agent reads on from there. */
    CBSHM_FLEET_REBASE = 3,
};

struct cbshm_fleet_command {
    struct cbshm_fleet_id id;
    enum cbshm_fleet_op op;
    enum cbshm_mode mode;          /* CBSHM_FLEET_MODE */
    uint64_t duration_ms;          /* 0, or 1..86400000 with a mode other than normal */
    char name[CBSHM_NAME_MAX + 1]; /* the breaker (not read for CBSHM_FLEET_SKIP) */
    uint64_t reserved[4];          /* zero */
};

/*
 * Applies cmd exactly once per segment. Under the table lock: when cmd->id
 * is after the last id the segment consumed, makes the change (a mode
 * change with cause CBSHM_CAUSE_OPERATOR, or a reset, with its event) and
 * stores the id, and the result, with it. A process that dies at any
 * instruction in between leaves the change and the id both made or both
 * not: the next holder of the lock finishes what it began.
 * Returns 0 (applied); CBSHM_EALREADY (the id is not after the stored
 * one - for CBSHM_FLEET_REBASE, is the stored one: nothing done); the change's error, with the id consumed and that
 * result stored - CBSHM_ENOBREAKER, CBSHM_EBADNAME, CBSHM_EINVAL (mode out
 * of range, a duration out of range or with normal); or, consuming
 * nothing, CBSHM_ELOCK, CBSHM_ECORRUPT, CBSHM_EPERM (a read-only view),
 * CBSHM_EINVAL (shm or cmd NULL, op out of range, id {0, 0}).
 */
CBSHM_API int cbshm_fleet_apply(struct cbshm *shm, const struct cbshm_fleet_command *cmd);

/*
 * The last id the segment consumed ({0, 0}: none) and the result stored
 * with it (may be NULL). A read-only view reads them without the lock.
 * Returns 0, CBSHM_ELOCK, CBSHM_ECORRUPT, or CBSHM_EINVAL (shm or id NULL).
 */
CBSHM_API int cbshm_fleet_applied(struct cbshm *shm, struct cbshm_fleet_id *id, int *result);

/*
 * The fleet trip. open != 0: forces breaker `name` open for lease_ms
 * (1..86400000) with cause CBSHM_CAUSE_FLEET, when its mode is normal; a
 * breaker the fleet already forced open has its lease renewed (no event).
 * A mode an operator set stands: CBSHM_EBUSY. The force is a timed mode,
 * so one whose agent died ends by itself lease_ms later. open == 0: back
 * to normal (cause fleet) when the fleet forced it open; otherwise nothing
 * changes and 0 is returned. Takes the table lock (at most 1 s).
 * Returns 0, CBSHM_EBUSY, CBSHM_ENOBREAKER, CBSHM_EBADNAME, CBSHM_ELOCK,
 * CBSHM_ECORRUPT, CBSHM_EPERM (a read-only view), or CBSHM_EINVAL (shm
 * NULL, lease_ms out of range with open).
 */
CBSHM_API int cbshm_fleet_force(struct cbshm *shm, const char *name, int open, uint64_t lease_ms);

/* The agent's status, kept in the segment for cbctl (metrics, show). */
struct cbshm_fleet_status {
    uint32_t agent_pid;         /* 0: no agent has run on this segment */
    uint32_t connected;         /* 1 while the agent has a working Redis connection */
    uint64_t contact_wall_ns;   /* CLOCK_REALTIME of its last good exchange with Redis */
    uint64_t heartbeat_wall_ns; /* CLOCK_REALTIME of the last heartbeat it published */
    uint64_t commands_applied;  /* commands applied (cbshm_fleet_apply returned 0) */
    uint64_t commands_failed;   /* commands acknowledged with an error */
    uint64_t lag_ms;            /* the newest command seen less the last applied, in ms */
    uint64_t reserved[4];       /* zero */
};

/* Reads the agent's status, of the segment now under the handle's name
   (one that replaced a destroyed one too); never blocks. Returns 0,
   CBSHM_EINVAL, or why a handle opened CBSHM_LATE has no segment yet
   (CBSHM_ENOSEG, ...). */
CBSHM_API int cbshm_fleet_status_get(struct cbshm *shm, struct cbshm_fleet_status *out);

/* Stores the agent's status (the agent's alone to write), in the segment
   now under the handle's name; never blocks. Returns 0, CBSHM_EPERM (a
   read-only view), CBSHM_EINVAL, or why a late handle has no segment yet. */
CBSHM_API int cbshm_fleet_status_set(struct cbshm *shm, const struct cbshm_fleet_status *in);

/* ---- Configuration --------------------------------------------------- */

/* Where a configuration error is: file, line, column (1-based), key. */
struct cbshm_diag {
    char file[256];
    unsigned line;
    unsigned column;
    char key[64];         /* the key path: "breakers[2].open_timeout", "mode", "" */
    char message[256];    /* what is wrong, without file, line and column */
    uint64_t reserved[4]; /* zero: room for later versions */
};

struct cbshm_breaker_config {
    char name[CBSHM_NAME_MAX + 1];
    struct cbshm_settings settings;
};

/*
 * The `fleet:` section: what `cbctl agent` needs to join the fleet's
 * control plane (README "Fleet"). cbshm_apply() ignores it. Strings are
 * NUL-terminated.
 */
struct cbshm_fleet_config {
    /* "host:port" ("[v6 address]:port" too), or a unix socket as
       "unix:/abs/path" or "/abs/path". Required. */
    char redis[256];
    char user[64];           /* the ACL user of AUTH user password; "" for none */
    char password_file[256]; /* an absolute path, its first line the password; "" for none */
    char name[65];           /* the fleet: 1..64 bytes of A-Z a-z 0-9 . _ -; required */
    char host_id[65];        /* this host in the fleet, same rules; default gethostname() */
    uint64_t heartbeat_ms;   /* 1000..3600000, default 5000 */
    uint64_t reserved[4];    /* zero */
};

/* A parsed configuration file. Plain data owned by the caller. */
struct cbshm_config {
    char segment[CBSHM_SEGMENT_NAME_MAX + 1]; /* "" when the file has none */
    uint32_t capacity;                        /* default 256 */
    uint32_t mode;                            /* permission bits, default 0600 */
    int has_group;                            /* 1 when `group` was given */
    uint32_t gid;                             /* resolved `group` */
    struct cbshm_settings defaults;
    size_t n_breakers;
    struct cbshm_breaker_config *breakers; /* n_breakers entries */
    int has_owner;                         /* 1 when `owner` was given */
    uint32_t uid;                          /* resolved `owner`: the user the segment belongs to */
    /* The `fleet:` section, or NULL when the file has none; the loader's
       is released by cbshm_config_free(). */
    const struct cbshm_fleet_config *fleet;
#if UINTPTR_MAX == 0xFFFFFFFFu
    uint32_t fleet_pad; /* zero: where a pointer is 4 bytes the struct keeps its size */
#endif
    uint64_t reserved[6]; /* zero: room for the keys of later versions */
};

/* The built-in defaults for a breaker's settings. */
CBSHM_API void cbshm_settings_default(struct cbshm_settings *out);

/*
 * Parses YAML from `path`. On success *out is released with
 * cbshm_config_free(). On CBSHM_ECONFIG, diag (if not NULL) says file,
 * line, column, key and what is wrong; on a -errno it says the file. Reads
 * the file with stdio: blocks as long as reading it does (a FIFO, a slow
 * filesystem), and at most one byte past the 16 MiB limit. A `group` given
 * by name is resolved with getgrnam(3), an `owner` with getpwnam(3); a
 * `fleet:` section without host_id takes gethostname(2)'s, which must
 * follow host_id's rules (else CBSHM_ECONFIG, telling to set host_id).
 * Returns 0; CBSHM_ECONFIG (also for a file over 16 MiB, as below);
 * CBSHM_EINVAL (path or out NULL); -ENOMEM; -ENOENT; -EACCES; -EISDIR (a
 * directory, refused before reading); -ENOTDIR; -ELOOP; -EMFILE or
 * -ENFILE (out of file descriptors); or another -errno from fopen(3) or
 * read(2).
 */
CBSHM_API int cbshm_config_load_file(const char *path, struct cbshm_config **out,
                                     struct cbshm_diag *diag);

/*
 * As cbshm_config_load_file, from memory (len bytes, no NUL needed);
 * `label` (NULL: "<string>") names it in diag. Never blocks but on
 * getgrnam(3). Limits, each refused with CBSHM_ECONFIG and a position:
 * at most 16 MiB of text (the position is the first byte past it); lists
 * and mappings nested at most 64 deep (the position is the 65th); no NUL
 * in any key or value, raw or escaped ("a\0b"), which a C string would cut.
 * Returns 0, CBSHM_ECONFIG, CBSHM_EINVAL (yaml or out NULL), or -ENOMEM.
 */
CBSHM_API int cbshm_config_load_string(const char *yaml, size_t len, const char *label,
                                       struct cbshm_config **out, struct cbshm_diag *diag);

/* Releases a configuration the loader made, its breakers and fleet section
   too. Accepts NULL. */
CBSHM_API void cbshm_config_free(struct cbshm_config *cfg);

/*
 * The one validator of a whole configuration, the YAML loader's and
 * cbshm_apply()'s: capacity; mode (the owner reads and writes; no bit
 * beyond 0777, so no setuid, setgid or sticky; never writable by others;
 * writable by the group only with has_group); the segment name; each breaker's name
 * (valid, unique) and settings: every field in range, reserved fields
 * zero, a field of another policy or window type left at its default
 * ("failure_rate is for policy: rate; this breaker's policy is
 * consecutive"), and no contradiction (minimum_calls above window_size,
 * open_timeout_max below open_timeout, a time window too short for its
 * buckets); no more breakers than capacity. `defaults` is not checked:
 * breakers already hold what they inherited, and apply reads only them
 * (the YAML loader checks the `defaults` mapping itself). The same settings get the
 * same message from the YAML loader, which adds file, line and column.
 * On CBSHM_ECONFIG, diag (if not NULL) names the key ("breakers[2].mode")
 * and what is wrong; file is "" and line and column are 0.
 * Also refused: has_group other than 0 or 1, a gid of (gid_t)-1 (which
 * fchown(2) reads as "no change"), reserved fields not zero. A `fleet`
 * section (not NULL) is checked as the loader checks it ("fleet.redis",
 * "fleet.heartbeat"): redis and name given, every field terminated and
 * well formed, heartbeat_ms 1000..3600000, user only with password_file;
 * password_file is not opened (it may be for another machine).
 * Returns 0, CBSHM_ECONFIG, CBSHM_EINVAL (cfg NULL, or breakers NULL with
 * n_breakers > 0), or -ENOMEM (the set of names).
 */
CBSHM_API int cbshm_config_check(const struct cbshm_config *cfg, struct cbshm_diag *diag);

/*
 * Which segment a configuration is for, the one rule every tool follows:
 * `given` (a command line's --segment, a function's argument) when not
 * NULL or empty, else the configuration's `segment` (cfg may be NULL),
 * else $CBSHM_SEGMENT when set and not empty, else "/cbshm". Returns
 * storage of given, cfg, the environment or a static string; never NULL.
 */
CBSHM_API const char *cbshm_config_segment(const struct cbshm_config *cfg, const char *given);

enum cbshm_change_kind {
    CBSHM_CHANGE_CREATED_SEGMENT = 0,
    CBSHM_CHANGE_ADDED = 1,
    CBSHM_CHANGE_UPDATED = 2,
    CBSHM_CHANGE_REMOVED = 3,
    CBSHM_CHANGE_REPLACED_SEGMENT = 4, /* its table lock was unusable; live state dropped */
};

/* One change made (or, in a dry run, that would be made) by cbshm_apply. */
struct cbshm_change {
    enum cbshm_change_kind kind;
    const char *name;             /* breaker or segment name */
    struct cbshm_settings before; /* UPDATED, REMOVED */
    struct cbshm_settings after;  /* ADDED, UPDATED */
    uint64_t reserved[2];         /* zero: room for later versions */
};

#define CBSHM_APPLY_DRY_RUN 0x1u /* report, change nothing, create nothing */

/*
 * Makes the segment cbshm_config_segment(cfg, segment) names match cfg:
 * creates it if missing (O_CREAT|O_EXCL, cfg->mode, space reserved up
 * front, header published last) or reconciles it in place under the table
 * lock (at most 1 s): adds breakers, updates changed settings keeping live
 * state, removes breakers no longer listed. cfg is first checked by
 * cbshm_config_check(), whose diag says what is wrong when this returns
 * CBSHM_ECONFIG. It works only as the segment's owner - cfg's `owner`, or
 * with none the caller - and so never adopts a segment another user made:
 * CBSHM_EPERM when cfg names an owner other than the caller (cbctl apply,
 * run as root, switches to it first), when the existing segment is not
 * the caller's (a squat; or -EACCES where its mode lets the caller not
 * even open it), or when root would make a segment that a group other
 * than root's may write. Calls on_change (may be NULL) for each change;
 * *n_changes (may be NULL) gets their count. Racing appliers are safe:
 * exactly one creates, the others reconcile. A segment whose table lock
 * cannot be used (scribbled, or beyond repair) cannot be reconciled: it is
 * replaced - retired, so its handles move to the new one as after
 * cbshm_destroy(), unlinked, created afresh - and the changes say so:
 * CBSHM_CHANGE_REPLACED_SEGMENT (its live state is dropped), then those of
 * a creation. A dry run reports the same and changes nothing.
 * Returns 0, CBSHM_ECONFIG, CBSHM_EINVAL (cfg NULL, unknown flags),
 * CBSHM_EBADNAME (the segment name), CBSHM_EFULL (more breakers than the
 * existing segment's capacity), CBSHM_ELOCK, -ENOSPC (no room in
 * /dev/shm), -ENOMEM, another -errno from creating the segment
 * (shm_open(3): -EACCES; fchown(2) when `group` is given: -EPERM;
 * ftruncate(2), mmap(2), pthread_mutexattr_*(3)), and the codes of
 * cbshm_open() for an existing one.
 */
CBSHM_API int cbshm_apply(const struct cbshm_config *cfg, const char *segment, unsigned flags,
                          void (*on_change)(void *ctx, const struct cbshm_change *c), void *ctx,
                          unsigned *n_changes);

/* ---- Test control: not for production -------------------------------- */

/*
 * TEST ONLY, in the manner of sqlite3_test_control(): kept callable from
 * outside the library so that test suites, scenario tables and replay
 * tools can move time, and for nothing else.
 *
 * The library reads CLOCK_MONOTONIC_COARSE nanoseconds through this one
 * seam;
 * fn(ctx) replaces it, fn NULL restores the real clock. The setting is
 * process-wide and unsynchronised: set it before any thread uses the
 * library and never change it while one does. Every process attached to a
 * segment must agree on the clock (open periods and lease deadlines in the
 * segment are times on it), so a production process that calls this
 * breaks every other worker's view of the breakers it shares.
 */
typedef uint64_t (*cbshm_clock_fn)(void *ctx);
CBSHM_API void cbshm_clock_set(cbshm_clock_fn fn, void *ctx);

/*
 * The library's current time, through the seam: CLOCK_MONOTONIC_COARSE
 * nanoseconds (CLOCK_MONOTONIC at tick resolution), or what the function
 * given to cbshm_clock_set() returns. Never fails, never blocks.
 */
CBSHM_API uint64_t cbshm_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif /* CBSHM_H */
