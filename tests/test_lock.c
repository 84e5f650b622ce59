/* SPDX-License-Identifier: MIT */
/*
 * The table lock against a segment writer: every 32-bit word of glibc's
 * mutex scribbled with values chosen to reach each of its code paths
 * (0, 1, -1, the caller's own tid, another live tid, a dead owner's tid,
 * a random word, the kinds of other mutex types), then every function
 * that takes the lock called in a forked child. No child may abort,
 * crash or outwait the lock's bound; `cbctl destroy` and `cbctl apply`
 * must work on any of them. And the locker's unlock must write nowhere a
 * scribbled list link points, nor leave the mutex on its robust list.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define FUTEX_OWNER_DIED 0x40000000u
#define HANG_NS          5000000000ll /* a child still running then is hung */
#define BOUND_NS         2500000000ll /* the lock's 1 s, a cbctl start, slack */
#define PARALLEL         8            /* children at once: most of them sleep on a futex */

static const char *YAML = "capacity: 4\nbreakers:\n"
                          "  - name: a\n    failure_threshold: 1\n    open_timeout: 1h\n"
                          "  - name: b\n";

/* A forked child dies of its signals: cmocka's handlers would carry on
   with the parent's test list in it. */
static void default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};

    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* ---- The mutex's words and the values written into them -------------- */

#if defined(__GLIBC__) && defined(__x86_64__)
#define GLIBC_X86_64 1
static const char *const WORD_NAMES[] = {
    "__lock",  "__count",     "__owner",     "__nusers",    "__kind",
    "__spins", "__prev (lo)", "__prev (hi)", "__next (lo)", "__next (hi)",
};
#define N_WORDS 10
_Static_assert(sizeof(struct __pthread_mutex_s) == N_WORDS * 4, "glibc x86_64 mutex layout");
#endif

enum value {
    V_ZERO,
    V_ONE,
    V_ALL_ONES,
    V_OWN_TID,
    V_LIVE_TID,
    V_DEAD_OWNER,
    V_RANDOM,
    V_NOT_RECOVERABLE,
    V_INCONSISTENT,
    V_WAITERS,
    V_KIND_NORMAL,
    V_KIND_RECURSIVE,
    V_KIND_ERRORCHECK,
    V_KIND_PI,
    V_KIND_PP,
    N_VALUES
};

static const char *const VALUE_NAMES[N_VALUES] = {
    "0",
    "1",
    "-1",
    "the caller's tid",
    "another live tid",
    "FUTEX_OWNER_DIED | a live tid",
    "a random word",
    "0x7ffffffe (glibc: not recoverable)",
    "0x7fffffff (glibc: inconsistent)",
    "0x80000000 (FUTEX_WAITERS)",
    "a normal shared mutex's kind",
    "a robust recursive mutex's kind",
    "a robust error-checking mutex's kind",
    "a robust priority-inheriting mutex's kind",
    "a priority-protected mutex's kind",
};

#ifdef GLIBC_X86_64
/* The __kind glibc gives a process-shared mutex of these attributes. */
static uint32_t kind_of(int type, bool robust, int protocol)
{
    pthread_mutexattr_t a;
    pthread_mutex_t m;

    assert_int_equal(pthread_mutexattr_init(&a), 0);
    assert_int_equal(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED), 0);
    /* Only another type: glibc marks a mutex set to NORMAL "no elision". */
    if (type != PTHREAD_MUTEX_DEFAULT)
        assert_int_equal(pthread_mutexattr_settype(&a, type), 0);
    if (robust)
        assert_int_equal(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
    assert_int_equal(pthread_mutexattr_setprotocol(&a, protocol), 0);
    assert_int_equal(pthread_mutex_init(&m, &a), 0);
    pthread_mutexattr_destroy(&a);
    return (uint32_t)m.__data.__kind;
}

/* Value v as the process `self` writes it (the caller, for its own tid). */
static uint32_t value_of(enum value v, pid_t self, pid_t live)
{
    switch (v) {
    case V_ZERO:
        return 0;
    case V_ONE:
        return 1;
    case V_ALL_ONES:
        return 0xffffffffu;
    case V_OWN_TID:
        return (uint32_t)self;
    case V_LIVE_TID:
        return (uint32_t)live;
    case V_DEAD_OWNER:
        return FUTEX_OWNER_DIED | (uint32_t)live;
    case V_RANDOM:
        return 0x2b7e1516u; /* no flag bits set: a lock held by no thread there is */
    case V_NOT_RECOVERABLE:
        return 0x7ffffffeu;
    case V_INCONSISTENT:
        return 0x7fffffffu;
    case V_WAITERS:
        return 0x80000000u;
    case V_KIND_NORMAL:
        return kind_of(PTHREAD_MUTEX_DEFAULT, false, PTHREAD_PRIO_NONE);
    case V_KIND_RECURSIVE:
        return kind_of(PTHREAD_MUTEX_RECURSIVE, true, PTHREAD_PRIO_NONE);
    case V_KIND_ERRORCHECK:
        return kind_of(PTHREAD_MUTEX_ERRORCHECK, true, PTHREAD_PRIO_NONE);
    case V_KIND_PI:
        return kind_of(PTHREAD_MUTEX_DEFAULT, true, PTHREAD_PRIO_INHERIT);
    case V_KIND_PP:
        return kind_of(PTHREAD_MUTEX_DEFAULT, false, PTHREAD_PRIO_PROTECT);
    case N_VALUES:
        break;
    }
    return 0;
}

static uint32_t *lock_word(struct cbshm_header *h, int word)
{
    return (uint32_t *)(void *)&h->lock + word;
}
#endif

/* ---- The callers ------------------------------------------------------ */

enum caller {
    C_LOCK,
    C_LOCK_HOT,
    C_TRIP,
    C_SNAPSHOT,
    C_RESET,
    C_CHECK,
    C_CBCTL_LIST,
    C_CBCTL_DESTROY,
    C_CBCTL_APPLY,
    N_CALLERS
};

static const char *const CALLER_NAMES[N_CALLERS] = {
    "cbshm__lock", "cbshm__lock_hot", "a trip in cbshm_execute", "cbshm_snapshot", "cbshm_reset",
    "cbshm_check", "cbctl list",      "cbctl destroy",           "cbctl apply",
};

/* What a child tells the parent through shared memory. */
struct outcome {
    int rc;        /* its code (for a trip, the breaker's error) */
    bool bad_kind; /* the kind word is no longer a robust shared mutex's */
};

/* A caller's code is one the library defines for a lock it cannot take. */
static bool lock_code(int rc)
{
    return rc == 0 || rc == CBSHM_ELOCK || rc == CBSHM_ECORRUPT;
}

static char yaml_path[64];

static void write_yaml_file(void)
{
    FILE *f;

    snprintf(yaml_path, sizeof yaml_path, "/tmp/cbshm-lock-%d.yaml", (int)getpid());
    assert_non_null(f = fopen(yaml_path, "w"));
    fputs(YAML, f);
    fclose(f);
}

#ifdef GLIBC_X86_64
#define W_LOCK  0
#define W_OWNER 2
#define W_KIND  4

/* Word `word` gets value `v`; with `kind` other than N_VALUES the kind
   word gets that value too, so a foreign kind meets each lock state. */
struct scribble {
    int word;
    enum value v;
    enum value kind;
};

/*
 * In a child: attach, scribble (its own tid is its pid: the child has
 * one thread, and exec keeps it), call `c`.
 */
static void child(const char *seg, const struct scribble *s, enum caller c, pid_t live,
                  uint32_t good_kind, struct outcome *out)
{
    struct cbshm_breaker *b = NULL;
    struct cbshm_snapshot snap;
    struct cbshm *shm = NULL;
    struct cbshm_header *h;
    size_t bytes;
    int devnull = open("/dev/null", O_WRONLY);

    default_signals();
    dup2(devnull, 1);
    dup2(devnull, 2);
    if (c < C_CBCTL_LIST) {
        if (cbshm_open(seg, 0, &shm) != 0 || cbshm_breaker_get(shm, "a", &b) != 0)
            _exit(90);
    }
    h = t_raw_map(seg, &bytes);
    *lock_word(h, s->word) = value_of(s->v, getpid(), live);
    if (s->kind != N_VALUES)
        *lock_word(h, W_KIND) = value_of(s->kind, getpid(), live);
    out->bad_kind = *lock_word(h, W_KIND) != good_kind;
    switch (c) {
    case C_LOCK:
    case C_LOCK_HOT:
        out->rc = c == C_LOCK ? cbshm__lock(shm) : cbshm__lock_hot(shm);
        if (out->rc == 0)
            cbshm__unlock(shm);
        break;
    case C_TRIP:
        if (cbshm_execute(b, t_fail_fn, NULL) != 0)
            _exit(91); /* the call itself must be made and answered */
        out->rc = cbshm_breaker_error(b);
        break;
    case C_SNAPSHOT:
        out->rc = cbshm_snapshot(shm, "a", &snap);
        break;
    case C_RESET:
        out->rc = cbshm_reset(shm, "a");
        break;
    case C_CHECK:
        out->rc = cbshm_check(shm, NULL, NULL);
        break;
    case C_CBCTL_LIST:
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "list", (char *)NULL);
        _exit(92);
    case C_CBCTL_DESTROY:
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "destroy", (char *)NULL);
        _exit(92);
    case C_CBCTL_APPLY:
        execl(CBCTL_PATH, "cbctl", "--segment", seg, "apply", "-f", yaml_path, (char *)NULL);
        _exit(92);
    case N_CALLERS:
        break;
    }
    /* Once more: a lock the first call found bad stays bad, not worse. */
    if (c == C_LOCK && lock_code(out->rc) && cbshm__lock(shm) == 0)
        cbshm__unlock(shm);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    _exit(0);
}

struct job {
    char seg[64];
    struct scribble s;
    enum caller c;
    pid_t pid;
    int64_t started_ns, took_ns;
    int status; /* waitpid's; -1 while running, -2 when killed as hung */
};

/* The segment works: it opens and cbshm_check finds nothing wrong. */
static bool healthy(const char *seg)
{
    struct cbshm *shm;
    int problems;

    if (cbshm_open(seg, 0, &shm) != 0)
        return false;
    problems = cbshm_check(shm, NULL, NULL);
    cbshm_close(shm);
    return problems == 0;
}

/* Everything wrong with a finished job, or NULL when nothing is. */
static const char *verdict(const struct job *j, const struct outcome *o, char *buf, size_t size)
{
    bool cbctl = j->c >= C_CBCTL_LIST;
    int code = WIFEXITED(j->status) ? WEXITSTATUS(j->status) : -1;

    if (j->status == -2)
        return "hung (killed after 5 s)";
    if (WIFSIGNALED(j->status)) {
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(j->status),
                 strsignal(WTERMSIG(j->status)));
        return buf;
    }
    if (j->took_ns > BOUND_NS) {
        snprintf(buf, size, "took %.2f s", (double)j->took_ns / 1e9);
        return buf;
    }
    if (!cbctl && code != 0) {
        snprintf(buf, size, "child exited %d", code);
        return buf;
    }
    if (j->c == C_CHECK) {
        if ((o->rc < 0 && o->rc != CBSHM_ELOCK) || (o->bad_kind && o->rc < 1)) {
            snprintf(buf, size, "check returned %d", o->rc);
            return buf;
        }
    } else if (!cbctl && (!lock_code(o->rc) || (o->bad_kind && o->rc != CBSHM_ECORRUPT))) {
        /* A kind not ours is known bad before the lock is tried. */
        snprintf(buf, size, "returned %d (%s)%s", o->rc, cbshm_strerror(o->rc),
                 o->bad_kind ? ", not CBSHM_ECORRUPT" : "");
        return buf;
    }
    if (j->c == C_CBCTL_DESTROY && (code != 0 || t_open_rc(j->seg) != CBSHM_ENOSEG)) {
        snprintf(buf, size, "exited %d, segment %s", code,
                 t_open_rc(j->seg) == CBSHM_ENOSEG ? "gone" : "still there");
        return buf;
    }
    if (j->c == C_CBCTL_LIST && code != 0 && code != 1) {
        snprintf(buf, size, "exited %d", code);
        return buf;
    }
    /* Apply gives up only on a lock that looks held; otherwise it
       reconciles or replaces, and leaves a segment that works. */
    if (j->c == C_CBCTL_APPLY) {
        if (code != 0 && (code != 1 || j->s.word != W_LOCK || j->s.kind != N_VALUES)) {
            snprintf(buf, size, "exited %d", code);
            return buf;
        }
        if (code == 0 && !healthy(j->seg))
            return "exited 0, and left a segment that is not healthy";
    }
    return NULL;
}

static void describe(const struct scribble *s, char *buf, size_t size)
{
    if (s->kind == N_VALUES)
        snprintf(buf, size, "%s = %s", WORD_NAMES[s->word], VALUE_NAMES[s->v]);
    else
        snprintf(buf, size, "__kind = %s, %s = %s", VALUE_NAMES[s->kind], WORD_NAMES[s->word],
                 VALUE_NAMES[s->v]);
}

/*
 * Runs every scribble in every caller, PARALLEL children at a time, each
 * on a fresh segment, and fails naming each combination that went wrong.
 */
static void run_scribbles(const struct scribble *list, size_t n_scribbles,
                          const enum caller *callers, size_t n_callers)
{
    const size_t n = n_scribbles * n_callers;
    uint32_t good_kind = kind_of(PTHREAD_MUTEX_DEFAULT, true, PTHREAD_PRIO_NONE);
    size_t next = 0, done = 0, running = 0, bad = 0;
    struct outcome *out;
    struct job *jobs;
    char why[128], what[160];

    write_yaml_file();
    assert_non_null(jobs = calloc(n, sizeof *jobs));
    out = mmap(NULL, n * sizeof *out, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(out != MAP_FAILED);
    while (done < n) {
        while (running < PARALLEL && next < n) {
            struct job *j = &jobs[next];
            j->s = list[next / n_callers];
            j->c = callers[next % n_callers];
            j->status = -1;
            t_apply(t_segment_name(j->seg), YAML);
            j->started_ns = now_ns();
            if ((j->pid = fork()) == 0)
                child(j->seg, &j->s, j->c, getppid(), good_kind, &out[next]);
            assert_true(j->pid > 0);
            next++;
            running++;
        }
        usleep(2000);
        for (size_t i = 0; i < next; i++) {
            struct job *j = &jobs[i];
            int status;
            if (j->status != -1)
                continue;
            if (waitpid(j->pid, &status, WNOHANG) == j->pid) {
                j->status = status;
            } else if (now_ns() - j->started_ns > HANG_NS) {
                kill(j->pid, SIGKILL);
                waitpid(j->pid, &status, 0);
                j->status = -2;
            } else {
                continue;
            }
            j->took_ns = now_ns() - j->started_ns;
            running--;
            done++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = verdict(&jobs[i], &out[i], why, sizeof why);
        if (v != NULL) {
            describe(&jobs[i].s, what, sizeof what);
            print_message("%s: %s: %s\n", what, CALLER_NAMES[jobs[i].c], v);
            bad++;
        }
        cbshm_destroy(jobs[i].seg);
    }
    unlink(yaml_path);
    munmap(out, n * sizeof *out);
    free(jobs);
    if (bad > 0)
        fail_msg("%zu of %zu scribbled calls went wrong", bad, n);
}

static const enum caller EVERY_CALLER[] = {
    C_LOCK,  C_LOCK_HOT,   C_TRIP,          C_SNAPSHOT,    C_RESET,
    C_CHECK, C_CBCTL_LIST, C_CBCTL_DESTROY, C_CBCTL_APPLY,
};

/* Every value in word `word`, the kind left as it is. */
static void scribble_word(int word)
{
    struct scribble list[N_VALUES];

    for (int v = 0; v < N_VALUES; v++)
        list[v] = (struct scribble){word, (enum value)v, N_VALUES};
    run_scribbles(list, N_VALUES, EVERY_CALLER, N_CALLERS);
}

/* Every other mutex type's kind, with every value in word `word`. */
static void scribble_kind_and(int word)
{
    static const enum caller callers[] = {C_LOCK, C_TRIP, C_CHECK, C_CBCTL_DESTROY, C_CBCTL_APPLY};
    enum { N_KINDS = V_KIND_PP - V_KIND_NORMAL + 1 };
    struct scribble list[N_KINDS * N_VALUES];

    for (int k = 0; k < N_KINDS; k++)
        for (int v = 0; v < N_VALUES; v++)
            list[k * N_VALUES + v] =
                (struct scribble){word, (enum value)v, (enum value)(V_KIND_NORMAL + k)};
    run_scribbles(list, N_KINDS * N_VALUES, callers, sizeof callers / sizeof callers[0]);
}
#endif

#if !defined(GLIBC_X86_64) || defined(__SANITIZE_THREAD__)
#define SKIP_UNLESS_GLIBC() skip() /* glibc x86_64's layout; tsan's lock waits unbounded */
#else
#define SKIP_UNLESS_GLIBC() ((void)0)
#endif

static void test_scribbled_lock_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(0);
}

static void test_scribbled_count_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(1);
}

static void test_scribbled_owner_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(2);
}

static void test_scribbled_nusers_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(3);
}

static void test_scribbled_kind_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(4);
}

static void test_scribbled_spins_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(5);
}

static void test_scribbled_list_prev_words_are_errors_not_crashes(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(6);
    scribble_word(7);
}

static void test_scribbled_list_next_words_are_errors_not_crashes(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_word(8);
    scribble_word(9);
}

static void test_a_foreign_kind_with_any_lock_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_kind_and(W_LOCK);
}

static void test_a_foreign_kind_with_any_owner_word_is_an_error_not_a_crash(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
    scribble_kind_and(W_OWNER);
}

/* ---- Replacing a segment whose lock is unusable ----------------------- */

struct changes {
    int kinds[16];
    int n;
};

static void collect(void *ctx, const struct cbshm_change *c)
{
    struct changes *ch = ctx;

    if (ch->n < 16)
        ch->kinds[ch->n++] = (int)c->kind;
}

static void apply_collect(const char *seg, unsigned flags, struct changes *ch)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    memset(ch, 0, sizeof *ch);
    assert_int_equal(cbshm_config_load_string(YAML, strlen(YAML), "test.yaml", &cfg, &d), 0);
    assert_int_equal(cbshm_apply(cfg, seg, flags, collect, ch, NULL), 0);
    cbshm_config_free(cfg);
}

static void count_problem(void *ctx, const char *message)
{
    int *n = ctx;

    if (strstr(message, "table lock is unusable") != NULL)
        (*n)++;
}

/*
 * The lock's kind scribbled: everything that takes the lock says
 * CBSHM_ECORRUPT at once, check names it, a worker fails open, a dry-run
 * apply says it would replace the segment and changes nothing, and apply
 * replaces it - saying so - and the worker moves to the new one.
 * Runs under tsan too: the kind is refused before any lock call.
 */
static void test_apply_replaces_a_segment_whose_lock_kind_was_scribbled(void **state)
{
    struct cbshm_breaker *b, *fresh_b = NULL;
    struct cbshm_snapshot s;
    struct cbshm *shm, *fresh;
    struct changes ch;
    char seg[64];
    int named = 0;

    (void)state;
#ifndef __GLIBC__
    skip(); /* the scribble is glibc's layout */
#endif
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    shm->hdr->lock.__data.__kind ^= 0x40; /* a priority-protected kind, say */
    assert_int_equal(cbshm_snapshot(shm, "a", &s), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_breaker_get(shm, "b", &fresh_b), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_check(shm, count_problem, &named), 1);
    assert_int_equal(named, 1);
    /* The trip cannot be made; the call was, and says why. */
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_breaker_error(b), CBSHM_ECORRUPT);

    apply_collect(seg, CBSHM_APPLY_DRY_RUN, &ch);
    assert_int_equal(ch.n, 4);
    assert_int_equal(ch.kinds[0], CBSHM_CHANGE_REPLACED_SEGMENT);
    assert_int_equal(ch.kinds[1], CBSHM_CHANGE_CREATED_SEGMENT);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), CBSHM_ECORRUPT); /* unchanged */

    apply_collect(seg, 0, &ch);
    assert_int_equal(ch.n, 4);
    assert_int_equal(ch.kinds[0], CBSHM_CHANGE_REPLACED_SEGMENT);
    assert_int_equal(ch.kinds[1], CBSHM_CHANGE_CREATED_SEGMENT);
    assert_int_equal(ch.kinds[2], CBSHM_CHANGE_ADDED);
    assert_int_equal(ch.kinds[3], CBSHM_CHANGE_ADDED);
    assert_int_equal(cbshm_open(seg, 0, &fresh), 0);
    assert_int_equal(cbshm_check(fresh, NULL, NULL), 0);
    usleep(300 * 1000); /* past the handle's look-again interval */
    assert_int_equal(cbshm_execute(b, t_fail_fn, NULL), 0);
    assert_int_equal(cbshm_breaker_error(b), 0);
    assert_int_equal(cbshm_snapshot(fresh, "a", &s), 0);
    assert_int_equal(s.state, CBSHM_STATE_OPEN); /* the trip went to the new one */
    apply_collect(seg, 0, &ch);
    assert_int_equal(ch.n, 0); /* and stays: nothing more to replace */
    cbshm_close(fresh);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* A mutex its owner left unrecoverable is as unusable as a scribbled one. */
static void test_apply_replaces_a_segment_whose_lock_is_not_recoverable(void **state)
{
    struct cbshm_snapshot s;
    struct cbshm *shm;
    struct changes ch;
    char seg[64];

    (void)state;
#if !defined(__GLIBC__) || defined(__SANITIZE_THREAD__)
    skip(); /* glibc's layout; tsan's runtime takes the lock its own way */
#endif
    t_apply(t_segment_name(seg), YAML);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    shm->hdr->lock.__data.__owner = 0x7ffffffe; /* glibc 2.36: PTHREAD_MUTEX_NOTRECOVERABLE */
    assert_int_equal(cbshm_snapshot(shm, "a", &s), CBSHM_ECORRUPT);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 1);
    apply_collect(seg, 0, &ch);
    assert_int_equal(ch.kinds[0], CBSHM_CHANGE_REPLACED_SEGMENT);
    cbshm_close(shm);
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    cbshm_close(shm);
    assert_int_equal(cbshm_destroy(seg), 0);
}

/* What cbctl prints: the operator reads that state was dropped. */
static void test_cbctl_apply_says_it_replaces_a_segment_with_an_unusable_lock(void **state)
{
    struct cbshm_header *h;
    char seg[64], cmd[512], line[512];
    size_t bytes;
    int replace_lines = 0;
    FILE *p;

    (void)state;
#ifndef __GLIBC__
    skip(); /* the scribble is glibc's layout */
#endif
    write_yaml_file();
    t_apply(t_segment_name(seg), YAML);
    h = t_raw_map(seg, &bytes);
    h->lock.__data.__kind = 0;
    for (int dry = 1; dry >= 0; dry--) {
        snprintf(cmd, sizeof cmd, "%s --segment %s apply -f %s%s", CBCTL_PATH, seg, yaml_path,
                 dry ? " --dry-run" : "");
        assert_non_null(p = popen(cmd, "r"));
        while (fgets(line, sizeof line, p) != NULL)
            if (strstr(line, dry ? "would replace segment " : "replace segment ") == line &&
                strstr(line, "its table lock is unusable") != NULL &&
                strstr(line, "state and counts start over") != NULL)
                replace_lines++;
        assert_int_equal(pclose(p), 0);
    }
    assert_int_equal(replace_lines, 2);
    munmap(h, bytes);
    snprintf(cmd, sizeof cmd, "%s --segment %s check >/dev/null", CBCTL_PATH, seg);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s --segment %s destroy >/dev/null", CBCTL_PATH, seg);
    assert_int_equal(system(cmd), 0);
    unlink(yaml_path);
}

/* ---- Scribbles while the lock is held ---------------------------------- */

#ifdef GLIBC_X86_64
/* A robust-list entry as glibc links them: the links point at __next. */
struct bait {
    void *prev, *next;
};

/*
 * In a child, so a crash is a failed test, not a lost runner: while it
 * holds the lock, the segment's writer points the mutex's list links at
 * memory of the locker's (here a struct of its own). glibc's unlock
 * would write there; ours writes nothing there, and the thread's robust
 * list stays whole: another robust mutex locks and unlocks, and the lock
 * is taken again.
 */
static int links_child(const char *seg)
{
    static struct bait bait = {(void *)0x1111, (void *)0x2222};
    struct cbshm *shm;
    pthread_mutex_t mine;

    if (cbshm_open(seg, 0, &shm) != 0 || cbshm__lock(shm) != 0)
        return 10;
    shm->hdr->lock.__data.__list.__next = (void *)&bait.next;
    shm->hdr->lock.__data.__list.__prev = (void *)&bait.next;
    cbshm__unlock(shm);
    if (bait.prev != (void *)0x1111 || bait.next != (void *)0x2222)
        return 11; /* the unlock wrote where the segment said */
    if (cbshm__lock_init(&mine) != 0 || pthread_mutex_lock(&mine) != 0 ||
        pthread_mutex_unlock(&mine) != 0)
        return 12;
    if (cbshm__lock(shm) != 0)
        return 13;
    cbshm__unlock(shm);
    cbshm_close(shm);
    return 0;
}

/*
 * While the child holds the lock, the writer changes word `word` to
 * `value`. The unlock must still take the mutex off the thread's robust
 * list (else, once the segment is unmapped, the next robust mutex the
 * thread locks writes into the hole: SIGSEGV), and leave a lock that
 * works.
 */
static int held_child(const char *seg, const char *other, int word, uint32_t value)
{
    struct cbshm *shm, *second;

    if (cbshm_open(seg, 0, &shm) != 0 || cbshm_open(other, 0, &second) != 0 ||
        cbshm__lock(shm) != 0)
        return 10;
    *lock_word(shm->hdr, word) = value;
    cbshm__unlock(shm);
    if (cbshm__lock(shm) != 0)
        return 11; /* the lock no longer works */
    cbshm__unlock(shm);
    cbshm_close(shm);
    if (cbshm__lock(second) != 0)
        return 12;
    cbshm__unlock(second);
    cbshm_close(second);
    return 0;
}

/* Runs fn in a child; false (and says why) when it failed. */
static bool run_child(int (*fn)(const char *, const char *, int, uint32_t), const char *what,
                      int word, uint32_t value)
{
    char seg[64], other[64];
    int pid, rc;

    t_apply(t_segment_name(seg), YAML);
    t_apply(t_segment_name(other), YAML);
    if ((pid = fork()) == 0) {
        default_signals();
        _exit(fn(seg, other, word, value));
    }
    rc = t_wait(pid);
    cbshm_destroy(seg);
    cbshm_destroy(other);
    if (rc != 0)
        print_message("%s while the lock was held: the child %s %d\n", what,
                      rc > 128 ? "was killed by signal" : "exited", rc > 128 ? rc - 128 : rc);
    return rc == 0;
}

static int links_adapter(const char *seg, const char *other, int word, uint32_t value)
{
    (void)other;
    (void)word;
    (void)value;
    return links_child(seg);
}
#endif

static void test_unlock_writes_nowhere_a_scribbled_list_link_points(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
#ifdef GLIBC_X86_64
    if (!run_child(links_adapter, "the list links pointed into the locker", 0, 0))
        fail();
#endif
}

static void test_a_lock_scribbled_while_held_still_unlocks_cleanly(void **state)
{
    (void)state;
    SKIP_UNLESS_GLIBC();
#ifdef GLIBC_X86_64
    int failed = 0;

    failed += !run_child(held_child, "__lock = 0", W_LOCK, 0);
    failed += !run_child(held_child, "__lock = another live tid", W_LOCK, (uint32_t)getpid());
    failed += !run_child(held_child, "__kind = a normal shared mutex's", W_KIND,
                         value_of(V_KIND_NORMAL, 0, 0));
    failed += !run_child(held_child, "__kind = a priority-protected mutex's", W_KIND,
                         value_of(V_KIND_PP, 0, 0));
    failed += !run_child(held_child, "__owner = glibc's inconsistent", W_OWNER,
                         value_of(V_INCONSISTENT, 0, 0));
    if (failed > 0)
        fail_msg("%d of 5 scribbles while the lock was held went wrong", failed);
#endif
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_scribbled_lock_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_scribbled_count_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_scribbled_owner_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_scribbled_nusers_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_scribbled_kind_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_scribbled_spins_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_scribbled_list_prev_words_are_errors_not_crashes),
    cmocka_unit_test(test_scribbled_list_next_words_are_errors_not_crashes),
    cmocka_unit_test(test_a_foreign_kind_with_any_lock_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_a_foreign_kind_with_any_owner_word_is_an_error_not_a_crash),
    cmocka_unit_test(test_apply_replaces_a_segment_whose_lock_kind_was_scribbled),
    cmocka_unit_test(test_apply_replaces_a_segment_whose_lock_is_not_recoverable),
    cmocka_unit_test(test_cbctl_apply_says_it_replaces_a_segment_with_an_unusable_lock),
    cmocka_unit_test(test_unlock_writes_nowhere_a_scribbled_list_link_points),
    cmocka_unit_test(test_a_lock_scribbled_while_held_still_unlocks_cleanly),
};

T_MAIN(tests)
