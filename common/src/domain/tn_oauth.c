/*
 * NAME
 *	tn_oauth - sealed link, state and code tokens of the calendar-connect flow
 * DESCRIPTION
 *	See tn_oauth.h. A token is base64url(tn_seal(aad, compact JSON)).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth.h>
#include <tn/tn_secrets.h>

#define AAD_LINK "tern-oauth-link"
#define AAD_STATE "tern-oauth-state"

/* seal_json - base64url(tn_seal(aad, compact text of obj)); steals obj */
static char *seal_json(const struct tn_keyring *k, const char *aad, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS), *out = NULL;
    unsigned char *sealed = NULL;
    size_t len = 0;

    json_decref(obj);
    if (text == NULL)
        return NULL;
    if (tn_seal(k, aad, strlen(aad), text, strlen(text), &sealed, &len) == TN_OK)
        out = tn_base64_encode(sealed, len, true);
    tn_wipe(text, strlen(text));
    tn_free(text); /* jansson allocates with malloc */
    tn_free(sealed);
    return out;
}

/* open_json - the JSON object inside a token, or NULL */
static json_t *open_json(const struct tn_keyring *k, const char *aad, const char *token)
{
    unsigned char *sealed = NULL;
    size_t slen = 0;
    json_t *obj = NULL;

    if (token != NULL && strlen(token) <= 4096 &&
        tn_base64_decode(token, strlen(token), true, &sealed, &slen) == TN_OK)
        obj = tn_secrets_open_object(k, aad, strlen(aad), sealed, slen);
    tn_free(sealed);
    return obj;
}

/* copy_field - obj[key] (a string that fits) into dst; false if absent/too long */
static bool copy_field(const json_t *obj, const char *key, char *dst, size_t size)
{
    const char *v = json_string_value(json_object_get(obj, key));

    if (v == NULL || strlen(v) >= size)
        return false;
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

/* read_grant - the fields common to link and state */
static enum tn_err read_grant(json_t *obj, int64_t now_s, struct tn_oauth_grant *g, bool state)
{
    enum tn_err err = TN_EDENIED;

    memset(g, 0, sizeof(*g));
    if (obj == NULL || !copy_field(obj, "t", g->tenant, sizeof(g->tenant)) ||
        !copy_field(obj, "r", g->resource, sizeof(g->resource)) ||
        !json_is_integer(json_object_get(obj, "x")))
        goto out;
    if (state && (!copy_field(obj, "n", g->nonce, sizeof(g->nonce)) ||
                  !copy_field(obj, "v", g->verifier, sizeof(g->verifier))))
        goto out;
    g->exp_s = json_integer_value(json_object_get(obj, "x"));
    err = now_s > g->exp_s ? TN_ETIMEDOUT : TN_OK;
out:
    json_decref(obj);
    return err;
}

char *tn_oauth_link_seal(const struct tn_keyring *k, const char *tenant, const char *resource,
                         int64_t exp_s)
{
    if (!tn_uuid_valid(tenant) ||
        (resource != NULL && *resource != '\0' && !tn_uuid_valid(resource)))
        return NULL;
    return seal_json(k, AAD_LINK,
                     json_pack("{s:s, s:s, s:I}", "t", tenant, "r", resource ? resource : "", "x",
                               (json_int_t)exp_s));
}

enum tn_err tn_oauth_link_open(const struct tn_keyring *k, const char *token, int64_t now_s,
                               struct tn_oauth_grant *g)
{
    return read_grant(open_json(k, AAD_LINK, token), now_s, g, false);
}

char *tn_oauth_state_seal(const struct tn_keyring *k, struct tn_oauth_grant *g, int64_t now_s,
                          int64_t ttl_s)
{
    unsigned char raw[32];
    char *s;

    tn_random_bytes(raw, 16);
    s = tn_base64_encode(raw, 16, true);
    snprintf(g->nonce, sizeof(g->nonce), "%s", s);
    tn_free(s);
    tn_random_bytes(raw, sizeof(raw)); /* RFC 7636: 43..128 characters */
    s = tn_base64_encode(raw, sizeof(raw), true);
    snprintf(g->verifier, sizeof(g->verifier), "%s", s);
    tn_free(s);
    g->exp_s = now_s + ttl_s;
    return seal_json(k, AAD_STATE,
                     json_pack("{s:s, s:s, s:I, s:s, s:s}", "t", g->tenant, "r", g->resource, "x",
                               (json_int_t)g->exp_s, "n", g->nonce, "v", g->verifier));
}

enum tn_err tn_oauth_state_open(const struct tn_keyring *k, const char *token, int64_t now_s,
                                struct tn_oauth_grant *g)
{
    return read_grant(open_json(k, AAD_STATE, token), now_s, g, true);
}

/* code_aad - "tern-oauth-code:<tenant>:<request>" into buf */
static const char *code_aad(char *buf, size_t size, const char *tenant, const char *request_id)
{
    snprintf(buf, size, "tern-oauth-code:%s:%s", tenant, request_id);
    return buf;
}

char *tn_oauth_code_seal(const struct tn_keyring *k, const char *tenant, const char *request_id,
                         const char *code, const char *verifier)
{
    char aad[256];

    return seal_json(k, code_aad(aad, sizeof(aad), tenant, request_id),
                     json_pack("{s:s, s:s}", "code", code, "v", verifier));
}

enum tn_err tn_oauth_code_open(const struct tn_keyring *k, const char *tenant,
                               const char *request_id, const char *token, char **code,
                               char **verifier)
{
    char aad[256];
    json_t *obj = open_json(k, code_aad(aad, sizeof(aad), tenant, request_id), token);
    const char *c = json_string_value(json_object_get(obj, "code"));
    const char *v = json_string_value(json_object_get(obj, "v"));
    enum tn_err err = TN_EDENIED;

    *code = *verifier = NULL;
    if (c != NULL && v != NULL) {
        *code = tn_xstrdup(c);
        *verifier = tn_xstrdup(v);
        err = TN_OK;
    }
    json_decref(obj);
    return err;
}

char *tn_oauth_challenge(const char *verifier)
{
    unsigned char h[TN_SHA256_LEN];

    tn_sha256(verifier, strlen(verifier), h);
    return tn_base64_encode(h, sizeof(h), true);
}
