/*
 * NAME
 *	tn_script - Lua scripts by SHA-1, EVAL again after NOSCRIPT
 * DESCRIPTION
 *	A call copies its arguments into one block (one allocation, however
 *	many arguments), sends EVALSHA, and keeps the block until the answer:
 *	a NOSCRIPT reply resends the same arguments as EVAL with the text,
 *	which also loads the script for the calls after it.
 * RUNS ON
 *	loop (the tn_redis connection's).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <tn/tn_mem.h>
#include <tn/tn_script.h>

/* One call in flight. argv[0..2] are the verb, the script's name and nkeys;
 * the rest point into block. */
struct call {
    struct tn_redis *r;
    struct tn_script *sc;
    tn_redis_reply_fn *cb;
    void *arg;
    int argc;
    char nkeys[24];
    const char **argv;
    size_t *lens;
    char *block; /* the arguments' bytes */
};

/* tn_script_sha - see tn_script.h */
const char *tn_script_sha(struct tn_script *sc)
{
    unsigned char d[SHA_DIGEST_LENGTH];

    if (sc->sha[0] == '\0') {
        SHA1((const unsigned char *)sc->text, strlen(sc->text), d);
        for (size_t i = 0; i < sizeof(d); i++)
            snprintf(sc->sha + 2 * i, 3, "%02x", d[i]);
    }
    return sc->sha;
}

/* call_new - the call with a private copy of args */
static struct call *call_new(size_t nkeys, size_t nargs, const char *const *args,
                             const size_t *lens)
{
    size_t bytes = 0;
    struct call *c;
    char *p;

    for (size_t i = 0; i < nargs; i++)
        bytes += lens != NULL ? lens[i] : strlen(args[i]);
    c = tn_xcalloc(1, sizeof(*c));
    c->argc = (int)nargs + 3;
    c->argv = tn_xcalloc(nargs + 3, sizeof(*c->argv));
    c->lens = tn_xcalloc(nargs + 3, sizeof(*c->lens));
    p = c->block = tn_xmalloc(bytes + 1);
    for (size_t i = 0; i < nargs; i++) {
        size_t n = lens != NULL ? lens[i] : strlen(args[i]);
        memcpy(p, args[i], n);
        c->argv[3 + i] = p;
        c->lens[3 + i] = n;
        p += n;
    }
    snprintf(c->nkeys, sizeof(c->nkeys), "%zu", nkeys);
    c->argv[2] = c->nkeys;
    c->lens[2] = strlen(c->nkeys);
    return c;
}

/* call_free - release c and its block */
static void call_free(struct call *c)
{
    tn_free(c->block);
    tn_free(c->argv);
    tn_free(c->lens);
    tn_free(c);
}

static tn_redis_reply_fn call_cb;

/* call_send - EVALSHA (text false) or EVAL (text true) */
static enum tn_err call_send(struct call *c, bool text)
{
    c->argv[0] = text ? "EVAL" : "EVALSHA";
    c->argv[1] = text ? c->sc->text : tn_script_sha(c->sc);
    c->lens[0] = strlen(c->argv[0]);
    c->lens[1] = strlen(c->argv[1]);
    return tn_redis_argv(c->r, c->argc, c->argv, c->lens, call_cb, c);
}

/* call_cb - the answer; NOSCRIPT: once more with the text. Runs on: loop. */
static void call_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct call *c = arg;

    if (err == TN_OK && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && call_send(c, true) == TN_OK)
        return;
    c->cb(r, reply, err, c->arg);
    call_free(c);
}

/* tn_script_call - see tn_script.h */
enum tn_err tn_script_call(struct tn_redis *r, struct tn_script *sc, size_t nkeys, size_t nargs,
                           const char *const *args, const size_t *lens, tn_redis_reply_fn *cb,
                           void *arg)
{
    struct call *c;
    enum tn_err err;

    if (nkeys > nargs || nargs > INT32_MAX - 3)
        return TN_EINVAL;
    if (!tn_redis_connected(r))
        return TN_EUNAVAIL;
    c = call_new(nkeys, nargs, args, lens);
    c->r = r;
    c->sc = sc;
    c->cb = cb;
    c->arg = arg;
    err = call_send(c, false);
    if (err != TN_OK)
        call_free(c);
    return err;
}
