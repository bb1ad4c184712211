#ifndef TN_HTTPD_H
#define TN_HTTPD_H
/*
 * tn_httpd - an HTTP/1.1 server on a libuv loop. Requests are parsed by
 * picohttpparser (shipped in libh2o: phr_parse_request, phr_decode_chunked);
 * nothing here parses HTTP by hand.
 *
 * Keep-alive and pipelining: a connection has at most one request in the
 * handler at a time; bytes that arrive meanwhile wait in its buffer, so
 * responses always go out in request order. Limits answer with their status
 * and close: body over max_body 413, headers over max_header 431, request not
 * complete within read_timeout 408, malformed request 400, more than
 * max_conns connections: accepted and closed at once.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

struct uv_loop_s;
struct tn_httpd;
struct tn_httpd_req;

struct tn_httpd_opts {
    const char *listen;       /* numeric "127.0.0.1:8080" or "[::1]:8080"; borrowed */
    size_t max_body;          /* 0: 1 MiB */
    size_t max_header;        /* 0: 16 KiB (request line + headers) */
    uint32_t read_timeout_ms; /* 0: 10000; whole request, from its first byte */
    uint32_t idle_timeout_ms; /* 0: 60000; keep-alive idle */
    uint32_t max_conns;       /* 0: 1024 */
};

struct tn_httpd_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* The request as the handler sees it. Every pointer is borrowed and valid until
 * tn_httpd_respond() is called for this request. path excludes the query. */
struct tn_httpd_req_view {
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *query; /* after '?', NULL if none */
    size_t query_len;
    const struct tn_httpd_header *headers;
    size_t num_headers;
    const char *body; /* de-chunked; NUL-terminated for convenience */
    size_t body_len;
};

/* tn_httpd_handler_fn - a request arrived. The handler must call
 * tn_httpd_respond(req, ...) exactly once, now or later from the loop (for
 * example after an XADD reply). If the client disconnects first, respond is
 * still required and becomes a no-op that frees the request.
 * Runs on: loop. */
typedef void tn_httpd_handler_fn(struct tn_httpd_req *req, const struct tn_httpd_req_view *v,
                                 void *arg);

/* tn_httpd_new - bind and listen. o and arg borrowed (arg for the server's life).
 * Errors: NULL plus a logged "httpd.listen_failed" when the address is bad or
 * taken. Returns: new; release with tn_httpd_close. */
struct tn_httpd *tn_httpd_new(struct uv_loop_s *loop, const struct tn_httpd_opts *o,
                              tn_httpd_handler_fn *handler, void *arg);

/* tn_httpd_header_get - value of the first header named name (case-insensitive),
 * borrowed; NULL if absent. */
const char *tn_httpd_header_get(const struct tn_httpd_req_view *v, const char *name, size_t *len);

/* tn_httpd_respond - send the response. content_type and body borrowed
 * (copied). extra_headers: NULL or "Name: value\r\n..." lines, borrowed.
 * Content-Length is always set (except for 1xx/204/304, which carry no body);
 * a HEAD request gets the headers only. "Connection: close" is added when the
 * connection ends after this response. Ownership of req returns to the server.
 * Runs on: loop. */
void tn_httpd_respond(struct tn_httpd_req *req, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t body_len);

/* tn_httpd_stop_accepting - close the listener; connections finish their
 * current request and are then closed (drain). */
void tn_httpd_stop_accepting(struct tn_httpd *h);

/* tn_httpd_active - number of requests handed to the handler and not yet
 * answered (the drain waits for 0). */
size_t tn_httpd_active(const struct tn_httpd *h);

/* tn_httpd_close - close the listener and every connection (NULL-safe).
 * In-flight requests are canceled: their clients see the connection close, and
 * the handler must still call tn_httpd_respond, which then only frees the
 * request. Memory is released from the handles' close callbacks (and, for a
 * request still in the handler, from its respond), so the loop must run once
 * more afterwards. h must not be used after this call. */
void tn_httpd_close(struct tn_httpd *h);

/* tn_httpd_port - the bound TCP port (useful with "127.0.0.1:0"); 0 if unknown. */
int tn_httpd_port(const struct tn_httpd *h);

/* Counters for /metrics; all monotonic except conns_open and active. */
struct tn_httpd_stats {
    uint64_t conns_accepted; /* taken into service */
    uint64_t conns_rejected; /* over max_conns: accepted and closed at once */
    uint64_t conns_open;     /* currently open (gauge) */
    uint64_t idle_closed;    /* keep-alive connections closed after idle_timeout */
    uint64_t requests;       /* handed to the handler */
    uint64_t responses[6];   /* responses sent by status class: [2] is 2xx .. [5] is 5xx */
    uint64_t bad_requests;   /* framing failures answered 400/417/501/505 */
    uint64_t limit_body;     /* 413: body over max_body */
    uint64_t limit_header;   /* 431: head over max_header */
    uint64_t limit_timeout;  /* 408: request not complete within read_timeout */
    uint64_t active;         /* requests in the handler now (gauge) */
};

/* tn_httpd_stats - copy the counters into *out. Runs on: loop. */
void tn_httpd_stats(const struct tn_httpd *h, struct tn_httpd_stats *out);

#endif
