/*
 * NAME
 *	agent_store_turn - the turn's two transactions: claim/load and commit
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_pg_submit(ctx, agent_store_claim_work, done, turn);
 * DESCRIPTION
 *	Claim/load is one call of tern_agent_claim() (proto/sql/
 *	0011_agent_perf.sql) in autocommit: it takes the conversation's row
 *	lease with a conditional UPDATE (free, expired, or already ours) and a
 *	token unique to this claim; while the quiet window since the last
 *	inbound message is not over it returns the time left (the lease stays
 *	ours). Otherwise it returns, as jsonb, every unprocessed inbound
 *	message in arrival order, the conversation's state and, unless the turn
 *	is settled at once without the model (human takeover, opted-out or
 *	restricted contact, no input), what the prompt needs: profile, tenant
 *	time, lead, history. A waiting voice note adds one small tenant
 *	transaction that opens the channel's secrets.
 *
 *	Commit is one call of tern_agent_commit(): it locks the conversation
 *	row only while the token still holds the lease, so a turn whose lease
 *	expired and was taken over can never write: at most one reply per
 *	batch of input, whatever the replicas do. In that one transaction it
 *	stores the reply (outbound_messages, unique idempotency key
 *	"turn:<last inbound message id>"), the transcripts, the tools' lead
 *	changes and the human flag, marks the batch processed, releases the
 *	lease and says whether input is left. The row lock is taken before the
 *	"input left?" statement, and each statement of the function takes a new
 *	snapshot, so it sees every intake that committed while we waited for
 *	the lock (READ COMMITTED).
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

/* hmsg_clear - free one message's strings */
static void hmsg_clear(struct agent_hmsg *m)
{
    tn_free(m->type);
    tn_free(m->body);
    tn_free(m->media_ref);
    tn_free(m->transcript);
}

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
    for (size_t i = 0; i < l->nhist; i++)
        hmsg_clear(&l->hist[i]);
    for (size_t i = 0; i < l->nfresh; i++)
        hmsg_clear(&l->fresh[i]);
    tn_free_secret(l->media_user);
    tn_free_secret(l->media_token);
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

/* settle - tern_agent_settle(): processed marks, release, input left */
static enum tn_err settle(struct tn_pgconn *c, struct agent_turn *t, const char *outcome)
{
    struct pg_result *res = NULL;
    char *arr = fresh_array(&t->ld);
    enum tn_err err;

    err = agent_store_q(c, "SELECT tern_agent_settle($1, $2, $3, $4::uuid[], $5)", 5,
                        (const char *const[]){t->tenant, t->conv, t->token, arr, outcome}, &res);
    if (err == TN_OK && tn_pg_result_value(res, 0, 0) == NULL)
        err = TN_ECONFLICT; /* the lease is not ours */
    if (err == TN_OK)
        t->has_more = strcmp(tn_pg_result_value(res, 0, 0), "t") == 0;
    tn_pg_result_free(res);
    tn_free(arr);
    return err;
}

/* jdup - a new copy of a string member, NULL when absent or null */
static char *jdup(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));

    return v != NULL ? tn_xstrdup(v) : NULL;
}

/* jid - a uuid member into a fixed buffer ("" when absent) */
static void jid(char out[AGENT_UUID_LEN], const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));

    snprintf(out, AGENT_UUID_LEN, "%s", v != NULL ? v : "");
}

/* load_msgs - a JSON array of messages into a new array of n */
static struct agent_hmsg *load_msgs(const json_t *a, size_t *n, bool fresh)
{
    struct agent_hmsg *out;
    const json_t *m;
    size_t i;

    *n = json_array_size(a);
    out = tn_xcalloc(*n + 1, sizeof(*out));
    json_array_foreach(a, i, m)
    {
        out[i].in = fresh || json_is_true(json_object_get(m, "in"));
        jid(out[i].id, m, "id");
        out[i].type = jdup(m, "type");
        out[i].body = jdup(m, "body");
        out[i].transcript = jdup(m, "transcript");
        if (fresh)
            out[i].media_ref = jdup(m, "media_ref");
    }
    return out;
}

/* load_profile - the tenant's profile and time */
static void load_profile(struct agent_load *l, const json_t *p)
{
    l->tenant_name = jdup(p, "tenant_name");
    l->tz = jdup(p, "tz");
    l->business = jdup(p, "business");
    l->offer = jdup(p, "offer");
    l->hours = jdup(p, "hours");
    l->area = jdup(p, "area");
    l->questions = jdup(p, "questions");
    l->tone = jdup(p, "tone");
    l->language = jdup(p, "language");
    l->extra = jdup(p, "extra");
    l->holding = jdup(p, "holding");
}

/* load_json - what tern_agent_claim() returned into the turn's load;
 * *silent: why no turn is due (NULL: none) */
static void load_json(struct agent_turn *t, const json_t *j, const char **silent)
{
    struct agent_load *l = &t->ld;
    const json_t *lead = json_object_get(j, "lead"), *fresh = json_object_get(j, "fresh");
    const char *s = json_string_value(json_object_get(j, "silent"));

    l->claimed = json_is_true(json_object_get(j, "claimed"));
    l->wait_ms = json_integer_value(json_object_get(j, "wait_ms"));
    if (!l->claimed || l->wait_ms > 0)
        return;
    *silent = s == NULL                      ? NULL
              : strcmp(s, "restricted") == 0 ? "restricted"
              : strcmp(s, "opted_out") == 0  ? "opted_out"
                                             : "human";
    jid(l->contact, j, "contact");
    jid(l->channel, j, "channel");
    l->channel_kind = jdup(j, "kind");
    l->fresh = load_msgs(fresh, &l->nfresh, true);
    if (l->nfresh > 0)
        l->last_pos =
            json_integer_value(json_object_get(json_array_get(fresh, l->nfresh - 1), "pos"));
    l->hist = load_msgs(json_object_get(j, "history"), &l->nhist, false);
    load_profile(l, json_object_get(j, "profile"));
    l->services = jdup(j, "services");
    l->now_text = jdup(j, "now_text");
    if (json_is_object(lead)) {
        l->lead_name = jdup(lead, "name");
        l->lead_status = jdup(lead, "status");
        l->lead_answers = jdup(lead, "answers");
        l->lead_has_email = json_is_true(json_object_get(lead, "has_email"));
    }
}

/* claim - tern_agent_claim(): the lease and the turn's input, one call */
static enum tn_err claim(struct tn_pgconn *c, struct agent_turn *t, const char **silent)
{
    const struct agent_cfg *cfg = &t->ctx->cfg;
    struct pg_result *res = NULL;
    char lease[24], quiet[24], fresh[16], hist[16];
    json_t *j;
    enum tn_err err;

    snprintf(lease, sizeof(lease), "%lld", (long long)cfg->lease_ms);
    snprintf(quiet, sizeof(quiet), "%lld", (long long)cfg->quiet_ms);
    snprintf(fresh, sizeof(fresh), "%d", AGENT_MAX_FRESH);
    snprintf(hist, sizeof(hist), "%lld", (long long)cfg->history_msgs);
    err = agent_store_q(
        c, "SELECT tern_agent_claim($1, $2, $3, $4, $5, $6, $7)::text", 7,
        (const char *const[]){t->tenant, t->conv, t->token, lease, quiet, fresh, hist}, &res);
    if (err != TN_OK)
        goto out;
    j = json_loads(tn_pg_result_value(res, 0, 0), 0, NULL);
    if (!json_is_object(j))
        err = TN_EPROTO;
    else
        load_json(t, j, silent);
    json_decref(j);
out:
    tn_pg_result_free(res);
    return err;
}

/* voice_secrets - the channel's media credentials, in a tenant transaction */
static enum tn_err voice_secrets(struct tn_pgconn *c, struct agent_turn *t)
{
    enum tn_err err = tn_pgconn_begin_tenant(c, t->tenant);

    if (err != TN_OK)
        return err;
    err = agent_voice_secrets(c, t->ctx, t->tenant, &t->ld);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    return err;
}

/* agent_store_claim_work - claim the lease and load the turn's input (one
 * call); settle at once when there is nothing for the model */
enum tn_err agent_store_claim_work(struct tn_pgconn *c, void *arg)
{
    struct agent_turn *t = arg;
    const char *silent = NULL;
    enum tn_err err;

    agent_load_clear(&t->ld);
    err = claim(c, t, &silent);
    if (err != TN_OK || !t->ld.claimed || t->ld.wait_ms > 0)
        return err;
    if (t->ld.nfresh == 0 || silent != NULL) {
        t->ld.finished = true;
        t->outcome = silent;
        return settle(c, t, silent != NULL ? silent : "replied");
    }
    if (agent_voice_pending(&t->ld))
        err = voice_secrets(c, t);
    return err;
}

/* transcripts - {"<message id>": "<text>"} of the notes transcribed in this
 * turn, new JSON text, or NULL when there are none */
static char *transcripts(const struct agent_turn *t)
{
    json_t *o = json_object();
    char *s = NULL;

    for (size_t i = 0; i < t->ld.nfresh; i++) {
        const struct agent_hmsg *m = &t->ld.fresh[i];

        if (m->voice_new)
            json_object_set_new(o, m->id, json_string(m->transcript));
    }
    if (json_object_size(o) > 0)
        s = agent_json_dump(o);
    json_decref(o);
    return s;
}

/* out_of - the reply row as a tern:out entry (new), or NULL */
static struct agent_out *out_of(const struct agent_turn *t, const json_t *r)
{
    struct agent_out *o;

    if (!json_is_object(r))
        return NULL;
    o = tn_xcalloc(1, sizeof(*o));
    jid(o->id, r, "id");
    snprintf(o->tenant, sizeof(o->tenant), "%s", t->tenant);
    o->channel = jdup(r, "channel");
    o->channel_kind = jdup(r, "kind");
    o->to = jdup(r, "to");
    o->conversation = jdup(r, "conversation");
    o->contact = jdup(r, "contact");
    o->text = jdup(r, "text");
    o->reason = jdup(r, "reason");
    o->created_at = jdup(r, "created_at");
    o->not_before = jdup(r, "not_before");
    return o;
}

/* commit_json - what tern_agent_commit() returned */
static enum tn_err commit_json(struct agent_turn *t, const char *text, const char **outcome)
{
    json_t *j = json_loads(text != NULL ? text : "", 0, NULL);
    const char *oc = json_string_value(json_object_get(j, "outcome"));
    static const char *const known[] = {"replied", "holding", "restricted", "opted_out", "human"};
    enum tn_err err = TN_EPROTO;

    if (json_is_true(json_object_get(j, "conflict"))) {
        err = TN_ECONFLICT; /* the lease is gone: someone else answers */
        goto out;
    }
    for (size_t i = 0; oc != NULL && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(oc, known[i]) == 0) {
            *outcome = known[i];
            err = TN_OK;
        }
    }
    t->has_more = json_is_true(json_object_get(j, "has_more"));
    t->out = out_of(t, json_object_get(j, "out"));
out:
    json_decref(j);
    return err;
}

/* agent_store_commit_work - the turn's result in one call (one transaction),
 * only while the lease is ours */
enum tn_err agent_store_commit_work(struct tn_pgconn *c, void *arg)
{
    struct agent_turn *t = arg;
    struct pg_result *res = NULL;
    const char *outcome = "replied";
    char key[64], *arr = fresh_array(&t->ld), *lead = NULL, *tr = transcripts(t);
    enum tn_err err;

    agent_out_free(t->out);
    t->out = NULL;
    if (t->lead != NULL)
        lead = agent_json_dump(t->lead);
    snprintf(key, sizeof(key), "turn:%s", t->ld.fresh[t->ld.nfresh - 1].id);
    err = agent_store_q(c,
                        "SELECT tern_agent_commit($1, $2, $3, $4, $5, $6, $7::boolean, $8::jsonb,"
                        " $9::uuid[], $10::jsonb)::text",
                        10,
                        (const char *const[]){t->tenant, t->conv, t->token, key, t->reply,
                                              t->reason, t->handoff ? "t" : "f", lead, arr, tr},
                        &res);
    if (err == TN_OK)
        err = commit_json(t, tn_pg_result_value(res, 0, 0), &outcome);
    if (err != TN_OK) {
        agent_out_free(t->out);
        t->out = NULL;
    }
    t->outcome = outcome;
    tn_pg_result_free(res);
    tn_free(arr);
    tn_free(lead);
    tn_free(tr);
    return err;
}
