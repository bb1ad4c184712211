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
 *	RETRY keeps the entry pending and arms one timer for the earliest due
 *	entry. When it is due we XCLAIM it to ourselves with min-idle-time equal
 *	to the delay: that bumps Redis' delivery count, and it claims nothing
 *	if another consumer has taken the entry meanwhile. The delay grows with
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
 *	Acknowledgements are batched: tn_consumer_done(ACK) queues the entry
 *	(it stays in flight) and an idle handle, which keeps the loop from
 *	blocking, sends one XACK for everything queued in that loop iteration
 *	(a handler that finishes a read's worth of entries at once gets one
 *	command instead of one per entry). An entry is still acknowledged only
 *	after its handler said done; the answer releases each.
 *
 *	Dead letters copy the original fields plus dead_reason, dead_from_id,
 *	dead_deliveries and dead_at (RFC 3339) to "<stream>:dead" and ack in
 *	one MULTI/EXEC, so an entry is never both lost and acked.
 *
 *	The struct is freed only when it is closing, its timers are closed,
 *	every command it sent has called back and the handler has returned
 *	every entry; so tn_consumer_free may be called from anywhere, even
 *	from the handler.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	consumer.group_failed, consumer.read_failed, consumer.ack_failed,
 *	consumer.dead, consumer.dead_failed, consumer.reclaimed,
 *	consumer.retry_lost, consumer.bad_entry.
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

enum { E_NEW, E_HANDLER, E_FINISHING, E_WAITING, E_CLAIMING };

#define MAX_ARGS 8
#define ACK_MAX 1024 /* ids per XACK */

struct tn_consumer {
    uv_loop_t *loop;
    char *stream, *group, *consumer, *dead_stream;
    uint32_t count, block_ms, visibility_ms, max_deliveries, retry_base_ms, retry_cap_ms;
    uint32_t claim_interval_ms, command_timeout_ms;
    tn_consumer_entry_fn *fn;
    void *arg;
    struct tn_redis *rd, *ctl;
    bool group_ready, creating, reading, claiming, stopping, freeing;
    uint32_t read_reserved, claim_reserved, retry_reserved;
    size_t inflight, waiting, ops;
    int open_handles;
    uv_timer_t claim_timer, retry_timer, kick_timer;
    uv_idle_t ack_idle;     /* active while acks are queued */
    struct tn_entry **acks; /* done with ACK, XACK not sent yet */
    size_t nacks, acks_cap;
    uint64_t retry_due; /* 0: retry timer not armed */
    struct tn_backoff backoff;
    char cursor[64];
    struct tn_entry *held;
    struct tn_consumer_stats st;
    struct tn_log_ctx log;
};

/* A reclaimed batch waiting for its delivery counts. */
struct claim_batch {
    struct tn_consumer *c;
    size_t n;
    struct tn_entry **e;
};

static void pump(struct tn_consumer *c);
static void claimed(struct tn_consumer *c, const redisReply *reply, enum tn_err err);
static void finish_dead(struct tn_consumer *c, struct tn_entry *e, const char *reason);

/* in_flight / is_waiting - which counter a state belongs to */
static bool in_flight(int s)
{
    return s == E_HANDLER || s == E_FINISHING;
}

static bool is_waiting(int s)
{
    return s == E_WAITING || s == E_CLAIMING;
}

/* set_state - move e to state s, keeping the counters right */
static void set_state(struct tn_consumer *c, struct tn_entry *e, int s)
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

/* entry_free - release one entry's memory */
static void entry_free(struct tn_entry *e)
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

/* release - forget e (it stays in Redis' PEL unless acked) */
static void release(struct tn_consumer *c, struct tn_entry *e)
{
    set_state(c, e, E_NEW);
    if (e->_prev != NULL)
        e->_prev->_next = e->_next;
    else
        c->held = e->_next;
    if (e->_next != NULL)
        e->_next->_prev = e->_prev;
    entry_free(e);
    if (c->freeing)
        maybe_free(c);
    else
        pump(c);
}

/* hold - put a new entry on the held list */
static void hold(struct tn_consumer *c, struct tn_entry *e)
{
    e->_c = c;
    e->_prev = NULL;
    e->_next = c->held;
    if (c->held != NULL)
        c->held->_prev = e;
    c->held = e;
}

/* find_held - the held entry with this id, if any */
static struct tn_entry *find_held(struct tn_consumer *c, const char *id)
{
    for (struct tn_entry *e = c->held; e != NULL; e = e->_next) {
        if (strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

/* send_op - a command on conn whose callback will run; counts it in c->ops */
static enum tn_err send_op(struct tn_consumer *c, struct tn_redis *conn, uint32_t timeout_ms,
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

/* reply_error - the text of an error reply, or NULL */
static const char *reply_error(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : NULL;
}

/* entry_new - a new entry from an XREADGROUP/XCLAIM item [id, [f, v, ...]];
 * NULL when the item is nil (deleted) or malformed */
static struct tn_entry *entry_new(struct tn_consumer *c, const redisReply *item)
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

/* hand - give a held entry to the handler */
static void hand(struct tn_consumer *c, struct tn_entry *e)
{
    set_state(c, e, E_HANDLER);
    c->st.handled++;
    c->fn(c, e, c->arg); /* may call tn_consumer_done (and free e) right away */
}

/* room - how many more entries we may ask for. Every request counts what the
 * other non-blocking requests may still bring (retry and reclaim
 * reservations); only a new read also waits for the one before it. Retries
 * and reclaims do not wait for a blocked XREADGROUP to come back (that
 * would delay them by up to block_ms, or starve them), so while a read is
 * out the handler may briefly hold more than count entries; new reads and
 * reclaims stop at 2 * count held, so it is still bounded. */
static uint32_t room(const struct tn_consumer *c, bool fresh, bool is_read)
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

/* op_done - a command of ours called back; true when c is going away */
static bool op_done(struct tn_consumer *c)
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
    const char *msg = reply_error(reply);

    (void)r;
    c->creating = false;
    if (op_done(c))
        return;
    if (err == TN_OK && (msg == NULL || strncmp(msg, "BUSYGROUP", 9) == 0)) {
        c->group_ready = true;
        pump(c);
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
    if (send_op(c, c->ctl, c->command_timeout_ms, 6, argv, NULL, group_cb, c) == TN_OK)
        c->creating = true;
}

/* kick_cb - see kick_later */
static void kick_cb(uv_timer_t *t)
{
    struct tn_consumer *c = t->data;

    create_group(c);
    pump(c);
}

/* ctl_connect_cb - the control connection is (back) up */
static void ctl_connect_cb(struct tn_redis *r, void *arg)
{
    (void)r;
    create_group(arg);
    pump(arg);
}

/* rd_connect_cb - the reading connection is (back) up */
static void rd_connect_cb(struct tn_redis *r, void *arg)
{
    (void)r;
    pump(arg);
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
        struct tn_entry *e = entry_new(c, list->element[i]);

        if (e == NULL) {
            tn_log_warn(&c->log, "consumer.bad_entry", TN_KV_INT("index", i));
            continue;
        }
        hold(c, e);
        hand(c, e);
    }
}

/* read_cb - XREADGROUP answered */
static void read_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct tn_consumer *c = arg;
    const char *msg = reply_error(reply);

    (void)r;
    if (c->freeing) {
        c->reading = false;
        c->read_reserved = 0;
        op_done(c);
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
    if (!op_done(c))
        pump(c);
}

/* start_read - XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS s > */
static void start_read(struct tn_consumer *c)
{
    char n[16], block[16];
    const char *argv[] = {"XREADGROUP", "GROUP", c->group,  c->consumer, "COUNT", n,
                          "BLOCK",      block,   "STREAMS", c->stream,   ">"};
    uint32_t want = room(c, true, true);
    uint32_t timeout = c->block_ms + (c->command_timeout_ms != 0 ? c->command_timeout_ms : 5000);

    if (c->reading || !c->group_ready || want == 0 || !tn_redis_connected(c->rd) ||
        uv_is_active((uv_handle_t *)&c->kick_timer))
        return;
    snprintf(n, sizeof(n), "%u", want);
    snprintf(block, sizeof(block), "%u", c->block_ms);
    if (send_op(c, c->rd, timeout, 11, argv, NULL, read_cb, c) != TN_OK)
        return;
    c->reading = true;
    c->read_reserved = want;
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
                        TN_KV_ERR(err), TN_KV_STR("detail", reply_error(reply)));
        release(c, e); /* still pending in Redis, or taken by another consumer */
        return;
    }
    e->deliveries++;
    hand(c, e);
}

/* claim_retry - XCLAIM s g me <min-idle> id: take a due retry back */
static void claim_retry(struct tn_consumer *c, struct tn_entry *e)
{
    char idle[16];
    const char *argv[] = {"XCLAIM", c->stream, c->group, c->consumer, idle, e->id};

    snprintf(idle, sizeof(idle), "%u", e->_min_idle);
    set_state(c, e, E_CLAIMING);
    c->retry_reserved++;
    if (send_op(c, c->ctl, c->command_timeout_ms, 6, argv, NULL, xclaim_cb, e) != TN_OK) {
        c->retry_reserved--;
        set_state(c, e, E_WAITING); /* ctl is down: try again on the next pump */
        e->_due = uv_now(c->loop) + c->retry_base_ms;
    }
}

/* retry_cb - a retry is due */
static void retry_cb(uv_timer_t *t)
{
    struct tn_consumer *c = t->data;

    c->retry_due = 0;
    pump(c);
}

/* dispatch_retries - claim due retries while there is room; arm the timer */
static void dispatch_retries(struct tn_consumer *c)
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
        if (e->_due <= now && room(c, false, false) > 0 && tn_redis_connected(c->ctl)) {
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

/* pump - start whatever work there is room for */
static void pump(struct tn_consumer *c)
{
    if (c->stopping || c->freeing)
        return;
    dispatch_retries(c);
    start_read(c);
}

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
                    TN_KV_STR("detail", reply_error(reply)));
    }
    /* the last release may free c (tn_consumer_free pending): c is not
     * touched after the loop */
    for (size_t i = 0; i < b->n; i++)
        release(c, b->e[i]);
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
    if (send_op(c, c->ctl, c->command_timeout_ms, (int)n + 3, argv, NULL, ack_cb, b) != TN_OK) {
        c->st.errors += n; /* stay pending: reclaimed and handled again later */
        tn_log_warn(&c->log, "consumer.ack_failed", TN_KV_STR("entry_id", acks[0]->id),
                    TN_KV_INT("entries", n), TN_KV_ERR(TN_EUNAVAIL));
        for (size_t i = 0; i < n; i++)
            release(c, b->e[i]);
        tn_free(b);
    }
    tn_free(argv);
}

/* flush_acks - send every queued ack. The queue is detached first: a
 * release may run the handler's next entries, which may queue again. */
static void flush_acks(struct tn_consumer *c)
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
    flush_acks(h->data);
}

/* finish_ack - queue e for the next XACK (it stays in flight until then) */
static void finish_ack(struct tn_consumer *c, struct tn_entry *e)
{
    set_state(c, e, E_FINISHING);
    if (c->nacks == c->acks_cap) {
        c->acks_cap = c->acks_cap == 0 ? 64 : 2 * c->acks_cap;
        c->acks = tn_xrealloc(c->acks, c->acks_cap * sizeof(*c->acks));
    }
    c->acks[c->nacks++] = e;
    if (c->nacks == 1)
        uv_idle_start(&c->ack_idle, ack_idle_cb);
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
                     TN_KV_STR("detail", reply_error(reply)));
    }
    release(c, e);
}

/* finish_dead - MULTI; XADD <stream>:dead * fields... dead_*; XACK; EXEC */
static void finish_dead(struct tn_consumer *c, struct tn_entry *e, const char *reason)
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
    set_state(c, e, E_FINISHING);
    if (tn_redis_multi(c->ctl, 2, (const int[]){(int)k, 4},
                       (const char *const *const[]){xadd, xack},
                       (const size_t *const[]){lens, NULL}, dead_cb, e) == TN_OK) {
        c->ops++;
    } else {
        c->st.errors++;
        tn_log_error(&c->log, "consumer.dead_failed", TN_KV_STR("entry_id", e->id),
                     TN_KV_ERR(TN_EUNAVAIL));
        release(c, e);
    }
    tn_free(xadd);
    tn_free(lens);
}

/* retry - keep e pending and hand it over again after a growing delay */
static void retry(struct tn_consumer *c, struct tn_entry *e)
{
    uint32_t cap = c->retry_cap_ms;
    uint32_t delay;

    if (cap > c->visibility_ms / 2)
        cap = c->visibility_ms / 2;
    delay =
        tn_backoff_delay(c->retry_base_ms < cap ? c->retry_base_ms : cap, cap, e->deliveries - 1);
    c->st.retried++;
    set_state(c, e, E_WAITING);
    e->_due = uv_now(c->loop) + delay;
    e->_min_idle = delay;
    pump(c);
}

/* tn_consumer_done - see tn_consumer.h */
void tn_consumer_done(struct tn_consumer *c, struct tn_entry *e, enum tn_disp disp,
                      const char *reason)
{
    TN_ASSERT(e->_c == c && e->_state == E_HANDLER);
    if (c->freeing) {
        release(c, e); /* stays pending in Redis */
        return;
    }
    if (reason != NULL) {
        tn_free(e->_reason); /* a retried entry comes back with the last reason */
        e->_reason = tn_xstrdup(reason);
    }
    if (disp == TN_DISP_ACK)
        finish_ack(c, e);
    else if (disp == TN_DISP_DEAD)
        finish_dead(c, e, "dead");
    else if (e->deliveries >= c->max_deliveries)
        finish_dead(c, e, "max_deliveries");
    else if (c->stopping)
        release(c, e); /* draining: another consumer retries it after visibility_ms */
    else
        retry(c, e);
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
            release(c, e); /* 0: no longer ours; otherwise reclaimed again later */
        } else if (e->deliveries > c->max_deliveries) {
            set_state(c, e, E_HANDLER);
            finish_dead(c, e, "max_deliveries");
        } else {
            hand(c, e);
        }
    }
    tn_free(b->e);
    tn_free(b);
    if (!c->freeing)
        pump(c);
}

/* ack_ids_cb - XACK of deleted ids answered; nothing to do */
static void ack_ids_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    (void)r;
    (void)reply;
    (void)err;
    op_done(arg);
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
        send_op(c, c->ctl, c->command_timeout_ms, (int)n, argv, NULL, ack_ids_cb, c);
    tn_free(argv);
}

/* claim_batch_new - hold the reclaimed entries not already ours */
static struct claim_batch *claim_batch_new(struct tn_consumer *c, const redisReply *list)
{
    struct claim_batch *b = tn_xcalloc(1, sizeof(*b));

    b->c = c;
    b->e = tn_xcalloc(list->elements + 1, sizeof(*b->e));
    for (size_t i = 0; i < list->elements; i++) {
        struct tn_entry *e = entry_new(c, list->element[i]);

        if (e == NULL)
            continue; /* nil: deleted (Redis 6.2) */
        if (find_held(c, e->id) != NULL) {
            entry_free(e); /* a slow handler of ours still has it */
            continue;
        }
        e->deliveries = 0; /* filled in by XPENDING */
        hold(c, e);
        set_state(c, e, E_CLAIMING);
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
    return send_op(c, c->ctl, c->command_timeout_ms, 7, argv, NULL, xpending_cb, b) == TN_OK;
}

/* autoclaim_cb - XAUTOCLAIM answered: (cursor, entries, deleted ids) */
static void autoclaim_cb(struct tn_redis *r, redisReply *reply, enum tn_err err, void *arg)
{
    struct tn_consumer *c = arg;

    (void)r;
    c->claiming = false;
    c->claim_reserved = 0;
    if (op_done(c) || c->stopping)
        return;
    claimed(c, reply, err);
    if (!c->freeing)
        pump(c); /* the reservation is gone: a read may have been waiting */
}

/* claimed - take over the entries of an XAUTOCLAIM reply */
static void claimed(struct tn_consumer *c, const redisReply *reply, enum tn_err err)
{
    struct claim_batch *b;

    if (err != TN_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        if (err != TN_EUNAVAIL && err != TN_ECANCELED)
            tn_log_warn(&c->log, "consumer.reclaim_failed", TN_KV_ERR(err),
                        TN_KV_STR("detail", reply_error(reply)));
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
        release(c, b->e[i]);
    tn_free(b->e);
    tn_free(b);
}

/* claim_cb - periodic XAUTOCLAIM s g me visibility cursor COUNT n */
static void claim_cb(uv_timer_t *t)
{
    struct tn_consumer *c = t->data;
    char idle[16], n[16];
    const char *argv[] = {"XAUTOCLAIM", c->stream, c->group, c->consumer,
                          idle,         c->cursor, "COUNT",  n};
    uint32_t want = room(c, true, false);

    if (c->stopping || c->claiming || !c->group_ready || want == 0 || !tn_redis_connected(c->ctl))
        return;
    snprintf(idle, sizeof(idle), "%u", c->visibility_ms);
    snprintf(n, sizeof(n), "%u", want);
    if (send_op(c, c->ctl, c->command_timeout_ms, 8, argv, NULL, autoclaim_cb, c) == TN_OK) {
        c->claiming = true;
        c->claim_reserved = want;
    }
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
    uv_timer_start(&c->claim_timer, claim_cb, c->claim_interval_ms, c->claim_interval_ms);
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
            release(c, e); /* stays pending: another consumer retries it */
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
    flush_acks(c); /* like XACKs already sent: on the wire before ctl closes */
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
