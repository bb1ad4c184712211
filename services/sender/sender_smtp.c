/*
 * NAME
 *	sender_smtp - one email over SMTP: a blocking libcurl transfer on the threadpool
 * SYNOPSIS
 *	sender_smtp_send(ctx, job);   (from sender_send.c, for a request flagged smtp)
 * DESCRIPTION
 *	The shared tn_http client drives curl's multi interface on the loop,
 *	but only for http(s) URLs and request bodies given up front; an SMTP
 *	upload needs CURLOPT_MAIL_FROM, CURLOPT_MAIL_RCPT and a read callback,
 *	which tn_http does not offer (and common/ is not this service's to
 *	change). So an SMTP send is one curl easy transfer run by uv_queue_work:
 *	EHLO, STARTTLS when the server offers it (CURLUSESSL_TRY; the channel
 *	secret smtp_starttls=required makes it CURLUSESSL_ALL; smtps:// is TLS
 *	from the start), AUTH with the channel's login, MAIL FROM the mailbox,
 *	RCPT TO the lead, DATA the message. Protocols are limited to smtp and
 *	smtps: the URL comes from a tenant's secrets.
 *
 *	The threadpool is shared with tn_pg (TN_SENDER_PG_POOL connections,
 *	each query a work request): a slow SMTP server must not hold every
 *	thread, so at most TN_SENDER_SMTP_CONCURRENCY sends run at once and the
 *	others wait here in order. UV_THREADPOOL_SIZE (libuv's default 4)
 *	should exceed that plus the Postgres pool.
 *
 *	Answers: the transfer's result and the last SMTP reply code. Accepted:
 *	the provider id is our Message-ID. A 5xx reply is final ("smtp_550");
 *	a 4xx reply and network failures retry; a timeout is ambiguous (the
 *	server may have taken the message), handled like an HTTP timeout.
 * RUNS ON
 *	loop; transfer_work on the threadpool (touches only its job's request).
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_time.h>

#include "sender.h"

/* One SMTP send on the threadpool. */
struct transfer {
    uv_work_t w;
    struct sender_job *job;
    long timeout_ms;
    size_t off; /* read callback's position in the message */
    CURLcode rc;
    long code;
};

/* read_cb - libcurl's upload source: the next part of the message.
 * Runs on: threadpool. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    struct transfer *t = arg;
    const struct tn_buf *msg = &t->job->req.body;
    size_t n = size * nitems;

    if (n > msg->len - t->off)
        n = msg->len - t->off;
    memcpy(buf, msg->data + t->off, n);
    t->off += n;
    return n;
}

/* envelope - "<addr>" for MAIL FROM / RCPT TO; new */
static char *envelope(const char *addr)
{
    size_t n = strlen(addr) + 3;
    char *s = tn_xmalloc(n);

    snprintf(s, n, "<%s>", addr);
    return s;
}

/* transfer_work - the blocking transfer. Runs on: threadpool. */
static void transfer_work(uv_work_t *w)
{
    struct transfer *t = w->data;
    const struct sender_req *rq = &t->job->req;
    CURL *c = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    char *from = envelope(rq->mail_from), *to = envelope(rq->rcpt_to);

    t->rc = CURLE_FAILED_INIT;
    if (c == NULL)
        goto out;
    rcpt = curl_slist_append(NULL, to);
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     (long)(rq->smtp_tls_required ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    if (rq->userpwd != NULL)
        curl_easy_setopt(c, CURLOPT_USERPWD, rq->userpwd);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, t);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body.len);
    t->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t->code);
out:
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    tn_free(from);
    tn_free(to);
}

/* sender_smtp_result - see sender.h */
void sender_smtp_result(int curl_rc, long smtp_code, const char *msgid, struct sender_result *out)
{
    memset(out, 0, sizeof(*out));
    if (curl_rc == CURLE_OK) {
        out->v = SENDER_V_OK;
        snprintf(out->pmid, sizeof(out->pmid), "%s", msgid);
        return;
    }
    if (smtp_code >= 400 && smtp_code < 600) {
        out->v = smtp_code >= 500 ? SENDER_V_FINAL : SENDER_V_RETRY;
        snprintf(out->code, sizeof(out->code), "smtp_%ld", smtp_code);
        return;
    }
    if (curl_rc == CURLE_URL_MALFORMAT || curl_rc == CURLE_UNSUPPORTED_PROTOCOL) {
        out->v = SENDER_V_FINAL;
        snprintf(out->code, sizeof(out->code), "smtp.url_invalid");
        return;
    }
    if (curl_rc == CURLE_USE_SSL_FAILED) {
        out->v = SENDER_V_FINAL; /* STARTTLS required and not offered: will not change */
        snprintf(out->code, sizeof(out->code), "smtp.starttls_unavailable");
        return;
    }
    sender_transport_result(curl_rc == CURLE_OPERATION_TIMEDOUT ? TN_ETIMEDOUT : TN_EUNAVAIL, out);
}

static void start(struct sender_ctx *ctx, struct sender_job *job);

/* answered - the job's result is set: on to the record step */
static void answered(struct sender_job *job)
{
    tn_metric_observe(job->ctx->m.send_seconds, (double)(tn_mono_ms() - job->t0_ms) / 1000.0);
    sender_req_free(&job->req);
    sender_queue_push(job->ctx, &job->ctx->record, job);
}

/* transfer_done_cb - the transfer is over; start the next waiting one */
static void transfer_done_cb(uv_work_t *w, int status)
{
    struct transfer *t = w->data;
    struct sender_ctx *ctx = t->job->ctx;
    struct sender_job *next = ctx->smtp.head;

    if (status != 0) /* UV_ECANCELED: never ran */
        sender_transport_result(TN_EUNAVAIL, &t->job->res);
    else
        sender_smtp_result((int)t->rc, t->code, t->job->req.message_id, &t->job->res);
    ctx->smtp.inflight--;
    answered(t->job);
    tn_free(t);
    if (next != NULL) { /* draining too: these rows are already 'sending' */
        ctx->smtp.head = next->smtp_next;
        if (ctx->smtp.head == NULL)
            ctx->smtp.tail = NULL;
        next->smtp_next = NULL;
        start(ctx, next);
    }
}

/* start - put job on the threadpool */
static void start(struct sender_ctx *ctx, struct sender_job *job)
{
    struct transfer *t = tn_xcalloc(1, sizeof(*t));

    t->job = job;
    t->w.data = t;
    t->timeout_ms = (long)ctx->cfg.http_timeout_ms;
    job->t0_ms = tn_mono_ms();
    ctx->smtp.inflight++;
    if (uv_queue_work(ctx->loop, &t->w, transfer_work, transfer_done_cb) != 0) {
        ctx->smtp.inflight--;
        sender_transport_result(TN_EUNAVAIL, &job->res);
        answered(job);
        tn_free(t);
    }
}

/* sender_smtp_send - see sender.h */
void sender_smtp_send(struct sender_ctx *ctx, struct sender_job *job)
{
    if (ctx->smtp.inflight < (size_t)ctx->cfg.smtp_concurrency) {
        start(ctx, job);
        return;
    }
    job->smtp_next = NULL;
    if (ctx->smtp.tail != NULL)
        ctx->smtp.tail->smtp_next = job;
    else
        ctx->smtp.head = job;
    ctx->smtp.tail = job;
}

/* sender_smtp_stop - end the waiting sends (nothing was sent: a retry) */
void sender_smtp_stop(struct sender_ctx *ctx)
{
    struct sender_job *job = ctx->smtp.head;

    ctx->smtp.head = ctx->smtp.tail = NULL;
    while (job != NULL) {
        struct sender_job *next = job->smtp_next;

        sender_transport_result(TN_EUNAVAIL, &job->res);
        job->t0_ms = tn_mono_ms();
        answered(job);
        job = next;
    }
}
