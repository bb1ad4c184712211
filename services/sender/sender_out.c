/*
 * NAME
 *	sender_out - the tern:out handler: make the message durable, schedule it
 * SYNOPSIS
 *	tn_consumer_new(loop, url, &opts, sender_out_entry, ctx);
 * DESCRIPTION
 *	An outbound.message entry (proto/streams/outbound.message.v1.json)
 *	becomes (or finds) its outbound_messages row: the producer (tern-agent)
 *	may have inserted it already; otherwise it is inserted from the entry,
 *	keyed by outbound_id (the row id when it is a uuid, and always the
 *	idempotency key), so a redelivered entry finds the same row. The
 *	contact is contact_id, or the channel's contact with address "to".
 *	A row still queued or sending is put on the schedule (ZADD NX: a
 *	member already there keeps its due time or lease) at not_before or now;
 *	a finished row is only acknowledged. The entry is acknowledged once the
 *	schedule holds the member: from there the schedule, not the stream,
 *	carries the message (retries, not_before, restarts).
 *
 *	Entries are batched (sender_batch.c): one transaction per tenant
 *	inserts the rows of many entries (INSERT ... SELECT FROM unnest()) and
 *	reads them back (one SELECT), and one script call schedules their
 *	members. A batch the database refuses as a whole (one entry's bad
 *	timestamp) is redone entry by entry, so only the bad entry dies.
 *
 *	Sent at intake: an entry due now (no not_before) of a WhatsApp or
 *	Twilio channel that finds a free job slot and a free rate token
 *	(sender_send_reserve) is decided in the same transaction, before its
 *	row exists (sender_intake.c), and the INSERT stores the row already
 *	'sending', or 'failed'/'dead' with the reason. Only a row the INSERT
 *	itself stored goes on this way. Its member is scheduled leased (now + the lease),
 *	as a claim leaves it, so a crash mid-call brings it back after the
 *	lease to a row in 'sending' that waits for the echo. The call starts
 *	once the member is scheduled and the entry acknowledged; when the
 *	schedule is down the call still goes (the row says 'sending'; the
 *	entry, left pending, comes back to find it).
 *
 *	An entry that would be sent at intake but finds every job slot taken
 *	waits for one in the intake queue, at most TN_SENDER_INTAKE_WAIT
 *	(sender_out_ready, run by the flush): slots free all the time under a
 *	burst, and the schedule's path costs the row a third write, a locking
 *	read, a claim and a prepare transaction. Entries that have their slot,
 *	or do not wait, are stored meanwhile; an entry whose wait ends is
 *	stored queued and takes the schedule. The waiting entries are
 *	unacknowledged stream entries still in the handler, so the consumer
 *	reads no more while they wait (back-pressure, bounded by the wait).
 *
 *	An outbound.read entry (mark an inbound message read) is no message:
 *	it goes to sender_read.c and never becomes a row.
 *
 *	Email entries may carry "subject" (kept in the template column with
 *	the template, which email does not use) and "in_reply_to" (the lead's
 *	Message-ID; stored as reply_to when reply_to is absent).
 *
 *	Verdicts: ACK; RETRY when Postgres or Redis is down; DEAD
 *	"schema.invalid" (not an outbound.message, bad ids, bad JSON) and
 *	"contact.unknown" (no such contact or channel in the tenant).
 * RUNS ON
 *	loop; the row step on the threadpool (sender_out_work).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_consumer.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_time.h>

#include "sender.h"

static const char sql_insert[] =
    "INSERT INTO outbound_messages (tenant_id, id, idempotency_key, conversation_id, contact_id,"
    " channel_id, not_before, body, template, kind, transport, reply_to, reason, expires_at,"
    " trace, source_entry_id)"
    " SELECT $1, COALESCE($2::uuid, gen_random_uuid()), $3, $4::uuid, ct.id, ch.id,"
    " COALESCE($7::timestamptz, now()), $8, $9::jsonb, $10, $11, $12, $13, $14::timestamptz,"
    " $15, $16"
    " FROM channels ch JOIN contacts ct ON ct.tenant_id = ch.tenant_id"
    " WHERE ch.tenant_id = $1 AND ch.id = $6::uuid"
    " AND (ct.id = $5::uuid OR ($5::uuid IS NULL AND ct.kind = ch.kind AND ct.address = $17))"
    " ON CONFLICT DO NOTHING";

/* the batched forms: $2.. are arrays of the single form's $2..$17, then
 * the state each row starts in ($18: NULL for queued; 'sending', 'failed'
 * or 'dead' when intake decided it, sender_store_decide_fresh) and its
 * error code ($19) */
#define INSERT_MANY                                                                                \
    "INSERT INTO outbound_messages (tenant_id, id, idempotency_key, conversation_id, contact_id,"  \
    " channel_id, not_before, body, template, kind, transport, reply_to, reason, expires_at,"      \
    " trace, source_entry_id, state, attempts, sending_at, last_error_code, last_error)"           \
    " SELECT $1, COALESCE(u.id, gen_random_uuid()), u.key, u.conv, ct.id, ch.id,"                  \
    " COALESCE(u.nb, now()), u.body, u.tpl::jsonb, u.kind, u.transport, u.reply_to, u.reason,"     \
    " u.exp, u.trace, u.src, COALESCE(u.st, 'queued'), CASE WHEN u.st = 'sending' THEN 1 ELSE 0"   \
    " END, CASE WHEN u.st = 'sending' THEN now() END, u.code, u.code"                              \
    " FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[], $7::timestamptz[],"  \
    " $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],"                 \
    " $14::timestamptz[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[])"        \
    " AS u(id, key, conv, contact, channel, nb, body, tpl, kind, transport, reply_to, reason,"     \
    " exp, trace, src, addr, st, code)"                                                            \
    " JOIN channels ch ON ch.tenant_id = $1 AND ch.id = u.channel" SENDER_SQL_CONTACT              \
    " ON CONFLICT DO NOTHING"

/* the rows it inserted, in sql_find_many's columns */
static const char sql_insert_many[] =
    "WITH ins AS (" INSERT_MANY " RETURNING id, state, not_before, channel_id, contact_id,"
    " idempotency_key)"
    " SELECT ins.id, ins.state, (extract(epoch FROM ins.not_before) * 1000)::bigint,"
    " ins.channel_id, ins.contact_id, ch.kind, ins.idempotency_key FROM ins"
    " JOIN channels ch ON ch.tenant_id = $1 AND ch.id = ins.channel_id";

/* two index lookups: one OR over both arrays makes the planner scan the table */
#define FIND_MANY(cond)                                                                            \
    "SELECT o.id, o.state, (extract(epoch FROM o.not_before) * 1000)::bigint, o.channel_id,"       \
    " o.contact_id, ch.kind, o.idempotency_key FROM outbound_messages o"                           \
    " JOIN channels ch ON ch.tenant_id = o.tenant_id AND ch.id = o.channel_id"                     \
    " WHERE o.tenant_id = $1 AND " cond
static const char sql_find_many[] =
    FIND_MANY("o.id = ANY($2::uuid[])") " UNION " FIND_MANY("o.idempotency_key = ANY($3::text[])");

static const char sql_find[] =
    "SELECT o.id, o.state, (extract(epoch FROM o.not_before) * 1000)::bigint, o.channel_id,"
    " o.contact_id, ch.kind FROM outbound_messages o"
    " JOIN channels ch ON ch.tenant_id = o.tenant_id AND ch.id = o.channel_id"
    " WHERE o.tenant_id = $1 AND (o.id = $2::uuid OR o.idempotency_key = $3) LIMIT 1";

/* str - data[key] as a string or NULL */
static const char *str(const json_t *d, const char *key)
{
    return json_string_value(json_object_get(d, key));
}

/* uuid_or_null - s when it is a uuid, else NULL */
static const char *uuid_or_null(const char *s)
{
    return s != NULL && tn_uuid_valid(s) ? s : NULL;
}

/* template_text - the template column: the entry's template, and an email's
 * subject kept beside it (XXX: outbound_messages has no subject column yet;
 * sender_store.c reads it back for email channels). Returns: new or NULL. */
static char *template_text(const json_t *d)
{
    const json_t *tpl = json_object_get(d, "template");
    const char *subject = str(d, "subject");
    json_t *t;
    char *text;

    if (subject == NULL)
        return tpl != NULL ? sender_json_text(tpl) : NULL;
    t = json_is_object(tpl) ? json_deep_copy(tpl) : json_object();
    json_object_set_new(t, "subject", json_string(subject));
    text = sender_json_text(t);
    json_decref(t);
    return text;
}

/* parse - the entry into job->p; false when it is not a usable outbound.message */
static bool parse(struct sender_out_job *job)
{
    const char *type = tn_entry_field(job->e, TN_F_TYPE, NULL);
    const char *tenant = tn_entry_field(job->e, TN_F_TENANT, NULL);
    const char *raw = tn_entry_field(job->e, TN_F_DATA, NULL);
    const json_t *d;
    const char *oid;

    if (type == NULL || strcmp(type, TN_TYPE_OUTBOUND_MESSAGE) != 0 || tenant == NULL ||
        !tn_uuid_valid(tenant) || raw == NULL)
        return false;
    job->data = json_loads(raw, 0, NULL);
    d = job->data;
    oid = str(d, "outbound_id");
    if (oid == NULL || *oid == '\0' || !tn_uuid_valid(str(d, "channel") ? str(d, "channel") : "") ||
        str(d, "kind") == NULL || (str(d, "contact_id") == NULL && str(d, "to") == NULL))
        return false;
    job->template_text = template_text(d);
    job->log.tenant_id = tenant;
    job->p[0] = tenant;
    job->p[1] = uuid_or_null(oid);
    job->p[2] = oid;
    job->p[3] = uuid_or_null(str(d, "conversation_id"));
    job->p[4] = uuid_or_null(str(d, "contact_id"));
    job->p[5] = str(d, "channel");
    job->p[6] = str(d, "not_before");
    job->p[7] = str(d, "text");
    job->p[8] = job->template_text;
    job->p[9] = str(d, "kind");
    job->p[10] = str(d, "transport");
    job->p[11] = str(d, "reply_to") != NULL ? str(d, "reply_to") : str(d, "in_reply_to");
    job->p[12] = str(d, "reason");
    job->p[13] = str(d, "expires_at");
    job->p[14] = tn_entry_field(job->e, TN_F_TRACE, NULL);
    job->p[15] = job->e->id;
    job->p[16] = str(d, "to");
    return true;
}

/* copy - a result column into a fixed buffer */
static void copy(char *dst, size_t size, const struct pg_result *res, int row, int col)
{
    const char *v = tn_pg_result_value(res, row, col);

    snprintf(dst, size, "%s", v != NULL ? v : "");
}

/* take_row - the found row `row` into the job's results */
static void take_row(struct sender_out_job *job, const struct pg_result *res, int row)
{
    copy(job->id, sizeof(job->id), res, row, 0);
    copy(job->state, sizeof(job->state), res, row, 1);
    job->not_before_ms = strtoll(tn_pg_result_value(res, row, 2), NULL, 10);
    copy(job->channel, sizeof(job->channel), res, row, 3);
    copy(job->contact, sizeof(job->contact), res, row, 4);
    copy(job->kind, sizeof(job->kind), res, row, 5);
}

/* upsert_one - insert the row unless it exists, then read it back.
 * Runs on: threadpool. */
static enum tn_err upsert_one(struct tn_pgconn *c, struct sender_out_job *job)
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_begin_tenant(c, job->p[0]);

    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, sql_insert, 17, job->p, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_find, 3, job->p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        job->dead = "contact.unknown";
    else if (err == TN_OK)
        take_row(job, res, 0);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    tn_pg_result_free(res);
    return err;
}

/* match - the found row of job (by its key, else its id), -1 if none */
static int match(const struct sender_rowidx *keys, const struct sender_rowidx *ids,
                 const struct sender_out_job *job)
{
    int r = sender_rowidx_find(keys, job->p[2]);

    return r >= 0 ? r : sender_rowidx_find(ids, job->p[1]);
}

/* arrays - the array literals of column k of jobs (1 + k: job->p index) */
static void arrays(struct tn_buf *a, int ncols, struct sender_out_job **jobs, size_t n,
                   const char **p)
{
    for (int k = 0; k < ncols; k++) {
        tn_buf_init(&a[k], 0);
        tn_buf_adds(&a[k], "{");
        for (size_t i = 0; i < n; i++)
            sender_pg_array_add(&a[k], jobs[i]->p[1 + k]);
        p[1 + k] = sender_pg_array_end(&a[k]);
    }
}

/* take_rows - each job of jobs without a row yet takes its row in res;
 * returns how many are still without one (moved to the front of jobs) */
static size_t take_rows(const struct pg_result *res, struct sender_out_job **jobs, size_t n)
{
    struct sender_rowidx keys, ids;
    size_t left = 0;

    sender_rowidx_init(&keys, res, 6);
    sender_rowidx_init(&ids, res, 0);
    for (size_t i = 0; i < n; i++) {
        int row = match(&keys, &ids, jobs[i]);

        if (row >= 0)
            take_row(jobs[i], res, row);
        else
            jobs[left++] = jobs[i];
    }
    sender_rowidx_free(&keys);
    sender_rowidx_free(&ids);
    return left;
}

/* find_rest - read back the rows of entries the INSERT did not insert
 * (redeliveries, rows the producer inserted); none: contact.unknown */
static enum tn_err find_rest(struct tn_pgconn *c, struct sender_out_job **jobs, size_t n)
{
    struct tn_buf a[2];
    const char *p[3] = {jobs[0]->p[0]};
    struct pg_result *res = NULL;
    enum tn_err err;
    size_t left;

    arrays(a, 2, jobs, n, p);
    err = tn_pgconn_query_cached(c, sql_find_many, 3, p, &res);
    if (err == TN_OK) {
        left = take_rows(res, jobs, n);
        for (size_t i = 0; i < left; i++)
            jobs[i]->dead = "contact.unknown";
    }
    tn_pg_result_free(res);
    tn_buf_free(&a[0]);
    tn_buf_free(&a[1]);
    return err;
}

/* upsert_group - one tenant's entries: the decisions of those to send at
 * once, one INSERT ... RETURNING, and a SELECT only for the entries it did
 * not insert. Runs on: threadpool. */
static enum tn_err upsert_group(struct tn_pgconn *c, struct sender_out_job **jobs, size_t n)
{
    struct tn_buf a[18];
    const char *p[19] = {jobs[0]->p[0]};
    struct sender_out_job **rest = tn_xcalloc(n, sizeof(*rest));
    struct pg_result *res = NULL;
    enum tn_err err;
    size_t left = 0;

    memcpy(rest, jobs, n * sizeof(*rest));
    err = tn_pgconn_begin_tenant(c, p[0]);
    if (err == TN_OK)
        err = sender_intake_decide(c, jobs, n);
    arrays(a, 16, jobs, n, p);
    sender_intake_state_arrays(a + 16, jobs, n, p);
    if (err == TN_OK)
        err = tn_pgconn_query_cached(c, sql_insert_many, 19, p, &res);
    if (err == TN_OK) {
        sender_intake_confirm(res, jobs, n);
        left = take_rows(res, rest, n);
    }
    if (err == TN_OK && left > 0)
        err = find_rest(c, rest, left);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    tn_pg_result_free(res);
    for (int k = 0; k < 18; k++)
        tn_buf_free(&a[k]);
    tn_free(rest);
    return err;
}

/* job_tenant - an entry's tenant (sender_group_end) */
static const char *job_tenant(const void *item)
{
    return ((const struct sender_out_job *)item)->p[0];
}

/* by_tenant - qsort order of entries */
static int by_tenant(const void *a, const void *b)
{
    return strcmp(job_tenant(*(void *const *)a), job_tenant(*(void *const *)b));
}

/* sender_out_work - the intake batch (see the file header) */
enum tn_err sender_out_work(struct tn_pgconn *c, void *arg)
{
    struct sender_batch *b = arg;
    size_t end;

    qsort(b->items, b->n, sizeof(*b->items), by_tenant);
    for (size_t i = 0; i < b->n; i = end) {
        struct sender_out_job **jobs = (struct sender_out_job **)b->items + i;
        enum tn_err err;

        end = sender_group_end(b->items, b->n, i, job_tenant);
        err = upsert_group(c, jobs, end - i);
        for (size_t k = 0; k < end - i; k++) {
            jobs[k]->err = err;
            if (err == TN_EINVAL) { /* one bad value refuses them all: one by one */
                jobs[k]->dead = NULL;
                jobs[k]->st = NULL; /* stored queued: the schedule sends it */
                jobs[k]->direct = false;
                jobs[k]->err = upsert_one(c, jobs[k]);
            }
        }
    }
    return TN_OK;
}

/* job_done - give the verdict and free the job */
static void job_done(struct sender_out_job *job, enum tn_disp disp, const char *reason)
{
    struct sender_ctx *ctx = job->ctx;

    tn_consumer_done(job->c, job->e, disp, reason);
    json_decref(job->data);
    tn_free(job->template_text);
    tn_free(job);
    ctx->handlers--;
}

/* The entries of one intake batch waiting for their members' schedule. */
struct sched_op {
    struct sender_ctx *ctx;
    struct sender_out_job **jobs;
    size_t n;
};

/* scheduled_cb - the members are on the schedule (or not): the verdicts,
 * then the sends decided at intake. Those go on even when the schedule
 * failed: their rows say 'sending' already, and the entry, left pending,
 * comes back to find the row (sent, or 'sending' waiting for its echo). */
static void scheduled_cb(enum tn_err err, void *arg)
{
    struct sched_op *op = arg;

    for (size_t i = 0; i < op->n; i++) {
        struct sender_job *sj = op->jobs[i]->send;

        op->jobs[i]->send = NULL;
        job_done(op->jobs[i], err == TN_OK ? TN_DISP_ACK : TN_DISP_RETRY, "schedule.unavailable");
        if (sj != NULL)
            sender_send_go(sj);
    }
    sender_sched_kick(op->ctx);
    tn_free(op->jobs);
    tn_free(op);
}

/* upserted - the verdict of a dead or finished row; false for a live one */
static bool upserted(struct sender_out_job *job, enum tn_err err)
{
    const struct sender_provider *prov = sender_provider_of(job->kind);
    struct sender_job *sj = job->send;
    int64_t now = tn_now_ms();

    if (sj != NULL && (err != TN_OK || job->dead != NULL || !job->direct)) {
        sender_send_release(sj); /* not decided here: the schedule has it */
        job->send = sj = NULL;
    }
    if (err != TN_OK || job->dead != NULL) {
        if (err != TN_OK)
            tn_log_warn(&job->log, "sender.store_failed", TN_KV_ERR(err));
        job_done(job, err == TN_OK || err == TN_EINVAL ? TN_DISP_DEAD : TN_DISP_RETRY,
                 job->dead != NULL ? job->dead : "schema.invalid");
        return true;
    }
    if (strcmp(job->state, "queued") != 0 && strcmp(job->state, "sending") != 0) {
        job->send = NULL;
        job_done(job, TN_DISP_ACK, NULL); /* finished: a redelivery, or failed at intake */
        if (sj != NULL)
            sender_send_go(sj); /* logs why it failed, or dead-letters it */
        return true;
    }
    sender_member_make(job->member, sizeof(job->member), job->id, job->channel, job->contact,
                       prov != NULL ? prov->name : job->kind);
    /* a send decided here is claimed already: its lease, like a claim's */
    snprintf(job->due, sizeof(job->due), "%" PRId64,
             sj != NULL                 ? now + job->ctx->cfg.lease_ms
             : job->not_before_ms > now ? job->not_before_ms
                                        : now);
    return false;
}

/* sender_out_done - the intake batch is stored: schedule the live rows */
void sender_out_done(struct sender_batch *b, enum tn_err err)
{
    struct sched_op *op = tn_xcalloc(1, sizeof(*op));
    const char **argv = tn_xcalloc(b->n * 3 + 1, sizeof(*argv));

    op->ctx = b->ctx;
    op->jobs = tn_xcalloc(b->n + 1, sizeof(*op->jobs));
    for (size_t i = 0; i < b->n; i++) {
        struct sender_out_job *job = b->items[i];

        if (upserted(job, err != TN_OK ? err : job->err))
            continue;
        argv[op->n * 3] = job->p[0];
        argv[op->n * 3 + 1] = job->member;
        argv[op->n * 3 + 2] = job->due;
        op->jobs[op->n++] = job;
    }
    if (op->n == 0 || sender_sched_add_many(b->ctx, op->n, argv, scheduled_cb, op) != TN_OK) {
        scheduled_cb(TN_EUNAVAIL, op); /* frees op */
    }
    tn_free(argv);
}

/* reserve - a job slot and a rate token for the entry's send at intake
 * (sender_send_reserve); when only a free slot was missing, the entry
 * waits for one (since `since`, sender_out_ready), else it stops waiting */
static void reserve(struct sender_out_job *job, int64_t since)
{
    bool no_slot;

    job->send = sender_send_reserve(job->ctx, job->p[0], job->p[5],
                                    tn_entry_field(job->e, TN_F_PROVIDER, NULL), &no_slot);
    job->slot_wait_ms = no_slot && job->ctx->cfg.intake_wait_ms > 0 ? since : 0;
}

/* sender_out_entry - one tern:out entry */
void sender_out_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct sender_ctx *ctx = arg;
    const char *type = tn_entry_field(e, TN_F_TYPE, NULL);
    struct sender_out_job *job;

    if (type != NULL && strcmp(type, TN_TYPE_OUTBOUND_READ) == 0) {
        sender_read_entry(c, e, arg); /* a read marker: no row, no schedule */
        return;
    }
    job = tn_xcalloc(1, sizeof(*job));
    job->ctx = ctx;
    job->c = c;
    job->e = e;
    job->log = (struct tn_log_ctx){.entry_id = e->id, .stream = e->stream};
    ctx->handlers++;
    if (!parse(job)) {
        tn_log_warn(&job->log, "sender.entry_invalid");
        job_done(job, TN_DISP_DEAD, "schema.invalid");
        return;
    }
    if (job->p[6] == NULL) /* due now: intake may decide and record the send itself */
        reserve(job, tn_mono_ms());
    sender_queue_push(ctx, &ctx->intake, job);
}

/* sender_out_ready - see sender.h */
size_t sender_out_ready(struct sender_ctx *ctx, int64_t *wake_ms)
{
    struct sender_queue *q = &ctx->intake;
    int64_t now = tn_mono_ms(), bound = ctx->cfg.intake_wait_ms;
    size_t ready = 0, waiting = 0;
    void **wait;

    /* held in the handler: well inside the stream's visibility timeout */
    if (bound > ctx->cfg.visibility_ms / 4)
        bound = ctx->cfg.visibility_ms / 4;
    *wake_ms = -1;
    for (size_t i = 0; i < q->n; i++) {
        struct sender_out_job *job = q->items[i];

        if (job->slot_wait_ms != 0 && (ctx->jobs < (size_t)ctx->cfg.concurrency || ctx->draining))
            reserve(job, job->slot_wait_ms);
        if (job->slot_wait_ms != 0 && now - job->slot_wait_ms >= bound)
            job->slot_wait_ms = 0; /* waited long enough: the schedule sends it */
        if (job->slot_wait_ms == 0)
            ready++;
        else if (*wake_ms < 0 || job->slot_wait_ms + bound - now < *wake_ms)
            *wake_ms = job->slot_wait_ms + bound - now;
    }
    if (ready == q->n || ready == 0)
        return ready;
    /* the ready ones to the front, each part in its order */
    wait = tn_xcalloc(q->n - ready, sizeof(*wait));
    ready = 0;
    for (size_t i = 0; i < q->n; i++) {
        struct sender_out_job *job = q->items[i];

        if (job->slot_wait_ms == 0)
            q->items[ready++] = job;
        else
            wait[waiting++] = job;
    }
    memcpy(q->items + ready, wait, waiting * sizeof(*wait));
    tn_free(wait);
    return ready;
}
