/*
 * NAME
 *	sweeper_export - write everything held about one contact as one JSON
 *	document
 * SYNOPSIS
 *	err = sweeper_export_work(c, job);
 * DESCRIPTION
 *	Postgres builds the document in one statement (a consistent snapshot,
 *	bound to the tenant): the contact, its conversations each with its
 *	messages (oldest first), the lead, bookings, consent history and
 *	outbound messages. Internal bookkeeping columns (tenant_id, leases,
 *	sealed values) are left out.
 *
 *	The file is TN_SWEEPER_EXPORT_DIR/export-<request id>.json, written to
 *	a temporary name with mode 0600, flushed and renamed into place, so a
 *	reader never sees half a document; a redelivery writes the same file
 *	again. The request is then marked done with the file name in its
 *	receipt.
 * RUNS ON
 *	Runs on: threadpool.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <tn/tn_log.h>
#include <tn/tn_pg.h>

#include "sweeper.h"

static const char sql_document[] =
    "SELECT jsonb_build_object("
    " 'format', 'tern.export.v1', 'request_id', $2::text, 'tenant', $3::text,"
    " 'exported_at', now(),"
    " 'contact', (SELECT to_jsonb(c) - 'tenant_id' FROM contacts c WHERE c.id = $1::uuid),"
    " 'conversations', COALESCE((SELECT jsonb_agg((to_jsonb(v) - 'tenant_id' - 'lease_owner'"
    "   - 'lease_until' - 'has_unprocessed') || jsonb_build_object('messages',"
    "   COALESCE((SELECT jsonb_agg(to_jsonb(m) - 'tenant_id' ORDER BY m.created_at, m.id)"
    "     FROM messages m WHERE m.conversation_id = v.id), '[]'::jsonb)) ORDER BY v.created_at)"
    "   FROM conversations v WHERE v.contact_id = $1::uuid), '[]'::jsonb),"
    " 'lead', (SELECT to_jsonb(l) - 'tenant_id' FROM leads l WHERE l.contact_id = $1::uuid),"
    " 'bookings', COALESCE((SELECT jsonb_agg(to_jsonb(b) - 'tenant_id' ORDER BY b.during)"
    "   FROM bookings b WHERE b.contact_id = $1::uuid), '[]'::jsonb),"
    " 'consent_events', COALESCE((SELECT jsonb_agg(to_jsonb(e) - 'tenant_id'"
    "   ORDER BY e.created_at) FROM consent_events e WHERE e.contact_id = $1::uuid), '[]'::jsonb),"
    " 'outbound_messages', COALESCE((SELECT jsonb_agg(to_jsonb(o) - 'tenant_id'"
    "   ORDER BY o.created_at) FROM outbound_messages o WHERE o.contact_id = $1::uuid),"
    "   '[]'::jsonb)"
    ")::text WHERE EXISTS (SELECT 1 FROM contacts WHERE id = $1::uuid)";

/* write_file - doc into dir/export-<request>.json, atomically, mode 0600 */
static enum tn_err write_file(const char *dir, const char *request, const char *doc, char *name,
                              size_t size)
{
    char path[4096], tmp[4200];
    size_t len = strlen(doc), off = 0;
    int fd;

    snprintf(name, size, "export-%s.json", request);
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return TN_EINVAL;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return TN_EUNAVAIL;
    while (off < len) {
        ssize_t w = write(fd, doc + off, len - off);

        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off != len || fsync(fd) != 0 || close(fd) != 0) {
        if (off != len)
            close(fd);
        unlink(tmp);
        return TN_EUNAVAIL;
    }
    return rename(tmp, path) == 0 ? TN_OK : TN_EUNAVAIL;
}

/* document - the write, inside the tenant transaction */
static enum tn_err document(struct tn_pgconn *c, struct sweeper_job *job)
{
    const char *p[] = {job->contact, job->request, job->tenant};
    struct pg_result *res = NULL;
    char name[100], receipt[300];
    enum tn_err err = tn_pgconn_query(c, sql_document, 3, p, &res);

    if (err != TN_OK)
        goto out;
    if (tn_pg_result_rows(res) != 1) {
        job->fail = "no_such_contact";
        goto out;
    }
    err = write_file(job->ctx->cfg.export_dir, job->request, tn_pg_result_value(res, 0, 0), name,
                     sizeof(name));
    if (err != TN_OK) {
        tn_log_error(NULL, "sweeper.export_write_failed", TN_KV_STR("request", job->request));
        goto out;
    }
    job->purged = 1;
    snprintf(receipt, sizeof(receipt), "{\"request\":\"%s\",\"file\":\"%s\"}", job->request, name);
    err = sweeper_request_finish(c, job, "privacy.export", receipt);
out:
    tn_pg_result_free(res);
    return err;
}

/* sweeper_export_work - build, write, record */
enum tn_err sweeper_export_work(struct tn_pgconn *c, struct sweeper_job *job)
{
    bool done = false;
    enum tn_err err;

    if (job->ctx->cfg.export_dir[0] == '\0') {
        job->fail = "no_export_dir";
        return TN_OK;
    }
    err = tn_pgconn_begin_tenant(c, job->tenant);
    if (err != TN_OK)
        return err;
    err = sweeper_request_done_already(c, job, &done);
    if (err == TN_OK && !done)
        err = document(c, job);
    if (err != TN_OK || job->fail != NULL || done) {
        tn_pgconn_rollback(c);
        return err;
    }
    return tn_pgconn_commit(c);
}
