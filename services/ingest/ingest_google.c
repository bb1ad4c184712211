/*
 * NAME
 *	ingest_google - Google Calendar push notifications
 * SYNOPSIS
 *	#include "ingest.h"
 *
 *	ingest_google_push(req, lookup, arg, &res);  POST /webhooks/google/calendar
 * DESCRIPTION
 *	A notification is a POST with an empty body and X-Goog-* headers
 *	(protocols.md 5.4): the channel id tern-calsync chose at events.watch,
 *	the random token it gave with it, Google's resource id, the state and
 *	a message number. The channel is found in the routing cache by its
 *	id; the token is checked by comparing its SHA-256 with the stored hash
 *	in constant time (the token itself is stored nowhere). A notification
 *	says only "something changed": it becomes one cal.request {op "push"}
 *	for the channel's account, and tern-calsync imports the account's busy
 *	time and checks Tern's events at once.
 *
 *	State "sync" is the message Google sends right after a channel is
 *	opened: acknowledged, nothing enqueued. The dedupe key is
 *	"gcal:<channel>:<message number>", so Google's retry of a
 *	notification that was in fact enqueued adds nothing.
 * RUNS ON
 *	loop (pure: no I/O).
 * DIAGNOSTICS
 *	res->status and res->reason. The token is never copied anywhere.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>

#include "ingest.h"

#define CHANNEL_MAX 64 /* Google: a channel id is at most 64 characters */
#define RESOURCE_MAX 256
#define STATE_MAX 32
#define NUMBER_MAX 20

/* printable - 1..max visible ASCII characters, nothing else */
static bool printable(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    }
    return true;
}

/* state_ok - a resource state: 1..32 of [a-z_] */
static bool state_ok(const char *s)
{
    return s != NULL && *s != '\0' && strlen(s) <= STATE_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz_") == strlen(s);
}

/* number_ok - a message number: 1..20 decimal digits */
static bool number_ok(const char *s)
{
    return s != NULL && *s != '\0' && strlen(s) <= NUMBER_MAX &&
           strspn(s, "0123456789") == strlen(s);
}

/* ingest_google_token_hash - hex SHA-256 of the token */
char *ingest_google_token_hash(const char *token)
{
    unsigned char h[TN_SHA256_LEN];

    tn_sha256(token, strlen(token), h);
    return tn_hex_encode(h, sizeof(h));
}

/* token_ok - the presented token hashes to the channel's hash (constant time) */
static bool token_ok(const char *token, const char *want_hex)
{
    char *got;
    bool ok;

    if (token == NULL || *token == '\0' || want_hex == NULL ||
        strlen(want_hex) != 2 * TN_SHA256_LEN)
        return false;
    got = ingest_google_token_hash(token);
    ok = tn_ct_equal(got, want_hex, 2 * TN_SHA256_LEN);
    tn_free(got);
    return ok;
}

/* push_data - the cal.request payload; new */
static json_t *push_data(const struct ingest_request *req, const struct ingest_route *route,
                         const char *request_id)
{
    const struct ingest_goog *g = req->goog;
    json_t *d = json_object(), *p = json_object();

    json_object_set_new(d, "tenant", json_string(route->tenant));
    json_object_set_new(d, "request_id", json_string(request_id));
    json_object_set_new(d, "op", json_string("push"));
    json_object_set_new(d, "account_id", json_string(route->account));
    ingest_entry_set_time(d, "requested_at", req->now_ms);
    json_object_set_new(p, "channel_id", json_string(g->channel_id));
    if (printable(g->resource_id, RESOURCE_MAX))
        json_object_set_new(p, "resource_id", json_string(g->resource_id));
    json_object_set_new(p, "resource_state", json_string(g->resource_state));
    json_object_set_new(p, "message_number", json_string(g->message_number));
    json_object_set_new(p, "token_ok", json_true());
    json_object_set_new(d, "push", p);
    return d;
}

/* enqueue - one cal.request for the channel's account */
static enum tn_err enqueue(struct ingest_result *res, const struct ingest_request *req,
                           const struct ingest_route *route)
{
    const struct ingest_goog *g = req->goog;
    char rid[128], dedupe[128], *trace;
    enum tn_err err;
    struct ingest_entry *e;

    snprintf(rid, sizeof(rid), "gpush:%s:%s", g->channel_id, g->message_number);
    snprintf(dedupe, sizeof(dedupe), "gcal:%s:%s", g->channel_id, g->message_number);
    trace = ingest_entry_trace_new(req);
    err = ingest_entry_push_cal(res, route->tenant, trace, rid, dedupe, push_data(req, route, rid));
    tn_free(trace);
    if (err != TN_OK)
        return err;
    e = &res->entries[res->nentries - 1];
    if (e->nfields < INGEST_MAX_FIELDS) { /* the envelope mirrors data.account_id */
        e->name[e->nfields] = TN_F_ACCOUNT;
        e->value[e->nfields++] = tn_xstrdup(route->account);
    }
    return TN_OK;
}

/* ingest_google_push - route, check the token, enqueue */
void ingest_google_push(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                        struct ingest_result *res)
{
    const struct ingest_goog *g = req->goog;
    const struct ingest_route *route = NULL;

    if (g != NULL && printable(g->channel_id, CHANNEL_MAX))
        route = lookup(arg, INGEST_LOOKUP_GOOGLE_CALENDAR, g->channel_id);
    if (route == NULL || route->secret == NULL || route->account == NULL) {
        ingest_entry_verdict(res, 404, "channel.unknown");
        return;
    }
    if (g->token == NULL || *g->token == '\0') {
        ingest_entry_verdict(res, 401, "token.missing");
        return;
    }
    if (!token_ok(g->token, route->secret)) {
        ingest_entry_verdict(res, 401, "token.mismatch");
        return;
    }
    if (!state_ok(g->resource_state) || !number_ok(g->message_number)) {
        ingest_entry_verdict(res, 400, "header.invalid");
        return;
    }
    if (strcmp(g->resource_state, "sync") == 0) {
        ingest_entry_verdict(res, 200, "sync");
        return;
    }
    if (enqueue(res, req, route) != TN_OK) {
        ingest_entry_verdict(res, 400, "header.invalid");
        return;
    }
    ingest_entry_verdict(res, 200, "accepted");
}
