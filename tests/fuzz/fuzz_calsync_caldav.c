/*
 * fuzz_calsync_caldav - arbitrary CalDAV answers into tern-calsync's
 * parsers. Byte 0 picks the mode, the rest is the body:
 *   mode 0  a REPORT 207 multistatus body (calsync_xml_calendar_data);
 *           each calendar-data text goes through calsync_ical_read, as
 *           the import's collect() does, and calsync_ical_inspect alone
 *   mode 1  an iCalendar text (a GET of Tern's event, or one
 *           calendar-data) straight into the same two functions
 *   mode 2  a Google dateTime or date string (calsync_google_time)
 * The busy window is fixed: 60 days (the default TN_CALSYNC_BUSY_DAYS)
 * from 2026-01-01; all-day and floating times are read in a fixed zone,
 * Australia/Sydney (the tenant's).
 *
 * Checks what a caller relies on: the XML parse answers TN_OK or
 * TN_EPROTO and hands out NUL-terminated texts; inspect leaves a
 * NUL-terminated marker inside its buffer (empty when it finds no event)
 * and sets both times when it finds one; busy only appends to the
 * caller's list (n <= cap, earlier ranges untouched, at most MAX_RANGES
 * in all) and every range it adds is non-empty and overlaps the window.
 * Slow inputs (libFuzzer's -timeout) matter too: busy runs on the loop.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tn/tn_mem.h>

#include "calsync.h"

#define WIN_FROM 1767225600LL /* 2026-01-01T00:00:00Z */
#define WIN_TO (WIN_FROM + 60 * 86400LL)
#define MARKER_SIZE 64 /* what calsync_caldav.c passes */
#define UNSET INT64_MIN
#define MAX_RANGES 65536 /* ICAL_MAX_RANGES in calsync_ical.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input's accumulated busy time, as a job holds it, and its zone. */
struct busy {
    struct calsync_range *ranges;
    size_t n, cap;
    const struct _icaltimezone *zone;
};

/* check_busy - the list grew by appending only, with sane ranges */
static void check_busy(const struct busy *b, size_t before)
{
    if (b->n < before || b->n > b->cap || (b->n > 0 && b->ranges == NULL))
        __builtin_trap();
    if (b->n > MAX_RANGES)
        __builtin_trap(); /* one import's list must stay bounded */
    if (b->ranges[0].start != 1 || b->ranges[0].end != 2)
        __builtin_trap(); /* the caller's earlier range was overwritten */
    for (size_t i = before; i < b->n; i++) {
        if (b->ranges[i].start >= b->ranges[i].end)
            __builtin_trap(); /* empty or inverted busy range */
        if (b->ranges[i].end <= WIN_FROM || b->ranges[i].start >= WIN_TO)
            __builtin_trap(); /* outside the window asked for */
    }
}

/* check_marker - what an inspection reported: a terminated marker, both
 * times set with an event, nothing without one */
static void check_marker(const char *marker, bool found, int64_t s, int64_t e)
{
    if (memchr(marker, '\0', MARKER_SIZE) == NULL)
        __builtin_trap();
    if (!found && (marker[0] != '\0' || s != UNSET || e != UNSET))
        __builtin_trap(); /* no event, yet something reported */
    if (found && (s == UNSET || e == UNSET))
        __builtin_trap(); /* an event without both times set */
}

/* check_text - one iCalendar text through calsync_ical_read, as collect()
 * in calsync_report.c takes it (without the import's bounds, which only cut
 * the work short), and through calsync_ical_inspect alone: the same marker
 * and times */
static void check_text(const char *text, struct busy *b)
{
    char *marker = tn_xmalloc(MARKER_SIZE), *alone = tn_xmalloc(MARKER_SIZE); /* exact sizes */
    int64_t s = UNSET, e = UNSET, s2 = UNSET, e2 = UNSET;
    size_t before = b->n;
    bool found, found2;

    memset(marker, 0x5a, MARKER_SIZE);
    memset(alone, 0x5a, MARKER_SIZE);
    found = calsync_ical_read(text, b->zone, WIN_FROM, WIN_TO, NULL, &b->ranges, &b->n, &b->cap,
                              marker, MARKER_SIZE, &s, &e);
    check_busy(b, before);
    check_marker(marker, found, s, e);
    found2 = calsync_ical_inspect(text, b->zone, alone, MARKER_SIZE, &s2, &e2);
    check_marker(alone, found2, s2, e2);
    if (found != found2 || strcmp(marker, alone) != 0 || s != s2 || e != e2)
        __builtin_trap(); /* one parse must read what two did */
    tn_free(alone);
    tn_free(marker);
}

/* on_data - calsync_xml_data_fn: one calendar-data text */
static void on_data(const char *calendar_data, void *arg)
{
    if (calendar_data == NULL)
        __builtin_trap();
    (void)strlen(calendar_data); /* NUL-terminated: ASan sees it if not */
    check_text(calendar_data, arg);
}

/* LLVMFuzzerTestOneInput - one answer per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct _icaltimezone *zone;
    struct busy b = {0};
    char *body;
    enum tn_err err;
    int64_t t;

    if (size == 0)
        return 0;
    if (zone == NULL) {
        calsync_zone_init(); /* as tern-calsync at start: only preloaded zones from here on */
        zone = calsync_zone_find("Australia/Sydney");
    }
    b.zone = zone;
    /* the HTTP layer hands bodies NUL-terminated; inspect relies on it */
    body = tn_xmalloc(size);
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    b.cap = 1;
    b.ranges = tn_xmalloc(sizeof(*b.ranges));
    b.ranges[b.n++] = (struct calsync_range){.start = 1, .end = 2};
    switch (data[0] % 3) {
    case 0:
        err = calsync_xml_calendar_data(body, size - 1, on_data, &b);
        if (err != TN_OK && err != TN_EPROTO)
            __builtin_trap();
        break;
    case 1:
        check_text(body, &b);
        break;
    default:
        t = UNSET;
        if (!calsync_google_time(body, zone, &t) && t != UNSET)
            __builtin_trap(); /* refused, yet written */
        break;
    }
    tn_free(b.ranges);
    tn_free(body);
    return 0;
}
