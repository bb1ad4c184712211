/*
 * NAME
 *	agent_publish - hand a committed reply to tern-sender
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_publish(ctx, out);
 * DESCRIPTION
 *	XADDs one outbound.message entry to tern:out (proto/streams/
 *	outbound.message.v1.json; dedupe "out:<outbound id>") and then records
 *	outbound_messages.enqueued_at: marks are collected and written by one
 *	job at a time, each batch one tern_agent_enqueued() call per tenant,
 *	so that thousands of replies a second cost a few statements. The row was committed before:
 *if the process dies between the commit and the XADD, or the XADD fails, the row stays unenqueued
 *and the scan publishes it again after TN_AGENT_REPUBLISH_MS. A repeat reaches the sender with the
 *same outbound id, which is its idempotency key. RUNS ON loop; the enqueued_at update on the
 *threadpool. DIAGNOSTICS agent.publish_failed.
 *
 *	agent_publish_read XADDs an outbound.read entry (proto/streams/
 *	outbound.read.v1.json; dedupe "read:<wamid>") for a WhatsApp message
 *	intake just stored, when TN_AGENT_MARK_READ is on. It has no row and is
 *	not republished: a marker lost to a crash or a Redis failure is only
 *	logged (agent.read_publish_failed); the message is still answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_buf.h>
#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>

#include "agent.h"

struct pub {
    struct agent_ctx *ctx;
    struct agent_out *o;
};

/* agent_out_provider - a channel kind's provider and transport */
void agent_out_provider(const char *kind, const char **provider, const char **transport)
{
    *provider = TN_PROVIDER_WHATSAPP;
    *transport = "whatsapp";
    if (kind == NULL)
        return;
    if (strcmp(kind, "twilio_sms") == 0) {
        *provider = TN_PROVIDER_TWILIO;
        *transport = "sms";
    } else if (strcmp(kind, "twilio_whatsapp") == 0) {
        *provider = TN_PROVIDER_TWILIO;
    } else if (strcmp(kind, "telegram") == 0) {
        *provider = TN_PROVIDER_TELEGRAM;
        *transport = "telegram";
    }
}

/* new_trace - a fresh W3C traceparent for work no request started */
static char *new_trace(void)
{
    char *out = tn_xmalloc(TN_TRACEPARENT_SIZE);

    tn_traceparent_new(out);
    return out;
}

/* data_text - the outbound.message payload */
static char *data_text(const struct agent_out *o, const char *provider, const char *transport)
{
    json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "tenant", o->tenant,
                          "channel", o->channel, "provider", provider, "outbound_id", o->id,
                          "conversation_id", o->conversation, "contact_id", o->contact, "to", o->to,
                          "transport", transport, "kind", "text", "text", o->text, "reason",
                          o->reason, "created_at", o->created_at);
    char *s;

    if (d == NULL)
        return NULL; /* a NULL member: the row was incomplete */
    if (o->not_before != NULL)
        json_object_set_new(d, "not_before", json_string(o->not_before));
    s = agent_json_dump(d);
    json_decref(d);
    return s;
}

/* pub_free - release and count down */
static void pub_free(struct pub *p)
{
    p->ctx->publishes--;
    agent_out_free(p->o);
    tn_free(p);
}

/* A batch of enqueued marks, owned by its job. */
struct marks {
    struct agent_ctx *ctx;
    struct agent_mark *m;
    size_t n;
};

/* mark_cmp - order by tenant, so that each tenant is one call */
static int mark_cmp(const void *a, const void *b)
{
    return strcmp(((const struct agent_mark *)a)->tenant, ((const struct agent_mark *)b)->tenant);
}

/* mark_work - tern_agent_enqueued() once per tenant of the batch. Runs on:
 * threadpool. */
static enum tn_err mark_work(struct tn_pgconn *c, void *arg)
{
    struct marks *b = arg;
    enum tn_err err = TN_OK;
    struct tn_buf ids;

    qsort(b->m, b->n, sizeof(*b->m), mark_cmp);
    tn_buf_init(&ids, 0);
    for (size_t i = 0; i < b->n; i++) {
        tn_buf_printf(&ids, "%s%s", ids.len == 0 ? "{" : ",", b->m[i].id);
        if (i + 1 < b->n && strcmp(b->m[i + 1].tenant, b->m[i].tenant) == 0)
            continue;
        tn_buf_adds(&ids, "}");
        if (tn_pgconn_query(c, "SELECT tern_agent_enqueued($1, $2::uuid[])", 2,
                            (const char *const[]){b->m[i].tenant, ids.data}, NULL) != TN_OK)
            err = TN_EUNAVAIL; /* not marked: the scan publishes a harmless repeat later */
        tn_buf_reset(&ids);
    }
    tn_buf_free(&ids);
    return err;
}

static void mark_flush(struct agent_ctx *ctx);

/* mark_done - the batch is written; the next one may go */
static void mark_done(enum tn_err err, void *arg)
{
    struct marks *b = arg;
    struct agent_ctx *ctx = b->ctx;

    (void)err;
    ctx->marking = false;
    tn_free(b->m);
    tn_free(b);
    mark_flush(ctx);
    agent_maybe_free_pg(ctx);
}

/* mark_flush - one job at a time writes every mark collected meanwhile */
static void mark_flush(struct agent_ctx *ctx)
{
    struct marks *b;

    if (ctx->marking || ctx->nmarks == 0)
        return;
    b = tn_xcalloc(1, sizeof(*b));
    b->ctx = ctx;
    b->m = ctx->marks;
    b->n = ctx->nmarks;
    ctx->marks = NULL;
    ctx->nmarks = ctx->capmarks = 0;
    if (agent_pg_submit(ctx, mark_work, mark_done, b) != TN_OK) {
        tn_free(b->m);
        tn_free(b);
        return;
    }
    ctx->marking = true;
}

/* mark - remember that o was XADDed */
static void mark(struct agent_ctx *ctx, const struct agent_out *o)
{
    if (ctx->nmarks == ctx->capmarks) {
        ctx->capmarks = ctx->capmarks > 0 ? ctx->capmarks * 2 : 64;
        ctx->marks = tn_xrealloc(ctx->marks, ctx->capmarks * sizeof(*ctx->marks));
    }
    memcpy(ctx->marks[ctx->nmarks].tenant, o->tenant, AGENT_UUID_LEN);
    memcpy(ctx->marks[ctx->nmarks].id, o->id, AGENT_UUID_LEN);
    ctx->nmarks++;
    mark_flush(ctx);
}

/* xadd_cb - on success remember that it was enqueued */
static void xadd_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct pub *p = arg;
    struct agent_ctx *ctx = p->ctx;

    (void)r;
    if (err == TN_OK && reply->type == REDIS_REPLY_ERROR)
        err = TN_EUNAVAIL;
    if (err != TN_OK)
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = p->o->tenant}, "agent.publish_failed",
                    TN_KV_STR("outbound", p->o->id), TN_KV_ERR(err));
    else if (!ctx->closing)
        mark(ctx, p->o);
    pub_free(p);
}

/* agent_publish - XADD the entry */
void agent_publish(struct agent_ctx *ctx, struct agent_out *o)
{
    struct pub *p = tn_xcalloc(1, sizeof(*p));
    const char *provider, *transport;
    char dedupe[64], *data;
    enum tn_err err = TN_EUNAVAIL;

    p->ctx = ctx;
    p->o = o;
    ctx->publishes++;
    if (o->trace == NULL)
        o->trace = new_trace();
    agent_out_provider(o->channel_kind, &provider, &transport);
    snprintf(dedupe, sizeof(dedupe), "out:%s", o->id);
    data = data_text(o, provider, transport);
    if (data != NULL && ctx->rt->redis != NULL) {
        const char *f[] = {TN_F_TYPE,     TN_TYPE_OUTBOUND_MESSAGE,
                           TN_F_V,        TN_V_OUTBOUND_MESSAGE,
                           TN_F_TENANT,   o->tenant,
                           TN_F_TRACE,    o->trace,
                           TN_F_CHANNEL,  o->channel,
                           TN_F_PROVIDER, provider,
                           TN_F_OUTBOUND, o->id,
                           TN_F_DEDUPE,   dedupe,
                           TN_F_DATA,     data};

        err = tn_redis_xadd(ctx->rt->redis, TN_STREAM_OUT, f, NULL, sizeof(f) / sizeof(f[0]),
                            xadd_cb, p);
    }
    tn_free(data);
    if (err != TN_OK) {
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = o->tenant}, "agent.publish_failed",
                    TN_KV_STR("outbound", o->id), TN_KV_ERR(err));
        pub_free(p);
    }
}

/* A read marker on its way to tern:out. */
struct read_pub {
    struct agent_ctx *ctx;
    char tenant[AGENT_UUID_LEN + 1];
};

/* read_xadd_cb - log a lost marker; nothing retries it (best effort) */
static void read_xadd_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct read_pub *p = arg;

    (void)r;
    if (err == TN_OK && reply->type == REDIS_REPLY_ERROR)
        err = TN_EUNAVAIL;
    if (err != TN_OK)
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = p->tenant}, "agent.read_publish_failed",
                    TN_KV_ERR(err));
    p->ctx->publishes--;
    tn_free(p);
}

/* agent_publish_read - XADD the outbound.read entry */
void agent_publish_read(struct agent_ctx *ctx, const char *tenant, const char *channel,
                        const char *pmid, const char *trace)
{
    struct read_pub *p = tn_xcalloc(1, sizeof(*p));
    char *dedupe = NULL, *data = NULL, *fresh = NULL;
    json_t *d = json_pack("{s:s,s:s,s:s,s:s}", "tenant", tenant, "channel", channel, "provider",
                          TN_PROVIDER_WHATSAPP, "provider_message_id", pmid);
    enum tn_err err = TN_EUNAVAIL;
    size_t n;

    p->ctx = ctx;
    snprintf(p->tenant, sizeof(p->tenant), "%s", tenant);
    if (trace == NULL)
        trace = fresh = new_trace();
    n = strlen(pmid) + 6;
    dedupe = tn_xmalloc(n);
    snprintf(dedupe, n, "read:%s", pmid);
    data = agent_json_dump(d);
    ctx->publishes++; /* counted from here: drain waits for the reply */
    if (d != NULL && ctx->rt->redis != NULL) {
        const char *f[] = {TN_F_TYPE,     TN_TYPE_OUTBOUND_READ,
                           TN_F_V,        TN_V_OUTBOUND_READ,
                           TN_F_TENANT,   tenant,
                           TN_F_TRACE,    trace,
                           TN_F_CHANNEL,  channel,
                           TN_F_PROVIDER, TN_PROVIDER_WHATSAPP,
                           TN_F_PMID,     pmid,
                           TN_F_DEDUPE,   dedupe,
                           TN_F_DATA,     data};

        err = tn_redis_xadd(ctx->rt->redis, TN_STREAM_OUT, f, NULL, sizeof(f) / sizeof(f[0]),
                            read_xadd_cb, p);
    }
    if (err != TN_OK) { /* read_xadd_cb will not run */
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = tenant}, "agent.read_publish_failed",
                    TN_KV_ERR(err));
        ctx->publishes--;
        tn_free(p);
    }
    json_decref(d);
    tn_free(data);
    tn_free(dedupe);
    tn_free(fresh);
}
