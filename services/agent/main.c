/*
 * NAME
 *	tern-agent - AI reply worker
 * DESCRIPTION
 *	Runs in the shared daemon skeleton (tn_daemon): admin port with
 *	/healthz, /readyz and /metrics, 1 Hz heartbeat, SIGTERM drain.
 *	XXX: the agent's own work is not built yet (see README.md, "Status");
 *	today it starts, reports health and readiness, and drains cleanly.
 * STREAMS IN
 *	tern:in (group agent): inbound.message (planned)
 * STREAMS OUT
 *	tern:out: outbound.message (planned)
 * DATABASE
 *	contacts, conversations, messages, leads (planned)
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h; TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9102.
 * SECURITY
 *	Will hold the LLM API key (TN_LLM_API_KEY), and only this daemon.
 *	Refuses to run as root unless TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>

/* main - hand control to the daemon skeleton */
int main(void)
{
    return tn_daemon_main(&(const struct tn_daemon){
        .name = "agent",
        .admin_default = "127.0.0.1:9102",
    });
}
