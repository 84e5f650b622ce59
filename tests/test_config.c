/* SPDX-License-Identifier: MIT */
/* Unit: the YAML loader - every key, every class of error, with positions. */
#define _GNU_SOURCE /* unshare(2), sethostname(2): a hostname of the test's own */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "peer_names.h"

static int load(const char *yaml, struct cbshm_config **cfg, struct cbshm_diag *d)
{
    return cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", cfg, d);
}

/* Asserts that yaml is rejected at line:col with a message containing msg. */
static void rejects(const char *yaml, unsigned line, unsigned col, const char *key, const char *msg)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    int rc = load(yaml, &cfg, &d);

    if (rc != CBSHM_ECONFIG || d.line != line || d.column != col ||
        strstr(d.message, msg) == NULL || strcmp(d.key, key) != 0)
        print_error("got rc=%d %s:%u:%u key='%s' '%s'\n", rc, d.file, d.line, d.column, d.key,
                    d.message);
    assert_int_equal(rc, CBSHM_ECONFIG);
    assert_null(cfg);
    assert_string_equal(d.file, "t.yaml");
    assert_string_equal(d.key, key);
    assert_int_equal(d.line, line);
    assert_int_equal(d.column, col);
    assert_non_null(strstr(d.message, msg));
}

static void test_config_parses_the_example_file(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    assert_int_equal(cbshm_config_load_file(SOURCE_DIR "/config/example.yaml", &cfg, &d), 0);
    assert_string_equal(cfg->segment, "/cbshm-demo");
    assert_int_equal(cfg->capacity, 64);
    assert_int_equal(cfg->mode, 0600);
    assert_int_equal(cfg->n_breakers, 2);
    assert_string_equal(cfg->breakers[0].name, "payments-api");
    assert_int_equal(cfg->breakers[0].settings.failure_threshold, 3);
    assert_int_equal(cfg->breakers[0].settings.open_timeout_ms, 2000);
    assert_string_equal(cfg->breakers[1].name, "inventory-db");
    assert_int_equal(cfg->breakers[1].settings.failure_threshold, 5);
    assert_int_equal(cfg->breakers[1].settings.open_timeout_ms, 30000);
    cbshm_config_free(cfg);
}

static void test_config_gives_breakers_the_defaults_wherever_they_appear(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    const char *y = "breakers:\n  - name: a\n  - name: b\n    success_threshold: 2\n    "
                    "half_open_max_calls: 2\n"
                    "defaults:\n  failure_threshold: 9\n  probe_timeout: 250ms\n";

    (void)state;
    assert_int_equal(load(y, &cfg, &d), 0);
    assert_int_equal(cfg->capacity, 256);
    assert_int_equal(cfg->mode, 0600);
    assert_string_equal(cfg->segment, "");
    assert_int_equal(cfg->breakers[0].settings.failure_threshold, 9);
    assert_int_equal(cfg->breakers[0].settings.probe_timeout_ms, 250);
    assert_int_equal(cfg->breakers[0].settings.success_threshold, 1);
    assert_int_equal(cfg->breakers[1].settings.success_threshold, 2);
    assert_int_equal(cfg->breakers[1].settings.open_timeout_ms, 30000);
    cbshm_config_free(cfg);
}

static void test_config_parses_durations_in_every_unit(void **state)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } cases[] = {{"1ms", 1},     {"250ms", 250},  {"5s", 5000},
                 {"2m", 120000}, {"1h", 3600000}, {"24h", 86400000}};
    char y[128];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cbshm_config *cfg = NULL;
        struct cbshm_diag d;
        snprintf(y, sizeof y, "defaults:\n  open_timeout: %s\n", cases[i].text);
        assert_int_equal(load(y, &cfg, &d), 0);
        assert_int_equal(cfg->defaults.open_timeout_ms, cases[i].ms);
        cbshm_config_free(cfg);
    }
}

static void test_config_rejects_yaml_syntax_errors_with_position(void **state)
{
    (void)state;
    rejects("capacity: 5\nbreakers: [a\n", 3, 1, "", "YAML syntax error");
    rejects("a: b\n  c: d\n", 2, 4, "", "YAML syntax error");
}

static void test_config_rejects_unknown_keys(void **state)
{
    (void)state;
    rejects("capcity: 5\n", 1, 1, "capcity", "unknown key 'capcity'");
    rejects("defaults:\n  failure_treshold: 3\n", 2, 3, "defaults.failure_treshold", "unknown key");
    rejects("breakers:\n  - name: a\n    timeout: 5s\n", 3, 5, "breakers[0].timeout",
            "unknown key");
}

static void test_config_rejects_wrong_types(void **state)
{
    (void)state;
    rejects("capacity: lots\n", 1, 11, "capacity", "expected an integer, got 'lots'");
    rejects("capacity: [1]\n", 1, 11, "capacity", "expected an integer, got a list");
    rejects("breakers:\n  name: a\n", 2, 3, "breakers", "expected a list of breakers");
    rejects("breakers:\n  - a\n", 2, 5, "breakers[0]", "expected a mapping");
    rejects("defaults: 5\n", 1, 11, "defaults", "expected a mapping");
    rejects("- 1\n", 1, 1, "", "expected a mapping at the top");
    rejects("breakers:\n  - name: [x]\n", 2, 11, "breakers[0].name", "expected a breaker name");
}

static void test_config_rejects_bad_duration_units(void **state)
{
    (void)state;
    rejects("defaults:\n  open_timeout: 5\n", 2, 17, "defaults.open_timeout", "needs a unit");
    rejects("defaults:\n  open_timeout: 5x\n", 2, 17, "defaults.open_timeout", "bad unit 'x'");
    rejects("defaults:\n  probe_timeout: 5 s\n", 2, 18, "defaults.probe_timeout", "bad unit");
    rejects("defaults:\n  open_timeout: fast\n", 2, 17, "defaults.open_timeout",
            "expected a duration");
    rejects("defaults:\n  open_timeout: 0s\n", 2, 17, "defaults.open_timeout", "out of range");
    rejects("defaults:\n  open_timeout: 25h\n", 2, 17, "defaults.open_timeout", "out of range");
    rejects("defaults:\n  open_timeout: 99999999999999999999999s\n", 2, 17, "defaults.open_timeout",
            "out of range");
}

static void test_config_rejects_out_of_range_values(void **state)
{
    (void)state;
    rejects("capacity: 0\n", 1, 11, "capacity", "out of range (1..65536)");
    rejects("capacity: 65537\n", 1, 11, "capacity", "out of range");
    rejects("capacity: 99999999999999999999999\n", 1, 11, "capacity", "out of range");
    rejects("capacity: -1\n", 1, 11, "capacity", "expected an integer");
    rejects("defaults:\n  failure_threshold: 0\n", 2, 22, "defaults.failure_threshold",
            "out of range");
    rejects("defaults:\n  half_open_max_calls: 17\n", 2, 24, "defaults.half_open_max_calls",
            "out of range (1..16)");
    rejects("capacity: 1\nbreakers:\n  - name: a\n  - name: b\n", 2, 1, "breakers",
            "2 breakers exceed capacity 1");
}

static void test_config_rejects_duplicate_breaker_names(void **state)
{
    (void)state;
    rejects("breakers:\n  - name: a\n  - name: b\n  - name: a\n", 4, 11, "breakers[2]",
            "duplicate breaker name 'a' (first at breakers[0])");
}

static void test_config_rejects_duplicate_keys(void **state)
{
    (void)state;
    rejects("capacity: 5\ncapacity: 6\n", 2, 1, "capacity", "duplicate key 'capacity'");
    rejects("breakers:\n  - name: a\n    failure_threshold: 3\n    failure_threshold: 4\n", 4, 5,
            "breakers[0].failure_threshold", "duplicate key 'failure_threshold'");
}

static void test_config_rejects_bad_names(void **state)
{
    (void)state;
    rejects("breakers:\n  - name: has space\n", 2, 11, "breakers[0].name", "invalid breaker name");
    rejects("breakers:\n  - name: \"\"\n", 2, 11, "breakers[0].name", "invalid breaker name");
    rejects("breakers:\n  - name: "
            "a234567890123456789012345678901234567890123456789012345678901234\n",
            2, 11, "breakers[0].name", "invalid breaker name");
    rejects("breakers:\n  - failure_threshold: 3\n", 2, 5, "breakers[0]", "breaker has no name");
    rejects("segment: cbshm\n", 1, 10, "segment",
            "segment name 'cbshm' must start with '/': did you mean '/cbshm'?");
    rejects("segment: /a/b\n", 1, 10, "segment", "invalid segment name");
}

static void test_config_rejects_unsafe_or_malformed_modes(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    rejects("mode: \"0666\"\n", 1, 7, "mode", "writable by others");
    rejects("mode: \"0400\"\n", 1, 7, "mode", "owner read and write");
    rejects("mode: \"0680\"\n", 1, 7, "mode", "octal mode");
    rejects("mode: \"rw\"\n", 1, 7, "mode", "octal mode");
    rejects("group: no-such-group-here\n", 1, 8, "group", "no such group");
    assert_int_equal(load("mode: \"0660\"\ngroup: 0\n", &cfg, &d), 0);
    assert_int_equal(cfg->mode, 0660);
    assert_int_equal(cfg->has_group, 1);
    assert_int_equal(cfg->gid, 0);
    cbshm_config_free(cfg);
}

static void test_config_rejects_empty_and_multi_document_files(void **state)
{
    (void)state;
    rejects("", 1, 1, "", "the file is empty");
    rejects("capacity: 5\n---\ncapacity: 6\n", 3, 1, "", "only one YAML document");
}

static void test_config_reports_a_missing_file(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    assert_int_equal(cbshm_config_load_file("/nonexistent/x.yaml", &cfg, &d), -ENOENT);
    assert_null(cfg);
    assert_string_equal(d.file, "/nonexistent/x.yaml");
    assert_non_null(strstr(d.message, "cannot open"));
    cbshm_config_free(NULL);
}

static void test_config_parses_every_policy_key(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    const char *y = "breakers:\n"
                    "  - name: a\n    policy: rate\n    failure_rate: 40%\n"
                    "    minimum_calls: 20\n    window_type: time\n    window_duration: 30s\n"
                    "    window_buckets: 30\n    slow_call_duration: 800ms\n"
                    "    slow_call_rate: 60\n    backoff_multiplier: 1.5\n"
                    "    open_timeout_max: 5m\n    open_timeout_jitter: 10\n"
                    "    min_failing_workers: 2\n"
                    "  - name: b\n    window_size: 50\n";
    const struct cbshm_settings *a, *b;

    (void)state;
    assert_int_equal(load(y, &cfg, &d), 0);
    a = &cfg->breakers[0].settings;
    b = &cfg->breakers[1].settings;
    assert_int_equal(a->policy, CBSHM_POLICY_RATE);
    assert_int_equal(a->failure_rate, 40);
    assert_int_equal(a->minimum_calls, 20);
    assert_int_equal(a->window_type, CBSHM_WINDOW_TIME);
    assert_int_equal(a->window_duration_ms, 30000);
    assert_int_equal(a->window_buckets, 30);
    assert_int_equal(a->slow_call_duration_ms, 800);
    assert_int_equal(a->slow_call_rate, 60);
    assert_int_equal(a->backoff_multiplier, 150);
    assert_int_equal(a->open_timeout_max_ms, 300000);
    assert_int_equal(a->open_timeout_jitter, 10);
    assert_int_equal(a->min_failing_workers, 2);
    assert_int_equal(b->policy, CBSHM_POLICY_CONSECUTIVE);
    assert_int_equal(b->window_type, CBSHM_WINDOW_COUNT);
    assert_int_equal(b->window_size, 50);
    assert_int_equal(b->backoff_multiplier, 100);
    assert_int_equal(b->slow_call_duration_ms, 0);
    cbshm_config_free(cfg);
}

static void test_config_rejects_bad_policy_values(void **state)
{
    (void)state;
    rejects("defaults:\n  policy: sometimes\n", 2, 11, "defaults.policy",
            "expected consecutive or rate, got 'sometimes'");
    rejects("defaults:\n  window_type: [1]\n", 2, 16, "defaults.window_type", "expected a word");
    rejects("defaults:\n  policy: rate\n  failure_rate: 0\n", 3, 17, "defaults.failure_rate",
            "out of range (1..100)");
    rejects("defaults:\n  policy: rate\n  failure_rate: 101%\n", 3, 17, "defaults.failure_rate",
            "out of range");
    rejects("defaults:\n  policy: rate\n  failure_rate: half\n", 3, 17, "defaults.failure_rate",
            "expected an integer");
    rejects("defaults:\n  minimum_calls: 0\n", 2, 18, "defaults.minimum_calls", "out of range");
    rejects("defaults:\n  window_size: -5\n", 2, 16, "defaults.window_size", "expected an integer");
    rejects("defaults:\n  window_type: time\n  window_buckets: 61\n", 3, 19,
            "defaults.window_buckets", "out of range (1..60)");
    rejects("defaults:\n  window_type: time\n  window_duration: 60\n", 3, 20,
            "defaults.window_duration", "needs a unit");
    rejects("defaults:\n  slow_call_duration: 1y\n", 2, 23, "defaults.slow_call_duration",
            "bad unit 'y'");
    rejects("defaults:\n  backoff_multiplier: 0.5\n", 2, 23, "defaults.backoff_multiplier",
            "out of range (1..100)");
    rejects("defaults:\n  backoff_multiplier: 1.333\n", 2, 23, "defaults.backoff_multiplier",
            "more than two decimals");
    rejects("defaults:\n  backoff_multiplier: fast\n", 2, 23, "defaults.backoff_multiplier",
            "expected a number");
    rejects("defaults:\n  open_timeout_jitter: 150\n", 2, 24, "defaults.open_timeout_jitter",
            "out of range (0..100)");
    rejects("defaults:\n  min_failing_workers: 17\n", 2, 24, "defaults.min_failing_workers",
            "out of range (0..16)");
}

static void test_config_rejects_contradictory_combinations(void **state)
{
    (void)state;
    rejects("breakers:\n  - name: a\n    window_type: time\n    window_size: 100\n", 4, 18,
            "breakers[0].window_size", "window_size is for window_type: count");
    rejects("defaults:\n  window_type: time\nbreakers:\n  - name: a\n    window_size: 10\n", 5, 18,
            "breakers[0].window_size", "this window is time");
    rejects("breakers:\n  - name: a\n    window_duration: 10s\n", 3, 22,
            "breakers[0].window_duration", "window_duration is for window_type: time");
    rejects("breakers:\n  - name: a\n    window_buckets: 5\n", 3, 21, "breakers[0].window_buckets",
            "window_buckets is for window_type: time");
    rejects("breakers:\n  - name: a\n    failure_rate: 50\n", 3, 19, "breakers[0].failure_rate",
            "failure_rate is for policy: rate; this breaker's policy is consecutive");
    rejects("breakers:\n  - name: a\n    policy: rate\n    failure_threshold: 5\n", 4, 24,
            "breakers[0].failure_threshold", "failure_threshold is for policy: consecutive");
    rejects("breakers:\n  - name: a\n    slow_call_rate: 50\n", 3, 21, "breakers[0].slow_call_rate",
            "slow_call_rate needs slow_call_duration");
    rejects("breakers:\n  - name: a\n    open_timeout: 1m\n    open_timeout_max: 30s\n", 4, 23,
            "breakers[0].open_timeout_max", "shorter than open_timeout");
    rejects("breakers:\n  - name: a\n    window_type: time\n    window_duration: 5ms\n"
            "    window_buckets: 10\n",
            4, 22, "breakers[0].window_duration", "cannot hold 10 buckets");
    rejects("breakers:\n  - name: a\n    policy: rate\n    minimum_calls: 200\n", 4, 20,
            "breakers[0].minimum_calls", "exceeds window_size 100");
    rejects("breakers:\n  - name: a\n    minimum_calls: 20\n", 3, 20, "breakers[0].minimum_calls",
            "minimum_calls is for policy: rate, or any policy with slow_call_duration; this "
            "breaker's policy is consecutive");
    /* The slow-call rate uses minimum_calls under either policy. */
    rejects("breakers:\n  - name: a\n    slow_call_duration: 1s\n    window_size: 10\n"
            "    minimum_calls: 20\n",
            5, 20, "breakers[0].minimum_calls", "exceeds window_size 10");
    /* A contradiction the breaker inherited is reported at the breaker. */
    rejects("defaults:\n  policy: rate\n  window_type: time\n  minimum_calls: 200\n"
            "breakers:\n  - name: a\n    window_type: count\n",
            6, 5, "breakers[0].minimum_calls", "exceeds window_size 100");
    /* Inherited settings are not the breaker's fault; its own are. */
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    assert_int_equal(load("defaults:\n  failure_threshold: 3\nbreakers:\n  - name: a\n"
                          "    policy: rate\n",
                          &cfg, &d),
                     0);
    cbshm_config_free(cfg);
}

/* The C path (cbshm_config_check, cbshm_apply) refuses what the YAML path
   refuses, with the same words and the key `mode`; apply creates nothing. */
static void test_c_and_yaml_refuse_the_same_modes_with_the_same_message(void **state)
{
    static const struct {
        uint32_t mode;
        const char *text;
        int has_group;
        const char *why;
    } refused[] = {
        {0666, "0666", 0, "mode 0666 is writable by others"},
        {0777, "0777", 1, "mode 0777 is writable by others"},
        {0602, "0602", 1, "mode 0602 is writable by others"},
        {0000, "0000", 0, "mode 0000 must let the owner read and write"},
        {0400, "0400", 0, "mode 0400 must let the owner read and write"},
        {0200, "0200", 1, "mode 0200 must let the owner read and write"},
        {04600, "4600", 0, "mode 4600 has bits beyond 0777"},
        {02660, "2660", 1, "mode 2660 has bits beyond 0777"},
        {01600, "1600", 0, "mode 1600 has bits beyond 0777"},
        {0660, "0660", 0, "mode 0660 is writable by its group, but no group is configured"},
        {0620, "0620", 0, "mode 0620 is writable by its group, but no group is configured"},
    };
    static const struct {
        uint32_t mode;
        int has_group;
    } accepted[] = {{0600, 0}, {0640, 0}, {0660, 1}, {0620, 1}, {0640, 1}};
    struct cbshm_config *loaded = NULL, cfg;
    struct cbshm_diag y, c;
    char yaml[64], seg[64];

    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(yaml, sizeof yaml, "mode: \"%s\"\n%s", refused[i].text,
                 refused[i].has_group ? "group: 0\n" : "");
        assert_int_equal(load(yaml, &loaded, &y), CBSHM_ECONFIG);
        assert_string_equal(y.key, "mode");
        assert_int_equal(y.line, 1);
        assert_int_equal(y.column, 7);
        memset(&cfg, 0, sizeof cfg);
        cfg.capacity = 4;
        cfg.mode = refused[i].mode;
        cfg.has_group = refused[i].has_group;
        cbshm_settings_default(&cfg.defaults);
        assert_int_equal(cbshm_config_check(&cfg, &c), CBSHM_ECONFIG);
        assert_string_equal(c.key, "mode");
        if (strncmp(c.message, refused[i].why, strlen(refused[i].why)) != 0)
            fail_msg("mode %04o: C says '%s', want '%s'", refused[i].mode, c.message,
                     refused[i].why);
        assert_string_equal(c.message, y.message);
        assert_int_equal(cbshm_apply(&cfg, t_segment_name(seg), 0, NULL, NULL, NULL),
                         CBSHM_ECONFIG);
        assert_int_equal(t_open_rc(seg), CBSHM_ENOSEG);
    }
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        memset(&cfg, 0, sizeof cfg);
        cfg.capacity = 4;
        cfg.mode = accepted[i].mode;
        cfg.has_group = accepted[i].has_group;
        assert_int_equal(cbshm_config_check(&cfg, &c), 0);
        snprintf(yaml, sizeof yaml, "%smode: \"%04o\"\n", accepted[i].has_group ? "group: 0\n" : "",
                 accepted[i].mode);
        assert_int_equal(load(yaml, &loaded, &y), 0);
        assert_int_equal(loaded->mode, accepted[i].mode);
        cbshm_config_free(loaded);
        loaded = NULL;
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* yaml made of `head`, then `open` n times. */
static char *nested(const char *head, const char *open, size_t n)
{
    size_t h = strlen(head), o = strlen(open);
    char *buf = malloc(h + o * n + 2);

    assert_non_null(buf);
    memcpy(buf, head, h);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + h + o * i, open, o);
    strcpy(buf + h + o * n, "\n");
    return buf;
}

/* libyaml's scanner is quadratic in the depth: 100000 '[' took 15 s. The
   65th level is refused where it opens, in flow and block style alike. */
static void test_config_refuses_nesting_deeper_than_64_at_once(void **state)
{
    static const struct {
        const char *head, *open;
        unsigned width; /* columns each level takes */
    } styles[] = {{"capacity: ", "[", 1}, {"capacity: ", "{a: ", 4}, {"capacity:\n", "- ", 2}};
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    struct timespec t0;
    char *yaml;
    double took;

    (void)state;
    for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++) {
        int flow = styles[i].head[strlen(styles[i].head) - 1] == ' ';
        /* capacity's mapping is the first level: 63 more are fine. */
        yaml = nested(styles[i].head, styles[i].open, 63);
        assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &d),
                         CBSHM_ECONFIG);
        assert_null(strstr(d.message, "nested"));
        free(yaml);
        yaml = nested(styles[i].head, styles[i].open, 64);
        assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &d),
                         CBSHM_ECONFIG);
        assert_string_equal(d.message, "lists and mappings nested more than 64 deep");
        assert_string_equal(d.key, "");
        assert_int_equal(d.line, flow ? 1 : 2);
        assert_int_equal(d.column, (flow ? 11 : 1) + 63 * styles[i].width);
        free(yaml);
        yaml = nested(styles[i].head, styles[i].open, 100000);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &d),
                         CBSHM_ECONFIG);
        took = seconds_since(&t0);
        assert_string_equal(d.message, "lists and mappings nested more than 64 deep");
        if (took > 0.5)
            fail_msg("100000 levels of '%s' took %.3f s", styles[i].open, took);
        free(yaml);
    }
}

/* A NUL would cut a C string: "a\0b" used to make breaker "a". Escaped in
   any key or value, or raw anywhere, it is refused where it is. */
static void test_config_refuses_a_nul_in_any_scalar_with_its_position(void **state)
{
    static const char raw[] = "breakers:\n  - name: \xc3\xa9t\xc3\xa9\0x\n";
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    rejects("breakers:\n  - name: \"a\\0b\"\n", 2, 11, "", "may not contain a NUL character");
    rejects("breakers:\n  - name: \"a\\x00b\"\n", 2, 11, "", "NUL");
    rejects("breakers:\n  - name: \"a\\u0000\"\n", 2, 11, "", "NUL");
    rejects("breakers:\n  - \"name\\0x\": a\n", 2, 5, "", "NUL");
    rejects("segment: \"/s\\0x\"\n", 1, 10, "", "NUL");
    rejects("defaults:\n  open_timeout: \"5s\\0junk\"\n", 2, 17, "", "NUL");
    /* Raw: libyaml's reader refuses it; the column counts characters. */
    assert_int_equal(cbshm_config_load_string(raw, sizeof raw - 1, "t.yaml", &cfg, &d),
                     CBSHM_ECONFIG);
    assert_null(cfg);
    assert_string_equal(d.file, "t.yaml");
    assert_int_equal(d.line, 2);
    assert_int_equal(d.column, 14);
    assert_non_null(strstr(d.message, "a NUL byte"));
}

/* 16 MiB is the cap, in memory and in a file: at it the text loads; one
   byte past it is refused, naming the limit, at the byte past it. */
static void test_config_refuses_text_over_16_mib_naming_the_limit(void **state)
{
    size_t cap = (size_t)16 << 20;
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    char *yaml = malloc(cap + 1), path[64];
    FILE *f;
    int rc, rc_over;

    (void)state;
    assert_non_null(yaml);
    memset(yaml, ' ', cap + 1);
    memcpy(yaml, "capacity: 4\n", 12);
    yaml[cap - 1] = '\n';
    assert_int_equal(cbshm_config_load_string(yaml, cap, "t.yaml", &cfg, &d), 0);
    assert_int_equal(cfg->capacity, 4);
    cbshm_config_free(cfg);
    cfg = NULL;
    assert_int_equal(cbshm_config_load_string(yaml, cap + 1, "t.yaml", &cfg, &d), CBSHM_ECONFIG);
    assert_null(cfg);
    assert_string_equal(d.message,
                        "the configuration is over the size limit of 16 MiB (16777216 bytes)");
    assert_int_equal(d.line, 3);
    assert_int_equal(d.column, 1);
    snprintf(path, sizeof path, "/tmp/cbshm-t-%d-cap.yaml", (int)getpid());
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(fwrite(yaml, 1, cap, f), cap);
    assert_int_equal(fclose(f), 0);
    rc = cbshm_config_load_file(path, &cfg, &d);
    cbshm_config_free(cfg);
    cfg = NULL;
    if ((f = fopen(path, "a")) != NULL) {
        fputc(' ', f);
        fclose(f);
    }
    rc_over = cbshm_config_load_file(path, &cfg, &d);
    unlink(path);
    free(yaml);
    assert_int_equal(rc, 0);
    assert_int_equal(rc_over, CBSHM_ECONFIG);
    assert_null(cfg);
    assert_string_equal(d.file, path);
    assert_non_null(strstr(d.message, "size limit of 16 MiB"));
}

/* fopen(3) opens a directory: it is refused as one, by name. */
static void test_config_says_a_directory_is_a_directory(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    assert_int_equal(cbshm_config_load_file("/tmp", &cfg, &d), -EISDIR);
    assert_null(cfg);
    assert_string_equal(d.file, "/tmp");
    assert_string_equal(d.message, "is a directory");
}

static const struct {
    const char *peer, *theirs, *ours, *notes;
} peers[] = {
#define X(peer, theirs, ours, notes) {peer, theirs, ours, notes},
    CBSHM_PEER_NAMES(X)
#undef X
};
#define N_PEERS (sizeof peers / sizeof peers[0])

/* The message an unknown key in a breaker gets, whole. */
static void unknown_in_breaker(const char *key, const char *message)
{
    char yaml[256], path[128];

    snprintf(yaml, sizeof yaml, "breakers:\n  - name: a\n    %s: 1\n", key);
    snprintf(path, sizeof path, "breakers[0].%s", key);
    rejects(yaml, 3, 5, path, message);
    {
        struct cbshm_config *cfg = NULL;
        struct cbshm_diag d;
        assert_int_equal(load(yaml, &cfg, &d), CBSHM_ECONFIG);
        if (strcmp(d.message, message) != 0)
            fail_msg("%s: got '%s', want '%s'", key, d.message, message);
    }
}

/* Every peer's name in the table is found, in a breaker and in defaults,
   as they write it (and resilience4j's in Spring's kebab case too); our
   own keys by spelling and near misses; nothing is made up for a word
   that is not close. */
static void test_config_unknown_keys_say_what_they_may_have_meant(void **state)
{
    char message[256], yaml[256], path[64];

    (void)state;
    for (size_t i = 0; i < N_PEERS; i++) {
        const struct cbshm_setting *d = cbshm_setting_find(peers[i].ours);
        if (d == NULL || strcmp(d->key, peers[i].ours) != 0)
            fail_msg("peer_names.h: %s's %s maps to '%s', which is not a setting", peers[i].peer,
                     peers[i].theirs, peers[i].ours);
        if (strcmp(peers[i].theirs, peers[i].ours) == 0)
            continue; /* the same name: it loads */
        /* A name two peers share must mean one of ours, or the message could not say which. */
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(peers[k].theirs, peers[i].theirs) == 0)
                assert_string_equal(peers[k].ours, peers[i].ours);
        snprintf(message, sizeof message, "unknown key '%s' (%s's name): did you mean '%s'?",
                 peers[i].theirs, peers[i].peer, peers[i].ours);
        unknown_in_breaker(peers[i].theirs, message);
        snprintf(yaml, sizeof yaml, "defaults:\n  %s: 1\n", peers[i].theirs);
        snprintf(path, sizeof path, "defaults.%s", peers[i].theirs);
        rejects(yaml, 2, 3, path, message);
    }
    unknown_in_breaker("failure-rate-threshold", "unknown key 'failure-rate-threshold' "
                                                 "(resilience4j's name): did you mean "
                                                 "'failure_rate'?");
    unknown_in_breaker("failure_treshold",
                       "unknown key 'failure_treshold': did you mean 'failure_threshold'?");
    unknown_in_breaker("open_timeout_ms",
                       "unknown key 'open_timeout_ms': did you mean 'open_timeout'?");
    unknown_in_breaker("openTimeout", "unknown key 'openTimeout': did you mean 'open_timeout'?");
    unknown_in_breaker("half-open-max-calls",
                       "unknown key 'half-open-max-calls': did you mean 'half_open_max_calls'?");
    unknown_in_breaker("nmae", "unknown key 'nmae': did you mean 'name'?");
    unknown_in_breaker("frobnicate", "unknown key 'frobnicate'");
    unknown_in_breaker("x", "unknown key 'x'");
    /* At the top, the top-level keys; a breaker's name is not one. */
    rejects("capcity: 5\n", 1, 1, "capcity", "unknown key 'capcity': did you mean 'capacity'?");
    rejects("Breakers: []\n", 1, 1, "Breakers", "unknown key 'Breakers': did you mean 'breakers'?");
    rejects("nmae: a\n", 1, 1, "nmae", "unknown key 'nmae'");
    {
        struct cbshm_config *cfg = NULL;
        struct cbshm_diag d;
        assert_int_equal(load("nmae: a\n", &cfg, &d), CBSHM_ECONFIG);
        assert_string_equal(d.message, "unknown key 'nmae'");
        /* A key too long to compare is named, cut, and given no hint. */
        memset(yaml, 'a', 200);
        strcpy(yaml + 200, ": 1\n");
        assert_int_equal(load(yaml, &cfg, &d), CBSHM_ECONFIG);
        assert_null(strstr(d.message, "did you mean"));
    }
}

/* README.md's "Coming from another breaker" table is peer_names.h: every row, and no other. */
static void test_the_readme_lists_every_peer_name_and_no_other(void **state)
{
    static char text[1 << 17];
    const char *section, *end;
    size_t n, rows = 0;
    FILE *f;

    (void)state;
    assert_non_null(f = fopen(SOURCE_DIR "/README.md", "r"));
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(section = strstr(text, "\n### Coming from another breaker\n"));
    section++;
    end = strstr(section + 1, "\n#");
    if (end == NULL)
        end = text + n;
    for (size_t i = 0; i < N_PEERS; i++) {
        char row[512];
        const char *at;
        snprintf(row, sizeof row, "\n| %s | `%s` | `%s` | %s |\n", peers[i].peer, peers[i].theirs,
                 peers[i].ours, peers[i].notes);
        if ((at = strstr(section, row)) == NULL || at > end)
            fail_msg("README.md's peer table lacks the row\n%s", row + 1);
    }
    /* Its rows: lines that start with "| ", less the heading and the rule under it. */
    for (const char *line = section; line < end; line = strchr(line, '\n') + 1) {
        if (strncmp(line, "| ", 2) == 0)
            rows++;
        if (strchr(line, '\n') == NULL)
            break;
    }
    if (rows != N_PEERS + 1)
        fail_msg("README.md's peer table has %zu rows; peer_names.h has %zu", rows - 1, N_PEERS);
}

/* Both ways in, YAML and code, say what a segment name without its '/' meant. */
static void test_config_a_segment_without_its_slash_is_told_the_fix(void **state)
{
    struct cbshm_config cfg = {.capacity = 1, .mode = 0600};
    struct cbshm_diag d;

    (void)state;
    rejects("segment: cbshm-app\n", 1, 10, "segment",
            "segment name 'cbshm-app' must start with '/': did you mean '/cbshm-app'?");
    strcpy(cfg.segment, "cbshm-app");
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "segment");
    assert_string_equal(d.message,
                        "segment name 'cbshm-app' must start with '/': did you mean '/cbshm-app'?");
    /* No fix that would still be wrong. */
    rejects("segment: a/b\n", 1, 10, "segment", "invalid segment name 'a/b'");
    strcpy(cfg.segment, "..");
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_null(strstr(d.message, "did you mean"));
}

/* A fleet section: `body` under `fleet:`, which starts at line 1. */
#define FLEET(body) "fleet:\n" body

static void test_config_reads_the_fleet_section_and_its_defaults(void **state)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    char host[256] = {0};

    (void)state;
    assert_int_equal(load("capacity: 4\n", &cfg, &d), 0);
    assert_null(cfg->fleet);
    cbshm_config_free(cfg);

    assert_int_equal(load(FLEET("  redis: 127.0.0.1:6379\n  name: checkout\n"), &cfg, &d), 0);
    assert_non_null(cfg->fleet);
    assert_string_equal(cfg->fleet->redis, "127.0.0.1:6379");
    assert_string_equal(cfg->fleet->name, "checkout");
    assert_string_equal(cfg->fleet->user, "");
    assert_string_equal(cfg->fleet->password_file, "");
    assert_int_equal(cfg->fleet->heartbeat_ms, 5000);
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    assert_string_equal(cfg->fleet->host_id, host);
    cbshm_config_free(cfg);

    assert_int_equal(
        load(FLEET("  redis: unix:/run/redis/redis.sock\n  user: cbshm\n"
                   "  password_file: /etc/cbshm/redis.pass\n  name: a.b_c-64\n"
                   "  host_id: web-17\n  heartbeat: 250ms\n") "breakers:\n  - name: pay\n",
             &cfg, &d),
        CBSHM_ECONFIG);
    /* 250ms is under the 1s a heartbeat takes at least: the rest loads. */
    assert_string_equal(d.key, "fleet.heartbeat");
    assert_int_equal(
        load(FLEET("  redis: unix:/run/redis/redis.sock\n  user: cbshm\n"
                   "  password_file: /etc/cbshm/redis.pass\n  name: a.b_c-64\n"
                   "  host_id: web-17\n  heartbeat: 1h\n") "breakers:\n  - name: pay\n",
             &cfg, &d),
        0);
    assert_string_equal(cfg->fleet->redis, "unix:/run/redis/redis.sock");
    assert_string_equal(cfg->fleet->user, "cbshm");
    assert_string_equal(cfg->fleet->password_file, "/etc/cbshm/redis.pass");
    assert_string_equal(cfg->fleet->name, "a.b_c-64");
    assert_string_equal(cfg->fleet->host_id, "web-17");
    assert_int_equal(cfg->fleet->heartbeat_ms, 3600000);
    assert_int_equal(cfg->n_breakers, 1);
    assert_true(cbshm_config_check(cfg, &d) == 0);
    cbshm_config_free(cfg);

    /* Every address form. */
    static const char *const good[] = {"localhost:6379",  "redis.internal:1", "10.0.0.7:65535",
                                       "[::1]:6379",      "[fe80::1]:7000",   "/run/redis.sock",
                                       "unix:/tmp/r.sock"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char y[256];
        snprintf(y, sizeof y, "fleet:\n  redis: \"%s\"\n  name: f\n", good[i]);
        if (load(y, &cfg, &d) != 0)
            fail_msg("%s: %s", good[i], d.message);
        assert_string_equal(cfg->fleet->redis, good[i]);
        cbshm_config_free(cfg);
    }
}

static void test_config_rejects_every_bad_fleet_value_at_its_position(void **state)
{
    (void)state;
    /* The section itself. */
    rejects("fleet: redis\n", 1, 8, "fleet", "expected a mapping (redis, name, ...), got a scalar");
    rejects("fleet:\n  - redis: a:1\n", 2, 3, "fleet",
            "expected a mapping (redis, name, ...), got a list");
    rejects(FLEET("  redis: a:1\n  name: f\n  redis: b:2\n"), 4, 3, "fleet.redis",
            "duplicate key 'redis'");
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbaet: 5s\n"), 4, 3, "fleet.heartbaet",
            "unknown key 'heartbaet': did you mean 'heartbeat'?");
    rejects(FLEET("  redis: a:1\n  name: f\n  pasword_file: /p\n"), 4, 3, "fleet.pasword_file",
            "unknown key 'pasword_file': did you mean 'password_file'?");
    rejects("flet:\n  redis: a:1\n", 1, 1, "flet", "unknown key 'flet': did you mean 'fleet'?");
    rejects(FLEET("  name: f\n"), 1, 1, "fleet.redis",
            "the fleet section has no redis (the fleet's Redis: host:port");
    rejects(FLEET("  redis: a:1\n"), 1, 1, "fleet.name", "the fleet section has no name");
    rejects("fleet: {}\n", 1, 1, "fleet.redis", "the fleet section has no redis");
    /* redis */
    rejects(FLEET("  redis: 127.0.0.1:0\n  name: f\n"), 2, 10, "fleet.redis",
            "redis '127.0.0.1:0': the port '0' is not a number 1..65535");
    rejects(FLEET("  redis: 127.0.0.1:65536\n  name: f\n"), 2, 10, "fleet.redis",
            "the port '65536' is not a number 1..65535");
    rejects(FLEET("  redis: 127.0.0.1:99999999999999999999\n  name: f\n"), 2, 10, "fleet.redis",
            "is not a number 1..65535");
    rejects(FLEET("  redis: 'localhost:'\n  name: f\n"), 2, 10, "fleet.redis",
            "the port '' is not a number 1..65535");
    rejects(FLEET("  redis: localhost:http\n  name: f\n"), 2, 10, "fleet.redis",
            "the port 'http' is not a number 1..65535");
    rejects(FLEET("  redis: localhost\n  name: f\n"), 2, 10, "fleet.redis",
            "redis 'localhost' has no port: give host:port (Redis listens on 6379), unix:/path "
            "or /path");
    rejects(FLEET("  redis: ':6379'\n  name: f\n"), 2, 10, "fleet.redis",
            "the host before ':' is not a host name or address");
    rejects(FLEET("  redis: 'a b:6379'\n  name: f\n"), 2, 10, "fleet.redis",
            "the host before ':' is not a host name or address");
    rejects(FLEET("  redis: '::1:6379'\n  name: f\n"), 2, 10, "fleet.redis",
            "an IPv6 address goes in brackets: [::1]:6379");
    rejects(FLEET("  redis: '[::1:6379'\n  name: f\n"), 2, 10, "fleet.redis",
            "an IPv6 address in brackets, then :port");
    rejects(FLEET("  redis: '[]:6379'\n  name: f\n"), 2, 10, "fleet.redis",
            "an IPv6 address in brackets, then :port");
    rejects(FLEET("  redis: unix:run/redis.sock\n  name: f\n"), 2, 10, "fleet.redis",
            "redis 'unix:run/redis.sock': a unix socket's path must be absolute");
    rejects(FLEET("  redis: \"\"\n  name: f\n"), 2, 10, "fleet.redis",
            "redis is empty: give host:port, unix:/path or /path");
    rejects(FLEET("  redis: [a]\n  name: f\n"), 2, 10, "fleet.redis",
            "expected an address, got a list");
    rejects(FLEET("  redis: redis://cache:6379\n  name: f\n"), 2, 10, "fleet.redis",
            "redis 'redis://cache:6379' is a URL: give host:port, unix:/path or /path");
    rejects(FLEET("  redis: a:1\n  name: f\n  password_file: [/p]\n"), 4, 18, "fleet.password_file",
            "expected a path, got a list");
    rejects(FLEET("  redis: a:1\n  name: {a: 1}\n"), 3, 9, "fleet.name",
            "expected a name, got a mapping");
    {
        char y[512], path[200];
        memset(path, 'a', sizeof path - 1);
        path[sizeof path - 1] = '\0';
        path[0] = '/';
        path[107] = '\0';
        snprintf(y, sizeof y, "fleet:\n  redis: %s\n  name: f\n", path);
        struct cbshm_config *cfg = NULL;
        struct cbshm_diag d;
        assert_int_equal(load(y, &cfg, &d), 0); /* 107 bytes: what sun_path holds */
        cbshm_config_free(cfg);
        path[107] = 'a';
        path[107 + 1] = '\0';
        snprintf(y, sizeof y, "fleet:\n  redis: unix:%s\n  name: f\n", path);
        rejects(y, 2, 10, "fleet.redis",
                "redis: the socket path is 108 bytes, over the 107 a socket takes");
        memset(path, 'h', sizeof path - 1);
        path[sizeof path - 1] = '\0';
        snprintf(y, sizeof y, "fleet:\n  redis: %.150s%.150s:1\n  name: f\n", path, path);
        rejects(y, 2, 10, "fleet.redis", "redis is longer than 255 bytes");
    }
    /* user and password_file */
    rejects(FLEET("  redis: a:1\n  name: f\n  user: 'bob smith'\n  password_file: /p\n"), 4, 9,
            "fleet.user", "user 'bob smith': a Redis user name is printable ASCII, no spaces");
    rejects(FLEET("  redis: a:1\n  name: f\n  user: ''\n"), 4, 9, "fleet.user",
            "user is empty: leave it out for no ACL user");
    rejects(FLEET("  redis: a:1\n  name: f\n  user: cbshm\n"), 4, 9, "fleet.user",
            "user needs password_file: Redis logs a user in with AUTH user password");
    rejects(FLEET("  redis: a:1\n  name: f\n  password_file: etc/redis.pass\n"), 4, 18,
            "fleet.password_file",
            "password_file 'etc/redis.pass' must be an absolute path (the agent may run from "
            "another directory)");
    rejects(FLEET("  redis: a:1\n  name: f\n  password_file: ~/redis.pass\n"), 4, 18,
            "fleet.password_file", "must be an absolute path");
    /* name and host_id */
    rejects(FLEET("  redis: a:1\n  name: shop/eu\n"), 3, 9, "fleet.name",
            "invalid name 'shop/eu' (1..64 bytes of A-Z a-z 0-9 . _ -)");
    rejects(FLEET("  redis: a:1\n  name: '{shop}'\n"), 3, 9, "fleet.name", "invalid name '{shop}'");
    rejects(FLEET("  redis: a:1\n  name: ''\n"), 3, 9, "fleet.name", "invalid name ''");
    rejects(FLEET("  redis: a:1\n  name: "
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"),
            3, 9, "fleet.name", "name is longer than 64 bytes");
    rejects(FLEET("  redis: a:1\n  name: f\n  host_id: 'web 17'\n"), 4, 12, "fleet.host_id",
            "invalid host_id 'web 17' (1..64 bytes of A-Z a-z 0-9 . _ -)");
    /* heartbeat */
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbeat: 0s\n"), 4, 14, "fleet.heartbeat",
            "value '0s' is out of range (1s..1h)");
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbeat: 2h\n"), 4, 14, "fleet.heartbeat",
            "value '2h' is out of range (1s..1h)");
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbeat: 999ms\n"), 4, 14, "fleet.heartbeat",
            "value '999ms' is out of range (1s..1h)");
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbeat: 5\n"), 4, 14, "fleet.heartbeat",
            "duration '5' needs a unit (ms, s, m or h)");
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbeat: 5d\n"), 4, 14, "fleet.heartbeat",
            "bad unit 'd' in duration '5d' (use ms, s, m or h)");
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbeat: 99999999999999999999999h\n"), 4, 14,
            "fleet.heartbeat", "value '99999999999999999999999h' is out of range (1s..1h)");
    rejects(FLEET("  redis: a:1\n  name: f\n  heartbeat: {}\n"), 4, 14, "fleet.heartbeat",
            "expected a duration, got a mapping");
}

/* Runs fn in a child with a hostname of its own (a UTS namespace, root
   only); 1 when it could not be set up. */
static int with_hostname(const char *name, void (*fn)(void))
{
    int pid = fork(), status;

    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWUTS) != 0 || sethostname(name, strlen(name)) != 0)
            _exit(77);
        fn();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        return 1;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return 0;
}

static void takes_web_17(void)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    if (load(FLEET("  redis: a:1\n  name: f\n"), &cfg, &d) != 0 ||
        strcmp(cfg->fleet->host_id, "web-17.example.com") != 0)
        _exit(1);
    cbshm_config_free(cfg);
}

static void refuses_a_spaced_hostname(void)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    if (load("capacity: 3\n" FLEET("  redis: a:1\n  name: f\n"), &cfg, &d) != CBSHM_ECONFIG ||
        d.line != 2 || d.column != 1 || strcmp(d.key, "fleet.host_id") != 0 ||
        strcmp(d.message, "the hostname 'web 17' is not a valid host_id (1..64 bytes of A-Z "
                          "a-z 0-9 . _ -): set fleet.host_id") != 0) {
        fprintf(stderr, "%u:%u %s: %s\n", d.line, d.column, d.key, d.message);
        _exit(1);
    }
    /* host_id given: the hostname is not read. */
    if (load(FLEET("  redis: a:1\n  name: f\n  host_id: web-17\n"), &cfg, &d) != 0)
        _exit(1);
    cbshm_config_free(cfg);
}

static void test_config_takes_host_id_from_the_hostname_if_it_is_one(void **state)
{
    (void)state;
    if (with_hostname("web-17.example.com", takes_web_17) != 0) {
        print_message("not root, or no UTS namespace: the hostname cannot be set\n");
        skip();
    }
    assert_int_equal(with_hostname("web 17", refuses_a_spaced_hostname), 0);
}

static void test_c_checks_a_fleet_section_as_the_loader_does(void **state)
{
    struct cbshm_fleet_config f;
    struct cbshm_config cfg = {.capacity = 1, .mode = 0600, .fleet = &f};
    struct cbshm_diag d;

    (void)state;
    memset(&f, 0, sizeof f);
    strcpy(f.redis, "127.0.0.1:6379");
    strcpy(f.name, "checkout");
    strcpy(f.host_id, "web-1");
    f.heartbeat_ms = 5000;
    assert_int_equal(cbshm_config_check(&cfg, &d), 0);
    f.heartbeat_ms = 0;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "fleet.heartbeat");
    assert_string_equal(d.message, "value 0ms is out of range (1s..1h)");
    f.heartbeat_ms = 7200000;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.message, "value 2h is out of range (1s..1h)");
    f.heartbeat_ms = 5000;
    strcpy(f.redis, "127.0.0.1:0");
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "fleet.redis");
    assert_string_equal(d.message, "redis '127.0.0.1:0': the port '0' is not a number 1..65535");
    f.redis[0] = '\0';
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_non_null(strstr(d.message, "the fleet section has no redis"));
    strcpy(f.redis, "/run/redis.sock");
    memset(f.name, 'n', sizeof f.name); /* no NUL */
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "fleet.name");
    assert_string_equal(d.message, "name is longer than 64 bytes");
    strcpy(f.name, "shop/eu");
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.message, "invalid name 'shop/eu' (1..64 bytes of A-Z a-z 0-9 . _ -)");
    strcpy(f.name, "shop");
    /* An empty host_id from code is no host at all. */
    f.host_id[0] = '\0';
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "fleet.host_id");
    strcpy(f.host_id, "web-1");
    strcpy(f.user, "cbshm");
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "fleet.user");
    strcpy(f.password_file, "redis.pass");
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "fleet.password_file");
    strcpy(f.password_file, "/etc/cbshm/redis.pass");
    assert_int_equal(cbshm_config_check(&cfg, &d), 0);
    f.reserved[3] = 1;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "fleet");
    assert_string_equal(d.message, "reserved fields of the fleet section must be zero");
}

/* cbshm_apply() leaves the fleet to the agent: the section changes nothing. */
static void test_apply_ignores_a_valid_fleet_section(void **state)
{
    char seg[64];
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    struct cbshm *shm = NULL;
    struct cbshm_snapshot snap;

    (void)state;
    t_segment_name(seg);
    assert_int_equal(
        load(FLEET("  redis: a:1\n  name: f\n  host_id: h\n") "breakers:\n  - name: pay\n    "
                                                              "fleet_open_hosts: 34%\n",
             &cfg, &d),
        0);
    assert_int_equal(cbshm_apply(cfg, seg, 0, NULL, NULL, NULL), 0);
    assert_int_equal(cbshm_open(seg, CBSHM_READ_ONLY, &shm), 0);
    assert_int_equal(cbshm_snapshot(shm, "pay", &snap), 0);
    assert_int_equal(snap.settings.fleet_open_hosts, CBSHM_FLEET_SHARE | 34);
    cbshm_close(shm);
    cbshm_config_free(cfg);
    cbshm_destroy(seg);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_config_parses_every_policy_key),
    cmocka_unit_test(test_config_rejects_bad_policy_values),
    cmocka_unit_test(test_config_rejects_contradictory_combinations),
    cmocka_unit_test(test_config_parses_the_example_file),
    cmocka_unit_test(test_config_gives_breakers_the_defaults_wherever_they_appear),
    cmocka_unit_test(test_config_parses_durations_in_every_unit),
    cmocka_unit_test(test_config_rejects_yaml_syntax_errors_with_position),
    cmocka_unit_test(test_config_rejects_unknown_keys),
    cmocka_unit_test(test_config_rejects_wrong_types),
    cmocka_unit_test(test_config_rejects_bad_duration_units),
    cmocka_unit_test(test_config_rejects_out_of_range_values),
    cmocka_unit_test(test_config_rejects_duplicate_breaker_names),
    cmocka_unit_test(test_config_rejects_duplicate_keys),
    cmocka_unit_test(test_config_rejects_bad_names),
    cmocka_unit_test(test_config_rejects_unsafe_or_malformed_modes),
    cmocka_unit_test(test_config_rejects_empty_and_multi_document_files),
    cmocka_unit_test(test_config_reports_a_missing_file),
    cmocka_unit_test(test_c_and_yaml_refuse_the_same_modes_with_the_same_message),
    cmocka_unit_test(test_config_refuses_nesting_deeper_than_64_at_once),
    cmocka_unit_test(test_config_refuses_a_nul_in_any_scalar_with_its_position),
    cmocka_unit_test(test_config_refuses_text_over_16_mib_naming_the_limit),
    cmocka_unit_test(test_config_says_a_directory_is_a_directory),
    cmocka_unit_test(test_config_unknown_keys_say_what_they_may_have_meant),
    cmocka_unit_test(test_the_readme_lists_every_peer_name_and_no_other),
    cmocka_unit_test(test_config_a_segment_without_its_slash_is_told_the_fix),
    cmocka_unit_test(test_config_reads_the_fleet_section_and_its_defaults),
    cmocka_unit_test(test_config_rejects_every_bad_fleet_value_at_its_position),
    cmocka_unit_test(test_config_takes_host_id_from_the_hostname_if_it_is_one),
    cmocka_unit_test(test_c_checks_a_fleet_section_as_the_loader_does),
    cmocka_unit_test(test_apply_ignores_a_valid_fleet_section),
};
T_MAIN(tests)
