/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a scribbled segment. Each input is a list of patches
 * (offset, length, bytes) applied to the image of a valid segment; the
 * result is attached in memory (cbshm__attach_image: the checks of a real
 * attach, without a shm_open and mmap per input) and used the way workers
 * and cbctl use a segment: attach, check, list, read events, look up,
 * execute in every state, set modes, reset, reconcile. Whatever the bytes,
 * the library must answer with codes - never crash, hang or misread. The
 * table mutex's own bytes are left alone: a lock word that looks held is
 * handled by the lock's time bound, which would only slow the fuzzer.
 *
 * What the image does not exercise is what goes through the segment's
 * name: the shm_open, fstat and owner checks of an attach, and apply's
 * create-or-replace, which tests/test_segment.c and tests/test_crash.c
 * cover.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static unsigned char *image;   /* the valid segment, as apply made it */
static unsigned char *scratch; /* this input's scribbled copy */
static size_t image_bytes;
static struct cbshm_config *config;
static uint64_t fake_now = 1000000000000ull;
static uint64_t image_now; /* the clock when the image was made */

static uint64_t fuzz_clock(void *ctx)
{
    (void)ctx;
    return fake_now += 7000000; /* 7 ms per read: windows roll, periods end */
}

static const char *YAML =
    "capacity: 5\nbreakers:\n"
    "  - name: a\n    failure_threshold: 2\n    open_timeout: 20ms\n    half_open_max_calls: 2\n"
    "  - name: b\n    policy: rate\n    window_size: 10\n    minimum_calls: 2\n"
    "    slow_call_duration: 5ms\n    min_failing_workers: 2\n"
    "  - name: c\n    policy: rate\n    window_type: time\n    window_duration: 100ms\n"
    "    window_buckets: 5\n    minimum_calls: 1\n    backoff_multiplier: 3\n"
    "    open_timeout_jitter: 50\n    open_timeout: 10ms\n"
    "  - name: d\n    max_concurrent_calls: 2\n    max_wait: 5ms\n    slot_timeout: 50ms\n"
    "    failure_threshold: 3\n";

/* The one real segment this target makes: apply publishes it, and its
   bytes become the image every input starts from. */
static void make_image(void)
{
    struct cbshm *shm;
    char seg[64];

    snprintf(seg, sizeof seg, "/cbshm-fuzz-%d", (int)getpid());
    cbshm_destroy(seg);
    if (cbshm_config_load_string(YAML, strlen(YAML), "fuzz", &config, NULL) != 0 ||
        cbshm_apply(config, seg, 0, NULL, NULL, NULL) != 0 || cbshm_open(seg, 0, &shm) != 0)
        abort();
    if (cbshm_config_check(config, NULL) != 0)
        abort(); /* what apply checked, and cbshm__reconcile_view does not */
    image_bytes = shm->bytes;
    /* Page-aligned like a mapping, and exactly as long: ASan sees a read
       past the end. */
    image = aligned_alloc(4096, image_bytes);
    scratch = aligned_alloc(4096, image_bytes);
    if (image == NULL || scratch == NULL)
        abort();
    memcpy(image, shm->base, image_bytes);
    cbshm_close(shm);
    cbshm_destroy(seg);
    image_now = fake_now;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cbshm_clock_set(fuzz_clock, NULL);
    make_image();
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

    if (cbshm__attach_image(scratch, image_bytes, flags, &shm) != 0)
        return;
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

static const char *names[] = {"a", "b", "c", "d", "zz"};

/*
 * A read-only view of the scribbled image, as a group member's cbctl has
 * one: the image is made read-only for the while, so a single write by
 * the library is a crash the fuzzer reports. change_seq is made even
 * first: odd, the view would wait out the lock's 1 s bound (it is right to;
 * it would only slow the fuzzer).
 */
static void observe(void)
{
    struct cbshm_header *h = (struct cbshm_header *)scratch;
    struct cbshm_snapshot snap;
    struct cbshm_event ev[8];
    struct cbshm *shm;
    uint64_t cursor = 0;
    size_t got;
    int n = 0;

    atomic_store(&h->change_seq, atomic_load(&h->change_seq) & ~1ull);
    if (mprotect(scratch, image_bytes, PROT_READ) != 0)
        abort();
    if (cbshm__attach_image(scratch, image_bytes, CBSHM_READ_ONLY, &shm) == 0) {
        cbshm_check(shm, NULL, NULL);
        cbshm_foreach(shm, count, &n);
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            cbshm_snapshot(shm, names[k], &snap);
        cbshm_events_read(shm, &cursor, ev, 8, &got, NULL);
        cbshm_close(shm);
    }
    if (mprotect(scratch, image_bytes, PROT_READ | PROT_WRITE) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t mutex_lo = offsetof(struct cbshm_header, lock);
    const size_t mutex_hi = mutex_lo + sizeof(pthread_mutex_t);
    struct cbshm *shm;
    size_t i = 0, ops_at;
    int n = 0;

    /* Each input starts from the same image and the same time, so that a
       crash reproduces from its input alone. */
    memcpy(scratch, image, image_bytes);
    fake_now = image_now;
    /* Patches: 3 bytes of offset, 1 of length, then the bytes; a 0xff
       length byte ends them and the rest are operations. */
    while (i + 4 <= size && data[i + 3] != 0xff) {
        size_t off = ((size_t)data[i] << 16 | (size_t)data[i + 1] << 8 | data[i + 2]) % image_bytes;
        size_t len = data[i + 3] % 17;
        i += 4;
        for (size_t k = 0; k < len && i < size; k++, i++, off = (off + 1) % image_bytes)
            if (off < mutex_lo || off >= mutex_hi)
                scratch[off] = data[i];
    }
    ops_at = i + 4 <= size ? i + 4 : size;

    if (cbshm__attach_image(scratch, image_bytes, 0, &shm) != 0)
        return 0; /* refused with a code: that is the answer */
    /* The segment as found; each exercise checks it again after its
       operations, which is all that can change it. */
    cbshm_check(shm, NULL, NULL);
    cbshm_foreach(shm, count, &n);
    cbshm_close(shm);
    observe();
    /* Two breakers in turn, picked by the first byte (the second sees
       what the first left), the first with and the second without
       CBSHM_FAIL_CLOSED. */
    for (size_t k = 0; k < 2; k++)
        exercise(names[((size > 0 ? data[0] : 0) + k) % (sizeof names / sizeof names[0])],
                 k == 1 ? CBSHM_FAIL_CLOSED : 0, data + ops_at,
                 size - ops_at < 64 ? size - ops_at : 64);
    /* Reconcile the scribbled segment back to its configuration: first
       what apply --dry-run would report, then the change itself. */
    if (cbshm__attach_image(scratch, image_bytes, 0, &shm) == 0) {
        cbshm__reconcile_view(shm, config, true, NULL);
        cbshm__reconcile_view(shm, config, false, NULL);
        cbshm_close(shm);
    }
    return 0;
}
