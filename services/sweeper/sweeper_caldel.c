/*
 * NAME
 *	sweeper_caldel - an erasure's calendar events, handed to tern-calsync
 * SYNOPSIS
 *	err = sweeper_caldel_record(c, contact, &rows, &n);   (in the transaction)
 *	sweeper_caldel_publish(url, tenant, rows, n);          (after COMMIT)
 * DESCRIPTION
 *	An erased booking may have an event that tern-calsync created in the
 *	business's Google or CalDAV calendar, holding the service's name at
 *	the person's times. Once the booking row is gone nothing would lead
 *	to that event, so, in the erasure's transaction and before the
 *	bookings are deleted, record writes one calendar_deletions row (0016)
 *	per booking with a live event (external_event_id and the account it
 *	was written to): the booking id, the account and the account's
 *	calendar. Ids only: no name, address or text of the person.
 *
 *	After COMMIT, publish XADDs one cal.request op delete_event per row
 *	(request_id = the row id, data.deletion_id, data.account_id) to
 *	tern:cal. tern-calsync deletes the event only if it carries Tern's mark
 *	for that booking, then the row. Delivery is at least once: a crash or a
 *	Redis failure between COMMIT and XADD leaves the row, which
 *	tern-calsync's scan takes a minute later (tern_calsync_deletions_due);
 *	a second delete of a deleted event is a no-op.
 * RUNS ON
 *	Runs on: threadpool.
 * DIAGNOSTICS
 *	sweeper.caldel_published (count), sweeper.caldel_publish_failed (warn:
 *	the scan will do it). Ids and counts only.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_time.h>

#include "sweeper.h"

#define CALDEL_MAX 1000 /* events per erasure; more wait for the scan */

/* Only events tern-calsync recorded as written (external_event_id) to an
 * account that still names its calendar. */
static const char sql_record[] =
    "INSERT INTO calendar_deletions (tenant_id, booking_id, account_id, calendar_id)"
    " SELECT b.tenant_id, b.id, a.id, a.calendar_id FROM bookings b JOIN oauth_accounts a"
    "  ON a.tenant_id = b.tenant_id AND a.id = b.calendar_account_id"
    " WHERE b.contact_id = $1::uuid AND b.external_event_id IS NOT NULL"
    "  AND a.calendar_id IS NOT NULL"
    " RETURNING id, account_id";

/* sweeper_caldel_record - the rows, in the caller's transaction */
enum tn_err sweeper_caldel_record(struct tn_pgconn *c, const char *contact,
                                  struct sweeper_caldel **out, size_t *n)
{
    struct pg_result *res = NULL;
    struct sweeper_caldel *rows = NULL;
    size_t k = 0;
    enum tn_err err = tn_pgconn_query(c, sql_record, 1, (const char *[]){contact}, &res);

    if (err != TN_OK || tn_pg_result_rows(res) == 0)
        goto out;
    rows = tn_xcalloc((size_t)tn_pg_result_rows(res), sizeof(*rows));
    for (int i = 0; i < tn_pg_result_rows(res); i++, k++) {
        snprintf(rows[k].id, sizeof(rows[k].id), "%s", tn_pg_result_value(res, i, 0));
        snprintf(rows[k].account, sizeof(rows[k].account), "%s", tn_pg_result_value(res, i, 1));
    }
out:
    tn_pg_result_free(res);
    *out = rows;
    *n = k;
    return err;
}

/* request_data - the cal.request payload of one row; new (tn_free) */
static char *request_data(const char *tenant, const struct sweeper_caldel *row)
{
    char at[40], *s, *out;
    json_t *o;

    tn_time_rfc3339(tn_now_ms(), at, sizeof(at));
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "tenant", tenant, "request_id", row->id, "op",
                  "delete_event", "account_id", row->account, "deletion_id", row->id,
                  "requested_at", at);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    out = tn_xstrdup(s != NULL ? s : "{}");
    tn_free(s); /* jansson's buffer (tn_free is free) */
    return out;
}

/* publish_one - XADD one row's entry; false when Redis refused */
static bool publish_one(struct redisContext *rc, const char *tenant,
                        const struct sweeper_caldel *row)
{
    char trace[TN_TRACEPARENT_SIZE], dedupe[48], *data = request_data(tenant, row);
    const char *argv[] = {
        "XADD",      TN_STREAM_CAL, "*",         TN_F_TYPE,    TN_TYPE_CAL_REQUEST,
        TN_F_V,      "1",           TN_F_TENANT, tenant,       TN_F_TRACE,
        trace,       TN_F_REQUEST,  row->id,     TN_F_ACCOUNT, row->account,
        TN_F_DEDUPE, dedupe,        TN_F_DATA,   data};
    struct redisReply *rep;

    tn_traceparent_new(trace);
    snprintf(dedupe, sizeof(dedupe), "cal:%s", row->id);
    rep = sweeper_redis_cmd(rc, (int)(sizeof(argv) / sizeof(argv[0])), argv);
    tn_free(data);
    if (rep == NULL)
        return false;
    freeReplyObject(rep);
    return true;
}

/* sweeper_caldel_publish - one entry per row, best effort */
void sweeper_caldel_publish(const char *url, const char *tenant, const struct sweeper_caldel *rows,
                            size_t n)
{
    struct tn_log_ctx lc = {.tenant_id = tenant, .stream = TN_STREAM_CAL};
    struct redisContext *rc;
    size_t sent = 0;

    if (n == 0)
        return;
    rc = sweeper_redis_open(url);
    for (size_t i = 0; rc != NULL && i < n && i < CALDEL_MAX; i++) {
        if (!publish_one(rc, tenant, &rows[i]))
            break;
        sent++;
    }
    if (rc != NULL)
        redisFree(rc);
    if (sent < n)
        tn_log_warn(&lc, "sweeper.caldel_publish_failed", TN_KV_INT("events", (long)n),
                    TN_KV_INT("published", (long)sent));
    else
        tn_log_info(&lc, "sweeper.caldel_published", TN_KV_INT("events", (long)n));
}
