#ifndef SWEEPER_H
#define SWEEPER_H
/*
 * sweeper.h - tern-sweeper's private header: the configuration, the daemon
 * context, one privacy job, and the entry points of each sweeper_*.c file.
 *
 * Shape of the work:
 *   tern:privacy entry -> sweeper_daemon.c (parse, submit a job)
 *     -> threadpool: sweeper_request.c dispatches on the kind to
 *        sweeper_erase.c / sweeper_export.c / restrict / disconnect
 *     -> loop: verdict (ACK / RETRY / DEAD); tokens taken from a
 *        disconnected account (sweeper_tokens.c) or mailbox channel
 *        (sweeper_mailbox.c) go to sweeper_revoke.c (HTTP, retried): the
 *        account's push channel is stopped first, then the grant revoked
 *   erase -> after COMMIT, one cal.request delete_event per calendar event
 *     of the erased bookings (sweeper_caldel.c; rows of calendar_deletions)
 *   TN_SWEEPER_INTERVAL timer -> threadpool: sweeper_offboard.c (deleted
 *     tenants), sweeper_retain.c (expired rows), sweeper_trim.c (streams)
 *
 * Ownership: the context is static (main.c) and outlives everything; a job
 * is owned by the daemon from submit until its done callback frees it.
 * Threadpool code reads ctx->cfg and ctx->keys (immutable after init) and
 * writes only its job.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

struct tn_consumer;
struct tn_entry;
struct tn_http;
struct tn_keyring;
struct tn_metric;
struct tn_pg;
struct tn_pgconn;
struct tn_rt;
struct uv_loop_s;
struct uv_timer_s;
struct redisContext;
struct redisReply;

#define SWEEPER_MAX_NEEDLES 64
#define SWEEPER_MAX_TOKENS 16

/* Parsed environment (main.c's table). Strings owned by tn_env. */
struct sweeper_cfg {
    char *export_dir;          /* TN_SWEEPER_EXPORT_DIR ("" : exports fail) */
    char *suppression_key;     /* TN_SUPPRESSION_KEY ("" : erasures wait) */
    char *master_key;          /* TN_MASTER_KEY (to open tokens to revoke) */
    char *revoke_url;          /* TN_GOOGLE_REVOKE_URL */
    char *calendar_base;       /* TN_GOOGLE_CALENDAR_BASE: channels.stop */
    char *streams;             /* TN_SWEEPER_STREAMS: comma list to trim */
    int64_t interval_ms;       /* TN_SWEEPER_INTERVAL */
    int64_t batch;             /* TN_SWEEPER_BATCH: rows per statement */
    int64_t budget_ms;         /* TN_SWEEPER_BUDGET: work per sweep and tenant */
    int64_t stream_max_age_ms; /* TN_SWEEPER_STREAM_MAX_AGE */
    int64_t revoke_attempts;   /* TN_SWEEPER_REVOKE_ATTEMPTS */
};

/* What a cleared Google account leaves to do at the provider: stop its
 * push channel (with its access token), then revoke the grant. Every string
 * is new, owned by the holder and wiped and freed by sweeper_token_wipe
 * (sweeper_revoke takes them over). */
struct sweeper_token {
    char *value;                  /* plaintext token to revoke (refresh, else access), or NULL */
    char *access;                 /* plaintext access token for channels.stop, or NULL */
    char *channel;                /* the push channel's id, or NULL (none, or no live access) */
    char *resource;               /* its Google resourceId */
    char tenant[37], account[37]; /* for the logs */
};

/* A calendar event to delete after an erasure (a calendar_deletions row). */
struct sweeper_caldel {
    char id[37], account[37];
};

/* The daemon. */
struct sweeper_ctx {
    struct sweeper_cfg cfg;
    struct uv_loop_s *loop;
    const char *redis_url; /* borrowed from the skeleton's configuration */
    struct tn_pg *pg;
    struct tn_consumer *privacy;
    struct tn_http *http;
    struct tn_keyring *keys; /* NULL: tokens are deleted but not revoked */
    struct uv_timer_s *timer;
    bool curl_inited;
    bool draining;
    bool sweeping;  /* a sweep job is on the threadpool */
    size_t jobs;    /* privacy jobs in flight */
    size_t revokes; /* revocations not finished */
    struct {
        struct tn_metric *requests, *failed, *erased, *exported, *purged, *trimmed, *revoked;
    } m;
};

/* Kinds of privacy.request this daemon handles. */
enum sweeper_kind {
    SWEEPER_ERASE,
    SWEEPER_EXPORT,
    SWEEPER_RESTRICT,
    SWEEPER_UNRESTRICT,
    SWEEPER_DISCONNECT,
};

/* One privacy request on its way through the threadpool. */
struct sweeper_job {
    struct sweeper_ctx *ctx;
    struct tn_entry *entry; /* borrowed until tn_consumer_done */
    enum sweeper_kind kind;
    char tenant[37];
    char request[37];
    char contact[37]; /* erase/export/restrict: the subject */
    char account[37]; /* disconnect: the calendar account, or "" */
    char channel[37]; /* disconnect: the messaging channel, or "" */
    const char *fail; /* static reason when the work failed for good */
    long purged;      /* rows removed or changed (metrics) */
    size_t ntokens;
    struct sweeper_token tokens[SWEEPER_MAX_TOKENS]; /* taken for revocation */
};

/* sweeper_daemon.c - the skeleton's hooks (tn_daemon.h). Runs on: loop. */
enum tn_err sweeper_init(struct tn_rt *rt, void *arg);
void sweeper_drain(struct tn_rt *rt, void *arg);
bool sweeper_busy(void *arg);
void sweeper_fini(struct tn_rt *rt, void *arg);
void sweeper_heartbeat(struct tn_rt *rt, void *arg);
bool sweeper_ready(void *arg, const char **why);

/* sweeper_request_work - the threadpool body of a privacy job: dispatch on
 * job->kind. Sets job->fail for a request that can never succeed (DEAD);
 * returns TN_EUNAVAIL / TN_ETIMEDOUT for one to retry. Runs on: threadpool. */
enum tn_err sweeper_request_work(struct tn_pgconn *c, void *arg);

/* sweeper_request_finish - mark the privacy_requests row done with receipt
 * (borrowed JSON text) and write an audit_log row (action, same receipt),
 * inside the caller's tenant transaction. Runs on: threadpool. */
enum tn_err sweeper_request_finish(struct tn_pgconn *c, const struct sweeper_job *job,
                                   const char *action, const char *receipt);

/* sweeper_request_done_already - is the request already done? (redelivery)
 * Inside the caller's tenant transaction. Runs on: threadpool. */
enum tn_err sweeper_request_done_already(struct tn_pgconn *c, const struct sweeper_job *job,
                                         bool *done);

/* sweeper_erase_work - ERASE (sweeper_erase.c). Runs on: threadpool. */
enum tn_err sweeper_erase_work(struct tn_pgconn *c, struct sweeper_job *job);

/* sweeper_export_work - EXPORT (sweeper_export.c). Runs on: threadpool. */
enum tn_err sweeper_export_work(struct tn_pgconn *c, struct sweeper_job *job);

/* sweeper_disconnect_work - delete an account's tokens (or a channel's
 * secrets: job->channel), keep what is to revoke in job (sweeper_revoke.c).
 * Runs on: threadpool. */
enum tn_err sweeper_disconnect_work(struct tn_pgconn *c, struct sweeper_job *job);

/* sweeper_channel_disconnect - inside the caller's tenant transaction:
 * disable job->channel, delete its secrets and keep a mailbox's Gmail grant
 * in job->tokens (sweeper_mailbox.c); job->fail "no_such_channel" when the
 * tenant has no such channel. Runs on: threadpool. */
enum tn_err sweeper_channel_disconnect(struct tn_pgconn *c, struct sweeper_job *job);

/* sweeper_take_mailboxes - inside the caller's tenant transaction, disable
 * the tenant's email channels that still hold secrets (at most room of
 * them), delete the secrets and move their Gmail grants into tokens
 * (opened with keys; NULL keys: none). *n gets how many grants; *more
 * whether there may be mailboxes left (room rows taken, or room 0). Runs
 * on: threadpool. */
enum tn_err sweeper_take_mailboxes(struct tn_pgconn *c, const struct tn_keyring *keys,
                                   const char *tenant, struct sweeper_token *tokens, size_t room,
                                   size_t *n, bool *more);

/* sweeper_take_tokens - inside the caller's tenant transaction, clear the
 * tokens of one account (every account of the tenant when account is NULL;
 * at most room accounts per call) and move their plaintext Google tokens into
 * tokens (opened with keys; NULL keys: none). *n gets how many; *more
 * whether there may be accounts left (room rows taken, or room 0). Runs on:
 * threadpool. */
enum tn_err sweeper_take_tokens(struct tn_pgconn *c, const struct tn_keyring *keys,
                                const char *tenant, const char *account,
                                struct sweeper_token *tokens, size_t room, size_t *n, bool *more);

/* sweeper_revoke_start - for each token (moved out of tokens[0..n), which
 * is zeroed): stop its push channel, then revoke it at the provider,
 * retrying failures of each. Runs on: loop. */
void sweeper_revoke_start(struct sweeper_ctx *ctx, struct sweeper_token *tokens, size_t n);

/* sweeper_revoke_stop - drain: pending retries are abandoned (logged). */
void sweeper_revoke_stop(struct sweeper_ctx *ctx);

/* sweeper_token_wipe - zero and free a token's strings (NULL-safe). */
void sweeper_token_wipe(struct sweeper_token *t);

/* sweeper_redis_open - blocking connection from url (AUTH from the URL),
 * NULL when Redis is down. Runs on: threadpool. */
struct redisContext *sweeper_redis_open(const char *url);

/* sweeper_redis_cmd - one command (argv NUL-terminated strings); NULL when
 * the link failed or Redis answered an error (logged with the command
 * name). Returns: new reply (freeReplyObject). Runs on: threadpool. */
struct redisReply *sweeper_redis_cmd(struct redisContext *rc, int argc, const char **argv);

/* sweeper_redis_scrub - delete every stream entry of tenant whose fields
 * contain one of needles[0..n) (and its dedupe key), every key whose name
 * contains one, and every sorted-set member and hash field that does.
 * counts[0..3): stream entries, keys, members. Runs on: threadpool. */
enum tn_err sweeper_redis_scrub(const char *url, const char *tenant, const char *const *needles,
                                size_t n, long counts[3]);

/* sweeper_caldel_record - inside the erasure's tenant transaction, before the
 * bookings are deleted: one calendar_deletions row per booking of contact
 * with an event in a calendar. *out gets new rows (tn_free), *n how many.
 * Runs on: threadpool. */
enum tn_err sweeper_caldel_record(struct tn_pgconn *c, const char *contact,
                                  struct sweeper_caldel **out, size_t *n);

/* sweeper_caldel_publish - after COMMIT: XADD one cal.request delete_event
 * per row (borrowed) to tern:cal. A failure is logged, not returned:
 * tern-calsync's scan finds rows whose entry never came. Runs on:
 * threadpool. */
void sweeper_caldel_publish(const char *url, const char *tenant, const struct sweeper_caldel *rows,
                            size_t n);

/* The timer's sweep (sweeper_sweep.c): offboarding, retention, trimming. */
void sweeper_sweep_start(struct sweeper_ctx *ctx);

/* sweeper_retain_tenant - purge one tenant's expired rows in batches.
 * *purged += rows. Runs on: threadpool. */
enum tn_err sweeper_retain_tenant(struct tn_pgconn *c, const struct sweeper_cfg *cfg,
                                  const char *tenant, long *purged);

/* sweeper_offboard_tenant - delete every row of a deleted tenant in
 * batches, then the tenant; tokens go to tokens (room, *n). *done says
 * whether the tenant is gone. Runs on: threadpool. */
enum tn_err sweeper_offboard_tenant(struct tn_pgconn *c, const struct sweeper_ctx *ctx,
                                    const char *tenant, struct sweeper_token *tokens, size_t room,
                                    size_t *n, long *purged, bool *done);

/* sweeper_trim_streams - XTRIM MINID each configured stream below what
 * every group has read and every pending entry. *trimmed += entries.
 * Runs on: threadpool. */
enum tn_err sweeper_trim_streams(const struct sweeper_cfg *cfg, const char *url, long *trimmed);

#endif
