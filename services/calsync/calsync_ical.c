/*
 * NAME
 *	calsync_ical - iCalendar for tern-calsync, through libical
 * SYNOPSIS
 *	#include "calsync.h"
 *	char *ics = calsync_ical_event(booking_id, start, end, summary, now);
 *	calsync_ical_inspect(text, zone, marker, sizeof(marker), &start, &end);
 *	calsync_ical_busy(text, zone, from, to, &allow, &ranges, &n, &cap);
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
 *
 *	Times are read in their own zone: a TZID (the calendar's VTIMEZONE,
 *	else libical's builtin zone of that name) or UTC. An all-day date
 *	(VALUE=DATE) and a floating time have none: they are the calendar's
 *	local days and times, read in the zone the caller passes (the
 *	tenant's, found on the loop: calsync_zone.c), through libical's rules.
 *	An all-day event lasts its days on the calendar, local midnight to
 *	local midnight (23 or 25 hours across a DST change; one day when it
 *	has no DTEND; a part of a day, as DTEND on its DTSTART's date or
 *	DURATION:PT12H, counts as a whole one), each instance of a recurring
 *	one too; a timed event lasts its exact duration. A floating or
 *	all-day rule is walked in local time, from and to the window's ends
 *	as local times, and a UTC UNTIL on it is read as a local time too.
 *	A time past CALSYNC_ZONE_YEAR_MAX is read as UTC (calsync.h: libical
 *	would take milliseconds for each), and an EXDATE past it is dropped.
 *
 *	The expansion is
 *	bounded (ICAL_MAX_WORK, ICAL_MAX_RANGES): a rule too costly to walk
 *	(FREQ=SECONDLY over weeks, a COUNT walked from centuries ago) makes
 *	its event busy from where the walk would start to the window's end.
 *	An import as a whole is bounded too (struct calsync_allow): libical
 *	itself may search for centuries in one call for a rule that never
 *	matches (FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30: 40-180 ms each), which
 *	no per-walk budget can interrupt; once the import has expanded
 *	CALSYNC_IMPORT_MAX_EVENTS texts or spent CALSYNC_IMPORT_MAX_CPU_MS of
 *	its thread's CPU time (checked before each event and rule and every
 *	ICAL_RDATES_PER_CHECK RDATEs), the whole window is busy and nothing
 *	more is expanded.
 *	XXX: an overridden instance (RECURRENCE-ID) counts as busy at both
 *	times: busy time errs on the side of fewer slots.
 * RUNS ON
 *	any thread. libical keeps no shared state for these calls but its
 *	zones: converting in a zone is guarded by libical's own mutex, and the
 *	zone passed in is found on the loop (calsync_zone.c). libical itself
 *	looks up the builtin zone of a TZID whose VTIMEZONE the text lacks,
 *	on whatever thread parses, and adds one it does not hold to its list
 *	without a lock. So right after parsing, a TZID that names neither a
 *	VTIMEZONE of the text nor a zone calsync_zone_init preloaded at start
 *	is rewritten to the preloaded zone it ends with (posix/Europe/Berlin,
 *	libical's own /freeassociation.sourceforge.net/ prefix: Europe/Berlin),
 *	or else dropped (a made-up name: the time is read as floating, in the
 *	calendar's zone; tzid_guard; a DTEND so dropped is read in its
 *	DTSTART's zone when that has one: event_of), and libical's lookups only read its
 *	list.
 * DIAGNOSTICS
 *	None: malformed text yields no event or no ranges.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libical/ical.h>

#include <tn/tn_mem.h>

#include "calsync.h"

/* utc_time - epoch seconds as a UTC icaltime */
static struct icaltimetype utc_time(int64_t s)
{
    return icaltime_from_timet_with_zone((time_t)s, 0, icaltimezone_get_utc_timezone());
}

/* in_zone - what a clock reading in year y is read in: zone, else (NULL,
 * or y past CALSYNC_ZONE_YEAR_MAX, where libical's conversions cost
 * milliseconds each: calsync.h) UTC */
static const icaltimezone *in_zone(const icaltimezone *zone, int y)
{
    return zone != NULL && y <= CALSYNC_ZONE_YEAR_MAX ? zone : icaltimezone_get_utc_timezone();
}

/* epoch - an icaltime as epoch seconds: in its own zone (a TZID, or UTC),
 * else (an all-day date or a floating time) in zone, the calendar's (NULL:
 * UTC); past CALSYNC_ZONE_YEAR_MAX, as UTC. A date is its local midnight. */
static int64_t epoch(struct icaltimetype t, const icaltimezone *zone)
{
    if (t.zone != NULL)
        zone = t.zone;
    return (int64_t)icaltime_as_timet_with_zone(t, in_zone(zone, t.year));
}

/* wall - t's clock reading as if it were UTC: for lengths in days and
 * hours on the calendar, whatever the zone */
static int64_t wall(struct icaltimetype t)
{
    t.zone = NULL;
    return (int64_t)icaltime_as_timet_with_zone(t, NULL);
}

/* One event's times: its start, and how long it lasts. */
struct event {
    icalcomponent *ev;
    struct icaltimetype dtstart;
    const icaltimezone *zone; /* what its floating and all-day times are read in; NULL: UTC */
    int64_t dur;              /* seconds, >= 0: exact; on the calendar's clock when all-day */
    uint64_t check;           /* what an EXDATE check costs; 0: no checks */
};

/* An all-day event longer than this many days (more than the longest
 * import window, TN_CALSYNC_BUSY_DAYS <= 730) ends in exact seconds: an
 * hour off at its far end at most, where icaltime_adjust would walk it
 * month by month, and a server may send one thousands of years long with
 * any number of RDATEs. */
#define ICAL_LONG_DAYS 1000

/* seconds - a DURATION in seconds (icaldurationtype_as_int overflows an
 * int past some 68 years) */
static int64_t seconds(struct icaldurationtype d)
{
    int64_t n = (((int64_t)d.weeks * 7 + d.days) * 24 + d.hours) * 3600 + (int64_t)d.minutes * 60 +
                d.seconds;

    return d.is_neg ? -n : n;
}

/* all_day_length - how long all-day event ev (DTSTART a date) lasts on
 * the calendar's clock: its whole days, at least one, a part of a day
 * counting as a day (a DTEND on DTSTART's date, a DATE-TIME DTEND, a
 * DURATION:PT12H; icaltime_adjust would drop the part and the event take
 * no time). DURATION is read itself: libical adds it to a date in whole
 * days. */
static int64_t all_day_length(icalcomponent *ev, struct icaltimetype start)
{
    icalproperty *d = icalcomponent_get_first_property(ev, ICAL_DURATION_PROPERTY);
    struct icaltimetype end = icalcomponent_get_dtend(ev);
    int64_t n = 86400; /* neither DTEND nor DURATION: one day */

    if (icalcomponent_get_first_property(ev, ICAL_DTEND_PROPERTY) == NULL && d != NULL) {
        if (icalproperty_get_value(d) != NULL)
            n = seconds(icalproperty_get_duration(d));
    } else if (!icaltime_is_null_time(end)) {
        n = wall(end) - wall(start);
    }
    return n > 86400 ? (n + 86399) / 86400 * 86400 : 86400;
}

/* event_of - ev's DTSTART and length, times read in zone; false without a
 * DTSTART. An all-day event runs for its whole days (all_day_length) on
 * the calendar's clock; a timed one without DTEND or DURATION takes no
 * time. A floating DTEND of a DTSTART with a zone (UTC or a TZID: its own
 * TZID dropped by tzid_guard, or left out) is read in DTSTART's zone, not
 * the calendar's: in the calendar's, it could end before it starts and
 * take no time. */
static bool event_of(icalcomponent *ev, const icaltimezone *zone, struct event *e)
{
    struct icaltimetype end;

    *e = (struct event){.ev = ev, .dtstart = icalcomponent_get_dtstart(ev), .zone = zone};
    if (icaltime_is_null_time(e->dtstart))
        return false;
    if (e->dtstart.is_date) {
        e->dur = all_day_length(ev, e->dtstart);
        return true;
    }
    end = icalcomponent_get_dtend(ev);
    if (!icaltime_is_null_time(end) && end.zone == NULL && !end.is_date)
        end.zone = e->dtstart.zone;
    if (!icaltime_is_null_time(end))
        e->dur = epoch(end, zone) - epoch(e->dtstart, zone);
    if (e->dur < 0)
        e->dur = 0;
    return true;
}

/* end_of - the end of e's instance that starts at t (epoch s): an
 * all-day one ends at the local midnight its days later (icaltime_adjust
 * on the clock, libical's rules for the instant), unless ICAL_LONG_DAYS */
static int64_t end_of(const struct event *e, struct icaltimetype t, int64_t s)
{
    if (!e->dtstart.is_date || e->dur > ICAL_LONG_DAYS * 86400)
        return s + e->dur;
    icaltime_adjust(&t, (int)(e->dur / 86400), 0, 0, (int)(e->dur % 86400));
    return epoch(t, e->zone);
}

/* at - epoch seconds s as a time like e's DTSTART, for libical's walk: a
 * UTC time when DTSTART has a zone (libical converts), else the floating
 * clock reading of s in the calendar's zone (a date when DTSTART is one;
 * UTC's past CALSYNC_ZONE_YEAR_MAX, as epoch reads it) */
static struct icaltimetype at(const struct event *e, int64_t s)
{
    struct icaltimetype t = utc_time(s);

    if (e->dtstart.zone != NULL)
        return t;
    t = icaltime_from_timet_with_zone((time_t)s, e->dtstart.is_date, in_zone(e->zone, t.year));
    t.zone = NULL;
    return t;
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

/* known_tail - the longest part of tzid after a '/' that names a
 * preloaded zone (posix/Europe/Berlin, /freeassociation.sourceforge.net/
 * Tzfile/Europe/Berlin, /citadel.org/20190914_1/Europe/Berlin: Europe/Berlin),
 * or NULL (borrowed from tzid) */
static const char *known_tail(const char *tzid)
{
    for (const char *s = strchr(tzid, '/'); s != NULL; s = strchr(s + 1, '/')) {
        if (calsync_zone_known(s + 1))
            return s + 1;
    }
    return NULL;
}

/* tzid_guard - in c's properties (and its components', but for
 * VTIMEZONEs), keep a TZID that names one of root's VTIMEZONEs or a
 * preloaded zone, name the zone a TZID ends with (known_tail) instead,
 * and drop any other (RUNS ON above says why); the first TZID is the one
 * libical reads */
static void tzid_guard(icalcomponent *root, icalcomponent *c)
{
    icalcomponent *sub;
    icalproperty *p;
    icalparameter *t;
    const char *tzid, *tail;
    char *name;

    for (p = icalcomponent_get_first_property(c, ICAL_ANY_PROPERTY); p != NULL;
         p = icalcomponent_get_next_property(c, ICAL_ANY_PROPERTY)) {
        while ((t = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER)) != NULL) {
            tzid = icalparameter_get_tzid(t);
            if (tzid != NULL &&
                (calsync_zone_known(tzid) || icalcomponent_get_timezone(root, tzid) != NULL))
                break;
            if (tzid != NULL && (tail = known_tail(tzid)) != NULL) {
                name = tn_xstrdup(tail); /* tail points into the value being replaced */
                icalparameter_set_tzid(t, name);
                tn_free(name);
                break;
            }
            icalproperty_remove_parameter_by_ref(p, t);
        }
    }
    for (sub = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT); sub != NULL;
         sub = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT)) {
        if (icalcomponent_isa(sub) != ICAL_VTIMEZONE_COMPONENT)
            tzid_guard(root, sub);
    }
}

/* calsync_ical_inspect - marker and times of the first VEVENT of text */
/* inspect - the marker and times of cal's first VEVENT; false without one */
static bool inspect(icalcomponent *cal, const icaltimezone *zone, char *marker, size_t size,
                    int64_t *start_s, int64_t *end_s)
{
    icalcomponent *ev;
    struct event e;
    const char *m;

    marker[0] = '\0';
    ev = icalcomponent_isa(cal) == ICAL_VEVENT_COMPONENT
             ? cal
             : icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    if (ev == NULL)
        return false;
    m = marker_of(ev);
    snprintf(marker, size, "%s", m != NULL ? m : "");
    if (event_of(ev, zone, &e)) {
        *start_s = epoch(e.dtstart, zone);
        *end_s = end_of(&e, e.dtstart, *start_s);
    } else {
        *start_s = *end_s = 0; /* no DTSTART: no times */
    }
    return true;
}

bool calsync_ical_inspect(const char *text, const struct _icaltimezone *zone, char *marker,
                          size_t size, int64_t *start_s, int64_t *end_s)
{
    icalcomponent *cal = icalparser_parse_string(text);
    bool found;

    marker[0] = '\0';
    if (cal == NULL)
        return false;
    tzid_guard(cal, cal);
    found = inspect(cal, zone, marker, size, start_s, end_s);
    icalcomponent_free(cal);
    return found;
}

/* Bounds (R16): what one calendar server sends must neither hold the loop
 * nor fill memory. One import keeps at most ICAL_MAX_RANGES ranges. One
 * calsync_ical_busy() call spends at most ICAL_MAX_WORK units: a RRULE is
 * charged, before libical walks it, the periods of its FREQ from where the
 * walk starts to the window's end times the candidates libical tries in
 * each (an upper bound); an EXDATE check is charged the event's property
 * count (libical scans them all). */
#define ICAL_MAX_RANGES 65536
#define ICAL_MAX_WORK 100000

/* RDATEs expanded between checks of the import's allowance: a text may
 * hold some 100,000 of them, none charged to the budget above */
#define ICAL_RDATES_PER_CHECK 64

/* A growing list of ranges, and what this call may still spend. */
struct acc {
    struct calsync_range **r;
    size_t *n, *cap;
    int64_t from, to;
    uint64_t work;
    struct calsync_allow *allow; /* the import's, borrowed; NULL: no import bound */
    const icaltimezone *zone;    /* the calendar's, borrowed; NULL: UTC */
};

/* add - [s, e) as busy time when it overlaps the window. The last range
 * an import may keep covers the whole window: too much to list is busy. */
static void add(struct acc *a, int64_t s, int64_t e)
{
    if (e <= s || e <= a->from || s >= a->to || *a->n >= ICAL_MAX_RANGES)
        return;
    if (*a->n == ICAL_MAX_RANGES - 1)
        s = a->from, e = a->to;
    if (*a->n == *a->cap) {
        *a->cap = *a->cap ? *a->cap * 2 : 16;
        *a->r = tn_xrealloc(*a->r, *a->cap * sizeof(**a->r));
    }
    (*a->r)[(*a->n)++] = (struct calsync_range){.start = s, .end = e};
}

/* cpu_ns - the calling thread's CPU time in nanoseconds. CPU time, not the
 * wall clock: a loaded machine must not make an ordinary calendar look
 * too costly. */
static int64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* calsync_allow_init - a fresh allowance for one import, its CPU time
 * counted from now on the calling thread */
void calsync_allow_init(struct calsync_allow *al)
{
    al->texts = CALSYNC_IMPORT_MAX_EVENTS;
    al->cpu_until_ns = cpu_ns() + (int64_t)CALSYNC_IMPORT_MAX_CPU_MS * 1000000;
    al->over = NULL;
}

/* allowed - may the import expand one more text (text) or rule (!text)?
 * The first time its allowance runs out, the whole window becomes busy:
 * a calendar-query answer lists events in the server's order, not by
 * time, so what is left unexpanded may lie anywhere in the window. */
static bool allowed(struct acc *a, bool text)
{
    struct calsync_allow *al = a->allow;

    if (al == NULL)
        return true;
    if (al->over != NULL)
        return false;
    if (text && al->texts == 0) {
        al->over = "events";
    } else if (al->cpu_until_ns != 0 && cpu_ns() > al->cpu_until_ns) {
        al->over = "cpu";
    } else {
        al->texts -= text ? 1 : 0;
        return true;
    }
    add(a, a->from, a->to);
    return false;
}

/* spend - take n units from the call's budget; false (nothing taken) when short */
static bool spend(struct acc *a, uint64_t n)
{
    if (n > a->work)
        return false;
    a->work -= n;
    return true;
}

/* by_count - the values of a BY part (1 when absent: the period's own) */
static uint64_t by_count(const short *by, size_t size)
{
    size_t k = 0;

    while (k < size && by[k] != ICAL_RECURRENCE_ARRAY_MAX)
        k++;
    return k > 0 ? k : 1;
}

/* walk_cost - libical's work to walk r from walk_start to to: periods of
 * its FREQ times the candidates it tries in each (UINT64_MAX when too big
 * to count) */
static uint64_t walk_cost(const struct icalrecurrencetype *r, int64_t walk_start, int64_t to)
{
    static const int64_t period[] = {1, 60, 3600, 86400, 7 * 86400, 28 * 86400, 365 * 86400};
    static const uint64_t days[] = {1, 1, 1, 1, 7, 31, 366};
    uint64_t n;

    if ((unsigned)r->freq >= sizeof(period) / sizeof(period[0]))
        return 1; /* no FREQ: libical refuses the rule at once */
    n = to > walk_start ? (uint64_t)((to - walk_start) /
                                     (period[r->freq] * (r->interval > 1 ? r->interval : 1))) +
                              1
                        : 1;
    if (n > ICAL_MAX_WORK)
        return UINT64_MAX;
    n *= days[r->freq];
    if (r->freq > ICAL_HOURLY_RECURRENCE)
        n *= by_count(r->by_hour, ICAL_BY_HOUR_SIZE);
    if (r->freq > ICAL_MINUTELY_RECURRENCE)
        n *= by_count(r->by_minute, ICAL_BY_MINUTE_SIZE);
    if (r->freq > ICAL_SECONDLY_RECURRENCE)
        n *= by_count(r->by_second, ICAL_BY_SECOND_SIZE);
    return n; /* at most 1e5 * 366 * 25 * 61 * 62: no overflow */
}

/* excluded - is the instance at t an EXDATE? When the budget is spent,
 * exclusions are no longer checked (more busy, never less). */
static bool excluded(struct event *e, struct acc *a, struct icaltimetype t)
{
    if (e->check == 0)
        return false;
    if (!spend(a, e->check)) {
        e->check = 0;
        return false;
    }
    return icalproperty_recurrence_is_excluded(e->ev, &e->dtstart, &t) != 0;
}

/* instance - the instance of e at t as busy time, unless it lies outside
 * the window or is an EXDATE (tested last: a test may cost much) */
static void instance(struct event *e, struct acc *a, struct icaltimetype t)
{
    int64_t s = epoch(t, e->zone), end = end_of(e, t, s);

    if (end > a->from && s < a->to && !excluded(e, a, t))
        add(a, s, end);
}

/* until_of - r's UNTIL as libical must compare it with e's instances. A
 * UTC UNTIL on a floating or all-day rule (RFC 5545 wants a floating time
 * or a date there, but servers send one) would be compared with their
 * clock readings as if those were UTC, losing the last instances east of
 * UTC: it becomes the calendar's clock reading of that instant, a date
 * when DTSTART is one. A date UNTIL takes in its whole day, and a date's
 * UTC reading is kept when later (UNTIL=20260505T000000Z, as some write
 * "through 5 May", is 4 May in Los Angeles): more busy, never less. */
static struct icaltimetype until_of(const struct event *e, struct icaltimetype until)
{
    struct icaltimetype local, day = until;

    if (e->dtstart.zone != NULL || icaltime_is_null_time(until) || !icaltime_is_utc(until))
        return until;
    local = at(e, epoch(until, NULL));
    if (!e->dtstart.is_date)
        return local;
    day.is_date = 1, day.hour = day.minute = day.second = 0, day.zone = NULL;
    return icaltime_compare(day, local) > 0 ? day : local;
}

/* walk_rule - one RRULE's instances up to the window's end. Its UNTIL is
 * clamped to the window's end (libical tests it while it searches); a walk
 * over budget is not taken, and the event is busy from where it would
 * start through the window's end. */
static void walk_rule(struct event *e, icalproperty *rrule, struct acc *a)
{
    struct icalrecurrencetype r = icalproperty_get_rrule(rrule);
    struct icaltimetype end = at(e, a->to), t;
    int64_t start = epoch(e->dtstart, e->zone);
    icalrecur_iterator *it;

    if (start >= a->to)
        return; /* no instance starts before DTSTART */
    if (r.count == 0 && start < a->from - e->dur)
        start = a->from - e->dur; /* libical starts there (set_start below) */
    if (!spend(a, walk_cost(&r, start, a->to))) {
        add(a, start > a->from ? start : a->from, a->to);
        return;
    }
    r.until = until_of(e, r.until);
    if (icaltime_is_null_time(r.until) || icaltime_compare(r.until, end) > 0)
        r.until = end;
    it = icalrecur_iterator_new(r, e->dtstart);
    if (it == NULL)
        return;
    if (r.count == 0)
        icalrecur_iterator_set_start(it, at(e, start));
    for (t = icalrecur_iterator_next(it); !icaltime_is_null_time(t) && *a->n < ICAL_MAX_RANGES;
         t = icalrecur_iterator_next(it)) {
        if (icaltime_compare(t, end) > 0)
            break;
        instance(e, a, t);
    }
    icalrecur_iterator_free(it);
}

/* props - ev's properties of a kind; new array (tn_free) of *n. Collected
 * first: an EXDATE check moves ev's property iterator. */
static icalproperty **props(icalcomponent *ev, icalproperty_kind kind, size_t *n)
{
    icalproperty **v = tn_xcalloc((size_t)icalcomponent_count_properties(ev, kind) + 1, sizeof(*v));
    icalproperty *p;

    *n = 0;
    for (p = icalcomponent_get_first_property(ev, kind); p != NULL;
         p = icalcomponent_get_next_property(ev, kind))
        v[(*n)++] = p;
    return v;
}

/* drop_far_exdates - remove ev's EXDATEs past CALSYNC_ZONE_YEAR_MAX. Only
 * an instance inside the window is tested against EXDATEs, so they exclude
 * nothing; but libical converts every EXDATE whose zone differs from the
 * instance's at every test, 12-25 ms each that far out (calsync.h). */
static void drop_far_exdates(icalcomponent *ev)
{
    size_t n;
    icalproperty **v = props(ev, ICAL_EXDATE_PROPERTY, &n);

    for (size_t i = 0; i < n; i++) {
        if (icalproperty_get_exdate(v[i]).year > CALSYNC_ZONE_YEAR_MAX) {
            icalcomponent_remove_property(ev, v[i]);
            icalproperty_free(v[i]);
        }
    }
    tn_free(v);
}

/* expand - the busy instances of ev in the window, as
 * icalcomponent_foreach_recurrence finds them (DTSTART when there is no
 * RRULE, each RRULE's, each RDATE's, minus EXDATEs) but within the bounds.
 * An EXRULE (RFC 5545 dropped it; libical walks it from DTSTART for every
 * instance) disables exclusions: more busy, never less. */
static void expand(icalcomponent *ev, struct acc *a)
{
    struct event e;
    icalproperty **rrules, **rdates;
    size_t nrrules, nrdates;

    if (!event_of(ev, a->zone, &e))
        return;
    drop_far_exdates(ev);
    if (icalcomponent_get_first_property(ev, ICAL_EXDATE_PROPERTY) != NULL &&
        icalcomponent_get_first_property(ev, ICAL_EXRULE_PROPERTY) == NULL)
        e.check = (uint64_t)icalcomponent_count_properties(ev, ICAL_ANY_PROPERTY);
    rrules = props(ev, ICAL_RRULE_PROPERTY, &nrrules);
    rdates = props(ev, ICAL_RDATE_PROPERTY, &nrdates);
    if (nrrules == 0)
        instance(&e, a, e.dtstart);
    for (size_t i = 0; i < nrrules && allowed(a, false); i++)
        walk_rule(&e, rrules[i], a);
    for (size_t i = 0; i < nrdates; i++) {
        struct icaldatetimeperiodtype d = icalproperty_get_rdate(rdates[i]);

        if (i % ICAL_RDATES_PER_CHECK == ICAL_RDATES_PER_CHECK - 1 && !allowed(a, false))
            break;
        if (!icaltime_is_null_time(d.time))
            instance(&e, a, d.time); /* XXX: periods skipped, as libical */
    }
    tn_free(rrules);
    tn_free(rdates);
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

/* busy - the busy ranges of cal's events into a, while a's import allows */
static void busy(icalcomponent *cal, struct acc *a)
{
    icalcomponent *ev;

    if (icalcomponent_isa(cal) == ICAL_VEVENT_COMPONENT) {
        if (is_busy(cal))
            expand(cal, a);
        return;
    }
    for (ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
         ev != NULL && allowed(a, false);
         ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        if (is_busy(ev))
            expand(ev, a);
    }
}

/* calsync_ical_busy - busy ranges of text's events inside [from, to),
 * within the import's allowance (NULL: none) */
void calsync_ical_busy(const char *text, const struct _icaltimezone *zone, int64_t from_s,
                       int64_t to_s, struct calsync_allow *allow, struct calsync_range **ranges,
                       size_t *n, size_t *cap)
{
    calsync_ical_read(text, zone, from_s, to_s, allow, ranges, n, cap, NULL, 0, NULL, NULL);
}

/* calsync_ical_read - busy ranges and (marker not NULL) the inspection of
 * one text, parsed once; the inspection also when the allowance is out */
bool calsync_ical_read(const char *text, const struct _icaltimezone *zone, int64_t from_s,
                       int64_t to_s, struct calsync_allow *allow, struct calsync_range **ranges,
                       size_t *n, size_t *cap, char *marker, size_t size, int64_t *start_s,
                       int64_t *end_s)
{
    icalcomponent *cal;
    struct acc a = {.r = ranges,
                    .n = n,
                    .cap = cap,
                    .from = from_s,
                    .to = to_s,
                    .work = ICAL_MAX_WORK,
                    .allow = allow,
                    .zone = zone};
    bool expand_ok = allowed(&a, true), found = false;

    if (marker != NULL)
        marker[0] = '\0';
    if (!expand_ok && marker == NULL)
        return false;
    cal = icalparser_parse_string(text);
    if (cal == NULL)
        return false;
    tzid_guard(cal, cal);
    if (expand_ok)
        busy(cal, &a);
    if (marker != NULL)
        found = inspect(cal, zone, marker, size, start_s, end_s);
    icalcomponent_free(cal);
    return found;
}
