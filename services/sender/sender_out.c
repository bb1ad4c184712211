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
 *	Verdicts: ACK; RETRY when Postgres or Redis is down; DEAD
 *	"schema.invalid" (not an outbound.message, bad ids, bad JSON) and
 *	"contact.unknown" (no such contact or channel in the tenant).
 * RUNS ON
 *	loop; the row step on the threadpool (upsert_work).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_consumer.h>
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

static const char sql_find[] =
    "SELECT o.id, o.state, (extract(epoch FROM o.not_before) * 1000)::bigint, o.channel_id,"
    " o.contact_id, ch.kind FROM outbound_messages o"
    " JOIN channels ch ON ch.tenant_id = o.tenant_id AND ch.id = o.channel_id"
    " WHERE o.tenant_id = $1 AND (o.id = $2::uuid OR o.idempotency_key = $3) LIMIT 1";

struct out_job {
    struct sender_ctx *ctx;
    struct tn_consumer *c;
    struct tn_entry *e;
    struct tn_log_ctx log;
    const char *p[17]; /* borrowed from data / the entry (valid until done) */
    json_t *data;
    char *template_text;
    /* results */
    char id[SENDER_UUID_LEN + 1], state[16], channel[SENDER_UUID_LEN + 1];
    char contact[SENDER_UUID_LEN + 1], kind[24];
    int64_t not_before_ms;
    const char *dead; /* static reason */
    char member[200];
};

/* str - data[key] as a string or NULL */
static const char *str(const json_t *d, const char *key)
{
    return json_string_value(json_object_get(d, key));
}

/* uuid_or_null - s when it is a uuid, else NULL */
static const char *uuid_or_null(const char *s)
{
    return s != NULL && sender_is_uuid(s) ? s : NULL;
}

/* parse - the entry into job->p; false when it is not a usable outbound.message */
static bool parse(struct out_job *job)
{
    const char *type = tn_entry_field(job->e, TN_F_TYPE, NULL);
    const char *tenant = tn_entry_field(job->e, TN_F_TENANT, NULL);
    const char *raw = tn_entry_field(job->e, TN_F_DATA, NULL);
    const json_t *d, *tpl;
    const char *oid;

    if (type == NULL || strcmp(type, TN_TYPE_OUTBOUND_MESSAGE) != 0 || tenant == NULL ||
        !sender_is_uuid(tenant) || raw == NULL)
        return false;
    job->data = json_loads(raw, 0, NULL);
    d = job->data;
    oid = str(d, "outbound_id");
    if (oid == NULL || *oid == '\0' ||
        !sender_is_uuid(str(d, "channel") ? str(d, "channel") : "") || str(d, "kind") == NULL ||
        (str(d, "contact_id") == NULL && str(d, "to") == NULL))
        return false;
    tpl = json_object_get(d, "template");
    if (tpl != NULL)
        job->template_text = sender_json_text(tpl);
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
    job->p[11] = str(d, "reply_to");
    job->p[12] = str(d, "reason");
    job->p[13] = str(d, "expires_at");
    job->p[14] = tn_entry_field(job->e, TN_F_TRACE, NULL);
    job->p[15] = job->e->id;
    job->p[16] = str(d, "to");
    return true;
}

/* copy - a result column into a fixed buffer */
static void copy(char *dst, size_t size, const struct pg_result *res, int col)
{
    const char *v = tn_pg_result_value(res, 0, col);

    snprintf(dst, size, "%s", v != NULL ? v : "");
}

/* upsert_work - insert the row unless it exists, then read it back.
 * Runs on: threadpool. */
static enum tn_err upsert_work(struct tn_pgconn *c, void *arg)
{
    struct out_job *job = arg;
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_begin_tenant(c, job->p[0]);

    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, sql_insert, 17, job->p, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_find, 3, job->p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1) {
        job->dead = "contact.unknown";
    } else if (err == TN_OK) {
        copy(job->id, sizeof(job->id), res, 0);
        copy(job->state, sizeof(job->state), res, 1);
        job->not_before_ms = strtoll(tn_pg_result_value(res, 0, 2), NULL, 10);
        copy(job->channel, sizeof(job->channel), res, 3);
        copy(job->contact, sizeof(job->contact), res, 4);
        copy(job->kind, sizeof(job->kind), res, 5);
    }
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    tn_pg_result_free(res);
    return err;
}

/* job_done - give the verdict and free the job */
static void job_done(struct out_job *job, enum tn_disp disp, const char *reason)
{
    struct sender_ctx *ctx = job->ctx;

    tn_consumer_done(job->c, job->e, disp, reason);
    json_decref(job->data);
    tn_free(job->template_text);
    tn_free(job);
    ctx->handlers--;
}

/* scheduled_cb - the member is on the schedule: ACK */
static void scheduled_cb(enum tn_err err, void *arg)
{
    struct out_job *job = arg;
    struct sender_ctx *ctx = job->ctx;

    job_done(job, err == TN_OK ? TN_DISP_ACK : TN_DISP_RETRY, "schedule.unavailable");
    sender_sched_kick(ctx);
}

/* upsert_done_cb - schedule a live row, ACK a finished one */
static void upsert_done_cb(enum tn_err err, void *arg)
{
    struct out_job *job = arg;
    const struct sender_provider *prov = sender_provider_of(job->kind);
    int64_t now = tn_now_ms();

    if (err != TN_OK || job->dead != NULL) {
        if (err != TN_OK)
            tn_log_warn(&job->log, "sender.store_failed", TN_KV_ERR(err));
        job_done(job, err == TN_OK || err == TN_EINVAL ? TN_DISP_DEAD : TN_DISP_RETRY,
                 job->dead != NULL ? job->dead : "schema.invalid");
        return;
    }
    if (strcmp(job->state, "queued") != 0 && strcmp(job->state, "sending") != 0) {
        job_done(job, TN_DISP_ACK, NULL); /* a redelivery of a finished message */
        return;
    }
    sender_member_make(job->member, sizeof(job->member), job->id, job->channel, job->contact,
                       prov != NULL ? prov->name : job->kind);
    if (sender_sched_add(job->ctx, job->p[0], job->member,
                         job->not_before_ms > now ? job->not_before_ms : now, true, scheduled_cb,
                         job) != TN_OK)
        job_done(job, TN_DISP_RETRY, "schedule.unavailable");
}

/* sender_out_entry - one tern:out entry */
void sender_out_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct sender_ctx *ctx = arg;
    struct out_job *job = tn_xcalloc(1, sizeof(*job));

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
    if (tn_pg_submit(ctx->pg, upsert_work, upsert_done_cb, job) != TN_OK)
        job_done(job, TN_DISP_RETRY, "store.unavailable");
}
