#ifndef CALSYNC_H
#define CALSYNC_H
/*
 * calsync - tern-calsync's private declarations: the context, the job that
 * mirrors one booking or imports one account's busy time, and the seams
 * between its files (main.c has the contract of the daemon).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_daemon.h>
#include <tn/tn_err.h>

struct tn_consumer;
struct tn_entry;
struct tn_http;
struct tn_keyring;
struct tn_pg;
struct tn_pgconn;
struct tn_redis;
struct uv_timer_s;

#define CALSYNC_MARKER "X-TERN-BOOKING"
#define CALSYNC_UID_PREFIX "tern"

struct calsync_cfg {
    char *master_key;
    char *google_client_id, *google_client_secret;
    char *google_token_url, *google_userinfo_url, *google_calendar_base;
    char *cancelled_text;     /* the lead's notice of a calendar-side cancel */
    int64_t refresh_ahead_ms; /* refresh a Google access token this long before it expires */
    int64_t pg_pool;
    int64_t http_timeout_ms;
    int64_t scan_ms;   /* how often bookings behind their calendar are looked for */
    int64_t busy_ms;   /* how often each account's busy time is imported */
    int64_t busy_days; /* how far ahead busy time is imported */
    int64_t visibility_ms;
    char *push_url;          /* TN_GOOGLE_PUSH_URL: the push channels' address; "": derived */
    char *ingest_public_url; /* TN_INGEST_PUBLIC_URL: push_url = it + /webhooks/google/calendar */
    int64_t watch_ttl_ms;    /* the channel lifetime asked of events.watch */
    int64_t watch_ahead_ms;  /* open a new channel this long before the old one expires */
};

struct tn_metrics;

struct calsync_ctx {
    struct calsync_cfg cfg;
    struct uv_loop_s *loop;
    struct tn_metrics *metrics; /* the skeleton's, for the daemon's life */
    struct tn_keyring *keys;
    struct tn_pg *pg;
    struct tn_http *http;
    struct tn_consumer *cal;
    struct tn_redis *redis; /* the skeleton's connection: notices to tern:out */
    struct uv_timer_s *scan_timer;
    struct calsync_gtoken *tokens; /* Google access tokens by account (calsync_gtoken.c) */
    char *push_address;            /* calsync_gwatch_address(); NULL: no push channels */
    bool curl_inited, draining, scanning;
    size_t jobs; /* jobs started and not finished */
};

/* CALSYNC_CHECK: is Tern's event of one booking still there, at the
 * booking's times? (two-way sync, calsync_twoway.c) */
/* CALSYNC_WATCH: open a Google push channel (and stop the one it replaces);
 * CALSYNC_UNWATCH: stop the account's channel (calsync_gwatch.c) */
/* CALSYNC_DELETE: delete Tern's event of an erased booking, named by a
 * calendar_deletions row (op delete_event, or the scan; calsync_job.c) */
enum calsync_kind {
    CALSYNC_MIRROR,
    CALSYNC_IMPORT,
    CALSYNC_CONNECT,
    CALSYNC_CHECK,
    CALSYNC_WATCH,
    CALSYNC_UNWATCH,
    CALSYNC_DELETE
};

/* One of Tern's events seen by an import: its booking and times. */
struct calsync_seen {
    char booking[40];
    int64_t start, end;
};

/* Booking ids an import found missing or moved in the calendar. */
#define CALSYNC_MAX_CHECKS 16

/* One busy range, epoch seconds [start, end). */
struct calsync_range {
    int64_t start, end;
};

/* A calendar account as loaded for a job (strings new, freed with the job;
 * secrets wiped first). */
struct calsync_account {
    char id[40];
    bool google;     /* provider google (else CalDAV) */
    bool reconnect;  /* needs_reconnect: no calls until the owner reconnects */
    char *url;       /* CalDAV: the collection, ending in '/'; Google: calendar id */
    char *userpwd;   /* CalDAV: "user:password" or NULL (no auth) */
    char *access;    /* Google: the access token, or NULL */
    char *refresh;   /* Google: the refresh token, or NULL */
    int64_t expires_s;    /* Google: when access expires (epoch s; 0 unknown) */
    char send_updates[16]; /* Google: the tenant's sendUpdates */
};

struct calsync_connect; /* op connect's state (calsync_gconnect.c) */

/* One unit of work: from a tern:cal entry (entry != NULL) or a scan. */
struct calsync_job {
    struct calsync_ctx *ctx;
    enum calsync_kind kind;
    struct tn_consumer *consumer;
    struct tn_entry *entry;
    char tenant[40], id[40]; /* booking id (mirror, delete once loaded) or account id (import) */
    char deletion[40];       /* delete: the calendar_deletions row */
    /* loaded by the store (threadpool) */
    bool found, has_account, want_event;
    struct calsync_account acct;
    int version;
    bool in_sync; /* check: confirmed, mirrored at this version, event on this account */
    int64_t start_s, end_s;
    char *summary;
    /* HTTP state (loop) */
    char *href, *etag;
    int step, attempts;
    char *ics;
    struct calsync_range *ranges;
    size_t nranges, cap;
    int64_t win_from, win_to;
    void (*then)(struct calsync_job *j); /* the step after a store or HTTP call */
    /* Google (loop) */
    void (*token_then)(struct calsync_job *j); /* after calsync_gtoken_get */
    struct calsync_job *next_waiter;           /* in a refresh's wait list */
    int auth_tries, pages;
    char *page_token;
    struct calsync_gsend *gsend; /* the Google request of the current step */
    struct calsync_connect *conn;
    /* two-way (calsync_twoway.c) */
    struct calsync_seen *seen; /* import: Tern's events listed */
    size_t nseen, seencap;
    char (*checks)[40]; /* import: bookings to check afterwards */
    size_t nchecks;
    bool gone, moved; /* check: the event was deleted / moved to new_* */
    int64_t new_start, new_end;
    struct calsync_notice *notice; /* check: the lead's notice to XADD */
    struct calsync_watch *watch;   /* watch / unwatch: the channels (calsync_gwatch.c) */
    /* outcome */
    enum tn_err err;
    const char *why; /* static: sync_error / dead reason */
};

/* calsync_ical.c - iCalendar through libical. Runs on: any thread. */
char *calsync_ical_event(const char *booking_id, int64_t start_s, int64_t end_s,
                         const char *summary, int64_t now_s);
bool calsync_ical_inspect(const char *text, char *marker, size_t size, int64_t *start_s,
                          int64_t *end_s);
void calsync_ical_busy(const char *text, int64_t from_s, int64_t to_s,
                       struct calsync_range **ranges, size_t *n, size_t *cap);

/* calsync_xml.c - multistatus bodies through libxml2. Runs on: any thread. */
typedef void calsync_xml_data_fn(const char *calendar_data, void *arg);
enum tn_err calsync_xml_calendar_data(const char *body, size_t len, calsync_xml_data_fn *fn,
                                      void *arg);
char *calsync_xml_report_body(int64_t from_s, int64_t to_s);

/* calsync_store.c - Postgres work (threadpool) and its submission (loop). */
void calsync_store_load(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_store_save(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_store_scan(struct calsync_ctx *ctx);
void calsync_job_free(struct calsync_job *j);

/* calsync_caldav.c - the HTTP side of a job. Runs on: loop. */
void calsync_caldav_mirror(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_caldav_import(struct calsync_job *j, void (*then)(struct calsync_job *j));

/* calsync_google.c - the Google Calendar side of a job. Runs on: loop. */
void calsync_google_mirror(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_google_import(struct calsync_job *j, void (*then)(struct calsync_job *j));
bool calsync_google_time(const char *s, int64_t *out);
char *calsync_google_event_id(const char *booking_id);
void calsync_google_free(struct calsync_job *j);

/* calsync_gtoken.c - Google access tokens: one refresh in flight per
 * account, invalid_grant flags the account. Runs on: loop. */
void calsync_gtoken_get(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_gtoken_rejected(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_gtoken_learn(struct calsync_ctx *ctx, const char *tenant, const char *account,
                          const char *access, int64_t expires_s);
void calsync_gtoken_free_all(struct calsync_ctx *ctx);
enum tn_err calsync_gtoken_seal_hex(const struct tn_keyring *k, const char *tenant,
                                    const char *account, const char *kind, const char *token,
                                    char **hex);

/* calsync_gconnect.c - op connect: exchange the sealed code, store the
 * account. Runs on: loop. */
void calsync_connect_start(struct calsync_ctx *ctx, const char *tenant, const char *data_json,
                           struct tn_consumer *c, struct tn_entry *e);
void calsync_connect_free(struct calsync_connect *cn);

/* calsync_twoway.c - a provider-side delete or move of Tern's event.
 * seen: an import met Tern's event of booking (loop). candidates: inside
 * the import's save transaction, the in-sync bookings of the account in the
 * window whose event was not seen at their times (threadpool). checks:
 * start a CALSYNC_CHECK job for each (loop). apply: a check found the event
 * gone or moved: update the booking, tell the lead (loop). */
void calsync_twoway_seen(struct calsync_job *j, const char *booking, int64_t start_s,
                         int64_t end_s);
enum tn_err calsync_twoway_candidates(struct tn_pgconn *c, struct calsync_job *j);
void calsync_twoway_checks(struct calsync_job *j);
void calsync_twoway_apply(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_twoway_free(struct calsync_job *j);

/* calsync_gwatch.c - Google push channels. address: where Google posts
 * (TN_GOOGLE_PUSH_URL, else TN_INGEST_PUBLIC_URL + /webhooks/google/calendar;
 * new; NULL: push is off). load: the account's current channel, inside the
 * job's load (threadpool). run: a loaded watch or unwatch job: events.watch
 * with a fresh channel id and random token (only its hash is stored), then
 * channels.stop of the channel it replaces; or channels.stop and forget
 * (loop). free: what a job holds for it. */
char *calsync_gwatch_address(const struct calsync_cfg *cfg);
enum tn_err calsync_gwatch_load(struct tn_pgconn *c, struct calsync_job *j);
void calsync_gwatch_run(struct calsync_job *j, void (*then)(struct calsync_job *j));
void calsync_gwatch_free(struct calsync_job *j);

/* calsync_job.c - a job's life. Runs on: loop. */
void calsync_job_finish(struct calsync_job *j);
void calsync_free_secret(char *s); /* wipe a NUL-terminated secret, then tn_free (NULL-safe) */
void calsync_job_start(struct calsync_ctx *ctx, enum calsync_kind kind, const char *tenant,
                       const char *id, struct tn_consumer *c, struct tn_entry *e);
void calsync_entry(struct tn_consumer *c, struct tn_entry *e, void *arg);

/* calsync_life.c - the skeleton's hooks. Runs on: loop. */
enum tn_err calsync_init(struct tn_rt *rt, void *arg);
void calsync_drain(struct tn_rt *rt, void *arg);
bool calsync_busy(void *arg);
void calsync_fini(struct tn_rt *rt, void *arg);
void calsync_heartbeat(struct tn_rt *rt, void *arg);
bool calsync_ready(void *arg, const char **why);

#endif
