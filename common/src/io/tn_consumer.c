/*
 * NAME
 *	tn_consumer - consumer-group reading loop with retries and dead letters
 * SYNOPSIS
 *	c = tn_consumer_new(loop, url, &(struct tn_consumer_opts){
 *	        .stream = "tern:out", .group = "sender", .count = 32 }, on_entry, ctx);
 *	... on_entry() eventually calls tn_consumer_done(c, e, TN_DISP_ACK, NULL);
 *	tn_consumer_stop(c);  ... until tn_consumer_inflight(c) == 0 ...
 *	tn_consumer_free(c);
 * DESCRIPTION
 *	Two tn_redis connections: "rd" only ever carries the blocking
 *	XREADGROUP (a blocked client holds up everything pipelined behind it),
 *	"ctl" carries XGROUP, XACK, XCLAIM, XAUTOCLAIM, XPENDING and the
 *	MULTI/XADD/XACK/EXEC dead-letter transactions.
 *
 *	Every entry we hold is on one list, in one state: in the handler,
 *	finishing (XACK or dead-letter on the wire), waiting for a retry, or
 *	being re-claimed for that retry. The first two count as in flight. A
 *	read or reclaim asks only for the room left under `count`, counting
 *	what earlier requests may still bring (`reserved`).
 *
 *	The struct is freed only when it is closing, its timers are closed,
 *	every command it sent has called back and the handler has returned
 *	every entry; so tn_consumer_free may be called from anywhere, even
 *	from the handler.
 *
 *	This file holds the life cycle, the held-entry list and the reading
 *	(XGROUP CREATE, XREADGROUP). Retries, reclaims and dead letters are in
 *	tn_consumer_retry.c; tn_consumer_done and the batched XACKs in
 *	tn_consumer_ack.c; what they share in tn_consumer_int.h.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	consumer.group_failed, consumer.read_failed, consumer.bad_entry.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <tn/tn_consumer.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "tn_consumer_int.h"

/* in_flight / is_waiting - which counter a state belongs to */
static bool in_flight(int s)
{
    return s == E_HANDLER || s == E_FINISHING;
}

static bool is_waiting(int s)
{
    return s == E_WAITING || s == E_CLAIMING;
}

/* tn__consumer_set_state - move e to state s, keeping the counters right */
void tn__consumer_set_state(struct tn_consumer *c, struct tn_entry *e, int s)
{
    if (in_flight(e->_state))
        c->inflight--;
    else if (is_waiting(e->_state))
        c->waiting--;
    e->_state = s;
    if (in_flight(s))
        c->inflight++;
    else if (is_waiting(s))
        c->waiting++;
}

/* tn__consumer_entry_free - release one entry's memory */
void tn__consumer_entry_free(struct tn_entry *e)
{
    for (size_t i = 0; i < e->nfields; i++) {
        tn_free(e->names[i]);
        tn_free(e->values[i]);
    }
    tn_free(e->names);
    tn_free(e->values);
    tn_free(e->name_lens);
    tn_free(e->value_lens);
    tn_free((char *)e->id);
    tn_free(e->_reason);
    tn_free(e);
}

/* maybe_free - free c once nothing can reach it any more */
static void maybe_free(struct tn_consumer *c)
{
    if (!c->freeing || c->open_handles > 0 || c->ops > 0 || c->held != NULL)
        return;
    tn_free(c->stream);
    tn_free(c->group);
    tn_free(c->consumer);
    tn_free(c->dead_stream);
    tn_free(c->acks);
    tn_free(c);
}

/* tn__consumer_release - forget e (it stays in Redis' PEL unless acked) */
void tn__consumer_release(struct tn_consumer *c, struct tn_entry *e)
{
    tn__consumer_set_state(c, e, E_NEW);
    if (e->_prev != NULL)
        e->_prev->_next = e->_next;
    else
        c->held = e->_next;
    if (e->_next != NULL)
        e->_next->_prev = e->_prev;
    tn__consumer_entry_free(e);
    if (c->freeing)
        maybe_free(c);
    else
        tn__consumer_pump(c);
}

/* tn__consumer_hold - put a new entry on the held list */
void tn__consumer_hold(struct tn_consumer *c, struct tn_entry *e)
{
    e->_c = c;
    e->_prev = NULL;
    e->_next = c->held;
    if (c->held != NULL)
        c->held->_prev = e;
    c->held = e;
}

/* tn__consumer_send_op - a command on conn whose callback will run; counts it in c->ops */
enum tn_err tn__consumer_send_op(struct tn_consumer *c, struct tn_redis *conn, uint32_t timeout_ms,
                                 int argc, const char *const *argv, const size_t *lens,
                                 tn_redis_reply_fn *cb, void *arg)
{
    enum tn_err err;

    if (conn == NULL)
        return TN_EUNAVAIL;
    err = tn_redis_argv_timeout(conn, timeout_ms, argc, argv, lens, cb, arg);
    if (err == TN_OK)
        c->ops++;
    return err;
}

/* tn__consumer_reply_error - the text of an error reply, or NULL */
const char *tn__consumer_reply_error(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : NULL;
}

/* tn__consumer_entry_new - a new entry from an XREADGROUP/XCLAIM item [id, [f, v, ...]];
 * NULL when the item is nil (deleted) or malformed */
struct tn_entry *tn__consumer_entry_new(struct tn_consumer *c, const redisReply *item)
{
    const redisReply *f;
    struct tn_entry *e;

    if (item == NULL || item->type != REDIS_REPLY_ARRAY || item->elements != 2 ||
        item->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    f = item->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0)
        return NULL;
    for (size_t i = 0; i < f->elements; i++) {
        if (f->element[i]->type != REDIS_REPLY_STRING)
            return NULL;
    }
    e = tn_xcalloc(1, sizeof(*e));
    e->id = tn_xstrndup(item->element[0]->str, item->element[0]->len);
    e->stream = c->stream;
    e->nfields = f->elements / 2;
    e->names = tn_xcalloc(e->nfields + 1, sizeof(*e->names));
    e->values = tn_xcalloc(e->nfields + 1, sizeof(*e->values));
    e->name_lens = tn_xcalloc(e->nfields + 1, sizeof(*e->name_lens));
    e->value_lens = tn_xcalloc(e->nfields + 1, sizeof(*e->value_lens));
    for (size_t i = 0; i < e->nfields; i++) {
        const redisReply *n = f->element[2 * i], *v = f->element[2 * i + 1];

        e->names[i] = tn_xstrndup(n->str, n->len);
        e->name_lens[i] = n->len;
        e->values[i] = tn_xmalloc(v->len + 1);
        memcpy(e->values[i], v->str, v->len);
        e->values[i][v->len] = '\0';
        e->value_lens[i] = v->len;
    }
    e->deliveries = 1;
    return e;
}

/* tn__consumer_hand - give a held entry to the handler */
void tn__consumer_hand(struct tn_consumer *c, struct tn_entry *e)
{
    tn__consumer_set_state(c, e, E_HANDLER);
    c->st.handled++;
    c->fn(c, e, c->arg); /* may call tn_consumer_done (and free e) right away */
}

/* tn__consumer_room - how many more entries we may ask for. Every request counts what the
 * other non-blocking requests may still bring (retry and reclaim
 * reservations); only a new read also waits for the one before it. Retries
 * and reclaims do not wait for a blocked XREADGROUP to come back (that
 * would delay them by up to block_ms, or starve them), so while a read is
 * out the handler may briefly hold more than count entries; new reads and
 * reclaims stop at 2 * count held, so it is still bounded. */
uint32_t tn__consumer_room(const struct tn_consumer *c, bool fresh, bool is_read)
{
    size_t busy = c->inflight + c->retry_reserved + c->claim_reserved;

    if (is_read)
        busy += c->read_reserved;
    if (fresh && c->inflight + c->waiting >= 2 * (size_t)c->count)
        return 0;
    if (busy >= c->count)
        return 0;
    return c->count - (uint32_t)busy;
}

/* tn__consumer_op_done - a command of ours called back; true when c is going away */
bool tn__consumer_op_done(struct tn_consumer *c)
{
    c->ops--;
    if (!c->freeing)
        return false;
    maybe_free(c);
    return true;
}

/* kick_cb - retry after a failure: recreate the group if needed, read again */
static void kick_cb(uv_timer_t *t);

/* kick_later - run kick_cb after the next backoff delay */
static void kick_later(struct tn_consumer *c)
{
    if (!c->stopping && !uv_is_active((uv_handle_t *)&c->kick_timer))
        uv_timer_start(&c->kick_timer, kick_cb, tn_backoff_next(&c->backoff), 0);
}

/* group_cb - XGROUP CREATE answered */
static void group_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct tn_consumer *c = arg;
    const char *msg = tn__consumer_reply_error(reply);

    (void)r;
    c->creating = false;
    if (tn__consumer_op_done(c))
        return;
    if (err == TN_OK && (msg == NULL || strncmp(msg, "BUSYGROUP", 9) == 0)) {
        c->group_ready = true;
        tn__consumer_pump(c);
        return;
    }
    if (err != TN_ECANCELED)
        tn_log_warn(&c->log, "consumer.group_failed", TN_KV_STR("group", c->group), TN_KV_ERR(err),
                    TN_KV_STR("detail", msg != NULL ? msg : ""));
    if (err != TN_EUNAVAIL) /* EUNAVAIL: ctl_connect_cb tries again */
        kick_later(c);
}

/* create_group - XGROUP CREATE stream group 0 MKSTREAM */
static void create_group(struct tn_consumer *c)
{
    const char *argv[] = {"XGROUP", "CREATE", c->stream, c->group, "0", "MKSTREAM"};

    if (c->creating || c->group_ready || c->stopping)
        return;
    if (tn__consumer_send_op(c, c->ctl, c->command_timeout_ms, 6, argv, NULL, group_cb, c) == TN_OK)
        c->creating = true;
}

/* kick_cb - see kick_later */
static void kick_cb(uv_timer_t *t)
{
    struct tn_consumer *c = t->data;

    create_group(c);
    tn__consumer_pump(c);
}

/* ctl_connect_cb - the control connection is (back) up */
static void ctl_connect_cb(struct tn_redis *r, void *arg)
{
    (void)r;
    create_group(arg);
    tn__consumer_pump(arg);
}

/* rd_connect_cb - the reading connection is (back) up */
static void rd_connect_cb(struct tn_redis *r, void *arg)
{
    (void)r;
    tn__consumer_pump(arg);
}

/* read_entries - hand over every entry of an XREADGROUP reply */
static void read_entries(struct tn_consumer *c, const redisReply *reply)
{
    const redisReply *list;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)
        return; /* nil: BLOCK timed out with nothing new */
    list = reply->element[0];
    if (list->type != REDIS_REPLY_ARRAY || list->elements != 2 ||
        list->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    list = list->element[1];
    for (size_t i = 0; i < list->elements && !c->freeing; i++) {
        struct tn_entry *e = tn__consumer_entry_new(c, list->element[i]);

        if (e == NULL) {
            tn_log_warn(&c->log, "consumer.bad_entry", TN_KV_INT("index", i));
            continue;
        }
        tn__consumer_hold(c, e);
        tn__consumer_hand(c, e);
    }
}

/* read_cb - XREADGROUP answered */
static void read_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct tn_consumer *c = arg;
    const char *msg = tn__consumer_reply_error(reply);

    (void)r;
    if (c->freeing) {
        c->reading = false;
        c->read_reserved = 0;
        tn__consumer_op_done(c);
        return;
    }
    if (err == TN_OK && msg == NULL) {
        tn_backoff_reset(&c->backoff);
        read_entries(c, reply); /* c->reading stays set: no nested read meanwhile */
    } else if (err == TN_OK && strncmp(msg, "NOGROUP", 7) == 0) {
        c->group_ready = false; /* the stream or the group was deleted */
        kick_later(c);
    } else if (err != TN_ECANCELED) {
        tn_log_warn(&c->log, "consumer.read_failed", TN_KV_ERR(err),
                    TN_KV_STR("detail", msg != NULL ? msg : ""));
        if (err != TN_EUNAVAIL) /* EUNAVAIL: rd_connect_cb reads again */
            kick_later(c);
    }
    c->reading = false;
    c->read_reserved = 0;
    if (!tn__consumer_op_done(c))
        tn__consumer_pump(c);
}

/* start_read - XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS s > */
static void start_read(struct tn_consumer *c)
{
    char n[16], block[16];
    const char *argv[] = {"XREADGROUP", "GROUP", c->group,  c->consumer, "COUNT", n,
                          "BLOCK",      block,   "STREAMS", c->stream,   ">"};
    uint32_t want = tn__consumer_room(c, true, true);
    uint32_t timeout = c->block_ms + (c->command_timeout_ms != 0 ? c->command_timeout_ms : 5000);

    if (c->reading || !c->group_ready || want == 0 || !tn_redis_connected(c->rd) ||
        uv_is_active((uv_handle_t *)&c->kick_timer))
        return;
    snprintf(n, sizeof(n), "%u", want);
    snprintf(block, sizeof(block), "%u", c->block_ms);
    if (tn__consumer_send_op(c, c->rd, timeout, 11, argv, NULL, read_cb, c) != TN_OK)
        return;
    c->reading = true;
    c->read_reserved = want;
}

/* tn__consumer_pump - start whatever work there is room for */
void tn__consumer_pump(struct tn_consumer *c)
{
    if (c->stopping || c->freeing)
        return;
    tn__consumer_dispatch_retries(c);
    start_read(c);
}

/* default_consumer - "<hostname>-<pid>" */
static char *default_consumer(void)
{
    char host[256] = "host", buf[300];

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "host");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, sizeof(buf), "%s-%d", host, (int)getpid());
    return tn_xstrdup(buf);
}

/* dflt - v, or d when v is 0 */
static uint32_t dflt(uint32_t v, uint32_t d)
{
    return v != 0 ? v : d;
}

/* configure - copy the options into c */
static void configure(struct tn_consumer *c, const struct tn_consumer_opts *o)
{
    char dead[512];

    c->stream = tn_xstrdup(o->stream);
    c->group = tn_xstrdup(o->group);
    c->consumer = o->consumer != NULL ? tn_xstrdup(o->consumer) : default_consumer();
    snprintf(dead, sizeof(dead), "%s:dead", o->stream);
    c->dead_stream = tn_xstrdup(dead);
    c->count = dflt(o->count, 16);
    c->block_ms = dflt(o->block_ms, 2000);
    c->visibility_ms = dflt(o->visibility_ms, 60000);
    c->max_deliveries = dflt(o->max_deliveries, 5);
    c->retry_base_ms = dflt(o->retry_base_ms, 1000);
    c->retry_cap_ms = dflt(o->retry_cap_ms, 60000);
    c->claim_interval_ms = dflt(o->claim_interval_ms, 5000);
    c->command_timeout_ms = o->command_timeout_ms;
    c->backoff.base_ms = 100;
    c->backoff.cap_ms = 5000;
    snprintf(c->cursor, sizeof(c->cursor), "0-0");
    c->log.stream = c->stream;
}

/* tn_consumer_new - see tn_consumer.h */
struct tn_consumer *tn_consumer_new(uv_loop_t *loop, const char *url,
                                    const struct tn_consumer_opts *o, tn_consumer_entry_fn *fn,
                                    void *arg)
{
    struct tn_consumer *c;
    struct tn_redis_url u;
    char rdname[128];
    const char *name;
    uv_timer_t *timers[3];

    if (o == NULL || o->stream == NULL || o->group == NULL || fn == NULL ||
        tn_redis_url_parse(url, &u) != TN_OK)
        return NULL;
    tn_redis_url_free(&u);
    c = tn_xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->fn = fn;
    c->arg = arg;
    configure(c, o);
    name = o->name != NULL ? o->name : o->group;
    snprintf(rdname, sizeof(rdname), "%s-read", name);
    c->rd = tn_redis_new(
        loop, url,
        &(struct tn_redis_opts){.name = rdname, .command_timeout_ms = o->command_timeout_ms});
    c->ctl = tn_redis_new(
        loop, url,
        &(struct tn_redis_opts){.name = name, .command_timeout_ms = o->command_timeout_ms});
    tn_redis_set_connect_cb(c->rd, rd_connect_cb, c);
    tn_redis_set_connect_cb(c->ctl, ctl_connect_cb, c);
    timers[0] = &c->claim_timer;
    timers[1] = &c->retry_timer;
    timers[2] = &c->kick_timer;
    for (int i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = c;
    }
    uv_idle_init(loop, &c->ack_idle);
    c->ack_idle.data = c;
    c->open_handles = 4;
    uv_timer_start(&c->claim_timer, tn__consumer_claim_cb, c->claim_interval_ms,
                   c->claim_interval_ms);
    return c;
}

/* tn_consumer_stop - see tn_consumer.h */
void tn_consumer_stop(struct tn_consumer *c)
{
    struct tn_entry *e, *next;
    struct tn_redis *rd = c->rd;

    if (c->stopping)
        return;
    c->stopping = true;
    uv_timer_stop(&c->claim_timer);
    uv_timer_stop(&c->retry_timer);
    uv_timer_stop(&c->kick_timer);
    c->rd = NULL;
    tn_redis_close(rd); /* the blocked XREADGROUP ends with TN_ECANCELED */
    for (e = c->held; e != NULL; e = next) {
        next = e->_next;
        if (e->_state == E_WAITING)
            tn__consumer_release(c, e); /* stays pending: another consumer retries it */
    }
}

/* tn_consumer_inflight - see tn_consumer.h */
size_t tn_consumer_inflight(const struct tn_consumer *c)
{
    return c->inflight;
}

/* tn_consumer_ready - see tn_consumer.h */
bool tn_consumer_ready(const struct tn_consumer *c)
{
    return c->group_ready && tn_redis_connected(c->rd);
}

/* tn_consumer_stats - see tn_consumer.h */
void tn_consumer_stats(const struct tn_consumer *c, struct tn_consumer_stats *out)
{
    *out = c->st;
}

/* timer_close_cb - one of our timers is closed */
static void timer_close_cb(uv_handle_t *h)
{
    struct tn_consumer *c = h->data;

    c->open_handles--;
    maybe_free(c);
}

/* tn_consumer_free - see tn_consumer.h */
void tn_consumer_free(struct tn_consumer *c)
{
    struct tn_redis *ctl;

    if (c == NULL || c->freeing)
        return;
    tn_consumer_stop(c);
    tn__consumer_flush_acks(c); /* like XACKs already sent: on the wire before ctl closes */
    c->freeing = true;
    ctl = c->ctl;
    c->ctl = NULL;
    uv_close((uv_handle_t *)&c->claim_timer, timer_close_cb);
    uv_close((uv_handle_t *)&c->retry_timer, timer_close_cb);
    uv_close((uv_handle_t *)&c->kick_timer, timer_close_cb);
    uv_close((uv_handle_t *)&c->ack_idle, timer_close_cb);
    tn_redis_close(ctl); /* pending XACKs etc. call back with TN_ECANCELED */
}

/* tn_entry_field - see tn_consumer.h */
const char *tn_entry_field(const struct tn_entry *e, const char *name, size_t *len)
{
    for (size_t i = 0; i < e->nfields; i++) {
        if (strcmp(e->names[i], name) == 0) {
            if (len != NULL)
                *len = e->value_lens[i];
            return e->values[i];
        }
    }
    return NULL;
}

const char *tn_consumer_stream(const struct tn_consumer *c)
{
    return c->stream;
}

const char *tn_consumer_group(const struct tn_consumer *c)
{
    return c->group;
}
