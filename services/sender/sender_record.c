/*
 * NAME
 *	sender_record - the send job's record step, batched
 * SYNOPSIS
 *	sender_queue_push(ctx, &ctx->record, job);   (sender_batch.c)
 * DESCRIPTION
 *	Writes the providers' answers of a batch of jobs, one transaction per
 *	tenant and at most three statements (UPDATE ... FROM unnest()): sent
 *	with the provider message id; failed with the provider's code, or
 *	dead once the attempt limit is reached; back to queued for a retry (or
 *	left in 'sending' when the answer was lost: a timeout may hide an
 *	accepted send). Sets each job's plan (and later_ms for a retry).
 * RUNS ON
 *	threadpool (blocking libpq). Touches only the jobs, and the immutable
 *	configuration they point to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "sender.h"

static const char sql_sent[] =
    "UPDATE outbound_messages o SET state = CASE WHEN o.state IN ('queued', 'sending', 'dead')"
    " THEN 'sent' ELSE o.state END,"
    " provider_message_id = COALESCE(o.provider_message_id, u.pmid),"
    " sent_at = now(), last_error_code = NULL, last_error = NULL, updated_at = now()"
    " FROM unnest($2::uuid[], $3::text[]) AS u(id, pmid)"
    " WHERE o.tenant_id = $1 AND o.id = u.id";

/* failed or dead: from queued or sending */
static const char sql_failed[] =
    "UPDATE outbound_messages o SET state = u.st, last_error_code = u.code,"
    " last_error = u.err, updated_at = now()"
    " FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS u(id, st, code, err)"
    " WHERE o.tenant_id = $1 AND o.id = u.id AND o.state IN ('queued', 'sending')";

/* a retry: only a row still 'sending' (a status echo may have moved it) */
static const char sql_retry[] =
    "UPDATE outbound_messages o SET state = u.st, last_error_code = u.code,"
    " last_error = u.err, updated_at = now()"
    " FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS u(id, st, code, err)"
    " WHERE o.tenant_id = $1 AND o.id = u.id AND o.state = 'sending'";

/* The arrays of one statement. */
struct upd {
    struct tn_buf col[4];
    size_t ncols, n;
};

/* upd_init - ncols empty array literals */
static void upd_init(struct upd *u, size_t ncols)
{
    u->ncols = ncols;
    u->n = 0;
    for (size_t i = 0; i < ncols; i++) {
        tn_buf_init(&u->col[i], 0);
        tn_buf_adds(&u->col[i], "{");
    }
}

/* upd_row - one row of values (ncols strings) */
static void upd_row(struct upd *u, const char *const *v)
{
    for (size_t i = 0; i < u->ncols; i++)
        sender_pg_array_add(&u->col[i], v[i]);
    u->n++;
}

/* upd_run - the statement, when it has rows; then release the arrays */
static enum tn_err upd_run(struct tn_pgconn *c, struct upd *u, const char *sql, const char *tenant,
                           enum tn_err err)
{
    const char *p[5] = {tenant};

    for (size_t i = 0; i < u->ncols; i++)
        p[1 + i] = sender_pg_array_end(&u->col[i]);
    if (err == TN_OK && u->n > 0)
        err = tn_pgconn_query_cached(c, sql, 1 + (int)u->ncols, p, NULL);
    for (size_t i = 0; i < u->ncols; i++)
        tn_buf_free(&u->col[i]);
    return err;
}

/* set_code - job->code = s */
static void set_code(struct sender_job *job, const char *s)
{
    snprintf(job->code, sizeof(job->code), "%s", s);
}

/* retry_due - when to try again: backoff with jitter, at least Retry-After */
static int64_t retry_due(const struct sender_job *job)
{
    const struct sender_cfg *cfg = &job->ctx->cfg;
    uint32_t attempt = job->row.attempts > 0 ? (uint32_t)job->row.attempts - 1 : 0;
    int64_t d =
        tn_backoff_delay((uint32_t)cfg->retry_base_ms, (uint32_t)cfg->retry_cap_ms, attempt);

    if (job->res.retry_after_ms > d)
        d = job->res.retry_after_ms;
    return tn_now_ms() + d;
}

/* plan - job's plan and the row it adds to one of the statements */
static void plan(struct sender_job *job, struct upd *sent, struct upd *failed, struct upd *retry)
{
    job->plan = SENDER_P_DONE;
    switch (job->res.v) {
    case SENDER_V_OK:
        upd_row(sent, (const char *const[]){job->id, job->res.pmid});
        return;
    case SENDER_V_FINAL:
        set_code(job, job->res.code);
        upd_row(failed, (const char *const[]){job->id, "failed", job->code, job->code});
        return;
    default:
        break;
    }
    set_code(job, job->res.code);
    if (job->row.attempts >= job->ctx->cfg.max_attempts) {
        job->plan = SENDER_P_DEAD;
        snprintf(job->code, sizeof(job->code), "attempts.exceeded:%.40s", job->res.code);
        upd_row(failed, (const char *const[]){job->id, "dead", job->res.code, job->code});
        return;
    }
    job->plan = SENDER_P_LATER;
    job->later_ms = retry_due(job);
    /* a lost answer may hide an accepted send: stay 'sending' (echo wait) */
    upd_row(retry, (const char *const[]){job->id, job->res.ambiguous ? "sending" : "queued",
                                         job->res.code, job->res.code});
}

/* record_group - one tenant's answers in one transaction */
static enum tn_err record_group(struct tn_pgconn *c, struct sender_job **jobs, size_t n)
{
    const char *tenant = jobs[0]->tenant;
    struct upd sent, failed, retry;
    enum tn_err err;

    upd_init(&sent, 2);
    upd_init(&failed, 4);
    upd_init(&retry, 4);
    for (size_t i = 0; i < n; i++)
        plan(jobs[i], &sent, &failed, &retry);
    err = tn_pgconn_begin_tenant(c, tenant);
    err = upd_run(c, &sent, sql_sent, tenant, err);
    err = upd_run(c, &failed, sql_failed, tenant, err);
    err = upd_run(c, &retry, sql_retry, tenant, err);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    return err;
}

/* job_tenant - a job's tenant (sender_group_end) */
static const char *job_tenant(const void *item)
{
    return ((const struct sender_job *)item)->tenant;
}

/* by_tenant - qsort order of jobs */
static int by_tenant(const void *a, const void *b)
{
    return strcmp(job_tenant(*(void *const *)a), job_tenant(*(void *const *)b));
}

/* sender_store_record - see the file header */
enum tn_err sender_store_record(struct tn_pgconn *c, void *arg)
{
    struct sender_batch *b = arg;
    size_t end;

    qsort(b->items, b->n, sizeof(*b->items), by_tenant);
    for (size_t i = 0; i < b->n; i = end) {
        enum tn_err err;

        end = sender_group_end(b->items, b->n, i, job_tenant);
        err = record_group(c, (struct sender_job **)b->items + i, end - i);
        for (size_t k = i; k < end; k++)
            ((struct sender_job *)b->items[k])->err = err;
    }
    return TN_OK;
}
