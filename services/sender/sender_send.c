/*
 * NAME
 *	sender_send - one claimed message, from the schedule to the provider
 * SYNOPSIS
 *	sender_send_start(ctx, tenant, member);
 * DESCRIPTION
 *	A member "<outbound>:<channel>:<contact>:<provider>" claimed from the
 *	schedule (sender_sched.c) first takes a token from its sending
 *	identity's bucket (the channel; a Telegram chat as well); without one
 *	it reserves the next one, holds it (sender_rate_hold) and goes back on
 *	the schedule for that time, and at that claim spends the held token
 *	instead of taking another (sender_rate_redeem). Then:
 *	  prepare (sender_store.c, batched with the other jobs of the loop
 *	    iteration: sender_batch.c): state, consent, window, credentials,
 *	    request, 'sending' recorded;
 *	  the provider call (tn_http on the loop; SMTP: sender_smtp.c); a
 *	    Gmail token known expired, or answered 401, is refreshed first and
 *	    the same job calls again (sender_gmail.c);
 *	  record (sender_record.c, batched): sent / failed / retry / dead;
 *	  the schedule: removed when done, re-scored for a retry, and the
 *	    message written to tern:out:dead when it died.
 *	A database failure leaves the member claimed: it comes back after its
 *	lease, and the row's state decides again.
 *
 *	A fresh tern:out entry may skip the schedule's claim and the prepare
 *	step: sender_send_reserve gives intake a job (slot and rate token)
 *	that sender_out.c decides and records in its INSERT, then hands back
 *	with sender_send_go. While intake finds no free slot (its entries then
 *	wait for one, sender_out_ready), claims keep to half of the slots
 *	(sender_sched.c), so neither path starves the other.
 * RUNS ON
 *	loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_http.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "sender.h"

/* job_end - release the job */
static void job_end(struct sender_job *job)
{
    struct sender_ctx *ctx = job->ctx;

    sender_row_free(&job->row);
    sender_req_free(&job->req);
    if (job->claimed)
        ctx->claimed--;
    tn_free(job);
    ctx->jobs--;
    sender_sched_kick(ctx);
}

/* finish - act on job->plan after a database step */
static void finish(struct sender_job *job)
{
    struct sender_ctx *ctx = job->ctx;

    switch (job->plan) {
    case SENDER_P_LATER:
        if (sender_sched_add(ctx, job->tenant, job->member, job->later_ms, false, NULL, NULL) !=
            TN_OK)
            tn_log_warn(&job->log, "sender.reschedule_failed", TN_KV_ERR(TN_EUNAVAIL));
        break;
    case SENDER_P_DEAD:
        tn_metric_inc(ctx->m.dead);
        tn_log_warn(&job->log, "sender.dead", TN_KV_STR("outbound", job->id),
                    TN_KV_STR("reason", job->code), TN_KV_INT("attempts", job->row.attempts));
        sender_dead_letter(job);
        break;
    default:
        sender_sched_done(ctx, job->tenant, job->member);
        break;
    }
    job_end(job);
}

/* record_done_cb - the answer is recorded */
static void record_done_cb(enum tn_err err, void *arg)
{
    struct sender_job *job = arg;

    if (err != TN_OK) {
        tn_log_error(&job->log, "sender.record_failed", TN_KV_STR("outbound", job->id),
                     TN_KV_ERR(err));
        job_end(job); /* the lease brings it back; 'sending' then waits for the echo */
        return;
    }
    if (job->res.v == SENDER_V_OK) {
        tn_metric_inc(job->ctx->m.sent);
        tn_log_info(&job->log, "sender.sent", TN_KV_STR("outbound", job->id),
                    TN_KV_STR("provider", job->prov->name),
                    TN_KV_INT("attempt", job->row.attempts));
    } else if (job->res.v == SENDER_V_FINAL) {
        tn_metric_inc(job->ctx->m.failed);
        tn_log_warn(&job->log, "sender.failed", TN_KV_STR("outbound", job->id),
                    TN_KV_STR("provider", job->prov->name), TN_KV_STR("code", job->code));
    } else if (job->plan == SENDER_P_LATER) {
        tn_metric_inc(job->ctx->m.retried);
        tn_log_warn(&job->log, "sender.retry", TN_KV_STR("outbound", job->id),
                    TN_KV_STR("code", job->res.code), TN_KV_INT("attempt", job->row.attempts),
                    TN_KV_INT("in_ms", job->later_ms - tn_now_ms()));
    }
    finish(job);
}

static void call(struct sender_job *job);

/* token_cb - the Gmail token is settled (sender_gmail.c): send again with
 * the fresh one, or record job->res */
static void token_cb(struct sender_job *job, bool ok)
{
    if (ok) {
        call(job);
        return;
    }
    sender_req_free(&job->req);
    sender_queue_push(job->ctx, &job->ctx->record, job);
}

/* http_done_cb - the provider answered (or not): queue the record step */
static void http_done_cb(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct sender_job *job = arg;

    /* a 401 is no acceptance: with a fresh token the same job sends again */
    if (err == TN_OK && resp->status == 401 && sender_gmail_token(job, true, token_cb))
        return;
    if (err == TN_OK)
        job->prov->parse(resp->status, resp->body, resp->body_len,
                         tn_http_response_header(resp, "Retry-After"), &job->res);
    else
        sender_transport_result(err, &job->res);
    tn_metric_observe(job->ctx->m.send_seconds, (double)(tn_mono_ms() - job->t0_ms) / 1000.0);
    sender_req_free(&job->req);
    sender_queue_push(job->ctx, &job->ctx->record, job);
}

/* call - send the built request */
static void call(struct sender_job *job)
{
    struct tn_http_request rq =
        sender_req_http(&job->req, job->ctx->cfg.http_timeout_ms, 256 * 1024);
    struct tn_http *h;

    if (job->req.smtp) { /* not HTTP: a curl easy transfer on the threadpool */
        sender_smtp_send(job->ctx, job);
        return;
    }
    if (sender_gmail_token(job, false, token_cb)) /* known expired: refresh first */
        return;
    job->t0_ms = tn_mono_ms();
    h = sender_http(job->ctx);
    if (h == NULL || tn_http_send(h, &rq, http_done_cb, job) != TN_OK) {
        sender_transport_result(TN_EUNAVAIL, &job->res);
        sender_req_free(&job->req);
        sender_queue_push(job->ctx, &job->ctx->record, job);
    }
}

/* prepare_done_cb - the row is decided */
static void prepare_done_cb(enum tn_err err, void *arg)
{
    struct sender_job *job = arg;

    if (err == TN_ECONFLICT) { /* claimed twice in one batch: the other job has it */
        job_end(job);
        return;
    }
    if (err != TN_OK) {
        tn_log_error(&job->log, "sender.prepare_failed", TN_KV_STR("outbound", job->id),
                     TN_KV_ERR(err));
        job_end(job);
        return;
    }
    if (job->plan == SENDER_P_SEND) {
        call(job);
        return;
    }
    if (job->plan == SENDER_P_DONE && job->code[0] != '\0') {
        tn_metric_inc(job->ctx->m.failed);
        tn_log_warn(&job->log, "sender.not_sent", TN_KV_STR("outbound", job->id),
                    TN_KV_STR("reason", job->code));
    }
    finish(job);
}

/* sender_send_prepared - the prepare queue's batch is done */
void sender_send_prepared(struct sender_batch *b, enum tn_err err)
{
    for (size_t i = 0; i < b->n; i++) {
        struct sender_job *job = b->items[i];

        prepare_done_cb(err != TN_OK ? err : job->err, job);
    }
}

/* sender_send_recorded - the record queue's batch is done */
void sender_send_recorded(struct sender_batch *b, enum tn_err err)
{
    for (size_t i = 0; i < b->n; i++) {
        struct sender_job *job = b->items[i];

        record_done_cb(err != TN_OK ? err : job->err, job);
    }
}

/* parse_member - split the member into the job's ids; false if malformed */
static bool parse_member(struct sender_job *job, const char *member, const char **provider)
{
    char *p[4] = {job->id, job->channel, job->contact, NULL};
    const char *s = member;

    if (strlen(member) >= sizeof(job->member))
        return false;
    for (int i = 0; i < 3; i++) {
        const char *colon = strchr(s, ':');

        if (colon == NULL || colon - s != SENDER_UUID_LEN)
            return false;
        memcpy(p[i], s, SENDER_UUID_LEN);
        p[i][SENDER_UUID_LEN] = '\0';
        s = colon + 1;
    }
    *provider = s;
    snprintf(job->member, sizeof(job->member), "%s", member);
    return true;
}

/* rate_wait - take the identity's tokens; the ms to wait, 0 when taken */
static int64_t rate_wait(struct sender_ctx *ctx, const struct sender_job *job, const char *prov)
{
    const struct sender_cfg *cfg = &ctx->cfg;
    int64_t now = tn_now_ms(), w, wc;
    double per = (double)(strcmp(prov, "whatsapp") == 0   ? cfg->rate_whatsapp
                          : strcmp(prov, "twilio") == 0   ? cfg->rate_twilio
                          : strcmp(prov, "telegram") == 0 ? cfg->rate_telegram
                                                          : 0);
    char key[96];

    w = sender_rate_take(ctx->rate, job->channel, per, per, now);
    if (strcmp(prov, "telegram") == 0) {
        /* both buckets: the held reservation stands for both tokens */
        snprintf(key, sizeof(key), "%s:%s", job->channel, job->contact);
        wc = sender_rate_take(ctx->rate, key, (double)cfg->rate_telegram_chat,
                              (double)cfg->rate_telegram_chat * 3, now);
        w = wc > w ? wc : w;
    }
    return w;
}

/* sender_send_start - run one claimed member */
void sender_send_start(struct sender_ctx *ctx, const char *tenant, const char *member)
{
    struct sender_job *job = tn_xcalloc(1, sizeof(*job));
    const char *prov = NULL;
    int64_t wait, now;
    bool held;

    job->ctx = ctx;
    ctx->jobs++;
    job->claimed = true;
    ctx->claimed++;
    if (!tn_uuid_valid(tenant) || !parse_member(job, member, &prov)) {
        tn_log_error(NULL, "sender.member_invalid", TN_KV_INT("len", (long long)strlen(member)));
        snprintf(job->tenant, sizeof(job->tenant), "%.36s", tenant);
        sender_sched_done(ctx, tenant, member);
        job_end(job);
        return;
    }
    snprintf(job->tenant, sizeof(job->tenant), "%s", tenant);
    job->log = (struct tn_log_ctx){.tenant_id = job->tenant, .stream = "tern:sched"};
    /* back for the token reserved when it was held back: spend that one
     * (at its time; a member back early waits for it again) */
    now = tn_now_ms();
    wait = sender_rate_redeem(ctx->rate, member, now);
    held = wait >= 0;
    if (!held)
        wait = rate_wait(ctx, job, prov);
    if (wait > 0) {
        tn_metric_inc(ctx->m.rate_limited);
        job->plan = SENDER_P_LATER;
        job->later_ms = now + wait;
        if (!held)
            sender_rate_hold(ctx->rate, member, job->later_ms, now);
        finish(job);
        return;
    }
    sender_queue_push(ctx, &ctx->prepare, job);
}

/* sender_send_reserve - a job slot and a rate token for a send at intake */
struct sender_job *sender_send_reserve(struct sender_ctx *ctx, const char *tenant,
                                       const char *channel, const char *provider, bool *no_slot)
{
    const struct sender_cfg *cfg = &ctx->cfg;
    struct sender_job *job;
    double per;

    *no_slot = false;
    if (ctx->draining || provider == NULL)
        return NULL;
    /* Telegram's per-chat bucket needs the contact, email goes to SMTP's
     * own queue: both take the schedule */
    if (strcmp(provider, "whatsapp") == 0)
        per = (double)cfg->rate_whatsapp;
    else if (strcmp(provider, "twilio") == 0)
        per = (double)cfg->rate_twilio;
    else
        return NULL;
    if (ctx->jobs >= (size_t)cfg->concurrency) {
        ctx->intake_starved_ms = tn_now_ms(); /* claims leave it half (sender_sched.c) */
        *no_slot = true;
        return NULL;
    }
    if (!sender_rate_try(ctx->rate, channel, per, per, tn_now_ms()))
        return NULL;
    job = tn_xcalloc(1, sizeof(*job));
    job->ctx = ctx;
    snprintf(job->tenant, sizeof(job->tenant), "%s", tenant);
    snprintf(job->channel, sizeof(job->channel), "%s", channel);
    job->log = (struct tn_log_ctx){.tenant_id = job->tenant, .stream = "tern:out"};
    ctx->jobs++;
    return job;
}

/* sender_send_release - a reserved job that was not decided at intake */
void sender_send_release(struct sender_job *job)
{
    job_end(job);
}

/* sender_send_go - carry on with a job decided and recorded at intake */
void sender_send_go(struct sender_job *job)
{
    prepare_done_cb(TN_OK, job);
}
