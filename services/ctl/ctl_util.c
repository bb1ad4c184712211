/*
 * NAME
 *	ctl_util - ternctl's shared helpers: connect, usage, option parsing
 * DESCRIPTION
 *	ternctl is an operator's CLI, so it blocks on libpq freely. It connects
 *	with TN_PG_DSN, which must be the admin (schema owner, superuser) DSN
 *	for `migrate`; the other commands also work as the tern_ctl role, which
 *	has BYPASSRLS and the grants they need (proto/sql/0001_schema.sql).
 * RUNS ON
 *	Runs on: CLI main thread (blocking).
 * DIAGNOSTICS
 *	Messages for the operator on stderr; exit codes in ctl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_env.h>
#include <tn/tn_pg.h>

#include "ctl.h"

/* ctl_connect - open TN_PG_DSN */
int ctl_connect(struct tn_pgconn **out)
{
    const char *dsn = getenv(TN_ENV_PG_DSN);
    enum tn_err err;

    *out = NULL;
    if (dsn == NULL || *dsn == '\0') {
        fprintf(stderr, "ternctl: set %s to the admin Postgres DSN\n", TN_ENV_PG_DSN);
        return CTL_EX_CONFIG;
    }
    err = tn_pgconn_open(dsn, out);
    if (err != TN_OK) {
        fprintf(stderr, "ternctl: cannot connect to %s (%s); TN_LOG_LEVEL=warn shows why\n",
                TN_ENV_PG_DSN, tn_strerror(err));
        return CTL_EX_FAIL;
    }
    return CTL_EX_OK;
}

/* ctl_tenant_resolve - tenant id from an id or a slug */
int ctl_tenant_resolve(struct tn_pgconn *c, const char *ref, char out[37])
{
    const char *params[1] = {ref};
    struct pg_result *res = NULL;
    enum tn_err err;
    int rc = CTL_EX_OK;

    err = tn_pgconn_query(c, "SELECT id FROM tenants WHERE id::text = $1 OR slug = $1", 1, params,
                          &res);
    if (err != TN_OK) {
        rc = ctl_fail("looking up the tenant", err);
        goto out;
    }
    if (tn_pg_result_rows(res) != 1) {
        fprintf(stderr, "ternctl: no tenant '%s'\n", ref);
        rc = CTL_EX_FAIL;
        goto out;
    }
    snprintf(out, 37, "%s", tn_pg_result_value(res, 0, 0));
out:
    tn_pg_result_free(res);
    return rc;
}

/* ctl_usage - usage message, EX_USAGE */
int ctl_usage(const char *text)
{
    fprintf(stderr, "usage: ternctl %s\n", text);
    return CTL_EX_USAGE;
}

/* ctl_fail - operation failure message */
int ctl_fail(const char *what, enum tn_err err)
{
    fprintf(stderr, "ternctl: %s: %s\n", what, tn_strerror(err));
    return CTL_EX_FAIL;
}

/* find_opt - the option named name, or NULL */
static const struct ctl_opt *find_opt(const struct ctl_opt *opts, const char *name)
{
    for (; opts->name != NULL; opts++) {
        if (strcmp(opts->name, name) == 0)
            return opts;
    }
    return NULL;
}

/* ctl_parse_opts - "--name value" / "--flag" options */
bool ctl_parse_opts(int argc, char **argv, const struct ctl_opt *opts, const char *repeat,
                    const char **repeat_vals, size_t repeat_max, size_t *nrepeat)
{
    const struct ctl_opt *o;

    if (nrepeat != NULL)
        *nrepeat = 0;
    for (int i = 0; i < argc; i++) {
        bool is_repeat = repeat != NULL && strcmp(argv[i], repeat) == 0;

        o = is_repeat ? NULL : find_opt(opts, argv[i]);
        if (!is_repeat && o == NULL) {
            fprintf(stderr, "ternctl: unknown argument '%s'\n", argv[i]);
            return false;
        }
        if (o != NULL && o->flag) {
            *o->value = "1";
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ternctl: %s needs a value\n", argv[i]);
            return false;
        }
        if (o != NULL) {
            *o->value = argv[++i];
            continue;
        }
        if (*nrepeat >= repeat_max) {
            fprintf(stderr, "ternctl: too many %s options\n", repeat);
            return false;
        }
        repeat_vals[(*nrepeat)++] = argv[++i];
    }
    return true;
}

struct key_cfg {
    char *master_key;
};

static const struct tn_env_spec key_env[] = {
    TN_ENV_SECRET(TN_ENV_MASTER_KEY, "", struct key_cfg, master_key),
    TN_ENV_END,
};

/* ctl_load_keyring - the master key ring from the environment */
int ctl_load_keyring(struct tn_keyring **out)
{
    struct key_cfg cfg = {0};
    int rc = CTL_EX_OK;

    *out = NULL;
    if (tn_env_load(key_env, &cfg) != TN_OK || cfg.master_key[0] == '\0') {
        fprintf(stderr, "ternctl: this needs TN_MASTER_KEY or TN_MASTER_KEY_FILE\n");
        rc = CTL_EX_CONFIG;
        goto out;
    }
    if (tn_keyring_parse(cfg.master_key, out) != TN_OK) {
        fprintf(stderr, "ternctl: the master key ring is malformed (ID:BASE64KEY,...)\n");
        rc = CTL_EX_CONFIG;
    }
out:
    tn_env_free(key_env, &cfg);
    return rc;
}
