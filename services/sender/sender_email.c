/*
 * NAME
 *	sender_email - email channels: SMTP or the Gmail API, by the channel's secrets
 * SYNOPSIS
 *	sender_email.build / .parse
 * DESCRIPTION
 *	An "email" channel's external_address is the mailbox (the From and the
 *	SMTP MAIL FROM); the contact's address is the lead's (To, RCPT TO).
 *	The channel's sealed secrets pick the transport:
 *	  "smtp_url" (smtp://host:port or smtps://host:port), with
 *	    "smtp_user"/"smtp_password" when the server wants AUTH and
 *	    "smtp_starttls":"required" to refuse a server without STARTTLS
 *	    (default: STARTTLS when offered, CURLUSESSL_TRY): the request is
 *	    flagged smtp and sender_smtp.c sends it;
 *	  else "access_token": Gmail users.messages.send, POST
 *	    TN_GMAIL_API_BASE/gmail/v1/users/me/messages/send, Bearer, JSON
 *	    {"raw": base64url(message), "threadId"?}. The request also
 *	    carries the channel's "refresh_token" (if any) and "expires_at"
 *	    (epoch seconds, a decimal string or a JSON integer; absent:
 *	    unknown), with which sender_gmail.c refreshes a token that is
 *	    known expired or that Gmail answers 401.
 *
 *	The message (sender_mime.c): Subject is the producer's (the entry's
 *	"subject"), else "Re: " and the subject of the lead's last inbound
 *	email, else none. In-Reply-To is the row's reply_to (the entry's
 *	"reply_to" or "in_reply_to": the lead's Message-ID), else the
 *	Message-ID of the lead's last inbound email; References continue that
 *	email's References. Gmail also gets that email's threadId. The lead's
 *	last inbound email is read from messages (sender_store.c): its
 *	provider_message_id is the RFC Message-ID, raw.subject, raw.references
 *	and raw.thread_id (Gmail's) the rest. Email has no templates.
 *
 *	Answers (Gmail): 200 with "id" is accepted (the Gmail message id is the
 *	provider id); 429 and 5xx retry (Retry-After honoured); other errors
 *	are final with "http_<status>" (a 401 only once sender_gmail.c could
 *	not get a fresh token: sender_send.c asks it first). SMTP answers: sender_smtp.c.
 * RUNS ON
 *	any thread (pure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_time.h>

#include "sender.h"

/* jstr - a non-empty string member of j, or NULL */
static const char *jstr(const json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));

    return v != NULL && *v != '\0' ? v : NULL;
}

/* reply_subject - "Re: " + the lead's subject (not doubled); new, or NULL */
static char *reply_subject(const json_t *last_in)
{
    const char *s = jstr(last_in, "subject");
    size_t n;
    char *out;

    if (s == NULL)
        return NULL;
    if (strncasecmp(s, "re:", 3) == 0)
        return tn_xstrdup(s);
    n = strlen(s) + 5;
    out = tn_xmalloc(n);
    snprintf(out, n, "Re: %s", s);
    return out;
}

/* message - the RFC 5322 message of m; *msg, *msgid new */
static enum tn_err message(const struct sender_msg *m, char **msg, char **msgid, const char **why)
{
    char *subject = m->subject != NULL ? NULL : reply_subject(m->last_in);
    const char *irt = m->reply_to != NULL ? m->reply_to : jstr(m->last_in, "message_id");
    const char *last_id = jstr(m->last_in, "message_id");
    struct sender_mime in = {
        .from = m->from,
        .to = m->to,
        .subject = m->subject != NULL ? m->subject : subject,
        .in_reply_to = irt,
        /* the chain continues only when we answer that very email */
        .references = last_id != NULL && irt != NULL && strcmp(irt, last_id) == 0
                          ? jstr(m->last_in, "references")
                          : NULL,
        .outbound_id = m->outbound_id,
        .text = m->text,
    };
    enum tn_err err = sender_mime_build(&in, tn_now_ms(), msg, msgid, why);

    tn_free(subject);
    return err;
}

/* build_smtp - the SMTP request (sender_smtp.c sends it) */
static enum tn_err build_smtp(const struct sender_msg *m, const char *url, struct sender_req *out,
                              const char **why)
{
    const char *user = sender_secret(m->secrets, "smtp_user");
    const char *pass = sender_secret(m->secrets, "smtp_password");
    const char *tls = sender_secret(m->secrets, "smtp_starttls");
    char *msg, *msgid;
    size_t n;

    if (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0) {
        *why = "smtp.url_invalid";
        return TN_EINVAL;
    }
    if (message(m, &msg, &msgid, why) != TN_OK)
        return TN_EINVAL;
    out->smtp = true;
    out->smtp_tls_required = tls != NULL && strcmp(tls, "required") == 0;
    out->url = tn_xstrdup(url);
    tn_buf_init(&out->body, 0);
    tn_buf_adds(&out->body, msg);
    out->message_id = msgid;
    out->mail_from = tn_xstrdup(m->from);
    out->rcpt_to = tn_xstrdup(m->to);
    if (user != NULL) {
        n = strlen(user) + (pass != NULL ? strlen(pass) : 0) + 2;
        out->userpwd = tn_xmalloc(n);
        snprintf(out->userpwd, n, "%s:%s", user, pass != NULL ? pass : "");
    }
    tn_free(msg);
    return TN_OK;
}

/* bearer - new "Authorization: Bearer <token>" */
static char *bearer(const char *token)
{
    size_t n = strlen(token) + 24;
    char *h = tn_xmalloc(n);

    snprintf(h, n, "Authorization: Bearer %s", token);
    return h;
}

/* expires_s - the secret "expires_at" in epoch seconds, 0 when absent or unreadable */
static int64_t expires_s(const json_t *secrets)
{
    const json_t *v = json_object_get(secrets, "expires_at");
    const char *s = json_string_value(v);
    char *end = NULL;
    long long n;

    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
    if (s == NULL)
        return 0;
    n = strtoll(s, &end, 10);
    return end != s && *end == '\0' && n > 0 ? (int64_t)n : 0;
}

/* sender_gmail_set_token - see sender.h */
void sender_gmail_set_token(struct sender_req *r, const char *token)
{
    if (r->headers[0] != NULL)
        tn_wipe(r->headers[0], strlen(r->headers[0]));
    tn_free(r->headers[0]);
    r->headers[0] = bearer(token);
    if (r->gm_access != NULL)
        tn_wipe(r->gm_access, strlen(r->gm_access));
    tn_free(r->gm_access);
    r->gm_access = tn_xstrdup(token);
}

/* build_gmail - POST .../users/me/messages/send {"raw","threadId"?} */
static enum tn_err build_gmail(const struct sender_cfg *cfg, const struct sender_msg *m,
                               const char *token, struct sender_req *out, const char **why)
{
    const char *thread = jstr(m->last_in, "thread_id");
    char *msg, *msgid, *raw, *text;
    json_t *b;
    size_t n;

    if (message(m, &msg, &msgid, why) != TN_OK)
        return TN_EINVAL;
    raw = tn_base64_encode(msg, strlen(msg), true);
    b = json_pack("{ss}", "raw", raw);
    if (thread != NULL && strstr(msg, "\r\nIn-Reply-To: ") != NULL)
        json_object_set_new(b, "threadId", json_string(thread));
    text = sender_json_text(b);
    tn_buf_init(&out->body, 0);
    tn_buf_adds(&out->body, text);
    n = strlen(cfg->gmail_base) + 40;
    out->url = tn_xmalloc(n);
    snprintf(out->url, n, "%s/gmail/v1/users/me/messages/send", cfg->gmail_base);
    sender_gmail_set_token(out, token);
    out->headers[1] = tn_xstrdup("Content-Type: application/json");
    if (sender_secret(m->secrets, "refresh_token") != NULL)
        out->gm_refresh = tn_xstrdup(sender_secret(m->secrets, "refresh_token"));
    out->gm_exp_s = expires_s(m->secrets);
    out->message_id = msgid;
    json_decref(b);
    tn_free(text);
    tn_free(raw);
    tn_free(msg);
    return TN_OK;
}

/* build - SMTP when the channel has an smtp_url, else Gmail */
static enum tn_err build(const struct sender_cfg *cfg, const struct sender_msg *m,
                         struct sender_req *out, const char **why)
{
    const char *url = sender_secret(m->secrets, "smtp_url");
    const char *token = sender_secret(m->secrets, "access_token");
    enum tn_err err;

    memset(out, 0, sizeof(*out));
    if (m->template != NULL || m->text == NULL) {
        *why = "email.no_templates";
        return TN_EINVAL;
    }
    if (url == NULL && token == NULL) {
        *why = "credentials.missing";
        return TN_EINVAL;
    }
    err = url != NULL ? build_smtp(m, url, out, why) : build_gmail(cfg, m, token, out, why);
    if (err != TN_OK)
        sender_req_free(out);
    return err;
}

/* parse - classify a Gmail users.messages.send answer */
static void parse(long status, const char *body, size_t len, const char *retry_after,
                  struct sender_result *out)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));

    memset(out, 0, sizeof(*out));
    out->retry_after_ms = sender_retry_after_ms(retry_after);
    if (status >= 200 && status < 300 && id != NULL && *id != '\0' &&
        strlen(id) < sizeof(out->pmid)) {
        out->v = SENDER_V_OK;
        snprintf(out->pmid, sizeof(out->pmid), "%s", id);
    } else {
        out->v = status == 429 || status >= 500 || status < 300 ? SENDER_V_RETRY : SENDER_V_FINAL;
        out->ambiguous = status >= 200 && status < 300; /* accepted, but no id */
        snprintf(out->code, sizeof(out->code), "http_%ld", status);
    }
    json_decref(j);
}

const struct sender_provider sender_email = {
    .name = "email",
    .has_echo = false, /* neither transport echoes; a resend keeps the Message-ID */
    .build = build,
    .parse = parse,
};
