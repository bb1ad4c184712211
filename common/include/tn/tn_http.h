#ifndef TN_HTTP_H
#define TN_HTTP_H
/*
 * tn_http - asynchronous HTTP client on a libuv loop: the libcurl multi-socket
 * API driven by uv_poll_t and one uv_timer_t (curl's docs/examples/multi-uv.c).
 * Many transfers run at once on one loop; nothing blocks.
 *
 * Every request is bounded (STYLE.md R16): a total timeout (TN_ETIMEDOUT) and
 * a response size cap (TN_E2BIG, the transfer is aborted as soon as it is
 * passed). An HTTP error status is not a transport error: a 503 arrives with
 * err == TN_OK and resp->status == 503.
 */
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

struct uv_loop_s;
struct tn_http;
struct tn_http_xfer;

struct tn_http_opts {
    const char *user_agent;      /* NULL: "tern/1"; borrowed (copied) */
    uint32_t connect_timeout_ms; /* 0: 10000 (never above the request timeout) */
    uint32_t default_timeout_ms; /* 0: 30000; used when a request says 0 */
    size_t default_max_response; /* 0: 1 MiB; used when a request says 0 */
    uint32_t max_host_conns;     /* 0: libcurl's default (unlimited) */
    uint32_t max_idle_conns;     /* connections kept open between transfers (CURLMOPT_MAXCONNECTS);
                                  * 0: libcurl's default, 4 x the transfers in flight, which
                                  * closes connections as a burst of transfers ends */
    uint32_t recv_buffer;        /* receive buffer per transfer, held while it runs
                                  * (CURLOPT_BUFFERSIZE, at least 1024); 0: libcurl's 16 KiB */
};

struct tn_http_request {
    const char *method;         /* "GET", "POST", ...; NULL: GET (POST with a body) */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* "Name: value" strings, NULL-terminated, or NULL */
    const void *body;           /* may be NULL */
    size_t body_len;
    uint32_t timeout_ms; /* whole transfer; 0: the default */
    size_t max_response; /* body cap; 0: the default */
    const char *userpwd; /* "user:password" for basic auth, or NULL */
};

struct tn_http_response {
    long status;      /* HTTP status, e.g. 200 or 503 */
    const char *body; /* NUL-terminated for convenience; not counted in body_len */
    size_t body_len;
    struct tn_http_xfer *_x; /* private: for tn_http_response_header */
};

/* tn_http_done_fn - the transfer finished. resp is borrowed for the duration
 * of the call and is NULL unless err == TN_OK. err: TN_OK (any HTTP status),
 * TN_ETIMEDOUT, TN_E2BIG (response over max_response), TN_EUNAVAIL (refused,
 * unreachable, DNS, TLS, connection dropped), TN_EPROTO (the peer's bytes were
 * not HTTP), TN_EINVAL (bad URL), TN_ECANCELED (tn_http_free).
 * The callback may call tn_http_send and tn_http_free.
 * Runs on: loop. */
typedef void tn_http_done_fn(const struct tn_http_response *resp, enum tn_err err, void *arg);

/* tn_http_global_init - curl_global_init(CURL_GLOBAL_DEFAULT). Call once from
 * the daemon's main thread before any other thread starts (libcurl's global
 * init is not thread-safe). Errors: TN_EUNAVAIL. */
enum tn_err tn_http_global_init(void);
/* tn_http_global_cleanup - the matching curl_global_cleanup, at exit. */
void tn_http_global_cleanup(void);

/* tn_http_new - a client on loop; o borrowed (copied), may be NULL for the
 * defaults. Returns: new; release with tn_http_free. Runs on: loop. */
struct tn_http *tn_http_new(struct uv_loop_s *loop, const struct tn_http_opts *o);

/* tn_http_send - start one transfer. rq and everything it points to are
 * borrowed for the call only (copied). R9 contract: on an error return done
 * is never called (TN_EINVAL: missing URL or bad option; TN_ECANCELED: the
 * client is being freed); on TN_OK done runs exactly once, later, never from
 * inside this call. Runs on: loop. */
enum tn_err tn_http_send(struct tn_http *h, const struct tn_http_request *rq, tn_http_done_fn *done,
                         void *arg);

/* tn_http_form_post - tn_http_send of a POST whose body is the pairs of
 * fields (name, value, name, value, ..., NULL) form-encoded
 * (application/x-www-form-urlencoded; a NULL or empty value leaves its pair
 * out). The body is wiped once curl has its copy: OAuth token requests
 * carry secrets. fields is borrowed for the call; timeout_ms and
 * max_response as in tn_http_request. Returns and calls done as
 * tn_http_send. Runs on: loop. */
enum tn_err tn_http_form_post(struct tn_http *h, const char *url, const char *const *fields,
                              uint32_t timeout_ms, size_t max_response, tn_http_done_fn *done,
                              void *arg);

/* tn_http_response_header - value of the response header name (any case),
 * the first one if repeated, from the final response (not a 100 Continue). Returns: borrowed, valid
 * until the next lookup or the end of the done callback; NULL if absent. */
const char *tn_http_response_header(const struct tn_http_response *resp, const char *name);

/* tn_http_pending - transfers started and not yet completed. */
size_t tn_http_pending(const struct tn_http *h);

/* tn_http_free - cancel every transfer in flight (each done gets
 * TN_ECANCELED, before this returns) and release the client (NULL-safe).
 * Handles are closed asynchronously: run the loop once more afterwards.
 * May be called from a done callback. Runs on: loop. */
void tn_http_free(struct tn_http *h);

#endif
