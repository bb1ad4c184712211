/*
 * test_sender_logic - tern-sender's pure parts: the delivery state order,
 * each provider's answer classification and request shape, token buckets,
 * Retry-After and uuids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <tn/tn_id.h>
#include <tn/tn_mem.h>

#include "sender.h"

/* status_order - furthest state wins; duplicates and late statuses change nothing */
static void status_order(void **state)
{
    static const struct {
        const char *cur, *st, *want;
    } cases[] = {
        {"sending", "sent", "sent"},       {"sent", "delivered", "delivered"},
        {"sent", "read", "read"},          {"delivered", "read", "read"},
        {"read", "delivered", NULL},       {"read", "sent", NULL},
        {"delivered", "delivered", NULL},  {"sent", "failed", "failed"},
        {"delivered", "failed", NULL},     {"failed", "delivered", "delivered"},
        {"failed", "sent", NULL},          {"dead", "read", "read"},
        {"sent", "undelivered", "failed"}, {"sent", "played", "read"},
        {"sent", "queued", NULL},          {"canceled", "delivered", NULL},
        {"queued", "accepted", NULL},      {"sending", "unknown", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = sender_status_next(cases[i].cur, cases[i].st);

        if (cases[i].want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].want);
    }
}

struct parse_case {
    const struct sender_provider *p;
    long status;
    const char *body, *retry_after;
    enum sender_verdict v;
    const char *code_or_pmid;
    int64_t retry_ms;
};

/* parse_answers - every provider's success and error shapes */
static void parse_answers(void **state)
{
    const struct parse_case cases[] = {
        {&sender_whatsapp, 200, "{\"messages\":[{\"id\":\"wamid.X\"}]}", NULL, SENDER_V_OK,
         "wamid.X", 0},
        {&sender_whatsapp, 400, "{\"error\":{\"code\":131026}}", NULL, SENDER_V_FINAL, "131026", 0},
        {&sender_whatsapp, 400, "{\"error\":{\"code\":131047}}", NULL, SENDER_V_FINAL, "131047", 0},
        {&sender_whatsapp, 429, "{\"error\":{\"code\":130429}}", "7", SENDER_V_RETRY, "130429",
         7000},
        {&sender_whatsapp, 400, "{\"error\":{\"code\":131056}}", NULL, SENDER_V_RETRY, "131056", 0},
        {&sender_whatsapp, 502, "<html>", NULL, SENDER_V_RETRY, "http_502", 0},
        {&sender_twilio, 201, "{\"sid\":\"SM1\",\"status\":\"queued\"}", NULL, SENDER_V_OK, "SM1",
         0},
        {&sender_twilio, 400, "{\"code\":21610,\"status\":400}", NULL, SENDER_V_FINAL, "21610", 0},
        {&sender_twilio, 429, "{\"code\":20429}", "3", SENDER_V_RETRY, "20429", 3000},
        {&sender_twilio, 503, "", NULL, SENDER_V_RETRY, "http_503", 0},
        {&sender_telegram, 200, "{\"ok\":true,\"result\":{\"message_id\":5,\"chat\":{\"id\":42}}}",
         NULL, SENDER_V_OK, "42:5", 0},
        {&sender_telegram, 429,
         "{\"ok\":false,\"error_code\":429,\"parameters\":{\"retry_after\":35}}", NULL,
         SENDER_V_RETRY, "429", 35000},
        {&sender_telegram, 403, "{\"ok\":false,\"error_code\":403}", NULL, SENDER_V_FINAL, "403",
         0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sender_result r;

        cases[i].p->parse(cases[i].status, cases[i].body, strlen(cases[i].body),
                          cases[i].retry_after, &r);
        assert_int_equal(r.v, cases[i].v);
        assert_string_equal(r.v == SENDER_V_OK ? r.pmid : r.code, cases[i].code_or_pmid);
        assert_int_equal(r.retry_after_ms, cases[i].retry_ms);
    }
}

static const struct sender_cfg cfg = {
    .whatsapp_base = "http://h/wa",
    .whatsapp_version = "v21.0",
    .twilio_base = "http://h/tw",
    .telegram_base = "http://h/tg",
    .twilio_status_url = "https://tern.example/webhooks/twilio",
};

/* build_requests - URLs, auth and bodies as the providers document them */
static void build_requests(void **state)
{
    json_t *wa = json_pack("{ss}", "access_token", "T0K");
    json_t *tw = json_pack("{ssss}", "account_sid", "AC1", "auth_token", "s3");
    json_t *tg = json_pack("{ss}", "bot_token", "1:abc");
    json_t *tpl = json_loads("{\"name\":\"n\",\"language\":\"en\",\"variables\":[\"Sam\"],"
                             "\"content_sid\":\"HX1\"}",
                             0, NULL);
    struct sender_msg m = {.outbound_id = "o-1",
                           .channel_kind = "whatsapp",
                           .from = "123",
                           .to = "+4915",
                           .text = "hi & bye",
                           .secrets = wa};
    struct sender_req rq;
    const char *why = NULL;

    (void)state;
    assert_int_equal(sender_whatsapp.build(&cfg, &m, &rq, &why), TN_OK);
    assert_string_equal(rq.url, "http://h/wa/v21.0/123/messages");
    assert_string_equal(rq.headers[0], "Authorization: Bearer T0K");
    assert_non_null(strstr(rq.body.data, "\"to\":\"4915\""));
    assert_non_null(strstr(rq.body.data, "\"biz_opaque_callback_data\":\"o-1\""));
    sender_req_free(&rq);
    m.text = NULL;
    m.template = tpl;
    assert_int_equal(sender_whatsapp.build(&cfg, &m, &rq, &why), TN_OK);
    assert_non_null(strstr(rq.body.data, "\"type\":\"template\""));
    assert_non_null(strstr(rq.body.data, "\"parameters\":[{\"type\":\"text\",\"text\":\"Sam\"}]"));
    sender_req_free(&rq);

    m = (struct sender_msg){.outbound_id = "o-2",
                            .channel_kind = "twilio_whatsapp",
                            .from = "+1415",
                            .to = "+4915",
                            .text = "hi & bye",
                            .secrets = tw};
    assert_int_equal(sender_twilio.build(&cfg, &m, &rq, &why), TN_OK);
    assert_string_equal(rq.url, "http://h/tw/2010-04-01/Accounts/AC1/Messages.json");
    assert_string_equal(rq.userpwd, "AC1:s3");
    assert_string_equal(rq.body.data,
                        "To=whatsapp%3A%2B4915&From=whatsapp%3A%2B1415&Body=hi%20%26%20bye"
                        "&StatusCallback=https%3A%2F%2Ftern.example%2Fwebhooks%2Ftwilio%3F"
                        "outbound%3Do-2");
    sender_req_free(&rq);
    m.text = NULL;
    m.template = tpl;
    assert_int_equal(sender_twilio.build(&cfg, &m, &rq, &why), TN_OK);
    assert_non_null(
        strstr(rq.body.data, "ContentSid=HX1&ContentVariables=%7B%221%22%3A%22Sam%22%7D"));
    sender_req_free(&rq);

    m = (struct sender_msg){.outbound_id = "o-3",
                            .channel_kind = "telegram",
                            .from = "bot",
                            .to = "42",
                            .text = "hi",
                            .reply_to = "42:7",
                            .secrets = tg};
    assert_int_equal(sender_telegram.build(&cfg, &m, &rq, &why), TN_OK);
    assert_string_equal(rq.url, "http://h/tg/bot1:abc/sendMessage");
    assert_string_equal(
        rq.body.data,
        "{\"chat_id\":\"42\",\"text\":\"hi\",\"reply_parameters\":{\"message_id\":7}}");
    sender_req_free(&rq);
    m.secrets = wa; /* no bot_token */
    assert_int_equal(sender_telegram.build(&cfg, &m, &rq, &why), TN_EINVAL);
    assert_string_equal(why, "credentials.missing");
    sender_req_free(&rq);
    json_decref(wa);
    json_decref(tw);
    json_decref(tg);
    json_decref(tpl);
}

/* buckets - a burst, then one token per 1/rate, queued waits spaced out */
static void buckets(void **state)
{
    struct sender_rate *r = sender_rate_new();

    (void)state;
    for (int i = 0; i < 10; i++)
        assert_int_equal(sender_rate_take(r, "ch", 10, 10, 1000), 0);
    assert_in_range(sender_rate_take(r, "ch", 10, 10, 1000), 100, 101);
    assert_in_range(sender_rate_take(r, "ch", 10, 10, 1000), 200, 201);
    assert_int_equal(sender_rate_take(r, "other", 10, 10, 1000), 0); /* another identity */
    assert_int_equal(sender_rate_take(r, "ch", 10, 10, 1300), 0);    /* refilled */
    assert_int_equal(sender_rate_take(r, "free", 0, 0, 1000), 0);    /* 0: unlimited */
    sender_rate_free(r);
}

/* small_parsers - Retry-After, uuids, providers by channel kind */
static void small_parsers(void **state)
{
    (void)state;
    assert_int_equal(sender_retry_after_ms("12"), 12000);
    assert_int_equal(sender_retry_after_ms(""), 0);
    assert_int_equal(sender_retry_after_ms("soon"), 0);
    assert_int_equal(sender_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0); /* past */
    assert_true(tn_uuid_valid("0b7e6a1c-4b7e-4c41-9d38-2f0d1f2a3b4c"));
    assert_false(tn_uuid_valid("0b7e6a1c-4b7e-4c41-9d38-2f0d1f2a3b4"));
    assert_false(tn_uuid_valid("0b7e6a1cx4b7e-4c41-9d38-2f0d1f2a3b4c"));
    assert_ptr_equal(sender_provider_of("twilio_sms"), &sender_twilio);
    assert_ptr_equal(sender_provider_of("twilio_whatsapp"), &sender_twilio);
    assert_null(sender_provider_of("email"));
}

/* pg_arrays - the array literals of the batched statements: NULL stays SQL
 * NULL, quotes and backslashes are escaped, "NULL" as text is quoted */
static void pg_arrays(void **state)
{
    static const struct {
        const char *in[3];
        size_t n;
        const char *want;
    } cases[] = {
        {{NULL}, 0, "{}"},
        {{"a"}, 1, "{\"a\"}"},
        {{"a", NULL, "NULL"}, 3, "{\"a\",NULL,\"NULL\"}"},
        {{"say \"hi\"", "back\\slash", ""}, 3, "{\"say \\\"hi\\\"\",\"back\\\\slash\",\"\"}"},
        {{"", "{x,y}"}, 2, "{\"\",\"{x,y}\"}"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tn_buf b;

        tn_buf_init(&b, 0);
        tn_buf_adds(&b, "{");
        for (size_t k = 0; k < cases[i].n; k++)
            sender_pg_array_add(&b, cases[i].in[k]);
        assert_string_equal(sender_pg_array_end(&b), cases[i].want);
        tn_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_order),   cmocka_unit_test(parse_answers),
        cmocka_unit_test(build_requests), cmocka_unit_test(buckets),
        cmocka_unit_test(small_parsers),  cmocka_unit_test(pg_arrays),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
