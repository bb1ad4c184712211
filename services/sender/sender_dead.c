/*
 * NAME
 *	sender_dead - dead letters for messages that ran out of attempts
 * SYNOPSIS
 *	sender_dead_letter(job);
 * DESCRIPTION
 *	A message that reaches the attempt limit (or expires) on the schedule
 *	has no stream entry left (its tern:out entry was acknowledged when it
 *	was scheduled), so its outbound.message entry is rebuilt from the row
 *	and written to tern:out:dead with the dead.entry fields
 *	(proto/streams/dead.entry.v1.json): dead_reason ("attempts.exceeded:
 *	<last code>", "expired"), dead_from_id (the original entry id),
 *	dead_deliveries (the attempts), dead_at. `ternctl dead replay` puts
 *	the row back to queued and the entry back on tern:out. Only after the
 *	XADD is the member taken off the schedule: if Redis refuses, the
 *	member returns after its lease and finds the row dead (logged).
 * RUNS ON
 *	loop.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "sender.h"

struct dead_op {
    struct sender_ctx *ctx;
    char tenant[SENDER_UUID_LEN + 1];
    char member[200];
};

/* set_opt - o[key] = v when v is not NULL */
static void set_opt(json_t *o, const char *key, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, key, json_string(v));
}

/* data_json - the outbound.message payload rebuilt from the job's row */
static char *data_json(const struct sender_job *job)
{
    const struct sender_row *r = &job->row;
    json_t *d = json_object();
    char *text;

    set_opt(d, "tenant", job->tenant);
    set_opt(d, "channel", job->channel);
    set_opt(d, "provider", job->prov->name);
    set_opt(d, "outbound_id", job->id);
    set_opt(d, "conversation_id", r->conversation);
    set_opt(d, "contact_id", job->contact);
    set_opt(d, "to", r->to);
    set_opt(d, "transport", r->transport);
    set_opt(d, "kind", r->kind);
    set_opt(d, "text", r->text);
    if (r->template != NULL)
        json_object_set(d, "template", r->template);
    set_opt(d, "reply_to", r->reply_to);
    set_opt(d, "reason", r->reason != NULL ? r->reason : "reply");
    set_opt(d, "not_before", r->not_before);
    set_opt(d, "expires_at", r->expires_at);
    set_opt(d, "created_at", r->created_at);
    text = sender_json_text(d);
    json_decref(d);
    return text;
}

/* xadd_cb - the dead letter is written: unschedule */
static void xadd_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct dead_op *op = arg;

    (void)r;
    if (err != TN_OK || reply->type == REDIS_REPLY_ERROR)
        tn_log_error(NULL, "sender.dead_letter_failed", TN_KV_ERR(err != TN_OK ? err : TN_EDENIED));
    else
        sender_sched_done(op->ctx, op->tenant, op->member);
    tn_free(op);
}

/* sender_dead_letter - XADD tern:out:dead, then unschedule */
void sender_dead_letter(struct sender_job *job)
{
    struct dead_op *op = tn_xcalloc(1, sizeof(*op));
    char trace[TN_TRACEPARENT_SIZE], dedupe[64], deliveries[16], at[40];
    char *data = data_json(job);
    const char *src = job->row.source_entry != NULL ? job->row.source_entry : "0-0";
    const char *f[26];
    size_t n = 0;

    if (job->row.trace != NULL)
        snprintf(trace, sizeof(trace), "%s", job->row.trace);
    else
        tn_traceparent_new(trace);
    snprintf(dedupe, sizeof(dedupe), "out:%s", job->id);
    snprintf(deliveries, sizeof(deliveries), "%d", job->row.attempts);
    tn_time_rfc3339(tn_now_ms(), at, sizeof(at));
#define F(k, v) (f[n++] = (k), f[n++] = (v))
    F(TN_F_TYPE, TN_TYPE_OUTBOUND_MESSAGE);
    F(TN_F_V, TN_V_OUTBOUND_MESSAGE);
    F(TN_F_TENANT, job->tenant);
    F(TN_F_TRACE, trace);
    F(TN_F_CHANNEL, job->channel);
    F(TN_F_PROVIDER, job->prov->name);
    F(TN_F_OUTBOUND, job->id);
    F(TN_F_DEDUPE, dedupe);
    F(TN_F_DATA, data);
    F(TN_F_DEAD_REASON, job->code);
    F(TN_F_DEAD_FROM_ID, src);
    F(TN_F_DEAD_DELIVERIES, deliveries);
    F(TN_F_DEAD_AT, at);
#undef F
    op->ctx = job->ctx;
    snprintf(op->tenant, sizeof(op->tenant), "%s", job->tenant);
    snprintf(op->member, sizeof(op->member), "%s", job->member);
    if (tn_redis_xadd(job->ctx->redis, TN_STREAM_OUT_DEAD, f, NULL, n, xadd_cb, op) != TN_OK) {
        tn_log_error(&job->log, "sender.dead_letter_failed", TN_KV_ERR(TN_EUNAVAIL));
        tn_free(op);
    }
    tn_free(data);
}
