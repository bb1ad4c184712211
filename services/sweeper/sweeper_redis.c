/*
 * NAME
 *	sweeper_redis - blocking Redis for the sweeper's threadpool jobs, and
 *	the erasure's scrub of every tern:* key
 * SYNOPSIS
 *	rc = sweeper_redis_open(url); rep = sweeper_redis_cmd(rc, argc, argv);
 *	sweeper_redis_scrub(url, tenant, needles, n, counts);
 * DESCRIPTION
 *	A privacy job or a sweep is one threadpool job that talks to Postgres
 *	and Redis in turn; a short-lived blocking hiredis connection of its
 *	own (AUTH as tern-sweeper from TN_REDIS_URL) keeps that a plain
 *	sequence instead of a chain of callbacks on the loop.
 *
 *	The scrub walks every key matching tern:* (SCAN) and looks at it by
 *	type: a stream's entries of the tenant that carry a needle in any
 *	field are XDELed (with their tern:dedupe:<dedupe> key); any other key
 *	whose name holds a needle (dedupe keys name provider message ids; a
 *	per-contact key of any type) is deleted whole; a sorted set's or a
 *	hash's members holding a needle (the schedule's
 *	"<outbound>:<channel>:<contact>:<provider>") are removed.
 *	XXX: lists and sets are not looked into (no daemon keeps one; the
 *	ACL does not grant LRANGE/SMEMBERS).
 *	tern:privacy and its dead letters are skipped: they hold only ids, and
 *	a queued request for the same person must survive.
 *
 *	XXX: XDEL of an entry a group has not read yet makes that group's lag
 *	unknown (NULL) until it reads past it: erasure wins over lag.
 *	XXX: a message arriving for the person between the scrub and the
 *	Postgres commit survives in Redis; the next erasure request finds it.
 * RUNS ON
 *	Runs on: threadpool.
 * DIAGNOSTICS
 *	sweeper.redis_failed (command name and Redis's error, never values).
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include <tn/tn_log.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>

#include "sweeper.h"

#define SCAN_COUNT "500"
#define SCHED_PREFIX "tern:sched" /* tern-sender's schedule keys */
#define XRANGE_COUNT 500

/* sweeper_redis_open - connect and AUTH */
redisContext *sweeper_redis_open(const char *url)
{
    struct tn_redis_url u;
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    redisContext *rc = NULL;
    redisReply *rep = NULL;

    if (tn_redis_url_parse(url, &u) != TN_OK)
        return NULL;
    rc = redisConnectWithTimeout(u.host, u.port, tv);
    if (rc == NULL || rc->err != 0)
        goto fail;
    redisSetTimeout(rc, tv);
    if (u.password != NULL) {
        const char *argv[] = {"AUTH", u.user != NULL ? u.user : u.password, u.password};

        rep = redisCommandArgv(rc, u.user != NULL ? 3 : 2, argv, NULL);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(rep);
    }
    tn_redis_url_free(&u);
    return rc;
fail:
    tn_log_warn(NULL, "sweeper.redis_failed", TN_KV_STR("cmd", "connect"));
    if (rep != NULL)
        freeReplyObject(rep);
    if (rc != NULL)
        redisFree(rc);
    tn_redis_url_free(&u);
    return NULL;
}

/* sweeper_redis_cmd - one command; NULL on a link or Redis error */
redisReply *sweeper_redis_cmd(redisContext *rc, int argc, const char **argv)
{
    redisReply *rep = redisCommandArgv(rc, argc, argv, NULL);

    if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
        return rep;
    tn_log_warn(NULL, "sweeper.redis_failed", TN_KV_STR("cmd", argv[0]),
                TN_KV_STR("error", rep != NULL ? rep->str : rc->errstr));
    if (rep != NULL)
        freeReplyObject(rep);
    return NULL;
}

/* has_needle - does s (len bytes) contain one of the needles? */
static bool has_needle(const char *s, size_t len, const char *const *needles, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (memmem(s, len, needles[i], strlen(needles[i])) != NULL)
            return true;
    }
    return false;
}

/* entry_matches - an XRANGE entry [id, [f, v, ...]] of tenant holding a needle */
static bool entry_matches(const redisReply *fields, const char *tenant, const char *const *needles,
                          size_t n, const char **dedupe)
{
    bool ours = false, hit = false;

    *dedupe = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i], *v = fields->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(f->str, TN_F_TENANT) == 0 && strcmp(v->str, tenant) == 0)
            ours = true;
        if (strcmp(f->str, TN_F_DEDUPE) == 0)
            *dedupe = v->str;
        if (has_needle(v->str, (size_t)v->len, needles, n))
            hit = true;
    }
    return ours && hit;
}

/* drop_entry - XDEL one entry and DEL its dedupe key */
static enum tn_err drop_entry(redisContext *rc, const char *key, const char *id, const char *dedupe,
                              long counts[3])
{
    const char *xdel[] = {"XDEL", key, id};
    char dk[600];
    redisReply *rep = sweeper_redis_cmd(rc, 3, xdel);

    if (rep == NULL)
        return TN_EUNAVAIL;
    counts[0] += rep->integer;
    freeReplyObject(rep);
    if (dedupe == NULL || strlen(dedupe) > 512)
        return TN_OK;
    snprintf(dk, sizeof(dk), "%s%s", TN_DEDUPE_PREFIX, dedupe);
    rep = sweeper_redis_cmd(rc, 2, (const char *[]){"DEL", dk});
    if (rep == NULL)
        return TN_EUNAVAIL;
    counts[1] += rep->integer;
    freeReplyObject(rep);
    return TN_OK;
}

/* scrub_stream - page through key with XRANGE, dropping matching entries */
static enum tn_err scrub_stream(redisContext *rc, const char *key, const char *tenant,
                                const char *const *needles, size_t n, long counts[3])
{
    char start[64] = "-", count[16];
    enum tn_err err = TN_OK;

    snprintf(count, sizeof(count), "%d", XRANGE_COUNT);
    for (;;) {
        const char *argv[] = {"XRANGE", key, start, "+", "COUNT", count};
        redisReply *rep = sweeper_redis_cmd(rc, 6, argv);
        size_t got;

        if (rep == NULL)
            return TN_EUNAVAIL;
        got = rep->elements;
        for (size_t i = 0; i < got && err == TN_OK; i++) {
            const redisReply *e = rep->element[i];
            const char *dedupe;

            if (e->elements == 2 && entry_matches(e->element[1], tenant, needles, n, &dedupe))
                err = drop_entry(rc, key, e->element[0]->str, dedupe, counts);
        }
        if (got > 0) /* exclusive start: "(" + the last id */
            snprintf(start, sizeof(start), "(%s", rep->element[got - 1]->element[0]->str);
        freeReplyObject(rep);
        if (err != TN_OK || got < XRANGE_COUNT)
            return err;
    }
}

/* scrub_members - ZREM / HDEL the members (fields) of key holding a needle */
static enum tn_err scrub_members(redisContext *rc, const char *key, bool zset,
                                 const char *const *needles, size_t n, long counts[3])
{
    const char *argv[] = {zset ? "ZRANGE" : "HGETALL", key, "0", "-1"};
    redisReply *rep = sweeper_redis_cmd(rc, zset ? 4 : 2, argv);
    enum tn_err err = TN_OK;

    if (rep == NULL)
        return TN_EUNAVAIL;
    for (size_t i = 0; i < rep->elements && err == TN_OK; i += zset ? 1 : 2) {
        const redisReply *m = rep->element[i];
        const redisReply *v = zset ? m : rep->element[i + 1];
        redisReply *del;

        if (!has_needle(m->str, (size_t)m->len, needles, n) &&
            !has_needle(v->str, (size_t)v->len, needles, n))
            continue;
        del = sweeper_redis_cmd(rc, 3, (const char *[]){zset ? "ZREM" : "HDEL", key, m->str});
        if (del == NULL) {
            err = TN_EUNAVAIL;
            break;
        }
        counts[2] += del->integer;
        freeReplyObject(del);
    }
    freeReplyObject(rep);
    return err;
}

/* scrub_key - one key by its type */
static enum tn_err scrub_key(redisContext *rc, const char *key, const char *tenant,
                             const char *const *needles, size_t n, long counts[3])
{
    redisReply *t, *rep;
    enum tn_err err = TN_OK;

    if (strncmp(key, TN_STREAM_PRIVACY, strlen(TN_STREAM_PRIVACY)) == 0)
        return TN_OK;
    t = sweeper_redis_cmd(rc, 2, (const char *[]){"TYPE", key});
    if (t == NULL)
        return TN_EUNAVAIL;
    if (strcmp(t->str, "stream") == 0) {
        err = scrub_stream(rc, key, tenant, needles, n, counts);
    } else if (strcmp(t->str, "none") != 0 &&
               strncmp(key, SCHED_PREFIX, strlen(SCHED_PREFIX)) != 0 &&
               has_needle(key, strlen(key), needles, n)) {
        /* a key named after the person (a dedupe key, or any per-contact
         * key of any type): all of it goes. Never a whole schedule, whose
         * name holds only a tenant id: it is scrubbed member by member. */
        rep = sweeper_redis_cmd(rc, 2, (const char *[]){"DEL", key});
        err = rep != NULL ? TN_OK : TN_EUNAVAIL;
        if (rep != NULL)
            counts[1] += rep->integer;
        if (rep != NULL)
            freeReplyObject(rep);
    } else if (strcmp(t->str, "zset") == 0 || strcmp(t->str, "hash") == 0) {
        err = scrub_members(rc, key, t->str[0] == 'z', needles, n, counts);
    }
    freeReplyObject(t);
    return err;
}

/* sweeper_redis_scrub - SCAN tern:* and scrub each key */
enum tn_err sweeper_redis_scrub(const char *url, const char *tenant, const char *const *needles,
                                size_t n, long counts[3])
{
    redisContext *rc = sweeper_redis_open(url);
    char cursor[32] = "0";
    enum tn_err err = TN_OK;

    counts[0] = counts[1] = counts[2] = 0;
    if (rc == NULL)
        return TN_EUNAVAIL;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", "tern:*", "COUNT", SCAN_COUNT};
        redisReply *rep = sweeper_redis_cmd(rc, 6, argv);

        if (rep == NULL || rep->elements != 2) {
            err = TN_EUNAVAIL;
            if (rep != NULL)
                freeReplyObject(rep);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        for (size_t i = 0; i < rep->element[1]->elements && err == TN_OK; i++)
            err = scrub_key(rc, rep->element[1]->element[i]->str, tenant, needles, n, counts);
        freeReplyObject(rep);
    } while (err == TN_OK && strcmp(cursor, "0") != 0);
    redisFree(rc);
    return err;
}
