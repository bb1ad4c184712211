/*
 * NAME
 *	sender_twilio - Twilio Messages API: POST /2010-04-01/Accounts/{Sid}/Messages.json
 * SYNOPSIS
 *	sender_twilio.build / .parse
 * DESCRIPTION
 *	Form-encoded (libcurl's escaping), HTTP Basic auth with the channel
 *	secrets "account_sid" and "auth_token". From is the channel's number,
 *	To the contact's; a twilio_whatsapp channel prefixes both with
 *	"whatsapp:". Text goes in Body; a template needs its ContentSid (with
 *	ContentVariables {"1":..,"2":..}). StatusCallback is
 *	TN_SENDER_TWILIO_STATUS_URL with ?outbound=<id>, which tern-ingest reads
 *	back into delivery.status (our echo, DESIGN.md).
 *
 *	Answers: 201 with "sid" is accepted; 429 (20429, never processed) and
 *	5xx retry (Retry-After honoured); other errors are final with Twilio's
 *	"code" (21610 unsubscribed, 21211 invalid number, 63016 window, ...).
 * RUNS ON
 *	any thread (pure).
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <tn/tn_mem.h>

#include "sender.h"

/* add_field - append "&name=value" (escaped) to b */
static void add_field(struct tn_buf *b, const char *name, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, (int)strlen(value));

    TN_ASSERT(esc != NULL);
    tn_buf_printf(b, "%s%s=%s", b->len > 0 ? "&" : "", name, esc);
    curl_free(esc);
}

/* add_address - a number, "whatsapp:"-prefixed on a WhatsApp channel */
static void add_address(struct tn_buf *b, const char *name, const char *num, bool wa)
{
    char tmp[300];

    if (!wa || strncmp(num, "whatsapp:", 9) == 0) {
        add_field(b, name, num);
        return;
    }
    snprintf(tmp, sizeof(tmp), "whatsapp:%s", num);
    add_field(b, name, tmp);
}

/* add_template - ContentSid + ContentVariables; false without a ContentSid */
static bool add_template(struct tn_buf *b, const json_t *t)
{
    const char *sid = json_string_value(json_object_get(t, "content_sid"));
    const json_t *vars = json_object_get(t, "variables");
    json_t *cv = json_object(), *v;
    size_t i;
    char *text;

    if (sid == NULL) {
        json_decref(cv);
        return false;
    }
    add_field(b, "ContentSid", sid);
    json_array_foreach(vars, i, v)
    {
        char key[24];

        snprintf(key, sizeof(key), "%zu", i + 1);
        json_object_set(cv, key, v);
    }
    if (json_object_size(cv) > 0) {
        text = sender_json_text(cv);
        add_field(b, "ContentVariables", text);
        tn_free(text);
    }
    json_decref(cv);
    return true;
}

/* add_callback - StatusCallback=<url>?outbound=<id> when configured */
static void add_callback(struct tn_buf *b, const char *url, const char *outbound)
{
    struct tn_buf u;

    if (url == NULL || *url == '\0')
        return;
    tn_buf_init(&u, 0);
    tn_buf_printf(&u, "%s%soutbound=", url, strchr(url, '?') != NULL ? "&" : "?");
    tn_buf_adds(&u, outbound); /* a uuid or a producer's key: url-safe in practice */
    add_field(b, "StatusCallback", u.data);
    tn_buf_free(&u);
}

/* build - the Messages.json request */
static enum tn_err build(const struct sender_cfg *cfg, const struct sender_msg *m,
                         struct sender_req *out, const char **why)
{
    const char *sid = sender_secret(m->secrets, "account_sid");
    const char *tok = sender_secret(m->secrets, "auth_token");
    bool wa = strcmp(m->channel_kind, "twilio_whatsapp") == 0;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (sid == NULL || tok == NULL) {
        *why = "credentials.missing";
        return TN_EINVAL;
    }
    tn_buf_init(&out->body, 0);
    add_address(&out->body, "To", m->to, wa);
    add_address(&out->body, "From", m->from, wa);
    if (m->template != NULL) {
        if (!add_template(&out->body, m->template)) {
            *why = "template.no_content_sid";
            sender_req_free(out);
            return TN_EINVAL;
        }
    } else {
        add_field(&out->body, "Body", m->text);
    }
    add_callback(&out->body, cfg->twilio_status_url, m->outbound_id);
    n = strlen(cfg->twilio_base) + strlen(sid) + 48;
    out->url = tn_xmalloc(n);
    snprintf(out->url, n, "%s/2010-04-01/Accounts/%s/Messages.json", cfg->twilio_base, sid);
    n = strlen(sid) + strlen(tok) + 2;
    out->userpwd = tn_xmalloc(n);
    snprintf(out->userpwd, n, "%s:%s", sid, tok);
    out->headers[0] = tn_xstrdup("Content-Type: application/x-www-form-urlencoded");
    return TN_OK;
}

/* parse - classify a Messages.json answer */
static void parse(long status, const char *body, size_t len, const char *retry_after,
                  struct sender_result *out)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *sid = json_string_value(json_object_get(j, "sid"));
    long long code = json_integer_value(json_object_get(j, "code"));

    memset(out, 0, sizeof(*out));
    out->retry_after_ms = sender_retry_after_ms(retry_after);
    if (status >= 200 && status < 300 && sid != NULL && *sid != '\0' &&
        strlen(sid) < sizeof(out->pmid)) {
        out->v = SENDER_V_OK;
        snprintf(out->pmid, sizeof(out->pmid), "%s", sid);
    } else {
        out->v = status == 429 || status >= 500 || status < 300 ? SENDER_V_RETRY : SENDER_V_FINAL;
        out->ambiguous = status >= 200 && status < 300; /* accepted, but no id */
        if (code != 0)
            snprintf(out->code, sizeof(out->code), "%lld", code);
        else
            snprintf(out->code, sizeof(out->code), "http_%ld", status);
    }
    json_decref(j);
}

const struct sender_provider sender_twilio = {
    .name = "twilio",
    .has_echo = true,
    .build = build,
    .parse = parse,
};
