/*
 * NAME
 *	tn_redis_cmd - tn_redis's commands and their timeouts
 * DESCRIPTION
 *	Every command is on the connection's pending list until hiredis calls
 *	it back; cmd_cb translates the reply (R9: exactly once).
 *
 *	hiredis 0.14 has no async timeouts, so every command records a
 *	deadline and one uv_timer_t fires at the earliest; a command past its
 *	deadline drops the whole connection (h2o does the same), which makes
 *	hiredis call every pending callback with a NULL reply: callers see
 *	TN_EUNAVAIL, or TN_ECANCELED once tn_redis_close has been called. The
 *	handshake commands carry deadlines too, so a connect that hangs is
 *	covered as well.
 *
 *	The life cycle and the connection are in tn_redis.c.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	redis.timeout, redis.denied.
 */
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>

#include "tn_redis_int.h"

/* link_cmd - append c to the pending list */
static void link_cmd(struct tn_redis *r, struct tn__redis_cmd *c)
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
static void unlink_cmd(struct tn_redis *r, struct tn__redis_cmd *c)
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

/* cmd_timer_cb - drop the connection if any command is past its deadline */
static void cmd_timer_cb(uv_timer_t *t)
{
    struct tn_redis *r = t->data;
    uint64_t now = uv_now(r->loop), min = 0;

    r->cmd_timer_due = 0;
    for (struct tn__redis_cmd *c = r->head; c != NULL; c = c->next) {
        if (c->ac == r->ac && (min == 0 || c->deadline < min))
            min = c->deadline;
    }
    if (min == 0)
        return;
    if (min <= now) {
        tn_log_warn(NULL, "redis.timeout", TN__REDIS_LOG_CONN(r),
                    TN_KV_BOOL("connected", r->connected));
        tn__redis_drop(r);
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
static enum tn_err reply_err(struct tn_redis *r, const struct tn__redis_cmd *c, redisReply *reply)
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
    struct tn__redis_cmd *c = privdata;
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

/* tn__redis_send_cmd - queue one command on the current context */
enum tn_err tn__redis_send_cmd(struct tn_redis *r, uint32_t timeout_ms, bool internal, int argc,
                               const char *const *argv, const size_t *lens, tn_redis_reply_fn *cb,
                               void *arg)
{
    struct tn__redis_cmd *c;

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

/* tn_redis_flush - see tn_redis.h */
void tn_redis_flush(struct tn_redis *r)
{
    if (r->connected && r->ac != NULL && !r->closing)
        redisAsyncHandleWrite(r->ac);
}

/* tn_redis_argv_timeout - see tn_redis.h */
enum tn_err tn_redis_argv_timeout(struct tn_redis *r, uint32_t timeout_ms, int argc,
                                  const char *const *argv, const size_t *lens,
                                  tn_redis_reply_fn *cb, void *arg)
{
    if (!r->connected)
        return TN_EUNAVAIL;
    return tn__redis_send_cmd(r, timeout_ms, false, argc, argv, lens, cb, arg);
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
    err = tn__redis_send_cmd(r, 0, false, 1, multi, NULL, NULL, NULL);
    for (size_t i = 0; i < ncmds && err == TN_OK; i++)
        err = tn__redis_send_cmd(r, 0, false, argcs[i], argvs[i], lenss != NULL ? lenss[i] : NULL,
                                 NULL, NULL);
    if (err == TN_OK)
        err = tn__redis_send_cmd(r, 0, false, 1, exec, NULL, cb, arg);
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
