#ifndef TN_CONSUMER_H
#define TN_CONSUMER_H
/*
 * tn_consumer - the shared stream reading loop (STYLE.md R17, DESIGN.md
 * "Streams"): XREADGROUP on its own connection, XACK, retries with backoff,
 * XAUTOCLAIM of entries a dead consumer left pending, and dead-lettering to
 * "<stream>:dead" after max_deliveries. A service writes only the handler.
 *
 * Delivery is at-least-once: an entry whose handler has not finished when
 * the process dies is handed to another consumer after visibility_ms, so
 * handlers must be idempotent.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

struct uv_loop_s;
struct tn_consumer;

enum tn_disp {
    TN_DISP_ACK,   /* done: XACK */
    TN_DISP_RETRY, /* keep pending; hand over again after a growing delay */
    TN_DISP_DEAD,  /* copy to <stream>:dead with the reason, then XACK */
};

/* One stream entry. Every pointer is borrowed: valid until the handler calls
 * tn_consumer_done() for it. Fields starting with '_' are private. */
struct tn_entry {
    const char *id;     /* "1736244063000-0" */
    const char *stream; /* the consumer's stream */
    size_t nfields;     /* name/value pairs */
    char **names;       /* NUL-terminated; lengths below (values may hold NULs) */
    size_t *name_lens;
    char **values;
    size_t *value_lens;
    uint32_t deliveries; /* 1 on first delivery; counts reclaims and retries */

    struct tn_consumer *_c;
    int _state;
    uint64_t _due;      /* retry: uv_now() ms */
    uint32_t _min_idle; /* retry: XCLAIM min-idle-time */
    char *_reason;
    struct tn_entry *_prev, *_next;
};

struct tn_consumer_opts {
    const char *stream;          /* required; borrowed, copied */
    const char *group;           /* required; borrowed, copied */
    const char *consumer;        /* NULL: "<hostname>-<pid>" */
    const char *name;            /* connection name (CLIENT SETNAME prefix); NULL: group */
    uint32_t count;              /* entries in the handler at most; 0: 16 */
    uint32_t block_ms;           /* XREADGROUP BLOCK; 0: 2000 */
    uint32_t visibility_ms;      /* XAUTOCLAIM min-idle; 0: 60000 */
    uint32_t max_deliveries;     /* then dead; 0: 5 */
    uint32_t retry_base_ms;      /* 0: 1000 */
    uint32_t retry_cap_ms;       /* 0: 60000; also held below visibility_ms / 2 */
    uint32_t claim_interval_ms;  /* XAUTOCLAIM period; 0: 5000 */
    uint32_t command_timeout_ms; /* non-blocking commands; 0: tn_redis's default */
};

/* tn_consumer_entry_fn - one entry to handle. e is borrowed until the
 * handler passes it to tn_consumer_done.
 * Runs on: loop. Must eventually call tn_consumer_done(c, e, disp, reason)
 * exactly once (possibly later, from another callback). */
typedef void tn_consumer_entry_fn(struct tn_consumer *c, struct tn_entry *e, void *arg);

/* Counters for /metrics; monotonic since tn_consumer_new. */
struct tn_consumer_stats {
    uint64_t handled;   /* handed to the handler (each delivery) */
    uint64_t acked;     /* XACKed after TN_DISP_ACK */
    uint64_t retried;   /* TN_DISP_RETRY accepted for a later delivery */
    uint64_t dead;      /* written to <stream>:dead */
    uint64_t reclaimed; /* taken over from idle consumers by XAUTOCLAIM */
    uint64_t errors;    /* failed Redis commands (the entry stays pending) */
};

/* tn_consumer_new - open two connections to url (one only for the blocking
 * XREADGROUP, one for everything else), create the group (XGROUP CREATE ...
 * 0 MKSTREAM; BUSYGROUP is fine) and start reading. url, o, borrowed; arg
 * borrowed, passed to fn.
 * Returns: new, free with tn_consumer_free. NULL when url is malformed or a
 * required option is missing.
 * Runs on: loop. */
struct tn_consumer *tn_consumer_new(struct uv_loop_s *loop, const char *url,
                                    const struct tn_consumer_opts *o, tn_consumer_entry_fn *fn,
                                    void *arg);

/* tn_consumer_done - the handler's verdict on e. reason (borrowed, copied)
 * goes into dead_reason for TN_DISP_DEAD, and for TN_DISP_RETRY when that was
 * the last allowed delivery; NULL is fine. e must not be used afterwards.
 * Runs on: loop. */
void tn_consumer_done(struct tn_consumer *c, struct tn_entry *e, enum tn_disp disp,
                      const char *reason);

/* tn_consumer_stop - drain: no new reads or reclaims, pending retries are
 * left for other consumers (they stay in the PEL); entries in the handler
 * still finish and are acked. Poll tn_consumer_inflight() until 0.
 * Runs on: loop. */
void tn_consumer_stop(struct tn_consumer *c);

/* tn_consumer_inflight - entries handed to the handler whose verdict has not
 * yet been written to Redis (XACK or dead-letter pending). */
size_t tn_consumer_inflight(const struct tn_consumer *c);

/* tn_consumer_ready - the group exists and the reading connection is up. */
bool tn_consumer_ready(const struct tn_consumer *c);

/* tn_consumer_stats - copy the counters into out. */
void tn_consumer_stats(const struct tn_consumer *c, struct tn_consumer_stats *out);

/* tn_consumer_stream, tn_consumer_group - the names given at creation.
 * Returns: borrowed, valid until tn_consumer_free. */
const char *tn_consumer_stream(const struct tn_consumer *c);
const char *tn_consumer_group(const struct tn_consumer *c);

struct tn_metrics;
struct tn_redis;

/* tn_consumer_export - heartbeat hook for /metrics (tn_consumer_export.c):
 * sets tern_consumer_{handled,acked,retried,dead,reclaimed,errors}_total
 * {stream,group} from the counters, and sends XINFO GROUPS on r (any
 * connection whose user may run it; the daemon skeleton's) to set
 * tern_stream_lag{stream,group} (entries not yet delivered to the group)
 * and tern_stream_pending{stream,group} (delivered, not acknowledged) when
 * it answers. c, r, m borrowed; m must outlive the reply. Runs on: loop. */
void tn_consumer_export(struct tn_consumer *c, struct tn_redis *r, struct tn_metrics *m);

/* tn_consumer_free - close both connections and all handles (NULL-safe).
 * Commands not yet answered are canceled; entries still pending in Redis
 * are reclaimed later by other consumers. Entries still in the handler
 * become invalid only after it calls tn_consumer_done (which then does
 * nothing but free them), so calling this mid-handler is safe.
 * Runs on: loop. */
void tn_consumer_free(struct tn_consumer *c);

/* tn_entry_field - value of the first field called name (NUL-terminated);
 * *len gets its length when len is not NULL.
 * Returns: borrowed, valid until tn_consumer_done(e); NULL when absent. */
const char *tn_entry_field(const struct tn_entry *e, const char *name, size_t *len);

#endif
