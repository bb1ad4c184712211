/*
 * NAME
 *	ctl_privacy - `ternctl privacy ...` and `ternctl calendar disconnect`:
 *	enqueue privacy requests for tern-sweeper
 * SYNOPSIS
 *	ternctl privacy erase|export|restrict|unrestrict --tenant T
 *	        (--contact ID | --phone P | --email E) [--wait SECONDS]
 *	ternctl privacy disconnect --tenant T (--account ID | --channel ID)
 *	        [--wait SECONDS]
 *	(also `ternctl calendar disconnect ...`, which ctl_calendar.c
 *	dispatches to ctl_calendar_disconnect, and `ternctl channel disconnect`
 *	of a mailbox, which ctl_channel_state.c hands to
 *	ctl_privacy_channel_disconnect)
 * DESCRIPTION
 *	The subject is resolved to contact ids here, under the tenant: a
 *	phone matches contacts.address with or without its '+', an email
 *	matches contacts.email, an email address and leads.email (any case);
 *	an account or channel id must be one of the tenant's.
 *	Neither the privacy_requests row nor the tern:privacy entry then
 *	carries the address, only ids. One request per matching contact: its
 *	row (status pending) is inserted, then a privacy.request entry is
 *	XADDed (dedupe priv:<request id>), and the request id is printed, one
 *	per line. With --wait, ternctl then polls until every request is done
 *	(exit 0) or failed or the time is up (exit 1), printing
 *	"<id>\t<status>".
 * RUNS ON
 *	Runs on: CLI (blocking libpq and hiredis).
 * ENVIRONMENT
 *	TN_PG_DSN (admin or tern_ctl), TN_REDIS_URL (the tern-ctl ACL user).
 * DIAGNOSTICS
 *	stderr; exit 0 ok, 1 no such contact / refused / down / timed out,
 *	64 usage, 78 configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_proto.h>
#include <tn/tn_redis.h>
#include <tn/tn_time.h>

#include "ctl.h"

#define PRIVACY_USAGE                                                                              \
    "privacy erase|export|restrict|unrestrict --tenant T (--contact ID | --phone P | --email E)"   \
    " [--wait SECONDS]\n       ternctl privacy disconnect --tenant T (--account ID | --channel "   \
    "ID)"                                                                                          \
    " [--wait SECONDS]"
#define MAX_REQUESTS 32

static const char sql_by_id[] =
    "SELECT id FROM contacts WHERE tenant_id = $1::uuid AND id::text = $2";
static const char sql_by_phone[] =
    "SELECT id FROM contacts WHERE tenant_id = $1::uuid"
    " AND address IN ($2, '+' || ltrim($2, '+'), ltrim($2, '+')) ORDER BY created_at LIMIT 32";
static const char sql_by_email[] =
    "SELECT id FROM contacts WHERE tenant_id = $1::uuid AND (lower(email) = lower($2)"
    " OR (kind = 'email' AND lower(address) = lower($2)) OR id IN (SELECT contact_id FROM leads"
    " WHERE tenant_id = $1::uuid AND lower(email) = lower($2))) ORDER BY created_at LIMIT 32";
static const char sql_account[] =
    "SELECT id FROM oauth_accounts WHERE tenant_id = $1::uuid AND id::text = $2";
static const char sql_channel[] =
    "SELECT id FROM channels WHERE tenant_id = $1::uuid AND id::text = $2";
static const char sql_insert[] =
    "INSERT INTO privacy_requests (tenant_id, kind, subject_ref) VALUES ($1::uuid, $2, $3)"
    " RETURNING id";
static const char sql_status[] =
    "SELECT status FROM privacy_requests WHERE tenant_id = $1::uuid AND id = $2::uuid";

struct request {
    const char *kind;
    const char *of; /* what the subjects are: "contact", "account", "channel" */
    char tenant[37];
    size_t n;
    char subjects[MAX_REQUESTS][37]; /* contact, account or channel ids */
    char ids[MAX_REQUESTS][37];      /* request ids */
};

/* connect_redis - TN_REDIS_URL, authenticated; NULL and a message on failure */
static redisContext *connect_redis(void)
{
    const char *url = getenv("TN_REDIS_URL");
    struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
    struct tn_redis_url u;
    redisContext *rc = NULL;
    redisReply *rep = NULL;

    if (url == NULL || tn_redis_url_parse(url, &u) != TN_OK) {
        fprintf(stderr, "ternctl: set TN_REDIS_URL to a redis:// URL\n");
        return NULL;
    }
    rc = redisConnectWithTimeout(u.host, u.port, tv);
    if (rc != NULL && rc->err == 0 && u.password != NULL) {
        const char *argv[] = {"AUTH", u.user != NULL ? u.user : u.password, u.password};

        rep = redisCommandArgv(rc, u.user != NULL ? 3 : 2, argv, NULL);
    }
    if (rc == NULL || rc->err != 0 ||
        (u.password != NULL && (rep == NULL || rep->type == REDIS_REPLY_ERROR))) {
        fprintf(stderr, "ternctl: redis %s:%d: %s\n", u.host, u.port,
                rep != NULL  ? rep->str
                : rc != NULL ? rc->errstr
                             : "out of memory");
        if (rc != NULL)
            redisFree(rc);
        rc = NULL;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    tn_redis_url_free(&u);
    return rc;
}

/* resolve - the subject's ids into rq->subjects */
static int resolve(struct tn_pgconn *c, struct request *rq, const char *sql, const char *ref)
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql, 2, (const char *[]){rq->tenant, ref}, &res);

    if (err != TN_OK)
        return ctl_fail("looking up the subject", err);
    rq->n = (size_t)tn_pg_result_rows(res);
    for (size_t i = 0; i < rq->n && i < MAX_REQUESTS; i++)
        snprintf(rq->subjects[i], 37, "%s", tn_pg_result_value(res, (int)i, 0));
    tn_pg_result_free(res);
    if (rq->n == 0) {
        fprintf(stderr, "ternctl: no such %s in this tenant\n", rq->of);
        return CTL_EX_FAIL;
    }
    return CTL_EX_OK;
}

/* entry_data - the privacy.request payload for request i as JSON text in
 * out (size bytes, NUL-terminated); false if it does not fit */
static bool entry_data(const struct request *rq, size_t i, char *out, size_t size)
{
    char now[40];
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "tenant", rq->tenant, "request_id", rq->ids[i],
                  "kind", rq->kind, "requested_at", tn_time_rfc3339(tn_now_ms(), now, sizeof(now)),
                  "requested_by", "operator:ternctl");
    size_t n;

    if (strcmp(rq->of, "contact") != 0) /* "account_id" or "channel_id" */
        json_object_set_new(d, strcmp(rq->of, "account") == 0 ? "account_id" : "channel_id",
                            json_string(rq->subjects[i]));
    else
        json_object_set_new(d, "subject", json_pack("{s:s}", "contact_id", rq->subjects[i]));
    n = json_dumpb(d, out, size - 1, JSON_COMPACT);
    json_decref(d);
    if (n == 0 || n >= size)
        return false;
    out[n] = '\0';
    return true;
}

/* enqueue - XADD request i to tern:privacy */
static int enqueue(redisContext *r, const struct request *rq, size_t i)
{
    char trace[TN_TRACEPARENT_SIZE], dedupe[64], data[1024];
    /* field, value pairs after the stream's name and id */
    /* clang-format off */
    const char *argv[] = {"XADD", TN_STREAM_PRIVACY, "*",
                          TN_F_TYPE, TN_TYPE_PRIVACY_REQUEST, TN_F_V, TN_V_PRIVACY_REQUEST,
                          TN_F_TENANT, rq->tenant, TN_F_TRACE, trace, TN_F_REQUEST, rq->ids[i],
                          TN_F_DEDUPE, dedupe, TN_F_DATA, data};
    /* clang-format on */
    redisReply *rep;
    int code = CTL_EX_OK;

    if (!entry_data(rq, i, data, sizeof(data)))
        return ctl_fail("building the request", TN_E2BIG);
    tn_traceparent_new(trace);
    snprintf(dedupe, sizeof(dedupe), "priv:%s", rq->ids[i]);
    rep = redisCommandArgv(r, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "ternctl: XADD %s: %s\n", TN_STREAM_PRIVACY,
                rep != NULL && rep->str != NULL ? rep->str : r->errstr);
        code = CTL_EX_FAIL;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    return code;
}

/* record_all - one privacy_requests row and one entry per subject */
static int record_all(struct tn_pgconn *c, struct request *rq)
{
    redisContext *rc = connect_redis();
    int code = CTL_EX_OK;

    if (rc == NULL)
        return CTL_EX_FAIL;
    for (size_t i = 0; i < rq->n && code == CTL_EX_OK; i++) {
        char subject[64];
        struct pg_result *res = NULL;
        enum tn_err err;

        snprintf(subject, sizeof(subject), "%s:%s", rq->of, rq->subjects[i]);
        err = tn_pgconn_query(c, sql_insert, 3, (const char *[]){rq->tenant, rq->kind, subject},
                              &res);
        if (err != TN_OK) {
            fprintf(stderr, "%s", tn_pgconn_last_error(c));
            code = ctl_fail("recording the request", err);
            break;
        }
        snprintf(rq->ids[i], 37, "%s", tn_pg_result_value(res, 0, 0));
        tn_pg_result_free(res);
        code = enqueue(rc, rq, i);
        if (code == CTL_EX_OK)
            printf("%s\n", rq->ids[i]);
    }
    fflush(stdout);
    redisFree(rc);
    return code;
}

/* wait_all - poll until every request is done, one failed, or time is up */
static int wait_all(struct tn_pgconn *c, const struct request *rq, const char *secs)
{
    int64_t deadline = tn_mono_ms() + (int64_t)(strtod(secs, NULL) * 1000);

    for (size_t i = 0; i < rq->n; i++) {
        char status[16] = "pending";

        while (strcmp(status, "done") != 0 && strcmp(status, "failed") != 0) {
            struct pg_result *res = NULL;

            if (tn_pgconn_query(c, sql_status, 2, (const char *[]){rq->tenant, rq->ids[i]}, &res) ==
                    TN_OK &&
                tn_pg_result_rows(res) == 1)
                snprintf(status, sizeof(status), "%s", tn_pg_result_value(res, 0, 0));
            tn_pg_result_free(res);
            if (strcmp(status, "done") == 0 || tn_mono_ms() > deadline)
                break;
            usleep(50000);
        }
        printf("%s\t%s\n", rq->ids[i], status);
        if (strcmp(status, "done") != 0)
            return CTL_EX_FAIL;
    }
    return CTL_EX_OK;
}

/* run - resolve, record, enqueue, optionally wait */
static int run(struct request *rq, const char *tenant, const char *sql, const char *ref,
               const char *wait)
{
    struct tn_pgconn *c = NULL;
    int code = ctl_connect(&c);

    if (code == CTL_EX_OK)
        code = ctl_tenant_resolve(c, tenant, rq->tenant);
    if (code == CTL_EX_OK)
        code = resolve(c, rq, sql, ref);
    if (code == CTL_EX_OK)
        code = record_all(c, rq);
    if (code == CTL_EX_OK && wait != NULL)
        code = wait_all(c, rq, wait);
    tn_pgconn_close(c);
    return code;
}

/* ctl_privacy_main - `ternctl privacy KIND ...` */
int ctl_privacy_main(int argc, char **argv)
{
    static const char *const kinds[] = {"erase", "export", "restrict", "unrestrict"};
    const char *tenant = NULL, *contact = NULL, *phone = NULL, *email = NULL, *wait = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &tenant}, {"--contact", false, &contact},
                                   {"--phone", false, &phone},   {"--email", false, &email},
                                   {"--wait", false, &wait},     {NULL, false, NULL}};
    struct request rq = {.of = "contact"};

    if (argc >= 1 && strcmp(argv[0], "disconnect") == 0)
        return ctl_calendar_disconnect(argc, argv);
    for (size_t i = 0; argc >= 1 && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(argv[0], kinds[i]) == 0)
            rq.kind = kinds[i];
    }
    if (rq.kind == NULL || !ctl_parse_opts(argc - 1, argv + 1, opts, NULL, NULL, 0, NULL) ||
        tenant == NULL || (contact != NULL) + (phone != NULL) + (email != NULL) != 1)
        return ctl_usage(PRIVACY_USAGE);
    if (contact != NULL)
        return run(&rq, tenant, sql_by_id, contact, wait);
    if (phone != NULL)
        return run(&rq, tenant, sql_by_phone, phone, wait);
    return run(&rq, tenant, sql_by_email, email, wait);
}

/* ctl_calendar_disconnect - `ternctl calendar|privacy disconnect ...` */
int ctl_calendar_disconnect(int argc, char **argv)
{
    const char *tenant = NULL, *account = NULL, *channel = NULL, *wait = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &tenant},
                                   {"--account", false, &account},
                                   {"--channel", false, &channel},
                                   {"--wait", false, &wait},
                                   {NULL, false, NULL}};

    if (argc < 1 || strcmp(argv[0], "disconnect") != 0 ||
        !ctl_parse_opts(argc - 1, argv + 1, opts, NULL, NULL, 0, NULL) || tenant == NULL ||
        (account != NULL) == (channel != NULL))
        return ctl_usage(PRIVACY_USAGE);
    if (channel != NULL)
        return ctl_privacy_channel_disconnect(tenant, channel, wait);
    return run(&(struct request){.kind = "disconnect", .of = "account"}, tenant, sql_account,
               account, wait);
}

/* ctl_privacy_channel_disconnect - see ctl.h */
int ctl_privacy_channel_disconnect(const char *tenant, const char *channel, const char *wait)
{
    return run(&(struct request){.kind = "disconnect", .of = "channel"}, tenant, sql_channel,
               channel, wait);
}
