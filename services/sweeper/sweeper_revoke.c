/*
 * NAME
 *	sweeper_revoke - stop push channels and revoke OAuth grants at the
 *	provider, with retries
 * SYNOPSIS
 *	sweeper_revoke_start(ctx, tokens, n); sweeper_revoke_stop(ctx);
 * DESCRIPTION
 *	By the time a token gets here it is already gone from the database
 *	(sweeper_take_tokens committed first), and so is the account's push
 *	channel: stopping the channel and revoking the grant are courtesies
 *	to the provider and the user, and their failure never brings anything
 *	back.
 *
 *	Per account, in this order (channels.stop needs the grant alive):
 *	1. Stop: when the account had a push channel and a live access token,
 *	   POST {"id","resourceId"} to TN_GOOGLE_CALENDAR_BASE/channels/stop
 *	   with "Authorization: Bearer <access token>" (protocols.md 5.4).
 *	   2xx is stopped, 404 means Google no longer knows the channel
 *	   (expired, stopped already): both are done. 5xx, 429 and transport
 *	   errors are retried like a revocation; anything else (401: the
 *	   token died meanwhile) is logged and given up. Either way step 2
 *	   follows: the revocation is not held hostage by the channel.
 *	2. Revoke: the token is POSTed as token=<value> (form encoded) to
 *	   TN_GOOGLE_REVOKE_URL; 200 is revoked, 400 means the provider does
 *	   not know the token any more (expired or revoked already): both are
 *	   done.
 *	Failures of either step (5xx, 429, a transport error) are retried
 *	with capped exponential backoff, TN_SWEEPER_REVOKE_ATTEMPTS times in
 *	all per step, so a failing channels.stop delays the revocation by
 *	about a minute at most before it is given up.
 *
 *	XXX: retries live in memory only, by design (no row may keep the
 *	token): a restart during the retries abandons them (logged).
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	sweeper.channel_stopped, sweeper.channel_stop_retry,
 *	sweeper.channel_stop_failed (given up), sweeper.revoked,
 *	sweeper.revoke_retry, sweeper.revoke_gave_up, sweeper.revoke_abandoned
 *	(ids and statuses, never a token).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include <tn/tn_buf.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_time.h>

#include "sweeper.h"

struct revoke {
    struct sweeper_ctx *ctx;
    struct sweeper_token token;
    uint32_t attempt;
    uv_timer_t timer;
    bool stopping; /* step 1: the channel's channels.stop is under way */
    bool waiting;  /* the timer runs (no transfer in flight) */
    struct revoke *next;
};

static struct revoke *pending; /* every revocation not finished */

static void send_one(struct revoke *r);

/* wipe - zero and free a secret string (NULL-safe) */
static void wipe(char *s)
{
    volatile char *p = s;

    if (s == NULL)
        return;
    while (*p != '\0')
        *p++ = '\0';
    tn_free(s);
}

/* sweeper_token_wipe - zero and free */
void sweeper_token_wipe(struct sweeper_token *t)
{
    wipe(t->value);
    wipe(t->access);
    tn_free(t->channel);
    tn_free(t->resource);
    t->value = t->access = t->channel = t->resource = NULL;
}

/* unlink_one - take r off the pending list */
static void unlink_one(struct revoke *r)
{
    for (struct revoke **pp = &pending; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
}

/* closed - the timer is closed: release r */
static void closed(uv_handle_t *h)
{
    struct revoke *r = h->data;

    sweeper_token_wipe(&r->token);
    tn_free(r);
}

/* finish - r is over (revoked, given up or abandoned) */
static void finish(struct revoke *r)
{
    r->ctx->revokes--;
    unlink_one(r);
    uv_close((uv_handle_t *)&r->timer, closed);
}

/* on_retry - the backoff ran out: send again */
static void on_retry(uv_timer_t *t)
{
    struct revoke *r = t->data;

    r->waiting = false;
    send_one(r);
}

/* retry_later - wait out the backoff of this attempt, then send again */
static void retry_later(struct revoke *r)
{
    r->waiting = true;
    uv_timer_start(&r->timer, on_retry, tn_backoff_delay(500, 60000, r->attempt), 0);
}

/* to_revoke - the channel is done with: step 2, or the end */
static void to_revoke(struct revoke *r)
{
    r->stopping = false;
    r->attempt = 0;
    wipe(r->token.access); /* the grant's access token is not needed any more */
    r->token.access = NULL;
    if (r->token.value == NULL)
        finish(r);
    else
        send_one(r);
}

/* on_stopped - channels.stop's answer */
static void on_stopped(struct revoke *r, long status, enum tn_err err)
{
    struct tn_log_ctx lc = {.tenant_id = r->token.tenant};
    bool transient = err != TN_OK || status == 429 || status >= 500;

    if ((status >= 200 && status <= 299) || status == 404) {
        tn_log_info(&lc, "sweeper.channel_stopped", TN_KV_STR("account", r->token.account),
                    TN_KV_STR("channel", r->token.channel), TN_KV_INT("http_status", status));
    } else if (transient && err != TN_ECANCELED && !r->ctx->draining &&
               r->attempt < r->ctx->cfg.revoke_attempts) {
        tn_log_warn(&lc, "sweeper.channel_stop_retry", TN_KV_STR("account", r->token.account),
                    TN_KV_INT("http_status", status), TN_KV_ERR(err),
                    TN_KV_INT("attempt", r->attempt));
        retry_later(r);
        return;
    } else {
        tn_log_error(&lc, "sweeper.channel_stop_failed", TN_KV_STR("account", r->token.account),
                     TN_KV_STR("channel", r->token.channel), TN_KV_INT("http_status", status),
                     TN_KV_ERR(err), TN_KV_INT("attempts", r->attempt));
    }
    to_revoke(r);
}

/* on_done - the provider's answer */
static void on_done(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct revoke *r = arg;
    long status = err == TN_OK ? resp->status : 0;

    if (r->stopping) {
        on_stopped(r, status, err);
        return;
    }
    if (status == 200 || status == 400) {
        tn_log_info(NULL, "sweeper.revoked", TN_KV_INT("http_status", status));
        tn_metric_inc(r->ctx->m.revoked);
        finish(r);
        return;
    }
    if (err == TN_ECANCELED || r->ctx->draining || r->attempt >= r->ctx->cfg.revoke_attempts) {
        tn_log_error(NULL, "sweeper.revoke_gave_up", TN_KV_INT("http_status", status),
                     TN_KV_ERR(err), TN_KV_INT("attempts", r->attempt));
        finish(r);
        return;
    }
    tn_log_warn(NULL, "sweeper.revoke_retry", TN_KV_INT("http_status", status), TN_KV_ERR(err),
                TN_KV_INT("attempt", r->attempt));
    retry_later(r);
}

/* form_body - "token=<percent-encoded value>" into b */
static void form_body(struct tn_buf *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";

    tn_buf_adds(b, "token=");
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';

        tn_buf_add(b, plain ? (const char *)p : esc, plain ? 1 : 3);
    }
}

/* stop_body - {"id","resourceId"} of the channel; new (tn_free) */
static char *stop_body(const struct sweeper_token *t)
{
    json_t *o = json_pack("{s:s, s:s}", "id", t->channel, "resourceId", t->resource);
    char *s = json_dumps(o, JSON_COMPACT), *out;

    json_decref(o);
    out = tn_xstrdup(s != NULL ? s : "{}");
    tn_free(s); /* jansson's buffer (tn_free is free) */
    return out;
}

/* send_stop - one channels.stop attempt with the grant's access token */
static void send_stop(struct revoke *r)
{
    char auth[4200], url[1200], *body = stop_body(&r->token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    enum tn_err err;

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->token.access);
    snprintf(url, sizeof(url), "%s/channels/stop", r->ctx->cfg.calendar_base);
    r->attempt++;
    err = tn_http_send(r->ctx->http,
                       &(struct tn_http_request){.method = "POST",
                                                 .url = url,
                                                 .headers = headers,
                                                 .body = body,
                                                 .body_len = strlen(body)},
                       on_done, r);
    tn_wipe(auth, sizeof(auth));
    tn_free(body);
    if (err != TN_OK)
        on_stopped(r, 0, err); /* no callback will come */
}

/* send_one - one attempt of the current step */
static void send_one(struct revoke *r)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct tn_buf body;
    enum tn_err err;

    if (r->stopping) {
        send_stop(r);
        return;
    }
    tn_buf_init(&body, 0);
    form_body(&body, r->token.value);
    r->attempt++;
    err = tn_http_send(r->ctx->http,
                       &(struct tn_http_request){.method = "POST",
                                                 .url = r->ctx->cfg.revoke_url,
                                                 .headers = headers,
                                                 .body = body.data,
                                                 .body_len = body.len},
                       on_done, r);
    memset(body.data, 0, body.len);
    tn_buf_free(&body);
    if (err != TN_OK) {
        tn_log_error(NULL, "sweeper.revoke_gave_up", TN_KV_ERR(err));
        finish(r);
    }
}

/* sweeper_revoke_start - one revocation per token */
void sweeper_revoke_start(struct sweeper_ctx *ctx, struct sweeper_token *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct revoke *r;

        if (tokens[i].value == NULL && tokens[i].channel == NULL) {
            sweeper_token_wipe(&tokens[i]);
            continue;
        }
        r = tn_xcalloc(1, sizeof(*r));
        r->ctx = ctx;
        r->token = tokens[i];
        r->stopping = r->token.channel != NULL && r->token.access != NULL;
        memset(&tokens[i], 0, sizeof(tokens[i]));
        uv_timer_init(ctx->loop, &r->timer);
        r->timer.data = r;
        r->next = pending;
        pending = r;
        ctx->revokes++;
        if (r->stopping)
            send_one(r);
        else
            to_revoke(r); /* no channel to stop: step 2 at once */
    }
}

/* sweeper_revoke_stop - abandon the revocations waiting for a retry */
void sweeper_revoke_stop(struct sweeper_ctx *ctx)
{
    struct revoke *r = pending, *next;

    (void)ctx;
    for (; r != NULL; r = next) {
        next = r->next;
        if (!r->waiting)
            continue; /* a transfer is in flight: its answer finishes it */
        tn_log_error(&(struct tn_log_ctx){.tenant_id = r->token.tenant}, "sweeper.revoke_abandoned",
                     TN_KV_STR("account", r->token.account), TN_KV_BOOL("stopping", r->stopping),
                     TN_KV_INT("attempts", r->attempt));
        uv_timer_stop(&r->timer);
        finish(r);
    }
}
