/*
 * NAME
 *	agent_voice - transcribe a turn's voice notes before the model runs
 * SYNOPSIS
 *	#include "agent.h"
 *	if (agent_voice_pending(&turn->ld))
 *		agent_voice_run(turn, done);
 * DESCRIPTION
 *	An inbound audio or voice message with a media reference and no
 *	transcript is fetched from the provider (agent_media.c) and posted as
 *	multipart/form-data (file, model TN_LLM_TRANSCRIBE_MODEL) to the
 *	OpenAI-compatible {TN_LLM_BASE_URL}/audio/transcriptions, with the
 *	same key as the chat model. The text (capped) becomes the message's
 *	transcript: the prompt shows it, and the turn's commit stores it in
 *	messages.transcript. The bytes live only in this request's memory.
 *
 *	A failure at any step (no key ring or credentials, provider error,
 *	too large, transcription error or an empty text) is not retried and
 *	never blocks the turn: the message keeps no transcript and the prompt
 *	says "[voice note could not be transcribed]", so the lead still gets
 *	an answer (and may be asked to type).
 *
 *	The channel's secrets are opened in the claim transaction, only when
 *	a fresh voice note waits, with TN_MASTER_KEY and the aad
 *	"channel:<tenant>:<channel>" that ternctl sealed them with.
 * RUNS ON
 *	loop; agent_voice_secrets on the threadpool.
 * DIAGNOSTICS
 *	agent.voice_transcribed (bytes, ms), agent.voice_failed (step,
 *	status, err). Never a URL, a credential, a transcript or the bytes.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <tn/tn_buf.h>
#include <tn/tn_crypto.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_pg.h>
#include <tn/tn_secrets.h>
#include <tn/tn_time.h>

#include "agent.h"

#define TRANSCRIPT_MAX 4000
#define TRANSCRIBE_ANSWER_MAX (256 * 1024)

/* The voice run of one turn; lives from agent_voice_run to done. */
struct agent_voice {
    struct agent_turn *t;
    void (*done)(struct agent_turn *t);
    struct agent_hmsg *m; /* the note being worked on */
    size_t bytes;
    int64_t started_ms;
};

static void next(struct agent_voice *v);

/* agent_voice_is - audio and voice notes */
bool agent_voice_is(const char *type)
{
    return type != NULL && (strcmp(type, "voice") == 0 || strcmp(type, "audio") == 0);
}

/* needs - a fresh message this turn should still try to transcribe */
static bool needs(const struct agent_hmsg *m)
{
    return agent_voice_is(m->type) && m->transcript == NULL && !m->voice_tried &&
           m->media_ref != NULL;
}

/* agent_voice_pending - any fresh note left to try? */
bool agent_voice_pending(const struct agent_load *l)
{
    for (size_t i = 0; i < l->nfresh; i++) {
        if (needs(&l->fresh[i]))
            return true;
    }
    return false;
}

/* failed - log the step, count, go on with the next note */
static void failed(struct agent_voice *v, const char *step, long status, enum tn_err err)
{
    struct tn_log_ctx lc = {.tenant_id = v->t->tenant};

    if (err == TN_ECANCELED || strcmp(step, "closing") == 0) {
        next(v); /* the daemon is closing: next() ends the run */
        return;
    }
    tn_metric_inc(v->t->ctx->m_voice_fail);
    tn_log_warn(&lc, "agent.voice_failed", TN_KV_STR("conversation", v->t->conv),
                TN_KV_STR("step", step), TN_KV_INT("status", status), TN_KV_ERR(err));
    next(v);
}

/* filename - a name whose extension tells the endpoint the format */
static const char *filename(const char *mime)
{
    static const struct {
        const char *prefix, *name;
    } map[] = {
        {"audio/ogg", "voice.ogg"},   {"audio/opus", "voice.ogg"}, {"audio/mpeg", "voice.mp3"},
        {"audio/mp4", "voice.m4a"},   {"audio/aac", "voice.m4a"},  {"audio/x-m4a", "voice.m4a"},
        {"audio/amr", "voice.amr"},   {"audio/wav", "voice.wav"},  {"audio/x-wav", "voice.wav"},
        {"audio/webm", "voice.webm"}, {"video/mp4", "voice.mp4"},  {"audio/flac", "voice.flac"},
    };

    for (size_t i = 0; mime != NULL && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strncasecmp(mime, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].name;
    }
    return "voice.ogg"; /* WhatsApp and Telegram voice notes are OGG/Opus */
}

/* multipart - the form: model, response_format, file */
static void multipart(struct tn_buf *b, const char *boundary, const char *model, const char *mime,
                      const char *bytes, size_t len)
{
    tn_buf_printf(b,
                  "--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n%s\r\n"
                  "--%s\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\njson\r\n"
                  "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                  "Content-Type: %s\r\n\r\n",
                  boundary, model, boundary, boundary, filename(mime),
                  mime != NULL ? mime : "audio/ogg");
    tn_buf_add(b, bytes, len);
    tn_buf_printf(b, "\r\n--%s--\r\n", boundary);
}

/* cap - new copy of s, at most TRANSCRIPT_MAX bytes on a UTF-8 boundary */
static char *cap(const char *s)
{
    size_t n = strlen(s);

    if (n > TRANSCRIPT_MAX) {
        n = TRANSCRIPT_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return tn_xstrndup(s, n);
}

/* agent_voice_transcript - the answer's text, capped, or NULL. Leading
 * white space goes before the cap, which could otherwise keep only that. */
char *agent_voice_transcript(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *text = json_string_value(json_object_get(root, "text"));
    char *out = NULL;

    if (text != NULL)
        text += strspn(text, " \t\r\n");
    if (text != NULL && *text != '\0')
        out = cap(text);
    json_decref(root);
    return out;
}

/* transcribed - the endpoint answered */
static void transcribed(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct agent_voice *v = arg;
    struct tn_log_ctx lc = {.tenant_id = v->t->tenant};
    char *text;

    if (err != TN_OK || resp->status != 200) {
        failed(v, "transcribe", err == TN_OK ? resp->status : 0, err);
        return;
    }
    text = agent_voice_transcript(resp->body, resp->body_len);
    if (text == NULL) {
        failed(v, "transcribe.answer", resp->status, TN_EPROTO);
        return;
    }
    v->m->transcript = text;
    v->m->voice_new = true;
    tn_metric_inc(v->t->ctx->m_voice);
    tn_log_info(&lc, "agent.voice_transcribed", TN_KV_STR("conversation", v->t->conv),
                TN_KV_INT("bytes", (int64_t)v->bytes),
                TN_KV_INT("ms", tn_mono_ms() - v->started_ms));
    next(v);
}

/* transcribe - POST the bytes (freed here) to /audio/transcriptions */
static void transcribe(struct agent_voice *v, char *bytes, size_t len, char *mime)
{
    const struct agent_cfg *cfg = &v->t->ctx->cfg;
    struct tn_http *http = agent_http(v->t->ctx);
    struct tn_buf url, auth, ctype, body;
    unsigned char rnd[12];
    char *boundary;
    size_t blen = strlen(cfg->llm_base_url);
    enum tn_err err = TN_ECANCELED;

    while (blen > 0 && cfg->llm_base_url[blen - 1] == '/')
        blen--;
    tn_random_bytes(rnd, sizeof(rnd));
    boundary = tn_hex_encode(rnd, sizeof(rnd));
    tn_buf_init(&url, 0);
    tn_buf_init(&auth, 0);
    tn_buf_init(&ctype, 0);
    tn_buf_init(&body, 0);
    tn_buf_printf(&url, "%.*s/audio/transcriptions", (int)blen, cfg->llm_base_url);
    tn_buf_printf(&auth, "Authorization: Bearer %s", cfg->llm_api_key);
    tn_buf_printf(&ctype, "Content-Type: multipart/form-data; boundary=%s", boundary);
    multipart(&body, boundary, cfg->transcribe_model, mime, bytes, len);
    memset(bytes, 0, len); /* the lead's voice leaves our heap as soon as it is sent */
    tn_free(bytes);
    tn_free(mime);
    v->bytes = len;
    if (http != NULL)
        err = tn_http_send(http,
                           &(struct tn_http_request){
                               .method = "POST",
                               .url = url.data,
                               .headers = (const char *const[]){auth.data, ctype.data,
                                                                "Accept: application/json", NULL},
                               .body = body.data,
                               .body_len = body.len,
                               .timeout_ms = (uint32_t)cfg->llm_timeout_ms,
                               .max_response = TRANSCRIBE_ANSWER_MAX,
                           },
                           transcribed, v);
    memset(body.data, 0, body.len);
    tn_buf_free(&body);
    tn_buf_free(&url);
    tn_wipe(auth.data, auth.len);
    tn_buf_free(&auth);
    tn_buf_free(&ctype);
    tn_free(boundary);
    if (err != TN_OK)
        failed(v, "transcribe.request", 0, err);
}

/* fetched - the provider's bytes, or why not */
static void fetched(struct agent_turn *t, char *bytes, size_t len, char *mime, const char *why,
                    long status)
{
    struct agent_voice *v = t->voice;

    if (why != NULL) {
        tn_free(bytes);
        tn_free(mime);
        failed(v, why, status, TN_OK);
        return;
    }
    transcribe(v, bytes, len, mime);
}

/* next - the next note, or done */
static void next(struct agent_voice *v)
{
    struct agent_turn *t = v->t;

    v->m = NULL;
    for (size_t i = 0; i < t->ld.nfresh && !t->ctx->closing; i++) {
        if (needs(&t->ld.fresh[i])) {
            v->m = &t->ld.fresh[i];
            break;
        }
    }
    if (v->m == NULL) {
        void (*done)(struct agent_turn *) = v->done;

        t->voice = NULL;
        tn_free(v);
        done(t);
        return;
    }
    v->m->voice_tried = true;
    v->started_ms = tn_mono_ms();
    agent_media_fetch(t, v->m, fetched);
}

/* agent_voice_run - one note after the other */
void agent_voice_run(struct agent_turn *t, void (*done)(struct agent_turn *t))
{
    struct agent_voice *v = tn_xcalloc(1, sizeof(*v));

    v->t = t;
    v->done = done;
    t->voice = v;
    next(v);
}

/* take - a string member of the secrets as new, or NULL */
static char *take(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL && s[0] != '\0' ? tn_xstrdup(s) : NULL;
}

/* agent_voice_secrets - the media credentials of the turn's channel */
enum tn_err agent_voice_secrets(struct tn_pgconn *c, const struct agent_ctx *ctx,
                                const char *tenant, struct agent_load *l)
{
    struct pg_result *res = NULL;
    const char *kind = l->channel_kind != NULL ? l->channel_kind : "";
    json_t *s;
    enum tn_err err;

    if (ctx->keys == NULL)
        return TN_OK; /* no key ring: the notes fail softly */
    err = agent_store_q(c,
                        "SELECT encode(secrets_sealed, 'hex') FROM channels"
                        " WHERE tenant_id = $1 AND id = $2",
                        2, (const char *const[]){tenant, l->channel}, &res);
    if (err != TN_OK || tn_pg_result_rows(res) != 1)
        goto out;
    s = tn_secrets_open(ctx->keys, tenant, l->channel, tn_pg_result_value(res, 0, 0));
    if (strcmp(kind, "whatsapp") == 0) {
        l->media_token = take(s, "access_token");
    } else if (strcmp(kind, "telegram") == 0) {
        l->media_token = take(s, "bot_token");
    } else if (strncmp(kind, "twilio_", 7) == 0) {
        l->media_user = take(s, "account_sid");
        l->media_token = take(s, "auth_token");
    }
    json_decref(s); /* jansson does not wipe; the JSON lived only for this call */
out:
    tn_pg_result_free(res);
    return err;
}
