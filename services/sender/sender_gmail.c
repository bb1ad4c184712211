/*
 * NAME
 *	sender_gmail - fresh Gmail access tokens from a channel's refresh token
 * SYNOPSIS
 *	#include "sender.h"
 *	if (sender_gmail_token(job, rejected, then)) return;   (sender_send.c)
 * DESCRIPTION
 *	A Gmail channel's sealed secrets hold "access_token" and may hold
 *	"refresh_token" and "expires_at" (epoch seconds). The prepare step
 *	builds the request with the stored access token (sender_email.c);
 *	sender_send.c asks here before the call when the token is known
 *	expired (expires_at within a minute) and again after a 401 (the
 *	message was not accepted). Once per job:
 *	  - a newer token this process already has for the channel (another
 *	    job refreshed it) goes into the request at once;
 *	  - else, with a refresh token and TN_GOOGLE_CLIENT_ID/_SECRET, the
 *	    job waits for the channel's refresh: POST TN_GOOGLE_TOKEN_URL
 *	    (grant_type=refresh_token, protocols.md 4.3) through tn_http on
 *	    the loop (tn_oauth_token_refresh), the answer classified by
 *	    tn_oauth_token_read. One refresh is in flight per channel; the
 *	    jobs that need one meanwhile join its wait list and all get its
 *	    outcome.
 *	A new access token (and expires_at from expires_in; a rotated
 *	refresh token too, when it differs from the one sent) is sealed into
 *	channels.secrets_sealed (aad
 *	"channel:<tenant>:<channel>", the other secrets kept) before the
 *	waiters continue, so the next prepare reads it; the write is skipped
 *	when the stored refresh token changed meanwhile (a reconnect), and a
 *	failed write only costs another refresh later (logged). The waiters
 *	then send with the new token; their attempt was counted once, at
 *	'sending', and a 401 was not an acceptance, so nothing goes twice.
 *
 *	invalid_grant (400) means the refresh token is dead (protocols.md
 *	4.4): the waiting messages fail final "gmail_reauth", the event
 *	sender.gmail_reauth is logged once per refusal, and the refused
 *	token is remembered here, so later messages of the channel fail the
 *	same way after their 401 without asking Google again (until the
 *	channel's secrets carry another refresh token). 429, 5xx and network
 *	failures are retries ("gmail_token_unavailable"); other refusals
 *	(invalid_client: our configuration; a 200 without a usable token)
 *	retry too, "gmail_token_refused", and end dead after
 *	TN_SENDER_MAX_ATTEMPTS (replayable).
 *	XXX: the single flight is per process; two replicas may each refresh
 *	the same channel once (Google accepts both, and both tokens work).
 * RUNS ON
 *	loop; the secrets' update on the threadpool (save_work).
 * DIAGNOSTICS
 *	sender.gmail_token_refreshed (info), sender.gmail_token_refresh_failed,
 *	sender.gmail_token_save_failed, sender.gmail_reauth (warn). Tokens and
 *	the client secret are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth_token.h>
#include <tn/tn_pg.h>
#include <tn/tn_secrets.h>
#include <tn/tn_time.h>

#include "sender.h"

#define EXPIRY_MARGIN_S 60 /* a token with less left than this is expired */

/* One Gmail channel's token state; lives until sender_fini. */
struct sender_gtoken {
    struct sender_gtoken *next;
    struct sender_ctx *ctx;
    char tenant[SENDER_UUID_LEN + 1], channel[SENDER_UUID_LEN + 1];
    char *access; /* the newest access token known here, or NULL */
    int64_t exp_s;
    char *dead_refresh; /* a refresh token Google answered invalid_grant, or NULL */
    /* the refresh in flight: the refresh token used, the answer, the waiters */
    bool refreshing;
    char *refresh;
    char *new_access, *new_refresh;
    int64_t new_exp_s;
    bool stored; /* save_work wrote the secrets */
    struct sender_job *waiters;
};

static const char sql_lock[] = "SELECT encode(secrets_sealed, 'hex') FROM channels"
                               " WHERE tenant_id = $1 AND id = $2 FOR UPDATE";

static const char sql_save[] = "UPDATE channels SET secrets_sealed = decode($3, 'hex'),"
                               " secrets_key_id = $4::int WHERE tenant_id = $1 AND id = $2";

/* entry_for - the state of a channel, created on first use */
static struct sender_gtoken *entry_for(struct sender_ctx *ctx, const char *tenant,
                                       const char *channel)
{
    struct sender_gtoken *e;

    for (e = ctx->gtokens; e != NULL; e = e->next) {
        if (strcmp(e->channel, channel) == 0 && strcmp(e->tenant, tenant) == 0)
            return e;
    }
    e = tn_xcalloc(1, sizeof(*e));
    e->ctx = ctx;
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    snprintf(e->channel, sizeof(e->channel), "%s", channel);
    e->next = ctx->gtokens;
    ctx->gtokens = e;
    return e;
}

/* set_result - job's answer when no fresh token came: v with code */
static void set_result(struct sender_job *job, enum sender_verdict v, const char *code)
{
    memset(&job->res, 0, sizeof(job->res));
    job->res.v = v;
    snprintf(job->res.code, sizeof(job->res.code), "%s", code);
}

/* wake - the refresh ended: every waiter gets e->access (code NULL) or
 * the verdict v with code; the flight's state is released */
static void wake(struct sender_gtoken *e, enum sender_verdict v, const char *code)
{
    struct sender_job *job = e->waiters, *next;

    e->waiters = NULL;
    e->refreshing = false;
    tn_free_secret(e->refresh);
    e->refresh = NULL;
    for (; job != NULL; job = next) {
        next = job->token_next;
        job->token_next = NULL;
        if (code == NULL) {
            sender_gmail_set_token(&job->req, e->access);
            job->token_then(job, true);
        } else {
            set_result(job, v, code);
            job->token_then(job, false);
        }
    }
}

/* seal_secrets - secrets (borrowed) with the flight's new tokens, sealed
 * for e's channel. Returns: new hex, NULL when sealing failed. */
static char *seal_secrets(const struct sender_gtoken *e, json_t *secrets)
{
    char exp[24], *text, *hex;

    snprintf(exp, sizeof(exp), "%lld", (long long)e->new_exp_s);
    json_object_set_new(secrets, "access_token", json_string(e->new_access));
    json_object_set_new(secrets, "expires_at", json_string(exp));
    if (e->new_refresh != NULL)
        json_object_set_new(secrets, "refresh_token", json_string(e->new_refresh));
    text = sender_json_text(secrets);
    hex = tn_secrets_seal_hex(e->ctx->keys, e->tenant, e->channel, text);
    tn_free_secret(text);
    return hex;
}

/* save_work - seal the new tokens into the channel's secrets, unless its
 * refresh token changed meanwhile. tn_pg_work_fn. Runs on: threadpool;
 * touches e's flight fields and the immutable key ring only. */
static enum tn_err save_work(struct tn_pgconn *c, void *arg)
{
    struct sender_gtoken *e = arg;
    const char *p[4] = {e->tenant, e->channel, NULL, NULL};
    struct pg_result *res = NULL;
    json_t *secrets = NULL;
    char *hex = NULL, keyid[16];
    const char *stored;
    enum tn_err err;

    err = tn_pgconn_begin_tenant(c, e->tenant);
    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, sql_lock, 2, p, &res);
    if (err != TN_OK)
        goto out;
    secrets = tn_pg_result_rows(res) == 1 ? tn_secrets_open(e->ctx->keys, e->tenant, e->channel,
                                                            tn_pg_result_value(res, 0, 0))
                                          : NULL;
    stored = sender_secret(secrets, "refresh_token");
    if (secrets == NULL || stored == NULL || strcmp(stored, e->refresh) != 0)
        goto out; /* gone, unreadable or reconnected: leave the row alone */
    hex = seal_secrets(e, secrets);
    if (hex == NULL) {
        err = TN_EINVAL;
        goto out;
    }
    snprintf(keyid, sizeof(keyid), "%u", (unsigned)tn_keyring_current(e->ctx->keys));
    p[2] = hex;
    p[3] = keyid;
    err = tn_pgconn_query(c, sql_save, 4, p, NULL);
    if (err == TN_OK)
        e->stored = true;
out:
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    tn_secrets_free(secrets);
    tn_free(hex);
    tn_pg_result_free(res);
    return err;
}

/* saved - the new token is stored (or not): it becomes the channel's
 * newest, and the waiters send with it. Runs on: loop. */
static void saved(enum tn_err err, void *arg)
{
    struct sender_gtoken *e = arg;
    struct tn_log_ctx lc = {.tenant_id = e->tenant};

    if (err != TN_OK)
        tn_log_warn(&lc, "sender.gmail_token_save_failed", TN_KV_STR("channel", e->channel),
                    TN_KV_ERR(err));
    else
        tn_log_info(&lc, "sender.gmail_token_refreshed", TN_KV_STR("channel", e->channel),
                    TN_KV_BOOL("stored", e->stored));
    tn_free_secret(e->access);
    e->access = e->new_access;
    e->exp_s = e->new_exp_s;
    e->new_access = NULL;
    tn_free_secret(e->new_refresh);
    e->new_refresh = NULL;
    wake(e, SENDER_V_OK, NULL);
}

/* refused - invalid_grant: the refresh token is dead */
static void refused(struct sender_gtoken *e)
{
    struct tn_log_ctx lc = {.tenant_id = e->tenant};

    tn_log_warn(&lc, "sender.gmail_reauth", TN_KV_STR("channel", e->channel),
                TN_KV_STR("reason", "invalid_grant"),
                TN_KV_STR("effect", "the channel's messages fail until it is connected again"));
    tn_free_secret(e->dead_refresh);
    e->dead_refresh = tn_xstrdup(e->refresh);
    wake(e, SENDER_V_FINAL, "gmail_reauth");
}

/* failed - a refresh that may work later */
static void failed(struct sender_gtoken *e, const char *code, long status, enum tn_err err)
{
    struct tn_log_ctx lc = {.tenant_id = e->tenant};

    tn_log_warn(&lc, "sender.gmail_token_refresh_failed", TN_KV_STR("channel", e->channel),
                TN_KV_INT("http_status", status), TN_KV_STR("code", code), TN_KV_ERR(err));
    wake(e, SENDER_V_RETRY, code);
}

/* on_token - the token endpoint's answer (tn_oauth_token_read). Runs on: loop */
static void on_token(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct sender_gtoken *e = arg;
    struct tn_oauth_token t;

    tn_oauth_token_read(resp, err, tn_now_ms() / 1000, &t);
    switch (t.outcome) {
    case TN_OAUTH_TOKEN_OK:
        e->new_access = t.access;
        t.access = NULL;
        if (t.refresh != NULL && strcmp(t.refresh, e->refresh) != 0) {
            e->new_refresh = t.refresh; /* rotated: kept only when it differs */
            t.refresh = NULL;
        }
        e->new_exp_s = t.expires_s;
        e->stored = false;
        if (tn_pg_submit(e->ctx->pg, save_work, saved, e) != TN_OK)
            saved(TN_ECANCELED, e);
        break;
    case TN_OAUTH_TOKEN_DEAD_GRANT:
        refused(e);
        break;
    case TN_OAUTH_TOKEN_UNAVAILABLE:
        failed(e, "gmail_token_unavailable", t.status, err != TN_OK ? err : TN_EUNAVAIL);
        break;
    case TN_OAUTH_TOKEN_REFUSED:
        failed(e, "gmail_token_refused", t.status, TN_EPROTO); /* invalid_client, ... */
        break;
    }
    tn_oauth_token_clear(&t);
}

/* start_refresh - POST grant_type=refresh_token with refresh (borrowed) */
static void start_refresh(struct sender_gtoken *e, const char *refresh)
{
    const struct sender_cfg *cfg = &e->ctx->cfg;
    struct tn_http *h;
    enum tn_err err;

    e->refreshing = true;
    e->refresh = tn_xstrdup(refresh);
    h = sender_http(e->ctx);
    err = h == NULL ? TN_ECANCELED
                    : tn_oauth_token_refresh(h, cfg->google_token_url, cfg->google_client_id,
                                             cfg->google_client_secret, refresh,
                                             (uint32_t)cfg->http_timeout_ms, on_token, e);
    if (err != TN_OK)
        failed(e, "gmail_token_unavailable", 0, err);
}

/* newer - the channel's newest token, if it is not the job's and not expired */
static const char *newer(const struct sender_gtoken *e, const struct sender_req *r, int64_t now_s)
{
    if (e->access == NULL || e->exp_s - now_s < EXPIRY_MARGIN_S)
        return NULL;
    return strcmp(e->access, r->gm_access) != 0 ? e->access : NULL;
}

/* sender_gmail_token - see sender.h */
bool sender_gmail_token(struct sender_job *job, bool rejected, sender_token_fn *then)
{
    struct sender_ctx *ctx = job->ctx;
    struct sender_req *r = &job->req;
    int64_t now_s = tn_now_ms() / 1000;
    struct sender_gtoken *e;
    const char *fresh;

    if (r->gm_access == NULL || job->token_renewed)
        return false;
    if (!rejected && (r->gm_exp_s == 0 || r->gm_exp_s - now_s >= EXPIRY_MARGIN_S))
        return false;
    e = entry_for(ctx, job->tenant, job->channel);
    if (rejected && e->access != NULL && strcmp(e->access, r->gm_access) == 0)
        e->exp_s = 0; /* the newest token known here is the one refused */
    fresh = newer(e, r, now_s);
    if (fresh != NULL) {
        job->token_renewed = true;
        sender_gmail_set_token(r, fresh);
        then(job, true);
        return true;
    }
    if (r->gm_refresh == NULL || ctx->cfg.google_client_id[0] == '\0' ||
        ctx->cfg.google_client_secret[0] == '\0')
        return false;
    job->token_renewed = true;
    if (e->dead_refresh != NULL && strcmp(e->dead_refresh, r->gm_refresh) == 0) {
        set_result(job, SENDER_V_FINAL, "gmail_reauth"); /* refused before: do not ask again */
        then(job, false);
        return true;
    }
    job->token_then = then;
    job->token_next = e->waiters;
    e->waiters = job;
    if (!e->refreshing)
        start_refresh(e, r->gm_refresh);
    return true;
}

/* sender_gmail_free_all - see sender.h */
void sender_gmail_free_all(struct sender_ctx *ctx)
{
    struct sender_gtoken *e = ctx->gtokens, *next;

    for (; e != NULL; e = next) {
        next = e->next;
        if (e->refreshing)
            continue; /* XXX: its save is still on the threadpool (drain timed out): leaked */
        tn_free_secret(e->access);
        tn_free_secret(e->dead_refresh);
        tn_free(e);
    }
    ctx->gtokens = NULL;
}
