/*
 * NAME
 *	ingest_http - tern-ingest's webhook front
 * DESCRIPTION
 *	Routes:
 *	  GET  /webhooks/whatsapp            verification challenge
 *	  POST /webhooks/whatsapp            messages and statuses
 *	  POST /webhooks/twilio/{channel}    inbound SMS/WhatsApp, status callbacks
 *	  POST /webhooks/telegram/{channel}  bot updates
 *	  POST /webhooks/google/calendar     Google Calendar push notifications
 *	Anything else is 404; a known path with another method is 405 with
 *	Allow. Size and time limits (413, 431, 408) are tn_httpd's.
 *
 *	A request's verdict comes from the pure parsers in ingest_*.c; a 200
 *	with entries is answered only after ingest_enqueue's script has run
 *	(503 if Redis is down or too slow: the provider retries).
 * SECURITY
 *	Everything here is hostile input. Logs carry the provider, the status
 *	and a stable reason; never a body, a signature or an address.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_httpd.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_proto.h>
#include <tn/tn_time.h>

#include "ingest_srv.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define RETRY_AFTER "Retry-After: 5\r\n"

/* The metrics of one (provider, status, reason) outcome, looked up once:
 * provider and reason are static strings, compared by address. */
struct outcome {
    const char *provider;
    const char *reason;
    int status;
    struct tn_metric *requests, *rejected, *seconds;
};

#define OUTCOMES 64

struct ingest_http {
    struct outcome outcomes[OUTCOMES];
    size_t noutcomes;
    struct tn_httpd *httpd;
    const struct ingest_http_cfg *cfg;
    struct ingest_routes *routes;
    struct ingest_queue *queue;
    struct tn_metrics *metrics;
    size_t waiting; /* requests waiting for the enqueue script */
    struct tn_metric *enqueued, *duplicates;
};

/* One request from routing to response. Strings owned. */
struct pending {
    struct ingest_http *h;
    struct tn_httpd_req *req;
    const char *provider; /* static */
    int64_t t0_ms;        /* monotonic */
    struct ingest_request in;
    struct ingest_result res;
    char *url, *query, *channel, *ctype, *sig, *trace;
    struct ingest_goog goog; /* members owned (Google push only) */
};

enum route_kind {
    R_NONE,
    R_WHATSAPP,
    R_TWILIO,
    R_TELEGRAM,
    R_OAUTH_START,
    R_OAUTH_CALLBACK,
    R_GOOGLE_CAL
};

/* header_dup - a NUL-terminated copy of header name, or NULL */
static char *header_dup(const struct tn_httpd_req_view *v, const char *name)
{
    size_t len = 0;
    const char *s = tn_httpd_header_get(v, name, &len);
    return s ? tn_xstrndup(s, len) : NULL;
}

/* route_of - which webhook path this is; *seg gets the {channel} segment */
static enum route_kind route_of(const struct tn_httpd_req_view *v, char **seg)
{
    static const struct {
        const char *prefix;
        enum route_kind kind;
        bool has_channel;
    } routes[] = {
        {"/webhooks/whatsapp", R_WHATSAPP, false},
        {"/webhooks/twilio/", R_TWILIO, true},
        {"/webhooks/telegram/", R_TELEGRAM, true},
        {"/oauth/google/start", R_OAUTH_START, false},
        {"/oauth/google/callback", R_OAUTH_CALLBACK, false},
        {"/webhooks/google/calendar", R_GOOGLE_CAL, false},
    };

    *seg = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t pl = strlen(routes[i].prefix);
        if (v->path_len < pl || memcmp(v->path, routes[i].prefix, pl) != 0)
            continue;
        if (!routes[i].has_channel)
            return v->path_len == pl ? routes[i].kind : R_NONE;
        const char *s = v->path + pl;
        size_t n = v->path_len - pl;
        if (n == 0 || n > 128 || memchr(s, '/', n) != NULL)
            return R_NONE;
        *seg = tn_xstrndup(s, n);
        return routes[i].kind;
    }
    return R_NONE;
}

/* outcome_new - register the metrics of one outcome into o */
static void outcome_new(struct ingest_http *h, struct outcome *o, const char *provider, int status,
                        const char *reason)
{
    char labels[160];

    *o = (struct outcome){.provider = provider, .reason = reason, .status = status};
    snprintf(labels, sizeof(labels), "provider=\"%s\",code=\"%d\"", provider, status);
    o->requests = tn_metrics_get(h->metrics, TN_METRIC_COUNTER, "tern_ingest_requests_total",
                                 "Webhook requests answered, by provider and status", labels);
    if (status >= 400) {
        snprintf(labels, sizeof(labels), "provider=\"%s\",reason=\"%s\"", provider, reason);
        o->rejected = tn_metrics_get(h->metrics, TN_METRIC_COUNTER, "tern_ingest_rejected_total",
                                     "Webhook requests refused, by provider and reason", labels);
    }
    snprintf(labels, sizeof(labels), "provider=\"%s\"", provider);
    o->seconds = tn_metrics_get(h->metrics, TN_METRIC_HISTOGRAM, "tern_ingest_request_seconds",
                                "Webhook request handling time", labels);
}

/* outcome_of - the cached metrics of an outcome (a scratch slot when the
 * cache is full: metrics are registered once either way). */
static struct outcome *outcome_of(struct ingest_http *h, const char *provider, int status,
                                  const char *reason)
{
    static struct outcome scratch;

    for (size_t i = 0; i < h->noutcomes; i++) {
        struct outcome *o = &h->outcomes[i];
        if (o->provider == provider && o->status == status && o->reason == reason)
            return o;
    }
    struct outcome *o = h->noutcomes < OUTCOMES ? &h->outcomes[h->noutcomes++] : &scratch;
    outcome_new(h, o, provider, status, reason);
    return o;
}

/* pending_free - release p and everything it owns */
static void pending_free(struct pending *p)
{
    ingest_result_free(&p->res);
    tn_free(p->url);
    tn_free(p->query);
    tn_free(p->channel);
    tn_free(p->ctype);
    tn_free(p->sig);
    tn_free(p->trace);
    tn_free((char *)p->goog.channel_id);
    if (p->goog.token != NULL) /* a secret: wiped */
        tn_wipe((char *)p->goog.token, strlen(p->goog.token));
    tn_free((char *)p->goog.token);
    tn_free((char *)p->goog.resource_id);
    tn_free((char *)p->goog.resource_state);
    tn_free((char *)p->goog.message_number);
    tn_free(p);
}

/* finish - answer, account and release p. reason: static. Runs on: loop. */
static void finish(struct pending *p, int status, const char *ctype, const char *extra,
                   const char *body, size_t len, const char *reason)
{
    struct outcome *o = outcome_of(p->h, p->provider, status, reason);

    tn_httpd_respond(p->req, status, ctype, extra, body, len);
    tn_metric_inc(o->requests);
    if (o->rejected != NULL) {
        tn_metric_inc(o->rejected);
        tn_log_info(NULL, "ingest.rejected", TN_KV_STR("provider", p->provider),
                    TN_KV_INT("status", status), TN_KV_STR("reason", reason));
    }
    tn_metric_observe(o->seconds, (double)(tn_mono_ms() - p->t0_ms) / 1000.0);
    pending_free(p);
}

/* finish_verdict - answer with the parser's verdict */
static void finish_verdict(struct pending *p)
{
    finish(p, p->res.status, p->res.content_type, p->res.headers, p->res.body, p->res.body_len,
           p->res.reason ? p->res.reason : "unknown");
}

/* enqueued - the script answered. Runs on: loop. */
static void enqueued(enum tn_err err, size_t added, void *arg)
{
    struct pending *p = arg;
    struct ingest_http *h = p->h;

    h->waiting--;
    if (err != TN_OK) {
        static const char msg[] = "queue unavailable, retry later\n";
        finish(p, 503, TEXT_PLAIN, RETRY_AFTER, msg, sizeof(msg) - 1, "redis.unavailable");
        return;
    }
    tn_metric_add(h->enqueued, (double)added);
    tn_metric_add(h->duplicates, (double)(p->res.nentries - added));
    finish_verdict(p);
}

/* method_is - does the request's method equal m? */
static bool method_is(const struct tn_httpd_req_view *v, const char *m)
{
    return v->method_len == strlen(m) && memcmp(v->method, m, v->method_len) == 0;
}

/* build_request - fill p->in from the view */
static void build_request(struct pending *p, const struct tn_httpd_req_view *v)
{
    const char *base = p->h->cfg->public_url;
    size_t n = strlen(base) + v->path_len + v->query_len + 2;

    p->url = tn_xmalloc(n);
    snprintf(p->url, n, "%s%.*s%s%.*s", base, (int)v->path_len, v->path, v->query ? "?" : "",
             (int)v->query_len, v->query ? v->query : "");
    p->query = v->query ? tn_xstrndup(v->query, v->query_len) : NULL;
    p->ctype = header_dup(v, "content-type");
    p->trace = header_dup(v, "traceparent");
    p->in = (struct ingest_request){
        .method = method_is(v, "GET") ? "GET" : "POST",
        .url = p->url,
        .query = p->query,
        .channel = p->channel,
        .content_type = p->ctype,
        .signature = p->sig,
        .body = v->body,
        .body_len = v->body_len,
        .now_ms = tn_now_ms(),
        .trace = p->trace,
    };
}

/* allowed - may this method be used on this route? */
static bool allowed(enum route_kind k, const struct tn_httpd_req_view *v)
{
    if (k == R_OAUTH_START || k == R_OAUTH_CALLBACK)
        return method_is(v, "GET");
    return method_is(v, "POST") || (k == R_WHATSAPP && method_is(v, "GET"));
}

/* allow_header - the Allow header of a route's 405 */
static const char *allow_header(enum route_kind k)
{
    if (k == R_OAUTH_START || k == R_OAUTH_CALLBACK)
        return "Allow: GET\r\n";
    return k == R_WHATSAPP ? "Allow: GET, POST\r\n" : "Allow: POST\r\n";
}

/* google_push - the X-Goog-* headers into p->goog, then the parser */
static void google_push(struct pending *p, const struct tn_httpd_req_view *v)
{
    p->goog = (struct ingest_goog){
        .channel_id = header_dup(v, "x-goog-channel-id"),
        .token = header_dup(v, "x-goog-channel-token"),
        .resource_id = header_dup(v, "x-goog-resource-id"),
        .resource_state = header_dup(v, "x-goog-resource-state"),
        .message_number = header_dup(v, "x-goog-message-number"),
    };
    p->in.goog = &p->goog;
    ingest_google_push(&p->in, ingest_routes_lookup, p->h->routes, &p->res);
}

/* parse_webhook - a provider's pure parser, its JSON in the arena */
static void parse_webhook(struct pending *p, enum route_kind k, const struct tn_httpd_req_view *v)
{
    struct ingest_routes *routes = p->h->routes;

    ingest_arena_begin();
    if (k == R_WHATSAPP)
        ingest_whatsapp_post(&p->in, ingest_routes_lookup, routes, &p->res);
    else if (k == R_GOOGLE_CAL)
        google_push(p, v);
    else if (k == R_TWILIO)
        ingest_twilio_post(&p->in, ingest_routes_lookup, routes, &p->res);
    else
        ingest_telegram_post(&p->in, ingest_routes_lookup, routes, &p->res);
    ingest_arena_end();
}

/* dispatch - run the provider's parser into p->res */
static void dispatch(struct pending *p, enum route_kind k, const struct tn_httpd_req_view *v)
{
    static const char *const sig_header[] = {NULL,
                                             "x-hub-signature-256",
                                             "x-twilio-signature",
                                             "x-telegram-bot-api-secret-token",
                                             NULL,
                                             NULL,
                                             NULL};
    struct ingest_http *h = p->h;

    p->sig = sig_header[k] ? header_dup(v, sig_header[k]) : NULL;
    build_request(p, v);
    if (k == R_OAUTH_START)
        ingest_oauth_start(&h->cfg->oauth, &p->in, &p->res);
    else if (k == R_OAUTH_CALLBACK)
        ingest_oauth_callback(&h->cfg->oauth, &p->in, &p->res);
    else if (k == R_WHATSAPP && method_is(v, "GET"))
        ingest_whatsapp_challenge(&p->in, ingest_routes_lookup, h->routes, &p->res);
    else
        parse_webhook(p, k, v);
}

/* handle - one request. Runs on: loop. */
static void handle(struct tn_httpd_req *req, const struct tn_httpd_req_view *v, void *arg)
{
    struct ingest_http *h = arg;
    struct pending *p = tn_xcalloc(1, sizeof(*p));
    enum route_kind k = route_of(v, &p->channel);
    static const char *const names[] = {
        "none",   TN_PROVIDER_WHATSAPP, TN_PROVIDER_TWILIO, TN_PROVIDER_TELEGRAM, "google",
        "google", "google-calendar"};

    p->h = h;
    p->req = req;
    p->t0_ms = tn_mono_ms();
    p->provider = names[k];
    if (k == R_NONE) {
        static const char msg[] = "not found\n";
        finish(p, 404, TEXT_PLAIN, NULL, msg, sizeof(msg) - 1, "path.unknown");
        return;
    }
    if (!allowed(k, v)) {
        static const char msg[] = "method not allowed\n";
        finish(p, 405, TEXT_PLAIN, allow_header(k), msg, sizeof(msg) - 1, "method");
        return;
    }
    dispatch(p, k, v);
    if (p->res.status != 200 || p->res.nentries == 0) {
        finish_verdict(p);
        return;
    }
    if (ingest_enqueue(h->queue, &p->res, enqueued, p) != TN_OK) {
        static const char msg[] = "queue unavailable, retry later\n";
        finish(p, 503, TEXT_PLAIN, RETRY_AFTER, msg, sizeof(msg) - 1, "redis.unavailable");
        return;
    }
    h->waiting++;
}

struct ingest_http *ingest_http_new(struct uv_loop_s *loop, const struct ingest_http_cfg *cfg,
                                    struct ingest_routes *routes, struct tn_redis *redis,
                                    struct tn_metrics *metrics)
{
    struct ingest_http *h = tn_xcalloc(1, sizeof(*h));
    struct tn_httpd_opts o = {
        .listen = cfg->listen,
        .max_body = cfg->max_body,
        .max_header = cfg->max_header,
        .read_timeout_ms = cfg->read_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .max_conns = cfg->max_conns,
    };

    h->cfg = cfg;
    h->routes = routes;
    h->queue = ingest_queue_new(loop, redis, cfg->dedupe_s);
    h->metrics = metrics;
    h->enqueued = tn_metrics_get(metrics, TN_METRIC_COUNTER, "tern_ingest_enqueued_total",
                                 "Stream entries written", NULL);
    h->duplicates = tn_metrics_get(metrics, TN_METRIC_COUNTER, "tern_ingest_duplicates_total",
                                   "Entries skipped as already received (redeliveries)", NULL);
    h->httpd = tn_httpd_new(loop, &o, handle, h);
    if (h->httpd == NULL) {
        ingest_queue_free(h->queue);
        tn_free(h);
        return NULL;
    }
    return h;
}

void ingest_http_drain(struct ingest_http *h)
{
    tn_httpd_stop_accepting(h->httpd);
}

bool ingest_http_busy(const struct ingest_http *h)
{
    return h->waiting > 0 || tn_httpd_active(h->httpd) > 0;
}

void ingest_http_stats(const struct ingest_http *h, struct tn_httpd_stats *out)
{
    tn_httpd_stats(h->httpd, out);
}

void ingest_http_free(struct ingest_http *h)
{
    if (h == NULL)
        return;
    tn_httpd_close(h->httpd);
    ingest_queue_free(h->queue);
    tn_free(h);
}
