/*
 * NAME
 *	test_tn_redis_restart - tn_redis survives a Redis restart
 * DESCRIPTION
 *	Kills the redis-server that scripts/test started (SIGKILL, the pid in
 *	TN_TEST_REDIS_PIDFILE), checks that the link is reported down and that
 *	commands fail fast with TN_EUNAVAIL, starts it again with
 *	TN_TEST_REDIS_START, and checks that tn_redis reconnects by itself and
 *	that commands work again. The server is always started again, even
 *	when an assertion fails. This takes the server away from every other
 *	test: it must run alone (ctest RUN_SERIAL).
 * RUNS ON
 *	the test's main thread.
 */
#include <errno.h>
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

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_redis.h>

#include "tn_test.h"

struct calls {
    int n;
    int by_err[16];
    char str[64];
};

/* tick_cb - keeps UV_RUN_ONCE from blocking */
static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* run_for - run the loop until tn_redis_connected(r) == want_connected or ms pass */
static bool run_for(uv_loop_t *loop, struct tn_redis *r, bool want_connected, int ms)
{
    uv_timer_t tick;
    uint64_t end;
    bool ok = false;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    uv_update_time(loop);
    end = uv_now(loop) + (uint64_t)ms;
    while (uv_now(loop) < end) {
        ok = tn_redis_connected(r) == want_connected;
        if (ok)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

/* record_cb - count replies by error */
static void record_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct calls *c = arg;

    (void)r;
    c->n++;
    c->by_err[err]++;
    if (reply != NULL && reply->str != NULL)
        snprintf(c->str, sizeof(c->str), "%s", reply->str);
}

/* redis_pid - the pid in the pidfile, 0 if none */
static pid_t redis_pid(void)
{
    FILE *f = fopen(tn_test_env("TN_TEST_REDIS_PIDFILE"), "r");
    long pid = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* redis_kill - SIGKILL redis and wait until it is gone */
static void redis_kill(void)
{
    pid_t pid = redis_pid();

    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    for (int i = 0; i < 500 && kill(pid, 0) == 0; i++)
        usleep(10000);
}

/* redis_port - TN_TEST_REDIS_PORT as a number */
static int redis_port(void)
{
    return (int)strtol(tn_test_env("TN_TEST_REDIS_PORT"), NULL, 10);
}

/* redis_up - does something accept connections on the port */
static bool redis_up(void)
{
    redisContext *rc = redisConnect("127.0.0.1", redis_port());
    bool up = rc != NULL && rc->err == 0;

    redisFree(rc);
    return up;
}

/* redis_start - run TN_TEST_REDIS_START (it daemonizes) and wait for PONG */
static bool redis_start(void)
{
    const char *script = tn_test_env("TN_TEST_REDIS_START");
    int status = -1;
    pid_t pid = fork();

    if (pid == 0) {
        execl("/bin/sh", "sh", script, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return false;
    for (int i = 0; i < 200; i++) {
        if (redis_up())
            return true;
        usleep(25000);
    }
    return false;
}

/* test_restart - down: TN_EUNAVAIL and pending commands fail; up again:
 * reconnected without help, commands work */
static void test_restart(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0}, pending = {0};
    char key[96];

    (void)state;
    tn_test_unique("tern:test:restart", key, sizeof(key));
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"),
                     &(struct tn_redis_opts){
                         .name = "test-restart", .reconnect_base_ms = 50, .reconnect_cap_ms = 200});
    assert_true(run_for(&loop, r, true, 5000));
    /* A BLPOP is in flight when the server dies: it must fail, once. */
    assert_int_equal(tn_redis_argv_timeout(r, 30000, 3, (const char *[]){"BLPOP", key, "0"}, NULL,
                                           record_cb, &pending),
                     TN_OK);
    run_for(&loop, r, false, 50);

    redis_kill();
    assert_true(run_for(&loop, r, false, 5000));
    assert_int_equal(pending.n, 1);
    assert_int_equal(pending.by_err[TN_EUNAVAIL], 1);
    assert_int_equal(tn_redis_ping(r, record_cb, &c), TN_EUNAVAIL);
    run_for(&loop, r, true, 300); /* a few refused reconnects */
    assert_false(tn_redis_connected(r));

    assert_true(redis_start());
    assert_true(run_for(&loop, r, true, 10000));
    assert_int_equal(tn_redis_ping(r, record_cb, &c), TN_OK);
    for (int i = 0; i < 500 && c.n == 0; i++)
        run_for(&loop, r, false, 10);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.by_err[TN_OK], 1);
    assert_string_equal(c.str, "PONG");
    assert_int_equal(pending.n, 1); /* still exactly once */

    tn_redis_close(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ensure_up - whatever happened, leave Redis running for the other tests */
static int ensure_up(void **state)
{
    (void)state;
    if (!redis_up() && !redis_start())
        return -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_restart, ensure_up),
    };

    tn_log_init("test", TN_LOG_INFO);
    return cmocka_run_group_tests(tests, NULL, ensure_up);
}
