/*
 * NAME
 *	test_tn_consumer_export - a consumer's figures on /metrics
 * DESCRIPTION
 *	Five entries on a fresh stream; the handler acknowledges two and holds
 *	three. /metrics must then say what an operator (and KEDA) would read
 *	from XINFO GROUPS: pending 3, lag 0; and the counters say handled 5,
 *	acked 2. Then five more entries with the consumer stopped: lag 5.
 *	Runs against the real Redis of scripts/test.
 * RUNS ON
 *	the test's main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <tn/tn_buf.h>
#include <tn/tn_consumer.h>
#include <tn/tn_loop.h>
#include <tn/tn_metrics.h>
#include <tn/tn_redis.h>

#include "tn_test.h"

struct fx {
    uv_loop_t loop;
    struct tn_consumer *c;
    struct tn_redis *r;
    struct tn_metrics *m;
    char stream[128];
    int handled;
    struct tn_entry *held[8];
    int nheld;
};

/* on_entry - ack the first two, hold the rest. Runs on: loop. */
static void on_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct fx *f = arg;

    if (f->handled++ < 2)
        tn_consumer_done(c, e, TN_DISP_ACK, NULL);
    else
        f->held[f->nheld++] = e;
}

/* xadd - n entries through a blocking admin connection */
static void xadd(const char *stream, int n)
{
    struct tn_redis_url u;
    redisContext *rc;

    assert_int_equal(tn_redis_url_parse(tn_test_env("TN_TEST_REDIS_URL_ADMIN"), &u), TN_OK);
    rc = redisConnect(u.host, u.port);
    assert_true(rc != NULL && rc->err == 0);
    freeReplyObject(redisCommand(rc, "AUTH %s %s", u.user, u.password));
    for (int i = 0; i < n; i++)
        freeReplyObject(redisCommand(rc, "XADD %s * n %d", stream, i));
    redisFree(rc);
    tn_redis_url_free(&u);
}

/* tick - keeps the loop turning. Runs on: loop. */
static void tick(uv_timer_t *t)
{
    (void)t;
}

/* spin - run the loop for ms */
static void spin(struct fx *f, int ms)
{
    uint64_t end;

    uv_update_time(&f->loop);
    end = uv_now(&f->loop) + (uint64_t)ms;
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    while (uv_now(&f->loop) < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* has - does the rendered /metrics text contain line? */
static bool has(struct fx *f, const char *line)
{
    struct tn_buf b;
    bool yes;

    tn_buf_init(&b, 1 << 20);
    assert_int_equal(tn_metrics_render(f->m, &b), TN_OK);
    yes = strstr(b.data, line) != NULL;
    if (!yes)
        fprintf(stderr, "missing '%s' in:\n%.*s\n", line, (int)b.len, b.data);
    tn_buf_free(&b);
    return yes;
}

static void test_export(void **state)
{
    struct fx f = {0};
    char line[320];
    const char *url = tn_test_env("TN_TEST_REDIS_URL_ADMIN");

    (void)state;
    tn_test_unique("tern:test:export", f.stream, sizeof(f.stream));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    f.m = tn_metrics_new();
    f.r = tn_redis_new(&f.loop, url, &(struct tn_redis_opts){.name = "export-test"});
    f.c = tn_consumer_new(
        &f.loop, url, &(struct tn_consumer_opts){.stream = f.stream, .group = "g", .block_ms = 100},
        on_entry, &f);
    assert_non_null(f.c);
    spin(&f, 300); /* group created */
    xadd(f.stream, 5);
    for (int i = 0; i < 40 && f.handled < 5; i++)
        spin(&f, 50);
    assert_int_equal(f.handled, 5);
    spin(&f, 100); /* the two XACKs */

    tn_consumer_export(f.c, f.r, f.m);
    spin(&f, 200);
    snprintf(line, sizeof(line), "tern_stream_pending{stream=\"%s\",group=\"g\"} 3\n", f.stream);
    assert_true(has(&f, line));
    snprintf(line, sizeof(line), "tern_stream_lag{stream=\"%s\",group=\"g\"} 0\n", f.stream);
    assert_true(has(&f, line));
    snprintf(line, sizeof(line), "tern_consumer_handled_total{stream=\"%s\",group=\"g\"} 5\n",
             f.stream);
    assert_true(has(&f, line));
    snprintf(line, sizeof(line), "tern_consumer_acked_total{stream=\"%s\",group=\"g\"} 2\n",
             f.stream);
    assert_true(has(&f, line));

    /* stop reading: new entries are lag, not pending */
    tn_consumer_stop(f.c);
    spin(&f, 300);
    xadd(f.stream, 5);
    tn_consumer_export(f.c, f.r, f.m);
    spin(&f, 200);
    snprintf(line, sizeof(line), "tern_stream_lag{stream=\"%s\",group=\"g\"} 5\n", f.stream);
    assert_true(has(&f, line));

    for (int i = 0; i < f.nheld; i++)
        tn_consumer_done(f.c, f.held[i], TN_DISP_ACK, NULL);
    spin(&f, 100);
    tn_consumer_free(f.c);
    tn_redis_close(f.r);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    tn_metrics_free(f.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
