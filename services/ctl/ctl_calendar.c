/*
 * NAME
 *	ctl_calendar - `ternctl calendar link`
 * SYNOPSIS
 *	ternctl calendar link --tenant T [--resource R] [--ttl 7d]
 *	ternctl calendar disconnect ... (ctl_privacy.c: tokens deleted now,
 *	grant revoked at the provider by tern-sweeper)
 * DESCRIPTION
 *	Prints the link a business owner opens to connect a Google Calendar:
 *	TN_INGEST_PUBLIC_URL/oauth/google/start?link=<token>, where the token
 *	is sealed with the master key (tn_oauth_link_seal) and names the tenant
 *	(an id or a slug) and optionally the resource (staff member, room)
 *	whose calendar it is. It expires after --ttl (default 7 days). Only
 *	such a link starts the flow in tern-ingest, so nobody can attach a
 *	calendar to another tenant.
 * RUNS ON
 *	Runs on: CLI (blocking libpq).
 * DIAGNOSTICS
 *	Exit 0 ok; 1 unknown tenant or server down; 64 usage; 78 missing
 *	TN_PG_DSN, key ring or TN_INGEST_PUBLIC_URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_env.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "ctl.h"

#define CALENDAR_USAGE                                                                             \
    "calendar link --tenant T [--resource R] [--ttl 7d]\n"                                         \
    "       ternctl calendar disconnect --tenant T --account ID (see privacy disconnect)"

/* calendar_link - `calendar link` */
static int calendar_link(int argc, char **argv)
{
    const char *tenant = NULL, *resource = NULL, *ttl = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &tenant},
                                   {"--resource", false, &resource},
                                   {"--ttl", false, &ttl},
                                   {NULL}};
    const char *base = getenv("TN_INGEST_PUBLIC_URL");
    struct tn_keyring *ring = NULL;
    struct tn_pgconn *c = NULL;
    int64_t ttl_ms = 7LL * 86400000;
    char tid[37], *token = NULL;
    int rc;

    if (!ctl_parse_opts(argc, argv, opts, NULL, NULL, 0, NULL) || tenant == NULL ||
        (ttl != NULL && (tn_env_parse_ms(ttl, &ttl_ms) != TN_OK || ttl_ms < 60000)))
        return ctl_usage(CALENDAR_USAGE);
    if (base == NULL || *base == '\0') {
        fprintf(stderr, "ternctl: calendar link needs TN_INGEST_PUBLIC_URL\n");
        return CTL_EX_CONFIG;
    }
    rc = ctl_load_keyring(&ring);
    if (rc == CTL_EX_OK)
        rc = ctl_connect(&c);
    if (rc == CTL_EX_OK)
        rc = ctl_tenant_resolve(c, tenant, tid);
    if (rc != CTL_EX_OK)
        goto out;
    token = tn_oauth_link_seal(ring, tid, resource, (tn_now_ms() + ttl_ms) / 1000);
    if (token == NULL) {
        rc = ctl_usage("calendar link: --resource must be a uuid");
        goto out;
    }
    printf("%.*s/oauth/google/start?link=%s\n",
           (int)(strlen(base) - (base[strlen(base) - 1] == '/')), base, token);
out:
    tn_free(token);
    tn_keyring_free(ring);
    tn_pgconn_close(c);
    return rc;
}

int ctl_calendar_main(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "link") == 0)
        return calendar_link(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "disconnect") == 0)
        return ctl_calendar_disconnect(argc, argv);
    return ctl_usage(CALENDAR_USAGE);
}
