#ifndef SENDER_H
#define SENDER_H
/*
 * sender.h - tern-sender's private header: the configuration, the daemon
 * context, one send job, the provider interface and the cross-file
 * functions of services/sender/sender_*.c.
 *
 * The life of an outbound message (see main.c for the whole picture):
 *   tern:out entry -> sender_out (row upserted, member scheduled, ACK)
 *   -> schedule ZSET (sender_sched: due time, lease on claim)
 *   -> sender_send job: rate token, prepare (consent, window, 'sending'),
 *      provider call, record (sent / failed / retry / dead), unschedule.
 *   tern:status entry -> sender_status (furthest state, never backwards).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_buf.h>
#include <tn/tn_err.h>
#include <tn/tn_http.h>
#include <tn/tn_log.h>

struct json_t;
struct uv_loop_s;
struct uv_timer_s;
struct tn_consumer;
struct tn_entry;
struct tn_http;
struct tn_keyring;
struct tn_metric;
struct tn_pg;
struct tn_pgconn;
struct pg_result;
struct tn_redis;
struct tn_rt;
struct sender_rate;
struct sender_batch;
struct sender_gtoken;

#define SENDER_UUID_LEN 36
#define SENDER_SCHED_INDEX "tern:sched"   /* ZSET: tenant -> its earliest due ms */
#define SENDER_SCHED_PREFIX "tern:sched:" /* ZSET per tenant: member -> due ms */
#define SENDER_ERR_CODE_MAX 64

/* The environment (main.c's table parses into this). */
struct sender_cfg {
    char *master_key;
    char *suppression_key; /* HMAC key of suppressions.address_hash (tern-sweeper's) */
    char *whatsapp_base;
    char *whatsapp_version;
    char *twilio_base;
    char *telegram_base;
    char *gmail_base;
    char *google_client_id;     /* Gmail token refresh (sender_gmail.c); "": none */
    char *google_client_secret; /* secret */
    char *google_token_url;
    char *twilio_status_url;
    int64_t concurrency;
    int64_t pg_pool;
    int64_t http_timeout_ms;
    int64_t poll_ms;
    int64_t lease_ms;
    int64_t echo_wait_ms;
    int64_t visibility_ms;
    int64_t max_attempts;
    int64_t retry_base_ms;
    int64_t retry_cap_ms;
    int64_t tenant_batch;
    int64_t rate_whatsapp;
    int64_t rate_twilio;
    int64_t rate_telegram;
    int64_t rate_telegram_chat;
    int64_t smtp_concurrency;
    int64_t intake_wait_ms; /* how long a fresh entry may wait for a job slot */
};

/* Counters on /metrics (handles borrowed from the daemon's registry). */
struct sender_metrics {
    struct tn_metric *sent, *failed, *retried, *dead, *rate_limited, *statuses, *send_seconds;
};

/* A queue of items waiting for one batched database step (sender_batch.c).
 * Items are borrowed (their flow owns them); a batch takes up to
 * SENDER_BATCH_MAX of them at a time, at most SENDER_BATCH_INFLIGHT batches
 * of a queue are on the pool at once. */
struct sender_queue {
    const char *name;
    /* work - the batch's statements (tn_pg_work_fn on a struct sender_batch). */
    enum tn_err (*work)(struct tn_pgconn *c, void *arg);
    /* done - every item of b is finished with err (TN_OK: per-item results
     * are in the items). Runs on: loop. */
    void (*done)(struct sender_batch *b, enum tn_err err);
    void **items;
    size_t n, cap, inflight;
};

#define SENDER_BATCH_MAX 256
#define SENDER_BATCH_INFLIGHT 1

/* One batched step on the pool. items new (the array; its items borrowed). */
struct sender_batch {
    struct sender_ctx *ctx;
    struct sender_queue *q;
    size_t n;
    void **items;
};

/* Members to take off the schedule, sent as one script call per flush. */
struct sender_unsched {
    char **argv; /* tenant, member pairs; new */
    size_t n, cap;
};

/* HTTP clients at most; one per SENDER_HTTP_SHARD_CONNS job slots */
#define SENDER_HTTP_SHARDS 16
#define SENDER_HTTP_SHARD_CONNS 64
/* receive buffer per transfer (libcurl's default, 16 KiB, is a large
 * allocation made and freed at every transfer); providers' answers to a
 * send are a few hundred bytes, a longer one takes more reads */
#define SENDER_HTTP_BUFFER 4096

/* The daemon's one context (STYLE.md R7). */
struct sender_ctx {
    struct sender_cfg cfg;
    struct uv_loop_s *loop;
    struct tn_keyring *keys;
    struct tn_redis *redis; /* schedule, dead letters: the skeleton's connection */
    struct tn_pg *pg;
    struct tn_http *http[SENDER_HTTP_SHARDS]; /* nhttp of them: sender_http() */
    unsigned nhttp, http_next;
    struct tn_consumer *out;    /* tern:out */
    struct tn_consumer *status; /* tern:status */
    struct sender_rate *rate;
    struct uv_timer_s *poll;
    struct uv_check_s *flush;     /* flushes the queues once per loop iteration */
    struct uv_timer_s *slot_wait; /* wakes the flush when an entry's slot wait ends */
    struct sender_queue intake, prepare, record;
    struct sender_unsched unsched;
    struct sender_smtp_wait {
        struct sender_job *head, *tail; /* SMTP sends waiting for a slot (sender_smtp.c) */
        size_t inflight;                /* SMTP sends on the threadpool */
    } smtp;
    struct sender_metrics m;
    struct sender_gtoken *gtokens; /* Gmail channels' token state (sender_gmail.c) */
    size_t jobs;                   /* send jobs in flight */
    size_t claimed;                /* of which started by a claim of the schedule */
    int64_t intake_starved_ms;     /* when intake last found no free job slot */
    size_t handlers;               /* stream handlers in flight */
    size_t reads;                  /* read markers in flight (sender_read.c) */
    bool claiming;                 /* a claim is on the wire */
    bool draining;
    bool curl_inited;
};

/* ------------------------------------------------------------------ providers */

/* What a provider needs to build one request. All strings borrowed from the
 * job (valid until the job ends). */
struct sender_msg {
    const char *outbound_id;
    const char *channel_kind;      /* whatsapp | twilio_sms | twilio_whatsapp | telegram | email */
    const char *from;              /* channels.external_address */
    const char *to;                /* contacts.address */
    const char *text;              /* NULL when sending the template */
    const struct json_t *template; /* NULL when sending text */
    const char *reply_to;
    const struct json_t *secrets; /* the channel's opened secrets */
    /* email only: the producer's subject (NULL: none), and the lead's last
     * inbound email {message_id, subject, references, thread_id} (NULL:
     * none known); reply_to is then the Message-ID to answer */
    const char *subject;
    const struct json_t *last_in;
};

/* A built HTTP request; every member new (sender_req_free). */
struct sender_req {
    char *url;
    struct tn_buf body;
    char *headers[4]; /* NULL-terminated */
    char *userpwd;
    /* SMTP (sender_smtp.c instead of tn_http): url is smtp(s)://, body the
     * RFC 5322 message, userpwd the login (may be NULL) */
    bool smtp;
    bool smtp_tls_required; /* STARTTLS required, not merely tried */
    char *mail_from, *rcpt_to, *message_id;
    /* Gmail: the access token in headers[0], the channel's refresh token
     * (NULL: none) and the access token's expiry (epoch s, 0: unknown);
     * secrets, wiped by sender_req_free */
    char *gm_access, *gm_refresh;
    int64_t gm_exp_s;
};

enum sender_verdict {
    SENDER_V_OK,    /* accepted: pmid set */
    SENDER_V_RETRY, /* not accepted, may succeed later (429, 5xx, network) */
    SENDER_V_FINAL, /* refused for good: code set */
};

/* A classified provider answer. */
struct sender_result {
    enum sender_verdict v;
    char pmid[256];
    char code[SENDER_ERR_CODE_MAX]; /* "131026", "http_503", "network" */
    int64_t retry_after_ms;         /* 0: none given */
    bool ambiguous;                 /* RETRY where the provider may have accepted (timeout) */
};

/* One provider: builds requests and classifies answers. Pure functions. */
struct sender_provider {
    const char *name; /* "whatsapp" */
    bool has_echo;    /* statuses echo our outbound id (see DESIGN.md) */
    /* build - the request for m. Errors: TN_EINVAL (a final refusal: *why
     * names it, static text). */
    enum tn_err (*build)(const struct sender_cfg *cfg, const struct sender_msg *m,
                         struct sender_req *out, const char **why);
    /* parse - classify an HTTP answer (body borrowed). */
    void (*parse)(long status, const char *body, size_t len, const char *retry_after,
                  struct sender_result *out);
};

extern const struct sender_provider sender_whatsapp;
extern const struct sender_provider sender_twilio;
extern const struct sender_provider sender_telegram;
extern const struct sender_provider sender_email;

/* The parts of one outgoing email (sender_mime.c); all borrowed. */
struct sender_mime {
    const char *from, *to;   /* addr-specs: the mailbox, the lead */
    const char *subject;     /* NULL: none */
    const char *in_reply_to; /* a Message-ID with or without <>, or NULL */
    const char *references;  /* the earlier "<id> <id>" chain, or NULL */
    const char *outbound_id; /* makes the Message-ID */
    const char *text;        /* UTF-8 body */
};

/* sender_whatsapp_read_build - the Cloud API request that marks the inbound
 * message wamid (borrowed) read: POST <base>/<ver>/<from>/messages
 * {"messaging_product":"whatsapp","status":"read","message_id":wamid} with
 * the channel's access_token (secrets borrowed). out: every member new
 * (sender_req_free). Errors: TN_EINVAL with *why "credentials.missing". */
enum tn_err sender_whatsapp_read_build(const struct sender_cfg *cfg, const char *from,
                                       const struct json_t *secrets, const char *wamid,
                                       struct sender_req *out, const char **why);

/* sender_mime_build - an RFC 5322 message (CRLF, text/plain UTF-8, base64
 * body) with a Message-ID fixed by the outbound id, so that a resend is the
 * same message. now_ms gives the Date. *msg and *msgid (with its <>) new.
 * Errors: TN_EINVAL with *why (static): an address that is not a plain
 * addr-spec ("email.address_invalid"), no text ("text.missing"). */
enum tn_err sender_mime_build(const struct sender_mime *in, int64_t now_ms, char **msg,
                              char **msgid, const char **why);

/* sender_gmail_set_token - put token (borrowed, copied) into r's
 * Authorization header and gm_access, wiping the old ones. */
void sender_gmail_set_token(struct sender_req *r, const char *token);

/* sender_token_fn - a job's Gmail token is settled: ok, the request holds a
 * fresh token (call again); else job->res says why not (final
 * "gmail_reauth", or a retry). Runs on: loop. */
typedef void sender_token_fn(struct sender_job *job, bool ok);

/* sender_gmail_token - a fresh access token for job's Gmail request, when
 * its token is known expired (expires_at within a minute) or Gmail refused
 * it (rejected: a 401), once per job: a newer token this process already
 * has, else one refresh of the channel's refresh token at a time (the
 * other jobs of the channel wait for it), stored sealed in the channel's
 * secrets. Returns true when then(job, ok) will run exactly once (maybe
 * before this returns); false when there is nothing to do (not Gmail, no
 * refresh token or client credentials, already done): go on as before.
 * Runs on: loop. */
bool sender_gmail_token(struct sender_job *job, bool rejected, sender_token_fn *then);

/* sender_gmail_free_all - release the token state (at fini). */
void sender_gmail_free_all(struct sender_ctx *ctx);

/* sender_smtp_result - classify a finished SMTP transfer: curl_rc (a
 * CURLcode) and the last SMTP reply code; msgid (borrowed) becomes the
 * provider id on success. 4xx and network retry, 5xx is final. */
void sender_smtp_result(int curl_rc, long smtp_code, const char *msgid, struct sender_result *out);

/* sender_smtp_send - send job->req over SMTP: a blocking libcurl easy
 * transfer on the threadpool, at most cfg.smtp_concurrency at once (the
 * rest wait in ctx->smtp). Then, like an HTTP answer, job->res is set, the
 * request freed and the job pushed on the record queue. Runs on: loop. */
void sender_smtp_send(struct sender_ctx *ctx, struct sender_job *job);

/* sender_smtp_stop - the waiting SMTP sends end unsent (a transport
 * failure, recorded as a retry). Runs on: loop. */
void sender_smtp_stop(struct sender_ctx *ctx);

/* sender_provider_of - the provider of a channel kind, NULL if none. */
const struct sender_provider *sender_provider_of(const char *channel_kind);

/* sender_req_free - release a request's members (safe on a zeroed one). */
void sender_req_free(struct sender_req *r);

/* sender_req_http - r as a POST for tn_http_send, timing out after
 * timeout_ms and reading at most max_response bytes of the answer.
 * Returns: a request whose strings are borrowed from r (keep r until
 * tn_http_send returns; tn_http copies what it keeps). */
struct tn_http_request sender_req_http(const struct sender_req *r, int64_t timeout_ms,
                                       size_t max_response);

/* sender_secret - secrets[name] as a string. Returns: borrowed; NULL if absent. */
const char *sender_secret(const struct json_t *secrets, const char *name);

/* sender_json_text - compact JSON text of j. Returns: new (tn_free). */
char *sender_json_text(const struct json_t *j);

/* A provider's requested wait is honoured up to a day; a larger one (or a
 * bogus 64-bit number) is read as a day. */
#define SENDER_RETRY_AFTER_MAX_S 86400LL

/* sender_retry_after_ms - a Retry-After header (delta seconds or an HTTP
 * date) in ms, at most SENDER_RETRY_AFTER_MAX_S; 0 when absent or unreadable. */
int64_t sender_retry_after_ms(const char *v);

/* sender_wait_ms - s seconds (a provider's retry_after) in ms: 0 when
 * s <= 0, at most SENDER_RETRY_AFTER_MAX_S. */
int64_t sender_wait_ms(long long s);

/* sender_transport_result - classify a transport failure into out. */
void sender_transport_result(enum tn_err err, struct sender_result *out);

/* ------------------------------------------------------------------ status ranks */

/* sender_status_next - the state a row in `cur` moves to on the provider
 * status `st` (normalised delivery.status word), or NULL to leave it: rows
 * never go backwards, failed is kept unless delivered/read prove otherwise.
 * Returns: static string or NULL. */
const char *sender_status_next(const char *cur, const char *st);

/* ------------------------------------------------------------------ rate */

/* sender_rate_new - empty token buckets. Returns: new (sender_rate_free). */
struct sender_rate *sender_rate_new(void);
/* sender_rate_free - NULL-safe. */
void sender_rate_free(struct sender_rate *r);
/* sender_rate_take - take one token from the bucket `key` (borrowed, copied
 * on first use) refilled at per_s tokens a second, holding at most burst.
 * Returns 0 when taken, else the ms until a token is free (one is then
 * reserved: the caller comes back at that time). */
int64_t sender_rate_take(struct sender_rate *r, const char *key, double per_s, double burst,
                         int64_t now_ms);

/* sender_rate_try - take one token from the bucket `key` only if one is free
 * now (a send at intake: without one the message takes the schedule and
 * nothing is reserved). Returns true when taken. */
bool sender_rate_try(struct sender_rate *r, const char *key, double per_s, double burst,
                     int64_t now_ms);

/* sender_rate_hold - remember that member (borrowed, copied) holds the
 * token(s) sender_rate_take reserved for due_ms. Returns false when the
 * table is full (the member then takes again when it comes back). */
bool sender_rate_hold(struct sender_rate *r, const char *member, int64_t due_ms, int64_t now_ms);

/* sender_rate_redeem - member's held token: -1 when it holds none (take
 * one), 0 when its time has come (spent and forgotten), else the ms until
 * its time (kept). */
int64_t sender_rate_redeem(struct sender_rate *r, const char *member, int64_t now_ms);

/* ------------------------------------------------------------------ schedule */

/* sender_sched_add - put member (borrowed) of tenant on the schedule at
 * due_ms; nx: keep an existing due time. done(err, arg) runs once on TN_OK.
 * Errors: TN_EUNAVAIL (Redis down; done not called). Runs on: loop. */
enum tn_err sender_sched_add(struct sender_ctx *ctx, const char *tenant, const char *member,
                             int64_t due_ms, bool nx, void (*done)(enum tn_err, void *), void *arg);
/* Script arguments in runs of one tenant's members (sender_sched.c): the
 * tenant, the run's length, the run's members. A run holds at most
 * SENDER_GROUP_MAX members (Lua's unpack() returns a few thousand values at
 * most). argv's strings are borrowed from the input, except the lengths
 * (in count). */
#define SENDER_GROUP_MAX 512
struct sender_grouped {
    const char **argv;
    size_t n;
    char (*count)[24];
    size_t ncount;
};

/* sender_grouped_init - room for `lead` strings the caller puts first, then
 * n items of npick strings each. Release with sender_grouped_close. */
void sender_grouped_init(struct sender_grouped *g, size_t lead, size_t n, size_t npick);

/* sender_grouped_add - append n items of `stride` strings each (item[0]:
 * the tenant; borrowed until g is closed): a new run at every change of
 * tenant and every SENDER_GROUP_MAX items, then per item its strings at
 * offsets pick[0..npick). Consecutive items of one tenant share a run, so
 * input sorted by tenant makes one run per tenant. */
void sender_grouped_add(struct sender_grouped *g, const char *const *in, size_t n, size_t stride,
                        const size_t *pick, size_t npick);

/* sender_grouped_close - release g's arrays (not the strings). */
void sender_grouped_close(struct sender_grouped *g);

/* sender_sched_add_many - put n (tenant, member, due) triples (argv:
 * 3n borrowed strings) on the schedule with ZADD NX in one script call
 * (one ZADD per run of one tenant: intake's batches come sorted by tenant);
 * done(err, arg) runs once on TN_OK. Errors: TN_EUNAVAIL (done not
 * called). Runs on: loop. */
enum tn_err sender_sched_add_many(struct sender_ctx *ctx, size_t n, const char *const *argv,
                                  void (*done)(enum tn_err, void *), void *arg);
/* sender_sched_done - take member off the schedule (fire and forget; a lost
 * removal only brings the member back after its lease, and the row's state
 * then says it is finished). Batched: sent at the next flush. Runs on: loop. */
void sender_sched_done(struct sender_ctx *ctx, const char *tenant, const char *member);
/* sender_sched_flush - send the removals queued by sender_sched_done. */
void sender_sched_flush(struct sender_ctx *ctx);
/* sender_sched_start - start the poll timer. Runs on: loop. */
void sender_sched_start(struct sender_ctx *ctx);
/* sender_sched_kick - claim due members now (if there is room). */
void sender_sched_kick(struct sender_ctx *ctx);
/* sender_sched_stop - stop claiming; close the timer. Runs on: loop. */
void sender_sched_stop(struct sender_ctx *ctx);

/* sender_member_make - "<outbound>:<channel>:<contact>:<provider>" into out. */
void sender_member_make(char *out, size_t size, const char *outbound, const char *channel,
                        const char *contact, const char *provider);

/* ------------------------------------------------------------------ jobs */

enum sender_plan {
    SENDER_P_SEND,  /* marked 'sending', request built: call the provider */
    SENDER_P_DONE,  /* nothing (more) to do: unschedule */
    SENDER_P_LATER, /* not yet: reschedule at later_ms */
    SENDER_P_DEAD,  /* marked 'dead': dead-letter, then unschedule */
};

/* The row fields a send (and its dead letter) is made of. Strings new. */
struct sender_row {
    char *state, *kind, *text, *reply_to, *reason, *trace, *source_entry, *conversation;
    char *transport, *created_at, *not_before, *expires_at;
    char *channel_kind, *from, *to;
    struct json_t *template; /* new reference or NULL */
    struct json_t *last_in;  /* email: the lead's last inbound email, new reference or NULL */
    int attempts;
};

/* One claimed member on its way to the provider. Owned by sender_send.c;
 * the threadpool steps (sender_store.c) touch only the job and the
 * immutable ctx->cfg and ctx->keys. */
struct sender_job {
    struct sender_ctx *ctx;
    char tenant[SENDER_UUID_LEN + 1], id[SENDER_UUID_LEN + 1];
    char channel[SENDER_UUID_LEN + 1], contact[SENDER_UUID_LEN + 1];
    char member[200];
    struct tn_log_ctx log;
    int64_t t0_ms;
    const struct sender_provider *prov;
    struct sender_row row;
    struct sender_req req;    /* built by prepare */
    struct sender_result res; /* the provider's answer */
    enum sender_plan plan;
    int64_t later_ms;
    char code[SENDER_ERR_CODE_MAX]; /* why it failed / died */
    const char *mark;               /* prepare: the state to record (static), NULL: none */
    enum tn_err err;                /* the batched step's outcome for this job */
    struct sender_job *smtp_next;   /* ctx->smtp's waiting list */
    bool claimed;                   /* counted in ctx->claimed */
    /* Gmail token refresh (sender_gmail.c): done once per job; the
     * channel's waiting list and what to do when the token is settled */
    bool token_renewed;
    struct sender_job *token_next;
    sender_token_fn *token_then;
};

/* sender_store_prepare - for every job of a struct sender_batch: load the
 * row, check consent, window and state, open the credentials, build the
 * request and record 'sending'; one transaction per tenant. Sets each
 * job's plan and err. tn_pg_work_fn. Runs on: threadpool. */
enum tn_err sender_store_prepare(struct tn_pgconn *c, void *arg);

/* SENDER_SQL_CONTACT - the contact (alias ct) of an entry u: its
 * contact_id, else the channel's (ch) contact with address u.addr. Two
 * index lookups: one join condition with an OR would compare every contact
 * of the tenant with every entry of the batch. $1 is the tenant. */
#define SENDER_SQL_CONTACT                                                                         \
    " JOIN LATERAL (SELECT c.* FROM contacts c WHERE c.tenant_id = $1 AND c.id = u.contact"        \
    " UNION ALL SELECT c.* FROM contacts c WHERE u.contact IS NULL AND c.tenant_id = $1"           \
    " AND c.kind = ch.kind AND c.address = u.addr) ct ON true"

/* sender_sql_fresh - the facts of entries not stored yet, in the columns
 * sender_store_decide_fresh reads (sender_store.c has the parameters). */
extern const char sender_sql_fresh[];

/* What a fresh entry says of its message (strings borrowed from the entry;
 * NULL: absent), as its row would hold it. */
struct sender_fresh {
    const char *kind, *text, *template_text, *reply_to, *reason, *trace, *source_entry;
    const char *conversation, *transport;
};

/* sender_store_decide_fresh - decide, as prepare would for a row just
 * inserted, each job of jobs (n; jobs[i] is the entry with index i in res,
 * a sender_sql_fresh result, and entries[i] what it says; jobs without a
 * result row are left alone): sets the job's id, contact, channel, row
 * (its own copies), provider, plan and mark ('sending' with the request
 * built, 'failed' or 'dead' with job->code). Records nothing: the caller's
 * INSERT writes the mark. Runs on: threadpool. */
void sender_store_decide_fresh(struct sender_job **jobs, const struct sender_fresh *entries,
                               size_t n, const struct pg_result *res);

/* sender_store_record - for every job of a struct sender_batch: record the
 * provider's answer (job->res): sent, failed, back to queued with a due
 * time, or dead after the attempt limit; one transaction per tenant. Sets
 * each job's plan and err. tn_pg_work_fn. Runs on: threadpool. */
enum tn_err sender_store_record(struct tn_pgconn *c, void *arg);

/* ------------------------------------------------------------------ batches */

/* sender_batch_start - the queues and their flush handle. Runs on: loop. */
void sender_batch_start(struct sender_ctx *ctx);
/* sender_batch_stop - close the flush handle; items still queued finish
 * with TN_ECANCELED. Runs on: loop. */
void sender_batch_stop(struct sender_ctx *ctx);
/* sender_queue_push - queue item (borrowed until q->done) for the next
 * flush. Runs on: loop. */
void sender_queue_push(struct sender_ctx *ctx, struct sender_queue *q, void *item);

/* sender_pg_array_add - append s (NULL: SQL NULL) as one element of a
 * Postgres array literal under construction in b ("{" written by the
 * caller, "}" by sender_pg_array_end). */
void sender_pg_array_add(struct tn_buf *b, const char *s);
/* sender_pg_array_end - close the literal. Returns: borrowed b->data. */
const char *sender_pg_array_end(struct tn_buf *b);

/* A result column sorted for lookups by value (a batch's rows are matched to
 * its items by id or key: one sort, not a scan per item). The values are
 * borrowed from the result, valid while it is. */
struct sender_rowidx {
    struct sender_rowidx_ent {
        const char *v;
        int row;
    } * ents; /* new */
    size_t n;
};
/* sender_rowidx_init - index column col of res (SQL NULLs left out). */
void sender_rowidx_init(struct sender_rowidx *x, const struct pg_result *res, int col);
/* sender_rowidx_find - a row whose column equals v, -1 if none (or v NULL). */
int sender_rowidx_find(const struct sender_rowidx *x, const char *v);
/* sender_rowidx_free - release the index. */
void sender_rowidx_free(struct sender_rowidx *x);

/* sender_group_end - the end of the run of items from i that share
 * tenant_of(item) (items sorted by tenant first). */
size_t sender_group_end(void *const *items, size_t n, size_t i,
                        const char *(*tenant_of)(const void *item));

/* sender_row_free - release a row's members. */
void sender_row_free(struct sender_row *r);

/* sender_dead_letter - XADD the job's message to tern:out:dead with reason
 * job->code, then unschedule it. Runs on: loop. */
void sender_dead_letter(struct sender_job *job);

/* ------------------------------------------------------------------ streams */

/* sender_send_start - run one claimed member (tenant, member borrowed). Runs on: loop. */
void sender_send_start(struct sender_ctx *ctx, const char *tenant, const char *member);

/* sender_send_reserve - for a fresh tern:out entry due now (tenant,
 * channel: uuids; provider: the entry's, borrowed): a send job holding a
 * job slot and a rate token of the channel, so that intake can decide the
 * message and record it 'sending' in the INSERT itself (sender_out.c), or
 * NULL (draining, no free slot, no token free now, or a provider that goes
 * through the schedule: Telegram, email). *no_slot says whether the free
 * slot was all that was missing (then no token was taken: the entry may ask
 * again when a slot frees, sender_out_ready). Returns: new, owned by the
 * caller until sender_send_release or sender_send_go. Runs on: loop. */
struct sender_job *sender_send_reserve(struct sender_ctx *ctx, const char *tenant,
                                       const char *channel, const char *provider, bool *no_slot);
/* sender_send_release - give a reserved job's slot back (steals job; its
 * token is spent). Runs on: loop. */
void sender_send_release(struct sender_job *job);
/* sender_send_go - a job decided at intake (sender_store_decide_fresh) and
 * stored with its mark: call the provider, or log and finish a failed or
 * dead one, as after prepare (steals job). Runs on: loop. */
void sender_send_go(struct sender_job *job);

/* One tern:out entry through intake (sender_out.c, sender_intake.c).
 * Owned by sender_out.c from sender_out_entry to its verdict. */
struct sender_out_job {
    struct sender_ctx *ctx;
    struct tn_consumer *c;
    struct tn_entry *e;
    struct tn_log_ctx log;
    const char *p[17]; /* borrowed from data / the entry (valid until done) */
    struct json_t *data;
    char *template_text;
    /* results */
    char id[SENDER_UUID_LEN + 1], state[16], channel[SENDER_UUID_LEN + 1];
    char contact[SENDER_UUID_LEN + 1], kind[24];
    int64_t not_before_ms;
    const char *dead; /* static reason */
    enum tn_err err;  /* the batched step's outcome */
    /* a send decided at intake: the reserved job (NULL: none), the state
     * its row is inserted in (NULL: queued), and whether the INSERT stored
     * exactly that row (then the job goes on; else its slot is released) */
    struct sender_job *send;
    const char *st;
    bool direct;
    char member[200];
    char due[24];
    char gen_id[SENDER_UUID_LEN + 1]; /* the row id decided at intake */
    int64_t slot_wait_ms; /* due now but no free job slot: since when (mono ms); 0: not waiting */
};

/* sender_intake_decide - the jobs (one tenant's) with a reserved send job:
 * their facts in one SELECT on c, each decided as prepare would; sets each
 * job's st (the state its row is inserted in; NULL: queued). Errors: c's.
 * Runs on: threadpool, inside the intake transaction. */
enum tn_err sender_intake_decide(struct tn_pgconn *c, struct sender_out_job **jobs, size_t n);
/* sender_intake_state_arrays - the INSERT's $18 (state) and $19 (code)
 * array literals into a[0..1] (initialized here; the caller frees them),
 * p[17], p[18] borrowed from them. Runs on: threadpool. */
void sender_intake_state_arrays(struct tn_buf *a, struct sender_out_job **jobs, size_t n,
                                const char **p);
/* sender_intake_confirm - marks direct each decided job whose row the
 * INSERT (res: its RETURNING) stored as decided. Runs on: threadpool. */
void sender_intake_confirm(const struct pg_result *res, struct sender_out_job **jobs, size_t n);

/* sender_out_ready - the entries of the intake queue that may be stored
 * now, moved to its front (in their order), and how many they are; the
 * others wait there for a job slot (a free one is reserved for them here,
 * oldest first), each at most TN_SENDER_INTAKE_WAIT. *wake_ms: in how many
 * ms the first wait ends (-1: none waits). Runs on: loop (the flush). */
size_t sender_out_ready(struct sender_ctx *ctx, int64_t *wake_ms);

/* sender_out_work, sender_out_done - the intake queue's batched step:
 * rows upserted for many tern:out entries (one transaction per tenant),
 * then their members scheduled in one script call and the entries
 * acknowledged. Runs on: threadpool / loop. */
enum tn_err sender_out_work(struct tn_pgconn *c, void *arg);
void sender_out_done(struct sender_batch *b, enum tn_err err);

/* sender_send_prepared, sender_send_recorded - the prepare and record
 * queues' completions (sender_send.c). Runs on: loop. */
void sender_send_prepared(struct sender_batch *b, enum tn_err err);
void sender_send_recorded(struct sender_batch *b, enum tn_err err);

/* sender_out_entry - tern:out handler (tn_consumer_entry_fn). Runs on: loop. */
void sender_out_entry(struct tn_consumer *c, struct tn_entry *e, void *arg);

/* sender_read_entry - an outbound.read entry of tern:out (sender_out_entry
 * hands it over): mark the inbound message read at the provider; no
 * outbound_messages row. Must call tn_consumer_done once. Runs on: loop. */
void sender_read_entry(struct tn_consumer *c, struct tn_entry *e, void *arg);

/* sender_status_entry - tern:status handler (tn_consumer_entry_fn). Runs on: loop. */
void sender_status_entry(struct tn_consumer *c, struct tn_entry *e, void *arg);

/* ------------------------------------------------------------------ lifecycle */

enum tn_err sender_init(struct tn_rt *rt, void *arg);

/* sender_http - the next HTTP client, round robin (NULL: none, closing).
 * Borrowed: owned by ctx until sender_fini. Runs on: loop. */
struct tn_http *sender_http(struct sender_ctx *ctx);
void sender_drain(struct tn_rt *rt, void *arg);
bool sender_busy(void *arg);
void sender_fini(struct tn_rt *rt, void *arg);
bool sender_ready(void *arg, const char **why);
void sender_heartbeat(struct tn_rt *rt, void *arg);

#endif
