/*
 * NAME
 *	test_tn_httpd - tn_httpd against real loopback clients
 * DESCRIPTION
 *	Raw POSIX sockets (non-blocking reads) talk to a tn_httpd on the same
 *	thread: the test pumps the loop with UV_RUN_NOWAIT while it waits for
 *	bytes. Responses are parsed with picohttpparser's phr_parse_response.
 *	Every test ends with tn_httpd_close and uv_loop_close() == 0.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <tn/tn_buf.h>
#include <tn/tn_httpd.h>
#include <tn/tn_loop.h>
#include <tn/tn_time.h>

#include "../../common/src/io/tn_httpd_parse.h"
#include "tn_test.h"

enum mode { M_ECHO, M_ASYNC, M_HOLD };

struct fx {
    uv_loop_t loop;
    struct tn_httpd *h;
    int port;
    enum mode mode;
    int handled;
    struct tn_httpd_req *held;
    const struct tn_httpd_req_view *held_view;
    uv_timer_t delay;
};

struct client {
    int fd;
    char buf[256 * 1024];
    size_t len;
};

struct resp {
    int status;
    char body[4096];
    size_t body_len;
    bool conn_close;
};

/* echo - "METHOD path query\nbody" */
static void echo(struct tn_httpd_req *req, const struct tn_httpd_req_view *v)
{
    struct tn_buf b;

    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "%.*s %.*s %.*s\n", (int)v->method_len, v->method, (int)v->path_len, v->path,
                  (int)v->query_len, v->query != NULL ? v->query : "");
    tn_buf_add(&b, v->body, v->body_len);
    tn_httpd_respond(req, 200, "text/plain", "X-Test: yes\r\n", b.data, b.len);
    tn_buf_free(&b);
}

static void delay_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    struct tn_httpd_req *r = f->held;

    f->held = NULL;
    echo(r, f->held_view);
}

static void handler(struct tn_httpd_req *req, const struct tn_httpd_req_view *v, void *arg)
{
    struct fx *f = arg;

    f->handled++;
    assert_int_equal(v->body[v->body_len], '\0');
    switch (f->mode) {
    case M_ECHO:
        echo(req, v);
        break;
    case M_ASYNC:
        f->held = req;
        f->held_view = v;
        uv_timer_start(&f->delay, delay_cb, 100, 0);
        break;
    case M_HOLD:
        f->held = req;
        f->held_view = v;
        break;
    }
}

static struct fx *fx_new(const struct tn_httpd_opts *o)
{
    struct fx *f = test_calloc(1, sizeof(*f));

    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->delay);
    f->delay.data = f;
    f->h = tn_httpd_new(&f->loop, o, handler, f);
    assert_non_null(f->h);
    f->port = tn_httpd_port(f->h);
    assert_true(f->port > 0);
    return f;
}

static struct tn_httpd_opts default_opts(void)
{
    return (struct tn_httpd_opts){.listen = "127.0.0.1:0",
                                  .max_body = 1024,
                                  .max_header = 4096,
                                  .read_timeout_ms = 300,
                                  .idle_timeout_ms = 5000,
                                  .max_conns = 16};
}

static void fx_free(struct fx *f)
{
    assert_null(f->held); /* a test must answer what it held */
    tn_httpd_close(f->h);
    uv_close((uv_handle_t *)&f->delay, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_free(f);
}

static void pump(struct fx *f, int ms)
{
    int64_t end = tn_mono_ms() + ms;

    while (tn_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 2);
    }
}

static struct client *cl_open(struct fx *f)
{
    struct client *c = test_calloc(1, sizeof(*c));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return c;
}

static void cl_close(struct client *c)
{
    close(c->fd);
    test_free(c);
}

static void cl_send(struct client *c, const void *p, size_t n)
{
    assert_int_equal(send(c->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void cl_sends(struct client *c, const char *s)
{
    cl_send(c, s, strlen(s));
}

/* cl_fill - read what is there; 1 data, 0 EOF/reset, -1 nothing yet */
static int cl_fill(struct client *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1, MSG_DONTWAIT);

    if (n > 0) {
        c->len += (size_t)n;
        return 1;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        return 0;
    return -1;
}

/* try_parse - one complete response off the front of c->buf. */
static bool try_parse(struct client *c, struct resp *r)
{
    struct phr_header hs[32];
    size_t nh = 32, cl = 0, msg_len;
    const char *msg;
    int minor, status;
    int rc = phr_parse_response(c->buf, c->len, &minor, &status, &msg, &msg_len, hs, &nh, 0);

    if (rc <= 0)
        return false;
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < nh; i++) {
        if (hs[i].name_len == 14 && strncasecmp(hs[i].name, "content-length", 14) == 0)
            cl = strtoul(hs[i].value, NULL, 10);
        if (hs[i].name_len == 10 && strncasecmp(hs[i].name, "connection", 10) == 0 &&
            strncasecmp(hs[i].value, "close", 5) == 0)
            r->conn_close = true;
    }
    if (status / 100 == 1)
        cl = 0;
    if (c->len < (size_t)rc + cl)
        return false;
    r->status = status;
    r->body_len = cl < sizeof(r->body) - 1 ? cl : sizeof(r->body) - 1;
    memcpy(r->body, c->buf + rc, r->body_len);
    r->body[r->body_len] = '\0';
    memmove(c->buf, c->buf + rc + cl, c->len - (size_t)rc - cl);
    c->len -= (size_t)rc + cl;
    return true;
}

/* cl_read - wait up to ms for one response; false on EOF or timeout. */
static bool cl_read(struct fx *f, struct client *c, struct resp *r, int ms)
{
    int64_t end = tn_mono_ms() + ms;

    while (tn_mono_ms() < end) {
        if (try_parse(c, r))
            return true;
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (cl_fill(c) == 0)
            return try_parse(c, r);
        poll(NULL, 0, 1);
    }
    return false;
}

/* cl_eof - does the server close within ms (nothing else arriving)? */
static bool cl_eof(struct fx *f, struct client *c, int ms)
{
    int64_t end = tn_mono_ms() + ms;

    while (tn_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (cl_fill(c) == 0)
            return true;
        poll(NULL, 0, 1);
    }
    return false;
}

static void test_echo(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct resp r;

    (void)state;
    cl_sends(c, "POST /hello?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nworld");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /hello x=1\nworld");
    assert_false(r.conn_close);
    cl_close(c);
    fx_free(f);
}

static void test_keepalive_and_pipelining(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct tn_httpd_stats st;
    struct resp r;

    (void)state;
    cl_sends(c, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_string_equal(r.body, "GET /one \n");
    cl_sends(c, "GET /two HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_string_equal(r.body, "GET /two \n");
    /* two requests in one write, one with a body: answered in order */
    cl_sends(c, "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_string_equal(r.body, "POST /a \nabc");
    assert_true(cl_read(f, c, &r, 2000));
    assert_string_equal(r.body, "GET /b \n");
    tn_httpd_stats(f->h, &st);
    assert_int_equal(st.conns_accepted, 1);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.responses[2], 4);
    cl_close(c);
    fx_free(f);
}

static void test_async_pipelined(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct resp r;
    int64_t t0 = tn_mono_ms();

    (void)state;
    f->mode = M_ASYNC;
    cl_sends(c, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_string_equal(r.body, "GET /1 \n");
    assert_true(tn_mono_ms() - t0 >= 90);
    assert_int_equal(f->handled, 1 + (f->held != NULL)); /* the second is not started early */
    assert_true(cl_read(f, c, &r, 2000));
    assert_string_equal(r.body, "GET /2 \n");
    assert_true(tn_mono_ms() - t0 >= 190);
    cl_close(c);
    fx_free(f);
}

static void test_chunked(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct resp r;

    (void)state;
    cl_sends(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    pump(f, 30);
    cl_sends(c, "lo\r\n6\r\n world\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /c \nhello world");
    assert_true(cl_read(f, c, &r, 2000));
    assert_string_equal(r.body, "GET /after \n");
    cl_close(c);
    fx_free(f);
}

static void test_expect_continue(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct resp r;

    (void)state;
    cl_sends(c, "PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 100);
    cl_sends(c, "data");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "PUT /e \ndata");
    cl_close(c);
    fx_free(f);
}

static void test_limits(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct tn_httpd_stats st;
    struct client *c;
    struct resp r;
    char big[8192];

    (void)state;
    /* 413 on Content-Length alone, no body sent */
    c = cl_open(f);
    cl_sends(c, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 413);
    assert_true(r.conn_close);
    assert_true(cl_eof(f, c, 2000));
    cl_close(c);
    /* 413 once a chunked body passes max_body */
    c = cl_open(f);
    cl_sends(c, "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    memset(big, 'a', 600);
    for (int i = 0; i < 2; i++) {
        cl_sends(c, "258\r\n"); /* 600 */
        cl_send(c, big, 600);
        cl_sends(c, "\r\n");
    }
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 413);
    cl_close(c);
    /* 431 for a head over max_header */
    c = cl_open(f);
    memset(big, 'b', sizeof(big));
    cl_sends(c, "GET / HTTP/1.1\r\nX-Big: ");
    cl_send(c, big, sizeof(big));
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 431);
    cl_close(c);
    /* 400 for garbage, 400 for CL + TE, 505 for HTTP/1.2 */
    c = cl_open(f);
    cl_sends(c, "\x01\x02 garbage\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 400);
    cl_close(c);
    c = cl_open(f);
    cl_sends(c, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 400);
    cl_close(c);
    c = cl_open(f);
    cl_sends(c, "GET / HTTP/1.2\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_int_equal(r.status, 505);
    cl_close(c);
    assert_int_equal(f->handled, 0);
    tn_httpd_stats(f->h, &st);
    assert_int_equal(st.limit_body, 2);
    assert_int_equal(st.limit_header, 1);
    assert_int_equal(st.bad_requests, 3);
    assert_int_equal(st.responses[4], 5);
    assert_int_equal(st.responses[5], 1);
    fx_free(f);
}

static void test_read_timeout(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct tn_httpd_stats st;
    struct resp r;
    int64_t t0;
    const char *req = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";

    (void)state;
    /* half a request, then nothing */
    t0 = tn_mono_ms();
    cl_sends(c, "GET / HTTP/1.1\r\nHost:");
    assert_true(cl_read(f, c, &r, 3000));
    assert_int_equal(r.status, 408);
    assert_true(tn_mono_ms() - t0 >= 250);
    assert_true(cl_eof(f, c, 2000));
    cl_close(c);
    /* slow loris: a byte every 50 ms must not keep the request alive */
    c = cl_open(f);
    t0 = tn_mono_ms();
    for (size_t i = 0; i < strlen(req); i++) {
        if (send(c->fd, req + i, 1, MSG_NOSIGNAL) != 1)
            break;
        pump(f, 50);
        if (cl_fill(c) != -1)
            break;
    }
    assert_true(cl_read(f, c, &r, 3000));
    assert_int_equal(r.status, 408);
    assert_true(tn_mono_ms() - t0 < 1000);
    cl_close(c);
    tn_httpd_stats(f->h, &st);
    assert_int_equal(st.limit_timeout, 2);
    assert_int_equal(f->handled, 0);
    fx_free(f);
}

static void test_idle_timeout_and_http10(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f;
    struct client *c;
    struct tn_httpd_stats st;
    struct resp r;

    (void)state;
    o.idle_timeout_ms = 200;
    f = fx_new(&o);
    c = cl_open(f);
    cl_sends(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_false(cl_eof(f, c, 100));
    assert_true(cl_eof(f, c, 1000));
    tn_httpd_stats(f->h, &st);
    assert_int_equal(st.idle_closed, 1);
    cl_close(c);
    /* HTTP/1.0 without keep-alive: closed after the response */
    c = cl_open(f);
    cl_sends(c, "GET /old HTTP/1.0\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_true(r.conn_close);
    assert_true(cl_eof(f, c, 500));
    cl_close(c);
    /* Connection: close on 1.1 */
    c = cl_open(f);
    cl_sends(c, "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n");
    assert_true(cl_read(f, c, &r, 2000));
    assert_true(r.conn_close);
    assert_true(cl_eof(f, c, 500));
    assert_int_equal(f->handled, 3);
    cl_close(c);
    fx_free(f);
}

static void test_max_conns(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f;
    struct client *a, *b, *x;
    struct tn_httpd_stats st;
    struct resp r;

    (void)state;
    o.max_conns = 2;
    f = fx_new(&o);
    a = cl_open(f);
    b = cl_open(f);
    pump(f, 50);
    x = cl_open(f);
    assert_true(cl_eof(f, x, 1000));
    cl_sends(a, "GET /a HTTP/1.1\r\n\r\n");
    assert_true(cl_read(f, a, &r, 2000));
    cl_sends(b, "GET /b HTTP/1.1\r\n\r\n");
    assert_true(cl_read(f, b, &r, 2000));
    tn_httpd_stats(f->h, &st);
    assert_int_equal(st.conns_accepted, 2);
    assert_int_equal(st.conns_rejected, 1);
    assert_int_equal(st.conns_open, 2);
    cl_close(a);
    cl_close(b);
    cl_close(x);
    pump(f, 50);
    tn_httpd_stats(f->h, &st);
    assert_int_equal(st.conns_open, 0);
    fx_free(f);
}

static void test_client_gone_before_async_respond(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct tn_httpd_req *req;

    (void)state;
    f->mode = M_HOLD;
    cl_sends(c, "POST /gone HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    pump(f, 50);
    assert_non_null(f->held);
    cl_close(c);
    pump(f, 50);
    assert_int_equal(tn_httpd_active(f->h), 1);
    /* the view is still valid */
    assert_int_equal(f->held_view->body_len, 2);
    assert_memory_equal(f->held_view->body, "hi", 2);
    req = f->held;
    f->held = NULL;
    tn_httpd_respond(req, 200, NULL, NULL, "late", 4);
    pump(f, 50);
    assert_int_equal(tn_httpd_active(f->h), 0);
    fx_free(f);
}

static void test_close_with_request_in_handler(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *c = cl_open(f);
    struct tn_httpd_req *req;

    (void)state;
    f->mode = M_HOLD;
    cl_sends(c, "GET /held HTTP/1.1\r\n\r\n");
    pump(f, 50);
    assert_non_null(f->held);
    tn_httpd_close(f->h);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(cl_eof(f, c, 1000));
    req = f->held;
    f->held = NULL;
    tn_httpd_respond(req, 503, NULL, NULL, NULL, 0); /* only frees */
    uv_close((uv_handle_t *)&f->delay, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    cl_close(c);
    test_free(f);
}

static void test_drain(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    struct client *busy = cl_open(f);
    struct client *idle = cl_open(f);
    struct tn_httpd_req *req;
    struct resp r;

    (void)state;
    f->mode = M_HOLD;
    cl_sends(busy, "GET /busy HTTP/1.1\r\n\r\n");
    pump(f, 50);
    assert_non_null(f->held);
    tn_httpd_stop_accepting(f->h);
    assert_true(cl_eof(f, idle, 1000)); /* idle keep-alive connection closed */
    assert_int_equal(tn_httpd_active(f->h), 1);
    req = f->held;
    f->held = NULL;
    echo(req, f->held_view);
    assert_true(cl_read(f, busy, &r, 2000));
    assert_int_equal(r.status, 200);
    assert_true(r.conn_close);
    assert_true(cl_eof(f, busy, 2000));
    assert_int_equal(tn_httpd_active(f->h), 0);
    cl_close(busy);
    cl_close(idle);
    fx_free(f);
}

static void test_listen_failed(void **state)
{
    struct tn_httpd_opts o = default_opts();
    struct fx *f = fx_new(&o);
    char addr[64];
    struct tn_httpd *h2;

    (void)state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
    o.listen = addr;
    h2 = tn_httpd_new(&f->loop, &o, handler, f); /* port taken */
    assert_null(h2);
    o.listen = "not-an-address";
    assert_null(tn_httpd_new(&f->loop, &o, handler, f));
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_keepalive_and_pipelining),
        cmocka_unit_test(test_async_pipelined),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_read_timeout),
        cmocka_unit_test(test_idle_timeout_and_http10),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_client_gone_before_async_respond),
        cmocka_unit_test(test_close_with_request_in_handler),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_listen_failed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
