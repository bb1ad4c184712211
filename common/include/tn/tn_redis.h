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
    const char *name;            /* CLIENT SETNAME and log field; borrowed, copied */
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

/* tn_redis_connect_fn - the connection is up (AUTH and SELECT done); called
 * after every (re)connect. Runs on: loop. */
typedef void tn_redis_connect_fn(struct tn_redis *r, void *arg);

/* tn_redis_new - start connecting (and keep reconnecting). url and o borrowed.
 * Returns: new; free with tn_redis_close. Errors: NULL on a malformed URL. */
struct tn_redis *tn_redis_new(struct uv_loop_s *loop, const char *url,
                              const struct tn_redis_opts *o);

/* tn_redis_connected - true once AUTH has succeeded and until the link drops. */
bool tn_redis_connected(const struct tn_redis *r);

/* tn_redis_set_connect_cb - call cb (arg borrowed) after every later
 * successful (re)connect; a link already up is not reported, so check
 * tn_redis_connected() too. cb NULL: none. Runs on: loop. */
void tn_redis_set_connect_cb(struct tn_redis *r, tn_redis_connect_fn *cb, void *arg);

/* tn_redis_argv - send one command. argv/lens borrowed (copied by hiredis);
 * lens NULL means every argument is NUL-terminated.
 * Errors: TN_EUNAVAIL when not connected (callback not called). */
enum tn_err tn_redis_argv(struct tn_redis *r, int argc, const char *const *argv, const size_t *lens,
                          tn_redis_reply_fn *cb, void *arg);

/* tn_redis_argv_timeout - tn_redis_argv with its own timeout (for blocking
 * commands: XREADGROUP BLOCK ms needs ms plus the usual margin). */
enum tn_err tn_redis_argv_timeout(struct tn_redis *r, uint32_t timeout_ms, int argc,
                                  const char *const *argv, const size_t *lens,
                                  tn_redis_reply_fn *cb, void *arg);

/* tn_redis_multi - MULTI, the ncmds commands, EXEC, sent back to back so that
 * they run atomically. cb gets EXEC's reply (an array of the commands'
 * replies, or an error such as EXECABORT). argcs/argvs/lenss borrowed; an
 * element of lenss may be NULL (NUL-terminated arguments).
 * Errors: TN_EUNAVAIL when not connected, TN_EINVAL when ncmds == 0. */
enum tn_err tn_redis_multi(struct tn_redis *r, size_t ncmds, const int *argcs,
                           const char *const *const *argvs, const size_t *const *lenss,
                           tn_redis_reply_fn *cb, void *arg);

/* tn_redis_xadd - the producer: XADD stream * name1 value1 ... . fields/lens
 * borrowed; nfields counts strings (pairs * 2, so it must be even and > 0);
 * lens NULL: NUL-terminated. The reply is the new entry id (a string).
 * Errors: TN_EINVAL on a bad nfields, TN_EUNAVAIL when not connected. */
enum tn_err tn_redis_xadd(struct tn_redis *r, const char *stream, const char *const *fields,
                          const size_t *lens, size_t nfields, tn_redis_reply_fn *cb, void *arg);

/* tn_redis_flush - write the commands queued so far now, instead of when the
 * loop next polls the socket (hiredis queues them until the socket reports
 * writable, which under load comes after every other ready socket has been
 * served). For a caller that has just queued the one command a request
 * waits on. A write error drops the connection as usual: pending commands
 * may then complete (TN_EUNAVAIL) before this returns. No-op when not
 * connected. Runs on: loop (not from within a reply callback). */
void tn_redis_flush(struct tn_redis *r);

/* tn_redis_ping - PING; reply "PONG". Errors: TN_EUNAVAIL when not connected. */
enum tn_err tn_redis_ping(struct tn_redis *r, tn_redis_reply_fn *cb, void *arg);

/* tn_redis_close - stop reconnecting, fail pending commands with TN_ECANCELED
 * and release everything once hiredis and libuv let go (NULL-safe). May be
 * called from a reply callback; r must not be used afterwards. */
void tn_redis_close(struct tn_redis *r);

/* A parsed redis:// URL. All strings new (NULL when absent); free with
 * tn_redis_url_free. */
struct tn_redis_url {
    char *user;
    char *password;
    char *host;
    int port; /* default 6379 */
    int db;   /* default 0 */
};

/* tn_redis_url_parse - parse redis://[[user]:password@]host[:port][/db];
 * user and password are percent-decoded; "[::1]" hosts are accepted.
 * "redis://secret@host" is a password alone (redis-cli's reading).
 * Errors: TN_EINVAL (out is then zeroed). Runs on: any thread. */
enum tn_err tn_redis_url_parse(const char *url, struct tn_redis_url *out);

/* tn_redis_url_free - release the strings of u (NULL-safe) and zero it. */
void tn_redis_url_free(struct tn_redis_url *u);

/* tn_redis_reply_is_denied - true for a NOPERM/NOAUTH/WRONGPASS error reply
 * (for callers of the blocking hiredis API, such as ternctl and tests). */
bool tn_redis_reply_is_denied(const struct redisReply *reply);

#endif
