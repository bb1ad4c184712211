/*
 * NAME
 *	tn_redis - hiredis async on libuv: AUTH, reconnect, command timeouts
 * SYNOPSIS
 *	struct tn_redis *r = tn_redis_new(loop, cfg->redis_url, &(struct tn_redis_opts){
 *	    .name = "sender" });
 *	tn_redis_xadd(r, "tern:out", fields, NULL, 6, on_added_cb, job);
 *	tn_redis_close(r);
 * DESCRIPTION
 *	One connection per struct tn_redis. Connecting pipelines the handshake
 *	(AUTH, SELECT, CLIENT SETNAME, PING) right behind the TCP connect; the
 *	connection counts as up when PING answers. Any failure drops the
 *	context and a uv_timer_t reconnects after tn_backoff (reset once up).
 *
 *	The libuv adapter of hiredis 0.14 ignores libuv's error status (POLLERR
 *	on a refused connect), so its poll hooks are replaced after
 *	redisLibuvAttach with the version hiredis 1.0 ships (see poll_cb).
 *
 *	Dropping sets ac->data to NULL before redisAsyncFree so that the
 *	hiredis connect/disconnect callbacks of a context we gave up on are
 *	ignored; command callbacks compare the context they were sent on with
 *	the current one. redisAsyncFree called from inside a reply callback is
 *	deferred by hiredis until that callback returns, still within the same
 *	loop iteration, so the struct itself is freed only from the close
 *	callbacks of its two timers, which libuv runs after that.
 *
 *	This file holds the life cycle and the connection (connect, handshake,
 *	reconnect, the poll hooks). Commands and their timeouts are in
 *	tn_redis_cmd.c, URLs and reply helpers in tn_redis_url.c; what the
 *	first two share is in tn_redis_int.h.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	redis.connected, redis.disconnected, redis.connect_failed,
 *	redis.auth_failed, redis.handshake_failed. Passwords are never logged.
 */
#include <stdio.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "tn_redis_int.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_BASE_MS 100
#define DEFAULT_CAP_MS 5000

static void start_connect(struct tn_redis *r);

/* retry_cb - the reconnect timer fired */
static void retry_cb(uv_timer_t *t)
{
    start_connect(t->data);
}

/* schedule_reconnect - try again after the next backoff delay */
static void schedule_reconnect(struct tn_redis *r)
{
    if (r->closing)
        return;
    uv_timer_start(&r->retry_timer, retry_cb, tn_backoff_next(&r->backoff), 0);
}

/* tn__redis_drop - give up the current context: pending commands fail, reconnect later */
void tn__redis_drop(struct tn_redis *r)
{
    redisAsyncContext *ac = r->ac;

    if (ac == NULL)
        return;
    if (r->connected)
        tn_log_warn(NULL, "redis.disconnected", TN__REDIS_LOG_CONN(r), TN_KV_STR("why", "dropped"));
    r->ac = NULL;
    r->connected = false;
    ac->data = NULL;
    redisAsyncFree(ac); /* runs every pending callback (now, or after the current one) */
    schedule_reconnect(r);
}

/* current - is a handshake reply for the context we still hold (replies of a
 * dropped context arrive as NULL after r->ac was cleared) */
static bool current(const struct tn_redis *r)
{
    return r->ac != NULL && !r->connected && !r->closing;
}

/* auth_cb - AUTH answered */
static void auth_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    (void)arg;
    if (!current(r) || err == TN_EUNAVAIL || err == TN_ECANCELED)
        return;
    if (err == TN_OK && reply->type != REDIS_REPLY_ERROR)
        return;
    tn_log_error(NULL, "redis.auth_failed", TN__REDIS_LOG_CONN(r),
                 TN_KV_STR("user", r->url.user != NULL ? r->url.user : "default"),
                 TN_KV_STR("detail", reply != NULL ? reply->str : tn_strerror(err)));
    tn__redis_drop(r);
}

/* step_cb - SELECT answered: an error ends this attempt */
static void step_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    (void)arg;
    if (!current(r) || err == TN_EUNAVAIL || err == TN_ECANCELED)
        return;
    if (err == TN_OK && reply->type != REDIS_REPLY_ERROR)
        return;
    tn_log_error(NULL, "redis.handshake_failed", TN__REDIS_LOG_CONN(r), TN_KV_INT("db", r->url.db),
                 TN_KV_STR("detail", reply != NULL ? reply->str : tn_strerror(err)));
    tn__redis_drop(r);
}

/* ready_cb - PING answered after the handshake: the connection is up */
static void ready_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    (void)arg;
    if (!current(r) || err != TN_OK)
        return; /* the connection is already gone */
    if (reply->type == REDIS_REPLY_ERROR) {
        /* A failed AUTH or SELECT has dropped the connection already (not
         * current any more); what is left is PING refused, typically
         * "-LOADING" while a restarted server replays its AOF: try again
         * later rather than sit on a link that will never be marked up. */
        tn_log_warn(NULL, "redis.handshake_failed", TN__REDIS_LOG_CONN(r),
                    TN_KV_STR("detail", reply->str));
        tn__redis_drop(r);
        return;
    }
    r->connected = true;
    tn_backoff_reset(&r->backoff);
    tn_log_info(NULL, "redis.connected", TN__REDIS_LOG_CONN(r), TN_KV_INT("db", r->url.db));
    if (r->on_connect != NULL)
        r->on_connect(r, r->on_connect_arg);
}

/* handshake - pipeline AUTH, SELECT, CLIENT SETNAME and PING */
static enum tn_err handshake(struct tn_redis *r)
{
    const char *auth[3] = {"AUTH", r->url.user, r->url.password};
    char db[16];
    const char *sel[2] = {"SELECT", db};
    const char *setname[3] = {"CLIENT", "SETNAME", r->name};
    const char *ping[1] = {"PING"};
    enum tn_err err = TN_OK;

    if (r->url.password != NULL && r->url.user != NULL)
        err = tn__redis_send_cmd(r, 0, true, 3, auth, NULL, auth_cb, NULL);
    else if (r->url.password != NULL)
        err = tn__redis_send_cmd(r, 0, true, 2, (const char *[]){"AUTH", r->url.password}, NULL,
                                 auth_cb, NULL);
    if (err == TN_OK && r->url.db != 0) {
        snprintf(db, sizeof(db), "%d", r->url.db);
        err = tn__redis_send_cmd(r, 0, true, 2, sel, NULL, step_cb, NULL);
    }
    if (err == TN_OK)
        err =
            tn__redis_send_cmd(r, 0, true, 3, setname, NULL, NULL, NULL); /* ACL may refuse: fine */
    if (err == TN_OK)
        err = tn__redis_send_cmd(r, 0, true, 1, ping, NULL, ready_cb, NULL);
    return err;
}

/* connect_cb - hiredis finished (or failed) the TCP connect */
static void connect_cb(const redisAsyncContext *ac, int status)
{
    struct tn_redis *r = ac->data;

    if (r == NULL || ac != r->ac || status == REDIS_OK)
        return;
    tn_log_warn(NULL, "redis.connect_failed", TN__REDIS_LOG_CONN(r),
                TN_KV_STR("detail", ac->errstr));
    r->ac = NULL; /* hiredis frees it after this callback */
    schedule_reconnect(r);
}

/* disconnect_cb - hiredis lost a connected context */
static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct tn_redis *r = ac->data;

    if (r == NULL || ac != r->ac)
        return;
    tn_log_warn(NULL, "redis.disconnected", TN__REDIS_LOG_CONN(r),
                TN_KV_STR("detail", status == REDIS_OK ? "closed" : ac->errstr));
    r->ac = NULL;
    r->connected = false;
    schedule_reconnect(r);
}

/* poll_cb - hiredis 0.14's redisLibuvPoll with the fix hiredis 1.0 made:
 * libuv reports POLLERR (a refused or reset connection) as status UV_EBADF
 * with no events, which 0.14's adapter ignores, so a refused connect would
 * hang until the command timeout. Like 1.0, let hiredis find the error by
 * handling the events it was waiting for. */
static void poll_cb(uv_poll_t *handle, int status, int events)
{
    redisLibuvEvents *p = handle->data;
    int ev = status != 0 ? p->events : events;

    if (p->context != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(p->context);
    if (p->context != NULL && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
}

/* poll_update - (re)start or stop the poll handle for p->events */
static void poll_update(redisLibuvEvents *p)
{
    if (p->events != 0)
        uv_poll_start(&p->handle, p->events, poll_cb);
    else
        uv_poll_stop(&p->handle);
}

/* add_read, del_read, add_write, del_write - the adapter's hooks, on poll_cb */
static void add_read(void *privdata)
{
    redisLibuvEvents *p = privdata;

    p->events |= UV_READABLE;
    poll_update(p);
}

static void del_read(void *privdata)
{
    redisLibuvEvents *p = privdata;

    p->events &= ~UV_READABLE;
    poll_update(p);
}

static void add_write(void *privdata)
{
    redisLibuvEvents *p = privdata;

    p->events |= UV_WRITABLE;
    poll_update(p);
}

static void del_write(void *privdata)
{
    redisLibuvEvents *p = privdata;

    p->events &= ~UV_WRITABLE;
    poll_update(p);
}

/* attach - redisLibuvAttach, then route its poll events through poll_cb */
static bool attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (redisLibuvAttach(ac, loop) != REDIS_OK)
        return false;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    return true; /* cleanup stays the adapter's: it closes the handle and frees p */
}

/* start_connect - open a new context */
static void start_connect(struct tn_redis *r)
{
    redisAsyncContext *ac;

    if (r->closing || r->ac != NULL)
        return;
    ac = redisAsyncConnect(r->url.host, r->url.port);
    if (ac == NULL || ac->err != 0) {
        tn_log_warn(NULL, "redis.connect_failed", TN__REDIS_LOG_CONN(r),
                    TN_KV_STR("detail", ac != NULL ? ac->errstr : "out of memory"));
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    if (!attach(ac, r->loop)) {
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    r->ac = ac;
    if (handshake(r) != TN_OK)
        tn__redis_drop(r);
}

/* tn_redis_new - see tn_redis.h */
struct tn_redis *tn_redis_new(uv_loop_t *loop, const char *url, const struct tn_redis_opts *o)
{
    struct tn_redis *r = tn_xcalloc(1, sizeof(*r));

    if (tn_redis_url_parse(url, &r->url) != TN_OK) {
        tn_free(r);
        return NULL;
    }
    r->loop = loop;
    r->name = tn_xstrdup(o != NULL && o->name != NULL ? o->name : "tern");
    r->timeout_ms =
        o != NULL && o->command_timeout_ms != 0 ? o->command_timeout_ms : DEFAULT_TIMEOUT_MS;
    r->backoff.base_ms =
        o != NULL && o->reconnect_base_ms != 0 ? o->reconnect_base_ms : DEFAULT_BASE_MS;
    r->backoff.cap_ms =
        o != NULL && o->reconnect_cap_ms != 0 ? o->reconnect_cap_ms : DEFAULT_CAP_MS;
    uv_timer_init(loop, &r->retry_timer);
    uv_timer_init(loop, &r->cmd_timer);
    r->retry_timer.data = r;
    r->cmd_timer.data = r;
    r->open_handles = 2;
    start_connect(r);
    return r;
}

/* tn_redis_connected - see tn_redis.h */
bool tn_redis_connected(const struct tn_redis *r)
{
    return r != NULL && r->connected;
}

/* tn_redis_set_connect_cb - see tn_redis.h */
void tn_redis_set_connect_cb(struct tn_redis *r, tn_redis_connect_fn *cb, void *arg)
{
    r->on_connect = cb;
    r->on_connect_arg = arg;
}

/* close_cb - one timer is closed; the last one frees r */
static void close_cb(uv_handle_t *h)
{
    struct tn_redis *r = h->data;

    if (--r->open_handles > 0)
        return;
    TN_ASSERT(r->head == NULL); /* hiredis failed them all before libuv got here */
    tn_redis_url_free(&r->url);
    tn_free(r->name);
    tn_free(r);
}

/* tn_redis_close - see tn_redis.h */
void tn_redis_close(struct tn_redis *r)
{
    redisAsyncContext *ac;

    if (r == NULL || r->closing)
        return;
    r->closing = true;
    r->connected = false;
    uv_close((uv_handle_t *)&r->retry_timer, close_cb);
    uv_close((uv_handle_t *)&r->cmd_timer, close_cb);
    ac = r->ac;
    r->ac = NULL;
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac); /* pending callbacks get TN_ECANCELED */
    }
}
