/*
 * NAME
 *	ctl_tenant - `ternctl tenant add|list`
 * SYNOPSIS
 *	ternctl tenant add --slug S --name N [--tz Europe/Berlin]
 *	ternctl tenant list [--json]
 *	ternctl tenant delete --tenant T
 * DESCRIPTION
 *	add inserts a tenant and prints its new id (one line, nothing else on
 *	stdout, so scripts can capture it). The time zone must be an IANA
 *	name the server knows (the tenants CHECK constraint); the default is
 *	UTC. list prints every tenant, tab-separated with a header, or a JSON
 *	array with --json. delete marks the tenant deleted (deleted_at): its
 *	channels stop routing at once, and tern-sweeper then revokes its
 *	tokens and deletes all its rows, then the tenant (offboarding).
 * RUNS ON
 *	Runs on: CLI (blocking libpq).
 * DIAGNOSTICS
 *	Exit 0 ok; 1 refused (duplicate slug, bad time zone) or server down;
 *	64 usage; 78 TN_PG_DSN unset.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_pg.h>

#include "ctl.h"

#define TENANT_USAGE                                                                               \
    "tenant add --slug S --name N [--tz ZONE] | tenant list [--json] | tenant delete --tenant T"

static const char sql_add[] = "INSERT INTO tenants (slug, name, time_zone) VALUES ($1, $2, $3)"
                              " RETURNING id";

static const char sql_list[] =
    "SELECT id, slug, name, time_zone, to_char(created_at AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), deleted_at IS NOT NULL FROM tenants ORDER BY slug";

/* tenant_add - `tenant add` */
static int tenant_add(int argc, char **argv)
{
    const char *slug = NULL, *name = NULL, *tz = "UTC";
    const struct ctl_opt opts[] = {
        {"--slug", false, &slug}, {"--name", false, &name}, {"--tz", false, &tz}, {NULL}};
    const char *params[3];
    struct tn_pgconn *c = NULL;
    struct pg_result *res = NULL;
    enum tn_err err;
    int rc;

    if (!ctl_parse_opts(argc, argv, opts, NULL, NULL, 0, NULL) || slug == NULL || name == NULL)
        return ctl_usage(TENANT_USAGE);
    rc = ctl_connect(&c);
    if (rc != CTL_EX_OK)
        goto out;
    params[0] = slug;
    params[1] = name;
    params[2] = tz;
    err = tn_pgconn_query(c, sql_add, 3, params, &res);
    if (err == TN_ECONFLICT) {
        fprintf(stderr, "ternctl: a tenant with slug '%s' exists\n", slug);
        rc = CTL_EX_FAIL;
        goto out;
    }
    if (err != TN_OK) {
        fprintf(stderr, "%s", tn_pgconn_last_error(c));
        rc = ctl_fail("tenant add", err);
        goto out;
    }
    printf("%s\n", tn_pg_result_value(res, 0, 0));
out:
    tn_pg_result_free(res);
    tn_pgconn_close(c);
    return rc;
}

/* print_json - the tenant list as a JSON array on stdout */
static void print_json(const struct pg_result *res)
{
    json_t *arr = json_array();

    for (int i = 0; i < tn_pg_result_rows(res); i++) {
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:b}", "id", tn_pg_result_value(res, i, 0), "slug",
            tn_pg_result_value(res, i, 1), "name", tn_pg_result_value(res, i, 2), "time_zone",
            tn_pg_result_value(res, i, 3), "created_at", tn_pg_result_value(res, i, 4), "deleted",
            strcmp(tn_pg_result_value(res, i, 5), "t") == 0);
        json_array_append_new(arr, o);
    }
    json_dumpf(arr, stdout, JSON_INDENT(2));
    printf("\n");
    json_decref(arr);
}

/* tenant_list - `tenant list` */
static int tenant_list(int argc, char **argv)
{
    const char *json = NULL;
    const struct ctl_opt opts[] = {{"--json", true, &json}, {NULL}};
    struct tn_pgconn *c = NULL;
    struct pg_result *res = NULL;
    enum tn_err err;
    int rc;

    if (!ctl_parse_opts(argc, argv, opts, NULL, NULL, 0, NULL))
        return ctl_usage(TENANT_USAGE);
    rc = ctl_connect(&c);
    if (rc != CTL_EX_OK)
        goto out;
    err = tn_pgconn_query(c, sql_list, 0, NULL, &res);
    if (err != TN_OK) {
        rc = ctl_fail("tenant list", err);
        goto out;
    }
    if (json != NULL) {
        print_json(res);
        goto out;
    }
    printf("ID\tSLUG\tNAME\tTIME_ZONE\tCREATED_AT\n");
    for (int i = 0; i < tn_pg_result_rows(res); i++) {
        printf("%s\t%s\t%s\t%s\t%s%s\n", tn_pg_result_value(res, i, 0),
               tn_pg_result_value(res, i, 1), tn_pg_result_value(res, i, 2),
               tn_pg_result_value(res, i, 3), tn_pg_result_value(res, i, 4),
               strcmp(tn_pg_result_value(res, i, 5), "t") == 0 ? "\t(deleted)" : "");
    }
out:
    tn_pg_result_free(res);
    tn_pgconn_close(c);
    return rc;
}

static const char sql_delete[] =
    "UPDATE tenants SET deleted_at = now() WHERE id = $1::uuid AND deleted_at IS NULL";

/* tenant_delete - `tenant delete`: mark for offboarding */
static int tenant_delete(int argc, char **argv)
{
    const char *ref = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &ref}, {NULL}};
    struct tn_pgconn *c = NULL;
    char id[37];
    enum tn_err err;
    int rc;

    if (!ctl_parse_opts(argc, argv, opts, NULL, NULL, 0, NULL) || ref == NULL)
        return ctl_usage(TENANT_USAGE);
    rc = ctl_connect(&c);
    if (rc == CTL_EX_OK)
        rc = ctl_tenant_resolve(c, ref, id);
    if (rc != CTL_EX_OK)
        goto out;
    err = tn_pgconn_query(c, sql_delete, 1, (const char *[]){id}, NULL);
    if (err != TN_OK)
        rc = ctl_fail("tenant delete", err);
out:
    tn_pgconn_close(c);
    return rc;
}

/* ctl_tenant_main - `ternctl tenant ...` */
int ctl_tenant_main(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "add") == 0)
        return tenant_add(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return tenant_list(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "delete") == 0)
        return tenant_delete(argc - 1, argv + 1);
    return ctl_usage(TENANT_USAGE);
}
