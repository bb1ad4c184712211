#ifndef AGENT_H
#define AGENT_H
/*
 * agent - private header of tern-agent.
 *
 * Shape (DESIGN.md "One turn at a time per conversation", services/agent/README.md):
 *
 *   tern:in entry --intake--> one Postgres transaction under the tenant:
 *       contact, lead, conversation, message (unique provider id), opt-out
 *       keywords; conversation.has_unprocessed = true; ACK.
 *   wake(conversation) --turn--> claim the conversation's row lease
 *       (conditional UPDATE with a per-claim token), wait for the quiet
 *       window, load profile + history + every unprocessed message, ask the
 *       LLM (tools, bounded rounds and retries), commit reply + processed
 *       marks + lead changes + lease release in one transaction that only
 *       succeeds while the token still holds the lease; then XADD tern:out.
 *   scan (every TN_AGENT_SCAN_MS): claim conversations with unprocessed input
 *       and a free or expired lease (a replica died mid-turn), renew the
 *       leases of our own running turns, re-XADD committed replies that were
 *       never enqueued.
 *
 * Threads: everything here runs on the loop except the *_work functions
 * (agent_store*.c), which run on libuv's threadpool with a pooled Postgres
 * connection and touch only their own job struct.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <tn/tn_err.h>
#include <tn/tn_loop.h>

struct tn_consumer;
struct tn_entry;
struct tn_http;
struct tn_metric;
struct tn_pg;
struct tn_pgconn;
struct tn_keyring;
struct tn_log_ctx;
struct tn_rt;
struct pg_result;

#define AGENT_UUID_LEN 37          /* 36 + NUL */
#define AGENT_MAX_FRESH 50         /* unprocessed messages answered by one turn at most */
#define AGENT_TEXT_MAX 4096        /* outbound.message text maxLength */
#define AGENT_INTAKE_BATCH_MAX 256 /* inbound messages stored by one statement at most */
#define AGENT_HTTP_SHARDS 16       /* HTTP clients the requests are spread over (agent_http) */
#define AGENT_HTTP_BUFFER 1024     /* receive buffer per request in flight (libcurl: 16 KiB) */

/* Configuration (main.c's table). Strings owned by tn_env. */
struct agent_cfg {
    char *llm_base_url;
    char *llm_api_key;
    char *llm_model;
    int64_t llm_timeout_ms;
    int64_t llm_retries;
    int64_t llm_max_tokens;
    int64_t quiet_ms;
    int64_t lease_ms;
    int64_t scan_ms;
    int64_t republish_ms;
    int64_t history_msgs;
    int64_t history_chars;
    int64_t tool_rounds;
    int64_t pg_pool;
    int64_t batch;
    int64_t visibility_ms;
    char *holding_text;
    char *optout_words;
    char *optin_words;
    char *optout_text;
    char *optin_text;
    char *booked_text;   /* booking confirmation; {service} and {when} replaced */
    char *moved_text;    /* after a reschedule */
    char *reminder_text; /* before the appointment */
    /* voice notes (agent_voice.c) */
    char *transcribe_model; /* POST {llm_base_url}/audio/transcriptions */
    char *master_key;       /* key ring that opens channel secrets; "" = no voice */
    char *whatsapp_base, *whatsapp_version, *twilio_base, *telegram_base;
    int64_t media_timeout_ms; /* each provider request of a media fetch */
    int64_t media_max;        /* bytes of one voice note at most */
    bool mark_read; /* TN_AGENT_MARK_READ: outbound.read for new inbound WhatsApp messages */
};

struct agent_turn;
struct agent_voice;

/* A reply on tern:out whose enqueued_at is still to be written. */
struct agent_mark {
    char tenant[AGENT_UUID_LEN], id[AGENT_UUID_LEN];
};

/* The daemon's one context (STYLE.md: no globals). */
struct agent_ctx {
    struct agent_cfg cfg;
    struct tn_rt *rt; /* borrowed from the skeleton */
    uv_loop_t *loop;
    struct tn_consumer *consumer;
    struct tn_pg *pg;
    struct tn_http *http[AGENT_HTTP_SHARDS]; /* agent_http() picks one */
    size_t http_next;
    uv_timer_t scan_timer;
    bool scan_inited, scanning, draining, closing, in_cancel;
    char owner[96]; /* lease owner prefix: host-pid-random */
    uint64_t lease_seq;
    char **optout, **optin; /* upper-case keyword lists */
    size_t noptout, noptin;
    json_t *tools;           /* the tool definitions sent to the LLM */
    char *tools_text;        /* their JSON text, made on first use */
    struct tn_keyring *keys; /* TN_MASTER_KEY, or NULL: voice notes are not fetched */
    /* running turns by conversation id (chained hash) */
    struct agent_turn **buckets;
    size_t nbuckets, nturns;
    size_t nclaims;                       /* claim jobs in the pool */
    struct agent_turn *cq_head, *cq_tail; /* turns waiting to submit their claim */
    size_t intakes, publishes;            /* intakes not finished, publish jobs */
    /* plain inbound messages of this loop turn, stored together (agent_intake_batch.c) */
    struct agent_intake *ipend, **ipend_tail;
    uv_check_t icheck;
    bool icheck_inited;
    struct agent_mark *marks; /* published, enqueued_at not written yet */
    size_t nmarks, capmarks;
    bool marking; /* a job writes a batch of marks */
    /* the oldest pending tern:in entry (agent_turn_claim.c's gate), shared */
    long long pend_oldest; /* as stream_pos; 0: none pending */
    int64_t pend_ms;       /* when it was read (0: never) */
    bool pend_querying;    /* an XPENDING is in flight */
    struct tn_metric *m_intake, *m_dup, *m_turns, *m_replies, *m_holding, *m_silent;
    struct tn_metric *m_llm_fail, *m_lost, *m_inflight, *m_republish;
    struct tn_metric *m_tools, *m_notices, *m_voice, *m_voice_fail;
};

/* ---------------------------------------------------------------- daemon (agent_daemon.c) */

enum tn_err agent_init(struct tn_rt *rt, void *arg);
void agent_drain(struct tn_rt *rt, void *arg);
bool agent_busy(void *arg);
void agent_fini(struct tn_rt *rt, void *arg);
bool agent_ready(void *arg, const char **why);
void agent_heartbeat(struct tn_rt *rt, void *arg);
/* agent_http - the next of the HTTP clients, round robin; NULL once closing.
 * Borrowed: valid until agent_close. */
struct tn_http *agent_http(struct agent_ctx *ctx);
/* agent_pg_submit - tn_pg_submit, or done(TN_ECANCELED) later when closing. */
enum tn_err agent_pg_submit(struct agent_ctx *ctx, enum tn_err (*work)(struct tn_pgconn *, void *),
                            void (*done)(enum tn_err, void *), void *arg);
/* agent_maybe_free_pg - release the pool once closing and idle. Runs on: loop. */
void agent_maybe_free_pg(struct agent_ctx *ctx);

/* ---------------------------------------------------------------- intake (agent_intake.c) */

enum agent_keyword { AGENT_KW_NONE, AGENT_KW_OPTOUT, AGENT_KW_OPTIN };

/* agent_intake_on_entry - tn_consumer handler for tern:in. Runs on: loop. */
void agent_intake_on_entry(struct tn_consumer *c, struct tn_entry *e, void *arg);
/* agent_intake_finish - tn_pg done callback of an intake: ack, dead-letter
 * or retry the entry, wake the conversation; frees in. Runs on: loop. */
void agent_intake_finish(enum tn_err err, void *arg);
/* agent_intake_drop - give the entry back unstored (it stays pending and
 * is delivered again); frees in. Runs on: loop. */
void agent_intake_drop(struct agent_intake *in);
/* agent_intake_batch_init - before the consumer starts. Runs on: loop. */
void agent_intake_batch_init(struct agent_ctx *ctx);
/* agent_intake_batch_add - queue in (owned from now on) to be stored with
 * the other plain messages of this loop turn, one statement per tenant.
 * Runs on: loop. */
void agent_intake_batch_add(struct agent_ctx *ctx, struct agent_intake *in);
/* agent_intake_batch_close - fini: give the queued entries back, close the
 * handle. Runs on: loop. */
void agent_intake_batch_close(struct agent_ctx *ctx);
/* agent_keyword_parse - split "STOP,UNSUBSCRIBE" into *out (new, upper case). */
size_t agent_keyword_parse(const char *list, char ***out);
/* agent_keyword_match - is text (trimmed, any case, trailing punctuation
 * ignored) one of words? */
bool agent_keyword_match(const char *text, char *const *words, size_t n);

/* ---------------------------------------------------------------- store (agent_store*.c) */

/* An outbound message as published to tern:out. All strings new. */
struct agent_out {
    char id[AGENT_UUID_LEN];
    char tenant[AGENT_UUID_LEN];
    char *channel, *channel_kind, *to, *conversation, *contact, *text, *reason, *created_at;
    char *not_before; /* NULL: now (a reminder: when it is due) */
    char *trace;
};
void agent_out_free(struct agent_out *o);

/* The intake job: inputs borrowed from the entry (valid until its
 * tn_consumer_done), outputs written by the work function. */
struct agent_intake {
    struct agent_ctx *ctx;
    struct agent_intake *next; /* queued for a batch */
    struct tn_consumer *c;
    struct tn_entry *e;
    json_t *data; /* owned */
    const char *tenant, *channel, *pmid, *sender, *sender_name, *body, *mtype, *media_ref;
    const char *transport, *trace, *provider;
    char *raw; /* owned: JSON text of data.raw */
    char stream_pos[24];
    enum agent_keyword keyword;
    /* out */
    char conv[AGENT_UUID_LEN];
    bool inserted, wake;
    bool stored;               /* batch: a row came back (else the channel is not the tenant's) */
    struct agent_out *confirm; /* new: opt-out/opt-in confirmation to publish */
    const char *dead_reason;
};
enum tn_err agent_store_intake_work(struct tn_pgconn *c, void *arg);

/* agent_store_outbound - inside an open tenant transaction: insert the
 * outbound_messages row (idempotent on key) and its messages row; fill
 * out_id. Runs on: threadpool. */
enum tn_err agent_store_outbound(struct tn_pgconn *c, const char *tenant, const char *conv,
                                 const char *key, const char *body, const char *reason,
                                 char out_id[AGENT_UUID_LEN]);
/* agent_store_out_load - inside an open tenant transaction: *out new, the
 * outbound row id as a tern:out entry. Runs on: threadpool. */
enum tn_err agent_store_out_load(struct tn_pgconn *c, const char *tenant, const char *id,
                                 struct agent_out **out);
/* agent_store_q - tn_pgconn_query that frees the previous *res first. */
enum tn_err agent_store_q(struct tn_pgconn *c, const char *sql, int n, const char *const *p,
                          struct pg_result **res);
/* agent_store_dup - new copy of a result value, NULL for SQL NULL. */
char *agent_store_dup(const struct pg_result *res, int row, int col);

/* Scan results (agent_scan). */
struct agent_scan {
    struct agent_ctx *ctx;
    int lim;
    int64_t republish_ms;
    char (*due)[2][AGENT_UUID_LEN];
    size_t ndue;
    char (*unpub)[2][AGENT_UUID_LEN];
    size_t nunpub;
    char (*unnot)[2][AGENT_UUID_LEN]; /* bookings whose notices are behind */
    size_t nunnot;
};
enum tn_err agent_store_scan_work(struct tn_pgconn *c, void *arg);

/* A lease renewal (copies, so that it outlives nothing). */
struct agent_renew {
    struct agent_ctx *ctx;
    char tenant[AGENT_UUID_LEN], conv[AGENT_UUID_LEN], token[128];
    int64_t lease_ms;
    bool held;
};
enum tn_err agent_store_renew_work(struct tn_pgconn *c, void *arg);

/* A republish: load the row, then publish. */
struct agent_repub {
    struct agent_ctx *ctx;
    char tenant[AGENT_UUID_LEN], id[AGENT_UUID_LEN];
    struct agent_out *out;
};
enum tn_err agent_store_repub_work(struct tn_pgconn *c, void *arg);

/* ---------------------------------------------------------------- turn (agent_turn*.c) */

struct agent_hmsg {
    bool in; /* from the lead */
    char id[AGENT_UUID_LEN];
    char *type;       /* message type (inbound) */
    char *body;       /* may be NULL (media without caption) */
    char *media_ref;  /* fresh only: provider media id or URL, may be NULL */
    char *transcript; /* a voice note's text, may be NULL */
    bool voice_tried; /* fresh only: transcription attempted in this turn */
    bool voice_new;   /* fresh only: transcript is new, the commit stores it */
};

/* What the claim/load job found. All strings new, freed by agent_load_clear. */
struct agent_load {
    bool claimed;    /* we hold the lease */
    int64_t wait_ms; /* > 0: quiet window not over yet */
    bool finished;   /* nothing for the LLM: released, outcome recorded */
    char contact[AGENT_UUID_LEN], channel[AGENT_UUID_LEN];
    char *channel_kind;
    char *business, *offer, *hours, *area, *questions, *tone, *language, *extra, *holding;
    char *tenant_name, *tz, *now_text;
    char *services; /* "Name (30 min), ..." of the active services */
    char *lead_name, *lead_status, *lead_answers;
    bool lead_has_email;
    struct agent_hmsg *hist; /* chronological, processed */
    size_t nhist;
    struct agent_hmsg *fresh; /* unprocessed, arrival order */
    size_t nfresh;
    long long last_pos; /* stream_pos of the newest fresh message (0: unknown) */
    /* the channel's media credentials, only while a voice note waits (wiped
     * on clear): WhatsApp access_token, Twilio account_sid + auth_token,
     * Telegram bot_token */
    char *media_user, *media_token;
};
void agent_load_clear(struct agent_load *l);

enum agent_turn_state {
    TURN_IDLE,
    TURN_CLAIM,   /* claim/load job */
    TURN_WAIT,    /* timer: quiet window */
    TURN_GATE,    /* XPENDING / timer: earlier tern:in entries not stored yet */
    TURN_VOICE,   /* HTTP: fetch and transcribe voice notes (agent_voice.c) */
    TURN_LLM,     /* HTTP */
    TURN_TOOL,    /* a tool's job (booking tools ask Postgres) */
    TURN_BACKOFF, /* timer: LLM retry */
    TURN_COMMIT,  /* commit job */
    TURN_CLOSING, /* timer closing */
};

struct agent_turn {
    struct agent_ctx *ctx;
    struct agent_turn *next;    /* hash chain */
    struct agent_turn *cq_next; /* claim queue (agent_turn_claim.c) */
    char tenant[AGENT_UUID_LEN], conv[AGENT_UUID_LEN];
    char token[128];
    char *trace;
    enum agent_turn_state state;
    bool again; /* more input arrived locally while running */
    bool lost;  /* a renewal found the lease gone */
    bool renewing;
    int64_t renewed_ms;
    uv_timer_t timer;
    struct agent_load ld;
    json_t *messages; /* the chat so far */
    int round, attempt, commit_attempt;
    json_t *tool_calls; /* the assistant's calls being run */
    size_t tool_i;
    /* effects, applied by the commit */
    json_t *lead; /* validated update_lead fields */
    bool handoff;
    char *reply;           /* new */
    const char *reason;    /* "reply" | "holding" */
    const char *outcome;   /* messages.agent_outcome */
    bool has_more;         /* commit: input left after ours */
    struct agent_out *out; /* commit: new, to publish */
    int64_t started_ms;
    int64_t gate_since;
    struct agent_voice *voice; /* TURN_VOICE: the transcription run */
};

/* agent_turn_wake - make sure conversation conv of tenant gets a turn here
 * (or is already being worked). trace borrowed (copied), may be NULL. */
void agent_turn_wake(struct agent_ctx *ctx, const char *tenant, const char *conv,
                     const char *trace);
/* agent_turn_find - the running turn of conv, or NULL. */
struct agent_turn *agent_turn_find(struct agent_ctx *ctx, const char *conv);
/* agent_turn_renew_all - renew leases of running turns that need it. */
void agent_turn_renew_all(struct agent_ctx *ctx);
/* agent_turn_close_all - fini: end every turn that waits on a timer. */
void agent_turn_close_all(struct agent_ctx *ctx);

/* The phases of a turn call each other through these (agent_turn*.c); each
 * takes the turn in its current state and starts exactly one operation, or
 * ends the turn. Runs on: loop. */
/* agent_turn_end - the turn is over: unindex, close its timer, free it in
 * the close callback (agent_turn.c). */
void agent_turn_end(struct agent_turn *t);
/* agent_turn_finish - start over with a new claim when input is left,
 * else end (agent_turn.c). */
void agent_turn_finish(struct agent_turn *t);
/* agent_turn_log_ctx - the turn's log context (borrows t->tenant). */
struct tn_log_ctx agent_turn_log_ctx(const struct agent_turn *t);
/* agent_turn_claim - CLAIM: submit the claim/load job now or queue it
 * (agent_turn_claim.c); then WAIT, GATE and agent_turn_ask. */
void agent_turn_claim(struct agent_turn *t);
/* agent_turn_ask - the input is complete: VOICE, then LLM and TOOL rounds
 * (agent_turn_llm.c); then agent_turn_commit. */
void agent_turn_ask(struct agent_turn *t);
/* agent_turn_commit - COMMIT t->reply (t->reason) and publish it
 * (agent_turn_commit.c); then agent_turn_finish. */
void agent_turn_commit(struct agent_turn *t);

enum tn_err agent_store_claim_work(struct tn_pgconn *c, void *arg);
enum tn_err agent_store_commit_work(struct tn_pgconn *c, void *arg);

/* ---------------------------------------------------------------- voice (agent_voice*.c) */

/* agent_voice_is - is a message of this type a voice note / audio? */
bool agent_voice_is(const char *type);
/* agent_voice_pending - does a fresh message still need a transcription
 * attempt in this turn? */
bool agent_voice_pending(const struct agent_load *l);
/* agent_voice_run - fetch and transcribe the fresh voice notes one after
 * the other; a failure leaves the message without a transcript (the prompt
 * says it could not be transcribed). done(t) runs exactly once, later, also
 * when the daemon closes (the caller checks ctx->closing). Runs on: loop. */
void agent_voice_run(struct agent_turn *t, void (*done)(struct agent_turn *t));
/* agent_voice_secrets - inside the claim transaction: load and open the
 * channel's secrets into l->media_user / media_token (new). Missing key ring
 * or secrets leave them NULL (the fetch then fails softly). Runs on:
 * threadpool. */
enum tn_err agent_voice_secrets(struct tn_pgconn *c, const struct agent_ctx *ctx,
                                const char *tenant, struct agent_load *l);

/* A media fetch's outcome: bytes new (NULL on failure), mime new or NULL,
 * status the provider's last HTTP status (0: none). */
typedef void agent_media_done_fn(struct agent_turn *t, char *bytes, size_t len, char *mime,
                                 const char *why, long status);
/* agent_media_fetch - fetch message m's media with the channel's
 * credentials: WhatsApp media id -> URL -> bytes, Telegram getFile -> file,
 * Twilio media URL (under TN_TWILIO_API_BASE only, then one redirect without
 * credentials). done runs exactly once, possibly before this returns (a
 * request that cannot start); why names the failed step (never a URL or a
 * credential). Runs on: loop. */
void agent_media_fetch(struct agent_turn *t, const struct agent_hmsg *m, agent_media_done_fn *done);
/* agent_media_lookup_url - the URL of the bytes named by a provider's lookup
 * answer (body borrowed; untrusted): Telegram's getFile result.file_path
 * under {telegram_base}/file/bot{token}/ (percent-encoded, no ".."), else
 * WhatsApp's "url" when it is http(s). Returns: new, NULL when the answer
 * names none. Pure: runs anywhere. */
char *agent_media_lookup_url(const char *kind, const char *body, size_t len,
                             const char *telegram_base, const char *token);
/* agent_voice_transcript - the "text" of a transcription answer (body
 * borrowed; untrusted), capped on a UTF-8 boundary. Returns: new, NULL when
 * the answer has no text that is not blank. Pure: runs anywhere. */
char *agent_voice_transcript(const char *body, size_t len);

/* ---------------------------------------------------------------- LLM (agent_llm.c) */

/* The outcome of one chat completions request. */
struct agent_llm_result {
    enum tn_err err; /* TN_OK: message is set */
    bool retryable;  /* err != TN_OK: worth another attempt */
    long status;
    json_t *message; /* new: choices[0].message */
};
typedef void agent_llm_done_fn(struct agent_llm_result *r, void *arg);

/* agent_llm_send - POST {base}/chat/completions with messages and tools
 * (borrowed). done runs exactly once, later, with r borrowed for the call.
 * tool_choice: "auto" or "none". Errors: TN_EINVAL (done not called). */
enum tn_err agent_llm_send(struct agent_ctx *ctx, json_t *messages, const char *tool_choice,
                           agent_llm_done_fn *done, void *arg);

/* agent_llm_parse_answer - choices[0].message of a chat completion answer
 * (body borrowed; untrusted). Returns: new, always a JSON object; NULL when
 * the body is not a completion or carries an "error". Pure: runs anywhere. */
json_t *agent_llm_parse_answer(const char *body, size_t len);
/* agent_turn_reply_text - the reply in an assistant message (borrowed): its
 * string content, capped at AGENT_TEXT_MAX bytes on a UTF-8 boundary.
 * Returns: new, NULL when there is nothing to say. Pure: runs anywhere. */
char *agent_turn_reply_text(const json_t *message);

/* agent_json_dump - new compact JSON text of j ("null" for NULL). */
char *agent_json_dump(const json_t *j);

/* ---------------------------------------------------------------- prompt (agent_prompt.c) */

/* agent_prompt_build - new messages array: system prompt from the profile
 * and time, history within the budget, then the unprocessed messages. */
json_t *agent_prompt_build(const struct agent_ctx *ctx, const struct agent_load *l);
/* agent_scrub - new copy of text with phone numbers and emails masked. */
char *agent_scrub(const char *text);

/* ---------------------------------------------------------------- tools (agent_tools.c) */

/* agent_tool_done_fn - a tool finished; result new (stolen), a JSON object
 * ({"ok":...} or {"error":"..."}) that goes back to the model. */
typedef void agent_tool_done_fn(struct agent_turn *t, json_t *result);

/* A tool: its OpenAI function definition and its server-side runner. run
 * validates args (borrowed) and calls done exactly once, possibly later
 * (booking tools will query Postgres). Runs on: loop. */
struct agent_tool {
    const char *name;
    const char *definition; /* JSON text: {"name","description","parameters"} */
    void (*run)(struct agent_turn *t, json_t *args, agent_tool_done_fn *done);
};

/* agent_tools_definitions - new array for the request's "tools". */
json_t *agent_tools_definitions(void);
/* agent_tool_find - the tool called name, or NULL. */
const struct agent_tool *agent_tool_find(const char *name);
/* agent_tool_call_parse - the i-th call of an assistant's tool_calls
 * (borrowed; untrusted): *tool (borrowed, static) and *args (new, a JSON
 * object) when it may run; else NULL both and the error for the model is
 * returned (static text). At most AGENT_MAX_TOOL_CALLS calls of an answer
 * run. Pure: runs anywhere. */
/* agent_tool_calls_name - give every call of an assistant's tool_calls
 * (borrowed, changed in place) that has no string "id" one, unique within
 * the turn (round, index): each tool message must name the call it
 * answers, and OpenAI-compatible APIs refuse a tool message without one.
 * Pure: runs anywhere. */
void agent_tool_calls_name(json_t *calls, int round);
/* agent_tool_message - the tool message answering call (borrowed) with
 * result (borrowed): role "tool", the call's tool_call_id, result as JSON
 * text. Returns: new. Pure: runs anywhere. */
json_t *agent_tool_message(const json_t *call, const json_t *result);
#define AGENT_MAX_TOOL_CALLS 8
const char *agent_tool_call_parse(json_t *call, size_t i, const struct agent_tool **tool,
                                  json_t **args);

/* ---------------------------------------------------------------- booking (agent_booking.c) */

/* The booking tools' runners (table in agent_tools.c). Each runs one
 * tn_booking call as a job, with the conversation's contact (never one from
 * the model); a change then gets its notices (confirmation, reminders) and a
 * cal.request on tern:cal. Runs on: loop. */
void agent_booking_find_slots(struct agent_turn *t, json_t *args, agent_tool_done_fn *done);
void agent_booking_book(struct agent_turn *t, json_t *args, agent_tool_done_fn *done);
void agent_booking_reschedule(struct agent_turn *t, json_t *args, agent_tool_done_fn *done);
void agent_booking_cancel(struct agent_turn *t, json_t *args, agent_tool_done_fn *done);
void agent_booking_list(struct agent_turn *t, json_t *args, agent_tool_done_fn *done);

/* agent_booking_renotify - the scan found a booking whose notices are
 * behind (tenant, booking borrowed, copied): write and publish them. Runs on:
 * loop. */
void agent_booking_renotify(struct agent_ctx *ctx, const char *tenant, const char *booking);

/* agent_booking_notices - inside no transaction: one tenant transaction
 * that brings the booking's notices up to date (tern_agent_booking_notices,
 * conv may be NULL) and loads the new rows; *outs new (n entries, each
 * agent_out_free'd by whoever publishes). Runs on: threadpool. */
enum tn_err agent_booking_notices(struct tn_pgconn *c, const struct agent_cfg *cfg,
                                  const char *tenant, const char *booking, const char *conv,
                                  struct agent_out ***outs, size_t *n);

/* ---------------------------------------------------------------- publish (agent_publish.c) */

/* agent_publish - XADD o to tern:out, then record enqueued_at. Steals o.
 * Failures are logged; the scan republishes. Runs on: loop. */
void agent_publish(struct agent_ctx *ctx, struct agent_out *o);

/* agent_publish_read - XADD an outbound.read entry (dedupe "read:<wamid>")
 * asking tern-sender to mark the inbound WhatsApp message pmid read. All
 * strings borrowed (copied into the command); trace NULL: a new one. Best
 * effort: a failure is logged (agent.read_publish_failed), never retried.
 * Runs on: loop. */
void agent_publish_read(struct agent_ctx *ctx, const char *tenant, const char *channel,
                        const char *pmid, const char *trace);
/* agent_out_provider - provider and transport of a channel kind. */
void agent_out_provider(const char *kind, const char **provider, const char **transport);

#endif
