/*
 * NAME
 *	tn_consumer_retry - tn_consumer's retries, reclaims and dead letters
 * DESCRIPTION
 *	RETRY keeps the entry pending and arms one timer for the earliest due
 *	entry. When it is due we XCLAIM it to ourselves with min-idle-time half
 *	the delay: that bumps Redis' delivery count, and it claims nothing if
 *	another consumer has taken the entry meanwhile (its idle time restarted).
 *	Not the whole delay: Redis and libuv truncate different clocks to
 *	milliseconds, so an entry due by our clock can be a millisecond short
 *	of it by Redis', and XCLAIM would skip it. The delay grows with
 *	the delivery count (tn_backoff_delay) and stays below half the
 *	visibility timeout, so that our own waits never look like a crash to
 *	the XAUTOCLAIM of other replicas.
 *
 *	XAUTOCLAIM runs every claim_interval_ms for entries idle longer than
 *	visibility_ms. Redis 7 answers (cursor, entries, deleted ids); the
 *	deleted ids are XACKed (they are gone from the stream) and the claimed
 *	entries' delivery counts are read with XPENDING's range form, so an
 *	entry whose handler keeps crashing the process goes to dead instead of
 *	to the handler once it has been delivered more than max_deliveries
 *	times.
 *
 *	Dead letters copy the original fields plus dead_reason, dead_from_id,
 *	dead_deliveries and dead_at (RFC 3339) to "<stream>:dead" and ack in
 *	one MULTI/EXEC, so an entry is never both lost and acked.
 *
 *	The life cycle and the reading are in tn_consumer.c.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	consumer.dead, consumer.dead_failed, consumer.reclaimed,
 *	consumer.reclaim_failed, consumer.retry_lost.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_consumer.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "tn_consumer_int.h"

/* A reclaimed batch waiting for its delivery counts. */
struct claim_batch {
    struct tn_consumer *c;
    size_t n;
    struct tn_entry **e;
};

static void claimed(struct tn_consumer *c, const redisReply *reply, enum tn_err err);

/* find_held - the held entry with this id, if any */
static struct tn_entry *find_held(struct tn_consumer *c, const char *id)
{
    for (struct tn_entry *e = c->held; e != NULL; e = e->_next) {
        if (strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

/* xclaim_cb - the XCLAIM of a retry answered */
static void xclaim_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct tn_entry *e = arg;
    struct tn_consumer *c = e->_c;
    bool got;

    (void)r;
    c->retry_reserved--;
    c->ops--;
    got = err == TN_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
          reply->element[0]->type == REDIS_REPLY_ARRAY;
    if (c->freeing || c->stopping || !got) {
        if (!c->freeing && !c->stopping)
            tn_log_info(&c->log, "consumer.retry_lost", TN_KV_STR("entry_id", e->id),
                        TN_KV_ERR(err), TN_KV_STR("detail", tn__consumer_reply_error(reply)));
        tn__consumer_release(c, e); /* still pending in Redis, or taken by another consumer */
        return;
    }
    e->deliveries++;
    tn__consumer_hand(c, e);
}

/* claim_retry - XCLAIM s g me <min-idle> id: take a due retry back */
static void claim_retry(struct tn_consumer *c, struct tn_entry *e)
{
    char idle[16];
    const char *argv[] = {"XCLAIM", c->stream, c->group, c->consumer, idle, e->id};

    snprintf(idle, sizeof(idle), "%u", e->_min_idle);
    tn__consumer_set_state(c, e, E_CLAIMING);
    c->retry_reserved++;
    if (tn__consumer_send_op(c, c->ctl, c->command_timeout_ms, 6, argv, NULL, xclaim_cb, e) !=
        TN_OK) {
        c->retry_reserved--;
        tn__consumer_set_state(c, e, E_WAITING); /* ctl is down: try again on the next pump */
        e->_due = uv_now(c->loop) + c->retry_base_ms;
    }
}

/* retry_cb - a retry is due */
static void retry_cb(uv_timer_t *t)
{
    struct tn_consumer *c = t->data;

    c->retry_due = 0;
    tn__consumer_pump(c);
}

/* tn__consumer_dispatch_retries - claim due retries while there is room; arm the timer */
void tn__consumer_dispatch_retries(struct tn_consumer *c)
{
    uint64_t now = uv_now(c->loop), next = 0;

    /* pump runs after every entry a handler returns: without a retry
     * waiting, walking the held list (up to 2 * count entries) each time
     * would make a large batch quadratic. */
    if (c->waiting == 0)
        return;
    for (struct tn_entry *e = c->held; e != NULL; e = e->_next) {
        if (e->_state != E_WAITING)
            continue;
        if (e->_due <= now && tn__consumer_room(c, false, false) > 0 &&
            tn_redis_connected(c->ctl)) {
            claim_retry(c, e);
            continue;
        }
        if (e->_due > now && (next == 0 || e->_due < next))
            next = e->_due;
    }
    if (next != 0 && (c->retry_due == 0 || next < c->retry_due)) {
        c->retry_due = next;
        uv_timer_start(&c->retry_timer, retry_cb, next - now, 0);
    }
}

/* exec_ok - did every command of a MULTI/EXEC succeed */
static bool exec_ok(const redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type == REDIS_REPLY_ERROR)
            return false;
    }
    return true;
}

/* dead_cb - the dead-letter transaction answered */
static void dead_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct tn_entry *e = arg;
    struct tn_consumer *c = e->_c;

    (void)r;
    c->ops--;
    if (err == TN_OK && exec_ok(reply)) {
        c->st.dead++;
        tn_log_warn(&c->log, "consumer.dead", TN_KV_STR("entry_id", e->id),
                    TN_KV_STR("reason", e->_reason), TN_KV_INT("deliveries", e->deliveries));
    } else {
        c->st.errors++;
        tn_log_error(&c->log, "consumer.dead_failed", TN_KV_STR("entry_id", e->id), TN_KV_ERR(err),
                     TN_KV_STR("detail", tn__consumer_reply_error(reply)));
    }
    tn__consumer_release(c, e);
}

/* tn__consumer_finish_dead - MULTI; XADD <stream>:dead * fields... dead_*; XACK; EXEC */
void tn__consumer_finish_dead(struct tn_consumer *c, struct tn_entry *e, const char *reason)
{
    size_t n = 3 + 2 * e->nfields + 8, k = 0;
    const char **xadd = tn_xcalloc(n, sizeof(*xadd));
    size_t *lens = tn_xcalloc(n, sizeof(*lens));
    const char *xack[] = {"XACK", c->stream, c->group, e->id};
    char deliveries[16], at[40];

    if (e->_reason == NULL)
        e->_reason = tn_xstrdup(reason);
    snprintf(deliveries, sizeof(deliveries), "%u", e->deliveries);
    tn_time_rfc3339(tn_now_ms(), at, sizeof(at));
    xadd[k++] = "XADD";
    xadd[k++] = c->dead_stream;
    xadd[k++] = "*";
    for (size_t i = 0; i < e->nfields; i++) {
        lens[k] = e->name_lens[i];
        xadd[k++] = e->names[i];
        lens[k] = e->value_lens[i];
        xadd[k++] = e->values[i];
    }
    xadd[k++] = "dead_reason";
    xadd[k++] = e->_reason;
    xadd[k++] = "dead_from_id";
    xadd[k++] = e->id;
    xadd[k++] = "dead_deliveries";
    xadd[k++] = deliveries;
    xadd[k++] = "dead_at";
    xadd[k++] = at;
    for (size_t i = 0; i < k; i++) {
        if (lens[i] == 0)
            lens[i] = strlen(xadd[i]); /* empty field values are recomputed as 0 too */
    }
    tn__consumer_set_state(c, e, E_FINISHING);
    if (tn_redis_multi(c->ctl, 2, (const int[]){(int)k, 4},
                       (const char *const *const[]){xadd, xack},
                       (const size_t *const[]){lens, NULL}, dead_cb, e) == TN_OK) {
        c->ops++;
    } else {
        c->st.errors++;
        tn_log_error(&c->log, "consumer.dead_failed", TN_KV_STR("entry_id", e->id),
                     TN_KV_ERR(TN_EUNAVAIL));
        tn__consumer_release(c, e);
    }
    tn_free(xadd);
    tn_free(lens);
}

/* tn__consumer_retry - keep e pending and hand it over again after a growing delay */
void tn__consumer_retry(struct tn_consumer *c, struct tn_entry *e)
{
    uint32_t cap = c->retry_cap_ms;
    uint32_t delay;

    if (cap > c->visibility_ms / 2)
        cap = c->visibility_ms / 2;
    delay =
        tn_backoff_delay(c->retry_base_ms < cap ? c->retry_base_ms : cap, cap, e->deliveries - 1);
    c->st.retried++;
    tn__consumer_set_state(c, e, E_WAITING);
    e->_due = uv_now(c->loop) + delay;
    e->_min_idle = delay / 2;
    tn__consumer_pump(c);
}

/* pending_counts - apply XPENDING's [id, consumer, idle, count] rows to b */
static void pending_counts(struct claim_batch *b, const redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *row = reply->element[i];

        if (row->type != REDIS_REPLY_ARRAY || row->elements < 4 ||
            row->element[0]->type != REDIS_REPLY_STRING ||
            row->element[3]->type != REDIS_REPLY_INTEGER)
            continue;
        for (size_t j = 0; j < b->n; j++) {
            if (b->e[j] != NULL && strcmp(b->e[j]->id, row->element[0]->str) == 0)
                b->e[j]->deliveries = (uint32_t)row->element[3]->integer;
        }
    }
}

/* xpending_cb - delivery counts of a reclaimed batch: handler or dead */
static void xpending_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct claim_batch *b = arg;
    struct tn_consumer *c = b->c;

    (void)r;
    c->ops--;
    c->claim_reserved = 0;
    c->claiming = false;
    if (err == TN_OK)
        pending_counts(b, reply);
    for (size_t i = 0; i < b->n; i++) {
        struct tn_entry *e = b->e[i];

        if (c->freeing || c->stopping || err != TN_OK || e->deliveries == 0) {
            tn__consumer_release(c, e); /* 0: no longer ours; otherwise reclaimed again later */
        } else if (e->deliveries > c->max_deliveries) {
            tn__consumer_set_state(c, e, E_HANDLER);
            tn__consumer_finish_dead(c, e, "max_deliveries");
        } else {
            tn__consumer_hand(c, e);
        }
    }
    tn_free(b->e);
    tn_free(b);
    if (!c->freeing)
        tn__consumer_pump(c);
}

/* ack_ids_cb - XACK of deleted ids answered; nothing to do */
static void ack_ids_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    (void)r;
    (void)reply;
    (void)err;
    tn__consumer_op_done(arg);
}

/* ack_deleted - XACK the ids XAUTOCLAIM found deleted from the stream */
static void ack_deleted(struct tn_consumer *c, const redisReply *ids)
{
    const char **argv;
    size_t n = 0;

    if (ids == NULL || ids->type != REDIS_REPLY_ARRAY || ids->elements == 0)
        return;
    argv = tn_xcalloc(ids->elements + 3, sizeof(*argv));
    argv[n++] = "XACK";
    argv[n++] = c->stream;
    argv[n++] = c->group;
    for (size_t i = 0; i < ids->elements; i++) {
        if (ids->element[i]->type == REDIS_REPLY_STRING)
            argv[n++] = ids->element[i]->str;
    }
    if (n > 3)
        tn__consumer_send_op(c, c->ctl, c->command_timeout_ms, (int)n, argv, NULL, ack_ids_cb, c);
    tn_free(argv);
}

/* claim_batch_new - hold the reclaimed entries not already ours */
static struct claim_batch *claim_batch_new(struct tn_consumer *c, const redisReply *list)
{
    struct claim_batch *b = tn_xcalloc(1, sizeof(*b));

    b->c = c;
    b->e = tn_xcalloc(list->elements + 1, sizeof(*b->e));
    for (size_t i = 0; i < list->elements; i++) {
        struct tn_entry *e = tn__consumer_entry_new(c, list->element[i]);

        if (e == NULL)
            continue; /* nil: deleted (Redis 6.2) */
        if (find_held(c, e->id) != NULL) {
            tn__consumer_entry_free(e); /* a slow handler of ours still has it */
            continue;
        }
        e->deliveries = 0; /* filled in by XPENDING */
        tn__consumer_hold(c, e);
        tn__consumer_set_state(c, e, E_CLAIMING);
        b->e[b->n++] = e;
    }
    c->st.reclaimed += b->n;
    return b;
}

/* request_counts - XPENDING s g first last n me for a reclaimed batch */
static bool request_counts(struct tn_consumer *c, struct claim_batch *b)
{
    char n[16];
    const char *argv[] = {"XPENDING",         c->stream, c->group,   b->e[0]->id,
                          b->e[b->n - 1]->id, n,         c->consumer};

    /* Our own held entries may sit between first and last: ask for enough. */
    snprintf(n, sizeof(n), "%zu", b->n + c->inflight + c->waiting + 16);
    tn_log_info(&c->log, "consumer.reclaimed", TN_KV_INT("count", b->n),
                TN_KV_STR("first_id", b->e[0]->id));
    return tn__consumer_send_op(c, c->ctl, c->command_timeout_ms, 7, argv, NULL, xpending_cb, b) ==
           TN_OK;
}

/* autoclaim_cb - XAUTOCLAIM answered: (cursor, entries, deleted ids) */
static void autoclaim_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct tn_consumer *c = arg;

    (void)r;
    c->claiming = false;
    c->claim_reserved = 0;
    if (tn__consumer_op_done(c) || c->stopping)
        return;
    claimed(c, reply, err);
    if (!c->freeing)
        tn__consumer_pump(c); /* the reservation is gone: a read may have been waiting */
}

static void claimed(struct tn_consumer *c, const redisReply *reply, enum tn_err err)
{
    struct claim_batch *b;

    if (err != TN_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        if (err != TN_EUNAVAIL && err != TN_ECANCELED)
            tn_log_warn(&c->log, "consumer.reclaim_failed", TN_KV_ERR(err),
                        TN_KV_STR("detail", tn__consumer_reply_error(reply)));
        return;
    }
    snprintf(c->cursor, sizeof(c->cursor), "%s", reply->element[0]->str);
    if (reply->elements >= 3)
        ack_deleted(c, reply->element[2]);
    b = claim_batch_new(c, reply->element[1]);
    if (b->n > 0 && request_counts(c, b)) {
        c->claiming = true; /* until the counts are in */
        c->claim_reserved = (uint32_t)b->n;
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        tn__consumer_release(c, b->e[i]);
    tn_free(b->e);
    tn_free(b);
}

/* tn__consumer_claim_cb - periodic XAUTOCLAIM s g me visibility cursor COUNT n */
void tn__consumer_claim_cb(uv_timer_t *t)
{
    struct tn_consumer *c = t->data;
    char idle[16], n[16];
    const char *argv[] = {"XAUTOCLAIM", c->stream, c->group, c->consumer,
                          idle,         c->cursor, "COUNT",  n};
    uint32_t want = tn__consumer_room(c, true, false);

    if (c->stopping || c->claiming || !c->group_ready || want == 0 || !tn_redis_connected(c->ctl))
        return;
    snprintf(idle, sizeof(idle), "%u", c->visibility_ms);
    snprintf(n, sizeof(n), "%u", want);
    if (tn__consumer_send_op(c, c->ctl, c->command_timeout_ms, 8, argv, NULL, autoclaim_cb, c) ==
        TN_OK) {
        c->claiming = true;
        c->claim_reserved = want;
    }
}
