/*
 * NAME
 *	tern-ingest - webhook ingester
 * DESCRIPTION
 *	The only daemon the internet talks to. Verifies, normalises,
 *	deduplicates and enqueues provider webhooks (WhatsApp Cloud, Twilio,
 *	Telegram), then answers at once; never calls a provider and never
 *	waits on Postgres in the request path (routing comes from a cache,
 *	ingest_routes.c). Runs in the shared daemon skeleton (tn_daemon):
 *	admin port with /healthz, /readyz and /metrics, heartbeat, SIGTERM
 *	drain (stop accepting, finish what was received).
 * STREAMS IN
 *	HTTP: POST /webhooks/whatsapp (+ GET challenge),
 *	/webhooks/twilio/{channel}, /webhooks/telegram/{channel};
 *	GET /oauth/google/start and /oauth/google/callback (ingest_oauth.c);
 *	POST /webhooks/google/calendar (Google push, ingest_google.c)
 * STREAMS OUT
 *	tern:in (inbound.message), tern:status (delivery.status),
 *	tern:cal (cal.request op "connect", the sealed authorization code;
 *	op "push", a calendar changed)
 * DATABASE
 *	tern_routing() every TN_INGEST_ROUTES_REFRESH, off the request path.
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h (TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9101) and those in the table below; README.md lists them.
 * SECURITY
 *	Everything it receives is hostile input. Channel secrets are opened
 *	with TN_MASTER_KEY and kept only in memory.
 *	Refuses to run as root unless TN_ALLOW_ROOT=1.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_daemon.h>
#include <tn/tn_httpd.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_redis.h>

#include "ingest_srv.h"

struct ingest_cfg {
    char *listen;
    char *public_url;
    int64_t max_body;
    int64_t max_header;
    int64_t read_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t max_conns;
    int64_t dedupe_ms;
    int64_t refresh_ms;
    int64_t redis_timeout_ms;
    char *master_key;
    char *google_client_id;
    char *google_auth_url;
    int64_t oauth_state_ttl_ms;
};

static const struct tn_env_spec ingest_env[] = {
    TN_ENV_STR("TN_INGEST_LISTEN", "127.0.0.1:8080", struct ingest_cfg, listen),
    TN_ENV_STR("TN_INGEST_PUBLIC_URL", "", struct ingest_cfg, public_url),
    TN_ENV_INT("TN_INGEST_MAX_BODY", "1048576", 1024, 64 << 20, struct ingest_cfg, max_body),
    TN_ENV_INT("TN_INGEST_MAX_HEADER", "16384", 1024, 1 << 20, struct ingest_cfg, max_header),
    TN_ENV_MS("TN_INGEST_READ_TIMEOUT", "10s", 100, 300000, struct ingest_cfg, read_timeout_ms),
    TN_ENV_MS("TN_INGEST_IDLE_TIMEOUT", "60s", 100, 3600000, struct ingest_cfg, idle_timeout_ms),
    TN_ENV_INT("TN_INGEST_MAX_CONNS", "4096", 1, 1000000, struct ingest_cfg, max_conns),
    TN_ENV_MS("TN_INGEST_DEDUPE_TTL", "7d", 1000, 30LL * 86400000, struct ingest_cfg, dedupe_ms),
    TN_ENV_MS("TN_INGEST_ROUTES_REFRESH", "5s", 100, 3600000, struct ingest_cfg, refresh_ms),
    TN_ENV_MS("TN_INGEST_REDIS_TIMEOUT", "2s", 50, 60000, struct ingest_cfg, redis_timeout_ms),
    TN_ENV_SECRET(TN_ENV_MASTER_KEY, "", struct ingest_cfg, master_key),
    TN_ENV_STR("TN_GOOGLE_CLIENT_ID", "", struct ingest_cfg, google_client_id),
    TN_ENV_STR("TN_GOOGLE_AUTH_URL", "https://accounts.google.com/o/oauth2/v2/auth",
               struct ingest_cfg, google_auth_url),
    TN_ENV_MS("TN_OAUTH_STATE_TTL", "15m", 60000, 86400000, struct ingest_cfg, oauth_state_ttl_ms),
    TN_ENV_END,
};

struct ingest_state {
    struct ingest_cfg cfg;
    struct ingest_http_cfg http_cfg;
    char *public_url;   /* owned: cfg.public_url or derived from listen */
    char *redirect_uri; /* owned: public_url + /oauth/google/callback */
    struct tn_keyring *keys;
    struct tn_redis *redis; /* the request path's own connection */
    struct ingest_routes *routes;
    struct ingest_http *http;
    struct tn_httpd_stats last; /* for counter deltas */
};

static struct ingest_state g_state;

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
static enum tn_err ingest_init(struct tn_rt *rt, void *arg)
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
    s->redis = tn_redis_new(rt->loop, rt->base->redis_url,
                            &(struct tn_redis_opts){.name = "tern-ingest-enqueue",
                                                    .command_timeout_ms =
                                                        (uint32_t)c->redis_timeout_ms});
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
static void ingest_drain(struct tn_rt *rt, void *arg)
{
    struct ingest_state *s = arg;

    (void)rt;
    if (s->http != NULL)
        ingest_http_drain(s->http);
    if (s->routes != NULL)
        ingest_routes_stop(s->routes);
}

/* ingest_busy - requests or a routing refresh still in flight. */
static bool ingest_busy(void *arg)
{
    struct ingest_state *s = arg;

    return (s->http != NULL && ingest_http_busy(s->http)) ||
           (s->routes != NULL && ingest_routes_busy(s->routes));
}

/* ingest_fini - close everything. Runs on: loop. */
static void ingest_fini(struct tn_rt *rt, void *arg)
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
static bool ingest_ready(void *arg, const char **why)
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
static void ingest_heartbeat(struct tn_rt *rt, void *arg)
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

/* main - hand control to the daemon skeleton */
int main(void)
{
    ingest_arena_init();
    return tn_daemon_main(&(const struct tn_daemon){
        .name = "ingest",
        .admin_default = "127.0.0.1:9101",
        .env = ingest_env,
        .cfg = &g_state.cfg,
        .init = ingest_init,
        .drain = ingest_drain,
        .busy = ingest_busy,
        .fini = ingest_fini,
        .ready = ingest_ready,
        .heartbeat = ingest_heartbeat,
        .arg = &g_state,
    });
}
