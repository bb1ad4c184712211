/*
 * NAME
 *	sweeper_sweep - the periodic sweep: offboarding, retention, trimming
 * SYNOPSIS
 *	sweeper_sweep_start(ctx);   (the TN_SWEEPER_INTERVAL timer)
 * DESCRIPTION
 *	One threadpool job at a time walks every tenant: a tenant marked
 *	deleted (ternctl tenant delete) is offboarded, every other one has
 *	its expired rows purged; then the streams are trimmed. A failure in
 *	one step is logged and the others still run; the next sweep retries.
 *
 *	Offboarding: first the tenant's OAuth tokens and its mailboxes'
 *	secrets are cleared (committed) and the grants kept for revocation
 *	(sweeper_tokens.c, sweeper_mailbox.c); when this sweep's room for
 *	grants (SWEEP_TOKENS rows, counted as rows: a CalDAV account or an
 *	SMTP mailbox takes a place too) cannot hold all of the tenant's, the
 *	rows taken are cleared and the tenant waits for the next sweep, which
 *	takes the rest (a grant is never deleted unrevoked for want of room);
 *	then every table holding tenant_id is
 *	emptied in batches, children before parents (tables this file does
 *	not know, added by later migrations, go first); finally the tenants
 *	row itself and the tenant's schedule keys in Redis. A table that
 *	cannot be emptied yet (a grant missing, a reference left) leaves the
 *	tenant row in place and the next sweep tries again.
 * RUNS ON
 *	loop (start, done); threadpool (sweep_work and what it calls).
 * DIAGNOSTICS
 *	sweeper.sweep (rows, entries, ms), sweeper.offboarded,
 *	sweeper.offboard_blocked, sweeper.offboard_continues, sweeper.sweep_failed.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "sweeper.h"

#define SWEEP_TOKENS 64

struct sweep {
    struct sweeper_ctx *ctx;
    long purged, trimmed;
    size_t ntokens;
    struct sweeper_token tokens[SWEEP_TOKENS];
};

static const char sql_tenants[] =
    "SELECT id, deleted_at IS NOT NULL FROM tenants ORDER BY deleted_at NULLS LAST, id";

/* Children first; tables not named here (later migrations) go before all. */
static const char *const order[] = {
    "messages",      "outbound_messages", "consent_events", "bookings", "leads",
    "conversations", "contacts",          "services",       "channels", "oauth_accounts",
    "suppressions",  "privacy_requests",  "audit_log",
};

static const char sql_tables[] =
    "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t"
    " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
    " WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'"
    " AND t.table_type = 'BASE TABLE' AND c.table_name ~ '^[a-z_][a-z0-9_]*$'"
    " ORDER BY array_position($1::text[], c.table_name::text) NULLS FIRST, c.table_name";

static const char sql_drop_tenant[] =
    "DELETE FROM tenants WHERE id = $1::uuid AND deleted_at IS NOT NULL";

/* empty_table - delete the tenant's rows of table in batches */
static enum tn_err empty_table(struct tn_pgconn *c, const char *tenant, const char *table,
                               const char *lim, int64_t deadline, long *purged)
{
    char sql[256];
    long n;
    enum tn_err err;

    snprintf(sql, sizeof(sql),
             "DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s LIMIT $1::int))", table,
             table);
    do {
        struct pg_result *res = NULL;

        err = tn_pgconn_begin_tenant(c, tenant);
        if (err != TN_OK)
            return err;
        err = tn_pgconn_query(c, sql, 1, (const char *[]){lim}, &res);
        n = err == TN_OK ? tn_pg_result_affected(res) : 0;
        tn_pg_result_free(res);
        err = err == TN_OK ? tn_pgconn_commit(c) : err;
        if (err != TN_OK)
            tn_pgconn_rollback(c);
        *purged += n;
    } while (err == TN_OK && n > 0 && tn_mono_ms() < deadline);
    return err;
}

/* take_tokens - clear the tenant's OAuth tokens and its mailboxes' secrets
 * (committed), keep the grants to revoke in s; *more when this sweep had no
 * room for all of them */
static enum tn_err take_tokens(struct tn_pgconn *c, struct sweep *s, const char *tenant, bool *more)
{
    size_t n = 0, m = 0;
    bool more_m = false;
    enum tn_err err = tn_pgconn_begin_tenant(c, tenant);

    *more = false;
    if (err != TN_OK)
        return err;
    err = sweeper_take_tokens(c, s->ctx->keys, tenant, NULL, s->tokens + s->ntokens,
                              SWEEP_TOKENS - s->ntokens, &n, more);
    if (err == TN_OK)
        err = sweeper_take_mailboxes(c, s->ctx->keys, tenant, s->tokens + s->ntokens + n,
                                     SWEEP_TOKENS - s->ntokens - n, &m, &more_m);
    n += m;
    *more = *more || more_m;
    err = err == TN_OK ? tn_pgconn_commit(c) : err;
    if (err != TN_OK) {
        tn_pgconn_rollback(c);
        for (size_t i = 0; i < n; i++)
            sweeper_token_wipe(&s->tokens[s->ntokens + i]);
        return err;
    }
    s->ntokens += n;
    return TN_OK;
}

/* empty_tables - every tenant-owned table, in order */
static enum tn_err empty_tables(struct tn_pgconn *c, struct sweep *s, const char *tenant)
{
    char arr[512] = "{", lim[24];
    struct pg_result *res = NULL;
    int64_t deadline = tn_mono_ms() + s->ctx->cfg.budget_ms;
    enum tn_err err, first = TN_OK;

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        snprintf(arr + strlen(arr), sizeof(arr) - strlen(arr), "%s%s", i > 0 ? "," : "", order[i]);
    snprintf(arr + strlen(arr), sizeof(arr) - strlen(arr), "}");
    snprintf(lim, sizeof(lim), "%lld", (long long)s->ctx->cfg.batch);
    err = tn_pgconn_query(c, sql_tables, 1, (const char *[]){arr}, &res);
    for (int i = 0; err == TN_OK && i < tn_pg_result_rows(res); i++) {
        enum tn_err e =
            empty_table(c, tenant, tn_pg_result_value(res, i, 0), lim, deadline, &s->purged);

        if (e != TN_OK && first == TN_OK)
            first = e; /* go on: other tables may still empty */
    }
    tn_pg_result_free(res);
    return err != TN_OK ? err : first;
}

/* drop_schedule - the tenant's schedule keys in Redis */
static void drop_schedule(struct sweeper_ctx *ctx, const char *tenant)
{
    redisContext *rc = sweeper_redis_open(ctx->redis_url);
    char key[80];
    redisReply *r;

    if (rc == NULL)
        return;
    snprintf(key, sizeof(key), "tern:sched:%s", tenant);
    r = sweeper_redis_cmd(rc, 2, (const char *[]){"DEL", key});
    if (r != NULL)
        freeReplyObject(r);
    r = sweeper_redis_cmd(rc, 3, (const char *[]){"ZREM", "tern:sched", tenant});
    if (r != NULL)
        freeReplyObject(r);
    redisFree(rc);
}

/* offboard - one deleted tenant */
static void offboard(struct tn_pgconn *c, struct sweep *s, const char *tenant)
{
    struct tn_log_ctx lc = {.tenant_id = tenant};
    struct pg_result *res = NULL;
    long before = s->purged;
    bool more = false;
    enum tn_err err = take_tokens(c, s, tenant, &more);

    if (err == TN_OK && more) {
        tn_log_info(&lc, "sweeper.offboard_continues", TN_KV_STR("reason", "revocations"));
        return; /* more grants than room: the next sweep takes them first */
    }
    if (err == TN_OK)
        err = empty_tables(c, s, tenant);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_drop_tenant, 1, (const char *[]){tenant}, &res);
    if (err != TN_OK || tn_pg_result_affected(res) != 1) {
        tn_log_warn(&lc, "sweeper.offboard_blocked", TN_KV_ERR(err),
                    TN_KV_INT("rows", s->purged - before));
        tn_pg_result_free(res);
        return;
    }
    tn_pg_result_free(res);
    drop_schedule(s->ctx, tenant);
    tn_log_info(&lc, "sweeper.offboarded", TN_KV_INT("rows", s->purged - before));
}

/* sweep_work - every tenant, then the streams. Runs on: threadpool. */
static enum tn_err sweep_work(struct tn_pgconn *c, void *arg)
{
    struct sweep *s = arg;
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_tenants, 0, NULL, &res);

    for (int i = 0; err == TN_OK && i < tn_pg_result_rows(res); i++) {
        const char *tenant = tn_pg_result_value(res, i, 0);
        enum tn_err e = TN_OK;

        if (strcmp(tn_pg_result_value(res, i, 1), "t") == 0)
            offboard(c, s, tenant);
        else
            e = sweeper_retain_tenant(c, &s->ctx->cfg, tenant, &s->purged);
        if (e != TN_OK)
            tn_log_warn(&(struct tn_log_ctx){.tenant_id = tenant}, "sweeper.sweep_failed",
                        TN_KV_STR("step", "retention"), TN_KV_ERR(e));
    }
    tn_pg_result_free(res);
    if (sweeper_trim_streams(&s->ctx->cfg, s->ctx->redis_url, &s->trimmed) != TN_OK)
        tn_log_warn(NULL, "sweeper.sweep_failed", TN_KV_STR("step", "trim"));
    return err;
}

/* sweep_done - metrics, revocations, and the next sweep may start */
static void sweep_done(enum tn_err err, void *arg)
{
    struct sweep *s = arg;
    struct sweeper_ctx *ctx = s->ctx;

    ctx->sweeping = false;
    if (err != TN_OK)
        tn_log_warn(NULL, "sweeper.sweep_failed", TN_KV_STR("step", "tenants"), TN_KV_ERR(err));
    tn_log_info(NULL, "sweeper.sweep", TN_KV_INT("rows", s->purged),
                TN_KV_INT("entries", s->trimmed));
    tn_metric_add(ctx->m.purged, (double)s->purged);
    tn_metric_add(ctx->m.trimmed, (double)s->trimmed);
    sweeper_revoke_start(ctx, s->tokens, s->ntokens);
    for (size_t i = 0; i < s->ntokens; i++)
        sweeper_token_wipe(&s->tokens[i]);
    tn_free(s);
}

/* sweeper_sweep_start - one sweep, unless one is running */
void sweeper_sweep_start(struct sweeper_ctx *ctx)
{
    struct sweep *s;

    if (ctx->sweeping || ctx->draining || ctx->pg == NULL)
        return;
    s = tn_xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    if (tn_pg_submit(ctx->pg, sweep_work, sweep_done, s) != TN_OK) {
        tn_free(s);
        return;
    }
    ctx->sweeping = true;
}
