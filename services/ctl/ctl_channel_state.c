/*
 * NAME
 *	ctl_channel_state - `ternctl channel secrets|disconnect|enable`
 * SYNOPSIS
 *	ternctl channel secrets --tenant T --id ID [--secret k=v ...]
 *	ternctl channel disconnect --tenant T --id ID [--wait SECONDS]
 *	ternctl channel enable --tenant T --id ID
 * DESCRIPTION
 *	A channel's life after `channel add` (ctl_channel.c), in place: the
 *	channel keeps its id, conversations and messages (a second channel of
 *	the same kind and address cannot exist, and `channel remove` is refused
 *	while the channel has history).
 *
 *	secrets changes a channel's secrets: the ones given replace those of
 *	the same name, the others are kept, and the whole set is sealed again
 *	under the ring's current key (aad "channel:<tenant_id>:<channel_id>").
 *	Without --secret it only seals again (after a new master key was put
 *	first). This is how a provider secret is rotated. The row is locked
 *	while it is read, opened, merged and written; tern-ingest picks the
 *	change up at its next routing refresh. It prints sealed:key<N>.
 *
 *	disconnect is what a business leaving a provider gets: the channel is
 *	disabled (tern-ingest no longer routes its webhooks, tern-sender fails
 *	its messages with channel_disabled) and its secrets are deleted; the
 *	row stays for its conversations and messages. A WhatsApp, Twilio or
 *	Telegram channel's secrets are the business's own and nothing is
 *	revoked: ternctl does it at once. A mailbox (email channel) may hold
 *	a Gmail grant, which must also end at Google, and tern-sweeper holds
 *	the revocation path (retried, like a calendar disconnect): ternctl
 *	records and enqueues a privacy disconnect of the channel
 *	(ctl_privacy.c), prints its request id, and with --wait waits for it
 *	(any other channel is disconnected when ternctl returns: --wait is
 *	then satisfied at once);
 *	tern-sweeper disables the channel, deletes the secrets and commits,
 *	then revokes the grant (sweeper_mailbox.c). enable turns a channel on
 *	again (after secrets gave it new secrets).
 *
 *	Each adds an audit_log row (actor ternctl, action channel.secrets,
 *	channel.disconnect or channel.enable, the channel id) in its
 *	transaction; a mailbox's disconnect is audited by tern-sweeper
 *	(privacy.disconnect). No secret is printed or logged.
 * RUNS ON
 *	CLI (blocking libpq; hiredis for a mailbox's disconnect).
 * DIAGNOSTICS
 *	Exit 0 ok; 1 no such channel, secrets that no key of the ring opens,
 *	nothing to seal, server down, or (a mailbox's disconnect) no usable
 *	TN_REDIS_URL; 64 usage; 78 missing configuration (TN_PG_DSN, the key
 *	ring for secrets).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_secrets.h>

#include "ctl.h"

#define CHANNEL_STATE_USAGE                                                                        \
    "channel secrets --tenant T --id ID [--secret k=v ...]\n"                                      \
    "       ternctl channel disconnect --tenant T --id ID [--wait SECONDS]\n"                      \
    "       ternctl channel enable --tenant T --id ID"

static const char sql_lock[] =
    "SELECT encode(secrets_sealed, 'hex') FROM channels WHERE tenant_id = $1 AND id::text = $2"
    " FOR UPDATE";

static const char sql_reseal[] =
    "UPDATE channels SET secrets_sealed = $3::bytea, secrets_key_id = $4::int"
    " WHERE tenant_id = $1 AND id::text = $2";

static const char sql_disconnect[] =
    "UPDATE channels SET enabled = false, secrets_sealed = NULL, secrets_key_id = NULL"
    " WHERE tenant_id = $1 AND id::text = $2";

static const char sql_enable[] =
    "UPDATE channels SET enabled = true WHERE tenant_id = $1 AND id::text = $2";

static const char sql_kind[] = "SELECT kind FROM channels WHERE tenant_id = $1 AND id::text = $2";

static const char sql_audit[] =
    "INSERT INTO audit_log (tenant_id, actor, action, detail)"
    " VALUES ($1, 'ternctl', $3, jsonb_build_object('channel_id', $2::text))";

/* merged - the channel's secrets (hex of the sealed bytes; NULL: none)
 * opened with k, with json's members set over them; new compact JSON text
 * (wipe and free it), or NULL when the stored ones do not open */
static char *merged(const struct tn_keyring *k, const char *tenant, const char *channel,
                    const char *hex, const char *json)
{
    json_t *o = hex != NULL ? tn_secrets_open(k, tenant, channel, hex) : json_object();
    json_t *add = json != NULL ? json_loads(json, 0, NULL) : NULL;
    char *text = NULL;
    size_t len;

    if (o == NULL)
        goto out;
    if (add != NULL)
        json_object_update(o, add);
    len = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
    text = tn_xmalloc(len + 1);
    json_dumpb(o, text, len, JSON_COMPACT | JSON_SORT_KEYS);
    text[len] = '\0';
out:
    tn_secrets_free(o);
    tn_secrets_free(add);
    return text;
}

/* reseal - under one lock: read the channel's secrets, merge json (may be
 * NULL), seal under k's current key and store; prints the key id */
static int reseal(struct tn_pgconn *c, const char *tid, const char *id, const char *json,
                  const struct tn_keyring *k)
{
    struct pg_result *res = NULL;
    char keyid[16], *text = NULL, *hex = NULL;
    enum tn_err err = tn_pgconn_begin(c);
    int rc = CTL_EX_FAIL;

    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_lock, 2, (const char *[]){tid, id}, &res);
    if (err != TN_OK) {
        rc = ctl_fail("channel secrets", err);
        goto out;
    }
    if (tn_pg_result_rows(res) != 1) {
        fprintf(stderr, "ternctl: the tenant has no channel '%s'\n", id);
        goto out;
    }
    if (tn_pg_result_value(res, 0, 0) == NULL && json == NULL) {
        fprintf(stderr, "ternctl: channel '%s' has no secrets to seal again\n", id);
        goto out;
    }
    text = merged(k, tid, id, tn_pg_result_value(res, 0, 0), json);
    if (text == NULL) {
        fprintf(stderr, "ternctl: channel '%s': no key of the master key ring opens its secrets\n",
                id);
        goto out;
    }
    hex = ctl_seal_hex(k, tid, id, text, keyid);
    err = TN_EINVAL;
    if (hex != NULL)
        err = tn_pgconn_query(c, sql_reseal, 4, (const char *[]){tid, id, hex, keyid}, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_audit, 3, (const char *[]){tid, id, "channel.secrets"}, NULL);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK) {
        rc = ctl_fail("channel secrets", err);
        goto out;
    }
    printf("sealed:key%s\n", keyid);
    rc = CTL_EX_OK;
out:
    if (text != NULL)
        tn_wipe(text, strlen(text));
    tn_free(text);
    tn_free(hex);
    tn_pg_result_free(res);
    tn_pgconn_rollback(c); /* nothing open after a commit */
    return rc;
}

/* ctl_channel_secrets - see ctl.h */
int ctl_channel_secrets(int argc, char **argv)
{
    const char *tenant = NULL, *id = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &tenant}, {"--id", false, &id}, {NULL}};
    const char *kv[CTL_CHANNEL_MAX_SECRETS];
    size_t nkv = 0;
    char tid[37];
    char *json = NULL;
    struct tn_keyring *ring = NULL;
    struct tn_pgconn *c = NULL;
    int rc;

    if (!ctl_parse_opts(argc, argv, opts, "--secret", kv, CTL_CHANNEL_MAX_SECRETS, &nkv) ||
        tenant == NULL || id == NULL)
        return ctl_usage(CHANNEL_STATE_USAGE);
    if (nkv > 0 && (json = ctl_secrets_json(kv, nkv)) == NULL)
        return ctl_usage("channel secrets ... --secret key=value (non-empty, unique keys)");
    rc = ctl_load_keyring(&ring);
    if (rc == CTL_EX_OK)
        rc = ctl_connect(&c);
    if (rc == CTL_EX_OK)
        rc = ctl_tenant_resolve(c, tenant, tid);
    if (rc == CTL_EX_OK)
        rc = reseal(c, tid, id, json, ring);
    if (json != NULL)
        tn_wipe(json, strlen(json)); /* plaintext secrets */
    tn_free(json);
    tn_keyring_free(ring);
    tn_pgconn_close(c);
    return rc;
}

/* channel_set - one UPDATE of the channel (sql) and its audit row
 * (action), in one transaction */
static int channel_set(struct tn_pgconn *c, const struct ctl_channel_ref *t, const char *sql,
                       const char *action)
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_begin(c);
    int rc = CTL_EX_OK;

    if (err == TN_OK)
        err = tn_pgconn_query(c, sql, 2, (const char *[]){t->tid, t->id}, &res);
    if (err == TN_OK && tn_pg_result_affected(res) != 1) {
        fprintf(stderr, "ternctl: tenant '%s' has no channel '%s'\n", t->tenant, t->id);
        rc = CTL_EX_FAIL;
        goto out;
    }
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_audit, 3, (const char *[]){t->tid, t->id, action}, NULL);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK)
        rc = ctl_fail(action, err);
out:
    tn_pg_result_free(res);
    tn_pgconn_rollback(c); /* nothing open after a commit */
    return rc;
}

/* is_mailbox - whether the tenant's channel t is an email channel into
 * *yes (false also when there is no such channel: channel_set then says
 * so); an exit code, not OK when the lookup failed */
static int is_mailbox(struct tn_pgconn *c, const struct ctl_channel_ref *t, bool *yes)
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_kind, 2, (const char *[]){t->tid, t->id}, &res);

    *yes = err == TN_OK && tn_pg_result_rows(res) == 1 &&
           strcmp(tn_pg_result_value(res, 0, 0), "email") == 0;
    tn_pg_result_free(res);
    return err == TN_OK ? CTL_EX_OK : ctl_fail("channel disconnect", err);
}

/* ctl_channel_disconnect - see ctl.h. --wait matters for a mailbox only:
 * any other channel is disconnected when ternctl returns. */
int ctl_channel_disconnect(int argc, char **argv)
{
    struct ctl_channel_ref t;
    struct tn_pgconn *c = NULL;
    bool mailbox = false;
    int rc = ctl_channel_target(argc, argv, CHANNEL_STATE_USAGE, &t, &c);

    if (rc == CTL_EX_OK)
        rc = is_mailbox(c, &t, &mailbox);
    if (rc == CTL_EX_OK && !mailbox)
        rc = channel_set(c, &t, sql_disconnect, "channel.disconnect");
    tn_pgconn_close(c);
    if (rc != CTL_EX_OK || !mailbox)
        return rc;
    rc = ctl_privacy_channel_disconnect(t.tenant, t.id, t.wait);
    if (rc == CTL_EX_OK)
        fprintf(stderr, "ternctl: tern-sweeper disables the mailbox, deletes its secrets and"
                        " revokes its Gmail grant at Google; an SMTP password is not revoked"
                        " anywhere: change it at the mail provider\n");
    return rc;
}

/* ctl_channel_enable - see ctl.h */
int ctl_channel_enable(int argc, char **argv)
{
    struct ctl_channel_ref t;
    struct tn_pgconn *c = NULL;
    int rc = ctl_channel_target(argc, argv, CHANNEL_STATE_USAGE, &t, &c);

    if (rc == CTL_EX_OK && t.wait != NULL)
        rc = ctl_usage(CHANNEL_STATE_USAGE);
    if (rc == CTL_EX_OK)
        rc = channel_set(c, &t, sql_enable, "channel.enable");
    tn_pgconn_close(c);
    return rc;
}
