#ifndef TN_HTTP_INT_H
#define TN_HTTP_INT_H
/*
 * tn_http_int - state shared by tn_http.c (life cycle, requests, results)
 * and tn_http_sock.c (libcurl's socket and timer callbacks on libuv, the
 * completion check). Private to common/src/io. Everything here runs on the
 * loop.
 */
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include <tn/tn_http.h>
#include <tn/tn_loop.h>

struct tn__http_sock; /* one watched socket (tn_http_sock.c) */

struct tn_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct tn_http_opts o;
    char *ua;
    struct tn_http_xfer *xfers;
    struct tn__http_sock *socks;
    struct tn__http_sock **byfd; /* owned sockets by descriptor */
    size_t nbyfd;
    CURL **easy_pool; /* reset easy handles, ready for a transfer */
    size_t neasy, easy_cap;
    size_t pending;
    bool freeing;
};

/* tn__http_finish - x completed with res: call its done callback once, then
 * release it (x is freed on return). Runs on: loop, never inside a libcurl
 * call. (tn_http.c) */
void tn__http_finish(struct tn_http_xfer *x, CURLcode res);

/* tn__http_sock_init - start h's timer (h->loop, h->multi set) and hand the
 * multi handle our socket and timer callbacks. (tn_http_sock.c) */
void tn__http_sock_init(struct tn_http *h);

/* tn__http_sock_easy - make e open and close its connections' sockets
 * through h, so that their watchers live as long as the sockets.
 * Returns: the first curl_easy_setopt error, or CURLE_OK. (tn_http_sock.c) */
CURLcode tn__http_sock_easy(struct tn_http *h, CURL *e);

/* tn__http_sock_close_all - close every watcher still on h's list (after
 * curl_multi_cleanup); they are freed in their close callbacks.
 * (tn_http_sock.c) */
void tn__http_sock_close_all(struct tn_http *h);

#endif
