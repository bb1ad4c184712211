/*
 * test_calsync_ical - what tern-calsync reads from a calendar server's
 * iCalendar (calsync_ical.c): busy time from recurring events, bounded
 * whatever the server sends, and times read in their own time zone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <tn/tn_mem.h>

#include "calsync.h"

#define JAN1 1767225600LL /* 2026-01-01T00:00:00Z */
#define DAY 86400LL

/* busy - the ranges of text in [from, from + days) */
static size_t busy(const char *text, int64_t from, int64_t days, struct calsync_range **r)
{
    size_t n = 0, cap = 0;

    *r = NULL;
    calsync_ical_busy(text, from, from + days * DAY, NULL, r, &n, &cap);
    return n;
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
    assert_true(calsync_ical_inspect(ics, marker, sizeof(marker), &s, &e));
    assert_int_equal(s, JAN1 + 5 * DAY + 13 * 3600); /* 14:00 in Berlin is 13:00Z */
    assert_int_equal(e, s + 3600);
    n = busy(ics, JAN1, 60, &r);
    assert_int_equal(n, 0); /* Tern's own event is not busy time */
    tn_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(weekly_with_exdate),
        cmocka_unit_test(dense_rule_is_bounded),
        cmocka_unit_test(times_in_their_zone),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
