/*
 * NAME
 *	sweeper_erase - erase one data subject (a contact) of one tenant
 * SYNOPSIS
 *	err = sweeper_erase_work(c, job);
 * DESCRIPTION
 *	Three steps, so that a crash anywhere replays harmlessly:
 *	1. Read (tenant transaction): the identifiers that name the person in
 *	   Redis ("needles"): the contact id, address (with and without '+'),
 *	   emails, conversation and outbound ids, provider message ids.
 *	2. Scrub Redis (sweeper_redis.c): stream entries, dedupe keys,
 *	   scheduled sends. Nothing in Postgres has changed yet, so a failure
 *	   here retries with every needle still known.
 *	3. Delete (one tenant transaction): messages (with their raw provider
 *	   payloads and media references), outbound messages, consent events,
 *	   bookings, the lead, conversations and the contact; add the address
 *	   and emails to suppressions as HMAC-SHA256 under TN_SUPPRESSION_KEY
 *	   (hex), kind 'erased'; mark the request done with a receipt of
 *	   counts per table (ids and numbers only) and copy it to audit_log.
 *	   Before the bookings go, each one with an event in a calendar gets a
 *	   calendar_deletions row (sweeper_caldel.c), in this transaction.
 *	4. After COMMIT: one cal.request delete_event per such row on tern:cal;
 *	   tern-calsync deletes Tern's event from the Google or CalDAV calendar
 *	   (its scan takes a row whose entry was lost).
 *	A redelivery after step 3 finds the request done and does nothing.
 *
 *	XXX: a booking whose first mirror is in flight during the erasure (its
 *	event created, not yet recorded in the booking) leaves that event in
 *	the calendar: nothing names it any more. The window is one calendar
 *	round trip after a booking is made.
 * RUNS ON
 *	Runs on: threadpool.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "sweeper.h"

#define MAX_NEEDLES 20000

/* Identifiers of the person, at least 6 characters (shorter ones would
 * match unrelated text). */
static const char sql_needles[] =
    "SELECT DISTINCT v FROM ("
    " SELECT id::text AS v FROM contacts WHERE id = $1::uuid"
    " UNION ALL SELECT address FROM contacts WHERE id = $1::uuid"
    " UNION ALL SELECT ltrim(address, '+') FROM contacts WHERE id = $1::uuid"
    " UNION ALL SELECT email FROM contacts WHERE id = $1::uuid"
    " UNION ALL SELECT email FROM leads WHERE contact_id = $1::uuid"
    " UNION ALL SELECT id::text FROM conversations WHERE contact_id = $1::uuid"
    " UNION ALL SELECT id::text FROM outbound_messages WHERE contact_id = $1::uuid"
    " UNION ALL SELECT provider_message_id FROM outbound_messages WHERE contact_id = $1::uuid"
    " UNION ALL SELECT m.provider_message_id FROM messages m JOIN conversations v"
    "  ON v.tenant_id = m.tenant_id AND v.id = m.conversation_id WHERE v.contact_id = $1::uuid"
    ") s WHERE v IS NOT NULL AND length(v) >= 6 LIMIT 20000";

/* Addresses to suppress: the contact's address and every email known. */
static const char sql_addresses[] =
    "SELECT address FROM contacts WHERE id = $1::uuid"
    " UNION SELECT email FROM contacts WHERE id = $1::uuid AND email IS NOT NULL"
    " UNION SELECT email FROM leads WHERE contact_id = $1::uuid AND email IS NOT NULL";

static const char sql_suppress[] =
    "INSERT INTO suppressions (tenant_id, address_hash, kind) VALUES ($1::uuid, $2, 'erased')"
    " ON CONFLICT DO NOTHING";

/* In order: children first. Each takes $1 = the contact id. */
static const struct {
    const char *table;
    const char *sql;
} deletes[] = {
    {"messages", "DELETE FROM messages m USING conversations v WHERE v.tenant_id = m.tenant_id"
                 " AND v.id = m.conversation_id AND v.contact_id = $1::uuid"},
    {"outbound_messages", "DELETE FROM outbound_messages WHERE contact_id = $1::uuid"},
    {"consent_events", "DELETE FROM consent_events WHERE contact_id = $1::uuid"},
    {"bookings", "DELETE FROM bookings WHERE contact_id = $1::uuid"},
    {"leads", "DELETE FROM leads WHERE contact_id = $1::uuid"},
    {"conversations", "DELETE FROM conversations WHERE contact_id = $1::uuid"},
    {"contacts", "DELETE FROM contacts WHERE id = $1::uuid"},
};

/* read_needles - step 1: *res holds the needles (one column); *done when
 * the request was finished before */
static enum tn_err read_needles(struct tn_pgconn *c, struct sweeper_job *job,
                                struct pg_result **res, bool *done)
{
    enum tn_err err = tn_pgconn_begin_tenant(c, job->tenant);

    if (err != TN_OK)
        return err;
    err = sweeper_request_done_already(c, job, done);
    if (err == TN_OK && !*done)
        err = tn_pgconn_query(c, sql_needles, 1, (const char *[]){job->contact}, res);
    tn_pgconn_rollback(c); /* read only */
    return err;
}

/* suppress - step 3: the keyed hashes of every address of the person */
static enum tn_err suppress(struct tn_pgconn *c, struct sweeper_job *job, long *n)
{
    const char *key = job->ctx->cfg.suppression_key;
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_addresses, 1, (const char *[]){job->contact}, &res);

    *n = 0;
    for (int i = 0; err == TN_OK && i < tn_pg_result_rows(res); i++) {
        const char *a = tn_pg_result_value(res, i, 0);
        unsigned char mac[TN_SHA256_LEN];
        char *hex;

        tn_hmac_sha256(key, strlen(key), a, strlen(a), mac);
        hex = tn_hex_encode(mac, sizeof(mac));
        err = tn_pgconn_query(c, sql_suppress, 2, (const char *[]){job->tenant, hex}, NULL);
        tn_free(hex);
        (*n)++;
    }
    tn_pg_result_free(res);
    return err;
}

/* delete_rows - step 3: every table, counts into the receipt */
static enum tn_err delete_rows(struct tn_pgconn *c, struct sweeper_job *job, struct tn_buf *r)
{
    enum tn_err err = TN_OK;

    tn_buf_adds(r, "\"tables\":{");
    for (size_t i = 0; err == TN_OK && i < sizeof(deletes) / sizeof(deletes[0]); i++) {
        struct pg_result *res = NULL;
        long n;

        err = tn_pgconn_query(c, deletes[i].sql, 1, (const char *[]){job->contact}, &res);
        n = err == TN_OK ? tn_pg_result_affected(res) : 0;
        tn_pg_result_free(res);
        job->purged += n;
        tn_buf_printf(r, "%s\"%s\":%ld", i > 0 ? "," : "", deletes[i].table, n);
    }
    tn_buf_adds(r, "}");
    return err;
}

/* delete_all - step 3 in one tenant transaction; *cal gets the calendar
 * events to delete (new, tn_free; NULL when none or on error) */
static enum tn_err delete_all(struct tn_pgconn *c, struct sweeper_job *job, const long redis[3],
                              struct sweeper_caldel **cal, size_t *ncal)
{
    struct tn_buf r;
    bool done = false;
    long nsup = 0;
    enum tn_err err = tn_pgconn_begin_tenant(c, job->tenant);

    *cal = NULL;
    *ncal = 0;
    if (err != TN_OK)
        return err;
    tn_buf_init(&r, 0);
    err = sweeper_request_done_already(c, job, &done);
    if (err != TN_OK || done)
        goto out;
    err = suppress(c, job, &nsup);
    tn_buf_printf(&r, "{\"request\":\"%s\",", job->request);
    if (err == TN_OK)
        err = sweeper_caldel_record(c, job->contact, cal, ncal); /* before the bookings go */
    if (err == TN_OK)
        err = delete_rows(c, job, &r);
    tn_buf_printf(&r,
                  ",\"redis\":{\"stream_entries\":%ld,\"keys\":%ld,\"members\":%ld},"
                  "\"suppressed\":%ld,\"calendar_events\":%zu}",
                  redis[0], redis[1], redis[2], nsup, *ncal);
    if (err == TN_OK)
        err = sweeper_request_finish(c, job, "privacy.erase", r.data);
out:
    tn_buf_free(&r);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    else
        tn_pgconn_rollback(c);
    if (err != TN_OK) { /* nothing committed: nothing to announce */
        tn_free(*cal);
        *cal = NULL;
        *ncal = 0;
    }
    return err;
}

/* sweeper_erase_work - the four steps */
enum tn_err sweeper_erase_work(struct tn_pgconn *c, struct sweeper_job *job)
{
    struct pg_result *res = NULL;
    const char **needles = NULL;
    struct sweeper_caldel *cal = NULL;
    long redis[3] = {0, 0, 0};
    size_t n = 0, ncal = 0;
    bool done = false;
    enum tn_err err;

    if (job->ctx->cfg.suppression_key[0] == '\0') {
        tn_log_error(NULL, "sweeper.no_suppression_key", TN_KV_STR("request", job->request));
        return TN_EUNAVAIL;
    }
    err = read_needles(c, job, &res, &done);
    if (err != TN_OK || done)
        goto out;
    n = (size_t)tn_pg_result_rows(res);
    needles = tn_xcalloc(n + 1, sizeof(*needles));
    for (size_t i = 0; i < n && i < MAX_NEEDLES; i++)
        needles[i] = tn_pg_result_value(res, (int)i, 0);
    if (n > 0)
        err = sweeper_redis_scrub(job->ctx->redis_url, job->tenant, needles, n, redis);
    if (err == TN_OK)
        err = delete_all(c, job, redis, &cal, &ncal);
    if (err == TN_OK)
        sweeper_caldel_publish(job->ctx->redis_url, job->tenant, cal, ncal);
out:
    tn_free(cal);
    tn_free(needles);
    tn_pg_result_free(res);
    return err;
}
