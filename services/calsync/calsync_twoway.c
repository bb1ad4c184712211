/*
 * NAME
 *	calsync_twoway - the business deleted or moved one of Tern's events
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_twoway_seen(import_job, booking_id, start, end);
 *	calsync_twoway_candidates(conn, import_job);  calsync_twoway_checks(import_job);
 *	calsync_twoway_apply(check_job, then);
 * DESCRIPTION
 *	Two-way sync rides on the periodic busy-time import. While an import
 *	lists the calendar (Google events.list, CalDAV calendar-query) it notes
 *	every event carrying Tern's tag with its times (seen). In the same
 *	transaction that stores the busy time, candidates selects the bookings
 *	of the account that are confirmed, mirrored at their current version
 *	(synced_version = sync_version, an event id recorded), overlap the
 *	window and were not seen at their own times; at most
 *	CALSYNC_MAX_CHECKS per import (the rest wait for the next one).
 *
 *	A listing is not proof: an event written after the list was fetched,
 *	or a page the server left out, would look missing. So each candidate
 *	becomes a CALSYNC_CHECK job that loads the booking again and GETs its
 *	event by the deterministic id (calsync_google.c, calsync_caldav.c):
 *	  Google 404 / 410, or status "cancelled"; CalDAV 404   gone
 *	  Tern's event at other times                             moved
 *	  anything else (same times, a foreign event, an error)   nothing
 *	apply then calls, bound to the tenant, tern_calsync_provider_cancel
 *	(the booking is cancelled, its queued reminders canceled, and a notice
 *	committed for the lead, which is XADDed to tern:out here and marked
 *	with tern_calsync_enqueued; tern-agent's scan republishes it if the
 *	XADD is lost) or tern_calsync_provider_move (the booking takes the
 *	event's times, the exclusion constraint permitting; tern-agent's scan
 *	sends the "moved" notice and replaces the reminders, as after a
 *	reschedule). Both act only while the booking is still confirmed at the
 *	version that was checked (proto/sql/0010_calsync_twoway.sql), so a
 *	booking Tern itself cancelled or changed meanwhile is left alone.
 *
 *	XXX: a reschedule by the lead that lands between the business's
 *	delete and the next check is mirrored first, and the mirror creates
 *	the event again (the lead's newest request wins).
 * RUNS ON
 *	loop; candidates and the apply work on the threadpool.
 * DIAGNOSTICS
 *	calsync.provider_deleted (booking_id, notice), calsync.provider_moved
 *	(booking_id, outcome), calsync.notice_publish_failed (warn). The
 *	lead's address and the text are never logged.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <tn/tn_buf.h>
#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>

#include "calsync.h"

/* The lead's notice, as tern_calsync_provider_cancel returned it (new strings). */
struct calsync_notice {
    char *id, *channel, *channel_kind, *to, *conversation, *contact, *text, *created_at;
};

static const char sql_candidates[] =
    "SELECT b.id FROM bookings b WHERE b.tenant_id = tern_current_tenant()"
    " AND b.calendar_account_id = $1::uuid AND b.status = 'confirmed'"
    " AND b.sync_version = b.synced_version AND b.external_event_id IS NOT NULL"
    " AND upper(b.during) > now()"
    " AND b.during && tstzrange(to_timestamp($2::bigint), to_timestamp($3::bigint))"
    " AND NOT EXISTS (SELECT 1 FROM unnest($4::text[], $5::bigint[], $6::bigint[]) AS s(id, st, en)"
    "  WHERE s.id = b.id::text AND to_timestamp(s.st) = lower(b.during)"
    "  AND to_timestamp(s.en) = upper(b.during))"
    " ORDER BY lower(b.during) LIMIT $7::int";

static const char sql_cancel[] =
    "SELECT outbound_id, channel_id, channel_kind, to_address, conversation_id, contact_id, body,"
    " created_at FROM tern_calsync_provider_cancel($1::uuid, $2::int, $3::uuid, $4)";

static const char sql_move[] = "SELECT tern_calsync_provider_move($1::uuid, $2::int, $3::uuid,"
                               " to_timestamp($4::bigint), to_timestamp($5::bigint))";

/* uuid_like - 36 characters of lower-case hex and dashes (what Tern tags with) */
static bool uuid_like(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
            return false;
    }
    return true;
}

/* calsync_twoway_seen - an import listed Tern's event of booking at [start, end) */
void calsync_twoway_seen(struct calsync_job *j, const char *booking, int64_t start_s, int64_t end_s)
{
    if (booking == NULL || !uuid_like(booking))
        return; /* not a tag Tern wrote: nothing to compare */
    if (j->nseen == j->seencap) {
        j->seencap = j->seencap ? j->seencap * 2 : 16;
        j->seen = tn_xrealloc(j->seen, j->seencap * sizeof(*j->seen));
    }
    snprintf(j->seen[j->nseen].booking, sizeof(j->seen[0].booking), "%s", booking);
    j->seen[j->nseen].start = start_s;
    j->seen[j->nseen++].end = end_s;
}

/* seen_array - new Postgres array text of the seen ids (which = 0), starts
 * (1) or ends (2); ids are uuid_like, so they need no quoting */
static char *seen_array(const struct calsync_job *j, int which)
{
    struct tn_buf b;

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "{");
    for (size_t i = 0; i < j->nseen; i++) {
        const struct calsync_seen *s = &j->seen[i];

        if (which == 0)
            tn_buf_printf(&b, "%s%s", i ? "," : "", s->booking);
        else
            tn_buf_printf(&b, "%s%lld", i ? "," : "", (long long)(which == 1 ? s->start : s->end));
    }
    tn_buf_printf(&b, "}");
    return tn_buf_steal(&b, NULL);
}

/* calsync_twoway_candidates - the bookings to check, into j->checks.
 * Runs on: threadpool (inside the import's save transaction) */
enum tn_err calsync_twoway_candidates(struct tn_pgconn *c, struct calsync_job *j)
{
    char from[24], to[24], lim[8];
    char *ids = seen_array(j, 0), *st = seen_array(j, 1), *en = seen_array(j, 2);
    const char *p[7] = {j->acct.id, from, to, ids, st, en, lim};
    struct pg_result *res = NULL;
    enum tn_err err;

    snprintf(from, sizeof(from), "%lld", (long long)j->win_from);
    snprintf(to, sizeof(to), "%lld", (long long)j->win_to);
    snprintf(lim, sizeof(lim), "%d", CALSYNC_MAX_CHECKS);
    err = tn_pgconn_query(c, sql_candidates, 7, p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) > 0) {
        j->nchecks = (size_t)tn_pg_result_rows(res);
        j->checks = tn_xcalloc(j->nchecks, sizeof(*j->checks));
        for (size_t i = 0; i < j->nchecks; i++)
            snprintf(j->checks[i], sizeof(j->checks[i]), "%s", tn_pg_result_value(res, (int)i, 0));
    }
    tn_pg_result_free(res);
    tn_free(ids);
    tn_free(st);
    tn_free(en);
    return err;
}

/* calsync_twoway_checks - one check job per candidate of a finished import */
void calsync_twoway_checks(struct calsync_job *j)
{
    for (size_t i = 0; i < j->nchecks && !j->ctx->draining; i++)
        calsync_job_start(j->ctx, CALSYNC_CHECK, j->tenant, j->checks[i], NULL, NULL);
}

/* notice_free - release a notice (NULL-safe) */
static void notice_free(struct calsync_notice *n)
{
    if (n == NULL)
        return;
    tn_free(n->id);
    tn_free(n->channel);
    tn_free(n->channel_kind);
    tn_free(n->to);
    tn_free(n->conversation);
    tn_free(n->contact);
    tn_free(n->text);
    tn_free(n->created_at);
    tn_free(n);
}

/* calsync_twoway_free - what a job holds for two-way sync */
void calsync_twoway_free(struct calsync_job *j)
{
    tn_free(j->seen);
    tn_free(j->checks);
    notice_free(j->notice);
    j->seen = NULL, j->checks = NULL, j->notice = NULL;
}

/* dup - a result value as a new string ("" for SQL NULL) */
static char *dup(struct pg_result *res, int col)
{
    const char *v = tn_pg_result_value(res, 0, col);

    return tn_xstrdup(v != NULL ? v : "");
}

/* cancel_work - tern_calsync_provider_cancel; the notice, if one was written */
static enum tn_err cancel_work(struct tn_pgconn *c, struct calsync_job *j)
{
    char ver[16];
    const char *p[4] = {j->id, ver, j->acct.id, j->ctx->cfg.cancelled_text};
    struct pg_result *res = NULL;
    enum tn_err err;
    struct calsync_notice *n;

    snprintf(ver, sizeof(ver), "%d", j->version);
    err = tn_pgconn_query(c, sql_cancel, 4, p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) == 1) {
        n = tn_xcalloc(1, sizeof(*n));
        n->id = dup(res, 0), n->channel = dup(res, 1), n->channel_kind = dup(res, 2);
        n->to = dup(res, 3), n->conversation = dup(res, 4), n->contact = dup(res, 5);
        n->text = dup(res, 6), n->created_at = dup(res, 7);
        j->notice = n;
    }
    tn_pg_result_free(res);
    return err;
}

/* move_work - tern_calsync_provider_move; j->moved stays true only if it moved */
static enum tn_err move_work(struct tn_pgconn *c, struct calsync_job *j)
{
    char ver[16], s[24], e[24];
    const char *p[5] = {j->id, ver, j->acct.id, s, e};
    struct pg_result *res = NULL;
    enum tn_err err;
    const char *v;

    snprintf(ver, sizeof(ver), "%d", j->version);
    snprintf(s, sizeof(s), "%lld", (long long)j->new_start);
    snprintf(e, sizeof(e), "%lld", (long long)j->new_end);
    err = tn_pgconn_query(c, sql_move, 5, p, &res);
    v = err == TN_OK && tn_pg_result_rows(res) == 1 ? tn_pg_result_value(res, 0, 0) : NULL;
    j->why = v == NULL             ? NULL
             : !strcmp(v, "moved") ? "moved"
             : !strcmp(v, "taken") ? "taken"
                                   : "stale";
    tn_pg_result_free(res);
    return err;
}

/* apply_work - one transaction bound to the tenant. Runs on: threadpool */
static enum tn_err apply_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_job *j = arg;
    enum tn_err err = tn_pgconn_begin_tenant(c, j->tenant);

    if (err != TN_OK)
        return err;
    err = j->gone ? cancel_work(c, j) : move_work(c, j);
    if (err == TN_OK)
        return tn_pgconn_commit(c);
    tn_pgconn_rollback(c);
    return err;
}

/* new_trace - a fresh W3C traceparent (no request started this work); new */
static char *new_trace(void)
{
    char *out = tn_xmalloc(TN_TRACEPARENT_SIZE);

    tn_traceparent_new(out);
    return out;
}

/* provider_of - a channel kind's provider and transport (as tern-agent maps them) */
static void provider_of(const char *kind, const char **provider, const char **transport)
{
    *provider = TN_PROVIDER_WHATSAPP;
    *transport = "whatsapp";
    if (strcmp(kind, "twilio_sms") == 0) {
        *provider = TN_PROVIDER_TWILIO;
        *transport = "sms";
    } else if (strcmp(kind, "twilio_whatsapp") == 0) {
        *provider = TN_PROVIDER_TWILIO;
    } else if (strcmp(kind, "telegram") == 0) {
        *provider = TN_PROVIDER_TELEGRAM;
        *transport = "telegram";
    }
}

/* notice_data - the outbound.message v1 payload; new */
static char *notice_data(const struct calsync_job *j, const char *provider, const char *transport)
{
    const struct calsync_notice *n = j->notice;
    json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "tenant", j->tenant,
                          "channel", n->channel, "provider", provider, "outbound_id", n->id,
                          "conversation_id", n->conversation, "contact_id", n->contact, "to", n->to,
                          "transport", transport, "kind", "text", "text", n->text, "reason",
                          "notice", "created_at", n->created_at);
    char *s = json_dumps(d, JSON_COMPACT);
    char *out = tn_xstrdup(s != NULL ? s : "");

    tn_free(s); /* jansson allocates with malloc */
    json_decref(d);
    return out;
}

/* marked - enqueued_at recorded (or not: a repeat from the scan is harmless) */
static void marked(enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;

    (void)err;
    j->then(j);
}

/* mark_work - tern_calsync_enqueued. Runs on: threadpool */
static enum tn_err mark_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_job *j = arg;
    const char *p[1] = {j->notice->id};
    enum tn_err err = tn_pgconn_begin_tenant(c, j->tenant);

    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, "SELECT tern_calsync_enqueued($1::uuid)", 1, p, NULL);
    if (err == TN_OK)
        return tn_pgconn_commit(c);
    tn_pgconn_rollback(c);
    return err;
}

/* published - the XADD's answer: record it, or leave it to the scan */
static void published(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;

    (void)r;
    if (err == TN_OK && reply->type == REDIS_REPLY_ERROR)
        err = TN_EUNAVAIL;
    if (err != TN_OK) {
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = j->tenant}, "calsync.notice_publish_failed",
                    TN_KV_STR("outbound", j->notice->id), TN_KV_ERR(err));
        j->then(j);
        return;
    }
    if (tn_pg_submit(j->ctx->pg, mark_work, marked, j) != TN_OK)
        j->then(j);
}

/* publish - XADD the lead's notice to tern:out */
static void publish(struct calsync_job *j)
{
    const struct calsync_notice *n = j->notice;
    const char *provider, *transport;
    char dedupe[64], *data, *trace = new_trace();
    enum tn_err err = TN_EUNAVAIL;

    provider_of(n->channel_kind, &provider, &transport);
    snprintf(dedupe, sizeof(dedupe), "out:%s", n->id);
    data = notice_data(j, provider, transport);
    if (j->ctx->redis != NULL) {
        const char *f[] = {TN_F_TYPE,     TN_TYPE_OUTBOUND_MESSAGE,
                           TN_F_V,        TN_V_OUTBOUND_MESSAGE,
                           TN_F_TENANT,   j->tenant,
                           TN_F_TRACE,    trace,
                           TN_F_CHANNEL,  n->channel,
                           TN_F_PROVIDER, provider,
                           TN_F_OUTBOUND, n->id,
                           TN_F_DEDUPE,   dedupe,
                           TN_F_DATA,     data};

        err = tn_redis_xadd(j->ctx->redis, TN_STREAM_OUT, f, NULL, sizeof(f) / sizeof(f[0]),
                            published, j);
    }
    tn_free(data);
    tn_free(trace);
    if (err != TN_OK)
        published(NULL, NULL, err, j);
}

/* applied - the booking followed the calendar (or did not): log, tell the lead */
static void applied(enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;
    struct tn_log_ctx lc = {.tenant_id = j->tenant};

    if (err != TN_OK) {
        j->err = err;
        j->why = "database";
        j->then(j);
        return;
    }
    if (j->gone) {
        tn_log_info(&lc, "calsync.provider_deleted", TN_KV_STR("booking_id", j->id),
                    TN_KV_BOOL("notice", j->notice != NULL));
    } else {
        tn_log_info(&lc, "calsync.provider_moved", TN_KV_STR("booking_id", j->id),
                    TN_KV_STR("outcome", j->why != NULL ? j->why : "stale"));
        j->why = NULL;
    }
    if (j->notice != NULL)
        publish(j);
    else
        j->then(j);
}

/* calsync_twoway_apply - after a check's GET: make the booking follow */
void calsync_twoway_apply(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    j->then = then;
    if (!j->gone && !j->moved) {
        then(j);
        return;
    }
    if (tn_pg_submit(j->ctx->pg, apply_work, applied, j) != TN_OK) {
        j->err = TN_ECANCELED;
        j->why = "shutting_down";
        then(j);
    }
}
