/*
 * NAME
 *	test_tn_redis_loading - a server that is still loading its data
 * DESCRIPTION
 *	A restarted Redis accepts connections and AUTH while it replays its
 *	AOF, but answers PING with "-LOADING ...". tn_redis must not sit on
 *	such a link forever: it drops it and reconnects until PING succeeds.
 *	The server here is a stand-in on the same loop that speaks just enough
 *	RESP (requests parsed with hiredis's own reader): the first connection
 *	is "loading", later ones answer PONG.
 * RUNS ON
 *	the test's main thread (one loop).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>

struct conn;

struct fake {
    uv_tcp_t listener;
    int accepted;
    struct conn *conns[16]; /* open ones; NULL once closed */
};

struct conn {
    uv_tcp_t tcp;
    struct fake *f;
    int slot;
    redisReader *reader;
    bool loading;
    char buf[4096];
};

/* conn_closed - free a fake connection. Runs on: loop. */
static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    c->f->conns[c->slot] = NULL;
    redisReaderFree(c->reader);
    tn_free(c);
}

/* written - free a reply's buffer. Runs on: loop. */
static void written(uv_write_t *w, int status)
{
    (void)status;
    tn_free(w->data);
    tn_free(w);
}

/* answer - send text on c */
static void answer(struct conn *c, const char *text)
{
    uv_write_t *w = tn_xcalloc(1, sizeof(*w));
    uv_buf_t b = uv_buf_init(tn_xstrdup(text), (unsigned)strlen(text));

    w->data = b.base;
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, written);
}

/* alloc_cb - the connection's one buffer. Runs on: loop. */
static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct conn *c = h->data;

    (void)hint;
    *b = uv_buf_init(c->buf, sizeof(c->buf));
}

/* read_cb - answer each complete command. Runs on: loop. */
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    void *req = NULL;

    if (n < 0) {
        uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    redisReaderFeed(c->reader, b->base, (size_t)n);
    while (redisReaderGetReply(c->reader, &req) == REDIS_OK && req != NULL) {
        redisReply *r = req;
        const char *cmd = r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->str : "";
        if (strcasecmp(cmd, "PING") == 0)
            answer(c, c->loading ? "-LOADING Redis is loading the dataset in memory\r\n"
                                 : "+PONG\r\n");
        else
            answer(c, "+OK\r\n");
        freeReplyObject(r);
        req = NULL;
    }
}

/* on_conn - accept; the first connection is the "loading" one. Runs on: loop. */
static void on_conn(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    struct conn *c = tn_xcalloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    c->reader = redisReaderCreate();
    assert_true(f->accepted < 16);
    c->f = f;
    c->slot = f->accepted;
    f->conns[c->slot] = c;
    c->loading = f->accepted++ == 0;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* tick - keeps the loop turning. Runs on: loop. */
static void tick(uv_timer_t *t)
{
    (void)t;
}

static void test_loading_then_up(void **state)
{
    uv_loop_t loop;
    struct fake f = {0};
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    char url[128];
    uv_timer_t t;

    (void)state;
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &f.listener);
    f.listener.data = &f;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&f.listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f.listener, 8, on_conn), 0);
    uv_tcp_getsockname(&f.listener, (struct sockaddr *)&bound, &len);
    snprintf(url, sizeof(url), "redis://u:p@127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&bound)->sin_port));

    struct tn_redis *r =
        tn_redis_new(&loop, url,
                     &(struct tn_redis_opts){
                         .name = "loading-test", .reconnect_base_ms = 20, .reconnect_cap_ms = 50});
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + 3000;
    while (!tn_redis_connected(r) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(tn_redis_connected(r));
    assert_true(f.accepted >= 2); /* the loading link was given up, a new one made */

    tn_redis_close(r);
    for (int i = 0; i < 16; i++) {
        if (f.conns[i] != NULL && !uv_is_closing((uv_handle_t *)&f.conns[i]->tcp))
            uv_close((uv_handle_t *)&f.conns[i]->tcp, conn_closed);
    }
    uv_close((uv_handle_t *)&f.listener, NULL);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loading_then_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
