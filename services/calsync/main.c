/*
 * NAME
 *	tern-calsync - calendar sync worker
 * DESCRIPTION
 *	Mirrors bookings (Postgres, the source of truth) into the business's
 *	CalDAV or Google calendars and imports their busy time, in the shared
 *	daemon skeleton (admin port, heartbeat, SIGTERM drain). Each booking
 *	becomes one event with a deterministic id ("tern" + the booking id
 *	without dashes: the CalDAV UID and the Google event id) marked as
 *	Tern's (CalDAV: X-TERN-BOOKING; Google: extendedProperties.private
 *	tern_booking); reschedule updates it (If-Match), cancel deletes it,
 *	and an event without Tern's mark is never modified or deleted. Busy
 *	time is read with calendar-query REPORTs (CalDAV) or events.list
 *	(Google), start and end only. Google accounts are connected from
 *	tern-ingest's OAuth callback (op connect: code exchange with PKCE,
 *	identity, sealed tokens); access tokens are refreshed ahead of expiry,
 *	one refresh in flight per account, and invalid_grant flags the account
 *	for reconnection. Two-way: every busy-time import also notes Tern's
 *	own events; a booking whose event is missing or at other times is
 *	checked with a GET of its event, and an event the business deleted
 *	cancels the booking and tells the lead (a notice on tern:out), one it
 *	moved moves the booking (tern-agent's scan tells the lead). After a
 *	disconnect (tern-sweeper) an account gets no calls: its bookings are
 *	recorded as having no calendar. See calsync_job.c, calsync_caldav.c
 *	(its REPORT answers are read on the threadpool within an import's
 *	bounds: calsync_report.c), calsync_google.c (Google's answers are
 *	read by calsync_gparse.c), calsync_gtoken.c, calsync_gconnect.c and
 *	calsync_twoway.c.
 *	Google push channels (calsync_gwatch.c): with a push address
 *	configured, every live Google account gets an events.watch channel
 *	(the scan opens one after connect and a new one before the old
 *	expires, then stops the old one; op watch forces a new one); a push
 *	(op push, from tern-ingest) imports the account's busy time at once,
 *	so an owner's delete or move is acted on in seconds; op disconnect
 *	stops the channel. Erasure: op delete_event (from tern-sweeper, or
 *	the scan for a row whose entry was lost) deletes Tern's event of an
 *	erased booking, found through its calendar_deletions row, with the
 *	mirror's own checks (only an event with Tern's mark for that
 *	booking).
 * STREAMS IN
 *	tern:cal (group calsync): cal.request v1; data.op book | reschedule |
 *	cancel with booking_id, sync with account_id, connect with oauth
 *	{provider, code_sealed, redirect_uri, resource_id?}, push with
 *	account_id and push{channel_id, resource_state, token_ok, ...},
 *	watch and disconnect with account_id, delete_event with account_id
 *	and deletion_id.
 * STREAMS OUT
 *	tern:out: outbound.message v1 (reason notice) telling a lead that the
 *	business cancelled the appointment in its calendar; tern:cal:dead
 *	through tn_consumer.
 * DATABASE
 *	bookings (read; update of the mirror columns), services, tenants
 *	(calendar_send_updates; time_zone, in which all-day and floating
 *	calendar times are read unless Google names the calendar's zone),
 *	oauth_accounts (read; connect upserts Google accounts, refresh
 *	stores tokens, invalid_grant sets needs_reconnect),
 *	audit_log (insert: calendar.connected, calendar.reconnect_needed),
 *	busy_blocks (replaced through tern_busy_replace), and the scans
 *	tern_calsync_pending / tern_calsync_accounts_due (ids only). Two-way
 *	(0010): tern_calsync_provider_cancel (booking cancelled, reminders
 *	canceled, the notice's outbound_messages and messages rows, audit
 *	booking.cancelled_in_calendar), tern_calsync_provider_move (the
 *	booking's times, audit booking.moved_in_calendar),
 *	tern_calsync_enqueued. Push (0012): oauth_accounts.push_* (the
 *	channel id, resource id, token hash and expiry), tern_calsync_watch_due.
 *	Erasure (0016): calendar_deletions (read), tern_calsync_deletions_due,
 *	tern_calsync_event_deleted.
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h (TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9103), TN_MASTER_KEY[_FILE] (opens calendar credentials),
 *	TN_CALSYNC_PG_POOL (4), TN_CALSYNC_HTTP_TIMEOUT (15s),
 *	TN_CALSYNC_SCAN_INTERVAL (5s), TN_CALSYNC_BUSY_INTERVAL (5m),
 *	TN_CALSYNC_BUSY_DAYS (60), TN_CALSYNC_VISIBILITY (60s),
 *	TN_CALSYNC_REFRESH_AHEAD (5m), TN_GOOGLE_CLIENT_ID,
 *	TN_GOOGLE_CLIENT_SECRET[_FILE], TN_GOOGLE_TOKEN_URL,
 *	TN_GOOGLE_USERINFO_URL (empty: identity from the id_token),
 *	TN_GOOGLE_CALENDAR_BASE, TN_CALSYNC_CANCELLED_TEXT (the lead's notice
 *	of a calendar-side cancel; {service} and {when} are replaced;
 *	agent_profiles.booking_cancelled overrides it per tenant),
 *	TN_GOOGLE_PUSH_URL (the push channels' address; default
 *	TN_INGEST_PUBLIC_URL + /webhooks/google/calendar; neither: no push
 *	channels), TN_CALSYNC_WATCH_TTL (7d, the lifetime asked; Google may
 *	cap it), TN_CALSYNC_WATCH_AHEAD (1h, renew this long before expiry).
 * SECURITY
 *	Holds calendar credentials and OAuth tokens, sealed at rest
 *	(oauth_accounts, AES-256-GCM, aad "oauth:<tenant>:<account>:access" /
 *	":refresh"); opened only in a job's memory (and the newest access token
 *	per account in the refresh state), wiped after use, never logged. A
 *	push channel's token is random, sent once to Google and stored only as
 *	its SHA-256. The
 *	Google client secret comes from the environment or a file. An OAuth
 *	code arrives sealed for its tenant and request, so an entry cannot
 *	attach a calendar to another tenant. Calendar servers are untrusted:
 *	responses are size-capped (8 MiB), JSON is parsed with jansson, XML
 *	is parsed without network or entity expansion, iCalendar with libical;
 *	a calendar's zone name reaches libical (which opens the tz database
 *	file of that name) only when shaped like a tz database name.
 *	Postgres role tern_calsync may change only the mirror columns of
 *	bookings; a calendar-side cancel or move goes through the SECURITY
 *	DEFINER functions of 0010, bound to the tenant. A notice
 *	carries the lead's address to tern:out; it is never logged. Refuses to run as root unless
 *TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>

#include "calsync.h"

static const struct tn_env_spec calsync_env[] = {
    TN_ENV_SECRET(TN_ENV_MASTER_KEY, "", struct calsync_cfg, master_key),
    TN_ENV_INT("TN_CALSYNC_PG_POOL", "4", 1, 64, struct calsync_cfg, pg_pool),
    TN_ENV_MS("TN_CALSYNC_HTTP_TIMEOUT", "15s", 1000, 120000, struct calsync_cfg, http_timeout_ms),
    TN_ENV_MS("TN_CALSYNC_SCAN_INTERVAL", "5s", 100, 3600000, struct calsync_cfg, scan_ms),
    TN_ENV_MS("TN_CALSYNC_BUSY_INTERVAL", "5m", 1000, 86400000, struct calsync_cfg, busy_ms),
    TN_ENV_INT("TN_CALSYNC_BUSY_DAYS", "60", 1, 730, struct calsync_cfg, busy_days),
    TN_ENV_MS("TN_CALSYNC_VISIBILITY", "60s", 1000, 3600000, struct calsync_cfg, visibility_ms),
    TN_ENV_STR("TN_GOOGLE_CLIENT_ID", "", struct calsync_cfg, google_client_id),
    TN_ENV_SECRET("TN_GOOGLE_CLIENT_SECRET", "", struct calsync_cfg, google_client_secret),
    TN_ENV_STR("TN_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token", struct calsync_cfg,
               google_token_url),
    TN_ENV_STR("TN_GOOGLE_USERINFO_URL", "https://openidconnect.googleapis.com/v1/userinfo",
               struct calsync_cfg, google_userinfo_url),
    TN_ENV_STR("TN_GOOGLE_CALENDAR_BASE", "https://www.googleapis.com/calendar/v3",
               struct calsync_cfg, google_calendar_base),
    TN_ENV_MS("TN_CALSYNC_REFRESH_AHEAD", "5m", 0, 3600000, struct calsync_cfg, refresh_ahead_ms),
    TN_ENV_STR("TN_CALSYNC_CANCELLED_TEXT",
               "Your {service} on {when} has been cancelled by the business. Reply here if you"
               " would like a new time.",
               struct calsync_cfg, cancelled_text),
    TN_ENV_STR("TN_GOOGLE_PUSH_URL", "", struct calsync_cfg, push_url),
    TN_ENV_STR("TN_INGEST_PUBLIC_URL", "", struct calsync_cfg, ingest_public_url),
    TN_ENV_MS("TN_CALSYNC_WATCH_TTL", "7d", 60000, 2592000000, struct calsync_cfg, watch_ttl_ms),
    TN_ENV_MS("TN_CALSYNC_WATCH_AHEAD", "1h", 1000, 86400000, struct calsync_cfg, watch_ahead_ms),
    TN_ENV_END,
};

/* main - hand control to the daemon skeleton */
int main(void)
{
    static struct calsync_ctx ctx;

    return tn_daemon_main(&(const struct tn_daemon){
        .name = "calsync",
        .admin_default = "127.0.0.1:9103",
        .env = calsync_env,
        .cfg = &ctx.cfg,
        .init = calsync_init,
        .drain = calsync_drain,
        .busy = calsync_busy,
        .fini = calsync_fini,
        .ready = calsync_ready,
        .heartbeat = calsync_heartbeat,
        .arg = &ctx,
    });
}
