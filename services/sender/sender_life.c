/*
 * NAME
 *	sender_life - tern-sender's hooks for the daemon skeleton
 * SYNOPSIS
 *	.init = sender_init, .drain = sender_drain, .busy = sender_busy,
 *	.fini = sender_fini, .ready = sender_ready
 * DESCRIPTION
 *	init opens what the sender holds: the key ring (channel secrets), the
 *	Postgres pool, the HTTP client, both stream consumers (tern:out and
 *	tern:status, group "sender") and the schedule's poll timer. drain
 *	stops intake (no reads, no claims); in-flight jobs and handlers finish
 *	(busy). fini releases everything.
 * RUNS ON
 *	loop.
 */
#include <string.h>

#include <tn/tn_consumer.h>
#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>

#include "sender.h"

/* metrics - register the sender's counters */
static void metrics(struct sender_ctx *ctx, struct tn_metrics *m)
{
    ctx->m.sent = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sender_sent_total",
                                 "messages accepted by a provider", NULL);
    ctx->m.failed = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sender_failed_total",
                                   "messages failed for good (provider or consent)", NULL);
    ctx->m.retried = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sender_retries_total",
                                    "attempts rescheduled after a retryable failure", NULL);
    ctx->m.dead = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sender_dead_total",
                                 "messages dead-lettered", NULL);
    ctx->m.rate_limited = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sender_rate_limited_total",
                                         "sends held back by a token bucket", NULL);
    ctx->m.statuses = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sender_statuses_total",
                                     "delivery statuses applied", NULL);
    ctx->m.send_seconds = tn_metrics_get(m, TN_METRIC_HISTOGRAM, "tern_sender_send_seconds",
                                         "provider call latency", NULL);
}

/* out_count - tern:out's read size: 256, or one entry a job slot */
static uint32_t out_count(const struct sender_ctx *ctx)
{
    return ctx->cfg.concurrency > 256 ? (uint32_t)ctx->cfg.concurrency : 256;
}

/* http_start - one HTTP client per SENDER_HTTP_SHARD_CONNS job slots (at
 * most SENDER_HTTP_SHARDS), used round robin (sender_http). libcurl 7.88
 * walks every connection of a client when a transfer starts (the reuse
 * search) and when one ends: with a thousand connections on one client,
 * that walk was a quarter of tern-sender's CPU. Each keeps one idle
 * connection per job slot it serves, so bursts reuse them (keep-alive). */
static enum tn_err http_start(struct sender_ctx *ctx)
{
    int64_t per = SENDER_HTTP_SHARD_CONNS;
    int64_t n = (ctx->cfg.concurrency + per - 1) / per;

    n = n < 1 ? 1 : n > SENDER_HTTP_SHARDS ? SENDER_HTTP_SHARDS : n;
    for (unsigned i = 0; i < (unsigned)n; i++) {
        ctx->http[i] = tn_http_new(
            ctx->loop, &(struct tn_http_opts){
                           .user_agent = "tern-sender/1.0.0",
                           .default_timeout_ms = (uint32_t)ctx->cfg.http_timeout_ms,
                           .max_idle_conns = (uint32_t)((ctx->cfg.concurrency + n - 1) / n),
                           .recv_buffer = SENDER_HTTP_BUFFER,
                       });
        if (ctx->http[i] == NULL)
            return TN_EUNAVAIL;
        ctx->nhttp = i + 1;
    }
    return TN_OK;
}

struct tn_http *sender_http(struct sender_ctx *ctx)
{
    if (ctx->nhttp == 0)
        return NULL;
    ctx->http_next = (ctx->http_next + 1) % ctx->nhttp;
    return ctx->http[ctx->http_next];
}

/* consumer - one of the two stream consumers */
static struct tn_consumer *consumer(struct sender_ctx *ctx, struct tn_rt *rt, const char *stream,
                                    tn_consumer_entry_fn *fn)
{
    struct tn_consumer_opts o = {
        .stream = stream,
        .group = TN_GROUP_SENDER,
        .name = strcmp(stream, TN_STREAM_OUT) == 0 ? "tern-sender-out" : "tern-sender-status",
        /* tern:out: a read's entries become one intake batch (sender_batch.c),
         * and entries waiting for a job slot stay in the handler: at least
         * one entry a slot, or reads, not slots, set the pace */
        .count = strcmp(stream, TN_STREAM_OUT) == 0 ? out_count(ctx) : 64,
        .visibility_ms = (uint32_t)ctx->cfg.visibility_ms,
        .retry_base_ms = 500,
        .retry_cap_ms = 30000,
    };

    return tn_consumer_new(rt->loop, rt->base->redis_url, &o, fn, ctx);
}

/* sender_init - open everything and start */
enum tn_err sender_init(struct tn_rt *rt, void *arg)
{
    struct sender_ctx *ctx = arg;

    ctx->loop = rt->loop;
    ctx->redis = rt->redis;
    if (rt->base->pg_dsn == NULL || rt->base->pg_dsn[0] == '\0') {
        /* like tern-agent: a skeleton that reports health and sends nothing */
        tn_log_warn(NULL, "sender.no_database", TN_KV_STR("hint", "set TN_PG_DSN"));
        return TN_OK;
    }
    if (ctx->cfg.master_key[0] != '\0' &&
        tn_keyring_parse(ctx->cfg.master_key, &ctx->keys) != TN_OK) {
        tn_log_error(NULL, "config.invalid", TN_KV_STR("var", TN_ENV_MASTER_KEY));
        return TN_EINVAL;
    }
    if (tn_http_global_init() != TN_OK)
        return TN_EUNAVAIL;
    ctx->curl_inited = true;
    metrics(ctx, rt->metrics);
    ctx->rate = sender_rate_new();
    ctx->pg = tn_pg_new(rt->loop, rt->base->pg_dsn, (int)ctx->cfg.pg_pool);
    sender_batch_start(ctx);
    if (http_start(ctx) != TN_OK)
        return TN_EINVAL;
    ctx->status = consumer(ctx, rt, TN_STREAM_STATUS, sender_status_entry);
    if (ctx->status == NULL)
        return TN_EINVAL;
    if (ctx->keys == NULL || ctx->cfg.suppression_key[0] == '\0') {
        /* Without the master key no credential opens; without the
         * suppression key an erased person's address cannot be recognised:
         * send nothing rather than fail every message or contact someone who
         * asked to be forgotten. tern:out waits (its lag shows it) until a
         * restart with both. Statuses are still applied. */
        tn_log_error(NULL, "sender.not_sending",
                     TN_KV_STR("effect", "tern:out is not consumed until TN_MASTER_KEY and "
                                         "TN_SUPPRESSION_KEY are set"));
        return TN_OK;
    }
    ctx->out = consumer(ctx, rt, TN_STREAM_OUT, sender_out_entry);
    if (ctx->out == NULL)
        return TN_EINVAL;
    sender_sched_start(ctx);
    return TN_OK;
}

/* sender_drain - stop intake */
void sender_drain(struct tn_rt *rt, void *arg)
{
    struct sender_ctx *ctx = arg;

    (void)rt;
    ctx->draining = true;
    sender_sched_stop(ctx);
    if (ctx->out != NULL)
        tn_consumer_stop(ctx->out);
    if (ctx->status != NULL)
        tn_consumer_stop(ctx->status);
}

/* sender_busy - jobs, handlers or verdicts still in flight */
bool sender_busy(void *arg)
{
    struct sender_ctx *ctx = arg;

    if (ctx->status == NULL)
        return false;
    return ctx->jobs > 0 || ctx->handlers > 0 ||
           (ctx->out != NULL && tn_consumer_inflight(ctx->out) > 0) ||
           tn_consumer_inflight(ctx->status) > 0;
}

/* sender_ready - both consumers up */
bool sender_ready(void *arg, const char **why)
{
    struct sender_ctx *ctx = arg;

    if (ctx->status == NULL) /* no database: idle */
        return true;
    if ((ctx->out != NULL && !tn_consumer_ready(ctx->out)) || !tn_consumer_ready(ctx->status)) {
        *why = "stream consumers not ready";
        return false;
    }
    return true;
}

/* sender_fini - release everything */
void sender_fini(struct tn_rt *rt, void *arg)
{
    struct sender_ctx *ctx = arg;

    (void)rt;
    sender_sched_stop(ctx);
    if (ctx->pg != NULL)
        tn_pg_cancel(ctx->pg); /* first: cancelled sends then record nothing */
    for (unsigned i = 0; i < ctx->nhttp; i++)
        tn_http_free(ctx->http[i]); /* in-flight sends end with TN_ECANCELED */
    ctx->nhttp = 0;
    sender_smtp_stop(ctx);  /* SMTP sends still waiting for a thread end unsent */
    sender_batch_stop(ctx); /* what the queues still hold ends (entries: RETRY) */
    tn_consumer_free(ctx->out);
    tn_consumer_free(ctx->status);
    if (ctx->pg != NULL) {
        if (tn_pg_free(ctx->pg) != TN_OK)
            tn_log_warn(NULL, "sender.pg_busy_at_exit");
    }
    sender_gmail_free_all(ctx);
    sender_rate_free(ctx->rate);
    tn_keyring_free(ctx->keys);
    if (ctx->curl_inited)
        tn_http_global_cleanup();
}

/* sender_heartbeat - both consumers' figures on /metrics. Runs on: loop. */
void sender_heartbeat(struct tn_rt *rt, void *arg)
{
    struct sender_ctx *ctx = arg;

    if (ctx->out != NULL)
        tn_consumer_export(ctx->out, rt->redis, rt->metrics);
    if (ctx->status != NULL)
        tn_consumer_export(ctx->status, rt->redis, rt->metrics);
}
