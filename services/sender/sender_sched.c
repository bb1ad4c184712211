/*
 * NAME
 *	sender_sched - the due-time schedule in Redis
 * SYNOPSIS
 *	sender_sched_add(ctx, tenant, member, due_ms, nx, done, arg);
 *	sender_sched_start(ctx); sender_sched_kick(ctx); sender_sched_done(ctx, t, m);
 * DESCRIPTION
 *	Every message waiting to be sent is a member of its tenant's ZSET
 *	tern:sched:<tenant>, scored by the time (epoch ms) it is due: now for a
 *	fresh message, not_before for a scheduled one, the backoff for a retry.
 *	tern:sched indexes the tenants by their earliest due time. Both live
 *	in Redis (AOF), so the schedule survives restarts and is shared by
 *	replicas; nothing sleeps on the loop.
 *
 *	A claim (one Lua script, atomic) takes the tenants that have something
 *	due, gives each an equal share of the free job slots (at most
 *	TN_SENDER_TENANT_BATCH), starting at a random tenant, and re-scores the
 *	claimed members to now + TN_SENDER_LEASE: a member whose process dies
 *	comes back by itself when its lease ends. A finished job removes its
 *	member; a retry re-scores it. This is what makes one tenant's burst
 *	unable to starve another: every due tenant is served every round.
 *
 *	The poll timer claims every TN_SENDER_POLL (default 200 ms), and at
 *	once after a fresh message is scheduled or a full claim.
 *
 *	Intake sends fresh messages itself when it finds (or waits briefly
 *	for) a free job slot (sender_out.c). So that a claim cannot take every
 *	slot from it (nor it from the claims), a claim within a second of
 *	intake finding no free slot takes at most half of the slots (counting
 *	the claimed jobs still running); otherwise all free slots.
 *
 *	Cost: the scripts go by their SHA-1 (tn_script: EVALSHA; on NOSCRIPT, after a
 *	Redis restart, once more as EVAL, which caches them again); additions
 *	come a batch of entries per call, removals the loop iteration's worth
 *	per call (sender_sched_flush), and within a call one ZADD or ZREM per
 *	run of one tenant's members (a batch's members come sorted by tenant)
 *	and one index update per tenant.
 *
 *	XXX: the scripts touch keys they do not declare (a tenant's ZSET), which
 *	is fine on one Redis and not on Redis Cluster; sharding by tenant with
 *	a hash tag would make both keys one slot.
 * RUNS ON
 *	loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>
#include <tn/tn_script.h>
#include <tn/tn_time.h>

#include "sender.h"

/* ARGV: nx ("1"/"0"), then runs of one tenant's members: the tenant, a
 * count n and n (due, member) pairs (sender_grouped_add). One variadic ZADD
 * per run (a redis.call per member cost Redis more than the ZADD itself),
 * then the index once per tenant. */
static const char lua_add[] =
    "local seen = {}\n"
    "local i = 2\n"
    "while i <= #ARGV do\n"
    "  local t, j = ARGV[i], i + 1 + 2 * tonumber(ARGV[i + 1])\n"
    "  local k = 'tern:sched:' .. t\n"
    "  if ARGV[1] == '1' then redis.call('ZADD', k, 'NX', unpack(ARGV, i + 2, j))\n"
    "  else redis.call('ZADD', k, unpack(ARGV, i + 2, j)) end\n"
    "  seen[t] = k\n"
    "  i = j + 1\n"
    "end\n"
    "for t, k in pairs(seen) do\n"
    "  local f = redis.call('ZRANGEBYSCORE', k, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)\n"
    "  redis.call('ZADD', 'tern:sched', f[2], t)\n"
    "end\n"
    "return 1\n";

/* ARGV: runs of one tenant's members: the tenant, a count n and n members
 * (sender_grouped_add). One variadic ZREM per run, the index once per
 * tenant. */
static const char lua_done[] =
    "local seen = {}\n"
    "local i = 1\n"
    "while i <= #ARGV do\n"
    "  local t, j = ARGV[i], i + 1 + tonumber(ARGV[i + 1])\n"
    "  local k = 'tern:sched:' .. t\n"
    "  redis.call('ZREM', k, unpack(ARGV, i + 2, j))\n"
    "  seen[t] = k\n"
    "  i = j + 1\n"
    "end\n"
    "for t, k in pairs(seen) do\n"
    "  local f = redis.call('ZRANGEBYSCORE', k, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)\n"
    "  if #f == 0 then redis.call('ZREM', 'tern:sched', t)\n"
    "  else redis.call('ZADD', 'tern:sched', f[2], t) end\n"
    "end\n"
    "return 1\n";

/* ARGV: now, lease_until, total, per_tenant, seed. Returns tenant, member pairs. */
static const char lua_claim[] =
    "local now, lease = ARGV[1], ARGV[2]\n"
    "local total, per = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local ts = redis.call('ZRANGEBYSCORE', 'tern:sched', '-inf', now, 'LIMIT', 0, 1000)\n"
    "local out = {}\n"
    "if #ts == 0 then return out end\n"
    "local share = math.max(1, math.min(per, math.floor(total / #ts)))\n"
    "local start = tonumber(ARGV[5]) % #ts\n"
    "for i = 0, #ts - 1 do\n"
    "  if #out >= total * 2 then break end\n"
    "  local t = ts[(start + i) % #ts + 1]\n"
    "  local k = 'tern:sched:' .. t\n"
    "  local n = math.min(share, total - #out / 2)\n"
    "  local ms = redis.call('ZRANGEBYSCORE', k, '-inf', now, 'LIMIT', 0, n)\n"
    "  for _, m in ipairs(ms) do\n"
    "    redis.call('ZADD', k, lease, m)\n"
    "    out[#out + 1] = t\n"
    "    out[#out + 1] = m\n"
    "  end\n"
    "  local f = redis.call('ZRANGEBYSCORE', k, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)\n"
    "  if #f == 0 then redis.call('ZREM', 'tern:sched', t)\n"
    "  else redis.call('ZADD', 'tern:sched', f[2], t) end\n"
    "end\n"
    "return out\n";

static struct tn_script s_add = TN_SCRIPT_INIT(lua_add), s_done = TN_SCRIPT_INIT(lua_done),
                        s_claim = TN_SCRIPT_INIT(lua_claim);

/* sender_member_make - "<outbound>:<channel>:<contact>:<provider>" */
void sender_member_make(char *out, size_t size, const char *outbound, const char *channel,
                        const char *contact, const char *provider)
{
    snprintf(out, size, "%s:%s:%s:%s", outbound, channel, contact, provider);
}

/* eval - EVALSHA script 0 args... (tn_script: EVAL again after NOSCRIPT);
 * cb(r, reply, err, arg) as tn_redis_argv */
static enum tn_err eval(struct sender_ctx *ctx, struct tn_script *sc, size_t nargs,
                        const char *const *args, tn_redis_reply_fn *cb, void *arg)
{
    return tn_script_call(ctx->redis, sc, 0, nargs, args, NULL, cb, arg);
}

/* sender_grouped_init - see sender.h */
void sender_grouped_init(struct sender_grouped *g, size_t lead, size_t n, size_t npick)
{
    /* worst case: every item starts a run (tenant and count) */
    g->argv = tn_xcalloc(lead + n * (2 + npick), sizeof(*g->argv));
    g->count = tn_xcalloc(n + 1, sizeof(*g->count));
    g->n = 0;
    g->ncount = 0;
}

/* sender_grouped_add - see sender.h */
void sender_grouped_add(struct sender_grouped *g, const char *const *in, size_t n, size_t stride,
                        const size_t *pick, size_t npick)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        const char *const *item = in + i * stride;

        if (run == 0 || run == SENDER_GROUP_MAX || strcmp(item[0], in[(i - 1) * stride]) != 0) {
            if (run > 0)
                snprintf(g->count[g->ncount++], sizeof(g->count[0]), "%zu", run);
            g->argv[g->n++] = item[0];
            g->argv[g->n++] = g->count[g->ncount]; /* written when the run ends */
            run = 0;
        }
        for (size_t p = 0; p < npick; p++)
            g->argv[g->n++] = item[pick[p]];
        run++;
    }
    if (run > 0)
        snprintf(g->count[g->ncount++], sizeof(g->count[0]), "%zu", run);
}

/* sender_grouped_close - see sender.h */
void sender_grouped_close(struct sender_grouped *g)
{
    tn_free(g->argv);
    tn_free(g->count);
}

struct add_op {
    void (*done)(enum tn_err, void *);
    void *arg;
};

/* add_cb - ZADD answered */
static void add_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct add_op *op = arg;

    (void)r;
    if (err == TN_OK && reply->type == REDIS_REPLY_ERROR) {
        tn_log_error(NULL, "sender.sched_failed", TN_KV_STR("redis", reply->str));
        err = TN_EUNAVAIL;
    }
    if (op->done != NULL)
        op->done(err, op->arg);
    tn_free(op);
}

/* add - ZADD n (tenant, member, due) triples (nx or not) in one call */
static enum tn_err add(struct sender_ctx *ctx, bool nx, size_t n, const char *const *triples,
                       void (*done)(enum tn_err, void *), void *arg)
{
    static const size_t pick[] = {2, 1}; /* ZADD's order: score, member */
    struct add_op *op = tn_xcalloc(1, sizeof(*op));
    struct sender_grouped g;
    enum tn_err err;

    sender_grouped_init(&g, 1, n, 2);
    g.argv[g.n++] = nx ? "1" : "0";
    sender_grouped_add(&g, triples, n, 3, pick, 2);
    op->done = done;
    op->arg = arg;
    err = eval(ctx, &s_add, g.n, g.argv, add_cb, op);
    if (err != TN_OK)
        tn_free(op);
    sender_grouped_close(&g);
    return err;
}

/* sender_sched_add - schedule member at due_ms */
enum tn_err sender_sched_add(struct sender_ctx *ctx, const char *tenant, const char *member,
                             int64_t due_ms, bool nx, void (*done)(enum tn_err, void *), void *arg)
{
    char due[24];

    snprintf(due, sizeof(due), "%" PRId64, due_ms);
    return add(ctx, nx, 1, (const char *const[]){tenant, member, due}, done, arg);
}

/* sender_sched_add_many - schedule n members (ZADD NX) in one call */
enum tn_err sender_sched_add_many(struct sender_ctx *ctx, size_t n, const char *const *argv,
                                  void (*done)(enum tn_err, void *), void *arg)
{
    return add(ctx, true, n, argv, done, arg);
}

/* done_cb - removal answered (logged only) */
static void done_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    (void)r;
    (void)arg;
    if (err != TN_OK || reply->type == REDIS_REPLY_ERROR)
        tn_log_warn(NULL, "sender.unschedule_failed", TN_KV_ERR(err));
}

/* sender_sched_done - queue member's removal for the next flush */
void sender_sched_done(struct sender_ctx *ctx, const char *tenant, const char *member)
{
    struct sender_unsched *u = &ctx->unsched;

    if (u->n + 2 > u->cap) {
        u->cap = u->cap == 0 ? 128 : u->cap * 2;
        u->argv = tn_xrealloc(u->argv, u->cap * sizeof(*u->argv));
    }
    u->argv[u->n++] = tn_xstrdup(tenant);
    u->argv[u->n++] = tn_xstrdup(member);
}

/* sender_sched_flush - send the queued removals, 512 members per call */
void sender_sched_flush(struct sender_ctx *ctx)
{
    static const size_t pick[] = {1};
    struct sender_unsched *u = &ctx->unsched;
    size_t pairs = u->n / 2;

    for (size_t i = 0; i < pairs; i += SENDER_GROUP_MAX) {
        size_t n = pairs - i < SENDER_GROUP_MAX ? pairs - i : SENDER_GROUP_MAX;
        struct sender_grouped g;

        sender_grouped_init(&g, 0, n, 1);
        sender_grouped_add(&g, (const char *const *)u->argv + 2 * i, n, 2, pick, 1);
        if (eval(ctx, &s_done, g.n, g.argv, done_cb, NULL) != TN_OK)
            tn_log_warn(NULL, "sender.unschedule_failed", TN_KV_ERR(TN_EUNAVAIL));
        sender_grouped_close(&g);
    }
    for (size_t i = 0; i < u->n; i++)
        tn_free(u->argv[i]);
    u->n = 0;
}

/* claim_cb - start a job per claimed member */
static void claim_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct sender_ctx *ctx = arg;

    (void)r;
    ctx->claiming = false;
    if (err != TN_OK || reply->type != REDIS_REPLY_ARRAY) {
        if (err == TN_OK)
            tn_log_error(NULL, "sender.claim_failed", TN_KV_STR("redis", reply->str));
        return;
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2)
        sender_send_start(ctx, reply->element[i]->str, reply->element[i + 1]->str);
    /* something was due: more may be, claim again while there is room */
    if (reply->elements > 0)
        sender_sched_kick(ctx);
}

/* sender_sched_kick - claim what is due, up to the free job slots */
void sender_sched_kick(struct sender_ctx *ctx)
{
    char now[24], lease[24], total[24], per[24], seed[24];
    int64_t t = tn_now_ms();
    size_t room;
    uint32_t rnd;

    if (ctx->claiming || ctx->draining || !tn_redis_connected(ctx->redis))
        return;
    room = ctx->jobs < (size_t)ctx->cfg.concurrency ? (size_t)ctx->cfg.concurrency - ctx->jobs : 0;
    if (t - ctx->intake_starved_ms < 1000) {
        /* fresh entries found no slot within the last second: claims keep
         * to half of the slots, so that both the schedule (retries, later
         * sends, fairness between tenants) and intake's sends at once
         * (sender_out.c) go on under load */
        size_t half = (size_t)(ctx->cfg.concurrency + 1) / 2;

        if (room > (half > ctx->claimed ? half - ctx->claimed : 0))
            room = half > ctx->claimed ? half - ctx->claimed : 0;
    }
    if (room == 0)
        return;
    tn_random_bytes(&rnd, sizeof(rnd));
    snprintf(now, sizeof(now), "%" PRId64, t);
    snprintf(lease, sizeof(lease), "%" PRId64, t + ctx->cfg.lease_ms);
    snprintf(total, sizeof(total), "%zu", room);
    snprintf(per, sizeof(per), "%" PRId64, ctx->cfg.tenant_batch);
    snprintf(seed, sizeof(seed), "%u", (unsigned)(rnd % 1000000));
    if (eval(ctx, &s_claim, 5, (const char *const[]){now, lease, total, per, seed}, claim_cb,
             ctx) == TN_OK)
        ctx->claiming = true;
}

/* poll_cb - the periodic claim */
static void poll_cb(uv_timer_t *t)
{
    sender_sched_kick(t->data);
}

/* sender_sched_start - start polling */
void sender_sched_start(struct sender_ctx *ctx)
{
    ctx->poll = tn_xcalloc(1, sizeof(*ctx->poll));
    uv_timer_init(ctx->loop, ctx->poll);
    ctx->poll->data = ctx;
    uv_timer_start(ctx->poll, poll_cb, 0, (uint64_t)ctx->cfg.poll_ms);
}

/* close_cb - free the timer */
static void close_cb(uv_handle_t *h)
{
    tn_free(h);
}

/* sender_sched_stop - stop polling and close the timer */
void sender_sched_stop(struct sender_ctx *ctx)
{
    sender_sched_flush(ctx);
    if (ctx->poll == NULL)
        return;
    uv_timer_stop(ctx->poll);
    uv_close((uv_handle_t *)ctx->poll, close_cb);
    ctx->poll = NULL;
}
