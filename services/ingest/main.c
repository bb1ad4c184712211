/*
 * NAME
 *	tern-ingest - webhook ingester
 * DESCRIPTION
 *	The only daemon the internet talks to. Verifies, normalises,
 *	deduplicates and enqueues provider webhooks (WhatsApp Cloud, Twilio,
 *	Telegram), then answers at once; never calls a provider and never
 *	waits on Postgres in the request path (routing comes from a cache,
 *	ingest_routes.c). Runs in the shared daemon skeleton (tn_daemon):
 *	admin port with /healthz, /readyz and /metrics, heartbeat, SIGTERM
 *	drain (stop accepting, finish what was received). This file is the
 *	environment table; the skeleton's hooks are in ingest_daemon.c.
 * STREAMS IN
 *	HTTP: POST /webhooks/whatsapp (+ GET challenge),
 *	/webhooks/twilio/{channel}, /webhooks/telegram/{channel};
 *	GET /oauth/google/start and /oauth/google/callback (ingest_oauth.c);
 *	POST /webhooks/google/calendar (Google push, ingest_google.c)
 * STREAMS OUT
 *	tern:in (inbound.message), tern:status (delivery.status),
 *	tern:cal (cal.request op "connect", the sealed authorization code;
 *	op "push", a calendar changed)
 * DATABASE
 *	tern_routing() every TN_INGEST_ROUTES_REFRESH, off the request path.
 * ENVIRONMENT
 *	The shared variables of tn_daemon.h (TN_ADMIN_LISTEN defaults to
 *	127.0.0.1:9101) and those in the table below; README.md lists them.
 * SECURITY
 *	Everything it receives is hostile input. Channel secrets are opened
 *	with TN_MASTER_KEY and kept only in memory.
 *	Refuses to run as root unless TN_ALLOW_ROOT=1.
 */
#include <tn/tn_daemon.h>
#include <tn/tn_env.h>

#include "ingest_srv.h"

static const struct tn_env_spec ingest_env[] = {
    TN_ENV_STR("TN_INGEST_LISTEN", "127.0.0.1:8080", struct ingest_cfg, listen),
    TN_ENV_STR("TN_INGEST_PUBLIC_URL", "", struct ingest_cfg, public_url),
    TN_ENV_INT("TN_INGEST_MAX_BODY", "1048576", 1024, 64 << 20, struct ingest_cfg, max_body),
    TN_ENV_INT("TN_INGEST_MAX_HEADER", "16384", 1024, 1 << 20, struct ingest_cfg, max_header),
    TN_ENV_MS("TN_INGEST_READ_TIMEOUT", "10s", 100, 300000, struct ingest_cfg, read_timeout_ms),
    TN_ENV_MS("TN_INGEST_IDLE_TIMEOUT", "60s", 100, 3600000, struct ingest_cfg, idle_timeout_ms),
    TN_ENV_INT("TN_INGEST_MAX_CONNS", "4096", 1, 1000000, struct ingest_cfg, max_conns),
    TN_ENV_MS("TN_INGEST_DEDUPE_TTL", "7d", 1000, 30LL * 86400000, struct ingest_cfg, dedupe_ms),
    TN_ENV_MS("TN_INGEST_ROUTES_REFRESH", "5s", 100, 3600000, struct ingest_cfg, refresh_ms),
    TN_ENV_MS("TN_INGEST_REDIS_TIMEOUT", "2s", 50, 60000, struct ingest_cfg, redis_timeout_ms),
    TN_ENV_SECRET(TN_ENV_MASTER_KEY, "", struct ingest_cfg, master_key),
    TN_ENV_STR("TN_GOOGLE_CLIENT_ID", "", struct ingest_cfg, google_client_id),
    TN_ENV_STR("TN_GOOGLE_AUTH_URL", "https://accounts.google.com/o/oauth2/v2/auth",
               struct ingest_cfg, google_auth_url),
    TN_ENV_MS("TN_OAUTH_STATE_TTL", "15m", 60000, 86400000, struct ingest_cfg, oauth_state_ttl_ms),
    TN_ENV_END,
};

/* main - hand control to the daemon skeleton */
int main(void)
{
    static struct ingest_state state;

    ingest_arena_init();
    return tn_daemon_main(&(const struct tn_daemon){
        .name = "ingest",
        .admin_default = "127.0.0.1:9101",
        .env = ingest_env,
        .cfg = &state.cfg,
        .init = ingest_init,
        .drain = ingest_drain,
        .busy = ingest_busy,
        .fini = ingest_fini,
        .ready = ingest_ready,
        .heartbeat = ingest_heartbeat,
        .arg = &state,
    });
}
