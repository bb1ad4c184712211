/*
 * NAME
 *	tern-sender - outbound message sender
 * DESCRIPTION
 *	Delivers outbound messages through WhatsApp Cloud, Twilio (SMS and
 *	WhatsApp), Telegram and email (SMTP or the Gmail API) exactly once
 *	toward each provider, within their
 *	rate limits, with retries, dead letters, scheduled sends and delivery
 *	statuses. The path of a message:
 *	  tern:out entry -> row upserted, member on the schedule, ACK
 *	    (sender_out.c; an entry due now with a free job slot is decided
 *	    there and its row inserted already 'sending', then sent at once);
 *	  schedule (Redis ZSETs by due time, claimed with a lease, fair across
 *	    tenants; sender_sched.c) -> token bucket (sender_rate.c) ->
 *	    prepare: consent, 24-hour window, credentials, 'sending' recorded
 *	    (sender_store.c; batched: sender_batch.c) -> provider call (sender_whatsapp.c,
 *	    sender_twilio.c, sender_telegram.c, sender_email.c with
 *	    sender_mime.c; SMTP on the threadpool: sender_smtp.c) -> record: sent, failed with
 *	    the provider's code (sender_record.c), retry with backoff and jitter (Retry-After,
 *	    Telegram retry_after), or dead after the attempt limit
 *	    (sender_dead.c);
 *	  tern:status entry -> the row's furthest state (sender_status.c).
 *	Exactly once: a row is marked 'sending' before the call and 'sent'
 *	with the provider's id after it; a redelivered entry or a reclaimed
 *	member finds the row finished and sends nothing. A crash between the
 *	provider's answer and the 'sent' update leaves 'sending': the row then
 *	waits TN_SENDER_ECHO_WAIT for the provider's status echo (WhatsApp
 *	biz_opaque_callback_data, Twilio StatusCallback ?outbound=) before it
 *	is sent again. Telegram echoes nothing: there the window is one HTTP
 *	answer plus one UPDATE, and a resend waits twice the HTTP timeout.
 *	Email echoes nothing either (the same wait), but a resend carries the
 *	same Message-ID, so mail systems and readers see one message.
 * STREAMS IN
 *	tern:out (group sender): outbound.message (type, v, tenant, trace,
 *	channel, provider, outbound, dedupe, data); outbound.read (tenant,
 *	channel, provider, pmid: mark an inbound WhatsApp message read,
 *	sender_read.c)
 *	tern:status (group sender): delivery.status (tenant, channel, pmid,
 *	status, outbound?, data.errors); matched by outbound, else by pmid
 *	within 30 days; a WhatsApp status without outbound is not Tern's
 * STREAMS OUT
 *	tern:out:dead, tern:status:dead: dead letters (the original fields
 *	plus dead_reason, dead_from_id, dead_deliveries, dead_at).
 *	tern:sched, tern:sched:<tenant>: the schedule (ZSETs).
 * DATABASE
 *	outbound_messages (insert, read, update); contacts, channels (with
 *	the sealed secrets), suppressions, messages, conversations (read);
 *	channels.secrets_sealed/secrets_key_id (update: a refreshed Gmail
 *	access token, proto/sql/0020_sender_gmail_refresh.sql).
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h (TN_ADMIN_LISTEN 127.0.0.1:9104);
 *	TN_MASTER_KEY(_FILE) (required); TN_WHATSAPP_API_BASE,
 *	TN_WHATSAPP_API_VERSION, TN_TWILIO_API_BASE, TN_TELEGRAM_API_BASE,
 *	TN_GMAIL_API_BASE, TN_SENDER_TWILIO_STATUS_URL; TN_GOOGLE_CLIENT_ID,
 *	TN_GOOGLE_CLIENT_SECRET[_FILE], TN_GOOGLE_TOKEN_URL (Gmail access
 *	tokens refreshed from a channel's refresh_token, sender_gmail.c; the
 *	same names as tern-calsync's); TN_SENDER_* below (limits, retries,
 *	rates per second per identity: WhatsApp 80 per phone number, Twilio 10
 *	per sender, Telegram 30 per bot and 1 per chat; email none),
 *	TN_SENDER_SMTP_CONCURRENCY (SMTP sends at once on the threadpool),
 *	TN_SENDER_INTAKE_WAIT (how long a fresh entry waits for a job slot
 *	before it takes the schedule; 0: not at all; at most a quarter of
 *	TN_SENDER_VISIBILITY).
 * SECURITY
 *	The only daemon that holds provider send credentials: they are opened
 *	per send on the threadpool, wiped after use where we own the memory,
 *	and never logged (no URL is logged: Telegram's carries the token).
 *	With TN_GOOGLE_CLIENT_SECRET it also holds the Google OAuth client's
 *	secret and uses email channels' refresh tokens (never logged, never
 *	in a stream; the token endpoint's answers are size-capped).
 *	An email channel's smtp_url is a tenant's input: only smtp:// and
 *	smtps:// are followed. Email headers are built from hostile input
 *	(the lead's address, earlier Message-IDs): sender_mime.c refuses or
 *	drops anything that could add a header or a recipient.
 *	Stream payloads are untrusted: the row's tenant, channel and contact
 *	decide where a message goes. Refuses to run as root unless
 *	TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>

#include "sender.h"

#define C struct sender_cfg
static const struct tn_env_spec sender_env[] = {
    TN_ENV_SECRET(TN_ENV_MASTER_KEY, "", C, master_key),
    TN_ENV_SECRET("TN_SUPPRESSION_KEY", "", C, suppression_key),
    TN_ENV_STR("TN_WHATSAPP_API_BASE", "https://graph.facebook.com", C, whatsapp_base),
    TN_ENV_STR("TN_WHATSAPP_API_VERSION", "v21.0", C, whatsapp_version),
    TN_ENV_STR("TN_TWILIO_API_BASE", "https://api.twilio.com", C, twilio_base),
    TN_ENV_STR("TN_TELEGRAM_API_BASE", "https://api.telegram.org", C, telegram_base),
    TN_ENV_STR("TN_GMAIL_API_BASE", "https://gmail.googleapis.com", C, gmail_base),
    TN_ENV_STR("TN_GOOGLE_CLIENT_ID", "", C, google_client_id),
    TN_ENV_SECRET("TN_GOOGLE_CLIENT_SECRET", "", C, google_client_secret),
    TN_ENV_STR("TN_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token", C, google_token_url),
    TN_ENV_STR("TN_SENDER_TWILIO_STATUS_URL", "", C, twilio_status_url),
    TN_ENV_INT("TN_SENDER_CONCURRENCY", "64", 1, 4096, C, concurrency),
    TN_ENV_INT("TN_SENDER_PG_POOL", "4", 1, 64, C, pg_pool),
    TN_ENV_MS("TN_SENDER_HTTP_TIMEOUT", "10s", 100, 120000, C, http_timeout_ms),
    TN_ENV_MS("TN_SENDER_POLL", "200ms", 10, 1000, C, poll_ms),
    TN_ENV_MS("TN_SENDER_LEASE", "60s", 1000, 3600000, C, lease_ms),
    TN_ENV_MS("TN_SENDER_ECHO_WAIT", "5m", 100, 86400000, C, echo_wait_ms),
    TN_ENV_MS("TN_SENDER_VISIBILITY", "30s", 500, 3600000, C, visibility_ms),
    TN_ENV_INT("TN_SENDER_MAX_ATTEMPTS", "8", 1, 100, C, max_attempts),
    TN_ENV_MS("TN_SENDER_RETRY_BASE", "2s", 10, 3600000, C, retry_base_ms),
    TN_ENV_MS("TN_SENDER_RETRY_CAP", "10m", 10, 86400000, C, retry_cap_ms),
    TN_ENV_INT("TN_SENDER_TENANT_BATCH", "16", 1, 4096, C, tenant_batch),
    TN_ENV_INT("TN_SENDER_RATE_WHATSAPP", "80", 0, 1000000, C, rate_whatsapp),
    TN_ENV_INT("TN_SENDER_RATE_TWILIO", "10", 0, 1000000, C, rate_twilio),
    TN_ENV_INT("TN_SENDER_RATE_TELEGRAM", "30", 0, 1000000, C, rate_telegram),
    TN_ENV_INT("TN_SENDER_RATE_TELEGRAM_CHAT", "1", 0, 1000000, C, rate_telegram_chat),
    TN_ENV_INT("TN_SENDER_SMTP_CONCURRENCY", "2", 1, 64, C, smtp_concurrency),
    TN_ENV_MS("TN_SENDER_INTAKE_WAIT", "50ms", 0, 1000, C, intake_wait_ms),
    TN_ENV_END,
};
#undef C

/* main - hand control to the daemon skeleton */
int main(void)
{
    static struct sender_ctx ctx;

    return tn_daemon_main(&(const struct tn_daemon){
        .name = "sender",
        .admin_default = "127.0.0.1:9104",
        .env = sender_env,
        .cfg = &ctx.cfg,
        .init = sender_init,
        .drain = sender_drain,
        .busy = sender_busy,
        .fini = sender_fini,
        .ready = sender_ready,
        .heartbeat = sender_heartbeat,
        .arg = &ctx,
    });
}
