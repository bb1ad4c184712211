#ifndef TN_DAEMON_H
#define TN_DAEMON_H
/*
 * tn_daemon - the skeleton every daemon's main() hands control to (STYLE.md
 * R6, R25): logging, the environment (the shared table below plus the
 * service's own), refusal to run as root, the libuv loop, SIGTERM/SIGINT
 * drain with a deadline, a 1 Hz heartbeat that touches a liveness file, an
 * admin HTTP port serving /healthz, /readyz and /metrics, and a clean close
 * (uv_loop_close() == 0, else exit 70).
 *
 * Shared environment (every daemon):
 *   TN_REDIS_URL        redis://user:pass@host:port (secret: redacted in logs)
 *   TN_PG_DSN           libpq connection string (secret), may be empty for
 *                       daemons that do not use Postgres
 *   TN_ADMIN_LISTEN     admin port address (default per daemon, see README)
 *   TN_DRAIN_TIMEOUT    how long SIGTERM waits for in-flight work (default 10s)
 *   TN_LOG_LEVEL        debug | info | warn | error (default info)
 *   TN_HEARTBEAT_FILE   touched every second (default: none)
 *   TN_ALLOW_ROOT       1 to allow uid 0 (local development only)
 *
 * Readiness: /readyz is 200 only when the skeleton's Redis connection is up
 * (PING answered within the last heartbeat) and the service's ready hook, if
 * any, says yes; otherwise 503 with the reason in the body.
 */
#include <stdbool.h>
#include <stdint.h>

#include <tn/tn_env.h>
#include <tn/tn_err.h>

struct uv_loop_s;
struct tn_buf;
struct tn_metrics;
struct tn_redis;

/* The shared settings, parsed before the service's own. */
struct tn_base_cfg {
    char *redis_url;
    char *pg_dsn;
    char *admin_listen;
    int64_t drain_timeout_ms;
    char *log_level;
    char *heartbeat_file;
    bool allow_root;
};

/* What a service's hooks get. All borrowed, valid from init until fini returns. */
struct tn_rt {
    struct uv_loop_s *loop;
    const struct tn_base_cfg *base;
    struct tn_metrics *metrics; /* register the service's metrics here */
    struct tn_redis *redis;     /* the skeleton's connection, usable for commands */
    const char *name;           /* "ingest" */
};

struct tn_daemon {
    const char *name;              /* "ingest": the log svc and tern-<name> */
    const char *admin_default;     /* default TN_ADMIN_LISTEN, e.g. "127.0.0.1:9101" */
    const struct tn_env_spec *env; /* the service's table (may be NULL) */
    void *cfg;                     /* where env is parsed into */
    /* init - open connections, start consumers. Runs on: loop thread, before
     * uv_run. An error stops the daemon with exit 78 (configuration). */
    enum tn_err (*init)(struct tn_rt *rt, void *arg);
    /* drain - SIGTERM: stop intake; in-flight work continues. Runs on: loop. */
    void (*drain)(struct tn_rt *rt, void *arg);
    /* busy - true while in-flight work remains (the drain waits for false or
     * the deadline). NULL: never busy. Runs on: loop. */
    bool (*busy)(void *arg);
    /* fini - close every handle the service opened. Runs on: loop. */
    void (*fini)(struct tn_rt *rt, void *arg);
    /* ready - service-specific readiness (NULL: always). why: static text. */
    bool (*ready)(void *arg, const char **why);
    /* heartbeat - 1 Hz maintenance. Runs on: loop. May be NULL. */
    void (*heartbeat)(struct tn_rt *rt, void *arg);
    void *arg;
};

/* tn_daemon_main - run the daemon until SIGTERM/SIGINT. d borrowed.
 * Returns: the process exit status (0 after a clean drain). */
int tn_daemon_main(const struct tn_daemon *d);

#endif
