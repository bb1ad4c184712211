/*
 * NAME
 *	tn_http - asynchronous HTTP client (libcurl multi on libuv)
 * SYNOPSIS
 *	#include <tn/tn_http.h>
 * DESCRIPTION
 *	libcurl's multi interface driven by the loop: tn_http_send adds an easy
 *	handle to the multi handle, and tn_http_sock.c (the shape of curl's
 *	docs/examples/multi-uv.c) watches curl's sockets and timer and reaps
 *	finished transfers with curl_multi_info_read. A transfer's done
 *	callback runs from that reap (tn__http_finish), never from inside a
 *	libcurl call, so it may start new transfers or free the client.
 *
 *	Bounds: CURLOPT_TIMEOUT_MS per transfer; the response body goes into a
 *	tn_buf capped at max_response, and the write callback aborts the
 *	transfer on the first byte past it (CURLOPT_MAXFILESIZE_LARGE also stops
 *	a declared-too-big body before it is read).
 *
 *	Response headers are looked up with curl_easy_header (libcurl >= 7.83),
 *	case-insensitively, from the final response.
 *
 *	Per-transfer cost: easy handles go back to a free list (curl_easy_reset)
 *	instead of being made and destroyed per transfer; the sockets of
 *	connections keep their watchers between transfers (tn_http_sock.c).
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

#include <curl/curl.h>

#include <tn/tn_buf.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>

#include "tn_http_int.h"

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

/* tn__http_finish - x completed with res: report once, then release it. */
void tn__http_finish(struct tn_http_xfer *x, CURLcode res)
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
    tn__http_sock_init(h);
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
    if (rc == CURLE_OK)
        rc = tn__http_sock_easy(h, e);
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

enum tn_err tn_http_form_post(struct tn_http *h, const char *url, const char *const *fields,
                              uint32_t timeout_ms, size_t max_response, tn_http_done_fn *done,
                              void *arg)
{
    static const char *const hdr[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct tn_buf b;
    enum tn_err err;

    tn_buf_init(&b, 0);
    tn_buf_adds(&b, "");
    for (size_t i = 0; fields[i] != NULL; i += 2) {
        char *esc;

        if (fields[i + 1] == NULL || fields[i + 1][0] == '\0')
            continue;
        esc = curl_easy_escape(NULL, fields[i + 1], 0);
        if (esc == NULL)
            tn_fatal("mem.exhausted", TN_KV_STR("what", "curl_easy_escape"));
        tn_buf_printf(&b, "%s%s=%s", b.len > 0 ? "&" : "", fields[i], esc);
        tn_wipe(esc, strlen(esc));
        curl_free(esc);
    }
    err = tn_http_send(h,
                       &(struct tn_http_request){.method = "POST",
                                                 .url = url,
                                                 .headers = hdr,
                                                 .body = b.data,
                                                 .body_len = b.len,
                                                 .timeout_ms = timeout_ms,
                                                 .max_response = max_response},
                       done, arg);
    tn_wipe(b.data, b.len);
    tn_buf_free(&b);
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
    curl_multi_cleanup(h->multi); /* may still call tn_http_sock.c's sock_fn and close_fn */
    h->multi = NULL;
    tn__http_sock_close_all(h);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, http_closed_cb);
}
