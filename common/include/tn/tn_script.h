#ifndef TN_SCRIPT_H
#define TN_SCRIPT_H
/*
 * tn_script - a Lua script called by its SHA-1 (EVALSHA), with the text sent
 * again (EVAL) only when Redis answers NOSCRIPT (after a restart or SCRIPT
 * FLUSH). Sending a script's text on every call makes Redis hash it again
 * each time; by SHA-1 the call costs what its arguments cost.
 *
 *	static struct tn_script s = TN_SCRIPT_INIT("return 1");
 *	tn_script_call(redis, &s, nkeys, nargs, args, lens, cb, arg);
 *
 * Async contract: as tn_redis_argv (an error return never calls cb; TN_OK
 * calls it exactly once).
 */
#include <stddef.h>

#include <tn/tn_err.h>
#include <tn/tn_redis.h>

/* A script and its SHA-1 in hex, computed at the first call. Static storage;
 * text borrowed for the program's life. */
struct tn_script {
    const char *text;
    char sha[41];
};

/* clang-format off */
#define TN_SCRIPT_INIT(t) {.text = (t), .sha = ""}
/* clang-format on */

/* tn_script_sha - the script's SHA-1, lowercase hex (what EVALSHA names it
 * by). Runs on: loop (fills sc->sha once). */
const char *tn_script_sha(struct tn_script *sc);

/* tn_script_call - EVALSHA sha nkeys args...: the first nkeys of args are
 * KEYS, the rest ARGV. args/lens borrowed and copied (kept for a NOSCRIPT
 * resend); lens NULL: every argument is NUL-terminated. cb gets the script's
 * reply (a Redis error reply with err TN_OK, as tn_redis_argv).
 * Errors: TN_EUNAVAIL when not connected, TN_EINVAL when nkeys > nargs.
 * Runs on: loop. */
enum tn_err tn_script_call(struct tn_redis *r, struct tn_script *sc, size_t nkeys, size_t nargs,
                           const char *const *args, const size_t *lens, tn_redis_reply_fn *cb,
                           void *arg);

#endif
