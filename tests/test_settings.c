/* SPDX-License-Identifier: MIT */
/*
 * Unit: the settings table and the one validator. Every row is sane and
 * round-trips through YAML; every contradiction reads the same through
 * the YAML loader and through a configuration built in C (and
 * cbshm_apply() refuses the latter, creating nothing); the segment name
 * follows one rule; cbshm_foreach's stop is its own code; and the README,
 * cbctl(1), cbshm.yaml(5) and cbshm.h describe exactly the table's keys
 * and defaults.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static size_t n_settings(void)
{
    size_t n = 0;

    while (cbshm_setting_at(n) != NULL)
        n++;
    return n;
}

static const struct cbshm_setting *setting(const char *key)
{
    const struct cbshm_setting *d = cbshm_setting_find(key);

    if (d == NULL)
        fail_msg("no setting '%s'", key);
    return d;
}

static void test_every_setting_has_keys_a_help_line_and_a_default_in_range(void **state)
{
    const struct cbshm_setting *d, *e;
    struct cbshm_settings s;

    (void)state;
    cbshm_settings_default(&s);
    assert_true(n_settings() >= 18);
    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
        assert_non_null(d->key);
        assert_non_null(d->help);
        assert_true(strlen(d->help) > 10);
        assert_true(d->min <= d->def && d->def <= d->max);
        assert_int_equal(cbshm_setting_get(&s, d), d->def);
        assert_true(d->policies != 0 && d->windows != 0);
        /* Durations are milliseconds in JSON, and say so. */
        if (d->type == CBSHM_SETTING_DURATION) {
            char want[64];
            snprintf(want, sizeof want, "%s_ms", d->key);
            assert_string_equal(d->json_key, want);
        } else {
            assert_string_equal(d->json_key, d->key);
        }
        assert_true((d->type == CBSHM_SETTING_CHOICE) == (d->choices != NULL));
        assert_ptr_equal(cbshm_setting_find(d->key), d);
        assert_ptr_equal(cbshm_setting_find(d->json_key), d);
        for (size_t j = 0; j < i; j++) {
            e = cbshm_setting_at(j);
            assert_string_not_equal(d->key, e->key);
        }
    }
    assert_null(cbshm_setting_find("no_such_setting"));
    assert_null(cbshm_setting_find(NULL));
    assert_int_equal(cbshm_setting_get(&s, NULL), 0);
    assert_int_equal(cbshm_setting_set(NULL, setting("policy"), 1), CBSHM_EINVAL);
    assert_int_equal(cbshm_setting_set(&s, setting("policy"), 1ull << 33), CBSHM_EINVAL);
    assert_int_equal(cbshm_setting_format(NULL, 1, (char[8]){0}, 8), CBSHM_EINVAL);
    assert_int_equal(cbshm_setting_format(setting("policy"), 1, NULL, 8), CBSHM_EINVAL);
}

static void test_values_format_as_the_yaml_writes_them(void **state)
{
    static const struct {
        const char *key;
        uint64_t value;
        const char *text;
    } cases[] = {
        {"open_timeout", 30000, "30s"},
        {"open_timeout", 250, "250ms"},
        {"open_timeout", 120000, "2m"},
        {"open_timeout_max", 86400000, "24h"},
        {"failure_rate", 50, "50%"},
        {"backoff_multiplier", 150, "1.5"},
        {"backoff_multiplier", 125, "1.25"},
        {"backoff_multiplier", 200, "2"},
        {"policy", 1, "rate"},
        {"window_type", 0, "count"},
        {"failure_threshold", 7, "7"},
        {"fleet_open_hosts", 0, "0"},
        {"fleet_open_hosts", 2, "2"},
        {"fleet_open_hosts", CBSHM_FLEET_SHARE | 34, "34%"},
        {"fleet_open_hosts", CBSHM_FLEET_SHARE | 100, "100%"},
    };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(
            cbshm_setting_format(setting(cases[i].key), cases[i].value, buf, sizeof buf), 0);
        assert_string_equal(buf, cases[i].text);
    }
}

/* A value from text, as the YAML and cbctl read it. */
static void test_a_value_parses_from_its_text_with_the_loaders_words(void **state)
{
    char msg[128];
    uint64_t v = 7;

    (void)state;
    assert_int_equal(cbshm_setting_parse(setting("open_timeout"), "2m", &v, msg, sizeof msg), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(cbshm_setting_parse(setting("failure_rate"), "25%", &v, msg, sizeof msg), 0);
    assert_int_equal(v, 25);
    assert_int_equal(cbshm_setting_parse(setting("backoff_multiplier"), "1.5", &v, NULL, 0), 0);
    assert_int_equal(v, 150);
    assert_int_equal(cbshm_setting_parse(setting("window_type"), "time", &v, NULL, 0), 0);
    assert_int_equal(v, CBSHM_WINDOW_TIME);
    assert_int_equal(cbshm_setting_parse(setting("open_timeout"), "5", &v, msg, sizeof msg),
                     CBSHM_ECONFIG);
    assert_string_equal(msg, "duration '5' needs a unit (ms, s, m or h)");
    assert_int_equal(cbshm_setting_parse(setting("open_timeout"), "25h", &v, msg, sizeof msg),
                     CBSHM_ECONFIG);
    assert_string_equal(msg, "value 25h is out of range (1ms..24h)");
    assert_int_equal(cbshm_setting_parse(setting("policy"), "often", &v, msg, sizeof msg),
                     CBSHM_ECONFIG);
    assert_string_equal(msg, "expected consecutive or rate, got 'often'");
    assert_int_equal(v, CBSHM_WINDOW_TIME); /* untouched on failure */
    assert_int_equal(cbshm_setting_parse(NULL, "1", &v, NULL, 0), CBSHM_EINVAL);
    assert_int_equal(cbshm_setting_parse(setting("policy"), NULL, &v, NULL, 0), CBSHM_EINVAL);
}

/* The YAML lines that make setting d apply, so it may be given. */
static void context_for(const struct cbshm_setting *d, char *buf, size_t size)
{
    buf[0] = '\0';
    if ((d->policies & CBSHM_FOR_CONSECUTIVE) == 0 && (d->policies & CBSHM_FOR_RATE) != 0)
        strncat(buf, "    policy: rate\n", size - strlen(buf) - 1);
    if (d->policies == CBSHM_FOR_SLOW_CALLS)
        strncat(buf, "    slow_call_duration: 1s\n", size - strlen(buf) - 1);
    if (d->policies == CBSHM_FOR_BULKHEAD)
        strncat(buf, "    max_concurrent_calls: 4\n", size - strlen(buf) - 1);
    if (d->windows == CBSHM_FOR_TIME_WINDOW)
        strncat(buf, "    window_type: time\n", size - strlen(buf) - 1);
    if (strcmp(d->key, "window_duration") == 0)
        strncat(buf, "    window_buckets: 1\n", size - strlen(buf) - 1);
    if (strcmp(d->key, "window_buckets") == 0)
        strncat(buf, "    window_duration: 24h\n", size - strlen(buf) - 1);
    if (strcmp(d->key, "minimum_calls") == 0)
        strncat(buf, "    window_size: 1000000\n", size - strlen(buf) - 1);
    if (d->decisions == CBSHM_FOR_RATE_DECISION)
        strncat(buf, "    half_open_decision: rate\n", size - strlen(buf) - 1);
    if (strcmp(d->key, "success_threshold") == 0)
        strncat(buf, "    half_open_max_calls: 16\n", size - strlen(buf) - 1);
    if (strcmp(d->key, "open_timeout_max") == 0)
        strncat(buf, "    open_timeout: 1ms\n", size - strlen(buf) - 1);
}

static void test_every_value_in_range_round_trips_through_yaml(void **state)
{
    const struct cbshm_setting *d;

    (void)state;
    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
        uint64_t values[] = {d->min, d->def, d->max, d->min + (d->max - d->min) / 3};
        for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
            struct cbshm_config *cfg = NULL;
            struct cbshm_diag diag;
            char yaml[512], ctx[256], text[32];
            int rc;

            context_for(d, ctx, sizeof ctx);
            /* The rate decision needs its rate; "0" is "no rate" and only
               goes with the first-failure decision. */
            if (strcmp(d->key, "half_open_decision") == 0 && values[k] == CBSHM_HALF_OPEN_RATE)
                strcat(ctx, "    half_open_failure_rate: 50\n");
            if (strcmp(d->key, "half_open_failure_rate") == 0 && values[k] == 0)
                continue;
            cbshm_setting_format(d, values[k], text, sizeof text);
            snprintf(yaml, sizeof yaml, "breakers:\n  - name: a\n%s    %s: \"%s\"\n", ctx, d->key,
                     text);
            rc = cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &diag);
            if (rc != 0)
                fail_msg("%s: %s -> %s: %s", d->key, text, diag.key, diag.message);
            assert_int_equal(cbshm_setting_get(&cfg->breakers[0].settings, d), values[k]);
            assert_int_equal(cbshm_config_check(cfg, NULL), 0);
            cbshm_config_free(cfg);
        }
    }
}

/*
 * One contradiction: settings as raw values (the YAML writes them through
 * cbshm_setting_format), and the key path and message both paths give.
 */
struct given {
    const char *key;
    uint64_t value;
};
struct contradiction {
    struct given set[3];
    const char *key;
    const char *message;
};

static const struct contradiction contradictions[] = {
    {{{"failure_rate", 30}},
     "breakers[0].failure_rate",
     "failure_rate is for policy: rate; this breaker's policy is consecutive"},
    {{{"policy", 1}, {"failure_threshold", 3}},
     "breakers[0].failure_threshold",
     "failure_threshold is for policy: consecutive; this breaker's policy is rate"},
    {{{"minimum_calls", 20}},
     "breakers[0].minimum_calls",
     "minimum_calls is for policy: rate, or any policy with slow_call_duration; this breaker's "
     "policy is consecutive"},
    {{{"slow_call_rate", 50}},
     "breakers[0].slow_call_rate",
     "slow_call_rate needs slow_call_duration"},
    {{{"window_type", 1}, {"window_size", 10}},
     "breakers[0].window_size",
     "window_size is for window_type: count; this window is time"},
    {{{"window_duration", 10000}},
     "breakers[0].window_duration",
     "window_duration is for window_type: time; this window is count"},
    {{{"window_buckets", 5}},
     "breakers[0].window_buckets",
     "window_buckets is for window_type: time; this window is count"},
    {{{"policy", 1}, {"minimum_calls", 200}},
     "breakers[0].minimum_calls",
     "minimum_calls 200 exceeds window_size 100: the window could never hold enough calls to "
     "trip"},
    {{{"policy", 1}, {"minimum_calls", 50}, {"window_size", 20}},
     "breakers[0].minimum_calls",
     "minimum_calls 50 exceeds window_size 20: the window could never hold enough calls to trip"},
    {{{"open_timeout", 60000}, {"open_timeout_max", 30000}},
     "breakers[0].open_timeout_max",
     "open_timeout_max 30s is shorter than open_timeout 1m"},
    {{{"window_type", 1}, {"window_duration", 5}, {"window_buckets", 10}},
     "breakers[0].window_duration",
     "window_duration 5ms cannot hold 10 buckets of 1ms or more"},
    {{{"success_threshold", 2}},
     "breakers[0].success_threshold",
     "success_threshold 2 exceeds half_open_max_calls 1: a half-open phase admits at most 1 "
     "probe"},
    {{{"success_threshold", 3}, {"half_open_max_calls", 2}},
     "breakers[0].success_threshold",
     "success_threshold 3 exceeds half_open_max_calls 2: a half-open phase admits at most 2 "
     "probes"},
    {{{"half_open_decision", 1}},
     "breakers[0].half_open_decision",
     "half_open_decision: rate needs half_open_failure_rate (1..100)"},
    {{{"half_open_decision", 1}, {"half_open_failure_rate", 50}, {"success_threshold", 2}},
     "breakers[0].success_threshold",
     "success_threshold is for half_open_decision: first_failure; this breaker's is rate"},
    {{{"half_open_failure_rate", 20}},
     "breakers[0].half_open_failure_rate",
     "half_open_failure_rate is for half_open_decision: rate; this breaker's is first_failure"},
    {{{"failure_threshold", 0}},
     "breakers[0].failure_threshold",
     "value 0 is out of range (1..1000000)"},
    {{{"half_open_max_calls", 17}},
     "breakers[0].half_open_max_calls",
     "value 17 is out of range (1..16)"},
    {{{"open_timeout", 0}}, "breakers[0].open_timeout", "value 0ms is out of range (1ms..24h)"},
    {{{"probe_timeout", 90000000}},
     "breakers[0].probe_timeout",
     "value 25h is out of range (1ms..24h)"},
    {{{"backoff_multiplier", 50}},
     "breakers[0].backoff_multiplier",
     "value 0.5 is out of range (1..100)"},
    {{{"open_timeout_jitter", 150}},
     "breakers[0].open_timeout_jitter",
     "value 150 is out of range (0..100)"},
    {{{"min_failing_workers", 17}},
     "breakers[0].min_failing_workers",
     "value 17 is out of range (0..16)"},
};

static int load_yaml(const struct contradiction *c, struct cbshm_diag *diag)
{
    struct cbshm_config *cfg = NULL;
    char yaml[512] = "breakers:\n  - name: a\n", text[32];
    int rc;

    for (size_t i = 0; i < 3 && c->set[i].key != NULL; i++) {
        const struct cbshm_setting *d = setting(c->set[i].key);
        cbshm_setting_format(d, c->set[i].value, text, sizeof text);
        snprintf(yaml + strlen(yaml), sizeof yaml - strlen(yaml), "    %s: \"%s\"\n", d->key, text);
    }
    rc = cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, diag);
    assert_null(cfg);
    return rc;
}

static void build_c(const struct contradiction *c, struct cbshm_config *cfg,
                    struct cbshm_breaker_config *bc)
{
    memset(cfg, 0, sizeof *cfg);
    memset(bc, 0, sizeof *bc);
    cfg->capacity = 4;
    cfg->mode = 0600;
    cbshm_settings_default(&cfg->defaults);
    strcpy(bc->name, "a");
    cbshm_settings_default(&bc->settings);
    for (size_t i = 0; i < 3 && c->set[i].key != NULL; i++)
        assert_int_equal(cbshm_setting_set(&bc->settings, setting(c->set[i].key), c->set[i].value),
                         0);
    cfg->n_breakers = 1;
    cfg->breakers = bc;
}

static void test_every_contradiction_reads_the_same_through_yaml_and_c(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof contradictions / sizeof contradictions[0]; i++) {
        const struct contradiction *c = &contradictions[i];
        struct cbshm_breaker_config bc;
        struct cbshm_config cfg;
        struct cbshm_diag y, d;
        char seg[64];

        assert_int_equal(load_yaml(c, &y), CBSHM_ECONFIG);
        if (strcmp(y.key, c->key) != 0 || strcmp(y.message, c->message) != 0)
            fail_msg("yaml case %zu: got %s: %s", i, y.key, y.message);
        assert_string_equal(y.file, "t.yaml");
        assert_true(y.line > 0);

        build_c(c, &cfg, &bc);
        assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
        if (strcmp(d.key, c->key) != 0 || strcmp(d.message, c->message) != 0)
            fail_msg("C case %zu: got %s: %s", i, d.key, d.message);
        assert_string_equal(d.file, "");
        assert_int_equal(d.line, 0);

        /* cbshm_apply() refuses it the same way and creates nothing. */
        assert_int_equal(cbshm_apply(&cfg, t_segment_name(seg), 0, NULL, NULL, NULL),
                         CBSHM_ECONFIG);
        assert_int_equal(cbshm_destroy(seg), CBSHM_ENOSEG);
    }
}

/* A contradiction a breaker inherited from `defaults` names the same key
   through both paths: blame follows the values, not where they came from. */
static void test_an_inherited_contradiction_names_the_same_key_both_ways(void **state)
{
    static const struct {
        const char *yaml;
        struct given set[3];
        const char *key;
    } cases[] = {
        {"defaults:\n  policy: rate\n  minimum_calls: 50\nbreakers:\n  - name: a\n"
         "    window_size: 20\n",
         {{"policy", 1}, {"minimum_calls", 50}, {"window_size", 20}},
         "breakers[0].minimum_calls"},
        {"defaults:\n  open_timeout_max: 1m\nbreakers:\n  - name: a\n    open_timeout: 2m\n",
         {{"open_timeout_max", 60000}, {"open_timeout", 120000}},
         "breakers[0].open_timeout_max"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct contradiction c = {{{NULL, 0}}, NULL, NULL};
        struct cbshm_config *cfg = NULL, built;
        struct cbshm_breaker_config bc;
        struct cbshm_diag y, d;

        assert_int_equal(
            cbshm_config_load_string(cases[i].yaml, strlen(cases[i].yaml), "t.yaml", &cfg, &y),
            CBSHM_ECONFIG);
        memcpy(c.set, cases[i].set, sizeof c.set);
        build_c(&c, &built, &bc);
        assert_int_equal(cbshm_config_check(&built, &d), CBSHM_ECONFIG);
        assert_string_equal(y.key, cases[i].key);
        assert_string_equal(d.key, cases[i].key);
        assert_string_equal(y.message, d.message);
    }
}

/* A value past the range, however it is written, is named as given. */
static void test_values_far_out_of_range_are_named_as_written(void **state)
{
    static const struct {
        const char *yaml, *message;
    } cases[] = {
        {"defaults:\n  open_timeout: 86400001ms\n", "value 86400001ms is out of range (1ms..24h)"},
        {"defaults:\n  open_timeout: 99999999999999999999999s\n",
         "value '99999999999999999999999s' is out of range (1ms..24h)"},
        {"defaults:\n  backoff_multiplier: 1000000\n", "value 1000000 is out of range (1..100)"},
        {"defaults:\n  backoff_multiplier: 99999999999999999999999\n",
         "value '99999999999999999999999' is out of range (1..100)"},
        {"defaults:\n  failure_threshold: 99999999999999999999999\n",
         "value '99999999999999999999999' is out of range (1..1000000)"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cbshm_config *cfg = NULL;
        struct cbshm_diag d;

        assert_int_equal(
            cbshm_config_load_string(cases[i].yaml, strlen(cases[i].yaml), "t.yaml", &cfg, &d),
            CBSHM_ECONFIG);
        if (strcmp(d.message, cases[i].message) != 0)
            fail_msg("case %zu: got '%s'", i, d.message);
    }
}

/* The segment-wide keys, through both paths. */
static void test_segment_keys_are_checked_the_same_through_yaml_and_c(void **state)
{
    static const struct {
        const char *yaml;
        uint32_t mode, capacity;
        int duplicate, bad_name, too_many;
        const char *key, *message;
    } cases[] = {
        {"mode: \"0666\"\n", 0666, 4, 0, 0, 0, "mode", "mode 0666 is writable by others; refusing"},
        {"mode: \"0777\"\n", 0777, 4, 0, 0, 0, "mode", "mode 0777 is writable by others; refusing"},
        {"mode: \"0000\"\n", 0, 4, 0, 0, 0, "mode", "mode 0000 must let the owner read and write"},
        {"mode: \"0400\"\n", 0400, 4, 0, 0, 0, "mode",
         "mode 0400 must let the owner read and write"},
        {"mode: \"1600\"\n", 01600, 4, 0, 0, 0, "mode", "mode 1600 has bits beyond 0777"},
        {"capacity: 0\n", 0600, 0, 0, 0, 0, "capacity", "value 0 is out of range (1..65536)"},
        {"capacity: 65537\n", 0600, 65537, 0, 0, 0, "capacity",
         "value 65537 is out of range (1..65536)"},
        {"breakers:\n  - name: a\n  - name: a\n", 0600, 4, 1, 0, 0, "breakers[1]",
         "duplicate breaker name 'a' (first at breakers[0])"},
        {"breakers:\n  - name: has space\n", 0600, 4, 0, 1, 0, "breakers[0].name",
         "invalid breaker name 'has space' (1..63 bytes of A-Z a-z 0-9 . _ : -)"},
        {"capacity: 1\nbreakers:\n  - name: a\n  - name: b\n", 0600, 1, 0, 0, 1, "breakers",
         "2 breakers exceed capacity 1"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cbshm_config *loaded = NULL, cfg;
        struct cbshm_breaker_config bc[2];
        struct cbshm_diag y, d;
        char seg[64];

        assert_int_equal(
            cbshm_config_load_string(cases[i].yaml, strlen(cases[i].yaml), "t.yaml", &loaded, &y),
            CBSHM_ECONFIG);
        if (strcmp(y.key, cases[i].key) != 0 || strcmp(y.message, cases[i].message) != 0)
            fail_msg("yaml case %zu: got %s: %s", i, y.key, y.message);

        memset(&cfg, 0, sizeof cfg);
        memset(bc, 0, sizeof bc);
        cfg.mode = cases[i].mode;
        cfg.capacity = cases[i].capacity;
        strcpy(bc[0].name, cases[i].bad_name ? "has space" : "a");
        strcpy(bc[1].name, cases[i].duplicate ? "a" : "b");
        cbshm_settings_default(&bc[0].settings);
        cbshm_settings_default(&bc[1].settings);
        cfg.breakers = bc;
        cfg.n_breakers = cases[i].duplicate || cases[i].too_many ? 2 : 1;
        assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
        if (strcmp(d.key, cases[i].key) != 0 || strcmp(d.message, cases[i].message) != 0)
            fail_msg("C case %zu: got %s: %s", i, d.key, d.message);
        assert_int_equal(cbshm_apply(&cfg, t_segment_name(seg), 0, NULL, NULL, NULL),
                         CBSHM_ECONFIG);
        assert_int_equal(cbshm_destroy(seg), CBSHM_ENOSEG);
    }
}

static void test_the_c_path_refuses_reserved_fields_and_bad_arguments(void **state)
{
    struct cbshm_breaker_config bc;
    struct cbshm_config cfg;
    struct cbshm_diag d;

    (void)state;
    memset(&cfg, 0, sizeof cfg);
    memset(&bc, 0, sizeof bc);
    cfg.capacity = 1;
    cfg.mode = 0600;
    strcpy(bc.name, "a");
    cbshm_settings_default(&bc.settings);
    bc.settings.reserved[3] = 1;
    cfg.breakers = &bc;
    cfg.n_breakers = 1;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "breakers[0]");
    assert_non_null(strstr(d.message, "reserved"));
    bc.settings.reserved[3] = 0;
    bc.settings.policy = 2;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "breakers[0].policy");
    assert_string_equal(d.message, "value 2 is not consecutive or rate");
    bc.settings.policy = 0;
    memset(bc.name, 'x', sizeof bc.name); /* not terminated */
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "breakers[0].name");
    strcpy(bc.name, "a");
    assert_int_equal(cbshm_config_check(&cfg, &d), 0);
    /* (gid_t)-1 is "no change" to fchown(2): no group at all. */
    cfg.has_group = 1;
    cfg.gid = UINT32_MAX;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "group");
    cfg.has_group = 5;
    cfg.gid = 0;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.message, "has_group 5 is neither 0 nor 1");
    cfg.has_group = 0;
    cfg.has_owner = 2;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.message, "has_owner 2 is neither 0 nor 1");
    cfg.has_owner = 1;
    cfg.uid = UINT32_MAX;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.key, "owner");
    cfg.has_owner = 0;
    cfg.uid = 0;
    cfg.reserved[5] = 1;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_ECONFIG);
    assert_string_equal(d.message, "reserved fields of the configuration must be zero");
    cfg.reserved[5] = 0;
    assert_int_equal(cbshm_config_check(&cfg, &d), 0);
    assert_int_equal(cbshm_config_check(NULL, &d), CBSHM_EINVAL);
    cfg.breakers = NULL;
    assert_int_equal(cbshm_config_check(&cfg, &d), CBSHM_EINVAL);
}

/* A consecutive breaker that inherits rate settings from defaults is fine,
   and those settings, meaningless to it, go back to their defaults. */
static void test_inherited_settings_that_do_not_apply_return_to_their_defaults(void **state)
{
    static const char yaml[] = "defaults:\n  policy: rate\n  failure_rate: 30\n"
                               "  minimum_calls: 20\nbreakers:\n  - name: c\n"
                               "    policy: consecutive\n  - name: r\n";
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;

    (void)state;
    assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &d), 0);
    assert_int_equal(cfg->breakers[0].settings.failure_rate, 50);
    assert_int_equal(cfg->breakers[0].settings.minimum_calls, 10);
    assert_int_equal(cfg->breakers[1].settings.failure_rate, 30);
    assert_int_equal(cfg->breakers[1].settings.minimum_calls, 20);
    assert_int_equal(cbshm_config_check(cfg, &d), 0);
    cbshm_config_free(cfg);
}

static void test_the_segment_is_the_argument_then_the_file_then_the_environment(void **state)
{
    struct cbshm_config cfg;

    (void)state;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.segment, "/from-file");
    setenv("CBSHM_SEGMENT", "/from-env", 1);
    assert_string_equal(cbshm_config_segment(&cfg, "/given"), "/given");
    assert_string_equal(cbshm_config_segment(&cfg, NULL), "/from-file");
    assert_string_equal(cbshm_config_segment(&cfg, ""), "/from-file");
    cfg.segment[0] = '\0';
    assert_string_equal(cbshm_config_segment(&cfg, NULL), "/from-env");
    assert_string_equal(cbshm_config_segment(NULL, NULL), "/from-env");
    unsetenv("CBSHM_SEGMENT");
    assert_string_equal(cbshm_config_segment(NULL, NULL), "/cbshm");
}

static int stop_at_second(void *ctx, const struct cbshm_snapshot *s)
{
    int *seen = ctx;

    (void)s;
    return ++*seen == 2 ? -1 : 0; /* -1 is -EPERM: it must not come back */
}

static void test_foreach_stopped_by_its_callback_returns_estopped(void **state)
{
    struct cbshm *shm;
    char seg[64];
    int seen = 0;

    (void)state;
    t_apply(t_segment_name(seg), "breakers:\n  - name: a\n  - name: b\n  - name: c\n");
    assert_int_equal(cbshm_open(seg, 0, &shm), 0);
    assert_int_equal(cbshm_foreach(shm, stop_at_second, &seen), CBSHM_ESTOPPED);
    assert_int_equal(seen, 2);
    assert_string_equal(cbshm_errname(CBSHM_ESTOPPED), "CBSHM_ESTOPPED");
    cbshm_close(shm);
    cbshm_destroy(seg);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* The README's words for the policies and windows a setting is valid with. */
static void policy_words(const struct cbshm_setting *d, char *buf, size_t size)
{
    unsigned p = d->policies & (CBSHM_FOR_CONSECUTIVE | CBSHM_FOR_RATE);
    const char *base = p == (CBSHM_FOR_CONSECUTIVE | CBSHM_FOR_RATE) ? "both"
                       : p == CBSHM_FOR_RATE                         ? "rate"
                                                                     : "consecutive";

    if (d->policies == CBSHM_FOR_SLOW_CALLS)
        snprintf(buf, size, "both, with `slow_call_duration`");
    else if (d->policies == CBSHM_FOR_BULKHEAD)
        snprintf(buf, size, "both, with a bulkhead");
    else if (d->policies & CBSHM_FOR_SLOW_CALLS)
        snprintf(buf, size, "%s, or both with `slow_call_duration`", base);
    else
        snprintf(buf, size, "%s", base);
}

static const char *decision_words(const struct cbshm_setting *d)
{
    return d->decisions == CBSHM_FOR_FIRST_FAILURE   ? "first_failure"
           : d->decisions == CBSHM_FOR_RATE_DECISION ? "rate"
                                                     : "both";
}

static const char *window_words(const struct cbshm_setting *d)
{
    return d->windows == CBSHM_FOR_COUNT_WINDOW  ? "count"
           : d->windows == CBSHM_FOR_TIME_WINDOW ? "time"
                                                 : "both";
}

static void test_the_readme_lists_every_setting_with_its_default_policy_and_window(void **state)
{
    char *readme = slurp(SOURCE_DIR "/README.md"), *at, *end, *line;
    size_t seen = 0;

    (void)state;
    assert_non_null(at = strstr(readme, "\n### Breaker settings\n"));
    assert_non_null(at = strstr(at, "|---|"));
    at = strchr(at, '\n') + 1;
    for (; *at == '|'; at = end + 1) {
        char cell[8][160], want[160];
        const struct cbshm_setting *d;
        size_t n = 0;

        end = strchr(at, '\n');
        *end = '\0';
        line = at + 1;
        for (char *bar; n < 8 && (bar = strchr(line, '|')) != NULL; line = bar + 1, n++) {
            size_t len = (size_t)(bar - line);
            snprintf(cell[n], sizeof cell[n], "%.*s", (int)len, line);
            /* trim */
            while (cell[n][0] == ' ')
                memmove(cell[n], cell[n] + 1, strlen(cell[n]));
            while (cell[n][0] != '\0' && cell[n][strlen(cell[n]) - 1] == ' ')
                cell[n][strlen(cell[n]) - 1] = '\0';
        }
        assert_int_equal(n, 8);
        assert_true(cell[0][0] == '`');
        cell[0][strlen(cell[0]) - 1] = '\0';
        if ((d = cbshm_setting_find(cell[0] + 1)) == NULL || strcmp(d->key, cell[0] + 1) != 0)
            fail_msg("README names '%s', which is not a setting", cell[0] + 1);
        cbshm_setting_format(d, d->def, want + 1, sizeof want - 2);
        want[0] = '`';
        strcat(want, "`");
        if (strcmp(cell[2], want) != 0)
            fail_msg("README: %s defaults to %s, the table to %s", d->key, cell[2], want);
        policy_words(d, want, sizeof want);
        if (strcmp(cell[4], want) != 0)
            fail_msg("README: %s is valid with %s, the table says %s", d->key, cell[4], want);
        if (strcmp(cell[5], window_words(d)) != 0)
            fail_msg("README: %s window %s, the table says %s", d->key, cell[5], window_words(d));
        if (strcmp(cell[6], decision_words(d)) != 0)
            fail_msg("README: %s half-open %s, the table says %s", d->key, cell[6],
                     decision_words(d));
        seen++;
    }
    assert_int_equal(seen, n_settings());
    free(readme);
}

static void test_cbctl_man_page_lists_every_setting_and_no_other(void **state)
{
    char *man = slurp(SOURCE_DIR "/man/cbctl.1"), *at, *end;
    size_t seen = 0;

    (void)state;
    assert_non_null(at = strstr(man, "\n.SS Breaker settings\n"));
    assert_non_null(end = strstr(at, "\n.SH "));
    *end = '\0';
    while ((at = strstr(at, "\n.BR ")) != NULL) {
        const struct cbshm_setting *d;
        char key[64], def[48], want[64];

        at += 5;
        assert_int_equal(sscanf(at, "%63s", key), 1);
        if ((d = cbshm_setting_find(key)) == NULL || strcmp(d->key, key) != 0)
            fail_msg("cbctl(1) names '%s', which is not a setting", key);
        cbshm_setting_format(d, d->def, def, sizeof def);
        snprintf(want, sizeof want, "default \\fB%s\\fR)", def);
        if (strstr(at, want) == NULL || strstr(at, want) > strchr(at, '\n'))
            fail_msg("cbctl(1): %s does not say '%s'", key, want);
        seen++;
    }
    assert_int_equal(seen, n_settings());
    free(man);
}

/* A roff text line as it reads: font escapes dropped, "\-" as "-". */
static void roff_plain(const char *line, size_t len, char *out, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < size; i++) {
        if (line[i] == '\\' && i + 1 < len && line[i + 1] == 'f')
            i += 2;
        else if (line[i] == '\\' && i + 1 < len && line[i + 1] == '-')
            out[n++] = '-', i++;
        else
            out[n++] = line[i];
    }
    out[n] = '\0';
}

/*
 * The entries of one section (.SH name) of a man page: the key of each
 * .TP's ".B key" line, and the "Default ..." line under it as it reads
 * ("" when it has none). Returns how many.
 */
struct man_entry {
    char key[64];
    char def[256];
};

static size_t man_entries(const char *page, const char *section, struct man_entry *e, size_t max)
{
    char heading[64];
    const char *at, *end;
    size_t n = 0;
    int after_tp = 0;

    snprintf(heading, sizeof heading, "\n.SH %s\n", section);
    if ((at = strstr(page, heading)) == NULL)
        fail_msg("man page has no section %s", section);
    at += strlen(heading);
    if ((end = strstr(at, "\n.SH ")) == NULL)
        end = at + strlen(at);
    while (at < end) {
        size_t len = strcspn(at, "\n");
        char plain[256];

        roff_plain(at, len, plain, sizeof plain);
        if (strcmp(plain, ".TP") == 0) {
            after_tp = 1;
        } else if (after_tp) {
            assert_true(n < max);
            if (strncmp(plain, ".B ", 3) != 0)
                fail_msg("%s: an entry starts '%s', not '.B key'", section, plain);
            snprintf(e[n].key, sizeof e[n].key, "%.63s", plain + 3);
            e[n++].def[0] = '\0';
            after_tp = 0;
        } else if (n > 0 && strncmp(plain, "Default", 7) == 0) {
            if (e[n - 1].def[0] != '\0')
                fail_msg("%s: %s has two Default lines", section, e[n - 1].key);
            snprintf(e[n - 1].def, sizeof e[n - 1].def, "%s", plain);
        }
        at += len + (at[len] == '\n');
    }
    return n;
}

/*
 * cbshm.yaml(5), the file's reference, lists the table's settings in its
 * order, each with the default and the range (or the words) the table
 * gives, and no other; its top-level keys and a breaker's `name` are keys
 * the loader takes, capacity and mode with the defaults it gives.
 */
static void test_cbshm_yaml_5_gives_every_setting_its_default_and_range_and_no_other(void **state)
{
    static struct man_entry e[64];
    char *man = slurp(SOURCE_DIR "/man/cbshm.yaml.5");
    const struct cbshm_setting *d;
    struct cbshm_config *cfg;
    struct cbshm_diag diag;
    size_t n;
    int saw_capacity = 0, saw_mode = 0;

    (void)state;
    n = man_entries(man, "BREAKER SETTINGS", e, sizeof e / sizeof e[0]);
    for (size_t i = 0; i < n; i++) {
        char def[48], lo[48], hi[48], want[256];

        if ((d = cbshm_setting_find(e[i].key)) == NULL || strcmp(d->key, e[i].key) != 0)
            fail_msg("cbshm.yaml(5) documents '%s', which is not a setting", e[i].key);
        if (d != cbshm_setting_at(i))
            fail_msg("cbshm.yaml(5): %s is entry %zu, the table's row %s", d->key, i,
                     cbshm_setting_at(i) != NULL ? cbshm_setting_at(i)->key : "(none)");
        cbshm_setting_format(d, d->def, def, sizeof def);
        if (d->type == CBSHM_SETTING_CHOICE) {
            int len = snprintf(want, sizeof want, "Default %s; one of ", def);
            for (size_t k = 0; d->choices[k] != NULL; k++)
                len += snprintf(want + len, sizeof want - (size_t)len, "%s%s", k ? ", " : "",
                                d->choices[k]);
            snprintf(want + len, sizeof want - (size_t)len, ".");
        } else {
            cbshm_setting_format(d, d->min, lo, sizeof lo);
            cbshm_setting_format(d, d->max, hi, sizeof hi);
            if (d->type == CBSHM_SETTING_HOSTS)
                snprintf(want, sizeof want,
                         "Default %s; range %s to %s hosts, or a share 1%% to 100%%.", def, lo, hi);
            else
                snprintf(want, sizeof want, "Default %s; range %s to %s.", def, lo, hi);
        }
        if (strcmp(e[i].def, want) != 0)
            fail_msg("cbshm.yaml(5): %s says '%s', the table '%s'", d->key, e[i].def, want);
    }
    if (n != n_settings())
        fail_msg("cbshm.yaml(5) documents %zu settings, the table has %zu (the first missing: %s)",
                 n, n_settings(), cbshm_setting_at(n) != NULL ? cbshm_setting_at(n)->key : "-");

    assert_int_equal(cbshm_config_load_string("{}", 2, "empty", &cfg, &diag), 0);
    n = man_entries(man, "TOP-LEVEL KEYS", e, sizeof e / sizeof e[0]);
    for (size_t i = 0; i < n; i++) {
        char yaml[96], want[96];
        struct cbshm_config *bad = NULL;

        /* Every key refuses a list of lists; only an unknown one says so. */
        snprintf(yaml, sizeof yaml, "%.63s: [[1]]\n", e[i].key);
        assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "key", &bad, &diag),
                         CBSHM_ECONFIG);
        if (strstr(diag.message, "unknown key") != NULL)
            fail_msg("cbshm.yaml(5) documents the top-level key '%s': %s", e[i].key, diag.message);
        if (strcmp(e[i].key, "capacity") == 0) {
            snprintf(want, sizeof want, "Default %u; range 1 to %u.", cfg->capacity,
                     CBSHM_CAPACITY_MAX);
            saw_capacity = 1;
        } else if (strcmp(e[i].key, "mode") == 0) {
            snprintf(want, sizeof want, "Default \"%04o\".", (unsigned)cfg->mode);
            saw_mode = 1;
        } else {
            continue;
        }
        if (strcmp(e[i].def, want) != 0)
            fail_msg("cbshm.yaml(5): %s says '%s', the loader '%s'", e[i].key, e[i].def, want);
    }
    assert_true(saw_capacity && saw_mode);
    cbshm_config_free(cfg);
    cfg = NULL;

    n = man_entries(man, "BREAKERS", e, sizeof e / sizeof e[0]);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].key, "name");
    assert_int_equal(cbshm_config_load_string("breakers: [{name: [[1]]}]", 25, "name", &cfg, &diag),
                     CBSHM_ECONFIG);
    assert_null(strstr(diag.message, "unknown key"));
    free(man);
}

/* The installed header is the contract: each field names its default. */
static void test_the_header_gives_every_settings_default(void **state)
{
    char *h = slurp(SOURCE_DIR "/libcbshm/include/cbshm.h"), *body, *end;
    const struct cbshm_setting *d;

    (void)state;
    assert_non_null(body = strstr(h, "struct cbshm_settings {"));
    assert_non_null(end = strstr(body, "\n};"));
    *end = '\0';
    for (size_t i = 0; (d = cbshm_setting_at(i)) != NULL; i++) {
        char field[80], want[48], *at, *comment;

        snprintf(field, sizeof field, " %s;", d->json_key);
        if ((at = strstr(body, field)) == NULL)
            fail_msg("cbshm.h: struct cbshm_settings has no field %s", d->json_key);
        /* The field's comment is the one just above it. */
        *at = '\0';
        comment = strrchr(body, '/');
        while (comment > body && !(comment[0] == '/' && comment[1] == '*'))
            comment--;
        snprintf(want, sizeof want, "default %llu", (unsigned long long)d->def);
        if (d->type == CBSHM_SETTING_CHOICE)
            snprintf(want, sizeof want, "(%llu)", (unsigned long long)d->def);
        if (strstr(comment, want) == NULL)
            fail_msg("cbshm.h: the comment of %s does not say '%s'", d->json_key, want);
        *at = ' ';
    }
    free(h);
}

/*
 * fleet_open_hosts: a count is whole, a share is below 1 (or up to 100%),
 * 0 is off; a share of none, "1.5", and a count past 10000 are refused
 * with what would be right.
 */
static void test_fleet_open_hosts_is_a_count_or_a_share_of_the_live_hosts(void **state)
{
    static const struct {
        const char *text;
        uint64_t value;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"2", 2},
        {"10000", 10000},
        {"0.34", CBSHM_FLEET_SHARE | 34},
        {"0.5", CBSHM_FLEET_SHARE | 50},
        {"0.01", CBSHM_FLEET_SHARE | 1},
        {"34%", CBSHM_FLEET_SHARE | 34},
        {"1%", CBSHM_FLEET_SHARE | 1},
        {"100%", CBSHM_FLEET_SHARE | 100},
    };
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"1.5", "'1.5' is neither a host count (a whole number) nor a share of the live hosts "
                "(below 1, such as 0.34, or 100%)"},
        {"1.0", "'1.0' is neither a host count"},
        {"0%", "a share of 0% is no host: 0 turns fleet_open_hosts off"},
        {"0.0", "a share of 0 is no host: 0 turns fleet_open_hosts off"},
        {"0.00", "a share of 0 is no host"},
        {"101%", "share '101%' is over 100%"},
        {"0.345", "'0.345' has more than two decimals"},
        {"10001", "value 10001 is out of range (0..10000 hosts, or a share 1%..100%)"},
        {"99999999999999999999999", "value '99999999999999999999999' is out of range (0..10000 "
                                    "hosts, or a share 1%..100%)"},
        {"", "expected a host count such as 2, or a share of the live hosts such as 0.34 or 34%, "
             "got ''"},
        {"two", "expected a host count such as 2"},
        {".5", "expected a host count such as 2"},
        {"0.", "expected a host count such as 2"},
        {"0.3x", "expected a host count such as 2"},
        {"34 %", "expected a host count such as 2"},
        {"%", "expected a host count such as 2"},
        {"-1", "expected a host count such as 2"},
    };
    const struct cbshm_setting *d = setting("fleet_open_hosts");
    struct cbshm_settings s;
    struct cbshm_breaker_config bc = {"a", {0}};
    struct cbshm_config cfg = {.capacity = 1, .mode = 0600, .n_breakers = 1, .breakers = &bc};
    struct cbshm_diag diag;
    char msg[256], text[32];
    uint64_t v;

    (void)state;
    assert_int_equal(d->type, CBSHM_SETTING_HOSTS);
    assert_int_equal(d->def, 0);
    cbshm_settings_default(&s);
    assert_int_equal(s.fleet_open_hosts, 0);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        v = 7;
        if (cbshm_setting_parse(d, good[i].text, &v, msg, sizeof msg) != 0)
            fail_msg("'%s': %s", good[i].text, msg);
        assert_int_equal(v, good[i].value);
        /* It reads back as it formats. */
        cbshm_setting_format(d, v, text, sizeof text);
        assert_int_equal(cbshm_setting_parse(d, text, &v, msg, sizeof msg), 0);
        assert_int_equal(v, good[i].value);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        if (cbshm_setting_parse(d, bad[i].text, &v, msg, sizeof msg) != CBSHM_ECONFIG ||
            strstr(msg, bad[i].message) != msg)
            fail_msg("'%s': got '%s'", bad[i].text, msg);
        assert_int_equal(v, 7);
    }
    /* From code: the same range, a share with no other bit. */
    cbshm_settings_default(&bc.settings);
    bc.settings.fleet_open_hosts = CBSHM_FLEET_SHARE | 100;
    assert_int_equal(cbshm_config_check(&cfg, &diag), 0);
    bc.settings.fleet_open_hosts = 10000;
    assert_int_equal(cbshm_config_check(&cfg, &diag), 0);
    bc.settings.fleet_open_hosts = 10001;
    assert_int_equal(cbshm_config_check(&cfg, &diag), CBSHM_ECONFIG);
    assert_string_equal(diag.key, "breakers[0].fleet_open_hosts");
    assert_string_equal(diag.message,
                        "value 10001 is out of range (0..10000 hosts, or a share 1%..100%)");
    bc.settings.fleet_open_hosts = CBSHM_FLEET_SHARE;
    assert_int_equal(cbshm_config_check(&cfg, &diag), CBSHM_ECONFIG);
    assert_string_equal(diag.message,
                        "value 0% is out of range (0..10000 hosts, or a share 1%..100%)");
    bc.settings.fleet_open_hosts = CBSHM_FLEET_SHARE | 101;
    assert_int_equal(cbshm_config_check(&cfg, &diag), CBSHM_ECONFIG);
    bc.settings.fleet_open_hosts = CBSHM_FLEET_SHARE | 0x100 | 34;
    assert_int_equal(cbshm_config_check(&cfg, &diag), CBSHM_ECONFIG);
}

/* A count whose bit 31 is set would read as a share: 2147483682 is
   CBSHM_FLEET_SHARE | 34, and was taken as 34%. */
static void test_a_host_count_of_2147483648_or_more_is_out_of_range_not_a_share(void **state)
{
    static const char *const counts[] = {"2147483648", "2147483682", "2147483748", "4294967295"};
    const struct cbshm_setting *d = setting("fleet_open_hosts");
    char msg[256], want[256];
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        v = 7;
        snprintf(want, sizeof want,
                 "value '%s' is out of range (0..10000 hosts, or a share 1%%..100%%)", counts[i]);
        if (cbshm_setting_parse(d, counts[i], &v, msg, sizeof msg) != CBSHM_ECONFIG ||
            strcmp(msg, want) != 0)
            fail_msg("'%s': got %llu, '%s'", counts[i], (unsigned long long)v, msg);
        assert_int_equal(v, 7);
    }
}

/* Through the YAML, with the value's position, in a breaker or defaults. */
static void test_fleet_open_hosts_loads_from_yaml_and_is_refused_at_its_position(void **state)
{
    static const struct {
        const char *value, *message;
    } bad[] = {
        {"1.5", "'1.5' is neither a host count"},
        {"10001", "value 10001 is out of range (0..10000 hosts, or a share 1%..100%)"},
        {"0%", "a share of 0% is no host"},
        {"[2]", "expected a host count such as 2 or a share such as 0.34, got a list"},
    };
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    const char *y = "defaults:\n  fleet_open_hosts: 34%\nbreakers:\n  - name: a\n"
                    "  - name: b\n    fleet_open_hosts: 2\n  - name: c\n    fleet_open_hosts: 0\n"
                    "  - name: e\n    fleet_open_hosts: 0.5\n";

    (void)state;
    assert_int_equal(cbshm_config_load_string(y, strlen(y), "t.yaml", &cfg, &d), 0);
    assert_int_equal(cfg->breakers[0].settings.fleet_open_hosts, CBSHM_FLEET_SHARE | 34);
    assert_int_equal(cfg->breakers[1].settings.fleet_open_hosts, 2);
    assert_int_equal(cfg->breakers[2].settings.fleet_open_hosts, 0);
    assert_int_equal(cfg->breakers[3].settings.fleet_open_hosts, CBSHM_FLEET_SHARE | 50);
    cbshm_config_free(cfg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[128];
        snprintf(yaml, sizeof yaml, "breakers:\n  - name: a\n    fleet_open_hosts: %s\n",
                 bad[i].value);
        cfg = NULL;
        assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &d),
                         CBSHM_ECONFIG);
        assert_null(cfg);
        assert_string_equal(d.key, "breakers[0].fleet_open_hosts");
        assert_int_equal(d.line, 3);
        assert_int_equal(d.column, 23);
        if (strstr(d.message, bad[i].message) != d.message)
            fail_msg("%s: got '%s'", bad[i].value, d.message);
        snprintf(yaml, sizeof yaml, "defaults:\n  fleet_open_hosts: %s\n", bad[i].value);
        assert_int_equal(cbshm_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, &d),
                         CBSHM_ECONFIG);
        assert_string_equal(d.key, "defaults.fleet_open_hosts");
        assert_int_equal(d.line, 2);
        assert_int_equal(d.column, 21);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_setting_has_keys_a_help_line_and_a_default_in_range),
    cmocka_unit_test(test_values_format_as_the_yaml_writes_them),
    cmocka_unit_test(test_a_value_parses_from_its_text_with_the_loaders_words),
    cmocka_unit_test(test_fleet_open_hosts_is_a_count_or_a_share_of_the_live_hosts),
    cmocka_unit_test(test_fleet_open_hosts_loads_from_yaml_and_is_refused_at_its_position),
    cmocka_unit_test(test_a_host_count_of_2147483648_or_more_is_out_of_range_not_a_share),
    cmocka_unit_test(test_every_value_in_range_round_trips_through_yaml),
    cmocka_unit_test(test_every_contradiction_reads_the_same_through_yaml_and_c),
    cmocka_unit_test(test_an_inherited_contradiction_names_the_same_key_both_ways),
    cmocka_unit_test(test_values_far_out_of_range_are_named_as_written),
    cmocka_unit_test(test_segment_keys_are_checked_the_same_through_yaml_and_c),
    cmocka_unit_test(test_the_c_path_refuses_reserved_fields_and_bad_arguments),
    cmocka_unit_test(test_inherited_settings_that_do_not_apply_return_to_their_defaults),
    cmocka_unit_test(test_the_segment_is_the_argument_then_the_file_then_the_environment),
    cmocka_unit_test(test_foreach_stopped_by_its_callback_returns_estopped),
    cmocka_unit_test(test_the_readme_lists_every_setting_with_its_default_policy_and_window),
    cmocka_unit_test(test_cbctl_man_page_lists_every_setting_and_no_other),
    cmocka_unit_test(test_the_header_gives_every_settings_default),
    cmocka_unit_test(test_cbshm_yaml_5_gives_every_setting_its_default_and_range_and_no_other),
};
T_MAIN(tests)
