/*
 * NAME
 *	agent_intake_batch - store the plain messages of one loop turn together
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_intake_batch_add(ctx, intake);   from the tern:in handler
 * DESCRIPTION
 *	One tern_agent_intake() call per tern:in entry made intake the limit
 *	of a busy agent: every entry paid a round trip, a commit and a place in
 *	the pool's queue. The handler therefore queues plain messages (no
 *	opt-out/opt-in keyword: those keep their own transaction) here; a
 *	check handle, which runs once the loop has handled the I/O of this
 *	turn (a whole XREADGROUP reply included), groups them by tenant and
 *	stores each group of up to AGENT_INTAKE_BATCH_MAX with one call of
 *	tern_agent_intake_batch() (proto/sql/0013_agent_intake_batch.sql), in
 *	autocommit: one transaction bound to the tenant.
 *
 *	Every entry keeps the guarantees of the single path: it is
 *	acknowledged only after the statement that stored it committed
 *	(agent_intake_finish), a redelivered entry hits the unique provider
 *	message id and changes nothing, and an entry whose channel is not the
 *	tenant's is dead-lettered alone. When the batch statement fails, the
 *	entries are stored one by one the old way (agent_store_intake_work),
 *	so one bad entry or a deadlock between batches cannot hold up the rest.
 * RUNS ON
 *	loop; agent_store_intake_batch_work on the threadpool.
 * DIAGNOSTICS
 *	agent.intake_batch_failed (then each entry as in agent_intake.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "agent.h"

#define NCOLS 10 /* array parameters of tern_agent_intake_batch */

/* One tenant's share of a loop turn's intake. */
struct ibatch {
    struct agent_ctx *ctx;
    const char *tenant; /* borrowed from in[0] */
    struct agent_intake **in;
    size_t n;
};

/* arr_add - append one element to a Postgres array literal (NULL: NULL) */
static void arr_add(struct tn_buf *b, const char *v)
{
    if (b->len > 1)
        tn_buf_add(b, ",", 1);
    if (v == NULL) {
        tn_buf_adds(b, "NULL");
        return;
    }
    tn_buf_add(b, "\"", 1);
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            tn_buf_add(b, "\\", 1);
        tn_buf_add(b, p, 1);
    }
    tn_buf_add(b, "\"", 1);
}

/* arrays - the ten array literals of the batch (new, in *out) */
static void arrays(const struct ibatch *ib, char *out[NCOLS])
{
    struct tn_buf b[NCOLS];

    for (int k = 0; k < NCOLS; k++) {
        tn_buf_init(&b[k], 0);
        tn_buf_add(&b[k], "{", 1);
    }
    for (size_t i = 0; i < ib->n; i++) {
        const struct agent_intake *in = ib->in[i];
        const char *v[NCOLS] = {in->channel, in->sender,    in->sender_name, in->transport,
                                in->pmid,    in->mtype,     in->body,        in->media_ref,
                                in->raw,     in->stream_pos};

        for (int k = 0; k < NCOLS; k++)
            arr_add(&b[k], v[k]);
    }
    for (int k = 0; k < NCOLS; k++) {
        tn_buf_add(&b[k], "}", 1);
        out[k] = tn_buf_steal(&b[k], NULL);
    }
}

/* apply - one result row: ord, conversation, message, silent */
static void apply(struct ibatch *ib, const struct pg_result *res, int row)
{
    const char *ord = tn_pg_result_value(res, row, 0);
    const char *conv = tn_pg_result_value(res, row, 1);
    long i = ord != NULL ? strtol(ord, NULL, 10) - 1 : -1;
    struct agent_intake *in;

    if (i < 0 || (size_t)i >= ib->n)
        return;
    in = ib->in[i];
    in->stored = true;
    snprintf(in->conv, sizeof(in->conv), "%s", conv != NULL ? conv : "");
    in->inserted = tn_pg_result_value(res, row, 2) != NULL;
    in->wake = in->inserted && tn_pg_result_value(res, row, 3) == NULL;
}

/* batch_work - one tern_agent_intake_batch() call. Runs on: threadpool. */
static enum tn_err batch_work(struct tn_pgconn *c, void *arg)
{
    struct ibatch *ib = arg;
    struct pg_result *res = NULL;
    char *a[NCOLS];
    const char *p[NCOLS + 1];
    enum tn_err err;

    arrays(ib, a);
    p[0] = ib->tenant;
    for (int k = 0; k < NCOLS; k++)
        p[k + 1] = a[k];
    err = tn_pgconn_query(c,
                          "SELECT ord, conversation, message, silent FROM"
                          " tern_agent_intake_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                          NCOLS + 1, p, &res);
    for (int row = 0; err == TN_OK && row < tn_pg_result_rows(res); row++)
        apply(ib, res, row);
    tn_pg_result_free(res);
    for (int k = 0; k < NCOLS; k++)
        tn_free(a[k]);
    return err;
}

/* one_by_one - the batch failed: store each entry on its own */
static void one_by_one(struct ibatch *ib)
{
    for (size_t i = 0; i < ib->n; i++) {
        struct agent_intake *in = ib->in[i];

        in->stored = in->inserted = in->wake = false;
        if (agent_pg_submit(ib->ctx, agent_store_intake_work, agent_intake_finish, in) != TN_OK)
            agent_intake_drop(in);
    }
}

/* batch_done - ack (or dead-letter) each entry, or fall back to one by one */
static void batch_done(enum tn_err err, void *arg)
{
    struct ibatch *ib = arg;
    struct agent_ctx *ctx = ib->ctx;

    if (err != TN_OK) {
        if (err != TN_ECANCELED)
            tn_log_warn(&(struct tn_log_ctx){.tenant_id = ib->tenant}, "agent.intake_batch_failed",
                        TN_KV_INT("count", ib->n), TN_KV_ERR(err));
        one_by_one(ib);
    } else {
        for (size_t i = 0; i < ib->n; i++)
            agent_intake_finish(ib->in[i]->stored ? TN_OK : TN_ENOTFOUND, ib->in[i]);
    }
    tn_free(ib->in);
    tn_free(ib);
    agent_maybe_free_pg(ctx);
}

/* submit - hand one batch to the pool */
static void submit(struct ibatch *ib)
{
    if (agent_pg_submit(ib->ctx, batch_work, batch_done, ib) != TN_OK) {
        for (size_t i = 0; i < ib->n; i++)
            agent_intake_drop(ib->in[i]);
        tn_free(ib->in);
        tn_free(ib);
    }
}

/* take_tenant - move the queued entries of head's tenant (up to the batch
 * size, in arrival order) from *list into a new batch */
static struct ibatch *take_tenant(struct agent_ctx *ctx, struct agent_intake **list)
{
    struct ibatch *ib = tn_xcalloc(1, sizeof(*ib));
    struct agent_intake **pp = list;
    const char *tenant = (*list)->tenant;

    ib->ctx = ctx;
    ib->tenant = tenant;
    ib->in = tn_xcalloc(AGENT_INTAKE_BATCH_MAX, sizeof(*ib->in));
    while (*pp != NULL && ib->n < AGENT_INTAKE_BATCH_MAX) {
        struct agent_intake *in = *pp;

        if (strcmp(in->tenant, tenant) != 0) {
            pp = &in->next;
            continue;
        }
        *pp = in->next;
        in->next = NULL;
        ib->in[ib->n++] = in;
    }
    return ib;
}

/* flush_cb - the loop turn's I/O is done: store what was queued */
static void flush_cb(uv_check_t *h)
{
    struct agent_ctx *ctx = h->data;
    struct agent_intake *list = ctx->ipend;

    uv_check_stop(h);
    ctx->ipend = NULL;
    ctx->ipend_tail = &ctx->ipend;
    while (list != NULL)
        submit(take_tenant(ctx, &list));
}

/* agent_intake_batch_init - the check handle. Runs on: loop. */
void agent_intake_batch_init(struct agent_ctx *ctx)
{
    uv_check_init(ctx->loop, &ctx->icheck);
    ctx->icheck.data = ctx;
    ctx->icheck_inited = true;
    ctx->ipend = NULL;
    ctx->ipend_tail = &ctx->ipend;
}

/* agent_intake_batch_add - queue in (owned from now on) for this loop
 * turn's batch. Runs on: loop. */
void agent_intake_batch_add(struct agent_ctx *ctx, struct agent_intake *in)
{
    in->next = NULL;
    *ctx->ipend_tail = in;
    ctx->ipend_tail = &in->next;
    if (!uv_is_active((uv_handle_t *)&ctx->icheck))
        uv_check_start(&ctx->icheck, flush_cb);
}

/* agent_intake_batch_close - fini: give queued entries back (they stay
 * pending in Redis) and close the handle. Runs on: loop. */
void agent_intake_batch_close(struct agent_ctx *ctx)
{
    struct agent_intake *in = ctx->ipend, *next;

    if (!ctx->icheck_inited)
        return;
    ctx->ipend = NULL;
    ctx->ipend_tail = &ctx->ipend;
    for (; in != NULL; in = next) {
        next = in->next;
        agent_intake_drop(in);
    }
    uv_close((uv_handle_t *)&ctx->icheck, NULL);
    ctx->icheck_inited = false;
}
