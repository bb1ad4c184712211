/*
 * NAME
 *	sender_store - the send job's two database steps
 * SYNOPSIS
 *	tn_pg_submit(pg, sender_store_prepare, done, job);
 *	tn_pg_submit(pg, sender_store_record, done, job);
 * DESCRIPTION
 *	prepare locks the outbound row (FOR UPDATE, inside the tenant's
 *	transaction) and decides, in this order:
 *	  - a finished row (sent, delivered, read, failed, dead, canceled):
 *	    nothing to do, which is what makes a redelivery harmless;
 *	  - expired (expires_at passed): dead, reason "expired";
 *	  - 'sending' since less than the echo wait: another attempt is in
 *	    flight or its answer was lost; wait for the provider's status echo
 *	    (sender_status.c) before trying again;
 *	  - not yet due (not_before moved): later;
 *	  - consent at send time: contact opted out, erased or restricted, the
 *	    address suppressed, the channel disabled: failed with that reason,
 *	    nothing sent;
 *	  - the WhatsApp 24-hour window (whatsapp and twilio_whatsapp channels,
 *	    from the contact's last inbound message on that channel): closed,
 *	    a text message goes out as its template, or fails "window_closed"
 *	    when it has none; free text is never sent outside the window;
 *	then opens the channel's secrets, builds the provider request and
 *	records 'sending' (attempts + 1, sending_at) before anything is sent.
 *
 *	record writes the answer: sent with the provider message id; failed
 *	with the provider's code; back to queued for a retry (or left in
 *	'sending' when the answer was lost: a timeout may hide an accepted
 *	send); dead once the attempt limit is reached.
 * RUNS ON
 *	Runs on: threadpool (blocking libpq). Touches only the job, and the
 *	immutable configuration and key ring it points to.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "sender.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char sql_load[] =
    "SELECT o.state, o.kind, o.body, o.template::text, o.reply_to, o.reason, o.trace,"
    " o.source_entry_id, o.conversation_id::text, o.transport, " TS(
        "o.created_at") ","
                        " " TS("o.not_before") ", " TS(
                            "o.expires_at") ","
                                            " ch.kind, ch.external_address, ct.address, o.attempts,"
                                            " (extract(epoch FROM o.sending_at) * 1000)::bigint,"
                                            " (extract(epoch FROM o.not_before) * 1000)::bigint,"
                                            " o.expires_at IS NOT NULL AND o.expires_at < now(),"
                                            " CASE WHEN ct.opted_out_at IS NOT NULL THEN "
                                            "'opted_out'"
                                            "      WHEN ct.erased_at IS NOT NULL THEN 'erased'"
                                            "      WHEN ct.restricted_at IS NOT NULL THEN "
                                            "'restricted'"
                                            "      WHEN NOT ch.enabled THEN 'channel_disabled'"
                                            "      WHEN EXISTS (SELECT 1 FROM suppressions s WHERE "
                                            "s.tenant_id = o.tenant_id"
                                            "           AND s.address_hash = "
                                            "encode(sha256(convert_to(ct.address, 'UTF8')), 'hex'))"
                                            "      THEN 'suppressed' END,"
                                            " COALESCE((SELECT max(m.created_at) FROM messages m "
                                            "JOIN conversations cv"
                                            "     ON cv.tenant_id = m.tenant_id AND cv.id = "
                                            "m.conversation_id"
                                            "   WHERE cv.tenant_id = o.tenant_id AND cv.contact_id "
                                            "= o.contact_id"
                                            "     AND cv.channel_id = o.channel_id AND m.direction "
                                            "= 'in')"
                                            "   > now() - interval '24 hours', false),"
                                            " encode(ch.secrets_sealed, 'hex')"
                                            " FROM outbound_messages o"
                                            " JOIN channels ch ON ch.tenant_id = o.tenant_id AND "
                                            "ch.id = o.channel_id"
                                            " JOIN contacts ct ON ct.tenant_id = o.tenant_id AND "
                                            "ct.id = o.contact_id"
                                            " WHERE o.tenant_id = $1 AND o.id = $2 FOR UPDATE OF o";

enum {
    C_STATE,
    C_KIND,
    C_BODY,
    C_TEMPLATE,
    C_REPLY_TO,
    C_REASON,
    C_TRACE,
    C_SOURCE,
    C_CONV,
    C_TRANSPORT,
    C_CREATED,
    C_NOT_BEFORE,
    C_EXPIRES,
    C_CH_KIND,
    C_FROM,
    C_TO,
    C_ATTEMPTS,
    C_SENDING_MS,
    C_NOT_BEFORE_MS,
    C_EXPIRED,
    C_CONSENT,
    C_WINDOW,
    C_SECRETS,
};

static const char sql_sending[] =
    "UPDATE outbound_messages SET state = 'sending', attempts = attempts + 1,"
    " sending_at = now(), updated_at = now() WHERE tenant_id = $1 AND id = $2";

static const char sql_failed[] =
    "UPDATE outbound_messages SET state = $3, last_error_code = $4, last_error = $5,"
    " updated_at = now() WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'sending')";

static const char sql_sent[] =
    "UPDATE outbound_messages SET state = CASE WHEN state IN ('queued', 'sending', 'dead')"
    " THEN 'sent' ELSE state END, provider_message_id = COALESCE(provider_message_id, $3),"
    " sent_at = now(), last_error_code = NULL, last_error = NULL, updated_at = now()"
    " WHERE tenant_id = $1 AND id = $2";

static const char sql_retry[] =
    "UPDATE outbound_messages SET state = $3, last_error_code = $4, last_error = $5,"
    " updated_at = now() WHERE tenant_id = $1 AND id = $2 AND state = 'sending'";

/* dup - new copy of a column, NULL for SQL NULL */
static char *dup(const struct pg_result *res, int col)
{
    const char *v = tn_pg_result_value(res, 0, col);

    return v != NULL ? tn_xstrdup(v) : NULL;
}

/* sender_row_free - release a row's members */
void sender_row_free(struct sender_row *r)
{
    char **s[] = {&r->state,      &r->kind,         &r->text,         &r->reply_to,  &r->reason,
                  &r->trace,      &r->source_entry, &r->conversation, &r->transport, &r->created_at,
                  &r->not_before, &r->expires_at,   &r->channel_kind, &r->from,      &r->to};

    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        tn_free(*s[i]);
        *s[i] = NULL;
    }
    json_decref(r->template);
    r->template = NULL;
}

/* load_row - copy the row's fields into job->row */
static void load_row(struct sender_job *job, const struct pg_result *res)
{
    struct sender_row *r = &job->row;
    const char *tpl = tn_pg_result_value(res, 0, C_TEMPLATE);

    sender_row_free(r);
    r->state = dup(res, C_STATE);
    r->kind = dup(res, C_KIND);
    r->text = dup(res, C_BODY);
    r->reply_to = dup(res, C_REPLY_TO);
    r->reason = dup(res, C_REASON);
    r->trace = dup(res, C_TRACE);
    r->source_entry = dup(res, C_SOURCE);
    r->conversation = dup(res, C_CONV);
    r->transport = dup(res, C_TRANSPORT);
    r->created_at = dup(res, C_CREATED);
    r->not_before = dup(res, C_NOT_BEFORE);
    r->expires_at = dup(res, C_EXPIRES);
    r->channel_kind = dup(res, C_CH_KIND);
    r->from = dup(res, C_FROM);
    r->to = dup(res, C_TO);
    r->template = tpl != NULL ? json_loads(tpl, 0, NULL) : NULL;
    r->attempts = (int)strtol(tn_pg_result_value(res, 0, C_ATTEMPTS), NULL, 10);
}

/* col_ms - a bigint column, 0 for NULL */
static int64_t col_ms(const struct pg_result *res, int col)
{
    const char *v = tn_pg_result_value(res, 0, col);

    return v != NULL ? strtoll(v, NULL, 10) : 0;
}

/* set_code - job->code = s */
static void set_code(struct sender_job *job, const char *s)
{
    snprintf(job->code, sizeof(job->code), "%s", s);
}

/* open_secrets - the channel's secrets JSON, new, or NULL */
static json_t *open_secrets(const struct sender_job *job, const char *hex)
{
    unsigned char *sealed = NULL, *pt = NULL;
    size_t slen = 0, plen = 0;
    char aad[128];
    json_t *j = NULL;
    int n = snprintf(aad, sizeof(aad), "channel:%s:%s", job->tenant, job->channel);

    if (hex == NULL || job->ctx->keys == NULL)
        goto out;
    if (tn_hex_decode(hex, strlen(hex), &sealed, &slen) != TN_OK)
        goto out;
    if (tn_open(job->ctx->keys, aad, (size_t)n, sealed, slen, &pt, &plen) != TN_OK)
        goto out;
    j = json_loadb((const char *)pt, plen, 0, NULL);
out:
    if (pt != NULL)
        memset(pt, 0, plen);
    tn_free(pt);
    tn_free(sealed);
    return j;
}

/* choose - text or template: the WhatsApp window (open: *window). Returns
 * a failure code, or NULL with m->text / m->template set. */
static const char *choose(const struct sender_row *r, bool window, struct sender_msg *m)
{
    bool wa =
        strcmp(r->channel_kind, "whatsapp") == 0 || strcmp(r->channel_kind, "twilio_whatsapp") == 0;

    if (strcmp(r->kind, "template") == 0) {
        m->template = r->template;
        return r->template != NULL ? NULL : "template.missing";
    }
    if (strcmp(r->kind, "text") != 0)
        return "kind.unsupported"; /* XXX: interactive and media are not built yet */
    if (!wa || window) {
        m->text = r->text;
        return r->text != NULL ? NULL : "text.missing";
    }
    m->template = r->template;
    return r->template != NULL ? NULL : "window_closed";
}

/* build - open the secrets and build the request; a failure code or NULL */
static const char *build(struct sender_job *job, const struct pg_result *res)
{
    struct sender_msg m = {.outbound_id = job->id,
                           .channel_kind = job->row.channel_kind,
                           .from = job->row.from,
                           .to = job->row.to,
                           .reply_to = job->row.reply_to};
    const char *why = choose(&job->row, strcmp(tn_pg_result_value(res, 0, C_WINDOW), "t") == 0, &m);
    json_t *secrets = NULL;

    if (why != NULL)
        return why;
    secrets = open_secrets(job, tn_pg_result_value(res, 0, C_SECRETS));
    if (secrets == NULL)
        return "credentials.unreadable";
    m.secrets = secrets;
    if (job->prov->build(&job->ctx->cfg, &m, &job->req, &why) != TN_OK)
        why = why != NULL ? why : "request.invalid";
    json_decref(secrets); /* XXX: jansson does not wipe the freed strings */
    return why;
}

/* finished - is state an end state? */
static bool finished(const char *s)
{
    return strcmp(s, "queued") != 0 && strcmp(s, "sending") != 0;
}

/* mark - UPDATE to failed/dead with the job's code */
static enum tn_err mark(struct tn_pgconn *c, const struct sender_job *job, const char *state)
{
    return tn_pgconn_query(c, sql_failed, 5,
                           (const char *const[]){job->tenant, job->id, state, job->code, job->code},
                           NULL);
}

/* decide - the plan for a loaded row; may UPDATE */
static enum tn_err decide(struct tn_pgconn *c, struct sender_job *job, const struct pg_result *res)
{
    int64_t now = tn_now_ms();
    int64_t wait = job->prov != NULL && job->prov->has_echo ? job->ctx->cfg.echo_wait_ms
                                                            : 2 * job->ctx->cfg.http_timeout_ms;
    const char *consent = tn_pg_result_value(res, 0, C_CONSENT), *why;

    job->plan = SENDER_P_DONE;
    if (finished(job->row.state))
        return TN_OK;
    if (strcmp(tn_pg_result_value(res, 0, C_EXPIRED), "t") == 0) {
        set_code(job, "expired");
        job->plan = SENDER_P_DEAD;
        return mark(c, job, "dead");
    }
    if (strcmp(job->row.state, "sending") == 0 && col_ms(res, C_SENDING_MS) + wait > now) {
        job->plan = SENDER_P_LATER;
        job->later_ms = col_ms(res, C_SENDING_MS) + wait;
        return TN_OK;
    }
    if (col_ms(res, C_NOT_BEFORE_MS) > now + 50) {
        job->plan = SENDER_P_LATER;
        job->later_ms = col_ms(res, C_NOT_BEFORE_MS);
        return TN_OK;
    }
    why = consent != NULL ? consent : job->prov == NULL ? "channel.unsupported" : build(job, res);
    if (why != NULL) {
        set_code(job, why);
        return mark(c, job, "failed");
    }
    job->plan = SENDER_P_SEND;
    job->row.attempts++;
    return tn_pgconn_query(c, sql_sending, 2, (const char *const[]){job->tenant, job->id}, NULL);
}

/* sender_store_prepare - see the file header */
enum tn_err sender_store_prepare(struct tn_pgconn *c, void *arg)
{
    struct sender_job *job = arg;
    struct pg_result *res = NULL;
    enum tn_err err;

    err = tn_pgconn_begin_tenant(c, job->tenant);
    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, sql_load, 2, (const char *const[]){job->tenant, job->id}, &res);
    if (err != TN_OK)
        goto out;
    if (tn_pg_result_rows(res) != 1) {
        job->plan = SENDER_P_DONE; /* gone (erased): nothing to send */
        goto out;
    }
    load_row(job, res);
    job->prov = sender_provider_of(job->row.channel_kind);
    err = decide(c, job, res);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
out:
    if (err != TN_OK) {
        tn_pgconn_rollback(c);
        sender_req_free(&job->req);
    }
    tn_pg_result_free(res);
    return err;
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

/* record_retry - a refused or lost attempt: again later, or dead */
static enum tn_err record_retry(struct tn_pgconn *c, struct sender_job *job)
{
    set_code(job, job->res.code);
    if (job->row.attempts >= job->ctx->cfg.max_attempts) {
        job->plan = SENDER_P_DEAD;
        snprintf(job->code, sizeof(job->code), "attempts.exceeded:%.40s", job->res.code);
        return tn_pgconn_query(
            c, sql_failed, 5,
            (const char *const[]){job->tenant, job->id, "dead", job->res.code, job->code}, NULL);
    }
    job->plan = SENDER_P_LATER;
    job->later_ms = retry_due(job);
    /* a lost answer may hide an accepted send: stay 'sending' (echo wait) */
    return tn_pgconn_query(c, sql_retry, 5,
                           (const char *const[]){job->tenant, job->id,
                                                 job->res.ambiguous ? "sending" : "queued",
                                                 job->res.code, job->res.code},
                           NULL);
}

/* sender_store_record - see the file header */
enum tn_err sender_store_record(struct tn_pgconn *c, void *arg)
{
    struct sender_job *job = arg;
    enum tn_err err;

    err = tn_pgconn_begin_tenant(c, job->tenant);
    if (err != TN_OK)
        return err;
    job->plan = SENDER_P_DONE;
    switch (job->res.v) {
    case SENDER_V_OK:
        err = tn_pgconn_query(c, sql_sent, 3,
                              (const char *const[]){job->tenant, job->id, job->res.pmid}, NULL);
        break;
    case SENDER_V_FINAL:
        set_code(job, job->res.code);
        err = mark(c, job, "failed");
        break;
    default:
        err = record_retry(c, job);
        break;
    }
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    return err;
}
