/*
 * NAME
 *	agent_turn - one conversation turn at a time
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_turn_wake(ctx, tenant, conversation, trace);
 * DESCRIPTION
 *	A turn is the state machine of one conversation in this process:
 *
 *	  CLAIM  (job) take the row lease; keep it through the quiet window
 *	  WAIT   (timer) until TN_AGENT_QUIET_MS after the last inbound message
 *	  GATE   (XPENDING, timer) earlier tern:in entries not stored yet
 *	  VOICE  (HTTP) fetch and transcribe voice notes (agent_voice.c)
 *	  LLM    (HTTP) chat completions; tool calls run and go back to the
 *	         model, at most TN_AGENT_TOOL_ROUNDS rounds
 *	  TOOL   (job) a booking tool asks Postgres (agent_booking.c)
 *	  BACKOFF(timer) before a retried LLM request or commit
 *	  COMMIT (job) reply + effects + release, only while the lease is ours
 *
 *	then it publishes the reply and, when input arrived meanwhile, starts
 *	over. The phases live in their own files: agent_turn_claim.c (CLAIM,
 *	WAIT, GATE and lease renewals), agent_turn_llm.c (VOICE, LLM, TOOL,
 *	BACKOFF, the holding message) and agent_turn_commit.c (COMMIT,
 *	publish). This file holds what they share: the index of running turns
 *	and a turn's life from wake to free.
 *
 *	Each turn has exactly one operation pending at a time, so it is freed
 *	only from that operation's callback. Running turns are indexed by
 *	conversation id: a second wake of a running conversation only sets
 *	`again`, so this process never runs two turns of one conversation; the
 *	lease does the same across processes.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	none here (see the phase files).
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_time.h>

#include "agent.h"

static void start(struct agent_turn *t);

/* hash - FNV-1a of a conversation id */
static size_t hash(const struct agent_ctx *ctx, const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h % ctx->nbuckets);
}

/* agent_turn_find - the running turn of conv */
struct agent_turn *agent_turn_find(struct agent_ctx *ctx, const char *conv)
{
    struct agent_turn *t = ctx->buckets[hash(ctx, conv)];

    while (t != NULL && strcmp(t->conv, conv) != 0)
        t = t->next;
    return t;
}

/* unlink_turn - remove t from the index */
static void unlink_turn(struct agent_turn *t)
{
    struct agent_turn **pp = &t->ctx->buckets[hash(t->ctx, t->conv)];

    while (*pp != NULL && *pp != t)
        pp = &(*pp)->next;
    if (*pp == t)
        *pp = t->next;
    t->next = NULL;
}

/* reset - forget the previous run's data */
static void reset(struct agent_turn *t)
{
    agent_load_clear(&t->ld);
    json_decref(t->messages);
    json_decref(t->lead);
    json_decref(t->tool_calls);
    agent_out_free(t->out);
    tn_free(t->reply);
    t->messages = t->lead = t->tool_calls = NULL;
    t->out = NULL;
    t->reply = NULL;
    t->reason = "reply";
    t->outcome = NULL;
    t->handoff = t->lost = t->again = t->has_more = t->renewing = false;
    t->round = t->attempt = t->commit_attempt = 0;
    t->tool_i = 0;
}

/* free_cb - the timer is closed: release the turn */
static void free_cb(uv_handle_t *h)
{
    struct agent_turn *t = h->data;
    struct agent_ctx *ctx = t->ctx;

    reset(t);
    tn_free(t->trace);
    tn_free(t);
    ctx->nturns--;
    tn_metric_set(ctx->m_inflight, (double)ctx->nturns);
    agent_maybe_free_pg(ctx);
}

/* agent_turn_end - the turn is over: unindex, close the timer, free in free_cb */
void agent_turn_end(struct agent_turn *t)
{
    if (t->state == TURN_CLOSING)
        return;
    t->state = TURN_CLOSING;
    unlink_turn(t);
    uv_close((uv_handle_t *)&t->timer, free_cb);
}

/* agent_turn_finish - start over when input is left, else end */
void agent_turn_finish(struct agent_turn *t)
{
    if ((t->has_more || t->again) && !t->ctx->draining) {
        start(t);
        return;
    }
    agent_turn_end(t);
}

/* agent_turn_wake - run a turn for conv unless one runs already */
void agent_turn_wake(struct agent_ctx *ctx, const char *tenant, const char *conv, const char *trace)
{
    struct agent_turn *t;
    size_t b;

    if (ctx->draining || ctx->pg == NULL)
        return;
    t = agent_turn_find(ctx, conv);
    if (t != NULL) {
        t->again = true;
        return;
    }
    t = tn_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    snprintf(t->conv, sizeof(t->conv), "%s", conv);
    t->trace = trace != NULL ? tn_xstrdup(trace) : NULL;
    uv_timer_init(ctx->loop, &t->timer);
    t->timer.data = t;
    b = hash(ctx, conv);
    t->next = ctx->buckets[b];
    ctx->buckets[b] = t;
    ctx->nturns++;
    tn_metric_set(ctx->m_inflight, (double)ctx->nturns);
    start(t);
}

/* start - a new claim with a new token */
static void start(struct agent_turn *t)
{
    struct agent_ctx *ctx = t->ctx;

    reset(t);
    snprintf(t->token, sizeof(t->token), "%s-%llu", ctx->owner,
             (unsigned long long)++ctx->lease_seq);
    t->started_ms = tn_mono_ms();
    agent_turn_claim(t);
}

/* agent_turn_log_ctx - the turn's log context */
struct tn_log_ctx agent_turn_log_ctx(const struct agent_turn *t)
{
    return (struct tn_log_ctx){.tenant_id = t->tenant};
}

/* agent_turn_close_all - end the turns that only wait on their timer or
 * for their turn to claim */
void agent_turn_close_all(struct agent_ctx *ctx)
{
    while (ctx->cq_head != NULL) {
        struct agent_turn *t = ctx->cq_head;

        ctx->cq_head = t->cq_next;
        t->cq_next = NULL;
        agent_turn_end(t);
    }
    ctx->cq_tail = NULL;
    for (size_t b = 0; b < ctx->nbuckets; b++) {
        struct agent_turn *t = ctx->buckets[b], *next;

        for (; t != NULL; t = next) {
            next = t->next;
            if (t->state == TURN_WAIT || t->state == TURN_BACKOFF ||
                (t->state == TURN_GATE && uv_is_active((uv_handle_t *)&t->timer)))
                agent_turn_end(t);
        }
    }
}
