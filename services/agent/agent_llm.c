/*
 * NAME
 *	agent_llm - OpenAI-compatible chat completions client
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_llm_send(ctx, messages, "auto", done, turn);
 * DESCRIPTION
 *	POSTs {TN_LLM_BASE_URL}/chat/completions through the shared HTTP client
 *	(libcurl multi on the loop: any number of requests in flight, each with
 *	TN_LLM_TIMEOUT_MS and a response cap), and reduces the answer to
 *	choices[0].message or a failure with a retry hint: transport errors,
 *	408, 429 and 5xx, a 200 carrying an "error" object (OpenRouter reports
 *	mid-generation failures that way), or a body that is not a chat
 *	completion are retryable; other 4xx (bad key, no credit) are not.
 *	The API key goes only into the Authorization header.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	None: the caller logs the failure (status and error name, never the
 *	body, which may quote the prompt).
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_http.h>
#include <tn/tn_mem.h>

#include "agent.h"

#define LLM_MAX_RESPONSE (1024 * 1024)

struct llm_req {
    agent_llm_done_fn *done;
    void *arg;
};

/* agent_json_dump - compact JSON text via jansson's buffer API */
char *agent_json_dump(const json_t *j)
{
    size_t n;
    char *out;

    if (j == NULL)
        return tn_xstrdup("null");
    n = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    out = tn_xmalloc(n + 1);
    if (n > 0 && json_dumpb(j, out, n, JSON_COMPACT | JSON_ENCODE_ANY) != n)
        n = 0;
    out[n] = '\0';
    return out;
}

/* retryable_status - worth another attempt? */
static bool retryable_status(long status)
{
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

/* agent_llm_parse_answer - the assistant message of a 200 answer, or NULL */
json_t *agent_llm_parse_answer(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *msg = NULL;

    if (json_is_object(root) && json_object_get(root, "error") == NULL) {
        msg = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");
        msg = json_is_object(msg) ? json_incref(msg) : NULL;
    }
    json_decref(root);
    return msg;
}

/* http_done - map the transfer's outcome */
static void http_done(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct llm_req *q = arg;
    struct agent_llm_result r = {.err = err, .retryable = err != TN_ECANCELED && err != TN_EINVAL};

    if (err == TN_OK) {
        r.status = resp->status;
        if (resp->status != 200) {
            r.err = TN_EUNAVAIL;
            r.retryable = retryable_status(resp->status);
        } else {
            r.message = agent_llm_parse_answer(resp->body, resp->body_len);
            if (r.message == NULL) {
                r.err = TN_EPROTO;
                r.retryable = true;
            }
        }
    }
    q->done(&r, q->arg);
    json_decref(r.message);
    tn_free(q);
}

/* body - the request JSON text. The tool definitions are the same in every
 * request: their text (ctx->tools_text, dumped once) is spliced in rather
 * than serialised again for each of thousands of turns. */
static char *body(struct agent_ctx *ctx, json_t *messages, const char *tool_choice)
{
    json_t *rq = json_object();
    char *head, *text;
    struct tn_buf b;

    json_object_set_new(rq, "model", json_string(ctx->cfg.llm_model));
    json_object_set(rq, "messages", messages);
    if (ctx->cfg.tool_rounds > 0 && json_array_size(ctx->tools) > 0)
        json_object_set_new(rq, "tool_choice", json_string(tool_choice));
    json_object_set_new(rq, "temperature", json_real(0.3));
    json_object_set_new(rq, "max_tokens", json_integer(ctx->cfg.llm_max_tokens));
    head = agent_json_dump(rq);
    json_decref(rq);
    if (ctx->cfg.tool_rounds == 0 || json_array_size(ctx->tools) == 0)
        return head;
    if (ctx->tools_text == NULL)
        ctx->tools_text = agent_json_dump(ctx->tools);
    tn_buf_init(&b, 0);
    tn_buf_add(&b, head, strlen(head) - 1); /* without the closing brace */
    tn_buf_printf(&b, ",\"tools\":%s}", ctx->tools_text);
    tn_free(head);
    text = tn_buf_steal(&b, NULL);
    return text;
}

/* agent_llm_send - start one request */
enum tn_err agent_llm_send(struct agent_ctx *ctx, json_t *messages, const char *tool_choice,
                           agent_llm_done_fn *done, void *arg)
{
    struct tn_buf url, auth;
    const char *base = ctx->cfg.llm_base_url;
    struct tn_http *http = agent_http(ctx);
    size_t blen = strlen(base);
    char *text;
    struct llm_req *q;
    enum tn_err err;

    if (http == NULL)
        return TN_EINVAL;
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    tn_buf_init(&url, 0);
    tn_buf_init(&auth, 0);
    tn_buf_printf(&url, "%.*s/chat/completions", (int)blen, base);
    tn_buf_printf(&auth, "Authorization: Bearer %s", ctx->cfg.llm_api_key);
    text = body(ctx, messages, tool_choice);
    q = tn_xcalloc(1, sizeof(*q));
    q->done = done;
    q->arg = arg;
    err = tn_http_send(
        http,
        &(struct tn_http_request){
            .method = "POST",
            .url = url.data,
            .headers = (const char *const[]){auth.data, "Content-Type: application/json",
                                             "Accept: application/json", NULL},
            .body = text,
            .body_len = strlen(text),
            .timeout_ms = (uint32_t)ctx->cfg.llm_timeout_ms,
            .max_response = LLM_MAX_RESPONSE,
        },
        http_done, q);
    if (err != TN_OK)
        tn_free(q);
    tn_free(text);
    tn_buf_free(&url);
    tn_buf_free(&auth); /* tn_http copied it; the key does not linger in our heap */
    return err;
}
