/*
 * test_ingest_google - the Google Calendar push parser of tern-ingest: a
 * notification of a known channel with its token becomes one cal.request
 * {op "push"} for the channel's account, deduplicated by channel and message
 * number; "sync" is acknowledged with no entry; every refusal has its status
 * and no entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <tn/tn_mem.h>
#include <tn/tn_proto.h>

#include "ingest.h"

#define TENANT "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11"
#define ACCOUNT "3b9d2c41-7e0f-4a55-9d1e-0c2f6a8b7d10"
#define CHANNEL "0f6c1d2e-9a8b-4c7d-8e6f-5a4b3c2d1e0f"
#define TOKEN "f3a1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef01234"
#define TRACE "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define NOW_MS 1767225600000LL /* 2026-01-01T00:00:00.000Z */

static struct ingest_route route = {.tenant = TENANT, .channel = CHANNEL, .account = ACCOUNT};

/* lookup - one channel, by its id */
static const struct ingest_route *lookup(void *arg, const char *provider, const char *key)
{
    (void)arg;
    if (strcmp(provider, INGEST_LOOKUP_GOOGLE_CALENDAR) == 0 && strcmp(key, CHANNEL) == 0)
        return &route;
    return NULL;
}

static const struct case_ {
    const char *name;
    struct ingest_goog goog;
    bool no_headers;
    int status;
    const char *reason;
    size_t nentries;
} cases[] = {
    {.name = "exists",
     .goog = {CHANNEL, TOKEN, "ret08u3rv24htgh289g", "exists", "42"},
     .status = 200,
     .reason = "accepted",
     .nentries = 1},
    {.name = "not_exists",
     .goog = {CHANNEL, TOKEN, "ret08u3rv24htgh289g", "not_exists", "43"},
     .status = 200,
     .nentries = 1},
    {.name = "no resource id",
     .goog = {CHANNEL, TOKEN, NULL, "exists", "44"},
     .status = 200,
     .nentries = 1},
    {.name = "sync", .goog = {CHANNEL, TOKEN, "r", "sync", "1"}, .status = 200, .reason = "sync"},
    {.name = "unknown channel",
     .goog = {"11111111-2222-3333-4444-555555555555", TOKEN, "r", "exists", "2"},
     .status = 404,
     .reason = "channel.unknown"},
    {.name = "no channel", .goog = {NULL, TOKEN, "r", "exists", "2"}, .status = 404},
    {.name = "channel too long",
     .goog = {CHANNEL CHANNEL, TOKEN, "r", "exists", "2"},
     .status = 404},
    {.name = "channel with space", .goog = {"a b", TOKEN, "r", "exists", "2"}, .status = 404},
    {.name = "no headers at all", .no_headers = true, .status = 404},
    {.name = "no token",
     .goog = {CHANNEL, NULL, "r", "exists", "2"},
     .status = 401,
     .reason = "token.missing"},
    {.name = "empty token", .goog = {CHANNEL, "", "r", "exists", "2"}, .status = 401},
    {.name = "wrong token",
     .goog = {CHANNEL, TOKEN "x", "r", "exists", "2"},
     .status = 401,
     .reason = "token.mismatch"},
    {.name = "token prefix", .goog = {CHANNEL, "f3a1", "r", "exists", "2"}, .status = 401},
    {.name = "wrong token, sync", .goog = {CHANNEL, "nope", "r", "sync", "1"}, .status = 401},
    {.name = "no state",
     .goog = {CHANNEL, TOKEN, "r", NULL, "2"},
     .status = 400,
     .reason = "header.invalid"},
    {.name = "odd state", .goog = {CHANNEL, TOKEN, "r", "Exists!", "2"}, .status = 400},
    {.name = "no number", .goog = {CHANNEL, TOKEN, "r", "exists", NULL}, .status = 400},
    {.name = "number not digits", .goog = {CHANNEL, TOKEN, "r", "exists", "-1"}, .status = 400},
    {.name = "number too long",
     .goog = {CHANNEL, TOKEN, "r", "exists", "123456789012345678901"},
     .status = 400},
};

/* matrix - every case's verdict; refusals carry no entry */
static void matrix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct case_ *c = &cases[i];
        struct ingest_request req = {.method = "POST", .now_ms = NOW_MS, .trace = TRACE};
        struct ingest_result res = {0};

        req.goog = c->no_headers ? NULL : &c->goog;
        ingest_google_push(&req, lookup, NULL, &res);
        print_message("case %s\n", c->name);
        assert_int_equal(res.status, c->status);
        if (c->reason != NULL)
            assert_string_equal(res.reason, c->reason);
        assert_int_equal(res.nentries, c->nentries);
        ingest_result_free(&res);
    }
}

/* entry - the envelope and the payload of an accepted notification */
static void entry(void **state)
{
    struct ingest_goog g = {CHANNEL, TOKEN, "ret08u3rv24htgh289g", "exists", "42"};
    struct ingest_request req = {.method = "POST", .now_ms = NOW_MS, .trace = TRACE, .goog = &g};
    struct ingest_result res = {0};
    const struct ingest_entry *e;
    json_t *d, *p;

    (void)state;
    ingest_google_push(&req, lookup, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.nentries, 1);
    e = &res.entries[0];
    assert_string_equal(e->stream, TN_STREAM_CAL);
    assert_string_equal(ingest_entry_get(e, TN_F_TYPE), TN_TYPE_CAL_REQUEST);
    assert_string_equal(ingest_entry_get(e, TN_F_TENANT), TENANT);
    assert_string_equal(ingest_entry_get(e, TN_F_TRACE), TRACE);
    assert_string_equal(ingest_entry_get(e, TN_F_ACCOUNT), ACCOUNT);
    assert_string_equal(ingest_entry_get(e, TN_F_DEDUPE), "gcal:" CHANNEL ":42");
    assert_string_equal(ingest_entry_get(e, TN_F_REQUEST), "gpush:" CHANNEL ":42");
    d = json_loads(ingest_entry_get(e, TN_F_DATA), 0, NULL);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "op")), "push");
    assert_string_equal(json_string_value(json_object_get(d, "tenant")), TENANT);
    assert_string_equal(json_string_value(json_object_get(d, "account_id")), ACCOUNT);
    assert_string_equal(json_string_value(json_object_get(d, "request_id")),
                        "gpush:" CHANNEL ":42");
    assert_string_equal(json_string_value(json_object_get(d, "requested_at")),
                        "2026-01-01T00:00:00.000Z");
    p = json_object_get(d, "push");
    assert_string_equal(json_string_value(json_object_get(p, "channel_id")), CHANNEL);
    assert_string_equal(json_string_value(json_object_get(p, "resource_id")),
                        "ret08u3rv24htgh289g");
    assert_string_equal(json_string_value(json_object_get(p, "resource_state")), "exists");
    assert_string_equal(json_string_value(json_object_get(p, "message_number")), "42");
    assert_true(json_is_true(json_object_get(p, "token_ok")));
    assert_int_equal(json_object_size(p), 5);
    assert_null(strstr(ingest_entry_get(e, TN_F_DATA), TOKEN)); /* the token goes nowhere */
    json_decref(d);
    ingest_result_free(&res);
}

/* dedupe - the same notification again has the same key; the next number another */
static void dedupe(void **state)
{
    struct ingest_goog g = {CHANNEL, TOKEN, "r", "exists", "7"};
    struct ingest_request req = {.method = "POST", .now_ms = NOW_MS, .goog = &g};
    struct ingest_result a = {0}, b = {0};

    (void)state;
    ingest_google_push(&req, lookup, NULL, &a);
    g.message_number = "8";
    ingest_google_push(&req, lookup, NULL, &b);
    assert_int_equal(a.nentries, 1);
    assert_int_equal(b.nentries, 1);
    assert_string_not_equal(ingest_entry_get(&a.entries[0], TN_F_DEDUPE),
                            ingest_entry_get(&b.entries[0], TN_F_DEDUPE));
    /* no trace given: a fresh, well-formed one */
    assert_int_equal(strlen(ingest_entry_get(&a.entries[0], TN_F_TRACE)), 55);
    ingest_result_free(&a);
    ingest_result_free(&b);
}

/* token_hash - hex SHA-256, lowercase (the column's CHECK) */
static void token_hash(void **state)
{
    char *h = ingest_google_token_hash("abc");

    (void)state;
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    tn_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matrix),
        cmocka_unit_test(entry),
        cmocka_unit_test(dedupe),
        cmocka_unit_test(token_hash),
    };
    int rc;

    route.secret = ingest_google_token_hash(TOKEN);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    tn_free((char *)route.secret);
    return rc;
}
