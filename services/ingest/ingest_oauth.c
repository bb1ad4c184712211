/*
 * NAME
 *	ingest_oauth - the browser half of connecting a Google Calendar
 * DESCRIPTION
 *	GET /oauth/google/start?link=<sealed link from ternctl>
 *	    checks the link (tn_oauth: sealed, expiring, names the tenant and
 *	    resource), seals a fresh state (nonce + PKCE verifier) and answers
 *	    302 to Google's authorization endpoint with access_type=offline,
 *	    prompt=consent, the calendar scopes and the S256 challenge.
 *	GET /oauth/google/callback?code=...&state=...
 *	    checks the state, seals the code and verifier for tern-calsync
 *	    (no secret travels in clear through Redis) and enqueues a
 *	    cal.request {op: "connect"} on tern:cal, deduplicated by the
 *	    state's nonce; answers a plain page once it is on the stream.
 *	    ?error=... (the owner declined) answers a page and enqueues nothing.
 *	Both are pure like the webhook parsers: the HTTP layer enqueues.
 * SECURITY
 *	Only a link sealed with the master key starts a flow, so nobody can
 *	attach a calendar to someone else's tenant. The state is sealed too,
 *	so its verifier stays secret and it cannot be forged or reused after
 *	it expires. Pages never echo request input.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <tn/tn_buf.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth.h>
#include <tn/tn_proto.h>
#include <tn/tn_time.h>

#include "ingest_srv.h"

#define HTML "text/html; charset=utf-8"
#define SCOPES                                                                                     \
    "openid email profile https://www.googleapis.com/auth/calendar.readonly "                      \
    "https://www.googleapis.com/auth/calendar.events"

/* page - a minimal HTML answer with a fixed message */
static void page(struct ingest_result *res, int status, const char *reason, const char *msg)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "<!doctype html><html><head><meta charset=\"utf-8\"><title>Tern</title>"
                     "</head><body><p>%s</p></body></html>\n",
                     msg);

    ingest_entry_verdict(res, status, reason);
    tn_free(res->body);
    res->body = tn_xstrndup(buf, (size_t)n);
    res->body_len = (size_t)n;
    res->content_type = HTML;
    tn_free(res->headers);
    res->headers = tn_xstrdup("Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n");
}

/* add_param - "&name=<escaped value>" (no '&' first) */
static void add_param(struct tn_buf *b, const char *name, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);

    tn_buf_printf(b, "%s%s=%s", b->len && b->data[b->len - 1] != '?' ? "&" : "", name,
                  esc ? esc : "");
    curl_free(esc);
}

/* redirect_to_google - 302 with the authorization request for g */
static void redirect_to_google(const struct ingest_oauth_cfg *cfg, struct ingest_result *res,
                               struct tn_oauth_grant *g, int64_t now_s)
{
    char *state = tn_oauth_state_seal(cfg->keys, g, now_s, cfg->state_ttl_s);
    char *challenge = tn_oauth_challenge(g->verifier);
    struct tn_buf b;

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "Location: %s?", cfg->auth_url);
    add_param(&b, "client_id", cfg->client_id);
    add_param(&b, "redirect_uri", cfg->redirect_uri);
    add_param(&b, "response_type", "code");
    add_param(&b, "scope", SCOPES);
    add_param(&b, "access_type", "offline");
    add_param(&b, "prompt", "consent");
    add_param(&b, "include_granted_scopes", "true");
    add_param(&b, "code_challenge", challenge);
    add_param(&b, "code_challenge_method", "S256");
    add_param(&b, "state", state ? state : "");
    tn_buf_adds(&b, "\r\n");
    page(res, 302, "oauth.redirect", "Redirecting to Google&hellip;");
    tn_free(res->headers);
    tn_buf_adds(&b, "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n");
    res->headers = tn_buf_steal(&b, NULL);
    tn_free(state);
    tn_free(challenge);
}

/* query_of - parse req's query into f; false (and a 400 page) if malformed */
static bool query_of(const struct ingest_request *req, struct ingest_form *f,
                     struct ingest_result *res)
{
    const char *q = req->query ? req->query : "";

    if (ingest_form_parse(q, strlen(q), f) != TN_OK) {
        page(res, 400, "query.malformed", "This link is not valid.");
        return false;
    }
    return true;
}

void ingest_oauth_start(const struct ingest_oauth_cfg *cfg, const struct ingest_request *req,
                        struct ingest_result *res)
{
    struct ingest_form f = {0};
    struct tn_oauth_grant g;
    enum tn_err err;

    if (cfg->keys == NULL || cfg->client_id[0] == '\0') {
        page(res, 404, "oauth.disabled", "Calendar connection is not configured here.");
        return;
    }
    if (!query_of(req, &f, res))
        goto out;
    err = tn_oauth_link_open(cfg->keys, ingest_form_get(&f, "link"), req->now_ms / 1000, &g);
    if (err == TN_ETIMEDOUT)
        page(res, 403, "link.expired", "This link has expired. Ask for a new one.");
    else if (err != TN_OK)
        page(res, 403, "link.invalid", "This link is not valid.");
    else
        redirect_to_google(cfg, res, &g, req->now_ms / 1000);
out:
    ingest_form_free(&f);
}

/* connect_entry - the cal.request for a granted code */
static void connect_entry(const struct ingest_oauth_cfg *cfg, const struct ingest_request *req,
                          const struct tn_oauth_grant *g, const char *code,
                          struct ingest_result *res)
{
    char request_id[96], dedupe[112], at[40];
    char *sealed, *trace;
    json_t *data, *oauth;

    snprintf(request_id, sizeof(request_id), "oauth-%s", g->nonce);
    snprintf(dedupe, sizeof(dedupe), "cal:%s", request_id);
    sealed = tn_oauth_code_seal(cfg->keys, g->tenant, request_id, code, g->verifier);
    oauth = json_pack("{s:s, s:s, s:s}", "provider", "google", "code_sealed", sealed ? sealed : "",
                      "redirect_uri", cfg->redirect_uri);
    if (g->resource[0] != '\0')
        json_object_set_new(oauth, "resource_id", json_string(g->resource));
    data = json_pack("{s:s, s:s, s:s, s:o, s:s}", "tenant", g->tenant, "request_id", request_id,
                     "op", "connect", "oauth", oauth, "requested_at",
                     tn_time_rfc3339(req->now_ms, at, sizeof(at)));
    trace = ingest_entry_trace_new(req);
    ingest_entry_verdict(res, 200, "accepted");
    if (sealed == NULL ||
        ingest_entry_push_cal(res, g->tenant, trace, request_id, dedupe, data) != TN_OK)
        page(res, 500, "oauth.seal_failed", "Something went wrong. Please try again.");
    else
        page(res, 200, "accepted",
             "Your Google Calendar is being connected. You can close this window.");
    tn_free(sealed);
    tn_free(trace);
}

void ingest_oauth_callback(const struct ingest_oauth_cfg *cfg, const struct ingest_request *req,
                           struct ingest_result *res)
{
    struct ingest_form f = {0};
    struct tn_oauth_grant g;
    const char *code;

    if (cfg->keys == NULL || cfg->client_id[0] == '\0') {
        page(res, 404, "oauth.disabled", "Calendar connection is not configured here.");
        return;
    }
    if (!query_of(req, &f, res))
        goto out;
    if (tn_oauth_state_open(cfg->keys, ingest_form_get(&f, "state"), req->now_ms / 1000, &g) !=
        TN_OK) {
        page(res, 400, "state.invalid", "This sign-in has expired or is not valid. Start again.");
        goto out;
    }
    code = ingest_form_get(&f, "code");
    if (ingest_form_get(&f, "error") != NULL || code == NULL || *code == '\0' ||
        strlen(code) > 2048) {
        page(res, 200, "oauth.declined", "Your calendar was not connected.");
        goto out;
    }
    connect_entry(cfg, req, &g, code, res);
out:
    ingest_form_free(&f);
}
