/*
 * NAME
 *	sweeper_tokens - delete stored OAuth tokens, keeping them in memory
 *	only long enough to revoke them
 * SYNOPSIS
 *	err = sweeper_disconnect_work(c, job);
 *	err = sweeper_take_tokens(c, keys, tenant, account, tokens, room, &n);
 * DESCRIPTION
 *	A disconnect clears the account's sealed access and refresh tokens
 *	(and its expiry and sync cursor), sets needs_reconnect and
 *	disconnected_at, and commits before anything is sent to the provider:
 *	the tokens are gone from the database whatever the revocation does.
 *	Before the update, a Google account's refresh token (or its access
 *	token when there is none) is opened with the key ring (aad
 *	"oauth:<tenant>:<id>:refresh|access") for sweeper_revoke.c; without
 *	the key ring, or when it does not open, the token is deleted unrevoked
 *	(logged). A redelivered disconnect finds no token and does nothing.
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

static const char sql_tokens[] =
    "SELECT id, provider, refresh_token_sealed, access_token_sealed FROM oauth_accounts"
    " WHERE ($1::uuid IS NULL OR id = $1::uuid)"
    " AND (refresh_token_sealed IS NOT NULL OR access_token_sealed IS NOT NULL)"
    " LIMIT $2::int FOR UPDATE";

static const char sql_clear[] =
    "UPDATE oauth_accounts SET access_token_sealed = NULL, refresh_token_sealed = NULL,"
    " key_id = NULL, expires_at = NULL, sync_cursor = NULL, needs_reconnect = true,"
    " disconnected_at = now(), updated_at = now() WHERE id = $1::uuid";

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

/* sweeper_take_tokens - clear, and keep the Google tokens to revoke */
enum tn_err sweeper_take_tokens(struct tn_pgconn *c, const struct tn_keyring *keys,
                                const char *tenant, const char *account,
                                struct sweeper_token *tokens, size_t room, size_t *n)
{
    struct pg_result *res = NULL;
    char lim[24];
    enum tn_err err;

    *n = 0;
    if (room == 0)
        return TN_OK;
    snprintf(lim, sizeof(lim), "%zu", room);
    err = tn_pgconn_query(c, sql_tokens, 2, (const char *[]){account, lim}, &res);
    for (int i = 0; err == TN_OK && i < tn_pg_result_rows(res); i++) {
        const char *id = tn_pg_result_value(res, i, 0);
        const char *refresh = tn_pg_result_value(res, i, 2);
        char *t = NULL;

        if (strcmp(tn_pg_result_value(res, i, 1), "google") == 0) {
            t = refresh != NULL ? open_token(keys, tenant, id, "refresh", refresh)
                                : open_token(keys, tenant, id, "access",
                                             tn_pg_result_value(res, i, 3));
            if (t == NULL)
                tn_log_warn(&(struct tn_log_ctx){.tenant_id = tenant}, "sweeper.revoke_skipped",
                            TN_KV_STR("account", id));
        }
        if (t != NULL) /* at most room rows: LIMIT */
            tokens[(*n)++].value = t;
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
    enum tn_err err;

    err = tn_pgconn_query(c, sql_account, 1, (const char *[]){job->account}, &res);
    if (err == TN_OK && tn_pg_result_rows(res) == 0)
        job->fail = "no_such_account";
    tn_pg_result_free(res);
    if (err != TN_OK || job->fail != NULL)
        return err;
    err = sweeper_take_tokens(c, job->ctx->keys, job->tenant, job->account, job->tokens,
                              SWEEPER_MAX_TOKENS, &job->ntokens);
    if (err != TN_OK)
        return err;
    snprintf(receipt, sizeof(receipt), "{\"request\":\"%s\",\"to_revoke\":%zu}", job->request,
             job->ntokens);
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
        err = disconnect(c, job);
    if (err == TN_OK && job->fail == NULL && !done)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    if (err != TN_OK || job->fail != NULL) {
        for (size_t i = 0; i < job->ntokens; i++)
            sweeper_token_wipe(&job->tokens[i]);
        job->ntokens = 0; /* not deleted: nothing to revoke yet */
    }
    return err;
}
