/*
 * NAME
 *	ctl_migrate - `ternctl migrate`: apply the numbered SQL migrations
 * SYNOPSIS
 *	TN_PG_DSN=postgresql://admin@host/tern ternctl migrate
 * DESCRIPTION
 *	The migrations are proto/sql/NNNN_name.sql, embedded into the binary at
 *	build time (services/CMakeLists.txt), applied in file-name order. Each
 *	file runs in its own transaction together with its row in
 *	tern_migrations(version, name, sha256, applied_at), so a file is applied
 *	completely or not at all, and running migrate again is a no-op. A file
 *	whose SHA-256 differs from the one recorded when it was applied is an
 *	error: applied migrations are never edited, a new file is added instead.
 *	A session advisory lock serialises concurrent runs.
 *
 *	Files must not contain transaction control (BEGIN/COMMIT) or statements
 *	that cannot run in a transaction (CREATE INDEX CONCURRENTLY).
 *
 *	Must run as the admin DSN: a superuser (the schema owner). Roles,
 *	BYPASSRLS-dependent SECURITY DEFINER functions and extensions need it.
 * RUNS ON
 *	Runs on: CLI (blocking libpq; PQexec through tn_pgconn_exec_script).
 * DIAGNOSTICS
 *	"applied NNNN_x.sql" lines on stdout; errors on stderr; exit 0 / 1 / 64.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_pg.h>

#include "ctl.h"

#define MIGRATE_LOCK_KEY "7286540119" /* arbitrary, constant: pg_advisory_lock key */

static const char sql_bootstrap[] = "CREATE TABLE IF NOT EXISTS tern_migrations ("
                                    " version int PRIMARY KEY,"
                                    " name text NOT NULL,"
                                    " sha256 text NOT NULL,"
                                    " applied_at timestamptz NOT NULL DEFAULT now())";

/* The digest is computed by the server, so the CLI needs no crypto for this. */
static const char sql_check[] =
    "SELECT sha256 = encode(sha256(convert_to($2, 'UTF8')), 'hex'), name"
    " FROM tern_migrations WHERE version = $1::int";

static const char sql_record[] =
    "INSERT INTO tern_migrations (version, name, sha256, applied_at)"
    " VALUES ($1::int, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'), now())";

/* file_version - the NNNN prefix of a migration file name, or -1 */
static long file_version(const char *name)
{
    char *end = NULL;
    long v = strtol(name, &end, 10);

    if (end == name || *end != '_' || v <= 0 || v > 999999)
        return -1;
    return v;
}

/* apply_one - run one file and record it, in one transaction */
static enum tn_err apply_one(struct tn_pgconn *c, const struct ctl_sql_file *f, const char *ver)
{
    const char *params[3] = {ver, f->name, (const char *)f->text};
    enum tn_err err;

    err = tn_pgconn_begin(c);
    if (err != TN_OK)
        return err;
    err = tn_pgconn_exec_script(c, (const char *)f->text);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_record, 3, params, NULL);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err != TN_OK) {
        fprintf(stderr, "ternctl: migration %s failed: %s", f->name, tn_pgconn_last_error(c));
        tn_pgconn_rollback(c);
    }
    return err;
}

/* migrate_one - apply f unless already applied; refuse a changed file.
 * Returns an exit code. */
static int migrate_one(struct tn_pgconn *c, const struct ctl_sql_file *f)
{
    char ver[16];
    const char *params[2] = {ver, (const char *)f->text};
    struct pg_result *res = NULL;
    const char *same;
    long v = file_version(f->name);
    int rc = CTL_EX_OK;
    enum tn_err err;

    if (v < 0) {
        fprintf(stderr, "ternctl: %s: migration names are NNNN_name.sql\n", f->name);
        return CTL_EX_FAIL;
    }
    snprintf(ver, sizeof(ver), "%ld", v);
    err = tn_pgconn_query(c, sql_check, 2, params, &res);
    if (err != TN_OK) {
        rc = ctl_fail("reading tern_migrations", err);
        goto out;
    }
    if (tn_pg_result_rows(res) > 0) {
        same = tn_pg_result_value(res, 0, 0);
        if (same == NULL || strcmp(same, "t") != 0) {
            fprintf(stderr,
                    "ternctl: %s was changed after it was applied (as %s); add a new "
                    "migration instead\n",
                    f->name, tn_pg_result_value(res, 0, 1));
            rc = CTL_EX_FAIL;
        }
        goto out;
    }
    err = apply_one(c, f, ver);
    if (err != TN_OK) {
        rc = CTL_EX_FAIL;
        goto out;
    }
    printf("applied %s\n", f->name);
out:
    tn_pg_result_free(res);
    return rc;
}

/* ctl_migrate_main - `ternctl migrate` */
int ctl_migrate_main(int argc, char **argv, const struct ctl_sql_file *files, size_t n)
{
    const char *lock[1] = {MIGRATE_LOCK_KEY};
    struct tn_pgconn *c = NULL;
    enum tn_err err;
    int rc;

    (void)argv;
    if (argc != 0)
        return ctl_usage("migrate   (TN_PG_DSN = the admin DSN)");
    rc = ctl_connect(&c);
    if (rc != CTL_EX_OK)
        goto out;
    err = tn_pgconn_query(c, "SELECT pg_advisory_lock($1::bigint)", 1, lock, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_bootstrap, 0, NULL, NULL);
    if (err != TN_OK) {
        fprintf(stderr, "%s", tn_pgconn_last_error(c));
        rc = ctl_fail("preparing tern_migrations", err);
        goto out;
    }
    for (size_t i = 0; i < n && rc == CTL_EX_OK; i++)
        rc = migrate_one(c, &files[i]);
out:
    tn_pgconn_close(c); /* also releases the advisory lock */
    return rc;
}
