/*
 * NAME
 *	calsync_report - a CalDAV import's calendar-query answer, read off the loop
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_report_start(job, body, len, done);
 *	err = calsync_report_read(job, body, len, &allow);
 * DESCRIPTION
 *	The 207 answer to an import's REPORT is untrusted and may be costly
 *	to read: libxml2 parses up to 8 MiB, and libical expands every
 *	event's recurrence rules, where one rule that never matches costs
 *	40-180 ms inside a single libical call. On the loop that would stall
 *	every tenant's work, health checks included, for as long as one
 *	calendar server likes. So start copies the body and reads it on
 *	libuv's threadpool (uv_queue_work), then hands the job back to the
 *	loop in the after-work callback.
 *
 *	While the work is queued or running, the job belongs to it: the loop
 *	does not touch it (its HTTP request is over, and nothing else holds
 *	it), and the daemon does not stop before it is back (calsync_busy
 *	counts ctx->parsing; a drain that times out still runs the after-work
 *	callback, since uv_run waits for it, and the job is then only
 *	finished). The work touches only the job's ranges and seen list, the
 *	thread-safe allocator and libxml2 / libical, which keep no shared
 *	state for these calls (libxml2 is initialised on the loop first) but
 *	libical's zones: the job's zone (the tenant's, for all-day and
 *	floating times) was found on the loop before the import started
 *	(calsync_zone.c), and converting in it takes libical's own lock.
 *
 *	read hands each calendar-data text to calsync_ical_read (parsed once
 *	for its busy ranges and its marker), charged to
 *	the import's allowance (CALSYNC_IMPORT_MAX_EVENTS texts and
 *	CALSYNC_IMPORT_MAX_CPU_MS of CPU time, calsync.h); past it the whole
 *	window is busy. Every text is still inspected for Tern's own events
 *	(a parse without expansion, bounded by the body's size), so two-way
 *	sync does not take events the import skipped for missing ones.
 * RUNS ON
 *	loop (start and its after-work callback); threadpool (read, through
 *	report_work).
 * DIAGNOSTICS
 *	calsync.import_capped (warn: account_id, reason events | cpu, limit
 *	events) and tern_calsync_import_capped_total{reason}. No event
 *	content is logged.
 */
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <uv.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_proto.h>

#include "calsync.h"

/* One REPORT answer on its way through the threadpool; owns body. */
struct report {
    uv_work_t req;
    struct calsync_job *j;
    char *body;
    size_t len;
    struct calsync_allow allow;
    enum tn_err err;
    calsync_report_done_fn *done;
};

/* What read's callback needs: the job and its allowance (both borrowed). */
struct reading {
    struct calsync_job *j;
    struct calsync_allow *allow;
};

/* collect - one calendar-data text into the job's ranges and seen list
 * (one parse for both).
 * Runs on: the thread that called calsync_report_read (the threadpool in
 * the daemon). */
static void collect(const char *text, void *arg)
{
    struct reading *r = arg;
    struct calsync_job *j = r->j;
    char marker[64];
    int64_t s = 0, e = 0;

    if (calsync_ical_read(text, j->zone, j->win_from, j->win_to, r->allow, &j->ranges, &j->nranges,
                          &j->cap, marker, sizeof(marker), &s, &e) &&
        marker[0] != '\0')
        calsync_twoway_seen(j, marker, s, e); /* Tern's own: for two-way sync */
}

/* calsync_report_read - see calsync.h */
enum tn_err calsync_report_read(struct calsync_job *j, const char *body, size_t len,
                                struct calsync_allow *allow)
{
    struct reading r = {.j = j, .allow = allow};

    return calsync_xml_calendar_data(body, len, collect, &r);
}

/* report_work - read the answer into the job.
 * Runs on: threadpool. Touches only r, r->j's ranges and seen list. */
static void report_work(uv_work_t *req)
{
    struct report *r = req->data;

    calsync_allow_init(&r->allow); /* here: CPU time is counted per thread */
    r->err = calsync_report_read(r->j, r->body, r->len, &r->allow);
}

/* capped - the answer was past the import's bounds: say so, count it.
 * Runs on: loop. */
static void capped(struct calsync_job *j, const char *reason)
{
    struct tn_log_ctx lc = {.tenant_id = j->tenant, .stream = TN_STREAM_CAL};
    char labels[32];

    tn_log_warn(&lc, "calsync.import_capped", TN_KV_STR("account_id", j->id),
                TN_KV_STR("reason", reason), TN_KV_INT("limit_events", CALSYNC_IMPORT_MAX_EVENTS),
                TN_KV_INT("limit_cpu_ms", CALSYNC_IMPORT_MAX_CPU_MS));
    if (j->ctx->metrics == NULL)
        return;
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    tn_metric_inc(
        tn_metrics_get(j->ctx->metrics, TN_METRIC_COUNTER, "tern_calsync_import_capped_total",
                       "CalDAV imports not fully expanded (the window counted busy)", labels));
}

/* report_done_cb - the job is the loop's again: continue it.
 * Runs on: loop. Owns r and the job again; status is UV_ECANCELED only if
 * the work never ran. */
static void report_done_cb(uv_work_t *req, int status)
{
    struct report *r = req->data;
    struct calsync_job *j = r->j;
    calsync_report_done_fn *done = r->done;
    enum tn_err err = r->err;

    j->ctx->parsing--;
    if (status != 0 || j->ctx->stopped)
        err = TN_ECANCELED;
    else if (err == TN_OK && r->allow.over != NULL)
        capped(j, r->allow.over);
    tn_free(r->body);
    tn_free(r);
    done(j, err);
}

/* calsync_report_start - see calsync.h */
void calsync_report_start(struct calsync_job *j, const char *body, size_t len,
                          calsync_report_done_fn *done)
{
    struct report *r = tn_xcalloc(1, sizeof(*r));
    int rc;

    r->j = j;
    r->body = tn_xmalloc(len + 1); /* the response is freed when its callback returns */
    if (len > 0)
        memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->len = len;
    r->done = done;
    r->req.data = r;
    xmlInitParser(); /* on the loop, before any thread parses (a no-op after the first) */
    j->ctx->parsing++;
    rc = uv_queue_work(j->ctx->loop, &r->req, report_work, report_done_cb);
    TN_ASSERT(rc == 0); /* fails only for a NULL work callback */
}
