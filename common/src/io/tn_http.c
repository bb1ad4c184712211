/*
 * NAME
 *	tn_http - asynchronous HTTP client (libcurl multi on libuv)
 * DESCRIPTION
 *	The shape of curl's docs/examples/multi-uv.c: CURLMOPT_SOCKETFUNCTION
 *	starts/stops one uv_poll_t per socket curl wants watched,
 *	CURLMOPT_TIMERFUNCTION drives one uv_timer_t, and every poll or timer
 *	event calls curl_multi_socket_action and then reaps finished transfers
 *	with curl_multi_info_read. A transfer's done callback runs from that reap,
 *	never from inside a libcurl call, so it may start new transfers or free
 *	the client.
 *
 *	Bounds: CURLOPT_TIMEOUT_MS per transfer; the response body goes into a
 *	tn_buf capped at max_response, and the write callback aborts the
 *	transfer on the first byte past it (CURLOPT_MAXFILESIZE_LARGE also stops
 *	a declared-too-big body before it is read).
 *
 *	Response headers are looked up with curl_easy_header (libcurl >= 7.83),
 *	case-insensitively, from the final response.
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
 *	Easy handles go back to a free list (curl_easy_reset) instead of being
 *	made and destroyed per transfer.
 * RUNS ON
 *	loop. tn_http_global_init: the main thread before other threads start.
 * DIAGNOSTICS
 *	http.failed (warn): a transfer ended in a transport error; carries
 *	libcurl's message, never the URL (provider URLs may carry tokens) or
 *	any body.
 */
#include <tn/tn_http.h>

#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/socket.h>

#include <curl/curl.h>

#include <tn/tn_buf.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>

struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct tn_http *h;
    struct http_sock *prev, *next;
    int events; /* what poll is started for (0: stopped) */
    bool owned; /* opened by open_fn, closed by close_fn; listed in h->byfd */
    bool idle;  /* owned, and curl said CURL_POLL_REMOVE: unreferenced */
};

#define EASY_POOL_MAX 1024 /* easy handles kept for reuse */

struct tn_http_xfer {
    struct tn_http *h;
    struct tn_http_xfer *prev, *next;
    CURL *easy;
    struct curl_slist *hdrs;
    struct tn_buf body;
    bool too_big;
    tn_http_done_fn *done;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

struct tn_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct tn_http_opts o;
    char *ua;
    struct tn_http_xfer *xfers;
    struct http_sock *socks;
    struct http_sock **byfd; /* owned sockets by descriptor */
    size_t nbyfd;
    CURL **easy_pool; /* reset easy handles, ready for a transfer */
    size_t neasy, easy_cap;
    size_t pending;
    bool freeing;
};

enum tn_err tn_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? TN_OK : TN_EUNAVAIL;
}

void tn_http_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- finishing transfers ----------------------------------------------- */

static void xfer_unlink(struct tn_http_xfer *x)
{
    struct tn_http *h = x->h;

    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        h->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    h->pending--;
}

/* easy_get - a reset easy handle from the pool, or a new one (NULL: none) */
static CURL *easy_get(struct tn_http *h)
{
    if (h->neasy > 0)
        return h->easy_pool[--h->neasy];
    return curl_easy_init();
}

/* easy_put - reset e (no option points into a freed transfer any more) and
 * keep it for the next transfer; connections stay in the multi's cache */
static void easy_put(struct tn_http *h, CURL *e)
{
    if (h->freeing || h->neasy == EASY_POOL_MAX) {
        curl_easy_cleanup(e);
        return;
    }
    curl_easy_reset(e);
    if (h->neasy == h->easy_cap) {
        h->easy_cap = h->easy_cap == 0 ? 64 : 2 * h->easy_cap;
        h->easy_pool = tn_xrealloc(h->easy_pool, h->easy_cap * sizeof(*h->easy_pool));
    }
    h->easy_pool[h->neasy++] = e;
}

static void xfer_free(struct tn_http_xfer *x)
{
    if (x->easy != NULL)
        easy_put(x->h, x->easy);
    curl_slist_free_all(x->hdrs);
    tn_buf_free(&x->body);
    tn_free(x);
}

static enum tn_err map_result(const struct tn_http_xfer *x, CURLcode res)
{
    switch (res) {
    case CURLE_OK:
        return TN_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return TN_ETIMEDOUT;
    case CURLE_WRITE_ERROR:
        return x->too_big ? TN_E2BIG : TN_EUNAVAIL;
    case CURLE_FILESIZE_EXCEEDED:
        return TN_E2BIG;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return TN_EINVAL;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return TN_EPROTO;
    default: /* refused, DNS, TLS, reset, got nothing, partial file */
        return TN_EUNAVAIL;
    }
}

/* finish - x completed with res: report once, then release it. */
static void finish(struct tn_http_xfer *x, CURLcode res)
{
    struct tn_http_response resp = {0};
    enum tn_err err = map_result(x, res);
    long status = 0;

    xfer_unlink(x);
    curl_multi_remove_handle(x->h->multi, x->easy);
    if (err == TN_OK) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        resp.status = status;
        resp.body = x->body.data != NULL ? x->body.data : "";
        resp.body_len = x->body.len;
        resp._x = x;
    } else {
        tn_log_warn(
            NULL, "http.failed", TN_KV_ERR(err), TN_KV_INT("curl", (int)res),
            TN_KV_STR("detail", x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(res)));
    }
    x->done(err == TN_OK ? &resp : NULL, err, x->arg);
    xfer_free(x);
}

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
        finish(x, res);
    }
}

/* ---- the libuv side ---------------------------------------------------- */

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct http_sock *sk = p->data;
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

static void sock_closed_cb(uv_handle_t *hd)
{
    tn_free(hd->data);
}

static void sock_close(struct tn_http *h, struct http_sock *sk)
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
static struct http_sock *sock_new(struct tn_http *h, curl_socket_t s)
{
    struct http_sock *sk = tn_xcalloc(1, sizeof(*sk));

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
static void sock_watch(struct http_sock *sk, int events)
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
    struct http_sock *sk;
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
    struct http_sock *sk = socketp;
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

/* ---- creating ------------------------------------------------------------ */

struct tn_http *tn_http_new(struct uv_loop_s *loop, const struct tn_http_opts *o)
{
    struct tn_http *h = tn_xcalloc(1, sizeof(*h));

    if (o != NULL)
        h->o = *o;
    h->ua = tn_xstrdup(h->o.user_agent != NULL ? h->o.user_agent : "tern/1");
    h->o.user_agent = h->ua;
    if (h->o.connect_timeout_ms == 0)
        h->o.connect_timeout_ms = 10000;
    if (h->o.default_timeout_ms == 0)
        h->o.default_timeout_ms = 30000;
    if (h->o.default_max_response == 0)
        h->o.default_max_response = 1024 * 1024;
    h->loop = loop;
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        tn_fatal("http.init_failed", TN_KV_STR("what", "curl_multi_init"));
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_fn);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    if (h->o.max_host_conns > 0)
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->o.max_host_conns);
    if (h->o.max_idle_conns > 0)
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->o.max_idle_conns);
    return h;
}

static size_t write_fn(char *p, size_t size, size_t n, void *userp)
{
    struct tn_http_xfer *x = userp;

    if (tn_buf_add(&x->body, p, size * n) != TN_OK) {
        x->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return size * n;
}

static bool has_header(const char *const *hs, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; hs != NULL && hs[i] != NULL; i++) {
        if (strncasecmp(hs[i], name, nl) == 0 && hs[i][nl] == ':')
            return true;
    }
    return false;
}

static CURLcode set_method(CURL *e, const struct tn_http_request *rq)
{
    const char *m = rq->method != NULL ? rq->method : (rq->body != NULL ? "POST" : "GET");
    CURLcode rc = CURLE_OK;

    if (strcmp(m, "GET") == 0 && rq->body == NULL)
        return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(m, "HEAD") == 0)
        return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (rq->body != NULL || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
        strcmp(m, "PATCH") == 0) {
        rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
                                  rq->body != NULL ? (const char *)rq->body : "");
    }
    if (rc == CURLE_OK && strcmp(m, "POST") != 0)
        rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    return rc;
}

static CURLcode set_options(struct tn_http *h, struct tn_http_xfer *x,
                            const struct tn_http_request *rq)
{
    uint32_t tmo = rq->timeout_ms != 0 ? rq->timeout_ms : h->o.default_timeout_ms;
    uint32_t ctmo = h->o.connect_timeout_ms < tmo ? h->o.connect_timeout_ms : tmo;
    size_t max = rq->max_response != 0 ? rq->max_response : h->o.default_max_response;
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;

    tn_buf_init(&x->body, max);
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++)
        x->hdrs = curl_slist_append(x->hdrs, rq->headers[i]);
    if (!has_header(rq->headers, "Expect")) /* no 1 s wait on servers without 100 */
        x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    if (x->hdrs == NULL)
        tn_fatal("mem.exhausted", TN_KV_STR("what", "curl_slist_append"));
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, rq->url);
    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_WRITEFUNCTION, write_fn);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)tmo);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)ctmo);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, h->ua);
    SET(CURLOPT_HTTPHEADER, x->hdrs);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_fn);
    SET(CURLOPT_OPENSOCKETDATA, (void *)h);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_fn);
    SET(CURLOPT_CLOSESOCKETDATA, (void *)h);
    if (h->o.recv_buffer != 0)
        SET(CURLOPT_BUFFERSIZE, (long)h->o.recv_buffer);
    if (rq->userpwd != NULL) {
        SET(CURLOPT_USERPWD, rq->userpwd);
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
#undef SET
    if (rc == CURLE_OK)
        rc = set_method(e, rq);
    return rc;
}

enum tn_err tn_http_send(struct tn_http *h, const struct tn_http_request *rq, tn_http_done_fn *done,
                         void *arg)
{
    struct tn_http_xfer *x = NULL;
    enum tn_err err = TN_OK;
    CURLcode rc;

    if (h->freeing)
        return TN_ECANCELED;
    if (rq == NULL || rq->url == NULL || done == NULL)
        return TN_EINVAL;
    x = tn_xcalloc(1, sizeof(*x));
    x->h = h;
    x->done = done;
    x->arg = arg;
    x->easy = easy_get(h);
    if (x->easy == NULL) {
        err = TN_EUNAVAIL;
        goto out;
    }
    rc = set_options(h, x, rq);
    if (rc != CURLE_OK) {
        tn_log_warn(NULL, "http.bad_request", TN_KV_STR("detail", curl_easy_strerror(rc)));
        err = TN_EINVAL;
        goto out;
    }
    if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
        err = TN_EUNAVAIL;
        goto out;
    }
    x->next = h->xfers;
    if (h->xfers != NULL)
        h->xfers->prev = x;
    h->xfers = x;
    h->pending++;
    x = NULL; /* owned by the list until finish */
out:
    if (x != NULL)
        xfer_free(x);
    return err;
}

const char *tn_http_response_header(const struct tn_http_response *resp, const char *name)
{
    struct curl_header *hd = NULL;

    if (resp == NULL || resp->_x == NULL)
        return NULL;
    if (curl_easy_header(resp->_x->easy, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
        return NULL;
    return hd->value;
}

size_t tn_http_pending(const struct tn_http *h)
{
    return h->pending;
}

static void http_closed_cb(uv_handle_t *hd)
{
    struct tn_http *h = hd->data;

    tn_free(h->ua);
    tn_free(h->byfd);
    tn_free(h->easy_pool);
    tn_free(h);
}

void tn_http_free(struct tn_http *h)
{
    struct tn_http_xfer *x;

    if (h == NULL || h->freeing)
        return;
    h->freeing = true;
    while ((x = h->xfers) != NULL) {
        xfer_unlink(x);
        curl_multi_remove_handle(h->multi, x->easy);
        x->done(NULL, TN_ECANCELED, x->arg);
        xfer_free(x);
    }
    while (h->neasy > 0)
        curl_easy_cleanup(h->easy_pool[--h->neasy]);
    curl_multi_cleanup(h->multi); /* may still report sockets to sock_fn, close to close_fn */
    h->multi = NULL;
    while (h->socks != NULL)
        sock_close(h, h->socks);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, http_closed_cb);
}
