/*
 * NAME
 *	calsync_gparse - read Google Calendar's answers
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_gparse_event(ev, zone, &gev);  calsync_gparse_busy(ev, zone, from, to, &item);
 *	calsync_gparse_page(page, &items, &next);  zone_name = calsync_gparse_zone(page);
 *	calsync_gparse_verdict(status, body, &why);
 * DESCRIPTION
 *	What tern-calsync takes from the JSON bodies of Google Calendar v3
 *	(protocols.md 5), apart from the job that asked and the HTTP that
 *	fetched them (calsync_google.c), so that a fuzz target can run them
 *	on any bytes (tests/fuzz/fuzz_calsync_google.c).
 *
 *	An event (events.get, one item of events.list): Tern's tag
 *	(extendedProperties.private.tern_booking), status, etag, and start
 *	and end (dateTime, else the all-day date). An all-day date is a day
 *	of the calendar's own zone (Google's events.list answer names it in
 *	timeZone): it runs from that day's local midnight to the end date's,
 *	23 or 25 hours across a DST change. The caller passes that zone, found
 *	on the loop (calsync_zone.c), and libical converts; a date-time
 *	without an offset (Google sends none, but RFC 3339 parsers meet them)
 *	is read in the same zone, one with an offset or Z as it says. One
 *	past CALSYNC_ZONE_YEAR_MAX is read as UTC (calsync.h: libical would
 *	take milliseconds for each, on the loop).
 *	Busy time: an event is busy unless it is cancelled, transparent,
 *	declined by the calendar's owner (the attendee with self: true), has
 *	no valid times, lies outside the window asked for, or is Tern's own
 *	(those are noted for two-way sync instead). A page: its items and
 *	nextPageToken. An error body: errors[0].reason, and what a status
 *	means for any step (429, 5xx and 403 rate limits are retried).
 *
 *	Every function is pure: no job, no I/O, no globals, and the json_t is
 *	only read (libical reads a zone's rules from the tz database the first
 *	time that zone converts a time, once per process). Strings handed out
 *	are borrowed from the json_t.
 * RUNS ON
 *	any thread.
 * DIAGNOSTICS
 *	None: what cannot be read is absent (NULL, false), or TN_EPROTO.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libical/ical.h>

#include "calsync.h"

/* The years a clock reading is converted in its zone (the last one shared
 * with calsync_ical.c: calsync.h). One outside them is centuries from any
 * import window and is read as UTC, so that libical is never asked to
 * expand a zone's rules that far. */
#define ZONE_YEAR_MIN 1

/* local_time - a clock reading (year .. second) in zone as epoch seconds,
 * through libical's rules for that zone (NULL: UTC); false when a field is
 * out of range */
static bool local_time(const struct tm *tm, const struct _icaltimezone *zone, int64_t *out)
{
    struct icaltimetype t = icaltime_null_time();
    struct tm u = *tm;

    if (tm->tm_mon < 0 || tm->tm_mon > 11 || tm->tm_mday < 1 || tm->tm_mday > 31 ||
        tm->tm_hour < 0 || tm->tm_hour > 23 || tm->tm_min < 0 || tm->tm_min > 59 ||
        tm->tm_sec < 0 || tm->tm_sec > 60)
        return false;
    if (zone == NULL || tm->tm_year + 1900 < ZONE_YEAR_MIN ||
        tm->tm_year + 1900 > CALSYNC_ZONE_YEAR_MAX) {
        *out = (int64_t)timegm(&u);
        return true;
    }
    t.year = tm->tm_year + 1900, t.month = tm->tm_mon + 1, t.day = tm->tm_mday;
    t.hour = tm->tm_hour, t.minute = tm->tm_min, t.second = tm->tm_sec;
    *out = (int64_t)icaltime_as_timet_with_zone(t, zone);
    return true;
}

/* calsync_google_time - RFC 3339 date-time, one without offset (in zone),
 * or a date ("2026-05-05": its midnight in zone) as epoch seconds. Runs
 * on: any thread */
bool calsync_google_time(const char *s, const struct _icaltimezone *zone, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0, oh, om;
    const char *p;
    int64_t off = 0;

    if (s == NULL || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return false;
    p = s + n;
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    if (*p == '\0')
        return local_time(&tm, zone, out); /* all-day: a day of the calendar's zone */
    if (*p != 'T' && *p != 't')
        return false;
    if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &se, &n) != 3)
        return false;
    p += 1 + n;
    if (*p == '.')
        p += 1 + strspn(p + 1, "0123456789");
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
    if (*p == '\0')
        return local_time(&tm, zone, out); /* no offset: the calendar's local time */
    if (*p == '+' || *p == '-') {
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return false;
        off = (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else if (*p != 'Z' && *p != 'z') {
        return false;
    }
    *out = (int64_t)timegm(&tm) - off;
    return true;
}

/* str - the string member name of o, or NULL (absent, not a string, o not an object) */
static const char *str(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/* is - the string member name of o equals want */
static bool is(const json_t *o, const char *name, const char *want)
{
    const char *v = str(o, name);

    return v != NULL && strcmp(v, want) == 0;
}

/* time_of - start or end of an event: dateTime, else the all-day date (in zone) */
static bool time_of(const json_t *ev, const char *which, const struct _icaltimezone *zone,
                    int64_t *out)
{
    const json_t *t = json_object_get(ev, which);
    const char *s = str(t, "dateTime");

    return calsync_google_time(s != NULL ? s : str(t, "date"), zone, out);
}

/* calsync_gparse_tag - Tern's tag of an event, or NULL */
const char *calsync_gparse_tag(const json_t *ev)
{
    const json_t *x = json_object_get(json_object_get(ev, "extendedProperties"), "private");

    return str(x, "tern_booking");
}

/* calsync_gparse_etag - the event's etag, or NULL when it has none or one
 * that cannot be sent back as it is: too long, or with a byte a header
 * must not carry (CR and LF would start another header of Tern's request,
 * the one with the access token) */
const char *calsync_gparse_etag(const json_t *ev)
{
    const char *e = str(ev, "etag");
    size_t n = 0;

    if (e == NULL)
        return NULL;
    while (e[n] != '\0' && n < CALSYNC_GOOGLE_MAX_ETAG) {
        if ((unsigned char)e[n] < 0x20 || (unsigned char)e[n] > 0x7e)
            return NULL;
        n++;
    }
    return n < CALSYNC_GOOGLE_MAX_ETAG ? e : NULL;
}

/* calsync_gparse_event - what Tern reads of one event */
void calsync_gparse_event(const json_t *ev, const struct _icaltimezone *zone,
                          struct calsync_gevent *out)
{
    int64_t s = 0, e = 0;

    memset(out, 0, sizeof(*out));
    out->tag = calsync_gparse_tag(ev);
    out->status = str(ev, "status");
    out->etag = calsync_gparse_etag(ev);
    out->cancelled = is(ev, "status", "cancelled");
    if (time_of(ev, "start", zone, &s) && time_of(ev, "end", zone, &e)) {
        out->timed = true;
        out->start = s, out->end = e;
    }
}

/* declined_by_owner - the calendar's owner (attendee self: true) declined */
static bool declined_by_owner(const json_t *ev)
{
    const json_t *a;
    size_t i;

    json_array_foreach(json_object_get(ev, "attendees"), i, a)
    {
        if (json_is_true(json_object_get(a, "self")) && is(a, "responseStatus", "declined"))
            return true;
    }
    return false;
}

/* calsync_gparse_busy - does one listed event make busy time, and which */
enum calsync_gbusy calsync_gparse_busy(const json_t *ev, const struct _icaltimezone *zone,
                                       int64_t from_s, int64_t to_s, struct calsync_gitem *out)
{
    struct calsync_gevent g;

    memset(out, 0, sizeof(*out));
    calsync_gparse_event(ev, zone, &g);
    if (g.tag != NULL) { /* Tern's own: not busy, but two-way sync wants it */
        if (g.cancelled || !g.timed)
            return CALSYNC_GBUSY_FREE;
        *out = (struct calsync_gitem){.tag = g.tag, .start = g.start, .end = g.end};
        return CALSYNC_GBUSY_TERN;
    }
    if (g.cancelled || is(ev, "transparency", "transparent") || declined_by_owner(ev))
        return CALSYNC_GBUSY_FREE;
    /* Outside the window: Google lists only events that overlap it
     * (timeMin and timeMax bound end and start), and tern_busy_replace()
     * replaces only what overlaps the next window, so such a range would be
     * stored again at every import and never removed. */
    if (!g.timed || g.end <= g.start || g.end <= from_s || g.start >= to_s)
        return CALSYNC_GBUSY_FREE;
    out->start = g.start, out->end = g.end;
    return CALSYNC_GBUSY_BUSY;
}

/* calsync_gparse_page - an events.list page's items and nextPageToken. A
 * next page that cannot be asked for (a token that is not a string, empty
 * or too long) is an error: ending the listing there would replace the
 * window's busy time with part of it. */
enum tn_err calsync_gparse_page(const json_t *page, const json_t **items, const char **next)
{
    const json_t *it = json_object_get(page, "items");
    const json_t *tok = json_object_get(page, "nextPageToken");
    const char *t = json_string_value(tok);

    *items = NULL;
    *next = NULL;
    if (!json_is_array(it))
        return TN_EPROTO;
    if (tok != NULL && !json_is_null(tok) &&
        (t == NULL || t[0] == '\0' || strlen(t) >= CALSYNC_GOOGLE_MAX_TOKEN))
        return TN_EPROTO;
    *items = it;
    *next = t;
    return TN_OK;
}

/* calsync_gparse_zone - the calendar's zone named by an events.list answer */
const char *calsync_gparse_zone(const json_t *page)
{
    return str(page, "timeZone");
}

/* calsync_gparse_reason - errors[0].reason of a Google error body, or "" */
const char *calsync_gparse_reason(const json_t *body)
{
    const json_t *e = json_array_get(json_object_get(json_object_get(body, "error"), "errors"), 0);
    const char *r = str(e, "reason");

    return r != NULL ? r : "";
}

/* calsync_gparse_verdict - what a status (and error body) means before the
 * step looks at it */
enum tn_err calsync_gparse_verdict(long status, const json_t *body, const char **why)
{
    const char *r = calsync_gparse_reason(body);

    *why = NULL;
    if (status == 429 || status >= 500 ||
        (status == 403 && (strstr(r, "RateLimit") != NULL || strstr(r, "rateLimit") != NULL))) {
        *why = "google_unavailable";
        return TN_EUNAVAIL;
    }
    if (status == 412) {
        *why = "google_precondition";
        return TN_EUNAVAIL;
    }
    if (status == 403) {
        *why = "google_forbidden";
        return TN_EPROTO;
    }
    return TN_OK;
}
