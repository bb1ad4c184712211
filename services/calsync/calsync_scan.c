/*
 * NAME
 *	calsync_scan - find calendar work no stream entry asked for
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_store_scan(ctx);   (every TN_CALSYNC_SCAN_INTERVAL)
 * DESCRIPTION
 *	The booking path bumps bookings.sync_version in the same transaction
 *	as the change; the cal.request XADD that follows is only a wake-up.
 *	This scan (tern_calsync_pending, ids only) finds bookings whose
 *	calendar is still behind two seconds later: a lost XADD, a crash
 *	between commit and XADD, or a mirror that failed and must be tried
 *	again. It also starts the periodic busy-time import of every connected
 *	account (tern_calsync_accounts_due) and, when push channels are on,
 *	a watch for every Google account whose channel is missing or expires
 *	within TN_CALSYNC_WATCH_AHEAD (tern_calsync_watch_due, which paces a
 *	failing watch to one attempt a minute), and a delete job for every
 *	calendar_deletions row that is due (tern_calsync_deletions_due, 0016:
 *	an erasure's event whose cal.request was lost or whose deletion
 *	failed; each row returned is paced, a minute doubling up to a day).
 *	One scan runs at a time; two replicas scanning together only repeat
 *	idempotent work.
 * RUNS ON
 *	Runs on: threadpool (the queries); loop (starting the jobs).
 * DIAGNOSTICS
 *	calsync.scan_failed.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "calsync.h"

#define SCAN_BOOKINGS 32
#define SCAN_ACCOUNTS 8
#define SCAN_MIN_AGE_MS 2000
#define SCAN_WATCHES 8
#define WATCH_RETRY_MS 60000
#define SCAN_DELETIONS 8

struct scan {
    struct calsync_ctx *ctx;
    struct pg_result *bookings, *accounts, *watches, *deletions;
};

/* watch_work - the accounts due a push channel (none when push is off) */
static enum tn_err watch_work(struct tn_pgconn *c, struct scan *s)
{
    char ahead[24], retry[24], lim[16];
    const char *p[3] = {ahead, retry, lim};

    if (s->ctx->push_address == NULL)
        return TN_OK;
    snprintf(ahead, sizeof(ahead), "%lld", (long long)s->ctx->cfg.watch_ahead_ms);
    snprintf(retry, sizeof(retry), "%d", WATCH_RETRY_MS);
    snprintf(lim, sizeof(lim), "%d", SCAN_WATCHES);
    return tn_pgconn_query(c,
                           "SELECT tenant_id, account_id FROM tern_calsync_watch_due($1, $2, $3)",
                           3, p, &s->watches);
}

/* deletions_work - the erased bookings' events due a delete job */
static enum tn_err deletions_work(struct tn_pgconn *c, struct scan *s)
{
    char lim[16];
    const char *p[1] = {lim};

    snprintf(lim, sizeof(lim), "%d", SCAN_DELETIONS);
    return tn_pgconn_query(c, "SELECT tenant_id, id FROM tern_calsync_deletions_due($1)", 1, p,
                           &s->deletions);
}

/* scan_work - the id queries. Runs on: threadpool */
static enum tn_err scan_work(struct tn_pgconn *c, void *arg)
{
    struct scan *s = arg;
    char age[16], lim[16], every[24], alim[16];
    const char *p[2] = {age, lim};
    enum tn_err err;

    snprintf(age, sizeof(age), "%d", SCAN_MIN_AGE_MS);
    snprintf(lim, sizeof(lim), "%d", SCAN_BOOKINGS);
    err = tn_pgconn_query(c, "SELECT tenant_id, booking_id FROM tern_calsync_pending($1, $2)", 2, p,
                          &s->bookings);
    if (err != TN_OK)
        return err;
    snprintf(every, sizeof(every), "%lld", (long long)s->ctx->cfg.busy_ms);
    snprintf(alim, sizeof(alim), "%d", SCAN_ACCOUNTS);
    p[0] = every, p[1] = alim;
    err = tn_pgconn_query(c, "SELECT tenant_id, account_id FROM tern_calsync_accounts_due($1, $2)",
                          2, p, &s->accounts);
    if (err == TN_OK)
        err = watch_work(c, s);
    return err == TN_OK ? deletions_work(c, s) : err;
}

/* start_all - one job per row */
static void start_all(struct calsync_ctx *ctx, struct pg_result *res, enum calsync_kind kind)
{
    for (int i = 0; res != NULL && i < tn_pg_result_rows(res); i++) {
        calsync_job_start(ctx, kind, tn_pg_result_value(res, i, 0), tn_pg_result_value(res, i, 1),
                          NULL, NULL);
    }
}

/* scan_done - start the jobs. Runs on: loop */
static void scan_done(enum tn_err err, void *arg)
{
    struct scan *s = arg;

    s->ctx->scanning = false;
    if (err != TN_OK && err != TN_ECANCELED)
        tn_log_warn(NULL, "calsync.scan_failed", TN_KV_ERR(err));
    if (err == TN_OK && !s->ctx->draining) {
        start_all(s->ctx, s->bookings, CALSYNC_MIRROR);
        start_all(s->ctx, s->accounts, CALSYNC_IMPORT);
        start_all(s->ctx, s->watches, CALSYNC_WATCH);
        start_all(s->ctx, s->deletions, CALSYNC_DELETE);
    }
    tn_pg_result_free(s->deletions);
    tn_pg_result_free(s->bookings);
    tn_pg_result_free(s->accounts);
    tn_pg_result_free(s->watches);
    tn_free(s);
}

/* calsync_store_scan - look for work, unless a scan is running */
void calsync_store_scan(struct calsync_ctx *ctx)
{
    struct scan *s;

    if (ctx->scanning || ctx->draining || ctx->pg == NULL)
        return;
    s = tn_xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    ctx->scanning = true;
    if (tn_pg_submit(ctx->pg, scan_work, scan_done, s) != TN_OK) {
        ctx->scanning = false;
        tn_free(s);
    }
}
