/*
 * NAME
 *	ingest_enqueue - dedupe and XADD webhooks' entries, a loop turn at a time
 * DESCRIPTION
 *	Every webhook that passed its checks during one turn of the loop is
 *	queued here; a uv_check handle (which runs right after the loop has
 *	read the sockets) sends them all as one script call. For each entry
 *	the script SETs its dedupe key NX EX and, only if the key was new,
 *	XADDs the entry. Redis runs a script atomically, so a call is either
 *	wholly recorded or not at all, and a retried webhook (after a 503
 *	whose script did in fact run) finds its keys set and adds nothing:
 *	every 2xx means "on the stream", exactly once.
 *
 *	One call for many webhooks instead of one each: Redis parses one
 *	command and starts Lua once, and both sides make one write instead
 *	of one per webhook. Under light load a turn holds one webhook and
 *	nothing waits longer than before; under heavy load the batches grow
 *	(to QUEUE_MAX webhooks) and the cost per webhook falls.
 *
 *	KEYS: dedupe key and stream of each entry, webhook after webhook.
 *	ARGV: ttl seconds, the number of webhooks, then per webhook its entry
 *	count and per entry its field count followed by the name/value
 *	strings. Reply: per webhook, the entries added.
 * RUNS ON
 *	loop.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>
#include <tn/tn_script.h>

#include "ingest_srv.h"

#define QUEUE_MAX 256 /* webhooks per script call */

static struct tn_script enqueue_lua =
    TN_SCRIPT_INIT("local a = 3\n"
                   "local k = 1\n"
                   "local out = {}\n"
                   "for w = 1, tonumber(ARGV[2]) do\n"
                   "  local m = tonumber(ARGV[a])\n"
                   "  local added = 0\n"
                   "  a = a + 1\n"
                   "  for e = 1, m do\n"
                   "    local n = tonumber(ARGV[a])\n"
                   "    if redis.call('SET', KEYS[k], '1', 'NX', 'EX', ARGV[1]) then\n"
                   "      redis.call('XADD', KEYS[k + 1], '*', unpack(ARGV, a + 1, a + n))\n"
                   "      added = added + 1\n"
                   "    end\n"
                   "    a = a + n + 1\n"
                   "    k = k + 2\n"
                   "  end\n"
                   "  out[w] = added\n"
                   "end\n"
                   "return out\n");

/* A webhook waiting for the next call. res borrowed. */
struct waiter {
    const struct ingest_result *res;
    ingest_enqueue_fn *cb;
    void *arg;
};

/* A call on the wire: whose webhooks it carries. */
struct batch {
    struct ingest_queue *q;
    size_t n;
    struct waiter w[];
};

struct ingest_queue {
    uv_check_t check;
    struct tn_redis *redis;
    char ttl[24];
    size_t n;
    struct waiter w[QUEUE_MAX];
    size_t calls; /* script calls on the wire */
    bool closing;
};

/* Arguments of one call under construction: strings borrowed from the
 * results, except the numbers (in num) and the dedupe keys (dkeys, new). */
struct args {
    const char **keys, **argv;
    size_t *klens, *alens;
    size_t nk, na;
    char (*num)[24];
    size_t nnum;
    char **dkeys;
    size_t ndkeys;
};

/* key_new - the dedupe key of an entry, new */
static char *key_new(const struct ingest_entry *e)
{
    const char *d = ingest_entry_get(e, TN_F_DEDUPE);
    char *rnd = d ? NULL : tn_random_id("none:"); /* never expected: no dedupe */
    size_t n = strlen(TN_DEDUPE_PREFIX) + strlen(d ? d : rnd) + 1;
    char *k = tn_xmalloc(n);

    snprintf(k, n, "%s%s", TN_DEDUPE_PREFIX, d ? d : rnd);
    tn_free(rnd);
    return k;
}

/* arg_num - append a decimal argument */
static void arg_num(struct args *a, long long v)
{
    char *s = a->num[a->nnum++];
    int n = snprintf(s, 24, "%lld", v);

    a->argv[a->na] = s;
    a->alens[a->na++] = (size_t)n;
}

/* arg_str - append a borrowed string argument */
static void arg_str(struct args *a, const char *s)
{
    a->argv[a->na] = s;
    a->alens[a->na++] = strlen(s);
}

/* args_new - sized for the queue's webhooks */
static void args_new(struct args *a, const struct ingest_queue *q)
{
    size_t ne = 0, nf = 0;

    for (size_t i = 0; i < q->n; i++) {
        ne += q->w[i].res->nentries;
        for (size_t j = 0; j < q->w[i].res->nentries; j++)
            nf += q->w[i].res->entries[j].nfields;
    }
    /* KEYS: two per entry. ARGV: ttl, webhook count, per webhook its entry
     * count, per entry its field count and the fields' names and values. */
    size_t nkeys = 2 * ne, nargv = 2 + q->n + ne + 2 * nf;

    *a = (struct args){0};
    a->keys = tn_xcalloc(nkeys + nargv, sizeof(*a->keys));
    a->klens = tn_xcalloc(nkeys + nargv, sizeof(*a->klens));
    a->argv = a->keys + nkeys; /* ARGV follow KEYS in one array */
    a->alens = a->klens + nkeys;
    a->num = tn_xcalloc(1 + q->n + ne, sizeof(*a->num)); /* the counts (ttl is q->ttl) */
    a->dkeys = tn_xcalloc(ne + 1, sizeof(*a->dkeys));
}

/* args_free - release what a owns */
static void args_free(struct args *a)
{
    for (size_t i = 0; i < a->ndkeys; i++)
        tn_free(a->dkeys[i]);
    tn_free(a->dkeys);
    tn_free(a->num);
    tn_free(a->keys);
    tn_free(a->klens);
}

/* args_fill - KEYS and ARGV of the queued webhooks */
static void args_fill(struct args *a, const struct ingest_queue *q)
{
    arg_str(a, q->ttl);
    arg_num(a, (long long)q->n);
    for (size_t i = 0; i < q->n; i++) {
        const struct ingest_result *res = q->w[i].res;
        arg_num(a, (long long)res->nentries);
        for (size_t j = 0; j < res->nentries; j++) {
            const struct ingest_entry *e = &res->entries[j];
            a->dkeys[a->ndkeys] = key_new(e);
            a->keys[a->nk] = a->dkeys[a->ndkeys++];
            a->klens[a->nk] = strlen(a->keys[a->nk]);
            a->nk++;
            a->keys[a->nk] = e->stream;
            a->klens[a->nk++] = strlen(e->stream);
            arg_num(a, (long long)(2 * e->nfields));
            for (size_t f = 0; f < e->nfields; f++) {
                arg_str(a, e->name[f]);
                arg_str(a, e->value[f]);
            }
        }
    }
}

/* batch_done - tell every webhook of b. Runs on: loop. */
static void batch_done(struct batch *b, redisReply *reply, enum tn_err err)
{
    bool ok = err == TN_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == b->n;

    if (err == TN_OK && !ok)
        tn_log_error(NULL, "ingest.enqueue_refused",
                     TN_KV_STR("reply", reply->type == REDIS_REPLY_ERROR ? reply->str : "?"));
    for (size_t i = 0; i < b->n; i++) {
        redisReply *r = ok ? reply->element[i] : NULL;
        if (r != NULL && r->type == REDIS_REPLY_INTEGER)
            b->w[i].cb(TN_OK, (size_t)r->integer, b->w[i].arg);
        else
            b->w[i].cb(err != TN_OK ? err : TN_EUNAVAIL, 0, b->w[i].arg);
    }
}

static void queue_maybe_free(struct ingest_queue *q);

/* batch_reply - the script answered. Runs on: loop. */
static void batch_reply(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct batch *b = arg;
    struct ingest_queue *q = b->q;

    (void)r;
    batch_done(b, reply, err);
    tn_free(b);
    q->calls--;
    queue_maybe_free(q);
}

/* flush - one script call for everything queued */
static void flush(struct ingest_queue *q)
{
    struct batch *b;
    struct args a;
    enum tn_err err;

    if (q->n == 0)
        return;
    b = tn_xmalloc(sizeof(*b) + q->n * sizeof(b->w[0]));
    b->q = q;
    b->n = q->n;
    memcpy(b->w, q->w, q->n * sizeof(q->w[0]));
    args_new(&a, q);
    args_fill(&a, q);
    q->n = 0;
    err =
        tn_script_call(q->redis, &enqueue_lua, a.nk, a.nk + a.na, a.keys, a.klens, batch_reply, b);
    args_free(&a);
    if (err == TN_OK) {
        q->calls++;
        return;
    }
    batch_done(b, NULL, err);
    tn_free(b);
}

/* on_check - the loop has read its sockets: send the turn's webhooks.
 * Runs on: loop. */
static void on_check(uv_check_t *h)
{
    struct ingest_queue *q = h->data;

    flush(q);
    uv_check_stop(&q->check);
    tn_redis_flush(q->redis); /* the webhooks wait on it: out now, not next poll */
}

struct ingest_queue *ingest_queue_new(struct uv_loop_s *loop, struct tn_redis *redis,
                                      int64_t dedupe_s)
{
    struct ingest_queue *q = tn_xcalloc(1, sizeof(*q));

    q->redis = redis;
    snprintf(q->ttl, sizeof(q->ttl), "%lld", (long long)dedupe_s);
    TN_ASSERT(uv_check_init(loop, &q->check) == 0);
    q->check.data = q;
    return q;
}

enum tn_err ingest_enqueue(struct ingest_queue *q, const struct ingest_result *res,
                           ingest_enqueue_fn *cb, void *arg)
{
    if (q->closing || !tn_redis_connected(q->redis))
        return TN_EUNAVAIL;
    q->w[q->n++] = (struct waiter){.res = res, .cb = cb, .arg = arg};
    if (q->n == QUEUE_MAX)
        flush(q);
    else
        uv_check_start(&q->check, on_check);
    return TN_OK;
}

/* on_closed - the check handle is closed. Runs on: loop. */
static void on_closed(uv_handle_t *h)
{
    tn_free(h->data);
}

/* queue_maybe_free - after ingest_queue_free, once no call is on the wire */
static void queue_maybe_free(struct ingest_queue *q)
{
    if (q->closing && q->calls == 0 && !uv_is_closing((uv_handle_t *)&q->check))
        uv_close((uv_handle_t *)&q->check, on_closed);
}

void ingest_queue_free(struct ingest_queue *q)
{
    if (q == NULL)
        return;
    flush(q);
    q->closing = true;
    queue_maybe_free(q);
}
