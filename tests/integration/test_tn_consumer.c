/*
 * NAME
 *	test_tn_consumer - tn_consumer against the real redis-server
 * DESCRIPTION
 *	The acceptance tests of the stream foundation:
 *	- entries a consumer in a child process took and never acked (the
 *	  child is SIGKILLed) are reclaimed by another consumer after the
 *	  visibility timeout and handled exactly once each;
 *	- reclaimed entries already delivered more than max_deliveries times go
 *	  to <stream>:dead without reaching the handler, and ids deleted from
 *	  the stream meanwhile (XAUTOCLAIM's third element) are acked;
 *	- a handler that always answers RETRY is called max_deliveries times
 *	  with growing gaps, then the entry is in <stream>:dead with its reason;
 *	- DEAD goes to dead at once; ACKed entries are not delivered again;
 *	- in-flight is bounded by count; stop drains: no new reads, entries in
 *	  the handler still get acked; the loop then closes cleanly.
 *	Setup and inspection use a blocking hiredis connection as tern-admin;
 *	every test has its own stream.
 * RUNS ON
 *	the test's main thread (and one forked child per reclaim test).
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <tn/tn_consumer.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "tn_test.h"

#define MAXN 16

struct fx {
    uv_loop_t loop;
    struct tn_consumer *c;
    char stream[128];
    char ids[MAXN][64];
    int handled[MAXN]; /* per entry index (field "n") */
    uint32_t deliveries[MAXN][8];
    int64_t at[8]; /* retry test: delivery times */
    int calls;
    enum tn_disp disp[MAXN];
    const char *reason;
    struct tn_entry *held[MAXN];
    int nheld;
    int pipe_fd; /* child: report each entry here */
};

/* admin - a blocking connection as tern-admin */
static redisContext *admin(void)
{
    struct tn_redis_url u;
    redisContext *rc;
    redisReply *rep;

    assert_int_equal(tn_redis_url_parse(tn_test_env("TN_TEST_REDIS_URL_ADMIN"), &u), TN_OK);
    rc = redisConnect(u.host, u.port);
    assert_true(rc != NULL && rc->err == 0);
    rep = redisCommand(rc, "AUTH %s %s", u.user, u.password);
    assert_true(rep != NULL && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    tn_redis_url_free(&u);
    return rc;
}

/* add_entries - XADD n entries with n=<i> and kind=<kind>; ids into f->ids */
static void add_entries(struct fx *f, int from, int n, const char *kind)
{
    redisContext *rc = admin();

    for (int i = from; i < from + n; i++) {
        redisReply *rep = redisCommand(rc, "XADD %s * n %d kind %s data %b", f->stream, i, kind,
                                       "bin\0ary", (size_t)7);

        assert_true(rep != NULL && rep->type == REDIS_REPLY_STRING);
        snprintf(f->ids[i], sizeof(f->ids[i]), "%s", rep->str);
        freeReplyObject(rep);
    }
    redisFree(rc);
}

/* pending_count - XPENDING summary count for group g */
static long long pending_count(const char *stream)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "XPENDING %s g", stream);
    long long n;

    assert_true(rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1);
    n = rep->element[0]->integer;
    freeReplyObject(rep);
    redisFree(rc);
    return n;
}

/* dead_field - field `name` of dead entry i of <stream>:dead into out ("" if
 * absent); returns the number of dead entries */
static size_t dead_field(const char *stream, size_t i, const char *name, char *out, size_t size)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "XRANGE %s:dead - +", stream);
    size_t n;

    assert_true(rep != NULL && rep->type == REDIS_REPLY_ARRAY);
    n = rep->elements;
    out[0] = '\0';
    if (i < n) {
        redisReply *fields = rep->element[i]->element[1];

        for (size_t k = 0; k + 1 < fields->elements; k += 2) {
            if (strcmp(fields->element[k]->str, name) == 0)
                snprintf(out, size, "%s", fields->element[k + 1]->str);
        }
    }
    freeReplyObject(rep);
    redisFree(rc);
    return n;
}

/* cleanup - delete the test's streams */
static void cleanup(const char *stream)
{
    redisContext *rc = admin();

    freeReplyObject(redisCommand(rc, "DEL %s %s:dead", stream, stream));
    redisFree(rc);
}

/* entry_index - the "n" field of e */
static int entry_index(const struct tn_entry *e)
{
    const char *v = tn_entry_field(e, "n", NULL);
    long n;

    assert_non_null(v);
    n = strtol(v, NULL, 10);
    assert_true(n >= 0 && n < MAXN);
    return (int)n;
}

/* tick_cb - keeps UV_RUN_ONCE from blocking */
static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* run - run f's loop for ms, or until pred(f) */
static bool run(struct fx *f, bool (*pred)(struct fx *), int ms)
{
    uv_timer_t tick;
    uint64_t end;
    bool ok = false;

    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    uv_update_time(&f->loop);
    end = uv_now(&f->loop) + (uint64_t)ms;
    while (uv_now(&f->loop) < end) {
        ok = pred != NULL && pred(f);
        if (ok)
            break;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return ok;
}

/* finish - free the consumer; the loop must close cleanly */
static void finish(struct fx *f)
{
    tn_consumer_free(f->c);
    f->c = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* stats - the consumer's counters */
static struct tn_consumer_stats stats(struct fx *f)
{
    struct tn_consumer_stats st;

    tn_consumer_stats(f->c, &st);
    return st;
}

/* start - a consumer "name" on f->stream, group "g" */
static void start(struct fx *f, const char *name, struct tn_consumer_opts o,
                  tn_consumer_entry_fn *fn)
{
    o.stream = f->stream;
    o.group = "g";
    o.consumer = name;
    f->c = tn_consumer_new(&f->loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"), &o, fn, f);
    assert_non_null(f->c);
}

/* ---- (a) SIGKILLed consumer: reclaim, exactly once ---- */

/* child_cb - take the entry, tell the parent, never finish */
static void child_cb(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct fx *f = arg;

    (void)c;
    (void)e;
    (void)!write(f->pipe_fd, "x", 1);
}

/* child_main - a consumer in a child process that is killed mid-handler */
static _Noreturn void child_main(struct fx *f, int fd)
{
    f->pipe_fd = fd;
    uv_loop_init(&f->loop);
    f->c = tn_consumer_new(
        &f->loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"),
        &(struct tn_consumer_opts){
            .stream = f->stream, .group = "g", .consumer = "child", .count = 10, .block_ms = 200},
        child_cb, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    _exit(1);
}

/* spawn_and_kill - a child consumer takes n entries and is SIGKILLed */
static void spawn_and_kill(struct fx *f, int n)
{
    int fds[2];
    pid_t pid;
    int got = 0, status;

    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(f, fds[1]);
    }
    close(fds[1]);
    while (got < n) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        char buf[16];
        ssize_t r;

        assert_true(poll(&p, 1, 10000) == 1);
        r = read(fds[0], buf, sizeof(buf));
        assert_true(r > 0);
        got += (int)r;
    }
    assert_int_equal(got, n);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    close(fds[0]);
}

/* ack_cb - count, record the delivery count, ack */
static void ack_cb(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct fx *f = arg;
    int i = entry_index(e);
    size_t len = 0;
    const char *data = tn_entry_field(e, "data", &len);

    assert_non_null(data);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "bin\0ary", 7);
    assert_string_equal(e->id, f->ids[i]);
    assert_string_equal(e->stream, f->stream);
    f->deliveries[i][f->handled[i] < 8 ? f->handled[i] : 7] = e->deliveries;
    f->handled[i]++;
    f->calls++;
    tn_consumer_done(c, e, f->disp[i], f->reason);
}

/* five_acked - predicate */
static bool five_acked(struct fx *f)
{
    return stats(f).acked >= 5;
}

/* test_reclaim_after_kill - (a) */
static void test_reclaim_after_kill(void **state)
{
    static struct fx f;
    struct tn_consumer_stats st;
    uint64_t t0;

    (void)state;
    memset(&f, 0, sizeof(f));
    tn_test_unique("tern:test:reclaim", f.stream, sizeof(f.stream));
    add_entries(&f, 0, 5, "ack");
    spawn_and_kill(&f, 5);
    assert_int_equal(pending_count(f.stream), 5);

    uv_loop_init(&f.loop);
    uv_update_time(&f.loop);
    t0 = uv_now(&f.loop);
    start(&f, "survivor",
          (struct tn_consumer_opts){
              .count = 8, .block_ms = 200, .visibility_ms = 1000, .claim_interval_ms = 100},
          ack_cb);
    assert_true(run(&f, five_acked, 10000));
    assert_true(uv_now(&f.loop) - t0 >= 900); /* not before the visibility timeout */
    run(&f, NULL, 1500);                      /* nothing comes twice */
    st = stats(&f);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f.handled[i], 1);
        assert_int_equal(f.deliveries[i][0], 2); /* the child's, then ours */
    }
    assert_int_equal(st.acked, 5);
    assert_int_equal(st.reclaimed, 5);
    assert_int_equal(st.dead, 0);
    assert_int_equal(pending_count(f.stream), 0);
    finish(&f);
    cleanup(f.stream);
}

/* never_cb - the handler must not see these entries */
static void never_cb(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct fx *f = arg;

    f->calls++;
    tn_consumer_done(c, e, TN_DISP_ACK, NULL);
}

/* two_dead - predicate */
static bool two_dead(struct fx *f)
{
    return stats(f).dead >= 2 && pending_count(f->stream) == 0;
}

/* test_reclaim_past_limit - reclaimed entries over max_deliveries go to dead
 * without the handler; an id deleted from the stream is just acked */
static void test_reclaim_past_limit(void **state)
{
    static struct fx f;
    char v[128];
    redisContext *rc;

    (void)state;
    memset(&f, 0, sizeof(f));
    tn_test_unique("tern:test:limit", f.stream, sizeof(f.stream));
    add_entries(&f, 0, 3, "crash");
    spawn_and_kill(&f, 3);
    rc = admin();
    freeReplyObject(redisCommand(rc, "XDEL %s %s", f.stream, f.ids[2]));
    redisFree(rc);

    uv_loop_init(&f.loop);
    start(&f, "survivor",
          (struct tn_consumer_opts){.count = 8,
                                    .block_ms = 200,
                                    .visibility_ms = 300,
                                    .claim_interval_ms = 100,
                                    .max_deliveries = 1},
          never_cb);
    assert_true(run(&f, two_dead, 10000));
    run(&f, NULL, 500);
    assert_int_equal(f.calls, 0);
    assert_int_equal(stats(&f).dead, 2);
    assert_int_equal(dead_field(f.stream, 0, "dead_reason", v, sizeof(v)), 2);
    assert_string_equal(v, "max_deliveries");
    dead_field(f.stream, 0, "dead_deliveries", v, sizeof(v));
    assert_string_equal(v, "2");
    dead_field(f.stream, 0, "kind", v, sizeof(v));
    assert_string_equal(v, "crash");
    assert_int_equal(pending_count(f.stream), 0); /* the deleted one is acked too */
    finish(&f);
    cleanup(f.stream);
}

/* ---- (b) RETRY with growing gaps, then dead ---- */

/* retry_cb - always RETRY; record when */
static void retry_cb(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct fx *f = arg;

    if (f->calls < 8) {
        f->at[f->calls] = tn_mono_ms();
        f->deliveries[0][f->calls] = e->deliveries;
    }
    f->calls++;
    tn_consumer_done(c, e, TN_DISP_RETRY, "always-retry");
}

/* one_dead - predicate */
static bool one_dead(struct fx *f)
{
    return stats(f).dead >= 1;
}

/* test_retry_then_dead - (b) */
static void test_retry_then_dead(void **state)
{
    static struct fx f;
    char v[128];
    int64_t gap[3];

    (void)state;
    memset(&f, 0, sizeof(f));
    tn_test_unique("tern:test:retry", f.stream, sizeof(f.stream));
    uv_loop_init(&f.loop);
    start(&f, "solo",
          (struct tn_consumer_opts){.count = 4,
                                    .block_ms = 200,
                                    .visibility_ms = 10000,
                                    .claim_interval_ms = 5000,
                                    .max_deliveries = 4,
                                    .retry_base_ms = 100,
                                    .retry_cap_ms = 2000},
          retry_cb);
    run(&f, NULL, 300); /* the group exists once the consumer is up */
    add_entries(&f, 0, 1, "retry");
    assert_true(run(&f, one_dead, 10000));
    run(&f, NULL, 300);
    assert_int_equal(f.calls, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f.deliveries[0][i], i + 1);
    for (int i = 0; i < 3; i++) {
        gap[i] = f.at[i + 1] - f.at[i];
        print_message("gap %d: %lld ms\n", i, (long long)gap[i]);
        assert_true(gap[i] >= (100 << i) / 2 - 5); /* equal jitter: at least d/2 */
        assert_true(gap[i] < 3000);
    }
    assert_true(gap[2] > gap[0]);
    assert_true(gap[2] + gap[1] > 2 * gap[0]);
    assert_int_equal(stats(&f).retried, 3);
    assert_int_equal(dead_field(f.stream, 0, "dead_reason", v, sizeof(v)), 1);
    assert_string_equal(v, "always-retry");
    dead_field(f.stream, 0, "dead_from_id", v, sizeof(v));
    assert_string_equal(v, f.ids[0]);
    dead_field(f.stream, 0, "dead_deliveries", v, sizeof(v));
    assert_string_equal(v, "4");
    dead_field(f.stream, 0, "kind", v, sizeof(v));
    assert_string_equal(v, "retry");
    dead_field(f.stream, 0, "dead_at", v, sizeof(v));
    assert_int_equal(strlen(v), 24); /* 2026-01-07T10:21:03.114Z */
    assert_int_equal(pending_count(f.stream), 0);
    finish(&f);
    cleanup(f.stream);
}

/* ---- (c) DEAD at once; ACK not redelivered ---- */

/* acked_and_dead - predicate */
static bool acked_and_dead(struct fx *f)
{
    struct tn_consumer_stats st = stats(f);

    return st.acked >= 2 && st.dead >= 1;
}

/* test_dead_and_ack - (c) */
static void test_dead_and_ack(void **state)
{
    static struct fx f;
    char v[128];

    (void)state;
    memset(&f, 0, sizeof(f));
    tn_test_unique("tern:test:dead", f.stream, sizeof(f.stream));
    f.disp[1] = TN_DISP_DEAD;
    f.reason = "bad payload";
    uv_loop_init(&f.loop);
    start(&f, "solo",
          (struct tn_consumer_opts){.count = 4,
                                    .block_ms = 200,
                                    .visibility_ms = 300,
                                    .claim_interval_ms = 100,
                                    .max_deliveries = 3},
          ack_cb);
    run(&f, NULL, 300);
    add_entries(&f, 0, 3, "mixed");
    assert_true(run(&f, acked_and_dead, 5000));
    run(&f, NULL, 1000); /* past visibility: an acked entry would be reclaimed */
    assert_int_equal(f.calls, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f.handled[i], 1);
    assert_int_equal(stats(&f).reclaimed, 0);
    assert_int_equal(dead_field(f.stream, 0, "dead_reason", v, sizeof(v)), 1);
    assert_string_equal(v, "bad payload");
    dead_field(f.stream, 0, "dead_deliveries", v, sizeof(v));
    assert_string_equal(v, "1");
    dead_field(f.stream, 0, "n", v, sizeof(v));
    assert_string_equal(v, "1");
    assert_int_equal(pending_count(f.stream), 0);
    finish(&f);
    cleanup(f.stream);
}

/* ---- (d) bounded in-flight and drain ---- */

/* hold_cb - keep the entry; the test finishes it later */
static void hold_cb(struct tn_consumer *c, struct tn_entry *e, void *arg)
{
    struct fx *f = arg;

    (void)c;
    f->calls++;
    f->held[f->nheld++] = e;
}

/* two_held - predicate */
static bool two_held(struct fx *f)
{
    return f->nheld >= 2;
}

/* drained - predicate */
static bool drained(struct fx *f)
{
    return tn_consumer_inflight(f->c) == 0;
}

/* release_cb - the handler finishes its entries, later */
static void release_cb(uv_timer_t *t)
{
    struct fx *f = t->data;

    for (int i = 0; i < f->nheld; i++)
        tn_consumer_done(f->c, f->held[i], TN_DISP_ACK, NULL);
    f->nheld = 0;
    uv_close((uv_handle_t *)t, NULL);
}

/* test_drain - (d) */
static void test_drain(void **state)
{
    static struct fx f;
    static uv_timer_t later;

    (void)state;
    memset(&f, 0, sizeof(f));
    tn_test_unique("tern:test:drain", f.stream, sizeof(f.stream));
    uv_loop_init(&f.loop);
    start(&f, "solo",
          (struct tn_consumer_opts){
              .count = 2, .block_ms = 200, .visibility_ms = 60000, .claim_interval_ms = 100},
          hold_cb);
    run(&f, NULL, 300);
    add_entries(&f, 0, 3, "drain");
    assert_true(run(&f, two_held, 5000));
    run(&f, NULL, 500);
    assert_int_equal(f.calls, 2); /* count = 2: the third waits */
    assert_int_equal(tn_consumer_inflight(f.c), 2);

    tn_consumer_stop(f.c);
    add_entries(&f, 3, 2, "after-stop");
    uv_timer_init(&f.loop, &later);
    later.data = &f;
    uv_timer_start(&later, release_cb, 200, 0);
    run(&f, NULL, 100);
    assert_int_equal(tn_consumer_inflight(f.c), 2); /* still in the handler */
    assert_true(run(&f, drained, 5000));
    run(&f, NULL, 500);
    assert_int_equal(f.calls, 2); /* nothing read after stop */
    assert_int_equal(stats(&f).acked, 2);
    assert_int_equal(pending_count(f.stream), 0);
    finish(&f);
    cleanup(f.stream);
}

/* test_free_mid_handler - free while the handler holds entries: done() after
 * free is harmless, the loop still closes, the entries stay pending */
static void test_free_mid_handler(void **state)
{
    static struct fx f;

    (void)state;
    memset(&f, 0, sizeof(f));
    tn_test_unique("tern:test:free", f.stream, sizeof(f.stream));
    uv_loop_init(&f.loop);
    start(&f, "solo", (struct tn_consumer_opts){.count = 4, .block_ms = 200}, hold_cb);
    run(&f, NULL, 300);
    add_entries(&f, 0, 2, "free");
    assert_true(run(&f, two_held, 5000));
    tn_consumer_free(f.c);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    for (int i = 0; i < f.nheld; i++)
        tn_consumer_done(f.c, f.held[i], TN_DISP_ACK, NULL);
    f.c = NULL;
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    assert_int_equal(pending_count(f.stream), 2);
    cleanup(f.stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reclaim_after_kill),
        cmocka_unit_test(test_reclaim_past_limit),
        cmocka_unit_test(test_retry_then_dead),
        cmocka_unit_test(test_dead_and_ack),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_free_mid_handler),
    };

    tn_log_init("test", TN_LOG_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
