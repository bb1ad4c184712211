/*
 * NAME
 *	tn_consumer_export - a stream consumer's figures on /metrics
 * DESCRIPTION
 *	The counters a consumer keeps, and its group's lag and pending count
 *	as Redis reports them (XINFO GROUPS: "lag" needs Redis 7), so that an
 *	operator and an autoscaler see the same depth KEDA scales on.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_consumer.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_metrics.h>
#include <tn/tn_redis.h>

struct xinfo_op {
    char *group;
    struct tn_metric *lag, *pending;
};

/* map_get - value of key in a flat [k, v, k, v...] reply, or NULL */
static const redisReply *map_get(const redisReply *r, const char *key)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) &&
            strcmp(k->str, key) == 0)
            return r->element[i + 1];
    }
    return NULL;
}

/* xinfo_reply - find our group and set its gauges. Runs on: loop. */
static void xinfo_reply(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct xinfo_op *op = arg;

    (void)r;
    if (err == TN_OK && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *g = reply->element[i], *name = map_get(g, "name");
            if (name == NULL || name->type != REDIS_REPLY_STRING ||
                strcmp(name->str, op->group) != 0)
                continue;
            const redisReply *lag = map_get(g, "lag"), *pend = map_get(g, "pending");
            if (lag != NULL && lag->type == REDIS_REPLY_INTEGER)
                tn_metric_set(op->lag, (double)lag->integer);
            if (pend != NULL && pend->type == REDIS_REPLY_INTEGER)
                tn_metric_set(op->pending, (double)pend->integer);
        }
    } else if (err == TN_EDENIED) {
        tn_log_warn(NULL, "consumer.xinfo_denied", TN_KV_STR("group", op->group));
    }
    tn_free(op->group);
    tn_free(op);
}

/* set_counter - one counter from the consumer's stats */
static void set_counter(struct tn_metrics *m, const char *name, const char *help,
                        const char *labels, uint64_t v)
{
    tn_metric_set(tn_metrics_get(m, TN_METRIC_COUNTER, name, help, labels), (double)v);
}

void tn_consumer_export(struct tn_consumer *c, struct tn_redis *r, struct tn_metrics *m)
{
    struct tn_consumer_stats st;
    const char *stream = tn_consumer_stream(c), *group = tn_consumer_group(c);
    char labels[256];

    tn_consumer_stats(c, &st);
    snprintf(labels, sizeof(labels), "stream=\"%s\",group=\"%s\"", stream, group);
    set_counter(m, "tern_consumer_handled_total", "Entries handed to the handler", labels,
                st.handled);
    set_counter(m, "tern_consumer_acked_total", "Entries acknowledged", labels, st.acked);
    set_counter(m, "tern_consumer_retried_total", "Entries put back for a later delivery", labels,
                st.retried);
    set_counter(m, "tern_consumer_dead_total", "Entries moved to the dead-letter stream", labels,
                st.dead);
    set_counter(m, "tern_consumer_reclaimed_total", "Entries taken over from idle consumers",
                labels, st.reclaimed);
    set_counter(m, "tern_consumer_errors_total", "Failed Redis commands", labels, st.errors);
    if (r == NULL || !tn_redis_connected(r))
        return;
    struct xinfo_op *op = tn_xcalloc(1, sizeof(*op));
    op->group = tn_xstrdup(group);
    op->lag = tn_metrics_get(m, TN_METRIC_GAUGE, "tern_stream_lag",
                             "Entries not yet delivered to the group", labels);
    op->pending = tn_metrics_get(m, TN_METRIC_GAUGE, "tern_stream_pending",
                                 "Entries delivered to the group, not yet acknowledged", labels);
    const char *argv[] = {"XINFO", "GROUPS", stream};
    if (tn_redis_argv(r, 3, argv, NULL, xinfo_reply, op) != TN_OK) {
        tn_free(op->group);
        tn_free(op);
    }
}
