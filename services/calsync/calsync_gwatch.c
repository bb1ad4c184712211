/*
 * NAME
 *	calsync_gwatch - Google Calendar push channels (events.watch)
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_job_start(ctx, CALSYNC_WATCH, tenant, account_id, c, e);
 *	calsync_job_start(ctx, CALSYNC_UNWATCH, tenant, account_id, c, e);
 * DESCRIPTION
 *	A watch job (protocols.md 5.4) asks events.watch on the account's
 *	calendar for a channel with a fresh id (a random UUID), a random
 *	256-bit token and the push address (TN_GOOGLE_PUSH_URL, else
 *	TN_INGEST_PUBLIC_URL + /webhooks/google/calendar), for
 *	TN_CALSYNC_WATCH_TTL. It stores the channel id, Google's resourceId,
 *	the expiration Google granted and the token's SHA-256 (never the
 *	token) in oauth_accounts.push_*, which tern-ingest's routing cache
 *	reads (tern_calendar_channels, 0012). Google has no renewal: the
 *	channel that the new one replaces is then stopped with channels.stop
 *	(its id and resourceId). An unwatch job (op disconnect) stops the
 *	account's channel and forgets it.
 *
 *	The scan (calsync_scan.c) starts a watch for every live Google
 *	account without a channel or whose channel expires within
 *	TN_CALSYNC_WATCH_AHEAD (tern_calsync_watch_due, which also paces
 *	retries of a failing watch); op watch starts one at once. Pushes then
 *	arrive at tern-ingest, which checks the token and enqueues op push;
 *	calsync_job.c turns that into an immediate import.
 *
 *	A disconnect is tern-sweeper's (sweeper_tokens.c, sweeper_revoke.c):
 *	it forgets the channel with the tokens and stops it at Google before
 *	revoking the grant. A watch never stores a channel on an account
 *	disconnected meanwhile.
 *
 *	XXX: when storing a new channel fails after Google opened it (or the
 *	account was disconnected meanwhile), that channel is left to expire
 *	(its pushes get 404 from tern-ingest).
 * RUNS ON
 *	loop; the load and save work on the threadpool.
 * DIAGNOSTICS
 *	calsync.watch_opened (channel_id, expires), calsync.watch_stopped,
 *	calsync.watch_stop_failed (warn), j->err / j->why: TN_EUNAVAIL
 *	"google_unavailable" (retried), TN_EPROTO "google_refused". The token
 *	is never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <tn/tn_buf.h>
#include <tn/tn_crypto.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "calsync.h"

#define PUSH_PATH "/webhooks/google/calendar"
#define WATCH_MAX_RESPONSE (64u << 10)

struct calsync_watch {
    char *old_id, *old_res; /* the channel in the database (or NULL) */
    char new_id[40];        /* the channel being opened */
    char *new_res;          /* Google's resourceId of it */
    char hash[72];          /* hex SHA-256 of the new token */
    char *token;            /* the new token, only until it is sent */
    int64_t exp_ms;         /* expiration Google granted */
    bool stopping;          /* the request in flight is channels.stop */
};

static const char sql_load[] = "SELECT push_channel_id, push_resource_id FROM oauth_accounts"
                               " WHERE tenant_id = tern_current_tenant() AND id = $1";

static const char sql_save[] =
    "UPDATE oauth_accounts SET push_channel_id = $2, push_resource_id = $3, push_token_hash = $4,"
    " push_expires_at = to_timestamp($5::bigint / 1000.0), updated_at = now()"
    " WHERE tenant_id = tern_current_tenant() AND id = $1 AND disconnected_at IS NULL";

static void send_request(struct calsync_job *j);
static void save(struct calsync_job *j);

/* calsync_gwatch_address - the push address, or NULL */
char *calsync_gwatch_address(const struct calsync_cfg *cfg)
{
    struct tn_buf b;
    size_t n;

    if (cfg->push_url != NULL && cfg->push_url[0] != '\0')
        return tn_xstrdup(cfg->push_url);
    if (cfg->ingest_public_url == NULL || cfg->ingest_public_url[0] == '\0')
        return NULL;
    n = strlen(cfg->ingest_public_url);
    while (n > 0 && cfg->ingest_public_url[n - 1] == '/')
        n--;
    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "%.*s%s", (int)n, cfg->ingest_public_url, PUSH_PATH);
    return tn_buf_steal(&b, NULL);
}

/* calsync_gwatch_free - release the job's watch state (NULL-safe) */
void calsync_gwatch_free(struct calsync_job *j)
{
    struct calsync_watch *w = j->watch;

    if (w == NULL)
        return;
    tn_free(w->old_id);
    tn_free(w->old_res);
    tn_free(w->new_res);
    tn_free_secret(w->token);
    tn_free(w);
    j->watch = NULL;
}

/* value_dup - a result value as a new string, or NULL */
static char *value_dup(struct pg_result *res, int col)
{
    const char *v = tn_pg_result_value(res, 0, col);

    return v != NULL ? tn_xstrdup(v) : NULL;
}

/* calsync_gwatch_load - the account's current channel. Runs on: threadpool */
enum tn_err calsync_gwatch_load(struct tn_pgconn *c, struct calsync_job *j)
{
    const char *p[1] = {j->acct.id};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_load, 1, p, &res);

    j->watch = tn_xcalloc(1, sizeof(*j->watch));
    if (err == TN_OK && tn_pg_result_rows(res) == 1) {
        j->watch->old_id = value_dup(res, 0);
        j->watch->old_res = value_dup(res, 1);
    }
    tn_pg_result_free(res);
    return err;
}

/* fail - end the job with an error */
static void fail(struct calsync_job *j, enum tn_err err, const char *why)
{
    j->err = err;
    j->why = why;
    j->then(j);
}

/* new_uuid - a random (version 4) UUID into out[37] */
static void new_uuid(char out[40])
{
    unsigned char r[16];
    char *h;

    tn_random_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    h = tn_hex_encode(r, sizeof(r));
    snprintf(out, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    tn_free(h);
}

/* new_token - a fresh random token, and its hash into w->hash */
static void new_token(struct calsync_watch *w)
{
    unsigned char r[32], h[TN_SHA256_LEN];
    char *hex;

    tn_random_bytes(r, sizeof(r));
    w->token = tn_hex_encode(r, sizeof(r));
    memset(r, 0, sizeof(r));
    tn_sha256(w->token, strlen(w->token), h);
    hex = tn_hex_encode(h, sizeof(h));
    snprintf(w->hash, sizeof(w->hash), "%s", hex);
    tn_free(hex);
}

/* watch_url - base/calendars/<escaped calendar id>/events/watch; new */
static char *watch_url(struct calsync_job *j)
{
    struct tn_buf b;
    char *cid = curl_easy_escape(NULL, j->acct.url != NULL ? j->acct.url : "primary", 0);

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "%s/calendars/%s/events/watch", j->ctx->cfg.google_calendar_base,
                  cid != NULL ? cid : "primary");
    curl_free(cid);
    return tn_buf_steal(&b, NULL);
}

/* stop_url - base/channels/stop; new */
static char *stop_url(struct calsync_job *j)
{
    struct tn_buf b;

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "%s/channels/stop", j->ctx->cfg.google_calendar_base);
    return tn_buf_steal(&b, NULL);
}

/* request_body - the watch or stop body; new (wipe: a watch body holds the token) */
static char *request_body(struct calsync_job *j)
{
    struct calsync_watch *w = j->watch;
    json_t *o;
    char *s, *out;

    if (w->stopping) {
        o = json_pack("{s:s, s:s}", "id", w->old_id, "resourceId", w->old_res);
    } else {
        o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", w->new_id, "type", "web_hook", "address",
                      j->ctx->push_address, "token", w->token, "expiration",
                      (json_int_t)(tn_now_ms() + j->ctx->cfg.watch_ttl_ms));
    }
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    out = tn_xstrdup(s != NULL ? s : "{}");
    tn_free_secret(s); /* jansson's buffer; tn_free is free */
    return out;
}

/* after_stop - a watch is done; an unwatch forgets the channel */
static void after_stop(struct calsync_job *j)
{
    if (j->kind == CALSYNC_UNWATCH)
        save(j);
    else
        j->then(j);
}

/* stopped - channels.stop answered (or failed): logged, never fatal */
static void stopped(struct calsync_job *j, long status)
{
    struct tn_log_ctx lc = {.tenant_id = j->tenant};

    if ((status >= 200 && status <= 299) || status == 404)
        tn_log_info(&lc, "calsync.watch_stopped", TN_KV_STR("account_id", j->acct.id),
                    TN_KV_STR("channel_id", j->watch->old_id));
    else
        tn_log_warn(&lc, "calsync.watch_stop_failed", TN_KV_STR("account_id", j->acct.id),
                    TN_KV_INT("status", status));
    after_stop(j);
}

/* stop_old - stop the replaced (or, unwatching, the current) channel, if any */
static void stop_old(struct calsync_job *j)
{
    struct calsync_watch *w = j->watch;

    if (w->old_id == NULL || w->old_res == NULL || j->acct.reconnect) {
        after_stop(j);
        return;
    }
    w->stopping = true;
    j->auth_tries = 0;
    calsync_gtoken_get(j, send_request);
}

/* saved_cb - the channel columns are written. Runs on: loop */
static void saved_cb(enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;

    if (err != TN_OK) {
        fail(j, err == TN_ECANCELED ? err : TN_EUNAVAIL, "database");
        return;
    }
    if (j->kind == CALSYNC_WATCH)
        tn_log_info(&(struct tn_log_ctx){.tenant_id = j->tenant}, "calsync.watch_opened",
                    TN_KV_STR("account_id", j->acct.id), TN_KV_STR("channel_id", j->watch->new_id),
                    TN_KV_INT("expires_ms", j->watch->exp_ms));
    if (j->kind == CALSYNC_WATCH)
        stop_old(j); /* the channel the new one replaces */
    else
        j->then(j); /* unwatch: stopped, now forgotten */
}

/* save_work - the new channel (watch) or none (unwatch). Runs on: threadpool */
static enum tn_err save_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_job *j = arg;
    struct calsync_watch *w = j->watch;
    char exp[24];
    bool watch = j->kind == CALSYNC_WATCH;
    const char *p[5] = {j->acct.id, watch ? w->new_id : NULL, watch ? w->new_res : NULL,
                        watch ? w->hash : NULL, watch ? exp : NULL};
    enum tn_err err = tn_pgconn_begin_tenant(c, j->tenant);

    if (err != TN_OK)
        return err;
    snprintf(exp, sizeof(exp), "%lld", (long long)w->exp_ms);
    err = tn_pgconn_query(c, sql_save, 5, p, NULL);
    if (err == TN_OK)
        return tn_pgconn_commit(c);
    tn_pgconn_rollback(c);
    return err;
}

/* save - submit save_work */
static void save(struct calsync_job *j)
{
    if (tn_pg_submit(j->ctx->pg, save_work, saved_cb, j) != TN_OK)
        fail(j, TN_ECANCELED, "shutting_down");
}

/* watched - events.watch answered 200: the channel's resource and expiry */
static void watched(struct calsync_job *j, json_t *b)
{
    struct calsync_watch *w = j->watch;
    const char *res = json_string_value(json_object_get(b, "resourceId"));
    const char *exp = json_string_value(json_object_get(b, "expiration"));
    json_t *expn = json_object_get(b, "expiration");

    if (res == NULL || strlen(res) > 256) {
        fail(j, TN_EPROTO, "google_refused");
        return;
    }
    tn_free_secret(w->token); /* Google has it; only the hash is kept */
    w->token = NULL;
    w->new_res = tn_xstrdup(res);
    w->exp_ms = exp != NULL             ? strtoll(exp, NULL, 10)
                : json_is_integer(expn) ? (int64_t)json_integer_value(expn)
                                        : 0;
    if (w->exp_ms <= 0)
        w->exp_ms = tn_now_ms() + j->ctx->cfg.watch_ttl_ms;
    save(j);
}

/* on_response - watch or stop answered */
static void on_response(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;
    struct calsync_watch *w = j->watch;
    json_t *b;

    if (err != TN_OK) {
        if (w->stopping)
            stopped(j, 0);
        else
            fail(j, err == TN_ECANCELED ? err : TN_EUNAVAIL, "google_unavailable");
        return;
    }
    if (resp->status == 401 && j->auth_tries++ == 0) {
        calsync_gtoken_rejected(j, send_request);
        return;
    }
    if (w->stopping) {
        stopped(j, resp->status);
        return;
    }
    if (resp->status == 429 || resp->status >= 500 || resp->status == 401) {
        fail(j, TN_EUNAVAIL, "google_unavailable");
        return;
    }
    if (resp->status != 200) {
        fail(j, TN_EPROTO, "google_refused");
        return;
    }
    b = json_loadb(resp->body, resp->body_len, 0, NULL);
    watched(j, b);
    json_decref(b);
}

/* send_request - the watch or stop request with the job's access token */
static void send_request(struct calsync_job *j)
{
    struct calsync_watch *w = j->watch;
    char auth[4200], *url, *body;
    const char *hdr[] = {auth, "Content-Type: application/json", NULL};
    enum tn_err err;

    if (j->err != TN_OK) { /* no token: reconnect needed or refresh failed */
        if (w->stopping) {
            j->err = TN_OK; /* the channel expires on its own */
            stopped(j, 0);
        } else {
            j->then(j);
        }
        return;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", j->acct.access);
    url = w->stopping ? stop_url(j) : watch_url(j);
    body = request_body(j);
    err = tn_http_send(j->ctx->http,
                       &(struct tn_http_request){.method = "POST",
                                                 .url = url,
                                                 .headers = hdr,
                                                 .body = body,
                                                 .body_len = strlen(body),
                                                 .max_response = WATCH_MAX_RESPONSE},
                       on_response, j);
    tn_wipe(auth, sizeof(auth));
    tn_free_secret(body);
    tn_free(url);
    if (err != TN_OK && w->stopping)
        stopped(j, 0);
    else if (err != TN_OK)
        fail(j, TN_EUNAVAIL, "google_unavailable");
}

/* calsync_gwatch_run - a loaded watch or unwatch job */
void calsync_gwatch_run(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    struct calsync_watch *w = j->watch;

    j->then = then;
    if (!j->acct.google || w == NULL) {
        then(j); /* CalDAV has no push channels: nothing to do */
        return;
    }
    if (j->kind == CALSYNC_UNWATCH) {
        if (w->old_id == NULL)
            then(j);
        else
            stop_old(j); /* then forgets it (after_stop) */
        return;
    }
    if (j->ctx->push_address == NULL) {
        j->why = "push_not_configured";
        then(j);
        return;
    }
    new_uuid(w->new_id);
    new_token(w);
    calsync_gtoken_get(j, send_request);
}
