/*
 * NAME
 *	calsync_life - tern-calsync's hooks for the daemon skeleton
 * SYNOPSIS
 *	.init = calsync_init, .drain = calsync_drain, .busy = calsync_busy,
 *	.fini = calsync_fini, .ready = calsync_ready
 * DESCRIPTION
 *	init opens the key ring (calendar credentials), the Postgres pool,
 *	the HTTP client, the tern:cal consumer (group "calsync") and the scan
 *	timer, works out the Google push address (none: no channels), and
 *	loads libical's list of time zones (calsync_zone.c).
 *	drain stops intake and scans; jobs in flight finish (busy).
 *	fini releases everything.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	calsync.no_database, calsync.no_master_key, calsync.no_zone_data,
 *	config.invalid.
 */
#include <string.h>

#include <uv.h>

#include <tn/tn_consumer.h>
#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>

#include "calsync.h"

/* on_scan - timer: look for work */
static void on_scan(uv_timer_t *t)
{
    calsync_store_scan(t->data);
}

/* timer_closed - free the scan timer */
static void timer_closed(uv_handle_t *h)
{
    tn_free(h);
}

/* calsync_init - open everything and start */
enum tn_err calsync_init(struct tn_rt *rt, void *arg)
{
    struct calsync_ctx *ctx = arg;

    ctx->metrics = rt->metrics;
    struct tn_consumer_opts o = {
        .stream = TN_STREAM_CAL,
        .group = TN_GROUP_CALSYNC,
        .name = "tern-calsync",
        .count = 32,
        .visibility_ms = (uint32_t)ctx->cfg.visibility_ms,
        .retry_base_ms = 1000,
        .retry_cap_ms = 30000,
    };

    ctx->loop = rt->loop;
    ctx->redis = rt->redis;
    ctx->push_address = calsync_gwatch_address(&ctx->cfg);
    tn_log_info(NULL, "calsync.push_channels", TN_KV_BOOL("on", ctx->push_address != NULL));
    calsync_zone_init(); /* libical's zone list, read once now rather than on a job */
    if (rt->base->pg_dsn == NULL || rt->base->pg_dsn[0] == '\0') {
        tn_log_warn(NULL, "calsync.no_database", TN_KV_STR("hint", "set TN_PG_DSN"));
        return TN_OK;
    }
    if (ctx->cfg.master_key[0] != '\0' &&
        tn_keyring_parse(ctx->cfg.master_key, &ctx->keys) != TN_OK) {
        tn_log_error(NULL, "config.invalid", TN_KV_STR("var", TN_ENV_MASTER_KEY));
        return TN_EINVAL;
    }
    if (ctx->keys == NULL) /* calendars with credentials fail; others still work */
        tn_log_warn(NULL, "calsync.no_master_key");
    if (tn_http_global_init() != TN_OK)
        return TN_EUNAVAIL;
    ctx->curl_inited = true;
    ctx->pg = tn_pg_new(rt->loop, rt->base->pg_dsn, (int)ctx->cfg.pg_pool);
    ctx->http = tn_http_new(rt->loop, &(struct tn_http_opts){
                                          .user_agent = "tern-calsync/1",
                                          .default_timeout_ms = (uint32_t)ctx->cfg.http_timeout_ms,
                                      });
    ctx->cal = tn_consumer_new(rt->loop, rt->base->redis_url, &o, calsync_entry, ctx);
    if (ctx->cal == NULL)
        return TN_EINVAL;
    ctx->scan_timer = tn_xcalloc(1, sizeof(*ctx->scan_timer));
    uv_timer_init(rt->loop, ctx->scan_timer);
    ctx->scan_timer->data = ctx;
    uv_timer_start(ctx->scan_timer, on_scan, (uint64_t)ctx->cfg.scan_ms,
                   (uint64_t)ctx->cfg.scan_ms);
    return TN_OK;
}

/* stop_timer - stop and close the scan timer (once) */
static void stop_timer(struct calsync_ctx *ctx)
{
    if (ctx->scan_timer == NULL)
        return;
    uv_timer_stop(ctx->scan_timer);
    uv_close((uv_handle_t *)ctx->scan_timer, timer_closed);
    ctx->scan_timer = NULL;
}

/* calsync_drain - stop intake */
void calsync_drain(struct tn_rt *rt, void *arg)
{
    struct calsync_ctx *ctx = arg;

    (void)rt;
    ctx->draining = true;
    stop_timer(ctx);
    if (ctx->cal != NULL)
        tn_consumer_stop(ctx->cal);
}

/* calsync_busy - jobs (REPORT answers on the threadpool among them), a
 * scan or verdicts in flight */
bool calsync_busy(void *arg)
{
    struct calsync_ctx *ctx = arg;

    return ctx->jobs > 0 || ctx->parsing > 0 || ctx->scanning ||
           (ctx->cal != NULL && tn_consumer_inflight(ctx->cal) > 0);
}

/* calsync_ready - the consumer is up */
bool calsync_ready(void *arg, const char **why)
{
    struct calsync_ctx *ctx = arg;

    if (ctx->cal != NULL && !tn_consumer_ready(ctx->cal)) {
        *why = "stream consumer not ready";
        return false;
    }
    return true;
}

/* calsync_fini - release everything. A REPORT answer still on the
 * threadpool comes back after this (uv_run waits for it) and finds
 * ctx->stopped: its job is only finished. */
void calsync_fini(struct tn_rt *rt, void *arg)
{
    struct calsync_ctx *ctx = arg;

    (void)rt;
    ctx->stopped = true;
    stop_timer(ctx);
    tn_consumer_free(ctx->cal);
    if (ctx->pg != NULL)
        tn_pg_cancel(ctx->pg);
    tn_http_free(ctx->http); /* in-flight jobs end with TN_ECANCELED */
    if (ctx->pg != NULL && tn_pg_free(ctx->pg) != TN_OK)
        tn_log_warn(NULL, "calsync.pg_busy_at_exit");
    calsync_gtoken_free_all(ctx);
    tn_free(ctx->push_address);
    ctx->push_address = NULL;
    tn_keyring_free(ctx->keys);
    if (ctx->curl_inited)
        tn_http_global_cleanup();
}

/* calsync_heartbeat - the tern:cal consumer's figures on /metrics. Runs on: loop. */
void calsync_heartbeat(struct tn_rt *rt, void *arg)
{
    struct calsync_ctx *ctx = arg;

    if (ctx->cal != NULL)
        tn_consumer_export(ctx->cal, rt->redis, rt->metrics);
}
