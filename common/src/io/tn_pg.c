/*
 * NAME
 *	tn_pg - Postgres connections and a threadpool-backed pool
 * SYNOPSIS
 *	#include <tn/tn_pg.h>
 * DESCRIPTION
 *	tn_pgconn_* wrap one blocking libpq connection: parameterised queries
 *	only (PQexecParams), SQLSTATE mapped to enum tn_err, a tenant-bound
 *	transaction helper for row-level security, and one multi-statement
 *	entry point (PQexec) reserved for migrations.
 *
 *	tn_pg_* is a pool for a daemon's loop. Connection checkout happens on
 *	the loop thread: a job takes an idle slot or waits in a FIFO, and only
 *	then goes to the threadpool with its slot. So no threadpool thread ever
 *	sleeps waiting for a connection (which would starve libuv's other users
 *	of the threadpool), and the slot array needs no mutex: a slot belongs
 *	either to the loop or to exactly one work request, and uv_queue_work's
 *	after-work callback is the hand-back point. The slot's connection is
 *	opened lazily on the threadpool and closed when found broken, so the
 *	next job reconnects.
 * RUNS ON
 *	Runs on: threadpool / CLI (tn_pgconn_*: blocking libpq, PQexec for
 *	migrations), loop (tn_pg_* pool bookkeeping, done callbacks).
 * DIAGNOSTICS
 *	pg.connect_failed, pg.query_failed (sqlstate, primary message; never
 *	parameters), pg.txn_left_open, pg.free_busy.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#define TN_PG_PREPARED_MAX 32

struct tn_pgconn {
    PGconn *conn;
    const char *prepared[TN_PG_PREPARED_MAX]; /* tn_pgconn_query_cached: statement i's text */
    int nprepared;
    char sqlstate[6]; /* of the last failed statement; "" when it had none */
};

struct pg_slot {
    struct tn_pgconn *c; /* NULL until first use or after a failure */
    bool busy;
};

struct pg_job {
    uv_work_t req;
    struct tn_pg *pg;
    struct pg_slot *slot;
    tn_pg_work_fn *work;
    tn_pg_done_fn *done;
    void *arg;
    enum tn_err err;
    struct pg_job *next;
};

struct tn_pg {
    uv_loop_t *loop;
    char *dsn;
    int connect_s, statement_ms;
    int nslots;
    struct pg_slot *slots;
    struct pg_job *wait_head, *wait_tail; /* FIFO of jobs without a slot */
    size_t busy;
    bool canceled;
};

/* ---------------------------------------------------------------- connection */

/* chomp_copy - copy a libpq message without its trailing newline */
static void chomp_copy(const char *msg, char *out, size_t size)
{
    size_t n;

    snprintf(out, size, "%s", msg != NULL ? msg : "");
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
}

/* notice_cb - server NOTICEs go to the debug log, not to stderr */
static void notice_cb(void *arg, const char *message)
{
    char msg[256];

    (void)arg;
    chomp_copy(message, msg, sizeof(msg));
    tn_log_debug(NULL, "pg.notice", TN_KV_STR("detail", msg));
}

/* tn_pgconn_open_timeouts - blocking connect with explicit timeouts */
enum tn_err tn_pgconn_open_timeouts(const char *dsn, int connect_s, int statement_ms,
                                    struct tn_pgconn **out)
{
    enum tn_err err = TN_OK;
    char cto[16], sto[32], msg[256];
    /* connect_timeout precedes dbname, so a DSN that sets its own wins. */
    const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
    const char *vals[] = {cto, dsn, "tern", NULL};
    const char *params[1] = {sto};
    struct tn_pgconn *c = tn_xcalloc(1, sizeof(*c));

    *out = NULL;
    snprintf(cto, sizeof(cto), "%d", connect_s);
    snprintf(sto, sizeof(sto), "%d", statement_ms);
    c->conn = PQconnectdbParams(keys, vals, 1);
    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
        chomp_copy(c->conn != NULL ? PQerrorMessage(c->conn) : "out of memory", msg, sizeof(msg));
        tn_log_warn(NULL, "pg.connect_failed", TN_KV_STR("detail", msg));
        err = TN_EUNAVAIL;
        goto out;
    }
    PQsetNoticeProcessor(c->conn, notice_cb, NULL);
    err = tn_pgconn_query(c, "SELECT set_config('statement_timeout', $1, false)", 1, params, NULL);
    if (err != TN_OK)
        goto out;
    *out = c;
    c = NULL;
out:
    tn_pgconn_close(c);
    return err;
}

/* tn_pgconn_open - blocking connect with the default timeouts */
enum tn_err tn_pgconn_open(const char *dsn, struct tn_pgconn **out)
{
    return tn_pgconn_open_timeouts(dsn, TN_PG_CONNECT_TIMEOUT_S, TN_PG_STATEMENT_TIMEOUT_MS, out);
}

/* tn_pgconn_close - disconnect (NULL-safe) */
void tn_pgconn_close(struct tn_pgconn *c)
{
    if (c == NULL)
        return;
    if (c->conn != NULL)
        PQfinish(c->conn);
    tn_free(c);
}

/* tn_pgconn_ok - is the connection still usable? */
int tn_pgconn_ok(const struct tn_pgconn *c)
{
    return c != NULL && c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK;
}

/* tn_pgconn_last_error - libpq's last message */
const char *tn_pgconn_last_error(const struct tn_pgconn *c)
{
    if (c == NULL || c->conn == NULL)
        return "";
    return PQerrorMessage(c->conn);
}

/* tn_pgconn_last_sqlstate - the last failure's SQLSTATE */
const char *tn_pgconn_last_sqlstate(const struct tn_pgconn *c)
{
    return c != NULL ? c->sqlstate : "";
}

/* map_sqlstate - SQLSTATE to what the caller should do */
static enum tn_err map_sqlstate(const char *st)
{
    if (st == NULL || strlen(st) != 5)
        return TN_EUNAVAIL; /* no server answer: the connection failed */
    if (strcmp(st, "23505") == 0 || strcmp(st, "23P01") == 0)
        return TN_ECONFLICT;
    if (strcmp(st, "42501") == 0)
        return TN_EDENIED;
    if (strcmp(st, "57014") == 0)
        return TN_ETIMEDOUT;
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P0", 4) == 0 || strncmp(st, "53", 2) == 0 ||
        strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return TN_EUNAVAIL;
    return TN_EINVAL;
}

/* result_error - classify a failed result (res may be NULL) and log it */
static enum tn_err result_error(struct tn_pgconn *c, const PGresult *res)
{
    const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *prim = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *cons = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    char msg[256];
    enum tn_err err;

    /* Data exceptions (class 22) quote the offending input in their message. */
    if (st != NULL && strncmp(st, "22", 2) == 0)
        prim = "data exception (message withheld: it may quote input)";
    chomp_copy(prim != NULL ? prim : PQerrorMessage(c->conn), msg, sizeof(msg));
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st != NULL ? st : "");
    err = map_sqlstate(st);
    if (PQstatus(c->conn) != CONNECTION_OK)
        err = TN_EUNAVAIL;
    if (err == TN_ECONFLICT) /* an idempotency hit is routine */
        tn_log_debug(NULL, "pg.query_failed", TN_KV_STR("sqlstate", st), TN_KV_STR("detail", msg),
                     TN_KV_STR("constraint", cons), TN_KV_ERR(err));
    else
        tn_log_warn(NULL, "pg.query_failed", TN_KV_STR("sqlstate", st), TN_KV_STR("detail", msg),
                    TN_KV_STR("constraint", cons), TN_KV_ERR(err));
    return err;
}

/* finish - turn a PGresult into err / *out */
static enum tn_err finish(struct tn_pgconn *c, PGresult *res, struct pg_result **out)
{
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    enum tn_err err = TN_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        err = result_error(c, res);
        goto out;
    }
    if (out != NULL) {
        *out = (struct pg_result *)res;
        res = NULL;
    }
out:
    PQclear(res);
    return err;
}

/* tn_pgconn_query - one parameterised statement */
enum tn_err tn_pgconn_query(struct tn_pgconn *c, const char *sql, int nparams,
                            const char *const *params, struct pg_result **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || c->conn == NULL)
        return TN_EUNAVAIL;
    return finish(c, PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0), out);
}

/* tn_pgconn_query_cached - tn_pgconn_query through a statement prepared
 * once per connection, named by the text's address */
enum tn_err tn_pgconn_query_cached(struct tn_pgconn *c, const char *sql, int nparams,
                                   const char *const *params, struct pg_result **out)
{
    char name[16];
    enum tn_err err;
    int i = 0;

    if (out != NULL)
        *out = NULL;
    if (c == NULL || c->conn == NULL)
        return TN_EUNAVAIL;
    while (i < c->nprepared && c->prepared[i] != sql)
        i++;
    if (i == TN_PG_PREPARED_MAX) /* full: plain statements from here on */
        return tn_pgconn_query(c, sql, nparams, params, out);
    snprintf(name, sizeof(name), "tn_q%d", i);
    if (i == c->nprepared) {
        err = finish(c, PQprepare(c->conn, name, sql, nparams, NULL), NULL);
        if (err != TN_OK)
            return err;
        c->prepared[c->nprepared++] = sql;
    }
    return finish(c, PQexecPrepared(c->conn, name, nparams, params, NULL, NULL, 0), out);
}

/* tn_pgconn_exec_script - multi-statement text for migrations (PQexec) */
enum tn_err tn_pgconn_exec_script(struct tn_pgconn *c, const char *sql)
{
    if (c == NULL || c->conn == NULL)
        return TN_EUNAVAIL;
    return finish(c, PQexec(c->conn, sql), NULL);
}

/* tn_pgconn_begin - BEGIN */
enum tn_err tn_pgconn_begin(struct tn_pgconn *c)
{
    return tn_pgconn_query(c, "BEGIN", 0, NULL, NULL);
}

/* tn_pgconn_begin_tenant - BEGIN and set tern.tenant_id for this transaction */
enum tn_err tn_pgconn_begin_tenant(struct tn_pgconn *c, const char *tenant_id)
{
    enum tn_err err;
    const char *params[1] = {tenant_id};

    if (tenant_id == NULL || *tenant_id == '\0')
        return TN_EINVAL;
    err = tn_pgconn_begin(c);
    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, "SELECT set_config('tern.tenant_id', $1::uuid::text, true)", 1, params,
                          NULL);
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    return err;
}

/* tn_pgconn_commit - COMMIT, noticing a transaction the server rolled back */
enum tn_err tn_pgconn_commit(struct tn_pgconn *c)
{
    struct pg_result *res = NULL;
    enum tn_err err;

    err = tn_pgconn_query(c, "COMMIT", 0, NULL, &res);
    if (err == TN_OK && strcmp(PQcmdStatus((PGresult *)res), "ROLLBACK") == 0) {
        tn_log_warn(NULL, "pg.commit_rolled_back");
        err = TN_EINVAL;
    }
    tn_pg_result_free(res);
    return err;
}

/* tn_pgconn_rollback - ROLLBACK */
enum tn_err tn_pgconn_rollback(struct tn_pgconn *c)
{
    if (c == NULL || c->conn == NULL)
        return TN_EUNAVAIL;
    if (PQtransactionStatus(c->conn) == PQTRANS_IDLE)
        return TN_OK;
    return tn_pgconn_query(c, "ROLLBACK", 0, NULL, NULL);
}

/* tn_pg_result_free - PQclear, NULL-safe */
void tn_pg_result_free(struct pg_result *res)
{
    PQclear((PGresult *)res);
}

/* tn_pg_result_rows - tuple count */
int tn_pg_result_rows(const struct pg_result *res)
{
    return res != NULL ? PQntuples((const PGresult *)res) : 0;
}

/* tn_pg_result_cols - column count */
int tn_pg_result_cols(const struct pg_result *res)
{
    return res != NULL ? PQnfields((const PGresult *)res) : 0;
}

/* tn_pg_result_value - one text value, NULL for SQL NULL */
const char *tn_pg_result_value(const struct pg_result *res, int row, int col)
{
    const PGresult *r = (const PGresult *)res;

    if (r == NULL || row < 0 || col < 0 || row >= PQntuples(r) || col >= PQnfields(r))
        return NULL;
    if (PQgetisnull(r, row, col))
        return NULL;
    return PQgetvalue(r, row, col);
}

/* tn_pg_result_affected - rows affected by the command */
long tn_pg_result_affected(struct pg_result *res)
{
    const char *s = res != NULL ? PQcmdTuples((PGresult *)res) : "";
    char *end = NULL;
    long n;

    if (*s == '\0')
        return 0;
    n = strtol(s, &end, 10);
    return (end != NULL && *end == '\0') ? n : 0;
}

/* ---------------------------------------------------------------- pool */

/* tn_pg_new - a lazily connecting pool */
struct tn_pg *tn_pg_new(struct uv_loop_s *loop, const char *dsn, int size)
{
    struct tn_pg *pg = tn_xcalloc(1, sizeof(*pg));

    TN_ASSERT(loop != NULL && dsn != NULL && size >= 1);
    pg->loop = loop;
    pg->dsn = tn_xstrdup(dsn);
    pg->connect_s = TN_PG_CONNECT_TIMEOUT_S;
    pg->statement_ms = TN_PG_STATEMENT_TIMEOUT_MS;
    pg->nslots = size;
    pg->slots = tn_xcalloc((size_t)size, sizeof(*pg->slots));
    return pg;
}

/* tn_pg_set_timeouts - timeouts for connections opened from now on */
void tn_pg_set_timeouts(struct tn_pg *pg, int connect_s, int statement_ms)
{
    pg->connect_s = connect_s;
    pg->statement_ms = statement_ms;
}

/* job_work - check the slot's connection and run the job.
 * Runs on: threadpool. Touches only the job and its slot (owned by the job). */
static void job_work(uv_work_t *req)
{
    struct pg_job *job = req->data;
    struct pg_slot *slot = job->slot;

    if (slot->c != NULL && !tn_pgconn_ok(slot->c)) {
        tn_pgconn_close(slot->c);
        slot->c = NULL;
    }
    if (slot->c == NULL) {
        job->err = tn_pgconn_open_timeouts(job->pg->dsn, job->pg->connect_s, job->pg->statement_ms,
                                           &slot->c);
        if (job->err != TN_OK)
            return;
    }
    job->err = job->work(slot->c, job->arg);
    if (tn_pgconn_ok(slot->c) && PQtransactionStatus(slot->c->conn) != PQTRANS_IDLE) {
        tn_log_warn(NULL, "pg.txn_left_open");
        tn_pgconn_rollback(slot->c);
    }
    if (!tn_pgconn_ok(slot->c)) {
        tn_pgconn_close(slot->c); /* broken: the next job reconnects */
        slot->c = NULL;
    }
}

static void job_done_cb(uv_work_t *req, int status);

/* job_start - give a waiting job the free slot and queue it.
 * Runs on: loop. */
static void job_start(struct tn_pg *pg, struct pg_job *job, struct pg_slot *slot)
{
    int rc;

    slot->busy = true;
    job->slot = slot;
    job->req.data = job;
    rc = uv_queue_work(pg->loop, &job->req, job_work, job_done_cb);
    TN_ASSERT(rc == 0); /* fails only for a NULL work_cb */
}

/* free_slot - an idle slot, or NULL */
static struct pg_slot *free_slot(struct tn_pg *pg)
{
    for (int i = 0; i < pg->nslots; i++) {
        if (!pg->slots[i].busy)
            return &pg->slots[i];
    }
    return NULL;
}

/* job_done_cb - hand the slot back, report, start the next waiter.
 * Runs on: loop. */
static void job_done_cb(uv_work_t *req, int status)
{
    struct pg_job *job = req->data;
    struct tn_pg *pg = job->pg;
    struct pg_job *next = pg->wait_head;
    enum tn_err err = status == UV_ECANCELED ? TN_ECANCELED : job->err;

    job->slot->busy = false;
    if (next != NULL && !pg->canceled) {
        pg->wait_head = next->next;
        if (pg->wait_head == NULL)
            pg->wait_tail = NULL;
        job_start(pg, next, job->slot);
    }
    pg->busy--;
    job->done(err, job->arg);
    tn_free(job);
}

/* tn_pg_submit - queue a job */
enum tn_err tn_pg_submit(struct tn_pg *pg, tn_pg_work_fn *work, tn_pg_done_fn *done, void *arg)
{
    struct pg_job *job;
    struct pg_slot *slot;

    if (pg->canceled)
        return TN_ECANCELED;
    job = tn_xcalloc(1, sizeof(*job));
    job->pg = pg;
    job->work = work;
    job->done = done;
    job->arg = arg;
    pg->busy++;
    slot = free_slot(pg);
    if (slot != NULL) {
        job_start(pg, job, slot);
        return TN_OK;
    }
    if (pg->wait_tail != NULL)
        pg->wait_tail->next = job;
    else
        pg->wait_head = job;
    pg->wait_tail = job;
    return TN_OK;
}

/* ping_work - SELECT 1. Runs on: threadpool. */
static enum tn_err ping_work(struct tn_pgconn *c, void *arg)
{
    (void)arg;
    return tn_pgconn_query(c, "SELECT 1", 0, NULL, NULL);
}

/* tn_pg_ping - readiness probe */
enum tn_err tn_pg_ping(struct tn_pg *pg, tn_pg_done_fn *done, void *arg)
{
    return tn_pg_submit(pg, ping_work, done, arg);
}

/* tn_pg_cancel - fail the waiting jobs, refuse new ones */
void tn_pg_cancel(struct tn_pg *pg)
{
    struct pg_job *job;

    pg->canceled = true;
    while (pg->wait_head != NULL) {
        job = pg->wait_head;
        pg->wait_head = job->next;
        if (pg->wait_head == NULL)
            pg->wait_tail = NULL;
        pg->busy--;
        job->done(TN_ECANCELED, job->arg);
        tn_free(job);
    }
}

/* tn_pg_busy - outstanding jobs */
size_t tn_pg_busy(const struct tn_pg *pg)
{
    return pg->busy;
}

/* tn_pg_free - release an idle pool */
enum tn_err tn_pg_free(struct tn_pg *pg)
{
    if (pg == NULL)
        return TN_OK;
    if (pg->busy > 0) {
        tn_log_error(NULL, "pg.free_busy", TN_KV_INT("jobs", pg->busy));
        return TN_EINVAL;
    }
    for (int i = 0; i < pg->nslots; i++)
        tn_pgconn_close(pg->slots[i].c);
    tn_free(pg->slots);
    tn_free(pg->dsn);
    tn_free(pg);
    return TN_OK;
}
