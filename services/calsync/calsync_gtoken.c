/*
 * NAME
 *	calsync_gtoken - Google access tokens for tern-calsync's jobs
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_gtoken_get(job, then);       (before a Calendar call)
 *	calsync_gtoken_rejected(job, then);  (after a 401)
 * DESCRIPTION
 *	A job arrives with the account's tokens as stored (opened by the
 *	store). get gives it a usable access token: the newest one this
 *	process knows for the account if that is newer than the job's, else
 *	the job's own while it has more than TN_CALSYNC_REFRESH_AHEAD left;
 *	otherwise the job waits for a refresh (protocols.md 4.3;
 *	tn_oauth_token_refresh, the answer classified by tn_oauth_token_read).
 *	One refresh is in flight per account: jobs that need one while it
 *	runs join its wait list and all get its outcome. A refreshed token
 *	(and a refresh token, when the answer carries one) is sealed into
 *	oauth_accounts (aad "oauth:<tenant>:<account>:access") before the
 *	waiters continue, so the next load sees it. 429, 5xx and network
 *	failures fail the waiters TN_EUNAVAIL "google_token_unavailable";
 *	other refusals (invalid_client, a 200 without a usable token: an
 *	empty access_token too) TN_EPROTO "google_token_refused".
 *
 *	rejected (a 401 from Calendar) forgets the job's token: if another job
 *	has refreshed meanwhile the newer token is used, else a refresh runs.
 *
 *	invalid_grant from the token endpoint means the refresh token is dead
 *	and retrying never helps (protocols.md 4.4): the account gets
 *	needs_reconnect (reason, time) and the tenant an audit_log row
 *	"calendar.reconnect_needed", once; the waiting jobs fail with
 *	TN_EDENIED "reconnect_needed" and later jobs make no calls.
 *	XXX: the single flight is per process; two replicas may each refresh
 *	the same account once (Google accepts both).
 * RUNS ON
 *	loop; the store work on the threadpool.
 * DIAGNOSTICS
 *	calsync.token_refreshed (info), calsync.token_refresh_failed,
 *	calsync.token_store_failed, calsync.reconnect_needed (warn). Tokens
 *	are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_oauth_token.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "calsync.h"

/* One account's token state; lives until calsync_fini. */
struct calsync_gtoken {
    struct calsync_gtoken *next;
    struct calsync_ctx *ctx;
    char tenant[40], account[40];
    char *access; /* the newest access token known here, or NULL */
    int64_t exp_s;
    /* the refresh in flight */
    bool refreshing;
    char *new_access, *new_refresh;
    int64_t new_exp_s;
    struct calsync_job *waiters;
    enum tn_err err;
    const char *why;
};

static const char sql_save[] =
    "UPDATE oauth_accounts SET access_token_sealed = decode($2, 'hex'),"
    " refresh_token_sealed = COALESCE(decode($3, 'hex'), refresh_token_sealed),"
    " expires_at = to_timestamp($4::bigint), key_id = $5::int, updated_at = now()"
    " WHERE tenant_id = tern_current_tenant() AND id = $1::uuid AND provider = 'google'";

static const char sql_flag[] =
    "UPDATE oauth_accounts SET needs_reconnect = true, reconnect_reason = $2,"
    " reconnect_flagged_at = now(), updated_at = now()"
    " WHERE tenant_id = tern_current_tenant() AND id = $1::uuid AND NOT needs_reconnect"
    " RETURNING id";

static const char sql_audit[] =
    "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES (tern_current_tenant(),"
    " 'tern-calsync', 'calendar.reconnect_needed', jsonb_build_object('account_id', $1::text,"
    " 'provider', 'google', 'reason', $2::text))";

/* calsync_gtoken_seal_hex - tn_seal token for the account (aad
 * "oauth:<tenant>:<account>:<kind>") as new hex text (*hex NULL when token is
 * NULL). Runs on: any thread. */
enum tn_err calsync_gtoken_seal_hex(const struct tn_keyring *k, const char *tenant,
                                    const char *account, const char *kind, const char *token,
                                    char **hex)
{
    char aad[160];
    unsigned char *sealed = NULL;
    size_t n = 0;
    enum tn_err err;

    *hex = NULL;
    if (token == NULL)
        return TN_OK;
    if (k == NULL)
        return TN_EDENIED;
    snprintf(aad, sizeof(aad), "oauth:%s:%s:%s", tenant, account, kind);
    err = tn_seal(k, aad, strlen(aad), token, strlen(token), &sealed, &n);
    if (err == TN_OK)
        *hex = tn_hex_encode(sealed, n);
    tn_free(sealed);
    return err;
}

/* entry_for - the state of an account, created on first use */
static struct calsync_gtoken *entry_for(struct calsync_ctx *ctx, const char *tenant,
                                        const char *account)
{
    struct calsync_gtoken *e;

    for (e = ctx->tokens; e != NULL; e = e->next) {
        if (strcmp(e->account, account) == 0 && strcmp(e->tenant, tenant) == 0)
            return e;
    }
    e = tn_xcalloc(1, sizeof(*e));
    e->ctx = ctx;
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    snprintf(e->account, sizeof(e->account), "%s", account);
    e->next = ctx->tokens;
    ctx->tokens = e;
    return e;
}

/* set_access - replace e's known token (copied) */
static void set_access(struct calsync_gtoken *e, const char *access, int64_t exp_s)
{
    tn_free_secret(e->access);
    e->access = access != NULL ? tn_xstrdup(access) : NULL;
    e->exp_s = exp_s;
}

/* calsync_gtoken_learn - a connect stored new tokens for the account */
void calsync_gtoken_learn(struct calsync_ctx *ctx, const char *tenant, const char *account,
                          const char *access, int64_t expires_s)
{
    set_access(entry_for(ctx, tenant, account), access, expires_s);
}

/* wake - hand the refresh's outcome to every waiting job */
static void wake(struct calsync_gtoken *e)
{
    struct calsync_job *w = e->waiters, *next;

    e->waiters = NULL;
    e->refreshing = false;
    for (; w != NULL; w = next) {
        next = w->next_waiter;
        w->next_waiter = NULL;
        if (e->err == TN_OK) {
            tn_free_secret(w->acct.access);
            w->acct.access = tn_xstrdup(e->access);
            w->acct.expires_s = e->exp_s;
        } else if (w->err == TN_OK) {
            w->err = e->err;
            w->why = e->why;
        }
        w->token_then(w);
    }
    tn_free_secret(e->new_access);
    tn_free_secret(e->new_refresh);
    e->new_access = e->new_refresh = NULL;
}

/* save_work - seal and store the refreshed tokens. Runs on: threadpool */
static enum tn_err save_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_gtoken *e = arg;
    const struct tn_keyring *k = e->ctx->keys;
    char *acc = NULL, *ref = NULL, exp[24], kid[16];
    const char *p[5];
    enum tn_err err;

    err = calsync_gtoken_seal_hex(k, e->tenant, e->account, "access", e->new_access, &acc);
    if (err == TN_OK)
        err = calsync_gtoken_seal_hex(k, e->tenant, e->account, "refresh", e->new_refresh, &ref);
    if (err != TN_OK)
        goto out;
    snprintf(exp, sizeof(exp), "%lld", (long long)e->new_exp_s);
    snprintf(kid, sizeof(kid), "%u", tn_keyring_current(k));
    p[0] = e->account, p[1] = acc, p[2] = ref, p[3] = exp, p[4] = kid;
    err = tn_pgconn_begin_tenant(c, e->tenant);
    if (err != TN_OK)
        goto out;
    err = tn_pgconn_query(c, sql_save, 5, p, NULL);
    err = err == TN_OK ? tn_pgconn_commit(c) : err;
    tn_pgconn_rollback(c);
out:
    tn_free(acc);
    tn_free(ref);
    return err;
}

/* flag_work - needs_reconnect and, the first time, the audit row. Runs on:
 * threadpool */
static enum tn_err flag_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_gtoken *e = arg;
    const char *p[2] = {e->account, "invalid_grant"};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_begin_tenant(c, e->tenant);

    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, sql_flag, 2, p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) == 1)
        err = tn_pgconn_query(c, sql_audit, 2, p, NULL);
    err = err == TN_OK ? tn_pgconn_commit(c) : err;
    tn_pgconn_rollback(c);
    tn_pg_result_free(res);
    return err;
}

/* count_refresh - tern_calsync_oauth_refresh_total{provider,result}. Runs on: loop */
static void count_refresh(struct calsync_gtoken *e, const char *result)
{
    char labels[64];

    snprintf(labels, sizeof(labels), "provider=\"google\",result=\"%s\"", result);
    tn_metric_inc(tn_metrics_get(e->ctx->metrics, TN_METRIC_COUNTER,
                                 "tern_calsync_oauth_refresh_total",
                                 "OAuth access-token refreshes by result", labels));
}

/* saved - the refreshed token is stored (or could not be: it is still good
 * for this process). Runs on: loop */
static void saved(enum tn_err err, void *arg)
{
    struct calsync_gtoken *e = arg;
    struct tn_log_ctx lc = {.tenant_id = e->tenant};

    if (err != TN_OK)
        tn_log_warn(&lc, "calsync.token_store_failed", TN_KV_STR("account_id", e->account),
                    TN_KV_ERR(err));
    count_refresh(e, "ok");
    tn_log_info(&lc, "calsync.token_refreshed", TN_KV_STR("account_id", e->account),
                TN_KV_INT("expires_in", e->new_exp_s - tn_now_ms() / 1000));
    set_access(e, e->new_access, e->new_exp_s);
    e->err = TN_OK;
    wake(e);
}

/* flagged - the account is marked; the waiters fail. Runs on: loop */
static void flagged(enum tn_err err, void *arg)
{
    struct calsync_gtoken *e = arg;
    struct tn_log_ctx lc = {.tenant_id = e->tenant};

    count_refresh(e, "error");
    tn_log_warn(&lc, "calsync.reconnect_needed", TN_KV_STR("account_id", e->account),
                TN_KV_STR("reason", "invalid_grant"), TN_KV_ERR(err));
    set_access(e, NULL, 0);
    e->err = TN_EDENIED;
    e->why = "reconnect_needed";
    wake(e);
}

/* submit - store work for e, then done; on refusal done runs at once */
static void submit(struct calsync_gtoken *e, tn_pg_work_fn *work, tn_pg_done_fn *done)
{
    if (tn_pg_submit(e->ctx->pg, work, done, e) != TN_OK)
        done(TN_ECANCELED, e);
}

/* refresh_failed - a failure that is not invalid_grant */
static void refresh_failed(struct calsync_gtoken *e, enum tn_err err, const char *why, long st)
{
    struct tn_log_ctx lc = {.tenant_id = e->tenant};

    count_refresh(e, "error");
    tn_log_warn(&lc, "calsync.token_refresh_failed", TN_KV_STR("account_id", e->account),
                TN_KV_INT("http_status", st), TN_KV_STR("why", why));
    e->err = err;
    e->why = why;
    wake(e);
}

/* on_token - the token endpoint's answer to a refresh (tn_oauth_token_read).
 * Runs on: loop */
static void on_token(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct calsync_gtoken *e = arg;
    struct tn_oauth_token t;

    tn_oauth_token_read(resp, err, tn_now_ms() / 1000, &t);
    switch (t.outcome) {
    case TN_OAUTH_TOKEN_OK:
        e->new_access = t.access;
        e->new_refresh = t.refresh; /* NULL: the stored one stays */
        t.access = t.refresh = NULL;
        e->new_exp_s = t.expires_s;
        submit(e, save_work, saved);
        break;
    case TN_OAUTH_TOKEN_DEAD_GRANT:
        submit(e, flag_work, flagged);
        break;
    case TN_OAUTH_TOKEN_UNAVAILABLE:
        refresh_failed(e, TN_EUNAVAIL, "google_token_unavailable", t.status);
        break;
    case TN_OAUTH_TOKEN_REFUSED: /* invalid_client, a 200 without a usable token */
        refresh_failed(e, TN_EPROTO, "google_token_refused", t.status);
        break;
    }
    tn_oauth_token_clear(&t);
}

/* start_refresh - POST grant_type=refresh_token for e with refresh */
static void start_refresh(struct calsync_gtoken *e, const char *refresh)
{
    struct calsync_cfg *cfg = &e->ctx->cfg;

    e->refreshing = true;
    if (tn_oauth_token_refresh(e->ctx->http, cfg->google_token_url, cfg->google_client_id,
                               cfg->google_client_secret, refresh, 0, on_token, e) != TN_OK)
        refresh_failed(e, TN_EUNAVAIL, "google_token_unavailable", 0);
}

/* calsync_gtoken_get - give j a usable access token, then call then */
void calsync_gtoken_get(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    struct calsync_gtoken *e = entry_for(j->ctx, j->tenant, j->acct.id);
    int64_t now = tn_now_ms() / 1000;

    if (e->access != NULL && e->exp_s > j->acct.expires_s &&
        (j->acct.access == NULL || strcmp(e->access, j->acct.access) != 0)) {
        tn_free_secret(j->acct.access);
        j->acct.access = tn_xstrdup(e->access);
        j->acct.expires_s = e->exp_s;
    }
    if (j->acct.access != NULL && (j->acct.expires_s - now) * 1000 > j->ctx->cfg.refresh_ahead_ms) {
        then(j);
        return;
    }
    j->token_then = then;
    j->next_waiter = e->waiters;
    e->waiters = j;
    if (e->refreshing)
        return;
    if (j->acct.refresh == NULL) {
        e->refreshing = true;
        submit(e, flag_work, flagged);
        return;
    }
    start_refresh(e, j->acct.refresh);
}

/* calsync_gtoken_rejected - Calendar refused j's token (401): use a newer
 * one or refresh, then call then */
void calsync_gtoken_rejected(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    struct calsync_gtoken *e = entry_for(j->ctx, j->tenant, j->acct.id);

    if (e->access != NULL && j->acct.access != NULL && strcmp(e->access, j->acct.access) == 0)
        e->exp_s = 0; /* the token this process knows is the dead one */
    j->acct.expires_s = 0;
    calsync_gtoken_get(j, then);
}

/* calsync_gtoken_free_all - release every account's state (no refresh may
 * be in flight: the HTTP client and pool are gone) */
void calsync_gtoken_free_all(struct calsync_ctx *ctx)
{
    struct calsync_gtoken *e = ctx->tokens, *next;

    for (; e != NULL; e = next) {
        next = e->next;
        tn_free_secret(e->access);
        tn_free_secret(e->new_access);
        tn_free_secret(e->new_refresh);
        tn_free(e);
    }
    ctx->tokens = NULL;
}
