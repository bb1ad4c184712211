/*
 * NAME
 *	sender_intake - deciding a fresh tern:out entry's send at intake
 * SYNOPSIS
 *	sender_intake_decide(conn, jobs, n);           (before the INSERT)
 *	sender_intake_state_arrays(a, jobs, n, p);     (its $18, $19)
 *	sender_intake_confirm(res, jobs, n);           (after it)
 * DESCRIPTION
 *	An entry due now (no not_before) of a WhatsApp or Twilio channel that
 *	found a free job slot and a free rate token (sender_send_reserve) is
 *	decided in the intake transaction (sender_out.c), before its row
 *	exists: one SELECT reads the facts prepare would read (consent,
 *	suppression, the 24-hour window, the channel's sealed secrets;
 *	sender_sql_fresh), sender_store_decide_fresh decides and builds the
 *	request exactly as prepare does, and the INSERT stores the row already
 *	'sending' (attempts 1, sending_at), or 'failed'/'dead' with the reason.
 *	That saves the row's second write, the prepare transaction and the
 *	schedule's claim. 'sending' is committed before the call, as always.
 *	Only a row the INSERT itself stored goes on this way (RETURNING lists
 *	inserted rows only; a duplicate in the batch or a row that existed
 *	takes the schedule: sender_intake_confirm).
 * RUNS ON
 *	threadpool (inside sender_out_work's transaction).
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_consumer.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>

#include "sender.h"

/* The entry values sender_sql_fresh takes ($4..$8: id, contact, channel,
 * expiry, address), as indexes of job->p (sender_out.c's INSERT). */
static const int fresh_cols[] = {1, 4, 5, 13, 16};
#define NFRESH (sizeof(fresh_cols) / sizeof(fresh_cols[0]))

/* fresh_state - the state job's row is inserted in (NULL: queued) once
 * sender_store_decide_fresh has decided its send job; a send the entry
 * named another provider for is not made here (its rate token was of that
 * provider's bucket): the schedule's prepare sends it */
static const char *fresh_state(struct sender_out_job *job)
{
    struct sender_job *sj = job->send;
    const char *prov = tn_entry_field(job->e, TN_F_PROVIDER, NULL);

    if (sj->row.state == NULL || sj->mark == NULL)
        return NULL; /* no such contact or channel, or nothing decided */
    if (strcmp(sj->mark, "sending") == 0 &&
        (sj->prov == NULL || prov == NULL || strcmp(sj->prov->name, prov) != 0)) {
        sender_req_free(&sj->req);
        return NULL;
    }
    snprintf(job->gen_id, sizeof(job->gen_id), "%s", sj->id);
    job->p[1] = job->gen_id; /* the row's id, also when outbound_id is not a uuid */
    sender_member_make(sj->member, sizeof(sj->member), sj->id, sj->channel, sj->contact,
                       sj->prov != NULL ? sj->prov->name : sj->row.channel_kind);
    return sj->mark;
}

/* fresh_of - what job's entry says of its message (job->p, sender_out.c) */
static struct sender_fresh fresh_of(const struct sender_out_job *job)
{
    return (struct sender_fresh){.kind = job->p[9],
                                 .text = job->p[7],
                                 .template_text = job->p[8],
                                 .reply_to = job->p[11],
                                 .reason = job->p[12],
                                 .trace = job->p[14],
                                 .source_entry = job->p[15],
                                 .conversation = job->p[3],
                                 .transport = job->p[10]};
}

/* sender_intake_decide - the entries with a reserved send job: their facts in one
 * SELECT, each decided as prepare would (consent, window, credentials,
 * request), so that the INSERT stores the outcome. Runs on: threadpool. */
enum tn_err sender_intake_decide(struct tn_pgconn *c, struct sender_out_job **jobs, size_t n)
{
    struct sender_job **sj = tn_xcalloc(n + 1, sizeof(*sj));
    struct sender_out_job **oj = tn_xcalloc(n + 1, sizeof(*oj));
    struct sender_fresh *f = tn_xcalloc(n + 1, sizeof(*f));
    struct tn_buf a[NFRESH + 1];
    const char *p[3 + NFRESH] = {jobs[0]->p[0]};
    struct pg_result *res = NULL;
    enum tn_err err = TN_OK;
    size_t m = 0;
    char idx[24];

    for (size_t i = 0; i < n; i++) {
        jobs[i]->st = NULL;
        jobs[i]->direct = false;
        if (jobs[i]->send != NULL && jobs[i]->send->row.state == NULL) {
            oj[m] = jobs[i];
            f[m] = fresh_of(jobs[i]);
            sj[m++] = jobs[i]->send;
        }
    }
    if (m == 0)
        goto out;
    for (size_t k = 0; k <= NFRESH; k++) {
        tn_buf_init(&a[k], 0);
        tn_buf_adds(&a[k], "{");
    }
    for (size_t i = 0; i < m; i++) {
        snprintf(idx, sizeof(idx), "%zu", i);
        sender_pg_array_add(&a[0], idx);
        for (size_t k = 0; k < NFRESH; k++)
            sender_pg_array_add(&a[1 + k], oj[i]->p[fresh_cols[k]]);
    }
    p[1] = sender_pg_array_end(&a[0]);
    p[2] = jobs[0]->ctx->cfg.suppression_key;
    for (size_t k = 0; k < NFRESH; k++)
        p[3 + k] = sender_pg_array_end(&a[1 + k]);
    err = tn_pgconn_query_cached(c, sender_sql_fresh, (int)(3 + NFRESH), p, &res);
    if (err == TN_OK)
        sender_store_decide_fresh(sj, f, m, res);
    for (size_t i = 0; err == TN_OK && i < m; i++)
        oj[i]->st = fresh_state(oj[i]);
    for (size_t k = 0; k <= NFRESH; k++)
        tn_buf_free(&a[k]);
out:
    tn_pg_result_free(res);
    tn_free(sj);
    tn_free(oj);
    tn_free(f);
    return err;
}

/* sender_intake_confirm - a decided entry goes on only if the INSERT stored its
 * row as decided: RETURNING lists only rows it inserted; a row that existed
 * (a redelivery, the producer's) or an earlier duplicate in the batch
 * takes the schedule instead */
void sender_intake_confirm(const struct pg_result *res, struct sender_out_job **jobs, size_t n)
{
    bool *taken = tn_xcalloc((size_t)tn_pg_result_rows(res) + 1, sizeof(*taken));
    struct sender_rowidx ids;

    sender_rowidx_init(&ids, res, 0);
    for (size_t i = 0; i < n; i++) {
        int r = jobs[i]->st != NULL ? sender_rowidx_find(&ids, jobs[i]->gen_id) : -1;

        if (r >= 0 && !taken[r] && strcmp(tn_pg_result_value(res, r, 1), jobs[i]->st) == 0) {
            taken[r] = true;
            jobs[i]->direct = true;
        }
    }
    sender_rowidx_free(&ids);
    tn_free(taken);
}

/* sender_intake_state_arrays - the $18 (state) and $19 (code) arrays of the INSERT */
void sender_intake_state_arrays(struct tn_buf *a, struct sender_out_job **jobs, size_t n,
                                const char **p)
{
    for (int k = 0; k < 2; k++) {
        tn_buf_init(&a[k], 0);
        tn_buf_adds(&a[k], "{");
    }
    for (size_t i = 0; i < n; i++) {
        const char *st = jobs[i]->st;
        const char *code = st != NULL && strcmp(st, "sending") != 0 ? jobs[i]->send->code : NULL;

        sender_pg_array_add(&a[0], st);
        sender_pg_array_add(&a[1], code);
    }
    p[17] = sender_pg_array_end(&a[0]);
    p[18] = sender_pg_array_end(&a[1]);
}
