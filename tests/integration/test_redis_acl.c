/*
 * NAME
 *	test_redis_acl - each daemon's Redis user can do its job and nothing else
 * DESCRIPTION
 *	For every user in deploy/redis/users.acl (as loaded by scripts/test):
 *	commands outside its ACL and keys outside its patterns are refused
 *	with NOPERM (tn_redis_reply_is_denied, TN_EDENIED in tn_redis), while
 *	the commands it needs on its own streams pass the ACL check. The
 *	allowed probes are chosen not to change shared streams: XADD with
 *	NOMKSTREAM and id 0-1 either does nothing (no stream) or fails with
 *	"ID ... smaller" after the ACL check passed; group commands on a group
 *	that does not exist fail with NOGROUP after the check. The consumer
 *	commands tn_consumer sends are probed for every consuming daemon.
 *	Uses the blocking hiredis API (a test, not a daemon).
 * RUNS ON
 *	the test's main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <tn/tn_redis.h>

#include "tn_test.h"

enum want { ALLOW, DENY };

struct probe {
    const char *env; /* TN_TEST_REDIS_URL_<SVC> */
    enum want want;
    const char *cmd; /* space-separated; "@" is replaced with a unique name */
};

/* The consumer's command set on stream S with dead stream S:dead. */
#define CONSUMER_PROBES(ENV, S)                                                                    \
    {ENV, ALLOW, "CLIENT SETNAME acl-test"}, {ENV, ALLOW, "PING"},                                 \
        {ENV, ALLOW, "XREADGROUP GROUP @ c COUNT 1 BLOCK 1 STREAMS " S " >"},                      \
        {ENV, ALLOW, "XACK " S " @ 0-1"},                                                          \
        {ENV, ALLOW, "XAUTOCLAIM " S " @ c 1000000 0-0 COUNT 1"},                                  \
        {ENV, ALLOW, "XCLAIM " S " @ c 1000000 0-1"}, {ENV, ALLOW, "XPENDING " S " @ - + 1 c"},    \
        {ENV, ALLOW, "XADD " S ":dead NOMKSTREAM 0-1 f v"}, {ENV, ALLOW, "MULTI"},                 \
    {                                                                                              \
        ENV, ALLOW, "EXEC"                                                                         \
    }

static const struct probe probes[] = {
    /* tern-ingest: publishes, never consumes. */
    {"TN_TEST_REDIS_URL_INGEST", ALLOW, "XADD tern:in NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_INGEST", ALLOW, "XADD tern:status NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_INGEST", ALLOW, "XADD tern:cal NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_INGEST", ALLOW, "GET tern:dedupe:@"},
    {"TN_TEST_REDIS_URL_INGEST", DENY, "XREADGROUP GROUP g c STREAMS tern:in >"},
    {"TN_TEST_REDIS_URL_INGEST", DENY, "XADD tern:out NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_INGEST", DENY, "GET other:@"},
    {"TN_TEST_REDIS_URL_INGEST", DENY, "KEYS *"},
    {"TN_TEST_REDIS_URL_INGEST", DENY, "FLUSHALL"},
    {"TN_TEST_REDIS_URL_INGEST", DENY, "CONFIG GET maxmemory"},
    /* tern-agent: consumes tern:in, writes tern:out and tern:cal. */
    CONSUMER_PROBES("TN_TEST_REDIS_URL_AGENT", "tern:in"),
    {"TN_TEST_REDIS_URL_AGENT", ALLOW, "XADD tern:out NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_AGENT", ALLOW, "XADD tern:cal NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_AGENT", DENY, "XADD tern:status NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_AGENT", DENY, "XREADGROUP GROUP g c STREAMS tern:status >"},
    {"TN_TEST_REDIS_URL_AGENT", DENY, "GET tern:calsync:@"},
    {"TN_TEST_REDIS_URL_AGENT", DENY, "FLUSHALL"},
    {"TN_TEST_REDIS_URL_AGENT", DENY, "CONFIG GET maxmemory"},
    /* tern-calsync: consumes tern:cal. */
    CONSUMER_PROBES("TN_TEST_REDIS_URL_CALSYNC", "tern:cal"),
    {"TN_TEST_REDIS_URL_CALSYNC", DENY, "XADD tern:in NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_CALSYNC", DENY, "XREADGROUP GROUP g c STREAMS tern:in >"},
    {"TN_TEST_REDIS_URL_CALSYNC", DENY, "KEYS *"},
    {"TN_TEST_REDIS_URL_CALSYNC", DENY, "CONFIG GET maxmemory"},
    /* tern-sender: consumes tern:out and tern:status. */
    CONSUMER_PROBES("TN_TEST_REDIS_URL_SENDER", "tern:out"),
    CONSUMER_PROBES("TN_TEST_REDIS_URL_SENDER", "tern:status"),
    {"TN_TEST_REDIS_URL_SENDER", DENY, "XADD tern:in NOMKSTREAM 0-1 f v"},
    {"TN_TEST_REDIS_URL_SENDER", DENY, "XREADGROUP GROUP g c STREAMS tern:cal >"},
    {"TN_TEST_REDIS_URL_SENDER", DENY, "FLUSHALL"},
    {"TN_TEST_REDIS_URL_SENDER", DENY, "CONFIG GET maxmemory"},
    /* tern-sweeper: consumes tern:privacy, trims tern:*. */
    CONSUMER_PROBES("TN_TEST_REDIS_URL_SWEEPER", "tern:privacy"),
    {"TN_TEST_REDIS_URL_SWEEPER", ALLOW, "XLEN tern:in"},
    {"TN_TEST_REDIS_URL_SWEEPER", DENY, "XLEN other:@"},
    {"TN_TEST_REDIS_URL_SWEEPER", DENY, "FLUSHALL"},
    {"TN_TEST_REDIS_URL_SWEEPER", DENY, "CONFIG GET maxmemory"},
    /* tern-ctl: inspects streams (ternctl streams), no consuming. */
    {"TN_TEST_REDIS_URL_CTL", ALLOW, "XLEN tern:in"},
    {"TN_TEST_REDIS_URL_CTL", ALLOW, "XINFO GROUPS tern:@"},
    {"TN_TEST_REDIS_URL_CTL", ALLOW, "XPENDING tern:in @"},
    {"TN_TEST_REDIS_URL_CTL", DENY, "XREADGROUP GROUP g c STREAMS tern:in >"},
    {"TN_TEST_REDIS_URL_CTL", DENY, "XLEN other:@"},
    {"TN_TEST_REDIS_URL_CTL", DENY, "FLUSHALL"},
    {"TN_TEST_REDIS_URL_CTL", DENY, "CONFIG GET maxmemory"},
};

/* connect_as - a blocking connection authenticated from the URL in env */
static redisContext *connect_as(const char *env)
{
    struct tn_redis_url u;
    redisContext *rc;
    redisReply *rep;

    assert_int_equal(tn_redis_url_parse(tn_test_env(env), &u), TN_OK);
    rc = redisConnect(u.host, u.port);
    assert_true(rc != NULL && rc->err == 0);
    rep = redisCommand(rc, "AUTH %s %s", u.user, u.password);
    assert_true(rep != NULL && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    tn_redis_url_free(&u);
    return rc;
}

/* run_probe - send one probe, "@" in a token replaced by unique; returns the
 * reply (new) */
static redisReply *run_probe(redisContext *rc, const char *cmd, const char *unique)
{
    static char words[32][192];
    const char *argv[32];
    char buf[512], *save = NULL, *tok;
    int argc = 0;

    snprintf(buf, sizeof(buf), "%s", cmd);
    for (tok = strtok_r(buf, " ", &save); tok != NULL && argc < 32;
         tok = strtok_r(NULL, " ", &save)) {
        const char *at = strchr(tok, '@');

        if (at == NULL)
            snprintf(words[argc], sizeof(words[0]), "%s", tok);
        else
            snprintf(words[argc], sizeof(words[0]), "%.*s%s%s", (int)(at - tok), tok, unique,
                     at + 1);
        argv[argc] = words[argc];
        argc++;
    }
    return redisCommandArgv(rc, argc, argv, NULL);
}

/* test_probes - every probe gets the answer its ACL line promises */
static void test_probes(void **state)
{
    char unique[96];
    int failures = 0;

    (void)state;
    tn_test_unique("acl", unique, sizeof(unique));
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        redisContext *rc = connect_as(probes[i].env);
        redisReply *rep = run_probe(rc, probes[i].cmd, unique);
        bool denied;

        assert_non_null(rep);
        denied = tn_redis_reply_is_denied(rep);
        if (denied != (probes[i].want == DENY)) {
            print_error("%s: %s: want %s, got %s\n", probes[i].env, probes[i].cmd,
                        probes[i].want == DENY ? "NOPERM" : "allowed",
                        rep->type == REDIS_REPLY_ERROR ? rep->str : "a reply");
            failures++;
        }
        freeReplyObject(rep);
        redisFree(rc);
    }
    assert_int_equal(failures, 0);
}

/* test_default_user - no AUTH: the default user is off, so NOAUTH */
static void test_default_user(void **state)
{
    struct tn_redis_url u;
    redisContext *rc;
    redisReply *rep;

    (void)state;
    assert_int_equal(tn_redis_url_parse(tn_test_env("TN_TEST_REDIS_URL_CTL"), &u), TN_OK);
    rc = redisConnect(u.host, u.port);
    assert_true(rc != NULL && rc->err == 0);
    rep = redisCommand(rc, "XLEN tern:in");
    assert_non_null(rep);
    assert_true(tn_redis_reply_is_denied(rep));
    freeReplyObject(rep);
    rep = redisCommand(rc, "AUTH %s %s", u.user, "wrong-password");
    assert_true(tn_redis_reply_is_denied(rep)); /* WRONGPASS */
    freeReplyObject(rep);
    redisFree(rc);
    tn_redis_url_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes),
        cmocka_unit_test(test_default_user),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
