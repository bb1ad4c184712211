/*
 * NAME
 *	agent_turn_llm - a turn's model rounds: voice notes, LLM, tools
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_turn_ask(turn);              the input is complete
 * DESCRIPTION
 *	Transcribes the fresh voice notes (agent_voice.c), builds the prompt
 *	(agent_prompt.c) and asks the model (agent_llm.c). Tool calls run one
 *	after the other (agent_tools.c) and their results go back to the model,
 *	at most TN_AGENT_TOOL_ROUNDS rounds, then tools are switched off. The
 *	answer goes to the commit (agent_turn_commit.c).
 *
 *	When the model fails (transport error, timeout, 408/429/5xx, or an
 *	empty or unparsable answer) after TN_LLM_RETRIES retries, the turn
 *	commits the tenant's holding message instead and flags the
 *	conversation for a human.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	agent.llm_failed (status, err, attempt).
 */
#include <ctype.h>
#include <string.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_time.h>

#include "agent.h"

#define LLM_BACKOFF_BASE_MS 500
#define LLM_BACKOFF_CAP_MS 4000

static void llm_request(struct agent_turn *t);
static void run_next_tool(struct agent_turn *t);

/* voiced - the voice notes are transcribed (or failed): ask the model */
static void voiced(struct agent_turn *t)
{
    if (t->ctx->closing) {
        agent_turn_end(t);
        return;
    }
    agent_turn_ask(t);
}

/* agent_turn_ask - the input is complete: transcribe voice notes first, then build the
 * prompt and ask the model */
void agent_turn_ask(struct agent_turn *t)
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

/* holding - the model failed: the tenant's holding message, and a human */
static void holding(struct agent_turn *t)
{
    const char *text = t->ld.holding != NULL ? t->ld.holding : t->ctx->cfg.holding_text;

    tn_free(t->reply);
    t->reply = tn_xstrdup(text);
    t->reason = "holding";
    agent_turn_commit(t);
}

/* backoff_cb - retry the LLM request */
static void backoff_cb(uv_timer_t *h)
{
    llm_request(h->data);
}

/* llm_failed - retry with backoff, or fall back to the holding message */
static void llm_failed(struct agent_turn *t, bool retryable, long status, enum tn_err err)
{
    struct tn_log_ctx lc = agent_turn_log_ctx(t);
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

/* agent_turn_reply_text - the message's content as the reply, or NULL.
 * Leading white space goes before the cap: a run of it longer than the cap
 * would leave a blank reply, which no provider delivers. */
char *agent_turn_reply_text(const json_t *message)
{
    const char *content = json_string_value(json_object_get(message, "content"));

    if (blank(content))
        return NULL; /* nothing to say is nonsense */
    while (isspace((unsigned char)*content))
        content++;
    return cap_text(content);
}

/* llm_done - tool calls, a reply, or a failure */
static void llm_done(struct agent_llm_result *r, void *arg)
{
    struct agent_turn *t = arg;
    json_t *calls;
    char *text;

    if (t->ctx->closing || r->err == TN_ECANCELED || t->lost) {
        if (t->lost)
            tn_metric_inc(t->ctx->m_lost);
        agent_turn_end(t);
        return;
    }
    if (r->err != TN_OK) {
        llm_failed(t, r->retryable, r->status, r->err);
        return;
    }
    calls = json_object_get(r->message, "tool_calls");
    if (json_array_size(calls) > 0 && t->round < t->ctx->cfg.tool_rounds) {
        t->round++;
        agent_tool_calls_name(calls, t->round); /* before the message joins the history */
        json_array_append(t->messages, r->message);
        t->tool_calls = json_incref(calls);
        t->tool_i = 0;
        run_next_tool(t);
        return;
    }
    text = agent_turn_reply_text(r->message);
    if (text == NULL) {
        llm_failed(t, true, r->status, TN_EPROTO);
        return;
    }
    tn_free(t->reply);
    t->reply = text;
    t->reason = "reply";
    agent_turn_commit(t);
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
    if (t->ctx->closing) {
        json_decref(result);
        agent_turn_end(t);
        return;
    }
    json_array_append_new(t->messages,
                          agent_tool_message(json_array_get(t->tool_calls, t->tool_i), result));
    json_decref(result);
    t->tool_i++;
    run_next_tool(t);
}

/* tool_error - {"error": why} */
static json_t *tool_error(const char *why)
{
    return json_pack("{s:s}", "error", why);
}

/* run_next_tool - run the calls one after the other, then ask the model again */
static void run_next_tool(struct agent_turn *t)
{
    const struct agent_tool *tool;
    const char *why;
    json_t *args;

    if (t->tool_i >= json_array_size(t->tool_calls)) {
        json_decref(t->tool_calls);
        t->tool_calls = NULL;
        llm_request(t);
        return;
    }
    why = agent_tool_call_parse(json_array_get(t->tool_calls, t->tool_i), t->tool_i, &tool, &args);
    if (why != NULL) {
        tool_done(t, tool_error(why));
        return;
    }
    tool->run(t, args, tool_done);
    json_decref(args);
}
