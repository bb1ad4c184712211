/*
 * NAME
 *	ctl_dead - `ternctl dead list|show|replay`: dead-letter streams
 * SYNOPSIS
 *	ternctl dead list [--stream S] [--count N] [--json]
 *	ternctl dead show ID [--stream S]
 *	ternctl dead replay ID [--stream S]
 * DESCRIPTION
 *	S is a source stream (default tern:out); its dead letters are on
 *	S:dead (proto/README.md). list prints, oldest first, each dead
 *	entry's id, type, tenant, reason, deliveries and time (no payload:
 *	it may hold personal data); --json gives the same as a JSON array.
 *	show prints one entry's every field as a JSON object, for an operator
 *	deciding what to do.
 *
 *	replay puts an entry back: the original fields (without the dead_*
 *	ones) are XADDed to S, and the dead entry is deleted. For an
 *	outbound.message, the row of its "outbound" id is first set back to
 *	queued with its attempts reset (only from 'dead', so a replay never
 *	resends a message that was sent meanwhile), which needs TN_PG_DSN
 *	(the admin or tern_ctl DSN): tern-sender then sends it as new.
 *
 *	Blocking hiredis and libpq are fine here: this is a CLI.
 * RUNS ON
 *	Runs on: CLI (the main thread of ternctl).
 * ENVIRONMENT
 *	TN_REDIS_URL (the tern-ctl ACL user: XRANGE, XADD, XDEL on tern:*),
 *	TN_PG_DSN for replaying outbound messages.
 * DIAGNOSTICS
 *	stderr; exit 0 ok, 1 not found / refused / down, 64 usage, 78 missing
 *	configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>

#include "ctl.h"

#define DEAD_USAGE                                                                                 \
    "dead list [--stream S] [--count N] [--json]\n"                                                \
    "       ternctl dead show ID [--stream S]\n"                                                   \
    "       ternctl dead replay ID [--stream S]"
#define DEAD_TIMEOUT_S 5

static const char sql_requeue[] =
    "UPDATE outbound_messages SET state = 'queued', attempts = 0, sending_at = NULL,"
    " not_before = now(), updated_at = now() WHERE tenant_id = $1::uuid AND id::text = $2"
    " AND state = 'dead'";

/* connect_redis - TN_REDIS_URL, authenticated; NULL and *code on failure */
static redisContext *connect_redis(int *code)
{
    const char *url = getenv("TN_REDIS_URL");
    struct tn_redis_url u;
    struct timeval tv = {.tv_sec = DEAD_TIMEOUT_S, .tv_usec = 0};
    redisContext *rc = NULL;
    redisReply *rep = NULL;

    *code = CTL_EX_CONFIG;
    if (url == NULL || tn_redis_url_parse(url, &u) != TN_OK) {
        fprintf(stderr, "ternctl: set TN_REDIS_URL to a redis:// URL\n");
        return NULL;
    }
    *code = CTL_EX_FAIL;
    rc = redisConnectWithTimeout(u.host, u.port, tv);
    if (rc == NULL || rc->err != 0) {
        fprintf(stderr, "ternctl: redis: %s\n", rc != NULL ? rc->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(rc, tv);
    if (u.password != NULL) {
        const char *argv[] = {"AUTH", u.user != NULL ? u.user : u.password, u.password};

        rep = redisCommandArgv(rc, u.user != NULL ? 3 : 2, argv, NULL);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "ternctl: redis AUTH refused\n");
            goto fail;
        }
    }
    freeReplyObject(rep);
    tn_redis_url_free(&u);
    return rc;
fail:
    freeReplyObject(rep);
    redisFree(rc);
    tn_redis_url_free(&u);
    return NULL;
}

/* command - run argv; NULL (and a message) on a failure or an error reply */
static redisReply *command(redisContext *rc, int argc, const char **argv)
{
    redisReply *rep = redisCommandArgv(rc, argc, argv, NULL);

    if (rep == NULL) {
        fprintf(stderr, "ternctl: redis %s: %s\n", argv[0], rc->errstr);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "ternctl: redis %s: %s\n", argv[0], rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* entry_json - one XRANGE entry ([id, [k, v, ...]]) as {"id":..,"fields":{..}} */
static json_t *entry_json(const redisReply *e)
{
    json_t *o = json_object(), *f = json_object();
    const redisReply *kv = e->element[1];

    json_object_set_new(o, "id", json_string(e->element[0]->str));
    for (size_t i = 0; kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2)
        json_object_set_new(f, kv->element[i]->str,
                            json_stringn(kv->element[i + 1]->str, kv->element[i + 1]->len));
    json_object_set_new(o, "fields", f);
    return o;
}

/* field - fields[name] of an entry_json object, "" when absent */
static const char *field(const json_t *e, const char *name)
{
    const char *v = json_string_value(json_object_get(json_object_get(e, "fields"), name));

    return v != NULL ? v : "";
}

/* print_json - j on stdout, then a newline */
static void print_json(const json_t *j, size_t flags)
{
    json_dumpf(j, stdout, flags);
    fputc('\n', stdout);
}

/* dead_list - `dead list` */
static int dead_list(redisContext *rc, const char *dead, const char *count, bool as_json)
{
    const char *argv[] = {"XRANGE", dead, "-", "+", "COUNT", count};
    redisReply *rep = command(rc, 6, argv);
    json_t *all = json_array();

    if (rep == NULL) {
        json_decref(all);
        return CTL_EX_FAIL;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        json_t *e = entry_json(rep->element[i]), *row = json_object();

        json_object_set_new(row, "id", json_string(json_string_value(json_object_get(e, "id"))));
        json_object_set_new(row, "type", json_string(field(e, TN_F_TYPE)));
        json_object_set_new(row, "tenant", json_string(field(e, TN_F_TENANT)));
        json_object_set_new(row, "outbound", json_string(field(e, TN_F_OUTBOUND)));
        json_object_set_new(row, "reason", json_string(field(e, TN_F_DEAD_REASON)));
        json_object_set_new(row, "deliveries", json_string(field(e, TN_F_DEAD_DELIVERIES)));
        json_object_set_new(row, "dead_at", json_string(field(e, TN_F_DEAD_AT)));
        if (!as_json)
            printf("%-20s %-18s %-36s %-40s %s\n", json_string_value(json_object_get(e, "id")),
                   field(e, TN_F_TYPE), field(e, TN_F_TENANT), field(e, TN_F_DEAD_REASON),
                   field(e, TN_F_DEAD_AT));
        json_array_append_new(all, row);
        json_decref(e);
    }
    if (as_json)
        print_json(all, JSON_COMPACT);
    json_decref(all);
    freeReplyObject(rep);
    return CTL_EX_OK;
}

/* fetch - the dead entry id as entry_json into *out (new); an exit code */
static int fetch(redisContext *rc, const char *dead, const char *id, json_t **out)
{
    const char *argv[] = {"XRANGE", dead, id, id};
    redisReply *rep = command(rc, 4, argv);

    *out = NULL;
    if (rep == NULL)
        return CTL_EX_FAIL;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1) {
        fprintf(stderr, "ternctl: no entry %s on %s\n", id, dead);
        freeReplyObject(rep);
        return CTL_EX_FAIL;
    }
    *out = entry_json(rep->element[0]);
    freeReplyObject(rep);
    return CTL_EX_OK;
}

/* requeue - an outbound message's row back to queued (needs TN_PG_DSN) */
static int requeue(const json_t *e)
{
    struct tn_pgconn *c = NULL;
    const char *p[2] = {field(e, TN_F_TENANT), field(e, TN_F_OUTBOUND)};
    enum tn_err err;
    int rc;

    if (strcmp(field(e, TN_F_TYPE), TN_TYPE_OUTBOUND_MESSAGE) != 0 || *p[1] == '\0')
        return CTL_EX_OK;
    rc = ctl_connect(&c);
    if (rc != CTL_EX_OK)
        return rc;
    err = tn_pgconn_query(c, sql_requeue, 2, p, NULL);
    if (err != TN_OK)
        rc = ctl_fail("requeueing the outbound row", err);
    tn_pgconn_close(c);
    return rc;
}

/* replay_xadd - XADD the original fields to stream; the new id on stdout */
static int replay_xadd(redisContext *rc, const char *stream, const json_t *e)
{
    const json_t *f = json_object_get(e, "fields");
    const char **args = tn_xcalloc(3 + 2 * json_object_size(f), sizeof(*args));
    const char *key;
    json_t *v;
    redisReply *rep;
    int n = 0;

    args[n++] = "XADD";
    args[n++] = stream;
    args[n++] = "*";
    json_object_foreach((json_t *)f, key, v)
    {
        if (strncmp(key, "dead_", 5) == 0)
            continue;
        args[n++] = key;
        args[n++] = json_string_value(v);
    }
    rep = command(rc, n, args);
    tn_free(args);
    if (rep == NULL)
        return CTL_EX_FAIL;
    printf("%s\n", rep->str);
    freeReplyObject(rep);
    return CTL_EX_OK;
}

/* dead_replay - `dead replay` */
static int dead_replay(redisContext *rc, const char *stream, const char *dead, const char *id)
{
    json_t *e = NULL;
    const char *del[] = {"XDEL", dead, id};
    redisReply *rep;
    int code = fetch(rc, dead, id, &e);

    if (code == CTL_EX_OK)
        code = requeue(e);
    if (code == CTL_EX_OK)
        code = replay_xadd(rc, stream, e);
    if (code == CTL_EX_OK) {
        rep = command(rc, 3, del);
        code = rep != NULL ? CTL_EX_OK : CTL_EX_FAIL;
        freeReplyObject(rep);
    }
    json_decref(e);
    return code;
}

/* ctl_dead_main - `ternctl dead ...` */
int ctl_dead_main(int argc, char **argv)
{
    const char *stream = TN_STREAM_OUT, *count = "100", *as_json = NULL;
    const struct ctl_opt opts[] = {{"--stream", false, &stream},
                                   {"--count", false, &count},
                                   {"--json", true, &as_json},
                                   {NULL, false, NULL}};
    const char *verb = argc >= 1 ? argv[0] : "", *id = NULL;
    int skip = strcmp(verb, "list") == 0 ? 1 : 2, code;
    char dead[256];
    redisContext *rc = NULL;
    json_t *e = NULL;

    if (argc < skip || (skip == 2 && strcmp(verb, "show") != 0 && strcmp(verb, "replay") != 0) ||
        !ctl_parse_opts(argc - skip, argv + skip, opts, NULL, NULL, 0, NULL))
        return ctl_usage(DEAD_USAGE);
    id = skip == 2 ? argv[1] : NULL;
    snprintf(dead, sizeof(dead), "%s%s", stream, TN_STREAM_DEAD_SUFFIX);
    rc = connect_redis(&code);
    if (rc == NULL)
        return code;
    if (strcmp(verb, "list") == 0) {
        code = dead_list(rc, dead, count, as_json != NULL);
    } else if (strcmp(verb, "show") == 0) {
        code = fetch(rc, dead, id, &e);
        if (code == CTL_EX_OK)
            print_json(e, JSON_INDENT(2) | JSON_SORT_KEYS);
    } else {
        code = dead_replay(rc, stream, dead, id);
    }
    json_decref(e);
    redisFree(rc);
    return code;
}
