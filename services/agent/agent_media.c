/*
 * NAME
 *	agent_media - fetch a voice note's bytes from the messaging provider
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_media_fetch(turn, msg, done);
 * DESCRIPTION
 *	Each provider hands out media differently, always behind the channel's
 *	own credentials:
 *
 *	  WhatsApp  GET {TN_WHATSAPP_API_BASE}/{version}/{media id} with the
 *	            access_token as Bearer answers {"url": ...}; a GET of that
 *	            URL with the same Bearer returns the bytes.
 *	  Telegram  GET {TN_TELEGRAM_API_BASE}/bot{token}/getFile?file_id=...
 *	            answers {"ok":true,"result":{"file_path": ...}}; the bytes
 *	            are at {base}/file/bot{token}/{file_path}.
 *	  Twilio    the MediaUrl itself with HTTP Basic account_sid:auth_token.
 *	            Twilio answers with a redirect to its media store, which is
 *	            followed once without credentials. A URL not under
 *	            TN_TWILIO_API_BASE is refused, so the entry cannot send our
 *	            credentials anywhere else.
 *
 *	Media ids from the stream are percent-encoded before they enter a URL.
 *	Every request has TN_AGENT_MEDIA_TIMEOUT_MS; the bytes are capped at
 *	TN_AGENT_VOICE_MAX_BYTES. URLs carry credentials (Telegram's token is
 *	in the path) and are never logged; credential buffers are wiped.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	None here: the failed step goes to done as "why", and agent_voice logs.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_http.h>
#include <tn/tn_mem.h>

#include "agent.h"

#define LOOKUP_MAX (64 * 1024)

enum media_step { M_LOOKUP, M_BYTES, M_REDIRECT };

struct media {
    struct agent_turn *t;
    agent_media_done_fn *done;
    enum media_step step;
    long status; /* of the last answer, for the log */
};

static void media_http_done(const struct tn_http_response *resp, enum tn_err err, void *arg);

/* url_encode - percent-encode s onto b; a path from the provider keeps its / and %XX */
static void url_encode(struct tn_buf *b, const char *s, bool path)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || strchr("-._~", c) != NULL || (path && strchr("/%", c) != NULL))
            tn_buf_add(b, s, 1);
        else
            tn_buf_printf(b, "%%%02X", c);
    }
}

/* base_len - length of base without trailing slashes */
static size_t base_len(const char *base)
{
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/')
        n--;
    return n;
}

/* finish - report and free (bytes/mime stolen by done) */
static void finish(struct media *q, char *bytes, size_t len, char *mime, const char *why)
{
    struct agent_turn *t = q->t;
    agent_media_done_fn *done = q->done;
    long status = q->status;

    tn_free(q);
    done(t, bytes, len, mime, why, status);
}

/* get - one GET; auth is a header line or NULL, userpwd "user:pass" or NULL */
static const char *get(struct media *q, const char *url, const char *auth, const char *userpwd,
                       size_t cap)
{
    struct tn_http *http = agent_http(q->t->ctx);
    enum tn_err err;

    if (http == NULL)
        return "closing";
    err = tn_http_send(http,
                       &(struct tn_http_request){
                           .method = "GET",
                           .url = url,
                           .headers = (const char *const[]){auth, NULL},
                           .timeout_ms = (uint32_t)q->t->ctx->cfg.media_timeout_ms,
                           .max_response = cap,
                           .userpwd = userpwd,
                       },
                       media_http_done, q);
    return err == TN_OK ? NULL : "request";
}

/* bearer - "Authorization: Bearer <token>" into a new buffer */
static void bearer(struct tn_buf *b, const char *token)
{
    tn_buf_init(b, 0);
    tn_buf_printf(b, "Authorization: Bearer %s", token);
}

/* wipe - clear and free a buffer that held a credential */
static void wipe(struct tn_buf *b)
{
    if (b->data != NULL)
        memset(b->data, 0, b->len);
    tn_buf_free(b);
}

/* whatsapp_lookup - the media id's URL */
static const char *whatsapp_lookup(struct media *q, const char *id)
{
    const struct agent_cfg *cfg = &q->t->ctx->cfg;
    struct tn_buf url, auth;
    const char *why;

    tn_buf_init(&url, 0);
    tn_buf_printf(&url, "%.*s/", (int)base_len(cfg->whatsapp_base), cfg->whatsapp_base);
    url_encode(&url, cfg->whatsapp_version, false);
    tn_buf_adds(&url, "/");
    url_encode(&url, id, false);
    bearer(&auth, q->t->ld.media_token);
    why = get(q, url.data, auth.data, NULL, LOOKUP_MAX);
    wipe(&auth);
    tn_buf_free(&url);
    return why;
}

/* bot_token_ok - "<digits>:<base64url>", the only shape put into a path */
static bool bot_token_ok(const char *s)
{
    size_t d = strspn(s, "0123456789");

    return d > 0 && s[d] == ':' && s[d + 1] != '\0' &&
           strspn(s + d + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
               strlen(s + d + 1);
}

/* telegram_url - {base}[/file]/bot{token}/ into b */
static void telegram_url(struct tn_buf *b, const char *base, const char *token, bool file)
{
    tn_buf_init(b, 0);
    tn_buf_printf(b, "%.*s%s/bot%s/", (int)base_len(base), base, file ? "/file" : "", token);
}

/* telegram_lookup - getFile */
static const char *telegram_lookup(struct media *q, const char *file_id)
{
    struct tn_buf url;
    const char *why;

    if (!bot_token_ok(q->t->ld.media_token))
        return "credentials";
    telegram_url(&url, q->t->ctx->cfg.telegram_base, q->t->ld.media_token, false);
    tn_buf_adds(&url, "getFile?file_id=");
    url_encode(&url, file_id, false);
    why = get(q, url.data, NULL, NULL, LOOKUP_MAX);
    wipe(&url);
    return why;
}

/* twilio_get - the media URL with Basic auth, when it is Twilio's */
static const char *twilio_get(struct media *q, const char *url)
{
    const char *base = q->t->ctx->cfg.twilio_base;
    size_t n = base_len(base);
    struct tn_buf up;
    const char *why;

    if (strncmp(url, base, n) != 0 || url[n] != '/')
        return "url.foreign";
    if (q->t->ld.media_user == NULL)
        return "credentials";
    tn_buf_init(&up, 0);
    tn_buf_printf(&up, "%s:%s", q->t->ld.media_user, q->t->ld.media_token);
    q->step = M_BYTES;
    why = get(q, url, NULL, up.data, (size_t)q->t->ctx->cfg.media_max);
    wipe(&up);
    return why;
}

/* agent_media_lookup_url - where the lookup answer says the bytes are */
char *agent_media_lookup_url(const char *kind, const char *body, size_t len,
                             const char *telegram_base, const char *token)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    struct tn_buf url;
    char *out = NULL;

    if (strcmp(kind, "telegram") == 0) {
        const char *path =
            json_string_value(json_object_get(json_object_get(root, "result"), "file_path"));

        if (path != NULL && strstr(path, "..") == NULL) {
            telegram_url(&url, telegram_base, token, true);
            url_encode(&url, path, true);
            out = tn_buf_steal(&url, NULL);
        }
    } else {
        const char *u = json_string_value(json_object_get(root, "url"));

        if (u != NULL && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0))
            out = tn_xstrdup(u);
    }
    json_decref(root);
    return out;
}

/* lookup_done - the provider named where the bytes are: fetch them */
static const char *lookup_done(struct media *q, const struct tn_http_response *resp)
{
    const char *kind = q->t->ld.channel_kind, *why;
    char *u = agent_media_lookup_url(kind, resp->body, resp->body_len, q->t->ctx->cfg.telegram_base,
                                     q->t->ld.media_token);
    struct tn_buf auth;

    if (u == NULL)
        return "lookup.answer";
    q->step = M_BYTES;
    if (strcmp(kind, "telegram") == 0) {
        why = get(q, u, NULL, NULL, (size_t)q->t->ctx->cfg.media_max);
    } else {
        bearer(&auth, q->t->ld.media_token);
        why = get(q, u, auth.data, NULL, (size_t)q->t->ctx->cfg.media_max);
        wipe(&auth);
    }
    tn_wipe(u, strlen(u)); /* Telegram's carries the token */
    tn_free(u);
    return why;
}

/* redirect - Twilio's 30x to its media store: follow once, no credentials */
static const char *redirect(struct media *q, const struct tn_http_response *resp)
{
    const char *loc = tn_http_response_header(resp, "Location");

    if (q->step != M_BYTES || loc == NULL ||
        (strncmp(loc, "https://", 8) != 0 && strncmp(loc, "http://", 7) != 0))
        return "redirect";
    q->step = M_REDIRECT;
    return get(q, loc, NULL, NULL, (size_t)q->t->ctx->cfg.media_max);
}

/* bytes_done - the media: hand it over with its type */
static void bytes_done(struct media *q, const struct tn_http_response *resp)
{
    const char *ct = tn_http_response_header(resp, "Content-Type");
    char *bytes = tn_xmalloc(resp->body_len + 1);

    memcpy(bytes, resp->body, resp->body_len);
    bytes[resp->body_len] = '\0';
    finish(q, bytes, resp->body_len, ct != NULL ? tn_xstrdup(ct) : NULL, NULL);
}

/* media_http_done - advance one step */
static void media_http_done(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct media *q = arg;
    const char *why = NULL;

    if (err != TN_OK) {
        finish(q, NULL, 0, NULL, err == TN_ECANCELED ? "closing" : "transport");
        return;
    }
    q->status = resp->status;
    if (resp->status >= 300 && resp->status < 400)
        why = redirect(q, resp);
    else if (resp->status != 200)
        why = q->step == M_LOOKUP ? "lookup.status" : "media.status";
    else if (q->step == M_LOOKUP)
        why = lookup_done(q, resp);
    else if (resp->body_len == 0)
        why = "media.empty";
    else {
        bytes_done(q, resp);
        return;
    }
    if (why != NULL)
        finish(q, NULL, 0, NULL, why);
}

/* agent_media_fetch - the first request of the provider's chain */
void agent_media_fetch(struct agent_turn *t, const struct agent_hmsg *m, agent_media_done_fn *done)
{
    struct media *q = tn_xcalloc(1, sizeof(*q));
    const char *kind = t->ld.channel_kind != NULL ? t->ld.channel_kind : "";
    const char *why;

    q->t = t;
    q->done = done;
    q->step = M_LOOKUP;
    if (m->media_ref == NULL || m->media_ref[0] == '\0')
        why = "media.none";
    else if (t->ld.media_token == NULL)
        why = "credentials";
    else if (strcmp(kind, "whatsapp") == 0)
        why = whatsapp_lookup(q, m->media_ref);
    else if (strcmp(kind, "telegram") == 0)
        why = telegram_lookup(q, m->media_ref);
    else if (strncmp(kind, "twilio_", 7) == 0)
        why = twilio_get(q, m->media_ref);
    else
        why = "channel.kind";
    if (why != NULL)
        finish(q, NULL, 0, NULL, why);
}
