#ifndef TN_HTTPD_INT_H
#define TN_HTTPD_INT_H
/*
 * tn_httpd_int - state shared by tn_httpd.c (connections) and
 * tn_httpd_server.c (listener, public accessors). Private to common/src/io.
 */
#include <stdbool.h>
#include <stddef.h>

#include <tn/tn_httpd.h>
#include <tn/tn_loop.h>

#include "tn_httpd_parse.h"

#define TN__HTTPD_READ_CHUNK 65536
#define TN__HTTPD_LINGER_MS 1000

enum tn__httpd_tmode { TN__HTTPD_T_IDLE, TN__HTTPD_T_READ, TN__HTTPD_T_LINGER };

struct tn__httpd_conn;

struct tn_httpd_req {
    struct tn__httpd_conn *c;
    struct tn_httpd_req_view v;
    struct tn_httpd_header hdrs[TN__HTTPD_MAX_HEADERS];
    bool is_head;
};

struct tn__httpd_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    struct tn_httpd *h;
    struct tn__httpd_conn *prev, *next;
    char *in;
    size_t in_len, in_size;
    struct tn__httpd_frame f;
    struct tn_httpd_req req;
    size_t saved_at; /* byte overwritten by the body's NUL while busy */
    char saved;
    int handles; /* open handles: tcp and timer */
    enum tn__httpd_tmode tmode;
    bool closing;   /* uv_close called */
    bool busy;      /* req is in the handler */
    bool started;   /* a byte of the current request arrived */
    bool lingering; /* last response queued */
    bool reading;
    bool processing; /* inside conn_process: no re-entry */
    bool sent_continue;
};

struct tn_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct tn_httpd_opts o;
    tn_httpd_handler_fn *handler;
    void *arg;
    struct tn__httpd_conn *conns; /* every connection not yet freed */
    struct tn_httpd_stats st;
    int port;
    bool listener_closing, listener_closed;
    bool draining, closed;
};

/* tn__httpd_conn_close - start closing c (idempotent). Runs on: loop. */
void tn__httpd_conn_close(struct tn__httpd_conn *c);
/* tn__httpd_conn_process - frame and dispatch what c has buffered. */
void tn__httpd_conn_process(struct tn__httpd_conn *c);
/* tn__httpd_server_maybe_free - free h once closed and empty. */
void tn__httpd_server_maybe_free(struct tn_httpd *h);

#endif
