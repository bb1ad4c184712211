/*
 * NAME
 *	test_tn_http - tn_http (libcurl multi on libuv) against a real tn_httpd
 * DESCRIPTION
 *	Client and server share one loop on loopback. No mock of libcurl: every
 *	request crosses a real TCP connection.
 */
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <tn/tn_buf.h>
#include <tn/tn_http.h>
#include <tn/tn_httpd.h>
#include <tn/tn_loop.h>
#include <tn/tn_time.h>

#include "tn_test.h"

#define MAX_HELD 16
#define NCONC 50

struct slow {
    uv_timer_t t;
    struct tn_httpd_req *req;
    char body[64];
};

struct fx {
    uv_loop_t loop;
    struct tn_httpd *srv;
    struct tn_http *http;
    char base[64];
    struct tn_httpd_req *held[MAX_HELD];
    int nheld;
};

struct result {
    int calls;
    enum tn_err err;
    long status;
    char body[256];
    size_t body_len;
    char retry_after[32];
    char ctype[64];
};

static bool path_is(const struct tn_httpd_req_view *v, const char *p)
{
    return v->path_len == strlen(p) && memcmp(v->path, p, v->path_len) == 0;
}

static void slow_closed_cb(uv_handle_t *h)
{
    test_free(h->data);
}

static void slow_cb(uv_timer_t *t)
{
    struct slow *s = t->data;

    tn_httpd_respond(s->req, 200, "text/plain", NULL, s->body, strlen(s->body));
    uv_close((uv_handle_t *)t, slow_closed_cb);
}

static void handler(struct tn_httpd_req *req, const struct tn_httpd_req_view *v, void *arg)
{
    struct fx *f = arg;
    struct tn_buf b;
    size_t hl = 0;
    const char *hv;

    tn_buf_init(&b, 0);
    if (path_is(v, "/echo")) {
        hv = tn_httpd_header_get(v, "x-hdr", &hl);
        tn_buf_printf(&b, "%.*s %.*s [%.*s] ", (int)v->method_len, v->method, (int)v->path_len,
                      v->path, (int)hl, hv != NULL ? hv : "");
        tn_buf_add(&b, v->body, v->body_len);
        tn_httpd_respond(req, 200, "text/x-echo", NULL, b.data, b.len);
    } else if (path_is(v, "/len")) {
        tn_buf_printf(&b, "%zu", v->body_len);
        tn_httpd_respond(req, 200, "text/plain", NULL, b.data, b.len);
    } else if (path_is(v, "/auth")) {
        hv = tn_httpd_header_get(v, "Authorization", &hl);
        tn_httpd_respond(req, 200, "text/plain", NULL, hv, hl);
    } else if (path_is(v, "/busy")) {
        tn_httpd_respond(req, 503, "text/plain", "Retry-After: 7\r\n", "later", 5);
    } else if (path_is(v, "/big")) {
        char *big = test_malloc(65536);

        memset(big, 'x', 65536);
        tn_httpd_respond(req, 200, "application/octet-stream", NULL, big, 65536);
        test_free(big);
    } else if (path_is(v, "/slow")) {
        struct slow *s = test_calloc(1, sizeof(*s));

        s->req = req;
        snprintf(s->body, sizeof(s->body), "q=%.*s", (int)v->query_len,
                 v->query != NULL ? v->query : "");
        uv_timer_init(&f->loop, &s->t);
        s->t.data = s;
        uv_timer_start(&s->t, slow_cb, 50, 0);
    } else if (path_is(v, "/never")) {
        assert_true(f->nheld < MAX_HELD);
        f->held[f->nheld++] = req;
    } else {
        tn_httpd_respond(req, 404, NULL, NULL, NULL, 0);
    }
    tn_buf_free(&b);
}

static int setup(void **state)
{
    struct fx *f = test_calloc(1, sizeof(*f));
    struct tn_httpd_opts o = {.listen = "127.0.0.1:0",
                              .max_body = 1 << 20,
                              .read_timeout_ms = 5000,
                              .idle_timeout_ms = 5000,
                              .max_conns = 200};

    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->srv = tn_httpd_new(&f->loop, &o, handler, f);
    assert_non_null(f->srv);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", tn_httpd_port(f->srv));
    f->http = tn_http_new(&f->loop, &(struct tn_http_opts){.user_agent = "tern-test"});
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    tn_http_free(f->http);
    for (int i = 0; i < f->nheld; i++)
        tn_httpd_respond(f->held[i], 500, NULL, NULL, NULL, 0);
    tn_httpd_close(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_free(f);
    return 0;
}

static void done_cb(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct result *r = arg;
    const char *h;

    r->calls++;
    r->err = err;
    if (resp == NULL)
        return;
    r->status = resp->status;
    r->body_len = resp->body_len;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)resp->body_len, resp->body);
    h = tn_http_response_header(resp, "retry-after");
    snprintf(r->retry_after, sizeof(r->retry_after), "%s", h != NULL ? h : "");
    h = tn_http_response_header(resp, "CONTENT-TYPE");
    snprintf(r->ctype, sizeof(r->ctype), "%s", h != NULL ? h : "");
}

/* wait_calls - run the loop until *calls reaches n or ms pass. */
static void wait_calls(struct fx *f, const int *calls, int n, int ms)
{
    int64_t end = tn_mono_ms() + ms;

    while (*calls < n && tn_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 1);
    }
}

static void send_wait(struct fx *f, const struct tn_http_request *rq, struct result *r)
{
    assert_int_equal(tn_http_send(f->http, rq, done_cb, r), TN_OK);
    assert_int_equal(r->calls, 0); /* never from inside send */
    wait_calls(f, &r->calls, 1, 5000);
    assert_int_equal(r->calls, 1);
}

static void test_get_post(void **state)
{
    struct fx *f = *state;
    const char *hdrs[] = {"X-Hdr: hello", NULL};
    struct result r = {0};
    char url[128];
    struct tn_http_request rq = {.url = url, .headers = hdrs};

    snprintf(url, sizeof(url), "%s/echo", f->base);
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET /echo [hello] ");
    assert_string_equal(r.ctype, "text/x-echo");

    memset(&r, 0, sizeof(r));
    rq.method = "POST";
    rq.body = "a=1&b=2";
    rq.body_len = 7;
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_OK);
    assert_string_equal(r.body, "POST /echo [hello] a=1&b=2");

    memset(&r, 0, sizeof(r));
    rq.method = "DELETE";
    rq.body = NULL;
    rq.body_len = 0;
    send_wait(f, &rq, &r);
    assert_string_equal(r.body, "DELETE /echo [hello] ");
}

static void test_large_post_and_auth(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char url[128];
    size_t n = 300000;
    char *body = test_malloc(n);
    struct tn_http_request rq = {.method = "PUT", .url = url, .body = body, .body_len = n};

    memset(body, 'z', n);
    snprintf(url, sizeof(url), "%s/len", f->base);
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_OK);
    assert_string_equal(r.body, "300000");
    test_free(body);

    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "%s/auth", f->base);
    rq = (struct tn_http_request){.url = url, .userpwd = "user:pw"};
    send_wait(f, &rq, &r);
    assert_string_equal(r.body, "Basic dXNlcjpwdw==");
}

/* test_form_post - pairs form-encoded in order, empty and NULL values left out */
static void test_form_post(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char url[128];

    snprintf(url, sizeof(url), "%s/echo", f->base);
    assert_int_equal(
        tn_http_form_post(f->http, url,
                          (const char *const[]){"grant_type", "refresh_token", "none", NULL,
                                                "empty", "", "token", "1//a b&c=d+é", NULL},
                          0, 0, done_cb, &r),
        TN_OK);
    for (int64_t t0 = tn_mono_ms(); r.calls == 0 && tn_mono_ms() - t0 < 5000;)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r.err, TN_OK);
    assert_string_equal(
        r.body, "POST /echo [] grant_type=refresh_token&token=1%2F%2Fa%20b%26c%3Dd%2B%C3%A9");
}

static void test_error_status_is_not_transport_error(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char url[128];
    struct tn_http_request rq = {.url = url};

    snprintf(url, sizeof(url), "%s/busy", f->base);
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_OK);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.retry_after, "7");
    assert_string_equal(r.body, "later");

    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "%s/nothing-here", f->base);
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_OK);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.retry_after, "");
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char url[128];
    struct tn_http_request rq = {.url = url, .timeout_ms = 200};
    int64_t t0 = tn_mono_ms();

    snprintf(url, sizeof(url), "%s/never", f->base);
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_ETIMEDOUT);
    assert_true(tn_mono_ms() - t0 >= 190);
    assert_true(tn_mono_ms() - t0 < 2000);
}

static void test_max_response(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char url[128];
    struct tn_http_request rq = {.url = url, .max_response = 1000};

    snprintf(url, sizeof(url), "%s/big", f->base);
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_E2BIG);

    memset(&r, 0, sizeof(r));
    rq.max_response = 65536; /* exactly fits */
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_OK);
    assert_int_equal(r.body_len, 65536);
}

/* whole_cb - count the bytes of a /big answer that are 'x' */
static void whole_cb(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct result *r = arg;

    r->calls++;
    r->err = err;
    for (size_t i = 0; resp != NULL && i < resp->body_len; i++)
        r->body_len += resp->body[i] == 'x';
}

/* test_small_recv_buffer - a 1 KiB receive buffer (tern-agent's) still
 * delivers a 64 KiB body whole */
static void test_small_recv_buffer(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char url[128];

    tn_http_free(f->http);
    f->http = tn_http_new(&f->loop, &(struct tn_http_opts){.recv_buffer = 1024});
    snprintf(url, sizeof(url), "%s/big", f->base);
    assert_int_equal(tn_http_send(f->http, &(struct tn_http_request){.url = url}, whole_cb, &r),
                     TN_OK);
    for (int64_t t0 = tn_mono_ms(); r.calls == 0 && tn_mono_ms() - t0 < 5000;)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, TN_OK);
    assert_int_equal(r.body_len, 65536);
}

static void test_refused(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    char url[128];
    struct tn_http_request rq = {.url = url};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port that was free a moment ago and has no listener */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_EUNAVAIL);

    /* R9: an error return means no callback */
    assert_int_equal(tn_http_send(f->http, &(struct tn_http_request){.url = NULL}, done_cb, &r),
                     TN_EINVAL);
    memset(&r, 0, sizeof(r));
    rq.url = "ftp://127.0.0.1/";
    send_wait(f, &rq, &r);
    assert_int_equal(r.err, TN_EINVAL);
}

static void test_concurrent(void **state)
{
    struct fx *f = *state;
    struct result *r = test_calloc(NCONC, sizeof(*r));
    char url[128];
    int total = 0;
    int64_t t0 = tn_mono_ms();

    for (int i = 0; i < NCONC; i++) {
        snprintf(url, sizeof(url), "%s/slow?%d", f->base, i);
        assert_int_equal(
            tn_http_send(f->http, &(struct tn_http_request){.url = url}, done_cb, &r[i]), TN_OK);
    }
    assert_int_equal(tn_http_pending(f->http), NCONC);
    while (total < NCONC && tn_mono_ms() - t0 < 10000) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 1);
        total = 0;
        for (int i = 0; i < NCONC; i++)
            total += r[i].calls;
    }
    for (int i = 0; i < NCONC; i++) {
        char want[32];

        snprintf(want, sizeof(want), "q=%d", i);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, TN_OK);
        assert_string_equal(r[i].body, want);
    }
    /* 50 handlers sleeping 50 ms each ran in parallel */
    assert_true(tn_mono_ms() - t0 < 2000);
    assert_int_equal(tn_http_pending(f->http), 0);
    test_free(r);
}

struct cancel_ctx {
    struct tn_http *http;
    int calls;
    enum tn_err err;
    enum tn_err resend;
};

static void cancel_cb(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct cancel_ctx *c = arg;

    assert_null(resp);
    c->calls++;
    c->err = err;
    c->resend = tn_http_send(c->http, &(struct tn_http_request){.url = "http://127.0.0.1:1/"},
                             cancel_cb, c);
}

static void test_free_cancels_in_flight(void **state)
{
    struct fx *f = *state;
    struct cancel_ctx c[3];
    char url[128];

    memset(c, 0, sizeof(c));
    snprintf(url, sizeof(url), "%s/never", f->base);
    for (int i = 0; i < 3; i++) {
        c[i].http = f->http;
        assert_int_equal(
            tn_http_send(f->http, &(struct tn_http_request){.url = url}, cancel_cb, &c[i]), TN_OK);
    }
    wait_calls(f, &f->nheld, 3, 5000);
    assert_int_equal(f->nheld, 3);
    tn_http_free(f->http);
    f->http = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].err, TN_ECANCELED);
        assert_int_equal(c[i].resend, TN_ECANCELED); /* no second callback */
    }
}

struct free_in_cb {
    struct tn_http *http;
    int calls;
};

static void free_in_cb(const struct tn_http_response *resp, enum tn_err err, void *arg)
{
    struct free_in_cb *c = arg;

    (void)resp;
    (void)err;
    c->calls++;
    tn_http_free(c->http); /* the other transfer gets TN_ECANCELED from here */
}

static void test_free_from_callback(void **state)
{
    struct fx *f = *state;
    struct free_in_cb c = {.http = f->http};
    struct result other = {0};
    char url[128], url2[128];

    snprintf(url, sizeof(url), "%s/echo", f->base);
    snprintf(url2, sizeof(url2), "%s/never", f->base);
    assert_int_equal(tn_http_send(f->http, &(struct tn_http_request){.url = url2}, done_cb, &other),
                     TN_OK);
    assert_int_equal(tn_http_send(f->http, &(struct tn_http_request){.url = url}, free_in_cb, &c),
                     TN_OK);
    wait_calls(f, &c.calls, 1, 5000);
    f->http = NULL;
    assert_int_equal(c.calls, 1);
    assert_int_equal(other.calls, 1);
    assert_int_equal(other.err, TN_ECANCELED);
}

/* test_idle_connection_closed - tn_http keeps a connection's socket watched
 * between transfers (tn_http.c, "Per-transfer cost"): requests one after
 * another share the connection; when the server closes it while idle, the
 * watcher sees that, and the next request gets a new connection (whose
 * descriptor is likely the same number) and its answer. The idle
 * watcher must not keep the loop alive either. */
static void test_idle_connection_closed(void **state)
{
    struct fx *f = *state;
    struct tn_httpd *quick = tn_httpd_new(&f->loop,
                                          &(struct tn_httpd_opts){.listen = "127.0.0.1:0",
                                                                  .max_body = 1 << 20,
                                                                  .read_timeout_ms = 5000,
                                                                  .idle_timeout_ms = 100,
                                                                  .max_conns = 10},
                                          handler, f);
    struct result r = {0};
    char url[128];
    struct tn_http_request rq = {.url = url, .method = "POST", .body = "x", .body_len = 1};
    uv_loop_t idle_loop;
    struct tn_http *h;

    assert_non_null(quick);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", tn_httpd_port(quick));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++) { /* back to back: one kept connection */
            memset(&r, 0, sizeof(r));
            send_wait(f, &rq, &r);
            assert_int_equal(r.err, TN_OK);
            assert_string_equal(r.body, "POST /echo [] x");
        }
        wait_calls(f, &r.calls, 2, 300); /* the server closes it meanwhile */
    }
    tn_httpd_close(quick);

    /* a loop with only an idle kept connection on it returns */
    assert_int_equal(uv_loop_init(&idle_loop), 0);
    h = tn_http_new(&idle_loop, NULL);
    snprintf(url, sizeof(url), "%s/echo", f->base);
    memset(&r, 0, sizeof(r));
    assert_int_equal(tn_http_send(h, &rq, done_cb, &r), TN_OK);
    while (r.calls == 0) { /* the server runs on f->loop */
        uv_run(&f->loop, UV_RUN_NOWAIT);
        uv_run(&idle_loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 1);
    }
    assert_int_equal(r.err, TN_OK);
    assert_int_equal(uv_run(&idle_loop, UV_RUN_NOWAIT), 0); /* nothing referenced is left */
    tn_http_free(h);
    uv_run(&idle_loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&idle_loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_post_and_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_form_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_status_is_not_transport_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_recv_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_closed, setup, teardown),
    };

    if (tn_http_global_init() != TN_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
