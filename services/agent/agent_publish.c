/*
 * NAME
 *	agent_publish - hand a committed reply to tern-sender
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_publish(ctx, out);
 * DESCRIPTION
 *	XADDs one outbound.message entry to tern:out (proto/streams/
 *	outbound.message.v1.json; dedupe "out:<outbound id>") and then records
 *	outbound_messages.enqueued_at. The row was committed before: if the
 *	process dies between the commit and the XADD, or the XADD fails, the
 *	row stays unenqueued and the scan publishes it again after
 *	TN_AGENT_REPUBLISH_MS. A repeat reaches the sender with the same
 *	outbound id, which is its idempotency key.
 * RUNS ON
 *	loop; the enqueued_at update on the threadpool.
 * DIAGNOSTICS
 *	agent.publish_failed.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
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
    unsigned char rnd[24];
    char *hex = NULL, *out = tn_xmalloc(56);

    tn_random_bytes(rnd, sizeof(rnd));
    hex = tn_hex_encode(rnd, sizeof(rnd));
    snprintf(out, 56, "00-%.32s-%.16s-01", hex, hex + 32);
    tn_free(hex);
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

/* mark_work - enqueued_at = now(). Runs on: threadpool. */
static enum tn_err mark_work(struct tn_pgconn *c, void *arg)
{
    struct pub *p = arg;
    enum tn_err err = tn_pgconn_begin_tenant(c, p->o->tenant);

    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c,
                          "UPDATE outbound_messages SET enqueued_at = now()"
                          " WHERE tenant_id = $1 AND id = $2 AND enqueued_at IS NULL",
                          2, (const char *const[]){p->o->tenant, p->o->id}, NULL);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    return err;
}

/* mark_done - done with this publish */
static void mark_done(enum tn_err err, void *arg)
{
    struct pub *p = arg;
    struct agent_ctx *ctx = p->ctx;

    (void)err; /* not marked: the scan publishes a harmless repeat later */
    pub_free(p);
    agent_maybe_free_pg(ctx);
}

/* xadd_cb - on success remember that it was enqueued */
static void xadd_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct pub *p = arg;

    (void)r;
    if (err == TN_OK && reply->type == REDIS_REPLY_ERROR)
        err = TN_EUNAVAIL;
    if (err != TN_OK) {
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = p->o->tenant}, "agent.publish_failed",
                    TN_KV_STR("outbound", p->o->id), TN_KV_ERR(err));
        pub_free(p);
        return;
    }
    if (agent_pg_submit(p->ctx, mark_work, mark_done, p) != TN_OK)
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
