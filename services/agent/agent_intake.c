/*
 * NAME
 *	agent_intake - the tern:in handler
 * SYNOPSIS
 *	#include "agent.h"
 *	tn_consumer_new(..., agent_intake_on_entry, ctx);
 * DESCRIPTION
 *	Checks an inbound.message entry, makes it durable in one Postgres
 *	transaction under its tenant (a plain message together with the other
 *	plain messages of this loop turn, agent_intake_batch.c; a keyword alone,
 *	agent_store_intake_work), acknowledges it, and wakes the conversation's
 *	turn. The handler does no LLM work:
 *	it is fast and idempotent (a redelivered entry hits the unique
 *	provider message id and changes nothing), so acknowledging right after
 *	the commit never loses a message; the turn that answers it is driven
 *	by the conversation row, not by the entry.
 *
 *	With TN_AGENT_MARK_READ on, a WhatsApp message this intake stored
 *	(not a redelivery) is then marked read at WhatsApp: an outbound.read
 *	entry on tern:out for tern-sender, which holds the credentials
 *	(agent_publish_read; best effort, after the commit).
 *
 *	Opt-out and opt-in keywords (TN_AGENT_OPTOUT_WORDS, TN_AGENT_OPTIN_WORDS,
 *	and Twilio's OptOutType) are decided here, before any turn, so that a
 *	STOP takes effect at once; the confirmation (SMS only: carriers
 *	require it) is published after the commit.
 * RUNS ON
 *	loop; the store work on the threadpool.
 * DIAGNOSTICS
 *	agent.inbound_invalid (dead-lettered "schema.invalid"),
 *	agent.inbound_unknown_channel ("channel.unknown"), agent.inbound_failed
 *	(retried), agent.opt_out, agent.opt_in.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tn/tn_consumer.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_proto.h>

#include "agent.h"

/* agent_keyword_parse - comma-separated words, trimmed, upper-cased */
size_t agent_keyword_parse(const char *list, char ***out)
{
    size_t n = 0;
    const char *p = list;

    *out = NULL;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        if (len > 0) {
            char *w = tn_xstrndup(p, len);

            for (char *q = w; *q != '\0'; q++)
                *q = (char)toupper((unsigned char)*q);
            *out = tn_xrealloc(*out, (n + 1) * sizeof(**out));
            (*out)[n++] = w;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return n;
}

/* agent_keyword_match - whole-message match, case and punctuation forgiving */
bool agent_keyword_match(const char *text, char *const *words, size_t n)
{
    size_t len;

    if (text == NULL)
        return false;
    while (isspace((unsigned char)*text))
        text++;
    len = strlen(text);
    while (len > 0 && (isspace((unsigned char)text[len - 1]) || strchr(".!", text[len - 1])))
        len--;
    for (size_t i = 0; i < n; i++) {
        if (strlen(words[i]) == len && strncasecmp(text, words[i], len) == 0)
            return true;
    }
    return false;
}

/* str - a string member of o, or NULL */
static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* stream_pos - "1736244063000-5" as 1736244063000 * 10^6 + 5 */
static void stream_pos(const char *id, char out[24])
{
    char *end;
    unsigned long long ms = strtoull(id, &end, 10);
    unsigned long long seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;

    snprintf(out, 24, "%llu", ms * 1000000ULL + (seq % 1000000ULL));
}

/* body_of - the text the agent reads: text, a caption, a tapped title */
static void body_of(struct agent_intake *in)
{
    json_t *media = json_array_get(json_object_get(in->data, "media"), 0);
    json_t *reply = json_object_get(in->data, "reply");

    in->body = str(in->data, "text");
    if (in->body == NULL && media != NULL)
        in->body = str(media, "caption");
    if (in->body == NULL && reply != NULL)
        in->body = str(reply, "title");
    if (media != NULL)
        in->media_ref = str(media, "id") != NULL ? str(media, "id") : str(media, "url");
}

/* keyword_of - opt-out / opt-in, from the text or the provider's verdict */
static enum agent_keyword keyword_of(const struct agent_intake *in)
{
    const struct agent_ctx *ctx = in->ctx;
    const char *prov = str(in->data, "opt_out");

    if (prov != NULL && strcasecmp(prov, "STOP") == 0)
        return AGENT_KW_OPTOUT;
    if (prov != NULL && strcasecmp(prov, "START") == 0)
        return AGENT_KW_OPTIN;
    if (in->mtype == NULL || strcmp(in->mtype, "text") != 0)
        return AGENT_KW_NONE;
    if (agent_keyword_match(in->body, ctx->optout, ctx->noptout))
        return AGENT_KW_OPTOUT;
    if (agent_keyword_match(in->body, ctx->optin, ctx->noptin))
        return AGENT_KW_OPTIN;
    return AGENT_KW_NONE;
}

/* parse - check the envelope and data; borrowed pointers into both */
static const char *parse(struct agent_intake *in)
{
    struct tn_entry *e = in->e;
    const char *type = tn_entry_field(e, TN_F_TYPE, NULL);
    const char *v = tn_entry_field(e, TN_F_V, NULL);
    size_t dlen = 0;
    const char *data = tn_entry_field(e, TN_F_DATA, &dlen);

    if (type == NULL || strcmp(type, TN_TYPE_INBOUND_MESSAGE) != 0 || v == NULL ||
        strcmp(v, TN_V_INBOUND_MESSAGE) != 0 || data == NULL)
        return "schema.invalid";
    in->data = json_loadb(data, dlen, 0, NULL);
    if (!json_is_object(in->data))
        return "schema.invalid";
    in->tenant = tn_entry_field(e, TN_F_TENANT, NULL);
    in->trace = tn_entry_field(e, TN_F_TRACE, NULL);
    in->channel = str(in->data, "channel");
    in->pmid = str(in->data, "provider_message_id");
    in->sender = str(in->data, "sender");
    in->sender_name = str(in->data, "sender_name");
    in->mtype = str(in->data, "message_type");
    in->transport = str(in->data, "transport");
    in->provider = str(in->data, "provider");
    if (!tn_uuid_valid(in->tenant) || !tn_uuid_valid(in->channel) || in->pmid == NULL ||
        in->mtype == NULL || in->transport == NULL || str(in->data, "tenant") == NULL ||
        strcmp(str(in->data, "tenant"), in->tenant) != 0)
        return "schema.invalid";
    body_of(in);
    in->raw = agent_json_dump(json_object_get(in->data, "raw"));
    stream_pos(e->id, in->stream_pos);
    in->keyword = keyword_of(in);
    return NULL;
}

/* intake_free - release the job */
static void intake_free(struct agent_intake *in)
{
    json_decref(in->data);
    tn_free(in->raw);
    agent_out_free(in->confirm);
    tn_free(in);
}

/* agent_intake_finish - ack, wake the conversation, publish a confirmation */
void agent_intake_finish(enum tn_err err, void *arg)
{
    struct agent_intake *in = arg;
    struct agent_ctx *ctx = in->ctx;
    struct tn_log_ctx lc = {.tenant_id = in->tenant, .entry_id = in->e->id, .stream = TN_STREAM_IN};
    enum tn_disp disp = TN_DISP_ACK;
    const char *reason = NULL;

    ctx->intakes--;
    if (err == TN_ENOTFOUND || err == TN_EINVAL || err == TN_EDENIED) {
        disp = TN_DISP_DEAD;
        reason = err == TN_ENOTFOUND ? "channel.unknown" : "db.rejected";
        tn_log_warn(&lc, "agent.inbound_rejected", TN_KV_STR("reason", reason), TN_KV_ERR(err));
    } else if (err != TN_OK) {
        disp = TN_DISP_RETRY;
        tn_log_warn(&lc, "agent.inbound_failed", TN_KV_ERR(err));
    } else {
        tn_metric_inc(in->inserted ? ctx->m_intake : ctx->m_dup);
        if (in->keyword != AGENT_KW_NONE && in->inserted)
            tn_log_info(&lc, in->keyword == AGENT_KW_OPTOUT ? "agent.opt_out" : "agent.opt_in");
        if (in->wake && !ctx->draining)
            agent_turn_wake(ctx, in->tenant, in->conv, in->trace);
        /* only a message this intake stored: a redelivery marks nothing again */
        if (in->inserted && ctx->cfg.mark_read && !ctx->closing && in->provider != NULL &&
            strcmp(in->provider, TN_PROVIDER_WHATSAPP) == 0)
            agent_publish_read(ctx, in->tenant, in->channel, in->pmid, in->trace);
        if (in->confirm != NULL && !ctx->closing) {
            agent_publish(ctx, in->confirm);
            in->confirm = NULL;
        }
    }
    tn_consumer_done(in->c, in->e, disp, reason);
    intake_free(in);
    agent_maybe_free_pg(ctx);
}

/* agent_intake_drop - give the entry back unstored (it stays pending) */
void agent_intake_drop(struct agent_intake *in)
{
    struct agent_ctx *ctx = in->ctx;

    ctx->intakes--;
    tn_consumer_done(in->c, in->e, TN_DISP_RETRY, "agent.closing");
    intake_free(in);
    agent_maybe_free_pg(ctx);
}

/* agent_intake_on_entry - check, then store on the threadpool: a plain
 * message with this loop turn's batch, a keyword in its own transaction */
void agent_intake_on_entry(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct agent_ctx *ctx = arg;
    struct agent_intake *in = tn_xcalloc(1, sizeof(*in));
    const char *bad;

    in->ctx = ctx;
    in->c = c;
    in->e = e;
    bad = parse(in);
    if (bad != NULL) {
        struct tn_log_ctx lc = {.entry_id = e->id, .stream = TN_STREAM_IN};

        tn_log_warn(&lc, "agent.inbound_invalid", TN_KV_STR("reason", bad));
        tn_consumer_done(c, e, TN_DISP_DEAD, bad);
        intake_free(in);
        return;
    }
    if (in->sender == NULL) { /* unknown type without an author: nothing to answer */
        tn_consumer_done(c, e, TN_DISP_ACK, NULL);
        intake_free(in);
        return;
    }
    ctx->intakes++;
    if (in->keyword == AGENT_KW_NONE && ctx->icheck_inited && !ctx->closing) {
        agent_intake_batch_add(ctx, in);
        return;
    }
    if (agent_pg_submit(ctx, agent_store_intake_work, agent_intake_finish, in) != TN_OK)
        agent_intake_drop(in);
}
