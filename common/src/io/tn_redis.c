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
 *	hiredis 0.14 has no async timeouts, so every command records a
 *	deadline and one uv_timer_t fires at the earliest; a command past its
 *	deadline drops the whole connection (h2o does the same), which makes
 *	hiredis call every pending callback with a NULL reply: callers see
 *	TN_EUNAVAIL, or TN_ECANCELED once tn_redis_close has been called. The
 *	handshake commands carry deadlines too, so a connect that hangs is
 *	covered as well.
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
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	redis.connected, redis.disconnected, redis.connect_failed,
 *	redis.auth_failed, redis.handshake_failed, redis.timeout, redis.denied.
 *	Passwords are never logged.
 *
 *	tn_redis_url_parse lives here too, so that ternctl and the tests read
 *	TN_REDIS_URL exactly as the daemons do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#define SCHEME "redis://"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_BASE_MS 100
#define DEFAULT_CAP_MS 5000

struct cmd {
    struct tn_redis *r;
    redisAsyncContext *ac; /* the context it was sent on */
    tn_redis_reply_fn *cb; /* NULL: reply ignored */
    void *arg;
    uint64_t deadline; /* uv_now() ms */
    bool internal;     /* handshake: no redis.denied log */
    struct cmd *prev, *next;
};

struct tn_redis {
    uv_loop_t *loop;
    struct tn_redis_url url;
    char *name;
    uint32_t timeout_ms;
    struct tn_backoff backoff;
    redisAsyncContext *ac;
    bool connected;
    bool closing;
    int open_handles;
    uv_timer_t retry_timer;
    uv_timer_t cmd_timer;
    uint64_t cmd_timer_due; /* 0: not armed */
    struct cmd *head, *tail;
    tn_redis_connect_fn *on_connect;
    void *on_connect_arg;
};

static void start_connect(struct tn_redis *r);

/* retry_cb - the reconnect timer fired */
static void retry_cb(uv_timer_t *t)
{
    start_connect(t->data);
}

/* LOG_CONN - common fields of the connection log lines */
#define LOG_CONN(r)                                                                                \
    TN_KV_STR("name", (r)->name), TN_KV_STR("host", (r)->url.host), TN_KV_INT("port", (r)->url.port)

/* link_cmd - append c to the pending list */
static void link_cmd(struct tn_redis *r, struct cmd *c)
{
    c->prev = r->tail;
    c->next = NULL;
    if (r->tail != NULL)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
}

/* unlink_cmd - remove c from the pending list */
static void unlink_cmd(struct tn_redis *r, struct cmd *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        r->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        r->tail = c->prev;
}

/* schedule_reconnect - try again after the next backoff delay */
static void schedule_reconnect(struct tn_redis *r)
{
    if (r->closing)
        return;
    uv_timer_start(&r->retry_timer, retry_cb, tn_backoff_next(&r->backoff), 0);
}

/* drop - give up the current context: pending commands fail, reconnect later */
static void drop(struct tn_redis *r)
{
    redisAsyncContext *ac = r->ac;

    if (ac == NULL)
        return;
    if (r->connected)
        tn_log_warn(NULL, "redis.disconnected", LOG_CONN(r), TN_KV_STR("why", "dropped"));
    r->ac = NULL;
    r->connected = false;
    ac->data = NULL;
    redisAsyncFree(ac); /* runs every pending callback (now, or after the current one) */
    schedule_reconnect(r);
}

/* cmd_timer_cb - drop the connection if any command is past its deadline */
static void cmd_timer_cb(uv_timer_t *t)
{
    struct tn_redis *r = t->data;
    uint64_t now = uv_now(r->loop), min = 0;

    r->cmd_timer_due = 0;
    for (struct cmd *c = r->head; c != NULL; c = c->next) {
        if (c->ac == r->ac && (min == 0 || c->deadline < min))
            min = c->deadline;
    }
    if (min == 0)
        return;
    if (min <= now) {
        tn_log_warn(NULL, "redis.timeout", LOG_CONN(r), TN_KV_BOOL("connected", r->connected));
        drop(r);
        return;
    }
    r->cmd_timer_due = min;
    uv_timer_start(&r->cmd_timer, cmd_timer_cb, min - now, 0);
}

/* arm_timer - make sure the command timer fires by deadline */
static void arm_timer(struct tn_redis *r, uint64_t deadline)
{
    uint64_t now = uv_now(r->loop);

    if (r->closing || (r->cmd_timer_due != 0 && r->cmd_timer_due <= deadline))
        return;
    r->cmd_timer_due = deadline;
    uv_timer_start(&r->cmd_timer, cmd_timer_cb, deadline > now ? deadline - now : 0, 0);
}

/* reply_err - what a reply means for the caller */
static enum tn_err reply_err(struct tn_redis *r, const struct cmd *c, redisReply *reply)
{
    if (reply == NULL)
        return r->closing ? TN_ECANCELED : TN_EUNAVAIL;
    if (tn_redis_reply_is_denied(reply)) {
        if (!c->internal)
            tn_log_warn(NULL, "redis.denied", TN_KV_STR("name", r->name),
                        TN_KV_STR("detail", reply->str));
        return TN_EDENIED;
    }
    return TN_OK;
}

/* cmd_cb - hiredis reply callback: translate and hand over exactly once */
static void cmd_cb(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct cmd *c = privdata;
    struct tn_redis *r = c->r;
    redisReply *reply = reply_;
    enum tn_err err;

    (void)ac;
    unlink_cmd(r, c);
    if (reply == NULL && c->ac == r->ac)
        r->connected = false; /* the link is going down; hiredis is failing it */
    err = reply_err(r, c, reply);
    if (c->cb != NULL)
        c->cb(r, err == TN_OK || c->internal ? reply : NULL, err, c->arg);
    tn_free(c);
}

/* send_cmd - queue one command on the current context */
static enum tn_err send_cmd(struct tn_redis *r, uint32_t timeout_ms, bool internal, int argc,
                            const char *const *argv, const size_t *lens, tn_redis_reply_fn *cb,
                            void *arg)
{
    struct cmd *c;

    if (r->ac == NULL || r->closing || argc <= 0)
        return argc <= 0 ? TN_EINVAL : TN_EUNAVAIL;
    c = tn_xcalloc(1, sizeof(*c));
    c->r = r;
    c->ac = r->ac;
    c->cb = cb;
    c->arg = arg;
    c->internal = internal;
    c->deadline = uv_now(r->loop) + (timeout_ms != 0 ? timeout_ms : r->timeout_ms);
    link_cmd(r, c);
    if (redisAsyncCommandArgv(r->ac, cmd_cb, c, argc, (const char **)argv, lens) != REDIS_OK) {
        unlink_cmd(r, c);
        tn_free(c);
        return TN_EUNAVAIL;
    }
    arm_timer(r, c->deadline);
    return TN_OK;
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
    tn_log_error(NULL, "redis.auth_failed", LOG_CONN(r),
                 TN_KV_STR("user", r->url.user != NULL ? r->url.user : "default"),
                 TN_KV_STR("detail", reply != NULL ? reply->str : tn_strerror(err)));
    drop(r);
}

/* step_cb - SELECT answered: an error ends this attempt */
static void step_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    (void)arg;
    if (!current(r) || err == TN_EUNAVAIL || err == TN_ECANCELED)
        return;
    if (err == TN_OK && reply->type != REDIS_REPLY_ERROR)
        return;
    tn_log_error(NULL, "redis.handshake_failed", LOG_CONN(r), TN_KV_INT("db", r->url.db),
                 TN_KV_STR("detail", reply != NULL ? reply->str : tn_strerror(err)));
    drop(r);
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
        tn_log_warn(NULL, "redis.handshake_failed", LOG_CONN(r), TN_KV_STR("detail", reply->str));
        drop(r);
        return;
    }
    r->connected = true;
    tn_backoff_reset(&r->backoff);
    tn_log_info(NULL, "redis.connected", LOG_CONN(r), TN_KV_INT("db", r->url.db));
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
        err = send_cmd(r, 0, true, 3, auth, NULL, auth_cb, NULL);
    else if (r->url.password != NULL)
        err =
            send_cmd(r, 0, true, 2, (const char *[]){"AUTH", r->url.password}, NULL, auth_cb, NULL);
    if (err == TN_OK && r->url.db != 0) {
        snprintf(db, sizeof(db), "%d", r->url.db);
        err = send_cmd(r, 0, true, 2, sel, NULL, step_cb, NULL);
    }
    if (err == TN_OK)
        err = send_cmd(r, 0, true, 3, setname, NULL, NULL, NULL); /* ACL may refuse: fine */
    if (err == TN_OK)
        err = send_cmd(r, 0, true, 1, ping, NULL, ready_cb, NULL);
    return err;
}

/* connect_cb - hiredis finished (or failed) the TCP connect */
static void connect_cb(const redisAsyncContext *ac, int status)
{
    struct tn_redis *r = ac->data;

    if (r == NULL || ac != r->ac || status == REDIS_OK)
        return;
    tn_log_warn(NULL, "redis.connect_failed", LOG_CONN(r), TN_KV_STR("detail", ac->errstr));
    r->ac = NULL; /* hiredis frees it after this callback */
    schedule_reconnect(r);
}

/* disconnect_cb - hiredis lost a connected context */
static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct tn_redis *r = ac->data;

    if (r == NULL || ac != r->ac)
        return;
    tn_log_warn(NULL, "redis.disconnected", LOG_CONN(r),
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
        tn_log_warn(NULL, "redis.connect_failed", LOG_CONN(r),
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
        drop(r);
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

/* tn_redis_argv_timeout - see tn_redis.h */
enum tn_err tn_redis_argv_timeout(struct tn_redis *r, uint32_t timeout_ms, int argc,
                                  const char *const *argv, const size_t *lens,
                                  tn_redis_reply_fn *cb, void *arg)
{
    if (!r->connected)
        return TN_EUNAVAIL;
    return send_cmd(r, timeout_ms, false, argc, argv, lens, cb, arg);
}

/* tn_redis_argv - see tn_redis.h */
enum tn_err tn_redis_argv(struct tn_redis *r, int argc, const char *const *argv, const size_t *lens,
                          tn_redis_reply_fn *cb, void *arg)
{
    return tn_redis_argv_timeout(r, 0, argc, argv, lens, cb, arg);
}

/* tn_redis_multi - see tn_redis.h */
enum tn_err tn_redis_multi(struct tn_redis *r, size_t ncmds, const int *argcs,
                           const char *const *const *argvs, const size_t *const *lenss,
                           tn_redis_reply_fn *cb, void *arg)
{
    const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
    enum tn_err err;

    if (ncmds == 0)
        return TN_EINVAL;
    if (!r->connected)
        return TN_EUNAVAIL;
    /* A send fails only when hiredis is already tearing the context down, and
     * then the half-queued transaction dies with it (never reaching EXEC). */
    err = send_cmd(r, 0, false, 1, multi, NULL, NULL, NULL);
    for (size_t i = 0; i < ncmds && err == TN_OK; i++)
        err =
            send_cmd(r, 0, false, argcs[i], argvs[i], lenss != NULL ? lenss[i] : NULL, NULL, NULL);
    if (err == TN_OK)
        err = send_cmd(r, 0, false, 1, exec, NULL, cb, arg);
    return err;
}

/* tn_redis_xadd - see tn_redis.h */
enum tn_err tn_redis_xadd(struct tn_redis *r, const char *stream, const char *const *fields,
                          const size_t *lens, size_t nfields, tn_redis_reply_fn *cb, void *arg)
{
    const char **argv = NULL;
    size_t *alens = NULL;
    enum tn_err err = TN_EINVAL;

    if (nfields == 0 || nfields % 2 != 0 || nfields > 1000000)
        goto out;
    argv = tn_xcalloc(nfields + 3, sizeof(*argv));
    alens = tn_xcalloc(nfields + 3, sizeof(*alens));
    argv[0] = "XADD";
    argv[1] = stream;
    argv[2] = "*";
    for (size_t i = 0; i < 3; i++)
        alens[i] = strlen(argv[i]);
    for (size_t i = 0; i < nfields; i++) {
        argv[i + 3] = fields[i];
        alens[i + 3] = lens != NULL ? lens[i] : strlen(fields[i]);
    }
    err = tn_redis_argv(r, (int)nfields + 3, argv, alens, cb, arg);
out:
    tn_free(argv);
    tn_free(alens);
    return err;
}

/* tn_redis_ping - see tn_redis.h */
enum tn_err tn_redis_ping(struct tn_redis *r, tn_redis_reply_fn *cb, void *arg)
{
    const char *ping[1] = {"PING"};

    return tn_redis_argv(r, 1, ping, NULL, cb, arg);
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

/* --- URLs: shared with the blocking users (ternctl, tests) --- */

/* hexval - value of one hex digit, -1 if not one */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* pct_decode - new NUL-terminated, percent-decoded copy of s[0..n); NULL if a
 * %xx escape is malformed or decodes to NUL */
static char *pct_decode(const char *s, size_t n)
{
    char *out = tn_xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            tn_free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* parse_num - s[0..n) as a decimal in [min, max] */
static bool parse_num(const char *s, size_t n, long min, long max, int *out)
{
    char buf[16];
    char *end = NULL;
    long v;

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (buf[0] < '0' || buf[0] > '9')
        return false;
    v = strtol(buf, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* parse_userinfo - "user:password" or "password" into u */
static bool parse_userinfo(const char *s, size_t n, struct tn_redis_url *u)
{
    const char *colon = memchr(s, ':', n);

    if (colon == NULL) {
        u->password = pct_decode(s, n);
        return u->password != NULL;
    }
    if (colon > s) {
        u->user = pct_decode(s, (size_t)(colon - s));
        if (u->user == NULL)
            return false;
    }
    u->password = pct_decode(colon + 1, (size_t)(s + n - colon - 1));
    return u->password != NULL;
}

/* parse_hostport - "host", "host:port", "[v6]" or "[v6]:port" into u */
static bool parse_hostport(const char *s, size_t n, struct tn_redis_url *u)
{
    const char *end = s + n;
    const char *h = s, *he, *rest;

    if (n > 0 && *s == '[') {
        h = s + 1;
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL)
            return false;
        rest = he + 1;
    } else {
        he = memchr(s, ':', n);
        if (he == NULL)
            he = end;
        rest = he;
    }
    if (he == h)
        return false;
    u->host = tn_xstrndup(h, (size_t)(he - h));
    u->port = 6379;
    if (rest == end)
        return true;
    if (*rest != ':')
        return false;
    return parse_num(rest + 1, (size_t)(end - rest - 1), 1, 65535, &u->port);
}

/* tn_redis_url_parse - see tn_redis.h */
enum tn_err tn_redis_url_parse(const char *url, struct tn_redis_url *out)
{
    const char *p, *auth_end, *slash, *at = NULL;

    memset(out, 0, sizeof(*out));
    if (url == NULL || strncmp(url, SCHEME, strlen(SCHEME)) != 0)
        goto bad;
    p = url + strlen(SCHEME);
    slash = strchr(p, '/');
    auth_end = slash != NULL ? slash : p + strlen(p);
    for (const char *q = p; q < auth_end; q++) {
        if (*q == '@')
            at = q;
    }
    if (at != NULL) {
        if (!parse_userinfo(p, (size_t)(at - p), out))
            goto bad;
        p = at + 1;
    }
    if (!parse_hostport(p, (size_t)(auth_end - p), out))
        goto bad;
    if (slash != NULL && slash[1] != '\0' &&
        !parse_num(slash + 1, strlen(slash + 1), 0, 1 << 20, &out->db))
        goto bad;
    return TN_OK;
bad:
    tn_redis_url_free(out);
    return TN_EINVAL;
}

/* tn_redis_url_free - see tn_redis.h */
void tn_redis_url_free(struct tn_redis_url *u)
{
    if (u == NULL)
        return;
    tn_free(u->user);
    tn_free(u->password);
    tn_free(u->host);
    memset(u, 0, sizeof(*u));
}

/* prefix - does the error string s start with word followed by a space/end */
static bool prefix(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);

    return n >= w && memcmp(s, word, w) == 0 && (n == w || s[w] == ' ');
}

/* tn_redis_reply_is_denied - see tn_redis.h */
bool tn_redis_reply_is_denied(const struct redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || reply->str == NULL)
        return false;
    return prefix(reply->str, reply->len, "NOPERM") || prefix(reply->str, reply->len, "NOAUTH") ||
           prefix(reply->str, reply->len, "WRONGPASS");
}
