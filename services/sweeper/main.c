/*
 * NAME
 *	tern-sweeper - retention, erasure, export and disconnect
 * DESCRIPTION
 *	Runs in the shared daemon skeleton (tn_daemon): admin port with
 *	/healthz, /readyz and /metrics, 1 Hz heartbeat, SIGTERM drain.
 *	XXX: the sweeper's own work is not built yet (see README.md, "Status");
 *	today it starts, reports health and readiness, and drains cleanly.
 * STREAMS IN
 *	tern:privacy (group sweeper) (planned)
 * STREAMS OUT
 *	none
 * DATABASE
 *	every tenant-owned table, DELETE (planned)
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h; TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9105.
 * SECURITY
 *	The only role allowed to DELETE.
 *	Refuses to run as root unless TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>

/* main - hand control to the daemon skeleton */
int main(void)
{
    return tn_daemon_main(&(const struct tn_daemon){
        .name = "sweeper",
        .admin_default = "127.0.0.1:9105",
    });
}
