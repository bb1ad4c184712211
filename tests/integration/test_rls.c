/*
 * test_rls - ACCEPTANCE: row-level security isolates tenants for every daemon
 * role on every tenant-owned table.
 *
 * The admin creates tenants A and B and one or more rows for each in EVERY
 * tenant-owned table. Then, for each daemon role and each table that role can
 * read, in a transaction bound to tenant A: B's rows are invisible, cannot be
 * updated or deleted, and no row with tenant_id B can be inserted (WITH
 * CHECK) or produced by an update; A's rows are visible and A's inserts
 * succeed (the positive controls that show the checks can fail). Without the
 * tenant setting a role sees no rows and can insert none. Finally B's rows
 * are all still there. The list of tenant-owned tables comes from
 * information_schema (every table with a tenant_id column): a table without
 * FORCEd RLS and a policy, or without an insert template here, fails.
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
#include <tn/tn_pg.h>

#include "tn_test.h"

/* One tenant's fixture ids. */
struct fx {
    char tenant[37], contact[37], contact2[37], channel[37], conv[37], service[37];
};

/* Insert templates. args letters: t tenant, c contact, k contact2 (unused by
 * the fixture rows), h channel, v conversation, s service, u a unique text. */
static const struct tpl {
    const char *table, *sql, *args;
} tpls[] = {
    {"channels",
     "INSERT INTO channels (tenant_id, kind, external_address) "
     "VALUES ($1, 'telegram', $2)",
     "tu"},
    {"contacts", "INSERT INTO contacts (tenant_id, kind, address) VALUES ($1, 'whatsapp', $2)",
     "tu"},
    {"conversations",
     "INSERT INTO conversations (tenant_id, contact_id, channel_id) "
     "VALUES ($1, $2, $3)",
     "tkh"},
    {"messages",
     "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
     "provider_message_id, body) VALUES ($1, $2, $3, 'in', $4, 'hello')",
     "tvhu"},
    {"leads", "INSERT INTO leads (tenant_id, contact_id) VALUES ($1, $2)", "tk"},
    {"oauth_accounts",
     "INSERT INTO oauth_accounts (tenant_id, provider, account_email) "
     "VALUES ($1, 'google', $2)",
     "tu"},
    {"services", "INSERT INTO services (tenant_id, name, duration_min) VALUES ($1, $2, 30)", "tu"},
    {"bookings",
     "INSERT INTO bookings (tenant_id, contact_id, service_id, resource_id, during) "
     "VALUES ($1, $2, $3, $4, tstzrange(now(), now() + interval '30 minutes'))",
     "tcsu"},
    {"outbound_messages",
     "INSERT INTO outbound_messages (tenant_id, contact_id, channel_id, "
     "idempotency_key, body) VALUES ($1, $2, $3, $4, 'hi')",
     "tchu"},
    {"consent_events",
     "INSERT INTO consent_events (tenant_id, contact_id, kind, source) "
     "VALUES ($1, $2, 'opt_in', 'test')",
     "tc"},
    {"suppressions",
     "INSERT INTO suppressions (tenant_id, address_hash, kind) "
     "VALUES ($1, $2, 'whatsapp')",
     "tu"},
    {"privacy_requests",
     "INSERT INTO privacy_requests (tenant_id, kind, subject_ref) "
     "VALUES ($1, 'export', $2)",
     "tu"},
    {"audit_log", "INSERT INTO audit_log (tenant_id, actor, action) VALUES ($1, 'test', $2)", "tu"},
    {"agent_profiles", "INSERT INTO agent_profiles (tenant_id, business_name) VALUES ($1, $2)",
     "tu"},
    {"business_hours",
     "INSERT INTO business_hours (tenant_id, weekday, opens, closes) "
     "VALUES ($1, 1, '09:00', '17:00')",
     "t"},
    {"hours_exceptions",
     "INSERT INTO hours_exceptions (tenant_id, day, note) VALUES ($1, '2030-12-25', $2)", "tu"},
    {"resources", "INSERT INTO resources (tenant_id, id, name) VALUES ($1, $2, 'room')", "tu"},
    {"service_resources",
     "WITH r AS (INSERT INTO resources (tenant_id, id, name) VALUES ($1, $3, 'staff') "
     "RETURNING id) INSERT INTO service_resources (tenant_id, service_id, resource_id) "
     "SELECT $1, $2, id FROM r",
     "tsu"},
    {"busy_blocks",
     "INSERT INTO busy_blocks (tenant_id, resource_key, during, source) "
     "VALUES ($1, $2, tstzrange(now(), now() + interval '1 hour'), 'test')",
     "tu"},
    {"calendar_deletions",
     "INSERT INTO calendar_deletions (tenant_id, booking_id, account_id, calendar_id) "
     "VALUES ($1, gen_random_uuid(), gen_random_uuid(), $2)",
     "tu"},
};
#define NTPL (sizeof(tpls) / sizeof(tpls[0]))

static const char *const roles[] = {"INGEST", "AGENT", "CALSYNC", "SENDER", "SWEEPER"};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

static struct fx fa, fb;

/* find_tpl - the template of table, or NULL */
static const struct tpl *find_tpl(const char *table)
{
    for (size_t i = 0; i < NTPL; i++) {
        if (strcmp(tpls[i].table, table) == 0)
            return &tpls[i];
    }
    return NULL;
}

/* one_value - run sql (parameterised) and copy the single value into out */
static enum tn_err one_value(struct tn_pgconn *c, const char *sql, int n, const char *const *p,
                             char *out, size_t size)
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql, n, p, &res);

    if (err == TN_OK) {
        assert_int_equal(tn_pg_result_rows(res), 1);
        snprintf(out, size, "%s", tn_pg_result_value(res, 0, 0));
    }
    tn_pg_result_free(res);
    return err;
}

/* count_rows - SELECT count(*) as a number */
static long count_rows(struct tn_pgconn *c, const char *sql, int n, const char *const *p)
{
    char v[32];

    assert_int_equal(one_value(c, sql, n, p, v, sizeof(v)), TN_OK);
    return strtol(v, NULL, 10);
}

/* run_tpl - insert one row for f with template t */
static enum tn_err run_tpl(struct tn_pgconn *c, const struct tpl *t, const struct fx *f)
{
    const char *p[8];
    char uniq[96];
    int n = 0;

    tn_test_unique("rls", uniq, sizeof(uniq));
    for (const char *a = t->args; *a != '\0'; a++) {
        p[n++] = *a == 't'   ? f->tenant
                 : *a == 'c' ? f->contact
                 : *a == 'k' ? f->contact2
                 : *a == 'h' ? f->channel
                 : *a == 'v' ? f->conv
                 : *a == 's' ? f->service
                             : uniq;
    }
    return tn_pgconn_query(c, t->sql, n, p, NULL);
}

/* make_tenant - tenant plus base rows, then one row in every table */
static void make_tenant(struct tn_pgconn *c, struct fx *f)
{
    char slug[96], addr[96];
    const char *p[3];

    tn_test_unique("rls", slug, sizeof(slug));
    p[0] = slug;
    assert_int_equal(one_value(c,
                               "INSERT INTO tenants (slug, name) VALUES ($1, 'rls test') "
                               "RETURNING id",
                               1, p, f->tenant, sizeof(f->tenant)),
                     TN_OK);
    p[0] = f->tenant;
    p[1] = tn_test_unique("wa", addr, sizeof(addr));
    assert_int_equal(one_value(c,
                               "INSERT INTO channels (tenant_id, kind, external_address) "
                               "VALUES ($1, 'whatsapp', $2) RETURNING id",
                               2, p, f->channel, sizeof(f->channel)),
                     TN_OK);
    assert_int_equal(one_value(c,
                               "INSERT INTO contacts (tenant_id, kind, address) "
                               "VALUES ($1, 'whatsapp', $2 || 'c') RETURNING id",
                               2, p, f->contact, sizeof(f->contact)),
                     TN_OK);
    assert_int_equal(one_value(c,
                               "INSERT INTO contacts (tenant_id, kind, address) "
                               "VALUES ($1, 'whatsapp', $2 || 'k') RETURNING id",
                               2, p, f->contact2, sizeof(f->contact2)),
                     TN_OK);
    assert_int_equal(one_value(c,
                               "INSERT INTO services (tenant_id, name, duration_min) "
                               "VALUES ($1, 'cut', 30) RETURNING id",
                               1, p, f->service, sizeof(f->service)),
                     TN_OK);
    p[1] = f->contact;
    p[2] = f->channel;
    assert_int_equal(one_value(c,
                               "INSERT INTO conversations (tenant_id, contact_id, channel_id) "
                               "VALUES ($1, $2, $3) RETURNING id",
                               3, p, f->conv, sizeof(f->conv)),
                     TN_OK);
    assert_int_equal(tn_pgconn_query(c,
                                     "INSERT INTO leads (tenant_id, contact_id) "
                                     "VALUES ($1, $2)",
                                     2, p, NULL),
                     TN_OK);
    for (size_t i = 0; i < NTPL; i++) {
        if (strchr(tpls[i].args, 'k') == NULL) /* those would take contact2 */
            assert_int_equal(run_tpl(c, &tpls[i], f), TN_OK);
    }
}

/* setup - the admin builds tenants A and B */
static int setup(void **state)
{
    struct tn_pgconn *c = NULL;

    (void)state;
    tn_log_init("test", TN_LOG_ERROR);
    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_ADMIN_DSN"), &c), TN_OK);
    make_tenant(c, &fa);
    make_tenant(c, &fb);
    tn_pgconn_close(c);
    return 0;
}

/* tenant_tables - every base table in public with a tenant_id column */
static struct pg_result *tenant_tables(struct tn_pgconn *c)
{
    struct pg_result *res = NULL;

    assert_int_equal(
        tn_pgconn_query(c,
                        "SELECT t.table_name, cl.relrowsecurity, cl.relforcerowsecurity,"
                        " (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public'"
                        "   AND p.tablename = t.table_name)"
                        " FROM information_schema.tables t"
                        " JOIN information_schema.columns col ON col.table_schema = t.table_schema"
                        "  AND col.table_name = t.table_name AND col.column_name = 'tenant_id'"
                        " JOIN pg_class cl ON cl.oid = ('public.' || quote_ident(t.table_name))"
                        "::regclass WHERE t.table_schema = 'public'"
                        " AND t.table_type = 'BASE TABLE' ORDER BY 1",
                        0, NULL, &res),
        TN_OK);
    return res;
}

/* every_table_has_rls - forced RLS, a policy, and a template for each table */
static void every_table_has_rls(void **state)
{
    struct tn_pgconn *c = NULL;
    struct pg_result *res;

    (void)state;
    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_ADMIN_DSN"), &c), TN_OK);
    res = tenant_tables(c);
    assert_true(tn_pg_result_rows(res) >= (int)NTPL);
    for (int i = 0; i < tn_pg_result_rows(res); i++) {
        const char *t = tn_pg_result_value(res, i, 0);

        if (strcmp(tn_pg_result_value(res, i, 1), "t") != 0 ||
            strcmp(tn_pg_result_value(res, i, 2), "t") != 0 ||
            strcmp(tn_pg_result_value(res, i, 3), "0") == 0)
            fail_msg("table %s lacks forced row-level security or a policy", t);
        if (find_tpl(t) == NULL)
            fail_msg("table %s has tenant_id but no insert template in test_rls", t);
    }
    tn_pg_result_free(res);
    tn_pgconn_close(c);
}

/* privs - what role may do on table, asked of the admin */
static void privs(struct tn_pgconn *admin, const char *role, const char *table, bool out[4])
{
    struct pg_result *res = NULL;
    const char *p[2] = {role, table};

    assert_int_equal(tn_pgconn_query(admin,
                                     "SELECT has_any_column_privilege($1, $2, 'SELECT'),"
                                     " has_table_privilege($1, $2, 'UPDATE'),"
                                     " has_table_privilege($1, $2, 'DELETE'),"
                                     " has_table_privilege($1, $2, 'INSERT')",
                                     2, p, &res),
                     TN_OK);
    for (int i = 0; i < 4; i++)
        out[i] = strcmp(tn_pg_result_value(res, 0, i), "t") == 0;
    tn_pg_result_free(res);
}

/* check_no_setting - without tern.tenant_id: nothing visible, nothing insertable */
static void check_no_setting(struct tn_pgconn *c, const char *table, const bool pv[4])
{
    char sql[256];
    const char *p[2] = {fa.tenant, fb.tenant};

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE tenant_id IN ($1, $2)", table);
    assert_int_equal(count_rows(c, sql, 2, p), 0);
    if (pv[3])
        assert_int_equal(run_tpl(c, find_tpl(table), &fa), TN_EDENIED);
}

/* exec_affected - run a statement, return rows affected (or -1 on error) */
static long exec_affected(struct tn_pgconn *c, const char *sql, int n, const char *const *p)
{
    struct pg_result *res = NULL;
    long rows = -1;

    if (tn_pgconn_query(c, sql, n, p, &res) == TN_OK)
        rows = tn_pg_result_affected(res);
    tn_pg_result_free(res);
    return rows;
}

/* check_as_a - bound to tenant A: B is out of reach, A is in reach */
static void check_as_a(struct tn_pgconn *c, const char *table, const bool pv[4])
{
    char sql[256];
    const char *pb[1] = {fb.tenant}, *pa[1] = {fa.tenant};

    assert_int_equal(tn_pgconn_begin_tenant(c, fa.tenant), TN_OK);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE tenant_id = $1", table);
    assert_int_equal(count_rows(c, sql, 1, pb), 0);
    assert_true(count_rows(c, sql, 1, pa) >= 1);
    if (pv[1]) {
        snprintf(sql, sizeof(sql), "UPDATE %s SET tenant_id = tenant_id WHERE tenant_id = $1",
                 table);
        assert_int_equal(exec_affected(c, sql, 1, pb), 0);
        assert_true(exec_affected(c, sql, 1, pa) >= 1);
        snprintf(sql, sizeof(sql), "UPDATE %s SET tenant_id = $1", table);
        assert_int_equal(tn_pgconn_query(c, sql, 1, pb, NULL), TN_EDENIED); /* WITH CHECK */
        tn_pgconn_rollback(c);
        assert_int_equal(tn_pgconn_begin_tenant(c, fa.tenant), TN_OK);
    }
    if (pv[2]) {
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE tenant_id = $1", table);
        assert_int_equal(exec_affected(c, sql, 1, pb), 0);
    }
    if (pv[3]) {
        assert_int_equal(run_tpl(c, find_tpl(table), &fa), TN_OK);
        assert_int_equal(run_tpl(c, find_tpl(table), &fb), TN_EDENIED);
    }
    tn_pgconn_rollback(c);
}

/* isolation_per_role - every role x every table it can read */
static void isolation_per_role(void **state)
{
    struct tn_pgconn *admin = NULL, *c = NULL;
    struct pg_result *tables;
    long before[NTPL], checked = 0;
    char env[64], role[32], sql[256];
    const char *pb[1] = {fb.tenant};

    (void)state;
    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_ADMIN_DSN"), &admin), TN_OK);
    for (size_t i = 0; i < NTPL; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE tenant_id = $1", tpls[i].table);
        before[i] = count_rows(admin, sql, 1, pb);
        assert_true(before[i] >= 1);
    }
    tables = tenant_tables(admin);
    for (size_t r = 0; r < NROLES; r++) {
        snprintf(env, sizeof(env), "TN_TEST_PG_DSN_%s", roles[r]);
        snprintf(role, sizeof(role), "tern_%s", roles[r]);
        for (size_t k = 0; role[k] != '\0'; k++)
            role[k] = (char)(role[k] >= 'A' && role[k] <= 'Z' ? role[k] + 32 : role[k]);
        assert_int_equal(tn_pgconn_open(tn_test_env(env), &c), TN_OK);
        for (int i = 0; i < tn_pg_result_rows(tables); i++) {
            const char *t = tn_pg_result_value(tables, i, 0);
            bool pv[4];

            privs(admin, role, t, pv);
            if (!pv[0])
                continue;
            check_no_setting(c, t, pv);
            check_as_a(c, t, pv);
            checked++;
        }
        tn_pgconn_close(c);
        c = NULL;
    }
    assert_true(checked >= 20); /* agent, sender, calsync, sweeper read many tables */
    for (size_t i = 0; i < NTPL; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE tenant_id = $1", tpls[i].table);
        assert_int_equal(count_rows(admin, sql, 1, pb), before[i]);
    }
    tn_pg_result_free(tables);
    tn_pgconn_close(admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_table_has_rls),
        cmocka_unit_test(isolation_per_role),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
