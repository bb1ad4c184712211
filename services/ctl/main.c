/*
 * NAME
 *	ternctl - the operator's command-line tool
 * SYNOPSIS
 *	ternctl migrate
 *	ternctl tenant add --slug S --name N [--tz Europe/Berlin] | tenant list [--json]
 *	ternctl channel add --tenant T --kind K --address A [--name N] [--secret k=v ...]
 *	ternctl channel list --tenant T [--json] | channel remove --tenant T --id ID
 *	ternctl calendar link --tenant T [--resource R] [--ttl 7d]
 *	ternctl streams ...
 *	ternctl dead list|show|replay ... (dead letters; see ctl_dead.c)
 *	ternctl privacy erase|export|restrict|unrestrict|disconnect ...
 *	(privacy requests; see ctl_privacy.c)
 *	ternctl keys status|reseal [--tenant T] (master key rotation; ctl_keys.c)
 * DESCRIPTION
 *	A dispatch table over the command groups (ctl_*.c). Blocking libpq is
 *	fine here: this is a CLI, not a daemon loop.
 * DATABASE
 *	tern_migrations and the whole schema (migrate); tenants (tenant);
 *	channels (channel). Tenant data is otherwise untouched.
 * ENVIRONMENT
 *	TN_PG_DSN: the admin DSN (the schema owner; a superuser). `migrate`
 *	requires it; tenant/channel also work as the tern_ctl role (BYPASSRLS).
 *	TN_MASTER_KEY / TN_MASTER_KEY_FILE: the key ring for channel secrets.
 *	TN_LOG_LEVEL: library log lines (JSON on stdout); off unless set.
 *	Redis variables: see ctl_streams.c.
 * SECURITY
 *	Holds the admin DSN and the master key ring: run it from an operator's
 *	shell or a one-shot job, never as a long-lived service. Channel secrets
 *	are sealed (AES-256-GCM) before they reach the database and are never
 *	printed. Exit codes: 0 ok, 1 failed, 64 usage, 78 configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_log.h>

#include "ctl.h"
#include "ctl_streams.h"

/* XXX: weak until ctl_streams.c is in every build; a NULL entry says so. */
#pragma weak ctl_streams_main

/* migrate_cmd - migrations embedded in this binary (only main links them) */
static int migrate_cmd(int argc, char **argv)
{
    return ctl_migrate_main(argc, argv, ctl_sql_files, ctl_sql_nfiles);
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    /* clang-format off */
    {"migrate", migrate_cmd},
    {"tenant", ctl_tenant_main},
    {"channel", ctl_channel_main},
    {"calendar", ctl_calendar_main},
    {"streams", ctl_streams_main},
    {"dead", ctl_dead_main},
    {"privacy", ctl_privacy_main},
    {"keys", ctl_keys_main},
    /* clang-format on */
};

/* main - set up logging, dispatch on argv[1] */
int main(int argc, char **argv)
{
    const char *lvl = getenv("TN_LOG_LEVEL");
    enum tn_log_level min = TN_LOG_FATAL;

    if (lvl != NULL && tn_log_level_parse(lvl, &min) != TN_OK)
        min = TN_LOG_WARN;
    tn_log_init("ctl", min);
    for (size_t i = 0; argc >= 2 && i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (commands[i].fn == NULL)
            return ctl_usage("streams: not built into this ternctl");
        return commands[i].fn(argc - 2, argv + 2);
    }
    return ctl_usage(
        "migrate | tenant add|list|delete | channel "
        "add|list|secrets|disconnect|enable|remove | calendar link|disconnect | streams ... | "
        "dead list|show|replay | privacy ... | keys status|reseal");
}
