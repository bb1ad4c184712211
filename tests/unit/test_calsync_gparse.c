/*
 * test_calsync_gparse - what tern-calsync reads from Google Calendar's
 * answers (calsync_gparse.c): which listed events are busy time (not a
 * cancelled, transparent or declined one; an all-day one for its days;
 * only inside the window asked for), Tern's own event recognised by its
 * tag, a page's nextPageToken followed, an etag fit to send back, and
 * which errors are retried.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
        enum calsync_gbusy got = calsync_gparse_busy(ev, JAN1, JAN1 + 60 * DAY, &it);

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
    calsync_gparse_event(ev, &g);
    assert_string_equal(g.tag, BOOKING);
    assert_string_equal(g.status, "confirmed");
    assert_string_equal(g.etag, "\"3181161784712000\"");
    assert_false(g.cancelled);
    assert_true(g.timed);
    assert_int_equal(g.start, JAN1 + 5 * DAY + 11 * HOUR);
    assert_int_equal(g.end, g.start + HOUR);

    calsync_gparse_event(gone, &g); /* a deleted event keeps only id and status */
    assert_true(g.cancelled);
    assert_false(g.timed);
    assert_null(g.tag);
    assert_null(g.etag);

    calsync_gparse_event(NULL, &g); /* an answer that did not parse */
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
    int64_t t = 42;

    (void)state;
    assert_true(calsync_google_time("2026-01-05", &t));
    assert_int_equal(t, JAN1 + 4 * DAY);
    assert_true(calsync_google_time("2026-01-05T10:00:00.123+01:00", &t));
    assert_int_equal(t, JAN1 + 4 * DAY + 9 * HOUR);
    assert_true(calsync_google_time("2026-01-05T10:00:00-05:30", &t));
    assert_int_equal(t, JAN1 + 4 * DAY + 15 * HOUR + 1800);
    t = 42;
    assert_false(calsync_google_time("2026-01-05T10:00:00", &t)); /* no zone */
    assert_false(calsync_google_time("tomorrow", &t));
    assert_false(calsync_google_time(NULL, &t));
    assert_int_equal(t, 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(busy),  cmocka_unit_test(event),   cmocka_unit_test(etag),
        cmocka_unit_test(page),  cmocka_unit_test(verdict), cmocka_unit_test(reason),
        cmocka_unit_test(times),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
