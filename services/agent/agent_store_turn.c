/*
 * NAME
 *	agent_store_turn - the turn's two transactions: claim/load and commit
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_pg_submit(ctx, agent_store_claim_work, done, turn);
 * DESCRIPTION
 *	Claim/load takes the conversation's row lease with a conditional
 *	UPDATE (free, expired, or already ours) and a token unique to this
 *	claim. While the quiet window since the last inbound message is not
 *	over it returns the time left (the lease stays ours). Then it loads
 *	every unprocessed inbound message in arrival order, and either settles
 *	them at once without the model (human takeover, opted-out contact) or
 *	loads what the prompt needs: profile, tenant time, lead, history.
 *
 *	Commit locks the conversation row only while the token still holds the
 *	lease, so a turn whose lease expired and was taken over can never
 *	write: at most one reply per batch of input, whatever the replicas do.
 *	In that one transaction it stores the reply (outbound_messages, unique
 *	idempotency key "turn:<last inbound message id>"), applies the tools'
 *	lead changes and the human flag, marks the batch processed, releases
 *	the lease and says whether input is left. The row lock is taken before
 *	the "input left?" statement, so that statement's snapshot sees every
 *	intake that committed while we waited for the lock (READ COMMITTED).
 * RUNS ON
 *	threadpool (Runs on: threadpool); touches only its turn's load/commit fields.
 * DIAGNOSTICS
 *	Errors are returned; TN_ECONFLICT means the lease was lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "agent.h"

/* agent_load_clear - free everything a load holds */
void agent_load_clear(struct agent_load *l)
{
    char **s[] = {&l->channel_kind, &l->business, &l->offer,    &l->hours,     &l->area,
                  &l->questions,    &l->tone,     &l->language, &l->extra,     &l->holding,
                  &l->tenant_name,  &l->tz,       &l->now_text, &l->lead_name, &l->lead_status,
                  &l->lead_answers, &l->services};

    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        tn_free(*s[i]);
        *s[i] = NULL;
    }
    for (size_t i = 0; i < l->nhist; i++) {
        tn_free(l->hist[i].type);
        tn_free(l->hist[i].body);
    }
    for (size_t i = 0; i < l->nfresh; i++) {
        tn_free(l->fresh[i].type);
        tn_free(l->fresh[i].body);
    }
    tn_free(l->hist);
    tn_free(l->fresh);
    memset(l, 0, sizeof(*l));
}

/* fresh_array - '{id,id,...}' of the batch, for = ANY($n::uuid[]) */
static char *fresh_array(const struct agent_load *l)
{
    struct tn_buf b;

    tn_buf_init(&b, 0);
    tn_buf_adds(&b, "{");
    for (size_t i = 0; i < l->nfresh; i++)
        tn_buf_printf(&b, "%s%s", i > 0 ? "," : "", l->fresh[i].id);
    tn_buf_adds(&b, "}");
    return tn_buf_steal(&b, NULL);
}

/* settle - mark the batch processed with outcome, release, report input left */
static enum tn_err settle(struct tn_pgconn *c, struct agent_turn *t, const char *outcome)
{
    struct pg_result *res = NULL;
    char *arr = fresh_array(&t->ld);
    enum tn_err err;

    err = agent_store_q(c,
                        "UPDATE messages SET processed_at = now(), agent_outcome = $3"
                        " WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND processed_at IS NULL",
                        3, (const char *const[]){t->tenant, arr, outcome}, &res);
    if (err == TN_OK)
        err = agent_store_q(
            c,
            "UPDATE conversations SET lease_owner = NULL, lease_until = NULL,"
            " has_unprocessed = EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = $1"
            " AND m.conversation_id = $2 AND m.direction = 'in' AND m.processed_at IS NULL)"
            " WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 RETURNING has_unprocessed",
            3, (const char *const[]){t->tenant, t->conv, t->token}, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ECONFLICT;
    if (err == TN_OK)
        t->has_more = strcmp(tn_pg_result_value(res, 0, 0), "t") == 0;
    tn_pg_result_free(res);
    tn_free(arr);
    return err;
}

/* claim - take or keep the lease; wait_ms > 0 while the burst goes on */
static enum tn_err claim(struct tn_pgconn *c, struct agent_turn *t)
{
    struct pg_result *res = NULL;
    char lease[24], quiet[24];
    enum tn_err err;

    snprintf(lease, sizeof(lease), "%lld", (long long)t->ctx->cfg.lease_ms);
    snprintf(quiet, sizeof(quiet), "%lld", (long long)t->ctx->cfg.quiet_ms);
    err = agent_store_q(c,
                        "UPDATE conversations SET lease_owner = $3,"
                        " lease_until = now() + make_interval(secs => $4 / 1000.0)"
                        " WHERE tenant_id = $1 AND id = $2 AND has_unprocessed"
                        " AND (lease_owner IS NULL OR lease_until < now() OR lease_owner = $3)"
                        " RETURNING GREATEST(0, $5 - extract(epoch FROM clock_timestamp() -"
                        " COALESCE(last_inbound_at, '-infinity')) * 1000)::bigint",
                        5, (const char *const[]){t->tenant, t->conv, t->token, lease, quiet}, &res);
    t->ld.claimed = err == TN_OK && tn_pg_result_rows(res) == 1;
    if (t->ld.claimed)
        t->ld.wait_ms = strtoll(tn_pg_result_value(res, 0, 0), NULL, 10);
    tn_pg_result_free(res);
    return err;
}

/* load_fresh - the unprocessed inbound messages, in arrival order */
static enum tn_err load_fresh(struct tn_pgconn *c, struct agent_turn *t)
{
    struct pg_result *res = NULL;
    char lim[16];
    enum tn_err err;

    snprintf(lim, sizeof(lim), "%d", AGENT_MAX_FRESH);
    err = agent_store_q(c,
                        "SELECT id, type, body, stream_pos FROM messages WHERE tenant_id = $1"
                        " AND conversation_id = $2 AND direction = 'in' AND processed_at IS NULL"
                        " ORDER BY stream_pos NULLS LAST, created_at LIMIT $3",
                        3, (const char *const[]){t->tenant, t->conv, lim}, &res);
    if (err != TN_OK)
        goto out;
    t->ld.nfresh = (size_t)tn_pg_result_rows(res);
    t->ld.fresh = tn_xcalloc(t->ld.nfresh + 1, sizeof(*t->ld.fresh));
    for (size_t i = 0; i < t->ld.nfresh; i++) {
        struct agent_hmsg *m = &t->ld.fresh[i];

        m->in = true;
        snprintf(m->id, sizeof(m->id), "%s", tn_pg_result_value(res, (int)i, 0));
        m->type = agent_store_dup(res, (int)i, 1);
        m->body = agent_store_dup(res, (int)i, 2);
        if (tn_pg_result_value(res, (int)i, 3) != NULL)
            t->ld.last_pos = strtoll(tn_pg_result_value(res, (int)i, 3), NULL, 10);
    }
out:
    tn_pg_result_free(res);
    return err;
}

/* load_state - ids, channel kind, and the reasons to stay silent */
static enum tn_err load_state(struct tn_pgconn *c, struct agent_turn *t, const char **silent)
{
    struct pg_result *res = NULL;
    enum tn_err err;

    *silent = NULL;
    err = agent_store_q(c,
                        "SELECT c.contact_id, c.channel_id, ch.kind, c.human_takeover,"
                        " ct.opted_out_at IS NOT NULL, ct.restricted_at IS NOT NULL"
                        " FROM conversations c"
                        " JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id"
                        " JOIN channels ch ON ch.tenant_id = c.tenant_id AND ch.id = c.channel_id"
                        " WHERE c.tenant_id = $1 AND c.id = $2",
                        2, (const char *const[]){t->tenant, t->conv}, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ENOTFOUND;
    if (err != TN_OK)
        goto out;
    snprintf(t->ld.contact, sizeof(t->ld.contact), "%s", tn_pg_result_value(res, 0, 0));
    snprintf(t->ld.channel, sizeof(t->ld.channel), "%s", tn_pg_result_value(res, 0, 1));
    t->ld.channel_kind = agent_store_dup(res, 0, 2);
    if (strcmp(tn_pg_result_value(res, 0, 5), "t") == 0)
        *silent = "restricted"; /* restriction of processing (tern-sweeper) */
    else if (strcmp(tn_pg_result_value(res, 0, 4), "t") == 0)
        *silent = "opted_out";
    else if (strcmp(tn_pg_result_value(res, 0, 3), "t") == 0)
        *silent = "human";
out:
    tn_pg_result_free(res);
    return err;
}

/* load_profile - tenant, agent profile, and the time in the tenant's zone
 * (Postgres applies the zone's rules; the setting is transaction-local) */
static enum tn_err load_profile(struct tn_pgconn *c, struct agent_turn *t)
{
    struct pg_result *res = NULL;
    struct agent_load *l = &t->ld;
    enum tn_err err;

    err = agent_store_q(c,
                        "SELECT t.name, t.time_zone, p.business_name, p.offer, p.hours_text,"
                        " p.service_area, p.qualification_questions::text, p.tone, p.language,"
                        " p.extra_instructions, p.holding_message FROM tenants t"
                        " LEFT JOIN agent_profiles p ON p.tenant_id = t.id WHERE t.id = $1",
                        1, (const char *const[]){t->tenant}, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ENOTFOUND;
    if (err != TN_OK)
        goto out;
    l->tenant_name = agent_store_dup(res, 0, 0);
    l->tz = agent_store_dup(res, 0, 1);
    l->business = agent_store_dup(res, 0, 2);
    l->offer = agent_store_dup(res, 0, 3);
    l->hours = agent_store_dup(res, 0, 4);
    l->area = agent_store_dup(res, 0, 5);
    l->questions = agent_store_dup(res, 0, 6);
    l->tone = agent_store_dup(res, 0, 7);
    l->language = agent_store_dup(res, 0, 8);
    l->extra = agent_store_dup(res, 0, 9);
    l->holding = agent_store_dup(res, 0, 10);
    err = agent_store_q(c,
                        "SELECT string_agg(name || ' (' || duration_min || ' min)', ', '"
                        " ORDER BY name) FROM services WHERE tenant_id = $1 AND active",
                        1, (const char *const[]){t->tenant}, &res);
    if (err != TN_OK)
        goto out;
    l->services = agent_store_dup(res, 0, 0);
    err = agent_store_q(c, "SELECT set_config('TimeZone', $1, true)", 1,
                        (const char *const[]){l->tz}, &res);
    if (err == TN_OK)
        err = agent_store_q(
            c, "SELECT to_char(now(), 'FMDay, YYYY-MM-DD HH24:MI \"(UTC\"TZH:TZM\")\"')", 0, NULL,
            &res);
    if (err == TN_OK)
        l->now_text = agent_store_dup(res, 0, 0);
out:
    tn_pg_result_free(res);
    return err;
}

/* load_lead - what is known about the lead (the email only as a flag) */
static enum tn_err load_lead(struct tn_pgconn *c, struct agent_turn *t)
{
    struct pg_result *res = NULL;
    enum tn_err err;

    err = agent_store_q(c,
                        "SELECT name, status, answers::text, email IS NOT NULL FROM leads"
                        " WHERE tenant_id = $1 AND contact_id = $2",
                        2, (const char *const[]){t->tenant, t->ld.contact}, &res);
    if (err == TN_OK && tn_pg_result_rows(res) == 1) {
        t->ld.lead_name = agent_store_dup(res, 0, 0);
        t->ld.lead_status = agent_store_dup(res, 0, 1);
        t->ld.lead_answers = agent_store_dup(res, 0, 2);
        t->ld.lead_has_email = strcmp(tn_pg_result_value(res, 0, 3), "t") == 0;
    }
    tn_pg_result_free(res);
    return err;
}

/* load_history - the last processed messages, oldest first */
static enum tn_err load_history(struct tn_pgconn *c, struct agent_turn *t)
{
    struct pg_result *res = NULL;
    char lim[16];
    enum tn_err err;

    snprintf(lim, sizeof(lim), "%lld", (long long)t->ctx->cfg.history_msgs);
    err = agent_store_q(c,
                        "SELECT direction = 'in', id, type, body FROM (SELECT * FROM messages"
                        " WHERE tenant_id = $1 AND conversation_id = $2"
                        " AND (direction = 'out' OR processed_at IS NOT NULL)"
                        " ORDER BY created_at DESC LIMIT $3) h ORDER BY created_at",
                        3, (const char *const[]){t->tenant, t->conv, lim}, &res);
    if (err != TN_OK)
        goto out;
    t->ld.nhist = (size_t)tn_pg_result_rows(res);
    t->ld.hist = tn_xcalloc(t->ld.nhist + 1, sizeof(*t->ld.hist));
    for (size_t i = 0; i < t->ld.nhist; i++) {
        struct agent_hmsg *m = &t->ld.hist[i];

        m->in = strcmp(tn_pg_result_value(res, (int)i, 0), "t") == 0;
        snprintf(m->id, sizeof(m->id), "%s", tn_pg_result_value(res, (int)i, 1));
        m->type = agent_store_dup(res, (int)i, 2);
        m->body = agent_store_dup(res, (int)i, 3);
    }
out:
    tn_pg_result_free(res);
    return err;
}

/* claim_and_load - the steps of the claim transaction */
static enum tn_err claim_and_load(struct tn_pgconn *c, struct agent_turn *t)
{
    const char *silent = NULL;
    enum tn_err err = claim(c, t);

    if (err != TN_OK || !t->ld.claimed || t->ld.wait_ms > 0)
        return err;
    err = load_fresh(c, t);
    if (err == TN_OK)
        err = load_state(c, t, &silent);
    if (err == TN_OK && (t->ld.nfresh == 0 || silent != NULL)) {
        t->ld.finished = true;
        t->outcome = silent;
        return settle(c, t, silent != NULL ? silent : "replied");
    }
    if (err == TN_OK)
        err = load_lead(c, t);
    if (err == TN_OK)
        err = load_history(c, t);
    if (err == TN_OK)
        err = load_profile(c, t); /* last: it changes the session time zone */
    return err;
}

/* agent_store_claim_work - claim the lease and load the turn's input */
enum tn_err agent_store_claim_work(struct tn_pgconn *c, void *arg)
{
    struct agent_turn *t = arg;
    enum tn_err err;

    agent_load_clear(&t->ld);
    err = tn_pgconn_begin_tenant(c, t->tenant);
    if (err != TN_OK)
        return err;
    err = claim_and_load(c, t);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    return err;
}

/* commit_lead - the validated update_lead fields, and the first response time */
static enum tn_err commit_lead(struct tn_pgconn *c, struct agent_turn *t)
{
    const char *name = json_string_value(json_object_get(t->lead, "name"));
    const char *email = json_string_value(json_object_get(t->lead, "email"));
    const char *status = json_string_value(json_object_get(t->lead, "status"));
    char *answers = agent_json_dump(json_object_get(t->lead, "answers"));
    enum tn_err err = TN_OK;

    if (t->lead != NULL)
        err = tn_pgconn_query(
            c,
            "UPDATE leads SET name = COALESCE($3, name), email = COALESCE($4,"
            " email), status = COALESCE($5, status), answers = answers ||"
            " COALESCE(NULLIF($6, 'null')::jsonb, '{}'), updated_at = now()"
            " WHERE tenant_id = $1 AND contact_id = $2",
            6, (const char *const[]){t->tenant, t->ld.contact, name, email, status, answers}, NULL);
    tn_free(answers);
    if (err == TN_OK)
        err = tn_pgconn_query(
            c,
            "UPDATE leads SET first_response_ms = LEAST(2147483647, extract(epoch FROM"
            " clock_timestamp() - m.first) * 1000)::int FROM (SELECT min(created_at) AS first"
            " FROM messages WHERE tenant_id = $1 AND conversation_id = $3 AND direction = 'in')"
            " m WHERE leads.tenant_id = $1 AND leads.contact_id = $2"
            " AND leads.first_response_ms IS NULL",
            3, (const char *const[]){t->tenant, t->ld.contact, t->conv}, NULL);
    return err;
}

/* commit_reply - store the reply and its effects; *silent when none is due */
static enum tn_err commit_reply(struct tn_pgconn *c, struct agent_turn *t, const char **outcome)
{
    struct pg_result *res = NULL;
    char key[64], out_id[AGENT_UUID_LEN];
    enum tn_err err;

    err = agent_store_q(c,
                        "SELECT ct.opted_out_at IS NOT NULL, c.human_takeover,"
                        " ct.restricted_at IS NOT NULL FROM conversations c"
                        " JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id"
                        " WHERE c.tenant_id = $1 AND c.id = $2 AND c.lease_owner = $3"
                        " FOR UPDATE OF c",
                        3, (const char *const[]){t->tenant, t->conv, t->token}, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ECONFLICT; /* the lease is gone: someone else answers */
    if (err != TN_OK)
        goto out;
    *outcome = strcmp(t->reason, "holding") == 0 ? "holding" : "replied";
    if (strcmp(tn_pg_result_value(res, 0, 2), "t") == 0)
        *outcome = "restricted"; /* processing restricted during the turn */
    else if (strcmp(tn_pg_result_value(res, 0, 0), "t") == 0)
        *outcome = "opted_out"; /* STOP arrived during the turn */
    else if (strcmp(tn_pg_result_value(res, 0, 1), "t") == 0)
        *outcome = "human"; /* a person took over during the turn */
    if (strcmp(*outcome, "opted_out") == 0 || strcmp(*outcome, "human") == 0 ||
        strcmp(*outcome, "restricted") == 0)
        goto out;
    snprintf(key, sizeof(key), "turn:%s", t->ld.fresh[t->ld.nfresh - 1].id);
    err = agent_store_outbound(c, t->tenant, t->conv, key, t->reply, t->reason, out_id);
    if (err == TN_OK)
        err = commit_lead(c, t);
    if (err == TN_OK && (t->handoff || strcmp(t->reason, "holding") == 0))
        err = tn_pgconn_query(c,
                              "UPDATE conversations SET human_takeover = true"
                              " WHERE tenant_id = $1 AND id = $2",
                              2, (const char *const[]){t->tenant, t->conv}, NULL);
    if (err == TN_OK)
        err = agent_store_out_load(c, t->tenant, out_id, &t->out);
out:
    tn_pg_result_free(res);
    return err;
}

/* agent_store_commit_work - the turn's result, atomically, if still ours */
enum tn_err agent_store_commit_work(struct tn_pgconn *c, void *arg)
{
    struct agent_turn *t = arg;
    const char *outcome = "replied";
    enum tn_err err;

    agent_out_free(t->out);
    t->out = NULL;
    err = tn_pgconn_begin_tenant(c, t->tenant);
    if (err != TN_OK)
        return err;
    err = commit_reply(c, t, &outcome);
    if (err == TN_OK)
        err = settle(c, t, outcome);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK) {
        tn_pgconn_rollback(c);
        agent_out_free(t->out);
        t->out = NULL;
    }
    t->outcome = outcome;
    return err;
}
