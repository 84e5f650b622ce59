/* SPDX-License-Identifier: MIT */
/* Unit: the error table, cbshm_strerror() and cbshm_errname(). */
#include <errno.h>
#include <string.h>

#include "harness.h"

static const int codes[] = {
#define CODE(name, value, msg) CBSHM_##name,
    CBSHM_ERRNO_MAP(CODE)
#undef CODE
};

static void test_strerror_names_every_library_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *m = cbshm_strerror(codes[i]);
        assert_non_null(m);
        assert_string_not_equal(m, "unknown error");
        assert_true(strncmp(cbshm_errname(codes[i]), "CBSHM_E", 7) == 0);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
    assert_string_equal(cbshm_errname(CBSHM_EREJECTED), "CBSHM_EREJECTED");
}

static void test_library_codes_never_collide_with_errno(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_true(codes[i] < -4096);
}

static void test_strerror_handles_errno_success_and_unknown(void **state)
{
    (void)state;
    assert_string_equal(cbshm_strerror(0), "success");
    assert_string_equal(cbshm_errname(0), "OK");
    assert_string_equal(cbshm_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(cbshm_errname(-ENOSPC), "ENOSPC");
    assert_string_equal(cbshm_strerror(12345), "unknown error");
    assert_string_equal(cbshm_strerror(-4000), "unknown error");
    assert_string_equal(cbshm_strerror(-99999), "unknown error");
    assert_string_equal(cbshm_strerror(INT32_MIN), "unknown error");
    assert_string_equal(cbshm_errname(-99999), "UNKNOWN");
}

static void test_version_matches_header(void **state)
{
    (void)state;
    assert_string_equal(cbshm_version(), CBSHM_VERSION_STRING);
    assert_string_equal(CBSHM_VERSION_STRING, PROJECT_VERSION); /* CMakeLists.txt */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_strerror_names_every_library_code),
    cmocka_unit_test(test_library_codes_never_collide_with_errno),
    cmocka_unit_test(test_strerror_handles_errno_success_and_unknown),
    cmocka_unit_test(test_version_matches_header),
};
T_MAIN(tests)
