/*
 * NAME
 *	tn_daemon - the skeleton every Tern daemon runs in
 * SYNOPSIS
 *	return tn_daemon_main(&(const struct tn_daemon){ .name = "sender", ... });
 * DESCRIPTION
 *	Postfix's *_server_main for libuv: it owns everything generic so that a
 *	service's main.c is a table and a call. Order: logging, environment,
 *	root check, loop and signals, Redis and the admin port, the service's
 *	init, the 1 Hz heartbeat, uv_run; on SIGTERM or SIGINT the service
 *	drains until it is idle or TN_DRAIN_TIMEOUT passes, then every handle is
 *	closed and the loop must close cleanly.
 *
 *	The admin port answers /healthz (the loop turns), /readyz (Redis
 *	answered PING recently and the service is ready; 503 while draining)
 *	and /metrics (Prometheus text).
 * RUNS ON
 *	the main thread; every callback here runs on the loop.
 * DIAGNOSTICS
 *	daemon.start, daemon.ready, daemon.drain, daemon.drain_timeout,
 *	daemon.stop; exit 78 on bad configuration, 70 if the loop would not
 *	close.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <tn/tn_buf.h>
#include <tn/tn_daemon.h>
#include <tn/tn_httpd.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#define HEARTBEAT_MS 1000
#define DRAIN_POLL_MS 50
#define PONG_FRESH_MS 2500

struct skel {
    const struct tn_daemon *d;
    struct tn_base_cfg base;
    struct tn_rt rt;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t heartbeat, drain_timer;
    struct tn_httpd *admin;
    int64_t started_ms, pong_ms, drain_deadline;
    bool draining, stopping, ping_inflight;
    struct tn_metric *m_up, *m_beats, *m_rss, *m_redis_up, *m_ready;
};

static const struct tn_env_spec base_env[] = {
    TN_ENV_SECRET(TN_ENV_REDIS_URL, "redis://127.0.0.1:6379", struct tn_base_cfg, redis_url),
    TN_ENV_SECRET(TN_ENV_PG_DSN, "", struct tn_base_cfg, pg_dsn),
    TN_ENV_STR("TN_ADMIN_LISTEN", NULL, struct tn_base_cfg, admin_listen),
    TN_ENV_MS("TN_DRAIN_TIMEOUT", "10s", 0, 600000, struct tn_base_cfg, drain_timeout_ms),
    TN_ENV_STR("TN_LOG_LEVEL", "info", struct tn_base_cfg, log_level),
    TN_ENV_STR("TN_HEARTBEAT_FILE", "", struct tn_base_cfg, heartbeat_file),
    TN_ENV_BOOL("TN_ALLOW_ROOT", "0", struct tn_base_cfg, allow_root),
    TN_ENV_END,
};

/* redis_ok - did Redis answer a PING recently? */
static bool redis_ok(const struct skel *s)
{
    return s->pong_ms != 0 && tn_mono_ms() - s->pong_ms < PONG_FRESH_MS;
}

/* is_ready - readiness and the reason when not */
static bool is_ready(struct skel *s, const char **why)
{
    *why = "ok";
    if (s->draining) {
        *why = "draining";
        return false;
    }
    if (!redis_ok(s)) {
        *why = "redis unreachable";
        return false;
    }
    if (s->d->ready != NULL && !s->d->ready(s->d->arg, why))
        return false;
    return true;
}

/* rss_bytes - resident set size from /proc/self/statm (0 if unknown) */
static double rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* admin_metrics - render /metrics */
static void admin_metrics(struct skel *s, struct tn_httpd_req *req)
{
    struct tn_buf out;
    const char *why;

    tn_metric_set(s->m_rss, rss_bytes());
    tn_metric_set(s->m_redis_up, redis_ok(s) ? 1 : 0);
    tn_metric_set(s->m_ready, is_ready(s, &why) ? 1 : 0);
    tn_buf_init(&out, 4 << 20);
    if (tn_metrics_render(s->rt.metrics, &out) != TN_OK) {
        tn_httpd_respond(req, 500, "text/plain", NULL, "metrics too large\n", 18);
    } else {
        tn_httpd_respond(req, 200, "text/plain; version=0.0.4", NULL, out.data ? out.data : "",
                         out.len);
    }
    tn_buf_free(&out);
}

/* admin_cb - the admin port's routes. Runs on: loop. */
static void admin_cb(struct tn_httpd_req *req, const struct tn_httpd_req_view *v, void *arg)
{
    struct skel *s = arg;
    const char *why;
    char body[160];
    int n;

    if (v->method_len != 3 || memcmp(v->method, "GET", 3) != 0) {
        tn_httpd_respond(req, 405, "text/plain", "Allow: GET\r\n", "method not allowed\n", 19);
    } else if (v->path_len == 8 && memcmp(v->path, "/healthz", 8) == 0) {
        tn_httpd_respond(req, 200, "text/plain", NULL, "ok\n", 3);
    } else if (v->path_len == 7 && memcmp(v->path, "/readyz", 7) == 0) {
        bool ok = is_ready(s, &why);

        n = snprintf(body, sizeof(body), "%s\n", ok ? "ready" : why);
        tn_httpd_respond(req, ok ? 200 : 503, "text/plain", NULL, body, (size_t)n);
    } else if (v->path_len == 8 && memcmp(v->path, "/metrics", 8) == 0) {
        admin_metrics(s, req);
    } else {
        tn_httpd_respond(req, 404, "text/plain", NULL, "not found\n", 10);
    }
}

/* pong_cb - PING answered. Runs on: loop. */
static void pong_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct skel *s = arg;

    (void)r;
    s->ping_inflight = false;
    if (err == TN_OK && reply != NULL && reply->type == REDIS_REPLY_STATUS)
        s->pong_ms = tn_mono_ms();
}

/* touch_file - the liveness file a supervisor can watch */
static void touch_file(const char *path)
{
    int fd;

    if (path == NULL || path[0] == '\0')
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!write(fd, "1\n", 2);
    close(fd);
}

/* heartbeat_cb - 1 Hz maintenance (serverCron). Runs on: loop. */
static void heartbeat_cb(uv_timer_t *t)
{
    struct skel *s = t->data;
    static const char *const ping[] = {"PING"};
    static const size_t ping_len[] = {4};

    tn_metric_inc(s->m_beats);
    touch_file(s->base.heartbeat_file);
    tn_log_flush_suppressed();
    if (!s->ping_inflight && tn_redis_connected(s->rt.redis) &&
        tn_redis_argv(s->rt.redis, 1, ping, ping_len, pong_cb, s) == TN_OK)
        s->ping_inflight = true;
    if (s->d->heartbeat != NULL && !s->stopping)
        s->d->heartbeat(&s->rt, s->d->arg);
}

/* close_handle - uv_close unless already closing */
static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* shutdown_all - close every handle; uv_run returns once they are gone */
static void shutdown_all(struct skel *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    if (s->d->fini != NULL)
        s->d->fini(&s->rt, s->d->arg);
    tn_httpd_close(s->admin);
    s->admin = NULL;
    tn_redis_close(s->rt.redis);
    s->rt.redis = NULL;
    close_handle((uv_handle_t *)&s->heartbeat);
    close_handle((uv_handle_t *)&s->drain_timer);
    close_handle((uv_handle_t *)&s->sigterm);
    close_handle((uv_handle_t *)&s->sigint);
}

/* drain_tick_cb - wait for the service to go idle or the deadline. Runs on: loop. */
static void drain_tick_cb(uv_timer_t *t)
{
    struct skel *s = t->data;
    bool busy = s->d->busy != NULL && s->d->busy(s->d->arg);

    if (busy && tn_mono_ms() < s->drain_deadline)
        return;
    if (busy)
        tn_log_warn(NULL, "daemon.drain_timeout",
                    TN_KV_INT("timeout_ms", s->base.drain_timeout_ms));
    uv_timer_stop(t);
    shutdown_all(s);
}

/* signal_cb - SIGTERM/SIGINT: drain; a second signal stops at once. Runs on: loop. */
static void signal_cb(uv_signal_t *h, int signum)
{
    struct skel *s = h->data;

    if (s->draining) {
        tn_log_warn(NULL, "daemon.forced_stop", TN_KV_INT("signal", signum));
        s->drain_deadline = 0;
        return;
    }
    s->draining = true;
    s->drain_deadline = tn_mono_ms() + s->base.drain_timeout_ms;
    tn_log_info(NULL, "daemon.drain", TN_KV_INT("signal", signum),
                TN_KV_INT("deadline_ms", s->base.drain_timeout_ms));
    if (s->d->drain != NULL)
        s->d->drain(&s->rt, s->d->arg);
    uv_timer_start(&s->drain_timer, drain_tick_cb, 0, DRAIN_POLL_MS);
}

/* load_config - the shared table, then the service's; all errors at once */
static void load_config(struct skel *s)
{
    enum tn_log_level lvl = TN_LOG_INFO;
    bool bad = tn_env_load(base_env, &s->base) != TN_OK;

    if (s->d->env != NULL && tn_env_load(s->d->env, s->d->cfg) != TN_OK)
        bad = true;
    if (s->base.log_level != NULL && tn_log_level_parse(s->base.log_level, &lvl) != TN_OK) {
        tn_log_error(NULL, "config.invalid", TN_KV_STR("var", "TN_LOG_LEVEL"));
        bad = true;
    }
    if (bad)
        tn_fatal("config.rejected", TN_KV_STR("hint", "see config.invalid lines above"));
    tn_log_init(s->d->name, lvl);
    if (s->base.admin_listen == NULL)
        s->base.admin_listen = tn_xstrdup(s->d->admin_default);
    tn_env_log(base_env, &s->base);
    if (s->d->env != NULL)
        tn_env_log(s->d->env, s->d->cfg);
}

/* register_metrics - the skeleton's own series */
static void register_metrics(struct skel *s)
{
    struct tn_metrics *m = s->rt.metrics;

    s->m_up = tn_metrics_get(m, TN_METRIC_GAUGE, "tern_up", "1 while the daemon runs", NULL);
    s->m_beats = tn_metrics_get(m, TN_METRIC_COUNTER, "tern_heartbeats_total",
                                "Heartbeats since start (stops growing if the loop stalls)", NULL);
    s->m_rss = tn_metrics_get(m, TN_METRIC_GAUGE, "process_resident_memory_bytes",
                              "Resident memory size in bytes", NULL);
    s->m_redis_up = tn_metrics_get(m, TN_METRIC_GAUGE, "tern_redis_up",
                                   "1 when Redis answered PING in the last 2.5 s", NULL);
    s->m_ready = tn_metrics_get(m, TN_METRIC_GAUGE, "tern_ready", "1 when /readyz is 200", NULL);
    tn_metric_set(s->m_up, 1);
}

/* start - everything up to uv_run; fatal on failure (before the loop runs) */
static void start(struct skel *s)
{
    struct tn_redis_opts ro = {.name = s->d->name};
    struct tn_httpd_opts ho = {.listen = s->base.admin_listen, .max_body = 4096};
    enum tn_err err;

    if (uv_loop_init(&s->loop) != 0)
        tn_fatal("daemon.loop_init_failed");
    s->rt.loop = &s->loop;
    s->rt.base = &s->base;
    s->rt.name = s->d->name;
    s->rt.metrics = tn_metrics_new();
    register_metrics(s);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    uv_timer_init(&s->loop, &s->heartbeat);
    uv_timer_init(&s->loop, &s->drain_timer);
    s->sigterm.data = s->sigint.data = s->heartbeat.data = s->drain_timer.data = s;
    uv_signal_start(&s->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&s->sigint, signal_cb, SIGINT);
    s->rt.redis = tn_redis_new(&s->loop, s->base.redis_url, &ro);
    if (s->rt.redis == NULL)
        tn_fatal("config.invalid", TN_KV_STR("var", "TN_REDIS_URL"));
    s->admin = tn_httpd_new(&s->loop, &ho, admin_cb, s);
    if (s->admin == NULL)
        tn_fatal("daemon.admin_listen_failed", TN_KV_STR("listen", s->base.admin_listen));
    err = s->d->init != NULL ? s->d->init(&s->rt, s->d->arg) : TN_OK;
    if (err != TN_OK)
        tn_fatal("daemon.init_failed", TN_KV_ERR(err));
    uv_timer_start(&s->heartbeat, heartbeat_cb, 0, HEARTBEAT_MS);
}

/* tn_daemon_main - run one daemon */
int tn_daemon_main(const struct tn_daemon *d)
{
    static struct skel s; /* storage for main's lifetime; reached only via handles */
    int rc;

    s.d = d;
    tn_log_init(d->name, TN_LOG_INFO);
    load_config(&s);
    if (geteuid() == 0 && !s.base.allow_root)
        tn_fatal("security.root", TN_KV_STR("hint", "run as the service user, or set "
                                                    "TN_ALLOW_ROOT=1 for local development"));
    signal(SIGPIPE, SIG_IGN);
    start(&s);
    s.started_ms = tn_mono_ms();
    tn_log_info(NULL, "daemon.start", TN_KV_STR("admin", s.base.admin_listen),
                TN_KV_INT("pid", getpid()));
    uv_run(&s.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&s.loop);
    tn_metrics_free(s.rt.metrics);
    if (d->env != NULL)
        tn_env_free(d->env, d->cfg);
    tn_env_free(base_env, &s.base);
    if (rc != 0) {
        tn_log_error(NULL, "daemon.loop_not_closed", TN_KV_STR("why", uv_strerror(rc)));
        return 70;
    }
    tn_log_info(NULL, "daemon.stop", TN_KV_INT("uptime_ms", tn_mono_ms() - s.started_ms));
    return 0;
}
