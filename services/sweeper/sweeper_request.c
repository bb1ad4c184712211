/*
 * NAME
 *	sweeper_request - a privacy request's threadpool body: dispatch, the
 *	privacy_requests row and its audit receipt, restrict and unrestrict
 * SYNOPSIS
 *	tn_pg_submit(pg, sweeper_request_work, done, job);
 * DESCRIPTION
 *	Each kind is idempotent: a request whose privacy_requests row is
 *	already done is acknowledged again without effect, and every effect
 *	and the row's completion commit in one transaction bound to the
 *	tenant, so a crash before COMMIT simply replays the request.
 *
 *	A request enqueued by another producer than ternctl may come without
 *	its row: the row is then created on completion (upsert).
 *
 *	restrict sets contacts.restricted_at (the flag tern-agent and
 *	tern-sender check before they act for a contact) and records a
 *	consent_events row; unrestrict clears it. Both only when the state
 *	changes, so a redelivery records nothing twice.
 * RUNS ON
 *	Runs on: threadpool.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_pg.h>

#include "sweeper.h"

static const char sql_state[] =
    "SELECT status FROM privacy_requests WHERE id = $1::uuid FOR UPDATE";

static const char sql_finish[] =
    "INSERT INTO privacy_requests (tenant_id, id, kind, subject_ref, status, completed_at, receipt)"
    " VALUES ($1::uuid, $2::uuid, $3, $4, 'done', now(), $5::jsonb)"
    " ON CONFLICT (tenant_id, id) DO UPDATE SET status = 'done', completed_at = now(),"
    " receipt = EXCLUDED.receipt";

static const char sql_audit[] =
    "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES ($1::uuid, 'sweeper', $2,"
    " $3::jsonb)";

static const char sql_restrict[] =
    "UPDATE contacts SET restricted_at = now() WHERE id = $1::uuid AND restricted_at IS NULL";

static const char sql_unrestrict[] =
    "UPDATE contacts SET restricted_at = NULL WHERE id = $1::uuid AND restricted_at IS NOT NULL";

static const char sql_exists[] = "SELECT 1 FROM contacts WHERE id = $1::uuid";

static const char sql_consent[] = "INSERT INTO consent_events (tenant_id, contact_id, kind, source)"
                                  " VALUES ($1::uuid, $2::uuid, $3, 'privacy_request')";

static const char *const kind_names[] = {"erase", "export", "restrict", "unrestrict", "disconnect"};

/* sweeper_request_done_already - is the row done? */
enum tn_err sweeper_request_done_already(struct tn_pgconn *c, const struct sweeper_job *job,
                                         bool *done)
{
    const char *p[] = {job->request};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_state, 1, p, &res);

    *done = err == TN_OK && tn_pg_result_rows(res) == 1 &&
            strcmp(tn_pg_result_value(res, 0, 0), "done") == 0;
    tn_pg_result_free(res);
    return err;
}

/* sweeper_request_finish - the row done, and the audit receipt */
enum tn_err sweeper_request_finish(struct tn_pgconn *c, const struct sweeper_job *job,
                                   const char *action, const char *receipt)
{
    char subject[64];
    const char *p[5];
    enum tn_err err;

    if (job->kind == SWEEPER_DISCONNECT && job->channel[0] != '\0')
        snprintf(subject, sizeof(subject), "channel:%s", job->channel);
    else if (job->kind == SWEEPER_DISCONNECT)
        snprintf(subject, sizeof(subject), "account:%s", job->account);
    else
        snprintf(subject, sizeof(subject), "contact:%s", job->contact);
    p[0] = job->tenant;
    p[1] = job->request;
    p[2] = kind_names[job->kind];
    p[3] = subject;
    p[4] = receipt;
    err = tn_pgconn_query(c, sql_finish, 5, p, NULL);
    if (err != TN_OK)
        return err;
    return tn_pgconn_query(c, sql_audit, 3, (const char *[]){job->tenant, action, receipt}, NULL);
}

/* restrict_work - set or clear the flag, with its consent event */
static enum tn_err restrict_work(struct tn_pgconn *c, struct sweeper_job *job, bool on)
{
    const char *p[] = {job->contact};
    struct pg_result *res = NULL;
    char receipt[200];
    long changed;
    enum tn_err err;

    err = tn_pgconn_query(c, on ? sql_restrict : sql_unrestrict, 1, p, &res);
    if (err != TN_OK)
        return err;
    changed = tn_pg_result_affected(res);
    tn_pg_result_free(res);
    res = NULL;
    if (changed == 0) { /* unchanged: the contact must still exist */
        err = tn_pgconn_query(c, sql_exists, 1, p, &res);
        if (err == TN_OK && tn_pg_result_rows(res) == 0)
            job->fail = "no_such_contact";
        tn_pg_result_free(res);
        if (err != TN_OK || job->fail != NULL)
            return err;
    } else {
        const char *q[] = {job->tenant, job->contact, on ? "restrict" : "unrestrict"};

        err = tn_pgconn_query(c, sql_consent, 3, q, NULL);
        if (err != TN_OK)
            return err;
    }
    job->purged = changed;
    snprintf(receipt, sizeof(receipt), "{\"request\":\"%s\",\"changed\":%ld}", job->request,
             changed);
    return sweeper_request_finish(c, job, on ? "privacy.restrict" : "privacy.unrestrict", receipt);
}

/* tenant_txn - one transaction bound to the tenant around fn */
static enum tn_err tenant_txn(struct tn_pgconn *c, struct sweeper_job *job,
                              enum tn_err (*fn)(struct tn_pgconn *, struct sweeper_job *, bool),
                              bool on)
{
    bool done = false;
    enum tn_err err = tn_pgconn_begin_tenant(c, job->tenant);

    if (err != TN_OK)
        return err;
    err = sweeper_request_done_already(c, job, &done);
    if (err == TN_OK && !done)
        err = fn(c, job, on);
    if (err != TN_OK || job->fail != NULL) {
        tn_pgconn_rollback(c);
        return err;
    }
    return tn_pgconn_commit(c);
}

/* sweeper_request_work - dispatch on the kind */
enum tn_err sweeper_request_work(struct tn_pgconn *c, void *arg)
{
    struct sweeper_job *job = arg;
    enum tn_err err;

    switch (job->kind) {
    case SWEEPER_ERASE:
        err = sweeper_erase_work(c, job);
        break;
    case SWEEPER_EXPORT:
        err = sweeper_export_work(c, job);
        break;
    case SWEEPER_DISCONNECT:
        err = sweeper_disconnect_work(c, job);
        break;
    default:
        err = tenant_txn(c, job, restrict_work, job->kind == SWEEPER_RESTRICT);
        break;
    }
    if (err == TN_EINVAL || err == TN_EDENIED) /* a bug or a missing grant: no retry helps */
        job->fail = job->fail != NULL ? job->fail : "database_refused";
    return err;
}
