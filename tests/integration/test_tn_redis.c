/*
 * NAME
 *	test_tn_redis - tn_redis against the real redis-server of scripts/test
 * DESCRIPTION
 *	Connect with AUTH, run commands, NOPERM as TN_EDENIED, a wrong password
 *	(logged, never connected, password not in the log), a refused port,
 *	command timeouts (a BLPOP that never answers drops and reconnects),
 *	and close with commands in flight (each callback exactly once, with
 *	TN_ECANCELED). Every test ends with uv_loop_close() == 0. The restart
 *	of Redis itself is in test_tn_redis_restart (it must run alone).
 * RUNS ON
 *	the test's main thread (one loop per test).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_redis.h>
#include <tn/tn_script.h>

#include "tn_test.h"

struct calls {
    int n;
    int by_err[16];
    int type;
    long long integer; /* an integer reply, or an array's first integer */
    char str[256];
};

/* tick_cb - keeps UV_RUN_ONCE from blocking forever */
static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* run_until - run the loop until *flag is true or ms pass */
static bool run_until(uv_loop_t *loop, const bool *flag, const int *count, int want, int ms)
{
    uv_timer_t tick;
    uint64_t end;
    bool ok = false;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    uv_update_time(loop);
    end = uv_now(loop) + (uint64_t)ms;
    while (uv_now(loop) < end) {
        ok = (flag != NULL && *flag) || (count != NULL && *count >= want);
        if (ok)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

/* wait_connected - run until r is connected */
static bool wait_connected(uv_loop_t *loop, struct tn_redis *r, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        if (tn_redis_connected(r))
            return true;
        run_until(loop, NULL, NULL, 1, 20);
    }
    return tn_redis_connected(r);
}

/* finish - close r, drain the loop, the loop must close cleanly */
static void finish(uv_loop_t *loop, struct tn_redis *r)
{
    tn_redis_close(r);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* record_cb - count a reply and keep its type and string */
static void record_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct calls *c = arg;

    (void)r;
    c->n++;
    c->by_err[err]++;
    if (err != TN_OK) {
        assert_null(reply);
        return;
    }
    assert_non_null(reply);
    c->type = reply->type;
    c->integer = reply->type == REDIS_REPLY_INTEGER ? reply->integer
                 : reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                         reply->element[0]->type == REDIS_REPLY_INTEGER
                     ? reply->element[0]->integer
                     : -1;
    if (reply->str != NULL)
        snprintf(c->str, sizeof(c->str), "%s", reply->str);
}

/* cmd - send argv and run until it answers */
static void cmd(uv_loop_t *loop, struct tn_redis *r, struct calls *c, int argc, const char **argv)
{
    int before = c->n;

    assert_int_equal(tn_redis_argv(r, argc, argv, NULL, record_cb, c), TN_OK);
    assert_true(run_until(loop, NULL, &c->n, before + 1, 5000));
}

/* test_commands - AUTH, SET/GET with binary data, XADD, PING */
static void test_commands(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0};
    char key[96], stream[96];
    const char *fields[] = {"type", "test", "data", "{\"a\":1}"};
    const char *set[] = {"SET", key, "v\0x"};
    const size_t set_lens[] = {3, 0, 3};
    size_t lens[3];

    (void)state;
    tn_test_unique("tern:test:redis", key, sizeof(key));
    tn_test_unique("tern:test:stream", stream, sizeof(stream));
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"),
                     &(struct tn_redis_opts){.name = "test-redis"});
    assert_non_null(r);
    assert_false(tn_redis_connected(r));
    assert_int_equal(tn_redis_ping(r, record_cb, &c), TN_EUNAVAIL); /* not yet */
    assert_true(wait_connected(&loop, r, 5000));

    memcpy(lens, set_lens, sizeof(lens));
    lens[1] = strlen(key);
    assert_int_equal(tn_redis_argv(r, 3, set, lens, record_cb, &c), TN_OK);
    assert_true(run_until(&loop, NULL, &c.n, 1, 5000));
    assert_int_equal(c.type, REDIS_REPLY_STATUS);
    cmd(&loop, r, &c, 2, (const char *[]){"GET", key});
    assert_int_equal(c.type, REDIS_REPLY_STRING);
    assert_memory_equal(c.str, "v", 2); /* "v\0x": the copy stops at the NUL */

    assert_int_equal(tn_redis_xadd(r, stream, fields, NULL, 4, record_cb, &c), TN_OK);
    assert_true(run_until(&loop, NULL, &c.n, 3, 5000));
    assert_int_equal(c.type, REDIS_REPLY_STRING);
    assert_non_null(strchr(c.str, '-')); /* an entry id */
    assert_int_equal(tn_redis_xadd(r, stream, fields, NULL, 3, record_cb, &c), TN_EINVAL);

    assert_int_equal(tn_redis_ping(r, record_cb, &c), TN_OK);
    assert_true(run_until(&loop, NULL, &c.n, 4, 5000));
    assert_string_equal(c.str, "PONG");
    cmd(&loop, r, &c, 2, (const char *[]){"CLIENT", "GETNAME"});
    assert_string_equal(c.str, "test-redis");
    cmd(&loop, r, &c, 3, (const char *[]){"DEL", key, stream});
    assert_int_equal(c.by_err[TN_OK], c.n);
    finish(&loop, r);
}

/* test_denied - a command outside the ACL gives TN_EDENIED and no reply */
static void test_denied(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0};

    (void)state;
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_INGEST"),
                     &(struct tn_redis_opts){.name = "test-denied"});
    assert_true(wait_connected(&loop, r, 5000));
    cmd(&loop, r, &c, 2, (const char *[]){"KEYS", "*"});
    assert_int_equal(c.by_err[TN_EDENIED], 1);
    cmd(&loop, r, &c, 2, (const char *[]){"GET", "not:a:tern:key"});
    assert_int_equal(c.by_err[TN_EDENIED], 2);
    cmd(&loop, r, &c, 1, (const char *[]){"PING"});
    assert_int_equal(c.by_err[TN_OK], 1);
    assert_true(tn_redis_connected(r)); /* a refusal does not drop the link */
    finish(&loop, r);
}

/* capture_start - send stdout (the log) to a file; returns the saved fd */
static int capture_start(const char *path)
{
    int saved, fd;

    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    return saved;
}

/* capture_end - restore stdout; returns the captured text (new) */
static char *capture_end(int saved, const char *path)
{
    char *buf = tn_xcalloc(1, 65536);
    FILE *f;

    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    f = fopen(path, "r");
    assert_non_null(f);
    (void)!fread(buf, 1, 65535, f);
    fclose(f);
    unlink(path);
    return buf;
}

/* test_wrong_password - auth failure is logged, without the password */
static void test_wrong_password(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0};
    char url[256], path[512], name[64];
    char *log;
    int saved;

    (void)state;
    snprintf(url, sizeof(url), "redis://tern-ctl:Not-The-Pw-7f3a@127.0.0.1:%s",
             tn_test_env("TN_TEST_REDIS_PORT"));
    snprintf(path, sizeof(path), "%s/%s.log", tn_test_env("TN_TEST_TMP"),
             tn_test_unique("wrongpw", name, sizeof(name)));
    uv_loop_init(&loop);
    saved = capture_start(path);
    r = tn_redis_new(&loop, url,
                     &(struct tn_redis_opts){
                         .name = "test-wrongpw", .reconnect_base_ms = 50, .reconnect_cap_ms = 100});
    run_until(&loop, NULL, NULL, 1, 600);
    assert_false(tn_redis_connected(r));
    assert_int_equal(tn_redis_ping(r, record_cb, &c), TN_EUNAVAIL);
    tn_redis_close(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    log = capture_end(saved, path);
    assert_non_null(strstr(log, "\"event\":\"redis.auth_failed\""));
    assert_non_null(strstr(log, "\"user\":\"tern-ctl\""));
    assert_null(strstr(log, "Not-The-Pw-7f3a"));
    assert_null(strstr(log, "redis.connected"));
    assert_non_null(strstr(log, "redis.auth_failed")); /* retried: more than one attempt */
    assert_non_null(strstr(strstr(log, "redis.auth_failed") + 1, "redis.auth_failed"));
    tn_free(log);
    assert_int_equal(c.n, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* test_refused - nothing listens: logged, retried, never connected, closes
 * cleanly */
static void test_refused(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0};
    char path[512], name[64];
    const char *first;
    char *log;
    int saved;

    (void)state;
    snprintf(path, sizeof(path), "%s/%s.log", tn_test_env("TN_TEST_TMP"),
             tn_test_unique("refused", name, sizeof(name)));
    uv_loop_init(&loop);
    saved = capture_start(path);
    r = tn_redis_new(&loop, "redis://127.0.0.1:1",
                     &(struct tn_redis_opts){.name = "refused", .reconnect_base_ms = 20});
    assert_non_null(r);
    run_until(&loop, NULL, NULL, 1, 300);
    assert_false(tn_redis_connected(r));
    assert_int_equal(tn_redis_ping(r, record_cb, &c), TN_EUNAVAIL);
    tn_redis_close(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    log = capture_end(saved, path);
    first = strstr(log, "\"event\":\"redis.connect_failed\"");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "redis.connect_failed")); /* it retried */
    tn_free(log);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_null(tn_redis_new(&loop, "http://x", NULL));
}

/* test_timeout - a command that never answers drops the link: its callback
 * gets TN_EUNAVAIL once, so do commands pipelined behind it; then the link
 * comes back by itself */
static void test_timeout(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0}, behind = {0};
    char key[96];
    uint64_t t0;

    (void)state;
    tn_test_unique("tern:test:never", key, sizeof(key));
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"),
                     &(struct tn_redis_opts){.name = "test-timeout",
                                             .command_timeout_ms = 300,
                                             .reconnect_base_ms = 20});
    assert_true(wait_connected(&loop, r, 5000));
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(tn_redis_argv(r, 3, (const char *[]){"BLPOP", key, "0"}, NULL, record_cb, &c),
                     TN_OK);
    assert_int_equal(tn_redis_ping(r, record_cb, &behind), TN_OK);
    assert_true(run_until(&loop, NULL, &c.n, 1, 3000));
    assert_true(uv_now(&loop) - t0 >= 290);
    assert_int_equal(c.by_err[TN_EUNAVAIL], 1);
    assert_int_equal(behind.by_err[TN_EUNAVAIL], 1);
    assert_true(wait_connected(&loop, r, 3000));

    /* A longer per-command timeout lets a blocking command finish. */
    assert_int_equal(tn_redis_argv_timeout(r, 3000, 3, (const char *[]){"BLPOP", key, "0.5"}, NULL,
                                           record_cb, &c),
                     TN_OK);
    assert_true(run_until(&loop, NULL, &c.n, 2, 5000));
    assert_int_equal(c.by_err[TN_OK], 1);
    assert_int_equal(c.type, REDIS_REPLY_NIL);
    run_until(&loop, NULL, NULL, 1, 100);
    assert_int_equal(c.n, 2); /* exactly once each */
    assert_int_equal(behind.n, 1);
    finish(&loop, r);
}

/* cancel_cb - count cancellations; a second close from a callback is harmless */
static void cancel_cb(struct tn_redis *r, struct redisReply *reply, enum tn_err err, void *arg)
{
    struct calls *c = arg;

    record_cb(r, reply, err, arg);
    if (c->n == 1)
        tn_redis_close(r);
}

/* test_close_pending - close with commands in flight: each callback exactly
 * once, with TN_ECANCELED; close from inside a callback is fine */
static void test_close_pending(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0}, d = {0};

    (void)state;
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"), NULL);
    assert_true(wait_connected(&loop, r, 5000));
    for (int i = 0; i < 5; i++)
        assert_int_equal(tn_redis_ping(r, record_cb, &c), TN_OK);
    tn_redis_close(r);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.by_err[TN_ECANCELED], 5);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* Close from the first reply's callback: the rest are canceled. */
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"), NULL);
    assert_true(wait_connected(&loop, r, 5000));
    for (int i = 0; i < 4; i++)
        assert_int_equal(tn_redis_ping(r, cancel_cb, &d), TN_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.by_err[TN_OK], 1);
    assert_int_equal(d.by_err[TN_ECANCELED], 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* test_multi - MULTI/EXEC runs the commands atomically, reply is EXEC's */
static void test_multi(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0};
    char key[96];
    const char *set[] = {"SET", key, "1"}, *incr[] = {"INCR", key};

    (void)state;
    tn_test_unique("tern:test:multi", key, sizeof(key));
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"), NULL);
    assert_true(wait_connected(&loop, r, 5000));
    assert_int_equal(tn_redis_multi(r, 2, (const int[]){3, 2},
                                    (const char *const *const[]){set, incr}, NULL, record_cb, &c),
                     TN_OK);
    assert_true(run_until(&loop, NULL, &c.n, 1, 5000));
    assert_int_equal(c.type, REDIS_REPLY_ARRAY);
    cmd(&loop, r, &c, 2, (const char *[]){"GET", key});
    assert_string_equal(c.str, "2");
    cmd(&loop, r, &c, 2, (const char *[]){"DEL", key});
    finish(&loop, r);
}

/* test_script - by SHA-1, and again after SCRIPT FLUSH (NOSCRIPT: the text
 * is sent once more and the call still answers) */
static void test_script(void **state)
{
    static struct tn_script sc =
        TN_SCRIPT_INIT("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('STRLEN', KEYS[1])");
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0};
    char key[96];
    const char *args[] = {key, "a\0b"};
    size_t lens[] = {0, 3};

    (void)state;
    tn_test_unique("tern:test:script", key, sizeof(key));
    lens[0] = strlen(key);
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"), NULL);
    assert_int_equal(tn_script_call(r, &sc, 1, 2, args, lens, record_cb, &c), TN_EUNAVAIL);
    assert_true(wait_connected(&loop, r, 5000));
    assert_int_equal(tn_script_call(r, &sc, 3, 2, args, lens, record_cb, &c), TN_EINVAL);
    assert_int_equal(strlen(tn_script_sha(&sc)), 40);
    for (int round = 0; round < 2; round++) {
        cmd(&loop, r, &c, 2, (const char *[]){"SCRIPT", "FLUSH"});
        cmd(&loop, r, &c, 3, (const char *[]){"SCRIPT", "EXISTS", tn_script_sha(&sc)});
        assert_int_equal(c.integer, 0); /* the cache is empty */
        assert_int_equal(tn_script_call(r, &sc, 1, 2, args, lens, record_cb, &c), TN_OK);
        assert_true(run_until(&loop, NULL, &c.n, c.n + 1, 5000));
        assert_int_equal(c.integer, 3); /* "a\0b": the lengths were kept */
        cmd(&loop, r, &c, 3, (const char *[]){"SCRIPT", "EXISTS", tn_script_sha(&sc)});
        assert_int_equal(c.integer, 1); /* loaded by the EVAL after NOSCRIPT */
        assert_int_equal(tn_script_call(r, &sc, 1, 2, args, lens, record_cb, &c), TN_OK);
        assert_true(run_until(&loop, NULL, &c.n, c.n + 1, 5000));
        assert_int_equal(c.integer, 3);
    }
    cmd(&loop, r, &c, 2, (const char *[]){"DEL", key});
    assert_int_equal(c.by_err[TN_OK], c.n);
    finish(&loop, r);
}

/* blocking_admin - a plain hiredis connection as the admin user, or NULL */
static redisContext *blocking_admin(void)
{
    struct tn_redis_url u;
    redisContext *rc = NULL;
    redisReply *rep;

    if (tn_redis_url_parse(tn_test_env("TN_TEST_REDIS_URL_ADMIN"), &u) != TN_OK)
        return NULL;
    rc = redisConnect(u.host, u.port);
    rep = rc != NULL && rc->err == 0 ? redisCommand(rc, "AUTH %s %s", u.user, u.password) : NULL;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        redisFree(rc);
        rc = NULL;
    }
    freeReplyObject(rep);
    tn_redis_url_free(&u);
    return rc;
}

/* seen_within - GET key through rc answers want within ms (the loop of the
 * connection under test does not run meanwhile) */
static bool seen_within(redisContext *rc, const char *key, const char *want, int ms)
{
    for (int i = 0; i <= ms / 10; i++) {
        redisReply *rep = redisCommand(rc, "GET %s", key);
        bool ok = rep != NULL && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, want) == 0;

        freeReplyObject(rep);
        if (ok)
            return true;
        usleep(10000);
    }
    return false;
}

/* test_flush - a queued command waits for the loop; tn_redis_flush sends it
 * at once */
static void test_flush(void **state)
{
    uv_loop_t loop;
    struct tn_redis *r;
    struct calls c = {0};
    char key[96];
    redisContext *rc = blocking_admin();

    (void)state;
    assert_non_null(rc);
    tn_test_unique("tern:test:flush", key, sizeof(key));
    uv_loop_init(&loop);
    r = tn_redis_new(&loop, tn_test_env("TN_TEST_REDIS_URL_ADMIN"), NULL);
    assert_true(wait_connected(&loop, r, 5000));
    assert_int_equal(
        tn_redis_argv(r, 3, (const char *[]){"SET", key, "queued"}, NULL, record_cb, &c), TN_OK);
    assert_false(seen_within(rc, key, "queued", 300)); /* still in hiredis' buffer */
    assert_true(run_until(&loop, NULL, &c.n, 1, 5000));
    assert_int_equal(
        tn_redis_argv(r, 3, (const char *[]){"SET", key, "flushed"}, NULL, record_cb, &c), TN_OK);
    tn_redis_flush(r);
    assert_true(seen_within(rc, key, "flushed", 2000)); /* written without the loop */
    assert_true(run_until(&loop, NULL, &c.n, 2, 5000));
    cmd(&loop, r, &c, 2, (const char *[]){"DEL", key});
    assert_int_equal(c.by_err[TN_OK], c.n);
    redisFree(rc);
    finish(&loop, r);
}

/* test_url - the parser's table */
static void test_url(void **state)
{
    static const struct {
        const char *url;
        enum tn_err want;
        const char *user, *password, *host;
        int port, db;
    } cases[] = {
        {"redis://127.0.0.1", TN_OK, NULL, NULL, "127.0.0.1", 6379, 0},
        {"redis://u:p@h:7000/3", TN_OK, "u", "p", "h", 7000, 3},
        {"redis://:secret@h", TN_OK, NULL, "secret", "h", 6379, 0},
        {"redis://secret@h:1", TN_OK, NULL, "secret", "h", 1, 0},
        {"redis://u:p%40ss%3A@h", TN_OK, "u", "p@ss:", "h", 6379, 0},
        {"redis://u:p@ss@h", TN_OK, "u", "p@ss", "h", 6379, 0},
        {"redis://[::1]:6380/", TN_OK, NULL, NULL, "::1", 6380, 0},
        {.url = "redis://h:0", .want = TN_EINVAL},
        {.url = "redis://h:70000", .want = TN_EINVAL},
        {.url = "redis://h:12x", .want = TN_EINVAL},
        {.url = "redis://h/x", .want = TN_EINVAL},
        {.url = "redis://u:p%4@h", .want = TN_EINVAL},
        {.url = "redis://u:p%00@h", .want = TN_EINVAL},
        {.url = "redis://", .want = TN_EINVAL},
        {.url = "redis://u:p@", .want = TN_EINVAL},
        {.url = "http://h", .want = TN_EINVAL},
        {.url = "redis://[::1", .want = TN_EINVAL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tn_redis_url u;
        enum tn_err err = tn_redis_url_parse(cases[i].url, &u);

        if (err != cases[i].want)
            fail_msg("%s: got %s", cases[i].url, tn_strerror(err));
        if (err != TN_OK) {
            assert_null(u.host);
            continue;
        }
        if (cases[i].user == NULL)
            assert_null(u.user);
        else
            assert_string_equal(u.user, cases[i].user);
        if (cases[i].password == NULL)
            assert_null(u.password);
        else
            assert_string_equal(u.password, cases[i].password);
        assert_string_equal(u.host, cases[i].host);
        assert_int_equal(u.port, cases[i].port);
        assert_int_equal(u.db, cases[i].db);
        tn_redis_url_free(&u);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),           cmocka_unit_test(test_commands),
        cmocka_unit_test(test_denied),        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_refused),       cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_close_pending), cmocka_unit_test(test_multi),
        cmocka_unit_test(test_script),        cmocka_unit_test(test_flush),
    };

    tn_log_init("test", TN_LOG_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
