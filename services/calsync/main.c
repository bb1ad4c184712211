/*
 * NAME
 *	tern-calsync - calendar sync worker
 * DESCRIPTION
 *	Runs in the shared daemon skeleton (tn_daemon): admin port with
 *	/healthz, /readyz and /metrics, 1 Hz heartbeat, SIGTERM drain.
 *	XXX: the calsync's own work is not built yet (see README.md, "Status");
 *	today it starts, reports health and readiness, and drains cleanly.
 * STREAMS IN
 *	tern:cal (group calsync) (planned)
 * STREAMS OUT
 *	none yet
 * DATABASE
 *	oauth_accounts, bookings (planned)
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h; TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9103.
 * SECURITY
 *	Will hold OAuth refresh tokens, encrypted at rest; only this daemon decrypts them.
 *	Refuses to run as root unless TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>

/* main - hand control to the daemon skeleton */
int main(void)
{
    return tn_daemon_main(&(const struct tn_daemon){
        .name = "calsync",
        .admin_default = "127.0.0.1:9103",
    });
}
