/*
 * NAME
 *	tern-ingest - webhook ingester
 * DESCRIPTION
 *	Runs in the shared daemon skeleton (tn_daemon): admin port with
 *	/healthz, /readyz and /metrics, 1 Hz heartbeat, SIGTERM drain.
 *	XXX: the ingest's own work is not built yet (see README.md, "Status");
 *	today it starts, reports health and readiness, and drains cleanly.
 * STREAMS IN
 *	HTTP: provider webhooks (planned)
 * STREAMS OUT
 *	tern:in, tern:status (planned)
 * DATABASE
 *	none in the request path
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h; TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9101.
 * SECURITY
 *	Everything it receives is hostile input.
 *	Refuses to run as root unless TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>

/* main - hand control to the daemon skeleton */
int main(void)
{
    return tn_daemon_main(&(const struct tn_daemon){
        .name = "ingest",
        .admin_default = "127.0.0.1:9101",
    });
}
