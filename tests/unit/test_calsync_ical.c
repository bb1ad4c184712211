/*
 * test_calsync_ical - what tern-calsync reads from a calendar server's
 * iCalendar (calsync_ical.c): busy time from recurring events, bounded
 * whatever the server sends, and times read in their own time zone. An
 * all-day (VALUE=DATE) or floating time has none: it is read in the
 * tenant's zone (before: as UTC, and an all-day event was busy for two
 * days less a second), recurring ones and DST changes included.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libical/ical.h>

#include <tn/tn_mem.h>

#include "calsync.h"

#define JAN1 1767225600LL /* 2026-01-01T00:00:00Z */
#define DAY 86400LL

/* busy - the ranges of text in [from, from + days) */
static size_t busy(const char *text, int64_t from, int64_t days, struct calsync_range **r)
{
    size_t n = 0, cap = 0;

    *r = NULL;
    calsync_ical_busy(text, NULL, from, from + days * DAY, NULL, r, &n, &cap);
    return n;
}

/* utc - y-mo-d h:00 UTC as epoch seconds */
static int64_t utc(int y, int mo, int d, int h)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};

    return (int64_t)timegm(&tm);
}

/* One VEVENT's lines (CRLF-separated, without BEGIN/END) read in a zone. */
struct zcase {
    const char *name, *zone, *lines; /* zone NULL: what an unknown tenant zone gives (UTC) */
    int64_t from, to;                /* the window */
    size_t n;                        /* busy ranges wanted (at most 4) */
    int64_t want[4][2];
};

/* zcase_run - the case's event through calsync_ical_busy, and through
 * calsync_ical_inspect (its first instance) */
static void zcase_run(const struct zcase *c)
{
    const struct _icaltimezone *z = c->zone != NULL ? calsync_zone_find(c->zone) : NULL;
    struct calsync_range *r = NULL;
    size_t n = 0, cap = 0;
    char text[1024], marker[64];
    int64_t s = 0, e = 0;

    if (c->zone != NULL && z == NULL)
        fail_msg("%s: zone %s not found", c->name, c->zone);
    snprintf(text, sizeof(text),
             "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:z\r\n"
             "DTSTAMP:20260101T000000Z\r\n%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
             c->lines);
    calsync_ical_busy(text, z, c->from, c->to, NULL, &r, &n, &cap);
    if (n != c->n)
        fail_msg("%s: %zu ranges, want %zu (first [%lld, %lld))", c->name, n, c->n,
                 n > 0 ? (long long)r[0].start : 0LL, n > 0 ? (long long)r[0].end : 0LL);
    for (size_t i = 0; i < n; i++) {
        if (r[i].start != c->want[i][0] || r[i].end != c->want[i][1])
            fail_msg("%s: range %zu is [%lld, %lld), want [%lld, %lld)", c->name, i,
                     (long long)r[i].start, (long long)r[i].end, (long long)c->want[i][0],
                     (long long)c->want[i][1]);
    }
    assert_true(calsync_ical_inspect(text, z, marker, sizeof(marker), &s, &e));
    if (c->n > 0 && !strstr(c->lines, "RRULE") && (s != c->want[0][0] || e != c->want[0][1]))
        fail_msg("%s: inspect [%lld, %lld)", c->name, (long long)s, (long long)e);
    tn_free(r);
}

/* in_tenant_zone - all-day dates and floating times are the calendar's
 * local days and times; a TZID or UTC time keeps its own zone */
static void in_tenant_zone(void **state)
{
    static const char *const syd = "Australia/Sydney", *const la = "America/Los_Angeles";
    const struct zcase cases[] = {
        {.name = "all-day 5 May, Sydney (AEST, UTC+10)",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDTEND;VALUE=DATE:20260506",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 5, 14)}}},
        {.name = "all-day 5 May, Los Angeles (PDT, UTC-7)",
         .zone = la,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDTEND;VALUE=DATE:20260506",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 7), utc(2026, 5, 6, 7)}}},
        {.name = "all-day without DTEND: one day",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260505",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 5, 14)}}},
        {.name = "all-day, DURATION:P2D",
         .zone = la,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDURATION:P2D",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 7), utc(2026, 5, 7, 7)}}},
        {.name = "all-day, daily over the day Sydney's DST ends (5 April: 25 hours)",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260404\r\nDTEND;VALUE=DATE:20260405\r\n"
                  "RRULE:FREQ=DAILY;COUNT=3",
         .from = utc(2026, 3, 1, 0),
         .to = utc(2026, 5, 1, 0),
         .n = 3,
         .want = {{utc(2026, 4, 3, 13), utc(2026, 4, 4, 13)},
                  {utc(2026, 4, 4, 13), utc(2026, 4, 5, 14)},
                  {utc(2026, 4, 5, 14), utc(2026, 4, 6, 14)}}},
        {.name = "all-day weekly since January, walked from the window (Tuesdays in May)",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260106\r\nDTEND;VALUE=DATE:20260107\r\n"
                  "RRULE:FREQ=WEEKLY",
         .from = utc(2026, 5, 4, 0),
         .to = utc(2026, 5, 20, 0),
         .n = 3,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 5, 14)},
                  {utc(2026, 5, 11, 14), utc(2026, 5, 12, 14)},
                  {utc(2026, 5, 18, 14), utc(2026, 5, 19, 14)}}},
        {.name = "floating 09:00-10:00, Sydney",
         .zone = syd,
         .lines = "DTSTART:20260505T090000\r\nDTEND:20260505T100000",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 23), utc(2026, 5, 5, 0)}}},
        {.name = "floating daily 09:00 since January, Los Angeles",
         .zone = la,
         .lines = "DTSTART:20260101T090000\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY",
         .from = utc(2026, 5, 4, 0),
         .to = utc(2026, 5, 7, 0),
         .n = 3,
         .want = {{utc(2026, 5, 4, 16), utc(2026, 5, 4, 17)},
                  {utc(2026, 5, 5, 16), utc(2026, 5, 5, 17)},
                  {utc(2026, 5, 6, 16), utc(2026, 5, 6, 17)}}},
        {.name = "floating daily 09:00 since January, Sydney",
         .zone = syd,
         .lines = "DTSTART:20260101T090000\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY",
         .from = utc(2026, 5, 4, 0),
         .to = utc(2026, 5, 7, 0),
         .n = 3,
         .want = {{utc(2026, 5, 4, 23), utc(2026, 5, 5, 0)},
                  {utc(2026, 5, 5, 23), utc(2026, 5, 6, 0)},
                  {utc(2026, 5, 6, 23), utc(2026, 5, 7, 0)}}},
        {.name = "TZID (libical's zone, no VTIMEZONE) keeps its zone",
         .zone = syd,
         .lines = "DTSTART;TZID=America/New_York:20260505T090000\r\n"
                  "DTEND;TZID=America/New_York:20260505T100000",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 13), utc(2026, 5, 5, 14)}}},
        {.name = "UTC keeps its zone",
         .zone = la,
         .lines = "DTSTART:20260505T090000Z\r\nDTEND:20260505T100000Z",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 9), utc(2026, 5, 5, 10)}}},
        {.name = "unknown tenant zone: UTC",
         .zone = NULL,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDTEND;VALUE=DATE:20260506",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 0), utc(2026, 5, 6, 0)}}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        zcase_run(&cases[i]);
}

/* a weekly event, 4 times, one excluded: 3 hours busy, at their times */
static void weekly_with_exdate(void **state)
{
    const char *ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\n"
                      "UID:a\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T090000Z\r\n"
                      "DTEND:20260105T100000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\n"
                      "EXDATE:20260112T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    struct calsync_range *r;
    size_t n = busy(ics, JAN1, 60, &r);

    (void)state;
    assert_int_equal(n, 3);
    assert_int_equal(r[0].start, JAN1 + 4 * DAY + 9 * 3600);
    assert_int_equal(r[0].end, r[0].start + 3600);
    assert_int_equal(r[1].start, JAN1 + 18 * DAY + 9 * 3600); /* the 12th is excluded */
    assert_int_equal(r[2].start, JAN1 + 25 * DAY + 9 * 3600);
    tn_free(r);
}

/* a rule with an instance every second: bounded, and busy from its start */
static void dense_rule_is_bounded(void **state)
{
    const char *ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTART:20260105T000000Z\r\n"
                      "DURATION:PT1S\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    struct calsync_range *r;
    size_t n = busy(ics, JAN1, 60, &r);

    (void)state;
    assert_true(n >= 1 && n <= 65536); /* before: 5.2 million ranges (80 MB, 12 s on the loop) */
    /* nothing of its time is left free: from its start to the window's end */
    assert_true(r[0].start <= JAN1 + 4 * DAY);
    assert_int_equal(r[n - 1].end, JAN1 + 60 * DAY);
    tn_free(r);
}

/* DTSTART with a TZID is read in that zone, not as UTC */
static void times_in_their_zone(void **state)
{
    const char *ics =
        "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\n"
        "DTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
        "DTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nUID:t\r\nDTSTART;TZID=Europe/Berlin:20260106T140000\r\n"
        "DTEND;TZID=Europe/Berlin:20260106T150000\r\n"
        "X-TERN-BOOKING:8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    char marker[64];
    int64_t s = 0, e = 0;
    struct calsync_range *r;
    size_t n;

    (void)state;
    assert_true(calsync_ical_inspect(ics, NULL, marker, sizeof(marker), &s, &e));
    assert_int_equal(s, JAN1 + 5 * DAY + 13 * 3600); /* 14:00 in Berlin is 13:00Z */
    assert_int_equal(e, s + 3600);
    /* the tenant's zone is only for times without one */
    assert_true(calsync_ical_inspect(ics, calsync_zone_find("Australia/Sydney"), marker,
                                     sizeof(marker), &s, &e));
    assert_int_equal(s, JAN1 + 5 * DAY + 13 * 3600);
    n = busy(ics, JAN1, 60, &r);
    assert_int_equal(n, 0); /* Tern's own event is not busy time */
    tn_free(r);
}

/* One thread's share of zone_threads: all-day events in year0, year0 + 1, ... */
struct zthread {
    pthread_t t;
    const struct _icaltimezone *zone;
    int year0;
    int64_t got[16][2];
};

/* zthread_run - read the thread's events in its zone (a fresh one: libical
 * expands its changes year by year as they are asked for) */
static void *zthread_run(void *arg)
{
    struct zthread *z = arg;
    char text[256];

    for (int k = 0; k < 16; k++) {
        struct calsync_range *r = NULL;
        size_t n = 0, cap = 0;

        snprintf(text, sizeof(text),
                 "BEGIN:VEVENT\r\nUID:t\r\nDTSTART;VALUE=DATE:%04d0704\r\n"
                 "DTEND;VALUE=DATE:%04d0705\r\nEND:VEVENT\r\n",
                 z->year0 + k, z->year0 + k);
        calsync_ical_busy(text, z->zone, 0, INT64_MAX / 2, NULL, &r, &n, &cap);
        z->got[k][0] = n == 1 ? r[0].start : -1;
        z->got[k][1] = n == 1 ? r[0].end : -1;
        tn_free(r);
    }
    return NULL;
}

/* zone_threads - a zone found on one thread converts on several at once
 * (as imports do on the threadpool), each answer as on one thread: libical
 * guards a zone's expanded changes (ASan and UBSan see it otherwise) */
static void zone_threads(void **state)
{
    const struct _icaltimezone *z = calsync_zone_find("Europe/Paris"); /* not used before */
    struct zthread th[4];

    (void)state;
    assert_non_null(z);
    for (int i = 0; i < 4; i++) {
        th[i] = (struct zthread){.zone = z, .year0 = 2030 + 40 * i};
        assert_int_equal(pthread_create(&th[i].t, NULL, zthread_run, &th[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i].t, NULL), 0);
    for (int i = 0; i < 4; i++) {
        struct zthread again = {.zone = z, .year0 = th[i].year0};

        zthread_run(&again);
        for (int k = 0; k < 16; k++) {
            assert_int_equal(th[i].got[k][0], again.got[k][0]);
            assert_int_equal(th[i].got[k][1], again.got[k][1]);
            assert_int_equal(again.got[k][1] - again.got[k][0], DAY); /* summer: CEST all day */
        }
    }
    assert_int_equal(th[0].got[0][0], utc(2030, 7, 3, 22)); /* 4 July 2030 00:00 CEST */
}

/* cpu_ms - the calling thread's CPU time in milliseconds */
static int64_t cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* all_day_short_end - an all-day event whose end is not a whole number of
 * days after DTSTART (DTEND equal to DTSTART, as some producers write a
 * one-day event; a DATE-TIME DTEND; a DURATION in hours) is busy for its
 * whole days, at least one (before: icaltime_adjust dropped the part of a
 * day, and such an event took no time at all) */
static void all_day_short_end(void **state)
{
    static const char *const syd = "Australia/Sydney";
    const struct zcase cases[] = {
        {.name = "all-day, DTEND equal to DTSTART: its one day",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDTEND;VALUE=DATE:20260505",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 5, 14)}}},
        {.name = "all-day, DTEND a DATE-TIME 1.5 days on: through to 6 May's end",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDTEND:20260506T120000",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 6, 14)}}},
        {.name = "all-day, DURATION:PT12H: its one day",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDURATION:PT12H",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 5, 14)}}},
        {.name = "all-day, DURATION:P1DT1H: two days",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDURATION:P1DT1H",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 6, 14)}}},
        {.name = "all-day, DTEND before DTSTART: its one day",
         .zone = syd,
         .lines = "DTSTART;VALUE=DATE:20260505\r\nDTEND;VALUE=DATE:20260501",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 14), utc(2026, 5, 5, 14)}}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        zcase_run(&cases[i]);
}

/* utc_until_local_rule - a UTC UNTIL on a floating or all-day rule is read
 * as the calendar's local time: libical would compare it with the
 * floating clock readings, and east of UTC lose the last instances */
static void utc_until_local_rule(void **state)
{
    const struct zcase cases[] = {
        {.name = "floating daily 09:00 Sydney, UNTIL 5 May 09:00 there in UTC",
         .zone = "Australia/Sydney",
         .lines = "DTSTART:20260503T090000\r\nDTEND:20260503T100000\r\n"
                  "RRULE:FREQ=DAILY;UNTIL=20260504T230000Z",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 3,
         .want = {{utc(2026, 5, 2, 23), utc(2026, 5, 3, 0)},
                  {utc(2026, 5, 3, 23), utc(2026, 5, 4, 0)},
                  {utc(2026, 5, 4, 23), utc(2026, 5, 5, 0)}}},
        {.name = "floating daily 09:00 Sydney, UNTIL a second before 5 May's",
         .zone = "Australia/Sydney",
         .lines = "DTSTART:20260503T090000\r\nDTEND:20260503T100000\r\n"
                  "RRULE:FREQ=DAILY;UNTIL=20260504T225959Z",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 2,
         .want = {{utc(2026, 5, 2, 23), utc(2026, 5, 3, 0)},
                  {utc(2026, 5, 3, 23), utc(2026, 5, 4, 0)}}},
        {.name = "all-day daily Sydney, UNTIL 5 May's local midnight in UTC",
         .zone = "Australia/Sydney",
         .lines = "DTSTART;VALUE=DATE:20260503\r\nRRULE:FREQ=DAILY;UNTIL=20260504T140000Z",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 3,
         .want = {{utc(2026, 5, 2, 14), utc(2026, 5, 3, 14)},
                  {utc(2026, 5, 3, 14), utc(2026, 5, 4, 14)},
                  {utc(2026, 5, 4, 14), utc(2026, 5, 5, 14)}}},
        {.name = "all-day daily Los Angeles, UNTIL=20260505T000000Z: through 5 May",
         .zone = "America/Los_Angeles",
         .lines = "DTSTART;VALUE=DATE:20260503\r\nRRULE:FREQ=DAILY;UNTIL=20260505T000000Z",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 3,
         .want = {{utc(2026, 5, 3, 7), utc(2026, 5, 4, 7)},
                  {utc(2026, 5, 4, 7), utc(2026, 5, 5, 7)},
                  {utc(2026, 5, 5, 7), utc(2026, 5, 6, 7)}}},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        zcase_run(&cases[i]);
}

/* far_text - an all-day event on 5 May 2026 with 160 RDATEs (or EXDATEs
 * in New York, kind "EXDATE;TZID=America/New_York") in the year 2999;
 * new (tn_free) */
static char *far_text(const char *kind, const char *suffix)
{
    size_t o = 0, size = 256 + 160 * 64;
    char *text = tn_xmalloc(size);

    o += (size_t)snprintf(text + o, size - o,
                          "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:r\r\n"
                          "DTSTART;VALUE=DATE:20260505\r\nDTEND;VALUE=DATE:20260506\r\n"
                          "RRULE:FREQ=DAILY;COUNT=3\r\n");
    for (int i = 0; i < 160; i++)
        o += (size_t)snprintf(text + o, size - o, "%s:2999%02d%02d%s\r\n", kind, 1 + i % 12,
                              1 + i % 28, suffix);
    snprintf(text + o, size - o, "END:VEVENT\r\nEND:VCALENDAR\r\n");
    return text;
}

/* far_dates_bounded - RDATEs and EXDATEs in the year 2999, read in a zone:
 * libical 3.0.16 expands zone changes only to 2582 and expands them again
 * at every conversion past it (~12-25 ms each). Past CALSYNC_ZONE_YEAR_MAX
 * they are read as UTC (RDATEs) or dropped (EXDATEs, which exclude
 * nothing in a window), and the RDATE loop checks the import's allowance:
 * before, 160 RDATEs (4 KB of text) took some 4 s of CPU, 8 MiB hours. */
static void far_dates_bounded(void **state)
{
    static const char *const kinds[][2] = {{"RDATE;VALUE=DATE", ""},
                                           {"EXDATE;TZID=America/New_York", "T000000"}};
    const struct _icaltimezone *z = calsync_zone_find("Australia/Sydney");

    (void)state;
    assert_non_null(z);
    for (size_t k = 0; k < 2; k++) {
        struct calsync_range *r = NULL;
        struct calsync_allow al;
        size_t n = 0, cap = 0;
        char *text = far_text(kinds[k][0], kinds[k][1]);
        int64_t t0;

        calsync_allow_init(&al);
        t0 = cpu_ms();
        calsync_ical_busy(text, z, utc(2026, 5, 1, 0), utc(2026, 8, 1, 0), &al, &r, &n, &cap);
        t0 = cpu_ms() - t0;
        if (t0 > 100)
            fail_msg("160 far %s took %lld ms of CPU", kinds[k][0], (long long)t0);
        assert_null(al.over);
        assert_int_equal(n, 3); /* 5, 6 and 7 May */
        assert_int_equal(r[0].start, utc(2026, 5, 4, 14));
        tn_free(r);
        tn_free(text);
    }
}

/* zones_preloaded - after calsync_zone_init, looking up a zone missing
 * from zone.tab (a link), on the loop or as libical does for a TZID
 * without a VTIMEZONE on the thread that parses, only reads libical's
 * shared list: it no longer appends to it (unlocked) */
static void zones_preloaded(void **state)
{
    const icalarray *zones = icaltimezone_get_builtin_timezones();
    const struct zcase c = {.name = "TZID of a link, no VTIMEZONE",
                            .zone = "US/Eastern",
                            .lines = "DTSTART;TZID=US/Pacific:20260505T090000\r\n"
                                     "DTEND;TZID=US/Pacific:20260505T100000",
                            .from = utc(2026, 5, 1, 0),
                            .to = utc(2026, 6, 1, 0),
                            .n = 1,
                            .want = {{utc(2026, 5, 5, 16), utc(2026, 5, 5, 17)}}};
    size_t held;

    (void)state;
    calsync_zone_init();
    held = zones->num_elements;
    assert_true(held > 500); /* zone.tab's some 420, and the links */
    assert_non_null(calsync_zone_find("Etc/UTC"));
    assert_non_null(calsync_zone_find("Asia/Calcutta"));
    zcase_run(&c);
    calsync_zone_init(); /* again: nothing new */
    assert_int_equal(zones->num_elements, held);
}

/* zones - what tern-calsync does at start (calsync_zone_init): from here
 * on only the tz database's zones are looked up */
static int zones(void **state)
{
    (void)state;
    calsync_zone_init();
    return 0;
}

/* unknown_tzid_floating - a TZID that names neither a VTIMEZONE of the
 * text nor a zone preloaded at start is not looked up: libical would add
 * it to its shared list unlocked, on the parsing thread. One that ends
 * with a preloaded zone's name (a posix/ copy, libical's own prefix) is
 * read in that zone; any other as floating, in the calendar's zone. A
 * VTIMEZONE of the text still counts, whatever its name. */
static void unknown_tzid_floating(void **state)
{
    const icalarray *zones = icaltimezone_get_builtin_timezones();
    const struct zcase cases[] = {
        {.name = "posix/ copy of a zone",
         .zone = "Australia/Sydney",
         .lines = "DTSTART;TZID=posix/Europe/Berlin:20260505T090000\r\n"
                  "DTEND;TZID=posix/Europe/Berlin:20260505T100000",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 7), utc(2026, 5, 5, 8)}}},
        {.name = "libical's prefix",
         .zone = "Australia/Sydney",
         .lines = "DTSTART;TZID=/freeassociation.sourceforge.net/Tzfile/Europe/Berlin:"
                  "20260505T090000\r\n"
                  "DTEND;TZID=/freeassociation.sourceforge.net/Europe/Berlin:20260505T100000",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 7), utc(2026, 5, 5, 8)}}},
        {.name = "made-up name: floating",
         .zone = "Australia/Sydney",
         .lines = "DTSTART;TZID=Mars/Olympus_Mons:20260505T090000\r\n"
                  "DTEND;TZID=Mars/Olympus_Mons:20260505T100000",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 4, 23), utc(2026, 5, 5, 0)}}},
        {.name = "UTC start, made-up end: the end read in UTC too",
         .zone = "Europe/Berlin",
         .lines = "DTSTART:20260505T090000Z\r\n"
                  "DTEND;TZID=Mars/Olympus_Mons:20260505T100000",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 9), utc(2026, 5, 5, 10)}}},
        {.name = "known start, made-up end: the end read in the start's zone",
         .zone = "Australia/Sydney",
         .lines = "DTSTART;TZID=Europe/Berlin:20260505T090000\r\n"
                  "DTEND;TZID=Mars/Olympus_Mons:20260505T100000\r\n"
                  "RRULE:FREQ=DAILY;COUNT=2",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 2,
         .want = {{utc(2026, 5, 5, 7), utc(2026, 5, 5, 8)},
                  {utc(2026, 5, 6, 7), utc(2026, 5, 6, 8)}}},
        {.name = "made-up name, and a second TZID that is known",
         .zone = "America/Los_Angeles",
         .lines = "DTSTART;TZID=Mars/Olympus;TZID=Europe/Berlin:20260505T090000\r\n"
                  "DURATION:PT1H",
         .from = utc(2026, 5, 1, 0),
         .to = utc(2026, 6, 1, 0),
         .n = 1,
         .want = {{utc(2026, 5, 5, 7), utc(2026, 5, 5, 8)}}},
    };
    /* the text's own zones: one named like a zone file init left out, used
     * by an EXDATE too (libical finds it by walking up from the event) */
    static const char own[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VTIMEZONE\r\n"
        "TZID:Office time\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:posix/Asia/Dubai\r\nBEGIN:STANDARD\r\n"
        "DTSTART:19700101T000000\r\nTZOFFSETFROM:+0500\r\nTZOFFSETTO:+0500\r\n"
        "END:STANDARD\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nUID:o\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Office time:20260505T090000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:p\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=posix/Asia/Dubai:20260504T090000\r\nDURATION:PT1H\r\n"
        "RRULE:FREQ=DAILY;COUNT=3\r\nEXDATE;TZID=posix/Asia/Dubai:20260505T090000\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n";
    struct calsync_range *r = NULL;
    size_t n = 0, cap = 0;
    size_t held = zones->num_elements;
    char marker[64];
    int64_t s = 0, e = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        zcase_run(&cases[i]);
    assert_int_equal(zones->num_elements, held); /* nothing added to libical's list */
    assert_false(calsync_zone_known("posix/Europe/Berlin"));
    assert_true(calsync_zone_known("Europe/Berlin"));
    assert_null(calsync_zone_find("posix/Europe/Berlin"));
    assert_true(calsync_ical_inspect(own, calsync_zone_find("Australia/Sydney"), marker,
                                     sizeof(marker), &s, &e));
    assert_int_equal(s, utc(2026, 5, 5, 6)); /* the text's own zone, UTC+3 */
    assert_int_equal(e, utc(2026, 5, 5, 7));
    /* Office time 06-07Z on the 5th; the +05 event on the 4th and 6th at 04Z */
    calsync_ical_busy(own, calsync_zone_find("Australia/Sydney"), utc(2026, 5, 1, 0),
                      utc(2026, 6, 1, 0), NULL, &r, &n, &cap);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].start, utc(2026, 5, 5, 6));
    assert_int_equal(r[1].start, utc(2026, 5, 4, 4));
    assert_int_equal(r[2].start, utc(2026, 5, 6, 4));
    assert_int_equal(zones->num_elements, held);
    tn_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(weekly_with_exdate),   cmocka_unit_test(dense_rule_is_bounded),
        cmocka_unit_test(times_in_their_zone),  cmocka_unit_test(in_tenant_zone),
        cmocka_unit_test(zone_threads),         cmocka_unit_test(all_day_short_end),
        cmocka_unit_test(utc_until_local_rule), cmocka_unit_test(far_dates_bounded),
        cmocka_unit_test(zones_preloaded),      cmocka_unit_test(unknown_tzid_floating),
    };

    return cmocka_run_group_tests(tests, zones, NULL);
}
