/*
 * NAME
 *	sweeper_tokens - delete stored OAuth tokens, keeping them in memory
 *	only long enough to revoke them
 * SYNOPSIS
 *	err = sweeper_disconnect_work(c, job);
 *	err = sweeper_take_tokens(c, keys, tenant, account, tokens, room, &n, &more);
 * DESCRIPTION
 *	A disconnect clears the account's sealed access and refresh tokens
 *	(and its expiry and sync cursor) and forgets its Google push channel
 *	(push_* columns: tern_calendar_channels no longer lists it, so
 *	tern-ingest answers 404 to its pushes once its routing cache
 *	refreshes), sets needs_reconnect and disconnected_at, and commits
 *	before anything is sent to the provider: the tokens are gone from the
 *	database whatever the revocation does.
 *	Before the update, a Google account's refresh token (or its access
 *	token when there is none) is opened with the key ring (aad
 *	"oauth:<tenant>:<id>:refresh|access") for sweeper_revoke.c; without
 *	the key ring, or when it does not open, the token is deleted unrevoked
 *	(logged). When the account has a push channel and its access token is
 *	valid for another minute, the access token and the channel's id and
 *	resourceId go along too: sweeper_revoke.c stops the channel
 *	(channels.stop needs a live access token of the grant) before it
 *	revokes the grant. A redelivered disconnect finds nothing and does
 *	nothing.
 *
 *	XXX: with an expired access token the channel is not stopped: a fresh
 *	token needs the client secret, which only tern-calsync holds (R24).
 *	The revocation of the grant is then what ends the channel at Google
 *	(not documented by Google); at the latest it ends at push_expires_at
 *	(TN_CALSYNC_WATCH_TTL, 7 days by default), and its pushes get 404
 *	from tern-ingest and reach no stream meanwhile.
 * RUNS ON
 *	Runs on: threadpool.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "sweeper.h"

/* Columns: id, provider, sealed refresh, sealed access, channel id, its
 * resourceId, whether the access token lives for another minute. */
static const char sql_tokens[] =
    "SELECT id, provider, refresh_token_sealed, access_token_sealed, push_channel_id,"
    " push_resource_id, COALESCE(expires_at > now() + interval '1 minute', false)"
    " FROM oauth_accounts WHERE ($1::uuid IS NULL OR id = $1::uuid)"
    " AND (refresh_token_sealed IS NOT NULL OR access_token_sealed IS NOT NULL"
    "  OR push_channel_id IS NOT NULL)"
    " LIMIT $2::int FOR UPDATE";

static const char sql_clear[] =
    "UPDATE oauth_accounts SET access_token_sealed = NULL, refresh_token_sealed = NULL,"
    " key_id = NULL, expires_at = NULL, sync_cursor = NULL, needs_reconnect = true,"
    " push_channel_id = NULL, push_resource_id = NULL, push_token_hash = NULL,"
    " push_expires_at = NULL, disconnected_at = now(), updated_at = now() WHERE id = $1::uuid";

static const char sql_account[] = "SELECT 1 FROM oauth_accounts WHERE id = $1::uuid";

/* open_token - the plaintext of a sealed bytea ("\x..." text), or NULL */
static char *open_token(const struct tn_keyring *keys, const char *tenant, const char *id,
                        const char *which, const char *hex)
{
    unsigned char *sealed = NULL, *pt = NULL;
    size_t slen = 0, plen = 0;
    char aad[128];

    if (keys == NULL || hex == NULL || strncmp(hex, "\\x", 2) != 0)
        return NULL;
    if (tn_hex_decode(hex + 2, strlen(hex) - 2, &sealed, &slen) != TN_OK)
        return NULL;
    snprintf(aad, sizeof(aad), "oauth:%s:%s:%s", tenant, id, which);
    if (tn_open(keys, aad, strlen(aad), sealed, slen, &pt, &plen) != TN_OK) {
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = tenant}, "sweeper.token_unopened",
                    TN_KV_STR("account", id));
        pt = NULL;
    }
    tn_free(sealed);
    return (char *)pt;
}

/* take_channel - the push channel of row i and the access token to stop it
 * with, into t (nothing when there is no channel or no live access token) */
static void take_channel(struct pg_result *res, int i, const struct tn_keyring *keys,
                         const char *tenant, struct sweeper_token *t)
{
    const char *id = tn_pg_result_value(res, i, 0);
    const char *ch = tn_pg_result_value(res, i, 4), *rs = tn_pg_result_value(res, i, 5);
    bool live = strcmp(tn_pg_result_value(res, i, 6), "t") == 0;

    if (ch == NULL || rs == NULL)
        return;
    if (live)
        t->access = open_token(keys, tenant, id, "access", tn_pg_result_value(res, i, 3));
    if (t->access == NULL) {
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = tenant}, "sweeper.channel_stop_skipped",
                    TN_KV_STR("account", id), TN_KV_STR("channel", ch),
                    TN_KV_STR("reason", live ? "access_token_unopened" : "access_token_expired"));
        return;
    }
    t->channel = tn_xstrdup(ch);
    t->resource = tn_xstrdup(rs);
}

/* take_google - what row i (a Google account) leaves to do at the provider */
static void take_google(struct pg_result *res, int i, const struct tn_keyring *keys,
                        const char *tenant, struct sweeper_token *t)
{
    const char *id = tn_pg_result_value(res, i, 0);
    const char *refresh = tn_pg_result_value(res, i, 2);
    const char *access = tn_pg_result_value(res, i, 3);

    memset(t, 0, sizeof(*t));
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    snprintf(t->account, sizeof(t->account), "%s", id);
    if (refresh != NULL || access != NULL)
        t->value = refresh != NULL ? open_token(keys, tenant, id, "refresh", refresh)
                                   : open_token(keys, tenant, id, "access", access);
    if (t->value == NULL && (refresh != NULL || access != NULL))
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = tenant}, "sweeper.revoke_skipped",
                    TN_KV_STR("account", id));
    take_channel(res, i, keys, tenant, t);
}

/* sweeper_take_tokens - clear, and keep what the provider must be told */
enum tn_err sweeper_take_tokens(struct tn_pgconn *c, const struct tn_keyring *keys,
                                const char *tenant, const char *account,
                                struct sweeper_token *tokens, size_t room, size_t *n, bool *more)
{
    struct pg_result *res = NULL;
    char lim[24];
    enum tn_err err;

    *n = 0;
    *more = room == 0; /* not looked: there may be some */
    if (room == 0)
        return TN_OK;
    snprintf(lim, sizeof(lim), "%zu", room);
    err = tn_pgconn_query(c, sql_tokens, 2, (const char *[]){account, lim}, &res);
    *more = err == TN_OK && (size_t)tn_pg_result_rows(res) == room;
    for (int i = 0; err == TN_OK && i < tn_pg_result_rows(res); i++) {
        const char *id = tn_pg_result_value(res, i, 0);

        if (strcmp(tn_pg_result_value(res, i, 1), "google") == 0) {
            struct sweeper_token *t = &tokens[*n]; /* at most room rows: LIMIT */

            take_google(res, i, keys, tenant, t);
            if (t->value != NULL || t->channel != NULL)
                (*n)++;
        }
        err = tn_pgconn_query(c, sql_clear, 1, (const char *[]){id}, NULL);
    }
    tn_pg_result_free(res);
    return err;
}

/* disconnect - inside the tenant transaction */
static enum tn_err disconnect(struct tn_pgconn *c, struct sweeper_job *job)
{
    struct pg_result *res = NULL;
    char receipt[200];
    size_t nrevoke = 0, nstop = 0;
    bool more; /* one account: LIMIT is never the bound */
    enum tn_err err;

    err = tn_pgconn_query(c, sql_account, 1, (const char *[]){job->account}, &res);
    if (err == TN_OK && tn_pg_result_rows(res) == 0)
        job->fail = "no_such_account";
    tn_pg_result_free(res);
    if (err != TN_OK || job->fail != NULL)
        return err;
    err = sweeper_take_tokens(c, job->ctx->keys, job->tenant, job->account, job->tokens,
                              SWEEPER_MAX_TOKENS, &job->ntokens, &more);
    if (err != TN_OK)
        return err;
    for (size_t i = 0; i < job->ntokens; i++) {
        nrevoke += job->tokens[i].value != NULL;
        nstop += job->tokens[i].channel != NULL;
    }
    snprintf(receipt, sizeof(receipt),
             "{\"request\":\"%s\",\"to_revoke\":%zu,\"channels_to_stop\":%zu}", job->request,
             nrevoke, nstop);
    job->purged = 1;
    return sweeper_request_finish(c, job, "privacy.disconnect", receipt);
}

/* sweeper_disconnect_work - one tenant transaction; tokens stay in job */
enum tn_err sweeper_disconnect_work(struct tn_pgconn *c, struct sweeper_job *job)
{
    bool done = false;
    enum tn_err err = tn_pgconn_begin_tenant(c, job->tenant);

    if (err != TN_OK)
        return err;
    err = sweeper_request_done_already(c, job, &done);
    if (err == TN_OK && !done)
        err = job->channel[0] != '\0' ? sweeper_channel_disconnect(c, job) : disconnect(c, job);
    if (err == TN_OK && job->fail == NULL && !done)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    if (err != TN_OK || job->fail != NULL) {
        /* XXX: a COMMIT that failed on the way back after the server made
         * it durable leaves the tokens deleted and, wiped here, unrevoked */
        for (size_t i = 0; i < job->ntokens; i++)
            sweeper_token_wipe(&job->tokens[i]);
        job->ntokens = 0; /* not deleted: nothing to revoke yet */
    }
    return err;
}
