/*
 * libFuzzer target: a scribbled segment. Each input is a list of patches
 * (offset, length, bytes) applied to the image of a valid segment; the
 * result is published as a real shared-memory segment and used the way
 * workers and cbctl use one: attach, check, list, read events, look up,
 * execute in every state, set modes, reset, reconcile. Whatever the bytes, the
 * library must answer with codes - never crash, hang or misread. The
 * table mutex's own bytes are left alone: a lock word that looks held is
 * handled by the lock's time bound, which would only slow the fuzzer.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static unsigned char *image;
static size_t image_bytes;
static char seg[64];
static uint64_t fake_now = 1000000000000ull;

static uint64_t fuzz_clock(void *ctx)
{
    (void)ctx;
    return fake_now += 7000000; /* 7 ms per read: windows roll, periods end */
}

static const char *YAML =
    "capacity: 4\nbreakers:\n"
    "  - name: a\n    failure_threshold: 2\n    open_timeout: 20ms\n    half_open_max_calls: 2\n"
    "  - name: b\n    policy: rate\n    window_size: 10\n    minimum_calls: 2\n"
    "    slow_call_duration: 5ms\n    min_failing_workers: 2\n"
    "  - name: c\n    policy: rate\n    window_type: time\n    window_duration: 100ms\n"
    "    window_buckets: 5\n    minimum_calls: 1\n    backoff_multiplier: 3\n"
    "    open_timeout_jitter: 50\n    open_timeout: 10ms\n";

static void make_image(void)
{
    struct cbshm_config *cfg;
    struct cbshm *shm;

    snprintf(seg, sizeof seg, "/cbshm-fuzz-%d", (int)getpid());
    cbshm_destroy(seg);
    if (cbshm_config_load_string(YAML, strlen(YAML), "fuzz", &cfg, NULL) != 0 ||
        cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) != 0 || cbshm_open(seg, 0, &shm) != 0)
        abort();
    image_bytes = shm->bytes;
    image = malloc(image_bytes);
    memcpy(image, shm->base, image_bytes);
    cbshm_close(shm);
    cbshm_destroy(seg);
    cbshm_config_free(cfg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_image();
    cbshm_clock_set(fuzz_clock, NULL);
    return 0;
}

static enum cbshm_outcome outcome_fn(void *arg)
{
    fake_now += 3000000;
    return *(enum cbshm_outcome *)arg;
}

static void exercise(const char *name, unsigned flags, const uint8_t *ops, size_t n)
{
    struct cbshm *shm;
    struct cbshm_breaker *b = NULL;
    struct cbshm_snapshot s;
    struct cbshm_ticket t;

    if (cbshm_open(seg, flags, &shm) != 0)
        return;
    cbshm_check(shm, NULL, NULL);
    {
        struct cbshm_event ev[8];
        uint64_t cursor = 0, lost;
        size_t got;
        for (int k = 0; k < 3; k++)
            cbshm_events_read(shm, &cursor, ev, 8, &got, &lost);
    }
    cbshm_snapshot(shm, name, &s);
    if (cbshm_breaker_get(shm, name, &b) == 0) {
        for (size_t i = 0; i < n; i++) {
            enum cbshm_outcome o = (enum cbshm_outcome)(ops[i] % 3);
            switch (ops[i] >> 4) {
            case 0:
                if (cbshm_allow(b, &t) == 0)
                    cbshm_record(b, &t, o);
                break;
            case 1:
                cbshm_set_mode(shm, name, (enum cbshm_mode)(ops[i] & 3));
                break;
            case 2:
                cbshm_reset(shm, name);
                break;
            case 3:
                if (cbshm_allow(b, &t) == 0)
                    cbshm_record_timed(b, &t, o, (uint64_t)ops[i] * 1000000u);
                break;
            default:
                cbshm_execute(b, outcome_fn, &o);
                break;
            }
        }
        cbshm_snapshot(shm, name, &s);
        cbshm_breaker_release(b);
    }
    cbshm_check(shm, NULL, NULL);
    cbshm_close(shm);
}

static int count(void *ctx, const struct cbshm_snapshot *s)
{
    (void)s;
    ++*(int *)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"a", "b", "c", "zz"};
    const size_t mutex_lo = offsetof(struct cbshm_header, lock);
    const size_t mutex_hi = mutex_lo + sizeof(pthread_mutex_t);
    unsigned char *img = malloc(image_bytes);
    struct cbshm *shm;
    size_t i = 0, ops_at;
    int fd, n = 0;

    memcpy(img, image, image_bytes);
    /* Patches: 3 bytes of offset, 1 of length, then the bytes; a 0xff
       length byte ends them and the rest are operations. */
    while (i + 4 <= size && data[i + 3] != 0xff) {
        size_t off = ((size_t)data[i] << 16 | (size_t)data[i + 1] << 8 | data[i + 2]) % image_bytes;
        size_t len = data[i + 3] % 17;
        i += 4;
        for (size_t k = 0; k < len && i < size; k++, i++, off = (off + 1) % image_bytes)
            if (off < mutex_lo || off >= mutex_hi)
                img[off] = data[i];
    }
    ops_at = i + 4 <= size ? i + 4 : size;

    fd = shm_open(seg, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || pwrite(fd, img, image_bytes, 0) != (ssize_t)image_bytes)
        abort();
    close(fd);
    free(img);

    if (cbshm_open(seg, 0, &shm) != 0)
        goto out; /* refused with a code: that is the answer */
    cbshm_foreach(shm, count, &n);
    cbshm_close(shm);
    for (size_t k = 0; k < 4; k++)
        exercise(names[((size > 0 ? data[0] : 0) + k) & 3], (k & 1) ? CBSHM_FAIL_CLOSED : 0,
                 data + ops_at, size - ops_at < 64 ? size - ops_at : 64);
    /* Reconcile the scribbled segment back to its configuration. */
    {
        struct cbshm_config *cfg;
        if (cbshm_config_load_string(YAML, strlen(YAML), "fuzz", &cfg, NULL) == 0) {
            cbshm_apply(cfg, seg, 0, NULL, NULL, NULL);
            cbshm_config_free(cfg);
        }
    }
out:
    cbshm_destroy(seg);
    shm_unlink(seg);
    return 0;
}
