/*
 * NAME
 *	tn_oauth_token - Google's OAuth token endpoint: the refresh request and
 *	the reading of its answers
 * SYNOPSIS
 *	#include <tn/tn_oauth_token.h>
 *	tn_oauth_token_refresh(http, url, id, secret, refresh, 0, on_token, arg);
 *	tn_oauth_token_read(resp, err, now_s, &t);  (in on_token)
 *	...
 *	tn_oauth_token_clear(&t);
 * DESCRIPTION
 *	One reading of the answer (RFC 6749 5.1 and 5.2, protocols.md 4.3
 *	and 4.4) for tern-sender's Gmail refresh (sender_gmail.c),
 *	tern-calsync's calendar refresh (calsync_gtoken.c) and its code
 *	exchange (calsync_gconnect.c), which used to read it three slightly
 *	different ways. Each caller maps the outcome to its own codes:
 *	  OK           200 and an access_token that is a non-empty string
 *	               shorter than TN_OAUTH_TOKEN_MAX
 *	  DEAD_GRANT   400 and error "invalid_grant" (revoked or expired
 *	               refresh token, a used or mismatched code)
 *	  UNAVAILABLE  a transport error, 429 or 5xx
 *	  REFUSED      anything else (invalid_client is our configuration; a
 *	               200 without a usable token is the endpoint's fault)
 *	expires_in is read only as a JSON integer; a huge one is capped at a
 *	year, and the sum with now_s saturates instead of overflowing.
 *	The parsed tree's copies of the tokens are wiped when it is freed
 *	(tn_secrets_free); the strings returned here are wiped by _clear.
 *	XXX: the answer's body itself is tn_http's, freed unwiped.
 * RUNS ON
 *	any thread (read, clear); loop (refresh, through tn_http).
 * DIAGNOSTICS
 *	none: nothing here logs. Callers log the status and the error code,
 *	never a token.
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_http.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth_token.h>
#include <tn/tn_secrets.h>

/* token - obj[key] when it is a non-empty string shorter than max: new, else NULL */
static char *token(const json_t *obj, const char *key, size_t max)
{
    const char *s = json_string_value(json_object_get(obj, key));
    size_t n = s != NULL ? strlen(s) : 0;

    return n > 0 && n < max ? tn_xstrdup(s) : NULL;
}

/* copy_error - obj's "error" string into dst, truncated, printable ASCII only */
static void copy_error(const json_t *obj, char *dst, size_t size)
{
    const char *e = json_string_value(json_object_get(obj, "error"));
    size_t i;

    dst[0] = '\0';
    if (e == NULL)
        return;
    for (i = 0; i + 1 < size && e[i] != '\0'; i++)
        dst[i] = e[i] >= 0x20 && e[i] < 0x7f ? e[i] : '?';
    dst[i] = '\0';
}

/* expiry - now_s + expires_in (positive, capped), else the default; saturating */
static int64_t expiry(const json_t *obj, int64_t now_s)
{
    const json_t *v = json_object_get(obj, "expires_in");
    json_int_t in = json_is_integer(v) ? json_integer_value(v) : 0;
    int64_t ttl = in > 0 ? (in < TN_OAUTH_TOKEN_TTL_MAX_S ? (int64_t)in : TN_OAUTH_TOKEN_TTL_MAX_S)
                         : TN_OAUTH_TOKEN_TTL_DEFAULT_S;

    return now_s > INT64_MAX - ttl ? INT64_MAX : now_s + ttl;
}

/* is_invalid_grant - the answer's whole error string (not the truncated copy) */
static bool is_invalid_grant(const json_t *obj)
{
    const char *e = json_string_value(json_object_get(obj, "error"));

    return e != NULL && strcmp(e, "invalid_grant") == 0;
}

void tn_oauth_token_read(const struct tn_http_response *resp, enum tn_err err, int64_t now_s,
                         struct tn_oauth_token *out)
{
    json_t *b = NULL;

    memset(out, 0, sizeof(*out));
    out->outcome = TN_OAUTH_TOKEN_UNAVAILABLE;
    if (err != TN_OK || resp == NULL)
        goto out;
    out->status = resp->status;
    if (resp->body != NULL)
        b = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (!json_is_object(b)) {
        json_decref(b);
        b = NULL; /* json_object_get(NULL, ...) is NULL: no tokens, no error */
    }
    copy_error(b, out->error, sizeof(out->error));
    if (resp->status == 200) {
        out->access = token(b, "access_token", TN_OAUTH_TOKEN_MAX);
        out->outcome = out->access != NULL ? TN_OAUTH_TOKEN_OK : TN_OAUTH_TOKEN_REFUSED;
    } else if (resp->status == 400 && is_invalid_grant(b)) {
        out->outcome = TN_OAUTH_TOKEN_DEAD_GRANT;
    } else if (resp->status == 429 || resp->status >= 500) {
        out->outcome = TN_OAUTH_TOKEN_UNAVAILABLE;
    } else {
        out->outcome = TN_OAUTH_TOKEN_REFUSED;
    }
    if (out->outcome == TN_OAUTH_TOKEN_OK) {
        out->refresh = token(b, "refresh_token", TN_OAUTH_TOKEN_MAX);
        out->id_token = token(b, "id_token", TN_OAUTH_ID_TOKEN_MAX);
        out->expires_s = expiry(b, now_s);
    }
out:
    tn_secrets_free(b); /* the tree's copies of the tokens, wiped */
}

void tn_oauth_token_clear(struct tn_oauth_token *t)
{
    if (t == NULL)
        return;
    tn_free_secret(t->access);
    tn_free_secret(t->refresh);
    tn_free_secret(t->id_token);
    memset(t, 0, sizeof(*t));
}

enum tn_err tn_oauth_token_refresh(struct tn_http *h, const char *url, const char *client_id,
                                   const char *client_secret, const char *refresh_token,
                                   uint32_t timeout_ms, tn_http_done_fn *done, void *arg)
{
    const char *const fields[] = {"grant_type",    "refresh_token", "refresh_token",
                                  refresh_token,   "client_id",     client_id,
                                  "client_secret", client_secret,   NULL};

    return tn_http_form_post(h, url, fields, timeout_ms, TN_OAUTH_TOKEN_MAX_RESPONSE, done, arg);
}
