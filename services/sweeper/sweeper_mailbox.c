/*
 * NAME
 *	sweeper_mailbox - disconnect a messaging channel: disable it, delete
 *	its secrets, and keep a mailbox's Gmail grant long enough to revoke it
 * SYNOPSIS
 *	err = sweeper_channel_disconnect(c, job);   (in sweeper_disconnect_work)
 *	err = sweeper_take_mailboxes(c, keys, tenant, tokens, room, &n, &more);
 * DESCRIPTION
 *	A channel's secrets (channels.secrets_sealed, aad
 *	"channel:<tenant>:<channel>") are the business's own provider
 *	credentials, except for a mailbox connected to Gmail: its
 *	"refresh_token" (or, without one, its "access_token") is a grant the
 *	business gave Tern at Google, and a disconnect must end it there too
 *	(Google's revoke endpoint ends the refresh token and every access token
 *	of the grant, protocols.md 4).
 *
 *	A channel disconnect (privacy.request kind disconnect with channel_id)
 *	locks the channel row, opens its secrets with the key ring, takes the
 *	grant, sets enabled = false and the sealed secrets to NULL, marks the
 *	request done with its receipt and audit row, and commits before anything
 *	is sent to Google: the secrets are gone from the database whatever the
 *	revocation does (sweeper_revoke.c, retried). A channel of another kind
 *	(WhatsApp, Twilio, Telegram, an SMTP mailbox) is disabled and cleared
 *	the same way, with nothing to revoke. A redelivered request finds the
 *	row done and does nothing.
 *
 *	Offboarding (sweeper_sweep.c) takes every email channel's grant of the
 *	tenant the same way, before the channel rows are deleted.
 *
 *	Without the key ring, or when the secrets do not open, they are deleted
 *	unrevoked (logged, sweeper.revoke_skipped).
 * RUNS ON
 *	Runs on: threadpool.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_secrets.h>

#include "sweeper.h"

/* One channel ($1), or (NULL) every email channel still holding secrets. */
static const char sql_lock[] =
    "SELECT id, kind, encode(secrets_sealed, 'hex') FROM channels"
    " WHERE ($1::uuid IS NULL AND kind = 'email' AND secrets_sealed IS NOT NULL)"
    " OR id = $1::uuid ORDER BY id LIMIT $2::int FOR UPDATE";

static const char sql_clear[] =
    "UPDATE channels SET enabled = false, secrets_sealed = NULL, secrets_key_id = NULL"
    " WHERE id = $1::uuid";

/* take_grant - the Gmail grant in the secrets of email channel id (hex of
 * the sealed bytes, may be NULL) into t; false when there is none to
 * revoke. A mailbox with an smtp_url is an SMTP one (sender_email.c picks
 * the transport the same way): its secrets hold no Google grant. */
static bool take_grant(const struct tn_keyring *keys, const char *tenant, const char *id,
                       const char *hex, struct sweeper_token *t)
{
    json_t *s = hex != NULL ? tn_secrets_open(keys, tenant, id, hex) : NULL;
    const char *grant = NULL;

    memset(t, 0, sizeof(*t));
    if (s == NULL) {
        if (hex != NULL)
            tn_log_warn(&(struct tn_log_ctx){.tenant_id = tenant}, "sweeper.revoke_skipped",
                        TN_KV_STR("channel", id));
        return false;
    }
    if (json_object_get(s, "smtp_url") == NULL) { /* Gmail: the refresh token, else the access */
        grant = json_string_value(json_object_get(s, "refresh_token"));
        if (grant == NULL)
            grant = json_string_value(json_object_get(s, "access_token"));
    }
    if (grant != NULL && grant[0] != '\0') {
        t->value = tn_xstrdup(grant);
        snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
        snprintf(t->account, sizeof(t->account), "%s", id);
    }
    tn_secrets_free(s);
    return t->value != NULL;
}

/* take - lock the channels sql_lock picks (channel, or NULL: every mailbox
 * with secrets; at most room), clear them and move their grants to tokens */
static enum tn_err take(struct tn_pgconn *c, const struct tn_keyring *keys, const char *tenant,
                        const char *channel, struct sweeper_token *tokens, size_t room, size_t *n,
                        int *rows)
{
    struct pg_result *res = NULL;
    char lim[24];
    enum tn_err err;

    *n = 0;
    snprintf(lim, sizeof(lim), "%zu", room);
    err = tn_pgconn_query(c, sql_lock, 2, (const char *[]){channel, lim}, &res);
    *rows = err == TN_OK ? tn_pg_result_rows(res) : 0;
    for (int i = 0; err == TN_OK && i < *rows; i++) {
        const char *id = tn_pg_result_value(res, i, 0);

        /* only a mailbox holds a Google grant: a WhatsApp access_token is Meta's */
        if (strcmp(tn_pg_result_value(res, i, 1), "email") == 0 &&
            take_grant(keys, tenant, id, tn_pg_result_value(res, i, 2), &tokens[*n]))
            (*n)++; /* at most room rows: LIMIT */
        err = tn_pgconn_query(c, sql_clear, 1, (const char *[]){id}, NULL);
    }
    tn_pg_result_free(res);
    return err;
}

/* sweeper_take_mailboxes - see sweeper.h */
enum tn_err sweeper_take_mailboxes(struct tn_pgconn *c, const struct tn_keyring *keys,
                                   const char *tenant, struct sweeper_token *tokens, size_t room,
                                   size_t *n, bool *more)
{
    int rows = 0;
    enum tn_err err = TN_OK;

    *n = 0;
    if (room > 0)
        err = take(c, keys, tenant, NULL, tokens, room, n, &rows);
    *more = room == 0 || (size_t)rows == room; /* not looked, or LIMIT reached */
    return err;
}

/* sweeper_channel_disconnect - see sweeper.h */
enum tn_err sweeper_channel_disconnect(struct tn_pgconn *c, struct sweeper_job *job)
{
    char receipt[200];
    int rows = 0;
    enum tn_err err = take(c, job->ctx->keys, job->tenant, job->channel, job->tokens,
                           SWEEPER_MAX_TOKENS, &job->ntokens, &rows);

    if (err != TN_OK)
        return err;
    if (rows == 0) {
        job->fail = "no_such_channel";
        return TN_OK;
    }
    snprintf(receipt, sizeof(receipt), "{\"request\":\"%s\",\"channel\":\"%s\",\"to_revoke\":%zu}",
             job->request, job->channel, job->ntokens);
    job->purged = 1;
    return sweeper_request_finish(c, job, "privacy.disconnect", receipt);
}
