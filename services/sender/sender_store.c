/*
 * NAME
 *	sender_store - the send job's prepare step, batched
 * SYNOPSIS
 *	sender_queue_push(ctx, &ctx->prepare, job);   (sender_batch.c)
 * DESCRIPTION
 *	prepare runs for a batch of jobs, one transaction per tenant: it locks
 *	their outbound rows (one SELECT ... = ANY($2) FOR UPDATE, in id
 *	order) and decides for each, in this order:
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
 *	then opens the channel's secrets (once per channel and batch), builds
 *	the provider request and records 'sending' (attempts + 1, sending_at)
 *	before anything is sent: one UPDATE ... FROM unnest() for the rows to
 *	send, one for the rows failed or dead. The record step is
 *	sender_record.c.
 *
 *	sender_store_decide_fresh makes the same decision for tern:out entries
 *	not stored yet (sender_out.c, sent at intake), from sender_sql_fresh:
 *	the same facts and columns, computed from the entry instead of a row.
 * RUNS ON
 *	Runs on: threadpool (blocking libpq). Touches only the job, and the
 *	immutable configuration and key ring it points to.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_secrets.h>
#include <tn/tn_time.h>

#include "sender.h"

/* The facts a decision needs, over the aliases ch (the channel) and ct (the
 * contact); $3 is the suppression key. sql_load (a stored row) and
 * sender_sql_fresh (an entry not yet stored) share them and their columns. */

/* consent at send time: NULL when the message may go out */
#define CONSENT                                                                                    \
    " CASE WHEN ct.opted_out_at IS NOT NULL THEN 'opted_out'"                                      \
    " WHEN ct.erased_at IS NOT NULL THEN 'erased'"                                                 \
    " WHEN ct.restricted_at IS NOT NULL THEN 'restricted'"                                         \
    " WHEN NOT ch.enabled THEN 'channel_disabled'"                                                 \
    " WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_id = ch.tenant_id"                  \
    " AND s.address_hash = encode(hmac(convert_to(ct.address, 'UTF8'), convert_to($3, 'UTF8'),"    \
    " 'sha256'), 'hex')) THEN 'suppressed' END"

/* the WhatsApp window: the contact's last inbound message on the channel */
#define WINDOW                                                                                     \
    " COALESCE((SELECT max(m.created_at) FROM messages m JOIN conversations cv"                    \
    " ON cv.tenant_id = m.tenant_id AND cv.id = m.conversation_id"                                 \
    " WHERE cv.tenant_id = ch.tenant_id AND cv.contact_id = ct.id AND cv.channel_id = ch.id"       \
    " AND m.direction = 'in') > now() - interval '24 hours', false)"

/* email channels: the lead's last inbound email, as JSON (sender_email.c);
 * a CASE, so other channels never run the subquery */
#define LAST_EMAIL                                                                                 \
    " CASE WHEN ch.kind = 'email' THEN (SELECT json_build_object('message_id',"                    \
    " m.provider_message_id, 'subject', m.raw ->> 'subject', 'references',"                        \
    " m.raw ->> 'references', 'thread_id', m.raw ->> 'thread_id')::text FROM messages m"           \
    " JOIN conversations cv ON cv.tenant_id = m.tenant_id AND cv.id = m.conversation_id"           \
    " WHERE cv.tenant_id = ch.tenant_id AND cv.contact_id = ct.id"                                 \
    " AND cv.channel_id = ch.id AND m.direction = 'in'"                                            \
    " ORDER BY m.created_at DESC LIMIT 1) END"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* now() formatted once per statement: a scalar subquery is an InitPlan, where
 * the bare expression would be formatted again for every row */
#define NOW_TS "(SELECT " TS("now()") ")"

/* SQL text laid out by clause, not by the formatter */
/* clang-format off */
static const char sql_load[] =
    "SELECT o.state, o.kind, o.body, o.template::text, o.reply_to, o.reason, o.trace,"
    " o.source_entry_id, o.conversation_id::text, o.transport, " TS("o.created_at") ","
    " " TS("o.not_before") ", " TS("o.expires_at") ", ch.kind, ch.external_address, ct.address,"
    " o.attempts, (extract(epoch FROM o.sending_at) * 1000)::bigint,"
    " (extract(epoch FROM o.not_before) * 1000)::bigint,"
    " o.expires_at IS NOT NULL AND o.expires_at < now(),"
    CONSENT "," WINDOW ", encode(ch.secrets_sealed, 'hex'), o.id::text," LAST_EMAIL
    " FROM outbound_messages o"
    " JOIN channels ch ON ch.tenant_id = o.tenant_id AND ch.id = o.channel_id"
    " JOIN contacts ct ON ct.tenant_id = o.tenant_id AND ct.id = o.contact_id"
    " WHERE o.tenant_id = $1 AND o.id = ANY($2::uuid[])"
    " ORDER BY o.id FOR UPDATE OF o";

/* sql_load's columns for entries not stored yet (a row as the INSERT would
 * make it, due now), then the entry's index, the contact and channel ids.
 * What the entry itself says (kind, body, template, reply_to, reason,
 * trace, source entry, conversation, transport) is not sent through the
 * database and back: those columns are NULL here, and
 * sender_store_decide_fresh takes them from the entry (struct
 * sender_fresh). $1 tenant, $2 the indexes, $3 the suppression key, then
 * the entries' ids, contact ids, channel ids, expiry times and addresses. */
const char sender_sql_fresh[] =
    "SELECT 'queued', NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,"
    " NULL::text, NULL::text, NULL::text, " NOW_TS ", " NOW_TS ", " TS("u.exp") ","
    " ch.kind, ch.external_address, ct.address, 0, NULL::bigint,"
    " (SELECT (extract(epoch FROM now()) * 1000)::bigint), u.exp IS NOT NULL AND u.exp < now(),"
    CONSENT "," WINDOW ", encode(ch.secrets_sealed, 'hex'),"
    " COALESCE(u.id, gen_random_uuid())::text," LAST_EMAIL ", u.i, ct.id::text, ch.id::text"
    " FROM unnest($2::int[], $4::uuid[], $5::uuid[], $6::uuid[], $7::timestamptz[], $8::text[])"
    " AS u(i, id, contact, channel, exp, addr)"
    " JOIN channels ch ON ch.tenant_id = $1 AND ch.id = u.channel"
    SENDER_SQL_CONTACT;
/* clang-format on */

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
    C_ID,
    C_LAST_EMAIL,
    C_FRESH_INDEX, /* sender_sql_fresh only: the entry's index, contact, channel */
    C_FRESH_CONTACT,
    C_FRESH_CHANNEL,
};

static const char sql_sending[] =
    "UPDATE outbound_messages o SET state = 'sending', attempts = o.attempts + 1,"
    " sending_at = now(), updated_at = now() FROM unnest($2::uuid[]) AS u(id)"
    " WHERE o.tenant_id = $1 AND o.id = u.id";

static const char sql_mark[] =
    "UPDATE outbound_messages o SET state = u.st, last_error_code = u.code, last_error = u.code,"
    " updated_at = now() FROM unnest($2::uuid[], $3::text[], $4::text[]) AS u(id, st, code)"
    " WHERE o.tenant_id = $1 AND o.id = u.id AND o.state IN ('queued', 'sending')";

/* A prepare group: the jobs of one tenant and what they share. */
struct group {
    struct sender_job **jobs;
    size_t n;
    const struct pg_result *res;
    struct {
        const char *channel; /* borrowed from a job */
        json_t *secrets;     /* new */
    } keys[8];
    size_t nkeys;
};

/* dup - new copy of a column, NULL for SQL NULL */
static char *dup(const struct pg_result *res, int row, int col)
{
    const char *v = tn_pg_result_value(res, row, col);

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
    json_decref(r->last_in);
    r->last_in = NULL;
}

/* load_row - copy result row `row` into job->row */
static void load_row(struct sender_job *job, const struct pg_result *res, int row)
{
    struct sender_row *r = &job->row;
    const char *tpl = tn_pg_result_value(res, row, C_TEMPLATE);

    sender_row_free(r);
    r->state = dup(res, row, C_STATE);
    r->kind = dup(res, row, C_KIND);
    r->text = dup(res, row, C_BODY);
    r->reply_to = dup(res, row, C_REPLY_TO);
    r->reason = dup(res, row, C_REASON);
    r->trace = dup(res, row, C_TRACE);
    r->source_entry = dup(res, row, C_SOURCE);
    r->conversation = dup(res, row, C_CONV);
    r->transport = dup(res, row, C_TRANSPORT);
    r->created_at = dup(res, row, C_CREATED);
    r->not_before = dup(res, row, C_NOT_BEFORE);
    r->expires_at = dup(res, row, C_EXPIRES);
    r->channel_kind = dup(res, row, C_CH_KIND);
    r->from = dup(res, row, C_FROM);
    r->to = dup(res, row, C_TO);
    r->template = tpl != NULL ? json_loads(tpl, 0, NULL) : NULL;
    tpl = tn_pg_result_value(res, row, C_LAST_EMAIL);
    r->last_in = tpl != NULL ? json_loads(tpl, 0, NULL) : NULL;
    r->attempts = (int)strtol(tn_pg_result_value(res, row, C_ATTEMPTS), NULL, 10);
}

/* xdup - new copy of s, NULL for NULL */
static char *xdup(const char *s)
{
    return s != NULL ? tn_xstrdup(s) : NULL;
}

/* load_fresh - load_row for a sender_sql_fresh row: the facts from the
 * result, what the entry says from f */
static void load_fresh(struct sender_job *job, const struct pg_result *res, int row,
                       const struct sender_fresh *f)
{
    struct sender_row *r = &job->row;

    load_row(job, res, row);
    r->kind = xdup(f->kind);
    r->text = xdup(f->text);
    r->reply_to = xdup(f->reply_to);
    r->reason = xdup(f->reason);
    r->trace = xdup(f->trace);
    r->source_entry = xdup(f->source_entry);
    r->conversation = xdup(f->conversation);
    for (char *c = r->conversation; c != NULL && *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c); /* as Postgres prints a uuid */
    r->transport = xdup(f->transport);
    r->template = f->template_text != NULL ? json_loads(f->template_text, 0, NULL) : NULL;
}

/* col_ms - a bigint column, 0 for NULL */
static int64_t col_ms(const struct pg_result *res, int row, int col)
{
    const char *v = tn_pg_result_value(res, row, col);

    return v != NULL ? strtoll(v, NULL, 10) : 0;
}

/* set_code - job->code = s */
static void set_code(struct sender_job *job, const char *s)
{
    snprintf(job->code, sizeof(job->code), "%s", s);
}

/* choose - text or template: the WhatsApp window (open: *window). Returns
 * a failure code, or NULL with m->text / m->template set. */
static const char *choose(const struct sender_row *r, bool window, struct sender_msg *m)
{
    const json_t *tpl = r->template;
    bool wa =
        strcmp(r->channel_kind, "whatsapp") == 0 || strcmp(r->channel_kind, "twilio_whatsapp") == 0;

    if (strcmp(r->channel_kind, "email") == 0) { /* the template column holds its subject */
        m->subject = json_string_value(json_object_get(r->template, "subject"));
        m->last_in = r->last_in;
        if (strcmp(r->kind, "text") != 0)
            return strcmp(r->kind, "template") == 0 ? "email.no_templates" : "kind.unsupported";
        m->text = r->text;
        return r->text != NULL ? NULL : "text.missing";
    }
    if (json_object_size(r->template) == 1 && json_object_get(r->template, "subject") != NULL)
        tpl = NULL; /* only an email subject in the column: no template */
    if (strcmp(r->kind, "template") == 0) {
        m->template = tpl;
        return tpl != NULL ? NULL : "template.missing";
    }
    if (strcmp(r->kind, "text") != 0)
        return "kind.unsupported"; /* XXX: interactive and media are not built yet */
    if (!wa || window) {
        m->text = r->text;
        return r->text != NULL ? NULL : "text.missing";
    }
    m->template = tpl;
    return tpl != NULL ? NULL : "window_closed";
}

/* secrets_of - the job's channel secrets, opened once per group (borrowed) */
static const json_t *secrets_of(struct group *g, const struct sender_job *job, int row)
{
    json_t *j;

    for (size_t i = 0; i < g->nkeys; i++) {
        if (strcmp(g->keys[i].channel, job->channel) == 0)
            return g->keys[i].secrets;
    }
    j = tn_secrets_open(job->ctx->keys, job->tenant, job->channel,
                        tn_pg_result_value(g->res, row, C_SECRETS));
    if (j != NULL && g->nkeys < sizeof(g->keys) / sizeof(g->keys[0])) {
        g->keys[g->nkeys].channel = job->channel;
        g->keys[g->nkeys++].secrets = j;
    } else if (j != NULL) {
        tn_secrets_free(g->keys[0].secrets); /* more channels than slots: reuse the first */
        g->keys[0].channel = job->channel;
        g->keys[0].secrets = j;
    }
    return j;
}

/* build - open the secrets and build the request; a failure code or NULL */
static const char *build(struct group *g, struct sender_job *job, int row)
{
    struct sender_msg m = {.outbound_id = job->id,
                           .channel_kind = job->row.channel_kind,
                           .from = job->row.from,
                           .to = job->row.to,
                           .reply_to = job->row.reply_to};
    const char *why =
        choose(&job->row, strcmp(tn_pg_result_value(g->res, row, C_WINDOW), "t") == 0, &m);

    if (why != NULL)
        return why;
    m.secrets = secrets_of(g, job, row);
    if (m.secrets == NULL)
        return "credentials.unreadable";
    if (job->prov->build(&job->ctx->cfg, &m, &job->req, &why) != TN_OK)
        why = why != NULL ? why : "request.invalid";
    return why;
}

/* finished - is state an end state? */
static bool finished(const char *s)
{
    return strcmp(s, "queued") != 0 && strcmp(s, "sending") != 0;
}

/* decide - the plan for a loaded row; job->mark says what to record */
static void decide(struct group *g, struct sender_job *job, int row)
{
    const struct pg_result *res = g->res;
    int64_t now = tn_now_ms();
    int64_t wait = job->prov != NULL && job->prov->has_echo ? job->ctx->cfg.echo_wait_ms
                                                            : 2 * job->ctx->cfg.http_timeout_ms;
    const char *consent = tn_pg_result_value(res, row, C_CONSENT), *why;

    job->plan = SENDER_P_DONE;
    if (finished(job->row.state))
        return;
    if (strcmp(tn_pg_result_value(res, row, C_EXPIRED), "t") == 0) {
        set_code(job, "expired");
        job->plan = SENDER_P_DEAD;
        job->mark = "dead";
        return;
    }
    if (strcmp(job->row.state, "sending") == 0 && col_ms(res, row, C_SENDING_MS) + wait > now) {
        job->plan = SENDER_P_LATER;
        job->later_ms = col_ms(res, row, C_SENDING_MS) + wait;
        return;
    }
    if (col_ms(res, row, C_NOT_BEFORE_MS) > now + 50) {
        job->plan = SENDER_P_LATER;
        job->later_ms = col_ms(res, row, C_NOT_BEFORE_MS);
        return;
    }
    why = consent != NULL     ? consent
          : job->prov == NULL ? "channel.unsupported"
                              : build(g, job, row);
    if (why != NULL) {
        set_code(job, why);
        job->mark = "failed";
        return;
    }
    job->plan = SENDER_P_SEND;
    job->mark = "sending";
    job->row.attempts++;
}

/* record_marks - the UPDATEs for the group's decisions */
static enum tn_err record_marks(struct tn_pgconn *c, struct group *g)
{
    struct tn_buf send, ids, sts, codes;
    size_t nsend = 0, nmark = 0;
    enum tn_err err = TN_OK;
    const char *tenant = g->jobs[0]->tenant;

    tn_buf_init(&send, 0), tn_buf_init(&ids, 0), tn_buf_init(&sts, 0), tn_buf_init(&codes, 0);
    tn_buf_adds(&send, "{"), tn_buf_adds(&ids, "{"), tn_buf_adds(&sts, "{");
    tn_buf_adds(&codes, "{");
    for (size_t i = 0; i < g->n; i++) {
        const struct sender_job *job = g->jobs[i];

        if (job->mark == NULL)
            continue;
        if (strcmp(job->mark, "sending") == 0) {
            sender_pg_array_add(&send, job->id);
            nsend++;
            continue;
        }
        sender_pg_array_add(&ids, job->id);
        sender_pg_array_add(&sts, job->mark);
        sender_pg_array_add(&codes, job->code);
        nmark++;
    }
    if (nsend > 0)
        err = tn_pgconn_query_cached(
            c, sql_sending, 2, (const char *const[]){tenant, sender_pg_array_end(&send)}, NULL);
    if (err == TN_OK && nmark > 0)
        err = tn_pgconn_query_cached(c, sql_mark, 4,
                                     (const char *const[]){tenant, sender_pg_array_end(&ids),
                                                           sender_pg_array_end(&sts),
                                                           sender_pg_array_end(&codes)},
                                     NULL);
    tn_buf_free(&send), tn_buf_free(&ids), tn_buf_free(&sts), tn_buf_free(&codes);
    return err;
}

/* prepare_group - one tenant's jobs in one transaction */
static enum tn_err prepare_group(struct tn_pgconn *c, struct group *g)
{
    struct pg_result *res = NULL;
    struct sender_rowidx rows;
    bool *owner;
    struct tn_buf ids;
    enum tn_err err;

    err = tn_pgconn_begin_tenant(c, g->jobs[0]->tenant);
    if (err != TN_OK)
        return err;
    tn_buf_init(&ids, 0);
    tn_buf_adds(&ids, "{");
    for (size_t i = 0; i < g->n; i++)
        sender_pg_array_add(&ids, g->jobs[i]->id);
    err =
        tn_pgconn_query_cached(c, sql_load, 3,
                               (const char *const[]){g->jobs[0]->tenant, sender_pg_array_end(&ids),
                                                     g->jobs[0]->ctx->cfg.suppression_key},
                               &res);
    tn_buf_free(&ids);
    if (err != TN_OK)
        goto out;
    g->res = res;
    sender_rowidx_init(&rows, res, C_ID);
    owner = tn_xcalloc((size_t)tn_pg_result_rows(res) + 1, sizeof(*owner));
    for (size_t i = 0; i < g->n; i++) {
        struct sender_job *job = g->jobs[i];
        int row = sender_rowidx_find(&rows, job->id);

        job->plan = SENDER_P_DONE; /* no row (erased): nothing to send */
        if (row < 0)
            continue;
        if (owner[row]) {
            job->err = TN_ECONFLICT; /* claimed twice: the earlier job decides, this one ends */
            continue;
        }
        owner[row] = true;
        load_row(job, res, row);
        job->prov = sender_provider_of(job->row.channel_kind);
        decide(g, job, row);
    }
    sender_rowidx_free(&rows);
    tn_free(owner);
    err = record_marks(c, g);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
out:
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    for (size_t i = 0; i < g->nkeys; i++)
        tn_secrets_free(g->keys[i].secrets);
    tn_pg_result_free(res);
    return err;
}

/* copy_col - a result column into a fixed buffer */
static void copy_col(char *dst, size_t size, const struct pg_result *res, int row, int col)
{
    const char *v = tn_pg_result_value(res, row, col);

    snprintf(dst, size, "%s", v != NULL ? v : "");
}

/* sender_store_decide_fresh - see sender.h */
void sender_store_decide_fresh(struct sender_job **jobs, const struct sender_fresh *entries,
                               size_t n, const struct pg_result *res)
{
    struct group g = {.jobs = jobs, .n = n, .res = res};

    for (int r = 0; r < tn_pg_result_rows(res); r++) {
        long i = strtol(tn_pg_result_value(res, r, C_FRESH_INDEX), NULL, 10);
        struct sender_job *job;

        if (i < 0 || (size_t)i >= n || jobs[i]->row.state != NULL)
            continue; /* two contacts with the entry's address: the first decides */
        job = jobs[i];
        copy_col(job->id, sizeof(job->id), res, r, C_ID);
        copy_col(job->contact, sizeof(job->contact), res, r, C_FRESH_CONTACT);
        copy_col(job->channel, sizeof(job->channel), res, r, C_FRESH_CHANNEL);
        load_fresh(job, res, r, &entries[i]);
        job->prov = sender_provider_of(job->row.channel_kind);
        decide(&g, job, r);
    }
    for (size_t i = 0; i < g.nkeys; i++)
        tn_secrets_free(g.keys[i].secrets);
}

/* job_tenant - a job's tenant (sender_group_end) */
static const char *job_tenant(const void *item)
{
    return ((const struct sender_job *)item)->tenant;
}

/* by_tenant - qsort order of jobs */
static int by_tenant(const void *a, const void *b)
{
    return strcmp(job_tenant(*(void *const *)a), job_tenant(*(void *const *)b));
}

/* sender_store_prepare - see the file header */
enum tn_err sender_store_prepare(struct tn_pgconn *c, void *arg)
{
    struct sender_batch *b = arg;
    size_t end;

    qsort(b->items, b->n, sizeof(*b->items), by_tenant);
    for (size_t i = 0; i < b->n; i = end) {
        struct group g = {.jobs = (struct sender_job **)b->items + i};
        enum tn_err err;

        end = sender_group_end(b->items, b->n, i, job_tenant);
        g.n = end - i;
        err = prepare_group(c, &g);
        for (size_t k = i; k < end; k++) {
            struct sender_job *job = b->items[k];

            if (err != TN_OK || job->err != TN_ECONFLICT)
                job->err = err;
            if (err != TN_OK)
                sender_req_free(&job->req);
        }
    }
    return TN_OK;
}
