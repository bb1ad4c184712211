#ifndef TN_PG_H
#define TN_PG_H
/*
 * tn_pg - Postgres access (STYLE.md R8, R11, R16).
 *
 * Two layers:
 *
 *  - struct tn_pgconn: one blocking libpq connection. Used inside threadpool
 *    work functions, by ternctl and by tests. Every statement is
 *    parameterised (PQexecParams); only migrations run multi-statement text.
 *  - struct tn_pg: a pool of `size` connections for a daemon's loop. A job is
 *    a work function that runs on libuv's threadpool with a checked-out
 *    connection, followed by a done callback on the loop. Connections are
 *    opened lazily (connect_timeout, statement_timeout set) and dropped when
 *    broken, so the next job reconnects. libuv's threadpool has 4 threads
 *    unless UV_THREADPOOL_SIZE says otherwise: a pool larger than that gains
 *    nothing.
 *
 * Tenancy: every tenant-owned table has row-level security keyed on the
 * transaction setting tern.tenant_id. Work functions that touch tenant data
 * call tn_pgconn_begin_tenant() and tn_pgconn_commit(); a statement outside
 * such a transaction sees no tenant rows at all.
 *
 * Error mapping (SQLSTATE -> enum tn_err): 23505 unique and 23P01 exclusion
 * violations -> TN_ECONFLICT; 42501 insufficient privilege (including a row
 * refused by a row-level security policy) -> TN_EDENIED; 57014 statement
 * timeout -> TN_ETIMEDOUT; a lost or refused connection, class 08, 57P0x and
 * 53xxx, 40001 / 40P01 (serialization failure, deadlock: retry the
 * transaction) -> TN_EUNAVAIL; anything else -> TN_EINVAL. Failures are logged
 * as "pg.query_failed" with the SQLSTATE and the server's primary message,
 * never with the parameters.
 */
#include <stddef.h>

#include <tn/tn_err.h>

struct uv_loop_s;
struct pg_result; /* libpq's PGresult; no <libpq-fe.h> here */
struct tn_pg;     /* opaque: the pool */
struct tn_pgconn; /* opaque: one connection */

#define TN_PG_CONNECT_TIMEOUT_S 5
#define TN_PG_STATEMENT_TIMEOUT_MS 30000

/* A job's body. Runs on: threadpool. c is borrowed for the call only; the job
 * must leave no transaction open (the pool rolls back and warns if it does).
 * Touch only arg (the job's own struct): no loop, no shared state. */
typedef enum tn_err tn_pg_work_fn(struct tn_pgconn *c, void *arg);

/* A job's completion. Runs on: loop. err is what the work function returned,
 * TN_EUNAVAIL if no connection could be made (work did not run), or
 * TN_ECANCELED if the pool was cancelled before the job started. */
typedef void tn_pg_done_fn(enum tn_err err, void *arg);

/* tn_pg_new - a pool of size (>= 1) connections to dsn (borrowed, copied).
 * Nothing connects yet. Returns: new (tn_pg_free). Runs on: loop thread. */
struct tn_pg *tn_pg_new(struct uv_loop_s *loop, const char *dsn, int size);

/* tn_pg_set_timeouts - override the connect timeout (seconds) and the
 * statement_timeout (ms). Call before the first tn_pg_submit: work functions
 * read these from the threadpool. Runs on: loop. */
void tn_pg_set_timeouts(struct tn_pg *pg, int connect_s, int statement_ms);

/* tn_pg_submit - run work(c, arg) on the threadpool with a pooled connection,
 * then done(err, arg) on the loop. Jobs beyond the pool size wait in FIFO
 * order on the loop side (no threadpool thread ever blocks waiting for a
 * connection). arg is borrowed until done runs.
 * Errors: TN_ECANCELED after tn_pg_cancel (done will NOT run). Otherwise done
 * runs exactly once (R9). Runs on: loop. */
enum tn_err tn_pg_submit(struct tn_pg *pg, tn_pg_work_fn *work, tn_pg_done_fn *done, void *arg);

/* tn_pg_ping - readiness: run "SELECT 1"; done gets TN_OK or TN_EUNAVAIL.
 * Same contract as tn_pg_submit. Runs on: loop. */
enum tn_err tn_pg_ping(struct tn_pg *pg, tn_pg_done_fn *done, void *arg);

/* tn_pg_cancel - shutdown: jobs still waiting for a connection complete now,
 * from inside this call, with TN_ECANCELED; jobs on the threadpool finish
 * normally; later submits are refused. Runs on: loop. */
void tn_pg_cancel(struct tn_pg *pg);

/* tn_pg_busy - jobs submitted whose done callback has not run yet. */
size_t tn_pg_busy(const struct tn_pg *pg);

/* tn_pg_free - close every connection and release the pool (NULL-safe). The
 * pool owns no libuv handles. Refuses while jobs are outstanding: returns
 * TN_EINVAL and frees nothing (cancel, then let the loop run until
 * tn_pg_busy() == 0). Runs on: loop. */
enum tn_err tn_pg_free(struct tn_pg *pg);

/* tn_pgconn_open - blocking connect to dsn (borrowed) with the default
 * timeouts; *out new (tn_pgconn_close). Errors: TN_EUNAVAIL (logged as
 * "pg.connect_failed"). Runs on: threadpool / CLI / tests. */
enum tn_err tn_pgconn_open(const char *dsn, struct tn_pgconn **out);

/* tn_pgconn_open_timeouts - as tn_pgconn_open with explicit timeouts. */
enum tn_err tn_pgconn_open_timeouts(const char *dsn, int connect_s, int statement_ms,
                                    struct tn_pgconn **out);

/* tn_pgconn_close - disconnect and release (NULL-safe). */
void tn_pgconn_close(struct tn_pgconn *c);

/* tn_pgconn_ok - false once the connection is known to be broken. */
int tn_pgconn_ok(const struct tn_pgconn *c);

/* tn_pgconn_last_error - libpq's message for the last failure on c, for a
 * CLI to show its operator (daemons log the SQLSTATE instead: the message may
 * quote values). Returns: borrowed, valid until the next call on c; "" if
 * none. */
const char *tn_pgconn_last_error(const struct tn_pgconn *c);

/* tn_pgconn_last_sqlstate - the SQLSTATE of the last statement on c that
 * failed with a server answer (a CLI telling a foreign-key refusal, 23503,
 * from other failures), "" when it had none. Returns: borrowed, valid until
 * the next call on c. */
const char *tn_pgconn_last_sqlstate(const struct tn_pgconn *c);

/* tn_pgconn_query - one parameterised statement (PQexecParams, text format).
 * params: nparams borrowed strings, NULL entries are SQL NULL. On success
 * *out (if out != NULL) is a new result (tn_pg_result_free); with out == NULL
 * the result is discarded. On error *out is NULL.
 * Errors: see the mapping above. Runs on: threadpool / CLI / tests. */
enum tn_err tn_pgconn_query(struct tn_pgconn *c, const char *sql, int nparams,
                            const char *const *params, struct pg_result **out);

/* tn_pgconn_query_cached - tn_pgconn_query for a statement run again and
 * again: prepared on c at its first use (PQprepare, parsed and analyzed
 * once; Postgres may then keep a generic plan), executed by name after.
 * sql must be a string that lives and stays the same as long as c (a
 * static constant): its address names the statement. Past 32 statements
 * on one connection it runs as tn_pgconn_query. Same errors, same *out.
 * Runs on: threadpool / CLI / tests. */
enum tn_err tn_pgconn_query_cached(struct tn_pgconn *c, const char *sql, int nparams,
                                   const char *const *params, struct pg_result **out);

/* tn_pgconn_exec_script - multi-statement SQL text (migrations only; PQexec).
 * The script must not contain transaction control. Runs on: threadpool / CLI. */
enum tn_err tn_pgconn_exec_script(struct tn_pgconn *c, const char *sql);

/* tn_pgconn_begin_tenant - BEGIN and bind the transaction to tenant_id
 * (borrowed uuid text) for row-level security. On error no transaction is
 * left open. */
enum tn_err tn_pgconn_begin_tenant(struct tn_pgconn *c, const char *tenant_id);

/* tn_pgconn_begin - BEGIN without a tenant (admin tools, migrations). */
enum tn_err tn_pgconn_begin(struct tn_pgconn *c);

/* tn_pgconn_commit - COMMIT. Errors: the mapped failure, or TN_EINVAL when
 * the transaction had already failed (the server rolled back instead). */
enum tn_err tn_pgconn_commit(struct tn_pgconn *c);

/* tn_pgconn_rollback - ROLLBACK (safe without an open transaction). */
enum tn_err tn_pgconn_rollback(struct tn_pgconn *c);

/* tn_pg_result_free - PQclear (NULL-safe). */
void tn_pg_result_free(struct pg_result *res);

/* Result accessors (thin wrappers so callers need not include libpq).
 * tn_pg_result_value: borrowed, valid until the result is freed; NULL for
 * SQL NULL or out of range. */
int tn_pg_result_rows(const struct pg_result *res);
int tn_pg_result_cols(const struct pg_result *res);
const char *tn_pg_result_value(const struct pg_result *res, int row, int col);
/* tn_pg_result_affected - rows affected by INSERT/UPDATE/DELETE (0 if none). */
long tn_pg_result_affected(struct pg_result *res);

#endif
