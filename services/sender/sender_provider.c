/*
 * NAME
 *	sender_provider - what the providers share: lookup by channel kind,
 *	Retry-After, transport failures, and the delivery state order
 * SYNOPSIS
 *	#include "sender.h"
 * DESCRIPTION
 *	Pure helpers for sender_whatsapp.c, sender_twilio.c, sender_telegram.c,
 *	sender_email.c
 *	and the status handler. The state order is the one of
 *	proto/sql/0003_sender.sql: queued < sending < sent < delivered < read;
 *	failed and dead end a row, except that delivered and read override
 *	failed (a multi-device user may report failed, then delivered).
 * RUNS ON
 *	any thread (no state).
 */
#define _GNU_SOURCE /* strptime, timegm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <tn/tn_id.h>
#include <tn/tn_mem.h>

#include "sender.h"

/* sender_provider_of - the provider of a channel kind */
const struct sender_provider *sender_provider_of(const char *channel_kind)
{
    if (channel_kind == NULL)
        return NULL;
    if (strcmp(channel_kind, "whatsapp") == 0)
        return &sender_whatsapp;
    if (strcmp(channel_kind, "twilio_sms") == 0 || strcmp(channel_kind, "twilio_whatsapp") == 0)
        return &sender_twilio;
    if (strcmp(channel_kind, "telegram") == 0)
        return &sender_telegram;
    if (strcmp(channel_kind, "email") == 0)
        return &sender_email;
    return NULL;
}

struct tn_http_request sender_req_http(const struct sender_req *r, int64_t timeout_ms,
                                       size_t max_response)
{
    return (struct tn_http_request){
        .method = "POST",
        .url = r->url,
        .headers = (const char *const *)r->headers,
        .body = r->body.data,
        .body_len = r->body.len,
        .timeout_ms = (uint32_t)timeout_ms,
        .max_response = max_response,
        .userpwd = r->userpwd,
    };
}

/* sender_req_free - release a request's members */
void sender_req_free(struct sender_req *r)
{
    tn_free(r->url);
    tn_buf_free(&r->body);
    for (size_t i = 0; i < sizeof(r->headers) / sizeof(r->headers[0]); i++)
        tn_free(r->headers[i]);
    if (r->userpwd != NULL)
        tn_wipe(r->userpwd, strlen(r->userpwd)); /* holds a credential */
    tn_free(r->userpwd);
    tn_free(r->mail_from);
    tn_free(r->rcpt_to);
    tn_free(r->message_id);
    tn_free_secret(r->gm_access); /* Gmail tokens */
    tn_free_secret(r->gm_refresh);
    memset(r, 0, sizeof(*r));
}

/* sender_secret - secrets[name] as a string */
const char *sender_secret(const struct json_t *secrets, const char *name)
{
    const char *v = json_string_value(json_object_get(secrets, name));

    return v != NULL && *v != '\0' ? v : NULL;
}

/* sender_json_text - compact JSON text, in our allocator */
char *sender_json_text(const json_t *j)
{
    size_t len = json_dumpb(j, NULL, 0, JSON_COMPACT);
    char *text = tn_xmalloc(len + 1);

    json_dumpb(j, text, len, JSON_COMPACT);
    text[len] = '\0';
    return text;
}

/* sender_wait_ms - a provider's wait in seconds as ms: 0 when none,
 * at most SENDER_RETRY_AFTER_MAX_S */
int64_t sender_wait_ms(long long s)
{
    if (s <= 0)
        return 0;
    return (s < SENDER_RETRY_AFTER_MAX_S ? s : SENDER_RETRY_AFTER_MAX_S) * 1000;
}

/* sender_retry_after_ms - Retry-After as delta seconds or an IMF date */
int64_t sender_retry_after_ms(const char *v)
{
    char *end;
    long long s;
    struct tm tm;
    time_t when, now = time(NULL);

    if (v == NULL || *v == '\0')
        return 0;
    s = strtoll(v, &end, 10);
    if (end != v && (*end == '\0' || *end == ' ' || *end == '\r'))
        return sender_wait_ms(s);
    memset(&tm, 0, sizeof(tm));
    if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) == NULL)
        return 0;
    when = timegm(&tm);
    return when > now ? sender_wait_ms((long long)(when - now)) : 0;
}

/* sender_transport_result - no HTTP answer: retry; a timeout is ambiguous
 * (the provider may have accepted the request before we gave up) */
void sender_transport_result(enum tn_err err, struct sender_result *out)
{
    memset(out, 0, sizeof(*out));
    out->v = SENDER_V_RETRY;
    out->ambiguous = err == TN_ETIMEDOUT;
    snprintf(out->code, sizeof(out->code), "%s", err == TN_ETIMEDOUT ? "timeout" : "network");
}

/* rank - order of a row state or a mapped status; -1 unknown */
static int rank(const char *s)
{
    static const char *const order[] = {"queued", "sending", "sent", "delivered", "read"};

    for (int i = 0; i < 5; i++) {
        if (strcmp(s, order[i]) == 0)
            return i;
    }
    return -1;
}

/* map_status - a delivery.status word to a row state, NULL to ignore */
static const char *map_status(const char *st)
{
    if (strcmp(st, "sent") == 0)
        return "sent";
    if (strcmp(st, "delivered") == 0)
        return "delivered";
    if (strcmp(st, "read") == 0 || strcmp(st, "played") == 0)
        return "read";
    if (strcmp(st, "failed") == 0 || strcmp(st, "undelivered") == 0)
        return "failed";
    return NULL; /* accepted, queued, sending, scheduled, canceled, ...: nothing new */
}

/* sender_status_next - the furthest state, never backwards */
const char *sender_status_next(const char *cur, const char *st)
{
    const char *to = map_status(st);
    bool ended = strcmp(cur, "failed") == 0 || strcmp(cur, "dead") == 0;

    if (to == NULL || strcmp(cur, "canceled") == 0)
        return NULL;
    if (strcmp(to, "failed") == 0)
        return !ended && rank(cur) >= 0 && rank(cur) <= rank("sent") ? "failed" : NULL;
    if (ended) /* only proof of delivery overrides an end */
        return rank(to) >= rank("delivered") ? to : NULL;
    return rank(to) > rank(cur) ? to : NULL;
}
