/*
 * NAME
 *	sweeper_daemon - tern-sweeper's hooks and its tern:privacy handler
 * SYNOPSIS
 *	.init = sweeper_init, .drain = sweeper_drain, .busy = sweeper_busy,
 *	.fini = sweeper_fini, .ready = sweeper_ready
 * DESCRIPTION
 *	init opens the Postgres pool (2 connections: a long sweep never holds
 *	up a privacy request), the HTTP client for revocations, the sweep
 *	timer and the tern:privacy consumer (group sweeper), the last only
 *	when TN_SUPPRESSION_KEY and TN_SWEEPER_EXPORT_DIR are set.
 *
 *	A privacy.request entry is checked (type, tenant and ids are UUIDs,
 *	a known kind) and becomes one job on the threadpool; its verdict is
 *	ACK when done (or done before: redelivery), RETRY when Postgres or
 *	Redis was unavailable, DEAD when it can never succeed (malformed, no
 *	such contact or account).
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	sweeper.request_done, sweeper.request_failed (ids only).
 */
#include <ctype.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include <tn/tn_consumer.h>
#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>
#include <tn/tn_http.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>

#include "sweeper.h"

static const struct {
    const char *name;
    enum sweeper_kind kind;
} kinds[] = {
    {"erase", SWEEPER_ERASE},           {"export", SWEEPER_EXPORT},
    {"restrict", SWEEPER_RESTRICT},     {"unrestrict", SWEEPER_UNRESTRICT},
    {"disconnect", SWEEPER_DISCONNECT},
};

/* copy_uuid - a UUID string from j into out (37 bytes); false if not one */
static bool copy_uuid(json_t *j, char out[37])
{
    const char *s = json_string_value(j);

    if (!tn_uuid_valid(s))
        return false;
    memcpy(out, s, 37);
    return true;
}

/* parse_kind - the kind named s into *k; false if unknown */
static bool parse_kind(const char *s, enum sweeper_kind *k)
{
    for (size_t i = 0; s != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i].name, s) == 0) {
            *k = kinds[i].kind;
            return true;
        }
    }
    return false;
}

/* parse_entry - fill job from e; returns a static reason, or NULL if good */
static const char *parse_entry(const struct tn_entry *e, struct sweeper_job *job)
{
    const char *type = tn_entry_field(e, TN_F_TYPE, NULL);
    const char *data = tn_entry_field(e, TN_F_DATA, NULL);
    const char *why = NULL;
    json_t *d = NULL;

    if (type == NULL || strcmp(type, TN_TYPE_PRIVACY_REQUEST) != 0)
        return "bad_type";
    d = data != NULL ? json_loads(data, 0, NULL) : NULL;
    if (!json_is_object(d) || !copy_uuid(json_object_get(d, "tenant"), job->tenant) ||
        !copy_uuid(json_object_get(d, "request_id"), job->request)) {
        why = "bad_request";
        goto out;
    }
    if (!parse_kind(json_string_value(json_object_get(d, "kind")), &job->kind)) {
        why = "unsupported_kind";
        goto out;
    }
    if (job->kind == SWEEPER_DISCONNECT) {
        json_t *ch = json_object_get(d, "channel_id"), *acct = json_object_get(d, "account_id");

        if ((ch != NULL) == (acct != NULL))
            why = "bad_target"; /* exactly one of them */
        else if (ch != NULL ? !copy_uuid(ch, job->channel) : !copy_uuid(acct, job->account))
            why = ch != NULL ? "bad_channel" : "bad_account";
        goto out;
    }
    if (!copy_uuid(json_object_get(json_object_get(d, "subject"), "contact_id"), job->contact))
        why = "bad_subject"; /* ternctl resolves addresses to contact ids */
out:
    json_decref(d);
    return why;
}

/* job_done - the verdict. Runs on: loop. */
static void job_done(enum tn_err err, void *arg)
{
    struct sweeper_job *job = arg;
    struct sweeper_ctx *ctx = job->ctx;
    struct tn_log_ctx lc = {
        .tenant_id = job->tenant, .entry_id = job->entry->id, .stream = TN_STREAM_PRIVACY};
    enum tn_disp disp = TN_DISP_ACK;

    ctx->jobs--;
    if (job->ntokens > 0)
        sweeper_revoke_start(ctx, job->tokens, job->ntokens);
    if (err == TN_OK && job->fail == NULL) {
        tn_log_info(&lc, "sweeper.request_done", TN_KV_STR("request", job->request),
                    TN_KV_STR("kind", kinds[job->kind].name), TN_KV_INT("rows", job->purged));
        tn_metric_inc(ctx->m.requests);
        tn_metric_add(job->kind == SWEEPER_EXPORT ? ctx->m.exported : ctx->m.erased,
                      (double)job->purged);
    } else {
        disp = job->fail != NULL ? TN_DISP_DEAD : TN_DISP_RETRY;
        tn_log_warn(&lc, "sweeper.request_failed", TN_KV_STR("request", job->request),
                    TN_KV_STR("kind", kinds[job->kind].name), TN_KV_ERR(err),
                    TN_KV_STR("reason", job->fail != NULL ? job->fail : "retry"));
        tn_metric_inc(ctx->m.failed);
    }
    tn_consumer_done(ctx->privacy, job->entry, disp, job->fail);
    for (size_t i = 0; i < job->ntokens; i++)
        sweeper_token_wipe(&job->tokens[i]);
    tn_free(job);
}

/* on_entry - one tern:privacy entry. Runs on: loop. */
static void on_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct sweeper_ctx *ctx = arg;
    struct sweeper_job *job = tn_xcalloc(1, sizeof(*job));
    struct tn_log_ctx lc = {.entry_id = e->id, .stream = TN_STREAM_PRIVACY};
    const char *why;

    job->ctx = ctx;
    job->entry = e;
    why = parse_entry(e, job);
    if (why != NULL) {
        tn_log_warn(&lc, "sweeper.request_invalid", TN_KV_STR("reason", why));
        tn_free(job);
        tn_consumer_done(c, e, TN_DISP_DEAD, why);
        return;
    }
    if (tn_pg_submit(ctx->pg, sweeper_request_work, job_done, job) != TN_OK) {
        tn_free(job);
        tn_consumer_done(c, e, TN_DISP_RETRY, "shutting_down");
        return;
    }
    ctx->jobs++;
}

/* metrics - register the sweeper's counters */
static void metrics(struct sweeper_ctx *ctx, struct tn_metrics *m)
{
    ctx->m.requests = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sweeper_requests_total",
                                     "privacy requests done", NULL);
    ctx->m.failed = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sweeper_request_failures_total",
                                   "privacy requests retried or dead-lettered", NULL);
    ctx->m.erased = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sweeper_erased_rows_total",
                                   "rows removed or changed by privacy requests", NULL);
    ctx->m.exported = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sweeper_exports_total",
                                     "export documents written", NULL);
    ctx->m.purged = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sweeper_purged_rows_total",
                                   "rows removed by retention and offboarding", NULL);
    ctx->m.trimmed = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sweeper_trimmed_entries_total",
                                    "stream entries trimmed", NULL);
    ctx->m.revoked = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_sweeper_revoked_total",
                                    "provider grants revoked", NULL);
}

/* on_timer - time for a sweep. Runs on: loop. */
static void on_timer(uv_timer_t *t)
{
    sweeper_sweep_start(t->data);
}

/* start_consumer - the tern:privacy consumer */
static enum tn_err start_consumer(struct sweeper_ctx *ctx, struct tn_rt *rt)
{
    struct tn_consumer_opts o = {
        .stream = TN_STREAM_PRIVACY,
        .group = TN_GROUP_SWEEPER,
        .name = "tern-sweeper-privacy",
        .count = 4,
        .visibility_ms = 120000, /* an erasure scans Redis: give it time */
        .retry_base_ms = 1000,
        .retry_cap_ms = 30000,
        .max_deliveries = 10,
    };

    ctx->privacy = tn_consumer_new(rt->loop, rt->base->redis_url, &o, on_entry, ctx);
    return ctx->privacy != NULL ? TN_OK : TN_EINVAL;
}

/* sweeper_init - open everything and start */
enum tn_err sweeper_init(struct tn_rt *rt, void *arg)
{
    struct sweeper_ctx *ctx = arg;

    ctx->loop = rt->loop;
    ctx->redis_url = rt->base->redis_url;
    if (rt->base->pg_dsn == NULL || rt->base->pg_dsn[0] == '\0') {
        tn_log_warn(NULL, "sweeper.no_database", TN_KV_STR("hint", "set TN_PG_DSN"));
        return TN_OK; /* a skeleton that reports health and does nothing */
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
    ctx->pg = tn_pg_new(rt->loop, rt->base->pg_dsn, 2);
    tn_pg_set_timeouts(ctx->pg, TN_PG_CONNECT_TIMEOUT_S, 60000);
    ctx->http = tn_http_new(rt->loop, &(struct tn_http_opts){.user_agent = "tern-sweeper/1",
                                                             .default_timeout_ms = 10000});
    ctx->timer = tn_xcalloc(1, sizeof(*ctx->timer));
    uv_timer_init(rt->loop, ctx->timer);
    ctx->timer->data = ctx;
    uv_timer_start(ctx->timer, on_timer, (uint64_t)ctx->cfg.interval_ms,
                   (uint64_t)ctx->cfg.interval_ms);
    if (ctx->cfg.suppression_key[0] == '\0' || ctx->cfg.export_dir[0] == '\0') {
        /* Like tern-sender without its key: leave the requests queued (the
         * lag shows them) rather than fail them; another replica or a
         * restart with the settings takes them. Sweeps still run. */
        tn_log_error(NULL, "sweeper.privacy_disabled",
                     TN_KV_STR("effect", "tern:privacy is not consumed until TN_SUPPRESSION_KEY"
                                         " and TN_SWEEPER_EXPORT_DIR are set"));
        return TN_OK;
    }
    return start_consumer(ctx, rt);
}

/* sweeper_drain - stop intake */
void sweeper_drain(struct tn_rt *rt, void *arg)
{
    struct sweeper_ctx *ctx = arg;

    (void)rt;
    ctx->draining = true;
    if (ctx->timer != NULL)
        uv_timer_stop(ctx->timer);
    if (ctx->privacy != NULL)
        tn_consumer_stop(ctx->privacy);
    sweeper_revoke_stop(ctx);
}

/* sweeper_busy - jobs, a sweep or verdicts still in flight */
bool sweeper_busy(void *arg)
{
    struct sweeper_ctx *ctx = arg;

    return ctx->jobs > 0 || ctx->sweeping || ctx->revokes > 0 ||
           (ctx->privacy != NULL && tn_consumer_inflight(ctx->privacy) > 0);
}

/* sweeper_ready - the consumer is up (or there is no database: idle) */
bool sweeper_ready(void *arg, const char **why)
{
    struct sweeper_ctx *ctx = arg;

    if (ctx->privacy != NULL && !tn_consumer_ready(ctx->privacy)) {
        *why = "tern:privacy consumer not ready";
        return false;
    }
    return true;
}

/* close_free - free a handle once libuv has closed it */
static void close_free(uv_handle_t *h)
{
    tn_free(h);
}

/* sweeper_fini - release everything */
void sweeper_fini(struct tn_rt *rt, void *arg)
{
    struct sweeper_ctx *ctx = arg;

    (void)rt;
    sweeper_revoke_stop(ctx);
    if (ctx->timer != NULL)
        uv_close((uv_handle_t *)ctx->timer, close_free);
    ctx->timer = NULL;
    tn_consumer_free(ctx->privacy);
    if (ctx->pg != NULL)
        tn_pg_cancel(ctx->pg);
    tn_http_free(ctx->http);
    if (ctx->pg != NULL && tn_pg_free(ctx->pg) != TN_OK)
        tn_log_warn(NULL, "sweeper.pg_busy_at_exit");
    tn_keyring_free(ctx->keys);
    if (ctx->curl_inited)
        tn_http_global_cleanup();
}

/* sweeper_heartbeat - the privacy consumer's figures on /metrics. Runs on: loop. */
void sweeper_heartbeat(struct tn_rt *rt, void *arg)
{
    struct sweeper_ctx *ctx = arg;

    if (ctx->privacy != NULL)
        tn_consumer_export(ctx->privacy, rt->redis, rt->metrics);
}
