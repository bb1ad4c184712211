/*
 * NAME
 *	calsync_caldav - mirror a booking to a CalDAV calendar, import busy time
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_caldav_mirror(job, then);  calsync_caldav_import(job, then);
 * DESCRIPTION
 *	Mirror (RFC 4791 section 5.3.2, RFC 7232): Tern's event lives at
 *	<collection>tern<booking id without dashes>.ics. Every attempt starts
 *	with a GET of that resource, so the decision rests on what the server
 *	holds now:
 *	  404, event wanted     PUT If-None-Match: * (create; 412: someone
 *	                        created it meanwhile -> retry)
 *	  404, no event wanted  nothing to do
 *	  200, not Tern's       refuse (never overwrite a foreign event)
 *	  200, Tern's, wanted   same times: done; else PUT If-Match: <ETag>
 *	  200, Tern's, unwanted DELETE If-Match: <ETag> (404 is fine)
 *	A 412 on If-Match means the event changed under us: the job is retried
 *	and starts again with a GET. "Tern's" means the event carries
 *	X-TERN-BOOKING with this booking's id.
 *
 *	Import: REPORT calendar-query (Depth: 1) over [now, now + busy days];
 *	each calendar-data becomes busy ranges (calsync_ical_read; all-day
 *	and floating times in the tenant's zone, j->zone). Works on
 *	servers without free-busy-query (Radicale). Tern's own events in the
 *	answer are noted for two-way sync (calsync_twoway.c). The answer is
 *	read on the threadpool, within the import's bounds
 *	(calsync_report.c); the job continues on the loop after it.
 *
 *	Check (a CALSYNC_CHECK job): the same GET; 404 means the business
 *	deleted Tern's event, its marker at other times that it moved it.
 *	Nothing is written.
 * RUNS ON
 *	loop (the REPORT answer is read on the threadpool: calsync_report.c).
 * DIAGNOSTICS
 *	j->err and j->why: TN_EDENIED "caldav_auth", TN_EPROTO
 *	"caldav_refused" / "foreign_event" (not retried), TN_EUNAVAIL
 *	"caldav_unavailable" / "caldav_precondition" (retried).
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_time.h>

#include "calsync.h"

#define CALDAV_MAX_RESPONSE (8u << 20)

enum step { STEP_GET, STEP_PUT, STEP_DELETE, STEP_REPORT };

static void on_response(const struct tn_http_response *resp, enum tn_err err, void *arg);

/* fail - finish the HTTP part with an error */
static void fail(struct calsync_job *j, enum tn_err err, const char *why)
{
    j->err = err;
    j->why = why;
    j->then(j);
}

/* dav_send - one request for the current step */
static void dav_send(struct calsync_job *j, const char *method, const char *url,
                     const char *const *hdr, const char *body)
{
    struct tn_http_request rq = {
        .method = method,
        .url = url,
        .headers = hdr,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .userpwd = j->acct.userpwd,
        .max_response = CALDAV_MAX_RESPONSE,
    };

    if (tn_http_send(j->ctx->http, &rq, on_response, j) != TN_OK)
        fail(j, TN_EUNAVAIL, "caldav_unavailable");
}

/* put - create (etag NULL) or update Tern's event */
static void put(struct calsync_job *j, const char *etag)
{
    char cond[300];
    const char *hdr[3] = {"Content-Type: text/calendar; charset=utf-8", cond, NULL};

    if (etag != NULL)
        snprintf(cond, sizeof(cond), "If-Match: %s", etag);
    else
        snprintf(cond, sizeof(cond), "If-None-Match: *");
    tn_free(j->ics);
    j->ics = calsync_ical_event(j->id, j->start_s, j->end_s, j->summary, tn_now_ms() / 1000);
    j->step = STEP_PUT;
    dav_send(j, "PUT", j->href, hdr, j->ics);
}

/* del - delete Tern's event at etag */
static void del(struct calsync_job *j, const char *etag)
{
    char cond[300];
    const char *hdr[2] = {cond, NULL};

    snprintf(cond, sizeof(cond), "If-Match: %s", etag);
    j->step = STEP_DELETE;
    dav_send(j, "DELETE", j->href, hdr, NULL);
}

/* set_etag - remember the response's ETag (NULL when it sent none) */
static void set_etag(struct calsync_job *j, const struct tn_http_response *resp)
{
    const char *e = tn_http_response_header(resp, "ETag");

    tn_free(j->etag);
    j->etag = e != NULL && strlen(e) < 256 ? tn_xstrdup(e) : NULL;
}

/* check_get - a check (calsync_twoway.c): is Tern's event gone or moved? */
static void check_get(struct calsync_job *j, const struct tn_http_response *resp)
{
    char marker[64];
    int64_t s = 0, e = 0;

    if (resp->status == 404 || resp->status == 410) {
        j->gone = true;
    } else if (resp->status != 200) {
        fail(j, TN_EPROTO, "caldav_refused");
        return;
    } else if (calsync_ical_inspect(resp->body, j->zone, marker, sizeof(marker), &s, &e) &&
               strcmp(marker, j->id) == 0 && (s != j->start_s || e != j->end_s)) {
        j->moved = true;
        j->new_start = s, j->new_end = e;
    }
    j->then(j);
}

/* after_get - decide from what the server holds */
static void after_get(struct calsync_job *j, const struct tn_http_response *resp)
{
    char marker[64];
    int64_t s = 0, e = 0;

    if (j->kind == CALSYNC_CHECK) {
        check_get(j, resp);
        return;
    }
    if (resp->status == 404) {
        if (j->want_event)
            put(j, NULL);
        else
            j->then(j);
        return;
    }
    if (resp->status != 200) {
        fail(j, TN_EPROTO, "caldav_refused");
        return;
    }
    set_etag(j, resp);
    if (!calsync_ical_inspect(resp->body, j->zone, marker, sizeof(marker), &s, &e) ||
        strcmp(marker, j->id) != 0) {
        tn_log_warn(NULL, "calsync.foreign_event", TN_KV_STR("booking_id", j->id));
        {
            fail(j, TN_EPROTO, "foreign_event");
            return;
        }
    }
    if (j->etag == NULL) {
        fail(j, TN_EPROTO, "caldav_no_etag");
        return;
    }
    if (!j->want_event)
        del(j, j->etag);
    else if (s == j->start_s && e == j->end_s)
        j->then(j); /* already as it should be */
    else
        put(j, j->etag);
}

/* report_read - the REPORT answer was read on the threadpool; the job is
 * the loop's again. TN_ECANCELED: the daemon stopped meanwhile, so the
 * job is only finished, and retried (as when shutdown cuts a transfer). */
static void report_read(struct calsync_job *j, enum tn_err err)
{
    if (err == TN_ECANCELED)
        fail(j, TN_EUNAVAIL, "caldav_unavailable");
    else if (err != TN_OK)
        fail(j, TN_EPROTO, "caldav_bad_xml");
    else
        j->then(j);
}

/* on_response - one HTTP answer for the current step */
static void on_response(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;

    if (err != TN_OK) {
        fail(j, tn_err_retryable(err) || err == TN_EPROTO ? TN_EUNAVAIL : err,
             "caldav_unavailable");
        return;
    }
    if (resp->status == 401 || resp->status == 403) {
        fail(j, TN_EDENIED, "caldav_auth");
        return;
    }
    if (resp->status >= 500 || resp->status == 429) {
        fail(j, TN_EUNAVAIL, "caldav_unavailable");
        return;
    }
    if (resp->status == 412) {
        fail(j, TN_EUNAVAIL, "caldav_precondition");
        return;
    }
    switch (j->step) {
    case STEP_GET: {
        after_get(j, resp);
        return;
    }
    case STEP_PUT:
        if (resp->status < 200 || resp->status > 299) {
            fail(j, TN_EPROTO, "caldav_refused");
            return;
        }
        set_etag(j, resp);
        {
            j->then(j);
            return;
        }
    case STEP_DELETE:
        if ((resp->status < 200 || resp->status > 299) && resp->status != 404) {
            fail(j, TN_EPROTO, "caldav_refused");
            return;
        }
        {
            j->then(j);
            return;
        }
    default:
        if (resp->status != 207) {
            fail(j, TN_EPROTO, "caldav_refused");
            return;
        }
        calsync_report_start(j, resp->body, resp->body_len, report_read);
        return;
    }
}

/* calsync_caldav_mirror - make the calendar match the booking */
void calsync_caldav_mirror(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    size_t n = strlen(j->acct.url) + 64;
    size_t o;

    j->then = then;
    j->href = tn_xmalloc(n);
    o = (size_t)snprintf(j->href, n, "%s" CALSYNC_UID_PREFIX, j->acct.url);
    for (const char *p = j->id; *p != '\0' && o + 5 < n; p++) {
        if (*p != '-')
            j->href[o++] = *p;
    }
    snprintf(j->href + o, n - o, ".ics");
    j->step = STEP_GET;
    dav_send(j, "GET", j->href, NULL, NULL);
}

/* calsync_caldav_import - read the calendar's busy time */
void calsync_caldav_import(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    static const char *const hdr[] = {"Content-Type: application/xml; charset=utf-8", "Depth: 1",
                                      NULL};
    char *body;

    j->then = then;
    j->win_from = tn_now_ms() / 1000;
    j->win_to = j->win_from + j->ctx->cfg.busy_days * 86400;
    body = calsync_xml_report_body(j->win_from, j->win_to);
    j->step = STEP_REPORT;
    dav_send(j, "REPORT", j->acct.url, hdr, body);
    tn_free(body);
}
