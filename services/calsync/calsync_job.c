/*
 * NAME
 *	calsync_job - one mirror or import, from a tern:cal entry or a scan
 * SYNOPSIS
 *	#include "calsync.h"
 *	tn_consumer_new(..., calsync_entry, ctx);
 *	calsync_job_start(ctx, CALSYNC_MIRROR, tenant, booking_id, NULL, NULL);
 * DESCRIPTION
 *	A job is load (Postgres) -> CalDAV -> save (Postgres) -> verdict.
 *	Mirroring is state-based: the op of the request does not matter, the
 *	booking's current row does (confirmed: the event exists with its
 *	times; anything else: Tern's event is gone), so repeats, reorderings
 *	and lost requests all converge. A booking without a connected
 *	calendar is recorded as mirrored. Retryable failures are not saved
 *	(the booking stays behind, the entry is retried, and the scan finds it
 *	too); permanent ones (a foreign event where Tern's should be, a
 *	refused credential) are saved in bookings.sync_error and dead-lettered.
 *
 *	Entries: data.op book | reschedule | cancel (booking_id) mirror a
 *	booking; sync (account_id) imports busy time; connect stores a Google
 *	account (calsync_gconnect.c). An import that finds one of Tern's
 *	events missing or moved starts a check job per booking (no entry;
 *	calsync_twoway.c), which GETs the event and makes the booking follow.
 *	The account's provider picks CalDAV (calsync_caldav.c) or Google
 *	(calsync_google.c); an account flagged
 *	needs_reconnect gets no calls (the booking records "reconnect_needed").
 *	watch (account_id) opens a new Google push channel, disconnect
 *	(account_id) stops it (calsync_gwatch.c); push (account_id, from
 *	tern-ingest, which checked the channel token) imports the account at
 *	once: the import is the two-way check, so an owner's delete or move is
 *	acted on in seconds. A push whose token did not match, or the "sync"
 *	hello of a new channel, is acknowledged and ignored.
 *	delete_event (deletion_id, account_id; from tern-sweeper's erasure, or
 *	the scan with no entry) deletes Tern's event of an erased booking:
 *	the calendar_deletions row names the booking, the account and the
 *	calendar, and the mirror's own path runs with no event wanted, so
 *	only an event carrying Tern's mark for that booking is deleted (a
 *	foreign one is refused and left alone); 404/410 are done. The row is
 *	dropped when the event is gone (or never was Tern's, or the account
 *	is disconnected: nothing to delete with); a row that is gone already
 *	means done. Any other op is dead-lettered ("unsupported_op") so that
 *	nothing is silently dropped.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	calsync.mirrored, calsync.imported, calsync.event_deleted (info);
 *	calsync.job_failed, calsync.event_delete_skipped (warn).
 */
#include <string.h>

#include <jansson.h>

#include <tn/tn_consumer.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>

#include "calsync.h"

/* uuid_ok - 36 characters of hex and dashes */
static bool uuid_ok(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL || !s[i])
            return false;
    }
    return true;
}

/* calsync_job_free - release a job and everything it holds */
void calsync_job_free(struct calsync_job *j)
{
    tn_free_secret(j->acct.userpwd);
    tn_free_secret(j->acct.access);
    tn_free_secret(j->acct.refresh);
    calsync_google_free(j);
    calsync_connect_free(j->conn);
    tn_free(j->page_token);
    tn_free(j->acct.url);
    tn_free(j->summary);
    tn_free(j->href);
    tn_free(j->etag);
    tn_free(j->ics);
    tn_free(j->ranges);
    calsync_twoway_free(j);
    calsync_gwatch_free(j);
    tn_free(j);
}

/* calsync_job_finish - the verdict: answer the entry, release the job */
void calsync_job_finish(struct calsync_job *j)
{
    struct tn_log_ctx lc = {.tenant_id = j->tenant, .stream = TN_STREAM_CAL};
    enum tn_disp d = j->err == TN_OK            ? TN_DISP_ACK
                     : tn_err_retryable(j->err) ? TN_DISP_RETRY
                                                : TN_DISP_DEAD;
    static const char *const done[] = {
        [CALSYNC_MIRROR] = "calsync.mirrored",      [CALSYNC_IMPORT] = "calsync.imported",
        [CALSYNC_CONNECT] = "calsync.connect_done", [CALSYNC_CHECK] = "calsync.checked",
        [CALSYNC_WATCH] = "calsync.watched",        [CALSYNC_UNWATCH] = "calsync.unwatched",
        [CALSYNC_DELETE] = "calsync.event_deleted"};

    if (j->err == TN_OK)
        tn_log_info(&lc, done[j->kind], TN_KV_STR("id", j->id),
                    TN_KV_BOOL("calendar", j->has_account), TN_KV_BOOL("google", j->acct.google),
                    TN_KV_INT("busy_ranges", j->nranges), TN_KV_BOOL("gone", j->gone),
                    TN_KV_BOOL("moved", j->moved));
    else
        tn_log_warn(&lc, "calsync.job_failed", TN_KV_STR("id", j->id), TN_KV_ERR(j->err),
                    TN_KV_STR("why", j->why != NULL ? j->why : ""));
    if (j->entry != NULL)
        tn_consumer_done(j->consumer, j->entry, d, j->why);
    j->ctx->jobs--;
    calsync_job_free(j);
}

/* saved - the outcome is durable (or could not be saved); an import then
 * checks the bookings whose events it missed */
static void saved(struct calsync_job *j)
{
    if (j->kind == CALSYNC_IMPORT && j->err == TN_OK)
        calsync_twoway_checks(j);
    calsync_job_finish(j);
}

/* checked - a check's GET answered: make the booking follow the calendar */
static void checked(struct calsync_job *j)
{
    if (j->err != TN_OK)
        calsync_job_finish(j);
    else
        calsync_twoway_apply(j, calsync_job_finish);
}

/* remote_done - the calendar side finished */
static void remote_done(struct calsync_job *j)
{
    if (j->err != TN_OK && tn_err_retryable(j->err))
        calsync_job_finish(j); /* leave the booking behind: retried */
    else
        calsync_store_save(j, saved);
}

/* delete_skipped - an erased booking's event whose account is no longer
 * connected: no credentials to delete it with; the row is dropped */
static void delete_skipped(struct calsync_job *j)
{
    tn_log_warn(&(struct tn_log_ctx){.tenant_id = j->tenant}, "calsync.event_delete_skipped",
                TN_KV_STR("booking_id", j->id), TN_KV_STR("reason", "account_disconnected"));
    calsync_store_save(j, saved);
}

/* loaded - what the job needs is in memory */
static void loaded(struct calsync_job *j)
{
    if (j->err != TN_OK || !j->found) {
        if (j->err == TN_EDENIED)
            j->why = "credential_does_not_open";
        calsync_job_finish(j); /* gone (ACK) or failed */
        return;
    }
    if (j->has_account && j->acct.reconnect) { /* no calls until the owner reconnects */
        j->err = TN_EDENIED;
        j->why = "reconnect_needed";
        if (j->kind == CALSYNC_MIRROR)
            calsync_store_save(j, saved);
        else
            calsync_job_finish(j);
        return;
    }
    if (j->has_account) /* here, on the loop: finding a zone is not thread-safe */
        j->zone = calsync_zone_pick(j, j->acct.time_zone, "tenant", NULL);
    if (j->kind == CALSYNC_WATCH || j->kind == CALSYNC_UNWATCH)
        calsync_gwatch_run(j, calsync_job_finish);
    else if (j->kind == CALSYNC_DELETE && !j->has_account)
        delete_skipped(j); /* disconnected: nothing to delete with */
    else if (j->kind == CALSYNC_DELETE)
        (j->acct.google ? calsync_google_mirror : calsync_caldav_mirror)(j, remote_done);
    else if (j->kind == CALSYNC_CHECK && !j->in_sync)
        calsync_job_finish(j); /* changed since the import: the mirror decides */
    else if (j->kind == CALSYNC_CHECK)
        (j->acct.google ? calsync_google_mirror : calsync_caldav_mirror)(j, checked);
    else if (j->kind == CALSYNC_IMPORT)
        (j->acct.google ? calsync_google_import : calsync_caldav_import)(j, remote_done);
    else if (!j->has_account)
        calsync_store_save(j, saved); /* no calendar: nothing to mirror */
    else
        (j->acct.google ? calsync_google_mirror : calsync_caldav_mirror)(j, remote_done);
}

/* calsync_job_start - begin one job; the entry (may be NULL) is answered at
 * its end */
void calsync_job_start(struct calsync_ctx *ctx, enum calsync_kind kind, const char *tenant,
                       const char *id, struct tn_consumer *c, struct tn_entry *e)
{
    struct calsync_job *j = tn_xcalloc(1, sizeof(*j));

    j->ctx = ctx;
    j->kind = kind;
    j->consumer = c;
    j->entry = e;
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    snprintf(j->id, sizeof(j->id), "%s", id);
    ctx->jobs++;
    calsync_store_load(j, loaded);
}

/* push_wanted - a push to act on: the token matched and it is not the
 * channel's "sync" hello (tern-ingest never enqueues those, but the stream
 * is not trusted) */
static bool push_wanted(json_t *d)
{
    json_t *p = json_object_get(d, "push");
    const char *st = json_string_value(json_object_get(p, "resource_state"));

    return json_is_true(json_object_get(p, "token_ok")) && st != NULL && strcmp(st, "sync") != 0;
}

/* account_op - the account ops: push, watch, disconnect, delete_event
 * (false: not one) */
static bool account_op(struct calsync_ctx *ctx, struct tn_consumer *c, struct tn_entry *e,
                       const char *tenant, const char *op, json_t *d)
{
    const char *aid = json_string_value(json_object_get(d, "account_id"));
    const char *did = json_string_value(json_object_get(d, "deletion_id"));

    if (!uuid_ok(aid))
        return false;
    if (strcmp(op, "push") == 0 && !push_wanted(d)) {
        tn_log_info(&(struct tn_log_ctx){.tenant_id = tenant}, "calsync.push_ignored",
                    TN_KV_STR("account_id", aid));
        tn_consumer_done(c, e, TN_DISP_ACK, NULL);
    } else if (strcmp(op, "push") == 0) {
        calsync_job_start(ctx, CALSYNC_IMPORT, tenant, aid, c, e);
    } else if (strcmp(op, "watch") == 0) {
        calsync_job_start(ctx, CALSYNC_WATCH, tenant, aid, c, e);
    } else if (strcmp(op, "disconnect") == 0) {
        calsync_job_start(ctx, CALSYNC_UNWATCH, tenant, aid, c, e);
    } else if (strcmp(op, "delete_event") == 0 && uuid_ok(did)) {
        calsync_job_start(ctx, CALSYNC_DELETE, tenant, did, c, e);
    } else {
        return false;
    }
    return true;
}

/* calsync_entry - one cal.request */
void calsync_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct calsync_ctx *ctx = arg;
    const char *tenant = tn_entry_field(e, TN_F_TENANT, NULL);
    const char *data = tn_entry_field(e, TN_F_DATA, NULL);
    json_t *d = data != NULL ? json_loads(data, 0, NULL) : NULL;
    const char *op = json_string_value(json_object_get(d, "op"));
    const char *bid = json_string_value(json_object_get(d, "booking_id"));
    const char *aid = json_string_value(json_object_get(d, "account_id"));
    const char *dt = json_string_value(json_object_get(d, "tenant"));

    if (op == NULL || !uuid_ok(tenant) || dt == NULL || strcmp(dt, tenant) != 0) {
        tn_consumer_done(c, e, TN_DISP_DEAD, "malformed");
    } else if ((!strcmp(op, "book") || !strcmp(op, "reschedule") || !strcmp(op, "cancel")) &&
               uuid_ok(bid)) {
        calsync_job_start(ctx, CALSYNC_MIRROR, tenant, bid, c, e);
    } else if (strcmp(op, "sync") == 0 && uuid_ok(aid)) {
        calsync_job_start(ctx, CALSYNC_IMPORT, tenant, aid, c, e);
    } else if (strcmp(op, "connect") == 0) {
        calsync_connect_start(ctx, tenant, data, c, e);
    } else if (account_op(ctx, c, e, tenant, op, d)) {
        /* started or answered */
    } else {
        tn_consumer_done(c, e, TN_DISP_DEAD, "unsupported_op");
    }
    json_decref(d);
}
