/*
 * NAME
 *	tern-agent - AI reply worker
 * DESCRIPTION
 *	Consumes the leads' messages from tern:in, keeps each conversation in
 *	Postgres, and answers it one turn at a time with an OpenAI-compatible
 *	chat completions model that may call server-validated tools. Replies
 *	go to tern:out for tern-sender. See README.md in this directory for
 *	why the ordering is a Postgres row lease and how a crash is recovered.
 * STREAMS IN
 *	tern:in (group agent): inbound.message v1 - type, v, tenant, trace,
 *	channel, provider, pmid, dedupe, data.
 * STREAMS OUT
 *	tern:out: outbound.message v1 - type, v, tenant, trace, channel,
 *	provider, outbound, dedupe ("out:<outbound id>"), data (outbound_id,
 *	conversation_id, contact_id, to, transport, kind "text", text, reason
 *	"reply" | "holding" | "notice" | "reminder", created_at, not_before
 *	for a reminder).
 *	tern:cal: cal.request v1 after a booking tool changed a booking -
 *	type, v, tenant, trace, request, dedupe ("cal:<request id>"), data
 *	(tenant, request_id, op book | reschedule | cancel, booking_id,
 *	requested_at).
 *	tern:out: outbound.read v1 when TN_AGENT_MARK_READ is on - type, v,
 *	tenant, trace, channel, provider "whatsapp", pmid (the wamid), dedupe
 *	("read:<wamid>"), data (tenant, channel, provider,
 *	provider_message_id).
 * DATABASE
 *	Reads tenants, channels (and, for voice notes, their sealed secrets),
 *	agent_profiles, services, business hours and
 *	busy time; reads and writes contacts, conversations (lease), messages,
 *	leads, consent_events, outbound_messages, bookings (through
 *	tn_booking and tern_agent_booking_notices()); tern_agent_due(),
 *	tern_agent_unpublished() and tern_agent_unnotified() (SECURITY
 *	DEFINER, ids only) for the cross-tenant scan.
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h (TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9102), and:
 *	TN_LLM_BASE_URL, TN_LLM_API_KEY (secret, or TN_LLM_API_KEY_FILE),
 *	TN_LLM_MODEL, TN_LLM_TIMEOUT_MS, TN_LLM_RETRIES, TN_LLM_MAX_TOKENS,
 *	TN_AGENT_QUIET_MS (burst window), TN_AGENT_LEASE_MS, TN_AGENT_SCAN_MS,
 *	TN_AGENT_REPUBLISH_MS, TN_AGENT_HISTORY_MESSAGES, TN_AGENT_HISTORY_CHARS,
 *	TN_AGENT_TOOL_ROUNDS, TN_AGENT_PG_POOL, TN_AGENT_BATCH,
 *	TN_AGENT_VISIBILITY_MS, TN_AGENT_HOLDING_TEXT, TN_AGENT_OPTOUT_WORDS,
 *	TN_AGENT_OPTIN_WORDS, TN_AGENT_OPTOUT_TEXT, TN_AGENT_OPTIN_TEXT,
 *	TN_AGENT_BOOKED_TEXT, TN_AGENT_MOVED_TEXT, TN_AGENT_REMINDER_TEXT
 *	(booking notices; {service} and {when} are replaced, the tenant's
 *	agent_profiles texts win).
 *	Voice notes: TN_LLM_TRANSCRIBE_MODEL (POST {TN_LLM_BASE_URL}/audio/
 *	transcriptions with TN_LLM_API_KEY), TN_MASTER_KEY (secret, or
 *	TN_MASTER_KEY_FILE; opens the channel secrets; without it voice notes
 *	are answered as "could not be transcribed"), TN_WHATSAPP_API_BASE,
 *	TN_WHATSAPP_API_VERSION, TN_TWILIO_API_BASE, TN_TELEGRAM_API_BASE,
 *	TN_AGENT_MEDIA_TIMEOUT_MS, TN_AGENT_VOICE_MAX_BYTES.
 *	TN_AGENT_MARK_READ (boolean, default off): mark each newly stored
 *	inbound WhatsApp message read (an outbound.read entry on tern:out).
 * SECURITY
 *	Holds the LLM API key, and only this daemon does; it goes only into
 *	the Authorization header and is never logged. Opens a channel's
 *	sealed secrets (TN_MASTER_KEY) only to fetch a voice note from that
 *	channel's provider: the credential goes into that request's
 *	Authorization header (Telegram: the URL path) and is wiped after the
 *	turn; a Twilio media URL outside TN_TWILIO_API_BASE gets no
 *	credentials. Media bytes are never stored. Stream entries and model
 *	output are hostile input: the entry's tenant is re-checked against the
 *	channel under row-level security, tool arguments are validated before
 *	anything is stored, reply text is capped. Phone numbers and emails are
 *	masked before text reaches the model. Booking tools act only for the
 *	conversation's own contact, never one named by the model. A contact
 *	whose processing is restricted gets no turn and no reply. Postgres
 *	role tern_agent (no
 *	DELETE, no BYPASSRLS); Redis user tern-agent. Refuses to run as root
 *	unless TN_ALLOW_ROOT=1.
 */
#include <stdlib.h>

#include <tn/tn_daemon.h>
#include <tn/tn_env.h>
#include <tn/tn_http.h>

#include "agent.h"

#define DEF_HOLDING "Thanks, a team member will get back to you shortly."
#define DEF_OPTOUT                                                                                 \
    "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
#define DEF_OPTIN "You have been resubscribed. Reply STOP to unsubscribe."
#define DEF_BOOKED "Your {service} is booked for {when}. Reply here to change or cancel it."
#define DEF_MOVED "Your {service} has been moved to {when}."
#define DEF_REMINDER "Reminder: your {service} is on {when}. Reply here to change or cancel it."

static const struct tn_env_spec agent_env[] = {
    TN_ENV_STR("TN_LLM_BASE_URL", "https://openrouter.ai/api/v1", struct agent_cfg, llm_base_url),
    TN_ENV_SECRET("TN_LLM_API_KEY", "", struct agent_cfg, llm_api_key),
    TN_ENV_STR("TN_LLM_MODEL", "openai/gpt-4o-mini", struct agent_cfg, llm_model),
    TN_ENV_MS("TN_LLM_TIMEOUT_MS", "30s", 100, 600000, struct agent_cfg, llm_timeout_ms),
    TN_ENV_INT("TN_LLM_RETRIES", "2", 0, 5, struct agent_cfg, llm_retries),
    TN_ENV_INT("TN_LLM_MAX_TOKENS", "400", 16, 8192, struct agent_cfg, llm_max_tokens),
    TN_ENV_MS("TN_AGENT_QUIET_MS", "1500", 0, 60000, struct agent_cfg, quiet_ms),
    TN_ENV_MS("TN_AGENT_LEASE_MS", "60s", 1000, 3600000, struct agent_cfg, lease_ms),
    TN_ENV_MS("TN_AGENT_SCAN_MS", "1s", 50, 60000, struct agent_cfg, scan_ms),
    TN_ENV_MS("TN_AGENT_REPUBLISH_MS", "30s", 1000, 3600000, struct agent_cfg, republish_ms),
    TN_ENV_INT("TN_AGENT_HISTORY_MESSAGES", "30", 0, 200, struct agent_cfg, history_msgs),
    TN_ENV_INT("TN_AGENT_HISTORY_CHARS", "8000", 200, 200000, struct agent_cfg, history_chars),
    TN_ENV_INT("TN_AGENT_TOOL_ROUNDS", "4", 0, 16, struct agent_cfg, tool_rounds),
    TN_ENV_INT("TN_AGENT_PG_POOL", "4", 1, 64, struct agent_cfg, pg_pool),
    TN_ENV_INT("TN_AGENT_BATCH", "64", 1, 1000, struct agent_cfg, batch),
    TN_ENV_MS("TN_AGENT_VISIBILITY_MS", "60s", 1000, 3600000, struct agent_cfg, visibility_ms),
    TN_ENV_STR("TN_AGENT_HOLDING_TEXT", DEF_HOLDING, struct agent_cfg, holding_text),
    TN_ENV_STR("TN_AGENT_OPTOUT_WORDS", "STOP,STOPALL,UNSUBSCRIBE,END,QUIT", struct agent_cfg,
               optout_words),
    TN_ENV_STR("TN_AGENT_OPTIN_WORDS", "START,UNSTOP", struct agent_cfg, optin_words),
    TN_ENV_STR("TN_AGENT_OPTOUT_TEXT", DEF_OPTOUT, struct agent_cfg, optout_text),
    TN_ENV_STR("TN_AGENT_OPTIN_TEXT", DEF_OPTIN, struct agent_cfg, optin_text),
    TN_ENV_STR("TN_AGENT_BOOKED_TEXT", DEF_BOOKED, struct agent_cfg, booked_text),
    TN_ENV_STR("TN_AGENT_MOVED_TEXT", DEF_MOVED, struct agent_cfg, moved_text),
    TN_ENV_STR("TN_AGENT_REMINDER_TEXT", DEF_REMINDER, struct agent_cfg, reminder_text),
    TN_ENV_STR("TN_LLM_TRANSCRIBE_MODEL", "whisper-1", struct agent_cfg, transcribe_model),
    TN_ENV_SECRET(TN_ENV_MASTER_KEY, "", struct agent_cfg, master_key),
    TN_ENV_STR("TN_WHATSAPP_API_BASE", "https://graph.facebook.com", struct agent_cfg,
               whatsapp_base),
    TN_ENV_STR("TN_WHATSAPP_API_VERSION", "v21.0", struct agent_cfg, whatsapp_version),
    TN_ENV_STR("TN_TWILIO_API_BASE", "https://api.twilio.com", struct agent_cfg, twilio_base),
    TN_ENV_STR("TN_TELEGRAM_API_BASE", "https://api.telegram.org", struct agent_cfg, telegram_base),
    TN_ENV_MS("TN_AGENT_MEDIA_TIMEOUT_MS", "15s", 100, 600000, struct agent_cfg, media_timeout_ms),
    TN_ENV_INT("TN_AGENT_VOICE_MAX_BYTES", "16777216", 1024, 26214400, struct agent_cfg, media_max),
    TN_ENV_BOOL("TN_AGENT_MARK_READ", "0", struct agent_cfg, mark_read),
    TN_ENV_END,
};

/* main - libcurl's global init (before any thread), then the skeleton */
int main(void)
{
    static struct agent_ctx ctx;
    int rc;

    if (tn_http_global_init() != TN_OK)
        return 70;
    rc = tn_daemon_main(&(const struct tn_daemon){
        .name = "agent",
        .admin_default = "127.0.0.1:9102",
        .env = agent_env,
        .cfg = &ctx.cfg,
        .init = agent_init,
        .drain = agent_drain,
        .busy = agent_busy,
        .fini = agent_fini,
        .ready = agent_ready,
        .heartbeat = agent_heartbeat,
        .arg = &ctx,
    });
    tn_http_global_cleanup();
    return rc;
}
