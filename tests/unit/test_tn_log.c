/*
 * test_tn_log - every line is one JSON object with the fixed keys, strings are
 * escaped, phone numbers and emails are masked, and a flood of one warning is
 * rate-limited with the suppressed count reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <tn/tn_log.h>

#define CAP 65536

static char captured[CAP];

/* capture - run fn with stdout redirected into `captured` */
static void capture(void (*fn)(void))
{
    int fds[2], saved;
    ssize_t n, total = 0;

    assert_int_equal(pipe(fds), 0);
    saved = dup(STDOUT_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    fn();
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fds[1]);
    while ((n = read(fds[0], captured + total, CAP - 1 - (size_t)total)) > 0)
        total += n;
    captured[total] = '\0';
    close(fds[0]);
}

static void emit_one(void)
{
    struct tn_log_ctx ctx = {.tenant_id = "t-1", .entry_id = "1-0", .stream = "tern:in"};

    tn_log_warn(&ctx, "test.event", TN_KV_STR("quote", "a\"b\\c\nd"), TN_KV_INT("n", 42),
                TN_KV_PHONE("from", "+15551234567"), TN_KV_EMAIL("email", "jane.doe@example.com"),
                TN_KV_ERR(TN_EUNAVAIL), TN_KV_BOOL("ok", 1));
}

/* line_fields - keys, types, escaping and masking */
static void line_fields(void **state)
{
    json_error_t jerr;
    json_t *o;

    (void)state;
    tn_log_init("unit", TN_LOG_INFO);
    capture(emit_one);
    o = json_loads(captured, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "lvl")), "warn");
    assert_string_equal(json_string_value(json_object_get(o, "svc")), "unit");
    assert_string_equal(json_string_value(json_object_get(o, "event")), "test.event");
    assert_string_equal(json_string_value(json_object_get(o, "tenant_id")), "t-1");
    assert_string_equal(json_string_value(json_object_get(o, "stream")), "tern:in");
    assert_string_equal(json_string_value(json_object_get(o, "quote")), "a\"b\\c\nd");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 42);
    assert_string_equal(json_string_value(json_object_get(o, "err")), "unavailable");
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_null(strstr(captured, "1234567"));
    assert_null(strstr(captured, "jane.doe"));
    assert_non_null(strstr(json_string_value(json_object_get(o, "email")), "@example.com"));
    assert_int_equal(strlen(json_string_value(json_object_get(o, "ts"))), 24);
    json_decref(o);
}

static void emit_debug(void)
{
    tn_log_debug(NULL, "test.hidden");
    tn_log_info(NULL, "test.shown");
}

/* level_filter - below the minimum level nothing is written */
static void level_filter(void **state)
{
    (void)state;
    tn_log_init("unit", TN_LOG_INFO);
    capture(emit_debug);
    assert_null(strstr(captured, "test.hidden"));
    assert_non_null(strstr(captured, "test.shown"));
}

static void flood(void)
{
    for (int i = 0; i < 500; i++)
        tn_log_warn(NULL, "test.flood", TN_KV_INT("i", i));
    sleep(1);
    tn_log_flush_suppressed();
}

/* rate_limit - 500 identical warnings in a second produce a bounded burst and
 * a log.suppressed line that accounts for the rest */
static void rate_limit(void **state)
{
    int lines = 0;
    const char *p;
    json_t *o = NULL;

    (void)state;
    tn_log_init("unit", TN_LOG_INFO);
    capture(flood);
    for (p = captured; (p = strstr(p, "\"event\":\"test.flood\"")) != NULL; p++)
        lines++;
    assert_in_range(lines, 1, 2 * TN_LOG_BURST);
    p = strstr(captured, "{\"ts\"");
    for (p = captured; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strstr(p, "log.suppressed") != NULL && strstr(p, "log.suppressed") < strchr(p, '\n')) {
            o = json_loadb(p, (size_t)(strchr(p, '\n') - p), 0, NULL);
            break;
        }
    }
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "count")) + lines, 500);
    json_decref(o);
}

/* masks - the masking helpers on their own */
static void masks(void **state)
{
    char out[64];

    (void)state;
    assert_string_equal(tn_mask_phone("+15551234567", out, sizeof(out)), "+155******67");
    assert_string_equal(tn_mask_phone("12345", out, sizeof(out)), "*****");
    assert_string_equal(tn_mask_email("bob@x.org", out, sizeof(out)), "b***@x.org");
    assert_string_equal(tn_mask_email("nonsense", out, sizeof(out)), "***");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(line_fields),
        cmocka_unit_test(level_filter),
        cmocka_unit_test(rate_limit),
        cmocka_unit_test(masks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
