/*
 * NAME
 *	tn_httpd_server - tn_httpd's listener and public accessors
 * DESCRIPTION
 *	Binds and listens, accepts connections (or, over max_conns, accepts
 *	and closes them at once), drains and closes the server. The connection
 *	state machine is in tn_httpd.c; framing in tn_httpd_parse.c.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	httpd.listen_failed (error), httpd.limit limit=conns (warn),
 *	httpd.accept_failed (warn).
 */
#include <tn/tn_httpd.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>

#include "tn_httpd_int.h"

/* ---- accepting -------------------------------------------------------- */

static void free_handle_cb(uv_handle_t *hd)
{
    tn_free(hd);
}

static void reject(struct tn_httpd *h)
{
    uv_tcp_t *t = tn_xcalloc(1, sizeof(*t));

    uv_tcp_init(h->loop, t);
    if (uv_accept((uv_stream_t *)&h->listener, (uv_stream_t *)t) == 0) {
        h->st.conns_rejected++;
        tn_log_warn(NULL, "httpd.limit", TN_KV_STR("limit", "conns"),
                    TN_KV_INT("max", h->o.max_conns));
    }
    uv_close((uv_handle_t *)t, free_handle_cb);
}

static void on_connection_cb(uv_stream_t *server, int status)
{
    struct tn_httpd *h = server->data;
    struct tn__httpd_conn *c;

    if (status < 0) {
        tn_log_warn(NULL, "httpd.accept_failed", TN_KV_STR("uv", uv_strerror(status)));
        return;
    }
    if (h->st.conns_open >= h->o.max_conns) {
        reject(h);
        return;
    }
    c = tn_xcalloc(1, sizeof(*c));
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = h->conns;
    if (h->conns != NULL)
        h->conns->prev = c;
    h->conns = c;
    h->st.conns_open++;
    tn__httpd_frame_init(&c->f, h->o.max_header, h->o.max_body);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        tn__httpd_conn_close(c);
        return;
    }
    h->st.conns_accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    tn__httpd_conn_process(c); /* empty buffer: arms the idle timer and starts reading */
}

static void listener_closed_cb(uv_handle_t *hd)
{
    struct tn_httpd *h = hd->data;

    h->listener_closed = true;
    tn__httpd_server_maybe_free(h);
}

static void close_listener(struct tn_httpd *h)
{
    if (h->listener_closing)
        return;
    h->listener_closing = true;
    uv_close((uv_handle_t *)&h->listener, listener_closed_cb);
}

static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    const char *h0 = s;
    size_t hl;
    char *end = NULL;
    long port;

    if (colon == NULL)
        return UV_EINVAL;
    hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        h0 = s + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return UV_EINVAL;
    memcpy(host, h0, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return UV_EINVAL;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
}

static void set_defaults(struct tn_httpd_opts *o)
{
    if (o->max_body == 0)
        o->max_body = 1024 * 1024;
    if (o->max_header == 0)
        o->max_header = 16 * 1024;
    if (o->max_header > 1024 * 1024) /* offsets in the frame are 32-bit */
        o->max_header = 1024 * 1024;
    if (o->read_timeout_ms == 0)
        o->read_timeout_ms = 10000;
    if (o->idle_timeout_ms == 0)
        o->idle_timeout_ms = 60000;
    if (o->max_conns == 0)
        o->max_conns = 1024;
}

static void listen_failed_cb(uv_handle_t *hd)
{
    tn_free(hd->data);
}

struct tn_httpd *tn_httpd_new(struct uv_loop_s *loop, const struct tn_httpd_opts *o,
                              tn_httpd_handler_fn *handler, void *arg)
{
    struct tn_httpd *h = tn_xcalloc(1, sizeof(*h));
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    int namelen = sizeof(bound);
    int rc;

    h->loop = loop;
    h->o = *o;
    h->o.listen = NULL; /* borrowed: not kept */
    set_defaults(&h->o);
    h->handler = handler;
    h->arg = arg;
    rc = parse_listen(o->listen != NULL ? o->listen : "", &ss);
    if (rc != 0) {
        tn_log_error(NULL, "httpd.listen_failed", TN_KV_STR("listen", o->listen),
                     TN_KV_STR("uv", uv_strerror(rc)));
        tn_free(h);
        return NULL;
    }
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 511, on_connection_cb);
    if (rc != 0) {
        tn_log_error(NULL, "httpd.listen_failed", TN_KV_STR("listen", o->listen),
                     TN_KV_STR("uv", uv_strerror(rc)));
        uv_close((uv_handle_t *)&h->listener, listen_failed_cb); /* frees h */
        return NULL;
    }
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &namelen) == 0) {
        if (bound.ss_family == AF_INET)
            h->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else
            h->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    return h;
}

/* ---- the rest of the API ----------------------------------------------- */

const char *tn_httpd_header_get(const struct tn_httpd_req_view *v, const char *name, size_t *len)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < v->num_headers; i++) {
        const struct tn_httpd_header *hd = &v->headers[i];

        if (hd->name_len == nl && strncasecmp(hd->name, name, nl) == 0) {
            if (len != NULL)
                *len = hd->value_len;
            return hd->value;
        }
    }
    if (len != NULL)
        *len = 0;
    return NULL;
}

void tn_httpd_stop_accepting(struct tn_httpd *h)
{
    struct tn__httpd_conn *c, *next;

    h->draining = true;
    close_listener(h);
    for (c = h->conns; c != NULL; c = next) {
        next = c->next;
        if (!c->busy && !c->started && !c->lingering && c->in_len == 0)
            tn__httpd_conn_close(c); /* idle keep-alive connection */
    }
}

size_t tn_httpd_active(const struct tn_httpd *h)
{
    return (size_t)h->st.active;
}

int tn_httpd_port(const struct tn_httpd *h)
{
    return h->port;
}

void tn_httpd_stats(const struct tn_httpd *h, struct tn_httpd_stats *out)
{
    *out = h->st;
}

void tn_httpd_close(struct tn_httpd *h)
{
    struct tn__httpd_conn *c, *next;

    if (h == NULL)
        return;
    h->closed = true;
    h->draining = true;
    close_listener(h);
    for (c = h->conns; c != NULL; c = next) {
        next = c->next;
        tn__httpd_conn_close(c);
    }
    /* after tn_httpd_stop_accepting the listener may be closed already and
     * no connection left: then no close callback is still to come */
    tn__httpd_server_maybe_free(h);
}
