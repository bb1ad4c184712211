/*
 * NAME
 *	agent_store - Postgres work of the intake, the scan and the outbox
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_pg_submit(ctx, agent_store_intake_work, done, intake);
 * DESCRIPTION
 *	Every function here is a threadpool work function (or a helper one
 *	calls inside its open transaction). Tenant data is only touched in a
 *	transaction bound to the tenant (row-level security); the scan reads
 *	ids through the SECURITY DEFINER functions of 0002_agent.sql.
 *
 *	The single intake (a keyword, or a plain message whose batch failed,
 *	agent_intake_batch.c) is one call of tern_agent_intake() (proto/sql/
 *	0011_agent_perf.sql), in autocommit for a plain message: check the
 *	channel belongs to the tenant, upsert the contact by (tenant, kind,
 *	address), create the lead on first contact, find or create the
 *	conversation, insert the message (a repeated provider message id
 *	changes nothing), then mark the message silent for an opted-out or
 *	restricted contact, or flag the conversation as having unprocessed
 *	input. An opt-out/opt-in keyword runs the call inside a tenant
 *	transaction and records the consent change (and the SMS confirmation)
 *	in the same transaction.
 * RUNS ON
 *	threadpool (Runs on: threadpool), one pooled connection per job.
 * DIAGNOSTICS
 *	Errors are returned; tn_pg logs the SQLSTATE.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "agent.h"

/* agent_store_q - run one statement, replacing *res */
enum tn_err agent_store_q(struct tn_pgconn *c, const char *sql, int n, const char *const *p,
                          struct pg_result **res)
{
    tn_pg_result_free(*res);
    *res = NULL;
    return tn_pgconn_query(c, sql, n, p, res);
}

/* agent_store_dup - copy of a value (NULL stays NULL) */
char *agent_store_dup(const struct pg_result *res, int row, int col)
{
    const char *v = tn_pg_result_value(res, row, col);

    return v != NULL ? tn_xstrdup(v) : NULL;
}

/* copy_id - a uuid value into a fixed buffer */
static void copy_id(char out[AGENT_UUID_LEN], const struct pg_result *res, int row, int col)
{
    const char *v = tn_pg_result_value(res, row, col);

    snprintf(out, AGENT_UUID_LEN, "%s", v != NULL ? v : "");
}

/* agent_out_free - release an outbound (NULL-safe) */
void agent_out_free(struct agent_out *o)
{
    if (o == NULL)
        return;
    tn_free(o->channel);
    tn_free(o->channel_kind);
    tn_free(o->to);
    tn_free(o->conversation);
    tn_free(o->contact);
    tn_free(o->text);
    tn_free(o->reason);
    tn_free(o->created_at);
    tn_free(o->not_before);
    tn_free(o->trace);
    tn_free(o);
}

/* agent_store_outbound - outbound row + its messages row, idempotent on key */
enum tn_err agent_store_outbound(struct tn_pgconn *c, const char *tenant, const char *conv,
                                 const char *key, const char *body, const char *reason,
                                 char out_id[AGENT_UUID_LEN])
{
    struct pg_result *res = NULL;
    const char *p[5] = {tenant, conv, key, body, reason};
    enum tn_err err;

    err = agent_store_q(
        c,
        "INSERT INTO outbound_messages (tenant_id, conversation_id, contact_id, channel_id,"
        " idempotency_key, body, producer, reason)"
        " SELECT $1, id, contact_id, channel_id, $3, $4, 'agent', $5 FROM conversations"
        " WHERE tenant_id = $1 AND id = $2"
        " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id",
        5, p, &res);
    if (err != TN_OK)
        goto out;
    if (tn_pg_result_rows(res) == 0) { /* the same turn ran before: reuse its row */
        err = agent_store_q(c,
                            "SELECT id FROM outbound_messages WHERE tenant_id = $1 AND "
                            "idempotency_key = $3 AND $2::uuid IS NOT NULL",
                            3, p, &res);
        if (err == TN_OK && tn_pg_result_rows(res) != 1)
            err = TN_ENOTFOUND;
        if (err == TN_OK)
            copy_id(out_id, res, 0, 0);
        goto out;
    }
    copy_id(out_id, res, 0, 0);
    p[2] = out_id;
    err = agent_store_q(c,
                        "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction,"
                        " body, outbound_id, processed_at)"
                        " SELECT $1, id, channel_id, 'out', $4, $3, now() FROM conversations"
                        " WHERE tenant_id = $1 AND id = $2",
                        4, p, &res);
out:
    tn_pg_result_free(res);
    return err;
}

/* agent_store_out_load - the outbound row as a tern:out entry */
enum tn_err agent_store_out_load(struct tn_pgconn *c, const char *tenant, const char *id,
                                 struct agent_out **out)
{
    struct pg_result *res = NULL;
    const char *p[2] = {tenant, id};
    struct agent_out *o;
    enum tn_err err;

    *out = NULL;
    err = agent_store_q(
        c,
        "SELECT o.channel_id, ch.kind, ct.address, o.conversation_id, o.contact_id, o.body,"
        " COALESCE(o.reason, 'reply'),"
        " to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
        " CASE WHEN o.not_before > now() THEN"
        " to_char(o.not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') END"
        " FROM outbound_messages o"
        " JOIN channels ch ON ch.tenant_id = o.tenant_id AND ch.id = o.channel_id"
        " JOIN contacts ct ON ct.tenant_id = o.tenant_id AND ct.id = o.contact_id"
        " WHERE o.tenant_id = $1 AND o.id = $2",
        2, p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ENOTFOUND;
    if (err != TN_OK)
        goto out;
    o = tn_xcalloc(1, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "%s", id);
    snprintf(o->tenant, sizeof(o->tenant), "%s", tenant);
    o->channel = agent_store_dup(res, 0, 0);
    o->channel_kind = agent_store_dup(res, 0, 1);
    o->to = agent_store_dup(res, 0, 2);
    o->conversation = agent_store_dup(res, 0, 3);
    o->contact = agent_store_dup(res, 0, 4);
    o->text = agent_store_dup(res, 0, 5);
    o->reason = agent_store_dup(res, 0, 6);
    o->created_at = agent_store_dup(res, 0, 7);
    o->not_before = agent_store_dup(res, 0, 8);
    *out = o;
out:
    tn_pg_result_free(res);
    return err;
}

/* intake_keyword - record the consent change and, on SMS unless the contact
 * is restricted (no reply of any kind), queue the confirmation */
static enum tn_err intake_keyword(struct tn_pgconn *c, struct agent_intake *in, const char *contact,
                                  const char *msg_id, bool confirm)
{
    bool out = in->keyword == AGENT_KW_OPTOUT;
    const char *p[4] = {in->tenant, contact, msg_id, out ? "opt_out" : "opt_in"};
    char key[64], out_id[AGENT_UUID_LEN];
    const char *text;
    enum tn_err err;

    err = tn_pgconn_query(c,
                          "INSERT INTO consent_events (tenant_id, contact_id, kind, source)"
                          " VALUES ($1, $2, $3, 'keyword')",
                          3, (const char *const[]){p[0], p[1], p[3]}, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c,
                              "UPDATE contacts SET opted_out_at = CASE WHEN $3 = 'opt_out'"
                              " THEN now() END WHERE tenant_id = $1 AND id = $2",
                              3, (const char *const[]){p[0], p[1], p[3]}, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c,
                              "UPDATE messages SET processed_at = now(), agent_outcome = $3"
                              " WHERE tenant_id = $1 AND id = $2",
                              3, (const char *const[]){p[0], p[2], p[3]}, NULL);
    if (err != TN_OK || !confirm || strcmp(in->transport, "sms") != 0)
        return err;
    snprintf(key, sizeof(key), "%s:%s", out ? "optout" : "optin", msg_id);
    text = out ? in->ctx->cfg.optout_text : in->ctx->cfg.optin_text;
    err = agent_store_outbound(c, in->tenant, in->conv, key, text, "notice", out_id);
    if (err == TN_OK)
        err = tn_pgconn_query(
            c,
            "UPDATE outbound_messages o SET body = COALESCE(CASE WHEN $3 = 'opt_out'"
            " THEN p.optout_confirmation ELSE p.optin_confirmation END, o.body)"
            " FROM agent_profiles p WHERE o.tenant_id = $1 AND o.id = $2"
            " AND p.tenant_id = o.tenant_id",
            3, (const char *const[]){in->tenant, out_id, p[3]}, NULL);
    if (err == TN_OK)
        err = agent_store_out_load(c, in->tenant, out_id, &in->confirm);
    return err;
}

/* keyword_name - the keyword as tern_agent_intake() takes it */
static const char *keyword_name(enum agent_keyword k)
{
    return k == AGENT_KW_OPTOUT ? "opt_out" : k == AGENT_KW_OPTIN ? "opt_in" : "none";
}

/* intake_store - tern_agent_intake(): contact, lead, conversation, message
 * and, without a keyword, the flag or the silent outcome */
static enum tn_err intake_store(struct tn_pgconn *c, struct agent_intake *in,
                                char contact[AGENT_UUID_LEN], char msg_id[AGENT_UUID_LEN],
                                const char **silent)
{
    struct pg_result *res = NULL;
    const char *p[12] = {in->tenant,    in->channel, in->sender,     in->sender_name,
                         in->transport, in->pmid,    in->mtype,      in->body,
                         in->media_ref, in->raw,     in->stream_pos, keyword_name(in->keyword)};
    const char *kw, *sil;
    enum tn_err err;

    err = agent_store_q(c,
                        "SELECT contact, conversation, message, silent, keyword FROM"
                        " tern_agent_intake($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb,"
                        " $11, $12)",
                        12, p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ENOTFOUND; /* not the tenant's channel, or disabled */
    if (err != TN_OK)
        goto out;
    copy_id(contact, res, 0, 0);
    copy_id(in->conv, res, 0, 1);
    copy_id(msg_id, res, 0, 2);
    sil = tn_pg_result_value(res, 0, 3);
    *silent = sil == NULL ? NULL : strcmp(sil, "restricted") == 0 ? "restricted" : "opted_out";
    kw = tn_pg_result_value(res, 0, 4);
    in->keyword = strcmp(kw, "opt_out") == 0  ? AGENT_KW_OPTOUT
                  : strcmp(kw, "opt_in") == 0 ? AGENT_KW_OPTIN
                                              : AGENT_KW_NONE;
out:
    tn_pg_result_free(res);
    return err;
}

/* agent_store_intake_work - one call in autocommit for plain messages; a
 * keyword adds its steps in the same transaction */
enum tn_err agent_store_intake_work(struct tn_pgconn *c, void *arg)
{
    struct agent_intake *in = arg;
    char contact[AGENT_UUID_LEN], msg_id[AGENT_UUID_LEN];
    const char *silent = NULL;
    bool tx = in->keyword != AGENT_KW_NONE;
    enum tn_err err = TN_OK;

    if (tx)
        err = tn_pgconn_begin_tenant(c, in->tenant);
    if (err != TN_OK)
        return err;
    err = intake_store(c, in, contact, msg_id, &silent);
    if (err != TN_OK || msg_id[0] == '\0')
        goto out; /* a repeat: nothing else to do */
    in->inserted = true;
    in->wake = in->keyword == AGENT_KW_NONE && silent == NULL;
    if (in->keyword != AGENT_KW_NONE)
        err = intake_keyword(c, in, contact, msg_id,
                             silent == NULL || strcmp(silent, "restricted") != 0);
out:
    if (err == TN_OK && tx)
        err = tn_pgconn_commit(c);
    if (err != TN_OK) {
        tn_pgconn_rollback(c);
        in->wake = false;
        in->inserted = false;
        agent_out_free(in->confirm);
        in->confirm = NULL;
    }
    return err;
}

/* ids - copy (tenant, id) rows of res into a new array */
static size_t ids(const struct pg_result *res, char (**out)[2][AGENT_UUID_LEN])
{
    size_t n = (size_t)tn_pg_result_rows(res);

    *out = n > 0 ? tn_xcalloc(n, sizeof(**out)) : NULL;
    for (size_t i = 0; i < n; i++) {
        copy_id((*out)[i][0], res, (int)i, 0);
        copy_id((*out)[i][1], res, (int)i, 1);
    }
    return n;
}

/* agent_store_scan_work - due conversations and unpublished replies */
enum tn_err agent_store_scan_work(struct tn_pgconn *c, void *arg)
{
    struct agent_scan *s = arg;
    struct pg_result *res = NULL;
    char lim[16], older[24];
    enum tn_err err;

    snprintf(lim, sizeof(lim), "%d", s->lim);
    snprintf(older, sizeof(older), "%lld", (long long)s->republish_ms);
    err = agent_store_q(c, "SELECT tenant_id, conversation_id FROM tern_agent_due($1)", 1,
                        (const char *const[]){lim}, &res);
    if (err == TN_OK)
        s->ndue = ids(res, &s->due);
    if (err == TN_OK)
        err = agent_store_q(c, "SELECT tenant_id, outbound_id FROM tern_agent_unpublished($1, $2)",
                            2, (const char *const[]){older, lim}, &res);
    if (err == TN_OK)
        s->nunpub = ids(res, &s->unpub);
    if (err == TN_OK)
        err = agent_store_q(c, "SELECT tenant_id, booking_id FROM tern_agent_unnotified($1, $2)", 2,
                            (const char *const[]){older, lim}, &res);
    if (err == TN_OK)
        s->nunnot = ids(res, &s->unnot);
    tn_pg_result_free(res);
    return err;
}

/* agent_store_renew_work - extend our lease; held = false when it is gone */
enum tn_err agent_store_renew_work(struct tn_pgconn *c, void *arg)
{
    struct agent_renew *r = arg;
    struct pg_result *res = NULL;
    char ms[24];
    enum tn_err err;

    snprintf(ms, sizeof(ms), "%lld", (long long)r->lease_ms);
    err = tn_pgconn_begin_tenant(c, r->tenant);
    if (err != TN_OK)
        return err;
    err = agent_store_q(c,
                        "UPDATE conversations SET lease_until = now() + make_interval(secs => $4 /"
                        " 1000.0) WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3",
                        4, (const char *const[]){r->tenant, r->conv, r->token, ms}, &res);
    r->held = err == TN_OK && tn_pg_result_affected(res) == 1;
    tn_pg_result_free(res);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    return err;
}

/* agent_store_repub_work - load one forgotten reply */
enum tn_err agent_store_repub_work(struct tn_pgconn *c, void *arg)
{
    struct agent_repub *r = arg;
    enum tn_err err = tn_pgconn_begin_tenant(c, r->tenant);

    if (err != TN_OK)
        return err;
    err = agent_store_out_load(c, r->tenant, r->id, &r->out);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK) {
        tn_pgconn_rollback(c);
        agent_out_free(r->out);
        r->out = NULL;
    }
    return err;
}
