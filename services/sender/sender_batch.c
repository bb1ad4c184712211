/*
 * NAME
 *	sender_batch - batched database steps
 * SYNOPSIS
 *	sender_batch_start(ctx); sender_queue_push(ctx, &ctx->prepare, job);
 *	sender_batch_stop(ctx);
 * DESCRIPTION
 *	Every message costs three database steps (intake, prepare, record).
 *	Run one at a time they cost a threadpool hop and four or five round
 *	trips each, and the pool, not the providers, set the pace. So each
 *	step has a queue: whatever the loop iteration produced (a stream read
 *	delivers up to 64 entries, a claim up to the free job slots, answers
 *	arrive together) is pushed there, and a uv_check handle, which runs
 *	once per iteration after the I/O callbacks, submits it as one batch:
 *	one transaction per tenant with one statement for many rows
 *	(= ANY($2::uuid[]), UPDATE ... FROM unnest(...)). At most
 *	SENDER_BATCH_INFLIGHT batches of a queue are on the pool; what arrives
 *	meanwhile waits for the next flush, so batches grow with the load and
 *	stay small (low latency) when it is light.
 *
 *	The flush also sends the schedule removals of the iteration as one
 *	script call (sender_sched_flush).
 * RUNS ON
 *	loop.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "sender.h"

static void slot_wait_cb(uv_timer_t *t);

/* batch_done_cb - a batch is finished: hand its items back */
static void batch_done_cb(enum tn_err err, void *arg)
{
    struct sender_batch *b = arg;

    b->q->inflight--;
    b->q->done(b, err);
    tn_free(b->items);
    tn_free(b);
}

/* submit - take up to SENDER_BATCH_MAX of the first `ready` items of q into
 * one batch; returns how many it took */
static size_t submit(struct sender_ctx *ctx, struct sender_queue *q, size_t ready)
{
    struct sender_batch *b = tn_xcalloc(1, sizeof(*b));
    size_t n = ready < SENDER_BATCH_MAX ? ready : SENDER_BATCH_MAX;

    b->ctx = ctx;
    b->q = q;
    b->n = n;
    b->items = tn_xcalloc(n, sizeof(*b->items));
    memcpy(b->items, q->items, n * sizeof(*b->items));
    memmove(q->items, q->items + n, (q->n - n) * sizeof(*q->items));
    q->n -= n;
    q->inflight++;
    if (tn_pg_submit(ctx->pg, q->work, batch_done_cb, b) != TN_OK)
        batch_done_cb(TN_ECANCELED, b);
    return n;
}

/* flush_cb - once per loop iteration: submit what the queues hold. Fresh
 * entries that wait for a job slot stay in the intake queue (sender_out_ready);
 * slot_wait wakes the loop when the first of them has waited long enough. */
static void flush_cb(uv_check_t *h)
{
    struct sender_ctx *ctx = h->data;
    struct sender_queue *qs[] = {&ctx->intake, &ctx->record, &ctx->prepare};
    int64_t wake_ms = -1;

    sender_sched_flush(ctx);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        size_t ready = qs[i]->n;

        if (qs[i] == &ctx->intake && qs[i]->inflight < SENDER_BATCH_INFLIGHT)
            ready = sender_out_ready(ctx, &wake_ms);
        while (ready > 0 && qs[i]->inflight < SENDER_BATCH_INFLIGHT)
            ready -= submit(ctx, qs[i], ready);
    }
    if (wake_ms >= 0)
        uv_timer_start(ctx->slot_wait, slot_wait_cb, (uint64_t)wake_ms, 0);
}

/* slot_wait_cb - an entry's wait for a job slot ends: flush now (the loop
 * might otherwise block in poll before its check handle runs) */
static void slot_wait_cb(uv_timer_t *t)
{
    struct sender_ctx *ctx = t->data;

    if (ctx->flush != NULL)
        flush_cb(ctx->flush);
}

/* sender_queue_push - queue an item for the next flush */
void sender_queue_push(struct sender_ctx *ctx, struct sender_queue *q, void *item)
{
    if (ctx->flush == NULL) { /* stopped (shutdown): nothing will flush */
        struct sender_batch b = {.ctx = ctx, .q = q, .n = 1, .items = &item};

        q->done(&b, TN_ECANCELED);
        return;
    }
    if (q->n == q->cap) {
        q->cap = q->cap == 0 ? 64 : q->cap * 2;
        q->items = tn_xrealloc(q->items, q->cap * sizeof(*q->items));
    }
    q->items[q->n++] = item;
}

/* sender_batch_start - set the queues up and start the flush handle */
void sender_batch_start(struct sender_ctx *ctx)
{
    ctx->intake =
        (struct sender_queue){.name = "intake", .work = sender_out_work, .done = sender_out_done};
    ctx->prepare = (struct sender_queue){
        .name = "prepare", .work = sender_store_prepare, .done = sender_send_prepared};
    ctx->record = (struct sender_queue){
        .name = "record", .work = sender_store_record, .done = sender_send_recorded};
    ctx->flush = tn_xcalloc(1, sizeof(*ctx->flush));
    uv_check_init(ctx->loop, ctx->flush);
    ctx->flush->data = ctx;
    uv_check_start(ctx->flush, flush_cb);
    ctx->slot_wait = tn_xcalloc(1, sizeof(*ctx->slot_wait));
    uv_timer_init(ctx->loop, ctx->slot_wait);
    ctx->slot_wait->data = ctx;
}

/* close_cb - free the handle */
static void close_cb(uv_handle_t *h)
{
    tn_free(h);
}

/* cancel - finish every queued item of q with TN_ECANCELED */
static void cancel(struct sender_ctx *ctx, struct sender_queue *q)
{
    struct sender_batch b = {.ctx = ctx, .q = q, .n = q->n, .items = q->items};

    if (q->n > 0)
        q->done(&b, TN_ECANCELED);
    tn_free(q->items);
    q->items = NULL;
    q->n = q->cap = 0;
}

/* sender_batch_stop - close the flush handle, cancel what is queued */
void sender_batch_stop(struct sender_ctx *ctx)
{
    if (ctx->flush == NULL)
        return;
    uv_check_stop(ctx->flush);
    uv_close((uv_handle_t *)ctx->flush, close_cb);
    ctx->flush = NULL;
    uv_timer_stop(ctx->slot_wait);
    uv_close((uv_handle_t *)ctx->slot_wait, close_cb);
    ctx->slot_wait = NULL;
    cancel(ctx, &ctx->intake);
    cancel(ctx, &ctx->record);
    cancel(ctx, &ctx->prepare);
    sender_sched_flush(ctx);
    tn_free(ctx->unsched.argv);
    ctx->unsched = (struct sender_unsched){0};
}

/* sender_pg_array_add - one element of an array literal (runs between
 * quotes and backslashes are copied whole: this is per value of a batch) */
void sender_pg_array_add(struct tn_buf *b, const char *s)
{
    if (b->len > 1)
        tn_buf_add(b, ",", 1);
    if (s == NULL) {
        tn_buf_adds(b, "NULL");
        return;
    }
    tn_buf_add(b, "\"", 1);
    while (*s != '\0') {
        size_t n = strcspn(s, "\"\\");

        tn_buf_add(b, s, n);
        s += n;
        if (*s == '\0')
            break;
        tn_buf_add(b, "\\", 1);
        tn_buf_add(b, s++, 1);
    }
    tn_buf_add(b, "\"", 1);
}

/* sender_pg_array_end - close the literal */
const char *sender_pg_array_end(struct tn_buf *b)
{
    tn_buf_add(b, "}", 1);
    return b->data;
}

/* sender_group_end - end of the run of items sharing item i's tenant */
size_t sender_group_end(void *const *items, size_t n, size_t i,
                        const char *(*tenant_of)(const void *item))
{
    const char *t = tenant_of(items[i]);
    size_t j = i + 1;

    while (j < n && strcmp(tenant_of(items[j]), t) == 0)
        j++;
    return j;
}

/* by_value - qsort/bsearch order of index entries */
static int by_value(const void *a, const void *b)
{
    return strcmp(((const struct sender_rowidx_ent *)a)->v,
                  ((const struct sender_rowidx_ent *)b)->v);
}

/* sender_rowidx_init - index column col of res (NULLs left out) */
void sender_rowidx_init(struct sender_rowidx *x, const struct pg_result *res, int col)
{
    int rows = tn_pg_result_rows(res);

    x->n = 0;
    x->ents = tn_xcalloc((size_t)rows + 1, sizeof(*x->ents));
    for (int r = 0; r < rows; r++) {
        const char *v = tn_pg_result_value(res, r, col);

        if (v != NULL)
            x->ents[x->n++] = (struct sender_rowidx_ent){.v = v, .row = r};
    }
    qsort(x->ents, x->n, sizeof(*x->ents), by_value);
}

/* sender_rowidx_find - a row whose column is v, -1 if none */
int sender_rowidx_find(const struct sender_rowidx *x, const char *v)
{
    struct sender_rowidx_ent key = {.v = v}, *e;

    if (v == NULL)
        return -1;
    e = bsearch(&key, x->ents, x->n, sizeof(*x->ents), by_value);
    return e != NULL ? e->row : -1;
}

/* sender_rowidx_free - release the index */
void sender_rowidx_free(struct sender_rowidx *x)
{
    tn_free(x->ents);
    x->ents = NULL;
    x->n = 0;
}
