#ifndef TN_REDIS_INT_H
#define TN_REDIS_INT_H
/*
 * tn_redis_int - state shared by tn_redis.c (life cycle, connection) and
 * tn_redis_cmd.c (commands, timeouts). Private to common/src/io.
 * Everything here runs on the loop.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

struct redisAsyncContext;

/* One command sent and not yet called back. */
struct tn__redis_cmd {
    struct tn_redis *r;
    struct redisAsyncContext *ac; /* the context it was sent on */
    tn_redis_reply_fn *cb;        /* NULL: reply ignored */
    void *arg;
    uint64_t deadline; /* uv_now() ms */
    bool internal;     /* handshake: no redis.denied log */
    struct tn__redis_cmd *prev, *next;
};

struct tn_redis {
    uv_loop_t *loop;
    struct tn_redis_url url;
    char *name;
    uint32_t timeout_ms;
    struct tn_backoff backoff;
    struct redisAsyncContext *ac;
    bool connected;
    bool closing;
    int open_handles;
    uv_timer_t retry_timer;
    uv_timer_t cmd_timer;
    uint64_t cmd_timer_due; /* 0: not armed */
    struct tn__redis_cmd *head, *tail;
    tn_redis_connect_fn *on_connect;
    void *on_connect_arg;
};

/* TN__REDIS_LOG_CONN - common fields of the connection log lines */
#define TN__REDIS_LOG_CONN(r)                                                                      \
    TN_KV_STR("name", (r)->name), TN_KV_STR("host", (r)->url.host), TN_KV_INT("port", (r)->url.port)

/* tn__redis_drop - give up the current context: pending commands fail
 * (TN_EUNAVAIL), reconnect later. No-op without a context. (tn_redis.c) */
void tn__redis_drop(struct tn_redis *r);

/* tn__redis_send_cmd - queue one command on the current context, connected
 * or still in its handshake (internal: no redis.denied log, error replies
 * passed on). argv/lens borrowed (copied by hiredis); timeout_ms 0: the
 * connection's. Errors: TN_EINVAL (argc <= 0), TN_EUNAVAIL; either way cb
 * is not called. (tn_redis_cmd.c) */
enum tn_err tn__redis_send_cmd(struct tn_redis *r, uint32_t timeout_ms, bool internal, int argc,
                               const char *const *argv, const size_t *lens, tn_redis_reply_fn *cb,
                               void *arg);

#endif
