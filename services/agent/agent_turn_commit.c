/*
 * NAME
 *	agent_turn_commit - a turn's result: commit, publish, go again
 * SYNOPSIS
 *	#include "agent.h"
 *	agent_turn_commit(turn);           t->reply and t->reason are set
 * DESCRIPTION
 *	Runs the commit job (tern_agent_commit, agent_store_turn.c): reply,
 *	effects, processed marks and lease release in one transaction that only
 *	succeeds while the turn's token holds the lease. Then the reply goes to
 *	tern:out (agent_publish.c) and the turn starts over when input is left.
 *	A lost lease ends the turn without a reply (the new holder answers); a
 *	retryable failure is retried COMMIT_RETRIES times, then the lease runs
 *	out and the scan runs the turn again.
 * RUNS ON
 *	loop; the commit work on the threadpool.
 * DIAGNOSTICS
 *	agent.turn_done (outcome, messages, rounds, ms), agent.lease_lost,
 *	agent.turn_failed (step "commit").
 */
#include <string.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_time.h>

#include "agent.h"

#define COMMIT_RETRIES 3

/* commit_backoff_cb - retry the commit */
static void commit_backoff_cb(uv_timer_t *h)
{
    agent_turn_commit(h->data);
}

/* commit_done - publish and loop, or give up */
static void commit_done(enum tn_err err, void *arg)
{
    struct agent_turn *t = arg;
    struct agent_ctx *ctx = t->ctx;
    struct tn_log_ctx lc = agent_turn_log_ctx(t);

    if (ctx->closing) {
        agent_turn_end(t);
        return;
    }
    if (err == TN_ECONFLICT) {
        tn_metric_inc(ctx->m_lost);
        tn_log_warn(&lc, "agent.lease_lost", TN_KV_STR("conversation", t->conv));
        agent_turn_end(t);
        return;
    }
    if (err != TN_OK) {
        tn_log_warn(&lc, "agent.turn_failed", TN_KV_STR("step", "commit"), TN_KV_ERR(err),
                    TN_KV_STR("conversation", t->conv));
        if (tn_err_retryable(err) && t->commit_attempt < COMMIT_RETRIES) {
            t->state = TURN_BACKOFF;
            uv_timer_start(&t->timer, commit_backoff_cb,
                           tn_backoff_delay(200, 2000, (uint32_t)t->commit_attempt++), 0);
        } else {
            agent_turn_end(t); /* the lease expires and the scan runs the turn again */
        }
        return;
    }
    tn_metric_inc(t->out == NULL                      ? ctx->m_silent
                  : strcmp(t->reason, "holding") == 0 ? ctx->m_holding
                                                      : ctx->m_replies);
    tn_log_info(&lc, "agent.turn_done", TN_KV_STR("conversation", t->conv),
                TN_KV_STR("outcome", t->outcome), TN_KV_INT("messages", t->ld.nfresh),
                TN_KV_INT("rounds", t->round), TN_KV_INT("ms", tn_mono_ms() - t->started_ms));
    if (t->out != NULL) {
        t->out->trace = t->trace != NULL ? tn_xstrdup(t->trace) : NULL;
        agent_publish(ctx, t->out);
        t->out = NULL;
    }
    agent_turn_finish(t);
}

/* agent_turn_commit - store the turn's result */
void agent_turn_commit(struct agent_turn *t)
{
    t->state = TURN_COMMIT;
    if (agent_pg_submit(t->ctx, agent_store_commit_work, commit_done, t) != TN_OK)
        agent_turn_end(t);
}
