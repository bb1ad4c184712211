/*
 * NAME
 *	ingest_enqueue - dedupe and XADD a webhook's entries in one step
 * DESCRIPTION
 *	One EVAL per webhook: for each entry, SET its dedupe key NX EX and,
 *	only if the key was new, XADD the entry. Redis runs a script
 *	atomically, so a batch is either wholly recorded or not at all, and
 *	a retried webhook (after a 503 whose script did in fact run) finds its
 *	keys set and adds nothing: every 2xx means "on the stream", exactly
 *	once.
 *
 *	KEYS: dedupe key and stream of each entry, in order.
 *	ARGV: ttl seconds, then per entry its field count followed by the
 *	name/value strings.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>

#include "ingest_srv.h"

static const char enqueue_lua[] =
    "local nk = #KEYS\n"
    "local a = 2\n"
    "local added = 0\n"
    "for k = 1, nk, 2 do\n"
    "  local n = tonumber(ARGV[a])\n"
    "  if redis.call('SET', KEYS[k], '1', 'NX', 'EX', ARGV[1]) then\n"
    "    redis.call('XADD', KEYS[k + 1], '*', unpack(ARGV, a + 1, a + n))\n"
    "    added = added + 1\n"
    "  end\n"
    "  a = a + n + 1\n"
    "end\n"
    "return added\n";

/* num_dup - decimal text of v, new */
static char *num_dup(long long v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", v);
    return tn_xstrdup(buf);
}

/* key_dup - the dedupe key of d, new */
static char *key_dup(const char *d)
{
    size_t n = strlen(TN_DEDUPE_PREFIX) + strlen(d) + 1;
    char *k = tn_xmalloc(n);
    snprintf(k, n, "%s%s", TN_DEDUPE_PREFIX, d);
    return k;
}

struct enqueue_op {
    ingest_enqueue_fn *cb;
    void *arg;
};

/* enqueue_reply - the script's answer. Runs on: loop. */
static void enqueue_reply(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct enqueue_op *op = arg;
    size_t added = 0;

    (void)r;
    if (err == TN_OK && reply->type == REDIS_REPLY_INTEGER) {
        added = (size_t)reply->integer;
    } else if (err == TN_OK) {
        tn_log_error(NULL, "ingest.enqueue_refused",
                     TN_KV_STR("reply", reply->type == REDIS_REPLY_ERROR ? reply->str : "?"));
        err = TN_EUNAVAIL;
    }
    op->cb(err, added, op->arg);
    tn_free(op);
}

/* count_args - argv slots the script call needs */
static size_t count_args(const struct ingest_result *res)
{
    size_t n = 3 + 1; /* EVAL script numkeys ttl */
    for (size_t i = 0; i < res->nentries; i++)
        n += 2 + 1 + 2 * res->entries[i].nfields;
    return n;
}

enum tn_err ingest_enqueue(struct tn_redis *redis, const struct ingest_result *res,
                           int64_t dedupe_s, ingest_enqueue_fn *cb, void *arg)
{
    size_t argc = count_args(res), a = 0, k = 3;
    const char **argv = tn_xcalloc(argc, sizeof(*argv));
    char **owned = tn_xcalloc(3 * res->nentries + 2, sizeof(*owned));
    size_t nowned = 0, nkeys = 2 * res->nentries;
    struct enqueue_op *op = NULL;
    enum tn_err err;

    owned[nowned++] = num_dup((long long)nkeys);
    owned[nowned++] = num_dup((long long)dedupe_s);
    argv[a++] = "EVAL";
    argv[a++] = enqueue_lua;
    argv[a++] = owned[0];
    a += nkeys; /* KEYS are filled in at k below */
    argv[a++] = owned[1];
    for (size_t i = 0; i < res->nentries; i++) {
        const struct ingest_entry *e = &res->entries[i];
        const char *d = ingest_entry_get(e, TN_F_DEDUPE);
        char *rnd = d ? NULL : tn_random_id("none:"); /* never expected: no dedupe */
        owned[nowned++] = key_dup(d ? d : rnd);
        tn_free(rnd);
        argv[k++] = owned[nowned - 1];
        argv[k++] = e->stream;
        owned[nowned++] = num_dup((long long)(2 * e->nfields));
        argv[a++] = owned[nowned - 1];
        for (size_t f = 0; f < e->nfields; f++) {
            argv[a++] = e->name[f];
            argv[a++] = e->value[f];
        }
    }
    op = tn_xcalloc(1, sizeof(*op));
    op->cb = cb;
    op->arg = arg;
    err = tn_redis_argv(redis, (int)argc, argv, NULL, enqueue_reply, op);
    if (err != TN_OK)
        tn_free(op);
    for (size_t i = 0; i < nowned; i++)
        tn_free(owned[i]);
    tn_free(owned);
    tn_free(argv);
    return err;
}
