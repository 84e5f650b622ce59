/* SPDX-License-Identifier: MIT */
/*
 * What every test program shares: cmocka's includes in the order cmocka
 * 1.1 needs, unique segment names, a fake clock in shared memory that
 * forked children see too, and a main() that runs one test by name so
 * ctest can register each case as its own entry.
 */
#ifndef CBSHM_TEST_HARNESS_H
#define CBSHM_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cbshm.h"

/* A fresh "/cbshm-t-<pid>-<n>" in buf (64 bytes). */
const char *t_segment_name(char *buf);

/* Maps segment `seg`'s bytes read-write, as a scribbler would; *bytes
   gets its size. Fails the test when it cannot. Unmap with munmap. */
void *t_raw_map(const char *seg, size_t *bytes);

/* What cbshm_open() says of `seg` (the handle, if any, is closed). */
int t_open_rc(const char *seg);

/* Parses yaml (fails the test on error) and applies it to `segment`. */
void t_apply(const char *segment, const char *yaml);

/* The fake clock: shared with children; cbshm_clock_set() points at it. */
void t_clock_install(uint64_t start_ns);
void t_clock_advance_ms(uint64_t ms);
uint64_t t_clock_now(void);

/* Waits for child `pid`; returns its exit status, or 128 + signal. */
int t_wait(int pid);

/* Calls for cbshm_execute(): each says how it went and, given a non-NULL
   int *, counts that it ran. */
enum cbshm_outcome t_ok_fn(void *ran);
enum cbshm_outcome t_fail_fn(void *ran);

/* Reads file descriptor fd from its start into buf (NUL-terminated, cut
   to size) and closes it. */
void t_slurp(int fd, char *buf, size_t size);

/* Runs program `path` (argv[0] "cbctl"-style: its base name) with the
   arguments in ap, ended by NULL; its stdout and stderr go into out and
   err (as t_slurp). Returns its status as t_wait does. */
int t_vexec(const char *path, char *out, size_t out_size, char *err, size_t err_size,
            const char *arg, va_list ap);

/* Runs the cases whose name matches argv[1], or all when none is given. */
int t_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests, size_t n);
#define T_MAIN(tests)                                                               \
    int main(int argc, char **argv)                                                 \
    {                                                                               \
        return t_main(argc, argv, __FILE__, tests, sizeof tests / sizeof tests[0]); \
    }

#endif
