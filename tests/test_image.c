/* SPDX-License-Identifier: MIT */
/*
 * The in-memory image seam (cbshm__attach_image) that the segment fuzz
 * target uses: it must refuse exactly what cbshm_open refuses, leave the
 * memory to its caller, never mistake its missing name for a removed
 * segment, and reconcile like cbshm_apply.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "internal.h"

static const char *YAML = "capacity: 4\nbreakers:\n  - name: a\n    failure_threshold: 2\n"
                          "  - name: b\n";

/* An anonymous mapping holding a copy of segment seg's bytes. */
static void *image_of(const char *seg, size_t *bytes)
{
    void *raw = t_raw_map(seg, bytes);
    void *img = mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    assert_true(img != MAP_FAILED);
    memcpy(img, raw, *bytes);
    munmap(raw, *bytes);
    return img;
}

static int image_rc(void *img, size_t bytes)
{
    struct cbshm *shm;
    int rc = cbshm__attach_image(img, bytes, 0, &shm);

    if (rc == 0)
        cbshm_close(shm);
    return rc;
}

/* Each scribble gets the same answer from cbshm_open on the segment and
   from the seam on a copy of its bytes. */
static void test_image_attach_refuses_what_open_refuses_with_the_same_code(void **state)
{
    char seg[64];
    size_t bytes;
    struct cbshm_header *h = NULL;
    struct cbshm_header *img;
    struct cbshm *shm;
    struct {
        size_t offset, size;
        uint64_t value;
        int rc;
    } cases[] = {
        {offsetof(struct cbshm_header, magic), sizeof h->magic, 0, CBSHM_EUNINIT},
        {offsetof(struct cbshm_header, magic), sizeof h->magic, 0x1234, CBSHM_EBADMAGIC},
        {offsetof(struct cbshm_header, layout_version), sizeof h->layout_version,
         CBSHM_LAYOUT_VERSION + 1, CBSHM_EVERSION},
        {offsetof(struct cbshm_header, abi_fingerprint), sizeof h->abi_fingerprint, 1, CBSHM_EABI},
        {offsetof(struct cbshm_header, capacity), sizeof h->capacity, 0, CBSHM_ECORRUPT},
        {offsetof(struct cbshm_header, events_count), sizeof h->events_count, 7, CBSHM_ECORRUPT},
        {offsetof(struct cbshm_header, pidns_inode), sizeof h->pidns_inode, 1, CBSHM_EPIDNS},
    };

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    h = t_raw_map(seg, &bytes);
    img = image_of(seg, &bytes);
    assert_int_equal(image_rc(img, bytes), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char saved[8];
        memcpy(saved, (char *)h + cases[i].offset, cases[i].size);
        memcpy((char *)h + cases[i].offset, &cases[i].value, cases[i].size);
        memcpy((char *)img + cases[i].offset, &cases[i].value, cases[i].size);
        assert_int_equal(t_open_rc(seg), cases[i].rc);
        assert_int_equal(image_rc(img, bytes), cases[i].rc);
        memcpy((char *)h + cases[i].offset, saved, cases[i].size);
        memcpy((char *)img + cases[i].offset, saved, cases[i].size);
    }
    /* Shorter than its header says: a truncated file. */
    assert_int_equal(image_rc(img, bytes - 4096), CBSHM_ETRUNCATED);
    assert_int_equal(image_rc(img, CBSHM_HEADER_BYTES - 1), CBSHM_ETRUNCATED);
    assert_int_equal(cbshm__attach_image(NULL, bytes, 0, &shm), CBSHM_EINVAL);
    assert_int_equal(cbshm__attach_image(img, bytes, 0, NULL), CBSHM_EINVAL);
    assert_int_equal(cbshm__attach_image(img, bytes, 0x100, &shm), CBSHM_EINVAL);
    assert_int_equal(image_rc(img, bytes), 0);
    munmap(img, bytes);
    munmap(h, bytes);
    assert_int_equal(cbshm_destroy(seg), 0);
}

static void test_image_close_leaves_the_memory_to_its_caller(void **state)
{
    char seg[64];
    size_t bytes;
    void *img;
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    img = image_of(seg, &bytes);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(cbshm__attach_image(img, bytes, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "a", &b), 0);
    assert_int_equal(cbshm_allow(b, &t), 0);
    cbshm_record(b, &t, CBSHM_SUCCESS);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    /* msync fails with ENOMEM on an address that is no longer mapped. */
    assert_int_equal(msync(img, bytes, MS_ASYNC), 0);
    assert_int_equal(image_rc(img, bytes), 0);
    munmap(img, bytes);
}

/* The name watch every CBSHM_WATCH_CALLS calls finds no name to compare
   and leaves the view alone: an image is never retired by it. */
static void test_image_view_is_not_retired_by_the_name_watch(void **state)
{
    char seg[64];
    size_t bytes;
    struct cbshm_header *img;
    struct cbshm *shm;
    struct cbshm_breaker *b;
    struct cbshm_ticket t;
    struct cbshm_snapshot s;

    (void)state;
    t_clock_install(1000000000000ull);
    t_apply(t_segment_name(seg), YAML);
    img = image_of(seg, &bytes);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(cbshm__attach_image(img, bytes, 0, &shm), 0);
    assert_int_equal(cbshm_breaker_get(shm, "b", &b), 0);
    for (int i = 0; i < 4 * CBSHM_WATCH_CALLS; i++) {
        if (i % 1000 == 0)
            t_clock_advance_ms(2000); /* past the watch's once a second */
        assert_int_equal(cbshm_allow(b, &t), 0);
        cbshm_record(b, &t, CBSHM_SUCCESS);
    }
    assert_int_equal(atomic_load(&img->retired), 0);
    assert_int_equal(cbshm_snapshot(shm, "b", &s), 0);
    assert_int_equal(s.successes, 4 * CBSHM_WATCH_CALLS);
    cbshm_breaker_release(b);
    cbshm_close(shm);
    munmap(img, bytes);
}

static void test_image_reconcile_makes_the_table_match_the_configuration(void **state)
{
    static const char *other = "capacity: 4\nbreakers:\n  - name: a\n    failure_threshold: 5\n"
                               "  - name: c\n";
    char seg[64];
    size_t bytes;
    void *img;
    struct cbshm *shm;
    struct cbshm_config *cfg;
    struct cbshm_snapshot s;
    unsigned changes;

    (void)state;
    t_apply(t_segment_name(seg), YAML);
    img = image_of(seg, &bytes);
    assert_int_equal(cbshm_destroy(seg), 0);
    assert_int_equal(cbshm_config_load_string(other, strlen(other), "other", &cfg, NULL), 0);
    assert_int_equal(cbshm__attach_image(img, bytes, 0, &shm), 0);
    /* b removed, a updated, c added: three changes, none made by a dry run. */
    assert_int_equal(cbshm__reconcile_view(shm, cfg, true, &changes), 0);
    assert_int_equal(changes, 3);
    assert_int_equal(cbshm_snapshot(shm, "b", &s), 0);
    assert_int_equal(cbshm__reconcile_view(shm, cfg, false, &changes), 0);
    assert_int_equal(changes, 3);
    assert_int_equal(cbshm_snapshot(shm, "b", &s), CBSHM_ENOBREAKER);
    assert_int_equal(cbshm_snapshot(shm, "c", &s), 0);
    assert_int_equal(cbshm_snapshot(shm, "a", &s), 0);
    assert_int_equal(s.settings.failure_threshold, 5);
    assert_int_equal(cbshm_check(shm, NULL, NULL), 0);
    assert_int_equal(cbshm__reconcile_view(shm, cfg, false, &changes), 0);
    assert_int_equal(changes, 0);
    cbshm_close(shm);
    cbshm_config_free(cfg);
    munmap(img, bytes);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_image_attach_refuses_what_open_refuses_with_the_same_code),
    cmocka_unit_test(test_image_close_leaves_the_memory_to_its_caller),
    cmocka_unit_test(test_image_view_is_not_retired_by_the_name_watch),
    cmocka_unit_test(test_image_reconcile_makes_the_table_match_the_configuration),
};
T_MAIN(tests)
