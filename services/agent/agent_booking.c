/*
 * NAME
 *	agent_booking - the booking tools, their notices and the calendar request
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_booking_book(turn, args, done);
 * DESCRIPTION
 *	find_slots, book, reschedule, cancel and list_my_bookings run one
 *	tn_booking call each as a Postgres job (tn_booking.h: every rule is
 *	checked in SQL in the tenant's zone, and each call is its own
 *	transaction bound to the tenant, committed only when it succeeded).
 *	The contact is the conversation's, loaded by the turn's claim; the
 *	model never names one. A refusal (slot taken, closed, too soon, ...)
 *	comes back to the model as tn_booking's answer, with its fresh
 *	alternatives; Postgres being down becomes an error the model can tell
 *	the lead about.
 *
 *	A call that changed a booking (book, reschedule, cancel) is followed,
 *	in the same job, by a second transaction: tern_agent_booking_notices()
 *	(0006_agent_booking.sql) writes the lead's confirmation with the date
 *	and time formatted by Postgres in the tenant's zone, schedules the
 *	reminders (outbound rows with not_before, linked to the booking) and
 *	cancels the reminders a reschedule or cancel made obsolete. Back on the
 *	loop the new rows are XADDed to tern:out and a cal.request to tern:cal,
 *	so tern-calsync mirrors the change at once.
 *
 *	Why two transactions: tn_booking commits its own, and the booking must
 *	be committed before the model hears "booked" anyway. A crash or a
 *	failure between the two leaves bookings.notified_version behind
 *	sync_version; the scan (tern_agent_unnotified) then runs the notices
 *	again (agent_booking_renotify). tn_booking's own calendar safety net
 *	covers a lost cal.request (tern_calsync_pending).
 * RUNS ON
 *	loop; the *_work functions on the threadpool.
 * DIAGNOSTICS
 *	agent.booking_failed (tool, err), agent.notices_failed (err),
 *	agent.cal_request_failed (err). No argument, time or text is logged.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_booking.h>
#include <tn/tn_daemon.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>

#include "agent.h"

enum bk_op { BK_FIND, BK_BOOK, BK_RESCHEDULE, BK_CANCEL, BK_LIST, BK_NOTICES };

static const char *const op_names[] = {"find_slots",       "book",   "reschedule", "cancel",
                                       "list_my_bookings", "notices"};

/* One job: copies of what the threadpool needs, results for the loop. */
struct bk_job {
    struct agent_ctx *ctx;
    struct agent_turn *t; /* NULL for a scan's renotify */
    agent_tool_done_fn *done;
    enum bk_op op;
    char tenant[AGENT_UUID_LEN], contact[AGENT_UUID_LEN], conv[AGENT_UUID_LEN];
    char booking[AGENT_UUID_LEN]; /* BK_NOTICES */
    json_t *args;                 /* owned */
    /* out */
    enum tn_err err, notices_err;
    json_t *result; /* new */
    struct tn_booking_change change;
    struct agent_out **outs;
    size_t nouts;
};

/* job_free - release a job and whatever it still holds */
static void job_free(struct bk_job *j)
{
    for (size_t i = 0; i < j->nouts; i++)
        agent_out_free(j->outs[i]);
    tn_free(j->outs);
    json_decref(j->args);
    json_decref(j->result);
    tn_free(j);
}

/* call_tool - the tn_booking function of the job's op */
static enum tn_err call_tool(struct tn_pgconn *c, struct bk_job *j)
{
    const struct tn_booking_who who = {.tenant_id = j->tenant, .contact_id = j->contact};

    switch (j->op) {
    case BK_FIND:
        return tn_booking_find_slots(c, &who, j->args, &j->result);
    case BK_BOOK:
        return tn_booking_book(c, &who, j->args, &j->result, &j->change);
    case BK_RESCHEDULE:
        return tn_booking_reschedule(c, &who, j->args, &j->result, &j->change);
    case BK_CANCEL:
        return tn_booking_cancel(c, &who, j->args, &j->result, &j->change);
    case BK_LIST:
        return tn_booking_list(c, &who, j->args, &j->result);
    case BK_NOTICES:
        break;
    }
    return TN_EINVAL;
}

/* agent_booking_notices - tern_agent_booking_notices + the new rows */
enum tn_err agent_booking_notices(struct tn_pgconn *c, const struct agent_cfg *cfg,
                                  const char *tenant, const char *booking, const char *conv,
                                  struct agent_out ***outs, size_t *n)
{
    struct pg_result *res = NULL;
    struct agent_out **v = NULL;
    size_t nv = 0;
    enum tn_err err;

    *outs = NULL;
    *n = 0;
    err = tn_pgconn_begin_tenant(c, tenant);
    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(
        c, "SELECT * FROM tern_agent_booking_notices($1, $2, $3, $4, $5)", 5,
        (const char *const[]){booking, conv, cfg->booked_text, cfg->moved_text, cfg->reminder_text},
        &res);
    if (err != TN_OK)
        goto out;
    v = tn_xcalloc((size_t)tn_pg_result_rows(res) + 1, sizeof(*v));
    for (int i = 0; err == TN_OK && i < tn_pg_result_rows(res); i++) {
        err = agent_store_out_load(c, tenant, tn_pg_result_value(res, i, 0), &v[nv]);
        if (err == TN_OK)
            nv++;
    }
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
out:
    tn_pg_result_free(res);
    if (err != TN_OK) {
        tn_pgconn_rollback(c);
        for (size_t i = 0; i < nv; i++)
            agent_out_free(v[i]);
        tn_free(v);
        return err;
    }
    *outs = v;
    *n = nv;
    return TN_OK;
}

/* bk_work - the tool's transaction, then the notices of a change.
 * Runs on: threadpool. Touches only the job (and the immutable config). */
static enum tn_err bk_work(struct tn_pgconn *c, void *arg)
{
    struct bk_job *j = arg;
    const char *booking = j->booking;

    if (j->op != BK_NOTICES) {
        j->err = call_tool(c, j);
        if (j->change.op[0] == '\0')
            return TN_OK;
        booking = j->change.booking_id;
    }
    j->notices_err =
        agent_booking_notices(c, &j->ctx->cfg, j->tenant, booking,
                              j->conv[0] != '\0' ? j->conv : NULL, &j->outs, &j->nouts);
    return TN_OK;
}

/* cal_cb - the cal.request was added (or not: calsync's scan catches up) */
static void cal_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct agent_ctx *ctx = arg;

    (void)r;
    ctx->publishes--;
    if (err == TN_OK && reply->type == REDIS_REPLY_ERROR)
        err = TN_EDENIED;
    if (err != TN_OK)
        tn_log_warn(NULL, "agent.cal_request_failed", TN_KV_ERR(err));
}

/* cal_request - XADD a cal.request for the change to tern:cal */
static void cal_request(struct bk_job *j)
{
    struct agent_ctx *ctx = j->ctx;
    json_t *d = tn_booking_cal_request_new(j->tenant, &j->change);
    const char *rid = json_string_value(json_object_get(d, "request_id"));
    char *data = agent_json_dump(d), dedupe[160], *trace = NULL;
    enum tn_err err = TN_EUNAVAIL;

    snprintf(dedupe, sizeof(dedupe), "cal:%s", rid != NULL ? rid : "");
    if (j->t != NULL && j->t->trace != NULL)
        trace = j->t->trace;
    if (ctx->rt->redis != NULL && rid != NULL) {
        const char *f[] = {TN_F_TYPE,    TN_TYPE_CAL_REQUEST,
                           TN_F_V,       TN_V_CAL_REQUEST,
                           TN_F_TENANT,  j->tenant,
                           TN_F_REQUEST, rid,
                           TN_F_DEDUPE,  dedupe,
                           TN_F_DATA,    data,
                           TN_F_TRACE,   trace};
        size_t nf = sizeof(f) / sizeof(f[0]) - (trace == NULL ? 2 : 0);

        err = tn_redis_xadd(ctx->rt->redis, TN_STREAM_CAL, f, NULL, nf, cal_cb, ctx);
    }
    if (err == TN_OK)
        ctx->publishes++;
    else
        tn_log_warn(&(struct tn_log_ctx){.tenant_id = j->tenant}, "agent.cal_request_failed",
                    TN_KV_ERR(err));
    tn_free(data);
    json_decref(d);
}

/* publish_outs - hand the new notice rows to tern:out (the scan republishes
 * whatever is left unpublished) */
static void publish_outs(struct bk_job *j)
{
    for (size_t i = 0; i < j->nouts; i++) {
        if (!j->ctx->closing) {
            tn_metric_inc(j->ctx->m_notices);
            if (j->t != NULL && j->t->trace != NULL)
                j->outs[i]->trace = tn_xstrdup(j->t->trace);
            agent_publish(j->ctx, j->outs[i]);
        } else {
            agent_out_free(j->outs[i]);
        }
        j->outs[i] = NULL;
    }
    j->nouts = 0;
}

/* tool_result - what goes back to the model (new) */
static json_t *tool_result(struct bk_job *j, enum tn_err err)
{
    json_t *r = j->result;

    j->result = NULL;
    if (r != NULL)
        return r;
    if (err == TN_ECANCELED)
        return json_pack("{s:s}", "error", "shutting down");
    return json_pack("{s:s,s:s}", "error", "unavailable", "message",
                     "the booking system is not reachable right now: apologise and offer that "
                     "a team member follows up");
}

/* bk_done - publish, tell calsync, and hand the result to the turn */
static void bk_done(enum tn_err err, void *arg)
{
    struct bk_job *j = arg;
    struct agent_ctx *ctx = j->ctx;
    struct tn_log_ctx lc = {.tenant_id = j->tenant};

    if (err == TN_OK && j->result == NULL && j->op != BK_NOTICES) {
        err = j->err; /* Postgres failed inside tn_booking */
        tn_log_warn(&lc, "agent.booking_failed", TN_KV_STR("tool", op_names[j->op]),
                    TN_KV_ERR(err));
    }
    if (j->notices_err != TN_OK)
        tn_log_warn(&lc, "agent.notices_failed", TN_KV_ERR(j->notices_err));
    if (err == TN_OK && j->change.op[0] != '\0' && !ctx->closing)
        cal_request(j);
    publish_outs(j);
    if (j->t == NULL)
        ctx->publishes--;
    else
        j->done(j->t, tool_result(j, err)); /* may end the turn */
    job_free(j);
    agent_maybe_free_pg(ctx);
}

/* submit - run the job, or answer at once when the pool refuses it */
static void submit(struct bk_job *j)
{
    if (agent_pg_submit(j->ctx, bk_work, bk_done, j) != TN_OK)
        bk_done(TN_ECANCELED, j);
}

/* run - a tool call of op for turn t (args borrowed) */
static void run(struct agent_turn *t, json_t *args, agent_tool_done_fn *done, enum bk_op op)
{
    struct bk_job *j = tn_xcalloc(1, sizeof(*j));

    j->ctx = t->ctx;
    j->t = t;
    j->done = done;
    j->op = op;
    j->args = json_incref(args);
    memcpy(j->tenant, t->tenant, sizeof(j->tenant));
    memcpy(j->contact, t->ld.contact, sizeof(j->contact));
    memcpy(j->conv, t->conv, sizeof(j->conv));
    tn_metric_inc(t->ctx->m_tools);
    t->state = TURN_TOOL;
    submit(j);
}

/* agent_booking_find_slots - free slots of a service */
void agent_booking_find_slots(struct agent_turn *t, json_t *args, agent_tool_done_fn *done)
{
    run(t, args, done, BK_FIND);
}

/* agent_booking_book - book a slot for the lead */
void agent_booking_book(struct agent_turn *t, json_t *args, agent_tool_done_fn *done)
{
    run(t, args, done, BK_BOOK);
}

/* agent_booking_reschedule - move one of the lead's bookings */
void agent_booking_reschedule(struct agent_turn *t, json_t *args, agent_tool_done_fn *done)
{
    run(t, args, done, BK_RESCHEDULE);
}

/* agent_booking_cancel - cancel one of the lead's bookings */
void agent_booking_cancel(struct agent_turn *t, json_t *args, agent_tool_done_fn *done)
{
    run(t, args, done, BK_CANCEL);
}

/* agent_booking_list - the lead's upcoming bookings */
void agent_booking_list(struct agent_turn *t, json_t *args, agent_tool_done_fn *done)
{
    run(t, args, done, BK_LIST);
}

/* agent_booking_renotify - the notices of one booking, from the scan */
void agent_booking_renotify(struct agent_ctx *ctx, const char *tenant, const char *booking)
{
    struct bk_job *j = tn_xcalloc(1, sizeof(*j));

    j->ctx = ctx;
    j->op = BK_NOTICES;
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    snprintf(j->booking, sizeof(j->booking), "%s", booking);
    ctx->publishes++; /* counted as outside work until bk_done */
    submit(j);
}
