/*
 * NAME
 *	ctl_streams - `ternctl streams`: depth, lag, pending and dead letters
 * SYNOPSIS
 *	ternctl streams [--json] [--stream NAME ...]
 * DESCRIPTION
 *	For each stream (by default tern:in tern:out tern:status tern:cal
 *	tern:privacy): its length (XLEN), each consumer group's consumers, lag
 *	and pending count (XINFO GROUPS), the oldest pending entry of each
 *	group (XPENDING range, first entry: its id, its age from the id's
 *	timestamp and how long it has been idle), and the length of its
 *	dead-letter stream <stream>:dead. A stream that does not exist is shown
 *	as absent, not as an error. Lag is "-" (null in JSON) when Redis cannot
 *	tell (after XDEL/XTRIM past the group). The human table is for people;
 *	--json (one object, jansson) is for scripts and dashboards.
 *
 *	Blocking hiredis is fine here: this is a CLI, not a daemon loop.
 * RUNS ON
 *	the main thread of ternctl.
 * ENVIRONMENT
 *	TN_REDIS_URL: redis://tern-ctl:<password>@host:port (the tern-ctl ACL
 *	user: XLEN, XINFO, XPENDING and TYPE on tern:*). Parsed by
 *	tn_redis_url_parse, like the daemons do.
 * DIAGNOSTICS
 *	stderr; exit 0 ok, 1 Redis down or refused, 64 usage, 78 no
 *	TN_REDIS_URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <tn/tn_err.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "ctl.h"
#include "ctl_streams.h"

#define MAX_STREAMS 32
#define TIMEOUT_MS 5000

static const char *const default_streams[] = {"tern:in", "tern:out", "tern:status", "tern:cal",
                                              "tern:privacy"};

/* json_check - a jansson constructor returning NULL is out of memory (R12) */
static json_t *json_check(json_t *j)
{
    if (j == NULL) {
        fprintf(stderr, "ternctl: out of memory\n");
        abort();
    }
    return j;
}

/* cmd - run one command; NULL and a message when the link failed or the ACL
 * refused. Returns: new reply. */
static redisReply *cmd(redisContext *rc, int argc, const char **argv, enum tn_err *err)
{
    redisReply *rep = redisCommandArgv(rc, argc, argv, NULL);

    if (rep == NULL) {
        fprintf(stderr, "ternctl: redis: %s\n", rc->errstr);
        *err = TN_EUNAVAIL;
        return NULL;
    }
    if (tn_redis_reply_is_denied(rep)) {
        fprintf(stderr, "ternctl: redis: %s: %s\n", argv[0], rep->str);
        freeReplyObject(rep);
        *err = TN_EDENIED;
        return NULL;
    }
    return rep;
}

/* stream_exists - is key a stream, via TYPE (XLEN cannot tell absent from
 * empty). Returns TN_OK and sets *exists. */
static enum tn_err stream_exists(redisContext *rc, const char *key, bool *exists)
{
    const char *argv[] = {"TYPE", key};
    enum tn_err err = TN_OK;
    redisReply *rep = cmd(rc, 2, argv, &err);

    if (rep == NULL)
        return err;
    *exists = rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "stream") == 0;
    freeReplyObject(rep);
    return TN_OK;
}

/* stream_len - XLEN key into *len (0 when absent) */
static enum tn_err stream_len(redisContext *rc, const char *key, long long *len)
{
    const char *argv[] = {"XLEN", key};
    enum tn_err err = TN_OK;
    redisReply *rep = cmd(rc, 2, argv, &err);

    if (rep == NULL)
        return err;
    *len = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return TN_OK;
}

/* id_ms - the millisecond part of a stream id */
static long long id_ms(const char *id)
{
    return strtoll(id, NULL, 10);
}

/* oldest_pending - XPENDING s g - + 1: the oldest pending entry of a group */
static enum tn_err oldest_pending(redisContext *rc, const char *stream, const char *group,
                                  json_t *g)
{
    const char *argv[] = {"XPENDING", stream, group, "-", "+", "1"};
    enum tn_err err = TN_OK;
    redisReply *rep = cmd(rc, 6, argv, &err), *row;

    if (rep == NULL)
        return err;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements >= 4) {
        row = rep->element[0];
        json_object_set_new(g, "oldest_pending_id", json_check(json_string(row->element[0]->str)));
        json_object_set_new(g, "oldest_pending_age_ms",
                            json_check(json_integer(tn_now_ms() - id_ms(row->element[0]->str))));
        json_object_set_new(g, "oldest_pending_idle_ms",
                            json_check(json_integer(row->element[2]->integer)));
        json_object_set_new(g, "oldest_pending_deliveries",
                            json_check(json_integer(row->element[3]->integer)));
    }
    freeReplyObject(rep);
    return TN_OK;
}

/* group_json - one XINFO GROUPS entry (a flat name/value array) as JSON */
static json_t *group_json(const redisReply *info)
{
    json_t *g = json_check(json_object());

    json_object_set_new(g, "lag", json_null());
    for (size_t k = 0; k + 1 < info->elements; k += 2) {
        const char *name = info->element[k]->str;
        const redisReply *v = info->element[k + 1];
        json_t *jv;

        if (name == NULL)
            continue;
        if (v->type == REDIS_REPLY_INTEGER)
            jv = json_integer(v->integer);
        else if (v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS)
            jv = json_string(v->str);
        else
            jv = json_null();
        json_object_set_new(g,
                            strcmp(name, "last-delivered-id") == 0 ? "last_delivered_id"
                            : strcmp(name, "entries-read") == 0    ? "entries_read"
                                                                   : name,
                            json_check(jv));
    }
    return g;
}

/* stream_groups - XINFO GROUPS s into an array of group objects */
static enum tn_err stream_groups(redisContext *rc, const char *stream, json_t *groups)
{
    const char *argv[] = {"XINFO", "GROUPS", stream};
    enum tn_err err = TN_OK;
    redisReply *rep = cmd(rc, 3, argv, &err);

    if (rep == NULL)
        return err;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && err == TN_OK; i++) {
        json_t *g;

        if (rep->element[i]->type != REDIS_REPLY_ARRAY)
            continue;
        g = group_json(rep->element[i]);
        json_array_append_new(groups, g);
        if (json_integer_value(json_object_get(g, "pending")) > 0)
            err = oldest_pending(rc, stream, json_string_value(json_object_get(g, "name")), g);
    }
    freeReplyObject(rep);
    return err;
}

/* stream_json - everything about one stream */
static enum tn_err stream_json(redisContext *rc, const char *stream, json_t **out)
{
    json_t *s = json_check(json_object()), *groups;
    char dead[256];
    bool exists = false, dead_exists = false;
    long long len = 0, dead_len = 0;
    enum tn_err err;

    *out = s;
    json_object_set_new(s, "stream", json_check(json_string(stream)));
    snprintf(dead, sizeof(dead), "%s:dead", stream);
    err = stream_exists(rc, stream, &exists);
    if (err == TN_OK)
        err = stream_exists(rc, dead, &dead_exists);
    if (err == TN_OK && dead_exists)
        err = stream_len(rc, dead, &dead_len);
    if (err != TN_OK)
        return err;
    json_object_set_new(s, "exists", json_boolean(exists));
    json_object_set_new(s, "dead_length", json_check(json_integer(dead_len)));
    if (!exists)
        return TN_OK;
    err = stream_len(rc, stream, &len);
    json_object_set_new(s, "length", json_check(json_integer(len)));
    groups = json_check(json_array());
    json_object_set_new(s, "groups", groups);
    if (err == TN_OK)
        err = stream_groups(rc, stream, groups);
    return err;
}

/* fmt_ms - "850ms", "12.3s", "4m05s", "3h12m" into buf */
static const char *fmt_ms(long long ms, char *buf, size_t size)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(buf, size, "%lldms", ms);
    else if (ms < 60000)
        snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, size, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
    else
        snprintf(buf, size, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
    return buf;
}

/* print_group - one table row for a group */
static void print_group(const char *stream, const char *len, const char *dead, json_t *g)
{
    json_t *lag = json_object_get(g, "lag"), *age = json_object_get(g, "oldest_pending_age_ms");
    char lagbuf[24] = "-", agebuf[24] = "-";

    if (json_is_integer(lag))
        snprintf(lagbuf, sizeof(lagbuf), "%lld", (long long)json_integer_value(lag));
    if (json_is_integer(age))
        fmt_ms((long long)json_integer_value(age), agebuf, sizeof(agebuf));
    printf("%-16s %8s %6s  %-16s %9lld %8s %8lld  %s\n", stream, len, dead,
           json_string_value(json_object_get(g, "name")),
           (long long)json_integer_value(json_object_get(g, "consumers")), lagbuf,
           (long long)json_integer_value(json_object_get(g, "pending")), agebuf);
}

/* print_table - the human view */
static void print_table(json_t *all)
{
    size_t i, j;
    json_t *s, *g;

    printf("%-16s %8s %6s  %-16s %9s %8s %8s  %s\n", "STREAM", "LENGTH", "DEAD", "GROUP",
           "CONSUMERS", "LAG", "PENDING", "OLDEST_PENDING");
    json_array_foreach(all, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "stream"));
        json_t *groups = json_object_get(s, "groups");
        char len[24], dead[24];

        snprintf(dead, sizeof(dead), "%lld",
                 (long long)json_integer_value(json_object_get(s, "dead_length")));
        if (!json_is_true(json_object_get(s, "exists"))) {
            printf("%-16s %8s %6s  %s\n", name, "absent", dead, "-");
            continue;
        }
        snprintf(len, sizeof(len), "%lld",
                 (long long)json_integer_value(json_object_get(s, "length")));
        if (json_array_size(groups) == 0)
            printf("%-16s %8s %6s  %s\n", name, len, dead, "(no groups)");
        json_array_foreach(groups, j, g)
        {
            print_group(name, len, dead, g);
        }
    }
}

/* connect_ctl - connect and AUTH from TN_REDIS_URL; NULL + message on failure */
static redisContext *connect_ctl(const char *url, int *code)
{
    struct tn_redis_url u;
    struct timeval tv = {.tv_sec = TIMEOUT_MS / 1000, .tv_usec = 0};
    redisContext *rc = NULL;
    redisReply *rep = NULL;

    *code = CTL_EX_FAIL;
    if (tn_redis_url_parse(url, &u) != TN_OK) {
        fprintf(stderr, "ternctl: TN_REDIS_URL is not a redis:// URL\n");
        *code = CTL_EX_CONFIG;
        return NULL;
    }
    rc = redisConnectWithTimeout(u.host, u.port, tv);
    if (rc == NULL || rc->err != 0) {
        fprintf(stderr, "ternctl: redis %s:%d: %s\n", u.host, u.port,
                rc != NULL ? rc->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(rc, tv);
    if (u.password != NULL) {
        const char *argv[] = {"AUTH", u.user != NULL ? u.user : u.password, u.password};

        rep = redisCommandArgv(rc, u.user != NULL ? 3 : 2, argv, NULL);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "ternctl: redis AUTH as %s: %s\n", u.user != NULL ? u.user : "default",
                    rep != NULL ? rep->str : rc->errstr);
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

/* ctl_streams_main - see ctl_streams.h */
int ctl_streams_main(int argc, char **argv)
{
    const char *json = NULL, *names[MAX_STREAMS];
    const struct ctl_opt opts[] = {{"--json", true, &json}, {NULL, false, NULL}};
    const char *url = getenv("TN_REDIS_URL");
    size_t n = 0;
    redisContext *rc = NULL;
    json_t *all = NULL, *top;
    enum tn_err err = TN_OK;
    int code;

    if (!ctl_parse_opts(argc, argv, opts, "--stream", names, MAX_STREAMS, &n))
        return ctl_usage("streams [--json] [--stream NAME ...]");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "ternctl: TN_REDIS_URL is not set\n");
        return CTL_EX_CONFIG;
    }
    if (n == 0) {
        n = sizeof(default_streams) / sizeof(default_streams[0]);
        memcpy(names, default_streams, sizeof(default_streams));
    }
    rc = connect_ctl(url, &code);
    if (rc == NULL)
        return code;
    all = json_check(json_array());
    for (size_t i = 0; i < n && err == TN_OK; i++) {
        json_t *s = NULL;

        err = stream_json(rc, names[i], &s);
        json_array_append_new(all, s);
    }
    redisFree(rc);
    if (err != TN_OK) {
        json_decref(all);
        return ctl_fail("streams", err);
    }
    if (json != NULL) {
        top = json_check(json_pack("{s:o}", "streams", all));
        json_dumpf(top, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(top);
    } else {
        print_table(all);
        json_decref(all);
    }
    return CTL_EX_OK;
}
