/*
 * test_tn_pg - tn_pg against the real PostgreSQL that scripts/test started:
 * parameterised queries, SQLSTATE mapping, tenant transactions, the pool on
 * libuv's threadpool (ordering, size bound, cancel, free refusal), a broken
 * connection being replaced, and a dead server reported as TN_EUNAVAIL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_pg.h>

#include "tn_test.h"

/* admin - a blocking admin connection */
static struct tn_pgconn *admin(void)
{
    struct tn_pgconn *c = NULL;

    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_ADMIN_DSN"), &c), TN_OK);
    return c;
}

/* query_params - a parameterised query returns the server's computation */
static void query_params(void **state)
{
    struct tn_pgconn *c = admin();
    struct pg_result *res = NULL;
    const char *p[3] = {"20", "22", NULL};

    (void)state;
    assert_int_equal(tn_pgconn_query(c, "SELECT $1::int + $2::int, $3::text IS NULL", 3, p, &res),
                     TN_OK);
    assert_int_equal(tn_pg_result_rows(res), 1);
    assert_string_equal(tn_pg_result_value(res, 0, 0), "42");
    assert_string_equal(tn_pg_result_value(res, 0, 1), "t");
    assert_null(tn_pg_result_value(res, 1, 0));
    tn_pg_result_free(res);
    /* A value is data, never SQL: an injection attempt is just a string. */
    p[0] = "x'; DROP TABLE tenants; --";
    assert_int_equal(tn_pgconn_query(c, "SELECT length($1)", 1, p, &res), TN_OK);
    assert_string_equal(tn_pg_result_value(res, 0, 0), "26");
    tn_pg_result_free(res);
    tn_pg_result_free(NULL);
    tn_pgconn_close(c);
}

/* error_mapping - SQLSTATEs become the documented codes */
static void error_mapping(void **state)
{
    struct tn_pgconn *c = admin(), *slow = NULL, *ingest = NULL;
    struct pg_result *res = (struct pg_result *)&res; /* must be reset to NULL */
    const char *p[1] = {"1"};

    (void)state;
    assert_int_equal(tn_pgconn_query(c, "CREATE TEMP TABLE t (k int PRIMARY KEY)", 0, NULL, NULL),
                     TN_OK);
    assert_int_equal(tn_pgconn_query(c, "INSERT INTO t VALUES ($1::int)", 1, p, NULL), TN_OK);
    assert_int_equal(tn_pgconn_query(c, "INSERT INTO t VALUES ($1::int)", 1, p, &res),
                     TN_ECONFLICT);
    assert_null(res);
    assert_int_equal(tn_pgconn_query(c, "SELEC 1", 0, NULL, NULL), TN_EINVAL);
    assert_int_equal(tn_pgconn_query(c, "SELECT 1/0", 0, NULL, NULL), TN_EINVAL);
    /* 57014: the statement_timeout the connection was opened with */
    assert_int_equal(tn_pgconn_open_timeouts(tn_test_env("TN_TEST_PG_ADMIN_DSN"), 5, 200, &slow),
                     TN_OK);
    assert_int_equal(tn_pgconn_query(slow, "SELECT pg_sleep(3)", 0, NULL, NULL), TN_ETIMEDOUT);
    assert_true(tn_pgconn_ok(slow));
    /* 42501: a daemon role outside its grants */
    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_DSN_INGEST"), &ingest), TN_OK);
    assert_int_equal(tn_pgconn_query(ingest, "SELECT count(*) FROM messages", 0, NULL, NULL),
                     TN_EDENIED);
    tn_pgconn_close(ingest);
    tn_pgconn_close(slow);
    tn_pgconn_close(c);
}

/* transactions - a failed transaction does not commit; begin_tenant binds the setting */
static void transactions(void **state)
{
    struct tn_pgconn *c = admin();
    struct pg_result *res = NULL;
    const char *tid = "7b0c55b8-3f0e-4d4e-9a47-1c2d3e4f5a6b";

    (void)state;
    assert_int_equal(tn_pgconn_query(c, "CREATE TEMP TABLE u (k int)", 0, NULL, NULL), TN_OK);
    assert_int_equal(tn_pgconn_begin(c), TN_OK);
    assert_int_equal(tn_pgconn_query(c, "INSERT INTO u VALUES (1)", 0, NULL, NULL), TN_OK);
    assert_int_equal(tn_pgconn_query(c, "SELECT 1/0", 0, NULL, NULL), TN_EINVAL);
    assert_int_equal(tn_pgconn_commit(c), TN_EINVAL); /* the server rolled back */
    assert_int_equal(tn_pgconn_query(c, "SELECT count(*) FROM u", 0, NULL, &res), TN_OK);
    assert_string_equal(tn_pg_result_value(res, 0, 0), "0");
    tn_pg_result_free(res);

    assert_int_equal(tn_pgconn_begin_tenant(c, "not-a-uuid"), TN_EINVAL);
    assert_int_equal(tn_pgconn_begin_tenant(c, tid), TN_OK);
    assert_int_equal(tn_pgconn_query(c, "SELECT tern_current_tenant()", 0, NULL, &res), TN_OK);
    assert_string_equal(tn_pg_result_value(res, 0, 0), tid);
    tn_pg_result_free(res);
    assert_int_equal(tn_pgconn_commit(c), TN_OK);
    /* transaction-local: gone after commit */
    assert_int_equal(tn_pgconn_query(c, "SELECT tern_current_tenant()", 0, NULL, &res), TN_OK);
    assert_null(tn_pg_result_value(res, 0, 0));
    tn_pg_result_free(res);
    assert_int_equal(tn_pgconn_rollback(c), TN_OK); /* harmless outside a transaction */
    tn_pgconn_close(c);
}

/* ------------------------------------------------------------------ pool */

struct job {
    int in;
    char pid[16];
    char out[16];
    enum tn_err err;
    int done;
    int order;
    int *counter;
    int sleep_ms;
};

/* job_work - double the input and note the backend pid. Runs on: threadpool. */
static enum tn_err job_work(struct tn_pgconn *c, void *arg)
{
    struct job *j = arg;
    struct pg_result *res = NULL;
    char in[16], ms[16];
    const char *p[2] = {in, ms};
    enum tn_err err;

    snprintf(in, sizeof(in), "%d", j->in);
    snprintf(ms, sizeof(ms), "%f", j->sleep_ms / 1000.0);
    err = tn_pgconn_query(c, "SELECT $1::int * 2, pg_backend_pid(), pg_sleep($2::float8)", 2, p,
                          &res);
    if (err == TN_OK) {
        snprintf(j->out, sizeof(j->out), "%s", tn_pg_result_value(res, 0, 0));
        snprintf(j->pid, sizeof(j->pid), "%s", tn_pg_result_value(res, 0, 1));
    }
    tn_pg_result_free(res);
    return err;
}

/* job_done - record completion. Runs on: loop. */
static void job_done(enum tn_err err, void *arg)
{
    struct job *j = arg;

    j->err = err;
    j->done++;
    j->order = ++*j->counter;
}

/* pool_runs_jobs - every job runs once, at most `size` connections are used */
static void pool_runs_jobs(void **state)
{
    uv_loop_t loop;
    struct tn_pg *pg;
    struct job jobs[6];
    int counter = 0;
    char pids[6][16];
    int distinct = 0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    pg = tn_pg_new(&loop, tn_test_env("TN_TEST_PG_ADMIN_DSN"), 2);
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 6; i++) {
        jobs[i] = (struct job){.in = i + 1, .counter = &counter, .sleep_ms = 50};
        assert_int_equal(tn_pg_submit(pg, job_work, job_done, &jobs[i]), TN_OK);
    }
    assert_int_equal(tn_pg_busy(pg), 6);
    assert_int_equal(tn_pg_free(pg), TN_EINVAL); /* refused while jobs run */
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 6; i++) {
        char want[16];
        bool seen = false;

        snprintf(want, sizeof(want), "%d", 2 * (i + 1));
        assert_int_equal(jobs[i].done, 1);
        assert_int_equal(jobs[i].err, TN_OK);
        assert_string_equal(jobs[i].out, want);
        for (int k = 0; k < distinct; k++)
            seen = seen || strcmp(pids[k], jobs[i].pid) == 0;
        if (!seen)
            snprintf(pids[distinct++], sizeof(pids[0]), "%s", jobs[i].pid);
    }
    assert_in_range(distinct, 1, 2); /* connections are reused, never more than size */
    assert_int_equal(tn_pg_ping(pg, job_done, &jobs[0]), TN_OK);
    jobs[0].done = 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(jobs[0].done, 1);
    assert_int_equal(jobs[0].err, TN_OK);
    assert_int_equal(tn_pg_busy(pg), 0);
    assert_int_equal(tn_pg_free(pg), TN_OK);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* pool_cancel - waiting jobs get TN_ECANCELED, running ones finish, new ones are refused */
static void pool_cancel(void **state)
{
    uv_loop_t loop;
    struct tn_pg *pg;
    struct job jobs[4];
    int counter = 0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    pg = tn_pg_new(&loop, tn_test_env("TN_TEST_PG_ADMIN_DSN"), 1);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){.in = i, .counter = &counter, .sleep_ms = 100};
        assert_int_equal(tn_pg_submit(pg, job_work, job_done, &jobs[i]), TN_OK);
    }
    tn_pg_cancel(pg);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(jobs[i].done, 1);
        assert_int_equal(jobs[i].err, TN_ECANCELED);
    }
    assert_int_equal(jobs[0].done, 0);
    assert_int_equal(tn_pg_submit(pg, job_work, job_done, &jobs[1]), TN_ECANCELED);
    assert_int_equal(jobs[1].done, 1); /* refused: the callback did not run */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(jobs[0].done, 1);
    assert_int_equal(jobs[0].err, TN_OK);
    assert_int_equal(tn_pg_free(pg), TN_OK);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* kill_work - the server drops this connection. Runs on: threadpool. */
static enum tn_err kill_work(struct tn_pgconn *c, void *arg)
{
    (void)arg;
    return tn_pgconn_query(c, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL, NULL);
}

/* pool_reconnects - a broken connection is dropped and the next job reconnects */
static void pool_reconnects(void **state)
{
    uv_loop_t loop;
    struct tn_pg *pg;
    struct job a = {0}, b = {0};
    int counter = 0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    pg = tn_pg_new(&loop, tn_test_env("TN_TEST_PG_ADMIN_DSN"), 1);
    a.counter = b.counter = &counter;
    assert_int_equal(tn_pg_submit(pg, kill_work, job_done, &a), TN_OK);
    b.in = 21;
    assert_int_equal(tn_pg_submit(pg, job_work, job_done, &b), TN_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.err, TN_EUNAVAIL);
    assert_int_equal(b.err, TN_OK);
    assert_string_equal(b.out, "42");
    assert_true(a.order < b.order); /* FIFO */
    assert_int_equal(tn_pg_free(pg), TN_OK);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* server_down - nothing listens: TN_EUNAVAIL, from the blocking API and the pool */
static void server_down(void **state)
{
    uv_loop_t loop;
    struct tn_pg *pg;
    struct tn_pgconn *c = NULL;
    struct job j = {0};
    int counter = 0;
    const char *dsn = "postgresql://postgres@127.0.0.1:1/tern";

    (void)state;
    assert_int_equal(tn_pgconn_open(dsn, &c), TN_EUNAVAIL);
    assert_null(c);
    assert_int_equal(uv_loop_init(&loop), 0);
    pg = tn_pg_new(&loop, dsn, 1);
    j.counter = &counter;
    assert_int_equal(tn_pg_submit(pg, job_work, job_done, &j), TN_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(j.done, 1);
    assert_int_equal(j.err, TN_EUNAVAIL);
    assert_int_equal(tn_pg_free(pg), TN_OK);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_params), cmocka_unit_test(error_mapping),
        cmocka_unit_test(transactions), cmocka_unit_test(pool_runs_jobs),
        cmocka_unit_test(pool_cancel),  cmocka_unit_test(pool_reconnects),
        cmocka_unit_test(server_down),
    };

    tn_log_init("test", TN_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
