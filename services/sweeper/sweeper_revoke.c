/*
 * NAME
 *	sweeper_revoke - revoke OAuth grants at the provider, with retries
 * SYNOPSIS
 *	sweeper_revoke_start(ctx, tokens, n); sweeper_revoke_stop(ctx);
 * DESCRIPTION
 *	By the time a token gets here it is already gone from the database
 *	(sweeper_take_tokens committed first): the revocation is a courtesy
 *	to the provider and the user, and its failure never brings the token
 *	back. Each token is POSTed as token=<value> (form encoded) to
 *	TN_GOOGLE_REVOKE_URL; 200 is revoked, 400 means the provider does not
 *	know the token any more (expired or revoked already): both are done.
 *	Anything else (5xx, 429, a transport error) is retried with capped
 *	exponential backoff, TN_SWEEPER_REVOKE_ATTEMPTS times in all.
 *
 *	XXX: retries live in memory only, by design (no row may keep the
 *	token): a restart during the retries abandons them (logged).
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	sweeper.revoked, sweeper.revoke_retry, sweeper.revoke_gave_up,
 *	sweeper.revoke_abandoned (never with the token).
 */
#include <stdio.h>
#include <string.h>

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
    bool waiting; /* the timer runs (no transfer in flight) */
    struct revoke *next;
};

static struct revoke *pending; /* every revocation not finished */

static void send_one(struct revoke *r);

/* sweeper_token_wipe - zero and free */
void sweeper_token_wipe(struct sweeper_token *t)
{
    if (t->value != NULL) {
        volatile char *p = t->value;

        while (*p != '\0')
            *p++ = '\0';
        tn_free(t->value);
    }
    t->value = NULL;
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

/* on_done - the provider's answer */
static void on_done(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct revoke *r = arg;
    long status = err == TN_OK ? resp->status : 0;

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
    r->waiting = true;
    uv_timer_start(&r->timer, on_retry, tn_backoff_delay(500, 60000, r->attempt), 0);
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

/* send_one - one attempt */
static void send_one(struct revoke *r)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct tn_buf body;
    enum tn_err err;

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

        if (tokens[i].value == NULL)
            continue;
        r = tn_xcalloc(1, sizeof(*r));
        r->ctx = ctx;
        r->token = tokens[i];
        tokens[i].value = NULL;
        uv_timer_init(ctx->loop, &r->timer);
        r->timer.data = r;
        r->next = pending;
        pending = r;
        ctx->revokes++;
        send_one(r);
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
        tn_log_error(NULL, "sweeper.revoke_abandoned", TN_KV_INT("attempts", r->attempt));
        uv_timer_stop(&r->timer);
        finish(r);
    }
}
