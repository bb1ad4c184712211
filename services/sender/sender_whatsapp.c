/*
 * NAME
 *	sender_whatsapp - WhatsApp Cloud API: POST /<ver>/<phone_number_id>/messages
 * SYNOPSIS
 *	sender_whatsapp.build / .parse
 * DESCRIPTION
 *	Text ({"type":"text","text":{"body":..}}) inside the 24-hour window,
 *	an approved template ({"type":"template","template":{"name","language":
 *	{"code"},"components":[body parameters, quick_reply buttons]}}) outside
 *	it (the caller decides which: m->text or m->template). Bearer auth with
 *	the channel secret "access_token". Every send carries our outbound id in
 *	biz_opaque_callback_data, which Meta echoes in its statuses, so that a
 *	send whose answer was lost can be recognised (DESIGN.md, provider edge).
 *
 *	The read marker of an inbound message (sender_read.c) is the same
 *	request with {"status":"read","message_id":<wamid>}
 *	(sender_whatsapp_read_build); Meta answers {"success":true}.
 *
 *	Answers: 200 with messages[0].id is accepted. Errors are classified by
 *	error.code, not the HTTP status (protocols.md 1.9, 1.12): throughput and
 *	pair limits (130429, 131056, 80007, 4), temporary errors (1, 2, 131000)
 *	and HTTP 429/5xx retry; anything else is final with its code.
 * RUNS ON
 *	any thread (pure).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_mem.h>

#include "sender.h"

/* header - new "Name: value" */
static char *header(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = tn_xmalloc(n);

    snprintf(h, n, "%s: %s", name, value);
    return h;
}

/* digits - the E.164 number without its '+', as the Cloud API takes it */
static const char *digits(const char *to)
{
    return to[0] == '+' ? to + 1 : to;
}

/* template_json - the Cloud API template object for our template t */
static json_t *template_json(const json_t *t)
{
    json_t *out = json_object(), *comps = json_array(), *params = json_array();
    const json_t *vars = json_object_get(t, "variables"), *buttons = json_object_get(t, "buttons");
    size_t i;
    json_t *v;

    json_object_set(out, "name", json_object_get(t, "name"));
    /* policy: the only value Meta defines; its OpenAPI description requires it */
    json_object_set_new(
        out, "language",
        json_pack("{sssO}", "policy", "deterministic", "code", json_object_get(t, "language")));
    json_array_foreach(vars, i, v)
        json_array_append_new(params, json_pack("{sssO}", "type", "text", "text", v));
    if (json_array_size(params) > 0)
        json_array_append_new(comps, json_pack("{sssO}", "type", "body", "parameters", params));
    json_array_foreach(buttons, i, v)
    {
        char idx[24];

        snprintf(idx, sizeof(idx), "%zu", i);
        json_array_append_new(comps,
                              json_pack("{sssssss[{sssO}]}", "type", "button", "sub_type",
                                        "quick_reply", "index", idx, "parameters", "type",
                                        "payload", "payload", json_object_get(v, "payload")));
    }
    if (json_array_size(comps) > 0)
        json_object_set(out, "components", comps);
    json_decref(params);
    json_decref(comps);
    return out;
}

/* body_json - the request body for m */
static json_t *body_json(const struct sender_msg *m)
{
    json_t *b = json_pack("{ssssss}", "messaging_product", "whatsapp", "recipient_type",
                          "individual", "to", digits(m->to));

    if (m->template != NULL) {
        json_object_set_new(b, "type", json_string("template"));
        json_object_set_new(b, "template", template_json(m->template));
    } else {
        json_object_set_new(b, "type", json_string("text"));
        json_object_set_new(b, "text", json_pack("{sbss}", "preview_url", 0, "body", m->text));
    }
    if (m->reply_to != NULL)
        json_object_set_new(b, "context", json_pack("{ss}", "message_id", m->reply_to));
    json_object_set_new(b, "biz_opaque_callback_data", json_string(m->outbound_id));
    return b;
}

/* request - POST <base>/<ver>/<phone_number_id>/messages with body b,
 * Bearer token (both borrowed) */
static void request(const struct sender_cfg *cfg, const char *from, const char *token,
                    const json_t *b, struct sender_req *out)
{
    char *text, *auth;
    size_t n;

    memset(out, 0, sizeof(*out));
    n = strlen(cfg->whatsapp_base) + strlen(cfg->whatsapp_version) + strlen(from) + 16;
    out->url = tn_xmalloc(n);
    snprintf(out->url, n, "%s/%s/%s/messages", cfg->whatsapp_base, cfg->whatsapp_version, from);
    text = sender_json_text(b);
    tn_buf_init(&out->body, 0);
    tn_buf_adds(&out->body, text);
    n = strlen(token) + 8;
    auth = tn_xmalloc(n);
    snprintf(auth, n, "Bearer %s", token);
    out->headers[0] = header("Authorization", auth);
    out->headers[1] = header("Content-Type", "application/json");
    tn_wipe(auth, strlen(auth));
    tn_free(auth);
    tn_free(text);
}

/* build - the send request for m */
static enum tn_err build(const struct sender_cfg *cfg, const struct sender_msg *m,
                         struct sender_req *out, const char **why)
{
    const char *token = sender_secret(m->secrets, "access_token");
    json_t *b;

    memset(out, 0, sizeof(*out));
    if (token == NULL) {
        *why = "credentials.missing";
        return TN_EINVAL;
    }
    b = body_json(m);
    request(cfg, m->from, token, b, out);
    json_decref(b);
    return TN_OK;
}

/* sender_whatsapp_read_build - the read marker for wamid */
enum tn_err sender_whatsapp_read_build(const struct sender_cfg *cfg, const char *from,
                                       const struct json_t *secrets, const char *wamid,
                                       struct sender_req *out, const char **why)
{
    const char *token = sender_secret(secrets, "access_token");
    json_t *b;

    memset(out, 0, sizeof(*out));
    if (token == NULL) {
        *why = "credentials.missing";
        return TN_EINVAL;
    }
    b = json_pack("{ssssss}", "messaging_product", "whatsapp", "status", "read", "message_id",
                  wamid);
    request(cfg, from, token, b, out);
    json_decref(b);
    return TN_OK;
}

/* retryable_code - Meta error codes that are worth another attempt */
static bool retryable_code(long long code)
{
    static const long long codes[] = {1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (codes[i] == code)
            return true;
    }
    return false;
}

/* parse - classify a Cloud API answer */
static void parse(long status, const char *body, size_t len, const char *retry_after,
                  struct sender_result *out)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *id =
        json_string_value(json_object_get(json_array_get(json_object_get(j, "messages"), 0), "id"));
    json_t *err = json_object_get(j, "error");
    long long code = json_integer_value(json_object_get(err, "code"));

    memset(out, 0, sizeof(*out));
    out->retry_after_ms = sender_retry_after_ms(retry_after);
    if (status >= 200 && status < 300 && id != NULL && *id != '\0' &&
        strlen(id) < sizeof(out->pmid)) {
        out->v = SENDER_V_OK;
        snprintf(out->pmid, sizeof(out->pmid), "%s", id);
    } else if (err != NULL && code != 0) {
        out->v = retryable_code(code) || status == 429 || status >= 500 ? SENDER_V_RETRY
                                                                        : SENDER_V_FINAL;
        snprintf(out->code, sizeof(out->code), "%lld", code);
    } else {
        out->v = status == 429 || status >= 500 || status < 300 ? SENDER_V_RETRY : SENDER_V_FINAL;
        out->ambiguous = status >= 200 && status < 300; /* accepted, but no id */
        snprintf(out->code, sizeof(out->code), "http_%ld", status);
    }
    json_decref(j);
}

const struct sender_provider sender_whatsapp = {
    .name = "whatsapp",
    .has_echo = true,
    .build = build,
    .parse = parse,
};
