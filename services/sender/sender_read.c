/*
 * NAME
 *	sender_read - mark a lead's inbound message read at the provider
 * SYNOPSIS
 *	sender_read_entry(c, e, ctx);	(from sender_out_entry)
 * DESCRIPTION
 *	An outbound.read entry of tern:out (proto/streams/outbound.read.v1.json,
 *	written by tern-agent when TN_AGENT_MARK_READ is on) names an inbound
 *	WhatsApp message by its wamid. The channel's row (enabled, kind, phone
 *	number id, sealed secrets) is read under the tenant on the threadpool,
 *	its secrets are opened there and the request is built by
 *	sender_whatsapp.c (sender_whatsapp_read_build: the base URL, version and
 *	Bearer token of every WhatsApp send); the POST goes through the daemon's
 *	tn_http on the loop. Nothing is written: a read marker has no
 *	outbound_messages row, no schedule member and no dead letter of its own.
 *
 *	Verdicts: 2xx ACK. 429, 5xx, a retryable Meta error code or no answer
 *	(network, timeout): RETRY, with the consumer's backoff; past its
 *	delivery limit the consumer dead-letters it ("read.retry:<code>").
 *	Any other refusal (a message too old to mark, a revoked token):
 *	logged as sender.read_failed and ACKed, not dead-lettered: a late read
 *	receipt is worth no operator's replay. A channel that is not an enabled
 *	WhatsApp channel of the tenant, or whose credentials do not open:
 *	logged and ACKed, no call. Another provider (Twilio, Telegram, email
 *	have no read marker here): ACKed, no call. A malformed entry: DEAD
 *	"schema.invalid".
 *
 *	Real messages first: a marker takes a token of the channel's WhatsApp
 *	bucket (TN_SENDER_RATE_WHATSAPP, the one sends use) only if one is free
 *	now, and never reserves one: without a token it is retried later. At
 *	most READ_INFLIGHT markers hold a tern:out handler slot at once; more
 *	are retried later, so markers cannot crowd out the entries of replies.
 * RUNS ON
 *	loop; the channel lookup on the threadpool (load_work).
 * DIAGNOSTICS
 *	sender.read_marked (debug), sender.read_failed, sender.read_skipped,
 *	sender.read_retry.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_consumer.h>
#include <tn/tn_http.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_secrets.h>
#include <tn/tn_time.h>

#include "sender.h"

#define READ_INFLIGHT 32 /* read markers in the handler at most (of tern:out's 256) */

static const char sql_channel[] =
    "SELECT kind, external_address, encode(secrets_sealed, 'hex') FROM channels"
    " WHERE tenant_id = $1 AND id = $2::uuid AND enabled";

/* One read marker, from the entry to its verdict. */
struct read_job {
    struct sender_ctx *ctx;
    struct tn_consumer *c;
    struct tn_entry *e;
    struct tn_log_ctx log;
    const char *tenant, *channel, *pmid; /* borrowed from the entry */
    const char *skip;                    /* load: static reason to ACK without a call */
    struct sender_req req;               /* load: the built request */
};

/* finish - the verdict; frees the job */
static void finish(struct read_job *job, enum tn_disp disp, const char *reason)
{
    struct sender_ctx *ctx = job->ctx;

    tn_consumer_done(job->c, job->e, disp, reason);
    sender_req_free(&job->req);
    tn_free(job);
    ctx->reads--;
    ctx->handlers--;
}

/* load_work - the channel's row, its opened secrets, the request.
 * Runs on: threadpool. Touches the job, ctx->cfg and ctx->keys only. */
static enum tn_err load_work(struct tn_pgconn *c, void *arg)
{
    struct read_job *job = arg;
    const char *p[2] = {job->tenant, job->channel};
    struct pg_result *res = NULL;
    json_t *secrets = NULL;
    const char *why = NULL;
    enum tn_err err = tn_pgconn_begin_tenant(c, job->tenant);

    if (err != TN_OK)
        goto out;
    err = tn_pgconn_query(c, sql_channel, 2, p, &res);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    if (err != TN_OK)
        goto out;
    if (tn_pg_result_rows(res) != 1) {
        job->skip = "channel.unknown";
        goto out;
    }
    if (strcmp(tn_pg_result_value(res, 0, 0), "whatsapp") != 0) {
        job->skip = "channel.not_whatsapp";
        goto out;
    }
    secrets =
        tn_secrets_open(job->ctx->keys, job->tenant, job->channel, tn_pg_result_value(res, 0, 2));
    if (secrets == NULL) {
        job->skip = "credentials.unreadable";
        goto out;
    }
    if (sender_whatsapp_read_build(&job->ctx->cfg, tn_pg_result_value(res, 0, 1), secrets,
                                   job->pmid, &job->req, &why) != TN_OK)
        job->skip = why != NULL ? why : "request.invalid";
out:
    json_decref(secrets); /* XXX: jansson does not wipe the freed strings */
    tn_pg_result_free(res);
    return err;
}

/* http_done_cb - the provider's answer: the verdict */
static void http_done_cb(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct read_job *job = arg;
    struct sender_result r;
    char reason[SENDER_ERR_CODE_MAX + 16];

    if (err == TN_OK && resp->status >= 200 && resp->status < 300) {
        tn_log_debug(&job->log, "sender.read_marked");
        finish(job, TN_DISP_ACK, NULL);
        return;
    }
    if (err == TN_OK)
        sender_whatsapp.parse(resp->status, resp->body, resp->body_len,
                              tn_http_response_header(resp, "Retry-After"), &r);
    else
        sender_transport_result(err, &r);
    if (r.v == SENDER_V_FINAL) {
        tn_log_warn(&job->log, "sender.read_failed", TN_KV_STR("code", r.code));
        finish(job, TN_DISP_ACK, NULL);
        return;
    }
    snprintf(reason, sizeof(reason), "read.retry:%s", r.code);
    tn_log_warn(&job->log, "sender.read_retry", TN_KV_STR("code", r.code),
                TN_KV_INT("delivery", job->e->deliveries));
    finish(job, TN_DISP_RETRY, reason);
}

/* load_done_cb - the request is built (or not): call, or ACK with the reason */
static void load_done_cb(enum tn_err err, void *arg)
{
    struct read_job *job = arg;
    struct sender_ctx *ctx = job->ctx;
    struct tn_http_request rq = sender_req_http(&job->req, ctx->cfg.http_timeout_ms, 64 * 1024);
    struct tn_http *h;

    if (err != TN_OK) {
        bool again = tn_err_retryable(err) || err == TN_ECANCELED;

        tn_log_warn(&job->log, again ? "sender.read_retry" : "sender.read_failed", TN_KV_ERR(err));
        finish(job, again ? TN_DISP_RETRY : TN_DISP_DEAD,
               again ? "store.unavailable" : "db.rejected");
        return;
    }
    if (job->skip != NULL) {
        tn_log_warn(&job->log, "sender.read_skipped", TN_KV_STR("reason", job->skip));
        finish(job, TN_DISP_ACK, NULL);
        return;
    }
    /* a free token of the channel's bucket now, or later: sends keep theirs */
    if (!sender_rate_try(ctx->rate, job->channel, (double)ctx->cfg.rate_whatsapp,
                         (double)ctx->cfg.rate_whatsapp, tn_now_ms())) {
        finish(job, TN_DISP_RETRY, "read.rate_limited");
        return;
    }
    h = sender_http(ctx);
    if (h == NULL || tn_http_send(h, &rq, http_done_cb, job) != TN_OK)
        finish(job, TN_DISP_RETRY, "read.retry:network");
}

/* sender_read_entry - one outbound.read entry */
void sender_read_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct sender_ctx *ctx = arg;
    struct read_job *job = tn_xcalloc(1, sizeof(*job));
    const char *v = tn_entry_field(e, TN_F_V, NULL);
    const char *provider = tn_entry_field(e, TN_F_PROVIDER, NULL);

    job->ctx = ctx;
    job->c = c;
    job->e = e;
    job->tenant = tn_entry_field(e, TN_F_TENANT, NULL);
    job->channel = tn_entry_field(e, TN_F_CHANNEL, NULL);
    job->pmid = tn_entry_field(e, TN_F_PMID, NULL);
    job->log = (struct tn_log_ctx){.entry_id = e->id, .stream = e->stream};
    ctx->handlers++;
    ctx->reads++;
    if (v == NULL || strcmp(v, TN_V_OUTBOUND_READ) != 0 || job->tenant == NULL ||
        !tn_uuid_valid(job->tenant) || job->channel == NULL || !tn_uuid_valid(job->channel) ||
        job->pmid == NULL || *job->pmid == '\0' || provider == NULL) {
        tn_log_warn(&job->log, "sender.entry_invalid");
        finish(job, TN_DISP_DEAD, "schema.invalid");
        return;
    }
    job->log.tenant_id = job->tenant;
    if (strcmp(provider, TN_PROVIDER_WHATSAPP) != 0) { /* no read marker: nothing to do */
        finish(job, TN_DISP_ACK, NULL);
        return;
    }
    if (ctx->reads > READ_INFLIGHT) {
        finish(job, TN_DISP_RETRY, "read.busy");
        return;
    }
    if (tn_pg_submit(ctx->pg, load_work, load_done_cb, job) != TN_OK)
        finish(job, TN_DISP_RETRY, "store.unavailable");
}
