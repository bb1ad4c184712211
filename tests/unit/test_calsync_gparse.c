/*
 * test_calsync_gparse - what tern-calsync reads from Google Calendar's
 * answers (calsync_gparse.c): which listed events are busy time (not a
 * cancelled, transparent or declined one; an all-day one for its days;
 * only inside the window asked for), Tern's own event recognised by its
 * tag, a page's nextPageToken followed, an etag fit to send back, and
 * which errors are retried. All-day dates are days of the calendar's zone
 * (before: UTC days, so a business in Sydney that closed a day was
 * bookable that morning and blocked the next), across DST changes too; a
 * zone libical does not know falls back to UTC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "calsync.h"

#define JAN1 1767225600LL /* 2026-01-01T00:00:00Z */
#define DAY 86400LL
#define HOUR 3600LL
#define BOOKING "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11"

/* load - a JSON text as on_response() loads it; new */
static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);

    if (v == NULL)
        fail_msg("bad test JSON at %d: %s", e.position, e.text);
    return v;
}

/* busy - one listed event over the 60 days from JAN1 */
static void busy(void **state)
{
    static const struct {
        const char *name, *ev;
        enum calsync_gbusy want;
        int64_t start, end;
    } cases[] = {
        {.name = "timed, with an offset",
         .ev = "{\"status\":\"confirmed\",\"start\":{\"dateTime\":\"2026-01-05T10:00:00+01:00\"},"
               "\"end\":{\"dateTime\":\"2026-01-05T11:00:00+01:00\"}}",
         .want = CALSYNC_GBUSY_BUSY,
         .start = JAN1 + 4 * DAY + 9 * HOUR,
         .end = JAN1 + 4 * DAY + 10 * HOUR},
        {.name = "cancelled",
         .ev = "{\"status\":\"cancelled\",\"start\":{\"dateTime\":\"2026-01-05T10:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-05T11:00:00Z\"}}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "transparent (shows as free)",
         .ev = "{\"status\":\"confirmed\",\"transparency\":\"transparent\","
               "\"start\":{\"dateTime\":\"2026-01-05T10:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-05T11:00:00Z\"}}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "declined by the calendar's owner",
         .ev = "{\"start\":{\"dateTime\":\"2026-01-05T10:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-05T11:00:00Z\"},\"attendees\":["
               "{\"email\":\"boss@example.com\",\"responseStatus\":\"accepted\"},"
               "{\"email\":\"owner@example.com\",\"self\":true,\"responseStatus\":\"declined\"}]}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "declined by someone else",
         .ev = "{\"start\":{\"dateTime\":\"2026-01-05T10:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-05T11:00:00Z\"},\"attendees\":["
               "{\"email\":\"guest@example.com\",\"responseStatus\":\"declined\"},"
               "{\"email\":\"owner@example.com\",\"self\":true,\"responseStatus\":\"accepted\"}]}",
         .want = CALSYNC_GBUSY_BUSY,
         .start = JAN1 + 4 * DAY + 10 * HOUR,
         .end = JAN1 + 4 * DAY + 11 * HOUR},
        {.name = "all-day, two days (end date exclusive)",
         .ev = "{\"status\":\"confirmed\",\"start\":{\"date\":\"2026-01-12\"},"
               "\"end\":{\"date\":\"2026-01-14\"}}",
         .want = CALSYNC_GBUSY_BUSY,
         .start = JAN1 + 11 * DAY,
         .end = JAN1 + 13 * DAY},
        {.name = "tentative is busy",
         .ev = "{\"status\":\"tentative\",\"start\":{\"dateTime\":\"2026-01-05T10:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-05T11:00:00Z\"}}",
         .want = CALSYNC_GBUSY_BUSY,
         .start = JAN1 + 4 * DAY + 10 * HOUR,
         .end = JAN1 + 4 * DAY + 11 * HOUR},
        {.name = "no end",
         .ev = "{\"start\":{\"dateTime\":\"2026-01-05T10:00:00Z\"}}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "ends before it starts",
         .ev = "{\"start\":{\"dateTime\":\"2026-01-05T11:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-05T10:00:00Z\"}}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "starts before the window, ends inside: busy",
         .ev = "{\"start\":{\"date\":\"2025-12-31\"},\"end\":{\"date\":\"2026-01-02\"}}",
         .want = CALSYNC_GBUSY_BUSY,
         .start = JAN1 - DAY,
         .end = JAN1 + DAY},
        /* Google lists only events overlapping timeMin..timeMax; one outside
         * would be stored where no later import replaces it */
        {.name = "before the window",
         .ev = "{\"start\":{\"date\":\"2025-12-30\"},\"end\":{\"date\":\"2025-12-31\"}}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "after the window",
         .ev = "{\"start\":{\"dateTime\":\"2026-03-02T10:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-03-02T11:00:00Z\"}}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "Tern's own",
         .ev = "{\"id\":\"tern8a1c1e0e0b8f4d3b9c572f4a0f7f0a11\",\"status\":\"confirmed\","
               "\"start\":{\"dateTime\":\"2026-01-06T11:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-06T12:00:00Z\"},"
               "\"extendedProperties\":{\"private\":{\"tern_booking\":\"" BOOKING "\"}}}",
         .want = CALSYNC_GBUSY_TERN,
         .start = JAN1 + 5 * DAY + 11 * HOUR,
         .end = JAN1 + 5 * DAY + 12 * HOUR},
        {.name = "Tern's own, cancelled",
         .ev = "{\"status\":\"cancelled\",\"start\":{\"dateTime\":\"2026-01-06T11:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-06T12:00:00Z\"},"
               "\"extendedProperties\":{\"private\":{\"tern_booking\":\"" BOOKING "\"}}}",
         .want = CALSYNC_GBUSY_FREE},
        {.name = "shared (not private) tern_booking is not Tern's",
         .ev = "{\"start\":{\"dateTime\":\"2026-01-06T11:00:00Z\"},"
               "\"end\":{\"dateTime\":\"2026-01-06T12:00:00Z\"},"
               "\"extendedProperties\":{\"shared\":{\"tern_booking\":\"" BOOKING "\"}}}",
         .want = CALSYNC_GBUSY_BUSY,
         .start = JAN1 + 5 * DAY + 11 * HOUR,
         .end = JAN1 + 5 * DAY + 12 * HOUR},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *ev = load(cases[i].ev);
        struct calsync_gitem it;
        enum calsync_gbusy got = calsync_gparse_busy(ev, NULL, JAN1, JAN1 + 60 * DAY, &it);

        if (got != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].name, (int)got, (int)cases[i].want);
        assert_int_equal(it.start, cases[i].start);
        assert_int_equal(it.end, cases[i].end);
        if (got == CALSYNC_GBUSY_TERN)
            assert_string_equal(it.tag, BOOKING);
        else
            assert_null(it.tag);
        json_decref(ev);
    }
}

/* event - what an events.get answer tells a mirror or a check */
static void event(void **state)
{
    json_t *ev = load("{\"kind\":\"calendar#event\",\"etag\":\"\\\"3181161784712000\\\"\","
                      "\"status\":\"confirmed\",\"start\":{\"dateTime\":\"2026-01-06T11:00:00Z\","
                      "\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":\"2026-01-06T12:00:00Z\"},"
                      "\"extendedProperties\":{\"private\":{\"tern_booking\":\"" BOOKING "\"}}}");
    json_t *gone = load("{\"kind\":\"calendar#event\",\"id\":\"x\",\"status\":\"cancelled\"}");
    struct calsync_gevent g;

    (void)state;
    calsync_gparse_event(ev, NULL, &g);
    assert_string_equal(g.tag, BOOKING);
    assert_string_equal(g.status, "confirmed");
    assert_string_equal(g.etag, "\"3181161784712000\"");
    assert_false(g.cancelled);
    assert_true(g.timed);
    assert_int_equal(g.start, JAN1 + 5 * DAY + 11 * HOUR);
    assert_int_equal(g.end, g.start + HOUR);

    calsync_gparse_event(gone, NULL, &g); /* a deleted event keeps only id and status */
    assert_true(g.cancelled);
    assert_false(g.timed);
    assert_null(g.tag);
    assert_null(g.etag);

    calsync_gparse_event(NULL, NULL, &g); /* an answer that did not parse */
    assert_false(g.cancelled || g.timed || g.tag != NULL || g.status != NULL);
    json_decref(gone);
    json_decref(ev);
}

/* etag - kept only when it can go back in an If-Match header as it is */
static void etag(void **state)
{
    char text[400], big[300];
    json_t *ev;

    (void)state;
    ev = load("{\"etag\":\"\\\"31811\\\"\\r\\nX-Injected: 1\"}");
    assert_null(calsync_gparse_etag(ev)); /* before: sent, a second header line */
    json_decref(ev);

    memset(big, '7', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"etag\":\"%s\"}", big);
    ev = load(text);
    assert_null(calsync_gparse_etag(ev));
    json_decref(ev);

    ev = load("{\"etag\":\"W/\\\"3181161784712000\\\"\"}");
    assert_string_equal(calsync_gparse_etag(ev), "W/\"3181161784712000\"");
    json_decref(ev);
}

/* page - items and nextPageToken of an events.list answer */
static void page(void **state)
{
    char text[4000], tok[3000];
    const json_t *items;
    const char *next;
    json_t *p;

    (void)state;
    p = load("{\"kind\":\"calendar#events\",\"timeZone\":\"Europe/Berlin\","
             "\"nextPageToken\":\"CigKGjRlYWhzOWdoa2hydmtsZDcyaG9ndTlwaDNlGAEggICA2O3h_xEa\","
             "\"items\":[{\"id\":\"a\"},{\"id\":\"b\"}]}");
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_OK);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(next, "CigKGjRlYWhzOWdoa2hydmtsZDcyaG9ndTlwaDNlGAEggICA2O3h_xEa");
    json_decref(p);

    p = load("{\"kind\":\"calendar#events\",\"nextSyncToken\":\"CPDAlvWDx70CEPDAlvWDx70CGAU=\","
             "\"items\":[]}");
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_OK);
    assert_null(next); /* the last page */
    assert_int_equal(json_array_size(items), 0);
    json_decref(p);

    p = load("{\"error\":{\"code\":400,\"message\":\"Bad Request\"}}");
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_EPROTO);
    assert_null(items);
    json_decref(p);

    /* a 600-byte token is followed (before: the rest of the calendar was
     * silently dropped at 512 bytes and more) */
    memset(tok, 'A', 600);
    tok[600] = '\0';
    snprintf(text, sizeof(text), "{\"nextPageToken\":\"%s\",\"items\":[]}", tok);
    p = load(text);
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_OK);
    assert_non_null(next);
    assert_int_equal(strlen(next), 600);
    json_decref(p);

    /* a next page announced that cannot be asked for fails the import:
     * ending the listing there would replace the window's busy time with
     * part of it */
    memset(tok, 'A', sizeof(tok) - 1);
    tok[sizeof(tok) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"nextPageToken\":\"%s\",\"items\":[]}", tok);
    p = load(text);
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_EPROTO);
    json_decref(p);
    p = load("{\"nextPageToken\":\"\",\"items\":[]}");
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_EPROTO);
    json_decref(p);
    p = load("{\"nextPageToken\":12,\"items\":[]}");
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_EPROTO);
    json_decref(p);
    p = load("{\"nextPageToken\":null,\"items\":[]}");
    assert_int_equal(calsync_gparse_page(p, &items, &next), TN_OK);
    assert_null(next);
    json_decref(p);
}

/* verdict - which answers are retried, whatever the step */
static void verdict(void **state)
{
    static const struct {
        long status;
        const char *body, *why;
        enum tn_err want;
    } cases[] = {
        {403,
         "{\"error\":{\"errors\":[{\"domain\":\"usageLimits\",\"reason\":\"rateLimitExceeded\"}],"
         "\"code\":403}}",
         "google_unavailable", TN_EUNAVAIL},
        {403,
         "{\"error\":{\"errors\":[{\"domain\":\"usageLimits\","
         "\"reason\":\"userRateLimitExceeded\"}],\"code\":403}}",
         "google_unavailable", TN_EUNAVAIL},
        {403,
         "{\"error\":{\"errors\":[{\"domain\":\"global\",\"reason\":\"insufficientPermissions\"}],"
         "\"code\":403,\"status\":\"PERMISSION_DENIED\"}}",
         "google_forbidden", TN_EPROTO},
        {403, NULL, "google_forbidden", TN_EPROTO},
        {412,
         "{\"error\":{\"errors\":[{\"domain\":\"global\",\"reason\":\"conditionNotMet\"}],"
         "\"code\":412}}",
         "google_precondition", TN_EUNAVAIL},
        {429, NULL, "google_unavailable", TN_EUNAVAIL},
        {503, "{\"error\":{\"code\":503}}", "google_unavailable", TN_EUNAVAIL},
        {404,
         "{\"error\":{\"errors\":[{\"domain\":\"global\",\"reason\":\"notFound\"}],\"code\":404}}",
         NULL, TN_OK},
        {200, "{\"kind\":\"calendar#event\"}", NULL, TN_OK},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *b = cases[i].body != NULL ? load(cases[i].body) : NULL;
        const char *why = "unset";

        assert_int_equal(calsync_gparse_verdict(cases[i].status, b, &why), cases[i].want);
        if (cases[i].why != NULL)
            assert_string_equal(why, cases[i].why);
        else
            assert_null(why);
        json_decref(b);
    }
}

/* reason - errors[0].reason, never NULL */
static void reason(void **state)
{
    json_t *b = load("{\"error\":{\"errors\":[{\"domain\":\"global\",\"reason\":\"deleted\","
                     "\"message\":\"Resource has been deleted\"}],\"code\":410}}");

    (void)state;
    assert_string_equal(calsync_gparse_reason(b), "deleted");
    assert_string_equal(calsync_gparse_reason(NULL), "");
    json_decref(b);
}

/* times - dateTime with offset or fraction, and all-day dates */
static void times(void **state)
{
    const struct _icaltimezone *syd = calsync_zone_find("Australia/Sydney");
    int64_t t = 42;

    (void)state;
    assert_non_null(syd);
    assert_true(calsync_google_time("2026-01-05", NULL, &t));
    assert_int_equal(t, JAN1 + 4 * DAY);
    assert_true(calsync_google_time("2026-01-05T10:00:00.123+01:00", NULL, &t));
    assert_int_equal(t, JAN1 + 4 * DAY + 9 * HOUR);
    assert_true(calsync_google_time("2026-01-05T10:00:00-05:30", NULL, &t));
    assert_int_equal(t, JAN1 + 4 * DAY + 15 * HOUR + 1800);
    /* an offset or Z says it all: the zone does not move it */
    assert_true(calsync_google_time("2026-01-05T10:00:00.123+01:00", syd, &t));
    assert_int_equal(t, JAN1 + 4 * DAY + 9 * HOUR);
    assert_true(calsync_google_time("2026-01-05T10:00:00Z", syd, &t));
    assert_int_equal(t, JAN1 + 4 * DAY + 10 * HOUR);
    /* none: the calendar's local time (before: refused, so not busy) */
    assert_true(calsync_google_time("2026-01-05T10:00:00", NULL, &t));
    assert_int_equal(t, JAN1 + 4 * DAY + 10 * HOUR);
    assert_true(calsync_google_time("2026-01-05T10:00:00", syd, &t)); /* AEDT, UTC+11 */
    assert_int_equal(t, JAN1 + 3 * DAY + 23 * HOUR);
    assert_true(calsync_google_time("2026-01-05", syd, &t));
    assert_int_equal(t, JAN1 + 3 * DAY + 13 * HOUR);
    t = 42;
    assert_false(calsync_google_time("2026-13-05", syd, &t)); /* no 13th month */
    assert_false(calsync_google_time("2026-01-05T25:00:00", syd, &t));
    assert_false(calsync_google_time("2026-01-05X", syd, &t));
    assert_false(calsync_google_time("tomorrow", NULL, &t));
    assert_false(calsync_google_time(NULL, NULL, &t));
    assert_int_equal(t, 42);
}

/* utc - y-mo-d h:00 UTC as epoch seconds */
static int64_t utc(int y, int mo, int d, int h)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};

    return (int64_t)timegm(&tm);
}

/* all_day_zones - an all-day event is busy for its days in the calendar's
 * zone, local midnight to local midnight (23 or 25 hours across a DST
 * change). Before: UTC midnight to UTC midnight whatever the zone. */
static void all_day_zones(void **state)
{
    static const struct {
        const char *name, *zone, *start, *end;
        int64_t want_start, want_end;
    } cases[] = {
        {.name = "Sydney (AEST, UTC+10): closed on 5 May",
         .zone = "Australia/Sydney",
         .start = "2026-05-05",
         .end = "2026-05-06",
         .want_start = 1777903200, /* 2026-05-04T14:00:00Z */
         .want_end = 1777989600},  /* 2026-05-05T14:00:00Z */
        {.name = "Los Angeles (PDT, UTC-7): closed on 5 May",
         .zone = "America/Los_Angeles",
         .start = "2026-05-05",
         .end = "2026-05-06",
         .want_start = 1777964400, /* 2026-05-05T07:00:00Z */
         .want_end = 1778050800},  /* 2026-05-06T07:00:00Z */
        {.name = "Sydney, the day DST ends (5 April): 25 hours",
         .zone = "Australia/Sydney",
         .start = "2026-04-05",
         .end = "2026-04-06",
         .want_start = 1775307600, /* 2026-04-04T13:00:00Z, AEDT */
         .want_end = 1775397600},  /* 2026-04-05T14:00:00Z, AEST */
        {.name = "Los Angeles, the day DST starts (8 March): 23 hours",
         .zone = "America/Los_Angeles",
         .start = "2026-03-08",
         .end = "2026-03-09",
         .want_start = 1772956800, /* 2026-03-08T08:00:00Z, PST */
         .want_end = 1773039600},  /* 2026-03-09T07:00:00Z, PDT */
        {.name = "UTC",
         .zone = "UTC",
         .start = "2026-05-05",
         .end = "2026-05-06",
         .want_start = 1777939200,
         .want_end = 1778025600},
        {.name = "a link name (US/Pacific), not in zone.tab",
         .zone = "US/Pacific",
         .start = "2026-05-05",
         .end = "2026-05-07",
         .want_start = 1777964400,
         .want_end = 1778137200},
    };
    char text[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct _icaltimezone *z = calsync_zone_find(cases[i].zone);
        struct calsync_gitem it;
        json_t *ev;

        if (z == NULL)
            fail_msg("%s: zone %s not found", cases[i].name, cases[i].zone);
        snprintf(text, sizeof(text),
                 "{\"status\":\"confirmed\",\"start\":{\"date\":\"%s\"},"
                 "\"end\":{\"date\":\"%s\"}}",
                 cases[i].start, cases[i].end);
        ev = load(text);
        if (calsync_gparse_busy(ev, z, utc(2026, 3, 1, 0), utc(2026, 6, 1, 0), &it) !=
            CALSYNC_GBUSY_BUSY)
            fail_msg("%s: not busy", cases[i].name);
        if (it.start != cases[i].want_start || it.end != cases[i].want_end)
            fail_msg("%s: busy [%lld, %lld), want [%lld, %lld)", cases[i].name, (long long)it.start,
                     (long long)it.end, (long long)cases[i].want_start,
                     (long long)cases[i].want_end);
        json_decref(ev);
    }
    /* the constants above are what they say */
    assert_int_equal(cases[0].want_start, utc(2026, 5, 4, 14));
    assert_int_equal(cases[1].want_end, utc(2026, 5, 6, 7));
    assert_int_equal(cases[2].want_start, utc(2026, 4, 4, 13));
    assert_int_equal(cases[2].want_end, utc(2026, 4, 5, 14));
    assert_int_equal(cases[3].want_start, utc(2026, 3, 8, 8));
    assert_int_equal(cases[3].want_end, utc(2026, 3, 9, 7));
}

/* page_zone - the calendar's zone comes from the events.list answer */
static void page_zone(void **state)
{
    json_t *p = load("{\"kind\":\"calendar#events\",\"timeZone\":\"Australia/Sydney\","
                     "\"items\":[]}");
    json_t *q = load("{\"kind\":\"calendar#events\",\"timeZone\":7,\"items\":[]}");

    (void)state;
    assert_string_equal(calsync_gparse_zone(p), "Australia/Sydney");
    assert_null(calsync_gparse_zone(q));
    assert_null(calsync_gparse_zone(NULL));
    assert_true(calsync_zone_find(calsync_gparse_zone(p)) == calsync_zone_find("Australia/Sydney"));
    json_decref(q);
    json_decref(p);
}

/* unknown_zone - a name libical does not know, or one not shaped like a tz
 * database name, is not looked up; pick falls back (the tenant's zone for
 * a calendar's, UTC for a tenant's) and the day is then read in it */
static void unknown_zone(void **state)
{
    static const char *const bad[] = {
        "Mars/Olympus_Mons",   "../../../etc/passwd", "/etc/localtime",  "localtime",
        "posix/Europe/Berlin", "Europe/Berlin ",      "Europe/Berlin\n", "",
        "A/B/../../zone.tab"};
    struct calsync_job j = {.tenant = "2c4f6a1e-0b8f-4d3b-9c57-2f4a0f7f0a11"};
    const struct _icaltimezone *syd = calsync_zone_find("Australia/Sydney");
    const struct _icaltimezone *z;
    struct calsync_gitem it;
    json_t *ev = load("{\"start\":{\"date\":\"2026-05-05\"},\"end\":{\"date\":\"2026-05-06\"}}");

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (calsync_zone_find(bad[i]) != NULL)
            fail_msg("found a zone for \"%s\"", bad[i]);
    }
    assert_null(calsync_zone_find(NULL));
    snprintf(j.acct.id, sizeof(j.acct.id), "%s", "0b8f4d3b-9c57-4f0a-8a11-2f4a0f7f0a11");

    z = calsync_zone_pick(&j, "Mars/Olympus_Mons", "tenant", NULL); /* logs, UTC */
    assert_null(z);
    assert_int_equal(calsync_gparse_busy(ev, z, utc(2026, 5, 1, 0), utc(2026, 6, 1, 0), &it),
                     CALSYNC_GBUSY_BUSY);
    assert_int_equal(it.start, utc(2026, 5, 5, 0)); /* UTC midnight */
    assert_int_equal(it.end, utc(2026, 5, 6, 0));

    assert_true(calsync_zone_pick(&j, "Mars/Olympus_Mons", "calendar", syd) == syd);
    assert_true(calsync_zone_pick(&j, NULL, "calendar", syd) == syd); /* absent: quiet */
    assert_true(calsync_zone_pick(&j, "America/Los_Angeles", "calendar", syd) ==
                calsync_zone_find("America/Los_Angeles"));
    json_decref(ev);
}

/* far_date_cost - a date past CALSYNC_ZONE_YEAR_MAX is read as UTC:
 * libical 3.0.16 expands a zone's changes only to 2582 and expands them
 * again at every conversion past it (~12-17 ms of CPU each, on the loop,
 * two per item, up to 2500 items a page). 40 conversions take well under
 * 40 ms; one just inside the cap is still read in the zone. */
static void far_date_cost(void **state)
{
    const struct _icaltimezone *syd = calsync_zone_find("Australia/Sydney");
    struct timespec a, b;
    int64_t t = 0, ms;

    (void)state;
    assert_non_null(syd);
    assert_true(calsync_google_time("2026-05-05", syd, &t)); /* the zone loaded */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (int i = 0; i < 40; i++)
        assert_true(calsync_google_time("2999-01-01", syd, &t));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    ms = (int64_t)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    if (ms > 40)
        fail_msg("40 dates in 2999 took %lld ms of CPU", (long long)ms);
    assert_int_equal(t, 32472144000LL); /* 2999-01-01T00:00:00Z */
    assert_true(calsync_google_time("2200-01-01", syd, &t));
    assert_int_equal(t, 7258118400LL - 11 * 3600); /* AEDT, UTC+11 */
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
        cmocka_unit_test(busy),          cmocka_unit_test(event),
        cmocka_unit_test(etag),          cmocka_unit_test(page),
        cmocka_unit_test(verdict),       cmocka_unit_test(reason),
        cmocka_unit_test(times),         cmocka_unit_test(all_day_zones),
        cmocka_unit_test(page_zone),     cmocka_unit_test(unknown_zone),
        cmocka_unit_test(far_date_cost),
    };

    return cmocka_run_group_tests(tests, zones, NULL);
}
