/*
 * NAME
 *	sweeper_retain - purge one tenant's rows past its retention settings
 * SYNOPSIS
 *	err = sweeper_retain_tenant(c, cfg, tenant, &purged);
 * DESCRIPTION
 *	Each rule is one statement that touches at most TN_SWEEPER_BATCH rows,
 *	chosen by ctid (ctid = ANY(ARRAY(SELECT ctid ... LIMIT n)): a TID scan,
 *	no join), in its own short transaction bound to the tenant. Rows are
 *	locked only while their batch commits, and inserts never wait on a
 *	delete, so writers are not stalled. A rule repeats until a batch comes
 *	back short; the tenant's time budget (TN_SWEEPER_BUDGET) caps one
 *	sweep, and the next sweep continues.
 *
 *	Rules and the tenants column that sets each age (days):
 *	  messages       retain_messages_days  the message, its text, media
 *	                                       reference and raw payload
 *	  raw payloads   retain_raw_days       messages.raw cleared
 *	  statuses       retain_status_days    finished outbound messages
 *	  conversations  retain_metadata_days  idle ones with no message left
 *	  audit          retain_audit_days     audit_log, finished privacy
 *	                                       requests
 * RUNS ON
 *	Runs on: threadpool.
 */
#include <stdio.h>

#include <tn/tn_log.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "sweeper.h"

#define CUTOFF "now() - make_interval(days => $1::int)"
#define PICK(t, cond) "ctid = ANY(ARRAY(SELECT ctid FROM " t " WHERE " cond " LIMIT $2::int))"

static const char sql_days[] =
    "SELECT retain_messages_days, retain_raw_days, retain_status_days, retain_metadata_days,"
    " retain_audit_days FROM tenants WHERE id = $1::uuid";

static const struct {
    const char *name;
    int days_col; /* in sql_days */
    const char *sql;
} rules[] = {
    {"messages", 0, "DELETE FROM messages WHERE " PICK("messages", "created_at < " CUTOFF)},
    {"raw", 1,
     "UPDATE messages SET raw = NULL WHERE " PICK("messages",
                                                  "raw IS NOT NULL AND created_at < " CUTOFF)},
    {"statuses", 2,
     "DELETE FROM outbound_messages WHERE "
     /* created_at: implied (updated_at >= created_at); outbound_created's key */
     PICK("outbound_messages", "state NOT IN ('queued', 'sending') AND updated_at < " CUTOFF
                               " AND created_at < " CUTOFF)},
    {"conversations", 3,
     "DELETE FROM conversations WHERE " PICK(
         "conversations v",
         "COALESCE(v.last_inbound_at, v.created_at) < " CUTOFF
         " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = v.tenant_id"
         " AND m.conversation_id = v.id)")},
    {"audit", 4, "DELETE FROM audit_log WHERE " PICK("audit_log", "created_at < " CUTOFF)},
    {"privacy_requests", 4,
     "DELETE FROM privacy_requests WHERE " PICK(
         "privacy_requests", "status IN ('done', 'failed') AND completed_at < " CUTOFF)},
};

/* batch - one statement in its own tenant transaction; *n rows */
static enum tn_err batch(struct tn_pgconn *c, const char *tenant, const char *sql, const char *days,
                         const char *lim, long *n)
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_begin_tenant(c, tenant);

    *n = 0;
    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, sql, 2, (const char *[]){days, lim}, &res);
    *n = err == TN_OK ? tn_pg_result_affected(res) : 0;
    tn_pg_result_free(res);
    if (err != TN_OK) {
        tn_pgconn_rollback(c);
        return err;
    }
    return tn_pgconn_commit(c);
}

/* read_days - the tenant's five settings into days[5] (text) */
static enum tn_err read_days(struct tn_pgconn *c, const char *tenant, char days[5][16])
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_days, 1, (const char *[]){tenant}, &res);

    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ENOTFOUND;
    for (int i = 0; err == TN_OK && i < 5; i++)
        snprintf(days[i], 16, "%s", tn_pg_result_value(res, 0, i));
    tn_pg_result_free(res);
    return err;
}

/* sweeper_retain_tenant - every rule, batch by batch, within the budget */
enum tn_err sweeper_retain_tenant(struct tn_pgconn *c, const struct sweeper_cfg *cfg,
                                  const char *tenant, long *purged)
{
    struct tn_log_ctx lc = {.tenant_id = tenant};
    int64_t deadline = tn_mono_ms() + cfg->budget_ms;
    char days[5][16], lim[24];
    enum tn_err err = read_days(c, tenant, days);

    snprintf(lim, sizeof(lim), "%lld", (long long)cfg->batch);
    for (size_t i = 0; err == TN_OK && i < sizeof(rules) / sizeof(rules[0]); i++) {
        long n = 0, total = 0, batches = 0;

        do {
            err = batch(c, tenant, rules[i].sql, days[rules[i].days_col], lim, &n);
            total += n;
            batches++;
        } while (err == TN_OK && n >= cfg->batch && tn_mono_ms() < deadline);
        *purged += total;
        if (total > 0)
            tn_log_info(&lc, "sweeper.retention", TN_KV_STR("rule", rules[i].name),
                        TN_KV_INT("rows", total), TN_KV_INT("batches", batches));
    }
    return err;
}
