#ifndef TN_REDIS_H
#define TN_REDIS_H
/*
 * tn_redis - one hiredis async connection on a libuv loop, with AUTH from the
 * URL, reconnect with capped backoff and jitter, and a timeout on every
 * command (a timeout drops the connection, like h2o; every pending command
 * then completes with TN_EUNAVAIL).
 *
 * URL: redis://[user:password@]host:port[/db]
 *
 * Async contract (STYLE.md R9): a function that returns an error never calls
 * its callback; one that returns TN_OK calls it exactly once, with
 * TN_ECANCELED when the connection is closed first.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

struct uv_loop_s;
struct redisReply;
struct tn_redis;

struct tn_redis_opts {
    const char *name;           /* CLIENT SETNAME and log field; borrowed, copied */
    uint32_t command_timeout_ms; /* 0: 5000 */
    uint32_t reconnect_base_ms;  /* 0: 100 */
    uint32_t reconnect_cap_ms;   /* 0: 5000 */
};

/* tn_redis_reply_fn - a command finished. reply is borrowed, valid only during
 * the call; NULL when err != TN_OK. A Redis error reply (REDIS_REPLY_ERROR) is
 * passed with err == TN_OK except NOPERM/NOAUTH, which give TN_EDENIED.
 * Runs on: loop. */
typedef void tn_redis_reply_fn(struct tn_redis *r, struct redisReply *reply, enum tn_err err,
                               void *arg);

/* tn_redis_new - start connecting (and keep reconnecting). url and o borrowed.
 * Returns: new; free with tn_redis_close. Errors: NULL on a malformed URL. */
struct tn_redis *tn_redis_new(struct uv_loop_s *loop, const char *url,
                              const struct tn_redis_opts *o);

/* tn_redis_connected - true once AUTH has succeeded and until the link drops. */
bool tn_redis_connected(const struct tn_redis *r);

/* tn_redis_argv - send one command. argv/lens borrowed (copied by hiredis).
 * Errors: TN_EUNAVAIL when not connected (callback not called). */
enum tn_err tn_redis_argv(struct tn_redis *r, int argc, const char *const *argv,
                          const size_t *lens, tn_redis_reply_fn *cb, void *arg);

/* tn_redis_close - stop reconnecting, fail pending commands with TN_ECANCELED
 * and release everything once hiredis and libuv let go (NULL-safe). */
void tn_redis_close(struct tn_redis *r);

#endif
