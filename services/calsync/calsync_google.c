/*
 * NAME
 *	calsync_google - mirror a booking to Google Calendar, import busy time
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_google_mirror(job, then);  calsync_google_import(job, then);
 * DESCRIPTION
 *	Mirror (protocols.md 5.2, 5.3, 5.7): Tern's event has the id
 *	"tern" + the booking id without dashes (base32hex, as Google requires
 *	of client ids; the same string is the CalDAV UID) and carries
 *	extendedProperties.private.tern_booking = <booking id>. Every attempt
 *	starts with a GET of that id, so the decision rests on what Google
 *	holds now:
 *	  404, event wanted      insert with the id (409: it exists after all,
 *	                         start again with a GET)
 *	  404/410, not wanted    nothing to do
 *	  200, not Tern's tag    refuse: never modify someone else's event
 *	  200, cancelled, wanted patch status confirmed and the times
 *	  200, Tern's, wanted    same times: done; else patch (If-Match)
 *	  200, Tern's, unwanted  delete (If-Match; 404/410 are fine)
 *	Writes pass sendUpdates from tenants.calendar_send_updates.
 *
 *	Import: events.list over [now, now + busy days] with singleEvents
 *	(recurrences expanded), page by page; an event that is cancelled,
 *	transparent, declined by the calendar's owner, or Tern's own, is not
 *	busy. Only start and end are kept; Tern's own events are noted for
 *	two-way sync (calsync_twoway.c). An all-day event is busy from its
 *	first day's local midnight to its end date's in the calendar's zone
 *	(the answer's timeZone; the tenant's when absent or unknown: see
 *	calsync_zone.c).
 *
 *	Check (a CALSYNC_CHECK job): the same GET of Tern's event; 404, 410 or
 *	status "cancelled" means the business deleted it, Tern's tag at other
 *	times means it moved it. Nothing is written to Google.
 *
 *	A 401 forgets the access token and retries once with a fresh one
 *	(calsync_gtoken.c); 429, 5xx and 403 rate limits are retried.
 *
 *	What is read from Google's answers (an event's tag, times, status and
 *	etag, whether a listed event is busy, a page's items and token, an
 *	error's reason) is decided in calsync_gparse.c; this file holds the
 *	job's state and the HTTP.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	j->err and j->why: TN_EPROTO "foreign_event" / "google_refused" (not
 *	retried); TN_EUNAVAIL "google_unavailable" / "google_precondition" /
 *	"google_auth" (retried); TN_EDENIED "reconnect_needed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <tn/tn_buf.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_time.h>

#include "calsync.h"

#define GOOGLE_MAX_RESPONSE (8u << 20)
#define GOOGLE_MAX_PAGES 20

enum step { STEP_GET, STEP_INSERT, STEP_PATCH, STEP_DELETE, STEP_LIST };

struct calsync_gsend {
    const char *method;
    char *url;  /* new */
    char *body; /* new or NULL */
    char *etag; /* If-Match, new or NULL */
};

static void send_step(struct calsync_job *j);
static void on_response(const struct tn_http_response *resp, enum tn_err err, void *arg);

/* utc - epoch seconds as "YYYY-MM-DDTHH:MM:SSZ" */
static const char *utc(int64_t s, char *buf, size_t size)
{
    char ms[40];

    tn_time_rfc3339(s * 1000, ms, sizeof(ms));
    snprintf(buf, size, "%.19sZ", ms);
    return buf;
}

/* calsync_google_event_id - "tern" + the booking id without dashes; new */
char *calsync_google_event_id(const char *booking_id)
{
    size_t n = strlen(CALSYNC_UID_PREFIX) + strlen(booking_id) + 1;
    char *id = tn_xmalloc(n);
    size_t o = (size_t)snprintf(id, n, "%s", CALSYNC_UID_PREFIX);

    for (const char *p = booking_id; *p != '\0'; p++) {
        if (*p != '-')
            id[o++] = *p;
    }
    id[o] = '\0';
    return id;
}

/* fail - finish the HTTP part with an error */
static void fail(struct calsync_job *j, enum tn_err err, const char *why)
{
    j->err = err;
    j->why = why;
    j->then(j);
}

/* calendar_url - base/calendars/<escaped calendar id>/events[suffix]; new */
static char *calendar_url(struct calsync_job *j, const char *suffix)
{
    struct tn_buf b;
    char *cid = curl_easy_escape(NULL, j->acct.url, 0);

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "%s/calendars/%s/events%s", j->ctx->cfg.google_calendar_base,
                  cid != NULL ? cid : "primary", suffix);
    curl_free(cid);
    return tn_buf_steal(&b, NULL);
}

/* event_url - Tern's event, with "?sendUpdates=..." for writes; new */
static char *event_url(struct calsync_job *j, bool write)
{
    char *eid = calsync_google_event_id(j->id), suffix[128], *url;

    snprintf(suffix, sizeof(suffix), "/%s%s%s", eid, write ? "?sendUpdates=" : "",
             write ? j->acct.send_updates : "");
    url = calendar_url(j, suffix);
    tn_free(eid);
    return url;
}

/* insert_url - the events collection with "?sendUpdates=..."; new */
static char *insert_url(struct calsync_job *j)
{
    char suffix[64];

    snprintf(suffix, sizeof(suffix), "?sendUpdates=%s", j->acct.send_updates);
    return calendar_url(j, suffix);
}

/* event_body - the insert or patch body: times, tag, summary; new */
static char *event_body(struct calsync_job *j, bool insert, bool restore)
{
    char s[32], e[32], *eid = calsync_google_event_id(j->id), *text;
    json_t *o = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:{s:s}}}", "start", "dateTime",
                          utc(j->start_s, s, sizeof(s)), "timeZone", "UTC", "end", "dateTime",
                          utc(j->end_s, e, sizeof(e)), "timeZone", "UTC", "extendedProperties",
                          "private", "tern_booking", j->id);

    if (insert) {
        json_object_set_new(o, "id", json_string(eid));
        json_object_set_new(o, "summary", json_string(j->summary != NULL ? j->summary : ""));
    }
    if (restore)
        json_object_set_new(o, "status", json_string("confirmed"));
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    tn_free(eid);
    return text;
}

/* go - run step with method, url (steals), body (steals), If-Match etag */
static void go(struct calsync_job *j, int step, const char *method, char *url, char *body,
               const char *etag)
{
    struct calsync_gsend *g = tn_xcalloc(1, sizeof(*g));

    g->method = method;
    g->url = url;
    g->body = body;
    g->etag = etag != NULL ? tn_xstrdup(etag) : NULL;
    j->step = step;
    calsync_google_free(j);
    j->gsend = g;
    calsync_gtoken_get(j, send_step);
}

/* calsync_google_free - release the job's pending Google request */
void calsync_google_free(struct calsync_job *j)
{
    struct calsync_gsend *g = j->gsend;

    if (g == NULL)
        return;
    tn_free(g->url);
    tn_free(g->body); /* jansson allocates with malloc */
    tn_free(g->etag);
    tn_free(g);
    j->gsend = NULL;
}

/* send_step - the current step's request with the job's access token */
static void send_step(struct calsync_job *j)
{
    struct calsync_gsend *g = j->gsend;
    char auth[4200], match[300];
    const char *hdr[4] = {auth, "Content-Type: application/json", NULL, NULL};
    struct tn_http_request rq = {
        .method = g->method, .url = g->url, .headers = hdr, .max_response = GOOGLE_MAX_RESPONSE};
    enum tn_err err;

    if (j->err != TN_OK) { /* no token: reconnect needed or refresh failed */
        j->then(j);
        return;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", j->acct.access);
    if (g->etag != NULL) {
        snprintf(match, sizeof(match), "If-Match: %s", g->etag);
        hdr[2] = match;
    }
    rq.body = g->body;
    rq.body_len = g->body != NULL ? strlen(g->body) : 0;
    err = tn_http_send(j->ctx->http, &rq, on_response, j);
    tn_wipe(auth, sizeof(auth));
    if (err != TN_OK)
        fail(j, TN_EUNAVAIL, "google_unavailable");
}

/* set_etag - remember the event's etag (NULL when it has none) */
static void set_etag(struct calsync_job *j, json_t *ev)
{
    const char *e = calsync_gparse_etag(ev);

    tn_free(j->etag);
    j->etag = e != NULL ? tn_xstrdup(e) : NULL;
}

/* check_get - a check (calsync_twoway.c): is Tern's event gone or moved?
 * The id is Tern's and an event was written there, so a cancelled event
 * at it is gone whatever its tag says. */
static void check_get(struct calsync_job *j, long status, json_t *ev)
{
    struct calsync_gevent g;

    calsync_gparse_event(ev, j->zone, &g);
    if (status == 404 || status == 410 || (status == 200 && g.cancelled)) {
        j->gone = true;
    } else if (status != 200 || ev == NULL) {
        fail(j, TN_EPROTO, "google_refused");
        return;
    } else if (g.tag != NULL && strcmp(g.tag, j->id) == 0 && g.timed &&
               (g.start != j->start_s || g.end != j->end_s)) {
        j->moved = true;
        j->new_start = g.start, j->new_end = g.end;
    }
    j->then(j);
}

/* after_get - decide from what Google holds */
static void after_get(struct calsync_job *j, long status, json_t *ev)
{
    struct calsync_gevent g;

    if (j->kind == CALSYNC_CHECK) {
        check_get(j, status, ev);
        return;
    }
    if (status == 404 || status == 410) {
        if (j->want_event)
            go(j, STEP_INSERT, "POST", insert_url(j), event_body(j, true, false), NULL);
        else
            j->then(j);
        return;
    }
    if (status != 200 || ev == NULL) {
        fail(j, TN_EPROTO, "google_refused");
        return;
    }
    calsync_gparse_event(ev, j->zone, &g);
    if (g.tag == NULL || strcmp(g.tag, j->id) != 0) {
        tn_log_warn(NULL, "calsync.foreign_event", TN_KV_STR("booking_id", j->id));
        fail(j, TN_EPROTO, "foreign_event");
        return;
    }
    set_etag(j, ev);
    tn_free(j->href);
    j->href = event_url(j, false);
    if (g.cancelled) {
        if (j->want_event)
            go(j, STEP_PATCH, "PATCH", event_url(j, true), event_body(j, false, true), j->etag);
        else
            j->then(j);
        return;
    }
    if (!j->want_event)
        go(j, STEP_DELETE, "DELETE", event_url(j, true), NULL, j->etag);
    else if (g.timed && g.start == j->start_s && g.end == j->end_s)
        j->then(j); /* already as it should be */
    else
        go(j, STEP_PATCH, "PATCH", event_url(j, true), event_body(j, false, false), j->etag);
}

/* busy_item - one listed event into the job's ranges, if it is busy time;
 * its all-day dates are days of zone, the calendar's */
static void busy_item(struct calsync_job *j, const struct _icaltimezone *zone, json_t *ev)
{
    struct calsync_gitem it;

    switch (calsync_gparse_busy(ev, zone, j->win_from, j->win_to, &it)) {
    case CALSYNC_GBUSY_TERN: /* Tern's own: not busy, but two-way sync wants it */
        calsync_twoway_seen(j, it.tag, it.start, it.end);
        break;
    case CALSYNC_GBUSY_BUSY:
        if (j->nranges == j->cap) {
            j->cap = j->cap ? j->cap * 2 : 16;
            j->ranges = tn_xrealloc(j->ranges, j->cap * sizeof(*j->ranges));
        }
        j->ranges[j->nranges++] = (struct calsync_range){.start = it.start, .end = it.end};
        break;
    default:
        break;
    }
}

/* list_page - GET one page of events in the window. The query is built to
 * its length: a fixed buffer cut long page tokens short. */
static void list_page(struct calsync_job *j)
{
    char from[32], to[32], *q;
    char *tok = j->page_token != NULL ? curl_easy_escape(NULL, j->page_token, 0) : NULL;
    struct tn_buf b;

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "?timeMin=%s&timeMax=%s&singleEvents=true&maxResults=2500%s%s",
                  utc(j->win_from, from, sizeof(from)), utc(j->win_to, to, sizeof(to)),
                  tok != NULL ? "&pageToken=" : "", tok != NULL ? tok : "");
    curl_free(tok);
    q = tn_buf_steal(&b, NULL);
    j->pages++;
    go(j, STEP_LIST, "GET", calendar_url(j, q), NULL, NULL);
    tn_free(q);
}

/* after_list - collect a page; fetch the next one or finish. All-day
 * events are days of the calendar's zone (the answer's timeZone), else of
 * the tenant's. */
static void after_list(struct calsync_job *j, long status, json_t *b)
{
    const json_t *items;
    json_t *ev;
    size_t i;
    const char *next;
    const struct _icaltimezone *zone;

    if (status != 200 || calsync_gparse_page(b, &items, &next) != TN_OK) {
        fail(j, TN_EPROTO, "google_refused");
        return;
    }
    zone = calsync_zone_pick(j, calsync_gparse_zone(b), "calendar", j->zone);
    json_array_foreach(items, i, ev) busy_item(j, zone, ev);
    tn_free(j->page_token);
    j->page_token = next != NULL ? tn_xstrdup(next) : NULL;
    if (j->page_token == NULL)
        j->then(j);
    else if (j->pages >= GOOGLE_MAX_PAGES)
        fail(j, TN_EPROTO, "google_too_many_pages");
    else
        list_page(j);
}

/* retry_auth - after a 401: a fresh token, then the same request again */
static void retry_auth(struct calsync_job *j)
{
    if (j->auth_tries++ > 0) {
        fail(j, TN_EUNAVAIL, "google_auth");
        return;
    }
    calsync_gtoken_rejected(j, send_step);
}

/* transient - statuses that mean "later": false when handled otherwise */
static bool transient(struct calsync_job *j, long status, json_t *b)
{
    const char *why;
    enum tn_err err = calsync_gparse_verdict(status, b, &why);

    if (err == TN_OK)
        return false;
    fail(j, err, why);
    return true;
}

/* step_done - the current step's answer, status and parsed body */
static void step_done(struct calsync_job *j, long status, json_t *b)
{
    switch (j->step) {
    case STEP_GET:
        after_get(j, status, b);
        break;
    case STEP_INSERT:
        if (status == 409 && j->attempts++ < 2) { /* it exists after all: look again */
            go(j, STEP_GET, "GET", event_url(j, false), NULL, NULL);
        } else if (status == 200) {
            set_etag(j, b);
            tn_free(j->href);
            j->href = event_url(j, false);
            j->then(j);
        } else {
            fail(j, TN_EPROTO, "google_refused");
        }
        break;
    case STEP_PATCH:
        if (status == 200)
            set_etag(j, b);
        if (status == 200)
            j->then(j);
        else
            fail(j, status == 404 || status == 410 ? TN_EUNAVAIL : TN_EPROTO, "google_refused");
        break;
    case STEP_DELETE:
        if ((status >= 200 && status <= 299) || status == 404 || status == 410)
            j->then(j);
        else
            fail(j, TN_EPROTO, "google_refused");
        break;
    default:
        after_list(j, status, b);
        break;
    }
}

/* on_response - one HTTP answer for the current step */
static void on_response(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;
    json_t *b;

    if (err != TN_OK) {
        fail(j, err == TN_ECANCELED ? err : TN_EUNAVAIL, "google_unavailable");
        return;
    }
    if (resp->status == 401) {
        retry_auth(j);
        return;
    }
    b = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (!transient(j, resp->status, b))
        step_done(j, resp->status, b);
    json_decref(b);
}

/* calsync_google_mirror - make the calendar match the booking */
void calsync_google_mirror(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    j->then = then;
    go(j, STEP_GET, "GET", event_url(j, false), NULL, NULL);
}

/* calsync_google_import - read the calendar's busy time */
void calsync_google_import(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    j->then = then;
    j->win_from = tn_now_ms() / 1000;
    j->win_to = j->win_from + j->ctx->cfg.busy_days * 86400;
    list_page(j);
}
