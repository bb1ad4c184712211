/*
 * NAME
 *	sender_status - the tern:status handler: delivery states on the rows
 * SYNOPSIS
 *	tn_consumer_new(loop, url, &opts, sender_status_entry, ctx);
 * DESCRIPTION
 *	A delivery.status entry names the message by the provider's id (pmid,
 *	within its channel) and, when the provider echoes it, by our outbound
 *	id. The row is looked up by the outbound id first (the primary key;
 *	WhatsApp and Twilio echo it for every message Tern sends), then by the
 *	provider id among the channel's messages of the last 30 days (that
 *	column has no index: 0022_outbound_hot.sql). A WhatsApp status without
 *	our id is another sender's (a shared number): acknowledged and logged,
 *	not looked up. The row found (locked) moves to the furthest state
 *	(sender_status_next: never backwards, duplicates change nothing);
 *	failed records the provider's first error code. A status that names a
 *	row still in 'sending' by its outbound id is the echo that proves a
 *	send whose answer we lost was accepted: the row takes the provider id
 *	and its state, and is never sent again.
 *
 *	A status for no known row may have overtaken our own 'sent' update:
 *	it is retried twice (the consumer's backoff), then acknowledged and
 *	logged ("sender.status_unmatched"): it may be a message sent by
 *	another system through the same number.
 * RUNS ON
 *	loop; the row step on the threadpool (status_work).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_consumer.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>

#include "sender.h"

#define STATUS_UNMATCHED_TRIES 3

/* by the outbound id the provider echoed: the primary key */
static const char sql_find_id[] =
    "SELECT id, state FROM outbound_messages WHERE tenant_id = $1 AND id = $2::uuid FOR UPDATE";

/* by the provider's id: not indexed (0022: an index on it kept every update
 * of the row from being HOT), so among the channel's messages of the last
 * STATUS_PMID_DAYS days, through (tenant_id, created_at) */
#define STATUS_PMID_DAYS "30"
static const char sql_find_pmid[] = "SELECT id, state FROM outbound_messages WHERE tenant_id = $1"
                                    " AND created_at > now() - interval '" STATUS_PMID_DAYS " days'"
                                    " AND channel_id = $2::uuid AND provider_message_id = $3"
                                    " ORDER BY created_at DESC LIMIT 1 FOR UPDATE";

static const char sql_update[] =
    "UPDATE outbound_messages SET state = $3, provider_message_id = COALESCE(provider_message_id,"
    " $4), sent_at = COALESCE(sent_at, now()),"
    " delivered_at = CASE WHEN $3 IN ('delivered', 'read') THEN COALESCE(delivered_at, now())"
    " ELSE delivered_at END,"
    " read_at = CASE WHEN $3 = 'read' THEN now() ELSE read_at END,"
    " last_error_code = CASE WHEN $3 = 'failed' THEN $5 ELSE last_error_code END,"
    " updated_at = now() WHERE tenant_id = $1 AND id = $2";

struct status_job {
    struct sender_ctx *ctx;
    struct tn_consumer *c;
    struct tn_entry *e;
    struct tn_log_ctx log;
    const char *tenant, *channel, *pmid, *status, *outbound; /* borrowed from e */
    char code[SENDER_ERR_CODE_MAX];
    const char *moved; /* result: the new state, or NULL */
};

/* error_code - data.errors[0].code as text into job->code */
static void error_code(struct status_job *job)
{
    const char *raw = tn_entry_field(job->e, TN_F_DATA, NULL);
    json_t *d = raw != NULL ? json_loads(raw, 0, NULL) : NULL;
    json_t *code = json_object_get(json_array_get(json_object_get(d, "errors"), 0), "code");

    if (json_is_integer(code))
        snprintf(job->code, sizeof(job->code), "%lld", (long long)json_integer_value(code));
    json_decref(d);
}

/* find - the status' row, locked: by the echoed outbound id, else by the
 * provider's id (job's outbound and channel are valid uuids or NULL, pmid
 * is set: sender_status_entry). *res: new, one row (TN_ENOTFOUND: none). */
static enum tn_err find(struct tn_pgconn *c, struct status_job *job, struct pg_result **res)
{
    enum tn_err err = TN_ENOTFOUND;

    if (job->outbound != NULL) {
        err = tn_pgconn_query(c, sql_find_id, 2, (const char *const[]){job->tenant, job->outbound},
                              res);
        if (err == TN_OK && tn_pg_result_rows(*res) == 1)
            return TN_OK;
        tn_pg_result_free(*res);
        *res = NULL;
        if (err != TN_OK)
            return err;
    }
    if (job->channel != NULL) {
        err = tn_pgconn_query(c, sql_find_pmid, 3,
                              (const char *const[]){job->tenant, job->channel, job->pmid}, res);
        if (err == TN_OK && tn_pg_result_rows(*res) != 1)
            err = TN_ENOTFOUND;
    }
    return err;
}

/* status_work - find, lock and move the row. Runs on: threadpool. */
static enum tn_err status_work(struct tn_pgconn *c, void *arg)
{
    struct status_job *job = arg;
    struct pg_result *res = NULL;
    const char *id, *to;
    enum tn_err err = tn_pgconn_begin_tenant(c, job->tenant);

    if (err != TN_OK)
        return err;
    err = find(c, job, &res);
    if (err != TN_OK)
        goto out;
    id = tn_pg_result_value(res, 0, 0);
    to = sender_status_next(tn_pg_result_value(res, 0, 1), job->status);
    if (to != NULL) {
        err = tn_pgconn_query(c, sql_update, 5,
                              (const char *const[]){job->tenant, id, to, job->pmid,
                                                    job->code[0] != '\0' ? job->code : "failed"},
                              NULL);
        job->moved = to;
    }
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
out:
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    tn_pg_result_free(res);
    return err;
}

/* finish - the verdict */
static void finish(struct status_job *job, enum tn_disp disp, const char *reason)
{
    struct sender_ctx *ctx = job->ctx;

    tn_consumer_done(job->c, job->e, disp, reason);
    tn_free(job);
    ctx->handlers--;
}

/* status_done_cb - ACK, or retry what may match later */
static void status_done_cb(enum tn_err err, void *arg)
{
    struct status_job *job = arg;

    if (err == TN_OK) {
        tn_metric_inc(job->ctx->m.statuses);
        if (job->moved != NULL)
            tn_log_debug(&job->log, "sender.status", TN_KV_STR("state", job->moved));
        finish(job, TN_DISP_ACK, NULL);
    } else if (err == TN_ENOTFOUND && job->e->deliveries >= STATUS_UNMATCHED_TRIES) {
        tn_log_warn(&job->log, "sender.status_unmatched", TN_KV_STR("status", job->status));
        finish(job, TN_DISP_ACK, NULL);
    } else if (err == TN_EINVAL) {
        finish(job, TN_DISP_DEAD, "schema.invalid");
    } else {
        finish(job, TN_DISP_RETRY, err == TN_ENOTFOUND ? "status.unmatched" : "store.unavailable");
    }
}

/* sender_status_entry - one tern:status entry */
void sender_status_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct sender_ctx *ctx = arg;
    struct status_job *job = tn_xcalloc(1, sizeof(*job));
    const char *type = tn_entry_field(e, TN_F_TYPE, NULL);
    const char *out = tn_entry_field(e, TN_F_OUTBOUND, NULL);
    const char *ch = tn_entry_field(e, TN_F_CHANNEL, NULL);
    const char *prov;

    job->ctx = ctx;
    job->c = c;
    job->e = e;
    ctx->handlers++;
    job->tenant = tn_entry_field(e, TN_F_TENANT, NULL);
    job->pmid = tn_entry_field(e, TN_F_PMID, NULL);
    job->status = tn_entry_field(e, TN_F_STATUS, NULL);
    job->channel = ch != NULL && tn_uuid_valid(ch) ? ch : NULL;
    job->outbound = out != NULL && tn_uuid_valid(out) ? out : NULL;
    prov = tn_entry_field(e, TN_F_PROVIDER, NULL);
    job->log =
        (struct tn_log_ctx){.tenant_id = job->tenant, .entry_id = e->id, .stream = e->stream};
    if (type == NULL || strcmp(type, TN_TYPE_DELIVERY_STATUS) != 0 || job->tenant == NULL ||
        !tn_uuid_valid(job->tenant) || job->pmid == NULL || job->status == NULL) {
        finish(job, TN_DISP_DEAD, "schema.invalid");
        return;
    }
    if (job->outbound == NULL && prov != NULL && strcmp(prov, TN_PROVIDER_WHATSAPP) == 0) {
        /* Tern names every WhatsApp message it sends (biz_opaque_callback_data):
         * a status without that name is another sender's, on a shared number.
         * No lookup (provider ids are not indexed) and no retries. */
        tn_log_info(&job->log, "sender.status_foreign", TN_KV_STR("status", job->status));
        finish(job, TN_DISP_ACK, NULL);
        return;
    }
    error_code(job);
    if (tn_pg_submit(ctx->pg, status_work, status_done_cb, job) != TN_OK)
        finish(job, TN_DISP_RETRY, "store.unavailable");
}
