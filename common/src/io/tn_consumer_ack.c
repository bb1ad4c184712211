/*
 * NAME
 *	tn_consumer_ack - tn_consumer's dispositions and batched acknowledgements
 * DESCRIPTION
 *	tn_consumer_done sends an entry on by its disposition: ACK here, DEAD
 *	and RETRY to tn_consumer_retry.c.
 *
 *	Acknowledgements are batched: tn_consumer_done(ACK) queues the entry
 *	(it stays in flight) and an idle handle, which keeps the loop from
 *	blocking, sends one XACK for everything queued in that loop iteration
 *	(a handler that finishes a read's worth of entries at once gets one
 *	command instead of one per entry). An entry is still acknowledged only
 *	after its handler said done; the answer releases each.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	consumer.ack_failed.
 */
#include <hiredis/hiredis.h>

#include <tn/tn_consumer.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>

#include "tn_consumer_int.h"

#define ACK_MAX 1024 /* ids per XACK */

/* An XACK on the wire: the entries it acknowledges. */
struct ack_batch {
    struct tn_consumer *c;
    size_t n;
    struct tn_entry *e[];
};

/* ack_cb - XACK of a batch answered: release every entry of it */
static void ack_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct ack_batch *b = arg;
    struct tn_consumer *c = b->c;

    (void)r;
    c->ops--;
    if (err == TN_OK && reply->type == REDIS_REPLY_INTEGER) {
        c->st.acked += b->n;
    } else {
        c->st.errors += b->n;
        tn_log_warn(&c->log, "consumer.ack_failed", TN_KV_STR("entry_id", b->e[0]->id),
                    TN_KV_INT("entries", b->n), TN_KV_ERR(err),
                    TN_KV_STR("detail", tn__consumer_reply_error(reply)));
    }
    /* the last release may free c (tn_consumer_free pending): c is not
     * touched after the loop */
    for (size_t i = 0; i < b->n; i++)
        tn__consumer_release(c, b->e[i]);
    tn_free(b);
}

/* send_acks - XACK s g id... for up to ACK_MAX queued entries from acks[0] */
static void send_acks(struct tn_consumer *c, struct tn_entry **acks, size_t n)
{
    struct ack_batch *b = tn_xmalloc(sizeof(*b) + n * sizeof(b->e[0]));
    const char **argv = tn_xcalloc(n + 3, sizeof(*argv));

    b->c = c;
    b->n = n;
    argv[0] = "XACK";
    argv[1] = c->stream;
    argv[2] = c->group;
    for (size_t i = 0; i < n; i++) {
        b->e[i] = acks[i];
        argv[3 + i] = acks[i]->id;
    }
    if (tn__consumer_send_op(c, c->ctl, c->command_timeout_ms, (int)n + 3, argv, NULL, ack_cb, b) !=
        TN_OK) {
        c->st.errors += n; /* stay pending: reclaimed and handled again later */
        tn_log_warn(&c->log, "consumer.ack_failed", TN_KV_STR("entry_id", acks[0]->id),
                    TN_KV_INT("entries", n), TN_KV_ERR(TN_EUNAVAIL));
        for (size_t i = 0; i < n; i++)
            tn__consumer_release(c, b->e[i]);
        tn_free(b);
    }
    tn_free(argv);
}

/* tn__consumer_flush_acks - send every queued ack. The queue is detached first: a
 * release may run the handler's next entries, which may queue again. */
void tn__consumer_flush_acks(struct tn_consumer *c)
{
    struct tn_entry **acks = c->acks;
    size_t n = c->nacks;

    c->acks = NULL;
    c->nacks = c->acks_cap = 0;
    uv_idle_stop(&c->ack_idle);
    for (size_t i = 0; i < n; i += ACK_MAX)
        send_acks(c, acks + i, n - i < ACK_MAX ? n - i : ACK_MAX);
    tn_free(acks);
}

/* ack_idle_cb - the loop iteration's acks are in: send them. Runs on: loop. */
static void ack_idle_cb(uv_idle_t *h)
{
    tn__consumer_flush_acks(h->data);
}

/* finish_ack - queue e for the next XACK (it stays in flight until then) */
static void finish_ack(struct tn_consumer *c, struct tn_entry *e)
{
    tn__consumer_set_state(c, e, E_FINISHING);
    if (c->nacks == c->acks_cap) {
        c->acks_cap = c->acks_cap == 0 ? 64 : 2 * c->acks_cap;
        c->acks = tn_xrealloc(c->acks, c->acks_cap * sizeof(*c->acks));
    }
    c->acks[c->nacks++] = e;
    if (c->nacks == 1)
        uv_idle_start(&c->ack_idle, ack_idle_cb);
}

/* tn_consumer_done - see tn_consumer.h */
void tn_consumer_done(struct tn_consumer *c, struct tn_entry *e, enum tn_disp disp,
                      const char *reason)
{
    TN_ASSERT(e->_c == c && e->_state == E_HANDLER);
    if (c->freeing) {
        tn__consumer_release(c, e); /* stays pending in Redis */
        return;
    }
    if (reason != NULL) {
        tn_free(e->_reason); /* a retried entry comes back with the last reason */
        e->_reason = tn_xstrdup(reason);
    }
    if (disp == TN_DISP_ACK)
        finish_ack(c, e);
    else if (disp == TN_DISP_DEAD)
        tn__consumer_finish_dead(c, e, "dead");
    else if (e->deliveries >= c->max_deliveries)
        tn__consumer_finish_dead(c, e, "max_deliveries");
    else if (c->stopping)
        tn__consumer_release(c, e); /* draining: another consumer retries it after visibility_ms */
    else
        tn__consumer_retry(c, e);
}
