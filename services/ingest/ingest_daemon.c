/*
 * NAME
 *	ingest_daemon - tern-ingest's hooks into the daemon skeleton
 * SYNOPSIS
 *	#include "ingest_srv.h"
 * DESCRIPTION
 *	init opens the master keyring, the enqueue connection to Redis, the
 *	routing cache and the webhook listener; drain stops accepting and
 *	refreshing; busy holds the drain while requests or a routing refresh
 *	are in flight; fini closes everything; ready wants the routes loaded
 *	and the enqueue connection up; the heartbeat exports the server's
 *	gauges and the deltas of its limit counters.
 *
 *	main.c keeps the environment table and hands these hooks to
 *	tn_daemon_main.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	config.invalid (TN_PG_DSN missing, TN_MASTER_KEY unreadable),
 *	ingest.no_master_key, ingest.listening.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>
#include <tn/tn_httpd.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_redis.h>

#include "ingest_srv.h"

/* public_url_of - TN_INGEST_PUBLIC_URL without a trailing '/', or
 * http://<listen> when unset. Returns: new. */
static char *public_url_of(const struct ingest_cfg *c)
{
    size_t n;
    char *u;

    if (c->public_url[0] == '\0') {
        n = strlen(c->listen) + 8;
        u = tn_xmalloc(n);
        snprintf(u, n, "http://%s", c->listen);
        return u;
    }
    u = tn_xstrdup(c->public_url);
    n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = '\0';
    return u;
}

/* ingest_init - keys, Redis, routing cache, listener. Runs on: loop. */
enum tn_err ingest_init(struct tn_rt *rt, void *arg)
{
    struct ingest_state *s = arg;
    const struct ingest_cfg *c = &s->cfg;

    if (rt->base->pg_dsn[0] == '\0') {
        tn_log_error(NULL, "config.invalid", TN_KV_STR("var", "TN_PG_DSN"),
                     TN_KV_STR("why", "required: the routing cache reads tern_routing()"));
        return TN_EINVAL;
    }
    if (c->master_key[0] != '\0' && tn_keyring_parse(c->master_key, &s->keys) != TN_OK) {
        tn_log_error(NULL, "config.invalid", TN_KV_STR("var", TN_ENV_MASTER_KEY));
        return TN_EINVAL;
    }
    if (s->keys == NULL)
        tn_log_warn(NULL, "ingest.no_master_key",
                    TN_KV_STR("effect", "channels with secrets refuse every webhook"));
    s->public_url = public_url_of(c);
    size_t n = strlen(s->public_url) + sizeof("/oauth/google/callback");
    s->redirect_uri = tn_xmalloc(n);
    snprintf(s->redirect_uri, n, "%s/oauth/google/callback", s->public_url);
    s->http_cfg = (struct ingest_http_cfg){
        .listen = c->listen,
        .public_url = s->public_url,
        .max_body = (size_t)c->max_body,
        .max_header = (size_t)c->max_header,
        .read_timeout_ms = (uint32_t)c->read_timeout_ms,
        .idle_timeout_ms = (uint32_t)c->idle_timeout_ms,
        .max_conns = (uint32_t)c->max_conns,
        .dedupe_s = c->dedupe_ms / 1000,
        .oauth =
            {
                .keys = s->keys,
                .client_id = c->google_client_id,
                .auth_url = c->google_auth_url,
                .redirect_uri = s->redirect_uri,
                .state_ttl_s = c->oauth_state_ttl_ms / 1000,
            },
    };
    s->redis =
        tn_redis_new(rt->loop, rt->base->redis_url,
                     &(struct tn_redis_opts){.name = "tern-ingest-enqueue",
                                             .command_timeout_ms = (uint32_t)c->redis_timeout_ms});
    if (s->redis == NULL)
        return TN_EINVAL;
    s->routes = ingest_routes_new(rt->loop, rt->base->pg_dsn, s->keys, c->refresh_ms);
    s->http = ingest_http_new(rt->loop, &s->http_cfg, s->routes, s->redis, rt->metrics);
    if (s->http == NULL)
        return TN_EINVAL;
    tn_log_info(NULL, "ingest.listening", TN_KV_STR("listen", c->listen));
    return TN_OK;
}

/* ingest_drain - stop accepting and refreshing. Runs on: loop. */
void ingest_drain(struct tn_rt *rt, void *arg)
{
    struct ingest_state *s = arg;

    (void)rt;
    if (s->http != NULL)
        ingest_http_drain(s->http);
    if (s->routes != NULL)
        ingest_routes_stop(s->routes);
}

/* ingest_busy - requests or a routing refresh still in flight. */
bool ingest_busy(void *arg)
{
    struct ingest_state *s = arg;

    return (s->http != NULL && ingest_http_busy(s->http)) ||
           (s->routes != NULL && ingest_routes_busy(s->routes));
}

/* ingest_fini - close everything. Runs on: loop. */
void ingest_fini(struct tn_rt *rt, void *arg)
{
    struct ingest_state *s = arg;

    (void)rt;
    ingest_http_free(s->http);
    if (s->routes != NULL) {
        ingest_routes_stop(s->routes);
        ingest_routes_free(s->routes);
    }
    tn_redis_close(s->redis);
    tn_keyring_free(s->keys);
    tn_free(s->public_url);
    tn_free(s->redirect_uri);
}

/* ingest_ready - routes loaded and the enqueue connection up. */
bool ingest_ready(void *arg, const char **why)
{
    struct ingest_state *s = arg;

    if (s->routes == NULL || !ingest_routes_loaded(s->routes)) {
        *why = "routing cache not loaded";
        return false;
    }
    if (!tn_redis_connected(s->redis)) {
        *why = "enqueue connection down";
        return false;
    }
    return true;
}

/* add_delta - a tn_httpd counter into a metrics counter */
static void add_delta(struct tn_rt *rt, const char *labels, uint64_t now, uint64_t last)
{
    tn_metric_add(tn_metrics_get(rt->metrics, TN_METRIC_COUNTER, "tern_ingest_limit_total",
                                 "Requests refused by a size or time limit", labels),
                  (double)(now - last));
}

/* ingest_heartbeat - export the server's gauges. Runs on: loop. */
void ingest_heartbeat(struct tn_rt *rt, void *arg)
{
    struct ingest_state *s = arg;
    struct tn_httpd_stats st;

    if (s->http == NULL)
        return;
    ingest_http_stats(s->http, &st);
    tn_metric_set(tn_metrics_get(rt->metrics, TN_METRIC_GAUGE, "tern_ingest_connections",
                                 "Open webhook connections", NULL),
                  (double)st.conns_open);
    tn_metric_set(tn_metrics_get(rt->metrics, TN_METRIC_GAUGE, "tern_ingest_channels",
                                 "Channels in the routing cache", NULL),
                  (double)ingest_routes_count(s->routes));
    add_delta(rt, "limit=\"body\"", st.limit_body, s->last.limit_body);
    add_delta(rt, "limit=\"header\"", st.limit_header, s->last.limit_header);
    add_delta(rt, "limit=\"timeout\"", st.limit_timeout, s->last.limit_timeout);
    add_delta(rt, "limit=\"connections\"", st.conns_rejected, s->last.conns_rejected);
    add_delta(rt, "limit=\"malformed\"", st.bad_requests, s->last.bad_requests);
    s->last = st;
}
