/*
 * NAME
 *	ctl_channel - `ternctl channel add|list|secrets|disconnect|enable|remove`
 * SYNOPSIS
 *	ternctl channel add --tenant T --kind K --address A [--name N] [--secret k=v ...]
 *	ternctl channel list --tenant T [--json]
 *	ternctl channel secrets --tenant T --id ID [--secret k=v ...]
 *	ternctl channel disconnect --tenant T --id ID [--wait SECONDS]
 *	ternctl channel enable --tenant T --id ID
 *	ternctl channel remove --tenant T --id ID
 * DESCRIPTION
 *	A channel is one provider endpoint of a tenant (a WhatsApp
 *	phone_number_id, a Twilio number, a Telegram bot, a mailbox); its
 *	(kind, address) pair routes webhooks to exactly one tenant. T is the
 *	tenant's id or slug. add prints the new channel's id.
 *
 *	Secrets (--secret app_secret=..., verify_token=..., auth_token=...,
 *	secret_token=...) become one JSON object, sealed with AES-256-GCM under
 *	the current key of TN_MASTER_KEY / TN_MASTER_KEY_FILE (tn_seal) with
 *	the aad "channel:<tenant_id>:<channel_id>", and stored in
 *	channels.secrets_sealed with the key id in secrets_key_id. The
 *	plaintext never reaches the database, a log or the terminal: list
 *	shows only whether secrets are set and under which key.
 *
 *	secrets, disconnect and enable change a channel in place
 *	(ctl_channel_state.c).
 *
 *	remove deletes the channel row; the server refuses (a foreign key) while
 *	conversations or messages still refer to it, and the message says so.
 * RUNS ON
 *	Runs on: CLI (blocking libpq).
 * DIAGNOSTICS
 *	Exit 0 ok; 1 refused (duplicate address, unknown tenant or channel,
 *	channel in use) or server down; 64 usage; 78 missing configuration
 *	(TN_PG_DSN, or the key ring when secrets are given).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_env.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_secrets.h>

#include "ctl.h"

#define CHANNEL_USAGE                                                                              \
    "channel add --tenant T --kind whatsapp|twilio_sms|twilio_whatsapp|telegram|email "            \
    "--address A [--name N] [--secret k=v ...]\n"                                                  \
    "       ternctl channel list --tenant T [--json]\n"                                            \
    "       ternctl channel secrets --tenant T --id ID [--secret k=v ...]\n"                       \
    "       ternctl channel disconnect --tenant T --id ID [--wait SECONDS]\n"                      \
    "       ternctl channel enable --tenant T --id ID\n"                                           \
    "       ternctl channel remove --tenant T --id ID"

static const char *const kinds[] = {"whatsapp", "twilio_sms", "twilio_whatsapp", "telegram",
                                    "email"};

static const char sql_insert[] =
    "INSERT INTO channels (tenant_id, id, kind, external_address, display_name, secrets_sealed,"
    " secrets_key_id) VALUES ($1, $2, $3, $4, $5, $6::bytea, $7::int)";

static const char sql_list[] =
    "SELECT id, kind, external_address, COALESCE(display_name, ''), enabled,"
    " secrets_sealed IS NOT NULL, secrets_key_id FROM channels WHERE tenant_id = $1"
    " ORDER BY kind, external_address";

/* kind_valid - is k one of the channel kinds? */
static bool kind_valid(const char *k)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(k, kinds[i]) == 0)
            return true;
    }
    return false;
}

/* ctl_secrets_json - see ctl.h */
char *ctl_secrets_json(const char **kv, size_t n)
{
    json_t *o = json_object();
    char *text = NULL;
    size_t len;

    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        char *key;

        if (eq == NULL || eq == kv[i])
            goto out;
        key = tn_xstrndup(kv[i], (size_t)(eq - kv[i]));
        if (json_object_get(o, key) != NULL) {
            tn_free(key);
            goto out;
        }
        json_object_set_new(o, key, json_string(eq + 1));
        tn_free(key);
    }
    len = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
    text = tn_xmalloc(len + 1);
    json_dumpb(o, text, len, JSON_COMPACT | JSON_SORT_KEYS);
    text[len] = '\0';
out:
    json_decref(o);
    return text;
}

/* ctl_seal_hex - see ctl.h */
char *ctl_seal_hex(const struct tn_keyring *k, const char *tenant, const char *channel,
                   const char *json, char keyid[16])
{
    char *hex = tn_secrets_seal_hex(k, tenant, channel, json), *out;

    if (hex == NULL)
        return NULL;
    out = tn_xmalloc(strlen(hex) + 3);
    snprintf(out, strlen(hex) + 3, "\\x%s", hex);
    snprintf(keyid, 16, "%u", (unsigned)tn_keyring_current(k));
    tn_free(hex);
    return out;
}

/* new_uuid - a fresh uuid from the server into out (37 bytes) */
static enum tn_err new_uuid(struct tn_pgconn *c, char out[37])
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, "SELECT gen_random_uuid()", 0, NULL, &res);

    if (err == TN_OK)
        snprintf(out, 37, "%s", tn_pg_result_value(res, 0, 0));
    tn_pg_result_free(res);
    return err;
}

/* insert_channel - seal (if secrets) and insert one channel row */
static int insert_channel(struct tn_pgconn *c, const char *const p[5], const char *json,
                          const struct tn_keyring *k)
{
    char keyid[16];
    char *hex = NULL;
    const char *params[7] = {p[0], p[1], p[2], p[3], p[4], NULL, NULL};
    enum tn_err err;
    int rc = CTL_EX_OK;

    if (json != NULL) {
        hex = ctl_seal_hex(k, p[0], p[1], json, keyid);
        if (hex == NULL) {
            rc = ctl_fail("sealing the secrets", TN_EINVAL);
            goto out;
        }
        params[5] = hex;
        params[6] = keyid;
    }
    err = tn_pgconn_query(c, sql_insert, 7, params, NULL);
    if (err == TN_ECONFLICT) {
        fprintf(stderr, "ternctl: a %s channel with address '%s' exists\n", p[2], p[3]);
        rc = CTL_EX_FAIL;
    } else if (err != TN_OK) {
        fprintf(stderr, "%s", tn_pgconn_last_error(c));
        rc = ctl_fail("channel add", err);
    }
out:
    tn_free(hex);
    return rc;
}

/* channel_add - `channel add` */
static int channel_add(int argc, char **argv)
{
    const char *tenant = NULL, *kind = NULL, *addr = NULL, *name = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &tenant},
                                   {"--kind", false, &kind},
                                   {"--address", false, &addr},
                                   {"--name", false, &name},
                                   {NULL}};
    const char *kv[CTL_CHANNEL_MAX_SECRETS];
    size_t nkv = 0;
    char tid[37], cid[37];
    char *json = NULL;
    struct tn_keyring *ring = NULL;
    struct tn_pgconn *c = NULL;
    int rc;

    if (!ctl_parse_opts(argc, argv, opts, "--secret", kv, CTL_CHANNEL_MAX_SECRETS, &nkv) ||
        tenant == NULL || kind == NULL || addr == NULL || !kind_valid(kind) || *addr == '\0')
        return ctl_usage(CHANNEL_USAGE);
    if (nkv > 0) {
        json = ctl_secrets_json(kv, nkv);
        if (json == NULL) {
            rc = ctl_usage("channel add ... --secret key=value (non-empty, unique keys)");
            goto out;
        }
        rc = ctl_load_keyring(&ring);
        if (rc != CTL_EX_OK)
            goto out;
    }
    rc = ctl_connect(&c);
    if (rc == CTL_EX_OK)
        rc = ctl_tenant_resolve(c, tenant, tid);
    if (rc != CTL_EX_OK)
        goto out;
    if (new_uuid(c, cid) != TN_OK) {
        rc = ctl_fail("channel add", TN_EUNAVAIL);
        goto out;
    }
    rc = insert_channel(c, (const char *const[5]){tid, cid, kind, addr, name}, json, ring);
    if (rc == CTL_EX_OK)
        printf("%s\n", cid);
out:
    if (json != NULL)
        tn_wipe(json, strlen(json)); /* plaintext secrets */
    tn_free(json);
    tn_keyring_free(ring);
    tn_pgconn_close(c);
    return rc;
}

/* print_json - the channel list as a JSON array (no secrets) */
static void print_json(const struct pg_result *res)
{
    json_t *arr = json_array();

    for (int i = 0; i < tn_pg_result_rows(res); i++) {
        const char *kid = tn_pg_result_value(res, i, 6);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "id", tn_pg_result_value(res, i, 0),
                              "kind", tn_pg_result_value(res, i, 1), "address",
                              tn_pg_result_value(res, i, 2), "name", tn_pg_result_value(res, i, 3),
                              "enabled", strcmp(tn_pg_result_value(res, i, 4), "t") == 0,
                              "has_secrets", strcmp(tn_pg_result_value(res, i, 5), "t") == 0);

        json_object_set_new(o, "key_id",
                            kid != NULL ? json_integer(strtol(kid, NULL, 10)) : json_null());
        json_array_append_new(arr, o);
    }
    json_dumpf(arr, stdout, JSON_INDENT(2));
    printf("\n");
    json_decref(arr);
}

/* print_table - the channel list, tab-separated with a header */
static void print_table(const struct pg_result *res)
{
    printf("ID\tKIND\tADDRESS\tNAME\tENABLED\tSECRETS\n");
    for (int i = 0; i < tn_pg_result_rows(res); i++) {
        const char *kid = tn_pg_result_value(res, i, 6);

        printf("%s\t%s\t%s\t%s\t%s\t%s%s\n", tn_pg_result_value(res, i, 0),
               tn_pg_result_value(res, i, 1), tn_pg_result_value(res, i, 2),
               tn_pg_result_value(res, i, 3),
               strcmp(tn_pg_result_value(res, i, 4), "t") == 0 ? "yes" : "no",
               kid != NULL ? "sealed:key" : "none", kid != NULL ? kid : "");
    }
}

/* channel_list - `channel list` */
static int channel_list(int argc, char **argv)
{
    const char *tenant = NULL, *json = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &tenant}, {"--json", true, &json}, {NULL}};
    const char *params[1];
    char tid[37];
    struct tn_pgconn *c = NULL;
    struct pg_result *res = NULL;
    enum tn_err err;
    int rc;

    if (!ctl_parse_opts(argc, argv, opts, NULL, NULL, 0, NULL) || tenant == NULL)
        return ctl_usage(CHANNEL_USAGE);
    rc = ctl_connect(&c);
    if (rc == CTL_EX_OK)
        rc = ctl_tenant_resolve(c, tenant, tid);
    if (rc != CTL_EX_OK)
        goto out;
    params[0] = tid;
    err = tn_pgconn_query(c, sql_list, 1, params, &res);
    if (err != TN_OK) {
        rc = ctl_fail("channel list", err);
        goto out;
    }
    if (json != NULL)
        print_json(res);
    else
        print_table(res);
out:
    tn_pg_result_free(res);
    tn_pgconn_close(c);
    return rc;
}

/* ctl_channel_target - see ctl.h */
int ctl_channel_target(int argc, char **argv, const char *usage, struct ctl_channel_ref *t,
                       struct tn_pgconn **c)
{
    const struct ctl_opt opts[] = {{"--tenant", false, &t->tenant},
                                   {"--id", false, &t->id},
                                   {"--wait", false, &t->wait},
                                   {NULL}};
    int rc;

    *c = NULL;
    t->tenant = t->id = t->wait = NULL;
    if (!ctl_parse_opts(argc, argv, opts, NULL, NULL, 0, NULL) || t->tenant == NULL ||
        t->id == NULL)
        return ctl_usage(usage);
    rc = ctl_connect(c);
    if (rc == CTL_EX_OK)
        rc = ctl_tenant_resolve(*c, t->tenant, t->tid);
    return rc;
}

/* channel_remove - `channel remove` */
static int channel_remove(int argc, char **argv)
{
    struct ctl_channel_ref t;
    struct tn_pgconn *c = NULL;
    struct pg_result *res = NULL;
    enum tn_err err;
    int rc = ctl_channel_target(argc, argv, CHANNEL_USAGE, &t, &c);

    if (rc == CTL_EX_OK && t.wait != NULL)
        rc = ctl_usage(CHANNEL_USAGE);
    if (rc != CTL_EX_OK)
        goto out;
    err = tn_pgconn_query(c, "DELETE FROM channels WHERE tenant_id = $1 AND id::text = $2", 2,
                          (const char *[]){t.tid, t.id}, &res);
    if (err != TN_OK && strcmp(tn_pgconn_last_sqlstate(c), "23503") == 0) { /* a foreign key */
        fprintf(stderr,
                "ternctl: channel '%s' has conversations or messages and stays;"
                " to rotate its secrets: ternctl channel secrets --tenant %s --id %s"
                " --secret key=value; to stop it and delete its secrets:"
                " ternctl channel disconnect --tenant %s --id %s\n",
                t.id, t.tenant, t.id, t.tenant, t.id);
        rc = CTL_EX_FAIL;
        goto out;
    }
    if (err != TN_OK) {
        fprintf(stderr, "%s", tn_pgconn_last_error(c));
        rc = ctl_fail("channel remove", err);
        goto out;
    }
    if (tn_pg_result_affected(res) != 1) {
        fprintf(stderr, "ternctl: tenant '%s' has no channel '%s'\n", t.tenant, t.id);
        rc = CTL_EX_FAIL;
    }
out:
    tn_pg_result_free(res);
    tn_pgconn_close(c);
    return rc;
}

/* ctl_channel_main - `ternctl channel ...` */
int ctl_channel_main(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "add") == 0)
        return channel_add(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return channel_list(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "secrets") == 0)
        return ctl_channel_secrets(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "disconnect") == 0)
        return ctl_channel_disconnect(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "enable") == 0)
        return ctl_channel_enable(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "remove") == 0)
        return channel_remove(argc - 1, argv + 1);
    return ctl_usage(CHANNEL_USAGE);
}
