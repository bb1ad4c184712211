/*
 * NAME
 *	sweeper_trim - trim the streams by age, never past an unread or
 *	pending entry
 * SYNOPSIS
 *	err = sweeper_trim_streams(cfg, url, &trimmed);
 * DESCRIPTION
 *	For each stream of TN_SWEEPER_STREAMS the trim point is the smallest
 *	of: the age cutoff (now - TN_SWEEPER_STREAM_MAX_AGE, as an id), every
 *	consumer group's last-delivered-id (entries after it are unread), and
 *	every group's oldest pending id (delivered, not acknowledged). Then
 *	XTRIM <stream> MINID = <point> removes only entries below it; trimming
 *	(unlike XDEL) leaves the groups' lag exact. A stream without groups is
 *	trimmed by age only if it is a dead-letter stream (nobody reads those
 *	through a group); otherwise nobody has read it and it is left alone.
 * RUNS ON
 *	Runs on: threadpool.
 * DIAGNOSTICS
 *	sweeper.trimmed (stream, entries).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_time.h>

#include "sweeper.h"

struct sid {
    uint64_t ms, seq;
};

/* parse_id - "ms-seq" (or "ms") */
static struct sid parse_id(const char *s)
{
    struct sid id = {0, 0};
    char *end = NULL;

    id.ms = strtoull(s, &end, 10);
    if (end != NULL && *end == '-')
        id.seq = strtoull(end + 1, NULL, 10);
    return id;
}

/* lower - keep the smaller of *a and b */
static void lower(struct sid *a, struct sid b)
{
    if (b.ms < a->ms || (b.ms == a->ms && b.seq < a->seq))
        *a = b;
}

/* field - the value after name in a flat [name, value, ...] reply */
static const redisReply *field(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1];
    }
    return NULL;
}

/* oldest_pending - lower *min to the group's oldest pending id */
static enum tn_err oldest_pending(redisContext *rc, const char *key, const char *group,
                                  struct sid *min)
{
    redisReply *p = sweeper_redis_cmd(rc, 3, (const char *[]){"XPENDING", key, group});

    if (p == NULL)
        return TN_EUNAVAIL;
    if (p->elements >= 2 && p->element[1]->type == REDIS_REPLY_STRING)
        lower(min, parse_id(p->element[1]->str));
    freeReplyObject(p);
    return TN_OK;
}

/* trim_point - the MINID for key into *min; *skip when it must stay */
static enum tn_err trim_point(redisContext *rc, const char *key, struct sid *min, bool *skip)
{
    redisReply *g = redisCommandArgv(rc, 3, (const char *[]){"XINFO", "GROUPS", key}, NULL);
    enum tn_err err = TN_OK;
    size_t klen = strlen(key);

    *skip = false;
    if (g == NULL)
        return TN_EUNAVAIL;
    if (g->type != REDIS_REPLY_ARRAY) { /* no such key: nothing to trim */
        *skip = true;
        goto out;
    }
    if (g->elements == 0 && (klen < 5 || strcmp(key + klen - 5, ":dead") != 0))
        *skip = true;
    for (size_t i = 0; err == TN_OK && i < g->elements; i++) {
        const redisReply *name = field(g->element[i], "name");
        const redisReply *last = field(g->element[i], "last-delivered-id");
        const redisReply *pend = field(g->element[i], "pending");

        if (name == NULL || last == NULL || last->type != REDIS_REPLY_STRING) {
            *skip = true; /* a reply we do not understand: keep everything */
            break;
        }
        lower(min, parse_id(last->str));
        if (pend != NULL && pend->integer > 0)
            err = oldest_pending(rc, key, name->str, min);
    }
out:
    freeReplyObject(g);
    return err;
}

/* trim_one - one stream */
static enum tn_err trim_one(redisContext *rc, const char *key, int64_t cutoff_ms, long *trimmed)
{
    struct sid min = {(uint64_t)cutoff_ms, 0};
    char id[64];
    bool skip = false;
    redisReply *r;
    enum tn_err err = trim_point(rc, key, &min, &skip);

    if (err != TN_OK || skip)
        return err;
    snprintf(id, sizeof(id), "%" PRIu64 "-%" PRIu64, min.ms, min.seq);
    r = sweeper_redis_cmd(rc, 5, (const char *[]){"XTRIM", key, "MINID", "=", id});
    if (r == NULL)
        return TN_EUNAVAIL;
    if (r->integer > 0)
        tn_log_info(NULL, "sweeper.trimmed", TN_KV_STR("stream", key),
                    TN_KV_INT("entries", r->integer));
    *trimmed += r->integer;
    freeReplyObject(r);
    return TN_OK;
}

/* sweeper_trim_streams - every configured stream */
enum tn_err sweeper_trim_streams(const struct sweeper_cfg *cfg, const char *url, long *trimmed)
{
    redisContext *rc = sweeper_redis_open(url);
    int64_t cutoff = tn_now_ms() - cfg->stream_max_age_ms;
    char *list = tn_xstrdup(cfg->streams), *save = NULL;
    enum tn_err err = TN_OK;

    if (rc == NULL) {
        tn_free(list);
        return TN_EUNAVAIL;
    }
    for (char *s = strtok_r(list, ",", &save); s != NULL && err == TN_OK;
         s = strtok_r(NULL, ",", &save)) {
        if (*s != '\0')
            err = trim_one(rc, s, cutoff > 0 ? cutoff : 0, trimmed);
    }
    redisFree(rc);
    tn_free(list);
    return err;
}
