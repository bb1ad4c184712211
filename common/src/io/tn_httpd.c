/*
 * NAME
 *	tn_httpd - HTTP/1.1 server on a libuv loop: the connections
 * DESCRIPTION
 *	Per connection a uv_tcp_t, one uv_timer_t and an input buffer. The
 *	listener and the public accessors are in tn_httpd_server.c; framing is
 *	tn_httpd_parse.c (picohttpparser).
 *
 *	A connection is in one of these phases:
 *	  idle     no byte of a request yet; the timer is the idle timeout
 *	  reading  bytes of a request arrived; the timer is the read timeout,
 *	           armed at the first byte and never re-armed (slow-loris)
 *	  busy     the request is in the handler; reading and timer stopped,
 *	           later (pipelined) bytes wait in the buffer
 *	  linger   the last response is queued: shutdown(SHUT_WR) after it,
 *	           then read and discard until EOF or a short timer, so that a
 *	           client still sending a refused body gets the response, not
 *	           a reset
 *	The request object is embedded in its connection, and a connection is
 *	freed only when both handles are closed and no request is in the
 *	handler: a late tn_httpd_respond therefore always finds valid memory.
 *	The server is freed after tn_httpd_close once the listener and every
 *	connection are gone.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	httpd.limit (warn; limit=body|header|read_timeout). Request bodies
 *	and header values are never logged.
 */
#include <tn/tn_httpd.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tn/tn_buf.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>

#include "tn_httpd_int.h"

struct wreq {
    uv_write_t w;
    struct tn__httpd_conn *c;
    char *data;
};

static void conn_fail(struct tn__httpd_conn *c, int status);

static const char *reason(int status)
{
    static const struct {
        int code;
        const char *text;
    } tab[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };

    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (tab[i].code == status)
            return tab[i].text;
    }
    return "Unknown";
}

/* ---- freeing ---------------------------------------------------------- */

void tn__httpd_server_maybe_free(struct tn_httpd *h)
{
    if (h->closed && h->listener_closed && h->conns == NULL)
        tn_free(h);
}

static void conn_maybe_free(struct tn__httpd_conn *c)
{
    struct tn_httpd *h = c->h;

    if (c->handles > 0 || c->busy)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    tn_free(c->in);
    tn_free(c);
    tn__httpd_server_maybe_free(h);
}

static void conn_handle_closed_cb(uv_handle_t *hd)
{
    struct tn__httpd_conn *c = hd->data;

    c->handles--;
    conn_maybe_free(c);
}

void tn__httpd_conn_close(struct tn__httpd_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->h->st.conns_open--;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
}

/* ---- timers and reading ---------------------------------------------- */

static void conn_timer_cb(uv_timer_t *t)
{
    struct tn__httpd_conn *c = t->data;

    switch (c->tmode) {
    case TN__HTTPD_T_IDLE:
        c->h->st.idle_closed++;
        tn__httpd_conn_close(c);
        break;
    case TN__HTTPD_T_LINGER:
        tn__httpd_conn_close(c);
        break;
    case TN__HTTPD_T_READ:
        c->h->st.limit_timeout++;
        tn_log_warn(NULL, "httpd.limit", TN_KV_STR("limit", "read_timeout"),
                    TN_KV_INT("timeout_ms", c->h->o.read_timeout_ms));
        conn_fail(c, 408);
        break;
    }
}

static void conn_timer(struct tn__httpd_conn *c, enum tn__httpd_tmode mode, uint32_t ms)
{
    c->tmode = mode;
    uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

static void alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    struct tn__httpd_conn *c = hd->data;
    size_t want = c->in_len + TN__HTTPD_READ_CHUNK + 1;

    (void)suggested;
    if (c->lingering)
        want = TN__HTTPD_READ_CHUNK + 1; /* discarded: reuse the start */
    if (c->in_size < want) {
        c->in = tn_xrealloc(c->in, want);
        c->in_size = want;
    }
    /* keep one spare byte for the body's NUL */
    if (c->lingering)
        *buf = uv_buf_init(c->in, TN__HTTPD_READ_CHUNK);
    else
        *buf = uv_buf_init(c->in + c->in_len, (unsigned int)(c->in_size - c->in_len - 1));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tn__httpd_conn *c = s->data;

    (void)buf;
    if (nread < 0) { /* EOF, reset: nothing more will come */
        tn__httpd_conn_close(c);
        return;
    }
    if (nread == 0 || c->lingering)
        return;
    c->in_len += (size_t)nread;
    tn__httpd_conn_process(c);
}

static void conn_read(struct tn__httpd_conn *c, bool on)
{
    if (c->closing || c->reading == on)
        return;
    if (on && uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        tn__httpd_conn_close(c);
        return;
    }
    if (!on)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = on;
}

/* ---- writing ---------------------------------------------------------- */

static void write_cb(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;

    if (status < 0 && status != UV_ECANCELED) /* EPIPE, ECONNRESET: client gone */
        tn__httpd_conn_close(wr->c);
    tn_free(wr->data);
    tn_free(wr);
}

static void conn_write(struct tn__httpd_conn *c, char *data, size_t len)
{
    struct wreq *wr = tn_xcalloc(1, sizeof(*wr));
    uv_buf_t b = uv_buf_init(data, (unsigned int)len);

    wr->c = c;
    wr->data = data;
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
        tn_free(data);
        tn_free(wr);
        tn__httpd_conn_close(c);
    }
}

static void shutdown_cb(uv_shutdown_t *r, int status)
{
    struct tn__httpd_conn *c = r->data;

    if (status < 0)
        tn__httpd_conn_close(c);
}

/* conn_linger - the last response is queued: half-close after it, drain input. */
static void conn_linger(struct tn__httpd_conn *c)
{
    uint32_t ms = c->h->o.read_timeout_ms < TN__HTTPD_LINGER_MS ? c->h->o.read_timeout_ms
                                                                : TN__HTTPD_LINGER_MS;

    c->lingering = true;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
        tn__httpd_conn_close(c);
        return;
    }
    conn_timer(c, TN__HTTPD_T_LINGER, ms);
    conn_read(c, true);
}

static void send_response(struct tn__httpd_conn *c, int status, const char *ctype,
                          const char *extra, const void *body, size_t body_len, bool keep,
                          bool head_only)
{
    struct tn_buf b;
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    size_t len;
    char *data;

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (!no_body)
        tn_buf_printf(&b, "Content-Length: %zu\r\n", body_len);
    if (ctype != NULL)
        tn_buf_printf(&b, "Content-Type: %s\r\n", ctype);
    if (extra != NULL)
        tn_buf_adds(&b, extra);
    if (!keep)
        tn_buf_adds(&b, "Connection: close\r\n");
    else if (c->f.minor_version == 0) /* an HTTP/1.0 client assumes close otherwise */
        tn_buf_adds(&b, "Connection: keep-alive\r\n");
    tn_buf_adds(&b, "\r\n");
    if (!no_body && !head_only && body_len > 0)
        tn_buf_add(&b, body, body_len);
    data = tn_buf_steal(&b, &len);
    if (status >= 100 && status < 600)
        c->h->st.responses[status / 100]++;
    conn_write(c, data, len);
}

/* conn_fail - answer a framing failure or timeout, then close. */
static void conn_fail(struct tn__httpd_conn *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));

    uv_timer_stop(&c->timer);
    conn_read(c, false);
    send_response(c, status, "text/plain", NULL, body, (size_t)n, false, false);
    if (!c->closing)
        conn_linger(c);
}

/* ---- requests --------------------------------------------------------- */

static void build_view(struct tn__httpd_conn *c)
{
    struct tn_httpd_req *r = &c->req;
    struct tn_httpd_req_view *v = &r->v;
    const struct tn__httpd_frame *f = &c->f;
    const char *qm;
    size_t sz = tn__httpd_frame_size(f);

    memset(r, 0, sizeof(*r));
    r->c = c;
    v->method = c->in + f->method.off;
    v->method_len = f->method.len;
    v->path = c->in + f->path.off;
    v->path_len = f->path.len;
    qm = memchr(v->path, '?', v->path_len);
    if (qm != NULL) {
        v->query = qm + 1;
        v->query_len = v->path_len - (size_t)(qm + 1 - v->path);
        v->path_len = (size_t)(qm - v->path);
    }
    for (size_t i = 0; i < f->num_headers; i++) {
        r->hdrs[i] = (struct tn_httpd_header){c->in + f->hname[i].off, f->hname[i].len,
                                              c->in + f->hvalue[i].off, f->hvalue[i].len};
    }
    v->headers = r->hdrs;
    v->num_headers = f->num_headers;
    /* NUL-terminate the body in place; the byte there (next request, or the
     * spare byte alloc_cb keeps) is restored by respond */
    c->saved_at = sz;
    c->saved = c->in[sz];
    c->in[sz] = '\0';
    v->body = c->in + f->head_len;
    v->body_len = f->body_len;
    r->is_head = v->method_len == 4 && memcmp(v->method, "HEAD", 4) == 0;
}

static void dispatch(struct tn__httpd_conn *c)
{
    struct tn_httpd *h = c->h;

    uv_timer_stop(&c->timer);
    conn_read(c, false);
    build_view(c);
    c->busy = true;
    h->st.active++;
    h->st.requests++;
    h->handler(&c->req, &c->req.v, h->arg);
}

static void frame_failed(struct tn__httpd_conn *c)
{
    struct tn_httpd *h = c->h;

    switch (c->f.limit) {
    case TN__HTTPD_LIMIT_BODY:
        h->st.limit_body++;
        tn_log_warn(NULL, "httpd.limit", TN_KV_STR("limit", "body"),
                    TN_KV_INT("max", h->o.max_body));
        break;
    case TN__HTTPD_LIMIT_HEADER:
        h->st.limit_header++;
        tn_log_warn(NULL, "httpd.limit", TN_KV_STR("limit", "header"),
                    TN_KV_INT("max", h->o.max_header));
        break;
    case TN__HTTPD_LIMIT_NONE:
        h->st.bad_requests++;
        break;
    }
    conn_fail(c, c->f.status);
}

static void send_continue(struct tn__httpd_conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

    c->sent_continue = true;
    conn_write(c, tn_xmemdup(msg, sizeof(msg) - 1), sizeof(msg) - 1);
}

/* conn_step - frame what is buffered; false when nothing more can be done now. */
static bool conn_step(struct tn__httpd_conn *c)
{
    struct tn_httpd *h = c->h;

    if (c->in_len == 0) {
        if (h->draining) {
            tn__httpd_conn_close(c);
            return false;
        }
        conn_timer(c, TN__HTTPD_T_IDLE, h->o.idle_timeout_ms);
        conn_read(c, true);
        return false;
    }
    if (!c->started) {
        c->started = true;
        conn_timer(c, TN__HTTPD_T_READ, h->o.read_timeout_ms);
    }
    switch (tn__httpd_frame_feed(&c->f, c->in, &c->in_len)) {
    case TN__HTTPD_FRAME_MORE:
        if (c->f.head_done && c->f.expect_continue && !c->sent_continue)
            send_continue(c);
        conn_read(c, true);
        return false;
    case TN__HTTPD_FRAME_FAIL:
        frame_failed(c);
        return false;
    case TN__HTTPD_FRAME_DONE:
        dispatch(c);
        return true;
    }
    return false;
}

void tn__httpd_conn_process(struct tn__httpd_conn *c)
{
    if (c->processing)
        return;
    c->processing = true;
    while (!c->closing && !c->busy && !c->lingering) {
        if (!conn_step(c))
            break;
    }
    c->processing = false;
}

void tn_httpd_respond(struct tn_httpd_req *req, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t body_len)
{
    struct tn__httpd_conn *c = req->c;
    struct tn_httpd *h = c->h;
    size_t sz;
    bool keep;

    TN_ASSERT(c->busy);
    c->busy = false;
    h->st.active--;
    if (c->closing) { /* client or server went away meanwhile: just free */
        conn_maybe_free(c);
        return;
    }
    sz = c->saved_at;
    c->in[sz] = c->saved;
    keep = c->f.keep_alive && !h->draining;
    send_response(c, status, content_type, extra_headers, body, body_len, keep, req->is_head);
    if (c->closing)
        return;
    if (!keep) {
        conn_linger(c);
        return;
    }
    memmove(c->in, c->in + sz, c->in_len - sz);
    c->in_len -= sz;
    tn__httpd_frame_init(&c->f, h->o.max_header, h->o.max_body);
    c->started = false;
    c->sent_continue = false;
    tn__httpd_conn_process(c);
}
