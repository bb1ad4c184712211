/*
 * NAME
 *	tern-calsync - calendar sync worker
 * DESCRIPTION
 *	Mirrors bookings (Postgres, the source of truth) into the business's
 *	CalDAV calendars and imports their busy time, in the shared daemon
 *	skeleton (admin port, heartbeat, SIGTERM drain). Each booking becomes
 *	one event with a deterministic UID ("tern" + the booking id without
 *	dashes) and the marker property X-TERN-BOOKING; reschedule updates it
 *	(If-Match), cancel deletes it, and an event without Tern's marker is
 *	never modified or deleted. Busy time is read with calendar-query
 *	REPORTs (start and end only). See calsync_job.c and calsync_caldav.c.
 *	XXX: the Google provider (OAuth exchange and refresh, events, freeBusy,
 *	push) is not built: its ops are dead-lettered.
 * STREAMS IN
 *	tern:cal (group calsync): cal.request v1; data.op book | reschedule |
 *	cancel with booking_id, sync with account_id.
 * STREAMS OUT
 *	none (tern:cal:dead through tn_consumer).
 * DATABASE
 *	bookings (read; update of the mirror columns), services, oauth_accounts
 *	(read), busy_blocks (replaced through tern_busy_replace), and the scans
 *	tern_calsync_pending / tern_calsync_accounts_due (ids only).
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h (TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9103), TN_MASTER_KEY[_FILE] (opens calendar credentials),
 *	TN_CALSYNC_PG_POOL (4), TN_CALSYNC_HTTP_TIMEOUT (15s),
 *	TN_CALSYNC_SCAN_INTERVAL (5s), TN_CALSYNC_BUSY_INTERVAL (5m),
 *	TN_CALSYNC_BUSY_DAYS (60), TN_CALSYNC_VISIBILITY (60s).
 * SECURITY
 *	Holds calendar credentials, sealed at rest (oauth_accounts, AES-256-GCM,
 *	aad "oauth:<tenant>:<account>:access"); opened only in a job's memory,
 *	never logged. Calendar servers are untrusted: responses are size-capped
 *	(8 MiB), XML is parsed without network or entity expansion, iCalendar
 *	with libical. Postgres role tern_calsync may change only the mirror
 *	columns of bookings. Refuses to run as root unless TN_ALLOW_ROOT=1.
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
        .arg = &ctx,
    });
}
