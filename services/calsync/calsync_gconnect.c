/*
 * NAME
 *	calsync_gconnect - op connect: a Google authorization code becomes a
 *	stored calendar account
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_connect_start(ctx, tenant, data_json, consumer, entry);
 * DESCRIPTION
 *	tern-ingest's OAuth callback put the code and PKCE verifier on
 *	tern:cal sealed for this tenant and request (tn_oauth_code_seal). The
 *	job:
 *	  1. looks for an account already stored by this request id (a
 *	     redelivered entry: acknowledged, the code is not exchanged twice);
 *	  2. opens the code (tn_oauth_code_open) and exchanges it at
 *	     TN_GOOGLE_TOKEN_URL (authorization_code, client id and secret,
 *	     redirect_uri from the entry, code_verifier; protocols.md 4.3),
 *	     the answer classified by tn_oauth_token_read (429, 5xx, network:
 *	     google_token_unavailable; any other answer without a usable
 *	     access token: code_rejected);
 *	  3. reads the identity from TN_GOOGLE_USERINFO_URL, or, when that is
 *	     empty or fails, from the id_token received directly from the token
 *	     endpoint over TLS (aud and exp checked; protocols.md 4.6);
 *	  4. stores the account, keyed by Google's `sub` and the resource (a
 *	     reconnect updates the same row and clears needs_reconnect): email,
 *	     name, picture, calendar "primary", the tokens sealed with aad
 *	     "oauth:<tenant>:<account>:access" / ":refresh", expires_at, and an
 *	     audit_log row "calendar.connected".
 *	A code Google refuses (invalid_grant: used, expired, or a redirect or
 *	verifier mismatch) is dead-lettered: only a new consent helps.
 * RUNS ON
 *	loop; the store work on the threadpool.
 * DIAGNOSTICS
 *	calsync.connected (info, email masked); calsync.code_rejected (warn:
 *	the HTTP status and Google's error code, at most 63 printable
 *	characters); calsync.job_failed with why code_does_not_open,
 *	code_rejected, google_token_unavailable, google_identity. The code,
 *	verifier and tokens are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_consumer.h>
#include <tn/tn_crypto.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth.h>
#include <tn/tn_oauth_token.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "calsync.h"

#define CONNECT_MAX_RESPONSE (64u << 10)

struct calsync_connect {
    char request_id[132];
    char *code_sealed, *redirect_uri, *resource; /* from the entry */
    char *access, *refresh, *id_token;           /* from the token endpoint */
    int64_t expires_s;
    char *sub, *email, *name, *picture;
    bool seen; /* a redelivery: stored before */
};

static const char sql_seen[] = "SELECT id FROM oauth_accounts WHERE tenant_id ="
                               " tern_current_tenant() AND connect_request = $1";

static const char sql_find[] =
    "SELECT id FROM oauth_accounts WHERE tenant_id = tern_current_tenant()"
    " AND provider = 'google' AND provider_subject = $1 AND COALESCE(resource_id, '') = $2"
    " AND disconnected_at IS NULL FOR UPDATE";

static const char sql_upsert[] =
    "INSERT INTO oauth_accounts AS a (tenant_id, id, provider, resource_id, provider_subject,"
    " account_email, display_name, picture_url, calendar_id, access_token_sealed,"
    " refresh_token_sealed, key_id, expires_at, connect_request)"
    " VALUES (tern_current_tenant(), $1::uuid, 'google', NULLIF($2, ''), $3, $4, $5, $6,"
    " 'primary', decode($7, 'hex'), decode($8, 'hex'), $9::int, to_timestamp($10::bigint), $11)"
    " ON CONFLICT (tenant_id, id) DO UPDATE SET account_email = EXCLUDED.account_email,"
    " display_name = EXCLUDED.display_name, picture_url = EXCLUDED.picture_url,"
    " access_token_sealed = EXCLUDED.access_token_sealed,"
    " refresh_token_sealed = COALESCE(EXCLUDED.refresh_token_sealed, a.refresh_token_sealed),"
    " key_id = EXCLUDED.key_id, expires_at = EXCLUDED.expires_at,"
    " connect_request = EXCLUDED.connect_request, needs_reconnect = false,"
    " reconnect_reason = NULL, reconnect_flagged_at = NULL, updated_at = now()";

static const char sql_audit[] =
    "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES (tern_current_tenant(),"
    " 'tern-calsync', 'calendar.connected', jsonb_build_object('account_id', $1::text,"
    " 'provider', 'google'))";

/* calsync_connect_free - release a connect state, wiping its secrets */
void calsync_connect_free(struct calsync_connect *cn)
{
    if (cn == NULL)
        return;
    tn_free_secret(cn->code_sealed);
    tn_free_secret(cn->access);
    tn_free_secret(cn->refresh);
    tn_free_secret(cn->id_token);
    tn_free(cn->redirect_uri);
    tn_free(cn->resource);
    tn_free(cn->sub);
    tn_free(cn->email);
    tn_free(cn->name);
    tn_free(cn->picture);
    tn_free(cn);
}

/* fail - finish the job with an error */
static void fail(struct calsync_job *j, enum tn_err err, const char *why)
{
    j->err = err;
    j->why = why;
    calsync_job_finish(j);
}

/* seen_work - was this request stored already? Runs on: threadpool */
static enum tn_err seen_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_job *j = arg;
    const char *p[1] = {j->conn->request_id};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_begin_tenant(c, j->tenant);

    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, sql_seen, 1, p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) > 0) {
        j->conn->seen = true;
        snprintf(j->acct.id, sizeof(j->acct.id), "%s", tn_pg_result_value(res, 0, 0));
    }
    tn_pg_result_free(res);
    tn_pgconn_rollback(c);
    return err;
}

/* account_id - the row to write: the live one of this subject and
 * resource, else a new id */
static enum tn_err account_id(struct tn_pgconn *c, struct calsync_job *j)
{
    struct calsync_connect *cn = j->conn;
    const char *p[2] = {cn->sub, cn->resource != NULL ? cn->resource : ""};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_find, 2, p, &res);

    if (err == TN_OK && tn_pg_result_rows(res) == 0) {
        tn_pg_result_free(res);
        res = NULL;
        err = tn_pgconn_query(c, "SELECT gen_random_uuid()", 0, NULL, &res);
    }
    if (err == TN_OK)
        snprintf(j->acct.id, sizeof(j->acct.id), "%s", tn_pg_result_value(res, 0, 0));
    tn_pg_result_free(res);
    return err;
}

/* store_rows - seal the tokens, upsert the account, audit */
static enum tn_err store_rows(struct tn_pgconn *c, struct calsync_job *j)
{
    struct calsync_connect *cn = j->conn;
    const struct tn_keyring *k = j->ctx->keys;
    char *acc = NULL, *ref = NULL, kid[16], exp[24];
    const char *p[11];
    enum tn_err err = account_id(c, j);

    if (err == TN_OK)
        err = calsync_gtoken_seal_hex(k, j->tenant, j->acct.id, "access", cn->access, &acc);
    if (err == TN_OK)
        err = calsync_gtoken_seal_hex(k, j->tenant, j->acct.id, "refresh", cn->refresh, &ref);
    if (err != TN_OK)
        goto out;
    snprintf(kid, sizeof(kid), "%u", tn_keyring_current(k));
    snprintf(exp, sizeof(exp), "%lld", (long long)cn->expires_s);
    p[0] = j->acct.id, p[1] = cn->resource != NULL ? cn->resource : "", p[2] = cn->sub;
    p[3] = cn->email, p[4] = cn->name, p[5] = cn->picture, p[6] = acc, p[7] = ref;
    p[8] = kid, p[9] = exp, p[10] = cn->request_id;
    err = tn_pgconn_query(c, sql_upsert, 11, p, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_audit, 1, p, NULL);
out:
    tn_free(acc);
    tn_free(ref);
    return err;
}

/* store_work - one transaction bound to the tenant. Runs on: threadpool */
static enum tn_err store_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_job *j = arg;
    enum tn_err err = tn_pgconn_begin_tenant(c, j->tenant);

    if (err != TN_OK)
        return err;
    err = store_rows(c, j);
    err = err == TN_OK ? tn_pgconn_commit(c) : err;
    tn_pgconn_rollback(c);
    return err;
}

/* stored - the account is durable. Runs on: loop */
static void stored(enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;
    struct tn_log_ctx lc = {.tenant_id = j->tenant};

    if (err != TN_OK) {
        fail(j, err, "database");
        return;
    }
    calsync_gtoken_learn(j->ctx, j->tenant, j->acct.id, j->conn->access, j->conn->expires_s);
    tn_log_info(&lc, "calsync.connected", TN_KV_STR("account_id", j->acct.id),
                TN_KV_EMAIL("email", j->conn->email),
                TN_KV_BOOL("refresh_token", j->conn->refresh != NULL));
    j->has_account = j->acct.google = true;
    calsync_job_finish(j);
}

/* dup - a bounded copy of a JSON string member, or NULL */
static char *dup(json_t *o, const char *key, size_t max)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL && *s != '\0' && strlen(s) <= max ? tn_xstrdup(s) : NULL;
}

/* identity_from - sub, email, name, picture from a userinfo or claims object */
static bool identity_from(struct calsync_connect *cn, json_t *o)
{
    tn_free(cn->sub);
    tn_free(cn->email);
    tn_free(cn->name);
    tn_free(cn->picture);
    cn->sub = dup(o, "sub", 255);
    cn->email = dup(o, "email", 320);
    cn->name = dup(o, "name", 200);
    cn->picture = dup(o, "picture", 2048);
    return cn->sub != NULL;
}

/* claims - the id_token's payload, if its aud is our client and it has not
 * expired (received straight from the token endpoint: no signature check);
 * new or NULL */
static json_t *claims(struct calsync_job *j)
{
    const char *t = j->conn->id_token, *a, *b;
    unsigned char *raw = NULL;
    size_t n = 0;
    json_t *o = NULL;
    const char *aud;

    a = t != NULL ? strchr(t, '.') : NULL;
    b = a != NULL ? strchr(a + 1, '.') : NULL;
    if (b == NULL || tn_base64_decode(a + 1, (size_t)(b - a - 1), true, &raw, &n) != TN_OK)
        goto out;
    o = json_loadb((const char *)raw, n, 0, NULL);
    aud = json_string_value(json_object_get(o, "aud"));
    if (aud == NULL || strcmp(aud, j->ctx->cfg.google_client_id) != 0 ||
        json_integer_value(json_object_get(o, "exp")) < tn_now_ms() / 1000) {
        json_decref(o);
        o = NULL;
    }
out:
    tn_free(raw);
    return o;
}

/* identified - store what we have, from userinfo (b) or the id_token */
static void identified(struct calsync_job *j, json_t *b)
{
    json_t *c = NULL;

    if (b == NULL || !identity_from(j->conn, b)) {
        c = claims(j);
        if (c == NULL || !identity_from(j->conn, c)) {
            json_decref(c);
            fail(j, TN_EPROTO, "google_identity");
            return;
        }
        json_decref(c);
    }
    if (tn_pg_submit(j->ctx->pg, store_work, stored, j) != TN_OK)
        fail(j, TN_ECANCELED, "shutting_down");
}

/* on_userinfo - the identity answer. Runs on: loop */
static void on_userinfo(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;
    json_t *b = NULL;

    if (err == TN_OK && resp->status == 200)
        b = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (err == TN_ECANCELED) {
        fail(j, err, "shutting_down");
        return;
    }
    identified(j, b);
    json_decref(b);
}

/* userinfo - GET the identity with the new access token */
static void userinfo(struct calsync_job *j)
{
    char auth[4200];
    const char *hdr[2] = {auth, NULL};
    struct tn_http_request rq = {.method = "GET",
                                 .url = j->ctx->cfg.google_userinfo_url,
                                 .headers = hdr,
                                 .max_response = CONNECT_MAX_RESPONSE};
    enum tn_err err;

    if (rq.url[0] == '\0') {
        identified(j, NULL);
        return;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", j->conn->access);
    err = tn_http_send(j->ctx->http, &rq, on_userinfo, j);
    tn_wipe(auth, sizeof(auth));
    if (err != TN_OK)
        identified(j, NULL);
}

/* on_token - the code exchange's answer (tn_oauth_token_read). Runs on: loop */
static void on_token(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;
    struct calsync_connect *cn = j->conn;
    struct tn_oauth_token t;

    tn_oauth_token_read(resp, err, tn_now_ms() / 1000, &t);
    if (t.outcome == TN_OAUTH_TOKEN_UNAVAILABLE) {
        fail(j, err == TN_ECANCELED ? err : TN_EUNAVAIL, "google_token_unavailable");
    } else if (t.outcome != TN_OAUTH_TOKEN_OK) { /* invalid_grant, invalid_client, no token */
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = j->tenant}, "calsync.code_rejected",
                    TN_KV_INT("http_status", t.status),
                    TN_KV_STR("error", t.error[0] != '\0' ? t.error : NULL));
        fail(j, TN_EPROTO, "code_rejected");
    } else {
        cn->access = t.access;
        cn->refresh = t.refresh;
        cn->id_token = t.id_token;
        t.access = t.refresh = t.id_token = NULL;
        cn->expires_s = t.expires_s;
        userinfo(j);
    }
    tn_oauth_token_clear(&t);
}

/* exchange - open the code and POST it to the token endpoint */
static void exchange(struct calsync_job *j)
{
    struct calsync_cfg *cfg = &j->ctx->cfg;
    struct calsync_connect *cn = j->conn;
    char *code = NULL, *verifier = NULL;
    enum tn_err err;

    if (j->ctx->keys == NULL || tn_oauth_code_open(j->ctx->keys, j->tenant, cn->request_id,
                                                   cn->code_sealed, &code, &verifier) != TN_OK) {
        fail(j, TN_EDENIED, "code_does_not_open");
        return;
    }
    err = tn_http_form_post(
        j->ctx->http, cfg->google_token_url,
        (const char *const[]){"grant_type", "authorization_code", "code", code, "redirect_uri",
                              cn->redirect_uri, "client_id", cfg->google_client_id, "client_secret",
                              cfg->google_client_secret, "code_verifier", verifier, NULL},
        0, TN_OAUTH_TOKEN_MAX_RESPONSE, on_token, j);
    tn_free_secret(code);
    tn_free_secret(verifier);
    if (err != TN_OK)
        fail(j, TN_EUNAVAIL, "google_token_unavailable");
}

/* checked - the redelivery check is done. Runs on: loop */
static void checked(enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;

    if (err != TN_OK) {
        fail(j, err, "database");
    } else if (j->conn->seen) {
        j->has_account = true;
        calsync_job_finish(j); /* stored before: acknowledged */
    } else {
        exchange(j);
    }
}

/* calsync_connect_start - begin op connect for one entry (data_json is the
 * entry's data, borrowed); answers the entry at the end */
void calsync_connect_start(struct calsync_ctx *ctx, const char *tenant, const char *data_json,
                           struct tn_consumer *c, struct tn_entry *e)
{
    json_t *d = json_loads(data_json, 0, NULL);
    json_t *o = json_object_get(d, "oauth");
    const char *rid = json_string_value(json_object_get(d, "request_id"));
    const char *prov = json_string_value(json_object_get(o, "provider"));
    struct calsync_connect *cn = tn_xcalloc(1, sizeof(*cn));
    struct calsync_job *j;

    cn->code_sealed = dup(o, "code_sealed", 8192);
    cn->redirect_uri = dup(o, "redirect_uri", 2048);
    cn->resource = dup(o, "resource_id", 64);
    if (rid == NULL || strlen(rid) >= sizeof(cn->request_id) || prov == NULL ||
        strcmp(prov, "google") != 0 || cn->code_sealed == NULL || cn->redirect_uri == NULL ||
        ctx->cfg.google_client_id[0] == '\0') {
        tn_consumer_done(c, e, TN_DISP_DEAD,
                         ctx->cfg.google_client_id[0] == '\0' ? "google_not_configured"
                                                              : "malformed");
        calsync_connect_free(cn);
        json_decref(d);
        return;
    }
    snprintf(cn->request_id, sizeof(cn->request_id), "%s", rid);
    json_decref(d);
    j = tn_xcalloc(1, sizeof(*j));
    j->ctx = ctx;
    j->kind = CALSYNC_CONNECT;
    j->consumer = c;
    j->entry = e;
    j->conn = cn;
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    snprintf(j->id, sizeof(j->id), "%.39s", cn->request_id);
    ctx->jobs++;
    if (tn_pg_submit(ctx->pg, seen_work, checked, j) != TN_OK)
        fail(j, TN_ECANCELED, "shutting_down");
}
