/*
 * test_pg_roles - ACCEPTANCE: each daemon's Postgres role is refused
 * statements outside its grants and allowed the ones inside (STYLE.md R24).
 *
 * Every statement runs as the role, in a transaction bound to a fresh
 * tenant, and is rolled back. Privileges are checked when a statement starts,
 * so "WHERE false" statements prove a grant without touching rows. Then: no
 * daemon role but tern_sweeper may DELETE from any tenant-owned table, and no
 * daemon role may create objects in the schema.
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

static const struct rcase {
    const char *role; /* TN_TEST_PG_DSN_<role> */
    const char *sql;  /* $1 is the tenant id when uses_tenant */
    bool uses_tenant;
    enum tn_err want;
} cases[] = {
    /* ingest: only the tenant directory and the routing function */
    {"INGEST", "SELECT count(*) FROM messages", false, TN_EDENIED},
    {"INGEST", "SELECT count(*) FROM channels", false, TN_EDENIED},
    {"INGEST", "SELECT count(*) FROM contacts", false, TN_EDENIED},
    {"INGEST", "INSERT INTO tenants (slug, name) VALUES ('x-ingest', 'x')", false, TN_EDENIED},
    {"INGEST", "SELECT count(*) FROM tern_routing()", false, TN_OK},
    {"INGEST", "SELECT id, time_zone FROM tenants WHERE false", false, TN_OK},
    /* agent: the conversation tables, no DELETE, channel secrets (voice notes), no tokens */
    {"AGENT", "DELETE FROM messages WHERE false", false, TN_EDENIED},
    {"AGENT", "DELETE FROM contacts WHERE false", false, TN_EDENIED},
    {"AGENT", "SELECT secrets_sealed FROM channels", false, TN_OK}, /* voice notes: media tokens */
    {"AGENT", "SELECT access_token_sealed FROM oauth_accounts", false, TN_EDENIED},
    {"AGENT", "SELECT count(*) FROM tern_routing()", false, TN_EDENIED},
    {"AGENT", "UPDATE tenants SET name = name WHERE false", false, TN_EDENIED},
    {"AGENT", "SELECT kind, external_address FROM channels", false, TN_OK},
    {"AGENT",
     "INSERT INTO contacts (tenant_id, kind, address) VALUES ($1, 'whatsapp', '+15550001')", true,
     TN_OK},
    {"AGENT", "UPDATE conversations SET has_unprocessed = false WHERE false", false, TN_OK},
    {"AGENT", "SELECT count(*) FROM messages", false, TN_OK},
    {"AGENT", "UPDATE outbound_messages SET state = 'queued' WHERE false", false, TN_OK},
    /* sender: outbound state, reads what it needs to send, nothing else */
    {"SENDER", "UPDATE oauth_accounts SET needs_reconnect = true WHERE false", false, TN_EDENIED},
    {"SENDER",
     "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction) "
     "VALUES ($1, gen_random_uuid(), gen_random_uuid(), 'out')",
     true, TN_EDENIED},
    {"SENDER", "DELETE FROM outbound_messages WHERE false", false, TN_EDENIED},
    {"SENDER", "UPDATE contacts SET opted_out_at = now() WHERE false", false, TN_EDENIED},
    {"SENDER", "SELECT secrets_sealed FROM channels", false, TN_OK},
    /* a refreshed Gmail token is sealed back (0020), nothing else of a channel */
    {"SENDER", "UPDATE channels SET secrets_sealed = secrets_sealed WHERE false", false, TN_OK},
    {"SENDER", "UPDATE channels SET enabled = false WHERE false", false, TN_EDENIED},
    {"SENDER", "UPDATE channels SET external_address = 'x' WHERE false", false, TN_EDENIED},
    {"SENDER", "UPDATE outbound_messages SET state = 'sent' WHERE false", false, TN_OK},
    {"SENDER", "SELECT count(*) FROM suppressions", false, TN_OK},
    /* calsync: calendars and bookings only */
    {"CALSYNC", "SELECT count(*) FROM messages", false, TN_EDENIED},
    {"CALSYNC", "SELECT count(*) FROM contacts", false, TN_EDENIED},
    {"CALSYNC",
     "INSERT INTO bookings (tenant_id, contact_id, service_id, during) VALUES ($1, "
     "gen_random_uuid(), gen_random_uuid(), tstzrange(now(), now() + '1h'))",
     true, TN_EDENIED},
    {"CALSYNC", "UPDATE services SET name = name WHERE false", false, TN_EDENIED},
    {"CALSYNC", "UPDATE oauth_accounts SET needs_reconnect = true WHERE false", false, TN_OK},
    {"CALSYNC", "UPDATE bookings SET external_event_id = 'e' WHERE false", false, TN_OK},
    {"CALSYNC", "SELECT count(*) FROM services", false, TN_OK},
    /* sweeper: deletes and redacts, never creates conversation data */
    {"SWEEPER",
     "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction) "
     "VALUES ($1, gen_random_uuid(), gen_random_uuid(), 'in')",
     true, TN_EDENIED},
    {"SWEEPER", "INSERT INTO contacts (tenant_id, kind, address) VALUES ($1, 'email', 'a@b.c')",
     true, TN_EDENIED},
    {"SWEEPER", "UPDATE audit_log SET action = 'x' WHERE false", false, TN_EDENIED},
    {"SWEEPER", "DELETE FROM messages WHERE false", false, TN_OK},
    {"SWEEPER", "UPDATE contacts SET address = 'erased' WHERE false", false, TN_OK},
    {"SWEEPER", "INSERT INTO suppressions (tenant_id, address_hash, kind) VALUES ($1, 'h', 'x')",
     true, TN_OK},
    {"SWEEPER", "INSERT INTO audit_log (tenant_id, actor, action) VALUES ($1, 'sweeper', 'test')",
     true, TN_OK},
};

static char tenant[37];

/* setup - a tenant of our own */
static int setup(void **state)
{
    struct tn_pgconn *c = NULL;
    struct pg_result *res = NULL;
    char slug[96];
    const char *p[1] = {slug};

    (void)state;
    tn_log_init("test", TN_LOG_ERROR);
    tn_test_unique("roles", slug, sizeof(slug));
    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_ADMIN_DSN"), &c), TN_OK);
    assert_int_equal(tn_pgconn_query(c,
                                     "INSERT INTO tenants (slug, name) VALUES ($1, 'roles') "
                                     "RETURNING id",
                                     1, p, &res),
                     TN_OK);
    snprintf(tenant, sizeof(tenant), "%s", tn_pg_result_value(res, 0, 0));
    tn_pg_result_free(res);
    tn_pgconn_close(c);
    return 0;
}

/* as_role - run sql as role in a tenant-A transaction, rolled back */
static enum tn_err as_role(struct tn_pgconn *c, const char *sql, bool uses_tenant)
{
    const char *p[1] = {tenant};
    enum tn_err err;

    assert_int_equal(tn_pgconn_begin_tenant(c, tenant), TN_OK);
    err = tn_pgconn_query(c, sql, uses_tenant ? 1 : 0, p, NULL);
    assert_int_equal(tn_pgconn_rollback(c), TN_OK);
    return err;
}

/* open_role - a connection as tern_<role> */
static struct tn_pgconn *open_role(const char *role)
{
    char env[64];
    struct tn_pgconn *c = NULL;

    snprintf(env, sizeof(env), "TN_TEST_PG_DSN_%s", role);
    assert_int_equal(tn_pgconn_open(tn_test_env(env), &c), TN_OK);
    return c;
}

/* grants_table - each case gets exactly the expected outcome */
static void grants_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tn_pgconn *c = open_role(cases[i].role);
        enum tn_err got = as_role(c, cases[i].sql, cases[i].uses_tenant);

        if (got != cases[i].want)
            fail_msg("tern_%s: '%s': got %s, want %s", cases[i].role, cases[i].sql,
                     tn_strerror(got), tn_strerror(cases[i].want));
        tn_pgconn_close(c);
    }
}

/* only_sweeper_deletes - DELETE on every tenant-owned table, every daemon role */
static void only_sweeper_deletes(void **state)
{
    static const char *const daemons[] = {"INGEST", "AGENT", "CALSYNC", "SENDER", "SWEEPER"};
    struct tn_pgconn *admin = NULL;
    struct pg_result *tables = NULL;
    char sql[256];

    (void)state;
    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_ADMIN_DSN"), &admin), TN_OK);
    assert_int_equal(tn_pgconn_query(admin,
                                     "SELECT table_name FROM information_schema.columns"
                                     " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
                                     " ORDER BY 1",
                                     0, NULL, &tables),
                     TN_OK);
    assert_true(tn_pg_result_rows(tables) >= 13);
    for (size_t r = 0; r < sizeof(daemons) / sizeof(daemons[0]); r++) {
        struct tn_pgconn *c = open_role(daemons[r]);
        enum tn_err want = strcmp(daemons[r], "SWEEPER") == 0 ? TN_OK : TN_EDENIED;

        for (int i = 0; i < tn_pg_result_rows(tables); i++) {
            enum tn_err got;

            snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE false",
                     tn_pg_result_value(tables, i, 0));
            got = as_role(c, sql, false);
            if (got != want)
                fail_msg("tern_%s: %s: got %s", daemons[r], sql, tn_strerror(got));
        }
        assert_int_equal(as_role(c, "CREATE TABLE tern_roles_probe (x int)", false), TN_EDENIED);
        assert_int_equal(as_role(c, "DELETE FROM tenants WHERE false", false),
                         want == TN_OK ? TN_OK : TN_EDENIED); /* sweeper offboards tenants */
        tn_pgconn_close(c);
    }
    tn_pg_result_free(tables);
    tn_pgconn_close(admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grants_table),
        cmocka_unit_test(only_sweeper_deletes),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
