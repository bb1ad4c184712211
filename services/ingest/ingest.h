#ifndef INGEST_H
#define INGEST_H
/*
 * ingest - private header of tern-ingest.
 *
 * The webhook parsers are pure: no socket, no Redis, no clock other than the
 * request's now_ms, no global state. The HTTP layer fills a struct
 * ingest_request, calls one ingest_<provider>_*() function with a routing
 * lookup, answers with the verdict in struct ingest_result and, when the
 * status is 200, deduplicates and XADDs the entries in order:
 *
 *   SET tern:dedupe:<entry.dedupe> 1 NX EX <window>   (nil: duplicate, skip)
 *   XADD <entry.stream> * <entry.name[i]> <entry.value[i]> ...
 *   (XADD failed: DEL the dedupe key and answer 503)
 *
 * Verdicts: 200 accepted (entries may be empty: nothing to enqueue),
 * 400 malformed body / form / query, 401 missing or wrong signature,
 * 403 WhatsApp challenge refused or Twilio AccountSid not the channel's,
 * 404 unknown channel or phone_number_id, 415 wrong content type. The HTTP
 * layer routes by method and path (GET /webhooks/whatsapp to the challenge,
 * POST to the rest) and answers 405 itself. On every non-200 verdict there are no entries:
 * a batch is all-or-nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

struct ingest_form;

/* Keys passed to the lookup as `provider`. */
#define INGEST_LOOKUP_WHATSAPP "whatsapp"               /* key: metadata.phone_number_id */
#define INGEST_LOOKUP_WHATSAPP_VERIFY "whatsapp-verify" /* key: hex SHA-256 of hub.verify_token */
#define INGEST_LOOKUP_TWILIO "twilio"                   /* key: {channel} path segment */
#define INGEST_LOOKUP_TELEGRAM "telegram"               /* key: {channel} path segment */
#define INGEST_LOOKUP_GOOGLE_CALENDAR "google-calendar" /* key: X-Goog-Channel-ID */

/* The Twilio response body: empty TwiML, we answer asynchronously. */
#define INGEST_TWIML_EMPTY "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"

#define INGEST_MAX_FIELDS 12

/* What the routing cache knows about one channel. All members borrowed. */
struct ingest_route {
    const char *tenant;       /* tenant uuid */
    const char *channel;      /* channel id */
    const char *secret;       /* WhatsApp app secret | Twilio auth token | Telegram secret_token
                               * | Google push: hex SHA-256 of the channel token */
    const char *verify_token; /* WhatsApp GET hub.verify_token; NULL for other providers */
    const char *account;      /* Twilio AccountSid the channel belongs to; NULL: not checked.
                               * Google push: the calendar account id */
};

/* ingest_lookup_fn - resolve a channel.
 *   provider: one of INGEST_LOOKUP_*; key: the value named there (borrowed).
 *   Returns: borrowed, valid until the ingest_* call returns; NULL if unknown.
 *   The WhatsApp challenge looks up by a hash of the presented token, so the
 *   lookup's timing never depends on the secret itself; the token is then
 *   compared in constant time with route->verify_token.
 * Runs on: loop (must not block: a cache, never Postgres). */
typedef const struct ingest_route *ingest_lookup_fn(void *arg, const char *provider,
                                                    const char *key);

/* One HTTP request as received. All members borrowed; NULL when absent. */
struct ingest_request {
    const char *method;       /* "GET" | "POST" */
    const char *url;          /* public URL as the provider was configured with it,
                               * including the query (Twilio signs it) */
    const char *query;        /* raw query string without '?' (WhatsApp GET) */
    const char *channel;      /* {channel} path segment (Twilio, Telegram) */
    const char *content_type; /* Content-Type header */
    const char *signature;    /* X-Hub-Signature-256 | X-Twilio-Signature |
                               * X-Telegram-Bot-Api-Secret-Token */
    const char *body;         /* raw body bytes, not NUL-terminated */
    size_t body_len;
    int64_t now_ms;                 /* receive time (epoch ms) */
    const char *trace;              /* traceparent to use; NULL: generate one */
    const struct ingest_goog *goog; /* Google push headers; NULL for other providers */
};

/* The X-Goog-* headers of a Google Calendar push notification (protocols.md
 * 5.4). All borrowed; NULL when absent. */
struct ingest_goog {
    const char *channel_id;     /* X-Goog-Channel-ID */
    const char *token;          /* X-Goog-Channel-Token */
    const char *resource_id;    /* X-Goog-Resource-ID */
    const char *resource_state; /* X-Goog-Resource-State: sync | exists | not_exists */
    const char *message_number; /* X-Goog-Message-Number */
};

/* One stream entry to XADD. */
struct ingest_entry {
    const char *stream; /* static: TN_STREAM_IN | TN_STREAM_STATUS */
    size_t nfields;
    const char *name[INGEST_MAX_FIELDS]; /* static field names from tn_proto.h */
    char *value[INGEST_MAX_FIELDS];      /* owned, NUL-terminated */
};

/* The verdict plus the entries. Zero-initialise before use; free with
 * ingest_result_free. */
struct ingest_result {
    int status;               /* HTTP status */
    const char *content_type; /* static; NULL: no body */
    char *body;               /* owned response body (NUL-terminated) or NULL */
    size_t body_len;
    const char *reason;           /* static stable reason for the log ("signature.mismatch") */
    char *headers;                /* owned extra response headers ("Name: v\r\n"...) or NULL */
    struct ingest_entry *entries; /* owned array */
    size_t nentries;
};

/* ingest_whatsapp_challenge - GET /webhooks/whatsapp: answer hub.challenge
 * (200 text/plain, the raw challenge) when hub.mode is "subscribe" and
 * hub.verify_token belongs to a configured channel; 403 otherwise; 400 for a
 * malformed query. Runs on: loop. */
void ingest_whatsapp_challenge(const struct ingest_request *req, ingest_lookup_fn *lookup,
                               void *arg, struct ingest_result *res);

/* ingest_whatsapp_post - POST /webhooks/whatsapp: verify X-Hub-Signature-256
 * with the app secret of every channel the batch routes to (all must verify),
 * then fan out every entry[].changes[].value messages[] to tern:in and
 * statuses[] to tern:status. Runs on: loop. */
void ingest_whatsapp_post(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                          struct ingest_result *res);

/* ingest_twilio_post - POST /webhooks/twilio/{channel}: verify
 * X-Twilio-Signature over req->url and the form parameters (or, for a JSON
 * body, the URL with bodySHA256), then one inbound.message or one
 * delivery.status. Answers empty TwiML. Runs on: loop. */
void ingest_twilio_post(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                        struct ingest_result *res);

/* ingest_twilio_sign - the X-Twilio-Signature Twilio would send for url and
 * params (form parameters; an empty form for the JSON-body variant).
 * Returns: new base64 string. All arguments borrowed. Runs on: any thread. */
char *ingest_twilio_sign(const char *token, const char *url, const struct ingest_form *params);

/* ingest_telegram_post - POST /webhooks/telegram/{channel}: check
 * X-Telegram-Bot-Api-Secret-Token, then one inbound.message per update.
 * Runs on: loop. */
void ingest_telegram_post(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                          struct ingest_result *res);

/* ingest_google_push - POST /webhooks/google/calendar: find the channel by
 * X-Goog-Channel-ID (404 unknown), compare the SHA-256 of
 * X-Goog-Channel-Token with the channel's in constant time (401 missing or
 * wrong), then: state "sync" (the first message of a channel) 200 with no
 * entry; any other state one cal.request {op "push", account_id, push{...}}
 * on tern:cal, deduplicated by channel and message number
 * ("gcal:<channel>:<number>"). 400 for a missing or malformed state or
 * message number. The body is ignored (Google sends none). Runs on: loop. */
void ingest_google_push(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                        struct ingest_result *res);

/* ingest_google_token_hash - hex SHA-256 of a channel token, as stored in
 * oauth_accounts.push_token_hash. Returns: new. Runs on: any thread. */
char *ingest_google_token_hash(const char *token);

/* ingest_result_free - release the body and the entries and zero the struct
 * (it may be reused). NULL-safe. */
void ingest_result_free(struct ingest_result *res);

/* ingest_entry_get - value of a field of e. Returns: borrowed; NULL if absent. */
const char *ingest_entry_get(const struct ingest_entry *e, const char *name);

/*
 * Shared by the provider files (ingest_entry.c). Not for the HTTP layer.
 */
struct json_t;

/* Identity of one normalised entry. All borrowed. */
struct ingest_meta {
    const struct ingest_route *route;
    const char *provider; /* TN_PROVIDER_* */
    const char *trace;    /* traceparent */
};

/* ingest_entry_verdict - set status, reason and the provider's usual body
 * for that status (text/plain reason; TwiML for Twilio 200). */
void ingest_entry_verdict(struct ingest_result *res, int status, const char *reason);

/* ingest_entry_trace_new - new traceparent: a copy of req->trace, or random. */
char *ingest_entry_trace_new(const struct ingest_request *req);

/* ingest_entry_push_inbound - append an inbound.message entry to res.
 * Steals data (a JSON object); pmid and dedupe borrowed.
 * Errors: TN_EPROTO when data cannot be serialised. */
enum tn_err ingest_entry_push_inbound(struct ingest_result *res, const struct ingest_meta *m,
                                      const char *pmid, const char *dedupe, struct json_t *data);

/* ingest_entry_push_status - append a delivery.status entry; status is the
 * normalised status (also data.status). Steals data. */
enum tn_err ingest_entry_push_status(struct ingest_result *res, const struct ingest_meta *m,
                                     const char *pmid, const char *status, const char *dedupe,
                                     struct json_t *data);

/* ingest_entry_data_new - new JSON object holding tenant, channel, provider. */
struct json_t *ingest_entry_data_new(const struct ingest_meta *m);

/* ingest_entry_set_str - obj[key] = copy of the n bytes at s (n == SIZE_MAX:
 * strlen). s NULL: nothing set. Errors: TN_EPROTO if s is not UTF-8 or
 * holds a NUL. */
enum tn_err ingest_entry_set_str(struct json_t *obj, const char *key, const char *s, size_t n);

/* ingest_entry_set_time - obj[key] = RFC 3339 UTC text of epoch ms. */
void ingest_entry_set_time(struct json_t *obj, const char *key, int64_t ms);

/* ingest_entry_status_norm - a provider status word mapped onto the schema's
 * enum ("unknown" when not listed). Returns: static. */
const char *ingest_entry_status_norm(const char *s);

/* ingest_entry_ctype_is - does a Content-Type header name this media type
 * (case-insensitive, parameters ignored)? header may be NULL. */
bool ingest_entry_ctype_is(const char *header, const char *type);

/* ingest_entry_epoch_ms - epoch ms of a decimal count of seconds (a JSON
 * string or integer); fallback when absent or not a plausible time. */
int64_t ingest_entry_epoch_ms(const struct json_t *v, int64_t fallback);

/* One decoded application/x-www-form-urlencoded pair (ingest_form.c). */
struct ingest_param {
    char *name;  /* owned, NUL-terminated, no NUL inside */
    char *value; /* owned */
};

struct ingest_form {
    struct ingest_param *p; /* owned array */
    size_t n;
};

#define INGEST_FORM_MAX_PARAMS 512

/* ingest_form_parse - decode s (n bytes): split on '&' and '=', '+' is a
 * space, %XX through curl_easy_unescape. *out is zeroed first; free with
 * ingest_form_free even on error. Errors: TN_EPROTO (a NUL or invalid
 * UTF-8 once decoded), TN_E2BIG (more than INGEST_FORM_MAX_PARAMS). */
enum tn_err ingest_form_parse(const char *s, size_t n, struct ingest_form *out);

/* ingest_form_get - first value of name. Returns: borrowed; NULL if absent. */
const char *ingest_form_get(const struct ingest_form *f, const char *name);

/* ingest_form_free - release (NULL-safe members). */
void ingest_form_free(struct ingest_form *f);

/* ingest_entry_push_cal - append a cal.request entry on tern:cal for
 * tenant. Steals data; the other arguments borrowed. Errors: TN_EPROTO when
 * data cannot be serialised. */
enum tn_err ingest_entry_push_cal(struct ingest_result *res, const char *tenant, const char *trace,
                                  const char *request_id, const char *dedupe, struct json_t *data);

/* ingest_entry_clear - drop all entries (all-or-nothing on failure). */
void ingest_entry_clear(struct ingest_result *res);

#endif
