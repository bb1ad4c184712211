/*
 * NAME
 *	agent_turn_claim - a turn's lease: claim, quiet window, gate, renewals
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_turn_claim(turn);            CLAIM, then WAIT or GATE, then ask
 *	agent_turn_renew_all(ctx);         from the scan
 * DESCRIPTION
 *	The claim/load job takes (or keeps) the conversation's row lease and
 *	loads the turn's input (tern_agent_claim, proto/sql/0011_agent_perf.sql).
 *	While the quiet window lasts the turn waits on its timer and claims
 *	again. The pool's queue is FIFO, so only claim_limit() claims are in the
 *	pool at once; the others wait in this process, in order, so that the
 *	intake of new messages and the commits of finished turns are never
 *	stuck behind thousands of claims.
 *
 *	The gate keeps the order of a conversation across replicas (see gate()).
 *	Renewals extend the leases of running turns a third of the way to
 *	expiry; a renewal that finds the lease gone marks the turn lost, and
 *	its commit will write nothing.
 * RUNS ON
 *	loop; the claim and renewal work on the threadpool (agent_store_turn.c).
 * DIAGNOSTICS
 *	agent.turn_failed (step "claim"), agent.turn_done (a silent outcome).
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_daemon.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "agent.h"

#define GATE_POLL_MS 20
#define GATE_MAX_MS 2000

static void gate(struct agent_turn *t);
static void claim_done(enum tn_err err, void *arg);

/* wait_cb - the quiet window may be over: claim again (keeps our lease) */
static void wait_cb(uv_timer_t *h)
{
    agent_turn_claim(h->data);
}

/* gate_timer_cb - look at the pending entries again */
static void gate_timer_cb(uv_timer_t *h)
{
    gate(h->data);
}

/* id_pos - a stream id as messages.stream_pos */
static long long id_pos(const char *id)
{
    char *end;
    unsigned long long ms = strtoull(id, &end, 10);
    unsigned long long seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;

    return (long long)(ms * 1000000ULL + seq % 1000000ULL);
}

/* gate_decide - ask, or look again later, given the oldest pending entry
 * (0: none) */
static void gate_decide(struct agent_turn *t, long long oldest)
{
    if (oldest != 0 && oldest < t->ld.last_pos && tn_mono_ms() - t->gate_since < GATE_MAX_MS) {
        uv_timer_start(&t->timer, gate_timer_cb, GATE_POLL_MS, 0);
        return;
    }
    agent_turn_ask(t);
}

/* gate_cb - the oldest pending entry, shared with every gating turn */
static void gate_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct agent_turn *t = arg;
    struct agent_ctx *ctx = t->ctx;

    (void)r;
    ctx->pend_querying = false;
    if (ctx->closing) {
        agent_turn_end(t);
        return;
    }
    ctx->pend_oldest = 0;
    if (err == TN_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING)
        ctx->pend_oldest = id_pos(reply->element[1]->str);
    ctx->pend_ms = err == TN_OK ? tn_mono_ms() : 0;
    gate_decide(t, ctx->pend_oldest);
}

/* gate - ordering across replicas: the group reads tern:in in order but
 * replicas store entries in parallel, so a later message of this
 * conversation may be stored before an earlier one still being stored
 * elsewhere. Intake acknowledges only after its commit, so while the oldest
 * pending entry is older than our newest message the input may be
 * incomplete: wait (at most GATE_MAX_MS, so that an entry stuck with a dead
 * consumer only delays us). One XPENDING answer serves every turn that gates
 * within GATE_POLL_MS: with thousands of turns in flight, one query per
 * poll instead of one per turn and poll. */
static void gate(struct agent_turn *t)
{
    static const char *const argv[] = {"XPENDING", TN_STREAM_IN, TN_GROUP_AGENT};
    struct agent_ctx *ctx = t->ctx;

    t->state = TURN_GATE;
    if (t->ld.last_pos == 0 || ctx->rt->redis == NULL) {
        agent_turn_ask(t);
        return;
    }
    if (ctx->pend_ms != 0 && tn_mono_ms() - ctx->pend_ms < GATE_POLL_MS) {
        gate_decide(t, ctx->pend_oldest);
        return;
    }
    if (ctx->pend_querying) { /* another turn asks right now: look at its answer soon */
        uv_timer_start(&t->timer, gate_timer_cb, GATE_POLL_MS / 2, 0);
        return;
    }
    if (tn_redis_argv(ctx->rt->redis, 3, argv, NULL, gate_cb, t) != TN_OK) {
        agent_turn_ask(t);
        return;
    }
    ctx->pend_querying = true;
}

/* claim_limit - claim jobs in the pool at most: half the connections, so
 * that intake, commits and renewals always find the other half; a quarter
 * while inbound messages wait to be stored (a message must be durable and
 * acknowledged before it can be answered, so storing a burst comes first);
 * never fewer than two, so a small pool still claims in parallel */
static size_t claim_limit(const struct agent_ctx *ctx)
{
    size_t n = (size_t)ctx->cfg.pg_pool / (ctx->intakes > 0 ? 4 : 2);

    return n > 2 ? n : 2;
}

/* claim_send - submit the claim/load job */
static void claim_send(struct agent_turn *t)
{
    struct agent_ctx *ctx = t->ctx;

    ctx->nclaims++;
    if (agent_pg_submit(ctx, agent_store_claim_work, claim_done, t) != TN_OK) {
        ctx->nclaims--;
        agent_turn_end(t);
    }
}

/* claim_next - submit queued claims while there is room */
static void claim_next(struct agent_ctx *ctx)
{
    while (ctx->cq_head != NULL && ctx->nclaims < claim_limit(ctx)) {
        struct agent_turn *t = ctx->cq_head;

        ctx->cq_head = t->cq_next;
        if (ctx->cq_head == NULL)
            ctx->cq_tail = NULL;
        t->cq_next = NULL;
        claim_send(t);
    }
}

/* claim_done - wait, settle, or ask the model */
static void claim_done(enum tn_err err, void *arg)
{
    struct agent_turn *t = arg;
    struct agent_ctx *ctx = t->ctx;
    struct tn_log_ctx lc = agent_turn_log_ctx(t);

    ctx->nclaims--;
    claim_next(ctx);
    if (ctx->closing || err != TN_OK || !t->ld.claimed) {
        if (err != TN_OK && err != TN_ECANCELED)
            tn_log_warn(&lc, "agent.turn_failed", TN_KV_STR("step", "claim"), TN_KV_ERR(err),
                        TN_KV_STR("conversation", t->conv));
        agent_turn_end(t); /* not ours, nothing to do, or failed: the scan looks again */
        return;
    }
    t->renewed_ms = tn_mono_ms();
    if (t->ld.wait_ms > 0) {
        t->state = TURN_WAIT;
        uv_timer_start(&t->timer, wait_cb, (uint64_t)t->ld.wait_ms, 0);
        return;
    }
    if (t->ld.finished) {
        if (t->outcome != NULL) {
            tn_metric_inc(ctx->m_silent);
            tn_log_info(&lc, "agent.turn_done", TN_KV_STR("conversation", t->conv),
                        TN_KV_STR("outcome", t->outcome), TN_KV_INT("messages", t->ld.nfresh));
        }
        agent_turn_finish(t);
        return;
    }
    t->gate_since = tn_mono_ms();
    gate(t);
}

/* agent_turn_claim - run the claim/load job. The pool's queue is FIFO: with
 * thousands of claims in it, the intake of new messages (and the commits
 * of finished turns) would wait behind all of them. So only claim_limit()
 * claims are in the pool; the others wait here in order. */
void agent_turn_claim(struct agent_turn *t)
{
    struct agent_ctx *ctx = t->ctx;

    t->state = TURN_CLAIM;
    if (ctx->nclaims < claim_limit(ctx)) {
        claim_send(t);
        return;
    }
    t->cq_next = NULL;
    if (ctx->cq_tail != NULL)
        ctx->cq_tail->cq_next = t;
    else
        ctx->cq_head = t;
    ctx->cq_tail = t;
}

/* renew_done - note the renewal on the turn, if it still runs */
static void renew_done(enum tn_err err, void *arg)
{
    struct agent_renew *r = arg;
    struct agent_turn *t = agent_turn_find(r->ctx, r->conv);

    if (t != NULL && strcmp(t->token, r->token) == 0) {
        t->renewing = false;
        if (err == TN_OK && r->held)
            t->renewed_ms = tn_mono_ms();
        else if (err == TN_OK)
            t->lost = true;
    }
    agent_maybe_free_pg(r->ctx);
    tn_free(r);
}

/* agent_turn_renew_all - renew every lease a third of the way to expiry */
void agent_turn_renew_all(struct agent_ctx *ctx)
{
    int64_t now = tn_mono_ms();

    for (size_t b = 0; b < ctx->nbuckets; b++) {
        for (struct agent_turn *t = ctx->buckets[b]; t != NULL; t = t->next) {
            struct agent_renew *r;

            if (t->renewing || t->state == TURN_CLAIM || t->state == TURN_CLOSING ||
                now - t->renewed_ms < ctx->cfg.lease_ms / 3)
                continue;
            r = tn_xcalloc(1, sizeof(*r));
            r->ctx = ctx;
            memcpy(r->tenant, t->tenant, sizeof(r->tenant));
            memcpy(r->conv, t->conv, sizeof(r->conv));
            memcpy(r->token, t->token, sizeof(r->token));
            r->lease_ms = ctx->cfg.lease_ms;
            if (agent_pg_submit(ctx, agent_store_renew_work, renew_done, r) != TN_OK)
                tn_free(r);
            else
                t->renewing = true;
        }
    }
}
