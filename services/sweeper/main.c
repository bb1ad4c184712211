/*
 * NAME
 *	tern-sweeper - retention, erasure, export, restriction, disconnect and
 *	tenant offboarding
 * DESCRIPTION
 *	Runs in the shared daemon skeleton (tn_daemon). Consumes privacy
 *	requests from tern:privacy and, every TN_SWEEPER_INTERVAL, sweeps:
 *	offboards deleted tenants, purges rows past each tenant's retention
 *	(retain_*_days) in small batches, and trims the streams by age below
 *	what every consumer group has read. See sweeper.h for the flow.
 * STREAMS IN
 *	tern:privacy (group sweeper): privacy.request (tenant, request,
 *	data.kind erase|export|restrict|unrestrict|disconnect,
 *	data.subject.contact_id, data.account_id)
 * STREAMS OUT
 *	tern:privacy:dead (tn_consumer). Erasure XDELs the subject's entries
 *	on every tern:* stream, deletes their dedupe keys and their members
 *	of the schedule (tern:sched:<tenant>), and XADDs to tern:cal one
 *	cal.request v1 op delete_event (account_id, deletion_id: ids only)
 *	per calendar event of the erased bookings; trimming XTRIMs MINID.
 * DATABASE
 *	Every tenant-owned table (SELECT, DELETE; UPDATE where it redacts or
 *	flags), privacy_requests (upsert), suppressions and audit_log
 *	(INSERT), consent_events (INSERT: restrict), tenants (read, DELETE),
 *	calendar_deletions (INSERT: erasure, 0016), oauth_accounts (disconnect
 *	clears the tokens and the push_* channel columns).
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h (TN_ADMIN_LISTEN 127.0.0.1:9105);
 *	TN_SWEEPER_EXPORT_DIR (where exports are written, mode 0600);
 *	TN_SUPPRESSION_KEY(_FILE) (HMAC key of suppressed addresses; without
 *	it erasures are retried, never done half); TN_MASTER_KEY(_FILE)
 *	(opens OAuth tokens and mailbox secrets to revoke their grants;
 *	without it they are deleted and not revoked); TN_GOOGLE_REVOKE_URL; TN_GOOGLE_CALENDAR_BASE
 *	(channels.stop of a disconnected account's push channel, with its
 *	access token, before the revocation); TN_SWEEPER_INTERVAL,
 *	TN_SWEEPER_BATCH, TN_SWEEPER_BUDGET, TN_SWEEPER_STREAMS,
 *	TN_SWEEPER_STREAM_MAX_AGE, TN_SWEEPER_REVOKE_ATTEMPTS (below).
 * SECURITY
 *	The only daemon role allowed to DELETE (tern_sweeper); every statement
 *	runs in a transaction bound to one tenant (row-level security). Holds
 *	the suppression key and, optionally, the master key ring; a token it
 *	opens lives only in memory until revoked (an access token until its
 *	channel is stopped), then is wiped. Stream
 *	payloads are untrusted: ids are checked as UUIDs and the subject is
 *	looked up under the entry's tenant only. Logs carry ids and counts,
 *	never an address, name, text or token. Refuses to run as root unless
 *	TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>

#include "sweeper.h"

#define C struct sweeper_cfg

static const struct tn_env_spec sweeper_env[] = {
    TN_ENV_STR("TN_SWEEPER_EXPORT_DIR", "", C, export_dir),
    TN_ENV_SECRET("TN_SUPPRESSION_KEY", "", C, suppression_key),
    TN_ENV_SECRET(TN_ENV_MASTER_KEY, "", C, master_key),
    TN_ENV_STR("TN_GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke", C, revoke_url),
    TN_ENV_STR("TN_GOOGLE_CALENDAR_BASE", "https://www.googleapis.com/calendar/v3", C,
               calendar_base),
    TN_ENV_STR("TN_SWEEPER_STREAMS",
               "tern:in,tern:out,tern:status,tern:cal,tern:privacy,tern:in:dead,"
               "tern:out:dead,tern:status:dead,tern:cal:dead,tern:privacy:dead",
               C, streams),
    TN_ENV_MS("TN_SWEEPER_INTERVAL", "5m", 100, 86400000, C, interval_ms),
    TN_ENV_INT("TN_SWEEPER_BATCH", "500", 1, 100000, C, batch),
    TN_ENV_MS("TN_SWEEPER_BUDGET", "20s", 100, 3600000, C, budget_ms),
    TN_ENV_MS("TN_SWEEPER_STREAM_MAX_AGE", "7d", 0, 3650LL * 86400000, C, stream_max_age_ms),
    TN_ENV_INT("TN_SWEEPER_REVOKE_ATTEMPTS", "8", 1, 100, C, revoke_attempts),
    TN_ENV_END,
};

/* main - hand control to the daemon skeleton */
int main(void)
{
    static struct sweeper_ctx ctx;

    return tn_daemon_main(&(const struct tn_daemon){
        .name = "sweeper",
        .admin_default = "127.0.0.1:9105",
        .env = sweeper_env,
        .cfg = &ctx.cfg,
        .init = sweeper_init,
        .drain = sweeper_drain,
        .busy = sweeper_busy,
        .fini = sweeper_fini,
        .ready = sweeper_ready,
        .heartbeat = sweeper_heartbeat,
        .arg = &ctx,
    });
}
