/*
 * NAME
 *	calsync_store - tern-calsync's Postgres work
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_store_load(job, then);  calsync_store_save(job, then);
 *	calsync_store_scan(ctx);
 * DESCRIPTION
 *	load reads, bound to the job's tenant, what a job needs: for a
 *	mirror, the booking (state, times, service name, sync_version) and the
 *	connected CalDAV or Google account of its resource (one flagged
 *	needs_reconnect only when no other is live); for an import, the
 *	account; with either, the tenant's time zone (tenants.time_zone: what
 *	all-day and floating calendar times are read in, calsync_zone.c). The
 *	account's password or tokens are opened here (tn_open,
 *	aad "oauth:<tenant>:<account>:access" / ":refresh") and live only in
 *	the job.
 *	save records the outcome: the mirror columns of the booking (only if
 *	no newer mirror already did), or the account's imported busy time
 *	through tern_busy_replace(), and in the same transaction the bookings
 *	whose events the import did not see (calsync_twoway_candidates). A
 *	check job loads like a mirror, plus whether the booking is mirrored
 *	at its version to the loaded account (in_sync). A delete job loads
 *	its calendar_deletions row (the erased booking's id, the account and
 *	the calendar its event is in) and that account, if it is still
 *	connected; its save drops the row once the event is gone (or was
 *	never Tern's) through tern_calsync_event_deleted (0016), and keeps it
 *	for the scan otherwise. scan finds bookings whose calendar is
 *	behind (the XADD after a booking was lost, or an earlier attempt
 *	failed) and accounts whose busy time is due, and starts their jobs.
 * RUNS ON
 *	Runs on: threadpool (work functions); submission and done callbacks on
 *	the loop.
 * DIAGNOSTICS
 *	calsync.scan_failed; query failures are logged by tn_pg. Passwords are
 *	never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "calsync.h"

/* The account columns every load reads (account_from): id, calendar, CalDAV
 * user, sealed access, provider, sealed refresh, expiry, needs_reconnect,
 * the tenant's sendUpdates and time zone. */
#define ACCOUNT_COLS                                                                               \
    " a.id, a.calendar_id, a.username, encode(a.access_token_sealed, 'hex'), a.provider,"          \
    " encode(a.refresh_token_sealed, 'hex'), extract(epoch FROM a.expires_at)::bigint,"            \
    " a.needs_reconnect, (SELECT calendar_send_updates FROM tenants WHERE id = a.tenant_id),"      \
    " (SELECT time_zone FROM tenants WHERE id = a.tenant_id)"

static const char sql_booking[] =
    "SELECT b.status = 'confirmed', extract(epoch FROM lower(b.during))::bigint,"
    " extract(epoch FROM upper(b.during))::bigint, s.name, b.sync_version," ACCOUNT_COLS
    ", b.synced_version = b.sync_version AND b.external_event_id IS NOT NULL, b.calendar_account_id"
    " FROM bookings b JOIN services s ON s.tenant_id = b.tenant_id AND s.id = b.service_id"
    " LEFT JOIN LATERAL (SELECT * FROM oauth_accounts x WHERE x.provider IN ('caldav', 'google')"
    "  AND x.tenant_id = b.tenant_id AND COALESCE(x.resource_id, '') = b.resource_key AND "
    "x.disconnected_at IS NULL AND x.calendar_id IS NOT NULL"
    "  ORDER BY x.needs_reconnect, x.created_at LIMIT 1) a ON true"
    " WHERE b.tenant_id = tern_current_tenant() AND b.id = $1";

static const char sql_account[] =
    "SELECT" ACCOUNT_COLS " FROM oauth_accounts a WHERE a.tenant_id = tern_current_tenant()"
    " AND a.id = $1 AND a.provider IN ('caldav', 'google')"
    " AND a.disconnected_at IS NULL AND a.calendar_id IS NOT NULL";

static const char sql_save_mirror[] =
    "UPDATE bookings SET synced_version = $2::int, calendar_account_id = $3::uuid,"
    " external_event_id = $4, external_href = $5, external_etag = $6, sync_error = $7,"
    " synced_at = now() WHERE tenant_id = tern_current_tenant() AND id = $1"
    " AND synced_version < $2::int";

static const char sql_save_busy[] =
    "SELECT tern_busy_replace($1::uuid, tstzrange(to_timestamp($2::bigint),"
    " to_timestamp($3::bigint)), ARRAY(SELECT tstzrange(to_timestamp(s), to_timestamp(e))"
    " FROM unnest($4::bigint[], $5::bigint[]) AS u(s, e)))";

static const char sql_deletion[] =
    "SELECT booking_id, account_id, calendar_id FROM calendar_deletions"
    " WHERE tenant_id = tern_current_tenant() AND id = $1";

static const char sql_deleted[] = "SELECT tern_calsync_event_deleted($1)";

/* open_hex - tn_open a sealed hex column (aad "oauth:<tenant>:<acct>:<kind>")
 * into a new string. Errors: TN_EDENIED when it does not open */
static enum tn_err open_hex(struct calsync_job *j, const char *hex, const char *kind, char **out)
{
    unsigned char *sealed = NULL, *pt = NULL;
    size_t slen = 0, plen = 0;
    char aad[128];
    enum tn_err err;

    *out = NULL;
    snprintf(aad, sizeof(aad), "oauth:%s:%s:%s", j->tenant, j->acct.id, kind);
    err = tn_hex_decode(hex, strlen(hex), &sealed, &slen);
    if (err == TN_OK && j->ctx->keys != NULL)
        err = tn_open(j->ctx->keys, aad, strlen(aad), sealed, slen, &pt, &plen);
    else if (err == TN_OK)
        err = TN_EDENIED;
    if (err == TN_OK) {
        *out = tn_xstrndup((const char *)pt, plen);
        tn_random_bytes(pt, plen); /* overwrite the plaintext before release */
    }
    tn_free(pt);
    tn_free(sealed);
    return err == TN_OK ? TN_OK : TN_EDENIED;
}

/* google_from - the Google part of an account row (columns col + 5 ..) */
static enum tn_err google_from(struct calsync_job *j, struct pg_result *res, int col)
{
    const char *acc = tn_pg_result_value(res, 0, col + 3);
    const char *ref = tn_pg_result_value(res, 0, col + 5);
    const char *exp = tn_pg_result_value(res, 0, col + 6);
    const char *su = tn_pg_result_value(res, 0, col + 8);
    enum tn_err err = TN_OK;

    j->acct.google = true;
    j->acct.url = tn_xstrdup(tn_pg_result_value(res, 0, col + 1));
    j->acct.expires_s = exp != NULL ? strtoll(exp, NULL, 10) : 0;
    snprintf(j->acct.send_updates, sizeof(j->acct.send_updates), "%s", su ? su : "none");
    if (acc != NULL)
        err = open_hex(j, acc, "access", &j->acct.access);
    if (err == TN_OK && ref != NULL)
        err = open_hex(j, ref, "refresh", &j->acct.refresh);
    return err;
}

/* zone_from - the tenant's zone name; one too long to be a zone name is
 * kept as one that names none, so that calsync_zone_pick says so */
static void zone_from(struct calsync_job *j, const char *tz)
{
    if (tz != NULL && strlen(tz) < sizeof(j->acct.time_zone))
        snprintf(j->acct.time_zone, sizeof(j->acct.time_zone), "%s", tz);
    else if (tz != NULL)
        snprintf(j->acct.time_zone, sizeof(j->acct.time_zone), "(too long)");
}

/* account_from - fill j->acct from the ACCOUNT_COLS at col.. of row 0; opens
 * the credentials. Errors: TN_EDENIED when they do not open */
static enum tn_err account_from(struct calsync_job *j, struct pg_result *res, int col)
{
    const char *url = tn_pg_result_value(res, 0, col + 1);
    const char *user = tn_pg_result_value(res, 0, col + 2);
    const char *hex = tn_pg_result_value(res, 0, col + 3);
    char *pw = NULL;
    size_t n;
    enum tn_err err;

    snprintf(j->acct.id, sizeof(j->acct.id), "%s", tn_pg_result_value(res, 0, col));
    j->acct.reconnect = strcmp(tn_pg_result_value(res, 0, col + 7), "t") == 0;
    zone_from(j, tn_pg_result_value(res, 0, col + 9));
    if (strcmp(tn_pg_result_value(res, 0, col + 4), "google") == 0)
        return google_from(j, res, col);
    n = strlen(url);
    j->acct.url = tn_xmalloc(n + 2);
    snprintf(j->acct.url, n + 2, "%s%s", url, n > 0 && url[n - 1] == '/' ? "" : "/");
    if (user == NULL || hex == NULL)
        return TN_OK; /* a calendar without authentication */
    err = open_hex(j, hex, "access", &pw);
    if (err == TN_OK) {
        n = strlen(user) + strlen(pw) + 2;
        j->acct.userpwd = tn_xmalloc(n);
        snprintf(j->acct.userpwd, n, "%s:%s", user, pw);
    }
    tn_free_secret(pw);
    return err;
}

/* load_mirror - the booking and its calendar */
static enum tn_err load_mirror(struct tn_pgconn *c, struct calsync_job *j)
{
    const char *p[1] = {j->id};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_booking, 1, p, &res);

    if (err != TN_OK || tn_pg_result_rows(res) != 1)
        goto out;
    j->found = true;
    j->want_event = strcmp(tn_pg_result_value(res, 0, 0), "t") == 0;
    j->start_s = strtoll(tn_pg_result_value(res, 0, 1), NULL, 10);
    j->end_s = strtoll(tn_pg_result_value(res, 0, 2), NULL, 10);
    j->summary = tn_xstrdup(tn_pg_result_value(res, 0, 3));
    j->version = (int)strtol(tn_pg_result_value(res, 0, 4), NULL, 10);
    j->has_account = tn_pg_result_value(res, 0, 5) != NULL;
    if (j->has_account)
        err = account_from(j, res, 5);
    /* a check acts only on a booking mirrored at this version to this account */
    j->in_sync = j->has_account && j->want_event && !strcmp(tn_pg_result_value(res, 0, 15), "t") &&
                 tn_pg_result_value(res, 0, 16) != NULL &&
                 strcmp(tn_pg_result_value(res, 0, 16), j->acct.id) == 0;
out:
    tn_pg_result_free(res);
    return err;
}

/* load_account - the account whose busy time is imported */
static enum tn_err load_account(struct tn_pgconn *c, struct calsync_job *j)
{
    const char *p[1] = {j->id};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_account, 1, p, &res);

    if (err == TN_OK && tn_pg_result_rows(res) == 1) {
        j->found = j->has_account = true;
        err = account_from(j, res, 0);
    }
    tn_pg_result_free(res);
    return err;
}

/* use_calendar - the job's calendar is the one the event was written to
 * (CalDAV: a collection URL, kept ending in '/') */
static void use_calendar(struct calsync_job *j, const char *cal)
{
    size_t n = strlen(cal);
    bool slash = !j->acct.google && (n == 0 || cal[n - 1] != '/');

    tn_free(j->acct.url);
    j->acct.url = tn_xmalloc(n + 2);
    snprintf(j->acct.url, n + 2, "%s%s", cal, slash ? "/" : "");
}

/* load_deletion - the calendar_deletions row, then its account (when it is
 * still connected: has_account); j->id becomes the booking's id */
static enum tn_err load_deletion(struct tn_pgconn *c, struct calsync_job *j)
{
    const char *p[1] = {j->id};
    struct pg_result *row = NULL, *acct = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_deletion, 1, p, &row);

    if (err != TN_OK || tn_pg_result_rows(row) != 1)
        goto out; /* gone: deleted already */
    j->found = true;
    snprintf(j->deletion, sizeof(j->deletion), "%s", j->id);
    snprintf(j->id, sizeof(j->id), "%s", tn_pg_result_value(row, 0, 0));
    p[0] = tn_pg_result_value(row, 0, 1);
    err = tn_pgconn_query(c, sql_account, 1, p, &acct);
    if (err == TN_OK && tn_pg_result_rows(acct) == 1) {
        j->has_account = true;
        err = account_from(j, acct, 0);
        use_calendar(j, tn_pg_result_value(row, 0, 2));
    }
out:
    tn_pg_result_free(acct);
    tn_pg_result_free(row);
    return err;
}

/* load_work - read-only transaction bound to the tenant. Runs on: threadpool */
static enum tn_err load_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_job *j = arg;
    enum tn_err err = tn_pgconn_begin_tenant(c, j->tenant);

    if (err != TN_OK)
        return err;
    if (j->kind == CALSYNC_DELETE) {
        err = load_deletion(c, j);
    } else if (j->kind == CALSYNC_WATCH || j->kind == CALSYNC_UNWATCH) {
        err = load_account(c, j);
        if (err == TN_OK && j->found)
            err = calsync_gwatch_load(c, j);
    } else {
        err = j->kind == CALSYNC_IMPORT ? load_account(c, j) : load_mirror(c, j);
    }
    tn_pgconn_rollback(c);
    return err;
}

/* save_mirror - the booking's mirror columns */
static enum tn_err save_mirror(struct tn_pgconn *c, struct calsync_job *j)
{
    char ver[16], uid[64];
    size_t o;
    bool live = j->err == TN_OK && j->want_event && j->has_account;
    const char *p[7];

    o = (size_t)snprintf(uid, sizeof(uid), CALSYNC_UID_PREFIX);
    for (const char *s = j->id; *s != '\0' && o + 1 < sizeof(uid); s++) {
        if (*s != '-')
            uid[o++] = *s;
    }
    uid[o] = '\0';
    snprintf(ver, sizeof(ver), "%d", j->version);
    p[0] = j->id, p[1] = ver, p[2] = j->has_account ? j->acct.id : NULL;
    p[3] = live ? uid : NULL, p[4] = live ? j->href : NULL, p[5] = live ? j->etag : NULL;
    p[6] = j->err == TN_OK ? NULL : j->why;
    return tn_pgconn_query(c, sql_save_mirror, 7, p, NULL);
}

/* int_array - new Postgres array text "{v0,v1,...}" of the starts or ends */
static char *int_array(const struct calsync_job *j, bool ends)
{
    size_t cap = 3 + j->nranges * 22, len = 1;
    char *buf = tn_xmalloc(cap);

    buf[0] = '{';
    for (size_t i = 0; i < j->nranges; i++) {
        long long v = (long long)(ends ? j->ranges[i].end : j->ranges[i].start);

        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? "," : "", v);
    }
    snprintf(buf + len, cap - len, "}");
    return buf;
}

/* save_busy - the imported ranges, replacing the window */
static enum tn_err save_busy(struct tn_pgconn *c, struct calsync_job *j)
{
    char *s = int_array(j, false), *e = int_array(j, true), from[24], to[24];
    const char *p[5];
    enum tn_err err;

    snprintf(from, sizeof(from), "%lld", (long long)j->win_from);
    snprintf(to, sizeof(to), "%lld", (long long)j->win_to);
    p[0] = j->acct.id, p[1] = from, p[2] = to, p[3] = s, p[4] = e;
    err = tn_pgconn_query(c, sql_save_busy, 5, p, NULL);
    if (err == TN_OK)
        err = calsync_twoway_candidates(c, j);
    tn_free(s);
    tn_free(e);
    return err;
}

/* save_deletion - the row is done with when the event is gone, was never
 * Tern's, or its account is gone; otherwise the scan tries again */
static enum tn_err save_deletion(struct tn_pgconn *c, struct calsync_job *j)
{
    bool done = j->err == TN_OK || (j->why != NULL && strcmp(j->why, "foreign_event") == 0);

    if (!done)
        return TN_OK;
    return tn_pgconn_query(c, sql_deleted, 1, (const char *[]){j->deletion}, NULL);
}

/* save_work - record the outcome. Runs on: threadpool */
static enum tn_err save_work(struct tn_pgconn *c, void *arg)
{
    struct calsync_job *j = arg;
    enum tn_err err = tn_pgconn_begin_tenant(c, j->tenant);

    if (err != TN_OK)
        return err;
    if (j->kind == CALSYNC_DELETE)
        err = save_deletion(c, j);
    else
        err = j->kind == CALSYNC_MIRROR ? save_mirror(c, j) : save_busy(c, j);
    if (err == TN_OK)
        return tn_pgconn_commit(c);
    tn_pgconn_rollback(c);
    return err;
}

/* job_done - a store call finished: record the error, continue. Runs on: loop */
static void job_done(enum tn_err err, void *arg)
{
    struct calsync_job *j = arg;

    if (err != TN_OK && j->err == TN_OK) {
        j->err = err;
        j->why = "database";
    }
    j->then(j);
}

/* submit - run work for j, then `then` */
static void submit(struct calsync_job *j, tn_pg_work_fn *work, void (*then)(struct calsync_job *))
{
    j->then = then;
    if (tn_pg_submit(j->ctx->pg, work, job_done, j) != TN_OK) {
        j->err = TN_ECANCELED;
        j->why = "shutting_down";
        then(j);
    }
}

/* calsync_store_load - load what the job needs */
void calsync_store_load(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    submit(j, load_work, then);
}

/* calsync_store_save - record the job's outcome (j->err is kept) */
void calsync_store_save(struct calsync_job *j, void (*then)(struct calsync_job *j))
{
    submit(j, save_work, then);
}
