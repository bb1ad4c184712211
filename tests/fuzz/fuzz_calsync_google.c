/*
 * fuzz_calsync_google - arbitrary Google Calendar answers into
 * tern-calsync's readers (calsync_gparse.c). Byte 0 picks the HTTP status
 * (statuses[] below), the rest is the body, loaded as on_response() in
 * calsync_google.c loads it (json_loadb, flags 0). Every body that loads
 * goes through every reader: as one event (events.get), as an events.list
 * page with each of its items, and as an error body. The busy window is
 * fixed: 60 days (the default TN_CALSYNC_BUSY_DAYS) from 2026-01-01.
 * Times without an offset are read in the answer's timeZone when
 * calsync_zone_find knows it (as the import does), else in
 * Australia/Sydney (the tenant's zone, here fixed).
 *
 * Checks what a caller relies on: the readers only read (the value is
 * unchanged, and a second call answers the same); every string handed out
 * is NUL-terminated and no longer than the input; an etag can go into an
 * If-Match header as it is (bounded, printable: no CR or LF); an event's
 * fields agree with each other (cancelled is status "cancelled", no times
 * unless both were read); a busy range is non-empty and overlaps the
 * window, and only an untagged, uncancelled event is busy; Tern's own
 * event comes with its tag and times; a page is an error exactly when it
 * has no items array, and a nextPageToken that is there is never dropped
 * (dropping it ends the listing early: busy time lost); the timeZone is
 * the answer's own string or NULL; the reason is
 * never NULL; a verdict is one of three codes with a reason exactly when
 * it is not TN_OK, and 429 and 5xx are always retried.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "calsync.h"

#define WIN_FROM 1767225600LL /* 2026-01-01T00:00:00Z */
#define WIN_TO (WIN_FROM + 60 * 86400LL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 200, 200, 200, 403, 404, 410, 412,
                                429, 500, 503, 400, 409, 204, 401, 599};

/* check_str - s is NULL or a NUL-terminated string no longer than the input */
static void check_str(const char *s, size_t size)
{
    if (s != NULL && strlen(s) > size)
        __builtin_trap();
}

/* check_etag - NULL, or a value fit for "If-Match: <etag>" as it is */
static void check_etag(const char *e, size_t size)
{
    check_str(e, size);
    if (e == NULL)
        return;
    if (strlen(e) >= CALSYNC_GOOGLE_MAX_ETAG)
        __builtin_trap();
    for (const char *p = e; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            __builtin_trap(); /* CR, LF or another byte a header must not carry */
    }
}

/* check_event - one value read as an event, its times in zone */
static void check_event(const json_t *ev, const struct _icaltimezone *zone, size_t size,
                        struct calsync_gevent *g)
{
    struct calsync_gevent again;

    memset(g, 0x5a, sizeof(*g)); /* the reader must set every field */
    calsync_gparse_event(ev, zone, g);
    check_str(g->tag, size);
    check_str(g->status, size);
    check_etag(g->etag, size);
    if (g->cancelled != (g->status != NULL && strcmp(g->status, "cancelled") == 0))
        __builtin_trap();
    if (!g->timed && (g->start != 0 || g->end != 0))
        __builtin_trap(); /* times reported that were not read */
    if (g->tag != calsync_gparse_tag(ev) || g->etag != calsync_gparse_etag(ev))
        __builtin_trap();
    calsync_gparse_event(ev, zone, &again);
    if (memcmp(g, &again, sizeof(again)) != 0)
        __builtin_trap(); /* not pure */
}

/* check_busy - one value read as an item of an events.list */
static void check_busy(const json_t *ev, const struct _icaltimezone *zone, size_t size)
{
    struct calsync_gevent g;
    struct calsync_gitem it;
    enum calsync_gbusy kind;

    check_event(ev, zone, size, &g);
    memset(&it, 0x5a, sizeof(it));
    kind = calsync_gparse_busy(ev, zone, WIN_FROM, WIN_TO, &it);
    check_str(it.tag, size);
    switch (kind) {
    case CALSYNC_GBUSY_FREE:
        if (it.tag != NULL || it.start != 0 || it.end != 0)
            __builtin_trap();
        break;
    case CALSYNC_GBUSY_BUSY:
        if (it.tag != NULL || g.tag != NULL || g.cancelled || !g.timed)
            __builtin_trap(); /* Tern's own, cancelled or untimed, yet busy */
        if (it.start >= it.end)
            __builtin_trap(); /* empty or inverted busy range */
        if (it.end <= WIN_FROM || it.start >= WIN_TO)
            __builtin_trap(); /* outside the window asked for: never replaced again */
        break;
    case CALSYNC_GBUSY_TERN:
        if (it.tag == NULL || it.tag != g.tag || g.cancelled || !g.timed)
            __builtin_trap();
        if (it.start != g.start || it.end != g.end)
            __builtin_trap();
        break;
    default:
        __builtin_trap();
    }
}

/* check_page - the value read as an events.list answer, and each item in
 * its calendar's zone (tenant: the fallback) */
static void check_page(const json_t *page, const struct _icaltimezone *tenant, size_t size)
{
    const json_t *items, *ev;
    const char *next, *tz = calsync_gparse_zone(page);
    const struct _icaltimezone *zone = calsync_zone_find(tz);
    size_t i;
    enum tn_err err;

    check_str(tz, size);
    if (tz != NULL && tz != json_string_value(json_object_get(page, "timeZone")))
        __builtin_trap(); /* not the answer's own string */

    items = (const json_t *)page; /* overwritten: the reader must set both */
    next = "x";
    err = calsync_gparse_page(page, &items, &next);
    check_str(next, size);
    if (err != TN_OK && err != TN_EPROTO)
        __builtin_trap();
    if ((err == TN_OK) != json_is_array(json_object_get(page, "items")))
        __builtin_trap();
    if (err != TN_OK && (items != NULL || next != NULL))
        __builtin_trap();
    if (err == TN_OK && items != json_object_get(page, "items"))
        __builtin_trap();
    if (next != NULL && (next[0] == '\0' || strlen(next) >= CALSYNC_GOOGLE_MAX_TOKEN))
        __builtin_trap(); /* a token that list_page() cannot send back */
    if (err == TN_OK && next == NULL && json_object_get(page, "nextPageToken") != NULL &&
        !json_is_null(json_object_get(page, "nextPageToken")))
        __builtin_trap(); /* a next page announced, yet the listing ends here */
    json_array_foreach(items, i, ev) check_busy(ev, zone != NULL ? zone : tenant, size);
}

/* check_error - the value read as an error body, with the status */
static void check_error(long status, const json_t *b, size_t size)
{
    const char *why = "x", *r = calsync_gparse_reason(b);
    enum tn_err err;

    if (r == NULL)
        __builtin_trap();
    check_str(r, size);
    err = calsync_gparse_verdict(status, b, &why);
    if (err != TN_OK && err != TN_EUNAVAIL && err != TN_EPROTO)
        __builtin_trap();
    if ((err == TN_OK) != (why == NULL))
        __builtin_trap();
    if ((status == 429 || status >= 500) && err != TN_EUNAVAIL)
        __builtin_trap(); /* always worth another try */
    if ((status == 200 || status == 404 || status == 410) && err != TN_OK)
        __builtin_trap(); /* the step's to decide */
}

/* LLVMFuzzerTestOneInput - one answer per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct _icaltimezone *tenant;
    json_t *b, *copy;
    struct calsync_gevent g;
    long status;

    if (size == 0)
        return 0;
    if (tenant == NULL) {
        calsync_zone_init(); /* as tern-calsync at start: only preloaded zones from here on */
        tenant = calsync_zone_find("Australia/Sydney");
    }
    status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    b = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    copy = json_deep_copy(b);
    check_event(b, tenant, size - 1, &g);
    check_busy(b, tenant, size - 1);
    check_page(b, tenant, size - 1);
    check_error(status, b, size - 1);
    if (b != NULL && !json_equal(b, copy))
        __builtin_trap(); /* a reader changed the answer */
    json_decref(copy);
    json_decref(b);
    return 0;
}
