/*
 * NAME
 *	agent_daemon - tern-agent's hooks into the daemon skeleton
 * SYNOPSIS
 *	#include "agent.h"
 * DESCRIPTION
 *	init opens the Postgres pool, the HTTP client and the tern:in consumer
 *	and starts the scan timer; drain stops intake and the scan; busy holds
 *	the drain while intakes, turns or publishes are in flight; fini closes
 *	everything. The pool is freed only once its last job has reported
 *	(tn_pg_free refuses earlier), from agent_maybe_free_pg.
 *
 *	The scan (every TN_AGENT_SCAN_MS) is the safety net of the design:
 *	it claims conversations with unprocessed input whose lease is free or
 *	expired (a replica died mid-turn, or a wake was lost), renews the
 *	leases of this process's running turns, and re-publishes replies that
 *	were committed but never confirmed on tern:out.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	agent.start, agent.no_database, agent.scan_failed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <tn/tn_consumer.h>
#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>

#include "agent.h"

#define SCAN_LIMIT 200

/* counter - register one counter */
static struct tn_metric *counter(struct tn_rt *rt, const char *name, const char *help)
{
    return tn_metrics_get(rt->metrics, TN_METRIC_COUNTER, name, help, NULL);
}

/* metrics_init - the agent's metrics */
static void metrics_init(struct agent_ctx *ctx, struct tn_rt *rt)
{
    ctx->m_intake = counter(rt, "tern_agent_inbound_total", "Inbound messages stored");
    ctx->m_dup = counter(rt, "tern_agent_inbound_duplicates_total", "Redelivered inbound messages");
    ctx->m_turns = counter(rt, "tern_agent_turns_total", "Turns that reached the LLM");
    ctx->m_replies = counter(rt, "tern_agent_replies_total", "Replies committed");
    ctx->m_holding = counter(rt, "tern_agent_holding_total", "Holding messages after LLM failure");
    ctx->m_silent = counter(rt, "tern_agent_silent_total", "Turns without reply (opt-out, human)");
    ctx->m_llm_fail = counter(rt, "tern_agent_llm_failures_total", "Failed LLM requests");
    ctx->m_lost = counter(rt, "tern_agent_leases_lost_total", "Turns abandoned: lease lost");
    ctx->m_republish = counter(rt, "tern_agent_republished_total", "Replies re-sent to tern:out");
    ctx->m_tools = counter(rt, "tern_agent_booking_tools_total", "Booking tool calls");
    ctx->m_notices = counter(rt, "tern_agent_booking_notices_total",
                             "Booking confirmations and reminders queued");
    ctx->m_voice = counter(rt, "tern_agent_voice_transcribed_total", "Voice notes transcribed");
    ctx->m_voice_fail =
        counter(rt, "tern_agent_voice_failures_total", "Voice notes that could not be transcribed");
    ctx->m_inflight = tn_metrics_get(rt->metrics, TN_METRIC_GAUGE, "tern_agent_turns_inflight",
                                     "Turns running in this process", NULL);
}

/* raise_nofile - many turns in flight means many sockets: lift the soft
 * descriptor limit to the hard one */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* owner_init - the lease owner prefix: host, pid and randomness */
static void owner_init(struct agent_ctx *ctx)
{
    char host[48] = "host";
    unsigned char rnd[4];
    char *hex;

    (void)gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    tn_random_bytes(rnd, sizeof(rnd));
    hex = tn_hex_encode(rnd, sizeof(rnd));
    snprintf(ctx->owner, sizeof(ctx->owner), "%.40s-%ld-%s", host, (long)getpid(), hex);
    tn_free(hex);
}

static void scan_cb(uv_timer_t *t);

/* keyring_init - TN_MASTER_KEY opens channel secrets for voice notes; a
 * malformed ring is a configuration error, a missing one only disables the
 * media fetch */
static enum tn_err keyring_init(struct agent_ctx *ctx)
{
    if (ctx->cfg.master_key == NULL || ctx->cfg.master_key[0] == '\0') {
        tn_log_warn(NULL, "agent.no_master_key",
                    TN_KV_STR("effect", "voice notes are not transcribed"));
        return TN_OK;
    }
    if (tn_keyring_parse(ctx->cfg.master_key, &ctx->keys) != TN_OK) {
        tn_log_error(NULL, "config.invalid", TN_KV_STR("var", TN_ENV_MASTER_KEY));
        return TN_EINVAL;
    }
    return TN_OK;
}

/* agent_init - open everything; without a database the agent stays idle */
enum tn_err agent_init(struct tn_rt *rt, void *arg)
{
    struct agent_ctx *ctx = arg;
    struct tn_consumer_opts co = {
        .stream = TN_STREAM_IN,
        .group = TN_GROUP_AGENT,
        .name = "agent",
        .count = (uint32_t)ctx->cfg.batch,
        .visibility_ms = (uint32_t)ctx->cfg.visibility_ms,
    };

    ctx->rt = rt;
    ctx->loop = rt->loop;
    raise_nofile();
    owner_init(ctx);
    metrics_init(ctx, rt);
    ctx->noptout = agent_keyword_parse(ctx->cfg.optout_words, &ctx->optout);
    ctx->noptin = agent_keyword_parse(ctx->cfg.optin_words, &ctx->optin);
    ctx->tools = agent_tools_definitions();
    if (keyring_init(ctx) != TN_OK)
        return TN_EINVAL;
    ctx->nbuckets = 4096;
    ctx->buckets = tn_xcalloc(ctx->nbuckets, sizeof(*ctx->buckets));
    if (rt->base->pg_dsn == NULL || rt->base->pg_dsn[0] == '\0') {
        tn_log_warn(NULL, "agent.no_database", TN_KV_STR("hint", "set TN_PG_DSN"));
        return TN_OK;
    }
    ctx->pg = tn_pg_new(rt->loop, rt->base->pg_dsn, (int)ctx->cfg.pg_pool);
    for (size_t i = 0; i < AGENT_HTTP_SHARDS; i++)
        ctx->http[i] =
            tn_http_new(rt->loop, &(struct tn_http_opts){
                                      .user_agent = "tern-agent/1",
                                      .default_timeout_ms = (uint32_t)ctx->cfg.llm_timeout_ms,
                                      .recv_buffer = AGENT_HTTP_BUFFER,
                                  });
    agent_intake_batch_init(ctx);
    ctx->consumer = tn_consumer_new(rt->loop, rt->base->redis_url, &co, agent_intake_on_entry, ctx);
    if (ctx->consumer == NULL)
        return TN_EINVAL;
    uv_timer_init(rt->loop, &ctx->scan_timer);
    ctx->scan_timer.data = ctx;
    ctx->scan_inited = true;
    uv_timer_start(&ctx->scan_timer, scan_cb, (uint64_t)ctx->cfg.scan_ms,
                   (uint64_t)ctx->cfg.scan_ms);
    tn_log_info(NULL, "agent.start", TN_KV_STR("owner", ctx->owner),
                TN_KV_BOOL("llm_key", ctx->cfg.llm_api_key[0] != '\0'));
    return TN_OK;
}

/* agent_drain - no new entries, no new scans; running turns finish */
void agent_drain(struct tn_rt *rt, void *arg)
{
    struct agent_ctx *ctx = arg;

    (void)rt;
    ctx->draining = true;
    if (ctx->consumer != NULL)
        tn_consumer_stop(ctx->consumer);
    if (ctx->scan_inited)
        uv_timer_stop(&ctx->scan_timer);
}

/* agent_busy - anything still in flight? */
bool agent_busy(void *arg)
{
    struct agent_ctx *ctx = arg;

    return ctx->nturns > 0 || ctx->intakes > 0 || ctx->publishes > 0 || ctx->scanning ||
           ctx->marking || (ctx->consumer != NULL && tn_consumer_inflight(ctx->consumer) > 0);
}

/* agent_ready - the consumer group exists and its connection is up */
bool agent_ready(void *arg, const char **why)
{
    struct agent_ctx *ctx = arg;

    if (ctx->consumer != NULL && !tn_consumer_ready(ctx->consumer)) {
        *why = "tern:in consumer not ready";
        return false;
    }
    return true;
}

/* agent_maybe_free_pg - once closing and no job is left, free the pool */
void agent_maybe_free_pg(struct agent_ctx *ctx)
{
    if (ctx->closing && !ctx->in_cancel && ctx->pg != NULL && tn_pg_busy(ctx->pg) == 0) {
        tn_pg_free(ctx->pg);
        ctx->pg = NULL;
    }
}

/* agent_fini - close every handle; late job callbacks see ctx->closing */
void agent_fini(struct tn_rt *rt, void *arg)
{
    struct agent_ctx *ctx = arg;

    (void)rt;
    ctx->closing = true;
    ctx->draining = true;
    agent_intake_batch_close(ctx); /* before the consumer: the entries go back to it */
    tn_consumer_free(ctx->consumer);
    ctx->consumer = NULL;
    if (ctx->scan_inited)
        uv_close((uv_handle_t *)&ctx->scan_timer, NULL);
    agent_turn_close_all(ctx);
    for (size_t i = 0; i < AGENT_HTTP_SHARDS; i++) {
        tn_http_free(ctx->http[i]); /* turns in LLM calls end with TN_ECANCELED */
        ctx->http[i] = NULL;
    }
    ctx->in_cancel = true; /* jobs completed inside tn_pg_cancel must not free the pool */
    if (ctx->pg != NULL)
        tn_pg_cancel(ctx->pg);
    ctx->in_cancel = false;
    agent_maybe_free_pg(ctx);
    for (size_t i = 0; i < ctx->noptout; i++)
        tn_free(ctx->optout[i]);
    for (size_t i = 0; i < ctx->noptin; i++)
        tn_free(ctx->optin[i]);
    tn_free(ctx->optout);
    tn_free(ctx->optin);
    json_decref(ctx->tools);
    ctx->tools = NULL;
    tn_free(ctx->tools_text);
    ctx->tools_text = NULL;
    tn_keyring_free(ctx->keys);
    ctx->keys = NULL;
    tn_free(ctx->marks); /* not written: the scan republishes them, harmlessly */
    ctx->marks = NULL;
    ctx->nmarks = ctx->capmarks = 0;
}

/* agent_http - the next HTTP client, round robin (NULL: closing). libcurl
 * 7.88 walks every connection of a client when a transfer ends and when one
 * starts (curl_multi_remove_handle, the reuse search): with 10,000 LLM
 * requests open on one client that made each request cost O(requests). */
struct tn_http *agent_http(struct agent_ctx *ctx)
{
    ctx->http_next = (ctx->http_next + 1) % AGENT_HTTP_SHARDS;
    return ctx->http[ctx->http_next];
}

/* agent_pg_submit - submit, or fail the same way tn_pg would when closing */
enum tn_err agent_pg_submit(struct agent_ctx *ctx, enum tn_err (*work)(struct tn_pgconn *, void *),
                            void (*done)(enum tn_err, void *), void *arg)
{
    if (ctx->pg == NULL || ctx->closing)
        return TN_ECANCELED;
    return tn_pg_submit(ctx->pg, work, done, arg);
}

/* repub_done - a republish row was loaded: publish it */
static void repub_done(enum tn_err err, void *arg)
{
    struct agent_repub *r = arg;
    struct agent_ctx *ctx = r->ctx;

    ctx->publishes--;
    if (err == TN_OK && r->out != NULL && !ctx->closing) {
        tn_metric_inc(ctx->m_republish);
        agent_publish(ctx, r->out);
        r->out = NULL;
    }
    agent_out_free(r->out);
    tn_free(r);
    agent_maybe_free_pg(ctx);
}

/* scan_done - wake due conversations, republish forgotten replies, finish
 * the notices of bookings whose change committed without them */
static void scan_done(enum tn_err err, void *arg)
{
    struct agent_scan *s = arg;
    struct agent_ctx *ctx = s->ctx;

    ctx->scanning = false;
    if (err != TN_OK && err != TN_ECANCELED)
        tn_log_warn(NULL, "agent.scan_failed", TN_KV_ERR(err));
    for (size_t i = 0; err == TN_OK && !ctx->draining && i < s->ndue; i++)
        agent_turn_wake(ctx, s->due[i][0], s->due[i][1], NULL);
    for (size_t i = 0; err == TN_OK && !ctx->draining && i < s->nunpub; i++) {
        struct agent_repub *r = tn_xcalloc(1, sizeof(*r));

        r->ctx = ctx;
        memcpy(r->tenant, s->unpub[i][0], AGENT_UUID_LEN);
        memcpy(r->id, s->unpub[i][1], AGENT_UUID_LEN);
        if (agent_pg_submit(ctx, agent_store_repub_work, repub_done, r) != TN_OK)
            tn_free(r);
        else
            ctx->publishes++;
    }
    for (size_t i = 0; err == TN_OK && !ctx->draining && i < s->nunnot; i++)
        agent_booking_renotify(ctx, s->unnot[i][0], s->unnot[i][1]);
    tn_free(s->due);
    tn_free(s->unpub);
    tn_free(s->unnot);
    tn_free(s);
    agent_maybe_free_pg(ctx);
}

/* scan_cb - periodic: renew our leases, look for orphaned work */
static void scan_cb(uv_timer_t *t)
{
    struct agent_ctx *ctx = t->data;
    struct agent_scan *s;

    agent_turn_renew_all(ctx);
    if (ctx->scanning || ctx->draining)
        return;
    s = tn_xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    s->lim = SCAN_LIMIT;
    s->republish_ms = ctx->cfg.republish_ms;
    if (agent_pg_submit(ctx, agent_store_scan_work, scan_done, s) != TN_OK) {
        tn_free(s);
        return;
    }
    ctx->scanning = true;
}

/* agent_heartbeat - the tern:in consumer's figures on /metrics. Runs on: loop. */
void agent_heartbeat(struct tn_rt *rt, void *arg)
{
    struct agent_ctx *ctx = arg;

    if (ctx->consumer != NULL)
        tn_consumer_export(ctx->consumer, rt->redis, rt->metrics);
}
