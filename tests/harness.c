/* SPDX-License-Identifier: MIT */
/* The shared test helpers declared in harness.h. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static _Atomic uint64_t *fake_now;

void *t_raw_map(const char *seg, size_t *bytes)
{
    int fd = shm_open(seg, O_RDWR, 0);
    struct stat st;
    void *p;

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(p != MAP_FAILED);
    *bytes = (size_t)st.st_size;
    return p;
}

int t_open_rc(const char *seg)
{
    struct cbshm *shm = NULL;
    int rc = cbshm_open(seg, 0, &shm);

    cbshm_close(shm);
    return rc;
}

const char *t_segment_name(char *buf)
{
    static unsigned n;
    snprintf(buf, 64, "/cbshm-t-%d-%u", (int)getpid(), n++);
    /* A process that had our pid before may have died leaving this name
       behind; no live process can be using it. */
    shm_unlink(buf);
    return buf;
}

void t_apply(const char *segment, const char *yaml)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    int rc = cbshm_config_load_string(yaml, strlen(yaml), "test.yaml", &cfg, &d);

    if (rc != 0)
        fprintf(stderr, "%s:%u:%u: %s: %s\n", d.file, d.line, d.column, d.key, d.message);
    assert_int_equal(rc, 0);
    assert_int_equal(cbshm_apply(cfg, segment, 0, NULL, NULL, NULL), 0);
    cbshm_config_free(cfg);
}

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return *fake_now;
}

void t_clock_install(uint64_t start_ns)
{
    if (fake_now == NULL) {
        fake_now =
            mmap(NULL, sizeof *fake_now, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(fake_now != MAP_FAILED);
    }
    *fake_now = start_ns;
    cbshm_clock_set(fake_clock, NULL);
}

void t_clock_advance_ms(uint64_t ms)
{
    *fake_now += ms * 1000000u;
}

uint64_t t_clock_now(void)
{
    return *fake_now;
}

enum cbshm_outcome t_ok_fn(void *ran)
{
    if (ran != NULL)
        ++*(int *)ran;
    return CBSHM_SUCCESS;
}

enum cbshm_outcome t_fail_fn(void *ran)
{
    if (ran != NULL)
        ++*(int *)ran;
    return CBSHM_FAILURE;
}

int t_wait(int pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int t_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests, size_t n)
{
    if (argc > 1) {
        size_t i;
        /* A name that matches no case must fail, not pass with 0 run. */
        for (i = 0; i < n && strcmp(tests[i].name, argv[1]) != 0; i++)
            ;
        if (i == n) {
            fprintf(stderr, "%s: no test named %s\n", group, argv[1]);
            return 1;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

void t_slurp(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

int t_vexec(const char *path, char *out, size_t out_size, char *err, size_t err_size,
            const char *arg, va_list ap)
{
    const char *argv[32];
    const char *base = strrchr(path, '/');
    int n = 1, fo = memfd_create("out", 0), fe = memfd_create("err", 0), pid, status;

    argv[0] = base != NULL ? base + 1 : path;
    for (const char *a = arg; a != NULL && n < 31; a = va_arg(ap, const char *))
        argv[n++] = a;
    argv[n] = NULL;
    assert_true(fo >= 0 && fe >= 0);
    if ((pid = fork()) == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    status = t_wait(pid);
    t_slurp(fo, out, out_size);
    t_slurp(fe, err, err_size);
    return status;
}
