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
struct _icaltimezone; /* libical's icaltimezone */

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
    size_t jobs;    /* jobs started and not finished */
    size_t parsing; /* REPORT answers on the threadpool (calsync_report.c; also in jobs) */
    bool stopped;   /* fini ran: pg, http and the consumer are gone */
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

/* The longest time zone name kept (tz database names are at most about 32). */
#define CALSYNC_ZONE_MAX 64

/* The last year a clock reading is converted in a zone (calsync_ical.c,
 * calsync_gparse.c); a later one is read as UTC. libical 3.0.16 expands a
 * zone's changes only to 2582 and expands them all again on every
 * conversion past that (12-25 ms each), so a server sending far dates
 * could hold a thread for hours. 2200 lies far past any import window
 * (TN_CALSYNC_BUSY_DAYS <= 730) and well short of 2582; read as UTC, a
 * later time is off by the zone's offset (14 hours at most), centuries
 * past any window. */
#define CALSYNC_ZONE_YEAR_MAX 2200

/* One busy range, epoch seconds [start, end). */
struct calsync_range {
    int64_t start, end;
};

/* A calendar account as loaded for a job (strings new, freed with the job;
 * secrets wiped first). */
struct calsync_account {
    char id[40];
    bool google;           /* provider google (else CalDAV) */
    bool reconnect;        /* needs_reconnect: no calls until the owner reconnects */
    char *url;             /* CalDAV: the collection, ending in '/'; Google: calendar id */
    char *userpwd;         /* CalDAV: "user:password" or NULL (no auth) */
    char *access;          /* Google: the access token, or NULL */
    char *refresh;         /* Google: the refresh token, or NULL */
    int64_t expires_s;     /* Google: when access expires (epoch s; 0 unknown) */
    char send_updates[16]; /* Google: the tenant's sendUpdates */
    char time_zone[CALSYNC_ZONE_MAX]; /* the tenant's IANA zone (tenants.time_zone) */
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
    /* the tenant's zone, found on the loop once loaded (calsync_zone_pick;
     * NULL: UTC): all-day and floating times are read in it. Borrowed from
     * libical, which keeps its zones for the life of the process. */
    const struct _icaltimezone *zone;
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

/* What one CalDAV import may spend expanding events. A calendar-query
 * answer holds one calendar-data text per event (its overridden instances
 * included); 2000 is far more than one person's or one room's calendar
 * holds over the import window, and an ordinary event costs 20-50 us, so
 * 2000 stay under 0.1 s. The CPU bound is for what the count cannot
 * bound: libical spends 40-180 ms in one call on a rule that never
 * matches (FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30; UNTIL does not stop
 * it), and a text may hold many events or rules; 2 s of the threadpool
 * thread's CPU time is 20 times an ordinary 2000-event calendar. Past
 * either bound the whole window is busy: fewer free slots, never a double
 * booking. */
#define CALSYNC_IMPORT_MAX_EVENTS 2000
#define CALSYNC_IMPORT_MAX_CPU_MS 2000

struct calsync_allow {
    size_t texts;         /* calendar-data texts it may still expand */
    int64_t cpu_until_ns; /* the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) to stop at; 0: none */
    const char *over;     /* static: NULL, or "events" / "cpu" once a bound was hit */
};

/* calsync_ical.c - iCalendar through libical. Runs on: any thread.
 * zone (borrowed; NULL: UTC): what times without a zone of their own are
 * read in: all-day dates (VALUE=DATE) and floating date-times; a TZID or a
 * UTC time keeps its own; past CALSYNC_ZONE_YEAR_MAX all are read as
 * UTC. inspect: the marker and times of the first VEVENT (an all-day
 * event lasts its whole days, a part of a day counting as one, at least
 * one day; a timed one without DTEND or DURATION ends where it starts).
 * busy: the busy ranges of one calendar-data text, appended to *ranges
 * (new, tn_free; grown in place); allow (borrowed; NULL: no import bound)
 * is charged one text and checked before each event, each rule and every
 * 64 RDATEs; once it runs out the
 * whole window [from_s, to_s) is appended once and nothing more is
 * expanded. read: busy and (marker not NULL) inspect of one text, which
 * it parses once; the inspection is made even when the allowance is out.
 * allow_init: a fresh allowance whose CPU time is counted on the
 * calling thread (call it on the thread that expands). */
char *calsync_ical_event(const char *booking_id, int64_t start_s, int64_t end_s,
                         const char *summary, int64_t now_s);
bool calsync_ical_inspect(const char *text, const struct _icaltimezone *zone, char *marker,
                          size_t size, int64_t *start_s, int64_t *end_s);
void calsync_ical_busy(const char *text, const struct _icaltimezone *zone, int64_t from_s,
                       int64_t to_s, struct calsync_allow *allow, struct calsync_range **ranges,
                       size_t *n, size_t *cap);
bool calsync_ical_read(const char *text, const struct _icaltimezone *zone, int64_t from_s,
                       int64_t to_s, struct calsync_allow *allow, struct calsync_range **ranges,
                       size_t *n, size_t *cap, char *marker, size_t size, int64_t *start_s,
                       int64_t *end_s);
void calsync_allow_init(struct calsync_allow *al);

/* calsync_zone.c - the zone a calendar's local times are read in.
 * find: libical's zone of a tz database name (borrowed: libical keeps it
 * for the life of the process), or NULL when name is NULL, not shaped like
 * a tz database name, or unknown to the system's tz database.
 * pick: name's zone; NULL or "" gives fallback quietly; a name that is not
 * found gives fallback (NULL: UTC) and logs calsync.zone_unknown (warn:
 * account id, source "tenant" or "calendar", the name when well-formed).
 * init: load libical's list of zones, and look up every zone file of the
 * tz database whose name find accepts (logs calsync.zones); warns
 * calsync.no_zone_data when there is none (every zone would then be read
 * as UTC). Call it once at start, before the threadpool is used.
 * Once init has run, find accepts only the names it preloaded.
 * known: name is one init preloaded (false before init).
 * Runs on: loop only; known on any thread (init's list is not changed
 * after init). libical 3.0.16 adds a zone that is not in zone.tab
 * (a link such as US/Pacific) to its shared list without a lock; after
 * init has added them all, a lookup of such a name only reads the list,
 * and no other name is looked up (calsync_ical.c rewrites a TZID that is
 * neither a VTIMEZONE of its text nor known to the known name it ends
 * with, or drops it). Converting a time in a
 * zone found is thread-safe (libical guards a zone's expanded changes
 * with a mutex), so a zone found here may be handed to the threadpool. */
const struct _icaltimezone *calsync_zone_find(const char *name);
const struct _icaltimezone *calsync_zone_pick(const struct calsync_job *j, const char *name,
                                              const char *source,
                                              const struct _icaltimezone *fallback);
void calsync_zone_init(void);
bool calsync_zone_known(const char *name);

/* calsync_xml.c - multistatus bodies through libxml2. Runs on: any thread. */
typedef void calsync_xml_data_fn(const char *calendar_data, void *arg);
enum tn_err calsync_xml_calendar_data(const char *body, size_t len, calsync_xml_data_fn *fn,
                                      void *arg);
char *calsync_xml_report_body(int64_t from_s, int64_t to_s);

/* calsync_report.c - a calendar-query's 207 answer into an import job's
 * busy ranges (j->ranges) and Tern's events seen (calsync_twoway_seen).
 * read: the work itself; body borrowed (len bytes, NUL-terminated), allow
 * borrowed and charged; touches only j's ranges and seen list. Errors:
 * TN_EPROTO (not XML), TN_E2BIG. Runs on: any thread.
 * start: copies body and reads it on the threadpool, then calls done(j,
 * err) on the loop; from start until done the job belongs to the
 * threadpool and the loop must not touch or free it (ctx->parsing and
 * ctx->jobs count it, so a drain waits). err: as read, or TN_ECANCELED
 * when the daemon stopped meanwhile (ctx->stopped: the job must only be
 * finished). An answer past the import's bounds is logged
 * (calsync.import_capped) and counted. Runs on: loop. */
typedef void calsync_report_done_fn(struct calsync_job *j, enum tn_err err);
enum tn_err calsync_report_read(struct calsync_job *j, const char *body, size_t len,
                                struct calsync_allow *allow);
void calsync_report_start(struct calsync_job *j, const char *body, size_t len,
                          calsync_report_done_fn *done);

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
char *calsync_google_event_id(const char *booking_id);
void calsync_google_free(struct calsync_job *j);

/* calsync_gparse.c - Google Calendar's JSON answers read without a job,
 * I/O or globals (fuzzed by tests/fuzz/fuzz_calsync_google.c). The json_t
 * is only read; every string handed out is borrowed from it (valid while
 * it lives; do not free). A zone argument (borrowed; NULL: UTC) is what
 * times without an offset are read in: all-day dates, and date-times
 * without one; the calendar's (the events.list answer's timeZone), else
 * the tenant's. Runs on: any thread (zone found on the loop). */
struct json_t;

#define CALSYNC_GOOGLE_MAX_ETAG 256   /* longer etags are not kept */
#define CALSYNC_GOOGLE_MAX_TOKEN 2048 /* a longer nextPageToken fails the import */

/* One event as Tern reads it (events.get, or one item of events.list). */
struct calsync_gevent {
    const char *tag;    /* extendedProperties.private.tern_booking, or NULL */
    const char *status; /* "confirmed", "tentative", "cancelled", or NULL */
    const char *etag;   /* NULL: none, or not fit for If-Match (calsync_gparse_etag) */
    bool cancelled;     /* status is "cancelled" */
    bool timed;         /* start and end both read; else both 0 */
    int64_t start, end; /* epoch s (not checked for start < end) */
};

/* What one listed event means for the busy-time import. */
enum calsync_gbusy {
    CALSYNC_GBUSY_FREE, /* no busy time, nothing to note */
    CALSYNC_GBUSY_BUSY, /* busy in [start, end) */
    CALSYNC_GBUSY_TERN, /* Tern's own, not cancelled: tag, start and end for two-way sync */
};

struct calsync_gitem {
    const char *tag;    /* CALSYNC_GBUSY_TERN: the tag; else NULL */
    int64_t start, end; /* BUSY: start < end, overlaps the window; TERN: as listed; FREE: 0 */
};

/* calsync_google_time - an RFC 3339 date-time, a date-time without offset
 * (read in zone) or a date ("2026-05-05": midnight starting that day in
 * zone), as epoch seconds in *out (the last two past
 * CALSYNC_ZONE_YEAR_MAX: read as UTC). false (and *out untouched) when s is
 * NULL or not one of those, or is one of the last two with a field out of
 * range. Runs on: any thread. */
bool calsync_google_time(const char *s, const struct _icaltimezone *zone, int64_t *out);
/* calsync_gparse_tag - Tern's tag of event ev. Returns: borrowed, or NULL.
 * Runs on: any thread. */
const char *calsync_gparse_tag(const struct json_t *ev);
/* calsync_gparse_etag - ev's etag, fit to send back in an If-Match header:
 * printable ASCII, shorter than CALSYNC_GOOGLE_MAX_ETAG. Returns: borrowed;
 * NULL when absent or not fit (the event is then written without If-Match).
 * Runs on: any thread. */
const char *calsync_gparse_etag(const struct json_t *ev);
/* calsync_gparse_event - fill *out from event ev (any JSON value, or NULL:
 * all absent), its times read in zone. Strings in *out: borrowed from ev.
 * Runs on: any thread. */
void calsync_gparse_event(const struct json_t *ev, const struct _icaltimezone *zone,
                          struct calsync_gevent *out);
/* calsync_gparse_busy - one item of an events.list over [from_s, to_s),
 * its times read in zone: busy time (a non-empty range overlapping the
 * window, not clipped to it), Tern's own event, or nothing (cancelled,
 * transparent, declined by the calendar's owner, no valid times, outside
 * the window). *out is always set; its tag is borrowed from ev. Runs on:
 * any thread. */
enum calsync_gbusy calsync_gparse_busy(const struct json_t *ev, const struct _icaltimezone *zone,
                                       int64_t from_s, int64_t to_s, struct calsync_gitem *out);
/* calsync_gparse_zone - an events.list answer's timeZone (the calendar's
 * zone: what its all-day events are in). Returns: borrowed, or NULL when
 * absent or not a string. Runs on: any thread. */
const char *calsync_gparse_zone(const struct json_t *page);
/* calsync_gparse_page - an events.list answer: *items (borrowed array) and
 * *next, its nextPageToken (borrowed; NULL on the last page: absent or
 * null). TN_EPROTO (both NULL) when items is not an array, or the token is
 * there but cannot be sent back (not a string, empty, or
 * CALSYNC_GOOGLE_MAX_TOKEN bytes or more). Runs on: any thread. */
enum tn_err calsync_gparse_page(const struct json_t *page, const struct json_t **items,
                                const char **next);
/* calsync_gparse_reason - errors[0].reason of a Google error body (or of
 * NULL). Returns: borrowed, or the static "". Never NULL. Runs on: any
 * thread. */
const char *calsync_gparse_reason(const struct json_t *body);
/* calsync_gparse_verdict - what an HTTP status (other than 401) and its
 * body mean whatever the step: TN_EUNAVAIL (429, 5xx and 403 rate limits:
 * *why "google_unavailable"; 412: "google_precondition"), TN_EPROTO (other
 * 403s: "google_forbidden"), or TN_OK (*why NULL): the step decides.
 * *why: static. Runs on: any thread. */
enum tn_err calsync_gparse_verdict(long status, const struct json_t *body, const char **why);

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
