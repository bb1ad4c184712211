#ifndef INGEST_SRV_H
#define INGEST_SRV_H
/*
 * ingest_srv - private header of tern-ingest's server half: the routing
 * cache (ingest_routes.c), the atomic dedupe-and-enqueue (ingest_enqueue.c),
 * the HTTP front (ingest_http.c) and the daemon hooks (ingest_daemon.c). The
 * pure webhook parsers are in ingest.h.
 *
 * Request path (all on the loop, nothing blocks): tn_httpd hands a request
 * to ingest_http, which routes it by method and path, asks the parser for a
 * verdict with the routing cache as lookup, and for a 200 with entries runs
 * one Lua script on Redis that, per entry, sets the dedupe key (NX EX) and
 * XADDs the entry only when the key was new. The provider gets its 2xx only
 * after that script's reply; a Redis failure or timeout is a 503, which the
 * provider retries, and the dedupe key then turns a retry of an
 * already-written batch into a 200 without a second entry.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>
#include <tn/tn_httpd.h>

#include "ingest.h"

struct uv_loop_s;
struct tn_keyring;
struct tn_metrics;
struct tn_redis;
struct tn_rt;

/* ---------------------------------------------------------------- routes */

struct ingest_routes;

/* ingest_routes_new - the routing cache: every enabled channel of every
 * live tenant, read with tern_routing() from Postgres on the threadpool,
 * plus every live Google Calendar push channel (tern_calendar_channels(),
 * keyed by channel id, with its token hash and calendar account),
 * secrets opened with keys (borrowed, must outlive the cache), refreshed
 * every refresh_ms. pg_dsn borrowed (copied). Returns: new (free with
 * ingest_routes_free). Runs on: loop. */
struct ingest_routes *ingest_routes_new(struct uv_loop_s *loop, const char *pg_dsn,
                                        const struct tn_keyring *keys, int64_t refresh_ms);

/* ingest_routes_lookup - an ingest_lookup_fn over the current snapshot;
 * arg is the struct ingest_routes. Runs on: loop. */
const struct ingest_route *ingest_routes_lookup(void *arg, const char *provider, const char *key);

/* ingest_routes_loaded - true once one snapshot has been loaded. */
bool ingest_routes_loaded(const struct ingest_routes *r);

/* ingest_routes_count - channels in the current snapshot (a gauge). */
size_t ingest_routes_count(const struct ingest_routes *r);

/* ingest_routes_stop - no further refreshes (drain). Runs on: loop. */
void ingest_routes_stop(struct ingest_routes *r);

/* ingest_routes_busy - a refresh is still running on the threadpool. */
bool ingest_routes_busy(const struct ingest_routes *r);

/* ingest_routes_free - release everything; call only when not busy, then let
 * the loop run once more (the timer closes asynchronously). NULL-safe. */
void ingest_routes_free(struct ingest_routes *r);

/* ---------------------------------------------------------------- enqueue */

/* ingest_enqueue_fn - the webhook's fate. err TN_OK: every entry is on its
 * stream (written now or by an earlier delivery of the same webhook); added
 * counts those written now. Otherwise nothing is known to be written and the
 * provider must retry. Runs on: loop. */
typedef void ingest_enqueue_fn(enum tn_err err, size_t added, void *arg);

struct ingest_queue;

/* ingest_queue_new - the webhooks waiting for Redis. redis borrowed (must
 * outlive the queue); dedupe_s is the dedupe keys' lifetime. Returns: new;
 * release with ingest_queue_free. Runs on: loop. */
struct ingest_queue *ingest_queue_new(struct uv_loop_s *loop, struct tn_redis *redis,
                                      int64_t dedupe_s);

/* ingest_enqueue - dedupe and XADD res->entries in order, atomically, with
 * the other webhooks of this loop turn (one Lua script call). res borrowed
 * until cb runs. Errors: TN_EUNAVAIL when Redis is not connected (cb is not
 * called). Runs on: loop. */
enum tn_err ingest_enqueue(struct ingest_queue *q, const struct ingest_result *res,
                           ingest_enqueue_fn *cb, void *arg);

/* ingest_queue_free - send what is queued, then release the queue once its
 * calls have been answered (or cancelled by tn_redis_close). NULL-safe.
 * Runs on: loop. */
void ingest_queue_free(struct ingest_queue *q);

/* ---------------------------------------------------------------- arena */

/* ingest_arena_init - route jansson's allocations through the arena (once,
 * at startup, before any JSON value exists). Runs on: main thread. */
void ingest_arena_init(void);

/* ingest_arena_begin / ingest_arena_end - bracket one webhook's parse: the
 * JSON values made in between come from the arena and must all be freed
 * before ingest_arena_end (asserted). Not nested. Runs on: loop. */
void ingest_arena_begin(void);
void ingest_arena_end(void);

/* ---------------------------------------------------------------- oauth */

struct ingest_oauth_cfg {
    const struct tn_keyring *keys; /* NULL: the flow is off (404) */
    const char *client_id;         /* TN_GOOGLE_CLIENT_ID; "": off */
    const char *auth_url;          /* TN_GOOGLE_AUTH_URL */
    const char *redirect_uri;      /* public URL + /oauth/google/callback */
    int64_t state_ttl_s;
};

/* ingest_oauth_start - GET /oauth/google/start: 302 to Google for a valid
 * link; 403 for an invalid or expired one; 404 when not configured.
 * Runs on: loop. */
void ingest_oauth_start(const struct ingest_oauth_cfg *cfg, const struct ingest_request *req,
                        struct ingest_result *res);

/* ingest_oauth_callback - GET /oauth/google/callback: a valid state with a
 * code gives 200 and one cal.request entry (op "connect"); an invalid or
 * expired state 400; a declined consent 200 with no entry. Runs on: loop. */
void ingest_oauth_callback(const struct ingest_oauth_cfg *cfg, const struct ingest_request *req,
                           struct ingest_result *res);

/* ---------------------------------------------------------------- http */

struct ingest_http_cfg {
    const char *listen;     /* TN_INGEST_LISTEN */
    const char *public_url; /* TN_INGEST_PUBLIC_URL, no trailing '/' */
    size_t max_body;
    size_t max_header;
    uint32_t read_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t max_conns;
    int64_t dedupe_s;
    struct ingest_oauth_cfg oauth;
};

struct ingest_http;

/* ingest_http_new - listen on cfg->listen and serve the webhooks. cfg,
 * routes, redis and metrics borrowed for the server's life. Returns: new;
 * NULL when the address cannot be bound (logged). Runs on: loop. */
struct ingest_http *ingest_http_new(struct uv_loop_s *loop, const struct ingest_http_cfg *cfg,
                                    struct ingest_routes *routes, struct tn_redis *redis,
                                    struct tn_metrics *metrics);

/* ingest_http_drain - stop accepting; requests in flight finish. */
void ingest_http_drain(struct ingest_http *h);

/* ingest_http_busy - requests still waiting for Redis or the handler. */
bool ingest_http_busy(const struct ingest_http *h);

/* ingest_http_stats - the server's counters (tn_httpd_stats). */
void ingest_http_stats(const struct ingest_http *h, struct tn_httpd_stats *out);

/* ingest_http_free - close every connection and release (NULL-safe); the
 * loop must run once more. */
void ingest_http_free(struct ingest_http *h);

/* ---------------------------------------------------------------- daemon */

/* Configuration (main.c's table). Strings owned by tn_env. */
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

/* The daemon's one context: main() owns the storage, the hooks get it as arg. */
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

/* The hooks of struct tn_daemon (ingest_daemon.c). arg is the struct
 * ingest_state; rt borrowed from the skeleton. All run on the loop. */

/* ingest_init - keys, Redis, routing cache, listener. Errors: TN_EINVAL
 * (bad configuration, or the listen address cannot be bound; logged). */
enum tn_err ingest_init(struct tn_rt *rt, void *arg);

/* ingest_drain - stop accepting and refreshing. */
void ingest_drain(struct tn_rt *rt, void *arg);

/* ingest_busy - requests or a routing refresh still in flight. */
bool ingest_busy(void *arg);

/* ingest_fini - close and release everything ingest_init opened (any of
 * it may be missing after a failed init). */
void ingest_fini(struct tn_rt *rt, void *arg);

/* ingest_ready - routes loaded and the enqueue connection up; else *why is
 * set (static text). */
bool ingest_ready(void *arg, const char **why);

/* ingest_heartbeat - export the server's gauges and limit counters. */
void ingest_heartbeat(struct tn_rt *rt, void *arg);

#endif
