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
 *	  VOICE  (HTTP) fetch and transcribe voice notes (agent_voice.c)
 *	  LLM    (HTTP) chat completions; tool calls run and go back to the
 *	         model, at most TN_AGENT_TOOL_ROUNDS rounds
 *	  TOOL   (job) a booking tool asks Postgres (agent_booking.c)
 *	  BACKOFF(timer) before a retried LLM request or commit
 *	  COMMIT (job) reply + effects + release, only while the lease is ours
 *
 *	then it publishes the reply and, when input arrived meanwhile, starts
 *	over. Each turn has exactly one operation pending at a time, so it is
 *	freed only from that operation's callback. Running turns are indexed by
 *	conversation id: a second wake of a running conversation only sets
 *	`again`, so this process never runs two turns of one conversation; the
 *	lease does the same across processes.
 *
 *	When the model fails (transport error, timeout, 408/429/5xx, or an
 *	empty or unparsable answer) after TN_LLM_RETRIES retries, the turn
 *	commits the tenant's holding message instead and flags the
 *	conversation for a human.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	agent.turn_done (outcome, messages, ms), agent.llm_failed,
 *	agent.lease_lost, agent.turn_failed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_daemon.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "agent.h"

#define LLM_BACKOFF_BASE_MS 500
#define LLM_BACKOFF_CAP_MS 4000
#define COMMIT_RETRIES 3
#define MAX_TOOL_CALLS 8
#define GATE_POLL_MS 20
#define GATE_MAX_MS 2000

static void start(struct agent_turn *t);
static void claim_submit(struct agent_turn *t);
static void claim_done(enum tn_err err, void *arg);
static void llm_request(struct agent_turn *t);
static void run_next_tool(struct agent_turn *t);
static void commit(struct agent_turn *t);
static void gate(struct agent_turn *t);
static void end(struct agent_turn *t);

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

/* end - the turn is over: unindex, close the timer, free in free_cb */
static void end(struct agent_turn *t)
{
    if (t->state == TURN_CLOSING)
        return;
    t->state = TURN_CLOSING;
    unlink_turn(t);
    uv_close((uv_handle_t *)&t->timer, free_cb);
}

/* finish - start over when input is left, else end */
static void finish(struct agent_turn *t)
{
    if ((t->has_more || t->again) && !t->ctx->draining) {
        start(t);
        return;
    }
    end(t);
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
    claim_submit(t);
}

/* wait_cb - the quiet window may be over: claim again (keeps our lease) */
static void wait_cb(uv_timer_t *h)
{
    claim_submit(h->data);
}

/* log_ctx - the turn's log context */
static struct tn_log_ctx log_ctx(const struct agent_turn *t)
{
    return (struct tn_log_ctx){.tenant_id = t->tenant};
}

static void ask(struct agent_turn *t);

/* voiced - the voice notes are transcribed (or failed): ask the model */
static void voiced(struct agent_turn *t)
{
    if (t->ctx->closing) {
        end(t);
        return;
    }
    ask(t);
}

/* ask - the input is complete: transcribe voice notes first, then build the
 * prompt and ask the model */
static void ask(struct agent_turn *t)
{
    if (agent_voice_pending(&t->ld)) {
        t->state = TURN_VOICE;
        agent_voice_run(t, voiced);
        return;
    }
    tn_metric_inc(t->ctx->m_turns);
    t->messages = agent_prompt_build(t->ctx, &t->ld);
    llm_request(t);
}

/* gate_timer_cb - look at the pending entries again */
static void gate_timer_cb(uv_timer_t *h)
{
    gate(h->data);
}

/* id_pos - a stream id as messages.stream_pos */
static long long id_pos(const char *id)
{
    char *end;
    unsigned long long ms = strtoull(id, &end, 10);
    unsigned long long seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;

    return (long long)(ms * 1000000ULL + seq % 1000000ULL);
}

/* gate_decide - ask, or look again later, given the oldest pending entry
 * (0: none) */
static void gate_decide(struct agent_turn *t, long long oldest)
{
    if (oldest != 0 && oldest < t->ld.last_pos && tn_mono_ms() - t->gate_since < GATE_MAX_MS) {
        uv_timer_start(&t->timer, gate_timer_cb, GATE_POLL_MS, 0);
        return;
    }
    ask(t);
}

/* gate_cb - the oldest pending entry, shared with every gating turn */
static void gate_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct agent_turn *t = arg;
    struct agent_ctx *ctx = t->ctx;

    (void)r;
    ctx->pend_querying = false;
    if (ctx->closing) {
        end(t);
        return;
    }
    ctx->pend_oldest = 0;
    if (err == TN_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING)
        ctx->pend_oldest = id_pos(reply->element[1]->str);
    ctx->pend_ms = err == TN_OK ? tn_mono_ms() : 0;
    gate_decide(t, ctx->pend_oldest);
}

/* gate - ordering across replicas: the group reads tern:in in order but
 * replicas store entries in parallel, so a later message of this
 * conversation may be stored before an earlier one still being stored
 * elsewhere. Intake acknowledges only after its commit, so while the oldest
 * pending entry is older than our newest message the input may be
 * incomplete: wait (at most GATE_MAX_MS, so that an entry stuck with a dead
 * consumer only delays us). One XPENDING answer serves every turn that gates
 * within GATE_POLL_MS: with thousands of turns in flight, one query per
 * poll instead of one per turn and poll. */
static void gate(struct agent_turn *t)
{
    static const char *const argv[] = {"XPENDING", TN_STREAM_IN, TN_GROUP_AGENT};
    struct agent_ctx *ctx = t->ctx;

    t->state = TURN_GATE;
    if (t->ld.last_pos == 0 || ctx->rt->redis == NULL) {
        ask(t);
        return;
    }
    if (ctx->pend_ms != 0 && tn_mono_ms() - ctx->pend_ms < GATE_POLL_MS) {
        gate_decide(t, ctx->pend_oldest);
        return;
    }
    if (ctx->pend_querying) { /* another turn asks right now: look at its answer soon */
        uv_timer_start(&t->timer, gate_timer_cb, GATE_POLL_MS / 2, 0);
        return;
    }
    if (tn_redis_argv(ctx->rt->redis, 3, argv, NULL, gate_cb, t) != TN_OK) {
        ask(t);
        return;
    }
    ctx->pend_querying = true;
}

/* claim_limit - claim jobs in the pool at most: half the connections, so
 * that intake, commits and renewals always find the other half; a quarter
 * while inbound messages wait to be stored (a message must be durable and
 * acknowledged before it can be answered, so storing a burst comes first);
 * never fewer than two, so a small pool still claims in parallel */
static size_t claim_limit(const struct agent_ctx *ctx)
{
    size_t n = (size_t)ctx->cfg.pg_pool / (ctx->intakes > 0 ? 4 : 2);

    return n > 2 ? n : 2;
}

/* claim_send - submit the claim/load job */
static void claim_send(struct agent_turn *t)
{
    struct agent_ctx *ctx = t->ctx;

    ctx->nclaims++;
    if (agent_pg_submit(ctx, agent_store_claim_work, claim_done, t) != TN_OK) {
        ctx->nclaims--;
        end(t);
    }
}

/* claim_next - submit queued claims while there is room */
static void claim_next(struct agent_ctx *ctx)
{
    while (ctx->cq_head != NULL && ctx->nclaims < claim_limit(ctx)) {
        struct agent_turn *t = ctx->cq_head;

        ctx->cq_head = t->cq_next;
        if (ctx->cq_head == NULL)
            ctx->cq_tail = NULL;
        t->cq_next = NULL;
        claim_send(t);
    }
}

/* claim_done - wait, settle, or ask the model */
static void claim_done(enum tn_err err, void *arg)
{
    struct agent_turn *t = arg;
    struct agent_ctx *ctx = t->ctx;
    struct tn_log_ctx lc = log_ctx(t);

    ctx->nclaims--;
    claim_next(ctx);
    if (ctx->closing || err != TN_OK || !t->ld.claimed) {
        if (err != TN_OK && err != TN_ECANCELED)
            tn_log_warn(&lc, "agent.turn_failed", TN_KV_STR("step", "claim"), TN_KV_ERR(err),
                        TN_KV_STR("conversation", t->conv));
        end(t); /* not ours, nothing to do, or failed: the scan looks again */
        return;
    }
    t->renewed_ms = tn_mono_ms();
    if (t->ld.wait_ms > 0) {
        t->state = TURN_WAIT;
        uv_timer_start(&t->timer, wait_cb, (uint64_t)t->ld.wait_ms, 0);
        return;
    }
    if (t->ld.finished) {
        if (t->outcome != NULL) {
            tn_metric_inc(ctx->m_silent);
            tn_log_info(&lc, "agent.turn_done", TN_KV_STR("conversation", t->conv),
                        TN_KV_STR("outcome", t->outcome), TN_KV_INT("messages", t->ld.nfresh));
        }
        finish(t);
        return;
    }
    t->gate_since = tn_mono_ms();
    gate(t);
}

/* claim_submit - run the claim/load job. The pool's queue is FIFO: with
 * thousands of claims in it, the intake of new messages (and the commits
 * of finished turns) would wait behind all of them. So only claim_limit()
 * claims are in the pool; the others wait here in order. */
static void claim_submit(struct agent_turn *t)
{
    struct agent_ctx *ctx = t->ctx;

    t->state = TURN_CLAIM;
    if (ctx->nclaims < claim_limit(ctx)) {
        claim_send(t);
        return;
    }
    t->cq_next = NULL;
    if (ctx->cq_tail != NULL)
        ctx->cq_tail->cq_next = t;
    else
        ctx->cq_head = t;
    ctx->cq_tail = t;
}

/* holding - the model failed: the tenant's holding message, and a human */
static void holding(struct agent_turn *t)
{
    const char *text = t->ld.holding != NULL ? t->ld.holding : t->ctx->cfg.holding_text;

    tn_free(t->reply);
    t->reply = tn_xstrdup(text);
    t->reason = "holding";
    commit(t);
}

/* backoff_cb - retry the LLM request */
static void backoff_cb(uv_timer_t *h)
{
    llm_request(h->data);
}

/* llm_failed - retry with backoff, or fall back to the holding message */
static void llm_failed(struct agent_turn *t, bool retryable, long status, enum tn_err err)
{
    struct tn_log_ctx lc = log_ctx(t);
    uint32_t delay;

    tn_metric_inc(t->ctx->m_llm_fail);
    tn_log_warn(&lc, "agent.llm_failed", TN_KV_STR("conversation", t->conv),
                TN_KV_INT("status", status), TN_KV_ERR(err), TN_KV_INT("attempt", t->attempt));
    if (!retryable || t->attempt >= t->ctx->cfg.llm_retries) {
        holding(t);
        return;
    }
    delay = tn_backoff_delay(LLM_BACKOFF_BASE_MS, LLM_BACKOFF_CAP_MS, (uint32_t)t->attempt);
    t->attempt++;
    t->state = TURN_BACKOFF;
    uv_timer_start(&t->timer, backoff_cb, delay, 0);
}

/* cap_text - new copy of s, cut at AGENT_TEXT_MAX bytes on a UTF-8 boundary */
static char *cap_text(const char *s)
{
    size_t n = strlen(s);

    if (n > AGENT_TEXT_MAX) {
        n = AGENT_TEXT_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return tn_xstrndup(s, n);
}

/* blank - NULL or only white space */
static bool blank(const char *s)
{
    if (s == NULL)
        return true;
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

/* llm_done - tool calls, a reply, or a failure */
static void llm_done(struct agent_llm_result *r, void *arg)
{
    struct agent_turn *t = arg;
    json_t *calls, *content;

    if (t->ctx->closing || r->err == TN_ECANCELED || t->lost) {
        if (t->lost)
            tn_metric_inc(t->ctx->m_lost);
        end(t);
        return;
    }
    if (r->err != TN_OK) {
        llm_failed(t, r->retryable, r->status, r->err);
        return;
    }
    calls = json_object_get(r->message, "tool_calls");
    if (json_array_size(calls) > 0 && t->round < t->ctx->cfg.tool_rounds) {
        t->round++;
        json_array_append(t->messages, r->message);
        t->tool_calls = json_incref(calls);
        t->tool_i = 0;
        run_next_tool(t);
        return;
    }
    content = json_object_get(r->message, "content");
    if (blank(json_string_value(content))) {
        llm_failed(t, true, r->status, TN_EPROTO); /* nothing to say is nonsense */
        return;
    }
    tn_free(t->reply);
    t->reply = cap_text(json_string_value(content));
    t->reason = "reply";
    commit(t);
}

/* llm_request - one chat completions request; tools off after the last round */
static void llm_request(struct agent_turn *t)
{
    const char *choice = t->round >= t->ctx->cfg.tool_rounds ? "none" : "auto";

    t->state = TURN_LLM;
    if (agent_llm_send(t->ctx, t->messages, choice, llm_done, t) != TN_OK)
        holding(t);
}

/* tool_done - a tool's result goes back to the model as a tool message;
 * a tool that finished later may find the daemon closing */
static void tool_done(struct agent_turn *t, json_t *result)
{
    json_t *call, *msg;
    char *text;

    if (t->ctx->closing) {
        json_decref(result);
        end(t);
        return;
    }
    call = json_array_get(t->tool_calls, t->tool_i);
    msg = json_object();
    text = agent_json_dump(result);

    json_object_set_new(msg, "role", json_string("tool"));
    json_object_set(msg, "tool_call_id", json_object_get(call, "id"));
    json_object_set_new(msg, "content", json_string(text));
    json_array_append_new(t->messages, msg);
    tn_free(text);
    json_decref(result);
    t->tool_i++;
    run_next_tool(t);
}

/* tool_error - {"error": why} */
static json_t *tool_error(const char *why)
{
    return json_pack("{s:s}", "error", why);
}

/* tool_args - the call's arguments: a JSON string (OpenAI) or an object */
static json_t *tool_args(json_t *fn)
{
    json_t *a = json_object_get(fn, "arguments");
    const char *s = json_string_value(a);

    if (json_is_object(a))
        return json_incref(a);
    if (s == NULL)
        return NULL;
    a = json_loads(s, 0, NULL);
    if (!json_is_object(a)) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* run_next_tool - run the calls one after the other, then ask the model again */
static void run_next_tool(struct agent_turn *t)
{
    json_t *call, *fn, *args;
    const struct agent_tool *tool;

    if (t->tool_i >= json_array_size(t->tool_calls)) {
        json_decref(t->tool_calls);
        t->tool_calls = NULL;
        llm_request(t);
        return;
    }
    call = json_array_get(t->tool_calls, t->tool_i);
    fn = json_object_get(call, "function");
    tool = agent_tool_find(json_string_value(json_object_get(fn, "name")));
    if (t->tool_i >= MAX_TOOL_CALLS) {
        tool_done(t, tool_error("too many tool calls in one answer"));
        return;
    }
    if (tool == NULL) {
        tool_done(t, tool_error("unknown tool"));
        return;
    }
    args = tool_args(fn);
    if (args == NULL) {
        tool_done(t, tool_error("arguments must be a JSON object"));
        return;
    }
    tool->run(t, args, tool_done);
    json_decref(args);
}

/* commit_backoff_cb - retry the commit */
static void commit_backoff_cb(uv_timer_t *h)
{
    commit(h->data);
}

/* commit_done - publish and loop, or give up */
static void commit_done(enum tn_err err, void *arg)
{
    struct agent_turn *t = arg;
    struct agent_ctx *ctx = t->ctx;
    struct tn_log_ctx lc = log_ctx(t);

    if (ctx->closing) {
        end(t);
        return;
    }
    if (err == TN_ECONFLICT) {
        tn_metric_inc(ctx->m_lost);
        tn_log_warn(&lc, "agent.lease_lost", TN_KV_STR("conversation", t->conv));
        end(t);
        return;
    }
    if (err != TN_OK) {
        tn_log_warn(&lc, "agent.turn_failed", TN_KV_STR("step", "commit"), TN_KV_ERR(err),
                    TN_KV_STR("conversation", t->conv));
        if (tn_err_retryable(err) && t->commit_attempt < COMMIT_RETRIES) {
            t->state = TURN_BACKOFF;
            uv_timer_start(&t->timer, commit_backoff_cb,
                           tn_backoff_delay(200, 2000, (uint32_t)t->commit_attempt++), 0);
        } else {
            end(t); /* the lease expires and the scan runs the turn again */
        }
        return;
    }
    tn_metric_inc(t->out == NULL                      ? ctx->m_silent
                  : strcmp(t->reason, "holding") == 0 ? ctx->m_holding
                                                      : ctx->m_replies);
    tn_log_info(&lc, "agent.turn_done", TN_KV_STR("conversation", t->conv),
                TN_KV_STR("outcome", t->outcome), TN_KV_INT("messages", t->ld.nfresh),
                TN_KV_INT("rounds", t->round), TN_KV_INT("ms", tn_mono_ms() - t->started_ms));
    if (t->out != NULL) {
        t->out->trace = t->trace != NULL ? tn_xstrdup(t->trace) : NULL;
        agent_publish(ctx, t->out);
        t->out = NULL;
    }
    finish(t);
}

/* commit - store the turn's result */
static void commit(struct agent_turn *t)
{
    t->state = TURN_COMMIT;
    if (agent_pg_submit(t->ctx, agent_store_commit_work, commit_done, t) != TN_OK)
        end(t);
}

/* renew_done - note the renewal on the turn, if it still runs */
static void renew_done(enum tn_err err, void *arg)
{
    struct agent_renew *r = arg;
    struct agent_turn *t = agent_turn_find(r->ctx, r->conv);

    if (t != NULL && strcmp(t->token, r->token) == 0) {
        t->renewing = false;
        if (err == TN_OK && r->held)
            t->renewed_ms = tn_mono_ms();
        else if (err == TN_OK)
            t->lost = true;
    }
    agent_maybe_free_pg(r->ctx);
    tn_free(r);
}

/* agent_turn_renew_all - renew every lease a third of the way to expiry */
void agent_turn_renew_all(struct agent_ctx *ctx)
{
    int64_t now = tn_mono_ms();

    for (size_t b = 0; b < ctx->nbuckets; b++) {
        for (struct agent_turn *t = ctx->buckets[b]; t != NULL; t = t->next) {
            struct agent_renew *r;

            if (t->renewing || t->state == TURN_CLAIM || t->state == TURN_CLOSING ||
                now - t->renewed_ms < ctx->cfg.lease_ms / 3)
                continue;
            r = tn_xcalloc(1, sizeof(*r));
            r->ctx = ctx;
            memcpy(r->tenant, t->tenant, sizeof(r->tenant));
            memcpy(r->conv, t->conv, sizeof(r->conv));
            memcpy(r->token, t->token, sizeof(r->token));
            r->lease_ms = ctx->cfg.lease_ms;
            if (agent_pg_submit(ctx, agent_store_renew_work, renew_done, r) != TN_OK)
                tn_free(r);
            else
                t->renewing = true;
        }
    }
}

/* agent_turn_close_all - end the turns that only wait on their timer or
 * for their turn to claim */
void agent_turn_close_all(struct agent_ctx *ctx)
{
    while (ctx->cq_head != NULL) {
        struct agent_turn *t = ctx->cq_head;

        ctx->cq_head = t->cq_next;
        t->cq_next = NULL;
        end(t);
    }
    ctx->cq_tail = NULL;
    for (size_t b = 0; b < ctx->nbuckets; b++) {
        struct agent_turn *t = ctx->buckets[b], *next;

        for (; t != NULL; t = next) {
            next = t->next;
            if (t->state == TURN_WAIT || t->state == TURN_BACKOFF ||
                (t->state == TURN_GATE && uv_is_active((uv_handle_t *)&t->timer)))
                end(t);
        }
    }
}
