/*
 * test_tn_util - buffers, environment tables, backoff and metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <tn/tn_buf.h>
#include <tn/tn_env.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_time.h>

/* buf_cap - appending past the cap fails and changes nothing */
static void buf_cap(void **state)
{
    struct tn_buf b;

    (void)state;
    tn_buf_init(&b, 8);
    assert_int_equal(tn_buf_adds(&b, "hello"), TN_OK);
    assert_int_equal(tn_buf_adds(&b, "world"), TN_E2BIG);
    assert_string_equal(b.data, "hello");
    assert_int_equal(tn_buf_printf(&b, "%d", 123), TN_OK);
    assert_string_equal(b.data, "hello123");
    assert_int_equal(tn_buf_add(&b, "x", 1), TN_E2BIG);
    tn_buf_free(&b);
}

struct cfg {
    char *url;
    char *secret;
    int64_t batch;
    int64_t timeout;
    bool flag;
};

static const struct tn_env_spec spec[] = {
    TN_ENV_STR("TT_URL", "redis://x", struct cfg, url),
    TN_ENV_SECRET("TT_SECRET", NULL, struct cfg, secret),
    TN_ENV_INT("TT_BATCH", "32", 1, 1000, struct cfg, batch),
    TN_ENV_MS("TT_TIMEOUT", "10s", 100, 120000, struct cfg, timeout),
    TN_ENV_BOOL("TT_FLAG", "no", struct cfg, flag),
    TN_ENV_END,
};

/* clear_env - forget the test variables */
static void clear_env(void)
{
    static const char *const names[] = {"TT_URL",   "TT_SECRET",  "TT_SECRET_FILE",
                                        "TT_BATCH", "TT_TIMEOUT", "TT_FLAG"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unsetenv(names[i]);
}

/* env_defaults - defaults apply, a required secret may come from a file */
static void env_defaults_and_file(void **state)
{
    struct cfg c = {0};
    const char *dir = getenv("TN_TEST_TMP") ? getenv("TN_TEST_TMP") : P_tmpdir;
    char path[512];
    int fd;

    snprintf(path, sizeof(path), "%s/tn-secret-XXXXXX", dir);
    fd = mkstemp(path);

    (void)state;
    clear_env();
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    setenv("TT_SECRET_FILE", path, 1);
    assert_int_equal(tn_env_load(spec, &c), TN_OK);
    assert_string_equal(c.url, "redis://x");
    assert_string_equal(c.secret, "s3cret");
    assert_int_equal(c.batch, 32);
    assert_int_equal(c.timeout, 10000);
    assert_false(c.flag);
    tn_env_free(spec, &c);
    unlink(path);
}

/* env_all_errors - every bad variable fails the load, good ones still parse */
static void env_all_errors(void **state)
{
    static const struct {
        const char *var, *val;
        enum tn_err want;
    } cases[] = {
        {"TT_BATCH", "0", TN_EINVAL},    {"TT_BATCH", "1001", TN_EINVAL},
        {"TT_BATCH", "12x", TN_EINVAL},  {"TT_TIMEOUT", "5", TN_EINVAL},
        {"TT_TIMEOUT", "2m", TN_OK},     {"TT_TIMEOUT", "3q", TN_EINVAL},
        {"TT_FLAG", "maybe", TN_EINVAL}, {"TT_FLAG", "on", TN_OK},
        {"TT_BATCH", "1000", TN_OK},     {"TT_TIMEOUT", "250ms", TN_OK},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c = {0};

        clear_env();
        setenv("TT_SECRET", "x", 1);
        setenv(cases[i].var, cases[i].val, 1);
        assert_int_equal(tn_env_load(spec, &c), cases[i].want);
        tn_env_free(spec, &c);
    }
    clear_env();
    {
        struct cfg c = {0};

        assert_int_equal(tn_env_load(spec, &c), TN_EINVAL); /* required secret missing */
        assert_string_equal(c.url, "redis://x");            /* the rest still parsed */
        tn_env_free(spec, &c);
    }
}

/* backoff_grows - delays grow, stay within [d/2, d] and never pass the cap */
static void backoff_grows(void **state)
{
    (void)state;
    for (uint32_t a = 0; a < 12; a++) {
        uint64_t d = 100ULL << a;
        uint32_t got = tn_backoff_delay(100, 5000, a);

        if (d > 5000)
            d = 5000;
        assert_in_range(got, d / 2, d);
    }
}

/* metrics_text - Prometheus exposition with HELP/TYPE once per name */
static void metrics_text(void **state)
{
    struct tn_metrics *m = tn_metrics_new();
    struct tn_buf out;
    struct tn_metric *a, *b, *h;

    (void)state;
    a = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_x_total", "X things", "reason=\"a\"");
    b = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_x_total", "X things", "reason=\"b\"");
    h = tn_metrics_get(m, TN_METRIC_HISTOGRAM, "tern_lat_seconds", "Latency", NULL);
    assert_ptr_equal(a, tn_metrics_get(m, TN_METRIC_COUNTER, "tern_x_total", "", "reason=\"a\""));
    tn_metric_inc(a);
    tn_metric_add(b, 2);
    tn_metric_observe(h, 0.003);
    tn_buf_init(&out, 0);
    assert_int_equal(tn_metrics_render(m, &out), TN_OK);
    assert_non_null(strstr(out.data, "# TYPE tern_x_total counter\n"
                                     "tern_x_total{reason=\"a\"} 1\n"
                                     "tern_x_total{reason=\"b\"} 2\n"));
    assert_non_null(strstr(out.data, "tern_lat_seconds_bucket{le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(out.data, "tern_lat_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.data, "tern_lat_seconds_count{} 1\n"));
    assert_null(strstr(strstr(out.data, "# HELP tern_x_total") + 1, "# HELP tern_x_total"));
    tn_buf_free(&out);
    tn_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_cap),        cmocka_unit_test(env_defaults_and_file),
        cmocka_unit_test(env_all_errors), cmocka_unit_test(backoff_grows),
        cmocka_unit_test(metrics_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
