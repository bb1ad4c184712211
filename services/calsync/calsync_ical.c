/*
 * NAME
 *	calsync_ical - iCalendar for tern-calsync, through libical
 * SYNOPSIS
 *	#include "calsync.h"
 *	char *ics = calsync_ical_event(booking_id, start, end, summary, now);
 *	calsync_ical_inspect(text, marker, sizeof(marker), &start, &end);
 *	calsync_ical_busy(text, from, to, &ranges, &n, &cap);
 * DESCRIPTION
 *	Tern's event: one VEVENT in UTC whose UID is "tern" + the booking id
 *	without dashes (deterministic, and also a valid Google event id), with
 *	the property X-TERN-BOOKING: <booking id> that marks it as Tern's.
 *	Only an event carrying the marker for the booking is ever changed.
 *
 *	Busy time from a calendar's events: every VEVENT that is not Tern's
 *	own, not TRANSP:TRANSPARENT and not STATUS:CANCELLED, expanded with
 *	libical's recurrence rules (RRULE, RDATE, EXDATE) inside the window.
 *	Only the start and end of a foreign event are kept.
 *	XXX: all-day and floating times are read as UTC, and an overridden
 *	instance (RECURRENCE-ID) counts as busy at both times: busy time errs
 *	on the side of fewer slots.
 * RUNS ON
 *	any thread (libical keeps no shared state for these calls).
 * DIAGNOSTICS
 *	None: malformed text yields no event or no ranges.
 */
#include <stdio.h>
#include <string.h>

#include <libical/ical.h>

#include <tn/tn_mem.h>

#include "calsync.h"

/* utc_time - epoch seconds as a UTC icaltime */
static struct icaltimetype utc_time(int64_t s)
{
    return icaltime_from_timet_with_zone((time_t)s, 0, icaltimezone_get_utc_timezone());
}

/* epoch - an icaltime (in its own zone, UTC when floating) as epoch seconds */
static int64_t epoch(struct icaltimetype t)
{
    icaltimezone *utc = icaltimezone_get_utc_timezone();

    if (t.zone == NULL)
        t.zone = utc;
    return (int64_t)icaltime_as_timet_with_zone(t, utc);
}

/* calsync_ical_event - Tern's VCALENDAR for a booking; new (tn_free) */
char *calsync_ical_event(const char *booking_id, int64_t start_s, int64_t end_s,
                         const char *summary, int64_t now_s)
{
    char uid[64];
    size_t o = 0;
    icalcomponent *cal, *ev;
    icalproperty *x;
    char *text, *out;

    o = (size_t)snprintf(uid, sizeof(uid), CALSYNC_UID_PREFIX);
    for (const char *p = booking_id; *p != '\0' && o + 1 < sizeof(uid); p++) {
        if (*p != '-')
            uid[o++] = *p;
    }
    uid[o] = '\0';
    ev = icalcomponent_vanew(
        ICAL_VEVENT_COMPONENT, icalproperty_new_uid(uid), icalproperty_new_dtstamp(utc_time(now_s)),
        icalproperty_new_dtstart(utc_time(start_s)), icalproperty_new_dtend(utc_time(end_s)),
        icalproperty_new_summary(summary), (void *)0);
    x = icalproperty_new_x(booking_id);
    icalproperty_set_x_name(x, CALSYNC_MARKER);
    icalcomponent_add_property(ev, x);
    cal = icalcomponent_vanew(ICAL_VCALENDAR_COMPONENT, icalproperty_new_version("2.0"),
                              icalproperty_new_prodid("-//Tern//calsync//EN"), ev, (void *)0);
    text = icalcomponent_as_ical_string_r(cal);
    out = tn_xstrdup(text);
    icalmemory_free_buffer(text);
    icalcomponent_free(cal);
    return out;
}

/* marker_of - the X-TERN-BOOKING value of ev, or NULL (borrowed) */
static const char *marker_of(icalcomponent *ev)
{
    icalproperty *p;

    for (p = icalcomponent_get_first_property(ev, ICAL_X_PROPERTY); p != NULL;
         p = icalcomponent_get_next_property(ev, ICAL_X_PROPERTY)) {
        const char *name = icalproperty_get_x_name(p);

        if (name != NULL && strcasecmp(name, CALSYNC_MARKER) == 0)
            return icalproperty_get_x(p);
    }
    return NULL;
}

/* calsync_ical_inspect - marker and times of the first VEVENT of text */
bool calsync_ical_inspect(const char *text, char *marker, size_t size, int64_t *start_s,
                          int64_t *end_s)
{
    icalcomponent *cal = icalparser_parse_string(text), *ev;
    const char *m;

    marker[0] = '\0';
    if (cal == NULL)
        return false;
    ev = icalcomponent_isa(cal) == ICAL_VEVENT_COMPONENT
             ? cal
             : icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    if (ev != NULL) {
        m = marker_of(ev);
        snprintf(marker, size, "%s", m != NULL ? m : "");
        *start_s = epoch(icalcomponent_get_dtstart(ev));
        *end_s = epoch(icalcomponent_get_dtend(ev));
    }
    icalcomponent_free(cal);
    return ev != NULL;
}

/* A growing list of ranges. */
struct acc {
    struct calsync_range **r;
    size_t *n, *cap;
};

/* add_span - one instance of a recurrence */
static void add_span(icalcomponent *comp, struct icaltime_span *span, void *data)
{
    struct acc *a = data;

    (void)comp;
    if (span->end <= span->start)
        return;
    if (*a->n == *a->cap) {
        *a->cap = *a->cap ? *a->cap * 2 : 16;
        *a->r = tn_xrealloc(*a->r, *a->cap * sizeof(**a->r));
    }
    (*a->r)[(*a->n)++] = (struct calsync_range){.start = span->start, .end = span->end};
}

/* is_busy - a foreign event that takes time */
static bool is_busy(icalcomponent *ev)
{
    icalproperty *t = icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY);

    if (marker_of(ev) != NULL)
        return false; /* Tern's own: its booking already counts */
    if (t != NULL && icalproperty_get_transp(t) == ICAL_TRANSP_TRANSPARENT)
        return false;
    return icalcomponent_get_status(ev) != ICAL_STATUS_CANCELLED;
}

/* calsync_ical_busy - busy ranges of text's events inside [from, to) */
void calsync_ical_busy(const char *text, int64_t from_s, int64_t to_s,
                       struct calsync_range **ranges, size_t *n, size_t *cap)
{
    icalcomponent *cal = icalparser_parse_string(text), *ev;
    struct acc a = {.r = ranges, .n = n, .cap = cap};

    if (cal == NULL)
        return;
    if (icalcomponent_isa(cal) == ICAL_VEVENT_COMPONENT) {
        if (is_busy(cal))
            icalcomponent_foreach_recurrence(cal, utc_time(from_s), utc_time(to_s), add_span, &a);
        icalcomponent_free(cal);
        return;
    }
    for (ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev != NULL;
         ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        if (is_busy(ev))
            icalcomponent_foreach_recurrence(ev, utc_time(from_s), utc_time(to_s), add_span, &a);
    }
    icalcomponent_free(cal);
}
