#ifndef TN_CONSUMER_INT_H
#define TN_CONSUMER_INT_H
/*
 * tn_consumer_int - state shared by tn_consumer.c (life cycle, held
 * entries, reading), tn_consumer_retry.c (retries, reclaims, dead letters)
 * and tn_consumer_ack.c (tn_consumer_done, batched XACKs). Private to
 * common/src/io. Everything here runs on the loop.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_consumer.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

struct redisReply;

enum { E_NEW, E_HANDLER, E_FINISHING, E_WAITING, E_CLAIMING };

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

/* --- tn_consumer.c --- */

/* tn__consumer_set_state - move e to state s, keeping c's counters right. */
void tn__consumer_set_state(struct tn_consumer *c, struct tn_entry *e, int s);
/* tn__consumer_entry_new - a new entry (caller frees with
 * tn__consumer_entry_free) from an XREADGROUP/XCLAIM item, which is
 * borrowed; NULL when the item is nil (deleted) or malformed. */
struct tn_entry *tn__consumer_entry_new(struct tn_consumer *c, const struct redisReply *item);
/* tn__consumer_entry_free - free an entry that is not held. Steals e. */
void tn__consumer_entry_free(struct tn_entry *e);
/* tn__consumer_hold - put new entry e on c's held list (c owns it now). */
void tn__consumer_hold(struct tn_consumer *c, struct tn_entry *e);
/* tn__consumer_release - unhold and free e (it stays in Redis' PEL unless
 * acked); may free c when it is closing, else pumps. */
void tn__consumer_release(struct tn_consumer *c, struct tn_entry *e);
/* tn__consumer_hand - give held entry e to the handler. */
void tn__consumer_hand(struct tn_consumer *c, struct tn_entry *e);
/* tn__consumer_send_op - a command on conn (argv/lens borrowed) whose
 * callback will run; counted in c->ops. Errors: TN_EUNAVAIL, no callback. */
enum tn_err tn__consumer_send_op(struct tn_consumer *c, struct tn_redis *conn, uint32_t timeout_ms,
                                 int argc, const char *const *argv, const size_t *lens,
                                 tn_redis_reply_fn *cb, void *arg);
/* tn__consumer_op_done - a command of ours called back; true when c is going
 * away (c may have been freed: do not touch it). */
bool tn__consumer_op_done(struct tn_consumer *c);
/* tn__consumer_reply_error - the text of an error reply (borrowed), or NULL. */
const char *tn__consumer_reply_error(const struct redisReply *reply);
/* tn__consumer_room - how many more entries a read (is_read), reclaim
 * (fresh) or retry may ask for. */
uint32_t tn__consumer_room(const struct tn_consumer *c, bool fresh, bool is_read);
/* tn__consumer_pump - start whatever work there is room for. */
void tn__consumer_pump(struct tn_consumer *c);

/* --- tn_consumer_retry.c --- */

/* tn__consumer_dispatch_retries - claim due retries while there is room. */
void tn__consumer_dispatch_retries(struct tn_consumer *c);
/* tn__consumer_retry - keep e pending; hand it over again after a delay. */
void tn__consumer_retry(struct tn_consumer *c, struct tn_entry *e);
/* tn__consumer_finish_dead - copy e to the dead stream and ack it, then
 * release it; reason borrowed (copied). */
void tn__consumer_finish_dead(struct tn_consumer *c, struct tn_entry *e, const char *reason);
/* tn__consumer_claim_cb - claim_timer: periodic XAUTOCLAIM. Runs on: loop. */
void tn__consumer_claim_cb(uv_timer_t *t);

/* --- tn_consumer_ack.c --- */

/* tn__consumer_flush_acks - send every queued ack now. */
void tn__consumer_flush_acks(struct tn_consumer *c);

#endif
