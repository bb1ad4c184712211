/*
 * NAME
 *	tn_http_sock - tn_http's sockets and timer on libuv
 * SYNOPSIS
 *	#include "tn_http_int.h"
 * DESCRIPTION
 *	The shape of curl's docs/examples/multi-uv.c: CURLMOPT_SOCKETFUNCTION
 *	starts/stops one uv_poll_t per socket curl wants watched,
 *	CURLMOPT_TIMERFUNCTION drives one uv_timer_t, and every poll or timer
 *	event calls curl_multi_socket_action and then reaps finished transfers
 *	with curl_multi_info_read (tn__http_finish reports each one).
 *
 *	Per-transfer cost. libcurl keeps connections open between transfers
 *	(CURLMOPT_MAXCONNECTS) but stops caring about an idle connection's
 *	socket: CURL_POLL_REMOVE, then, when a later transfer takes the
 *	connection, the same descriptor is announced anew. Closing the uv_poll
 *	at every REMOVE and making a new one at every announce cost five
 *	epoll_ctl calls, an ioctl and an allocation per transfer. So the
 *	sockets of connections are ours from open to close
 *	(CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION, which curl
 *	copies into each connection and calls for every socket it opened
 *	through them): the watcher is made when the socket is opened, found by
 *	descriptor (byfd) when curl announces it again, and closed in the close
 *	callback just before the descriptor is (so a recycled descriptor number
 *	never meets a stale watcher). After REMOVE it stays started for
 *	readability, unreferenced (an idle connection does not keep the loop
 *	alive), and a readable event while idle (the server closed it) stops
 *	it: curl sees the dead connection when it next looks. uv_poll_start
 *	itself removes and re-adds the descriptor, so it is called only when
 *	the events curl asks for change. Other sockets curl reports (a
 *	resolver's socketpair) get a watcher per REMOVE as before.
 *
 *	The life cycle, the requests and their results are in tn_http.c.
 * RUNS ON
 *	loop. open_fn, close_fn, sock_fn and timer_fn run inside libcurl calls.
 * DIAGNOSTICS
 *	None of its own: failed transfers are logged by tn_http.c.
 */
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include <curl/curl.h>

#include <tn/tn_http.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>

#include "tn_http_int.h"

struct tn__http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct tn_http *h;
    struct tn__http_sock *prev, *next;
    int events; /* what poll is started for (0: stopped) */
    bool owned; /* opened by open_fn, closed by close_fn; listed in h->byfd */
    bool idle;  /* owned, and curl said CURL_POLL_REMOVE: unreferenced */
};

/* reap - the completion check: report every transfer curl says is done */
static void reap(struct tn_http *h)
{
    CURLMsg *msg;
    int left;

    while (!h->freeing) {
        struct tn_http_xfer *x = NULL;
        CURLcode res;

        msg = curl_multi_info_read(h->multi, &left);
        if (msg == NULL)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        res = msg->data.result; /* msg dies with curl_multi_remove_handle */
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        tn__http_finish(x, res);
    }
}

/* poll_cb - a watched socket is ready: tell curl, then reap */
static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct tn__http_sock *sk = p->data;
    struct tn_http *h = sk->h;
    int flags = 0;
    int running;

    if (h->freeing)
        return;
    if (sk->idle) {
        /* curl is not using this connection: the server closed it or sent
         * something unasked. Stop watching; curl finds it dead before reuse. */
        uv_poll_stop(&sk->poll);
        sk->events = 0;
        return;
    }
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(h->multi, sk->fd, flags, &running); /* may close sk */
    reap(h);
}

/* timer_cb - curl's timeout expired: tell curl, then reap */
static void timer_cb(uv_timer_t *t)
{
    struct tn_http *h = t->data;
    int running;

    if (h->freeing)
        return;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    reap(h);
}

/* timer_fn - CURLMOPT_TIMERFUNCTION. Must not call back into curl. */
static int timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    struct tn_http *h = userp;

    (void)m;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* sock_closed_cb - free a watcher once libuv is done with it */
static void sock_closed_cb(uv_handle_t *hd)
{
    tn_free(hd->data);
}

/* sock_close - take sk off h's list and byfd, then close it (freed in
 * sock_closed_cb) */
static void sock_close(struct tn_http *h, struct tn__http_sock *sk)
{
    if (sk->prev != NULL)
        sk->prev->next = sk->next;
    else
        h->socks = sk->next;
    if (sk->next != NULL)
        sk->next->prev = sk->prev;
    if (sk->owned && (size_t)sk->fd < h->nbyfd && h->byfd[sk->fd] == sk)
        h->byfd[sk->fd] = NULL;
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, sock_closed_cb);
}

/* sock_new - a watcher for s on h's list (NULL: libuv refused s) */
static struct tn__http_sock *sock_new(struct tn_http *h, curl_socket_t s)
{
    struct tn__http_sock *sk = tn_xcalloc(1, sizeof(*sk));

    if (uv_poll_init_socket(h->loop, &sk->poll, s) != 0) {
        tn_free(sk);
        return NULL;
    }
    sk->poll.data = sk;
    sk->fd = s;
    sk->h = h;
    sk->next = h->socks;
    if (h->socks != NULL)
        h->socks->prev = sk;
    h->socks = sk;
    return sk;
}

/* sock_watch - start sk for events unless it already is (uv_poll_start
 * removes and re-adds the descriptor each time it is called) */
static void sock_watch(struct tn__http_sock *sk, int events)
{
    if (sk->events == events)
        return;
    uv_poll_start(&sk->poll, events, poll_cb);
    sk->events = events;
}

/* open_fn - CURLOPT_OPENSOCKETFUNCTION: a connection's socket and its
 * watcher, kept until close_fn. Runs on: loop, inside a libcurl call. */
static curl_socket_t open_fn(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct tn_http *h = clientp;
    struct tn__http_sock *sk;
    curl_socket_t s;

    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s == CURL_SOCKET_BAD)
        return s;
    sk = h->freeing ? NULL : sock_new(h, s);
    if (sk == NULL) {
        close(s);
        return CURL_SOCKET_BAD;
    }
    if ((size_t)s >= h->nbyfd) {
        size_t n = h->nbyfd == 0 ? 256 : h->nbyfd;

        while (n <= (size_t)s)
            n *= 2;
        h->byfd = tn_xrealloc(h->byfd, n * sizeof(*h->byfd));
        memset(h->byfd + h->nbyfd, 0, (n - h->nbyfd) * sizeof(*h->byfd));
        h->nbyfd = n;
    }
    sk->owned = true;
    sk->idle = true; /* not announced yet */
    uv_unref((uv_handle_t *)&sk->poll);
    h->byfd[s] = sk;
    return s;
}

/* close_fn - CURLOPT_CLOSESOCKETFUNCTION: close the watcher, then the
 * descriptor (libuv must not poll a closed one, and the number may be
 * reused at once). Runs on: loop, inside a libcurl call. */
static int close_fn(void *clientp, curl_socket_t s)
{
    struct tn_http *h = clientp;

    if ((size_t)s < h->nbyfd && h->byfd[s] != NULL)
        sock_close(h, h->byfd[s]);
    return close(s);
}

/* sock_fn - CURLMOPT_SOCKETFUNCTION: watch s for what curl asks. */
static int sock_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct tn_http *h = userp;
    struct tn__http_sock *sk = socketp;
    int events = 0;

    (void)e;
    if (sk == NULL && (size_t)s < h->nbyfd)
        sk = h->byfd[s]; /* an owned socket announced again */
    if (what == CURL_POLL_REMOVE) {
        if (sk == NULL)
            return 0;
        if (!h->freeing) /* not into a multi being destroyed */
            curl_multi_assign(h->multi, s, NULL);
        if (!sk->owned) {
            sock_close(h, sk);
        } else if (!sk->idle) {
            /* kept while the connection lives (close_fn closes it) */
            sk->idle = true;
            if (sk->events != 0)
                sock_watch(sk, UV_READABLE);
            uv_unref((uv_handle_t *)&sk->poll);
        }
        return 0;
    }
    if (sk == NULL) {
        sk = sock_new(h, s);
        if (sk == NULL)
            return -1;
    }
    if (socketp == NULL)
        curl_multi_assign(h->multi, s, sk);
    if (sk->idle) {
        sk->idle = false;
        uv_ref((uv_handle_t *)&sk->poll);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    sock_watch(sk, events);
    return 0;
}

/* tn__http_sock_init - h's timer, and the multi handle's socket and timer callbacks */
void tn__http_sock_init(struct tn_http *h)
{
    uv_timer_init(h->loop, &h->timer);
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_fn);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
}

/* tn__http_sock_easy - e opens and closes its sockets through open_fn and close_fn */
CURLcode tn__http_sock_easy(struct tn_http *h, CURL *e)
{
    CURLcode rc;

    rc = curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_fn);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)h);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_fn);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)h);
    return rc;
}

/* tn__http_sock_close_all - close every watcher left on h's list */
void tn__http_sock_close_all(struct tn_http *h)
{
    while (h->socks != NULL)
        sock_close(h, h->socks);
}
