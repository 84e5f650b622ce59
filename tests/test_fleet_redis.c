/* SPDX-License-Identifier: MIT */
/* cbctl/fleet_redis.c on its own: addresses, the password file, keys,
   stream ids and the backoff. Reaching a real Redis is test_fleet's. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "fleet_redis.h"

static void test_an_address_is_host_port_v6_or_a_unix_socket(void **state)
{
    struct cbctl_fleet_target t;
    char why[CBCTL_FLEET_WHY_MAX];

    (void)state;
    assert_int_equal(cbctl_fleet_address_parse("127.0.0.1:6379", &t, why, sizeof why), 0);
    assert_false(t.is_unix);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 6379);
    assert_int_equal(cbctl_fleet_address_parse("[::1]:7000", &t, why, sizeof why), 0);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 7000);
    assert_int_equal(cbctl_fleet_address_parse("unix:/run/redis/redis.sock", &t, why, sizeof why),
                     0);
    assert_true(t.is_unix);
    assert_string_equal(t.path, "/run/redis/redis.sock");
    assert_int_equal(cbctl_fleet_address_parse("/run/r.sock", &t, why, sizeof why), 0);
    assert_true(t.is_unix);
    assert_string_equal(t.path, "/run/r.sock");
}

static void test_a_bad_address_is_refused_with_its_value_named(void **state)
{
    static const char *const bad[] = {
        "",      "localhost",          "redis:0",  "redis:65536", "redis:63x",
        ":6379", "unix:relative.sock", "::1:6379", "[::1]6379",   "[]:6379"};
    struct cbctl_fleet_target t;
    char why[CBCTL_FLEET_WHY_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cbctl_fleet_address_parse(bad[i], &t, why, sizeof why),
                         CBCTL_FLEET_EADDRESS);
        assert_non_null(strstr(why, "fleet.redis"));
        if (bad[i][0] != '\0')
            assert_non_null(strstr(why, bad[i]));
    }
}

static void password_file(char *path, const char *text, unsigned mode)
{
    FILE *f;

    snprintf(path, 64, "/tmp/cbshm-pw-%d-XXXXXX", (int)getpid());
    close(mkstemp(path));
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static void test_the_password_is_the_first_line_of_its_file(void **state)
{
    char path[64], pw[64], why[CBCTL_FLEET_WHY_MAX];

    (void)state;
    password_file(path, "s3cret\nsecond line\n", 0600);
    assert_int_equal(cbctl_fleet_read_password(path, pw, sizeof pw, why, sizeof why), 0);
    assert_string_equal(pw, "s3cret");
    password_file(path, "crlf\r\n", 0640);
    assert_int_equal(cbctl_fleet_read_password(path, pw, sizeof pw, why, sizeof why), 0);
    assert_string_equal(pw, "crlf");
    password_file(path, "no newline", 0400);
    assert_int_equal(cbctl_fleet_read_password(path, pw, sizeof pw, why, sizeof why), 0);
    assert_string_equal(pw, "no newline");
    unlink(path);
}

static void test_a_password_file_others_can_read_is_refused_naming_the_file(void **state)
{
    char path[64], pw[64], why[CBCTL_FLEET_WHY_MAX];

    (void)state;
    password_file(path, "hunter2\n", 0644);
    assert_int_equal(cbctl_fleet_read_password(path, pw, sizeof pw, why, sizeof why),
                     CBCTL_FLEET_ESECRET);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "0644"));
    assert_null(strstr(why, "hunter2"));
    unlink(path);
}

static void test_a_missing_or_empty_password_file_is_refused_naming_the_file(void **state)
{
    char path[64], pw[64], why[CBCTL_FLEET_WHY_MAX];

    (void)state;
    assert_int_equal(cbctl_fleet_read_password("/nonexistent/pw", pw, sizeof pw, why, sizeof why),
                     CBCTL_FLEET_ESECRET);
    assert_non_null(strstr(why, "fleet.password_file /nonexistent/pw: No such file"));
    password_file(path, "\nlater\n", 0600);
    assert_int_equal(cbctl_fleet_read_password(path, pw, sizeof pw, why, sizeof why),
                     CBCTL_FLEET_ESECRET);
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(cbctl_fleet_read_password("/tmp", pw, sizeof pw, why, sizeof why),
                     CBCTL_FLEET_ESECRET);
    assert_non_null(strstr(why, "/tmp"));
    unlink(path);
}

static void test_keys_carry_the_fleet_as_their_hash_tag(void **state)
{
    char key[CBCTL_FLEET_KEY_MAX], big[200];

    (void)state;
    assert_int_equal(cbctl_fleet_key(key, sizeof key, "checkout", "events", NULL), 23);
    assert_string_equal(key, "cbshm:{checkout}:events");
    cbctl_fleet_key(key, sizeof key, "checkout", "open", "payments");
    assert_string_equal(key, "cbshm:{checkout}:open:payments");
    cbctl_fleet_key(key, sizeof key, "checkout", "ack", "1700000000000-3");
    assert_string_equal(key, "cbshm:{checkout}:ack:1700000000000-3");
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(cbctl_fleet_key(key, 64, "checkout", "host", big), -1);
}

static void test_stream_ids_are_ms_dash_seq_and_nothing_else(void **state)
{
    static const char *const bad[] = {
        "", "1", "-1", "1-", "1-x", "x-1", "+1-2", "1 -2", "18446744073709551616-0", "1-2-3"};
    struct cbshm_fleet_id id = {UINT64_MAX, UINT64_MAX}, back, a = {1, 2}, b = {1, 3};
    char buf[CBCTL_FLEET_ID_MAX];

    (void)state;
    assert_int_equal(cbctl_fleet_id_format(&id, buf, sizeof buf),
                     (int)strlen("18446744073709551615-18446744073709551615"));
    assert_int_equal(cbctl_fleet_id_parse(buf, strlen(buf), &back), 0);
    assert_true(back.ms == UINT64_MAX && back.seq == UINT64_MAX);
    assert_int_equal(cbctl_fleet_id_parse("1700000000123-7", 15, &back), 0);
    assert_true(back.ms == 1700000000123ull && back.seq == 7);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cbctl_fleet_id_parse(bad[i], strlen(bad[i]), &back), -1);
    assert_true(cbctl_fleet_id_cmp(&a, &b) < 0 && cbctl_fleet_id_cmp(&b, &a) > 0);
    assert_int_equal(cbctl_fleet_id_cmp(&a, &a), 0);
}

static void test_backoff_doubles_from_100ms_to_10s_with_full_jitter(void **state)
{
    struct cbctl_fleet_backoff b;
    uint64_t lo = UINT64_MAX, hi = 0;

    (void)state;
    cbctl_fleet_backoff_init(&b, 42);
    assert_int_equal(cbctl_fleet_backoff_next_ms(&b), 100); /* attempt 0: exactly the base */
    for (int k = 1; k < 8; k++) {
        uint64_t d = cbctl_fleet_backoff_next_ms(&b), ceiling = 100u << k;
        assert_true(d >= 100 && d <= (ceiling < 10000 ? ceiling : 10000));
    }
    for (int i = 0; i < 2000; i++) {
        uint64_t d = cbctl_fleet_backoff_next_ms(&b);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo >= 100 && lo < 1000); /* jitter spreads over the whole range */
    assert_true(hi <= 10000 && hi > 9000);
    cbctl_fleet_backoff_reset(&b);
    assert_int_equal(cbctl_fleet_backoff_next_ms(&b), 100);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_an_address_is_host_port_v6_or_a_unix_socket),
    cmocka_unit_test(test_a_bad_address_is_refused_with_its_value_named),
    cmocka_unit_test(test_the_password_is_the_first_line_of_its_file),
    cmocka_unit_test(test_a_password_file_others_can_read_is_refused_naming_the_file),
    cmocka_unit_test(test_a_missing_or_empty_password_file_is_refused_naming_the_file),
    cmocka_unit_test(test_keys_carry_the_fleet_as_their_hash_tag),
    cmocka_unit_test(test_stream_ids_are_ms_dash_seq_and_nothing_else),
    cmocka_unit_test(test_backoff_doubles_from_100ms_to_10s_with_full_jitter),
};

T_MAIN(tests)
