/*
 * NAME
 *	sender_telegram - Telegram Bot API: POST /bot<token>/sendMessage
 * SYNOPSIS
 *	sender_telegram.build / .parse
 * DESCRIPTION
 *	JSON {"chat_id":..,"text":..,"reply_parameters":{"message_id":..}}
 *	with the channel secret "bot_token" in the path (so URLs are never
 *	logged). Telegram has no templates and no 24-hour window; a template
 *	message is refused. Telegram echoes nothing we could tag: a crash
 *	between its answer and our database update may send twice; the window
 *	is one HTTP answer plus one UPDATE (see main.c).
 *
 *	Answers: {"ok":true,"result":{"message_id":N,"chat":{"id":C}}} gives
 *	the provider message id "C:N" (tern-ingest's form). 429 retries after
 *	parameters.retry_after seconds, 5xx retries, the rest (400 chat not
 *	found, 403 blocked by the user) is final with error_code.
 * RUNS ON
 *	any thread (pure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_mem.h>

#include "sender.h"

/* build - the sendMessage request */
static enum tn_err build(const struct sender_cfg *cfg, const struct sender_msg *m,
                         struct sender_req *out, const char **why)
{
    const char *tok = sender_secret(m->secrets, "bot_token");
    json_t *b;
    char *text, *end;
    size_t n;
    long long reply;

    memset(out, 0, sizeof(*out));
    if (tok == NULL) {
        *why = "credentials.missing";
        return TN_EINVAL;
    }
    if (m->template != NULL || m->text == NULL) {
        *why = "telegram.no_templates";
        return TN_EINVAL;
    }
    b = json_pack("{ssss}", "chat_id", m->to, "text", m->text);
    if (m->reply_to != NULL) {
        /* ingest's ids are "<chat>:<message_id>"; Telegram wants the number */
        const char *colon = strrchr(m->reply_to, ':');

        reply = strtoll(colon != NULL ? colon + 1 : m->reply_to, &end, 10);
        if (*end == '\0' && reply > 0)
            json_object_set_new(b, "reply_parameters", json_pack("{sI}", "message_id", reply));
    }
    text = sender_json_text(b);
    tn_buf_init(&out->body, 0);
    tn_buf_adds(&out->body, text);
    tn_free(text);
    json_decref(b);
    n = strlen(cfg->telegram_base) + strlen(tok) + 20;
    out->url = tn_xmalloc(n);
    snprintf(out->url, n, "%s/bot%s/sendMessage", cfg->telegram_base, tok);
    out->headers[0] = tn_xstrdup("Content-Type: application/json");
    return TN_OK;
}

/* parse - classify a Bot API answer */
static void parse(long status, const char *body, size_t len, const char *retry_after,
                  struct sender_result *out)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *res = json_object_get(j, "result");
    long long code = json_integer_value(json_object_get(j, "error_code"));
    long long ra =
        json_integer_value(json_object_get(json_object_get(j, "parameters"), "retry_after"));
    json_t *mid = json_object_get(res, "message_id");
    json_t *chat = json_object_get(json_object_get(res, "chat"), "id");

    memset(out, 0, sizeof(*out));
    out->retry_after_ms = ra > 0 ? sender_wait_ms(ra) : sender_retry_after_ms(retry_after);
    if (status == 200 && json_is_true(json_object_get(j, "ok")) && json_is_integer(mid)) {
        out->v = SENDER_V_OK;
        snprintf(out->pmid, sizeof(out->pmid), "%lld:%lld", json_integer_value(chat),
                 json_integer_value(mid));
    } else {
        if (code == 0)
            code = status;
        out->v = code == 429 || status == 429 || status >= 500 || status < 300 ? SENDER_V_RETRY
                                                                               : SENDER_V_FINAL;
        snprintf(out->code, sizeof(out->code), "%lld", code);
    }
    json_decref(j);
}

const struct sender_provider sender_telegram = {
    .name = "telegram",
    .has_echo = false,
    .build = build,
    .parse = parse,
};
