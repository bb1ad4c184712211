/*
 * test_calsync_report - a CalDAV import's calendar-query answer
 * (calsync_report.c): bounded per import (CALSYNC_IMPORT_MAX_EVENTS texts,
 * CALSYNC_IMPORT_MAX_CPU_MS of CPU time), with the whole window busy past
 * either bound, and read on the threadpool while the loop keeps turning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include <tn/tn_buf.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>

#include "calsync.h"

#define JAN1 1767225600LL /* 2026-01-01T00:00:00Z */
#define DAY 86400LL
#define WIN_TO (JAN1 + 60 * DAY)
#define TERN_ID "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11"

/* A rule libical searches up to the year 20000 for (40-180 ms a call). */
#define NEVER "RRULE:FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30"

/* ms_begin - a 207 multistatus into b */
static void ms_begin(struct tn_buf *b)
{
    tn_buf_init(b, 0);
    tn_buf_printf(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                     "<d:multistatus xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">");
}

/* ms_event - one response whose calendar-data holds one VEVENT per extra
 * line set (extra may be ""), starting at JAN1 + hour hours, one hour long */
static void ms_event(struct tn_buf *b, int uid, int64_t hour, const char *extra, int vevents)
{
    tn_buf_printf(b,
                  "<d:response><d:href>/cal/e%d.ics</d:href><d:propstat><d:prop>"
                  "<c:calendar-data>BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\n",
                  uid);
    for (int k = 0; k < vevents; k++) {
        int64_t s = JAN1 + hour * 3600;
        struct tm tm;
        time_t t = (time_t)s;
        char dt[20];

        gmtime_r(&t, &tm);
        strftime(dt, sizeof(dt), "%Y%m%dT%H%M%SZ", &tm);
        tn_buf_printf(b,
                      "BEGIN:VEVENT\r\nUID:e%d-%d\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:%s\r\n"
                      "DURATION:PT1H\r\n%s%sEND:VEVENT\r\n",
                      uid, k, dt, extra, extra[0] != '\0' ? "\r\n" : "");
    }
    tn_buf_printf(b, "END:VCALENDAR\r\n</c:calendar-data></d:prop>"
                     "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>");
}

/* ms_end - close the multistatus; new NUL-terminated body, *len its length */
static char *ms_end(struct tn_buf *b, size_t *len)
{
    tn_buf_printf(b, "</d:multistatus>");
    return tn_buf_steal(b, len);
}

/* new_job - an import job over [JAN1, WIN_TO) for ctx (new: free_job) */
static struct calsync_job *new_job(struct calsync_ctx *ctx)
{
    struct calsync_job *j = tn_xcalloc(1, sizeof(*j));

    j->ctx = ctx;
    j->kind = CALSYNC_IMPORT;
    snprintf(j->tenant, sizeof(j->tenant), "%s", "7f0c1d2e-0000-4000-8000-000000000001");
    snprintf(j->id, sizeof(j->id), "%s", "7f0c1d2e-0000-4000-8000-000000000002");
    j->win_from = JAN1;
    j->win_to = WIN_TO;
    return j;
}

/* free_job - what a test's job holds */
static void free_job(struct calsync_job *j)
{
    tn_free(j->ranges);
    tn_free(j->seen);
    tn_free(j);
}

/* whole_window - is [JAN1, WIN_TO) one of j's ranges? */
static bool whole_window(const struct calsync_job *j)
{
    for (size_t i = 0; i < j->nranges; i++) {
        if (j->ranges[i].start == JAN1 && j->ranges[i].end == WIN_TO)
            return true;
    }
    return false;
}

/* cpu_ns - this thread's CPU time */
static int64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* one text more than the cap: the whole window is busy, Tern's own event
 * past the cap is still seen for two-way sync */
static void over_the_cap_is_busy_to_window_end(void **state)
{
    struct calsync_ctx ctx = {0};
    struct calsync_job *j = new_job(&ctx);
    struct calsync_allow allow;
    struct tn_buf b;
    size_t len;
    char *body;

    (void)state;
    ms_begin(&b);
    for (int i = 0; i < CALSYNC_IMPORT_MAX_EVENTS; i++)
        ms_event(&b, i, 2 * i % (24 * 50), "", 1); /* all inside the window's first 50 days */
    ms_event(&b, CALSYNC_IMPORT_MAX_EVENTS, 1, "X-TERN-BOOKING:" TERN_ID, 1);
    body = ms_end(&b, &len);
    calsync_allow_init(&allow);
    allow.cpu_until_ns = 0; /* only the count bounds this test */
    assert_int_equal(calsync_report_read(j, body, len, &allow), TN_OK);
    assert_non_null(allow.over);
    assert_string_equal(allow.over, "events");
    assert_int_equal(j->nranges, CALSYNC_IMPORT_MAX_EVENTS + 1); /* each event, then the window */
    assert_true(whole_window(j));
    assert_int_equal(j->nseen, 1);
    assert_string_equal(j->seen[0].booking, TERN_ID);
    free_job(j);
    tn_free(body);
}

/* exactly the cap: every event is expanded, nothing more is busy */
static void at_the_cap_is_expanded(void **state)
{
    struct calsync_ctx ctx = {0};
    struct calsync_job *j = new_job(&ctx);
    struct calsync_allow allow;
    struct tn_buf b;
    size_t len;
    char *body;

    (void)state;
    ms_begin(&b);
    for (int i = 0; i < CALSYNC_IMPORT_MAX_EVENTS; i++)
        ms_event(&b, i, 2 * i % (24 * 50), "", 1);
    body = ms_end(&b, &len);
    calsync_allow_init(&allow);
    allow.cpu_until_ns = 0;
    assert_int_equal(calsync_report_read(j, body, len, &allow), TN_OK);
    assert_null(allow.over);
    assert_int_equal(j->nranges, CALSYNC_IMPORT_MAX_EVENTS);
    assert_false(whole_window(j));
    free_job(j);
    tn_free(body);
}

/* rules that never match, several in one text: the CPU bound stops after
 * the first, and the whole window is busy */
static void cpu_bound_stops_inside_a_text(void **state)
{
    struct calsync_ctx ctx = {0};
    struct calsync_job *j = new_job(&ctx);
    struct calsync_allow allow;
    struct tn_buf b;
    size_t len;
    char *body;
    int64_t t0;

    (void)state;
    ms_begin(&b);
    ms_event(&b, 1, 10, NEVER, 50); /* 50 x 40-180 ms unbounded */
    body = ms_end(&b, &len);
    calsync_allow_init(&allow);
    t0 = cpu_ns();
    allow.cpu_until_ns = t0 + 1000000; /* 1 ms */
    assert_int_equal(calsync_report_read(j, body, len, &allow), TN_OK);
    assert_non_null(allow.over);
    assert_string_equal(allow.over, "cpu");
    assert_true(whole_window(j));
    assert_true(cpu_ns() - t0 < 2000000000LL); /* one walk or a few, not 50 */
    free_job(j);
    tn_free(body);
}

/* A loop-side record of one calsync_report_start; its job's ctx is ctx. */
struct run {
    struct calsync_ctx ctx;
    uv_timer_t tick;
    int ticks, ticks_at_done, done_calls;
    enum tn_err err;
};

/* on_tick - the loop turns while the answer is read */
static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;

    r->ticks++;
}

/* on_done - calsync_report_start's callback: back on the loop */
static void on_done(struct calsync_job *j, enum tn_err err)
{
    struct run *r = (struct run *)(void *)((char *)j->ctx - offsetof(struct run, ctx));

    r->done_calls++;
    r->err = err;
    r->ticks_at_done = r->ticks;
    uv_timer_stop(&r->tick);
    uv_close((uv_handle_t *)&r->tick, NULL);
}

/* run_report - start body's read on a fresh loop with a 5 ms ticker; stopped
 * sets ctx.stopped right after the start (fini while it is on the threadpool) */
static void run_report(const char *body, size_t len, bool stopped, struct run *r,
                       struct calsync_job **jout, struct tn_metrics *m)
{
    uv_loop_t loop;
    struct calsync_job *j;

    assert_int_equal(uv_loop_init(&loop), 0);
    r->ctx.loop = &loop;
    r->ctx.metrics = m;
    j = new_job(&r->ctx);
    uv_timer_init(&loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, 5, 5);
    calsync_report_start(j, body, len, on_done);
    assert_int_equal(r->ctx.parsing, 1);
    r->ctx.stopped = stopped;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r->ctx.parsing, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    r->ctx.loop = NULL;
    *jout = j;
}

/* a slow answer is read on the threadpool: the loop keeps turning, the job
 * comes back once, capped and counted */
static void read_off_the_loop(void **state)
{
    struct tn_metrics *m = tn_metrics_new();
    struct run r = {0};
    struct calsync_job *j;
    struct tn_buf b;
    size_t len;
    char *body;

    (void)state;
    ms_begin(&b);
    for (int i = 0; i < 60; i++) /* 2.4-11 s unbounded; CALSYNC_IMPORT_MAX_CPU_MS here */
        ms_event(&b, i, 10 + i, NEVER, 1);
    body = ms_end(&b, &len);
    run_report(body, len, false, &r, &j, m);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, TN_OK);
    assert_true(r.ticks_at_done >= 10); /* >= 50 ms of ticks while libical ran */
    assert_true(whole_window(j));
    assert_true(
        tn_metric_value(tn_metrics_get(m, TN_METRIC_COUNTER, "tern_calsync_import_capped_total", "",
                                       "reason=\"cpu\"")) == 1);
    free_job(j);
    tn_free(body);
    tn_metrics_free(m);
}

/* the daemon stopped while the answer was read: the job comes back once,
 * TN_ECANCELED (to be finished, not saved) */
static void stopped_meanwhile(void **state)
{
    struct run r = {0};
    struct calsync_job *j;
    struct tn_buf b;
    size_t len;
    char *body;

    (void)state;
    ms_begin(&b);
    ms_event(&b, 1, 10, "", 1);
    body = ms_end(&b, &len);
    run_report(body, len, true, &r, &j, NULL);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, TN_ECANCELED);
    free_job(j);
    tn_free(body);
}

/* not XML: TN_EPROTO through the callback */
static void not_xml(void **state)
{
    struct run r = {0};
    struct calsync_job *j;

    (void)state;
    run_report("<<not xml", 9, false, &r, &j, NULL);
    assert_int_equal(r.done_calls, 1);
    assert_int_equal(r.err, TN_EPROTO);
    assert_int_equal(j->nranges, 0);
    free_job(j);
}

/* zones - what tern-calsync does at start (calsync_zone_init): from here
 * on only the tz database's zones are looked up */
static int zones(void **state)
{
    (void)state;
    calsync_zone_init();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(over_the_cap_is_busy_to_window_end),
        cmocka_unit_test(at_the_cap_is_expanded),
        cmocka_unit_test(cpu_bound_stops_inside_a_text),
        cmocka_unit_test(read_off_the_loop),
        cmocka_unit_test(stopped_meanwhile),
        cmocka_unit_test(not_xml),
    };

    return cmocka_run_group_tests(tests, zones, NULL);
}
